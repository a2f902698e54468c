--- llmspell.storage.cache: the LRU read cache with the store's API, run
-- against memory, an SQLite file and PostgreSQL (which fails, never skips,
-- without LLMSPELL_TEST_PG_URL).
local storage = require "llmspell.storage"
local cache = require "llmspell.storage.cache"
local helpers = require "spec.helpers"

local WANTED = { memory = true, ["sqlite file"] = true, postgres = true }

-- The figures a scripted sequence is checked against.
local function counts(c)
  local s = c:cache_stats()
  return { hits = s.hits, misses = s.misses, evictions = s.evictions, size = s.size }
end

describe("cache module", function()
  it("is reachable by its own name and refuses bad options", function()
    assert.is_function(cache.wrap)
    local db = storage.open("memory")
    local function msg(opts)
      local err = helpers.error_of(cache.wrap, db, opts)
      return tostring(err)
    end
    assert.matches("unknown option 'capacty'", msg { capacty = 3 }, 1, true)
    assert.matches("capacity must be a positive integer", msg { capacity = 0 }, 1, true)
    assert.matches("capacity must be a positive integer", msg { capacity = 1.5 }, 1, true)
    assert.matches("ttl must be a positive number", msg { ttl = -1 }, 1, true)
    assert.matches("ttl must be a positive number", msg { ttl = 0 }, 1, true)
    assert.matches("ttl must be a positive number", msg { ttl = 0 / 0 }, 1, true)
    assert.is_nil(cache.wrap(db, { negative_ttl = 0 }):cache_stats().negative_ttl)
    assert.matches("negative_ttl must be a positive number", msg { negative_ttl = "x" }, 1,
                   true)
    assert.matches("clock must be a function", msg { clock = 5 }, 1, true)
    assert.matches("unknown option 'size' in search", msg { search = { size = 3 } }, 1, true)
    assert.matches("store expected", tostring(helpers.error_of(cache.wrap, nil)), 1, true)
    db:close()
  end)
end)

for _, backend in ipairs(helpers.backends()) do
  if WANTED[backend.name] then
    describe("cache on " .. backend.name, function()
      local db, others, now

      local function open() return backend.open(nil, backend) end
      local function clock() return now end
      local function wrap(opts)
        opts = opts or {}
        if opts.clock == nil then opts.clock = clock end
        return cache.wrap(db, opts)
      end
      -- Another writer of the same data: a second handle where the backend
      -- can share, else the raw store (either way, around the wrapper).
      local function other()
        if not backend.shared then return db end
        local h = open()
        others[#others + 1] = h
        return h
      end

      before_each(function()
        if backend.setup then backend:setup() end
        now = 1000
        others = {}
        db = open()
      end)

      after_each(function()
        for _, h in ipairs(others) do h:close() end
        if db then
          pcall(db.clear, db)
          for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
          db:close()
        end
        if backend.teardown then backend:teardown() end
      end)

      describe("LRU", function()
        it("counts hits, misses and evictions exactly for a scripted sequence", function()
          db:set_batch { k1 = "v1", k2 = "v2", k3 = "v3", k4 = "v4", k5 = "v5" }
          local c = wrap { capacity = 3 }
          assert.same({ hits = 0, misses = 0, evictions = 0, size = 0 }, counts(c))
          assert.equal("v1", c:get("k1")) -- miss         [k1]
          assert.equal("v2", c:get("k2")) -- miss         [k2 k1]
          assert.equal("v3", c:get("k3")) -- miss         [k3 k2 k1]
          assert.same({ hits = 0, misses = 3, evictions = 0, size = 3 }, counts(c))
          assert.equal("v1", c:get("k1")) -- hit          [k1 k3 k2]
          assert.equal("v4", c:get("k4")) -- miss, k2 out [k4 k1 k3]
          assert.equal("v2", c:get("k2")) -- miss, k3 out [k2 k4 k1]
          assert.equal("v1", c:get("k1")) -- hit          [k1 k2 k4]
          assert.equal("v3", c:get("k3")) -- miss, k4 out [k3 k1 k2]
          assert.same({ hits = 2, misses = 6, evictions = 3, size = 3 }, counts(c))
          -- k1 and k3 hit; k5 misses and pushes out k2          [k5 k3 k1]
          assert.same({ k1 = "v1", k3 = "v3", k5 = "v5" }, c:get_batch { "k1", "k3", "k5" })
          assert.is_true(c:exists("k1"))  -- hit          [k1 k5 k3]
          assert.same({ hits = 5, misses = 7, evictions = 4, size = 3 }, counts(c))
          assert.equal("v2", c:get("k2")) -- miss, k3 out [k2 k1 k5]
          assert.equal("v5", c:get("k5")) -- hit
          local s = c:stats()
          assert.equal(6, s.hits)
          assert.equal(8, s.misses)
          assert.equal(5, s.evictions)
          assert.equal(3, s.size)
          assert.equal(3, s.capacity)
          assert.near(6 / 14, s.hit_rate, 1e-12)
          assert.equal(db:backend_type(), s.db.backend)
          assert.equal(5, s.db.keys)
        end)

        it("saves a touched entry from eviction", function()
          db:set_batch { a = "1", b = "2", c = "3" }
          local c = wrap { capacity = 2 }
          c:get("a")
          c:get("b")
          c:get("a")            -- a is now the most recently used
          c:get("c")            -- evicts b, not a
          local before = counts(c)
          assert.equal("1", c:get("a"))
          assert.equal(before.hits + 1, c:cache_stats().hits)
          assert.equal("2", c:get("b"))
          assert.equal(before.misses + 1, c:cache_stats().misses)
          assert.equal(2, c:cache_stats().evictions)
        end)

        it("does not add keys on writes, but updates the ones it holds", function()
          local c = wrap { capacity = 10 }
          c:set("a", "1")
          c:set_batch { b = "2", c = "3" }
          assert.equal(0, c:cache_stats().size)
          assert.equal("1", c:get("a"))                 -- miss
          c:set("a", "2")
          assert.equal("2", c:get("a"))                 -- hit, updated in place
          assert.same({ hits = 1, misses = 1, evictions = 0, size = 1 }, counts(c))
        end)

        it("passes through what it does not cache", function()
          local c = wrap()
          c:set_batch { ["p:1"] = "a", ["p:2"] = "b", q = "c" }
          assert.same({ "p:1", "p:2" }, c:list_keys("p:"))
          local seen = {}
          for k, v in c:scan("p:") do seen[#seen + 1] = k .. "=" .. v end
          assert.same({ "p:1=a", "p:2=b" }, seen)
          assert.equal(db:backend_type(), c:backend_type())
          assert.equal(db:tenant(), c:tenant())
          assert.is_table(c:characteristics())
          assert.is_table(c:migrations())
          assert.is_table(c:check())
          assert.equal(db, c:unwrap())
          assert.matches("^llmspell%.storage%.Cache %(", tostring(c))
          assert.equal("llmspell.storage.Cache", getmetatable(c).__name)
        end)

        it("leaves bad arguments to the store, which names them", function()
          local c = wrap()
          local err = helpers.error_of(c.get, c, string.rep("x", 2000))
          assert.matches("bad argument #1 to 'get'", tostring(err), 1, true)
          err = helpers.error_of(function() c:set("k", {}) end)
          assert.matches("bad argument", tostring(err), 1, true)
          assert.is_nil(c:get("k"))
          err = helpers.error_of(function() c:batch { { op = "put", key = "k" } } end)
          assert.matches("bad argument #1 to 'batch'", tostring(err), 1, true)
        end)
      end)

      describe("invalidation", function()
        local c
        before_each(function()
          db:set_batch { a = "1", b = "2", c = "3", d = "4" }
          c = wrap { capacity = 100 }
          assert.same({ a = "1", b = "2", c = "3", d = "4" },
                      c:get_batch { "a", "b", "c", "d" })
        end)

        -- Every cached key reads what the store holds.
        local function agrees()
          for _, k in ipairs { "a", "b", "c", "d", "e" } do
            assert.equal(db:get(k), c:get(k), "key " .. k)
          end
        end

        it("by set", function()
          c:set("a", "one")
          assert.equal("one", c:get("a"))
          agrees()
          assert.equal(1, c:cache_stats().invalidations)
        end)

        it("by delete", function()
          assert.is_true(c:delete("b"))
          assert.is_nil(c:get("b"))
          assert.is_false(c:exists("b"))
          assert.is_false(c:delete("b"))
          agrees()
        end)

        it("by set_batch", function()
          assert.equal(3, c:set_batch { a = "A", c = "C", e = "E" })
          agrees()
          assert.equal("A", c:get("a"))
        end)

        it("by delete_batch", function()
          assert.equal(2, c:delete_batch { "a", "c", "zz" })
          agrees()
          assert.is_nil(c:get("a"))
        end)

        it("by batch, following the operations in order", function()
          c:batch {
            { op = "set", key = "a", value = "A" },
            { op = "delete", key = "a" },
            { op = "delete", key = "b" },
            { op = "set", key = "b", value = "B" },
            { op = "set", key = "c", value = "C", ttl = 60 },
          }
          assert.is_nil(c:get("a"))
          assert.equal("B", c:get("b"))
          assert.equal("C", c:get("c"))
          agrees()
        end)

        it("by clear", function()
          c:clear()
          assert.equal(0, c:cache_stats().size)
          agrees()
          assert.is_nil(c:get("a"))
        end)

        it("by invalidate (for writes made around the wrapper)", function()
          db:set("a", "raw")
          assert.equal("1", c:get("a"))
          c:invalidate("a")
          assert.equal("raw", c:get("a"))
          db:set("b", "raw")
          c:invalidate()
          assert.equal(0, c:cache_stats().size)
          assert.equal("raw", c:get("b"))
        end)

        it("does not change the cache when the store refuses a write", function()
          assert.error(function() c:set_batch({ a = "x" }, { ttl = -1 }) end)
          assert.error(function() c:delete_batch { "a", {} } end)
          assert.equal("1", c:get("a"))
          agrees()
        end)
      end)

      describe("time", function()
        it("expires entries after ttl (injected clock)", function()
          db:set("a", "1")
          local c = wrap { ttl = 10 }
          assert.equal("1", c:get("a"))                 -- miss
          now = now + 9.5
          assert.equal("1", c:get("a"))                 -- hit
          now = now + 0.5
          assert.equal("1", c:get("a"))                 -- expired: miss
          local s = c:cache_stats()
          assert.equal(1, s.hits)
          assert.equal(2, s.misses)
          assert.equal(1, s.expired)
        end)

        it("sees another handle's write after at most ttl (documented staleness)", function()
          db:set("a", "1")
          local c = wrap { ttl = 10 }
          assert.equal("1", c:get("a"))
          other():set("a", "2")
          now = now + 9
          assert.equal("1", c:get("a"))                 -- stale, within ttl
          now = now + 1
          assert.equal("2", c:get("a"))                 -- ttl passed
          -- without a cached entry the write is seen at once
          other():set("b", "x")
          assert.equal("x", c:get("b"))
        end)

        it("caches misses for negative_ttl", function()
          local c = wrap { negative_ttl = 3 }
          assert.is_nil(c:get("m"))                     -- miss, remembered
          assert.is_nil(c:get("m"))                     -- negative hit
          assert.is_false(c:exists("m"))                -- negative hit
          local s = c:cache_stats()
          assert.equal(2, s.hits)
          assert.equal(2, s.negative_hits)
          assert.equal(1, s.misses)
          other():set("m", "late")
          now = now + 2.9
          assert.is_nil(c:get("m"))                     -- stale within negative_ttl
          now = now + 0.1
          assert.equal("late", c:get("m"))
          -- a write through the wrapper replaces a cached miss at once
          assert.is_nil(c:get("n"))
          c:set("n", "now")
          assert.equal("now", c:get("n"))
          -- a delete through the wrapper turns a cached value into a cached miss
          c:delete("n")
          local hits = c:cache_stats().negative_hits
          assert.is_nil(c:get("n"))
          assert.equal(hits + 1, c:cache_stats().negative_hits)
        end)

        it("does not cache misses without negative_ttl", function()
          local c = wrap()
          assert.is_nil(c:get("m"))
          assert.is_nil(c:get("m"))
          assert.equal(0, c:cache_stats().hits)
          assert.equal(0, c:cache_stats().size)
        end)

        it("never keeps an entry past the TTL it wrote (injected clock)", function()
          local c = wrap { ttl = 100 }
          c:set("t", "v", { ttl = 5 })
          assert.equal("v", c:get("t"))                 -- miss: cached for 5 s, not 100
          now = now + 4
          assert.equal("v", c:get("t"))                 -- hit
          now = now + 1
          c:get("t")                                    -- expired
          assert.equal(1, c:cache_stats().expired)
          -- an entry it holds takes the TTL of a later write too
          db:set("u", "1")
          assert.equal("1", c:get("u"))
          c:set("u", "2", { ttl = 3 })
          assert.equal("2", c:get("u"))                 -- hit, updated
          now = now + 3
          local misses = c:cache_stats().misses
          c:get("u")
          assert.equal(misses + 1, c:cache_stats().misses)
          -- set_batch and batch TTLs count as well
          c:set_batch({ w = "1" }, { ttl = 2 })
          c:batch { { op = "set", key = "x", value = "1", ttl = 2 } }
          c:get_batch { "w", "x" }
          now = now + 2
          misses = c:cache_stats().misses
          c:get_batch { "w", "x" }
          assert.equal(misses + 2, c:cache_stats().misses)
          -- and a write without a TTL lifts it
          c:set("t", "forever")
          assert.equal("forever", c:get("t"))
          now = now + 50
          assert.equal("forever", c:get("t"))
          assert.equal(3, c:cache_stats().ttl_keys)     -- u, w and x still remembered
        end)

        it("does not serve a value after the store's TTL (real clock)", function()
          local c = cache.wrap(db, { ttl = 100 })
          c:set("e", "v", { ttl = 0.3 })
          assert.equal("v", c:get("e"))
          assert.equal("v", c:get("e"))
          assert.equal(1, c:cache_stats().hits)
          helpers.sleep(0.5)
          assert.is_nil(db:get("e"))
          assert.is_nil(c:get("e"))
        end)

        it("stops caching unknown keys when it cannot remember every TTL", function()
          local c = wrap { capacity = 10, max_ttl_keys = 2 }
          c:set("a", "1", { ttl = 5 })
          c:set("b", "1", { ttl = 5 })
          c:set("c", "1", { ttl = 7 })                  -- not remembered
          assert.equal(2, c:cache_stats().ttl_keys)
          db:set("plain", "p")
          assert.equal("1", c:get("c"))
          assert.equal("p", c:get("plain"))
          assert.equal(0, c:cache_stats().size)         -- c might expire: nothing cached
          assert.equal("1", c:get("a"))
          assert.equal(1, c:cache_stats().size)         -- a's expiry is known
          now = now + 7
          assert.equal("p", c:get("plain"))
          assert.equal("p", c:get("plain"))
          assert.equal(1, c:cache_stats().hits)         -- cached again
        end)
      end)

      describe("transactions", function()
        local c
        before_each(function()
          db:set_batch { a = "1", b = "2" }
          c = wrap { capacity = 100, negative_ttl = 60 }
          assert.equal("1", c:get("a"))
          assert.equal("2", c:get("b"))
          assert.is_nil(c:get("n"))
        end)

        local function agrees()
          for _, k in ipairs { "a", "b", "n", "x" } do
            assert.equal(db:get(k), c:get(k), "key " .. k)
          end
        end

        it("commits: the writes are read back", function()
          local r1, r2 = c:transaction(function(tx)
            assert.equal(c, tx)
            tx:set("a", "A")
            assert.equal("A", tx:get("a"))
            tx:delete("b")
            tx:set("n", "N")
            return "done", 2
          end)
          assert.equal("done", r1)
          assert.equal(2, r2)
          assert.equal("A", c:get("a"))
          assert.is_nil(c:get("b"))
          assert.equal("N", c:get("n"))
          agrees()
          -- once it has ended, the keys it wrote are cached again
          local hits = c:cache_stats().hits
          assert.equal("A", c:get("a"))
          assert.equal(hits + 1, c:cache_stats().hits)
        end)

        it("leaves no stale entry after a rollback", function()
          local boom = { code = "boom" }
          local ok, err = pcall(c.transaction, c, function(tx)
            tx:set("a", "A")
            assert.equal("A", tx:get("a"))
            assert.equal("A", tx:get("a"))
            tx:delete("b")
            assert.is_nil(tx:get("b"))
            tx:set_batch { n = "N", x = "X" }
            assert.same({ n = "N", x = "X" }, tx:get_batch { "n", "x" })
            tx:batch { { op = "set", key = "b", value = "B" } }
            assert.equal("B", tx:get("b"))
            error(boom)
          end)
          assert.is_false(ok)
          assert.equal(boom, err)                        -- the same table, rethrown
          assert.equal("1", c:get("a"))
          assert.equal("2", c:get("b"))
          assert.is_nil(c:get("n"))
          assert.is_nil(c:get("x"))
          agrees()
        end)

        it("leaves no stale entry after a rolled-back nested transaction", function()
          c:transaction(function(tx)
            tx:set("a", "outer")
            local ok = pcall(tx.transaction, tx, function(t2)
              t2:set("b", "inner")
              t2:delete("a")
              assert.equal("inner", t2:get("b"))
              assert.is_nil(t2:get("a"))
              error("inner fails")
            end)
            assert.is_false(ok)
            assert.equal("2", tx:get("b"))
            assert.equal("outer", tx:get("a"))
          end)
          assert.equal("outer", c:get("a"))
          assert.equal("2", c:get("b"))
          agrees()
        end)

        it("leaves no stale entry when the outer level rolls back after an inner commit",
           function()
          local ok = pcall(c.transaction, c, function(tx)
            tx:transaction(function(t2)
              t2:set("a", "inner")
              t2:clear()
              t2:set("x", "X")
            end)
            assert.equal("X", tx:get("x"))
            assert.is_nil(tx:get("a"))
            error("outer fails")
          end)
          assert.is_false(ok)
          assert.equal("1", c:get("a"))
          assert.is_nil(c:get("x"))
          agrees()
        end)

        it("keeps TTLs right across commit and rollback", function()
          c:set("t", "v")                                 -- no TTL
          assert.equal("v", c:get("t"))
          pcall(c.transaction, c, function(tx)
            tx:set("t", "short", { ttl = 1 })
            error("undo")
          end)
          assert.equal("v", c:get("t"))
          now = now + 5
          assert.equal("v", c:get("t"))
          c:transaction(function(tx) tx:set("t", "w", { ttl = 2 }) end)
          assert.equal(1, c:cache_stats().ttl_keys)
          assert.equal("w", c:get("t"))
          now = now + 2
          local misses = c:cache_stats().misses
          c:get("t")
          assert.equal(misses + 1, c:cache_stats().misses)
        end)
      end)

      describe("close", function()
        it("forgets the cache but leaves the store open", function()
          db:set("a", "1")
          do
            local c <close> = wrap()
            assert.equal("1", c:get("a"))
          end
          local c = wrap()
          c:get("a")
          c:close()
          c:close()                                        -- idempotent
          assert.equal("1", db:get("a"))
          local err = helpers.error_of(c.get, c, "a")
          assert.is_true(storage.is_error(err))
          assert.equal("closed", err.code)
          assert.equal("llmspell.storage.Cache (closed)", tostring(c))
        end)
      end)

      describe("search results", function()
        local c, col
        local A, B = { 1, 0, 0 }, { 0, 1, 0 }

        before_each(function()
          c = wrap { search = { capacity = 3 } }
          col = c:create_collection("docs", { dimension = 3, metric = "l2" })
          col:add {
            { id = "a", vector = A, metadata = { tag = "x" } },
            { id = "b", vector = B, metadata = { tag = "y" } },
          }
        end)

        local function top(q, opts) return col:search(q, opts or { k = 1 })[1].id end
        local function search_counts()
          local s = col:cache_stats()
          return { hits = s.hits, misses = s.misses, size = s.size }
        end

        it("caches by query bytes and options", function()
          assert.equal("llmspell.storage.CachedCollection", getmetatable(col).__name)
          assert.equal("a", top(A))                                    -- miss
          assert.equal("a", top(A))                                    -- hit
          assert.equal("a", top(A, { k = 2 }))                         -- miss: other options
          assert.equal("a", top(string.pack("<fff", 1, 0, 0)))         -- miss: packed bytes
          assert.equal("b", top(B, { k = 1, filter = { tag = "y" } })) -- miss
          assert.equal("b", top(B, { filter = { tag = "y" }, k = 1 })) -- hit: same options
          assert.same({ hits = 2, misses = 4, size = 3 }, search_counts())
          local s = c:cache_stats().search
          assert.equal(2, s.hits)
          assert.equal(4, s.misses)
          assert.equal(1, s.evictions)                                 -- capacity 3
          assert.equal(col, c:collection("docs"))                      -- the same wrapper
        end)

        it("hands out copies", function()
          local r = col:search(A, { k = 2 })
          r[1].id = "mutated"
          r[1].metadata.tag = "mutated"
          local again = col:search(A, { k = 2 })
          assert.equal("a", again[1].id)
          assert.equal("x", again[1].metadata.tag)
          assert.equal(1, col:cache_stats().hits)
        end)

        it("is invalidated by writes through the wrapper", function()
          assert.equal("a", top(A))
          col:upsert { id = "a", vector = { 0, 0, 5 } }
          assert.equal("b", top(A))
          col:add { id = "a2", vector = A }
          assert.equal("a2", top(A))
          col:update_metadata("a2", { tag = "z" })
          assert.equal("a2", top(A, { k = 1, filter = { tag = "z" } }))
          col:delete("a2")
          assert.equal("b", top(A))
          assert.equal(0, col:cache_stats().hits)
          assert.equal(5, col:cache_stats().misses)
        end)

        it("is invalidated by another handle's write", function()
          assert.equal("a", top(A))
          assert.equal("a", top(A))
          assert.equal(1, col:cache_stats().hits)
          local raw = other():collection("docs")
          raw:upsert { id = "c", vector = { 0.9, 0, 0 } }
          raw:delete("a")
          assert.equal("c", top(A))
          assert.equal(1, col:cache_stats().hits)
          raw:update_metadata("c", { tag = "new" })
          assert.equal("new", col:search(A, { k = 1 })[1].metadata.tag)
        end)

        it("drops results whose entries expired", function()
          local Q = { 0.95, 0, 0 }
          col:add { id = "soon", vector = Q, ttl = 0.3 }
          assert.equal("soon", top(Q))
          assert.equal("soon", top(Q))
          helpers.sleep(0.5)
          assert.equal("a", top(Q))
        end)

        it("with verify = false, sees other writers after at most search.ttl", function()
          c = wrap { search = { ttl = 10, verify = false } }
          col = c:collection("docs")
          assert.equal("a", top(A))
          other():collection("docs"):delete("a")
          now = now + 9
          assert.equal("a", top(A))                 -- stale, within search.ttl
          now = now + 1
          assert.equal("b", top(A))
          col:add { id = "a", vector = A }          -- own writes still count
          assert.equal("a", top(A))
        end)

        it("leaves no stale result after a rolled-back transaction", function()
          local Q = { 2, 0, 0 }
          assert.equal("a", top(Q))
          local ok = pcall(c.transaction, c, function(tx)
            local tcol = tx:collection("docs")
            assert.equal(col, tcol)
            tcol:add { id = "a3", vector = { 1.5, 0, 0 } }
            assert.equal("a3", top(Q))
            assert.equal("a3", top(Q))
            tx:transaction(function()
              tcol:delete("a3")
              assert.equal("a", top(Q))
            end)
            tcol:add { id = "a4", vector = { 1.8, 0, 0 } }
            assert.equal("a4", top(Q))
            error("rollback")
          end)
          assert.is_false(ok)
          assert.equal("a", top(Q))
          assert.equal("a", top(Q))
          col:add { id = "a5", vector = { 1.2, 0, 0 } }  -- the change sequence repeats
          assert.equal("a5", top(Q))
        end)

        it("drops every result on a rollback, even of writes around the wrapper", function()
          c = wrap { search = { verify = false } }
          col = c:collection("docs")
          local Q = { 2, 0, 0 }
          local ok = pcall(c.transaction, c, function()
            db:collection("docs"):add { id = "a3", vector = { 1.5, 0, 0 } }
            assert.equal("a3", top(Q))                   -- cached inside the transaction
            error("rollback")
          end)
          assert.is_false(ok)
          assert.equal("a", top(Q))
        end)

        it("forgets a dropped collection", function()
          assert.equal("a", top(A))
          assert.is_true(c:drop_collection("docs"))
          assert.same({}, c:list_collections())
          local err = helpers.error_of(col.search, col, A, { k = 1 })
          assert.equal("closed", err.code)
          col = c:create_collection("docs", { dimension = 3, metric = "l2" })
          col:add { id = "z", vector = A }
          assert.equal("z", top(A))
        end)

        it("passes the collection's other methods through", function()
          assert.equal(2, col:count())
          assert.equal(2, #col)
          assert.equal("docs", col:name())
          assert.equal("x", col:get("a").metadata.tag)
          assert.equal(2, col:stats().count)
          assert.equal(2, col:stats_for_scope("global").vectors)
          assert.equal(2, #col:search_many({ A, B }, { k = 1 }))
          assert.equal(0, col:purge_expired())
          assert.equal(2, col:delete_scope("global"))
          assert.equal(0, col:count())
          assert.matches("^llmspell%.storage%.CachedCollection %(", tostring(col))
          col:close()
          assert.equal("closed", helpers.error_of(col.count, col).code)
          assert.equal(0, c:collection("docs"):count())  -- the collection stays open
        end)

        it("is off unless asked for: collections are the store's own", function()
          local plain = wrap()
          local pc = plain:collection("docs")
          assert.equal("userdata", type(pc))
          assert.equal(db:collection("docs"), pc)
          assert.is_nil(plain:cache_stats().search)
        end)
      end)
    end)
  end
end
