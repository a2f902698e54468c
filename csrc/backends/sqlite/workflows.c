/*
 * workflows.c -- the SQLite backend's workflow-state slots
 * (lls_workflow_ops, backend/workflows.h), also behind the memory
 * backend's components. The table (migration 8, schema.c):
 *
 *   workflow_states (
 *     tenant_id     TEXT NOT NULL,
 *     workflow_id   TEXT NOT NULL,
 *     workflow_name TEXT NOT NULL,            -- the id unless given
 *     state_data    TEXT NOT NULL,            -- JSON text
 *     current_step  INTEGER NOT NULL CHECK (current_step >= 0),
 *     status        TEXT NOT NULL CHECK (status IN ('pending', 'running',
 *                     'completed', 'failed', 'cancelled')),
 *     started_at    INTEGER,                  -- µs; NULL until it runs
 *     completed_at  INTEGER,                  -- µs; NULL until it ends
 *     last_updated  INTEGER NOT NULL,         -- µs
 *     created_at    INTEGER NOT NULL,         -- µs
 *     PRIMARY KEY (tenant_id, workflow_id)) WITHOUT ROWID
 *   workflow_states_status ON (tenant_id, status, last_updated): list{status=}
 *
 * Every write is one statement; the status machine is in its WHERE clause
 * (LLS_WF_MOVE_OK), so the stored status it checks is the one it changes.
 */
#include "backends/sqlite/workflows.h"

#include "backends/sqlite/conn.h"

#define COLS                                                                   \
  "workflow_id, workflow_name, status, state_data, current_step, started_at,"  \
  " completed_at, last_updated, created_at"

/* ?3 name, ?4 data, ?5 current_step, ?6 status: NULL keeps the stored
 * value. ?7 now. SET expressions see the row as it was. */
#define SET_CHANGES                                                            \
  " workflow_name = coalesce(?3, workflow_name),"                              \
  " state_data = coalesce(?4, state_data),"                                    \
  " current_step = coalesce(?5, current_step),"                                \
  " status = coalesce(?6, status),"                                            \
  " started_at = " LLS_WF_STAMP_STARTED("started_at", "status", "?6", "?7") ","    \
  " completed_at = " LLS_WF_STAMP_COMPLETED("completed_at", "status", "?6", "?7") "," \
  " last_updated = ?7"

/* A new row starts pending and may move at once (running, failed,
 * cancelled); an existing one moves where its status allows. */
static const char SQL_CREATE[] =
    "INSERT INTO workflow_states (tenant_id, " COLS ")"
    " VALUES (?1, ?2, coalesce(?3, ?2), coalesce(?6, 'pending'), coalesce(?4, '{}'),"
    " coalesce(?5, 0), " LLS_WF_STAMP_STARTED("NULL", "'pending'", "?6", "?7") ", "
    LLS_WF_STAMP_COMPLETED("NULL", "'pending'", "?6", "?7") ", ?7, ?7)"
    " ON CONFLICT (tenant_id, workflow_id) DO UPDATE SET" SET_CHANGES
    " WHERE " LLS_WF_MOVE_OK("status", "?6") " RETURNING " COLS;

static const char SQL_UPDATE[] =
    "UPDATE workflow_states SET" SET_CHANGES
    " WHERE tenant_id = ?1 AND workflow_id = ?2 AND " LLS_WF_MOVE_OK("status", "?6")
    " RETURNING " COLS;

static const char SQL_LOAD[] =
    "SELECT " COLS " FROM workflow_states WHERE tenant_id = ?1 AND workflow_id = ?2";

/* Two texts, so the status one is an index range on workflow_states_status. */
static const char SQL_LIST[] =
    "SELECT workflow_id FROM workflow_states WHERE tenant_id = ?1"
    " ORDER BY last_updated DESC, workflow_id";
static const char SQL_LIST_STATUS[] =
    "SELECT workflow_id FROM workflow_states WHERE tenant_id = ?1 AND status = ?2"
    " ORDER BY last_updated DESC, workflow_id";

static const char SQL_DELETE[] =
    "DELETE FROM workflow_states WHERE tenant_id = ?1 AND workflow_id = ?2";

static const char SQL_COUNT[] = "SELECT count(*) FROM workflow_states WHERE tenant_id = ?1";

static const char SQL_DUMP[] =
    "SELECT tenant_id, " COLS " FROM workflow_states WHERE tenant_id = ?1"
    " AND workflow_id > ?2 ORDER BY workflow_id LIMIT ?3";

#define PUT_INSERT                                                             \
  "INSERT INTO workflow_states (tenant_id, " COLS ")"                          \
  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (tenant_id, workflow_id)"
static const char SQL_PUT_REPLACE[] =
    PUT_INSERT " DO UPDATE SET workflow_name = excluded.workflow_name,"
    " status = excluded.status, state_data = excluded.state_data,"
    " current_step = excluded.current_step, started_at = excluded.started_at,"
    " completed_at = excluded.completed_at, last_updated = excluded.last_updated,"
    " created_at = excluded.created_at";
static const char SQL_PUT_KEEP[] = PUT_INSERT " DO NOTHING";

/* A string that may be absent: NULL keeps the stored value. */
static int bind_opt(sqlite3_stmt *s, int i, lls_str v) {
  return v.ptr == NULL ? sqlite3_bind_null(s, i) : bind_bytes(s, i, v, 1);
}

static int bind_time(sqlite3_stmt *s, int i, int set, int64_t us) {
  return set ? sqlite3_bind_int64(s, i, us) : sqlite3_bind_null(s, i);
}

/* The row at s's current step, columns COLS from col on; strings borrowed
 * from s. -1 when SQLite ran out of memory. */
static int read_row(sqlite3_stmt *s, int col, lls_workflow *w) {
  if (column_bytes(s, col, &w->workflow_id, 1) != 0 ||
      column_bytes(s, col + 1, &w->name, 1) != 0 || column_bytes(s, col + 2, &w->status, 1) != 0 ||
      column_bytes(s, col + 3, &w->data, 1) != 0)
    return -1;
  w->current_step = sqlite3_column_int(s, col + 4);
  w->has_started = sqlite3_column_type(s, col + 5) != SQLITE_NULL;
  w->started_at = sqlite3_column_int64(s, col + 5);
  w->has_completed = sqlite3_column_type(s, col + 6) != SQLITE_NULL;
  w->completed_at = sqlite3_column_int64(s, col + 6);
  w->last_updated = sqlite3_column_int64(s, col + 7);
  w->created_at = sqlite3_column_int64(s, col + 8);
  return 0;
}

/* Steps s (bound, rc the binding result) for at most one row: 1 with *out
 * copied into mem, 0 when there is none, -1 + err. Resets s. */
static int one_row(sqlite_backend *b, sqlite3_stmt *s, int rc, const char *what, lls_buf *mem,
                   lls_workflow *out, lls_error *err) {
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  int got = rc == SQLITE_ROW;
  if (got) {
    *out = (lls_workflow){0};
    if (read_row(s, 0, out) != 0 || lls_workflow_keep(out, mem) != 0) {
      done(s);
      return lls_error_oom(err);
    }
    rc = SQLITE_DONE; /* one row per key: the changes were made by the first step */
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, what, err);
    done(s);
    return -1;
  }
  done(s);
  return got;
}

static int sq_load(lls_backend *base, lls_str id, lls_buf *mem, lls_workflow *out, int *found,
                   lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_LOAD, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, id, 1);
  int got = one_row(b, s, rc, "workflow load", mem, out, err);
  if (got < 0) return -1;
  *found = got;
  return 0;
}

/* One statement; when it changed nothing, a read says why (the stored row
 * refused the move, or there is none). */
static int sq_save(lls_backend *base, lls_str id, const lls_workflow_change *c, int create,
                   int64_t now, lls_buf *mem, lls_workflow *out, lls_workflow_outcome *outcome,
                   lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, create ? SQL_CREATE : SQL_UPDATE, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, id, 1);
  if (rc == SQLITE_OK) rc = bind_opt(s, 3, c->name);
  if (rc == SQLITE_OK) rc = bind_opt(s, 4, c->data);
  if (rc == SQLITE_OK)
    rc = c->has_step ? sqlite3_bind_int(s, 5, c->current_step) : sqlite3_bind_null(s, 5);
  if (rc == SQLITE_OK) rc = bind_opt(s, 6, c->status);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 7, now);
  int got = one_row(b, s, rc, "workflow save", mem, out, err);
  if (got < 0) return -1;
  *outcome = LLS_WF_SAVED;
  if (got) return 0;
  int found;
  if (sq_load(base, id, mem, out, &found, err) != 0) return -1;
  *outcome = found ? LLS_WF_REFUSED : LLS_WF_MISSING;
  return 0;
}

static int sq_list(lls_backend *base, lls_str status, lls_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, status.ptr ? SQL_LIST_STATUS : SQL_LIST, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK && status.ptr) rc = bind_bytes(s, 2, status, 1);
  while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_str id;
    if (column_bytes(s, 0, &id, 1) != 0 || lls_rows_add(out, id.ptr, id.len, "", 0) == NULL) {
      done(s);
      return lls_error_oom(err);
    }
    rc = SQLITE_OK;
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "workflow list", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sq_del(lls_backend *base, lls_str id, int *existed, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_DELETE, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, id, 1);
  if (lls_sqlite_run(b, s, rc, "workflow delete", err) != 0) return -1;
  *existed = sqlite3_changes(b->db) > 0;
  return 0;
}

static int sq_count(lls_backend *base, int64_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_COUNT, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) {
    lls_sqlite_fail(b->db, rc, "workflow count", err);
    done(s);
    return -1;
  }
  *n = sqlite3_column_int64(s, 0);
  done(s);
  return 0;
}

static int sq_dump(lls_backend *base, lls_str after, size_t limit, lls_workflow_sink sink,
                   void *ud, size_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_DUMP, err);
  if (s == NULL) return -1;
  *n = 0;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, after, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, clamp_limit(limit));
  while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_workflow w = {0};
    if (column_bytes(s, 0, &w.tenant_id, 1) != 0 || read_row(s, 1, &w) != 0) {
      done(s);
      return lls_error_oom(err);
    }
    if (sink(ud, &w, err) != 0) {
      done(s);
      return lls_error_stopped(err);
    }
    (*n)++;
    rc = SQLITE_OK;
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "workflow dump", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sq_put(lls_backend *base, const lls_workflow *w, lls_conflict on_conflict,
                  int *written, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(
      b, on_conflict == LLS_CONFLICT_REPLACE ? SQL_PUT_REPLACE : SQL_PUT_KEEP, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, w->workflow_id, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 3, w->name, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 4, w->status, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 5, w->data, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 6, w->current_step);
  if (rc == SQLITE_OK) rc = bind_time(s, 7, w->has_started, w->started_at);
  if (rc == SQLITE_OK) rc = bind_time(s, 8, w->has_completed, w->completed_at);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 9, w->last_updated);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 10, w->created_at);
  if (lls_sqlite_run(b, s, rc, "workflow import", err) != 0) return -1;
  *written = sqlite3_changes(b->db) > 0;
  if (!*written && on_conflict == LLS_CONFLICT_ERROR)
    return lls_error_set(err, LLS_ECONFLICT, "workflow '%.*s' exists",
                         QUOTE_LEN(w->workflow_id), w->workflow_id.ptr);
  return 0;
}

const lls_workflow_ops lls_sqlite_workflow_ops = {
    .save = sq_save,
    .load = sq_load,
    .list = sq_list,
    .del = sq_del,
    .count = sq_count,
    .dump = sq_dump,
    .put = sq_put,
};
