/*
 * backends/memory/store.c -- the memory backend's handle: open, close,
 * transactions over both maps, and lls_memory_vt (see store.h).
 */
#include "backends/memory/store.h"

#include <stdlib.h>
#include <string.h>

#include "backends/memory/kv.h"
#include "backends/memory/vectors.h"
#include "backends/memory/xport.h"

static lls_backend *mem_open(lls_config *cfg, lls_error *err) {
  lls_memory_backend *m = calloc(1, sizeof *m);
  if (m == NULL) return lls_error_oom(err), NULL;
  m->base.vt = &lls_memory_vt;
  m->tenant = malloc(strlen(cfg->tenant) + 1);
  int kv_ok = lls_memory_map_init(&m->kv) == 0;
  int vec_ok = kv_ok && lls_memory_map_init(&m->vec) == 0;
  if (m->tenant == NULL || !vec_ok) {
    if (vec_ok) lls_memory_map_free(&m->vec);
    if (kv_ok) lls_memory_map_free(&m->kv);
    free(m->tenant);
    free(m);
    return lls_error_oom(err), NULL;
  }
  strcpy(m->tenant, cfg->tenant);
  m->base.ephemeral = 1;
  return &m->base;
}

static void mem_close(lls_backend *b) {
  lls_memory_backend *m = lls_memory_of(b);
  lls_memory_map_free(&m->vec);
  lls_memory_map_free(&m->kv);
  free(m->tenant);
  free(m);
}

static const char *mem_location(lls_backend *b) {
  (void)b;
  return "in-process";
}

/* Transactions cover both maps: key-value rows and collections. */
static int mem_begin(lls_backend *b, int depth, lls_error *err) {
  lls_memory_backend *m = lls_memory_of(b);
  if (depth >= (int)(sizeof m->kv.marks / sizeof m->kv.marks[0]))
    return lls_error_set(err, LLS_EINVALID, "transactions nested too deeply (%d)", depth);
  lls_memory_map_begin(&m->kv, depth);
  lls_memory_map_begin(&m->vec, depth);
  return 0;
}

static int mem_commit(lls_backend *b, int depth, lls_error *err) {
  (void)err;
  lls_memory_backend *m = lls_memory_of(b);
  lls_memory_map_commit(&m->kv, depth);
  lls_memory_map_commit(&m->vec, depth);
  return 0;
}

static int mem_rollback(lls_backend *b, int depth, lls_error *err) {
  (void)err;
  lls_memory_backend *m = lls_memory_of(b);
  lls_memory_map_rollback(&m->kv, depth);
  lls_memory_map_rollback(&m->vec, depth);
  return 0;
}

static int mem_migrations(lls_backend *b, lls_rows *out, lls_error *err) {
  (void)b;
  (void)out;
  (void)err;
  return 0;
}

/* Nothing can be checked: the structures are rebuilt by every write and
 * no bytes come from outside the process. */
static int mem_check(lls_backend *b, lls_rows *problems, lls_error *err) {
  (void)b;
  (void)problems;
  (void)err;
  return 0;
}

const lls_backend_vt lls_memory_vt = {
    .name = "memory",
    .traits = {.persistent = 0,
               .transactional = 1,
               .supports_prefix_scan = 1,
               .supports_atomic_ops = 1,
               .nominal_read_us = 1,
               .nominal_write_us = 1},
    .open = mem_open,
    .close = mem_close,
    .location = mem_location,
    .begin = mem_begin,
    .commit = mem_commit,
    .rollback = mem_rollback,
    .migrations = mem_migrations,
    .check = mem_check,
    .kv = &lls_memory_kv_ops,
    .vec = &lls_memory_vec_ops,
    .xport = &lls_memory_xport_ops,
};
