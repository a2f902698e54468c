/*
 * sessions.c -- the SQLite backend's sessions slots (lls_session_ops) over
 * the sessions table, and the cascade that removes a session's artifacts.
 *
 * Table (migration 5, schema.c; times in microseconds since the epoch):
 *
 *   CREATE TABLE sessions (
 *     tenant_id        TEXT NOT NULL,
 *     session_id       TEXT NOT NULL,     -- the caller's id, byte order
 *     row_id           TEXT NOT NULL,     -- UUID made at create: export's "id"
 *     status           TEXT NOT NULL CHECK (status IN
 *                        ('active', 'completed', 'expired', 'archived')),
 *     data             TEXT NOT NULL,     -- JSON text
 *     created_at       INTEGER NOT NULL,
 *     updated_at       INTEGER NOT NULL,  -- create, update
 *     last_accessed_at INTEGER NOT NULL,  -- create, touch
 *     expires_at       INTEGER,           -- NULL = never
 *     artifact_count   INTEGER NOT NULL DEFAULT 0, -- raised by the artifacts code
 *     next_sequence    INTEGER NOT NULL DEFAULT 0, -- raised by the artifacts code
 *     PRIMARY KEY (tenant_id, session_id)
 *   ) WITHOUT ROWID;
 *   CREATE INDEX sessions_status  ON sessions (tenant_id, status, created_at);
 *   CREATE INDEX sessions_created ON sessions (tenant_id, created_at);
 *   CREATE INDEX sessions_expires ON sessions (tenant_id, expires_at)
 *     WHERE expires_at IS NOT NULL;
 *
 * The entries of a WITHOUT ROWID table's index end with its primary key, so
 * sessions_status is (tenant_id, status, created_at, session_id) and
 * sessions_created (tenant_id, created_at, session_id): list() walks one
 * backwards (newest first, ties by id) and resumes after a page with the
 * row-value range (created_at, session_id) < (..): no sort, no offset.
 * cleanup() finds expired rows through sessions_expires.
 *
 * The cascade reads the artifact tables (migration 6, documented with the
 * artifacts code) through artifacts_session (tenant_id, session_id,
 * sequence) and the content primary keys. SQLite has no foreign keys
 * here, so chunks are deleted explicitly.
 */
#include "backends/sqlite/sessions.h"

#include <string.h>

#include "backends/sqlite/conn.h"

/* Rows cleanup() collects per round before removing them. */
#define CLEANUP_BATCH 256

#define VISIBLE "(expires_at IS NULL OR expires_at > ?3)"
#define COLS "row_id, status, data, created_at, updated_at, last_accessed_at, expires_at, " \
             "artifact_count"

/* ?1 tenant, ?2 id, ?3 row_id, ?4 status, ?5 data, ?6 now, ?7 expires_at */
static const char SQL_INSERT[] =
    "INSERT INTO sessions (tenant_id, session_id, row_id, status, data, created_at,"
    " updated_at, last_accessed_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6, ?7)"
    " ON CONFLICT (tenant_id, session_id) DO NOTHING";
static const char SQL_DEL_EXPIRED[] =
    "DELETE FROM sessions WHERE tenant_id = ?1 AND session_id = ?2"
    " AND expires_at IS NOT NULL AND expires_at <= ?3";
static const char SQL_GET[] =
    "SELECT " COLS " FROM sessions WHERE tenant_id = ?1 AND session_id = ?2 AND " VISIBLE;
/* ?4 data or NULL, ?5 status or NULL, ?6 lls_expiry_change, ?7 expires_at */
static const char SQL_UPDATE[] =
    "UPDATE sessions SET data = coalesce(?4, data), status = coalesce(?5, status),"
    " expires_at = CASE ?6 WHEN 0 THEN expires_at WHEN 1 THEN ?7 ELSE NULL END,"
    " updated_at = ?3 WHERE tenant_id = ?1 AND session_id = ?2 AND " VISIBLE;
static const char SQL_TOUCH[] =
    "UPDATE sessions SET last_accessed_at = ?3"
    " WHERE tenant_id = ?1 AND session_id = ?2 AND " VISIBLE;
/* RETURNING the column, not an expression over it: SQLite 3.40 computes
 * `expires_at IS NULL` wrongly in the RETURNING of a WITHOUT ROWID delete. */
static const char SQL_DELETE[] =
    "DELETE FROM sessions WHERE tenant_id = ?1 AND session_id = ?2 RETURNING expires_at";
static const char SQL_EXISTS[] =
    "SELECT 1 FROM sessions WHERE tenant_id = ?1 AND session_id = ?2";
static const char SQL_COUNT[] =
    "SELECT count(*) FROM sessions WHERE tenant_id = ?1 AND " VISIBLE;
static const char SQL_EXPIRED_IDS[] =
    "SELECT session_id FROM sessions WHERE tenant_id = ?1 AND expires_at IS NOT NULL"
    " AND expires_at <= ?3 ORDER BY expires_at LIMIT ?2";
static const char SQL_DUMP[] =
    "SELECT session_id, " COLS " FROM sessions WHERE tenant_id = ?1 AND session_id > ?2"
    " AND " VISIBLE " ORDER BY session_id LIMIT ?4";

/* list(): ?2 status, ?4 after, ?5 limit. One statement per shape, so each
 * is a plain range of one index whatever the parameters. */
#define LIST_HEAD "SELECT session_id FROM sessions WHERE tenant_id = ?1 AND " VISIBLE
#define LIST_AFTER                                                                 \
  " AND (created_at, session_id) < ((SELECT created_at FROM sessions"              \
  " WHERE tenant_id = ?1 AND session_id = ?4), ?4)"
#define LIST_TAIL " ORDER BY created_at DESC, session_id DESC LIMIT ?5"
static const char SQL_LIST[] = LIST_HEAD LIST_TAIL;
static const char SQL_LIST_AFTER[] = LIST_HEAD LIST_AFTER LIST_TAIL;
static const char SQL_LIST_ST[] = LIST_HEAD " AND status = ?2" LIST_TAIL;
static const char SQL_LIST_ST_AFTER[] = LIST_HEAD " AND status = ?2" LIST_AFTER LIST_TAIL;

/* The session's artifacts. INDEXED BY: without statistics SQLite prefers
 * the primary key's (tenant_id) prefix, a walk over every artifact of the
 * tenant, to artifacts_session (whose entries need a lookup for the other
 * columns). */
#define ARTIFACTS_OF                                                               \
  "artifacts INDEXED BY artifacts_session WHERE tenant_id = ?1 AND session_id = ?2"
#define SESSION_HASHES "(SELECT content_hash FROM " ARTIFACTS_OF ")"

/* The cascade for session ?2, in this order: the counts drop while the
 * artifact rows still say which content they refer to. */
static const char SQL_CASCADE_REFS[] =
    "UPDATE artifact_content SET reference_count = reference_count - n.c"
    " FROM (SELECT content_hash AS h, count(*) AS c FROM " ARTIFACTS_OF
    " GROUP BY content_hash) AS n"
    " WHERE artifact_content.tenant_id = ?1 AND artifact_content.content_hash = n.h";
static const char SQL_CASCADE_CHUNKS[] =
    "DELETE FROM artifact_chunks WHERE tenant_id = ?1 AND content_hash IN"
    " (SELECT content_hash FROM artifact_content WHERE tenant_id = ?1"
    " AND reference_count <= 0 AND content_hash IN " SESSION_HASHES ")";
static const char SQL_CASCADE_CONTENT[] =
    "DELETE FROM artifact_content WHERE tenant_id = ?1 AND reference_count <= 0"
    " AND content_hash IN " SESSION_HASHES;
static const char SQL_CASCADE_ARTIFACTS[] = "DELETE FROM " ARTIFACTS_OF;

/* load(): ?3 now, ?4 row_id, ?5 status, ?6 data, ?7 created, ?8 updated,
 * ?9 accessed, ?10 expires_at. artifact_count is the number of the
 * session's artifact rows already stored, whatever the file says (the
 * artifacts' load counts those that come later). */
#define LOAD_COUNT "(SELECT count(*) FROM " ARTIFACTS_OF ")"
#define LOAD_NEXT "(SELECT coalesce(max(sequence) + 1, 0) FROM " ARTIFACTS_OF ")"
static const char SQL_LOAD_PROBE[] =
    "SELECT " VISIBLE " FROM sessions WHERE tenant_id = ?1 AND session_id = ?2";
static const char SQL_LOAD_INSERT[] =
    "INSERT INTO sessions (tenant_id, session_id, row_id, status, data, created_at,"
    " updated_at, last_accessed_at, expires_at, artifact_count, next_sequence)"
    " VALUES (?1, ?2, ?4, ?5, ?6, ?7, ?8, ?9, ?10, " LOAD_COUNT ", " LOAD_NEXT ")";
static const char SQL_LOAD_REPLACE[] =
    "UPDATE sessions SET row_id = ?4, status = ?5, data = ?6, created_at = ?7,"
    " updated_at = ?8, last_accessed_at = ?9, expires_at = ?10,"
    " artifact_count = " LOAD_COUNT ", next_sequence = max(next_sequence, " LOAD_NEXT ")"
    " WHERE tenant_id = ?1 AND session_id = ?2";

/* ------------------------------------------------------------- helpers */

/* Reports rc for s (which is reset) and returns -1. */
static int fail(sqlite_backend *b, sqlite3_stmt *s, int rc, const char *what, lls_error *err) {
  lls_sqlite_fail(b->db, rc, what, err);
  done(s);
  return -1;
}

/* The cached statement for sql with ?1 = tenant and, when id.ptr is set,
 * ?2 = id; NULL + err on failure. */
static sqlite3_stmt *start(sqlite_backend *b, const char *sql, lls_str id, const char *what,
                           lls_error *err) {
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, sql, err);
  if (s == NULL) return NULL;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK && id.ptr != NULL) rc = bind_bytes(s, 2, id, 1);
  if (rc != SQLITE_OK) {
    fail(b, s, rc, what, err);
    return NULL;
  }
  return s;
}

/* Runs one statement of the cascade for id. */
static int cascade_step(sqlite_backend *b, const char *sql, lls_str id, lls_error *err) {
  sqlite3_stmt *s = start(b, sql, id, "delete session artifacts", err);
  return s == NULL ? -1 : lls_sqlite_run(b, s, SQLITE_OK, "delete session artifacts", err);
}

/* Removes the artifacts of session id: their rows, their references to
 * content, and content (with its chunks) that no artifact refers to any
 * more. Runs inside the caller's unit. */
static int cascade(sqlite_backend *b, lls_str id, lls_error *err) {
  return cascade_step(b, SQL_CASCADE_REFS, id, err) ||
                 cascade_step(b, SQL_CASCADE_CHUNKS, id, err) ||
                 cascade_step(b, SQL_CASCADE_CONTENT, id, err) ||
                 cascade_step(b, SQL_CASCADE_ARTIFACTS, id, err)
             ? -1
             : 0;
}

/* Deletes the row of id (any expiry) and its artifacts, inside the
 * caller's unit; *visible = 1 when the row was visible. */
static int remove_one(sqlite_backend *b, lls_str id, int64_t now, int *visible, lls_error *err) {
  sqlite3_stmt *s = start(b, SQL_DELETE, id, "delete session", err);
  if (s == NULL) return -1;
  int rc = sqlite3_step(s);
  *visible = 0;
  if (rc == SQLITE_ROW) {
    *visible = sqlite3_column_type(s, 0) == SQLITE_NULL || sqlite3_column_int64(s, 0) > now;
    rc = sqlite3_step(s);
  }
  if (rc != SQLITE_DONE) return fail(b, s, rc, "delete session", err);
  done(s);
  return cascade(b, id, err);
}

/* Deletes the row of id only if it has expired, with its artifacts;
 * inside the caller's unit. */
static int remove_expired(sqlite_backend *b, lls_str id, int64_t now, lls_error *err) {
  sqlite3_stmt *s = start(b, SQL_DEL_EXPIRED, id, "create session", err);
  if (s == NULL) return -1;
  if (lls_sqlite_run(b, s, sqlite3_bind_int64(s, 3, now), "create session", err) != 0) return -1;
  return sqlite3_changes(b->db) > 0 ? cascade(b, id, err) : 0;
}

/* Copies the row at s (columns from col: COLS) into b->value and points
 * out at it, so it outlives the statement's reset. */
static int take_row(sqlite_backend *b, sqlite3_stmt *s, int col, lls_session *out,
                    lls_error *err) {
  lls_str f[3];
  size_t off[3];
  b->value.len = 0;
  for (int i = 0; i < 3; i++) {
    if (column_bytes(s, col + i, &f[i], 1) != 0) return lls_error_oom(err);
    off[i] = b->value.len;
    if (lls_buf_append(&b->value, f[i].ptr, f[i].len) != 0) return lls_error_oom(err);
  }
  const char *base = b->value.data ? b->value.data : "";
  out->row_id = (lls_str){base + off[0], f[0].len};
  out->status = (lls_str){base + off[1], f[1].len};
  out->data = (lls_str){base + off[2], f[2].len};
  out->tenant = (lls_str){"", 0};
  out->created_at = sqlite3_column_int64(s, col + 3);
  out->updated_at = sqlite3_column_int64(s, col + 4);
  out->last_accessed_at = sqlite3_column_int64(s, col + 5);
  out->expires_at = sqlite3_column_int64(s, col + 6); /* NULL reads as 0: never */
  out->artifact_count = sqlite3_column_int64(s, col + 7);
  return 0;
}

/* Runs SQL_INSERT for s; *inserted = 0 when the id was taken. */
static int insert(sqlite_backend *b, const lls_session *s, int64_t now, int *inserted,
                  lls_error *err) {
  sqlite3_stmt *st = start(b, SQL_INSERT, s->id, "create session", err);
  if (st == NULL) return -1;
  int rc = bind_bytes(st, 3, s->row_id, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(st, 4, s->status, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(st, 5, s->data, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 6, now);
  if (rc == SQLITE_OK) rc = bind_expiry(st, 7, s->expires_at);
  if (lls_sqlite_run(b, st, rc, "create session", err) != 0) return -1;
  *inserted = sqlite3_changes(b->db) > 0;
  return 0;
}

static int conflict(lls_str id, lls_error *err) {
  return lls_error_set(err, LLS_ECONFLICT, "session '%.*s' already exists", QUOTE_LEN(id),
                       id.ptr);
}

static int not_found(lls_str id, lls_error *err) {
  return lls_error_set(err, LLS_ENOTFOUND, "no session '%.*s'", QUOTE_LEN(id), id.ptr);
}

/* --------------------------------------------------------------- slots */

/* The usual case is one INSERT; only a taken id opens a unit, to replace
 * an expired session (and its artifacts) or report the conflict. */
static int sqlite_create(lls_backend *base, const lls_session *s, int64_t now, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  int inserted;
  if (insert(b, s, now, &inserted, err) != 0) return -1;
  if (inserted) return 0;
  int nested;
  if (lls_sqlite_unit_begin(b, &nested, "create session", err) != 0) return -1;
  if (remove_expired(b, s->id, now, err) != 0 || insert(b, s, now, &inserted, err) != 0 ||
      (!inserted && conflict(s->id, err)) ||
      lls_sqlite_unit_commit(b, nested, "create session", err) != 0) {
    lls_sqlite_unit_abort(b, nested);
    return -1;
  }
  return 0;
}

static int sqlite_get(lls_backend *base, lls_str id, int64_t now, lls_session *out, int *found,
                      lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = start(b, SQL_GET, id, "get session", err);
  if (s == NULL) return -1;
  int rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  *found = 0;
  if (rc == SQLITE_ROW) {
    if (take_row(b, s, 0, out, err) != 0) {
      done(s);
      return -1;
    }
    out->id = id;
    *found = 1;
    rc = SQLITE_DONE; /* the primary key: no second row */
  }
  if (rc != SQLITE_DONE) return fail(b, s, rc, "get session", err);
  done(s);
  return 0;
}

static int sqlite_update(lls_backend *base, lls_str id, const lls_session_change *c, int64_t now,
                         lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = start(b, SQL_UPDATE, id, "update session", err);
  if (s == NULL) return -1;
  int rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK && c->data.ptr != NULL) rc = bind_bytes(s, 4, c->data, 1);
  if (rc == SQLITE_OK && c->status.ptr != NULL) rc = bind_bytes(s, 5, c->status, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 6, (int)c->expiry);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 7, c->expires_at);
  if (lls_sqlite_run(b, s, rc, "update session", err) != 0) return -1;
  return sqlite3_changes(b->db) > 0 ? 0 : not_found(id, err);
}

static int sqlite_touch(lls_backend *base, lls_str id, int64_t now, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = start(b, SQL_TOUCH, id, "touch session", err);
  if (s == NULL) return -1;
  if (lls_sqlite_run(b, s, sqlite3_bind_int64(s, 3, now), "touch session", err) != 0) return -1;
  return sqlite3_changes(b->db) > 0 ? 0 : not_found(id, err);
}

static int sqlite_del(lls_backend *base, lls_str id, int64_t now, int *existed, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int nested;
  if (lls_sqlite_unit_begin(b, &nested, "delete session", err) != 0) return -1;
  if (remove_one(b, id, now, existed, err) != 0 ||
      lls_sqlite_unit_commit(b, nested, "delete session", err) != 0) {
    lls_sqlite_unit_abort(b, nested);
    return -1;
  }
  return 0;
}

/* 1 when a row (any expiry) has id, 0 when none, -1 + err. */
static int row_exists(sqlite_backend *b, lls_str id, lls_error *err) {
  sqlite3_stmt *s = start(b, SQL_EXISTS, id, "list sessions", err);
  if (s == NULL) return -1;
  int rc = sqlite3_step(s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fail(b, s, rc, "list sessions", err);
  done(s);
  return rc == SQLITE_ROW;
}

static int sqlite_list(lls_backend *base, lls_str status, lls_str after, int64_t now,
                       size_t limit, lls_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int has_after = after.ptr != NULL;
  const char *sql = status.ptr != NULL ? (has_after ? SQL_LIST_ST_AFTER : SQL_LIST_ST)
                                       : (has_after ? SQL_LIST_AFTER : SQL_LIST);
  lls_str none = {NULL, 0};
  sqlite3_stmt *s = start(b, sql, none, "list sessions", err);
  if (s == NULL) return -1;
  int rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK && status.ptr != NULL) rc = bind_bytes(s, 2, status, 1);
  if (rc == SQLITE_OK && has_after) rc = bind_bytes(s, 4, after, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 5, limit ? clamp_limit(limit) : -1);
  if (rc != SQLITE_OK) return fail(b, s, rc, "list sessions", err);
  size_t first = out->count;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_str k;
    if (column_bytes(s, 0, &k, 1) != 0 || lls_rows_add(out, k.ptr, k.len, NULL, 0) == NULL) {
      done(s);
      return lls_error_oom(err);
    }
  }
  if (rc != SQLITE_DONE) return fail(b, s, rc, "list sessions", err);
  done(s);
  /* An empty page is where a vanished `after` shows: its row gave no
   * bound, so nothing matched. Asked only then, so pages cost one query. */
  if (has_after && out->count == first) {
    int e = row_exists(b, after, err);
    if (e < 0) return -1;
    if (e == 0)
      return lls_error_set(err, LLS_ENOTFOUND, "after: no session '%.*s'", QUOTE_LEN(after),
                           after.ptr);
  }
  return 0;
}

/* Collects up to CLEANUP_BATCH expired ids into rows. */
static int expired_ids(sqlite_backend *b, int64_t now, lls_rows *rows, lls_error *err) {
  lls_str none = {NULL, 0};
  sqlite3_stmt *s = start(b, SQL_EXPIRED_IDS, none, "cleanup sessions", err);
  if (s == NULL) return -1;
  int rc = sqlite3_bind_int64(s, 2, CLEANUP_BATCH);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc != SQLITE_OK) return fail(b, s, rc, "cleanup sessions", err);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_str k;
    if (column_bytes(s, 0, &k, 1) != 0 || lls_rows_add(rows, k.ptr, k.len, NULL, 0) == NULL) {
      done(s);
      return lls_error_oom(err);
    }
  }
  if (rc != SQLITE_DONE) return fail(b, s, rc, "cleanup sessions", err);
  done(s);
  return 0;
}

/* Rounds of CLEANUP_BATCH ids (the ids are read first: deleting while the
 * index walk is open would disturb it), all in one unit. */
static int sqlite_cleanup(lls_backend *base, int64_t now, int64_t *removed, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  lls_rows ids = {0};
  int nested;
  *removed = 0;
  if (lls_sqlite_unit_begin(b, &nested, "cleanup sessions", err) != 0) return -1;
  for (;;) {
    lls_rows_reset(&ids);
    if (expired_ids(b, now, &ids, err) != 0) goto fail;
    for (size_t i = 0; i < ids.count; i++) {
      int visible;
      if (remove_one(b, lls_row_key(&ids, i), now, &visible, err) != 0) goto fail;
    }
    *removed += (int64_t)ids.count;
    if (ids.count < CLEANUP_BATCH) break;
  }
  lls_rows_free(&ids);
  if (lls_sqlite_unit_commit(b, nested, "cleanup sessions", err) != 0) {
    lls_sqlite_unit_abort(b, nested);
    *removed = 0;
    return -1;
  }
  return 0;
fail:
  lls_rows_free(&ids);
  lls_sqlite_unit_abort(b, nested);
  *removed = 0;
  return -1;
}

static int sqlite_count(lls_backend *base, int64_t now, int64_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  lls_str none = {NULL, 0};
  sqlite3_stmt *s = start(b, SQL_COUNT, none, "count sessions", err);
  if (s == NULL) return -1;
  int rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) return fail(b, s, rc, "count sessions", err);
  *n = sqlite3_column_int64(s, 0);
  done(s);
  return 0;
}

static int sqlite_dump(lls_backend *base, lls_str after, int64_t now, size_t limit,
                       lls_session_sink sink, void *ud, size_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  /* every id is at least one byte, so > '' is "from the first" */
  lls_str from = after.ptr != NULL ? after : (lls_str){"", 0};
  sqlite3_stmt *s = start(b, SQL_DUMP, from, "dump sessions", err);
  if (s == NULL) return -1;
  int rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, limit ? clamp_limit(limit) : -1);
  if (rc != SQLITE_OK) return fail(b, s, rc, "dump sessions", err);
  *n = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_session row;
    if (column_bytes(s, 0, &row.id, 1) != 0) {
      done(s);
      return lls_error_oom(err);
    }
    /* the id stays valid: take_row reads later columns only */
    if (take_row(b, s, 1, &row, err) != 0) {
      done(s);
      return -1;
    }
    row.tenant = (lls_str){b->tenant, b->tenant_len};
    if (sink(ud, &row, err) != 0) {
      done(s);
      return -1;
    }
    (*n)++;
  }
  if (rc != SQLITE_DONE) return fail(b, s, rc, "dump sessions", err);
  done(s);
  return 0;
}

/* Binds load()'s ?3..?10. */
static int bind_load(sqlite3_stmt *st, const lls_session *s, int64_t now) {
  int rc = sqlite3_bind_int64(st, 3, now);
  if (rc == SQLITE_OK) rc = bind_bytes(st, 4, s->row_id, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(st, 5, s->status, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(st, 6, s->data, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 7, s->created_at);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 8, s->updated_at);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 9, s->last_accessed_at);
  if (rc == SQLITE_OK) rc = bind_expiry(st, 10, s->expires_at);
  return rc;
}

/* Runs SQL_LOAD_INSERT or SQL_LOAD_REPLACE for s. */
static int load_write(sqlite_backend *b, const char *sql, const lls_session *s, int64_t now,
                      lls_error *err) {
  sqlite3_stmt *st = start(b, sql, s->id, "load session", err);
  return st == NULL ? -1 : lls_sqlite_run(b, st, bind_load(st, s, now), "load session", err);
}

/* What load finds under the id: -1 + err, else one of these. */
enum { ROW_NONE, ROW_EXPIRED, ROW_VISIBLE };

static int load_probe(sqlite_backend *b, lls_str id, int64_t now, lls_error *err) {
  sqlite3_stmt *s = start(b, SQL_LOAD_PROBE, id, "load session", err);
  if (s == NULL) return -1;
  int rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  int found = ROW_NONE;
  if (rc == SQLITE_ROW) {
    found = sqlite3_column_int(s, 0) ? ROW_VISIBLE : ROW_EXPIRED;
    rc = SQLITE_DONE;
  }
  if (rc != SQLITE_DONE) return fail(b, s, rc, "load session", err);
  done(s);
  return found;
}

static int sqlite_load(lls_backend *base, const lls_session *s, lls_conflict on_conflict,
                       int64_t now, int *written, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int nested;
  *written = 0;
  if (lls_sqlite_unit_begin(b, &nested, "load session", err) != 0) return -1;
  int found = load_probe(b, s->id, now, err), rc = found < 0 ? -1 : 0;
  if (found == ROW_VISIBLE) {
    if (on_conflict == LLS_CONFLICT_ERROR)
      rc = conflict(s->id, err);
    else if (on_conflict == LLS_CONFLICT_REPLACE)
      rc = load_write(b, SQL_LOAD_REPLACE, s, now, err);
    *written = rc == 0 && on_conflict == LLS_CONFLICT_REPLACE;
  } else if (found >= 0) {
    int visible;
    if (found == ROW_EXPIRED) rc = remove_one(b, s->id, now, &visible, err);
    if (rc == 0) rc = load_write(b, SQL_LOAD_INSERT, s, now, err);
    *written = rc == 0;
  }
  if (rc != 0 || lls_sqlite_unit_commit(b, nested, "load session", err) != 0) {
    lls_sqlite_unit_abort(b, nested);
    *written = 0;
    return -1;
  }
  return 0;
}

const lls_session_ops lls_sqlite_session_ops = {
    .create = sqlite_create,
    .get = sqlite_get,
    .update = sqlite_update,
    .touch = sqlite_touch,
    .del = sqlite_del,
    .list = sqlite_list,
    .cleanup = sqlite_cleanup,
    .count = sqlite_count,
    .dump = sqlite_dump,
    .load = sqlite_load,
};
