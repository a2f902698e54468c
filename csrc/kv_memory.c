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

#include "backend.h"
#include "hashidx.h"

#define MAXLEVEL 32

typedef struct mnode {
  char *key; /* key bytes then value bytes, inside this same allocation right
                after next[]: one allocation per node, and the key shares a
                cache line with the header it is compared after */
  size_t klen, vlen;
  int64_t created_at, updated_at, expires_at;
  uint64_t hash;
  size_t heap_idx; /* position in the TTL heap when expires_at != 0 */
  int level;
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

/* A node of the given skip-list level holding copies of key and value. */
static mnode *node_new(lls_str key, lls_str value, uint64_t hash, int lvl) {
  mnode *n = malloc(sizeof *n + (size_t)lvl * sizeof(mnode *) + key.len + value.len);
  if (n == NULL) return NULL;
  n->key = (char *)(n->next + lvl);
  if (key.len) memcpy(n->key, key.ptr, key.len);
  if (value.len) memcpy(n->key + key.len, value.ptr, value.len);
  n->klen = key.len;
  n->vlen = value.len;
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

/* Upserts one key; on failure nothing changed. */
static int do_set(mem_backend *m, lls_str key, lls_str value, int64_t exp, int64_t now,
                  lls_error *err) {
  if (log_reserve(m, 1) != 0 || hash_grow(m, 1) != 0) return oom(err);
  if (exp != 0 && heap_reserve(m) != 0) return oom(err);
  uint64_t h = lls_hash_bytes(key.ptr, key.len);
  mnode *old = hash_find(m, key, h);
  mnode *n = node_new(key, value, h, old ? old->level : random_level(m));
  if (n == NULL) return oom(err);
  n->created_at = (old && visible(old, now)) ? old->created_at : now;
  n->updated_at = now;
  n->expires_at = exp;
  if (old)
    replace_node(m, old, n);
  else
    link_node(m, n);
  record(m, old, n);
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

static lls_backend *mem_open(lls_config *cfg, lls_error *err) {
  mem_backend *m = calloc(1, sizeof *m);
  if (m == NULL) return oom(err), NULL;
  m->base.vt = &lls_memory_vt;
  int idx_failed = lls_hidx_reserve(&m->idx, 32);
  m->head = calloc(1, sizeof *m->head + MAXLEVEL * sizeof(mnode *));
  m->tenant = malloc(strlen(cfg->tenant) + 1);
  if (idx_failed || m->head == NULL || m->tenant == NULL) {
    lls_hidx_free(&m->idx);
    free(m->head);
    free(m->tenant);
    free(m);
    return oom(err), NULL;
  }
  strcpy(m->tenant, cfg->tenant);
  m->head->level = MAXLEVEL;
  m->level = 1;
  m->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)m;
  return &m->base;
}

static void mem_close(lls_backend *b) {
  mem_backend *m = (mem_backend *)b;
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

static int mem_begin(lls_backend *b, int depth, lls_error *err) {
  mem_backend *m = (mem_backend *)b;
  if (depth >= (int)(sizeof m->marks / sizeof m->marks[0]))
    return lls_error_set(err, LLS_EINVALID, "transactions nested too deeply (%d)", depth);
  m->marks[depth] = m->log_len;
  m->depth = depth + 1;
  return 0;
}

static int mem_commit(lls_backend *b, int depth, lls_error *err) {
  (void)err;
  mem_backend *m = (mem_backend *)b;
  m->depth = depth;
  if (depth == 0) forget_log(m);
  return 0;
}

static int mem_rollback(lls_backend *b, int depth, lls_error *err) {
  (void)err;
  mem_backend *m = (mem_backend *)b;
  undo_to(m, m->marks[depth]);
  m->depth = depth;
  return 0;
}

static int mem_migrations(lls_backend *b, lls_rows *out, lls_error *err) {
  (void)b;
  (void)out;
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
    .get = mem_get,
    .set = mem_set,
    .del = mem_del,
    .apply = mem_apply,
    .get_many = mem_get_many,
    .scan = mem_scan,
    .clear = mem_clear,
    .stats = mem_stats,
    .sweep = mem_sweep,
    .begin = mem_begin,
    .commit = mem_commit,
    .rollback = mem_rollback,
    .migrations = mem_migrations,
};
