--- The names rs-llmspell's users know (the seeds' API), on every backend:
-- the metric names euclidean / inner_product / innerproduct / manhattan,
-- the preset "production", stats_for_scope's vector_count and memory_mb,
-- and col:insert returning the ids it inserted. Each is an alias: what is
-- stored, listed and exported keeps the canonical name.
local storage = require "llmspell.storage"
local cjson = require "cjson"
local helpers = require "spec.helpers"

local ALIASES = {
  { "euclidean", "l2" },
  { "inner_product", "ip" },
  { "innerproduct", "ip" },
  { "manhattan", "l1" },
}

local POINTS = {
  { id = "a", vector = { 1, 0, 0 } },
  { id = "b", vector = { 0.6, 0.8, 0 } },
  { id = "c", vector = { -1, 0.5, 2 } },
  { id = "d", vector = { 3, 3, 3 } },
}

local function by_name(db, name)
  for _, c in ipairs(db:list_collections(name)) do
    if c.name == name then return c end
  end
end

for _, backend in ipairs(helpers.backends()) do
  describe("seed names on " .. backend.name, function()
    local db

    before_each(function()
      if backend.setup then backend:setup() end
      db = backend.open(nil, backend)
      for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
    end)

    after_each(function()
      pcall(function()
        for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
      end)
      db:close()
      if backend.teardown then backend:teardown() end
    end)

    describe("metric aliases", function()
      it("create the canonical metric, and search exactly as it does", function()
        for _, pair in ipairs(ALIASES) do
          local alias, canonical = pair[1], pair[2]
          local col = db:create_collection("alias_" .. alias, { dimension = 3, metric = alias })
          local ref = db:create_collection("ref_" .. alias, { dimension = 3, metric = canonical })
          col:add(POINTS)
          ref:add(POINTS)
          assert.equal(canonical, col:stats().metric, alias)
          assert.equal(canonical, by_name(db, "alias_" .. alias).metric, alias)
          assert.matches("3-d " .. canonical .. ",", tostring(col), 1, true)
          local got = col:search({ 0.9, 0.2, 0.1 }, { k = 4, strategy = "exact" })
          local want = ref:search({ 0.9, 0.2, 0.1 }, { k = 4, strategy = "exact" })
          assert.equal(4, #got)
          for i = 1, 4 do
            assert.equal(want[i].id, got[i].id, alias)
            assert.equal(want[i].distance, got[i].distance, alias)
            assert.equal(want[i].score, got[i].score, alias)
          end
        end
      end)

      it("keep the canonical name through a reopen and an export", function()
        db:create_collection("euc", { dimension = 2, metric = "euclidean" })
          :add { id = "x", vector = { 1, 2 } }
        if backend.shared then
          local again = backend.open(nil, backend)
          assert.equal("l2", again:collection("euc"):stats().metric)
          again:close()
        end
        local doc = cjson.decode((storage.exporter(db):to_string()))
        assert.equal("l2", doc.data.vector_collections[1].metric)
        assert.equal("l2", doc.data.vector_embeddings["2"][1].metric)
      end)

      it("are read in import records and declared collections", function()
        local doc = cjson.encode {
          version = "1.0",
          data = {
            vector_collections = { { name = "declared", dimension = 2, metric = "manhattan" } },
            vector_embeddings = { ["2"] = {
              { id = "r1", embedding = { 1, 0 }, collection = "imported",
                metric = "inner_product" },
              { id = "r2", embedding = { 0, 1 }, collection = "imported",
                metric = "innerproduct" },
            } },
          },
        }
        storage.importer(db):from_string(doc)
        assert.equal("l1", db:collection("declared"):stats().metric)
        local col = db:collection("imported")
        assert.equal("ip", col:stats().metric)
        assert.equal(2, #col)
        local out = cjson.decode((storage.exporter(db):to_string()))
        local metrics = {}
        for _, c in ipairs(out.data.vector_collections) do metrics[c.name] = c.metric end
        assert.same({ declared = "l1", imported = "ip" }, metrics)
      end)

      it("still refuse unknown names, listing the canonical ones", function()
        for _, bad in ipairs { "hamming", "dot", "cosine ", "" } do
          local err = helpers.error_of(db.create_collection, db, "bad", { dimension = 2,
                                                                         metric = bad })
          assert.matches("option 'metric' must be \"cosine\", \"l2\", \"ip\" or \"l1\"",
                         err, 1, true)
        end
        assert.is_nil(by_name(db, "bad"))
      end)

      it("route through the router to the canonical collection name", function()
        local router = require "llmspell.storage.router"
        local r = router.new(db, { prefix = "emb", metric = "euclidean",
                                   models = { m1 = { dimension = 4, metric = "manhattan" },
                                              m2 = 4 } })
        local _, name2 = r:for_model("m2")
        assert.equal("emb_4", name2)
        assert.equal("l2", db:collection(name2):stats().metric)
        local _, name1 = r:for_model("m1")
        assert.equal("emb_4_l1", name1)
        local _, name3 = r:for_vector({ 1, 2, 3, 4 }, "inner_product")
        assert.equal("emb_4_ip", name3)
        assert.equal("ip", db:collection(name3):stats().metric)
      end)
    end)

    describe("preset production", function()
      it("is m 16, ef_construction 200, ef_search 100 (balanced), and options override it",
         function()
        local st = db:create_collection("prod", { dimension = 8, preset = "production" }):stats()
        assert.same({ 16, 200, 100 }, { st.m, st.ef_construction, st.ef_search })
        local c = by_name(db, "prod")
        assert.same({ 16, 200, 100 }, { c.m, c.ef_construction, c.ef_search })
        st = db:create_collection("prod2", { dimension = 8, preset = "production",
                                             ef_search = 64 }):stats()
        assert.same({ 16, 200, 64 }, { st.m, st.ef_construction, st.ef_search })
        local err = helpers.error_of(db.create_collection, db, "p3", { dimension = 8,
                                                                      preset = "prod" })
        assert.matches("option 'preset' must be \"fast\", \"balanced\", \"production\" or "
                       .. "\"accurate\"", err, 1, true)
      end)
    end)

    describe("stats_for_scope", function()
      it("also answers vector_count and memory_mb", function()
        local col = db:create_collection("scoped", { dimension = 4 })
        col:add {
          { id = "1", vector = { 1, 2, 3, 4 }, scope = "tenant:acme", metadata = { k = "v" } },
          { id = "2", vector = { 1, 2, 3, 5 }, scope = "tenant:acme" },
          { id = "3", vector = { 1, 2, 3, 6 }, scope = "tenant:other" },
          { id = "4", vector = { 1, 2, 3, 7 }, scope = "tenant:acme", expires_at = 1 },
        }
        local st = col:stats_for_scope("tenant:acme")
        assert.equal(2, st.vectors)
        assert.equal(st.vectors, st.vector_count)
        assert.equal("integer", math.type(st.vector_count))
        assert.equal("float", math.type(st.memory_mb))
        assert.equal(st.bytes / (1024 * 1024), st.memory_mb)
        assert.is_true(st.memory_mb > 0)
        local none = col:stats_for_scope("tenant:nobody")
        assert.same({ scope = "tenant:nobody", vectors = 0, bytes = 0, vector_count = 0,
                      memory_mb = 0.0 }, none)
      end)
    end)

    describe("col:insert", function()
      local col
      before_each(function() col = db:create_collection("ins", { dimension = 2 }) end)

      it("adds entries and returns their ids in order", function()
        local ids = col:insert { { id = "z", vector = { 1, 0 } }, { id = "a", vector = { 0, 1 } },
                                 { id = "m", vector = { 1, 1 }, metadata = { n = 1 } } }
        assert.same({ "z", "a", "m" }, ids)
        assert.equal(3, #col)
        assert.same({ n = 1 }, col:get("m").metadata)
        -- one entry: an array of one id
        assert.same({ "q" }, col:insert { id = "q", vector = { 2, 2 } })
        assert.same({}, col:insert {})
        assert.equal(4, #col)
        -- binary-safe ids come back byte for byte
        assert.same({ "bin\1id" }, col:insert { id = "bin\1id", vector = { 3, 1 } })
      end)

      it("refuses what add refuses, writing nothing", function()
        col:insert { id = "a", vector = { 1, 0 } }
        local err = helpers.error_of(col.insert, col, { { id = "new", vector = { 1, 1 } },
                                                        { id = "a", vector = { 0, 1 } } })
        assert.equal("conflict", err.code)
        assert.is_nil(col:get("new"))
        err = helpers.error_of(function() return (col:insert { { vector = { 1, 1 } } }) end)
        assert.matches("bad argument #1 to 'insert' (entry 1: string id expected, got nil)",
                       err, 1, true)
        err = helpers.error_of(col.insert, col, { { id = "d", vector = { 1, 1 } },
                                                  { id = "d", vector = { 1, 2 } } })
        assert.matches("appears twice in the batch", err, 1, true)
        err = helpers.error_of(function()
          return (col:insert { id = "w", vector = { 1, 2, 3 } })
        end)
        assert.matches("bad argument #1 to 'insert' (entry 1: vector has 3 numbers",
                       err, 1, true)
        assert.equal(1, #col)
      end)

      it("takes part in transactions", function()
        local ok = pcall(db.transaction, db, function()
          assert.same({ "t1" }, col:insert { id = "t1", vector = { 1, 0 } })
          db:set("with_t1", "1")
          error("roll back")
        end)
        assert.is_false(ok)
        assert.is_nil(col:get("t1"))
        assert.is_nil(db:get("with_t1"))
        local ids = db:transaction(function()
          db:set("with_t2", "1")
          return col:insert { id = "t2", vector = { 1, 0 } }
        end)
        assert.same({ "t2" }, ids)
        assert.is_table(col:get("t2"))
      end)
    end)
  end)
end

describe("col:insert through the wrappers", function()
  local cache = require "llmspell.storage.cache"
  local tenant = require "llmspell.storage.tenant"
  local migrate = require "llmspell.storage.migrate"

  it("returns the ids and keeps each wrapper's rules", function()
    local db <close> = storage.open("memory")
    local other <close> = storage.open("memory")
    -- tenant: the entries get the tenant's scope, quotas count them
    local t = tenant.open(db, "acme", { max_vectors_per_collection = 2 })
    local tdocs = t:create_collection("docs", { dimension = 2 })
    assert.same({ "a", "b" }, tdocs:insert { { id = "a", vector = { 1, 0 } },
                                             { id = "b", vector = { 0, 1 } } })
    assert.equal("tenant:acme", db:collection("tenant_acme:docs"):get("a").scope)
    assert.equal("quota", helpers.error_of(tdocs.insert, tdocs,
                                           { id = "c", vector = { 1, 1 } }).code)
    -- cache: an insert drops the cached results
    local c = cache.wrap(db, { search = true })
    local cdocs = c:create_collection("cdocs", { dimension = 2 })
    cdocs:insert { id = "x", vector = { 1, 0 } }
    assert.equal("x", cdocs:search({ 0, 1 }, { k = 1 })[1].id)
    assert.same({ "y" }, cdocs:insert { id = "y", vector = { 0, 1 } })
    assert.equal("y", cdocs:search({ 0, 1 }, { k = 1 })[1].id)
    -- dual writes: both stores get the entries, the primary's ids come back
    local d = migrate.dual_write(db, other)
    local ddocs = d:create_collection("ddocs", { dimension = 2 })
    assert.same({ "p", "q" }, ddocs:insert { { id = "p", vector = { 1, 0 } },
                                             { id = "q", vector = { 0, 1 } } })
    assert.equal(2, #db:collection("ddocs"))
    assert.equal(2, #other:collection("ddocs"))
  end)
end)
