/*
 * events.c -- the SQLite backend's event-log slots (lls_event_ops,
 * backend/events.h), also behind the memory backend's components. The
 * tables (migration 12, schema.c):
 *
 *   event_log (
 *     tenant_id      TEXT NOT NULL,
 *     sequence       INTEGER NOT NULL CHECK (sequence > 0),
 *     event_id       TEXT NOT NULL,
 *     event_type     TEXT NOT NULL,
 *     correlation_id TEXT,                 -- NULL: none
 *     timestamp      INTEGER NOT NULL,     -- µs
 *     language       TEXT NOT NULL,
 *     payload        TEXT NOT NULL,        -- the data, JSON
 *     PRIMARY KEY (tenant_id, sequence)) WITHOUT ROWID
 *   event_log_time ON (tenant_id, timestamp)
 *   event_log_correlation ON (tenant_id, correlation_id)
 *   event_log_type ON (tenant_id, event_type, timestamp)
 *   event_log_sequences (tenant_id TEXT PRIMARY KEY, last_sequence INTEGER)
 *
 * An append bumps its tenant's counter row by the batch's size (one
 * UPSERT) and inserts the rows, in one unit: SQLite runs it under the
 * write lock, so two processes' appends serialise and their sequences
 * never overlap or leave a gap.
 *
 * A query is one of five statements, each led by one index: the
 * correlation index, the type index (an exact type, or a glob's literal
 * prefix as a range), the time index (a time range is given), else the
 * primary key. The first three name it (INDEXED BY): without statistics
 * SQLite's planner would rather walk the primary key in ORDER BY order
 * than search a secondary index and sort. The correlation index ends with
 * the primary key, so it also yields its rows in sequence order; the
 * primary-key statement marks the time terms with a unary `+` so the time
 * index stays out.
 */
#include "backends/sqlite/events.h"

#include <string.h>

#include "backends/sqlite/conn.h"
#include "base/utf8.h"

#define COLS "sequence, event_id, event_type, correlation_id, timestamp, language, payload"

static const char SQL_BUMP[] =
    "INSERT INTO event_log_sequences (tenant_id, last_sequence) VALUES (?1, ?2)"
    " ON CONFLICT (tenant_id) DO UPDATE SET"
    " last_sequence = last_sequence + excluded.last_sequence RETURNING last_sequence";
static const char SQL_RAISE[] =
    "INSERT INTO event_log_sequences (tenant_id, last_sequence) VALUES (?1, ?2)"
    " ON CONFLICT (tenant_id) DO UPDATE SET"
    " last_sequence = max(last_sequence, excluded.last_sequence)";
static const char SQL_INSERT[] =
    "INSERT INTO event_log (tenant_id, sequence, event_id, event_type, correlation_id,"
    " timestamp, language, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/* ?1 tenant, ?2/?3 time range, ?4/?5 sequence range, ?6 limit, ?7 the
 * type's GLOB (NULL: any), ?8 correlation id, ?9/?10 type bounds. */
#define SEL(IDX) "SELECT " COLS " FROM event_log" IDX " WHERE tenant_id = ?1"
#define TIME " AND timestamp >= ?2 AND timestamp < ?3"
#define XTIME " AND +timestamp >= ?2 AND +timestamp < ?3"
#define SEQ " AND sequence > ?4 AND sequence < ?5"
#define ANYTYPE " AND (?7 IS NULL OR event_type GLOB ?7)"
#define ASC " ORDER BY sequence LIMIT ?6"
#define DESC " ORDER BY sequence DESC LIMIT ?6"
#define BY_CORR SEL(" INDEXED BY event_log_correlation") " AND correlation_id = ?8" TIME SEQ ANYTYPE
#define BY_TYPE SEL(" INDEXED BY event_log_type") " AND event_type = ?9" TIME SEQ
#define BY_GLOB                                                                         \
  SEL(" INDEXED BY event_log_type") " AND event_type >= ?9 AND event_type < ?10"         \
      " AND event_type GLOB ?7" TIME SEQ
#define BY_TIME SEL(" INDEXED BY event_log_time") TIME SEQ ANYTYPE
#define BY_SEQ SEL("") SEQ XTIME ANYTYPE

enum { P_CORR, P_TYPE, P_GLOB, P_TIME, P_SEQ };
static const char *const SQL_QUERY[5][2] = {
    {BY_CORR ASC, BY_CORR DESC}, {BY_TYPE ASC, BY_TYPE DESC}, {BY_GLOB ASC, BY_GLOB DESC},
    {BY_TIME ASC, BY_TIME DESC}, {BY_SEQ ASC, BY_SEQ DESC},
};

static const char SQL_CLEANUP[] = "DELETE FROM event_log WHERE tenant_id = ?1 AND timestamp < ?2";
static const char SQL_COUNT[] = "SELECT count(*) FROM event_log WHERE tenant_id = ?1";
static const char SQL_TOTALS[] =
    "SELECT count(*), coalesce(sum(length(CAST(payload AS BLOB))), 0), min(timestamp),"
    " max(timestamp) FROM event_log WHERE tenant_id = ?1";
static const char SQL_BY_TYPE[] =
    "SELECT event_type, count(*) FROM event_log WHERE tenant_id = ?1"
    " GROUP BY event_type ORDER BY event_type";
static const char SQL_DUMP[] =
    "SELECT tenant_id, " COLS " FROM event_log WHERE tenant_id = ?1 AND sequence > ?2"
    " ORDER BY sequence LIMIT ?3";
static const char SQL_SAME[] =
    "SELECT sequence FROM event_log WHERE tenant_id = ?1 AND timestamp = ?2 AND event_id = ?3";
static const char SQL_TAKEN[] = "SELECT 1 FROM event_log WHERE tenant_id = ?1 AND sequence = ?2";
static const char SQL_DELETE_SEQ[] =
    "DELETE FROM event_log WHERE tenant_id = ?1 AND sequence = ?2";

/* Steps s (bound, rc the binding result) for at most one row, reading
 * its first column: 1 with *n, 0 when none, -1 + err. Resets s. */
static int one_int(sqlite_backend *b, sqlite3_stmt *s, int rc, const char *what, int64_t *n,
                   lls_error *err) {
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  int got = rc == SQLITE_ROW;
  if (got) {
    *n = sqlite3_column_int64(s, 0);
    rc = SQLITE_DONE; /* one row at most: a write was made by the first step */
  }
  if (rc != SQLITE_DONE) got = lls_sqlite_fail(b->db, rc, what, err);
  done(s);
  return got;
}

/* Binds ?1 the tenant (and ?2 x when sql takes it) to cached sql and
 * steps it as one_int. */
static int tenant_int(sqlite_backend *b, const char *sql, int64_t x, const char *what,
                      int64_t *n, lls_error *err) {
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, sql, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK && sqlite3_bind_parameter_count(s) >= 2) rc = sqlite3_bind_int64(s, 2, x);
  return one_int(b, s, rc, what, n, err);
}

/* Inserts e with sequence seq through s (SQL_INSERT, fetched once per
 * batch). */
static int insert(sqlite_backend *b, sqlite3_stmt *s, const lls_event *e, int64_t seq,
                  lls_error *err) {
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 2, seq);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 3, e->id, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 4, e->type, 1);
  if (rc == SQLITE_OK)
    rc = e->correlation_id.ptr ? bind_bytes(s, 5, e->correlation_id, 1) : sqlite3_bind_null(s, 5);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 6, e->timestamp);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 7, e->language, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 8, e->data, 1);
  return lls_sqlite_run(b, s, rc, "event append", err);
}

/* The counter bumped by n: the last sequence now handed out. */
static int bump(sqlite_backend *b, int64_t n, int64_t *last, lls_error *err) {
  int got = tenant_int(b, SQL_BUMP, n, "event sequence", last, err);
  if (got < 0) return -1;
  if (!got) return lls_error_set(err, LLS_EIO, "event sequence: no value returned");
  return 0;
}

static int sq_append(lls_backend *base, const lls_event *ev, size_t n, int64_t *first,
                     lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int nested;
  int64_t last;
  if (lls_sqlite_unit_begin(b, &nested, "event append", err) != 0) return -1;
  if (bump(b, (int64_t)n, &last, err) != 0) goto fail;
  *first = last - (int64_t)n + 1;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_INSERT, err);
  if (s == NULL) goto fail;
  for (size_t i = 0; i < n; i++)
    if (insert(b, s, &ev[i], *first + (int64_t)i, err) != 0) goto fail;
  if (lls_sqlite_unit_commit(b, nested, "event append", err) != 0) goto fail;
  return 0;
fail:
  lls_sqlite_unit_abort(b, nested);
  return -1;
}

/* The row at s's current step, columns COLS from col on; strings borrowed
 * from s. -1 when SQLite ran out of memory. */
static int read_row(sqlite3_stmt *s, int col, lls_event *e) {
  e->sequence = sqlite3_column_int64(s, col);
  if (column_bytes(s, col + 1, &e->id, 1) != 0 || column_bytes(s, col + 2, &e->type, 1) != 0 ||
      column_bytes(s, col + 5, &e->language, 1) != 0 || column_bytes(s, col + 6, &e->data, 1) != 0)
    return -1;
  e->correlation_id = (lls_str){NULL, 0};
  if (sqlite3_column_type(s, col + 3) != SQLITE_NULL &&
      column_bytes(s, col + 3, &e->correlation_id, 1) != 0)
    return -1;
  e->timestamp = sqlite3_column_int64(s, col + 4);
  return 0;
}

/* Steps s (bound, rc the binding result) to its end, each row to sink;
 * *n counts them. Resets s. */
static int each_row(sqlite_backend *b, sqlite3_stmt *s, int rc, int col, const char *what,
                    lls_event_sink sink, void *ud, size_t *n, lls_error *err) {
  while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_event e = {0};
    if ((col > 0 && column_bytes(s, 0, &e.tenant_id, 1) != 0) || read_row(s, col, &e) != 0) {
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

/* The type as a GLOB in out: `*` and `?` kept, `[` (GLOB's only other
 * special character) as `[[]`. */
static int to_glob(lls_str t, int glob, lls_buf *out) {
  out->len = 0;
  for (size_t i = 0; i < t.len; i++) {
    char c = t.ptr[i];
    int rc = c == '[' || (!glob && (c == '*' || c == '?'))
                 ? lls_buf_append(out, "[", 1) | lls_buf_append(out, &c, 1) |
                       lls_buf_append(out, "]", 1)
                 : lls_buf_append(out, &c, 1);
    if (rc != 0) return -1;
  }
  return lls_buf_append(out, "", 1); /* NUL-ended, not counted */
}

/* Which statement serves q (see the top of the file). Without
 * statistics the choice follows the query's shape: a correlation id is
 * the most selective; an exact type with a time range is one range of
 * the type index; any other type with a time range is served by the time
 * index (the range bounds the work, the type filters); a type with a
 * limit but no time range walks the primary key in order and stops after
 * `limit` matches (the type index would give every match to sort first);
 * a type without either reads its index (a glob through its prefix). */
static int pick(const lls_event_query *q, sqlite_backend *b, int *has_upper, lls_error *err) {
  int timed = q->from > LLS_EVENT_MIN_US || q->to < LLS_EVENT_MAX_US;
  *has_upper = 0;
  if (q->correlation_id.ptr) return P_CORR;
  if (q->type.ptr && !q->glob && (timed || !q->limit)) return P_TYPE;
  if (timed) return P_TIME;
  if (q->type.ptr && q->glob && !q->limit && q->prefix.len > 0) {
    if (lls_prefix_upper(q->prefix, &b->upper, has_upper) != 0) return lls_error_oom(err);
    if (*has_upper) return P_GLOB;
  }
  return P_SEQ;
}

static int sq_query(lls_backend *base, const lls_event_query *q, lls_event_sink sink, void *ud,
                    lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int has_upper, path = pick(q, b, &has_upper, err);
  if (path < 0) return -1;
  lls_buf pat = {NULL, 0, 0};
  if (q->type.ptr && to_glob(q->type, q->glob, &pat) != 0) return lls_error_oom(err);
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_QUERY[path][q->desc != 0], err);
  if (s == NULL) {
    lls_buf_free(&pat);
    return -1;
  }
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 2, q->from);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, q->to);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, q->after);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 5, q->before);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 6, q->limit ? clamp_limit(q->limit) : -1);
  if (rc == SQLITE_OK && path != P_TYPE)
    rc = pat.data ? sqlite3_bind_text64(s, 7, pat.data, pat.len - 1, SQLITE_STATIC, SQLITE_UTF8)
                  : sqlite3_bind_null(s, 7);
  if (rc == SQLITE_OK && path == P_CORR) rc = bind_bytes(s, 8, q->correlation_id, 1);
  if (rc == SQLITE_OK && (path == P_TYPE || path == P_GLOB))
    rc = bind_bytes(s, 9, path == P_TYPE ? q->type : q->prefix, 1);
  if (rc == SQLITE_OK && path == P_GLOB)
    rc = sqlite3_bind_text64(s, 10, b->upper.data, b->upper.len, SQLITE_STATIC, SQLITE_UTF8);
  size_t n = 0;
  int out = each_row(b, s, rc, 0, "event query", sink, ud, &n, err);
  lls_buf_free(&pat);
  return out;
}

static int sq_cleanup(lls_backend *base, int64_t before, int64_t *removed, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_CLEANUP, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 2, before);
  if (lls_sqlite_run(b, s, rc, "event cleanup", err) != 0) return -1;
  *removed = sqlite3_changes64(b->db);
  return 0;
}

static int sq_count(lls_backend *base, int64_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int got = tenant_int(b, SQL_COUNT, 0, "event count", n, err);
  if (got < 0) return -1;
  if (!got) *n = 0;
  return 0;
}

/* The totals, from s (bound, rc the binding result). Resets s. */
static int totals(sqlite_backend *b, sqlite3_stmt *s, int rc, lls_event_stats *st,
                  lls_error *err) {
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    st->events = sqlite3_column_int64(s, 0);
    st->bytes = sqlite3_column_int64(s, 1);
    st->oldest = sqlite3_column_int64(s, 2);
    st->newest = sqlite3_column_int64(s, 3);
    rc = SQLITE_DONE;
  }
  int out = rc == SQLITE_DONE ? 0 : lls_sqlite_fail(b->db, rc, "event stats", err);
  done(s);
  return out;
}

static int sq_stats(lls_backend *base, lls_event_stats *st, lls_event_type_sink sink, void *ud,
                    lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int own, ok = 0;
  memset(st, 0, sizeof *st);
  if (lls_sqlite_read_begin(b, &own, "event stats", err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_TOTALS, err);
  if (s == NULL || totals(b, s, bind_tenant(b, s), st, err) != 0) goto end;
  if ((s = lls_sqlite_sql_stmt(b, SQL_BY_TYPE, err)) == NULL) goto end;
  int rc = bind_tenant(b, s);
  while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_str t;
    if (column_bytes(s, 0, &t, 1) != 0) {
      rc = SQLITE_NOMEM;
      break;
    }
    if (sink(ud, t, sqlite3_column_int64(s, 1), err) != 0) {
      done(s);
      goto end;
    }
    rc = SQLITE_OK;
  }
  ok = rc == SQLITE_DONE || lls_sqlite_fail(b->db, rc, "event stats", err) == 0;
  done(s);
end:
  return lls_sqlite_read_end(b, own, ok, "event stats", ok ? err : NULL) == 0 && ok ? 0 : -1;
}

static int sq_dump(lls_backend *base, int64_t after, size_t limit, lls_event_sink sink, void *ud,
                   size_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_DUMP, err);
  if (s == NULL) return -1;
  *n = 0;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 2, after);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, clamp_limit(limit));
  return each_row(b, s, rc, 1, "event dump", sink, ud, n, err);
}

/* put's work inside its unit: the same event resolved, then the row
 * written with its own sequence when free, else the next one. */
static int put_row(sqlite_backend *b, const lls_event *e, lls_conflict on_conflict,
                   int *written, lls_error *err) {
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_SAME, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 2, e->timestamp);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 3, e->id, 1);
  int64_t old = 0, seq = e->sequence, x = 0;
  int same = one_int(b, s, rc, "event import", &old, err);
  if (same < 0) return -1;
  *written = !same || on_conflict == LLS_CONFLICT_REPLACE;
  if (same && on_conflict == LLS_CONFLICT_ERROR)
    return lls_error_set(err, LLS_ECONFLICT, "event '%.*s' at %lld exists", QUOTE_LEN(e->id),
                         e->id.ptr, (long long)e->timestamp);
  if (!*written) return 0;
  if (same && tenant_int(b, SQL_DELETE_SEQ, old, "event import", &x, err) < 0) return -1;
  if (seq > 0 && tenant_int(b, SQL_RAISE, seq, "event import", &x, err) < 0) return -1;
  int taken = seq > 0 ? tenant_int(b, SQL_TAKEN, seq, "event import", &x, err) : 1;
  if (taken < 0 || (taken && bump(b, 1, &seq, err) != 0)) return -1;
  sqlite3_stmt *ins = lls_sqlite_sql_stmt(b, SQL_INSERT, err);
  return ins == NULL ? -1 : insert(b, ins, e, seq, err);
}

static int sq_put(lls_backend *base, const lls_event *e, lls_conflict on_conflict, int *written,
                  lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int nested;
  if (lls_sqlite_unit_begin(b, &nested, "event import", err) != 0) return -1;
  if (put_row(b, e, on_conflict, written, err) != 0 ||
      lls_sqlite_unit_commit(b, nested, "event import", err) != 0) {
    lls_sqlite_unit_abort(b, nested);
    return -1;
  }
  return 0;
}

const lls_event_ops lls_sqlite_event_ops = {
    .append = sq_append,
    .query = sq_query,
    .cleanup = sq_cleanup,
    .stats = sq_stats,
    .count = sq_count,
    .dump = sq_dump,
    .put = sq_put,
};
