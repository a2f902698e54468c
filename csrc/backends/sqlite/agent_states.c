/*
 * agent_states.c -- the SQLite backend's agent state slots
 * (lls_agent_state_ops, backend/agent_states.h). The memory backend's
 * components run this code too, on its private in-memory SQLite store.
 *
 * Table (migration 7, schema.c; readable with the sqlite3 CLI):
 *
 *   CREATE TABLE agent_states (
 *     tenant_id      TEXT NOT NULL,
 *     agent_id       TEXT NOT NULL,     -- BINARY collation: byte order
 *     state_id       TEXT NOT NULL,     -- UUID v4 made at the first save
 *     agent_type     TEXT NOT NULL,     -- 'unknown' unless the caller chose
 *     state_data     BLOB NOT NULL,     -- the stored bytes (JSON text when
 *                                       -- is_json, else the caller's string)
 *     is_json        INTEGER NOT NULL CHECK (is_json IN (0, 1)),
 *     schema_version INTEGER NOT NULL CHECK (schema_version > 0),
 *     data_version   INTEGER NOT NULL CHECK (data_version > 0),
 *     checksum       TEXT NOT NULL,     -- SHA-256 hex of state_data
 *     created_at     INTEGER NOT NULL,  -- microseconds since the epoch
 *     updated_at     INTEGER NOT NULL,  -- microseconds since the epoch
 *     PRIMARY KEY (tenant_id, agent_id)
 *   ) WITHOUT ROWID;
 *   CREATE INDEX agent_states_type ON agent_states (tenant_id, agent_type, agent_id);
 *
 * Point reads and writes use the primary key; list{agent_type=} is a range
 * of agent_states_type, already in agent_id order. Every statement is one
 * statement, atomic by itself, so none needs a unit.
 */
#include "backends/sqlite/agent_states.h"

#include "backends/sqlite/conn.h"

/* The columns of a row, in this order from column 0; reads add tenant_id. */
#define COLS                                                                     \
  "agent_id, state_id, agent_type, state_data, is_json, schema_version,"        \
  " data_version, checksum, created_at, updated_at"
#define READ_COLS COLS ", tenant_id"

/* One statement, so concurrent savers serialise on the row: the version
 * is computed from the row as it is when this write gets it, never from
 * an earlier read. ?4 / ?7 NULL: not given (default, or keep the row's). */
static const char SQL_SAVE[] =
    "INSERT INTO agent_states AS a (tenant_id, agent_id, state_id, agent_type, state_data,"
    " is_json, schema_version, data_version, checksum, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, COALESCE(?4, '" LLS_AGENT_TYPE_DEFAULT "'), ?5, ?6,"
    " COALESCE(?7, 1), 1, ?8, ?9, ?9)"
    " ON CONFLICT (tenant_id, agent_id) DO UPDATE SET"
    " data_version = CASE WHEN a.checksum <> excluded.checksum"
    " OR a.is_json <> excluded.is_json THEN a.data_version + 1 ELSE a.data_version END,"
    " agent_type = COALESCE(?4, a.agent_type),"
    " schema_version = COALESCE(?7, a.schema_version),"
    " state_data = excluded.state_data, is_json = excluded.is_json,"
    " checksum = excluded.checksum, updated_at = excluded.updated_at"
    " RETURNING data_version";

static const char SQL_LOAD[] =
    "SELECT " READ_COLS " FROM agent_states WHERE tenant_id = ?1 AND agent_id = ?2";

/* ?2 '' starts at the first id: ids are never empty. LIMIT -1: none. */
static const char SQL_LIST[] =
    "SELECT agent_id FROM agent_states WHERE tenant_id = ?1 AND agent_id > ?2"
    " ORDER BY agent_id LIMIT ?3";

static const char SQL_LIST_TYPE[] =
    "SELECT agent_id FROM agent_states WHERE tenant_id = ?1 AND agent_type = ?4"
    " AND agent_id > ?2 ORDER BY agent_id LIMIT ?3";

static const char SQL_DELETE[] = "DELETE FROM agent_states WHERE tenant_id = ?1 AND agent_id = ?2";

static const char SQL_COUNT[] = "SELECT count(*) FROM agent_states WHERE tenant_id = ?1";

static const char SQL_DUMP[] =
    "SELECT " READ_COLS " FROM agent_states WHERE tenant_id = ?1 AND agent_id > ?2"
    " ORDER BY agent_id LIMIT ?3";

#define PUT_INSERT                                                               \
  "INSERT INTO agent_states (tenant_id, " COLS ")"                              \
  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"

static const char SQL_PUT_REPLACE[] =
    PUT_INSERT " ON CONFLICT (tenant_id, agent_id) DO UPDATE SET"
    " state_id = excluded.state_id, agent_type = excluded.agent_type,"
    " state_data = excluded.state_data, is_json = excluded.is_json,"
    " schema_version = excluded.schema_version, data_version = excluded.data_version,"
    " checksum = excluded.checksum, created_at = excluded.created_at,"
    " updated_at = excluded.updated_at";

static const char SQL_PUT_KEEP[] = PUT_INSERT " ON CONFLICT (tenant_id, agent_id) DO NOTHING";

/* The statement for sql with the tenant bound as ?1; NULL + err. */
static sqlite3_stmt *prepare(sqlite_backend *b, const char *sql, const char *what,
                             lls_error *err) {
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, sql, err);
  if (s == NULL) return NULL;
  int rc = bind_tenant(b, s);
  if (rc != SQLITE_OK) {
    done(s);
    lls_sqlite_fail(b->db, rc, what, err);
    return NULL;
  }
  return s;
}

/* Binds a text that may be absent (ptr NULL: SQL NULL). */
static int bind_opt_text(sqlite3_stmt *s, int i, lls_str v) {
  return v.ptr == NULL ? sqlite3_bind_null(s, i) : bind_bytes(s, i, v, 1);
}

/* The row at the current step of s (columns READ_COLS from 0). -1 when SQLite
 * ran out of memory converting a column. */
static int read_row(sqlite3_stmt *s, lls_agent_state *st) {
  if (column_bytes(s, 0, &st->agent_id, 1) != 0 || column_bytes(s, 1, &st->state_id, 1) != 0 ||
      column_bytes(s, 2, &st->agent_type, 1) != 0 ||
      column_bytes(s, 3, &st->state_data, 0) != 0 || column_bytes(s, 7, &st->checksum, 1) != 0 ||
      column_bytes(s, 10, &st->tenant_id, 1) != 0)
    return -1;
  st->is_json = sqlite3_column_int(s, 4) != 0;
  st->schema_version = sqlite3_column_int64(s, 5);
  st->data_version = sqlite3_column_int64(s, 6);
  st->created_at = sqlite3_column_int64(s, 8);
  st->updated_at = sqlite3_column_int64(s, 9);
  return 0;
}

/* Steps s to its end, handing each row to fn; resets s either way. */
static int each_row(sqlite_backend *b, sqlite3_stmt *s, lls_agent_state_fn fn, void *ud,
                    int *rows, const char *what, lls_error *err) {
  int rc;
  *rows = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_agent_state st;
    if (read_row(s, &st) != 0) {
      done(s);
      return lls_error_oom(err);
    }
    if (fn(ud, &st, err) != 0) {
      done(s);
      return -1;
    }
    (*rows)++;
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, what, err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sqlite_save(lls_backend *base, const lls_agent_state *st, int64_t now,
                       int64_t *data_version, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = prepare(b, SQL_SAVE, "agent state save", err);
  if (s == NULL) return -1;
  int rc = bind_bytes(s, 2, st->agent_id, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 3, st->state_id, 1);
  if (rc == SQLITE_OK) rc = bind_opt_text(s, 4, st->agent_type);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 5, st->state_data, 0);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 6, st->is_json != 0);
  if (rc == SQLITE_OK)
    rc = st->schema_version > 0 ? sqlite3_bind_int64(s, 7, st->schema_version)
                                : sqlite3_bind_null(s, 7);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 8, st->checksum, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 9, now);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    *data_version = sqlite3_column_int64(s, 0);
    rc = sqlite3_step(s);
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "agent state save", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sqlite_load(lls_backend *base, lls_str agent_id, lls_agent_state_fn fn, void *ud,
                       int *found, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = prepare(b, SQL_LOAD, "agent state load", err);
  if (s == NULL) return -1;
  int rc = bind_bytes(s, 2, agent_id, 1);
  if (rc != SQLITE_OK) {
    done(s);
    return lls_sqlite_fail(b->db, rc, "agent state load", err);
  }
  return each_row(b, s, fn, ud, found, "agent state load", err);
}

static int sqlite_list(lls_backend *base, lls_str agent_type, lls_str after, size_t limit,
                       lls_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int typed = agent_type.ptr != NULL;
  sqlite3_stmt *s = prepare(b, typed ? SQL_LIST_TYPE : SQL_LIST, "agent state list", err);
  if (s == NULL) return -1;
  lls_str from = after.ptr != NULL ? after : (lls_str){"", 0};
  int rc = bind_bytes(s, 2, from, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, limit ? clamp_limit(limit) : -1);
  if (rc == SQLITE_OK && typed) rc = bind_bytes(s, 4, agent_type, 1);
  if (rc != SQLITE_OK) {
    done(s);
    return lls_sqlite_fail(b->db, rc, "agent state list", err);
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_str id;
    if (column_bytes(s, 0, &id, 1) != 0 || lls_rows_add(out, id.ptr, id.len, "", 0) == NULL) {
      done(s);
      return lls_error_oom(err);
    }
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "agent state list", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sqlite_del(lls_backend *base, lls_str agent_id, int *existed, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = prepare(b, SQL_DELETE, "agent state delete", err);
  if (s == NULL) return -1;
  if (lls_sqlite_run(b, s, bind_bytes(s, 2, agent_id, 1), "agent state delete", err) != 0)
    return -1;
  *existed = sqlite3_changes(b->db) > 0;
  return 0;
}

static int sqlite_count(lls_backend *base, int64_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = prepare(b, SQL_COUNT, "agent state count", err);
  if (s == NULL) return -1;
  int rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) {
    lls_sqlite_fail(b->db, rc, "agent state count", err);
    done(s);
    return -1;
  }
  *n = sqlite3_column_int64(s, 0);
  done(s);
  return 0;
}

static int sqlite_dump(lls_backend *base, lls_str after, size_t limit, lls_agent_state_fn fn,
                       void *ud, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = prepare(b, SQL_DUMP, "agent state export", err);
  if (s == NULL) return -1;
  lls_str from = after.ptr != NULL ? after : (lls_str){"", 0};
  int rc = bind_bytes(s, 2, from, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, clamp_limit(limit));
  if (rc != SQLITE_OK) {
    done(s);
    return lls_sqlite_fail(b->db, rc, "agent state export", err);
  }
  int rows;
  return each_row(b, s, fn, ud, &rows, "agent state export", err);
}

static int sqlite_put(lls_backend *base, const lls_agent_state *st, lls_conflict on_conflict,
                      int *written, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  int replace = on_conflict == LLS_CONFLICT_REPLACE;
  sqlite3_stmt *s = prepare(b, replace ? SQL_PUT_REPLACE : SQL_PUT_KEEP, "agent state import",
                            err);
  if (s == NULL) return -1;
  int rc = bind_bytes(s, 2, st->agent_id, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 3, st->state_id, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 4, st->agent_type, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 5, st->state_data, 0);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 6, st->is_json != 0);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 7, st->schema_version);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 8, st->data_version);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 9, st->checksum, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 10, st->created_at);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 11, st->updated_at);
  if (lls_sqlite_run(b, s, rc, "agent state import", err) != 0) return -1;
  *written = sqlite3_changes(b->db) > 0;
  if (!*written && on_conflict == LLS_CONFLICT_ERROR)
    return lls_error_set(err, LLS_ECONFLICT, "agent state '%.*s' already exists",
                         QUOTE_LEN(st->agent_id), st->agent_id.ptr);
  return 0;
}

const lls_agent_state_ops lls_sqlite_agent_state_ops = {
    .save = sqlite_save,
    .load = sqlite_load,
    .list = sqlite_list,
    .del = sqlite_del,
    .count = sqlite_count,
    .dump = sqlite_dump,
    .put = sqlite_put,
};
