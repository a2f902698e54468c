--- storage.open_set (COMPONENTS.md "Per-component backends"): a set with
-- sessions in memory, vectors in SQLite and the rest in PostgreSQL passes
-- the components' own contract specs (sessions, artifacts, agent states,
-- workflows, graph, patterns, events, hook history, and the key-value and
-- collection contracts): each spec file is loaded with a `spec.helpers`
-- whose backends() is that set, and only its contract describes run (its
-- raw-SQL and process describes are about one backend, and run in its own
-- file). Then what only a set has: stores opened once, describe(), the
-- config file, bad configs refused naming the key before anything opens,
-- transactions across stores, close.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"
local setmod = require "llmspell.storage.set"

local SET_NAME = "open_set (sessions in memory, vectors in SQLite, the rest in PostgreSQL)"

--- The config of the spec's set: sessions in memory, vectors in the SQLite
-- file at path, the rest in PostgreSQL.
local function config(path, tenant)
  return { default = helpers.pg_url(), sessions = "memory", vectors = "sqlite:" .. path,
           tenant = tenant }
end

--- What a component contract takes for a store: the set, except that
-- backend_type is the component's store's (the contracts compare it with
-- the component's tostring and error objects) and transactions run per
-- store (the contracts mix KV writes with the component's, and the kv
-- component is on another store than sessions or vectors: rollback covers
-- every store, which is what they check).
local function view(set, component)
  local v = {}
  return setmetatable(v, {
    __index = function(_, k)
      if k == "backend_type" then
        return function() return set:store(component):backend_type() end
      elseif k == "transaction" then
        return function(_, fn, opts)
          opts = opts or {}
          opts.per_store = true
          if type(fn) ~= "function" then return set:transaction(fn, opts) end
          return set:transaction(function() return fn(v) end, opts)
        end
      end
      local m = set[k]
      if type(m) ~= "function" then return m end
      return function(self, ...)
        if rawequal(self, v) then self = set end
        return m(self, ...)
      end
    end,
    __tostring = function() return tostring(set) end,
    __store = function() return set:store(component) end,
    __close = function() set:close() end,
  })
end

-- The contracts take the backend's name for its kind ("memory", "sqlite
-- file", "postgres"): each component's entry is named for the store the
-- set puts it on.
local KIND = { sessions = "memory", artifacts = "memory", vectors = "sqlite file" }

--- The helpers.backends() entry for one component's contract.
local function set_backend(component)
  local kind = KIND[component] or "postgres"
  return {
    name = kind,
    -- a second handle sees the same rows unless the component is in memory
    shared = kind ~= "memory",
    setup = function(self)
      self.tenant = helpers.unique_tenant("set")
      self.path = helpers.tmpname(".db")
    end,
    open = function(opts, self)
      local tenant = self.tenant
      for k, val in pairs(opts or {}) do
        assert(k == "tenant", "the set backend takes only tenant, got " .. tostring(k))
        tenant = val
      end
      return view(storage.open_set(config(self.path, tenant)), component)
    end,
    teardown = function(self) helpers.remove_db(self.path) end,
  }
end

--- Loads a spec file with helpers.backends() returning the set, keeping
-- only its contract's top-level describes ("<prefix><kind>" plain and in a
-- coroutine); the others are about one backend and run in their own file.
-- The KV contract's tests of what a Store handle is (its __name and
-- tostring, open and closed): a set is a `llmspell.storage.Set`, whose own
-- tostring and close are tested below.
local NOT_A_STORE = { ["prints what it is"] = true,
                      ["closes idempotently and refuses use after close"] = true }

local function contract_of(file, component, prefix)
  local b = set_backend(component)
  local fake = setmetatable({ backends = function() return { b } end }, { __index = helpers })
  local keep = {}
  for _, run in ipairs(helpers.runs(it)) do keep[prefix .. b.name .. run.name] = true end
  local depth = 0
  local function filtered(name, body)
    if depth == 0 then
      if not keep[name] then return end
      name = name .. " [the set's " .. component .. "]"
    end
    return describe(name, function(...)
      depth = depth + 1
      local ok, err = pcall(body, ...)
      depth = depth - 1
      if not ok then error(err, 0) end
    end)
  end
  local function it_(name, ...)
    if component == "kv" and NOT_A_STORE[name] then return end
    return it(name, ...)
  end
  -- an export file seeds rows the contract could not write through the API
  -- (patterns with chosen times): it is imported into the component's store
  local fake_storage = setmetatable({
    importer = function(db, ...)
      local mt = getmetatable(db)
      if type(mt) == "table" and mt.__store then db = mt.__store() end
      return storage.importer(db, ...)
    end,
  }, { __index = storage })
  local env = setmetatable({
    describe = filtered,
    it = it_,
    require = function(name)
      if name == "spec.helpers" then return fake end
      if name == "llmspell.storage" then return fake_storage end
      return require(name)
    end,
  }, { __index = _ENV })
  assert(loadfile(file, "t", env))()
end

describe("the component contracts through " .. SET_NAME, function()
  for _, c in ipairs {
    { "sessions", "sessions on " }, { "artifacts", "artifacts on " },
    { "agent_states", "agent states on " }, { "workflows", "workflows on " },
    { "graph", "graph on " }, { "patterns", "patterns on " }, { "events", "events on " },
    { "hook_history", "hook history on " }, { "kv_contract", "KV contract on ", "kv" },
    { "collection_contract", "collection contract on ", "vectors" },
  } do
    contract_of("spec/" .. c[1] .. "_spec.lua", c[3] or c[1], c[2])
  end
end)

-- ------------------------------------------------------------ the set itself

describe("storage.open_set", function()
  local path, tenant, set

  before_each(function()
    path = helpers.tmpname(".db")
    tenant = helpers.unique_tenant("set")
  end)

  after_each(function()
    if set then set:close() end
    set = nil
    helpers.remove_db(path)
  end)

  local function open(extra)
    local cfg = config(path, tenant)
    for k, v in pairs(extra or {}) do cfg[k] = v end
    set = storage.open_set(cfg)
    return set
  end

  it("puts each component on its store and opens a shared store once", function()
    open()
    assert.equal("postgres", set.kv:backend_type())
    assert.equal("sqlite", set.vectors:backend_type())
    assert.equal("memory", set:store("sessions"):backend_type())
    assert.is_true(rawequal(set:store("sessions"), set:store("artifacts")))
    for _, c in ipairs { "agent_states", "workflows", "graph", "patterns", "events",
                         "hook_history", "api_keys" } do
      assert.is_true(rawequal(set.kv, set:store(c)), c)
    end
    -- the components come from their stores, the same objects each call
    assert.is_true(rawequal(set:sessions(), set:store("sessions"):sessions()))
    assert.is_true(rawequal(set:artifacts(), set:store("sessions"):artifacts()))
    assert.is_true(rawequal(set:graph(), set.kv:graph()))
    assert.matches("^llmspell%.storage%.Sessions %(memory ", tostring(set:sessions()))
    assert.matches("^llmspell%.storage%.Graph %(postgres ", tostring(set:graph()))
    -- every store carries the set's tenant
    assert.equal(tenant, set:tenant())
    for _, c in ipairs(setmod.COMPONENTS) do assert.equal(tenant, set:store(c):tenant()) end
    -- KV goes to PostgreSQL, collections to the SQLite file
    set:set("k", "v")
    assert.equal("v", set.kv:get("k"))
    assert.is_nil(set.vectors:get("k"))
    local col = set:collection("docs", { dimension = 2, create = true })
    col:upsert { id = "a", vector = { 1, 0 } }
    assert.equal(1, #set.vectors:list_collections())
    assert.equal(0, #set.kv:list_collections())
    assert.equal("a", set:collection("docs"):search({ 1, 0 }, { k = 1 })[1].id)
    set.kv:clear()
  end)

  it("describes which component is where", function()
    open()
    local d = set:describe()
    assert.equal(tenant, d.tenant)
    assert.equal(3, #d.stores)
    assert.same({ "kv", "agent_states", "workflows", "graph", "patterns", "events",
                  "hook_history", "api_keys" }, d.stores[1].components)
    assert.same({ "vectors" }, d.stores[2].components)
    assert.same({ "sessions", "artifacts" }, d.stores[3].components)
    assert.same({ store = 3, backend = "memory", url = "memory",
                  note = "artifacts follow sessions" }, d.components.artifacts)
    assert.same({ store = 2, backend = "sqlite", url = "sqlite:" .. path }, d.components.vectors)
    assert.equal("postgres", d.components.events.backend)
    assert.matches("^llmspell%.storage%.Set %(3 stores, tenant " .. tenant, tostring(set))
    -- a password is never shown
    local ok, err = pcall(storage.open_set, { default = "memory",
      kv = "postgresql://app:s3cret@127.0.0.1:1/x?connect_timeout=5" })
    assert.is_false(ok)
    assert.equal("connection", err.code)
    assert.matches("kv (postgresql://app:***@127.0.0.1:1/x", err.message, 1, true)
    assert.not_matches("s3cret", tostring(err), 1, true)
  end)

  it("reads the seeds' names: sled as SQLite, hnsw as the vectors' store, aliases", function()
    local s = storage.open_set { backend = "memory",
      vector_embeddings = "hnsw", event_log = { backend = "sled", path = path, mode = "safe" } }
    local d = s:describe()
    assert.equal("memory", d.components.vectors.backend)
    assert.matches("hnsw", d.components.vectors.note, 1, true)
    assert.equal("sqlite", d.components.events.backend)
    assert.matches("sled", d.components.events.note, 1, true)
    assert.matches("event_log", d.components.events.note, 1, true)
    s:events():append { type = "x" }
    s:close()
    local db = storage.open("sqlite:" .. path)
    assert.equal(1, #db:events():query {})
    db:close()
    -- seed 003's hot-swap example, as it is: [storage] with per-component sections
    s = storage.open_set { storage = { backend = helpers.pg_url(), tenant = tenant,
      vector_embeddings = { backend = "hnsw" }, sessions = { backend = "memory" },
      event_log = { backend = "postgres" } } }
    d = s:describe()
    assert.equal(2, #d.stores)
    assert.same({ "sessions", "artifacts" }, d.stores[2].components)
    assert.equal(1, d.components.vectors.store)
    assert.equal(1, d.components.events.store)
    assert.is_true(rawequal(s.kv, s.vectors))
    s:close()
    -- "hnsw:PATH" persists the collections in SQLite at PATH
    s = storage.open_set { default = "memory", vectors = "hnsw:" .. path }
    assert.equal("sqlite", s.vectors:backend_type())
    s:close()
  end)

  it("reads a Lua config file, run with no globals", function()
    local file = helpers.tmpname(".lua")
    local f = assert(io.open(file, "w"))
    f:write(string.format("return { default = %q, sessions = 'memory', vectors = %q, "
                          .. "tenant = %q }\n", helpers.pg_url(), "sqlite:" .. path, tenant))
    f:close()
    set = storage.open_set(file)
    assert.equal(3, #set:describe().stores)
    assert.equal("memory", set:store("sessions"):backend_type())
    set:close()
    -- globals set by the file are the config too
    f = assert(io.open(file, "w"))
    f:write("default = 'memory'\nvectors = 'sqlite:" .. path .. "'\n")
    f:close()
    set = storage.open_set(file)
    assert.equal("sqlite", set.vectors:backend_type())
    set:close()
    set = nil
    -- no globals: os, io, require are not there
    f = assert(io.open(file, "w"))
    f:write("return { default = os.getenv('HOME') }\n")
    f:close()
    local ok, err = pcall(storage.open_set, file)
    assert.is_false(ok)
    assert.equal("format", err.code)
    assert.matches("os", err.message, 1, true)
    -- the keys are checked as in a table, naming the file
    f = assert(io.open(file, "w"))
    f:write("return { default = 'memory', sesions = 'memory' }\n")
    f:close()
    ok, err = pcall(storage.open_set, file)
    assert.is_false(ok)
    assert.matches(file .. ": unknown component 'sesions'", err, 1, true)
    f = assert(io.open(file, "w"))
    f:write("return { default = \n")
    f:close()
    ok, err = pcall(storage.open_set, file)
    assert.equal("format", err.code)
    os.remove(file)
    ok, err = pcall(storage.open_set, file)
    assert.equal("io", err.code)
  end)

  it("refuses a bad config naming the key, before any store opens", function()
    local function refused(cfg, pattern)
      local ok, err = pcall(storage.open_set, cfg)
      assert.is_false(ok)
      assert.is_string(err)
      assert.matches("bad argument #1 to 'open_set'", err, 1, true)
      assert.matches(pattern, err, 1, true)
      -- the SQLite file the config names was not created
      assert.is_nil(io.open(path))
    end
    local sq = "sqlite:" .. path
    refused({ default = sq, sesions = "memory" }, "unknown component 'sesions'")
    refused({ default = sq, graph = "mysql://db/x" }, "graph: unknown storage URL 'mysql://db/x'")
    refused({ default = sq, graph = 42 }, "graph: expected a URL string")
    refused({ default = sq, kv = "" }, "kv: empty URL")
    refused({ default = sq, kv = { backend = "oracle" } }, "kv.backend: unknown backend 'oracle'")
    refused({ default = sq, kv = { backend = "sqlite", path = path, tenant = "x" } },
            "kv.tenant")
    refused({ sessions = sq }, "kv: not named and no 'default'")
    refused({ default = sq, artifacts = "memory" }, "artifacts: artifacts follow sessions")
    refused({ default = sq, graph = "hnsw" }, "graph: 'hnsw' names the vectors' store")
    refused({ default = "hnsw" }, "default: 'hnsw' needs a location")
    refused({ default = sq, events = "sled" }, "events: 'sled' needs a path")
    refused({ default = sq, vectors = "postgres" }, "'postgres' without a URL takes the default's")
    refused({ default = sq, vectors = "x", vector_embeddings = "y" }, "both name vectors")
    refused({ default = sq, tenant = 5 }, "tenant: expected a string")
    refused({ default = sq, [1] = "memory" }, "config keys must be strings")
    refused({ default = sq, kv = { backend = "sled", path = path, mode = "turbo" } }, "kv.mode")
    -- an option the store refuses: named with the component
    refused({ default = "memory", kv = { backend = "sqlite", path = path, bogus = 1 } },
            "kv: unknown option 'bogus'")
    local ok, err = pcall(storage.open_set, 42)
    assert.matches("config table or file path expected, got number", err, 1, true)
  end)

  it("raises the store's error object, naming the component, when one cannot open", function()
    local ok, err = pcall(storage.open_set, { default = "memory",
      graph = "sqlite:" .. helpers.tmpname("/no/such/dir.db") })
    assert.is_false(ok)
    assert.equal("io", err.code)
    assert.equal("graph", err.component)
    assert.matches("graph (sqlite:", err.message, 1, true)
  end)

  it("runs a transaction on one store, refuses one across stores unless per_store", function()
    open()
    -- the components are on three stores: refused, nothing run
    local ran = false
    local ok, err = pcall(set.transaction, set, function() ran = true end)
    assert.is_false(ok)
    assert.equal("invalid", err.code)
    assert.matches("3 stores", err.message, 1, true)
    assert.is_false(ran)
    -- components on one store: that store's transaction, all or nothing
    ok, err = pcall(set.transaction, set, function(tx)
      assert.is_true(rawequal(tx, set))
      tx:set("k", "v")
      tx:workflows():save("w1", { name = "n" })
      error("boom")
    end, { components = { "kv", "workflows", "graph" } })
    assert.matches("boom", tostring(err))
    assert.is_nil(set:get("k"))
    assert.is_nil(set:workflows():load("w1"))
    assert.equal(7, set:transaction(function(tx)
      tx:set("k", "v")
      return 7
    end, { components = { "kv" } }))
    assert.equal("v", set:get("k"))
    -- a set method reaching another store inside it is refused
    ok, err = pcall(set.transaction, set, function(tx) tx:sessions() end,
                    { components = { "kv" } })
    assert.equal("invalid", err.code)
    assert.matches("outside the running transaction", err.message, 1, true)
    -- per_store: every store rolls back on error, and commits on return
    ok, err = pcall(set.transaction, set, function(tx)
      tx:set("p", "1")
      tx:sessions():create("s1")
      error("boom")
    end, { per_store = true })
    assert.is_nil(set:get("p"))
    assert.is_nil(set:sessions():get("s1"))
    set:transaction(function(tx)
      tx:set("p", "1")
      tx:sessions():create("s1")
    end, { per_store = true })
    assert.equal("1", set:get("p"))
    assert.is_table(set:sessions():get("s1"))
    ok, err = pcall(set.transaction, set, function() end, { components = { "nope" } })
    assert.matches("components[1]: unknown component", err, 1, true)
    set.kv:clear()
  end)

  it("routes api_keys by name, refusing it until the component exists", function()
    open()
    local ok, err = pcall(set.api_keys, set, { master_key = string.rep("ab", 32) })
    assert.is_false(ok)
    assert.equal("invalid", err.code)
    assert.matches("api_keys", err.message, 1, true)
  end)

  it("closes each store once, refuses use after close", function()
    open()
    local kv, vec, mem = set.kv, set.vectors, set:store("sessions")
    local s = set:sessions()
    set:close()
    set:close() -- idempotent
    assert.equal("llmspell.storage.Set (closed)", tostring(set))
    for _, db in ipairs { kv, vec, mem } do
      local ok, err = pcall(db.get, db, "k")
      assert.equal("closed", err.code)
    end
    assert.equal("llmspell.storage.Sessions (closed)", tostring(s))
    for _, call in ipairs {
      function() return set:get("k") end, function() return set:sessions() end,
      function() return set:describe() end, function() return set.kv end,
      function() return set:collection("docs") end, function() return set:tenant() end,
    } do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.equal("closed", err.code)
    end
    set = nil
    do
      local s2 <close> = storage.open_set { default = "memory" }
      kv = s2.kv
    end
    local ok, err = pcall(kv.get, kv, "k")
    assert.equal("closed", err.code)
  end)

  it("has the store's API and its extras, nothing else", function()
    open()
    local wrapper = require "llmspell.storage.wrapper"
    local want = wrapper.store_methods()
    for _, m in ipairs { "api_keys", "describe", "store" } do want[#want + 1] = m end
    table.sort(want)
    local got = {}
    for k, v in pairs(setmod.Set) do
      if type(v) == "function" and k:sub(1, 1) ~= "_" then got[#got + 1] = k end
    end
    table.sort(got)
    assert.same(want, got)
  end)
end)
