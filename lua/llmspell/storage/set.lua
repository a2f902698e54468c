--- llmspell.storage.set: per-component backends ("hot-swap"), one object.
--
--    local storage = require "llmspell.storage"
--    local set <close> = storage.open_set{
--      default = "postgresql://app@db/llm",   -- every component not named
--      sessions = "memory", vectors = "sqlite:vec.db", tenant = "acme" }
--    set:sessions():create("chat-1")          -- on the memory store
--    set:collection("docs", { dimension = 384, create = true })  -- in vec.db
--    set:set("k", "v")                        -- the kv component: PostgreSQL
--    print(set.kv, set.vectors)               -- the store handles themselves
--    for c, where in pairs(set:describe().components) do print(c, where.url) end
--
-- Each component (`kv`, `vectors`, `sessions`, `artifacts`, `agent_states`,
-- `workflows`, `graph`, `patterns`, `events`, `hook_history`, `api_keys`)
-- goes to the backend its key names, or to `default`. Components that name
-- the same backend share one store, opened once; artifacts always live
-- with sessions (they link to them). The set has the store's API, each
-- method sent to the store of the component it belongs to (docs/open_set.md
-- lists which), and refuses use after `close` (which closes each store
-- once). `set:transaction` covers one store unless asked otherwise.
--
-- @module llmspell.storage.set

local core = require "llmspell.storage.core"
local wrapper = require "llmspell.storage.wrapper"

local M = {}

local THIS_FILE = debug.getinfo(1, "S").short_src

local type, pairs, ipairs, error, pcall, tostring = type, pairs, ipairs, error, pcall, tostring
local format, concat, sort = string.format, table.concat, table.sort
local pack, unpack = table.pack, table.unpack

--- The components, in the order `describe` lists them.
M.COMPONENTS = { "kv", "vectors", "sessions", "artifacts", "agent_states", "workflows",
                 "graph", "patterns", "events", "hook_history", "api_keys" }
local IS_COMPONENT = {}
for _, c in ipairs(M.COMPONENTS) do IS_COMPONENT[c] = true end

--- The seeds' (rs-llmspell's section) names accepted for a component.
M.ALIASES = { kv_store = "kv", vector_embeddings = "vectors", agent_state = "agent_states",
              workflow_state = "workflows", workflow_states = "workflows",
              knowledge_graph = "graph", procedural_memory = "patterns", event_log = "events" }

-- Which store answers each method of the store's API: the component it
-- belongs to. Methods not listed (the KV methods, and any the core gains)
-- go to the kv component's store.
local ROUTE = {
  collection = "vectors", create_collection = "vectors", drop_collection = "vectors",
  list_collections = "vectors",
  sessions = "sessions", artifacts = "sessions", agent_states = "agent_states",
  workflows = "workflows", graph = "graph", patterns = "patterns", events = "events",
  hook_history = "hook_history", api_keys = "api_keys",
}

-- The seeds' sled `mode`s (storage.open's `synchronous` takes them).
local SLED_MODES = { fast = true, balanced = true, safe = true }

-- ---------------------------------------------------------------------------
-- Errors

local NAME = "open_set"

-- Raises "bad argument #1 to 'open_set' (<where><msg>)" at the user's line;
-- `where` is the config file's name and ": " or "".
local function bad(cx, msg)
  wrapper.argerror(1, NAME, cx.where .. msg, THIS_FILE)
end

local function closed_error()
  return core.error("closed", "store set is closed")
end

-- Raises an error object positioned at the user's line.
local function raise(code, msg, fields)
  error(core.error(code, msg, fields, wrapper.user_level(THIS_FILE)), 0)
end

-- ---------------------------------------------------------------------------
-- Reading the config: each value becomes a store description
-- { backend = "memory"|"sqlite"|"postgres", path =, url =, options = {},
--   note = }.

-- What a URL string names: backend, location, note; or nil when it is not
-- a form storage.open takes (nor a seed's name). `follow` is true for the
-- bare names that take their location from `default`.
local function classify(s)
  if s == "memory" then return "memory" end
  if s == "postgres" or s == "postgresql" then return "postgres", nil, nil, true end
  if s == "hnsw" then
    return nil, nil, "hnsw: every collection is an HNSW index; they stay in the default store",
           true
  end
  local path = s:match("^sqlite:(.+)$")
  if path then return "sqlite", path end
  path = s:match("^sled:(.+)$")
  if path then return "sqlite", path, "sled: the seeds' embedded store, kept in SQLite here" end
  path = s:match("^hnsw:(.+)$")
  if path then return "sqlite", path, "hnsw: HNSW collections persisted in SQLite here" end
  if s:match("^postgres[q]?[l]?://") then return "postgres", s end
  if s:find("=", 1, true) and not s:find("://", 1, true) then return "postgres", s end
  return nil
end

local URL_FORMS = '"memory", "sqlite:PATH", "postgresql://...", a libpq conninfo, '
  .. '"sled:PATH", "hnsw" or a table of storage.open options'

-- Copies `from` into a new description with the fields of `over`.
local function derive(from, over)
  local d = { backend = from.backend, path = from.path, url = from.url, options = {},
              note = from.note }
  for k, v in pairs(from.options) do d.options[k] = v end
  for k, v in pairs(over) do d[k] = v end
  return d
end

-- A bare name that follows `default` ("postgres", "hnsw").
local function follow(cx, key, backend, note, dflt)
  if key == "default" or not dflt then
    bad(cx, format("%s: '%s' needs a location here (%s)", key, backend or "hnsw", URL_FORMS))
  end
  if backend and dflt.backend ~= backend then
    bad(cx, format("%s: '%s' without a URL takes the default's, but default is %s", key,
                   backend, dflt.backend))
  end
  return derive(dflt, { note = note, hnsw = backend == nil })
end

local function from_string(cx, key, s, dflt)
  if s == "" then bad(cx, format("%s: empty URL", key)) end
  if s == "sqlite" or s == "sled" then
    bad(cx, format("%s: '%s' needs a path ('%s:PATH', or { backend = \"%s\", path = ... })",
                   key, s, s, s))
  end
  local backend, loc, note, follows = classify(s)
  if follows then return follow(cx, key, backend, note, dflt) end
  if not backend then
    bad(cx, format("%s: unknown storage URL '%s' (expected %s)", key, s, URL_FORMS))
  end
  local d = { backend = backend, options = {}, note = note, hnsw = s:match("^hnsw:") and true }
  if backend == "sqlite" then d.path = loc elseif backend == "postgres" then d.url = loc end
  return d
end

-- The seeds' sled settings, as SQLite options.
local function sled_options(cx, key, t, opts)
  if t.mode ~= nil then
    if not SLED_MODES[t.mode] then
      bad(cx, format("%s.mode: expected \"fast\", \"balanced\" or \"safe\"", key))
    end
    opts.synchronous = t.mode
  end
  local mb = t.cache_capacity_mb
  if mb ~= nil then
    if math.type(mb) ~= "integer" or mb < 1 then
      bad(cx, format("%s.cache_capacity_mb: expected a positive integer", key))
    end
    opts.cache_size = -mb * 1024
  end
end

local function from_table(cx, key, t, dflt)
  local b, url, path = t.backend, t.url, t.path
  for _, f in ipairs { "backend", "url", "path" } do
    if t[f] ~= nil and type(t[f]) ~= "string" then
      bad(cx, format("%s.%s: expected a string, got %s", key, f, type(t[f])))
    end
  end
  if t.tenant ~= nil then
    bad(cx, format("%s.tenant: the tenant is the set's (a top-level 'tenant'), not a component's",
                   key))
  end
  local opts, sled = {}, b == "sled"
  for k, v in pairs(t) do
    if type(k) ~= "string" then bad(cx, format("%s: option keys must be strings", key)) end
    if k ~= "backend" and k ~= "url" and k ~= "path"
       and not (sled and (k == "mode" or k == "cache_capacity_mb")) then
      opts[k] = v
    end
  end
  if sled then sled_options(cx, key, t, opts) end
  local d
  if url then
    d = from_string(cx, key, url, dflt)
  elseif b == "sled" or b == "hnsw" or b == "sqlite" then
    if path then
      d = from_string(cx, key, (b == "sqlite" and "sqlite:" or b .. ":") .. path, dflt)
    else
      d = from_string(cx, key, b, dflt)
    end
  elseif b == "memory" or b == "postgres" or b == "postgresql" then
    d = from_string(cx, key, b, dflt)
  elseif b then
    bad(cx, format("%s.backend: unknown backend '%s' (memory, sqlite, postgres, sled, hnsw)", key,
                   b))
  else
    bad(cx, format("%s: a table needs 'backend' or 'url'", key))
  end
  if b and url and b ~= "sled" and b ~= "hnsw" and (b == "postgresql" and "postgres" or b)
     ~= d.backend then
    bad(cx, format("%s: 'backend' (%s) and 'url' name different backends", key, b))
  end
  if d.backend == "sqlite" and path and not d.path then d.path = path end
  for k, v in pairs(opts) do d.options[k] = v end
  return d
end

local function describe_value(cx, key, v, dflt)
  if type(v) == "string" then return from_string(cx, key, v, dflt) end
  if type(v) == "table" then return from_table(cx, key, v, dflt) end
  bad(cx, format("%s: expected a URL string or an options table, got %s", key, type(v)))
end

-- The identity of a store: two descriptions with the same one share a
-- handle.
local function identity(d)
  local parts = { d.backend, d.path and d.path:gsub("^%./", "") or d.url or "" }
  local keys = {}
  for k in pairs(d.options) do keys[#keys + 1] = k end
  sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tostring(d.options[k]) end
  return concat(parts, "\0")
end

-- The config with the seeds' shapes folded in: `{ storage = {...} }` as the
-- only key, `backend` for `default`, the aliases. Returns a table of
-- component -> value, the default's value and the tenant.
local function normalise(cx, cfg)
  local only = next(cfg)
  if only == "storage" and next(cfg, only) == nil then
    if type(cfg.storage) ~= "table" then bad(cx, "storage: expected a table") end
    cfg = cfg.storage
  end
  local comps, dflt, tenant, given = {}, nil, nil, {}
  for k, v in pairs(cfg) do
    if type(k) ~= "string" then bad(cx, "config keys must be strings, got " .. type(k)) end
    if k == "default" or k == "backend" then
      if dflt ~= nil then bad(cx, "'backend' is the seeds' name of 'default': give one") end
      dflt = v
    elseif k == "tenant" then
      if type(v) ~= "string" then bad(cx, "tenant: expected a string, got " .. type(v)) end
      tenant = v
    else
      local c = IS_COMPONENT[k] and k or M.ALIASES[k]
      if not c then
        bad(cx, format("unknown component '%s' (components: %s; or default, tenant)", k,
                       concat(M.COMPONENTS, ", ")))
      end
      if given[c] then bad(cx, format("'%s' and '%s' both name %s", given[c], k, c)) end
      given[c], comps[c] = k, v
    end
  end
  return comps, dflt, tenant, given
end

-- component -> description (artifacts: the sessions' one), and the
-- default's description (nil when every component is named).
local function plan(cx, cfg)
  local comps, dflt_v, tenant, given = normalise(cx, cfg)
  local dflt = dflt_v ~= nil and describe_value(cx, "default", dflt_v, nil) or nil
  local out = {}
  for _, c in ipairs(M.COMPONENTS) do
    local v = comps[c]
    if v ~= nil then
      out[c] = describe_value(cx, given[c], v, dflt)
      if out[c].hnsw and c ~= "vectors" then
        bad(cx, format("%s: 'hnsw' names the vectors' store, not %s's", given[c], c))
      end
      if given[c] ~= c then
        out[c].note = (out[c].note and out[c].note .. "; " or "")
          .. format("%s: the seeds' name of %s", given[c], c)
      end
    elseif c ~= "artifacts" then
      if not dflt then
        bad(cx, format("%s: not named and no 'default' to put it in", c))
      end
      out[c] = derive(dflt, {})
    end
  end
  local sid = identity(out.sessions)
  if out.artifacts and identity(out.artifacts) ~= sid then
    bad(cx, format("%s: artifacts follow sessions (they link to them); name sessions' store "
                   .. "or leave artifacts out", given.artifacts))
  end
  out.artifacts = derive(out.sessions, { note = "artifacts follow sessions" })
  return out, tenant or "default"
end

-- ---------------------------------------------------------------------------
-- Reading a config file

-- The config a Lua file holds: the table it returns, or the globals it
-- sets. It runs with no globals at all (no require, io, os, print, ...):
-- a config is data.
local function load_file(path)
  local env = {}
  local chunk, err = loadfile(path, "t", env)
  if not chunk then
    local f = io.open(path, "rb")
    if not f then raise("io", format("cannot read config file '%s'", path), { path = path }) end
    f:close()
    raise("format", "config file " .. tostring(err), { path = path })
  end
  local ok, res = pcall(chunk)
  if not ok then
    raise("format", format("config file '%s' failed: %s", path, tostring(res)), { path = path })
  end
  if res == nil then return env end
  if type(res) ~= "table" then
    raise("format", format("config file '%s' returned a %s, not a table", path, type(res)),
          { path = path })
  end
  return res
end

-- ---------------------------------------------------------------------------
-- Opening

-- The URL with any password hidden, for describe() and tostring.
local function redact(s)
  if not s then return nil end
  s = s:gsub("^(%a[%w+.-]*://[^:/@]*):[^@/]*@", "%1:***@")
  s = s:gsub("(password%s*=%s*)'[^']*'", "%1***"):gsub("(password%s*=%s*)[^%s']+", "%1***")
  return s
end

local function location(d)
  if d.backend == "memory" then return "memory" end
  if d.backend == "sqlite" then return "sqlite:" .. d.path end
  return redact(d.url)
end

-- Opens one store of the set; errors name the component(s) it is for.
local function open_store(d, tenant, names)
  local o = { backend = d.backend, tenant = tenant }
  if d.path then o.path = d.path end
  if d.url then o.url = d.url end
  for k, v in pairs(d.options) do o[k] = v end
  local ok, db = pcall(core.open, o)
  if ok then return db end
  local who = concat(names, ", ")
  if core.is_error(db) then
    raise(db.code, format("%s (%s): %s", who, location(d), tostring(db.message)),
          { backend = db.backend, sqlstate = db.sqlstate, sqlite_code = db.sqlite_code,
            component = names[1] })
  end
  local msg = tostring(db):gsub("^bad argument #1 to '[^']*' %((.*)%)$", "%1")
  wrapper.argerror(1, NAME, format("%s: %s", who, msg), THIS_FILE)
end

-- Groups the components by store identity, in the order components are
-- listed; opens each store once (closing those opened when one fails).
local function open_all(descs, tenant)
  local stores, by_id, of = {}, {}, {}
  for _, c in ipairs(M.COMPONENTS) do
    local d = descs[c]
    local id = identity(d)
    local s = by_id[id]
    if not s then
      s = { desc = d, components = {}, index = #stores + 1 }
      by_id[id] = s
      stores[#stores + 1] = s
    end
    s.components[#s.components + 1] = c
    of[c] = s
  end
  for i, s in ipairs(stores) do
    local ok, db = pcall(open_store, s.desc, tenant, s.components)
    if not ok then
      for j = i - 1, 1, -1 do stores[j].db:close() end
      error(db, 0)
    end
    s.db = db
  end
  return stores, of
end

-- ---------------------------------------------------------------------------
-- The set object

local function describe_set(st)
  if st._closed then return "closed" end
  local parts = {}
  for _, s in ipairs(st._stores) do
    parts[#parts + 1] = format("%s: %s", location(s.desc), concat(s.components, ","))
  end
  return format("%d store%s, tenant %s; %s", #st._stores, #st._stores == 1 and "" or "s",
                st._tenant, concat(parts, "; "))
end

local Set, check = wrapper.class {
  name = "llmspell.storage.Set", api = "store", file = THIS_FILE,
  extras = { "describe", "store", "api_keys" },
  closed = function(st) return st._closed end,
  closed_error = closed_error,
  inner = function(st) return st._of.kv.db end,
  on_close = function(st)
    if st._closed then return end
    st._closed = true
    for i = #st._stores, 1, -1 do st._stores[i].db:close() end
  end,
  describe = describe_set,
}

-- Re-raises an error of a routed call: a bad-argument message positioned
-- in set.lua gets the user's position; error objects pass unchanged.
local function reraise(err)
  if type(err) == "string" then
    local rest = err:match("^[^:]*set%.lua:%d+: (bad argument.*)$")
    if rest then error(rest, wrapper.user_level(THIS_FILE)) end
  end
  error(err, 0)
end

-- Methods that only describe the store: allowed in any transaction.
local UNGUARDED = { backend_type = true, characteristics = true, migrations = true }

-- Refuses a call reaching a store outside the running set:transaction:
-- its write would not be in the transaction.
local function guard(st, comp, s, name)
  local tx = st._tx
  if tx and not tx[s] and not UNGUARDED[name] then
    raise("invalid", format(
      "%s: %s is on %s, outside the running transaction (on %s); name it in the "
      .. "transaction's components, or pass per_store = true", name, comp, location(s.desc),
      tx.where))
  end
end

-- A method sent to the store of the component it belongs to, called in
-- method syntax (not a tail call) so the core's messages name it.
local function routed(name)
  local comp = ROUTE[name] or "kv"
  local call = assert(load(format(
    "local pack = ... return function(o, ...) return pack(o:%s(...)) end", name),
    "=" .. THIS_FILE, "t", {}))(pack)
  return function(self, ...)
    local st = check(self, name)
    local s = st._of[comp]
    guard(st, comp, s, name)
    if name == "api_keys" and type(s.db.api_keys) ~= "function" then
      raise("invalid", "api_keys: this build has no API key store yet (the name is routed; "
            .. "its component comes later)")
    end
    local r = pack(pcall(call, s.db, ...))
    if not r[1] then reraise(r[2]) end
    return unpack(r[2], 1, r[2].n)
  end
end

--- The set's tenant (every store of the set has it).
-- @treturn string
function Set:tenant()
  return check(self, "tenant")._tenant
end

--- Which component is where: `{ tenant =, components = { <name> = { store =
-- <index in stores>, backend =, url =, note = } }, stores = { { backend =,
-- url =, components = {...} }, ... } }`. URLs have their password hidden;
-- `note` says how a seed's name (`sled`, `hnsw`, an alias) was read, and
-- that artifacts follow sessions.
-- @treturn table
function Set:describe()
  local st = check(self, "describe")
  local out = { tenant = st._tenant, components = {}, stores = {} }
  for i, s in ipairs(st._stores) do
    local list = {}
    for j, c in ipairs(s.components) do list[j] = c end
    out.stores[i] = { backend = s.desc.backend, url = location(s.desc), components = list }
  end
  for _, c in ipairs(M.COMPONENTS) do
    local s = st._of[c]
    out.components[c] = { store = s.index, backend = s.desc.backend, url = location(s.desc),
                          note = st._descs[c].note }
  end
  return out
end

--- The store handle a component lives in (`set:store("sessions")`); a
-- store shared by several components is the same handle for each.
-- @tparam string component one of `storage.set.COMPONENTS` (or an alias)
-- @treturn userdata the `llmspell.storage.Store`
function Set:store(component)
  local st = check(self, "store")
  local c = type(component) == "string" and (IS_COMPONENT[component] and component
                                               or M.ALIASES[component])
  if not c then
    wrapper.argerror(1, "store", format("unknown component %s (components: %s)",
                     type(component) == "string" and "'" .. component .. "'" or type(component),
                     concat(M.COMPONENTS, ", ")), THIS_FILE)
  end
  return st._of[c].db
end

-- The stores a transaction covers: those of opts.components, or all.
local function tx_stores(st, opts)
  if opts.components == nil then return st._stores end
  if type(opts.components) ~= "table" then
    wrapper.argerror(2, "transaction", "components: expected an array of names", THIS_FILE)
  end
  local seen, list = {}, {}
  for i, name in ipairs(opts.components) do
    local c = type(name) == "string" and (IS_COMPONENT[name] and name or M.ALIASES[name])
    if not c then
      wrapper.argerror(2, "transaction", format("components[%d]: unknown component %s", i,
                       tostring(name)), THIS_FILE)
    end
    local s = st._of[c]
    if not seen[s] then seen[s] = true; list[#list + 1] = s end
  end
  sort(list, function(a, b) return a.index < b.index end)
  return list
end

-- Runs fn(set) inside the transactions of stores[i..n], nested; marks which
-- stores the running transaction covers.
local function nest(self, st, stores, i, fn)
  if i > #stores then return fn(self) end
  return stores[i].db:transaction(function() return nest(self, st, stores, i + 1, fn) end)
end

--- Runs `fn(set)` in a transaction; commits on return, rolls back and
-- rethrows on error (the store's `transaction`, `tx == set`).
--
-- One transaction covers one store. When the components involved (all of
-- the set's, or `opts.components`) live on one store, it is that store's
-- transaction: all or nothing, nested calls are savepoints. When they
-- span stores it is refused (`invalid`, naming the stores), unless
-- `opts.per_store = true`: then each store runs its own transaction,
-- nested; an error rolls every one back, but commits happen store by store
-- (the last store in `describe().stores` order first), so a failing commit
-- leaves the stores committed before it committed. While it runs, a set
-- method reaching a store outside it raises `invalid`.
-- @tparam function fn
-- @tparam[opt] table opts `components = { names }`, `per_store = boolean`
-- @return what fn returns
function Set:transaction(fn, opts)
  local st = check(self, "transaction")
  if type(fn) ~= "function" then
    wrapper.argerror(1, "transaction", "function expected, got " .. type(fn), THIS_FILE)
  end
  if opts ~= nil and type(opts) ~= "table" then
    wrapper.argerror(2, "transaction", "table expected, got " .. type(opts), THIS_FILE)
  end
  opts = opts or {}
  local stores = tx_stores(st, opts)
  if #stores > 1 and not opts.per_store then
    local parts = {}
    for _, s in ipairs(stores) do
      parts[#parts + 1] = format("%s (%s)", concat(s.components, ","), location(s.desc))
    end
    raise("invalid", format(
      "transaction: the components are on %d stores: %s; one transaction covers one store "
      .. "(pass components = {...} on one store, or per_store = true)", #stores,
      concat(parts, "; ")))
  end
  local outer = st._tx
  local tx = { where = location(stores[1].desc) }
  for _, s in ipairs(stores) do
    if outer and not outer[s] then guard(st, s.components[1], s, "transaction") end
    tx[s] = true
  end
  st._tx = tx
  local r = pack(pcall(nest, self, st, stores, 1, fn))
  st._tx = outer
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

-- The component each count of stats().components belongs to.
local COUNT_OF = { sessions = "sessions", artifacts = "sessions", artifact_content = "sessions",
                   agent_state = "agent_states", workflow_states = "workflows",
                   entities = "graph", relationships = "graph", procedural_memory = "patterns",
                   event_log = "events", hook_history = "hook_history" }

local stats_of = routed("stats")

--- The set's statistics: the kv store's `stats()` (keys, bytes, backend,
-- location, transaction_depth), with `collections` counted in the vectors'
-- store and each of `components`' counts in its component's store.
-- @treturn table
function Set:stats()
  local out = stats_of(self)
  local st = self
  out.collections = st._of.vectors.db:stats().collections
  local per = {}
  for name in pairs(out.components or {}) do
    local s = st._of[COUNT_OF[name] or "kv"]
    per[s] = per[s] or s.db:stats().components
    out.components[name] = per[s][name]
  end
  return out
end

-- Not in the store's API yet (its component comes later): routed by name.
Set.api_keys = routed("api_keys")

--- Closes every store of the set, each once (idempotent; also `<close>`).
-- Later calls raise `closed`.
-- @function Set:close

wrapper.complete(Set, routed)

-- `set.kv`, `set.vectors`: the store handles of those components.
local FIELDS = { kv = true, vectors = true }
Set.__index = function(self, k)
  local m = Set[k]
  if m ~= nil then return m end
  if FIELDS[k] then return check(self, k)._of[k].db end
end

--- Opens a set of stores, one per distinct backend the config names (see
-- the module's doc and docs/open_set.md).
-- @tparam table|string config a config table, or the path of a Lua file
--   holding one (returned, or set as globals; run with no globals)
-- @treturn table the set (`llmspell.storage.Set`)
-- @raise bad argument naming the key for an unknown component, a bad URL
--   or option, artifacts placed away from sessions; error objects (with
--   `component`) when a store cannot open; `io`/`format` for the file
function M.open(config)
  local cx = { where = "" }
  if type(config) == "string" then
    cx.where = config .. ": "
    config = load_file(config)
  elseif type(config) ~= "table" then
    wrapper.argerror(1, NAME, "config table or file path expected, got " .. type(config),
                     THIS_FILE)
  end
  local descs, tenant = plan(cx, config)
  if type(tenant) ~= "string" or tenant == "" then bad(cx, "tenant: must not be empty") end
  local stores, of = open_all(descs, tenant)
  local st = { _stores = stores, _of = of, _descs = descs, _tenant = tenant, _closed = false }
  return setmetatable(st, Set)
end

-- The set is its own state (wrapper.class's default `state`).
M.Set = Set

return M
