--- llmspell.storage.migrate.files: reading export files, in one place.
--
-- The migration recipes read what a store holds through its own export
-- file (one consistent view, streamed). Everything that reads such a file
-- is here, behind two functions, both on the core's reader
-- (`storage.records`, the import's own parser):
--
-- * `files.each_record(path, fn)`: calls `fn(section, record)` for every
--   record of `data.kv_store` (section `"kv_store"`) and of
--   `data.vector_embeddings.<dimension>` (section `"vector_embeddings"`), in
--   file order, in bounded memory. A record has the file's fields
--   (`key`, `value`, `expires_at`, ...; `id`, `dimension`, `embedding`,
--   `metadata`, ...), integers as integers, floats as floats; `value` and
--   `embedding` are already bytes.
-- * `files.bytes(field)`: the bytes of a record's `value` or `embedding`
--   as `each_record` gave it (the field itself). Callers compare fields as
--   they are and ask for bytes only where they write or measure, so the
--   two stay apart should the record's form change again.
--
-- @module llmspell.storage.migrate.files

local core = require "llmspell.storage.core"

local files = {}

local SECTIONS = { sections = { "kv_store", "vector_embeddings" } }

--- Streams an export file, calling fn(section, record) with each record of
-- data.kv_store ("kv_store") and data.vector_embeddings.* ("vector_embeddings"),
-- in file order. Memory: one chunk of the file plus its records.
-- @tparam string path
-- @tparam function fn
-- @raise error objects `io` (unreadable), `format` (malformed, truncated),
--   `version`
function files.each_record(path, fn)
  for section, record in core.records(path, SECTIONS) do
    fn(section, record)
  end
end

--- The bytes of a `value` or `embedding` field as each_record gave it.
-- @tparam string field
-- @treturn string
function files.bytes(field)
  return field
end

return files
