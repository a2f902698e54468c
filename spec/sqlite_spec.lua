--- SQLite-specific behaviour: durability under SIGKILL, several handles and
-- processes on one file, the busy timeout, open options, the schema and its
-- migrations as the sqlite3 command-line tool sees them. The KV contract
-- every backend shares lives in kv_contract_spec.lua.
local storage = require "llmspell.storage"
local system = require "system"
local helpers = require "spec.helpers"

local LUA = "lua5.4"
local HERE = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local WRITER = HERE .. "/support/sqlite_writer.lua"

local function q(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- Environment prefix for child interpreters: this process's module paths,
-- made absolute, so children find the same build whether busted got its
-- paths from the environment (make) or from .busted, and from any cwd.
local function child_env()
  local pwd = assert(io.popen("pwd"))
  local cwd = assert(pwd:read("l"))
  pwd:close()
  local function abs(paths)
    return (paths:gsub("%f[^;%z]%./", cwd .. "/"))
  end
  return ("env LUA_PATH=%s LUA_CPATH=%s "):format(q(abs(package.path)), q(abs(package.cpath)))
end

--- Runs the sqlite3 CLI on path; returns its output without the final
-- newline. Fails the test when the CLI fails.
local function cli(path, sql)
  local p = assert(io.popen(("sqlite3 -batch -bail %s %s 2>&1"):format(q(path), q(sql))))
  local out = p:read("a")
  local ok = p:close()
  assert(ok, "sqlite3 failed: " .. out)
  return (out:gsub("\n$", ""))
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function sqlite_open(path, opts)
  local o = { backend = "sqlite", path = path }
  for k, v in pairs(opts or {}) do o[k] = v end
  return storage.open(o)
end

describe("sqlite backend", function()
  local path

  before_each(function() path = helpers.tmpname(".db") end)
  after_each(function() helpers.remove_db(path) end)

  describe("durability under SIGKILL", function()
    local BATCH_KEYS = 50

    --- Highest batch number the writer acknowledged; only complete lines
    -- count (a kill could in principle cut the last one short).
    local function acknowledged(progress)
      local f = io.open(progress, "rb")
      if not f then return 0 end
      local s = f:read("a")
      f:close()
      local last = 0
      for line in s:gmatch("([^\n]*)\n") do
        local i = assert(math.tointeger(tonumber(line)), "garbled progress line: " .. line)
        assert(i == last + 1, "progress out of order: " .. line)
        last = i
      end
      return last
    end

    --- Starts the writer; the shell execs it, so $$ is the writer's pid and
    -- closing the pipe waits for (and reaps) exactly that process.
    local function start_writer(db, progress)
      local p = assert(io.popen(("echo $$; exec %s%s %s %s %s"):format(
        child_env(), LUA, q(WRITER), q(db), q(progress))))
      local pid = math.tointeger(tonumber(p:read("l")))
      assert(pid, "could not start the writer")
      return p, pid
    end

    it("keeps every acknowledged batch and never half a batch", function()
      local progress = helpers.tmpname(".progress")
      finally(function() os.remove(progress) end)
      local base_seed = os.time()
      local total_acked = 0
      for iter = 1, 5 do
        local seed = base_seed + iter
        math.randomseed(seed)
        local delay = 0.05 + math.random() * 0.35
        local ctx = (" (iteration %d, seed %d, delay %.3f s)"):format(iter, seed, delay)
        helpers.remove_db(path)
        os.remove(progress)

        local p, pid = start_writer(path, progress)
        -- Kill only once the writer is demonstrably mid-stream.
        local deadline = system.gettime() + 30
        while acknowledged(progress) < 1 and system.gettime() < deadline do
          system.sleep(0.005)
        end
        if acknowledged(progress) >= 1 then system.sleep(delay) end
        os.execute("kill -9 " .. pid)
        local _, how, sig = p:close()
        assert.are.equal("signal", how, "the writer exited on its own" .. ctx)
        assert.are.equal(9, sig, ctx)

        local acked = acknowledged(progress)
        assert(acked >= 1, "the writer acknowledged no batch" .. ctx)
        total_acked = total_acked + acked
        assert.are.equal("ok", cli(path, "PRAGMA integrity_check"), ctx)

        local db = sqlite_open(path)
        local present = 0
        for i = 1, acked + 1 do
          local keys = db:list_keys("b" .. i .. ":")
          local marker = db:get("m" .. i)
          if #keys == 0 and marker == nil then
            assert(i > acked, ("acknowledged batch %d was lost"):format(i) .. ctx)
          else
            assert.are.equal(BATCH_KEYS, #keys, ("batch %d is half-written"):format(i) .. ctx)
            assert.are.equal(tostring(i), marker, ("batch %d lacks its marker"):format(i) .. ctx)
            assert.are.equal(i - 1, present, ("batch %d present after a gap"):format(i) .. ctx)
            local got = db:get_batch(keys)
            for j = 1, BATCH_KEYS do
              local k = ("b%d:%d"):format(i, j)
              assert.are.equal(("v%d:%d:"):format(i, j) .. string.rep("x", 300), got[k], k .. ctx)
            end
            present = i
          end
        end
        -- Nothing beyond the batches checked above (one unacknowledged
        -- batch may have committed just before the kill).
        assert.are.equal(present * (BATCH_KEYS + 1), db:stats().keys, ctx)
        db:close()
      end
      assert(total_acked >= 5)
    end)
  end)

  describe("several handles on one file", function()
    it("see each other's commits", function()
      local a = sqlite_open(path)
      local b = sqlite_open(path)
      finally(function() a:close(); b:close() end)
      a:set("shared", "from a")
      assert.are.equal("from a", b:get("shared"))
      assert.is_true(b:delete("shared"))
      assert.is_nil(a:get("shared"))
      assert.is_false(a:exists("shared"))
      b:set_batch { x = "1", y = "2" }
      assert.are.same({ "x", "y" }, a:list_keys())
      a:transaction(function(tx) tx:set("z", "3") end)
      assert.are.equal("3", b:get("z"))
    end)

    it("keep tenants apart in one file", function()
      local acme = sqlite_open(path, { tenant = "acme" })
      local other = sqlite_open(path, { tenant = "other" })
      finally(function() acme:close(); other:close() end)
      acme:set("k", "acme's")
      other:set("k", "other's")
      assert.are.equal("acme's", acme:get("k"))
      assert.are.equal("other's", other:get("k"))
      other:clear()
      assert.are.equal("acme's", acme:get("k"))
      assert.are.equal("acme|k", cli(path, "SELECT tenant_id || '|' || key FROM kv_store"))
    end)

    it("lets processes create the same new file at once", function()
      -- The children load everything, then sleep until a shared start time,
      -- so all race to switch the fresh file to WAL and to apply migrations.
      local code = [[
        local system = require "system"
        local storage = require "llmspell.storage"
        system.sleep(%.17g - system.gettime())
        local db = storage.open{ backend = "sqlite", path = %q }
        db:set("p%d", "x")
        db:close()
        print("ok")]]
      local N = 8
      for round = 1, 3 do
        helpers.remove_db(path)
        local start = system.gettime() + 0.4
        local cmds = {}
        for i = 1, N do
          cmds[#cmds + 1] = ("%s%s -e %s &"):format(child_env(), LUA,
                                                   q(code:format(start, path, i)))
        end
        local p = assert(io.popen("( " .. table.concat(cmds, " ") .. " wait ) 2>&1"))
        local out = p:read("a")
        p:close()
        local ctx = ("round %d: %s"):format(round, out)
        assert.are.equal(N, select(2, out:gsub("ok\n", "")), ctx)
        assert.are.equal(tostring(N), cli(path, "SELECT count(*) FROM kv_store"), ctx)
        assert.are.equal("13", cli(path, "SELECT count(*) FROM llmspell_migrations"), ctx)
      end
    end)
  end)

  describe("busy timeout", function()
    it("makes a second writer wait about busy_timeout_ms, then fail with 'busy'", function()
      local a = sqlite_open(path)
      local b = sqlite_open(path, { busy_timeout_ms = 200 })
      finally(function() a:close(); b:close() end)
      b:set("before", "1")

      a:transaction(function(tx)
        tx:set("held", "by a") -- a now holds the write lock

        local t0 = system.gettime()
        local err = helpers.error_of(b.set, b, "blocked", "x")
        local elapsed = system.gettime() - t0
        assert.are.equal("busy", err.code)
        assert.are.equal(5, err.sqlite_code % 256) -- SQLITE_BUSY
        assert(elapsed >= 0.15, ("gave up after %.3f s, before the timeout"):format(elapsed))
        assert(elapsed < 3, ("waited %.3f s, far beyond the timeout"):format(elapsed))

        err = helpers.error_of(b.set_batch, b, { p = "1", q = "2" })
        assert.are.equal("busy", err.code)
        err = helpers.error_of(b.transaction, b, function(t) t:set("r", "1") end)
        assert.are.equal("busy", err.code)

        -- WAL: readers are not blocked, and do not see uncommitted rows.
        assert.is_nil(b:get("held"))
        assert.are.same({ "before" }, b:list_keys())
      end)

      assert.are.equal("by a", b:get("held"))
      assert.are.same({ "before", "held" }, b:list_keys())
      b:set("after", "ok")
      assert.are.equal("ok", a:get("after"))
    end)

    it("fails at once with busy_timeout_ms = 0", function()
      local a = sqlite_open(path)
      local b = sqlite_open(path, { busy_timeout_ms = 0 })
      finally(function() a:close(); b:close() end)
      a:transaction(function(tx)
        tx:set("held", "1")
        local t0 = system.gettime()
        local err = helpers.error_of(b.set, b, "k", "v")
        assert.are.equal("busy", err.code)
        assert(system.gettime() - t0 < 0.15, "waited although busy_timeout_ms = 0")
      end)
    end)
  end)

  describe("open options", function()
    it("accept every synchronous mode and the seed's aliases", function()
      for _, mode in ipairs { "off", "normal", "full", "fast", "balanced", "safe", "FULL" } do
        local db = sqlite_open(path, { synchronous = mode })
        db:set("mode", mode)
        assert.are.equal(mode, db:get("mode"))
        db:close()
      end
    end)

    it("refuse a bad value, naming the option", function()
      local cases = {
        { synchronous = "sometimes" },
        { busy_timeout_ms = -1 },
        { busy_timeout_ms = "soon" },
        { busy_timeout_ms = 1.5 },
        { cache_size = "lots" },
        { mmap_size = -1 },
        { mmap_size = "big" },
      }
      for _, opts in ipairs(cases) do
        local name = next(opts)
        local err = helpers.error_of(sqlite_open, path, opts)
        local msg = type(err) == "table" and err.message or tostring(err)
        if type(err) == "table" then assert.are.equal("invalid", err.code, msg) end
        assert.matches(name, msg, 1, true)
      end
      assert.is_false(file_exists(path), "a refused open created the file")
    end)

    it("accept cache_size in pages or negative KiB, and mmap_size in bytes", function()
      for _, opts in ipairs { { cache_size = 500 }, { cache_size = -8192 },
                              { mmap_size = 0 }, { mmap_size = 1048576 } } do
        local db = sqlite_open(path, opts)
        db:set("k", "v")
        assert.are.equal("v", db:get("k"))
        db:close()
      end
    end)

    it("refuse options of other backends", function()
      assert.has_error(function() sqlite_open(path, { schema = "llmspell" }) end)
    end)

    it("take a path that starts with 'file:' as a file name, not a URI", function()
      -- Debian builds SQLite with SQLITE_USE_URI; without care this name
      -- would open "x.db" read-only.
      local dir = helpers.tmpname(".d")
      assert(os.execute("mkdir " .. q(dir)))
      finally(function() os.execute("rm -rf " .. q(dir)) end)
      local code = [[
        local db = require("llmspell.storage").open("sqlite:file:x.db?mode=ro")
        db:set("k", "v")
        print(db:get("k"))]]
      local p = assert(io.popen(("cd %s && %s%s -e %s 2>&1"):format(q(dir), child_env(), LUA,
                                                                    q(code))))
      local out = p:read("a")
      p:close()
      assert.are.equal("v\n", out)
      assert.is_true(file_exists(dir .. "/file:x.db?mode=ro"))
      assert.is_false(file_exists(dir .. "/x.db"))
    end)
  end)

  describe("opening", function()
    it("reports a missing directory as 'io', naming the path", function()
      local bad = "/nonexistent-llmspell-dir/sub/x.db"
      local err = helpers.error_of(sqlite_open, bad)
      assert.are.equal("io", err.code)
      assert.matches(bad, err.message, 1, true)
      assert.are.equal(14, err.sqlite_code % 256) -- SQLITE_CANTOPEN
    end)

    it("refuses a file that is not a database, and leaves it alone", function()
      local junk = string.rep("this is not an SQLite database\n", 200)
      write_file(path, junk)
      local err = helpers.error_of(sqlite_open, path)
      assert.are.equal("io", err.code)
      assert.matches(path, err.message, 1, true)
      assert.are.equal(26, err.sqlite_code % 256) -- SQLITE_NOTADB
      assert.are.equal(junk, read_file(path))
    end)

    it("keeps sqlite::memory: in memory, one database per handle", function()
      local a = storage.open("sqlite::memory:")
      local b = storage.open("sqlite::memory:")
      a:set("k", "a")
      assert.is_nil(b:get("k"))
      assert.are.equal("sqlite", a:backend_type())
      a:close()
      b:close()
      assert.is_false(file_exists(":memory:"))
    end)
  end)

  describe("schema", function()
    it("is WAL on a file", function()
      sqlite_open(path):close()
      assert.are.equal("wal", cli(path, "PRAGMA journal_mode"))
    end)

    it("records migrations once, readable with the sqlite3 tool", function()
      local t0 = system.gettime()
      sqlite_open(path):close()
      local list = "SELECT version, name, applied_at FROM llmspell_migrations"
      local rows = cli(path, list)
      local want = { { "1", "kv_store" }, { "2", "vectors" }, { "3", "export" },
                     { "4", "checksums" }, { "5", "sessions" }, { "6", "artifacts" },
                     { "7", "agent_states" }, { "8", "workflow_states" },
                     { "9", "procedural_memory" }, { "10", "knowledge_graph" },
                     { "11", "hook_history" }, { "12", "event_log" },
                     { "13", "vector_scan" } }
      local i = 0
      for line in rows:gmatch("[^\n]+") do
        i = i + 1
        local version, name, applied = line:match("^(%d+)|([%w_]+)|(%d+)$")
        assert.are.same(want[i], { version, name }, rows)
        applied = tonumber(applied) / 1e6 -- microseconds
        assert(applied >= t0 - 5 and applied <= system.gettime() + 5, rows)
      end
      assert.are.equal(#want, i, rows)

      sqlite_open(path):close()
      local db = sqlite_open(path)
      db:set("k", "v")
      db:close()
      assert.are.equal(rows, cli(path, list), "a migration was applied again")
      assert.matches("WITHOUT ROWID", cli(path, ".schema kv_store"), 1, true)
      assert.are.equal("kv_store_expires",
                       cli(path, "SELECT name FROM sqlite_master WHERE type = 'index'"
                                 .. " AND tbl_name = 'kv_store' AND sql LIKE '%expires_at%'"))
    end)

    it("refuses a database from a newer version with 'version'", function()
      sqlite_open(path):close()
      cli(path, "INSERT INTO llmspell_migrations VALUES (999, 'from_the_future', 0)")
      local err = helpers.error_of(sqlite_open, path)
      assert.are.equal("version", err.code)
      assert.matches("999", err.message, 1, true)
      assert.are.equal("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n999",
                       cli(path, "SELECT version FROM llmspell_migrations"))
    end)

    it("stores keys as text, values as blobs (empty and binary ones too)", function()
      local db = sqlite_open(path, { tenant = "acme" })
      db:set("empty", "")
      db:set("nul", "a\0b\255")
      db:close()
      assert.are.equal("acme|empty|text|blob|0|\nacme|nul|text|blob|4|610062FF",
                       cli(path, "SELECT tenant_id, key, typeof(key), typeof(value),"
                                 .. " length(value), hex(value) FROM kv_store ORDER BY key"))
    end)

    it("keeps created_at on overwrite and stores times in microseconds", function()
      local db = sqlite_open(path)
      local t0 = system.gettime()
      db:set("k", "1")
      system.sleep(0.01)
      db:set("k", "2", { ttl = 3600 })
      local row = cli(path, "SELECT created_at, updated_at, expires_at FROM kv_store")
      local c, u, e = row:match("^(%d+)|(%d+)|(%d+)$")
      c, u, e = tonumber(c), tonumber(u), tonumber(e)
      assert(c and u and e, row)
      assert(math.abs(c / 1e6 - t0) < 5, row)
      assert(u - c >= 10000, "created_at was not kept: " .. row)
      assert(math.abs((e - u) / 1e6 - 3600) < 1, row)
      db:set("k", "3") -- no ttl: never expires, stored as NULL
      assert.are.equal("1", cli(path, "SELECT expires_at IS NULL FROM kv_store"))
      db:close()
    end)

    it("gives an expired key a fresh created_at when it is set again", function()
      local db = sqlite_open(path)
      finally(function() db:close() end)
      db:set("k", "old", { ttl = 0.02 })
      local first = cli(path, "SELECT created_at FROM kv_store")
      system.sleep(0.05)
      assert.is_nil(db:get("k"))
      db:set("k", "new")
      local second = cli(path, "SELECT created_at FROM kv_store")
      assert(tonumber(second) > tonumber(first), first .. " vs " .. second)
    end)

    it("removes expired rows physically when a write sweeps", function()
      local db = sqlite_open(path)
      db:set("short", "v", { ttl = 0.02 })
      db:set("long", "v", { ttl = 3600 })
      db:close()
      system.sleep(0.05)
      assert.are.equal("2", cli(path, "SELECT count(*) FROM kv_store"))
      -- a fresh handle sweeps before its first write
      db = sqlite_open(path)
      db:set("other", "v")
      db:close()
      assert.are.equal("long\nother", cli(path, "SELECT key FROM kv_store ORDER BY key"))
    end)
  end)

  describe("prefixes", function()
    it("are literal and case-sensitive, unlike SQL LIKE", function()
      local db = sqlite_open(path)
      finally(function() db:close() end)
      db:set_batch { ab = "1", Ab = "1", AB = "1", ["a%"] = "1", ["a_b"] = "1",
                     ["a\\"] = "1", axb = "1", B = "1" }
      assert.are.same({ "a%", "a\\", "a_b", "ab", "axb" }, db:list_keys("a"))
      assert.are.same({ "a_b" }, db:list_keys("a_"))
      assert.are.same({ "a%" }, db:list_keys("a%"))
      assert.are.same({ "AB", "Ab" }, db:list_keys("A"))
      assert.are.same({ "AB", "Ab", "B", "a%", "a\\", "a_b", "ab", "axb" }, db:list_keys())
    end)
  end)
end)
