--- Export and import (storage.exporter / storage.importer): the lossless
-- roundtrip between every pair of memory, SQLite and PostgreSQL, files
-- written by rs-llmspell, refused files leaving the target unchanged,
-- dry runs, conflict modes, progress, determinism and bounded memory.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"
local cjson = require "cjson"

-- Deterministic PRNG, so failures replay.
local function prng(seed)
  local s = seed
  return function()
    s = (s * 1103515245 + 12345) % 2147483648
    return s / 2147483648
  end
end

-- float32-exact numbers, so a vector compares bit for bit after a roundtrip.
local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

local function random_vector(rand, dim)
  local v = {}
  for i = 1, dim do v[i] = f32(rand() * 2 - 1) end
  return v
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function escape(s) return (s:gsub("%p", "%%%0")) end

-- Strips what may differ between two exports of the same data: the time,
-- the source backend and its migrations, and the handles' tenants.
local function normalize(doc, tenants)
  doc = doc:gsub('"exported_at":"[^"]*"', '"exported_at":""', 1)
  doc = doc:gsub('"source_backend":"[^"]*"', '"source_backend":""', 1)
  doc = doc:gsub('"migrations":%[[^%]]*%]', '"migrations":[]', 1)
  for _, t in ipairs(tenants or {}) do
    doc = doc:gsub('"tenant_id":"' .. escape(t) .. '"', '"tenant_id":"T"')
  end
  return doc
end

-- Standard base64, to check embeddings in exported documents.
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = {}
    for k = 3, 0, -1 do
      local d = (n >> (6 * k)) & 63
      q[#q + 1] = B64:sub(d + 1, d + 1)
    end
    if not b then q[3], q[4] = "=", "=" elseif not c then q[4] = "=" end
    out[#out + 1] = table.concat(q)
  end
  return table.concat(out)
end

local function without_time(doc) return (doc:gsub('"exported_at":"[^"]*"', "", 1)) end

-- The backends, each opening a fresh, empty store for a tenant.
local opened, files = {}, {}
local KINDS = {
  {
    name = "memory",
    open = function(t) return storage.open { backend = "memory", tenant = t } end,
  },
  {
    name = "sqlite file",
    open = function(t)
      local path = helpers.tmpname(".db")
      files[#files + 1] = path
      return storage.open { backend = "sqlite", path = path, tenant = t }
    end,
  },
  {
    name = "postgres",
    open = function(t)
      return storage.open { backend = "postgres", url = helpers.pg_url(), tenant = t }
    end,
  },
}

local function open(kind)
  local t = helpers.unique_tenant("xport")
  local db = kind.open(t)
  opened[#opened + 1] = db
  return db, t
end

local function cleanup()
  for _, db in ipairs(opened) do db:close() end
  for _, p in ipairs(files) do helpers.remove_db(p) end
  opened, files = {}, {}
end

local function export(db, opts) return (storage.exporter(db):to_string(opts)) end

-- Sections that arrive by import: rs-llmspell's component records (stored
-- natively) and a section no component knows (passthrough).
local SECTIONS = [[{"version":"1.0","data":{
  "agent_state":[{"state_id":"s1","tenant_id":"rs","agent_id":"a1",
    "state_data":{"n":9007199254740993,
    "f":0.5,"nested":{"deep":[1,2.5,true,null,"x"]}},"created_at":1736937000123456},
    {"state_id":"s2","tenant_id":"rs","agent_id":"a2","state_data":{}}],
  "sessions":[{"id":"sess-1","session_id":"sess-1","session_data":{"a":[1,2,3]},
    "expires_at":null}],
  "knowledge_graph":{"entities":[{"entity_id":"e1","entity_type":"t","name":"E1",
    "properties":{"k":"v"},"valid_time_start":1736937000000000},
    {"entity_id":"e2","entity_type":"t","name":"E2","properties":{}}],
    "relationships":[{"relationship_id":"r1","source_entity_id":"e1",
    "target_entity_id":"e2","relationship_type":"r"}]},
  "custom_section":"a scalar"}}]]

-- Fills a store with everything an export has to carry.
local function populate(db, opts)
  opts = opts or {}
  local rand = prng(opts.seed or 7)
  db:set("bin/nul", "a\0b\0")
  db:set("bin/invalid-utf8", "\xff\xfe\xc3\x28")
  db:set("bin/empty", "")
  db:set("text/ключ 日本", "значение")
  db:set("ttl/one-hour", "expires later", { ttl = 3600 })
  local big = {}
  for i = 1, 70000 do big[i] = string.char(math.floor(rand() * 256)) end
  db:set("big", table.concat(big))
  for i = 1, 50 do db:set(string.format("many/%03d", i), tostring(i)) end

  local docs = db:create_collection("docs", { dimension = 8, metric = "cosine", m = 12,
                                              ef_construction = 100, ef_search = 40 })
  local batch = {}
  for i = 1, 300 do
    batch[i] = {
      id = string.format("d%04d", i),
      vector = random_vector(rand, 8),
      metadata = { i = i, big = 9007199254740993, neg = math.mininteger + 1, f = i / 7,
                   tiny = 1e-300, whole = 2.0, flag = i % 2 == 0, s = "ünïcødé",
                   nested = { tags = { "a", "b" }, deep = { x = { y = { z = i } } } } },
      scope = i % 3 == 0 and "tenant:a" or "global",
      event_time = i % 5 == 0 and (1700000000 + i + 0.25) or nil,
      ttl = i % 7 == 0 and 86400 or nil,
    }
  end
  docs:add(batch)
  local l2 = db:create_collection("l2/vecs", { dimension = 4, metric = "l2" })
  for i = 1, 20 do l2:add { id = "l" .. i, vector = random_vector(rand, 4) } end
  local ip = db:create_collection("ip.vecs", { dimension = 8, metric = "ip", m = 20,
                                               ef_search = 77 })
  for i = 1, 10 do ip:add { id = "p" .. i, vector = random_vector(rand, 8), scope = "s:" .. i } end
  local l1 = db:create_collection("l1:vecs", { dimension = 16, metric = "l1" })
  for i = 1, 5 do l1:add { id = "q" .. i, vector = random_vector(rand, 16) } end
  db:create_collection("empty", { dimension = 3, metric = "ip", m = 6, ef_search = 9 })
  if opts.sections ~= false then storage.importer(db):from_string(SECTIONS) end
end

-- The same queries give the same answers (exact, and through the graph).
local function assert_same_search(a, b)
  local rand = prng(99)
  for _, info in ipairs(a:list_collections()) do
    local ca, cb = a:collection(info.name), b:collection(info.name)
    for _ = 1, 5 do
      local q = random_vector(rand, info.dimension)
      for _, strategy in ipairs { "exact", "graph" } do
        local opts = { k = 10, strategy = strategy, ef_search = 500 }
        local ra, rb = ca:search(q, opts), cb:search(q, opts)
        assert.equal(#ra, #rb)
        for i = 1, #ra do
          assert.equal(ra[i].id, rb[i].id)
          assert.equal(ra[i].score, rb[i].score)
        end
      end
    end
  end
end

describe("export/import", function()
  after_each(cleanup)

  describe("a snapshot", function()
    -- Two handles on one store: the exporter's and a writer's.
    local pairs_of = {
      sqlite = function()
        local path = helpers.tmpname(".db")
        files[#files + 1] = path
        local a = storage.open { backend = "sqlite", path = path, busy_timeout_ms = 200 }
        local b = storage.open { backend = "sqlite", path = path, busy_timeout_ms = 200 }
        opened[#opened + 1], opened[#opened + 1] = a, b
        return a, b
      end,
      postgres = function()
        local t = helpers.unique_tenant("snap")
        local a = storage.open { backend = "postgres", url = helpers.pg_url(), tenant = t }
        local b = storage.open { backend = "postgres", url = helpers.pg_url(), tenant = t }
        opened[#opened + 1], opened[#opened + 1] = a, b
        return a, b
      end,
    }
    for name, make in pairs(pairs_of) do
      it("exports one moment on " .. name .. ", without holding up writers", function()
        local a, b = make()
        local m = {}
        for i = 1, 3000 do m[string.format("k%05d", i)] = "v" end
        a:set_batch(m)
        local wrote = false
        local doc, st = storage.exporter(a):to_string { progress = function(done)
          if not wrote and done > 0 then
            -- another handle writes while the export is half-way
            b:set("a-new-key", "written mid-export")
            b:delete("k02999")
            wrote = true
          end
        end }
        assert.is_true(wrote)
        assert.equal(3000, st.kv_entries)
        assert.is_nil(doc:find('"key":"a-new-key"', 1, true))
        assert.truthy(doc:find('"key":"k02999"', 1, true))
        -- the writes themselves went through
        assert.equal("written mid-export", a:get("a-new-key"))
        assert.is_nil(a:get("k02999"))
      end)
    end
  end)

  describe("roundtrip", function()
    for _, A in ipairs(KINDS) do
      for _, B in ipairs(KINDS) do
        it(A.name .. " -> " .. B.name .. " loses nothing", function()
          local a, ta = open(A)
          populate(a)
          local f1, f2 = helpers.tmpname(".json"), helpers.tmpname(".json")
          files[#files + 1] = f1
          files[#files + 1] = f2
          local est = storage.exporter(a):to_file(f1)
          assert.same({ 56, 335, 5 }, { est.kv_entries, est.vectors, est.collections })
          local b, tb = open(B)
          local ist = storage.importer(b):from_file(f1)
          for _, k in ipairs { "kv_entries", "vectors", "collections", "agent_states",
                               "sessions", "entities", "relationships", "total" } do
            assert.equal(est[k], ist[k], k)
          end
          storage.exporter(b):to_file(f2)
          local e1, e2 = read_file(f1), read_file(f2)
          assert.equal(normalize(e1, { ta, tb }), normalize(e2, { ta, tb }))

          -- spot checks through the public API
          assert.equal("a\0b\0", b:get("bin/nul"))
          assert.equal("\xff\xfe\xc3\x28", b:get("bin/invalid-utf8"))
          assert.equal("", b:get("bin/empty"))
          assert.equal(a:get("big"), b:get("big"))
          assert.equal("значение", b:get("text/ключ 日本"))
          local md = b:collection("docs"):get("d0003").metadata
          assert.equal(9007199254740993, md.big)
          assert.equal("integer", math.type(md.big))
          assert.equal(math.mininteger + 1, md.neg)
          assert.equal("float", math.type(md.whole))
          assert.equal(3 / 7, md.f)
          assert.equal(1e-300, md.tiny)
          assert.is_false(md.flag)
          assert.equal(3, md.nested.deep.x.y.z)
          local ga, gb = a:collection("docs"):get("d0005"), b:collection("docs"):get("d0005")
          assert.same(ga.vector, gb.vector)
          assert.equal(ga.event_time, gb.event_time)
          assert.equal(ga.created_at, gb.created_at)
          local la, lb = a:list_collections(), b:list_collections()
          assert.equal(#la, #lb)
          for i = 1, #la do
            for _, k in ipairs { "name", "dimension", "metric", "m", "ef_construction",
                                 "ef_search", "count" } do
              assert.equal(la[i][k], lb[i][k], la[i].name .. " " .. k)
            end
          end
          assert_same_search(a, b)
        end)
      end
    end
  end)

  -- A file as rs-llmspell writes it (serde_json pretty output): pgvector
  -- text and JSON-array embeddings, microsecond times, no `collection`,
  -- KV metadata as a JSON string, sections we only carry.
  local RS_FILE = [[
{
  "version": "1.0",
  "exported_at": "2025-01-15T10:30:00.123456Z",
  "source_backend": "postgresql",
  "migrations": ["V3", "V4", "V5", "V6", "V7", "V8", "V9"],
  "data": {
    "vector_embeddings": {
      "4": [
        {
          "id": "8f14e45f-ceea-467f-a0e6-7a7d2d5b5c11",
          "tenant_id": "rs-tenant",
          "scope": "session:abc",
          "dimension": 4,
          "embedding": "[0.1,0.2,-0.3,0.4]",
          "metadata": {"source": "doc", "page": 3},
          "created_at": 1736937000123456,
          "updated_at": 1736937000654321
        },
        {
          "id": "c9f0f895-fb98-4b91-9b1e-2a1b5c8d7e6f",
          "tenant_id": "rs-tenant",
          "scope": "global",
          "dimension": 4,
          "embedding": [0.5, -0.25, 1, 0.002],
          "metadata": {},
          "created_at": 1736937001000000,
          "updated_at": 1736937001000000
        }
      ]
    },
    "knowledge_graph": {
      "entities": [
        {"entity_id": "e-1", "tenant_id": "rs-tenant", "entity_type": "person",
         "name": "Ada", "properties": {"born": 1815}, "valid_time_start": 1736937000000000,
         "valid_time_end": 1736937009000000, "transaction_time_start": 1736937000000000,
         "transaction_time_end": 1736937009000000, "created_at": 1736937000000000},
        {"entity_id": "e-2", "tenant_id": "rs-tenant", "entity_type": "thing",
         "name": "Engine", "properties": {}, "valid_time_start": 1, "valid_time_end": 2,
         "transaction_time_start": 1, "transaction_time_end": 2, "created_at": 1}
      ],
      "relationships": [
        {"relationship_id": "r-1", "tenant_id": "rs-tenant", "source_entity_id": "e-1",
         "target_entity_id": "e-2", "relationship_type": "designed",
         "properties": {"year": 1837}, "valid_time_start": 1, "valid_time_end": 2,
         "transaction_time_start": 1, "transaction_time_end": 2, "created_at": 1}
      ]
    },
    "agent_state": [
      {"state_id": "a1", "tenant_id": "rs-tenant", "agent_id": "ag-1",
       "agent_type": "llm", "state_data": {"memory": ["x", "y"], "temperature": 0.7},
       "schema_version": 1, "data_version": 3, "checksum": "abc",
       "created_at": 1736937000123456, "updated_at": 1736937000123457},
      {"state_id": "a2", "tenant_id": "rs-tenant", "agent_id": "ag-2",
       "agent_type": "tool", "state_data": null, "schema_version": 1, "data_version": 1,
       "checksum": "def", "created_at": 1, "updated_at": 2}
    ],
    "kv_store": [
      {"kv_id": "0b5e2b34-7c1e-4f0e-9a3d-5f1b2c3d4e5f", "tenant_id": "rs-tenant",
       "key": "config/model", "value": "eyJtb2RlbCI6ImdwdC00In0=",
       "metadata": "{\"content_type\":\"application/json\"}",
       "created_at": 1736937000123456, "updated_at": 1736937000123999},
      {"kv_id": "1c6f3c45-8d2f-4a1f-8b4e-6a2c3d4e5f60", "tenant_id": "rs-tenant",
       "key": "blob", "value": "AAEC/w==", "metadata": null,
       "created_at": 1736937000000001, "updated_at": 1736937000000002}
    ],
    "sessions": [
      {"id": "s-1", "tenant_id": "rs-tenant", "session_id": "sess-1",
       "session_data": {"turns": 12}, "status": "active", "created_at": 1736937000000000,
       "last_accessed_at": 1736937005000000, "expires_at": null, "artifact_count": 0,
       "updated_at": 1736937005000000}
    ]
  }
}
]]

  -- Deep equality of decoded JSON (cjson.null included).
  local function same_json(x, y)
    if type(x) ~= type(y) then return false end
    if type(x) ~= "table" then return x == y end
    for k, v in pairs(x) do if not same_json(v, y[k]) then return false end end
    for k in pairs(y) do if x[k] == nil then return false end end
    return true
  end

  for _, K in ipairs(KINDS) do
    it("reads an rs-llmspell file into " .. K.name .. " and writes its sections back", function()
      local db = open(K)
      local st = storage.importer(db):from_string(RS_FILE)
      assert.equal(2, st.kv_entries)
      assert.equal(2, st.vectors)
      assert.equal(1, st.collections)
      assert.equal(2, st.agent_states)
      assert.equal(1, st.sessions)
      assert.equal(2, st.entities)
      assert.equal(1, st.relationships)
      assert.equal(2 + 2 + 2 + 1 + 3, st.total)
      assert.equal(0, st.skipped)
      assert.equal(#RS_FILE, st.bytes)

      -- vectors land in vectors_<dim> with the default parameters
      local info = db:list_collections()[1]
      assert.equal("vectors_4", info.name)
      assert.equal("cosine", info.metric)
      assert.same({ 16, 200, 50 }, { info.m, info.ef_construction, info.ef_search })
      local col = db:collection("vectors_4")
      local v1 = col:get("8f14e45f-ceea-467f-a0e6-7a7d2d5b5c11")
      assert.same({ f32(0.1), f32(0.2), f32(-0.3), f32(0.4) }, v1.vector)
      assert.equal("session:abc", v1.scope)
      assert.equal(1736937000.123456, v1.created_at)
      assert.same({ source = "doc", page = 3 }, v1.metadata)
      assert.same({ 0.5, -0.25, 1, f32(0.002) },
                  col:get("c9f0f895-fb98-4b91-9b1e-2a1b5c8d7e6f").vector)
      assert.equal('{"model":"gpt-4"}', db:get("config/model"))
      assert.equal("\0\1\2\255", db:get("blob"))

      -- exported back: the sections and records are intact
      local out = cjson.decode(export(db))
      local src = cjson.decode(RS_FILE)
      -- sessions are stored natively: their records come back in the store's tenant
      for _, r in ipairs(src.data.sessions) do r.tenant_id = db:tenant() end
      for _, part in pairs(src.data.knowledge_graph) do
        for _, r in ipairs(part) do r.tenant_id = db:tenant() end
      end
      for _, name in ipairs { "sessions", "knowledge_graph" } do
        assert.is_true(same_json(src.data[name], out.data[name]), name)
      end
      -- agent states land in the store's tenant, checksummed over the bytes
      -- stored (rs-llmspell's covers bytes its file does not carry)
      assert.equal(#src.data.agent_state, #out.data.agent_state)
      for i, rec in ipairs(src.data.agent_state) do
        local got = out.data.agent_state[i]
        for k, v in pairs(rec) do
          if k ~= "tenant_id" and k ~= "checksum" then
            assert.is_true(same_json(v, got[k]), "agent_state " .. i .. " " .. k)
          end
        end
        assert.equal(db:tenant(), got.tenant_id)
        assert.matches("^" .. ("%x"):rep(64) .. "$", got.checksum)
      end
      local kv = out.data.kv_store
      assert.equal(2, #kv)
      assert.equal("blob", kv[1].key)
      assert.equal("1c6f3c45-8d2f-4a1f-8b4e-6a2c3d4e5f60", kv[1].kv_id)
      assert.equal("AAEC/w==", kv[1].value)
      assert.equal(cjson.null, kv[1].metadata)
      assert.equal(1736937000000001, kv[1].created_at)
      assert.equal('{"content_type":"application/json"}', kv[2].metadata)
      assert.equal(1736937000123999, kv[2].updated_at)
      local vecs = out.data.vector_embeddings["4"]
      assert.equal(2, #vecs)
      assert.equal("vectors_4", vecs[1].collection)
      assert.equal(1736937000654321, vecs[1].updated_at) -- ids sort: 8f14... before c9f0...
      assert.equal(base64(string.pack("<ffff", 0.1, 0.2, -0.3, 0.4)), vecs[1].embedding)
      assert.equal(base64(string.pack("<ffff", 0.5, -0.25, 1, 0.002)), vecs[2].embedding)
    end)
  end

  -- ------------------------------------------------ refused files

  -- 2500 KV records (more than one batch), a new collection, then `tail`.
  local function big_doc(tail, version_first)
    local parts = {}
    for i = 1, 2500 do
      parts[i] = string.format('{"key":"k%04d","value":"bmV3","created_at":1,"updated_at":2}',
                               i)
    end
    local vecs = {}
    for i = 1, 50 do
      vecs[i] = string.format('{"id":"n%d","embedding":[1,2,3,%d],"collection":"newcoll"}', i, i)
    end
    local body = '"data":{"kv_store":[' .. table.concat(parts, ",") ..
                 '],"vector_embeddings":{"4":[' .. table.concat(vecs, ",") .. (tail or "") ..
                 ']},"sessions":[{"session_id":"x"}]}'
    if version_first == false then return "{" .. body .. "}" end
    return '{"version":"1.0",' .. body .. "}"
  end

  for _, K in ipairs(KINDS) do
    describe("refuses bad files on " .. K.name, function()
      local target, before

      before_each(function()
        target = open(K)
        populate(target, { seed = 3 })
        target:set("k0001", "old") -- the bad files would overwrite it
        before = without_time(export(target))
      end)

      local function refused(doc, code, pattern)
        local err = helpers.error_of(function() storage.importer(target):from_string(doc) end)
        assert.is_true(storage.is_error(err), tostring(err))
        assert.equal(code, err.code, err.message)
        if pattern then assert.matches(pattern, err.message) end
        assert.equal(before, without_time(export(target)))
        assert.equal("old", target:get("k0001"))
        assert.equal(nil, target:get("k2500"))
        return err
      end

      it("a truncated file", function()
        local good = big_doc()
        refused(good:sub(1, #good - 20), "format", "at byte %d+")
        refused(good:sub(1, 100000), "format", "byte")
      end)

      it("malformed JSON, with the byte offset", function()
        local good = big_doc()
        local bad = good:gsub('"key":"k2000"', '"key":k2000"', 1)
        local at = good:find('"key":"k2000"', 1, true)
        local err = refused(bad, "format")
        local n = tonumber(err.message:match("byte (%d+)"))
        assert.is_true(n >= at and n <= at + 10, err.message)
        refused('{"version":"1.0","data":{"kv_store":[{"key":"a",}]}}', "format")
        refused("", "format")
        refused("[1,2]", "format")
        refused('{"version":"1.0","data":{}} trailing', "format")
        refused('{"version":"1.0","data":{"kv_store":[{"key":"\\ud800x","value":""}]}}',
                "format", "surrogate")
      end)

      it("a wrong or missing version, wherever it stands", function()
        refused(big_doc():gsub('"version":"1.0"', '"version":"2.0"', 1), "version", "2%.0")
        -- found last, after every record was written (and rolled back)
        local late = big_doc(nil, false):gsub("}$", ',"version":"9.9"}')
        refused(late, "version", "9%.9")
        refused(big_doc(nil, false), "version")
        refused('{"version":1,"data":{}}', "version")
      end)

      it("an embedding whose length disagrees with its dimension, naming the record", function()
        local tail = ',{"id":"x","embedding":[1,2,3],"collection":"newcoll"}'
        refused(big_doc(tail), "format",
                escape("vector_embeddings.4[50] (id 'x'): 3 numbers, dimension says 4"))
        tail = ',{"id":"y","embedding":"AACAPw==","collection":"newcoll"}'
        refused(big_doc(tail), "format", escape("vector_embeddings.4[50] (id 'y')"))
        tail = ',{"id":"z","embedding":"[1,2,3,4,5]"}'
        refused(big_doc(tail), "format", "5 numbers, dimension says 4")
        tail = ',{"id":"w","embedding":""}'
        refused(big_doc(tail), "format", escape("(id 'w')"))
        tail = ',{"id":"d","dimension":8,"embedding":[1,2,3,4,5,6,7,8]}'
        refused(big_doc(tail), "format", "dimension 8")
      end)

      it("bad base64 and other bad records", function()
        refused(big_doc(',{"id":"b","embedding":"!!!!!!!!"}'), "format", "base64")
        local doc = big_doc():gsub('"value":"bmV3"', '"value":"bm V3"', 1)
        refused(doc, "format", "base64")
        refused(big_doc(',{"id":"n","embedding":[1,2,3,"x"]}'), "format", "numbers")
        refused(big_doc(',{"embedding":[1,2,3,4]}'), "format", "id")
        refused(big_doc(',{"id":"m","embedding":[1,2,3,4],"metric":"hamming"}'), "format",
                "metric")
        refused(big_doc(',{"id":"m","embedding":[1,2,3,4],"metadata":[1]}'), "format",
                "metadata")
        refused(big_doc(',{"id":"m","embedding":[1,2,3,1e39]}'), "format", "finite")
        refused('{"version":"1.0","data":{"vector_collections":[{"name":"x"}]}}', "format",
                escape("vector_collections[0]: no dimension"))
        refused('{"version":"1.0","data":{"vector_collections":[{"name":"docs",' ..
                '"dimension":3}]}}', "conflict", "dimension 8")
        refused(big_doc(',{"id":"c","embedding":[1,2,3,4],"collection":"docs"}'), "conflict",
                "collection 'docs' has dimension 8")
      end)

      it("JSON that is not strict RFC 8259, naming the byte", function()
        local good = big_doc()
        local at = good:find('"key":"k2000"', 1, true)
        for _, ws in ipairs { "\f", "\v" } do
          local bad = good:sub(1, at - 1) .. ws .. good:sub(at)
          local err = refused(bad, "format", "outside a string")
          assert.matches("invalid JSON at byte " .. at .. ":", err.message, 1, true)
          refused(good:gsub('"sessions"', ws .. '"sessions"', 1), "format", "whitespace")
        end
        -- deep in a long value, past the first chunks
        local long = ("QUJD"):rep(40000)
        local doc = big_doc():gsub('"value":"bmV3"', '"value":"' .. long .. '\f"', 1)
        local err = refused(doc, "format")
        assert.matches("control character inside a string", err.message)
        assert.matches("at byte " .. doc:find("\f", 1, true) .. ":", err.message, 1, true)
        refused(big_doc():gsub('"value":"bmV3"', '"value":"bm\xc0\xafV3"', 1), "format", "UTF%-8")
        refused(big_doc():gsub('"sessions":%[{"session_id":"x"}%]',
                              '"sessions":[{"session_id":"\xed\xa0\x80"}]', 1),
                "format", "UTF%-8")
        -- a skipped top-level member is read as strictly
        refused(big_doc():gsub('^{', '{"exported_at":"\xc0\xaf",', 1), "format", "UTF%-8")
        refused(big_doc():gsub('^{', '{"x":["\\udc00"],', 1), "format", "surrogate")
      end)

      it("base64 that is not strict RFC 4648 (padding, one spelling), in values and embeddings",
         function()
        for _, b in ipairs { "bmV", "bm", "bmV3b", "bmV3bw", "bmV3bw=", "bmV3bw===", "bmV3=bw==",
                             "bmV3bx==", "bmV3b3=", "bm\\nV3", " bmV3" } do
          refused(big_doc():gsub('"value":"bmV3"', '"value":"' .. b .. '"', 1), "format",
                  escape("kv_store[0] (key 'k0001'): value is not base64"))
          refused(big_doc(',{"id":"b","embedding":"' .. b .. '"}'), "format",
                  escape("(id 'b'): embedding is not base64"))
        end
        -- escapes in JSON strings are fine when they spell base64
        local doc = big_doc():gsub('"value":"bmV3"', '"value":"\\u0062m\\/3"', 1)
        local st = storage.importer(target):from_string((doc:gsub("k0001", "esc", 1)))
        assert.equal(2500, st.kv_entries)
        assert.equal("no\xf7", target:get("esc"))
      end)

      it("text the store refuses: NUL in ids, scopes, keys, kv_ids and metadata strings",
         function()
        local nul = "\\u0000"
        local function kv(rec) return big_doc():gsub('{"key":"k2000"[^}]*}', rec, 1) end
        refused(big_doc(',{"id":"a' .. nul .. '","embedding":[1,2,3,4]}'), "format",
                escape("vector_embeddings.4[50]: id must be"))
        refused(big_doc(',{"id":"' .. nul .. '","embedding":[1,2,3,4]}'), "format", "id must")
        refused(big_doc(',{"id":"s","scope":"' .. nul .. '","embedding":[1,2,3,4]}'), "format",
                escape("(id 's'): scope must be 1..255 bytes of UTF-8 without NUL"))
        refused(big_doc(',{"id":"s","scope":"g' .. nul .. 'x","embedding":[1,2,3,4]}'), "format",
                "scope must be")
        refused(big_doc(',{"id":"s","scope":"\xc0\xaf","embedding":[1,2,3,4]}'), "format")
        refused(big_doc(',{"id":"c","collection":"c' .. nul .. '","embedding":[1,2,3,4]}'),
                "format", "collection name")
        refused(big_doc(',{"id":"m","metadata":{"x":["' .. nul .. '"]},"embedding":[1,2,3,4]}'),
                "format", escape("(id 'm'): metadata strings must be UTF-8 text without NUL"))
        refused(kv('{"key":"k2000' .. nul .. '","value":""}'), "format",
                escape("kv_store[1999]: key must be UTF-8 text without NUL"))
        refused(kv('{"key":"k2000","kv_id":"x' .. nul .. '","value":""}'), "format",
                escape("kv_store[1999] (key 'k2000'): kv_id must be UTF-8 text without NUL"))
        refused(kv('{"key":"k2000","metadata":{"m":"' .. nul .. '"},"value":""}'), "format",
                escape("kv_store[1999] (key 'k2000'): metadata strings must be UTF-8"))
        refused(kv('{"key":"k2000","metadata":{"a' .. nul .. '":1},"value":""}'), "format",
                "key contains a NUL")
      end)

      it("a progress function that raises: rolled back, its error propagates", function()
        local sentinel = { "stop" }
        local ok, err = pcall(function()
          storage.importer(target):from_string(big_doc(), {
            progress = function(done) if done >= 1000 then error(sentinel) end end })
        end)
        assert.is_false(ok)
        assert.equal(sentinel, err)
        assert.equal(before, without_time(export(target)))
      end)

      it("inside db:transaction: a failed import leaves the outer transaction usable",
         function()
        target:transaction(function()
          target:set("inside", "1")
          local ok = pcall(function()
            storage.importer(target):from_string(big_doc(',{"id":"x","embedding":[1]}'))
          end)
          assert.is_false(ok)
          assert.equal("1", target:get("inside"))
          assert.equal("old", target:get("k0001"))
        end)
        assert.equal("1", target:get("inside"))
        -- and a successful one is undone with its transaction
        pcall(target.transaction, target, function()
          storage.importer(target):from_string(big_doc())
          assert.equal("new", target:get("k2500"))
          error("undo")
        end)
        assert.equal(nil, target:get("k2500"))
      end)
    end)
  end

  -- ------------------------------------------------ options

  for _, K in ipairs(KINDS) do
    describe("on " .. K.name, function()
      it("dry_run checks and counts, writes nothing", function()
        local db = open(K)
        populate(db, { sections = false })
        local before = without_time(export(db))
        local st = storage.importer(db):from_string(big_doc(), { dry_run = true })
        assert.equal(2500, st.kv_entries)
        assert.equal(50, st.vectors)
        assert.equal(1, st.collections)
        assert.equal(1, st.sessions)
        assert.equal(2551, st.total)
        assert.equal(before, without_time(export(db)))
        local err = helpers.error_of(function()
          storage.importer(db):from_string(big_doc(',{"id":"x","embedding":[1]}'),
                                           { dry_run = true })
        end)
        assert.equal("format", err.code)
      end)

      it("on_conflict: replace, skip, error", function()
        local function fresh()
          local db = open(K)
          db:set("k1", "old")
          db:create_collection("docs", { dimension = 2 }):add { id = "v1", vector = { 1, 0 } }
          storage.importer(db):from_string(
            '{"version":"1.0","data":{"sessions":[{"session_id":"s1",'
            .. '"session_data":{"old":true}}]}}')
          return db
        end
        local file = [[{"version":"1.0","data":{
          "kv_store":[{"key":"k1","value":"bmV3"},{"key":"k2","value":"bmV3"}],
          "vector_embeddings":{"2":[{"id":"v1","embedding":[0,1],"collection":"docs"},
                                    {"id":"v2","embedding":[1,1],"collection":"docs"}]},
          "sessions":[{"session_id":"s1","session_data":{"new":1}},
                      {"session_id":"s2","session_data":{"new":2}}]}}]]

        local db = fresh()
        local col = db:collection("docs") -- an open object sees the import
        local st = storage.importer(db):from_string(file)
        assert.same({ 2, 2, 0 }, { st.kv_entries, st.vectors, st.skipped })
        assert.equal("new", db:get("k1"))
        assert.same({ 0, 1 }, col:get("v1").vector)
        assert.equal(2, col:count())
        local s = cjson.decode(export(db)).data.sessions
        assert.equal(2, #s)
        assert.equal(1, s[1].session_data.new)

        db = fresh()
        st = storage.importer(db):from_string(file, { on_conflict = "skip" })
        assert.same({ 1, 1, 3 }, { st.kv_entries, st.vectors, st.skipped })
        assert.equal("old", db:get("k1"))
        assert.equal("new", db:get("k2"))
        assert.same({ 1, 0 }, db:collection("docs"):get("v1").vector)
        assert.same({ 1, 1 }, db:collection("docs"):get("v2").vector)
        s = cjson.decode(export(db)).data.sessions
        assert.equal(2, #s) -- sessions are records now: s1 kept, s2 added
        assert.is_true(s[1].session_data.old)
        assert.equal(2, s[2].session_data.new)

        db = fresh()
        local before = without_time(export(db))
        local err = helpers.error_of(function()
          storage.importer(db):from_string(file, { on_conflict = "error" })
        end)
        assert.equal("conflict", err.code)
        assert.equal(before, without_time(export(db)))
        -- (batches are written at their end, so the section's conflict would
        -- otherwise be found first)
        local only_new = file:gsub('{"key":"k1","value":"bmV3"},', "")
                             :gsub(',%s*"sessions".-%]', "")
        err = helpers.error_of(function()
          storage.importer(db):from_string(only_new, { on_conflict = "error" })
        end)
        assert.equal("conflict", err.code)
        assert.matches("v1", err.message)
        assert.equal(before, without_time(export(db)))
      end)

      it("reports progress with growing counts", function()
        local db = open(K)
        local calls = {}
        local doc = big_doc()
        storage.importer(db):from_string(doc, { batch_size = 500, progress =
          function(done, total, phase, bytes, bytes_total)
            calls[#calls + 1] = { done, total, phase, bytes, bytes_total }
          end })
        assert.is_true(#calls >= 3, #calls)
        for i = 2, #calls do
          assert.is_true(calls[i][1] >= calls[i - 1][1])
          assert.is_true(calls[i][4] >= calls[i - 1][4])
        end
        local last = calls[#calls]
        assert.equal("done", last[3])
        assert.equal(2551, last[1])
        assert.equal(#doc, last[4])
        assert.equal(#doc, last[5])

        calls = {}
        for i = 1, 2500 do db:set(string.format("z%05d", i), "v") end
        local _, st = storage.exporter(db):to_string { progress = function(done, total, phase)
          calls[#calls + 1] = { done, total, phase }
        end }
        assert.is_true(#calls >= 4, #calls)
        for i = 2, #calls do assert.is_true(calls[i][1] >= calls[i - 1][1]) end
        assert.same({ st.total, st.total, "done" }, calls[#calls])
        assert.equal(5000 + 50 + 1, st.total)
      end)

      it("writes the same bytes twice (apart from exported_at)", function()
        local db = open(K)
        populate(db)
        local a, b = export(db), export(db)
        assert.equal(without_time(a), without_time(b))
        local path = helpers.tmpname(".json")
        files[#files + 1] = path
        storage.exporter(db):to_file(path)
        assert.equal(without_time(a) .. "\n", without_time(read_file(path)))
        -- the documented order of the top-level keys and of a record's fields
        assert.matches('^{"version":"1%.0","exported_at":"%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z",' ..
                       '"source_backend":"%a+","tenant_id":"[^"]+","migrations":%[.-%],' ..
                       '"data":{"kv_store":%[{"kv_id":"%x+%-%x+%-8%x+%-[89ab]%x+%-%x+",' ..
                       '"tenant_id":"[^"]+","key":"big","value":"[^"]+","metadata":null,' ..
                       '"created_at":%d+,"updated_at":%d+}', a)
        assert.matches('"vector_collections":%[{"name":"docs","dimension":8,"metric":' ..
                       '"cosine","m":12,"ef_construction":100,"ef_search":40},{"name":' ..
                       '"empty","dimension":3,"metric":"ip","m":6,"ef_construction":200,' ..
                       '"ef_search":9},', a)
        assert.matches('"vector_embeddings":{"4":%[{"id":"l1","tenant_id":"[^"]+",' ..
                       '"scope":"global","dimension":4,"embedding":"[^"]+","metadata":{},' ..
                       '"created_at":%d+,"updated_at":%d+,"collection":"l2/vecs",' ..
                       '"metric":"l2","m":16,"ef_construction":200,"ef_search":50}', a)
        assert.matches('"expires_at":%d+}', a)
        assert.matches('"event_time":%d+', a)
      end)

      it("repeated keys, ids and sections: the last one wins", function()
        local db = open(K)
        local kv, vec = {}, {}
        for i = 1, 30 do
          kv[i] = string.format('{"key":"k%d","value":"%s"}', i % 3, i == 30 and "bGFzdA==" or "")
          vec[i] = string.format('{"id":"v%d","embedding":[%d,1]}', i % 3, i)
        end
        local doc = '{"version":"1.0","data":{"kv_store":[' .. table.concat(kv, ",") ..
                    '],"vector_embeddings":{"2":[' .. table.concat(vec, ",") ..
                    ']},"notes":[1,2,3],"notes":[4]}}'
        local st = storage.importer(db):from_string(doc, { batch_size = 7 })
        assert.equal(30, st.kv_entries)
        assert.equal("last", db:get("k0"))
        assert.same({ 30, 1 }, db:collection("vectors_2"):get("v0").vector)
        assert.equal(3, db:collection("vectors_2"):count())
        assert.same({ 4 }, cjson.decode(export(db)).data.notes)
      end)

      it("times: RFC 3339 text is read, expired records are skipped", function()
        local db = open(K)
        local st = storage.importer(db):from_string([[{"version":"1.0","data":{"kv_store":[
          {"key":"a","value":"","created_at":"2025-01-15T10:30:00.123456Z",
           "updated_at":"2025-01-15T12:30:00.5+02:00"},
          {"key":"gone","value":"","expires_at":1000},
          {"key":"later","value":"","expires_at":4102444800000000}]}}]])
        assert.same({ 2, 1 }, { st.kv_entries, st.skipped })
        assert.is_nil(db:get("gone"))
        local kv = cjson.decode(export(db)).data.kv_store
        assert.equal(1736937000123456, kv[1].created_at)
        assert.equal(1736937000500000, kv[1].updated_at)
        assert.equal(4102444800000000, kv[2].expires_at)
      end)

      it("expires_at: any present time is a time (0 too); absent or null is never", function()
        local db = open(K)
        local far = 4102444800000000
        local st = storage.importer(db):from_string(string.format([[{"version":"1.0","data":{
          "kv_store":[
            {"key":"zero","value":"","expires_at":0},
            {"key":"one","value":"","expires_at":1},
            {"key":"negative","value":"","expires_at":-5},
            {"key":"null","value":"","expires_at":null},
            {"key":"absent","value":""},
            {"key":"later","value":"","expires_at":%d}],
          "vector_embeddings":{"2":[
            {"id":"zero","embedding":[1,0],"expires_at":0},
            {"id":"one","embedding":[1,0],"expires_at":1},
            {"id":"text","embedding":[1,0],"expires_at":"1970-01-01T00:00:00Z"},
            {"id":"null","embedding":[1,0],"expires_at":null},
            {"id":"absent","embedding":[1,0]},
            {"id":"later","embedding":[1,0],"expires_at":%d}]}}}]], far, far))
        assert.same({ 3, 3, 6 }, { st.kv_entries, st.vectors, st.skipped })
        for _, k in ipairs { "zero", "one", "negative" } do assert.is_nil(db:get(k), k) end
        for _, k in ipairs { "null", "absent", "later" } do assert.equal("", db:get(k), k) end
        local col = db:collection("vectors_2")
        assert.same({ "absent", "later", "null" },
                    (function()
                      local ids = {}
                      for _, id in ipairs { "zero", "one", "text", "null", "absent", "later" } do
                        if col:get(id) then ids[#ids + 1] = id end
                      end
                      table.sort(ids)
                      return ids
                    end)())
        -- the export writes back what the store holds: a time only where there is one
        local doc = cjson.decode(export(db))
        local exp = {}
        for _, r in ipairs(doc.data.kv_store) do exp[r.key] = r.expires_at or "none" end
        assert.same({ null = "none", absent = "none", later = far }, exp)
        exp = {}
        for _, r in ipairs(doc.data.vector_embeddings["2"]) do exp[r.id] = r.expires_at or "none" end
        assert.same({ null = "none", absent = "none", later = far }, exp)
        -- a dry run counts the same
        st = storage.importer(open(K)):from_string(export(db):gsub('"kv_store":%[',
          '"kv_store":[{"key":"old","value":"","expires_at":0},', 1), { dry_run = true })
        assert.same({ 3, 3, 1 }, { st.kv_entries, st.vectors, st.skipped })
      end)

      it("exports a selection: prefix, collections, sections = false or by name", function()
        local db = open(K)
        populate(db)
        local out = cjson.decode(export(db, { prefix = "many/", collections = { "ip.vecs" },
                                              sections = false }))
        assert.equal(50, #out.data.kv_store)
        assert.equal("many/001", out.data.kv_store[1].key)
        assert.equal(10, #out.data.vector_embeddings["8"])
        assert.equal(1, #out.data.vector_collections)
        assert.equal("ip.vecs", out.data.vector_collections[1].name)
        assert.is_nil(out.data.vector_embeddings["4"])
        assert.is_nil(out.data.agent_state)
        out = cjson.decode(export(db, { prefix = "bin/" }))
        assert.equal(3, #out.data.kv_store)
        assert.equal(2, #out.data.agent_state)
        assert.equal("a scalar", out.data.custom_section)
        -- sections by name: components and passthrough alike, nothing else
        out = cjson.decode(export(db, { sections = { "agent_state", "custom_section" } }))
        assert.equal(2, #out.data.agent_state)
        assert.equal("a scalar", out.data.custom_section)
        assert.is_nil(out.data.sessions)
        assert.is_nil(out.data.knowledge_graph)
        out = cjson.decode(export(db, { sections = { "knowledge_graph" } }))
        assert.equal(2, #out.data.knowledge_graph.entities)
        assert.is_nil(out.data.agent_state)
        assert.is_nil(out.data.custom_section)
        assert.equal(0, select(2, storage.exporter(db):to_string { sections = {} }).sessions)
        local bad_sel = helpers.error_of(function() export(db, { sections = { 7 } }) end)
        assert.matches("option 'sections': name 1 is not a string", bad_sel, 1, true)
        local err = helpers.error_of(function() export(db, { collections = { "nope" } }) end)
        assert.equal("not_found", err.code)
        -- a name no collection can have is a bad argument, not "not found"
        for _, bad in ipairs { "\0", "", "a b", "bad\xff" } do
          local ok, msg = pcall(export, db, { collections = { "ip.vecs", bad } })
          assert.is_false(ok)
          assert.is_string(msg)
          assert.matches("option 'collections': entry 2: name", msg)
        end
        assert.has_error(function() export(db, { bogus = 1 }) end)
        assert.has_error(function() storage.importer(db):from_string("{}", { batch_size = 0 }) end)
      end)
    end)
  end

  -- ------------------------------------------------ big values

  -- Bytes that are not a repeat of any chunk-sized pattern.
  local function bytes(n, seed)
    local rand, block = prng(seed), {}
    for i = 1, 997 do block[i] = string.char(math.floor(rand() * 256)) end
    block = table.concat(block)
    return (block:rep(n // #block + 1)):sub(1, n)
  end

  for _, K in ipairs(KINDS) do
    it("big values round-trip on " .. K.name .. ": an 8 MB value, long strings elsewhere",
       function()
      local db, t0 = open(K)
      local big, long = bytes(8 * 1024 * 1024 + 1, 5), ("\u{e9}t\u{e9} "):rep(200000)
      db:set("big", big)
      db:set("empty", "")
      local col = db:create_collection("wide", { dimension = 4096 })
      local vec = random_vector(prng(9), 4096)
      col:add { id = "w", vector = vec, metadata = { text = long } }
      -- a section only an import can write (passthrough): a 1.4 MB string in it
      storage.importer(db):from_string('{"version":"1.0","data":{"custom_blobs":[{"content":"'
                                       .. base64(big:sub(1, 1024 * 1024)) .. '"}]}}')
      local path = helpers.tmpname(".json")
      files[#files + 1] = path
      local st = storage.exporter(db):to_file(path)
      assert.is_true(st.bytes > 8 * 1024 * 1024 * 4 / 3, st.bytes)
      local function check(target, t)
        assert.equal(#big, #target:get("big"))
        assert.is_true(big == target:get("big"))
        assert.equal("", target:get("empty"))
        local got = target:collection("wide"):get("w")
        assert.same(vec, got.vector)
        assert.is_true(long == got.metadata.text)
        assert.is_true(normalize(export(db), { t0 }) == normalize(export(target), { t }))
      end
      local a, ta = open(K)
      storage.importer(a):from_file(path)
      check(a, ta)
      local b, tb = open(K)
      storage.importer(b):from_string(read_file(path))
      check(b, tb)
      -- storage.records reads it the same way
      for section, r in storage.records(path) do
        if section == "kv_store" and r.key == "big" then assert.is_true(r.value == big) end
        if section == "vector_embeddings" then
          assert.equal(string.pack(("<" .. ("f"):rep(4096)), table.unpack(vec)), r.embedding)
        end
        if section == "custom_blobs" then
          assert.equal(base64(big:sub(1, 1024 * 1024)), r.content)
        end
      end
    end)
  end

  it("values and embeddings cut anywhere by the 64 KiB chunks read the same", function()
    local CHUNK = 65536
    local value = bytes(3000, 11)
    -- escapes in the base64 text: a JSON reader may meet "\/" and "\u0041"
    local text = base64(value):gsub("/", "\\/"):gsub("A", "\\u0041")
    local emb = string.pack("<ffff", 0.5, -1, 2, 0.25)
    local etext = base64(emb):gsub("/", "\\/")
    local path = helpers.tmpname(".json")
    files[#files + 1] = path
    for shift = -24, 24 do
      local head = '{"version":"1.0","data":{"kv_store":[{"key":"pad","value":"",'
                   .. '"metadata":{"p":"'
      local mid = '"}},{"key":"k","value":"'
      -- the value's text starts `shift` bytes after the first chunk ends
      local pad = CHUNK + shift - #head - #mid
      local doc = head .. ("x"):rep(pad) .. mid .. text
                  .. '"}],"vector_embeddings":{"4":[{"id":"e","embedding":"' .. etext .. '"},'
                  .. '{"id":"p","embedding":"[1,2,3,4]"}]}}}'
      assert.equal(CHUNK + shift + 1, doc:find(text, 1, true))
      for _, from in ipairs { "string", "file" } do
        local db = storage.open("memory")
        if from == "file" then
          write_file(path, doc)
          storage.importer(db):from_file(path)
        else
          storage.importer(db):from_string(doc)
        end
        assert.is_true(value == db:get("k"), "shift " .. shift .. " from " .. from)
        assert.same({ 0.5, -1, 2, 0.25 }, db:collection("vectors_4"):get("e").vector)
        assert.same({ 1, 2, 3, 4 }, db:collection("vectors_4"):get("p").vector)
        db:close()
      end
    end
    -- a value across many chunks, its last group cut by a chunk's end
    for _, n in ipairs { 3 * CHUNK - 1, 3 * CHUNK, 3 * CHUNK + 1, 3 * CHUNK + 2 } do
      local v = bytes(n, n)
      local db = storage.open("memory")
      storage.importer(db):from_string('{"version":"1.0","data":{"kv_store":[{"key":"v",'
                                       .. '"value":"' .. base64(v) .. '"}]}}')
      assert.is_true(v == db:get("v"), n)
      db:close()
    end
  end)

  it("a kv record's value given twice: the last one wins, as for any member", function()
    local db = storage.open("memory")
    storage.importer(db):from_string('{"version":"1.0","data":{"kv_store":['
      .. '{"key":"a","value":"QQ==","value":"QUI="},{"key":"b","value":"QQ==","value":""},'
      .. '{"value":"QUJD","key":"c"},{"key":"a","value":"QUJD"}]}}', { batch_size = 2 })
    assert.equal("ABC", db:get("a"))
    assert.equal("", db:get("b"))
    assert.equal("ABC", db:get("c"))
    local err = helpers.error_of(function()
      storage.importer(db):from_string('{"version":"1.0","data":{"kv_store":['
        .. '{"key":"x","value":"QQ==","value":5}]}}')
    end)
    assert.equal("format", err.code)
    assert.matches("value must be a string", err.message)
    assert.is_nil(db:get("x"))
    db:close()
  end)

  -- ------------------------------------------------ objects

  it("refuses use after close, and prints itself", function()
    local db = storage.open("memory")
    local exp, imp = storage.exporter(db), storage.importer(db)
    assert.matches("^llmspell.storage.Exporter %(memory", tostring(exp))
    assert.matches("^llmspell.storage.Importer %(memory", tostring(imp))
    db:close()
    assert.equal("closed", helpers.error_of(exp.to_string, exp).code)
    assert.equal("closed", helpers.error_of(imp.from_string, imp, "{}").code)
    assert.equal("closed", helpers.error_of(storage.exporter, db).code)
    local db2 = storage.open("memory")
    do
      local e2 <close> = storage.exporter(db2)
      e2:to_string()
      e2:close()
      assert.equal("closed", helpers.error_of(e2.to_string, e2).code)
      assert.equal("llmspell.storage.Exporter (closed)", tostring(e2))
    end
    db2:close()
  end)

  it("removes a partial file when the export fails", function()
    local db = storage.open("memory")
    for i = 1, 3000 do db:set(string.format("k%05d", i), "v") end
    local path = helpers.tmpname(".json")
    local err = helpers.error_of(function()
      storage.exporter(db):to_file(path, { progress = function(done)
        if done >= 2000 then error("stop here") end
      end })
    end)
    assert.matches("stop here", tostring(err))
    assert.is_nil(io.open(path))
    assert.equal("io", helpers.error_of(function()
      storage.exporter(db):to_file("/nonexistent-dir/x.json")
    end).code)
    db:close()
  end)

  -- ------------------------------------------------ bounded memory

  local function rss_kib()
    for line in io.lines("/proc/self/status") do
      local kb = line:match("^VmRSS:%s+(%d+)")
      if kb then return tonumber(kb) end
    end
  end

  -- Under AddressSanitizer (make asan) freed memory sits in a quarantine,
  -- so RSS says nothing about what the code holds: only the results count.
  local sanitized = (os.getenv("LD_PRELOAD") or ""):find("asan") ~= nil

  it("streams: memory stays bounded whatever the size", function()
    local db = storage.open("memory")
    local value = string.rep("x", 1000)
    local batch = {}
    for i = 1, 50000 do
      batch[string.format("key/%06d", i)] = value
      if i % 5000 == 0 then
        db:set_batch(batch)
        batch = {}
      end
    end
    local path = helpers.tmpname(".json")
    files[#files + 1] = path
    collectgarbage()
    collectgarbage()
    local before = rss_kib()
    local st = storage.exporter(db):to_file(path)
    local grew = rss_kib() - before
    assert.equal(50000, st.kv_entries)
    assert.is_true(st.bytes > 60e6, st.bytes)
    assert.is_true(sanitized or grew < 16 * 1024, "export grew RSS by " .. grew .. " KiB")
    db:close()

    local tpath = helpers.tmpname(".db")
    files[#files + 1] = tpath
    -- SQLite's own page cache and memory map would dwarf what is measured
    local target = storage.open { backend = "sqlite", path = tpath, cache_size = -2048,
                                  mmap_size = 0 }
    opened[#opened + 1] = target
    collectgarbage()
    collectgarbage()
    before = rss_kib()
    st = storage.importer(target):from_file(path)
    grew = rss_kib() - before
    assert.equal(50000, st.kv_entries)
    assert.is_true(sanitized or grew < 16 * 1024, "import grew RSS by " .. grew .. " KiB")
    assert.equal(value, target:get("key/049999"))
  end)
end)
