/*
 * conn.c -- the SQLite handle: open, close, error mapping, the statement
 * cache, transactions, migrations and the self-check (libsqlite3).
 *
 * Each handle belongs to one thread (SQLITE_OPEN_NOMUTEX); all per-handle
 * state lives in struct sqlite_backend. Opening (and what is written to a
 * file before it is known to be a store) is in open.c.
 */
#include "backends/sqlite/conn.h"

#include "backends/sqlite/rowsum.h"
#include "base/clock.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- errors */

int lls_sqlite_fail(sqlite3 *db, int rc, const char *what, lls_error *err) {
  /* The connection's message describes rc only when its code agrees (bind
   * errors, for instance, are returned without touching it). */
  int ext = db ? sqlite3_extended_errcode(db) : rc;
  const char *msg;
  if (db != NULL && (ext & 0xff) == (rc & 0xff)) {
    msg = sqlite3_errmsg(db);
  } else {
    ext = rc;
    msg = sqlite3_errstr(rc);
  }
  lls_code code;
  if ((rc & 0xff) == SQLITE_READONLY && db != NULL && sqlite3_db_readonly(db, "main") == 1) {
    lls_error_set(err, LLS_EPERMISSION,
                  "%s: the store is open read-only (mode = \"ro\", or this process may not"
                  " write the file or its directory)", what);
    err->sqlite_code = ext;
    return -1;
  }
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED: code = LLS_EBUSY; break;
  case SQLITE_CONSTRAINT: code = LLS_ECONFLICT; break;
  case SQLITE_TOOBIG:
  case SQLITE_RANGE: code = LLS_EINVALID; break;
  case SQLITE_NOMEM:
    lls_error_set(err, LLS_EIO, "out of memory (%s)", what);
    err->sqlite_code = ext;
    return -1;
  default: code = LLS_EIO; break;
  }
  lls_error_set(err, code, "%s: %s", what, msg);
  err->sqlite_code = ext;
  return -1;
}

int lls_sqlite_check_txn(sqlite_backend *b, lls_error *err) {
  if (b->depth > 0 && sqlite3_get_autocommit(b->db)) {
    lls_error_set(err, LLS_EIO,
                  "the transaction was rolled back by SQLite after an earlier error");
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------ statements */

sqlite3_stmt *lls_sqlite_stmt(sqlite_backend *b, int id, lls_error *err) {
  if (b->st[id] == NULL) {
    int rc = sqlite3_prepare_v3(b->db, lls_sqlite_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                &b->st[id], NULL);
    if (rc != SQLITE_OK) {
      lls_sqlite_fail(b->db, rc, "prepare", err);
      sqlite3_finalize(b->st[id]);
      b->st[id] = NULL;
      return NULL;
    }
  }
  return b->st[id];
}

sqlite3_stmt *lls_sqlite_sql_stmt(sqlite_backend *b, const char *sql, lls_error *err) {
  for (int i = 0; i < b->ncst; i++)
    if (b->cst[i].sql == sql) return b->cst[i].st;
  if (b->ncst == LLS_SQLITE_MAX_CSTMT) {
    lls_error_set(err, LLS_EINVALID, "too many component statements (%d)", b->ncst);
    return NULL;
  }
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v3(b->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
  if (rc != SQLITE_OK) {
    lls_sqlite_fail(b->db, rc, "prepare", err);
    sqlite3_finalize(st);
    return NULL;
  }
  b->cst[b->ncst].sql = sql;
  b->cst[b->ncst].st = st;
  b->ncst++;
  return st;
}

int lls_sqlite_run(sqlite_backend *b, sqlite3_stmt *s, int rc, const char *what,
                   lls_error *err) {
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, what, err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

int lls_sqlite_exec_cached(sqlite_backend *b, int id, const char *what, lls_error *err) {
  sqlite3_stmt *s = lls_sqlite_stmt(b, id, err);
  return s == NULL ? -1 : lls_sqlite_run(b, s, SQLITE_OK, what, err);
}

int lls_sqlite_exec(sqlite_backend *b, const char *sql, const char *what, lls_error *err) {
  int rc = sqlite3_exec(b->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : lls_sqlite_fail(b->db, rc, what, err);
}

/* ---------------------------------------------------------- transactions */

void lls_sqlite_abort_txn(sqlite_backend *b) {
  if (!sqlite3_get_autocommit(b->db)) {
    lls_error ignored;
    if (lls_sqlite_exec_cached(b, ST_ROLLBACK, "rollback", &ignored) != 0)
      sqlite3_exec(b->db, lls_sqlite_sql[ST_ROLLBACK], NULL, NULL, NULL);
  }
}

int lls_sqlite_unit_begin(sqlite_backend *b, int *nested, const char *what, lls_error *err) {
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  *nested = b->depth > 0;
  return lls_sqlite_exec_cached(b, *nested ? ST_SP_APPLY : ST_BEGIN, what, err);
}

int lls_sqlite_unit_commit(sqlite_backend *b, int nested, const char *what, lls_error *err) {
  return lls_sqlite_exec_cached(b, nested ? ST_SP_RELEASE : ST_COMMIT, what, err);
}

void lls_sqlite_unit_abort(sqlite_backend *b, int nested) {
  if (nested) {
    /* Both may fail only if SQLite already dropped the whole transaction,
     * which check_txn reports on the caller's next write. */
    lls_error ignored;
    if (lls_sqlite_exec_cached(b, ST_SP_ROLLBACK, "rollback", &ignored) == 0)
      lls_sqlite_exec_cached(b, ST_SP_RELEASE, "rollback", &ignored);
  } else {
    lls_sqlite_abort_txn(b);
  }
}

int lls_sqlite_read_begin(sqlite_backend *b, int *own, const char *what, lls_error *err) {
  *own = sqlite3_get_autocommit(b->db);
  return *own ? lls_sqlite_exec_cached(b, ST_BEGIN_READ, what, err) : 0;
}

int lls_sqlite_read_end(sqlite_backend *b, int own, int ok, const char *what, lls_error *err) {
  if (!own) return ok ? 0 : -1;
  if (ok && lls_sqlite_exec_cached(b, ST_COMMIT, what, err) == 0) return 0;
  lls_sqlite_abort_txn(b);
  return -1;
}

int lls_sqlite_begin(lls_backend *base, int depth, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (depth == 0) {
    if (lls_sqlite_exec_cached(b, ST_BEGIN, "begin", err) != 0) return -1;
  } else {
    if (lls_sqlite_check_txn(b, err) != 0) return -1;
    char sql[48];
    snprintf(sql, sizeof sql, LLS_SQLITE_SAVEPOINT_FMT, depth);
    if (lls_sqlite_exec(b, sql, "begin", err) != 0) return -1;
  }
  b->depth = depth + 1;
  return 0;
}

int lls_sqlite_begin_read(lls_backend *base, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (lls_sqlite_exec_cached(b, ST_BEGIN_READ, "begin", err) != 0) return -1;
  b->depth = 1;
  return 0;
}

int lls_sqlite_commit(lls_backend *base, int depth, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (depth == 0) {
    int rc = -1;
    if (lls_sqlite_check_txn(b, err) == 0)
      rc = lls_sqlite_exec_cached(b, ST_COMMIT, "commit", err);
    if (rc != 0) lls_sqlite_abort_txn(b);
    b->depth = 0;
    return rc;
  }
  if (lls_sqlite_check_txn(b, err) != 0) return -1;
  char sql[48];
  snprintf(sql, sizeof sql, LLS_SQLITE_RELEASE_FMT, depth);
  if (lls_sqlite_exec(b, sql, "commit", err) != 0) return -1;
  b->depth = depth;
  return 0;
}

int lls_sqlite_rollback(lls_backend *base, int depth, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  b->depth = depth;
  if (sqlite3_get_autocommit(b->db)) return 0;
  if (depth == 0) {
    if (lls_sqlite_exec_cached(b, ST_ROLLBACK, "rollback", err) == 0) return 0;
    /* The cached statement may be the thing that failed (out of memory). */
    int rc = sqlite3_exec(b->db, lls_sqlite_sql[ST_ROLLBACK], NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : -1;
  }
  char sql[64];
  snprintf(sql, sizeof sql, LLS_SQLITE_ROLLBACK_TO_FMT, depth);
  if (lls_sqlite_exec(b, sql, "rollback", err) != 0) return -1;
  snprintf(sql, sizeof sql, LLS_SQLITE_RELEASE_FMT, depth);
  return lls_sqlite_exec(b, sql, "rollback", err);
}

/* ------------------------------------------------------------ migrations */

int lls_sqlite_schema_version(sqlite_backend *b, int *version, lls_error *err) {
  sqlite3_stmt *s;
  int rc = sqlite3_prepare_v2(b->db, LLS_SQLITE_HAS_MIGRATIONS, -1, &s, NULL);
  if (rc != SQLITE_OK) return lls_sqlite_fail(b->db, rc, "read schema", err);
  rc = sqlite3_step(s);
  int exists = rc == SQLITE_ROW && sqlite3_column_int(s, 0) > 0;
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW) return lls_sqlite_fail(b->db, rc, "read schema", err);
  *version = 0;
  if (!exists) return 0;
  rc = sqlite3_prepare_v2(b->db, LLS_SQLITE_MAX_VERSION, -1, &s, NULL);
  if (rc != SQLITE_OK) return lls_sqlite_fail(b->db, rc, "read migrations", err);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) *version = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  return rc == SQLITE_ROW ? 0 : lls_sqlite_fail(b->db, rc, "read migrations", err);
}

static int record_migration(sqlite_backend *b, const lls_sqlite_migration *m,
                            lls_error *err) {
  sqlite3_stmt *s;
  int rc = sqlite3_prepare_v2(b->db, LLS_SQLITE_RECORD_MIGRATION, -1, &s, NULL);
  if (rc != SQLITE_OK) return lls_sqlite_fail(b->db, rc, "record migration", err);
  sqlite3_bind_int(s, 1, m->version);
  sqlite3_bind_text(s, 2, m->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 3, lls_now_us());
  rc = sqlite3_step(s);
  sqlite3_finalize(s);
  return rc == SQLITE_DONE ? 0 : lls_sqlite_fail(b->db, rc, "record migration", err);
}

/* Runs an ALTER TABLE ... ADD COLUMN unless the table already has it. */
static int add_column(sqlite_backend *b, const char *table, const char *column,
                      const char *type, const char *what, lls_error *err) {
  sqlite3_stmt *s;
  int rc = sqlite3_prepare_v2(b->db, LLS_SQLITE_HAS_COLUMN, -1, &s, NULL);
  if (rc != SQLITE_OK) return lls_sqlite_fail(b->db, rc, what, err);
  sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, column, -1, SQLITE_STATIC);
  rc = sqlite3_step(s);
  int has = rc == SQLITE_ROW && sqlite3_column_int(s, 0) > 0;
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW) return lls_sqlite_fail(b->db, rc, what, err);
  if (has) return 0;
  char sql[160];
  snprintf(sql, sizeof sql, LLS_SQLITE_ADD_COLUMN_FMT, table, column, type);
  return lls_sqlite_exec(b, sql, what, err);
}

/* Adds the columns lls_sqlite_add_columns lists for migration m. */
static int add_columns(sqlite_backend *b, const lls_sqlite_migration *m, const char *what,
                       lls_error *err) {
  for (size_t i = 0; i < lls_sqlite_nadd_columns; i++) {
    const lls_sqlite_add_column *c = &lls_sqlite_add_columns[i];
    if (c->version == m->version && add_column(b, c->table, c->column, c->type, what, err) != 0)
      return -1;
  }
  return 0;
}

/* The common case (already current) is a read that takes no write lock, so
 * opening never waits for another writer; only an upgrade takes BEGIN
 * IMMEDIATE and re-reads the version under the lock, so two processes
 * creating the same file cannot both apply a migration. */
int lls_sqlite_migrate(sqlite_backend *b, lls_error *err) {
  const int latest = lls_sqlite_nmigrations;
  int version;
  if (lls_sqlite_schema_version(b, &version, err) != 0) return -1;
  if (version == latest) return 0;
  if (version > latest)
    return lls_error_set(err, LLS_EVERSION,
                         "database schema version %d is newer than this library supports (%d)",
                         version, latest);
  if (b->read_only)
    return lls_error_set(err, LLS_EVERSION,
                         "the store has schema version %d and this library needs %d: open it"
                         " once read-write to upgrade it (a read-only open writes nothing)",
                         version, latest);

  if (lls_sqlite_exec(b, lls_sqlite_sql[ST_BEGIN], "migrate", err) != 0) return -1;
  if (lls_sqlite_exec(b, LLS_SQLITE_MIGRATIONS_TABLE, "migrate", err) != 0 ||
      lls_sqlite_schema_version(b, &version, err) != 0)
    goto fail;
  if (version > latest) {
    lls_error_set(err, LLS_EVERSION,
                  "database schema version %d is newer than this library supports (%d)",
                  version, latest);
    goto fail;
  }
  for (int i = 0; i < latest; i++) {
    const lls_sqlite_migration *m = &lls_sqlite_migration_scripts[i];
    if (m->version <= version) continue;
    char what[64];
    snprintf(what, sizeof what, "migration %03d_%s", m->version, m->name);
    if (add_columns(b, m, what, err) != 0 || lls_sqlite_exec(b, m->sql, what, err) != 0 ||
        record_migration(b, m, err) != 0)
      goto fail;
  }
  if (lls_sqlite_exec(b, lls_sqlite_sql[ST_COMMIT], "migrate", err) != 0) goto fail;
  return 0;
fail:
  sqlite3_exec(b->db, lls_sqlite_sql[ST_ROLLBACK], NULL, NULL, NULL);
  return -1;
}

int lls_sqlite_migrations(lls_backend *base, lls_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = lls_sqlite_stmt(b, ST_MIGRATIONS, err);
  if (s == NULL) return -1;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    char key[96];
    const unsigned char *name = sqlite3_column_text(s, 1);
    int n = snprintf(key, sizeof key, "%03d_%s", sqlite3_column_int(s, 0),
                     name ? (const char *)name : "");
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof key) n = (int)sizeof key - 1;
    lls_row *row = lls_rows_add(out, key, (size_t)n, NULL, 0);
    if (row == NULL) {
      done(s);
      return lls_error_oom(err);
    }
    row->created_at = row->updated_at = sqlite3_column_int64(s, 2);
  }
  if (rc != SQLITE_DONE) {
    lls_sqlite_fail(b->db, rc, "migrations", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

/* ------------------------------------------------------------ self-check */

/* Appends one problem row; where says which check found it. */
static int add_problem(lls_rows *out, const char *where, const char *what, lls_error *err) {
  if (lls_rows_add(out, where, strlen(where), what, strlen(what)) == NULL)
    return lls_error_oom(err);
  return 0;
}

int lls_sqlite_run_check(sqlite_backend *b, const char *pragma, int checksums,
                         lls_rows *problems, lls_error *err) {
  const char *where = pragma + strlen("PRAGMA ");
  sqlite3_stmt *s;
  int rc = sqlite3_prepare_v2(b->db, pragma, -1, &s, NULL);
  if (rc == SQLITE_OK) {
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      const unsigned char *msg = sqlite3_column_text(s, 0);
      if (msg == NULL) {
        sqlite3_finalize(s);
        return lls_error_oom(err);
      }
      if (strcmp((const char *)msg, "ok") != 0 &&
          add_problem(problems, where, (const char *)msg, err) != 0) {
        sqlite3_finalize(s);
        return -1;
      }
    }
    sqlite3_finalize(s);
  }
  if (rc == SQLITE_DONE) return checksums ? lls_rowsum_scan(b->db, problems, err) : 0;
  int primary = rc & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    char msg[300];
    snprintf(msg, sizeof msg, "the check could not run: %s", sqlite3_errmsg(b->db));
    return add_problem(problems, where, msg, err);
  }
  return lls_sqlite_fail(b->db, rc, "integrity check", err);
}

int lls_sqlite_check(lls_backend *base, lls_rows *problems, lls_error *err) {
  return lls_sqlite_run_check((sqlite_backend *)base, LLS_SQLITE_INTEGRITY_CHECK, 1, problems,
                              err);
}
