/*
 * hook_history.h -- the PostgreSQL backend's hook-history op table
 * (hook_history.c).
 */
#ifndef LLS_BACKENDS_POSTGRES_HOOK_HISTORY_H
#define LLS_BACKENDS_POSTGRES_HOOK_HISTORY_H

#include "backend/hook_history.h"

extern const lls_hook_ops lls_postgres_hook_ops;

#endif
