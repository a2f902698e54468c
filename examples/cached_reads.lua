-- cached_reads.lua: a cached key-value read path on SQLite, and its hit rate.
--
--   make build
--   LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" LUA_CPATH="$PWD/build/?.so;;" \
--     lua5.4 examples/cached_reads.lua [sqlite-file]
--
-- 2,000 user profiles live in SQLite; 20,000 reads follow a skewed
-- (Zipf-like) pattern, as real traffic does: a few hot users, a long tail.
-- A 200-entry LRU in front of the store answers most of them.
local storage = require "llmspell.storage"
local cache = require "llmspell.storage.cache"

local USERS, READS, CAPACITY = 2000, 20000, 200

local path = arg[1]
if not path then
  local base = os.tmpname() -- reserves a unique name; we use it as a stem
  os.remove(base)
  path = base .. "-cached-reads.db"
end
local function say(fmt, ...) print(string.format(fmt, ...)) end

-- Deterministic PRNG (the same run every time) and a Zipf(1) sampler over
-- 1..n by inverting the cumulative weights.
local seed = 42
local function rand()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
end
local cumulative, total = {}, 0
for i = 1, USERS do
  total = total + 1 / i
  cumulative[i] = total
end
local function zipf()
  local x, lo, hi = rand() * total, 1, USERS
  while lo < hi do
    local mid = (lo + hi) // 2
    if cumulative[mid] < x then lo = mid + 1 else hi = mid end
  end
  return lo
end

local db <close> = storage.open("sqlite:" .. path)
local profiles = {}
for i = 1, USERS do
  profiles["user:" .. i] = string.format('{"id":%d,"name":"user %d","plan":"%s"}', i, i,
                                         i % 10 == 0 and "pro" or "free")
end
db:set_batch(profiles)
say("stored %d profiles in %s", USERS, tostring(db))

local reads = {}
for i = 1, READS do reads[i] = "user:" .. zipf() end

local function run(reader)
  local t0 = os.clock()
  local pro = 0
  for _, key in ipairs(reads) do
    if reader:get(key):find('"plan":"pro"', 1, true) then pro = pro + 1 end
  end
  return os.clock() - t0, pro
end

local plain_s, plain_pro = run(db)

-- the cached read path: the same API, a cache in front
local cached <close> = cache.wrap(db, { capacity = CAPACITY, ttl = 60, negative_ttl = 5 })
local cached_s, cached_pro = run(cached)
assert(cached_pro == plain_pro, "the cache must return what the store holds")

local s = cached:stats()
say("%d reads of %d users through a %d-entry cache:", READS, USERS, CAPACITY)
say("  hits %d, misses %d, evictions %d -> hit rate %.1f%%", s.hits, s.misses, s.evictions,
    100 * s.hit_rate)
say("  store alone %.1f ms, with the cache %.1f ms (CPU time)", plain_s * 1000,
    cached_s * 1000)

-- writes go through the cache: a hot key is updated, never stale
cached:set("user:1", '{"id":1,"name":"user 1","plan":"pro"}')
say("user:1 after an update through the cache -> %s", cached:get("user:1"))
-- a missing key is remembered for negative_ttl seconds
cached:get("user:999999")
cached:get("user:999999")
say("a missing key read twice -> %d negative hit(s)", cached:stats().negative_hits)

cached:close() -- forgets the cache; the store stays open
db:close()
if not arg[1] then
  for _, p in ipairs { path, path .. "-wal", path .. "-shm" } do os.remove(p) end
end
