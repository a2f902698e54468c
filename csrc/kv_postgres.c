/*
 * kv_postgres.c -- the PostgreSQL key-value backend (libpq).
 *
 * Schema, created by versioned migrations in the schema named by the
 * `schema` option (default "llmspell"; shown here as llmspell):
 *
 *   CREATE TABLE llmspell.llmspell_migrations (
 *     version    int PRIMARY KEY,
 *     name       text NOT NULL,
 *     applied_at timestamptz NOT NULL DEFAULT now()
 *   );
 *
 *   -- migration 1: 001_kv_store
 *   CREATE TABLE llmspell.kv_store (
 *     tenant_id  text NOT NULL,
 *     key        text COLLATE "C" NOT NULL,
 *     value      bytea NOT NULL,
 *     metadata   jsonb,
 *     created_at timestamptz NOT NULL,
 *     updated_at timestamptz NOT NULL,
 *     expires_at timestamptz,               -- NULL: never expires
 *     PRIMARY KEY (tenant_id, key)
 *   );
 *   CREATE INDEX kv_store_expires_idx ON llmspell.kv_store (tenant_id, expires_at)
 *     WHERE expires_at IS NOT NULL;
 *   ALTER TABLE llmspell.kv_store ENABLE ROW LEVEL SECURITY;
 *   ALTER TABLE llmspell.kv_store FORCE ROW LEVEL SECURITY;
 *   CREATE POLICY kv_store_tenant_isolation ON llmspell.kv_store
 *     USING (tenant_id = current_setting('app.current_tenant_id', true))
 *     WITH CHECK (tenant_id = current_setting('app.current_tenant_id', true));
 *
 * Every connection runs `set_config('app.current_tenant_id', <tenant>,
 * false)` right after connecting, so a role without BYPASSRLS sees only its
 * tenant even in raw SQL, and no rows at all when no tenant is set. Every
 * statement also says `tenant_id = $1`: superusers and BYPASSRLS roles skip
 * the policy, and the condition lets the primary key serve every lookup.
 *
 * Migrations run in one transaction under pg_advisory_xact_lock, so
 * concurrent openers do not race; when the schema is already current, open
 * runs no DDL at all, so a role that may only read and write the tables
 * (USAGE on the schema, SELECT on llmspell_migrations, SELECT / INSERT /
 * UPDATE / DELETE on kv_store) can open it.
 *
 * Wire format: all parameters and results are binary, so keys, values and
 * arrays never go through text escaping; times travel as binary
 * timestamptz (int8 microseconds since 2000-01-01), which is exact, unlike
 * arithmetic on intervals (float8 multiplication).
 */
#include "backend.h"

#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs from pg_type.h (server headers are not a build dependency). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_BYTEA_ARR 1001
#define OID_TEXT_ARR 1009
#define OID_TSTZ 1184
#define OID_TSTZ_ARR 1185

/* Binary timestamptz counts microseconds from 2000-01-01, not 1970-01-01. */
#define PG_EPOCH_OFFSET_US UINT64_C(946684800000000)

/* Bound on how long opening (or reconnecting) may take, unless the URL or
 * the connect_timeout option says otherwise; libpq's default is forever. */
#define DEFAULT_CONNECT_TIMEOUT "10"

#define MAX_PARAMS 10
#define MAX_SCHEMA 63 /* NAMEDATALEN - 1 */

/* ------------------------------------------------------------ statements */

#define VISIBLE(ts) "(expires_at IS NULL OR expires_at > " ts ")"

/* An existing row keeps its created_at (and metadata) only while visible:
 * an expired row counts as absent, as on every other backend. */
#define STILL_VISIBLE "(kv.expires_at IS NULL OR kv.expires_at > EXCLUDED.updated_at)"
#define UPSERT_KEEP                                                              \
  " ON CONFLICT (tenant_id, key) DO UPDATE SET value = EXCLUDED.value,"         \
  " created_at = CASE WHEN " STILL_VISIBLE " THEN kv.created_at"                \
  " ELSE EXCLUDED.created_at END,"                                               \
  " metadata = CASE WHEN " STILL_VISIBLE " THEN kv.metadata END,"               \
  " updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at"
#define UPSERT_FRESH                                                             \
  " ON CONFLICT (tenant_id, key) DO UPDATE SET value = EXCLUDED.value,"         \
  " created_at = EXCLUDED.created_at, metadata = NULL,"                          \
  " updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at"
#define INSERT_COLS " (tenant_id, key, value, created_at, updated_at, expires_at)"

#define SCAN_HEAD                                                                \
  "SELECT key, CASE WHEN $5 THEN ''::bytea ELSE value END,"                      \
  " created_at, updated_at, expires_at FROM @S.kv_store WHERE tenant_id = $1 AND "
#define SCAN_TAIL " AND " VISIBLE("$4") " ORDER BY key LIMIT $6"

enum {
  ST_GET,
  ST_SET,
  ST_DEL,
  ST_GET_MANY,
  ST_SCAN_GE,
  ST_SCAN_GT,
  ST_SCAN_GE_U,
  ST_SCAN_GT_U,
  ST_APPLY,
  ST_CLEAR,
  ST_STATS,
  ST_SWEEP,
  ST_MIGRATIONS,
  ST_COUNT
};

typedef struct pg_stmt {
  const char *name;
  const char *sql; /* "@S" stands for the quoted schema name */
  int nparams;
  Oid types[MAX_PARAMS];
} pg_stmt;

/* $1 is always the tenant. Scan statements differ only in their key range
 * so that each one is a plain index range whatever plan PostgreSQL caches
 * (an optional bound like `$3 IS NULL OR key < $3` is not). */
static const pg_stmt stmts[ST_COUNT] = {
    [ST_GET] = {"lls_get",
                "SELECT value FROM @S.kv_store WHERE tenant_id = $1 AND key = $2"
                " AND " VISIBLE("$3"),
                3, {OID_TEXT, OID_TEXT, OID_TSTZ}},
    [ST_SET] = {"lls_set",
                "INSERT INTO @S.kv_store AS kv" INSERT_COLS
                " VALUES ($1, $2, $3, $4, $4, $5)" UPSERT_KEEP,
                5, {OID_TEXT, OID_TEXT, OID_BYTEA, OID_TSTZ, OID_TSTZ}},
    [ST_DEL] = {"lls_del",
                "DELETE FROM @S.kv_store WHERE tenant_id = $1 AND key = $2"
                " RETURNING " VISIBLE("$3"),
                3, {OID_TEXT, OID_TEXT, OID_TSTZ}},
    [ST_GET_MANY] = {"lls_get_many",
                     "SELECT key, value FROM @S.kv_store WHERE tenant_id = $1"
                     " AND key = ANY($2) AND " VISIBLE("$3"),
                     3, {OID_TEXT, OID_TEXT_ARR, OID_TSTZ}},
    [ST_SCAN_GE] = {"lls_scan_ge", SCAN_HEAD "key >= $2" SCAN_TAIL, 6,
                    {OID_TEXT, OID_TEXT, OID_TEXT, OID_TSTZ, OID_BOOL, OID_INT8}},
    [ST_SCAN_GT] = {"lls_scan_gt", SCAN_HEAD "key > $2" SCAN_TAIL, 6,
                    {OID_TEXT, OID_TEXT, OID_TEXT, OID_TSTZ, OID_BOOL, OID_INT8}},
    [ST_SCAN_GE_U] = {"lls_scan_ge_u", SCAN_HEAD "key >= $2 AND key < $3" SCAN_TAIL, 6,
                      {OID_TEXT, OID_TEXT, OID_TEXT, OID_TSTZ, OID_BOOL, OID_INT8}},
    [ST_SCAN_GT_U] = {"lls_scan_gt_u", SCAN_HEAD "key > $2 AND key < $3" SCAN_TAIL, 6,
                      {OID_TEXT, OID_TEXT, OID_TEXT, OID_TSTZ, OID_BOOL, OID_INT8}},
    /* A whole batch, already reduced to one final operation per key, as
     * one statement (atomic by itself, one round trip). All parts see the
     * same snapshot, so c counts visibility from before the batch; the key
     * sets of d, k and f are disjoint. $3: keys whose first op is a delete,
     * $4: keys whose last op is a delete, $5-$7: upserts that keep
     * created_at of a visible row, $8-$10: upserts of rows the batch itself
     * deleted first, so they start afresh. */
    [ST_APPLY] = {"lls_apply",
                  "WITH c AS (SELECT count(*) AS n FROM @S.kv_store WHERE tenant_id = $1"
                  " AND key = ANY($3) AND " VISIBLE("$2") "),"
                  " d AS (DELETE FROM @S.kv_store WHERE tenant_id = $1 AND key = ANY($4)),"
                  " k AS (INSERT INTO @S.kv_store AS kv" INSERT_COLS
                  " SELECT $1, t.k, t.v, $2, $2, t.e FROM unnest($5, $6, $7) AS t(k, v, e)"
                  UPSERT_KEEP "),"
                  " f AS (INSERT INTO @S.kv_store AS kv" INSERT_COLS
                  " SELECT $1, t.k, t.v, $2, $2, t.e FROM unnest($8, $9, $10) AS t(k, v, e)"
                  UPSERT_FRESH ")"
                  " SELECT n FROM c",
                  10,
                  {OID_TEXT, OID_TSTZ, OID_TEXT_ARR, OID_TEXT_ARR, OID_TEXT_ARR,
                   OID_BYTEA_ARR, OID_TSTZ_ARR, OID_TEXT_ARR, OID_BYTEA_ARR, OID_TSTZ_ARR}},
    [ST_CLEAR] = {"lls_clear", "DELETE FROM @S.kv_store WHERE tenant_id = $1", 1,
                  {OID_TEXT}},
    [ST_STATS] = {"lls_stats",
                  "SELECT count(*), coalesce(sum(octet_length(key) + octet_length(value)),"
                  " 0)::int8 FROM @S.kv_store WHERE tenant_id = $1 AND " VISIBLE("$2"),
                  2, {OID_TEXT, OID_TSTZ}},
    /* SKIP LOCKED: a sweep is housekeeping and must never wait for (or
     * deadlock with) a writer that holds one of the rows. key = ANY(ARRAY(
     * subquery)) rather than a join: the planner, not knowing the LIMIT,
     * would otherwise pick a sequential scan of the table to join with. */
    [ST_SWEEP] = {"lls_sweep",
                  "DELETE FROM @S.kv_store WHERE tenant_id = $1 AND expires_at <= $2"
                  " AND key = ANY(ARRAY(SELECT key FROM @S.kv_store"
                  " WHERE tenant_id = $1 AND expires_at <= $2 ORDER BY expires_at"
                  " LIMIT $3 FOR UPDATE SKIP LOCKED))",
                  3, {OID_TEXT, OID_TSTZ, OID_INT8}},
    [ST_MIGRATIONS] = {"lls_migrations",
                       "SELECT version, name, applied_at FROM @S.llmspell_migrations"
                       " ORDER BY version",
                       0, {0}},
};

/* ------------------------------------------------------------ migrations */

typedef struct pg_migration {
  int version;
  const char *name;
  const char *sql; /* "@S" stands for the quoted schema name */
} pg_migration;

/* Append-only: a released migration is never edited, later issues add
 * entries (vector tables next). */
static const pg_migration migrations[] = {
    {1, "kv_store",
     "CREATE TABLE @S.kv_store ("
     " tenant_id text NOT NULL,"
     " key text COLLATE \"C\" NOT NULL,"
     " value bytea NOT NULL,"
     " metadata jsonb,"
     " created_at timestamptz NOT NULL,"
     " updated_at timestamptz NOT NULL,"
     " expires_at timestamptz,"
     " PRIMARY KEY (tenant_id, key));"
     "CREATE INDEX kv_store_expires_idx ON @S.kv_store (tenant_id, expires_at)"
     " WHERE expires_at IS NOT NULL;"
     "ALTER TABLE @S.kv_store ENABLE ROW LEVEL SECURITY;"
     "ALTER TABLE @S.kv_store FORCE ROW LEVEL SECURITY;"
     "CREATE POLICY kv_store_tenant_isolation ON @S.kv_store"
     " USING (tenant_id = current_setting('app.current_tenant_id', true))"
     " WITH CHECK (tenant_id = current_setting('app.current_tenant_id', true));"},
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

/* Arbitrary first half of the advisory lock key; the second is a hash of
 * the schema name, so two schemas migrate independently. */
#define MIGRATION_LOCK_CLASS 0x6C6C6D73 /* "llms" */

/* ---------------------------------------------------------------- handle */

enum {
  A_CONT,     /* keys whose first op is a delete (their prior visibility counts) */
  A_DEL,      /* keys whose final op is a delete */
  A_KEEP_K,   /* upserts that keep a visible row's created_at */
  A_KEEP_V,
  A_KEEP_E,
  A_FRESH_K,  /* upserts of keys the batch deleted first */
  A_FRESH_V,
  A_FRESH_E,
  A_COUNT
};

typedef struct pg_backend {
  lls_backend base;
  PGconn *conn;
  char *tenant;
  size_t tenant_len;
  char *schema;         /* validated identifier, unquoted */
  char *sql[ST_COUNT];  /* statement texts with the schema filled in */
  unsigned prepared;    /* bit i: stmts[i] prepared on this connection */
  int tenant_set;       /* app.current_tenant_id set on this connection */
  int txdepth;          /* open transaction levels (0 = autocommit) */
  PGresult *held;       /* result backing get()'s *out until the next call */
  lls_buf arr[A_COUNT]; /* binary array parameters, reused */
  lls_buf upper;        /* prefix upper bound, reused */
  char location[512];
} pg_backend;

/* Parameters of one statement execution, all in binary format. */
typedef struct pg_params {
  int n;
  int toobig;
  const char *v[MAX_PARAMS];
  int len[MAX_PARAMS];
  int fmt[MAX_PARAMS];
  char scratch[MAX_PARAMS][8];
} pg_params;

/* ------------------------------------------------------- byte encoding */

/* Network byte order, as the binary wire format wants. */
static void put_be32(unsigned char *p, uint32_t x) {
  p[0] = (unsigned char)(x >> 24);
  p[1] = (unsigned char)(x >> 16);
  p[2] = (unsigned char)(x >> 8);
  p[3] = (unsigned char)x;
}

/* put_be32 for 64 bits. */
static void put_be64(unsigned char *p, uint64_t x) {
  put_be32(p, (uint32_t)(x >> 32));
  put_be32(p + 4, (uint32_t)x);
}

/* Reads a big-endian 64-bit integer (int8 and timestamptz results). */
static uint64_t get_be64(const unsigned char *p) {
  uint64_t x = 0;
  for (int i = 0; i < 8; i++) x = (x << 8) | p[i];
  return x;
}

/* Unix microseconds -> binary timestamptz; unsigned arithmetic so that no
 * input can overflow (out-of-range times are the server's to reject). */
static void enc_time(unsigned char *p, int64_t us) {
  put_be64(p, (uint64_t)us - PG_EPOCH_OFFSET_US);
}

/* Binary timestamptz -> Unix microseconds. */
static int64_t dec_time(const unsigned char *p) {
  return (int64_t)(get_be64(p) + PG_EPOCH_OFFSET_US);
}

/* Lexicographic byte order, the order COLLATE "C" gives keys. */
static int keycmp(lls_str a, lls_str b) {
  size_t n = a.len < b.len ? a.len : b.len;
  int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
  if (c != 0) return c;
  return a.len < b.len ? -1 : a.len > b.len;
}

/* ------------------------------------------------------------ parameters */

/* Appends a binary parameter (text, bytea, arrays); over 2 GB is refused
 * by pg_run, since libpq lengths are int. */
static void p_bytes(pg_params *p, const char *s, size_t n) {
  if (n > INT_MAX) p->toobig = 1;
  p->v[p->n] = s ? s : "";
  p->len[p->n] = n > INT_MAX ? 0 : (int)n;
  p->fmt[p->n] = 1;
  p->n++;
}

/* Appends SQL NULL. */
static void p_null(pg_params *p) {
  p->v[p->n] = NULL;
  p->len[p->n] = 0;
  p->fmt[p->n] = 1;
  p->n++;
}

/* Appends a timestamptz (Unix microseconds). */
static void p_time(pg_params *p, int64_t us) {
  enc_time((unsigned char *)p->scratch[p->n], us);
  p_bytes(p, p->scratch[p->n], 8);
}

/* expires_at: 0 means "never", stored as NULL. */
static void p_expiry(pg_params *p, int64_t us) {
  if (us == 0)
    p_null(p);
  else
    p_time(p, us);
}

/* Appends an int8. */
static void p_int8(pg_params *p, int64_t x) {
  put_be64((unsigned char *)p->scratch[p->n], (uint64_t)x);
  p_bytes(p, p->scratch[p->n], 8);
}

/* Appends a bool. */
static void p_bool(pg_params *p, int x) {
  p->scratch[p->n][0] = (char)(x != 0);
  p_bytes(p, p->scratch[p->n], 1);
}

/* Appends a built array. */
static void p_buf(pg_params *p, const lls_buf *b) { p_bytes(p, b->data, b->len); }

/* ------------------------------------------- binary one-dimensional arrays */

/* PostgreSQL's binary array format: ndim, has-null flag, element type,
 * then per dimension its length and lower bound, then each element as a
 * length (-1 for NULL) and its bytes. The header is patched at the end. */
#define ARR_HEADER 20

/* Empties a and reserves the header. 0, or -1 when out of memory. */
static int arr_init(lls_buf *a) {
  a->len = 0;
  if (lls_buf_reserve(a, ARR_HEADER) != 0) return -1;
  a->len = ARR_HEADER;
  return 0;
}

/* Appends one element. -1 when out of memory or over 2 GB. */
static int arr_add(lls_buf *a, const char *p, size_t n) {
  unsigned char len[4];
  if (n > INT32_MAX) return -1;
  put_be32(len, (uint32_t)n);
  if (lls_buf_append(a, len, 4) != 0) return -1;
  return lls_buf_append(a, p, n);
}

/* Appends a NULL element (length -1). */
static int arr_add_null(lls_buf *a) {
  unsigned char len[4];
  put_be32(len, UINT32_MAX);
  return lls_buf_append(a, len, 4);
}

/* Appends a timestamptz element; 0 (never expires) becomes NULL. */
static int arr_add_expiry(lls_buf *a, int64_t us) {
  unsigned char v[8];
  if (us == 0) return arr_add_null(a);
  enc_time(v, us);
  return arr_add(a, (const char *)v, 8);
}

/* Writes the header for n elements of type elem. An empty array has
 * ndim 0 and no dimension fields. */
static void arr_finish(lls_buf *a, Oid elem, size_t n, int hasnull) {
  unsigned char *h = (unsigned char *)a->data;
  put_be32(h, n ? 1 : 0);
  put_be32(h + 4, hasnull ? 1 : 0);
  put_be32(h + 8, (uint32_t)elem);
  if (n == 0) {
    a->len = 12;
    return;
  }
  put_be32(h + 12, (uint32_t)n);
  put_be32(h + 16, 1);
}

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
  return LLS_EIO;
}

/* Fills *err from a failed result (r may be NULL) or from the connection's
 * last error. Always returns -1. */
static int pg_error(pg_backend *pg, const PGresult *r, lls_error *err) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
  int bad = PQstatus(pg->conn) == CONNECTION_BAD;
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
  PGresult *r = PQexecParams(pg->conn, "SELECT set_config('app.current_tenant_id', $1, false)",
                             1, types, v, len, fmt, 1);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    pg_error(pg, r, err);
    PQclear(r);
    return -1;
  }
  PQclear(r);
  pg->tenant_set = 1;
  return 0;
}

/* Makes sure the connection is usable. A connection lost outside a
 * transaction is re-established (the failure was already reported to the
 * call that saw it); inside one, the transaction is gone, so reconnecting
 * silently would run the rest of it in autocommit. */
static int ensure_conn(pg_backend *pg, lls_error *err) {
  if (PQstatus(pg->conn) == CONNECTION_OK && pg->tenant_set) return 0;
  if (PQstatus(pg->conn) != CONNECTION_OK) {
    if (pg->txdepth > 0)
      return lls_error_set(err, LLS_ECONNECTION,
                           "connection to the server was lost inside a transaction");
    PQreset(pg->conn);
    pg->prepared = 0; /* prepared statements and settings die with the session */
    pg->tenant_set = 0;
    if (PQstatus(pg->conn) != CONNECTION_OK) {
      char msg[sizeof err->message];
      one_line(msg, sizeof msg, PQerrorMessage(pg->conn));
      return lls_error_set(err, LLS_ECONNECTION, "could not reconnect: %s", msg);
    }
  }
  /* Never run a statement without the tenant set: even when setting it
   * failed on an earlier attempt, the next call tries again first. */
  return set_tenant(pg, err);
}

/* Prepares stmts[st] on this connection the first time it is used. */
static int ensure_prepared(pg_backend *pg, int st, lls_error *err) {
  if (pg->prepared & (1u << st)) return 0;
  PGresult *r = PQprepare(pg->conn, stmts[st].name, pg->sql[st], stmts[st].nparams,
                          stmts[st].types);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    pg_error(pg, r, err);
    PQclear(r);
    return -1;
  }
  PQclear(r);
  pg->prepared |= 1u << st;
  return 0;
}

/* Ends the validity of the last get()'s value. */
static void release_held(pg_backend *pg) {
  PQclear(pg->held);
  pg->held = NULL;
}

/* Executes prepared statement st with binary parameters and results.
 * Returns the result (caller clears it) or NULL with *err filled. An
 * idempotent read that loses its connection outside a transaction is
 * retried once on a fresh connection; anything else is never retried, so a
 * write is never applied twice. */
static PGresult *pg_run(pg_backend *pg, int st, const pg_params *p, int idempotent,
                        lls_error *err) {
  release_held(pg);
  if (p->toobig) {
    lls_error_set(err, LLS_EINVALID, "value too large for PostgreSQL (2 GB limit)");
    return NULL;
  }
  for (int attempt = 0;; attempt++) {
    int may_retry = idempotent && attempt == 0 && pg->txdepth == 0;
    if (ensure_conn(pg, err) != 0) return NULL;
    if (ensure_prepared(pg, st, err) == 0) {
      PGresult *r = PQexecPrepared(pg->conn, stmts[st].name, p->n, p->v, p->len, p->fmt, 1);
      ExecStatusType s = PQresultStatus(r);
      if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) return r;
      pg_error(pg, r, err);
      PQclear(r);
    }
    if (!may_retry || PQstatus(pg->conn) != CONNECTION_BAD) return NULL;
  }
}

/* Runs a parameterless command (transaction control) on the current
 * connection. *r_out, when given, receives the result on success. */
static int pg_command(pg_backend *pg, const char *sql, PGresult **r_out, lls_error *err) {
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

/* tmpl with every "@S" replaced by the double-quoted schema (validated, so
 * quoting needs no escaping; quoting keeps its case and allows keywords). */
static char *fill_schema(const char *tmpl, const char *schema) {
  lls_buf b = {0};
  const char *s = tmpl;
  for (const char *at; (at = strstr(s, "@S")) != NULL; s = at + 2) {
    if (lls_buf_append(&b, s, (size_t)(at - s)) != 0 || lls_buf_append(&b, "\"", 1) != 0 ||
        lls_buf_append(&b, schema, strlen(schema)) != 0 || lls_buf_append(&b, "\"", 1) != 0)
      goto oom;
  }
  if (lls_buf_append(&b, s, strlen(s) + 1) != 0) goto oom;
  return b.data;
oom:
  lls_buf_free(&b);
  return NULL;
}

/* The highest applied migration, 0 when the schema or the table does not
 * exist yet. Reading it first means an up-to-date database needs no DDL
 * (and no CREATE privilege) to open. */
static int schema_version(pg_backend *pg, int *version, lls_error *err) {
  char *sql = fill_schema("SELECT coalesce(max(version), 0) FROM @S.llmspell_migrations",
                          pg->schema);
  if (sql == NULL) return lls_error_set(err, LLS_EIO, "out of memory");
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
  char *sql = fill_schema(tmpl, pg->schema);
  if (sql == NULL) return lls_error_set(err, LLS_EIO, "out of memory");
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
  char *sql = fill_schema("INSERT INTO @S.llmspell_migrations (version, name)"
                          " VALUES ($1::int4, $2)", pg->schema);
  if (sql == NULL) return lls_error_set(err, LLS_EIO, "out of memory");
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
                       pg->schema, version, N_MIGRATIONS);
}

/* The body of the migration transaction: lock, re-read the version (another
 * opener may have migrated while we waited), apply what is missing. */
static int migrate_locked(pg_backend *pg, lls_error *err) {
  const char *v[1] = {pg->schema};
  char lock_sql[128];
  snprintf(lock_sql, sizeof lock_sql, "SELECT pg_advisory_xact_lock(%d, hashtext($1))",
           MIGRATION_LOCK_CLASS);
  PGresult *r = PQexecParams(pg->conn, lock_sql, 1, NULL, v, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    pg_error(pg, r, err);
    PQclear(r);
    return -1;
  }
  PQclear(r);
  if (exec_filled(pg,
                  "CREATE SCHEMA IF NOT EXISTS @S;"
                  "CREATE TABLE IF NOT EXISTS @S.llmspell_migrations ("
                  " version int PRIMARY KEY, name text NOT NULL,"
                  " applied_at timestamptz NOT NULL DEFAULT now())",
                  err) != 0)
    return -1;
  int version;
  if (schema_version(pg, &version, err) != 0) return -1;
  if (version > N_MIGRATIONS) return too_new(pg, version, err);
  for (int i = 0; i < N_MIGRATIONS; i++) {
    if (migrations[i].version <= version) continue;
    if (exec_filled(pg, migrations[i].sql, err) != 0) return -1;
    if (record_migration(pg, &migrations[i], err) != 0) return -1;
  }
  return 0;
}

/* Brings the schema to N_MIGRATIONS; LLS_EVERSION when it is newer. Only
 * an out-of-date schema opens a transaction and takes the lock. */
static int migrate(pg_backend *pg, lls_error *err) {
  int version;
  if (schema_version(pg, &version, err) != 0) return -1;
  if (version == N_MIGRATIONS) return 0;
  if (version > N_MIGRATIONS) return too_new(pg, version, err);
  if (exec_filled(pg, "BEGIN", err) != 0) return -1;
  if (migrate_locked(pg, err) != 0) {
    PQclear(PQexec(pg->conn, "ROLLBACK"));
    return -1;
  }
  return exec_filled(pg, "COMMIT", err);
}

static void pg_close(lls_backend *b);

/* Connects to cfg->location (URL or conninfo), sets the tenant, and
 * migrates the schema. Options: schema, connect_timeout (seconds). */
static lls_backend *pg_open(lls_config *cfg, lls_error *err) {
  const char *schema = lls_config_get(cfg, "schema");
  const char *timeout = lls_config_get(cfg, "connect_timeout");
  long long secs;
  char timeout_s[24];
  if (schema == NULL) schema = "llmspell";
  if (!valid_schema(schema)) {
    lls_error_set(err, LLS_EINVALID,
                  "option 'schema' must be an identifier ([A-Za-z_][A-Za-z0-9_]*, "
                  "at most %d characters), got '%s'", MAX_SCHEMA, schema);
    return NULL;
  }
  if (lls_config_int(cfg, "connect_timeout", 10, 0, 86400, &secs, err) != 0) return NULL;
  snprintf(timeout_s, sizeof timeout_s, "%lld", secs);

  pg_backend *pg = calloc(1, sizeof *pg);
  if (pg == NULL) goto oom;
  pg->base.vt = &lls_postgres_vt;
  pg->tenant = strdup(cfg->tenant);
  pg->schema = strdup(schema);
  if (pg->tenant == NULL || pg->schema == NULL) goto oom;
  pg->tenant_len = strlen(pg->tenant);
  for (int i = 0; i < ST_COUNT; i++)
    if ((pg->sql[i] = fill_schema(stmts[i].sql, schema)) == NULL) goto oom;

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
  lls_error_set(err, LLS_EIO, "out of memory");
fail:
  if (pg != NULL) pg_close(&pg->base);
  return NULL;
}

/* Frees everything. The server rolls back an open transaction when the
 * session ends, so closing needs no round trip. */
static void pg_close(lls_backend *b) {
  pg_backend *pg = (pg_backend *)b;
  release_held(pg);
  if (pg->conn != NULL) PQfinish(pg->conn);
  for (int i = 0; i < ST_COUNT; i++) free(pg->sql[i]);
  for (int i = 0; i < A_COUNT; i++) lls_buf_free(&pg->arr[i]);
  lls_buf_free(&pg->upper);
  free(pg->tenant);
  free(pg->schema);
  free(pg);
}

/* "host=... port=... dbname=... user=..." -- never the password. */
static const char *pg_location(lls_backend *b) { return ((pg_backend *)b)->location; }

/* ------------------------------------------------------------ operations */

static void p_tenant(pg_params *p, const pg_backend *pg) {
  p_bytes(p, pg->tenant, pg->tenant_len);
}

/* Point read; the value stays in pg->held until the next call. */
static int pg_get(lls_backend *b, lls_str key, int64_t now, lls_str *out, int *found,
                  lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  p_tenant(&p, pg);
  p_bytes(&p, key.ptr, key.len);
  p_time(&p, now);
  *found = 0;
  PGresult *r = pg_run(pg, ST_GET, &p, 1, err);
  if (r == NULL) return -1;
  if (PQntuples(r) > 0) {
    out->ptr = PQgetvalue(r, 0, 0);
    out->len = (size_t)PQgetlength(r, 0, 0);
    *found = 1;
  }
  pg->held = r;
  return 0;
}

/* Upsert; created_at survives only when a visible row existed. */
static int pg_set(lls_backend *b, lls_str key, lls_str value, int64_t expires_at, int64_t now,
                  lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  p_tenant(&p, pg);
  p_bytes(&p, key.ptr, key.len);
  p_bytes(&p, value.ptr, value.len);
  p_time(&p, now);
  p_expiry(&p, expires_at);
  PGresult *r = pg_run(pg, ST_SET, &p, 0, err);
  if (r == NULL) return -1;
  PQclear(r);
  return 0;
}

/* Deletes the row even when expired (it is garbage anyway); *existed says
 * whether it was visible. */
static int pg_del(lls_backend *b, lls_str key, int64_t now, int *existed, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  p_tenant(&p, pg);
  p_bytes(&p, key.ptr, key.len);
  p_time(&p, now);
  *existed = 0;
  PGresult *r = pg_run(pg, ST_DEL, &p, 0, err);
  if (r == NULL) return -1;
  if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) *existed = PQgetvalue(r, 0, 0)[0] != 0;
  PQclear(r);
  return 0;
}

typedef struct op_ref {
  const lls_op *op;
  size_t i;
} op_ref;

/* By key, then by position, so each key's ops form one run in batch order. */
static int cmp_op_ref(const void *a, const void *b) {
  const op_ref *x = a, *y = b;
  int c = keycmp(x->op->key, y->op->key);
  if (c != 0) return c;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* What a key's run of ops leaves behind, tracked while replaying it. */
enum { KEY_UNKNOWN, KEY_PRESENT, KEY_ABSENT };

/* Reduces ops to one final action per key and fills the array parameters
 * of ST_APPLY. *fixed receives the delete ops known to remove a visible row
 * without asking the database (those that follow a set of the same key).
 *
 * Definition of *deleted (the ops replayed in order): a delete counts when
 * the key was visible just before it. For the first op on a key that
 * depends on the database (counted by the statement, via A_CONT); after a
 * set it is known; after a delete it is 0. So "set k; delete k" counts 1,
 * "delete k; delete k" counts at most 1. */
static int reduce_ops(pg_backend *pg, const lls_op *ops, size_t n, int64_t now,
                      size_t *fixed, size_t counts[A_COUNT], int *keep_null,
                      int *fresh_null) {
  op_ref *refs = malloc(n * sizeof *refs);
  int rc = -1;
  if (refs == NULL) return -1;
  for (size_t i = 0; i < n; i++) refs[i].op = &ops[i], refs[i].i = i;
  qsort(refs, n, sizeof *refs, cmp_op_ref);
  for (int a = 0; a < A_COUNT; a++) {
    counts[a] = 0;
    if (arr_init(&pg->arr[a]) != 0) goto done;
  }
  *fixed = 0;
  *keep_null = *fresh_null = 0;
  for (size_t g = 0, e; g < n; g = e) {
    lls_str key = refs[g].op->key;
    int state = KEY_UNKNOWN, fresh = 0;
    for (e = g; e < n && keycmp(refs[e].op->key, key) == 0; e++) {
      const lls_op *op = refs[e].op;
      if (op->kind == LLS_OP_DELETE) {
        if (state == KEY_UNKNOWN) {
          if (arr_add(&pg->arr[A_CONT], key.ptr, key.len) != 0) goto done;
          counts[A_CONT]++;
        } else if (state == KEY_PRESENT) {
          (*fixed)++;
        }
        state = KEY_ABSENT;
      } else {
        /* A set onto an absent key starts a new row (new created_at); onto
         * an unknown one it keeps the database row's if that is visible. */
        if (state == KEY_ABSENT) fresh = 1;
        int visible = op->expires_at == 0 || op->expires_at > now;
        state = visible ? KEY_PRESENT : KEY_ABSENT;
      }
    }
    const lls_op *last = refs[e - 1].op;
    if (last->kind == LLS_OP_DELETE) {
      if (arr_add(&pg->arr[A_DEL], key.ptr, key.len) != 0) goto done;
      counts[A_DEL]++;
      continue;
    }
    int base = fresh ? A_FRESH_K : A_KEEP_K;
    if (arr_add(&pg->arr[base], key.ptr, key.len) != 0 ||
        arr_add(&pg->arr[base + 1], last->value.ptr, last->value.len) != 0 ||
        arr_add_expiry(&pg->arr[base + 2], last->expires_at) != 0)
      goto done;
    if (last->expires_at == 0) *(fresh ? fresh_null : keep_null) = 1;
    counts[base]++, counts[base + 1]++, counts[base + 2]++;
  }
  rc = 0;
done:
  free(refs);
  return rc;
}

/* Applies ops atomically in one statement (see ST_APPLY); inside a
 * transaction a savepoint keeps a failed batch from aborting it. */
static int pg_apply(lls_backend *b, const lls_op *ops, size_t n, int64_t now, size_t *deleted,
                    lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  size_t counts[A_COUNT], fixed;
  int keep_null, fresh_null;
  static const Oid elem[A_COUNT] = {OID_TEXT, OID_TEXT,  OID_TEXT, OID_BYTEA,
                                    OID_TSTZ, OID_TEXT, OID_BYTEA, OID_TSTZ};
  *deleted = 0;
  if (n == 0) return 0;
  if (reduce_ops(pg, ops, n, now, &fixed, counts, &keep_null, &fresh_null) != 0)
    return lls_error_set(err, LLS_EIO, "out of memory (or an element over 2 GB)");
  for (int a = 0; a < A_COUNT; a++) {
    int hasnull = (a == A_KEEP_E && keep_null) || (a == A_FRESH_E && fresh_null);
    arr_finish(&pg->arr[a], elem[a], counts[a], hasnull);
  }
  pg_params p = {0};
  p_tenant(&p, pg);
  p_time(&p, now);
  for (int a = 0; a < A_COUNT; a++) p_buf(&p, &pg->arr[a]);

  int in_tx = pg->txdepth > 0;
  if (in_tx && pg_command(pg, "SAVEPOINT lls_batch", NULL, err) != 0) return -1;
  PGresult *r = pg_run(pg, ST_APPLY, &p, 0, err);
  if (r == NULL) {
    if (in_tx && PQstatus(pg->conn) == CONNECTION_OK)
      PQclear(PQexec(pg->conn, "ROLLBACK TO SAVEPOINT lls_batch; RELEASE SAVEPOINT lls_batch"));
    return -1;
  }
  size_t cont = 0;
  if (PQntuples(r) > 0 && PQgetlength(r, 0, 0) == 8)
    cont = (size_t)get_be64((const unsigned char *)PQgetvalue(r, 0, 0));
  PQclear(r);
  if (in_tx && pg_command(pg, "RELEASE SAVEPOINT lls_batch", NULL, err) != 0) {
    if (PQstatus(pg->conn) == CONNECTION_OK)
      PQclear(PQexec(pg->conn, "ROLLBACK TO SAVEPOINT lls_batch; RELEASE SAVEPOINT lls_batch"));
    return -1;
  }
  *deleted = fixed + cont;
  return 0;
}

/* One statement with the keys as an array (one round trip). */
static int pg_get_many(lls_backend *b, const lls_str *keys, size_t n, int64_t now,
                       lls_rows *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (n == 0) return 0;
  lls_buf *a = &pg->arr[A_CONT];
  if (arr_init(a) != 0) return lls_error_set(err, LLS_EIO, "out of memory");
  for (size_t i = 0; i < n; i++)
    if (arr_add(a, keys[i].ptr, keys[i].len) != 0)
      return lls_error_set(err, LLS_EIO, "out of memory");
  arr_finish(a, OID_TEXT, n, 0);
  pg_params p = {0};
  p_tenant(&p, pg);
  p_buf(&p, a);
  p_time(&p, now);
  PGresult *r = pg_run(pg, ST_GET_MANY, &p, 1, err);
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    if (lls_rows_add(out, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0),
                     PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1)) == NULL) {
      PQclear(r);
      return lls_error_set(err, LLS_EIO, "out of memory");
    }
  }
  PQclear(r);
  return 0;
}

/* A timestamptz column as Unix microseconds; NULL is 0. */
static int64_t time_or_zero(const PGresult *r, int row, int col) {
  if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8) return 0;
  return dec_time((const unsigned char *)PQgetvalue(r, row, col));
}

/* Literal prefix range [prefix, upper), starting after `after` when that
 * lies inside it; an index range scan in key order. */
static int pg_scan(lls_backend *b, lls_str prefix, lls_str after, int64_t now, size_t limit,
                   int keys_only, lls_rows *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  int has_upper;
  if (lls_prefix_upper(prefix, &pg->upper, &has_upper) != 0)
    return lls_error_set(err, LLS_EIO, "out of memory");
  lls_str upper = {pg->upper.data, pg->upper.len};
  /* key > after && key >= prefix is key > after when after >= prefix. */
  int strict = after.ptr != NULL && keycmp(after, prefix) >= 0;
  lls_str lower = strict ? after : prefix;
  if (has_upper && keycmp(lower, upper) >= 0) return 0;
  pg_params p = {0};
  p_tenant(&p, pg);
  p_bytes(&p, lower.ptr, lower.len);
  if (has_upper)
    p_bytes(&p, upper.ptr, upper.len);
  else
    p_null(&p);
  p_time(&p, now);
  p_bool(&p, keys_only);
  if (limit > 0 && limit <= INT64_MAX)
    p_int8(&p, (int64_t)limit);
  else
    p_null(&p);
  int st = has_upper ? (strict ? ST_SCAN_GT_U : ST_SCAN_GE_U) : (strict ? ST_SCAN_GT : ST_SCAN_GE);
  PGresult *r = pg_run(pg, st, &p, 1, err);
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_row *row = lls_rows_add(out, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0),
                                PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
    if (row == NULL) {
      PQclear(r);
      return lls_error_set(err, LLS_EIO, "out of memory");
    }
    row->created_at = time_or_zero(r, i, 2);
    row->updated_at = time_or_zero(r, i, 3);
    row->expires_at = time_or_zero(r, i, 4);
  }
  PQclear(r);
  return 0;
}

/* Deletes every row of this tenant (and only this tenant). */
static int pg_clear(lls_backend *b, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  p_tenant(&p, pg);
  PGresult *r = pg_run(pg, ST_CLEAR, &p, 0, err);
  if (r == NULL) return -1;
  PQclear(r);
  return 0;
}

/* An int8 column; NULL is 0. */
static int64_t int8_at(const PGresult *r, int row, int col) {
  if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8) return 0;
  return (int64_t)get_be64((const unsigned char *)PQgetvalue(r, row, col));
}

/* Visible keys of this tenant and their key + value bytes. */
static int pg_stats(lls_backend *b, int64_t now, lls_kv_stats *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  p_tenant(&p, pg);
  p_time(&p, now);
  PGresult *r = pg_run(pg, ST_STATS, &p, 1, err);
  if (r == NULL) return -1;
  out->keys = PQntuples(r) > 0 ? int8_at(r, 0, 0) : 0;
  out->bytes = PQntuples(r) > 0 ? int8_at(r, 0, 1) : 0;
  PQclear(r);
  return 0;
}

/* Removes up to limit expired rows, oldest expiry first, through the
 * partial (tenant_id, expires_at) index. */
static int pg_sweep(lls_backend *b, int64_t now, size_t limit, size_t *removed,
                    lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  *removed = 0;
  p_tenant(&p, pg);
  p_time(&p, now);
  p_int8(&p, limit > 0 && limit <= INT64_MAX ? (int64_t)limit : INT64_MAX);
  PGresult *r = pg_run(pg, ST_SWEEP, &p, 0, err);
  if (r == NULL) return -1;
  *removed = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  return 0;
}

/* ----------------------------------------------------------- transactions */

/* depth 0: BEGIN; depth d > 0: SAVEPOINT lls_d. */
static int pg_begin(lls_backend *b, int depth, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  char sql[48];
  if (depth == 0)
    snprintf(sql, sizeof sql, "BEGIN");
  else
    snprintf(sql, sizeof sql, "SAVEPOINT lls_%d", depth);
  if (pg_command(pg, sql, NULL, err) != 0) return -1;
  pg->txdepth = depth + 1;
  return 0;
}

/* depth 0: COMMIT; depth d > 0: RELEASE SAVEPOINT lls_d. PostgreSQL answers
 * COMMIT of a transaction aborted by an earlier error with a silent
 * ROLLBACK; that is reported as a failure, not as success. */
static int pg_commit(lls_backend *b, int depth, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (depth > 0) {
    char sql[48];
    snprintf(sql, sizeof sql, "RELEASE SAVEPOINT lls_%d", depth);
    if (pg_command(pg, sql, NULL, err) != 0) return -1;
    pg->txdepth = depth;
    return 0;
  }
  PGresult *r;
  int rc = pg_command(pg, "COMMIT", &r, err);
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
static int pg_rollback(lls_backend *b, int depth, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  release_held(pg);
  pg->txdepth = depth;
  if (PQstatus(pg->conn) != CONNECTION_OK) return 0;
  char sql[96];
  if (depth == 0)
    snprintf(sql, sizeof sql, "ROLLBACK");
  else
    snprintf(sql, sizeof sql, "ROLLBACK TO SAVEPOINT lls_%d; RELEASE SAVEPOINT lls_%d", depth,
             depth);
  PGresult *r = PQexec(pg->conn, sql);
  ExecStatusType s = PQresultStatus(r);
  if (s != PGRES_COMMAND_OK && PQstatus(pg->conn) == CONNECTION_OK) {
    pg_error(pg, r, err);
    PQclear(r);
    return -1;
  }
  PQclear(r);
  return 0;
}

/* One row per applied migration: "001_kv_store", created_at = applied_at. */
static int pg_migrations(lls_backend *b, lls_rows *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  PGresult *r = pg_run(pg, ST_MIGRATIONS, &p, 1, err);
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
      return lls_error_set(err, LLS_EIO, "out of memory");
    }
    row->created_at = row->updated_at = time_or_zero(r, i, 2);
  }
  PQclear(r);
  return 0;
}

const lls_backend_vt lls_postgres_vt = {
    .name = "postgres",
    /* nominal latencies: the seed's figures for a server on the network */
    .traits = {.persistent = 1,
               .transactional = 1,
               .supports_prefix_scan = 1,
               .supports_atomic_ops = 1,
               .nominal_read_us = 500.0,
               .nominal_write_us = 1000.0},
    .open = pg_open,
    .close = pg_close,
    .location = pg_location,
    .get = pg_get,
    .set = pg_set,
    .del = pg_del,
    .apply = pg_apply,
    .get_many = pg_get_many,
    .scan = pg_scan,
    .clear = pg_clear,
    .stats = pg_stats,
    .sweep = pg_sweep,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .migrations = pg_migrations,
};
