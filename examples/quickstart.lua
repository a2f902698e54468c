-- quickstart.lua: llmspell.storage in a few seconds, offline, on SQLite.
--
--   1. key-value: get/set, binary values, prefixes, batches, TTL
--   2. a document collection (RAG) with metadata, in two tenants' scopes
--   3. a filtered, scoped search with scores
--   4. agent memory: one transaction writes a key and a vector, or neither
--   5. an export to JSON, imported into a fresh in-memory store
--   6. the data persists: reopen the file and read it back
--
-- Run with `make demo` (installs what is missing, builds, runs this), or
--
--   make build
--   LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" LUA_CPATH="$PWD/build/?.so;;" \
--     lua5.4 examples/quickstart.lua [DIR]
--
-- DIR (created if missing) keeps the database and the export, so a second
-- run finds the first one's data and carries on (the agent memory grows by
-- a turn a run). Without DIR a temporary directory is used and removed.
--
-- The vectors come from a TOY EMBEDDER (a hashed bag of words, below), not
-- from a language model: it runs offline and prints the same thing every
-- time. Swap `embed` for your model's client; nothing else changes.
local storage = require "llmspell.storage"

local function say(fmt, ...) print(string.format(fmt, ...)) end
local function section(title) print("\n== " .. title .. " ==") end
local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local dir, temporary = arg[1], false
if not dir then
  dir = os.tmpname() -- reserves a unique name; the directory takes its place
  os.remove(dir)
  dir, temporary = dir .. "-quickstart", true
end
assert(os.execute("mkdir -p " .. sh_quote(dir)), "cannot create directory " .. dir)
local path = dir .. "/quickstart.db"
local export_path = dir .. "/quickstart-export.json"

-- ------------------------------------------------------- the toy embedder
-- Words (lowercased, common words skipped, a plural "s" dropped) counted
-- in DIM hashed buckets, L2-normalised, packed as float32: texts sharing
-- words get close vectors (cosine scores between 0 and 1). NOT a real
-- embedding model.
local DIM = 96

local STOPWORDS = {}
for w in ("a an and are as at be by do does for from how in is it its of on or that the "
          .. "this to too what when where which with"):gmatch("%a+") do
  STOPWORDS[w] = true
end

local function fnv1a(s) -- 32-bit FNV-1a, the same on every platform
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return h
end

local function embed(text)
  local v = {}
  for i = 1, DIM do v[i] = 0.0 end
  for word in text:lower():gmatch("%a+") do
    if not STOPWORDS[word] then
      if #word > 3 then word = word:gsub("s$", "") end
      local i = fnv1a(word) % DIM + 1
      v[i] = v[i] + 1.0
    end
  end
  local norm = 0.0
  for i = 1, DIM do norm = norm + v[i] * v[i] end
  norm = math.sqrt(norm)
  for i = 1, DIM do v[i] = norm > 0 and v[i] / norm or 0.0 end
  return string.pack("<" .. string.rep("f", DIM), table.unpack(v))
end

-- Opens a collection, creating it on the first run.
local DOCS = {
  { id = "kv-ttl", scope = "tenant:acme", category = "kv", year = 2024,
    text = "Keys with a ttl expire automatically; expired keys are invisible." },
  { id = "kv-batch", scope = "tenant:acme", category = "kv", year = 2023,
    text = "Batches write all keys or none: set_batch is atomic." },
  { id = "kv-tx", scope = "tenant:acme", category = "kv", year = 2025,
    text = "A transaction commits when its function returns and rolls back on error." },
  { id = "vec-filter", scope = "tenant:acme", category = "vectors", year = 2025,
    text = "Filter vector search by metadata fields, with operators like $gte." },
  { id = "vec-hnsw", scope = "tenant:acme", category = "vectors", year = 2024,
    text = "An HNSW graph index answers similarity search over vectors quickly." },
  { id = "ops-export", scope = "tenant:acme", category = "ops", year = 2024,
    text = "Export a store to JSON and import it into another backend." },
  { id = "globex-ttl", scope = "tenant:globex", category = "kv", year = 2025,
    text = "Globex keys expire with a ttl too, but acme never sees them." },
}

do
  local db <close> = storage.open("sqlite:" .. path)
  say("opened %s", tostring(db))

  -- --------------------------------------------------------- 1. key-value
  section("1. key-value")
  db:set("user:1", '{"name":"Ada"}') -- values are binary-safe strings
  db:set("user:2", '{"name":"Grace"}')
  db:set("blob", "bytes\0with\0NULs")
  say("get user:1      -> %s", db:get("user:1"))
  say("blob length     -> %d bytes (NULs kept)", #db:get("blob"))
  say("exists user:3   -> %s", tostring(db:exists("user:3")))
  -- prefixes are literal, results come in byte order
  say("list_keys user: -> %s", table.concat(db:list_keys("user:"), ", "))
  -- batches are atomic
  db:set_batch { ["session:a"] = "1", ["session:b"] = "2", ["session:c"] = "3" }
  say("delete_batch    -> removed %d", db:delete_batch { "session:a", "session:x" })
  for k, v in db:scan("session:") do say("scan            -> %s = %s", k, v) end
  -- TTL: expired keys are invisible
  db:set("otp", "123456", { ttl = 0.2 })
  say("otp now         -> %s", tostring(db:get("otp")))
  os.execute("sleep 0.3")
  say("otp after 0.3 s -> %s", tostring(db:get("otp")))

  -- -------------------------------------------- 2. a document collection
  section("2. collection with metadata (toy embedder, " .. DIM .. "-d)")
  -- preset "production" (rs-llmspell's name): m 16, ef_construction 200, ef_search 100
  -- get-or-create: the second run opens what the first one made
  local docs = db:collection("docs", { dimension = DIM, metric = "cosine",
                                       preset = "production", create = true })
  local entries = {}
  for i, d in ipairs(DOCS) do
    entries[i] = { id = d.id, vector = embed(d.text), scope = d.scope,
                   metadata = { category = d.category, year = d.year, text = d.text } }
  end
  -- upsert: insert or replace, so a second run replaces the same documents
  say("upserted        -> %d documents (one atomic write)", docs:upsert(entries))
  say("collection      -> %s", tostring(docs))
  for _, scope in ipairs { "tenant:acme", "tenant:globex" } do
    local st = docs:stats_for_scope(scope)
    say("scope %-13s -> %d vectors, %d bytes", scope, st.vectors, st.bytes)
  end

  -- ------------------------------------------------ 3. filtered search
  section("3. filtered, scoped search")
  local question = "when do keys expire?"
  local hits = docs:search(embed(question), {
    k = 3, scope = "tenant:acme",                   -- globex's documents never show up
    filter = { category = "kv", year = { ["$gte"] = 2024 } } })
  say("query           -> %q in tenant:acme, category kv, year >= 2024", question)
  for rank, hit in ipairs(hits) do
    say("  %d. %-10s score %.3f  [%s %d] %s", rank, hit.id, hit.score, hit.metadata.category,
        hit.metadata.year, hit.metadata.text)
  end
  -- the same with the filter builder and a score threshold
  local f = storage.filter():in_("category", { "vectors", "ops" })
  hits = docs:search(embed("search vectors by metadata"), { k = 5, scope = "tenant:acme",
                                                           filter = f, threshold = 0.2 })
  say("builder query   -> %d hits with score >= 0.2, best %s (%.3f)", #hits, hits[1].id,
      hits[1].score)

  -- ------------------------------------- 4. agent memory in a transaction
  section("4. agent memory: a transaction over key-value and vectors")
  local memory = db:collection("agent_memory", { dimension = DIM, create = true })
  local note = "the user asked how keys expire"
  -- the turn counter (a key) and the remembered turn (a vector) commit together
  local turn, ids = db:transaction(function(tx)
    local n = tonumber(tx:get("memory:turns") or "0") + 1
    local inserted = memory:insert { id = "turn-" .. n, vector = embed(note),
                                     scope = "session:demo",
                                     metadata = { role = "user", turn = n, text = note } }
    tx:set("memory:turns", tostring(n))
    return n, inserted
  end)
  say("committed tx    -> memory:turns = %s, inserted %s, %d turns remembered",
      db:get("memory:turns"), table.concat(ids, ","), #memory)
  -- an error rolls both back: the key and the vector
  local ok, err = pcall(db.transaction, db, function(tx)
    tx:set("memory:turns", tostring(turn + 1))
    memory:insert { id = "turn-lost", vector = embed("never stored"), scope = "session:demo" }
    error("the model call failed")
  end)
  say("failed tx       -> %s; memory:turns still %s, turn-lost stored: %s",
      tostring(not ok and err):match("the model call failed"), db:get("memory:turns"),
      tostring(memory:get("turn-lost") ~= nil))
  local recall = memory:search(embed("what did the user ask about keys?"),
                               { k = 1, scope = "session:demo" })
  say("recall          -> %s (score %.3f): %s", recall[1].id, recall[1].score,
      recall[1].metadata.text)

  -- ------------------------------------------------------------ 5. export
  section("5. export and import")
  local st = storage.exporter(db):to_file(export_path)
  say("exported        -> %d keys, %d vectors in %d collections to %s", st.kv_entries,
      st.vectors, st.collections, export_path:match("[^/]*$"))
  local copy <close> = storage.open("memory")
  local imported = storage.importer(copy):from_file(export_path)
  local again = copy:collection("docs"):search(embed(question), { k = 1, scope = "tenant:acme" })
  say("imported        -> %d records into memory; best hit there: %s", imported.total,
      again[1].id)
end

-- ------------------------------------------------------------ 6. persistence
section("6. reopen")
local db <close> = storage.open("sqlite:" .. path)
local st = db:stats()
local names = {}
for _, m in ipairs(db:migrations()) do names[#names + 1] = m.name end
say("reopened        -> %d keys, %d bytes, schema %s", st.keys, st.bytes,
    table.concat(names, ","))
local docs = db:collection("docs")
local best = docs:search(embed("when do keys expire?"), { k = 1, scope = "tenant:acme" })[1]
say("docs reopened   -> %d vectors; best hit again: %s (%.3f)", #docs, best.id, best.score)
-- errors are objects with a code
local ok, missing = pcall(db.collection, db, "no_such_collection")
say("missing         -> %s (code %q)", tostring(not ok and missing), missing.code)
db:close()
local _, closed = pcall(db.get, db, "user:1")
say("after close     -> code %q", closed.code)

if temporary then
  for _, p in ipairs { path, path .. "-wal", path .. "-shm", export_path } do os.remove(p) end
  os.remove(dir)
end
