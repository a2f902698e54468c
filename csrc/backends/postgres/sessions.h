/*
 * sessions.h -- the PostgreSQL backend's sessions op table (sessions.c).
 */
#ifndef LLS_BACKENDS_POSTGRES_SESSIONS_H
#define LLS_BACKENDS_POSTGRES_SESSIONS_H

#include "backend/sessions.h"

extern const lls_session_ops lls_postgres_session_ops;

#endif
