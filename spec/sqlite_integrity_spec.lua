--- SQLite: damaged records and files that are not ours.
--
-- Per-record checksums (CRC-32C of each key-value row and each vector row)
-- turn a record changed behind the library's back into an `integrity`
-- error on every read path instead of an altered value; `verify` checks
-- the file at open; another program's database is refused without a byte
-- written to it; a store that may not be written (mode = "ro", a read-only
-- directory or file) opens read-only, and its writes raise `permission`.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

local LUA = "lua5.4"

local function q(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
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

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function sqlite_open(path, opts)
  local o = { backend = "sqlite", path = path }
  for k, v in pairs(opts or {}) do o[k] = v end
  return storage.open(o)
end

--- The error code of f(...), which must fail.
local function code_of(f, ...)
  local err = helpers.error_of(f, ...)
  assert(storage.is_error(err), "not an error object: " .. tostring(err))
  return err.code, err.message
end

local function vec(i, dim)
  local t = {}
  for j = 1, dim do t[j] = math.sin(i * 3 + j) end
  return t
end

local function same_vector(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if math.abs(a[i] - b[i]) > 1e-6 then return false end
  end
  return true
end

describe("sqlite integrity", function()
  local path

  before_each(function() path = helpers.tmpname(".db") end)
  after_each(function() helpers.remove_db(path) end)

  describe("a key-value record changed through raw SQL", function()
    before_each(function()
      local db = sqlite_open(path)
      db:set_batch { a = "apple", b = "banana", c = "cherry" }
      db:set("t", "timed", { ttl = 3600 })
      db:close()
    end)

    it("raises integrity on get, get_batch, scan and export, never the altered value", function()
      cli(path, "UPDATE kv_store SET value = CAST('BANANA' AS BLOB) WHERE key = 'b'")
      local db = sqlite_open(path)
      finally(function() db:close() end)
      assert.are.equal("integrity", code_of(db.get, db, "b"))
      local code, msg = code_of(db.get, db, "b")
      assert.are.equal("integrity", code)
      assert.matches("key 'b'", msg, 1, true)
      assert.are.equal("integrity", code_of(db.get_batch, db, { "a", "b" }))
      assert.are.equal("integrity", code_of(function()
        for _ in db:scan() do end
      end))
      assert.are.equal("integrity", code_of(function()
        storage.exporter(db):to_string()
      end))
      -- the other records are intact and still read
      assert.are.equal("apple", db:get("a"))
      assert.are.same({ a = "apple", c = "cherry" }, db:get_batch { "a", "c" })
      -- keys alone do not read values: listing them still works
      assert.are.same({ "a", "b", "c", "t" }, db:list_keys())
      -- writing the record again repairs it
      db:set("b", "banana")
      assert.are.equal("banana", db:get("b"))
      assert.are.same({}, db:check())
    end)

    it("raises integrity for a changed expiry and for a row inserted by hand", function()
      cli(path, "UPDATE kv_store SET expires_at = expires_at + 1000000 WHERE key = 't';"
                .. " INSERT INTO kv_store (tenant_id, key, value, created_at, updated_at)"
                .. " VALUES ('default', 'h', x'6869', 1, 1)")
      local db = sqlite_open(path)
      finally(function() db:close() end)
      assert.are.equal("integrity", code_of(db.get, db, "t"))
      assert.are.equal("integrity", code_of(db.get, db, "h"))
    end)

    it("is reported by db:check() and refused by verify = 'full'", function()
      cli(path, "UPDATE kv_store SET value = x'00' WHERE key = 'c'")
      local db = sqlite_open(path)
      local problems = db:check()
      db:close()
      assert.are.equal(1, #problems)
      assert.are.equal("checksum", problems[1].where)
      assert.matches("kv_store: tenant 'default', key 'c'", problems[1].what, 1, true)
      local code, msg = code_of(sqlite_open, path, { verify = "full" })
      assert.are.equal("integrity", code)
      assert.matches("checksum", msg, 1, true)
      -- quick_check looks at pages, not at records: the file opens
      sqlite_open(path, { verify = "quick" }):close()
    end)
  end)

  describe("a vector row changed through raw SQL", function()
    local DIM = 4

    local function fill()
      local db = sqlite_open(path)
      local col = db:create_collection("docs", { dimension = DIM })
      local entries = {}
      for i = 1, 20 do
        entries[i] = { id = "e" .. i, vector = vec(i, DIM), metadata = { n = i } }
      end
      col:add(entries)
      db:close() -- saves a snapshot: reopening reads it, and the rows too
    end

    it("raises integrity when the collection is opened", function()
      fill()
      cli(path, "UPDATE vector_embeddings SET metadata = '{\"n\":999}' WHERE id = 'e7'")
      local db = sqlite_open(path)
      finally(function() db:close() end)
      local code, msg = code_of(db.collection, db, "docs")
      assert.are.equal("integrity", code)
      assert.matches("id 'e7'", msg, 1, true)
      assert.are.equal("integrity", code_of(function()
        storage.exporter(db):to_string()
      end))
      local problems = db:check()
      assert.are.equal(1, #problems)
      assert.matches("vector_embeddings: tenant 'default', collection %d+, id 'e7'",
                     problems[1].what)
    end)

    it("raises integrity in a search that catches up with the changed row", function()
      fill()
      local a = sqlite_open(path)
      local b = sqlite_open(path)
      finally(function() a:close(); b:close() end)
      local col = a:collection("docs")
      assert.are.equal(20, #col:search(vec(1, DIM), { k = 20 }))
      -- b rewrites e3; before a catches up, e3's vector is zeroed by hand
      b:collection("docs"):upsert { id = "e3", vector = vec(300, DIM), metadata = { n = 3 } }
      cli(path, "UPDATE vector_embeddings SET vector = zeroblob(16) WHERE id = 'e3'")
      assert.are.equal("integrity", code_of(col.search, col, vec(1, DIM), { k = 5 }))
      -- and it stays refused: the collection reloads, and the row is still bad
      assert.are.equal("integrity", code_of(col.get, col, "e1"))
    end)
  end)

  describe("a store from before the checksums", function()
    it("gets them from the upgrade, and every read accepts them", function()
      local db = sqlite_open(path, { tenant = "acme" })
      db:set_batch { k1 = "one", k2 = "\0two\255" }
      db:set("k3", "three", { ttl = 3600 })
      local col = db:create_collection("docs", { dimension = 3 })
      col:add { { id = "a", vector = { 1, 2, 3 }, metadata = { x = 1 }, scope = "s",
                  event_time = 1700000000 },
                { id = "b", vector = { 3, 2, 1 }, ttl = 3600 } }
      db:close()
      -- what a store written by the previous version looks like
      cli(path, "ALTER TABLE kv_store DROP COLUMN crc; ALTER TABLE vector_embeddings"
                .. " DROP COLUMN crc; DELETE FROM llmspell_migrations WHERE version >= 4;"
                .. " PRAGMA application_id = 0")
      db = sqlite_open(path, { tenant = "acme" })
      finally(function() db:close() end)
      assert.are.same({ "001_kv_store", "002_vectors", "003_export", "004_checksums",
                        "005_sessions", "006_artifacts", "007_agent_states", "008_workflow_states",
                        "009_procedural_memory", "010_knowledge_graph", "011_hook_history",
                        "012_event_log", "013_vector_scan" },
                      (function()
                        local t = {}
                        for i, m in ipairs(db:migrations()) do t[i] = m.name end
                        return t
                      end)())
      assert.are.equal(tostring(0x4C4C5354), cli(path, "PRAGMA application_id"))
      assert.are.equal("0", cli(path, "SELECT count(*) FROM kv_store WHERE crc IS NULL"))
      assert.are.same({ k1 = "one", k2 = "\0two\255", k3 = "three" },
                      db:get_batch { "k1", "k2", "k3" })
      col = db:collection("docs")
      local a = col:get("a")
      assert.is_true(same_vector({ 1, 2, 3 }, a.vector))
      assert.are.same({ x = 1 }, a.metadata)
      assert.is_truthy(col:get("b"))
      assert.are.same({}, db:check())
      storage.exporter(db):to_string()
      -- and they are checked from then on
      cli(path, "UPDATE vector_embeddings SET scope = 't' WHERE id = 'a'")
      local other = sqlite_open(path, { tenant = "acme" })
      finally(function() other:close() end)
      assert.are.equal("integrity", code_of(other.collection, other, "docs"))
    end)
  end)

  describe("a file copy with flipped bytes", function()
    local N = 50000

    local function value(i)
      return ("value %07d "):format(i) .. string.rep(string.char(65 + i % 26), 80)
    end

    it("reads as integrity or io errors, or missing keys, never as an altered value", function()
      local db = sqlite_open(path)
      db:transaction(function(tx)
        for i = 1, N do tx:set(("key:%07d"):format(i), value(i)) end
      end)
      db:close()
      local data = read_file(path)
      local PAGE = 4096
      local pages = #data // PAGE
      local copy = helpers.tmpname(".db")
      finally(function() helpers.remove_db(copy) end)
      local seen = {}
      math.randomseed(17)
      for trial = 1, 8 do
        -- 32 bytes inverted somewhere in the middle half of the file
        local at = math.random(pages // 4, 3 * pages // 4) * PAGE + math.random(0, PAGE - 32)
        local flipped = data:sub(at + 1, at + 32):gsub(".", function(c)
          return string.char(c:byte() ~ 0xff)
        end)
        helpers.remove_db(copy)
        write_file(copy, data:sub(1, at) .. flipped .. data:sub(at + 33))
        local ctx = (" (trial %d, offset %d)"):format(trial, at)

        local function check_code(err)
          assert(storage.is_error(err), tostring(err) .. ctx)
          assert(err.code == "integrity" or err.code == "io", err.code .. ": " .. err.message .. ctx)
          seen[err.code] = true
        end
        local ok, h = pcall(sqlite_open, copy)
        if not ok then
          check_code(h)
        else
          local keys = {}
          for i = 1, N do
            local k = ("key:%07d"):format(i)
            keys[#keys + 1] = k
            local got_ok, v = pcall(h.get, h, k)
            if not got_ok then
              check_code(v)
            elseif v ~= nil then
              assert(v == value(i), "altered value for " .. k .. ctx)
            end
          end
          local got_ok, map = pcall(h.get_batch, h, keys)
          if not got_ok then check_code(map) else
            for k, v in pairs(map) do
              assert(v == value(tonumber(k:match("%d+"))), "altered value for " .. k .. ctx)
            end
          end
          local scan_ok, err = pcall(function()
            for k, v in h:scan("key:") do
              assert(v == value(tonumber(k:match("%d+"))), "altered value for " .. k .. ctx)
            end
          end)
          if not scan_ok then check_code(err) end
          h:close()
        end
      end
      assert.is_true(seen.integrity, "no trial hit a record: the checksums were never tested")
    end)
  end)

  describe("verify at open", function()
    --- A copy of a filled store whose middle kv_store leaf page has an
    -- impossible page type: nothing at open reads it.
    local function damaged()
      local db = sqlite_open(path)
      db:transaction(function(tx)
        for i = 1, 5000 do tx:set(("k%05d"):format(i), string.rep("x", 100)) end
      end)
      db:close()
      local data = read_file(path)
      local PAGE = tonumber(cli(path, "PRAGMA page_size"))
      local pages = #data // PAGE
      for p = pages // 2, pages - 1 do
        if data:byte(p * PAGE + 1) == 0x0A then -- an index b-tree leaf
          write_file(path, data:sub(1, p * PAGE) .. "\255" .. data:sub(p * PAGE + 2))
          return
        end
      end
      error("no leaf page found")
    end

    it("opens a healthy store with 'quick' and 'full'", function()
      sqlite_open(path):close()
      for _, level in ipairs { "off", "quick", "full", "QUICK" } do
        local db = sqlite_open(path, { verify = level })
        db:set("k", level)
        assert.are.equal(level, db:get("k"))
        db:close()
      end
    end)

    it("raises integrity on a damaged file, which opens without it", function()
      damaged()
      sqlite_open(path):close() -- SQLite's default: the damage goes unnoticed at open
      for _, level in ipairs { "quick", "full" } do
        local code, msg = code_of(sqlite_open, path, { verify = level })
        assert.are.equal("integrity", code, msg)
        assert.matches(("verify = \"%s\""):format(level), msg, 1, true)
        assert.matches(path, msg, 1, true)
      end
    end)

    it("refuses an unknown level, naming the option, before touching the file", function()
      local code, msg = code_of(sqlite_open, path, { verify = "yes" })
      assert.are.equal("invalid", code)
      assert.matches("option 'verify' must be one of off, quick, full", msg, 1, true)
      assert.is_false(exists(path))
    end)
  end)

  describe("another program's database", function()
    local function refused_untouched(setup_sql)
      cli(path, setup_sql)
      local before = read_file(path)
      assert.are.equal("delete", cli(path, "PRAGMA journal_mode"))
      local code, msg = code_of(sqlite_open, path)
      assert.are.equal("format", code)
      assert.matches("another program's SQLite database", msg, 1, true)
      assert.matches(path, msg, 1, true)
      assert.are.equal("delete", cli(path, "PRAGMA journal_mode"))
      assert.are.equal(before, read_file(path), "the refused open changed the file")
      assert.is_false(exists(path .. "-wal"))
    end

    it("is refused and keeps its journal mode and its bytes", function()
      refused_untouched("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
                        .. " INSERT INTO notes (body) VALUES ('hello')")
    end)

    it("is refused when its tables carry our names", function()
      refused_untouched("CREATE TABLE kv_store (a, b); INSERT INTO kv_store VALUES (1, 2)")
    end)

    it("is refused when it has another application_id, even with no tables", function()
      refused_untouched("PRAGMA application_id = 1234; PRAGMA user_version = 1")
    end)

    it("is not confused with an empty database, which becomes a store", function()
      cli(path, "PRAGMA user_version = 0")
      local db = sqlite_open(path)
      db:set("k", "v")
      db:close()
      assert.are.equal(tostring(0x4C4C5354), cli(path, "PRAGMA application_id"))
      assert.are.equal("wal", cli(path, "PRAGMA journal_mode"))
    end)
  end)

  describe("a store that may not be written", function()
    local dir

    before_each(function()
      dir = helpers.tmpname(".d")
      assert(os.execute("mkdir " .. q(dir)))
      path = dir .. "/store.db"
      local db = sqlite_open(path)
      db:set("k", "v")
      db:create_collection("docs", { dimension = 2 }):add { id = "a", vector = { 1, 0 } }
      db:close()
    end)
    after_each(function() os.execute("chmod -R u+w " .. q(dir) .. "; rm -rf " .. q(dir)) end)

    --- Reads succeed; every kind of write raises permission.
    local function read_only_checks(db)
      assert.are.equal("v", db:get("k"))
      assert.are.equal("k", db:list_keys()[1])
      local col = db:collection("docs")
      assert.are.equal("a", col:search({ 1, 0 }, { k = 1 })[1].id)
      for what, write in pairs {
        set = function() db:set("k2", "v") end,
        delete = function() db:delete("k") end,
        set_batch = function() db:set_batch { x = "1" } end,
        transaction = function() db:transaction(function(tx) tx:set("x", "1") end) end,
        create_collection = function() db:create_collection("c2", { dimension = 2 }) end,
        add = function() col:add { id = "b", vector = { 0, 1 } } end,
      } do
        local code, msg = code_of(write)
        assert.are.equal("permission", code, what .. ": " .. msg)
        assert.matches("read-only", msg, 1, true)
      end
      assert.are.equal("v", db:get("k"))
    end

    it("opens with mode = 'ro', reads, and refuses writes with permission", function()
      local before = read_file(path)
      local db = sqlite_open(path, { mode = "ro" })
      read_only_checks(db)
      db:close()
      assert.are.equal(before, read_file(path))
    end)

    it("refuses mode = 'ro' on a missing file, creating nothing", function()
      local missing = dir .. "/missing.db"
      assert.are.equal("not_found", code_of(sqlite_open, missing, { mode = "ro" }))
      assert.is_false(exists(missing))
      local code, msg = code_of(sqlite_open, path, { mode = "readonly" })
      assert.are.equal("invalid", code)
      assert.matches("option 'mode'", msg, 1, true)
      assert.are.equal("invalid", code_of(storage.open, "sqlite::memory:", { mode = "ro" }))
    end)

    local function whoami()
      local _, out = sh("id -u")
      return tonumber(out)
    end

    --- Runs code in a child interpreter as the unprivileged user `nobody`
    -- (only possible for root); returns its output, or nil when this
    -- machine cannot run the library as that user.
    local function as_nobody(code)
      local pwd = io.popen("pwd"):read("l")
      local function abs(paths) return (paths:gsub("%f[^;%z]%./", pwd .. "/")) end
      local prefix = ("setpriv --reuid=65534 --regid=65534 --clear-groups env LUA_PATH=%s"
                      .. " LUA_CPATH=%s %s -e "):format(q(abs(package.path)),
                                                        q(abs(package.cpath)), LUA)
      local ok = sh(prefix .. q('require "llmspell.storage"'))
      if not ok then return nil end
      local _, out = sh(prefix .. q(code))
      return out
    end

    it("opens in a directory it may not write (chmod 0555), and reads", function()
      assert(os.execute("chmod 0555 " .. q(dir)))
      if whoami() ~= 0 then
        -- the directory is read-only for us: open falls back to read-only
        local db = sqlite_open(path)
        read_only_checks(db)
        db:close()
        assert.is_false(exists(path .. "-wal"))
        return
      end
      -- root ignores permissions: the store opens read-write ...
      local db = sqlite_open(path)
      db:set("root", "was here")
      db:close()
      -- ... so read-only is asked for explicitly
      db = sqlite_open(path, { mode = "ro" })
      read_only_checks(db)
      db:close()
      -- and, where root can become nobody, the fallback is checked as nobody
      helpers.remove_db(path .. "-shm") -- what root left (nobody could not create them)
      os.remove(path .. "-wal")
      local out = as_nobody(([[
        local storage = require "llmspell.storage"
        local db = storage.open { backend = "sqlite", path = %q }
        local ok, err = pcall(db.set, db, "k2", "v")
        local col = db:collection("docs")
        print(db:get("k"), db:get("root"), col:search({ 1, 0 }, { k = 1 })[1].id,
              ok, err.code)]]):format(path))
      if out ~= nil then
        assert.are.equal("v\twas here\ta\tfalse\tpermission\n", out)
        assert.is_false(exists(path .. "-wal"))
      end
    end)

    it("opens a file it may not write (chmod 0444) read-only", function()
      assert(os.execute("chmod 0444 " .. q(path)))
      if whoami() ~= 0 then
        local db = sqlite_open(path)
        read_only_checks(db)
        db:close()
        return
      end
      local db = sqlite_open(path, { mode = "ro" })
      read_only_checks(db)
      db:close()
      assert(os.execute("chmod 0777 " .. q(dir))) -- nobody may create -shm, not write the file
      local out = as_nobody(([[
        local storage = require "llmspell.storage"
        local db = storage.open { backend = "sqlite", path = %q }
        local ok, err = pcall(db.set, db, "k2", "v")
        print(db:get("k"), ok, err.code)]]):format(path))
      if out ~= nil then assert.are.equal("v\tfalse\tpermission\n", out) end
    end)
  end)
end)
