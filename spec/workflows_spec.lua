--- Workflow states, db:workflows() (COMPONENTS.md "Workflow states",
-- docs/workflows.md): the same contract on memory, SQLite (file and
-- :memory:) and PostgreSQL, plainly and inside a coroutine; then what each
-- SQL backend stores (sqlite3, psql as a role without BYPASSRLS), and two
-- processes racing the status machine on SQLite and on PostgreSQL.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"
local pg = require "spec.support.pg"

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- The error a call raised, which must be an error object with code.
local function code_of(code, f, ...)
  local err = helpers.error_of(f, ...)
  assert.is_true(storage.is_error(err), tostring(err))
  assert.equal(code, err.code, tostring(err.message))
  return err
end

--- The bad-argument message a call raised (a plain string).
local function argerror_of(f, ...)
  local err = helpers.error_of(f, ...)
  assert.is_string(err)
  assert.matches("bad argument", err, 1, true)
  return err
end

local function contract(backend, it, run_name)
  describe("workflows on " .. backend.name .. run_name, function()
    local db, w
    local backend_name = backend.name:match("^sqlite") and "sqlite" or backend.name

    before_each(function()
      if backend.setup then backend:setup() end
      db = backend.open(nil, backend)
      w = db:workflows()
    end)

    after_each(function()
      if db then
        pcall(function()
          for _, id in ipairs(db:workflows():list()) do db:workflows():delete(id) end
        end)
        db:close()
      end
      if backend.teardown then backend:teardown() end
    end)

    describe("the object", function()
      it("is one per store, printed with kind, backend, tenant and rows", function()
        assert.equal(w, db:workflows())
        assert.equal("llmspell.storage.Workflows", getmetatable(w).__name)
        w:save("a")
        w:save("b")
        local s = tostring(w)
        assert.matches("^llmspell%.storage%.Workflows %(" .. backend_name .. " ", s)
        assert.matches("tenant " .. db:tenant() .. ", 2 rows)", s, 1, true)
      end)

      it("refuses use after it or its store closes", function()
        w:save("a")
        w:close()
        w:close() -- idempotent
        assert.equal("llmspell.storage.Workflows (closed)", tostring(w))
        code_of("closed", w.load, w, "a")
        local again = db:workflows() -- a new object
        assert.are_not.equal(w, again)
        assert.equal("a", again:load("a").workflow_id)
        db:close()
        local err = code_of("closed", again.save, again, "b")
        assert.equal(backend_name, err.backend)
        code_of("closed", again.list, again)
        db = nil
      end)

      it("closes at the end of a to-be-closed scope", function()
        do
          local scoped <close> = db:workflows()
          scoped:save("a")
        end
        assert.equal("a", db:workflows():load("a").workflow_id)
      end)
    end)

    describe("save and load", function()
      it("creates with defaults and returns the workflow as load does", function()
        local t0 = os.time()
        local r = w:save("wf1")
        assert.same(r, w:load("wf1"))
        assert.same({ "wf1", "wf1", "pending", 0 }, { r.workflow_id, r.name, r.status,
                                                     r.current_step })
        assert.same({}, r.data)
        assert.is_nil(r.started_at)
        assert.is_nil(r.completed_at)
        assert.equal(r.created_at, r.last_updated)
        assert.is_true(r.created_at >= t0 and r.created_at <= os.time() + 1)
        assert.is_nil(w:load("nope"))
      end)

      it("keeps the fields a later save leaves out", function()
        w:save("wf", { name = "Nightly ETL", current_step = 2, data = { k = "v" } })
        helpers.sleep(0.002)
        local r = w:save("wf", { current_step = 3 })
        assert.same({ "Nightly ETL", 3, "pending" }, { r.name, r.current_step, r.status })
        assert.same({ k = "v" }, r.data)
        assert.is_true(r.last_updated > r.created_at)
        r = w:save("wf", { data = { k2 = 1 }, name = "" })
        assert.same({ "", 3 }, { r.name, r.current_step })
        assert.same({ k2 = 1 }, r.data) -- data is replaced, not merged
        assert.same(r, w:load("wf"))
      end)

      it("keeps data exactly: integers, floats, strings, booleans, nesting", function()
        local data = { i = 7, big = math.maxinteger, neg = -3, f = 1.5, whole = 2.0,
                       s = "tab\there \u{e9}", yes = true, no = false,
                       list = storage.array { 1, "two", { three = 3 } },
                       empty = storage.array(), nested = { a = { b = { c = "deep" } } } }
        w:save("wf", { data = data })
        local back = w:load("wf").data
        assert.same(data, back)
        assert.equal("integer", math.type(back.big))
        assert.equal("float", math.type(back.whole))
        assert.equal("integer", math.type(back.list[1]))
        assert.equal(0, #back.empty)
        assert.equal(storage.json_encode(storage.array()), storage.json_encode(back.empty))
        w:save("s", { data = "just a string" })
        assert.equal("just a string", w:load("s").data)
      end)

      it("makes a UUID v4 when the id is nil", function()
        local r = w:save(nil, { name = "anonymous" })
        assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x+$", r.workflow_id)
        assert.equal(36, #r.workflow_id)
        assert.equal("anonymous", w:load(r.workflow_id).name)
      end)

      it("deletes, saying whether the workflow existed, and counts", function()
        w:save("wf")
        w:save("other")
        assert.equal(2, w:count())
        assert.is_true(w:delete("wf"))
        assert.equal(1, w:count())
        assert.is_false(w:delete("wf"))
        assert.is_nil(w:load("wf"))
      end)
    end)

    describe("the status machine", function()
      it("stamps started_at on the first move to running, never again", function()
        local r = w:set_status(w:save("wf").workflow_id, "running")
        assert.equal("running", r.status)
        assert.is_number(r.started_at)
        assert.is_true(r.started_at >= r.created_at)
        helpers.sleep(0.002)
        local again = w:set_status("wf", "running") -- no move: allowed, not re-stamped
        assert.equal(r.started_at, again.started_at)
        assert.is_true(again.last_updated > r.last_updated)
        assert.equal(r.started_at, w:save("wf", { status = "running" }).started_at)
        assert.is_nil(again.completed_at)
      end)

      it("stamps completed_at on the terminal status, and the workflow stays there", function()
        w:save("wf", { status = "running" })
        local done = w:set_status("wf", "completed")
        assert.is_number(done.completed_at)
        assert.is_true(done.completed_at >= done.started_at)
        helpers.sleep(0.002)
        assert.equal(done.completed_at, w:set_status("wf", "completed").completed_at)
        for _, to in ipairs { "pending", "running", "failed", "cancelled" } do
          local err = code_of("invalid", w.set_status, w, "wf", to)
          assert.equal(backend_name, err.backend)
          assert.matches("workflow 'wf' cannot move from completed to " .. to
                         .. " (completed is final)", err.message, 1, true)
          code_of("invalid", w.save, w, "wf", { status = to, data = { lost = true } })
        end
        local now = w:load("wf")
        assert.same({ "completed", done.completed_at, done.started_at, {} },
                    { now.status, now.completed_at, now.started_at, now.data })
        -- a save without a status may still change the other fields
        assert.equal(7, w:save("wf", { current_step = 7 }).current_step)
        assert.equal("completed", w:load("wf").status)
      end)

      it("allows pending -> failed and pending -> cancelled, never pending -> completed",
         function()
        for _, to in ipairs { "failed", "cancelled" } do
          local r = w:set_status(w:save("p_" .. to).workflow_id, to)
          assert.equal(to, r.status)
          assert.is_nil(r.started_at) -- it never ran
          assert.is_number(r.completed_at)
        end
        w:save("p")
        local err = code_of("invalid", w.set_status, w, "p", "completed")
        assert.matches("cannot move from pending to completed (pending moves to running, "
                       .. "failed or cancelled)", err.message, 1, true)
        w:set_status("p", "running")
        err = code_of("invalid", w.set_status, w, "p", "pending")
        assert.matches("cannot move from running to pending (running moves to completed, "
                       .. "failed or cancelled)", err.message, 1, true)
        for _, to in ipairs { "failed", "cancelled", "completed" } do
          w:save("r_" .. to, { status = "running" })
          assert.equal(to, w:set_status("r_" .. to, to).status)
        end
      end)

      it("creates a workflow in any status a pending one may move to", function()
        local r = w:save("born_running", { status = "running", current_step = 1 })
        assert.same({ "running", 1 }, { r.status, r.current_step })
        assert.equal(r.created_at, r.started_at)
        r = w:save("born_cancelled", { status = "cancelled" })
        assert.equal(r.created_at, r.completed_at)
        assert.is_nil(r.started_at)
        local err = code_of("invalid", w.save, w, "born_done", { status = "completed" })
        assert.matches("new workflow 'born_done' cannot move from pending to completed",
                       err.message, 1, true)
        assert.is_nil(w:load("born_done"))
      end)

      it("raises not_found for a workflow that does not exist", function()
        local err = code_of("not_found", w.set_status, w, "ghost", "running")
        assert.equal(backend_name, err.backend)
        assert.matches("workflow 'ghost' not found", err.message, 1, true)
        assert.is_nil(w:load("ghost"))
      end)
    end)

    describe("list", function()
      it("gives ids by last update, newest first, optionally of one status", function()
        assert.same({}, w:list())
        for _, id in ipairs { "c", "a", "b" } do
          w:save(id)
          helpers.sleep(0.002)
        end
        assert.same({ "b", "a", "c" }, w:list())
        w:set_status("c", "running")
        assert.same({ "c", "b", "a" }, w:list())
        assert.same({ "c" }, w:list { status = "running" })
        assert.same({ "b", "a" }, w:list { status = "pending" })
        assert.same({}, w:list { status = "failed" })
      end)
    end)

    describe("bad arguments", function()
      it("are refused naming the argument, before anything is written", function()
        local e = argerror_of(w.set_status, w, "wf", "done")
        assert.matches("status must be one of pending, running, completed, failed, cancelled",
                       e, 1, true)
        argerror_of(w.save, w, "wf", { status = "Running" })
        argerror_of(w.list, w, { status = 3 })
        assert.matches("workflow_id: string expected, got number", argerror_of(w.save, w, 5),
                       1, true)
        assert.matches("workflow_id", argerror_of(w.load, w, ""), 1, true)
        assert.matches("workflow_id", argerror_of(w.delete, w, ("x"):rep(513)), 1, true)
        assert.matches("workflow_id", argerror_of(w.save, w, "bad\0id"), 1, true)
        assert.matches("name", argerror_of(w.save, w, "wf", { name = ("n"):rep(513) }), 1, true)
        assert.matches("name: string expected", argerror_of(w.save, w, "wf", { name = {} }), 1,
                       true)
        for _, step in ipairs { -1, 1.5, "2", 2 ^ 31 } do
          assert.matches("current_step", argerror_of(w.save, w, "wf", { current_step = step }),
                         1, true)
        end
        assert.matches("data", argerror_of(w.save, w, "wf", { data = { f = print } }), 1, true)
        assert.matches("data", argerror_of(w.save, w, "wf", { data = { s = "\xff" } }), 1, true)
        assert.matches("unknown", argerror_of(w.save, w, "wf", { stauts = "running" }), 1, true)
        argerror_of(w.save, w, "wf", "not a table")
        argerror_of(w.list, w, { state = "running" })
        assert.is_nil(w:load("wf"))
        assert.same({}, w:list())
      end)
    end)

    describe("in transactions", function()
      it("rolls back with the store's other writes", function()
        w:save("kept", { status = "running" })
        local ok = pcall(db.transaction, db, function()
          db:set("k", "v")
          w:save("new")
          w:set_status("kept", "completed")
          w:save("kept", { data = { x = 1 } })
          error("boom")
        end)
        assert.is_false(ok)
        assert.is_nil(db:get("k"))
        assert.is_nil(w:load("new"))
        local kept = w:load("kept")
        assert.same({ "running", {} }, { kept.status, kept.data })
        assert.is_nil(kept.completed_at)
        db:transaction(function()
          w:save("new")
          w:delete("kept")
        end)
        assert.same({ "new" }, w:list())
      end)

      it("keeps a transaction usable after a refused move", function()
        w:save("done", { status = "cancelled" })
        db:transaction(function()
          w:save("a")
          code_of("invalid", w.set_status, w, "done", "running")
          code_of("not_found", w.set_status, w, "ghost", "running")
          w:save("b")
        end)
        local ids = w:list()
        table.sort(ids)
        assert.same({ "a", "b", "done" }, ids)
      end)
    end)

    if backend.shared then
      it("is bound to the store's tenant; another handle of it sees the same rows", function()
        w:save("mine", { data = { who = "me" } })
        local other = backend.open({ tenant = helpers.unique_tenant("wf_other") }, backend)
        local ow = other:workflows()
        assert.is_nil(ow:load("mine"))
        assert.same({}, ow:list())
        code_of("not_found", ow.set_status, ow, "mine", "running")
        ow:save("mine", { name = "theirs" })
        assert.equal("mine", w:load("mine").name)
        assert.is_true(ow:delete("mine"))
        assert.equal("mine", w:load("mine").workflow_id)
        other:close()
        local same = backend.open({ tenant = db:tenant() }, backend)
        assert.same({ who = "me" }, same:workflows():load("mine").data)
        same:workflows():set_status("mine", "running")
        assert.equal("running", w:load("mine").status)
        same:close()
      end)
    end
  end)
end

for _, run in ipairs(helpers.runs(it)) do
  for _, backend in ipairs(helpers.backends()) do contract(backend, run.it, run.name) end
end

describe("workflows in a SQLite file", function()
  local path, db

  local function sqlite3(sql)
    local p = assert(io.popen("sqlite3 -batch -bail " .. sh_quote(path) .. " " .. sh_quote(sql)
                              .. " 2>&1"))
    local out = p:read("a")
    assert(p:close(), "sqlite3 failed: " .. out)
    return (out:gsub("\n$", ""))
  end

  before_each(function()
    path = helpers.tmpname(".db")
    db = storage.open { backend = "sqlite", path = path, tenant = "acme" }
  end)

  after_each(function()
    db:close()
    helpers.remove_db(path)
  end)

  it("is a table sqlite3 reads: JSON text, microseconds, NULL until stamped", function()
    local w = db:workflows()
    local r = w:save("wf", { name = "etl", data = { n = 1 }, status = "running" })
    assert.equal("acme|wf|etl|running|{\"n\":1}|0|1|1",
                 sqlite3("SELECT tenant_id, workflow_id, workflow_name, status, state_data,"
                         .. " current_step, started_at = created_at, completed_at IS NULL"
                         .. " FROM workflow_states"))
    assert.equal(tostring(math.floor(r.created_at * 1e6 + 0.5)),
                 sqlite3("SELECT created_at FROM workflow_states"))
  end)

  it("lists one status through the status index, ties broken by id", function()
    local w = db:workflows()
    for _, id in ipairs { "b", "c", "a", "d" } do w:save(id) end
    sqlite3("UPDATE workflow_states SET last_updated = 5 WHERE workflow_id IN ('a', 'b', 'c');"
            .. " UPDATE workflow_states SET last_updated = 9 WHERE workflow_id = 'd'")
    assert.same({ "d", "a", "b", "c" }, w:list { status = "pending" })
    assert.same({ "d", "a", "b", "c" }, w:list())
    local plan = sqlite3("EXPLAIN QUERY PLAN SELECT workflow_id FROM workflow_states"
                         .. " WHERE tenant_id = 'acme' AND status = 'pending'"
                         .. " ORDER BY last_updated DESC, workflow_id")
    assert.matches("INDEX workflow_states_status (tenant_id=? AND status=?)", plan, 1, true)
  end)

  it("refuses a stored status outside the machine's five", function()
    db:workflows():save("wf")
    local p = assert(io.popen("sqlite3 -batch " .. sh_quote(path) .. " "
                              .. sh_quote("UPDATE workflow_states SET status = 'paused'")
                              .. " 2>&1"))
    local out = p:read("a")
    p:close()
    assert.matches("CHECK constraint failed", out, 1, true)
  end)
end)

describe("workflows in PostgreSQL", function()
  local SCHEMA = "llmspell_wfspec"
  local READER = "llmspell_wfspec_reader" -- NOLOGIN, no BYPASSRLS
  local acme, globex

  local function open(tenant)
    return storage.open { backend = "postgres", url = helpers.pg_url(), schema = SCHEMA,
                          tenant = tenant }
  end

  setup(function()
    pg.psql("SET client_min_messages = warning; DROP SCHEMA IF EXISTS " .. SCHEMA
            .. " CASCADE; DROP ROLE IF EXISTS " .. READER .. "; CREATE ROLE " .. READER
            .. " NOLOGIN NOSUPERUSER NOBYPASSRLS;")
    open("acme"):close() -- creates the schema
    pg.psql("GRANT USAGE ON SCHEMA " .. SCHEMA .. " TO " .. READER .. "; GRANT SELECT ON "
            .. SCHEMA .. ".workflow_states TO " .. READER .. ";")
  end)

  teardown(function()
    pg.psql("SET client_min_messages = warning; DROP SCHEMA IF EXISTS " .. SCHEMA
            .. " CASCADE; DROP ROLE IF EXISTS " .. READER .. ";")
  end)

  before_each(function()
    acme, globex = open("acme"), open("globex")
  end)

  after_each(function()
    for _, db in ipairs { acme, globex } do
      for _, id in ipairs(db:workflows():list()) do db:workflows():delete(id) end
      db:close()
    end
  end)

  it("keeps each tenant's rows from a role without BYPASSRLS, in raw SQL", function()
    acme:workflows():save("a1")
    acme:workflows():save("a2", { status = "running" })
    globex:workflows():save("g1")
    local q = "SELECT count(*), string_agg(tenant_id || ':' || workflow_id, ',' ORDER BY"
              .. " workflow_id) FROM " .. SCHEMA .. ".workflow_states;"
    local as = "SET ROLE " .. READER .. ";\n"
    assert.equal("0|", pg.psql1(as .. q))
    assert.equal("2|acme:a1,acme:a2", pg.psql1(as
      .. "SELECT set_config('app.current_tenant_id', 'acme', false);\n" .. q))
    assert.equal("1|globex:g1", pg.psql1(as
      .. "SELECT set_config('app.current_tenant_id', 'globex', false);\n" .. q))
    assert.equal("0", pg.psql1(as .. "SELECT set_config('app.current_tenant_id', 'acme', false);"
      .. "\nSELECT count(*) FROM " .. SCHEMA .. ".workflow_states WHERE tenant_id = 'globex';"))
    assert.equal("t|t", pg.psql1("SELECT relrowsecurity, relforcerowsecurity FROM pg_class"
                                 .. " WHERE oid = '" .. SCHEMA .. ".workflow_states'::regclass"))
  end)

  it("stores data as jsonb and times as timestamptz", function()
    local r = acme:workflows():save("wf", { data = { step = { name = "load" } },
                                            status = "running" })
    assert.equal("load|t|t", pg.psql1("SELECT state_data->'step'->>'name',"
      .. " started_at = created_at, completed_at IS NULL FROM " .. SCHEMA
      .. ".workflow_states WHERE tenant_id = 'acme'"))
    assert.equal(tostring(math.floor(r.created_at * 1e6 + 0.5)), pg.psql1(
      "SELECT (extract(epoch FROM created_at) * 1000000)::int8 FROM " .. SCHEMA
      .. ".workflow_states WHERE tenant_id = 'acme'"))
  end)

  it("lists one status through the status index, ties broken by id", function()
    local w = acme:workflows()
    for _, id in ipairs { "b", "c", "a", "d" } do w:save(id) end
    pg.psql("UPDATE " .. SCHEMA .. ".workflow_states SET last_updated = 'epoch'"
            .. " WHERE tenant_id = 'acme' AND workflow_id <> 'd'")
    assert.same({ "d", "a", "b", "c" }, w:list { status = "pending" })
    assert.same({ "d", "a", "b", "c" }, w:list())
    local plan = table.concat(pg.psql("SET enable_seqscan = off; EXPLAIN SELECT workflow_id FROM "
      .. SCHEMA .. ".workflow_states WHERE tenant_id = 'acme' AND status = 'pending'"
      .. " ORDER BY last_updated DESC, workflow_id"), "\n")
    assert.matches("workflow_states_status_idx", plan, 1, true)
  end)
end)

-- Two processes race the machine on a store both reach. Each child opens
-- it, says "ready" and waits for the go file, which holds a start time;
-- then both move workflow k at start + k * 2 ms by the clock, so they hit
-- the same row at nearly the same moment, again and again, and print each
-- outcome. The single statement per move must let exactly one of two
-- terminal moves win, and stamp started_at once.
local CHILD = [[
local storage = require "llmspell.storage"
local system = require "system"
local kind, target, tenant, go, n, status = ...
local db = kind == "sqlite" and storage.open { backend = "sqlite", path = target, tenant = tenant }
           or storage.open { backend = "postgres", url = target, tenant = tenant }
local w = db:workflows()
io.stdout:setvbuf("line")
print("ready")
local f = io.open(go)
while not f do
  system.sleep(0.001)
  f = io.open(go)
end
local start = tonumber(f:read("a"))
f:close()
for k = 1, tonumber(n) do
  local at = start + k * 0.002
  if at - system.gettime() > 0.001 then system.sleep(at - system.gettime() - 0.001) end
  while system.gettime() < at do end -- the last millisecond, spinning
  local id = "r" .. k
  local ok, r = pcall(w.set_status, w, id, status)
  if ok then
    print(id, "ok", string.format("%.6f", r.started_at),
          string.format("%.6f", r.completed_at or 0))
  else
    print(id, "err", r.code, (r.message:gsub("\n", " ")))
  end
end
db:close()
]]

local race_backends = {
  { name = "sqlite",
    setup = function(self) self.path = helpers.tmpname(".db") end,
    target = function(self) return self.path end,
    open = function(self) return storage.open { backend = "sqlite", path = self.path,
                                                tenant = self.tenant } end,
    teardown = function(self) helpers.remove_db(self.path) end },
  { name = "postgres",
    setup = function() end,
    target = function() return helpers.pg_url() end,
    open = function(self) return storage.open { backend = "postgres", url = helpers.pg_url(),
                                                tenant = self.tenant } end,
    teardown = function() end },
}

for _, b in ipairs(race_backends) do
  describe("two processes racing workflows on " .. b.name, function()
    local N = 100
    local script, go, db

    before_each(function()
      b.tenant = helpers.unique_tenant("wfrace")
      b:setup()
      script = helpers.tmpname(".lua")
      go = helpers.tmpname(".go")
      local f = assert(io.open(script, "w"))
      f:write(CHILD)
      f:close()
      db = b:open()
      for i = 1, N do db:workflows():save("r" .. i) end
    end)

    after_each(function()
      for _, id in ipairs(db:workflows():list()) do db:workflows():delete(id) end
      db:close()
      os.remove(script)
      os.remove(go)
      b:teardown()
    end)

    --- Runs one child per status at once; returns each child's outcomes by id.
    local function race(statuses)
      local children = {}
      for _, status in ipairs(statuses) do
        local args = { b.name, b:target(), b.tenant, go, tostring(N), status }
        for j, a in ipairs(args) do args[j] = sh_quote(a) end
        children[#children + 1] = assert(io.popen(helpers.lua_command(sh_quote(script) .. " "
                                                          .. table.concat(args, " ")) .. " 2>&1"))
      end
      for _, p in ipairs(children) do
        local first = p:read("l")
        if first ~= "ready" then error("child failed: " .. tostring(first) .. p:read("a")) end
      end
      local f = assert(io.open(go .. ".tmp", "w")) -- renamed, so no child reads it half written
      f:write(string.format("%.6f", helpers.now() + 0.05))
      f:close()
      assert(os.rename(go .. ".tmp", go))
      local results = {}
      for i, p in ipairs(children) do
        results[i] = {}
        for line in p:lines() do
          local id, what, a, c = line:match("^(%S+)\t(%S+)\t([^\t]*)\t(.*)$")
          assert(id, "unexpected child output: " .. line)
          results[i][id] = { what = what, a = a, c = c }
        end
        assert(p:close())
      end
      os.remove(go)
      return results
    end

    it("stamps started_at once when both start every workflow", function()
      local res = race { "running", "running" }
      for i = 1, N do
        local id = "r" .. i
        local stored = db:workflows():load(id)
        assert.equal("running", stored.status)
        for c = 1, 2 do
          assert.equal("ok", res[c][id].what, id .. ": " .. res[c][id].c)
          assert.equal(string.format("%.6f", stored.started_at), res[c][id].a, id)
        end
      end
    end)

    it("lets exactly one of two terminal moves win", function()
      for i = 1, N do db:workflows():set_status("r" .. i, "running") end
      local statuses = { "completed", "cancelled" }
      local res = race(statuses)
      local wins = { 0, 0 }
      for i = 1, N do
        local id = "r" .. i
        local stored = db:workflows():load(id)
        local a, c = res[1][id], res[2][id]
        assert.is_true((a.what == "ok") ~= (c.what == "ok"), id .. ": both or neither won")
        local win = a.what == "ok" and 1 or 2
        local lose = 3 - win
        wins[win] = wins[win] + 1
        assert.equal(statuses[win], stored.status, id)
        assert.equal(string.format("%.6f", stored.completed_at), res[win][id].c, id)
        assert.equal("invalid", res[lose][id].a, id)
        assert.matches("cannot move from " .. statuses[win] .. " to " .. statuses[lose],
                       res[lose][id].c, 1, true)
      end
      assert.equal(N, wins[1] + wins[2])
    end)
  end)
end

-- The "workflow_states" export section: rs-llmspell's WorkflowStateExport
-- records (times in microseconds), through every backend and back.
describe("the workflow_states section", function()
  local tenant, path, stores

  local function open(kind)
    local db
    if kind == "memory" then
      db = storage.open { backend = "memory", tenant = tenant }
    elseif kind == "sqlite" then
      db = storage.open { backend = "sqlite", path = path, tenant = tenant }
    else
      db = storage.open { backend = "postgres", url = helpers.pg_url(), tenant = tenant }
    end
    stores[#stores + 1] = db
    return db
  end

  local function section(db)
    local json = storage.exporter(db):to_string()
    return storage.json_decode(json).data.workflow_states
  end

  local function ids_of(records)
    local ids = {}
    for i, r in ipairs(records) do ids[i] = r.workflow_id end
    return ids
  end

  before_each(function()
    tenant = helpers.unique_tenant("wfx")
    path = helpers.tmpname(".db")
    stores = {}
  end)

  after_each(function()
    for _, db in ipairs(stores) do
      if pcall(db.tenant, db) then
        for _, id in ipairs(db:workflows():list()) do db:workflows():delete(id) end
        db:close()
      end
    end
    helpers.remove_db(path)
  end)

  it("round-trips memory -> SQLite -> PostgreSQL, record for record", function()
    local mem = open("memory")
    local w = mem:workflows()
    w:save("a", { name = "first", data = { cfg = { retries = 3, rate = 0.25 },
                                           steps = storage.array { "x", "y" } } })
    w:save("b", { status = "running", current_step = 4 })
    w:save("c", { status = "running" })
    w:set_status("c", "failed")
    w:save("d", { status = "cancelled", data = "text" })
    local want = section(mem)
    assert.same({ "a", "b", "c", "d" }, ids_of(want))
    local a = want[1]
    assert.same({ tenant, "first", "pending", 0 }, { a.tenant_id, a.workflow_name, a.status,
                                                   a.current_step })
    assert.same({ cfg = { retries = 3, rate = 0.25 }, steps = { "x", "y" } }, a.state_data)
    assert.is_nil(a.started_at) -- null in the file
    assert.equal("integer", math.type(a.created_at))
    assert.equal(math.floor(w:load("a").created_at * 1e6 + 0.5), a.created_at)
    assert.is_true(want[3].completed_at >= want[3].started_at)

    local doc = storage.exporter(mem):to_string()
    assert.matches('"started_at":null', doc, 1, true)
    for _, kind in ipairs { "sqlite", "postgres" } do
      local db = open(kind)
      local st = storage.importer(db):from_string(doc)
      assert.equal(4, st.workflow_states)
      assert.same(want, section(db))
      assert.same(w:load("c"), db:workflows():load("c"))
      doc = storage.exporter(db):to_string()
    end
  end)

  it("imports rs-llmspell's records, short forms too, on every backend", function()
    local doc = [[{"version": "1.0", "exported_at": "2025-01-31T10:00:00Z",
      "source_backend": "postgresql", "migrations": ["V8"], "data": {"workflow_states": [
      {"tenant_id": "rs", "workflow_id": "wf-full", "workflow_name": "Research",
       "state_data": {"config": {"name": "Research"}, "step_results": [1, 2.5]},
       "current_step": 2, "status": "completed", "started_at": 1700000000000000,
       "completed_at": 1700000005500000, "last_updated": 1700000005500000,
       "created_at": 1699999999000000},
      {"tenant_id": "rs", "workflow_id": "wf-short", "workflow_name": null,
       "state_data": {}, "current_step": 0, "status": "running", "started_at": null,
       "completed_at": null, "last_updated": 1700000000000000,
       "created_at": 1700000000000000},
      {"workflow_id": "wf-min"}]}}]]
    for _, kind in ipairs { "memory", "sqlite", "postgres" } do
      local db = open(kind)
      local w = db:workflows()
      local st = storage.importer(db):from_string(doc)
      assert.equal(3, st.workflow_states)
      local full = w:load("wf-full")
      assert.same({ "wf-full", "Research", "completed", 2, 1700000000, 1700000005.5,
                    1700000005.5, 1699999999 },
                  { full.workflow_id, full.name, full.status, full.current_step,
                    full.started_at, full.completed_at, full.last_updated, full.created_at })
      assert.same({ config = { name = "Research" }, step_results = { 1, 2.5 } }, full.data)
      local short = w:load("wf-short")
      assert.same({ "wf-short", "running", 1700000000 }, { short.name, short.status,
                                                          short.created_at })
      assert.is_nil(short.started_at)
      local min = w:load("wf-min")
      assert.same({ "wf-min", "pending", 0, {} }, { min.name, min.status, min.current_step,
                                                   min.data })
      assert.equal(min.created_at, min.last_updated)
      -- the records join the machine where they stand
      code_of("invalid", w.set_status, w, "wf-full", "running")
      assert.is_number(w:set_status("wf-short", "completed").completed_at)
      local out = section(db)
      assert.same({ "wf-full", "wf-min", "wf-short" }, ids_of(out))
      assert.equal(db:tenant(), out[1].tenant_id) -- the store's tenant, not the file's
    end
  end)

  it("resolves conflicts by workflow_id: replace, skip, error", function()
    local db = open("sqlite")
    local w = db:workflows()
    w:save("x", { name = "stored" })
    local function doc(name)
      return '{"version":"1.0","data":{"workflow_states":[{"workflow_id":"x",'
             .. '"workflow_name":"' .. name .. '"},{"workflow_id":"y"}]}}'
    end
    local st = storage.importer(db):from_string(doc("skipped"), { on_conflict = "skip" })
    assert.same({ 1, 1 }, { st.workflow_states, st.skipped })
    assert.equal("stored", w:load("x").name)
    w:delete("y")
    local err = code_of("conflict", function()
      storage.importer(db):from_string(doc("refused"), { on_conflict = "error" })
    end)
    assert.matches("workflow 'x' exists", err.message, 1, true)
    assert.is_nil(w:load("y")) -- all or nothing
    storage.importer(db):from_string(doc("file"))
    assert.equal("file", w:load("x").name)
    assert.equal("y", w:load("y").workflow_id)
  end)

  it("refuses a bad record naming it and the field, writing nothing", function()
    local db = open("memory")
    local cases = {
      { '{"workflow_id":"a","status":"paused"}', "status must be one of pending" },
      { '{"workflow_id":"a","current_step":-1}', "current_step must be an integer in [0, " },
      { '{"workflow_id":"a","created_at":1.5}', "created_at must be an integer" },
      { '{"workflow_id":"a","workflow_name":7}', "workflow_name must be a string" },
      { '{"workflow_id":"a","state_data":{"s":"nul\\u0000"}}', "must not hold NUL" },
      { '{"workflow_name":"no id"}', "workflow_id is missing" },
      { '"not an object"', "a record must be an object" },
    }
    for _, case in ipairs(cases) do
      local err = code_of("format", function()
        storage.importer(db):from_string('{"version":"1.0","data":{"workflow_states":'
                                         .. '[{"workflow_id":"ok"},' .. case[1] .. ']}}')
      end)
      assert.matches("workflow_states[1]", err.message, 1, true)
      assert.matches(case[2], err.message, 1, true)
      assert.is_nil(db:workflows():load("ok"))
    end
  end)
end)
