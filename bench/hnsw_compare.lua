--- Our C vector index against hnswlib 0.6.2, on the real datasets in
-- ../shared/data. Runs bench/hnsw_c.c and bench/hnswlib_peer.cpp (built by
-- `make bench-hnsw`) alternately, each build in its own process so resident
-- memory is measured cleanly, BENCH_RUNS times (default 3), and prints
-- medians with ratios:
--
--   QPS at recall@10 >= 0.95: each side's fastest ef_search reaching 0.95
--   build time, 1 and 2 threads, and each side's 2-thread speedup
--   memory per vector: growth of VmRSS across the build, divided by n
--
-- usage: lua5.4 bench/hnsw_compare.lua BINDIR [DATADIR]
local bindir = assert(arg[1], "usage: hnsw_compare.lua BINDIR [DATADIR]")
local here = debug.getinfo(1, "S").source:match("^@(.*)$") or "bench/hnsw_compare.lua"
local root = here:match("^(.*)/bench/[^/]*$") or "."
local data = arg[2] or os.getenv("LLMSPELL_DATA_DIR")
if not data or data == "" then data = root .. "/../shared/data" end
local runs = tonumber(os.getenv("BENCH_RUNS") or "") or 3
local min_time = os.getenv("BENCH_MIN_TIME") or "0.2"
local EFS = "10,16,20,24,32,40,48,64,80,100,120,160,200"
local M, EFC = 16, 200

local datasets = {
  { name = "siftsmall", metric = "l2", nq = 0,
    base = "siftsmall/siftsmall_base.fvecs", query = "siftsmall/siftsmall_query.fvecs",
    gt = "siftsmall/siftsmall_groundtruth.ivecs" },
  { name = "sigmod24-clip", metric = "l2", nq = 1000,
    base = "sigmod2024_yfcc_clip100/sigmod24_base.fvecs",
    query = "sigmod2024_yfcc_clip100/sigmod24_query.fvecs",
    gt = "sigmod2024_yfcc_clip100/sigmod24_groundtruth_l2.ivecs" },
  { name = "cohere-1024", metric = "cosine", nq = 0,
    base = "cohere_wiki_int8_1k/cohere_base.fvecs",
    query = "cohere_wiki_int8_1k/cohere_query.fvecs",
    gt = "cohere_wiki_int8_1k/cohere_groundtruth_cos.ivecs" },
}

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function parse(line)
  local t = {}
  for k, v in line:gmatch("(%S+)=(%S+)") do t[k] = tonumber(v) or v end
  return t
end

local function minimum(xs)
  local m
  for _, x in ipairs(xs) do if not m or x < m then m = x end end
  return m
end

-- the 1-minute load average: other work on the machine inflates timings
local function loadavg()
  local f = io.open("/proc/loadavg")
  local v = f and f:read("n")
  if f then f:close() end
  return v
end

local function median(xs)
  if #xs == 0 then return nil end
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

-- runs one harness; returns the build record and a table ef -> {recall, qps}
local function run(impl, ds, threads)
  local exe = bindir .. (impl == "ours" and "/hnsw_c" or "/hnswlib_peer")
  local sweep = threads == 1
  local cmd = string.format(
    "%s --base %s --query %s --gt %s --metric %s --nq %d --m %d --efc %d --threads %d "
      .. "--efs %s --min-time %s --name %s",
    q(exe), q(data .. "/" .. ds.base), q(data .. "/" .. ds.query), q(data .. "/" .. ds.gt),
    ds.metric, ds.nq, M, EFC, threads, sweep and EFS or "100", sweep and min_time or "0",
    ds.name)
  local p = assert(io.popen(cmd))
  local build, efs = nil, {}
  for line in p:lines() do
    local t = parse(line)
    if t.build_s then build = t elseif t.ef then efs[t.ef] = t end
  end
  local ok = p:close()
  assert(ok and build, "benchmark failed: " .. cmd)
  return build, efs
end

local function fmt(x, f) return x and string.format(f or "%.3f", x) or "-" end

local rows = {}
local load_before = loadavg()
for _, ds in ipairs(datasets) do
  io.stderr:write(string.format("%s: %d runs ...\n", ds.name, runs))
  local acc = {}
  for _, impl in ipairs { "ours", "hnswlib" } do
    acc[impl] = { build = { [1] = {}, [2] = {} }, mem = {}, recall = {}, qps = {},
                  recall2 = {}, kernel = nil }
  end
  for r = 1, runs do
    -- alternate who goes first, so slow drifts of a shared machine even out
    local order = r % 2 == 1 and { "ours", "hnswlib" } or { "hnswlib", "ours" }
    for _, threads in ipairs { 1, 2 } do
      for _, impl in ipairs(order) do
        local b, efs = run(impl, ds, threads)
        local a = acc[impl]
        table.insert(a.build[threads], b.build_s)
        a.kernel = b.kernel
        if threads == 1 then
          table.insert(a.mem, b.mem_per_vec)
          for ef, t in pairs(efs) do
            a.recall[ef] = a.recall[ef] or {}
            a.qps[ef] = a.qps[ef] or {}
            table.insert(a.recall[ef], t.recall)
            table.insert(a.qps[ef], t.qps)
          end
        elseif efs[100] then
          table.insert(a.recall2, efs[100].recall)
        end
      end
    end
  end
  rows[#rows + 1] = { ds = ds, acc = acc }
end

local function efs_sorted(t)
  local out = {}
  for ef in pairs(t) do out[#out + 1] = ef end
  table.sort(out)
  return out
end

-- fastest ef whose median recall reaches the target
local function at_recall(a, target)
  local best
  for _, ef in ipairs(efs_sorted(a.recall)) do
    local r, qp = median(a.recall[ef]), median(a.qps[ef])
    if r >= target and (not best or qp > best.qps) then
      best = { ef = ef, recall = r, qps = qp }
    end
  end
  return best
end

print(string.format("\nHNSW: ours (csrc/vector/, -O2, run-time kernels) vs hnswlib 0.6.2 "
  .. "(-O3 -march=native); M=%d efC=%d k=10; medians of %d runs", M, EFC, runs))
for _, row in ipairs(rows) do
  local ds, o, h = row.ds, row.acc.ours, row.acc.hnswlib
  print(string.format("\n%s (%s, kernels: ours %s)", ds.name, ds.metric, o.kernel))
  print(string.format("  %5s  %8s %9s  %8s %9s  %6s", "ef", "recall", "QPS ours", "recall",
    "QPS hnsw", "ratio"))
  for _, ef in ipairs(efs_sorted(o.recall)) do
    local oq, hq = median(o.qps[ef]), h.qps[ef] and median(h.qps[ef])
    print(string.format("  %5d  %8.4f %9.0f  %8s %9s  %6s", ef, median(o.recall[ef]), oq,
      fmt(h.recall[ef] and median(h.recall[ef]), "%.4f"), fmt(hq, "%.0f"),
      fmt(hq and oq / hq, "%.2f")))
  end
end

local load_after = loadavg()
print("\nSummary (ratios > 1 favour ours, except build time and memory, where < 1 does)")
print(string.format("  %-14s %22s %22s %7s %7s %7s %7s %9s %9s %6s", "dataset",
  "QPS@0.95 ours (ef)", "QPS@0.95 hnswlib (ef)", "QPS x", "build1", "build2", "2T x",
  "B/vec", "B/vec hl", "mem x"))
local goals = {}
for _, row in ipairs(rows) do
  local ds, o, h = row.ds, row.acc.ours, row.acc.hnswlib
  local ao, ah = at_recall(o, 0.95), at_recall(h, 0.95)
  local b1o, b1h = median(o.build[1]), median(h.build[1])
  local b2o, b2h = median(o.build[2]), median(h.build[2])
  local mo, mh = median(o.mem), median(h.mem)
  local qx = ao and ah and ao.qps / ah.qps
  print(string.format("  %-14s %13s (%4s) %13s (%4s) %7s %7s %7s %7s %9.0f %9.0f %6s",
    ds.name, fmt(ao and ao.qps, "%.0f"), ao and ao.ef or "-", fmt(ah and ah.qps, "%.0f"),
    ah and ah.ef or "-", fmt(qx, "%.2f"), fmt(b1o / b1h, "%.2f"), fmt(b2o / b2h, "%.2f"),
    fmt(b1o / b2o, "%.2f"), mo, mh, fmt(mo / mh, "%.2f")))
  print(string.format("  %-14s build s (median): ours 1T %.3f 2T %.3f | hnswlib 1T %.3f 2T %.3f "
    .. "(2T x %.2f)", "", b1o, b2o, b1h, b2h, b1h / b2h))
  local m1o, m2o, m1h, m2h = minimum(o.build[1]), minimum(o.build[2]), minimum(h.build[1]),
    minimum(h.build[2])
  print(string.format("  %-14s build s (best):   ours 1T %.3f 2T %.3f (2T x %.2f) | hnswlib 1T "
    .. "%.3f 2T %.3f (2T x %.2f)", "", m1o, m2o, m1o / m2o, m1h, m2h, m1h / m2h))
  print(string.format("  %-14s recall@10 at ef=100 after the 2-thread build: ours %s hnswlib %s",
    "", fmt(median(o.recall2), "%.4f"), fmt(median(h.recall2), "%.4f")))
  goals[#goals + 1] = { ds.name, qx, b1o / b1h, b1o / b2o, mo / mh }
end
print("\nGoals: QPS x >= 1.0 (aim 1.2); build1 <= 1.0; 2T x >= 1.7; mem x within 0.9..1.1 "
  .. "(below is better)")
for _, g in ipairs(goals) do
  print(string.format("  %-14s QPS %s  build %s  2-thread %s  memory %s", g[1],
    g[2] and (g[2] >= 1.0 and "ok" or "MISS") or "-",
    g[3] <= 1.0 and "ok" or "MISS", g[4] >= 1.7 and "ok" or "MISS",
    g[5] <= 1.1 and "ok" or "MISS"))
end
print(string.format("\nload average (1 min) before %s, after %s: a shared machine's other "
  .. "work slows both sides and above all the 2-thread builds", fmt(load_before, "%.2f"),
  fmt(load_after, "%.2f")))
print(string.format("machine: %s, %s cores; %s", (io.popen("uname -srm"):read("l")),
  (io.popen("nproc"):read("l")),
  ((io.open("/proc/cpuinfo") or io.popen("true")):read("a"):match("model name%s*:%s*([^\n]+)")
    or "?")))
