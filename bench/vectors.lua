-- bench/vectors.lua: vector collections through the Lua API against
-- hnswlib 0.6.2 (Debian's libhnswlib-dev, via bench/hnswlib_peer.cpp), both
-- measured in this one invocation on the real datasets in ../shared/data,
-- with the same M and ef_construction.
--
--   make bench-vectors            (builds the peer, then runs this)
--   lua5.4 bench/vectors.lua BINDIR [DATADIR]
--
-- Per dataset: build time with 1 and 2 threads, recall@10 against the
-- ground truth and single-thread QPS over an ef_search sweep, memory per
-- vector; then filtered recall and QPS at 1%, 10% and 50% selectivity, and
-- a scale run on a seeded Gaussian mixture. Our QPS includes the Lua call
-- and building the result tables: what a Lua program gets. Figures are
-- medians of BENCH_RUNS runs (default 3); the machine is shared and noisy,
-- so quote ratios.
--
-- Environment: BENCH_RUNS, BENCH_SCALE ("100k" default, "1m" adds the
-- 1M-vector runs), LLMSPELL_DATA_DIR.
local storage = require "llmspell.storage"
local system = require "system"

local bindir = assert(arg[1], "usage: vectors.lua BINDIR [DATADIR]")
local data = arg[2] or os.getenv("LLMSPELL_DATA_DIR")
if not data or data == "" then data = "../shared/data" end
local RUNS = tonumber(os.getenv("BENCH_RUNS") or "") or 3
local SCALE = os.getenv("BENCH_SCALE") or "100k"
local M, EFC = 16, 200
local EFS = { 10, 16, 24, 32, 48, 64, 100, 150, 200 }

local function median(xs)
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  return n % 2 == 1 and s[(n + 1) / 2] or (s[n / 2] + s[n / 2 + 1]) / 2
end

local function rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local v
  for line in f:lines() do
    v = v or tonumber(line:match("^VmRSS:%s+(%d+)"))
  end
  f:close()
  return v
end

local function read_fvecs(path, limit)
  local f = assert(io.open(path, "rb"), "cannot open " .. path)
  local s = f:read("a")
  f:close()
  local dim = string.unpack("<i4", s)
  local out = {}
  for off = 1, #s, 4 + 4 * dim do
    if limit and #out >= limit then break end
    out[#out + 1] = s:sub(off + 4, off + 3 + 4 * dim)
  end
  return out, dim
end

local function read_ivecs(path, limit)
  local f = assert(io.open(path, "rb"), "cannot open " .. path)
  local s = f:read("a")
  f:close()
  local k = string.unpack("<i4", s)
  local out = {}
  for off = 1, #s, 4 + 4 * k do
    if limit and #out >= limit then break end
    local row = { string.unpack("<" .. string.rep("i4", 10), s, off + 4) }
    row[11] = nil
    out[#out + 1] = row
  end
  return out
end

local function recall(results, truth)
  local total = 0
  for qi, res in ipairs(results) do
    local want = {}
    for i = 1, 10 do want[truth[qi][i]] = true end
    for i = 1, math.min(10, #res) do
      if want[tonumber(res[i].id)] then total = total + 1 end
    end
  end
  return total / (10 * #results)
end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local lines = {}
local function out(fmt, ...)
  local s = string.format(fmt, ...)
  lines[#lines + 1] = s
  io.stderr:write(s, "\n")
end

-- hnswlib through the peer binary: build_s, rss and per-ef recall/qps.
local function run_peer(ds, threads, nq)
  local cmd = string.format("%s/hnswlib_peer --base %s --query %s --gt %s --metric %s "
    .. "--m %d --efc %d --threads %d --nq %d --efs %s", bindir,
    shell_quote(data .. "/" .. ds.base), shell_quote(data .. "/" .. ds.query),
    shell_quote(data .. "/" .. ds.gt), ds.metric, M, EFC, threads, nq,
    table.concat(EFS, ","))
  local p = assert(io.popen(cmd))
  local r = { ef = {} }
  for line in p:lines() do
    local t = {}
    for k, v in line:gmatch("(%S+)=(%S+)") do t[k] = tonumber(v) or v end
    if t.ef then r.ef[t.ef] = t elseif t.build_s then r.build = t end
  end
  assert(p:close(), "peer failed: " .. cmd)
  assert(r.build, "peer printed no build line: " .. cmd)
  return r
end

-- Ours: one build with `threads`, then the ef sweep (single thread). Runs
-- in this process; run_ours_child below runs it in a fresh one, as the peer
-- runs, so resident memory starts from the same baseline.
local function run_ours(ds, base, queries, truth, threads)
  collectgarbage()
  collectgarbage()
  local db = storage.open("memory")
  local col = db:create_collection("bench", { dimension = ds.dim, metric = ds.metric, m = M,
                                              ef_construction = EFC })
  local batch = {}
  for i, v in ipairs(base) do batch[i] = { id = tostring(i - 1), vector = v } end
  local rss0 = rss_kb()
  local t0 = system.gettime()
  col:add(batch, { threads = threads })
  local build_s = system.gettime() - t0
  local rss1 = rss_kb()
  local r = { build_s = build_s, rss_per_vec = (rss1 - rss0) * 1024 / #base,
              index_per_vec = col:stats().memory_bytes / #base, ef = {} }
  batch = nil
  for _, ef in ipairs(EFS) do
    local opts = { k = 10, ef_search = ef, include_metadata = false }
    local res = {}
    for i, q in ipairs(queries) do res[i] = col:search(q, opts) end
    -- timed like the peer: whole passes over the queries for at least 0.3 s
    local done, t = 0, system.gettime()
    repeat
      for _, q in ipairs(queries) do col:search(q, opts) end
      done = done + #queries
    until system.gettime() - t >= 0.3
    r.ef[ef] = { recall = recall(res, truth), qps = done / (system.gettime() - t) }
  end
  db:close()
  return r
end

-- One dataset's build and sweep in a child process (this script with
-- --child): prints the same key=value lines as the peer.
local function run_ours_child(ds_index, threads)
  local script = debug.getinfo(1, "S").source:match("^@(.*)$")
  local cmd = string.format("lua5.4 %s %s %s --child %d %d", shell_quote(script),
                            shell_quote(bindir), shell_quote(data), ds_index, threads)
  local p = assert(io.popen(cmd))
  local r = { ef = {} }
  for line in p:lines() do
    local t = {}
    for k, v in line:gmatch("(%S+)=(%S+)") do t[k] = tonumber(v) or v end
    if t.ef then r.ef[t.ef] = t elseif t.build_s then r.build = t end
  end
  assert(p:close(), "child failed: " .. cmd)
  r.build_s = r.build.build_s
  r.rss_per_vec = r.build.rss_per_vec
  r.index_per_vec = r.build.index_per_vec
  return r
end

-- Highest QPS among the ef values whose recall reaches 0.95 (and that ef).
local function best_qps(ef_table)
  local best, best_ef
  for _, ef in ipairs(EFS) do
    local e = ef_table[ef]
    if e and e.recall >= 0.95 and (not best or e.qps > best) then best, best_ef = e.qps, ef end
  end
  return best, best_ef
end

local datasets = {
  { name = "siftsmall (10k x 128, l2)", metric = "l2", nq = 100,
    base = "siftsmall/siftsmall_base.fvecs", query = "siftsmall/siftsmall_query.fvecs",
    gt = "siftsmall/siftsmall_groundtruth.ivecs" },
  { name = "sigmod24 CLIP (10k x 100, l2)", metric = "l2", nq = 1000,
    base = "sigmod2024_yfcc_clip100/sigmod24_base.fvecs",
    query = "sigmod2024_yfcc_clip100/sigmod24_query.fvecs",
    gt = "sigmod2024_yfcc_clip100/sigmod24_groundtruth_l2.ivecs" },
  { name = "cohere (900 x 1024, cosine)", metric = "cosine", nq = 100,
    base = "cohere_wiki_int8_1k/cohere_base.fvecs",
    query = "cohere_wiki_int8_1k/cohere_query.fvecs",
    gt = "cohere_wiki_int8_1k/cohere_groundtruth_cos.ivecs" },
}

local function load_dataset(ds)
  local base, dim = read_fvecs(data .. "/" .. ds.base)
  ds.dim = dim
  return base, read_fvecs(data .. "/" .. ds.query, ds.nq), read_ivecs(data .. "/" .. ds.gt, ds.nq)
end

if arg[3] == "--child" then
  local ds = datasets[tonumber(arg[4])]
  local base, queries, truth = load_dataset(ds)
  local r = run_ours(ds, base, queries, truth, tonumber(arg[5]))
  print(string.format("build_s=%.4f rss_per_vec=%.1f index_per_vec=%.1f", r.build_s,
                      r.rss_per_vec, r.index_per_vec))
  for ef, e in pairs(r.ef) do
    print(string.format("ef=%d recall=%.4f qps=%.0f", ef, e.recall, e.qps))
  end
  os.exit(0)
end

out("## Vectors: llmspell.storage (Lua API, memory backend) vs hnswlib 0.6.2")
out("%s, %d runs, medians; M=%d, ef_construction=%d", os.date("!%Y-%m-%d"), RUNS, M, EFC)
out("")
out("| dataset | QPS@R>=0.95 ours (ef) | hnswlib (ef) | ratio | build 1t ours / hnswlib | "
    .. "ratio | 2t speedup ours / hnswlib | bytes/vector ours index, RSS / hnswlib | ratio |")
out("|---|---|---|---|---|---|---|---|---|")
for di, ds in ipairs(datasets) do
  local base = load_dataset(ds)
  local acc = { oq = {}, pq = {}, ob1 = {}, pb1 = {}, ob2 = {}, pb2 = {}, om = {}, orss = {},
                pm = {}, oef = {}, pef = {}, orec = {}, prec = {} }
  for _ = 1, RUNS do
    local o1 = run_ours_child(di, 1)
    local p1 = run_peer(ds, 1, ds.nq)
    local o2 = run_ours_child(di, 2)
    local p2 = run_peer(ds, 2, ds.nq)
    local oq, oef = best_qps(o1.ef)
    local pq, pef = best_qps(p1.ef)
    acc.oq[#acc.oq + 1] = oq or 0
    acc.pq[#acc.pq + 1] = pq or 0
    acc.oef[#acc.oef + 1] = oef or 0
    acc.pef[#acc.pef + 1] = pef or 0
    acc.ob1[#acc.ob1 + 1] = o1.build_s
    acc.pb1[#acc.pb1 + 1] = p1.build.build_s
    acc.ob2[#acc.ob2 + 1] = o2.build_s
    acc.pb2[#acc.pb2 + 1] = p2.build.build_s
    acc.om[#acc.om + 1] = o1.index_per_vec
    acc.orss[#acc.orss + 1] = o1.rss_per_vec
    acc.pm[#acc.pm + 1] = (p1.build.rss_after_kb - p1.build.rss_before_kb) * 1024 / #base
  end
  local oq, pq = median(acc.oq), median(acc.pq)
  local ob1, pb1, ob2, pb2 = median(acc.ob1), median(acc.pb1), median(acc.ob2), median(acc.pb2)
  local om, orss, pm = median(acc.om), median(acc.orss), median(acc.pm)
  out("| %s | %.0f (%d) | %.0f (%d) | %.2fx | %.3f s / %.3f s | %.2fx | %.2fx / %.2fx | "
      .. "%.0f, %.0f / %.0f | %.2fx |", ds.name, oq, median(acc.oef), pq, median(acc.pef),
      pq > 0 and oq / pq or 0, ob1, pb1, pb1 / ob1, ob1 / ob2, pb1 / pb2, om, orss, pm,
      om / pm)
end
out("")
out("QPS ratio = ours / hnswlib (>1: we answer more queries per second); build ratio ="
    .. " hnswlib time / ours (>1: we build faster). Each build runs in a fresh process.")
out("Our bytes/vector: the index's own accounting (graph, vectors, ids, metadata), then the")
out("process's RSS growth across the build, which on the memory backend also holds the")
out("stored rows (a second copy of each vector). The memory ratio compares the former.")

------------------------------------------------------------- filtered search
do
  local base, dim = read_fvecs(data .. "/siftsmall/siftsmall_base.fvecs")
  local queries = read_fvecs(data .. "/siftsmall/siftsmall_query.fvecs")
  local db = storage.open("memory")
  local col = db:create_collection("f", { dimension = dim, metric = "l2", m = M,
                                          ef_construction = EFC })
  local batch = {}
  for i, v in ipairs(base) do
    batch[i] = { id = tostring(i - 1), vector = v, metadata = { bucket = (i - 1) % 100 } }
  end
  col:add(batch)
  out("")
  out("## Filtered search (siftsmall, filter bucket < N on a uniform 0..99 field, k=10, ef=100)")
  out("")
  out("| selectivity | strategy | recall@10 | QPS | exact-scan QPS (same filter) |")
  out("|---|---|---|---|---|")
  for _, limit in ipairs { 1, 10, 50 } do
    local f = { bucket = { ["$lt"] = limit } }
    local truth = {}
    for i, q in ipairs(queries) do
      local ids = {}
      for j, r in ipairs(col:search(q, { k = 10, filter = f, strategy = "exact",
                                         include_metadata = false })) do ids[j] = r.id end
      truth[i] = ids
    end
    local function run(strategy)
      local qps, rec = {}, {}
      for _ = 1, RUNS do
        local hits, t = 0, system.gettime()
        local res = {}
        for i, q in ipairs(queries) do
          res[i] = col:search(q, { k = 10, ef_search = 100, filter = f, strategy = strategy,
                                   include_metadata = false })
        end
        qps[#qps + 1] = #queries / (system.gettime() - t)
        for i, r in ipairs(res) do
          local want = {}
          for _, id in ipairs(truth[i]) do want[id] = true end
          for _, h in ipairs(r) do if want[h.id] then hits = hits + 1 end end
        end
        rec[#rec + 1] = hits / (10 * #queries)
      end
      return median(rec), median(qps)
    end
    local _, exact_qps = run("exact")
    for _, strategy in ipairs { "auto", "graph" } do
      local r, q = run(strategy)
      out("| %d%% | %s | %.3f | %.0f | %.0f |", limit, strategy, r, q, exact_qps)
    end
  end
  db:close()
end

------------------------------------------------------------------ scale run
-- A seeded Gaussian mixture whose components have low-rank covariance (rank
-- 8 plus a little isotropic noise), so the data has the low intrinsic
-- dimension of real embeddings; with full-dimensional isotropic noise every
-- point of a cluster is nearly equidistant from a query and no ANN index
-- can rank them. Queries come from the same mixture; ground truth by exact
-- scan on a sample of queries.
local RANK, CLUSTERS = 8, 32
local function gaussian_mixture(n, dim, seed, model)
  local s = seed
  local function uniform()
    s = (s * 6364136223846793005 + 1442695040888963407) & 0x7FFFFFFFFFFFFFFF
    return ((s >> 11) + 1) / 4503599627370497
  end
  local function normal()
    return math.sqrt(-2 * math.log(uniform())) * math.cos(2 * math.pi * uniform())
  end
  if not model then
    model = {}
    for c = 1, CLUSTERS do
      local mu, basis = {}, {}
      for j = 1, dim do mu[j] = normal() * 2 end
      for r = 1, RANK do
        local b = {}
        for j = 1, dim do b[j] = normal() / math.sqrt(dim) * 3 end
        basis[r] = b
      end
      model[c] = { mu = mu, basis = basis }
    end
  end
  local fmt = "<" .. string.rep("f", dim)
  local out_, v, z = {}, {}, {}
  for i = 1, n do
    local comp = model[(i * 7919 + seed) % CLUSTERS + 1]
    for r = 1, RANK do z[r] = normal() end
    local mu, basis = comp.mu, comp.basis
    for j = 1, dim do
      local x = mu[j] + 0.05 * normal()
      for r = 1, RANK do x = x + basis[r][j] * z[r] end
      v[j] = x
    end
    out_[i] = string.pack(fmt, table.unpack(v, 1, dim))
  end
  return out_, model
end

local sizes = { 100000 }
if SCALE == "1m" then sizes[#sizes + 1] = 1000000 end
out("")
out("## Scale (Gaussian mixture of %d rank-%d components, l2, M=%d, ef_construction=%d,"
    .. " 2 threads; 100 queries, truth by exact scan)", CLUSTERS, RANK, M, EFC)
out("")
out("| vectors | dim | build s | vectors/s | RSS MB | ef | recall@10 | p50 ms | p99 ms |")
out("|---|---|---|---|---|---|---|---|---|")
for _, n in ipairs(sizes) do
  for _, dim in ipairs { 128, 768 } do
    local vecs, model = gaussian_mixture(n, dim, 42 + dim)
    local queries = gaussian_mixture(100, dim, 4243 + dim, model)
    collectgarbage()
    local db = storage.open("memory")
    local col = db:create_collection("scale", { dimension = dim, metric = "l2", m = M,
                                                ef_construction = EFC })
    local rss0 = rss_kb()
    local t0 = system.gettime()
    local chunk = 50000
    for start = 1, n, chunk do
      local batch = {}
      for i = start, math.min(n, start + chunk - 1) do
        batch[#batch + 1] = { id = tostring(i), vector = vecs[i] }
      end
      col:add(batch, { threads = 2 })
    end
    local build = system.gettime() - t0
    local rss = (rss_kb() - rss0) / 1024
    vecs = nil
    collectgarbage()
    local truth = {}
    for i, q in ipairs(queries) do
      local want = {}
      for _, r in ipairs(col:search(q, { k = 10, strategy = "exact",
                                         include_metadata = false })) do want[r.id] = true end
      truth[i] = want
    end
    for _, ef in ipairs { 64, 128, 256 } do
      local lat, hits = {}, 0
      for i, q in ipairs(queries) do
        local t = system.gettime()
        local res = col:search(q, { k = 10, ef_search = ef, include_metadata = false })
        lat[i] = (system.gettime() - t) * 1000
        for _, r in ipairs(res) do if truth[i][r.id] then hits = hits + 1 end end
      end
      table.sort(lat)
      out("| %d | %d | %.1f | %.0f | %.0f | %d | %.3f | %.2f | %.2f |", n, dim, build,
          n / build, rss, ef, hits / (10 * #queries), lat[50], lat[99])
    end
    db:close()
  end
end

print(table.concat(lines, "\n"))
