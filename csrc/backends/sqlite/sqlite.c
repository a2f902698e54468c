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
 *     metadata   TEXT,                  -- JSON text carried by export/import;
 *                                       -- NULL = none
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
 *   -- migration 2: vectors
 *   CREATE TABLE vector_collections (
 *     id              INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused
 *     tenant_id       TEXT NOT NULL,
 *     name            TEXT NOT NULL,     -- unique per tenant, byte order
 *     dimension       INTEGER NOT NULL,  -- 1..4096
 *     metric          TEXT NOT NULL,     -- 'cosine' | 'l2' | 'ip' | 'l1'
 *     m               INTEGER NOT NULL,
 *     ef_construction INTEGER NOT NULL,
 *     ef_search       INTEGER NOT NULL,
 *     created_at      INTEGER NOT NULL,  -- microseconds since the epoch
 *     seq             INTEGER NOT NULL DEFAULT 0, -- +1 per write: change sequence
 *     count           INTEGER NOT NULL DEFAULT 0, -- rows in vector_embeddings
 *     tomb_floor      INTEGER NOT NULL DEFAULT 0, -- highest pruned tombstone seq
 *     UNIQUE (tenant_id, name)
 *   );
 *   CREATE TABLE vector_embeddings (     -- a rowid table: rows are kilobytes
 *     collection_id INTEGER NOT NULL,    -- vector_collections.id
 *     id            TEXT NOT NULL,       -- the entry id, unique per collection
 *     tenant_id     TEXT NOT NULL,
 *     scope         TEXT NOT NULL,       -- 'global' unless the caller chose
 *     vector        BLOB NOT NULL,       -- dimension little-endian float32
 *     metadata      TEXT NOT NULL,       -- JSON object text, '{}' if none
 *     created_at    INTEGER NOT NULL,    -- microseconds since the epoch
 *     updated_at    INTEGER NOT NULL,    -- microseconds since the epoch
 *     event_time    INTEGER,             -- microseconds; NULL = none
 *     expires_at    INTEGER,             -- microseconds; NULL = never
 *     seq           INTEGER NOT NULL,    -- collection seq of the write that
 *                                        -- made this version of the row
 *     UNIQUE (collection_id, id)
 *   );
 *   CREATE INDEX vector_embeddings_seq ON vector_embeddings (collection_id, seq);
 *   CREATE TABLE vector_tombstones (     -- deleted ids, for catch-up
 *     collection_id INTEGER NOT NULL,
 *     id            TEXT NOT NULL,
 *     tenant_id     TEXT NOT NULL,
 *     seq           INTEGER NOT NULL,    -- collection seq of the delete
 *     deleted_at    INTEGER NOT NULL,    -- microseconds since the epoch
 *     PRIMARY KEY (collection_id, id)
 *   ) WITHOUT ROWID;
 *   CREATE INDEX vector_tombstones_seq ON vector_tombstones (collection_id, seq);
 *   CREATE TABLE vector_snapshots (      -- the serialised HNSW index
 *     collection_id INTEGER NOT NULL,
 *     part          INTEGER NOT NULL,    -- 0, 1, ...: pieces of 16 MiB
 *     tenant_id     TEXT NOT NULL,
 *     seq           INTEGER NOT NULL,    -- collection seq it was taken at
 *     saved_at      INTEGER NOT NULL,    -- microseconds since the epoch
 *     data          BLOB NOT NULL,
 *     PRIMARY KEY (collection_id, part)
 *   );
 *
 *   -- migration 3: export
 *   ALTER TABLE kv_store ADD COLUMN kv_id TEXT;  -- rs-llmspell's record id
 *                                       -- (export/import); NULL = none
 *   CREATE TABLE export_sections (       -- passthrough sections of imported
 *     tenant_id TEXT NOT NULL,           -- files (agent_state, sessions, ...)
 *     section   TEXT NOT NULL,           -- the name under "data", byte order
 *     ord       INTEGER NOT NULL,        -- array index; -1: the section is
 *                                        -- this one value, not an array
 *     record    TEXT NOT NULL,           -- one JSON value
 *     PRIMARY KEY (tenant_id, section, ord)
 *   ) WITHOUT ROWID;
 *
 * set() keeps the metadata and kv_id of a visible row (the KV API does not
 * show them, so writing a value must not lose them) and clears both with
 * an expired one, which counts as absent.
 *
 * Every vector write (put or delete) is one transaction (a savepoint inside
 * the caller's) that raises vector_collections.seq by one and stamps the
 * rows it writes, and the tombstones of the rows it deletes, with the new
 * value; another handle catches up by reading both tables past the seq it
 * has, merged in seq order. A re-added id keeps its older tombstone: it
 * streams first, so applying the stream in order still ends with the row.
 * Saving a snapshot prunes tombstones it covers once they are an hour old,
 * and raises tomb_floor to the highest seq pruned: a handle further behind
 * than that is told to reload (LLS_EVERSION), since deletes it would need
 * are gone. Snapshots are stored in parts because SQLite caps a value at
 * 1 GB and builds each record in memory.
 *
 * Files use WAL: readers never block the writer, and a commit is one append
 * to the WAL, so a process killed mid-batch leaves either the whole batch or
 * none of it. Each handle belongs to one thread (SQLITE_OPEN_NOMUTEX); all
 * per-handle state lives in struct sqlite_backend.
 */
#include "backend/backend.h"
#include "base/utf8.h"
#include "vector/distance.h"

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
    {2, "vectors",
     "CREATE TABLE IF NOT EXISTS vector_collections (\n"
     "  id              INTEGER PRIMARY KEY AUTOINCREMENT,\n"
     "  tenant_id       TEXT NOT NULL,\n"
     "  name            TEXT NOT NULL,\n"
     "  dimension       INTEGER NOT NULL,\n"
     "  metric          TEXT NOT NULL,\n"
     "  m               INTEGER NOT NULL,\n"
     "  ef_construction INTEGER NOT NULL,\n"
     "  ef_search       INTEGER NOT NULL,\n"
     "  created_at      INTEGER NOT NULL,\n"
     "  seq             INTEGER NOT NULL DEFAULT 0,\n"
     "  count           INTEGER NOT NULL DEFAULT 0,\n"
     "  tomb_floor      INTEGER NOT NULL DEFAULT 0,\n"
     "  UNIQUE (tenant_id, name)\n"
     ");\n"
     "CREATE TABLE IF NOT EXISTS vector_embeddings (\n"
     "  collection_id INTEGER NOT NULL,\n"
     "  id            TEXT NOT NULL,\n"
     "  tenant_id     TEXT NOT NULL,\n"
     "  scope         TEXT NOT NULL,\n"
     "  vector        BLOB NOT NULL,\n"
     "  metadata      TEXT NOT NULL,\n"
     "  created_at    INTEGER NOT NULL,\n"
     "  updated_at    INTEGER NOT NULL,\n"
     "  event_time    INTEGER,\n"
     "  expires_at    INTEGER,\n"
     "  seq           INTEGER NOT NULL,\n"
     "  UNIQUE (collection_id, id)\n"
     ");\n"
     "CREATE INDEX IF NOT EXISTS vector_embeddings_seq\n"
     "  ON vector_embeddings (collection_id, seq);\n"
     "CREATE TABLE IF NOT EXISTS vector_tombstones (\n"
     "  collection_id INTEGER NOT NULL,\n"
     "  id            TEXT NOT NULL,\n"
     "  tenant_id     TEXT NOT NULL,\n"
     "  seq           INTEGER NOT NULL,\n"
     "  deleted_at    INTEGER NOT NULL,\n"
     "  PRIMARY KEY (collection_id, id)\n"
     ") WITHOUT ROWID;\n"
     "CREATE INDEX IF NOT EXISTS vector_tombstones_seq\n"
     "  ON vector_tombstones (collection_id, seq);\n"
     "CREATE TABLE IF NOT EXISTS vector_snapshots (\n"
     "  collection_id INTEGER NOT NULL,\n"
     "  part          INTEGER NOT NULL,\n"
     "  tenant_id     TEXT NOT NULL,\n"
     "  seq           INTEGER NOT NULL,\n"
     "  saved_at      INTEGER NOT NULL,\n"
     "  data          BLOB NOT NULL,\n"
     "  PRIMARY KEY (collection_id, part)\n"
     ");"},
    {3, "export",
     "CREATE TABLE IF NOT EXISTS export_sections (\n"
     "  tenant_id TEXT NOT NULL,\n"
     "  section   TEXT NOT NULL,\n"
     "  ord       INTEGER NOT NULL,\n"
     "  record    TEXT NOT NULL,\n"
     "  PRIMARY KEY (tenant_id, section, ord)\n"
     ") WITHOUT ROWID;"},
};

/* Columns a migration adds to an existing table, before its script runs.
 * SQLite has no ADD COLUMN IF NOT EXISTS, so each is added only when the
 * table lacks it: that keeps the migration idempotent. */
static const struct {
  int version;
  const char *table, *column, *type;
} ADD_COLUMNS[] = {
    {3, "kv_store", "kv_id", "TEXT"},
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
  /* vector collections: ?2 is the collection id wherever there is one */
  ST_COLL_CREATE,
  ST_COLL_GET,
  ST_COLL_LIST_GE,
  ST_COLL_LIST_GE_LT,
  ST_COLL_HEAD,
  ST_COLL_STAMP,
  ST_COLL_DELETE,
  ST_VEC_INSERT,
  ST_VEC_UPDATE,
  ST_VEC_DELETE,
  ST_VEC_DROP,
  ST_VEC_LOAD_ALL,
  ST_VEC_LOAD_SINCE,
  ST_TOMB_PUT,
  ST_TOMB_FLOOR,
  ST_TOMB_PRUNE,
  ST_TOMB_DROP,
  ST_SNAP_SEQ,
  ST_SNAP_SIZE,
  ST_SNAP_PART,
  ST_SNAP_READ,
  ST_SNAP_DROP,
  /* export/import */
  ST_KV_DUMP,
  ST_KV_DUMP_AFTER,
  ST_KV_LOAD_REPLACE,
  ST_KV_LOAD_INSERT,
  ST_VEC_DUMP,
  ST_VEC_DUMP_AFTER,
  ST_VEC_HAS,
  ST_SEC_PUT,
  ST_SEC_DUMP,
  ST_SEC_DUMP_AFTER,
  ST_SEC_CLEAR,
  ST_SEC_CLEAR_ALL,
  ST_COUNT
};

#define VISIBLE "(expires_at IS NULL OR expires_at > ?3)"

/* The CASE keeps keys-only scans from reading values (and their overflow
 * pages) at all: SQLite extracts record columns lazily. */
#define SCAN_HEAD                                                                    \
  "SELECT key, CASE WHEN ?5 THEN x'' ELSE value END, created_at, updated_at,"        \
  " expires_at FROM kv_store WHERE tenant_id = ?1 AND "
#define SCAN_TAIL " AND (expires_at IS NULL OR expires_at > ?3) ORDER BY key LIMIT ?6"

/* Column lists shared by several statements, in the order fill_coll() and
 * vec_load() read them. */
#define COLL_COLUMNS                                                                 \
  "SELECT id, name, dimension, metric, m, ef_construction, ef_search, created_at,"   \
  " seq, count FROM vector_collections"
#define VEC_COLUMNS                                                                  \
  "id, scope, vector, metadata, created_at, updated_at, event_time, expires_at, seq"
#define KV_DUMP_HEAD                                                                 \
  "SELECT key, value, metadata, kv_id, created_at, updated_at, expires_at FROM kv_store" \
  " WHERE tenant_id = ?1"
#define KV_DUMP_TAIL " AND " VISIBLE " ORDER BY key LIMIT ?4"
/* kv_load binds ?1..?8 the same way for both; ?9 = now for the insert. */
#define KV_LOAD_HEAD                                                                 \
  "INSERT INTO kv_store (tenant_id, key, value, metadata, kv_id, created_at,"        \
  " updated_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"                 \
  " ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value,"               \
  " metadata = excluded.metadata, kv_id = excluded.kv_id,"                           \
  " created_at = excluded.created_at, updated_at = excluded.updated_at,"             \
  " expires_at = excluded.expires_at"
#define SEC_DUMP_HEAD "SELECT section, ord, record FROM export_sections WHERE tenant_id = ?1"
#define SEC_DUMP_TAIL " ORDER BY section, ord LIMIT ?4"

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
               " kv_id = CASE WHEN kv_store.expires_at IS NULL"
               "   OR kv_store.expires_at > ?3 THEN kv_store.kv_id END,"
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
    /* DO NOTHING instead of a constraint error: a duplicate name then shows
     * as zero changes, with no failed statement to unwind. */
    [ST_COLL_CREATE] = "INSERT INTO vector_collections (tenant_id, name, dimension, metric,"
                       " m, ef_construction, ef_search, created_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                       " ON CONFLICT (tenant_id, name) DO NOTHING",
    [ST_COLL_GET] = COLL_COLUMNS " WHERE tenant_id = ?1 AND name = ?2",
    [ST_COLL_LIST_GE] = COLL_COLUMNS " WHERE tenant_id = ?1 AND name >= ?2 ORDER BY name",
    [ST_COLL_LIST_GE_LT] = COLL_COLUMNS " WHERE tenant_id = ?1 AND name >= ?2"
                           " AND name < ?3 ORDER BY name",
    /* The tenant test makes every id-addressed call fail, as if the
     * collection did not exist, for an id of another tenant. */
    [ST_COLL_HEAD] = "SELECT seq, count, dimension, tomb_floor FROM vector_collections"
                     " WHERE id = ?2 AND tenant_id = ?1",
    [ST_COLL_STAMP] = "UPDATE vector_collections SET seq = ?3, count = count + ?4"
                      " WHERE id = ?2 AND tenant_id = ?1",
    [ST_COLL_DELETE] = "DELETE FROM vector_collections WHERE id = ?2 AND tenant_id = ?1",
    /* vec_put binds ?1..?11 the same way for both: insert first (the bulk
     * case), update when the insert found the id taken. */
    [ST_VEC_INSERT] = "INSERT INTO vector_embeddings (collection_id, id, tenant_id, scope,"
                      " vector, metadata, created_at, updated_at, event_time, expires_at,"
                      " seq) VALUES (?2, ?3, ?1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                      " ON CONFLICT (collection_id, id) DO NOTHING",
    [ST_VEC_UPDATE] = "UPDATE vector_embeddings SET scope = ?4, vector = ?5, metadata = ?6,"
                      " created_at = ?7, updated_at = ?8, event_time = ?9, expires_at = ?10,"
                      " seq = ?11 WHERE collection_id = ?2 AND id = ?3 AND tenant_id = ?1",
    [ST_VEC_DELETE] = "DELETE FROM vector_embeddings"
                      " WHERE collection_id = ?2 AND id = ?3 AND tenant_id = ?1",
    [ST_VEC_DROP] = "DELETE FROM vector_embeddings WHERE collection_id = ?2 AND tenant_id = ?1",
    [ST_VEC_LOAD_ALL] = "SELECT " VEC_COLUMNS ", 0 FROM vector_embeddings"
                        " WHERE collection_id = ?2 AND tenant_id = ?1 ORDER BY seq",
    /* Both arms come ordered from their (collection_id, seq) index, so the
     * ORDER BY is a merge, not a sort. */
    [ST_VEC_LOAD_SINCE] = "SELECT " VEC_COLUMNS ", 0 FROM vector_embeddings"
                          " WHERE collection_id = ?2 AND seq > ?3 AND tenant_id = ?1"
                          " UNION ALL"
                          " SELECT id, '', x'', '', deleted_at, deleted_at, NULL, NULL, seq, 1"
                          " FROM vector_tombstones"
                          " WHERE collection_id = ?2 AND seq > ?3 AND tenant_id = ?1"
                          " ORDER BY 9",
    [ST_TOMB_PUT] = "INSERT INTO vector_tombstones (collection_id, id, tenant_id, seq,"
                    " deleted_at) VALUES (?2, ?3, ?1, ?4, ?5)"
                    " ON CONFLICT (collection_id, id) DO UPDATE SET seq = excluded.seq,"
                    " deleted_at = excluded.deleted_at",
    /* ?3: the snapshot's seq; ?4: tombstones deleted before this are old
     * enough to prune. TOMB_FLOOR runs first, over the rows PRUNE removes. */
    [ST_TOMB_FLOOR] = "UPDATE vector_collections SET tomb_floor = max(tomb_floor, coalesce("
                      "(SELECT max(seq) FROM vector_tombstones WHERE collection_id = ?2"
                      " AND seq <= ?3 AND deleted_at < ?4), 0))"
                      " WHERE id = ?2 AND tenant_id = ?1",
    [ST_TOMB_PRUNE] = "DELETE FROM vector_tombstones WHERE collection_id = ?2 AND seq <= ?3"
                      " AND deleted_at < ?4 AND tenant_id = ?1",
    [ST_TOMB_DROP] = "DELETE FROM vector_tombstones WHERE collection_id = ?2 AND tenant_id = ?1",
    [ST_SNAP_SEQ] = "SELECT seq FROM vector_snapshots"
                    " WHERE collection_id = ?2 AND part = 0 AND tenant_id = ?1",
    /* length() of a blob is read from the record header: no overflow pages. */
    [ST_SNAP_SIZE] = "SELECT count(*), coalesce(sum(length(data)), 0) FROM vector_snapshots"
                     " WHERE collection_id = ?2 AND tenant_id = ?1",
    [ST_SNAP_PART] = "INSERT INTO vector_snapshots (collection_id, part, tenant_id, seq,"
                     " saved_at, data) VALUES (?2, ?3, ?1, ?4, ?5, ?6)",
    [ST_SNAP_READ] = "SELECT part, seq, data FROM vector_snapshots"
                     " WHERE collection_id = ?2 AND tenant_id = ?1 ORDER BY part",
    [ST_SNAP_DROP] = "DELETE FROM vector_snapshots WHERE collection_id = ?2 AND tenant_id = ?1",
    /* Two shapes, like the scans: "key > ?2" with no resume point would
     * skip the empty key. */
    [ST_KV_DUMP] = KV_DUMP_HEAD KV_DUMP_TAIL,
    [ST_KV_DUMP_AFTER] = KV_DUMP_HEAD " AND key > ?2" KV_DUMP_TAIL,
    [ST_KV_LOAD_REPLACE] = KV_LOAD_HEAD,
    /* Skip and error: the update runs only over an expired row (which
     * counts as absent), so zero changes means a visible row was there. */
    [ST_KV_LOAD_INSERT] = KV_LOAD_HEAD " WHERE kv_store.expires_at IS NOT NULL"
                                       " AND kv_store.expires_at <= ?9",
    /* Ordered by the UNIQUE (collection_id, id) index: no sort. */
    [ST_VEC_DUMP] = "SELECT " VEC_COLUMNS " FROM vector_embeddings"
                    " WHERE collection_id = ?2 AND tenant_id = ?1 ORDER BY id LIMIT ?4",
    [ST_VEC_DUMP_AFTER] = "SELECT " VEC_COLUMNS " FROM vector_embeddings"
                          " WHERE collection_id = ?2 AND id > ?3 AND tenant_id = ?1"
                          " ORDER BY id LIMIT ?4",
    [ST_VEC_HAS] = "SELECT 1 FROM vector_embeddings"
                   " WHERE collection_id = ?2 AND id = ?3 AND tenant_id = ?1",
    [ST_SEC_PUT] = "INSERT INTO export_sections (tenant_id, section, ord, record)"
                   " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id, section, ord)"
                   " DO UPDATE SET record = excluded.record",
    [ST_SEC_DUMP] = SEC_DUMP_HEAD SEC_DUMP_TAIL,
    /* A row-value comparison is one index range over (tenant_id, section,
     * ord), so a page starts where the last one ended, even in the middle
     * of a long section. */
    [ST_SEC_DUMP_AFTER] = SEC_DUMP_HEAD " AND (section, ord) > (?2, ?3)" SEC_DUMP_TAIL,
    [ST_SEC_CLEAR] = "DELETE FROM export_sections WHERE tenant_id = ?1 AND section = ?2",
    [ST_SEC_CLEAR_ALL] = "DELETE FROM export_sections WHERE tenant_id = ?1",
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

/* Opens the unit a write runs in: its own IMMEDIATE transaction (taking the
 * write lock up front, so the busy timeout applies once, before any work)
 * or, inside a caller's transaction, a savepoint that a failure unwinds
 * alone. *nested says which, for unit_commit / unit_abort. */
static int unit_begin(sqlite_backend *b, int *nested, const char *what, lls_error *err) {
  if (check_txn(b, err) != 0) return -1;
  *nested = b->depth > 0;
  return exec_cached(b, *nested ? ST_SP_APPLY : ST_BEGIN, what, err);
}

static int unit_commit(sqlite_backend *b, int nested, const char *what, lls_error *err) {
  return exec_cached(b, nested ? ST_SP_RELEASE : ST_COMMIT, what, err);
}

/* Undoes everything since unit_begin; a second error must not hide the
 * first, so nothing is reported from here. */
static void unit_abort(sqlite_backend *b, int nested) {
  if (nested) {
    /* Both may fail only if SQLite already dropped the whole transaction,
     * which check_txn reports on the caller's next write. */
    lls_error ignored;
    if (exec_cached(b, ST_SP_ROLLBACK, "rollback", &ignored) == 0)
      exec_cached(b, ST_SP_RELEASE, "rollback", &ignored);
  } else {
    abort_txn(b);
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

/* Runs an ALTER TABLE ... ADD COLUMN unless the table already has it. */
static int add_column(sqlite_backend *b, const char *table, const char *column,
                      const char *type, const char *what, lls_error *err) {
  sqlite3_stmt *s;
  int rc = sqlite3_prepare_v2(b->db,
                              "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
                              -1, &s, NULL);
  if (rc != SQLITE_OK) return fail(b->db, rc, what, err);
  sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, column, -1, SQLITE_STATIC);
  rc = sqlite3_step(s);
  int has = rc == SQLITE_ROW && sqlite3_column_int(s, 0) > 0;
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW) return fail(b->db, rc, what, err);
  if (has) return 0;
  char sql[160];
  snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s", table, column, type);
  return exec_sql(b, sql, what, err);
}

/* Adds the columns ADD_COLUMNS lists for migration m. */
static int add_columns(sqlite_backend *b, const migration *m, const char *what,
                       lls_error *err) {
  for (size_t i = 0; i < sizeof ADD_COLUMNS / sizeof ADD_COLUMNS[0]; i++)
    if (ADD_COLUMNS[i].version == m->version &&
        add_column(b, ADD_COLUMNS[i].table, ADD_COLUMNS[i].column, ADD_COLUMNS[i].type, what,
                   err) != 0)
      return -1;
  return 0;
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
    if (add_columns(b, m, what, err) != 0 || exec_sql(b, m->sql, what, err) != 0 ||
        record_migration(b, m, err) != 0)
      goto fail;
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
 * so pages would keep coming back through pread(); 32 MiB is an upper bound
 * reached only as the database grows, and keeps a streaming export or
 * import of any size within a bounded footprint. Memory-mapped reads are
 * off by default: they measured no faster here, and mapped pages count
 * against the process's resident size. */
#define DEFAULT_CACHE_KIB 32768
#define DEFAULT_MMAP_BYTES 0LL

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
    /* (tenant_id, key) is the primary key: no second row can follow, so
     * the statement is reset here instead of stepped to its end. */
    rc = SQLITE_DONE;
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

/* All-or-nothing batch, in one unit (see unit_begin). */
static int sqlite_apply(lls_backend *base, const lls_op *ops, size_t n, int64_t now,
                        size_t *deleted, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int nested;
  if (unit_begin(b, &nested, "batch", err) != 0) return -1;
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
  if (unit_commit(b, nested, nested ? "batch" : "batch commit", err) != 0) goto fail;
  *deleted = count;
  return 0;

fail:
  unit_abort(b, nested);
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

/* A deferred BEGIN: the first read takes a WAL snapshot that holds until
 * the end, and no write lock is taken, so writers carry on meanwhile. */
static int sqlite_begin_read(lls_backend *base, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (exec_cached(b, ST_BEGIN_READ, "begin", err) != 0) return -1;
  b->depth = 1;
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

/* ---------------------------------------------------- vector collections */


/* Snapshot piece size: SQLite builds a whole record in memory before
 * writing it, so a piece bounds that copy, and 1 GB (SQLite's cap on one
 * value) is no limit on an index. */
#define SNAP_PART_BYTES ((size_t)16 << 20)

/* Tombstones younger than this survive a snapshot: a handle that read the
 * collection just before the snapshot still catches up without a reload. */
#define TOMB_GRACE_US ((int64_t)3600 * 1000000)

/* Steps a bound statement that returns no rows (rc: the binding result, so
 * callers chain binds into it) and resets it. */
static int run(sqlite_backend *b, sqlite3_stmt *s, int rc, const char *what, lls_error *err) {
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, what, err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

/* A sink stopped a stream: its own error stands (the caller may branch on
 * the code it chose); one that gave no reason gets a generic LLS_EIO. */
static int sink_stopped(lls_error *err) {
  if (err->code == LLS_OK || err->message[0] == '\0')
    lls_error_set(err, LLS_EIO, "the consumer stopped the stream");
  return -1;
}

/* ?1 = tenant, ?2 = collection id: the head of every id-addressed statement. */
static int bind_coll(sqlite_backend *b, sqlite3_stmt *s, int64_t coll_id) {
  int rc = bind_tenant(b, s);
  return rc == SQLITE_OK ? sqlite3_bind_int64(s, 2, coll_id) : rc;
}

/* Reads a COLL_COLUMNS row. -1 + LLS_EFORMAT for a row this library would
 * not have written (unknown metric, overlong name). */
static int fill_coll(sqlite3_stmt *s, lls_coll_info *out, lls_error *err) {
  memset(out, 0, sizeof *out);
  out->id = sqlite3_column_int64(s, 0);
  lls_str name, metric;
  if (column_bytes(s, 1, &name, 1) != 0 || column_bytes(s, 3, &metric, 1) != 0)
    return oom(err);
  if (name.len >= sizeof out->name)
    return lls_error_set(err, LLS_EFORMAT, "collection %lld: stored name is too long",
                         (long long)out->id);
  memcpy(out->name, name.ptr, name.len);
  out->name[name.len] = '\0';
  out->metric = lls_metric_parse(metric.ptr, metric.len);
  if (out->metric < 0)
    return lls_error_set(err, LLS_EFORMAT, "collection '%s': unknown stored metric '%.*s'",
                         out->name, (int)(metric.len > 32 ? 32 : metric.len), metric.ptr);
  out->dimension = sqlite3_column_int(s, 2);
  out->m = sqlite3_column_int(s, 4);
  out->ef_construction = sqlite3_column_int(s, 5);
  out->ef_search = sqlite3_column_int(s, 6);
  out->created_at = sqlite3_column_int64(s, 7);
  out->seq = sqlite3_column_int64(s, 8);
  out->count = sqlite3_column_int64(s, 9);
  return 0;
}

/* The bookkeeping columns a write or a catch-up needs. */
typedef struct coll_head {
  int64_t seq, count, tomb_floor;
  int dimension;
} coll_head;

/* One primary-key read. LLS_ENOTFOUND when coll_id is not a collection of
 * this tenant: dropped since the caller looked it up, or never its own. */
static int read_head(sqlite_backend *b, int64_t coll_id, coll_head *h, const char *what,
                     lls_error *err) {
  sqlite3_stmt *s = stmt(b, ST_COLL_HEAD, err);
  if (s == NULL) return -1;
  int rc = bind_coll(b, s, coll_id);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    h->seq = sqlite3_column_int64(s, 0);
    h->count = sqlite3_column_int64(s, 1);
    h->dimension = sqlite3_column_int(s, 2);
    h->tomb_floor = sqlite3_column_int64(s, 3);
    done(s);
    return 0;
  }
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, what, err);
    done(s);
    return -1;
  }
  done(s);
  return lls_error_set(err, LLS_ENOTFOUND, "%s: collection %lld does not exist", what,
                       (long long)coll_id);
}

/* Opens a read transaction unless one (or a write one) is already open, so
 * a multi-statement read sees one snapshot of the file. *own says whether
 * read_end must close it. */
static int read_begin(sqlite_backend *b, int *own, const char *what, lls_error *err) {
  *own = sqlite3_get_autocommit(b->db);
  return *own ? exec_cached(b, ST_BEGIN_READ, what, err) : 0;
}

static int read_end(sqlite_backend *b, int own, int ok, const char *what, lls_error *err) {
  if (!own) return ok ? 0 : -1;
  if (ok && exec_cached(b, ST_COMMIT, what, err) == 0) return 0;
  abort_txn(b);
  return -1;
}

static int sqlite_coll_create(lls_backend *base, lls_coll_info *info, int64_t now,
                              lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *metric = lls_metric_name((lls_metric)info->metric);
  if (metric == NULL)
    return lls_error_set(err, LLS_EINVALID, "create collection: unknown metric %d",
                         info->metric);
  size_t nlen = strnlen(info->name, sizeof info->name);
  if (nlen == sizeof info->name)
    return lls_error_set(err, LLS_EINVALID, "create collection: name is not terminated");
  if (check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = stmt(b, ST_COLL_CREATE, err);
  if (s == NULL) return -1;
  lls_str name = {info->name, nlen};
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, name, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 3, info->dimension);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(s, 4, metric, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 5, info->m);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 6, info->ef_construction);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 7, info->ef_search);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 8, now);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, "create collection", err);
    done(s);
    return -1;
  }
  int created = sqlite3_changes(b->db) > 0;
  done(s);
  if (!created)
    return lls_error_set(err, LLS_ECONFLICT, "collection '%s' already exists", info->name);
  info->id = sqlite3_last_insert_rowid(b->db);
  info->created_at = now;
  info->seq = 0;
  info->count = 0;
  return 0;
}

/* Name lookup through the UNIQUE (tenant_id, name) index. */
static int coll_find(sqlite_backend *b, const char *name, lls_coll_info *out, int *found,
                     const char *what, lls_error *err) {
  sqlite3_stmt *s = stmt(b, ST_COLL_GET, err);
  if (s == NULL) return -1;
  lls_str n = {name, strlen(name)};
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, n, 1);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  *found = 0;
  if (rc == SQLITE_ROW) {
    if (fill_coll(s, out, err) != 0) {
      done(s);
      return -1;
    }
    *found = 1;
    rc = sqlite3_step(s);
  }
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, what, err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sqlite_coll_get(lls_backend *base, const char *name, lls_coll_info *out,
                           int *found, lls_error *err) {
  return coll_find((sqlite_backend *)base, name, out, found, "collection", err);
}

/* Literal prefix as an index range, like scan(): [prefix, upper). */
static int sqlite_coll_list(lls_backend *base, lls_str prefix, lls_coll_sink sink, void *ud,
                            lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  int has_upper;
  if (lls_prefix_upper(prefix, &b->upper, &has_upper) != 0) return oom(err);
  sqlite3_stmt *s = stmt(b, has_upper ? ST_COLL_LIST_GE_LT : ST_COLL_LIST_GE, err);
  if (s == NULL) return -1;
  lls_str upper = {b->upper.data, b->upper.len};
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 2, prefix, 1);
  if (rc == SQLITE_OK && has_upper) rc = bind_bytes(s, 3, upper, 1);
  if (rc != SQLITE_OK) {
    done(s);
    return fail(b->db, rc, "list collections", err);
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_coll_info info;
    if (fill_coll(s, &info, err) != 0) {
      done(s);
      return -1;
    }
    if (sink(ud, &info, err) != 0) {
      done(s);
      return sink_stopped(err);
    }
  }
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, "list collections", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

/* Rows, tombstones, snapshot and the collection itself, in one unit. */
static int sqlite_coll_drop(lls_backend *base, const char *name, int *dropped,
                            lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  static const int children[] = {ST_VEC_DROP, ST_TOMB_DROP, ST_SNAP_DROP, ST_COLL_DELETE};
  const char *what = "drop collection";
  int nested, found;
  lls_coll_info info;
  if (unit_begin(b, &nested, what, err) != 0) return -1;
  if (coll_find(b, name, &info, &found, what, err) != 0) goto fail;
  for (size_t i = 0; found && i < sizeof children / sizeof children[0]; i++) {
    sqlite3_stmt *s = stmt(b, children[i], err);
    if (s == NULL || run(b, s, bind_coll(b, s, info.id), what, err) != 0) goto fail;
  }
  if (unit_commit(b, nested, what, err) != 0) goto fail;
  *dropped = found;
  return 0;
fail:
  unit_abort(b, nested);
  return -1;
}

static int sqlite_coll_seq(lls_backend *base, int64_t coll_id, int64_t *seq, int64_t *count,
                           lls_error *err) {
  coll_head h;
  if (read_head((sqlite_backend *)base, coll_id, &h, "collection seq", err) != 0) return -1;
  *seq = h.seq;
  *count = h.count;
  return 0;
}

/* ?1..?11 of ST_VEC_INSERT and ST_VEC_UPDATE. */
static int bind_vec(sqlite_backend *b, sqlite3_stmt *s, int64_t coll_id,
                    const lls_vec_row *r, int64_t seq) {
  int rc = bind_coll(b, s, coll_id);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 3, r->id, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 4, r->scope, 1);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 5, r->vector, 0);
  if (rc == SQLITE_OK) rc = bind_bytes(s, 6, r->metadata, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 7, r->created_at);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 8, r->updated_at);
  if (rc == SQLITE_OK)
    rc = r->has_event_time ? sqlite3_bind_int64(s, 9, r->event_time) : sqlite3_bind_null(s, 9);
  if (rc == SQLITE_OK) rc = bind_expiry(s, 10, r->expires_at);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 11, seq);
  return rc;
}

/* Ids can be 512 bytes; messages quote at most this many of them. */
#define ID_QUOTE 200
#define QUOTE_LEN(s) ((int)((s).len > ID_QUOTE ? ID_QUOTE : (s).len))

/* One unit: read seq, write every row stamped seq + 1, then store seq + 1
 * and the new count. The write lock is held from unit_begin (BEGIN
 * IMMEDIATE, or the caller's transaction, which begin() also opens
 * IMMEDIATE), so no other writer can take the same seq. Per row: one
 * step of a cached insert, and of an update only for an id that exists. */
static int sqlite_vec_put(lls_backend *base, int64_t coll_id, const lls_vec_row *rows,
                          size_t n, int insert_only, int64_t *seq, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = insert_only ? "add vectors" : "upsert vectors";
  coll_head h;
  if (n == 0) {
    if (read_head(b, coll_id, &h, what, err) != 0) return -1;
    *seq = h.seq;
    return 0;
  }
  int nested;
  if (unit_begin(b, &nested, what, err) != 0) return -1;
  if (read_head(b, coll_id, &h, what, err) != 0) goto fail;
  int64_t next = h.seq + 1, added = 0;
  size_t vbytes = (size_t)h.dimension * sizeof(float);
  sqlite3_stmt *ins = stmt(b, ST_VEC_INSERT, err), *upd = NULL;
  if (ins == NULL) goto fail;
  for (size_t i = 0; i < n; i++) {
    const lls_vec_row *r = &rows[i];
    if (r->vector.len != vbytes) {
      lls_error_set(err, LLS_EINVALID,
                    "%s: id '%.*s': vector has %zu bytes, collection expects %zu"
                    " (dimension %d)",
                    what, QUOTE_LEN(r->id), r->id.ptr, r->vector.len, vbytes, h.dimension);
      goto fail;
    }
    int rc = bind_vec(b, ins, coll_id, r, next);
    if (rc == SQLITE_OK) rc = sqlite3_step(ins);
    if (rc != SQLITE_DONE) {
      fail(b->db, rc, what, err);
      done(ins);
      goto fail;
    }
    int inserted = sqlite3_changes(b->db) > 0;
    done(ins);
    if (inserted) {
      added++;
      continue;
    }
    if (insert_only) {
      lls_error_set(err, LLS_ECONFLICT, "id '%.*s' already exists", QUOTE_LEN(r->id),
                    r->id.ptr);
      goto fail;
    }
    if (upd == NULL && (upd = stmt(b, ST_VEC_UPDATE, err)) == NULL) goto fail;
    if (run(b, upd, bind_vec(b, upd, coll_id, r, next), what, err) != 0) goto fail;
  }
  sqlite3_stmt *st = stmt(b, ST_COLL_STAMP, err);
  if (st == NULL) goto fail;
  int rc = bind_coll(b, st, coll_id);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 3, next);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 4, added);
  if (run(b, st, rc, what, err) != 0 || unit_commit(b, nested, what, err) != 0) goto fail;
  *seq = next;
  return 0;
fail:
  unit_abort(b, nested);
  return -1;
}

/* Like vec_put; the seq and count are stored only when a row went, so a
 * delete of absent ids changes nothing (not even the seq). deleted_at is
 * bookkeeping for tombstone pruning, read from this machine's clock. */
static int sqlite_vec_delete(lls_backend *base, int64_t coll_id, const lls_str *ids,
                             size_t n, size_t *deleted, int64_t *seq, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "delete vectors";
  coll_head h;
  *deleted = 0;
  if (n == 0) {
    if (read_head(b, coll_id, &h, what, err) != 0) return -1;
    *seq = h.seq;
    return 0;
  }
  int nested;
  if (unit_begin(b, &nested, what, err) != 0) return -1;
  if (read_head(b, coll_id, &h, what, err) != 0) goto fail;
  int64_t next = h.seq + 1, now = wall_us();
  size_t count = 0;
  sqlite3_stmt *del = stmt(b, ST_VEC_DELETE, err), *tomb = NULL;
  if (del == NULL) goto fail;
  for (size_t i = 0; i < n; i++) {
    int rc = bind_coll(b, del, coll_id);
    if (rc == SQLITE_OK) rc = bind_bytes(del, 3, ids[i], 1);
    if (rc == SQLITE_OK) rc = sqlite3_step(del);
    if (rc != SQLITE_DONE) {
      fail(b->db, rc, what, err);
      done(del);
      goto fail;
    }
    int gone = sqlite3_changes(b->db) > 0;
    done(del);
    if (!gone) continue;
    count++;
    if (tomb == NULL && (tomb = stmt(b, ST_TOMB_PUT, err)) == NULL) goto fail;
    rc = bind_coll(b, tomb, coll_id);
    if (rc == SQLITE_OK) rc = bind_bytes(tomb, 3, ids[i], 1);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(tomb, 4, next);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(tomb, 5, now);
    if (run(b, tomb, rc, what, err) != 0) goto fail;
  }
  if (count > 0) {
    sqlite3_stmt *st = stmt(b, ST_COLL_STAMP, err);
    if (st == NULL) goto fail;
    int rc = bind_coll(b, st, coll_id);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 3, next);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 4, -(int64_t)count);
    if (run(b, st, rc, what, err) != 0) goto fail;
  }
  if (unit_commit(b, nested, what, err) != 0) goto fail;
  *deleted = count;
  *seq = count > 0 ? next : h.seq;
  return 0;
fail:
  unit_abort(b, nested);
  return -1;
}

/* Steps s (bound, columns id, scope, vector, metadata, created_at,
 * updated_at, event_time, expires_at, seq[, deleted]) and hands each row to
 * sink; ends the read transaction as read_end does. */
static int stream_rows(sqlite_backend *b, sqlite3_stmt *s, int own, lls_vec_sink sink,
                       void *ud, const char *what, lls_error *err) {
  int rc, has_deleted = sqlite3_column_count(s) > 9;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_vec_row row;
    memset(&row, 0, sizeof row);
    if (column_bytes(s, 0, &row.id, 1) != 0 || column_bytes(s, 1, &row.scope, 1) != 0 ||
        column_bytes(s, 2, &row.vector, 0) != 0 || column_bytes(s, 3, &row.metadata, 1) != 0) {
      done(s);
      oom(err);
      return read_end(b, own, 0, what, err);
    }
    row.created_at = sqlite3_column_int64(s, 4);
    row.updated_at = sqlite3_column_int64(s, 5);
    row.has_event_time = sqlite3_column_type(s, 6) != SQLITE_NULL;
    row.event_time = sqlite3_column_int64(s, 6);
    row.expires_at = sqlite3_column_int64(s, 7); /* NULL reads as 0: never */
    row.seq = sqlite3_column_int64(s, 8);
    row.deleted = has_deleted ? sqlite3_column_int(s, 9) : 0;
    if (sink(ud, &row, err) != 0) {
      done(s);
      sink_stopped(err);
      return read_end(b, own, 0, what, err);
    }
  }
  if (rc != SQLITE_DONE) fail(b->db, rc, what, err);
  done(s);
  return read_end(b, own, rc == SQLITE_DONE, what, err);
}

/* The header check and the stream share one read transaction, so the
 * stream is exactly the collection at one seq. The sink runs with the
 * statement open; it must not call back into the backend (backend.h). */
static int sqlite_vec_load(lls_backend *base, int64_t coll_id, int64_t since,
                           lls_vec_sink sink, void *ud, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "load vectors";
  if (since < 0)
    return lls_error_set(err, LLS_EINVALID, "%s: since must be >= 0, got %lld", what,
                         (long long)since);
  int own;
  coll_head h;
  if (read_begin(b, &own, what, err) != 0) return -1;
  if (read_head(b, coll_id, &h, what, err) != 0) return read_end(b, own, 0, what, err);
  if (since > 0 && since < h.tomb_floor) {
    lls_error_set(err, LLS_EVERSION, "collection history pruned; reload");
    return read_end(b, own, 0, what, err);
  }
  sqlite3_stmt *s = stmt(b, since > 0 ? ST_VEC_LOAD_SINCE : ST_VEC_LOAD_ALL, err);
  if (s == NULL) return read_end(b, own, 0, what, err);
  int rc = bind_coll(b, s, coll_id);
  if (rc == SQLITE_OK && since > 0) rc = sqlite3_bind_int64(s, 3, since);
  if (rc != SQLITE_OK) {
    fail(b->db, rc, what, err);
    done(s);
    return read_end(b, own, 0, what, err);
  }
  return stream_rows(b, s, own, sink, ud, what, err);
}

/* Newest wins: a handle that lags behind (it read the collection earlier)
 * never replaces a snapshot taken at a higher seq. */
static int sqlite_snap_save(lls_backend *base, int64_t coll_id, int64_t seq,
                            const void *data, size_t len, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "save snapshot";
  if (data == NULL && len > 0)
    return lls_error_set(err, LLS_EINVALID, "%s: no data", what);
  int nested;
  coll_head h;
  if (unit_begin(b, &nested, what, err) != 0) return -1;
  if (read_head(b, coll_id, &h, what, err) != 0) goto fail;
  sqlite3_stmt *s = stmt(b, ST_SNAP_SEQ, err);
  if (s == NULL) goto fail;
  int rc = bind_coll(b, s, coll_id);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  int newer = rc == SQLITE_ROW && sqlite3_column_int64(s, 0) > seq;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    fail(b->db, rc, what, err);
    done(s);
    goto fail;
  }
  done(s);
  if (!newer) {
    int64_t now = wall_us();
    if ((s = stmt(b, ST_SNAP_DROP, err)) == NULL ||
        run(b, s, bind_coll(b, s, coll_id), what, err) != 0 ||
        (s = stmt(b, ST_SNAP_PART, err)) == NULL)
      goto fail;
    /* At least one part, so an empty snapshot is still found. */
    size_t off = 0;
    int part = 0;
    do {
      size_t piece = len - off < SNAP_PART_BYTES ? len - off : SNAP_PART_BYTES;
      lls_str bytes = {(const char *)data + off, piece};
      rc = bind_coll(b, s, coll_id);
      if (rc == SQLITE_OK) rc = sqlite3_bind_int(s, 3, part);
      if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, seq);
      if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 5, now);
      if (rc == SQLITE_OK) rc = bind_bytes(s, 6, bytes, 0);
      if (run(b, s, rc, what, err) != 0) goto fail;
      off += piece;
      part++;
    } while (off < len);
    /* Prune what the snapshot covers and an hour has passed over. */
    static const int prune[] = {ST_TOMB_FLOOR, ST_TOMB_PRUNE};
    for (size_t i = 0; i < sizeof prune / sizeof prune[0]; i++) {
      if ((s = stmt(b, prune[i], err)) == NULL) goto fail;
      rc = bind_coll(b, s, coll_id);
      if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, seq);
      if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, now - TOMB_GRACE_US);
      if (run(b, s, rc, what, err) != 0) goto fail;
    }
  }
  if (unit_commit(b, nested, what, err) != 0) goto fail;
  return 0;
fail:
  unit_abort(b, nested);
  return -1;
}

/* Sizes first, so out grows once to the exact total: snapshots can be
 * gigabytes, and doubling would nearly double the peak. */
static int sqlite_snap_load(lls_backend *base, int64_t coll_id, lls_buf *out, int64_t *seq,
                            int *found, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "load snapshot";
  int own;
  coll_head h;
  out->len = 0;
  *found = 0;
  if (read_begin(b, &own, what, err) != 0) return -1;
  if (read_head(b, coll_id, &h, what, err) != 0) return read_end(b, own, 0, what, err);
  sqlite3_stmt *s = stmt(b, ST_SNAP_SIZE, err);
  if (s == NULL) return read_end(b, own, 0, what, err);
  int rc = bind_coll(b, s, coll_id);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) {
    fail(b->db, rc, what, err);
    done(s);
    return read_end(b, own, 0, what, err);
  }
  int64_t parts = sqlite3_column_int64(s, 0), total = sqlite3_column_int64(s, 1);
  done(s);
  if (parts == 0) return read_end(b, own, 1, what, err);
  if (total < 0 || (uint64_t)total > SIZE_MAX / 2 || lls_buf_reserve(out, (size_t)total) != 0) {
    oom(err);
    return read_end(b, own, 0, what, err);
  }
  if ((s = stmt(b, ST_SNAP_READ, err)) == NULL) return read_end(b, own, 0, what, err);
  int64_t n = 0, first = 0;
  if ((rc = bind_coll(b, s, coll_id)) == SQLITE_OK) rc = sqlite3_step(s);
  for (; rc == SQLITE_ROW; rc = sqlite3_step(s)) {
    lls_str bytes;
    int64_t part = sqlite3_column_int64(s, 0), pseq = sqlite3_column_int64(s, 1);
    if (n == 0) first = pseq;
    if (part != n || pseq != first) {
      lls_error_set(err, LLS_EFORMAT, "%s: collection %lld: snapshot parts do not match",
                    what, (long long)coll_id);
      done(s);
      return read_end(b, own, 0, what, err);
    }
    if (column_bytes(s, 2, &bytes, 0) != 0 || lls_buf_append(out, bytes.ptr, bytes.len) != 0) {
      oom(err);
      done(s);
      return read_end(b, own, 0, what, err);
    }
    n++;
  }
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, what, err);
    done(s);
    return read_end(b, own, 0, what, err);
  }
  done(s);
  *seq = first;
  *found = 1;
  return read_end(b, own, 1, what, err);
}

/* -------------------------------------------------------- export/import */

/* Binds bytes as TEXT, or SQL NULL when empty ("none" for metadata, kv_id). */
static int bind_text_or_null(sqlite3_stmt *s, int i, lls_str v) {
  return v.len == 0 ? sqlite3_bind_null(s, i) : bind_bytes(s, i, v, 1);
}

static int sqlite_kv_dump(lls_backend *base, lls_str after, int64_t now, size_t limit,
                          lls_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  sqlite3_stmt *s = stmt(b, after.ptr != NULL ? ST_KV_DUMP_AFTER : ST_KV_DUMP, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK && after.ptr != NULL) rc = bind_bytes(s, 2, after, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, now);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, limit ? clamp_limit(limit) : -1);
  if (rc != SQLITE_OK) {
    done(s);
    return fail(b->db, rc, "dump", err);
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_str k, v, meta, id;
    lls_row *row = NULL;
    if (column_bytes(s, 0, &k, 1) == 0 && column_bytes(s, 1, &v, 0) == 0 &&
        column_bytes(s, 2, &meta, 1) == 0 && column_bytes(s, 3, &id, 1) == 0)
      row = lls_rows_add_ext(out, k, v, meta, id);
    if (row == NULL) {
      done(s);
      return oom(err);
    }
    row->created_at = sqlite3_column_int64(s, 4);
    row->updated_at = sqlite3_column_int64(s, 5);
    row->expires_at = sqlite3_column_int64(s, 6); /* NULL reads as 0 */
  }
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, "dump", err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

/* One unit (see unit_begin), so a failure, LLS_CONFLICT_ERROR's included,
 * writes nothing even inside the importer's transaction. Records are
 * resolved in order: a key repeated in recs meets the copy written before
 * it. One cached statement step per record. */
static int sqlite_kv_load(lls_backend *base, const lls_kv_rec *recs, size_t n,
                          lls_conflict on_conflict, int64_t now, size_t *written,
                          lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "import";
  int replace = on_conflict == LLS_CONFLICT_REPLACE, nested;
  if (n == 0) {
    *written = 0;
    return check_txn(b, err);
  }
  if (unit_begin(b, &nested, what, err) != 0) return -1;
  sqlite3_stmt *s = stmt(b, replace ? ST_KV_LOAD_REPLACE : ST_KV_LOAD_INSERT, err);
  if (s == NULL) goto fail;
  size_t count = 0;
  for (size_t i = 0; i < n; i++) {
    const lls_kv_rec *r = &recs[i];
    int rc = bind_tenant(b, s);
    if (rc == SQLITE_OK) rc = bind_bytes(s, 2, r->key, 1);
    if (rc == SQLITE_OK) rc = bind_bytes(s, 3, r->value, 0);
    if (rc == SQLITE_OK) rc = bind_text_or_null(s, 4, r->metadata);
    if (rc == SQLITE_OK) rc = bind_text_or_null(s, 5, r->kv_id);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 6, r->created_at);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 7, r->updated_at);
    if (rc == SQLITE_OK) rc = bind_expiry(s, 8, r->expires_at);
    if (rc == SQLITE_OK && !replace) rc = sqlite3_bind_int64(s, 9, now);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
      fail(b->db, rc, what, err);
      done(s);
      goto fail;
    }
    int changed = sqlite3_changes(b->db) > 0;
    done(s);
    if (changed) {
      count++;
    } else if (on_conflict == LLS_CONFLICT_ERROR) {
      lls_error_set(err, LLS_ECONFLICT, "key '%.*s' already exists", QUOTE_LEN(r->key),
                    r->key.ptr);
      goto fail;
    }
  }
  if (unit_commit(b, nested, what, err) != 0) goto fail;
  *written = count;
  return 0;
fail:
  unit_abort(b, nested);
  return -1;
}

/* The header check and the page share one read transaction. Expired rows
 * are included: vector rows are filtered at search time, not by storage. */
static int sqlite_vec_dump(lls_backend *base, int64_t coll_id, lls_str after_id, size_t limit,
                           lls_vec_sink sink, void *ud, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "dump vectors";
  int own;
  coll_head h;
  if (read_begin(b, &own, what, err) != 0) return -1;
  if (read_head(b, coll_id, &h, what, err) != 0) return read_end(b, own, 0, what, err);
  sqlite3_stmt *s = stmt(b, after_id.ptr != NULL ? ST_VEC_DUMP_AFTER : ST_VEC_DUMP, err);
  if (s == NULL) return read_end(b, own, 0, what, err);
  int rc = bind_coll(b, s, coll_id);
  if (rc == SQLITE_OK && after_id.ptr != NULL) rc = bind_bytes(s, 3, after_id, 1);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, limit ? clamp_limit(limit) : -1);
  if (rc != SQLITE_OK) {
    fail(b->db, rc, what, err);
    done(s);
    return read_end(b, own, 0, what, err);
  }
  return stream_rows(b, s, own, sink, ud, what, err);
}

static int sqlite_vec_has(lls_backend *base, int64_t coll_id, const lls_str *ids, size_t n,
                          unsigned char *present, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "look up vectors";
  int own;
  coll_head h;
  if (read_begin(b, &own, what, err) != 0) return -1;
  if (read_head(b, coll_id, &h, what, err) != 0) return read_end(b, own, 0, what, err);
  sqlite3_stmt *s = stmt(b, ST_VEC_HAS, err);
  if (s == NULL) return read_end(b, own, 0, what, err);
  for (size_t i = 0; i < n; i++) {
    int rc = bind_coll(b, s, coll_id);
    if (rc == SQLITE_OK) rc = bind_bytes(s, 3, ids[i], 1);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    present[i] = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      fail(b->db, rc, what, err);
      done(s);
      return read_end(b, own, 0, what, err);
    }
    done(s);
  }
  return read_end(b, own, 1, what, err);
}

/* Section names end at a NUL in the memory backend's keys; refusing them
 * everywhere keeps the backends' contents (and orders) the same. */
static int bad_section(lls_str section, lls_error *err) {
  if (section.len == 0 || memchr(section.ptr, '\0', section.len) == NULL) return 0;
  return lls_error_set(err, LLS_EINVALID, "section name '%.*s' contains a NUL byte",
                       QUOTE_LEN(section), section.ptr);
}

static int sqlite_sec_put(lls_backend *base, const lls_str *sections, const int64_t *ords,
                          const lls_str *json, size_t n, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "store sections";
  for (size_t i = 0; i < n; i++)
    if (bad_section(sections[i], err) != 0) return -1;
  if (n == 0) return check_txn(b, err);
  int nested;
  if (unit_begin(b, &nested, what, err) != 0) return -1;
  sqlite3_stmt *s = stmt(b, ST_SEC_PUT, err);
  if (s == NULL) goto fail;
  for (size_t i = 0; i < n; i++) {
    int rc = bind_tenant(b, s);
    if (rc == SQLITE_OK) rc = bind_bytes(s, 2, sections[i], 1);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 3, ords[i]);
    if (rc == SQLITE_OK) rc = bind_bytes(s, 4, json[i], 1);
    if (run(b, s, rc, what, err) != 0) goto fail;
  }
  if (unit_commit(b, nested, what, err) != 0) goto fail;
  return 0;
fail:
  unit_abort(b, nested);
  return -1;
}

static int sqlite_sec_dump(lls_backend *base, lls_str after_section, int64_t after_ord,
                           size_t limit, lls_rows *out, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *what = "dump sections";
  int after = after_section.ptr != NULL;
  sqlite3_stmt *s = stmt(b, after ? ST_SEC_DUMP_AFTER : ST_SEC_DUMP, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK && after) rc = bind_bytes(s, 2, after_section, 1);
  if (rc == SQLITE_OK && after) rc = sqlite3_bind_int64(s, 3, after_ord);
  if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 4, limit ? clamp_limit(limit) : -1);
  if (rc != SQLITE_OK) {
    done(s);
    return fail(b->db, rc, what, err);
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    lls_str sec, rec;
    lls_row *row = NULL;
    if (column_bytes(s, 0, &sec, 1) == 0 && column_bytes(s, 2, &rec, 1) == 0)
      row = lls_rows_add(out, sec.ptr, sec.len, rec.ptr, rec.len);
    if (row == NULL) {
      done(s);
      return oom(err);
    }
    row->created_at = sqlite3_column_int64(s, 1);
  }
  if (rc != SQLITE_DONE) {
    fail(b->db, rc, what, err);
    done(s);
    return -1;
  }
  done(s);
  return 0;
}

static int sqlite_sec_clear(lls_backend *base, lls_str section, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  if (bad_section(section, err) != 0 || check_txn(b, err) != 0) return -1;
  sqlite3_stmt *s = stmt(b, section.len ? ST_SEC_CLEAR : ST_SEC_CLEAR_ALL, err);
  if (s == NULL) return -1;
  int rc = bind_tenant(b, s);
  if (rc == SQLITE_OK && section.len) rc = bind_bytes(s, 2, section, 1);
  return run(b, s, rc, "clear sections", err);
}

/* Appends one problem row; where says which check found it. */
static int add_problem(lls_rows *out, const char *where, const char *what, lls_error *err) {
  return lls_rows_add(out, where, strlen(where), what, strlen(what)) != NULL ? 0 : oom(err);
}

/* PRAGMA integrity_check over the whole file (every tenant shares its
 * pages). A file too damaged for the check to run is a finding too, not
 * a failure of check(): corruption is what the caller asked about. */
static int sqlite_check(lls_backend *base, lls_rows *problems, lls_error *err) {
  sqlite_backend *b = (sqlite_backend *)base;
  const char *where = "integrity_check";
  sqlite3_stmt *s;
  int rc = sqlite3_prepare_v2(b->db, "PRAGMA integrity_check", -1, &s, NULL);
  if (rc == SQLITE_OK) {
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      const unsigned char *msg = sqlite3_column_text(s, 0);
      if (msg == NULL) {
        sqlite3_finalize(s);
        return oom(err);
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
  return fail(b->db, rc, "integrity check", err);
}

static const lls_kv_ops sqlite_kv_ops = {
    .get = sqlite_get,
    .set = sqlite_set,
    .del = sqlite_del,
    .apply = sqlite_apply,
    .get_many = sqlite_get_many,
    .scan = sqlite_scan,
    .clear = sqlite_clear,
    .stats = sqlite_stats,
    .sweep = sqlite_sweep,
};

static const lls_vec_ops sqlite_vec_ops = {
    .coll_create = sqlite_coll_create,
    .coll_get = sqlite_coll_get,
    .coll_list = sqlite_coll_list,
    .coll_drop = sqlite_coll_drop,
    .coll_seq = sqlite_coll_seq,
    .put = sqlite_vec_put,
    .del = sqlite_vec_delete,
    .load = sqlite_vec_load,
    .snap_save = sqlite_snap_save,
    .snap_load = sqlite_snap_load,
};

static const lls_xport_ops sqlite_xport_ops = {
    .kv_dump = sqlite_kv_dump,
    .kv_load = sqlite_kv_load,
    .vec_dump = sqlite_vec_dump,
    .vec_has = sqlite_vec_has,
    .sec_put = sqlite_sec_put,
    .sec_dump = sqlite_sec_dump,
    .sec_clear = sqlite_sec_clear,
};

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
    .begin = sqlite_begin,
    .begin_read = sqlite_begin_read,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .migrations = sqlite_migrations,
    .check = sqlite_check,
    .kv = &sqlite_kv_ops,
    .vec = &sqlite_vec_ops,
    .xport = &sqlite_xport_ops,
};
