-- bench/components.lua: the storage components (issues 10, 11, 12) through the
-- Lua API, against what a user would write by hand on the same store in the
-- same run: artifacts against `db:set`/`db:get` of the same bytes, sessions
-- and agent states against the same data as JSON in KV (lua-cjson) with a
-- Lua-side index key per record, pattern records against a KV counter read
-- and written in a transaction, hook history against plain SQL (LuaSQL) on
-- the same engine, the event log against LuaSQL inserting the same rows.
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


-- The event log (issue 12). Append rates with batches of 1, 100 and
-- 10,000; batches of 1,000 against LuaSQL (Debian's lua-sql-sqlite3 /
-- lua-sql-postgres, as bench/kv.lua) inserting the same rows, one INSERT
-- text per row, 1,000 per transaction, into a plain table with the same
-- indexes; then queries over BENCH_EVENTS events spread over 24 months
-- (p50 / p99, ms), on PostgreSQL also as raw SQL through LuaSQL against
-- the partitioned table and a plain copy of it; then cleanup_before of
-- the first 12 months.
local N_EVENTS = tonumber(os.getenv("BENCH_EVENTS") or "") or 200000
local luasql_ok, luasql_sqlite3 = pcall(require, "luasql.sqlite3")
local _, luasql_postgres = pcall(require, "luasql.postgres")
if not luasql_ok then error("lua-sql-sqlite3 / lua-sql-postgres are needed for the event peers") end
local EV_T0 = 1672531200 -- 2023-01-01T00:00:00Z
local EV_SPAN = 730 * 86400 -- 24 months (730 days)
local EV_TYPES = { "agent.start", "agent.step", "agent.stop", "tool.call", "tool.result",
                   "llm.request", "llm.reply", "hook.run" }
local ev_run = 0

-- n events: 8 types round robin, a correlation id per 10, a payload.
local function event_rows(n)
  local out = {}
  ev_run = ev_run + 1
  for i = 0, n - 1 do
    out[i + 1] = { type = EV_TYPES[i % 8 + 1], correlation_id = "corr-" .. (i // 10),
                   timestamp = 1700000000 + i / 1000, data = { i = i, text = "event number " .. i } }
  end
  return out
end

local function report_solo(backend, op, unit, f, note)
  local a = {}
  for i = 1, REPS do
    collectgarbage()
    a[i] = f(i)
  end
  rows[#rows + 1] = string.format("| %-8s | %-30s | %11.1f %-5s | %-22s | %11s | %7s | %s |",
                                  backend, op, median(a), unit, "-", "-", "-", note or "")
  io.stderr:write(rows[#rows], "\n")
end

-- A LuaSQL connection for target ({ kind = "sqlite", path = } or
-- { kind = "pg" }) with the peer table made (the event log's columns and
-- indexes, no partitions), and the function that inserts n rows (the
-- rows event_rows makes), `per_tx` per transaction; it returns rows/s.
local function luasql_peer(target)
  local env, conn, ts
  if target.kind == "sqlite" then
    env = luasql_sqlite3.sqlite3()
    conn = assert(env:connect(target.path))
    conn:execute("PRAGMA journal_mode=WAL")
    conn:execute("PRAGMA synchronous=NORMAL")
    assert(conn:execute("CREATE TABLE IF NOT EXISTS peer_events (tenant_id TEXT NOT NULL,"
      .. " sequence INTEGER NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL,"
      .. " correlation_id TEXT, timestamp INTEGER NOT NULL, language TEXT NOT NULL,"
      .. " payload TEXT NOT NULL, PRIMARY KEY (tenant_id, sequence)) WITHOUT ROWID"))
    ts = function(t) return string.format("%d", math.floor(t * 1e6)) end
  else
    env = luasql_postgres.postgres()
    conn = assert(env:connect(PG_URL))
    conn:execute("SET client_min_messages = warning")
    assert(conn:execute("CREATE TABLE IF NOT EXISTS peer_events (tenant_id text NOT NULL,"
      .. " sequence bigint NOT NULL, event_id text NOT NULL, event_type text COLLATE \"C\""
      .. " NOT NULL, correlation_id text, timestamp timestamptz NOT NULL, language text NOT NULL,"
      .. " payload jsonb NOT NULL, PRIMARY KEY (tenant_id, sequence))"))
    ts = function(t) return string.format("to_timestamp(%.6f)", t) end
  end
  for _, ix in ipairs { "timestamp", "correlation_id", "event_type, timestamp" } do
    assert(conn:execute("CREATE INDEX IF NOT EXISTS peer_events_" .. ix:gsub("%W+", "_")
                        .. " ON peer_events (tenant_id, " .. ix .. ")"))
  end
  local seq = 0
  local function insert(evs, per_tx)
    local t0 = now()
    for i, ev in ipairs(evs) do
      if i % per_tx == 1 or per_tx == 1 then conn:execute("BEGIN") end
      seq = seq + 1
      assert(conn:execute(string.format("INSERT INTO peer_events VALUES ('peer', %d, 'ev-%d',"
        .. " '%s', '%s', %s, 'lua', '{\"i\":%d,\"text\":\"%s\"}')", seq, seq, ev.type,
        ev.correlation_id, ts(ev.timestamp), ev.data.i, ev.data.text)))
      if i % per_tx == 0 or i == #evs then conn:execute("COMMIT") end
    end
    return #evs / (now() - t0)
  end
  local function close()
    conn:execute("DROP TABLE peer_events")
    conn:close()
    env:close()
  end
  return insert, close, conn
end

-- target: where the LuaSQL peer writes ({ kind = "sqlite", path = } or
-- { kind = "pg" }), or nil (memory).
local function bench_event_append(name, db, target)
  local e = db:events()
  for _, b in ipairs { { 1, 2000 }, { 100, 20000 }, { 10000, 50000 } } do
    local size, n = b[1], b[2]
    local evs = event_rows(n)
    report_solo(name, "event append, batches of " .. size, "ev/s", function()
      local t0 = now()
      if size == 1 then
        for i = 1, n do e:append(evs[i]) end
      else
        for i = 1, n, size do e:append_batch(table.move(evs, i, i + size - 1, 1, {})) end
      end
      return n / (now() - t0)
    end, string.format("seeds: 10K ev/s"))
  end
  -- 20 batches of 1,000 (one transaction each) per run, for both
  local evs = event_rows(20000)
  local ours = function()
    local t0 = now()
    for i = 1, 20000, 1000 do e:append_batch(table.move(evs, i, i + 999, 1, {})) end
    return 20000 / (now() - t0)
  end
  if target then
    local insert, close = luasql_peer(target)
    report(name, "event append_batch of 1000", "ev/s", "LuaSQL 1000 INSERTs/tx", ours,
      function() return insert(evs, 1000) end, "seeds' goal x10: 100K ev/s")
    close()
  else
    report_solo(name, "event append_batch of 1000", "ev/s", ours, "no peer for memory")
  end
  e:cleanup_before(3e11)
end

local function pct(t, p)
  table.sort(t)
  return t[math.max(1, math.ceil(#t * p))]
end

-- K runs of q(i) -> p50, p99 in ms.
local function latencies(k, q)
  local t = {}
  for i = 1, k do
    local t0 = now()
    q(i)
    t[i] = (now() - t0) * 1000
  end
  return pct(t, 0.5), pct(t, 0.99)
end

local function row_lat(backend, op, p50, p99, note)
  rows[#rows + 1] = string.format("| %-8s | %-30s | p50 %7.2f ms | p99 %8.2f ms | %s |", backend,
                                  op, p50, p99, note or "")
  io.stderr:write(rows[#rows], "\n")
end

-- N_EVENTS events over 24 months: every 10th correlation id shared by
-- 10 events spread over the whole span; types round robin.
local function fill_events(e)
  local groups = N_EVENTS // 10
  local t0 = now()
  for base = 0, N_EVENTS - 1, 10000 do
    local batch = {}
    for i = base, math.min(base + 10000, N_EVENTS) - 1 do
      batch[#batch + 1] = { type = EV_TYPES[i % 8 + 1], correlation_id = "c" .. (i * 7919 % groups),
                            timestamp = EV_T0 + (i * EV_SPAN) // N_EVENTS,
                            data = { i = i, text = "event number " .. i } }
    end
    e:append_batch(batch)
  end
  return now() - t0
end

local K = 200
local QUERIES = {
  { "by correlation id (10 ev)", function(e, i) return e:query { correlation_id = "c" .. (i * 37 % (N_EVENTS // 10)) } end },
  { "one day's range", function(e, i)
      local d = EV_T0 + (i * 13 % 730) * 86400
      return e:query { from = d, to = d + 86400 } end },
  { "type glob tool.* in one day", function(e, i)
      local d = EV_T0 + (i * 13 % 730) * 86400
      return e:query { type = "tool.*", from = d, to = d + 86400 } end },
  { "type glob tool.*, newest 100", function(e) return e:query { type = "tool.*", order = "desc", limit = 100 } end },
}

local function bench_event_queries(name, db)
  local e = db:events()
  local secs = fill_events(e)
  row_lat(name, string.format("fill %d events (batches 10K)", N_EVENTS), secs * 1000, 0,
          string.format("%.0f ev/s", N_EVENTS / secs))
  for _, q in ipairs(QUERIES) do
    local n = #q[2](e, 1)
    local p50, p99 = latencies(K, function(i) q[2](e, i) end)
    row_lat(name, q[1], p50, p99, n .. " events returned (run 1)")
  end
end

-- The same queries as raw SQL through LuaSQL (each row fetched into Lua,
-- as a LuaSQL user reads them) on the partitioned table and on a plain
-- copy with the same indexes.
local function bench_partitioning(schema, tenant)
  local env = luasql_postgres.postgres()
  local conn = assert(env:connect(PG_URL))
  local function psql(sql) assert(conn:execute(sql)) end
  psql("SET client_min_messages = warning")
  local t0 = now()
  psql("DROP TABLE IF EXISTS " .. schema .. ".event_log_plain; CREATE TABLE " .. schema
       .. ".event_log_plain AS SELECT * FROM " .. schema .. ".event_log WHERE tenant_id = '"
       .. tenant .. "'; CREATE INDEX ON " .. schema .. ".event_log_plain (tenant_id, timestamp);"
       .. " CREATE INDEX ON " .. schema .. ".event_log_plain (tenant_id, correlation_id);"
       .. " CREATE INDEX ON " .. schema .. ".event_log_plain (tenant_id, event_type, timestamp);"
       .. " CREATE INDEX ON " .. schema .. ".event_log_plain (tenant_id, sequence);"
       .. " ANALYZE " .. schema .. ".event_log_plain; ANALYZE " .. schema .. ".event_log;")
  io.stderr:write(string.format("plain copy built in %.1f s\n", now() - t0))
  local groups = N_EVENTS // 10
  local day = "timestamp >= to_timestamp(" .. EV_T0 .. " + (@I * 13 % 730) * 86400) AND timestamp"
              .. " < to_timestamp(" .. EV_T0 .. " + (@I * 13 % 730 + 1) * 86400)"
  local sql = {
    "SELECT * FROM TBL WHERE tenant_id = '" .. tenant .. "' AND correlation_id = 'c' || (@I * 37 % "
      .. groups .. ") ORDER BY sequence",
    "SELECT * FROM TBL WHERE tenant_id = '" .. tenant .. "' AND " .. day .. " ORDER BY sequence",
    "SELECT * FROM TBL WHERE tenant_id = '" .. tenant .. "' AND event_type >= 'tool.' AND"
      .. " event_type < 'tool/' AND event_type LIKE 'tool.%' AND " .. day .. " ORDER BY sequence",
    "SELECT * FROM TBL WHERE tenant_id = '" .. tenant .. "' AND event_type >= 'tool.' AND"
      .. " event_type < 'tool/' AND event_type LIKE 'tool.%' ORDER BY sequence DESC LIMIT 100",
  }
  local res = {}
  for _, tbl in ipairs { "event_log", "event_log_plain" } do
    res[tbl] = {}
    for j, s in ipairs(sql) do
      s = s:gsub("TBL", schema .. "." .. tbl)
      local p50, p99 = latencies(K, function(i)
        local cur = assert(conn:execute((s:gsub("@I", tostring(i)))))
        local row = cur:fetch({}, "a")
        while row do row = cur:fetch(row, "a") end
        cur:close()
      end)
      res[tbl][j] = { p50 * 1000, p99 * 1000 }
    end
  end
  for i, q in ipairs(QUERIES) do
    local a, b = res.event_log[i], res.event_log_plain[i]
    rows[#rows + 1] = string.format("| postgres | raw SQL: %-21s | partitioned p50 %.2f / p99 %.2f ms"
      .. " | plain p50 %.2f / p99 %.2f ms | %.2fx (p50 plain / partitioned) |", q[1], a[1] / 1000,
      a[2] / 1000, b[1] / 1000, b[2] / 1000, b[1] / a[1])
    io.stderr:write(rows[#rows], "\n")
  end
  psql("DROP TABLE " .. schema .. ".event_log_plain")
  conn:close()
  env:close()
end

local function bench_event_cleanup(name, db)
  local e = db:events()
  local before = e:count()
  local t0 = now()
  local n = e:cleanup_before(EV_T0 + 365 * 86400)
  local secs = now() - t0
  row_lat(name, "cleanup_before 12 of 24 months", secs * 1000, 0,
          string.format("%d of %d events removed, %.0f rows/s", n, before, n / secs))
  e:cleanup_before(3e11)
end

local function bench_events(name, db, target, schema, tenant)
  bench_event_append(name, db, target)
  bench_event_queries(name, db)
  if schema then bench_partitioning(schema, tenant) end
  bench_event_cleanup(name, db)
end

-- BENCH_EVENTS_ONLY=1: only the event log (its 1M run takes a while);
-- BENCH_ONLY=hooks: only the hook history rows.
local EVENTS_ONLY = os.getenv("BENCH_EVENTS_ONLY") == "1"
local ONLY = os.getenv("BENCH_ONLY")

local function on(name, open, peer, ev)
  local db = open()
  local r = {}
  if peer then
    if not EVENTS_ONLY then bench_hooks(name, db, peer) end
    peer.close()
  end
  if not EVENTS_ONLY and ONLY ~= "hooks" then
    bench_patterns(name, db)
    bench_artifacts(name, db)
    r = bench_records(name, db)
  end
  if ONLY ~= "hooks" then
    bench_events(name, db, ev and ev.target, ev and ev.schema, ev and ev.tenant)
  end
  db:close()
  return r
end

io.stderr:write("components bench: REPS=", REPS, ", records=", N_REC, ", events=", N_EVENTS,
                "\n")
-- BENCH_BACKENDS="sqlite,postgres": only those (default all three).
local WANT = os.getenv("BENCH_BACKENDS") or "memory,sqlite,postgres"
local function wanted(name) return WANT:find(name, 1, true) ~= nil end
if wanted("memory") then
  on("memory", function() return storage.open("memory") end, hook_peer("sqlite", ":memory:"))
end
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
if wanted("sqlite") then
  on("sqlite", function() return storage.open("sqlite:" .. dir .. "/bench.db") end,
     hook_peer("sqlite", dir .. "/peer.db"), { target = { kind = "sqlite", path = dir .. "/peer-events.db" } })
end
local pg
if PG_URL and wanted("postgres") then
  local tenant = "bench-" .. os.time()
  pg = on("postgres", function()
    return storage.open { url = PG_URL, tenant = tenant }
  end, hook_peer("postgres", PG_URL), { target = { kind = "pg" }, schema = "llmspell",
                                       tenant = tenant })
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
