-- bench/export_import.lua: export and import throughput and memory, per
-- backend, through storage.exporter / storage.importer.
--
--   make bench-export          (starts a throwaway PostgreSQL)
--   lua5.4 bench/export_import.lua      (needs LLMSPELL_TEST_PG_URL)
--
-- Measures, for memory, SQLite and PostgreSQL: import and export of 100k
-- KV records (100-byte values) and of 100k 768-d vectors, as records per
-- second and peak RSS above the process's baseline; then import and export
-- of a file of about 1 GB (SQLite and PostgreSQL), where the goal is a
-- peak no more than 64 MB above baseline. The input files are synthetic
-- exports in the documented format ("1.0"), written by this script as a
-- stream (never held in memory).
--
-- Every measurement runs in a fresh child process (this script with
-- --worker), so each RSS figure is that one operation's: the child reads
-- VmRSS from /proc/self/status before the operation (after opening the
-- store, and after resetting the high-water mark through
-- /proc/self/clear_refs) and VmHWM after it. /usr/bin/time (Debian's
-- `time`), when present, adds the child's whole maximum RSS.
--
-- Beside ours: the seeds' own figures (about 1,000 records/s; 10k vectors
-- exported in 5 s, i.e. 2,000 vectors/s) and the issue's goals. Figures
-- are medians of BENCH_REPS runs (default 3 for KV, 1 for vectors and the
-- big file); the machine is shared and noisy.
--
-- Then one big value against many small ones: a file holding one value of
-- BENCH_BIG_VALUE_MB MiB against one holding that many values of 1 MiB
-- (the same bytes in total). The goals: the one value imports within 1.5x
-- the time of the many (time linear in bytes), with a peak RSS within 2x
-- the value.
--
-- Environment: BENCH_REPS, BENCH_KV (100000), BENCH_VECTORS (100000),
-- BENCH_BIG_MB (1024; 0 leaves the big file out), BENCH_BIG_VALUE_MB (64;
-- 0 leaves the big value out), BENCH_ONLY=big_value (only that case),
-- BENCH_DIR (temporary files; default $TMPDIR or /tmp), LLMSPELL_TEST_PG_URL.

local WORKER = arg[1] == "--worker"
local storage = require "llmspell.storage"

-- ------------------------------------------------------------ /proc

local function proc_status(field)
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local v
  for line in f:lines() do
    v = v or tonumber(line:match("^" .. field .. ":%s+(%d+)"))
  end
  f:close()
  return v
end

-- Resets VmHWM to the current RSS (Linux >= 4.0). True when it worked.
local function reset_hwm()
  local f = io.open("/proc/self/clear_refs", "w")
  if not f then return false end
  local ok = f:write("5")
  ok = f:close() and ok
  return ok and true or false
end

local clock
do
  local ok, system = pcall(require, "system")
  clock = ok and system.monotime or os.clock
end

-- ------------------------------------------------------------ the worker

-- Runs f(progress) as one measured operation; returns a result line.
-- VmHWM gives the peak RSS, which counts file pages SQLite maps (mmap_size)
-- as well as anonymous memory; the progress callback (every ~1000 records)
-- samples RssAnon, for the peak of the memory the process itself holds.
local function measured(label, f)
  collectgarbage()
  collectgarbage()
  local reset = reset_hwm()
  local base = proc_status("VmRSS")
  local anon_base = proc_status("RssAnon") or 0
  local anon_peak = anon_base
  local function sample()
    local a = proc_status("RssAnon")
    if a and a > anon_peak then anon_peak = a end
  end
  local t0 = clock()
  local stats = f(sample)
  local secs = clock() - t0
  sample()
  local peak = proc_status("VmHWM")
  local records = (stats.kv_entries or 0) + (stats.vectors or 0)
  return string.format("RESULT %s records=%d kv=%d vectors=%d seconds=%.6f base_kb=%d "
                       .. "peak_kb=%d reset=%d bytes=%d anon_base_kb=%d anon_peak_kb=%d",
                       label, records, stats.kv_entries or 0, stats.vectors or 0, secs,
                       base or 0, peak or 0, reset and 1 or 0, stats.bytes or 0, anon_base,
                       anon_peak)
end

-- "sqlite:PATH" plus "cache_size=-8192,mmap_size=0" -> storage.open options
local function open(url, tenant, extra)
  local o = { tenant = tenant }
  for k, v in (extra or ""):gmatch("([%w_]+)=([^,]+)") do o[k] = math.tointeger(v) or v end
  return storage.open(url, o)
end

local function worker(op, url, file, tenant, out, extra)
  if op == "import" then
    local db <close> = open(url, tenant, extra)
    local imp = storage.importer(db)
    print(measured("import", function(p) return imp:from_file(file, { progress = p }) end))
  elseif op == "export" then
    local db <close> = open(url, tenant, extra)
    local exp = storage.exporter(db)
    print(measured("export", function(p) return exp:to_file(file, { progress = p }) end))
  elseif op == "memory" then -- import then export in one process: memory dies with it
    local db <close> = open("memory", tenant)
    local imp = storage.importer(db)
    print(measured("import", function(p) return imp:from_file(file, { progress = p }) end))
    local exp = storage.exporter(db)
    print(measured("export", function(p) return exp:to_file(out, { progress = p }) end))
  elseif op == "clear" then
    local db <close> = open(url, tenant)
    for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
    db:clear()
  else
    error("unknown worker op " .. tostring(op))
  end
  io.stdout:flush()
end

if WORKER then
  worker(arg[2], arg[3], arg[4], arg[5], arg[6], arg[7])
  os.exit(0)
end

-- ------------------------------------------------------------ settings

local PG_URL = os.getenv("LLMSPELL_TEST_PG_URL")
if not PG_URL or PG_URL == "" then
  io.stderr:write("LLMSPELL_TEST_PG_URL is not set: run `make bench-export`\n")
  os.exit(1)
end
if not storage.exporter or not storage.importer then
  io.stderr:write("this build has no storage.exporter/importer yet\n")
  os.exit(1)
end

local function env_int(name, default)
  local v = tonumber(os.getenv(name) or "")
  return v and math.tointeger(v) or default
end
local REPS_ENV = env_int("BENCH_REPS", nil)
local N_KV = env_int("BENCH_KV", 100000)
local N_VEC = env_int("BENCH_VECTORS", 100000)
local BIG_MB = env_int("BENCH_BIG_MB", 1024)
local BIG_VALUE_MB = env_int("BENCH_BIG_VALUE_MB", 64)
local ONLY_BIG_VALUE = os.getenv("BENCH_ONLY") == "big_value"
if ONLY_BIG_VALUE then N_KV, N_VEC, BIG_MB = 1, 1, 0 end
local DIM = 768
local DIR = os.getenv("BENCH_DIR") or os.getenv("TMPDIR") or "/tmp"
if DIR == "" then DIR = "/tmp" end
local TIME = io.open("/usr/bin/time") and "/usr/bin/time" or nil
local SEED_RECORDS, SEED_VECTORS = 1000, 10000 / 5

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local ok = os.execute(cmd)
  if not ok then error("command failed: " .. cmd) end
end

local WORK = string.format("%s/llmspell-bench-export-%d-%d", DIR, os.time(),
                           math.random(1, 1e6))
sh("mkdir -p " .. q(WORK))

-- ------------------------------------------------------------ base64

local ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B12 = {} -- 12 bits -> two base64 characters
for i = 0, 4095 do
  B12[i] = ALPHA:sub((i >> 6) + 1, (i >> 6) + 1) .. ALPHA:sub((i & 63) + 1, (i & 63) + 1)
end

--- Base64 of s; #s must be a multiple of 3 (all our payloads are).
local function b64(s)
  assert(#s % 3 == 0)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | (b << 8) | c
    out[#out + 1] = B12[n >> 12] .. B12[n & 4095]
  end
  return table.concat(out)
end

-- A deterministic generator (LCG), so runs see the same data.
local seed = 12345
local function rnd()
  seed = (seed * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff
  return (seed >> 11) / (1 << 52)
end

-- ------------------------------------------------------------ the files

-- Vectors: base64 of 3072 bytes (768 float32) is the concatenation of the
-- base64 of its 12-byte pieces (3 floats each, a multiple of 3 bytes), so
-- a vector is 256 pieces drawn from a pool: distinct vectors without
-- encoding 300 MB in Lua.
local PIECES = {}
for i = 1, 4096 do
  PIECES[i] = b64(string.pack("<fff", rnd() * 2 - 1, rnd() * 2 - 1, rnd() * 2 - 1))
end
local function vector_b64()
  local parts = {}
  for j = 1, DIM // 3 do parts[j] = PIECES[math.floor(rnd() * 4096) + 1] end
  return table.concat(parts)
end

local NOW_US = os.time() * 1000000

local function open_export(path)
  local f = assert(io.open(path, "wb"))
  f:setvbuf("full", 1 << 20)
  f:write('{"version":"1.0","exported_at":"2026-01-01T00:00:00.000000Z",',
          '"source_backend":"sqlite","tenant_id":"bench","migrations":',
          '["001_kv_store","002_vectors","003_export"],"data":{')
  return f
end

-- Writes n KV records; value(i) gives the base64 of the value.
local function write_kv(f, n, value, tag)
  f:write('"kv_store":[')
  for i = 1, n do
    if i > 1 then f:write(",") end
    f:write(string.format('{"kv_id":"00000000-0000-4000-8000-%012x","tenant_id":"bench",'
                          .. '"key":"%s:%08d","value":"', i, tag, i), value(i),
            string.format('","metadata":null,"created_at":%d,"updated_at":%d}',
                          NOW_US + i, NOW_US + i))
  end
  f:write("]")
end

local function write_vectors(f, n, collection)
  f:write('"vector_embeddings":{"768":[')
  for i = 1, n do
    if i > 1 then f:write(",") end
    f:write(string.format('{"id":"v%08d","tenant_id":"bench","scope":"global",'
                          .. '"dimension":768,"embedding":"', i), vector_b64(),
            string.format('","metadata":{"n":%d},"created_at":%d,"updated_at":%d,'
                          .. '"collection":"%s","metric":"cosine","m":16,'
                          .. '"ef_construction":200,"ef_search":50}',
                          i, NOW_US + i, NOW_US + i, collection))
  end
  f:write("]}")
end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

local function status(fmt, ...) io.stderr:write(string.format(fmt, ...), "\n") end

-- 100-byte values would need padding; 99 bytes keep base64 unpadded.
local VALUES = {}
for i = 1, 1024 do
  local t = {}
  for j = 1, 99 do t[j] = string.char(math.floor(rnd() * 256)) end
  VALUES[i] = b64(table.concat(t))
end

local KV_FILE = WORK .. "/kv.json"
local VEC_FILE = WORK .. "/vectors.json"
local BIG_FILE = WORK .. "/big.json"
do
  local t0 = clock()
  local f = open_export(KV_FILE)
  write_kv(f, N_KV, function(i) return VALUES[(i * 7919) % 1024 + 1] end, "key")
  f:write("}}")
  f:close()
  f = open_export(VEC_FILE)
  write_vectors(f, N_VEC, "bench768")
  f:write("}}")
  f:close()
  status("wrote %s (%.0f MB) and %s (%.0f MB) in %.1f s", KV_FILE, file_size(KV_FILE) / 1e6,
         VEC_FILE, file_size(VEC_FILE) / 1e6, clock() - t0)
end

-- The big file: KV records with 3 KB values (4 KB of base64 each) and 20k
-- vectors, about BIG_MB megabytes.
local BIG_VECTORS = 20000
if BIG_MB > 0 then
  local t0 = clock()
  local big_values = {}
  for i = 1, 64 do
    local t = {}
    for j = 1, 3000 do t[j] = string.char(math.floor(rnd() * 256)) end
    big_values[i] = b64(table.concat(t))
  end
  local vec_bytes = BIG_VECTORS * 4400
  local n = math.max(1, (BIG_MB * 1000000 - vec_bytes) // 4200)
  local f = open_export(BIG_FILE)
  write_kv(f, n, function(i) return big_values[i % 64 + 1] end, "big")
  f:write(",")
  write_vectors(f, BIG_VECTORS, "big768")
  f:write("}}")
  f:close()
  status("wrote %s (%.0f MB: %d KV records, %d vectors) in %.1f s", BIG_FILE,
         file_size(BIG_FILE) / 1e6, n, BIG_VECTORS, clock() - t0)
end

-- ------------------------------------------------------------ running

local SELF = debug.getinfo(1, "S").source:match("^@(.*)$")
local LUA = "lua5.4"
do -- the interpreter this script runs under: arg's lowest index
  local i = -1
  while arg[i - 1] do i = i - 1 end
  if arg[i] and not arg[i]:match("^%-") then LUA = arg[i] end
end
local counter = 0

-- Runs one worker; returns its RESULT lines parsed, and the child's max
-- RSS in KB from /usr/bin/time (or nil).
local function run_worker(op, url, file, tenant, out, extra)
  counter = counter + 1
  local tfile = WORK .. "/time." .. counter
  local cmd = string.format("%s %s --worker %s %s %s %s %s %s", LUA, q(SELF), op, q(url),
                            q(file), q(tenant), q(out or ""), q(extra or ""))
  if TIME then cmd = string.format("%s -f %%M -o %s %s", TIME, q(tfile), cmd) end
  local p = assert(io.popen(cmd))
  local text = p:read("a")
  local ok = p:close()
  if not ok then error("worker failed: " .. cmd .. "\n" .. text) end
  local results = {}
  for line in text:gmatch("[^\n]+") do
    local label, rest = line:match("^RESULT (%S+) (.*)$")
    if label then
      local r = { label = label }
      for k, v in rest:gmatch("([%w_]+)=(%S+)") do r[k] = tonumber(v) end
      results[#results + 1] = r
    end
  end
  local maxrss
  local tf = io.open(tfile)
  if tf then
    maxrss = tonumber((tf:read("a") or ""):match("(%d+)%s*$"))
    tf:close()
    os.remove(tfile)
  end
  return results, maxrss
end

local function median(xs)
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

local function largest(xs)
  local m
  for _, x in ipairs(xs) do
    if m == nil or x > m then m = x end
  end
  return m
end

local tenant_n = 0
local function new_tenant()
  tenant_n = tenant_n + 1
  return string.format("bench_%d_%d", os.time(), tenant_n)
end

local SQLITE_DB = WORK .. "/bench.db"
-- The backends: name, URL and extra storage.open options. "sqlite, small
-- cache" turns off the memory map (file pages mapped for reads count in
-- RSS) and shrinks the page cache from the default 64 MiB to 8 MiB.
local MEMORY = { name = "memory" }
local SQLITE = { name = "sqlite", url = "sqlite:" .. SQLITE_DB }
local SQLITE_SMALL = { name = "sqlite, 8 MB cache, no mmap", url = "sqlite:" .. SQLITE_DB,
                       extra = "cache_size=-8192,mmap_size=0" }
local POSTGRES = { name = "postgres", url = PG_URL }

-- One measurement per backend and data set: import FILE, then export
-- what was imported, each in a fresh process. Returns { import = {...},
-- export = {...} }, each with the median rate and seconds, records, and
-- the largest peaks over the runs (MB above baseline: VmHWM and RssAnon;
-- the child's max RSS).
local function measure(backend, file, reps)
  local acc = { import = {}, export = {} }
  for _ = 1, reps do
    local tenant = new_tenant()
    local out = WORK .. "/out.json"
    local runs = {}
    if backend == MEMORY then
      local rs, maxrss = run_worker("memory", "memory", file, tenant, out)
      runs.import, runs.export = rs[1], rs[2]
      runs.import.maxrss, runs.export.maxrss = maxrss, maxrss
    else
      local rs, maxrss = run_worker("import", backend.url, file, tenant, nil, backend.extra)
      runs.import = rs[1]
      runs.import.maxrss = maxrss
      rs, maxrss = run_worker("export", backend.url, out, tenant, nil, backend.extra)
      runs.export = rs[1]
      runs.export.maxrss = maxrss
      if backend.url == PG_URL then
        run_worker("clear", backend.url, "-", tenant)
      else
        for _, sfx in ipairs { "", "-wal", "-shm" } do os.remove(SQLITE_DB .. sfx) end
      end
    end
    os.remove(out)
    for phase, r in pairs(runs) do
      r.rate = r.records / r.seconds
      r.peak_mb = r.reset == 1 and (r.peak_kb - r.base_kb) / 1024 or nil
      r.anon_mb = (r.anon_peak_kb - r.anon_base_kb) / 1024
      table.insert(acc[phase], r)
    end
  end
  local res = {}
  for phase, rs in pairs(acc) do
    local rates, secs, peaks, anons, maxrss = {}, {}, {}, {}, {}
    for i, r in ipairs(rs) do
      rates[i], secs[i], anons[i] = r.rate, r.seconds, r.anon_mb
      if r.peak_mb then peaks[#peaks + 1] = r.peak_mb end
      if r.maxrss then maxrss[#maxrss + 1] = r.maxrss / 1024 end
    end
    res[phase] = { rate = median(rates), seconds = median(secs), records = rs[1].records,
                   peak_mb = largest(peaks), anon_mb = largest(anons),
                   maxrss_mb = largest(maxrss) }
  end
  return res
end

-- ------------------------------------------------------------ the table

local rows = {}
local function fmt_rate(x) return x and string.format("%.0f", x) or "-" end
local function fmt_mb(x) return x and string.format("%.1f", x) or "n/a" end

local function row(backend, op, data, r, seed_rate, goal, goal_ok)
  local line = string.format("| %s | %s | %s | %d | %.2f | %s | %s | %s | %s | %s | %s |",
                             backend.name, op, data, r.records, r.seconds, fmt_rate(r.rate),
                             seed_rate and fmt_rate(seed_rate) or "-",
                             goal and (goal .. (goal_ok and " ok" or " **missed**")) or "",
                             fmt_mb(r.peak_mb), fmt_mb(r.anon_mb), fmt_mb(r.maxrss_mb))
  rows[#rows + 1] = line
  status("%s", line)
end

local HEADER = {
  "| backend | op | data | records | s | records/s | seeds' /s | goal | peak RSS MB "
  .. "| peak anon MB | max RSS MB |",
  "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
}
for _, h in ipairs(HEADER) do status("%s", h) end

local KV_REPS = REPS_ENV or 3
local VEC_REPS = REPS_ENV or 1
local started = clock()
local kv_label = string.format("%dk KV", N_KV // 1000)
local vec_label = string.format("%dk 768-d", N_VEC // 1000)

for _, backend in ipairs(ONLY_BIG_VALUE and {} or { MEMORY, SQLITE, POSTGRES }) do
  local kv = measure(backend, KV_FILE, KV_REPS)
  row(backend, "export", kv_label, kv.export, SEED_RECORDS, ">= 100k/s",
      kv.export.rate >= 100000)
  local sqlite = backend == SQLITE
  row(backend, "import", kv_label, kv.import, SEED_RECORDS, sqlite and ">= 50k/s" or nil,
      sqlite and kv.import.rate >= 50000)
  local vec = measure(backend, VEC_FILE, VEC_REPS)
  row(backend, "export", vec_label, vec.export, SEED_VECTORS, ">= 20k/s",
      vec.export.rate >= 20000)
  row(backend, "import", vec_label, vec.import, SEED_RECORDS, sqlite and ">= 10k/s" or nil,
      sqlite and vec.import.rate >= 10000)
end

if BIG_MB > 0 then
  local label = string.format("%.2f GB file", file_size(BIG_FILE) / 1e9)
  for _, backend in ipairs { SQLITE, SQLITE_SMALL, POSTGRES } do
    local big = measure(backend, BIG_FILE, REPS_ENV or 1)
    for _, op in ipairs { "import", "export" } do
      local r = big[op]
      row(backend, op, label, r, nil, "peak <= 64 MB", r.peak_mb and r.peak_mb <= 64)
    end
  end
end

-- One big value against many small ones. The values' bytes are a 48 KiB
-- random block repeated (its base64 repeats with it: 49152 is a multiple
-- of 3); sizes are whole MiB rounded down to a multiple of 3, so no
-- padding is needed.
local value_rows = {}
if BIG_VALUE_MB > 0 then
  local t = {}
  for i = 1, 49152 do t[i] = string.char(math.floor(rnd() * 256)) end
  local block = b64(table.concat(t))
  local function write_value(f, bytes) -- the base64 of `bytes` bytes of the pattern
    for _ = 1, bytes // 49152 do f:write(block) end
    f:write(block:sub(1, (bytes % 49152) // 3 * 4))
  end
  local function value_file(path, n, bytes)
    local f = open_export(path)
    f:write('"kv_store":[')
    for i = 1, n do
      f:write(i > 1 and "," or "", string.format('{"key":"value:%04d","value":"', i))
      write_value(f, bytes)
      f:write(string.format('","created_at":%d,"updated_at":%d}', NOW_US, NOW_US))
    end
    f:write("]}}")
    f:close()
  end
  local MiB = 1024 * 1024
  local ONE_FILE, MANY_FILE = WORK .. "/one_value.json", WORK .. "/many_values.json"
  value_file(ONE_FILE, 1, BIG_VALUE_MB * MiB // 3 * 3)
  value_file(MANY_FILE, BIG_VALUE_MB, MiB // 3 * 3)
  status("wrote %s and %s (%.0f MB each)", ONE_FILE, MANY_FILE, file_size(ONE_FILE) / 1e6)
  local VALUE_HEADER = {
    string.format("| backend | import 1 x %d MiB s | import %d x 1 MiB s | ratio (goal <= 1.5) "
                  .. "| peak RSS MB, 1 x %d MiB | peak / value (goal <= 2) | export 1 x %d MiB s "
                  .. "| export peak MB |", BIG_VALUE_MB, BIG_VALUE_MB, BIG_VALUE_MB,
                  BIG_VALUE_MB),
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  }
  for _, h in ipairs(VALUE_HEADER) do value_rows[#value_rows + 1] = h; status("%s", h) end
  for _, backend in ipairs { MEMORY, SQLITE, SQLITE_SMALL, POSTGRES } do
    local reps = REPS_ENV or 3
    local one, many = measure(backend, ONE_FILE, reps), measure(backend, MANY_FILE, reps)
    local ratio = one.import.seconds / many.import.seconds
    local per_value = one.import.peak_mb and one.import.peak_mb / BIG_VALUE_MB
    local line = string.format("| %s | %.3f | %.3f | %.2f%s | %s | %s%s | %.3f | %s |",
                               backend.name, one.import.seconds, many.import.seconds, ratio,
                               ratio <= 1.5 and " ok" or " **missed**", fmt_mb(one.import.peak_mb),
                               per_value and string.format("%.2f", per_value) or "n/a",
                               per_value and (per_value <= 2 and " ok" or " **missed**") or "",
                               one.export.seconds, fmt_mb(one.export.peak_mb))
    value_rows[#value_rows + 1] = line
    status("%s", line)
  end
end

local big_gb = BIG_MB > 0 and file_size(BIG_FILE) / 1e9 or 0
os.execute("rm -rf " .. q(WORK))

if ONLY_BIG_VALUE then
  print()
  print(string.format("One value of %d MiB against %d values of 1 MiB (rounded down to "
                      .. "a multiple of 3 bytes), imported then exported, each operation in a fresh process; "
                      .. "median seconds of %d runs, largest peak (VmHWM above VmRSS before).",
                      BIG_VALUE_MB, BIG_VALUE_MB, REPS_ENV or 3))
  print()
  for _, r in ipairs(value_rows) do print(r) end
  print(string.format("\n(total %.0f s)", clock() - started))
  os.exit(0)
end

print()
print(string.format("Export and import of %d KV records (99-byte values), %d 768-d vectors "
                    .. "and a %.2f GB file; median of %d (KV) / %d (vectors, big file) runs, "
                    .. "each operation in a fresh process.", N_KV, N_VEC, big_gb, KV_REPS,
                    VEC_REPS))
print("seeds' /s: the seeds' own figures (about 1,000 records/s; 10k vectors exported in "
      .. "5 s). peak RSS: VmHWM above VmRSS just before the operation (store open); peak "
      .. "anon: RssAnon sampled every ~1000 records, above its value before; max RSS: the "
      .. "child's whole maximum (/usr/bin/time).")
print()
for _, h in ipairs(HEADER) do print(h) end
for _, r in ipairs(rows) do print(r) end
if #value_rows > 0 then
  print()
  print(string.format("One value of %d MiB against %d values of 1 MiB (rounded down to a "
                      .. "multiple of 3 bytes), median seconds of %d runs, largest peak (VmHWM above VmRSS before).",
                      BIG_VALUE_MB, BIG_VALUE_MB, REPS_ENV or 3))
  print()
  for _, r in ipairs(value_rows) do print(r) end
end
print(string.format("\n(total %.0f s)", clock() - started))
