-- bench/kv.lua: key-value throughput through the Lua API, against peers
-- measured in the same run: a plain Lua table (for memory) and LuaSQL
-- (Debian's lua-sql-sqlite3 / lua-sql-postgres) for SQLite and PostgreSQL.
--
-- Run with `make bench` (it starts a throwaway PostgreSQL). Each figure is
-- the median of REPS wall-clock runs; ratios are ours / peer's ops per
-- second, so > 1 means we are faster. Quote medians and ratios: machines
-- here are shared and noisy.
local storage = require "llmspell.storage"
local system = require "system"

local REPS = tonumber(os.getenv("BENCH_REPS") or "") or 5
local N_KEYS = 100000   -- store size for get and list_keys
local N_BATCH = 50000   -- keys per set_batch
local N_MATCH = 1000    -- list_keys matches among N_KEYS
local PG_URL = os.getenv("LLMSPELL_TEST_PG_URL")

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) / 2] or (t[n / 2] + t[n / 2 + 1]) / 2
end

-- A measurement to run later: `ops` operations done by f(ctx), ctx from
-- setup() (untimed). report() runs ours and the peer's alternately.
local function measure(ops, f, setup) return { ops = ops, f = f, setup = setup } end

local function run_once(m)
  local ctx = m.setup and m.setup() or nil
  collectgarbage()
  local t0 = system.gettime()
  m.f(ctx)
  return m.ops / (system.gettime() - t0)
end

local rows = {}
-- Runs ours and the peer's measurement alternately, REPS pairs, and reports
-- the median rates and the median of the pair-by-pair ratios (so a drift in
-- the machine's speed hits both sides of each pair alike).
local function report(backend, op, ours, peer_name, peer, goal)
  local a, b, r = {}, {}, {}
  for i = 1, REPS do
    a[i] = run_once(ours)
    b[i] = run_once(peer)
    r[i] = a[i] / b[i]
  end
  rows[#rows + 1] = string.format("| %-8s | %-28s | %12.0f | %-18s | %12.0f | %6.2fx | %s |",
                                  backend, op, median(a), peer_name, median(b), median(r),
                                  goal or "")
  io.stderr:write(rows[#rows], "\n")
end

local function key(i) return string.format("key:%07d", i) end
local VALUE = string.rep("v", 100)
-- Every key gets its own value (as in a real store), for us and the peers:
-- a Lua table whose entries all share one string would measure a cache-
-- resident toy, not a store.
local function value(i) return string.format("%s%07d", VALUE, i) end

local keys_for_get = {}
do -- random read order, the same for us and the peers
  local seed = 42
  for i = 1, N_KEYS do
    seed = (seed * 1103515245 + 12345) % 2147483648
    keys_for_get[i] = key(seed % N_KEYS + 1)
  end
end

-- N_KEYS keys, of which N_MATCH start with "match:".
local function fill_map()
  local m = {}
  for i = 1, N_KEYS - N_MATCH do m[key(i)] = value(i) end
  for i = 1, N_MATCH do m[string.format("match:%05d", i)] = value(i) end
  return m
end
local FULL = fill_map()

local function batch_map(tag)
  local m = {}
  for i = 1, N_BATCH do m[string.format("%s:%07d", tag, i)] = value(i) end
  return m
end

------------------------------------------------------------------ memory
do
  local db = storage.open("memory")
  db:set_batch(FULL)
  local t = {}
  for k, v in pairs(FULL) do t[k] = v end

  local ours = measure(N_KEYS, function()
    local get = db.get
    for i = 1, N_KEYS do get(db, keys_for_get[i]) end
  end)
  local peer = measure(N_KEYS, function()
    local x
    for i = 1, N_KEYS do x = t[keys_for_get[i]] end
    return x
  end)
  report("memory", "get", ours, "Lua table", peer, ">= 0.3x")

  ours = measure(N_KEYS, function()
    local set = db.set
    for i = 1, N_KEYS do set(db, keys_for_get[i], VALUE) end
  end)
  peer = measure(N_KEYS, function()
    for i = 1, N_KEYS do t[keys_for_get[i]] = VALUE end
  end)
  report("memory", "set", ours, "Lua table", peer)

  local n = 0
  local function next_map() n = n + 1; return batch_map("b" .. n) end
  ours = measure(N_BATCH, function(m) db:set_batch(m) end, next_map)
  peer = measure(N_BATCH, function(m)
    for k, v in pairs(m) do t[k] = v end
  end, next_map)
  report("memory", "set_batch 50k", ours, "Lua table", peer)

  ours = measure(1, function() assert(#db:list_keys("match:") == N_MATCH) end)
  peer = measure(1, function()
    local out = {}
    for k in pairs(t) do if k:sub(1, 6) == "match:" then out[#out + 1] = k end end
    table.sort(out)
    assert(#out == N_MATCH)
  end)
  report("memory", "list_keys 1k of 100k (calls)", ours, "Lua table scan", peer)
  db:close()
end

---------------------------------------------------------- SQL backends
-- The same five measurements for SQLite and PostgreSQL. `peer` describes
-- the LuaSQL side: its connection, table, upsert statement and the number
-- of single-key operations to time (network round trips make PostgreSQL's
-- slower, so it gets fewer).
local function sql_suite(name, db, peer)
  local conn, tbl = peer.conn, peer.table
  local function upsert(k, v)
    conn:execute(string.format(peer.upsert, tbl, conn:escape(k), v))
  end
  db:clear()
  db:set_batch(FULL)
  conn:execute("BEGIN")
  for k, v in pairs(FULL) do upsert(k, v) end
  conn:execute("COMMIT")

  local N = peer.single_ops
  local ours = measure(N, function()
    for i = 1, N do db:get(keys_for_get[i]) end
  end)
  local theirs = measure(N, function()
    for i = 1, N do
      local cur = conn:execute(string.format("SELECT value FROM %s WHERE key = '%s'", tbl,
                                             conn:escape(keys_for_get[i])))
      cur:fetch()
      cur:close()
    end
  end)
  report(name, "get", ours, peer.name, theirs, peer.goals.get)

  -- Every value read back (on SQLite each one's checksum checked too),
  -- while the store holds exactly the N_KEYS keys of FULL.
  ours = measure(N_KEYS, function()
    local n = 0
    for _ in db:scan() do n = n + 1 end
    assert(n == N_KEYS)
  end)
  theirs = measure(N_KEYS, function()
    local cur = conn:execute(string.format("SELECT key, value FROM %s ORDER BY key", tbl))
    local n, k = 0, cur:fetch()
    while k do n = n + 1; k = cur:fetch() end
    cur:close()
    assert(n == N_KEYS)
  end)
  report(name, "scan 100k (rows)", ours, peer.name, theirs)

  N = math.min(N, 2000)
  ours = measure(N, function()
    for i = 1, N do db:set(keys_for_get[i], VALUE) end
  end)
  theirs = measure(N, function()
    for i = 1, N do upsert(keys_for_get[i], VALUE) end
  end)
  report(name, "set (autocommit)", ours, peer.name, theirs, peer.goals.set)

  local n = 0
  local function next_map() n = n + 1; return batch_map("b" .. n) end
  ours = measure(N_BATCH, function(m) db:set_batch(m) end, next_map)
  theirs = measure(N_BATCH, function(m)
    conn:execute("BEGIN")
    for k, v in pairs(m) do upsert(k, v) end
    conn:execute("COMMIT")
  end, next_map)
  report(name, "set_batch 50k", ours, "LuaSQL (1 txn)", theirs, peer.goals.set_batch)

  ours = measure(1, function() assert(#db:list_keys("match:") == N_MATCH) end)
  theirs = measure(1, function()
    local cur = conn:execute(string.format(
      "SELECT key FROM %s WHERE key >= 'match:' AND key < 'match;' ORDER BY key", tbl))
    local out, k = {}, cur:fetch()
    while k do out[#out + 1] = k; k = cur:fetch() end
    cur:close()
    assert(#out == N_MATCH)
  end)
  report(name, "list_keys 1k of 100k (calls)", ours, peer.name, theirs)
  db:clear()
end

local function need(module, package)
  local ok, driver = pcall(require, module)
  if not ok then error(package .. " is needed for the LuaSQL peer: " .. driver) end
  return driver
end

do -- SQLite: both sides in WAL mode with synchronous = NORMAL
  local sqlite3 = need("luasql.sqlite3", "lua-sql-sqlite3")
  local path = os.tmpname() .. "-bench.db"
  local peer_path = os.tmpname() .. "-bench-peer.db"
  local db = storage.open { backend = "sqlite", path = path, synchronous = "normal" }
  local env = sqlite3.sqlite3()
  local conn = env:connect(peer_path)
  conn:execute("PRAGMA journal_mode=WAL")
  conn:execute("PRAGMA synchronous=NORMAL")
  conn:execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")
  sql_suite("sqlite", db, {
    name = "LuaSQL sqlite3", conn = conn, table = "kv", single_ops = 20000,
    upsert = "INSERT OR REPLACE INTO %s VALUES ('%s', '%s')",
    goals = { get = ">= 5x", set_batch = ">= 3x" },
  })
  db:close()
  conn:close()
  env:close()
  for _, p in ipairs { path, peer_path } do
    for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(p .. suffix) end
  end
end

do -- PostgreSQL: the throwaway server `make bench` starts
  if not PG_URL then error("LLMSPELL_TEST_PG_URL is not set: run through `make bench`") end
  local postgres = need("luasql.postgres", "lua-sql-postgres")
  local db = storage.open { backend = "postgres", url = PG_URL, tenant = "bench",
                            schema = "llmspell_bench" }
  local env = postgres.postgres()
  local conn = assert(env:connect(PG_URL)) -- LuaSQL takes a conninfo/URL
  conn:execute("DROP TABLE IF EXISTS llmspell_bench_peer")
  conn:execute("CREATE TABLE llmspell_bench_peer (key text COLLATE \"C\" PRIMARY KEY, "
               .. "value bytea NOT NULL)")
  sql_suite("postgres", db, {
    name = "LuaSQL postgres", conn = conn, table = "llmspell_bench_peer", single_ops = 5000,
    upsert = "INSERT INTO %s VALUES ('%s', '%s') "
             .. "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    goals = { get = ">= 1.3x", set_batch = ">= 10x" },
  })
  db:close()
  conn:execute("DROP TABLE llmspell_bench_peer")
  conn:close()
  env:close()
end

print(string.format("\nKV benchmark, %s, %d alternating runs; medians of ops/s and of"
                    .. " pair-by-pair ratios (ours / peer)\n", os.date("!%Y-%m-%d"), REPS))
print("| backend  | operation                    |     ours/s   | peer               |"
      .. "     peer/s   |  ratio | goal |")
print("|----------|------------------------------|--------------|--------------------|"
      .. "--------------|--------|------|")
for _, r in ipairs(rows) do print(r) end
