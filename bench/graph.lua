-- bench/graph.lua: the knowledge graph (db:graph(), issue 11) on each
-- backend, against what a user would write by hand in the same run.
--
--   * build: add_entity / add_relationship through the API (transactions
--     of 1,000) against plain INSERTs of the same rows through LuaSQL into
--     tables with the same columns and indexes (SQLite, PostgreSQL);
--   * the full graph (BENCH_GRAPH_N entities, 5x as many relationships,
--     seeded) loaded by the importer, records/s;
--   * get_entity and get_entity{at=} on entities with 10 versions;
--   * traverse depth 1, 2, 3 from random entities (average out-degree 5):
--     p50/p99 of one recursive query, against the same walk with one query
--     per hop from Lua (LuaSQL, `source IN (frontier)`, then the entities'
--     rows) on SQLite and PostgreSQL, and one relationships() call per
--     node on memory (its tables are private).
--
-- Run with `make bench-components` (BENCH_GRAPH_N=100000 by default;
-- smaller for a quick look). Ratios are peer time / ours: > 1 means we
-- are faster.
local storage = require "llmspell.storage"
local system = require "system"

local N = tonumber(os.getenv("BENCH_GRAPH_N") or "") or 100000
local PG_URL = os.getenv("LLMSPELL_TEST_PG_URL")
local STARTS = 300 -- traversals per depth
local VERSIONED = math.min(2000, N) -- entities given 10 versions
local OPEN = math.maxinteger
local GRAPH_FILE -- the generated export file, made once

local function now() return system.gettime() end

local function quantile(t, q)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c[math.max(1, math.ceil(q * #c))]
end

-- xorshift64, seeded: the same graph every run.
local function prng(seed)
  local x = seed
  return function(n)
    x = x ~ (x << 13)
    x = x ~ (x >> 7)
    x = x ~ (x << 17)
    return (x >> 1) % n + 1
  end
end

local TYPES = { "knows", "cites", "part_of", "uses" }

-- The graph's relationships: 5N pairs (from, to, type), no self loops.
local function edges(n)
  local rnd, out = prng(88172645463325252), {}
  for i = 1, 5 * n do
    local a, b = rnd(n), rnd(n)
    if a == b then b = a % n + 1 end
    out[i] = { a, b, TYPES[rnd(4)] }
  end
  return out
end

local function eid(i) return string.format("e%07d", i) end

local rows = {}
local function row(backend, op, ours, unit, peer_name, peer, ratio, note)
  rows[#rows + 1] = string.format("| %-8s | %-34s | %12s %-4s | %-26s | %12s | %7s | %s |",
                                  backend, op, ours, unit, peer_name, peer, ratio, note or "")
  io.stderr:write(rows[#rows], "\n")
end
local function f1(x) return x and string.format("%.1f", x) or "-" end
local function ratio(a, b) return (a and b) and string.format("%.2fx", a / b) or "-" end

-- The knowledge_graph section of an export file holding the whole graph
-- (every version open: as rs-llmspell writes infinity), written once.
local function graph_file(path, es)
  local f = assert(io.open(path, "wb"))
  f:write('{"version":"1.0","data":{"knowledge_graph":{"entities":[')
  local t = 1700000000000000
  for i = 1, N do
    f:write(i > 1 and "," or "", string.format(
      '{"entity_id":"%s","entity_type":"node","name":"N%d","properties":{"i":%d},'
      .. '"valid_time_start":0,"valid_time_end":%d,"transaction_time_start":%d,'
      .. '"transaction_time_end":%d,"created_at":%d}', eid(i), i, i, OPEN, t, OPEN, t))
  end
  f:write('],"relationships":[')
  for i, e in ipairs(es) do
    f:write(i > 1 and "," or "", string.format(
      '{"relationship_id":"r%07d","source_entity_id":"%s","target_entity_id":"%s",'
      .. '"relationship_type":"%s","properties":{},"valid_time_start":0,"valid_time_end":%d,'
      .. '"transaction_time_start":%d,"transaction_time_end":%d,"created_at":%d}',
      i, eid(e[1]), eid(e[2]), e[3], OPEN, t, OPEN, t))
  end
  f:write("]}}}")
  f:close()
end

-- A LuaSQL connection on the store's own tables (SQLite file, or the
-- PostgreSQL schema), for the hand-written peers.
local function peer_conn(kind, where)
  if kind == "sqlite" then
    return assert(require("luasql.sqlite3").sqlite3():connect(where))
  end
  local c = assert(require("luasql.postgres").postgres():connect(where))
  assert(c:execute("SET search_path = llmspell"))
  return c
end

local function exec(c, sql)
  local cur = assert(c:execute(sql))
  if type(cur) == "userdata" then cur:close() end
end

-- Build through the API: B entities then 5B relationships, in
-- transactions of 1,000; and the peer's plain INSERTs of the same rows.
local function bench_build(name, db, c, kind, tenant)
  local B = math.min(10000, N)
  local g, es = db:graph(), edges(B)
  local t0 = now()
  for lo = 1, B, 1000 do
    db:transaction(function()
      for i = lo, math.min(B, lo + 999) do
        g:add_entity { id = "b" .. eid(i), type = "node", name = "N" .. i, properties = { i = i } }
      end
    end)
  end
  for lo = 1, #es, 1000 do
    db:transaction(function()
      for i = lo, math.min(#es, lo + 999) do
        local e = es[i]
        g:add_relationship { id = string.format("br%07d", i), from = "b" .. eid(e[1]),
                             to = "b" .. eid(e[2]), type = e[3] }
      end
    end)
  end
  local ours = (B + #es) / (now() - t0)
  if not c then
    row(name, "build (API, 1k per transaction)", f1(ours), "/s", "-", "-", "-",
        B .. " entities + " .. #es .. " relationships")
    return
  end
  local ts = kind == "sqlite" and tostring(1700000000000000) or "now()"
  local inf = kind == "sqlite" and tostring(OPEN) or "'infinity'"
  exec(c, "CREATE TABLE peer_e AS SELECT * FROM entities WHERE 1 = 0")
  exec(c, "CREATE TABLE peer_r AS SELECT * FROM relationships WHERE 1 = 0")
  exec(c, "CREATE UNIQUE INDEX peer_e_key ON peer_e (tenant_id, entity_id,"
          .. " transaction_time_start, valid_time_start)")
  exec(c, "CREATE INDEX peer_r_from ON peer_r (tenant_id, source_entity_id, relationship_type)")
  exec(c, "CREATE INDEX peer_r_to ON peer_r (tenant_id, target_entity_id, relationship_type)")
  t0 = now()
  exec(c, "BEGIN")
  for i = 1, B do
    exec(c, string.format("INSERT INTO peer_e VALUES ('%s', 'b%s', 'node', 'N%d', '{\"i\":%d}',"
                          .. " %s, %s, %s, %s, %s)", tenant, eid(i), i, i, ts, inf, ts, inf, ts))
  end
  for i, e in ipairs(es) do
    exec(c, string.format("INSERT INTO peer_r VALUES ('%s', 'br%07d', 'b%s', 'b%s', '%s', '{}',"
                          .. " %s, %s, %s, %s, %s)", tenant, i, eid(e[1]), eid(e[2]), e[3], ts,
                          inf, ts, inf, ts))
  end
  exec(c, "COMMIT")
  local peer = (B + #es) / (now() - t0)
  exec(c, "DROP TABLE peer_e")
  exec(c, "DROP TABLE peer_r")
  row(name, "build (API, 1k per transaction)", f1(ours), "/s", "SQL INSERT (LuaSQL)", f1(peer),
      ratio(ours, peer), "versioned writes vs plain rows")
end

-- The peer's walk: one query per hop (`source IN (frontier)`), visited
-- kept in Lua, then one query for the entities reached. at/as_of: now.
local function peer_walk(c, kind, tenant, start, depth)
  local nowt = kind == "sqlite" and string.format("%d", math.floor(now() * 1e6)) or "now()"
  local live = " AND valid_time_start <= " .. nowt .. " AND " .. nowt .. " < valid_time_end"
               .. " AND transaction_time_start <= " .. nowt .. " AND " .. nowt
               .. " < transaction_time_end"
  local seen, frontier, found = { [start] = true }, { start }, {}
  for _ = 1, depth do
    local q = {}
    for i, id in ipairs(frontier) do q[i] = "'" .. id .. "'" end
    local cur = assert(c:execute("SELECT target_entity_id FROM relationships WHERE tenant_id = '"
                                 .. tenant .. "' AND source_entity_id IN (" .. table.concat(q, ",")
                                 .. ")" .. live))
    local nextf, r = {}, cur:fetch()
    while r do
      if not seen[r] then
        seen[r] = true
        nextf[#nextf + 1] = r
        found[#found + 1] = "'" .. r .. "'"
      end
      r = cur:fetch()
    end
    cur:close()
    frontier = nextf
    if #frontier == 0 then break end
  end
  if #found == 0 then return 0 end
  local cur = assert(c:execute("SELECT entity_id, entity_type, name, properties FROM entities"
                               .. " WHERE tenant_id = '" .. tenant .. "' AND entity_id IN ("
                               .. table.concat(found, ",") .. ")" .. live))
  local n, r = 0, cur:fetch({}, "a")
  while r do
    n = n + 1
    r = cur:fetch(r, "a")
  end
  cur:close()
  return n
end

-- memory's peer: one relationships() call per node of the frontier.
local function api_walk(g, start, depth)
  local seen, frontier, n = { [start] = true }, { start }, 0
  for _ = 1, depth do
    local nextf = {}
    for _, id in ipairs(frontier) do
      for _, r in ipairs(g:relationships(id, { direction = "out" })) do
        if not seen[r.to] then
          seen[r.to] = true
          nextf[#nextf + 1] = r.to
          n = n + 1
          g:get_entity(r.to)
        end
      end
    end
    frontier = nextf
  end
  return n
end

local function bench_on(name, open, kind, where)
  local db = open()
  local tenant = db:tenant()
  local c = kind and peer_conn(kind, where) or nil
  bench_build(name, db, c, kind, tenant)
  -- the full graph, by import
  local t0 = now()
  local st = storage.importer(db):from_file(GRAPH_FILE)
  local secs = now() - t0
  row(name, "import the graph", f1((st.entities + st.relationships) / secs), "/s", "-", "-", "-",
      st.entities .. " entities + " .. st.relationships .. " relationships")
  local g = db:graph()
  -- 10 versions for VERSIONED entities
  t0 = now()
  for lo = 1, VERSIONED, 500 do
    db:transaction(function()
      for i = lo, math.min(VERSIONED, lo + 499) do
        for v = 2, 10 do g:update_entity(eid(i), { v = v }, { valid_from = v * 1000 }) end
      end
    end)
  end
  row(name, "update_entity (new version)", f1(VERSIONED * 9 / (now() - t0)), "/s", "-", "-", "-",
      "merge + supersede, 500 entities per transaction")
  local rnd = prng(42)
  local lat = { {}, {} }
  for k = 1, 2000 do
    local id = eid(rnd(VERSIONED))
    local a = now()
    assert(g:get_entity(id))
    local b = now()
    assert(g:get_entity(id, { at = 5500 }).properties.v == 5)
    lat[1][k], lat[2][k] = b - a, now() - b
  end
  for i, op in ipairs { "get_entity (10 versions)", "get_entity{at=} (10 versions)" } do
    row(name, op, f1(quantile(lat[i], 0.5) * 1e6), "us", "p99 " .. f1(quantile(lat[i], 0.99) * 1e6)
        .. " us", "-", "-", "p50 latency")
  end
  -- traversals
  for depth = 1, 3 do
    local ours, peer, got = {}, {}, 0
    rnd = prng(1000 + depth)
    for k = 1, STARTS do
      local start = eid(rnd(N))
      local a = now()
      local n = #g:traverse(start, { depth = depth })
      local b = now()
      local m = c and peer_walk(c, kind, tenant, start, depth) or api_walk(g, start, depth)
      ours[k], peer[k] = b - a, now() - b
      assert(n == m, string.format("traverse %s depth %d: %d vs %d", start, depth, n, m))
      got = got + n
    end
    local p50, p99 = quantile(ours, 0.5), quantile(ours, 0.99)
    local q50, q99 = quantile(peer, 0.5), quantile(peer, 0.99)
    row(name, "traverse depth " .. depth .. " p50", f1(p50 * 1e3), "ms",
        c and "a query per hop (LuaSQL)" or "relationships() per node", f1(q50 * 1e3),
        ratio(q50, p50), string.format("%.0f entities on average", got / STARTS))
    row(name, "traverse depth " .. depth .. " p99", f1(p99 * 1e3), "ms",
        c and "a query per hop (LuaSQL)" or "relationships() per node", f1(q99 * 1e3),
        ratio(q99, p99), depth == 3 and "goal: < 10 ms p99 on SQLite and PostgreSQL" or "")
  end
  if c then c:close() end
  db:graph():purge_before(1e12)
  db:close()
end

io.stderr:write("graph bench: N=", N, ", relationships=", 5 * N, "\n")
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
GRAPH_FILE = dir .. "/graph.json"
graph_file(GRAPH_FILE, edges(N))
bench_on("memory", function() return storage.open("memory") end)
bench_on("sqlite", function() return storage.open("sqlite:" .. dir .. "/graph.db") end, "sqlite",
         dir .. "/graph.db")
if PG_URL then
  bench_on("postgres", function()
    return storage.open { url = PG_URL, tenant = "graph-" .. os.time() }
  end, "postgres", PG_URL)
end
os.execute("rm -rf " .. dir)

print("| backend  | operation                          |        ours       | peer                       |         peer |   ratio | note |")
print("|----------|------------------------------------|-------------------|----------------------------|--------------|---------|------|")
for _, r in ipairs(rows) do print(r) end
