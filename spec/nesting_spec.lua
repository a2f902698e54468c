--- One nesting limit, 128 levels (storage.limits.max_depth), for metadata,
-- filters, storage.json_encode/json_decode and every value of an import
-- file, as rs-llmspell's serde_json writes and reads them: 128 levels are
-- stored, searched, exported and imported; 129 and cycles are refused with
-- a clear error, on every backend.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

local MAX = 128

-- { x = { x = ... { y = 1 } } }: depth tables.
local function nested(depth)
  local t = { y = 1 }
  for _ = 2, depth do t = { x = t } end
  return t
end

-- { { ... { 1 } } }: depth arrays.
local function nested_array(depth)
  local t = { 1 }
  for _ = 2, depth do t = { t } end
  return t
end

-- The JSON text of nested(depth).
local function nested_json(depth)
  return string.rep('{"x":', depth - 1) .. '{"y":1}' .. string.rep("}", depth - 1)
end

-- A file as rs-llmspell writes it, with a vector's metadata nested depth
-- levels and a section record nested record_depth levels (its state one
-- fewer: the record is a level too, and is kept whole).
local function rs_file(depth, record_depth)
  return '{"version":"1.0","data":{"vector_embeddings":{"2":[' ..
         '{"id":"deep","scope":"global","dimension":2,"embedding":[1,0],"metadata":' ..
         nested_json(depth) .. ',"created_at":1736937000000000,"updated_at":1736937000000000},' ..
         '{"id":"flat","embedding":[0,1],"metadata":{"y":1}}]},' ..
         '"agent_state":[{"state_id":"s1","agent_id":"a1","state_data":' ..
         nested_json(record_depth - 1) .. '}]}}'
end

describe("the nesting limit", function()
  it("is 128, one limit under both of its names", function()
    assert.equal(MAX, storage.limits.max_depth)
    assert.equal(MAX, storage.limits.max_json_depth)
  end)

  it("lets json_encode and json_decode carry 128 levels and no more", function()
    for _, v in ipairs { nested(MAX), nested_array(MAX) } do
      local text = storage.json_encode(v)
      assert.same(v, storage.json_decode(text))
      assert.equal(text, storage.json_encode(storage.json_decode(text)))
    end
    assert.equal(nested_json(MAX), storage.json_encode(nested(MAX)))
    for _, v in ipairs { nested(MAX + 1), nested_array(MAX + 1) } do
      local err = helpers.error_of(storage.json_encode, v)
      assert.matches("bad argument #1 to '[%w_.]*json_encode' %(value", err)
      assert.matches("tables nested too deeply (at most 128 levels)", err, 1, true)
    end
    local err = helpers.error_of(storage.json_decode, nested_json(MAX + 1))
    assert.is_true(storage.is_error(err))
    assert.equal("format", err.code)
    assert.matches("nested deeper than 128 levels", err.message, 1, true)
  end)

  it("names a cycle as a cycle, and lets a table appear twice side by side", function()
    local t = { a = { 1, 2 } }
    t.a[3] = t
    local err = helpers.error_of(storage.json_encode, t)
    assert.matches("value.a[3]: table contains itself (a cycle cannot be stored)", err, 1, true)
    local shared = { 1 }
    assert.equal('{"a":[1],"b":[1]}', storage.json_encode { a = shared, b = shared })
  end)
end)

for _, backend in ipairs(helpers.backends()) do
  describe("nesting on " .. backend.name, function()
    local db, col

    before_each(function()
      if backend.setup then backend:setup() end
      db = backend.open(nil, backend)
      for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
      col = db:create_collection("n", { dimension = 2 })
    end)

    after_each(function()
      pcall(function()
        for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
        db:clear()
      end)
      db:close()
      if backend.teardown then backend:teardown() end
    end)

    it("stores, reopens and searches metadata nested 128 levels", function()
      col:add { { id = "o", vector = { 1, 0 }, metadata = nested(MAX) },
                { id = "a", vector = { 0, 1 }, metadata = { list = nested_array(MAX - 1) } } }
      col:update_metadata("a", { list = nested_array(MAX - 1), n = 1 })
      assert.same(nested(MAX), col:get("o").metadata)
      assert.same({ list = nested_array(MAX - 1), n = 1 }, col:get("a").metadata)
      local res = col:search({ 1, 0 }, { k = 2, filter = { x = nested(MAX).x } })
      assert.same({ "o" }, { res[1].id, res[2] and res[2].id })
      if backend.shared then -- a second handle reads the stored text
        local other <close> = backend.open(nil, backend)
        assert.same(nested(MAX), other:collection("n"):get("o").metadata)
      end
    end)

    it("refuses metadata and filters nested 129 levels, naming where", function()
      col:add { id = "a", vector = { 0, 1 } }
      local cases = {
        { function() col:add { id = "b", vector = { 1, 0 }, metadata = nested(MAX + 1) } end,
          "bad argument #1 to 'add' (entry 1: metadata.x.x." },
        { function() col:upsert { id = "b", vector = { 1, 0 }, metadata = nested_array(MAX + 1) } end,
          "bad argument #1 to 'upsert' (entry 1: metadata[1][1]" },
        { function() col:update_metadata("a", nested(MAX + 1)) end,
          "bad argument #2 to 'update_metadata' (metadata.x.x." },
        { function() col:search({ 1, 0 }, { filter = { x = nested(MAX) } }) end,
          "bad argument #2 to 'search' (filter.x.x." },
      }
      for _, c in ipairs(cases) do
        local err = helpers.error_of(c[1])
        assert.matches(c[2], err, 1, true)
        assert.matches("tables nested too deeply (at most 128 levels)", err, 1, true)
      end
      local cyclic = { tags = {} }
      cyclic.tags.back = cyclic.tags
      local err = helpers.error_of(function()
        col:add { id = "c", vector = { 1, 0 }, metadata = cyclic }
      end)
      assert.matches("entry 1: metadata.tags.back: table contains itself", err, 1, true)
      assert.equal(1, #col)
      assert.same({}, col:get("a").metadata)
    end)

    it("imports a file with metadata nested 128 levels, and exports it back", function()
      local st = storage.importer(db):from_string(rs_file(MAX, MAX))
      assert.equal(2, st.vectors)
      local v = db:collection("vectors_2")
      assert.same(nested(MAX), v:get("deep").metadata)
      -- and round trips through our own export
      local text = storage.exporter(db):to_string()
      local copy <close> = storage.open("memory")
      storage.importer(copy):from_string(text)
      assert.same(nested(MAX), copy:collection("vectors_2"):get("deep").metadata)
      assert.truthy(text:find('"state_data":' .. nested_json(MAX - 1), 1, true))
    end)

    it("refuses a file with metadata nested 129 levels as format, writing nothing", function()
      local target = storage.importer(db)
      for _, case in ipairs {
        { rs_file(MAX + 1, MAX), "vector_embeddings.2[0]: a value in the record is nested " ..
                                 "deeper than 128 levels" },
        { rs_file(MAX, MAX + 1), "agent_state[0]: $.state_data.x.x." },
      } do
        local err = helpers.error_of(function() target:from_string(case[1]) end)
        assert.is_true(storage.is_error(err), tostring(err))
        assert.equal("format", err.code)
        assert.matches(case[2], err.message, 1, true)
        assert.matches("128 levels", err.message, 1, true)
        assert.same({ "n" }, (function()
          local names = {}
          for _, c in ipairs(db:list_collections()) do names[#names + 1] = c.name end
          return names
        end)())
      end
    end)
  end)
end
