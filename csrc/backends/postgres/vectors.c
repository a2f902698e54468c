/*
 * vectors.c -- the PostgreSQL backend's vector-collection slots
 * (lls_vec_ops): collections, row writes stamped with the collection's
 * change sequence, change streams through cursors, snapshots in parts.
 */
#include "backends/postgres/vectors.h"

#include <stdlib.h>
#include <string.h>

#include "backends/postgres/conn.h"
#include "backends/postgres/vec_scan.h"
#include "base/utf8.h"

/* Snapshot part size: well under bytea's 1 GB, and small enough that
 * neither side holds much more than the snapshot itself. */
#define SNAP_PART_BYTES ((size_t)32 << 20)

/* ------------------------------------------------------------ collections */

/* Fills info from row i of a COLL_COLS result. */
static void coll_from_row(const PGresult *r, int i, lls_coll_info *info) {
  lls_str name = lls_pg_str_at(r, i, 1);
  size_t n = name.len < sizeof info->name - 1 ? name.len : sizeof info->name - 1;
  memcpy(info->name, name.ptr, n);
  info->name[n] = '\0';
  info->id = lls_pg_int8_at(r, i, 0);
  info->dimension = lls_pg_int4_at(r, i, 2);
  info->metric = lls_pg_int4_at(r, i, 3);
  info->m = lls_pg_int4_at(r, i, 4);
  info->ef_construction = lls_pg_int4_at(r, i, 5);
  info->ef_search = lls_pg_int4_at(r, i, 6);
  info->created_at = lls_pg_time_or_zero(r, i, 7);
  info->seq = lls_pg_int8_at(r, i, 8);
  info->count = lls_pg_int8_at(r, i, 9);
}

int lls_pg_coll_missing(lls_error *err, int64_t coll_id) {
  return lls_error_set(err, LLS_ENOTFOUND, "collection %lld does not exist",
                       (long long)coll_id);
}

/* Inserts the collection; a name the tenant already uses comes back with
 * no row (ON CONFLICT DO NOTHING) and is reported as a conflict. */
static int pg_coll_create(lls_backend *b, lls_coll_info *info, int64_t now, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, info->name, strlen(info->name));
  lls_pg_param_int4(&p, info->dimension);
  lls_pg_param_int4(&p, info->metric);
  lls_pg_param_int4(&p, info->m);
  lls_pg_param_int4(&p, info->ef_construction);
  lls_pg_param_int4(&p, info->ef_search);
  lls_pg_param_time(&p, now);
  PGresult *r = lls_pg_run(pg, ST_COLL_CREATE, &p, 0, err);
  if (r == NULL) return -1;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return lls_error_set(err, LLS_ECONFLICT, "collection '%s' already exists", info->name);
  }
  info->id = lls_pg_int8_at(r, 0, 0);
  info->created_at = now;
  info->seq = 0;
  info->count = 0;
  PQclear(r);
  return 0;
}

static int pg_coll_get(lls_backend *b, const char *name, lls_coll_info *out, int *found,
                       lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, name, strlen(name));
  *found = 0;
  PGresult *r = lls_pg_run(pg, ST_COLL_GET, &p, 1, err);
  if (r == NULL) return -1;
  if (PQntuples(r) > 0) {
    coll_from_row(r, 0, out);
    *found = 1;
  }
  PQclear(r);
  return 0;
}

/* A literal prefix as the range [prefix, upper) of the (tenant_id, name)
 * index. A tenant has few collections: one result holds them all. */
static int pg_coll_list(lls_backend *b, lls_str prefix, lls_coll_sink sink, void *ud,
                        lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  int has_upper;
  if (lls_prefix_upper(prefix, &pg->upper, &has_upper) != 0) return lls_error_oom(err);
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, prefix.ptr, prefix.len);
  if (has_upper) lls_pg_param_bytes(&p, pg->upper.data, pg->upper.len);
  PGresult *r = lls_pg_run(pg, has_upper ? ST_COLL_LIST_U : ST_COLL_LIST, &p, 1, err);
  if (r == NULL) return -1;
  err->code = LLS_OK;
  err->message[0] = '\0';
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_coll_info info;
    coll_from_row(r, i, &info);
    if (sink(ud, &info, err) != 0) {
      PQclear(r);
      return lls_error_stopped(err);
    }
  }
  PQclear(r);
  return 0;
}

static int pg_coll_drop(lls_backend *b, const char *name, int *dropped, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, name, strlen(name));
  *dropped = 0;
  PGresult *r = lls_pg_run(pg, ST_COLL_DROP, &p, 0, err);
  if (r == NULL) return -1;
  *dropped = strtoull(PQcmdTuples(r), NULL, 10) > 0;
  PQclear(r);
  return 0;
}

/* One primary-key read. */
static int pg_coll_seq(lls_backend *b, int64_t coll_id, int64_t *seq, int64_t *count,
                       lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_int8(&p, coll_id);
  PGresult *r = lls_pg_run(pg, ST_COLL_SEQ, &p, 1, err);
  if (r == NULL) return -1;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return lls_pg_coll_missing(err, coll_id);
  }
  *seq = lls_pg_int8_at(r, 0, 0);
  *count = lls_pg_int8_at(r, 0, 1);
  PQclear(r);
  return 0;
}

/* Inside a write unit: seq + 1 under the collection's row lock. */
static int bump_seq(pg_backend *pg, int64_t coll_id, int64_t *seq, lls_error *err) {
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_int8(&p, coll_id);
  PGresult *r = lls_pg_run(pg, ST_COLL_BUMP, &p, 0, err);
  if (r == NULL) return -1;
  int found = PQntuples(r) > 0;
  if (found) *seq = lls_pg_int8_at(r, 0, 0);
  PQclear(r);
  return found ? 0 : lls_pg_coll_missing(err, coll_id);
}

/* ------------------------------------------------------------------- rows */

int lls_pg_cmp_id_ref(const void *a, const void *b) {
  const lls_pg_id_ref *x = a, *y = b;
  int c = lls_str_cmp(x->id, y->id);
  if (c != 0) return c;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* Marks in keep[] the rows to write: for each id its last occurrence (one
 * statement cannot write a row twice). *dup receives an id that occurs
 * more than once (ptr NULL when none). -1 when out of memory. */
static int dedupe_rows(const lls_vec_row *rows, size_t n, unsigned char *keep, lls_str *dup) {
  lls_pg_id_ref *refs = malloc(n * sizeof *refs);
  dup->ptr = NULL;
  dup->len = 0;
  if (refs == NULL) return -1;
  for (size_t i = 0; i < n; i++) refs[i].id = rows[i].id, refs[i].i = i, keep[i] = 0;
  qsort(refs, n, sizeof *refs, lls_pg_cmp_id_ref);
  for (size_t g = 0, e; g < n; g = e) {
    for (e = g + 1; e < n && lls_str_cmp(refs[e].id, refs[g].id) == 0; e++) {
    }
    keep[refs[e - 1].i] = 1;
    if (e - g > 1 && dup->ptr == NULL) *dup = refs[g].id;
  }
  free(refs);
  return 0;
}

/* Fills the array parameters with the kept rows from *pos on, in batch
 * order, up to about PUT_CHUNK_BYTES (at least one row, when one is left);
 * *pos moves past them, *count says how many. -1 when out of memory or an
 * element is over 2 GB. */
static int put_arrays(pg_backend *pg, const lls_vec_row *rows, size_t n,
                      const unsigned char *keep, size_t *pos, size_t *count) {
  for (int a = 0; a < V_COUNT; a++)
    if (lls_pg_arr_init(&pg->varr[a]) != 0) return -1;
  size_t bytes = 0, i = *pos;
  int event_null = 0, expires_null = 0;
  *count = 0;
  for (; i < n; i++) {
    const lls_vec_row *row = &rows[i];
    if (!keep[i]) continue;
    size_t size = row->id.len + row->scope.len + row->vector.len + row->metadata.len + 64;
    if (*count > 0 && bytes + size > PUT_CHUNK_BYTES) break;
    bytes += size;
    if (lls_pg_arr_add(&pg->varr[V_ID], row->id.ptr, row->id.len) != 0 ||
        lls_pg_arr_add(&pg->varr[V_SCOPE], row->scope.ptr, row->scope.len) != 0 ||
        lls_pg_arr_add(&pg->varr[V_VEC], row->vector.ptr, row->vector.len) != 0 ||
        lls_pg_arr_add(&pg->varr[V_MD], row->metadata.ptr, row->metadata.len) != 0 ||
        lls_pg_arr_add_time(&pg->varr[V_CREATED], row->created_at) != 0 ||
        lls_pg_arr_add_time(&pg->varr[V_UPDATED], row->updated_at) != 0 ||
        (row->has_event_time ? lls_pg_arr_add_time(&pg->varr[V_EVENT], row->event_time)
                             : lls_pg_arr_add_null(&pg->varr[V_EVENT])) != 0 ||
        lls_pg_arr_add_expiry(&pg->varr[V_EXPIRES], row->expires_at) != 0)
      return -1;
    event_null |= !row->has_event_time;
    expires_null |= row->expires_at == 0;
    (*count)++;
  }
  *pos = i;
  static const Oid elem[V_COUNT] = {OID_TEXT, OID_TEXT, OID_BYTEA, OID_TEXT,
                                    OID_TSTZ, OID_TSTZ, OID_TSTZ,  OID_TSTZ};
  for (int a = 0; a < V_COUNT; a++)
    lls_pg_arr_finish(&pg->varr[a], elem[a], *count,
                      (a == V_EVENT && event_null) || (a == V_EXPIRES && expires_null));
  return 0;
}

/* Bumps seq, then writes the rows with binary arrays + unnest: BEGIN, the
 * bump, one statement per PUT_CHUNK_BYTES of rows, COMMIT. */
static int pg_vec_put(lls_backend *b, int64_t coll_id, const lls_vec_row *rows, size_t n,
                      int insert_only, int64_t *seq, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  int64_t count, s;
  lls_str dup;
  if (n == 0) return pg_coll_seq(b, coll_id, seq, &count, err);
  unsigned char *keep = malloc(n);
  if (keep == NULL || dedupe_rows(rows, n, keep, &dup) != 0) {
    free(keep);
    return lls_error_oom(err);
  }
  if (insert_only && dup.ptr != NULL) {
    free(keep);
    return lls_error_set(err, LLS_ECONFLICT, "id '%.*s' is given more than once",
                         lls_pg_msg_len(dup, 200), dup.ptr);
  }
  if (lls_pg_unit_begin(pg, 0, err) != 0) {
    free(keep);
    return -1;
  }
  if (bump_seq(pg, coll_id, &s, err) != 0) goto fail;
  for (size_t pos = 0, chunk; pos < n;) {
    if (put_arrays(pg, rows, n, keep, &pos, &chunk) != 0) {
      lls_error_set(err, LLS_EIO, "out of memory (or an element over 2 GB)");
      goto fail;
    }
    if (chunk == 0) break; /* only replaced duplicates were left */
    pg_params p = {0};
    lls_pg_param_tenant(&p, pg);
    lls_pg_param_int8(&p, coll_id);
    lls_pg_param_int8(&p, s);
    for (int a = 0; a < V_COUNT; a++) lls_pg_param_buf(&p, &pg->varr[a]);
    PGresult *r = lls_pg_run(pg, insert_only ? ST_VEC_INSERT : ST_VEC_UPSERT, &p, 0, err);
    if (r == NULL) {
      lls_pg_metadata_error(err);
      goto fail;
    }
    if (insert_only && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
      lls_str id = lls_pg_str_at(r, 0, 0);
      lls_error_set(err, LLS_ECONFLICT, "id '%.*s' already exists", lls_pg_msg_len(id, 200),
                    id.ptr);
      PQclear(r);
      goto fail;
    }
    PQclear(r);
  }
  free(keep);
  lls_pg_trim_arrays(pg);
  if (lls_pg_unit_end(pg, 0, 1, err) != 0) return -1;
  *seq = s;
  return 0;
fail:
  free(keep);
  lls_pg_trim_arrays(pg);
  lls_pg_unit_end(pg, 0, 0, NULL);
  return -1;
}

/* Bumps seq, deletes and records tombstones in one statement; when no row
 * was there the unit is rolled back, so seq stays. */
static int pg_vec_delete(lls_backend *b, int64_t coll_id, const lls_str *ids, size_t n,
                         size_t *deleted, int64_t *seq, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  int64_t count, s;
  *deleted = 0;
  if (n == 0) return pg_coll_seq(b, coll_id, seq, &count, err);
  lls_buf *a = &pg->varr[V_ID];
  if (lls_pg_arr_init(a) != 0) return lls_error_oom(err);
  for (size_t i = 0; i < n; i++)
    if (lls_pg_arr_add(a, ids[i].ptr, ids[i].len) != 0) {
      lls_pg_trim_arrays(pg);
      return lls_error_oom(err);
    }
  lls_pg_arr_finish(a, OID_TEXT, n, 0);
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  if (bump_seq(pg, coll_id, &s, err) != 0) goto fail;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_int8(&p, coll_id);
  lls_pg_param_int8(&p, s);
  lls_pg_param_buf(&p, a);
  PGresult *r = lls_pg_run(pg, ST_VEC_DELETE, &p, 0, err);
  if (r == NULL) goto fail;
  int64_t removed = PQntuples(r) > 0 ? lls_pg_int8_at(r, 0, 0) : 0;
  PQclear(r);
  lls_pg_trim_arrays(pg);
  if (removed == 0) {
    /* nothing changed: undo the bump (we held the lock, so seq was s - 1) */
    lls_pg_unit_end(pg, 0, 0, NULL);
    *seq = s - 1;
    return 0;
  }
  if (lls_pg_unit_end(pg, 0, 1, err) != 0) return -1;
  *deleted = (size_t)removed;
  *seq = s;
  return 0;
fail:
  lls_pg_trim_arrays(pg);
  lls_pg_unit_end(pg, 0, 0, NULL);
  return -1;
}

void lls_pg_vec_row_at(const PGresult *r, int i, lls_vec_row *row) {
  row->id = lls_pg_str_at(r, i, 0);
  row->scope = lls_pg_str_at(r, i, 1);
  row->vector = lls_pg_str_at(r, i, 2);
  row->metadata = lls_pg_str_at(r, i, 3);
  row->created_at = lls_pg_time_or_zero(r, i, 4);
  row->updated_at = lls_pg_time_or_zero(r, i, 5);
  row->has_event_time = !PQgetisnull(r, i, 6);
  row->event_time = lls_pg_time_or_zero(r, i, 6);
  row->expires_at = lls_pg_time_or_zero(r, i, 7);
  row->seq = lls_pg_int8_at(r, i, 8);
  row->deleted = 0;
}

/* One attempt of vec_load; *delivered counts rows handed to the sink. The
 * floor is read after the cursor is declared: it only grows, so a floor
 * <= since then was <= since in the cursor's (earlier) snapshot too. */
static int vec_load_once(pg_backend *pg, int64_t coll_id, int64_t since, lls_vec_sink sink,
                         void *ud, size_t *delivered, lls_error *err) {
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_int8(&p, coll_id);
  if (since > 0) lls_pg_param_int8(&p, since);
  if (lls_pg_cursor_open(pg, since > 0 ? ST_VEC_LOAD_SINCE : ST_VEC_LOAD_ALL, &p, err) != 0)
    return -1;
  int ok = 0;
  pg_params q = {0};
  lls_pg_param_tenant(&q, pg);
  lls_pg_param_int8(&q, coll_id);
  PGresult *r = lls_pg_run(pg, ST_COLL_FLOOR, &q, 0, err);
  if (r == NULL) goto done;
  if (PQntuples(r) == 0) {
    PQclear(r);
    lls_pg_coll_missing(err, coll_id);
    goto done;
  }
  int64_t floor = lls_pg_int8_at(r, 0, 0);
  PQclear(r);
  if (since > 0 && since < floor) {
    lls_error_set(err, LLS_EVERSION,
                  "collection history pruned; reload (changes since seq %lld were asked for,"
                  " tombstones up to seq %lld are gone)",
                  (long long)since, (long long)floor);
    goto done;
  }
  err->code = LLS_OK;
  err->message[0] = '\0';
  for (;;) {
    if (lls_pg_raw_exec(pg, FETCH_ROWS_SQL, 1, &r, err) != 0) goto done;
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
      lls_vec_row row;
      lls_pg_vec_row_at(r, i, &row);
      row.deleted = PQgetlength(r, i, 9) == 1 && PQgetvalue(r, i, 9)[0] != 0;
      if (sink(ud, &row, err) != 0) {
        PQclear(r);
        lls_error_stopped(err);
        goto done;
      }
      (*delivered)++;
    }
    PQclear(r);
    if (rows < FETCH_ROWS) break;
  }
  ok = 1;
done:
  return lls_pg_cursor_close(pg, VEC_CURSOR, ok, err);
}

/* A read: retried once on a fresh connection when the connection was lost
 * before any row reached the sink (outside a caller's transaction). */
static int pg_vec_load(lls_backend *b, int64_t coll_id, int64_t since, lls_vec_sink sink,
                       void *ud, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  for (int attempt = 0;; attempt++) {
    size_t delivered = 0;
    if (vec_load_once(pg, coll_id, since, sink, ud, &delivered, err) == 0) return 0;
    if (attempt > 0 || delivered > 0 || pg->txdepth > 0 || !lls_pg_conn_lost(pg)) return -1;
  }
}

/* -------------------------------------------------------------- snapshots */

/* Locks the collection, replaces the parts unless the stored snapshot is
 * newer, prunes covered tombstones; all in one unit. */
static int pg_snap_save(lls_backend *b, int64_t coll_id, int64_t seq, const void *data,
                        size_t len, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  const char *bytes = data;
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_int8(&p, coll_id);
  PGresult *r = lls_pg_run(pg, ST_SNAP_LOCK, &p, 0, err);
  if (r == NULL) goto fail;
  int found = PQntuples(r) > 0;
  PQclear(r);
  if (!found) {
    lls_pg_coll_missing(err, coll_id);
    goto fail;
  }
  lls_pg_param_int8(&p, seq);
  if ((r = lls_pg_run(pg, ST_SNAP_CLEAR, &p, 0, err)) == NULL) goto fail;
  int64_t old = lls_pg_int8_at(r, 0, 0);
  PQclear(r);
  if (old > seq) return lls_pg_unit_end(pg, 0, 1, err); /* a newer one is stored */
  size_t off = 0;
  for (int32_t part = 0; part == 0 || off < len; part++) {
    size_t chunk = len - off < SNAP_PART_BYTES ? len - off : SNAP_PART_BYTES;
    pg_params q = {0};
    lls_pg_param_tenant(&q, pg);
    lls_pg_param_int8(&q, coll_id);
    lls_pg_param_int4(&q, part);
    lls_pg_param_int8(&q, seq);
    lls_pg_param_bytes(&q, bytes ? bytes + off : "", chunk);
    if ((r = lls_pg_run(pg, ST_SNAP_PART, &q, 0, err)) == NULL) goto fail;
    PQclear(r);
    off += chunk;
  }
  if ((r = lls_pg_run(pg, ST_SNAP_PRUNE, &p, 0, err)) == NULL) goto fail;
  PQclear(r);
  return lls_pg_unit_end(pg, 0, 1, err);
fail:
  lls_pg_unit_end(pg, 0, 0, NULL);
  return -1;
}

/* One attempt of snap_load: the parts through a cursor, one per fetch. */
static int snap_load_once(pg_backend *pg, int64_t coll_id, lls_buf *out, int64_t *seq,
                          int *found, lls_error *err) {
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_int8(&p, coll_id);
  out->len = 0;
  *found = 0;
  if (lls_pg_cursor_open(pg, ST_SNAP_LOAD, &p, err) != 0) return -1;
  int ok = 0;
  int32_t part = 0;
  for (;; part++) {
    PGresult *r;
    if (lls_pg_raw_exec(pg, FETCH_PART_SQL, 1, &r, err) != 0) goto done;
    if (PQntuples(r) == 0) {
      PQclear(r);
      break;
    }
    int64_t s = lls_pg_int8_at(r, 0, 1);
    if (lls_pg_int4_at(r, 0, 0) != part || (part > 0 && s != *seq)) {
      PQclear(r);
      lls_error_set(err, LLS_EIO, "snapshot of collection %lld has inconsistent parts",
                    (long long)coll_id);
      goto done;
    }
    lls_str chunk = lls_pg_str_at(r, 0, 2);
    int64_t total = lls_pg_int8_at(r, 0, 3);
    if (part == 0) {
      *seq = s;
      /* sized once: a snapshot can be gigabytes, doubling would waste as much */
      if (total > 0 && (uint64_t)total < SIZE_MAX && (size_t)total > out->cap)
        lls_buf_reserve(out, (size_t)total);
    }
    int rc = lls_buf_append(out, chunk.ptr, chunk.len);
    PQclear(r);
    if (rc != 0) {
      lls_error_set(err, LLS_EIO, "out of memory loading a snapshot");
      goto done;
    }
  }
  *found = part > 0;
  ok = 1;
done:
  if (!ok) *found = 0;
  return lls_pg_cursor_close(pg, SNAP_CURSOR, ok, err);
}

/* A read, retried like vec_load (nothing reaches the caller until done). */
static int pg_snap_load(lls_backend *b, int64_t coll_id, lls_buf *out, int64_t *seq,
                        int *found, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  for (int attempt = 0;; attempt++) {
    if (snap_load_once(pg, coll_id, out, seq, found, err) == 0) return 0;
    if (attempt > 0 || pg->txdepth > 0 || !lls_pg_conn_lost(pg)) return -1;
  }
}

/* A read: the whole page arrives before the sink sees a row, so the retry
 * lls_pg_run_stmt makes on a lost connection repeats nothing. */
static int pg_vec_scan(lls_backend *b, int64_t coll_id, const lls_vec_scan *q, lls_vec_sink sink,
                       void *ud, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  const pg_stmt *def = lls_pg_vec_scan_stmt((int)q->order, q->scope.ptr != NULL);
  if (def == NULL) return lls_error_set(err, LLS_EINVALID, "scan vectors: unknown order");
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_int8(&p, coll_id);
  if (q->has_after) lls_pg_param_bytes(&p, q->after_id.ptr, q->after_id.len);
  else lls_pg_param_bytes(&p, "", 0);
  if (q->has_after && q->order == LLS_VEC_BY_TIME) lls_pg_param_time(&p, q->after_time);
  else lls_pg_param_null(&p);
  lls_pg_param_time(&p, q->now);
  lls_pg_param_limit(&p, q->limit);
  if (q->scope.ptr != NULL) lls_pg_param_bytes(&p, q->scope.ptr, q->scope.len);
  PGresult *r = lls_pg_run_stmt(pg, def, &p, 1, err);
  if (r == NULL) return -1;
  int rows = PQntuples(r);
  if (rows == 0) {
    PQclear(r);
    return lls_pg_coll_missing(err, coll_id);
  }
  err->code = LLS_OK;
  err->message[0] = '\0';
  size_t given = 0;
  for (int i = 0; i < rows && given < q->limit; i++) {
    if (PQgetisnull(r, i, 0)) continue; /* the collection, without rows */
    given++;
    lls_vec_row row;
    lls_pg_vec_row_at(r, i, &row);
    if (sink(ud, &row, err) != 0) {
      PQclear(r);
      return lls_error_stopped(err);
    }
  }
  PQclear(r);
  return 0;
}

const lls_vec_ops lls_postgres_vec_ops = {
    .coll_create = pg_coll_create,
    .coll_get = pg_coll_get,
    .coll_list = pg_coll_list,
    .coll_drop = pg_coll_drop,
    .coll_seq = pg_coll_seq,
    .put = pg_vec_put,
    .del = pg_vec_delete,
    .load = pg_vec_load,
    .snap_save = pg_snap_save,
    .snap_load = pg_snap_load,
    .scan = pg_vec_scan,
};
