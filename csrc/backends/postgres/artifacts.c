/*
 * artifacts.c -- the PostgreSQL backend's artifact slots (lls_artifact_ops,
 * backend/artifacts.h). Tables (migration 5, schema.c), each with
 * tenant_id and ENABLE + FORCE row-level security:
 *
 *   artifact_content (tenant_id, content_hash COLLATE "C", size_bytes bigint,
 *     stored_bytes bigint, is_compressed boolean, original_size_bytes bigint,
 *     chunk_count int, reference_count bigint, created_at timestamptz,
 *     last_accessed_at timestamptz, PRIMARY KEY (tenant_id, content_hash))
 *   artifact_chunks (tenant_id, content_hash, chunk_index int, raw_size int,
 *     data bytea STORAGE EXTERNAL (already LZ4: no second compression),
 *     PRIMARY KEY (tenant_id, content_hash, chunk_index),
 *     FOREIGN KEY -> artifact_content ON DELETE CASCADE DEFERRABLE)
 *   artifacts (tenant_id, artifact_id COLLATE "C", session_id, sequence bigint,
 *     content_hash, metadata jsonb, name, artifact_type CHECK (...), mime_type,
 *     size_bytes bigint, created_at, created_by, version int,
 *     parent_artifact_id, tags jsonb, stored_at, updated_at,
 *     PRIMARY KEY (tenant_id, artifact_id),
 *     FOREIGN KEYs -> sessions, artifact_content DEFERRABLE INITIALLY DEFERRED)
 *   UNIQUE INDEX artifacts_session_idx (tenant_id, session_id, sequence)
 *   INDEX artifacts_content_idx (tenant_id, content_hash)
 *
 * Chunks are ordinary rows, never large objects, so row-level security
 * covers the bytes too. Column meanings are those of the SQLite backend
 * (backends/sqlite/artifacts.c).
 *
 * Concurrency: a put locks its session row first (the UPDATE that takes
 * the sequence), then its content row (the UPSERT: a concurrent put of the
 * same new content waits for the first to commit, then only adds a
 * reference); a delete locks the artifact, the session, then the content.
 * Content of one chunk is stored by one statement (one round trip); bigger
 * content in a unit, chunk by chunk.
 */
#include "backends/postgres/artifacts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/postgres/conn.h"

/* ------------------------------------------------------------------ SQL */

#define NEXT_SEQ                                                                         \
  "UPDATE @S.sessions SET next_sequence = GREATEST(next_sequence, COALESCE((SELECT"     \
  " max(q.sequence) + 1 FROM @S.artifacts q WHERE q.tenant_id = $1 AND q.session_id = $2)," \
  " 0)) + 1, artifact_count = artifact_count + 1"                                         \
  " WHERE tenant_id = $1 AND session_id = $2 AND (expires_at IS NULL OR expires_at > $3)" \
  " RETURNING next_sequence - 1"

#define CONTENT_COLS                                                                      \
  " (tenant_id, content_hash, size_bytes, stored_bytes, is_compressed,"                  \
  " original_size_bytes, chunk_count, reference_count, created_at, last_accessed_at)"

#define ARTIFACT_COLS                                                                     \
  " (tenant_id, artifact_id, session_id, sequence, content_hash, metadata, name,"        \
  " artifact_type, mime_type, size_bytes, created_at, created_by, version,"              \
  " parent_artifact_id, tags, stored_at, updated_at)"

static const pg_stmt AST_SEQ = {"lls_artifacts_seq", NEXT_SEQ " AS seq", 3,
                               {OID_TEXT, OID_TEXT, OID_TSTZ}};

/* Content of at most one chunk, in one statement: the sequence, the
 * reference (a new content row and its chunk when the UPSERT inserted:
 * xmax is 0 exactly on a row version this statement inserted, while the
 * row an ON CONFLICT update wrote carries its lock) and the artifact.
 * No session row: no rows at all, nothing written. */
static const pg_stmt AST_PUT_SMALL = {
    "lls_artifacts_put_small",
    "WITH s AS (" NEXT_SEQ " AS seq),"
    " c AS (INSERT INTO @S.artifact_content AS x" CONTENT_COLS
    " SELECT $1, $4, $5, length($6), length($6) < $5, $5,"
    " CASE WHEN $5 > 0 THEN 1 ELSE 0 END, 1, $3, $3 FROM s"
    " ON CONFLICT (tenant_id, content_hash) DO UPDATE SET"
    " reference_count = x.reference_count + 1, last_accessed_at = EXCLUDED.last_accessed_at"
    " RETURNING (x.xmax = 0) AS fresh),"
    " k AS (INSERT INTO @S.artifact_chunks (tenant_id, content_hash, chunk_index, raw_size,"
    " data) SELECT $1, $4, 0, $5, $6 FROM c WHERE c.fresh AND $5 > 0),"
    " a AS (INSERT INTO @S.artifacts" ARTIFACT_COLS
    " SELECT $1, $2 || ':' || s.seq || ':' || $4, $2, s.seq, $4, $7::jsonb, $8, $9, $10, $5,"
    " $3, $11, 1, NULL, $12::jsonb, $3, $3 FROM s RETURNING sequence)"
    " SELECT a.sequence, c.fresh FROM a, c",
    12,
    {OID_TEXT, OID_TEXT, OID_TSTZ, OID_TEXT, OID_INT8, OID_BYTEA, OID_TEXT, OID_TEXT, OID_TEXT,
     OID_TEXT, OID_TEXT, OID_TEXT}};

/* chunk_count -1 marks the row this statement inserted (see SQLite's). */
static const pg_stmt AST_CONTENT_REF = {
    "lls_artifacts_content_ref",
    "INSERT INTO @S.artifact_content AS x" CONTENT_COLS
    " VALUES ($1, $2, $3, 0, false, $3, -1, 1, $4, $4)"
    " ON CONFLICT (tenant_id, content_hash) DO UPDATE SET"
    " reference_count = x.reference_count + 1, last_accessed_at = EXCLUDED.last_accessed_at"
    " RETURNING chunk_count",
    4,
    {OID_TEXT, OID_TEXT, OID_INT8, OID_TSTZ}};

static const pg_stmt AST_CONTENT_LOAD = {
    "lls_artifacts_content_load",
    "INSERT INTO @S.artifact_content" CONTENT_COLS
    " VALUES ($1, $2, $3, 0, false, $3, -1, (SELECT count(*) FROM @S.artifacts"
    " WHERE tenant_id = $1 AND content_hash = $2), $4, $5)",
    5,
    {OID_TEXT, OID_TEXT, OID_INT8, OID_TSTZ, OID_TSTZ}};

static const pg_stmt AST_CONTENT_EXISTS = {
    "lls_artifacts_content_exists",
    "SELECT 1 FROM @S.artifact_content WHERE tenant_id = $1 AND content_hash = $2", 2,
    {OID_TEXT, OID_TEXT}};

static const pg_stmt AST_CONTENT_TIMES = {
    "lls_artifacts_content_times",
    "UPDATE @S.artifact_content SET created_at = $3, last_accessed_at = $4"
    " WHERE tenant_id = $1 AND content_hash = $2",
    4,
    {OID_TEXT, OID_TEXT, OID_TSTZ, OID_TSTZ}};

static const pg_stmt AST_CHUNK_PUT = {
    "lls_artifacts_chunk_put",
    "INSERT INTO @S.artifact_chunks (tenant_id, content_hash, chunk_index, raw_size, data)"
    " VALUES ($1, $2, $3, $4, $5)",
    5,
    {OID_TEXT, OID_TEXT, OID_INT4, OID_INT4, OID_BYTEA}};

static const pg_stmt AST_CONTENT_FINISH = {
    "lls_artifacts_content_finish",
    "UPDATE @S.artifact_content SET stored_bytes = $3, is_compressed = $4, chunk_count = $5"
    " WHERE tenant_id = $1 AND content_hash = $2",
    5,
    {OID_TEXT, OID_TEXT, OID_INT8, OID_BOOL, OID_INT4}};

static const pg_stmt AST_ARTIFACT_PUT = {
    "lls_artifacts_put",
    "INSERT INTO @S.artifacts" ARTIFACT_COLS
    " VALUES ($1, $2 || ':' || $3 || ':' || $4, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10,"
    " $11, 1, NULL, $12::jsonb, $10, $10)",
    12,
    {OID_TEXT, OID_TEXT, OID_INT8, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_INT8,
     OID_TSTZ, OID_TEXT, OID_TEXT}};

/* An imported row, every column: texts, numbers and times as arrays (one
 * statement has at most MAX_PARAMS parameters). */
static const pg_stmt AST_ARTIFACT_LOAD = {
    "lls_artifacts_load",
    "INSERT INTO @S.artifacts" ARTIFACT_COLS
    " SELECT $1, t[1], t[2], n[1], t[3], t[4]::jsonb, t[5], t[6], t[7], n[2], m[1], t[8],"
    " n[3], t[9], t[10]::jsonb, m[2], m[3] FROM (SELECT $2::text[] AS t, $3::int8[] AS n,"
    " $4::timestamptz[] AS m) v",
    4,
    {OID_TEXT, OID_TEXT_ARR, OID_INT8_ARR, OID_TSTZ_ARR}};

/* Columns 0-19 of every artifact read (read_row). */
#define ROW_COLS                                                                          \
  "a.artifact_id, a.session_id, a.sequence, a.content_hash, a.metadata::text, a.name,"   \
  " a.artifact_type, a.mime_type, a.size_bytes, a.created_at, a.created_by, a.version,"  \
  " a.parent_artifact_id, a.tags::text, a.stored_at, a.updated_at, c.chunk_count,"       \
  " c.stored_bytes, c.is_compressed, a.tenant_id"
#define ROW_FROM                                                                          \
  " FROM @S.artifacts a LEFT JOIN @S.artifact_content c"                                 \
  " ON c.tenant_id = a.tenant_id AND c.content_hash = a.content_hash"

static const pg_stmt AST_INFO = {
    "lls_artifacts_info",
    "SELECT " ROW_COLS ", k.raw_size, k.data" ROW_FROM
    " LEFT JOIN @S.artifact_chunks k ON $3 AND k.tenant_id = a.tenant_id"
    " AND k.content_hash = a.content_hash AND k.chunk_index = 0"
    " WHERE a.tenant_id = $1 AND a.artifact_id = $2",
    3,
    {OID_TEXT, OID_TEXT, OID_BOOL}};

static const pg_stmt AST_LIST = {
    "lls_artifacts_list",
    "SELECT " ROW_COLS ROW_FROM
    " WHERE a.tenant_id = $1 AND a.session_id = $2 AND a.sequence > $3"
    " ORDER BY a.sequence LIMIT $4",
    4,
    {OID_TEXT, OID_TEXT, OID_INT8, OID_INT8}};

static const pg_stmt AST_DUMP = {
    "lls_artifacts_dump",
    "SELECT " ROW_COLS ROW_FROM
    " WHERE a.tenant_id = $1 AND a.artifact_id > $2 ORDER BY a.artifact_id LIMIT $3",
    3,
    {OID_TEXT, OID_TEXT, OID_INT8}};

static const pg_stmt AST_CHUNK_GET = {
    "lls_artifacts_chunk_get",
    "SELECT raw_size, data FROM @S.artifact_chunks"
    " WHERE tenant_id = $1 AND content_hash = $2 AND chunk_index = $3",
    3,
    {OID_TEXT, OID_TEXT, OID_INT4}};

/* The artifact, its session's count and its content's reference in one
 * round trip; the content's reference count comes back (NULL: no content
 * row) so the caller knows whether it must go. */
static const pg_stmt AST_DEL = {
    "lls_artifacts_del",
    "WITH g AS (DELETE FROM @S.artifacts WHERE tenant_id = $1 AND artifact_id = $2"
    " RETURNING session_id, content_hash),"
    " s AS (UPDATE @S.sessions x SET artifact_count = x.artifact_count - 1 FROM g"
    " WHERE x.tenant_id = $1 AND x.session_id = g.session_id AND x.artifact_count > 0),"
    " c AS (UPDATE @S.artifact_content x SET reference_count = x.reference_count - 1 FROM g"
    " WHERE x.tenant_id = $1 AND x.content_hash = g.content_hash RETURNING x.reference_count)"
    " SELECT g.content_hash, (SELECT reference_count FROM c) FROM g",
    2,
    {OID_TEXT, OID_TEXT}};

/* Content without references goes; its chunks follow (ON DELETE CASCADE). */
static const pg_stmt AST_CONTENT_DROP = {
    "lls_artifacts_content_drop",
    "DELETE FROM @S.artifact_content WHERE tenant_id = $1 AND content_hash = $2"
    " AND reference_count <= 0",
    2,
    {OID_TEXT, OID_TEXT}};

static const pg_stmt AST_ARTIFACT_HASH = {
    "lls_artifacts_hash",
    "SELECT content_hash FROM @S.artifacts WHERE tenant_id = $1 AND artifact_id = $2", 2,
    {OID_TEXT, OID_TEXT}};

static const pg_stmt AST_ARTIFACT_DROP = {
    "lls_artifacts_drop", "DELETE FROM @S.artifacts WHERE tenant_id = $1 AND artifact_id = $2",
    2, {OID_TEXT, OID_TEXT}};

/* $3 references go (-1: one comes). */
static const pg_stmt AST_CONTENT_ADJ = {
    "lls_artifacts_content_adj",
    "UPDATE @S.artifact_content SET reference_count = reference_count - $3"
    " WHERE tenant_id = $1 AND content_hash = $2 RETURNING reference_count",
    3,
    {OID_TEXT, OID_TEXT, OID_INT8}};

/* An imported artifact counts in its session (when that is stored). */
static const pg_stmt AST_SESSION_LOADED = {
    "lls_artifacts_session_loaded",
    "UPDATE @S.sessions SET next_sequence = GREATEST(next_sequence, $3 + 1),"
    " artifact_count = artifact_count + $4 WHERE tenant_id = $1 AND session_id = $2",
    4,
    {OID_TEXT, OID_TEXT, OID_INT8, OID_INT8}};

static const pg_stmt AST_STATS_TENANT = {
    "lls_artifacts_stats",
    "SELECT (SELECT count(*) FROM @S.artifacts WHERE tenant_id = $1),"
    " (SELECT coalesce(sum(size_bytes), 0)::int8 FROM @S.artifacts WHERE tenant_id = $1),"
    " (SELECT count(*) FROM @S.artifact_content WHERE tenant_id = $1),"
    " (SELECT coalesce(sum(stored_bytes), 0)::int8 FROM @S.artifact_content"
    " WHERE tenant_id = $1)",
    1,
    {OID_TEXT}};

static const pg_stmt AST_STATS_SESSION = {
    "lls_artifacts_stats_session",
    "SELECT count(*), coalesce(sum(size_bytes), 0)::int8, count(DISTINCT content_hash),"
    " (SELECT coalesce(sum(c.stored_bytes), 0)::int8 FROM @S.artifact_content c"
    " WHERE c.tenant_id = $1 AND c.content_hash IN"
    " (SELECT content_hash FROM @S.artifacts WHERE tenant_id = $1 AND session_id = $2))"
    " FROM @S.artifacts WHERE tenant_id = $1 AND session_id = $2",
    2,
    {OID_TEXT, OID_TEXT}};

static const pg_stmt AST_COUNT = {"lls_artifacts_count",
                                 "SELECT count(*) FROM @S.artifacts WHERE tenant_id = $1", 1,
                                 {OID_TEXT}};

static const pg_stmt AST_CONTENT_DUMP = {
    "lls_artifacts_content_dump",
    "SELECT content_hash, size_bytes, stored_bytes, is_compressed, original_size_bytes,"
    " chunk_count, reference_count, created_at, last_accessed_at, tenant_id"
    " FROM @S.artifact_content"
    " WHERE tenant_id = $1 AND content_hash > $2 ORDER BY content_hash LIMIT $3",
    3,
    {OID_TEXT, OID_TEXT, OID_INT8}};

/* ------------------------------------------------------------- helpers */

#define HASH_LEN (LLS_SHA256_HEX - 1)

static int bool_at(const PGresult *r, int row, int col) {
  return !PQgetisnull(r, row, col) && PQgetlength(r, row, col) == 1 &&
         PQgetvalue(r, row, col)[0] != 0;
}

/* Text, or NULL for a NULL pointer. */
static void param_opt(pg_params *p, lls_str s) {
  if (s.ptr == NULL)
    lls_pg_param_null(p);
  else
    lls_pg_param_bytes(p, s.ptr, s.len);
}

/* Runs a statement that returns nothing of interest. */
static int run_void(pg_backend *pg, const pg_stmt *st, const pg_params *p, lls_error *err) {
  PGresult *r = lls_pg_run_stmt(pg, st, p, 0, err);
  if (r == NULL) return -1;
  PQclear(r);
  return 0;
}

/* Copies text column col of row 0 into field f of row (NULL stays NULL). */
static int copy_text(const PGresult *r, int i, int col, lls_artifact_rows *out,
                     lls_artifact_row *row, int f) {
  if (PQgetisnull(r, i, col)) return lls_artifact_rows_set(out, row, f, NULL, 0);
  lls_str v = lls_pg_str_at(r, i, col);
  return lls_artifact_rows_set(out, row, f, v.ptr, v.len);
}

/* Appends result row i (columns ROW_COLS). */
static int read_row(const PGresult *r, int i, lls_artifact_rows *out, lls_error *err) {
  static const int text[][2] = {
      {0, LLS_ART_ID},    {1, LLS_ART_SESSION}, {3, LLS_ART_HASH},        {4, LLS_ART_METADATA},
      {5, LLS_ART_NAME},  {6, LLS_ART_TYPE},    {7, LLS_ART_MIME},        {10, LLS_ART_CREATED_BY},
      {12, LLS_ART_PARENT}, {13, LLS_ART_TAGS},   {19, LLS_ART_TENANT},
  };
  lls_artifact_row *row = lls_artifact_rows_add(out);
  if (row == NULL) return lls_error_oom(err);
  for (size_t k = 0; k < sizeof text / sizeof text[0]; k++)
    if (copy_text(r, i, text[k][0], out, row, text[k][1]) != 0) return lls_error_oom(err);
  row->sequence = lls_pg_int8_at(r, i, 2);
  row->size_bytes = lls_pg_int8_at(r, i, 8);
  row->created_at = lls_pg_time_or_zero(r, i, 9);
  row->version = lls_pg_int4_at(r, i, 11);
  row->stored_at = lls_pg_time_or_zero(r, i, 14);
  row->updated_at = lls_pg_time_or_zero(r, i, 15);
  if (PQgetisnull(r, i, 16)) {
    row->chunk_count = -1;
  } else {
    row->chunk_count = lls_pg_int4_at(r, i, 16);
    row->stored_bytes = lls_pg_int8_at(r, i, 17);
    row->is_compressed = bool_at(r, i, 18);
  }
  return 0;
}

/* Decodes the chunk in columns (raw_size, data) of row 0. */
static int decode_at(const PGresult *r, int col, lls_buf *out, lls_error *err) {
  lls_str data = lls_pg_str_at(r, 0, col + 1);
  return lls_artifact_chunk_decode(data, lls_pg_int4_at(r, 0, col), out, err);
}

/* Stores src's chunks for content hash and finishes its row (inserted
 * with chunk_count -1 in this unit). */
static int write_chunks(pg_backend *pg, lls_str hash, lls_artifact_src *src, lls_error *err) {
  for (;;) {
    lls_artifact_chunk c;
    int eof;
    if (lls_artifact_src_next(src, &c, &eof, err) != 0) return -1;
    if (eof) break;
    pg_params p = {0};
    lls_pg_param_tenant(&p, pg);
    lls_pg_param_bytes(&p, hash.ptr, hash.len);
    lls_pg_param_int4(&p, (int32_t)c.index);
    lls_pg_param_int4(&p, (int32_t)c.raw_size);
    lls_pg_param_bytes(&p, c.data.ptr, c.data.len);
    if (run_void(pg, &AST_CHUNK_PUT, &p, err) != 0) return -1;
  }
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, hash.ptr, hash.len);
  lls_pg_param_int8(&p, src->stored);
  lls_pg_param_bool(&p, src->compressed);
  lls_pg_param_int4(&p, (int32_t)src->index);
  return run_void(pg, &AST_CONTENT_FINISH, &p, err);
}

/* Deletes content hash when no artifact refers to it any more (its
 * chunks follow: ON DELETE CASCADE). */
static int drop_content(pg_backend *pg, lls_str hash, lls_error *err) {
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, hash.ptr, hash.len);
  return run_void(pg, &AST_CONTENT_DROP, &p, err);
}

/* Moves content hash's reference count by -n; content left with none
 * goes. */
static int adjust(pg_backend *pg, lls_str hash, int64_t n, lls_error *err) {
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, hash.ptr, hash.len);
  lls_pg_param_int8(&p, n);
  PGresult *r = lls_pg_run_stmt(pg, &AST_CONTENT_ADJ, &p, 0, err);
  if (r == NULL) return -1;
  int gone = PQntuples(r) > 0 && lls_pg_int8_at(r, 0, 0) <= 0;
  PQclear(r);
  return gone ? drop_content(pg, hash, err) : 0;
}

/* -------------------------------------------------------------- writes */

/* Content of at most one chunk: one statement. */
static int put_small(pg_backend *pg, const lls_artifact_new *a, lls_artifact_src *src,
                     int64_t now, int64_t *sequence, int *deduplicated, lls_error *err) {
  lls_artifact_chunk c = {0, 0, {"", 0}};
  int eof = 0;
  if (src->size > 0 && lls_artifact_src_next(src, &c, &eof, err) != 0) return -1;
  /* the end of the source: a file is checked against its first read */
  lls_artifact_chunk end;
  if (!eof && lls_artifact_src_next(src, &end, &eof, err) != 0) return -1;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, a->session_id.ptr, a->session_id.len);
  lls_pg_param_time(&p, now);
  lls_pg_param_bytes(&p, src->hash, HASH_LEN);
  lls_pg_param_int8(&p, src->size);
  lls_pg_param_bytes(&p, c.data.ptr, c.data.len);
  lls_pg_param_bytes(&p, a->metadata.ptr, a->metadata.len);
  lls_pg_param_bytes(&p, a->name.ptr, a->name.len);
  lls_pg_param_bytes(&p, a->type.ptr, a->type.len);
  lls_pg_param_bytes(&p, a->mime_type.ptr, a->mime_type.len);
  param_opt(&p, a->created_by);
  lls_pg_param_bytes(&p, a->tags.ptr, a->tags.len);
  PGresult *r = lls_pg_write_stmt(pg, &AST_PUT_SMALL, &p, err);
  if (r == NULL) return -1;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return lls_error_set(err, LLS_ENOTFOUND, "session '%.*s' does not exist (or has expired)",
                         lls_pg_msg_len(a->session_id, 200), a->session_id.ptr);
  }
  *sequence = lls_pg_int8_at(r, 0, 0);
  *deduplicated = !bool_at(r, 0, 1);
  PQclear(r);
  return 0;
}

static int pg_put(lls_backend *b, const lls_artifact_new *a, lls_artifact_src *src,
                  int64_t now, int64_t *sequence, int *deduplicated, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (src->size <= (int64_t)LLS_ARTIFACT_CHUNK)
    return put_small(pg, a, src, now, sequence, deduplicated, err);
  lls_str hash = {src->hash, HASH_LEN};
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  int ok = -1;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, a->session_id.ptr, a->session_id.len);
  lls_pg_param_time(&p, now);
  PGresult *r = lls_pg_run_stmt(pg, &AST_SEQ, &p, 0, err);
  if (r == NULL) goto end;
  if (PQntuples(r) == 0) {
    PQclear(r);
    lls_error_set(err, LLS_ENOTFOUND, "session '%.*s' does not exist (or has expired)",
                  lls_pg_msg_len(a->session_id, 200), a->session_id.ptr);
    goto end;
  }
  int64_t seq = lls_pg_int8_at(r, 0, 0);
  PQclear(r);

  p = (pg_params){0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, hash.ptr, hash.len);
  lls_pg_param_int8(&p, src->size);
  lls_pg_param_time(&p, now);
  r = lls_pg_run_stmt(pg, &AST_CONTENT_REF, &p, 0, err);
  if (r == NULL) goto end;
  int fresh = PQntuples(r) > 0 && lls_pg_int4_at(r, 0, 0) == -1;
  PQclear(r);
  if (fresh && write_chunks(pg, hash, src, err) != 0) goto end;

  p = (pg_params){0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, a->session_id.ptr, a->session_id.len);
  lls_pg_param_int8(&p, seq);
  lls_pg_param_bytes(&p, hash.ptr, hash.len);
  lls_pg_param_bytes(&p, a->metadata.ptr, a->metadata.len);
  lls_pg_param_bytes(&p, a->name.ptr, a->name.len);
  lls_pg_param_bytes(&p, a->type.ptr, a->type.len);
  lls_pg_param_bytes(&p, a->mime_type.ptr, a->mime_type.len);
  lls_pg_param_int8(&p, src->size);
  lls_pg_param_time(&p, now);
  param_opt(&p, a->created_by);
  lls_pg_param_bytes(&p, a->tags.ptr, a->tags.len);
  if (run_void(pg, &AST_ARTIFACT_PUT, &p, err) != 0) goto end;
  *sequence = seq;
  *deduplicated = !fresh;
  ok = 0;
end:
  if (lls_pg_unit_end(pg, 0, ok == 0, err) != 0) return -1;
  return 0;
}

static int pg_del(lls_backend *b, lls_str artifact_id, int64_t now, int *existed,
                  lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  (void)now;
  *existed = 0;
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  int ok = -1;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, artifact_id.ptr, artifact_id.len);
  PGresult *r = lls_pg_run_stmt(pg, &AST_DEL, &p, 0, err);
  if (r == NULL) goto end;
  int found = PQntuples(r) > 0;
  int gone = found && !PQgetisnull(r, 0, 1) && lls_pg_int8_at(r, 0, 1) <= 0;
  char hash[LLS_SHA256_HEX] = "";
  if (gone) {
    lls_str h = lls_pg_str_at(r, 0, 0);
    if (h.len < sizeof hash) memcpy(hash, h.ptr, h.len), hash[h.len] = '\0';
  }
  PQclear(r);
  lls_str hs = {hash, strlen(hash)};
  if (gone && drop_content(pg, hs, err) != 0) goto end;
  *existed = found;
  ok = 0;
end:
  if (lls_pg_unit_end(pg, 0, ok == 0, err) != 0) {
    *existed = 0;
    return -1;
  }
  return 0;
}

/* --------------------------------------------------------------- reads */

static int pg_info(lls_backend *b, lls_str artifact_id, lls_artifact_rows *out,
                   lls_buf *first, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, artifact_id.ptr, artifact_id.len);
  lls_pg_param_bool(&p, first != NULL);
  PGresult *r = lls_pg_run_stmt(pg, &AST_INFO, &p, 1, err);
  if (r == NULL) return -1;
  int rc = 0;
  if (PQntuples(r) > 0) {
    rc = read_row(r, 0, out, err);
    if (rc == 0 && first != NULL) {
      first->len = 0;
      if (!PQgetisnull(r, 0, 20)) rc = decode_at(r, 20, first, err);
    }
  }
  PQclear(r);
  return rc;
}

static int pg_read_chunk(lls_backend *b, lls_str hash, int64_t index, lls_buf *out,
                         int *found, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  *found = 0;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, hash.ptr, hash.len);
  lls_pg_param_int4(&p, (int32_t)index);
  PGresult *r = lls_pg_run_stmt(pg, &AST_CHUNK_GET, &p, 1, err);
  if (r == NULL) return -1;
  int rc = 0;
  if (PQntuples(r) > 0) {
    rc = decode_at(r, 0, out, err);
    *found = rc == 0;
  }
  PQclear(r);
  return rc;
}

/* Appends every row of r (ROW_COLS). */
static int read_rows(PGresult *r, lls_artifact_rows *out, lls_error *err) {
  int rc = 0;
  for (int i = 0; rc == 0 && i < PQntuples(r); i++) rc = read_row(r, i, out, err);
  PQclear(r);
  return rc;
}

static int pg_list(lls_backend *b, lls_str session_id, int64_t after, size_t limit,
                   lls_artifact_rows *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, session_id.ptr, session_id.len);
  lls_pg_param_int8(&p, after);
  lls_pg_param_limit(&p, limit);
  PGresult *r = lls_pg_run_stmt(pg, &AST_LIST, &p, 1, err);
  return r == NULL ? -1 : read_rows(r, out, err);
}

static int pg_stats(lls_backend *b, lls_str session_id, lls_artifact_stats *out,
                    lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  if (session_id.ptr) lls_pg_param_bytes(&p, session_id.ptr, session_id.len);
  PGresult *r =
      lls_pg_run_stmt(pg, session_id.ptr ? &AST_STATS_SESSION : &AST_STATS_TENANT, &p, 1, err);
  if (r == NULL) return -1;
  int have = PQntuples(r) > 0;
  out->artifacts = have ? lls_pg_int8_at(r, 0, 0) : 0;
  out->bytes = have ? lls_pg_int8_at(r, 0, 1) : 0;
  out->unique_contents = have ? lls_pg_int8_at(r, 0, 2) : 0;
  out->stored_bytes = have ? lls_pg_int8_at(r, 0, 3) : 0;
  PQclear(r);
  return 0;
}

static int pg_count(lls_backend *b, int64_t now, int64_t *n, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  (void)now;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  PGresult *r = lls_pg_run_stmt(pg, &AST_COUNT, &p, 1, err);
  if (r == NULL) return -1;
  *n = PQntuples(r) > 0 ? lls_pg_int8_at(r, 0, 0) : 0;
  PQclear(r);
  return 0;
}

/* ------------------------------------------------------ export, import */

static int pg_dump_content(lls_backend *b, lls_str after, size_t limit, lls_content_rows *out,
                           lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, after.ptr, after.len);
  lls_pg_param_limit(&p, limit);
  PGresult *r = lls_pg_run_stmt(pg, &AST_CONTENT_DUMP, &p, 1, err);
  if (r == NULL) return -1;
  for (int i = 0; i < PQntuples(r); i++) {
    lls_str h = lls_pg_str_at(r, i, 0);
    lls_content_row *c = lls_content_rows_add(out);
    if (c == NULL) {
      PQclear(r);
      return lls_error_oom(err);
    }
    if (h.len != HASH_LEN) {
      PQclear(r);
      return lls_error_set(err, LLS_EINTEGRITY, "artifact content hash '%.*s' is malformed",
                           lls_pg_msg_len(h, 200), h.ptr);
    }
    memcpy(c->hash, h.ptr, h.len);
    c->hash[h.len] = '\0';
    c->size_bytes = lls_pg_int8_at(r, i, 1);
    c->stored_bytes = lls_pg_int8_at(r, i, 2);
    c->is_compressed = bool_at(r, i, 3);
    c->original_size_bytes = lls_pg_int8_at(r, i, 4);
    c->chunk_count = lls_pg_int4_at(r, i, 5);
    c->reference_count = lls_pg_int8_at(r, i, 6);
    c->created_at = lls_pg_time_or_zero(r, i, 7);
    c->last_accessed_at = lls_pg_time_or_zero(r, i, 8);
    lls_str t = lls_pg_str_at(r, i, 9);
    size_t tl = t.len < sizeof c->tenant ? t.len : sizeof c->tenant - 1;
    memcpy(c->tenant, t.ptr, tl);
    c->tenant[tl] = '\0';
  }
  PQclear(r);
  return 0;
}

static int pg_dump_artifacts(lls_backend *b, lls_str after, size_t limit,
                             lls_artifact_rows *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, after.ptr, after.len);
  lls_pg_param_limit(&p, limit);
  PGresult *r = lls_pg_run_stmt(pg, &AST_DUMP, &p, 1, err);
  return r == NULL ? -1 : read_rows(r, out, err);
}

/* 1 when content hash is stored, 0 when not, -1 on failure. */
static int content_exists(pg_backend *pg, lls_str hash, lls_error *err) {
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, hash.ptr, hash.len);
  PGresult *r = lls_pg_run_stmt(pg, &AST_CONTENT_EXISTS, &p, 0, err);
  if (r == NULL) return -1;
  int n = PQntuples(r) > 0;
  PQclear(r);
  return n;
}

static int pg_load_content(lls_backend *b, const lls_content_row *c, lls_artifact_src *src,
                           lls_conflict on_conflict, int64_t now, int *written, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  lls_str hash = {c->hash, HASH_LEN};
  (void)now;
  *written = 0;
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  int ok = -1, wrote = 0;
  int exists = content_exists(pg, hash, err);
  if (exists < 0) goto end;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, hash.ptr, hash.len);
  if (exists) {
    if (on_conflict == LLS_CONFLICT_ERROR) {
      lls_error_set(err, LLS_ECONFLICT, "artifact content %s already exists", c->hash);
      goto end;
    }
    if (on_conflict == LLS_CONFLICT_REPLACE) {
      /* the same hash holds the same bytes; only the times move */
      lls_pg_param_time(&p, c->created_at);
      lls_pg_param_time(&p, c->last_accessed_at);
      if (run_void(pg, &AST_CONTENT_TIMES, &p, err) != 0) goto end;
      wrote = 1;
    }
  } else {
    lls_pg_param_int8(&p, src->size);
    lls_pg_param_time(&p, c->created_at);
    lls_pg_param_time(&p, c->last_accessed_at);
    if (run_void(pg, &AST_CONTENT_LOAD, &p, err) != 0) goto end;
    if (write_chunks(pg, hash, src, err) != 0) goto end;
    wrote = 1;
  }
  ok = 0;
end:
  if (lls_pg_unit_end(pg, 0, ok == 0, err) != 0) return -1;
  *written = wrote;
  return 0;
}

/* The array parameters of AST_ARTIFACT_LOAD for row i of r. */
static int load_arrays(const lls_artifact_rows *r, size_t i, lls_buf *t, lls_buf *n,
                       lls_buf *m) {
  static const int fields[] = {LLS_ART_ID,   LLS_ART_SESSION,    LLS_ART_HASH,
                               LLS_ART_METADATA, LLS_ART_NAME, LLS_ART_TYPE,
                               LLS_ART_MIME, LLS_ART_CREATED_BY, LLS_ART_PARENT,
                               LLS_ART_TAGS};
  const lls_artifact_row *row = &r->rows[i];
  int hasnull = 0;
  if (lls_pg_arr_init(t) != 0 || lls_pg_arr_init(n) != 0 || lls_pg_arr_init(m) != 0) return -1;
  for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
    lls_str s = lls_artifact_rows_get(r, i, fields[k]);
    if (s.ptr == NULL) hasnull = 1;
    if ((s.ptr == NULL ? lls_pg_arr_add_null(t) : lls_pg_arr_add(t, s.ptr, s.len)) != 0)
      return -1;
  }
  lls_pg_arr_finish(t, OID_TEXT, sizeof fields / sizeof fields[0], hasnull);
  if (lls_pg_arr_add_int8(n, row->sequence) != 0 || lls_pg_arr_add_int8(n, row->size_bytes) ||
      lls_pg_arr_add_int8(n, row->version) != 0)
    return -1;
  lls_pg_arr_finish(n, OID_INT8, 3, 0);
  if (lls_pg_arr_add_time(m, row->created_at) != 0 || lls_pg_arr_add_time(m, row->stored_at) ||
      lls_pg_arr_add_time(m, row->updated_at) != 0)
    return -1;
  lls_pg_arr_finish(m, OID_TSTZ, 3, 0);
  return 0;
}

static int pg_load_artifact(lls_backend *b, const lls_artifact_rows *r, size_t i,
                            lls_conflict on_conflict, int64_t now, int *written,
                            lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  lls_str id = lls_artifact_rows_get(r, i, LLS_ART_ID);
  lls_str hash = lls_artifact_rows_get(r, i, LLS_ART_HASH);
  lls_str session = lls_artifact_rows_get(r, i, LLS_ART_SESSION);
  (void)now;
  *written = 0;
  lls_buf t = {0}, n = {0}, m = {0};
  if (lls_pg_unit_begin(pg, 0, err) != 0) return -1;
  int ok = -1, wrote = 0, same = 0, replaced = 0;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, id.ptr, id.len);
  PGresult *res = lls_pg_run_stmt(pg, &AST_ARTIFACT_HASH, &p, 0, err);
  if (res == NULL) goto end;
  if (PQntuples(res) > 0) {
    lls_str old = lls_pg_str_at(res, 0, 0);
    char oldhash[LLS_SHA256_HEX] = "";
    if (old.len < sizeof oldhash) memcpy(oldhash, old.ptr, old.len), oldhash[old.len] = '\0';
    PQclear(res);
    if (on_conflict == LLS_CONFLICT_ERROR) {
      lls_error_set(err, LLS_ECONFLICT, "artifact '%.*s' already exists",
                    lls_pg_msg_len(id, 200), id.ptr);
      goto end;
    }
    if (on_conflict == LLS_CONFLICT_SKIP) {
      ok = 0;
      goto end;
    }
    same = strlen(oldhash) == hash.len && memcmp(oldhash, hash.ptr, hash.len) == 0;
    replaced = 1;
    if (run_void(pg, &AST_ARTIFACT_DROP, &p, err) != 0) goto end;
    lls_str oh = {oldhash, strlen(oldhash)};
    if (!same && adjust(pg, oh, 1, err) != 0) goto end;
  } else {
    PQclear(res);
  }
  if (load_arrays(r, i, &t, &n, &m) != 0) {
    lls_error_oom(err);
    goto end;
  }
  p = (pg_params){0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_buf(&p, &t);
  lls_pg_param_buf(&p, &n);
  lls_pg_param_buf(&p, &m);
  if (run_void(pg, &AST_ARTIFACT_LOAD, &p, err) != 0) goto end;
  if (!same) {
    /* a new reference to the content, when it is stored already */
    p = (pg_params){0};
    lls_pg_param_tenant(&p, pg);
    lls_pg_param_bytes(&p, hash.ptr, hash.len);
    lls_pg_param_int8(&p, -1);
    if (run_void(pg, &AST_CONTENT_ADJ, &p, err) != 0) goto end;
  }
  p = (pg_params){0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, session.ptr, session.len);
  lls_pg_param_int8(&p, r->rows[i].sequence);
  lls_pg_param_int8(&p, !replaced);
  if (run_void(pg, &AST_SESSION_LOADED, &p, err) != 0) goto end;
  wrote = 1;
  ok = 0;
end:
  lls_buf_free(&t);
  lls_buf_free(&n);
  lls_buf_free(&m);
  if (lls_pg_unit_end(pg, 0, ok == 0, err) != 0) return -1;
  *written = wrote;
  return 0;
}

const lls_artifact_ops lls_postgres_artifact_ops = {
    .put = pg_put,
    .info = pg_info,
    .read_chunk = pg_read_chunk,
    .list = pg_list,
    .del = pg_del,
    .stats = pg_stats,
    .count = pg_count,
    .dump_content = pg_dump_content,
    .dump_artifacts = pg_dump_artifacts,
    .load_content = pg_load_content,
    .load_artifact = pg_load_artifact,
};
