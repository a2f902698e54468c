/*
 * vectors.c -- the SQLite backend's vector-collection slots (lls_vec_ops):
 * collections, rows stamped with the collection's change sequence,
 * tombstones and snapshots (the protocol is described with the schema, in
 * schema.c).
 */
#include "backends/sqlite/vectors.h"

#include "backends/sqlite/rowsum.h"
#include "backends/sqlite/vec_scan.h"
#include "base/clock.h"
#include "base/utf8.h"
#include "vector/distance.h"

#include <string.h>

/* Snapshot piece size: SQLite builds a whole record in memory before
 * writing it, so a piece bounds that copy, and 1 GB (SQLite's cap on one
 * value) is no limit on an index. */
#define SNAP_PART_BYTES ((size_t)16 << 20)

/* Tombstones younger than this survive a snapshot: a handle that read the
 * collection just before the snapshot still catches up without a reload. */
#define TOMB_GRACE_US ((int64_t)3600 * 1000000)

/* Reads a COLL_COLUMNS row. -1 + LLS_EFORMAT for a row this library would
 * not have written (unknown metric, overlong name). */
static int fill_coll(sqlite3_stmt *s, lls_coll_info *out, lls_error *err) {
  memset(out, 0, sizeof *out);
  out->id = sqlite3_column_int64(s, 0);
  lls_str name, metric;
  if (column_bytes(s, 1, &name, 1) != 0 || column_bytes(s, 3, &metric, 1) != 0)
    return lls_error_oom(err);
  if (name.len >= sizeof out->name)
    return lls_error_set(err, LLS_EFORMAT, "collection %lld: stored name is too long",
                         (long long)out->id);
  memcpy(out->name, name.ptr, name.len);
  out->name[name.len] = '\0';
  out->metric = lls_metric_parse(metric.ptr, metric.len);
  if (out->metric < 0)
    return lls_error_set(err, LLS_EFORMAT, "collection '%s': unknown stored metric '%.*s'",
                         out->name, (int)(metric.len > 32 ? 32 : metric.len), metric.ptr);
  out->dimension = sqlite3_column_int(s, 2);
  out->m = sqlite3_column_int(s, 4);
  out->ef_construction = sqlite3_column_int(s, 5);
  out->ef_search = sqlite3_column_int(s, 6);
  out->created_at = sqlite3_column_int64(s, 7);
  out->seq = sqlite3_column_int64(s, 8);
  out->count = sqlite3_column_int64(s, 9);
  return 0;
}

int lls_sqlite_read_head(sqlite_backend *b, int64_t coll_id, coll_head *h, const char *what,
                         lls_error *err) {
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_COLL_HEAD, err);
  if (s == NULL) return -1;
  int rc = bind_coll(b, s, coll_id);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    h->seq = sqlite3_column_int64(s, 0);
    h->count = sqlite3_column_int64(s, 1);
    h->dimension = sqlite3_column_int(s, 2);
    h->tomb_floor = sqlite3_column_int64(s, 3);
    done(s);
    return 0;
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, what, err);
    done(s);
    return -1;
  }
  done(s);
  return lls_error_set(err, LLS_ENOTFOUND, "%s: collection %lld does not exist", what,
                       (long long)coll_id);
}

static int sqlite_coll_create(lls_backend *base, lls_coll_info *info, int64_t now,
                              lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *metric = lls_metric_name((lls_metric)info->metric);
  if (metric == NULL)
    return lls_error_set(err, LLS_EINVALID, "create collection: unknown metric %d",
                         info->metric);
  size_t nlen = strnlen(info->name, sizeof info->name);
  if (nlen == sizeof info->name)
    return lls_error_set(err, LLS_EINVALID, "create collection: name is not terminated");
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_COLL_CREATE, err);
  if (s == NULL) return -1;
  lls_str name = {info->name, nlen};
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, name, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 3, info->dimension);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(s, 4, metric, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 5, info->m);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 6, info->ef_construction);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 7, info->ef_search);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 8, now);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "create collection", err);
    done(s);
    return -1;
  }
  int created = sqlite3_changes(b->db) > 0;
  done(s);
  if (!created)
    return lls_error_set(err, LLS_ECONFLICT, "collection '%s' already exists", info->name);
  info->id = sqlite3_last_insert_rowid(b->db);
  info->created_at = now;
  info->seq = 0;
  info->count = 0;
  return 0;
}

/* Name lookup through the UNIQUE (tenant_id, name) index. */
static int coll_find(sqlite_backend *b, const char *name, lls_coll_info *out, int *found,
                     const char *what, lls_error *err) {
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_COLL_GET, err);
  if (s == NULL) return -1;
  lls_str n = {name, strlen(name)};
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, n, 1);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  *found = 0;
  if (rc == SQLITE_ROW) {
    if (fill_coll(s, out, err) != 0) {
      done(s);
      return -1;
    }
    *found = 1;
    rc = sqlite3_step(s);
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, what, err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sqlite_coll_get(lls_backend *base, const char *name, lls_coll_info *out,
                           int *found, lls_error *err) {
  return coll_find((sqlite_backend *)base, name, out, found, "collection", err);
}

/* Literal prefix as an index range, like scan(): [prefix, upper). */
static int sqlite_coll_list(lls_backend *base, lls_str prefix, lls_coll_sink sink, void *ud,
                            lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int has_upper;
  if (lls_prefix_upper(prefix, &b->upper, &has_upper) != 0) return lls_error_oom(err);
  sqlite3_stmt *s = lls_sqlite_stmt(b, has_upper ? ST_COLL_LIST_GE_LT : ST_COLL_LIST_GE, err);
  if (s == NULL) return -1;
  lls_str upper = {b->upper.data, b->upper.len};
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, prefix, 1);
  if (rc == SQLITE_OK && has_upper) rc = bind_bytes(s, 3, upper, 1);
  if (rc != SQLITE_OK) {
    done(s);
    return lls_sqlite_fail(b->db, rc, "list collections", err);
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_coll_info info;
    if (fill_coll(s, &info, err) != 0) {
      done(s);
      return -1;
    }
    if (sink(ud, &info, err) != 0) {
      done(s);
      return lls_error_stopped(err);
    }
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "list collections", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

/* Rows, tombstones, snapshot and the collection itself, in one unit. */
static int sqlite_coll_drop(lls_backend *base, const char *name, int *dropped,
                            lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  static const int children[] = {ST_VEC_DROP, ST_TOMB_DROP, ST_SNAP_DROP, ST_COLL_DELETE};
  const char *what = "drop collection";
  int nested, found;
  lls_coll_info info;
  if (lls_sqlite_unit_begin(b, &nested, what, err) != 0) return -1;
  if (coll_find(b, name, &info, &found, what, err) != 0) goto fail;
  for (size_t i = 0; found && i < sizeof children / sizeof children[0]; i++) {
    sqlite3_stmt *s = lls_sqlite_stmt(b, children[i], err);
    if (s == NULL || lls_sqlite_run(b, s, bind_coll(b, s, info.id), what, err) != 0) goto fail;
  }
  if (lls_sqlite_unit_commit(b, nested, what, err) != 0) goto fail;
  *dropped = found;
  return 0;
fail:
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

static int sqlite_coll_seq(lls_backend *base, int64_t coll_id, int64_t *seq, int64_t *count,
                           lls_error *err) {
  coll_head h;
  if (lls_sqlite_read_head((sqlite_backend *)base, coll_id, &h, "collection seq", err) != 0)
    return -1;
  *seq = h.seq;
  *count = h.count;
  return 0;
}

/* ?1..?12 of ST_VEC_INSERT and ST_VEC_UPDATE (?12: the row's checksum). */
static int bind_vec(sqlite_backend *b, sqlite3_stmt *s, int64_t coll_id,
                    const lls_vec_row *r, int64_t seq) {
  int rc = bind_coll(b, s, coll_id);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 3, r->id, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 4, r->scope, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 5, r->vector, 0);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 6, r->metadata, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 7, r->created_at);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 8, r->updated_at);
  if (rc == SQLITE_OK)
    rc = r->has_event_time ? sqlite3_bind_int64(s, 9, r->event_time) : sqlite3_bind_null(s, 9);
  if (rc == SQLITE_OK) rc = bind_expiry(s, 10, r->expires_at);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 11, seq);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, 12, lls_rowsum_vec(b->tenant_sum, coll_id, r, seq));
  return rc;
}

/* One unit: read seq, write every row stamped seq + 1, then store seq + 1
 * and the new count. The write lock is held from lls_sqlite_unit_begin (BEGIN
 * IMMEDIATE, or the caller's transaction, which begin() also opens
 * IMMEDIATE), so no other writer can take the same seq. Per row: one
 * step of a cached insert, and of an update only for an id that exists. */
static int sqlite_vec_put(lls_backend *base, int64_t coll_id, const lls_vec_row *rows,
                          size_t n, int insert_only, int64_t *seq, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = insert_only ? "add vectors" : "upsert vectors";
  coll_head h;
  if (n == 0) {
    if (lls_sqlite_read_head(b, coll_id, &h, what, err) != 0) return -1;
    *seq = h.seq;
    return 0;
  }
  int nested;
  if (lls_sqlite_unit_begin(b, &nested, what, err) != 0) return -1;
  if (lls_sqlite_read_head(b, coll_id, &h, what, err) != 0) goto fail;
  int64_t next = h.seq + 1, added = 0;
  size_t vbytes = (size_t)h.dimension * sizeof(float);
  sqlite3_stmt *ins = lls_sqlite_stmt(b, ST_VEC_INSERT, err), *upd = NULL;
  if (ins == NULL) goto fail;
  for (size_t i = 0; i < n; i++) {
    const lls_vec_row *r = &rows[i];
    if (r->vector.len != vbytes) {
      lls_error_set(err, LLS_EINVALID,
                    "%s: id '%.*s': vector has %zu bytes, collection expects %zu"
                    " (dimension %d)",
                    what, QUOTE_LEN(r->id), r->id.ptr, r->vector.len, vbytes, h.dimension);
      goto fail;
    }
    int rc = bind_vec(b, ins, coll_id, r, next);
    if (rc == SQLITE_OK) rc = sqlite3_step(ins);
    if (rc != SQLITE_DONE) {
      lls_sqlite_fail(b->db, rc, what, err);
      done(ins);
      goto fail;
    }
    int inserted = sqlite3_changes(b->db) > 0;
    done(ins);
    if (inserted) {
      added++;
      continue;
    }
    if (insert_only) {
      lls_error_set(err, LLS_ECONFLICT, "id '%.*s' already exists", QUOTE_LEN(r->id),
                    r->id.ptr);
      goto fail;
    }
    if (upd == NULL && (upd = lls_sqlite_stmt(b, ST_VEC_UPDATE, err)) == NULL) goto fail;
    if (lls_sqlite_run(b, upd, bind_vec(b, upd, coll_id, r, next), what, err) != 0) goto fail;
  }
  sqlite3_stmt *st = lls_sqlite_stmt(b, ST_COLL_STAMP, err);
  if (st == NULL) goto fail;
  int rc = bind_coll(b, st, coll_id);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 3, next);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 4, added);
  if (lls_sqlite_run(b, st, rc, what, err) != 0 ||
      lls_sqlite_unit_commit(b, nested, what, err) != 0)
    goto fail;
  *seq = next;
  return 0;
fail:
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

/* Like vec_put; the seq and count are stored only when a row went, so a
 * delete of absent ids changes nothing (not even the seq). deleted_at is
 * bookkeeping for tombstone pruning, read from this machine's clock. */
static int sqlite_vec_delete(lls_backend *base, int64_t coll_id, const lls_str *ids,
                             size_t n, size_t *deleted, int64_t *seq, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "delete vectors";
  coll_head h;
  *deleted = 0;
  if (n == 0) {
    if (lls_sqlite_read_head(b, coll_id, &h, what, err) != 0) return -1;
    *seq = h.seq;
    return 0;
  }
  int nested;
  if (lls_sqlite_unit_begin(b, &nested, what, err) != 0) return -1;
  if (lls_sqlite_read_head(b, coll_id, &h, what, err) != 0) goto fail;
  int64_t next = h.seq + 1, now = lls_now_us();
  size_t count = 0;
  sqlite3_stmt *del = lls_sqlite_stmt(b, ST_VEC_DELETE, err), *tomb = NULL;
  if (del == NULL) goto fail;
  for (size_t i = 0; i < n; i++) {
    int rc = bind_coll(b, del, coll_id);
    if (rc == SQLITE_OK) rc = bind_bytes(del, 3, ids[i], 1);
    if (rc == SQLITE_OK) rc = sqlite3_step(del);
    if (rc != SQLITE_DONE) {
      lls_sqlite_fail(b->db, rc, what, err);
      done(del);
      goto fail;
    }
    int gone = sqlite3_changes(b->db) > 0;
    done(del);
    if (!gone) continue;
    count++;
    if (tomb == NULL && (tomb = lls_sqlite_stmt(b, ST_TOMB_PUT, err)) == NULL) goto fail;
    rc = bind_coll(b, tomb, coll_id);
    if (rc == SQLITE_OK) rc = bind_bytes(tomb, 3, ids[i], 1);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(tomb, 4, next);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(tomb, 5, now);
    if (lls_sqlite_run(b, tomb, rc, what, err) != 0) goto fail;
  }
  if (count > 0) {
    sqlite3_stmt *st = lls_sqlite_stmt(b, ST_COLL_STAMP, err);
    if (st == NULL) goto fail;
    int rc = bind_coll(b, st, coll_id);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 3, next);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 4, -(int64_t)count);
    if (lls_sqlite_run(b, st, rc, what, err) != 0) goto fail;
  }
  if (lls_sqlite_unit_commit(b, nested, what, err) != 0) goto fail;
  *deleted = count;
  *seq = count > 0 ? next : h.seq;
  return 0;
fail:
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

int lls_sqlite_stream_rows(sqlite_backend *b, sqlite3_stmt *s, int64_t coll_id, int own,
                           lls_vec_sink sink, void *ud, const char *what, lls_error *err) {
  int rc, has_deleted = sqlite3_column_count(s) > 10;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_vec_row row;
    memset(&row, 0, sizeof row);
    if (column_bytes(s, 0, &row.id, 1) != 0 || column_bytes(s, 1, &row.scope, 1) != 0 ||
        column_bytes(s, 2, &row.vector, 0) != 0 || column_bytes(s, 3, &row.metadata, 1) != 0) {
      done(s);
      lls_error_oom(err);
      return lls_sqlite_read_end(b, own, 0, what, err);
    }
    row.created_at = sqlite3_column_int64(s, 4);
    row.updated_at = sqlite3_column_int64(s, 5);
    row.has_event_time = sqlite3_column_type(s, 6) != SQLITE_NULL;
    row.event_time = sqlite3_column_int64(s, 6);
    row.expires_at = sqlite3_column_int64(s, 7); /* NULL reads as 0: never */
    row.seq = sqlite3_column_int64(s, 8);
    row.deleted = has_deleted ? sqlite3_column_int(s, 10) : 0;
    if (!row.deleted && lls_rowsum_check_vec(b->tenant_sum, coll_id, &row, s, 9, what, err) != 0) {
      done(s);
      return lls_sqlite_read_end(b, own, 0, what, err);
    }
    if (sink(ud, &row, err) != 0) {
      done(s);
      lls_error_stopped(err);
      return lls_sqlite_read_end(b, own, 0, what, err);
    }
  }
  if (rc != SQLITE_DONE) lls_sqlite_fail(b->db, rc, what, err);
  done(s);
  return lls_sqlite_read_end(b, own, rc == SQLITE_DONE, what, err);
}

/* The header check and the stream share one read transaction, so the
 * stream is exactly the collection at one seq. The sink runs with the
 * statement open; it must not call back into the backend (backend.h). */
static int sqlite_vec_load(lls_backend *base, int64_t coll_id, int64_t since,
                           lls_vec_sink sink, void *ud, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "load vectors";
  if (since < 0)
    return lls_error_set(err, LLS_EINVALID, "%s: since must be >= 0, got %lld", what,
                         (long long)since);
  int own;
  coll_head h;
  if (lls_sqlite_read_begin(b, &own, what, err) != 0) return -1;
  if (lls_sqlite_read_head(b, coll_id, &h, what, err) != 0)
    return lls_sqlite_read_end(b, own, 0, what, err);
  if (since > 0 && since < h.tomb_floor) {
    lls_error_set(err, LLS_EVERSION, "collection history pruned; reload");
    return lls_sqlite_read_end(b, own, 0, what, err);
  }
  sqlite3_stmt *s = lls_sqlite_stmt(b, since > 0 ? ST_VEC_LOAD_SINCE : ST_VEC_LOAD_ALL, err);
  if (s == NULL) return lls_sqlite_read_end(b, own, 0, what, err);
  int rc = bind_coll(b, s, coll_id);
  if (rc == SQLITE_OK && since > 0) rc = sqlite3_bind_int64(s, 3, since);
  if (rc != SQLITE_OK) {
    lls_sqlite_fail(b->db, rc, what, err);
    done(s);
    return lls_sqlite_read_end(b, own, 0, what, err);
  }
  return lls_sqlite_stream_rows(b, s, coll_id, own, sink, ud, what, err);
}

/* Newest wins: a handle that lags behind (it read the collection earlier)
 * never replaces a snapshot taken at a higher seq. */
static int sqlite_snap_save(lls_backend *base, int64_t coll_id, int64_t seq,
                            const void *data, size_t len, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "save snapshot";
  if (data == NULL && len > 0)
    return lls_error_set(err, LLS_EINVALID, "%s: no data", what);
  int nested;
  coll_head h;
  if (lls_sqlite_unit_begin(b, &nested, what, err) != 0) return -1;
  if (lls_sqlite_read_head(b, coll_id, &h, what, err) != 0) goto fail;
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_SNAP_SEQ, err);
  if (s == NULL) goto fail;
  int rc = bind_coll(b, s, coll_id);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  int newer = rc == SQLITE_ROW && sqlite3_column_int64(s, 0) > seq;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, what, err);
    done(s);
    goto fail;
  }
  done(s);
  if (!newer) {
    int64_t now = lls_now_us();
    if ((s = lls_sqlite_stmt(b, ST_SNAP_DROP, err)) == NULL ||
        lls_sqlite_run(b, s, bind_coll(b, s, coll_id), what, err) != 0 ||
        (s = lls_sqlite_stmt(b, ST_SNAP_PART, err)) == NULL)
      goto fail;
    /* At least one part, so an empty snapshot is still found. */
    size_t off = 0;
    int part = 0;
    do {
      size_t piece = len - off < SNAP_PART_BYTES ? len - off : SNAP_PART_BYTES;
      lls_str bytes = {(const char *)data + off, piece};
      rc = bind_coll(b, s, coll_id);
      if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 3, part);
      if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, seq);
      if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 5, now);
      if (rc == SQLITE_OK) rc = bind_bytes(s, 6, bytes, 0);
      if (lls_sqlite_run(b, s, rc, what, err) != 0) goto fail;
      off += piece;
      part++;
    } while (off < len);
    /* Prune what the snapshot covers and an hour has passed over. */
    static const int prune[] = {ST_TOMB_FLOOR, ST_TOMB_PRUNE};
    for (size_t i = 0; i < sizeof prune / sizeof prune[0]; i++) {
      if ((s = lls_sqlite_stmt(b, prune[i], err)) == NULL) goto fail;
      rc = bind_coll(b, s, coll_id);
      if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, seq);
      if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, now - TOMB_GRACE_US);
      if (lls_sqlite_run(b, s, rc, what, err) != 0) goto fail;
    }
  }
  if (lls_sqlite_unit_commit(b, nested, what, err) != 0) goto fail;
  return 0;
fail:
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

/* Sizes first, so out grows once to the exact total: snapshots can be
 * gigabytes, and doubling would nearly double the peak. */
static int sqlite_snap_load(lls_backend *base, int64_t coll_id, lls_buf *out, int64_t *seq,
                            int *found, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "load snapshot";
  int own;
  coll_head h;
  out->len = 0;
  *found = 0;
  if (lls_sqlite_read_begin(b, &own, what, err) != 0) return -1;
  if (lls_sqlite_read_head(b, coll_id, &h, what, err) != 0)
    return lls_sqlite_read_end(b, own, 0, what, err);
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_SNAP_SIZE, err);
  if (s == NULL) return lls_sqlite_read_end(b, own, 0, what, err);
  int rc = bind_coll(b, s, coll_id);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) {
    lls_sqlite_fail(b->db, rc, what, err);
    done(s);
    return lls_sqlite_read_end(b, own, 0, what, err);
  }
  int64_t parts = sqlite3_column_int64(s, 0), total = sqlite3_column_int64(s, 1);
  done(s);
  if (parts == 0) return lls_sqlite_read_end(b, own, 1, what, err);
  if (total < 0 || (uint64_t)total > SIZE_MAX / 2 || lls_buf_reserve(out, (size_t)total) != 0) {
    lls_error_oom(err);
    return lls_sqlite_read_end(b, own, 0, what, err);
  }
  if ((s = lls_sqlite_stmt(b, ST_SNAP_READ, err)) == NULL)
    return lls_sqlite_read_end(b, own, 0, what, err);
  int64_t n = 0, first = 0;
  if ((rc = bind_coll(b, s, coll_id)) == SQLITE_OK) rc = sqlite3_step(s);
  for (; rc == SQLITE_ROW; rc = sqlite3_step(s)) {
    lls_str bytes;
    int64_t part = sqlite3_column_int64(s, 0), pseq = sqlite3_column_int64(s, 1);
    if (n == 0) first = pseq;
    if (part != n || pseq != first) {
      lls_error_set(err, LLS_EFORMAT, "%s: collection %lld: snapshot parts do not match",
                    what, (long long)coll_id);
      done(s);
      return lls_sqlite_read_end(b, own, 0, what, err);
    }
    if (column_bytes(s, 2, &bytes, 0) != 0 || lls_buf_append(out, bytes.ptr, bytes.len) != 0) {
      lls_error_oom(err);
      done(s);
      return lls_sqlite_read_end(b, own, 0, what, err);
    }
    n++;
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, what, err);
    done(s);
    return lls_sqlite_read_end(b, own, 0, what, err);
  }
  done(s);
  *seq = first;
  *found = 1;
  return lls_sqlite_read_end(b, own, 1, what, err);
}

/* The collection head is read in the same read transaction as the page, so
 * a dropped collection is LLS_ENOTFOUND rather than an empty page. Rows
 * stream with their checksums checked (lls_sqlite_stream_rows). */
static int sqlite_vec_scan(lls_backend *base, int64_t coll_id, const lls_vec_scan *q,
                           lls_vec_sink sink, void *ud, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "scan vectors";
  const char *sql = lls_sqlite_vec_scan_sql((int)q->order, q->scope.ptr != NULL);
  if (sql == NULL) return lls_error_set(err, LLS_EINVALID, "%s: unknown order", what);
  int own;
  coll_head h;
  if (lls_sqlite_read_begin(b, &own, what, err) != 0) return -1;
  if (lls_sqlite_read_head(b, coll_id, &h, what, err) != 0)
    return lls_sqlite_read_end(b, own, 0, what, err);
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, sql, err);
  if (s == NULL) return lls_sqlite_read_end(b, own, 0, what, err);
  lls_str none = {"", 0};
  int rc = bind_coll(b, s, coll_id);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 3, q->has_after ? q->after_id : none, 1);
  if (rc == SQLITE_OK && q->order == LLS_VEC_BY_TIME)
    rc = sqlite3_bind_int64(s, 4, q->has_after ? q->after_time : INT64_MIN);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 5, q->now);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 6, clamp_limit(q->limit));
  if (rc == SQLITE_OK && q->scope.ptr != NULL) rc = bind_bytes(s, 7, q->scope, 1);
  if (rc != SQLITE_OK) {
    lls_sqlite_fail(b->db, rc, what, err);
    done(s);
    return lls_sqlite_read_end(b, own, 0, what, err);
  }
  return lls_sqlite_stream_rows(b, s, coll_id, own, sink, ud, what, err);
}

const lls_vec_ops lls_sqlite_vec_ops = {
    .coll_create = sqlite_coll_create,
    .coll_get = sqlite_coll_get,
    .coll_list = sqlite_coll_list,
    .coll_drop = sqlite_coll_drop,
    .coll_seq = sqlite_coll_seq,
    .put = sqlite_vec_put,
    .del = sqlite_vec_delete,
    .load = sqlite_vec_load,
    .snap_save = sqlite_snap_save,
    .snap_load = sqlite_snap_load,
    .scan = sqlite_vec_scan,
};
