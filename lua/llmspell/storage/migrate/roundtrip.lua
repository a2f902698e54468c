--- llmspell.storage.migrate.roundtrip: does a store survive export and
-- import unchanged?
--
-- @module llmspell.storage.migrate.roundtrip

local core = require "llmspell.storage.core"
local common = require "llmspell.storage.migrate.common"

local M = {}

local argerror, check_opts, set_of = common.argerror, common.check_opts, common.set_of
local is_store = common.is_store
local copy = require("llmspell.storage.migrate.copy").copy
local verify = require("llmspell.storage.migrate.verify").verify
local format = string.format

--- Checks that a store survives export and import unchanged: copies it
-- (export path) into a scratch memory store and compares the two
-- (`migrate.verify` with `strict`: values, TTLs, kv_id, key-value
-- metadata and times, every vector field, collection parameters), and the
-- passthrough sections by count.
--
--    local ok, report = migrate.roundtrip(db)
--    if not ok then print(table.concat(report.problems, "\n")) end
--
-- @param db a store handle
-- @tparam[opt] table opts `sample`, `limit`, `tmpdir` (as for verify)
-- @treturn boolean true when the copy is identical
-- @treturn table report: the verify report plus `copied` (copy counts)
function M.roundtrip(db, opts)
  if not is_store(db) then
    argerror(1, "roundtrip", "store handle expected, got " .. type(db))
  end
  local o = check_opts(opts, 2, "roundtrip", set_of { "sample", "limit", "tmpdir" })
  local scratch <close> = core.open("memory")
  local counts = copy(db, scratch, { method = "export", tmpdir = o.tmpdir })
  local ok, report = verify(db, scratch, { strict = true, sample = o.sample,
                                                   limit = o.limit, tmpdir = o.tmpdir,
                                                   ttl_tolerance = 0 })
  report.copied = counts
  local es, is = counts.export.sections or {}, counts.import.sections or {}
  for name, n in pairs(es) do
    if (is[name] or 0) ~= n then
      report.problems[#report.problems + 1] = format("section %s: %d records exported, %d "
                                                     .. "imported", name, n, is[name] or 0)
      ok = false
    end
  end
  report.ok = ok
  return ok, report
end

return M
