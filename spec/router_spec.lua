--- Dimension routing: the built-in model table, name matching, custom
-- models, routing by model and by vector length, creation on first use and
-- reuse, and the errors, against every backend.
local storage = require "llmspell.storage"
local router = require "llmspell.storage.router"
local helpers = require "spec.helpers"

local function vec(n, seed)
  local v = {}
  for i = 1, n do v[i] = math.sin(i * (seed or 1)) end
  return v
end

local function packed(v) return string.pack("<" .. string.rep("f", #v), table.unpack(v)) end

local function message(err) return tostring(err) end

local function names_of(db)
  local out = {}
  for i, c in ipairs(db:list_collections()) do out[i] = c.name end
  return out
end

local function info_of(db, name)
  for _, c in ipairs(db:list_collections()) do
    if c.name == name then return c end
  end
end

describe("router model table", function()
  it("knows the common embedding models' dimensions", function()
    local expected = {
      ["text-embedding-3-small"] = 1536, ["text-embedding-3-large"] = 3072,
      ["text-embedding-ada-002"] = 1536,
      ["all-MiniLM-L6-v2"] = 384, ["all-mpnet-base-v2"] = 768,
      ["bge-small-en-v1.5"] = 384, ["bge-base-en-v1.5"] = 768, ["bge-large-en-v1.5"] = 1024,
      ["bge-m3"] = 1024,
      ["e5-small-v2"] = 384, ["e5-base-v2"] = 768, ["e5-large-v2"] = 1024,
      ["multilingual-e5-large"] = 1024,
      ["nomic-embed-text-v1"] = 768, ["nomic-embed-text-v1.5"] = 768,
      ["embed-english-v3.0"] = 1024, ["embed-multilingual-v3.0"] = 1024,
      ["embed-english-light-v3.0"] = 384, ["embed-multilingual-light-v3.0"] = 384,
      ["mxbai-embed-large-v1"] = 1024, ["jina-embeddings-v2-base-en"] = 768,
      ["voyage-2"] = 1024, ["voyage-large-2"] = 1536, ["text-embedding-004"] = 768,
      ["gte-small"] = 384, ["gte-base"] = 768, ["gte-large"] = 1024,
    }
    for name, dim in pairs(expected) do
      local d, metric = router.dimension_of(name)
      assert.equal(dim, d, name)
      assert.equal("cosine", metric, name)
      assert.is_true(math.type(d) == "integer", name)
    end
  end)

  it("matches names case-insensitively, with provider prefixes", function()
    assert.equal(1536, router.dimension_of("openai/text-embedding-3-small"))
    assert.equal(1536, router.dimension_of("TEXT-EMBEDDING-3-SMALL"))
    assert.equal(384, router.dimension_of("sentence-transformers/all-MiniLM-L6-v2"))
    assert.equal(384, router.dimension_of("all-minilm-l6-v2"))
    assert.equal(768, router.dimension_of("BAAI/bge-base-en-v1.5"))
    assert.equal(1024, router.dimension_of("intfloat/multilingual-e5-large"))
    assert.equal(768, router.dimension_of("nomic-ai/nomic-embed-text-v1.5"))
    assert.equal(1024, router.dimension_of("cohere/embed-english-v3.0"))
    assert.equal(768, router.dimension_of("models/text-embedding-004"))
    assert.equal(1024, router.dimension_of("huggingface/BAAI/bge-m3"))
    assert.equal(768, router.dimension_of("ollama/nomic-embed-text:latest"))
    assert.equal(1024, router.dimension_of("mxbai-embed-large"))
  end)

  it("does not accept arbitrary prefixes or unknown names", function()
    assert.is_nil(router.dimension_of("acme/text-embedding-3-small"))
    assert.is_nil(router.dimension_of("text-embedding-3-medium"))
    assert.is_nil(router.dimension_of(""))
    assert.matches("bad argument #1 to 'dimension_of' %(string model name expected, got nil%)",
                   message(helpers.error_of(router.dimension_of)))
  end)

  it("lists the built-in models sorted by name", function()
    local models = router.models()
    assert.is_true(#models >= 27)
    local seen = {}
    for i, m in ipairs(models) do
      assert.is_string(m.name)
      assert.is_string(m.provider)
      assert.equal("cosine", m.metric)
      assert.is_nil(seen[m.name:lower()], "listed twice: " .. m.name)
      seen[m.name:lower()] = true
      if i > 1 then assert.is_true(models[i - 1].name:lower() < m.name:lower()) end
      assert.equal(m.dimension, (router.dimension_of(m.name)))
    end
    assert.is_true(seen["text-embedding-3-small"])
    assert.is_nil(seen["all-minilm"]) -- aliases are not listed as models
  end)
end)

describe("router options", function()
  local db
  before_each(function() db = storage.open("memory") end)
  after_each(function() db:close() end)

  it("refuses bad stores and options, naming the argument", function()
    local cases = {
      { { nil }, "bad argument #1 to 'new' %(store handle expected, got nil%)" },
      { { 42 }, "bad argument #1 to 'new' %(store handle expected, got number%)" },
      { { {} }, "bad argument #1 to 'new' %(store handle expected, got table%)" },
      { { db, "emb" }, "bad argument #2 to 'new' %(options table expected, got string%)" },
      { { db, { prefx = "x" } }, "unknown option 'prefx'" },
      { { db, { prefix = "" } }, "option 'prefix' must be" },
      { { db, { prefix = "a b" } }, "option 'prefix' must be" },
      { { db, { metric = "euclid" } }, "option 'metric' must be" },
      { { db, { builtin = "no" } }, "option 'builtin' must be a boolean" },
      { { db, { builtin = false } }, "no models" },
      { { db, { models = 3 } }, "option 'models' must be a table" },
      { { db, { models = { x = 0 } } }, 'models%["x"%]: dimension must be an integer 1..4096' },
      { { db, { models = { x = 4097 } } }, "dimension must be an integer" },
      { { db, { models = { x = 1.5 } } }, "dimension must be an integer" },
      { { db, { models = { x = "8" } } }, "dimension must be an integer" },
      { { db, { models = { x = { dimension = 8, metric = "dot" } } } }, "metric must be" },
      { { db, { models = { x = { dim = 8 } } } }, "unknown field 'dim'" },
      { { db, { models = { [1] = 8 } } }, "model names must be non%-empty strings" },
      { { db, { models = { Foo = 8, foo = 9 } } }, "name the same model" },
      { { db, { collection_options = { dimension = 8 } } }, "must not set 'dimension'" },
      { { db, { collection_options = { metric = "l2" } } }, "must not set 'metric'" },
      { { db, { collection_options = 1 } }, "'collection_options' must be a table" },
    }
    for _, case in ipairs(cases) do
      local err = helpers.error_of(router.new, table.unpack(case[1], 1, 2))
      assert.is_string(err)
      assert.matches(case[2], err)
      if case[2]:find("#") == nil then assert.matches("^bad argument #2 to 'new'", err) end
    end
  end)

  it("names collections <prefix>_<dimension>, suffixing another metric", function()
    local r = router.new(db, { prefix = "emb", models = {
      ["my-model"] = 512, ["my-l2"] = { dimension = 384, metric = "l2" } } })
    assert.same({ "emb_1536", 1536, "cosine" },
                { r:collection_name("openai/text-embedding-3-small") })
    assert.same({ "emb_512", 512, "cosine" }, { r:collection_name("MY-MODEL") })
    assert.same({ "emb_384_l2", 384, "l2" }, { r:collection_name("my-l2") })
    assert.same({ "emb_384", 384, "cosine" }, { r:collection_name(384) })
    assert.same({ "emb_384_l2", 384, "l2" }, { r:collection_name(384, "l2") })
    -- the default prefix is where rs-llmspell imports land
    assert.equal("vectors_768", (router.new(db):collection_name("bge-base-en-v1.5")))
    -- the router's metric applies to the built-in models and suffixes others
    local ip = router.new(db, { metric = "ip", models = { c = { dimension = 8,
                                                                  metric = "cosine" } } })
    assert.same({ "vectors_1536", 1536, "ip" }, { ip:collection_name("text-embedding-ada-002") })
    assert.same({ "vectors_8_cosine", 8, "cosine" }, { ip:collection_name("c") })
    assert.equal(0, #db:list_collections()) -- naming touches nothing
  end)

  it("takes custom models, which may replace built-in ones", function()
    local r = router.new(db, { models = {
      ["acme/doc-embedder"] = 256,
      ["openai/text-embedding-3-large"] = 1024, -- requested with dimensions = 1024
    } })
    assert.same({ 256, "cosine" }, { r:dimension_of("ACME/Doc-Embedder") })
    assert.same({ 1024, "cosine" }, { r:dimension_of("text-embedding-3-large") })
    assert.same({ 1024, "cosine" }, { r:dimension_of("openai/text-embedding-3-large") })
    assert.equal(3072, router.dimension_of("text-embedding-3-large")) -- module table unchanged
    assert.is_nil(r:dimension_of("unknown"))
    local by_name = {}
    for _, m in ipairs(r:models()) do by_name[m.name] = m end
    assert.same({ name = "acme/doc-embedder", dimension = 256, metric = "cosine",
                  provider = "custom" }, by_name["acme/doc-embedder"])
    assert.is_nil(by_name["text-embedding-3-large"])
    assert.equal(1024, by_name["openai/text-embedding-3-large"].dimension)
    assert.same({ 256, 384, 512, 768, 1024, 1536 }, r:dimensions())
  end)

  it("routes only custom models with builtin = false", function()
    local r = router.new(db, { builtin = false, models = { a = 8, b = { dimension = 16 } } })
    assert.same({ 8, 16 }, r:dimensions())
    assert.equal(2, #r:models())
    assert.is_nil(r:dimension_of("text-embedding-3-small"))
    local err = helpers.error_of(r.for_model, r, "text-embedding-3-small")
    assert.matches("unknown embedding model 'text%-embedding%-3%-small'; known models: a, b;", err)
    assert.equal("llmspell.storage.Router (prefix vectors, cosine, 2 models, dimensions 8/16)",
                 tostring(r))
  end)

  it("needs the metric for a length whose models disagree on it", function()
    local r = router.new(db, { builtin = false, models = {
      a = { dimension = 8, metric = "l2" }, b = { dimension = 8, metric = "ip" },
      c = { dimension = 4, metric = "l1" } } })
    local err = helpers.error_of(r.for_vector, r, vec(8))
    assert.matches("bad argument #2 to 'for_vector' %(models of 8 dimensions use metrics "
                   .. "ip and l2; pass the metric%)", err)
    assert.equal("vectors_8_ip", select(2, r:for_vector(vec(8), "ip")))
    -- one metric for that length: it is used
    assert.equal("vectors_4_l1", select(2, r:for_vector(vec(4))))
    assert.matches("bad argument #2 to 'for_vector' %(metric must be",
                   helpers.error_of(r.for_vector, r, vec(8), "dot"))
  end)
end)

for _, backend in ipairs(helpers.backends()) do
  describe("router on " .. backend.name, function()
    local db

    local function open(opts) return backend.open(opts, backend) end

    before_each(function()
      if backend.setup then backend:setup() end
      db = open()
      for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
    end)

    after_each(function()
      if db then
        pcall(function()
          for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
        end)
        db:close()
      end
      if backend.teardown then backend:teardown() end
    end)

    it("creates a model's collection on first use and reuses it", function()
      local r = router.new(db, { prefix = "emb", collection_options = { preset = "fast" } })
      assert.same({}, names_of(db))
      local col, name = r:for_model("sentence-transformers/all-MiniLM-L6-v2")
      assert.equal("emb_384", name)
      assert.equal("llmspell.storage.Collection (emb_384, 384-d cosine, 0 vectors)",
                   tostring(col))
      local info = info_of(db, "emb_384")
      assert.equal(384, info.dimension)
      assert.equal("cosine", info.metric)
      assert.equal(12, info.m) -- preset "fast"
      -- other 384-d models share it; the same object comes back
      assert.equal(col, r:for_model("BAAI/bge-small-en-v1.5"))
      assert.equal(col, r:for_model("E5-SMALL-V2"))
      assert.equal(col, (r:for_vector(vec(384))))
      assert.same({ "emb_384" }, names_of(db))
      -- a second router over the same store reuses it too
      assert.equal(col, router.new(db, { prefix = "emb" }):for_model("gte-small"))
      r:for_model("text-embedding-3-large")
      r:for_model("openai/text-embedding-ada-002")
      assert.same({ "emb_1536", "emb_3072", "emb_384" }, names_of(db))
      assert.equal(3072, info_of(db, "emb_3072").dimension)
    end)

    it("routes vectors by length, as tables or packed float32", function()
      local r = router.new(db, { prefix = "emb" })
      local v768 = vec(768, 3)
      local col, name = r:for_vector(v768)
      assert.equal("emb_768", name)
      assert.equal(col, (r:for_vector(packed(v768))))
      assert.equal(col, (r:for_model("nomic-embed-text-v1.5")))
      col:add { id = "a", vector = v768, metadata = { kind = "x" } }
      r:for_vector(packed(vec(768, 5))):add { id = "b", vector = packed(vec(768, 5)) }
      local hits = r:for_vector(packed(v768)):search(packed(v768), { k = 2 })
      assert.equal("a", hits[1].id)
      assert.equal(2, #hits)
      local c1024 = r:for_vector(packed(vec(1024)))
      assert.equal("emb_1024", c1024:name())
      assert.same({ "emb_1024", "emb_768" }, names_of(db))
    end)

    it("gives a model with another metric its own collection", function()
      local r = router.new(db, { prefix = "emb", models = {
        ["my-l2"] = { dimension = 384, metric = "l2" }, ["my-512"] = 512 } })
      local _, name = r:for_model("my-l2")
      assert.equal("emb_384_l2", name)
      assert.equal("l2", info_of(db, "emb_384_l2").metric)
      -- a bare 384-d vector goes to the router's metric
      assert.equal("emb_384", select(2, r:for_vector(vec(384))))
      assert.equal("emb_384_l2", select(2, r:for_vector(vec(384), "l2")))
      assert.equal("emb_512", select(2, r:for_vector(packed(vec(512)))))
      assert.equal("cosine", info_of(db, "emb_512").metric)
      assert.same({ "emb_384", "emb_384_l2", "emb_512" }, names_of(db))
    end)

    it("works under a tenant prefix", function()
      local r = router.new(db, { prefix = "tenant_acme:emb" })
      local _, name = r:for_model("bge-large-en-v1.5")
      assert.equal("tenant_acme:emb_1024", name)
      assert.same({ "tenant_acme:emb_1024" }, names_of(db))
    end)

    it("refuses an existing collection of another dimension or metric", function()
      db:create_collection("emb_384", { dimension = 768 })
      db:create_collection("emb_1024", { dimension = 1024, metric = "l2" })
      local r = router.new(db, { prefix = "emb" })
      local err = helpers.error_of(r.for_model, r, "all-MiniLM-L6-v2")
      assert.is_true(storage.is_error(err))
      assert.equal("conflict", err.code)
      assert.matches("collection 'emb_384' exists with 768 dimensions and metric cosine, but "
                     .. "the router routes 384%-dimension cosine vectors to it", err.message)
      err = helpers.error_of(r.for_vector, r, vec(1024))
      assert.equal("conflict", err.code)
      assert.matches("'emb_1024' exists with 1024 dimensions and metric l2", err.message)
      -- still refused on the next call, and nothing was created or changed
      assert.equal("conflict", helpers.error_of(r.for_model, r, "bge-m3").code)
      assert.same({ "emb_1024", "emb_384" }, names_of(db))
      assert.equal(768, info_of(db, "emb_384").dimension)
      -- an existing collection that fits is adopted
      db:create_collection("emb_768", { dimension = 768 })
      assert.equal("emb_768", r:for_model("all-mpnet-base-v2"):name())
    end)

    it("refuses unknown models and lengths, listing the known ones", function()
      local r = router.new(db, { prefix = "emb", models = { ["house-model"] = 100 } })
      local err = helpers.error_of(r.for_model, r, "text-embedding-9")
      assert.is_string(err)
      assert.matches("^bad argument #1 to 'for_model' %(unknown embedding model "
                     .. "'text%-embedding%-9'; known models: ", err)
      for _, m in ipairs { "all-MiniLM-L6-v2", "text-embedding-3-small", "house-model",
                           "bge-base-en-v1.5", "embed-english-v3.0" } do
        assert.is_truthy(err:find(m, 1, true), m)
      end
      err = helpers.error_of(r.for_vector, r, vec(383))
      assert.equal("bad argument #1 to 'for_vector' (no known embedding model has 383 "
                   .. "dimensions; known dimensions: 100, 384, 512, 768, 1024, 1536, 3072)", err)
      assert.matches("no known embedding model has 0 dimensions",
                     helpers.error_of(r.for_vector, r, {}))
      assert.matches("packed vector of 6 bytes: not a multiple of 4",
                     helpers.error_of(r.for_vector, r, "abcdef"))
      assert.matches("bad argument #1 to 'for_vector' %(vector expected",
                     helpers.error_of(r.for_vector, r, 42))
      assert.matches("bad argument #1 to 'for_model' %(string model name expected, got nil%)",
                     helpers.error_of(r.for_model, r))
      assert.matches("known dimensions: 100,",
                     helpers.error_of(r.collection_name, r, 99))
      assert.same({}, names_of(db))
    end)

    it("recreates a collection dropped behind its back", function()
      local r = router.new(db, { prefix = "emb" })
      local col = r:for_model("voyage-2")
      col:add { id = "x", vector = vec(1024) }
      assert.is_true(db:drop_collection("emb_1024"))
      local again = r:for_model("voyage-2")
      assert.equal(0, again:count())
      assert.equal(1024, info_of(db, "emb_1024").dimension)
      -- and notices one recreated with another dimension
      db:drop_collection("emb_1024")
      db:create_collection("emb_1024", { dimension = 8 })
      assert.equal("conflict", helpers.error_of(r.for_model, r, "voyage-2").code)
    end)

    it("opens the collection another writer created between its check and create", function()
      -- a wrapper with the collection API whose first lookup misses, as when
      -- another process creates the collection just after the router looked
      db:create_collection("emb_768", { dimension = 768 })
      local missed = false
      local wrapper = {
        collection = function(_, name)
          if not missed then
            missed = true
            error(storage.error("not_found", "no collection '" .. name .. "'"))
          end
          return db:collection(name)
        end,
        create_collection = function(_, ...) return db:create_collection(...) end,
      }
      local r = router.new(wrapper, { prefix = "emb" })
      local col, name = r:for_model("bge-base-en-v1.5")
      assert.is_true(missed)
      assert.equal("emb_768", name)
      assert.equal(db:collection("emb_768"), col)
      -- a store error other than not_found passes through unchanged
      local broken = { collection = function() error(storage.error("io", "disk")) end,
                       create_collection = function() end }
      local err = helpers.error_of(router.new(broken).for_model, router.new(broken), "gte-base")
      assert.equal("io", err.code)
    end)

    if backend.shared then
      it("finds collections another handle created", function()
        local r = router.new(db, { prefix = "emb" })
        r:for_model("text-embedding-004"):add { id = "d1", vector = vec(768) }
        local other <close> = open()
        local col, name = router.new(other, { prefix = "emb" }):for_model("e5-base-v2")
        assert.equal("emb_768", name)
        assert.equal(1, col:count())
        assert.equal("d1", col:search(vec(768), { k = 1 })[1].id)
        assert.same({ "emb_768" }, names_of(other))
      end)
    end
  end)
end
