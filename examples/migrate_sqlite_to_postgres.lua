-- migrate_sqlite_to_postgres.lua: move an SQLite store into PostgreSQL
-- with a saved plan, a dry run, a progress bar and verification.
--
--   scripts/with-postgres.sh lua5.4 examples/migrate_sqlite_to_postgres.lua
--   lua5.4 examples/migrate_sqlite_to_postgres.lua postgresql://user@host/db
--
-- The PostgreSQL URL comes from the first argument, else from
-- LLMSPELL_TEST_PG_URL (which scripts/with-postgres.sh sets for a throwaway
-- server). The data goes to the tenant "migrate_example", which this script
-- empties before and after: other tenants' rows are never touched.

-- Run from the source tree without LUA_PATH: use its lua/ and build/.
do
  local root = ((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/.."
  local f = io.open(root .. "/lua/llmspell/storage/init.lua")
  if f then
    f:close()
    package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
    package.cpath = root .. "/build/?.so;" .. package.cpath
  end
end

local url = arg[1] or os.getenv("LLMSPELL_TEST_PG_URL")
if not url or url == "" then
  io.stderr:write([[
migrate_sqlite_to_postgres.lua needs a PostgreSQL server. Either
  scripts/with-postgres.sh lua5.4 examples/migrate_sqlite_to_postgres.lua
(starts a throwaway server and stops it afterwards), or
  lua5.4 examples/migrate_sqlite_to_postgres.lua postgresql://user@host/dbname
]])
  os.exit(2)
end

local storage = require "llmspell.storage"
local migrate = require "llmspell.storage.migrate"

local TENANT = "migrate_example"
local USERS, DOCS, DIM = 2000, 3000, 64

local function say(fmt, ...) print(string.format(fmt, ...)) end

-- Hides the password of a URL in what we print.
local function redact(u) return (u:gsub("^(%a[%w+.-]*://[^/@:]*):[^/@]*@", "%1:***@")) end

-- Deterministic stand-in embeddings (no network): a direction per topic,
-- with a little per-document wobble.
local TOPICS = { "billing", "shipping", "returns", "accounts" }
local function embed(topic_index, i)
  local v = {}
  for j = 1, DIM do
    v[j] = math.sin(topic_index * 1.7 + j * 0.37) + 0.05 * math.cos(i * 0.11 + j)
  end
  return v
end

-- Empties this example's tenant on the server (keys and collections).
local function empty_target()
  local db <close> = storage.open(url, { tenant = TENANT })
  db:clear()
  for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
end

-- A progress bar on stderr, redrawn in place. The exporter reports
-- records against a known total; the importer reports bytes of the file.
local function progress_bar()
  local last = 0
  local clock = os.clock
  return function(done, total, phase, bytes, bytes_total)
    local frac
    if bytes and bytes_total and bytes_total > 0 then
      frac = bytes / bytes_total
    elseif total and total > 0 then
      frac = done / total
    end
    local now = clock()
    if now - last < 0.05 and frac ~= 1 then return end
    last = now
    local line
    if frac then
      local width = 30
      local fill = math.floor(frac * width + 0.5)
      line = string.format("%-26s [%s%s] %3d%%  %d records", phase, string.rep("#", fill),
                           string.rep("-", width - fill), math.floor(frac * 100), done)
    else
      line = string.format("%-26s %d records", phase, done)
    end
    io.stderr:write("\r", line, "\27[K")
    io.stderr:flush()
  end
end

-- 1. An SQLite store as an application would have it.
local base = os.tmpname() -- reserves a unique name; we use it as a stem
os.remove(base)
local path, plan_path = base .. "-source.db", base .. "-plan.json"
do
  local db <close> = storage.open("sqlite:" .. path, { tenant = TENANT })
  local users = {}
  for i = 1, USERS do
    users[string.format("user:%05d", i)] = string.format('{"id":%d,"name":"user %d"}', i, i)
  end
  db:set_batch(users)
  db:set_batch({ ["session:a"] = "token-a", ["session:b"] = "token-b" }, { ttl = 3600 })
  db:set("avatar:1", "\137PNG\r\n\26\n\0\0binary")
  local docs = db:create_collection("tenant_demo:docs", { dimension = DIM, metric = "cosine",
                                                          preset = "balanced" })
  local batch = {}
  for i = 1, DOCS do
    local t = (i % #TOPICS) + 1
    batch[#batch + 1] = { id = string.format("doc-%05d", i), vector = embed(t, i),
                          metadata = { topic = TOPICS[t], n = i }, scope = "tenant:demo" }
    if #batch == 500 then
      docs:add(batch)
      batch = {}
    end
  end
  db:create_collection("tenant_demo:archive", { dimension = 128, metric = "l2" })
  local st = db:stats()
  say("source  sqlite:%s: %d keys, %d collections", path, st.keys, st.collections)
end

-- 2. A plan, saved as JSON: what moves from where to where.
empty_target()
local plan = migrate.plan { from = "sqlite:" .. path, to = url, tenant = TENANT,
                            components = { "kv", "vectors" }, batch_size = 500 }
migrate.save_plan(plan, plan_path)
say("plan    %s -> %s (tenant %s), saved to %s", plan.from, redact(plan.to), plan.tenant,
    plan_path)

-- 3. A dry run reads and checks everything and writes nothing.
local dry = migrate.execute(plan_path, { dry_run = true })
say("dry run would copy %d keys and %d vectors in %d collections; target untouched: %s",
    dry.copied.kv_entries, dry.copied.vectors, dry.copied.collections,
    tostring(dry.before.target.keys == 0))

-- 4. The migration: checks before, copy with a progress bar, verify after.
local report = migrate.execute(plan_path, { progress = progress_bar() })
io.stderr:write("\r\27[K")
say("copied  %d keys and %d vectors in %d collections (%.2f s, %s path)",
    report.copied.kv_entries, report.copied.vectors, report.copied.collections,
    report.seconds, report.copied.method)
say("verify  %s: %d keys and %d vectors compared value by value, %d problems",
    report.ok and "ok" or "FAILED", report.verify.kv.checked, report.verify.vectors.checked,
    #report.problems)
for _, p in ipairs(report.problems) do say("        %s", p) end

-- 5. The target answers like the source did.
do
  local db <close> = storage.open(url, { tenant = TENANT })
  local hits = db:collection("tenant_demo:docs"):search(embed(2, 7), {
    k = 3, filter = { topic = "shipping" }, scope = "tenant:demo" })
  say("search  on PostgreSQL: %s", table.concat({ hits[1].id, hits[2].id, hits[3].id }, ", "))
  say("get     user:00042 -> %s", db:get("user:00042"))

  -- and verify notices when the two drift apart
  db:set("user:00042", '{"id":42,"name":"changed"}')
  local src <close> = storage.open("sqlite:" .. path, { tenant = TENANT })
  local ok, drift = migrate.verify(src, db)
  local m = drift.kv.mismatches[1]
  say("drift   after changing one key in PostgreSQL, verify says %s: %s %s (%s)", tostring(ok),
      m.key, m.reason, table.concat(m.fields, ", "))
end

empty_target()
os.remove(plan_path)
for _, p in ipairs { path, path .. "-wal", path .. "-shm" } do os.remove(p) end
os.exit(report.ok and 0 or 1)
