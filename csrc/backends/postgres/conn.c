/*
 * conn.c -- the PostgreSQL backend's handle (libpq): connecting and
 * migrating at open, error mapping (SQLSTATE -> lls_code), reconnecting
 * and the one transparent retry of idempotent reads, transactions and the
 * savepoints inside them, prepared statements, migrations() and check(),
 * (the vtable joining these slots and the op tables is in postgres.c).
 */
#include "backends/postgres/conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"

/* Bound on how long opening (or reconnecting) may take, unless the URL or
 * the connect_timeout option says otherwise; libpq's default is forever. */
#define DEFAULT_CONNECT_TIMEOUT "10"

#define MAX_SCHEMA 63 /* NAMEDATALEN - 1 */

/* Sessions a reconnect may win and lose again before it gives up. */
#define RECONNECT_SESSION_TRIES 3

/* Pauses between reconnect attempts grow from the first to the last. */
#define RECONNECT_PAUSE_FIRST_MS 5
#define RECONNECT_PAUSE_MAX_MS 100

/* Array buffers above this are freed after a write rather than kept for
 * the handle's lifetime (a 10k x 768-d batch needs 30 MB once). */
#define KEEP_ARRAY_BYTES ((size_t)1 << 20)

/* ----------------------------------------------------------------- errors */

/* Copies msg into out on one line: newlines become "; ", and trailing
 * whitespace (libpq ends messages with "\n") is dropped. */
static void one_line(char *out, size_t cap, const char *msg) {
  size_t o = 0;
  for (const char *s = msg; *s && o + 3 < cap; s++) {
    if (*s == '\n') {
      while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t')) o--;
      while (s[1] == ' ' || s[1] == '\t') s++;
      if (s[1] == '\0') break;
      out[o++] = ';';
      out[o++] = ' ';
    } else {
      out[o++] = *s;
    }
  }
  while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == ';')) o--;
  out[o] = '\0';
}

/* 1 when the SQLSTATE belongs to the two-character class cls. */
static int class_is(const char *state, const char *cls) {
  return state[0] == cls[0] && state[1] == cls[1];
}

/* Maps a failure to a documented code. A dead connection wins over any
 * SQLSTATE: e.g. pg_terminate_backend reports 57P01 and then hangs up. */
static lls_code classify(const char *state, int conn_bad) {
  if (conn_bad) return LLS_ECONNECTION;
  if (state == NULL || strlen(state) != 5) return LLS_EIO;
  if (class_is(state, "08")) return LLS_ECONNECTION;
  if (class_is(state, "23")) return LLS_ECONFLICT;
  if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03") ||
      !strcmp(state, "57014"))
    return LLS_EBUSY;
  if (!strcmp(state, "57P01") || !strcmp(state, "57P02") || !strcmp(state, "57P03"))
    return LLS_ECONNECTION;
  /* data_corrupted, index_corrupted: a page failed the server's checksum
   * (initdb --data-checksums) or a check, as SQLite's records do */
  if (!strcmp(state, "XX001") || !strcmp(state, "XX002")) return LLS_EINTEGRITY;
  return LLS_EIO;
}

/* 1 when a failure ended the session. libpq can notice that late: a send
 * to a server that hung up while the connection sat idle (pg_ctl -m
 * immediate) fails with "server closed the connection unexpectedly" while
 * PQstatus still says CONNECTION_OK, until the EOF waiting in the socket is
 * read; and a FATAL error (pg_terminate_backend) arrives before the hang-up.
 * For libpq's own errors the socket is read (without blocking) to see. */
static int session_ended(pg_backend *pg, const PGresult *r, const char *state) {
  if (PQstatus(pg->conn) == CONNECTION_BAD) return 1;
  const char *sev = r ? PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
  if (sev != NULL && (!strcmp(sev, "FATAL") || !strcmp(sev, "PANIC"))) return 1;
  if (state != NULL) return 0; /* the server answered: its session goes on */
  PQconsumeInput(pg->conn);
  return PQstatus(pg->conn) == CONNECTION_BAD;
}

/* Fills *err from a failed result (r may be NULL) or from the connection's
 * last error, and marks the connection lost when the failure ended the
 * session. Always returns -1. */
static int pg_error(pg_backend *pg, const PGresult *r, lls_error *err) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
  int bad = session_ended(pg, r, state);
  if (bad) pg->lost = 1;
  char msg[sizeof err->message];

  if (primary != NULL && *primary) {
    if (detail != NULL && *detail)
      snprintf(msg, sizeof msg, "%s (%s)", primary, detail);
    else
      snprintf(msg, sizeof msg, "%s", primary);
  } else {
    const char *m = r ? PQresultErrorMessage(r) : "";
    if (m == NULL || *m == '\0') m = PQerrorMessage(pg->conn);
    one_line(msg, sizeof msg, m);
    if (*msg == '\0') snprintf(msg, sizeof msg, "unknown PostgreSQL error");
  }
  lls_error_set(err, classify(state, bad), "%s", msg);
  if (state != NULL) snprintf(err->sqlstate, sizeof err->sqlstate, "%s", state);
  return -1;
}

void lls_pg_metadata_error(lls_error *err) {
  char state[sizeof err->sqlstate];
  char msg[sizeof err->message];
  memcpy(state, err->sqlstate, sizeof state);
  snprintf(msg, sizeof msg, "%s", err->message);
  if (!strcmp(state, "22P05"))
    lls_error_set(err, LLS_EINVALID,
                  "metadata contains \\u0000, which PostgreSQL jsonb cannot store (%s)", msg);
  else if (!strcmp(state, "22P02"))
    lls_error_set(err, LLS_EINVALID, "metadata is not valid JSON (%s)", msg);
  else
    return;
  memcpy(err->sqlstate, state, sizeof state);
}

int lls_pg_msg_len(lls_str s, size_t max) {
  size_t n = s.len;
  if (n > max) {
    n = max;
    while (n > 0 && ((unsigned char)s.ptr[n] & 0xC0) == 0x80) n--;
  }
  return (int)n;
}

/* ------------------------------------------------------------ connection */

/* libpq prints NOTICEs (e.g. "schema already exists, skipping") to stderr
 * by default; a library must not write to its host's terminal. */
static void quiet_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* Sets app.current_tenant_id for the session; the tenant is bound as a
 * parameter because tenant ids may contain quotes or SQL. */
static int set_tenant(pg_backend *pg, lls_error *err) {
  const char *v[1] = {pg->tenant};
  int len[1] = {(int)pg->tenant_len};
  int fmt[1] = {1};
  Oid types[1] = {OID_TEXT};
  PGresult *r = PQexecParams(pg->conn, SQL_SET_TENANT, 1, types, v, len, fmt, 1);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    pg_error(pg, r, err);
    PQclear(r);
    return -1;
  }
  PQclear(r);
  pg->tenant_set = 1;
  return 0;
}

int lls_pg_conn_lost(const pg_backend *pg) {
  return pg->lost || PQstatus(pg->conn) != CONNECTION_OK;
}

/* The connection's connect_timeout in seconds, as libpq applies it (from
 * the URL or the option); 0 when unset. */
static long connect_timeout_s(PGconn *conn) {
  PQconninfoOption *opts = PQconninfo(conn);
  long secs = 0;
  if (opts == NULL) return 0;
  for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
    if (!strcmp(o->keyword, "connect_timeout") && o->val != NULL) secs = strtol(o->val, NULL, 10);
  PQconninfoFree(opts);
  return secs > 0 ? secs : 0;
}

/* Re-establishes a lost session; 0 when connected. A restarting server
 * refuses connections, or answers that it is shutting down or starting
 * up, for a moment: the attempts go on, with growing pauses, until
 * connect_timeout seconds have passed (a single one when it is 0). The
 * credentials worked before, so waiting is worth it. */
static int reconnect(pg_backend *pg) {
  double deadline = lls_mono_us() + (double)connect_timeout_s(pg->conn) * 1e6;
  long pause_ms = RECONNECT_PAUSE_FIRST_MS;
  for (;;) {
    PQreset(pg->conn);
    if (PQstatus(pg->conn) == CONNECTION_OK) return 0;
    double left_ms = (deadline - lls_mono_us()) / 1000.0;
    if (left_ms <= 0) return -1;
    if ((double)pause_ms > left_ms) pause_ms = (long)left_ms + 1;
    struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    pause_ms = pause_ms * 2 < RECONNECT_PAUSE_MAX_MS ? pause_ms * 2 : RECONNECT_PAUSE_MAX_MS;
  }
}

/* ensure_conn's answer when no session could be had: retrying is no use. */
#define NO_SESSION (-2)

/* Makes sure the connection is usable. A connection lost outside a
 * transaction is re-established (the failure was already reported to the
 * call that saw it); inside one, the transaction is gone, so reconnecting
 * silently would run the rest of it in autocommit. Returns 0, -1 (setting
 * the tenant failed) or NO_SESSION (lost inside a transaction, or the
 * reconnect failed). */
static int ensure_conn(pg_backend *pg, lls_error *err) {
  if (!lls_pg_conn_lost(pg) && pg->tenant_set) return 0;
  if (lls_pg_conn_lost(pg)) {
    if (pg->txdepth > 0 || pg->own_tx) {
      lls_error_set(err, LLS_ECONNECTION, "connection to the server was lost inside a transaction");
      return NO_SESSION;
    }
    /* A session won while the server restarts may end again at once (the
     * old server's last moments, the new one's first): its first statement
     * (the tenant) shows it, and that still counts as reconnecting, not as
     * the caller's retry. */
    for (int tries = 0;; tries++) {
      int rc = reconnect(pg);
      pg->prepared = 0; /* prepared statements and settings die with the session */
      for (int i = 0; i < pg->ncst; i++) pg->cst[i].prepared = 0;
      pg->tenant_set = 0;
      pg->lost = 0;
      if (rc != 0) {
        char msg[sizeof err->message];
        one_line(msg, sizeof msg, PQerrorMessage(pg->conn));
        lls_error_set(err, LLS_ECONNECTION, "could not reconnect: %s", msg);
        return NO_SESSION;
      }
      if (set_tenant(pg, err) == 0) return 0;
      if (!lls_pg_conn_lost(pg) || tries == RECONNECT_SESSION_TRIES - 1) return -1;
    }
  }
  /* Never run a statement without the tenant set: even when setting it
   * failed on an earlier attempt, the next call tries again first. */
  return set_tenant(pg, err);
}

/* Prepares a statement on this connection unless *prepared says it is. */
static int prepare_once(pg_backend *pg, const char *name, const char *sql, int nparams,
                        const Oid *types, int *prepared, lls_error *err) {
  if (*prepared) return 0;
  PGresult *r = PQprepare(pg->conn, name, sql, nparams, types);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    pg_error(pg, r, err);
    PQclear(r);
    return -1;
  }
  PQclear(r);
  *prepared = 1;
  return 0;
}

/* Ends the validity of the last get()'s value. */
static void release_held(pg_backend *pg) {
  PQclear(pg->held);
  pg->held = NULL;
}

void lls_pg_param_tenant(pg_params *p, const pg_backend *pg) {
  lls_pg_param_bytes(p, pg->tenant, pg->tenant_len);
}

/* Where a statement is and whether it is prepared: one of lls_pg_stmts,
 * or a component's. */
typedef struct stmt_ref {
  int st;       /* index into lls_pg_stmts, or -1 */
  int cst;      /* index into pg->cst, or -1 */
} stmt_ref;

static int prepare_ref(pg_backend *pg, stmt_ref ref, lls_error *err) {
  if (ref.st >= 0) {
    int done = (pg->prepared & (UINT64_C(1) << ref.st)) != 0;
    if (prepare_once(pg, lls_pg_stmts[ref.st].name, pg->sql[ref.st], lls_pg_stmts[ref.st].nparams,
                     lls_pg_stmts[ref.st].types, &done, err) != 0)
      return -1;
    pg->prepared |= UINT64_C(1) << ref.st;
    return 0;
  }
  const pg_stmt *d = pg->cst[ref.cst].def;
  return prepare_once(pg, d->name, pg->cst[ref.cst].sql, d->nparams, d->types,
                      &pg->cst[ref.cst].prepared, err);
}

static const char *ref_name(const pg_backend *pg, stmt_ref ref) {
  return ref.st >= 0 ? lls_pg_stmts[ref.st].name : pg->cst[ref.cst].def->name;
}

static PGresult *run_ref(pg_backend *pg, stmt_ref ref, const pg_params *p, int idempotent,
                         lls_error *err) {
  release_held(pg);
  if (p->toobig) {
    lls_error_set(err, LLS_EINVALID, "value too large for PostgreSQL (2 GB limit)");
    return NULL;
  }
  for (int attempt = 0;; attempt++) {
    int may_retry = idempotent && attempt == 0 && pg->txdepth == 0 && !pg->own_tx;
    int rc = ensure_conn(pg, err);
    if (rc == 0 && prepare_ref(pg, ref, err) == 0) {
      PGresult *r = PQexecPrepared(pg->conn, ref_name(pg, ref), p->n, p->v, p->len, p->fmt, 1);
      ExecStatusType s = PQresultStatus(r);
      if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) return r;
      pg_error(pg, r, err);
      PQclear(r);
    }
    if (rc == NO_SESSION || !may_retry || !lls_pg_conn_lost(pg)) return NULL;
  }
}

PGresult *lls_pg_run(pg_backend *pg, int st, const pg_params *p, int idempotent, lls_error *err) {
  return run_ref(pg, (stmt_ref){st, -1}, p, idempotent, err);
}

/* The cache slot of a component statement, filling in the schema the
 * first time; -1 + err when out of memory or slots. */
static int cst_slot(pg_backend *pg, const pg_stmt *def, lls_error *err) {
  for (int i = 0; i < pg->ncst; i++)
    if (pg->cst[i].def == def) return i;
  if (pg->ncst == LLS_PG_MAX_CSTMT)
    return lls_error_set(err, LLS_EINVALID, "too many component statements (%d)", pg->ncst);
  char *sql = lls_pg_fill_schema(def->sql, pg->schema);
  if (sql == NULL) return lls_error_oom(err);
  pg->cst[pg->ncst].def = def;
  pg->cst[pg->ncst].sql = sql;
  pg->cst[pg->ncst].prepared = 0;
  return pg->ncst++;
}

PGresult *lls_pg_run_stmt(pg_backend *pg, const pg_stmt *def, const pg_params *p, int idempotent,
                          lls_error *err) {
  int i = cst_slot(pg, def, err);
  if (i < 0) return NULL;
  return run_ref(pg, (stmt_ref){-1, i}, p, idempotent, err);
}

int lls_pg_command(pg_backend *pg, const char *sql, PGresult **r_out, lls_error *err) {
  release_held(pg);
  if (ensure_conn(pg, err) != 0) return -1;
  PGresult *r = PQexec(pg->conn, sql);
  ExecStatusType s = PQresultStatus(r);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    pg_error(pg, r, err);
    PQclear(r);
    return -1;
  }
  if (r_out)
    *r_out = r;
  else
    PQclear(r);
  return 0;
}

/* ---------------------------------------------------------- units of work */

int lls_pg_raw_exec(pg_backend *pg, const char *sql, int binary, PGresult **r_out,
                    lls_error *err) {
  release_held(pg);
  if (lls_pg_conn_lost(pg))
    return lls_error_set(err, LLS_ECONNECTION,
                         "connection to the server was lost inside a transaction");
  PGresult *r = binary ? PQexecParams(pg->conn, sql, 0, NULL, NULL, NULL, NULL, 1)
                       : PQexec(pg->conn, sql);
  ExecStatusType s = PQresultStatus(r);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    pg_error(pg, r, err);
    PQclear(r);
    return -1;
  }
  if (r_out)
    *r_out = r;
  else
    PQclear(r);
  return 0;
}

int lls_pg_unit_begin(pg_backend *pg, int read_only, lls_error *err) {
  if (pg->txdepth > 0)
    return read_only ? 0 : lls_pg_raw_exec(pg, "SAVEPOINT lls_vec", 0, NULL, err);
  /* lls_pg_command may reconnect: nothing has been sent yet. */
  if (lls_pg_command(pg, read_only ? "BEGIN READ ONLY" : "BEGIN", NULL, err) != 0) return -1;
  pg->own_tx = 1;
  return 0;
}

int lls_pg_unit_end(pg_backend *pg, int read_only, int ok, lls_error *err) {
  lls_error scratch;
  if (err == NULL) err = &scratch;
  if (pg->own_tx) {
    pg->own_tx = 0;
    if (!ok) {
      if (!lls_pg_conn_lost(pg)) PQclear(PQexec(pg->conn, "ROLLBACK"));
      return -1;
    }
    PGresult *r;
    if (lls_pg_raw_exec(pg, "COMMIT", 0, &r, err) != 0) return -1;
    int rolled_back = strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
    PQclear(r);
    if (rolled_back)
      return lls_error_set(err, LLS_EIO, "transaction was aborted and rolled back");
    return 0;
  }
  if (read_only) return ok ? 0 : -1;
  if (ok && lls_pg_raw_exec(pg, "RELEASE SAVEPOINT lls_vec", 0, NULL, err) == 0) return 0;
  if (!lls_pg_conn_lost(pg))
    PQclear(PQexec(pg->conn, "ROLLBACK TO SAVEPOINT lls_vec; RELEASE SAVEPOINT lls_vec"));
  return -1;
}

int lls_pg_cursor_open(pg_backend *pg, int st, const pg_params *p, lls_error *err) {
  if (lls_pg_unit_begin(pg, 1, err) != 0) return -1;
  PGresult *r = lls_pg_run(pg, st, p, 0, err);
  if (r == NULL) {
    lls_pg_unit_end(pg, 1, 0, NULL);
    return -1;
  }
  PQclear(r);
  return 0;
}

int lls_pg_cursor_close(pg_backend *pg, const char *name, int ok, lls_error *err) {
  if (pg->own_tx) {
    lls_pg_unit_end(pg, 1, ok, NULL);
    return ok ? 0 : -1;
  }
  char sql[64];
  snprintf(sql, sizeof sql, "CLOSE %s", name);
  lls_error scratch;
  if (lls_pg_raw_exec(pg, sql, 0, NULL, ok ? err : &scratch) != 0) return -1;
  return ok ? 0 : -1;
}

/* A write statement, under a savepoint inside the caller's transaction. */
static PGresult *write_ref(pg_backend *pg, stmt_ref ref, const pg_params *p, lls_error *err) {
  if (pg->txdepth == 0) return run_ref(pg, ref, p, 0, err);
  if (lls_pg_unit_begin(pg, 0, err) != 0) return NULL;
  PGresult *r = run_ref(pg, ref, p, 0, err);
  if (lls_pg_unit_end(pg, 0, r != NULL, err) != 0) {
    PQclear(r);
    return NULL;
  }
  return r;
}

PGresult *lls_pg_write_one(pg_backend *pg, int st, const pg_params *p, lls_error *err) {
  return write_ref(pg, (stmt_ref){st, -1}, p, err);
}

PGresult *lls_pg_write_stmt(pg_backend *pg, const pg_stmt *def, const pg_params *p,
                            lls_error *err) {
  int i = cst_slot(pg, def, err);
  if (i < 0) return NULL;
  return write_ref(pg, (stmt_ref){-1, i}, p, err);
}

void lls_pg_trim_arrays(pg_backend *pg) {
  for (int a = 0; a < V_COUNT; a++)
    if (pg->varr[a].cap > KEEP_ARRAY_BYTES) lls_buf_free(&pg->varr[a]);
}

/* --------------------------------------------------------------- opening */

static int valid_schema(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > MAX_SCHEMA) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return 0;
  }
  return 1;
}

/* The highest applied migration, 0 when the schema or the table does not
 * exist yet. Reading it first means an up-to-date database needs no DDL
 * (and no CREATE privilege) to open. */
static int schema_version(pg_backend *pg, int *version, lls_error *err) {
  char *sql = lls_pg_fill_schema(SQL_SCHEMA_VERSION, pg->schema);
  if (sql == NULL) return lls_error_oom(err);
  PGresult *r = PQexec(pg->conn, sql);
  free(sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    /* undefined_table, invalid_schema_name: not migrated yet */
    if (state != NULL && (!strcmp(state, "42P01") || !strcmp(state, "3F000"))) {
      PQclear(r);
      *version = 0;
      return 0;
    }
    pg_error(pg, r, err);
    PQclear(r);
    return -1;
  }
  *version = atoi(PQgetvalue(r, 0, 0));
  PQclear(r);
  return 0;
}

/* Runs parameterless SQL (DDL, transaction control) with the schema
 * filled in. */
static int exec_filled(pg_backend *pg, const char *tmpl, lls_error *err) {
  char *sql = lls_pg_fill_schema(tmpl, pg->schema);
  if (sql == NULL) return lls_error_oom(err);
  PGresult *r = PQexec(pg->conn, sql);
  free(sql);
  ExecStatusType s = PQresultStatus(r);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    pg_error(pg, r, err);
    PQclear(r);
    return -1;
  }
  PQclear(r);
  return 0;
}

/* Inserts m's row into llmspell_migrations (applied_at: the server's now). */
static int record_migration(pg_backend *pg, const pg_migration *m, lls_error *err) {
  char *sql = lls_pg_fill_schema(SQL_RECORD_MIGRATION, pg->schema);
  if (sql == NULL) return lls_error_oom(err);
  char ver[16];
  snprintf(ver, sizeof ver, "%d", m->version);
  const char *v[2] = {ver, m->name};
  PGresult *r = PQexecParams(pg->conn, sql, 2, NULL, v, NULL, NULL, 0);
  free(sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    pg_error(pg, r, err);
    PQclear(r);
    return -1;
  }
  PQclear(r);
  return 0;
}

/* A database migrated by a newer library: refuse rather than guess. */
static int too_new(const pg_backend *pg, int version, lls_error *err) {
  return lls_error_set(err, LLS_EVERSION,
                       "schema \"%s\" is at version %d; this library knows up to %d",
                       pg->schema, version, lls_pg_n_migrations);
}

/* The body of the migration transaction: lock, re-read the version (another
 * opener may have migrated while we waited), apply what is missing. */
static int migrate_locked(pg_backend *pg, lls_error *err) {
  const char *v[1] = {pg->schema};
  char lock_sql[128];
  snprintf(lock_sql, sizeof lock_sql, SQL_MIGRATION_LOCK, MIGRATION_LOCK_CLASS);
  PGresult *r = PQexecParams(pg->conn, lock_sql, 1, NULL, v, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    pg_error(pg, r, err);
    PQclear(r);
    return -1;
  }
  PQclear(r);
  if (exec_filled(pg, SQL_MIGRATIONS_TABLE, err) != 0) return -1;
  int version;
  if (schema_version(pg, &version, err) != 0) return -1;
  if (version > lls_pg_n_migrations) return too_new(pg, version, err);
  for (int i = 0; i < lls_pg_n_migrations; i++) {
    if (lls_pg_migration_scripts[i].version <= version) continue;
    if (exec_filled(pg, lls_pg_migration_scripts[i].sql, err) != 0) return -1;
    if (record_migration(pg, &lls_pg_migration_scripts[i], err) != 0) return -1;
  }
  return 0;
}

/* Brings the schema to migration lls_pg_n_migrations; LLS_EVERSION when it
 * is newer. Only an out-of-date schema opens a transaction and takes the
 * lock. */
static int migrate(pg_backend *pg, lls_error *err) {
  int version;
  if (schema_version(pg, &version, err) != 0) return -1;
  if (version == lls_pg_n_migrations) return 0;
  if (version > lls_pg_n_migrations) return too_new(pg, version, err);
  if (exec_filled(pg, "BEGIN", err) != 0) return -1;
  if (migrate_locked(pg, err) != 0) {
    PQclear(PQexec(pg->conn, "ROLLBACK"));
    return -1;
  }
  return exec_filled(pg, "COMMIT", err);
}

void lls_pg_close(lls_backend *b);

/* Reads and checks the options open() takes: *schema (default
 * "llmspell"), *timeout (the option's text, NULL when absent) and *secs. */
static int parse_options(lls_config *cfg, const char **schema, const char **timeout,
                         long long *secs, lls_error *err) {
  *schema = lls_config_get(cfg, "schema");
  *timeout = lls_config_get(cfg, "connect_timeout");
  if (*schema == NULL) *schema = "llmspell";
  if (!valid_schema(*schema))
    return lls_error_set(err, LLS_EINVALID,
                         "option 'schema' must be an identifier ([A-Za-z_][A-Za-z0-9_]*, "
                         "at most %d characters), got '%s'", MAX_SCHEMA, *schema);
  return lls_config_int(cfg, "connect_timeout", 10, 0, 86400, secs, err);
}

int lls_pg_check_options(lls_config *cfg, lls_error *err) {
  const char *schema, *timeout;
  long long secs;
  return parse_options(cfg, &schema, &timeout, &secs, err);
}

/* Connects to cfg->location (URL or conninfo), sets the tenant, and
 * migrates the schema. Options: schema, connect_timeout (seconds). */
lls_backend *lls_pg_open(lls_config *cfg, lls_error *err) {
  const char *schema, *timeout;
  long long secs;
  char timeout_s[24];
  if (parse_options(cfg, &schema, &timeout, &secs, err) != 0) return NULL;
  snprintf(timeout_s, sizeof timeout_s, "%lld", secs);

  pg_backend *pg = calloc(1, sizeof *pg);
  if (pg == NULL) goto oom;
  pg->tenant = strdup(cfg->tenant);
  pg->schema = strdup(schema);
  if (pg->tenant == NULL || pg->schema == NULL) goto oom;
  pg->tenant_len = strlen(pg->tenant);
  for (int i = 0; i < ST_COUNT; i++)
    if ((pg->sql[i] = lls_pg_fill_schema(lls_pg_stmts[i].sql, schema)) == NULL) goto oom;

  /* libpq processes keywords in order, later ones winning: what precedes
   * dbname (the expanded URL or conninfo) is a default the caller's string
   * may override; what follows is imposed. Keys are sent as UTF-8 bytes,
   * so the client encoding is not negotiable. */
  const char *kw[6], *val[6];
  int k = 0;
  kw[k] = "application_name", val[k++] = "llmspell.storage";
  if (timeout == NULL) kw[k] = "connect_timeout", val[k++] = DEFAULT_CONNECT_TIMEOUT;
  kw[k] = "dbname", val[k++] = cfg->location ? cfg->location : "";
  if (timeout != NULL) kw[k] = "connect_timeout", val[k++] = timeout_s;
  kw[k] = "client_encoding", val[k++] = "UTF8";
  kw[k] = NULL, val[k] = NULL;
  pg->conn = PQconnectdbParams(kw, val, 1);
  if (pg->conn == NULL) goto oom;
  PQsetNoticeProcessor(pg->conn, quiet_notice, NULL);
  if (PQstatus(pg->conn) != CONNECTION_OK) {
    char msg[sizeof err->message];
    one_line(msg, sizeof msg, PQerrorMessage(pg->conn));
    lls_error_set(err, LLS_ECONNECTION, "%s", msg);
    goto fail;
  }
  if (set_tenant(pg, err) != 0 || migrate(pg, err) != 0) goto fail;
  snprintf(pg->location, sizeof pg->location, "host=%s port=%s dbname=%s user=%s",
           PQhost(pg->conn), PQport(pg->conn), PQdb(pg->conn), PQuser(pg->conn));
  return &pg->base;
oom:
  lls_error_oom(err);
fail:
  if (pg != NULL) lls_pg_close(&pg->base);
  return NULL;
}

/* Frees everything. The server rolls back an open transaction when the
 * session ends, so closing needs no round trip. */
void lls_pg_close(lls_backend *b) {
  pg_backend *pg = (pg_backend *)b;
  release_held(pg);
  if (pg->conn != NULL) PQfinish(pg->conn);
  for (int i = 0; i < ST_COUNT; i++) free(pg->sql[i]);
  for (int i = 0; i < pg->ncst; i++) free(pg->cst[i].sql);
  for (int i = 0; i < A_COUNT; i++) lls_buf_free(&pg->arr[i]);
  for (int i = 0; i < V_COUNT; i++) lls_buf_free(&pg->varr[i]);
  lls_buf_free(&pg->upper);
  free(pg->tenant);
  free(pg->schema);
  free(pg);
}

/* "host=... port=... dbname=... user=..." -- never the password. */
const char *lls_pg_location(lls_backend *b) { return ((pg_backend *)b)->location; }

/* ----------------------------------------------------------- transactions */

/* depth 0: BEGIN; depth d > 0: SAVEPOINT lls_d. */
int lls_pg_begin(lls_backend *b, int depth, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  char sql[48];
  if (depth == 0)
    snprintf(sql, sizeof sql, "BEGIN");
  else
    snprintf(sql, sizeof sql, "SAVEPOINT lls_%d", depth);
  if (lls_pg_command(pg, sql, NULL, err) != 0) return -1;
  pg->txdepth = depth + 1;
  return 0;
}

/* REPEATABLE READ: every statement of the transaction sees the snapshot of
 * its first one (READ COMMITTED would let each export page see newer
 * commits); READ ONLY: it can never fail on a write conflict. */
int lls_pg_begin_read(lls_backend *b, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (lls_pg_command(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", NULL, err) != 0)
    return -1;
  pg->txdepth = 1;
  return 0;
}

/* depth 0: COMMIT; depth d > 0: RELEASE SAVEPOINT lls_d. PostgreSQL answers
 * COMMIT of a transaction aborted by an earlier error with a silent
 * ROLLBACK; that is reported as a failure, not as success. */
int lls_pg_commit(lls_backend *b, int depth, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (depth > 0) {
    char sql[48];
    snprintf(sql, sizeof sql, "RELEASE SAVEPOINT lls_%d", depth);
    if (lls_pg_command(pg, sql, NULL, err) != 0) return -1;
    pg->txdepth = depth;
    return 0;
  }
  PGresult *r;
  int rc = lls_pg_command(pg, "COMMIT", &r, err);
  pg->txdepth = 0; /* a failed COMMIT ends the transaction too */
  if (rc != 0) return -1;
  int rolled_back = strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
  PQclear(r);
  if (rolled_back)
    return lls_error_set(err, LLS_EIO,
                         "transaction was aborted by an earlier error and rolled back");
  return 0;
}

/* depth 0: ROLLBACK; depth d > 0: ROLLBACK TO + RELEASE lls_d. With the
 * connection gone the server has already discarded the transaction, so
 * that counts as done (no reconnect, no wait). */
int lls_pg_rollback(lls_backend *b, int depth, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  release_held(pg);
  pg->txdepth = depth;
  if (lls_pg_conn_lost(pg)) return 0;
  char sql[96];
  if (depth == 0)
    snprintf(sql, sizeof sql, "ROLLBACK");
  else
    snprintf(sql, sizeof sql, "ROLLBACK TO SAVEPOINT lls_%d; RELEASE SAVEPOINT lls_%d", depth,
             depth);
  PGresult *r = PQexec(pg->conn, sql);
  int rc = 0;
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    pg_error(pg, r, err); /* finds out whether the session is gone */
    rc = lls_pg_conn_lost(pg) ? 0 : -1;
  }
  PQclear(r);
  return rc;
}

/* ------------------------------------------------- migrations and check */

/* One row per applied migration: "001_kv_store", created_at = applied_at. */
int lls_pg_migrations(lls_backend *b, lls_rows *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  PGresult *r = lls_pg_run(pg, ST_MIGRATIONS, &p, 1, err);
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    char key[96];
    uint32_t v = 0;
    const unsigned char *vp = (const unsigned char *)PQgetvalue(r, i, 0);
    if (PQgetlength(r, i, 0) == 4)
      v = (uint32_t)vp[0] << 24 | (uint32_t)vp[1] << 16 | (uint32_t)vp[2] << 8 | vp[3];
    int klen = snprintf(key, sizeof key, "%03u_%.*s", (unsigned)v, PQgetlength(r, i, 1),
                        PQgetvalue(r, i, 1));
    if (klen < 0 || (size_t)klen >= sizeof key) klen = (int)strlen(key);
    lls_row *row = lls_rows_add(out, key, (size_t)klen, "", 0);
    if (row == NULL) {
      PQclear(r);
      return lls_error_oom(err);
    }
    row->created_at = row->updated_at = lls_pg_time_or_zero(r, i, 2);
  }
  PQclear(r);
  return 0;
}

/* Appends one problem row; -1 (err filled) when out of memory. */
static int problem(lls_rows *out, const char *where, size_t wlen, lls_error *err,
                   const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static int problem(lls_rows *out, const char *where, size_t wlen, lls_error *err,
                   const char *fmt, ...) {
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (len < 0) len = 0;
  if ((size_t)len >= sizeof what) len = (int)sizeof what - 1;
  if (lls_rows_add(out, where, wlen, what, (size_t)len) == NULL) return lls_error_oom(err);
  return 0;
}

#define MIGRATIONS_WHERE "llmspell_migrations"

/* The recorded migrations against the table this library applies: each
 * known one present under its name, nothing newer. */
static int check_migrations(pg_backend *pg, lls_rows *out, lls_error *err) {
  pg_params p = {0};
  PGresult *r = lls_pg_run(pg, ST_MIGRATIONS, &p, 1, err);
  if (r == NULL) return -1;
  const size_t wl = sizeof MIGRATIONS_WHERE - 1;
  int rc = 0, rows = PQntuples(r);
  for (int m = 0; m < lls_pg_n_migrations && rc == 0; m++) {
    int row = -1;
    for (int i = 0; i < rows; i++)
      if (lls_pg_int4_at(r, i, 0) == lls_pg_migration_scripts[m].version) row = i;
    if (row < 0) {
      rc = problem(out, MIGRATIONS_WHERE, wl, err, "migration %03d_%s was not applied",
                   lls_pg_migration_scripts[m].version, lls_pg_migration_scripts[m].name);
      continue;
    }
    lls_str name = lls_pg_str_at(r, row, 1);
    if (name.len != strlen(lls_pg_migration_scripts[m].name) ||
        memcmp(name.ptr, lls_pg_migration_scripts[m].name, name.len))
      rc = problem(out, MIGRATIONS_WHERE, wl, err,
                   "migration %d is recorded as '%.*s', this library applies '%s'",
                   lls_pg_migration_scripts[m].version, lls_pg_msg_len(name, 100), name.ptr,
                   lls_pg_migration_scripts[m].name);
  }
  for (int i = 0; i < rows && rc == 0; i++) {
    int v = lls_pg_int4_at(r, i, 0);
    if (v < 1 || v > lls_pg_n_migrations) {
      lls_str name = lls_pg_str_at(r, i, 1);
      rc = problem(out, MIGRATIONS_WHERE, wl, err,
                   "migration %d ('%.*s') is unknown to this library (it knows 1 to %d)", v,
                   lls_pg_msg_len(name, 100), name.ptr, lls_pg_n_migrations);
    }
  }
  PQclear(r);
  return rc;
}

/* PostgreSQL has no cheap whole-database integrity check (corruption is
 * the server's to detect); what can go wrong at this level is checked
 * instead: the schema is the one this library knows, every tenant table
 * still has row-level security enabled, forced and its policy, and this
 * tenant's collection counts agree with their rows. */
int lls_pg_check(lls_backend *b, lls_rows *problems, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (check_migrations(pg, problems, err) != 0) return -1;

  pg_params p = {0};
  PGresult *r = lls_pg_run(pg, ST_CHECK_RLS, &p, 1, err);
  if (r == NULL) return -1;
  int rc = 0;
  for (int i = 0, rows = PQntuples(r); i < rows && rc == 0; i++) {
    lls_str t = lls_pg_str_at(r, i, 0);
    int exists = PQgetvalue(r, i, 1)[0], enabled = PQgetvalue(r, i, 2)[0];
    int forced = PQgetvalue(r, i, 3)[0], policy = PQgetvalue(r, i, 4)[0];
    if (!exists) {
      rc = problem(problems, t.ptr, t.len, err, "table is missing");
      continue;
    }
    if (!enabled) rc = problem(problems, t.ptr, t.len, err, "row-level security is disabled");
    if (rc == 0 && !forced)
      rc = problem(problems, t.ptr, t.len, err,
                   "row-level security is not forced (the table owner bypasses it)");
    if (rc == 0 && !policy)
      rc = problem(problems, t.ptr, t.len, err, "policy %.*s_tenant_isolation is missing",
                   lls_pg_msg_len(t, 100), t.ptr);
  }
  PQclear(r);
  if (rc != 0) return -1;

  lls_pg_param_tenant(&p, pg);
  if ((r = lls_pg_run(pg, ST_CHECK_COUNTS, &p, 1, err)) == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows && rc == 0; i++) {
    lls_str name = lls_pg_str_at(r, i, 0);
    rc = problem(problems, name.ptr, name.len, err, "count says %lld, vectors has %lld",
                 (long long)lls_pg_int8_at(r, i, 1), (long long)lls_pg_int8_at(r, i, 2));
  }
  PQclear(r);
  return rc;
}
