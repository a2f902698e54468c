/*
 * events.h -- the SQLite backend's event-log op table (events.c), which
 * the memory backend's components use too.
 */
#ifndef LLS_BACKENDS_SQLITE_EVENTS_H
#define LLS_BACKENDS_SQLITE_EVENTS_H

#include "backend/events.h"

extern const lls_event_ops lls_sqlite_event_ops;

#endif
