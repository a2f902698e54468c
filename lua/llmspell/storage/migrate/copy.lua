--- llmspell.storage.migrate.copy: copying one store into another.
--
-- Two paths: the source's exporter and the target's importer through a
-- temporary file ("export"), or the store API in batches ("api"); see
-- llmspell.storage.migrate.
--
-- @module llmspell.storage.migrate.copy

local core = require "llmspell.storage.core"
local common = require "llmspell.storage.migrate.common"

local M = {}

local KV, clock, argerror, check_opts = common.KV, common.clock, common.argerror, common.check_opts
local set_of, opt_batch, opt_type = common.set_of, common.opt_batch, common.opt_type
local opt_enum, opt_components = common.opt_enum, common.opt_components
local opt_names, opt_prefix, is_store = common.opt_names, common.opt_prefix, common.is_store
local check_handle, tag, on_side = common.check_handle, common.tag, common.on_side
local temp_file, export_selection = common.temp_file, common.export_selection
local value_of, vector_of = common.value_of, common.vector_of
local collection_infos, open_reader = common.collection_infos, common.open_reader
local format = string.format

local COPY_OPTS = set_of { "prefix", "collections", "components", "batch_size", "progress",
                           "on_conflict", "dry_run", "method", "tmpdir" }

local function copy_export(src, dst, o)
  local tmp <close> = temp_file(o.tmpdir)
  local t0 = clock()
  local progress = o.progress
  local exp = on_side("source", core.exporter, src)
  local eopts = export_selection(o, o.sections)
  if progress then
    eopts.progress = function(done, total, phase)
      progress(done, total, "export " .. tostring(phase))
    end
  end
  local est = on_side("source", exp.to_file, exp, tmp.path, eopts)
  exp:close()
  local imp = on_side("target", core.importer, dst)
  local iopts = { on_conflict = o.on_conflict, dry_run = o.dry_run, batch_size = o.batch_size }
  if progress then
    iopts.progress = function(done, total, phase, bytes, bytes_total)
      progress(done, total, "import " .. tostring(phase), bytes, bytes_total)
    end
  end
  local ist = on_side("target", imp.from_file, imp, tmp.path, iopts)
  imp:close()
  return { kv_entries = ist.kv_entries or 0, vectors = ist.vectors or 0,
           collections = ist.collections or 0, skipped = ist.skipped or 0,
           sections = ist.sections,
           method = "export", dry_run = o.dry_run, export = est, import = ist,
           seconds = clock() - t0 }
end

--- Makes sure dst has every selected collection of src (same dimension
-- and metric); returns the number of collections.
local function ensure_collections(src, dst, o)
  local infos = on_side("source", collection_infos, src, o.collections)
  local _, have = on_side("target", collection_infos, dst, nil)
  for _, c in ipairs(infos) do
    local d = have[c.name]
    if d then
      if d.dimension ~= c.dimension or d.metric ~= c.metric then
        error(tag(core.error("conflict", format(
          "collection %s is %d-d %s in the target, %d-d %s in the source", c.name,
          d.dimension, d.metric, c.dimension, c.metric)), "target"), 0)
      end
    elseif not o.dry_run then
      on_side("target", dst.create_collection, dst, c.name, {
        dimension = c.dimension, metric = c.metric, m = c.m,
        ef_construction = c.ef_construction, ef_search = c.ef_search })
    end
  end
  return #infos
end

local function copy_api(src, dst, o)
  local t0 = clock()
  local counts = { kv_entries = 0, vectors = 0, collections = 0, skipped = 0, expired = 0,
                   method = "api", dry_run = o.dry_run }
  if o.vectors then counts.collections = ensure_collections(src, dst, o) end
  local progress = o.progress
  local reader <close> = open_reader(src, o, "source", o.tmpdir)
  local ops, vbatch, vcol, vname = {}, {}, nil, nil

  local function flush_kv()
    if #ops == 0 then return end
    if o.on_conflict ~= "replace" then
      local keys = {}
      for i, op in ipairs(ops) do keys[i] = op.key end
      local have = on_side("target", dst.get_batch, dst, keys)
      local kept = {}
      for _, op in ipairs(ops) do
        if have[op.key] == nil then
          kept[#kept + 1] = op
        elseif o.on_conflict == "error" then
          error(tag(core.error("conflict", "key exists in the target: " .. op.key), "target"), 0)
        else
          counts.skipped = counts.skipped + 1
        end
      end
      ops = kept
    end
    if #ops > 0 and not o.dry_run then
      local now = clock()
      for _, op in ipairs(ops) do
        if op.expires_at then op.ttl, op.expires_at = math.max(op.expires_at - now, 1e-3), nil end
      end
      on_side("target", dst.batch, dst, ops)
    end
    counts.kv_entries = counts.kv_entries + #ops
    if progress then progress(counts.kv_entries, nil, "copy kv_store") end
    ops = {}
  end

  local function flush_vec()
    if #vbatch == 0 then return end
    if not vcol and not o.dry_run then vcol = on_side("target", dst.collection, dst, vname) end
    if o.on_conflict == "skip" and vcol then
      local kept = {}
      for _, e in ipairs(vbatch) do
        if on_side("target", vcol.get, vcol, e.id, { exclude_expired = false }) == nil then
          kept[#kept + 1] = e
        else
          counts.skipped = counts.skipped + 1
        end
      end
      vbatch = kept
    end
    if #vbatch > 0 and not o.dry_run then
      local write = o.on_conflict == "error" and vcol.add or vcol.upsert
      on_side("target", write, vcol, vbatch)
    end
    counts.vectors = counts.vectors + #vbatch
    if progress then progress(counts.vectors, nil, "copy vector_embeddings") end
    vbatch = {}
  end

  while true do
    local e = reader:next()
    if not e then break end
    if e.kind == KV then
      if e.expires_at and e.expires_at <= clock() then
        counts.expired = counts.expired + 1
      else
        ops[#ops + 1] = { op = "set", key = e.key, value = value_of(e),
                           expires_at = e.expires_at }
        if #ops >= o.batch_size then flush_kv() end
      end
    else
      if e.collection ~= vname then
        flush_vec()
        vname, vcol = e.collection, nil
      end
      vbatch[#vbatch + 1] = { id = e.id, vector = vector_of(e), metadata = e.metadata,
                              scope = e.scope, event_time = e.event_time,
                              expires_at = e.expires_at }
      if #vbatch >= o.batch_size then flush_vec() end
    end
  end
  flush_kv()
  flush_vec()
  counts.seconds = clock() - t0
  return counts
end

--- Copies one store's data into another.
--
-- Key-value entries (in key order), vector collections with their
-- parameters (dimension, metric, m, ef_construction, ef_search; empty
-- ones too) and entries (vectors, metadata, scopes, event times, expiry),
-- and the export file's passthrough sections, in bounded memory. See the
-- module comment for what each `method` carries.
--
--    local counts = migrate.copy(src, dst, { batch_size = 500,
--      progress = function(done, total, phase) print(phase, done, total) end })
--
-- @param src the source: a store handle (or, with method "api", any handle
--   with `scan`, `list_collections` and `collection`)
-- @param dst the target: a store handle (or any handle with `batch`,
--   `get_batch`, `create_collection` and `collection`)
-- @tparam[opt] table opts `prefix` (keys starting with it), `collections`
--   (array of names; default all), `components` (array of `"kv"`,
--   `"vectors"`, `"sessions"`, `"artifacts"`, `"agent_states"`,
--   `"workflows"`, `"graph"`, `"patterns"`, `"events"`, `"hook_history"`,
--   `"sections"` (every component and passthrough section); default
--   `{ "kv", "vectors", "sections" }`: all), `batch_size` (records per
--   write, default 1000), `on_conflict` (`"replace"` default, `"skip"`,
--   `"error"`), `dry_run` (read and check everything, write nothing),
--   `method` (`"auto"` default, `"export"`, `"api"`), `tmpdir` (for the
--   temporary file; default `$TMPDIR`, else /tmp), `progress =
--   function(done, total, phase [, bytes, bytes_total])` (phases
--   `"export kv_store"`, `"import vector_embeddings"`, ..., or
--   `"copy kv_store"` on the API path)
-- @treturn table counts: `{ kv_entries=, vectors=, collections=, skipped=,
--   method=, dry_run=, seconds= }`, plus `export` and `import` (the
--   exporter's and importer's stats) on the export path and `expired`
--   (keys that expired in flight) on the API path
-- @raise bad argument for wrong options; error objects with `side` =
--   `"source"` or `"target"` (e.g. `conflict` with `on_conflict = "error"`,
--   or a collection whose dimension differs in the target)
function M.copy(src, dst, opts)
  check_handle(src, 1, "copy")
  check_handle(dst, 2, "copy")
  local o = check_opts(opts, 3, "copy", COPY_OPTS)
  local comp = opt_components(o, 3, "copy")
  local c = {
    prefix = opt_prefix(o, 3, "copy"), collections = opt_names(o, 3, "copy"),
    kv = comp.kv, vectors = comp.vectors, sections = common.sections_of(comp),
    batch_size = opt_batch(o, 3, "copy"),
    progress = opt_type(o, "progress", "function", 3, "copy"),
    on_conflict = opt_enum(o, "on_conflict", { "replace", "skip", "error" }, "replace", 3,
                           "copy"),
    dry_run = opt_type(o, "dry_run", "boolean", 3, "copy") == true,
    tmpdir = opt_type(o, "tmpdir", "string", 3, "copy"),
  }
  local method = opt_enum(o, "method", { "auto", "export", "api" }, "auto", 3, "copy")
  if method == "auto" then
    method = (is_store(src) and is_store(dst)) and "export" or "api"
  elseif method == "export" and not (is_store(src) and is_store(dst)) then
    argerror(is_store(src) and 2 or 1, "copy", "method 'export' needs store handles")
  end
  if method == "export" then return copy_export(src, dst, c) end
  if type(c.sections) == "table" then
    argerror(3, "copy", "components other than \"kv\" and \"vectors\" need method \"export\""
             .. " (store handles on both sides)")
  end
  return copy_api(src, dst, c)
end

return M
