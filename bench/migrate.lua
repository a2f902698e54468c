-- bench/migrate.lua: moving a store from SQLite to PostgreSQL with
-- storage.migrate (issue 13): 100,000 keys, 20,000 vectors (128-d) and
-- 10,000 sessions with an artifact each, copied (the export path: one
-- export file, one import transaction) then verified (every key, vector
-- and component record compared), each step in a child process of its
-- own so its peak RSS (VmHWM) is its own. The peer is the API path
-- (`method = "api"`: batches through the store API, what a hand-written
-- copy does) for the keys and vectors, measured in the same run; the
-- issue's figure of merit is verification time over copy time (it was
-- 6x before verification read components and collections through
-- ordered scans).
--
-- Run: `make bench-migrate` (starts a throwaway PostgreSQL);
-- BENCH_MIGRATE_SCALE=0.1 for a tenth of the data.
local storage = require "llmspell.storage"
local system = require "system"

local SCALE = tonumber(os.getenv("BENCH_MIGRATE_SCALE") or "") or 1
local N_KV, N_VEC, N_SES = math.floor(100000 * SCALE), math.floor(20000 * SCALE),
                           math.floor(10000 * SCALE)
local DIM = 128
local PG_URL = assert(os.getenv("LLMSPELL_TEST_PG_URL"), "needs LLMSPELL_TEST_PG_URL")

local function now() return system.gettime() end

-- xorshift64: the same data every run.
local x = 88172645463325252
local function rnd()
  x = x ~ (x << 13)
  x = x ~ (x >> 7)
  x = x ~ (x << 17)
  return ((x >> 11) & 0xFFFFF) / 0x100000
end

local function build(path)
  local db = storage.open("sqlite:" .. path)
  for lo = 1, N_KV, 1000 do
    local t = {}
    for i = lo, math.min(N_KV, lo + 999) do t[string.format("key/%07d", i)] = ("v"):rep(64) .. i end
    db:set_batch(t)
  end
  local col = db:collection("docs", { dimension = DIM, create = true })
  for lo = 1, N_VEC, 1000 do
    local batch = {}
    for i = lo, math.min(N_VEC, lo + 999) do
      local v = {}
      for d = 1, DIM do v[d] = rnd() - 0.5 end
      batch[#batch + 1] = { id = string.format("d%07d", i), vector = v,
                            metadata = { i = i, tag = "t" .. i % 10 }, event_time = 1.7e9 + i }
    end
    col:add(batch)
  end
  local s, a = db:sessions(), db:artifacts()
  for lo = 1, N_SES, 500 do
    db:transaction(function()
      for i = lo, math.min(N_SES, lo + 499) do
        local id = string.format("s%06d", i)
        s:create(id, { data = { n = i } })
        a:put(id, ("artifact %d "):format(i):rep(40), { name = "a.txt" })
      end
    end)
  end
  db:close()
end

-- Runs one step in a child Lua process; returns its seconds, peak RSS
-- (MB) and printed result.
local CHILD = [[
local storage = require "llmspell.storage"
local migrate = require "llmspell.storage.migrate"
local system = require "system"
local step, src_url, pg_url, tenant, method = ...
local src = storage.open(src_url)
local dst = storage.open { url = pg_url, tenant = tenant }
local t0 = system.gettime()
local n
local kvv = method ~= "export"
if method == "export_kv" then method = "export" end
if step == "copy" then
  local c = migrate.copy(src, dst, { method = method,
    components = kvv and { "kv", "vectors" } or nil })
  n = c.kv_entries + c.vectors
else
  local ok, r = migrate.verify(src, dst, { components = kvv and { "kv", "vectors" }
    or { "kv", "vectors", "sessions", "artifacts" } })
  assert(ok, table.concat(r.problems, "; "))
  n = r.kv.checked + r.vectors.checked
end
local secs = system.gettime() - t0
local hwm = io.open("/proc/self/status"):read("a"):match("VmHWM:%s*(%d+)")
print(string.format("%.3f %d %d", secs, tonumber(hwm) // 1024, n))
]]

local function step(script, name, src_url, tenant, method)
  local cmd = string.format("lua5.4 %s %s %s '%s' %s %s", script, name, src_url, PG_URL, tenant,
                            method)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  assert(p:close(), "step failed: " .. out)
  local secs, mb, n = out:match("([%d.]+) (%d+) (%d+)")
  return tonumber(secs), tonumber(mb), tonumber(n)
end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
local path = dir .. "/src.db"
io.stderr:write(string.format("migrate bench: %d keys, %d vectors, %d sessions + artifacts\n",
                              N_KV, N_VEC, N_SES))
local t0 = now()
build(path)
io.stderr:write(string.format("built in %.1f s\n", now() - t0))
local script = dir .. "/child.lua"
local f = assert(io.open(script, "w"))
f:write(CHILD)
f:close()

local records = N_KV + N_VEC + 2 * N_SES
local ours_t = "mig" .. os.time()
local cs, cmb = step(script, "copy", "sqlite:" .. path, ours_t, "export")
local vs, vmb = step(script, "verify", "sqlite:" .. path, ours_t, "export")
local kv_t = "kvv" .. os.time()
local ks, kmb = step(script, "copy", "sqlite:" .. path, kv_t, "export_kv")
local kvs, kvmb = step(script, "verify", "sqlite:" .. path, kv_t, "export_kv")
local peer_t = "peer" .. os.time()
local ps, pmb, pn = step(script, "copy", "sqlite:" .. path, peer_t, "api")
local pvs, pvmb = step(script, "verify", "sqlite:" .. path, peer_t, "api")

print("| step | ours (export path, every component) | ours (export path, keys + vectors) "
      .. "| peer (API path, keys + vectors) | note |")
print("|---|---|---|---|---|")
local kvn = N_KV + N_VEC
print(string.format("| copy | %.1f s, %.0f records/s, peak RSS %d MB | %.1f s, %.0f records/s, "
                    .. "peak RSS %d MB | %.1f s, %.0f records/s, peak RSS %d MB | keys + vectors: "
                    .. "ours %.2fx the peer's records/s |", cs, records / cs, cmb, ks, kvn / ks,
                    kmb, ps, pn / ps, pmb, (kvn / ks) / (pn / ps)))
print(string.format("| verify | %.1f s, peak RSS %d MB | %.1f s, peak RSS %d MB | %.1f s, peak RSS "
                    .. "%d MB | |", vs, vmb, kvs, kvmb, pvs, pvmb))
print(string.format("| verify / copy | %.2fx | %.2fx | %.2fx | was 6x before this issue |",
                    vs / cs, kvs / ks, pvs / ps))
os.execute("rm -rf " .. dir)
