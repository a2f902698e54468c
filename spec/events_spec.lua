--- The event log, db:events() (COMPONENTS.md "Event log", docs/events.md):
-- the same contract on memory, SQLite (file and :memory:) and PostgreSQL,
-- plainly and inside a coroutine; then what each SQL backend stores
-- (sqlite3, psql as a role without BYPASSRLS), the plans queries run and
-- PostgreSQL's monthly partitions (made on demand, pruned, dropped by
-- cleanup_before); processes racing appends on one store; and the
-- event_log export section.
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

--- The sequences of a list of events.
local function seqs(events)
  local out = {}
  for i, e in ipairs(events) do out[i] = e.sequence end
  return out
end

--- The types of a list of events.
local function types(events)
  local out = {}
  for i, e in ipairs(events) do out[i] = e.type end
  return out
end

local Y1999 = 915148800   -- 1999-01-01T00:00:00Z
local Y2090 = 3786912000  -- 2090-01-01T00:00:00Z
local DAY = 86400

local function contract(backend, it, run_name)
  describe("events on " .. backend.name .. run_name, function()
    local db, e
    local backend_name = backend.name:match("^sqlite") and "sqlite" or backend.name

    before_each(function()
      if backend.setup then backend:setup() end
      db = backend.open(nil, backend)
      e = db:events()
    end)

    after_each(function()
      if db then
        pcall(function() db:events():cleanup_before(3e11) end) -- PostgreSQL drops partitions
        db:close()
      end
      if backend.teardown then backend:teardown() end
    end)

    describe("the object", function()
      it("is one per store, printed with kind, backend, tenant and rows", function()
        assert.equal(e, db:events())
        assert.equal("llmspell.storage.Events", getmetatable(e).__name)
        e:append { type = "a" }
        e:append { type = "b" }
        local s = tostring(e)
        assert.matches("^llmspell%.storage%.Events %(" .. backend_name .. " ", s)
        assert.matches("tenant " .. db:tenant() .. ", 2 rows)", s, 1, true)
      end)

      it("refuses use after its store closes", function()
        db:close()
        assert.equal("closed", code_of("closed", e.append, e, { type = "x" }).code)
        assert.equal("closed", code_of("closed", e.query, e).code)
        db = nil
      end)
    end)

    describe("append", function()
      it("hands out sequences 1, 2, 3 ... and fills in what is left out", function()
        local t0 = os.time()
        assert.equal(1, e:append { type = "agent.start" })
        assert.equal(2, e:append { type = "agent.step", id = "mine", data = { n = 1 },
                                   correlation_id = "run-1", language = "rust",
                                   timestamp = 1700000000.5 })
        local all = e:query()
        assert.same({ 1, 2 }, seqs(all))
        local a, b = all[1], all[2]
        assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", a.id)
        assert.equal("lua", a.language)
        assert.is_nil(a.data)
        assert.is_nil(a.correlation_id)
        assert.is_true(a.timestamp >= t0 and a.timestamp <= os.time() + 1)
        assert.same({ id = "mine", type = "agent.step", data = { n = 1 }, correlation_id = "run-1",
                      language = "rust", timestamp = 1700000000.5, sequence = 2 }, b)
      end)

      it("keeps data exactly: int64, floats, nesting, strings, arrays", function()
        local data = { big = 9007199254740993, neg = -42, f = 0.1, s = "caf\u{e9}",
                       list = storage.array { 1, "two", { three = 3 } }, t = true,
                       nested = { deeper = { deepest = "yes" } } }
        e:append { type = "x", data = data }
        e:append { type = "y", data = "plain" }
        e:append { type = "z", data = 12 }
        local all = e:query()
        assert.same(data, all[1].data)
        assert.equal("integer", math.type(all[1].data.big))
        assert.equal("plain", all[2].data)
        assert.equal(12, all[3].data)
      end)

      it("takes any date of years 1 to 9999", function()
        local when = { Y1999, Y2090, -62135596800, 253402300799, 0, -1.5 }
        for i, t in ipairs(when) do e:append { type = "t" .. i, timestamp = t } end
        local got = {}
        for _, ev in ipairs(e:query()) do got[#got + 1] = ev.timestamp end
        assert.same(when, got)
        for _, bad in ipairs { -62135596801, 253402300800, 0 / 0, math.huge } do
          local err = argerror_of(e.append, e, { type = "bad", timestamp = bad })
          assert.matches("timestamp must be seconds since the epoch within years 1..9999", err,
                         1, true)
        end
        assert.equal(#when, e:count())
      end)

      it("appends a batch atomically, with consecutive sequences", function()
        e:append { type = "first" }
        assert.same({ 2, 3, 4 }, e:append_batch { { type = "a" }, { type = "b" }, { type = "c" } })
        assert.same({}, e:append_batch {})
        local err = argerror_of(e.append_batch, e, { { type = "ok" }, { data = 1 }, { type = "c" } })
        assert.matches("events[2].type is missing", err, 1, true)
        err = argerror_of(e.append_batch, e, { { type = "ok" }, { type = "b", when = 1 } })
        assert.matches("events[2]: ", err, 1, true)
        assert.matches("when", err, 1, true)
        err = argerror_of(e.append_batch, e, { { type = "ok" }, "nope" })
        assert.matches("table expected", err, 1, true)
        assert.equal(4, e:count())
        assert.equal(5, e:append { type = "next" }) -- nothing was consumed by the failures
        local big = {}
        for i = 1, 10000 do big[i] = { type = "bulk", data = i } end
        local got = e:append_batch(big)
        assert.same({ 6, 10005 }, { got[1], got[10000] })
        assert.equal(10005, e:count())
      end)

      it("refuses bad arguments naming them, and writes nothing", function()
        local cases = {
          { {}, "type is missing" },
          { { type = "" }, "type must be 1..255 bytes" },
          { { type = ("t"):rep(256) }, "type must be 1..255 bytes" },
          { { type = 7 }, "type: string expected, got number" },
          { { type = "t", id = "" }, "id must be 1..512 bytes" },
          { { type = "t", correlation_id = {} }, "correlation_id: string expected" },
          { { type = "t", language = "" }, "language must be 1..255 bytes" },
          { { type = "t", timestamp = "now" }, "timestamp" },
          { { type = "t", data = function() end }, "data" },
          { { type = "t", data = { s = "nul\0byte" } }, "data.s: strings must be UTF-8 text without NUL" },
          { { type = "t", typo = 1 }, "typo" },
          { { type = "bad\255utf8" }, "type must be UTF-8" },
        }
        for _, case in ipairs(cases) do
          local err = argerror_of(e.append, e, case[1])
          assert.matches(case[2], err, 1, true)
        end
        argerror_of(e.append, e, "not a table")
        argerror_of(e.append_batch, e, "not a table")
        assert.equal(0, e:count())
      end)

      it("joins the store's transactions: a rollback takes its sequences back", function()
        e:append { type = "kept" }
        local err = helpers.error_of(db.transaction, db, function()
          e:append { type = "undone" }
          e:append_batch { { type = "undone" }, { type = "undone" } }
          error({ code = "mine" })
        end)
        assert.equal("mine", err.code)
        assert.same({ "kept" }, types(e:query()))
        assert.equal(2, e:append { type = "after" }) -- no gap
        db:transaction(function()
          assert.equal(3, e:append { type = "in tx" })
          assert.same({ 1, 2, 3 }, seqs(e:query())) -- reads see the transaction's writes
        end)
        assert.equal(3, e:count())
      end)
    end)

    describe("query", function()
      before_each(function()
        e:append_batch {
          { type = "agent.start", correlation_id = "r1", timestamp = Y1999 },
          { type = "agent.step", correlation_id = "r1", timestamp = Y1999 + DAY },
          { type = "tool.a", correlation_id = "r2", timestamp = Y1999 + 2 * DAY },
          { type = "tool.bb", timestamp = Y1999 + 40 * DAY },
          { type = "agent.stop", correlation_id = "r1", timestamp = Y2090 },
          { type = "literal[x]%_*", timestamp = Y2090 + 1 },
          { type = "agentXstart", timestamp = Y2090 + 2 },
        }
      end)

      it("returns everything in sequence order, or newest first", function()
        assert.same({ 1, 2, 3, 4, 5, 6, 7 }, seqs(e:query()))
        assert.same({ 7, 6, 5, 4, 3, 2, 1 }, seqs(e:query { order = "desc" }))
        assert.same({ 1, 2, 3 }, seqs(e:query { limit = 3 }))
        assert.same({ 7, 6 }, seqs(e:query { order = "desc", limit = 2 }))
        assert.same({ 6, 7 }, seqs(e:query { after_sequence = 5 }))
        assert.same({ 7, 6 }, seqs(e:query { after_sequence = 5, order = "desc" }))
        assert.same({}, e:query { after_sequence = 7 })
      end)

      it("matches type globs (* and ?) and literal types", function()
        assert.same({ 1, 2, 5 }, seqs(e:query { type = "agent.*" }))
        assert.same({ 3 }, seqs(e:query { type = "tool.?" }))
        assert.same({ 3, 4 }, seqs(e:query { type = "tool.*" }))
        assert.same({ 4 }, seqs(e:query { type = "*.?*b*" }))
        assert.same({ 4 }, seqs(e:query { type = "*b" }))
        assert.same({ 1, 7 }, seqs(e:query { type = "agent?start" }))
        assert.same({ 2 }, seqs(e:query { type = "agent.step" }))
        assert.same({}, seqs(e:query { type = "agent" }))
        assert.same({ 6 }, seqs(e:query { type = "literal[x]%_*" }))   -- glob: * at the end
        assert.same({ 6 }, seqs(e:query { type = "literal[x]%_?" }))
        assert.same({}, seqs(e:query { type = "literal_x_%_*" }))      -- _ and % are literal
        assert.same({ 6 }, seqs(e:query { type = "*[x]*" }))
        assert.same({ 5 }, seqs(e:query { type = "agent.*", order = "desc", limit = 1 }))
      end)

      it("selects a time range [from, to), by correlation id, and combined", function()
        assert.same({ 1, 2, 3 }, seqs(e:query { from = Y1999, to = Y1999 + 3 * DAY }))
        assert.same({ 2 }, seqs(e:query { from = Y1999 + 1, to = Y1999 + 2 * DAY }))
        assert.same({ 5, 6, 7 }, seqs(e:query { from = Y2090 }))
        assert.same({ 1, 2, 3, 4 }, seqs(e:query { to = Y2090 }))
        assert.same({}, seqs(e:query { from = Y2090 + 2, to = Y2090 + 2 }))
        assert.same({ 1, 2, 5 }, seqs(e:query { correlation_id = "r1" }))
        assert.same({ 5, 2 }, seqs(e:query { correlation_id = "r1", order = "desc", limit = 2 }))
        assert.same({ 2 }, seqs(e:query { correlation_id = "r1", type = "agent.s?ep" }))
        assert.same({ 1, 2 }, seqs(e:query { correlation_id = "r1", to = Y2090 }))
        assert.same({ 3, 4 }, seqs(e:query { type = "tool.*", from = Y1999, to = Y2090 }))
        assert.same({ 5 }, seqs(e:query { type = "agent.stop", from = Y1999 + DAY }))
        assert.same({ 5 }, seqs(e:query { type = "agent.*", after_sequence = 2 }))
        assert.same({}, seqs(e:query { correlation_id = "none" }))
      end)

      it("refuses bad options naming them", function()
        local cases = {
          { { type = "" }, "type must be 1..255 bytes" },
          { { from = "x" }, "from" },
          { { to = 0 / 0 }, "to: finite seconds" },
          { { limit = 0 }, "limit" },
          { { after_sequence = -1 }, "after_sequence must be an integer >= 0" },
          { { after_sequence = 1.5 }, "after_sequence must be an integer >= 0" },
          { { order = "up" }, 'order must be "asc" or "desc"' },
          { { correlation_id = 1 }, "correlation_id: string expected" },
          { { limt = 3 }, "limt" },
        }
        for _, case in ipairs(cases) do
          assert.matches(case[2], argerror_of(e.query, e, case[1]), 1, true)
          assert.matches(case[2], argerror_of(e.iter, e, case[1]), 1, true)
        end
      end)
    end)

    describe("iter", function()
      it("streams what query returns, page by page, in both orders", function()
        local batch = {}
        for i = 1, 700 do
          batch[i] = { type = i % 3 == 0 and "tool.x" or "agent.x", data = i,
                       timestamp = Y1999 + i * 3600, correlation_id = "c" .. (i % 2) }
        end
        e:append_batch(batch)
        for _, q in ipairs {
          {}, { order = "desc" }, { type = "tool.*" }, { limit = 300 }, { limit = 256 },
          { after_sequence = 100, limit = 513 }, { correlation_id = "c1", order = "desc" },
          { from = Y1999 + 100 * 3600, to = Y1999 + 650 * 3600, order = "desc", limit = 400 },
        } do
          local got = {}
          for ev in e:iter(q) do got[#got + 1] = ev end
          assert.same(e:query(q), got)
        end
        local n = 0
        for ev in e:iter { type = "nothing" } do n = n + ev.sequence end
        assert.equal(0, n)
      end)

      it("sees appends made while it runs, after its position", function()
        for i = 1, 300 do e:append { type = "t", data = i } end
        local n = 0
        for _ in e:iter() do
          n = n + 1
          if n == 1 then e:append { type = "late" } end
        end
        assert.equal(301, n)
      end)
    end)

    describe("cleanup_before and stats", function()
      it("removes the events older than t, and counts them", function()
        e:append_batch {
          { type = "old", timestamp = Y1999 }, { type = "old", timestamp = Y1999 + 40 * DAY },
          { type = "mid", timestamp = Y1999 + 400 * DAY },
          { type = "new", timestamp = Y2090 },
        }
        assert.equal(0, e:cleanup_before(Y1999))
        assert.equal(2, e:cleanup_before(Y1999 + 41 * DAY))
        assert.same({ "mid", "new" }, types(e:query()))
        assert.equal(5, e:append { type = "after" }) -- sequences are never reused
        assert.equal(1, e:cleanup_before(Y1999 + 401 * DAY))
        assert.equal(0, e:cleanup_before(Y1999 + 401 * DAY))
        assert.matches("t: finite seconds", argerror_of(e.cleanup_before, e, 0 / 0), 1, true)
        argerror_of(e.cleanup_before, e, "soon")
        assert.same({ "new", "after" }, types(e:query()))
      end)

      it("counts events, bytes, the time span and each type", function()
        assert.same({ events = 0, bytes = 0, by_type = {} }, e:stats())
        e:append_batch {
          { type = "a", data = { x = 1 }, timestamp = Y1999 },
          { type = "b", timestamp = Y2090 },
          { type = "a", data = "text", timestamp = 1700000000.25 },
        }
        local st = e:stats()
        assert.same({ 3, Y1999, Y2090, { a = 2, b = 1 } },
                    { st.events, st.oldest, st.newest, st.by_type })
        assert.is_true(st.bytes >= #'{"x":1}' + #"null" + #'"text"', tostring(st.bytes))
      end)
    end)

    if backend.shared then
      it("keeps each tenant's events apart, sequences too", function()
        local other = backend.open({ tenant = helpers.unique_tenant("other") }, backend)
        finally(function()
          other:events():cleanup_before(3e11)
          other:close()
        end)
        e:append { type = "mine", correlation_id = "c" }
        e:append { type = "mine" }
        assert.equal(1, other:events():append { type = "theirs", correlation_id = "c" })
        assert.same({ "mine", "mine" }, types(e:query()))
        assert.same({ "theirs" }, types(other:events():query { correlation_id = "c" }))
        assert.equal(1, other:events():cleanup_before(3e11))
        assert.equal(2, e:count())
      end)
    end
  end)
end

for _, run in ipairs(helpers.runs(it)) do
  for _, backend in ipairs(helpers.backends()) do contract(backend, run.it, run.name) end
end

describe("events in a SQLite file", function()
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

  it("is a table sqlite3 reads: texts, JSON, microseconds, the counter", function()
    db:events():append { type = "a.b", id = "e1", data = { k = 1 }, correlation_id = "c",
                         timestamp = 1700000000.5 }
    db:events():append { type = "a.c", id = "e2" }
    assert.equal("acme|1|e1|a.b|c|1700000000500000|lua|{\"k\":1}",
                 sqlite3("SELECT tenant_id, sequence, event_id, event_type, correlation_id,"
                         .. " timestamp, language, payload FROM event_log ORDER BY sequence"
                         .. " LIMIT 1"))
    assert.equal("acme|2", sqlite3("SELECT * FROM event_log_sequences"))
    assert.matches("CHECK constraint failed",
                   select(2, pcall(sqlite3, "UPDATE event_log SET sequence = 0")), 1, true)
  end)

  it("runs each kind of query on its index", function()
    local function plan(index, where, order)
      return sqlite3("EXPLAIN QUERY PLAN SELECT * FROM event_log" .. index
                     .. " WHERE tenant_id = 'acme' AND " .. where
                     .. " AND (NULL IS NULL OR event_type GLOB 'x')"
                     .. " ORDER BY sequence " .. (order or "") .. " LIMIT 10")
    end
    local TIME, SEQ = " AND timestamp >= 0 AND timestamp < 9", " AND sequence > 0 AND sequence < 9"
    -- the shapes events.c sends
    local corr = plan(" INDEXED BY event_log_correlation", "correlation_id = 'c'" .. TIME .. SEQ,
                      "DESC")
    assert.matches("event_log_correlation (tenant_id=? AND correlation_id=? AND sequence>? AND"
                   .. " sequence<?)", corr, 1, true)
    assert.not_matches("TEMP B-TREE", corr, 1, true) -- the index ends with the sequence
    assert.matches("event_log_type (tenant_id=? AND event_type=? AND timestamp>? AND timestamp<?)",
                   plan(" INDEXED BY event_log_type", "event_type = 'x'" .. TIME .. SEQ), 1, true)
    assert.matches("event_log_type (tenant_id=? AND event_type>? AND event_type<?)",
                   plan(" INDEXED BY event_log_type", "event_type >= 'a.' AND event_type < 'a/'"
                        .. " AND event_type GLOB 'a.*'" .. TIME .. SEQ), 1, true)
    assert.matches("event_log_time (tenant_id=? AND timestamp>? AND timestamp<?)",
                   plan(" INDEXED BY event_log_time", "timestamp >= 0 AND timestamp < 9" .. SEQ),
                   1, true)
    local seq = plan("", "sequence > 5 AND sequence < 99 AND +timestamp >= 0 AND +timestamp < 9",
                     "DESC")
    assert.matches("PRIMARY KEY (tenant_id=? AND sequence>? AND sequence<?)", seq, 1, true)
    assert.not_matches("TEMP B-TREE", seq, 1, true)
  end)
end)

describe("events in PostgreSQL", function()
  local SCHEMA = "llmspell_evspec"
  local READER = "llmspell_evspec_reader" -- NOLOGIN, no BYPASSRLS
  local acme, globex
  local H = {} -- partition suffix of each tenant: the first 16 hex digits of md5(tenant)

  local function open(tenant)
    return storage.open { backend = "postgres", url = helpers.pg_url(), schema = SCHEMA,
                          tenant = tenant }
  end

  local function partitions()
    return pg.psql("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                   .. " WHERE n.nspname = '" .. SCHEMA .. "' AND c.relname LIKE 'event\\_log\\_%'"
                   .. " AND c.relkind IN ('r', 'p') AND c.relname <> 'event_log_sequences'"
                   .. " ORDER BY 1")
  end

  setup(function()
    pg.psql("SET client_min_messages = warning; DROP SCHEMA IF EXISTS " .. SCHEMA
            .. " CASCADE; DROP ROLE IF EXISTS " .. READER .. "; CREATE ROLE " .. READER
            .. " NOLOGIN NOSUPERUSER NOBYPASSRLS;")
    open("acme"):close() -- creates the schema
    for _, t in ipairs { "acme", "globex" } do
      H[t] = pg.psql1("SELECT left(md5('" .. t .. "'), 16)")
    end
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
      db:events():cleanup_before(3e11)
      db:close()
    end
  end)

  it("makes a month partition per tenant on demand, any year, in the writing transaction", function()
    assert.same({}, partitions())
    acme:events():append { type = "x", timestamp = Y1999 + 5 * DAY }
    acme:events():append_batch { { type = "y", timestamp = Y2090 }, { type = "z", timestamp = 0 } }
    globex:events():append { type = "g", timestamp = Y1999 + 30 * DAY }
    assert.same({ "event_log_1970_01", "event_log_1970_01_" .. H.acme, "event_log_1999_01",
                  "event_log_1999_01_" .. H.acme, "event_log_1999_01_" .. H.globex,
                  "event_log_2090_01", "event_log_2090_01_" .. H.acme }, partitions())
    assert.equal("FOR VALUES FROM ('1999-01-01 00:00:00+00') TO ('1999-02-01 00:00:00+00')",
                 pg.psql1("SET TIME ZONE 'UTC'; SELECT pg_get_expr(relpartbound, oid) FROM pg_class"
                          .. " WHERE oid = '" .. SCHEMA .. ".event_log_1999_01'::regclass"))
    -- a rolled-back transaction takes its partitions with it
    pcall(acme.transaction, acme, function()
      acme:events():append { type = "gone", timestamp = Y2090 + 400 * DAY }
      error("undo")
    end)
    assert.equal(7, #partitions())
    assert.equal(3, acme:events():count())
  end)

  it("keeps each tenant's rows from a role without BYPASSRLS, on every partition", function()
    acme:events():append_batch { { type = "a1", timestamp = Y1999 }, { type = "a2", timestamp = Y1999 } }
    globex:events():append { type = "g1", timestamp = Y1999 }
    pg.psql("GRANT USAGE ON SCHEMA " .. SCHEMA .. " TO " .. READER .. "; GRANT SELECT ON ALL TABLES"
            .. " IN SCHEMA " .. SCHEMA .. " TO " .. READER .. ";")
    local as = "SET ROLE " .. READER .. ";\n"
    for _, tbl in ipairs { "event_log", "event_log_1999_01", "event_log_1999_01_" .. H.globex } do
      local q = "SELECT count(*), string_agg(tenant_id || ':' || event_type, ',' ORDER BY"
                .. " event_type) FROM " .. SCHEMA .. "." .. tbl .. ";"
      assert.equal("0|", pg.psql1(as .. q))
      local want = tbl:match(H.globex) and "0|" or "2|acme:a1,acme:a2"
      assert.equal(want, pg.psql1(as .. "SELECT set_config('app.current_tenant_id', 'acme',"
                                  .. " false);\n" .. q), tbl)
      assert.equal("1|globex:g1", pg.psql1(as .. "SELECT set_config('app.current_tenant_id',"
                                           .. " 'globex', false);\n" .. q), tbl)
    end
    for _, tbl in ipairs { "event_log", "event_log_sequences", "event_log_1999_01",
                           "event_log_1999_01_" .. H.acme, "event_log_1999_01_" .. H.globex } do
      assert.equal("t|t|t", pg.psql1("SELECT relrowsecurity, relforcerowsecurity, EXISTS (SELECT 1"
        .. " FROM pg_policy WHERE polrelid = c.oid) FROM pg_class c WHERE oid = '" .. SCHEMA .. "."
        .. tbl .. "'::regclass"), tbl)
    end
    assert.same({}, acme:check())
  end)

  it("reads only the months a time range covers (partition pruning)", function()
    local batch = {}
    for m = 0, 5 do batch[#batch + 1] = { type = "m", timestamp = Y1999 + m * 31 * DAY } end
    acme:events():append_batch(batch)
    globex:events():append { type = "m", timestamp = Y1999 + 31 * DAY }
    local plan = table.concat(pg.psql("EXPLAIN SELECT * FROM " .. SCHEMA .. ".event_log"
      .. " WHERE tenant_id = 'acme' AND timestamp >= '1999-02-10Z' AND timestamp < '1999-02-11Z'"),
      "\n")
    assert.matches("event_log_1999_02_" .. H.acme, plan, 1, true)
    for _, other in ipairs { "event_log_1999_01_", "event_log_1999_03_", "event_log_1999_02_"
                             .. H.globex } do
      assert.not_matches(other, plan, 1, true)
    end
    -- the statement the library prepares prunes too (at run time, once the plan is generic)
    for _ = 1, 8 do
      local got = acme:events():query { from = Y1999 + 31 * DAY, to = Y1999 + 32 * DAY }
      assert.same({ 1, Y1999 + 31 * DAY }, { #got, got[1].timestamp })
    end
    plan = table.concat(pg.psql("SET plan_cache_mode = force_generic_plan;"
      .. " PREPARE q(text, timestamptz, timestamptz) AS SELECT * FROM " .. SCHEMA .. ".event_log"
      .. " WHERE tenant_id = $1 AND timestamp >= $2 AND timestamp < $3;"
      .. " EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE q('acme',"
      .. " '1999-02-10Z', '1999-02-11Z');"), "\n")
    assert.matches("Subplans Removed", plan, 1, true)
  end)

  it("drops whole old months of one tenant in cleanup_before, deletes the rest", function()
    local batch = {}
    for m = 0, 3 do
      batch[#batch + 1] = { type = "a", timestamp = Y1999 + m * 31 * DAY }
      batch[#batch + 1] = { type = "a", timestamp = Y1999 + m * 31 * DAY + 20 * DAY }
    end
    acme:events():append_batch(batch)
    globex:events():append { type = "g", timestamp = Y1999 + 5 * DAY }
    -- 1999-01 and 1999-02 wholly before 1999-03-12; 1999-03 partly (one row)
    assert.equal(5, acme:events():cleanup_before(Y1999 + 70 * DAY))
    local left = partitions()
    assert.same({ "event_log_1999_01", "event_log_1999_01_" .. H.globex, "event_log_1999_03",
                  "event_log_1999_03_" .. H.acme, "event_log_1999_04",
                  "event_log_1999_04_" .. H.acme }, left)
    assert.equal(1, globex:events():count())
    assert.equal(3, acme:events():count())
    assert.equal(1, globex:events():cleanup_before(Y2090))
    assert.equal(4, #partitions()) -- the month without tenants left went too
  end)
end)

-- Processes append to one store all of them reach. Each child opens it,
-- says "ready", waits for the go file and appends N events (singly and
-- in batches), printing each sequence it got. The counter row serialises
-- them: the sequences handed out are 1..total, each once, and each
-- process's grow.
local CHILD = [[
local storage = require "llmspell.storage"
local system = require "system"
local kind, target, tenant, go, n, me = ...
local db = kind == "sqlite" and storage.open { backend = "sqlite", path = target, tenant = tenant }
           or storage.open { backend = "postgres", url = target, tenant = tenant }
local e = db:events()
io.stdout:setvbuf("full")
io.stderr:write("ready\n")
while not io.open(go) do system.sleep(0.001) end
local out, done, round = {}, 0, 0
n = tonumber(n)
while done < n do
  round = round + 1
  if round % 2 == 1 then
    for _ = 1, math.min(5, n - done) do
      done = done + 1
      out[#out + 1] = e:append { type = "race." .. me, data = done }
    end
  else
    local batch = {}
    for i = 1, math.min(45, n - done) do batch[i] = { type = "race." .. me, data = done + i } end
    for _, s in ipairs(e:append_batch(batch)) do out[#out + 1] = s end
    done = done + #batch
  end
end
print(table.concat(out, " "))
db:close()
]]

for _, b in ipairs {
  { name = "SQLite", kind = "sqlite", procs = 2 },
  { name = "PostgreSQL", kind = "postgres", procs = 4 },
} do
  describe(b.procs .. " processes appending to one " .. b.name .. " store", function()
    local N = 10000
    local tenant, path, script, go

    before_each(function()
      tenant = helpers.unique_tenant("evrace")
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

    it("end with procs x N distinct, gap-free sequences and every event", function()
      local db = open() -- the schema exists before the children race
      local target = b.kind == "sqlite" and path or helpers.pg_url()
      local argv = {}
      for i = 1, b.procs do argv[i] = { script, b.kind, target, tenant, go, N, i } end
      local seen, total = {}, 0
      for i, out in ipairs(helpers.race(argv, go)) do
        local last = 0
        for x in out:gmatch("%d+") do
          x = tonumber(x)
          assert.is_true(x > last, "a process's sequences grow")
          last = x
          assert.is_nil(seen[x], "sequence " .. x .. " handed out twice")
          seen[x] = i
          total = total + 1
        end
      end
      assert.equal(b.procs * N, total)
      for x = 1, b.procs * N do assert.is_truthy(seen[x], "sequence " .. x .. " missing") end
      local e = db:events()
      assert.equal(b.procs * N, e:count())
      local x, per = 0, {}
      for ev in e:iter() do
        x = x + 1
        assert.equal(x, ev.sequence)
        assert.equal("race." .. seen[x], ev.type) -- the process that was handed it wrote it
        local me = tonumber(ev.type:match("%d+$"))
        per[me] = (per[me] or 0) + 1
        assert.equal(per[me], ev.data) -- each process's events in its order, none lost
      end
      assert.equal(b.procs * N, x)
      e:cleanup_before(3e11)
      db:close()
    end)
  end)
end

-- The "event_log" export section: rs-llmspell's EventExport records,
-- through every backend and back.
describe("the event_log section", function()
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
    return storage.json_decode(storage.exporter(db):to_string()).data.event_log
  end

  local function import(db, records, opts)
    return storage.importer(db):from_string('{"version":"1.0","data":{"event_log":['
                                            .. records .. ']}}', opts)
  end

  before_each(function()
    tenant = helpers.unique_tenant("evx")
    path = helpers.tmpname(".db")
    stores = {}
  end)

  after_each(function()
    for _, db in ipairs(stores) do
      if pcall(db.tenant, db) then
        db:events():cleanup_before(3e11)
        db:close()
      end
    end
    helpers.remove_db(path)
  end)

  it("round-trips memory -> SQLite -> PostgreSQL -> memory, record for record", function()
    local mem = open("memory")
    local batch = {}
    for i = 1, 600 do
      batch[i] = { type = "t" .. (i % 4), data = { i = i, f = i / 8 }, timestamp = Y1999 + i * DAY,
                   correlation_id = i % 3 == 0 and "c" .. i or nil,
                   language = i % 2 == 0 and "lua" or "rust" }
    end
    mem:events():append_batch(batch)
    mem:events():cleanup_before(Y1999 + 10.5 * DAY) -- sequences from 11 on
    local want = section(mem)
    assert.equal(590, #want)
    local r = want[1]
    local fields = {}
    for k in pairs(r) do fields[#fields + 1] = k end
    table.sort(fields)
    assert.same({ "correlation_id", "event_id", "event_type", "id", "language", "payload",
                  "sequence", "tenant_id", "timestamp" }, fields)
    assert.same({ 11, tenant, "", (Y1999 + 11 * DAY) * 1000000, r.event_id, "rust" },
                { r.sequence, r.tenant_id, r.correlation_id, r.timestamp, r.id, r.language })
    assert.same({ id = r.event_id, event_type = "t3", data = { i = 11, f = 11 / 8 },
                  language = "rust", timestamp = "1999-01-12T00:00:00.000000Z", sequence = 11,
                  metadata = {}, schema_version = "1.0" }, r.payload)
    assert.equal("c12", want[2].payload.metadata.correlation_id)
    local doc = storage.exporter(mem):to_string()
    for _, kind in ipairs { "sqlite", "postgres", "memory" } do
      local db = open(kind)
      local st = storage.importer(db):from_string(doc)
      assert.equal(590, st.events)
      assert.same(want, section(db))
      assert.same(mem:events():query(), db:events():query())
      assert.equal(601, db:events():append { type = "more" }) -- counting carries on
      db:events():cleanup_before(3e11)
      storage.importer(db):from_string(doc)
      doc = storage.exporter(db):to_string()
    end
    assert.same(want, section(stores[#stores]))
  end)

  it("imports rs-llmspell's records, short forms too, on every backend", function()
    local records = '{"id":"6f1c2b1e-0000-4000-8000-000000000001","tenant_id":"rs",'
      .. '"event_id":"e-1","event_type":"agent.state_changed",'
      .. '"correlation_id":"0b3c2a1e-0000-4000-8000-00000000000c",'
      .. '"timestamp":1700000000000000,"sequence":7,"language":"rust",'
      .. '"payload":{"id":"e-1","event_type":"agent.state_changed","data":{"from":"idle"},'
      .. '"language":"rust","timestamp":"2023-11-14T22:13:20Z","sequence":7,'
      .. '"metadata":{"correlation_id":"0b3c2a1e-0000-4000-8000-00000000000c","source":null,'
      .. '"target":null,"tags":[],"priority":0,"ttl":null},"schema_version":"1.0"}},'
      .. '{"event_type":"tool.done","timestamp":1700000001000000,"payload":{"ok":true}},'
      .. '{"payload":{"id":"e-3","event_type":"from.payload","data":[1,2]}}'
    for _, kind in ipairs { "memory", "sqlite", "postgres" } do
      local db = open(kind)
      local t0 = os.time()
      local st = import(db, records)
      assert.equal(3, st.events)
      local all = db:events():query()
      assert.same({ 7, 8, 9 }, seqs(all))
      assert.same({ id = "e-1", type = "agent.state_changed", data = { from = "idle" },
                    correlation_id = "0b3c2a1e-0000-4000-8000-00000000000c", language = "rust",
                    timestamp = 1700000000, sequence = 7 }, all[1])
      assert.same({ "tool.done", { ok = true }, "lua", 1700000001 },
                  { all[2].type, all[2].data, all[2].language, all[2].timestamp })
      assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", all[2].id)
      assert.same({ "e-3", "from.payload", { 1, 2 } }, { all[3].id, all[3].type, all[3].data })
      assert.is_true(all[3].timestamp >= t0 and all[3].timestamp <= os.time() + 1)
      assert.equal(10, db:events():append { type = "next" })
    end
  end)

  it("resolves conflicts by (id, timestamp): replace, skip, error", function()
    local db = open("sqlite")
    local e = db:events()
    e:append { id = "x", type = "mine", timestamp = 1000 }
    e:append { id = "y", type = "mine", timestamp = 1000 }
    local function doc(ty)
      return '{"event_id":"x","event_type":"' .. ty .. '","timestamp":1000000000,"sequence":1},'
             .. '{"event_id":"x","event_type":"other time","timestamp":2000000000,"sequence":2},'
             .. '{"event_id":"z","event_type":"new","timestamp":1000000000}'
    end
    local st = import(db, doc("theirs"), { on_conflict = "skip" })
    assert.same({ 2, 1 }, { st.events, st.skipped })
    -- x at 1000 kept; x at 2000 is another event: its sequence 2 was taken, so it got 3
    assert.same({ "mine", "mine", "other time", "new" }, types(e:query()))
    assert.same({ 1, 2, 3, 4 }, seqs(e:query()))
    local err = code_of("conflict", function() import(db, doc("theirs"), { on_conflict = "error" }) end)
    assert.matches("event 'x' at 1000000000 exists", err.message, 1, true)
    assert.equal(4, e:count()) -- all or nothing
    import(db, doc("theirs"))
    local all = e:query()
    -- x at 1000 takes sequence 1 again (freed by its own replacement); x at 2000
    -- asks for 2, which y holds, and z for none: both take the next ones
    assert.same({ "theirs", "mine", "other time", "new" }, types(all))
    assert.same({ 1, 2, 5, 6 }, seqs(all))
  end)

  it("refuses a bad record naming it and the field, writing nothing, dry run too", function()
    local db = open("memory")
    local cases = {
      { '{"event_id":"a"}', "event 'a': event_type is missing" },
      { '{"event_type":""}', "event_type must be 1..255 bytes" },
      { '{"event_type":"t","timestamp":-62135596800000001}', "timestamp must be an integer in" },
      { '{"event_type":"t","timestamp":1.5}', "timestamp must be an integer" },
      { '{"event_type":"t","sequence":0}', "sequence must be an integer in [1, " },
      { '{"event_type":"t","sequence":"7"}', "sequence must be an integer" },
      { '{"event_type":"t","language":""}', "language must be 1..255 bytes" },
      { '{"event_type":"t","correlation_id":5}', "correlation_id must be a string" },
      { '{"event_type":"t","event_id":7}', "event_id must be a string" },
      { '{"event_type":"t","payload":{"s":"nul\\u0000"}}', "payload must not hold NUL" },
      { '"not an object"', "a record must be an object" },
    }
    for _, case in ipairs(cases) do
      for _, dry in ipairs { false, true } do
        local err = code_of("format", function()
          import(db, '{"event_type":"ok"},' .. case[1], { dry_run = dry })
        end)
        assert.matches("event_log[1]", err.message, 1, true)
        assert.matches(case[2], err.message, 1, true)
        assert.equal(0, db:events():count())
      end
    end
    local st = import(db, '{"event_type":"ok"}', { dry_run = true })
    assert.equal(1, st.events)
    assert.equal(0, db:events():count())
  end)
end)
