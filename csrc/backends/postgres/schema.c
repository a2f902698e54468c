/*
 * schema.c -- the PostgreSQL backend's schema and SQL: the versioned
 * migrations and the text of every statement the backend prepares (the
 * few it sends unprepared are in schema.h).
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
 *   -- migration 13: 013_vector_scan (col:scan's orders, vec_scan.c)
 *   CREATE INDEX vectors_time_idx ON llmspell.vectors (collection_id, event_time, id);
 *   CREATE INDEX vectors_scope_time_idx ON llmspell.vectors
 *     (collection_id, scope, event_time, id);
 *   CREATE INDEX vectors_scope_id_idx ON llmspell.vectors (collection_id, scope, id);
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
 */
#include "backends/postgres/schema.h"

#include <stdlib.h>
#include <string.h>

#include "backends/postgres/events_schema.h"
#include "base/buf.h"

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
  " 'vector_snapshots', 'export_sections', 'sessions', 'artifact_content',"      \
  " 'artifact_chunks', 'artifacts', 'agent_states', 'workflow_states',"          \
  " 'procedural_patterns', 'entities', 'relationships', 'hook_history',"        \
  " 'event_log', 'event_log_sequences']"

/* $1 is always the tenant. Scan statements differ only in their key range
 * so that each one is a plain index range whatever plan PostgreSQL caches
 * (an optional bound like `$3 IS NULL OR key < $3` is not). */
const pg_stmt lls_pg_stmts[ST_COUNT] = {
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

/* The row-level security every table gets (`T` is the table name). */
#define RLS(T)                                                                   \
  "ALTER TABLE @S." T " ENABLE ROW LEVEL SECURITY;"                              \
  "ALTER TABLE @S." T " FORCE ROW LEVEL SECURITY;"                               \
  "CREATE POLICY " T "_tenant_isolation ON @S." T                                \
  " USING (tenant_id = current_setting('app.current_tenant_id', true))"          \
  " WITH CHECK (tenant_id = current_setting('app.current_tenant_id', true));"

/* Append-only: a released migration is never edited; a schema change is
 * a new entry, so every existing database upgrades the same way. */
const pg_migration lls_pg_migration_scripts[] = {
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
    /* The components of COMPONENTS.md; each component's file (sessions.c,
     * artifacts.c, agent_states.c, workflows.c, patterns.c, graph.c) documents its tables and
     * the queries over them. agent_states.state_data is bytea: its
     * checksum covers the stored bytes, which jsonb would rewrite. The
     * foreign keys are checked at commit, so an import may bring artifacts
     * before their sessions; deleting a session deletes its artifacts in
     * code, which also keeps the content reference counts. */
    {4, "sessions",
     "CREATE TABLE @S.sessions ("
     " tenant_id text NOT NULL,"
     " session_id text COLLATE \"C\" NOT NULL,"
     " row_id text NOT NULL,"
     " status text NOT NULL CHECK (status IN ('active', 'completed', 'expired', 'archived')),"
     " data jsonb NOT NULL,"
     " created_at timestamptz NOT NULL,"
     " updated_at timestamptz NOT NULL,"
     " last_accessed_at timestamptz NOT NULL,"
     " expires_at timestamptz,"
     " artifact_count bigint NOT NULL DEFAULT 0,"
     " next_sequence bigint NOT NULL DEFAULT 0,"
     " PRIMARY KEY (tenant_id, session_id));"
     "CREATE INDEX sessions_status_idx"
     " ON @S.sessions (tenant_id, status, created_at, session_id);"
     "CREATE INDEX sessions_created_idx ON @S.sessions (tenant_id, created_at, session_id);"
     "CREATE INDEX sessions_expires_idx ON @S.sessions (tenant_id, expires_at)"
     " WHERE expires_at IS NOT NULL;"
     RLS("sessions")},
    {5, "artifacts",
     "CREATE TABLE @S.artifact_content ("
     " tenant_id text NOT NULL,"
     " content_hash text COLLATE \"C\" NOT NULL,"
     " size_bytes bigint NOT NULL,"
     " stored_bytes bigint NOT NULL,"
     " is_compressed boolean NOT NULL,"
     " original_size_bytes bigint NOT NULL,"
     " chunk_count int NOT NULL,"
     " reference_count bigint NOT NULL,"
     " created_at timestamptz NOT NULL,"
     " last_accessed_at timestamptz NOT NULL,"
     " PRIMARY KEY (tenant_id, content_hash));"
     "CREATE TABLE @S.artifact_chunks ("
     " tenant_id text NOT NULL,"
     " content_hash text COLLATE \"C\" NOT NULL,"
     " chunk_index int NOT NULL,"
     " raw_size int NOT NULL,"
     " data bytea NOT NULL,"
     " PRIMARY KEY (tenant_id, content_hash, chunk_index),"
     " FOREIGN KEY (tenant_id, content_hash) REFERENCES @S.artifact_content"
     " ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED);"
     "ALTER TABLE @S.artifact_chunks ALTER data SET STORAGE EXTERNAL;"
     "CREATE TABLE @S.artifacts ("
     " tenant_id text NOT NULL,"
     " artifact_id text COLLATE \"C\" NOT NULL,"
     " session_id text COLLATE \"C\" NOT NULL,"
     " sequence bigint NOT NULL,"
     " content_hash text COLLATE \"C\" NOT NULL,"
     " metadata jsonb NOT NULL,"
     " name text NOT NULL,"
     " artifact_type text NOT NULL CHECK (artifact_type IN"
     " ('code', 'data', 'image', 'document', 'binary')),"
     " mime_type text NOT NULL,"
     " size_bytes bigint NOT NULL,"
     " created_at timestamptz NOT NULL,"
     " created_by text,"
     " version int NOT NULL DEFAULT 1,"
     " parent_artifact_id text,"
     " tags jsonb NOT NULL,"
     " stored_at timestamptz NOT NULL,"
     " updated_at timestamptz NOT NULL,"
     " PRIMARY KEY (tenant_id, artifact_id),"
     " FOREIGN KEY (tenant_id, session_id) REFERENCES @S.sessions"
     " DEFERRABLE INITIALLY DEFERRED,"
     " FOREIGN KEY (tenant_id, content_hash) REFERENCES @S.artifact_content"
     " DEFERRABLE INITIALLY DEFERRED);"
     "CREATE UNIQUE INDEX artifacts_session_idx"
     " ON @S.artifacts (tenant_id, session_id, sequence);"
     "CREATE INDEX artifacts_content_idx ON @S.artifacts (tenant_id, content_hash);"
     RLS("artifact_content") RLS("artifact_chunks") RLS("artifacts")},
    {6, "agent_states",
     "CREATE TABLE @S.agent_states ("
     " tenant_id text NOT NULL,"
     " agent_id text COLLATE \"C\" NOT NULL,"
     " state_id text NOT NULL,"
     " agent_type text NOT NULL,"
     " state_data bytea NOT NULL,"
     " is_json boolean NOT NULL,"
     " schema_version int NOT NULL CHECK (schema_version > 0),"
     " data_version bigint NOT NULL CHECK (data_version > 0),"
     " checksum text NOT NULL,"
     " created_at timestamptz NOT NULL,"
     " updated_at timestamptz NOT NULL,"
     " PRIMARY KEY (tenant_id, agent_id));"
     "CREATE INDEX agent_states_type_idx"
     " ON @S.agent_states (tenant_id, agent_type, agent_id);"
     RLS("agent_states")},
    {7, "workflow_states",
     "CREATE TABLE @S.workflow_states ("
     " tenant_id text NOT NULL,"
     " workflow_id text COLLATE \"C\" NOT NULL,"
     " workflow_name text NOT NULL,"
     " state_data jsonb NOT NULL,"
     " current_step int NOT NULL CHECK (current_step >= 0),"
     " status text NOT NULL CHECK (status IN"
     " ('pending', 'running', 'completed', 'failed', 'cancelled')),"
     " started_at timestamptz,"
     " completed_at timestamptz,"
     " last_updated timestamptz NOT NULL,"
     " created_at timestamptz NOT NULL,"
     " PRIMARY KEY (tenant_id, workflow_id));"
     "CREATE INDEX workflow_states_status_idx"
     " ON @S.workflow_states (tenant_id, status, last_updated);"
     RLS("workflow_states")},
    {8, "procedural_memory",
     "CREATE TABLE @S.procedural_patterns ("
     " tenant_id text NOT NULL,"
     " pattern_id text NOT NULL,"
     " scope text COLLATE \"C\" NOT NULL,"
     " key text COLLATE \"C\" NOT NULL,"
     " value text COLLATE \"C\" NOT NULL,"
     " frequency bigint NOT NULL CHECK (frequency > 0),"
     " first_seen timestamptz NOT NULL,"
     " last_seen timestamptz NOT NULL,"
     " created_at timestamptz NOT NULL,"
     " updated_at timestamptz NOT NULL,"
     " PRIMARY KEY (tenant_id, scope, key, value));"
     "CREATE INDEX procedural_patterns_frequency_idx ON @S.procedural_patterns"
     " (tenant_id, frequency DESC, last_seen DESC, scope, key, value);"
     "CREATE INDEX procedural_patterns_scope_idx ON @S.procedural_patterns"
     " (tenant_id, scope, frequency DESC, last_seen DESC, key, value);"
     RLS("procedural_patterns")},
    /* The seed's bi-temporal tables (graph.c documents them); 'infinity'
     * closes nothing. The GiST index holds both time ranges. */
    {9, "knowledge_graph",
     "CREATE TABLE @S.entities ("
     " tenant_id text NOT NULL,"
     " entity_id text COLLATE \"C\" NOT NULL,"
     " entity_type text COLLATE \"C\" NOT NULL,"
     " name text COLLATE \"C\" NOT NULL,"
     " properties jsonb NOT NULL,"
     " valid_time_start timestamptz NOT NULL,"
     " valid_time_end timestamptz NOT NULL CHECK (valid_time_start <= valid_time_end),"
     " transaction_time_start timestamptz NOT NULL,"
     " transaction_time_end timestamptz NOT NULL"
     " CHECK (transaction_time_start <= transaction_time_end),"
     " created_at timestamptz NOT NULL,"
     " PRIMARY KEY (tenant_id, entity_id, transaction_time_start, valid_time_start));"
     "CREATE UNIQUE INDEX entities_open_idx ON @S.entities (tenant_id, entity_id)"
     " WHERE valid_time_end = 'infinity' AND transaction_time_end = 'infinity';"
     "CREATE INDEX entities_type_idx ON @S.entities (tenant_id, entity_type, name);"
     "CREATE INDEX entities_name_idx ON @S.entities (tenant_id, name);"
     "CREATE INDEX entities_temporal_idx ON @S.entities USING gist"
     " (tstzrange(valid_time_start, valid_time_end),"
     " tstzrange(transaction_time_start, transaction_time_end));"
     "CREATE INDEX entities_superseded_idx ON @S.entities (tenant_id, transaction_time_end)"
     " WHERE transaction_time_end < 'infinity';"
     "CREATE TABLE @S.relationships ("
     " tenant_id text NOT NULL,"
     " relationship_id text COLLATE \"C\" NOT NULL,"
     " source_entity_id text COLLATE \"C\" NOT NULL,"
     " target_entity_id text COLLATE \"C\" NOT NULL,"
     " relationship_type text COLLATE \"C\" NOT NULL,"
     " properties jsonb NOT NULL,"
     " valid_time_start timestamptz NOT NULL,"
     " valid_time_end timestamptz NOT NULL CHECK (valid_time_start <= valid_time_end),"
     " transaction_time_start timestamptz NOT NULL,"
     " transaction_time_end timestamptz NOT NULL"
     " CHECK (transaction_time_start <= transaction_time_end),"
     " created_at timestamptz NOT NULL,"
     " PRIMARY KEY (tenant_id, relationship_id, transaction_time_start, valid_time_start));"
     "CREATE UNIQUE INDEX relationships_open_idx ON @S.relationships (tenant_id,"
     " relationship_id) WHERE valid_time_end = 'infinity' AND transaction_time_end = 'infinity';"
     "CREATE INDEX relationships_from_idx ON @S.relationships"
     " (tenant_id, source_entity_id, relationship_type) INCLUDE (target_entity_id,"
     " valid_time_start, valid_time_end, transaction_time_start, transaction_time_end);"
     "CREATE INDEX relationships_to_idx ON @S.relationships"
     " (tenant_id, target_entity_id, relationship_type) INCLUDE (source_entity_id,"
     " valid_time_start, valid_time_end, transaction_time_start, transaction_time_end);"
     "CREATE INDEX relationships_temporal_idx ON @S.relationships USING gist"
     " (tstzrange(valid_time_start, valid_time_end),"
     " tstzrange(transaction_time_start, transaction_time_end));"
     "CREATE INDEX relationships_superseded_idx ON @S.relationships"
     " (tenant_id, transaction_time_end) WHERE transaction_time_end < 'infinity';"
     RLS("entities") RLS("relationships")},
    {10, "hook_history",
     "CREATE TABLE @S.hook_history ("
     " tenant_id text NOT NULL, id text NOT NULL,"
     " execution_id text COLLATE \"C\" NOT NULL, hook_id text COLLATE \"C\" NOT NULL,"
     " hook_type text COLLATE \"C\" NOT NULL, correlation_id text COLLATE \"C\" NOT NULL,"
     " hook_context bytea NOT NULL, result_data jsonb,"
     " timestamp timestamptz NOT NULL, duration_ms bigint NOT NULL CHECK (duration_ms >= 0),"
     " triggering_component text, component_id text, modified_operation boolean NOT NULL,"
     " tags jsonb NOT NULL, retention_priority integer NOT NULL,"
     " context_size bigint NOT NULL CHECK (context_size >= 0),"
     " contains_sensitive_data boolean NOT NULL, metadata jsonb NOT NULL,"
     " created_at timestamptz NOT NULL, PRIMARY KEY (tenant_id, execution_id));"
     /* already LZ4: TOAST need not try pglz on it */
     "ALTER TABLE @S.hook_history ALTER COLUMN hook_context SET STORAGE EXTERNAL;"
     "CREATE INDEX hook_history_correlation_idx ON @S.hook_history"
     " (tenant_id, correlation_id, timestamp DESC, execution_id DESC);"
     "CREATE INDEX hook_history_hook_idx ON @S.hook_history"
     " (tenant_id, hook_id, timestamp DESC, execution_id DESC);"
     "CREATE INDEX hook_history_type_idx ON @S.hook_history"
     " (tenant_id, hook_type, timestamp DESC, execution_id DESC);"
     "CREATE INDEX hook_history_retention_idx ON @S.hook_history"
     " (tenant_id, retention_priority, timestamp);"
     RLS("hook_history")},
    /* events_schema.c holds the scripts, events.c documents them */
    {11, "event_log", lls_pg_event_log_sql},
    {12, "event_log_maintenance", lls_pg_event_maintenance_sql},
    /* col:scan's orders (vec_scan.c): by (event_time, id), rows without
     * one last (NULLS LAST is btree's ascending default), optionally within
     * a scope; by id within a scope. */
    {13, "vector_scan",
     "CREATE INDEX vectors_time_idx ON @S.vectors (collection_id, event_time, id);"
     "CREATE INDEX vectors_scope_time_idx ON @S.vectors"
     " (collection_id, scope, event_time, id);"
     "CREATE INDEX vectors_scope_id_idx ON @S.vectors (collection_id, scope, id);"},
};

const int lls_pg_n_migrations = (int)(sizeof lls_pg_migration_scripts / sizeof lls_pg_migration_scripts[0]);

/* ------------------------------------------------------------ templating */

char *lls_pg_fill_schema(const char *tmpl, const char *schema) {
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
