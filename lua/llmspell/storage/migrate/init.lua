--- llmspell.storage.migrate: moving a tenant's data between stores.
--
-- Recipes for the seeds' "Migration Pattern" (Sled to PostgreSQL without
-- downtime): copy one store into another, verify that the copy holds what
-- the source holds, write to two stores at once during a hot swap, and
-- plan / execute a whole migration from a saved JSON plan.
--
--    local migrate = require "llmspell.storage.migrate"
--    local counts = migrate.copy(src, dst, { progress = function(done, total, phase) end })
--    local ok, report = migrate.verify(src, dst)
--    local h = migrate.dual_write(old, new, { read = "primary" })
--
-- Two copy paths, chosen by `method`:
--
-- * `"export"` (the default when both sides are store handles): the
--   source's exporter writes a temporary file, the target's importer reads
--   it. Streaming (memory stays bounded), lossless (values, TTLs as
--   absolute expiry times, key-value metadata and `kv_id`, creation and
--   update times, every vector field, empty collections with their HNSW
--   parameters, passthrough sections) and all or nothing on the target.
-- * `"api"` (when either side is not a store handle, e.g. a wrapper with
--   the store API, or on request): entries are read in order and written
--   with `batch` / `upsert` in batches of `batch_size`. Vectors keep their
--   scope, metadata, event time and expiry; keys keep their remaining TTL
--   when the source is a store handle (read from its export stream). Not
--   carried: key-value metadata, `kv_id`, creation times, passthrough
--   sections; each batch is atomic on its own, not the whole copy; and
--   from a source that is not a store handle, TTLs are lost (the
--   key-value API cannot read them) and collections are read through
--   `col:scan` (live entries, any number, streamed in id order; a
--   collection object without `scan` is read through an exact search,
--   at most `storage.limits.max_k` entries, else `invalid`).
--
-- Errors from either side are the library's error objects, with
-- `side = "source"|"target"` (dual-write: `"primary"|"secondary"`) and
-- `context` set to the same, so callers and the command-line tool can say
-- which side failed.
--
-- The recipes live one per file under llmspell/storage/migrate/: copy,
-- verify, dual (dual_write), plan (plan, save_plan, load_plan, execute) and
-- roundtrip; common holds what they share and files everything that reads
-- export files.
--
-- @module llmspell.storage.migrate

local copy = require "llmspell.storage.migrate.copy"
local verify = require "llmspell.storage.migrate.verify"
local dual = require "llmspell.storage.migrate.dual"
local plan = require "llmspell.storage.migrate.plan"
local roundtrip = require "llmspell.storage.migrate.roundtrip"

local migrate = {
  copy = copy.copy,
  verify = verify.verify,
  dual_write = dual.dual_write,
  plan = plan.plan,
  save_plan = plan.save_plan,
  load_plan = plan.load_plan,
  execute = plan.execute,
  roundtrip = roundtrip.roundtrip,
}

return migrate
