/*
 * memory.c -- the memory backend: its vtable, which joins the handle's
 * slots (store.c) and the op tables of kv.c, vectors.c and xport.c; its
 * components live in a private SQLite store (components.c).
 *
 * The vtable lives apart from store.c so that the op-table files depend on
 * store.c and nothing depends back on them.
 */
#include "backends/memory/memory.h"

#include "backends/memory/components.h"
#include "backends/memory/kv.h"
#include "backends/memory/store.h"
#include "backends/memory/vectors.h"
#include "backends/memory/xport.h"

const lls_backend_vt lls_memory_vt = {
    .name = "memory",
    .traits = {.persistent = 0,
               .transactional = 1,
               .supports_prefix_scan = 1,
               .supports_atomic_ops = 1,
               .nominal_read_us = 1,
               .nominal_write_us = 1},
    .open = lls_memory_open,
    .close = lls_memory_close,
    .location = lls_memory_location,
    .begin = lls_memory_begin,
    .commit = lls_memory_commit,
    .rollback = lls_memory_rollback,
    .migrations = lls_memory_migrations,
    .check = lls_memory_check,
    .components = lls_memory_components,
    .kv = &lls_memory_kv_ops,
    .vec = &lls_memory_vec_ops,
    .xport = &lls_memory_xport_ops,
};
