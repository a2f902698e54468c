-- rag.lua: RAG-style ingestion and search with the dimension router.
--
-- Embeddings here are deterministic stand-ins (a hashed bag of words in 384
-- dimensions, normalised), so the example runs offline and prints the same
-- thing every time; swap `embed` for a real model's client and the rest
-- stays as it is. The router sends each model's vectors to the collection
-- of its dimension (`kb_384` for all-MiniLM-L6-v2), creating it on first use.
--
--   make build
--   LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" LUA_CPATH="$PWD/build/?.so;;" \
--     lua5.4 examples/rag.lua [STORE_URL]
--
-- Without STORE_URL it uses a temporary SQLite file and removes it at the end.
local storage = require "llmspell.storage"
local router = require "llmspell.storage.router"

local MODEL = "sentence-transformers/all-MiniLM-L6-v2"
local DIM = assert(router.dimension_of(MODEL)) -- 384

local STOPWORDS = {}
for w in ([[a an and are as at be by do does for from how i in is it its of on or
  that the this to what when where which with without you your]]):gmatch("%a+") do
  STOPWORDS[w] = true
end

-- 32-bit FNV-1a: a stable hash, the same on every platform.
local function fnv1a(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return h
end

--- A stand-in embedding: words (lowercased, stopwords dropped, a plural "s"
-- stripped) hashed into DIM signed buckets, L2-normalised, packed as float32.
local function embed(text)
  local v = {}
  for i = 1, DIM do v[i] = 0.0 end
  for word in text:lower():gmatch("%a+") do
    if not STOPWORDS[word] then
      if #word > 3 then word = word:gsub("s$", "") end
      local h = fnv1a(word)
      local i = h % DIM + 1
      v[i] = v[i] + (((h >> 16) & 1) == 0 and 1.0 or -1.0)
    end
  end
  local norm = 0.0
  for i = 1, DIM do norm = norm + v[i] * v[i] end
  norm = math.sqrt(norm)
  if norm > 0 then
    for i = 1, DIM do v[i] = v[i] / norm end
  end
  return string.pack("<" .. string.rep("f", DIM), table.unpack(v))
end

local DOCS = {
  { id = "kv-ttl", category = "kv", year = 2024, title = "Expiring keys with TTL",
    text = "Set a ttl in seconds and keys expire automatically; expired keys are invisible." },
  { id = "kv-batch", category = "kv", year = 2023, title = "Atomic batches",
    text = "set_batch and delete_batch write all keys or none: batches are atomic." },
  { id = "kv-tx", category = "kv", year = 2024, title = "Transactions",
    text = "A transaction commits when the function returns and rolls back on error." },
  { id = "vec-hnsw", category = "vectors", year = 2024, title = "HNSW index",
    text = "Vector collections use an HNSW graph index for fast similarity search." },
  { id = "vec-filter", category = "vectors", year = 2025, title = "Metadata filters",
    text = "Filter vector search results by metadata fields with operators like $gte." },
  { id = "vec-metric", category = "vectors", year = 2023, title = "Distance metrics",
    text = "Choose cosine, l2, inner product or l1 distance for similarity search." },
  { id = "vec-router", category = "vectors", year = 2025, title = "Dimension routing",
    text = "The router picks a collection by embedding model or vector dimension." },
  { id = "ops-export", category = "ops", year = 2024, title = "Export and import",
    text = "Export a store to JSON and import it into another database backend." },
  { id = "ops-migrate", category = "ops", year = 2025, title = "Migrating databases",
    text = "Migrate data from SQLite to PostgreSQL, copying keys and collections." },
  { id = "ops-backup", category = "ops", year = 2022, title = "Backups",
    text = "Back up the SQLite database file while writers keep working in WAL mode." },
  { id = "sec-tenant", category = "security", year = 2024, title = "Tenant isolation",
    text = "Each tenant sees only its own keys and collections; quotas limit usage." },
  { id = "sec-rls", category = "security", year = 2023, title = "Row-level security",
    text = "PostgreSQL row-level security keeps tenant rows apart even in raw SQL." },
}

local url, path = arg[1], nil
if not url then
  path = os.tmpname() -- reserves a unique name; we use it as a stem
  os.remove(path)
  path = path .. "-rag.db"
  url = "sqlite:" .. path
end

do
  local db <close> = storage.open(url)
  local r = router.new(db, { prefix = "kb", collection_options = { preset = "balanced" } })
  print(tostring(r))
  print(string.format("%s -> %s (a 1536-d model would go to %s)", MODEL,
                      (r:collection_name(MODEL)), (r:collection_name("text-embedding-3-small"))))

  -- ingestion: embed, then add in one atomic write to the model's collection
  local docs, name = r:for_model(MODEL)
  local entries = {}
  for i, d in ipairs(DOCS) do
    entries[i] = { id = d.id, vector = embed(d.title .. ". " .. d.text),
                   metadata = { title = d.title, category = d.category, year = d.year,
                                text = d.text } }
  end
  docs:upsert(entries)
  print(string.format("ingested %d documents into %s: %s\n", #entries, name, tostring(docs)))

  local queries = {
    { q = "how do keys expire automatically?" },
    { q = "similarity search over vectors", filter = { category = "vectors" } },
    { q = "move data to another database", threshold = 0.1,
      filter = storage.filter():gte("year", 2024):in_("category", { "ops", "kv" }) },
    { q = "keep tenants apart", filter = { year = { ["$lt"] = 2025 } }, k = 2 },
  }
  for _, query in ipairs(queries) do
    local qv = embed(query.q)
    -- the query vector's length routes it to the same collection
    local col = r:for_vector(qv)
    local hits = col:search(qv, { k = query.k or 3, filter = query.filter,
                                  threshold = query.threshold })
    print(string.format("Q: %s", query.q))
    for rank, hit in ipairs(hits) do
      local m = hit.metadata
      print(string.format("  %d. %-12s %.3f  [%s %d] %s", rank, hit.id, hit.score, m.category,
                          m.year, m.title))
    end
    if #hits == 0 then print("  (no hits)") end
  end
end

if path then
  for _, p in ipairs { path, path .. "-wal", path .. "-shm" } do os.remove(p) end
end
