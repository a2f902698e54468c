/*
 * hook_history.c -- the SQLite backend's hook-history slots
 * (lls_hook_ops, backend/hook_history.h), also behind the memory
 * backend's components. The table (migration 11, schema.c):
 *
 *   hook_history (
 *     tenant_id               TEXT NOT NULL,
 *     id                      TEXT NOT NULL,     -- UUID v4 (rs-llmspell's id)
 *     execution_id            TEXT NOT NULL,
 *     hook_id                 TEXT NOT NULL,
 *     hook_type               TEXT NOT NULL,
 *     correlation_id          TEXT NOT NULL,
 *     hook_context            BLOB NOT NULL,     -- size-prefixed LZ4 block, or empty
 *     result_data             TEXT,              -- JSON, NULL when none
 *     timestamp               INTEGER NOT NULL,  -- µs
 *     duration_ms             INTEGER NOT NULL CHECK (duration_ms >= 0),
 *     triggering_component    TEXT,
 *     component_id            TEXT,
 *     modified_operation      INTEGER NOT NULL CHECK (IN (0, 1)),
 *     tags                    TEXT NOT NULL,     -- JSON array
 *     retention_priority      INTEGER NOT NULL,
 *     context_size            INTEGER NOT NULL CHECK (context_size >= 0),
 *     contains_sensitive_data INTEGER NOT NULL CHECK (IN (0, 1)),
 *     metadata                TEXT NOT NULL,     -- JSON object
 *     created_at              INTEGER NOT NULL,  -- µs
 *     PRIMARY KEY (tenant_id, execution_id))
 *   hook_history_correlation ON (tenant_id, correlation_id, timestamp DESC,
 *     execution_id DESC): by_correlation
 *   hook_history_hook ON (tenant_id, hook_id, timestamp DESC,
 *     execution_id DESC): by_hook
 *   hook_history_type ON (tenant_id, hook_type, timestamp DESC,
 *     execution_id DESC): by_type
 *   hook_history_retention ON (tenant_id, retention_priority, timestamp):
 *     archive
 *
 * A rowid table (the contexts are blobs, which WITHOUT ROWID tables keep
 * inline in the key's B-tree). Each list is one range of its index read in
 * the index's order, so it stops after `limit` entries without a sort.
 */
#include "backends/sqlite/hook_history.h"

#include "backends/sqlite/conn.h"

/* Columns 0..18 of every read. */
#define COLS                                                                        \
  "tenant_id, id, execution_id, hook_id, hook_type, correlation_id, hook_context,"  \
  " result_data, timestamp, duration_ms, triggering_component, component_id,"       \
  " modified_operation, tags, retention_priority, context_size,"                    \
  " contains_sensitive_data, metadata, created_at"

#define ORDER " ORDER BY timestamp DESC, execution_id DESC LIMIT ?3"

static const char SQL_GET[] =
    "SELECT " COLS " FROM hook_history WHERE tenant_id = ?1 AND execution_id = ?2";

/* One text per index, so each is one range of it whatever the key. */
static const char SQL_BY_CORRELATION[] =
    "SELECT " COLS " FROM hook_history WHERE tenant_id = ?1 AND correlation_id = ?2" ORDER;
static const char SQL_BY_HOOK[] =
    "SELECT " COLS " FROM hook_history WHERE tenant_id = ?1 AND hook_id = ?2" ORDER;
static const char SQL_BY_TYPE[] =
    "SELECT " COLS " FROM hook_history WHERE tenant_id = ?1 AND hook_type = ?2" ORDER;

static const char SQL_ARCHIVE[] =
    "DELETE FROM hook_history WHERE tenant_id = ?1 AND retention_priority <= ?3"
    " AND timestamp < ?2";

/* Totals (kind 0), then counts by hook_id (1) and hook_type (2): one
 * statement, so one snapshot. The groups read the hook and type indexes. */
static const char SQL_STATS[] =
    "SELECT 0, NULL, count(*), sum(context_size), sum(length(hook_context)),"
    " sum(duration_ms), min(timestamp), max(timestamp) FROM hook_history"
    " WHERE tenant_id = ?1"
    " UNION ALL SELECT 1, hook_id, count(*), 0, 0, 0, 0, 0 FROM hook_history"
    " WHERE tenant_id = ?1 GROUP BY hook_id"
    " UNION ALL SELECT 2, hook_type, count(*), 0, 0, 0, 0, 0 FROM hook_history"
    " WHERE tenant_id = ?1 GROUP BY hook_type";

static const char SQL_COUNT[] = "SELECT count(*) FROM hook_history WHERE tenant_id = ?1";

/* Pages in primary-key order. */
static const char SQL_DUMP[] =
    "SELECT " COLS " FROM hook_history WHERE tenant_id = ?1 AND execution_id > ?2"
    " ORDER BY execution_id LIMIT ?3";

#define PUT_INSERT                                                             \
  "INSERT INTO hook_history (" COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9," \
  " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"                           \
  " ON CONFLICT (tenant_id, execution_id)"
static const char SQL_PUT_REPLACE[] =
    PUT_INSERT " DO UPDATE SET id = excluded.id, hook_id = excluded.hook_id,"
    " hook_type = excluded.hook_type, correlation_id = excluded.correlation_id,"
    " hook_context = excluded.hook_context, result_data = excluded.result_data,"
    " timestamp = excluded.timestamp, duration_ms = excluded.duration_ms,"
    " triggering_component = excluded.triggering_component,"
    " component_id = excluded.component_id,"
    " modified_operation = excluded.modified_operation, tags = excluded.tags,"
    " retention_priority = excluded.retention_priority,"
    " context_size = excluded.context_size,"
    " contains_sensitive_data = excluded.contains_sensitive_data,"
    " metadata = excluded.metadata, created_at = excluded.created_at";
static const char SQL_PUT_KEEP[] = PUT_INSERT " DO NOTHING";

/* Binds an optional text: SQL NULL when its ptr is NULL. */
static int bind_opt(sqlite3_stmt *s, int i, lls_str v) {
  return v.ptr == NULL ? sqlite3_bind_null(s, i) : bind_bytes(s, i, v, 1);
}

/* An optional text column: ptr NULL for SQL NULL. -1 when out of memory. */
static int column_opt(sqlite3_stmt *s, int i, lls_str *out) {
  if (sqlite3_column_type(s, i) == SQLITE_NULL) {
    *out = (lls_str){NULL, 0};
    return 0;
  }
  return column_bytes(s, i, out, 1);
}

/* The row at s's current step (columns COLS); strings borrowed from s.
 * -1 when SQLite ran out of memory. */
static int read_row(sqlite3_stmt *s, lls_hook_exec *e) {
  lls_str *text[] = {&e->tenant_id, &e->id, &e->execution_id, &e->hook_id, &e->hook_type,
                     &e->correlation_id};
  for (int i = 0; i < 6; i++)
    if (column_bytes(s, i, text[i], 1) != 0) return -1;
  if (column_bytes(s, 6, &e->context, 0) != 0 || column_opt(s, 7, &e->result) != 0 ||
      column_opt(s, 10, &e->triggering_component) != 0 ||
      column_opt(s, 11, &e->component_id) != 0 || column_bytes(s, 13, &e->tags, 1) != 0 ||
      column_bytes(s, 17, &e->metadata, 1) != 0)
    return -1;
  e->timestamp = sqlite3_column_int64(s, 8);
  e->duration_ms = sqlite3_column_int64(s, 9);
  e->modified_operation = sqlite3_column_int(s, 12) != 0;
  e->retention_priority = sqlite3_column_int64(s, 14);
  e->context_size = sqlite3_column_int64(s, 15);
  e->contains_sensitive_data = sqlite3_column_int(s, 16) != 0;
  e->created_at = sqlite3_column_int64(s, 18);
  return 0;
}

/* Steps s (bound, rc the binding result) to its end, each row to sink;
 * *n counts them. Resets s. */
static int each_row(sqlite_backend *b, sqlite3_stmt *s, int rc, const char *what,
                    lls_hook_sink sink, void *ud, size_t *n, lls_error *err) {
  while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_hook_exec e = {0};
    if (read_row(s, &e) != 0) {
      done(s);
      return lls_error_oom(err);
    }
    if (sink(ud, &e, err) != 0) {
      done(s);
      return lls_error_stopped(err);
    }
    (*n)++;
    rc = SQLITE_OK;
  }
  int out = rc == SQLITE_DONE ? 0 : lls_sqlite_fail(b->db, rc, what, err);
  done(s);
  return out;
}

/* Binds e to the put statement: ?1 the tenant, ?2..?19 in COLS order. */
static int bind_exec(sqlite_backend *b, sqlite3_stmt *s, const lls_hook_exec *e) {
  int rc = bind_tenant(b, s);
  const lls_str text[] = {e->id, e->execution_id, e->hook_id, e->hook_type, e->correlation_id};
  for (int i = 0; i < 5 && rc == SQLITE_OK; i++) rc = bind_bytes(s, 2 + i, text[i], 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 7, e->context, 0);
  if (rc == SQLITE_OK) rc = bind_opt(s, 8, e->result);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 9, e->timestamp);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 10, e->duration_ms);
  if (rc == SQLITE_OK) rc = bind_opt(s, 11, e->triggering_component);
  if (rc == SQLITE_OK) rc = bind_opt(s, 12, e->component_id);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 13, e->modified_operation != 0);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 14, e->tags, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 15, e->retention_priority);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 16, e->context_size);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 17, e->contains_sensitive_data != 0);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 18, e->metadata, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 19, e->created_at);
  return rc;
}

static int sq_put(lls_backend *base, const lls_hook_exec *e, lls_conflict on_conflict,
                  int *written, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(
      b, on_conflict == LLS_CONFLICT_REPLACE ? SQL_PUT_REPLACE : SQL_PUT_KEEP, err);
  if (s == NULL) return -1;
  if (lls_sqlite_run(b, s, bind_exec(b, s, e), "hook history record", err) != 0) return -1;
  *written = sqlite3_changes(b->db) > 0;
  if (!*written && on_conflict == LLS_CONFLICT_ERROR)
    return lls_error_set(err, LLS_ECONFLICT, "hook execution '%.*s' exists",
                         QUOTE_LEN(e->execution_id), e->execution_id.ptr);
  return 0;
}

static int sq_get(lls_backend *base, lls_str execution_id, lls_hook_sink sink, void *ud,
                  int *found, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_GET, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, execution_id, 1);
  size_t n = 0;
  int out = each_row(b, s, rc, "hook history get", sink, ud, &n, err);
  *found = n > 0;
  return out;
}

static int sq_list(lls_backend *base, lls_hook_by by, lls_str key, size_t limit,
                   lls_hook_sink sink, void *ud, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *sql = by == LLS_HOOK_BY_CORRELATION ? SQL_BY_CORRELATION
                    : by == LLS_HOOK_BY_HOOK      ? SQL_BY_HOOK
                                                  : SQL_BY_TYPE;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, sql, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, key, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, limit ? clamp_limit(limit) : -1);
  size_t n = 0;
  return each_row(b, s, rc, "hook history list", sink, ud, &n, err);
}

static int sq_archive(lls_backend *base, int64_t before, int64_t max_priority, int64_t *removed,
                      lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_ARCHIVE, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 2, before);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, max_priority);
  if (lls_sqlite_run(b, s, rc, "hook history archive", err) != 0) return -1;
  *removed = sqlite3_changes(b->db);
  return 0;
}

static int sq_stats(lls_backend *base, lls_hook_totals *t, lls_hook_group_sink group, void *ud,
                    lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_STATS, err);
  if (s == NULL) return -1;
  *t = (lls_hook_totals){0};
  int rc = bind_tenant(b, s);
  while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    int kind = sqlite3_column_int(s, 0);
    rc = SQLITE_OK;
    if (kind == 0) {
      t->executions = sqlite3_column_int64(s, 2);
      t->bytes = sqlite3_column_int64(s, 3);
      t->compressed_bytes = sqlite3_column_int64(s, 4);
      /* as PostgreSQL computes it, so both backends give the same figure */
      t->avg_duration_ms = t->executions > 0 ? (double)sqlite3_column_int64(s, 5) /
                                                   (double)t->executions
                                             : 0.0;
      t->oldest = sqlite3_column_int64(s, 6);
      t->newest = sqlite3_column_int64(s, 7);
      continue;
    }
    lls_str name;
    if (column_bytes(s, 1, &name, 1) != 0) {
      done(s);
      return lls_error_oom(err);
    }
    if (group(ud, kind == 2, name, sqlite3_column_int64(s, 2), err) != 0) {
      done(s);
      return lls_error_stopped(err);
    }
  }
  int out = rc == SQLITE_DONE ? 0 : lls_sqlite_fail(b->db, rc, "hook history stats", err);
  done(s);
  return out;
}

static int sq_count(lls_backend *base, int64_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_COUNT, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  *n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
  int out = rc == SQLITE_ROW ? 0 : lls_sqlite_fail(b->db, rc, "hook history count", err);
  done(s);
  return out;
}

static int sq_dump(lls_backend *base, lls_str after, size_t limit, lls_hook_sink sink, void *ud,
                   size_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_DUMP, err);
  if (s == NULL) return -1;
  *n = 0;
  int rc = bind_tenant(b, s);
  /* "" sorts before every execution id (they are never empty) */
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, after.ptr ? after : (lls_str){"", 0}, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, clamp_limit(limit));
  return each_row(b, s, rc, "hook history dump", sink, ud, n, err);
}

const lls_hook_ops lls_sqlite_hook_ops = {
    .put = sq_put,
    .get = sq_get,
    .list = sq_list,
    .archive = sq_archive,
    .stats = sq_stats,
    .count = sq_count,
    .dump = sq_dump,
};
