--- Writes the seed corpora of spec/fuzz/<target>/ (`make fuzz-seeds`).
-- The committed seeds came from this script; rerun it after a format
-- change, review the diff, and commit. Needs the built library (make
-- build) and a C compiler for the snapshot seeds.
--
--   lua5.4 spec/fuzz/make_seeds.lua [ROOT]
--
-- Seeds are small on purpose (the fuzzer mutates them; CI replays them):
-- real export documents written by the exporter, rs-llmspell style
-- documents, filters with metadata, Lua-value programs, and snapshots
-- written by hnsw_serialize (spec/fuzz/gen_snapshot.c).
local storage = require "llmspell.storage"

local ROOT = arg[1] or "."
local DIR = ROOT .. "/spec/fuzz"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- target is a folder under spec/fuzz: a target's corpus, or
-- "pending/<target>" for inputs that still fail (see docs/testing.md).
local function write(target, name, bytes)
  local path = ("%s/%s/%s"):format(DIR, target, name)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function reset(target)
  assert(os.execute(("rm -rf %s && mkdir -p %s"):format(q(DIR .. "/" .. target),
                                                       q(DIR .. "/" .. target))))
end

---------------------------------------------------------------- import
local function import_seeds()
  reset("import")
  local db = storage.open("memory")
  db:set("user:1", '{"name":"Ada"}', { ttl = 3600 })
  db:set("bin", "\0\255x")
  local docs = db:create_collection("docs", { dimension = 3, metric = "l2", m = 4,
                                              ef_construction = 8 })
  docs:add {
    { id = "a", vector = { 1, 2, 3 }, metadata = { year = 2024, tags = storage.array { "x" },
      nested = { deep = { n = 1.5 } } } },
    { id = "b", vector = { 0.5, -1, 0 }, scope = "tenant:x", event_time = 1700000000, ttl = 60 },
  }
  db:create_collection("empty", { dimension = 2, metric = "ip" })
  local full = storage.exporter(db):to_string()
  write("import", "export-full.json", full)
  write("import", "export-kv.json", storage.exporter(db):to_string { collections = {} })
  write("import", "export-empty.json", storage.exporter(storage.open("memory")):to_string())
  write("import", "truncated.json", full:sub(1, #full // 2))
  -- rs-llmspell's shapes: JSON-array and pgvector embeddings, no collection,
  -- passthrough sections (an array and a single value), keys in any order.
  write("import", "rs-llmspell.json", table.concat {
    '{"data":{"kv_store":[{"key":"k","value":"dg==","tenant_id":"t"}],',
    '"vector_embeddings":{"2":[{"id":"v1","embedding":[0.25,-1e-3],"metadata":{"a":null}},',
    '{"id":"v2","embedding":"[1,2.5]","scope":"s","created_at":1}]},',
    '"agent_state":[{"agent":"x","state":{"n":1}}],"knowledge_graph":{"entities":[]},',
    '"sessions":[]},"version":"1.0","source_backend":"postgresql"}' })
  -- the components' sections, as a store holding one of each writes them
  local c = storage.open("memory")
  c:sessions():create("s1", { data = { topic = "x" }, ttl = 3600 })
  c:artifacts():put("s1", string.rep("compress me ", 1000), { name = "a.txt", type = "document",
                                                              tags = { "t" } })
  c:artifacts():put("s1", "\0\1 bytes", { name = "b.bin" })
  c:agent_states():save("agent", { step = 2 }, { agent_type = "planner" })
  c:agent_states():save("plain", "text state")
  c:workflows():save("wf", { name = "flow", data = { k = 1 } })
  c:workflows():set_status("wf", "running")
  c:patterns():record("tool", "search", "summarise")
  c:patterns():record("tool", "search", "summarise")
  c:hook_history():record { hook_id = "audit", hook_type = "pre_agent", correlation_id = "c1",
                            context = string.rep("context ", 100), result = { Continue = true },
                            tags = { "t" }, metadata = { n = 1 } }
  local g = c:graph()
  g:add_entity { id = "ada", type = "person", name = "Ada", properties = { born = 1815 },
                 valid_from = 100 }
  g:add_entity { id = "engine", type = "machine", name = "Engine", valid_from = 100 }
  g:update_entity("ada", { title = "Countess" }, { valid_from = 200 })
  g:add_relationship { id = "r1", from = "ada", to = "engine", type = "designed",
                       properties = { year = 1837 }, valid_from = 300 }
  c:events():append { type = "agent.start", data = { step = 1 }, correlation_id = "run-1",
                      timestamp = 1700000000.5 }
  c:events():append_batch { { type = "tool.call", timestamp = 946684800 },
                            { type = "agent.stop", language = "rust", data = "done" } }
  write("import", "export-components.json", storage.exporter(c):to_string())
  c:close()
  write("import", "version-last.json", '{"data":{"kv_store":[]},"version":"1.0"}')
  write("import", "bad-version.json", '{"version":"9.9","data":{}}')
  write("import", "escapes.json",
        '{"version":"1.0","data":{"kv_store":[{"key":"\\u00e9\\ud83d\\ude00","value":""}]}}')
end

---------------------------------------------------------------- filter
local function filter_seeds()
  reset("filter")
  local Z = "\0"
  local seeds = {
    eq = '{"category":"docs"}',
    ops = '{"year":{"$gte":2020,"$lt":2025},"score":{"$gt":0.1,"$lte":1}}' .. Z
      .. '{"year":2024,"score":0.5}',
    logic = '{"$or":[{"category":"docs"},{"$and":[{"draft":false},{"$not":{"year":1}}]}]}',
    arrays = '{"tags":{"$in":["a",1,[1,2]]},"n":{"$nin":[]},"e":{"$exists":true}}' .. Z
      .. '{"tags":["b","a"],"e":null}' .. Z .. '{"tags":"a"}',
    paths = '{"author.name":"x","a.b.c":{"$ne":[{"d":1}]}}' .. Z
      .. '{"author":{"name":"x"},"a":{"b":{"c":[{"d":1}]}}}',
    big = '{"year":{"$gt":9007199254740992.0},"f":{"$lt":9007199254740993}}',
    empty = '{}',
    bad = '{"year":{"$gtx":1}}',
    strings = '{"s":{"$gte":"a","$lt":"\\u00ff"},"":{"$eq":"empty key"}}',
  }
  for name, text in pairs(seeds) do write("filter", name .. ".txt", text) end
end

-------------------------------------------------------------- luavalue
-- Opcodes of fuzz_luavalue.c's stack machine.
local NIL, BOOL, INT, SMALL, FLOAT, STR, TABLE, SET, APPEND, ARRAY, DUP, POP, WRAP, KWRAP =
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13

local function prog(...)
  local out = {}
  for _, x in ipairs { ... } do
    out[#out + 1] = type(x) == "number" and string.char(x) or x
  end
  return table.concat(out)
end

local function str(s) return prog(STR, #s, s) end

local function luavalue_seeds()
  reset("luavalue")
  write("luavalue", "scalars", prog(NIL, BOOL, 1, INT, string.pack("<i8", math.mininteger),
    SMALL, 200, FLOAT, string.pack("<d", 0.1), FLOAT, string.pack("<d", -0.0), str("abc")))
  -- { name = "x", tags = { 1, 2.5, "t" }, empty = storage.array() }
  write("luavalue", "object", prog(TABLE, str("name"), str("x"), SET,
    str("tags"), TABLE, SMALL, 1, APPEND, FLOAT, string.pack("<d", 2.5), APPEND,
    str("t"), APPEND, SET, str("empty"), TABLE, ARRAY, SET))
  write("luavalue", "refused", prog(FLOAT, string.pack("<d", 0 / 0), str("\255\254"),
    TABLE, SMALL, 1, APPEND, str("k"), BOOL, 1, SET, TABLE, BOOL, 0, BOOL, 1, SET))
  write("luavalue", "nested-arrays", prog(SMALL, 7, string.rep(string.char(WRAP), 24)))
  write("luavalue", "nested-objects", prog(SMALL, 7, string.rep(string.char(KWRAP, 1), 12)))
  write("luavalue", "sparse", prog(TABLE, SMALL, 3, str("x"), SET, SMALL, 1, WRAP, POP))
  -- Still failing: luavalue.c's convert() pushes two slots per level of an
  -- object without lua_checkstack, so a cycle (refused only at depth 32)
  -- or objects 22 deep run past a fresh coroutine's stack.
  assert(os.execute("mkdir -p " .. q(DIR .. "/pending/luavalue")))
  write("pending/luavalue", "cycle", prog(TABLE, str("self"), DUP, 0, SET))
  write("pending/luavalue", "nested-objects-22",
        prog(SMALL, 7, string.rep(string.char(KWRAP, 1), 22)))
end

-------------------------------------------------------------- snapshot
local function snapshot_seeds()
  reset("snapshot")
  local exe = os.tmpname()
  local cc = os.getenv("CC") or "cc"
  assert(os.execute(("%s -std=c11 -O1 -I%s %s %s/gen_snapshot.c -o %s -lm -lpthread"):format(
    cc, q(ROOT .. "/csrc"), ROOT .. "/csrc/vector/*.c", q(DIR), q(exe))), "gen_snapshot: compile")
  assert(os.execute(q(exe) .. " " .. q(DIR .. "/snapshot")), "gen_snapshot failed")
  os.remove(exe)
end

import_seeds()
filter_seeds()
luavalue_seeds()
snapshot_seeds()
print("seeds written under " .. DIR)
