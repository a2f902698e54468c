/*
 * vec_scan.c -- the memory backend's vector scan slot (lls_vec_ops.scan).
 *
 * Rows are kept in id order ("R" id rowid, vectors.h), so the id orders
 * walk the map from the resume point. There is no time index: a page in
 * (event_time, id) order walks the collection's rows once and keeps the
 * `limit` smallest after the resume point in a bounded max-heap, so a
 * whole time-ordered scan costs rows x pages (the scan's page size keeps
 * that small up to ~10^5 rows; docs/collections.md says so).
 */
#include "backends/memory/vec_scan.h"

#include <stdlib.h>
#include <string.h>

#include "backends/memory/store.h"
#include "backends/memory/vectors.h"
#include "base/utf8.h"

/* Whether row r belongs to the page q asks for, the resume point aside. */
static int wanted(const lls_vec_scan *q, const lls_vec_row *r) {
  if (r->expires_at != 0 && r->expires_at <= q->now) return 0;
  if (q->scope.ptr != NULL && lls_str_cmp(r->scope, q->scope) != 0) return 0;
  if (q->order == LLS_VEC_BY_TIME) return r->has_event_time;
  if (q->order == LLS_VEC_UNTIMED) return !r->has_event_time;
  return 1;
}

/* (event_time, id) order. */
static int time_cmp(const lls_vec_row *a, const lls_vec_row *b) {
  if (a->event_time != b->event_time) return a->event_time < b->event_time ? -1 : 1;
  return lls_str_cmp(a->id, b->id);
}

static int time_cmp_qsort(const void *a, const void *b) { return time_cmp(a, b); }

/* Restores the max-heap property below slot i of h[0..n). */
static void sift_down(lls_vec_row *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, top = i;
    if (l < n && time_cmp(&h[l], &h[top]) > 0) top = l;
    if (r < n && time_cmp(&h[r], &h[top]) > 0) top = r;
    if (top == i) return;
    lls_vec_row t = h[i];
    h[i] = h[top];
    h[top] = t;
    i = top;
  }
}

static void sift_up(lls_vec_row *h, size_t i) {
  while (i > 0 && time_cmp(&h[(i - 1) / 2], &h[i]) < 0) {
    lls_vec_row t = h[i];
    h[i] = h[(i - 1) / 2];
    h[(i - 1) / 2] = t;
    i = (i - 1) / 2;
  }
}

/* The first node of collection id's rows after the resume point (id
 * orders), or the first of its rows (time order). */
static lls_memory_node *start(const lls_memory_map *v, int64_t id, const lls_vec_scan *q,
                              lls_buf *k) {
  int from_id = q->has_after && q->order != LLS_VEC_BY_TIME;
  lls_str none = {"", 0};
  if (lls_memory_row_key(k, id, from_id ? q->after_id : none) != 0) return NULL;
  lls_str key = {k->data, k->len}, prefix = {k->data, LLS_MEMORY_ROW_PREFIX};
  return from_id ? lls_memory_map_after(v, key) : lls_memory_map_lower_bound(v, prefix);
}

/* The page in time order: every row is looked at; the heap keeps the
 * smallest `limit` past (after_time, after_id); sorted, they go out. */
static int time_page(lls_memory_node *x, lls_str prefix, const lls_vec_scan *q,
                     lls_vec_sink sink, void *ud, lls_error *err) {
  size_t cap = q->limit, n = 0;
  lls_vec_row *h = malloc((cap ? cap : 1) * sizeof *h);
  if (h == NULL) return lls_error_oom(err);
  lls_vec_row after = {0};
  after.id = q->after_id;
  after.event_time = q->after_time;
  for (; x != NULL; x = x->next[0]) {
    lls_str key = lls_memory_node_key(x);
    if (!lls_has_prefix(key, prefix)) break;
    lls_vec_row r;
    lls_memory_unpack_row(key, lls_memory_node_value(x), &r);
    if (!wanted(q, &r) || (q->has_after && time_cmp(&r, &after) <= 0)) continue;
    if (n < cap) {
      h[n] = r;
      sift_up(h, n++);
    } else if (time_cmp(&r, &h[0]) < 0) {
      h[0] = r;
      sift_down(h, n, 0);
    }
  }
  qsort(h, n, sizeof *h, time_cmp_qsort);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++)
    if (sink(ud, &h[i], err) != 0) rc = lls_error_stopped(err);
  free(h);
  return rc;
}

int lls_memory_vec_scan(lls_backend *b, int64_t id, const lls_vec_scan *q, lls_vec_sink sink,
                        void *ud, lls_error *err) {
  lls_memory_map *v = &lls_memory_of(b)->vec;
  lls_coll_info info;
  if (lls_memory_coll_find(v, id, &info, err) != 0) return -1;
  if ((int)q->order < 0 || q->order > LLS_VEC_UNTIMED)
    return lls_error_set(err, LLS_EINVALID, "scan vectors: unknown order");
  lls_buf k = {0};
  lls_memory_node *x = start(v, id, q, &k);
  if (k.data == NULL) return lls_error_oom(err);
  lls_str prefix = {k.data, LLS_MEMORY_ROW_PREFIX};
  int rc = 0;
  if (q->order == LLS_VEC_BY_TIME) {
    rc = time_page(x, prefix, q, sink, ud, err);
  } else {
    for (size_t got = 0; x != NULL && got < q->limit; x = x->next[0]) {
      lls_str key = lls_memory_node_key(x);
      if (!lls_has_prefix(key, prefix)) break;
      lls_vec_row r;
      lls_memory_unpack_row(key, lls_memory_node_value(x), &r);
      if (!wanted(q, &r)) continue;
      got++;
      if (sink(ud, &r, err) != 0) {
        rc = lls_error_stopped(err);
        break;
      }
    }
  }
  lls_buf_free(&k);
  return rc;
}
