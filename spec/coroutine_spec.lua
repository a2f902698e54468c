--- The C core called from coroutines, whose Lua stacks start at about 40
-- slots: converting deep metadata and filters (both ways) used to push one
-- slot or two per level without making room, writing past the coroutine's
-- stack (a crash within 200 calls at depth 20, on every backend). Each
-- test here makes many calls from fresh coroutines; under `make asan` they
-- run with AddressSanitizer too.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

local CALLS = 200

-- { x = { x = ... { y = 1 } } }, depth tables in all.
local function nested(depth)
  local t = { y = 1 }
  for _ = 2, depth do t = { x = t } end
  return t
end

-- { { ... { 1 } } }, depth arrays in all.
local function nested_array(depth)
  local t = { 1 }
  for _ = 2, depth do t = { t } end
  return t
end

-- Calls f(...) in a fresh coroutine, under pcall there, as a host that
-- runs scripts in coroutines would; returns pcall's results.
local function in_coroutine(f, ...)
  local args = table.pack(...)
  return coroutine.wrap(function() return pcall(f, table.unpack(args, 1, args.n)) end)()
end

for _, backend in ipairs(helpers.backends()) do
  describe("the core inside coroutines on " .. backend.name, function()
    local db, col

    before_each(function()
      if backend.setup then backend:setup() end
      db = backend.open(nil, backend)
      for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
      col = db:create_collection("co", { dimension = 2 })
    end)

    after_each(function()
      pcall(function()
        for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
        db:clear()
      end)
      db:close()
      if backend.teardown then backend:teardown() end
    end)

    it("stores deep metadata, many times, at depths 20, 31, 120 and 128", function()
      for _, depth in ipairs { 20, 31, 120, 128 } do
        local md = depth % 2 == 0 and nested(depth) or nested_array(depth)
        for i = 1, CALLS do
          local ok, n = in_coroutine(col.upsert, col,
                                     { id = "e" .. i % 7, vector = { 1, i }, metadata = md })
          assert.is_true(ok, n)
          assert.equal(1, n)
        end
        -- and reads it back, inside coroutines too (pushing, level by level)
        for i = 1, CALLS do
          local ok, e = in_coroutine(col.get, col, "e" .. i % 7)
          assert.is_true(ok, e)
          assert.same(md, e.metadata)
        end
      end
    end)

    it("searches with deep filters and returns deep metadata, many times", function()
      local md = nested(128)
      col:upsert { { id = "deep", vector = { 1, 0 }, metadata = md },
                   { id = "flat", vector = { 0, 1 }, metadata = { y = 1 } } }
      -- { x = <the 127 levels under md.x> }: an equality 128 levels deep
      local filter = { x = md.x }
      for _ = 1, CALLS do
        local ok, res = in_coroutine(col.search, col, { 1, 0 }, { k = 5, filter = filter })
        assert.is_true(ok, res)
        assert.equal(1, #res)
        assert.equal("deep", res[1].id)
        assert.same(md, res[1].metadata)
      end
      -- { $not = { x = <126 levels> } }: 128 levels, which neither entry equals
      local negated = { ["$not"] = { x = md.x.x } }
      for _ = 1, CALLS do
        local ok, res = in_coroutine(col.search_many, col, { { 1, 0 }, { 0, 1 } },
                                     { k = 2, filter = negated })
        assert.is_true(ok, res)
        assert.same({ "deep", "flat" }, { res[1][1].id, res[2][1].id })
        assert.same({ 2, 2 }, { #res[1], #res[2] })
      end
    end)

    it("refuses too deep and cyclic tables with a clear error, many times", function()
      local cyclic = { a = { b = {} } }
      cyclic.a.b.c = cyclic
      for _ = 1, CALLS do
        local ok, err = in_coroutine(col.upsert, col,
                                     { id = "x", vector = { 1, 0 }, metadata = nested(129) })
        assert.is_false(ok)
        assert.matches("tables nested too deeply (at most 128 levels)", err, 1, true)
        ok, err = in_coroutine(col.search, col, { 1, 0 }, { filter = nested_array(129) })
        assert.is_false(ok)
        assert.matches("tables nested too deeply (at most 128 levels)", err, 1, true)
        ok, err = in_coroutine(col.upsert, col, { id = "x", vector = { 1, 0 }, metadata = cyclic })
        assert.is_false(ok)
        assert.matches("metadata.a.b.c: table contains itself", err, 1, true)
      end
      assert.equal(0, #col)
    end)

    it("updates metadata and encodes JSON deep inside coroutines", function()
      col:add { id = "u", vector = { 1, 0 } }
      local md = nested(128)
      for _ = 1, CALLS do
        assert.is_true((in_coroutine(col.update_metadata, col, "u", md)))
        local ok, text = in_coroutine(storage.json_encode, md)
        assert.is_true(ok, text)
        local ok2, back = in_coroutine(storage.json_decode, text)
        assert.is_true(ok2, back)
        assert.equal(text, storage.json_encode(back))
      end
      assert.same(md, col:get("u").metadata)
    end)

    it("exports and imports deep metadata inside a coroutine, with progress", function()
      col:add { id = "d", vector = { 1, 0 }, metadata = nested(128) }
      for i = 1, 300 do db:set("k" .. i, "v") end
      local calls = 0
      local ok, text = in_coroutine(function()
        return storage.exporter(db):to_string { progress = function() calls = calls + 1 end }
      end)
      assert.is_true(ok, text)
      assert.is_true(calls > 0)
      local target <close> = storage.open("memory")
      local ok2, stats = in_coroutine(function() return storage.importer(target):from_string(text) end)
      assert.is_true(ok2, stats)
      assert.same(nested(128), target:collection("co"):get("d").metadata)
      assert.equal(300, #target:list_keys("k"))
    end)

    it("reads deep records of an export file inside coroutines", function()
      col:add { id = "d", vector = { 1, 0 }, metadata = nested(128) }
      local path = helpers.tmpname(".json")
      storage.exporter(db):to_file(path)
      for _ = 1, 20 do
        local ok, md = in_coroutine(function()
          for section, rec in storage.records(path) do
            if section == "vector_embeddings" then return rec.metadata end
          end
        end)
        assert.is_true(ok, md)
        assert.same(nested(128), md)
      end
      os.remove(path)
    end)

    it("runs key-value batches, listings and scans inside coroutines", function()
      local many = {}
      for i = 1, 2000 do many["key" .. i] = "v" .. i end
      for _ = 1, 5 do
        assert.same({ true, 2000 }, { in_coroutine(db.set_batch, db, many) })
        local ok, got = in_coroutine(db.get_batch, db, db:list_keys("key"))
        assert.is_true(ok, got)
        assert.same(many, got)
        local seen = 0
        assert.is_true((in_coroutine(function()
          for _ in db:scan("key") do seen = seen + 1 end
        end)))
        assert.equal(2000, seen)
      end
    end)
  end)
end
