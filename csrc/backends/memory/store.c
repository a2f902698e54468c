/*
 * backends/memory/store.c -- the memory backend's handle: open, close,
 * transactions over both maps (the vtable is in memory.c).
 */
#include "backends/memory/store.h"

#include <stdlib.h>
#include <string.h>

#include "backends/memory/components.h"


lls_backend *lls_memory_open(lls_config *cfg, lls_error *err) {
  lls_memory_backend *m = calloc(1, sizeof *m);
  if (m == NULL) return lls_error_oom(err), NULL;
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

void lls_memory_close(lls_backend *b) {
  lls_memory_backend *m = lls_memory_of(b);
  if (m->components != NULL) m->components->vt->close(m->components);
  lls_memory_map_free(&m->vec);
  lls_memory_map_free(&m->kv);
  free(m->tenant);
  free(m);
}

const char *lls_memory_location(lls_backend *b) {
  (void)b;
  return "in-process";
}

/* Transactions cover both maps (key-value rows and collections) and the
 * components' store once it is open. */
int lls_memory_begin(lls_backend *b, int depth, lls_error *err) {
  lls_memory_backend *m = lls_memory_of(b);
  if (depth >= (int)(sizeof m->kv.marks / sizeof m->kv.marks[0]))
    return lls_error_set(err, LLS_EINVALID, "transactions nested too deeply (%d)", depth);
  if (m->components != NULL && m->components->vt->begin(m->components, depth, err) != 0)
    return -1;
  lls_memory_map_begin(&m->kv, depth);
  lls_memory_map_begin(&m->vec, depth);
  m->depth = depth + 1;
  return 0;
}

/* The components' store commits first: it is the only part that can
 * fail, and when it does the maps are still open to be rolled back. */
int lls_memory_commit(lls_backend *b, int depth, lls_error *err) {
  lls_memory_backend *m = lls_memory_of(b);
  if (m->components != NULL && m->components->vt->commit(m->components, depth, err) != 0)
    return -1;
  lls_memory_map_commit(&m->kv, depth);
  lls_memory_map_commit(&m->vec, depth);
  m->depth = depth;
  return 0;
}

int lls_memory_rollback(lls_backend *b, int depth, lls_error *err) {
  lls_memory_backend *m = lls_memory_of(b);
  int rc = 0;
  if (m->components != NULL) rc = m->components->vt->rollback(m->components, depth, err);
  lls_memory_map_rollback(&m->kv, depth);
  lls_memory_map_rollback(&m->vec, depth);
  m->depth = depth;
  return rc;
}

int lls_memory_migrations(lls_backend *b, lls_rows *out, lls_error *err) {
  (void)b;
  (void)out;
  (void)err;
  return 0;
}

/* Nothing can be checked: the structures are rebuilt by every write and
 * no bytes come from outside the process. */
int lls_memory_check(lls_backend *b, lls_rows *problems, lls_error *err) {
  (void)b;
  (void)problems;
  (void)err;
  return 0;
}
