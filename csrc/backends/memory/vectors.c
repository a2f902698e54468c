/*
 * backends/memory/vectors.c -- the vector-collection op table of the
 * memory backend: collections and their rows as records in the handle's
 * vec map (layout in vectors.h).
 */
#include "backends/memory/vectors.h"

#include <stdlib.h>
#include <string.h>

#include "backends/memory/store.h"
#include "base/utf8.h"

typedef struct row_head {
  int64_t created_at, updated_at, event_time, expires_at, seq;
  int32_t has_event_time;
  uint32_t scope_len, meta_len, vec_len;
} row_head;

static lls_memory_map *vec_map(lls_backend *b) { return &lls_memory_of(b)->vec; }

/* Builds "<tag><id BE>[suffix]" in out. */
static int vkey(lls_buf *out, char tag, int64_t id, lls_str suffix) {
  char head[9];
  head[0] = tag;
  lls_memory_put_be64(head + 1, id);
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

int lls_memory_row_key(lls_buf *out, int64_t id, lls_str rid) {
  return vkey(out, 'R', id, rid);
}

/* The collection record for id; *found = 0 when absent (and on failure,
 * so a caller's flag is never left unset, which -O3 would warn about). */
static int get_info(const lls_memory_map *v, int64_t id, lls_coll_info *out, int *found,
                    lls_error *err) {
  *found = 0;
  lls_buf k = {0};
  if (vkey(&k, 'I', id, NO_SUFFIX) != 0) return lls_buf_free(&k), lls_error_oom(err);
  lls_str key = {k.data, k.len};
  lls_memory_node *n = lls_memory_map_find(v, key);
  lls_buf_free(&k);
  *found = n != NULL;
  if (n) memcpy(out, n->key + n->klen, sizeof *out);
  return 0;
}

int lls_memory_coll_find(const lls_memory_map *v, int64_t id, lls_coll_info *out,
                         lls_error *err) {
  int found;
  if (get_info(v, id, out, &found, err) != 0) return -1;
  if (!found)
    return lls_error_set(err, LLS_ENOTFOUND, "no collection with id %lld", (long long)id);
  return 0;
}

static int mem_coll_get(lls_backend *b, const char *name, lls_coll_info *out, int *found,
                        lls_error *err) {
  lls_memory_map *v = vec_map(b);
  lls_buf k = {0};
  if (name_key(&k, name) != 0) return lls_buf_free(&k), lls_error_oom(err);
  lls_str key = {k.data, k.len};
  lls_memory_node *n = lls_memory_map_find(v, key);
  lls_buf_free(&k);
  *found = 0;
  if (n == NULL) return 0;
  int64_t id;
  memcpy(&id, n->key + n->klen, 8);
  return get_info(v, id, out, found, err);
}

static int mem_coll_create(lls_backend *b, lls_coll_info *info, int64_t now, lls_error *err) {
  lls_memory_backend *m = lls_memory_of(b);
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
    rc = lls_memory_map_apply(&m->vec, ops, 2, now, &deleted, err);
  } else {
    lls_error_oom(err);
  }
  lls_buf_free(&nk);
  lls_buf_free(&ik);
  return rc;
}

static int mem_coll_list(lls_backend *b, lls_str prefix, lls_coll_sink sink, void *ud,
                         lls_error *err) {
  lls_memory_map *v = vec_map(b);
  lls_buf k = {0};
  lls_rows rows = {0};
  lls_str none = {NULL, 0};
  int rc = -1;
  if (lls_buf_append(&k, "N", 1) != 0 || lls_buf_append(&k, prefix.ptr, prefix.len) != 0) {
    lls_error_oom(err);
    goto done;
  }
  lls_str p = {k.data, k.len};
  if (lls_memory_map_scan(v, p, none, 0, 0, 0, &rows, err) != 0) goto done;
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
static int scan_rows(const lls_memory_map *v, int64_t id, lls_rows *rows, lls_error *err) {
  lls_buf k = {0};
  lls_str none = {NULL, 0};
  if (vkey(&k, 'R', id, NO_SUFFIX) != 0) return lls_buf_free(&k), lls_error_oom(err);
  lls_str p = {k.data, k.len};
  int rc = lls_memory_map_scan(v, p, none, 0, 0, 0, rows, err);
  lls_buf_free(&k);
  return rc;
}

static int mem_coll_drop(lls_backend *b, const char *name, int *dropped, lls_error *err) {
  lls_memory_map *v = vec_map(b);
  lls_coll_info info;
  if (mem_coll_get(b, name, &info, dropped, err) != 0 || !*dropped) return *dropped ? -1 : 0;
  lls_rows rows = {0};
  lls_buf nk = {0}, ik = {0};
  lls_op *ops = NULL;
  size_t deleted;
  int rc = scan_rows(v, info.id, &rows, err);
  if (rc == 0) {
    ops = malloc((rows.count + 2) * sizeof *ops);
    if (ops == NULL || name_key(&nk, name) != 0 || vkey(&ik, 'I', info.id, NO_SUFFIX) != 0)
      rc = lls_error_oom(err);
  }
  if (rc == 0) {
    for (size_t i = 0; i < rows.count; i++)
      ops[i] = (lls_op){LLS_OP_DELETE, lls_row_key(&rows, i), {NULL, 0}, 0};
    ops[rows.count] = (lls_op){LLS_OP_DELETE, {nk.data, nk.len}, {NULL, 0}, 0};
    ops[rows.count + 1] = (lls_op){LLS_OP_DELETE, {ik.data, ik.len}, {NULL, 0}, 0};
    rc = lls_memory_map_apply(v, ops, rows.count + 2, 0, &deleted, err);
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
  if (lls_memory_coll_find(vec_map(b), id, &info, err) != 0) return -1;
  *seq = info.seq;
  *count = info.count;
  return 0;
}

/* Ops for a write: the caller fills ops[0..n) (rows), this adds the
 * updated collection record and applies them all at once. */
static int write_rows(lls_memory_map *v, lls_coll_info *info, lls_op *ops, size_t n,
                      lls_error *err) {
  lls_buf ik = {0};
  size_t deleted;
  if (vkey(&ik, 'I', info->id, NO_SUFFIX) != 0) return lls_buf_free(&ik), lls_error_oom(err);
  ops[n] = (lls_op){LLS_OP_SET, {ik.data, ik.len}, {(const char *)info, sizeof *info}, 0};
  int rc = lls_memory_map_apply(v, ops, n + 1, 0, &deleted, err);
  lls_buf_free(&ik);
  return rc;
}

int lls_memory_row_exists(const lls_memory_map *v, lls_buf *k, int64_t id, lls_str rid,
                          int *exists, lls_error *err) {
  if (vkey(k, 'R', id, rid) != 0) return lls_error_oom(err);
  lls_str key = {k->data, k->len};
  *exists = lls_memory_map_find(v, key) != NULL;
  return 0;
}

static int mem_vec_put(lls_backend *b, int64_t id, const lls_vec_row *rows, size_t n,
                       int insert_only, int64_t *seq, lls_error *err) {
  lls_memory_map *v = vec_map(b);
  lls_coll_info info;
  if (lls_memory_coll_find(v, id, &info, err) != 0) return -1;
  /* Keys and packed rows go in one buffer; offsets become pointers after. */
  lls_buf buf = {0}, k = {0};
  size_t *offs = malloc((2 * n + 1) * sizeof *offs);
  lls_op *ops = malloc((n + 1) * sizeof *ops);
  int rc = (offs == NULL || ops == NULL) ? lls_error_oom(err) : 0;
  int64_t added = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const lls_vec_row *r = &rows[i];
    int exists = 0;
    rc = lls_memory_row_exists(v, &k, id, r->id, &exists, err);
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
    if (lls_buf_append(&buf, k.data, k.len) != 0) rc = lls_error_oom(err);
    offs[2 * i + 1] = buf.len;
    if (rc == 0 && (lls_buf_append(&buf, &hd, sizeof hd) != 0 ||
                    lls_buf_append(&buf, r->scope.ptr, r->scope.len) != 0 ||
                    lls_buf_append(&buf, r->metadata.ptr, r->metadata.len) != 0 ||
                    lls_buf_append(&buf, r->vector.ptr, r->vector.len) != 0))
      rc = lls_error_oom(err);
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
    rc = write_rows(v, &info, ops, n, err);
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
  lls_memory_map *v = vec_map(b);
  lls_coll_info info;
  if (lls_memory_coll_find(v, id, &info, err) != 0) return -1;
  lls_buf buf = {0}, k = {0};
  size_t *offs = malloc((n + 1) * sizeof *offs), *lens = malloc((n + 1) * sizeof *lens);
  lls_op *ops = malloc((n + 1) * sizeof *ops);
  int rc = (offs == NULL || lens == NULL || ops == NULL) ? lls_error_oom(err) : 0;
  size_t count = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    int exists = 0;
    rc = lls_memory_row_exists(v, &k, id, ids[i], &exists, err);
    if (rc != 0 || !exists) continue;
    /* the same id twice deletes once */
    int dup = 0;
    for (size_t j = 0; j < count && !dup; j++)
      dup = lens[j] == k.len && memcmp(buf.data + offs[j], k.data, k.len) == 0;
    if (dup) continue;
    offs[count] = buf.len;
    lens[count] = k.len;
    if (lls_buf_append(&buf, k.data, k.len) != 0) rc = lls_error_oom(err);
    count++;
  }
  *deleted = 0;
  *seq = info.seq;
  if (rc == 0 && count > 0) {
    for (size_t i = 0; i < count; i++)
      ops[i] = (lls_op){LLS_OP_DELETE, {buf.data + offs[i], lens[i]}, {NULL, 0}, 0};
    info.seq++;
    info.count -= (int64_t)count;
    rc = write_rows(v, &info, ops, count, err);
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

void lls_memory_unpack_row(lls_str k, lls_str v, lls_vec_row *r) {
  row_head hd;
  memcpy(&hd, v.ptr, sizeof hd);
  const char *p = v.ptr + sizeof hd;
  r->id.ptr = k.ptr + LLS_MEMORY_ROW_PREFIX;
  r->id.len = k.len - LLS_MEMORY_ROW_PREFIX;
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
  if (since > 0)
    return lls_error_set(err, LLS_EVERSION, "memory collections keep no change history");
  lls_rows rows = {0};
  int rc = scan_rows(vec_map(b), id, &rows, err);
  for (size_t i = 0; i < rows.count && rc == 0; i++) {
    lls_vec_row r;
    lls_memory_unpack_row(lls_row_key(&rows, i), lls_row_value(&rows, i), &r);
    rc = sink(ud, &r, err);
  }
  lls_rows_free(&rows);
  return rc;
}

/* ------------------------------------------------------------- scan
 * Rows are kept in id order, so the id orders walk the map from the
 * resume point. There is no time index: a page in (event_time, id) order
 * walks the collection's rows once and keeps the `limit` smallest after
 * the resume point in a bounded max-heap, so a whole time-ordered scan
 * costs rows x pages (docs/collections.md says so). */

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

static int mem_vec_scan(lls_backend *b, int64_t id, const lls_vec_scan *q, lls_vec_sink sink,
                        void *ud, lls_error *err) {
  lls_memory_map *v = vec_map(b);
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

const lls_vec_ops lls_memory_vec_ops = {
    .coll_create = mem_coll_create,
    .coll_get = mem_coll_get,
    .coll_list = mem_coll_list,
    .coll_drop = mem_coll_drop,
    .coll_seq = mem_coll_seq,
    .put = mem_vec_put,
    .del = mem_vec_delete,
    .load = mem_vec_load,
    .scan = mem_vec_scan,
};
