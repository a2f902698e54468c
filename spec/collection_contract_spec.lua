--- The vector-collection contract, run against every backend: collections,
-- entries, search (against brute force), filters (against a reference
-- evaluator), scopes, TTL, time ranges, transactions, bad input.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

-- Deterministic PRNG, so failures replay.
local function prng(seed)
  local s = seed
  return function(n)
    s = (s * 1103515245 + 12345) % 2147483648
    if n then return s % n + 1 end
    return s / 2147483648
  end
end

local function random_vector(rand, dim)
  local v = {}
  for i = 1, dim do v[i] = rand() * 2 - 1 end
  return v
end

-- Distances as the library defines them.
local function distance(metric, a, b)
  local dot, na, nb, l2, l1 = 0, 0, 0, 0, 0
  for i = 1, #a do
    dot = dot + a[i] * b[i]
    na = na + a[i] * a[i]
    nb = nb + b[i] * b[i]
    l2 = l2 + (a[i] - b[i]) ^ 2
    l1 = l1 + math.abs(a[i] - b[i])
  end
  if metric == "cosine" then return 1 - dot / math.sqrt(na * nb) end
  if metric == "l2" then return math.sqrt(l2) end
  if metric == "ip" then return -dot end
  return l1
end

local function brute_force(items, q, metric, k, accept)
  local scored = {}
  for id, it in pairs(items) do
    if not accept or accept(it) then
      scored[#scored + 1] = { id = id, d = distance(metric, q, it.vector) }
    end
  end
  table.sort(scored, function(x, y) return x.d < y.d or (x.d == y.d and x.id < y.id) end)
  local out = {}
  for i = 1, math.min(k, #scored) do out[i] = scored[i].id end
  return out
end

local function ids_of(results)
  local out = {}
  for i, r in ipairs(results) do out[i] = r.id end
  return out
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- Reference filter semantics (Mongo-style), independent of the C code.
local ref_match
local function lookup(md, path)
  local cur = md
  for part in path:gmatch("[^.]+") do
    if type(cur) ~= "table" then return nil end
    cur = cur[part]
  end
  return cur
end
local function eq(a, b)
  if type(a) == "table" and type(b) == "table" then
    for k, v in pairs(a) do if not eq(v, b[k]) then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return true
  end
  if type(a) == "table" then
    for _, v in ipairs(a) do if eq(v, b) then return true end end
    return false
  end
  return a == b
end
local function cmp(a, b)
  if type(a) == "number" and type(b) == "number" then return a < b and -1 or a > b and 1 or 0 end
  if type(a) == "string" and type(b) == "string" then return a < b and -1 or a > b and 1 or 0 end
  return nil
end
local function op_match(v, op, arg)
  if op == "$eq" then return v ~= nil and eq(v, arg) end
  if op == "$ne" then return v == nil or not eq(v, arg) end
  if op == "$exists" then return (v ~= nil) == arg end
  if op == "$in" then
    if v == nil then return false end
    for _, a in ipairs(arg) do if eq(v, a) then return true end end
    return false
  end
  if op == "$nin" then return not op_match(v, "$in", arg) end
  local c = v ~= nil and cmp(v, arg)
  if not c then return false end
  if op == "$gt" then return c > 0 end
  if op == "$gte" then return c >= 0 end
  if op == "$lt" then return c < 0 end
  if op == "$lte" then return c <= 0 end
  error("unknown op " .. op)
end
ref_match = function(f, md)
  for k, cond in pairs(f) do
    if k == "$and" then
      for _, sub in ipairs(cond) do if not ref_match(sub, md) then return false end end
    elseif k == "$or" then
      local any = false
      for _, sub in ipairs(cond) do if ref_match(sub, md) then any = true end end
      if not any then return false end
    elseif k == "$not" then
      if ref_match(cond, md) then return false end
    else
      local v = lookup(md, k)
      if type(cond) == "table" and next(cond) and type(next(cond)) == "string"
          and next(cond):sub(1, 1) == "$" then
        for op, arg in pairs(cond) do if not op_match(v, op, arg) then return false end end
      elseif not (v ~= nil and eq(v, cond)) then
        return false
      end
    end
  end
  return true
end

-- The whole contract for one backend; `it` runs each body plainly or
-- inside a coroutine (helpers.runs), `run_name` says which.
local function contract(backend, it, run_name)
  describe("collection contract on " .. backend.name .. run_name, function()
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

    describe("collections", function()
      it("are created, opened, listed and dropped", function()
        local col = db:create_collection("tenant_acme:docs", { dimension = 384 })
        assert.equal("llmspell.storage.Collection (tenant_acme:docs, 384-d cosine, 0 vectors)",
                     tostring(col))
        assert.equal(col, db:collection("tenant_acme:docs"))
        db:create_collection("tenant_acme:notes", { dimension = 8, metric = "l2",
                                                     preset = "accurate" })
        db:create_collection("other", { dimension = 3072, metric = "ip", m = 8,
                                        ef_construction = 64, ef_search = 32 })
        local all = db:list_collections()
        assert.same({ "other", "tenant_acme:docs", "tenant_acme:notes" },
                    { all[1].name, all[2].name, all[3].name })
        local acme = db:list_collections("tenant_acme:")
        assert.equal(2, #acme)
        assert.equal(384, acme[1].dimension)
        assert.equal("cosine", acme[1].metric)
        assert.same({ 8, "l2", 32, 400, 200 }, { acme[2].dimension, acme[2].metric, acme[2].m,
                                                 acme[2].ef_construction, acme[2].ef_search })
        assert.same({ 8, 64, 32, "ip" }, { all[1].m, all[1].ef_construction, all[1].ef_search,
                                            all[1].metric })
        assert.equal(3, db:stats().collections)
        assert.is_true(db:drop_collection("tenant_acme:docs"))
        assert.is_false(db:drop_collection("tenant_acme:docs"))
        assert.equal("closed", helpers.error_of(col.count, col).code)
        assert.equal("not_found", helpers.error_of(db.collection, db, "tenant_acme:docs").code)
      end)

      it("apply the seeds' presets", function()
        for preset, p in pairs { fast = { 12, 100, 50 }, balanced = { 16, 200, 100 },
                                 accurate = { 32, 400, 200 } } do
          local s = db:create_collection("p_" .. preset, { dimension = 4, preset = preset })
                      :stats()
          assert.same(p, { s.m, s.ef_construction, s.ef_search }, preset)
        end
      end)

      it("refuse duplicates and bad parameters", function()
        db:create_collection("dup", { dimension = 4 })
        local err = helpers.error_of(db.create_collection, db, "dup", { dimension = 4 })
        assert.equal("conflict", err.code)
        local cases = {
          { { dimension = 0 }, "option 'dimension' must be an integer in [1, 4096]" },
          { { dimension = 4097 }, "option 'dimension' must be an integer in [1, 4096]" },
          { { }, "option 'dimension' is required" },
          { { dimension = 4, metric = "hamming" }, "option 'metric' must be" },
          { { dimension = 4, preset = "turbo" }, "option 'preset' must be" },
          { { dimension = 4, dimensions = 4 }, "unknown option 'dimensions'" },
          { { dimension = 4, m = 1 }, "option 'm' must be an integer" },
        }
        for _, c in ipairs(cases) do
          err = helpers.error_of(function() db:create_collection("x", c[1]) end)
          assert.matches("bad argument #2 to 'create_collection' (" .. c[2], err, 1, true)
        end
        err = helpers.error_of(function() db:create_collection("bad name!", { dimension = 4 }) end)
        assert.matches("bad argument #1 to 'create_collection' (name 'bad name!' has a "
                       .. "character other than", err, 1, true)
        assert.equal(1, #db:list_collections())
      end)

      it("belong to the handle's tenant", function()
        db:create_collection("docs", { dimension = 2 }):add { id = "mine", vector = { 1, 0 } }
        local other = open { tenant = helpers.unique_tenant("coll") }
        assert.same({}, other:list_collections())
        local theirs = other:create_collection("docs", { dimension = 2 })
        theirs:add { id = "theirs", vector = { 0, 1 } }
        assert.same({ "mine" }, ids_of(db:collection("docs"):search({ 1, 0 }, { k = 5 })))
        assert.same({ "theirs" }, ids_of(theirs:search({ 1, 0 }, { k = 5 })))
        other:drop_collection("docs")
        assert.equal(1, db:collection("docs"):count())
        other:close()
      end)
    end)

    describe("entries", function()
      local col
      before_each(function() col = db:create_collection("e", { dimension = 3, metric = "l2" }) end)

      it("add, get, upsert, update metadata and delete", function()
        local md = { title = "T", n = 9007199254740993, f = 2.0, ok = true, tags = { "a", "b" },
                     nested = { deep = { x = -1 } } }
        assert.equal(1, col:add { id = "a", vector = { 1, 2, 3 }, metadata = md })
        local e = col:get("a")
        assert.equal("a", e.id)
        assert.same({ 1, 2, 3 }, e.vector)
        assert.same(md, e.metadata)
        assert.equal("integer", math.type(e.metadata.n))
        assert.equal(9007199254740993, e.metadata.n)
        assert.equal("float", math.type(e.metadata.f))
        assert.equal("global", e.scope)
        assert.is_number(e.created_at)
        assert.is_nil(col:get("missing"))
        local err = helpers.error_of(col.add, col, { id = "a", vector = { 0, 0, 0 } })
        assert.equal("conflict", err.code)
        assert.matches("id 'a' already exists", err.message, 1, true)
        assert.same({ 1, 2, 3 }, col:get("a").vector)
        assert.equal(1, col:upsert { id = "a", vector = { 3, 2, 1 }, metadata = { v = 2 } })
        assert.same({ 3, 2, 1 }, col:get("a").vector)
        assert.same({ v = 2 }, col:get("a").metadata)
        assert.equal(e.created_at, col:get("a").created_at)
        col:update_metadata("a", { v = 3, s = "x" })
        assert.same({ v = 3, s = "x" }, col:get("a").metadata)
        assert.same({ 3, 2, 1 }, col:get("a").vector)
        assert.equal("not_found", helpers.error_of(col.update_metadata, col, "nope", {}).code)
        assert.equal(1, col:delete("a"))
        assert.equal(0, col:delete({ "a", "b" }))
        assert.equal(0, #col)
      end)

      it("take packed float32 strings as vectors, bit for bit", function()
        local packed = string.pack("<fff", 0.1, -2.5, 1e-7)
        col:add { id = "p", vector = packed }
        local v = col:get("p").vector
        assert.equal(packed, string.pack("<fff", v[1], v[2], v[3]))
      end)

      it("add arrays of entries atomically", function()
        col:add { { id = "x1", vector = { 1, 0, 0 } }, { id = "x2", vector = { 0, 1, 0 } } }
        assert.equal(2, col:count())
        -- a bad entry in the middle: nothing written
        local err = helpers.error_of(function()
          col:add { { id = "y1", vector = { 1, 1, 1 } }, { id = "y2", vector = { 1, 1 } },
                    { id = "y3", vector = { 1, 1, 1 } } }
        end)
        assert.matches("bad argument #1 to 'add' (entry 2: vector has 2 numbers, collection "
                       .. "expects 3)", err, 1, true)
        err = helpers.error_of(col.add, col, { { id = "y1", vector = { 1, 1, 1 } },
                                               { id = "x1", vector = { 1, 1, 1 } } })
        assert.equal("conflict", err.code)
        assert.is_nil(col:get("y1"))
        assert.equal(2, #col)
      end)

      it("refuse bad vectors, ids and metadata, naming the entry", function()
        local cases = {
          { { id = "a", vector = { 1, 0 / 0, 0 } }, "entry 1: vector[2] is NaN" },
          { { id = "a", vector = { 1, 1 / 0, 0 } }, "entry 1: vector[2] is infinite" },
          { { id = "a", vector = { 1, 1e39, 0 } }, "entry 1: vector[2] is infinite" },
          { { id = "a", vector = { 1, "2", 0 } }, "entry 1: vector[2] is not a number" },
          { { id = "a", vector = "abc" }, "entry 1: vector is a 3-byte string" },
          { { id = "a" }, "entry 1: vector: table of numbers or packed float32 string expected" },
          { { id = 5, vector = { 1, 2, 3 } }, "entry 1: string id expected, got number" },
          { { id = "", vector = { 1, 2, 3 } }, "entry 1: id must be 1..512 bytes" },
          { { id = "a", vector = { 1, 2, 3 }, metadata = { x = 0 / 0 } },
            "entry 1: metadata.x: NaN and infinities cannot be stored" },
          { { id = "a", vector = { 1, 2, 3 }, metadata = { 1, x = 2 } },
            "entry 1: metadata: table mixes array and string keys" },
          { { id = "a", vector = { 1, 2, 3 }, metadata = { f = print } },
            "entry 1: metadata.f: function cannot be stored" },
          { { id = "a", vector = { 1, 2, 3 }, metadata = { s = "\xff" } },
            "entry 1: metadata.s: strings must be UTF-8 text" },
          { { id = "a", vector = { 1, 2, 3 }, ttl = -1 },
            "entry 1: ttl must be a positive number of seconds" },
          { { id = "a", vector = { 1, 2, 3 }, colour = "red" },
            "entry 1: unknown option 'colour'" },
          { { { id = "a", vector = { 1, 2, 3 } }, { id = "a", vector = { 1, 2, 3 } } },
            "entry 2: id 'a' appears twice in the batch" },
        }
        for _, c in ipairs(cases) do
          local err = helpers.error_of(function() col:add(c[1]) end)
          assert.matches("bad argument #1 to 'add' (" .. c[2], err, 1, true)
        end
        assert.equal(0, #col)
      end)
    end)

    describe("search", function()
      for _, metric in ipairs { "cosine", "l2", "ip", "l1" } do
        it("ranks like brute force with " .. metric, function()
          local rand = prng(7)
          local col = db:create_collection("s_" .. metric, { dimension = 16, metric = metric,
                                                             preset = "accurate" })
          local items, batch = {}, {}
          for i = 1, 300 do
            local id = string.format("v%03d", i)
            items[id] = { vector = random_vector(rand, 16) }
            batch[i] = { id = id, vector = items[id].vector }
          end
          col:add(batch)
          local hits, total = 0, 0
          for _ = 1, 20 do
            local q = random_vector(rand, 16)
            local res = col:search(q, { k = 10, ef_search = 200 })
            local truth = set_of(brute_force(items, q, metric, 10))
            for _, r in ipairs(res) do hits = hits + (truth[r.id] and 1 or 0) end
            total = total + 10
            for i = 2, #res do assert.is_true(res[i - 1].distance <= res[i].distance + 1e-6) end
            local d = distance(metric, q, items[res[1].id].vector)
            assert.near(d, res[1].distance, 1e-4)
            local expect = metric == "cosine" and 1 - d or metric == "ip" and -d or 1 / (1 + d)
            assert.near(expect, res[1].score, 1e-4)
          end
          assert.is_true(hits / total >= 0.95, "recall " .. hits / total)
        end)
      end

      it("returns fewer than k when the collection is smaller, and honours threshold", function()
        local col = db:create_collection("small", { dimension = 2 })
        col:add { { id = "a", vector = { 1, 0 } }, { id = "b", vector = { 0, 1 } },
                  { id = "c", vector = { 1, 1 } } }
        local res = col:search({ 1, 0 }, { k = 10 })
        assert.same({ "a", "c", "b" }, ids_of(res))
        assert.near(1.0, res[1].score, 1e-6)
        res = col:search({ 1, 0 }, { k = 10, threshold = 0.5 })
        assert.same({ "a", "c" }, ids_of(res))
        assert.matches("option 'threshold' must be a number, not NaN",
                       helpers.error_of(col.search, col, { 1, 0 }, { threshold = 0 / 0 }), 1, true)
        res = col:search({ 1, 0 }, { k = 1, include_metadata = false, include_vector = true })
        assert.is_nil(res[1].metadata)
        assert.same({ 1, 0 }, res[1].vector)
        assert.same({}, db:create_collection("empty", { dimension = 2 }):search({ 1, 0 }))
      end)

      it("answers batches of queries like single ones", function()
        local rand = prng(11)
        local col = db:create_collection("many", { dimension = 8 })
        local batch = {}
        for i = 1, 200 do batch[i] = { id = "m" .. i, vector = random_vector(rand, 8),
                                       metadata = { odd = i % 2 == 1 } } end
        col:add(batch)
        local qs = {}
        for i = 1, 12 do qs[i] = random_vector(rand, 8) end
        local opts = { k = 5, filter = { odd = true } }
        local many = col:search_many(qs, opts)
        assert.equal(12, #many)
        for i, q in ipairs(qs) do assert.same(ids_of(col:search(q, opts)), ids_of(many[i])) end
      end)

      it("sees upserts and deletes at once", function()
        local col = db:create_collection("live", { dimension = 2 })
        col:add { { id = "a", vector = { 1, 0 } }, { id = "b", vector = { 0, 1 } } }
        assert.equal("a", col:search({ 1, 0 }, { k = 1 })[1].id)
        col:upsert { id = "b", vector = { 1, 0.01 } }
        col:delete("a")
        assert.same({ "b" }, ids_of(col:search({ 1, 0 }, { k = 5 })))
      end)

      it("neither grows nor loses recall under steady add and delete", function()
        local rand = prng(21)
        local col = db:create_collection("churn", { dimension = 8, metric = "l2" })
        local items, next_id = {}, 0
        local function add(n)
          local batch = {}
          for i = 1, n do
            next_id = next_id + 1
            local id = string.format("c%05d", next_id)
            items[id] = { vector = random_vector(rand, 8) }
            batch[i] = { id = id, vector = items[id].vector }
          end
          col:add(batch)
        end
        add(400)
        local base_mem
        for round = 1, 15 do
          local doomed = {}
          for id in pairs(items) do
            if #doomed < 100 then doomed[#doomed + 1] = id end
          end
          table.sort(doomed)
          assert.equal(100, col:delete(doomed))
          for _, id in ipairs(doomed) do items[id] = nil end
          add(100)
          if round == 3 then base_mem = col:stats().memory_bytes end
        end
        assert.equal(400, #col)
        assert.is_true(col:stats().memory_bytes <= base_mem * 1.25,
                       "memory grew from " .. base_mem .. " to " .. col:stats().memory_bytes)
        local hits = 0
        for _ = 1, 20 do
          local q = random_vector(rand, 8)
          local truth = set_of(brute_force(items, q, "l2", 10))
          for _, r in ipairs(col:search(q, { k = 10, ef_search = 100 })) do
            hits = hits + (truth[r.id] and 1 or 0)
          end
        end
        assert.is_true(hits / 200 >= 0.95, "recall " .. hits / 200)
      end)

      it("refuses bad queries and options", function()
        local col = db:create_collection("q", { dimension = 2 })
        local cases = {
          { function() col:search({ 1 }) end,
            "bad argument #1 to 'search' (query vector has 1 numbers, collection expects 2)" },
          { function() col:search({ 1, 0 }, { k = 0 }) end,
            "bad argument #2 to 'search' (option 'k' must be an integer in [1, 10000])" },
          { function() col:search({ 1, 0 }, { kk = 1 }) end,
            "bad argument #2 to 'search' (unknown option 'kk')" },
          { function() col:search({ 1, 0 }, { filter = { a = { ["$regex"] = "x" } } }) end,
            "bad argument #2 to 'search' (filter.a.$regex: unknown operator" },
          { function() col:search({ 1, 0 }, { filter = { ["$or"] = {} } }) end,
            "bad argument #2 to 'search' (filter.$or" },
          { function() col:search({ 1, 0 }, { event_time = 5 }) end,
            "bad argument #2 to 'search' (option 'event_time': {from, to} expected)" },
        }
        for _, c in ipairs(cases) do
          local err = helpers.error_of(c[1])
          assert.matches(c[2], err, 1, true)
        end
      end)
    end)

    describe("filters", function()
      local col, items
      before_each(function()
        local rand = prng(3)
        col = db:create_collection("f", { dimension = 4 })
        items = {}
        local batch = {}
        local cats = { "docs", "blog", "code", "Docs" }
        for i = 1, 240 do
          local md = { category = cats[rand(4)], year = 2018 + rand(8), score = rand() * 10,
                       big = 9007199254740990 + rand(5), flag = rand(2) == 1,
                       author = { name = ({ "ann", "bob", "cy" })[rand(3)], age = 20 + rand(40) },
                       tags = { cats[rand(4)], cats[rand(4)] } }
          if rand(5) == 1 then md.optional = rand(3) end
          local id = string.format("f%03d", i)
          items[id] = { vector = random_vector(rand, 4), metadata = md }
          batch[i] = { id = id, vector = items[id].vector, metadata = md }
        end
        col:add(batch)
      end)

      local filters = {
        { category = "docs" },
        { category = { ["$eq"] = "blog" } },
        { category = { ["$ne"] = "blog" } },
        { year = { ["$gt"] = 2022 } },
        { year = { ["$gte"] = 2022 } },
        { year = { ["$lt"] = 2021 } },
        { year = { ["$lte"] = 2021 } },
        { year = { ["$gte"] = 2020, ["$lt"] = 2023 } },
        { score = { ["$gt"] = 4.5 } },
        { score = { ["$lte"] = 2 } },
        { big = { ["$gt"] = 9007199254740992 } },
        { big = 9007199254740993 },
        { category = { ["$gt"] = "code" } },
        { category = { ["$in"] = { "docs", "code" } } },
        { category = { ["$nin"] = { "docs", "code" } } },
        { year = { ["$in"] = { 2019, 2024.0 } } },
        { flag = true },
        { flag = { ["$ne"] = true } },
        { optional = { ["$exists"] = true } },
        { optional = { ["$exists"] = false } },
        { optional = { ["$ne"] = 2 } },
        { optional = { ["$nin"] = { 1 } } },
        { ["author.name"] = "bob" },
        { ["author.age"] = { ["$gte"] = 40 } },
        { ["author.missing"] = { ["$exists"] = false } },
        { tags = "code" },
        { ["$and"] = { { category = "docs" }, { year = { ["$gt"] = 2020 } } } },
        { ["$or"] = { { category = "docs" }, { flag = true } } },
        { ["$not"] = { category = "docs" } },
        { category = "blog", ["$or"] = { { year = 2020 }, { year = 2021 } } },
        { year = { ["$gt"] = "2020" } }, -- incomparable types: no match
      }
      for i, f in ipairs(filters) do
        it("matches the reference for filter " .. i, function()
          local expect = {}
          for id, it in pairs(items) do
            if ref_match(f, it.metadata) then expect[#expect + 1] = id end
          end
          table.sort(expect)
          local res = col:search({ 1, 0, 0, 0 }, { k = 240, filter = f })
          local got = ids_of(res)
          table.sort(got)
          assert.same(expect, got)
        end)
      end

      it("builds the same filters with storage.filter()", function()
        local f = storage.filter():eq("category", "docs"):gt("year", 2020):range("score", 1, 8)
        assert.same({ category = { ["$eq"] = "docs" }, year = { ["$gt"] = 2020 },
                      score = { ["$gte"] = 1, ["$lte"] = 8 } }, f:build())
        local as_table = { category = "docs", year = { ["$gt"] = 2020 },
                           score = { ["$gte"] = 1, ["$lte"] = 8 } }
        assert.same(ids_of(col:search({ 1, 0, 0, 0 }, { k = 240, filter = as_table })),
                    ids_of(col:search({ 1, 0, 0, 0 }, { k = 240, filter = f })))
        local g = storage.filter():in_("category", { "blog" })
                                  :or_({ flag = true }, { year = 2019 })
                                  :not_({ ["author.name"] = "cy" }):exists("optional")
        local expect = 0
        for _, it in pairs(items) do
          if ref_match(g:build(), it.metadata) then expect = expect + 1 end
        end
        assert.equal(expect, #col:search({ 1, 0, 0, 0 }, { k = 240, filter = g }))
        assert.matches("llmspell.storage.Filter %(4 conditions%)", tostring(g))
      end)

      it("keeps nearest-neighbour order under filters", function()
        local rand = prng(99)
        for _ = 1, 10 do
          local q = random_vector(rand, 4)
          local f = { category = "code" }
          local want = brute_force(items, q, "cosine", 10,
                                   function(it) return ref_match(f, it.metadata) end)
          assert.same(want, ids_of(col:search(q, { k = 10, filter = f })))
        end
      end)
    end)

    describe("scopes", function()
      it("isolate entries, even when k exceeds the scope", function()
        local col = db:create_collection("sc", { dimension = 2 })
        local batch = {}
        for i = 1, 50 do
          batch[i] = { id = "g" .. i, vector = { i, 1 } }
        end
        for i = 1, 3 do
          batch[#batch + 1] = { id = "a" .. i, vector = { i, 2 }, scope = "tenant:acme",
                                metadata = { n = i } }
        end
        col:add(batch)
        local res = col:search({ 1, 1 }, { k = 10, scope = "tenant:acme" })
        assert.same({ "a1", "a2", "a3" }, (function()
          local ids = ids_of(res)
          table.sort(ids)
          return ids
        end)())
        for _, r in ipairs(res) do assert.equal("tenant:acme", r.scope) end
        assert.same({}, col:search({ 1, 1 }, { scope = "tenant:nobody" }))
        local st = col:stats_for_scope("tenant:acme")
        assert.equal(3, st.vectors)
        assert.is_true(st.bytes >= 3 * 2 * 4)
        assert.equal(0, col:stats_for_scope("tenant:nobody").vectors)
        assert.equal(3, col:delete_scope("tenant:acme"))
        assert.equal(0, col:stats_for_scope("tenant:acme").vectors)
        assert.equal(50, #col)
        assert.equal(0, col:delete_scope("tenant:acme"))
      end)
    end)

    describe("time", function()
      it("hides expired entries and purges them", function()
        local col = db:create_collection("ttl", { dimension = 2 })
        col:add { { id = "short", vector = { 1, 0 }, ttl = 0.2 },
                  { id = "long", vector = { 1, 0.1 }, ttl = 3600 },
                  { id = "past", vector = { 1, 0.2 }, expires_at = os.time() - 10 },
                  { id = "keep", vector = { 0, 1 } } }
        assert.same({ "short", "long", "keep" }, ids_of(col:search({ 1, 0 }, { k = 10 })))
        helpers.sleep(0.3)
        assert.same({ "long", "keep" }, ids_of(col:search({ 1, 0 }, { k = 10 })))
        assert.same({ "short", "long", "past", "keep" },
                    ids_of(col:search({ 1, 0 }, { k = 10, exclude_expired = false })))
        assert.is_nil(col:get("short"))
        assert.equal("short", col:get("short", { exclude_expired = false }).id)
        assert.equal(2, #col)
        assert.equal(2, col:stats().expired)
        assert.equal(2, col:purge_expired())
        assert.equal(0, col:stats().expired)
        assert.is_nil(col:get("short", { exclude_expired = false }))
        assert.equal(2, col:stats().stored)
      end)

      it("counts the same live entries in stats_for_scope as count() does", function()
        local col = db:create_collection("ttl_scopes", { dimension = 2 })
        col:add { { id = "short", vector = { 1, 0 }, ttl = 0.2, scope = "s", metadata = { n = 1 } },
                  { id = "past", vector = { 1, 0.2 }, expires_at = os.time() - 10, scope = "s",
                    metadata = { n = 2 } },
                  { id = "long", vector = { 1, 0.1 }, ttl = 3600, scope = "s", metadata = { n = 3 } },
                  { id = "keep", vector = { 0, 1 }, scope = "s" },
                  { id = "gone", vector = { 0, 1 }, scope = "t", expires_at = os.time() - 10 } }
        local function stats()
          local s, t = col:stats_for_scope("s"), col:stats_for_scope("t")
          return { s.vectors, s.bytes, t.vectors, t.bytes }
        end
        local before = stats()
        assert.same({ 3, 0, 0 }, { before[1], before[3], before[4] })
        assert.equal(1, col:stats().scopes) -- "t" holds only an expired entry
        assert.equal(#col, before[1] + before[3])
        helpers.sleep(0.3) -- "short" expires
        local expired = stats()
        assert.same({ 2, 0, 0 }, { expired[1], expired[3], expired[4] })
        assert.equal(#col, expired[1] + expired[3])
        assert.is_true(expired[2] < before[2] and expired[2] >= 2 * 2 * 4)
        -- purging changes nothing that was visible
        assert.equal(3, col:purge_expired())
        assert.same(expired, stats())
        assert.equal(2, #col)
      end)

      it("filters on event time and ingestion time", function()
        local col = db:create_collection("time", { dimension = 2 })
        col:add { { id = "old", vector = { 1, 0 }, event_time = 1000 },
                  { id = "mid", vector = { 1, 0 }, event_time = 2000.5 },
                  { id = "new", vector = { 1, 0 }, event_time = 3000 },
                  { id = "none", vector = { 1, 0 } } }
        local function sorted_ids(res)
          local ids = ids_of(res)
          table.sort(ids)
          return ids
        end
        assert.same({ "mid", "new" },
                    sorted_ids(col:search({ 1, 0 }, { k = 10, event_time = { 1500, nil } })))
        assert.same({ "mid" },
                    sorted_ids(col:search({ 1, 0 }, { k = 10, event_time = { 2000.5, 2000.5 } })))
        assert.same({ "old" },
                    sorted_ids(col:search({ 1, 0 }, { k = 10, event_time = { nil, 1999 } })))
        assert.equal(2000.5, col:get("mid").event_time)
        local now = os.time()
        assert.equal(4, #col:search({ 1, 0 }, { k = 10, ingestion_time = { now - 60, now + 60 } }))
        assert.equal(0, #col:search({ 1, 0 }, { k = 10, ingestion_time = { now + 60, nil } }))
      end)
    end)

    describe("transactions", function()
      it("roll collection writes back with the transaction", function()
        local col = db:create_collection("tx", { dimension = 2 })
        col:add { id = "before", vector = { 1, 0 } }
        local ok = pcall(db.transaction, db, function()
          col:add { id = "inside", vector = { 0, 1 } }
          col:delete("before")
          assert.equal(1, #col) -- read your own writes
          error("roll back")
        end)
        assert.is_false(ok)
        assert.same({ "before" }, ids_of(col:search({ 1, 0 }, { k = 5 })))
        db:transaction(function() col:add { id = "committed", vector = { 0, 1 } } end)
        assert.equal(2, #col)
      end)
    end)

    describe("dropped and rolled-back collections", function()
      it("are forgotten, so the name can be created again", function()
        local ghost
        pcall(db.transaction, db, function()
          ghost = db:create_collection("ghost", { dimension = 2 })
          ghost:add { id = "a", vector = { 1, 0 } }
          error("roll back")
        end)
        -- the object itself finds out first here: not_found, then closed
        assert.equal("not_found", helpers.error_of(ghost.count, ghost).code)
        assert.equal("closed", helpers.error_of(ghost.count, ghost).code)
        assert.equal("not_found", helpers.error_of(db.collection, db, "ghost").code)
        -- and when db:collection finds out first, the object is closed
        local ghost2
        pcall(db.transaction, db, function()
          ghost2 = db:create_collection("ghost2", { dimension = 2 })
          error("roll back")
        end)
        assert.equal("not_found", helpers.error_of(db.collection, db, "ghost2").code)
        assert.equal("closed", helpers.error_of(ghost2.count, ghost2).code)
        local again = db:create_collection("ghost", { dimension = 3 })
        assert.equal(again, db:collection("ghost"))
        assert.equal(3, again:stats().dimension)
      end)

      -- only where two handles can address the same store
      if backend.shared then
        it("that another handle dropped are forgotten too", function()
          local col = db:create_collection("gone", { dimension = 2 })
          local other = open { tenant = db:tenant() }
          other:drop_collection("gone")
          assert.equal("not_found", helpers.error_of(col.count, col).code)
          other:create_collection("gone", { dimension = 4 })
          assert.equal(4, db:collection("gone"):stats().dimension)
          other:close()
        end)
      end
    end)

    describe("the REPL", function()
      it("prints, counts with #, and closes", function()
        local col = db:create_collection("repl", { dimension = 2, metric = "l2" })
        col:add { id = "a", vector = { 0, 0 } }
        assert.equal("llmspell.storage.Collection (repl, 2-d l2, 1 vectors)", tostring(col))
        assert.equal(1, #col)
        local st = col:stats()
        assert.same({ "repl", 1, 2, "l2", 16, 200, 50 },
                    { st.name, st.count, st.dimension, st.metric, st.m, st.ef_construction,
                      st.ef_search })
        assert.is_true(st.memory_bytes > 0)
        assert.equal("repl", col:name())
        local seq = col:seq()
        col:add { id = "b", vector = { 1, 1 } }
        assert.is_true(col:seq() > seq)
        col:delete("b")
        col:close()
        col:close()
        assert.equal("llmspell.storage.Collection (closed)", tostring(col))
        assert.equal("closed", helpers.error_of(col.search, col, { 0, 0 }).code)
        local again = db:collection("repl")
        assert.equal(1, #again)
        db:close()
        assert.equal("closed", helpers.error_of(again.count, again).code)
        db = nil
      end)
    end)
  end)
end

for _, run in ipairs(helpers.runs(it)) do
  for _, backend in ipairs(helpers.backends()) do contract(backend, run.it, run.name) end
end
