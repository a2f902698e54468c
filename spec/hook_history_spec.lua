--- Hook history, db:hook_history() (COMPONENTS.md "Hook history",
-- docs/hook_history.md): the same contract on memory, SQLite (file and
-- :memory:) and PostgreSQL, plainly and inside a coroutine; then what each
-- SQL backend stores (sqlite3, psql as a role without BYPASSRLS), the
-- plans the lists and archive run, and the hook_history export section.
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

--- The execution ids of a list, in order.
local function ids(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r.execution_id end
  return out
end

--- n bytes that LZ4 cannot shrink (a xorshift stream).
local function noise(n, seed)
  local x, out = seed or 88172645463325252, {}
  for i = 1, n do
    x = x ~ (x << 13)
    x = x ~ (x >> 7)
    x = x ~ (x << 17)
    out[i] = string.char(x & 0xff)
  end
  return table.concat(out)
end

local UUID = "^%x+%-%x+%-4%x+%-%x+%-%x+$"

--- Imports hook_history records (JSON text) into db.
local function import(db, records, opts)
  return storage.importer(db):from_string('{"version":"1.0","data":{"hook_history":['
                                          .. records .. ']}}', opts)
end

local function contract(backend, it, run_name)
  describe("hook history on " .. backend.name .. run_name, function()
    local db, h
    local backend_name = backend.name:match("^sqlite") and "sqlite" or backend.name

    before_each(function()
      if backend.setup then backend:setup() end
      db = backend.open(nil, backend)
      h = db:hook_history()
    end)

    after_each(function()
      if db then
        pcall(function() db:hook_history():archive { before = 9e12, max_priority = 2147483647 } end)
        db:close()
      end
      if backend.teardown then backend:teardown() end
    end)

    describe("the object", function()
      it("is one per store, printed with kind, backend, tenant and rows", function()
        assert.equal(h, db:hook_history())
        assert.equal("llmspell.storage.HookHistory", getmetatable(h).__name)
        h:record { hook_id = "a", hook_type = "t" }
        h:record { hook_id = "b", hook_type = "t" }
        local s = tostring(h)
        assert.matches("^llmspell%.storage%.HookHistory %(" .. backend_name .. " ", s)
        assert.matches("tenant " .. db:tenant() .. ", 2 rows)", s, 1, true)
        assert.equal(2, h:count())
      end)

      it("refuses use after it or its store closes", function()
        local id = h:record { hook_id = "a", hook_type = "t" }
        h:close()
        h:close() -- idempotent
        assert.equal("llmspell.storage.HookHistory (closed)", tostring(h))
        code_of("closed", h.get, h, id)
        local again = db:hook_history() -- a new object
        assert.are_not.equal(h, again)
        assert.equal(id, again:get(id).execution_id)
        db:close()
        local err = code_of("closed", again.record, again, { hook_id = "a", hook_type = "t" })
        assert.equal(backend_name, err.backend)
        code_of("closed", again.stats, again)
        db = nil
      end)

      it("closes at the end of a to-be-closed scope", function()
        do
          local scoped <close> = db:hook_history()
          scoped:record { hook_id = "a", hook_type = "t", execution_id = "e1" }
        end
        assert.is_table(db:hook_history():get("e1"))
      end)
    end)

    describe("record and get", function()
      it("keeps every field and hands the context back byte for byte", function()
        local ctx = ("{\"input\":\"some hook context\"}"):rep(400) .. "\0\1\255"
        local id = h:record {
          execution_id = "exec-1", hook_id = "rate_limit", hook_type = "pre_tool",
          correlation_id = "corr-1", context = ctx,
          result = { Modified = { reason = "throttled", big = 9007199254740993 } },
          timestamp = 1700000000.25, duration_ms = 42, triggering_component = "Tool",
          component_id = "web_search", modified_operation = true, tags = { "audit", "tool" },
          retention_priority = 7, contains_sensitive_data = true,
          metadata = { version = 2, owner = "ops", ratio = 0.5 },
        }
        assert.equal("exec-1", id)
        local r = h:get("exec-1")
        assert.same({ "exec-1", "rate_limit", "pre_tool", "corr-1", "Tool", "web_search" },
                    { r.execution_id, r.hook_id, r.hook_type, r.correlation_id,
                      r.triggering_component, r.component_id })
        assert.equal(ctx, r.context)
        assert.equal(#ctx, r.context_size)
        assert.is_true(r.stored_size < #ctx / 10, "a repetitive context is stored compressed")
        assert.same({ Modified = { reason = "throttled", big = 9007199254740993 } }, r.result)
        assert.equal("integer", math.type(r.result.Modified.big))
        assert.same({ "audit", "tool" }, r.tags)
        assert.same({ version = 2, owner = "ops", ratio = 0.5 }, r.metadata)
        assert.equal("float", math.type(r.metadata.ratio))
        assert.same({ 1700000000.25, 42, 7, true, true },
                    { r.timestamp, r.duration_ms, r.retention_priority, r.modified_operation,
                      r.contains_sensitive_data })
        assert.matches(UUID, r.id)
        assert.is_true(math.abs(r.created_at - os.time()) < 5)
      end)

      it("fills in what is omitted: ids, times, zeroes, false, empty", function()
        local t0 = os.time()
        local id = h:record { hook_id = "h", hook_type = "t" }
        assert.matches(UUID, id)
        local r = h:get(id)
        assert.matches(UUID, r.correlation_id)
        assert.are_not.equal(id, r.correlation_id)
        assert.equal("", r.context)
        assert.same({ 0, 0, 0, 0, false, false },
                    { r.context_size, r.stored_size, r.duration_ms, r.retention_priority,
                      r.modified_operation, r.contains_sensitive_data })
        assert.is_nil(r.result)
        assert.is_nil(r.triggering_component)
        assert.is_nil(r.component_id)
        assert.same({}, r.tags)
        assert.same({}, r.metadata)
        assert.is_true(r.timestamp >= t0 and r.timestamp <= os.time() + 1)
        assert.equal(r.timestamp, r.created_at)
        -- texts may be empty where rs-llmspell allows it, and a result any JSON value
        h:record { execution_id = "e2", hook_id = "h", hook_type = "t", triggering_component = "",
                   component_id = "", result = "Continue" }
        local r2 = h:get("e2")
        assert.same({ "", "", "Continue" }, { r2.triggering_component, r2.component_id, r2.result })
      end)

      it("stores an incompressible context whole, larger than it came", function()
        local ctx = noise(100000)
        h:record { execution_id = "n", hook_id = "h", hook_type = "t", context = ctx }
        local r = h:get("n")
        assert.equal(ctx, r.context)
        assert.equal(100000, r.context_size)
        assert.is_true(r.stored_size > 100000, "an LZ4 block of noise is a little larger")
        local s = h:stats()
        assert.same({ 100000, r.stored_size }, { s.bytes, s.compressed_bytes })
      end)

      it("refuses a taken execution_id with `conflict`, changing nothing", function()
        h:record { execution_id = "dup", hook_id = "first", hook_type = "t", context = "one" }
        local err = code_of("conflict", h.record, h,
                            { execution_id = "dup", hook_id = "second", hook_type = "t" })
        assert.matches("hook execution 'dup' exists", err.message, 1, true)
        local r = h:get("dup")
        assert.same({ "first", "one" }, { r.hook_id, r.context })
        assert.equal(1, h:count())
      end)

      it("gives nil for an unknown execution", function()
        assert.is_nil(h:get("nope"))
      end)
    end)

    describe("the lists", function()
      before_each(function()
        -- timestamps out of insertion order; c and d tie on time
        local rows = {
          { "a", "hook1", "pre", "corr1", 100 }, { "b", "hook1", "post", "corr1", 300 },
          { "c", "hook2", "pre", "corr2", 200 }, { "d", "hook1", "pre", "corr2", 200 },
          { "e", "hook2", "post", "corr1", 50 }, { "f", "hook1", "pre", "corr3", 400 },
        }
        for _, r in ipairs(rows) do
          h:record { execution_id = r[1], hook_id = r[2], hook_type = r[3], correlation_id = r[4],
                     timestamp = r[5], context = "ctx " .. r[1] }
        end
      end)

      it("give a hook's, a type's and a correlation's executions newest first", function()
        assert.same({ "f", "b", "d", "a" }, ids(h:by_hook("hook1")))
        assert.same({ "c", "e" }, ids(h:by_hook("hook2")))
        assert.same({ "f", "d", "c", "a" }, ids(h:by_type("pre"))) -- d, c: same time, id desc
        assert.same({ "b", "e" }, ids(h:by_type("post")))
        assert.same({ "b", "a", "e" }, ids(h:by_correlation("corr1")))
        assert.same({ "d", "c" }, ids(h:by_correlation("corr2")))
        assert.same({}, h:by_hook("none"))
        assert.same({}, h:by_type("none"))
        assert.same({}, h:by_correlation("none"))
        local r = h:by_hook("hook1")[2]
        assert.same({ "b", "ctx b", 300, "corr1" },
                    { r.execution_id, r.context, r.timestamp, r.correlation_id })
      end)

      it("stop at limit", function()
        assert.same({ "f", "b" }, ids(h:by_hook("hook1", { limit = 2 })))
        assert.same({ "f" }, ids(h:by_type("pre", { limit = 1 })))
        assert.same({ "b", "a", "e" }, ids(h:by_correlation("corr1", { limit = 10 })))
      end)
    end)

    describe("archive", function()
      it("removes only rows older than before and at or below max_priority", function()
        for i, p in ipairs { -1, 0, 0, 3, 5, 9 } do
          h:record { execution_id = "old" .. i, hook_id = "h", hook_type = "t", timestamp = 100 + i,
                     retention_priority = p }
          h:record { execution_id = "new" .. i, hook_id = "h", hook_type = "t", timestamp = 1000 + i,
                     retention_priority = p }
        end
        assert.equal(3, h:archive { before = 500 }) -- max_priority defaults to 0
        assert.is_nil(h:get("old1"))
        assert.is_table(h:get("old4"))
        assert.equal(0, h:archive { before = 500 })
        assert.equal(1, h:archive { before = 500, max_priority = 3 })
        assert.equal(0, h:archive { before = 104, max_priority = 9 }) -- old5 is at 105
        assert.equal(1, h:archive { before = 105.5, max_priority = 9 })
        assert.same({ "old6" }, (function()
          local out = {}
          for _, r in ipairs(h:by_hook("h")) do
            if r.timestamp < 500 then out[#out + 1] = r.execution_id end
          end
          return out
        end)())
        assert.equal(7, h:archive { before = 2000, max_priority = 9 })
        assert.equal(0, h:count())
      end)
    end)

    describe("stats", function()
      it("counts by hook and type, sums sizes and averages durations", function()
        local empty = h:stats()
        assert.same({ executions = 0, bytes = 0, compressed_bytes = 0, avg_duration_ms = 0.0,
                      by_hook = {}, by_type = {} }, empty)
        local ctx = ("abc"):rep(1000)
        h:record { hook_id = "h1", hook_type = "pre", context = ctx, duration_ms = 10,
                   timestamp = 200 }
        h:record { hook_id = "h1", hook_type = "post", context = "xyz", duration_ms = 20,
                   timestamp = 100 }
        h:record { hook_id = "h2", hook_type = "pre", duration_ms = 45, timestamp = 300 }
        local s = h:stats()
        local stored = 0
        for _, r in ipairs(h:by_type("pre")) do stored = stored + r.stored_size end
        stored = stored + h:by_type("post")[1].stored_size
        assert.same({ executions = 3, bytes = 3003, compressed_bytes = stored,
                      avg_duration_ms = 25.0, oldest = 100, newest = 300,
                      by_hook = { h1 = 2, h2 = 1 }, by_type = { pre = 2, post = 1 } }, s)
        assert.is_true(s.compressed_bytes < s.bytes)
        assert.equal("float", math.type(s.avg_duration_ms))
      end)
    end)

    describe("bad arguments", function()
      it("are refused naming the argument, before anything is written", function()
        local function rec(t) return argerror_of(h.record, h, t) end
        local ok = { hook_id = "h", hook_type = "t" }
        local function with(k, v)
          local t = {}
          for kk, vv in pairs(ok) do t[kk] = vv end
          t[k] = v
          return t
        end
        argerror_of(h.record, h)
        argerror_of(h.record, h, "not a table")
        assert.matches("hook_id' is required", rec { hook_type = "t" }, 1, true)
        assert.matches("hook_type' is required", rec { hook_id = "h" }, 1, true)
        assert.matches("unknown", rec(with("hookid", "x")), 1, true)
        assert.matches("hook_id", rec(with("hook_id", "")), 1, true)
        assert.matches("hook_id", rec(with("hook_id", 5)), 1, true)
        assert.matches("hook_type", rec(with("hook_type", ("t"):rep(513))), 1, true)
        assert.matches("execution_id", rec(with("execution_id", "bad\0id")), 1, true)
        assert.matches("correlation_id", rec(with("correlation_id", "\xff")), 1, true)
        assert.matches("context", rec(with("context", 12)), 1, true)
        assert.matches("context", rec(with("context", ("x"):rep(storage.limits.max_hook_context
                                                                 + 1))), 1, true)
        assert.matches("timestamp", rec(with("timestamp", 0 / 0)), 1, true)
        assert.matches("timestamp", rec(with("timestamp", "now")), 1, true)
        assert.matches("duration_ms", rec(with("duration_ms", -1)), 1, true)
        assert.matches("duration_ms", rec(with("duration_ms", 1.5)), 1, true)
        assert.matches("retention_priority", rec(with("retention_priority", 2 ^ 31)), 1, true)
        assert.matches("modified_operation", rec(with("modified_operation", 1)), 1, true)
        assert.matches("contains_sensitive_data", rec(with("contains_sensitive_data", "yes")), 1,
                       true)
        assert.matches("tags", rec(with("tags", "a")), 1, true)
        assert.matches("tag 2", rec(with("tags", { "a", 3 })), 1, true)
        assert.matches("tags", rec(with("tags", { x = "a" })), 1, true)
        assert.matches("metadata", rec(with("metadata", "m")), 1, true)
        assert.matches("result", rec(with("result", function() end)), 1, true)
        assert.matches("component_id", rec(with("component_id", ("c"):rep(513))), 1, true)
        assert.matches("execution_id", argerror_of(h.get, h, 1), 1, true)
        assert.matches("execution_id", argerror_of(h.get, h, ""), 1, true)
        assert.matches("hook_id", argerror_of(h.by_hook, h), 1, true)
        assert.matches("hook_type", argerror_of(h.by_type, h, ""), 1, true)
        assert.matches("correlation_id", argerror_of(h.by_correlation, h, {}), 1, true)
        for _, bad in ipairs { 0, -1, 2.5, "3" } do
          assert.matches("limit", argerror_of(h.by_hook, h, "h", { limit = bad }), 1, true)
        end
        assert.matches("unknown", argerror_of(h.by_type, h, "t", { lim = 1 }), 1, true)
        assert.matches("before' is required", argerror_of(h.archive, h, {}), 1, true)
        assert.matches("before", argerror_of(h.archive, h, { before = 1 / 0 }), 1, true)
        assert.matches("max_priority", argerror_of(h.archive, h, { before = 1, max_priority = 0.5 }),
                       1, true)
        assert.matches("unknown", argerror_of(h.archive, h, { before = 1, priority = 1 }), 1, true)
        argerror_of(h.archive, h)
        assert.equal(0, h:count())
      end)
    end)

    describe("in transactions", function()
      it("rolls back with the store's other writes, archive included", function()
        h:record { execution_id = "kept", hook_id = "h", hook_type = "t", timestamp = 10 }
        local ok = pcall(db.transaction, db, function()
          db:set("k", "v")
          h:record { execution_id = "new", hook_id = "h", hook_type = "t" }
          assert.equal(1, h:archive { before = 100 })
          assert.is_nil(h:get("kept"))
          error("boom")
        end)
        assert.is_false(ok)
        assert.is_nil(db:get("k"))
        assert.is_table(h:get("kept"))
        assert.is_nil(h:get("new"))
        db:transaction(function(tx)
          h:record { execution_id = "outer", hook_id = "h", hook_type = "t" }
          pcall(tx.transaction, tx, function()
            h:record { execution_id = "inner", hook_id = "h", hook_type = "t" }
            error("undo the inner level")
          end)
          assert.is_table(h:get("outer")) -- its own writes, seen inside
        end)
        assert.same({ "kept", "outer" }, (function()
          local out = ids(h:by_hook("h"))
          table.sort(out)
          return out
        end)())
      end)
    end)

    if backend.shared then
      it("is bound to the store's tenant; another handle of it sees the same rows", function()
        h:record { execution_id = "mine", hook_id = "h", hook_type = "t", correlation_id = "c" }
        local other = backend.open({ tenant = helpers.unique_tenant("hk_other") }, backend)
        local oh = other:hook_history()
        assert.is_nil(oh:get("mine"))
        assert.same({}, oh:by_hook("h"))
        assert.same({}, oh:by_correlation("c"))
        assert.equal(0, oh:stats().executions)
        assert.equal(0, oh:archive { before = 9e12, max_priority = 100 })
        -- the same execution id in another tenant is another row
        oh:record { execution_id = "mine", hook_id = "other", hook_type = "t" }
        assert.equal("h", h:get("mine").hook_id)
        other:close()
        local same = backend.open({ tenant = db:tenant() }, backend)
        assert.equal("h", same:hook_history():get("mine").hook_id)
        same:close()
      end)
    end
  end)
end

for _, run in ipairs(helpers.runs(it)) do
  for _, backend in ipairs(helpers.backends()) do contract(backend, run.it, run.name) end
end

describe("hook history in a SQLite file", function()
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

  it("is a table sqlite3 reads: the context size-prefixed LZ4, JSON, microseconds", function()
    local ctx = ("context "):rep(100) -- 800 bytes
    db:hook_history():record { execution_id = "e1", hook_id = "h", hook_type = "pre",
                               correlation_id = "c", context = ctx, result = { ok = true },
                               tags = { "x" }, timestamp = 1700000000.5, duration_ms = 3 }
    assert.equal("acme|e1|h|pre|c|800|20030000|1|{\"ok\":true}|[\"x\"]|{}|1700000000500000|3|0|0",
                 sqlite3("SELECT tenant_id, execution_id, hook_id, hook_type, correlation_id,"
                         .. " context_size, hex(substr(hook_context, 1, 4)),"
                         .. " length(hook_context) < 100, result_data, tags, metadata,"
                         .. " timestamp, duration_ms, modified_operation, retention_priority"
                         .. " FROM hook_history"))
    assert.matches(UUID, sqlite3("SELECT id FROM hook_history"))
    assert.equal("NULL|NULL", sqlite3("SELECT quote(triggering_component), quote(component_id)"
                                      .. " FROM hook_history"))
  end)

  it("runs each list as one index range in the index's order, archive on its index", function()
    local h = db:hook_history()
    for i = 1, 30 do
      h:record { hook_id = "h" .. (i % 3), hook_type = "t" .. (i % 2), correlation_id = "c" .. (i % 5),
                 timestamp = i, retention_priority = i % 4 }
    end
    local function plan(sql) return sqlite3("EXPLAIN QUERY PLAN " .. sql) end
    for col, index in pairs { correlation_id = "hook_history_correlation",
                              hook_id = "hook_history_hook", hook_type = "hook_history_type" } do
      local p = plan("SELECT * FROM hook_history WHERE tenant_id = 'acme' AND " .. col
                     .. " = 'x' ORDER BY timestamp DESC, execution_id DESC LIMIT 5")
      assert.matches(index .. " (tenant_id=? AND " .. col .. "=?)", p, 1, true)
      assert.not_matches("TEMP B-TREE", p, 1, true)
    end
    local p = plan("DELETE FROM hook_history WHERE tenant_id = 'acme' AND retention_priority <= 2"
                   .. " AND timestamp < 10")
    assert.matches("hook_history_retention (tenant_id=? AND retention_priority<?)", p, 1, true)
  end)

  it("says a damaged context is damaged: get, export and db:check()", function()
    local h = db:hook_history()
    h:record { execution_id = "e1", hook_id = "h", hook_type = "t", context = ("abc"):rep(100) }
    h:record { execution_id = "e2", hook_id = "h", hook_type = "t", context = "fine" }
    sqlite3("UPDATE hook_history SET hook_context = zeroblob(length(hook_context))"
            .. " WHERE execution_id = 'e1'")
    local err = code_of("integrity", h.get, h, "e1")
    assert.matches("hook execution 'e1': its stored context is damaged", err.message, 1, true)
    code_of("integrity", h.by_hook, h, "h")
    assert.equal("fine", h:get("e2").context)
    err = code_of("integrity", function() storage.exporter(db):to_string() end)
    assert.matches("e1", err.message, 1, true)
    local problems = db:check()
    assert.equal(1, #problems)
    assert.equal("hook_history", problems[1].where)
  end)

  it("refuses negative durations and sizes stored by hand", function()
    db:hook_history():record { hook_id = "h", hook_type = "t" }
    for _, sql in ipairs { "UPDATE hook_history SET duration_ms = -1",
                           "UPDATE hook_history SET modified_operation = 2",
                           "UPDATE hook_history SET context_size = -5" } do
      local f = assert(io.popen("sqlite3 -batch " .. sh_quote(path) .. " " .. sh_quote(sql)
                                .. " 2>&1"))
      local out = f:read("a")
      f:close()
      assert.matches("CHECK constraint failed", out, 1, true)
    end
  end)
end)

describe("hook history in PostgreSQL", function()
  local SCHEMA = "llmspell_hkspec"
  local READER = "llmspell_hkspec_reader" -- NOLOGIN, no BYPASSRLS
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
    pg.psql("GRANT USAGE ON SCHEMA " .. SCHEMA .. " TO " .. READER .. "; GRANT SELECT, DELETE ON "
            .. SCHEMA .. ".hook_history TO " .. READER .. ";")
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
      db:hook_history():archive { before = 9e12, max_priority = 2147483647 }
      db:close()
    end
  end)

  it("keeps each tenant's rows from a role without BYPASSRLS, in raw SQL", function()
    acme:hook_history():record { execution_id = "a1", hook_id = "h", hook_type = "t" }
    acme:hook_history():record { execution_id = "a2", hook_id = "h", hook_type = "t" }
    globex:hook_history():record { execution_id = "g1", hook_id = "h", hook_type = "t" }
    local q = "SELECT count(*), string_agg(tenant_id || ':' || execution_id, ','"
              .. " ORDER BY execution_id) FROM " .. SCHEMA .. ".hook_history;"
    local as = "SET ROLE " .. READER .. ";\n"
    local function tenant(t) return "SELECT set_config('app.current_tenant_id', '" .. t
                                    .. "', false);\n" end
    assert.equal("0|", pg.psql1(as .. q))
    assert.equal("2|acme:a1,acme:a2", pg.psql1(as .. tenant("acme") .. q))
    assert.equal("1|globex:g1", pg.psql1(as .. tenant("globex") .. q))
    assert.equal("0", pg.psql1(as .. tenant("acme") .. "SELECT count(*) FROM " .. SCHEMA
                               .. ".hook_history WHERE tenant_id = 'globex';"))
    -- nor can it delete another tenant's rows
    pg.psql(as .. tenant("acme") .. "DELETE FROM " .. SCHEMA .. ".hook_history;")
    assert.equal(0, acme:hook_history():count())
    assert.equal(1, globex:hook_history():count())
    assert.equal("t|t", pg.psql1("SELECT relrowsecurity, relforcerowsecurity FROM pg_class"
      .. " WHERE oid = '" .. SCHEMA .. ".hook_history'::regclass"))
  end)

  it("stores bytea (not recompressed by TOAST), jsonb and timestamptz", function()
    acme:hook_history():record { execution_id = "e1", hook_id = "h", hook_type = "t",
                                 context = ("ctx"):rep(300), result = { n = 1 },
                                 timestamp = 1700000000.25, modified_operation = true }
    assert.equal("bytea|e|900|t|jsonb|{\"n\": 1}|t|1700000000250000|integer", pg.psql1(
      "SELECT pg_typeof(hook_context), (SELECT attstorage FROM pg_attribute WHERE attrelid = '"
      .. SCHEMA .. ".hook_history'::regclass AND attname = 'hook_context'), context_size,"
      .. " octet_length(hook_context) < 100, pg_typeof(result_data), result_data,"
      .. " modified_operation, (extract(epoch FROM timestamp) * 1000000)::int8,"
      .. " pg_typeof(retention_priority) FROM " .. SCHEMA .. ".hook_history"
      .. " WHERE tenant_id = 'acme'"))
    assert.equal("84030000", pg.psql1("SELECT encode(substr(hook_context, 1, 4), 'hex') FROM "
                                      .. SCHEMA .. ".hook_history WHERE tenant_id = 'acme'"))
  end)

  it("runs the lists through their indexes in their order, archive through its own", function()
    -- 20,000 rows of acme, written as the superuser and analysed, so the
    -- planner weighs real statistics
    pg.psql("INSERT INTO " .. SCHEMA .. ".hook_history SELECT 'acme', 'id' || i, 'e' || i,"
            .. " 'h' || (i % 50), 't' || (i % 20), 'c' || (i % 500), '', NULL,"
            .. " to_timestamp(1700000000 + i), i % 100, NULL, NULL, false, '[]', i % 10, 0,"
            .. " false, '{}', now() FROM generate_series(1, 20000) i; ANALYZE " .. SCHEMA
            .. ".hook_history;")
    local function plan(sql)
      return table.concat(pg.psql("SET enable_seqscan = off; EXPLAIN " .. sql), "\n")
    end
    for col, index in pairs { correlation_id = "hook_history_correlation_idx",
                              hook_id = "hook_history_hook_idx",
                              hook_type = "hook_history_type_idx" } do
      local p = plan("SELECT * FROM " .. SCHEMA .. ".hook_history WHERE tenant_id = 'acme' AND "
                     .. col .. " = 'h1' ORDER BY timestamp DESC, execution_id DESC LIMIT 5")
      assert.matches(index, p, 1, true)
      assert.not_matches("Sort", p, 1, true)
    end
    local p = table.concat(pg.psql("EXPLAIN DELETE FROM " .. SCHEMA .. ".hook_history"
                                   .. " WHERE tenant_id = 'acme' AND retention_priority <= 0"
                                   .. " AND timestamp < to_timestamp(1700005000)"), "\n")
    assert.matches("hook_history_retention_idx", p, 1, true)
    assert.equal(500, acme:hook_history():archive { before = 1700005000.5 })
    assert.equal(19500, acme:hook_history():count())
  end)

  it("refuses an imported \\u0000, which jsonb cannot hold, naming the record", function()
    local err = code_of("format", function()
      import(acme, '{"execution_id":"e","hook_id":"h","hook_type":"t","result_data":"nul\\u0000"}')
    end)
    assert.matches("hook_history[0]: hook result, tags or metadata contain \\u0000", err.message, 1,
                   true)
    assert.equal(0, acme:hook_history():count())
  end)
end)

-- The "hook_history" export section: rs-llmspell's HookExport records and
-- every other column (times in microseconds), through every backend and
-- back.
describe("the hook_history section", function()
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
    return storage.json_decode(storage.exporter(db):to_string()).data.hook_history
  end

  before_each(function()
    tenant = helpers.unique_tenant("hkx")
    path = helpers.tmpname(".db")
    stores = {}
  end)

  after_each(function()
    for _, db in ipairs(stores) do
      if pcall(db.tenant, db) then
        db:hook_history():archive { before = 9e12, max_priority = 2147483647 }
        db:close()
      end
    end
    helpers.remove_db(path)
  end)

  it("round-trips memory -> SQLite -> PostgreSQL -> memory, record for record", function()
    local mem = open("memory")
    local h = mem:hook_history()
    for i = 1, 150 do
      h:record { hook_id = "hook" .. (i % 4), hook_type = i % 2 == 0 and "pre" or "post",
                 correlation_id = "c" .. (i % 7), context = ("ctx" .. i):rep(i % 50),
                 result = i % 3 == 0 and { n = i } or nil, duration_ms = i,
                 triggering_component = i % 5 == 0 and "Agent" or nil,
                 component_id = i % 5 == 0 and "agent-" .. i or nil, tags = { "t" .. i % 3 },
                 retention_priority = i % 4 - 1, modified_operation = i % 2 == 0,
                 contains_sensitive_data = i % 3 == 0, metadata = { i = i, f = i / 4 },
                 timestamp = 1700000000 + i / 8 }
    end
    h:record { execution_id = "bin", hook_id = "b", hook_type = "t", context = noise(5000) }
    local want = section(mem)
    assert.equal(151, #want) -- more than one dump page
    for i = 2, #want do
      assert.is_true(want[i - 1].execution_id < want[i].execution_id, "in execution_id order")
    end
    local fields, full = {}, nil
    for _, r in ipairs(want) do full = full or (r.component_id and r.result_data and r) end
    for k in pairs(full) do fields[#fields + 1] = k end
    table.sort(fields)
    assert.same({ "component_id", "contains_sensitive_data", "context_size", "correlation_id",
                  "created_at", "duration_ms", "execution_id", "hook_context", "hook_id",
                  "hook_type", "id", "metadata", "modified_operation", "result_data",
                  "retention_priority", "tags", "tenant_id", "timestamp",
                  "triggering_component" }, fields)
    assert.equal(tenant, want[1].tenant_id)
    assert.equal("integer", math.type(want[1].timestamp))
    local doc = storage.exporter(mem):to_string()
    for _, kind in ipairs { "sqlite", "postgres", "memory" } do
      local db = open(kind)
      local st = storage.importer(db):from_string(doc)
      assert.equal(151, st.hooks)
      assert.same(want, section(db))
      assert.equal(noise(5000), db:hook_history():get("bin").context)
      assert.equal(151, db:hook_history():stats().executions)
      doc = storage.exporter(db):to_string()
    end
    assert.same(want, section(stores[#stores]))
  end)

  it("imports rs-llmspell's short records (its compressed contexts) on every backend", function()
    -- lz4_flex compress_prepend_size("hello"): size 5 (LE), then one
    -- literal-only LZ4 sequence (token 0x50, "hello")
    local hello = "BQAAAFBoZWxsbw=="
    local records = '{"id":"5b1f7c2e-0000-4000-8000-000000000001","execution_id":'
      .. '"9d3b1a2c-0000-4000-8000-00000000000a","tenant_id":"rs","hook_id":"cost_tracker",'
      .. '"hook_type":"post_agent","correlation_id":"7e0c9b4d-0000-4000-8000-00000000000c",'
      .. '"hook_context":"' .. hello .. '","result_data":"Continue",'
      .. '"timestamp":1700000000000000,"duration_ms":17},'
      .. '{"execution_id":"e2","hook_id":"cost_tracker","hook_type":"pre_agent",'
      .. '"correlation_id":"7e0c9b4d-0000-4000-8000-00000000000c","hook_context":"",'
      .. '"result_data":{"Modified":{"x":1}},"timestamp":1700000001000000,"duration_ms":2}'
    for _, kind in ipairs { "memory", "sqlite", "postgres" } do
      local db = open(kind)
      local st = import(db, records)
      assert.equal(2, st.hooks)
      local h = db:hook_history()
      local r = h:get("9d3b1a2c-0000-4000-8000-00000000000a")
      assert.same({ "hello", 5, "Continue", 1700000000, 17, "cost_tracker", "post_agent",
                    "5b1f7c2e-0000-4000-8000-000000000001" },
                  { r.context, r.context_size, r.result, r.timestamp, r.duration_ms, r.hook_id,
                    r.hook_type, r.id })
      -- the short form's defaults: as h:record gives them
      assert.same({ 0, false, false, {}, {} },
                  { r.retention_priority, r.modified_operation, r.contains_sensitive_data, r.tags,
                    r.metadata })
      assert.equal(r.timestamp, r.created_at)
      assert.same({ "e2", "9d3b1a2c-0000-4000-8000-00000000000a" },
                  ids(h:by_correlation("7e0c9b4d-0000-4000-8000-00000000000c")))
      assert.equal("", h:get("e2").context)
      assert.matches(UUID, h:get("e2").id)
      -- and the record goes out again as it came, with the columns rs drops
      local out = section(db)
      local first = out[1].execution_id == "e2" and out[2] or out[1]
      assert.same({ hello, "Continue", 1700000000000000, 17, db:tenant(), 5 },
                  { first.hook_context, first.result_data, first.timestamp, first.duration_ms,
                    first.tenant_id, first.context_size })
    end
  end)

  it("resolves conflicts by execution_id: replace, skip, error", function()
    local db = open("sqlite")
    local h = db:hook_history()
    h:record { execution_id = "x", hook_id = "mine", hook_type = "t" }
    local function doc(hook)
      return '{"execution_id":"x","hook_id":"' .. hook .. '","hook_type":"t"},'
             .. '{"execution_id":"y","hook_id":"h","hook_type":"t"}'
    end
    local st = import(db, doc("skipped"), { on_conflict = "skip" })
    assert.same({ 1, 1 }, { st.hooks, st.skipped })
    assert.equal("mine", h:get("x").hook_id)
    import(db, '{"execution_id":"y","hook_id":"again","hook_type":"t"}')
    local err = code_of("conflict", function() import(db, doc("err"), { on_conflict = "error" }) end)
    assert.matches("hook execution 'x' exists", err.message, 1, true)
    assert.equal("again", h:get("y").hook_id) -- all or nothing
    import(db, doc("replaced"))
    assert.equal("replaced", h:get("x").hook_id)
    assert.equal(2, h:count())
  end)

  it("refuses a bad record naming it and the field, writing nothing, dry run too", function()
    local db = open("memory")
    local head = '"hook_id":"h","hook_type":"t"'
    local cases = {
      { '{' .. head .. '}', "execution_id is missing" },
      { '{"execution_id":"e","hook_type":"t"}', "hook_id is missing" },
      { '{"execution_id":"e","hook_id":"h"}', "hook_type is missing" },
      { '{"execution_id":"","hook_id":"h","hook_type":"t"}', "execution_id must be 1..512" },
      { '{"execution_id":"e",' .. head .. ',"hook_context":"not base64!"}',
        "hook_context must be base64" },
      { '{"execution_id":"e",' .. head .. ',"hook_context":"aGVsbG8="}',
        "hook_context is not a size-prefixed LZ4 block" },
      { '{"execution_id":"e",' .. head .. ',"hook_context":"BQAAAFBoZWxsbw==","context_size":4}',
        "context_size 4 does not match hook_context (5 bytes)" },
      { '{"execution_id":"e",' .. head .. ',"duration_ms":-1}', "duration_ms must be an integer" },
      { '{"execution_id":"e",' .. head .. ',"timestamp":"today"}', "timestamp must be an integer" },
      { '{"execution_id":"e",' .. head .. ',"retention_priority":1.5}',
        "retention_priority must be an integer" },
      { '{"execution_id":"e",' .. head .. ',"modified_operation":1}',
        "modified_operation must be true or false" },
      { '{"execution_id":"e",' .. head .. ',"tags":"a"}', "tags must be an array" },
      { '{"execution_id":"e",' .. head .. ',"tags":["a",""]}', "tags[1] must be a text" },
      { '{"execution_id":"e",' .. head .. ',"metadata":[1]}', "metadata must be an object" },
      { '{"execution_id":"e",' .. head .. ',"component_id":7}', "component_id must be a string" },
      { '"not an object"', "a record must be an object" },
    }
    for _, case in ipairs(cases) do
      for _, dry in ipairs { false, true } do
        local err = code_of("format", function()
          import(db, '{"execution_id":"ok",' .. head .. '},' .. case[1], { dry_run = dry })
        end)
        assert.matches("hook_history[1]", err.message, 1, true)
        assert.matches(case[2], err.message, 1, true)
        assert.equal(0, db:hook_history():count())
      end
    end
    local st = import(db, '{"execution_id":"ok",' .. head .. '}', { dry_run = true })
    assert.equal(1, st.hooks)
    assert.equal(0, db:hook_history():count())
  end)
end)
