/*
 * state.h -- the in-memory state of an open vector collection (state.c):
 * its entries, scopes and HNSW graph, and keeping them in step with the
 * backend's rows. The query planner (search.h) and the Lua API
 * (lua/collection*.c) build on it. No Lua here.
 */
#ifndef LLS_COLLECTION_STATE_H
#define LLS_COLLECTION_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/hashidx.h"
#include "value/value.h"
#include "vector/hnsw.h"

typedef struct entry {
  char *id; /* NULL: the slot holds no entry */
  size_t idlen;
  uint32_t scope;   /* index into coll.scopes */
  lls_value *meta;  /* an object; NULL only for snapshot slots not yet confirmed */
  size_t meta_len;  /* bytes of its JSON text */
  int64_t created_at, updated_at, event_time, expires_at; /* µs; expires 0 = never */
  int has_event_time;
} entry;

typedef struct scope_stat {
  char *name;
  size_t len;
  int64_t count, bytes;
} scope_stat;

typedef struct coll {
  lls_coll_info info;
  hnsw_index *ix;
  entry *entries; /* by slot */
  size_t nentries;
  lls_hidx ids; /* id -> slot + 1 */
  scope_stat *scopes;
  size_t nscopes, scap;
  lls_hidx scope_ids; /* name -> scope index + 1 */
  int64_t seq;        /* the backend seq memory reflects */
  int64_t snap_seq;   /* seq of the snapshot loaded or saved last (-1: none) */
  int64_t expiring;   /* entries with an expiry */
  int from_snapshot;  /* this load started from a snapshot */
  int rebuilt;        /* a snapshot existed but was unusable */
  int stale;          /* reload before next use (after a rollback) */
  int64_t loads;      /* full loads so far (the first one included) */
  int64_t catch_ups;  /* incremental replays of other handles' writes */
  int threads;
  char snapshot_error[160];
} coll;

static inline int coll_expired(const entry *e, int64_t now) {
  return e->expires_at != 0 && e->expires_at <= now;
}

static inline size_t coll_vector_bytes(const coll *c) { return (size_t)c->info.dimension * 4; }

/* Slot of id, or -1. */
int64_t coll_find_slot(const coll *c, const char *id, size_t len);
/* Index of an existing scope name, or -1. */
int64_t coll_scope_lookup(const coll *c, const char *name, size_t len);
/* Entries that exist and have not expired. */
int64_t coll_live_count(const coll *c, int64_t now);
/* Removes the entry in slot from the graph and the maps. */
void coll_remove(coll *c, uint32_t slot);
/* Frees c and everything it holds; NULL is a no-op. */
void coll_free(coll *c);

/* Empties the state and starts a fresh graph. 0 or -1 + err. */
int coll_reset(coll *c, lls_error *err);

/* Applies rows just written to the backend (batched graph inserts for
 * large writes). On failure the caller marks the collection stale. */
int coll_apply_rows(coll *c, const lls_vec_row *rows, size_t n, lls_error *err);

/* Loads the collection from b: snapshot first when there is one, then the
 * rows over it, then whatever was written meanwhile. */
int coll_load(lls_backend *b, coll *c, lls_error *err);

/* Replays what other handles wrote since c->seq (reloads when the backend
 * no longer has that history). */
int coll_catch_up(lls_backend *b, coll *c, lls_error *err);

/* Bookkeeping after this handle's own write returned seq: one step past
 * `before` means nobody else wrote in between; else catch up. Only for a
 * write that changed something: a write that changed nothing (a delete
 * that removed no row) returns the backend's current seq, which another
 * handle's write may have moved one step past `before`; counting that as
 * seen would skip that write for good. */
void coll_after_write(lls_backend *b, coll *c, int64_t before, int64_t seq);

/* Stores a snapshot when the collection changed since the last one, the
 * backend keeps snapshots and no transaction is open (in_txn: a rollback
 * would take the snapshot with it). */
int coll_save_snapshot(lls_backend *b, coll *c, int in_txn, lls_error *err);

#endif
