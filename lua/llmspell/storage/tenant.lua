--- Tenant helpers: naming, scopes, isolation and quotas over one store.
--
-- The seeds' "Multi-Tenant Patterns": each tenant's collections are named
-- `tenant_<id>:<name>`, its entries carry the scope `tenant:<id>` and
-- `metadata.tenant_id = <id>`, and every search is scoped to the tenant and
-- filtered on `tenant_id` (primary isolation), then its results are checked
-- again in Lua (the "metadata filtering as secondary check"). `tenant.open`
-- returns a handle with the store's key-value and collection API bound to
-- one tenant; its keys live under the prefix `tenant:<id>/`, invisible to
-- every other tenant's handle. Quotas are checked before anything is
-- written. The handle is built on llmspell.storage.wrapper: the few methods
-- that hold no tenant data (`backend_type`, `characteristics`,
-- `migrations`, `check`; `col:count`, `seq`, `snapshot`, `purge_expired`)
-- are the store's own, forwarded; every other one is tenant-bound here.
--
--    local tenant = require "llmspell.storage.tenant"
--    local acme <close> = tenant.open(db, "acme", { max_collections = 3,
--                                                   max_kv_bytes = 1e6 // 1 })
--    acme:set("settings", "{}")                      -- stored as "tenant:acme/settings"
--    local docs = acme:create_collection("docs", { dimension = 384 })
--    docs:add { id = "d1", vector = v }              -- scope and tenant_id added
--    docs:search(q, { k = 5, filter = { lang = "en" } })  -- only acme's entries
--
-- Tenant ids are 1..64 (`storage.limits.max_tenant_id`) letters (ASCII),
-- digits, `-` and `_`. None of them
-- contains `:` or `/`, so `tenant_<id>:<name>` splits at its first `:`,
-- `tenant:<id>/` ends where the id ends, and no id can address another's
-- keys, collections or scope. Ids are case-sensitive (`Acme` and `acme` are
-- two tenants).
--
-- These tenants live inside one store handle (and so inside the store's own
-- `tenant` option, which partitions rows in the backend): they are an
-- application-level partition, as in the seeds.
--
-- @module llmspell.storage.tenant

-- The C core, not the front module: the front module requires this one.
local core = require "llmspell.storage.core"
local wrapper = require "llmspell.storage.wrapper"

local tenant = {}

local limits = core.limits
local MAX_ID = limits.max_tenant_id
local MAX_KEY = limits.max_key
local MAX_COLLECTION = limits.max_name
-- The characters of a tenant id: ASCII letters, digits, '_' and '-' (as a
-- pattern class, without its brackets).
local ID_CLASS = "A-Za-z0-9_%-"
local ID_CHARS = "[^" .. ID_CLASS .. "]"
-- Any character a collection name may not hold: the complement of
-- limits.name_chars ("[...]").
local NAME_CHARS = "[^" .. limits.name_chars:sub(2)

local QUOTAS = { "max_collections", "max_vectors_per_collection", "max_total_vectors",
                 "max_kv_bytes" }

-- Private state of handles and collection wrappers, so the objects expose
-- only their methods.
local private = setmetatable({}, { __mode = "k" })

local THIS_FILE = debug.getinfo(1, "S").short_src

-- ---------------------------------------------------------------------------
-- Errors

-- Raises "bad argument #n to 'fname' (msg)" at the user's line: the first
-- Lua function outside this file, whatever the depth of calls in here
-- (tail calls, transactions, pcall in between).
local function argerror(n, fname, msg)
  wrapper.argerror(n, fname, msg, THIS_FILE)
end

local typename = wrapper.typename

-- Re-raises an error caught from the core: a core bad-argument message
-- carries the position of the call in this file, which is replaced by the
-- user's; error objects and other values pass unchanged.
local function reraise(err)
  if type(err) == "string" and err:sub(1, #THIS_FILE + 1) == THIS_FILE .. ":" then
    local rest = err:match("^:%d+: (.*)$", #THIS_FILE + 1)
    if rest then error(rest, wrapper.user_level(THIS_FILE)) end
  end
  error(err, 0)
end

-- Calls f() and returns its first two results; errors go through reraise.
-- f calls the core with method syntax (`db:set(...)`), so the core's messages
-- name the method and count arguments as the user's call does.
local function call(f)
  local ok, a, b = pcall(f)
  if not ok then reraise(a) end
  return a, b
end

local function quota_error(s, which, used, requested, extra)
  local fields = { tenant = s.id, quota = which, limit = s.quota[which], used = used,
                   requested = requested }
  local where = ""
  if extra then
    for k, v in pairs(extra) do fields[k] = v end
    if extra.collection then where = string.format(" in collection '%s'", extra.collection) end
  end
  error(core.error("quota", string.format(
    "tenant '%s' would exceed %s%s: %d used + %d requested > limit %d",
    s.id, which, where, used, requested, s.quota[which]), fields), 0)
end

-- ---------------------------------------------------------------------------
-- Naming

-- nil when id is a valid tenant id, else what is wrong with it.
local function id_problem(id)
  if type(id) ~= "string" then
    return "tenant id must be a string, got " .. typename(id)
  end
  if id == "" then return "tenant id must not be empty" end
  if #id > MAX_ID then
    return string.format("tenant id is %d bytes, at most %d allowed", #id, MAX_ID)
  end
  local at = id:find(ID_CHARS)
  if at then
    return string.format("tenant id %q has %q at byte %d (allowed: letters, digits, "
                         .. "'-' and '_')", id, id:sub(at, at), at)
  end
  return nil
end

local function check_id(id, n, fname)
  local msg = id_problem(id)
  if msg then argerror(n, fname, msg) end
  return id
end

-- nil when name is a valid collection name for tenant id, else the problem.
local function name_problem(id, name)
  if type(name) ~= "string" then
    return "collection name must be a string, got " .. typename(name)
  end
  if name == "" then return "collection name must not be empty" end
  local room = MAX_COLLECTION - #"tenant_:" - #id
  if #name > room then
    return string.format("collection name is %d bytes, at most %d allowed for tenant '%s'",
                         #name, room, id)
  end
  local at = name:find(NAME_CHARS)
  if at then
    return string.format("collection name %q has %q at byte %d (allowed: %s)", name,
                         name:sub(at, at), at, limits.name_chars_text)
  end
  return nil
end

--- Checks a tenant id without raising.
-- @tparam any id
-- @treturn boolean true when `id` is 1..64 letters, digits, `-` and `_`
-- @treturn[opt] string what is wrong with it, when it is not valid
function tenant.is_valid_id(id)
  local msg = id_problem(id)
  if msg then return false, msg end
  return true
end

--- The collection name of a tenant's collection: `"tenant_<id>:<name>"`.
-- @tparam string id the tenant id (1..64 letters, digits, `-`, `_`)
-- @tparam string name the tenant-local name: letters, digits and `_ - . : /`
--   (`storage.limits.name_chars`), at most `storage.limits.max_name` (255)
--   bytes with the prefix
-- @treturn string the collection name in the store
-- @raise bad argument for an invalid id or name
function tenant.collection(id, name)
  check_id(id, 1, "collection")
  local msg = name_problem(id, name)
  if msg then argerror(2, "collection", msg) end
  return "tenant_" .. id .. ":" .. name
end

--- The scope of a tenant's entries: `"tenant:<id>"`.
-- @tparam string id the tenant id
-- @treturn string the scope
-- @raise bad argument for an invalid id
function tenant.scope(id)
  check_id(id, 1, "scope")
  return "tenant:" .. id
end

--- The prefix under which a tenant handle keeps its keys: `"tenant:<id>/"`.
-- @tparam string id the tenant id
-- @treturn string the key prefix
-- @raise bad argument for an invalid id
function tenant.key_prefix(id)
  check_id(id, 1, "key_prefix")
  return "tenant:" .. id .. "/"
end

--- Splits a collection name made by `tenant.collection`.
-- `"tenant_a_b:x"` gives `"a_b", "x"`; `"tenant_a:b:c"` gives `"a", "b:c"`
-- (an id never contains `:`, so the first `:` ends it).
-- @tparam string collection_name
-- @treturn ?string the tenant id, or nil when the name is not a tenant's
--   collection name
-- @treturn ?string the tenant-local name
function tenant.parse(collection_name)
  if type(collection_name) ~= "string" or #collection_name > MAX_COLLECTION then return nil end
  local id, name = collection_name:match("^tenant_([" .. ID_CLASS .. "]+):(.+)$")
  if not id or #id > MAX_ID or name:find(NAME_CHARS) then return nil end
  return id, name
end

-- ---------------------------------------------------------------------------
-- Arguments

local function check_store(db, n, fname)
  local t = type(db)
  if t == "userdata" or t == "table" then
    local ok, ok2 = pcall(function()
      return type(db.get) ~= "nil" and type(db.scan) ~= "nil"
             and type(db.list_collections) ~= "nil" and type(db.transaction) ~= "nil"
    end)
    if ok and ok2 then return db end
  end
  argerror(n, fname, "store handle expected, got " .. typename(db))
end

local function check_quota(q, n, fname)
  if q == nil then return {} end
  if type(q) ~= "table" then
    argerror(n, fname, "quota table expected, got " .. typename(q))
  end
  local out = {}
  for k, v in pairs(q) do
    local known = false
    for _, name in ipairs(QUOTAS) do known = known or k == name end
    if not known then
      argerror(n, fname, string.format("unknown quota '%s' (expected %s)", tostring(k),
                                       table.concat(QUOTAS, ", ")))
    end
    if math.type(v) == "float" and v == math.floor(v) and v >= 0 and v < 2 ^ 63 then
      v = math.tointeger(v)
    end
    if math.type(v) ~= "integer" or v < 0 then
      argerror(n, fname, string.format("quota.%s must be a non-negative integer, got %s", k,
                                       tostring(v)))
    end
    out[k] = v
  end
  return out
end

-- Checks a user key (or prefix: what = "prefix") against what the core
-- allows once the namespace prefix is added; `where` ("op 2: ") starts the
-- message.
local function check_key(s, key, n, fname, what, where)
  what, where = what or "key", where or ""
  if type(key) ~= "string" then
    argerror(n, fname, string.format("%sstring %s expected, got %s", where, what,
                                     typename(key)))
  end
  if #key > s.max_key then
    argerror(n, fname, string.format("%s%s is %d bytes, at most %d allowed in tenant '%s'",
                                     where, what, #key, s.max_key, s.id))
  end
  if key:find("\0", 1, true) or not utf8.len(key) then
    argerror(n, fname, string.format("%s%s must be UTF-8 text without NUL bytes", where, what))
  end
  return key
end

local function check_prefix(s, prefix, n, fname)
  if prefix == nil then return "" end
  return check_key(s, prefix, n, fname, "prefix")
end

local function check_value(value, n, fname, where)
  if type(value) ~= "string" then
    argerror(n, fname, string.format("%sstring value expected, got %s", where or "",
                                     typename(value)))
  end
  return value
end

-- The core's rule for a ttl; nil when fine.
local function ttl_problem(ttl)
  if ttl ~= nil and (type(ttl) ~= "number" or not (ttl > 0) or ttl > limits.max_ttl) then
    return "ttl must be a positive number of seconds"
  end
  return nil
end

-- `{ ttl = seconds }` or nil, checked as the core does, so that a bad
-- argument is reported before a quota is counted.
local function check_ttl_opts(opts, n, fname)
  if opts == nil then return end
  if type(opts) ~= "table" then argerror(n, fname, "table expected, got " .. typename(opts)) end
  for k in pairs(opts) do
    if k ~= "ttl" then argerror(n, fname, string.format("unknown option '%s'", tostring(k))) end
  end
  local msg = ttl_problem(opts.ttl)
  if msg then argerror(n, fname, msg) end
end

local function check_name(s, name, n, fname)
  local msg = name_problem(s.id, name)
  if msg then argerror(n, fname, msg) end
  return s.cprefix .. name
end

-- ---------------------------------------------------------------------------
-- Usage

-- One pass over the key namespace: bytes (user key + value), key count, and
-- the current size of each full key in `want` (a set).
local function kv_usage(db, prefix, want)
  local bytes, keys, sizes = 0, 0, {}
  local plen = #prefix
  for k, v in db:scan(prefix) do
    local size = #k - plen + #v
    bytes, keys = bytes + size, keys + 1
    if want and want[k] then sizes[k] = size end
  end
  return bytes, keys, sizes
end

-- The tenant's collections: count, total stored vectors, stored vectors by
-- tenant-local name.
local function vector_usage(db, id, cprefix)
  local list = db:list_collections(cprefix)
  local n, total, by = 0, 0, {}
  for _, c in ipairs(list) do
    local cid, name = tenant.parse(c.name)
    if cid == id then
      n, total = n + 1, total + c.count
      by[name] = c.count
    end
  end
  return n, total, by
end

--- What a tenant uses, as its quotas count it.
-- `vectors` counts stored entries, expired ones included until
-- `purge_expired` removes them (they still hold their ids and space);
-- `kv_bytes` is the sum of key + value bytes of the tenant's live keys (keys
-- without the `tenant:<id>/` prefix).
-- Costs one pass over the tenant's keys.
-- @tparam userdata db an open store
-- @tparam string id the tenant id
-- @treturn table `{ tenant=, collections=, vectors=, vectors_by_collection =
--   { name = n }, kv_bytes=, kv_keys= }`
-- @raise bad argument for an invalid id; `closed` when db is closed
function tenant.usage(db, id)
  check_store(db, 1, "usage")
  check_id(id, 2, "usage")
  local ok, res = pcall(function()
    local n, total, by = vector_usage(db, id, "tenant_" .. id .. ":")
    local bytes, keys = kv_usage(db, "tenant:" .. id .. "/")
    return { tenant = id, collections = n, vectors = total, vectors_by_collection = by,
             kv_bytes = bytes, kv_keys = keys }
  end)
  if not ok then reraise(res) end
  return res
end

-- ---------------------------------------------------------------------------
-- The tenant handle

local function closed_error(what, id)
  return core.error("closed", string.format("%s is closed", what), { tenant = id })
end

-- `llmspell.storage.Tenant (acme, sqlite data/app.db)`.
local function describe_tenant(s)
  if s.closed then return s.id .. ", closed" end
  local ok, st = pcall(s.db.stats, s.db)
  if not ok or type(st) ~= "table" then return s.id .. ", store closed" end
  return string.format("%s, %s %s", s.id, tostring(st.backend), tostring(st.location))
end

-- `state(self, fname)`: the private state of an open tenant handle; raises
-- when self is not one or is closed.
local Tenant, state = wrapper.class {
  name = "llmspell.storage.Tenant", api = "store", file = THIS_FILE,
  extras = { "quota", "usage" },
  state = function(self) return private[self] end,
  closed = function(s) return s.closed end,
  closed_error = function(s) return closed_error("tenant handle", s.id) end,
  inner = function(s) return s.db end,
  -- The store stays open; later calls on this handle and its collections
  -- raise `closed`.
  on_close = function(s) s.closed = true end,
  describe = describe_tenant,
}

-- `llmspell.storage.TenantCollection (acme, docs, 384-d cosine, 12 vectors)`.
local function describe_collection(c)
  if c.closed or c.t.closed then return string.format("%s, %s, closed", c.t.id, c.name) end
  local ok, st = pcall(c.col.stats, c.col)
  if not ok or type(st) ~= "table" then
    return string.format("%s, %s, closed", c.t.id, c.name)
  end
  return string.format("%s, %s, %d-d %s, %d vectors", c.t.id, c.name, st.dimension,
                       st.metric, st.count)
end

-- `check_col(self, fname)`: the state of an open collection wrapper.
local TenantCollection, check_col = wrapper.class {
  name = "llmspell.storage.TenantCollection", api = "collection", file = THIS_FILE,
  state = function(self) return private[self] end,
  closed = function(c) return c.closed or c.t.closed end,
  closed_error = function(c) return closed_error("tenant collection", c.t.id) end,
  inner = function(c) return c.col end,
  -- The store's collection object, which other handles may share, stays
  -- open.
  on_close = function(c) c.closed = true end,
  describe = describe_collection,
}

--- Opens a handle bound to one tenant of a store.
-- The handle has the store's key-value API (keys namespaced under
-- `tenant:<id>/`) and collection API (names under `tenant_<id>:`, entries
-- scoped and tagged, searches filtered and checked). Closing it does not
-- close the store; closing the store makes the handle raise `closed`.
-- @tparam userdata db an open store (`storage.open`)
-- @tparam string id the tenant id (1..64 letters, digits, `-`, `_`)
-- @tparam[opt] table quota limits, each a non-negative integer, absent for
--   none: `max_collections`, `max_vectors_per_collection`,
--   `max_total_vectors`, `max_kv_bytes`
-- @treturn table the handle (`llmspell.storage.Tenant`)
-- @raise bad argument for a bad store, id or quota
function tenant.open(db, id, quota)
  check_store(db, 1, "open")
  check_id(id, 2, "open")
  local q = check_quota(quota, 3, "open")
  local self = setmetatable({}, Tenant)
  local prefix = "tenant:" .. id .. "/"
  private[self] = { db = db, id = id, quota = q, prefix = prefix,
                    scope = "tenant:" .. id, cprefix = "tenant_" .. id .. ":",
                    max_key = MAX_KEY - #prefix, closed = false }
  return self
end

-- Runs fn inside a store transaction when `needed` (a quota or ownership
-- check must see the same state as the write), else directly.
-- Errors go through reraise, as with call.
local function guarded(s, needed, fn)
  if not needed then return call(fn) end
  return call(function() return s.db:transaction(fn) end)
end

--- The tenant id this handle is bound to.
-- @treturn string
function Tenant:tenant()
  return state(self, "tenant").id
end

--- The handle's quota limits (a copy; absent fields have no limit).
-- @treturn table
function Tenant:quota()
  local out = {}
  for k, v in pairs(state(self, "quota").quota) do out[k] = v end
  return out
end

--- What this tenant uses: the same as `tenant.usage(db, id)`.
-- @treturn table `{ tenant=, collections=, vectors=, vectors_by_collection=,
--   kv_bytes=, kv_keys= }`
function Tenant:usage()
  local s = state(self, "usage")
  return tenant.usage(s.db, s.id)
end

--- The value of a key of this tenant, or nil when missing or expired.
-- @tparam string key
-- @treturn ?string
function Tenant:get(key)
  local s = state(self, "get")
  check_key(s, key, 1, "get")
  return (s.db:get(s.prefix .. key))
end

-- Checks that writing `delta` more bytes keeps the tenant within
-- max_kv_bytes; `used` is the current figure.
local function check_kv_bytes(s, used, delta)
  local limit = s.quota.max_kv_bytes
  if delta > 0 and used + delta > limit then quota_error(s, "max_kv_bytes", used, delta) end
end

--- Inserts or replaces a key of this tenant.
-- With `max_kv_bytes`, the write is refused with a `quota` error when the
-- tenant's key + value bytes would exceed the limit (replacing a key counts
-- only the growth). Checking costs one pass over the tenant's keys.
-- @tparam string key
-- @tparam string value
-- @tparam[opt] table opts `{ ttl = seconds }`
-- @raise bad argument; error object `quota`, `closed`, ...
function Tenant:set(key, value, opts)
  local s = state(self, "set")
  check_key(s, key, 1, "set")
  check_value(value, 2, "set")
  check_ttl_opts(opts, 3, "set")
  local full = s.prefix .. key
  guarded(s, s.quota.max_kv_bytes ~= nil, function()
    if s.quota.max_kv_bytes then
      local used, _, sizes = kv_usage(s.db, s.prefix, { [full] = true })
      check_kv_bytes(s, used, #key + #value - (sizes[full] or 0))
    end
    s.db:set(full, value, opts)
  end)
end

--- Deletes a key of this tenant.
-- @tparam string key
-- @treturn boolean true when a live key was removed
function Tenant:delete(key)
  local s = state(self, "delete")
  check_key(s, key, 1, "delete")
  return (s.db:delete(s.prefix .. key))
end

--- Whether a key of this tenant exists (and has not expired).
-- @tparam string key
-- @treturn boolean
function Tenant:exists(key)
  local s = state(self, "exists")
  check_key(s, key, 1, "exists")
  return (s.db:exists(s.prefix .. key))
end

--- This tenant's keys starting with `prefix`, in byte order (without the
-- namespace prefix).
-- @tparam[opt] string prefix a literal prefix
-- @treturn {string,...}
function Tenant:list_keys(prefix)
  local s = state(self, "list_keys")
  local p = check_prefix(s, prefix, 1, "list_keys")
  local keys = s.db:list_keys(s.prefix .. p)
  local plen = #s.prefix
  for i = 1, #keys do keys[i] = keys[i]:sub(plen + 1) end
  return keys
end

--- Streams this tenant's keys and values in key order:
-- `for key, value in t:scan(prefix) do ... end`. Bounded memory; the loop
-- may write; the fourth value closes the scan on `break` or error.
-- @tparam[opt] string prefix a literal prefix
-- @return the iterator, nil, nil and the closing value
function Tenant:scan(prefix)
  local s = state(self, "scan")
  local p = check_prefix(s, prefix, 1, "scan")
  local f, st, ctl, closer = s.db:scan(s.prefix .. p)
  local plen, last = #s.prefix, ctl
  local function iter()
    local k, v = f(st, last)
    last = k
    if k == nil then return nil end
    return k:sub(plen + 1), v
  end
  return iter, nil, nil, closer
end

--- Values of several keys of this tenant: `{ k1 = v1, ... }`, missing and
-- expired keys absent.
-- @tparam {string,...} keys
-- @treturn table
function Tenant:get_batch(keys)
  local s = state(self, "get_batch")
  if type(keys) ~= "table" then
    argerror(1, "get_batch", "table of keys expected, got " .. typename(keys))
  end
  local full = {}
  for i = 1, #keys do
    full[i] = s.prefix .. check_key(s, keys[i], 1, "get_batch", nil, "keys[" .. i .. "]: ")
  end
  local got = s.db:get_batch(full)
  local out, plen = {}, #s.prefix
  for k, v in pairs(got) do out[k:sub(plen + 1)] = v end
  return out
end

--- Writes several keys of this tenant, all or nothing.
-- Checked against `max_kv_bytes` as a whole before anything is written.
-- @tparam table map `{ key = value, ... }`
-- @tparam[opt] table opts `{ ttl = seconds }`
-- @treturn integer the number of keys written
function Tenant:set_batch(map, opts)
  local s = state(self, "set_batch")
  if type(map) ~= "table" then
    argerror(1, "set_batch", "table of keys and values expected, got " .. typename(map))
  end
  local full, want = {}, {}
  for k, v in pairs(map) do
    check_key(s, k, 1, "set_batch")
    check_value(v, 1, "set_batch", string.format("key '%s': ", k))
    full[s.prefix .. k] = v
    want[s.prefix .. k] = true
  end
  check_ttl_opts(opts, 2, "set_batch")
  return (guarded(s, s.quota.max_kv_bytes ~= nil, function()
    if s.quota.max_kv_bytes then
      local used, _, sizes = kv_usage(s.db, s.prefix, want)
      local delta, plen = 0, #s.prefix
      for k, v in pairs(full) do delta = delta + #k - plen + #v - (sizes[k] or 0) end
      check_kv_bytes(s, used, delta)
    end
    return s.db:set_batch(full, opts)
  end))
end

--- Deletes several keys of this tenant, all or nothing.
-- @tparam {string,...} keys
-- @treturn integer how many live keys were removed
function Tenant:delete_batch(keys)
  local s = state(self, "delete_batch")
  if type(keys) ~= "table" then
    argerror(1, "delete_batch", "table of keys expected, got " .. typename(keys))
  end
  local full = {}
  for i = 1, #keys do
    full[i] = s.prefix .. check_key(s, keys[i], 1, "delete_batch", nil, "keys[" .. i .. "]: ")
  end
  return (s.db:delete_batch(full))
end

--- Mixed sets and deletes on this tenant's keys, in order, all or nothing:
-- `{ { op = "set", key = k, value = v [, ttl = s] }, { op = "delete", key = k } }`.
-- Checked against `max_kv_bytes` (the net growth after every op) before
-- anything is written.
-- @tparam table ops
-- @treturn integer how many live keys the deletes removed
function Tenant:batch(ops)
  local s = state(self, "batch")
  if type(ops) ~= "table" then
    argerror(1, "batch", "table of operations expected, got " .. typename(ops))
  end
  local full, want = {}, {}
  for i = 1, #ops do
    local op = ops[i]
    if type(op) ~= "table" then
      argerror(1, "batch", string.format("op %d: table expected, got %s", i, typename(op)))
    end
    local is_set = op.op == "set"
    if not is_set and op.op ~= "delete" then
      argerror(1, "batch", string.format('op %d: field \'op\' must be "set" or "delete"', i))
    end
    local copy = {}
    for k, v in pairs(op) do
      if not (k == "op" or k == "key" or (is_set and (k == "value" or k == "ttl"))) then
        argerror(1, "batch", string.format("op %d: unknown option '%s'", i, tostring(k)))
      end
      copy[k] = v
    end
    check_key(s, op.key, 1, "batch", nil, string.format("op %d: ", i))
    if is_set then
      check_value(op.value, 1, "batch", string.format("op %d: ", i))
      local msg = ttl_problem(op.ttl)
      if msg then argerror(1, "batch", string.format("op %d: %s", i, msg)) end
    end
    copy.key = s.prefix .. op.key
    want[copy.key] = true
    full[i] = copy
  end
  return (guarded(s, s.quota.max_kv_bytes ~= nil, function()
    if s.quota.max_kv_bytes then
      local used, _, sizes = kv_usage(s.db, s.prefix, want)
      local now, plen = {}, #s.prefix
      for k in pairs(want) do now[k] = sizes[k] or 0 end
      for _, op in ipairs(full) do
        if op.op == "set" then now[op.key] = #op.key - plen + #op.value
        elseif op.op == "delete" then now[op.key] = 0 end
      end
      local delta = 0
      for k, size in pairs(now) do delta = delta + size - (sizes[k] or 0) end
      check_kv_bytes(s, used, delta)
    end
    return s.db:batch(full)
  end))
end

--- Runs `fn(handle)` in a store transaction: commits when it returns (and
-- returns its results), rolls back and rethrows the original error when it
-- raises. Nested calls use savepoints. Quota checks inside see the
-- transaction's own writes.
-- @tparam function fn called with this tenant handle
-- @return what fn returns
function Tenant:transaction(fn)
  local s = state(self, "transaction")
  if type(fn) ~= "function" then
    argerror(1, "transaction", "function expected, got " .. typename(fn))
  end
  return s.db:transaction(function() return fn(self) end)
end

--- Removes every key of this tenant (other tenants' keys and the store's
-- other keys are untouched), atomically.
-- @treturn integer how many keys were removed
function Tenant:clear()
  local s = state(self, "clear")
  return (guarded(s, true, function()
    local n, buf = 0, {}
    for k in s.db:scan(s.prefix) do
      buf[#buf + 1] = k
      if #buf == 1000 then
        n, buf = n + s.db:delete_batch(buf), {}
      end
    end
    if #buf > 0 then n = n + s.db:delete_batch(buf) end
    return n
  end))
end

--- Figures for this tenant: `{ tenant=, backend=, location=, store_tenant=,
-- keys=, bytes=, collections=, vectors=, transaction_depth=, quota= }`
-- (`keys` and `bytes` are `usage().kv_keys` and `kv_bytes`).
-- @treturn table
function Tenant:stats()
  local s = state(self, "stats")
  local u = tenant.usage(s.db, s.id)
  local st = s.db:stats()
  local q = {}
  for k, v in pairs(s.quota) do q[k] = v end
  return { tenant = s.id, backend = st.backend, location = st.location,
           store_tenant = st.tenant, keys = u.kv_keys, bytes = u.kv_bytes,
           collections = u.collections, vectors = u.vectors,
           transaction_depth = st.transaction_depth, quota = q }
end

-- ---------------------------------------------------------------------------
-- Collections

local function wrap(s, name, col)
  local w = setmetatable({}, TenantCollection)
  private[w] = { t = s, name = name, full = s.cprefix .. name, col = col, closed = false }
  return w
end

--- Creates a collection of this tenant, named `tenant_<id>:<name>` in the
-- store. Refused with `quota` when the tenant has `max_collections` already.
-- @tparam string name the tenant-local name
-- @tparam table options as `db:create_collection` (`dimension`, `metric`, ...)
-- @treturn table the collection (`llmspell.storage.TenantCollection`)
-- @raise bad argument; error object `conflict`, `quota`, `closed`
function Tenant:create_collection(name, options)
  local s = state(self, "create_collection")
  local full = check_name(s, name, 1, "create_collection")
  local limit = s.quota.max_collections
  local col = guarded(s, limit ~= nil, function()
    if limit then
      local n = vector_usage(s.db, s.id, s.cprefix)
      if n + 1 > limit then quota_error(s, "max_collections", n, 1) end
    end
    return s.db:create_collection(full, options)
  end)
  return wrap(s, name, col)
end

--- Opens a collection of this tenant, as `db:collection`: with
-- `options.create`, creates it when absent (counted against
-- `max_collections`, like `create_collection`).
-- @tparam string name the tenant-local name
-- @tparam[opt] table options as `db:collection` (`create`, `dimension`, ...)
-- @treturn table the collection
-- @raise error object `not_found` when this tenant has no such collection
--   (and `create` is not set), `quota`, `conflict`
function Tenant:collection(name, options)
  local s = state(self, "collection")
  local full = check_name(s, name, 1, "collection")
  if type(options) == "table" and options.create then
    local limit = s.quota.max_collections
    local col = guarded(s, limit ~= nil, function()
      local exists = false
      for _, c in ipairs(s.db:list_collections(full)) do
        if c.name == full then exists = true end
      end
      if limit and not exists then
        local n = vector_usage(s.db, s.id, s.cprefix)
        if n + 1 > limit then quota_error(s, "max_collections", n, 1) end
      end
      return s.db:collection(full, options)
    end)
    return wrap(s, name, col)
  end
  return wrap(s, name, (s.db:collection(full, options)))
end

--- This tenant's collections, in name order: `{ { name=, full_name=,
-- dimension=, metric=, count=, ... }, ... }` with `name` tenant-local.
-- @tparam[opt] string prefix a literal prefix of the tenant-local name
-- @treturn table
function Tenant:list_collections(prefix)
  local s = state(self, "list_collections")
  if prefix ~= nil and type(prefix) ~= "string" then
    argerror(1, "list_collections", "string prefix expected, got " .. typename(prefix))
  end
  local list = call(function() return s.db:list_collections(s.cprefix .. (prefix or "")) end)
  local out = {}
  for _, c in ipairs(list) do
    local id, name = tenant.parse(c.name)
    if id == s.id then
      c.full_name, c.name = c.name, name
      out[#out + 1] = c
    end
  end
  return out
end

--- Drops a collection of this tenant.
-- @tparam string name the tenant-local name
-- @treturn boolean whether it existed
function Tenant:drop_collection(name)
  local s = state(self, "drop_collection")
  local full = check_name(s, name, 1, "drop_collection")
  return (s.db:drop_collection(full))
end

-- The storage components (sessions, artifacts, agent states, workflows,
-- patterns, graph, hook_history, events) hold records by id with no name or scope to carry
-- this layer's tenant,
-- so a tenant handle refuses them rather than show every tenant's records:
-- the store's own `tenant` option partitions them in the backend (with
-- row-level security on PostgreSQL).
local function no_components(kind)
  return function(self)
    local s = state(self, kind)
    error(core.error("invalid", string.format(
      "%s are not partitioned by storage.tenant: open the store with { tenant = %q } for "
      .. "tenant '%s''s %s", kind, s.id, s.id, kind), { tenant = s.id }), 2)
  end
end

--- Refused (error object `invalid`): components are partitioned by the
-- store's own `tenant` option, not by this layer. Also `artifacts`,
-- `agent_states`, `workflows`, `patterns`, `graph`, `hook_history`, `events`.
Tenant.sessions = no_components("sessions")
Tenant.agent_states = no_components("agent_states")
Tenant.workflows = no_components("workflows")
Tenant.artifacts = no_components("artifacts")
Tenant.patterns = no_components("patterns")
Tenant.graph = no_components("graph")
Tenant.hook_history = no_components("hook_history")
Tenant.events = no_components("events")

-- The state of an open collection wrapper and of its tenant handle.
local function cstate(self, fname)
  local c = check_col(self, fname)
  return c, c.t
end

-- Whether an entry or search result is this tenant's: its scope and its
-- metadata's tenant_id both say so.
local function owned(s, e)
  return e.scope == s.scope and type(e.metadata) == "table" and e.metadata.tenant_id == s.id
end

-- Copies entries for the store with the tenant's scope and tenant_id;
-- returns the array and the ids (a set, with their number).
local function prepare(s, entries, fname)
  if type(entries) ~= "table" then
    argerror(1, fname, "entry or array of entries expected, got " .. typename(entries))
  end
  local list = entries
  if entries.id ~= nil or entries.vector ~= nil then list = { entries } end
  local out, ids, nids = {}, {}, 0
  for i = 1, #list do
    local e = list[i]
    if type(e) ~= "table" then
      argerror(1, fname, string.format("entry %d: table expected, got %s", i, typename(e)))
    end
    if type(e.id) ~= "string" then
      argerror(1, fname, string.format("entry %d: string id expected, got %s", i,
                                       typename(e.id)))
    end
    if e.scope ~= nil and e.scope ~= s.scope then
      argerror(1, fname, string.format("entry %d: scope must be '%s' for tenant '%s', got %s",
                                       i, s.scope, s.id, tostring(e.scope)))
    end
    if e.metadata ~= nil and type(e.metadata) ~= "table" then
      argerror(1, fname, string.format("entry %d: metadata must be a table, got %s", i,
                                       typename(e.metadata)))
    end
    local md = {}
    for k, v in pairs(e.metadata or {}) do md[k] = v end
    if md.tenant_id ~= nil and md.tenant_id ~= s.id then
      argerror(1, fname, string.format("entry %d: metadata.tenant_id must be '%s', got %s",
                                       i, s.id, tostring(md.tenant_id)))
    end
    md.tenant_id = s.id
    local copy = {}
    for k, v in pairs(e) do copy[k] = v end
    copy.scope, copy.metadata = s.scope, md
    out[i] = copy
    if not ids[e.id] then ids[e.id], nids = true, nids + 1 end
  end
  return out, ids, nids
end

-- Checks the vector quotas for `new` more entries in collection c.
local function check_vectors(c, s, new)
  local q = s.quota
  if new == 0 or not (q.max_vectors_per_collection or q.max_total_vectors) then return end
  local _, total, by = vector_usage(s.db, s.id, s.cprefix)
  local here = by[c.name] or 0
  local per = q.max_vectors_per_collection
  if per and here + new > per then
    quota_error(s, "max_vectors_per_collection", here, new, { collection = c.name })
  end
  if q.max_total_vectors and total + new > q.max_total_vectors then
    quota_error(s, "max_total_vectors", total, new, { collection = c.name })
  end
end

local ANY = { exclude_expired = false }

local function not_owned_error(c, s, id)
  error(core.error("conflict", string.format(
    "entry '%s' in collection '%s' is not tenant '%s''s", id, c.name, s.id),
    { tenant = s.id }), 0)
end

-- add and upsert: ownership of replaced entries and quotas are checked in the
-- same transaction as the write.
local function write(self, fname, replace, entries, opts)
  local c, s = cstate(self, fname)
  local list, ids, nids = prepare(s, entries, fname)
  local q = s.quota
  local quotas = q.max_vectors_per_collection ~= nil or q.max_total_vectors ~= nil
  return (guarded(s, quotas or replace, function()
    local new = nids
    if replace then
      for id in pairs(ids) do
        local e = c.col:get(id, ANY)
        if e then
          if not owned(s, e) then not_owned_error(c, s, id) end
          new = new - 1
        end
      end
    end
    check_vectors(c, s, new)
    if replace then return c.col:upsert(list, opts) end
    if fname == "insert" then return c.col:insert(list, opts) end
    return c.col:add(list, opts)
  end))
end

--- Adds entries (one entry or an array): each gets scope `tenant:<id>` (a
-- different scope is refused) and `metadata.tenant_id = <id>` (a different
-- one is refused). Checked against `max_vectors_per_collection` and
-- `max_total_vectors` before anything is written.
-- @tparam table entries `{ id=, vector=, metadata=, ttl=|expires_at=, event_time= }`
--   or an array of them
-- @tparam[opt] table opts `{ threads = n }`
-- @treturn integer the number added
-- @raise bad argument; error object `conflict`, `quota`, `closed`
function TenantCollection:add(entries, opts)
  return (write(self, "add", false, entries, opts))
end

--- Adds entries as `add` does and answers as rs-llmspell's `insert`: the
-- ids inserted, in the order of the entries.
-- @tparam table entries one entry or an array of them
-- @tparam[opt] table opts `{ threads = n }`
-- @treturn {string,...} the ids
-- @raise as `add`
function TenantCollection:insert(entries, opts)
  return (write(self, "insert", false, entries, opts))
end

--- Inserts or replaces entries, as `add`; replacing counts nothing against
-- the quotas. An id held by an entry that is not this tenant's (its scope or
-- metadata.tenant_id says otherwise) is refused with `conflict`.
-- @tparam table entries
-- @tparam[opt] table opts `{ threads = n }`
-- @treturn integer the number written
function TenantCollection:upsert(entries, opts)
  return (write(self, "upsert", true, entries, opts))
end

--- An entry of this tenant, or nil (also when its scope or
-- metadata.tenant_id is not this tenant's).
-- @tparam string id
-- @tparam[opt] table opts `{ exclude_expired = true }`
-- @treturn ?table `{ id=, vector=, metadata=, scope=, created_at=, ... }`
function TenantCollection:get(id, opts)
  local c, s = cstate(self, "get")
  local e = call(function() return c.col:get(id, opts) end)
  if e and owned(s, e) then return e end
  return nil
end

--- Deletes entries of this tenant by id (one id or an array); ids of
-- entries that are not this tenant's are left alone.
-- @tparam string|{string,...} ids
-- @treturn integer the number deleted
function TenantCollection:delete(ids)
  local c, s = cstate(self, "delete")
  if type(ids) ~= "table" and type(ids) ~= "string" then
    argerror(1, "delete", "id or array of ids expected, got " .. typename(ids))
  end
  local list = type(ids) == "table" and ids or { ids }
  for i = 1, #list do
    if type(list[i]) ~= "string" then
      argerror(1, "delete", string.format("%s: string expected, got %s",
                                          type(ids) == "table" and "id " .. i or "id",
                                          typename(list[i])))
    end
  end
  return (guarded(s, true, function()
    local mine = {}
    for i = 1, #list do
      local e = c.col:get(list[i], ANY)
      if e and owned(s, e) then mine[#mine + 1] = list[i] end
    end
    if #mine == 0 then return 0 end
    return c.col:delete(mine)
  end))
end

--- Replaces an entry's metadata (`tenant_id` is set to this tenant; a
-- different one is refused).
-- @tparam string id
-- @tparam table metadata
-- @raise error object `not_found` when there is no such live entry of this tenant
function TenantCollection:update_metadata(id, metadata)
  local c, s = cstate(self, "update_metadata")
  if type(id) ~= "string" then
    argerror(1, "update_metadata", "string id expected, got " .. typename(id))
  end
  if type(metadata) ~= "table" then
    argerror(2, "update_metadata", "metadata table expected, got " .. typename(metadata))
  end
  if metadata.tenant_id ~= nil and metadata.tenant_id ~= s.id then
    argerror(2, "update_metadata", string.format("metadata.tenant_id must be '%s', got %s",
                                                 s.id, tostring(metadata.tenant_id)))
  end
  local md = {}
  for k, v in pairs(metadata) do md[k] = v end
  md.tenant_id = s.id
  guarded(s, true, function()
    local e = c.col:get(id)
    if not (e and owned(s, e)) then
      error(core.error("not_found", string.format("no entry '%s' in collection '%s'", id,
                                                  c.name), { tenant = s.id }), 0)
    end
    c.col:update_metadata(id, md)
  end)
end

-- Search options for the store: scope forced, tenant_id ANDed into the
-- filter, metadata always returned (for the check). Returns the options and
-- whether the caller wanted metadata.
local function search_options(s, opts, fname)
  if opts ~= nil and type(opts) ~= "table" then
    argerror(2, fname, "options table expected, got " .. typename(opts))
  end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  if o.scope ~= nil and o.scope ~= s.scope then
    argerror(2, fname, string.format("scope must be '%s' for tenant '%s', got %s", s.scope,
                                     s.id, tostring(o.scope)))
  end
  o.scope = s.scope
  local f = o.filter
  if f == nil then
    o.filter = { tenant_id = s.id }
  elseif type(f) ~= "table" then
    argerror(2, fname, "filter: table expected, got " .. typename(f))
  else
    -- A plain copy (a storage.filter() builder keeps its conditions as raw
    -- fields), with tenant_id as one more condition: the caller's paths in
    -- error messages stay as written.
    local copy = {}
    for k, v in pairs(f) do copy[k] = v end
    if copy.tenant_id == nil then
      copy.tenant_id = s.id
      o.filter = copy
    else
      o.filter = { ["$and"] = { copy, { tenant_id = s.id } } }
    end
  end
  local want_md = o.include_metadata ~= false
  o.include_metadata = true
  return o, want_md
end

-- The secondary check: keeps only this tenant's results.
local function recheck(s, results, want_md)
  local out = {}
  for _, r in ipairs(results) do
    if owned(s, r) then
      if not want_md then r.metadata = nil end
      out[#out + 1] = r
    end
  end
  return out
end

--- Searches this tenant's entries: scope `tenant:<id>` (a different `scope`
-- is refused), `filter` ANDed with `{ tenant_id = <id> }`, and every result
-- checked again for scope and tenant_id before it is returned. Options as
-- `col:search`.
-- @tparam table|string vector the query
-- @tparam[opt] table opts `{ k=, filter=, threshold=, ... }`
-- @treturn table results, best first
function TenantCollection:search(vector, opts)
  local c, s = cstate(self, "search")
  local o, want_md = search_options(s, opts, "search")
  return recheck(s, call(function() return c.col:search(vector, o) end), want_md)
end

--- Streams this tenant's entries without a query vector, as `col:scan`:
-- scope `tenant:<id>` (a different `scope` is refused), `filter` ANDed with
-- `{ tenant_id = <id> }`, each entry checked again before it is handed
-- out. Breaking out of the loop closes the scan.
-- @tparam[opt] table opts as `col:scan` (`order`, `after`, `limit`, ...)
-- @return the generic-for values
function TenantCollection:scan(opts)
  local c, s = cstate(self, "scan")
  local o, want_md = search_options(s, opts, "scan")
  local ok, f, st, _, closer = pcall(c.col.scan, c.col, o)
  if not ok then reraise(f) end
  local ctl
  local function next_entry()
    while true do
      local e = f(st, ctl)
      ctl = e
      if e == nil then return nil end
      if owned(s, e) then
        if not want_md then e.metadata = nil end
        return e
      end
    end
  end
  return next_entry, st, nil, closer
end

--- Answers a batch of queries, each as `search` does.
-- @tparam table vectors an array of queries
-- @tparam[opt] table opts as `search` (plus `threads`)
-- @treturn table one result array per query
function TenantCollection:search_many(vectors, opts)
  local c, s = cstate(self, "search_many")
  local o, want_md = search_options(s, opts, "search_many")
  local all = call(function() return c.col:search_many(vectors, o) end)
  for i = 1, #all do all[i] = recheck(s, all[i], want_md) end
  return all
end

--- The collection's stats (as `col:stats()`), with `name` tenant-local and
-- `full_name` and `tenant` added.
-- @treturn table
function TenantCollection:stats()
  local c, s = cstate(self, "stats")
  local st = c.col:stats()
  st.full_name, st.name, st.tenant = c.full, c.name, s.id
  return st
end

local function check_scope(s, scope, fname)
  if scope ~= nil and scope ~= s.scope then
    argerror(1, fname, string.format("scope must be '%s' for tenant '%s', got %s", s.scope,
                                     s.id, tostring(scope)))
  end
  return s.scope
end

--- `{ scope=, vectors=, bytes= }` for the tenant's scope (the only one
-- allowed; the default).
-- @tparam[opt] string scope `tenant:<id>`
-- @treturn table
function TenantCollection:stats_for_scope(scope)
  local c, s = cstate(self, "stats_for_scope")
  return (c.col:stats_for_scope(check_scope(s, scope, "stats_for_scope")))
end

--- Deletes every entry of the tenant's scope in this collection.
-- @tparam[opt] string scope `tenant:<id>` (the only one allowed; the default)
-- @treturn integer the number deleted
function TenantCollection:delete_scope(scope)
  local c, s = cstate(self, "delete_scope")
  return (c.col:delete_scope(check_scope(s, scope, "delete_scope")))
end

--- The collection's tenant-local name.
-- @treturn string
function TenantCollection:name()
  return (cstate(self, "name")).name
end

-- Forwarded to the store (and its collection objects) as they are: the
-- methods that hold no tenant data (spec/wrapper_spec.lua lists them, so a
-- method the core gains is looked at here before it is forwarded).
wrapper.complete(Tenant)
wrapper.complete(TenantCollection)

return tenant
