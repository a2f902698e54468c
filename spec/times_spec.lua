--- Times are finite: NaN and infinities (and times past what int64
-- microseconds hold) are refused at every entry point that takes one,
-- naming the argument, on every backend. They used to be converted to
-- int64 in C, which is undefined and stored INT64_MIN.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

local NAN, INF = 0 / 0, math.huge
local NON_FINITE = { NAN, INF, -INF }
local RULE = "finite seconds since the epoch, at most 9.2e12 either side"

-- The bad-argument message f raised.
local function refused(f)
  local err = helpers.error_of(f)
  assert.is_string(err, "expected a bad-argument error, got " .. tostring(err))
  return err
end

describe("storage.limits.max_time", function()
  it("is the largest time, in seconds either side of the epoch", function()
    assert.equal(9.2e12, storage.limits.max_time)
  end)
end)

for _, backend in ipairs(helpers.backends()) do
  describe("times on " .. backend.name, function()
    local db, col

    before_each(function()
      if backend.setup then backend:setup() end
      db = backend.open(nil, backend)
      for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
      col = db:create_collection("times", { dimension = 2 })
    end)

    after_each(function()
      pcall(function()
        for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
        db:clear()
      end)
      db:close()
      if backend.teardown then backend:teardown() end
    end)

    it("refuses non-finite event_time and expires_at in add and upsert", function()
      local writes = { add = function(e) return col:add(e) end,
                       upsert = function(e) return col:upsert(e) end }
      for _, bad in ipairs(NON_FINITE) do
        for _, method in ipairs { "add", "upsert" } do
          local err = refused(function()
            writes[method] { id = "a", vector = { 1, 0 }, event_time = bad }
          end)
          assert.matches("bad argument #1 to '" .. method .. "' (entry 1: event_time must be " ..
                         "a time (" .. RULE .. "))", err, 1, true)
          err = refused(function()
            writes[method] { { id = "ok", vector = { 0, 1 } },
                             { id = "a", vector = { 1, 0 }, expires_at = bad } }
          end)
          assert.matches("bad argument #1 to '" .. method .. "' (entry 2: expires_at must be " ..
                         "a positive time (" .. RULE .. "))", err, 1, true)
        end
      end
      -- past what int64 microseconds hold
      assert.matches("entry 1: event_time must be a time",
                     refused(function() col:add { id = "a", vector = { 1, 0 }, event_time = 1e13 } end),
                     1, true)
      assert.matches("entry 1: expires_at must be a positive time",
                     refused(function() col:add { id = "a", vector = { 1, 0 }, expires_at = 1e13 } end),
                     1, true)
      assert.equal(0, #col)
      assert.equal(0, col:stats().stored)
    end)

    it("refuses a ttl that is NaN, infinite, zero or negative", function()
      for _, bad in ipairs { NAN, INF, -INF, 0, -1 } do
        assert.matches("entry 1: ttl must be a positive number of seconds",
                       refused(function() col:upsert { id = "a", vector = { 1, 0 }, ttl = bad } end),
                       1, true)
        assert.matches("bad argument #3 to 'set' (ttl must be a positive number of seconds)",
                       refused(function() db:set("k", "v", { ttl = bad }) end), 1, true)
        assert.matches("bad argument #2 to 'set_batch' (ttl must be a positive number",
                       refused(function() db:set_batch({ k = "v" }, { ttl = bad }) end), 1, true)
        assert.matches("bad argument #1 to 'batch' (op 2: ttl must be a positive number",
                       refused(function()
                         db:batch { { op = "set", key = "a", value = "1" },
                                    { op = "set", key = "k", value = "v", ttl = bad } }
                       end), 1, true)
      end
      assert.equal(0, #col)
      assert.same({}, db:list_keys())
    end)

    it("keeps finite times, past and future, exactly", function()
      col:add { { id = "old", vector = { 1, 0 }, event_time = -86400.5 },
                { id = "far", vector = { 0, 1 }, event_time = 9.2e12, expires_at = 9.2e12 } }
      assert.equal(-86400.5, col:get("old").event_time)
      assert.equal(9.2e12, col:get("far").event_time)
      assert.equal(9.2e12, col:get("far").expires_at)
      assert.same({ "old" }, (function()
        local ids = {}
        for _, r in ipairs(col:search({ 1, 0 }, { k = 5, event_time = { -1e6, 0 } })) do
          ids[#ids + 1] = r.id
        end
        return ids
      end)())
    end)

    it("refuses non-finite ends of the event_time and ingestion_time ranges", function()
      col:add { id = "a", vector = { 1, 0 }, event_time = 10 }
      for _, option in ipairs { "event_time", "ingestion_time" } do
        for _, bad in ipairs(NON_FINITE) do
          for _, range in ipairs { { bad, nil }, { nil, bad }, { 0, bad } } do
            local err = refused(function()
              col:search({ 1, 0 }, { [option] = range })
            end)
            assert.matches("bad argument #2 to 'search' (option '" .. option ..
                           "': times must be " .. RULE .. " (nil leaves an end open))", err, 1, true)
            err = refused(function() col:search_many({ { 1, 0 } }, { [option] = range }) end)
            assert.matches("option '" .. option .. "': times must be", err, 1, true)
          end
        end
        -- open ends stay open
        assert.equal(1, #col:search({ 1, 0 }, { [option] = { nil, nil } }))
      end
    end)
  end)
end
