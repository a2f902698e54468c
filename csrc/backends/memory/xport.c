/*
 * backends/memory/xport.c -- the export/import op table of the memory
 * backend (see xport.h).
 *
 * Key-value records carry metadata and kv_id in their node (map.h).
 * Passthrough section records live in the handle's vec map, so
 * transactions cover them like collections:
 *   "S" section 0x00 ord (8 bytes, BE, sign bit flipped) -> JSON text
 * The NUL ends the section name (names with NUL are refused), so every
 * record of section "a" sorts before those of "ab"; flipping the sign bit
 * makes ord -1 sort before 0.
 */
#include "backends/memory/xport.h"

#include <stdlib.h>
#include <string.h>

#include "backends/memory/map.h"
#include "backends/memory/store.h"
#include "backends/memory/vectors.h"
#include "base/utf8.h"

/* Ids and keys can be long; messages quote at most this many bytes. */
#define QUOTE_MAX 200
#define QUOTE_LEN(s) ((int)((s).len > QUOTE_MAX ? QUOTE_MAX : (s).len))

#define ORD_FLIP ((uint64_t)1 << 63)

static int mem_kv_dump(lls_backend *b, lls_str after, int64_t now, size_t limit,
                       lls_rows *out, lls_error *err) {
  lls_memory_map *m = &lls_memory_of(b)->kv;
  lls_memory_node *x =
      after.ptr != NULL ? lls_memory_map_after(m, after) : lls_memory_map_first(m);
  size_t got = 0;
  for (; x != NULL && (limit == 0 || got < limit); x = x->next[0]) {
    if (!lls_memory_visible(x, now)) continue;
    lls_row *r = lls_rows_add_ext(out, lls_memory_node_key(x), lls_memory_node_value(x),
                                  lls_memory_node_meta(x), lls_memory_node_kv_id(x));
    if (r == NULL) return lls_error_oom(err);
    r->created_at = x->created_at;
    r->updated_at = x->updated_at;
    r->expires_at = x->expires_at;
    got++;
  }
  return 0;
}

/* Writes one record unless a visible row with its key stays (skip) or
 * refuses it (error); *written = 1 when it was written. */
static int load_rec(lls_memory_map *m, const lls_kv_rec *r, lls_conflict on_conflict,
                    int64_t now, int *written, lls_error *err) {
  *written = 0;
  if (r->metadata.len > UINT32_MAX || r->kv_id.len > UINT32_MAX)
    return lls_error_set(err, LLS_EINVALID, "key '%.*s': metadata or kv_id too long",
                         QUOTE_LEN(r->key), r->key.ptr);
  uint64_t h = lls_hash_bytes(r->key.ptr, r->key.len);
  lls_memory_node *old = lls_memory_map_find_hashed(m, r->key, h);
  if (old != NULL && lls_memory_visible(old, now)) {
    if (on_conflict == LLS_CONFLICT_SKIP) return 0;
    if (on_conflict == LLS_CONFLICT_ERROR)
      return lls_error_set(err, LLS_ECONFLICT, "key '%.*s' already exists",
                           QUOTE_LEN(r->key), r->key.ptr);
  }
  if (lls_memory_map_put(m, old, h, r, err) != 0) return -1;
  *written = 1;
  return 0;
}

/* Records are resolved one after another (a key repeated in recs meets the
 * copy written before it), logged like apply() so that any failure,
 * LLS_CONFLICT_ERROR's included, leaves the store as it was. */
static int mem_kv_load(lls_backend *b, const lls_kv_rec *recs, size_t n,
                       lls_conflict on_conflict, int64_t now, size_t *written,
                       lls_error *err) {
  lls_memory_map *m = &lls_memory_of(b)->kv;
  size_t mark = lls_memory_map_batch_begin(m), count = 0;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    int one = 0;
    rc = load_rec(m, &recs[i], on_conflict, now, &one, err);
    count += (size_t)one;
  }
  rc = lls_memory_map_batch_end(m, mark, rc);
  if (rc == 0) *written = count;
  return rc;
}

/* Walks the collection's "R" records from just past after_id; the sink
 * sees records in place (it must not call back, so none can move). */
static int mem_vec_dump(lls_backend *b, int64_t id, lls_str after_id, size_t limit,
                        lls_vec_sink sink, void *ud, lls_error *err) {
  lls_memory_map *v = &lls_memory_of(b)->vec;
  lls_coll_info info;
  if (lls_memory_coll_find(v, id, &info, err) != 0) return -1;
  lls_buf k = {0};
  lls_str from = {"", 0};
  if (after_id.ptr != NULL) from = after_id;
  if (lls_memory_row_key(&k, id, from) != 0) return lls_buf_free(&k), lls_error_oom(err);
  lls_str prefix = {k.data, LLS_MEMORY_ROW_PREFIX}, start = {k.data, k.len};
  lls_memory_node *x = after_id.ptr != NULL ? lls_memory_map_after(v, start)
                                            : lls_memory_map_lower_bound(v, prefix);
  int rc = 0;
  for (size_t got = 0; x != NULL && (limit == 0 || got < limit); x = x->next[0], got++) {
    lls_str key = lls_memory_node_key(x);
    if (!lls_has_prefix(key, prefix)) break;
    lls_vec_row r;
    lls_memory_unpack_row(key, lls_memory_node_value(x), &r);
    if (sink(ud, &r, err) != 0) {
      rc = lls_error_stopped(err);
      break;
    }
  }
  lls_buf_free(&k);
  return rc;
}

static int mem_vec_has(lls_backend *b, int64_t id, const lls_str *ids, size_t n,
                       unsigned char *present, lls_error *err) {
  lls_memory_map *v = &lls_memory_of(b)->vec;
  lls_coll_info info;
  if (lls_memory_coll_find(v, id, &info, err) != 0) return -1;
  lls_buf k = {0};
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    int exists = 0;
    rc = lls_memory_row_exists(v, &k, id, ids[i], &exists, err);
    present[i] = (unsigned char)exists;
  }
  lls_buf_free(&k);
  return rc;
}

/* Appends "S" section 0x00 to out; with_ord: the flipped big-endian ord. */
static int sec_key(lls_buf *out, lls_str section, int with_ord, int64_t ord) {
  char tail[9] = {0};
  lls_memory_put_be64(tail + 1, (int64_t)((uint64_t)ord ^ ORD_FLIP));
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
  lls_memory_map *v = &lls_memory_of(b)->vec;
  for (size_t i = 0; i < n; i++)
    if (bad_section(sections[i], err) != 0) return -1;
  /* Keys go in one buffer; offsets become pointers once it stops moving. */
  lls_buf keys = {0};
  size_t *offs = malloc((n + 1) * sizeof *offs);
  lls_op *ops = malloc((n + 1) * sizeof *ops);
  int rc = (offs == NULL || ops == NULL) ? lls_error_oom(err) : 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    offs[i] = keys.len;
    if (sec_key(&keys, sections[i], 1, ords[i]) != 0) rc = lls_error_oom(err);
  }
  if (rc == 0) {
    size_t deleted;
    for (size_t i = 0; i < n; i++) {
      size_t end = i + 1 < n ? offs[i + 1] : keys.len;
      ops[i] = (lls_op){LLS_OP_SET, {keys.data + offs[i], end - offs[i]}, json[i], 0};
    }
    rc = lls_memory_map_apply(v, ops, n, 0, &deleted, err);
  }
  free(offs);
  free(ops);
  lls_buf_free(&keys);
  return rc;
}

static int mem_sec_dump(lls_backend *b, lls_str after_section, int64_t after_ord,
                        size_t limit, lls_rows *out, lls_error *err) {
  lls_memory_map *v = &lls_memory_of(b)->vec;
  lls_memory_node *x;
  if (after_section.ptr != NULL) {
    lls_buf k = {0};
    if (sec_key(&k, after_section, 1, after_ord) != 0)
      return lls_buf_free(&k), lls_error_oom(err);
    lls_str start = {k.data, k.len};
    x = lls_memory_map_after(v, start);
    lls_buf_free(&k);
  } else {
    lls_str s = {"S", 1};
    x = lls_memory_map_lower_bound(v, s);
  }
  for (size_t got = 0; x != NULL && (limit == 0 || got < limit); x = x->next[0], got++) {
    if (x->klen < 10 || x->key[0] != 'S') break;
    lls_row *r = lls_rows_add(out, x->key + 1, x->klen - 10, x->key + x->klen, x->vlen);
    if (r == NULL) return lls_error_oom(err);
    r->created_at =
        (int64_t)((uint64_t)lls_memory_get_be64(x->key + x->klen - 8) ^ ORD_FLIP);
  }
  return 0;
}

static int mem_sec_clear(lls_backend *b, lls_str section, lls_error *err) {
  lls_memory_map *v = &lls_memory_of(b)->vec;
  if (bad_section(section, err) != 0) return -1;
  lls_buf k = {0};
  lls_rows rows = {0};
  lls_op *ops = NULL;
  lls_str none = {NULL, 0};
  int rc = -1;
  if ((section.len ? sec_key(&k, section, 0, 0) : lls_buf_append(&k, "S", 1)) != 0) {
    lls_error_oom(err);
    goto done;
  }
  lls_str prefix = {k.data, k.len};
  if (lls_memory_map_scan(v, prefix, none, 0, 0, 1, &rows, err) != 0) goto done;
  if ((ops = malloc((rows.count + 1) * sizeof *ops)) == NULL) {
    lls_error_oom(err);
    goto done;
  }
  for (size_t i = 0; i < rows.count; i++)
    ops[i] = (lls_op){LLS_OP_DELETE, lls_row_key(&rows, i), {NULL, 0}, 0};
  size_t deleted;
  rc = lls_memory_map_apply(v, ops, rows.count, 0, &deleted, err);
done:
  free(ops);
  lls_rows_free(&rows);
  lls_buf_free(&k);
  return rc;
}

const lls_xport_ops lls_memory_xport_ops = {
    .kv_dump = mem_kv_dump,
    .kv_load = mem_kv_load,
    .vec_dump = mem_vec_dump,
    .vec_has = mem_vec_has,
    .sec_put = mem_sec_put,
    .sec_dump = mem_sec_dump,
    .sec_clear = mem_sec_clear,
};
