--- llmspell.storage.episodic: episodic memory, conversation turns kept for
-- retrieval (COMPONENTS.md "Episodic memory"; seed 003 "Episodic Memory
-- Storage", seed 000 `EpisodicMemory::builder()`).
--
--    local mem = storage.episodic(db, { dimension = 384, embed = my_embed })
--    mem:add { session_id = "chat-1", role = "user", content = "hello" }
--    for _, t in ipairs(mem:session("chat-1")) do print(t.role, t.content) end
--    for _, t in ipairs(mem:search("greeting", { k = 5 })) do print(t.score, t.content) end
--
-- Turns live in one vector collection: scope `session:<id>`, `event_time`
-- the turn's time, and the turn's fields in the entry's metadata (`role`,
-- `content`, `session_id`, `timestamp`, `processed`, the caller's
-- `metadata`). Listing reads the collection in time order with
-- `col:scan` (through the backend's indexes); search is the collection's
-- similarity search, within a session and a time range when asked.
--
-- @module llmspell.storage.episodic

local core = require "llmspell.storage.core"

local M = {}

local ROLES = { user = true, assistant = true, system = true, tool = true }
local PREFIX = "session:"
local MAX_SESSION = core.limits.max_scope - #PREFIX
local DELETE_BATCH = 1000

local format = string.format

local clock = os.time
do
  local ok, system = pcall(require, "system")
  if ok and type(system) == "table" and system.gettime then clock = system.gettime end
end

local function argerror(n, fname, msg)
  error(format("bad argument #%d to '%s' (%s)", n, fname, msg), 3)
end

local Episodic = { __name = "llmspell.storage.Episodic" }
Episodic.__index = Episodic

local function check(self, fname)
  if getmetatable(self) ~= Episodic then
    error(format("bad argument #1 to '%s' (episodic memory expected)", fname), 3)
  end
  if self._closed then
    error(core.error("closed", "episodic memory is closed"), 3)
  end
  return self._col
end

local function check_session(id, n, fname)
  if type(id) ~= "string" or #id == 0 or #id > MAX_SESSION then
    argerror(n, fname, format("session_id: a string of 1..%d bytes expected, got %s",
                              MAX_SESSION, type(id) == "string" and (#id .. " bytes") or type(id)))
  end
  return id
end

local function check_time(v, name, n, fname)
  if v ~= nil and (type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge) then
    argerror(n, fname, format("%s: a time in seconds expected", name))
  end
  return v
end

local function check_fields(t, allowed, n, fname)
  if t == nil then return {} end
  if type(t) ~= "table" then argerror(n, fname, "options table expected, got " .. type(t)) end
  for k in pairs(t) do
    if not allowed[k] then argerror(n, fname, format("unknown option '%s'", tostring(k))) end
  end
  return t
end

-- A turn as callers see it, from a collection entry (scan or search).
local function turn_of(e)
  local m = e.metadata or {}
  return { id = e.id, session_id = m.session_id, role = m.role, content = m.content,
           timestamp = m.timestamp or e.event_time, processed = m.processed == true,
           metadata = m.metadata, score = e.score }
end

-- Every entry col:scan gives for opts, in its order, to f (stops when f
-- returns true).
local function each(col, opts, f)
  for e in col:scan(opts) do
    if f(e) then break end
  end
end

--- Opens episodic memory on a collection of db.
-- @param db a store handle
-- @tparam[opt] table opts `collection` (name, default `"episodic_memory"`;
--   created when absent), `dimension` (required to create it), `metric`
--   (default `"cosine"`), `embed` (`function(text) return vector end`;
--   without it `add` and `search` take vectors)
-- @treturn table the memory object
function M.new(db, opts)
  local o = check_fields(opts, { collection = true, dimension = true, metric = true,
                                 embed = true }, 2, "episodic")
  if db == nil then argerror(1, "episodic", "store handle expected") end
  if o.embed ~= nil and type(o.embed) ~= "function" then
    argerror(2, "episodic", "option 'embed': function expected")
  end
  local name = o.collection or "episodic_memory"
  local col
  if o.dimension ~= nil then
    col = db:collection(name, { dimension = o.dimension, metric = o.metric or "cosine",
                               create = true })
  else
    local ok, c = pcall(db.collection, db, name)
    if not ok then
      if core.is_error(c) and c.code == "not_found" then
        error(core.error("not_found", format("collection '%s' does not exist (give dimension= "
                                             .. "to create it)", name)), 2)
      end
      error(c, 0)
    end
    col = c
  end
  return setmetatable({ _db = db, _col = col, _embed = o.embed, _name = name }, Episodic)
end

-- The vector for a text or a vector argument.
local function vector_of(self, v, n, fname)
  if type(v) == "table" or (type(v) == "string" and self._embed == nil) then return v end
  if type(v) == "string" then return self._embed(v) end
  argerror(n, fname, "text or vector expected, got " .. type(v))
end

--- Adds a turn.
-- @tparam table turn `session_id`, `role` (`"user"`, `"assistant"`,
--   `"system"`, `"tool"`), `content` (string), `timestamp` (seconds,
--   default now), `metadata` (table), `embedding` (a vector; default
--   `embed(content)`), `id` (default a new UUID)
-- @treturn string the turn's id
function Episodic:add(turn)
  local col = check(self, "add")
  if type(turn) ~= "table" then argerror(1, "add", "turn table expected, got " .. type(turn)) end
  check_fields(turn, { id = true, session_id = true, role = true, content = true,
                       timestamp = true, metadata = true, embedding = true }, 1, "add")
  local sid = check_session(turn.session_id, 1, "add")
  if not ROLES[turn.role] then
    argerror(1, "add", "role: \"user\", \"assistant\", \"system\" or \"tool\" expected")
  end
  if type(turn.content) ~= "string" then argerror(1, "add", "content: string expected") end
  if turn.metadata ~= nil and type(turn.metadata) ~= "table" then
    argerror(1, "add", "metadata: table expected")
  end
  local ts = check_time(turn.timestamp, "timestamp", 1, "add") or clock()
  local vec = turn.embedding
  if vec == nil then
    if self._embed == nil then argerror(1, "add", "embedding required (no embed function)") end
    vec = self._embed(turn.content)
  end
  local id = turn.id or core.uuid()
  col:add { id = id, vector = vec, scope = PREFIX .. sid, event_time = ts,
            metadata = { session_id = sid, role = turn.role, content = turn.content,
                         timestamp = ts, processed = false, metadata = turn.metadata } }
  return id
end

--- A session's turns in time order.
-- @tparam string session_id
-- @tparam[opt] table opts `limit` (the latest that many), `before` (only
--   turns before this time)
-- @treturn table array of turns `{ id=, session_id=, role=, content=,
--   timestamp=, processed=, metadata= }`
function Episodic:session(session_id, opts)
  local col = check(self, "session")
  local sid = check_session(session_id, 1, "session")
  local o = check_fields(opts, { limit = true, before = true }, 2, "session")
  local before = check_time(o.before, "before", 2, "session")
  local limit = o.limit
  if limit ~= nil and (math.type(limit) ~= "integer" or limit < 1) then
    argerror(2, "session", "limit: a positive integer expected")
  end
  local out = {}
  each(col, { scope = PREFIX .. sid, order = "event_time" }, function(e)
    if before and (e.event_time or 0) >= before then return true end
    out[#out + 1] = turn_of(e)
    if limit and #out > limit then table.remove(out, 1) end
  end)
  return out
end

--- Turns most similar to a text (through `embed`) or a vector.
-- @param query text or vector
-- @tparam[opt] table opts `k` (default 10), `session_id`, `from`, `to`
--   (a time range, seconds, inclusive), `filter` (on the turn's fields:
--   `role`, `processed`, `metadata.x`)
-- @treturn table array of turns with `score`, best first
function Episodic:search(query, opts)
  local col = check(self, "search")
  local o = check_fields(opts, { k = true, session_id = true, from = true, to = true,
                                 filter = true }, 2, "search")
  local s = { k = o.k or 10, filter = o.filter }
  if o.session_id ~= nil then s.scope = PREFIX .. check_session(o.session_id, 2, "search") end
  local from, to = check_time(o.from, "from", 2, "search"), check_time(o.to, "to", 2, "search")
  if from or to then s.event_time = { from, to } end
  local out = {}
  for i, hit in ipairs(col:search(vector_of(self, query, 1, "search"), s)) do
    out[i] = turn_of(hit)
  end
  return out
end

--- A session's turns not yet marked processed, in time order.
-- @tparam string session_id
-- @treturn table array of turns
function Episodic:unprocessed(session_id)
  local col = check(self, "unprocessed")
  local sid = check_session(session_id, 1, "unprocessed")
  local out = {}
  each(col, { scope = PREFIX .. sid, order = "event_time", filter = { processed = false } },
       function(e) out[#out + 1] = turn_of(e) end)
  return out
end

--- Marks turns processed (ids missing are skipped), in one transaction.
-- @tparam table ids array of turn ids
-- @treturn integer how many turns were marked
function Episodic:mark_processed(ids)
  local col = check(self, "mark_processed")
  if type(ids) ~= "table" then argerror(1, "mark_processed", "array of ids expected") end
  for i, id in ipairs(ids) do
    if type(id) ~= "string" then argerror(1, "mark_processed", format("id %d: string expected", i)) end
  end
  local n = 0
  self._db:transaction(function()
    for _, id in ipairs(ids) do
      local e = col:get(id)
      if e and e.metadata and e.metadata.processed == false then
        e.metadata.processed = true
        col:update_metadata(id, e.metadata)
        n = n + 1
      end
    end
  end)
  return n
end

--- The sessions that have unprocessed turns, sorted.
-- @treturn table array of session ids
function Episodic:sessions_with_unprocessed()
  local col = check(self, "sessions_with_unprocessed")
  local seen, out = {}, {}
  each(col, { order = "id", filter = { processed = false } }, function(e)
    local sid = e.metadata and e.metadata.session_id
    if sid and not seen[sid] then
      seen[sid] = true
      out[#out + 1] = sid
    end
  end)
  table.sort(out)
  return out
end

--- Deletes the turns older than t (every session).
-- @tparam number t seconds
-- @treturn integer how many turns were deleted
function Episodic:delete_before(t)
  local col = check(self, "delete_before")
  if check_time(t, "t", 1, "delete_before") == nil then
    argerror(1, "delete_before", "t: a time in seconds expected")
  end
  local n = 0
  while true do
    local ids = {}
    each(col, { order = "event_time", limit = DELETE_BATCH }, function(e)
      if (e.event_time or math.huge) >= t then return true end
      ids[#ids + 1] = e.id
    end)
    if #ids == 0 then break end
    n = n + col:delete(ids)
    if #ids < DELETE_BATCH then break end
  end
  return n
end

--- The number of turns held.
-- @treturn integer
function Episodic:count()
  return check(self, "count"):count()
end

--- Stops using this object (the store and the collection stay open).
function Episodic:close() self._closed = true end

Episodic.__close = Episodic.close

function Episodic:__tostring()
  if self._closed then return "llmspell.storage.Episodic (closed)" end
  local ok, n = pcall(self._col.count, self._col)
  return format("llmspell.storage.Episodic (collection %s, %s turns)", self._name,
                ok and tostring(n) or "?")
end

return M
