-- bench/open_set.lua: what routing through storage.open_set costs. Ours:
-- calls through a set (sessions in memory, vectors in SQLite, the rest on
-- the backend measured); the peer, measured in the same run: the same calls
-- on the store handle the set routes them to (set:store(...)), so the ratio
-- is the set's overhead alone. Medians of REPS alternating runs; ratios are
-- ours / peer's ops per second (1.00x = no cost).
--
--    lua5.4 bench/open_set.lua        (LLMSPELL_TEST_PG_URL adds PostgreSQL;
--                                      `make bench` style: scripts/with-postgres.sh)
local storage = require "llmspell.storage"
local system = require "system"

local REPS = tonumber(os.getenv("BENCH_REPS") or "") or 7
local N = tonumber(os.getenv("BENCH_N") or "") or 20000
local PG_URL = os.getenv("LLMSPELL_TEST_PG_URL")

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) / 2] or (t[n / 2] + t[n / 2 + 1]) / 2
end

local function rate(ops, f)
  collectgarbage()
  local t0 = system.gettime()
  f()
  return ops / (system.gettime() - t0)
end

local rows = {}
-- Runs ours and the peer alternately REPS times; reports the medians and
-- the median of the pair-by-pair ratios.
local function report(backend, op, ops, ours, peer)
  local a, b, r = {}, {}, {}
  for i = 1, REPS do
    a[i] = rate(ops, ours)
    b[i] = rate(ops, peer)
    r[i] = a[i] / b[i]
  end
  rows[#rows + 1] = string.format("| %-8s | %-28s | %10.0f | %11.0f | %5.2fx |", backend, op,
                                  median(a), median(b), median(r))
  io.stderr:write(rows[#rows], "\n")
end

local function bench(backend, default)
  local tmp = os.tmpname()
  local set = storage.open_set { default = default, sessions = "memory",
                                 vectors = "sqlite:" .. tmp, tenant = "bench_set" }
  local kv, mem = set.kv, set:store("sessions")
  kv:clear()
  local v = string.rep("v", 100)
  for i = 1, N do kv:set("k" .. i, v) end
  local function gets(h) return function() for i = 1, N do h:get("k" .. i) end end end
  local function sets(h) return function() for i = 1, N do h:set("k" .. i, v) end end end
  report(backend, "get (kv)", N, gets(set), gets(kv))
  report(backend, "set (kv)", N, sets(set), sets(kv))
  local s = set:sessions()
  s:create("s1")
  local function acc(h) return function() for _ = 1, N do h:sessions():get("s1") end end end
  report(backend, "sessions():get (memory)", N, acc(set), acc(mem))
  local col = set:collection("c", { dimension = 4, create = true })
  for i = 1, 200 do col:upsert { id = "e" .. i, vector = { i, 1, 0, 0 } } end
  local vec = set.vectors
  local function search(h)
    return function() for _ = 1, N // 10 do h:collection("c"):search({ 1, 1, 0, 0 }, { k = 5 }) end end
  end
  report(backend, "collection():search (sqlite)", N // 10, search(set), search(vec))
  local function txn(h, opts)
    return function()
      for i = 1, N // 10 do h:transaction(function(tx) tx:set("t" .. i, v) end, opts) end
    end
  end
  report(backend, "transaction{kv} + set", N // 10, txn(set, { components = { "kv" } }),
         txn(kv))
  kv:clear()
  set:close()
  os.remove(tmp)
  for _, sfx in ipairs { "-wal", "-shm" } do os.remove(tmp .. sfx) end
end

local tmpdb = os.tmpname()
bench("sqlite", "sqlite:" .. tmpdb)
for _, sfx in ipairs { "", "-wal", "-shm" } do os.remove(tmpdb .. sfx) end
if PG_URL and PG_URL ~= "" then bench("postgres", PG_URL) end

print(string.format("\nopen_set routing: %d ops per run, %d alternating runs, medians\n", N, REPS))
print("| kv on    | operation                    |  set ops/s | store ops/s | ratio |")
print("|----------|------------------------------|------------|-------------|-------|")
for _, r in ipairs(rows) do print(r) end
