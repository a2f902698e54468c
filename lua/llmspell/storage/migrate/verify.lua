--- llmspell.storage.migrate.verify: comparing what two stores hold.
--
-- Both sides are read as ordered streams (llmspell.storage.migrate.common's
-- reader), so memory stays bounded; with `sample`, evenly spaced entries of
-- the source are looked up in the target.
--
-- @module llmspell.storage.migrate.verify

local core = require "llmspell.storage.core"
local common = require "llmspell.storage.migrate.common"
local sections = require "llmspell.storage.migrate.sections"

local M = {}

local KV, argerror, check_opts = common.KV, common.argerror, common.check_opts
local set_of, opt_batch, opt_type = common.set_of, common.opt_batch, common.opt_type
local opt_components, opt_names = common.opt_components, common.opt_names
local opt_prefix, check_handle, tag = common.opt_prefix, common.check_handle, common.tag
local on_side, cmp_bytes, value_of = common.on_side, common.cmp_bytes, common.value_of
local vector_of, vec_from_get, order = common.vector_of, common.vec_from_get, common.order
local open_reader, census = common.open_reader, common.census
local format = string.format

local VERIFY_OPTS = set_of { "prefix", "collections", "components", "sample", "allow_extra",
                             "values", "strict", "ttl_tolerance", "limit", "batch_size",
                             "progress", "tmpdir" }

local PARAMS = { "dimension", "metric", "m", "ef_construction", "ef_search" }

local function same(a, b)
  local ta = type(a)
  if ta ~= type(b) then return false end
  if ta == "number" then
    return math.type(a) == math.type(b) and (a == b or (a ~= a and b ~= b))
  end
  if ta ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function close_times(a, b, tol)
  if a == nil or b == nil then return a == b end
  return math.abs(a - b) <= tol
end

--- The fields in which two entries of the same key or id differ (nil when
-- none).
local function differences(a, b, cfg)
  local d = {}
  if a.kind == KV then
    if cfg.values then
      local differ
      if a.enc and b.enc then differ = a.enc ~= b.enc else differ = value_of(a) ~= value_of(b) end
      if differ then d[#d + 1] = "value" end
    end
    if cfg.values and a.ttl_known and b.ttl_known
        and not close_times(a.expires_at, b.expires_at, cfg.ttl_tolerance) then
      d[#d + 1] = "ttl"
    end
    if cfg.strict and a.ttl_known and b.ttl_known then
      if a.kv_id ~= b.kv_id then d[#d + 1] = "kv_id" end
      if not same(a.metadata, b.metadata) then d[#d + 1] = "metadata" end
      if a.created_us ~= b.created_us then d[#d + 1] = "created_at" end
      if a.updated_us ~= b.updated_us then d[#d + 1] = "updated_at" end
    end
  elseif cfg.values then
    local differ
    if a.venc and b.venc then
      differ = a.venc ~= b.venc
    else
      differ = vector_of(a) ~= vector_of(b)
    end
    if differ then d[#d + 1] = "vector" end
    if not same(a.metadata, b.metadata) then d[#d + 1] = "metadata" end
    if a.scope ~= b.scope then d[#d + 1] = "scope" end
    if not close_times(a.event_time, b.event_time, 1e-3) then d[#d + 1] = "event_time" end
    if not close_times(a.expires_at, b.expires_at, 1e-3) then d[#d + 1] = "expires_at" end
    if cfg.strict and a.created_us and b.created_us then
      if a.created_us ~= b.created_us then d[#d + 1] = "created_at" end
      if a.updated_us ~= b.updated_us then d[#d + 1] = "updated_at" end
    end
  end
  if #d == 0 then return nil end
  return d
end

local function new_section()
  return { checked = 0, missing = 0, extra = 0, different = 0, mismatches = {} }
end

--- Compares what two stores hold.
--
-- Counts (keys, collections, vectors per collection), each collection's
-- parameters, and every entry: key-value values (and, when both sides are
-- store handles, TTLs as absolute expiry times), vectors by id (vector
-- bytes, metadata, scope, event time, expiry). With `sample = n`, only n
-- keys and n vectors per collection, evenly spaced in key/id order (the
-- same ones every time) are compared; counts are always complete. Memory
-- stays bounded: both sides are read as ordered streams.
--
--    local ok, report = migrate.verify(src, dst, { sample = 100 })
--    for _, m in ipairs(report.kv.mismatches) do print(m.key, m.reason) end
--
-- @param src the reference handle
-- @param dst the handle checked against it
-- @tparam[opt] table opts `sample` (n, or nil/0: everything), `prefix`,
--   `collections`, `components` (as for copy), `allow_extra` (the target
--   may hold more keys, entries and collections; default false), `values`
--   (false: compare presence only, e.g. after `on_conflict = "skip"`;
--   default true), `strict` (also kv_id, key-value metadata, created_at
--   and updated_at: what the export path keeps), `ttl_tolerance` (seconds,
--   default 2: the API path writes remaining TTLs), `limit` (mismatches
--   listed per section, default 100; all are counted), `batch_size`,
--   `tmpdir`, `progress = function(done, total, phase)`
-- @treturn boolean true when nothing differs
-- @treturn table report: `{ ok=, mode = "full"|"sample", counts = { source =
--   { keys=, vectors=, collections = { name = n } }, target = {...} },
--   collections = { missing = {names}, extra = {names}, different = { {
--   name=, field=, source=, target= } } }, kv = { checked=, missing=,
--   extra=, different=, mismatches = { { key=, reason = "missing"|"extra"|
--   "different", fields = {...}, source_bytes=, target_bytes= } } },
--   vectors = { ..., mismatches = { { collection=, id=, reason=, fields= }
--   } }, components = { <section> = { checked=, missing=, extra=, different=,
--   mismatches = { { key=, reason=, fields= } } } } (the components'
--   records, compared by key: sessions by session_id, ...; only when
--   `components` names them or "sections"), problems = { "one line
--   each" }, truncated= }`
-- @raise error objects with `side` = `"source"` or `"target"`
function M.verify(src, dst, opts)
  check_handle(src, 1, "verify")
  check_handle(dst, 2, "verify")
  local o = check_opts(opts, 3, "verify", VERIFY_OPTS)
  local comp = opt_components(o, 3, "verify")
  local sample = o.sample
  if sample ~= nil and (math.type(sample) ~= "integer" or sample < 0) then
    argerror(3, "verify", "option 'sample' must be a non-negative integer")
  end
  if sample == 0 then sample = nil end
  local limit = o.limit or 100
  if math.type(limit) ~= "integer" or limit < 0 then
    argerror(3, "verify", "option 'limit' must be a non-negative integer")
  end
  local tol = o.ttl_tolerance or 2
  if type(tol) ~= "number" or tol < 0 then
    argerror(3, "verify", "option 'ttl_tolerance' must be a non-negative number")
  end
  local sel = { kv = comp.kv, vectors = comp.vectors, prefix = opt_prefix(o, 3, "verify"),
                collections = opt_names(o, 3, "verify") }
  local cfg = { values = opt_type(o, "values", "boolean", 3, "verify") ~= false,
                strict = opt_type(o, "strict", "boolean", 3, "verify") == true,
                allow_extra = opt_type(o, "allow_extra", "boolean", 3, "verify") == true,
                ttl_tolerance = tol }
  local batch_size = opt_batch(o, 3, "verify")
  local progress = opt_type(o, "progress", "function", 3, "verify")
  local tmpdir = opt_type(o, "tmpdir", "string", 3, "verify")

  local report = { mode = sample and "sample" or "full", sample = sample,
                   collections = { missing = {}, extra = {}, different = {} },
                   kv = new_section(), vectors = new_section(), problems = {},
                   truncated = false }
  local problems = report.problems
  local function problem(fmt, ...) problems[#problems + 1] = format(fmt, ...) end

  -- counts and parameters
  local sc, dc = census(src, sel, "source"), census(dst, sel, "target")
  report.counts = {
    source = { keys = sc.keys, vectors = sc.vectors, collections = sc.collections },
    target = { keys = dc.keys, vectors = dc.vectors, collections = dc.collections },
  }
  local function count_ok(a, b) return a == b or (cfg.allow_extra and b > a) end
  if sel.kv and not count_ok(sc.keys, dc.keys) then
    problem("keys: source %d, target %d", sc.keys, dc.keys)
  end
  local names = {}
  for name in pairs(sc.params) do names[#names + 1] = name end
  table.sort(names, function(a, b) return cmp_bytes(a, b) < 0 end)
  for _, name in ipairs(names) do
    local a, b = sc.params[name], dc.params[name]
    if not b then
      table.insert(report.collections.missing, name)
      problem("collection %s: missing in the target", name)
    else
      for _, f in ipairs(PARAMS) do
        if a[f] ~= b[f] then
          table.insert(report.collections.different,
                       { name = name, field = f, source = a[f], target = b[f] })
          problem("collection %s: %s is %s in the source, %s in the target", name, f,
                  tostring(a[f]), tostring(b[f]))
        end
      end
      if not count_ok(a.count, b.count) then
        table.insert(report.collections.different,
                     { name = name, field = "count", source = a.count, target = b.count })
        problem("collection %s: %d vectors in the source, %d in the target", name,
                a.count, b.count)
      end
    end
  end
  if sel.collections then
    local have = {}
    for _, n in ipairs(names) do have[n] = true end
    for _, n in ipairs(sel.collections) do
      if not have[n] then problem("collection %s: missing in the source", n) end
    end
  end
  if not cfg.allow_extra then
    local extra = {}
    for name in pairs(dc.params) do
      if not sc.params[name] then extra[#extra + 1] = name end
    end
    table.sort(extra, function(a, b) return cmp_bytes(a, b) < 0 end)
    for _, name in ipairs(extra) do
      table.insert(report.collections.extra, name)
      problem("collection %s: only in the target", name)
    end
  end

  -- entries
  local function mismatch(e, reason, fields, other)
    local sec = e.kind == KV and report.kv or report.vectors
    sec[reason] = sec[reason] + 1
    if #sec.mismatches >= limit then
      report.truncated = true
      return
    end
    local m = { reason = reason, fields = fields }
    if e.kind == KV then
      m.key = e.key
      if reason == "different" then
        m.source_bytes, m.target_bytes = #value_of(e), #value_of(other)
      end
    else
      m.collection, m.id = e.collection, e.id
    end
    sec.mismatches[#sec.mismatches + 1] = m
  end
  local function compare(a, b)
    local sec = a.kind == KV and report.kv or report.vectors
    sec.checked = sec.checked + 1
    if not b then return mismatch(a, "missing") end
    local d = differences(a, b, cfg)
    if d then mismatch(a, "different", d, b) end
    if progress and sec.checked % 1000 == 0 then
      progress(sec.checked, nil, a.kind == KV and "verify kv_store"
                                 or "verify vector_embeddings")
    end
  end

  -- each side reads the selected collections it has (a missing one is
  -- reported above, not an error)
  local function side_sel(params)
    if not sel.collections then return sel end
    local present = {}
    for _, n in ipairs(sel.collections) do
      if params[n] then present[#present + 1] = n end
    end
    return { kv = sel.kv, vectors = sel.vectors, prefix = sel.prefix, collections = present }
  end
  local rs <close> = open_reader(src, side_sel(sc.params), "source", tmpdir)
  if not sample then
    local rd <close> = open_reader(dst, side_sel(dc.params), "target", tmpdir)
    local a, b = rs:next(), rd:next()
    while a or b do
      local c = (b == nil) and -1 or (a == nil) and 1 or order(a, b)
      if c < 0 then
        compare(a, nil)
        a = rs:next()
      elseif c > 0 then
        if not cfg.allow_extra then mismatch(b, "extra") end
        b = rd:next()
      else
        compare(a, b)
        a, b = rs:next(), rd:next()
      end
    end
  else
    -- evenly spaced picks: the i-th of n is taken when floor(i*k/n) steps
    local seen, pending, vpending = {}, {}, {}
    local open_cols = {}
    local function flush_kv()
      if #pending == 0 then return end
      local keys = {}
      for i, e in ipairs(pending) do keys[i] = e.key end
      local got = on_side("target", dst.get_batch, dst, keys)
      for _, e in ipairs(pending) do
        local v = got[e.key]
        compare(e, v ~= nil and { kind = KV, key = e.key, value = v } or nil)
      end
      pending = {}
    end
    local function flush_vec()
      if #vpending == 0 then return end
      local name = vpending[1].collection
      local col = open_cols[name]
      if col == nil then
        local ok, c = pcall(dst.collection, dst, name)
        if not ok and not (core.is_error(c) and c.code == "not_found") then
          error(tag(c, "target"), 0)
        end
        col = ok and c or false
        open_cols = { [name] = col }
      end
      for _, e in ipairs(vpending) do
        local g = col and on_side("target", col.get, col, e.id, { exclude_expired = false })
        compare(e, g and vec_from_get(name, e.dim, g) or nil)
      end
      vpending = {}
    end
    while true do
      local e = rs:next()
      if not e then break end
      local group = e.kind == KV and "" or e.collection
      local total = e.kind == KV and sc.keys or (sc.collections[group] or 0)
      local i = (seen[group] or 0) + 1
      seen[group] = i
      if total > 0 and (i * sample) // total > ((i - 1) * sample) // total
          or (total == 0 and i <= sample) then
        if e.kind == KV then
          pending[#pending + 1] = e
          if #pending >= batch_size then flush_kv() end
        else
          if #vpending > 0 and vpending[1].collection ~= e.collection then flush_vec() end
          vpending[#vpending + 1] = e
          if #vpending >= batch_size then flush_vec() end
        end
      end
    end
    flush_kv()
    flush_vec()
  end

  -- the components' records (and passthrough sections), through each
  -- side's export of them alone
  local secs = o.components ~= nil and common.sections_of(comp)
  if secs and common.is_store(src) and common.is_store(dst) then
    report.components = sections.compare(src, dst, secs, { allow_extra = cfg.allow_extra,
                                                           values = cfg.values, limit = limit,
                                                           tmpdir = tmpdir },
                                         problem)
  elseif secs then
    argerror(3, "verify", "components other than \"kv\" and \"vectors\" need store handles")
  end

  for _, pair in ipairs { { "kv", "key" }, { "vectors", "vector" } } do
    local sec, what = report[pair[1]], pair[2]
    local function n_of(n) return format("%d %s%s", n, what, n == 1 and "" or "s") end
    if sec.missing > 0 then problem("%s missing in the target", n_of(sec.missing)) end
    if sec.extra > 0 then problem("%s only in the target", n_of(sec.extra)) end
    if sec.different > 0 then
      problem("%s %s", n_of(sec.different), sec.different == 1 and "differs" or "differ")
    end
  end
  report.ok = #problems == 0
  return report.ok, report
end

return M
