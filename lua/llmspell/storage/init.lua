--- llmspell.storage: one storage API for Lua programs that work with LLMs.
--
-- The C core (`llmspell.storage.core`) does the work; this front module
-- returns one table with everything a user needs, so
-- `local storage = require "llmspell.storage"` is the only line to remember.
-- Later layers (collections, export/import, tenant helpers, caching) hang
-- off the same table.
--
-- @module llmspell.storage

local core = require "llmspell.storage.core"

local storage = {}

--- Library version.
storage._VERSION = core._VERSION

--- Opens a store.
--
-- `url` is `"memory"`, `"sqlite:PATH"`, `"sqlite::memory:"` or a libpq URL
-- (`"postgresql://user@host/db"`). The table form takes `backend`
-- (`"memory"|"sqlite"|"postgres"`), `url` (also a libpq conninfo string),
-- `path` (SQLite), `tenant` (default `"default"`) and backend options:
-- SQLite `synchronous`, `busy_timeout_ms`, `cache_size`; PostgreSQL `schema`.
-- Unknown options are refused.
--
-- @tparam string|table url a URL, or an options table
-- @tparam[opt] table options options for the URL form
-- @treturn userdata the store handle (`llmspell.storage.Store`)
-- @raise bad argument for malformed input; an error object with `code`
--   `"io"`, `"connection"`, `"version"` or `"invalid"` when it cannot open
storage.open = core.open

--- The error codes error objects carry: `storage.error_codes.busy == "busy"`.
storage.error_codes = core.error_codes

--- Starts a metadata filter builder: `storage.filter():eq("k", v):gt("n", 1)`.
-- The builder is itself the filter table `col:search` takes.
storage.filter = require("llmspell.storage.filter").new

--- True when `v` is an error object raised by this library.
-- @param v any value (typically the second result of `pcall`)
-- @treturn boolean
storage.is_error = core.is_error

return storage
