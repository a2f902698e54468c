/*
 * open.c -- opening an SQLite store (see open.h).
 *
 * Files use WAL: readers never block the writer, and a commit is one append
 * to the WAL, so a process killed mid-batch leaves either the whole batch or
 * none of it.
 *
 * Nothing is written to a file before it is known to be a store: switching
 * to WAL rewrites the file header for good, and migrations add tables. So
 * open first reads the file's application_id and schema (identify),
 * refuses another program's database, checks the file when asked (verify),
 * and only then sets the journal mode and migrates.
 *
 * Read-only handles: mode = "ro", or (mode "rw", the default) a file or
 * directory this process may not write, which would otherwise fail to open
 * a store it can read. A WAL file needs its -shm index, which a read-only
 * handle cannot create in a directory it may not write; when there is no
 * -wal file either (the store was closed cleanly) the file is opened
 * immutable, read without locks or index. No one can be writing it then:
 * a writer needs that directory for its -wal file.
 */
#include "backends/sqlite/open.h"

#include "backends/sqlite/conn.h"
#include "backends/sqlite/rowsum.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* SQLite's own default page cache (2 MiB) is smaller than a modest store,
 * so pages would keep coming back through pread(); 32 MiB is an upper bound
 * reached only as the database grows, and keeps a streaming export or
 * import of any size within a bounded footprint. Memory-mapped reads are
 * off by default: they measured no faster here, and mapped pages count
 * against the process's resident size. */
#define DEFAULT_CACHE_KIB 32768
#define DEFAULT_MMAP_BYTES 0LL

enum { VERIFY_OFF, VERIFY_QUICK, VERIFY_FULL };
static const char *const VERIFY_NAMES[] = {"off", "quick", "full"};

/* What identify() found. */
enum { FILE_NEW, FILE_STORE };

/* The options open() reads, checked. */
typedef struct open_options {
  const char *sync; /* the PRAGMA synchronous level */
  long long busy_ms, cache, mmap_bytes;
  int ro;           /* mode = "ro" */
  int verify;       /* VERIFY_* */
} open_options;

/* Reads and checks every option open() takes into *o; LLS_EINVALID naming
 * the option otherwise. Nothing is opened before this succeeds. */
static int parse_options(lls_config *cfg, open_options *o, lls_error *err) {
  /* SQLite's names, then the seed's modes for the same levels. */
  static const char *const sync_names[] = {"off", "normal", "full", "fast", "balanced", "safe"};
  static const char *const levels[] = {"OFF", "NORMAL", "FULL"};
  static const char *const modes[] = {"rw", "ro"};
  int sync;
  if (lls_config_choice(cfg, "synchronous", sync_names, 6, 1, &sync, err) != 0 ||
      lls_config_choice(cfg, "mode", modes, 2, 0, &o->ro, err) != 0 ||
      lls_config_choice(cfg, "verify", VERIFY_NAMES, 3, VERIFY_OFF, &o->verify, err) != 0 ||
      lls_config_int(cfg, "busy_timeout_ms", 5000, 0, INT_MAX, &o->busy_ms, err) != 0 ||
      lls_config_int(cfg, "cache_size", -DEFAULT_CACHE_KIB, -(long long)INT_MAX, INT_MAX,
                     &o->cache, err) != 0 ||
      lls_config_int(cfg, "mmap_size", DEFAULT_MMAP_BYTES, 0, LLONG_MAX, &o->mmap_bytes,
                     err) != 0)
    return -1;
  o->sync = levels[sync % 3];
  return 0;
}

int lls_sqlite_check_options(lls_config *cfg, lls_error *err) {
  open_options o;
  return parse_options(cfg, &o, err);
}

/* 1 when path is an existing file this process may not write, or whose
 * directory it may not write (SQLite creates -wal, -shm and journals
 * there). access() asks as the kernel will decide (root may write
 * anything). A missing file is 0: creating it reports its own error. */
static int not_writable(const char *path) {
  if (access(path, F_OK) != 0) return 0;
  if (access(path, W_OK) != 0) return 1;
  const char *slash = strrchr(path, '/');
  if (slash == NULL) return access(".", W_OK) != 0;
  if (slash == path) return access("/", W_OK) != 0;
  char *dir = strndup(path, (size_t)(slash - path));
  if (dir == NULL) return 0; /* out of memory: the open will say so */
  int no = access(dir, W_OK) != 0;
  free(dir);
  return no;
}

/* "file:" + path percent-encoded + "?immutable=1", for SQLITE_OPEN_URI; an
 * absolute path gets an empty authority ("file:///..."). NULL when out of
 * memory; the caller frees. */
static char *immutable_uri(const char *path) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(path);
  char *u = malloc(3 * n + 32), *w = u;
  if (u == NULL) return NULL;
  w += sprintf(w, path[0] == '/' ? "file://" : "file:");
  for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        strchr("/-._~", *p) != NULL) {
      *w++ = (char)*p;
    } else {
      *w++ = '%';
      *w++ = hex[*p >> 4];
      *w++ = hex[*p & 15];
    }
  }
  strcpy(w, "?immutable=1");
  return u;
}

/* Opens b->db on loc, read-only when b->read_only (immutable too, when
 * asked). */
static int open_file(sqlite_backend *b, const char *loc, int immutable, lls_error *err) {
  /* Debian's SQLite is built with SQLITE_USE_URI, which makes a name
   * starting "file:" a URI even without SQLITE_OPEN_URI. Such a name is
   * always relative, so "./" keeps it a plain file name for the same file. */
  char *fname = NULL;
  const char *open_name = loc;
  int flags = SQLITE_OPEN_NOMUTEX |
              (b->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (immutable) {
    if ((fname = immutable_uri(loc)) == NULL) return lls_error_oom(err);
    flags |= SQLITE_OPEN_URI;
    open_name = fname;
  } else if (strncmp(loc, "file:", 5) == 0) {
    fname = malloc(strlen(loc) + 3);
    if (fname == NULL) return lls_error_oom(err);
    memcpy(fname, "./", 2);
    strcpy(fname + 2, loc);
    open_name = fname;
  }
  int rc = sqlite3_open_v2(open_name, &b->db, flags, NULL);
  free(fname);
  if (rc == SQLITE_OK) return 0;
  if (b->db == NULL) return lls_error_oom(err);
  lls_error_set(err, LLS_EIO, "cannot open SQLite database '%s': %s", loc,
                sqlite3_errmsg(b->db));
  err->sqlite_code = sqlite3_extended_errcode(b->db);
  return -1;
}

/* What a just-opened b->db needs before its first statement: extended
 * result codes, the busy timeout, and the checksum function. */
static int setup(sqlite_backend *b, const open_options *o, lls_error *err) {
  sqlite3_extended_result_codes(b->db, 1);
  b->busy_ms = (int)o->busy_ms;
  sqlite3_busy_timeout(b->db, b->busy_ms);
  int rc = lls_rowsum_register(b->db);
  return rc == SQLITE_OK ? 0 : lls_sqlite_fail(b->db, rc, "register lls_crc32c", err);
}

/* Reads what the file is, writing nothing: *kind = FILE_STORE for a store
 * (our application_id, or a store from before migration 4: no id, but our
 * bookkeeping table), FILE_NEW for an empty database. Another program's
 * database is LLS_EFORMAT. On a failed read, *sqlite_rc is SQLite's code. */
static int identify(sqlite_backend *b, int *kind, int *sqlite_rc, lls_error *err) {
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(b->db, LLS_SQLITE_IDENTIFY, -1, &s, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) {
    *sqlite_rc = sqlite3_extended_errcode(b->db);
    lls_sqlite_fail(b->db, rc, "read schema", err);
    sqlite3_finalize(s);
    return -1;
  }
  sqlite3_int64 app = sqlite3_column_int64(s, 0), objects = sqlite3_column_int64(s, 1);
  int bookkeeping = sqlite3_column_int(s, 2) > 0;
  sqlite3_finalize(s);
  if (app == LLS_SQLITE_APP_ID || (app == 0 && bookkeeping)) {
    *kind = FILE_STORE;
    return 0;
  }
  if (app == 0 && objects == 0) {
    *kind = FILE_NEW;
    return 0;
  }
  if (app != 0)
    return lls_error_set(err, LLS_EFORMAT,
                         "'%s' is another program's SQLite database, not a store"
                         " (application_id %lld); it was left unchanged",
                         b->path, (long long)app);
  return lls_error_set(err, LLS_EFORMAT,
                       "'%s' is another program's SQLite database, not a store (%lld schema"
                       " objects, no llmspell_migrations table); it was left unchanged",
                       b->path, (long long)objects);
}

/* Opens and identifies the file; a read-only handle that cannot build the
 * WAL index (-shm) of a cleanly closed store retries immutable (see the
 * top of this file). */
static int open_identified(sqlite_backend *b, const open_options *o, const char *loc,
                           int *kind, lls_error *err) {
  int rc = 0;
  if (open_file(b, loc, 0, err) != 0 || setup(b, o, err) != 0) return -1;
  if (identify(b, kind, &rc, err) == 0) return 0;
  if (!b->read_only || (rc != SQLITE_READONLY_DIRECTORY && rc != SQLITE_READONLY_CANTINIT &&
                        (rc & 0xff) != SQLITE_CANTOPEN))
    return -1;
  size_t n = strlen(loc);
  char *wal = malloc(n + 5);
  if (wal == NULL) return lls_error_oom(err);
  memcpy(wal, loc, n);
  memcpy(wal + n, "-wal", 5);
  struct stat st;
  int has_wal = stat(wal, &st) == 0 && st.st_size > 0; /* empty: nothing to miss */
  free(wal);
  if (has_wal) /* an immutable open would ignore its commits */
    return lls_error_set(err, LLS_EIO,
                         "cannot read '%s' read-only: its -wal file holds commits, and this"
                         " process may not create the -shm index beside it (open it once"
                         " read-write to check them in)", loc);
  sqlite3_close_v2(b->db);
  b->db = NULL;
  if (open_file(b, loc, 1, err) != 0 || setup(b, o, err) != 0) return -1;
  return identify(b, kind, &rc, err);
}

/* verify = "quick" or "full" at open, before anything is written: PRAGMA
 * quick_check or integrity_check, and with "full" on a current schema the
 * checksum of every record. Any problem is LLS_EINTEGRITY. */
static int verify_file(sqlite_backend *b, int level, lls_error *err) {
  if (level == VERIFY_OFF) return 0;
  int version = 0;
  if (level == VERIFY_FULL && lls_sqlite_schema_version(b, &version, err) != 0) return -1;
  lls_rows problems = {0};
  int rc = lls_sqlite_run_check(
      b, level == VERIFY_QUICK ? LLS_SQLITE_QUICK_CHECK : LLS_SQLITE_INTEGRITY_CHECK,
      version == lls_sqlite_nmigrations, &problems, err);
  if (rc == 0 && problems.count > 0) {
    lls_str where = lls_row_key(&problems, 0), what = lls_row_value(&problems, 0);
    rc = lls_error_set(err, LLS_EINTEGRITY,
                       "verify = \"%s\" found %zu problem%s in '%s'; the first: %.*s: %.*s",
                       VERIFY_NAMES[level], problems.count, problems.count == 1 ? "" : "s",
                       b->path, (int)where.len, where.ptr,
                       (int)(what.len > 300 ? 300 : what.len), what.ptr);
  }
  lls_rows_free(&problems);
  return rc;
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

/* The pragmas of o, once the file is known to be a store: WAL (which
 * writes the file header) only on a writable file. */
static int configure(sqlite_backend *b, const open_options *o, int memory, lls_error *err) {
  char pragma[80];
  if (!memory && !b->read_only && enable_wal(b, b->busy_ms, err) != 0) return -1;
  snprintf(pragma, sizeof pragma, LLS_SQLITE_SYNCHRONOUS_FMT, o->sync);
  if (lls_sqlite_exec(b, pragma, "set synchronous", err) != 0) return -1;
  snprintf(pragma, sizeof pragma, LLS_SQLITE_CACHE_SIZE_FMT, o->cache);
  if (lls_sqlite_exec(b, pragma, "set cache_size", err) != 0) return -1;
  if (!memory) {
    snprintf(pragma, sizeof pragma, LLS_SQLITE_MMAP_SIZE_FMT, o->mmap_bytes);
    if (lls_sqlite_exec(b, pragma, "set mmap_size", err) != 0) return -1;
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

/* A new file needs its directory: SQLite creates the file but not the
 * directories above it, and would say only "unable to open database
 * file". LLS_EIO naming the directory when it is missing or not one; 0
 * otherwise (other failures are the open's to report). */
static int check_directory(const char *loc, lls_error *err) {
  const char *slash = strrchr(loc, '/');
  if (slash == NULL || slash == loc || access(loc, F_OK) == 0) return 0;
  char *dir = strndup(loc, (size_t)(slash - loc));
  if (dir == NULL) return lls_error_oom(err);
  struct stat sb;
  int rc = 0;
  if (stat(dir, &sb) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      rc = lls_error_set(err, LLS_EIO,
                         "cannot create SQLite database '%s': directory '%s' does not exist "
                         "(SQLite creates the file, not its directory)", loc, dir);
  } else if (!S_ISDIR(sb.st_mode)) {
    rc = lls_error_set(err, LLS_EIO,
                       "cannot create SQLite database '%s': '%s' is not a directory", loc, dir);
  }
  if (rc != 0) err->sqlite_code = SQLITE_CANTOPEN; /* what sqlite3_open_v2 would say */
  free(dir);
  return rc;
}

/* Refusals that need no handle: an empty path, "ro" in memory, "ro" on a
 * file that is not there, a new file in a directory that is not there. */
static int check_location(const char *loc, int memory, const open_options *o,
                          lls_error *err) {
  if (!memory && loc[0] == '\0')
    return lls_error_set(err, LLS_EINVALID, "SQLite path must not be empty");
  if (memory && o->ro)
    return lls_error_set(err, LLS_EINVALID, "option 'mode' = \"ro\" needs a file, not %s",
                         loc);
  if (o->ro && access(loc, F_OK) != 0)
    return lls_error_set(err, LLS_ENOTFOUND,
                         "no store at '%s' (mode = \"ro\" does not create one)", loc);
  return memory ? 0 : check_directory(loc, err);
}

lls_backend *lls_sqlite_open(lls_config *cfg, lls_error *err) {
  open_options o;
  if (parse_options(cfg, &o, err) != 0) return NULL;
  const char *loc = cfg->location;
  int memory = strcmp(loc, ":memory:") == 0, kind;
  if (check_location(loc, memory, &o, err) != 0) return NULL;

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
  b->tenant_sum = lls_rowsum_bytes(0, (lls_str){b->tenant, b->tenant_len});
  b->read_only = o.ro || (!memory && not_writable(loc));
  if (open_identified(b, &o, loc, &kind, err) != 0) goto fail;
  if (kind == FILE_NEW && b->read_only) {
    lls_error_set(err, LLS_ENOTFOUND,
                  "'%s' holds no store yet, and a read-only handle cannot create one", loc);
    goto fail;
  }
  if (verify_file(b, o.verify, err) != 0 || configure(b, &o, memory, err) != 0 ||
      lls_sqlite_migrate(b, err) != 0)
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
  for (int i = 0; i < b->ncst; i++) sqlite3_finalize(b->cst[i].st);
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
