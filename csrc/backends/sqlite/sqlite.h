/*
 * sqlite.h -- the SQLite backend. Its vtable, lls_sqlite_vt, is declared
 * with the others in backend/backend.h and defined in sqlite.c.
 */
#ifndef LLS_BACKENDS_SQLITE_SQLITE_H
#define LLS_BACKENDS_SQLITE_SQLITE_H

#include "backend/backend.h"

#endif
