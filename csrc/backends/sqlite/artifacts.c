/*
 * artifacts.c -- the SQLite backend's artifact slots (lls_artifact_ops,
 * backend/artifacts.h), which also serve the memory backend's private
 * store. Tables (migration 6, schema.c; times in microseconds):
 *
 *   CREATE TABLE artifact_content (        -- one row per content per tenant
 *     tenant_id           TEXT NOT NULL,
 *     content_hash        TEXT NOT NULL,    -- SHA-256 hex of the original bytes
 *     size_bytes          INTEGER NOT NULL, -- original bytes
 *     stored_bytes        INTEGER NOT NULL, -- bytes its chunks hold
 *     is_compressed       INTEGER NOT NULL, -- 1: some chunk is LZ4-compressed
 *     original_size_bytes INTEGER NOT NULL, -- = size_bytes (rs-llmspell's column)
 *     chunk_count         INTEGER NOT NULL, -- -1 only inside the unit storing it
 *     reference_count     INTEGER NOT NULL, -- artifacts rows naming it
 *     created_at          INTEGER NOT NULL,
 *     last_accessed_at    INTEGER NOT NULL, -- the last put that referred to it
 *     PRIMARY KEY (tenant_id, content_hash)
 *   ) WITHOUT ROWID;
 *   CREATE TABLE artifact_chunks (         -- a rowid table: blobs of 1 MiB
 *     tenant_id    TEXT NOT NULL,           -- belong in overflow pages, not in
 *     content_hash TEXT NOT NULL,           -- the B-tree of a WITHOUT ROWID one
 *     chunk_index  INTEGER NOT NULL,        -- 0, 1, ...
 *     raw_size     INTEGER NOT NULL,        -- bytes after decompression
 *     data         BLOB NOT NULL,           -- compressed iff shorter than raw_size
 *     PRIMARY KEY (tenant_id, content_hash, chunk_index)
 *   );
 *   CREATE TABLE artifacts (
 *     tenant_id, artifact_id ("<session_id>:<sequence>:<content_hash>"),
 *     session_id, sequence, content_hash, metadata (JSON text), name,
 *     artifact_type (CHECK code|data|image|document|binary), mime_type,
 *     size_bytes, created_at, created_by (NULL: none), version,
 *     parent_artifact_id, tags (JSON array text), stored_at, updated_at,
 *     PRIMARY KEY (tenant_id, artifact_id)
 *   ) WITHOUT ROWID;
 *   CREATE UNIQUE INDEX artifacts_session ON artifacts (tenant_id, session_id, sequence);
 *   CREATE INDEX artifacts_content ON artifacts (tenant_id, content_hash);
 *
 * Queries: info and get read one artifact by primary key joined with its
 * content row and (get) chunk 0; list is a range of artifacts_session;
 * chunks are read one by one by primary key; the reference count of a
 * content is raised by an UPSERT and lowered by an UPDATE ... RETURNING,
 * the content going with its chunks at zero. A put takes the write lock
 * up front (BEGIN IMMEDIATE) so concurrent writers queue on the busy
 * timeout instead of failing halfway.
 */
#include "backends/sqlite/artifacts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/sqlite/conn.h"
#include "base/limits.h"

/* ------------------------------------------------------------------ SQL */

/* The session's next sequence: past every stored one even when an import
 * brought artifacts before (or without raising) the session's counter. */
static const char SQL_SEQ[] =
    "UPDATE sessions SET next_sequence = max(next_sequence, coalesce((SELECT max(sequence) + 1"
    " FROM artifacts WHERE tenant_id = ?1 AND session_id = ?2), 0)) + 1,"
    " artifact_count = artifact_count + 1"
    " WHERE tenant_id = ?1 AND session_id = ?2 AND (expires_at IS NULL OR expires_at > ?3)"
    " RETURNING next_sequence - 1";

/* chunk_count -1 marks a row this statement inserted: its chunks are
 * still to be written (the unit finishes the row before committing). */
static const char SQL_CONTENT_REF[] =
    "INSERT INTO artifact_content (tenant_id, content_hash, size_bytes, stored_bytes,"
    " is_compressed, original_size_bytes, chunk_count, reference_count, created_at,"
    " last_accessed_at) VALUES (?1, ?2, ?3, 0, 0, ?3, -1, 1, ?4, ?4)"
    " ON CONFLICT (tenant_id, content_hash) DO UPDATE SET"
    " reference_count = reference_count + 1, last_accessed_at = excluded.last_accessed_at"
    " RETURNING chunk_count";

/* An imported content starts with the references already stored. */
static const char SQL_CONTENT_LOAD[] =
    "INSERT INTO artifact_content (tenant_id, content_hash, size_bytes, stored_bytes,"
    " is_compressed, original_size_bytes, chunk_count, reference_count, created_at,"
    " last_accessed_at) VALUES (?1, ?2, ?3, 0, 0, ?3, -1,"
    " (SELECT count(*) FROM artifacts WHERE tenant_id = ?1 AND content_hash = ?2), ?4, ?5)";

static const char SQL_CONTENT_EXISTS[] =
    "SELECT 1 FROM artifact_content WHERE tenant_id = ?1 AND content_hash = ?2";

static const char SQL_CONTENT_TIMES[] =
    "UPDATE artifact_content SET created_at = ?3, last_accessed_at = ?4"
    " WHERE tenant_id = ?1 AND content_hash = ?2";

static const char SQL_CHUNK_PUT[] =
    "INSERT INTO artifact_chunks (tenant_id, content_hash, chunk_index, raw_size, data)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";

static const char SQL_CONTENT_FINISH[] =
    "UPDATE artifact_content SET stored_bytes = ?3, is_compressed = ?4, chunk_count = ?5"
    " WHERE tenant_id = ?1 AND content_hash = ?2";

static const char SQL_ARTIFACT_PUT[] =
    "INSERT INTO artifacts (tenant_id, artifact_id, session_id, sequence, content_hash,"
    " metadata, name, artifact_type, mime_type, size_bytes, created_at, created_by, version,"
    " parent_artifact_id, tags, stored_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";

/* Columns 0-19 of every artifact read (read_row). */
#define ROW_COLS                                                                          \
  "a.artifact_id, a.session_id, a.sequence, a.content_hash, a.metadata, a.name,"         \
  " a.artifact_type, a.mime_type, a.size_bytes, a.created_at, a.created_by, a.version,"  \
  " a.parent_artifact_id, a.tags, a.stored_at, a.updated_at, c.chunk_count,"             \
  " c.stored_bytes, c.is_compressed, a.tenant_id"
#define ROW_FROM                                                                          \
  " FROM artifacts a LEFT JOIN artifact_content c"                                       \
  " ON c.tenant_id = a.tenant_id AND c.content_hash = a.content_hash"

static const char SQL_INFO[] =
    "SELECT " ROW_COLS ", k.raw_size, k.data" ROW_FROM
    " LEFT JOIN artifact_chunks k ON ?3 AND k.tenant_id = a.tenant_id"
    " AND k.content_hash = a.content_hash AND k.chunk_index = 0"
    " WHERE a.tenant_id = ?1 AND a.artifact_id = ?2";

static const char SQL_LIST[] =
    "SELECT " ROW_COLS ROW_FROM
    " WHERE a.tenant_id = ?1 AND a.session_id = ?2 AND a.sequence > ?3"
    " ORDER BY a.sequence LIMIT ?4";

static const char SQL_DUMP[] =
    "SELECT " ROW_COLS ROW_FROM
    " WHERE a.tenant_id = ?1 AND a.artifact_id > ?2 ORDER BY a.artifact_id LIMIT ?3";

static const char SQL_CHUNK_GET[] =
    "SELECT raw_size, data FROM artifact_chunks"
    " WHERE tenant_id = ?1 AND content_hash = ?2 AND chunk_index = ?3";

static const char SQL_ARTIFACT_DEL[] =
    "DELETE FROM artifacts WHERE tenant_id = ?1 AND artifact_id = ?2"
    " RETURNING session_id, content_hash";

static const char SQL_ARTIFACT_HASH[] =
    "SELECT content_hash FROM artifacts WHERE tenant_id = ?1 AND artifact_id = ?2";

static const char SQL_SESSION_DEC[] =
    "UPDATE sessions SET artifact_count = artifact_count - 1"
    " WHERE tenant_id = ?1 AND session_id = ?2 AND artifact_count > 0";

/* An imported artifact counts in its session (when that is stored). */
static const char SQL_SESSION_LOADED[] =
    "UPDATE sessions SET next_sequence = max(next_sequence, ?3 + 1),"
    " artifact_count = artifact_count + ?4 WHERE tenant_id = ?1 AND session_id = ?2";

/* ?3: how many references go (+1 for an import's new artifact: -1). */
static const char SQL_CONTENT_DEC[] =
    "UPDATE artifact_content SET reference_count = reference_count - ?3"
    " WHERE tenant_id = ?1 AND content_hash = ?2 RETURNING reference_count";

static const char SQL_CHUNKS_DROP[] =
    "DELETE FROM artifact_chunks WHERE tenant_id = ?1 AND content_hash = ?2";

static const char SQL_CONTENT_DROP[] =
    "DELETE FROM artifact_content WHERE tenant_id = ?1 AND content_hash = ?2";

static const char SQL_STATS_TENANT[] =
    "SELECT (SELECT count(*) FROM artifacts WHERE tenant_id = ?1),"
    " (SELECT coalesce(sum(size_bytes), 0) FROM artifacts WHERE tenant_id = ?1),"
    " (SELECT count(*) FROM artifact_content WHERE tenant_id = ?1),"
    " (SELECT coalesce(sum(stored_bytes), 0) FROM artifact_content WHERE tenant_id = ?1)";

/* INDEXED BY: without statistics SQLite prefers the primary key's
 * (tenant_id) prefix, a walk over every artifact of the tenant, to
 * artifacts_session, whose entries need a lookup for size_bytes. */
#define SESSION_ROWS                                                                    \
  "artifacts INDEXED BY artifacts_session WHERE tenant_id = ?1 AND session_id = ?2"
static const char SQL_STATS_SESSION[] =
    "SELECT count(*), coalesce(sum(size_bytes), 0), count(DISTINCT content_hash),"
    " (SELECT coalesce(sum(c.stored_bytes), 0) FROM artifact_content c"
    "  WHERE c.tenant_id = ?1 AND c.content_hash IN (SELECT content_hash FROM " SESSION_ROWS "))"
    " FROM " SESSION_ROWS;

static const char SQL_COUNT[] = "SELECT count(*) FROM artifacts WHERE tenant_id = ?1";

static const char SQL_CONTENT_DUMP[] =
    "SELECT content_hash, size_bytes, stored_bytes, is_compressed, original_size_bytes,"
    " chunk_count, reference_count, created_at, last_accessed_at, tenant_id"
    " FROM artifact_content"
    " WHERE tenant_id = ?1 AND content_hash > ?2 ORDER BY content_hash LIMIT ?3";

/* ------------------------------------------------------------- helpers */

/* The statement for sql with the tenant bound as ?1; NULL + err. */
static sqlite3_stmt *prep(sqlite_backend *b, const char *sql, lls_error *err) {
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, sql, err);
  if (s == NULL) return NULL;
  int rc = bind_tenant(b, s);
  if (rc != SQLITE_OK) {
    done(s);
    lls_sqlite_fail(b->db, rc, "artifacts", err);
    return NULL;
  }
  return s;
}

/* Text, or NULL for a NULL pointer (created_by, parent_artifact_id). */
static int bind_opt(sqlite3_stmt *s, int i, lls_str v) {
  return v.ptr == NULL ? sqlite3_bind_null(s, i) : bind_bytes(s, i, v, 1);
}

/* Steps s (rc: the binds' result). *row = 1 leaves s on its row for the
 * caller, who resets it (done); *row = 0 means none, s already reset. */
static int step(sqlite_backend *b, sqlite3_stmt *s, int rc, const char *what, int *row,
                lls_error *err) {
  *row = 0;
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    *row = 1;
    return 0;
  }
  if (rc != SQLITE_DONE) lls_sqlite_fail(b->db, rc, what, err);
  done(s);
  return rc == SQLITE_DONE ? 0 : -1;
}

/* Copies text column col into field f of row (NULL stays NULL). */
static int copy_text(sqlite3_stmt *s, int col, lls_artifact_rows *out, lls_artifact_row *row,
                     int f) {
  if (sqlite3_column_type(s, col) == SQLITE_NULL)
    return lls_artifact_rows_set(out, row, f, NULL, 0);
  lls_str v;
  if (column_bytes(s, col, &v, 1) != 0) return -1;
  return lls_artifact_rows_set(out, row, f, v.ptr, v.len);
}

/* Appends the artifact at s's current row (columns ROW_COLS). */
static int read_row(sqlite3_stmt *s, lls_artifact_rows *out, lls_error *err) {
  static const int text[][2] = {
      {0, LLS_ART_ID},    {1, LLS_ART_SESSION}, {3, LLS_ART_HASH},        {4, LLS_ART_METADATA},
      {5, LLS_ART_NAME},  {6, LLS_ART_TYPE},    {7, LLS_ART_MIME},        {10, LLS_ART_CREATED_BY},
      {12, LLS_ART_PARENT}, {13, LLS_ART_TAGS},   {19, LLS_ART_TENANT},
  };
  lls_artifact_row *row = lls_artifact_rows_add(out);
  if (row == NULL) return lls_error_oom(err);
  for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
    if (copy_text(s, text[i][0], out, row, text[i][1]) != 0) return lls_error_oom(err);
  row->sequence = sqlite3_column_int64(s, 2);
  row->size_bytes = sqlite3_column_int64(s, 8);
  row->created_at = sqlite3_column_int64(s, 9);
  row->version = sqlite3_column_int64(s, 11);
  row->stored_at = sqlite3_column_int64(s, 14);
  row->updated_at = sqlite3_column_int64(s, 15);
  if (sqlite3_column_type(s, 16) == SQLITE_NULL) {
    row->chunk_count = -1;
  } else {
    row->chunk_count = sqlite3_column_int64(s, 16);
    row->stored_bytes = sqlite3_column_int64(s, 17);
    row->is_compressed = sqlite3_column_int(s, 18) != 0;
  }
  return 0;
}

/* Runs a one-row read whose columns are int64s into v[0..n). */
static int read_ints(sqlite_backend *b, sqlite3_stmt *s, int rc, int64_t *v, int n,
                     lls_error *err) {
  int row;
  if (step(b, s, rc, "artifact stats", &row, err) != 0) return -1;
  for (int i = 0; i < n; i++) v[i] = row ? sqlite3_column_int64(s, i) : 0;
  if (row) done(s);
  return 0;
}

/* Stores src's chunks for content hash and finishes its row (the content
 * row was inserted with chunk_count -1 in this unit). */
static int write_chunks(sqlite_backend *b, lls_str hash, lls_artifact_src *src,
                        lls_error *err) {
  for (;;) {
    lls_artifact_chunk c;
    int eof;
    if (lls_artifact_src_next(src, &c, &eof, err) != 0) return -1;
    if (eof) break;
    sqlite3_stmt *s = prep(b, SQL_CHUNK_PUT, err);
    if (s == NULL) return -1;
    int rc = bind_bytes(s, 2, hash, 1);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, c.index);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, c.raw_size);
    if (rc == SQLITE_OK) rc = bind_bytes(s, 5, c.data, 0);
    if (lls_sqlite_run(b, s, rc, "artifact chunk", err) != 0) return -1;
  }
  sqlite3_stmt *s = prep(b, SQL_CONTENT_FINISH, err);
  if (s == NULL) return -1;
  int rc = bind_bytes(s, 2, hash, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, src->stored);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 4, src->compressed);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 5, src->index);
  return lls_sqlite_run(b, s, rc, "artifact content", err);
}

/* Takes n references off content hash; content left with none goes, with
 * its chunks. */
static int release(sqlite_backend *b, lls_str hash, int64_t n, lls_error *err) {
  sqlite3_stmt *s = prep(b, SQL_CONTENT_DEC, err);
  if (s == NULL) return -1;
  int rc = bind_bytes(s, 2, hash, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, n);
  int row;
  if (step(b, s, rc, "artifact content", &row, err) != 0) return -1;
  if (!row) return 0; /* no content row (an import left it out) */
  int64_t left = sqlite3_column_int64(s, 0);
  done(s);
  if (left > 0) return 0;
  const char *const drops[] = {SQL_CHUNKS_DROP, SQL_CONTENT_DROP};
  for (int i = 0; i < 2; i++) {
    s = prep(b, drops[i], err);
    if (s == NULL) return -1;
    if (lls_sqlite_run(b, s, bind_bytes(s, 2, hash, 1), "artifact content", err) != 0)
      return -1;
  }
  return 0;
}

/* Binds and runs SQL_ARTIFACT_PUT for row i of r. */
static int insert_row(sqlite_backend *b, const lls_artifact_rows *r, size_t i, lls_error *err) {
  const lls_artifact_row *row = &r->rows[i];
  sqlite3_stmt *s = prep(b, SQL_ARTIFACT_PUT, err);
  if (s == NULL) return -1;
  static const int text[][2] = {
      {2, LLS_ART_ID},   {3, LLS_ART_SESSION}, {5, LLS_ART_HASH}, {6, LLS_ART_METADATA},
      {7, LLS_ART_NAME}, {8, LLS_ART_TYPE},    {9, LLS_ART_MIME}, {12, LLS_ART_CREATED_BY},
      {14, LLS_ART_PARENT}, {15, LLS_ART_TAGS},
  };
  int rc = SQLITE_OK;
  for (size_t k = 0; rc == SQLITE_OK && k < sizeof text / sizeof text[0]; k++)
    rc = bind_opt(s, text[k][0], lls_artifact_rows_get(r, i, text[k][1]));
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, row->sequence);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 10, row->size_bytes);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 11, row->created_at);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 13, row->version);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 16, row->stored_at);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 17, row->updated_at);
  return lls_sqlite_run(b, s, rc, "artifact", err);
}

/* -------------------------------------------------------------- writes */

static int sqlite_put(lls_backend *base, const lls_artifact_new *a, lls_artifact_src *src,
                      int64_t now, int64_t *sequence, int *deduplicated, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  lls_str hash = {src->hash, LLS_SHA256_HEX - 1};
  lls_artifact_rows rows = {0};
  int nested, row;
  if (lls_sqlite_unit_begin(b, &nested, "artifact put", err) != 0) return -1;

  sqlite3_stmt *s = prep(b, SQL_SEQ, err);
  if (s == NULL) goto fail;
  int rc = bind_bytes(s, 2, a->session_id, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (step(b, s, rc, "artifact put", &row, err) != 0) goto fail;
  if (!row) {
    lls_error_set(err, LLS_ENOTFOUND, "session '%.*s' does not exist (or has expired)",
                  QUOTE_LEN(a->session_id), a->session_id.ptr);
    goto fail;
  }
  int64_t seq = sqlite3_column_int64(s, 0);
  done(s);

  s = prep(b, SQL_CONTENT_REF, err);
  if (s == NULL) goto fail;
  rc = bind_bytes(s, 2, hash, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, src->size);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, now);
  if (step(b, s, rc, "artifact content", &row, err) != 0) goto fail;
  int fresh = row && sqlite3_column_int64(s, 0) == -1;
  if (row) done(s);
  if (fresh && write_chunks(b, hash, src, err) != 0) goto fail;

  /* The row as load_artifact would store it: one insert for both. */
  char seqtxt[24];
  int seqlen = snprintf(seqtxt, sizeof seqtxt, "%lld", (long long)seq);
  lls_artifact_row *r = lls_artifact_rows_add(&rows);
  if (r == NULL) goto oom;
  r->sequence = seq;
  r->size_bytes = src->size;
  r->version = 1;
  r->created_at = r->stored_at = r->updated_at = now;
  size_t id0 = rows.bytes.len;
  if (lls_buf_append(&rows.bytes, a->session_id.ptr, a->session_id.len) != 0 ||
      lls_buf_append(&rows.bytes, ":", 1) != 0 ||
      lls_buf_append(&rows.bytes, seqtxt, (size_t)seqlen) != 0 ||
      lls_buf_append(&rows.bytes, ":", 1) != 0 ||
      lls_buf_append(&rows.bytes, hash.ptr, hash.len) != 0)
    goto oom;
  r->off[LLS_ART_ID] = id0;
  r->len[LLS_ART_ID] = rows.bytes.len - id0;
  if (lls_artifact_rows_set(&rows, r, LLS_ART_SESSION, a->session_id.ptr, a->session_id.len) ||
      lls_artifact_rows_set(&rows, r, LLS_ART_HASH, hash.ptr, hash.len) ||
      lls_artifact_rows_set(&rows, r, LLS_ART_METADATA, a->metadata.ptr, a->metadata.len) ||
      lls_artifact_rows_set(&rows, r, LLS_ART_NAME, a->name.ptr, a->name.len) ||
      lls_artifact_rows_set(&rows, r, LLS_ART_TYPE, a->type.ptr, a->type.len) ||
      lls_artifact_rows_set(&rows, r, LLS_ART_MIME, a->mime_type.ptr, a->mime_type.len) ||
      lls_artifact_rows_set(&rows, r, LLS_ART_CREATED_BY, a->created_by.ptr,
                            a->created_by.len) ||
      lls_artifact_rows_set(&rows, r, LLS_ART_PARENT, NULL, 0) ||
      lls_artifact_rows_set(&rows, r, LLS_ART_TAGS, a->tags.ptr, a->tags.len))
    goto oom;
  if (insert_row(b, &rows, 0, err) != 0) goto fail;
  if (lls_sqlite_unit_commit(b, nested, "artifact put", err) != 0) goto fail;
  lls_artifact_rows_free(&rows);
  *sequence = seq;
  *deduplicated = !fresh;
  return 0;

oom:
  lls_error_oom(err);
fail:
  lls_artifact_rows_free(&rows);
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

static int sqlite_del(lls_backend *base, lls_str artifact_id, int64_t now, int *existed,
                      lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  (void)now;
  *existed = 0;
  int nested, row;
  if (lls_sqlite_unit_begin(b, &nested, "artifact delete", err) != 0) return -1;
  sqlite3_stmt *s = prep(b, SQL_ARTIFACT_DEL, err);
  if (s == NULL) goto fail;
  if (step(b, s, bind_bytes(s, 2, artifact_id, 1), "artifact delete", &row, err) != 0)
    goto fail;
  if (!row) {
    lls_sqlite_unit_abort(b, nested);
    return 0;
  }
  /* copies: the statement is reset before they are used */
  char session[LLS_MAX_ID + 1], hash[LLS_SHA256_HEX];
  lls_str sid, h;
  if (column_bytes(s, 0, &sid, 1) != 0 || column_bytes(s, 1, &h, 1) != 0 ||
      sid.len > LLS_MAX_ID || h.len >= sizeof hash) {
    done(s);
    lls_error_set(err, LLS_EINTEGRITY, "artifact row has a malformed session or hash");
    goto fail;
  }
  memcpy(session, sid.ptr, sid.len);
  memcpy(hash, h.ptr, h.len);
  sid.ptr = session;
  h.ptr = hash;
  done(s);
  s = prep(b, SQL_SESSION_DEC, err);
  if (s == NULL) goto fail;
  if (lls_sqlite_run(b, s, bind_bytes(s, 2, sid, 1), "artifact delete", err) != 0) goto fail;
  if (release(b, h, 1, err) != 0) goto fail;
  if (lls_sqlite_unit_commit(b, nested, "artifact delete", err) != 0) goto fail;
  *existed = 1;
  return 0;

fail:
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

/* --------------------------------------------------------------- reads */

static int sqlite_info(lls_backend *base, lls_str artifact_id, lls_artifact_rows *out,
                       lls_buf *first, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = prep(b, SQL_INFO, err);
  if (s == NULL) return -1;
  int rc = bind_bytes(s, 2, artifact_id, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 3, first != NULL);
  int row;
  if (step(b, s, rc, "artifact info", &row, err) != 0) return -1;
  if (!row) return 0;
  int ok = read_row(s, out, err);
  if (ok == 0 && first != NULL) {
    first->len = 0;
    if (sqlite3_column_type(s, 20) != SQLITE_NULL) {
      lls_str data;
      if (column_bytes(s, 21, &data, 0) != 0)
        ok = lls_error_oom(err);
      else
        ok = lls_artifact_chunk_decode(data, sqlite3_column_int64(s, 20), first, err);
    }
  }
  done(s);
  return ok;
}

static int sqlite_read_chunk(lls_backend *base, lls_str hash, int64_t index, lls_buf *out,
                             int *found, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  *found = 0;
  sqlite3_stmt *s = prep(b, SQL_CHUNK_GET, err);
  if (s == NULL) return -1;
  int rc = bind_bytes(s, 2, hash, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, index);
  int row;
  if (step(b, s, rc, "artifact chunk", &row, err) != 0) return -1;
  if (!row) return 0;
  lls_str data;
  int ok = column_bytes(s, 1, &data, 0) != 0
               ? lls_error_oom(err)
               : lls_artifact_chunk_decode(data, sqlite3_column_int64(s, 0), out, err);
  done(s);
  *found = ok == 0;
  return ok;
}

/* Runs a statement whose rows are ROW_COLS into out. */
static int read_rows(sqlite_backend *b, sqlite3_stmt *s, int rc, lls_artifact_rows *out,
                     const char *what, lls_error *err) {
  for (rc = rc == SQLITE_OK ? sqlite3_step(s) : rc; rc == SQLITE_ROW; rc = sqlite3_step(s)) {
    if (read_row(s, out, err) != 0) {
      done(s);
      return -1;
    }
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, what, err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sqlite_list(lls_backend *base, lls_str session_id, int64_t after, size_t limit,
                       lls_artifact_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = prep(b, SQL_LIST, err);
  if (s == NULL) return -1;
  int rc = bind_bytes(s, 2, session_id, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, after);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, limit ? clamp_limit(limit) : -1);
  return read_rows(b, s, rc, out, "artifact list", err);
}

static int sqlite_stats(lls_backend *base, lls_str session_id, lls_artifact_stats *out,
                        lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int64_t v[4];
  sqlite3_stmt *s = prep(b, session_id.ptr ? SQL_STATS_SESSION : SQL_STATS_TENANT, err);
  if (s == NULL) return -1;
  int rc = session_id.ptr ? bind_bytes(s, 2, session_id, 1) : SQLITE_OK;
  if (read_ints(b, s, rc, v, 4, err) != 0) return -1;
  out->artifacts = v[0];
  out->bytes = v[1];
  out->unique_contents = v[2];
  out->stored_bytes = v[3];
  return 0;
}

static int sqlite_count(lls_backend *base, int64_t now, int64_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  (void)now;
  sqlite3_stmt *s = prep(b, SQL_COUNT, err);
  if (s == NULL) return -1;
  return read_ints(b, s, SQLITE_OK, n, 1, err);
}

/* ------------------------------------------------------ export, import */

static int sqlite_dump_content(lls_backend *base, lls_str after, size_t limit,
                               lls_content_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = prep(b, SQL_CONTENT_DUMP, err);
  if (s == NULL) return -1;
  int rc = bind_bytes(s, 2, after, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, limit ? clamp_limit(limit) : -1);
  for (rc = rc == SQLITE_OK ? sqlite3_step(s) : rc; rc == SQLITE_ROW; rc = sqlite3_step(s)) {
    lls_str h;
    lls_content_row *c;
    if (column_bytes(s, 0, &h, 1) != 0 || (c = lls_content_rows_add(out)) == NULL) {
      done(s);
      return lls_error_oom(err);
    }
    if (h.len != LLS_SHA256_HEX - 1) {
      done(s);
      return lls_error_set(err, LLS_EINTEGRITY, "artifact content hash '%.*s' is malformed",
                           QUOTE_LEN(h), h.ptr);
    }
    memcpy(c->hash, h.ptr, h.len);
    c->hash[h.len] = '\0';
    c->size_bytes = sqlite3_column_int64(s, 1);
    c->stored_bytes = sqlite3_column_int64(s, 2);
    c->is_compressed = sqlite3_column_int(s, 3) != 0;
    c->original_size_bytes = sqlite3_column_int64(s, 4);
    c->chunk_count = sqlite3_column_int64(s, 5);
    c->reference_count = sqlite3_column_int64(s, 6);
    c->created_at = sqlite3_column_int64(s, 7);
    c->last_accessed_at = sqlite3_column_int64(s, 8);
    lls_str t;
    if (column_bytes(s, 9, &t, 1) != 0) {
      done(s);
      return lls_error_oom(err);
    }
    size_t tl = t.len < sizeof c->tenant ? t.len : sizeof c->tenant - 1;
    memcpy(c->tenant, t.ptr, tl);
    c->tenant[tl] = '\0';
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "artifact dump", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sqlite_dump_artifacts(lls_backend *base, lls_str after, size_t limit,
                                 lls_artifact_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = prep(b, SQL_DUMP, err);
  if (s == NULL) return -1;
  int rc = bind_bytes(s, 2, after, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, limit ? clamp_limit(limit) : -1);
  return read_rows(b, s, rc, out, "artifact dump", err);
}

static int sqlite_load_content(lls_backend *base, const lls_content_row *c,
                               lls_artifact_src *src, lls_conflict on_conflict, int64_t now,
                               int *written, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  lls_str hash = {c->hash, LLS_SHA256_HEX - 1};
  (void)now;
  *written = 0;
  int nested, row;
  if (lls_sqlite_unit_begin(b, &nested, "import", err) != 0) return -1;
  sqlite3_stmt *s = prep(b, SQL_CONTENT_EXISTS, err);
  if (s == NULL) goto fail;
  if (step(b, s, bind_bytes(s, 2, hash, 1), "import", &row, err) != 0) goto fail;
  if (row) {
    done(s);
    if (on_conflict == LLS_CONFLICT_ERROR) {
      lls_error_set(err, LLS_ECONFLICT, "artifact content %s already exists", c->hash);
      goto fail;
    }
    if (on_conflict == LLS_CONFLICT_SKIP) {
      lls_sqlite_unit_abort(b, nested);
      return 0;
    }
    /* replace: the same hash holds the same bytes; only the times move */
    s = prep(b, SQL_CONTENT_TIMES, err);
    if (s == NULL) goto fail;
    int rc = bind_bytes(s, 2, hash, 1);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, c->created_at);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, c->last_accessed_at);
    if (lls_sqlite_run(b, s, rc, "import", err) != 0) goto fail;
  } else {
    s = prep(b, SQL_CONTENT_LOAD, err);
    if (s == NULL) goto fail;
    int rc = bind_bytes(s, 2, hash, 1);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, src->size);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, c->created_at);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 5, c->last_accessed_at);
    if (lls_sqlite_run(b, s, rc, "import", err) != 0) goto fail;
    if (write_chunks(b, hash, src, err) != 0) goto fail;
  }
  if (lls_sqlite_unit_commit(b, nested, "import", err) != 0) goto fail;
  *written = 1;
  return 0;

fail:
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

static int sqlite_load_artifact(lls_backend *base, const lls_artifact_rows *r, size_t i,
                                lls_conflict on_conflict, int64_t now, int *written,
                                lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  lls_str id = lls_artifact_rows_get(r, i, LLS_ART_ID);
  lls_str hash = lls_artifact_rows_get(r, i, LLS_ART_HASH);
  (void)now;
  *written = 0;
  int nested, row, same = 0, replaced = 0;
  if (lls_sqlite_unit_begin(b, &nested, "import", err) != 0) return -1;
  sqlite3_stmt *s = prep(b, SQL_ARTIFACT_HASH, err);
  if (s == NULL) goto fail;
  if (step(b, s, bind_bytes(s, 2, id, 1), "import", &row, err) != 0) goto fail;
  if (row) {
    lls_str old;
    char oldhash[LLS_SHA256_HEX] = "";
    if (column_bytes(s, 0, &old, 1) == 0 && old.len < sizeof oldhash)
      memcpy(oldhash, old.ptr, old.len), oldhash[old.len] = '\0';
    done(s);
    if (on_conflict == LLS_CONFLICT_ERROR) {
      lls_error_set(err, LLS_ECONFLICT, "artifact '%.*s' already exists", QUOTE_LEN(id),
                    id.ptr);
      goto fail;
    }
    if (on_conflict == LLS_CONFLICT_SKIP) {
      lls_sqlite_unit_abort(b, nested);
      return 0;
    }
    same = strlen(oldhash) == hash.len && memcmp(oldhash, hash.ptr, hash.len) == 0;
    replaced = 1;
    s = prep(b, SQL_ARTIFACT_DEL, err);
    if (s == NULL) goto fail;
    if (step(b, s, bind_bytes(s, 2, id, 1), "import", &row, err) != 0) goto fail;
    if (row) done(s);
    lls_str oh = {oldhash, strlen(oldhash)};
    if (!same && release(b, oh, 1, err) != 0) goto fail;
  }
  if (insert_row(b, r, i, err) != 0) goto fail;
  if (!same) {
    /* a new reference to the content, when it is stored already */
    s = prep(b, SQL_CONTENT_DEC, err);
    if (s == NULL) goto fail;
    int rc = bind_bytes(s, 2, hash, 1);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, -1);
    if (step(b, s, rc, "import", &row, err) != 0) goto fail;
    if (row) done(s);
  }
  s = prep(b, SQL_SESSION_LOADED, err);
  if (s == NULL) goto fail;
  int rc = bind_bytes(s, 2, lls_artifact_rows_get(r, i, LLS_ART_SESSION), 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, r->rows[i].sequence);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 4, !replaced);
  if (lls_sqlite_run(b, s, rc, "import", err) != 0) goto fail;
  if (lls_sqlite_unit_commit(b, nested, "import", err) != 0) goto fail;
  *written = 1;
  return 0;

fail:
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

const lls_artifact_ops lls_sqlite_artifact_ops = {
    .put = sqlite_put,
    .info = sqlite_info,
    .read_chunk = sqlite_read_chunk,
    .list = sqlite_list,
    .del = sqlite_del,
    .stats = sqlite_stats,
    .count = sqlite_count,
    .dump_content = sqlite_dump_content,
    .dump_artifacts = sqlite_dump_artifacts,
    .load_content = sqlite_load_content,
    .load_artifact = sqlite_load_artifact,
};
