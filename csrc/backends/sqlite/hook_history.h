/*
 * hook_history.h -- the SQLite backend's hook-history op table
 * (hook_history.c), which the memory backend's components use too.
 */
#ifndef LLS_BACKENDS_SQLITE_HOOK_HISTORY_H
#define LLS_BACKENDS_SQLITE_HOOK_HISTORY_H

#include "backend/hook_history.h"

extern const lls_hook_ops lls_sqlite_hook_ops;

#endif
