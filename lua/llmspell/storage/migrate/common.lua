--- llmspell.storage.migrate.common: what the migration recipes share.
--
-- Option checking, which side an error came from, byte order, temporary
-- files, the entries the recipes compare and write, and the ordered reader
-- over what a handle holds (through its export file, read by
-- llmspell.storage.migrate.files, or through the API).
--
-- @module llmspell.storage.migrate.common

local core = require "llmspell.storage.core"
local files = require "llmspell.storage.migrate.files"

local M = {}

local limits = core.limits
local DEFAULT_BATCH = 1000
local MAX_BATCH = limits.max_batch
local MAX_ENUMERATE = limits.max_k -- col:search's largest k: the API path's limit
-- What a migration can move: keys, vectors, each storage component (by
-- its export section), or "sections" (every component and passthrough
-- section).
local COMPONENT_NAMES = { "kv", "vectors", "sessions", "artifacts", "agent_states", "workflows",
                          "graph", "patterns", "events", "hook_history", "sections" }
local COMPONENT_SECTIONS = {
  sessions = "sessions", artifacts = "artifacts", agent_states = "agent_state",
  workflows = "workflow_states", graph = "knowledge_graph", patterns = "procedural_memory",
  events = "event_log", hook_history = "hook_history",
}
local DEFAULT_COMPONENTS = { "kv", "vectors", "sections" }
local COMPONENTS = {}
for _, name in ipairs(COMPONENT_NAMES) do COMPONENTS[name] = true end
-- A key prefix no key can have except one exact key of the longest length
-- (U+10FFFF is 4 bytes): the exporter has no "no keys" option, and records
-- past it are dropped anyway.
local NO_KEYS = string.rep("\u{10FFFF}", limits.max_key // 4)

-- Entry kinds, in the export file's order.
local KV, VEC = 1, 2

local byte, sub, format = string.byte, string.sub, string.format

-- ---------------------------------------------------------------- helpers

local clock = os.time
do
  local ok, system = pcall(require, "system")
  if ok and type(system) == "table" and system.gettime then clock = system.gettime end
end

local function argerror(n, fname, msg)
  error(format("bad argument #%d to '%s' (%s)", n, fname, msg), 0)
end

local function fail(code, fmt, ...)
  error(core.error(code, format(fmt, ...)), 0)
end

--- Checks an options table: a table or nil, with only the allowed fields.
local function check_opts(opts, n, fname, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    argerror(n, fname, "options table expected, got " .. type(opts))
  end
  for k in pairs(opts) do
    if not allowed[k] then argerror(n, fname, format("unknown option '%s'", tostring(k))) end
  end
  return opts
end

local function set_of(list)
  local t = {}
  for _, v in ipairs(list) do t[v] = true end
  return t
end

local function opt_batch(o, n, fname)
  local b = o.batch_size
  if b == nil then return DEFAULT_BATCH end
  if math.type(b) ~= "integer" or b < 1 or b > MAX_BATCH then
    argerror(n, fname, format("option 'batch_size' must be an integer in [1, %d]", MAX_BATCH))
  end
  return b
end

local function opt_type(o, name, want, n, fname)
  local v = o[name]
  if v ~= nil and type(v) ~= want then
    argerror(n, fname, format("option '%s': %s expected, got %s", name, want, type(v)))
  end
  return v
end

local function opt_enum(o, name, values, default, n, fname)
  local v = o[name]
  if v == nil then return default end
  for _, x in ipairs(values) do
    if v == x then return v end
  end
  argerror(n, fname, format("option '%s' must be \"%s\"", name, table.concat(values, "\", \"")))
end

--- The exporter's `sections` for a components set: true (every section)
-- with "sections", else the chosen components' section names, or false.
-- Sessions and artifacts go together (COMPONENTS.md: artifacts follow
-- sessions): an artifact refers to its session, and a session counts its
-- artifacts.
local function sections_of(set)
  if set.sections then return true end
  if set.sessions or set.artifacts then set.sessions, set.artifacts = true, true end
  local names = {}
  for _, c in ipairs(COMPONENT_NAMES) do
    if set[c] and COMPONENT_SECTIONS[c] then names[#names + 1] = COMPONENT_SECTIONS[c] end
  end
  return #names > 0 and names or false
end

--- Reads `components` (array of COMPONENT_NAMES) into a set.
local function opt_components(o, n, fname)
  local c = o.components
  if c == nil then return { kv = true, vectors = true, sections = true } end
  if type(c) ~= "table" then argerror(n, fname, "option 'components': array expected") end
  local set = {}
  for i, name in ipairs(c) do
    if not COMPONENTS[name] then
      argerror(n, fname, format("option 'components': entry %d must be \"%s\"", i,
                                table.concat(COMPONENT_NAMES, "\", \"")))
    end
    set[name] = true
  end
  return set
end

local function opt_names(o, n, fname)
  local c = o.collections
  if c == nil then return nil end
  if type(c) ~= "table" then argerror(n, fname, "option 'collections': array expected") end
  for i, name in ipairs(c) do
    if type(name) ~= "string" then
      argerror(n, fname, format("option 'collections': name %d is not a string", i))
    end
  end
  return c
end

local function opt_prefix(o, n, fname)
  local p = opt_type(o, "prefix", "string", n, fname)
  if p == "" then return nil end
  return p
end

--- True when h is a store handle of the C core (what exporters accept).
local function is_store(h)
  if type(h) ~= "userdata" then return false end
  local mt = getmetatable(h)
  return type(mt) == "table" and mt.__name == "llmspell.storage.Store"
end

local function check_handle(h, n, fname)
  local t = type(h)
  if t ~= "userdata" and t ~= "table" then
    argerror(n, fname, "store handle expected, got " .. t)
  end
end

--- Marks a library error object with the side it came from.
local function tag(e, side)
  if core.is_error(e) then
    if e.side == nil then e.side = side end
    if e.context == nil then e.context = side end
  end
  return e
end

--- Calls f(...) and tags any error with `side` before rethrowing it.
local function on_side(side, f, ...)
  local r = table.pack(pcall(f, ...))
  if r[1] then return table.unpack(r, 2, r.n) end
  error(tag(r[2], side), 0)
end

--- Byte-order comparison (-1, 0, 1) that does not depend on the locale
-- (`<` on strings uses strcoll).
local function cmp_bytes(a, b)
  if a == b then return 0 end
  local n = math.min(#a, #b)
  local i = 1
  while i + 15 <= n and sub(a, i, i + 15) == sub(b, i, i + 15) do i = i + 16 end
  while i <= n do
    local x, y = byte(a, i), byte(b, i)
    if x ~= y then return x < y and -1 or 1 end
    i = i + 1
  end
  return #a < #b and -1 or 1
end

-- A temporary file, removed when the variable holding it goes out of scope.
local TempFile = {
  __close = function(t)
    if t.path then os.remove(t.path) end
  end,
}

local function temp_file(dir)
  dir = dir or os.getenv("TMPDIR")
  local name = os.tmpname() -- reserves a unique name in /tmp
  if dir and dir ~= "" then
    dir = dir:gsub("/+$", "")
    if dir ~= "/tmp" and dir ~= "" then
      os.remove(name)
      name = format("%s/llmspell-migrate-%s.json", dir, name:match("[^/]*$"))
    end
  end
  return setmetatable({ path = name }, TempFile)
end

local function remove_temp(t)
  if t and t.path then
    os.remove(t.path)
    t.path = nil
  end
end

--- The exporter options that select `sel` (kv, vectors, prefix,
-- collections): no keys when kv is off, no collections when vectors is.
local function export_selection(sel, sections)
  local prefix, collections = sel.prefix, sel.collections
  if not sel.kv then prefix = NO_KEYS end
  if not sel.vectors then collections = {} end
  return { prefix = prefix, collections = collections, sections = sections }
end

-- ---------------------------------------------------------------- entries

local function us_to_s(us)
  if us == nil then return nil end
  return us / 1e6
end

-- Values and vectors stay as the file reader gives them (`enc`, `venc`)
-- until needed: two exports compare them as they are (equal exactly when
-- the bytes are), and only the API path and lookups decode (files.bytes).
local function kv_from_record(r)
  return { kind = KV, key = r.key, enc = r.value or "", expires_at = us_to_s(r.expires_at),
           ttl_known = true, kv_id = r.kv_id, metadata = r.metadata,
           created_us = r.created_at, updated_us = r.updated_at }
end

local function vec_from_record(r)
  return { kind = VEC, dim = r.dimension, collection = r.collection or
             ("vectors_" .. tostring(r.dimension)), id = r.id,
           venc = r.embedding or "", metadata = r.metadata or {},
           scope = r.scope or "global", event_time = us_to_s(r.event_time),
           expires_at = us_to_s(r.expires_at), created_us = r.created_at,
           updated_us = r.updated_at }
end

--- A key-value entry's value (bytes).
local function value_of(e)
  if e.value == nil then e.value = files.bytes(e.enc) end
  return e.value
end

--- A vector entry's vector (packed little-endian float32).
local function vector_of(e)
  if e.vector == nil then e.vector = files.bytes(e.venc) end
  return e.vector
end

local function pack_vector(v)
  if type(v) == "string" then return v end
  return string.pack("<" .. string.rep("f", #v), table.unpack(v))
end

local function vec_from_get(name, dim, e)
  return { kind = VEC, dim = dim, collection = name, id = e.id, vector = pack_vector(e.vector),
           metadata = e.metadata or {}, scope = e.scope or "global", event_time = e.event_time,
           expires_at = e.expires_at }
end

-- ---------------------------------------------------------------- readers

--- Order of entries: key-value entries by key, then vectors by
-- (dimension, collection, id), all bytewise: the export file's order.
local function order(a, b)
  if a.kind ~= b.kind then return a.kind < b.kind and -1 or 1 end
  if a.kind == KV then return cmp_bytes(a.key, b.key) end
  if a.dim ~= b.dim then return a.dim < b.dim and -1 or 1 end
  local c = cmp_bytes(a.collection, b.collection)
  if c ~= 0 then return c end
  return cmp_bytes(a.id, b.id)
end

local function collection_infos(h, names)
  local list = h:list_collections()
  local wanted = names and set_of(names)
  local out, by_name = {}, {}
  for _, c in ipairs(list) do
    if not wanted or wanted[c.name] then
      out[#out + 1] = c
      by_name[c.name] = c
    end
  end
  return out, by_name
end

--- The entries of a handle not backed by an exporter: keys through scan
-- (TTLs unknown), vectors of each collection through an exact search
-- (at most MAX_ENUMERATE per collection) and col:get.
local function api_entries(h, sel, emit)
  if sel.kv then
    for k, v in h:scan(sel.prefix) do emit({ kind = KV, key = k, value = v }) end
  end
  if not sel.vectors then return end
  local infos = collection_infos(h, sel.collections)
  table.sort(infos, function(a, b)
    if a.dimension ~= b.dimension then return a.dimension < b.dimension end
    return cmp_bytes(a.name, b.name) < 0
  end)
  for _, info in ipairs(infos) do
    if info.count > MAX_ENUMERATE then
      fail("invalid", "collection %s has %d entries: a handle that is not a store can only "
           .. "be read up to %d per collection (use store handles)", info.name, info.count,
           MAX_ENUMERATE)
    end
    if info.count > 0 then
      local col = h:collection(info.name)
      local q = {}
      for i = 1, info.dimension do q[i] = 1.0 end
      local hits = col:search(q, { k = info.count, strategy = "exact", exclude_expired = false,
                                   include_metadata = false })
      local ids = {}
      for i, hit in ipairs(hits) do ids[i] = hit.id end
      table.sort(ids, function(a, b) return cmp_bytes(a, b) < 0 end)
      for _, id in ipairs(ids) do
        local e = col:get(id, { exclude_expired = false })
        if e then emit(vec_from_get(info.name, info.dimension, e)) end
      end
    end
  end
end

--- Opens an ordered reader over what handle `h` holds (selection `sel`:
-- kv, vectors, prefix, collections). Store handles are read through one
-- export to a temporary file, streamed; others through the API. Returns a
-- reader: `r:next()` gives the next entry or nil; `r:close()` (also
-- to-be-closed) removes the file.
local Reader = {}
Reader.__index = Reader

local function open_reader(h, sel, side, tmpdir)
  local r = setmetatable({ side = side, count = 0 }, Reader)
  local producer
  if is_store(h) then
    r.tmp = temp_file(tmpdir)
    local exp = on_side(side, core.exporter, h)
    local ok, stats = pcall(exp.to_file, exp, r.tmp.path, export_selection(sel, false))
    exp:close()
    if not ok then
      remove_temp(r.tmp)
      error(tag(stats, side), 0)
    end
    r.export_stats = stats
    local path = r.tmp.path
    producer = function()
      files.each_record(path, function(section, rec)
        local kv = section == "kv_store"
        if kv and not sel.kv then return end
        coroutine.yield(kv and kv_from_record(rec) or vec_from_record(rec))
      end)
    end
  else
    producer = function() api_entries(h, sel, coroutine.yield) end
  end
  r.co = coroutine.create(producer)
  return r
end

-- The next entry in order, or nil at the end; checks the order.
function Reader:next()
  if not self.co then return nil end
  local ok, e = coroutine.resume(self.co)
  if not ok then
    self.co = nil
    error(tag(e, self.side), 0)
  end
  if e == nil then
    self.co = nil
    return nil
  end
  if self.last and order(self.last, e) >= 0 then
    fail("io", "%s: entries out of order after %s", self.side,
         e.kind == KV and ("key " .. e.key) or ("vector " .. e.id))
  end
  self.last = e
  self.count = self.count + 1
  return e
end

-- Stops reading and removes the temporary file. Idempotent.
function Reader:close()
  if self.co then
    coroutine.close(self.co)
    self.co = nil
  end
  remove_temp(self.tmp)
  self.tmp = nil
end

Reader.__close = Reader.close


local function count_keys(h, prefix)
  if not prefix then return h:stats().keys end
  local n = 0
  for _ in h:scan(prefix) do n = n + 1 end
  return n
end

--- What a handle holds within the selection: keys, collections and
-- their parameters.
local function census(h, sel, side)
  local c = { keys = 0, vectors = 0, collections = {}, params = {} }
  if sel.kv then c.keys = on_side(side, count_keys, h, sel.prefix) end
  if sel.vectors then
    local infos = on_side(side, collection_infos, h, sel.collections)
    for _, info in ipairs(infos) do
      c.collections[info.name] = info.count
      c.params[info.name] = info
      c.vectors = c.vectors + info.count
    end
  end
  return c
end

M.KV, M.VEC = KV, VEC
M.DEFAULT_BATCH, M.MAX_BATCH = DEFAULT_BATCH, MAX_BATCH
M.COMPONENT_NAMES, M.COMPONENTS = COMPONENT_NAMES, COMPONENTS
M.COMPONENT_SECTIONS, M.sections_of = COMPONENT_SECTIONS, sections_of
M.DEFAULT_COMPONENTS = DEFAULT_COMPONENTS
M.clock = clock
M.argerror, M.fail, M.check_opts, M.set_of = argerror, fail, check_opts, set_of
M.opt_batch, M.opt_type, M.opt_enum = opt_batch, opt_type, opt_enum
M.opt_components, M.opt_names, M.opt_prefix = opt_components, opt_names, opt_prefix
M.is_store, M.check_handle, M.tag, M.on_side = is_store, check_handle, tag, on_side
M.cmp_bytes, M.temp_file, M.export_selection = cmp_bytes, temp_file, export_selection
M.value_of, M.vector_of, M.vec_from_get = value_of, vector_of, vec_from_get
M.order, M.collection_infos, M.open_reader, M.census = order, collection_infos, open_reader,
  census

return M
