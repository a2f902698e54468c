/*
 * sessions.h -- the SQLite backend's sessions op table (sessions.c).
 */
#ifndef LLS_BACKENDS_SQLITE_SESSIONS_H
#define LLS_BACKENDS_SQLITE_SESSIONS_H

#include "backend/sessions.h"

extern const lls_session_ops lls_sqlite_session_ops;

#endif
