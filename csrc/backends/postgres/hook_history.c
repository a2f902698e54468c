/*
 * hook_history.c -- the PostgreSQL backend's hook-history slots
 * (lls_hook_ops, backend/hook_history.h). The table (migration 10,
 * schema.c), with row-level security on app.current_tenant_id:
 *
 *   hook_history (
 *     tenant_id text NOT NULL, id text NOT NULL,
 *     execution_id, hook_id, hook_type, correlation_id
 *                          text COLLATE "C" NOT NULL,  -- byte order, as SQLite
 *     hook_context bytea NOT NULL,        -- size-prefixed LZ4 block; STORAGE
 *                                         -- EXTERNAL (TOAST does not recompress)
 *     result_data jsonb,                  -- NULL when none
 *     timestamp timestamptz NOT NULL,
 *     duration_ms bigint NOT NULL CHECK (duration_ms >= 0),
 *     triggering_component text, component_id text,
 *     modified_operation boolean NOT NULL,
 *     tags jsonb NOT NULL,                -- array of strings
 *     retention_priority integer NOT NULL,
 *     context_size bigint NOT NULL CHECK (context_size >= 0),
 *     contains_sensitive_data boolean NOT NULL,
 *     metadata jsonb NOT NULL,
 *     created_at timestamptz NOT NULL,
 *     PRIMARY KEY (tenant_id, execution_id))
 *   hook_history_correlation_idx / _hook_idx / _type_idx ON (tenant_id,
 *     correlation_id | hook_id | hook_type, timestamp DESC, execution_id
 *     DESC): the three lists, each one index range in the index's order
 *   hook_history_retention_idx ON (tenant_id, retention_priority,
 *     timestamp): archive
 *
 * A row has more columns than a statement has parameters (MAX_PARAMS), so
 * a write passes texts, numbers and times as three arrays, as the
 * artifacts' import does.
 */
#include "backends/postgres/hook_history.h"

#include <stdlib.h>
#include <string.h>

#include "backends/postgres/component.h"
#include "backends/postgres/conn.h"

/* Columns 0..18 of every read (read_row). */
#define COLS                                                                          \
  "tenant_id, id, execution_id, hook_id, hook_type, correlation_id, hook_context,"    \
  " result_data::text, timestamp, duration_ms, triggering_component, component_id,"   \
  " modified_operation, tags::text, retention_priority::int8, context_size,"          \
  " contains_sensitive_data, metadata::text, created_at"

#define ORDER " ORDER BY timestamp DESC, execution_id DESC LIMIT $3"

static const pg_stmt ST_HK_GET = {
    "lls_hooks_get",
    "SELECT " COLS " FROM @S.hook_history WHERE tenant_id = $1 AND execution_id = $2", 2,
    {OID_TEXT, OID_TEXT}};

/* One text per index, so each is one range of it whatever plan
 * PostgreSQL caches; LIMIT NULL is none. */
static const pg_stmt ST_HK_BY_CORRELATION = {
    "lls_hooks_by_correlation",
    "SELECT " COLS " FROM @S.hook_history WHERE tenant_id = $1 AND correlation_id = $2" ORDER,
    3, {OID_TEXT, OID_TEXT, OID_INT8}};
static const pg_stmt ST_HK_BY_HOOK = {
    "lls_hooks_by_hook",
    "SELECT " COLS " FROM @S.hook_history WHERE tenant_id = $1 AND hook_id = $2" ORDER, 3,
    {OID_TEXT, OID_TEXT, OID_INT8}};
static const pg_stmt ST_HK_BY_TYPE = {
    "lls_hooks_by_type",
    "SELECT " COLS " FROM @S.hook_history WHERE tenant_id = $1 AND hook_type = $2" ORDER, 3,
    {OID_TEXT, OID_TEXT, OID_INT8}};

static const pg_stmt ST_HK_ARCHIVE = {
    "lls_hooks_archive",
    "DELETE FROM @S.hook_history WHERE tenant_id = $1 AND retention_priority <= $3"
    " AND timestamp < $2",
    3, {OID_TEXT, OID_TSTZ, OID_INT8}};

/* Totals (kind 0), then counts by hook_id (1) and hook_type (2): one
 * statement, one snapshot. */
static const pg_stmt ST_HK_STATS = {
    "lls_hooks_stats",
    "SELECT 0, NULL::text, count(*), coalesce(sum(context_size), 0)::int8,"
    " coalesce(sum(octet_length(hook_context)), 0)::int8,"
    " coalesce(sum(duration_ms), 0)::int8, min(timestamp), max(timestamp)"
    " FROM @S.hook_history WHERE tenant_id = $1"
    " UNION ALL SELECT 1, hook_id, count(*), 0, 0, 0, NULL, NULL FROM @S.hook_history"
    " WHERE tenant_id = $1 GROUP BY hook_id"
    " UNION ALL SELECT 2, hook_type, count(*), 0, 0, 0, NULL, NULL FROM @S.hook_history"
    " WHERE tenant_id = $1 GROUP BY hook_type",
    1, {OID_TEXT}};

static const pg_stmt ST_HK_COUNT = {
    "lls_hooks_count", "SELECT count(*) FROM @S.hook_history WHERE tenant_id = $1", 1,
    {OID_TEXT}};

/* Pages in primary-key order; "" sorts before every execution id. */
static const pg_stmt ST_HK_DUMP = {
    "lls_hooks_dump",
    "SELECT " COLS " FROM @S.hook_history WHERE tenant_id = $1 AND execution_id > $2"
    " ORDER BY execution_id LIMIT $3",
    3, {OID_TEXT, OID_TEXT, OID_INT8}};

/* t: id, execution_id, hook_id, hook_type, correlation_id, result_data,
 * triggering_component, component_id, tags, metadata; n: duration_ms,
 * retention_priority, context_size, modified_operation,
 * contains_sensitive_data; m: timestamp, created_at; $5 the context. */
#define PUT_INSERT                                                                       \
  "INSERT INTO @S.hook_history (tenant_id, id, execution_id, hook_id, hook_type,"       \
  " correlation_id, hook_context, result_data, timestamp, duration_ms,"                 \
  " triggering_component, component_id, modified_operation, tags, retention_priority,"  \
  " context_size, contains_sensitive_data, metadata, created_at)"                       \
  " SELECT $1, t[1], t[2], t[3], t[4], t[5], $5, t[6]::jsonb, m[1], n[1], t[7], t[8],"  \
  " n[4] <> 0, t[9]::jsonb, n[2]::int4, n[3], n[5] <> 0, t[10]::jsonb, m[2]"            \
  " FROM (SELECT $2::text[] AS t, $3::int8[] AS n, $4::timestamptz[] AS m) v"           \
  " ON CONFLICT (tenant_id, execution_id)"
#define PUT_TYPES {OID_TEXT, OID_TEXT_ARR, OID_INT8_ARR, OID_TSTZ_ARR, OID_BYTEA}
static const pg_stmt ST_HK_PUT_REPLACE = {
    "lls_hooks_put_replace",
    PUT_INSERT " DO UPDATE SET id = EXCLUDED.id, hook_id = EXCLUDED.hook_id,"
    " hook_type = EXCLUDED.hook_type, correlation_id = EXCLUDED.correlation_id,"
    " hook_context = EXCLUDED.hook_context, result_data = EXCLUDED.result_data,"
    " timestamp = EXCLUDED.timestamp, duration_ms = EXCLUDED.duration_ms,"
    " triggering_component = EXCLUDED.triggering_component,"
    " component_id = EXCLUDED.component_id,"
    " modified_operation = EXCLUDED.modified_operation, tags = EXCLUDED.tags,"
    " retention_priority = EXCLUDED.retention_priority,"
    " context_size = EXCLUDED.context_size,"
    " contains_sensitive_data = EXCLUDED.contains_sensitive_data,"
    " metadata = EXCLUDED.metadata, created_at = EXCLUDED.created_at",
    5, PUT_TYPES};
static const pg_stmt ST_HK_PUT_KEEP = {"lls_hooks_put_keep", PUT_INSERT " DO NOTHING", 5,
                                       PUT_TYPES};

/* An optional text column: ptr NULL for SQL NULL. */
static lls_str opt_at(const PGresult *r, int i, int col) {
  if (PQgetisnull(r, i, col)) return (lls_str){NULL, 0};
  return lls_pg_str_at(r, i, col);
}

static int bool_at(const PGresult *r, int i, int col) {
  return !PQgetisnull(r, i, col) && PQgetlength(r, i, col) == 1 && PQgetvalue(r, i, col)[0];
}

/* Row i of r (columns COLS); strings borrowed from r. */
static void read_row(const PGresult *r, int i, lls_hook_exec *e) {
  e->tenant_id = lls_pg_str_at(r, i, 0);
  e->id = lls_pg_str_at(r, i, 1);
  e->execution_id = lls_pg_str_at(r, i, 2);
  e->hook_id = lls_pg_str_at(r, i, 3);
  e->hook_type = lls_pg_str_at(r, i, 4);
  e->correlation_id = lls_pg_str_at(r, i, 5);
  e->context = lls_pg_str_at(r, i, 6);
  e->result = opt_at(r, i, 7);
  e->timestamp = lls_pg_time_or_zero(r, i, 8);
  e->duration_ms = lls_pg_int8_at(r, i, 9);
  e->triggering_component = opt_at(r, i, 10);
  e->component_id = opt_at(r, i, 11);
  e->modified_operation = bool_at(r, i, 12);
  e->tags = lls_pg_str_at(r, i, 13);
  e->retention_priority = lls_pg_int8_at(r, i, 14);
  e->context_size = lls_pg_int8_at(r, i, 15);
  e->contains_sensitive_data = bool_at(r, i, 16);
  e->metadata = lls_pg_str_at(r, i, 17);
  e->created_at = lls_pg_time_or_zero(r, i, 18);
}

/* Takes r (NULL: the statement failed): every row to sink; *n counts
 * them. */
static int each_row(PGresult *r, lls_hook_sink sink, void *ud, size_t *n, lls_error *err) {
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_hook_exec e = {0};
    read_row(r, i, &e);
    if (sink(ud, &e, err) != 0) {
      PQclear(r);
      return lls_error_stopped(err);
    }
    (*n)++;
  }
  PQclear(r);
  return 0;
}

/* Appends text s, or a NULL element when s.ptr is NULL (an empty text
 * stays empty). */
static int arr_opt(lls_buf *a, lls_str s, int *hasnull) {
  if (s.ptr != NULL) return lls_pg_arr_add(a, s.ptr, s.len);
  *hasnull = 1;
  return lls_pg_arr_add_null(a);
}

/* The three array parameters of a put, in a[0..2]. -1 when out of
 * memory. */
static int put_arrays(const lls_hook_exec *e, lls_buf a[3]) {
  const lls_str t[] = {e->id,     e->execution_id,         e->hook_id,
                       e->hook_type, e->correlation_id,    e->result,
                       e->triggering_component, e->component_id, e->tags,
                       e->metadata};
  const int64_t n[] = {e->duration_ms, e->retention_priority, e->context_size,
                       e->modified_operation != 0, e->contains_sensitive_data != 0};
  int hasnull = 0;
  if (lls_pg_arr_init(&a[0]) != 0 || lls_pg_arr_init(&a[1]) != 0 ||
      lls_pg_arr_init(&a[2]) != 0)
    return -1;
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (arr_opt(&a[0], t[i], &hasnull) != 0) return -1;
  for (size_t i = 0; i < sizeof n / sizeof n[0]; i++)
    if (lls_pg_arr_add_int8(&a[1], n[i]) != 0) return -1;
  if (lls_pg_arr_add_time(&a[2], e->timestamp) != 0 ||
      lls_pg_arr_add_time(&a[2], e->created_at) != 0)
    return -1;
  lls_pg_arr_finish(&a[0], OID_TEXT, sizeof t / sizeof t[0], hasnull);
  lls_pg_arr_finish(&a[1], OID_INT8, sizeof n / sizeof n[0], 0);
  lls_pg_arr_finish(&a[2], OID_TSTZ, 2, 0);
  return 0;
}

/* jsonb refuses "\u0000" (which SQLite stores): said in the caller's terms. */
static void json_error(lls_error *err) {
  if (strcmp(err->sqlstate, "22P05") != 0) return;
  char msg[sizeof err->message];
  snprintf(msg, sizeof msg, "%s", err->message);
  lls_error_set(err, LLS_EINVALID,
                "hook result, tags or metadata contain \\u0000, which PostgreSQL jsonb cannot"
                " store (%s)",
                msg);
  memcpy(err->sqlstate, "22P05", 6);
}

static int pg_put(lls_backend *b, const lls_hook_exec *e, lls_conflict on_conflict,
                  int *written, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  lls_buf a[3] = {{0}, {0}, {0}};
  PGresult *r = NULL;
  if (put_arrays(e, a) != 0) {
    lls_error_oom(err);
  } else {
    pg_params p = {0};
    lls_pg_param_tenant(&p, pg);
    for (int i = 0; i < 3; i++) lls_pg_param_buf(&p, &a[i]);
    lls_pg_param_bytes(&p, e->context.ptr ? e->context.ptr : "", e->context.len);
    r = lls_pg_write_stmt(
        pg, on_conflict == LLS_CONFLICT_REPLACE ? &ST_HK_PUT_REPLACE : &ST_HK_PUT_KEEP, &p,
        err);
    if (r == NULL) json_error(err);
  }
  for (int i = 0; i < 3; i++) lls_buf_free(&a[i]);
  if (r == NULL) return -1;
  *written = strtoull(PQcmdTuples(r), NULL, 10) > 0;
  PQclear(r);
  if (!*written && on_conflict == LLS_CONFLICT_ERROR)
    return lls_error_set(err, LLS_ECONFLICT, "hook execution '%.*s' exists",
                         lls_pg_msg_len(e->execution_id, 200), e->execution_id.ptr);
  return 0;
}

static int pg_get(lls_backend *b, lls_str execution_id, lls_hook_sink sink, void *ud,
                  int *found, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, execution_id.ptr, execution_id.len);
  size_t n = 0;
  int rc = each_row(lls_pg_run_stmt(pg, &ST_HK_GET, &p, 1, err), sink, ud, &n, err);
  *found = n > 0;
  return rc;
}

static int pg_list(lls_backend *b, lls_hook_by by, lls_str key, size_t limit,
                   lls_hook_sink sink, void *ud, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  const pg_stmt *def = by == LLS_HOOK_BY_CORRELATION ? &ST_HK_BY_CORRELATION
                       : by == LLS_HOOK_BY_HOOK      ? &ST_HK_BY_HOOK
                                                     : &ST_HK_BY_TYPE;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, key.ptr, key.len);
  lls_pg_param_limit(&p, limit);
  size_t n = 0;
  return each_row(lls_pg_run_stmt(pg, def, &p, 1, err), sink, ud, &n, err);
}

static int pg_archive(lls_backend *b, int64_t before, int64_t max_priority, int64_t *removed,
                      lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_time(&p, before);
  lls_pg_param_int8(&p, max_priority);
  PGresult *r = lls_pg_write_stmt(pg, &ST_HK_ARCHIVE, &p, err);
  if (r == NULL) return -1;
  *removed = (int64_t)strtoll(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  return 0;
}

static int pg_stats(lls_backend *b, lls_hook_totals *t, lls_hook_group_sink group, void *ud,
                    lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  PGresult *r = lls_pg_run_stmt(pg, &ST_HK_STATS, &p, 1, err);
  if (r == NULL) return -1;
  *t = (lls_hook_totals){0};
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    int kind = lls_pg_int4_at(r, i, 0);
    int64_t n = lls_pg_int8_at(r, i, 2);
    if (kind != 0) {
      if (group(ud, kind == 2, lls_pg_str_at(r, i, 1), n, err) != 0) {
        PQclear(r);
        return lls_error_stopped(err);
      }
      continue;
    }
    t->executions = n;
    t->bytes = lls_pg_int8_at(r, i, 3);
    t->compressed_bytes = lls_pg_int8_at(r, i, 4);
    t->avg_duration_ms = n > 0 ? (double)lls_pg_int8_at(r, i, 5) / (double)n : 0.0;
    t->oldest = lls_pg_time_or_zero(r, i, 6);
    t->newest = lls_pg_time_or_zero(r, i, 7);
  }
  PQclear(r);
  return 0;
}

static int pg_count(lls_backend *b, int64_t *n, lls_error *err) {
  return lls_pg_tenant_count((pg_backend *)b, &ST_HK_COUNT, n, err);
}

static int pg_dump(lls_backend *b, lls_str after, size_t limit, lls_hook_sink sink, void *ud,
                   size_t *n, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, after.ptr ? after.ptr : "", after.ptr ? after.len : 0);
  lls_pg_param_limit(&p, limit);
  *n = 0;
  return each_row(lls_pg_run_stmt(pg, &ST_HK_DUMP, &p, 1, err), sink, ud, n, err);
}

const lls_hook_ops lls_postgres_hook_ops = {
    .put = pg_put,
    .get = pg_get,
    .list = pg_list,
    .archive = pg_archive,
    .stats = pg_stats,
    .count = pg_count,
    .dump = pg_dump,
};
