--- PostgreSQL-specific behaviour: tenant isolation enforced by the database
-- (row-level security), literal storage of hostile strings, migrations,
-- batches in one round trip, reconnects and error mapping. The shared KV
-- contract (spec/kv_contract_spec.lua) covers the API itself.
--
-- Needs LLMSPELL_TEST_PG_URL (a superuser URL; `make test` starts a
-- throwaway server) and `psql`. Without a URL every test fails: never a skip.
-- Everything lives in its own schemas (llmspell_pgspec*) and roles
-- (llmspell_pgspec_*), dropped and recreated here, so other specs and
-- earlier runs do not interfere.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

local SCHEMA = "llmspell_pgspec"
local READER = "llmspell_pgspec_reader" -- NOLOGIN, no BYPASSRLS: raw SQL via SET ROLE
local APP = "llmspell_pgspec_app"       -- LOGIN, no BYPASSRLS: the library as a plain role
local APP_PASSWORD = "pgspec-app"

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- The URL with extra libpq parameters (later parameters override earlier
-- ones, so this also replaces a user given in the URL).
local function url_with(url, params)
  if url:match("^postgres") then
    return url .. (url:find("?", 1, true) and "&" or "?") .. params
  end
  return url .. " " .. params:gsub("&", " ")
end

--- Runs SQL through psql as the URL's user; returns the output lines
-- (unaligned, tuples only). Fails the test when psql fails, unless
-- allow_error, in which case it also returns false and the output.
local function psql(sql, allow_error)
  local file = helpers.tmpname(".sql")
  local f = assert(io.open(file, "w"))
  f:write(sql, "\n")
  f:close()
  -- env -u: under `make asan` the sanitizer runtime is preloaded for lua;
  -- psql's own leaks at exit would make it fail.
  local cmd = string.format("env -u LD_PRELOAD psql %s -X -q -A -t -F '|' "
                            .. "-v ON_ERROR_STOP=1 -f %s 2>&1",
                            shell_quote(helpers.pg_url()), shell_quote(file))
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  os.remove(file)
  if not ok and not allow_error then error("psql failed: " .. out .. "\nSQL: " .. sql, 2) end
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines, ok, out
end

--- The last line psql printed (the result of the last SELECT).
local function psql1(sql) local lines = psql(sql); return lines[#lines] end

--- A SQL string literal (standard_conforming_strings is on since 9.1).
local function lit(s) return "'" .. s:gsub("'", "''") .. "'" end

local function open(tenant, extra)
  local o = { backend = "postgres", url = helpers.pg_url(), tenant = tenant, schema = SCHEMA }
  for k, v in pairs(extra or {}) do o[k] = v end
  return storage.open(o)
end

--- Ends every connection the library holds, as an administrator would.
local function terminate_library_connections()
  return psql1("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
               .. " WHERE application_name = 'llmspell.storage'")
end

local function kv_count(where)
  return tonumber(psql1("SELECT count(*) FROM " .. SCHEMA .. ".kv_store WHERE " .. where))
end

describe("PostgreSQL backend", function()
  local acme, globex

  setup(function()
    helpers.pg_url() -- raises (failing every test) when there is no server
    psql(table.concat({
      "SET client_min_messages = warning;",
      "DROP SCHEMA IF EXISTS " .. SCHEMA .. " CASCADE;",
      "DROP SCHEMA IF EXISTS " .. SCHEMA .. "_v CASCADE;",
      "DROP SCHEMA IF EXISTS " .. SCHEMA .. "_race CASCADE;",
      "DROP ROLE IF EXISTS " .. READER .. ";",
      "DROP ROLE IF EXISTS " .. APP .. ";",
      "CREATE ROLE " .. READER .. " NOLOGIN NOSUPERUSER NOBYPASSRLS;",
      "CREATE ROLE " .. APP .. " LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD "
        .. lit(APP_PASSWORD) .. ";",
    }, "\n"))
    -- The first open creates the schema (migration 1).
    local db = open("acme")
    db:close()
    psql(table.concat({
      "GRANT USAGE ON SCHEMA " .. SCHEMA .. " TO " .. READER .. ", " .. APP .. ";",
      "GRANT SELECT ON " .. SCHEMA .. ".kv_store TO " .. READER .. ";",
      "GRANT SELECT ON " .. SCHEMA .. ".llmspell_migrations TO " .. APP .. ";",
      "GRANT SELECT, INSERT, UPDATE, DELETE ON " .. SCHEMA .. ".kv_store TO " .. APP .. ";",
    }, "\n"))
  end)

  teardown(function()
    if os.getenv("LLMSPELL_TEST_PG_URL") then
      psql(table.concat({
        "SET client_min_messages = warning;",
        "DROP SCHEMA IF EXISTS " .. SCHEMA .. " CASCADE;",
        "DROP SCHEMA IF EXISTS " .. SCHEMA .. "_v CASCADE;",
        "DROP SCHEMA IF EXISTS " .. SCHEMA .. "_race CASCADE;",
        "DROP ROLE IF EXISTS " .. READER .. ";",
        "DROP ROLE IF EXISTS " .. APP .. ";",
      }, "\n"), true)
    end
  end)

  before_each(function()
    acme = open("acme")
    globex = open("globex")
    acme:clear()
    globex:clear()
  end)

  after_each(function()
    for _, db in ipairs { acme, globex } do
      pcall(db.clear, db)
      db:close()
    end
  end)

  describe("opening", function()
    it("opens a URL string, and says where it is without the password", function()
      local db = storage.open(url_with(helpers.pg_url(), "password=hunter2"))
      assert.equal("postgres", db:backend_type())
      local where = tostring(db)
      assert.matches("host=.* port=.* dbname=.* user=", where)
      assert.not_matches("hunter2", where, 1, true)
      assert.not_matches("hunter2", db:stats().location, 1, true)
      db:close()
    end)

    it("records its migrations in <schema>.llmspell_migrations", function()
      local m = acme:migrations()
      assert.equal(13, #m)
      assert.equal("001_kv_store", m[1].name)
      assert.equal("002_vectors", m[2].name)
      assert.equal("003_export", m[3].name)
      assert.equal("004_sessions", m[4].name)
      assert.equal("007_workflow_states", m[7].name)
      assert.equal("008_procedural_memory", m[8].name)
      assert.equal("009_knowledge_graph", m[9].name)
      assert.equal("010_hook_history", m[10].name)
      assert.equal("011_event_log", m[11].name)
      assert.equal("012_event_log_maintenance", m[12].name)
      assert.equal("013_vector_scan", m[13].name)
      assert.is_true(math.abs(m[1].applied_at - os.time()) < 3600)
      assert.equal("1|kv_store", psql(("SELECT version, name FROM " .. SCHEMA
                                        .. ".llmspell_migrations ORDER BY version"))[1])
      -- the documented schema: RLS enabled and forced, key ordered bytewise
      assert.equal("t|t", psql1("SELECT relrowsecurity, relforcerowsecurity FROM pg_class"
                                .. " WHERE oid = '" .. SCHEMA .. ".kv_store'::regclass"))
      assert.equal("C", psql1("SELECT collation_name FROM information_schema.columns"
                              .. " WHERE table_schema = '" .. SCHEMA .. "'"
                              .. " AND table_name = 'kv_store' AND column_name = 'key'"))
    end)

    it("refuses a database migrated by a newer version of the library", function()
      local db = open("acme", { schema = SCHEMA .. "_v" })
      db:close()
      psql("INSERT INTO " .. SCHEMA .. "_v.llmspell_migrations (version, name)"
           .. " VALUES (999, 'from_the_future')")
      local err = helpers.error_of(open, "acme", { schema = SCHEMA .. "_v" })
      assert.equal("version", err.code)
      assert.matches("999", err.message)
    end)

    it("lets concurrent openers migrate a fresh schema without racing", function()
      local child = helpers.lua_command("-e " .. shell_quote(string.format(
        [[local s = require "llmspell.storage"
          local ok, e = pcall(s.open, { url = %q, schema = %q })
          print(ok and "opened" or ("failed: " .. tostring(e)))]],
        helpers.pg_url(), SCHEMA .. "_race")))
      local cmds = {}
      for i = 1, 6 do cmds[i] = child .. " &" end
      local p = assert(io.popen("{ " .. table.concat(cmds, " ") .. " wait; } 2>&1"))
      local out = p:read("a")
      p:close()
      local _, opened = out:gsub("opened", "")
      assert.equal(6, opened, out)
      assert.equal("13", psql1("SELECT count(*) FROM " .. SCHEMA .. "_race.llmspell_migrations"))
    end)

    it("rejects a schema option that is not a plain identifier", function()
      for _, bad in ipairs { 'x"; DROP TABLE llmspell.kv_store; --', "", "1abc",
                             string.rep("s", 64) } do
        local err = helpers.error_of(open, "acme", { schema = bad })
        assert.equal("invalid", err.code)
        assert.matches("option 'schema'", err.message, 1, true)
      end
    end)

    it("takes a connect_timeout option in seconds", function()
      open("acme", { connect_timeout = 5 }):close()
      local err = helpers.error_of(open, "acme", { connect_timeout = "soon" })
      assert.equal("invalid", err.code)
      assert.matches("connect_timeout", err.message)
    end)

    it("raises a connection error for an unreachable server", function()
      local err = helpers.error_of(storage.open,
        "postgresql:///postgres?host=/nonexistent/llmspell-socket-dir&port=5432")
      assert.equal("connection", err.code)
      assert.equal("postgres", err.backend)
      assert.matches("nonexistent", err.message)
      err = helpers.error_of(storage.open, { backend = "postgres",
                                             url = "host=/nonexistent/dir dbname=x" })
      assert.equal("connection", err.code)
    end)
  end)

  describe("tenant isolation", function()
    it("keeps tenants apart through the library", function()
      acme:set("shared", "acme value")
      globex:set("shared", "globex value")
      acme:set_batch { a1 = "1", a2 = "2" }
      globex:set("g1", "x")
      assert.equal("acme value", acme:get("shared"))
      assert.equal("globex value", globex:get("shared"))
      assert.same({ "a1", "a2", "shared" }, acme:list_keys())
      assert.same({ "g1", "shared" }, globex:list_keys())
      assert.is_nil(acme:get("g1"))
      assert.same({ shared = "acme value" }, acme:get_batch { "shared", "g1" })
      assert.equal(3, acme:stats().keys)
      assert.equal(2, globex:stats().keys)
      assert.is_false(acme:delete("g1"))
      acme:clear()
      assert.same({}, acme:list_keys())
      assert.same({ "g1", "shared" }, globex:list_keys())
      assert.equal("globex value", globex:get("shared"))
    end)

    it("enforces isolation in the database for a role without BYPASSRLS", function()
      acme:set_batch { k1 = "a", k2 = "b" }
      globex:set_batch { k1 = "g", k3 = "h" }
      local base = "SET ROLE " .. READER .. ";\n"
      local q = "SELECT count(*), string_agg(tenant_id || ':' || key, ',' ORDER BY key) FROM "
                .. SCHEMA .. ".kv_store;"
      -- no tenant set: nothing at all
      assert.equal("0|", psql1(base .. q))
      assert.equal("2|acme:k1,acme:k2", psql1(base
        .. "SELECT set_config('app.current_tenant_id', 'acme', false);\n" .. q))
      assert.equal("2|globex:k1,globex:k3", psql1(base
        .. "SELECT set_config('app.current_tenant_id', 'globex', false);\n" .. q))
      -- even asking for another tenant's rows by name finds nothing
      assert.equal("0|", psql1(base
        .. "SELECT set_config('app.current_tenant_id', 'acme', false);\n"
        .. "SELECT count(*), string_agg(key, ',') FROM " .. SCHEMA
        .. ".kv_store WHERE tenant_id = 'globex';"))
      -- the superuser running the tests sees everything
      assert.equal("4", psql1("SELECT count(*) FROM " .. SCHEMA
                              .. ".kv_store WHERE tenant_id IN ('acme', 'globex')"))
    end)

    it("works, isolated, when opened as a LOGIN role without BYPASSRLS", function()
      acme:set("mine", "acme data")
      globex:set("theirs", "globex data")
      local app_url = url_with(helpers.pg_url(), "user=" .. APP .. "&password=" .. APP_PASSWORD)
      -- The schema is current, so opening runs no DDL (APP may not CREATE).
      local db = storage.open { backend = "postgres", url = app_url, tenant = "acme",
                                schema = SCHEMA }
      assert.matches("user=" .. APP, tostring(db), 1, true)
      assert.equal("acme data", db:get("mine"))
      assert.is_nil(db:get("theirs"))
      assert.same({ "mine" }, db:list_keys())
      db:set("from_app", "v")
      assert.equal(1, db:batch { { op = "delete", key = "mine" },
                                 { op = "set", key = "b", value = "1" } })
      db:transaction(function(tx) tx:set("in_tx", "1") end)
      assert.same({ "b", "from_app", "in_tx" }, acme:list_keys())
      assert.same({ "theirs" }, globex:list_keys())
      db:clear()
      assert.same({ "theirs" }, globex:list_keys())
      db:close()
      -- the policy's WITH CHECK refuses rows for another tenant
      local _, ok, out = psql("SET ROLE " .. APP .. ";\n"
        .. "SELECT set_config('app.current_tenant_id', 'acme', false);\n"
        .. "INSERT INTO " .. SCHEMA .. ".kv_store VALUES ('globex', 'x', 'x', NULL, now(),"
        .. " now(), NULL);", true)
      assert.is_falsy(ok)
      assert.matches("row%-level security", out)
    end)

    it("stores tenant ids, keys and values carrying SQL literally", function()
      local evil = "'; DROP TABLE " .. SCHEMA .. ".kv_store; --"
      local evil2 = "acme') OR ('1'='1"
      local db = open(evil)
      local db2 = open(evil2)
      db:set(evil, evil)
      db:set_batch { [evil .. "2"] = evil, ["%_\\"] = "x" }
      db2:set(evil2, "other")
      assert.equal(evil, db:get(evil))
      assert.same({ "%_\\", evil, evil .. "2" }, db:list_keys()) -- byte order
      assert.same({ evil2 }, db2:list_keys())
      assert.same({}, acme:list_keys())
      assert.equal(evil, db:get_batch({ evil })[evil])
      assert.equal(1, db:batch { { op = "delete", key = evil .. "2" } })
      assert.equal("1", psql1("SELECT count(*) FROM " .. SCHEMA .. ".kv_store WHERE tenant_id = "
                              .. lit(evil) .. " AND key = " .. lit(evil) .. " AND value = "
                              .. "convert_to(" .. lit(evil) .. ", 'UTF8')"))
      assert.equal("1", psql1("SELECT count(*) FROM " .. SCHEMA .. ".kv_store WHERE tenant_id = "
                              .. lit(evil2)))
      -- the hostile tenant sees only itself through RLS too
      assert.equal("2", psql1("SET ROLE " .. READER .. ";\nSELECT set_config("
                              .. "'app.current_tenant_id', " .. lit(evil) .. ", false);\n"
                              .. "SELECT count(*) FROM " .. SCHEMA .. ".kv_store;"))
      db:clear()
      db2:clear()
      db:close()
      db2:close()
      assert.equal(SCHEMA .. ".kv_store", psql1("SELECT '" .. SCHEMA .. ".kv_store'::regclass"))
    end)
  end)

  describe("storage format", function()
    local function times(key)
      return psql1("SELECT (extract(epoch FROM created_at) * 1000000)::int8, "
                   .. "(extract(epoch FROM updated_at) * 1000000)::int8, "
                   .. "coalesce((extract(epoch FROM expires_at) * 1000000)::int8, 0) FROM "
                   .. SCHEMA .. ".kv_store WHERE tenant_id = 'acme' AND key = " .. lit(key))
    end
    local function split(s)
      local c, u, e = s:match("^(%-?%d+)|(%-?%d+)|(%-?%d+)$")
      return tonumber(c), tonumber(u), tonumber(e)
    end

    it("keeps floats floats through jsonb, whole ones of any size too", function()
      local col = acme:collection("floats", { dimension = 2, create = true })
      local md = { a = 1e15, b = 2.0 ^ 62, c = -1e18, d = 1e300, e = 1.5e-7, f = 3.0,
                   i = 1000000000000000 }
      col:upsert { id = "x", vector = { 1, 0 }, metadata = md }
      acme:workflows():save("floats", { data = md })
      local other <close> = open("acme") -- reads the stored jsonb, not a cache
      for _, got in ipairs { other:collection("floats"):get("x").metadata,
                             other:workflows():load("floats").data } do
        for k, v in pairs(md) do
          assert.equal(v, got[k], k)
          assert.equal(math.type(v), math.type(got[k]), k)
        end
      end
      acme:drop_collection("floats")
      acme:workflows():delete("floats")
    end)

    it("stores times as exact timestamptz", function()
      acme:set("t", "v", { ttl = 100 })
      local c, u, e = split(times("t"))
      assert.equal(c, u)
      assert.equal(100000000, e - c) -- exactly ttl, to the microsecond
      assert.is_true(math.abs(c / 1e6 - os.time()) < 5)
      acme:set("p", "v")
      local _, _, e2 = split(times("p"))
      assert.equal(0, e2)
      assert.equal("t", psql1("SELECT expires_at IS NULL FROM " .. SCHEMA
                              .. ".kv_store WHERE tenant_id = 'acme' AND key = 'p'"))
    end)

    it("keeps created_at while a row is visible, not after it expired or was deleted", function()
      acme:set("k", "1")
      local c1, u1 = split(times("k"))
      helpers.sleep(0.01)
      acme:set("k", "2")
      local c2, u2 = split(times("k"))
      assert.equal(c1, c2)
      assert.is_true(u2 > u1)
      -- a batch that sets a visible key keeps it too
      acme:set_batch { k = "3" }
      assert.equal(c1, (split(times("k"))))
      -- deleted then set again in one batch: a new row
      helpers.sleep(0.01)
      acme:batch { { op = "delete", key = "k" }, { op = "set", key = "k", value = "4" } }
      local c3 = split(times("k"))
      assert.is_true(c3 > c1)
      assert.equal("4", acme:get("k"))
      -- expired rows count as absent
      acme:set("e", "1", { ttl = 0.05 })
      local ce = split(times("e"))
      helpers.sleep(0.1)
      assert.is_nil(acme:get("e"))
      acme:transaction(function(tx) tx:set("e", "2") end) -- no sweep inside
      local ce2, _, ee = split(times("e"))
      assert.is_true(ce2 > ce)
      assert.equal(0, ee)
    end)

    it("removes expired rows physically on a later write", function()
      for i = 1, 5 do acme:set("gone" .. i, "v", { ttl = 0.05 }) end
      globex:set("gone_globex", "v", { ttl = 0.05 })
      assert.equal(5, kv_count("tenant_id = 'acme' AND key LIKE 'gone%'"))
      helpers.sleep(1.1)
      acme:set("trigger", "v") -- the core sweeps at most once a second
      assert.equal(0, kv_count("tenant_id = 'acme' AND key LIKE 'gone%'"))
      -- another tenant's expired rows are that tenant's business
      assert.equal(1, kv_count("tenant_id = 'globex' AND key = 'gone_globex'"))
    end)

    it("stores values as bytea, byte for byte, including empty ones", function()
      local bin = "\0\1\255\254 \\x00 '"
      acme:set_batch { bin = bin, empty = "" }
      acme:set("single_empty", "")
      assert.equal(bin, acme:get("bin"))
      assert.equal("", acme:get("empty"))
      assert.equal("", acme:get("single_empty"))
      assert.equal("\\x0001fffe205c7830302027|0", psql1(
        "SELECT value, (SELECT octet_length(value) FROM " .. SCHEMA .. ".kv_store WHERE "
        .. "tenant_id = 'acme' AND key = 'empty') FROM " .. SCHEMA .. ".kv_store WHERE "
        .. "tenant_id = 'acme' AND key = 'bin'"))
    end)
  end)

  describe("batches", function()
    it("count deleted keys as if the operations ran one by one", function()
      local ops = {
        { op = "delete", key = "a" },               -- visible: 1
        { op = "delete", key = "a" },               -- already gone: 0
        { op = "set", key = "c", value = "1" },
        { op = "delete", key = "c" },               -- set by this batch: 1
        { op = "delete", key = "missing" },         -- never there: 0
        { op = "set", key = "b", value = "2" },
        { op = "delete", key = "b" },               -- 1
        { op = "delete", key = "b" },               -- 0
        { op = "delete", key = "d" },               -- visible: 1
        { op = "set", key = "d", value = "new" },
        { op = "delete", key = "x" },               -- expired: 0
      }
      local mem = storage.open("memory")
      for _, db in ipairs { acme, mem } do
        db:set_batch { a = "1", b = "1", d = "1" }
        db:set("x", "1", { ttl = 0.05 })
      end
      helpers.sleep(0.1)
      assert.equal(3 + 1, acme:batch(ops))
      assert.equal(4, mem:batch(ops)) -- every backend agrees
      assert.same({ "d" }, acme:list_keys())
      assert.equal("new", acme:get("d"))
      mem:close()
    end)

    it("run in one round trip, not one per key", function()
      local ok = pcall(psql, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;\n"
                             .. "SELECT count(*) FROM pg_stat_statements;")
      if not ok then
        pending("pg_stat_statements is not loaded on this server: cannot count statements")
        return
      end
      local function calls()
        return tonumber(psql1("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                              .. " WHERE query LIKE '%" .. SCHEMA .. "%kv_store%'"))
      end
      acme:set("warm", "x") -- prepares and sweeps now, not during the batch
      local t, keys = {}, {}
      for i = 1, 500 do
        t["key" .. i] = "value" .. i
        keys[i] = "key" .. i
      end
      local before = calls()
      acme:set_batch(t)
      local after_set = calls()
      local got = acme:get_batch(keys)
      local after_get = calls()
      assert.equal(500, acme:delete_batch(keys))
      local after_del = calls()
      assert.is_true(after_set - before <= 2, "set_batch ran " .. (after_set - before)
                     .. " statements") -- the batch, perhaps a sweep
      assert.equal(1, after_get - after_set)
      assert.is_true(after_del - after_get <= 2)
      assert.equal(500, (function() local n = 0; for _ in pairs(got) do n = n + 1 end
                                    return n end)())
    end)

    it("inside a transaction, a failed batch leaves the transaction usable", function()
      -- a trigger makes the server refuse one key, with chosen SQLSTATEs
      psql(table.concat({
        "CREATE OR REPLACE FUNCTION " .. SCHEMA .. ".refuse() RETURNS trigger",
        "LANGUAGE plpgsql AS $$ BEGIN",
        "  IF NEW.key = 'refused' THEN RAISE EXCEPTION 'refused key' USING ERRCODE = '23514';",
        "  ELSIF NEW.key = 'busy' THEN RAISE EXCEPTION 'try again' USING ERRCODE = '40001';",
        "  END IF; RETURN NEW; END $$;",
        "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON " .. SCHEMA .. ".kv_store",
        "  FOR EACH ROW EXECUTE FUNCTION " .. SCHEMA .. ".refuse();",
      }, "\n"))
      finally(function() psql("DROP TRIGGER refuse ON " .. SCHEMA .. ".kv_store") end)

      acme:set("keep", "before")
      -- outside a transaction: all or nothing, mapped error codes
      local err = helpers.error_of(acme.batch, acme, {
        { op = "set", key = "new", value = "1" },
        { op = "delete", key = "keep" },
        { op = "set", key = "refused", value = "x" },
      })
      assert.equal("conflict", err.code)
      assert.equal("23514", err.sqlstate)
      assert.equal("postgres", err.backend)
      assert.matches("refused key", err.message)
      assert.equal("before", acme:get("keep"))
      assert.is_nil(acme:get("new"))
      err = helpers.error_of(acme.set, acme, "busy", "x")
      assert.equal("busy", err.code)
      assert.equal("40001", err.sqlstate)

      -- inside: the savepoint undoes only the batch
      acme:transaction(function(tx)
        tx:set("t1", "1")
        local e = helpers.error_of(tx.set_batch, tx, { t2 = "2", refused = "3" })
        assert.equal("conflict", e.code)
        tx:set("t3", "3")
        assert.same({ "keep", "t1", "t3" }, tx:list_keys())
      end)
      assert.same({ "keep", "t1", "t3" }, acme:list_keys())

      -- A failed single statement aborts a PostgreSQL transaction; even if
      -- the caller swallows the error, the commit reports it: no partial
      -- transaction is ever committed.
      err = helpers.error_of(acme.transaction, acme, function(tx)
        tx:set("t4", "4")
        assert.is_false(pcall(tx.set, tx, "refused", "x"))
      end)
      assert.equal("io", err.code)
      assert.matches("aborted", err.message)
      assert.is_nil(acme:get("t4"))
      acme:set("t5", "5") -- and the handle goes on working
      assert.same({ "keep", "t1", "t3", "t5" }, acme:list_keys())
    end)
  end)

  describe("reconnecting", function()
    it("retries reads transparently after the server ends the session", function()
      acme:set("k", "v")
      acme:set_batch { p1 = "1", p2 = "2" }
      assert.is_true(tonumber(terminate_library_connections()) >= 2)
      assert.equal("v", acme:get("k"))
      terminate_library_connections()
      assert.same({ "k", "p1", "p2" }, acme:list_keys())
      terminate_library_connections()
      assert.same({ p1 = "1" }, acme:get_batch { "p1", "zz" })
      terminate_library_connections()
      assert.equal(3, acme:stats().keys)
      terminate_library_connections()
      assert.is_true(acme:exists("p2"))
    end)

    it("reports a write on a lost connection, does not apply it, then recovers", function()
      acme:set("warm", "x") -- sweeps now, so the next write goes straight to the server
      terminate_library_connections()
      local err = helpers.error_of(acme.set, acme, "lost", "v")
      assert.equal("connection", err.code)
      assert.equal(0, kv_count("tenant_id = 'acme' AND key = 'lost'"))
      assert.is_nil(acme:get("lost"))
      acme:set("after", "v")
      assert.equal("v", acme:get("after"))

      acme:set("warm", "y")
      terminate_library_connections()
      err = helpers.error_of(acme.set_batch, acme, { b1 = "1", b2 = "2" })
      assert.equal("connection", err.code)
      assert.equal(0, kv_count("tenant_id = 'acme' AND key IN ('b1', 'b2')"))
      assert.equal(2, acme:set_batch { b1 = "1", b2 = "2" })
    end)

    it("fails a transaction whose connection was lost, without hanging", function()
      acme:set("before", "1")
      local err = helpers.error_of(acme.transaction, acme, function(tx)
        tx:set("in_tx", "1")
        terminate_library_connections()
        tx:set("in_tx2", "2")
      end)
      assert.equal("connection", err.code)
      assert.is_nil(acme:get("in_tx"))
      assert.same({ "before" }, acme:list_keys())
      -- nested: the savepoint level fails the same way
      err = helpers.error_of(acme.transaction, acme, function(tx)
        tx:transaction(function(inner)
          inner:set("n1", "1")
          terminate_library_connections()
          inner:get("n1")
        end)
      end)
      assert.equal("connection", err.code)
      acme:transaction(function(tx) tx:set("ok", "1") end)
      assert.same({ "before", "ok" }, acme:list_keys())
    end)
  end)
end)
