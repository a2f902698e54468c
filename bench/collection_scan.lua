-- bench/collection_scan.lua: col:scan entries per second on each backend,
-- against a peer measured in the same run: on SQLite and PostgreSQL
-- LuaSQL (Debian's lua-sql-sqlite3 / lua-sql-postgres) SELECTing the same
-- rows in the same order (id, scope, metadata text, event_time: it leaves
-- the metadata JSON undecoded, col:scan decodes it into tables); on
-- memory the Lua reference the spec uses (the entries copied into tables
-- and sorted with table.sort).
--
-- Run with `make bench-scan` (it starts a throwaway PostgreSQL). Each
-- figure is the median of REPS runs; the ratio is ours / peer's entries
-- per second (> 1: we are faster).
local storage = require "llmspell.storage"
local system = require "system"

local REPS = tonumber(os.getenv("BENCH_REPS") or "") or 5
local N = tonumber(os.getenv("BENCH_SCAN_N") or "") or 50000
local DIM = 16
local PG_URL = os.getenv("LLMSPELL_TEST_PG_URL")

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) / 2] or (t[n / 2] + t[n / 2 + 1]) / 2
end

local function rate(f)
  collectgarbage()
  local t0 = system.gettime()
  local n = f()
  assert(n == N, ("%d entries, expected %d"):format(n, N))
  return n / (system.gettime() - t0)
end

local rows = {}
local function report(backend, op, ours, peer_name, peer)
  local a, b, r = {}, {}, {}
  for i = 1, REPS do
    a[i] = rate(ours)
    b[i] = rate(peer)
    r[i] = a[i] / b[i]
  end
  rows[#rows + 1] = string.format("| %-7s | %-22s | %10.0f | %-26s | %10.0f | %5.2fx |", backend,
                                  op, median(a), peer_name, median(b), median(r))
  io.stderr:write(rows[#rows], "\n")
end

local entries = {}
do
  local seed = 7
  for i = 1, N do
    seed = (seed * 1103515245 + 12345) % 2147483648
    local v = {}
    for d = 1, DIM do v[d] = (seed % (d + 7)) / 7 end
    entries[i] = { id = string.format("%08x-%d", seed, i), vector = v, scope = "s" .. i % 8,
                   metadata = { n = i, cat = "c" .. i % 4 },
                   event_time = 1700000000 + seed % 100000 }
  end
end

local function fill(db)
  local col = db:create_collection("bench_scan", { dimension = DIM })
  for i = 1, N, 1000 do col:add(table.move(entries, i, math.min(i + 999, N), 1, {})) end
  return col
end

local function ours(col, order)
  return function()
    local n = 0
    for _ in col:scan { order = order } do n = n + 1 end
    return n
  end
end

local function luasql_peer(conn, sql)
  return function()
    local cur = assert(conn:execute(sql))
    local n, row = 0, cur:fetch({}, "a")
    while row do
      n = n + 1
      row = cur:fetch({}, "a")
    end
    cur:close()
    return n
  end
end

------------------------------------------------------------------ memory
do
  local db = storage.open("memory")
  local col = fill(db)
  local function lua_reference(less)
    return function()
      local t = {}
      for i, e in ipairs(entries) do
        t[i] = { id = e.id, scope = e.scope, event_time = e.event_time,
                 metadata = { n = e.metadata.n, cat = e.metadata.cat } }
      end
      table.sort(t, less)
      return #t
    end
  end
  report("memory", "scan by id", ours(col, "id"), "Lua copy + table.sort",
         lua_reference(function(a, b) return a.id < b.id end))
  report("memory", "scan by event_time", ours(col, "event_time"), "Lua copy + table.sort",
         lua_reference(function(a, b)
           if a.event_time ~= b.event_time then return a.event_time < b.event_time end
           return a.id < b.id
         end))
  db:close()
end

------------------------------------------------------------------ sqlite
do
  local path = os.tmpname()
  local db = storage.open { backend = "sqlite", path = path }
  local col = fill(db)
  local driver = require("luasql.sqlite3").sqlite3()
  local conn = assert(driver:connect(path))
  local sel = "SELECT id, scope, metadata, event_time FROM vector_embeddings"
              .. " WHERE collection_id = (SELECT id FROM vector_collections"
              .. " WHERE name = 'bench_scan') AND (expires_at IS NULL OR expires_at > 0)"
  report("sqlite", "scan by id", ours(col, "id"), "LuaSQL SELECT ORDER BY id",
         luasql_peer(conn, sel .. " ORDER BY id"))
  report("sqlite", "scan by event_time", ours(col, "event_time"), "LuaSQL ... event_time, id",
         luasql_peer(conn, sel .. " ORDER BY event_time, id"))
  conn:close()
  driver:close()
  db:close()
  for _, s in ipairs { "", "-wal", "-shm" } do os.remove(path .. s) end
end

---------------------------------------------------------------- postgres
if PG_URL then
  local tenant = "bench_scan_" .. os.time()
  local db = storage.open { backend = "postgres", url = PG_URL, tenant = tenant }
  local col = fill(db)
  local driver = require("luasql.postgres").postgres()
  local conn = assert(driver:connect(PG_URL))
  -- as autovacuum would soon: on a table never analyzed PostgreSQL plans
  -- a page as a bitmap scan of the whole collection and a sort
  assert(conn:execute("ANALYZE llmspell.vectors"))
  local sel = "SELECT id, scope, metadata::text, event_time FROM llmspell.vectors"
              .. " WHERE collection_id = (SELECT id FROM llmspell.collections WHERE name ="
              .. " 'bench_scan' AND tenant_id = '" .. tenant .. "') AND tenant_id = '"
              .. tenant .. "' AND (expires_at IS NULL OR expires_at > now())"
  report("postgres", "scan by id", ours(col, "id"), "LuaSQL SELECT ORDER BY id",
         luasql_peer(conn, sel .. " ORDER BY id"))
  report("postgres", "scan by event_time", ours(col, "event_time"), "LuaSQL ... event_time, id",
         luasql_peer(conn, sel .. " ORDER BY event_time, id"))
  conn:close()
  driver:close()
  db:drop_collection("bench_scan")
  db:close()
end

print(("col:scan over %d entries (%d-d), entries/s, median of %d runs:"):format(N, DIM, REPS))
print("| backend | op                     |  ours /s   | peer                       |  peer /s   | ratio |")
print("|---------|------------------------|------------|----------------------------|------------|-------|")
for _, r in ipairs(rows) do print(r) end
