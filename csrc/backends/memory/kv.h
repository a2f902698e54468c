/*
 * backends/memory/kv.h -- the memory backend's key-value op table, over
 * the handle's key-value map.
 */
#ifndef LLS_BACKENDS_MEMORY_KV_H
#define LLS_BACKENDS_MEMORY_KV_H

#include "backend/kv.h"

extern const lls_kv_ops lls_memory_kv_ops;

#endif
