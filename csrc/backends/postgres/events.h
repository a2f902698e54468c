/*
 * events.h -- the PostgreSQL backend's event-log op table (events.c).
 */
#ifndef LLS_BACKENDS_POSTGRES_EVENTS_H
#define LLS_BACKENDS_POSTGRES_EVENTS_H

#include "backend/events.h"

extern const lls_event_ops lls_postgres_event_ops;

#endif
