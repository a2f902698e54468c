/*
 * vec_scan.c -- the SQLite backend's vector scan slot (lls_vec_ops.scan):
 * one page of a collection's live rows in id or (event_time, id) order,
 * read through the indexes of migration 13 (schema.c) or the UNIQUE
 * (collection_id, id) one, never a sort.
 *
 * Six statements, one per (order, scoped) pair, so each is a single range
 * of one index whatever the bindings. The resume point is a row value:
 * SQLite turns `(event_time, id) > (?4, ?3)` into an index range. From the
 * first row, ?3 = '' (every id is longer) and ?4 = the smallest integer.
 */
#include "backends/sqlite/vec_scan.h"

#include <stdint.h>

#include "backends/sqlite/vectors.h"

#define COLS                                                                          \
  "SELECT id, scope, vector, metadata, created_at, updated_at, event_time, expires_at," \
  " seq, crc FROM vector_embeddings"
#define LIVE " AND (expires_at IS NULL OR expires_at > ?5) AND tenant_id = ?1"

/* ?1 tenant, ?2 collection, ?3 after id, ?4 after time, ?5 now, ?6 limit,
 * ?7 scope. The INDEXED BY names the index each text is written for, so a
 * plan that would sort fails to prepare instead of running slowly. */
static const char *const SQL_SCAN[3][2] = {
    [LLS_VEC_BY_ID] = {COLS " WHERE collection_id = ?2 AND id > ?3" LIVE
                            " ORDER BY id LIMIT ?6",
                       COLS " INDEXED BY vector_embeddings_scope_id"
                            " WHERE collection_id = ?2 AND scope = ?7 AND id > ?3" LIVE
                            " ORDER BY id LIMIT ?6"},
    [LLS_VEC_BY_TIME] = {COLS " INDEXED BY vector_embeddings_time"
                              " WHERE collection_id = ?2 AND event_time IS NOT NULL"
                              " AND (event_time, id) > (?4, ?3)" LIVE
                              " ORDER BY event_time, id LIMIT ?6",
                         COLS " INDEXED BY vector_embeddings_scope_time"
                              " WHERE collection_id = ?2 AND scope = ?7"
                              " AND event_time IS NOT NULL"
                              " AND (event_time, id) > (?4, ?3)" LIVE
                              " ORDER BY event_time, id LIMIT ?6"},
    [LLS_VEC_UNTIMED] = {COLS " INDEXED BY vector_embeddings_time"
                              " WHERE collection_id = ?2 AND event_time IS NULL AND id > ?3" LIVE
                              " ORDER BY id LIMIT ?6",
                         COLS " INDEXED BY vector_embeddings_scope_time"
                              " WHERE collection_id = ?2 AND scope = ?7"
                              " AND event_time IS NULL AND id > ?3" LIVE
                              " ORDER BY id LIMIT ?6"},
};

const char *lls_sqlite_vec_scan_sql(int order, int scoped) {
  if (order < 0 || order > LLS_VEC_UNTIMED) return NULL;
  return SQL_SCAN[order][scoped != 0];
}

/* The collection head is read in the same read transaction as the page, so
 * a dropped collection is LLS_ENOTFOUND rather than an empty page. Rows
 * stream with their checksums checked (lls_sqlite_stream_rows). */
int lls_sqlite_vec_scan(lls_backend *base, int64_t coll_id, const lls_vec_scan *q,
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
