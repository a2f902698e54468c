/*
 * patterns.c -- the SQLite backend's procedural-memory slots
 * (lls_pattern_ops, backend/patterns.h), also behind the memory backend's
 * components. The table (migration 9, schema.c):
 *
 *   procedural_patterns (
 *     tenant_id  TEXT NOT NULL,
 *     pattern_id TEXT NOT NULL,                 -- UUID v4, made at first record
 *     scope      TEXT NOT NULL,
 *     key        TEXT NOT NULL,
 *     value      TEXT NOT NULL,
 *     frequency  INTEGER NOT NULL CHECK (frequency > 0),
 *     first_seen INTEGER NOT NULL,              -- µs
 *     last_seen  INTEGER NOT NULL,              -- µs
 *     created_at INTEGER NOT NULL,              -- µs
 *     updated_at INTEGER NOT NULL,              -- µs
 *     PRIMARY KEY (tenant_id, scope, key, value)) WITHOUT ROWID
 *   procedural_patterns_frequency ON (tenant_id, frequency DESC,
 *     last_seen DESC, scope, key, value): learned{}
 *   procedural_patterns_scope ON (tenant_id, scope, frequency DESC,
 *     last_seen DESC, key, value): learned{scope=}
 *
 * The indexes hold learned's whole order, so it reads the first `limit`
 * entries of one index range and stops: no sort. record is one UPSERT:
 * SQLite runs it under the write lock, so two processes' increments of
 * one row serialise and none is lost.
 */
#include "backends/sqlite/patterns.h"

#include "backends/sqlite/conn.h"

#define COLS                                                                   \
  "pattern_id, scope, key, value, frequency, first_seen, last_seen, created_at," \
  " updated_at"

#define WHERE_PATTERN "tenant_id = ?1 AND scope = ?2 AND key = ?3 AND value = ?4"

static const char SQL_RECORD[] =
    "INSERT INTO procedural_patterns (tenant_id, scope, key, value, pattern_id, frequency,"
    " first_seen, last_seen, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6, ?6, ?6)"
    " ON CONFLICT (tenant_id, scope, key, value) DO UPDATE SET"
    " frequency = frequency + 1, last_seen = excluded.last_seen,"
    " updated_at = excluded.updated_at RETURNING frequency";

static const char SQL_FREQUENCY[] =
    "SELECT frequency FROM procedural_patterns WHERE " WHERE_PATTERN;

/* Two texts, so each is one index range (the frequency or the scope
 * index) whatever the arguments; LIMIT -1 is none. */
static const char SQL_LEARNED[] =
    "SELECT " COLS " FROM procedural_patterns WHERE tenant_id = ?1 AND frequency >= ?2"
    " ORDER BY frequency DESC, last_seen DESC, scope, key, value LIMIT ?3";
static const char SQL_LEARNED_SCOPE[] =
    "SELECT " COLS " FROM procedural_patterns WHERE tenant_id = ?1 AND scope = ?4"
    " AND frequency >= ?2 ORDER BY frequency DESC, last_seen DESC, key, value LIMIT ?3";

static const char SQL_DELETE[] = "DELETE FROM procedural_patterns WHERE " WHERE_PATTERN;

static const char SQL_COUNT[] =
    "SELECT count(*) FROM procedural_patterns WHERE tenant_id = ?1";

/* Pages in primary-key order; the row value compares as the key does. */
static const char SQL_DUMP_FIRST[] =
    "SELECT tenant_id, " COLS " FROM procedural_patterns WHERE tenant_id = ?1"
    " ORDER BY scope, key, value LIMIT ?5";
static const char SQL_DUMP_AFTER[] =
    "SELECT tenant_id, " COLS " FROM procedural_patterns WHERE tenant_id = ?1"
    " AND (scope, key, value) > (?2, ?3, ?4) ORDER BY scope, key, value LIMIT ?5";

#define PUT_INSERT                                                             \
  "INSERT INTO procedural_patterns (tenant_id, scope, key, value, pattern_id, frequency," \
  " first_seen, last_seen, created_at, updated_at)"                                    \
  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"                                  \
  " ON CONFLICT (tenant_id, scope, key, value)"
static const char SQL_PUT_REPLACE[] =
    PUT_INSERT " DO UPDATE SET pattern_id = excluded.pattern_id,"
    " frequency = excluded.frequency, first_seen = excluded.first_seen,"
    " last_seen = excluded.last_seen, created_at = excluded.created_at,"
    " updated_at = excluded.updated_at";
static const char SQL_PUT_KEEP[] = PUT_INSERT " DO NOTHING";

/* Binds ?1 the tenant and ?2..?4 the pattern. */
static int bind_pattern(sqlite_backend *b, sqlite3_stmt *s, lls_str scope, lls_str key,
                        lls_str value) {
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, scope, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 3, key, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 4, value, 1);
  return rc;
}

/* The row at s's current step, columns COLS from col on; strings borrowed
 * from s. -1 when SQLite ran out of memory. */
static int read_row(sqlite3_stmt *s, int col, lls_pattern *p) {
  if (column_bytes(s, col, &p->pattern_id, 1) != 0 || column_bytes(s, col + 1, &p->scope, 1) ||
      column_bytes(s, col + 2, &p->key, 1) != 0 || column_bytes(s, col + 3, &p->value, 1) != 0)
    return -1;
  p->frequency = sqlite3_column_int64(s, col + 4);
  p->first_seen = sqlite3_column_int64(s, col + 5);
  p->last_seen = sqlite3_column_int64(s, col + 6);
  p->created_at = sqlite3_column_int64(s, col + 7);
  p->updated_at = sqlite3_column_int64(s, col + 8);
  return 0;
}

/* Steps s (bound, rc the binding result) for at most one row and reads
 * its first column as an integer: 1 with *n, 0 when there is none, -1 +
 * err. Resets s. */
static int one_int(sqlite_backend *b, sqlite3_stmt *s, int rc, const char *what, int64_t *n,
                   lls_error *err) {
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  int got = rc == SQLITE_ROW;
  if (got) {
    *n = sqlite3_column_int64(s, 0);
    rc = SQLITE_DONE; /* one row per key: the change was made by the first step */
  }
  if (rc != SQLITE_DONE) got = lls_sqlite_fail(b->db, rc, what, err);
  done(s); /* after the failure is read: reset may change the message */
  return got;
}

/* Steps s (bound, rc the binding result) to its end, each row (columns
 * COLS from col on; tenant_id at col - 1 when col is 1) to sink; *n
 * counts them. Resets s. */
static int each_row(sqlite_backend *b, sqlite3_stmt *s, int rc, int col, const char *what,
                    lls_pattern_sink sink, void *ud, size_t *n, lls_error *err) {
  while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_pattern p = {0};
    if ((col > 0 && column_bytes(s, 0, &p.tenant_id, 1) != 0) || read_row(s, col, &p) != 0) {
      done(s);
      return lls_error_oom(err);
    }
    if (sink(ud, &p, err) != 0) {
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

static int sq_record(lls_backend *base, lls_str scope, lls_str key, lls_str value,
                     lls_str new_id, int64_t now, int64_t *frequency, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_RECORD, err);
  if (s == NULL) return -1;
  int rc = bind_pattern(b, s, scope, key, value);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 5, new_id, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 6, now);
  int got = one_int(b, s, rc, "pattern record", frequency, err);
  if (got < 0) return -1;
  if (!got) return lls_error_set(err, LLS_EIO, "pattern record: no frequency returned");
  return 0;
}

static int sq_frequency(lls_backend *base, lls_str scope, lls_str key, lls_str value,
                        int64_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_FREQUENCY, err);
  if (s == NULL) return -1;
  int got = one_int(b, s, bind_pattern(b, s, scope, key, value), "pattern frequency", n, err);
  if (got < 0) return -1;
  if (!got) *n = 0;
  return 0;
}

static int sq_learned(lls_backend *base, lls_str scope, int64_t min_frequency, size_t limit,
                      lls_pattern_sink sink, void *ud, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, scope.ptr ? SQL_LEARNED_SCOPE : SQL_LEARNED, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 2, min_frequency);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, limit ? clamp_limit(limit) : -1);
  if (rc == SQLITE_OK && scope.ptr) rc = bind_bytes(s, 4, scope, 1);
  size_t n = 0;
  return each_row(b, s, rc, 0, "pattern learned", sink, ud, &n, err);
}

static int sq_del(lls_backend *base, lls_str scope, lls_str key, lls_str value, int *existed,
                  lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_DELETE, err);
  if (s == NULL) return -1;
  if (lls_sqlite_run(b, s, bind_pattern(b, s, scope, key, value), "pattern delete", err) != 0)
    return -1;
  *existed = sqlite3_changes(b->db) > 0;
  return 0;
}

static int sq_count(lls_backend *base, int64_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, SQL_COUNT, err);
  if (s == NULL) return -1;
  int got = one_int(b, s, bind_tenant(b, s), "pattern count", n, err);
  if (got < 0) return -1;
  if (!got) *n = 0;
  return 0;
}

static int sq_dump(lls_backend *base, const lls_pattern *after, size_t limit,
                   lls_pattern_sink sink, void *ud, size_t *n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(b, after ? SQL_DUMP_AFTER : SQL_DUMP_FIRST, err);
  if (s == NULL) return -1;
  *n = 0;
  int rc = after ? bind_pattern(b, s, after->scope, after->key, after->value)
                 : bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 5, clamp_limit(limit));
  return each_row(b, s, rc, 1, "pattern dump", sink, ud, n, err);
}

static int sq_put(lls_backend *base, const lls_pattern *p, lls_conflict on_conflict,
                  int *written, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = lls_sqlite_sql_stmt(
      b, on_conflict == LLS_CONFLICT_REPLACE ? SQL_PUT_REPLACE : SQL_PUT_KEEP, err);
  if (s == NULL) return -1;
  int rc = bind_pattern(b, s, p->scope, p->key, p->value);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 5, p->pattern_id, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 6, p->frequency);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 7, p->first_seen);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 8, p->last_seen);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 9, p->created_at);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 10, p->updated_at);
  if (lls_sqlite_run(b, s, rc, "pattern import", err) != 0) return -1;
  *written = sqlite3_changes(b->db) > 0;
  if (!*written && on_conflict == LLS_CONFLICT_ERROR)
    return lls_error_set(err, LLS_ECONFLICT, "pattern ('%.*s', '%.*s', '%.*s') exists",
                         QUOTE_LEN(p->scope), p->scope.ptr, QUOTE_LEN(p->key), p->key.ptr,
                         QUOTE_LEN(p->value), p->value.ptr);
  return 0;
}

const lls_pattern_ops lls_sqlite_pattern_ops = {
    .record = sq_record,
    .frequency = sq_frequency,
    .learned = sq_learned,
    .del = sq_del,
    .count = sq_count,
    .dump = sq_dump,
    .put = sq_put,
};
