/*
 * events.c -- the PostgreSQL backend's event-log slots (lls_event_ops,
 * backend/events.h). The tables (migration 11, events_schema.c), with row-level
 * security on app.current_tenant_id on every one of them:
 *
 *   event_log (
 *     tenant_id      text NOT NULL,
 *     sequence       bigint NOT NULL CHECK (sequence > 0),
 *     event_id       text NOT NULL,
 *     event_type     text COLLATE "C" NOT NULL,   -- byte order, as SQLite
 *     correlation_id text,                        -- NULL: none
 *     timestamp      timestamptz NOT NULL,
 *     language       text NOT NULL,
 *     payload        jsonb NOT NULL)              -- the event's data
 *     PARTITION BY RANGE (timestamp)
 *   event_log_time_idx (tenant_id, timestamp), event_log_correlation_idx
 *   (tenant_id, correlation_id), event_log_type_idx (tenant_id,
 *   event_type, timestamp), event_log_sequence_idx (tenant_id, sequence):
 *   on the parent, so every partition has them
 *   event_log_sequences (tenant_id text PRIMARY KEY, last_sequence bigint)
 *
 * Partitions: one per month (UTC), event_log_YYYY_MM, itself partitioned
 * BY LIST (tenant_id) into one leaf per tenant, event_log_YYYY_MM_<the
 * first 16 hex digits of md5(tenant)>. Each carries ENABLE + FORCE RLS and
 * the tenant policy, so a role without BYPASSRLS reading a partition
 * directly sees only its tenant too. A query with a time range reads only
 * the months it covers, and of them only the tenant's leaves (pruning).
 * The leaf level is what lets cleanup_before drop whole months of one
 * tenant without touching another's.
 *
 * The writes are SQL functions (schema.c, EVENT_FUNCTIONS) so that one
 * round trip both makes the partitions a batch needs and inserts into
 * them, in the caller's transaction: lls_event_partitions looks for each
 * month's leaf and creates what is missing under an advisory transaction
 * lock (re-checking after taking it, so racing writers create each once);
 * lls_event_append bumps the tenant's counter row by the batch's size
 * (writers queue on that row until commit: no overlap, no gap) and
 * inserts the batch from arrays; lls_event_put is one import record;
 * lls_event_cleanup, under the same lock, detaches and drops the tenant's
 * leaves of months entirely before the cut (and a month left without
 * leaves), then deletes the rest of the older rows.
 */
#include "backends/postgres/events.h"

#include <stdlib.h>
#include <string.h>

#include "backends/postgres/component.h"
#include "backends/postgres/conn.h"
#include "base/utf8.h"

#define COLS "sequence, event_id, event_type, correlation_id, timestamp, language, payload::text"

static const pg_stmt ST_EV_APPEND = {
    "lls_events_append",
    "SELECT @S.lls_event_append($1, $2, $3, $4, $5, $6, $7)",
    7,
    {OID_TEXT, OID_TEXT_ARR, OID_TEXT_ARR, OID_TEXT_ARR, OID_TSTZ_ARR, OID_TEXT_ARR,
     OID_TEXT_ARR}};

/* $1 tenant, $2/$3 time range, $4/$5 sequence range, $6 the type's LIKE
 * pattern (NULL: any), $7 limit, $8 correlation id or type (lower bound),
 * $9 a glob's upper bound; a statement leaves out what its path does not
 * use (PostgreSQL takes declared parameters a text does not name).
 * `sequence + 0` keeps the sequence index out of the plans a correlation
 * id or a time range leads; with a type and no time range the planner
 * chooses, from the type's statistics, between its index (few matches)
 * and walking the sequence index in order until `limit` matches (many). The time range is plain, for pruning, and only in the statements
 * of a query that gives one: every condition costs planning time on each
 * of the partitions, and a prepared statement over many partitions keeps
 * being planned for its arguments. */
#define SEL "SELECT " COLS " FROM @S.event_log WHERE tenant_id = $1"
#define TIME " AND timestamp >= $2 AND timestamp < $3"
#define SEQ " AND sequence > $4 AND sequence < $5"
#define XSEQ " AND sequence + 0 > $4 AND sequence + 0 < $5"
#define ANYTYPE " AND ($6::text IS NULL OR event_type LIKE $6)"
#define ASC " ORDER BY sequence LIMIT $7"
#define DESC " ORDER BY sequence DESC LIMIT $7"
#define Q_TYPES \
  {OID_TEXT, OID_TSTZ, OID_TSTZ, OID_INT8, OID_INT8, OID_TEXT, OID_INT8, OID_TEXT, OID_TEXT}
#define Q(name, sql) {"lls_events_" name, sql, 9, Q_TYPES}
#define BY_CORR SEL " AND correlation_id = $8" XSEQ ANYTYPE
#define TYPE " AND event_type = $8"
#define GLOB " AND event_type >= $8 AND event_type < $9"
#define BY_CORR_T BY_CORR TIME
#define BY_TYPE SEL TYPE SEQ
#define BY_TYPE_T SEL TYPE XSEQ TIME
#define BY_GLOB SEL GLOB SEQ ANYTYPE
#define BY_GLOB_T SEL GLOB XSEQ ANYTYPE TIME
#define BY_TIME SEL TIME XSEQ ANYTYPE
#define BY_SEQ SEL SEQ ANYTYPE
#define PAIR(name, sql) {Q(name "_asc", sql ASC), Q(name "_desc", sql DESC)}

/* The paths; _T: the same with a time range. */
enum { P_CORR, P_TYPE, P_GLOB, P_TIME, P_SEQ, P_CORR_T, P_TYPE_T, P_GLOB_T };
static const pg_stmt ST_EV_QUERY[8][2] = {
    PAIR("corr", BY_CORR),         PAIR("type", BY_TYPE),
    PAIR("glob", BY_GLOB),         PAIR("time", BY_TIME),
    PAIR("seq", BY_SEQ),           PAIR("corr_t", BY_CORR_T),
    PAIR("type_t", BY_TYPE_T),     PAIR("glob_t", BY_GLOB_T),
};

static const pg_stmt ST_EV_CLEANUP = {
    "lls_events_cleanup", "SELECT @S.lls_event_cleanup($1, $2)", 2, {OID_TEXT, OID_TSTZ}};
static const pg_stmt ST_EV_COUNT = {
    "lls_events_count", "SELECT count(*) FROM @S.event_log WHERE tenant_id = $1", 1,
    {OID_TEXT}};
static const pg_stmt ST_EV_TOTALS = {
    "lls_events_totals",
    "SELECT count(*), coalesce(sum(octet_length(payload::text)), 0)::int8, min(timestamp),"
    " max(timestamp) FROM @S.event_log WHERE tenant_id = $1",
    1, {OID_TEXT}};
static const pg_stmt ST_EV_BY_TYPE = {
    "lls_events_by_type",
    "SELECT event_type, count(*) FROM @S.event_log WHERE tenant_id = $1"
    " GROUP BY event_type ORDER BY event_type",
    1, {OID_TEXT}};
static const pg_stmt ST_EV_DUMP = {
    "lls_events_dump",
    "SELECT tenant_id, " COLS " FROM @S.event_log WHERE tenant_id = $1 AND sequence > $2"
    " ORDER BY sequence LIMIT $3",
    3, {OID_TEXT, OID_INT8, OID_INT8}};
static const pg_stmt ST_EV_PUT = {
    "lls_events_put",
    "SELECT @S.lls_event_put($1, $2, $3, $4, $5, $6, $7, $8, $9)::int8",
    9,
    {OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_TSTZ, OID_TEXT, OID_TEXT, OID_INT8,
     OID_INT4}};

/* Takes r (NULL: the statement failed): its first row's int8. */
static int first_int(PGresult *r, int64_t *n) {
  if (r == NULL) return -1;
  *n = PQntuples(r) > 0 ? lls_pg_int8_at(r, 0, 0) : 0;
  PQclear(r);
  return 0;
}

/* The six arrays of an append, in a[0..5]: ids, types, correlation ids,
 * timestamps, languages, data. */
static int build_arrays(const lls_event *ev, size_t n, lls_buf a[6]) {
  int nullcorr = 0;
  for (int k = 0; k < 6; k++)
    if (lls_pg_arr_init(&a[k]) != 0) return -1;
  for (size_t i = 0; i < n; i++) {
    const lls_event *e = &ev[i];
    int rc = lls_pg_arr_add(&a[0], e->id.ptr, e->id.len) |
             lls_pg_arr_add(&a[1], e->type.ptr, e->type.len) |
             (e->correlation_id.ptr
                  ? lls_pg_arr_add(&a[2], e->correlation_id.ptr, e->correlation_id.len)
                  : lls_pg_arr_add_null(&a[2])) |
             lls_pg_arr_add_time(&a[3], e->timestamp) |
             lls_pg_arr_add(&a[4], e->language.ptr, e->language.len) |
             lls_pg_arr_add(&a[5], e->data.ptr, e->data.len);
    if (rc != 0) return -1;
    nullcorr |= e->correlation_id.ptr == NULL;
  }
  static const Oid elem[6] = {OID_TEXT, OID_TEXT, OID_TEXT, OID_TSTZ, OID_TEXT, OID_TEXT};
  for (int k = 0; k < 6; k++) lls_pg_arr_finish(&a[k], elem[k], n, k == 2 && nullcorr);
  return 0;
}

/* jsonb's refusals (\u0000, not JSON) said in the event's terms. */
static void data_error(lls_error *err) {
  if (!strcmp(err->sqlstate, "22P05") || !strcmp(err->sqlstate, "22P02"))
    lls_pg_metadata_error(err);
}

static int pg_append(lls_backend *b, const lls_event *ev, size_t n, int64_t *first,
                     lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  lls_buf a[6];
  memset(a, 0, sizeof a);
  int rc = -1;
  if (build_arrays(ev, n, a) != 0) {
    lls_error_oom(err);
    goto end;
  }
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  for (int k = 0; k < 6; k++) lls_pg_param_buf(&p, &a[k]);
  rc = first_int(lls_pg_write_stmt(pg, &ST_EV_APPEND, &p, err), first);
  if (rc != 0) data_error(err);
end:
  for (int k = 0; k < 6; k++) lls_buf_free(&a[k]);
  return rc;
}

/* The type as a LIKE pattern in out: a glob's `*` and `?` become `%` and
 * `_`; LIKE's own `%`, `_` and `\` are escaped. NUL-ended. */
static int to_like(lls_str t, int glob, lls_buf *out) {
  out->len = 0;
  for (size_t i = 0; i < t.len; i++) {
    char c = t.ptr[i];
    int rc = 0;
    if (glob && (c == '*' || c == '?'))
      rc = lls_buf_append(out, c == '*' ? "%" : "_", 1);
    else if (c == '%' || c == '_' || c == '\\')
      rc = lls_buf_append(out, "\\", 1) | lls_buf_append(out, &c, 1);
    else
      rc = lls_buf_append(out, &c, 1);
    if (rc != 0) return -1;
  }
  return lls_buf_append(out, "", 1);
}

/* Which statement serves q (the SQLite backend's order: correlation id,
 * type, glob prefix, time range, sequence). */
static int pick(const lls_event_query *q, pg_backend *pg, lls_error *err) {
  int timed = q->from > LLS_EVENT_MIN_US || q->to < LLS_EVENT_MAX_US;
  if (q->correlation_id.ptr) return timed ? P_CORR_T : P_CORR;
  if (q->type.ptr && !q->glob) return timed ? P_TYPE_T : P_TYPE;
  if (q->type.ptr && q->prefix.len > 0) {
    int has_upper;
    if (lls_prefix_upper(q->prefix, &pg->upper, &has_upper) != 0) return lls_error_oom(err);
    if (has_upper) return timed ? P_GLOB_T : P_GLOB;
  }
  return timed ? P_TIME : P_SEQ;
}

/* Row i of r, columns COLS from col on; strings borrowed from r. */
static void read_row(const PGresult *r, int i, int col, lls_event *e) {
  e->sequence = lls_pg_int8_at(r, i, col);
  e->id = lls_pg_str_at(r, i, col + 1);
  e->type = lls_pg_str_at(r, i, col + 2);
  e->correlation_id = PQgetisnull(r, i, col + 3) ? (lls_str){NULL, 0}
                                                  : lls_pg_str_at(r, i, col + 3);
  e->timestamp = lls_pg_time_or_zero(r, i, col + 4);
  e->language = lls_pg_str_at(r, i, col + 5);
  e->data = lls_pg_str_at(r, i, col + 6);
}

/* Takes r (NULL: the statement failed): every row to sink; *n counts. */
static int each_row(PGresult *r, int col, lls_event_sink sink, void *ud, size_t *n,
                    lls_error *err) {
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_event e = {0};
    if (col > 0) e.tenant_id = lls_pg_str_at(r, i, 0);
    read_row(r, i, col, &e);
    if (sink(ud, &e, err) != 0) {
      PQclear(r);
      return lls_error_stopped(err);
    }
    (*n)++;
  }
  PQclear(r);
  return 0;
}

static int pg_query(lls_backend *b, const lls_event_query *q, lls_event_sink sink, void *ud,
                    lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  int path = pick(q, pg, err);
  if (path < 0) return -1;
  lls_buf pat = {NULL, 0, 0};
  if (q->type.ptr && to_like(q->type, q->glob, &pat) != 0) return lls_error_oom(err);
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_time(&p, q->from);
  lls_pg_param_time(&p, q->to);
  lls_pg_param_int8(&p, q->after);
  lls_pg_param_int8(&p, q->before);
  if (pat.data)
    lls_pg_param_bytes(&p, pat.data, pat.len - 1);
  else
    lls_pg_param_null(&p);
  lls_pg_param_limit(&p, q->limit);
  int corr = path == P_CORR || path == P_CORR_T, type = path == P_TYPE || path == P_TYPE_T;
  int glob = path == P_GLOB || path == P_GLOB_T;
  if (corr)
    lls_pg_param_bytes(&p, q->correlation_id.ptr, q->correlation_id.len);
  else if (type || glob)
    lls_pg_param_bytes(&p, type ? q->type.ptr : q->prefix.ptr,
                       type ? q->type.len : q->prefix.len);
  else
    lls_pg_param_null(&p);
  if (glob)
    lls_pg_param_bytes(&p, pg->upper.data, pg->upper.len);
  else
    lls_pg_param_null(&p);
  size_t n = 0;
  int rc = each_row(lls_pg_run_stmt(pg, &ST_EV_QUERY[path][q->desc != 0], &p, 1, err), 0, sink,
                    ud, &n, err);
  lls_buf_free(&pat);
  return rc;
}

static int pg_cleanup(lls_backend *b, int64_t before, int64_t *removed, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_time(&p, before);
  return first_int(lls_pg_write_stmt(pg, &ST_EV_CLEANUP, &p, err), removed);
}

static int pg_count(lls_backend *b, int64_t *n, lls_error *err) {
  return lls_pg_tenant_count((pg_backend *)b, &ST_EV_COUNT, n, err);
}

static int pg_stats(lls_backend *b, lls_event_stats *st, lls_event_type_sink sink, void *ud,
                    lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  PGresult *r = lls_pg_run_stmt(pg, &ST_EV_TOTALS, &p, 1, err);
  if (r == NULL) return -1;
  st->events = lls_pg_int8_at(r, 0, 0);
  st->bytes = lls_pg_int8_at(r, 0, 1);
  st->oldest = lls_pg_time_or_zero(r, 0, 2);
  st->newest = lls_pg_time_or_zero(r, 0, 3);
  PQclear(r);
  if ((r = lls_pg_run_stmt(pg, &ST_EV_BY_TYPE, &p, 1, err)) == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    if (sink(ud, lls_pg_str_at(r, i, 0), lls_pg_int8_at(r, i, 1), err) != 0) {
      PQclear(r);
      return lls_error_stopped(err);
    }
  }
  PQclear(r);
  return 0;
}

static int pg_dump(lls_backend *b, int64_t after, size_t limit, lls_event_sink sink, void *ud,
                   size_t *n, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_int8(&p, after);
  lls_pg_param_limit(&p, limit);
  *n = 0;
  return each_row(lls_pg_run_stmt(pg, &ST_EV_DUMP, &p, 1, err), 1, sink, ud, n, err);
}

static int pg_put(lls_backend *b, const lls_event *e, lls_conflict on_conflict, int *written,
                  lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  lls_pg_param_tenant(&p, pg);
  lls_pg_param_bytes(&p, e->id.ptr, e->id.len);
  lls_pg_param_bytes(&p, e->type.ptr, e->type.len);
  if (e->correlation_id.ptr)
    lls_pg_param_bytes(&p, e->correlation_id.ptr, e->correlation_id.len);
  else
    lls_pg_param_null(&p);
  lls_pg_param_time(&p, e->timestamp);
  lls_pg_param_bytes(&p, e->language.ptr, e->language.len);
  lls_pg_param_bytes(&p, e->data.ptr, e->data.len);
  lls_pg_param_int8(&p, e->sequence);
  /* 0 replace, 1 keep, 2 refuse: what the function returns for a match */
  lls_pg_param_int4(&p, on_conflict == LLS_CONFLICT_REPLACE ? 0
                        : on_conflict == LLS_CONFLICT_SKIP  ? 1
                                                            : 2);
  int64_t out;
  if (first_int(lls_pg_write_stmt(pg, &ST_EV_PUT, &p, err), &out) != 0) {
    data_error(err);
    return -1;
  }
  *written = out == 0;
  if (out == 2)
    return lls_error_set(err, LLS_ECONFLICT, "event '%.*s' at %lld exists",
                         lls_pg_msg_len(e->id, 200), e->id.ptr, (long long)e->timestamp);
  return 0;
}

const lls_event_ops lls_postgres_event_ops = {
    .append = pg_append,
    .query = pg_query,
    .cleanup = pg_cleanup,
    .stats = pg_stats,
    .count = pg_count,
    .dump = pg_dump,
    .put = pg_put,
};
