/*
 * conn.h -- the PostgreSQL backend's handle, shared by its op tables
 * (kv.c, vectors.c, xport.c): running prepared statements with the one
 * transparent retry, units of work (savepoints, own transactions, cursors)
 * and the error mapping they report through.
 */
#ifndef LLS_BACKENDS_POSTGRES_CONN_H
#define LLS_BACKENDS_POSTGRES_CONN_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "backends/postgres/schema.h"
#include "backends/postgres/wire.h"

/* Array parameters of apply ($3..$10 of ST_APPLY, built by kv.c). */
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

/* Array parameters of vec_put ($4..$11 of ST_VEC_INSERT / ST_VEC_UPSERT). */
enum { V_ID, V_SCOPE, V_VEC, V_MD, V_CREATED, V_UPDATED, V_EVENT, V_EXPIRES, V_COUNT };

/* How many statements the component files may cache per handle. */
#define LLS_PG_MAX_CSTMT 256

/* The handle behind every lls_backend this backend opens. */
typedef struct pg_backend {
  lls_backend base;
  PGconn *conn;
  char *tenant;
  size_t tenant_len;
  char *schema;         /* validated identifier, unquoted */
  char *sql[ST_COUNT];  /* statement texts with the schema filled in */
  uint64_t prepared;    /* bit i: lls_pg_stmts[i] prepared on this connection */
  /* Statements of the component files (sessions.c, ...), which keep their
   * SQL beside their code: cached by the address of their pg_stmt. */
  struct {
    const pg_stmt *def;
    char *sql;    /* schema filled in */
    int prepared; /* on this connection */
  } cst[LLS_PG_MAX_CSTMT];
  int ncst;
  int tenant_set;       /* app.current_tenant_id set on this connection */
  int lost;             /* the session is known to be gone although libpq may
                           still say CONNECTION_OK (a failed send whose EOF
                           it has not read yet, a FATAL error) */
  int txdepth;          /* open transaction levels (0 = autocommit) */
  int own_tx;           /* inside a transaction lls_pg_unit_begin opened for
                           one call (a multi-statement write or a cursor read) */
  PGresult *held;       /* result backing get()'s *out until the next call */
  lls_buf arr[A_COUNT]; /* binary array parameters, reused */
  lls_buf upper;        /* prefix upper bound, reused */
  lls_buf varr[V_COUNT]; /* array parameters of vector writes */
  char location[512];
} pg_backend;

/* 1 when the connection is gone (libpq says so, or a failure showed it):
 * the next call outside a transaction reconnects, one inside fails. */
int lls_pg_conn_lost(const pg_backend *pg);

/* Appends the tenant, $1 of every statement. */
void lls_pg_param_tenant(pg_params *p, const pg_backend *pg);

/* Executes prepared statement st with binary parameters and results.
 * Returns the result (caller clears it) or NULL with *err filled. An
 * idempotent read that loses its connection outside a transaction is
 * retried once on a fresh connection; anything else is never retried, so a
 * write is never applied twice. */
PGresult *lls_pg_run(pg_backend *pg, int st, const pg_params *p, int idempotent, lls_error *err);

/* lls_pg_run for a component file's own statement (a pg_stmt with static
 * storage and a name unique in the library, "lls_<component>_<what>"),
 * prepared per connection on first use. */
PGresult *lls_pg_run_stmt(pg_backend *pg, const pg_stmt *def, const pg_params *p, int idempotent,
                          lls_error *err);

/* lls_pg_write_one for a component file's own statement. */
PGresult *lls_pg_write_stmt(pg_backend *pg, const pg_stmt *def, const pg_params *p,
                            lls_error *err);

/* Runs a parameterless command (transaction control) on the current
 * connection. *r_out, when given, receives the result on success. */
int lls_pg_command(pg_backend *pg, const char *sql, PGresult **r_out, lls_error *err);

/* Runs SQL (no parameters) on the current connection without reconnecting:
 * for transaction control inside a unit of work, where a silent reconnect
 * would carry on outside the transaction. binary: results in binary (one
 * statement only); otherwise sql may hold several statements. */
int lls_pg_raw_exec(pg_backend *pg, const char *sql, int binary, PGresult **r_out, lls_error *err);

/* Opens the unit a multi-statement call runs in: a savepoint inside the
 * caller's transaction, else a transaction of its own (read_only for
 * cursor reads). */
int lls_pg_unit_begin(pg_backend *pg, int read_only, lls_error *err);

/* Ends the unit: commits (releases) when ok, otherwise undoes it as well as
 * a broken connection allows. Returns 0 only when ok and the commit held;
 * err (may be NULL when !ok) receives a commit failure. */
int lls_pg_unit_end(pg_backend *pg, int read_only, int ok, lls_error *err);

/* Declares a cursor (statement st) inside a read unit. */
int lls_pg_cursor_open(pg_backend *pg, int st, const pg_params *p, lls_error *err);

/* Closes the cursor and ends the read unit. A read whose rows were all
 * delivered has succeeded even when the closing COMMIT fails (a lost
 * connection is noticed, and re-established, by the next call); inside
 * the caller's transaction the cursor is closed explicitly, so a later
 * call can declare it again. */
int lls_pg_cursor_close(pg_backend *pg, const char *name, int ok, lls_error *err);

/* One write statement: inside the caller's transaction under a savepoint,
 * so that a failure leaves the transaction usable; outside one, alone (a
 * statement is atomic by itself). Returns the result or NULL. */
PGresult *lls_pg_write_one(pg_backend *pg, int st, const pg_params *p, lls_error *err);

/* Frees array buffers a big write left behind. */
void lls_pg_trim_arrays(pg_backend *pg);

/* jsonb refuses what JSON text allows: \u0000, and (from a buggy caller)
 * anything that is not JSON. Said in the caller's terms. */
void lls_pg_metadata_error(lls_error *err);

/* At most max bytes of s, cut at a UTF-8 character boundary, for messages. */
int lls_pg_msg_len(lls_str s, size_t max);


/* The handle's slots of lls_postgres_vt (see backend/backend.h for each
 * one's contract). */
lls_backend *lls_pg_open(lls_config *cfg, lls_error *err);
int lls_pg_check_options(lls_config *cfg, lls_error *err);
void lls_pg_close(lls_backend *b);
const char *lls_pg_location(lls_backend *b);
int lls_pg_begin(lls_backend *b, int depth, lls_error *err);
int lls_pg_begin_read(lls_backend *b, lls_error *err);
int lls_pg_commit(lls_backend *b, int depth, lls_error *err);
int lls_pg_rollback(lls_backend *b, int depth, lls_error *err);
int lls_pg_migrations(lls_backend *b, lls_rows *out, lls_error *err);
int lls_pg_check(lls_backend *b, lls_rows *problems, lls_error *err);

#endif
