/*
 * xport.c -- the SQLite backend's export/import slots (lls_xport_ops):
 * key-value and vector pages in key order, batch loads, and the
 * passthrough sections of imported files (export_sections).
 */
#include "backends/sqlite/xport.h"

#include "backends/sqlite/conn.h"
#include "backends/sqlite/rowsum.h"
#include "backends/sqlite/vectors.h"

#include <string.h>

/* Binds bytes as TEXT, or SQL NULL when empty ("none" for metadata, kv_id). */
static int bind_text_or_null(sqlite3_stmt *s, int i, lls_str v) {
  return v.len == 0 ? sqlite3_bind_null(s, i) : bind_bytes(s, i, v, 1);
}

static int sqlite_kv_dump(lls_backend *base, lls_str after, int64_t now, size_t limit,
                          lls_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_stmt(b, after.ptr != NULL ? ST_KV_DUMP_AFTER : ST_KV_DUMP, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK && after.ptr != NULL) rc = bind_bytes(s, 2, after, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, limit ? clamp_limit(limit) : -1);
  if (rc != SQLITE_OK) {
    done(s);
    return lls_sqlite_fail(b->db, rc, "dump", err);
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_str k, v, meta, id;
    lls_row *row = NULL;
    if (column_bytes(s, 0, &k, 1) == 0 && column_bytes(s, 1, &v, 0) == 0 &&
        column_bytes(s, 2, &meta, 1) == 0 && column_bytes(s, 3, &id, 1) == 0)
      row = lls_rows_add_ext(out, k, v, meta, id);
    if (row == NULL) {
      done(s);
      return lls_error_oom(err);
    }
    if (lls_rowsum_check_kv(b->tenant_sum, k, v, sqlite3_column_int64(s, 6), s, 7, "dump",
                            err) != 0) {
      done(s);
      return -1;
    }
    row->created_at = sqlite3_column_int64(s, 4);
    row->updated_at = sqlite3_column_int64(s, 5);
    row->expires_at = sqlite3_column_int64(s, 6); /* NULL reads as 0 */
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "dump", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

/* One unit (see lls_sqlite_unit_begin), so a failure, LLS_CONFLICT_ERROR's included,
 * writes nothing even inside the importer's transaction. Records are
 * resolved in order: a key repeated in recs meets the copy written before
 * it. One cached statement step per record. */
static int sqlite_kv_load(lls_backend *base, const lls_kv_rec *recs, size_t n,
                          lls_conflict on_conflict, int64_t now, size_t *written,
                          lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "import";
  int replace = on_conflict == LLS_CONFLICT_REPLACE, nested;
  if (n == 0) {
    *written = 0;
    return lls_sqlite_check_txn(b, err);
  }
  if (lls_sqlite_unit_begin(b, &nested, what, err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_stmt(b, replace ? ST_KV_LOAD_REPLACE : ST_KV_LOAD_INSERT, err);
  if (s == NULL) goto fail;
  size_t count = 0;
  for (size_t i = 0; i < n; i++) {
    const lls_kv_rec *r = &recs[i];
    int rc = bind_tenant(b, s);
    if (rc == SQLITE_OK) rc = bind_bytes(s, 2, r->key, 1);
    if (rc == SQLITE_OK) rc = bind_bytes(s, 3, r->value, 0);
    if (rc == SQLITE_OK) rc = bind_text_or_null(s, 4, r->metadata);
    if (rc == SQLITE_OK) rc = bind_text_or_null(s, 5, r->kv_id);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 6, r->created_at);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 7, r->updated_at);
    if (rc == SQLITE_OK) rc = bind_expiry(s, 8, r->expires_at);
    if (rc == SQLITE_OK && !replace) rc = sqlite3_bind_int64(s, 9, now);
    if (rc == SQLITE_OK)
      rc = sqlite3_bind_int64(s, 10,
                              lls_rowsum_kv(b->tenant_sum, r->key, r->value, r->expires_at));
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
      lls_sqlite_fail(b->db, rc, what, err);
      done(s);
      goto fail;
    }
    int changed = sqlite3_changes(b->db) > 0;
    done(s);
    if (changed) {
      count++;
    } else if (on_conflict == LLS_CONFLICT_ERROR) {
      lls_error_set(err, LLS_ECONFLICT, "key '%.*s' already exists", QUOTE_LEN(r->key),
                    r->key.ptr);
      goto fail;
    }
  }
  if (lls_sqlite_unit_commit(b, nested, what, err) != 0) goto fail;
  *written = count;
  return 0;
fail:
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

/* The header check and the page share one read transaction. Expired rows
 * are included: vector rows are filtered at search time, not by storage. */
static int sqlite_vec_dump(lls_backend *base, int64_t coll_id, lls_str after_id, size_t limit,
                           lls_vec_sink sink, void *ud, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "dump vectors";
  int own;
  coll_head h;
  if (lls_sqlite_read_begin(b, &own, what, err) != 0) return -1;
  if (lls_sqlite_read_head(b, coll_id, &h, what, err) != 0)
    return lls_sqlite_read_end(b, own, 0, what, err);
  int id = after_id.ptr != NULL ? ST_VEC_DUMP_AFTER : ST_VEC_DUMP;
  sqlite3_stmt *s = lls_sqlite_stmt(b, id, err);
  if (s == NULL) return lls_sqlite_read_end(b, own, 0, what, err);
  int rc = bind_coll(b, s, coll_id);
  if (rc == SQLITE_OK && after_id.ptr != NULL) rc = bind_bytes(s, 3, after_id, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, limit ? clamp_limit(limit) : -1);
  if (rc != SQLITE_OK) {
    lls_sqlite_fail(b->db, rc, what, err);
    done(s);
    return lls_sqlite_read_end(b, own, 0, what, err);
  }
  return lls_sqlite_stream_rows(b, s, coll_id, own, sink, ud, what, err);
}

static int sqlite_vec_has(lls_backend *base, int64_t coll_id, const lls_str *ids, size_t n,
                          unsigned char *present, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "look up vectors";
  int own;
  coll_head h;
  if (lls_sqlite_read_begin(b, &own, what, err) != 0) return -1;
  if (lls_sqlite_read_head(b, coll_id, &h, what, err) != 0)
    return lls_sqlite_read_end(b, own, 0, what, err);
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_VEC_HAS, err);
  if (s == NULL) return lls_sqlite_read_end(b, own, 0, what, err);
  for (size_t i = 0; i < n; i++) {
    int rc = bind_coll(b, s, coll_id);
    if (rc == SQLITE_OK) rc = bind_bytes(s, 3, ids[i], 1);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    present[i] = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      lls_sqlite_fail(b->db, rc, what, err);
      done(s);
      return lls_sqlite_read_end(b, own, 0, what, err);
    }
    done(s);
  }
  return lls_sqlite_read_end(b, own, 1, what, err);
}

/* Section names end at a NUL in the memory backend's keys; refusing them
 * everywhere keeps the backends' contents (and orders) the same. */
static int bad_section(lls_str section, lls_error *err) {
  if (section.len == 0 || memchr(section.ptr, '\0', section.len) == NULL) return 0;
  return lls_error_set(err, LLS_EINVALID, "section name '%.*s' contains a NUL byte",
                       QUOTE_LEN(section), section.ptr);
}

static int sqlite_sec_put(lls_backend *base, const lls_str *sections, const int64_t *ords,
                          const lls_str *json, size_t n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "store sections";
  for (size_t i = 0; i < n; i++)
    if (bad_section(sections[i], err) != 0) return -1;
  if (n == 0) return lls_sqlite_check_txn(b, err);
  int nested;
  if (lls_sqlite_unit_begin(b, &nested, what, err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_SEC_PUT, err);
  if (s == NULL) goto fail;
  for (size_t i = 0; i < n; i++) {
    int rc = bind_tenant(b, s);
    if (rc == SQLITE_OK) rc = bind_bytes(s, 2, sections[i], 1);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, ords[i]);
    if (rc == SQLITE_OK) rc = bind_bytes(s, 4, json[i], 1);
    if (lls_sqlite_run(b, s, rc, what, err) != 0) goto fail;
  }
  if (lls_sqlite_unit_commit(b, nested, what, err) != 0) goto fail;
  return 0;
fail:
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

static int sqlite_sec_dump(lls_backend *base, lls_str after_section, int64_t after_ord,
                           size_t limit, lls_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "dump sections";
  int after = after_section.ptr != NULL;
  sqlite3_stmt *s = lls_sqlite_stmt(b, after ? ST_SEC_DUMP_AFTER : ST_SEC_DUMP, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK && after) rc = bind_bytes(s, 2, after_section, 1);
  if (rc == SQLITE_OK && after) rc = sqlite3_bind_int64(s, 3, after_ord);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, limit ? clamp_limit(limit) : -1);
  if (rc != SQLITE_OK) {
    done(s);
    return lls_sqlite_fail(b->db, rc, what, err);
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_str sec, rec;
    lls_row *row = NULL;
    if (column_bytes(s, 0, &sec, 1) == 0 && column_bytes(s, 2, &rec, 1) == 0)
      row = lls_rows_add(out, sec.ptr, sec.len, rec.ptr, rec.len);
    if (row == NULL) {
      done(s);
      return lls_error_oom(err);
    }
    row->created_at = sqlite3_column_int64(s, 1);
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, what, err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sqlite_sec_clear(lls_backend *base, lls_str section, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (bad_section(section, err) != 0 || lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_stmt(b, section.len ? ST_SEC_CLEAR : ST_SEC_CLEAR_ALL, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK && section.len) rc = bind_bytes(s, 2, section, 1);
  return lls_sqlite_run(b, s, rc, "clear sections", err);
}

const lls_xport_ops lls_sqlite_xport_ops = {
    .kv_dump = sqlite_kv_dump,
    .kv_load = sqlite_kv_load,
    .vec_dump = sqlite_vec_dump,
    .vec_has = sqlite_vec_has,
    .sec_put = sqlite_sec_put,
    .sec_dump = sqlite_sec_dump,
    .sec_clear = sqlite_sec_clear,
};
