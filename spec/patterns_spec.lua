--- Procedural memory, db:patterns() (COMPONENTS.md "Procedural memory",
-- docs/patterns.md): the same contract on memory, SQLite (file and
-- :memory:) and PostgreSQL, plainly and inside a coroutine; then what each
-- SQL backend stores (sqlite3, psql as a role without BYPASSRLS) and the
-- plans learned runs, processes racing record on one pattern, and the
-- procedural_memory export section.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"
local pg = require "spec.support.pg"

local sh_quote = helpers.shell_quote

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

--- learned's rows as "scope/key/value=frequency" strings, in order.
local function shown(rows)
  local out = {}
  for i, r in ipairs(rows) do
    out[i] = r.scope .. "/" .. r.key .. "/" .. r.value .. "=" .. r.frequency
  end
  return out
end

--- Imports procedural_memory records (JSON text) into db.
local function import(db, records, opts)
  return storage.importer(db):from_string('{"version":"1.0","data":{"procedural_memory":['
                                          .. records .. ']}}', opts)
end

local function contract(backend, it, run_name)
  describe("patterns on " .. backend.name .. run_name, function()
    local db, p
    local backend_name = backend.name:match("^sqlite") and "sqlite" or backend.name

    local function clear()
      for _, r in ipairs(db:patterns():learned()) do
        db:patterns():delete(r.scope, r.key, r.value)
      end
    end

    before_each(function()
      if backend.setup then backend:setup() end
      db = backend.open(nil, backend)
      p = db:patterns()
    end)

    after_each(function()
      if db then
        pcall(clear)
        db:close()
      end
      if backend.teardown then backend:teardown() end
    end)

    describe("the object", function()
      it("is one per store, printed with kind, backend, tenant and rows", function()
        assert.equal(p, db:patterns())
        assert.equal("llmspell.storage.Patterns", getmetatable(p).__name)
        p:record("s", "k", "a")
        p:record("s", "k", "b")
        p:record("s", "k", "b")
        local s = tostring(p)
        assert.matches("^llmspell%.storage%.Patterns %(" .. backend_name .. " ", s)
        assert.matches("tenant " .. db:tenant() .. ", 2 rows)", s, 1, true)
      end)

      it("refuses use after it or its store closes", function()
        p:record("s", "k", "v")
        p:close()
        p:close() -- idempotent
        assert.equal("llmspell.storage.Patterns (closed)", tostring(p))
        code_of("closed", p.frequency, p, "s", "k", "v")
        local again = db:patterns() -- a new object
        assert.are_not.equal(p, again)
        assert.equal(1, again:frequency("s", "k", "v"))
        db:close()
        local err = code_of("closed", again.record, again, "s", "k", "v")
        assert.equal(backend_name, err.backend)
        code_of("closed", again.learned, again)
        db = nil
      end)

      it("closes at the end of a to-be-closed scope", function()
        do
          local scoped <close> = db:patterns()
          scoped:record("s", "k", "v")
        end
        assert.equal(1, db:patterns():frequency("s", "k", "v"))
      end)
    end)

    describe("record and frequency", function()
      it("counts each (scope, key, value) apart, returning the new frequency", function()
        assert.equal(0, p:frequency("nav", "home", "settings"))
        assert.same({ 1, 2, 3 }, { p:record("nav", "home", "settings"),
                                   p:record("nav", "home", "settings"),
                                   p:record("nav", "home", "settings") })
        assert.equal(1, p:record("nav", "home", "search"))
        assert.equal(1, p:record("nav", "search", "settings"))
        assert.equal(1, p:record("tool", "home", "settings"))
        assert.equal(1, p:record("nav", "home", "")) -- an empty value is a value
        assert.equal(3, p:frequency("nav", "home", "settings"))
        assert.equal(1, p:frequency("nav", "home", ""))
        assert.equal(0, p:frequency("nav", "home", "nowhere"))
        assert.equal("integer", math.type(p:frequency("nav", "home", "settings")))
        assert.equal(5, p:count())
      end)

      it("keeps first_seen and moves last_seen", function()
        local t0 = os.time()
        p:record("s", "k", "v")
        local first = p:learned()[1]
        assert.equal(first.first_seen, first.last_seen)
        assert.is_true(first.first_seen >= t0 and first.first_seen <= os.time() + 1)
        helpers.sleep(0.002)
        p:record("s", "k", "v")
        local second = p:learned()[1]
        assert.equal(first.first_seen, second.first_seen)
        assert.is_true(second.last_seen > first.last_seen)
        assert.equal(2, second.frequency)
      end)

      it("keeps texts exactly: UTF-8, spaces, case, the longest allowed", function()
        assert.same({ 255, 512, 1024 }, { storage.limits.max_scope, storage.limits.max_pattern_key,
                                          storage.limits.max_pattern_value })
        local scope, key, value = ("s"):rep(255), "K\u{e9}y with spaces", ("v"):rep(1024)
        p:record(scope, key, value)
        assert.equal(0, p:frequency(scope, "k\u{e9}y with spaces", value))
        assert.equal(1, p:frequency(scope, key, value))
        local r = p:learned()[1]
        assert.same({ scope, key, value }, { r.scope, r.key, r.value })
      end)

      it("deletes, saying whether the pattern existed", function()
        p:record("s", "k", "v")
        p:record("s", "k", "w")
        assert.is_true(p:delete("s", "k", "v"))
        assert.is_false(p:delete("s", "k", "v"))
        assert.equal(0, p:frequency("s", "k", "v"))
        assert.equal(1, p:count())
        assert.equal(1, p:record("s", "k", "v")) -- a deleted pattern starts again
      end)
    end)

    describe("learned", function()
      it("orders by frequency, then last_seen newest, then scope, key, value", function()
        assert.same({}, p:learned())
        for _, t in ipairs { { "a", "k", "x", 3 }, { "b", "k", "y", 1 }, { "a", "k", "z", 2 },
                             { "b", "k", "x", 1 } } do
          for _ = 1, t[4] do p:record(t[1], t[2], t[3]) end
          helpers.sleep(0.002)
        end
        -- b/k/x was seen after b/k/y: newer first among equals
        assert.same({ "a/k/x=3", "a/k/z=2", "b/k/x=1", "b/k/y=1" }, shown(p:learned()))
        local r = p:learned()[1]
        local keys = {}
        for k in pairs(r) do keys[#keys + 1] = k end
        table.sort(keys)
        assert.same({ "first_seen", "frequency", "key", "last_seen", "scope", "value" }, keys)
        assert.equal("integer", math.type(r.frequency))
        -- exact ties on frequency and last_seen (through an import): by scope, key, value
        clear()
        import(db, '{"scope":"b","key":"k","value":"v","frequency":4,"last_seen":5000000},'
               .. '{"scope":"a","key":"k2","value":"v","frequency":4,"last_seen":5000000},'
               .. '{"scope":"a","key":"k","value":"w","frequency":4,"last_seen":5000000},'
               .. '{"scope":"a","key":"k","value":"v","frequency":4,"last_seen":5000000},'
               .. '{"scope":"c","key":"k","value":"v","frequency":4,"last_seen":6000000}')
        assert.same({ "c/k/v=4", "a/k/v=4", "a/k/w=4", "a/k2/v=4", "b/k/v=4" },
                    shown(p:learned()))
        assert.same({ 6, 5 }, { p:learned()[1].last_seen, p:learned()[2].last_seen })
      end)

      it("filters by min_frequency and scope, and stops at limit", function()
        for _, t in ipairs { { "nav", "a", 5 }, { "nav", "b", 2 }, { "tool", "c", 4 },
                             { "tool", "d", 1 }, { "nav", "e", 1 } } do
          for _ = 1, t[3] do p:record(t[1], "k", t[2]) end
        end
        assert.same({ "nav/k/a=5", "tool/k/c=4", "nav/k/b=2" },
                    shown(p:learned { min_frequency = 2 }))
        assert.same({ "nav/k/a=5", "nav/k/b=2", "nav/k/e=1" }, shown(p:learned { scope = "nav" }))
        assert.same({ "tool/k/c=4" }, shown(p:learned { scope = "tool", min_frequency = 2 }))
        assert.same({ "nav/k/a=5", "tool/k/c=4" }, shown(p:learned { limit = 2 }))
        assert.same({ "nav/k/a=5" }, shown(p:learned { scope = "nav", limit = 1 }))
        assert.same({}, p:learned { min_frequency = 6 })
        assert.same({}, p:learned { scope = "none" })
        assert.equal(5, #p:learned { min_frequency = 0 })
      end)
    end)

    describe("bad arguments", function()
      it("are refused naming the argument, before anything is written", function()
        assert.matches("scope: string expected, got number", argerror_of(p.record, p, 1, "k", "v"),
                       1, true)
        assert.matches("key: string expected, got nil", argerror_of(p.record, p, "s", nil, "v"), 1,
                       true)
        assert.matches("value: string expected, got no value",
                       argerror_of(p.record, p, "s", "k"), 1, true)
        assert.matches("scope", argerror_of(p.record, p, "", "k", "v"), 1, true)
        assert.matches("key", argerror_of(p.frequency, p, "s", "", "v"), 1, true)
        assert.matches("scope", argerror_of(p.record, p, ("s"):rep(256), "k", "v"), 1, true)
        assert.matches("key", argerror_of(p.record, p, "s", ("k"):rep(513), "v"), 1, true)
        assert.matches("value", argerror_of(p.record, p, "s", "k", ("v"):rep(1025)), 1, true)
        assert.matches("value", argerror_of(p.record, p, "s", "k", "bad\0value"), 1, true)
        assert.matches("key", argerror_of(p.delete, p, "s", "\xff", "v"), 1, true)
        assert.matches("unknown", argerror_of(p.learned, p, { min_freq = 2 }), 1, true)
        for _, bad in ipairs { -1, 1.5, "2" } do
          assert.matches("min_frequency", argerror_of(p.learned, p, { min_frequency = bad }), 1,
                         true)
        end
        for _, bad in ipairs { 0, -1, 2.5 } do
          assert.matches("limit", argerror_of(p.learned, p, { limit = bad }), 1, true)
        end
        assert.matches("scope", argerror_of(p.learned, p, { scope = "" }), 1, true)
        argerror_of(p.learned, p, "not a table")
        assert.equal(0, p:count())
      end)
    end)

    describe("in transactions", function()
      it("rolls back with the store's other writes", function()
        p:record("kept", "k", "v")
        local ok = pcall(db.transaction, db, function()
          db:set("k", "v")
          assert.equal(2, p:record("kept", "k", "v"))
          p:record("new", "k", "v")
          p:delete("kept", "k", "v")
          error("boom")
        end)
        assert.is_false(ok)
        assert.is_nil(db:get("k"))
        assert.equal(1, p:frequency("kept", "k", "v"))
        assert.equal(0, p:frequency("new", "k", "v"))
        db:transaction(function()
          p:record("new", "k", "v")
          assert.equal(1, p:frequency("new", "k", "v")) -- its own writes, seen inside
        end)
        assert.equal(2, p:count())
      end)
    end)

    if backend.shared then
      it("is bound to the store's tenant; another handle of it sees the same rows", function()
        p:record("s", "k", "v")
        local other = backend.open({ tenant = helpers.unique_tenant("pt_other") }, backend)
        local op = other:patterns()
        assert.equal(0, op:frequency("s", "k", "v"))
        assert.same({}, op:learned())
        assert.is_false(op:delete("s", "k", "v"))
        assert.equal(1, op:record("s", "k", "v"))
        assert.equal(1, p:frequency("s", "k", "v"))
        assert.is_true(op:delete("s", "k", "v"))
        other:close()
        local same = backend.open({ tenant = db:tenant() }, backend)
        assert.equal(2, same:patterns():record("s", "k", "v"))
        same:close()
        assert.equal(2, p:frequency("s", "k", "v"))
      end)
    end
  end)
end

for _, run in ipairs(helpers.runs(it)) do
  for _, backend in ipairs(helpers.backends()) do contract(backend, run.it, run.name) end
end

describe("patterns in a SQLite file", function()
  local path, db

  local function sqlite3(sql)
    local f = assert(io.popen("sqlite3 -batch -bail " .. sh_quote(path) .. " " .. sh_quote(sql)
                              .. " 2>&1"))
    local out = f:read("a")
    assert(f:close(), "sqlite3 failed: " .. out)
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

  it("is a table sqlite3 reads: texts, counts, microseconds", function()
    local p = db:patterns()
    p:record("nav", "home", "settings")
    p:record("nav", "home", "settings")
    local r = p:learned()[1]
    assert.equal("acme|nav|home|settings|2|1|1",
                 sqlite3("SELECT tenant_id, scope, key, value, frequency,"
                         .. " first_seen = created_at, last_seen = updated_at"
                         .. " FROM procedural_patterns"))
    assert.equal(tostring(math.floor(r.first_seen * 1e6 + 0.5)),
                 sqlite3("SELECT first_seen FROM procedural_patterns"))
    assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$",
                   sqlite3("SELECT pattern_id FROM procedural_patterns"))
  end)

  it("runs learned as one index range, in the index's order (no sort)", function()
    for i = 1, 20 do db:patterns():record(i % 2 == 0 and "a" or "b", "k" .. i, "v") end
    local plan = sqlite3("EXPLAIN QUERY PLAN SELECT scope FROM procedural_patterns"
                         .. " WHERE tenant_id = 'acme' AND frequency >= 1"
                         .. " ORDER BY frequency DESC, last_seen DESC, scope, key, value LIMIT 5")
    assert.matches("procedural_patterns_frequency (tenant_id=? AND frequency>?)", plan, 1, true)
    assert.not_matches("TEMP B-TREE", plan, 1, true)
    plan = sqlite3("EXPLAIN QUERY PLAN SELECT scope FROM procedural_patterns"
                   .. " WHERE tenant_id = 'acme' AND scope = 'a' AND frequency >= 1"
                   .. " ORDER BY frequency DESC, last_seen DESC, key, value LIMIT 5")
    assert.matches("procedural_patterns_scope (tenant_id=? AND scope=? AND frequency>?)", plan,
                   1, true)
    assert.not_matches("TEMP B-TREE", plan, 1, true)
  end)

  it("refuses a stored frequency below 1", function()
    db:patterns():record("s", "k", "v")
    local f = assert(io.popen("sqlite3 -batch " .. sh_quote(path) .. " "
                              .. sh_quote("UPDATE procedural_patterns SET frequency = 0")
                              .. " 2>&1"))
    local out = f:read("a")
    f:close()
    assert.matches("CHECK constraint failed", out, 1, true)
  end)
end)

describe("patterns in PostgreSQL", function()
  local SCHEMA = "llmspell_ptspec"
  local READER = "llmspell_ptspec_reader" -- NOLOGIN, no BYPASSRLS
  local acme, globex

  local open, up, down = pg.spec_schema(SCHEMA, READER, "SELECT ON @S.procedural_patterns")
  setup(up)
  teardown(down)

  before_each(function()
    acme, globex = open("acme"), open("globex")
  end)

  after_each(function()
    for _, db in ipairs { acme, globex } do
      for _, r in ipairs(db:patterns():learned()) do
        db:patterns():delete(r.scope, r.key, r.value)
      end
      db:close()
    end
  end)

  it("keeps each tenant's rows from a role without BYPASSRLS, in raw SQL", function()
    acme:patterns():record("s", "k", "a1")
    acme:patterns():record("s", "k", "a2")
    globex:patterns():record("s", "k", "g1")
    local q = "SELECT count(*), string_agg(tenant_id || ':' || value, ',' ORDER BY value) FROM "
              .. SCHEMA .. ".procedural_patterns;"
    local as = "SET ROLE " .. READER .. ";\n"
    assert.equal("0|", pg.psql1(as .. q))
    assert.equal("2|acme:a1,acme:a2", pg.psql1(as
      .. "SELECT set_config('app.current_tenant_id', 'acme', false);\n" .. q))
    assert.equal("1|globex:g1", pg.psql1(as
      .. "SELECT set_config('app.current_tenant_id', 'globex', false);\n" .. q))
    assert.equal("0", pg.psql1(as .. "SELECT set_config('app.current_tenant_id', 'acme', false);"
      .. "\nSELECT count(*) FROM " .. SCHEMA .. ".procedural_patterns WHERE tenant_id = 'globex';"))
    assert.equal("t|t", pg.psql1("SELECT relrowsecurity, relforcerowsecurity FROM pg_class"
      .. " WHERE oid = '" .. SCHEMA .. ".procedural_patterns'::regclass"))
  end)

  it("stores counts as bigint and times as timestamptz", function()
    acme:patterns():record("s", "k", "v")
    acme:patterns():record("s", "k", "v")
    local r = acme:patterns():learned()[1]
    assert.equal("2|bigint|t", pg.psql1("SELECT frequency, pg_typeof(frequency),"
      .. " last_seen >= first_seen FROM " .. SCHEMA .. ".procedural_patterns"
      .. " WHERE tenant_id = 'acme'"))
    assert.equal(tostring(math.floor(r.first_seen * 1e6 + 0.5)), pg.psql1(
      "SELECT (extract(epoch FROM first_seen) * 1000000)::int8 FROM " .. SCHEMA
      .. ".procedural_patterns WHERE tenant_id = 'acme'"))
  end)

  it("runs learned through the frequency and scope indexes, in their order", function()
    for i = 1, 20 do acme:patterns():record(i % 2 == 0 and "a" or "b", "k" .. i, "v") end
    local function plan(sql)
      return table.concat(pg.psql("SET enable_seqscan = off; EXPLAIN " .. sql), "\n")
    end
    local all = plan("SELECT * FROM " .. SCHEMA .. ".procedural_patterns WHERE tenant_id = 'acme'"
                     .. " AND frequency >= 1 ORDER BY frequency DESC, last_seen DESC, scope, key,"
                     .. " value LIMIT 5")
    assert.matches("procedural_patterns_frequency_idx", all, 1, true)
    assert.not_matches("Sort", all, 1, true)
    local one = plan("SELECT * FROM " .. SCHEMA .. ".procedural_patterns WHERE tenant_id = 'acme'"
                     .. " AND scope = 'a' AND frequency >= 1 ORDER BY frequency DESC,"
                     .. " last_seen DESC, key, value LIMIT 5")
    assert.matches("procedural_patterns_scope_idx", one, 1, true)
    assert.not_matches("Sort", one, 1, true)
  end)
end)

-- Processes record the same pattern on a store all of them reach. Each
-- child opens it, says "ready", waits for the go file and records N times,
-- printing each frequency it got back. Every increment is one statement,
-- so none is lost: the total is exact and the frequencies handed out are
-- 1..total, each once.
local CHILD = [[
local storage = require "llmspell.storage"
local system = require "system"
local kind, target, tenant, go, n = ...
local db = kind == "sqlite" and storage.open { backend = "sqlite", path = target, tenant = tenant }
           or storage.open { backend = "postgres", url = target, tenant = tenant }
local p = db:patterns()
io.stdout:setvbuf("full")
io.stderr:write("ready\n")
while not io.open(go) do system.sleep(0.001) end
local out = {}
for i = 1, tonumber(n) do out[i] = p:record("race", "from", "to") end
print(table.concat(out, " "))
db:close()
]]

for _, b in ipairs {
  { name = "SQLite", kind = "sqlite", procs = 2 },
  { name = "PostgreSQL", kind = "postgres", procs = 4 },
} do
  describe(b.procs .. " processes recording one pattern on " .. b.name, function()
    local N = 1000
    local tenant, path, script, go

    before_each(function()
      tenant = helpers.unique_tenant("ptrace")
      path = helpers.tmpname(".db")
      script = helpers.tmpname(".lua")
      go = helpers.tmpname(".go")
      local f = assert(io.open(script, "w"))
      f:write(CHILD)
      f:close()
    end)

    after_each(function()
      os.remove(script)
      os.remove(go)
      helpers.remove_db(path)
    end)

    local function open()
      if b.kind == "sqlite" then
        return storage.open { backend = "sqlite", path = path, tenant = tenant }
      end
      return storage.open { backend = "postgres", url = helpers.pg_url(), tenant = tenant }
    end

    it("ends at exactly procs x N, each frequency handed out once", function()
      local db = open() -- the schema exists before the children race
      local target = b.kind == "sqlite" and path or helpers.pg_url()
      local argv = {}
      for i = 1, b.procs do argv[i] = { script, b.kind, target, tenant, go, N } end
      local seen, total = {}, 0
      for _, out in ipairs(helpers.race(argv, go)) do
        local last = 0
        for x in out:gmatch("%d+") do
          x = tonumber(x)
          assert.is_true(x > last, "a process's frequencies grow")
          last = x
          assert.is_nil(seen[x], "frequency " .. x .. " handed out twice")
          seen[x] = true
          total = total + 1
        end
      end
      assert.equal(b.procs * N, total)
      for x = 1, b.procs * N do assert.is_true(seen[x], "frequency " .. x .. " missing") end
      assert.equal(b.procs * N, db:patterns():frequency("race", "from", "to"))
      db:patterns():delete("race", "from", "to")
      db:close()
    end)
  end)
end

-- The "procedural_memory" export section: rs-llmspell's PatternExport
-- records (times in microseconds), through every backend and back.
describe("the procedural_memory section", function()
  local stores = helpers.section_stores("ptx", function(db)
    for _, r in ipairs(db:patterns():learned()) do
      db:patterns():delete(r.scope, r.key, r.value)
    end
  end)
  local open = stores.open
  before_each(stores.before)
  after_each(stores.after)

  local function section(db)
    return storage.json_decode(storage.exporter(db):to_string()).data.procedural_memory
  end

  it("round-trips memory -> SQLite -> PostgreSQL -> memory, record for record", function()
    local mem = open("memory")
    local p = mem:patterns()
    for i = 1, 300 do p:record("s" .. (i % 3), "k" .. i, i % 2 == 0 and "" or "v\u{e9}") end
    p:record("s1", "k1", "v\u{e9}")
    local want = section(mem)
    assert.equal(300, #want) -- more than one dump page
    for i = 2, #want do
      local a, c = want[i - 1], want[i]
      assert.is_true(a.scope < c.scope or a.scope == c.scope and (a.key < c.key
        or a.key == c.key and a.value < c.value), "in (scope, key, value) order")
    end
    local r = want[1]
    local fields = {}
    for k in pairs(r) do fields[#fields + 1] = k end
    table.sort(fields)
    assert.same({ "created_at", "first_seen", "frequency", "key", "last_seen", "pattern_id",
                  "scope", "tenant_id", "updated_at", "value" }, fields)
    assert.equal(stores.tenant(), r.tenant_id)
    assert.equal("integer", math.type(r.first_seen))
    local doc = storage.exporter(mem):to_string()
    for _, kind in ipairs { "sqlite", "postgres", "memory" } do
      local db = open(kind)
      local st = storage.importer(db):from_string(doc)
      assert.equal(300, st.patterns)
      assert.same(want, section(db))
      assert.equal(2, db:patterns():frequency("s1", "k1", "v\u{e9}"))
      assert.equal(3, db:patterns():record("s1", "k1", "v\u{e9}")) -- counting carries on
      db:patterns():delete("s1", "k1", "v\u{e9}")
      storage.importer(db):from_string(doc)
      doc = storage.exporter(db):to_string()
    end
    assert.same(want, section(stores.stores()[#stores.stores()]))
  end)

  it("imports rs-llmspell's records, short forms too, on every backend", function()
    local records = '{"pattern_id":"7b0c","tenant_id":"rs","scope":"workflow",'
      .. '"key":"step:load","value":"step:transform","frequency":12,'
      .. '"first_seen":1700000000000000,"last_seen":1700000500000000,'
      .. '"created_at":1700000000000000,"updated_at":1700000500500000},'
      .. '{"scope":"tool","key":"search","value":"summarise","frequency":3,'
      .. '"first_seen":1700000000000000,"last_seen":1700000100000000},'
      .. '{"scope":"tool","key":"search","value":"open"}'
    for _, kind in ipairs { "memory", "sqlite", "postgres" } do
      local db = open(kind)
      local t0 = os.time()
      local st = import(db, records)
      assert.equal(3, st.patterns)
      local p = db:patterns()
      assert.same({ "workflow/step:load/step:transform=12", "tool/search/summarise=3",
                    "tool/search/open=1" }, shown(p:learned()))
      local full = p:learned()[1]
      assert.same({ 1700000000, 1700000500 }, { full.first_seen, full.last_seen })
      local short = p:learned()[2]
      assert.same({ 1700000000, 1700000100 }, { short.first_seen, short.last_seen })
      local min = p:learned()[3]
      assert.equal(min.first_seen, min.last_seen)
      assert.is_true(min.first_seen >= t0 and min.first_seen <= os.time() + 1)
      local out = section(db)
      local by_value = {}
      for _, r in ipairs(out) do by_value[r.value] = r end
      assert.same({ "7b0c", db:tenant(), 1700000500500000, 1700000000000000 },
                  { by_value["step:transform"].pattern_id, by_value["step:transform"].tenant_id,
                    by_value["step:transform"].updated_at, by_value["step:transform"].created_at })
      -- short forms: created_at / updated_at follow first_seen / last_seen
      assert.same({ 1700000000000000, 1700000100000000 },
                  { by_value.summarise.created_at, by_value.summarise.updated_at })
      assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", by_value.open.pattern_id)
      assert.equal(13, p:record("workflow", "step:load", "step:transform"))
    end
  end)

  it("resolves conflicts by (scope, key, value): replace, skip, error", function()
    local db = open("sqlite")
    local p = db:patterns()
    p:record("s", "k", "x")
    local function doc(n)
      return '{"scope":"s","key":"k","value":"x","frequency":' .. n .. '},'
             .. '{"scope":"s","key":"k","value":"y"}'
    end
    local st = import(db, doc(7), { on_conflict = "skip" })
    assert.same({ 1, 1 }, { st.patterns, st.skipped })
    assert.equal(1, p:frequency("s", "k", "x"))
    p:delete("s", "k", "y")
    local err = code_of("conflict", function() import(db, doc(8), { on_conflict = "error" }) end)
    assert.matches("pattern ('s', 'k', 'x') exists", err.message, 1, true)
    assert.equal(0, p:frequency("s", "k", "y")) -- all or nothing
    import(db, doc(9))
    assert.equal(9, p:frequency("s", "k", "x"))
    assert.equal(1, p:frequency("s", "k", "y"))
  end)

  it("refuses a bad record naming it and the field, writing nothing, dry run too", function()
    local db = open("memory")
    local cases = {
      { '{"scope":"s","key":"k","value":"v","frequency":0}',
        "frequency must be an integer in [1, " },
      { '{"scope":"s","key":"k","value":"v","frequency":2.5}', "frequency must be an integer" },
      { '{"scope":"s","key":"k","value":"v","last_seen":"today"}', "last_seen must be an integer" },
      { '{"scope":"","key":"k","value":"v"}', "scope must be 1..255 bytes" },
      { '{"scope":"s","key":"k","value":"' .. ("v"):rep(1025) .. '"}', "value must be 0..1024" },
      { '{"scope":"s","key":7,"value":"v"}', "key must be a string" },
      { '{"scope":"s","key":"k","value":"nul\\u0000"}', "value must be 0..1024 bytes" },
      { '{"key":"k","value":"v"}', "scope is missing" },
      { '{"scope":"s","value":"v"}', "key is missing" },
      { '{"scope":"s","key":"k"}', "value is missing" },
      { '"not an object"', "a record must be an object" },
    }
    for _, case in ipairs(cases) do
      for _, dry in ipairs { false, true } do
        local err = code_of("format", function()
          import(db, '{"scope":"ok","key":"k","value":"v"},' .. case[1], { dry_run = dry })
        end)
        assert.matches("procedural_memory[1]", err.message, 1, true)
        assert.matches(case[2], err.message, 1, true)
        assert.equal(0, db:patterns():count())
      end
    end
    local st = import(db, '{"scope":"ok","key":"k","value":"v"}', { dry_run = true })
    assert.equal(1, st.patterns)
    assert.equal(0, db:patterns():count())
  end)
end)
