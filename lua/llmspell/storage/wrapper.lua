--- llmspell.storage.wrapper: the one base the store wrappers build on.
--
-- `cache.wrap`, `tenant.open` and `migrate.dual_write` each return an
-- object with the store's API (and their collections the collection's
-- API) that changes a few methods: caching, tenant naming and quotas,
-- dual writes. This module knows the whole API once, read from the core's
-- own objects (so a method the core gains is on every wrapper at once), and
-- makes a wrapper class from a few hooks:
--
--    local Cache, check = wrapper.class {
--      name = "llmspell.storage.Cache", api = "store", file = THIS_FILE,
--      extras = { "cache_stats", "invalidate", "unwrap" },
--      closed = function(st) return st._closed end,
--      closed_error = function(st) return core.error("closed", "...") end,
--      inner = function(st) return st._db end,
--      on_close = function(st) ... end,
--      describe = function(st) return "..." end,
--    }
--    function Cache:get(key) local st = check(self, "get") ... end
--    wrapper.complete(Cache)   -- forwards every API method not defined
--
-- What the base does, once for every wrapper: the type and closed checks
-- (`check`), forwarding of each method the wrapper does not override (to
-- `inner(state)` with method syntax, so the core's messages name the
-- method and count arguments as the caller's call does, and point at the
-- caller's line), `close` (type check, then `on_close`), `__close`,
-- `__tostring` (`"<name> (<describe>)"`), `__name` and, for collections,
-- `__len` (`self:count()`). `complete` refuses a method that is neither in
-- the API nor in `extras`, so the method set of a wrapper is exactly the
-- store's (or collection's) plus its declared extras.
--
-- @module llmspell.storage.wrapper

-- The C core, not the front module: the front module requires the wrappers.
local core = require "llmspell.storage.core"

local wrapper = {}

local THIS_FILE = debug.getinfo(1, "S").short_src

local type, error, pcall, getmetatable, setmetatable = type, error, pcall, getmetatable,
  setmetatable
local format = string.format
local pack, unpack = table.pack, table.unpack

-- ---------------------------------------------------------------------------
-- The API, from the core's objects

-- The sorted names of the methods in a metatable's __index table (names
-- starting with "_" are not methods).
local function index_methods(index)
  local out = {}
  if type(index) == "table" then
    for k, v in pairs(index) do
      if type(k) == "string" and k:sub(1, 1) ~= "_" and type(v) == "function" then
        out[#out + 1] = k
      end
    end
  end
  table.sort(out)
  return out
end

local API = {}
do
  local db = core.open("memory")
  API.store = index_methods(getmetatable(db).__index)
  local col = db:create_collection("wrapper_api", { dimension = 1 })
  API.collection = index_methods(getmetatable(col).__index)
  db:close()
end

local function copy_list(t)
  local out = {}
  for i, v in ipairs(t) do out[i] = v end
  return out
end

--- The store's method names (`db:get`, ...), sorted.
-- @treturn {string,...}
function wrapper.store_methods() return copy_list(API.store) end

--- The collection's method names (`col:add`, ...), sorted.
-- @treturn {string,...}
function wrapper.collection_methods() return copy_list(API.collection) end

--- The method names of any object (a store, a collection, a wrapper): the
-- functions of its metatable's `__index` table, sorted.
-- @param obj
-- @treturn {string,...}
function wrapper.methods(obj)
  local mt = getmetatable(obj)
  return index_methods(type(mt) == "table" and mt.__index or nil)
end

-- ---------------------------------------------------------------------------
-- Errors

--- The name of a value's type: its metatable's `__name`, else `type(v)`.
function wrapper.typename(v)
  local mt = getmetatable(v)
  if type(mt) == "table" and type(mt.__name) == "string" then return mt.__name end
  return type(v)
end

--- The level, for `error` called by wrapper.user_level's caller, of the
-- first Lua function outside this file and `file`: errors point at the
-- user's line, whatever the depth of calls in between (tail calls,
-- transactions, pcall).
-- @tparam[opt] string file a wrapper module's `short_src`
-- @treturn integer
function wrapper.user_level(file)
  local level = 2
  while true do
    local info = debug.getinfo(level + 1, "S")
    if not info then return 0 end
    if info.what ~= "C" and info.short_src ~= THIS_FILE and info.short_src ~= file then
      return level
    end
    level = level + 1
  end
end

--- Raises "bad argument #n to 'fname' (msg)" at the user's line (see
-- `user_level`).
function wrapper.argerror(n, fname, msg, file)
  error(format("bad argument #%d to '%s' (%s)", n, fname, msg), wrapper.user_level(file))
end

-- The chunk name of the forwarding calls, whose position the core puts in
-- front of its bad-argument messages; it is replaced by the user's.
local CALL_CHUNK = "llmspell.storage.wrapper.call"
local CALL_PREFIX = "^" .. CALL_CHUNK:gsub("%p", "%%%0") .. ":%d+: (.*)$"

-- Re-raises an error of a forwarded call: a message positioned in the
-- forwarding call gets the user's position; error objects and other values
-- pass unchanged.
local function reraise(err, file)
  if type(err) == "string" then
    local rest = err:match(CALL_PREFIX)
    if rest then error(rest, wrapper.user_level(file)) end
  end
  error(err, 0)
end

-- `function(o, ...) return pack(o:name(...)) end`, written out for each
-- name: a call in method syntax that is not a tail call, which is what
-- lets the core's messages say `bad argument #1 to 'name'`.
local calls = {}
local function method_call(name)
  local f = calls[name]
  if not f then
    assert(name:match("^[%a_][%w_]*$"), "bad method name")
    local src = format("local pack = ... return function(o, ...) return pack(o:%s(...)) end",
                       name)
    f = assert(load(src, "=" .. CALL_CHUNK, "t", {}))(pack)
    calls[name] = f
  end
  return f
end

-- ---------------------------------------------------------------------------
-- Classes

-- class table -> its spec (hooks, extras, what complete() forwarded)
local specs = setmetatable({}, { __mode = "k" })

local function identity(x) return x end

--- Makes a wrapper class.
--
-- `spec` fields: `name` (the `__name`), `api` (`"store"` or
-- `"collection"`), `file` (the wrapper module's `short_src`: argument
-- errors point past its frames), `extras` (names of the methods it adds to
-- the API), and the hooks: `state(self)` (the wrapper's private state;
-- default the object itself), `closed(st)` (true when the wrapper, or what
-- it belongs to, is closed), `closed_error(st)` (the error object raised
-- then), `inner(st)` (the object a forwarded method is called on; absent
-- when `complete` is given its own forwarder), `on_close(st)` (what
-- `close` does; idempotence is up to it), `describe(st)` (the text inside
-- the parentheses of `tostring`, and optionally a text after them).
--
-- @tparam table spec
-- @treturn table the class (its methods go in it; it is their `__index`)
-- @treturn function `check(self, fname)`: the state of an open wrapper of
--   this class; raises a bad argument for anything else, and the
--   `closed_error` when it is closed
-- @treturn function `typed(self, fname)`: the state, checking only the type
function wrapper.class(spec)
  assert(API[spec.api], "api must be \"store\" or \"collection\"")
  local C = { __name = spec.name }
  C.__index = C
  local state = spec.state or identity
  local file = spec.file

  local function typed(self, fname)
    local st = getmetatable(self) == C and state(self)
    if not st then
      wrapper.argerror(1, fname, spec.name .. " expected, got " .. wrapper.typename(self), file)
    end
    return st
  end

  local function check(self, fname)
    local st = typed(self, fname)
    if spec.closed(st) then error(spec.closed_error(st), 0) end
    return st
  end

  --- Closes the wrapper (idempotent; also `<close>`); what it belongs to
  -- stays open.
  function C.close(self)
    return spec.on_close(typed(self, "close"))
  end

  C.__close = function(self) return C.close(self) end
  C.__tostring = function(self)
    local inside, after = spec.describe(state(self))
    return format("%s (%s)%s", spec.name, inside, after or "")
  end
  if spec.api == "collection" then
    C.__len = function(self) return self:count() end
  end
  specs[C] = { spec = spec, check = check, forwarded = {} }
  return C, check, typed
end

-- The default forwarder: the same method of `inner(state)`.
local function forwarder(entry, name)
  local spec, check = entry.spec, entry.check
  local inner, call, file = spec.inner, method_call(name), spec.file
  return function(self, ...)
    local o = inner(check(self, name))
    local r = pack(pcall(call, o, ...))
    if not r[1] then reraise(r[2], file) end
    local res = r[2]
    return unpack(res, 1, res.n)
  end
end

--- Finishes a class: every method of its API it does not define is
-- forwarded, by `forward(name)` (a function returning the method) when
-- given, else to `inner(state)`. Raises when the class defines a method
-- that is neither in the API nor in its extras.
-- @tparam table C a class from `wrapper.class`
-- @tparam[opt] function forward
-- @treturn table C
function wrapper.complete(C, forward)
  local entry = assert(specs[C], "not a wrapper class")
  local spec = entry.spec
  local allowed = {}
  for _, name in ipairs(API[spec.api]) do allowed[name] = true end
  for _, name in ipairs(spec.extras or {}) do allowed[name] = true end
  for k, v in pairs(C) do
    if type(v) == "function" and k:sub(1, 1) ~= "_" and not allowed[k] then
      error(format("%s: method '%s' is neither in the %s API nor in its extras", spec.name, k,
                   spec.api), 2)
    end
  end
  local forwarded = {}
  for _, name in ipairs(API[spec.api]) do
    if C[name] == nil then
      C[name] = forward and forward(name) or forwarder(entry, name)
      forwarded[#forwarded + 1] = name
    end
  end
  entry.forwarded = forwarded
  return C
end

--- What a wrapper adds to the API: its class's `extras`, sorted.
-- @param obj a wrapper (or its class)
-- @treturn ?{string,...} nil when obj is not a wrapper
function wrapper.extras(obj)
  local entry = specs[obj] or specs[getmetatable(obj)]
  if not entry then return nil end
  local out = copy_list(entry.spec.extras or {})
  table.sort(out)
  return out
end

--- The API methods a wrapper forwards unchanged (does not override),
-- sorted.
-- @param obj a wrapper (or its class)
-- @treturn ?{string,...} nil when obj is not a wrapper
function wrapper.forwarded(obj)
  local entry = specs[obj] or specs[getmetatable(obj)]
  if not entry then return nil end
  return copy_list(entry.forwarded)
end

return wrapper
