/*
 * schema.c -- the SQLite backend's schema: its migrations and the text of
 * every statement (the ids are in schema.h).
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
 *   -- migration 4: checksums
 *   ALTER TABLE kv_store ADD COLUMN crc INTEGER;           -- CRC-32C of
 *                                       -- tenant_id, key, value, expires_at
 *   ALTER TABLE vector_embeddings ADD COLUMN crc INTEGER;  -- CRC-32C of
 *                                       -- tenant_id, collection_id, id, scope,
 *                                       -- vector, metadata, the four times, seq
 *   UPDATE ... SET crc = lls_crc32c(...) -- rows written before it
 *   PRAGMA application_id = 0x4C4C5354 ("LLST"): the file is a store
 *
 *   -- migrations 5-12: sessions, artifacts (artifact_content,
 *   artifact_chunks, artifacts), agent_states, workflow_states,
 *   procedural_memory (procedural_patterns), knowledge_graph (entities,
 *   relationships), hook_history, event_log (event_log,
 *   event_log_sequences): the components' tables, documented in their
 *   files beside this one.
 *
 *   -- migration 13: vector_scan (col:scan's orders, vec_scan.c)
 *   CREATE INDEX vector_embeddings_time ON vector_embeddings
 *     (collection_id, event_time, id);
 *   CREATE INDEX vector_embeddings_scope_time ON vector_embeddings
 *     (collection_id, scope, event_time, id);
 *   CREATE INDEX vector_embeddings_scope_id ON vector_embeddings
 *     (collection_id, scope, id);
 *
 * Every read of a row recomputes its checksum (rowsum.h has the encoding)
 * and raises LLS_EINTEGRITY on a mismatch, so damage shows as an error
 * instead of an altered value. A NULL crc (a row inserted by hand) fails
 * too.
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
 */
#include "backends/sqlite/schema.h"

/* ------------------------------------------------------------ migrations */

/* Append-only: a released version is never edited, later features (vector
 * tables, ...) add entries. Every script must be idempotent by itself too,
 * so a database whose bookkeeping table was lost can still be upgraded. */
const lls_sqlite_migration lls_sqlite_migration_scripts[] = {
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
    /* lls_crc32c is the connection's own function (rowsum.c): the rows a
     * file already holds get their checksum here, once; a row that was
     * damaged before the upgrade is not told apart. */
    {4, "checksums",
     "UPDATE kv_store SET crc = lls_crc32c(tenant_id, key, value, expires_at)\n"
     "  WHERE crc IS NULL;\n"
     "UPDATE vector_embeddings SET crc = lls_crc32c(tenant_id, collection_id, id, scope,\n"
     "  vector, metadata, created_at, updated_at, event_time, expires_at, seq)\n"
     "  WHERE crc IS NULL;\n"
     "PRAGMA application_id = 1280070484;"},
    /* The components of COMPONENTS.md (issue 10); each component's file
     * (sessions.c, artifacts.c, agent_states.c, workflows.c) documents
     * its tables and the queries over them. Times are microseconds. */
    {5, "sessions",
     "CREATE TABLE IF NOT EXISTS sessions (\n"
     "  tenant_id        TEXT NOT NULL,\n"
     "  session_id       TEXT NOT NULL,\n"
     "  row_id           TEXT NOT NULL,\n"
     "  status           TEXT NOT NULL CHECK (status IN\n"
     "                     ('active', 'completed', 'expired', 'archived')),\n"
     "  data             TEXT NOT NULL,\n"
     "  created_at       INTEGER NOT NULL,\n"
     "  updated_at       INTEGER NOT NULL,\n"
     "  last_accessed_at INTEGER NOT NULL,\n"
     "  expires_at       INTEGER,\n"
     "  artifact_count   INTEGER NOT NULL DEFAULT 0,\n"
     "  next_sequence    INTEGER NOT NULL DEFAULT 0,\n"
     "  PRIMARY KEY (tenant_id, session_id)\n"
     ") WITHOUT ROWID;\n"
     "CREATE INDEX IF NOT EXISTS sessions_status\n"
     "  ON sessions (tenant_id, status, created_at);\n"
     "CREATE INDEX IF NOT EXISTS sessions_created ON sessions (tenant_id, created_at);\n"
     "CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (tenant_id, expires_at)\n"
     "  WHERE expires_at IS NOT NULL;"},
    {6, "artifacts",
     "CREATE TABLE IF NOT EXISTS artifact_content (\n"
     "  tenant_id           TEXT NOT NULL,\n"
     "  content_hash        TEXT NOT NULL,\n"
     "  size_bytes          INTEGER NOT NULL,\n"
     "  stored_bytes        INTEGER NOT NULL,\n"
     "  is_compressed       INTEGER NOT NULL,\n"
     "  original_size_bytes INTEGER NOT NULL,\n"
     "  chunk_count         INTEGER NOT NULL,\n"
     "  reference_count     INTEGER NOT NULL,\n"
     "  created_at          INTEGER NOT NULL,\n"
     "  last_accessed_at    INTEGER NOT NULL,\n"
     "  PRIMARY KEY (tenant_id, content_hash)\n"
     ") WITHOUT ROWID;\n"
     "CREATE TABLE IF NOT EXISTS artifact_chunks (\n"
     "  tenant_id    TEXT NOT NULL,\n"
     "  content_hash TEXT NOT NULL,\n"
     "  chunk_index  INTEGER NOT NULL,\n"
     "  raw_size     INTEGER NOT NULL,\n"
     "  data         BLOB NOT NULL,\n"
     "  PRIMARY KEY (tenant_id, content_hash, chunk_index)\n"
     ");\n"
     "CREATE TABLE IF NOT EXISTS artifacts (\n"
     "  tenant_id          TEXT NOT NULL,\n"
     "  artifact_id        TEXT NOT NULL,\n"
     "  session_id         TEXT NOT NULL,\n"
     "  sequence           INTEGER NOT NULL,\n"
     "  content_hash       TEXT NOT NULL,\n"
     "  metadata           TEXT NOT NULL,\n"
     "  name               TEXT NOT NULL,\n"
     "  artifact_type      TEXT NOT NULL CHECK (artifact_type IN\n"
     "                       ('code', 'data', 'image', 'document', 'binary')),\n"
     "  mime_type          TEXT NOT NULL,\n"
     "  size_bytes         INTEGER NOT NULL,\n"
     "  created_at         INTEGER NOT NULL,\n"
     "  created_by         TEXT,\n"
     "  version            INTEGER NOT NULL DEFAULT 1,\n"
     "  parent_artifact_id TEXT,\n"
     "  tags               TEXT NOT NULL,\n"
     "  stored_at          INTEGER NOT NULL,\n"
     "  updated_at         INTEGER NOT NULL,\n"
     "  PRIMARY KEY (tenant_id, artifact_id)\n"
     ") WITHOUT ROWID;\n"
     "CREATE UNIQUE INDEX IF NOT EXISTS artifacts_session\n"
     "  ON artifacts (tenant_id, session_id, sequence);\n"
     "CREATE INDEX IF NOT EXISTS artifacts_content ON artifacts (tenant_id, content_hash);"},
    {7, "agent_states",
     "CREATE TABLE IF NOT EXISTS agent_states (\n"
     "  tenant_id      TEXT NOT NULL,\n"
     "  agent_id       TEXT NOT NULL,\n"
     "  state_id       TEXT NOT NULL,\n"
     "  agent_type     TEXT NOT NULL,\n"
     "  state_data     BLOB NOT NULL,\n"
     "  is_json        INTEGER NOT NULL CHECK (is_json IN (0, 1)),\n"
     "  schema_version INTEGER NOT NULL CHECK (schema_version > 0),\n"
     "  data_version   INTEGER NOT NULL CHECK (data_version > 0),\n"
     "  checksum       TEXT NOT NULL,\n"
     "  created_at     INTEGER NOT NULL,\n"
     "  updated_at     INTEGER NOT NULL,\n"
     "  PRIMARY KEY (tenant_id, agent_id)\n"
     ") WITHOUT ROWID;\n"
     "CREATE INDEX IF NOT EXISTS agent_states_type\n"
     "  ON agent_states (tenant_id, agent_type, agent_id);"},
    {8, "workflow_states",
     "CREATE TABLE IF NOT EXISTS workflow_states (\n"
     "  tenant_id     TEXT NOT NULL,\n"
     "  workflow_id   TEXT NOT NULL,\n"
     "  workflow_name TEXT NOT NULL,\n"
     "  state_data    TEXT NOT NULL,\n"
     "  current_step  INTEGER NOT NULL CHECK (current_step >= 0),\n"
     "  status        TEXT NOT NULL CHECK (status IN\n"
     "                  ('pending', 'running', 'completed', 'failed', 'cancelled')),\n"
     "  started_at    INTEGER,\n"
     "  completed_at  INTEGER,\n"
     "  last_updated  INTEGER NOT NULL,\n"
     "  created_at    INTEGER NOT NULL,\n"
     "  PRIMARY KEY (tenant_id, workflow_id)\n"
     ") WITHOUT ROWID;\n"
     "CREATE INDEX IF NOT EXISTS workflow_states_status\n"
     "  ON workflow_states (tenant_id, status, last_updated);"},
    {9, "procedural_memory",
     "CREATE TABLE IF NOT EXISTS procedural_patterns (\n"
     "  tenant_id  TEXT NOT NULL,\n"
     "  pattern_id TEXT NOT NULL,\n"
     "  scope      TEXT NOT NULL,\n"
     "  key        TEXT NOT NULL,\n"
     "  value      TEXT NOT NULL,\n"
     "  frequency  INTEGER NOT NULL CHECK (frequency > 0),\n"
     "  first_seen INTEGER NOT NULL,\n"
     "  last_seen  INTEGER NOT NULL,\n"
     "  created_at INTEGER NOT NULL,\n"
     "  updated_at INTEGER NOT NULL,\n"
     "  PRIMARY KEY (tenant_id, scope, key, value)\n"
     ") WITHOUT ROWID;\n"
     "CREATE INDEX IF NOT EXISTS procedural_patterns_frequency ON procedural_patterns\n"
     "  (tenant_id, frequency DESC, last_seen DESC, scope, key, value);\n"
     "CREATE INDEX IF NOT EXISTS procedural_patterns_scope ON procedural_patterns\n"
     "  (tenant_id, scope, frequency DESC, last_seen DESC, key, value);"},
    {10, "knowledge_graph",
     "CREATE TABLE IF NOT EXISTS entities (\n"
     "  tenant_id TEXT NOT NULL, entity_id TEXT NOT NULL,\n"
     "  entity_type TEXT NOT NULL, name TEXT NOT NULL, properties TEXT NOT NULL,\n"
     "  valid_time_start INTEGER NOT NULL, valid_time_end INTEGER NOT NULL,\n"
     "  transaction_time_start INTEGER NOT NULL, transaction_time_end INTEGER NOT NULL,\n"
     "  created_at INTEGER NOT NULL,\n"
     "  CHECK (valid_time_start <= valid_time_end),\n"
     "  CHECK (transaction_time_start <= transaction_time_end));\n"
     "CREATE UNIQUE INDEX IF NOT EXISTS entities_version ON entities\n"
     "  (tenant_id, entity_id, transaction_time_start, valid_time_start);\n"
     "CREATE UNIQUE INDEX IF NOT EXISTS entities_open ON entities (tenant_id, entity_id)\n"
     "  WHERE valid_time_end = 9223372036854775807\n"
     "  AND transaction_time_end = 9223372036854775807;\n"
     "CREATE INDEX IF NOT EXISTS entities_type ON entities (tenant_id, entity_type, name);\n"
     "CREATE INDEX IF NOT EXISTS entities_name ON entities (tenant_id, name);\n"
     "CREATE INDEX IF NOT EXISTS entities_valid ON entities\n"
     "  (tenant_id, valid_time_start, valid_time_end);\n"
     "CREATE INDEX IF NOT EXISTS entities_superseded ON entities\n"
     "  (tenant_id, transaction_time_end) WHERE transaction_time_end < 9223372036854775807;\n"
     "CREATE TABLE IF NOT EXISTS relationships (\n"
     "  tenant_id TEXT NOT NULL, relationship_id TEXT NOT NULL,\n"
     "  source_entity_id TEXT NOT NULL, target_entity_id TEXT NOT NULL,\n"
     "  relationship_type TEXT NOT NULL, properties TEXT NOT NULL,\n"
     "  valid_time_start INTEGER NOT NULL, valid_time_end INTEGER NOT NULL,\n"
     "  transaction_time_start INTEGER NOT NULL, transaction_time_end INTEGER NOT NULL,\n"
     "  created_at INTEGER NOT NULL,\n"
     "  CHECK (valid_time_start <= valid_time_end),\n"
     "  CHECK (transaction_time_start <= transaction_time_end));\n"
     "CREATE UNIQUE INDEX IF NOT EXISTS relationships_version ON relationships\n"
     "  (tenant_id, relationship_id, transaction_time_start, valid_time_start);\n"
     "CREATE UNIQUE INDEX IF NOT EXISTS relationships_open ON relationships\n"
     "  (tenant_id, relationship_id) WHERE valid_time_end = 9223372036854775807\n"
     "  AND transaction_time_end = 9223372036854775807;\n"
     "CREATE INDEX IF NOT EXISTS relationships_from ON relationships\n"
     "  (tenant_id, source_entity_id, relationship_type, target_entity_id,\n"
     "   valid_time_start, valid_time_end, transaction_time_start, transaction_time_end);\n"
     "CREATE INDEX IF NOT EXISTS relationships_to ON relationships\n"
     "  (tenant_id, target_entity_id, relationship_type, source_entity_id,\n"
     "   valid_time_start, valid_time_end, transaction_time_start, transaction_time_end);\n"
     "CREATE INDEX IF NOT EXISTS relationships_valid ON relationships\n"
     "  (tenant_id, valid_time_start, valid_time_end);\n"
     "CREATE INDEX IF NOT EXISTS relationships_superseded ON relationships\n"
     "  (tenant_id, transaction_time_end) WHERE transaction_time_end < 9223372036854775807;"},
    {11, "hook_history",
     "CREATE TABLE IF NOT EXISTS hook_history (\n"
     "  tenant_id               TEXT NOT NULL,\n"
     "  id                      TEXT NOT NULL,\n"
     "  execution_id            TEXT NOT NULL,\n"
     "  hook_id                 TEXT NOT NULL,\n"
     "  hook_type               TEXT NOT NULL,\n"
     "  correlation_id          TEXT NOT NULL,\n"
     "  hook_context            BLOB NOT NULL,\n"
     "  result_data             TEXT,\n"
     "  timestamp               INTEGER NOT NULL,\n"
     "  duration_ms             INTEGER NOT NULL CHECK (duration_ms >= 0),\n"
     "  triggering_component    TEXT,\n"
     "  component_id            TEXT,\n"
     "  modified_operation      INTEGER NOT NULL CHECK (modified_operation IN (0, 1)),\n"
     "  tags                    TEXT NOT NULL,\n"
     "  retention_priority      INTEGER NOT NULL,\n"
     "  context_size            INTEGER NOT NULL CHECK (context_size >= 0),\n"
     "  contains_sensitive_data INTEGER NOT NULL CHECK (contains_sensitive_data IN (0, 1)),\n"
     "  metadata                TEXT NOT NULL,\n"
     "  created_at              INTEGER NOT NULL,\n"
     "  PRIMARY KEY (tenant_id, execution_id)\n"
     ");\n"
     "CREATE INDEX IF NOT EXISTS hook_history_correlation ON hook_history\n"
     "  (tenant_id, correlation_id, timestamp DESC, execution_id DESC);\n"
     "CREATE INDEX IF NOT EXISTS hook_history_hook ON hook_history\n"
     "  (tenant_id, hook_id, timestamp DESC, execution_id DESC);\n"
     "CREATE INDEX IF NOT EXISTS hook_history_type ON hook_history\n"
     "  (tenant_id, hook_type, timestamp DESC, execution_id DESC);\n"
     "CREATE INDEX IF NOT EXISTS hook_history_retention ON hook_history\n"
     "  (tenant_id, retention_priority, timestamp);"},
    {12, "event_log",
     "CREATE TABLE IF NOT EXISTS event_log (\n"
     "  tenant_id      TEXT NOT NULL,\n"
     "  sequence       INTEGER NOT NULL CHECK (sequence > 0),\n"
     "  event_id       TEXT NOT NULL,\n"
     "  event_type     TEXT NOT NULL,\n"
     "  correlation_id TEXT,\n"
     "  timestamp      INTEGER NOT NULL,\n"
     "  language       TEXT NOT NULL,\n"
     "  payload        TEXT NOT NULL,\n"
     "  PRIMARY KEY (tenant_id, sequence)\n"
     ") WITHOUT ROWID;\n"
     "CREATE INDEX IF NOT EXISTS event_log_time ON event_log (tenant_id, timestamp);\n"
     "CREATE INDEX IF NOT EXISTS event_log_correlation ON event_log (tenant_id, correlation_id);\n"
     "CREATE INDEX IF NOT EXISTS event_log_type ON event_log (tenant_id, event_type, timestamp);\n"
     "CREATE TABLE IF NOT EXISTS event_log_sequences (\n"
     "  tenant_id     TEXT PRIMARY KEY,\n"
     "  last_sequence INTEGER NOT NULL\n"
     ") WITHOUT ROWID;"},
    /* col:scan's orders (vec_scan.c): by (event_time, id), rows without
     * one last, optionally within a scope; by id within a scope. */
    {13, "vector_scan",
     "CREATE INDEX IF NOT EXISTS vector_embeddings_time ON vector_embeddings\n"
     "  (collection_id, event_time, id);\n"
     "CREATE INDEX IF NOT EXISTS vector_embeddings_scope_time ON vector_embeddings\n"
     "  (collection_id, scope, event_time, id);\n"
     "CREATE INDEX IF NOT EXISTS vector_embeddings_scope_id ON vector_embeddings\n"
     "  (collection_id, scope, id);"},
};

const int lls_sqlite_nmigrations =
    (int)(sizeof lls_sqlite_migration_scripts / sizeof lls_sqlite_migration_scripts[0]);

/* SQLite has no ADD COLUMN IF NOT EXISTS, so each is added only when the
 * table lacks it: that keeps the migration idempotent. */
const lls_sqlite_add_column lls_sqlite_add_columns[] = {
    {3, "kv_store", "kv_id", "TEXT"},
    {4, "kv_store", "crc", "INTEGER"},
    {4, "vector_embeddings", "crc", "INTEGER"},
};

const size_t lls_sqlite_nadd_columns =
    sizeof lls_sqlite_add_columns / sizeof lls_sqlite_add_columns[0];

/* ------------------------------------------------------------ statements */

#define VISIBLE "(expires_at IS NULL OR expires_at > ?3)"

/* The CASE keeps keys-only scans from reading values (and their overflow
 * pages) at all: SQLite extracts record columns lazily. */
#define SCAN_HEAD                                                                    \
  "SELECT key, CASE WHEN ?5 THEN x'' ELSE value END, created_at, updated_at,"        \
  " expires_at, crc FROM kv_store WHERE tenant_id = ?1 AND "
#define SCAN_TAIL " AND (expires_at IS NULL OR expires_at > ?3) ORDER BY key LIMIT ?6"

/* Column lists shared by several statements, in the order fill_coll() and
 * vec_load() read them. */
#define COLL_COLUMNS                                                                 \
  "SELECT id, name, dimension, metric, m, ef_construction, ef_search, created_at,"   \
  " seq, count FROM vector_collections"
#define VEC_COLUMNS                                                                  \
  "id, scope, vector, metadata, created_at, updated_at, event_time, expires_at, seq, crc"
#define KV_DUMP_HEAD                                                                 \
  "SELECT key, value, metadata, kv_id, created_at, updated_at, expires_at, crc"          \
  " FROM kv_store"                                                                   \
  " WHERE tenant_id = ?1"
#define KV_DUMP_TAIL " AND " VISIBLE " ORDER BY key LIMIT ?4"
/* kv_load binds ?1..?8 and ?10 (the checksum) the same way for both; ?9 =
 * now for the insert. */
#define KV_LOAD_HEAD                                                                 \
  "INSERT INTO kv_store (tenant_id, key, value, metadata, kv_id, created_at,"        \
  " updated_at, expires_at, crc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?10)"       \
  " ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value,"               \
  " crc = excluded.crc,"                                                             \
  " metadata = excluded.metadata, kv_id = excluded.kv_id,"                           \
  " created_at = excluded.created_at, updated_at = excluded.updated_at,"             \
  " expires_at = excluded.expires_at"
#define SEC_DUMP_HEAD "SELECT section, ord, record FROM export_sections WHERE tenant_id = ?1"
#define SEC_DUMP_TAIL " ORDER BY section, ord LIMIT ?4"

const char *const lls_sqlite_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SP_APPLY] = "SAVEPOINT lls_apply",
    [ST_SP_RELEASE] = "RELEASE lls_apply",
    [ST_SP_ROLLBACK] = "ROLLBACK TO lls_apply",
    [ST_GET] = "SELECT value, expires_at, crc FROM kv_store"
               " WHERE tenant_id = ?1 AND key = ?2 AND " VISIBLE,
    [ST_GET_ROW] = "SELECT value, created_at, updated_at, expires_at, crc FROM kv_store"
                   " WHERE tenant_id = ?1 AND key = ?2 AND " VISIBLE,
    /* An expired row counts as absent, so it gets a fresh created_at. */
    [ST_SET] = "INSERT INTO kv_store (tenant_id, key, value, metadata, created_at,"
               " updated_at, expires_at, crc) VALUES (?1, ?2, ?4, NULL, ?3, ?3, ?5, ?6)"
               " ON CONFLICT (tenant_id, key) DO UPDATE SET"
               " value = excluded.value, crc = excluded.crc,"
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
    /* vec_put binds ?1..?12 the same way for both: insert first (the bulk
     * case), update when the insert found the id taken. */
    [ST_VEC_INSERT] = "INSERT INTO vector_embeddings (collection_id, id, tenant_id, scope,"
                      " vector, metadata, created_at, updated_at, event_time, expires_at,"
                      " seq, crc) VALUES (?2, ?3, ?1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                      " ON CONFLICT (collection_id, id) DO NOTHING",
    [ST_VEC_UPDATE] = "UPDATE vector_embeddings SET scope = ?4, vector = ?5, metadata = ?6,"
                      " created_at = ?7, updated_at = ?8, event_time = ?9, expires_at = ?10,"
                      " seq = ?11, crc = ?12"
                      " WHERE collection_id = ?2 AND id = ?3 AND tenant_id = ?1",
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
                          " SELECT id, '', x'', '', deleted_at, deleted_at, NULL, NULL, seq,"
                          " NULL, 1"
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
