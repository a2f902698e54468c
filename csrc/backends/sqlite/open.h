/*
 * open.h -- opening and closing an SQLite store: the options, telling a
 * store from another program's database before anything is written, the
 * read-only modes and the optional check at open (open.c).
 */
#ifndef LLS_BACKENDS_SQLITE_OPEN_H
#define LLS_BACKENDS_SQLITE_OPEN_H

#include "backend/backend.h"

/* Opens cfg->location (a path or ":memory:"). Options: synchronous,
 * busy_timeout_ms, cache_size, mmap_size, mode ("rw" | "ro"), verify
 * ("off" | "quick" | "full"). A file is only written once it is known to
 * be a store (or is new); another program's database is refused with
 * LLS_EFORMAT and left as it was. NULL + err on failure; the message
 * names the file. */
lls_backend *lls_sqlite_open(lls_config *cfg, lls_error *err);

/* The options lls_sqlite_open takes, checked without touching a file
 * (backend.h's check_options). */
int lls_sqlite_check_options(lls_config *cfg, lls_error *err);

/* Finalizes statements, rolls back an open transaction, closes. */
void lls_sqlite_close(lls_backend *base);

/* The path as given at open, for tostring(). */
const char *lls_sqlite_location(lls_backend *base);

#endif
