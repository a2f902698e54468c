/*
 * workflows.c -- the PostgreSQL backend's workflow-state slots
 * (lls_workflow_ops, backend/workflows.h). The table (migration 7,
 * schema.c), with row-level security on app.current_tenant_id:
 *
 *   workflow_states (
 *     tenant_id     text NOT NULL,
 *     workflow_id   text COLLATE "C" NOT NULL,  -- byte order, as SQLite
 *     workflow_name text NOT NULL,              -- the id unless given
 *     state_data    jsonb NOT NULL,
 *     current_step  int NOT NULL CHECK (current_step >= 0),
 *     status        text NOT NULL CHECK (status IN ('pending', 'running',
 *                     'completed', 'failed', 'cancelled')),
 *     started_at    timestamptz,                -- NULL until it runs
 *     completed_at  timestamptz,                -- NULL until it ends
 *     last_updated  timestamptz NOT NULL,
 *     created_at    timestamptz NOT NULL,
 *     PRIMARY KEY (tenant_id, workflow_id))
 *   workflow_states_status_idx ON (tenant_id, status, last_updated)
 *
 * Every write is one statement; the status machine is in its WHERE clause
 * (LLS_WF_MOVE_OK). Under READ COMMITTED a write that waited for another
 * transaction's change to the row re-checks that clause against the new
 * row, so the status it checks is the one it changes.
 */
#include "backends/postgres/workflows.h"

#include <stdlib.h>

#include "backends/postgres/component.h"
#include "backends/postgres/conn.h"

#define COLS                                                                   \
  "workflow_id, workflow_name, status, state_data::text, current_step,"        \
  " started_at, completed_at, last_updated, created_at"

/* $3 name, $4 data, $5 current_step, $6 status: NULL keeps the stored
 * value. $7 now. SET expressions see the row as it was. */
#define SET_CHANGES                                                            \
  " workflow_name = coalesce($3, w.workflow_name),"                            \
  " state_data = coalesce($4::jsonb, w.state_data),"                           \
  " current_step = coalesce($5, w.current_step),"                              \
  " status = coalesce($6, w.status),"                                          \
  " started_at = " LLS_WF_STAMP_STARTED("w.started_at", "w.status", "$6", "$7") ","    \
  " completed_at = " LLS_WF_STAMP_COMPLETED("w.completed_at", "w.status", "$6", "$7") "," \
  " last_updated = $7"

#define SAVE_TYPES {OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_INT4, OID_TEXT, OID_TSTZ}

/* A new row starts pending and may move at once (running, failed,
 * cancelled); an existing one moves where its status allows. */
static const pg_stmt ST_WF_CREATE = {
    "lls_workflows_create",
    "INSERT INTO @S.workflow_states AS w (tenant_id, workflow_id, workflow_name, status,"
    " state_data, current_step, started_at, completed_at, last_updated, created_at)"
    " VALUES ($1, $2, coalesce($3, $2), coalesce($6, 'pending'), coalesce($4::jsonb, '{}'),"
    " coalesce($5, 0), " LLS_WF_STAMP_STARTED("NULL", "'pending'", "$6", "$7") ", "
    LLS_WF_STAMP_COMPLETED("NULL", "'pending'", "$6", "$7") ", $7, $7)"
    " ON CONFLICT (tenant_id, workflow_id) DO UPDATE SET" SET_CHANGES
    " WHERE " LLS_WF_MOVE_OK("w.status", "$6") " RETURNING " COLS,
    7, SAVE_TYPES};

static const pg_stmt ST_WF_UPDATE = {
    "lls_workflows_update",
    "UPDATE @S.workflow_states AS w SET" SET_CHANGES
    " WHERE tenant_id = $1 AND workflow_id = $2 AND " LLS_WF_MOVE_OK("w.status", "$6")
    " RETURNING " COLS,
    7, SAVE_TYPES};

static const pg_stmt ST_WF_LOAD = {
    "lls_workflows_load",
    "SELECT " COLS " FROM @S.workflow_states WHERE tenant_id = $1 AND workflow_id = $2",
    2, {OID_TEXT, OID_TEXT}};

/* Two texts, so the status one is an index range on workflow_states_status_idx. */
static const pg_stmt ST_WF_LIST = {
    "lls_workflows_list",
    "SELECT workflow_id FROM @S.workflow_states WHERE tenant_id = $1"
    " ORDER BY last_updated DESC, workflow_id",
    1, {OID_TEXT}};
static const pg_stmt ST_WF_LIST_STATUS = {
    "lls_workflows_list_status",
    "SELECT workflow_id FROM @S.workflow_states WHERE tenant_id = $1 AND status = $2"
    " ORDER BY last_updated DESC, workflow_id",
    2, {OID_TEXT, OID_TEXT}};

static const pg_stmt ST_WF_DELETE = {
    "lls_workflows_delete",
    "DELETE FROM @S.workflow_states WHERE tenant_id = $1 AND workflow_id = $2",
    2, {OID_TEXT, OID_TEXT}};

static const pg_stmt ST_WF_COUNT = {
    "lls_workflows_count", "SELECT count(*) FROM @S.workflow_states WHERE tenant_id = $1",
    1, {OID_TEXT}};

static const pg_stmt ST_WF_DUMP = {
    "lls_workflows_dump",
    "SELECT tenant_id, " COLS " FROM @S.workflow_states WHERE tenant_id = $1"
    " AND workflow_id > $2 ORDER BY workflow_id LIMIT $3",
    3, {OID_TEXT, OID_TEXT, OID_INT8}};

#define PUT_INSERT                                                             \
  "INSERT INTO @S.workflow_states (tenant_id, workflow_id, workflow_name, status,"  \
  " state_data, current_step, started_at, completed_at, last_updated, created_at)" \
  " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10)"                       \
  " ON CONFLICT (tenant_id, workflow_id)"
#define PUT_TYPES                                                                 \
  {OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_INT4, OID_TSTZ, OID_TSTZ, \
   OID_TSTZ, OID_TSTZ}
static const pg_stmt ST_WF_PUT_REPLACE = {
    "lls_workflows_put_replace",
    PUT_INSERT " DO UPDATE SET workflow_name = EXCLUDED.workflow_name,"
    " status = EXCLUDED.status, state_data = EXCLUDED.state_data,"
    " current_step = EXCLUDED.current_step, started_at = EXCLUDED.started_at,"
    " completed_at = EXCLUDED.completed_at, last_updated = EXCLUDED.last_updated,"
    " created_at = EXCLUDED.created_at",
    10, PUT_TYPES};
static const pg_stmt ST_WF_PUT_KEEP = {"lls_workflows_put_keep", PUT_INSERT " DO NOTHING", 10,
                                    PUT_TYPES};

static void param_opt(pg_params *p, lls_str s) {
  if (s.ptr == NULL)
    lls_pg_param_null(p);
  else
    lls_pg_param_bytes(p, s.ptr, s.len);
}

static void param_time(pg_params *p, int set, int64_t us) {
  if (set)
    lls_pg_param_time(p, us);
  else
    lls_pg_param_null(p);
}

/* Row i of r, columns COLS from col on; strings borrowed from r. */
static void read_row(const PGresult *r, int i, int col, lls_workflow *w) {
  w->workflow_id = lls_pg_str_at(r, i, col);
  w->name = lls_pg_str_at(r, i, col + 1);
  w->status = lls_pg_str_at(r, i, col + 2);
  w->data = lls_pg_str_at(r, i, col + 3);
  w->current_step = lls_pg_int4_at(r, i, col + 4);
  w->has_started = !PQgetisnull(r, i, col + 5);
  w->started_at = lls_pg_time_or_zero(r, i, col + 5);
  w->has_completed = !PQgetisnull(r, i, col + 6);
  w->completed_at = lls_pg_time_or_zero(r, i, col + 6);
  w->last_updated = lls_pg_time_or_zero(r, i, col + 7);
  w->created_at = lls_pg_time_or_zero(r, i, col + 8);
}

/* Takes r (NULL: the statement failed): 1 with its first row copied into
 * mem, 0 when it has none, -1 + err. */
static int one_row(PGresult *r, lls_buf *mem, lls_workflow *out, lls_error *err) {
  if (r == NULL) return -1;
  int got = PQntuples(r) > 0;
  if (got) {
    *out = (lls_workflow){0};
    read_row(r, 0, 0, out);
    if (lls_workflow_keep(out, mem) != 0) got = lls_error_oom(err);
  }
  PQclear(r);
  return got;
}

static int pg_load(lls_backend *b, lls_str id, lls_buf *mem, lls_workflow *out, int *found,
                   lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, id.ptr, id.len);
  int got = one_row(lls_pg_run_stmt(pg, &ST_WF_LOAD, &p, 1, err), mem, out, err);
  if (got < 0) return -1;
  *found = got;
  return 0;
}

/* One statement; when it changed nothing, a read says why (the stored row
 * refused the move, or there is none). */
static int pg_save(lls_backend *b, lls_str id, const lls_workflow_change *c, int create,
                   int64_t now, lls_buf *mem, lls_workflow *out, lls_workflow_outcome *outcome,
                   lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, id.ptr, id.len);
  param_opt(&p, c->name);
  param_opt(&p, c->data);
  if (c->has_step)
    lls_pg_param_int4(&p, c->current_step);
  else
    lls_pg_param_null(&p);
  param_opt(&p, c->status);
  lls_pg_param_time(&p, now);
  PGresult *r = lls_pg_write_stmt(pg, create ? &ST_WF_CREATE : &ST_WF_UPDATE, &p, err);
  int got = one_row(r, mem, out, err);
  if (got < 0) return -1;
  *outcome = LLS_WF_SAVED;
  if (got) return 0;
  int found;
  if (pg_load(b, id, mem, out, &found, err) != 0) return -1;
  *outcome = found ? LLS_WF_REFUSED : LLS_WF_MISSING;
  return 0;
}

static int pg_list(lls_backend *b, lls_str status, lls_rows *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  if (status.ptr) lls_pg_param_bytes(&p, status.ptr, status.len);
  const pg_stmt *st = status.ptr ? &ST_WF_LIST_STATUS : &ST_WF_LIST;
  return lls_pg_id_rows(pg, st, &p, out, err) < 0 ? -1 : 0;
}

static int pg_del(lls_backend *b, lls_str id, int *existed, lls_error *err) {
  return lls_pg_delete_id((pg_backend *)b, &ST_WF_DELETE, id, existed, err);
}

static int pg_count(lls_backend *b, int64_t *n, lls_error *err) {
  return lls_pg_tenant_count((pg_backend *)b, &ST_WF_COUNT, n, err);
}

static int pg_dump(lls_backend *b, lls_str after, size_t limit, lls_workflow_sink sink,
                   void *ud, size_t *n, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, after.ptr, after.len);
  lls_pg_param_limit(&p, limit);
  *n = 0;
  PGresult *r = lls_pg_run_stmt(pg, &ST_WF_DUMP, &p, 1, err);
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_workflow w = {0};
    w.tenant_id = lls_pg_str_at(r, i, 0);
    read_row(r, i, 1, &w);
    if (sink(ud, &w, err) != 0) {
      PQclear(r);
      return lls_error_stopped(err);
    }
    (*n)++;
  }
  PQclear(r);
  return 0;
}

static int pg_put(lls_backend *b, const lls_workflow *w, lls_conflict on_conflict, int *written,
                  lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, w->workflow_id.ptr, w->workflow_id.len);
  lls_pg_param_bytes(&p, w->name.ptr, w->name.len);
  lls_pg_param_bytes(&p, w->status.ptr, w->status.len);
  lls_pg_param_bytes(&p, w->data.ptr, w->data.len);
  lls_pg_param_int4(&p, w->current_step);
  param_time(&p, w->has_started, w->started_at);
  param_time(&p, w->has_completed, w->completed_at);
  lls_pg_param_time(&p, w->last_updated);
  lls_pg_param_time(&p, w->created_at);
  PGresult *r = lls_pg_write_stmt(
      pg, on_conflict == LLS_CONFLICT_REPLACE ? &ST_WF_PUT_REPLACE : &ST_WF_PUT_KEEP, &p, err);
  if (r == NULL) return -1;
  *written = strtoull(PQcmdTuples(r), NULL, 10) > 0;
  PQclear(r);
  if (!*written && on_conflict == LLS_CONFLICT_ERROR)
    return lls_error_set(err, LLS_ECONFLICT, "workflow '%.*s' exists",
                         lls_pg_msg_len(w->workflow_id, 200), w->workflow_id.ptr);
  return 0;
}

const lls_workflow_ops lls_postgres_workflow_ops = {
    .save = pg_save,
    .load = pg_load,
    .list = pg_list,
    .del = pg_del,
    .count = pg_count,
    .dump = pg_dump,
    .put = pg_put,
};
