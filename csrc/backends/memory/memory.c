/*
 * kv_memory.c -- the in-memory backend.
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
 * A memory store belongs to the handle that opened it; rows still carry
 * the handle's tenant so exports say whose data it is.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/utf8.h"
#include "base/hashidx.h"

#define MAXLEVEL 32

typedef struct mnode {
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
  struct mnode *next[]; /* skip list forward pointers, `level` of them */
} mnode;

typedef struct undo {
  mnode *old_node; /* detached by the step; relinked on undo */
  mnode *new_node; /* linked by the step; unlinked and freed on undo */
} undo;

typedef struct mem_backend {
  lls_backend base;
  char *tenant;
  lls_hidx idx; /* key -> node */
  /* skip list */
  mnode *head; /* sentinel with MAXLEVEL pointers */
  int level;
  uint64_t rng;
  /* TTL heap */
  mnode **heap;
  size_t heap_len, heap_cap;
  /* figures over linked nodes, expired or not */
  int64_t count, bytes;
  /* undo log and savepoint marks */
  undo *log;
  size_t log_len, log_cap;
  size_t marks[64];
  int depth; /* open transaction levels */
  /* Vector collections live in a second store of the same kind (records
   * under prefixed keys, see "vector collections" below), so they share
   * the undo log machinery and follow the same transactions. */
  struct mem_backend *vec;
  int64_t next_coll_id;
} mem_backend;

/* ------------------------------------------------------------- hashing */

static int node_has_key(void *ud, uintptr_t val, const char *key, size_t klen) {
  (void)ud;
  const mnode *n = (const mnode *)val;
  return n->klen == klen && memcmp(n->key, key, klen) == 0;
}

static mnode *hash_find(const mem_backend *m, lls_str k, uint64_t h) {
  return (mnode *)lls_hidx_find(&m->idx, h, k.ptr, k.len, node_has_key, NULL);
}

static size_t hash_pos(const mem_backend *m, const mnode *n) {
  return lls_hidx_probe(&m->idx, n->hash, n->key, n->klen, node_has_key, NULL);
}

/* Room is reserved (hash_grow) before new keys are linked, and the index
 * never shrinks, so relinking during a rollback always fits. */
static void hash_link(mem_backend *m, mnode *n) {
  lls_hidx_put_at(&m->idx, hash_pos(m, n), n->hash, (uintptr_t)n);
}

/* Points key's entry at a replacement node with the same key. */
static void hash_replace(mem_backend *m, mnode *old, mnode *n) {
  m->idx.slots[hash_pos(m, old)].val = (uintptr_t)n;
}

static void hash_unlink(mem_backend *m, mnode *n) {
  lls_hidx_remove_at(&m->idx, hash_pos(m, n));
}

static int hash_grow(mem_backend *m, size_t extra) {
  return lls_hidx_reserve(&m->idx, extra);
}

/* ------------------------------------------------------------ skip list */

static int keycmp(const char *a, size_t alen, const char *b, size_t blen) {
  int c = memcmp(a, b, alen < blen ? alen : blen);
  if (c != 0) return c;
  return (alen > blen) - (alen < blen);
}

static int random_level(mem_backend *m) {
  /* xorshift64: per-store state, so no global RNG is shared across threads */
  uint64_t x = m->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  m->rng = x;
  int lvl = 1;
  while (lvl < MAXLEVEL && (x & 3) == 0) {
    lvl++;
    x >>= 2;
  }
  return lvl;
}

/* Fills update[] with the last node before key at every level. */
static void skip_find(mem_backend *m, const char *key, size_t klen, mnode **update) {
  mnode *x = m->head;
  for (int i = m->level - 1; i >= 0; i--) {
    while (x->next[i] && keycmp(x->next[i]->key, x->next[i]->klen, key, klen) < 0)
      x = x->next[i];
    update[i] = x;
  }
}

static void skip_link(mem_backend *m, mnode *n) {
  mnode *update[MAXLEVEL];
  skip_find(m, n->key, n->klen, update);
  if (n->level > m->level) {
    for (int i = m->level; i < n->level; i++) update[i] = m->head;
    m->level = n->level;
  }
  for (int i = 0; i < n->level; i++) {
    n->next[i] = update[i]->next[i];
    update[i]->next[i] = n;
  }
}

static void skip_unlink(mem_backend *m, mnode *n) {
  mnode *update[MAXLEVEL];
  skip_find(m, n->key, n->klen, update);
  for (int i = 0; i < n->level; i++)
    if (update[i]->next[i] == n) update[i]->next[i] = n->next[i];
  while (m->level > 1 && m->head->next[m->level - 1] == NULL) m->level--;
}

/* First node with key >= key. */
static mnode *skip_lower_bound(mem_backend *m, const char *key, size_t klen) {
  mnode *update[MAXLEVEL];
  skip_find(m, key, klen, update);
  return update[0]->next[0];
}

/* ----------------------------------------------------------- TTL heap */

static void heap_swap(mem_backend *m, size_t i, size_t j) {
  mnode *t = m->heap[i];
  m->heap[i] = m->heap[j];
  m->heap[j] = t;
  m->heap[i]->heap_idx = i;
  m->heap[j]->heap_idx = j;
}

static void heap_up(mem_backend *m, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (m->heap[p]->expires_at <= m->heap[i]->expires_at) break;
    heap_swap(m, i, p);
    i = p;
  }
}

static void heap_down(mem_backend *m, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, s = i;
    if (l < m->heap_len && m->heap[l]->expires_at < m->heap[s]->expires_at) s = l;
    if (r < m->heap_len && m->heap[r]->expires_at < m->heap[s]->expires_at) s = r;
    if (s == i) return;
    heap_swap(m, i, s);
    i = s;
  }
}

/* Makes room for one more heap entry. Called before a TTL node is created;
 * the capacity never shrinks, so relinking on rollback always fits. */
static int heap_reserve(mem_backend *m) {
  if (m->heap_len < m->heap_cap) return 0;
  size_t cap = m->heap_cap ? m->heap_cap * 2 : 64;
  mnode **h = realloc(m->heap, cap * sizeof *h);
  if (h == NULL) return -1;
  m->heap = h;
  m->heap_cap = cap;
  return 0;
}

static void heap_push(mem_backend *m, mnode *n) {
  n->heap_idx = m->heap_len;
  m->heap[m->heap_len++] = n;
  heap_up(m, n->heap_idx);
}

static void heap_remove(mem_backend *m, mnode *n) {
  size_t i = n->heap_idx;
  m->heap_len--;
  if (i == m->heap_len) return;
  m->heap[i] = m->heap[m->heap_len];
  m->heap[i]->heap_idx = i;
  heap_up(m, i);
  heap_down(m, m->heap[i]->heap_idx);
}

/* Counts heap entries already expired, visiting only those (the heap
 * property prunes every subtree whose root has not expired). */
static int64_t heap_count_expired(const mem_backend *m, size_t i, int64_t now,
                                  int64_t *bytes) {
  if (i >= m->heap_len || m->heap[i]->expires_at > now) return 0;
  *bytes += (int64_t)(m->heap[i]->klen + m->heap[i]->vlen);
  return 1 + heap_count_expired(m, 2 * i + 1, now, bytes) +
         heap_count_expired(m, 2 * i + 2, now, bytes);
}

/* ------------------------------------------------------------- nodes */

static int visible(const mnode *n, int64_t now) {
  return n->expires_at == 0 || n->expires_at > now;
}

static lls_str node_meta(const mnode *n) {
  lls_str s = {n->key + n->klen + n->vlen, n->mlen};
  return s;
}

static lls_str node_kv_id(const mnode *n) {
  lls_str s = {n->key + n->klen + n->vlen + n->mlen, n->ilen};
  return s;
}

/* A node of the given skip-list level holding copies of key, value,
 * metadata and kv_id (the last two fit in 32-bit lengths: checked by the
 * callers that take them from outside). */
static mnode *node_new(lls_str key, lls_str value, lls_str meta, lls_str kv_id,
                       uint64_t hash, int lvl) {
  size_t extra = key.len + value.len + meta.len + kv_id.len;
  mnode *n = malloc(sizeof *n + (size_t)lvl * sizeof(mnode *) + extra);
  if (n == NULL) return NULL;
  n->key = (char *)(n->next + lvl);
  char *p = n->key;
  if (key.len) memcpy(p, key.ptr, key.len);
  p += key.len;
  if (value.len) memcpy(p, value.ptr, value.len);
  p += value.len;
  if (meta.len) memcpy(p, meta.ptr, meta.len);
  p += meta.len;
  if (kv_id.len) memcpy(p, kv_id.ptr, kv_id.len);
  n->klen = key.len;
  n->vlen = value.len;
  n->mlen = (uint32_t)meta.len;
  n->ilen = (uint32_t)kv_id.len;
  n->level = lvl;
  n->hash = hash;
  return n;
}

static void node_free(mnode *n) { free(n); }

static void link_node(mem_backend *m, mnode *n) {
  hash_link(m, n);
  skip_link(m, n);
  if (n->expires_at != 0) heap_push(m, n);
  m->count++;
  m->bytes += (int64_t)(n->klen + n->vlen);
}

static void unlink_node(mem_backend *m, mnode *n) {
  hash_unlink(m, n);
  skip_unlink(m, n);
  if (n->expires_at != 0) heap_remove(m, n);
  m->count--;
  m->bytes -= (int64_t)(n->klen + n->vlen);
}

/* Puts n (same key, same level) where old was, in one skip-list descent
 * instead of an unlink and a link. */
static void replace_node(mem_backend *m, mnode *old, mnode *n) {
  mnode *update[MAXLEVEL];
  hash_replace(m, old, n);
  skip_find(m, old->key, old->klen, update);
  for (int i = 0; i < n->level; i++) {
    n->next[i] = old->next[i];
    update[i]->next[i] = n;
  }
  if (old->expires_at != 0 && n->expires_at != 0) {
    n->heap_idx = old->heap_idx;
    m->heap[n->heap_idx] = n;
    heap_up(m, n->heap_idx);
    heap_down(m, n->heap_idx);
  } else if (old->expires_at != 0) {
    heap_remove(m, old);
  } else if (n->expires_at != 0) {
    heap_push(m, n);
  }
  m->bytes += (int64_t)n->vlen - (int64_t)old->vlen;
}

/* ---------------------------------------------------------- undo log */

static int logging(const mem_backend *m) { return m->depth > 0; }

static int log_reserve(mem_backend *m, size_t extra) {
  if (m->log_cap - m->log_len >= extra) return 0;
  size_t cap = m->log_cap ? m->log_cap : 64;
  while (cap - m->log_len < extra) cap *= 2;
  undo *p = realloc(m->log, cap * sizeof *p);
  if (p == NULL) return -1;
  m->log = p;
  m->log_cap = cap;
  return 0;
}

/* Records a step (log space was reserved by the caller) or, outside any
 * transaction, frees the detached node at once. */
static void record(mem_backend *m, mnode *old_node, mnode *new_node) {
  if (logging(m)) {
    m->log[m->log_len].old_node = old_node;
    m->log[m->log_len].new_node = new_node;
    m->log_len++;
  } else {
    node_free(old_node);
  }
}

static void undo_to(mem_backend *m, size_t mark) {
  while (m->log_len > mark) {
    undo *u = &m->log[--m->log_len];
    if (u->new_node) {
      unlink_node(m, u->new_node);
      node_free(u->new_node);
    }
    if (u->old_node) link_node(m, u->old_node);
  }
}

/* Frees nodes the log kept alive only for a rollback that will not come. */
static void forget_log(mem_backend *m) {
  for (size_t i = 0; i < m->log_len; i++) node_free(m->log[i].old_node);
  m->log_len = 0;
}

/* --------------------------------------------------------- operations */

static int oom(lls_error *err) { return lls_error_set(err, LLS_EIO, "out of memory"); }

/* Links n in place of old (same key; NULL when absent) and logs the step;
 * the caller reserved log, hash and heap room, so this cannot fail. */
static void put_node(mem_backend *m, mnode *old, mnode *n) {
  if (old)
    replace_node(m, old, n);
  else
    link_node(m, n);
  record(m, old, n);
}

static int reserve_put(mem_backend *m, int64_t exp) {
  if (log_reserve(m, 1) != 0 || hash_grow(m, 1) != 0) return -1;
  return exp != 0 ? heap_reserve(m) : 0;
}

/* Upserts one key; on failure nothing changed. A visible row keeps its
 * created_at, metadata and kv_id (the KV API does not show the last two,
 * so a set() must not lose them); an expired one counts as absent. */
static int do_set(mem_backend *m, lls_str key, lls_str value, int64_t exp, int64_t now,
                  lls_error *err) {
  if (reserve_put(m, exp) != 0) return oom(err);
  uint64_t h = lls_hash_bytes(key.ptr, key.len);
  mnode *old = hash_find(m, key, h);
  int keep = old != NULL && visible(old, now);
  lls_str none = {NULL, 0};
  mnode *n = node_new(key, value, keep ? node_meta(old) : none, keep ? node_kv_id(old) : none,
                      h, old ? old->level : random_level(m));
  if (n == NULL) return oom(err);
  n->created_at = keep ? old->created_at : now;
  n->updated_at = now;
  n->expires_at = exp;
  put_node(m, old, n);
  return 0;
}

static int do_del(mem_backend *m, lls_str key, int64_t now, int *existed, lls_error *err) {
  *existed = 0;
  mnode *old = hash_find(m, key, lls_hash_bytes(key.ptr, key.len));
  if (old == NULL) return 0;
  if (log_reserve(m, 1) != 0) return oom(err);
  *existed = visible(old, now);
  unlink_node(m, old);
  record(m, old, NULL);
  return 0;
}

/* --------------------------------------------------------- the vtable */

static void mem_close(lls_backend *b);

static mem_backend *mem_new(const char *tenant) {
  mem_backend *m = calloc(1, sizeof *m);
  if (m == NULL) return NULL;
  m->base.vt = &lls_memory_vt;
  int idx_failed = lls_hidx_reserve(&m->idx, 32);
  m->head = calloc(1, sizeof *m->head + MAXLEVEL * sizeof(mnode *));
  m->tenant = malloc(strlen(tenant) + 1);
  if (idx_failed || m->head == NULL || m->tenant == NULL) {
    lls_hidx_free(&m->idx);
    free(m->head);
    free(m->tenant);
    free(m);
    return NULL;
  }
  strcpy(m->tenant, tenant);
  m->head->level = MAXLEVEL;
  m->level = 1;
  m->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)m;
  return m;
}

static lls_backend *mem_open(lls_config *cfg, lls_error *err) {
  mem_backend *m = mem_new(cfg->tenant);
  if (m != NULL) m->vec = mem_new(cfg->tenant);
  if (m == NULL || m->vec == NULL) {
    if (m) mem_close(&m->base);
    return oom(err), NULL;
  }
  m->base.ephemeral = 1;
  return &m->base;
}

static void mem_close(lls_backend *b) {
  mem_backend *m = (mem_backend *)b;
  if (m->vec) mem_close(&m->vec->base);
  undo_to(m, 0);
  mnode *n = m->head->next[0];
  while (n) {
    mnode *next = n->next[0];
    node_free(n);
    n = next;
  }
  free(m->head);
  lls_hidx_free(&m->idx);
  free(m->heap);
  free(m->log);
  free(m->tenant);
  free(m);
}

static const char *mem_location(lls_backend *b) {
  (void)b;
  return "in-process";
}

static int mem_get(lls_backend *b, lls_str key, int64_t now, lls_str *out, int *found,
                   lls_error *err) {
  (void)err;
  mem_backend *m = (mem_backend *)b;
  mnode *n = hash_find(m, key, lls_hash_bytes(key.ptr, key.len));
  *found = n != NULL && visible(n, now);
  if (*found) {
    out->ptr = n->key + n->klen;
    out->len = n->vlen;
  }
  return 0;
}

static int mem_set(lls_backend *b, lls_str key, lls_str value, int64_t exp, int64_t now,
                   lls_error *err) {
  return do_set((mem_backend *)b, key, value, exp, now, err);
}

static int mem_del(lls_backend *b, lls_str key, int64_t now, int *existed,
                   lls_error *err) {
  return do_del((mem_backend *)b, key, now, existed, err);
}

static int mem_apply(lls_backend *b, const lls_op *ops, size_t n, int64_t now,
                     size_t *deleted, lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  /* Log even outside a transaction, so a failure part-way can be undone. */
  size_t mark = m->log_len;
  m->depth++;
  *deleted = 0;
  for (size_t i = 0; i < n; i++) {
    int rc, existed = 0;
    if (ops[i].kind == LLS_OP_SET)
      rc = do_set(m, ops[i].key, ops[i].value, ops[i].expires_at, now, err);
    else
      rc = do_del(m, ops[i].key, now, &existed, err);
    if (rc != 0) {
      undo_to(m, mark);
      m->depth--;
      return -1;
    }
    *deleted += (size_t)existed;
  }
  m->depth--;
  if (!logging(m)) forget_log(m);
  return 0;
}

static int mem_get_many(lls_backend *b, const lls_str *keys, size_t n, int64_t now,
                        lls_rows *out, lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  for (size_t i = 0; i < n; i++) {
    mnode *x = hash_find(m, keys[i], lls_hash_bytes(keys[i].ptr, keys[i].len));
    if (x && visible(x, now) &&
        lls_rows_add(out, x->key, x->klen, x->key + x->klen, x->vlen) == NULL)
      return oom(err);
  }
  return 0;
}

static int mem_scan(lls_backend *b, lls_str prefix, lls_str after, int64_t now,
                    size_t limit, int keys_only, lls_rows *out, lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  mnode *x;
  if (after.ptr != NULL && keycmp(after.ptr, after.len, prefix.ptr, prefix.len) >= 0) {
    x = skip_lower_bound(m, after.ptr, after.len);
    if (x && x->klen == after.len && memcmp(x->key, after.ptr, after.len) == 0)
      x = x->next[0];
  } else {
    x = skip_lower_bound(m, prefix.ptr, prefix.len);
  }
  size_t got = 0;
  for (; x != NULL; x = x->next[0]) {
    lls_str k = {x->key, x->klen};
    if (!lls_has_prefix(k, prefix)) break;
    if (!visible(x, now)) continue;
    lls_row *r = lls_rows_add(out, x->key, x->klen, x->key + x->klen,
                              keys_only ? 0 : x->vlen);
    if (r == NULL) return oom(err);
    r->created_at = x->created_at;
    r->updated_at = x->updated_at;
    r->expires_at = x->expires_at;
    if (limit && ++got == limit) break;
  }
  return 0;
}

static int mem_clear(lls_backend *b, lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  if (logging(m) && log_reserve(m, (size_t)m->count) != 0) return oom(err);
  while (m->head->next[0]) {
    mnode *n = m->head->next[0];
    unlink_node(m, n);
    record(m, n, NULL);
  }
  return 0;
}

static int mem_stats(lls_backend *b, int64_t now, lls_kv_stats *out, lls_error *err) {
  (void)err;
  mem_backend *m = (mem_backend *)b;
  int64_t dead_bytes = 0;
  int64_t dead = heap_count_expired(m, 0, now, &dead_bytes);
  out->keys = m->count - dead;
  out->bytes = m->bytes - dead_bytes;
  return 0;
}

static int mem_sweep(lls_backend *b, int64_t now, size_t limit, size_t *removed,
                     lls_error *err) {
  (void)err;
  mem_backend *m = (mem_backend *)b;
  *removed = 0;
  if (logging(m)) return 0;
  while (m->heap_len > 0 && m->heap[0]->expires_at <= now && *removed < limit) {
    mnode *n = m->heap[0];
    unlink_node(m, n);
    node_free(n);
    (*removed)++;
  }
  return 0;
}

static void tx_begin(mem_backend *m, int depth) {
  m->marks[depth] = m->log_len;
  m->depth = depth + 1;
}

static void tx_commit(mem_backend *m, int depth) {
  m->depth = depth;
  if (depth == 0) forget_log(m);
}

static void tx_rollback(mem_backend *m, int depth) {
  undo_to(m, m->marks[depth]);
  m->depth = depth;
}

/* Transactions cover both stores: key-value rows and collections. */
static int mem_begin(lls_backend *b, int depth, lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  if (depth >= (int)(sizeof m->marks / sizeof m->marks[0]))
    return lls_error_set(err, LLS_EINVALID, "transactions nested too deeply (%d)", depth);
  tx_begin(m, depth);
  tx_begin(m->vec, depth);
  return 0;
}

static int mem_commit(lls_backend *b, int depth, lls_error *err) {
  (void)err;
  mem_backend *m = (mem_backend *)b;
  tx_commit(m, depth);
  tx_commit(m->vec, depth);
  return 0;
}

static int mem_rollback(lls_backend *b, int depth, lls_error *err) {
  (void)err;
  mem_backend *m = (mem_backend *)b;
  tx_rollback(m, depth);
  tx_rollback(m->vec, depth);
  return 0;
}

static int mem_migrations(lls_backend *b, lls_rows *out, lls_error *err) {
  (void)b;
  (void)out;
  (void)err;
  return 0;
}

/* ---------------------------------------------------- vector collections */

/* Records in the m->vec store, all under one-byte prefixes:
 *   "N" name               -> collection id (8 bytes)
 *   "I" id (8 bytes, BE)   -> lls_coll_info
 *   "R" id (8 bytes, BE) row id -> packed row (row_head, scope, metadata,
 *                                   vector)
 * Big-endian ids keep one collection's rows together in key order. A
 * memory store belongs to one handle, so no other handle ever needs the
 * change history: vec_load(since > 0) answers LLS_EVERSION and the caller
 * reloads; snapshots are not kept (the graph is rebuilt on reopen, which
 * for a store that dies with its handle means never). */

typedef struct row_head {
  int64_t created_at, updated_at, event_time, expires_at, seq;
  int32_t has_event_time;
  uint32_t scope_len, meta_len, vec_len;
} row_head;

static void put_be64(char *p, int64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (char)(v & 0xFF);
    v = (int64_t)((uint64_t)v >> 8);
  }
}

/* Builds "<tag><id BE>[suffix]" in out. */
static int vkey(lls_buf *out, char tag, int64_t id, lls_str suffix) {
  char head[9];
  head[0] = tag;
  put_be64(head + 1, id);
  out->len = 0;
  return lls_buf_append(out, head, 9) != 0 || lls_buf_append(out, suffix.ptr, suffix.len) != 0
             ? -1
             : 0;
}

static int name_key(lls_buf *out, const char *name) {
  out->len = 0;
  return lls_buf_append(out, "N", 1) != 0 || lls_buf_append(out, name, strlen(name)) != 0
             ? -1
             : 0;
}

static const lls_str NO_SUFFIX = {"", 0};

/* The collection record for id; *found = 0 when absent. */
static int get_info(mem_backend *v, int64_t id, lls_coll_info *out, int *found,
                    lls_error *err) {
  lls_buf k = {0};
  if (vkey(&k, 'I', id, NO_SUFFIX) != 0) return lls_buf_free(&k), oom(err);
  lls_str key = {k.data, k.len};
  mnode *n = hash_find(v, key, lls_hash_bytes(key.ptr, key.len));
  lls_buf_free(&k);
  *found = n != NULL;
  if (n) memcpy(out, n->key + n->klen, sizeof *out);
  return 0;
}

static int mem_coll_get(lls_backend *b, const char *name, lls_coll_info *out, int *found,
                        lls_error *err) {
  mem_backend *v = ((mem_backend *)b)->vec;
  lls_buf k = {0};
  if (name_key(&k, name) != 0) return lls_buf_free(&k), oom(err);
  lls_str key = {k.data, k.len};
  mnode *n = hash_find(v, key, lls_hash_bytes(key.ptr, key.len));
  lls_buf_free(&k);
  *found = 0;
  if (n == NULL) return 0;
  int64_t id;
  memcpy(&id, n->key + n->klen, 8);
  return get_info(v, id, out, found, err);
}

static int mem_coll_create(lls_backend *b, lls_coll_info *info, int64_t now, lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  lls_coll_info existing;
  int found;
  if (mem_coll_get(b, info->name, &existing, &found, err) != 0) return -1;
  if (found)
    return lls_error_set(err, LLS_ECONFLICT, "collection '%s' already exists", info->name);
  info->id = ++m->next_coll_id;
  info->created_at = now;
  info->seq = 0;
  info->count = 0;
  lls_buf nk = {0}, ik = {0};
  lls_op ops[2];
  size_t deleted;
  int rc = -1;
  if (name_key(&nk, info->name) == 0 && vkey(&ik, 'I', info->id, NO_SUFFIX) == 0) {
    ops[0] = (lls_op){LLS_OP_SET, {nk.data, nk.len}, {(const char *)&info->id, 8}, 0};
    ops[1] = (lls_op){LLS_OP_SET, {ik.data, ik.len}, {(const char *)info, sizeof *info}, 0};
    rc = mem_apply(&m->vec->base, ops, 2, now, &deleted, err);
  } else {
    oom(err);
  }
  lls_buf_free(&nk);
  lls_buf_free(&ik);
  return rc;
}

static int mem_coll_list(lls_backend *b, lls_str prefix, lls_coll_sink sink, void *ud,
                         lls_error *err) {
  mem_backend *v = ((mem_backend *)b)->vec;
  lls_buf k = {0};
  lls_rows rows = {0};
  lls_str none = {NULL, 0};
  int rc = -1;
  if (lls_buf_append(&k, "N", 1) != 0 || lls_buf_append(&k, prefix.ptr, prefix.len) != 0) {
    oom(err);
    goto done;
  }
  lls_str p = {k.data, k.len};
  if (mem_scan(&v->base, p, none, 0, 0, 0, &rows, err) != 0) goto done;
  rc = 0;
  for (size_t i = 0; i < rows.count && rc == 0; i++) {
    lls_coll_info info;
    int found;
    int64_t id;
    memcpy(&id, lls_row_value(&rows, i).ptr, 8);
    rc = get_info(v, id, &info, &found, err);
    if (rc == 0 && found) rc = sink(ud, &info, err);
  }
done:
  lls_buf_free(&k);
  lls_rows_free(&rows);
  return rc;
}

/* Rows of collection id ("R" id ...), copied into rows. */
static int scan_rows(mem_backend *v, int64_t id, lls_rows *rows, lls_error *err) {
  lls_buf k = {0};
  lls_str none = {NULL, 0};
  if (vkey(&k, 'R', id, NO_SUFFIX) != 0) return lls_buf_free(&k), oom(err);
  lls_str p = {k.data, k.len};
  int rc = mem_scan(&v->base, p, none, 0, 0, 0, rows, err);
  lls_buf_free(&k);
  return rc;
}

static int mem_coll_drop(lls_backend *b, const char *name, int *dropped, lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  lls_coll_info info;
  if (mem_coll_get(b, name, &info, dropped, err) != 0 || !*dropped) return *dropped ? -1 : 0;
  lls_rows rows = {0};
  lls_buf nk = {0}, ik = {0};
  lls_op *ops = NULL;
  size_t deleted;
  int rc = scan_rows(m->vec, info.id, &rows, err);
  if (rc == 0) {
    ops = malloc((rows.count + 2) * sizeof *ops);
    if (ops == NULL || name_key(&nk, name) != 0 || vkey(&ik, 'I', info.id, NO_SUFFIX) != 0)
      rc = oom(err);
  }
  if (rc == 0) {
    for (size_t i = 0; i < rows.count; i++)
      ops[i] = (lls_op){LLS_OP_DELETE, lls_row_key(&rows, i), {NULL, 0}, 0};
    ops[rows.count] = (lls_op){LLS_OP_DELETE, {nk.data, nk.len}, {NULL, 0}, 0};
    ops[rows.count + 1] = (lls_op){LLS_OP_DELETE, {ik.data, ik.len}, {NULL, 0}, 0};
    rc = mem_apply(&m->vec->base, ops, rows.count + 2, 0, &deleted, err);
  }
  free(ops);
  lls_rows_free(&rows);
  lls_buf_free(&nk);
  lls_buf_free(&ik);
  return rc;
}

static int mem_coll_seq(lls_backend *b, int64_t id, int64_t *seq, int64_t *count,
                        lls_error *err) {
  lls_coll_info info;
  int found;
  if (get_info(((mem_backend *)b)->vec, id, &info, &found, err) != 0) return -1;
  if (!found) return lls_error_set(err, LLS_ENOTFOUND, "no collection with id %lld",
                                   (long long)id);
  *seq = info.seq;
  *count = info.count;
  return 0;
}

/* Ops for a write: the caller fills ops[0..n) (rows), this adds the
 * updated collection record and applies them all at once. */
static int write_rows(mem_backend *m, lls_coll_info *info, lls_op *ops, size_t n,
                      lls_error *err) {
  lls_buf ik = {0};
  size_t deleted;
  if (vkey(&ik, 'I', info->id, NO_SUFFIX) != 0) return lls_buf_free(&ik), oom(err);
  ops[n] = (lls_op){LLS_OP_SET, {ik.data, ik.len}, {(const char *)info, sizeof *info}, 0};
  int rc = mem_apply(&m->vec->base, ops, n + 1, 0, &deleted, err);
  lls_buf_free(&ik);
  return rc;
}

static int row_exists(mem_backend *v, lls_buf *k, int64_t id, lls_str rid, int *exists,
                      lls_error *err) {
  if (vkey(k, 'R', id, rid) != 0) return oom(err);
  lls_str key = {k->data, k->len};
  *exists = hash_find(v, key, lls_hash_bytes(key.ptr, key.len)) != NULL;
  return 0;
}

static int mem_vec_put(lls_backend *b, int64_t id, const lls_vec_row *rows, size_t n,
                       int insert_only, int64_t *seq, lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  lls_coll_info info;
  int found;
  if (get_info(m->vec, id, &info, &found, err) != 0) return -1;
  if (!found) return lls_error_set(err, LLS_ENOTFOUND, "no collection with id %lld",
                                   (long long)id);
  /* Keys and packed rows go in one buffer; offsets become pointers after. */
  lls_buf buf = {0}, k = {0};
  size_t *offs = malloc((2 * n + 1) * sizeof *offs);
  lls_op *ops = malloc((n + 1) * sizeof *ops);
  int rc = (offs == NULL || ops == NULL) ? oom(err) : 0;
  int64_t added = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const lls_vec_row *r = &rows[i];
    int exists = 0;
    rc = row_exists(m->vec, &k, id, r->id, &exists, err);
    if (rc != 0) break;
    if (exists && insert_only) {
      rc = lls_error_set(err, LLS_ECONFLICT, "id '%.*s' already exists", (int)r->id.len,
                         r->id.ptr);
      break;
    }
    added += !exists;
    row_head hd = {r->created_at, r->updated_at, r->event_time, r->expires_at, info.seq + 1,
                   r->has_event_time, (uint32_t)r->scope.len, (uint32_t)r->metadata.len,
                   (uint32_t)r->vector.len};
    offs[2 * i] = buf.len;
    if (lls_buf_append(&buf, k.data, k.len) != 0) rc = oom(err);
    offs[2 * i + 1] = buf.len;
    if (rc == 0 && (lls_buf_append(&buf, &hd, sizeof hd) != 0 ||
                    lls_buf_append(&buf, r->scope.ptr, r->scope.len) != 0 ||
                    lls_buf_append(&buf, r->metadata.ptr, r->metadata.len) != 0 ||
                    lls_buf_append(&buf, r->vector.ptr, r->vector.len) != 0))
      rc = oom(err);
  }
  if (rc == 0) {
    for (size_t i = 0; i < n; i++) {
      size_t kend = offs[2 * i + 1];
      size_t vend = i + 1 < n ? offs[2 * i + 2] : buf.len;
      ops[i] = (lls_op){LLS_OP_SET,
                        {buf.data + offs[2 * i], kend - offs[2 * i]},
                        {buf.data + kend, vend - kend},
                        0};
    }
    info.seq++;
    info.count += added;
    rc = write_rows(m, &info, ops, n, err);
    if (rc == 0) *seq = info.seq;
  }
  free(offs);
  free(ops);
  lls_buf_free(&buf);
  lls_buf_free(&k);
  return rc;
}

static int mem_vec_delete(lls_backend *b, int64_t id, const lls_str *ids, size_t n,
                          size_t *deleted, int64_t *seq, lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  lls_coll_info info;
  int found;
  if (get_info(m->vec, id, &info, &found, err) != 0) return -1;
  if (!found) return lls_error_set(err, LLS_ENOTFOUND, "no collection with id %lld",
                                   (long long)id);
  lls_buf buf = {0}, k = {0};
  size_t *offs = malloc((n + 1) * sizeof *offs), *lens = malloc((n + 1) * sizeof *lens);
  lls_op *ops = malloc((n + 1) * sizeof *ops);
  int rc = (offs == NULL || lens == NULL || ops == NULL) ? oom(err) : 0;
  size_t count = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    int exists = 0;
    rc = row_exists(m->vec, &k, id, ids[i], &exists, err);
    if (rc != 0 || !exists) continue;
    /* the same id twice deletes once */
    int dup = 0;
    for (size_t j = 0; j < count && !dup; j++)
      dup = lens[j] == k.len && memcmp(buf.data + offs[j], k.data, k.len) == 0;
    if (dup) continue;
    offs[count] = buf.len;
    lens[count] = k.len;
    if (lls_buf_append(&buf, k.data, k.len) != 0) rc = oom(err);
    count++;
  }
  *deleted = 0;
  *seq = info.seq;
  if (rc == 0 && count > 0) {
    for (size_t i = 0; i < count; i++)
      ops[i] = (lls_op){LLS_OP_DELETE, {buf.data + offs[i], lens[i]}, {NULL, 0}, 0};
    info.seq++;
    info.count -= (int64_t)count;
    rc = write_rows(m, &info, ops, count, err);
    if (rc == 0) {
      *deleted = count;
      *seq = info.seq;
    }
  }
  free(offs);
  free(lens);
  free(ops);
  lls_buf_free(&buf);
  lls_buf_free(&k);
  return rc;
}

/* A row record ("R" id row-id -> packed row) as an lls_vec_row borrowing
 * the record's bytes. */
static void unpack_row(lls_str k, lls_str v, lls_vec_row *r) {
  row_head hd;
  memcpy(&hd, v.ptr, sizeof hd);
  const char *p = v.ptr + sizeof hd;
  r->id.ptr = k.ptr + 9;
  r->id.len = k.len - 9;
  r->scope.ptr = p;
  r->scope.len = hd.scope_len;
  r->metadata.ptr = p + hd.scope_len;
  r->metadata.len = hd.meta_len;
  r->vector.ptr = p + hd.scope_len + hd.meta_len;
  r->vector.len = hd.vec_len;
  r->created_at = hd.created_at;
  r->updated_at = hd.updated_at;
  r->event_time = hd.event_time;
  r->has_event_time = hd.has_event_time;
  r->expires_at = hd.expires_at;
  r->seq = hd.seq;
  r->deleted = 0;
}

static int mem_vec_load(lls_backend *b, int64_t id, int64_t since, lls_vec_sink sink,
                        void *ud, lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  if (since > 0)
    return lls_error_set(err, LLS_EVERSION, "memory collections keep no change history");
  lls_rows rows = {0};
  int rc = scan_rows(m->vec, id, &rows, err);
  for (size_t i = 0; i < rows.count && rc == 0; i++) {
    lls_vec_row r;
    unpack_row(lls_row_key(&rows, i), lls_row_value(&rows, i), &r);
    rc = sink(ud, &r, err);
  }
  lls_rows_free(&rows);
  return rc;
}

/* -------------------------------------------------------- export/import */

/* Key-value records carry metadata and kv_id in their node (node_new).
 * Passthrough section records live in the m->vec store, so transactions
 * cover them like collections:
 *   "S" section 0x00 ord (8 bytes, BE, sign bit flipped) -> JSON text
 * The NUL ends the section name (names with NUL are refused), so every
 * record of section "a" sorts before those of "ab"; flipping the sign bit
 * makes ord -1 sort before 0. */

/* Ids and keys can be long; messages quote at most this many bytes. */
#define QUOTE_MAX 200
#define QUOTE_LEN(s) ((int)((s).len > QUOTE_MAX ? QUOTE_MAX : (s).len))

#define ORD_FLIP ((uint64_t)1 << 63)

static int64_t get_be64(const char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | (unsigned char)p[i];
  return (int64_t)v;
}

/* First node with key > after. */
static mnode *node_after(mem_backend *m, lls_str after) {
  mnode *x = skip_lower_bound(m, after.ptr, after.len);
  if (x && x->klen == after.len && memcmp(x->key, after.ptr, after.len) == 0) x = x->next[0];
  return x;
}

/* A sink that stopped a stream without saying why gets a generic error. */
static int sink_stopped(lls_error *err) {
  if (err->code == LLS_OK || err->message[0] == '\0')
    lls_error_set(err, LLS_EIO, "the consumer stopped the stream");
  return -1;
}

static int mem_kv_dump(lls_backend *b, lls_str after, int64_t now, size_t limit,
                       lls_rows *out, lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  mnode *x = after.ptr != NULL ? node_after(m, after) : m->head->next[0];
  size_t got = 0;
  for (; x != NULL && (limit == 0 || got < limit); x = x->next[0]) {
    if (!visible(x, now)) continue;
    lls_str k = {x->key, x->klen}, v = {x->key + x->klen, x->vlen};
    lls_row *r = lls_rows_add_ext(out, k, v, node_meta(x), node_kv_id(x));
    if (r == NULL) return oom(err);
    r->created_at = x->created_at;
    r->updated_at = x->updated_at;
    r->expires_at = x->expires_at;
    got++;
  }
  return 0;
}

/* Records are resolved one after another (a key repeated in recs meets the
 * copy written before it), logged like apply() so that any failure,
 * LLS_CONFLICT_ERROR's included, leaves the store as it was. */
static int mem_kv_load(lls_backend *b, const lls_kv_rec *recs, size_t n,
                       lls_conflict on_conflict, int64_t now, size_t *written,
                       lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  size_t mark = m->log_len, count = 0;
  int rc = 0;
  m->depth++;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const lls_kv_rec *r = &recs[i];
    if (r->metadata.len > UINT32_MAX || r->kv_id.len > UINT32_MAX) {
      rc = lls_error_set(err, LLS_EINVALID, "key '%.*s': metadata or kv_id too long",
                         QUOTE_LEN(r->key), r->key.ptr);
      break;
    }
    uint64_t h = lls_hash_bytes(r->key.ptr, r->key.len);
    mnode *old = hash_find(m, r->key, h);
    if (old != NULL && visible(old, now)) {
      if (on_conflict == LLS_CONFLICT_SKIP) continue;
      if (on_conflict == LLS_CONFLICT_ERROR) {
        rc = lls_error_set(err, LLS_ECONFLICT, "key '%.*s' already exists",
                           QUOTE_LEN(r->key), r->key.ptr);
        break;
      }
    }
    mnode *nd = NULL;
    if (reserve_put(m, r->expires_at) == 0)
      nd = node_new(r->key, r->value, r->metadata, r->kv_id, h,
                    old ? old->level : random_level(m));
    if (nd == NULL) {
      rc = oom(err);
      break;
    }
    nd->created_at = r->created_at;
    nd->updated_at = r->updated_at;
    nd->expires_at = r->expires_at;
    put_node(m, old, nd);
    count++;
  }
  if (rc != 0) undo_to(m, mark);
  m->depth--;
  if (!logging(m)) forget_log(m);
  if (rc == 0) *written = count;
  return rc;
}

static int no_collection(int64_t id, lls_error *err) {
  return lls_error_set(err, LLS_ENOTFOUND, "no collection with id %lld", (long long)id);
}

/* Walks the collection's "R" records from just past after_id; the sink
 * sees records in place (it must not call back, so none can move). */
static int mem_vec_dump(lls_backend *b, int64_t id, lls_str after_id, size_t limit,
                        lls_vec_sink sink, void *ud, lls_error *err) {
  mem_backend *v = ((mem_backend *)b)->vec;
  lls_coll_info info;
  int found;
  if (get_info(v, id, &info, &found, err) != 0) return -1;
  if (!found) return no_collection(id, err);
  lls_buf k = {0};
  if (vkey(&k, 'R', id, after_id.ptr != NULL ? after_id : NO_SUFFIX) != 0)
    return lls_buf_free(&k), oom(err);
  lls_str prefix = {k.data, 9}, start = {k.data, k.len};
  mnode *x = after_id.ptr != NULL ? node_after(v, start) : skip_lower_bound(v, k.data, 9);
  int rc = 0;
  for (size_t got = 0; x != NULL && (limit == 0 || got < limit); x = x->next[0], got++) {
    lls_str key = {x->key, x->klen}, val = {x->key + x->klen, x->vlen};
    if (!lls_has_prefix(key, prefix)) break;
    lls_vec_row r;
    unpack_row(key, val, &r);
    if (sink(ud, &r, err) != 0) {
      rc = sink_stopped(err);
      break;
    }
  }
  lls_buf_free(&k);
  return rc;
}

static int mem_vec_has(lls_backend *b, int64_t id, const lls_str *ids, size_t n,
                       unsigned char *present, lls_error *err) {
  mem_backend *v = ((mem_backend *)b)->vec;
  lls_coll_info info;
  int found;
  if (get_info(v, id, &info, &found, err) != 0) return -1;
  if (!found) return no_collection(id, err);
  lls_buf k = {0};
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    int exists = 0;
    rc = row_exists(v, &k, id, ids[i], &exists, err);
    present[i] = (unsigned char)exists;
  }
  lls_buf_free(&k);
  return rc;
}

/* Appends "S" section 0x00 to out; with_ord: the flipped big-endian ord. */
static int sec_key(lls_buf *out, lls_str section, int with_ord, int64_t ord) {
  char tail[9] = {0};
  put_be64(tail + 1, (int64_t)((uint64_t)ord ^ ORD_FLIP));
  return lls_buf_append(out, "S", 1) != 0 ||
                 lls_buf_append(out, section.ptr, section.len) != 0 ||
                 lls_buf_append(out, tail, with_ord ? 9 : 1) != 0
             ? -1
             : 0;
}

static int bad_section(lls_str section, lls_error *err) {
  if (section.len == 0 || memchr(section.ptr, '\0', section.len) == NULL) return 0;
  return lls_error_set(err, LLS_EINVALID, "section name '%.*s' contains a NUL byte",
                       QUOTE_LEN(section), section.ptr);
}

static int mem_sec_put(lls_backend *b, const lls_str *sections, const int64_t *ords,
                       const lls_str *json, size_t n, lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  for (size_t i = 0; i < n; i++)
    if (bad_section(sections[i], err) != 0) return -1;
  /* Keys go in one buffer; offsets become pointers once it stops moving. */
  lls_buf keys = {0};
  size_t *offs = malloc((n + 1) * sizeof *offs);
  lls_op *ops = malloc((n + 1) * sizeof *ops);
  int rc = (offs == NULL || ops == NULL) ? oom(err) : 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    offs[i] = keys.len;
    if (sec_key(&keys, sections[i], 1, ords[i]) != 0) rc = oom(err);
  }
  if (rc == 0) {
    size_t deleted;
    for (size_t i = 0; i < n; i++) {
      size_t end = i + 1 < n ? offs[i + 1] : keys.len;
      ops[i] = (lls_op){LLS_OP_SET, {keys.data + offs[i], end - offs[i]}, json[i], 0};
    }
    rc = mem_apply(&m->vec->base, ops, n, 0, &deleted, err);
  }
  free(offs);
  free(ops);
  lls_buf_free(&keys);
  return rc;
}

static int mem_sec_dump(lls_backend *b, lls_str after_section, int64_t after_ord,
                        size_t limit, lls_rows *out, lls_error *err) {
  mem_backend *v = ((mem_backend *)b)->vec;
  mnode *x;
  if (after_section.ptr != NULL) {
    lls_buf k = {0};
    if (sec_key(&k, after_section, 1, after_ord) != 0) return lls_buf_free(&k), oom(err);
    lls_str start = {k.data, k.len};
    x = node_after(v, start);
    lls_buf_free(&k);
  } else {
    x = skip_lower_bound(v, "S", 1);
  }
  for (size_t got = 0; x != NULL && (limit == 0 || got < limit); x = x->next[0], got++) {
    if (x->klen < 10 || x->key[0] != 'S') break;
    lls_row *r = lls_rows_add(out, x->key + 1, x->klen - 10, x->key + x->klen, x->vlen);
    if (r == NULL) return oom(err);
    r->created_at = (int64_t)((uint64_t)get_be64(x->key + x->klen - 8) ^ ORD_FLIP);
  }
  return 0;
}

static int mem_sec_clear(lls_backend *b, lls_str section, lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  if (bad_section(section, err) != 0) return -1;
  lls_buf k = {0};
  lls_rows rows = {0};
  lls_op *ops = NULL;
  lls_str none = {NULL, 0};
  int rc = -1;
  if ((section.len ? sec_key(&k, section, 0, 0) : lls_buf_append(&k, "S", 1)) != 0) {
    oom(err);
    goto done;
  }
  lls_str prefix = {k.data, k.len};
  if (mem_scan(&m->vec->base, prefix, none, 0, 0, 1, &rows, err) != 0) goto done;
  if ((ops = malloc((rows.count + 1) * sizeof *ops)) == NULL) {
    oom(err);
    goto done;
  }
  for (size_t i = 0; i < rows.count; i++)
    ops[i] = (lls_op){LLS_OP_DELETE, lls_row_key(&rows, i), {NULL, 0}, 0};
  size_t deleted;
  rc = mem_apply(&m->vec->base, ops, rows.count, 0, &deleted, err);
done:
  free(ops);
  lls_rows_free(&rows);
  lls_buf_free(&k);
  return rc;
}

/* Nothing can be checked: the structures are rebuilt by every write and
 * no bytes come from outside the process. */
static int mem_check(lls_backend *b, lls_rows *problems, lls_error *err) {
  (void)b;
  (void)problems;
  (void)err;
  return 0;
}

static const lls_kv_ops memory_kv_ops = {
    .get = mem_get,
    .set = mem_set,
    .del = mem_del,
    .apply = mem_apply,
    .get_many = mem_get_many,
    .scan = mem_scan,
    .clear = mem_clear,
    .stats = mem_stats,
    .sweep = mem_sweep,
};

static const lls_vec_ops memory_vec_ops = {
    .coll_create = mem_coll_create,
    .coll_get = mem_coll_get,
    .coll_list = mem_coll_list,
    .coll_drop = mem_coll_drop,
    .coll_seq = mem_coll_seq,
    .put = mem_vec_put,
    .del = mem_vec_delete,
    .load = mem_vec_load,
};

static const lls_xport_ops memory_xport_ops = {
    .kv_dump = mem_kv_dump,
    .kv_load = mem_kv_load,
    .vec_dump = mem_vec_dump,
    .vec_has = mem_vec_has,
    .sec_put = mem_sec_put,
    .sec_dump = mem_sec_dump,
    .sec_clear = mem_sec_clear,
};

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
    .kv = &memory_kv_ops,
    .vec = &memory_vec_ops,
    .xport = &memory_xport_ops,
};
