--- llmspell.storage: one storage API for Lua programs that work with LLMs.
--
-- The C core (`llmspell.storage.core`) does the work; this front module
-- returns one table with everything a user needs, so
-- `local storage = require "llmspell.storage"` is the only line to remember.
-- The pure-Lua layer (tenant, cache, router, migrate) hangs off the same
-- table, loaded on first use.
--
-- @module llmspell.storage

local core = require "llmspell.storage.core"

local storage = {}

--- Library version.
storage._VERSION = core._VERSION

--- Opens a store.
--
-- `url` is `"memory"`, `"sqlite:PATH"` (the file is created, its directory
-- must exist), `"sqlite::memory:"`, a libpq URL
-- (`"postgresql://user@host/db"`) or a libpq conninfo (`"host=/run/pg
-- dbname=app"`); any other form is refused naming it. The table form
-- takes `backend` (`"memory"|"sqlite"|"postgres"`; it wins over the
-- shape of `url`, not over a URL naming another backend), `url` (routed
-- exactly as the string form), `path` (SQLite), `tenant` (default
-- `"default"`) and backend options: SQLite `synchronous`,
-- `busy_timeout_ms`, `cache_size`, `mmap_size`, `mode` (`"rw"`, `"ro"`),
-- `verify` (`"off"`, `"quick"`, `"full"`); PostgreSQL `schema`,
-- `connect_timeout`. Unknown options and bad values are refused before a
-- file, a schema or a connection is made.
--
-- @tparam string|table url a URL, or an options table
-- @tparam[opt] table options options for the URL form
-- @treturn userdata the store handle (`llmspell.storage.Store`)
-- @raise bad argument for malformed input; an error object with `code`
--   `"io"` (also a missing directory, named), `"connection"`, `"version"`,
--   `"invalid"`, `"format"` (another program's SQLite file), `"integrity"`
--   (`verify` found damage) or `"not_found"` when it cannot open
storage.open = core.open

--- Every limit and name rule of the core (base/limits.h), read-only by
-- convention: `max_key` (KV key and prefix bytes), `max_id` (vector entry
-- id bytes), `max_name` (collection name bytes), `name_chars` (a Lua
-- pattern class of the characters a collection name may hold),
-- `max_scope`, `max_tenant` (storage.open's tenant), `max_tenant_id`
-- (storage.tenant ids), `max_section`, `max_dimension`, `max_k`, `min_m`,
-- `max_m`, `max_ef_construction`, `max_ef_search`, `max_threads`,
-- `max_ttl` (seconds), `max_time` (seconds either side of the epoch a
-- time may be), `max_depth` (128: nesting of metadata, filters, JSON
-- values and import records), `max_json_depth` (the same limit, its old
-- name), `max_batch`.
storage.limits = core.limits

--- The error codes error objects carry: `storage.error_codes.busy == "busy"`.
storage.error_codes = core.error_codes

--- Starts a metadata filter builder: `storage.filter():eq("k", v):gt("n", 1)`.
-- The builder is itself the filter table `col:search` takes.
storage.filter = require("llmspell.storage.filter").new

--- Creates an exporter for a store: writes everything the store holds (key-value
-- entries with their metadata and TTLs, vector collections with their
-- parameters, rs-llmspell passthrough sections) as one versioned JSON document,
-- streamed, so memory stays bounded whatever the size.
--
--    local exp = storage.exporter(db)
--    local stats = exp:to_file("backup.json", { progress = function(done, total, phase) end })
--    local json, stats = exp:to_string{ prefix = "user:", collections = { "docs" } }
--    exp:to_file(io.stdout)   -- an open file handle: written where it stands, left open
--
-- Options of `to_file` / `to_string`: `collections` (array of names, default
-- all), `prefix` (key-value prefix, default all), `sections` (false leaves out
-- the passthrough sections), `progress = function(done, total, phase)` (every
-- 1000 records and at the end; phase `"kv_store"`, `"vector_embeddings"`,
-- `"sections"`, `"done"`). Both read one consistent view (one transaction)
-- and return a stats table: `kv_entries`, `vectors`, `collections`,
-- `sections = { name = n }`, rs-llmspell's ImportStats fields (`agent_states`,
-- `sessions`, `workflow_states`, `patterns`, `events`, `hooks`, `entities`,
-- `relationships`, `artifacts`, `artifact_content`), `skipped`, `total`,
-- `bytes`, `seconds`.
--
-- @tparam userdata db an open store
-- @treturn userdata the exporter (`llmspell.storage.Exporter`; `close()`,
--   to-be-closed)
-- @raise error object `"closed"` when db (or later the exporter) is closed;
--   `"io"` when the file cannot be written (a partial file is removed);
--   `"not_found"` for an unknown collection name
storage.exporter = core.exporter

--- Creates an importer for a store: reads a document written by an exporter
-- (or by rs-llmspell: pgvector-text or JSON-array embeddings, records without
-- `collection` go to `vectors_<dimension>`) into the store, all or nothing.
--
--    local imp = storage.importer(db)
--    local stats = imp:from_file("backup.json", { on_conflict = "skip" })
--    local stats = imp:from_string(json, { dry_run = true })
--    imp:from_file(io.stdin)  -- an open file handle: read from where it stands, left open
--
-- Options: `on_conflict` = `"replace"` (default: the file wins) | `"skip"`
-- (the stored record wins) | `"error"` (raise `"conflict"`), `dry_run` (check
-- and count, write nothing), `batch_size` (records per backend write, default
-- 1000), `progress = function(done, total, phase, bytes, bytes_total)`
-- (`total` is nil: it is known only at the end). Returns the stats table
-- described at `storage.exporter`. The file must be strict JSON (RFC 8259)
-- with strict base64 (RFC 4648, padded); a record whose `expires_at` (any
-- time, 0 included) is not after now is skipped and counted in `skipped`.
--
-- @tparam userdata db an open store
-- @treturn userdata the importer (`llmspell.storage.Importer`; `close()`,
--   to-be-closed)
-- @raise error object `"format"` (malformed or truncated JSON, with the byte
--   offset; a record that does not check, named as in
--   `vector_embeddings.768[12] (id 'x')`), `"version"` (missing or not
--   `"1.0"`), `"conflict"`, `"io"`, `"closed"`; after any error the store
--   holds exactly what it held before
storage.importer = core.importer

--- Reads an export file record by record, in file order, in bounded memory:
--
--    for section, record in storage.records("backup.json") do
--      if section == "kv_store" then print(record.key, #record.value) end
--    end
--
-- Sections: `"kv_store"` (the entry's fields; `value` as bytes),
-- `"vector_collections"` (a declared collection), `"vector_embeddings"`
-- (`embedding` as packed little-endian float32 bytes, `dimension` always
-- set), and each passthrough section's items under its own name (a
-- section stored as one value comes as one record). The file is read as
-- `storage.importer` reads it: the same checks, the same messages.
-- @tparam string path an export file
-- @tparam[opt] table opts `sections = { names }`: only those sections
-- @return the iterator, its state, nil and the reader (closed when the
--   loop ends or breaks; `llmspell.storage.Records`)
-- @raise error objects `"io"`, `"format"` (with the byte), `"version"`
storage.records = core.records

--- Encodes a Lua value as JSON with the library's own codec: canonical
-- (object keys in byte order), integers apart from floats, one line.
-- @param v nil, boolean, finite number, UTF-8 string, or a table (an
--   array when its keys are 1..n or it is marked by `storage.array`)
-- @treturn string
-- @raise argument error naming the value that JSON cannot carry
storage.json_encode = core.json_encode

--- Decodes JSON text, strictly (RFC 8259: whitespace is space, tab, LF
-- and CR; strings strict UTF-8). Arrays come back marked by
-- `storage.array`; null becomes nil.
-- @tparam string s
-- @return the value
-- @raise error object `"format"` with the reason
storage.json_decode = core.json_decode

--- Marks a table as a JSON array, so it stays one when empty (in
-- `json_encode` and in stored metadata).
-- @tparam[opt] table t (a new table when absent)
-- @treturn table t
storage.array = core.array

--- A new random UUID v4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", from
-- OpenSSL's RAND_bytes): the ids the components make when none is given.
-- @treturn string
storage.uuid = core.uuid

--- Makes (does not raise) an error object like the library's own:
-- `error(storage.error("quota", "tenant acme is over max_kv_bytes"))`.
-- Error objects carry `code`, `message`, `backend` (every object a store,
-- collection, exporter or importer raises), `where` (the Lua caller's
-- position, `"script.lua:12"`, printed first by `tostring`) and, where
-- known, `sqlstate` or `sqlite_code`.
-- @tparam string code one of `storage.error_codes`
-- @tparam string message
-- @tparam[opt] table fields extra fields (e.g. `{ backend = "sqlite" }`)
-- @tparam[opt] integer level sets `where` as `error`'s level would: 1 the
--   function calling `storage.error`, 2 its caller; none without it
-- @treturn table the error object
storage.error = core.error

--- True when `v` is an error object raised by this library.
-- @param v any value (typically the second result of `pcall`)
-- @treturn boolean
storage.is_error = core.is_error

--- Opens a set of stores, one component to each (per-component backends,
-- "hot-swap"; docs/open_set.md):
--
--    local set <close> = storage.open_set{ default = "postgresql://app@db/llm",
--                                          sessions = "memory", vectors = "sqlite:vec.db",
--                                          tenant = "acme" }
--    local set2 = storage.open_set("storage.lua")   -- a Lua file holding the table
--
-- Each component (`kv`, `vectors`, `sessions`, `artifacts`, `agent_states`,
-- `workflows`, `graph`, `patterns`, `events`, `hook_history`, `api_keys`)
-- goes to the URL or `storage.open` options table its key names, else to
-- `default`; stores named by several components are opened once;
-- artifacts follow sessions; `tenant` applies to every store. The seeds'
-- names are read too: `sled` (SQLite), `hnsw` (the vectors' store),
-- `backend` for `default`, `vector_embeddings`, `event_log`, ...
-- @tparam table|string config the config, or a Lua file returning it
-- @treturn table the set (`llmspell.storage.Set`): the store's API routed
--   per component, `set.kv`, `set.vectors`, `set:store(c)`,
--   `set:describe()`, `set:close()`
-- @raise bad argument naming the key (unknown component, bad URL or
--   option, artifacts away from sessions); the store's error objects, with
--   `component`, when one cannot open
function storage.open_set(config)
  return require("llmspell.storage.set").open(config)
end

--- The pure-Lua layer, loaded on first use so a submodule may itself
-- require "llmspell.storage": `storage.tenant`, `storage.cache`,
-- `storage.migrate`, `storage.router` (also reachable as
-- `require "llmspell.storage.<name>"`), and `storage.episodic(db, opts)`
-- (llmspell.storage.episodic's `new`).
local SUBMODULES = { tenant = true, cache = true, migrate = true, router = true }
setmetatable(storage, {
  __index = function(t, k)
    if k == "episodic" then
      local new = require("llmspell.storage.episodic").new
      rawset(t, k, new)
      return new
    end
    if SUBMODULES[k] then
      local m = require("llmspell.storage." .. k)
      rawset(t, k, m)
      return m
    end
  end,
})

return storage
