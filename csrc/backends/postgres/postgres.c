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
 *   -- migration 2: 002_vectors (vector collections)
 *   CREATE TABLE llmspell.collections (
 *     id              bigserial PRIMARY KEY,
 *     tenant_id       text NOT NULL,
 *     name            text COLLATE "C" NOT NULL,
 *     dimension       int NOT NULL,
 *     metric          int NOT NULL,             -- lls_metric (distance.h)
 *     m               int NOT NULL,
 *     ef_construction int NOT NULL,
 *     ef_search       int NOT NULL,
 *     created_at      timestamptz NOT NULL,
 *     seq             bigint NOT NULL DEFAULT 0, -- change sequence, +1 per write
 *     count           bigint NOT NULL DEFAULT 0, -- rows in vectors
 *     tomb_floor      bigint NOT NULL DEFAULT 0, -- tombstones <= this may be pruned
 *     UNIQUE (tenant_id, name)
 *   );
 *   CREATE TABLE llmspell.vectors (
 *     collection_id bigint NOT NULL REFERENCES llmspell.collections ON DELETE CASCADE,
 *     tenant_id     text NOT NULL,
 *     id            text COLLATE "C" NOT NULL,
 *     scope         text NOT NULL,
 *     vector        bytea NOT NULL,             -- little-endian float32, packed
 *     metadata      jsonb NOT NULL,
 *     created_at    timestamptz NOT NULL,
 *     updated_at    timestamptz NOT NULL,
 *     event_time    timestamptz,                -- NULL: none
 *     expires_at    timestamptz,                -- NULL: never expires
 *     seq           bigint NOT NULL,            -- the write that made this version
 *     PRIMARY KEY (collection_id, id)
 *   );
 *   ALTER TABLE llmspell.vectors ALTER vector SET STORAGE EXTERNAL;
 *   CREATE INDEX vectors_seq_idx ON llmspell.vectors (collection_id, seq);
 *   CREATE TABLE llmspell.vector_tombstones (      -- deleted ids, for catch-up
 *     collection_id bigint NOT NULL REFERENCES llmspell.collections ON DELETE CASCADE,
 *     tenant_id     text NOT NULL,
 *     id            text COLLATE "C" NOT NULL,
 *     seq           bigint NOT NULL,            -- the write that deleted it
 *     deleted_at    timestamptz NOT NULL,
 *     PRIMARY KEY (collection_id, id)
 *   );
 *   CREATE INDEX vector_tombstones_seq_idx ON llmspell.vector_tombstones
 *     (collection_id, seq);
 *   CREATE TABLE llmspell.vector_snapshots (       -- the index, in parts
 *     collection_id bigint NOT NULL REFERENCES llmspell.collections ON DELETE CASCADE,
 *     tenant_id     text NOT NULL,
 *     part          int NOT NULL,               -- 0, 1, ...: SNAP_PART_BYTES each
 *     seq           bigint NOT NULL,            -- the collection seq it was taken at
 *     data          bytea NOT NULL,
 *     saved_at      timestamptz NOT NULL,
 *     PRIMARY KEY (collection_id, part)
 *   );
 *   ALTER TABLE llmspell.vector_snapshots ALTER data SET STORAGE EXTERNAL;
 *   -- and on each of the four tables, as on kv_store:
 *   ALTER TABLE ... ENABLE ROW LEVEL SECURITY; ALTER TABLE ... FORCE ROW LEVEL SECURITY;
 *   CREATE POLICY <table>_tenant_isolation ON ... USING (tenant_id = current_setting(
 *     'app.current_tenant_id', true)) WITH CHECK (<the same>);
 *
 *   -- migration 3: 003_export (what export/import carries beyond the KV API)
 *   ALTER TABLE llmspell.kv_store ADD COLUMN kv_id text; -- rs-llmspell's record
 *                                                         -- id; NULL: none
 *   CREATE TABLE llmspell.export_sections (     -- passthrough sections of
 *     tenant_id text NOT NULL,                   -- imported files (agent_state,
 *     section   text COLLATE "C" NOT NULL,       -- sessions, ...)
 *     ord       bigint NOT NULL,                 -- array index; -1: the section
 *                                                -- is one value, not an array
 *     record    text NOT NULL,                   -- JSON text; text, not jsonb,
 *     PRIMARY KEY (tenant_id, section, ord)      -- so it comes back byte for byte
 *   );
 *   -- and RLS on export_sections exactly as on the other tables.
 *
 * kv_store.metadata and kv_id are written only by import (kv_load); set()
 * keeps both while the row it overwrites is visible and clears them when it
 * starts a new row, as it does with created_at. metadata is jsonb, so it
 * comes back normalised (key order, spacing), not byte for byte.
 *
 * Snapshots are split into parts because one bytea holds at most 1 GB and a
 * snapshot holds every vector (a million 768-d vectors is 3 GB). Vectors
 * and snapshots are stored uncompressed (STORAGE EXTERNAL): floats do not
 * compress, and trying costs time on every write.
 *
 * Every vector write first runs `UPDATE collections SET seq = seq + 1`,
 * which takes the collection's row lock: writers to one collection are
 * serialised and commit in seq order, and the statements after it see
 * every earlier writer's rows, so count stays exact. Tombstones stay until
 * snap_save prunes those covered by a snapshot and older than an hour,
 * raising tomb_floor: a handle that wants changes since an older seq must
 * reload (LLS_EVERSION).
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
 * UPDATE / DELETE on kv_store, on the four vector tables and on
 * export_sections, USAGE on the sequence collections_id_seq) can open it.
 *
 * Wire format: all parameters and results are binary, so keys, values and
 * arrays never go through text escaping; times travel as binary
 * timestamptz (int8 microseconds since 2000-01-01), which is exact, unlike
 * arithmetic on intervals (float8 multiplication).
 */
#include "backend/backend.h"
#include "base/utf8.h"

#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs from pg_type.h (server headers are not a build dependency). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25
#define OID_BYTEA_ARR 1001
#define OID_INT8_ARR 1016
#define OID_TEXT_ARR 1009
#define OID_TSTZ 1184
#define OID_TSTZ_ARR 1185

/* Binary timestamptz counts microseconds from 2000-01-01, not 1970-01-01. */
#define PG_EPOCH_OFFSET_US UINT64_C(946684800000000)

/* Bound on how long opening (or reconnecting) may take, unless the URL or
 * the connect_timeout option says otherwise; libpq's default is forever. */
#define DEFAULT_CONNECT_TIMEOUT "10"

#define MAX_PARAMS 12
#define MAX_SCHEMA 63 /* NAMEDATALEN - 1 */

/* ------------------------------------------------------------ statements */

#define VISIBLE(ts) "(expires_at IS NULL OR expires_at > " ts ")"

/* An existing row keeps its created_at (and metadata, kv_id) only while visible:
 * an expired row counts as absent, as on every other backend. */
#define STILL_VISIBLE "(kv.expires_at IS NULL OR kv.expires_at > EXCLUDED.updated_at)"
#define UPSERT_KEEP                                                              \
  " ON CONFLICT (tenant_id, key) DO UPDATE SET value = EXCLUDED.value,"         \
  " created_at = CASE WHEN " STILL_VISIBLE " THEN kv.created_at"                \
  " ELSE EXCLUDED.created_at END,"                                               \
  " metadata = CASE WHEN " STILL_VISIBLE " THEN kv.metadata END,"               \
  " kv_id = CASE WHEN " STILL_VISIBLE " THEN kv.kv_id END,"                     \
  " updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at"
#define UPSERT_FRESH                                                             \
  " ON CONFLICT (tenant_id, key) DO UPDATE SET value = EXCLUDED.value,"         \
  " created_at = EXCLUDED.created_at, metadata = NULL, kv_id = NULL,"           \
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
  ST_COLL_CREATE,
  ST_COLL_GET,
  ST_COLL_LIST,
  ST_COLL_LIST_U,
  ST_COLL_DROP,
  ST_COLL_SEQ,
  ST_COLL_BUMP,
  ST_COLL_FLOOR,
  ST_VEC_INSERT,
  ST_VEC_UPSERT,
  ST_VEC_DELETE,
  ST_VEC_LOAD_ALL,
  ST_VEC_LOAD_SINCE,
  ST_SNAP_LOCK,
  ST_SNAP_CLEAR,
  ST_SNAP_PART,
  ST_SNAP_PRUNE,
  ST_SNAP_LOAD,
  ST_KV_DUMP_FIRST,
  ST_KV_DUMP,
  ST_KV_LOAD_REPLACE,
  ST_KV_LOAD_SKIP,
  ST_VEC_DUMP,
  ST_VEC_HAS,
  ST_SEC_PUT,
  ST_SEC_DUMP,
  ST_SEC_CLEAR,
  ST_SEC_CLEAR_ALL,
  ST_CHECK_COUNTS,
  ST_CHECK_RLS,
  ST_COUNT
};

/* pg_backend.prepared has one bit per statement. */
_Static_assert(ST_COUNT <= 64, "too many statements for the prepared bitmask");

typedef struct pg_stmt {
  const char *name;
  const char *sql; /* "@S" stands for the quoted schema name */
  int nparams;
  Oid types[MAX_PARAMS];
} pg_stmt;

#define COLL_COLS                                                                \
  "id, name, dimension, metric, m, ef_construction, ef_search, created_at, seq, count"
#define COLL_LIST_HEAD "SELECT " COLL_COLS " FROM @S.collections WHERE tenant_id = $1 AND "
#define T_COLL {OID_TEXT, OID_INT8}

/* The rows of one write as parallel arrays ($4..$11), stamped with seq $3. */
#define VEC_INSERT                                                               \
  "INSERT INTO @S.vectors AS v (collection_id, tenant_id, id, scope, vector, metadata," \
  " created_at, updated_at, event_time, expires_at, seq)"                        \
  " SELECT $2, $1, t.id, t.sc, t.v, t.md::jsonb, t.ca, t.ua, t.et, t.ea, $3"     \
  " FROM unnest($4, $5, $6, $7, $8, $9, $10, $11) AS t(id, sc, v, md, ca, ua, et, ea)"
#define T_VEC_PUT                                                                \
  {OID_TEXT, OID_INT8, OID_INT8, OID_TEXT_ARR, OID_TEXT_ARR, OID_BYTEA_ARR, OID_TEXT_ARR, \
   OID_TSTZ_ARR, OID_TSTZ_ARR, OID_TSTZ_ARR, OID_TSTZ_ARR}

/* Columns of a change stream row; tombstones fill the same shape. */
#define VEC_COLS                                                                 \
  "id, scope, vector, metadata::text, created_at, updated_at, event_time, expires_at, seq"
#define VEC_CURSOR "lls_vload"
#define SNAP_CURSOR "lls_sload"

/* kv_dump: visible rows from a key on, with what only export sees. */
#define KV_DUMP_HEAD                                                             \
  "SELECT key, value, metadata::text, kv_id, created_at, updated_at, expires_at" \
  " FROM @S.kv_store WHERE tenant_id = $1 AND "
#define KV_DUMP_TAIL " AND " VISIBLE("$3") " ORDER BY key LIMIT $4"

/* kv_load: one row per key ($3..$9, parallel arrays), written as given.
 * Metadata arrives as JSON text and is cast here, so a bad document fails
 * the statement (22P02/22P05) rather than being stored as a string. */
#define KV_LOAD_INSERT                                                           \
  "INSERT INTO @S.kv_store AS kv (tenant_id, key, value, metadata, kv_id,"       \
  " created_at, updated_at, expires_at)"                                         \
  " SELECT $1, t.k, t.v, t.m::jsonb, t.i, t.ca, t.ua, t.ea"                      \
  " FROM unnest($3, $4, $5, $6, $7, $8, $9) AS t(k, v, m, i, ca, ua, ea)"        \
  " ON CONFLICT (tenant_id, key) DO UPDATE SET value = EXCLUDED.value,"          \
  " metadata = EXCLUDED.metadata, kv_id = EXCLUDED.kv_id,"                       \
  " created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,"         \
  " expires_at = EXCLUDED.expires_at"
#define T_KV_LOAD                                                                \
  {OID_TEXT, OID_TSTZ, OID_TEXT_ARR, OID_BYTEA_ARR, OID_TEXT_ARR, OID_TEXT_ARR,  \
   OID_TSTZ_ARR, OID_TSTZ_ARR, OID_TSTZ_ARR, OID_INT8_ARR}

/* The tables check() expects row-level security on: every table with a
 * tenant_id column. */
#define TENANT_TABLES                                                            \
  "ARRAY['kv_store', 'collections', 'vectors', 'vector_tombstones',"            \
  " 'vector_snapshots', 'export_sections']"

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
    /* DO NOTHING rather than a unique violation: a duplicate name must not
     * abort the caller's transaction. */
    [ST_COLL_CREATE] = {"lls_coll_create",
                        "INSERT INTO @S.collections (tenant_id, name, dimension, metric, m,"
                        " ef_construction, ef_search, created_at)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                        " ON CONFLICT (tenant_id, name) DO NOTHING RETURNING id",
                        8,
                        {OID_TEXT, OID_TEXT, OID_INT4, OID_INT4, OID_INT4, OID_INT4, OID_INT4,
                         OID_TSTZ}},
    [ST_COLL_GET] = {"lls_coll_get",
                     "SELECT " COLL_COLS " FROM @S.collections WHERE tenant_id = $1"
                     " AND name = $2",
                     2, {OID_TEXT, OID_TEXT}},
    [ST_COLL_LIST] = {"lls_coll_list", COLL_LIST_HEAD "name >= $2 ORDER BY name", 2,
                      {OID_TEXT, OID_TEXT}},
    [ST_COLL_LIST_U] = {"lls_coll_list_u",
                        COLL_LIST_HEAD "name >= $2 AND name < $3 ORDER BY name", 3,
                        {OID_TEXT, OID_TEXT, OID_TEXT}},
    /* Rows, tombstones and snapshot parts go with it (ON DELETE CASCADE). */
    [ST_COLL_DROP] = {"lls_coll_drop",
                      "DELETE FROM @S.collections WHERE tenant_id = $1 AND name = $2", 2,
                      {OID_TEXT, OID_TEXT}},
    [ST_COLL_SEQ] = {"lls_coll_seq",
                     "SELECT seq, count FROM @S.collections WHERE tenant_id = $1 AND id = $2",
                     2, T_COLL},
    /* The first statement of every vector write: the row lock it takes
     * serialises writers of the collection until commit. */
    [ST_COLL_BUMP] = {"lls_coll_bump",
                      "UPDATE @S.collections SET seq = seq + 1 WHERE tenant_id = $1"
                      " AND id = $2 RETURNING seq",
                      2, T_COLL},
    [ST_COLL_FLOOR] = {"lls_coll_floor",
                       "SELECT tomb_floor FROM @S.collections WHERE tenant_id = $1 AND id = $2",
                       2, T_COLL},
    /* add: ids that exist are skipped, and the first of them in batch
     * order is returned so the caller can undo the write and name it. */
    [ST_VEC_INSERT] = {"lls_vec_insert",
                       "WITH ins AS (" VEC_INSERT
                       " ON CONFLICT (collection_id, id) DO NOTHING RETURNING id),"
                       " u AS (UPDATE @S.collections SET count = count +"
                       " (SELECT count(*) FROM ins) WHERE tenant_id = $1 AND id = $2)"
                       " SELECT CASE WHEN (SELECT count(*) FROM ins) < cardinality($4) THEN"
                       " (SELECT a.id FROM unnest($4) WITH ORDINALITY AS a(id, o)"
                       " WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.id = a.id)"
                       " ORDER BY a.o LIMIT 1) END",
                       11, T_VEC_PUT},
    /* upsert: c counts the ids that already exist (the statement's snapshot
     * is taken after ST_COLL_BUMP's lock, so no writer can interleave). */
    [ST_VEC_UPSERT] = {"lls_vec_upsert",
                       "WITH c AS (SELECT count(*) AS n FROM @S.vectors WHERE"
                       " collection_id = $2 AND tenant_id = $1 AND id = ANY($4)),"
                       " ins AS (" VEC_INSERT
                       " ON CONFLICT (collection_id, id) DO UPDATE SET scope = EXCLUDED.scope,"
                       " vector = EXCLUDED.vector, metadata = EXCLUDED.metadata,"
                       " created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,"
                       " event_time = EXCLUDED.event_time, expires_at = EXCLUDED.expires_at,"
                       " seq = EXCLUDED.seq),"
                       " u AS (UPDATE @S.collections SET count = count + cardinality($4) -"
                       " (SELECT n FROM c) WHERE tenant_id = $1 AND id = $2)"
                       " SELECT n FROM c",
                       11, T_VEC_PUT},
    [ST_VEC_DELETE] = {"lls_vec_delete",
                       "WITH d AS (DELETE FROM @S.vectors WHERE collection_id = $2"
                       " AND tenant_id = $1 AND id = ANY($4) RETURNING id),"
                       " t AS (INSERT INTO @S.vector_tombstones"
                       " (collection_id, tenant_id, id, seq, deleted_at)"
                       " SELECT $2, $1, d.id, $3, now() FROM d"
                       " ON CONFLICT (collection_id, id) DO UPDATE SET seq = EXCLUDED.seq,"
                       " deleted_at = EXCLUDED.deleted_at),"
                       " u AS (UPDATE @S.collections SET count = count -"
                       " (SELECT count(*) FROM d) WHERE tenant_id = $1 AND id = $2)"
                       " SELECT count(*) FROM d",
                       4, {OID_TEXT, OID_INT8, OID_INT8, OID_TEXT_ARR}},
    /* Change streams are cursors, fetched in chunks, so a million rows
     * never sit in one result. */
    [ST_VEC_LOAD_ALL] = {"lls_vec_load_all",
                         "DECLARE " VEC_CURSOR " NO SCROLL CURSOR FOR SELECT " VEC_COLS
                         ", false FROM @S.vectors WHERE collection_id = $2 AND tenant_id = $1"
                         " ORDER BY seq",
                         2, T_COLL},
    [ST_VEC_LOAD_SINCE] = {"lls_vec_load_since",
                           "DECLARE " VEC_CURSOR " NO SCROLL CURSOR FOR SELECT " VEC_COLS
                           ", false FROM @S.vectors WHERE collection_id = $2"
                           " AND tenant_id = $1 AND seq > $3"
                           " UNION ALL SELECT id, '', ''::bytea, '{}', deleted_at, deleted_at,"
                           " NULL, NULL, seq, true FROM @S.vector_tombstones"
                           " WHERE collection_id = $2 AND tenant_id = $1 AND seq > $3"
                           " ORDER BY seq",
                           3, {OID_TEXT, OID_INT8, OID_INT8}},
    /* snap_save: lock the collection (so two savers do not interleave),
     * then, in a fresh snapshot, drop the old parts unless they are newer
     * ($3 = the new seq); the old seq is returned, -1 when there was none. */
    [ST_SNAP_LOCK] = {"lls_snap_lock",
                      "SELECT 1 FROM @S.collections WHERE tenant_id = $1 AND id = $2"
                      " FOR NO KEY UPDATE",
                      2, T_COLL},
    [ST_SNAP_CLEAR] = {"lls_snap_clear",
                       "WITH o AS (SELECT seq FROM @S.vector_snapshots WHERE collection_id = $2"
                       " AND tenant_id = $1 AND part = 0),"
                       " d AS (DELETE FROM @S.vector_snapshots WHERE collection_id = $2"
                       " AND tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM o WHERE o.seq > $3))"
                       " SELECT coalesce((SELECT seq FROM o), -1)",
                       3, {OID_TEXT, OID_INT8, OID_INT8}},
    [ST_SNAP_PART] = {"lls_snap_part",
                      "INSERT INTO @S.vector_snapshots"
                      " (collection_id, tenant_id, part, seq, data, saved_at)"
                      " VALUES ($2, $1, $3, $4, $5, now())",
                      5, {OID_TEXT, OID_INT8, OID_INT4, OID_INT8, OID_BYTEA}},
    /* Tombstones the snapshot covers and that are over an hour old go;
     * tomb_floor remembers the newest one pruned. */
    [ST_SNAP_PRUNE] = {"lls_snap_prune",
                       "WITH p AS (DELETE FROM @S.vector_tombstones WHERE collection_id = $2"
                       " AND tenant_id = $1 AND seq <= $3"
                       " AND deleted_at < now() - interval '1 hour' RETURNING seq)"
                       " UPDATE @S.collections SET tomb_floor = greatest(tomb_floor,"
                       " (SELECT coalesce(max(seq), 0) FROM p)) WHERE tenant_id = $1 AND id = $2",
                       3, {OID_TEXT, OID_INT8, OID_INT8}},
    /* One part per fetch; the total (from the TOAST headers, without
     * reading the data) sizes the buffer once. */
    [ST_SNAP_LOAD] = {"lls_snap_load",
                      "DECLARE " SNAP_CURSOR " NO SCROLL CURSOR FOR SELECT part, seq, data,"
                      " (SELECT sum(octet_length(data)) FROM @S.vector_snapshots"
                      " WHERE collection_id = $2 AND tenant_id = $1)::int8"
                      " FROM @S.vector_snapshots WHERE collection_id = $2 AND tenant_id = $1"
                      " ORDER BY part",
                      2, T_COLL},
    /* ---- export/import. Dumps are pages of a primary-key range, so an
     * export costs one index range scan per page whatever its size. Keys
     * may be empty, so the first KV page needs >= ''; vector ids and
     * section names are never empty, so '' serves as "from the first". */
    [ST_KV_DUMP_FIRST] = {"lls_kv_dump_first", KV_DUMP_HEAD "key >= $2" KV_DUMP_TAIL, 4,
                          {OID_TEXT, OID_TEXT, OID_TSTZ, OID_INT8}},
    [ST_KV_DUMP] = {"lls_kv_dump", KV_DUMP_HEAD "key > $2" KV_DUMP_TAIL, 4,
                    {OID_TEXT, OID_TEXT, OID_TSTZ, OID_INT8}},
    /* replace: every record wins ($2 = now and $10 = weights are unused,
     * declared so that both statements take the same parameters). */
    [ST_KV_LOAD_REPLACE] = {"lls_kv_load_replace", KV_LOAD_INSERT, 10, T_KV_LOAD},
    /* skip (and error): a visible row stays as it is and is not returned;
     * an expired one counts as absent and is replaced. The result: the sum
     * of the weights ($10: records each written key stands for) of the keys
     * written, and the first key in batch order that was not. */
    [ST_KV_LOAD_SKIP] = {"lls_kv_load_skip",
                         "WITH ins AS (" KV_LOAD_INSERT " WHERE kv.expires_at <= $2"
                         " RETURNING key)"
                         " SELECT (SELECT coalesce(sum(w.n), 0)::int8 FROM unnest($3, $10)"
                         " AS w(k, n) WHERE EXISTS (SELECT 1 FROM ins WHERE ins.key = w.k)),"
                         " (SELECT a.k FROM unnest($3) WITH ORDINALITY AS a(k, o)"
                         " WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.key = a.k)"
                         " ORDER BY a.o LIMIT 1)",
                         10, T_KV_LOAD},
    /* The collection row comes back even when no vector follows (v.* NULL),
     * so "no rows" means the collection is gone, in the same round trip. */
    [ST_VEC_DUMP] = {"lls_vec_dump",
                     "SELECT v.id, v.scope, v.vector, v.metadata::text, v.created_at,"
                     " v.updated_at, v.event_time, v.expires_at, v.seq FROM @S.collections c"
                     " LEFT JOIN LATERAL (SELECT * FROM @S.vectors x WHERE"
                     " x.collection_id = c.id AND x.tenant_id = $1 AND x.id > $3"
                     " ORDER BY x.id LIMIT $4) v ON true"
                     " WHERE c.tenant_id = $1 AND c.id = $2 ORDER BY v.id",
                     4, {OID_TEXT, OID_INT8, OID_TEXT, OID_INT8}},
    [ST_VEC_HAS] = {"lls_vec_has",
                    "SELECT v.id FROM @S.collections c LEFT JOIN @S.vectors v"
                    " ON v.collection_id = $2 AND v.tenant_id = $1 AND v.id = ANY($3)"
                    " WHERE c.tenant_id = $1 AND c.id = $2",
                    3, {OID_TEXT, OID_INT8, OID_TEXT_ARR}},
    [ST_SEC_PUT] = {"lls_sec_put",
                    "INSERT INTO @S.export_sections (tenant_id, section, ord, record)"
                    " SELECT $1, t.s, t.o, t.r FROM unnest($2, $3, $4) AS t(s, o, r)"
                    " ON CONFLICT (tenant_id, section, ord) DO UPDATE"
                    " SET record = EXCLUDED.record",
                    4, {OID_TEXT, OID_TEXT_ARR, OID_INT8_ARR, OID_TEXT_ARR}},
    /* A row comparison is one range of the primary key. */
    [ST_SEC_DUMP] = {"lls_sec_dump",
                     "SELECT section, ord, record FROM @S.export_sections"
                     " WHERE tenant_id = $1 AND (section, ord) > ($2, $3)"
                     " ORDER BY section, ord LIMIT $4",
                     4, {OID_TEXT, OID_TEXT, OID_INT8, OID_INT8}},
    [ST_SEC_CLEAR] = {"lls_sec_clear",
                      "DELETE FROM @S.export_sections WHERE tenant_id = $1 AND section = $2",
                      2, {OID_TEXT, OID_TEXT}},
    [ST_SEC_CLEAR_ALL] = {"lls_sec_clear_all",
                          "DELETE FROM @S.export_sections WHERE tenant_id = $1", 1,
                          {OID_TEXT}},
    /* Collections whose count disagrees with their rows. One statement,
     * one snapshot: a writer changes both in one transaction, so a
     * mismatch seen here is real, not a race. */
    [ST_CHECK_COUNTS] = {"lls_check_counts",
                         "SELECT c.name, c.count, n.n FROM @S.collections c"
                         " CROSS JOIN LATERAL (SELECT count(*) AS n FROM @S.vectors v"
                         " WHERE v.collection_id = c.id AND v.tenant_id = $1) n"
                         " WHERE c.tenant_id = $1 AND c.count <> n.n ORDER BY c.name",
                         1, {OID_TEXT}},
    /* Each tenant table: exists, RLS enabled, RLS forced, policy present.
     * The catalogs are readable by every role, so an application role can
     * run it; @S inside the literal gives the quoted schema name. */
    [ST_CHECK_RLS] = {"lls_check_rls",
                      "SELECT t.name, c.oid IS NOT NULL, coalesce(c.relrowsecurity, false),"
                      " coalesce(c.relforcerowsecurity, false), EXISTS (SELECT 1 FROM"
                      " pg_catalog.pg_policy p WHERE p.polrelid = c.oid"
                      " AND p.polname = t.name || '_tenant_isolation')"
                      " FROM unnest(" TENANT_TABLES ") WITH ORDINALITY AS t(name, o)"
                      " LEFT JOIN pg_catalog.pg_class c ON c.oid = to_regclass('@S.' || t.name)"
                      " ORDER BY t.o",
                      0, {0}},
};

/* ------------------------------------------------------------ migrations */

typedef struct pg_migration {
  int version;
  const char *name;
  const char *sql; /* "@S" stands for the quoted schema name */
} pg_migration;

/* The row-level security every table gets (`T` is the table name). */
#define RLS(T)                                                                   \
  "ALTER TABLE @S." T " ENABLE ROW LEVEL SECURITY;"                              \
  "ALTER TABLE @S." T " FORCE ROW LEVEL SECURITY;"                               \
  "CREATE POLICY " T "_tenant_isolation ON @S." T                                \
  " USING (tenant_id = current_setting('app.current_tenant_id', true))"          \
  " WITH CHECK (tenant_id = current_setting('app.current_tenant_id', true));"

/* Append-only: a released migration is never edited, later issues add
 * entries. */
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
    {2, "vectors",
     "CREATE TABLE @S.collections ("
     " id bigserial PRIMARY KEY,"
     " tenant_id text NOT NULL,"
     " name text COLLATE \"C\" NOT NULL,"
     " dimension int NOT NULL,"
     " metric int NOT NULL,"
     " m int NOT NULL,"
     " ef_construction int NOT NULL,"
     " ef_search int NOT NULL,"
     " created_at timestamptz NOT NULL,"
     " seq bigint NOT NULL DEFAULT 0,"
     " count bigint NOT NULL DEFAULT 0,"
     " tomb_floor bigint NOT NULL DEFAULT 0,"
     " UNIQUE (tenant_id, name));"
     "CREATE TABLE @S.vectors ("
     " collection_id bigint NOT NULL REFERENCES @S.collections ON DELETE CASCADE,"
     " tenant_id text NOT NULL,"
     " id text COLLATE \"C\" NOT NULL,"
     " scope text NOT NULL,"
     " vector bytea NOT NULL,"
     " metadata jsonb NOT NULL,"
     " created_at timestamptz NOT NULL,"
     " updated_at timestamptz NOT NULL,"
     " event_time timestamptz,"
     " expires_at timestamptz,"
     " seq bigint NOT NULL,"
     " PRIMARY KEY (collection_id, id));"
     "ALTER TABLE @S.vectors ALTER vector SET STORAGE EXTERNAL;"
     "CREATE INDEX vectors_seq_idx ON @S.vectors (collection_id, seq);"
     "CREATE TABLE @S.vector_tombstones ("
     " collection_id bigint NOT NULL REFERENCES @S.collections ON DELETE CASCADE,"
     " tenant_id text NOT NULL,"
     " id text COLLATE \"C\" NOT NULL,"
     " seq bigint NOT NULL,"
     " deleted_at timestamptz NOT NULL,"
     " PRIMARY KEY (collection_id, id));"
     "CREATE INDEX vector_tombstones_seq_idx ON @S.vector_tombstones (collection_id, seq);"
     "CREATE TABLE @S.vector_snapshots ("
     " collection_id bigint NOT NULL REFERENCES @S.collections ON DELETE CASCADE,"
     " tenant_id text NOT NULL,"
     " part int NOT NULL,"
     " seq bigint NOT NULL,"
     " data bytea NOT NULL,"
     " saved_at timestamptz NOT NULL,"
     " PRIMARY KEY (collection_id, part));"
     "ALTER TABLE @S.vector_snapshots ALTER data SET STORAGE EXTERNAL;"
     RLS("collections") RLS("vectors") RLS("vector_tombstones") RLS("vector_snapshots")},
    /* record is text, not jsonb: passthrough sections must come back byte
     * for byte, and jsonb would reorder and respace them. */
    {3, "export",
     "ALTER TABLE @S.kv_store ADD COLUMN kv_id text;"
     "CREATE TABLE @S.export_sections ("
     " tenant_id text NOT NULL,"
     " section text COLLATE \"C\" NOT NULL,"
     " ord bigint NOT NULL,"
     " record text NOT NULL,"
     " PRIMARY KEY (tenant_id, section, ord));"
     RLS("export_sections")},
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

/* Array parameters of vec_put ($4..$11 of ST_VEC_INSERT / ST_VEC_UPSERT). */
enum { V_ID, V_SCOPE, V_VEC, V_MD, V_CREATED, V_UPDATED, V_EVENT, V_EXPIRES, V_COUNT };

typedef struct pg_backend {
  lls_backend base;
  PGconn *conn;
  char *tenant;
  size_t tenant_len;
  char *schema;         /* validated identifier, unquoted */
  char *sql[ST_COUNT];  /* statement texts with the schema filled in */
  uint64_t prepared;    /* bit i: stmts[i] prepared on this connection */
  int tenant_set;       /* app.current_tenant_id set on this connection */
  int txdepth;          /* open transaction levels (0 = autocommit) */
  int own_tx;           /* inside a transaction this file opened for one call
                           (a multi-statement write or a cursor read) */
  PGresult *held;       /* result backing get()'s *out until the next call */
  lls_buf arr[A_COUNT]; /* binary array parameters, reused */
  lls_buf upper;        /* prefix upper bound, reused */
  lls_buf varr[V_COUNT]; /* array parameters of vector writes */
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

/* Reads a big-endian 32-bit integer (int4 results). */
static uint32_t get_be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
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

/* Appends an int4. */
static void p_int4(pg_params *p, int32_t x) {
  put_be32((unsigned char *)p->scratch[p->n], (uint32_t)x);
  p_bytes(p, p->scratch[p->n], 4);
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
    if (pg->txdepth > 0 || pg->own_tx)
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
  if (pg->prepared & (UINT64_C(1) << st)) return 0;
  PGresult *r = PQprepare(pg->conn, stmts[st].name, pg->sql[st], stmts[st].nparams,
                          stmts[st].types);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    pg_error(pg, r, err);
    PQclear(r);
    return -1;
  }
  PQclear(r);
  pg->prepared |= UINT64_C(1) << st;
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
    int may_retry = idempotent && attempt == 0 && pg->txdepth == 0 && !pg->own_tx;
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
  for (int i = 0; i < V_COUNT; i++) lls_buf_free(&pg->varr[i]);
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

/* REPEATABLE READ: every statement of the transaction sees the snapshot of
 * its first one (READ COMMITTED would let each export page see newer
 * commits); READ ONLY: it can never fail on a write conflict. */
static int pg_begin_read(lls_backend *b, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (pg_command(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", NULL, err) != 0)
    return -1;
  pg->txdepth = 1;
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

/* ---------------------------------------------------- vector collections */

/* Rows per FETCH of a change stream: a few MB of 768-d vectors. */
#define FETCH_ROWS 1000
#define FETCH_ROWS_SQL "FETCH 1000 FROM " VEC_CURSOR

/* Snapshot part size: well under bytea's 1 GB, and small enough that
 * neither side holds much more than the snapshot itself. */
#define SNAP_PART_BYTES ((size_t)32 << 20)

/* Rows per put statement are cut at about this many bytes: one bytea[]
 * value may not exceed 1 GB, nor a libpq parameter 2 GB, and the server
 * holds each array whole. */
#define PUT_CHUNK_BYTES ((size_t)64 << 20)

/* Array buffers above this are freed after a write rather than kept for
 * the handle's lifetime (a 10k x 768-d batch needs 30 MB once). */
#define KEEP_ARRAY_BYTES ((size_t)1 << 20)

/* An int4 column; NULL is 0. */
static int int4_at(const PGresult *r, int row, int col) {
  if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 4) return 0;
  return (int)(int32_t)get_be32((const unsigned char *)PQgetvalue(r, row, col));
}

/* A column as a borrowed string (valid while r lives); NULL is empty. */
static lls_str str_at(const PGresult *r, int row, int col) {
  lls_str s = {PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col)};
  return s;
}

/* At most max bytes of s, cut at a UTF-8 character boundary, for messages. */
static int msg_len(lls_str s, size_t max) {
  size_t n = s.len;
  if (n > max) {
    n = max;
    while (n > 0 && ((unsigned char)s.ptr[n] & 0xC0) == 0x80) n--;
  }
  return (int)n;
}

/* Runs SQL (no parameters) on the current connection without reconnecting:
 * for transaction control inside a unit of work, where a silent reconnect
 * would carry on outside the transaction. binary: results in binary (one
 * statement only); otherwise sql may hold several statements. */
static int raw_exec(pg_backend *pg, const char *sql, int binary, PGresult **r_out,
                    lls_error *err) {
  release_held(pg);
  if (PQstatus(pg->conn) != CONNECTION_OK)
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

/* Opens the unit a multi-statement call runs in: a savepoint inside the
 * caller's transaction, else a transaction of its own (read_only for
 * cursor reads). */
static int unit_begin(pg_backend *pg, int read_only, lls_error *err) {
  if (pg->txdepth > 0) return read_only ? 0 : raw_exec(pg, "SAVEPOINT lls_vec", 0, NULL, err);
  /* pg_command may reconnect: nothing has been sent yet. */
  if (pg_command(pg, read_only ? "BEGIN READ ONLY" : "BEGIN", NULL, err) != 0) return -1;
  pg->own_tx = 1;
  return 0;
}

/* Ends the unit: commits (releases) when ok, otherwise undoes it as well as
 * a broken connection allows. Returns 0 only when ok and the commit held;
 * err (may be NULL when !ok) receives a commit failure. */
static int unit_end(pg_backend *pg, int read_only, int ok, lls_error *err) {
  lls_error scratch;
  if (err == NULL) err = &scratch;
  if (pg->own_tx) {
    pg->own_tx = 0;
    if (!ok) {
      if (PQstatus(pg->conn) == CONNECTION_OK) PQclear(PQexec(pg->conn, "ROLLBACK"));
      return -1;
    }
    PGresult *r;
    if (raw_exec(pg, "COMMIT", 0, &r, err) != 0) return -1;
    int rolled_back = strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
    PQclear(r);
    if (rolled_back)
      return lls_error_set(err, LLS_EIO, "transaction was aborted and rolled back");
    return 0;
  }
  if (read_only) return ok ? 0 : -1;
  if (ok && raw_exec(pg, "RELEASE SAVEPOINT lls_vec", 0, NULL, err) == 0) return 0;
  if (PQstatus(pg->conn) == CONNECTION_OK)
    PQclear(PQexec(pg->conn, "ROLLBACK TO SAVEPOINT lls_vec; RELEASE SAVEPOINT lls_vec"));
  return -1;
}

/* Declares a cursor (statement st) inside a read unit. */
static int cursor_open(pg_backend *pg, int st, const pg_params *p, lls_error *err) {
  if (unit_begin(pg, 1, err) != 0) return -1;
  PGresult *r = pg_run(pg, st, p, 0, err);
  if (r == NULL) {
    unit_end(pg, 1, 0, NULL);
    return -1;
  }
  PQclear(r);
  return 0;
}

/* Closes the cursor and ends the read unit. A read whose rows were all
 * delivered has succeeded even when the closing COMMIT fails (a lost
 * connection is noticed, and re-established, by the next call); inside
 * the caller's transaction the cursor is closed explicitly, so a later
 * call can declare it again. */
static int cursor_close(pg_backend *pg, const char *name, int ok, lls_error *err) {
  if (pg->own_tx) {
    unit_end(pg, 1, ok, NULL);
    return ok ? 0 : -1;
  }
  char sql[64];
  snprintf(sql, sizeof sql, "CLOSE %s", name);
  lls_error scratch;
  if (raw_exec(pg, sql, 0, NULL, ok ? err : &scratch) != 0) return -1;
  return ok ? 0 : -1;
}

/* Fills info from row i of a COLL_COLS result. */
static void coll_from_row(const PGresult *r, int i, lls_coll_info *info) {
  lls_str name = str_at(r, i, 1);
  size_t n = name.len < sizeof info->name - 1 ? name.len : sizeof info->name - 1;
  memcpy(info->name, name.ptr, n);
  info->name[n] = '\0';
  info->id = int8_at(r, i, 0);
  info->dimension = int4_at(r, i, 2);
  info->metric = int4_at(r, i, 3);
  info->m = int4_at(r, i, 4);
  info->ef_construction = int4_at(r, i, 5);
  info->ef_search = int4_at(r, i, 6);
  info->created_at = time_or_zero(r, i, 7);
  info->seq = int8_at(r, i, 8);
  info->count = int8_at(r, i, 9);
}

/* A sink that returned nonzero was meant to fill err; make sure it says
 * something even when it did not. */
static int sink_stopped(lls_error *err) {
  if (err->code == LLS_OK || err->message[0] == '\0')
    lls_error_set(err, LLS_EIO, "the consumer stopped the stream");
  return -1;
}

static int coll_missing(lls_error *err, int64_t coll_id) {
  return lls_error_set(err, LLS_ENOTFOUND, "collection %lld does not exist",
                       (long long)coll_id);
}

/* Inserts the collection; a name the tenant already uses comes back with
 * no row (ON CONFLICT DO NOTHING) and is reported as a conflict. */
static int pg_coll_create(lls_backend *b, lls_coll_info *info, int64_t now, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  p_tenant(&p, pg);
  p_bytes(&p, info->name, strlen(info->name));
  p_int4(&p, info->dimension);
  p_int4(&p, info->metric);
  p_int4(&p, info->m);
  p_int4(&p, info->ef_construction);
  p_int4(&p, info->ef_search);
  p_time(&p, now);
  PGresult *r = pg_run(pg, ST_COLL_CREATE, &p, 0, err);
  if (r == NULL) return -1;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return lls_error_set(err, LLS_ECONFLICT, "collection '%s' already exists", info->name);
  }
  info->id = int8_at(r, 0, 0);
  info->created_at = now;
  info->seq = 0;
  info->count = 0;
  PQclear(r);
  return 0;
}

static int pg_coll_get(lls_backend *b, const char *name, lls_coll_info *out, int *found,
                       lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  p_tenant(&p, pg);
  p_bytes(&p, name, strlen(name));
  *found = 0;
  PGresult *r = pg_run(pg, ST_COLL_GET, &p, 1, err);
  if (r == NULL) return -1;
  if (PQntuples(r) > 0) {
    coll_from_row(r, 0, out);
    *found = 1;
  }
  PQclear(r);
  return 0;
}

/* A literal prefix as the range [prefix, upper) of the (tenant_id, name)
 * index. A tenant has few collections: one result holds them all. */
static int pg_coll_list(lls_backend *b, lls_str prefix, lls_coll_sink sink, void *ud,
                        lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  int has_upper;
  if (lls_prefix_upper(prefix, &pg->upper, &has_upper) != 0)
    return lls_error_set(err, LLS_EIO, "out of memory");
  pg_params p = {0};
  p_tenant(&p, pg);
  p_bytes(&p, prefix.ptr, prefix.len);
  if (has_upper) p_bytes(&p, pg->upper.data, pg->upper.len);
  PGresult *r = pg_run(pg, has_upper ? ST_COLL_LIST_U : ST_COLL_LIST, &p, 1, err);
  if (r == NULL) return -1;
  err->code = LLS_OK;
  err->message[0] = '\0';
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_coll_info info;
    coll_from_row(r, i, &info);
    if (sink(ud, &info, err) != 0) {
      PQclear(r);
      return sink_stopped(err);
    }
  }
  PQclear(r);
  return 0;
}

static int pg_coll_drop(lls_backend *b, const char *name, int *dropped, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  p_tenant(&p, pg);
  p_bytes(&p, name, strlen(name));
  *dropped = 0;
  PGresult *r = pg_run(pg, ST_COLL_DROP, &p, 0, err);
  if (r == NULL) return -1;
  *dropped = strtoull(PQcmdTuples(r), NULL, 10) > 0;
  PQclear(r);
  return 0;
}

/* One primary-key read. */
static int pg_coll_seq(lls_backend *b, int64_t coll_id, int64_t *seq, int64_t *count,
                       lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  p_tenant(&p, pg);
  p_int8(&p, coll_id);
  PGresult *r = pg_run(pg, ST_COLL_SEQ, &p, 1, err);
  if (r == NULL) return -1;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return coll_missing(err, coll_id);
  }
  *seq = int8_at(r, 0, 0);
  *count = int8_at(r, 0, 1);
  PQclear(r);
  return 0;
}

/* Inside a write unit: seq + 1 under the collection's row lock. */
static int bump_seq(pg_backend *pg, int64_t coll_id, int64_t *seq, lls_error *err) {
  pg_params p = {0};
  p_tenant(&p, pg);
  p_int8(&p, coll_id);
  PGresult *r = pg_run(pg, ST_COLL_BUMP, &p, 0, err);
  if (r == NULL) return -1;
  int found = PQntuples(r) > 0;
  if (found) *seq = int8_at(r, 0, 0);
  PQclear(r);
  return found ? 0 : coll_missing(err, coll_id);
}

typedef struct id_ref {
  lls_str id;
  size_t i;
} id_ref;

/* By id, then by position. */
static int cmp_id_ref(const void *a, const void *b) {
  const id_ref *x = a, *y = b;
  int c = keycmp(x->id, y->id);
  if (c != 0) return c;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* Appends a timestamptz element (never NULL). */
static int arr_add_time(lls_buf *a, int64_t us) {
  unsigned char v[8];
  enc_time(v, us);
  return arr_add(a, (const char *)v, 8);
}

/* Marks in keep[] the rows to write: for each id its last occurrence (one
 * statement cannot write a row twice). *dup receives an id that occurs
 * more than once (ptr NULL when none). -1 when out of memory. */
static int dedupe_rows(const lls_vec_row *rows, size_t n, unsigned char *keep, lls_str *dup) {
  id_ref *refs = malloc(n * sizeof *refs);
  dup->ptr = NULL;
  dup->len = 0;
  if (refs == NULL) return -1;
  for (size_t i = 0; i < n; i++) refs[i].id = rows[i].id, refs[i].i = i, keep[i] = 0;
  qsort(refs, n, sizeof *refs, cmp_id_ref);
  for (size_t g = 0, e; g < n; g = e) {
    for (e = g + 1; e < n && keycmp(refs[e].id, refs[g].id) == 0; e++) {
    }
    keep[refs[e - 1].i] = 1;
    if (e - g > 1 && dup->ptr == NULL) *dup = refs[g].id;
  }
  free(refs);
  return 0;
}

/* Fills the array parameters with the kept rows from *pos on, in batch
 * order, up to about PUT_CHUNK_BYTES (at least one row, when one is left);
 * *pos moves past them, *count says how many. -1 when out of memory or an
 * element is over 2 GB. */
static int put_arrays(pg_backend *pg, const lls_vec_row *rows, size_t n,
                      const unsigned char *keep, size_t *pos, size_t *count) {
  for (int a = 0; a < V_COUNT; a++)
    if (arr_init(&pg->varr[a]) != 0) return -1;
  size_t bytes = 0, i = *pos;
  int event_null = 0, expires_null = 0;
  *count = 0;
  for (; i < n; i++) {
    const lls_vec_row *row = &rows[i];
    if (!keep[i]) continue;
    size_t size = row->id.len + row->scope.len + row->vector.len + row->metadata.len + 64;
    if (*count > 0 && bytes + size > PUT_CHUNK_BYTES) break;
    bytes += size;
    if (arr_add(&pg->varr[V_ID], row->id.ptr, row->id.len) != 0 ||
        arr_add(&pg->varr[V_SCOPE], row->scope.ptr, row->scope.len) != 0 ||
        arr_add(&pg->varr[V_VEC], row->vector.ptr, row->vector.len) != 0 ||
        arr_add(&pg->varr[V_MD], row->metadata.ptr, row->metadata.len) != 0 ||
        arr_add_time(&pg->varr[V_CREATED], row->created_at) != 0 ||
        arr_add_time(&pg->varr[V_UPDATED], row->updated_at) != 0 ||
        (row->has_event_time ? arr_add_time(&pg->varr[V_EVENT], row->event_time)
                             : arr_add_null(&pg->varr[V_EVENT])) != 0 ||
        arr_add_expiry(&pg->varr[V_EXPIRES], row->expires_at) != 0)
      return -1;
    event_null |= !row->has_event_time;
    expires_null |= row->expires_at == 0;
    (*count)++;
  }
  *pos = i;
  static const Oid elem[V_COUNT] = {OID_TEXT, OID_TEXT, OID_BYTEA, OID_TEXT,
                                    OID_TSTZ, OID_TSTZ, OID_TSTZ,  OID_TSTZ};
  for (int a = 0; a < V_COUNT; a++)
    arr_finish(&pg->varr[a], elem[a], *count,
               (a == V_EVENT && event_null) || (a == V_EXPIRES && expires_null));
  return 0;
}

/* Frees array buffers a big write left behind. */
static void trim_arrays(pg_backend *pg) {
  for (int a = 0; a < V_COUNT; a++)
    if (pg->varr[a].cap > KEEP_ARRAY_BYTES) lls_buf_free(&pg->varr[a]);
}

/* jsonb refuses what JSON text allows: \u0000, and (from a buggy caller)
 * anything that is not JSON. Said in the caller's terms. */
static void metadata_error(lls_error *err) {
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

/* Bumps seq, then writes the rows with binary arrays + unnest: BEGIN, the
 * bump, one statement per PUT_CHUNK_BYTES of rows, COMMIT. */
static int pg_vec_put(lls_backend *b, int64_t coll_id, const lls_vec_row *rows, size_t n,
                      int insert_only, int64_t *seq, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  int64_t count, s;
  lls_str dup;
  if (n == 0) return pg_coll_seq(b, coll_id, seq, &count, err);
  unsigned char *keep = malloc(n);
  if (keep == NULL || dedupe_rows(rows, n, keep, &dup) != 0) {
    free(keep);
    return lls_error_set(err, LLS_EIO, "out of memory");
  }
  if (insert_only && dup.ptr != NULL) {
    free(keep);
    return lls_error_set(err, LLS_ECONFLICT, "id '%.*s' is given more than once",
                         msg_len(dup, 200), dup.ptr);
  }
  if (unit_begin(pg, 0, err) != 0) {
    free(keep);
    return -1;
  }
  if (bump_seq(pg, coll_id, &s, err) != 0) goto fail;
  for (size_t pos = 0, chunk; pos < n;) {
    if (put_arrays(pg, rows, n, keep, &pos, &chunk) != 0) {
      lls_error_set(err, LLS_EIO, "out of memory (or an element over 2 GB)");
      goto fail;
    }
    if (chunk == 0) break; /* only replaced duplicates were left */
    pg_params p = {0};
    p_tenant(&p, pg);
    p_int8(&p, coll_id);
    p_int8(&p, s);
    for (int a = 0; a < V_COUNT; a++) p_buf(&p, &pg->varr[a]);
    PGresult *r = pg_run(pg, insert_only ? ST_VEC_INSERT : ST_VEC_UPSERT, &p, 0, err);
    if (r == NULL) {
      metadata_error(err);
      goto fail;
    }
    if (insert_only && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
      lls_str id = str_at(r, 0, 0);
      lls_error_set(err, LLS_ECONFLICT, "id '%.*s' already exists", msg_len(id, 200), id.ptr);
      PQclear(r);
      goto fail;
    }
    PQclear(r);
  }
  free(keep);
  trim_arrays(pg);
  if (unit_end(pg, 0, 1, err) != 0) return -1;
  *seq = s;
  return 0;
fail:
  free(keep);
  trim_arrays(pg);
  unit_end(pg, 0, 0, NULL);
  return -1;
}

/* Bumps seq, deletes and records tombstones in one statement; when no row
 * was there the unit is rolled back, so seq stays. */
static int pg_vec_delete(lls_backend *b, int64_t coll_id, const lls_str *ids, size_t n,
                         size_t *deleted, int64_t *seq, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  int64_t count, s;
  *deleted = 0;
  if (n == 0) return pg_coll_seq(b, coll_id, seq, &count, err);
  lls_buf *a = &pg->varr[V_ID];
  if (arr_init(a) != 0) return lls_error_set(err, LLS_EIO, "out of memory");
  for (size_t i = 0; i < n; i++)
    if (arr_add(a, ids[i].ptr, ids[i].len) != 0) {
      trim_arrays(pg);
      return lls_error_set(err, LLS_EIO, "out of memory");
    }
  arr_finish(a, OID_TEXT, n, 0);
  if (unit_begin(pg, 0, err) != 0) return -1;
  if (bump_seq(pg, coll_id, &s, err) != 0) goto fail;
  pg_params p = {0};
  p_tenant(&p, pg);
  p_int8(&p, coll_id);
  p_int8(&p, s);
  p_buf(&p, a);
  PGresult *r = pg_run(pg, ST_VEC_DELETE, &p, 0, err);
  if (r == NULL) goto fail;
  int64_t removed = PQntuples(r) > 0 ? int8_at(r, 0, 0) : 0;
  PQclear(r);
  trim_arrays(pg);
  if (removed == 0) {
    /* nothing changed: undo the bump (we held the lock, so seq was s - 1) */
    unit_end(pg, 0, 0, NULL);
    *seq = s - 1;
    return 0;
  }
  if (unit_end(pg, 0, 1, err) != 0) return -1;
  *deleted = (size_t)removed;
  *seq = s;
  return 0;
fail:
  trim_arrays(pg);
  unit_end(pg, 0, 0, NULL);
  return -1;
}

/* One attempt of vec_load; *delivered counts rows handed to the sink. The
 * floor is read after the cursor is declared: it only grows, so a floor
 * <= since then was <= since in the cursor's (earlier) snapshot too. */
static int vec_load_once(pg_backend *pg, int64_t coll_id, int64_t since, lls_vec_sink sink,
                         void *ud, size_t *delivered, lls_error *err) {
  pg_params p = {0};
  p_tenant(&p, pg);
  p_int8(&p, coll_id);
  if (since > 0) p_int8(&p, since);
  if (cursor_open(pg, since > 0 ? ST_VEC_LOAD_SINCE : ST_VEC_LOAD_ALL, &p, err) != 0)
    return -1;
  int ok = 0;
  pg_params q = {0};
  p_tenant(&q, pg);
  p_int8(&q, coll_id);
  PGresult *r = pg_run(pg, ST_COLL_FLOOR, &q, 0, err);
  if (r == NULL) goto done;
  if (PQntuples(r) == 0) {
    PQclear(r);
    coll_missing(err, coll_id);
    goto done;
  }
  int64_t floor = int8_at(r, 0, 0);
  PQclear(r);
  if (since > 0 && since < floor) {
    lls_error_set(err, LLS_EVERSION,
                  "collection history pruned; reload (changes since seq %lld were asked for,"
                  " tombstones up to seq %lld are gone)",
                  (long long)since, (long long)floor);
    goto done;
  }
  err->code = LLS_OK;
  err->message[0] = '\0';
  for (;;) {
    if (raw_exec(pg, FETCH_ROWS_SQL, 1, &r, err) != 0) goto done;
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
      lls_vec_row row;
      row.id = str_at(r, i, 0);
      row.scope = str_at(r, i, 1);
      row.vector = str_at(r, i, 2);
      row.metadata = str_at(r, i, 3);
      row.created_at = time_or_zero(r, i, 4);
      row.updated_at = time_or_zero(r, i, 5);
      row.has_event_time = !PQgetisnull(r, i, 6);
      row.event_time = time_or_zero(r, i, 6);
      row.expires_at = time_or_zero(r, i, 7);
      row.seq = int8_at(r, i, 8);
      row.deleted = PQgetlength(r, i, 9) == 1 && PQgetvalue(r, i, 9)[0] != 0;
      if (sink(ud, &row, err) != 0) {
        PQclear(r);
        sink_stopped(err);
        goto done;
      }
      (*delivered)++;
    }
    PQclear(r);
    if (rows < FETCH_ROWS) break;
  }
  ok = 1;
done:
  return cursor_close(pg, VEC_CURSOR, ok, err);
}

/* A read: retried once on a fresh connection when the connection was lost
 * before any row reached the sink (outside a caller's transaction). */
static int pg_vec_load(lls_backend *b, int64_t coll_id, int64_t since, lls_vec_sink sink,
                       void *ud, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  for (int attempt = 0;; attempt++) {
    size_t delivered = 0;
    if (vec_load_once(pg, coll_id, since, sink, ud, &delivered, err) == 0) return 0;
    if (attempt > 0 || delivered > 0 || pg->txdepth > 0 ||
        PQstatus(pg->conn) != CONNECTION_BAD)
      return -1;
  }
}

/* Locks the collection, replaces the parts unless the stored snapshot is
 * newer, prunes covered tombstones; all in one unit. */
static int pg_snap_save(lls_backend *b, int64_t coll_id, int64_t seq, const void *data,
                        size_t len, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  const char *bytes = data;
  if (unit_begin(pg, 0, err) != 0) return -1;
  pg_params p = {0};
  p_tenant(&p, pg);
  p_int8(&p, coll_id);
  PGresult *r = pg_run(pg, ST_SNAP_LOCK, &p, 0, err);
  if (r == NULL) goto fail;
  int found = PQntuples(r) > 0;
  PQclear(r);
  if (!found) {
    coll_missing(err, coll_id);
    goto fail;
  }
  p_int8(&p, seq);
  if ((r = pg_run(pg, ST_SNAP_CLEAR, &p, 0, err)) == NULL) goto fail;
  int64_t old = int8_at(r, 0, 0);
  PQclear(r);
  if (old > seq) return unit_end(pg, 0, 1, err); /* a newer one is stored */
  size_t off = 0;
  for (int32_t part = 0; part == 0 || off < len; part++) {
    size_t chunk = len - off < SNAP_PART_BYTES ? len - off : SNAP_PART_BYTES;
    pg_params q = {0};
    p_tenant(&q, pg);
    p_int8(&q, coll_id);
    p_int4(&q, part);
    p_int8(&q, seq);
    p_bytes(&q, bytes ? bytes + off : "", chunk);
    if ((r = pg_run(pg, ST_SNAP_PART, &q, 0, err)) == NULL) goto fail;
    PQclear(r);
    off += chunk;
  }
  if ((r = pg_run(pg, ST_SNAP_PRUNE, &p, 0, err)) == NULL) goto fail;
  PQclear(r);
  return unit_end(pg, 0, 1, err);
fail:
  unit_end(pg, 0, 0, NULL);
  return -1;
}

/* One attempt of snap_load: the parts through a cursor, one per fetch. */
static int snap_load_once(pg_backend *pg, int64_t coll_id, lls_buf *out, int64_t *seq,
                          int *found, lls_error *err) {
  pg_params p = {0};
  p_tenant(&p, pg);
  p_int8(&p, coll_id);
  out->len = 0;
  *found = 0;
  if (cursor_open(pg, ST_SNAP_LOAD, &p, err) != 0) return -1;
  int ok = 0;
  int32_t part = 0;
  for (;; part++) {
    PGresult *r;
    if (raw_exec(pg, "FETCH 1 FROM " SNAP_CURSOR, 1, &r, err) != 0) goto done;
    if (PQntuples(r) == 0) {
      PQclear(r);
      break;
    }
    int64_t s = int8_at(r, 0, 1);
    if (int4_at(r, 0, 0) != part || (part > 0 && s != *seq)) {
      PQclear(r);
      lls_error_set(err, LLS_EIO, "snapshot of collection %lld has inconsistent parts",
                    (long long)coll_id);
      goto done;
    }
    lls_str chunk = str_at(r, 0, 2);
    int64_t total = int8_at(r, 0, 3);
    if (part == 0) {
      *seq = s;
      /* sized once: a snapshot can be gigabytes, doubling would waste as much */
      if (total > 0 && (uint64_t)total < SIZE_MAX && (size_t)total > out->cap)
        lls_buf_reserve(out, (size_t)total);
    }
    int rc = lls_buf_append(out, chunk.ptr, chunk.len);
    PQclear(r);
    if (rc != 0) {
      lls_error_set(err, LLS_EIO, "out of memory loading a snapshot");
      goto done;
    }
  }
  *found = part > 0;
  ok = 1;
done:
  if (!ok) *found = 0;
  return cursor_close(pg, SNAP_CURSOR, ok, err);
}

/* A read, retried like vec_load (nothing reaches the caller until done). */
static int pg_snap_load(lls_backend *b, int64_t coll_id, lls_buf *out, int64_t *seq,
                        int *found, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  for (int attempt = 0;; attempt++) {
    if (snap_load_once(pg, coll_id, out, seq, found, err) == 0) return 0;
    if (attempt > 0 || pg->txdepth > 0 || PQstatus(pg->conn) != CONNECTION_BAD) return -1;
  }
}

/* ---------------------------------------------------------- export/import */

/* Array parameters of kv_load (in pg->varr, which vector writes also use:
 * a handle runs one call at a time). */
enum { K_KEY, K_VAL, K_META, K_ID, K_CREATED, K_UPDATED, K_EXPIRES, K_WEIGHT, K_COUNT };
_Static_assert((int)K_COUNT <= (int)V_COUNT, "kv_load arrays live in varr");

/* A limit as the int8 LIMIT parameter: 0 means none (LIMIT NULL). */
static void p_limit(pg_params *p, size_t limit) {
  if (limit > 0 && limit <= INT64_MAX)
    p_int8(p, (int64_t)limit);
  else
    p_null(p);
}

/* Appends an int8 array element. */
static int arr_add_int8(lls_buf *a, int64_t x) {
  unsigned char v[8];
  put_be64(v, (uint64_t)x);
  return arr_add(a, (const char *)v, 8);
}

/* Appends text, or NULL when empty (absent metadata or kv_id). */
static int arr_add_opt(lls_buf *a, lls_str s) {
  return s.len == 0 ? arr_add_null(a) : arr_add(a, s.ptr, s.len);
}

/* One write statement: inside the caller's transaction under a savepoint,
 * so that a failure leaves the transaction usable; outside one, alone (a
 * statement is atomic by itself). Returns the result or NULL. */
static PGresult *write_one(pg_backend *pg, int st, const pg_params *p, lls_error *err) {
  if (pg->txdepth == 0) return pg_run(pg, st, p, 0, err);
  if (unit_begin(pg, 0, err) != 0) return NULL;
  PGresult *r = pg_run(pg, st, p, 0, err);
  if (unit_end(pg, 0, r != NULL, err) != 0) {
    PQclear(r);
    return NULL;
  }
  return r;
}

/* A page of visible rows after `after` (from the first when after.ptr is
 * NULL) in key order, with metadata (jsonb's text form) and kv_id. */
static int pg_kv_dump(lls_backend *b, lls_str after, int64_t now, size_t limit, lls_rows *out,
                      lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  p_tenant(&p, pg);
  p_bytes(&p, after.ptr, after.ptr ? after.len : 0);
  p_time(&p, now);
  p_limit(&p, limit);
  PGresult *r = pg_run(pg, after.ptr ? ST_KV_DUMP : ST_KV_DUMP_FIRST, &p, 1, err);
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_row *row = lls_rows_add_ext(out, str_at(r, i, 0), str_at(r, i, 1), str_at(r, i, 2),
                                    str_at(r, i, 3));
    if (row == NULL) {
      PQclear(r);
      return lls_error_set(err, LLS_EIO, "out of memory");
    }
    row->created_at = time_or_zero(r, i, 4);
    row->updated_at = time_or_zero(r, i, 5);
    row->expires_at = time_or_zero(r, i, 6);
  }
  PQclear(r);
  return 0;
}

/* The record kv_load sends for one key, and how many records of the batch
 * it stands for (what *written counts when it is written). */
typedef struct kv_pick {
  size_t i;
  int64_t weight;
} kv_pick;

static int cmp_pick(const void *a, const void *b) {
  const kv_pick *x = a, *y = b;
  return x->i < y->i ? -1 : x->i > y->i;
}

static int rec_visible(const lls_kv_rec *r, int64_t now) {
  return r->expires_at == 0 || r->expires_at > now;
}

/* One statement cannot write a row twice, so a key given more than once is
 * reduced to the record that applying the batch in order would leave, with
 * the count that order would write: replace, the last (all of them
 * written); skip, the first visible one (it and the expired ones before it
 * written, the rest skipped), else the last; error, the last, unless a
 * visible record precedes another of its key (*dup names it: the later one
 * would meet an existing key). picks come out in batch order. */
static int plan_kv_load(const lls_kv_rec *recs, size_t n, lls_conflict oc, int64_t now,
                        kv_pick *picks, size_t *npicks, lls_str *dup) {
  id_ref *refs = malloc(n * sizeof *refs);
  if (refs == NULL) return -1;
  for (size_t i = 0; i < n; i++) refs[i].id = recs[i].key, refs[i].i = i;
  qsort(refs, n, sizeof *refs, cmp_id_ref);
  dup->ptr = NULL;
  dup->len = 0;
  *npicks = 0;
  for (size_t g = 0, e; g < n; g = e) {
    for (e = g + 1; e < n && keycmp(refs[e].id, refs[g].id) == 0; e++) {
    }
    size_t chosen = e - 1;
    if (oc == LLS_CONFLICT_SKIP) {
      for (size_t j = g; j < e; j++)
        if (rec_visible(&recs[refs[j].i], now)) {
          chosen = j;
          break;
        }
    } else if (oc == LLS_CONFLICT_ERROR && dup->ptr == NULL) {
      for (size_t j = g; j + 1 < e; j++)
        if (rec_visible(&recs[refs[j].i], now)) *dup = refs[g].id;
    }
    picks[*npicks].i = refs[chosen].i;
    picks[*npicks].weight = (int64_t)(chosen - g + 1);
    (*npicks)++;
  }
  free(refs);
  qsort(picks, *npicks, sizeof *picks, cmp_pick);
  return 0;
}

/* Fills kv_load's arrays with the picks from *pos on, up to about
 * PUT_CHUNK_BYTES (at least one); *pos moves past them. -1 when out of
 * memory or an element is over 2 GB. */
static int kv_load_arrays(pg_backend *pg, const lls_kv_rec *recs, const kv_pick *picks,
                          size_t npicks, size_t *pos, size_t *count) {
  for (int a = 0; a < K_COUNT; a++)
    if (arr_init(&pg->varr[a]) != 0) return -1;
  size_t bytes = 0, i = *pos;
  int meta_null = 0, id_null = 0, exp_null = 0;
  for (; i < npicks; i++) {
    const lls_kv_rec *r = &recs[picks[i].i];
    size_t size = r->key.len + r->value.len + r->metadata.len + r->kv_id.len + 64;
    if (i > *pos && bytes + size > PUT_CHUNK_BYTES) break;
    bytes += size;
    if (arr_add(&pg->varr[K_KEY], r->key.ptr, r->key.len) != 0 ||
        arr_add(&pg->varr[K_VAL], r->value.ptr, r->value.len) != 0 ||
        arr_add_opt(&pg->varr[K_META], r->metadata) != 0 ||
        arr_add_opt(&pg->varr[K_ID], r->kv_id) != 0 ||
        arr_add_time(&pg->varr[K_CREATED], r->created_at) != 0 ||
        arr_add_time(&pg->varr[K_UPDATED], r->updated_at) != 0 ||
        arr_add_expiry(&pg->varr[K_EXPIRES], r->expires_at) != 0 ||
        arr_add_int8(&pg->varr[K_WEIGHT], picks[i].weight) != 0)
      return -1;
    meta_null |= r->metadata.len == 0;
    id_null |= r->kv_id.len == 0;
    exp_null |= r->expires_at == 0;
  }
  *count = i - *pos;
  *pos = i;
  static const Oid elem[K_COUNT] = {OID_TEXT, OID_BYTEA, OID_TEXT, OID_TEXT,
                                    OID_TSTZ, OID_TSTZ,  OID_TSTZ, OID_INT8};
  for (int a = 0; a < K_COUNT; a++)
    arr_finish(&pg->varr[a], elem[a], *count,
               (a == K_META && meta_null) || (a == K_ID && id_null) ||
                   (a == K_EXPIRES && exp_null));
  return 0;
}

/* Writes the records as given (times, metadata, kv_id) in one unit: a
 * savepoint inside the caller's transaction, a transaction of its own
 * outside one, so that error mode can undo a chunk that met an existing
 * key. One statement per PUT_CHUNK_BYTES of records (one, for any usual
 * batch). */
static int pg_kv_load(lls_backend *b, const lls_kv_rec *recs, size_t n, lls_conflict oc,
                      int64_t now, size_t *written, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  *written = 0;
  if (n == 0) return 0;
  kv_pick *picks = malloc(n * sizeof *picks);
  size_t npicks;
  lls_str dup;
  if (picks == NULL || plan_kv_load(recs, n, oc, now, picks, &npicks, &dup) != 0) {
    free(picks);
    return lls_error_set(err, LLS_EIO, "out of memory");
  }
  if (dup.ptr != NULL) {
    free(picks);
    return lls_error_set(err, LLS_ECONFLICT, "key '%.*s' already exists (given twice)",
                         msg_len(dup, 200), dup.ptr);
  }
  if (unit_begin(pg, 0, err) != 0) {
    free(picks);
    return -1;
  }
  int64_t total = 0;
  for (size_t pos = 0, chunk; pos < npicks;) {
    if (kv_load_arrays(pg, recs, picks, npicks, &pos, &chunk) != 0) {
      lls_error_set(err, LLS_EIO, "out of memory (or an element over 2 GB)");
      goto fail;
    }
    pg_params p = {0};
    p_tenant(&p, pg);
    p_time(&p, now);
    for (int a = 0; a < K_COUNT; a++) p_buf(&p, &pg->varr[a]);
    PGresult *r = pg_run(pg, oc == LLS_CONFLICT_REPLACE ? ST_KV_LOAD_REPLACE : ST_KV_LOAD_SKIP,
                         &p, 0, err);
    if (r == NULL) {
      metadata_error(err);
      goto fail;
    }
    if (oc != LLS_CONFLICT_REPLACE && PQntuples(r) > 0) {
      total += int8_at(r, 0, 0);
      if (oc == LLS_CONFLICT_ERROR && !PQgetisnull(r, 0, 1)) {
        lls_str key = str_at(r, 0, 1);
        lls_error_set(err, LLS_ECONFLICT, "key '%.*s' already exists", msg_len(key, 200),
                      key.ptr);
        PQclear(r);
        goto fail;
      }
    }
    PQclear(r);
  }
  free(picks);
  trim_arrays(pg);
  if (unit_end(pg, 0, 1, err) != 0) return -1;
  *written = oc == LLS_CONFLICT_REPLACE ? n : (size_t)total;
  return 0;
fail:
  free(picks);
  trim_arrays(pg);
  unit_end(pg, 0, 0, NULL);
  return -1;
}

/* A page of rows with id > after_id in id order, handed to the sink once
 * the whole page has arrived (so a retried read never repeats a row). */
static int pg_vec_dump(lls_backend *b, int64_t coll_id, lls_str after_id, size_t limit,
                       lls_vec_sink sink, void *ud, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  p_tenant(&p, pg);
  p_int8(&p, coll_id);
  p_bytes(&p, after_id.ptr, after_id.ptr ? after_id.len : 0);
  p_limit(&p, limit);
  PGresult *r = pg_run(pg, ST_VEC_DUMP, &p, 1, err);
  if (r == NULL) return -1;
  int rows = PQntuples(r);
  if (rows == 0) {
    PQclear(r);
    return coll_missing(err, coll_id);
  }
  err->code = LLS_OK;
  err->message[0] = '\0';
  for (int i = 0; i < rows; i++) {
    if (PQgetisnull(r, i, 0)) continue; /* the collection, without rows */
    lls_vec_row row;
    row.id = str_at(r, i, 0);
    row.scope = str_at(r, i, 1);
    row.vector = str_at(r, i, 2);
    row.metadata = str_at(r, i, 3);
    row.created_at = time_or_zero(r, i, 4);
    row.updated_at = time_or_zero(r, i, 5);
    row.has_event_time = !PQgetisnull(r, i, 6);
    row.event_time = time_or_zero(r, i, 6);
    row.expires_at = time_or_zero(r, i, 7);
    row.seq = int8_at(r, i, 8);
    row.deleted = 0;
    if (sink(ud, &row, err) != 0) {
      PQclear(r);
      return sink_stopped(err);
    }
  }
  PQclear(r);
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return keycmp(*(const lls_str *)a, *(const lls_str *)b);
}

/* One primary-key probe per id (= ANY), then each asked id looked up in
 * the sorted answer, so repeated ids are all marked. */
static int pg_vec_has(lls_backend *b, int64_t coll_id, const lls_str *ids, size_t n,
                      unsigned char *present, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  lls_buf *a = &pg->varr[V_ID];
  if (n > 0) memset(present, 0, n);
  if (arr_init(a) != 0) return lls_error_set(err, LLS_EIO, "out of memory");
  for (size_t i = 0; i < n; i++)
    if (arr_add(a, ids[i].ptr, ids[i].len) != 0) {
      trim_arrays(pg);
      return lls_error_set(err, LLS_EIO, "out of memory");
    }
  arr_finish(a, OID_TEXT, n, 0);
  pg_params p = {0};
  p_tenant(&p, pg);
  p_int8(&p, coll_id);
  p_buf(&p, a);
  PGresult *r = pg_run(pg, ST_VEC_HAS, &p, 1, err);
  trim_arrays(pg);
  if (r == NULL) return -1;
  int rows = PQntuples(r);
  if (rows == 0) {
    PQclear(r);
    return coll_missing(err, coll_id);
  }
  lls_str *found = malloc((size_t)rows * sizeof *found);
  if (found == NULL) {
    PQclear(r);
    return lls_error_set(err, LLS_EIO, "out of memory");
  }
  size_t nfound = 0;
  for (int i = 0; i < rows; i++)
    if (!PQgetisnull(r, i, 0)) found[nfound++] = str_at(r, i, 0);
  qsort(found, nfound, sizeof *found, cmp_str);
  for (size_t i = 0; i < n && nfound > 0; i++)
    present[i] = bsearch(&ids[i], found, nfound, sizeof *found, cmp_str) != NULL;
  free(found);
  PQclear(r);
  return 0;
}

typedef struct sec_ref {
  lls_str section;
  int64_t ord;
  size_t i;
} sec_ref;

/* By (section, ord), then by position. */
static int cmp_sec_ref(const void *a, const void *b) {
  const sec_ref *x = a, *y = b;
  int c = keycmp(x->section, y->section);
  if (c != 0) return c;
  if (x->ord != y->ord) return x->ord < y->ord ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* Marks in keep[] the last record of each (section, ord): the one a batch
 * applied in order would leave (one statement cannot write a row twice). */
static int dedupe_sections(const lls_str *sections, const int64_t *ords, size_t n,
                           unsigned char *keep) {
  sec_ref *refs = malloc(n * sizeof *refs);
  if (refs == NULL) return -1;
  for (size_t i = 0; i < n; i++) {
    refs[i].section = sections[i];
    refs[i].ord = ords[i];
    refs[i].i = i;
    keep[i] = 0;
  }
  qsort(refs, n, sizeof *refs, cmp_sec_ref);
  for (size_t g = 0, e; g < n; g = e) {
    for (e = g + 1; e < n && keycmp(refs[e].section, refs[g].section) == 0 &&
                    refs[e].ord == refs[g].ord;
         e++) {
    }
    keep[refs[e - 1].i] = 1;
  }
  free(refs);
  return 0;
}

/* Upserts on (tenant, section, ord), one statement per PUT_CHUNK_BYTES of
 * records, all in one unit. An empty section name is refused: sec_clear
 * reads it as "every section". */
static int pg_sec_put(lls_backend *b, const lls_str *sections, const int64_t *ords,
                      const lls_str *json, size_t n, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (sections[i].len == 0)
      return lls_error_set(err, LLS_EINVALID, "section name must not be empty");
  unsigned char *keep = malloc(n);
  if (keep == NULL || dedupe_sections(sections, ords, n, keep) != 0) {
    free(keep);
    return lls_error_set(err, LLS_EIO, "out of memory");
  }
  if (unit_begin(pg, 0, err) != 0) {
    free(keep);
    return -1;
  }
  for (size_t pos = 0; pos < n;) {
    size_t count = 0, bytes = 0;
    lls_buf *s = &pg->varr[0], *o = &pg->varr[1], *j = &pg->varr[2];
    if (arr_init(s) != 0 || arr_init(o) != 0 || arr_init(j) != 0) goto oom;
    for (; pos < n; pos++) {
      if (!keep[pos]) continue;
      size_t size = sections[pos].len + json[pos].len + 32;
      if (count > 0 && bytes + size > PUT_CHUNK_BYTES) break;
      bytes += size;
      if (arr_add(s, sections[pos].ptr, sections[pos].len) != 0 ||
          arr_add_int8(o, ords[pos]) != 0 || arr_add(j, json[pos].ptr, json[pos].len) != 0)
        goto oom;
      count++;
    }
    if (count == 0) break; /* only replaced duplicates were left */
    arr_finish(s, OID_TEXT, count, 0);
    arr_finish(o, OID_INT8, count, 0);
    arr_finish(j, OID_TEXT, count, 0);
    pg_params p = {0};
    p_tenant(&p, pg);
    p_buf(&p, s);
    p_buf(&p, o);
    p_buf(&p, j);
    PGresult *r = pg_run(pg, ST_SEC_PUT, &p, 0, err);
    if (r == NULL) goto fail;
    PQclear(r);
  }
  free(keep);
  trim_arrays(pg);
  return unit_end(pg, 0, 1, err);
oom:
  lls_error_set(err, LLS_EIO, "out of memory (or a record over 2 GB)");
fail:
  free(keep);
  trim_arrays(pg);
  unit_end(pg, 0, 0, NULL);
  return -1;
}

/* A page of section records after (after_section, after_ord) in (section,
 * ord) order. Section names are never empty, so ('', INT64_MIN) lies
 * before every record and serves as "from the first". */
static int pg_sec_dump(lls_backend *b, lls_str after_section, int64_t after_ord, size_t limit,
                       lls_rows *out, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  p_tenant(&p, pg);
  p_bytes(&p, after_section.ptr, after_section.ptr ? after_section.len : 0);
  p_int8(&p, after_section.ptr ? after_ord : INT64_MIN);
  p_limit(&p, limit);
  PGresult *r = pg_run(pg, ST_SEC_DUMP, &p, 1, err);
  if (r == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows; i++) {
    lls_str sec = str_at(r, i, 0), rec = str_at(r, i, 2);
    lls_row *row = lls_rows_add(out, sec.ptr, sec.len, rec.ptr, rec.len);
    if (row == NULL) {
      PQclear(r);
      return lls_error_set(err, LLS_EIO, "out of memory");
    }
    row->created_at = int8_at(r, i, 1);
  }
  PQclear(r);
  return 0;
}

static int pg_sec_clear(lls_backend *b, lls_str section, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  pg_params p = {0};
  p_tenant(&p, pg);
  if (section.len > 0) p_bytes(&p, section.ptr, section.len);
  PGresult *r = write_one(pg, section.len > 0 ? ST_SEC_CLEAR : ST_SEC_CLEAR_ALL, &p, err);
  if (r == NULL) return -1;
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
  if (lls_rows_add(out, where, wlen, what, (size_t)len) == NULL)
    return lls_error_set(err, LLS_EIO, "out of memory");
  return 0;
}

#define MIGRATIONS_WHERE "llmspell_migrations"

/* The recorded migrations against the table this library applies: each
 * known one present under its name, nothing newer. */
static int check_migrations(pg_backend *pg, lls_rows *out, lls_error *err) {
  pg_params p = {0};
  PGresult *r = pg_run(pg, ST_MIGRATIONS, &p, 1, err);
  if (r == NULL) return -1;
  const size_t wl = sizeof MIGRATIONS_WHERE - 1;
  int rc = 0, rows = PQntuples(r);
  for (int m = 0; m < N_MIGRATIONS && rc == 0; m++) {
    int row = -1;
    for (int i = 0; i < rows; i++)
      if (int4_at(r, i, 0) == migrations[m].version) row = i;
    if (row < 0) {
      rc = problem(out, MIGRATIONS_WHERE, wl, err, "migration %03d_%s was not applied",
                   migrations[m].version, migrations[m].name);
      continue;
    }
    lls_str name = str_at(r, row, 1);
    if (name.len != strlen(migrations[m].name) || memcmp(name.ptr, migrations[m].name, name.len))
      rc = problem(out, MIGRATIONS_WHERE, wl, err,
                   "migration %d is recorded as '%.*s', this library applies '%s'",
                   migrations[m].version, msg_len(name, 100), name.ptr, migrations[m].name);
  }
  for (int i = 0; i < rows && rc == 0; i++) {
    int v = int4_at(r, i, 0);
    if (v < 1 || v > N_MIGRATIONS) {
      lls_str name = str_at(r, i, 1);
      rc = problem(out, MIGRATIONS_WHERE, wl, err,
                   "migration %d ('%.*s') is unknown to this library (it knows 1 to %d)", v,
                   msg_len(name, 100), name.ptr, N_MIGRATIONS);
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
static int pg_check(lls_backend *b, lls_rows *problems, lls_error *err) {
  pg_backend *pg = (pg_backend *)b;
  if (check_migrations(pg, problems, err) != 0) return -1;

  pg_params p = {0};
  PGresult *r = pg_run(pg, ST_CHECK_RLS, &p, 1, err);
  if (r == NULL) return -1;
  int rc = 0;
  for (int i = 0, rows = PQntuples(r); i < rows && rc == 0; i++) {
    lls_str t = str_at(r, i, 0);
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
                   msg_len(t, 100), t.ptr);
  }
  PQclear(r);
  if (rc != 0) return -1;

  p_tenant(&p, pg);
  if ((r = pg_run(pg, ST_CHECK_COUNTS, &p, 1, err)) == NULL) return -1;
  for (int i = 0, rows = PQntuples(r); i < rows && rc == 0; i++) {
    lls_str name = str_at(r, i, 0);
    rc = problem(problems, name.ptr, name.len, err, "count says %lld, vectors has %lld",
                 (long long)int8_at(r, i, 1), (long long)int8_at(r, i, 2));
  }
  PQclear(r);
  return rc;
}

static const lls_kv_ops postgres_kv_ops = {
    .get = pg_get,
    .set = pg_set,
    .del = pg_del,
    .apply = pg_apply,
    .get_many = pg_get_many,
    .scan = pg_scan,
    .clear = pg_clear,
    .stats = pg_stats,
    .sweep = pg_sweep,
};

static const lls_vec_ops postgres_vec_ops = {
    .coll_create = pg_coll_create,
    .coll_get = pg_coll_get,
    .coll_list = pg_coll_list,
    .coll_drop = pg_coll_drop,
    .coll_seq = pg_coll_seq,
    .put = pg_vec_put,
    .del = pg_vec_delete,
    .load = pg_vec_load,
    .snap_save = pg_snap_save,
    .snap_load = pg_snap_load,
};

static const lls_xport_ops postgres_xport_ops = {
    .kv_dump = pg_kv_dump,
    .kv_load = pg_kv_load,
    .vec_dump = pg_vec_dump,
    .vec_has = pg_vec_has,
    .sec_put = pg_sec_put,
    .sec_dump = pg_sec_dump,
    .sec_clear = pg_sec_clear,
};

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
    .begin = pg_begin,
    .begin_read = pg_begin_read,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .migrations = pg_migrations,
    .check = pg_check,
    .kv = &postgres_kv_ops,
    .vec = &postgres_vec_ops,
    .xport = &postgres_xport_ops,
};
