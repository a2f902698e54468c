--- Sessions (db:sessions(), COMPONENTS.md "Sessions"): the same contract
-- on every backend (memory, SQLite file, SQLite :memory:, PostgreSQL), plain
-- and inside a coroutine; then what only a real database shows: the
-- cascade to a session's artifacts read back in raw SQL (sqlite3, psql),
-- row-level security for a role without BYPASSRLS, and processes racing
-- on one session.
--
-- The artifacts API is another component's; the cascade is checked with
-- artifact rows inserted in raw SQL, as that component writes them.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"
local ctest = require "spec.support.ctest"
local pg = require "spec.support.pg"

local q = ctest.quote

--- A SQL string literal.
local function lit(s) return "'" .. (s:gsub("'", "''")) .. "'" end

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

--- Runs SQL through the sqlite3 CLI on the file at path; the output lines.
local function sqlite(path, sql)
  local file = helpers.tmpname(".sql")
  local f = assert(io.open(file, "w"))
  f:write(".timeout 10000\n", sql, "\n")
  f:close()
  local code, out = ctest.run(string.format("%ssqlite3 -batch -bail %s < %s", ctest.CLEAN_ENV,
                                            q(path), q(file)))
  os.remove(file)
  if code ~= 0 then error("sqlite3 failed: " .. out .. "\nSQL: " .. sql, 2) end
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines
end

--- Removes every session of the store (live and expired).
local function wipe(s)
  for _, id in ipairs(s:list()) do s:delete(id) end
  s:cleanup_expired()
end

-- ------------------------------------------------------------ the contract

local function contract(backend, it, run_name)
  describe("sessions on " .. backend.name .. run_name, function()
    local db, s

    local function open(opts) return backend.open(opts, backend) end

    before_each(function()
      if backend.setup then backend:setup() end
      db = open()
      s = db:sessions()
    end)

    after_each(function()
      if db then
        pcall(wipe, db:sessions())
        db:close()
      end
      if backend.teardown then backend:teardown() end
    end)

    describe("the object", function()
      it("is one per store, named, and printed with its row count", function()
        assert.equal(s, db:sessions())
        assert.equal("llmspell.storage.Sessions", getmetatable(s).__name)
        local kind = db:backend_type()
        assert.matches("^llmspell%.storage%.Sessions %(" .. kind .. " ", tostring(s))
        assert.matches("tenant " .. db:tenant() .. ", 0 rows)", tostring(s), 1, true)
        s:create("a")
        s:create("b")
        s:create("gone", { expires_at = 1 })
        assert.matches(", 2 rows)", tostring(s), 1, true)
        assert.equal(2, s:count())
        assert.equal("integer", math.type(s:count()))
      end)

      it("closes with its store and refuses use afterwards", function()
        local db2 = open()
        local s2 = db2:sessions()
        db2:close()
        local err = helpers.error_of(s2.get, s2, "x")
        assert.is_true(storage.is_error(err))
        assert.equal("closed", err.code)
        assert.matches("sessions is closed", err.message, 1, true)
        assert.equal("llmspell.storage.Sessions (closed)", tostring(s2))
        -- a closed store's object raises on writes too
        assert.equal("closed", helpers.error_of(s2.create, s2, "y").code)
      end)

      it("closes by itself (<close>), and the store then hands out a new one", function()
        do
          local s3 <close> = db:sessions()
          s3:create("kept")
        end
        assert.equal("closed", helpers.error_of(s.get, s, "kept").code)
        local fresh = db:sessions()
        assert.are_not.equal(s, fresh)
        assert.equal("kept", fresh:get("kept").id)
        s = fresh
      end)
    end)

    describe("create and get", function()
      it("creates a session and returns it as get does", function()
        local before = os.time()
        local c = s:create("s1", { data = { user = "ann", n = 3 } })
        assert.same(c, s:get("s1"))
        assert.equal("s1", c.id)
        assert.equal("active", c.status)
        assert.same({ user = "ann", n = 3 }, c.data)
        assert.is_nil(c.expires_at)
        assert.equal(0, c.artifact_count)
        assert.equal("integer", math.type(c.artifact_count))
        assert.equal(c.created_at, c.updated_at)
        assert.equal(c.created_at, c.last_accessed_at)
        assert.is_true(c.created_at >= before - 1 and c.created_at <= os.time() + 1)
        -- defaults: status active, data an empty table
        local d = s:create("s2")
        assert.same({}, d.data)
        assert.equal("active", d.status)
      end)

      it("makes a UUID v4 id when none is given", function()
        local a = s:create()
        local b = s:create(nil, { status = "archived" })
        assert.matches(UUID, a.id)
        assert.matches(UUID, b.id)
        assert.are_not.equal(a.id, b.id)
        assert.equal("archived", s:get(b.id).status)
      end)

      it("returns nil for an unknown id", function()
        assert.is_nil(s:get("nope"))
      end)

      it("keeps data exactly: integers, floats, strings, nesting, arrays", function()
        local data = {
          int = 1 << 62, max = math.maxinteger, min = math.mininteger, float = 1.0,
          pi = 3.14159, text = "héllo \"quoted\"", yes = true, no = false,
          list = { 1, 2, 3 }, nested = { a = { b = { c = "d" } } }, empty = storage.array {},
        }
        s:create("d", { data = data })
        local got = s:get("d").data
        assert.same(data.nested, got.nested)
        assert.same({ 1, 2, 3 }, { table.unpack(got.list) })
        assert.equal(1 << 62, got.int)
        assert.equal("integer", math.type(got.int))
        assert.equal(math.maxinteger, got.max)
        assert.equal(math.mininteger, got.min)
        assert.equal("float", math.type(got.float))
        assert.equal(1.0, got.float)
        assert.equal(3.14159, got.pi)
        assert.equal(data.text, got.text)
        assert.is_true(got.yes)
        assert.is_false(got.no)
        assert.equal(0, #got.empty)
        assert.equal(storage.json_encode(storage.array {}), storage.json_encode(got.empty))
      end)

      it("raises conflict for a live id and replaces an expired one", function()
        s:create("x", { data = { v = 1 } })
        local err = helpers.error_of(s.create, s, "x")
        assert.is_true(storage.is_error(err))
        assert.equal("conflict", err.code)
        assert.matches("session 'x' already exists", err.message, 1, true)
        assert.equal(1, s:get("x").data.v)
        s:create("old", { expires_at = os.time() - 5, data = { v = 1 } })
        assert.is_nil(s:get("old"))
        local c = s:create("old", { data = { v = 2 } })
        assert.equal(2, s:get("old").data.v)
        assert.is_nil(c.expires_at)
      end)

      it("takes a ttl or an expires_at", function()
        local now = os.time()
        local t = s:create("t", { ttl = 60 })
        assert.is_true(t.expires_at >= now + 59 and t.expires_at <= now + 62)
        assert.equal(t.expires_at, s:get("t").expires_at)
        s:create("e", { expires_at = 4102444800 })
        assert.equal(4102444800, s:get("e").expires_at)
        assert.equal("integer", math.type(s:get("e").expires_at))
        s:create("f", { expires_at = 4102444800.5 })
        assert.equal(4102444800.5, s:get("f").expires_at)
      end)

      it("accepts every status", function()
        for _, st in ipairs { "active", "completed", "expired", "archived" } do
          assert.equal(st, s:create("st_" .. st, { status = st }).status)
          assert.equal(st, s:get("st_" .. st).status)
        end
      end)
    end)

    describe("expiry", function()
      it("hides an expired session everywhere, and cleanup_expired removes it", function()
        s:create("live")
        s:create("gone", { ttl = 0.05 })
        s:create("gone2", { expires_at = 1 })
        helpers.sleep(0.1)
        assert.is_nil(s:get("gone"))
        assert.same({ "live" }, s:list())
        assert.matches(", 1 rows)", tostring(s), 1, true)
        assert.equal("not_found",
                     helpers.error_of(s.update, s, "gone", { status = "active" }).code)
        assert.equal("not_found", helpers.error_of(s.touch, s, "gone").code)
        assert.equal(2, s:cleanup_expired())
        assert.equal(0, s:cleanup_expired())
        assert.is_table(s:get("live"))
        assert.is_table(s:create("gone"))
      end)

      it("delete removes an expired session and answers false", function()
        s:create("gone", { expires_at = 1 })
        assert.is_false(s:delete("gone"))
        assert.equal(0, s:cleanup_expired()) -- nothing left to clean
      end)
    end)

    describe("update and touch", function()
      it("update replaces what it is given and stamps updated_at", function()
        local c = s:create("u", { data = { a = 1 } })
        helpers.sleep(0.01)
        assert.is_nil(s:update("u", { data = { b = 2 } }))
        local g = s:get("u")
        assert.same({ b = 2 }, g.data)
        assert.equal("active", g.status)
        assert.equal(c.created_at, g.created_at)
        assert.equal(c.last_accessed_at, g.last_accessed_at)
        assert.is_true(g.updated_at > c.updated_at)
        s:update("u", { status = "completed" })
        g = s:get("u")
        assert.same({ b = 2 }, g.data)
        assert.equal("completed", g.status)
      end)

      it("update sets, moves and removes the expiry", function()
        s:create("u")
        local now = os.time()
        s:update("u", { ttl = 100 })
        local e = s:get("u").expires_at
        assert.is_true(e >= now + 99 and e <= now + 102)
        s:update("u", { expires_at = 4102444800 })
        assert.equal(4102444800, s:get("u").expires_at)
        s:update("u", { expires_at = false })
        assert.is_nil(s:get("u").expires_at)
        s:update("u", { expires_at = 1 }) -- in the past: it expires now
        assert.is_nil(s:get("u"))
      end)

      it("update with no fields only stamps updated_at", function()
        local c = s:create("u", { data = { k = "v" }, status = "archived", ttl = 1000 })
        helpers.sleep(0.01)
        s:update("u", {})
        local g = s:get("u")
        assert.same(c.data, g.data)
        assert.equal("archived", g.status)
        assert.equal(c.expires_at, g.expires_at)
        assert.is_true(g.updated_at > c.updated_at)
      end)

      it("touch stamps last_accessed_at only", function()
        local c = s:create("t", { data = { k = 1 } })
        helpers.sleep(0.01)
        assert.is_nil(s:touch("t"))
        local g = s:get("t")
        assert.is_true(g.last_accessed_at > c.last_accessed_at)
        assert.equal(c.updated_at, g.updated_at)
        assert.same(c.data, g.data)
      end)

      it("raise not_found for an unknown session", function()
        local err = helpers.error_of(s.update, s, "nope", { status = "active" })
        assert.is_true(storage.is_error(err))
        assert.equal("not_found", err.code)
        assert.matches("no session 'nope'", err.message, 1, true)
        assert.equal("not_found", helpers.error_of(s.touch, s, "nope").code)
        assert.is_nil(s:get("nope"))
      end)
    end)

    describe("delete", function()
      it("answers whether a live session went", function()
        s:create("d")
        assert.is_true(s:delete("d"))
        assert.is_nil(s:get("d"))
        assert.is_false(s:delete("d"))
        assert.is_false(s:delete("never"))
      end)
    end)

    describe("list", function()
      local ids = { "a", "b", "c", "d", "e", "f" }

      local function make()
        for i, id in ipairs(ids) do
          s:create(id, { status = i % 2 == 0 and "archived" or "active" })
          helpers.sleep(0.002) -- distinct created_at
        end
      end

      it("gives ids newest first, filtered by status", function()
        make()
        assert.same({ "f", "e", "d", "c", "b", "a" }, s:list())
        assert.same({ "f", "d", "b" }, s:list { status = "archived" })
        assert.same({ "e", "c", "a" }, s:list { status = "active" })
        assert.same({}, s:list { status = "completed" })
        assert.same({ "f", "e" }, s:list { limit = 2 })
      end)

      it("pages with after = the last id of the previous page", function()
        make()
        local pages, after = {}, nil
        repeat
          local page = s:list { limit = 4, after = after }
          for _, id in ipairs(page) do pages[#pages + 1] = id end
          after = page[#page]
        until #page < 4
        assert.same({ "f", "e", "d", "c", "b", "a" }, pages)
        assert.same({ "d", "c" }, s:list { limit = 2, after = "e" })
        assert.same({ "b" }, s:list { status = "archived", after = "d" })
        assert.same({ "c", "a" }, s:list { status = "active", after = "e" })
        assert.same({}, s:list { after = "a" })
        -- an expired session's row still marks its place
        s:update("c", { expires_at = 1 })
        assert.same({ "b", "a" }, s:list { after = "c" })
        assert.same({ "f", "e", "d", "b", "a" }, s:list())
      end)

      it("raises not_found for an after no session has", function()
        make()
        local err = helpers.error_of(s.list, s, { after = "zzz" })
        assert.is_true(storage.is_error(err))
        assert.equal("not_found", err.code)
        assert.matches("after: no session 'zzz'", err.message, 1, true)
      end)
    end)

    describe("bad arguments", function()
      local function refused(pattern, f, ...)
        local err = helpers.error_of(f, ...)
        assert.is_string(err)
        assert.matches(pattern, err, 1, true)
      end

      it("refuses bad ids in every method, naming them", function()
        local long = string.rep("x", storage.limits.max_id + 1)
        local cases = {
          { 42, "session id: string expected, got number" },
          { {}, "session id: string expected, got table" },
          { "", "session id must be 1..512 bytes" },
          { long, "session id must be 1..512 bytes" },
          { "a\0b", "session id must be UTF-8 text without NUL bytes" },
          { "\xff", "session id must be UTF-8 text without NUL bytes" },
        }
        for _, c in ipairs(cases) do
          refused(c[2], s.create, s, c[1])
          refused(c[2], s.get, s, c[1])
          refused(c[2], s.update, s, c[1], {})
          refused(c[2], s.touch, s, c[1])
          refused(c[2], s.delete, s, c[1])
        end
        refused("session id: string expected, got no value", s.get, s)
        refused("option 'after' must be 1..512 bytes", s.list, s, { after = "" })
        refused("option 'after': string expected, got number", s.list, s, { after = 1 })
        s:create(string.rep("y", storage.limits.max_id)) -- the longest is fine
      end)

      it("refuses unknown statuses, listing the choices", function()
        local msg = "option 'status' must be one of active, completed, expired, archived"
        refused(msg .. " (got 'open')", s.create, s, "a", { status = "open" })
        s:create("a")
        refused(msg, s.update, s, "a", { status = "ACTIVE" })
        refused(msg, s.list, s, { status = "done" })
        refused("option 'status': string expected, got number", s.create, s, "b", { status = 1 })
      end)

      it("refuses bad options", function()
        s:create("a")
        refused("unknown option 'tll'", s.create, s, "b", { tll = 5 })
        refused("unknown option 'id'", s.update, s, "a", { id = "c" })
        refused("unknown option 'offset'", s.list, s, { offset = 2 })
        refused("table expected, got string", s.create, s, "b", "active")
        refused("table expected, got no value", s.update, s, "a")
        refused("options 'ttl' and 'expires_at' are exclusive", s.create, s, "b",
                { ttl = 5, expires_at = 4102444800 })
        for _, bad in ipairs { 0, -1, 0 / 0, math.huge, 2e11, "5" } do
          refused("option 'ttl' must be a positive number of seconds", s.create, s, "b",
                  { ttl = bad })
          refused("option 'ttl' must be a positive number of seconds", s.update, s, "a",
                  { ttl = bad })
        end
        for _, bad in ipairs { 0, -5, 0 / 0, math.huge, 1e13, true } do
          refused("option 'expires_at' must be a positive time (finite seconds since the epoch",
                  s.create, s, "b", { expires_at = bad })
        end
        refused("option 'expires_at' must be a positive time", s.create, s, "b",
                { expires_at = false })
        refused("or false for none", s.update, s, "a", { expires_at = true })
        for _, bad in ipairs { 0, -1, 1.5, "3" } do
          refused("option 'limit'", s.list, s, { limit = bad })
        end
        refused("data", s.create, s, "b", { data = { f = print } })
        refused("data", s.update, s, "a", { data = { 0 / 0 } })
        -- nothing was written by any of these
        assert.same({ "a" }, s:list())
        assert.same({}, s:get("a").data)
      end)
    end)

    describe("transactions", function()
      it("a rollback undoes create, update, touch, delete and cleanup", function()
        s:create("keep", { data = { v = 1 } })
        s:create("old", { expires_at = 1 })
        local before = s:get("keep")
        local ok, err = pcall(db.transaction, db, function()
          s:create("new")
          s:update("keep", { data = { v = 2 }, status = "archived" })
          s:touch("keep")
          assert.equal(1, s:cleanup_expired())
          assert.is_true(s:delete("keep"))
          assert.is_nil(s:get("keep"))
          error("boom")
        end)
        assert.is_false(ok)
        assert.matches("boom", tostring(err))
        assert.is_nil(s:get("new"))
        assert.same(before, s:get("keep"))
        assert.equal(1, s:cleanup_expired()) -- "old" was still there
      end)

      it("a commit keeps them, and a failed write inside leaves the rest", function()
        db:transaction(function()
          s:create("a")
          local e = helpers.error_of(s.create, s, "a")
          assert.equal("conflict", e.code)
          s:create("b", { data = { x = 1 } })
          s:update("b", { status = "completed" })
        end)
        assert.same({ "b", "a" }, s:list())
        assert.equal("completed", s:get("b").status)
      end)

      it("joins a transaction with key-value writes", function()
        pcall(db.transaction, db, function()
          db:set("k", "v")
          s:create("with_kv")
          error("undo both")
        end)
        assert.is_nil(db:get("k"))
        assert.is_nil(s:get("with_kv"))
      end)
    end)

    if backend.shared then
      it("keeps tenants apart in one store", function()
        local other = open { tenant = helpers.unique_tenant("other") }
        local o = other:sessions()
        s:create("same", { data = { who = "mine" } })
        o:create("same", { data = { who = "theirs" } })
        o:create("only_theirs")
        assert.equal("mine", s:get("same").data.who)
        assert.equal("theirs", o:get("same").data.who)
        assert.same({ "same" }, s:list())
        assert.is_nil(s:get("only_theirs"))
        assert.is_true(s:delete("same"))
        assert.equal("theirs", o:get("same").data.who)
        wipe(o)
        other:close()
      end)
    end
  end)
end

for _, backend in ipairs(helpers.backends()) do
  for _, run in ipairs(helpers.runs(it)) do contract(backend, run.it, run.name) end
end

-- ------------------------------------------------ the cascade, in raw SQL

--- SQL inserting artifact rows as the artifacts component writes them:
-- content (with `chunks` chunks and `refs` references) and artifacts.
local function dialect(pgsql, prefix)
  local T = pgsql and "to_timestamp(1)" or "1"
  local d = {}
  function d.content(tenant, hash, refs, chunks)
    local out = { string.format(
      "INSERT INTO %sartifact_content (tenant_id, content_hash, size_bytes, stored_bytes,"
      .. " is_compressed, original_size_bytes, chunk_count, reference_count, created_at,"
      .. " last_accessed_at) VALUES (%s, %s, 3, 3, %s, 3, %d, %d, %s, %s);",
      prefix, lit(tenant), lit(hash), pgsql and "false" or "0", chunks, refs, T, T) }
    for i = 0, chunks - 1 do
      out[#out + 1] = string.format(
        "INSERT INTO %sartifact_chunks (tenant_id, content_hash, chunk_index, raw_size, data)"
        .. " VALUES (%s, %s, %d, 1, %s);", prefix, lit(tenant), lit(hash), i,
        pgsql and "'\\x01'::bytea" or "X'01'")
    end
    return table.concat(out, "\n")
  end
  function d.artifact(tenant, session, seq, hash)
    return string.format(
      "INSERT INTO %sartifacts (tenant_id, artifact_id, session_id, sequence, content_hash,"
      .. " metadata, name, artifact_type, mime_type, size_bytes, created_at, tags, stored_at,"
      .. " updated_at) VALUES (%s, %s, %s, %d, %s, '{}', 'n', 'data', 'text/plain', 3, %s,"
      .. " '[]', %s, %s);", prefix, lit(tenant), lit(session .. ":" .. seq .. ":" .. hash),
      lit(session), seq, lit(hash), T, T, T)
  end
  return d
end

-- The two stores whose tables SQL can reach: a SQLite file (sqlite3) and
-- PostgreSQL in a schema of its own (psql, as the superuser).
local SCHEMA = "llmspell_sessspec"
local raw_stores = {
  {
    name = "sqlite file",
    setup = function(self) self.path = helpers.tmpname(".db") end,
    teardown = function(self) helpers.remove_db(self.path) end,
    open = function(self, tenant)
      return storage.open { backend = "sqlite", path = self.path, tenant = tenant }
    end,
    sql = function(self, text) return sqlite(self.path, text) end,
    d = dialect(false, ""),
    prefix = "",
  },
  {
    name = "postgres",
    setup = function() end,
    teardown = function() end,
    open = function(_, tenant)
      return storage.open { backend = "postgres", url = helpers.pg_url(), schema = SCHEMA,
                            tenant = tenant }
    end,
    sql = function(_, text) return pg.psql(text) end,
    d = dialect(true, SCHEMA .. "."),
    prefix = SCHEMA .. ".",
  },
}

for _, store in ipairs(raw_stores) do
  describe("the artifact cascade on " .. store.name .. " (raw SQL)", function()
    local db, s, other, tenant, tenant2
    local P = store.prefix

    local function sql1(text)
      local lines = store:sql(text)
      return lines[#lines]
    end

    -- "hash:refs:chunks" of the tenant's content, in hash order
    local function contents(t)
      local rows = store:sql("SELECT content_hash || ':' || reference_count || ':' ||"
        .. " (SELECT count(*) FROM " .. P .. "artifact_chunks k WHERE k.tenant_id = c.tenant_id"
        .. " AND k.content_hash = c.content_hash) FROM " .. P .. "artifact_content c"
        .. " WHERE tenant_id = " .. lit(t) .. " ORDER BY content_hash;")
      return rows
    end

    -- "session:sequence" of the tenant's artifacts, in order
    local function artifacts(t)
      return store:sql("SELECT session_id || ':' || sequence FROM " .. P .. "artifacts"
        .. " WHERE tenant_id = " .. lit(t) .. " ORDER BY session_id, sequence;")
    end

    before_each(function()
      store:setup()
      tenant = helpers.unique_tenant("casc")
      tenant2 = helpers.unique_tenant("casc2")
      db = store:open(tenant)
      other = store:open(tenant2)
      s = db:sessions()
      s:create("s1")
      s:create("s2")
      other:sessions():create("s1")
      local d = store.d
      -- ha: two artifacts of s1 and one of s2; hb: s1 only, two chunks;
      -- hc: s2 only. The other tenant has an s1 of its own on ha.
      store:sql(table.concat({
        d.content(tenant, "ha", 3, 1), d.content(tenant, "hb", 1, 2),
        d.content(tenant, "hc", 1, 1),
        d.artifact(tenant, "s1", 0, "ha"), d.artifact(tenant, "s1", 1, "ha"),
        d.artifact(tenant, "s1", 2, "hb"), d.artifact(tenant, "s2", 0, "ha"),
        d.artifact(tenant, "s2", 1, "hc"),
        d.content(tenant2, "ha", 1, 1), d.artifact(tenant2, "s1", 0, "ha"),
      }, "\n"))
    end)

    after_each(function()
      for _, h in ipairs { db, other } do
        pcall(wipe, h:sessions())
        h:close()
      end
      store:sql("DELETE FROM " .. P .. "artifacts WHERE tenant_id IN (" .. lit(tenant) .. ", "
        .. lit(tenant2) .. ");\nDELETE FROM " .. P .. "artifact_chunks WHERE tenant_id IN ("
        .. lit(tenant) .. ", " .. lit(tenant2) .. ");\nDELETE FROM " .. P .. "artifact_content"
        .. " WHERE tenant_id IN (" .. lit(tenant) .. ", " .. lit(tenant2) .. ");")
      store:teardown()
    end)

    if store.name == "postgres" then
      teardown(function()
        pg.psql("SET client_min_messages = warning; DROP SCHEMA IF EXISTS " .. SCHEMA
                .. " CASCADE;")
      end)
    end

    it("delete removes the session's artifacts and the content only they used", function()
      assert.is_true(s:delete("s1"))
      assert.same({ "s2:0", "s2:1" }, artifacts(tenant))
      -- ha lost two references, hb its only one (with both chunks)
      assert.same({ "ha:1:1", "hc:1:1" }, contents(tenant))
      -- the other tenant's s1 and its content are untouched
      assert.same({ "s1:0" }, artifacts(tenant2))
      assert.same({ "ha:1:1" }, contents(tenant2))
      assert.is_table(other:sessions():get("s1"))
    end)

    it("cleanup_expired cascades the same way", function()
      s:update("s1", { expires_at = 1 })
      s:update("s2", { expires_at = 1 })
      assert.equal(2, s:cleanup_expired())
      assert.same({}, artifacts(tenant))
      assert.same({}, contents(tenant))
      assert.same({ "ha:1:1" }, contents(tenant2))
    end)

    it("a create over an expired session starts it without the old artifacts", function()
      s:update("s2", { expires_at = 1 })
      local c = s:create("s2", { data = { fresh = true } })
      assert.equal(0, c.artifact_count)
      assert.same({ "s1:0", "s1:1", "s1:2" }, artifacts(tenant))
      assert.same({ "ha:2:1", "hb:1:2" }, contents(tenant))
      assert.equal("0", sql1("SELECT next_sequence FROM " .. P .. "sessions WHERE tenant_id = "
                             .. lit(tenant) .. " AND session_id = 's2';"))
    end)

    it("a rollback keeps the artifacts too", function()
      pcall(db.transaction, db, function()
        s:delete("s1")
        s:delete("s2")
        error("undo")
      end)
      assert.same({ "s1:0", "s1:1", "s1:2", "s2:0", "s2:1" }, artifacts(tenant))
      assert.same({ "ha:3:1", "hb:1:2", "hc:1:1" }, contents(tenant))
      assert.is_table(s:get("s1"))
    end)

    it("get reads artifact_count, and update and touch leave it alone", function()
      store:sql("UPDATE " .. P .. "sessions SET artifact_count = 3 WHERE tenant_id = "
                .. lit(tenant) .. " AND session_id = 's1';")
      assert.equal(3, s:get("s1").artifact_count)
      s:update("s1", { data = { x = 1 }, status = "completed", ttl = 100 })
      s:touch("s1")
      assert.equal(3, s:get("s1").artifact_count)
    end)

    it("keeps readable rows: microseconds, JSON text, a UUID row id", function()
      s:create("r", { data = { k = "v" }, expires_at = 4102444800 })
      local row = sql1("SELECT row_id || '|' || status || '|' || "
        .. (store.name == "postgres"
            and "data::text || '|' || (extract(epoch FROM expires_at) * 1000000)::bigint"
            or "data || '|' || expires_at")
        .. " FROM " .. P .. "sessions WHERE tenant_id = " .. lit(tenant)
        .. " AND session_id = 'r';")
      local rowid, status, data, exp = row:match("^([^|]+)|([^|]+)|([^|]+)|([^|]+)$")
      assert.matches(UUID, rowid)
      assert.equal("active", status)
      assert.equal('{"k": "v"}', (data:gsub('":"', '": "')))
      assert.equal("4102444800000000", exp)
    end)

    if store.name == "postgres" then
      it("takes its locks in the artifacts' order: an artifact delete racing it is no deadlock",
         function()
        -- a transaction doing what an artifact delete does, in its order
        -- (the artifact row, then the session row), holding the artifact
        -- while s:delete starts
        local file = helpers.tmpname(".sql")
        local f = assert(io.open(file, "w"))
        local where = " WHERE tenant_id = " .. lit(tenant)
        f:write(table.concat({
          "BEGIN;",
          "SELECT 1 FROM " .. P .. "artifacts" .. where .. " AND artifact_id = 's1:0:ha'"
            .. " FOR UPDATE;",
          "SELECT pg_sleep(0.6) AS lls_sessspec_holding;",
          "UPDATE " .. P .. "sessions SET artifact_count = artifact_count - 1" .. where
            .. " AND session_id = 's1';",
          "DELETE FROM " .. P .. "artifacts" .. where .. " AND artifact_id = 's1:0:ha';",
          "UPDATE " .. P .. "artifact_content SET reference_count = reference_count - 1"
            .. where .. " AND content_hash = 'ha';",
          "COMMIT;",
        }, "\n"), "\n")
        f:close()
        local child = assert(io.popen(string.format(
          "%spsql %s -X -q -t -v ON_ERROR_STOP=1 -f %s 2>&1 && echo child-committed",
          ctest.CLEAN_ENV, q(helpers.pg_url()), q(file))))
        local holding = "0"
        for _ = 1, 200 do
          holding = pg.psql1("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                             .. " AND query LIKE '%lls_sessspec_holding%'"
                             .. " AND pid <> pg_backend_pid();")
          if holding == "1" then break end
          helpers.sleep(0.01)
        end
        assert.equal("1", holding)
        local ok, err = pcall(s.delete, s, "s1")
        local out = child:read("a")
        child:close()
        os.remove(file)
        assert.is_true(ok, tostring(err))
        assert.matches("child-committed", out, 1, true)
        assert.same({ "s2:0", "s2:1" }, artifacts(tenant))
        assert.same({ "ha:1:1", "hc:1:1" }, contents(tenant))
      end)
    end

    it("breaks created_at ties by id, newest first", function()
      for _, id in ipairs { "t1", "t3", "t2" } do s:create(id) end
      store:sql("UPDATE " .. P .. "sessions SET created_at = "
        .. (store.name == "postgres" and "to_timestamp(2000000000)" or "2000000000000000")
        .. " WHERE tenant_id = " .. lit(tenant) .. " AND session_id IN ('t1', 't2', 't3');")
      assert.same({ "t3", "t2", "t1", "s2", "s1" }, s:list())
      assert.same({ "t2", "t1" }, s:list { limit = 2, after = "t3" })
      assert.same({ "t1", "s2" }, s:list { limit = 2, after = "t2" })
    end)
  end)
end

-- ------------------------------------------------- PostgreSQL specifics

describe("sessions on PostgreSQL: row-level security", function()
  local RLS_SCHEMA = "llmspell_sessspec_rls"
  local READER = "llmspell_sessspec_reader"
  local APP = "llmspell_sessspec_app"
  local APP_PASSWORD = "sessspec-app"

  local function open(tenant, url)
    return storage.open { backend = "postgres", url = url or helpers.pg_url(), tenant = tenant,
                          schema = RLS_SCHEMA }
  end

  local function url_with(url, params)
    if url:match("^postgres") then
      return url .. (url:find("?", 1, true) and "&" or "?") .. params
    end
    return url .. " " .. params:gsub("&", " ")
  end

  setup(function()
    pg.psql(table.concat({
      "SET client_min_messages = warning;",
      "DROP SCHEMA IF EXISTS " .. RLS_SCHEMA .. " CASCADE;",
      "DROP ROLE IF EXISTS " .. READER .. ";",
      "DROP ROLE IF EXISTS " .. APP .. ";",
      "CREATE ROLE " .. READER .. " NOLOGIN NOSUPERUSER NOBYPASSRLS;",
      "CREATE ROLE " .. APP .. " LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD " .. lit(APP_PASSWORD)
        .. ";",
    }, "\n"))
    open("acme"):close() -- creates the schema
    local tables = RLS_SCHEMA .. ".sessions, " .. RLS_SCHEMA .. ".artifacts, " .. RLS_SCHEMA
      .. ".artifact_content, " .. RLS_SCHEMA .. ".artifact_chunks"
    pg.psql(table.concat({
      "GRANT USAGE ON SCHEMA " .. RLS_SCHEMA .. " TO " .. READER .. ", " .. APP .. ";",
      "GRANT SELECT ON " .. RLS_SCHEMA .. ".sessions TO " .. READER .. ";",
      "GRANT SELECT ON " .. RLS_SCHEMA .. ".llmspell_migrations TO " .. APP .. ";",
      "GRANT SELECT, INSERT, UPDATE, DELETE ON " .. tables .. " TO " .. APP .. ";",
    }, "\n"))
  end)

  teardown(function()
    pg.psql(table.concat({
      "SET client_min_messages = warning;",
      "DROP SCHEMA IF EXISTS " .. RLS_SCHEMA .. " CASCADE;",
      "DROP ROLE IF EXISTS " .. READER .. ";",
      "DROP ROLE IF EXISTS " .. APP .. ";",
    }, "\n"))
  end)

  it("shows a role without BYPASSRLS only its tenant's sessions", function()
    local acme, globex = open("acme"), open("globex")
    acme:sessions():create("a1")
    acme:sessions():create("shared")
    globex:sessions():create("shared")
    local q = "SELECT count(*), string_agg(tenant_id || ':' || session_id, ',' ORDER BY"
      .. " session_id) FROM " .. RLS_SCHEMA .. ".sessions;"
    local as = "SET ROLE " .. READER .. ";\n"
    assert.equal("0|", pg.psql1(as .. q))
    assert.equal("2|acme:a1,acme:shared", pg.psql1(as
      .. "SELECT set_config('app.current_tenant_id', 'acme', false);\n" .. q))
    assert.equal("1|globex:shared", pg.psql1(as
      .. "SELECT set_config('app.current_tenant_id', 'globex', false);\n" .. q))
    wipe(acme:sessions())
    wipe(globex:sessions())
    acme:close()
    globex:close()
  end)

  it("works, cascade included, opened as a LOGIN role without BYPASSRLS", function()
    local admin = open("acme")
    local other = open("globex")
    other:sessions():create("s")
    local app = open("acme", url_with(helpers.pg_url(),
                                      "user=" .. APP .. "&password=" .. APP_PASSWORD))
    local s = app:sessions()
    s:create("s", { data = { v = 1 } })
    local d = dialect(true, RLS_SCHEMA .. ".")
    pg.psql(table.concat({ d.content("acme", "h1", 1, 2), d.artifact("acme", "s", 0, "h1"),
                           d.content("globex", "h1", 1, 1), d.artifact("globex", "s", 0, "h1") },
                         "\n"))
    s:update("s", { status = "completed" })
    s:touch("s")
    assert.same({ "s" }, s:list())
    assert.is_true(s:delete("s"))
    s:create("e", { expires_at = 1 })
    assert.equal(1, s:cleanup_expired())
    local count = function(t, tenant)
      return pg.psql1("SELECT count(*) FROM " .. RLS_SCHEMA .. "." .. t .. " WHERE tenant_id = "
                      .. lit(tenant))
    end
    for _, t in ipairs { "sessions", "artifacts", "artifact_content", "artifact_chunks" } do
      assert.equal("0", count(t, "acme"), t)
      assert.equal("1", count(t, "globex"), t)
    end
    app:close()
    -- the policy's WITH CHECK refuses a row for another tenant
    local code, out = ctest.run(string.format(
      "%spsql %s -X -q -v ON_ERROR_STOP=1 -c %s", ctest.CLEAN_ENV,
      q(url_with(helpers.pg_url(), "user=" .. APP .. "&password=" .. APP_PASSWORD)),
      q("SELECT set_config('app.current_tenant_id', 'acme', false); INSERT INTO " .. RLS_SCHEMA
        .. ".sessions (tenant_id, session_id, row_id, status, data, created_at, updated_at,"
        .. " last_accessed_at) VALUES ('globex', 'x', 'r', 'active', '{}', now(), now(), now())")))
    assert.are_not.equal(0, code)
    assert.matches("row%-level security", out)
    wipe(other:sessions())
    pg.psql("DELETE FROM " .. RLS_SCHEMA .. ".artifacts; DELETE FROM " .. RLS_SCHEMA
            .. ".artifact_content;")
    other:close()
    admin:close()
  end)
end)

-- ----------------------------------------------------------- processes

local proc_stores = {
  {
    name = "sqlite file",
    setup = function(self) self.path = helpers.tmpname(".db") end,
    teardown = function(self) helpers.remove_db(self.path) end,
    opts = function(self) return string.format("{ backend = 'sqlite', path = %q }", self.path) end,
    open = function(self) return storage.open { backend = "sqlite", path = self.path } end,
    -- n increments of artifact_count in raw SQL, each its own transaction
    bump = function(self, n)
      local file = helpers.tmpname(".sql")
      local f = assert(io.open(file, "w"))
      f:write(".timeout 30000\n")
      for _ = 1, n do
        f:write("UPDATE sessions SET artifact_count = artifact_count + 1"
                .. " WHERE session_id = 'hot';\n")
      end
      f:close()
      return string.format("%ssqlite3 -batch -bail %s < %s && rm -f %s && echo bumped",
                           ctest.CLEAN_ENV, q(self.path), q(file), q(file))
    end,
  },
  {
    name = "postgres",
    setup = function(self) self.tenant = helpers.unique_tenant("race") end,
    teardown = function() end,
    opts = function(self)
      return string.format("{ backend = 'postgres', url = %q, tenant = %q }", helpers.pg_url(),
                           self.tenant)
    end,
    open = function(self)
      return storage.open { backend = "postgres", url = helpers.pg_url(), tenant = self.tenant }
    end,
    bump = function(self, n)
      local file = helpers.tmpname(".sql")
      local f = assert(io.open(file, "w"))
      for _ = 1, n do
        f:write("UPDATE llmspell.sessions SET artifact_count = artifact_count + 1"
                .. " WHERE tenant_id = " .. lit(self.tenant) .. " AND session_id = 'hot';\n")
      end
      f:close()
      return string.format("%spsql %s -X -q -v ON_ERROR_STOP=1 -f %s && rm -f %s && echo bumped",
                           ctest.CLEAN_ENV, q(helpers.pg_url()), q(file), q(file))
    end,
  },
}

for _, store in ipairs(proc_stores) do
  describe("sessions shared by processes on " .. store.name, function()
    before_each(function() store:setup() end)
    after_each(function() store:teardown() end)

    --- Runs the commands at once and returns their combined output.
    local function together(cmds)
      local parts = {}
      for i, c in ipairs(cmds) do parts[i] = "( " .. c .. " ) &" end
      local p = assert(io.popen("{ " .. table.concat(parts, " ") .. " wait; } 2>&1"))
      local out = p:read("a")
      p:close()
      return out
    end

    it("loses no artifact_count increment to updates and touches racing with it", function()
      local db = store:open()
      local s = db:sessions()
      s:create("hot", { data = { w = 0 } })
      local WRITERS, ROUNDS, BUMPS = 3, 40, 150
      local cmds = { store:bump(BUMPS) }
      for w = 1, WRITERS do
        cmds[#cmds + 1] = helpers.lua_command("-e " .. q(string.format([[
          local s = require("llmspell.storage").open(%s):sessions()
          for i = 1, %d do
            s:update("hot", { data = { w = %d, i = i }, status = i %% 2 == 0 and "active"
                              or "completed" })
            s:touch("hot")
          end
          print("writer done")]], store:opts(), ROUNDS, w)))
      end
      local out = together(cmds)
      local _, done = out:gsub("writer done", "")
      assert.equal(WRITERS, done, out)
      assert.matches("bumped", out)
      local g = s:get("hot")
      assert.equal(BUMPS, g.artifact_count)
      assert.equal(ROUNDS, g.data.i)
      assert.is_true(g.data.w >= 1 and g.data.w <= WRITERS)
      wipe(s)
      db:close()
    end)

    it("lets exactly one of many processes create an id", function()
      local db = store:open()
      local s = db:sessions()
      local cmds = {}
      for w = 1, 5 do
        cmds[w] = helpers.lua_command("-e " .. q(string.format([[
          local s = require("llmspell.storage").open(%s):sessions()
          local ok, e = pcall(s.create, s, "once", { data = { w = %d } })
          print(ok and "created" or ("refused " .. tostring(e.code)))]], store:opts(), w)))
      end
      local out = together(cmds)
      local _, created = out:gsub("created", "")
      local _, refused = out:gsub("refused conflict", "")
      assert.equal(1, created, out)
      assert.equal(4, refused, out)
      assert.is_table(s:get("once"))
      wipe(s)
      db:close()
    end)
  end)
end

-- ---------------------------------------------------- the export section

describe("the sessions export section", function()
  local tenant, path, dbs

  local function open(kind)
    local db
    if kind == "memory" then
      db = storage.open { backend = "memory", tenant = tenant }
    elseif kind == "sqlite" then
      db = storage.open { backend = "sqlite", path = path, tenant = tenant }
    else
      db = storage.open { backend = "postgres", url = helpers.pg_url(), tenant = tenant }
    end
    dbs[#dbs + 1] = db
    return db
  end

  local function export(db) return (storage.exporter(db):to_string()) end

  -- The section's records, each as canonical JSON text.
  local function records(json)
    local out = {}
    for i, r in ipairs(storage.json_decode(json).data.sessions) do
      out[i] = storage.json_encode(r)
    end
    return out
  end

  before_each(function()
    tenant = helpers.unique_tenant("xsec")
    path = helpers.tmpname(".db")
    dbs = {}
  end)

  after_each(function()
    for _, db in ipairs(dbs) do
      pcall(wipe, db:sessions())
      db:close()
    end
    helpers.remove_db(path)
  end)

  it("goes memory -> SQLite -> PostgreSQL and back record for record", function()
    local mem = open("memory")
    local s = mem:sessions()
    s:create("plain")
    s:create("rich", { data = { turns = { { role = "user", text = "hé" }, { role = "ai" } },
                                big = math.maxinteger, f = 0.1, whole = 2.0, flag = false },
                       status = "completed", ttl = 3600 })
    s:create("touched", { status = "archived", expires_at = 4102444800.25 })
    helpers.sleep(0.01)
    s:touch("touched")
    s:update("plain", { data = { v = 2 } })
    s:create("expired", { expires_at = 1 })
    local first = export(mem)
    assert.matches('"expires_at":null', first, 1, true)
    local recs = records(first)
    assert.equal(3, #recs) -- the expired one is not exported
    local r = storage.json_decode(recs[2])
    assert.same({ "artifact_count", "created_at", "expires_at", "id", "last_accessed_at",
                  "session_data", "session_id", "status", "tenant_id", "updated_at" },
                (function()
                  local keys = {}
                  for k in pairs(r) do keys[#keys + 1] = k end
                  table.sort(keys)
                  return keys
                end)())
    assert.equal("rich", r.session_id)
    assert.equal(tenant, r.tenant_id)
    assert.matches(UUID, r.id)
    assert.equal("integer", math.type(r.created_at))
    assert.equal(math.floor(s:get("rich").created_at * 1e6 + 0.5), r.created_at)
    assert.equal(math.floor(s:get("rich").expires_at * 1e6 + 0.5), r.expires_at)

    local lite = open("sqlite")
    local st = storage.importer(lite):from_string(first)
    assert.equal(3, st.sessions)
    local second = export(lite)
    assert.same(recs, records(second))
    local pgdb = open("postgres")
    storage.importer(pgdb):from_string(second)
    local third = export(pgdb)
    assert.same(recs, records(third))
    for _, id in ipairs { "plain", "rich", "touched" } do
      assert.same(s:get(id), pgdb:sessions():get(id), id)
      assert.same(s:get(id), lite:sessions():get(id), id)
    end
    assert.equal(3, pgdb:stats().components.sessions)
  end)

  -- An rs-llmspell export's section, written by hand: a full record, the
  -- short form (no id, artifact_count, updated_at, last_accessed_at), an
  -- expired one and times as floats.
  local RS = [[{"version":"1.0","exported_at":"2025-01-15T10:30:00Z",
    "source_backend":"postgresql","migrations":["V9"],"data":{"sessions":[
      {"id":"0b5e2b34-7c1e-4f0e-9a3d-5f1b2c3d4e5f","tenant_id":"rs-tenant",
       "session_id":"sess-1","session_data":{"turns":12,"model":{"name":"gpt-4"}},
       "status":"active","created_at":1736937000000000,"last_accessed_at":1736937005000000,
       "expires_at":4102444800000000,"artifact_count":0,"updated_at":1736937004000000},
      {"tenant_id":"rs-tenant","session_id":"sess-2","session_data":{"x":[1,2]},
       "status":"completed","created_at":1736937000500000.0,"expires_at":null},
      {"session_id":"sess-old","session_data":{},"status":"expired",
       "created_at":1,"expires_at":2}
    ]}}]]

  for _, kind in ipairs { "memory", "sqlite", "postgres" } do
    it("reads rs-llmspell's records, short form included, into " .. kind, function()
      local db = open(kind)
      local s = db:sessions()
      local st = storage.importer(db):from_string(RS)
      assert.equal(2, st.sessions)
      assert.equal(1, st.skipped) -- sess-old has expired
      local one = s:get("sess-1")
      assert.same({ id = "sess-1", status = "active", data = { turns = 12,
                    model = { name = "gpt-4" } }, created_at = 1736937000,
                    updated_at = 1736937004, last_accessed_at = 1736937005,
                    expires_at = 4102444800, artifact_count = 0 }, one)
      local two = s:get("sess-2")
      assert.equal("completed", two.status)
      assert.equal(1736937000.5, two.created_at)
      assert.equal(two.created_at, two.updated_at)
      assert.equal(two.created_at, two.last_accessed_at)
      assert.is_nil(two.expires_at)
      assert.is_nil(s:get("sess-old"))
      local out = storage.json_decode(export(db)).data.sessions
      assert.equal(2, #out)
      assert.equal("0b5e2b34-7c1e-4f0e-9a3d-5f1b2c3d4e5f", out[1].id)
      assert.equal(db:tenant(), out[1].tenant_id)
      assert.matches(UUID, out[2].id) -- made for the short form
      assert.equal(1736937000500000, out[2].updated_at)

      -- conflicts by session_id: error, skip, replace
      local err = helpers.error_of(function()
        storage.importer(db):from_string(RS, { on_conflict = "error" })
      end)
      assert.equal("conflict", err.code)
      assert.matches("sess-1", err.message, 1, true)
      s:update("sess-1", { status = "archived" })
      st = storage.importer(db):from_string(RS, { on_conflict = "skip" })
      assert.equal(3, st.skipped)
      assert.equal("archived", s:get("sess-1").status)
      st = storage.importer(db):from_string(RS, { on_conflict = "replace" })
      assert.equal(2, st.sessions)
      assert.same(one, s:get("sess-1"))
      -- an expired session with the id counts as absent, even for "error"
      s:update("sess-2", { expires_at = 1 })
      st = storage.importer(db):from_string('{"version":"1.0","data":{"sessions":['
        .. '{"session_id":"sess-2","session_data":{"back":true}}]}}', { on_conflict = "error" })
      assert.equal(1, st.sessions)
      assert.same({ back = true }, s:get("sess-2").data)
    end)
  end

  it("refuses bad records, naming the field, and writes nothing", function()
    local db = open("sqlite")
    local s = db:sessions()
    s:create("keep")
    local function refused(rec, pattern)
      local doc = '{"version":"1.0","data":{"sessions":[{"session_id":"fine"},' .. rec .. ']}}'
      local err = helpers.error_of(function() storage.importer(db):from_string(doc) end)
      assert.equal("format", err.code, tostring(err))
      assert.matches(pattern, err.message, 1, true)
      assert.is_nil(s:get("fine"))
      assert.same({ "keep" }, s:list())
    end
    refused('{"id":"x"}', "sessions[1]: no session_id")
    refused('{"session_id":""}', "session_id must be 1..512 bytes")
    refused('{"session_id":7}', "session_id must be a string")
    refused('{"session_id":"b","status":"open"}',
            "session 'b': status must be one of active, completed, expired, archived")
    refused('{"session_id":"b","created_at":"yesterday"}',
            "session 'b': created_at must be integer microseconds")
    refused('{"session_id":"b","artifact_count":-1}',
            "session 'b': artifact_count must be a non-negative integer")
    refused('{"session_id":"b","id":5}', "session 'b': id must be a string")
    refused('7', "a session record must be an object")
  end)
end)
