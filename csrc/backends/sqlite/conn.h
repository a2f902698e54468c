/*
 * conn.h -- the SQLite handle and what every file of the backend shares:
 * the handle's vtable slots for transactions, migrations and the check
 * (open and close are in open.h), error mapping, the prepared-statement
 * cache and its binds, and the units writes and multi-statement reads run
 * in.
 */
#ifndef LLS_BACKENDS_SQLITE_CONN_H
#define LLS_BACKENDS_SQLITE_CONN_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "backends/sqlite/schema.h"

/* How many statements the component files may cache per handle. */
#define LLS_SQLITE_MAX_CSTMT 160

typedef struct sqlite_backend {
  lls_backend base;
  sqlite3 *db;
  char *path;      /* as given, for location() */
  char *tenant;    /* owned copy, bound as ?1 everywhere */
  size_t tenant_len;
  uint32_t tenant_sum; /* lls_rowsum_bytes(0, tenant): every row checksum starts so */
  int read_only;   /* opened read-only: mode = "ro", or the file is not writable */
  int depth;       /* open transaction levels (begin() minus commit/rollback) */
  int busy_ms;     /* busy_timeout_ms, restored after sweep() */
  sqlite3_stmt *st[ST_COUNT];
  /* Statements of the component files (sessions.c, ...), which keep
   * their SQL beside their code: cached by the address of their text. */
  struct {
    const char *sql;
    sqlite3_stmt *st;
  } cst[LLS_SQLITE_MAX_CSTMT];
  int ncst;
  lls_buf value;   /* get()'s result lives here until the next call */
  lls_buf upper;   /* scratch for lls_prefix_upper */
} sqlite_backend;

/* ------------------------------------------------------ the vtable slots */

/* depth 0: BEGIN IMMEDIATE, so the write lock (and any wait for it) comes
 * first, instead of a read transaction failing to upgrade halfway through
 * with SQLITE_BUSY_SNAPSHOT. depth d > 0: SAVEPOINT lls_d. */
int lls_sqlite_begin(lls_backend *base, int depth, lls_error *err);

/* A deferred BEGIN: the first read takes a WAL snapshot that holds until
 * the end, and no write lock is taken, so writers carry on meanwhile. */
int lls_sqlite_begin_read(lls_backend *base, lls_error *err);

/* A failed COMMIT is rolled back here, so the caller never sits in a
 * half-committed transaction; the store is then as it was at begin. */
int lls_sqlite_commit(lls_backend *base, int depth, lls_error *err);

/* Best effort: when SQLite has already rolled everything back there is
 * nothing left to undo, and that is not an error here (check_txn reports it
 * to the writes that follow, and the outer commit fails). */
int lls_sqlite_rollback(lls_backend *base, int depth, lls_error *err);

/* One row per applied migration: key "NNN_name", created_at = applied_at. */
int lls_sqlite_migrations(lls_backend *base, lls_rows *out, lls_error *err);

/* PRAGMA integrity_check over the whole file (every tenant shares its
 * pages), then every record's checksum (rowsum.h). A file too damaged for
 * the check to run is a finding too, not a failure of check(): corruption
 * is what the caller asked about. */
int lls_sqlite_check(lls_backend *base, lls_rows *problems, lls_error *err);

/* check()'s work: pragma (LLS_SQLITE_INTEGRITY_CHECK or _QUICK_CHECK) and,
 * when checksums is set, the checksum scan, which needs the current
 * schema. Problems go under "integrity_check" / "quick_check" and
 * "checksum". */
int lls_sqlite_run_check(sqlite_backend *b, const char *pragma, int checksums,
                         lls_rows *problems, lls_error *err);

/* ------------------------------------------------------------ migrations */

/* Highest applied migration version, 0 for a fresh database. */
int lls_sqlite_schema_version(sqlite_backend *b, int *version, lls_error *err);

/* Brings the schema up to date; LLS_EVERSION for a schema newer than this
 * library, or an older one on a read-only handle (which cannot upgrade). */
int lls_sqlite_migrate(sqlite_backend *b, lls_error *err);

/* ---------------------------------------------------------------- errors */

/* Ids can be 512 bytes; messages quote at most this many of them. */
#define ID_QUOTE 200
#define QUOTE_LEN(s) ((int)((s).len > ID_QUOTE ? ID_QUOTE : (s).len))

/* Fills *err from SQLite result code rc (the primary or extended code
 * returned by the failing call) and returns -1. `what` says which operation
 * failed; the message is "<what>: <sqlite3_errmsg>". A write refused
 * because the handle is read-only is LLS_EPERMISSION. */
int lls_sqlite_fail(sqlite3 *db, int rc, const char *what, lls_error *err);

/* When SQLite rolls a transaction back on its own (SQLITE_FULL, IOERR,
 * NOMEM, some BUSY cases) the connection drops back to autocommit while the
 * caller still believes a transaction is open; writing on would commit each
 * later statement separately. Refuse instead (-1, LLS_EIO), until the
 * caller unwinds; 0 when writing is safe. */
int lls_sqlite_check_txn(sqlite_backend *b, lls_error *err);

/* ------------------------------------------------------------ statements */

/* The cached statement `id`, prepared on first use; NULL + err on failure. */
sqlite3_stmt *lls_sqlite_stmt(sqlite_backend *b, int id, lls_error *err);

/* The statement for sql (a string with static storage, which identifies
 * it), prepared on first use and cached for the handle's life; NULL + err
 * on failure. For the component files, whose SQL lives beside their code
 * rather than in schema.c's table. */
sqlite3_stmt *lls_sqlite_sql_stmt(sqlite_backend *b, const char *sql, lls_error *err);

/* Returns a statement to its pristine state. Bindings are cleared too so a
 * cached statement never keeps a pointer to a caller's (freed) buffer. */
static inline void done(sqlite3_stmt *s) {
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
}

/* Binds bytes as TEXT (text != 0) or BLOB. A NULL pointer would bind SQL
 * NULL, so empty strings are bound from a static "" / as a zero blob. */
static inline int bind_bytes(sqlite3_stmt *s, int i, lls_str v, int text) {
  if (text)
    return sqlite3_bind_text64(s, i, v.ptr ? v.ptr : "", (sqlite3_uint64)v.len,
                               SQLITE_STATIC, SQLITE_UTF8);
  if (v.len == 0) return sqlite3_bind_zeroblob(s, i, 0);
  return sqlite3_bind_blob64(s, i, v.ptr, (sqlite3_uint64)v.len, SQLITE_STATIC);
}

static inline int bind_tenant(sqlite_backend *b, sqlite3_stmt *s) {
  return sqlite3_bind_text64(s, 1, b->tenant, (sqlite3_uint64)b->tenant_len,
                             SQLITE_STATIC, SQLITE_UTF8);
}

/* expires_at 0 ("never") is stored as NULL so the partial index skips it. */
static inline int bind_expiry(sqlite3_stmt *s, int i, int64_t expires_at) {
  return expires_at == 0 ? sqlite3_bind_null(s, i) : sqlite3_bind_int64(s, i, expires_at);
}

static inline sqlite3_int64 clamp_limit(size_t n) {
  return n > (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)n;
}

/* Column i as bytes; zero-length blobs come back from SQLite as NULL, which
 * is mapped to "" here. -1 when SQLite ran out of memory converting it. */
static inline int column_bytes(sqlite3_stmt *s, int i, lls_str *out, int text) {
  const void *p = text ? (const void *)sqlite3_column_text(s, i) : sqlite3_column_blob(s, i);
  int n = sqlite3_column_bytes(s, i);
  if (p == NULL && n > 0) return -1;
  if (p == NULL && sqlite3_errcode(sqlite3_db_handle(s)) == SQLITE_NOMEM) return -1;
  out->ptr = p ? (const char *)p : "";
  out->len = (size_t)n;
  return 0;
}

/* Runs ad-hoc SQL (savepoints with a depth-dependent name, pragmas,
 * migration scripts). */
int lls_sqlite_exec(sqlite_backend *b, const char *sql, const char *what, lls_error *err);

/* Runs a cached statement that returns no rows (transaction control). */
int lls_sqlite_exec_cached(sqlite_backend *b, int id, const char *what, lls_error *err);

/* Steps a bound statement that returns no rows (rc: the binding result, so
 * callers chain binds into it) and resets it. */
int lls_sqlite_run(sqlite_backend *b, sqlite3_stmt *s, int rc, const char *what,
                   lls_error *err);

/* ---------------------------------------------------------- transactions */

/* Rolls back the outermost transaction if SQLite still has one open; used on
 * error paths, where a second error must not hide the first. */
void lls_sqlite_abort_txn(sqlite_backend *b);

/* Opens the unit a write runs in: its own IMMEDIATE transaction (taking the
 * write lock up front, so the busy timeout applies once, before any work)
 * or, inside a caller's transaction, a savepoint that a failure unwinds
 * alone. *nested says which, for unit_commit / unit_abort. */
int lls_sqlite_unit_begin(sqlite_backend *b, int *nested, const char *what, lls_error *err);

int lls_sqlite_unit_commit(sqlite_backend *b, int nested, const char *what, lls_error *err);

/* Undoes everything since unit_begin; a second error must not hide the
 * first, so nothing is reported from here. */
void lls_sqlite_unit_abort(sqlite_backend *b, int nested);

/* Opens a read transaction unless one (or a write one) is already open, so
 * a multi-statement read sees one snapshot of the file. *own says whether
 * read_end must close it. */
int lls_sqlite_read_begin(sqlite_backend *b, int *own, const char *what, lls_error *err);

/* Ends what read_begin opened: commits it when ok, else rolls it back.
 * Returns 0 only when ok and the commit (if any) went through. */
int lls_sqlite_read_end(sqlite_backend *b, int own, int ok, const char *what, lls_error *err);

#endif
