/*
 * kv.h -- the PostgreSQL backend's key-value op table (kv.c), over table
 * kv_store (schema.c).
 */
#ifndef LLS_BACKENDS_POSTGRES_KV_H
#define LLS_BACKENDS_POSTGRES_KV_H

#include "backend/kv.h"

extern const lls_kv_ops lls_postgres_kv_ops;

#endif
