/*
 * backends/memory/map.c -- the ordered key map of the memory backend: hash
 * index, skip list, TTL heap and undo log (see map.h).
 */
#include "backends/memory/map.h"

#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

#define MAXLEVEL LLS_MEMORY_MAXLEVEL

typedef lls_memory_node mnode;
typedef lls_memory_map map;

/* ------------------------------------------------------------- hashing */

static int node_has_key(void *ud, uintptr_t val, const char *key, size_t klen) {
  (void)ud;
  const mnode *n = (const mnode *)val;
  return n->klen == klen && memcmp(n->key, key, klen) == 0;
}

lls_memory_node *lls_memory_map_find_hashed(const map *m, lls_str k, uint64_t h) {
  return (mnode *)lls_hidx_find(&m->idx, h, k.ptr, k.len, node_has_key, NULL);
}

lls_memory_node *lls_memory_map_find(const map *m, lls_str key) {
  return lls_memory_map_find_hashed(m, key, lls_hash_bytes(key.ptr, key.len));
}

static size_t hash_pos(const map *m, const mnode *n) {
  return lls_hidx_probe(&m->idx, n->hash, n->key, n->klen, node_has_key, NULL);
}

/* Room is reserved (hash_grow) before new keys are linked, and the index
 * never shrinks, so relinking during a rollback always fits. */
static void hash_link(map *m, mnode *n) {
  lls_hidx_put_at(&m->idx, hash_pos(m, n), n->hash, (uintptr_t)n);
}

/* Points key's entry at a replacement node with the same key. */
static void hash_replace(map *m, mnode *old, mnode *n) {
  m->idx.slots[hash_pos(m, old)].val = (uintptr_t)n;
}

static void hash_unlink(map *m, mnode *n) {
  lls_hidx_remove_at(&m->idx, hash_pos(m, n));
}

static int hash_grow(map *m, size_t extra) {
  return lls_hidx_reserve(&m->idx, extra);
}

/* ------------------------------------------------------------ skip list */

static int random_level(map *m) {
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
static void skip_find(const map *m, const char *key, size_t klen, mnode **update) {
  mnode *x = m->head;
  for (int i = m->level - 1; i >= 0; i--) {
    while (x->next[i] && lls_bytes_cmp(x->next[i]->key, x->next[i]->klen, key, klen) < 0)
      x = x->next[i];
    update[i] = x;
  }
}

static void skip_link(map *m, mnode *n) {
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

static void skip_unlink(map *m, mnode *n) {
  mnode *update[MAXLEVEL];
  skip_find(m, n->key, n->klen, update);
  for (int i = 0; i < n->level; i++)
    if (update[i]->next[i] == n) update[i]->next[i] = n->next[i];
  while (m->level > 1 && m->head->next[m->level - 1] == NULL) m->level--;
}

lls_memory_node *lls_memory_map_first(const map *m) { return m->head->next[0]; }

lls_memory_node *lls_memory_map_lower_bound(const map *m, lls_str key) {
  mnode *update[MAXLEVEL];
  skip_find(m, key.ptr, key.len, update);
  return update[0]->next[0];
}

lls_memory_node *lls_memory_map_after(const map *m, lls_str after) {
  mnode *x = lls_memory_map_lower_bound(m, after);
  if (x && x->klen == after.len && memcmp(x->key, after.ptr, after.len) == 0) x = x->next[0];
  return x;
}

/* ----------------------------------------------------------- TTL heap */

static void heap_swap(map *m, size_t i, size_t j) {
  mnode *t = m->heap[i];
  m->heap[i] = m->heap[j];
  m->heap[j] = t;
  m->heap[i]->heap_idx = i;
  m->heap[j]->heap_idx = j;
}

static void heap_up(map *m, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (m->heap[p]->expires_at <= m->heap[i]->expires_at) break;
    heap_swap(m, i, p);
    i = p;
  }
}

static void heap_down(map *m, size_t i) {
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
static int heap_reserve(map *m) {
  if (m->heap_len < m->heap_cap) return 0;
  size_t cap = m->heap_cap ? m->heap_cap * 2 : 64;
  mnode **h = realloc(m->heap, cap * sizeof *h);
  if (h == NULL) return -1;
  m->heap = h;
  m->heap_cap = cap;
  return 0;
}

static void heap_push(map *m, mnode *n) {
  n->heap_idx = m->heap_len;
  m->heap[m->heap_len++] = n;
  heap_up(m, n->heap_idx);
}

static void heap_remove(map *m, mnode *n) {
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
static int64_t heap_count_expired(const map *m, size_t i, int64_t now, int64_t *bytes) {
  if (i >= m->heap_len || m->heap[i]->expires_at > now) return 0;
  *bytes += (int64_t)(m->heap[i]->klen + m->heap[i]->vlen);
  return 1 + heap_count_expired(m, 2 * i + 1, now, bytes) +
         heap_count_expired(m, 2 * i + 2, now, bytes);
}

/* ------------------------------------------------------------- nodes */

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

static void link_node(map *m, mnode *n) {
  hash_link(m, n);
  skip_link(m, n);
  if (n->expires_at != 0) heap_push(m, n);
  m->count++;
  m->bytes += (int64_t)(n->klen + n->vlen);
}

static void unlink_node(map *m, mnode *n) {
  hash_unlink(m, n);
  skip_unlink(m, n);
  if (n->expires_at != 0) heap_remove(m, n);
  m->count--;
  m->bytes -= (int64_t)(n->klen + n->vlen);
}

/* Puts n (same key, same level) where old was, in one skip-list descent
 * instead of an unlink and a link. */
static void replace_node(map *m, mnode *old, mnode *n) {
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

static int logging(const map *m) { return m->depth > 0; }

static int log_reserve(map *m, size_t extra) {
  if (m->log_cap - m->log_len >= extra) return 0;
  size_t cap = m->log_cap ? m->log_cap : 64;
  while (cap - m->log_len < extra) cap *= 2;
  lls_memory_undo *p = realloc(m->log, cap * sizeof *p);
  if (p == NULL) return -1;
  m->log = p;
  m->log_cap = cap;
  return 0;
}

/* Records a step (log space was reserved by the caller) or, outside any
 * transaction, frees the detached node at once. */
static void record(map *m, mnode *old_node, mnode *new_node) {
  if (logging(m)) {
    m->log[m->log_len].old_node = old_node;
    m->log[m->log_len].new_node = new_node;
    m->log_len++;
  } else {
    node_free(old_node);
  }
}

static void undo_to(map *m, size_t mark) {
  while (m->log_len > mark) {
    lls_memory_undo *u = &m->log[--m->log_len];
    if (u->new_node) {
      unlink_node(m, u->new_node);
      node_free(u->new_node);
    }
    if (u->old_node) link_node(m, u->old_node);
  }
}

/* Frees nodes the log kept alive only for a rollback that will not come. */
static void forget_log(map *m) {
  for (size_t i = 0; i < m->log_len; i++) node_free(m->log[i].old_node);
  m->log_len = 0;
}

size_t lls_memory_map_batch_begin(map *m) {
  m->depth++;
  return m->log_len;
}

/* Outside a transaction the log is empty before the batch, so the undo
 * leaves nothing for forget_log to free after a failure. */
int lls_memory_map_batch_end(map *m, size_t mark, int rc) {
  if (rc != 0) undo_to(m, mark);
  m->depth--;
  if (!logging(m)) forget_log(m);
  return rc;
}

void lls_memory_map_begin(map *m, int depth) {
  m->marks[depth] = m->log_len;
  m->depth = depth + 1;
}

void lls_memory_map_commit(map *m, int depth) {
  m->depth = depth;
  if (depth == 0) forget_log(m);
}

void lls_memory_map_rollback(map *m, int depth) {
  undo_to(m, m->marks[depth]);
  m->depth = depth;
}

/* --------------------------------------------------------- operations */

/* Links n in place of old (same key; NULL when absent) and logs the step;
 * the caller reserved log, hash and heap room, so this cannot fail. */
static void put_node(map *m, mnode *old, mnode *n) {
  if (old)
    replace_node(m, old, n);
  else
    link_node(m, n);
  record(m, old, n);
}

static int reserve_put(map *m, int64_t exp) {
  if (log_reserve(m, 1) != 0 || hash_grow(m, 1) != 0) return -1;
  return exp != 0 ? heap_reserve(m) : 0;
}

int lls_memory_map_put(map *m, lls_memory_node *old, uint64_t hash, const lls_kv_rec *rec,
                       lls_error *err) {
  if (reserve_put(m, rec->expires_at) != 0) return lls_error_oom(err);
  mnode *n = node_new(rec->key, rec->value, rec->metadata, rec->kv_id, hash,
                      old ? old->level : random_level(m));
  if (n == NULL) return lls_error_oom(err);
  n->created_at = rec->created_at;
  n->updated_at = rec->updated_at;
  n->expires_at = rec->expires_at;
  put_node(m, old, n);
  return 0;
}

int lls_memory_map_set(map *m, lls_str key, lls_str value, int64_t exp, int64_t now,
                       lls_error *err) {
  uint64_t h = lls_hash_bytes(key.ptr, key.len);
  mnode *old = lls_memory_map_find_hashed(m, key, h);
  int keep = old != NULL && lls_memory_visible(old, now);
  lls_str none = {NULL, 0};
  lls_kv_rec rec = {.key = key,
                    .value = value,
                    .metadata = keep ? lls_memory_node_meta(old) : none,
                    .kv_id = keep ? lls_memory_node_kv_id(old) : none,
                    .created_at = keep ? old->created_at : now,
                    .updated_at = now,
                    .expires_at = exp};
  return lls_memory_map_put(m, old, h, &rec, err);
}

int lls_memory_map_del(map *m, lls_str key, int64_t now, int *existed, lls_error *err) {
  *existed = 0;
  mnode *old = lls_memory_map_find(m, key);
  if (old == NULL) return 0;
  if (log_reserve(m, 1) != 0) return lls_error_oom(err);
  *existed = lls_memory_visible(old, now);
  unlink_node(m, old);
  record(m, old, NULL);
  return 0;
}

int lls_memory_map_apply(map *m, const lls_op *ops, size_t n, int64_t now, size_t *deleted,
                         lls_error *err) {
  /* Log even outside a transaction, so a failure part-way can be undone. */
  size_t mark = lls_memory_map_batch_begin(m);
  int rc = 0;
  *deleted = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    int existed = 0;
    if (ops[i].kind == LLS_OP_SET)
      rc = lls_memory_map_set(m, ops[i].key, ops[i].value, ops[i].expires_at, now, err);
    else
      rc = lls_memory_map_del(m, ops[i].key, now, &existed, err);
    if (rc == 0) *deleted += (size_t)existed;
  }
  return lls_memory_map_batch_end(m, mark, rc);
}

int lls_memory_map_scan(const map *m, lls_str prefix, lls_str after, int64_t now,
                        size_t limit, int keys_only, lls_rows *out, lls_error *err) {
  mnode *x;
  if (after.ptr != NULL && lls_str_cmp(after, prefix) >= 0)
    x = lls_memory_map_after(m, after);
  else
    x = lls_memory_map_lower_bound(m, prefix);
  size_t got = 0;
  for (; x != NULL; x = x->next[0]) {
    if (!lls_has_prefix(lls_memory_node_key(x), prefix)) break;
    if (!lls_memory_visible(x, now)) continue;
    lls_row *r = lls_rows_add(out, x->key, x->klen, x->key + x->klen,
                              keys_only ? 0 : x->vlen);
    if (r == NULL) return lls_error_oom(err);
    r->created_at = x->created_at;
    r->updated_at = x->updated_at;
    r->expires_at = x->expires_at;
    if (limit && ++got == limit) break;
  }
  return 0;
}

int lls_memory_map_clear(map *m, lls_error *err) {
  if (logging(m) && log_reserve(m, (size_t)m->count) != 0) return lls_error_oom(err);
  while (m->head->next[0]) {
    mnode *n = m->head->next[0];
    unlink_node(m, n);
    record(m, n, NULL);
  }
  return 0;
}

void lls_memory_map_stats(const map *m, int64_t now, int64_t *keys, int64_t *bytes) {
  int64_t dead_bytes = 0;
  int64_t dead = heap_count_expired(m, 0, now, &dead_bytes);
  *keys = m->count - dead;
  *bytes = m->bytes - dead_bytes;
}

size_t lls_memory_map_sweep(map *m, int64_t now, size_t limit) {
  size_t removed = 0;
  if (logging(m)) return 0;
  while (m->heap_len > 0 && m->heap[0]->expires_at <= now && removed < limit) {
    mnode *n = m->heap[0];
    unlink_node(m, n);
    node_free(n);
    removed++;
  }
  return removed;
}

/* ------------------------------------------------------ life and keys */

int lls_memory_map_init(map *m) {
  memset(m, 0, sizeof *m);
  int idx_failed = lls_hidx_reserve(&m->idx, 32);
  m->head = calloc(1, sizeof *m->head + MAXLEVEL * sizeof(mnode *));
  if (idx_failed || m->head == NULL) {
    lls_hidx_free(&m->idx);
    free(m->head);
    return -1;
  }
  m->head->level = MAXLEVEL;
  m->level = 1;
  m->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)m;
  return 0;
}

void lls_memory_map_free(map *m) {
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
}

void lls_memory_put_be64(char *p, int64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (char)(v & 0xFF);
    v = (int64_t)((uint64_t)v >> 8);
  }
}

int64_t lls_memory_get_be64(const char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | (unsigned char)p[i];
  return (int64_t)v;
}
