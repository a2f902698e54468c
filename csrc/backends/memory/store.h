/*
 * backends/memory/store.h -- the memory backend's handle: two ordered key
 * maps (backends/memory/map.h) that follow the same transactions.
 *
 * A memory store belongs to the handle that opened it; rows still carry
 * the handle's tenant so exports say whose data it is. The op tables live
 * beside this file: kv.c, vectors.c and xport.c; components.c holds the
 * components' private SQLite store; store.c has open, close and
 * transactions.
 */
#ifndef LLS_BACKENDS_MEMORY_STORE_H
#define LLS_BACKENDS_MEMORY_STORE_H

#include <stdint.h>

#include "backend/backend.h"
#include "backends/memory/map.h"

typedef struct lls_memory_backend {
  lls_backend base;
  char *tenant;
  lls_memory_map kv; /* key-value rows */
  /* Vector collections live in a second map of the same kind (records
   * under prefixed keys, see backends/memory/vectors.h), as do export
   * sections (xport.c), so they share the undo log machinery and follow
   * the same transactions. */
  lls_memory_map vec;
  int64_t next_coll_id;
  int depth;          /* open transaction levels */
  /* The components' store (sessions, artifacts, ...): a private
   * ":memory:" SQLite backend, opened on first use (components.c). NULL
   * until then. */
  lls_backend *components;
} lls_memory_backend;

static inline lls_memory_backend *lls_memory_of(lls_backend *b) {
  return (lls_memory_backend *)b;
}


/* The handle's slots of lls_memory_vt (see backend/backend.h for each
 * one's contract). */
lls_backend *lls_memory_open(lls_config *cfg, lls_error *err);
void lls_memory_close(lls_backend *b);
const char *lls_memory_location(lls_backend *b);
int lls_memory_begin(lls_backend *b, int depth, lls_error *err);
int lls_memory_commit(lls_backend *b, int depth, lls_error *err);
int lls_memory_rollback(lls_backend *b, int depth, lls_error *err);
int lls_memory_migrations(lls_backend *b, lls_rows *out, lls_error *err);
int lls_memory_check(lls_backend *b, lls_rows *problems, lls_error *err);

#endif
