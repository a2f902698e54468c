--- The agent state component, db:agent_states() (COMPONENTS.md "Agent
-- state"): the same contract on memory, SQLite (file and :memory:) and
-- PostgreSQL, then what each engine shows in raw SQL (checksums caught
-- after a row is changed behind the library's back, row-level security,
-- the index list uses), concurrent savers in several processes, and the
-- export section "agent_state" (a round trip through every backend, and
-- rs-llmspell's records written by hand).
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"
local pg = require "spec.support.pg"

local q = helpers.shell_quote

--- SHA-256 hex of s by coreutils' sha256sum: a check of the library's
-- checksums that does not use the library.
local function sha256(s)
  local path = helpers.tmpname(".bin")
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
  local p = assert(io.popen("sha256sum " .. q(path)))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return assert(out:match("^(%x+)"), out)
end

--- Runs the sqlite3 CLI on path; its output without the final newline.
local function cli(path, sql)
  local p = assert(io.popen(("sqlite3 -batch -bail %s %s 2>&1"):format(q(path), q(sql))))
  local out = p:read("a")
  local ok = p:close()
  assert(ok, "sqlite3 failed: " .. out)
  return (out:gsub("\n$", ""))
end

--- A SQL string literal.
local function lit(s) return "'" .. s:gsub("'", "''") .. "'" end

--- The error a method call raises (pcall of a closure, so the message
-- numbers arguments as a method call does).
local function err_of(f) return helpers.error_of(f) end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- ---------------------------------------------------------------- contract

local function contract(backend, it, run_name)
  describe("agent states on " .. backend.name .. run_name, function()
    local db, g

    local function open(opts) return backend.open(opts, backend) end

    before_each(function()
      if backend.setup then backend:setup() end
      db = open()
      g = db:agent_states()
    end)

    after_each(function()
      if db then db:close() end
      if backend.teardown then backend:teardown() end
    end)

    it("is one object per store that prints its kind, backend, tenant and rows", function()
      assert.equal(g, db:agent_states())
      assert.equal("llmspell.storage.AgentStates", getmetatable(g).__name)
      g:save("a", { n = 1 })
      g:save("b", "two")
      local s = tostring(g)
      assert.matches("^llmspell%.storage%.AgentStates %(", s)
      assert.matches(db:backend_type(), s, 1, true)
      assert.matches("tenant " .. db:tenant(), s, 1, true)
      assert.matches("2 rows", s, 1, true)
      assert.equal(2, g:count())
    end)

    it("stores a table as JSON and a string as its bytes, with their SHA-256", function()
      local state = { step = 3, messages = { "hi", "there" }, score = 0.25 }
      local r = g:save("agent-1", state)
      assert.same({ "checksum", "data_version" }, sorted_keys(r))
      assert.equal(1, r.data_version)
      assert.equal(sha256(storage.json_encode(state)), r.checksum)
      local loaded, info = g:load("agent-1")
      assert.same(state, loaded)
      assert.equal(r.checksum, info.checksum)
      local bytes = "not JSON at all: \0\255\254 {"
      r = g:save("agent-2", bytes)
      assert.equal(1, r.data_version)
      assert.equal(sha256(bytes), r.checksum)
      loaded, info = g:load("agent-2")
      assert.equal(bytes, loaded)
      assert.equal(sha256(bytes), info.checksum)
      -- empty states are states too
      assert.equal(sha256(""), g:save("empty", "").checksum)
      assert.equal("", (g:load("empty")))
    end)

    it("keeps values exactly: int64, floats, nesting, empty arrays, text", function()
      local state = {
        big = math.maxinteger, small = math.mininteger, f = 1.0, tenth = 0.1,
        nested = { { { "deep" } } }, none = storage.array {}, text = "ключ 日本 \u{1F600}",
        flag = false,
      }
      g:save("exact", state)
      local back = g:load("exact")
      assert.same(state, back)
      assert.equal("integer", math.type(back.big))
      assert.equal("float", math.type(back.f))
      assert.equal(0, #back.none)
      assert.equal("[]", storage.json_encode(back.none))
    end)

    it("counts data_version by the saves that change the stored bytes", function()
      assert.equal(1, g:save("v", { n = 1 }).data_version)
      assert.equal(1, g:save("v", { n = 1 }).data_version) -- same bytes
      assert.equal(2, g:save("v", { n = 2 }).data_version)
      assert.equal(3, g:save("v", { n = 1 }).data_version) -- back to an old state: a change
      -- the same bytes as a string are another state (load gives a string)
      local text = storage.json_encode { n = 1 }
      assert.equal(4, g:save("v", text).data_version)
      assert.equal(text, (g:load("v")))
      assert.equal(4, g:save("v", text).data_version)
      -- saves that only change agent_type or schema_version keep it too
      assert.equal(4, g:save("v", text, { agent_type = "chat", schema_version = 2 }).data_version)
      local _, info = g:load("v")
      assert.same({ 4, "chat", 2 }, { info.data_version, info.agent_type, info.schema_version })
    end)

    it("keeps state_id, created_at, agent_type and schema_version unless told", function()
      g:save("k", { a = 1 })
      local _, first = g:load("k")
      assert.equal("unknown", first.agent_type)
      assert.equal(1, first.schema_version)
      assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", first.state_id)
      assert.equal(first.created_at, first.updated_at)
      assert.is_true(math.abs(first.created_at - os.time()) < 120)
      helpers.sleep(0.01)
      g:save("k", { a = 2 }, { agent_type = "planner", schema_version = 5 })
      local _, second = g:load("k")
      assert.equal(first.state_id, second.state_id)
      assert.equal(first.created_at, second.created_at)
      assert.is_true(second.updated_at > first.updated_at)
      assert.same({ "planner", 5 }, { second.agent_type, second.schema_version })
      g:save("k", { a = 3 })
      local _, third = g:load("k")
      assert.same({ "planner", 5, 3 }, { third.agent_type, third.schema_version,
                                         third.data_version })
      -- a new agent gets its own state_id
      g:save("k2", { a = 1 })
      assert.not_equal(first.state_id, select(2, g:load("k2")).state_id)
      -- after delete the next save starts over
      assert.is_true(g:delete("k"))
      g:save("k", { a = 1 })
      local _, fresh = g:load("k")
      assert.equal(1, fresh.data_version)
      assert.not_equal(first.state_id, fresh.state_id)
      assert.equal("unknown", fresh.agent_type)
    end)

    it("loads nil for an agent without a state", function()
      assert.equal(1, select("#", g:load("nobody")))
      assert.is_nil(g:load("nobody"))
    end)

    it("lists ids in byte order, by agent_type, after an id, up to a limit", function()
      for _, id in ipairs { "b", "a", "Z", "ä", "a2", "a10" } do
        g:save(id, { id = id }, { agent_type = id:match("^a") and "alpha" or "other" })
      end
      assert.same({ "Z", "a", "a10", "a2", "b", "ä" }, g:list())
      assert.same({ "Z", "a", "a10", "a2", "b", "ä" }, g:list {})
      assert.same({ "a", "a10", "a2" }, g:list { agent_type = "alpha" })
      assert.same({ "Z", "b", "ä" }, g:list { agent_type = "other" })
      assert.same({}, g:list { agent_type = "nobody" })
      assert.same({ "a2", "b" }, g:list { after = "a10", limit = 2 })
      assert.same({ "a2" }, g:list { agent_type = "alpha", after = "a10" })
      assert.same({ "Z" }, g:list { limit = 1 })
    end)

    it("deletes, saying whether there was a state", function()
      g:save("gone", "x")
      assert.is_true(g:delete("gone"))
      assert.is_false(g:delete("gone"))
      assert.is_nil(g:load("gone"))
      assert.same({}, g:list())
      assert.equal(0, g:count())
    end)

    it("joins db:transaction: a rollback undoes saves and deletes with KV writes", function()
      g:save("t", { v = 1 })
      g:save("d", "keep me")
      local ok = pcall(db.transaction, db, function()
        g:save("t", { v = 2 })
        g:save("new", { v = 1 })
        assert.is_true(g:delete("d"))
        db:set("kv", "1")
        assert.equal(2, g:load("t").v) -- seen inside
        error("abort")
      end)
      assert.is_false(ok)
      local t, info = g:load("t")
      assert.same({ v = 1 }, t)
      assert.equal(1, info.data_version)
      assert.is_nil(g:load("new"))
      assert.equal("keep me", (g:load("d")))
      assert.is_nil(db:get("kv"))
      db:transaction(function()
        g:save("t", { v = 3 })
        db:set("kv", "2")
      end)
      assert.same({ { v = 3 }, 2, "2" }, { (g:load("t")), select(2, g:load("t")).data_version,
                                          db:get("kv") })
    end)

    it("refuses bad arguments, naming them, before writing anything", function()
      local function bad(pattern, f)
        local ok, msg = pcall(f)
        assert.is_false(ok)
        assert.is_string(msg)
        assert.matches("bad argument", msg, 1, true)
        assert.matches(pattern, msg)
      end
      bad("string agent_id expected, got number", function() g:save(1, {}) end)
      bad("agent_id must be 1%.%.512 bytes", function() g:save("", {}) end)
      bad("agent_id", function() g:save(("x"):rep(513), {}) end)
      bad("agent_id must be UTF%-8", function() g:save("bad\255", {}) end)
      bad("agent_id must be UTF%-8", function() g:save("nul\0", {}) end)
      bad("table or string state expected, got number", function() g:save("a", 5) end)
      bad("table or string state expected, got no value", function() g:save("a") end)
      bad("table or string state expected, got nil", function() g:save("a", nil, {}) end)
      bad("table or string state expected, got boolean", function() g:save("a", true) end)
      bad("state", function() g:save("a", { f = print }) end)
      bad("state", function() g:save("a", { [1] = 1, x = 2 }) end)
      bad("unknown", function() g:save("a", {}, { agent_typ = "x" }) end)
      bad("table expected", function() g:save("a", {}, "chat") end)
      bad("string agent_type expected, got number", function()
        g:save("a", {}, { agent_type = 1 })
      end)
      bad("agent_type must be 1%.%.255 bytes", function() g:save("a", {}, { agent_type = "" }) end)
      bad("agent_type", function() g:save("a", {}, { agent_type = ("t"):rep(256) }) end)
      bad("schema_version", function() g:save("a", {}, { schema_version = 0 }) end)
      bad("schema_version", function() g:save("a", {}, { schema_version = 1.5 }) end)
      bad("schema_version", function() g:save("a", {}, { schema_version = "2" }) end)
      bad("string agent_id expected", function() g:load(nil) end)
      bad("agent_id must be 1", function() g:delete("") end)
      bad("unknown", function() g:list { type = "x" } end)
      bad("limit", function() g:list { limit = 0 } end)
      bad("after must be 1", function() g:list { after = "" } end)
      bad("string agent_type expected", function() g:list { agent_type = true } end)
      assert.equal(0, g:count())
      assert.same({}, g:list())
    end)

    it("refuses use after it or its store is closed", function()
      g:save("a", "x")
      g:close()
      g:close() -- idempotent
      local err = err_of(function() g:load("a") end)
      assert.equal("closed", err.code)
      assert.matches("agent_states is closed", err.message, 1, true)
      local g2 = db:agent_states()
      assert.not_equal(g, g2)
      assert.equal("x", (g2:load("a")))
      do
        local g3 <close> = db:agent_states()
        assert.equal(g2, g3)
      end
      assert.equal("closed", err_of(function() g2:count() end).code)
      local g4 = db:agent_states()
      db:close()
      db = nil
      for _, f in ipairs {
        function() g4:save("a", "y") end, function() g4:load("a") end,
        function() g4:list() end, function() g4:delete("a") end,
      } do
        assert.equal("closed", err_of(f).code)
      end
      assert.matches("closed", tostring(g4))
    end)

    if backend.shared then
      it("sees only its tenant's states", function()
        g:save("mine", { t = "main" })
        local other = open { tenant = helpers.unique_tenant("other") }
        local go = other:agent_states()
        assert.is_nil(go:load("mine"))
        assert.same({}, go:list())
        assert.equal(0, go:count())
        assert.is_false(go:delete("mine"))
        go:save("mine", { t = "other" })
        assert.equal(1, go:save("theirs", "x").data_version)
        assert.same({ t = "main" }, g:load("mine"))
        assert.same({ "mine" }, g:list())
        assert.same({ "mine", "theirs" }, go:list())
        other:close()
      end)
    end
  end)
end

for _, backend in ipairs(helpers.backends()) do
  for _, run in ipairs(helpers.runs(it)) do contract(backend, run.it, run.name) end
end

-- -------------------------------------------------------------- concurrency

--- Starts `procs` children saving n states each to one agent, all at once;
-- returns the versions they last saw.
local function race(backend, target, tenant, procs, n)
  local go = helpers.tmpname(".go")
  local children = {}
  for i = 1, procs do
    local args = { backend, target, tenant, "shared-agent", "w" .. i, tostring(n), go }
    for a, v in ipairs(args) do args[a] = q(v) end
    local p = assert(io.popen(helpers.lua_command("spec/support/agent_state_saver.lua "
                                                  .. table.concat(args, " ")) .. " 2>&1"))
    children[i] = p
  end
  for _, p in ipairs(children) do
    local first = p:read("l")
    if first ~= "ready" then error("child failed: " .. tostring(first) .. "\n" .. p:read("a")) end
  end
  assert(io.open(go, "w")):close()
  local out = {}
  for i, p in ipairs(children) do
    local rest = p:read("a")
    p:close()
    local ok, last = rest:match("done (%a+) (%d+)")
    assert(ok == "ok", "child " .. i .. ": " .. rest)
    out[i] = tonumber(last)
  end
  os.remove(go)
  return out
end

describe("concurrent agent state savers", function()
  it("two processes on one SQLite file lose no version", function()
    local path = helpers.tmpname(".db")
    local db = storage.open { backend = "sqlite", path = path }
    local g = db:agent_states()
    local n = 150
    local lasts = race("sqlite", path, "default", 2, n)
    local state, info = g:load("shared-agent")
    assert.equal(2 * n, info.data_version)
    assert.equal(n, state.i) -- the last save of one of them
    assert.is_true(lasts[1] == 2 * n or lasts[2] == 2 * n)
    assert.equal("racer", info.agent_type)
    db:close()
    helpers.remove_db(path)
  end)

  it("four processes on one PostgreSQL database lose no version", function()
    local tenant = helpers.unique_tenant("agentrace")
    local db = storage.open { backend = "postgres", url = helpers.pg_url(), tenant = tenant }
    local g = db:agent_states()
    local n = 100
    local lasts = race("postgres", helpers.pg_url(), tenant, 4, n)
    local state, info = g:load("shared-agent")
    assert.equal(4 * n, info.data_version)
    assert.equal(n, state.i)
    table.sort(lasts)
    assert.equal(4 * n, lasts[4])
    db:close()
  end)
end)
