--- The key-value contract: the same expectations, run against every backend
-- (memory, SQLite file, SQLite :memory:, PostgreSQL).
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

local function sorted(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c
end

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- The whole contract for one backend; `it` runs each body plainly or
-- inside a coroutine (helpers.runs), `run_name` says which.
local function contract(backend, it, run_name)
  describe("KV contract on " .. backend.name .. run_name, function()
    local db

    local function open(opts) return backend.open(opts, backend) end

    before_each(function()
      if backend.setup then backend:setup() end
      db = open()
    end)

    after_each(function()
      if db then
        pcall(db.clear, db)
        db:close()
      end
      if backend.teardown then backend:teardown() end
    end)

    describe("handle", function()
      it("reports its backend type", function()
        local expected = backend.name:match("^sqlite") and "sqlite" or backend.name
        assert.equal(expected, db:backend_type())
        assert.equal(expected, db:stats().backend)
      end)

      it("prints what it is", function()
        db:set("a", "1")
        db:set("b", "2")
        local s = tostring(db)
        assert.matches("^llmspell%.storage%.Store %(", s)
        assert.matches(db:backend_type(), s, 1, true)
        assert.matches("2 keys", s, 1, true)
        assert.equal("llmspell.storage.Store", getmetatable(db).__name)
      end)

      it("has tenant 'default' unless told otherwise", function()
        if backend.name ~= "postgres" then assert.equal("default", db:tenant()) end
        local other = open { tenant = "acme" }
        assert.equal("acme", other:tenant())
        other:close()
      end)

      it("describes its characteristics", function()
        local c = db:characteristics()
        assert.is_boolean(c.persistent)
        assert.equal(backend.name ~= "memory" and backend.name ~= "sqlite :memory:",
                     c.persistent)
        assert.is_true(c.transactional)
        assert.is_true(c.supports_prefix_scan)
        assert.is_true(c.supports_atomic_ops)
        assert.is_number(c.avg_read_latency_us)
        assert.is_number(c.avg_write_latency_us)
        db:set("k", "v")
        db:get("k")
        c = db:characteristics()
        assert.equal(1, c.measured_reads)
        assert.equal(1, c.measured_writes)
        assert.is_true(c.avg_read_latency_us >= 0)
      end)

      it("closes idempotently and refuses use after close", function()
        db:set("k", "v")
        db:close()
        db:close()
        assert.equal("llmspell.storage.Store (closed)", tostring(db))
        local calls = {
          function() return db:get("k") end,
          function() return db:set("k", "v") end,
          function() return db:delete("k") end,
          function() return db:exists("k") end,
          function() return db:list_keys() end,
          function() return db:scan() end,
          function() return db:get_batch { "k" } end,
          function() return db:set_batch { k = "v" } end,
          function() return db:delete_batch { "k" } end,
          function() return db:batch {} end,
          function() return db:transaction(function() end) end,
          function() return db:clear() end,
          function() return db:stats() end,
          function() return db:characteristics() end,
          function() return db:backend_type() end,
        }
        for i, f in ipairs(calls) do
          local err = helpers.error_of(f)
          assert.is_true(storage.is_error(err), "call " .. i)
          assert.equal("closed", err.code, "call " .. i)
          -- where the call was made: each function above is one line
          local at = debug.getinfo(f, "S")
          assert.equal(at.short_src .. ":" .. at.linedefined, err.where, "call " .. i)
          assert.equal(err.where .. ": llmspell.storage: closed: store is closed", tostring(err))
        end
        db = nil
      end)

      it("closes at the end of a to-be-closed scope", function()
        local handle
        do
          local d <close> = open()
          handle = d
          d:set("k", "v")
        end
        assert.equal("closed", helpers.error_of(handle.get, handle, "k").code)
      end)

      it("is reported closed when a scan outlives it", function()
        for i = 1, 3 do db:set("s" .. i, "v") end
        local it, st, ctl = db:scan("s")
        assert.equal("s1", (it(st, ctl)))
        db:close()
        assert.equal("closed", helpers.error_of(it, st, ctl).code)
        db = nil
      end)
    end)

    describe("single keys", function()
      it("sets, gets, checks and deletes", function()
        assert.is_nil(db:get("missing"))
        assert.is_false(db:exists("missing"))
        db:set("k", "v1")
        assert.equal("v1", db:get("k"))
        assert.is_true(db:exists("k"))
        db:set("k", "v2")
        assert.equal("v2", db:get("k"))
        assert.is_true(db:delete("k"))
        assert.is_false(db:delete("k"))
        assert.is_nil(db:get("k"))
      end)

      it("keeps binary values byte for byte", function()
        local values = {
          nul = "a\0b\0\0c",
          invalid_utf8 = "\xff\xfe\xc3\x28\x80",
          empty = "",
          all_bytes = (function()
            local t = {}
            for i = 0, 255 do t[#t + 1] = string.char(i) end
            return table.concat(t)
          end)(),
        }
        for k, v in pairs(values) do db:set(k, v) end
        for k, v in pairs(values) do
          local got = db:get(k)
          assert.is_string(got, k)
          assert.equal(#v, #got, k)
          assert.equal(v, got, k)
        end
        assert.is_true(db:exists("empty"))
      end)

      it("stores a 1 MB value", function()
        local big = string.rep("0123456789abcdef", 65536)
        db:set("big", big)
        assert.equal(big, db:get("big"))
        assert.equal(1048576 + 3, db:stats().bytes)
      end)

      it("accepts unicode keys", function()
        local keys = { "ключ", "鍵", "🔑", "é", "e\u{301}" }
        for i, k in ipairs(keys) do db:set(k, tostring(i)) end
        for i, k in ipairs(keys) do assert.equal(tostring(i), db:get(k)) end
        assert.same(sorted(keys), db:list_keys())
      end)

      it("accepts the empty key", function()
        db:set("", "empty key")
        assert.equal("empty key", db:get(""))
      end)
    end)

    describe("listing", function()
      it("lists keys in byte order", function()
        local keys = { "b", "a", "ab", "B", "a0", "é", "z", "aa", "~", "" }
        for _, k in ipairs(keys) do db:set(k, "v") end
        assert.same({ "", "B", "a", "a0", "aa", "ab", "b", "z", "~", "é" }, db:list_keys())
      end)

      it("treats prefixes literally (no wildcards)", function()
        for _, k in ipairs { "a%", "a%b", "a_", "a_c", "ab", "abc", "a\\x", "a\\", "axe",
                             "a*", "a.", "a[" } do
          db:set(k, "v")
        end
        assert.same({ "a%", "a%b" }, db:list_keys("a%"))
        assert.same({ "a_", "a_c" }, db:list_keys("a_"))
        assert.same({ "a\\", "a\\x" }, db:list_keys("a\\"))
        assert.same({ "a*" }, db:list_keys("a*"))
        assert.same({ "a." }, db:list_keys("a."))
        assert.same({ "a[" }, db:list_keys("a["))
        assert.same({ "ab", "abc" }, db:list_keys("ab"))
        assert.same({}, db:list_keys("nothing"))
        assert.equal(12, #db:list_keys(""))
        assert.equal(12, #db:list_keys())
      end)

      it("scans prefixes whose last character is the highest code point", function()
        db:set("x\u{10FFFF}a", "1")
        db:set("x\u{10FFFF}", "2")
        db:set("y", "3")
        assert.same({ "x\u{10FFFF}", "x\u{10FFFF}a" }, db:list_keys("x\u{10FFFF}"))
        assert.same({ "x\u{10FFFF}", "x\u{10FFFF}a" }, db:list_keys("x"))
      end)

      it("scans in order, streaming past one page", function()
        local expected = {}
        for i = 1, 700 do
          local k = string.format("p:%04d", i)
          expected[#expected + 1] = k
        end
        local batch = {}
        for _, k in ipairs(expected) do batch[k] = "v" .. k end
        db:set_batch(batch)
        db:set("q:other", "x")
        local seen = {}
        for k, v in db:scan("p:") do
          assert.equal("v" .. k, v)
          seen[#seen + 1] = k
        end
        assert.same(expected, seen)
      end)

      it("stops a scan on break and closes it", function()
        for i = 1, 10 do db:set("k" .. i, "v") end
        local n = 0
        local closer
        do
          local f, s, c, close = db:scan("k")
          closer = close
          for _ in f, s, c, close do
            n = n + 1
            if n == 3 then break end
          end
        end
        assert.equal(3, n)
        assert.matches("finished", tostring(closer))
      end)

      it("lets the loop body write while scanning", function()
        for i = 1, 5 do db:set("w" .. i, "v") end
        local seen = {}
        for k in db:scan("w") do
          seen[#seen + 1] = k
          db:delete(k)
          db:set("z" .. k, "moved")
        end
        assert.same({ "w1", "w2", "w3", "w4", "w5" }, seen)
        assert.same({}, db:list_keys("w"))
        assert.equal(5, #db:list_keys("zw"))
      end)
    end)

    describe("batches", function()
      it("gets many keys, leaving out missing ones", function()
        db:set_batch { a = "1", b = "", c = "3" }
        local got = db:get_batch { "a", "b", "missing", "c" }
        assert.same({ a = "1", b = "", c = "3" }, got)
        assert.same({}, db:get_batch {})
      end)

      it("sets many keys at once", function()
        assert.equal(3, db:set_batch { x = "1", y = "2\0", z = "" })
        assert.same({ "x", "y", "z" }, db:list_keys())
        assert.equal("2\0", db:get("y"))
      end)

      it("deletes many keys, counting those that existed", function()
        db:set_batch { a = "1", b = "2", c = "3" }
        assert.equal(2, db:delete_batch { "a", "c", "missing" })
        assert.same({ "b" }, db:list_keys())
      end)

      it("applies mixed operations in order", function()
        db:set("t", "old")
        db:set("gone", "x")
        local removed = db:batch {
          { op = "set", key = "m", value = "1" },
          { op = "delete", key = "t" },
          { op = "set", key = "t", value = "new" },
          { op = "delete", key = "gone" },
          { op = "set", key = "m", value = "2" },
        }
        assert.equal("new", db:get("t"))
        assert.equal("2", db:get("m"))
        assert.is_nil(db:get("gone"))
        assert.is_number(removed)
      end)

      it("writes nothing when any operation is malformed", function()
        db:set("keep", "before")
        local err = helpers.error_of(function()
          db:batch {
            { op = "set", key = "new1", value = "1" },
            { op = "delete", key = "keep" },
            { op = "put", key = "x", value = "y" },
          }
        end)
        assert.matches("bad argument #1 to 'batch' %(op 3: field 'op' must be", err)
        assert.is_nil(db:get("new1"))
        assert.equal("before", db:get("keep"))

        err = helpers.error_of(function() db:set_batch { ok = "1", bad = 42 } end)
        assert.matches("bad argument #1 to 'set_batch' %(value of 'bad': string expected, "
                       .. "got number%)", err)
        assert.is_nil(db:get("ok"))

        err = helpers.error_of(function() db:delete_batch { "keep", 7 } end)
        assert.matches("key 2: string expected, got number", err, 1, true)
        assert.equal("before", db:get("keep"))
      end)
    end)

    describe("transactions", function()
      it("commits when the function returns, passing its results", function()
        local a, b = db:transaction(function(tx)
          assert.equal(db, tx)
          tx:set("a", "1")
          tx:set_batch { b = "2" }
          return "done", 42
        end)
        assert.equal("done", a)
        assert.equal(42, b)
        assert.same({ "a", "b" }, db:list_keys())
      end)

      it("rolls back everything and rethrows the original error", function()
        db:set_batch { keep = "before", doomed = "alive" }
        local original = { code = "mine" }
        local ok, err = pcall(db.transaction, db, function(tx)
          tx:set("keep", "changed")
          tx:delete("doomed")
          tx:set("new", "x")
          tx:batch { { op = "set", key = "b1", value = "1" } }
          tx:clear()
          error(original)
        end)
        assert.is_false(ok)
        assert.equal(original, err)
        assert.equal("before", db:get("keep"))
        assert.equal("alive", db:get("doomed"))
        assert.is_nil(db:get("new"))
        assert.is_nil(db:get("b1"))
        assert.same({ "doomed", "keep" }, db:list_keys())
      end)

      it("keeps string errors as they were", function()
        local ok, err = pcall(db.transaction, db, function() error("plain message", 0) end)
        assert.is_false(ok)
        assert.equal("plain message", err)
      end)

      it("nests with savepoints", function()
        db:transaction(function(tx)
          tx:set("outer", "1")
          tx:transaction(function() tx:set("inner_ok", "1") end)
          local ok = pcall(tx.transaction, tx, function()
            tx:set("inner_bad", "1")
            tx:delete("outer")
            error("inner fails")
          end)
          assert.is_false(ok)
          assert.equal("1", tx:get("outer"))
          assert.is_nil(tx:get("inner_bad"))
        end)
        assert.same({ "inner_ok", "outer" }, db:list_keys())
      end)

      it("rolls back inner savepoints when the outer transaction fails", function()
        pcall(db.transaction, db, function(tx)
          tx:transaction(function() tx:set("inner", "1") end)
          error("outer fails")
        end)
        assert.is_nil(db:get("inner"))
      end)

      it("rejects a non-function", function()
        local err = helpers.error_of(function() db:transaction("nope") end)
        assert.matches("bad argument #1 to 'transaction' %(function expected", err)
      end)
    end)

    describe("TTL", function()
      it("hides expired keys from every read", function()
        db:set("short", "v", { ttl = 0.2 })
        db:set("long", "v", { ttl = 3600 })
        db:set("forever", "v")
        db:set_batch({ sb = "v" }, { ttl = 0.2 })
        db:batch { { op = "set", key = "bt", value = "v", ttl = 0.2 } }
        assert.equal("v", db:get("short"))
        assert.same({ "bt", "forever", "long", "sb", "short" }, db:list_keys())
        helpers.sleep(0.35)
        assert.is_nil(db:get("short"))
        assert.is_false(db:exists("short"))
        assert.same({ "forever", "long" }, db:list_keys())
        local scanned = {}
        for k in db:scan() do scanned[#scanned + 1] = k end
        assert.same({ "forever", "long" }, scanned)
        assert.same({ long = "v" }, db:get_batch { "short", "long", "sb", "bt" })
        assert.equal(2, db:stats().keys)
        assert.is_false(db:delete("short"))
      end)

      it("makes a key permanent again when set without ttl", function()
        db:set("k", "v1", { ttl = 0.2 })
        db:set("k", "v2")
        helpers.sleep(0.3)
        assert.equal("v2", db:get("k"))
      end)

      it("sweeps expired keys on later writes", function()
        for i = 1, 20 do db:set("e" .. i, "v", { ttl = 0.1 }) end
        helpers.sleep(1.15)
        db:set("trigger", "v") -- sweeps at most once a second
        assert.equal(1, db:stats().keys)
        assert.same({ "trigger" }, db:list_keys())
      end)

      it("refuses bad ttl values", function()
        for _, bad in ipairs { 0, -1, "10", 0 / 0, true } do
          local err = helpers.error_of(function() db:set("k", "v", { ttl = bad }) end)
          assert.matches("bad argument #3 to 'set' %(ttl must be a positive number", err)
        end
        assert.is_nil(db:get("k"))
      end)
    end)

    describe("clear and stats", function()
      it("clears every key", function()
        db:set_batch { a = "1", b = "2" }
        db:clear()
        assert.same({}, db:list_keys())
        assert.equal(0, db:stats().keys)
      end)

      it("counts keys and bytes", function()
        db:set_batch { a = "123", bb = "" }
        local s = db:stats()
        assert.equal(2, s.keys)
        assert.equal(1 + 3 + 2, s.bytes)
        assert.equal(0, s.collections)
        assert.is_string(s.location)
        assert.equal(db:tenant(), s.tenant)
      end)
    end)

    describe("tenants", function()
      it("isolates tenants", function()
        db:set("shared-key", "mine")
        local other = open { tenant = helpers.unique_tenant("other") }
        assert.is_nil(other:get("shared-key"))
        other:set("shared-key", "theirs")
        other:set("only-theirs", "x")
        assert.equal("mine", db:get("shared-key"))
        assert.same({ "shared-key" }, db:list_keys())
        other:clear()
        assert.equal("mine", db:get("shared-key"))
        if backend.shared then
          -- a second handle on the same tenant sees the same rows
          local same = open { tenant = db:tenant() }
          assert.equal("mine", same:get("shared-key"))
          same:close()
        end
        other:close()
      end)
    end)

    describe("against a model", function()
      it("agrees with a Lua table under random operations and rollbacks", function()
        -- a small deterministic PRNG, so a failure can be replayed
        local seed = 12345
        local function rand(n)
          seed = (seed * 1103515245 + 12345) % 2147483648
          return seed % n + 1
        end
        local model = {}
        local function key() return "k" .. rand(300) end
        local function check()
          local keys = {}
          for k in pairs(model) do keys[#keys + 1] = k end
          table.sort(keys)
          assert.same(keys, db:list_keys())
          for _, k in ipairs(keys) do assert.equal(model[k], db:get(k), k) end
        end
        local rounds = backend.name == "postgres" and 400 or 3000
        for i = 1, rounds do
          local r = rand(100)
          if r <= 45 then
            local k, v = key(), "v" .. i
            db:set(k, v)
            model[k] = v
          elseif r <= 70 then
            local k = key()
            assert.equal(model[k] ~= nil, db:delete(k))
            model[k] = nil
          elseif r <= 80 then
            local m = {}
            for _ = 1, rand(20) do m[key()] = "b" .. i end
            db:set_batch(m)
            for k, v in pairs(m) do model[k] = v end
          elseif r <= 88 then
            local ks, gone = {}, 0
            for j = 1, rand(20) do ks[j] = key() end
            local seen = {}
            for _, k in ipairs(ks) do
              if model[k] and not seen[k] then gone = gone + 1 end
              seen[k] = true
            end
            assert.equal(gone, db:delete_batch(ks))
            for _, k in ipairs(ks) do model[k] = nil end
          else
            -- a transaction that writes, then fails: nothing may change
            pcall(db.transaction, db, function(tx)
              for _ = 1, rand(30) do
                if rand(2) == 1 then tx:set(key(), "tx") else tx:delete(key()) end
              end
              tx:set_batch { [key()] = "txb", [key()] = "txb" }
              error("roll back")
            end)
          end
          if i % 97 == 0 then check() end
        end
        check()
        assert.equal(#db:list_keys(), db:stats().keys)
      end)
    end)

    describe("bad arguments", function()
      it("names the argument and what was expected", function()
        local cases = {
          { function() db:set(nil, "v") end,
            "bad argument #1 to 'set' (string key expected, got nil)" },
          { function() db:set(12, "v") end,
            "bad argument #1 to 'set' (string key expected, got number)" },
          { function() db:set("k", nil) end,
            "bad argument #2 to 'set' (string value expected, got nil)" },
          { function() db:set("k", { }) end,
            "bad argument #2 to 'set' (string value expected, got table)" },
          { function() db:set("k", "v", { tll = 1 }) end,
            "bad argument #3 to 'set' (unknown option 'tll')" },
          { function() db:get("a\0b") end,
            "bad argument #1 to 'get' (key must be UTF-8 text without NUL bytes"
            .. " (bad byte at 2))" },
          { function() db:get("\xff") end,
            "bad argument #1 to 'get' (key must be UTF-8 text without NUL bytes"
            .. " (bad byte at 1))" },
          { function() db:get(string.rep("k", 1025)) end,
            "bad argument #1 to 'get' (key is 1025 bytes, at most 1024 allowed)" },
          { function() db:list_keys(5) end,
            "bad argument #1 to 'list_keys' (string prefix expected, got number)" },
          { function() db:get_batch("k") end,
            "bad argument #1 to 'get_batch' (table expected, got string)" },
          { function() db:batch { "x" } end,
            "bad argument #1 to 'batch' (op 1: table expected, got string)" },
          { function() db:batch { { op = "delete", key = "k", value = "v" } } end,
            "bad argument #1 to 'batch' (op 1: unknown option 'value')" },
        }
        for _, c in ipairs(cases) do
          local err = helpers.error_of(c[1])
          assert.is_string(err)
          assert.equal(c[2], (err:gsub("^[^:]+:%d+: ", "")))
        end
        assert.same({}, db:list_keys())
      end)

      it("refuses unknown open options and URLs", function()
        local err = helpers.error_of(storage.open, { backend = "memory", bogus = 1 })
        assert.matches("unknown option 'bogus' for backend memory", err, 1, true)
        err = helpers.error_of(storage.open, "redis://localhost")
        assert.matches("unknown storage URL 'redis://localhost'", err, 1, true)
        err = helpers.error_of(storage.open, { backend = "memory", tenant = "" })
        assert.matches("option 'tenant' must be 1..255 bytes", err, 1, true)
        err = helpers.error_of(storage.open, 42)
        assert.matches("URL string or options table expected, got number", err, 1, true)
      end)
    end)

    describe("error objects", function()
      it("carry a code, a message and the backend, and print well", function()
        db:close()
        local err = helpers.error_of(db.get, db, "k")
        db = nil
        assert.equal("closed", err.code)
        assert.is_string(err.message)
        assert.equal(storage.error_codes.closed, err.code)
        assert.equal("llmspell.storage: closed: " .. err.message, tostring(err))
        assert.is_true(storage.is_error(err))
        assert.is_false(storage.is_error("closed"))
        assert.is_false(storage.is_error({ code = "closed" }))
        local codes = {}
        for k in pairs(storage.error_codes) do codes[#codes + 1] = k end
        table.sort(codes)
        assert.same({ "busy", "closed", "conflict", "connection", "format", "integrity",
                      "invalid", "io", "not_found", "permission", "quota", "version" }, codes)
        assert.equal(12, count_keys(storage.error_codes))
        -- the Lua layer makes the same objects
        local made = storage.error("quota", "over the limit", { limit = 5 })
        assert.is_true(storage.is_error(made))
        assert.same({ "quota", "over the limit", 5 }, { made.code, made.message, made.limit })
        assert.equal("llmspell.storage: quota: over the limit", tostring(made))
        assert.matches("unknown error code 'nope'", helpers.error_of(storage.error, "nope", "x"),
                       1, true)
      end)
    end)
  end)
end

for _, run in ipairs(helpers.runs(it)) do
  for _, backend in ipairs(helpers.backends()) do contract(backend, run.it, run.name) end
end
