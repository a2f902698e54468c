/*
 * conn.c -- the SQLite handle: open, close, error mapping, the statement
 * cache, transactions, migrations and the self-check (libsqlite3).
 *
 * Files use WAL: readers never block the writer, and a commit is one append
 * to the WAL, so a process killed mid-batch leaves either the whole batch or
 * none of it. Each handle belongs to one thread (SQLITE_OPEN_NOMUTEX); all
 * per-handle state lives in struct sqlite_backend.
 */
#include "backends/sqlite/conn.h"

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

/* Runs ad-hoc SQL (savepoints with a depth-dependent name, pragmas). */
static int exec_sql(sqlite_backend *b, const char *sql, const char *what, lls_error *err) {
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
    if (exec_sql(b, sql, "begin", err) != 0) return -1;
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
  if (exec_sql(b, sql, "commit", err) != 0) return -1;
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
  if (exec_sql(b, sql, "rollback", err) != 0) return -1;
  snprintf(sql, sizeof sql, LLS_SQLITE_RELEASE_FMT, depth);
  return exec_sql(b, sql, "rollback", err);
}

/* ------------------------------------------------------------ migrations */

/* Highest applied migration version, 0 for a fresh database. */
static int schema_version(sqlite_backend *b, int *version, lls_error *err) {
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
  return exec_sql(b, sql, what, err);
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

/* Brings the schema up to date. The common case (already current) is a read
 * that takes no write lock, so opening never waits for another writer; only
 * an upgrade takes BEGIN IMMEDIATE and re-reads the version under the lock,
 * so two processes creating the same file cannot both apply a migration. */
static int migrate(sqlite_backend *b, lls_error *err) {
  const int latest = lls_sqlite_nmigrations;
  int version;
  if (schema_version(b, &version, err) != 0) return -1;
  if (version == latest) return 0;
  if (version > latest)
    return lls_error_set(err, LLS_EVERSION,
                         "database schema version %d is newer than this library supports (%d)",
                         version, latest);

  if (exec_sql(b, lls_sqlite_sql[ST_BEGIN], "migrate", err) != 0) return -1;
  if (exec_sql(b, LLS_SQLITE_MIGRATIONS_TABLE, "migrate", err) != 0 ||
      schema_version(b, &version, err) != 0)
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
    if (add_columns(b, m, what, err) != 0 || exec_sql(b, m->sql, what, err) != 0 ||
        record_migration(b, m, err) != 0)
      goto fail;
  }
  if (exec_sql(b, lls_sqlite_sql[ST_COMMIT], "migrate", err) != 0) goto fail;
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

/* ------------------------------------------------------------------ open */

/* SQLite's own default page cache (2 MiB) is smaller than a modest store,
 * so pages would keep coming back through pread(); 32 MiB is an upper bound
 * reached only as the database grows, and keeps a streaming export or
 * import of any size within a bounded footprint. Memory-mapped reads are
 * off by default: they measured no faster here, and mapped pages count
 * against the process's resident size. */
#define DEFAULT_CACHE_KIB 32768
#define DEFAULT_MMAP_BYTES 0LL

/* The options open() reads, checked. */
typedef struct open_options {
  const char *sync; /* the PRAGMA synchronous level */
  long long busy_ms, cache, mmap_bytes;
} open_options;

/* Reads synchronous: SQLite's names plus the seed's modes. */
static int parse_synchronous(lls_config *cfg, const char **level, lls_error *err) {
  static const char *const names[][2] = {
      {"off", "OFF"},   {"normal", "NORMAL"},   {"full", "FULL"},
      {"fast", "OFF"},  {"balanced", "NORMAL"}, {"safe", "FULL"},
  };
  const char *v = lls_config_get(cfg, "synchronous");
  *level = "NORMAL";
  if (v == NULL) return 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strcasecmp(v, names[i][0]) == 0) {
      *level = names[i][1];
      return 0;
    }
  }
  return lls_error_set(err, LLS_EINVALID,
                       "option 'synchronous' must be off, normal or full"
                       " (or fast, balanced, safe), got '%s'",
                       v);
}

static int parse_options(lls_config *cfg, open_options *o, lls_error *err) {
  if (parse_synchronous(cfg, &o->sync, err) != 0 ||
      lls_config_int(cfg, "busy_timeout_ms", 5000, 0, INT_MAX, &o->busy_ms, err) != 0 ||
      lls_config_int(cfg, "cache_size", -DEFAULT_CACHE_KIB, -(long long)INT_MAX, INT_MAX,
                     &o->cache, err) != 0 ||
      lls_config_int(cfg, "mmap_size", DEFAULT_MMAP_BYTES, 0, LLONG_MAX, &o->mmap_bytes,
                     err) != 0)
    return -1;
  return 0;
}

/* journal_mode answers with the mode actually in force, which is how a
 * failure to switch (no shared memory, say) shows up. Switching a fresh
 * file to WAL needs an exclusive lock and SQLite returns SQLITE_BUSY for it
 * at once, without calling the busy handler, so two processes creating one
 * file would fail; retry here for up to the busy timeout instead. */
static int enable_wal(sqlite_backend *b, int busy_ms, lls_error *err) {
  sqlite3_stmt *s;
  int rc = sqlite3_prepare_v2(b->db, LLS_SQLITE_WAL, -1, &s, NULL);
  if (rc != SQLITE_OK) return lls_sqlite_fail(b->db, rc, "enable WAL", err);
  int waited = 0, nap = 1;
  while (((rc = sqlite3_step(s)) & 0xff) == SQLITE_BUSY && waited < busy_ms) {
    sqlite3_reset(s);
    waited += sqlite3_sleep(nap);
    if (nap < 32) nap *= 2;
  }
  if (rc != SQLITE_ROW) {
    lls_sqlite_fail(b->db, rc, "enable WAL", err);
    sqlite3_finalize(s);
    return -1;
  }
  const unsigned char *mode = sqlite3_column_text(s, 0);
  int ok = mode != NULL && strcasecmp((const char *)mode, "wal") == 0;
  if (!ok)
    lls_error_set(err, LLS_EIO, "cannot enable WAL journal mode on '%s' (SQLite kept '%s')",
                  b->path, mode ? (const char *)mode : "?");
  sqlite3_finalize(s);
  return ok ? 0 : -1;
}

/* Opens b->db on loc. */
static int open_file(sqlite_backend *b, const char *loc, lls_error *err) {
  /* Debian's SQLite is built with SQLITE_USE_URI, which makes a name
   * starting "file:" a URI even without SQLITE_OPEN_URI. Such a name is
   * always relative, so "./" keeps it a plain file name for the same file. */
  char *fname = NULL;
  const char *open_name = loc;
  if (strncmp(loc, "file:", 5) == 0) {
    fname = malloc(strlen(loc) + 3);
    if (fname == NULL) return lls_error_oom(err);
    memcpy(fname, "./", 2);
    strcpy(fname + 2, loc);
    open_name = fname;
  }
  int rc = sqlite3_open_v2(open_name, &b->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           NULL);
  free(fname);
  if (rc == SQLITE_OK) return 0;
  if (b->db == NULL) return lls_error_oom(err);
  lls_error_set(err, LLS_EIO, "cannot open SQLite database '%s': %s", loc,
                sqlite3_errmsg(b->db));
  err->sqlite_code = sqlite3_extended_errcode(b->db);
  return -1;
}

/* Result codes, busy timeout and the pragmas of o, on a just-opened b->db. */
static int configure(sqlite_backend *b, const open_options *o, int memory, lls_error *err) {
  sqlite3_extended_result_codes(b->db, 1);
  b->busy_ms = (int)o->busy_ms;
  sqlite3_busy_timeout(b->db, b->busy_ms);

  char pragma[80];
  snprintf(pragma, sizeof pragma, LLS_SQLITE_SYNCHRONOUS_FMT, o->sync);
  if (!memory && enable_wal(b, b->busy_ms, err) != 0) return -1;
  if (exec_sql(b, pragma, "set synchronous", err) != 0) return -1;
  snprintf(pragma, sizeof pragma, LLS_SQLITE_CACHE_SIZE_FMT, o->cache);
  if (exec_sql(b, pragma, "set cache_size", err) != 0) return -1;
  if (!memory) {
    snprintf(pragma, sizeof pragma, LLS_SQLITE_MMAP_SIZE_FMT, o->mmap_bytes);
    if (exec_sql(b, pragma, "set mmap_size", err) != 0) return -1;
  }
  return 0;
}

/* The file is first read by a pragma, so "not a database", a lock held
 * elsewhere or a too-new schema surface there: name the file in those
 * messages too, as sqlite3_open_v2's own failure does. */
static void name_file(lls_error *err, const char *loc) {
  if (strstr(err->message, loc) != NULL) return;
  char msg[sizeof err->message];
  snprintf(msg, sizeof msg, "%s", err->message);
  int sc = err->sqlite_code;
  lls_error_set(err, err->code, "SQLite database '%s': %s", loc, msg);
  err->sqlite_code = sc;
}

lls_backend *lls_sqlite_open(lls_config *cfg, lls_error *err) {
  open_options o;
  if (parse_options(cfg, &o, err) != 0) return NULL;

  const char *loc = cfg->location;
  int memory = strcmp(loc, ":memory:") == 0;
  if (!memory && loc[0] == '\0') {
    lls_error_set(err, LLS_EINVALID, "SQLite path must not be empty");
    return NULL;
  }

  sqlite_backend *b = calloc(1, sizeof *b);
  if (b == NULL) {
    lls_error_oom(err);
    return NULL;
  }
  b->base.ephemeral = memory;
  b->path = strdup(loc);
  b->tenant = strdup(cfg->tenant);
  if (b->path == NULL || b->tenant == NULL) {
    lls_error_oom(err);
    goto fail;
  }
  b->tenant_len = strlen(b->tenant);
  if (open_file(b, loc, err) != 0 || configure(b, &o, memory, err) != 0 ||
      migrate(b, err) != 0)
    goto fail;
  return &b->base;

fail:
  name_file(err, loc);
  lls_sqlite_close(&b->base);
  return NULL;
}

void lls_sqlite_close(lls_backend *base) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (b == NULL) return;
  for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(b->st[i]);
  if (b->db != NULL) {
    if (!sqlite3_get_autocommit(b->db))
      sqlite3_exec(b->db, lls_sqlite_sql[ST_ROLLBACK], NULL, NULL, NULL);
    sqlite3_close_v2(b->db);
  }
  lls_buf_free(&b->value);
  lls_buf_free(&b->upper);
  free(b->path);
  free(b->tenant);
  free(b);
}

const char *lls_sqlite_location(lls_backend *base) {
  return ((sqlite_backend *)base)->path;
}

/* ------------------------------------------------------------ self-check */

/* Appends one problem row; where says which check found it. */
static int add_problem(lls_rows *out, const char *where, const char *what, lls_error *err) {
  if (lls_rows_add(out, where, strlen(where), what, strlen(what)) == NULL)
    return lls_error_oom(err);
  return 0;
}

int lls_sqlite_check(lls_backend *base, lls_rows *problems, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *where = "integrity_check";
  sqlite3_stmt *s;
  int rc = sqlite3_prepare_v2(b->db, LLS_SQLITE_INTEGRITY_CHECK, -1, &s, NULL);
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
  if (rc == SQLITE_DONE) return 0;
  int primary = rc & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    char msg[300];
    snprintf(msg, sizeof msg, "the check could not run: %s", sqlite3_errmsg(b->db));
    return add_problem(problems, where, msg, err);
  }
  return lls_sqlite_fail(b->db, rc, "integrity check", err);
}
