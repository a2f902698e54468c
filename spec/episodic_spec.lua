--- Episodic memory, storage.episodic (COMPONENTS.md "Episodic memory"):
-- conversation turns on a vector collection, on every backend: time order,
-- sessions kept apart, search through `embed` and by vector, processed
-- flags, deleting old turns.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

--- A toy embedding: letter counts of the text in 8 buckets (texts that
-- share letters are near), normalized.
local function embed(text)
  local v = { 0, 0, 0, 0, 0, 0, 0, 1e-3 }
  for c in text:lower():gmatch("%a") do
    local b = (c:byte() % 8) + 1
    v[b] = v[b] + 1
  end
  local n = 0
  for _, x in ipairs(v) do n = n + x * x end
  n = math.sqrt(n)
  for i, x in ipairs(v) do v[i] = x / n end
  return v
end

local function contents(turns)
  local out = {}
  for i, t in ipairs(turns) do out[i] = t.content end
  return out
end

for _, run in ipairs(helpers.runs(it)) do
  for _, backend in ipairs(helpers.backends()) do
    local it = run.it
    describe("episodic memory on " .. backend.name .. run.name, function()
      local db, mem
      before_each(function()
        if backend.setup then backend:setup() end
        db = backend.open({ tenant = helpers.unique_tenant("ep") }, backend)
        mem = storage.episodic(db, { dimension = 8, embed = embed })
      end)
      after_each(function()
        db:close()
        if backend.teardown then backend:teardown() end
      end)

      it("keeps each session's turns in time order, apart from the others", function()
        mem:add { session_id = "a", role = "user", content = "third", timestamp = 300 }
        mem:add { session_id = "a", role = "user", content = "first", timestamp = 100 }
        mem:add { session_id = "b", role = "user", content = "other session", timestamp = 150 }
        local id = mem:add { session_id = "a", role = "assistant", content = "second",
                             timestamp = 200, metadata = { model = "m1" } }
        assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", id)
        local turns = mem:session("a")
        assert.same({ "first", "second", "third" }, contents(turns))
        assert.equal("assistant", turns[2].role)
        assert.equal(200, turns[2].timestamp)
        assert.same({ model = "m1" }, turns[2].metadata)
        assert.equal(id, turns[2].id)
        assert.is_false(turns[2].processed)
        assert.same({ "other session" }, contents(mem:session("b")))
        assert.same({}, mem:session("nobody"))
        assert.same({ "second", "third" }, contents(mem:session("a", { limit = 2 })))
        assert.same({ "first", "second" }, contents(mem:session("a", { before = 300 })))
        assert.equal(4, mem:count())
        assert.matches("llmspell.storage.Episodic (collection episodic_memory, 4 turns)",
                       tostring(mem), 1, true)
      end)

      it("searches by text through embed, by vector, within a session and a time range",
         function()
        mem:add { session_id = "a", role = "user", content = "apples and pears", timestamp = 1 }
        mem:add { session_id = "a", role = "user", content = "zzz qqq xxx", timestamp = 2 }
        mem:add { session_id = "b", role = "user", content = "apples and pears too",
                  timestamp = 3 }
        local hits = mem:search("pears and apples", { k = 2 })
        assert.equal(2, #hits)
        assert.matches("apples", hits[1].content)
        assert.is_true(hits[1].score >= hits[2].score)
        hits = mem:search("pears and apples", { k = 5, session_id = "a" })
        assert.same({ "apples and pears", "zzz qqq xxx" }, contents(hits))
        hits = mem:search(embed("apples"), { k = 5, from = 2.5 })
        assert.same({ "apples and pears too" }, contents(hits))
        hits = mem:search("apples", { k = 5, to = 1 })
        assert.same({ "apples and pears" }, contents(hits))
        -- without embed, callers pass vectors
        local raw = storage.episodic(db, { collection = "raw", dimension = 8 })
        raw:add { session_id = "s", role = "user", content = "c", embedding = embed("c") }
        assert.equal("c", raw:search(embed("c"))[1].content)
        assert.matches("embedding required", helpers.error_of(raw.add, raw,
                       { session_id = "s", role = "user", content = "c" }), 1, true)
      end)

      it("tracks processed turns and the sessions that still have some", function()
        local a1 = mem:add { session_id = "a", role = "user", content = "a1", timestamp = 1 }
        mem:add { session_id = "a", role = "assistant", content = "a2", timestamp = 2 }
        local b1 = mem:add { session_id = "b", role = "user", content = "b1", timestamp = 3 }
        assert.same({ "a", "b" }, mem:sessions_with_unprocessed())
        assert.same({ "a1", "a2" }, contents(mem:unprocessed("a")))
        assert.equal(2, mem:mark_processed { a1, b1, "no-such-turn" })
        assert.equal(0, mem:mark_processed { a1 }) -- already
        assert.same({ "a2" }, contents(mem:unprocessed("a")))
        assert.same({ "a" }, mem:sessions_with_unprocessed())
        assert.is_true(mem:session("b")[1].processed)
      end)

      it("deletes the turns older than a time, in every session", function()
        for i = 1, 30 do
          mem:add { session_id = i % 2 == 0 and "even" or "odd", role = "user",
                    content = "t" .. i, timestamp = i }
        end
        assert.equal(10, mem:delete_before(11))
        assert.equal(20, mem:count())
        assert.equal("t11", mem:session("odd")[1].content)
        assert.equal("t12", mem:session("even")[1].content)
        assert.equal(0, mem:delete_before(5))
      end)

      it("refuses bad arguments and use after close", function()
        local function bad(pattern, ...)
          local err = helpers.error_of(...)
          assert.matches(pattern, err, 1, true)
        end
        bad("role", mem.add, mem, { session_id = "a", role = "robot", content = "x" })
        bad("session_id", mem.add, mem, { session_id = "", role = "user", content = "x" })
        bad("content", mem.add, mem, { session_id = "a", role = "user", content = 5 })
        bad("unknown option 'colour'", mem.add, mem, { session_id = "a", role = "user",
                                                      content = "x", colour = 1 })
        bad("limit", mem.session, mem, "a", { limit = 0 })
        local nf = helpers.error_of(storage.episodic, db, { collection = "nope" })
        assert.equal("not_found", nf.code)
        assert.matches("dimension", nf.message, 1, true)
        assert.equal(0, mem:count())
        mem:close()
        local err = helpers.error_of(mem.session, mem, "a")
        assert.equal("closed", err.code)
        assert.equal("llmspell.storage.Episodic (closed)", tostring(mem))
        assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", storage.uuid())
        assert.not_equal(storage.uuid(), storage.uuid())
      end)
    end)
  end
end
