/*
 * vectors.h -- the SQLite backend's vector-collection op table (vectors.c),
 * and the collection reads that export (xport.c) shares with it.
 */
#ifndef LLS_BACKENDS_SQLITE_VECTORS_H
#define LLS_BACKENDS_SQLITE_VECTORS_H

#include "backend/vectors.h"
#include "backends/sqlite/conn.h"

extern const lls_vec_ops lls_sqlite_vec_ops;

/* The bookkeeping columns a write or a catch-up needs. */
typedef struct coll_head {
  int64_t seq, count, tomb_floor;
  int dimension;
} coll_head;

/* ?1 = tenant, ?2 = collection id: the head of every id-addressed statement. */
static inline int bind_coll(sqlite_backend *b, sqlite3_stmt *s, int64_t coll_id) {
  int rc = bind_tenant(b, s);
  return rc == SQLITE_OK ? sqlite3_bind_int64(s, 2, coll_id) : rc;
}

/* One primary-key read. LLS_ENOTFOUND when coll_id is not a collection of
 * this tenant: dropped since the caller looked it up, or never its own. */
int lls_sqlite_read_head(sqlite_backend *b, int64_t coll_id, coll_head *h, const char *what,
                         lls_error *err);

/* Steps s (bound, columns id, scope, vector, metadata, created_at,
 * updated_at, event_time, expires_at, seq, crc[, deleted]) over collection
 * coll_id and hands each row to sink, after checking its checksum (a
 * deleted one, a tombstone, has none); ends the read transaction as
 * read_end does. A row that fails is LLS_EINTEGRITY. */
int lls_sqlite_stream_rows(sqlite_backend *b, sqlite3_stmt *s, int64_t coll_id, int own,
                           lls_vec_sink sink, void *ud, const char *what, lls_error *err);

#endif
