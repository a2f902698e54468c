/*
 * vec_scan.c -- the statements of the SQLite backend's vector scan slot
 * (lls_vec_ops.scan, in vectors.c): one page of a collection's live rows in id or (event_time, id) order,
 * read through the indexes of migration 13 (schema.c) or the UNIQUE
 * (collection_id, id) one, never a sort.
 *
 * Six statements, one per (order, scoped) pair, so each is a single range
 * of one index whatever the bindings. The resume point is a row value:
 * SQLite turns `(event_time, id) > (?4, ?3)` into an index range. From the
 * first row, ?3 = '' (every id is longer) and ?4 = the smallest integer.
 */
#include "backends/sqlite/vec_scan.h"


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
