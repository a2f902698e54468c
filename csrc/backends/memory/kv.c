/*
 * backends/memory/kv.c -- the key-value op table of the memory backend
 * (see kv.h): each slot is one operation of the handle's key-value map.
 */
#include "backends/memory/kv.h"

#include "backends/memory/map.h"
#include "backends/memory/store.h"

static lls_memory_map *kv_map(lls_backend *b) { return &lls_memory_of(b)->kv; }

static int mem_get(lls_backend *b, lls_str key, int64_t now, lls_str *out, int *found,
                   lls_error *err) {
  (void)err;
  lls_memory_node *n = lls_memory_map_find(kv_map(b), key);
  *found = n != NULL && lls_memory_visible(n, now);
  if (*found) *out = lls_memory_node_value(n);
  return 0;
}

static int mem_set(lls_backend *b, lls_str key, lls_str value, int64_t exp, int64_t now,
                   lls_error *err) {
  return lls_memory_map_set(kv_map(b), key, value, exp, now, err);
}

static int mem_del(lls_backend *b, lls_str key, int64_t now, int *existed,
                   lls_error *err) {
  return lls_memory_map_del(kv_map(b), key, now, existed, err);
}

static int mem_apply(lls_backend *b, const lls_op *ops, size_t n, int64_t now,
                     size_t *deleted, lls_error *err) {
  return lls_memory_map_apply(kv_map(b), ops, n, now, deleted, err);
}

static int mem_get_many(lls_backend *b, const lls_str *keys, size_t n, int64_t now,
                        lls_rows *out, lls_error *err) {
  lls_memory_map *m = kv_map(b);
  for (size_t i = 0; i < n; i++) {
    lls_memory_node *x = lls_memory_map_find(m, keys[i]);
    if (x && lls_memory_visible(x, now) &&
        lls_rows_add(out, x->key, x->klen, x->key + x->klen, x->vlen) == NULL)
      return lls_error_oom(err);
  }
  return 0;
}

static int mem_scan(lls_backend *b, lls_str prefix, lls_str after, int64_t now,
                    size_t limit, int keys_only, lls_rows *out, lls_error *err) {
  return lls_memory_map_scan(kv_map(b), prefix, after, now, limit, keys_only, out, err);
}

static int mem_clear(lls_backend *b, lls_error *err) {
  return lls_memory_map_clear(kv_map(b), err);
}

static int mem_stats(lls_backend *b, int64_t now, lls_kv_stats *out, lls_error *err) {
  (void)err;
  lls_memory_map_stats(kv_map(b), now, &out->keys, &out->bytes);
  return 0;
}

static int mem_sweep(lls_backend *b, int64_t now, size_t limit, size_t *removed,
                     lls_error *err) {
  (void)err;
  *removed = lls_memory_map_sweep(kv_map(b), now, limit);
  return 0;
}

const lls_kv_ops lls_memory_kv_ops = {
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
