--- A newcomer's first hour (issue 9): how storage.open routes a URL in
-- both of its forms and checks options before it touches anything, the
-- README's first snippet run twice in an empty directory, get-or-create
-- collections, error objects that say where and on which backend they
-- were raised, and filters whose operand type cannot match.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"
local pg = require "spec.support.pg"

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- Runs the shell command; returns its exit status and its output.
local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out
end

--- A fresh empty directory.
local function tmpdir()
  local dir = helpers.tmpname("")
  assert(os.execute("mkdir " .. shell_quote(dir)))
  return dir
end

local function rmdir(dir) os.execute("rm -rf " .. shell_quote(dir)) end

--- The error storage.open raises for these arguments, called from Lua so
-- that the message names 'open'.
local function open_error(...)
  local args = table.pack(...)
  return helpers.error_of(function() return storage.open(table.unpack(args, 1, args.n)) end)
end

--- LUA_PATH and LUA_CPATH for a child run in another directory: this
-- checkout's modules by absolute path.
local function child_env()
  local cwd = assert(io.popen("pwd")):read("l")
  return ("LUA_PATH=%s LUA_CPATH=%s"):format(
    shell_quote(cwd .. "/lua/?.lua;" .. cwd .. "/lua/?/init.lua;;"),
    shell_quote(cwd .. "/build/?.so;;"))
end

--- The bad-argument message of err without its position.
local function bare(err)
  assert.is_string(err)
  return (err:gsub("^[^:]+:%d+: ", ""))
end

--- A libpq conninfo for the test server: what a PostgreSQL handle's
-- location says ("host=... port=... dbname=... user=...").
local function pg_conninfo()
  local db <close> = storage.open(helpers.pg_url())
  return db:stats().location
end

describe("storage.open routes a URL the same way in both forms", function()
  local cwd_names = { "MEMORY", "sqlite3:x.db", "x.db", "host=127.0.0.1 dbname=app" }

  it("opens PostgreSQL from a libpq conninfo, as a string and as option 'url'", function()
    local conninfo = pg_conninfo()
    assert.matches("^host=.* dbname=", conninfo)
    local tenant = helpers.unique_tenant("conninfo")
    for _, open in ipairs {
      function() return storage.open(conninfo, { tenant = tenant }) end,
      function() return storage.open { url = conninfo, tenant = tenant } end,
      function() return storage.open { backend = "postgres", url = conninfo, tenant = tenant } end,
    } do
      local db <close> = open()
      assert.equal("postgres", db:backend_type())
      db:set("k", "v")
      assert.equal("v", db:get("k"))
    end
    assert.is_false(exists(conninfo))
  end)

  it("sends a conninfo to PostgreSQL even when nothing listens there", function()
    local conninfo = "host=127.0.0.1 port=1 dbname=app connect_timeout=2"
    for _, arg in ipairs { conninfo, { url = conninfo } } do
      local err = open_error(arg)
      assert.is_true(storage.is_error(err), tostring(err))
      assert.equal("connection", err.code)
      assert.equal("postgres", err.backend)
    end
    assert.is_false(exists(conninfo))
  end)

  it("refuses any other form, naming it, and creates no file", function()
    for _, url in ipairs { "MEMORY", "sqlite3:x.db", "x.db", "redis://localhost" } do
      local expected = "unknown storage URL '" .. url .. "' (expected \"memory\", "
          .. "\"sqlite:PATH\", \"sqlite::memory:\", \"postgresql://...\" or a libpq "
          .. "conninfo \"host=... dbname=...\")"
      assert.equal("bad argument #1 to 'open' (" .. expected .. ")",
                   bare(helpers.error_of(function() return storage.open(url) end)))
      assert.equal("bad argument #1 to 'open' (option 'url': " .. expected .. ")",
                   bare(helpers.error_of(function() return storage.open { url = url } end)))
      assert.equal("bad argument #1 to 'open' (option 'url': " .. expected .. ")",
                   bare(helpers.error_of(function()
                     return storage.open { url = url, tenant = "acme" }
                   end)))
    end
    -- a half-built conninfo is not one
    for _, url in ipairs { "host='x dbname=app", "=x", "host=x junk", "host x" } do
      local err = bare(helpers.error_of(function() return storage.open { url = url } end))
      assert.matches("unknown storage URL", err, 1, true)
    end
    for _, name in ipairs(cwd_names) do assert.is_false(exists(name), name) end
  end)

  it("routes memory and sqlite: URLs from option 'url' as from the string", function()
    local path = helpers.tmpname(".db")
    finally(function() helpers.remove_db(path) end)
    local m <close> = storage.open { url = "memory" }
    assert.equal("memory", m:backend_type())
    local s <close> = storage.open { url = "sqlite:" .. path }
    assert.equal("sqlite", s:backend_type())
    assert.equal(path, s:stats().location)
    local sm <close> = storage.open { url = "sqlite::memory:" }
    assert.is_false(sm:characteristics().persistent)
  end)

  it("lets an explicit backend win over the URL's shape", function()
    local dir = tmpdir()
    finally(function() rmdir(dir) end)
    -- a bare path is a file when backend = "sqlite" says so
    local path = dir .. "/plain.db"
    local db <close> = storage.open { backend = "sqlite", url = path }
    assert.equal("sqlite", db:backend_type())
    assert.equal(path, db:stats().location)
    -- even one that looks like a conninfo
    local odd = dir .. "/a=b.db"
    local db2 <close> = storage.open { backend = "sqlite", url = odd }
    assert.is_true(exists(odd))
    -- a URL that names another backend outright is a contradiction
    for _, o in ipairs {
      { backend = "postgres", url = "sqlite:" .. path },
      { backend = "sqlite", url = "memory" },
      { backend = "memory", url = "postgresql://x@y/z" },
    } do
      assert.equal("bad argument #1 to 'open' (options 'backend' and 'url' name different "
                   .. "backends)", bare(open_error(o)))
    end
    assert.equal("bad argument #1 to 'open' (option 'url' must be \"memory\" for backend "
                 .. "memory, got 'x.db')",
                 bare(open_error({ backend = "memory", url = "x.db" })))
    assert.equal("bad argument #1 to 'open' (options 'url' and 'path' both say where)",
                 bare(open_error({ url = "sqlite:" .. path, path = path })))
    assert.equal("bad argument #1 to 'open' (option 'url' and argument #1 both give the URL)",
                 bare(open_error("memory", { url = "memory" })))
  end)
end)

describe("storage.open checks every option before it touches anything", function()
  it("creates no SQLite file for an unknown option or a bad value", function()
    local dir = tmpdir()
    finally(function() rmdir(dir) end)
    local path = dir .. "/typo.db"
    local err = open_error("sqlite:" .. path, { synchronus = "off" })
    assert.equal("bad argument #1 to 'open' (unknown option 'synchronus' for backend sqlite)",
                 bare(err))
    err = open_error({ path = path, verify = "quick", cache_sise = 1 })
    assert.matches("unknown option 'cache_sise' for backend sqlite", err, 1, true)
    err = open_error("sqlite:" .. path, { synchronous = "of" })
    assert.equal("invalid", err.code)
    assert.equal("sqlite", err.backend)
    assert.matches("option 'synchronous' must be one of", err.message, 1, true)
    local code, out = run("ls -A " .. shell_quote(dir))
    assert.equal(0, code)
    assert.equal("", out) -- no typo.db, no -wal, no -shm
  end)

  it("refuses an option memory does not take", function()
    assert.equal("bad argument #1 to 'open' (unknown option 'synchronous' for backend memory)",
                 bare(open_error("memory", { synchronous = "off" })))
  end)

  it("creates no PostgreSQL schema for an unknown option or a bad value", function()
    local schema = "lls_typo_" .. helpers.unique_tenant("s"):gsub("[^%w_]", "_")
    local count = "SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = '"
        .. schema .. "'"
    local err = open_error(helpers.pg_url(),
                                 { schema = schema, conect_timeout = 5 })
    assert.equal("bad argument #1 to 'open' (unknown option 'conect_timeout' for backend "
                 .. "postgres)", bare(err))
    err = open_error(helpers.pg_url(),
                           { schema = schema, connect_timeout = "soon" })
    assert.equal("invalid", err.code)
    assert.equal("postgres", err.backend)
    assert.equal("0", pg.psql1(count))
    -- and the same options, right, do create it
    local db <close> = storage.open(helpers.pg_url(), { schema = schema, connect_timeout = 5 })
    assert.equal("1", pg.psql1(count))
    db:close()
    pg.psql("DROP SCHEMA " .. schema .. " CASCADE")
  end)
end)

describe("a missing directory", function()
  it("is an io error naming the directory, with nothing created", function()
    local dir = tmpdir()
    finally(function() rmdir(dir) end)
    local path = dir .. "/data/app.db"
    local err = open_error("sqlite:" .. path)
    assert.is_true(storage.is_error(err), tostring(err))
    assert.equal("io", err.code)
    assert.equal("sqlite", err.backend)
    assert.equal("cannot create SQLite database '" .. path .. "': directory '" .. dir
                 .. "/data' does not exist (SQLite creates the file, not its directory)",
                 err.message)
    local file = dir .. "/file"
    assert(io.open(file, "w")):close()
    err = open_error({ path = file .. "/app.db" })
    assert.equal("io", err.code)
    assert.equal("cannot create SQLite database '" .. file .. "/app.db': '" .. file
                 .. "' is not a directory", err.message)
  end)
end)

describe("the README's first snippet", function()
  --- The first ```lua block of README.md.
  local function first_snippet()
    local f = assert(io.open("README.md", "rb"))
    local text = f:read("a")
    f:close()
    local code = text:match("\n```lua\n(.-)\n```\n")
    assert.is_string(code, "README.md has no ```lua block")
    return code
  end

  it("runs twice in an empty directory", function()
    local dir = tmpdir()
    finally(function() rmdir(dir) end)
    local f = assert(io.open(dir .. "/snippet.lua", "wb"))
    f:write(first_snippet(), "\n")
    f:close()
    local env = child_env()
    for round = 1, 2 do
      local code, out = run(("cd %s && %s lua5.4 snippet.lua"):format(shell_quote(dir), env))
      assert.equal(0, code, "run " .. round .. ":\n" .. out)
      assert.matches('{"name":"Ada"}', out, 1, true)
      assert.matches("doc1\t", out, 1, true)
      assert.matches("not_found\n$", out)
    end
  end)
end)

describe("db:collection with create = true", function()
  for _, b in ipairs(helpers.backends()) do
    describe("on " .. b.name, function()
      local db
      before_each(function()
        if b.setup then b:setup() end
        db = b.open(nil, b)
      end)
      after_each(function()
        if db then db:close() end
        if b.teardown then b:teardown() end
      end)

      it("creates a collection once, then opens it", function()
        local opts = { dimension = 3, metric = "l2", m = 8, create = true }
        local col = db:collection("docs", opts)
        assert.same({ 3, "l2", 8 }, { db:list_collections()[1].dimension,
                                      db:list_collections()[1].metric,
                                      db:list_collections()[1].m })
        col:add { id = "a", vector = { 1, 2, 3 } }
        assert.equal(col, db:collection("docs", opts))
        col:close()
        local again = db:collection("docs", opts)
        assert.equal(1, again:count())
        -- options left out take what the collection has
        assert.equal(again, db:collection("docs", { dimension = 3, create = true }))
        assert.equal(again, db:collection("docs"))
        assert.equal(1, #db:list_collections())
        if b.shared then -- another handle finds it and does not create it again
          local other <close> = b.open(nil, b)
          assert.equal(1, other:collection("docs", opts):count())
        end
      end)

      it("raises conflict naming each parameter that differs, and opens nothing", function()
        db:create_collection("docs", { dimension = 3, preset = "fast" })
        local err = helpers.error_of(db.collection, db, "docs",
                                     { dimension = 4, metric = "ip", preset = "accurate",
                                       create = true })
        assert.is_true(storage.is_error(err), tostring(err))
        assert.equal("conflict", err.code)
        assert.equal(db:backend_type(), err.backend)
        assert.equal("collection 'docs' exists with dimension 3 (asked 4), metric \"cosine\" "
                     .. "(asked \"ip\"), m 12 (asked 32), ef_construction 100 (asked 400), "
                     .. "ef_search 50 (asked 200)", err.message)
        -- without create, options only check
        err = helpers.error_of(db.collection, db, "docs", { ef_search = 60 })
        assert.equal("collection 'docs' exists with ef_search 50 (asked 60)", err.message)
        assert.equal(3, db:collection("docs", { dimension = 3, m = 12 }):count() + 3)
      end)

      it("checks its arguments before looking anything up", function()
        local function msg(...)
          local args = table.pack(...)
          return bare(helpers.error_of(function()
            return db:collection(table.unpack(args, 1, args.n))
          end))
        end
        assert.equal("bad argument #2 to 'collection' (option 'dimension' is required with "
                     .. "create = true (1..4096))", msg("docs", { create = true }))
        assert.equal("bad argument #2 to 'collection' (unknown option 'dimensions')",
                     msg("docs", { dimensions = 3, create = true }))
        assert.equal("bad argument #2 to 'collection' (table expected, got string)",
                     msg("docs", "create"))
        assert.matches("option 'create'", msg("docs", { create = "yes", dimension = 3 }), 1,
                       true)
        assert.same({}, db:list_collections())
        local err = helpers.error_of(db.collection, db, "docs", { dimension = 3 })
        assert.equal("not_found", err.code)
        assert.same({}, db:list_collections())
      end)
    end)
  end
end)

describe("error objects", function()
  it("say where the failing call was, and print it", function()
    local db = storage.open("memory")
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(function() return db:collection("missing") end)
    assert.is_false(ok)
    local here = debug.getinfo(1, "S").short_src
    assert.equal(here .. ":" .. line, err.where)
    assert.equal(here .. ":" .. line .. ": llmspell.storage: not_found: no collection 'missing'",
                 tostring(err))
    db:close()
    line = debug.getinfo(1, "l").currentline + 1
    ok, err = pcall(function() return db:get("k") end)
    assert.equal(here .. ":" .. line .. ": llmspell.storage: closed: store is closed",
                 tostring(err))
    -- called straight from C (pcall), there is no Lua caller to name
    err = helpers.error_of(db.get, db, "k")
    assert.is_nil(err.where)
    assert.equal("llmspell.storage: closed: store is closed", tostring(err))
  end)

  it("say where an uncaught error was raised, in a script", function()
    local dir = tmpdir()
    finally(function() rmdir(dir) end)
    local f = assert(io.open(dir .. "/script.lua", "wb"))
    f:write('local storage = require "llmspell.storage"\n',
            'local db = storage.open("memory")\n',
            'db:close()\n',
            'db:set("k", "v")\n')
    f:close()
    local code, out = run(("cd %s && %s lua5.4 script.lua"):format(shell_quote(dir),
                                                                   child_env()))
    assert.is_not.equal(0, code)
    assert.matches("script.lua:4: llmspell.storage: closed: store is closed", out, 1, true)
  end)

  it("storage.error sets where only when given a level", function()
    local made = storage.error("quota", "over")
    assert.is_nil(made.where)
    assert.equal("llmspell.storage: quota: over", tostring(made))
    local line = debug.getinfo(1, "l").currentline + 1
    made = storage.error("quota", "over", nil, 1)
    local here = debug.getinfo(1, "S").short_src
    assert.equal(here .. ":" .. line, made.where)
    assert.equal(here .. ":" .. line .. ": llmspell.storage: quota: over", tostring(made))
    local function raiser() return storage.error("quota", "over", {}, 2) end
    line = debug.getinfo(1, "l").currentline + 1
    made = raiser()
    assert.equal(here .. ":" .. line, made.where)
    assert.equal("given", storage.error("quota", "over", { where = "given" }).where)
    assert.matches("table expected", helpers.error_of(storage.error, "quota", "x", "f"), 1, true)
  end)

  for _, b in ipairs(helpers.backends()) do
    it("name their backend on " .. b.name .. ": collections, closed objects", function()
      if b.setup then b:setup() end
      finally(function() if b.teardown then b:teardown() end end)
      local db = b.open(nil, b)
      local name = db:backend_type()
      local function check(what, f)
        local err = helpers.error_of(f)
        assert.is_true(storage.is_error(err), what .. ": " .. tostring(err))
        assert.equal(name, err.backend, what)
        assert.is_string(err.where, what)
      end
      local col = db:create_collection("c", { dimension = 2 })
      col:add { id = "a", vector = { 1, 0 } }
      check("missing collection", function() return db:collection("nope") end)
      check("existing collection", function() return db:create_collection("c", { dimension = 2 }) end)
      check("duplicate id", function() return col:add { id = "a", vector = { 1, 0 } } end)
      check("missing entry", function() return col:update_metadata("zz", {}) end)
      check("missing exported collection", function()
        return storage.exporter(db):to_string { collections = { "nope" } }
      end)
      check("import format", function() return storage.importer(db):from_string("{") end)
      check("import version", function() return storage.importer(db):from_string("{}") end)
      local exp, imp = storage.exporter(db), storage.importer(db)
      exp:close()
      imp:close()
      check("closed exporter", function() return exp:to_string() end)
      check("closed importer", function() return imp:from_string("{}") end)
      local col2 = db:collection("c")
      col2:close()
      check("closed collection", function() return col2:count() end)
      db:close()
      check("closed store", function() return db:get("k") end)
      check("collection of a closed store", function() return col:count() end)
      check("exporter of a closed store", function() return storage.exporter(db) end)
    end)
  end

  it("from storage.records and json_decode name no backend (they use no store)", function()
    local err = helpers.error_of(storage.json_decode, "[")
    assert.equal("format", err.code)
    assert.is_nil(err.backend)
    err = helpers.error_of(function() return storage.records("/nonexistent/x.json") end)
    assert.equal("io", err.code)
    assert.is_nil(err.backend)
  end)
end)

describe("filters whose operand type cannot match", function()
  for _, b in ipairs(helpers.backends()) do
    it("are refused for ordering operators, or match nothing, on " .. b.name, function()
      if b.setup then b:setup() end
      finally(function() if b.teardown then b:teardown() end end)
      local db <close> = b.open(nil, b)
      local col = db:create_collection("f", { dimension = 2 })
      col:add {
        { id = "n", vector = { 1, 0 }, metadata = { year = 2024, day = "2024-03-01" } },
        { id = "s", vector = { 0, 1 }, metadata = { year = "2024" } },
      }
      local function ids(filter)
        local out = {}
        for _, h in ipairs(col:search({ 1, 0 }, { k = 10, filter = filter })) do
          out[#out + 1] = h.id
        end
        table.sort(out)
        return out
      end
      for _, bad in ipairs { true, { 2020 }, { a = 1 } } do
        local err = bare(helpers.error_of(function()
          return col:search({ 1, 0 }, { filter = { year = { ["$gt"] = bad } } })
        end))
        assert.matches("^bad argument #2 to 'search' %(filter%.year%.%$gt: number or string "
                       .. "expected, got %a+%)$", err)
      end
      -- a number never matches a string, for any operator
      assert.same({ "n" }, ids { year = { ["$gt"] = 2020 } })
      assert.same({ "s" }, ids { year = { ["$gt"] = "2020" } })
      assert.same({ "s" }, ids { year = "2024" })
      assert.same({ "n" }, ids { year = 2024 })
      assert.same({ "n", "s" }, ids { year = { ["$ne"] = "1999" } })
      -- strings order by bytes: ISO dates compare as dates
      assert.same({ "n" }, ids { day = { ["$gte"] = "2024-01-31" } })
    end)
  end

  it("are documented in docs/collections.md", function()
    local f = assert(io.open("docs/collections.md", "rb"))
    local doc = f:read("a")
    f:close()
    assert.matches('{ year = { ["$gt"] = "2020" } }', doc, 1, true)
    assert.matches("a number never matches a string", doc, 1, true)
  end)
end)
