--- PostgreSQL under faults (issue 17): the server ends the library's
-- session (pg_terminate_backend from a second connection) or restarts
-- (pg_ctl restart -m fast, and -m immediate, which gives no warning). Each
-- fault comes while the connection is idle between calls, and while a call
-- is inside a statement: spec/support/pg_fault.lua locks a table, waits
-- until the call is blocked behind the lock, then injects the fault.
--
-- The promises: an idempotent read is retried once, transparently (after
-- a restart, once the server accepts connections again); a write raises
-- `connection` and is never applied twice; a transaction interrupted
-- raises and leaves nothing half-applied; an import interrupted leaves
-- the target as it was; and the handle goes on working.
--
-- Needs LLMSPELL_TEST_PG_URL (superuser) and, for the restarts,
-- LLMSPELL_TEST_PG_CTL: scripts/with-postgres.sh sets both. Without them
-- the tests fail: never a skip.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"
local ctest = require "spec.support.ctest"
local pg = require "spec.support.pg"

--- The library's URL: its commits reach the WAL before they return
-- (with-postgres.sh turns synchronous_commit off for speed, and pg_ctl -m
-- immediate loses commits still in the WAL buffers).
local function url()
  local u = helpers.pg_url()
  if u:match("^postgres") then
    return u .. (u:find("?", 1, true) and "&" or "?") .. "options=-c%20synchronous_commit%3Don"
  end
  return u .. " options='-c synchronous_commit=on'"
end

local function restart(mode)
  local ctl = os.getenv("LLMSPELL_TEST_PG_CTL")
  if not ctl or ctl == "" then
    error("LLMSPELL_TEST_PG_CTL is not set: run under scripts/with-postgres.sh (make test)", 2)
  end
  local code, out = ctest.run(ctest.CLEAN_ENV .. ctest.quote(ctl) .. " restart -m " .. mode)
  assert(code == 0, "pg_ctl restart failed: " .. out)
end

local FAULTS = {
  {
    name = "pg_terminate_backend", id = "terminate",
    idle = function()
      local n = pg.psql1("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                         .. " WHERE application_name = 'llmspell.storage'")
      assert(tonumber(n) >= 1, "no library connection to terminate")
    end,
  },
  -- A fast shutdown ends every session at once, the lock holder's too: a
  -- write blocked behind that lock may get it and finish before its own
  -- session ends (then it has happened, once). The other faults end the
  -- blocked session first (terminate) or run nothing more (immediate).
  { name = "pg_ctl restart -m fast", id = "fast", may_finish = true,
    idle = function() restart("fast") end },
  { name = "pg_ctl restart -m immediate", id = "immediate",
    idle = function() restart("immediate") end },
}

--- Runs op while the fault child holds an exclusive lock on table, so that
-- op blocks inside a statement and the fault comes then. Returns pcall's
-- results.
local function during(fault, tbl, op)
  local cmd = helpers.lua_command("spec/support/pg_fault.lua " .. ctest.quote(helpers.pg_url())
                                  .. " llmspell." .. tbl .. " " .. fault.id)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local first = p:read("l")
  if first ~= "ready" then
    local rest = p:read("a")
    p:close()
    error("fault child: " .. tostring(first) .. "\n" .. tostring(rest))
  end
  local res = table.pack(pcall(op))
  local rest = p:read("a")
  p:close()
  assert(rest:match("faulted"), "the call was not blocked when the fault came: " .. rest)
  return table.unpack(res, 1, res.n)
end

--- Brings the handle's session back before the next fault. In fast mode a
-- call may finish before the server ends its session, and that dead
-- session would be the next call's first statement: a second fault,
-- spending the call's one retry before the fault under test comes. A read
-- meets it while idle and retries.
local function settle(db)
  assert.is_false(db:exists("settle:none"))
end

--- The outcome of a write that a fault cut off (ok, err from `during`):
-- it raised `connection`, or, where the fault allows it, it finished.
-- Returns whether it finished.
local function cut_off(fault, what, ok, err)
  if ok then
    assert(fault.may_finish, what .. " finished although the fault cut it off")
  else
    assert.equal("connection", type(err) == "table" and err.code or err, what)
  end
  return ok
end

--- Rows of the tenant in llmspell.<tbl> (where: an extra SQL condition).
local function rows(tenant, tbl, where)
  return tonumber(pg.psql1(string.format("SELECT count(*) FROM llmspell.%s WHERE tenant_id = '%s'%s",
                                         tbl, tenant, where and (" AND " .. where) or "")))
end

local function scan_all(db)
  local out = {}
  for k, v in db:scan("") do out[k] = v end
  return out
end

--- The reads that promise one transparent retry, each checking its answer.
local function kv_reads(db)
  return {
    { "get", function() assert.equal("v", db:get("k")) end },
    { "exists", function() assert.is_true(db:exists("p1")) end },
    { "get_batch", function() assert.same({ p1 = "1" }, db:get_batch { "p1", "zz" }) end },
    { "list_keys", function() assert.same({ "k", "p1", "p2" }, db:list_keys()) end },
    { "scan", function() assert.same({ k = "v", p1 = "1", p2 = "2" }, scan_all(db)) end },
    { "stats", function() assert.equal(3, db:stats().keys) end },
  }
end

local function vec(i) return { i, i % 7, 1 } end

local function fill_collection(db, name, n)
  local col = db:create_collection(name, { dimension = 3, metric = "l2" })
  local batch = {}
  for i = 1, n do batch[i] = { id = "e" .. i, vector = vec(i), metadata = { i = i } } end
  col:add(batch)
  return col
end

local function ids(hits)
  local out = {}
  for i, h in ipairs(hits) do out[i] = h.id end
  return out
end

--- Everything the tenant holds, for "as it was" checks.
local function state(db)
  local s = { kv = scan_all(db), cols = {} }
  for _, info in ipairs(db:list_collections()) do
    local col = db:collection(info.name)
    s.cols[info.name] = { count = col:count(), first = ids(col:search({ 0, 0, 0 }, { k = 5 })) }
  end
  return s
end

for _, fault in ipairs(FAULTS) do
  describe("PostgreSQL fault " .. fault.name, function()
    local tenant, db

    local function open() return storage.open { backend = "postgres", url = url(), tenant = tenant } end

    before_each(function()
      tenant = helpers.unique_tenant("fault")
      db = open()
    end)
    after_each(function() pcall(db.close, db) end)

    it("reads retry once when the fault comes while idle", function()
      db:set("k", "v")
      db:set_batch { p1 = "1", p2 = "2" }
      for _, r in ipairs(kv_reads(db)) do
        fault.idle()
        local ok, err = pcall(r[2])
        assert(ok, r[1] .. ": " .. tostring(err))
      end
    end)

    it("reads retry once when the fault comes inside the statement", function()
      db:set("k", "v")
      db:set_batch { p1 = "1", p2 = "2" }
      for _, r in ipairs(kv_reads(db)) do
        settle(db)
        local ok, err = during(fault, "kv_store", r[2])
        assert(ok, r[1] .. ": " .. tostring(err))
      end
      db:set("after", "1") -- the handle goes on working
      assert.equal("1", db:get("after"))
    end)

    it("writes raise connection and never apply twice", function()
      db:set("d", "1")
      -- idle: delete is the call's first statement on the dead session
      fault.idle()
      local err = helpers.error_of(db.delete, db, "d")
      assert.equal("connection", err.code)
      assert.equal(1, rows(tenant, "kv_store", "key = 'd'"))
      assert.is_true(db:delete("d"))
      -- inside the statement: the write is cut off and not applied
      db:set("keep", "x")
      for _, w in ipairs {
        -- name, the write, the rows it touches, how many there are once applied
        { "set", function() db:set("s", "1") end, "key = 's'", 1 },
        { "set_batch", function() db:set_batch { b1 = "1", b2 = "2" } end,
          "key IN ('b1', 'b2')", 2 },
        { "delete", function() db:delete("keep") end, "key = 'keep'", 0 },
      } do
        settle(db)
        local before = rows(tenant, "kv_store", w[3])
        local ok, e = during(fault, "kv_store", w[2])
        -- set and set_batch may also finish where the housekeeping sweep
        -- that precedes them met the fault first: the write itself then
        -- ran, once, on a fresh session
        if w[1] == "delete" then
          ok = cut_off(fault, w[1], ok, e)
        elseif not ok then
          assert.equal("connection", e.code, w[1] .. ": " .. tostring(e))
        end
        assert.equal(ok and w[4] or before, rows(tenant, "kv_store", w[3]), w[1])
      end
      -- writing again applies exactly once
      db:set("keep", "y")
      assert.equal("y", db:get("keep"))
      db:set("s", "2")
      assert.equal(1, rows(tenant, "kv_store", "key = 's'"))
    end)

    it("collection writes raise connection when cut off, and never apply twice", function()
      local col = fill_collection(db, "w", 20)
      local cases = {
        { "add", function() col:add { id = "new", vector = { 9, 9, 9 } } end,
          function() return col:get("new") == nil end },
        { "upsert", function()
            col:upsert { id = "e1", vector = { 8, 8, 8 }, metadata = { moved = true } }
          end, function() return col:get("e1").metadata.moved == nil end },
        { "delete", function() col:delete("e2") end, function() return col:get("e2") ~= nil end },
        { "update_metadata", function() col:update_metadata("e3", { up = true }) end,
          function() return col:get("e3").metadata.up == nil end },
      }
      local finished = {}
      for _, c in ipairs(cases) do
        settle(db)
        local ok, err = during(fault, "vectors", c[2])
        finished[c[1]] = cut_off(fault, c[1], ok, err)
        assert.equal(not finished[c[1]], c[3](), c[1])
      end
      local n = 20 + (finished.add and 1 or 0) - (finished.delete and 1 or 0)
      assert.equal(n, col:count())
      assert.equal(n, rows(tenant, "vectors"))
      -- idle: the call's catch-up read reconnects first, so the write runs once
      col:delete("new")
      fault.idle()
      assert.equal(1, col:add { id = "new", vector = { 9, 9, 9 } })
      assert.equal("conflict",
                   helpers.error_of(col.add, col, { id = "new", vector = { 1, 1, 1 } }).code)
      n = 20 + 1 - (finished.delete and 1 or 0)
      assert.equal(n, rows(tenant, "vectors"))
      assert.equal(n, db:collection("w"):count())
      assert.same({ "new" }, ids(col:search({ 9, 9, 9 }, { k = 1 })))
    end)

    it("a transaction interrupted raises and leaves nothing half-applied", function()
      local col = fill_collection(db, "t", 5)
      db:set("base", "0")
      -- idle between two statements of the transaction
      local err = helpers.error_of(db.transaction, db, function(tx)
        tx:set("t1", "1")
        col:add { id = "tx1", vector = { 5, 5, 5 } }
        fault.idle()
        tx:set("t2", "2")
      end)
      assert.equal("connection", err.code)
      assert.same({ "base" }, db:list_keys())
      assert.equal(5, rows(tenant, "vectors"))
      assert.is_nil(col:get("tx1"))
      -- inside a statement of the transaction (and statements after it)
      local ok, e = pcall(db.transaction, db, function(tx)
        tx:set("t3", "3")
        tx:transaction(function(inner) inner:set("t4", "4") end)
        local added, aerr = during(fault, "vectors", function()
          col:add { id = "tx2", vector = { 6, 6, 6 } }
        end)
        if not added then error(aerr, 0) end
        tx:set("t5", "5")
      end)
      -- all of it or nothing
      if cut_off(fault, "the transaction", ok, e) then
        assert.same({ "base", "t3", "t4", "t5" }, db:list_keys())
        assert.equal(6, col:count())
      else
        assert.same({ "base" }, db:list_keys())
        assert.equal(5, col:count())
        assert.is_nil(col:get("tx2"))
      end
      assert.equal(#db:list_keys(), rows(tenant, "kv_store"))
      assert.equal(col:count(), rows(tenant, "vectors"))
      -- and transactions work again
      db:transaction(function(tx) tx:set("t6", "6"); col:add { id = "tx3", vector = { 7, 7, 7 } } end)
      assert.equal("6", db:get("t6"))
      assert.is_table(col:get("tx3"))
    end)

    it("searches and collection loads retry once", function()
      local col = fill_collection(db, "s", 50)
      local want = ids(col:search({ 10, 3, 1 }, { k = 5 }))
      fault.idle()
      assert.same(want, ids(col:search({ 10, 3, 1 }, { k = 5 })))
      fault.idle()
      assert.equal(50, col:count())
      -- the catch-up read blocked when the fault comes
      local ok, res = during(fault, "collections", function() return col:search({ 10, 3, 1 }, { k = 5 }) end)
      assert(ok, tostring(res))
      assert.same(want, ids(res))
      -- another handle loading the collection, blocked reading its rows
      local db2 = open()
      local col2
      ok, res = during(fault, "vectors", function() col2 = db2:collection("s") end)
      assert(ok, tostring(res))
      assert.equal(50, col2:count())
      assert.same(want, ids(col2:search({ 10, 3, 1 }, { k = 5 })))
      fault.idle()
      db2:close()
      db2 = open()
      assert.same(want, ids(db2:collection("s"):search({ 10, 3, 1 }, { k = 5 })))
      db2:close()
    end)

    it("an import interrupted leaves the target as it was", function()
      -- a source big enough to be read in several chunks (progress is
      -- called between them), with keys and vectors
      local src = storage.open("memory")
      local kv = {}
      for i = 1, 3000 do kv[string.format("imp:%05d", i)] = string.rep("x", 40) end
      src:set_batch(kv)
      fill_collection(src, "docs", 200)
      local json = storage.exporter(src):to_string()
      src:close()

      db:set("imp:00001", "mine")
      db:set("own", "1")
      fill_collection(db, "docs", 3)
      local before = state(db)
      local imp = storage.importer(db)
      -- the fault while idle between two batches (from the progress function)
      local faulted = false
      local err = helpers.error_of(imp.from_string, imp, json, { batch_size = 100,
        progress = function()
          if not faulted then faulted = true; fault.idle() end
        end })
      assert.is_true(faulted)
      assert.equal("connection", err.code)
      assert.same(before, state(db))
      -- the fault inside a statement: the vector rows are locked
      local ok, e = during(fault, "vectors", function()
        return imp:from_string(json, { batch_size = 100 })
      end)
      if not cut_off(fault, "the import", ok, e) then
        assert.same(before, state(db))
        assert.equal(before.cols.docs.count, rows(tenant, "vectors"))
        -- and an import without a fault lands whole
        imp:from_string(json)
      end
      assert.equal("x", db:get("imp:00001"):sub(1, 1))
      assert.equal(3001, rows(tenant, "kv_store"))
      assert.equal(200, db:collection("docs"):count())
    end)
  end)
end
