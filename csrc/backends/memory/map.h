/*
 * backends/memory/map.h -- the memory backend's ordered key map, with its
 * TTL heap and its undo log. The backend keeps two: one for key-value rows,
 * one for collections and export sections (backends/memory/store.h).
 *
 * Each node sits in three structures at once:
 *   - an open-addressing hash index (hashidx.c), so get/set/delete are
 *     O(1) on average;
 *   - a skip list ordered by key bytes, so a prefix scan costs
 *     O(log n + matches) instead of a walk over every key;
 *   - a min-heap on expires_at (only nodes with a TTL), so expired keys are
 *     swept from the top of the heap without looking at the others.
 *
 * Transactions and atomic batches keep an undo log of (old node, new node)
 * pairs. Replaced or deleted nodes are detached, not freed, until the
 * outermost commit; undoing a step frees the new node and relinks the old
 * one, which needs no allocation, so a rollback cannot fail half-way.
 *
 * Every function that can fail returns 0, or -1 with *err filled
 * (LLS_EIO "out of memory"), and then leaves the map as it was.
 */
#ifndef LLS_BACKENDS_MEMORY_MAP_H
#define LLS_BACKENDS_MEMORY_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "backend/kv.h"
#include "backend/xport.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/hashidx.h"

#define LLS_MEMORY_MAXLEVEL 32

typedef struct lls_memory_node {
  char *key; /* key, value, metadata and kv_id bytes, in that order, inside
                this same allocation right after next[]: one allocation per
                node, and the key shares a cache line with the header it is
                compared after */
  size_t klen, vlen;
  int64_t created_at, updated_at, expires_at;
  uint64_t hash;
  size_t heap_idx; /* position in the TTL heap when expires_at != 0 */
  int level;
  uint32_t mlen, ilen; /* metadata and kv_id (export/import only; usually 0) */
  struct lls_memory_node *next[]; /* skip list forward pointers, `level` of them */
} lls_memory_node;

typedef struct lls_memory_undo {
  lls_memory_node *old_node; /* detached by the step; relinked on undo */
  lls_memory_node *new_node; /* linked by the step; unlinked and freed on undo */
} lls_memory_undo;

typedef struct lls_memory_map {
  lls_hidx idx; /* key -> node */
  /* skip list */
  lls_memory_node *head; /* sentinel with LLS_MEMORY_MAXLEVEL pointers */
  int level;
  uint64_t rng;
  /* TTL heap */
  lls_memory_node **heap;
  size_t heap_len, heap_cap;
  /* figures over linked nodes, expired or not */
  int64_t count, bytes;
  /* undo log and savepoint marks */
  lls_memory_undo *log;
  size_t log_len, log_cap;
  size_t marks[64];
  int depth; /* open transaction levels */
} lls_memory_map;

static inline int lls_memory_visible(const lls_memory_node *n, int64_t now) {
  return n->expires_at == 0 || n->expires_at > now;
}

static inline lls_str lls_memory_node_key(const lls_memory_node *n) {
  lls_str s = {n->key, n->klen};
  return s;
}

static inline lls_str lls_memory_node_value(const lls_memory_node *n) {
  lls_str s = {n->key + n->klen, n->vlen};
  return s;
}

static inline lls_str lls_memory_node_meta(const lls_memory_node *n) {
  lls_str s = {n->key + n->klen + n->vlen, n->mlen};
  return s;
}

static inline lls_str lls_memory_node_kv_id(const lls_memory_node *n) {
  lls_str s = {n->key + n->klen + n->vlen + n->mlen, n->ilen};
  return s;
}

/* Makes m an empty map. 0, or -1 when out of memory (nothing to free
 * then). */
int lls_memory_map_init(lls_memory_map *m);

/* Rolls back any open transaction and frees every node and the map's own
 * memory. */
void lls_memory_map_free(lls_memory_map *m);

/* The node holding key (expired or not), or NULL. _hashed: with the key's
 * lls_hash_bytes already computed. */
lls_memory_node *lls_memory_map_find(const lls_memory_map *m, lls_str key);
lls_memory_node *lls_memory_map_find_hashed(const lls_memory_map *m, lls_str key,
                                            uint64_t hash);

/* The first node in key order, the first with key >= key, the first with
 * key > after (expired or not), or NULL; node->next[0] is the next one. */
lls_memory_node *lls_memory_map_first(const lls_memory_map *m);
lls_memory_node *lls_memory_map_lower_bound(const lls_memory_map *m, lls_str key);
lls_memory_node *lls_memory_map_after(const lls_memory_map *m, lls_str after);

/* Upserts one key; on failure nothing changed. A visible row keeps its
 * created_at, metadata and kv_id (the KV API does not show the last two,
 * so a set() must not lose them); an expired one counts as absent. */
int lls_memory_map_set(lls_memory_map *m, lls_str key, lls_str value, int64_t exp,
                       int64_t now, lls_error *err);

/* Writes rec as it is (times, metadata and kv_id included) in place of old,
 * the node lls_memory_map_find_hashed(m, rec->key, hash) returned (NULL
 * when absent), and logs the step. Metadata and kv_id must fit in 32-bit
 * lengths. */
int lls_memory_map_put(lls_memory_map *m, lls_memory_node *old, uint64_t hash,
                       const lls_kv_rec *rec, lls_error *err);

/* Removes key; *existed = 1 when a visible row was removed. */
int lls_memory_map_del(lls_memory_map *m, lls_str key, int64_t now, int *existed,
                       lls_error *err);

/* A batch of steps that must all happen or none (apply, an import's page):
 * batch_begin returns a mark and logs from then on, even outside a
 * transaction; batch_end undoes back to the mark when rc != 0, stops
 * logging, and returns rc. */
size_t lls_memory_map_batch_begin(lls_memory_map *m);
int lls_memory_map_batch_end(lls_memory_map *m, size_t mark, int rc);

/* The KV contract's apply (backend/kv.h) over this map. */
int lls_memory_map_apply(lls_memory_map *m, const lls_op *ops, size_t n, int64_t now,
                         size_t *deleted, lls_error *err);

/* The KV contract's scan (backend/kv.h) over this map. */
int lls_memory_map_scan(const lls_memory_map *m, lls_str prefix, lls_str after, int64_t now,
                        size_t limit, int keys_only, lls_rows *out, lls_error *err);

/* Removes every node (logged inside a transaction). */
int lls_memory_map_clear(lls_memory_map *m, lls_error *err);

/* Visible nodes, and the sum of their key and value lengths. */
void lls_memory_map_stats(const lls_memory_map *m, int64_t now, int64_t *keys,
                          int64_t *bytes);

/* Frees up to limit expired nodes, from the top of the TTL heap, and
 * returns how many; none inside a transaction (its undo log may hold
 * them). */
size_t lls_memory_map_sweep(lls_memory_map *m, int64_t now, size_t limit);

/* Transactions (backend.h's begin/commit/rollback at depth, which must be
 * below 64, the size of marks). */
void lls_memory_map_begin(lls_memory_map *m, int depth);
void lls_memory_map_commit(lls_memory_map *m, int depth);
void lls_memory_map_rollback(lls_memory_map *m, int depth);

/* Integers inside keys are big-endian, so keys sort by them (unsigned). */
void lls_memory_put_be64(char *p, int64_t v);
int64_t lls_memory_get_be64(const char *p);

#endif
