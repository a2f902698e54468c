/*
 * kv.h -- the SQLite backend's key-value op table (kv.c).
 */
#ifndef LLS_BACKENDS_SQLITE_KV_H
#define LLS_BACKENDS_SQLITE_KV_H

#include "backend/kv.h"

extern const lls_kv_ops lls_sqlite_kv_ops;

#endif
