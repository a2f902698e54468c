--- llmspell.storage.migrate.dual: writing to two stores at once.
--
-- The dual-write handle of the hot swap, built on llmspell.storage.wrapper:
-- it has every method of a store (its collections every method of a
-- collection); writes go to both sides, reads follow the read mode, and
-- the methods it does not define read per the read mode.
--
-- @module llmspell.storage.migrate.dual

local core = require "llmspell.storage.core"
local wrapper = require "llmspell.storage.wrapper"
local common = require "llmspell.storage.migrate.common"

local M = {}

local argerror, check_opts = common.argerror, common.check_opts
local set_of, opt_type, opt_enum = common.set_of, common.opt_type, common.opt_enum
local check_handle, on_side, cmp_bytes = common.check_handle, common.on_side, common.cmp_bytes
local format = string.format

local THIS_FILE = debug.getinfo(1, "S").short_src

local function closed_error()
  return core.error("closed", "dual-write handle is closed")
end

-- `check(self, fname)`: the open dual-write handle.
local Dual, check = wrapper.class {
  name = "llmspell.storage.migrate.DualWrite", api = "store", file = THIS_FILE,
  extras = { "set_read", "set_write", "swap", "primary", "secondary", "dual_stats" },
  closed = function(self) return self._closed end,
  closed_error = closed_error,
  -- Closes the handle (and both stores when it was made with `own`).
  -- Idempotent.
  on_close = function(self)
    if self._closed then return end
    self._closed = true
    if self._own then
      pcall(self._s.close, self._s)
      self._p:close()
    end
  end,
  -- `tostring(h)`: both stores and the modes.
  describe = function(self)
    return format("primary %s, secondary %s, read %s, write %s", tostring(self._p),
                  tostring(self._s), self._read, self._write)
  end,
}

-- `check_col(self, fname)`: a collection of an open dual-write handle.
local DualCollection, check_col = wrapper.class {
  name = "llmspell.storage.migrate.DualCollection", api = "collection", file = THIS_FILE,
  closed = function(self) return self._dual._closed end,
  closed_error = closed_error,
  -- Closes both sides' collection objects. Idempotent.
  on_close = function(self)
    pcall(self._s.close, self._s)
    pcall(self._p.close, self._p)
  end,
  describe = function(self) return self._name end,
}

local READ_MODES = { "primary", "secondary", "fallback" }
local DUAL_OPTS = set_of { "read", "on_secondary_error", "log", "own", "write" }

local function default_log(err, op)
  io.stderr:write(format("llmspell.storage.migrate: secondary %s failed: %s\n", op,
                         tostring(err)))
end

--- A side's failure as an error object that says which side and which
-- operation failed; other values (bad-argument strings) pass unchanged.
local function side_error(e, side, op)
  if not core.is_error(e) then return e end
  local fields = { side = side, context = side, op = op, cause = e, backend = e.backend,
                   sqlstate = e.sqlstate, sqlite_code = e.sqlite_code }
  return core.error(e.code, format("%s %s failed: %s", side, op, tostring(e.message)), fields)
end

--- Handles a failure of the secondary side: raises (mode "raise") or logs
-- and counts it (mode "log").
local function secondary_failed(self, e, op)
  self._stats.secondary_errors = self._stats.secondary_errors + 1
  local err = side_error(e, "secondary", op)
  self._stats.last_secondary_error = err
  if self._on_error == "raise" then error(err, 0) end
  if self._log then self._log(err, op) end
end

--- Runs a write on the primary (raising on failure) and then, unless
-- writes go to the primary only, on the secondary.
local function dual_write_op(self, p, s, op, ...)
  local r = table.pack(pcall(p[op], p, ...))
  if not r[1] then error(side_error(r[2], "primary", op), 0) end
  if self._write == "both" then
    local ok, e = pcall(s[op], s, ...)
    if not ok then secondary_failed(self, e, op) end
  end
  self._stats.writes = self._stats.writes + 1
  return table.unpack(r, 2, r.n)
end

--- Runs a read per the read mode. `miss(result)` tells a miss; in
-- fallback mode a miss or a library error on the primary asks the
-- secondary; `merge(primary_result, ...)` may combine both (optional).
local function dual_read(self, p, s, op, miss, merge, ...)
  local mode = self._read
  if mode == "primary" then
    local r = table.pack(pcall(p[op], p, ...))
    if not r[1] then error(side_error(r[2], "primary", op), 0) end
    return table.unpack(r, 2, r.n)
  elseif mode == "secondary" then
    local r = table.pack(pcall(s[op], s, ...))
    if not r[1] then error(side_error(r[2], "secondary", op), 0) end
    return table.unpack(r, 2, r.n)
  end
  local r = table.pack(pcall(p[op], p, ...))
  if not r[1] and not core.is_error(r[2]) then error(r[2], 0) end -- a bad argument
  if r[1] and not miss(r[2]) then return table.unpack(r, 2, r.n) end
  self._stats.fallbacks = self._stats.fallbacks + 1
  local r2 = table.pack(pcall(s[op], s, ...))
  if r2[1] then
    if r[1] and merge then return merge(r[2], r2[2], ...) end
    return table.unpack(r2, 2, r2.n)
  end
  if not r[1] then error(side_error(r[2], "primary", op), 0) end
  secondary_failed(self, r2[2], op) -- raises in "raise" mode
  return table.unpack(r, 2, r.n)
end

--- Writes to two stores at once and reads from one or both: the seeds'
-- five-phase hot swap of a backend without downtime.
--
-- Every write (set, delete, the batches, clear, collection writes) goes to
-- `primary` first and then to `secondary`. A primary failure raises and
-- leaves the secondary untouched. A secondary failure (after the primary
-- has written) raises by default an error object with the same `code`,
-- `side = "secondary"`, `op` and `cause` (the original error), so the
-- caller can retry or repair; with `on_secondary_error = "log"` it is
-- logged and counted (`h:dual_stats()`) and the write succeeds.
-- `transaction` runs the function inside a transaction on each side
-- (secondary outside, primary inside): an error rolls both back; the
-- primary commits first, then the secondary (a failure of that last
-- commit is a secondary failure as above).
--
-- Reads follow `read`: `"primary"`, `"secondary"`, or `"fallback"` (the
-- primary, then the secondary when the primary errors or misses: `get`
-- nil, `exists` false, keys absent from `get_batch`; `list_keys` and
-- `scan` then give the union of both, in key order, the primary's value
-- winning).
--
-- The five phases, with `h = migrate.dual_write(new, old, { read =
-- "secondary" })`: 1. writes go to both, reads to the old store, while
-- `migrate.copy(old, new, { on_conflict = "skip" })` backfills and
-- `migrate.verify` checks; 2. `h:set_read("fallback")`: the new store,
-- falling back to the old; 3. `h:set_read("primary")`; 4.
-- `h:set_write("primary")`: stop writing the old store; 5. use the new
-- store alone and close the old one.
--
-- @param primary a store handle (or anything with the store API)
-- @param secondary a store handle
-- @tparam[opt] table opts `read` (`"primary"` default, `"secondary"`,
--   `"fallback"`), `on_secondary_error` (`"raise"` default or `"log"`),
--   `log = function(err, op)` (default: a line on stderr; false: silent),
--   `write` (`"both"` default, `"primary"`), `own` (close both stores
--   when the handle closes; default false)
-- @treturn table the handle: the whole key-value and collection API of a
--   store, plus `set_read(mode)`, `set_write(mode)`, `swap()`,
--   `primary()`, `secondary()`, `dual_stats()`
function M.dual_write(primary, secondary, opts)
  check_handle(primary, 1, "dual_write")
  check_handle(secondary, 2, "dual_write")
  local o = check_opts(opts, 3, "dual_write", DUAL_OPTS)
  local log = o.log
  if log == nil then log = default_log end
  if log ~= false and type(log) ~= "function" then
    argerror(3, "dual_write", "option 'log': function or false expected")
  end
  return setmetatable({
    _p = primary, _s = secondary,
    _read = opt_enum(o, "read", READ_MODES, "primary", 3, "dual_write"),
    _write = opt_enum(o, "write", { "both", "primary" }, "both", 3, "dual_write"),
    _on_error = opt_enum(o, "on_secondary_error", { "raise", "log" }, "raise", 3,
                         "dual_write"),
    _log = log or nil,
    _own = opt_type(o, "own", "boolean", 3, "dual_write") == true,
    _stats = { writes = 0, fallbacks = 0, secondary_errors = 0 },
    _closed = false,
  }, Dual)
end

--- Changes the read mode (`"primary"`, `"secondary"`, `"fallback"`).
-- @tparam string mode
function Dual:set_read(mode)
  check(self, "set_read")
  if mode == nil then argerror(1, "set_read", "read mode expected") end
  self._read = opt_enum({ read = mode }, "read", READ_MODES, nil, 1, "set_read")
end

--- Changes where writes go: `"both"` or `"primary"` (phase 4: stop
-- writing the old store).
-- @tparam string mode
function Dual:set_write(mode)
  check(self, "set_write")
  if mode == nil then argerror(1, "set_write", "write mode expected") end
  self._write = opt_enum({ write = mode }, "write", { "both", "primary" }, nil, 1, "set_write")
end

--- Swaps the roles of the two stores (the secondary becomes the primary).
function Dual:swap()
  check(self, "swap")
  self._p, self._s = self._s, self._p
end

--- The primary store. @return the handle
function Dual:primary() return self._p end

--- The secondary store. @return the handle
function Dual:secondary() return self._s end

--- Counters: `{ writes=, fallbacks=, secondary_errors=,
-- last_secondary_error=, read=, write= }`.
-- @treturn table
function Dual:dual_stats()
  local t = {}
  for k, v in pairs(self._stats) do t[k] = v end
  t.read, t.write, t.on_secondary_error = self._read, self._write, self._on_error
  return t
end

local function is_nil(v) return v == nil end
local function is_false(v) return not v end
local function never() return false end

local function merge_sorted(a, b)
  local out, i, j = {}, 1, 1
  while i <= #a or j <= #b do
    local c = (j > #b) and -1 or (i > #a) and 1 or cmp_bytes(a[i], b[j])
    if c <= 0 then
      out[#out + 1] = a[i]
      i = i + 1
      if c == 0 then j = j + 1 end
    else
      out[#out + 1] = b[j]
      j = j + 1
    end
  end
  return out
end

--- `value = h:get(key)` per the read mode.
function Dual:get(key)
  check(self, "get")
  return dual_read(self, self._p, self._s, "get", is_nil, nil, key)
end

--- `bool = h:exists(key)` per the read mode.
function Dual:exists(key)
  check(self, "exists")
  return dual_read(self, self._p, self._s, "exists", is_false, nil, key)
end

--- `map = h:get_batch(keys)`; in fallback mode keys the primary lacks are
-- asked of the secondary.
function Dual:get_batch(keys)
  check(self, "get_batch")
  local function miss(m)
    for _, k in ipairs(keys) do
      if m[k] == nil then return true end
    end
    return false
  end
  local function merge(pm, sm)
    for k, v in pairs(sm) do
      if pm[k] == nil then pm[k] = v end
    end
    return pm
  end
  return dual_read(self, self._p, self._s, "get_batch", miss, merge, keys)
end

--- `keys = h:list_keys([prefix])`; fallback mode: the union of both.
function Dual:list_keys(prefix)
  check(self, "list_keys")
  local function always() return true end
  return dual_read(self, self._p, self._s, "list_keys", always, merge_sorted, prefix)
end

--- `for k, v in h:scan([prefix])`; fallback mode: the union of both, in
-- key order, the primary's value winning.
function Dual:scan(prefix)
  check(self, "scan")
  if self._read ~= "fallback" then
    local side = self._read
    local h = side == "primary" and self._p or self._s
    return on_side(side, h.scan, h, prefix)
  end
  local p, s = self._p, self._s
  local okp, pf, ps, pc, pclose = pcall(p.scan, p, prefix)
  if not okp then
    if not core.is_error(pf) then error(pf, 0) end
    self._stats.fallbacks = self._stats.fallbacks + 1
    return on_side("secondary", s.scan, s, prefix)
  end
  local oks, sf, ss, sc, sclose = pcall(s.scan, s, prefix)
  if not oks then
    secondary_failed(self, sf, "scan")
    return pf, ps, pc, pclose
  end
  local pk, pv = pf(ps, pc)
  local sk, sv = sf(ss, sc)
  local closer = setmetatable({}, {
    __close = function()
      local a, b = pclose, sclose
      pclose, sclose = nil, nil
      if a then getmetatable(a).__close(a) end
      if b then getmetatable(b).__close(b) end
    end,
  })
  local function iter()
    if pk == nil and sk == nil then return nil end
    local c = (sk == nil) and -1 or (pk == nil) and 1 or cmp_bytes(pk, sk)
    local k, v
    if c <= 0 then
      k, v = pk, pv
      pk, pv = pf(ps, pk)
      if c == 0 then sk, sv = sf(ss, sk) end
    else
      k, v = sk, sv
      sk, sv = sf(ss, sk)
    end
    return k, v
  end
  return iter, nil, nil, closer
end

--- `h:set(key, value [, opts])` on both.
function Dual:set(...)
  check(self, "set")
  return dual_write_op(self, self._p, self._s, "set", ...)
end

--- `existed = h:delete(key)` on both (the primary's answer).
function Dual:delete(...)
  check(self, "delete")
  return dual_write_op(self, self._p, self._s, "delete", ...)
end

--- `n = h:set_batch(map [, opts])` on both.
function Dual:set_batch(...)
  check(self, "set_batch")
  return dual_write_op(self, self._p, self._s, "set_batch", ...)
end

--- `n = h:delete_batch(keys)` on both.
function Dual:delete_batch(...)
  check(self, "delete_batch")
  return dual_write_op(self, self._p, self._s, "delete_batch", ...)
end

--- `n = h:batch(ops)` on both.
function Dual:batch(...)
  check(self, "batch")
  return dual_write_op(self, self._p, self._s, "batch", ...)
end

--- `h:clear()` on both.
function Dual:clear()
  check(self, "clear")
  return dual_write_op(self, self._p, self._s, "clear")
end

--- `... = h:transaction(function(tx) ... end)`: a transaction on each
-- side; `tx` is the dual handle. See `dual_write` for the commit order.
function Dual:transaction(fn)
  check(self, "transaction")
  if type(fn) ~= "function" then
    argerror(1, "transaction", "function expected, got " .. type(fn))
  end
  local p, s = self._p, self._s
  local function on_primary()
    return table.pack(p:transaction(function() return fn(self) end))
  end
  if self._write ~= "both" then
    local r = on_side("primary", on_primary)
    return table.unpack(r, 1, r.n)
  end
  local ran, results = false, nil
  local ok, err = pcall(s.transaction, s, function()
    ran = true
    local okp, r = pcall(on_primary)
    if not okp then error({ primary_error = r }, 0) end
    results = r
  end)
  if ok then return table.unpack(results, 1, results.n) end
  if type(err) == "table" and getmetatable(err) == nil and err.primary_error ~= nil then
    -- fn or the primary failed: both rolled back; the original error
    error(err.primary_error, 0)
  end
  if results then -- the primary committed, the secondary's commit failed
    secondary_failed(self, err, "transaction")
    return table.unpack(results, 1, results.n)
  end
  if ran then error(err, 0) end
  -- the secondary could not start a transaction
  secondary_failed(self, err, "transaction")
  local r = on_side("primary", on_primary)
  return table.unpack(r, 1, r.n)
end

--- Every other store method (`stats`, `backend_type`, `tenant`,
-- `characteristics`, `migrations`, `check`, and any the core gains) is
-- store-level information: asked of the store per the read mode
-- (fallback: the primary, the secondary when the primary errors).
local function dual_info(op)
  return function(self, ...)
    check(self, op)
    return dual_read(self, self._p, self._s, op, never, nil, ...)
  end
end

-- collections

local function wrap_collection(self, name, pc, sc)
  return setmetatable({ _dual = self, _name = name, _p = pc, _s = sc }, DualCollection)
end

-- A stand-in for a side whose collection did not open: every method
-- raises the error it failed with, so the failure surfaces where that
-- side is used, under the usual rules (a write to the secondary follows
-- on_secondary_error; a fallback read only asks it on a miss).
local function failing(err)
  return setmetatable({}, {
    __index = function() return function() error(err, 0) end end,
  })
end

--- `col = h:create_collection(name, opts)` on both; returns a dual
-- collection (writes to both, reads per the handle's read mode).
function Dual:create_collection(name, opts)
  check(self, "create_collection")
  local pc = on_side("primary", self._p.create_collection, self._p, name, opts)
  local sc
  if self._write == "both" then
    local ok, c = pcall(self._s.create_collection, self._s, name, opts)
    if ok then
      sc = c
    else
      secondary_failed(self, c, "create_collection")
      sc = failing(c)
    end
  else
    local ok, c = pcall(self._s.collection, self._s, name)
    sc = ok and c or failing(c)
  end
  return wrap_collection(self, name, pc, sc)
end

--- `col = h:collection(name)`: opens the collection on both sides. The
-- side reads go to must have it (the primary in "primary" and "fallback"
-- mode); when the other side lacks it, using that side fails later, under
-- the usual rules. options as `db:collection` (`create = true` creates it
-- where it is missing, on both sides).
function Dual:collection(name, options)
  check(self, "collection")
  local p, s = self._p, self._s
  local okp, pc = pcall(p.collection, p, name, options)
  if not okp and not core.is_error(pc) then error(pc, 0) end -- a bad argument
  local oks, sc = pcall(s.collection, s, name, options)
  if self._read == "secondary" then
    if not oks then error(side_error(sc, "secondary", "collection"), 0) end
  elseif not okp then
    error(side_error(pc, "primary", "collection"), 0)
  end
  return wrap_collection(self, name, okp and pc or failing(pc), oks and sc or failing(sc))
end

--- `list = h:list_collections([prefix])` per the read mode (fallback:
-- the union by name, the primary's entry winning).
function Dual:list_collections(prefix)
  check(self, "list_collections")
  local function always() return true end
  local function merge(pl, sl)
    local seen, out = {}, {}
    for _, c in ipairs(pl) do
      seen[c.name] = true
      out[#out + 1] = c
    end
    for _, c in ipairs(sl) do
      if not seen[c.name] then out[#out + 1] = c end
    end
    table.sort(out, function(a, b) return cmp_bytes(a.name, b.name) < 0 end)
    return out
  end
  return dual_read(self, self._p, self._s, "list_collections", always, merge, prefix)
end

--- `existed = h:drop_collection(name)` on both (the primary's answer).
function Dual:drop_collection(name)
  check(self, "drop_collection")
  return dual_write_op(self, self._p, self._s, "drop_collection", name)
end

local function dc_write(op)
  return function(self, ...)
    check_col(self, op)
    return dual_write_op(self._dual, self._p, self._s, op, ...)
  end
end

local function dc_read(op, miss)
  return function(self, ...)
    check_col(self, op)
    return dual_read(self._dual, self._p, self._s, op, miss, nil, ...)
  end
end

local function empty(t) return type(t) == "table" and #t == 0 end

--- `n = col:add(entries [, opts])` on both.
DualCollection.add = dc_write("add")
--- `ids = col:insert(entries [, opts])` on both (the primary's ids).
DualCollection.insert = dc_write("insert")
--- `n = col:upsert(entries [, opts])` on both.
DualCollection.upsert = dc_write("upsert")
--- `n = col:delete(ids)` on both.
DualCollection.delete = dc_write("delete")
--- `col:update_metadata(id, metadata)` on both.
DualCollection.update_metadata = dc_write("update_metadata")
--- `n = col:delete_scope(scope)` on both.
DualCollection.delete_scope = dc_write("delete_scope")
--- `n = col:purge_expired()` on both.
DualCollection.purge_expired = dc_write("purge_expired")
--- `col:snapshot()` on both.
DualCollection.snapshot = dc_write("snapshot")
--- `entry = col:get(id [, opts])` per the read mode (fallback on nil).
DualCollection.get = dc_read("get", is_nil)
--- `results = col:search(vector, opts)` per the read mode (fallback on
-- an error or no results).
DualCollection.search = dc_read("search", empty)
--- The collection's name. @treturn string
function DualCollection:name() return self._name end

-- The storage components (sessions, artifacts, agent states, workflows,
-- patterns, graph, hook_history, events) are refused rather than handed out from one side:
-- their writes would
-- reach that side only, and the two stores would part silently. Copy them
-- with migrate.copy once writes have moved to the new store.
local function no_components(kind)
  return function(self)
    check(self, kind)
    error(core.error("invalid", format("%s are not dual-written: use them on one store and "
                                       .. "copy them with migrate.copy", kind)), 2)
  end
end
--- Refused (error object `invalid`): `sessions`, `artifacts`,
-- `agent_states`, `workflows`, `patterns`, `graph`, `hook_history`, `events` are not
-- dual-written.
Dual.sessions = no_components("sessions")
Dual.artifacts = no_components("artifacts")
Dual.agent_states = no_components("agent_states")
Dual.workflows = no_components("workflows")
Dual.patterns = no_components("patterns")
Dual.graph = no_components("graph")
Dual.hook_history = no_components("hook_history")
Dual.events = no_components("events")

-- Every other store method is store-level information (dual_info), and
-- every other collection method (`search_many`, `count`, `stats`,
-- `stats_for_scope`, `seq`, ...) a read per the read mode.
wrapper.complete(Dual, dual_info)
wrapper.complete(DualCollection, function(op) return dc_read(op, never) end)

return M
