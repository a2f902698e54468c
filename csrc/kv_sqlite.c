/*
 * kv_sqlite.c -- the SQLite key-value backend (libsqlite3).
 *
 * Schema (created by the migrations below; readable with the sqlite3 CLI):
 *
 *   CREATE TABLE llmspell_migrations (
 *     version    INTEGER PRIMARY KEY,   -- 1, 2, ... applied in order
 *     name       TEXT NOT NULL,         -- "kv_store"
 *     applied_at INTEGER NOT NULL       -- microseconds since the epoch
 *   );
 *
 *   -- migration 1: kv_store
 *   CREATE TABLE kv_store (
 *     tenant_id  TEXT NOT NULL,
 *     key        TEXT NOT NULL,         -- BINARY collation: byte order
 *     value      BLOB NOT NULL,         -- arbitrary bytes, '' stays ''
 *     metadata   TEXT,                  -- JSON, reserved (export/import)
 *     created_at INTEGER NOT NULL,      -- microseconds since the epoch
 *     updated_at INTEGER NOT NULL,      -- microseconds since the epoch
 *     expires_at INTEGER,               -- microseconds; NULL = never
 *     PRIMARY KEY (tenant_id, key)
 *   ) WITHOUT ROWID;
 *   CREATE INDEX kv_store_expires ON kv_store (tenant_id, expires_at)
 *     WHERE expires_at IS NOT NULL;
 *
 * A row is visible iff expires_at IS NULL OR expires_at > now. Expired rows
 * stay until sweep() removes them through kv_store_expires, so the hot path
 * never scans for them.
 *
 * Files use WAL: readers never block the writer, and a commit is one append
 * to the WAL, so a process killed mid-batch leaves either the whole batch or
 * none of it. Each handle belongs to one thread (SQLITE_OPEN_NOMUTEX); all
 * per-handle state lives in struct sqlite_backend.
 */
#include "backend.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------ migrations */

/* Append-only: a released version is never edited, later features (vector
 * tables, ...) add entries. Every script must be idempotent by itself too,
 * so a database whose bookkeeping table was lost can still be upgraded. */
typedef struct migration {
  int version;
  const char *name;
  const char *sql;
} migration;

static const migration MIGRATIONS[] = {
    {1, "kv_store",
     "CREATE TABLE IF NOT EXISTS kv_store (\n"
     "  tenant_id  TEXT NOT NULL,\n"
     "  key        TEXT NOT NULL,\n"
     "  value      BLOB NOT NULL,\n"
     "  metadata   TEXT,\n"
     "  created_at INTEGER NOT NULL,\n"
     "  updated_at INTEGER NOT NULL,\n"
     "  expires_at INTEGER,\n"
     "  PRIMARY KEY (tenant_id, key)\n"
     ") WITHOUT ROWID;\n"
     "CREATE INDEX IF NOT EXISTS kv_store_expires ON kv_store (tenant_id, expires_at)\n"
     "  WHERE expires_at IS NOT NULL;"},
};

#define NMIGRATIONS ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

/* ------------------------------------------------------------ statements */

/* ?1 is always the handle's tenant. Visibility is spelled out in each
 * statement rather than in a view so the planner sees plain index terms. */
enum {
  ST_BEGIN,
  ST_BEGIN_READ,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_SP_APPLY,
  ST_SP_RELEASE,
  ST_SP_ROLLBACK,
  ST_GET,
  ST_GET_ROW,
  ST_SET,
  ST_DEL,
  ST_SCAN_GE,
  ST_SCAN_GE_LT,
  ST_SCAN_GT,
  ST_SCAN_GT_LT,
  ST_CLEAR,
  ST_STATS,
  ST_SWEEP_PROBE,
  ST_SWEEP,
  ST_MIGRATIONS,
  ST_COUNT
};

#define VISIBLE "(expires_at IS NULL OR expires_at > ?3)"

/* The CASE keeps keys-only scans from reading values (and their overflow
 * pages) at all: SQLite extracts record columns lazily. */
#define SCAN_HEAD                                                                    \
  "SELECT key, CASE WHEN ?5 THEN x'' ELSE value END, created_at, updated_at,"        \
  " expires_at FROM kv_store WHERE tenant_id = ?1 AND "
#define SCAN_TAIL " AND (expires_at IS NULL OR expires_at > ?3) ORDER BY key LIMIT ?6"

static const char *const SQL[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SP_APPLY] = "SAVEPOINT lls_apply",
    [ST_SP_RELEASE] = "RELEASE lls_apply",
    [ST_SP_ROLLBACK] = "ROLLBACK TO lls_apply",
    [ST_GET] = "SELECT value FROM kv_store WHERE tenant_id = ?1 AND key = ?2 AND " VISIBLE,
    [ST_GET_ROW] = "SELECT value, created_at, updated_at, expires_at FROM kv_store"
                   " WHERE tenant_id = ?1 AND key = ?2 AND " VISIBLE,
    /* An expired row counts as absent, so it gets a fresh created_at. */
    [ST_SET] = "INSERT INTO kv_store (tenant_id, key, value, metadata, created_at,"
               " updated_at, expires_at) VALUES (?1, ?2, ?4, NULL, ?3, ?3, ?5)"
               " ON CONFLICT (tenant_id, key) DO UPDATE SET"
               " value = excluded.value,"
               " metadata = CASE WHEN kv_store.expires_at IS NULL"
               "   OR kv_store.expires_at > ?3 THEN kv_store.metadata END,"
               " created_at = CASE WHEN kv_store.expires_at IS NULL"
               "   OR kv_store.expires_at > ?3 THEN kv_store.created_at ELSE ?3 END,"
               " updated_at = ?3, expires_at = excluded.expires_at",
    /* An expired row is left for sweep(): deleting it here would need a
     * second statement (or RETURNING, SQLite >= 3.35) to tell the cases
     * apart, and it is invisible either way. */
    [ST_DEL] = "DELETE FROM kv_store WHERE tenant_id = ?1 AND key = ?2 AND " VISIBLE,
    /* Four shapes so both bounds are plain index range terms: an `?x IS NULL
     * OR key < ?x` form would make SQLite walk to the end of the tenant. */
    [ST_SCAN_GE] = SCAN_HEAD "key >= ?2" SCAN_TAIL,
    [ST_SCAN_GE_LT] = SCAN_HEAD "key >= ?2 AND key < ?4" SCAN_TAIL,
    [ST_SCAN_GT] = SCAN_HEAD "key > ?2" SCAN_TAIL,
    [ST_SCAN_GT_LT] = SCAN_HEAD "key > ?2 AND key < ?4" SCAN_TAIL,
    [ST_CLEAR] = "DELETE FROM kv_store WHERE tenant_id = ?1",
    /* length() of TEXT counts characters; the cast makes it count bytes. */
    [ST_STATS] = "SELECT count(*), coalesce(sum(length(CAST(key AS BLOB)) + length(value)), 0)"
                 " FROM kv_store WHERE tenant_id = ?1 AND " VISIBLE,
    /* The explicit IS NOT NULL lets the planner pick the partial index. */
    [ST_SWEEP_PROBE] = "SELECT 1 FROM kv_store WHERE tenant_id = ?1"
                       " AND expires_at IS NOT NULL AND expires_at <= ?3 LIMIT 1",
    [ST_SWEEP] = "DELETE FROM kv_store WHERE tenant_id = ?1 AND key IN"
                 " (SELECT key FROM kv_store WHERE tenant_id = ?1"
                 " AND expires_at IS NOT NULL AND expires_at <= ?3 LIMIT ?2)",
    [ST_MIGRATIONS] = "SELECT version, name, applied_at FROM llmspell_migrations"
                      " ORDER BY version",
};

/* --------------------------------------------------------------- handle */

typedef struct sqlite_backend {
  lls_backend base;
  sqlite3 *db;
  char *path;      /* as given, for location() */
  char *tenant;    /* owned copy, bound as ?1 everywhere */
  size_t tenant_len;
  int depth;       /* open transaction levels (begin() minus commit/rollback) */
  int busy_ms;     /* busy_timeout_ms, restored after sweep() */
  sqlite3_stmt *st[ST_COUNT];
  lls_buf value;   /* get()'s result lives here until the next call */
  lls_buf upper;   /* scratch for lls_prefix_upper */
} sqlite_backend;

/* ---------------------------------------------------------------- errors */

/* Fills *err from SQLite result code rc (the primary or extended code
 * returned by the failing call) and returns -1. `what` says which operation
 * failed; the message is "<what>: <sqlite3_errmsg>". */
static int fail(sqlite3 *db, int rc, const char *what, lls_error *err) {
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

static int oom(lls_error *err) {
  lls_error_set(err, LLS_EIO, "out of memory");
  err->sqlite_code = SQLITE_NOMEM;
  return -1;
}

/* When SQLite rolls a transaction back on its own (SQLITE_FULL, IOERR,
 * NOMEM, some BUSY cases) the connection drops back to autocommit while the
 * caller still believes a transaction is open; writing on would commit each
 * later statement separately. Refuse instead, until the caller unwinds. */
static int check_txn(sqlite_backend *b, lls_error *err) {
  if (b->depth > 0 && sqlite3_get_autocommit(b->db)) {
    lls_error_set(err, LLS_EIO,
                  "the transaction was rolled back by SQLite after an earlier error");
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------ statement helpers */

/* The cached statement `id`, prepared on first use; NULL + err on failure. */
static sqlite3_stmt *stmt(sqlite_backend *b, int id, lls_error *err) {
  if (b->st[id] == NULL) {
    int rc = sqlite3_prepare_v3(b->db, SQL[id], -1, SQLITE_PREPARE_PERSISTENT, &b->st[id],
                                NULL);
    if (rc != SQLITE_OK) {
      fail(b->db, rc, "prepare", err);
      sqlite3_finalize(b->st[id]);
      b->st[id] = NULL;
      return NULL;
    }
  }
  return b->st[id];
}

/* Returns a statement to its pristine state. Bindings are cleared too so a
 * cached statement never keeps a pointer to a caller's (freed) buffer. */
static void done(sqlite3_stmt *s) {
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
}

/* Binds bytes as TEXT (text != 0) or BLOB. A NULL pointer would bind SQL
 * NULL, so empty strings are bound from a static "" / as a zero blob. */
static int bind_bytes(sqlite3_stmt *s, int i, lls_str v, int text) {
  if (text)
    return sqlite3_bind_text64(s, i, v.ptr ? v.ptr : "", (sqlite3_uint64)v.len,
                               SQLITE_STATIC, SQLITE_UTF8);
  if (v.len == 0) return sqlite3_bind_zeroblob(s, i, 0);
  return sqlite3_bind_blob64(s, i, v.ptr, (sqlite3_uint64)v.len, SQLITE_STATIC);
}

static int bind_tenant(sqlite_backend *b, sqlite3_stmt *s) {
  return sqlite3_bind_text64(s, 1, b->tenant, (sqlite3_uint64)b->tenant_len,
                             SQLITE_STATIC, SQLITE_UTF8);
}

/* expires_at 0 ("never") is stored as NULL so the partial index skips it. */
static int bind_expiry(sqlite3_stmt *s, int i, int64_t expires_at) {
  return expires_at == 0 ? sqlite3_bind_null(s, i) : sqlite3_bind_int64(s, i, expires_at);
}

static sqlite3_int64 clamp_limit(size_t n) {
  return n > (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)n;
}

/* Column i as bytes; zero-length blobs come back from SQLite as NULL, which
 * is mapped to "" here. -1 when SQLite ran out of memory converting it. */
static int column_bytes(sqlite3_stmt *s, int i, lls_str *out, int text) {
  const void *p = text ? (const void *)sqlite3_column_text(s, i) : sqlite3_column_blob(s, i);
  int n = sqlite3_column_bytes(s, i);
  if (p == NULL && n > 0) return -1;
  if (p == NULL && sqlite3_errcode(sqlite3_db_handle(s)) == SQLITE_NOMEM) return -1;
  out->ptr = p ? (const char *)p : "";
  out->len = (size_t)n;
  return 0;
}

/* Runs a cached statement that returns no rows (transaction control). */
static int exec_cached(sqlite_backend *b, int id, const char *what, lls_error *err) {
  sqlite3_stmt *s = stmt(b, id, err);
  if (s == NULL) return -1;
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, what, err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

/* Runs ad-hoc SQL (savepoints with a depth-dependent name, pragmas). */
static int exec_sql(sqlite_backend *b, const char *sql, const char *what, lls_error *err) {
  int rc = sqlite3_exec(b->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : fail(b->db, rc, what, err);
}

/* Rolls back the outermost transaction if SQLite still has one open; used on
 * error paths, where a second error must not hide the first. */
static void abort_txn(sqlite_backend *b) {
  if (!sqlite3_get_autocommit(b->db)) {
    lls_error ignored;
    if (exec_cached(b, ST_ROLLBACK, "rollback", &ignored) != 0)
      sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
  }
}

/* ---------------------------------------------------------------- open */

static int64_t wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Highest applied migration version, 0 for a fresh database. */
static int schema_version(sqlite_backend *b, int *version, lls_error *err) {
  sqlite3_stmt *s;
  int rc = sqlite3_prepare_v2(b->db,
                              "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                              " AND name = 'llmspell_migrations')",
                              -1, &s, NULL);
  if (rc != SQLITE_OK) return fail(b->db, rc, "read schema", err);
  rc = sqlite3_step(s);
  int exists = rc == SQLITE_ROW && sqlite3_column_int(s, 0) > 0;
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW) return fail(b->db, rc, "read schema", err);
  *version = 0;
  if (!exists) return 0;
  rc = sqlite3_prepare_v2(b->db, "SELECT coalesce(max(version), 0) FROM llmspell_migrations",
                          -1, &s, NULL);
  if (rc != SQLITE_OK) return fail(b->db, rc, "read migrations", err);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) *version = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  return rc == SQLITE_ROW ? 0 : fail(b->db, rc, "read migrations", err);
}

static int record_migration(sqlite_backend *b, const migration *m, lls_error *err) {
  sqlite3_stmt *s;
  int rc = sqlite3_prepare_v2(b->db,
                              "INSERT INTO llmspell_migrations (version, name, applied_at)"
                              " VALUES (?1, ?2, ?3)",
                              -1, &s, NULL);
  if (rc != SQLITE_OK) return fail(b->db, rc, "record migration", err);
  sqlite3_bind_int(s, 1, m->version);
  sqlite3_bind_text(s, 2, m->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 3, wall_us());
  rc = sqlite3_step(s);
  sqlite3_finalize(s);
  return rc == SQLITE_DONE ? 0 : fail(b->db, rc, "record migration", err);
}

/* Brings the schema up to date. The common case (already current) is a read
 * that takes no write lock, so opening never waits for another writer; only
 * an upgrade takes BEGIN IMMEDIATE and re-reads the version under the lock,
 * so two processes creating the same file cannot both apply a migration. */
static int migrate(sqlite_backend *b, lls_error *err) {
  int version;
  if (schema_version(b, &version, err) != 0) return -1;
  if (version == NMIGRATIONS) return 0;
  if (version > NMIGRATIONS)
    return lls_error_set(err, LLS_EVERSION,
                         "database schema version %d is newer than this library supports (%d)",
                         version, NMIGRATIONS);

  if (exec_sql(b, "BEGIN IMMEDIATE", "migrate", err) != 0) return -1;
  if (exec_sql(b,
               "CREATE TABLE IF NOT EXISTS llmspell_migrations (\n"
               "  version    INTEGER PRIMARY KEY,\n"
               "  name       TEXT NOT NULL,\n"
               "  applied_at INTEGER NOT NULL\n"
               ")",
               "migrate", err) != 0 ||
      schema_version(b, &version, err) != 0)
    goto fail;
  if (version > NMIGRATIONS) {
    lls_error_set(err, LLS_EVERSION,
                  "database schema version %d is newer than this library supports (%d)",
                  version, NMIGRATIONS);
    goto fail;
  }
  for (int i = 0; i < NMIGRATIONS; i++) {
    const migration *m = &MIGRATIONS[i];
    if (m->version <= version) continue;
    char what[64];
    snprintf(what, sizeof what, "migration %03d_%s", m->version, m->name);
    if (exec_sql(b, m->sql, what, err) != 0 || record_migration(b, m, err) != 0) goto fail;
  }
  if (exec_sql(b, "COMMIT", "migrate", err) != 0) goto fail;
  return 0;
fail:
  sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
  return -1;
}

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

/* journal_mode answers with the mode actually in force, which is how a
 * failure to switch (no shared memory, say) shows up. Switching a fresh
 * file to WAL needs an exclusive lock and SQLite returns SQLITE_BUSY for it
 * at once, without calling the busy handler, so two processes creating one
 * file would fail; retry here for up to the busy timeout instead. */
static int enable_wal(sqlite_backend *b, int busy_ms, lls_error *err) {
  sqlite3_stmt *s;
  int rc = sqlite3_prepare_v2(b->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
  if (rc != SQLITE_OK) return fail(b->db, rc, "enable WAL", err);
  int waited = 0, nap = 1;
  while (((rc = sqlite3_step(s)) & 0xff) == SQLITE_BUSY && waited < busy_ms) {
    sqlite3_reset(s);
    waited += sqlite3_sleep(nap);
    if (nap < 32) nap *= 2;
  }
  if (rc != SQLITE_ROW) {
    fail(b->db, rc, "enable WAL", err);
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

static void sqlite_close(lls_backend *base);

/* SQLite's own default page cache (2 MiB) is smaller than a modest store,
 * so pages would keep coming back through pread(); 64 MiB is an upper bound
 * that is only reached as the database grows. Reads through a memory map
 * skip a system call and a copy per page. */
#define DEFAULT_CACHE_KIB 65536
#define DEFAULT_MMAP_BYTES 268435456LL

/* Opens cfg->location (a path or ":memory:"). Options: synchronous,
 * busy_timeout_ms, cache_size, mmap_size. */
static lls_backend *sqlite_open(lls_config *cfg, lls_error *err) {
  const char *sync;
  long long busy_ms, cache, mmap_bytes;
  if (parse_synchronous(cfg, &sync, err) != 0 ||
      lls_config_int(cfg, "busy_timeout_ms", 5000, 0, INT_MAX, &busy_ms, err) != 0 ||
      lls_config_int(cfg, "cache_size", -DEFAULT_CACHE_KIB, -(long long)INT_MAX, INT_MAX,
                     &cache, err) != 0 ||
      lls_config_int(cfg, "mmap_size", DEFAULT_MMAP_BYTES, 0, LLONG_MAX, &mmap_bytes,
                     err) != 0)
    return NULL;

  const char *loc = cfg->location;
  int memory = strcmp(loc, ":memory:") == 0;
  if (!memory && loc[0] == '\0') {
    lls_error_set(err, LLS_EINVALID, "SQLite path must not be empty");
    return NULL;
  }

  sqlite_backend *b = calloc(1, sizeof *b);
  if (b == NULL) {
    oom(err);
    return NULL;
  }
  b->base.vt = &lls_sqlite_vt;
  b->base.ephemeral = memory;
  b->path = strdup(loc);
  b->tenant = strdup(cfg->tenant);
  if (b->path == NULL || b->tenant == NULL) {
    oom(err);
    goto fail;
  }
  b->tenant_len = strlen(b->tenant);

  /* Debian's SQLite is built with SQLITE_USE_URI, which makes a name
   * starting "file:" a URI even without SQLITE_OPEN_URI. Such a name is
   * always relative, so "./" keeps it a plain file name for the same file. */
  char *fname = NULL;
  const char *open_name = loc;
  if (strncmp(loc, "file:", 5) == 0) {
    fname = malloc(strlen(loc) + 3);
    if (fname == NULL) {
      oom(err);
      goto fail;
    }
    memcpy(fname, "./", 2);
    strcpy(fname + 2, loc);
    open_name = fname;
  }
  int rc = sqlite3_open_v2(open_name, &b->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           NULL);
  free(fname);
  if (rc != SQLITE_OK) {
    if (b->db == NULL) {
      oom(err);
    } else {
      lls_error_set(err, LLS_EIO, "cannot open SQLite database '%s': %s", loc,
                    sqlite3_errmsg(b->db));
      err->sqlite_code = sqlite3_extended_errcode(b->db);
    }
    goto fail;
  }
  sqlite3_extended_result_codes(b->db, 1);
  b->busy_ms = (int)busy_ms;
  sqlite3_busy_timeout(b->db, b->busy_ms);

  char pragma[80];
  snprintf(pragma, sizeof pragma, "PRAGMA synchronous = %s", sync);
  if (!memory && enable_wal(b, b->busy_ms, err) != 0) goto fail;
  if (exec_sql(b, pragma, "set synchronous", err) != 0) goto fail;
  snprintf(pragma, sizeof pragma, "PRAGMA cache_size = %lld", cache);
  if (exec_sql(b, pragma, "set cache_size", err) != 0) goto fail;
  if (!memory) {
    snprintf(pragma, sizeof pragma, "PRAGMA mmap_size = %lld", mmap_bytes);
    if (exec_sql(b, pragma, "set mmap_size", err) != 0) goto fail;
  }
  if (migrate(b, err) != 0) goto fail;
  return &b->base;

fail:
  /* The file is first read by a pragma, so "not a database", a lock held
   * elsewhere or a too-new schema surface there: name the file in those
   * messages too, as sqlite3_open_v2's own failure does. */
  if (strstr(err->message, loc) == NULL) {
    char msg[sizeof err->message];
    snprintf(msg, sizeof msg, "%s", err->message);
    int sc = err->sqlite_code;
    lls_error_set(err, err->code, "SQLite database '%s': %s", loc, msg);
    err->sqlite_code = sc;
  }
  sqlite_close(&b->base);
  return NULL;
}

/* Finalizes statements, rolls back an open transaction, closes. */
static void sqlite_close(lls_backend *base) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (b == NULL) return;
  for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(b->st[i]);
  if (b->db != NULL) {
    if (!sqlite3_get_autocommit(b->db)) sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(b->db);
  }
  lls_buf_free(&b->value);
  lls_buf_free(&b->upper);
  free(b->path);
  free(b->tenant);
  free(b);
}

static const char *sqlite_location(lls_backend *base) {
  return ((sqlite_backend *)base)->path;
}

/* ------------------------------------------------------------ key-value */

/* Point read; the value is copied into b->value because the statement is
 * reset (and its memory reused) before returning. */
static int sqlite_get(lls_backend *base, lls_str key, int64_t now, lls_str *out, int *found,
                      lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = stmt(b, ST_GET, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, key, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc != SQLITE_OK) {
    done(s);
    return fail(b->db, rc, "get", err);
  }
  rc = sqlite3_step(s);
  *found = 0;
  if (rc == SQLITE_ROW) {
    lls_str v;
    b->value.len = 0;
    if (column_bytes(s, 0, &v, 0) != 0 || lls_buf_append(&b->value, v.ptr, v.len) != 0) {
      done(s);
      return oom(err);
    }
    out->ptr = b->value.len ? b->value.data : "";
    out->len = b->value.len;
    *found = 1;
    rc = sqlite3_step(s);
  }
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, "get", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

/* Upsert without transaction handling; shared by set() and apply(). */
static int do_set(sqlite_backend *b, lls_str key, lls_str value, int64_t expires_at,
                  int64_t now, lls_error *err) {
  sqlite3_stmt *s = stmt(b, ST_SET, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, key, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 4, value, 0);
  if (rc == SQLITE_OK) rc = bind_expiry(s, 5, expires_at);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, "set", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

/* Delete without transaction handling; *existed = a visible row went. */
static int do_del(sqlite_backend *b, lls_str key, int64_t now, int *existed, lls_error *err) {
  sqlite3_stmt *s = stmt(b, ST_DEL, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, key, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, "delete", err);
    done(s);
    return -1;
  }
  *existed = sqlite3_changes(b->db) > 0;
  done(s);
  return 0;
}

/* One statement is atomic by itself, so set() needs no transaction. */
static int sqlite_set(lls_backend *base, lls_str key, lls_str value, int64_t expires_at,
                      int64_t now, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (check_txn(b, err) != 0) return -1;
  return do_set(b, key, value, expires_at, now, err);
}

static int sqlite_del(lls_backend *base, lls_str key, int64_t now, int *existed,
                      lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (check_txn(b, err) != 0) return -1;
  return do_del(b, key, now, existed, err);
}

/* All-or-nothing batch: its own IMMEDIATE transaction (taking the write lock
 * up front, so the busy timeout applies once, before any work) or, inside a
 * caller's transaction, a savepoint that a failure unwinds alone. */
static int sqlite_apply(lls_backend *base, const lls_op *ops, size_t n, int64_t now,
                        size_t *deleted, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int nested = b->depth > 0;
  if (check_txn(b, err) != 0) return -1;
  if (exec_cached(b, nested ? ST_SP_APPLY : ST_BEGIN, "batch", err) != 0) return -1;
  size_t count = 0;
  for (size_t i = 0; i < n; i++) {
    const lls_op *op = &ops[i];
    if (op->kind == LLS_OP_SET) {
      if (do_set(b, op->key, op->value, op->expires_at, now, err) != 0) goto fail;
    } else {
      int existed;
      if (do_del(b, op->key, now, &existed, err) != 0) goto fail;
      count += (size_t)existed;
    }
  }
  if (nested) {
    if (exec_cached(b, ST_SP_RELEASE, "batch", err) != 0) goto fail;
  } else if (exec_cached(b, ST_COMMIT, "batch commit", err) != 0) {
    goto fail;
  }
  *deleted = count;
  return 0;

fail:
  if (nested) {
    /* Both may fail only if SQLite already dropped the whole transaction,
     * which check_txn reports on the caller's next write. */
    lls_error ignored;
    if (exec_cached(b, ST_SP_ROLLBACK, "batch", &ignored) == 0)
      exec_cached(b, ST_SP_RELEASE, "batch", &ignored);
  } else {
    abort_txn(b);
  }
  return -1;
}

/* Appends the row at the current step of s (columns: value, created_at,
 * updated_at, expires_at starting at column `vcol`) under key k. */
static int add_row(lls_rows *out, lls_str k, sqlite3_stmt *s, int vcol, lls_error *err) {
  lls_str v;
  if (column_bytes(s, vcol, &v, 0) != 0) return oom(err);
  lls_row *row = lls_rows_add(out, k.ptr, k.len, v.ptr, v.len);
  if (row == NULL) return oom(err);
  row->created_at = sqlite3_column_int64(s, vcol + 1);
  row->updated_at = sqlite3_column_int64(s, vcol + 2);
  row->expires_at = sqlite3_column_int64(s, vcol + 3); /* NULL reads as 0 */
  return 0;
}

/* Point reads inside one read transaction, so the result is a snapshot
 * (and the WAL read lock is taken once rather than per key). */
static int sqlite_get_many(lls_backend *base, const lls_str *keys, size_t n, int64_t now,
                           lls_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (n == 0) return 0;
  sqlite3_stmt *s = stmt(b, ST_GET_ROW, err);
  if (s == NULL) return -1;
  int own = sqlite3_get_autocommit(b->db);
  if (own && exec_cached(b, ST_BEGIN_READ, "get_many", err) != 0) return -1;
  for (size_t i = 0; i < n; i++) {
    int rc = bind_tenant(b, s);
    if (rc == SQLITE_OK) rc = bind_bytes(s, 2, keys[i], 1);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      if (add_row(out, keys[i], s, 0, err) != 0) goto fail;
      rc = sqlite3_step(s);
    }
    if (rc != SQLITE_DONE) {
      fail(b->db, rc, "get_many", err);
      goto fail;
    }
    done(s);
  }
  if (own && exec_cached(b, ST_COMMIT, "get_many", err) != 0) goto fail_txn;
  return 0;
fail:
  done(s);
fail_txn:
  if (own) abort_txn(b);
  return -1;
}

/* Literal prefix scan as an index range: [prefix, upper) where upper is the
 * smallest string above every extension of prefix, tightened to (after, ..)
 * when resuming past a key. No LIKE, so '%', '_' and '\' mean themselves. */
static int sqlite_scan(lls_backend *base, lls_str prefix, lls_str after, int64_t now,
                       size_t limit, int keys_only, lls_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int has_upper;
  if (lls_prefix_upper(prefix, &b->upper, &has_upper) != 0) return oom(err);
  lls_str lower = prefix;
  int strict = 0;
  if (after.ptr != NULL) {
    size_t m = after.len < prefix.len ? after.len : prefix.len;
    int c = memcmp(after.ptr, prefix.ptr, m);
    if (c > 0 || (c == 0 && after.len >= prefix.len)) {
      lower = after;
      strict = 1;
    }
  }
  int id = strict ? (has_upper ? ST_SCAN_GT_LT : ST_SCAN_GT)
                  : (has_upper ? ST_SCAN_GE_LT : ST_SCAN_GE);
  sqlite3_stmt *s = stmt(b, id, err);
  if (s == NULL) return -1;
  lls_str upper = {b->upper.data, b->upper.len};
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, lower, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK && has_upper) rc = bind_bytes(s, 4, upper, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 5, keys_only != 0);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 6, limit ? clamp_limit(limit) : -1);
  if (rc != SQLITE_OK) {
    done(s);
    return fail(b->db, rc, "scan", err);
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_str k;
    if (column_bytes(s, 0, &k, 1) != 0 || add_row(out, k, s, 1, err) != 0) {
      done(s);
      return oom(err);
    }
  }
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, "scan", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sqlite_clear(lls_backend *base, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = stmt(b, ST_CLEAR, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, "clear", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sqlite_stats(lls_backend *base, int64_t now, lls_kv_stats *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = stmt(b, ST_STATS, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) {
    fail(b->db, rc, "stats", err);
    done(s);
    return -1;
  }
  out->keys = sqlite3_column_int64(s, 0);
  out->bytes = sqlite3_column_int64(s, 1);
  done(s);
  return 0;
}

/* Runs the sweep probe: 1 when this tenant has an expired row, 0 when not,
 * -1 + err on failure. */
static int has_expired(sqlite_backend *b, int64_t now, lls_error *err) {
  sqlite3_stmt *s = stmt(b, ST_SWEEP_PROBE, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  int found = rc == SQLITE_ROW;
  if (!found && rc != SQLITE_DONE) fail(b->db, rc, "sweep", err);
  done(s);
  return (found || rc == SQLITE_DONE) ? found : -1;
}

/* Bounded delete of expired rows, found through the partial index on
 * (tenant_id, expires_at); one autocommit statement. Sweeping is
 * housekeeping the core runs before a write, so it must not add latency:
 * a read probe first (the usual answer, "nothing expired", then costs no
 * write lock at all), and no waiting for a lock another connection holds
 * (the caller's own write would otherwise wait twice). */
static int sqlite_sweep(lls_backend *base, int64_t now, size_t limit, size_t *removed,
                        lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  *removed = 0;
  if (limit == 0) return 0;
  if (check_txn(b, err) != 0) return -1;
  int any = has_expired(b, now, err);
  if (any <= 0) return any;
  sqlite3_stmt *s = stmt(b, ST_SWEEP, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 2, clamp_limit(limit));
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(b->db, 0);
    rc = sqlite3_step(s);
    sqlite3_busy_timeout(b->db, b->busy_ms);
  }
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, "sweep", err);
    done(s);
    return -1;
  }
  *removed = (size_t)sqlite3_changes(b->db);
  done(s);
  return 0;
}

/* ---------------------------------------------------------- transactions */

/* depth 0: BEGIN IMMEDIATE, so the write lock (and any wait for it) comes
 * first, instead of a read transaction failing to upgrade halfway through
 * with SQLITE_BUSY_SNAPSHOT. depth d > 0: SAVEPOINT lls_d. */
static int sqlite_begin(lls_backend *base, int depth, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (depth == 0) {
    if (exec_cached(b, ST_BEGIN, "begin", err) != 0) return -1;
  } else {
    if (check_txn(b, err) != 0) return -1;
    char sql[48];
    snprintf(sql, sizeof sql, "SAVEPOINT lls_%d", depth);
    if (exec_sql(b, sql, "begin", err) != 0) return -1;
  }
  b->depth = depth + 1;
  return 0;
}

/* A failed COMMIT is rolled back here, so the caller never sits in a
 * half-committed transaction; the store is then as it was at begin. */
static int sqlite_commit(lls_backend *base, int depth, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (depth == 0) {
    int rc = -1;
    if (check_txn(b, err) == 0) rc = exec_cached(b, ST_COMMIT, "commit", err);
    if (rc != 0) abort_txn(b);
    b->depth = 0;
    return rc;
  }
  if (check_txn(b, err) != 0) return -1;
  char sql[48];
  snprintf(sql, sizeof sql, "RELEASE lls_%d", depth);
  if (exec_sql(b, sql, "commit", err) != 0) return -1;
  b->depth = depth;
  return 0;
}

/* Best effort: when SQLite has already rolled everything back there is
 * nothing left to undo, and that is not an error here (check_txn reports it
 * to the writes that follow, and the outer commit fails). */
static int sqlite_rollback(lls_backend *base, int depth, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  b->depth = depth;
  if (sqlite3_get_autocommit(b->db)) return 0;
  if (depth == 0) {
    if (exec_cached(b, ST_ROLLBACK, "rollback", err) == 0) return 0;
    /* The cached statement may be the thing that failed (out of memory). */
    return sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
  }
  char sql[64];
  snprintf(sql, sizeof sql, "ROLLBACK TO lls_%d", depth);
  if (exec_sql(b, sql, "rollback", err) != 0) return -1;
  snprintf(sql, sizeof sql, "RELEASE lls_%d", depth);
  return exec_sql(b, sql, "rollback", err);
}

static int sqlite_migrations(lls_backend *base, lls_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = stmt(b, ST_MIGRATIONS, err);
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
      return oom(err);
    }
    row->created_at = row->updated_at = sqlite3_column_int64(s, 2);
  }
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, "migrations", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

const lls_backend_vt lls_sqlite_vt = {
    .name = "sqlite",
    .traits = {.persistent = 1,
               .transactional = 1,
               .supports_prefix_scan = 1,
               .supports_atomic_ops = 1,
               .nominal_read_us = 5.0,
               .nominal_write_us = 50.0},
    .open = sqlite_open,
    .close = sqlite_close,
    .location = sqlite_location,
    .get = sqlite_get,
    .set = sqlite_set,
    .del = sqlite_del,
    .apply = sqlite_apply,
    .get_many = sqlite_get_many,
    .scan = sqlite_scan,
    .clear = sqlite_clear,
    .stats = sqlite_stats,
    .sweep = sqlite_sweep,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .migrations = sqlite_migrations,
};
