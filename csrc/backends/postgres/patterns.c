/*
 * patterns.c -- the PostgreSQL backend's procedural-memory slots
 * (lls_pattern_ops, backend/patterns.h). The table (migration 8,
 * schema.c), with row-level security on app.current_tenant_id:
 *
 *   procedural_patterns (
 *     tenant_id  text NOT NULL,
 *     pattern_id text NOT NULL,              -- UUID v4, made at first record
 *     scope      text COLLATE "C" NOT NULL,  -- byte order, as SQLite
 *     key        text COLLATE "C" NOT NULL,
 *     value      text COLLATE "C" NOT NULL,
 *     frequency  bigint NOT NULL CHECK (frequency > 0),
 *     first_seen timestamptz NOT NULL,
 *     last_seen  timestamptz NOT NULL,
 *     created_at timestamptz NOT NULL,
 *     updated_at timestamptz NOT NULL,
 *     PRIMARY KEY (tenant_id, scope, key, value))
 *   procedural_patterns_frequency_idx ON (tenant_id, frequency DESC,
 *     last_seen DESC, scope, key, value): learned{}
 *   procedural_patterns_scope_idx ON (tenant_id, scope, frequency DESC,
 *     last_seen DESC, key, value): learned{scope=}
 *
 * record is one INSERT ... ON CONFLICT DO UPDATE SET frequency =
 * p.frequency + 1: a writer that meets a concurrent insert or update of
 * the row waits for it and then increments the committed row, so under
 * READ COMMITTED no increment is lost.
 */
#include "backends/postgres/patterns.h"

#include <stdlib.h>

#include "backends/postgres/component.h"
#include "backends/postgres/conn.h"

#define COLS                                                                   \
  "pattern_id, scope, key, value, frequency, first_seen, last_seen, created_at," \
  " updated_at"

#define WHERE_PATTERN "tenant_id = $1 AND scope = $2 AND key = $3 AND value = $4"
#define PATTERN_TYPES OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT

static const pg_stmt ST_PT_RECORD = {
    "lls_patterns_record",
    "INSERT INTO @S.procedural_patterns AS p (tenant_id, scope, key, value, pattern_id,"
    " frequency, first_seen, last_seen, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, 1, $6, $6, $6, $6)"
    " ON CONFLICT (tenant_id, scope, key, value) DO UPDATE SET"
    " frequency = p.frequency + 1, last_seen = EXCLUDED.last_seen,"
    " updated_at = EXCLUDED.updated_at RETURNING frequency",
    6, {PATTERN_TYPES, OID_TEXT, OID_TSTZ}};

static const pg_stmt ST_PT_FREQUENCY = {
    "lls_patterns_frequency",
    "SELECT frequency FROM @S.procedural_patterns WHERE " WHERE_PATTERN, 4, {PATTERN_TYPES}};

/* Two texts, so each is one index range (the frequency or the scope
 * index) whatever plan PostgreSQL caches; LIMIT NULL is none. */
static const pg_stmt ST_PT_LEARNED = {
    "lls_patterns_learned",
    "SELECT " COLS " FROM @S.procedural_patterns WHERE tenant_id = $1 AND frequency >= $2"
    " ORDER BY frequency DESC, last_seen DESC, scope, key, value LIMIT $3",
    3, {OID_TEXT, OID_INT8, OID_INT8}};
static const pg_stmt ST_PT_LEARNED_SCOPE = {
    "lls_patterns_learned_scope",
    "SELECT " COLS " FROM @S.procedural_patterns WHERE tenant_id = $1 AND scope = $4"
    " AND frequency >= $2 ORDER BY frequency DESC, last_seen DESC, key, value LIMIT $3",
    4, {OID_TEXT, OID_INT8, OID_INT8, OID_TEXT}};

static const pg_stmt ST_PT_DELETE = {
    "lls_patterns_delete", "DELETE FROM @S.procedural_patterns WHERE " WHERE_PATTERN, 4,
    {PATTERN_TYPES}};

static const pg_stmt ST_PT_COUNT = {
    "lls_patterns_count", "SELECT count(*) FROM @S.procedural_patterns WHERE tenant_id = $1",
    1, {OID_TEXT}};

/* Pages in primary-key order; the row value compares as the key does. */
static const pg_stmt ST_PT_DUMP_FIRST = {
    "lls_patterns_dump_first",
    "SELECT tenant_id, " COLS " FROM @S.procedural_patterns WHERE tenant_id = $1"
    " ORDER BY scope, key, value LIMIT $2",
    2, {OID_TEXT, OID_INT8}};
static const pg_stmt ST_PT_DUMP_AFTER = {
    "lls_patterns_dump_after",
    "SELECT tenant_id, " COLS " FROM @S.procedural_patterns WHERE tenant_id = $1"
    " AND (scope, key, value) > ($2, $3, $4) ORDER BY scope, key, value LIMIT $5",
    5, {PATTERN_TYPES, OID_INT8}};

#define PUT_INSERT                                                                  \
  "INSERT INTO @S.procedural_patterns (tenant_id, scope, key, value, pattern_id,"   \
  " frequency, first_seen, last_seen, created_at, updated_at)"                      \
  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"                               \
  " ON CONFLICT (tenant_id, scope, key, value)"
#define PUT_TYPES \
  {PATTERN_TYPES, OID_TEXT, OID_INT8, OID_TSTZ, OID_TSTZ, OID_TSTZ, OID_TSTZ}
static const pg_stmt ST_PT_PUT_REPLACE = {
    "lls_patterns_put_replace",
    PUT_INSERT " DO UPDATE SET pattern_id = EXCLUDED.pattern_id,"
    " frequency = EXCLUDED.frequency, first_seen = EXCLUDED.first_seen,"
    " last_seen = EXCLUDED.last_seen, created_at = EXCLUDED.created_at,"
    " updated_at = EXCLUDED.updated_at",
    10, PUT_TYPES};
static const pg_stmt ST_PT_PUT_KEEP = {"lls_patterns_put_keep", PUT_INSERT " DO NOTHING", 10,
                                       PUT_TYPES};

/* $1 the tenant, $2..$4 the pattern. */
static void param_pattern(pg_params *p, pg_backend *pg, lls_str scope, lls_str key,
                          lls_str value) {
  lls_pg_param_tenant(p, pg);
  lls_pg_param_bytes(p, scope.ptr, scope.len);
  lls_pg_param_bytes(p, key.ptr, key.len);
  lls_pg_param_bytes(p, value.ptr, value.len);
}

/* Row i of r, columns COLS from col on; strings borrowed from r. */
static void read_row(const PGresult *r, int i, int col, lls_pattern *p) {
  p->pattern_id = lls_pg_str_at(r, i, col);
  p->scope = lls_pg_str_at(r, i, col + 1);
  p->key = lls_pg_str_at(r, i, col + 2);
  p->value = lls_pg_str_at(r, i, col + 3);
  p->frequency = lls_pg_int8_at(r, i, col + 4);
  p->first_seen = lls_pg_time_or_zero(r, i, col + 5);
  p->last_seen = lls_pg_time_or_zero(r, i, col + 6);
  p->created_at = lls_pg_time_or_zero(r, i, col + 7);
  p->updated_at = lls_pg_time_or_zero(r, i, col + 8);
}

/* Takes r (NULL: the statement failed): every row (columns COLS from col
 * on, tenant_id first when col is 1) to sink; *n counts them. */
static int each_row(PGresult *r, int col, lls_pattern_sink sink, void *ud, size_t *n,
                    lls_error *err) {
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_pattern p = {0};
    if (col > 0) p.tenant_id = lls_pg_str_at(r, i, 0);
    read_row(r, i, col, &p);
    if (sink(ud, &p, err) != 0) {
      PQclear(r);
      return lls_error_stopped(err);
    }
    (*n)++;
  }
  PQclear(r);
  return 0;
}

/* Takes r (NULL: the statement failed): its first row's int8, 0 when it
 * has none. */
static int first_int(PGresult *r, int64_t *n) {
  if (r == NULL) return -1;
  *n = PQntuples(r) > 0 ? lls_pg_int8_at(r, 0, 0) : 0;
  PQclear(r);
  return 0;
}

static int pg_record(lls_backend *b, lls_str scope, lls_str key, lls_str value, lls_str new_id,
                     int64_t now, int64_t *frequency, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  param_pattern(&p, pg, scope, key, value);
  lls_pg_param_bytes(&p, new_id.ptr, new_id.len);
  lls_pg_param_time(&p, now);
  return first_int(lls_pg_write_stmt(pg, &ST_PT_RECORD, &p, err), frequency);
}

static int pg_frequency(lls_backend *b, lls_str scope, lls_str key, lls_str value, int64_t *n,
                        lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  param_pattern(&p, pg, scope, key, value);
  return first_int(lls_pg_run_stmt(pg, &ST_PT_FREQUENCY, &p, 1, err), n);
}

static int pg_learned(lls_backend *b, lls_str scope, int64_t min_frequency, size_t limit,
                      lls_pattern_sink sink, void *ud, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_int8(&p, min_frequency);
  lls_pg_param_limit(&p, limit);
  if (scope.ptr) lls_pg_param_bytes(&p, scope.ptr, scope.len);
  size_t n = 0;
  return each_row(
      lls_pg_run_stmt(pg, scope.ptr ? &ST_PT_LEARNED_SCOPE : &ST_PT_LEARNED, &p, 1, err), 0,
      sink, ud, &n, err);
}

static int pg_del(lls_backend *b, lls_str scope, lls_str key, lls_str value, int *existed,
                  lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  param_pattern(&p, pg, scope, key, value);
  PGresult *r = lls_pg_write_stmt(pg, &ST_PT_DELETE, &p, err);
  if (r == NULL) return -1;
  *existed = strtoull(PQcmdTuples(r), NULL, 10) > 0;
  PQclear(r);
  return 0;
}

static int pg_count(lls_backend *b, int64_t *n, lls_error *err) {
  return lls_pg_tenant_count((pg_backend *)b, &ST_PT_COUNT, n, err);
}

static int pg_dump(lls_backend *b, const lls_pattern *after, size_t limit,
                   lls_pattern_sink sink, void *ud, size_t *n, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  if (after)
    param_pattern(&p, pg, after->scope, after->key, after->value);
  else
    lls_pg_param_tenant(&p, pg);
  lls_pg_param_limit(&p, limit);
  *n = 0;
  return each_row(
      lls_pg_run_stmt(pg, after ? &ST_PT_DUMP_AFTER : &ST_PT_DUMP_FIRST, &p, 1, err), 1, sink,
      ud, n, err);
}

static int pg_put(lls_backend *b, const lls_pattern *pt, lls_conflict on_conflict, int *written,
                  lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  param_pattern(&p, pg, pt->scope, pt->key, pt->value);
  lls_pg_param_bytes(&p, pt->pattern_id.ptr, pt->pattern_id.len);
  lls_pg_param_int8(&p, pt->frequency);
  lls_pg_param_time(&p, pt->first_seen);
  lls_pg_param_time(&p, pt->last_seen);
  lls_pg_param_time(&p, pt->created_at);
  lls_pg_param_time(&p, pt->updated_at);
  PGresult *r = lls_pg_write_stmt(
      pg, on_conflict == LLS_CONFLICT_REPLACE ? &ST_PT_PUT_REPLACE : &ST_PT_PUT_KEEP, &p, err);
  if (r == NULL) return -1;
  *written = strtoull(PQcmdTuples(r), NULL, 10) > 0;
  PQclear(r);
  if (!*written && on_conflict == LLS_CONFLICT_ERROR)
    return lls_error_set(err, LLS_ECONFLICT, "pattern ('%.*s', '%.*s', '%.*s') exists",
                         lls_pg_msg_len(pt->scope, 200), pt->scope.ptr,
                         lls_pg_msg_len(pt->key, 200), pt->key.ptr,
                         lls_pg_msg_len(pt->value, 200), pt->value.ptr);
  return 0;
}

const lls_pattern_ops lls_postgres_pattern_ops = {
    .record = pg_record,
    .frequency = pg_frequency,
    .learned = pg_learned,
    .del = pg_del,
    .count = pg_count,
    .dump = pg_dump,
    .put = pg_put,
};
