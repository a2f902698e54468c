/*
 * bench/events_peer.c -- the peer of the event-log benchmarks
 * (bench/components.lua): what a user of LuaSQL would do (Debian packages
 * no LuaSQL, so this does the same thing in C through the same libsqlite3
 * and libpq the library links): one SQL text per row, built with its
 * values as escaped literals and run with sqlite3_exec / PQexec (LuaSQL's
 * conn:execute does exactly that: no prepared statements), all inside one
 * BEGIN ... COMMIT. It also times raw SQL queries, for the comparison of
 * a partitioned and a plain PostgreSQL table.
 *
 *   events_peer sqlite PATH insert TABLE N SEED [TX]  -> rows/s
 *   events_peer pg CONNINFO insert TABLE N SEED [TX]  -> rows/s
 *                                  (a transaction per TX rows; default all N)
 *   events_peer pg CONNINFO query K TENANT SQL...  -> "p50_us p99_us" per SQL
 *                                                     (each "@I" in a SQL: the run, 0..K-1)
 *
 * insert creates TABLE (the event log's columns and indexes, no
 * partitions) when it is missing. The rows are the ones the Lua side
 * appends (row_sql): the same types, correlation ids and payloads.
 */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const TYPES[] = {"agent.start", "agent.step",  "agent.stop", "tool.call",
                                    "tool.result", "llm.request", "llm.reply",  "hook.run"};

/* Row i's INSERT into table (timestamps: µs for SQLite, text for PG). */
static void row_sql(char *out, size_t cap, const char *table, int pg, long seed, long i) {
  long long ts = 1700000000LL * 1000000 + (long long)i * 1000;
  char when[64];
  if (pg)
    snprintf(when, sizeof when, "to_timestamp(%lld / 1e6)", ts);
  else
    snprintf(when, sizeof when, "%lld", ts);
  snprintf(out, cap,
           "INSERT INTO %s (tenant_id, sequence, event_id, event_type, correlation_id,"
           " timestamp, language, payload) VALUES ('peer', %ld, 'ev-%ld-%ld', '%s',"
           " 'corr-%ld', %s, 'lua', '{\"i\":%ld,\"text\":\"event number %ld\"}')",
           table, seed * 100000000L + i + 1, seed, i, TYPES[i % 8], i / 10, when, i, i);
}

static const char *DDL_SQLITE =
    "CREATE TABLE IF NOT EXISTS %s (tenant_id TEXT NOT NULL, sequence INTEGER NOT NULL,"
    " event_id TEXT NOT NULL, event_type TEXT NOT NULL, correlation_id TEXT,"
    " timestamp INTEGER NOT NULL, language TEXT NOT NULL, payload TEXT NOT NULL,"
    " PRIMARY KEY (tenant_id, sequence)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS %s_time ON %s (tenant_id, timestamp);"
    "CREATE INDEX IF NOT EXISTS %s_corr ON %s (tenant_id, correlation_id);"
    "CREATE INDEX IF NOT EXISTS %s_type ON %s (tenant_id, event_type, timestamp);";

static const char *DDL_PG =
    "SET client_min_messages = warning;"
    "CREATE TABLE IF NOT EXISTS %s (tenant_id text NOT NULL, sequence bigint NOT NULL,"
    " event_id text NOT NULL, event_type text COLLATE \"C\" NOT NULL, correlation_id text,"
    " timestamp timestamptz NOT NULL, language text NOT NULL, payload jsonb NOT NULL,"
    " PRIMARY KEY (tenant_id, sequence));"
    "CREATE INDEX IF NOT EXISTS %s_time ON %s (tenant_id, timestamp);"
    "CREATE INDEX IF NOT EXISTS %s_corr ON %s (tenant_id, correlation_id);"
    "CREATE INDEX IF NOT EXISTS %s_type ON %s (tenant_id, event_type, timestamp);";

/* The index names: the table name without its schema. */
static const char *bare(const char *table) {
  const char *dot = strrchr(table, '.');
  return dot ? dot + 1 : table;
}

static int sqlite_insert(const char *path, const char *table, long n, long seed, long tx) {
  sqlite3 *db;
  char sql[1024];
  if (sqlite3_open(path, &db) != SQLITE_OK) return fprintf(stderr, "open %s\n", path), 1;
  sqlite3_busy_timeout(db, 10000);
  snprintf(sql, sizeof sql, DDL_SQLITE, table, table, table, table, table, table, table);
  if (sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL", 0, 0, 0) ||
      sqlite3_exec(db, sql, 0, 0, 0))
    return fprintf(stderr, "%s\n", sqlite3_errmsg(db)), 1;
  double t0 = now();
  for (long i = 0; i < n; i++) {
    if (i % tx == 0) sqlite3_exec(db, "BEGIN", 0, 0, 0);
    row_sql(sql, sizeof sql, table, 0, seed, i);
    if (sqlite3_exec(db, sql, 0, 0, 0) != SQLITE_OK)
      return fprintf(stderr, "%s\n", sqlite3_errmsg(db)), 1;
    if ((i + 1) % tx == 0 || i + 1 == n) {
      if (sqlite3_exec(db, "COMMIT", 0, 0, 0) != SQLITE_OK)
        return fprintf(stderr, "%s\n", sqlite3_errmsg(db)), 1;
    }
  }
  printf("%.1f\n", (double)n / (now() - t0));
  sqlite3_close(db);
  return 0;
}

static int pg_ok(PGconn *c, PGresult *r) {
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!ok) fprintf(stderr, "%s", PQerrorMessage(c));
  PQclear(r);
  return ok;
}

static int pg_insert(PGconn *c, const char *table, long n, long seed, long tx) {
  char sql[1200];
  const char *b = bare(table);
  snprintf(sql, sizeof sql, DDL_PG, table, b, table, b, table, b, table);
  if (!pg_ok(c, PQexec(c, sql))) return 1;
  double t0 = now();
  for (long i = 0; i < n; i++) {
    if (i % tx == 0 && !pg_ok(c, PQexec(c, "BEGIN"))) return 1;
    row_sql(sql, sizeof sql, table, 1, seed, i);
    if (!pg_ok(c, PQexec(c, sql))) return 1;
    if (((i + 1) % tx == 0 || i + 1 == n) && !pg_ok(c, PQexec(c, "COMMIT"))) return 1;
  }
  printf("%.1f\n", (double)n / (now() - t0));
  return 0;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* sql with each "@I" replaced by run, for arguments that vary per run. */
static void fill_run(char *out, size_t cap, const char *sql, int run) {
  size_t n = 0;
  for (const char *p = sql; *p && n + 16 < cap; p++) {
    if (p[0] == '@' && p[1] == 'I') {
      n += (size_t)snprintf(out + n, cap - n, "%d", run);
      p++;
    } else {
      out[n++] = *p;
    }
  }
  out[n] = '\0';
}

/* Runs each SQL k times (round robin), then prints its p50 and p99. */
static int pg_query(PGconn *c, int k, const char *tenant, char **sqls, int nsql) {
  char set[300];
  snprintf(set, sizeof set, "SELECT set_config('app.current_tenant_id', '%s', false)", tenant);
  if (!pg_ok(c, PQexec(c, set))) return 1;
  double *t = calloc((size_t)k * (size_t)nsql, sizeof *t);
  if (t == NULL) return 1;
  for (int i = 0; i < k; i++) {
    for (int s = 0; s < nsql; s++) {
      char sql[4096];
      fill_run(sql, sizeof sql, sqls[s], i);
      double t0 = now();
      if (!pg_ok(c, PQexec(c, sql))) return free(t), 1;
      t[s * k + i] = (now() - t0) * 1e6;
    }
  }
  for (int s = 0; s < nsql; s++) {
    qsort(t + s * k, (size_t)k, sizeof *t, cmp);
    printf("%.0f %.0f\n", t[s * k + k / 2], t[s * k + (k * 99) / 100]);
  }
  free(t);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: see bench/events_peer.c\n");
    return 2;
  }
  if (strcmp(argv[1], "sqlite") == 0 && strcmp(argv[3], "insert") == 0 && argc >= 7)
    return sqlite_insert(argv[2], argv[4], atol(argv[5]), atol(argv[6]),
                         argc > 7 ? atol(argv[7]) : atol(argv[5]));
  PGconn *c = PQconnectdb(argv[2]);
  if (PQstatus(c) != CONNECTION_OK) return fprintf(stderr, "%s", PQerrorMessage(c)), 1;
  int rc = 2;
  if (strcmp(argv[3], "insert") == 0 && argc >= 7)
    rc = pg_insert(c, argv[4], atol(argv[5]), atol(argv[6]), argc > 7 ? atol(argv[7]) : atol(argv[5]));
  else if (strcmp(argv[3], "query") == 0)
    rc = pg_query(c, atoi(argv[4]), argv[5], argv + 6, argc - 6);
  PQfinish(c);
  return rc;
}
