--- A read cache in front of a store, with the store's own API.
--
--    local cache = require "llmspell.storage.cache"
--    local db = storage.open("sqlite:data/app.db")
--    local c = cache.wrap(db, { capacity = 10000, ttl = 30, negative_ttl = 5 })
--    c:set("user:1", "Ada")          -- write-through
--    print(c:get("user:1"))          -- from the cache when it holds the key
--    print(c:stats().hits)
--
-- `cache.wrap` returns a handle with every method of `db` (built on
-- llmspell.storage.wrapper: the methods it does not change are forwarded),
-- plus `cache_stats`, `invalidate` and `unwrap`. Reads go through a
-- least-recently-used cache (a hash table and a doubly linked list: every
-- operation is O(1)); writes go to the store first and then update or drop
-- the entries they affect. What the cache promises:
--
-- * Writes made through the wrapper are seen at once by its reads, including
--   after a rolled-back (or partly rolled-back, nested) `transaction`.
-- * A value written through the wrapper with a `ttl` is never served after
--   that TTL: an entry lives `min(ttl, the value's own ttl)`.
-- * Writes made elsewhere (another handle, another process, the raw `db`,
--   a TTL set elsewhere running out) are seen after at most `ttl` seconds
--   (`negative_ttl` for a cached miss). Without `ttl` an entry lives until it
--   is evicted, invalidated or overwritten through the wrapper.
--
-- @module llmspell.storage.cache

local core = require "llmspell.storage.core"
local wrapper = require "llmspell.storage.wrapper"

local cache = {}

local DEFAULT_CAPACITY = 1000
local DEFAULT_SEARCH_CAPACITY = 100
local MIN_TTL_KEYS = 1024
-- Seconds our clock may trail the store's (os.time() truncates).
local CLOCK_MARGIN = 2

local THIS_FILE = debug.getinfo(1, "S").short_src
-- Nesting of the search options a cache key is made of: a filter deeper
-- than the core takes is not cached (the search refuses it).
local MAX_KEY_DEPTH = core.limits.max_depth

local huge = math.huge
local type, next, pairs, ipairs, pcall, error = type, next, pairs, ipairs, pcall, error
local setmetatable, tostring = setmetatable, tostring
local string_format, string_pack, string_rep = string.format, string.pack, string.rep
local table_concat, table_sort, table_pack, table_unpack =
  table.concat, table.sort, table.pack, table.unpack
local math_type, math_max = math.type, math.max

-- The default clock: lua-system's wall clock when it is installed (a test
-- dependency, not a runtime one), else os.time(). Both count seconds since the
-- epoch, as the store's TTLs do. os.time() truncates, which only makes
-- entries expire early, never late.
local default_clock
do
  local ok, system = pcall(require, "system")
  if ok and type(system) == "table" and type(system.gettime) == "function" then
    default_clock = system.gettime
  else
    default_clock = os.time
  end
end

---------------------------------------------------------------------------
-- LRU: a hash table of nodes, and a circular doubly linked list through a
-- sentinel (`head.nx` is the most recently used node, `head.pv` the least).
-- A node is { k = key, v = value, exp = expiry or nil, pv = prev, nx = next }.

local Lru = {}
Lru.__index = Lru

local function lru_new(capacity)
  local head = {}
  head.pv, head.nx = head, head
  return setmetatable({ map = {}, head = head, size = 0, capacity = capacity }, Lru)
end

local function unlink(node)
  node.pv.nx, node.nx.pv = node.nx, node.pv
end

local function push_front(head, node)
  local first = head.nx
  node.pv, node.nx = head, first
  first.pv, head.nx = node, node
end

-- Marks node as the most recently used.
function Lru:touch(node)
  local head = self.head
  if head.nx ~= node then
    unlink(node)
    push_front(head, node)
  end
end

function Lru:remove(node)
  unlink(node)
  self.map[node.k] = nil
  self.size = self.size - 1
end

-- Inserts or replaces key; returns how many entries were evicted (0 or 1).
function Lru:put(key, value, exp)
  local node = self.map[key]
  if node then
    node.v, node.exp = value, exp
    self:touch(node)
    return 0
  end
  node = { k = key, v = value, exp = exp }
  self.map[key] = node
  push_front(self.head, node)
  self.size = self.size + 1
  if self.size > self.capacity then
    self:remove(self.head.pv)
    return 1
  end
  return 0
end

-- Drops every entry; returns how many there were.
function Lru:flush()
  local n = self.size
  local head = self.head
  head.pv, head.nx = head, head
  self.map, self.size = {}, 0
  return n
end

---------------------------------------------------------------------------
-- Option checking

-- Raises "bad argument #narg to 'fname' (msg)"; `level` as error() counts
-- it from argerror's caller.
local function argerror(fname, narg, msg, level)
  error(string_format("bad argument #%d to '%s' (%s)", narg, fname, msg), level + 1)
end

local function check_fields(t, allowed, fname, narg, where)
  for k in pairs(t) do
    if type(k) ~= "string" or not allowed[k] then
      argerror(fname, narg, string_format("unknown option '%s'%s", tostring(k), where), 3)
    end
  end
end

local function opt_int(t, name, default, fname, narg)
  local v = t[name]
  if v == nil then return default end
  if math_type(v) ~= "integer" or v < 1 then
    argerror(fname, narg, string_format("%s must be a positive integer", name), 3)
  end
  return v
end

-- A positive number of seconds, or nil for none (nil, false, math.huge; and
-- 0 when zero_is_none: `negative_ttl = 0` reads naturally as "off", while
-- `ttl = 0` could mean either "never cache" or "no limit", so it is refused).
local function opt_seconds(t, name, fname, narg, zero_is_none)
  local v = t[name]
  if v == nil or v == false or v == huge or (v == 0 and zero_is_none) then return nil end
  if type(v) ~= "number" or not (v > 0) then
    argerror(fname, narg, string_format("%s must be a positive number of seconds", name), 3)
  end
  return v
end

---------------------------------------------------------------------------
-- The cached store

local function closed_error()
  return core.error("closed", "cache wrapper is closed")
end

-- Forgets the cache (every entry, remembered TTL and cached search
-- result) and closes the wrapper: later calls raise a `closed` error. The
-- store is NOT closed (it belongs to whoever opened it); nor are its
-- collections. Idempotent; also `__close`.
local function close_cache(self)
  if self._closed then return end
  self._closed = true
  self._lru:flush()
  for _, w in pairs(self._cols) do w._lru:flush() end
  self._cols, self._expiry, self._expiry_n, self._touched, self._tx_cols = {}, {}, 0, {}, {}
end

-- `llmspell.storage.Cache (3/1000 entries, 5 hits, 2 misses) over <store>`.
local function describe_cache(self)
  if self._closed then return "closed" end
  local ok, inner = pcall(tostring, self._db)
  return string_format("%d/%d entries, %d hits, %d misses", self._lru.size,
                       self._lru.capacity, self._hits, self._misses),
         " over " .. (ok and inner or "?")
end

-- `check(self, name)`: the open wrapper (raises for anything else or a
-- closed one); `name` is the method, for the message.
local Cache, check = wrapper.class {
  name = "llmspell.storage.Cache", api = "store", file = THIS_FILE,
  extras = { "cache_stats", "invalidate", "unwrap" },
  closed = function(self) return self._closed end,
  closed_error = closed_error,
  inner = function(self) return self._db end,
  on_close = close_cache,
  describe = describe_cache,
}

-- Forgets the cached results and closes the wrapper (later calls raise
-- `closed`); the collection itself stays open, as it belongs to the store.
-- Idempotent; also `__close`.
local function close_collection(self)
  if self._closed then return end
  self._closed = true
  self._lru:flush()
  local cols = self._owner._cols
  for name, w in pairs(cols) do
    if w == self then cols[name] = nil end
  end
end

local function describe_collection(self)
  if self._closed then return "closed" end
  local ok, inner = pcall(tostring, self._col)
  return string_format("%d/%d results", self._lru.size, self._lru.capacity),
         " over " .. (ok and inner or "?")
end

local CachedCollection, check_col = wrapper.class {
  name = "llmspell.storage.CachedCollection", api = "collection", file = THIS_FILE,
  extras = { "cache_stats", "invalidate", "unwrap" },
  closed = function(self) return self._closed or self._owner._closed end,
  closed_error = closed_error,
  inner = function(self) return self._col end,
  on_close = close_collection,
  describe = describe_collection,
}

--- Wraps a store in a read cache.
--
-- Options (all optional; unknown ones are refused):
--
-- * `capacity`: entries the key-value cache holds (default 1000); positive
--   and negative entries both count.
-- * `ttl`: seconds an entry may be served after it was read (default: no
--   limit). Bounds how long a write made elsewhere stays unseen.
-- * `negative_ttl`: seconds a miss (a missing key) is remembered (default,
--   or 0: misses are not cached).
-- * `search`: `false`/`nil` (default: `collection()` and
--   `create_collection()` return the store's own collection objects),
--   `true`, or `{ capacity = 100, ttl = seconds, verify = true, copy = true }`
--   to cache `col:search` results (see `CachedCollection:search`).
-- * `clock`: a function returning the time in seconds (default lua-system's
--   `gettime` when installed, else `os.time`); for tests.
-- * `max_ttl_keys`: how many keys written through the wrapper with a TTL it
--   remembers the expiry of (default `max(4 * capacity, 1024)`); past that,
--   values of keys it does not remember are read through uncached until the
--   last forgotten TTL has run out.
--
-- @tparam userdata db an open store (or anything with the store's API)
-- @tparam[opt] table options
-- @treturn llmspell.storage.Cache the wrapper
-- @raise bad argument for a malformed option
function cache.wrap(db, options)
  if db == nil or (type(db) ~= "userdata" and type(db) ~= "table") then
    argerror("wrap", 1, "store expected, got " .. type(db), 2)
  end
  if options ~= nil and type(options) ~= "table" then
    argerror("wrap", 2, "table expected, got " .. type(options), 2)
  end
  local o = options or {}
  check_fields(o, { capacity = true, ttl = true, negative_ttl = true, search = true,
                    clock = true, max_ttl_keys = true }, "wrap", 2, "")
  local capacity = opt_int(o, "capacity", DEFAULT_CAPACITY, "wrap", 2)
  local clock = o.clock or default_clock
  if type(clock) ~= "function" then argerror("wrap", 2, "clock must be a function", 2) end
  local search = o.search
  if search == true then search = {} end
  if search then
    if type(search) ~= "table" then
      argerror("wrap", 2, "search must be false, true or a table", 2)
    end
    check_fields(search, { capacity = true, ttl = true, verify = true, copy = true }, "wrap", 2,
                 " in search")
    search = {
      capacity = opt_int(search, "capacity", DEFAULT_SEARCH_CAPACITY, "wrap", 2),
      ttl = opt_seconds(search, "ttl", "wrap", 2),
      verify = search.verify ~= false,
      copy = search.copy ~= false,
    }
  else
    search = nil
  end
  local self = setmetatable({
    _db = db,
    _lru = lru_new(capacity),
    _ttl = opt_seconds(o, "ttl", "wrap", 2),
    _negative_ttl = opt_seconds(o, "negative_ttl", "wrap", 2, true),
    _clock = clock,
    _search = search,
    _cols = {},           -- collection name -> CachedCollection
    -- the db-side expiry of keys written through the wrapper with a TTL
    _expiry = {}, _expiry_n = 0, _expiry_ops = 0,
    _max_ttl_keys = opt_int(o, "max_ttl_keys", math_max(4 * capacity, MIN_TTL_KEYS), "wrap", 2),
    _unsure_until = -huge, -- while clock() < this, untracked keys are not cached
    -- transactions: one level per open wrapper:transaction
    _tx = {}, _depth = 0, _touched = {}, _tx_cleared = false, _tx_cols = {},
    _closed = false,
    _hits = 0, _misses = 0, _negative_hits = 0, _evictions = 0, _expired = 0,
    _invalidations = 0,
    _shits = 0, _smisses = 0, _sevictions = 0, _sexpired = 0, _sinvalidations = 0,
  }, Cache)
  return self
end

-- Remembering the store's expiry of keys written with a TTL ------------

-- Drops remembered expiries that have passed.
local function sweep_expiry(self, now)
  local t, n = self._expiry, self._expiry_n
  for k, e in pairs(t) do
    if e <= now then
      t[k] = nil
      n = n - 1
    end
  end
  self._expiry_n = n
end

local function track(self, key, exp, now)
  local t = self._expiry
  if t[key] ~= nil then
    t[key] = exp
    return
  end
  local limit = self._max_ttl_keys
  self._expiry_ops = self._expiry_ops + 1
  -- A sweep walks the table: at most once per limit/2 tracked writes, so
  -- the cost per write stays O(1) amortised.
  if self._expiry_n >= limit and self._expiry_ops >= limit // 2 then
    sweep_expiry(self, now)
    self._expiry_ops = 0
  end
  if self._expiry_n >= limit then
    -- Full: forget this key, and stop caching keys we know nothing about
    -- until its TTL has run out (it might be any of them).
    if exp > self._unsure_until then self._unsure_until = exp end
    return
  end
  t[key] = exp
  self._expiry_n = self._expiry_n + 1
end

local function untrack(self, key)
  local t = self._expiry
  if t[key] ~= nil then
    t[key] = nil
    self._expiry_n = self._expiry_n - 1
  end
end

-- Read-through -------------------------------------------------------------

-- Caches what the store returned for key (value or nil), read at `now`.
local function fill(self, key, value, now)
  if self._depth > 0 and (self._tx_cleared or self._touched[key]) then return end
  local exp
  if value == nil then
    local nttl = self._negative_ttl
    if not nttl then return end
    exp = now + nttl
  else
    local ttl = self._ttl
    exp = ttl and now + ttl
    local dexp = self._expiry[key]
    if dexp and dexp <= now then
      -- The TTL we set has run out, yet the store has a value: rewritten
      -- since (by someone else), or the clocks disagree by a little. Past
      -- the margin the remembered expiry is of no use any more.
      if now < dexp + CLOCK_MARGIN then return end
      untrack(self, key)
      dexp = nil
    end
    if dexp then
      if not exp or dexp < exp then exp = dexp end
    elseif now < self._unsure_until then
      return
    end
  end
  self._evictions = self._evictions + self._lru:put(key, value, exp)
end

-- The live node for key, or nil (dropping it when expired).
local function lookup(self, key)
  local lru = self._lru
  local node = lru.map[key]
  if node then
    local exp = node.exp
    if exp and self._clock() >= exp then
      lru:remove(node)
      self._expired = self._expired + 1
      return nil
    end
    local head = lru.head
    if head.nx ~= node then -- to the front (Lru:touch, inlined: this is the hot path)
      local pv, nx = node.pv, node.nx
      pv.nx, nx.pv = nx, pv
      local first = head.nx
      node.pv, node.nx = head, first
      first.pv, head.nx = node, node
    end
    self._hits = self._hits + 1
    if node.v == nil then self._negative_hits = self._negative_hits + 1 end
  end
  return node
end

-- After writes -------------------------------------------------------------

-- Key was set to value (with the store-side `dbttl`, or none) at `now`.
local function after_set(self, key, value, dbttl, now)
  local dexp = dbttl and now + dbttl
  local lru = self._lru
  local node = lru.map[key]
  if self._depth > 0 then
    -- Inside a transaction the write may still be rolled back: drop the
    -- entry, keep the key out of the cache until the outermost transaction
    -- ends, and journal the expiry for the commit.
    if node then
      lru:remove(node)
      self._invalidations = self._invalidations + 1
    end
    self._touched[key] = true
    self._tx[self._depth].journal[key] = dexp or false
    return
  end
  if dexp then track(self, key, dexp, now) else untrack(self, key) end
  if node then
    self._invalidations = self._invalidations + 1
    if type(value) == "string" then
      local ttl = self._ttl
      local exp = ttl and now + ttl
      if dexp and (not exp or dexp < exp) then exp = dexp end
      node.v, node.exp = value, exp
      lru:touch(node)
    else
      lru:remove(node)
    end
  end
end

local function after_delete(self, key, now)
  local lru = self._lru
  local node = lru.map[key]
  if self._depth > 0 then
    if node then
      lru:remove(node)
      self._invalidations = self._invalidations + 1
    end
    self._touched[key] = true
    self._tx[self._depth].journal[key] = false
    return
  end
  untrack(self, key)
  if node then
    self._invalidations = self._invalidations + 1
    local nttl = self._negative_ttl
    if nttl then
      node.v, node.exp = nil, now + nttl
      lru:touch(node)
    else
      lru:remove(node)
    end
  end
end

local function flush_search(self)
  for _, w in pairs(self._cols) do
    local n = w._lru:flush()
    w._invalidations = w._invalidations + n
    self._sinvalidations = self._sinvalidations + n
    w._seq = nil
  end
end

-- Key-value methods ------------------------------------------------------

--- The value of key, or nil: from the cache when it holds a live entry for
-- key (a hit), else from the store (a miss), then cached.
-- @tparam string key
-- @treturn string|nil the value
function Cache:get(key)
  if type(self) ~= "table" or self._closed ~= false then check(self, "get") end
  if type(key) ~= "string" then return self._db:get(key) end
  local node = lookup(self, key)
  if node then return node.v end
  local now = self._clock()
  local v = self._db:get(key)
  self._misses = self._misses + 1
  fill(self, key, v, now)
  return v
end

--- Whether key exists; a cached entry answers (a hit), else the store (a
-- miss; a `false` answer is cached as a miss when `negative_ttl` is set).
-- @tparam string key
-- @treturn boolean
function Cache:exists(key)
  if type(self) ~= "table" or self._closed ~= false then check(self, "exists") end
  if type(key) ~= "string" then return self._db:exists(key) end
  local node = lookup(self, key)
  if node then return node.v ~= nil end
  local now = self._clock()
  local r = self._db:exists(key)
  self._misses = self._misses + 1
  if not r then fill(self, key, nil, now) end
  return r
end

--- Sets key (write-through). A cached entry for key is updated in place; a
-- key not in the cache is not added (so bulk writes do not flush the
-- cache). With `{ ttl = s }` the entry never outlives the stored value.
-- @tparam string key
-- @tparam string value
-- @tparam[opt] table options `{ ttl = seconds }`, as the store takes
function Cache:set(key, value, options)
  check(self, "set")
  local now = self._clock()
  local r = table_pack(self._db:set(key, value, options))
  after_set(self, key, value, options and options.ttl, now)
  return table_unpack(r, 1, r.n)
end

--- Deletes key (write-through); a cached entry becomes a cached miss when
-- `negative_ttl` is set, else is dropped.
-- @tparam string key
-- @treturn boolean whether a live key was removed
function Cache:delete(key)
  check(self, "delete")
  local now = self._clock()
  local existed = self._db:delete(key)
  after_delete(self, key, now)
  return existed
end

--- `{ key = value }` for the keys that exist: cached keys are hits, the
-- others are read from the store in one `get_batch` (one miss per distinct
-- key) and cached.
-- @tparam {string,...} keys
-- @treturn table
function Cache:get_batch(keys)
  check(self, "get_batch")
  if type(keys) ~= "table" then return self._db:get_batch(keys) end
  local out, missing, seen = {}, {}, {}
  for _, k in ipairs(keys) do
    if type(k) ~= "string" then
      missing[#missing + 1] = k -- the store names what is wrong with it
    elseif not seen[k] then
      seen[k] = true
      local node = lookup(self, k)
      if node then
        out[k] = node.v
      else
        missing[#missing + 1] = k
      end
    end
  end
  if #missing == 0 then return out end
  local now = self._clock()
  local got = self._db:get_batch(missing)
  self._misses = self._misses + #missing
  for _, k in ipairs(missing) do
    local v = got[k]
    out[k] = v
    fill(self, k, v, now)
  end
  return out
end

--- Sets several keys at once, all or nothing (write-through; cached
-- entries are updated).
-- @tparam table map `{ key = value, ... }`
-- @tparam[opt] table options `{ ttl = seconds }`
-- @treturn integer keys written
function Cache:set_batch(map, options)
  check(self, "set_batch")
  local now = self._clock()
  local n = self._db:set_batch(map, options)
  local dbttl = options and options.ttl
  for k, v in pairs(map) do after_set(self, k, v, dbttl, now) end
  return n
end

--- Deletes several keys at once, all or nothing (write-through).
-- @tparam {string,...} keys
-- @treturn integer live keys removed
function Cache:delete_batch(keys)
  check(self, "delete_batch")
  local now = self._clock()
  local n = self._db:delete_batch(keys)
  for _, k in ipairs(keys) do after_delete(self, k, now) end
  return n
end

--- Mixed `set`/`delete` operations, all or nothing, as `db:batch`; the
-- cache follows them in order.
-- @tparam table ops `{ { op = "set", key =, value = [, ttl =] }, { op = "delete", key = } }`
-- @treturn integer live keys the deletes removed
function Cache:batch(ops)
  check(self, "batch")
  local now = self._clock()
  local n = self._db:batch(ops)
  for _, op in ipairs(ops) do
    if op.op == "set" then
      after_set(self, op.key, op.value, op.ttl, now)
    else
      after_delete(self, op.key, now)
    end
  end
  return n
end

--- Removes every key of the store's tenant and empties the key-value cache
-- (cached search results stay: `clear` does not touch collections).
function Cache:clear()
  check(self, "clear")
  local r = table_pack(self._db:clear())
  self._invalidations = self._invalidations + self._lru:flush()
  if self._depth > 0 then
    self._tx_cleared = true
    local level = self._tx[self._depth]
    level.cleared, level.journal = true, {}
  else
    self._expiry, self._expiry_n, self._unsure_until = {}, 0, -huge
  end
  return table_unpack(r, 1, r.n)
end

-- Commits a finished transaction level into its parent, or at the
-- outermost level into the remembered expiries.
local function commit_level(self, level)
  local parent = self._tx[self._depth]
  if parent then
    if level.cleared then
      parent.cleared, parent.journal = true, level.journal
    else
      local pj = parent.journal
      for k, e in pairs(level.journal) do pj[k] = e end
    end
    return
  end
  if level.cleared then self._expiry, self._expiry_n, self._unsure_until = {}, 0, -huge end
  local now = self._clock()
  for k, e in pairs(level.journal) do
    if e then track(self, k, e, now) else untrack(self, k) end
  end
end

--- Runs fn(wrapper) in a store transaction (`db:transaction`): commit on
-- return, rollback and rethrow (the original error value) on error; nested
-- calls are savepoints. Keys written inside are dropped from the cache and
-- read from the store (uncached) until the outermost transaction ends, so
-- a rollback at any level leaves no stale entry. Cached search results of
-- the collections written inside are dropped when it ends; a rollback
-- drops every cached search result.
-- @tparam function fn called with the wrapper
-- @return what fn returns
function Cache:transaction(fn)
  check(self, "transaction")
  local db = self._db
  if type(fn) ~= "function" then return db:transaction(fn) end
  local level = { journal = {}, cleared = false }
  local depth = self._depth + 1
  self._tx[depth], self._depth = level, depth
  local res = table_pack(pcall(function()
    return db:transaction(function() return fn(self) end)
  end))
  self._tx[depth], self._depth = nil, depth - 1
  if res[1] then commit_level(self, level) end
  if depth == 1 then
    self._touched, self._tx_cleared = {}, false
    local cols = self._tx_cols
    self._tx_cols = {}
    if res[1] then
      for w in pairs(cols) do
        self._sinvalidations = self._sinvalidations + w._lru:flush()
      end
    end
  end
  if not res[1] then
    flush_search(self)
    error(res[2], 0)
  end
  return table_unpack(res, 2, res.n)
end

--- The cache's own figures (no store query): `{ hits=, misses=,
-- negative_hits=, evictions=, expired=, invalidations=, size=, capacity=,
-- hit_rate=, ttl=, negative_ttl=, ttl_keys=, search= }`. `hits` counts
-- reads answered by the cache (`negative_hits` of them answered "missing"),
-- `misses` reads that went to the store, `expired` entries dropped because
-- their time was up, `invalidations` entries a write dropped or rewrote,
-- `hit_rate` `hits / (hits + misses)` (0 before any read). `search` (when
-- search caching is on) has `hits misses evictions expired invalidations size
-- capacity` summed over the collections.
-- @treturn table
function Cache:cache_stats()
  check(self, "cache_stats")
  local reads = self._hits + self._misses
  local t = {
    hits = self._hits, misses = self._misses, negative_hits = self._negative_hits,
    evictions = self._evictions, expired = self._expired,
    invalidations = self._invalidations, size = self._lru.size,
    capacity = self._lru.capacity, hit_rate = reads > 0 and self._hits / reads or 0,
    ttl = self._ttl, negative_ttl = self._negative_ttl, ttl_keys = self._expiry_n,
  }
  local s = self._search
  if s then
    local size = 0
    for _, w in pairs(self._cols) do size = size + w._lru.size end
    t.search = {
      hits = self._shits, misses = self._smisses, evictions = self._sevictions,
      expired = self._sexpired, invalidations = self._sinvalidations, size = size,
      capacity = s.capacity, ttl = s.ttl, verify = s.verify,
    }
  end
  return t
end

--- `cache_stats()` plus the store's own `db:stats()` under `db`.
-- @treturn table
function Cache:stats()
  check(self, "stats")
  local t = self:cache_stats()
  t.db = self._db:stats()
  return t
end

--- Drops cached entries: the one for key, or (without key) every key-value
-- entry and every cached search result. For writes made around the
-- wrapper that must be seen at once.
-- @tparam[opt] string key
function Cache:invalidate(key)
  check(self, "invalidate")
  if key == nil then
    self._invalidations = self._invalidations + self._lru:flush()
    flush_search(self)
    return
  end
  local node = self._lru.map[key]
  if node then
    self._lru:remove(node)
    self._invalidations = self._invalidations + 1
  end
end

--- The wrapped store.
-- @treturn userdata
function Cache:unwrap()
  check(self, "unwrap")
  return self._db
end

---------------------------------------------------------------------------
-- Collections and cached search results

-- A canonical string for a search's options (sorted keys, typed values);
-- nil when they hold something that cannot be keyed (a function, a cycle).
local function ser(v, out, depth)
  local tv = type(v)
  if tv == "string" then
    out[#out + 1] = "s" .. #v .. ":" .. v
  elseif tv == "number" then
    if math_type(v) == "integer" then
      out[#out + 1] = "i" .. v
    else
      out[#out + 1] = "f" .. string_format("%a", v)
    end
  elseif tv == "boolean" then
    out[#out + 1] = v and "T" or "F"
  elseif tv == "nil" then
    out[#out + 1] = "N"
  elseif tv == "table" then
    if depth > MAX_KEY_DEPTH then return false end
    local parts = {}
    for k, x in next, v do -- raw: filter builders keep their conditions in themselves
      local kp, xp = {}, {}
      if not ser(k, kp, depth + 1) or not ser(x, xp, depth + 1) then return false end
      parts[#parts + 1] = table_concat(kp) .. "=" .. table_concat(xp)
    end
    table_sort(parts)
    out[#out + 1] = "{" .. table_concat(parts, ",") .. "}"
  else
    return false
  end
  return true
end

local pack_formats = {}

-- The cache key of a search: the query's bytes and its options.
local function search_key(vector, options)
  local vk
  if type(vector) == "string" then
    vk = "s" .. #vector .. ":" .. vector
  elseif type(vector) == "table" then
    local n = #vector
    local fmt = pack_formats[n]
    if not fmt then
      fmt = "<" .. string_rep("d", n)
      pack_formats[n] = fmt
    end
    local ok, bytes = pcall(string_pack, fmt, table_unpack(vector, 1, n))
    if not ok then return nil end -- not numbers: let the collection say so
    vk = "t" .. n .. ":" .. bytes
  else
    return nil
  end
  local out = { vk }
  if not ser(options, out, 0) then return nil end
  return table_concat(out, "|")
end

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in next, v do c[k] = deep_copy(x) end
  return c
end

local function new_cached_collection(owner, col)
  local fast = type(col.seq) == "function"
  return setmetatable({
    _owner = owner, _col = col, _lru = lru_new(owner._search.capacity), _closed = false,
    _fast = fast, _seq = nil, _count = nil,
    _hits = 0, _misses = 0, _evictions = 0, _expired = 0, _invalidations = 0,
  }, CachedCollection)
end

-- Registers (or reuses) the wrapper around the store's collection object.
local function wrap_collection(self, name, col)
  local w = self._cols[name]
  if w and w._col == col then return w end
  if w then w._lru:flush() end
  w = new_cached_collection(self, col)
  self._cols[name] = w
  return w
end

--- Creates a collection, as `db:create_collection`. With search caching on,
-- returns a `CachedCollection` around it, else the store's collection.
-- @tparam string name
-- @tparam table options
function Cache:create_collection(name, options)
  check(self, "create_collection")
  local col = self._db:create_collection(name, options)
  if not self._search then return col end
  return wrap_collection(self, name, col)
end

--- Opens a collection, as `db:collection`. With search caching on, returns a
-- `CachedCollection` (the same one while the collection stays open), else
-- the store's collection.
-- @tparam string name
-- @tparam[opt] table options as `db:collection` (`create = true`: get-or-create)
function Cache:collection(name, options)
  check(self, "collection")
  local col = self._db:collection(name, options)
  if not self._search then return col end
  return wrap_collection(self, name, col)
end

--- Drops a collection, as `db:drop_collection`, with its cached results.
-- @tparam string name
-- @treturn boolean whether it existed
function Cache:drop_collection(name)
  check(self, "drop_collection")
  local r = self._db:drop_collection(name)
  local w = self._cols[name]
  if w then
    self._sinvalidations = self._sinvalidations + w._lru:flush()
    self._cols[name] = nil
  end
  return r
end

-- The collection's change sequence and live count. A write by anyone moves
-- the sequence; an entry's TTL running out lowers the count.
local function fingerprint(w)
  local col = w._col
  if w._fast then return col:seq(), col:count() end
  local st = col:stats()
  return st.seq, st.count
end

-- Drops a collection's cached results after a write through the wrapper.
local function written(w)
  local owner = w._owner
  local n = w._lru:flush()
  w._invalidations = w._invalidations + n
  owner._sinvalidations = owner._sinvalidations + n
  w._seq = nil
  if owner._depth > 0 then owner._tx_cols[w] = true end
end

--- Searches the collection, caching the results by (query bytes, options).
--
-- A cached result is served only while the collection is unchanged: with
-- `verify` (the default) every search first reads the collection's change
-- sequence and live count (`col:seq()` and `col:count()`; one catch-up
-- query on SQLite files and PostgreSQL), so writes from any handle or
-- process, and entries whose TTL ran out, drop the collection's cached
-- results. A collection without `seq` (a wrapper's) is asked for
-- `col:stats()` instead, which walks it. With `verify = false` nothing is
-- read first: writes through the wrapper still drop the results, other
-- writers' and expiries are seen after at most `search.ttl`. Writes inside
-- a `transaction` bypass the cache for that collection until it ends.
-- Results are copied out (`copy = false`: the cached tables themselves,
-- which must then not be modified). Queries whose options cannot be keyed
-- (a function in them) are not cached.
-- @param vector a table of numbers, or packed float32 bytes
-- @tparam[opt] table options as `col:search`
-- @treturn table results, best first
function CachedCollection:search(vector, options)
  check_col(self, "search")
  local owner, col = self._owner, self._col
  local key = not owner._tx_cols[self] and search_key(vector, options)
  if not key then return col:search(vector, options) end
  local s = owner._search
  local lru = self._lru
  if s.verify then
    local seq, count = fingerprint(self)
    if seq ~= self._seq or count ~= self._count then
      local n = lru:flush()
      self._invalidations = self._invalidations + n
      owner._sinvalidations = owner._sinvalidations + n
      self._seq, self._count = seq, count
    end
  end
  local node = lru.map[key]
  local clock = owner._clock
  if node and node.exp and clock() >= node.exp then
    lru:remove(node)
    self._expired, owner._sexpired = self._expired + 1, owner._sexpired + 1
    node = nil
  end
  if node then
    lru:touch(node)
    self._hits, owner._shits = self._hits + 1, owner._shits + 1
    return s.copy and deep_copy(node.v) or node.v
  end
  self._misses, owner._smisses = self._misses + 1, owner._smisses + 1
  local now = s.ttl and clock()
  local results = col:search(vector, options)
  local n = lru:put(key, s.copy and deep_copy(results) or results, now and now + s.ttl)
  self._evictions, owner._sevictions = self._evictions + n, owner._sevictions + n
  return results
end

-- After a write through the wrapper: the results it returned, unchanged.
local function after_write(self, ...)
  written(self)
  return ...
end

--- Adds entries, as `col:add`; drops the collection's cached results.
-- @tparam table entries one entry or an array of entries
-- @tparam[opt] table options `{ threads = n }`
-- @treturn integer entries added
function CachedCollection:add(entries, options)
  check_col(self, "add")
  return after_write(self, self._col:add(entries, options))
end

--- Adds entries, as `col:insert`; drops the collection's cached results.
-- @tparam table entries one entry or an array of entries
-- @tparam[opt] table options `{ threads = n }`
-- @treturn {string,...} the ids inserted, in order
function CachedCollection:insert(entries, options)
  check_col(self, "insert")
  return after_write(self, self._col:insert(entries, options))
end

--- Inserts or replaces entries, as `col:upsert`; drops the cached results.
-- @tparam table entries one entry or an array of entries
-- @tparam[opt] table options `{ threads = n }`
-- @treturn integer entries written
function CachedCollection:upsert(entries, options)
  check_col(self, "upsert")
  return after_write(self, self._col:upsert(entries, options))
end

--- Deletes entries by id, as `col:delete`; drops the cached results.
-- @tparam string|{string,...} ids
-- @treturn integer entries deleted
function CachedCollection:delete(ids)
  check_col(self, "delete")
  return after_write(self, self._col:delete(ids))
end

--- Replaces an entry's metadata, as `col:update_metadata`; drops the
-- cached results.
-- @tparam string id
-- @tparam table metadata
function CachedCollection:update_metadata(id, metadata)
  check_col(self, "update_metadata")
  return after_write(self, self._col:update_metadata(id, metadata))
end

--- Deletes a scope's entries, as `col:delete_scope`; drops the cached
-- results.
-- @tparam string scope
-- @treturn integer entries deleted
function CachedCollection:delete_scope(scope)
  check_col(self, "delete_scope")
  return after_write(self, self._col:delete_scope(scope))
end

--- Removes expired entries, as `col:purge_expired`; drops the cached
-- results.
-- @treturn integer entries removed
function CachedCollection:purge_expired()
  check_col(self, "purge_expired")
  return after_write(self, self._col:purge_expired())
end

--- The search cache's figures for this collection: `{ hits=, misses=,
-- evictions=, expired=, invalidations=, size=, capacity= }`.
-- @treturn table
function CachedCollection:cache_stats()
  check_col(self, "cache_stats")
  return {
    hits = self._hits, misses = self._misses, evictions = self._evictions,
    expired = self._expired, invalidations = self._invalidations, size = self._lru.size,
    capacity = self._lru.capacity,
  }
end

--- Drops this collection's cached search results.
function CachedCollection:invalidate()
  check_col(self, "invalidate")
  written(self)
end

--- The store's collection object behind the wrapper.
-- @treturn userdata
function CachedCollection:unwrap()
  check_col(self, "unwrap")
  return self._col
end

-- Everything else (list_keys, scan, backend_type, tenant, characteristics,
-- migrations, check, list_collections; col:get, search_many, count, stats,
-- stats_for_scope, seq, snapshot, name) is the store's or collection's own,
-- uncached.
wrapper.complete(Cache)
wrapper.complete(CachedCollection)

return cache
