/*
 * agent_states.c -- the PostgreSQL backend's agent state slots
 * (lls_agent_state_ops, backend/agent_states.h).
 *
 * Table (migration 6, schema.c; ENABLE + FORCE row-level security on
 * app.current_tenant_id, as every table):
 *
 *   CREATE TABLE agent_states (
 *     tenant_id      text NOT NULL,
 *     agent_id       text COLLATE "C" NOT NULL,  -- byte order
 *     state_id       text NOT NULL,              -- UUID v4 made at the first save
 *     agent_type     text NOT NULL,              -- 'unknown' unless the caller chose
 *     state_data     bytea NOT NULL,             -- the stored bytes, which the
 *                                                -- checksum covers (jsonb would
 *                                                -- rewrite them)
 *     is_json        boolean NOT NULL,
 *     schema_version int NOT NULL CHECK (schema_version > 0),
 *     data_version   bigint NOT NULL CHECK (data_version > 0),
 *     checksum       text NOT NULL,              -- SHA-256 hex of state_data
 *     created_at     timestamptz NOT NULL,
 *     updated_at     timestamptz NOT NULL,
 *     PRIMARY KEY (tenant_id, agent_id));
 *   CREATE INDEX agent_states_type_idx ON agent_states (tenant_id, agent_type, agent_id);
 *
 * Every slot is one statement. save is one INSERT ... ON CONFLICT DO
 * UPDATE: under READ COMMITTED the conflicting row is locked and the
 * update sees its latest version, so concurrent savers in other sessions
 * each add their own step to data_version.
 */
#include "backends/postgres/agent_states.h"

#include "backends/postgres/component.h"
#include "backends/postgres/conn.h"

#define COLS                                                                     \
  "agent_id, state_id, agent_type, state_data, is_json, schema_version,"        \
  " data_version, checksum, created_at, updated_at"
#define READ_COLS COLS ", tenant_id"

/* The columns of READ_COLS, as binary results. */
enum {
  C_ID, C_STATE_ID, C_TYPE, C_DATA, C_JSON, C_SCHEMA, C_VERSION, C_SUM, C_CREATED, C_UPDATED,
  C_TENANT
};

/* $4 / $7 NULL: not given (default for a new row, else keep the row's). */
static const pg_stmt Q_SAVE = {
    "lls_agent_save",
    "INSERT INTO @S.agent_states AS a (tenant_id, agent_id, state_id, agent_type, state_data,"
    " is_json, schema_version, data_version, checksum, created_at, updated_at)"
    " VALUES ($1, $2, $3, COALESCE($4, '" LLS_AGENT_TYPE_DEFAULT "'), $5, $6,"
    " COALESCE($7, 1), 1, $8, $9, $9)"
    " ON CONFLICT (tenant_id, agent_id) DO UPDATE SET"
    " data_version = CASE WHEN a.checksum <> EXCLUDED.checksum"
    " OR a.is_json <> EXCLUDED.is_json THEN a.data_version + 1 ELSE a.data_version END,"
    " agent_type = COALESCE($4, a.agent_type),"
    " schema_version = COALESCE($7, a.schema_version),"
    " state_data = EXCLUDED.state_data, is_json = EXCLUDED.is_json,"
    " checksum = EXCLUDED.checksum, updated_at = EXCLUDED.updated_at"
    " RETURNING data_version",
    9,
    {OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_BYTEA, OID_BOOL, OID_INT4, OID_TEXT,
     OID_TSTZ}};

static const pg_stmt Q_LOAD = {
    "lls_agent_load",
    "SELECT " READ_COLS " FROM @S.agent_states WHERE tenant_id = $1 AND agent_id = $2",
    2,
    {OID_TEXT, OID_TEXT}};

/* $2 '' starts at the first id (ids are never empty); $3 NULL: no limit. */
static const pg_stmt Q_LIST = {
    "lls_agent_list",
    "SELECT agent_id FROM @S.agent_states WHERE tenant_id = $1 AND agent_id > $2"
    " ORDER BY agent_id LIMIT $3",
    3,
    {OID_TEXT, OID_TEXT, OID_INT8}};

static const pg_stmt Q_LIST_TYPE = {
    "lls_agent_list_type",
    "SELECT agent_id FROM @S.agent_states WHERE tenant_id = $1 AND agent_type = $4"
    " AND agent_id > $2 ORDER BY agent_id LIMIT $3",
    4,
    {OID_TEXT, OID_TEXT, OID_INT8, OID_TEXT}};

static const pg_stmt Q_DELETE = {
    "lls_agent_delete",
    "DELETE FROM @S.agent_states WHERE tenant_id = $1 AND agent_id = $2 RETURNING true",
    2,
    {OID_TEXT, OID_TEXT}};

static const pg_stmt Q_COUNT = {
    "lls_agent_count", "SELECT count(*) FROM @S.agent_states WHERE tenant_id = $1", 1,
    {OID_TEXT}};

static const pg_stmt Q_DUMP = {
    "lls_agent_dump",
    "SELECT " READ_COLS " FROM @S.agent_states WHERE tenant_id = $1 AND agent_id > $2"
    " ORDER BY agent_id LIMIT $3",
    3,
    {OID_TEXT, OID_TEXT, OID_INT8}};

#define PUT_INSERT                                                               \
  "INSERT INTO @S.agent_states (tenant_id, " COLS ")"                           \
  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
#define T_PUT                                                                    \
  {OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_BYTEA, OID_BOOL, OID_INT4, OID_INT8,  \
   OID_TEXT, OID_TSTZ, OID_TSTZ}

static const pg_stmt Q_PUT_REPLACE = {
    "lls_agent_put_replace",
    PUT_INSERT " ON CONFLICT (tenant_id, agent_id) DO UPDATE SET"
    " state_id = EXCLUDED.state_id, agent_type = EXCLUDED.agent_type,"
    " state_data = EXCLUDED.state_data, is_json = EXCLUDED.is_json,"
    " schema_version = EXCLUDED.schema_version, data_version = EXCLUDED.data_version,"
    " checksum = EXCLUDED.checksum, created_at = EXCLUDED.created_at,"
    " updated_at = EXCLUDED.updated_at RETURNING true",
    11,
    T_PUT};

static const pg_stmt Q_PUT_KEEP = {
    "lls_agent_put_keep",
    PUT_INSERT " ON CONFLICT (tenant_id, agent_id) DO NOTHING RETURNING true", 11, T_PUT};

/* Row i of a result with the columns READ_COLS. */
static void read_row(const PGresult *r, int i, lls_agent_state *st) {
  st->agent_id = lls_pg_str_at(r, i, C_ID);
  st->state_id = lls_pg_str_at(r, i, C_STATE_ID);
  st->agent_type = lls_pg_str_at(r, i, C_TYPE);
  st->state_data = lls_pg_str_at(r, i, C_DATA);
  st->is_json = PQgetlength(r, i, C_JSON) == 1 && PQgetvalue(r, i, C_JSON)[0] != 0;
  st->schema_version = lls_pg_int4_at(r, i, C_SCHEMA);
  st->data_version = lls_pg_int8_at(r, i, C_VERSION);
  st->checksum = lls_pg_str_at(r, i, C_SUM);
  st->created_at = lls_pg_time_or_zero(r, i, C_CREATED);
  st->updated_at = lls_pg_time_or_zero(r, i, C_UPDATED);
  st->tenant_id = lls_pg_str_at(r, i, C_TENANT);
}

/* Hands every row of r to fn, then frees r. */
static int each_row(PGresult *r, lls_agent_state_fn fn, void *ud, lls_error *err) {
  int n = PQntuples(r);
  for (int i = 0; i < n; i++) {
    lls_agent_state st;
    read_row(r, i, &st);
    if (fn(ud, &st, err) != 0) {
      PQclear(r);
      return -1;
    }
  }
  PQclear(r);
  return 0;
}

static int pg_save(lls_backend *b, const lls_agent_state *st, int64_t now,
                   int64_t *data_version, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, st->agent_id.ptr, st->agent_id.len);
  lls_pg_param_bytes(&p, st->state_id.ptr, st->state_id.len);
  if (st->agent_type.ptr != NULL)
    lls_pg_param_bytes(&p, st->agent_type.ptr, st->agent_type.len);
  else
    lls_pg_param_null(&p);
  lls_pg_param_bytes(&p, st->state_data.ptr, st->state_data.len);
  lls_pg_param_bool(&p, st->is_json);
  if (st->schema_version > 0)
    lls_pg_param_int4(&p, (int32_t)st->schema_version);
  else
    lls_pg_param_null(&p);
  lls_pg_param_bytes(&p, st->checksum.ptr, st->checksum.len);
  lls_pg_param_time(&p, now);
  PGresult *r = lls_pg_write_stmt(pg, &Q_SAVE, &p, err);
  if (r == NULL) return -1;
  *data_version = PQntuples(r) > 0 ? lls_pg_int8_at(r, 0, 0) : 0;
  PQclear(r);
  return 0;
}

static int pg_load(lls_backend *b, lls_str agent_id, lls_agent_state_fn fn, void *ud,
                   int *found, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, agent_id.ptr, agent_id.len);
  PGresult *r = lls_pg_run_stmt(pg, &Q_LOAD, &p, 1, err);
  if (r == NULL) return -1;
  *found = PQntuples(r) > 0;
  return each_row(r, fn, ud, err);
}

static int pg_list(lls_backend *b, lls_str agent_type, lls_str after, size_t limit,
                   lls_rows *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  if (after.ptr != NULL)
    lls_pg_param_bytes(&p, after.ptr, after.len);
  else
    lls_pg_param_bytes(&p, "", 0);
  lls_pg_param_limit(&p, limit);
  if (agent_type.ptr != NULL) lls_pg_param_bytes(&p, agent_type.ptr, agent_type.len);
  const pg_stmt *st = agent_type.ptr != NULL ? &Q_LIST_TYPE : &Q_LIST;
  return lls_pg_id_rows(pg, st, &p, out, err) < 0 ? -1 : 0;
}

static int pg_del(lls_backend *b, lls_str agent_id, int *existed, lls_error *err) {
  return lls_pg_delete_id((pg_backend *)b, &Q_DELETE, agent_id, existed, err);
}

static int pg_count(lls_backend *b, int64_t *n, lls_error *err) {
  return lls_pg_tenant_count((pg_backend *)b, &Q_COUNT, n, err);
}

static int pg_dump(lls_backend *b, lls_str after, size_t limit, lls_agent_state_fn fn,
                   void *ud, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  if (after.ptr != NULL)
    lls_pg_param_bytes(&p, after.ptr, after.len);
  else
    lls_pg_param_bytes(&p, "", 0);
  lls_pg_param_limit(&p, limit);
  PGresult *r = lls_pg_run_stmt(pg, &Q_DUMP, &p, 1, err);
  if (r == NULL) return -1;
  return each_row(r, fn, ud, err);
}

static int pg_put(lls_backend *b, const lls_agent_state *st, lls_conflict on_conflict,
                  int *written, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, st->agent_id.ptr, st->agent_id.len);
  lls_pg_param_bytes(&p, st->state_id.ptr, st->state_id.len);
  lls_pg_param_bytes(&p, st->agent_type.ptr, st->agent_type.len);
  lls_pg_param_bytes(&p, st->state_data.ptr, st->state_data.len);
  lls_pg_param_bool(&p, st->is_json);
  lls_pg_param_int4(&p, (int32_t)st->schema_version);
  lls_pg_param_int8(&p, st->data_version);
  lls_pg_param_bytes(&p, st->checksum.ptr, st->checksum.len);
  lls_pg_param_time(&p, st->created_at);
  lls_pg_param_time(&p, st->updated_at);
  const pg_stmt *def = on_conflict == LLS_CONFLICT_REPLACE ? &Q_PUT_REPLACE : &Q_PUT_KEEP;
  PGresult *r = lls_pg_write_stmt(pg, def, &p, err);
  if (r == NULL) return -1;
  *written = PQntuples(r) > 0;
  PQclear(r);
  if (!*written && on_conflict == LLS_CONFLICT_ERROR)
    return lls_error_set(err, LLS_ECONFLICT, "agent state '%.*s' already exists",
                         lls_pg_msg_len(st->agent_id, 200), st->agent_id.ptr);
  return 0;
}

const lls_agent_state_ops lls_postgres_agent_state_ops = {
    .save = pg_save,
    .load = pg_load,
    .list = pg_list,
    .del = pg_del,
    .count = pg_count,
    .dump = pg_dump,
    .put = pg_put,
};
