-- bench/components.lua: the storage components (issues 10, 11, 12) through the
-- Lua API, against what a user would write by hand on the same store in the
-- same run: artifacts against `db:set`/`db:get` of the same bytes, sessions
-- and agent states against the same data as JSON in KV (lua-cjson) with a
-- Lua-side index key per record, pattern records against a KV counter read
-- and written in a transaction, hook history against plain SQL (LuaSQL) on
-- the same engine.
--
-- Run with `make bench-components` (it starts a throwaway PostgreSQL).
-- Each figure is the median of REPS runs; a ratio is ours / the peer's
-- rate, so > 1 means we are faster. Quote medians and ratios: machines
-- here are shared and noisy.
local storage = require "llmspell.storage"
local system = require "system"
local cjson = require "cjson"

local REPS = tonumber(os.getenv("BENCH_REPS") or "") or 5
local PG_URL = os.getenv("LLMSPELL_TEST_PG_URL")
local N_REC = tonumber(os.getenv("BENCH_RECORDS") or "") or 2000

local function median(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  local n = #c
  return n % 2 == 1 and c[(n + 1) / 2] or (c[n / 2] + c[n / 2 + 1]) / 2
end

local function now() return system.gettime() end

local rows = {}

-- Runs ours and the peer alternately REPS times; each returns a rate.
local function pair(ours, peer)
  local a, b, r = {}, {}, {}
  for i = 1, REPS do
    collectgarbage()
    a[i] = ours(i)
    collectgarbage()
    b[i] = peer(i)
    r[i] = a[i] / b[i]
  end
  return median(a), median(b), median(r)
end

local function report(backend, op, unit, peer_name, ours, peer, note)
  local a, b, r = pair(ours, peer)
  rows[#rows + 1] = string.format("| %-8s | %-30s | %11.1f %-5s | %-22s | %11.1f | %6.2fx | %s |",
                                  backend, op, a, unit, peer_name, b, r, note or "")
  io.stderr:write(rows[#rows], "\n")
  return a, b
end

-- 16 MB of pseudo-random bytes (xorshift64), made once: contents that do
-- not compress, as most uploaded files (images, archives, PDFs) do not, so
-- neither side gains from the artifacts' LZ4.
local POOL
do
  local parts, x = {}, 88172645463325252
  for i = 1, (16 * 1024 * 1024) // 8 do
    x = x ~ (x << 13)
    x = x ~ (x >> 7)
    x = x ~ (x << 17)
    parts[i] = string.pack("<i8", x)
  end
  POOL = table.concat(parts)
end

-- Distinct contents of `size` bytes: a run tag and a counter up front, so
-- no two puts share a hash.
local function content(size, tag, i)
  local head = string.format("%s:%09d:", tag, i)
  return head .. POOL:sub(1, size - #head)
end

local function bench_artifacts(name, db)
  local sessions, arts = db:sessions(), db:artifacts()
  local run = 0
  for _, size in ipairs { 1024, 64 * 1024, 16 * 1024 * 1024 } do
    local n = size >= 1 << 20 and 4 or math.max(20, math.floor(8 * 1024 * 1024 / size))
    if size <= 1024 then n = N_REC end
    local label = size >= 1 << 20 and string.format("%d MB", size >> 20)
                  or string.format("%d KB", size >> 10)
    local ids, keys = {}, {}
    local mb = n * size / (1 << 20)
    report(name, "artifact put " .. label, "MB/s", "db:set same bytes",
      function()
        run = run + 1
        local sid = "bench-s" .. run
        sessions:create(sid)
        local t0 = now()
        for i = 1, n do ids[i] = arts:put(sid, content(size, "a" .. run, i)).artifact_id end
        return mb / (now() - t0)
      end,
      function()
        run = run + 1
        local t0 = now()
        for i = 1, n do
          keys[i] = string.format("blob:%d:%d", run, i)
          db:set(keys[i], content(size, "k" .. run, i))
        end
        return mb / (now() - t0)
      end)
    report(name, "artifact get " .. label, "MB/s", "db:get same bytes",
      function()
        local t0 = now()
        for i = 1, n do assert(#arts:get(ids[i]) == size) end
        return mb / (now() - t0)
      end,
      function()
        local t0 = now()
        for i = 1, n do assert(#db:get(keys[i]) == size) end
        return mb / (now() - t0)
      end)
  end
  -- A duplicate put: the content is there already, so it must cost a hash
  -- and a reference count, not a write of 16 MB.
  local size = 16 * 1024 * 1024
  local blob = content(size, "dup", 1)
  sessions:create("bench-dup")
  local first, dup = {}, {}
  for i = 1, REPS do
    local fresh = content(size, "fresh" .. i, i)
    local t0 = now()
    arts:put("bench-dup", fresh)
    first[i] = now() - t0
    arts:put("bench-dup", blob)
    t0 = now()
    local r = arts:put("bench-dup", blob)
    dup[i] = now() - t0
    assert(r.deduplicated, "the duplicate put was not deduplicated")
  end
  local f, d = median(first), median(dup)
  rows[#rows + 1] = string.format("| %-8s | %-30s | %11.1f %-5s | %-22s | %11.1f | %6.2fx | %s |",
                                  name, "duplicate put 16 MB", d * 1e3, "ms", "first put (ms)",
                                  f * 1e3, f / d, "speedup of a duplicate over a first put")
  io.stderr:write(rows[#rows], "\n")
end

local function bench_records(name, db)
  local sessions, states = db:sessions(), db:agent_states()
  local run = 0
  local data = { user = "alice", turns = 12, tags = { "a", "b" }, model = "gpt", score = 0.5 }
  -- sessions: create, then get, against JSON in KV plus an index key
  -- (what list-by-status needs) written in one batch.
  local sids = {}
  local c_ours, c_peer = report(name, "session create", "op/s", "KV JSON + index key",
    function()
      run = run + 1
      local t0 = now()
      for i = 1, N_REC do
        sids[i] = string.format("s%d-%d", run, i)
        sessions:create(sids[i], { data = data })
      end
      return N_REC / (now() - t0)
    end,
    function()
      run = run + 1
      local t0 = now()
      for i = 1, N_REC do
        local id = string.format("p%d-%d", run, i)
        local rec = { id = id, status = "active", data = data, created_at = os.time(),
                      updated_at = os.time(), last_accessed_at = os.time(), artifact_count = 0 }
        db:set_batch { ["session:" .. id] = cjson.encode(rec),
                       ["session_by_status:active:" .. id] = "" }
      end
      return N_REC / (now() - t0)
    end)
  local g_ours, g_peer = report(name, "session get", "op/s", "KV get + JSON decode",
    function()
      local t0 = now()
      for i = 1, N_REC do assert(sessions:get(sids[i])) end
      return N_REC / (now() - t0)
    end,
    function()
      local t0 = now()
      for i = 1, N_REC do
        local s = db:get(string.format("session:p%d-%d", run, i))
        assert(cjson.decode(s))
      end
      return N_REC / (now() - t0)
    end)
  local aids = {}
  local s_ours, s_peer = report(name, "agent state save", "op/s", "KV JSON + index key",
    function()
      run = run + 1
      local t0 = now()
      for i = 1, N_REC do
        aids[i] = string.format("agent%d-%d", run, i)
        states:save(aids[i], data, { agent_type = "bench" })
      end
      return N_REC / (now() - t0)
    end,
    function()
      run = run + 1
      local t0 = now()
      for i = 1, N_REC do
        local id = string.format("pa%d-%d", run, i)
        db:set_batch { ["agent:" .. id] = cjson.encode({ state = data, agent_type = "bench",
                                                         data_version = 1 }),
                       ["agent_by_type:bench:" .. id] = "" }
      end
      return N_REC / (now() - t0)
    end)
  local l_ours, l_peer = report(name, "agent state load", "op/s", "KV get + JSON decode",
    function()
      local t0 = now()
      for i = 1, N_REC do assert(states:load(aids[i])) end
      return N_REC / (now() - t0)
    end,
    function()
      local t0 = now()
      for i = 1, N_REC do
        assert(cjson.decode(db:get(string.format("agent:pa%d-%d", run, i))))
      end
      return N_REC / (now() - t0)
    end,
    "checksum verified on every load")
  return { c_ours, c_peer, g_ours, g_peer, s_ours, s_peer, l_ours, l_peer }
end

-- Procedural memory: p:record against the hand-written counter in KV, a
-- db:get + tonumber + db:set inside db:transaction (what keeps a count
-- right with other writers). Both count the same N_REC sightings spread
-- over 100 patterns, so most calls increment an existing row.
local function bench_patterns(name, db)
  local p = db:patterns()
  local run = 0
  report(name, "pattern record", "op/s", "KV get+set in a txn",
    function()
      run = run + 1
      local scope = "r" .. run
      local t0 = now()
      for i = 1, N_REC do p:record(scope, "step:" .. (i % 100), "next") end
      return N_REC / (now() - t0)
    end,
    function()
      local prefix = "pattern:r" .. run .. ":step:"
      local t0 = now()
      for i = 1, N_REC do
        local k = prefix .. (i % 100) .. ":next"
        db:transaction(function()
          db:set(k, tostring((tonumber(db:get(k)) or 0) + 1))
        end)
      end
      return N_REC / (now() - t0)
    end,
    "one atomic UPSERT")
end

-- Hook history: h:record and h:by_hook against the same rows written and
-- read with plain SQL through LuaSQL on the same engine (an in-memory
-- SQLite for memory, whose components live in one; a SQLite file in the
-- same directory; a plain table in another PostgreSQL schema), with the
-- same columns and indexes. The peer stores the context as it comes (no
-- compression) and, like ours, encodes and decodes the JSON columns with
-- a JSON library. A context is a 2 KB serialized hook context.
local HOOK_CTX = cjson.encode {
  operation = "agent.execute", component = { type = "Agent", id = "planner-7" },
  input = string.rep("the user asked to summarise the quarterly report; ", 30),
  state = { step = 3, retries = 0, budget = { tokens = 4096, used = 1210 } },
}
local PEER_DDL = [[
CREATE TABLE hook_history (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, execution_id TEXT NOT NULL, hook_id TEXT NOT NULL,
  hook_type TEXT NOT NULL, correlation_id TEXT NOT NULL, hook_context %s NOT NULL,
  result_data %s, timestamp %s NOT NULL, duration_ms BIGINT NOT NULL,
  triggering_component TEXT, component_id TEXT, modified_operation BOOLEAN NOT NULL,
  tags %s NOT NULL, retention_priority INTEGER NOT NULL, context_size BIGINT NOT NULL,
  contains_sensitive_data BOOLEAN NOT NULL, metadata %s NOT NULL, created_at %s NOT NULL,
  PRIMARY KEY (tenant_id, execution_id));
CREATE INDEX hh_corr ON hook_history (tenant_id, correlation_id, timestamp DESC, execution_id DESC);
CREATE INDEX hh_hook ON hook_history (tenant_id, hook_id, timestamp DESC, execution_id DESC);
CREATE INDEX hh_type ON hook_history (tenant_id, hook_type, timestamp DESC, execution_id DESC);
CREATE INDEX hh_ret ON hook_history (tenant_id, retention_priority, timestamp)]]

-- A LuaSQL connection with the peer's table: kind "sqlite" (path, or
-- ":memory:") or "postgres" (the table in schema bench_peer_hooks, first
-- on the search path).
local function hook_peer(kind, where)
  local c, q
  if kind == "postgres" then
    local env = require("luasql.postgres").postgres()
    c = assert(env:connect(where))
    assert(c:execute("DROP SCHEMA IF EXISTS bench_peer_hooks CASCADE"))
    assert(c:execute("CREATE SCHEMA bench_peer_hooks"))
    assert(c:execute("SET search_path = bench_peer_hooks"))
    q = { ctx = "bytea", json = "jsonb", time = "timestamptz" }
  else
    local env = require("luasql.sqlite3").sqlite3()
    c = assert(env:connect(where))
    for _, pragma in ipairs { "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL" } do
      local cur = c:execute(pragma)
      if type(cur) == "userdata" then cur:close() end
    end
    q = { ctx = "BLOB", json = "TEXT", time = "INTEGER" }
  end
  local ddl = PEER_DDL:format(q.ctx, q.json, q.time, q.json, q.json, q.time)
  for stmt in ddl:gmatch("[^;]+") do assert(c:execute(stmt)) end
  return { conn = c, kind = kind, close = function()
    if kind == "postgres" then c:execute("DROP SCHEMA bench_peer_hooks CASCADE") end
    c:close()
  end }
end

local function bench_hooks(name, db, peer)
  local h, c = db:hook_history(), peer.conn
  local pgk = peer.kind == "postgres"
  local run, HOOKS = 0, 20
  local result, tags, meta = { Continue = true }, { "audit", "agent" }, { source = "bench" }
  local function lit(s) return "'" .. c:escape(s) .. "'" end
  local ctx_lit = pgk and ("convert_to(" .. lit(HOOK_CTX) .. ", 'UTF8')") or lit(HOOK_CTX)
  report(name, "hook record (2 KB context)", "op/s", "SQL INSERT (LuaSQL)",
    function()
      run = run + 1
      local t0 = now()
      for i = 1, N_REC do
        h:record { execution_id = string.format("o%d-%d", run, i), hook_id = "hook" .. i % HOOKS,
                   hook_type = "pre_agent", correlation_id = "corr" .. i % 97, context = HOOK_CTX,
                   result = result, timestamp = 1700000000 + i, duration_ms = i % 50,
                   triggering_component = "Agent", component_id = "planner-7", tags = tags,
                   retention_priority = i % 3, metadata = meta }
      end
      return N_REC / (now() - t0)
    end,
    function()
      run = run + 1
      local t0 = now()
      for i = 1, N_REC do
        local ts = pgk and ("to_timestamp(" .. (1700000000 + i) .. ")")
                   or string.format("%.0f", (1700000000 + i) * 1e6)
        assert(c:execute(string.format(
          "INSERT INTO hook_history VALUES ('bench', %s, %s, %s, 'pre_agent', %s, %s, %s, %s, %d,"
          .. " 'Agent', 'planner-7', false, %s, %d, %d, false, %s, %s)",
          lit("id" .. run .. "-" .. i), lit(string.format("p%d-%d", run, i)),
          lit("hook" .. i % HOOKS), lit("corr" .. i % 97), ctx_lit, lit(cjson.encode(result)),
          ts, i % 50, lit(cjson.encode(tags)), i % 3, #HOOK_CTX,
          lit(cjson.encode(meta)), pgk and "now()" or string.format("%.0f", os.time() * 1e6))))
      end
      return N_REC / (now() - t0)
    end,
    "context stored lz4-compressed; peer stores it raw")
  -- by_hook: the newest 20 of one hook's rows (the table holds REPS x
  -- N_REC rows of each side), context decompressed and JSON decoded
  local K = 200
  local want = math.min(20, REPS * N_REC // HOOKS)
  local a, b, r = pair(
    function()
      local t0 = now()
      for i = 1, K do assert(#h:by_hook("hook" .. i % HOOKS, { limit = 20 }) == want) end
      return K / (now() - t0)
    end,
    function()
      local t0 = now()
      for i = 1, K do
        local cur = assert(c:execute("SELECT * FROM hook_history WHERE tenant_id = 'bench'"
          .. " AND hook_id = " .. lit("hook" .. i % HOOKS)
          .. " ORDER BY timestamp DESC, execution_id DESC LIMIT 20"))
        local n, row = 0, cur:fetch({}, "a")
        while row do
          n = n + 1
          cjson.decode(row.result_data)
          cjson.decode(row.tags)
          cjson.decode(row.metadata)
          row = cur:fetch(row, "a")
        end
        cur:close()
        assert(n == want)
      end
      return K / (now() - t0)
    end)
  rows[#rows + 1] = string.format("| %-8s | %-30s | %11.1f %-5s | %-22s | %11.1f | %6.2fx | %s |",
                                  name, "hook by_hook, 20 newest", 1e6 / a, "us", "SQL SELECT (LuaSQL)",
                                  1e6 / b, r, "latency per call; ratio = peer / ours")
  io.stderr:write(rows[#rows], "\n")
end

local function on(name, open, peer)
  local db = open()
  if peer then
    bench_hooks(name, db, peer)
    peer.close()
  end
  bench_patterns(name, db)
  bench_artifacts(name, db)
  local r = bench_records(name, db)
  db:close()
  return r
end

io.stderr:write("components bench: REPS=", REPS, ", records=", N_REC, "\n")
local ONLY = os.getenv("BENCH_ONLY") -- "hooks": the hook history rows alone
if ONLY == "hooks" then
  bench_patterns = function() end
  bench_artifacts = function() end
  bench_records = function() return {} end
end
on("memory", function() return storage.open("memory") end, hook_peer("sqlite", ":memory:"))
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
on("sqlite", function() return storage.open("sqlite:" .. dir .. "/bench.db") end,
   hook_peer("sqlite", dir .. "/peer.db"))
local pg
if PG_URL then
  pg = on("postgres", function()
    return storage.open { url = PG_URL, tenant = "bench-" .. os.time() }
  end, hook_peer("postgres", PG_URL))
end
os.execute("rm -rf " .. dir)

print("| backend  | operation                      |       ours        | peer                   |        peer |  ratio | note |")
print("|----------|--------------------------------|-------------------|------------------------|-------------|--------|------|")
for _, r in ipairs(rows) do print(r) end
if pg and pg[1] then
  -- the seeds' figures for PostgreSQL (local): get ~500 us, set ~1 ms
  print(string.format("\nPostgreSQL vs the seeds' figures: session get %.0f us (seeds ~500 us), "
                      .. "session create %.0f us (seeds ~1000 us)", 1e6 / pg[3], 1e6 / pg[1]))
end
