--- llmspell.storage.migrate: moving a tenant's data between stores.
--
-- Recipes for the seeds' "Migration Pattern" (Sled to PostgreSQL without
-- downtime): copy one store into another, verify that the copy holds what
-- the source holds, write to two stores at once during a hot swap, and
-- plan / execute a whole migration from a saved JSON plan.
--
--    local migrate = require "llmspell.storage.migrate"
--    local counts = migrate.copy(src, dst, { progress = function(done, total, phase) end })
--    local ok, report = migrate.verify(src, dst)
--    local h = migrate.dual_write(old, new, { read = "primary" })
--
-- Two copy paths, chosen by `method`:
--
-- * `"export"` (the default when both sides are store handles): the
--   source's exporter writes a temporary file, the target's importer reads
--   it. Streaming (memory stays bounded), lossless (values, TTLs as
--   absolute expiry times, key-value metadata and `kv_id`, creation and
--   update times, every vector field, empty collections with their HNSW
--   parameters, passthrough sections) and all or nothing on the target.
-- * `"api"` (when either side is not a store handle, e.g. a wrapper with
--   the store API, or on request): entries are read in order and written
--   with `batch` / `upsert` in batches of `batch_size`. Vectors keep their
--   scope, metadata, event time and expiry; keys keep their remaining TTL
--   when the source is a store handle (read from its export stream). Not
--   carried: key-value metadata, `kv_id`, creation times, passthrough
--   sections; each batch is atomic on its own, not the whole copy; and
--   from a source that is not a store handle, TTLs are lost (the
--   key-value API cannot read them) and a collection of more than 10000
--   entries cannot be enumerated (`invalid`).
--
-- Errors from either side are the library's error objects, with
-- `side = "source"|"target"` (dual-write: `"primary"|"secondary"`) and
-- `context` set to the same, so callers and the command-line tool can say
-- which side failed.
--
-- @module llmspell.storage.migrate

local core = require "llmspell.storage.core"

local migrate = {}

local DEFAULT_BATCH = 1000
local MAX_BATCH = 100000
local MAX_ENUMERATE = 10000 -- col:search's largest k: the API path's limit
local PLAN_VERSION = 1
local COMPONENT_NAMES = { "kv", "vectors", "sections" }
local COMPONENTS = { kv = true, vectors = true, sections = true }
-- A key prefix no key can have except one exact 1024-byte key: the
-- exporter has no "no keys" option, and records past it are dropped anyway.
local NO_KEYS = string.rep("\u{10FFFF}", 256)

local KV, VEC = 1, 2

local byte, sub, find, format = string.byte, string.sub, string.find, string.format

-- ---------------------------------------------------------------- helpers

local clock = os.time
do
  local ok, system = pcall(require, "system")
  if ok and type(system) == "table" and system.gettime then clock = system.gettime end
end

local function argerror(n, fname, msg)
  error(format("bad argument #%d to '%s' (%s)", n, fname, msg), 0)
end

local function fail(code, fmt, ...)
  error(core.error(code, format(fmt, ...)), 0)
end

--- Checks an options table: a table or nil, with only the allowed fields.
local function check_opts(opts, n, fname, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    argerror(n, fname, "options table expected, got " .. type(opts))
  end
  for k in pairs(opts) do
    if not allowed[k] then argerror(n, fname, format("unknown option '%s'", tostring(k))) end
  end
  return opts
end

local function set_of(list)
  local t = {}
  for _, v in ipairs(list) do t[v] = true end
  return t
end

local function opt_batch(o, n, fname)
  local b = o.batch_size
  if b == nil then return DEFAULT_BATCH end
  if math.type(b) ~= "integer" or b < 1 or b > MAX_BATCH then
    argerror(n, fname, format("option 'batch_size' must be an integer in [1, %d]", MAX_BATCH))
  end
  return b
end

local function opt_type(o, name, want, n, fname)
  local v = o[name]
  if v ~= nil and type(v) ~= want then
    argerror(n, fname, format("option '%s': %s expected, got %s", name, want, type(v)))
  end
  return v
end

local function opt_enum(o, name, values, default, n, fname)
  local v = o[name]
  if v == nil then return default end
  for _, x in ipairs(values) do
    if v == x then return v end
  end
  argerror(n, fname, format("option '%s' must be \"%s\"", name, table.concat(values, "\", \"")))
end

--- Reads `components` (array of "kv", "vectors", "sections") into a set.
local function opt_components(o, n, fname)
  local c = o.components
  if c == nil then return { kv = true, vectors = true, sections = true } end
  if type(c) ~= "table" then argerror(n, fname, "option 'components': array expected") end
  local set = {}
  for i, name in ipairs(c) do
    if not COMPONENTS[name] then
      argerror(n, fname, format("option 'components': entry %d must be \"%s\"", i,
                                table.concat(COMPONENT_NAMES, "\", \"")))
    end
    set[name] = true
  end
  return set
end

local function opt_names(o, n, fname)
  local c = o.collections
  if c == nil then return nil end
  if type(c) ~= "table" then argerror(n, fname, "option 'collections': array expected") end
  for i, name in ipairs(c) do
    if type(name) ~= "string" then
      argerror(n, fname, format("option 'collections': name %d is not a string", i))
    end
  end
  return c
end

local function opt_prefix(o, n, fname)
  local p = opt_type(o, "prefix", "string", n, fname)
  if p == "" then return nil end
  return p
end

--- True when h is a store handle of the C core (what exporters accept).
local function is_store(h)
  if type(h) ~= "userdata" then return false end
  local mt = getmetatable(h)
  return type(mt) == "table" and mt.__name == "llmspell.storage.Store"
end

local function check_handle(h, n, fname)
  local t = type(h)
  if t ~= "userdata" and t ~= "table" then
    argerror(n, fname, "store handle expected, got " .. t)
  end
end

--- Marks a library error object with the side it came from.
local function tag(e, side)
  if core.is_error(e) then
    if e.side == nil then e.side = side end
    if e.context == nil then e.context = side end
  end
  return e
end

--- Calls f(...) and tags any error with `side` before rethrowing it.
local function on_side(side, f, ...)
  local r = table.pack(pcall(f, ...))
  if r[1] then return table.unpack(r, 2, r.n) end
  error(tag(r[2], side), 0)
end

--- Byte-order comparison (-1, 0, 1) that does not depend on the locale
-- (`<` on strings uses strcoll).
local function cmp_bytes(a, b)
  if a == b then return 0 end
  local n = math.min(#a, #b)
  local i = 1
  while i + 15 <= n and sub(a, i, i + 15) == sub(b, i, i + 15) do i = i + 16 end
  while i <= n do
    local x, y = byte(a, i), byte(b, i)
    if x ~= y then return x < y and -1 or 1 end
    i = i + 1
  end
  return #a < #b and -1 or 1
end

-- A temporary file, removed when the variable holding it goes out of scope.
local TempFile = {
  __close = function(t)
    if t.path then os.remove(t.path) end
  end,
}

local function temp_file(dir)
  dir = dir or os.getenv("TMPDIR")
  local name = os.tmpname() -- reserves a unique name in /tmp
  if dir and dir ~= "" then
    dir = dir:gsub("/+$", "")
    if dir ~= "/tmp" and dir ~= "" then
      os.remove(name)
      name = format("%s/llmspell-migrate-%s.json", dir, name:match("[^/]*$"))
    end
  end
  return setmetatable({ path = name }, TempFile)
end

local function remove_temp(t)
  if t and t.path then
    os.remove(t.path)
    t.path = nil
  end
end

--- The exporter options that select `sel` (kv, vectors, prefix,
-- collections): no keys when kv is off, no collections when vectors is.
local function export_selection(sel, sections)
  local prefix, collections = sel.prefix, sel.collections
  if not sel.kv then prefix = NO_KEYS end
  if not sel.vectors then collections = {} end
  return { prefix = prefix, collections = collections, sections = sections }
end

-- ---------------------------------------------------------------- base64

local B64 = {}
do
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for i = 1, 64 do B64[byte(alphabet, i)] = i - 1 end
end

local function b64decode(s)
  s = s:gsub("[^%w%+/]", "")
  local tail = #s % 4
  local head = sub(s, 1, #s - tail)
  local out = head:gsub("....", function(q)
    local a, b, c, d = byte(q, 1, 4)
    local n = B64[a] << 18 | B64[b] << 12 | B64[c] << 6 | B64[d]
    return string.char(n >> 16, n >> 8 & 255, n & 255)
  end)
  if tail >= 2 then
    local a, b, c = byte(s, #s - tail + 1, #s)
    local n = B64[a] << 18 | B64[b] << 12 | (c and B64[c] or 0) << 6
    out = out .. (tail == 2 and string.char(n >> 16)
                  or string.char(n >> 16, n >> 8 & 255))
  end
  return out
end

-- ---------------------------------------------------------------- JSON in

-- A small JSON reader for export records: integers stay integers (int64
-- exactly) and floats stay floats, which lua-cjson would not keep. It
-- reads from a buffer that may end inside a record: running out of input
-- raises TRUNCATED, and the caller reads more and starts the record again.
local TRUNCATED = setmetatable({}, { __tostring = function() return "truncated record" end })

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
                  r = "\r", t = "\t" }

-- Malformed input; near the end of the buffer it may only be cut short.
local function bad_json(s, pos, what)
  if pos > #s - 8 then error(TRUNCATED, 0) end
  fail("format", "export record: %s at byte %d", what, pos)
end

local function skip_ws(s, pos)
  local c = byte(s, pos)
  if c == 32 or c == 9 or c == 10 or c == 13 then
    return find(s, "[^ \t\r\n]", pos) or #s + 1
  end
  return pos
end

local function decode_string(s, pos)
  -- pos at the opening quote; returns the string and the position after it
  local i = pos + 1
  local k = find(s, '["\\]', i)
  if not k then error(TRUNCATED, 0) end
  if byte(s, k) == 34 then return sub(s, i, k - 1), k + 1 end
  local parts = {}
  while true do
    k = find(s, '["\\]', i)
    if not k then error(TRUNCATED, 0) end
    parts[#parts + 1] = sub(s, i, k - 1)
    if byte(s, k) == 34 then return table.concat(parts), k + 1 end
    local e = sub(s, k + 1, k + 1)
    if e == "u" then
      local cp = tonumber(sub(s, k + 2, k + 5), 16)
      if not cp or k + 5 > #s then bad_json(s, k, "bad \\u escape") end
      i = k + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        if i + 5 > #s then error(TRUNCATED, 0) end
        local lo = sub(s, i, i + 1) == "\\u" and tonumber(sub(s, i + 2, i + 5), 16)
        if lo and lo >= 0xDC00 and lo <= 0xDFFF then
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
          i = i + 6
        end
      end
      parts[#parts + 1] = utf8.char(cp)
    else
      local r = ESCAPES[e]
      if not r then bad_json(s, k, "bad escape") end
      parts[#parts + 1] = r
      i = k + 2
    end
  end
end

local LITERALS = { [116] = { "true", true }, [102] = { "false", false },
                   [110] = { "null", nil } }

local decode_value

local function decode_number(s, pos)
  local _, e = find(s, "^-?%d+", pos)
  if not e then bad_json(s, pos, "value expected") end
  local nxt = byte(s, e + 1)
  if nxt == nil then error(TRUNCATED, 0) end
  if nxt ~= 46 and nxt ~= 101 and nxt ~= 69 then -- no . e E: an integer
    local v = tonumber(sub(s, pos, e))
    return math.tointeger(v) or v, e + 1
  end
  local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  if pos + #num > #s then error(TRUNCATED, 0) end
  local v = tonumber(num)
  if v == nil then bad_json(s, pos, "bad number") end
  return v + 0.0, pos + #num
end

decode_value = function(s, pos)
  pos = skip_ws(s, pos)
  local c = byte(s, pos)
  if c == 34 then
    return decode_string(s, pos)
  elseif c == 123 then -- {
    local t = {}
    pos = skip_ws(s, pos + 1)
    if byte(s, pos) == 125 then return t, pos + 1 end
    while true do
      if byte(s, pos) ~= 34 then bad_json(s, pos, "object key expected") end
      local k
      k, pos = decode_string(s, pos)
      pos = skip_ws(s, pos)
      if byte(s, pos) ~= 58 then bad_json(s, pos, "':' expected") end
      t[k], pos = decode_value(s, pos + 1)
      pos = skip_ws(s, pos)
      c = byte(s, pos)
      if c == 125 then return t, pos + 1 end
      if c ~= 44 then bad_json(s, pos, "',' or '}' expected") end
      pos = skip_ws(s, pos + 1)
    end
  elseif c == 91 then -- [
    local t, n = {}, 0
    pos = skip_ws(s, pos + 1)
    if byte(s, pos) == 93 then return t, pos + 1 end
    while true do
      n = n + 1
      t[n], pos = decode_value(s, pos)
      pos = skip_ws(s, pos)
      c = byte(s, pos)
      if c == 93 then return t, pos + 1 end
      if c ~= 44 then bad_json(s, pos, "',' or ']' expected") end
      pos = pos + 1
    end
  elseif c == nil then
    error(TRUNCATED, 0)
  end
  local lit = LITERALS[c]
  if lit then
    local word = lit[1]
    if sub(s, pos, pos + #word - 1) ~= word then bad_json(s, pos, "value expected") end
    return lit[2], pos + #word
  end
  return decode_number(s, pos)
end

-- ---------------------------------------------------------------- export files

local CHUNK = 65536

--- Streams an export file, calling fn(kind, record) with each record of
-- data.kv_store (KV) and data.vector_embeddings.* (VEC), decoded, in file
-- order. Memory: one chunk plus one record. Outside the records only the
-- document's skeleton is tokenised.
local function each_record(path, fn)
  local f, err = io.open(path, "rb")
  if not f then fail("io", "cannot read %s: %s", path, tostring(err)) end
  local fh <close> = f
  local buf, pos = "", 1
  local stack, depth = {}, 0 -- containers: { obj = bool, key = last key }
  local expect_key = false
  local function more()
    if pos > 1 then
      buf = sub(buf, pos)
      pos = 1
    end
    -- at least double what is held, so a record longer than a chunk is
    -- decoded O(log n) times, not O(n)
    local chunk = fh:read(math.max(CHUNK, #buf))
    if not chunk then return false end
    buf = buf .. chunk
    return true
  end
  while true do
    local i = find(buf, '[{}%[%],"]', pos)
    if not i then
      pos = #buf + 1
      if not more() then break end
    else
      local c = byte(buf, i)
      local kind
      if c == 123 and depth >= 3 and stack[1].key == "data" then
        if depth == 3 and stack[2].key == "kv_store" and not stack[3].obj then
          kind = KV
        elseif depth == 4 and stack[2].key == "vector_embeddings" and stack[3].obj
            and not stack[4].obj then
          kind = VEC
        end
      end
      if kind then -- a record: decode it whole
        local ok, rec, after = pcall(decode_value, buf, i)
        if ok then
          pos = after
          expect_key = false
          fn(kind, rec)
        elseif rec == TRUNCATED then
          pos = i
          if not more() then fail("format", "export file %s is truncated", path) end
        else
          error(rec, 0)
        end
      elseif c == 34 then -- a string: find its end (skipping escapes)
        local j, k = i + 1, nil
        while true do
          k = find(buf, '["\\]', j)
          if not k or byte(buf, k) == 34 then break end
          j = k + 2
        end
        if not k then
          pos = i
          if not more() then fail("format", "export file %s is truncated", path) end
        else
          if expect_key and depth <= 3 then stack[depth].key = sub(buf, i + 1, k - 1) end
          expect_key = false
          pos = k + 1
        end
      else
        pos = i + 1
        if c == 123 or c == 91 then -- { [
          depth = depth + 1
          stack[depth] = { obj = c == 123 }
          expect_key = c == 123
        elseif c == 125 or c == 93 then -- } ]
          stack[depth] = nil
          depth = depth - 1
          expect_key = false
        else -- ,
          expect_key = depth > 0 and stack[depth].obj
        end
      end
    end
  end
  if depth ~= 0 then fail("format", "export file %s is truncated", path) end
end

local function us_to_s(us)
  if us == nil then return nil end
  return us / 1e6
end

-- Values and vectors stay base64 until needed: two exports compare their
-- base64 text (the exporter's encoding is canonical), and only the API
-- path and lookups decode.
local function kv_from_record(r)
  return { kind = KV, key = r.key, b64 = r.value or "", expires_at = us_to_s(r.expires_at),
           ttl_known = true, kv_id = r.kv_id, metadata = r.metadata,
           created_us = r.created_at, updated_us = r.updated_at }
end

local function vec_from_record(r)
  return { kind = VEC, dim = r.dimension, collection = r.collection or
             ("vectors_" .. tostring(r.dimension)), id = r.id,
           vb64 = r.embedding or "", metadata = r.metadata or {},
           scope = r.scope or "global", event_time = us_to_s(r.event_time),
           expires_at = us_to_s(r.expires_at), created_us = r.created_at,
           updated_us = r.updated_at }
end

--- A key-value entry's value (bytes).
local function value_of(e)
  if e.value == nil then e.value = b64decode(e.b64) end
  return e.value
end

--- A vector entry's vector (packed little-endian float32).
local function vector_of(e)
  if e.vector == nil then e.vector = b64decode(e.vb64) end
  return e.vector
end

local function pack_vector(v)
  if type(v) == "string" then return v end
  return string.pack("<" .. string.rep("f", #v), table.unpack(v))
end

local function vec_from_get(name, dim, e)
  return { kind = VEC, dim = dim, collection = name, id = e.id, vector = pack_vector(e.vector),
           metadata = e.metadata or {}, scope = e.scope or "global", event_time = e.event_time,
           expires_at = e.expires_at }
end

-- ---------------------------------------------------------------- readers

--- Order of entries: key-value entries by key, then vectors by
-- (dimension, collection, id), all bytewise: the export file's order.
local function order(a, b)
  if a.kind ~= b.kind then return a.kind < b.kind and -1 or 1 end
  if a.kind == KV then return cmp_bytes(a.key, b.key) end
  if a.dim ~= b.dim then return a.dim < b.dim and -1 or 1 end
  local c = cmp_bytes(a.collection, b.collection)
  if c ~= 0 then return c end
  return cmp_bytes(a.id, b.id)
end

local function collection_infos(h, names)
  local list = h:list_collections()
  local wanted = names and set_of(names)
  local out, by_name = {}, {}
  for _, c in ipairs(list) do
    if not wanted or wanted[c.name] then
      out[#out + 1] = c
      by_name[c.name] = c
    end
  end
  return out, by_name
end

--- The entries of a handle not backed by an exporter: keys through scan
-- (TTLs unknown), vectors of each collection through an exact search
-- (at most MAX_ENUMERATE per collection) and col:get.
local function api_entries(h, sel, emit)
  if sel.kv then
    for k, v in h:scan(sel.prefix) do emit({ kind = KV, key = k, value = v }) end
  end
  if not sel.vectors then return end
  local infos = collection_infos(h, sel.collections)
  table.sort(infos, function(a, b)
    if a.dimension ~= b.dimension then return a.dimension < b.dimension end
    return cmp_bytes(a.name, b.name) < 0
  end)
  for _, info in ipairs(infos) do
    if info.count > MAX_ENUMERATE then
      fail("invalid", "collection %s has %d entries: a handle that is not a store can only "
           .. "be read up to %d per collection (use store handles)", info.name, info.count,
           MAX_ENUMERATE)
    end
    if info.count > 0 then
      local col = h:collection(info.name)
      local q = {}
      for i = 1, info.dimension do q[i] = 1.0 end
      local hits = col:search(q, { k = info.count, strategy = "exact", exclude_expired = false,
                                   include_metadata = false })
      local ids = {}
      for i, hit in ipairs(hits) do ids[i] = hit.id end
      table.sort(ids, function(a, b) return cmp_bytes(a, b) < 0 end)
      for _, id in ipairs(ids) do
        local e = col:get(id, { exclude_expired = false })
        if e then emit(vec_from_get(info.name, info.dimension, e)) end
      end
    end
  end
end

--- Opens an ordered reader over what handle `h` holds (selection `sel`:
-- kv, vectors, prefix, collections). Store handles are read through one
-- export to a temporary file, streamed; others through the API. Returns a
-- reader: `r:next()` gives the next entry or nil; `r:close()` (also
-- to-be-closed) removes the file.
local Reader = {}
Reader.__index = Reader

local function open_reader(h, sel, side, tmpdir)
  local r = setmetatable({ side = side, count = 0 }, Reader)
  local producer
  if is_store(h) then
    r.tmp = temp_file(tmpdir)
    local exp = on_side(side, core.exporter, h)
    local ok, stats = pcall(exp.to_file, exp, r.tmp.path, export_selection(sel, false))
    exp:close()
    if not ok then
      remove_temp(r.tmp)
      error(tag(stats, side), 0)
    end
    r.export_stats = stats
    local path = r.tmp.path
    producer = function()
      each_record(path, function(kind, rec)
        if kind == KV and not sel.kv then return end
        coroutine.yield(kind == KV and kv_from_record(rec) or vec_from_record(rec))
      end)
    end
  else
    producer = function() api_entries(h, sel, coroutine.yield) end
  end
  r.co = coroutine.create(producer)
  return r
end

-- The next entry in order, or nil at the end; checks the order.
function Reader:next()
  if not self.co then return nil end
  local ok, e = coroutine.resume(self.co)
  if not ok then
    self.co = nil
    error(tag(e, self.side), 0)
  end
  if e == nil then
    self.co = nil
    return nil
  end
  if self.last and order(self.last, e) >= 0 then
    fail("io", "%s: entries out of order after %s", self.side,
         e.kind == KV and ("key " .. e.key) or ("vector " .. e.id))
  end
  self.last = e
  self.count = self.count + 1
  return e
end

-- Stops reading and removes the temporary file. Idempotent.
function Reader:close()
  if self.co then
    coroutine.close(self.co)
    self.co = nil
  end
  remove_temp(self.tmp)
  self.tmp = nil
end

Reader.__close = Reader.close

-- ---------------------------------------------------------------- copy

local COPY_OPTS = set_of { "prefix", "collections", "components", "batch_size", "progress",
                           "on_conflict", "dry_run", "method", "tmpdir" }

local function copy_export(src, dst, o)
  local tmp <close> = temp_file(o.tmpdir)
  local t0 = clock()
  local progress = o.progress
  local exp = on_side("source", core.exporter, src)
  local eopts = export_selection(o, o.sections)
  if progress then
    eopts.progress = function(done, total, phase)
      progress(done, total, "export " .. tostring(phase))
    end
  end
  local est = on_side("source", exp.to_file, exp, tmp.path, eopts)
  exp:close()
  local imp = on_side("target", core.importer, dst)
  local iopts = { on_conflict = o.on_conflict, dry_run = o.dry_run, batch_size = o.batch_size }
  if progress then
    iopts.progress = function(done, total, phase, bytes, bytes_total)
      progress(done, total, "import " .. tostring(phase), bytes, bytes_total)
    end
  end
  local ist = on_side("target", imp.from_file, imp, tmp.path, iopts)
  imp:close()
  return { kv_entries = ist.kv_entries or 0, vectors = ist.vectors or 0,
           collections = ist.collections or 0, skipped = ist.skipped or 0,
           method = "export", dry_run = o.dry_run, export = est, import = ist,
           seconds = clock() - t0 }
end

--- Makes sure dst has every selected collection of src (same dimension
-- and metric); returns the number of collections.
local function ensure_collections(src, dst, o)
  local infos = on_side("source", collection_infos, src, o.collections)
  local _, have = on_side("target", collection_infos, dst, nil)
  for _, c in ipairs(infos) do
    local d = have[c.name]
    if d then
      if d.dimension ~= c.dimension or d.metric ~= c.metric then
        error(tag(core.error("conflict", format(
          "collection %s is %d-d %s in the target, %d-d %s in the source", c.name,
          d.dimension, d.metric, c.dimension, c.metric)), "target"), 0)
      end
    elseif not o.dry_run then
      on_side("target", dst.create_collection, dst, c.name, {
        dimension = c.dimension, metric = c.metric, m = c.m,
        ef_construction = c.ef_construction, ef_search = c.ef_search })
    end
  end
  return #infos
end

local function copy_api(src, dst, o)
  local t0 = clock()
  local counts = { kv_entries = 0, vectors = 0, collections = 0, skipped = 0, expired = 0,
                   method = "api", dry_run = o.dry_run }
  if o.vectors then counts.collections = ensure_collections(src, dst, o) end
  local progress = o.progress
  local reader <close> = open_reader(src, o, "source", o.tmpdir)
  local ops, vbatch, vcol, vname = {}, {}, nil, nil

  local function flush_kv()
    if #ops == 0 then return end
    if o.on_conflict ~= "replace" then
      local keys = {}
      for i, op in ipairs(ops) do keys[i] = op.key end
      local have = on_side("target", dst.get_batch, dst, keys)
      local kept = {}
      for _, op in ipairs(ops) do
        if have[op.key] == nil then
          kept[#kept + 1] = op
        elseif o.on_conflict == "error" then
          error(tag(core.error("conflict", "key exists in the target: " .. op.key), "target"), 0)
        else
          counts.skipped = counts.skipped + 1
        end
      end
      ops = kept
    end
    if #ops > 0 and not o.dry_run then
      local now = clock()
      for _, op in ipairs(ops) do
        if op.expires_at then op.ttl, op.expires_at = math.max(op.expires_at - now, 1e-3), nil end
      end
      on_side("target", dst.batch, dst, ops)
    end
    counts.kv_entries = counts.kv_entries + #ops
    if progress then progress(counts.kv_entries, nil, "copy kv_store") end
    ops = {}
  end

  local function flush_vec()
    if #vbatch == 0 then return end
    if not vcol and not o.dry_run then vcol = on_side("target", dst.collection, dst, vname) end
    if o.on_conflict == "skip" and vcol then
      local kept = {}
      for _, e in ipairs(vbatch) do
        if on_side("target", vcol.get, vcol, e.id, { exclude_expired = false }) == nil then
          kept[#kept + 1] = e
        else
          counts.skipped = counts.skipped + 1
        end
      end
      vbatch = kept
    end
    if #vbatch > 0 and not o.dry_run then
      local write = o.on_conflict == "error" and vcol.add or vcol.upsert
      on_side("target", write, vcol, vbatch)
    end
    counts.vectors = counts.vectors + #vbatch
    if progress then progress(counts.vectors, nil, "copy vector_embeddings") end
    vbatch = {}
  end

  while true do
    local e = reader:next()
    if not e then break end
    if e.kind == KV then
      if e.expires_at and e.expires_at <= clock() then
        counts.expired = counts.expired + 1
      else
        ops[#ops + 1] = { op = "set", key = e.key, value = value_of(e),
                           expires_at = e.expires_at }
        if #ops >= o.batch_size then flush_kv() end
      end
    else
      if e.collection ~= vname then
        flush_vec()
        vname, vcol = e.collection, nil
      end
      vbatch[#vbatch + 1] = { id = e.id, vector = vector_of(e), metadata = e.metadata,
                              scope = e.scope, event_time = e.event_time,
                              expires_at = e.expires_at }
      if #vbatch >= o.batch_size then flush_vec() end
    end
  end
  flush_kv()
  flush_vec()
  counts.seconds = clock() - t0
  return counts
end

--- Copies one store's data into another.
--
-- Key-value entries (in key order), vector collections with their
-- parameters (dimension, metric, m, ef_construction, ef_search; empty
-- ones too) and entries (vectors, metadata, scopes, event times, expiry),
-- and the export file's passthrough sections, in bounded memory. See the
-- module comment for what each `method` carries.
--
--    local counts = migrate.copy(src, dst, { batch_size = 500,
--      progress = function(done, total, phase) print(phase, done, total) end })
--
-- @param src the source: a store handle (or, with method "api", any handle
--   with `scan`, `list_collections` and `collection`)
-- @param dst the target: a store handle (or any handle with `batch`,
--   `get_batch`, `create_collection` and `collection`)
-- @tparam[opt] table opts `prefix` (keys starting with it), `collections`
--   (array of names; default all), `components` (array of `"kv"`,
--   `"vectors"`, `"sections"`; default all), `batch_size` (records per
--   write, default 1000), `on_conflict` (`"replace"` default, `"skip"`,
--   `"error"`), `dry_run` (read and check everything, write nothing),
--   `method` (`"auto"` default, `"export"`, `"api"`), `tmpdir` (for the
--   temporary file; default `$TMPDIR`, else /tmp), `progress =
--   function(done, total, phase [, bytes, bytes_total])` (phases
--   `"export kv_store"`, `"import vector_embeddings"`, ..., or
--   `"copy kv_store"` on the API path)
-- @treturn table counts: `{ kv_entries=, vectors=, collections=, skipped=,
--   method=, dry_run=, seconds= }`, plus `export` and `import` (the
--   exporter's and importer's stats) on the export path and `expired`
--   (keys that expired in flight) on the API path
-- @raise bad argument for wrong options; error objects with `side` =
--   `"source"` or `"target"` (e.g. `conflict` with `on_conflict = "error"`,
--   or a collection whose dimension differs in the target)
function migrate.copy(src, dst, opts)
  check_handle(src, 1, "copy")
  check_handle(dst, 2, "copy")
  local o = check_opts(opts, 3, "copy", COPY_OPTS)
  local comp = opt_components(o, 3, "copy")
  local c = {
    prefix = opt_prefix(o, 3, "copy"), collections = opt_names(o, 3, "copy"),
    kv = comp.kv, vectors = comp.vectors, sections = comp.sections == true,
    batch_size = opt_batch(o, 3, "copy"),
    progress = opt_type(o, "progress", "function", 3, "copy"),
    on_conflict = opt_enum(o, "on_conflict", { "replace", "skip", "error" }, "replace", 3,
                           "copy"),
    dry_run = opt_type(o, "dry_run", "boolean", 3, "copy") == true,
    tmpdir = opt_type(o, "tmpdir", "string", 3, "copy"),
  }
  local method = opt_enum(o, "method", { "auto", "export", "api" }, "auto", 3, "copy")
  if method == "auto" then
    method = (is_store(src) and is_store(dst)) and "export" or "api"
  elseif method == "export" and not (is_store(src) and is_store(dst)) then
    argerror(is_store(src) and 2 or 1, "copy", "method 'export' needs store handles")
  end
  if method == "export" then return copy_export(src, dst, c) end
  return copy_api(src, dst, c)
end

-- ---------------------------------------------------------------- verify

local VERIFY_OPTS = set_of { "prefix", "collections", "components", "sample", "allow_extra",
                             "values", "strict", "ttl_tolerance", "limit", "batch_size",
                             "progress", "tmpdir" }

local PARAMS = { "dimension", "metric", "m", "ef_construction", "ef_search" }

local function same(a, b)
  local ta = type(a)
  if ta ~= type(b) then return false end
  if ta == "number" then
    return math.type(a) == math.type(b) and (a == b or (a ~= a and b ~= b))
  end
  if ta ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function close_times(a, b, tol)
  if a == nil or b == nil then return a == b end
  return math.abs(a - b) <= tol
end

--- The fields in which two entries of the same key or id differ (nil when
-- none).
local function differences(a, b, cfg)
  local d = {}
  if a.kind == KV then
    if cfg.values then
      local differ
      if a.b64 and b.b64 then differ = a.b64 ~= b.b64 else differ = value_of(a) ~= value_of(b) end
      if differ then d[#d + 1] = "value" end
    end
    if cfg.values and a.ttl_known and b.ttl_known
        and not close_times(a.expires_at, b.expires_at, cfg.ttl_tolerance) then
      d[#d + 1] = "ttl"
    end
    if cfg.strict and a.ttl_known and b.ttl_known then
      if a.kv_id ~= b.kv_id then d[#d + 1] = "kv_id" end
      if not same(a.metadata, b.metadata) then d[#d + 1] = "metadata" end
      if a.created_us ~= b.created_us then d[#d + 1] = "created_at" end
      if a.updated_us ~= b.updated_us then d[#d + 1] = "updated_at" end
    end
  elseif cfg.values then
    local differ
    if a.vb64 and b.vb64 then
      differ = a.vb64 ~= b.vb64
    else
      differ = vector_of(a) ~= vector_of(b)
    end
    if differ then d[#d + 1] = "vector" end
    if not same(a.metadata, b.metadata) then d[#d + 1] = "metadata" end
    if a.scope ~= b.scope then d[#d + 1] = "scope" end
    if not close_times(a.event_time, b.event_time, 1e-3) then d[#d + 1] = "event_time" end
    if not close_times(a.expires_at, b.expires_at, 1e-3) then d[#d + 1] = "expires_at" end
    if cfg.strict and a.created_us and b.created_us then
      if a.created_us ~= b.created_us then d[#d + 1] = "created_at" end
      if a.updated_us ~= b.updated_us then d[#d + 1] = "updated_at" end
    end
  end
  if #d == 0 then return nil end
  return d
end

local function count_keys(h, prefix)
  if not prefix then return h:stats().keys end
  local n = 0
  for _ in h:scan(prefix) do n = n + 1 end
  return n
end

--- What a handle holds within the selection: keys, collections and
-- their parameters.
local function census(h, sel, side)
  local c = { keys = 0, vectors = 0, collections = {}, params = {} }
  if sel.kv then c.keys = on_side(side, count_keys, h, sel.prefix) end
  if sel.vectors then
    local infos = on_side(side, collection_infos, h, sel.collections)
    for _, info in ipairs(infos) do
      c.collections[info.name] = info.count
      c.params[info.name] = info
      c.vectors = c.vectors + info.count
    end
  end
  return c
end

local function new_section()
  return { checked = 0, missing = 0, extra = 0, different = 0, mismatches = {} }
end

--- Compares what two stores hold.
--
-- Counts (keys, collections, vectors per collection), each collection's
-- parameters, and every entry: key-value values (and, when both sides are
-- store handles, TTLs as absolute expiry times), vectors by id (vector
-- bytes, metadata, scope, event time, expiry). With `sample = n`, only n
-- keys and n vectors per collection, evenly spaced in key/id order (the
-- same ones every time) are compared; counts are always complete. Memory
-- stays bounded: both sides are read as ordered streams.
--
--    local ok, report = migrate.verify(src, dst, { sample = 100 })
--    for _, m in ipairs(report.kv.mismatches) do print(m.key, m.reason) end
--
-- @param src the reference handle
-- @param dst the handle checked against it
-- @tparam[opt] table opts `sample` (n, or nil/0: everything), `prefix`,
--   `collections`, `components` (as for copy), `allow_extra` (the target
--   may hold more keys, entries and collections; default false), `values`
--   (false: compare presence only, e.g. after `on_conflict = "skip"`;
--   default true), `strict` (also kv_id, key-value metadata, created_at
--   and updated_at: what the export path keeps), `ttl_tolerance` (seconds,
--   default 2: the API path writes remaining TTLs), `limit` (mismatches
--   listed per section, default 100; all are counted), `batch_size`,
--   `tmpdir`, `progress = function(done, total, phase)`
-- @treturn boolean true when nothing differs
-- @treturn table report: `{ ok=, mode = "full"|"sample", counts = { source =
--   { keys=, vectors=, collections = { name = n } }, target = {...} },
--   collections = { missing = {names}, extra = {names}, different = { {
--   name=, field=, source=, target= } } }, kv = { checked=, missing=,
--   extra=, different=, mismatches = { { key=, reason = "missing"|"extra"|
--   "different", fields = {...}, source_bytes=, target_bytes= } } },
--   vectors = { ..., mismatches = { { collection=, id=, reason=, fields= }
--   } }, problems = { "one line each" }, truncated= }`
-- @raise error objects with `side` = `"source"` or `"target"`
function migrate.verify(src, dst, opts)
  check_handle(src, 1, "verify")
  check_handle(dst, 2, "verify")
  local o = check_opts(opts, 3, "verify", VERIFY_OPTS)
  local comp = opt_components(o, 3, "verify")
  local sample = o.sample
  if sample ~= nil and (math.type(sample) ~= "integer" or sample < 0) then
    argerror(3, "verify", "option 'sample' must be a non-negative integer")
  end
  if sample == 0 then sample = nil end
  local limit = o.limit or 100
  if math.type(limit) ~= "integer" or limit < 0 then
    argerror(3, "verify", "option 'limit' must be a non-negative integer")
  end
  local tol = o.ttl_tolerance or 2
  if type(tol) ~= "number" or tol < 0 then
    argerror(3, "verify", "option 'ttl_tolerance' must be a non-negative number")
  end
  local sel = { kv = comp.kv, vectors = comp.vectors, prefix = opt_prefix(o, 3, "verify"),
                collections = opt_names(o, 3, "verify") }
  local cfg = { values = opt_type(o, "values", "boolean", 3, "verify") ~= false,
                strict = opt_type(o, "strict", "boolean", 3, "verify") == true,
                allow_extra = opt_type(o, "allow_extra", "boolean", 3, "verify") == true,
                ttl_tolerance = tol }
  local batch_size = opt_batch(o, 3, "verify")
  local progress = opt_type(o, "progress", "function", 3, "verify")
  local tmpdir = opt_type(o, "tmpdir", "string", 3, "verify")

  local report = { mode = sample and "sample" or "full", sample = sample,
                   collections = { missing = {}, extra = {}, different = {} },
                   kv = new_section(), vectors = new_section(), problems = {},
                   truncated = false }
  local problems = report.problems
  local function problem(fmt, ...) problems[#problems + 1] = format(fmt, ...) end

  -- counts and parameters
  local sc, dc = census(src, sel, "source"), census(dst, sel, "target")
  report.counts = {
    source = { keys = sc.keys, vectors = sc.vectors, collections = sc.collections },
    target = { keys = dc.keys, vectors = dc.vectors, collections = dc.collections },
  }
  local function count_ok(a, b) return a == b or (cfg.allow_extra and b > a) end
  if sel.kv and not count_ok(sc.keys, dc.keys) then
    problem("keys: source %d, target %d", sc.keys, dc.keys)
  end
  local names = {}
  for name in pairs(sc.params) do names[#names + 1] = name end
  table.sort(names, function(a, b) return cmp_bytes(a, b) < 0 end)
  for _, name in ipairs(names) do
    local a, b = sc.params[name], dc.params[name]
    if not b then
      table.insert(report.collections.missing, name)
      problem("collection %s: missing in the target", name)
    else
      for _, f in ipairs(PARAMS) do
        if a[f] ~= b[f] then
          table.insert(report.collections.different,
                       { name = name, field = f, source = a[f], target = b[f] })
          problem("collection %s: %s is %s in the source, %s in the target", name, f,
                  tostring(a[f]), tostring(b[f]))
        end
      end
      if not count_ok(a.count, b.count) then
        table.insert(report.collections.different,
                     { name = name, field = "count", source = a.count, target = b.count })
        problem("collection %s: %d vectors in the source, %d in the target", name,
                a.count, b.count)
      end
    end
  end
  if sel.collections then
    local have = {}
    for _, n in ipairs(names) do have[n] = true end
    for _, n in ipairs(sel.collections) do
      if not have[n] then problem("collection %s: missing in the source", n) end
    end
  end
  if not cfg.allow_extra then
    local extra = {}
    for name in pairs(dc.params) do
      if not sc.params[name] then extra[#extra + 1] = name end
    end
    table.sort(extra, function(a, b) return cmp_bytes(a, b) < 0 end)
    for _, name in ipairs(extra) do
      table.insert(report.collections.extra, name)
      problem("collection %s: only in the target", name)
    end
  end

  -- entries
  local function mismatch(e, reason, fields, other)
    local sec = e.kind == KV and report.kv or report.vectors
    sec[reason] = sec[reason] + 1
    if #sec.mismatches >= limit then
      report.truncated = true
      return
    end
    local m = { reason = reason, fields = fields }
    if e.kind == KV then
      m.key = e.key
      if reason == "different" then
        m.source_bytes, m.target_bytes = #value_of(e), #value_of(other)
      end
    else
      m.collection, m.id = e.collection, e.id
    end
    sec.mismatches[#sec.mismatches + 1] = m
  end
  local function compare(a, b)
    local sec = a.kind == KV and report.kv or report.vectors
    sec.checked = sec.checked + 1
    if not b then return mismatch(a, "missing") end
    local d = differences(a, b, cfg)
    if d then mismatch(a, "different", d, b) end
    if progress and sec.checked % 1000 == 0 then
      progress(sec.checked, nil, a.kind == KV and "verify kv_store"
                                 or "verify vector_embeddings")
    end
  end

  -- each side reads the selected collections it has (a missing one is
  -- reported above, not an error)
  local function side_sel(params)
    if not sel.collections then return sel end
    local present = {}
    for _, n in ipairs(sel.collections) do
      if params[n] then present[#present + 1] = n end
    end
    return { kv = sel.kv, vectors = sel.vectors, prefix = sel.prefix, collections = present }
  end
  local rs <close> = open_reader(src, side_sel(sc.params), "source", tmpdir)
  if not sample then
    local rd <close> = open_reader(dst, side_sel(dc.params), "target", tmpdir)
    local a, b = rs:next(), rd:next()
    while a or b do
      local c = (b == nil) and -1 or (a == nil) and 1 or order(a, b)
      if c < 0 then
        compare(a, nil)
        a = rs:next()
      elseif c > 0 then
        if not cfg.allow_extra then mismatch(b, "extra") end
        b = rd:next()
      else
        compare(a, b)
        a, b = rs:next(), rd:next()
      end
    end
  else
    -- evenly spaced picks: the i-th of n is taken when floor(i*k/n) steps
    local seen, pending, vpending = {}, {}, {}
    local open_cols = {}
    local function flush_kv()
      if #pending == 0 then return end
      local keys = {}
      for i, e in ipairs(pending) do keys[i] = e.key end
      local got = on_side("target", dst.get_batch, dst, keys)
      for _, e in ipairs(pending) do
        local v = got[e.key]
        compare(e, v ~= nil and { kind = KV, key = e.key, value = v } or nil)
      end
      pending = {}
    end
    local function flush_vec()
      if #vpending == 0 then return end
      local name = vpending[1].collection
      local col = open_cols[name]
      if col == nil then
        local ok, c = pcall(dst.collection, dst, name)
        if not ok and not (core.is_error(c) and c.code == "not_found") then
          error(tag(c, "target"), 0)
        end
        col = ok and c or false
        open_cols = { [name] = col }
      end
      for _, e in ipairs(vpending) do
        local g = col and on_side("target", col.get, col, e.id, { exclude_expired = false })
        compare(e, g and vec_from_get(name, e.dim, g) or nil)
      end
      vpending = {}
    end
    while true do
      local e = rs:next()
      if not e then break end
      local group = e.kind == KV and "" or e.collection
      local total = e.kind == KV and sc.keys or (sc.collections[group] or 0)
      local i = (seen[group] or 0) + 1
      seen[group] = i
      if total > 0 and (i * sample) // total > ((i - 1) * sample) // total
          or (total == 0 and i <= sample) then
        if e.kind == KV then
          pending[#pending + 1] = e
          if #pending >= batch_size then flush_kv() end
        else
          if #vpending > 0 and vpending[1].collection ~= e.collection then flush_vec() end
          vpending[#vpending + 1] = e
          if #vpending >= batch_size then flush_vec() end
        end
      end
    end
    flush_kv()
    flush_vec()
  end

  for _, pair in ipairs { { "kv", "key" }, { "vectors", "vector" } } do
    local sec, what = report[pair[1]], pair[2]
    local function n_of(n) return format("%d %s%s", n, what, n == 1 and "" or "s") end
    if sec.missing > 0 then problem("%s missing in the target", n_of(sec.missing)) end
    if sec.extra > 0 then problem("%s only in the target", n_of(sec.extra)) end
    if sec.different > 0 then
      problem("%s %s", n_of(sec.different), sec.different == 1 and "differs" or "differ")
    end
  end
  report.ok = #problems == 0
  return report.ok, report
end

-- ---------------------------------------------------------------- dual write

local Dual = { __name = "llmspell.storage.migrate.DualWrite" }
Dual.__index = Dual
local DualCollection = { __name = "llmspell.storage.migrate.DualCollection" }
DualCollection.__index = DualCollection

local READ_MODES = { "primary", "secondary", "fallback" }
local DUAL_OPTS = set_of { "read", "on_secondary_error", "log", "own", "write" }

local function default_log(err, op)
  io.stderr:write(format("llmspell.storage.migrate: secondary %s failed: %s\n", op,
                         tostring(err)))
end

--- A side's failure as an error object that says which side and which
-- operation failed; other values (bad-argument strings) pass unchanged.
local function side_error(e, side, op)
  if not core.is_error(e) then return e end
  local fields = { side = side, context = side, op = op, cause = e, backend = e.backend,
                   sqlstate = e.sqlstate, sqlite_code = e.sqlite_code }
  return core.error(e.code, format("%s %s failed: %s", side, op, tostring(e.message)), fields)
end

local function check_dual(self)
  if self._closed then fail("closed", "dual-write handle is closed") end
end

--- Handles a failure of the secondary side: raises (mode "raise") or logs
-- and counts it (mode "log").
local function secondary_failed(self, e, op)
  self._stats.secondary_errors = self._stats.secondary_errors + 1
  local err = side_error(e, "secondary", op)
  self._stats.last_secondary_error = err
  if self._on_error == "raise" then error(err, 0) end
  if self._log then self._log(err, op) end
end

--- Runs a write on the primary (raising on failure) and then, unless
-- writes go to the primary only, on the secondary.
local function dual_write_op(self, p, s, op, ...)
  local r = table.pack(pcall(p[op], p, ...))
  if not r[1] then error(side_error(r[2], "primary", op), 0) end
  if self._write == "both" then
    local ok, e = pcall(s[op], s, ...)
    if not ok then secondary_failed(self, e, op) end
  end
  self._stats.writes = self._stats.writes + 1
  return table.unpack(r, 2, r.n)
end

--- Runs a read per the read mode. `miss(result)` tells a miss; in
-- fallback mode a miss or a library error on the primary asks the
-- secondary; `merge(primary_result, ...)` may combine both (optional).
local function dual_read(self, p, s, op, miss, merge, ...)
  local mode = self._read
  if mode == "primary" then
    local r = table.pack(pcall(p[op], p, ...))
    if not r[1] then error(side_error(r[2], "primary", op), 0) end
    return table.unpack(r, 2, r.n)
  elseif mode == "secondary" then
    local r = table.pack(pcall(s[op], s, ...))
    if not r[1] then error(side_error(r[2], "secondary", op), 0) end
    return table.unpack(r, 2, r.n)
  end
  local r = table.pack(pcall(p[op], p, ...))
  if not r[1] and not core.is_error(r[2]) then error(r[2], 0) end -- a bad argument
  if r[1] and not miss(r[2]) then return table.unpack(r, 2, r.n) end
  self._stats.fallbacks = self._stats.fallbacks + 1
  local r2 = table.pack(pcall(s[op], s, ...))
  if r2[1] then
    if r[1] and merge then return merge(r[2], r2[2], ...) end
    return table.unpack(r2, 2, r2.n)
  end
  if not r[1] then error(side_error(r[2], "primary", op), 0) end
  secondary_failed(self, r2[2], op) -- raises in "raise" mode
  return table.unpack(r, 2, r.n)
end

--- Writes to two stores at once and reads from one or both: the seeds'
-- five-phase hot swap of a backend without downtime.
--
-- Every write (set, delete, the batches, clear, collection writes) goes to
-- `primary` first and then to `secondary`. A primary failure raises and
-- leaves the secondary untouched. A secondary failure (after the primary
-- has written) raises by default an error object with the same `code`,
-- `side = "secondary"`, `op` and `cause` (the original error), so the
-- caller can retry or repair; with `on_secondary_error = "log"` it is
-- logged and counted (`h:dual_stats()`) and the write succeeds.
-- `transaction` runs the function inside a transaction on each side
-- (secondary outside, primary inside): an error rolls both back; the
-- primary commits first, then the secondary (a failure of that last
-- commit is a secondary failure as above).
--
-- Reads follow `read`: `"primary"`, `"secondary"`, or `"fallback"` (the
-- primary, then the secondary when the primary errors or misses: `get`
-- nil, `exists` false, keys absent from `get_batch`; `list_keys` and
-- `scan` then give the union of both, in key order, the primary's value
-- winning).
--
-- The five phases, with `h = migrate.dual_write(new, old, { read =
-- "secondary" })`: 1. writes go to both, reads to the old store, while
-- `migrate.copy(old, new, { on_conflict = "skip" })` backfills and
-- `migrate.verify` checks; 2. `h:set_read("fallback")`: the new store,
-- falling back to the old; 3. `h:set_read("primary")`; 4.
-- `h:set_write("primary")`: stop writing the old store; 5. use the new
-- store alone and close the old one.
--
-- @param primary a store handle (or anything with the store API)
-- @param secondary a store handle
-- @tparam[opt] table opts `read` (`"primary"` default, `"secondary"`,
--   `"fallback"`), `on_secondary_error` (`"raise"` default or `"log"`),
--   `log = function(err, op)` (default: a line on stderr; false: silent),
--   `write` (`"both"` default, `"primary"`), `own` (close both stores
--   when the handle closes; default false)
-- @treturn table the handle: the whole key-value and collection API of a
--   store, plus `set_read(mode)`, `set_write(mode)`, `swap()`,
--   `primary()`, `secondary()`, `dual_stats()`
function migrate.dual_write(primary, secondary, opts)
  check_handle(primary, 1, "dual_write")
  check_handle(secondary, 2, "dual_write")
  local o = check_opts(opts, 3, "dual_write", DUAL_OPTS)
  local log = o.log
  if log == nil then log = default_log end
  if log ~= false and type(log) ~= "function" then
    argerror(3, "dual_write", "option 'log': function or false expected")
  end
  return setmetatable({
    _p = primary, _s = secondary,
    _read = opt_enum(o, "read", READ_MODES, "primary", 3, "dual_write"),
    _write = opt_enum(o, "write", { "both", "primary" }, "both", 3, "dual_write"),
    _on_error = opt_enum(o, "on_secondary_error", { "raise", "log" }, "raise", 3,
                         "dual_write"),
    _log = log or nil,
    _own = opt_type(o, "own", "boolean", 3, "dual_write") == true,
    _stats = { writes = 0, fallbacks = 0, secondary_errors = 0 },
    _closed = false,
  }, Dual)
end

--- Changes the read mode (`"primary"`, `"secondary"`, `"fallback"`).
-- @tparam string mode
function Dual:set_read(mode)
  check_dual(self)
  if mode == nil then argerror(1, "set_read", "read mode expected") end
  self._read = opt_enum({ read = mode }, "read", READ_MODES, nil, 1, "set_read")
end

--- Changes where writes go: `"both"` or `"primary"` (phase 4: stop
-- writing the old store).
-- @tparam string mode
function Dual:set_write(mode)
  check_dual(self)
  if mode == nil then argerror(1, "set_write", "write mode expected") end
  self._write = opt_enum({ write = mode }, "write", { "both", "primary" }, nil, 1, "set_write")
end

--- Swaps the roles of the two stores (the secondary becomes the primary).
function Dual:swap()
  check_dual(self)
  self._p, self._s = self._s, self._p
end

--- The primary store. @return the handle
function Dual:primary() return self._p end

--- The secondary store. @return the handle
function Dual:secondary() return self._s end

--- Counters: `{ writes=, fallbacks=, secondary_errors=,
-- last_secondary_error=, read=, write= }`.
-- @treturn table
function Dual:dual_stats()
  local t = {}
  for k, v in pairs(self._stats) do t[k] = v end
  t.read, t.write, t.on_secondary_error = self._read, self._write, self._on_error
  return t
end

local function is_nil(v) return v == nil end
local function is_false(v) return not v end
local function never() return false end

local function merge_sorted(a, b)
  local out, i, j = {}, 1, 1
  while i <= #a or j <= #b do
    local c = (j > #b) and -1 or (i > #a) and 1 or cmp_bytes(a[i], b[j])
    if c <= 0 then
      out[#out + 1] = a[i]
      i = i + 1
      if c == 0 then j = j + 1 end
    else
      out[#out + 1] = b[j]
      j = j + 1
    end
  end
  return out
end

--- `value = h:get(key)` per the read mode.
function Dual:get(key)
  check_dual(self)
  return dual_read(self, self._p, self._s, "get", is_nil, nil, key)
end

--- `bool = h:exists(key)` per the read mode.
function Dual:exists(key)
  check_dual(self)
  return dual_read(self, self._p, self._s, "exists", is_false, nil, key)
end

--- `map = h:get_batch(keys)`; in fallback mode keys the primary lacks are
-- asked of the secondary.
function Dual:get_batch(keys)
  check_dual(self)
  local function miss(m)
    for _, k in ipairs(keys) do
      if m[k] == nil then return true end
    end
    return false
  end
  local function merge(pm, sm)
    for k, v in pairs(sm) do
      if pm[k] == nil then pm[k] = v end
    end
    return pm
  end
  return dual_read(self, self._p, self._s, "get_batch", miss, merge, keys)
end

--- `keys = h:list_keys([prefix])`; fallback mode: the union of both.
function Dual:list_keys(prefix)
  check_dual(self)
  local function always() return true end
  return dual_read(self, self._p, self._s, "list_keys", always, merge_sorted, prefix)
end

--- `for k, v in h:scan([prefix])`; fallback mode: the union of both, in
-- key order, the primary's value winning.
function Dual:scan(prefix)
  check_dual(self)
  if self._read ~= "fallback" then
    local side = self._read
    local h = side == "primary" and self._p or self._s
    return on_side(side, h.scan, h, prefix)
  end
  local p, s = self._p, self._s
  local okp, pf, ps, pc, pclose = pcall(p.scan, p, prefix)
  if not okp then
    if not core.is_error(pf) then error(pf, 0) end
    self._stats.fallbacks = self._stats.fallbacks + 1
    return on_side("secondary", s.scan, s, prefix)
  end
  local oks, sf, ss, sc, sclose = pcall(s.scan, s, prefix)
  if not oks then
    secondary_failed(self, sf, "scan")
    return pf, ps, pc, pclose
  end
  local pk, pv = pf(ps, pc)
  local sk, sv = sf(ss, sc)
  local closer = setmetatable({}, {
    __close = function()
      local a, b = pclose, sclose
      pclose, sclose = nil, nil
      if a then getmetatable(a).__close(a) end
      if b then getmetatable(b).__close(b) end
    end,
  })
  local function iter()
    if pk == nil and sk == nil then return nil end
    local c = (sk == nil) and -1 or (pk == nil) and 1 or cmp_bytes(pk, sk)
    local k, v
    if c <= 0 then
      k, v = pk, pv
      pk, pv = pf(ps, pk)
      if c == 0 then sk, sv = sf(ss, sk) end
    else
      k, v = sk, sv
      sk, sv = sf(ss, sk)
    end
    return k, v
  end
  return iter, nil, nil, closer
end

--- `h:set(key, value [, opts])` on both.
function Dual:set(...)
  check_dual(self)
  return dual_write_op(self, self._p, self._s, "set", ...)
end

--- `existed = h:delete(key)` on both (the primary's answer).
function Dual:delete(...)
  check_dual(self)
  return dual_write_op(self, self._p, self._s, "delete", ...)
end

--- `n = h:set_batch(map [, opts])` on both.
function Dual:set_batch(...)
  check_dual(self)
  return dual_write_op(self, self._p, self._s, "set_batch", ...)
end

--- `n = h:delete_batch(keys)` on both.
function Dual:delete_batch(...)
  check_dual(self)
  return dual_write_op(self, self._p, self._s, "delete_batch", ...)
end

--- `n = h:batch(ops)` on both.
function Dual:batch(...)
  check_dual(self)
  return dual_write_op(self, self._p, self._s, "batch", ...)
end

--- `h:clear()` on both.
function Dual:clear()
  check_dual(self)
  return dual_write_op(self, self._p, self._s, "clear")
end

--- `... = h:transaction(function(tx) ... end)`: a transaction on each
-- side; `tx` is the dual handle. See `dual_write` for the commit order.
function Dual:transaction(fn)
  check_dual(self)
  if type(fn) ~= "function" then
    argerror(1, "transaction", "function expected, got " .. type(fn))
  end
  local p, s = self._p, self._s
  local function on_primary()
    return table.pack(p:transaction(function() return fn(self) end))
  end
  if self._write ~= "both" then
    local r = on_side("primary", on_primary)
    return table.unpack(r, 1, r.n)
  end
  local ran, results = false, nil
  local ok, err = pcall(s.transaction, s, function()
    ran = true
    local okp, r = pcall(on_primary)
    if not okp then error({ primary_error = r }, 0) end
    results = r
  end)
  if ok then return table.unpack(results, 1, results.n) end
  if type(err) == "table" and getmetatable(err) == nil and err.primary_error ~= nil then
    -- fn or the primary failed: both rolled back; the original error
    error(err.primary_error, 0)
  end
  if results then -- the primary committed, the secondary's commit failed
    secondary_failed(self, err, "transaction")
    return table.unpack(results, 1, results.n)
  end
  if ran then error(err, 0) end
  -- the secondary could not start a transaction
  secondary_failed(self, err, "transaction")
  local r = on_side("primary", on_primary)
  return table.unpack(r, 1, r.n)
end

--- Store-level information per the read mode (fallback: the primary,
-- the secondary when the primary errors).
local function dual_info(op)
  return function(self, ...)
    check_dual(self)
    return dual_read(self, self._p, self._s, op, never, nil, ...)
  end
end

--- `t = h:stats()` of the store the reads go to.
Dual.stats = dual_info("stats")
--- `name = h:backend_type()` of the store the reads go to.
Dual.backend_type = dual_info("backend_type")
--- `id = h:tenant()` of the store the reads go to.
Dual.tenant = dual_info("tenant")
--- `t = h:characteristics()` of the store the reads go to.
Dual.characteristics = dual_info("characteristics")
--- `list = h:migrations()` of the store the reads go to.
Dual.migrations = dual_info("migrations")
--- `problems = h:check()`: the integrity check of the store the reads go to.
Dual.check = dual_info("check")

--- Closes the handle (and both stores when it was made with `own`).
-- Idempotent.
function Dual:close()
  if self._closed then return end
  self._closed = true
  if self._own then
    pcall(self._s.close, self._s)
    self._p:close()
  end
end

Dual.__close = Dual.close

--- `tostring(h)`: both stores and the modes.
function Dual:__tostring()
  return format("llmspell.storage.migrate.DualWrite (primary %s, secondary %s, read %s, "
                .. "write %s)", tostring(self._p), tostring(self._s), self._read, self._write)
end

-- collections

local function wrap_collection(self, name, pc, sc)
  return setmetatable({ _dual = self, _name = name, _p = pc, _s = sc }, DualCollection)
end

-- A stand-in for a side whose collection did not open: every method
-- raises the error it failed with, so the failure surfaces where that
-- side is used, under the usual rules (a write to the secondary follows
-- on_secondary_error; a fallback read only asks it on a miss).
local function failing(err)
  return setmetatable({}, {
    __index = function() return function() error(err, 0) end end,
  })
end

--- `col = h:create_collection(name, opts)` on both; returns a dual
-- collection (writes to both, reads per the handle's read mode).
function Dual:create_collection(name, opts)
  check_dual(self)
  local pc = on_side("primary", self._p.create_collection, self._p, name, opts)
  local sc
  if self._write == "both" then
    local ok, c = pcall(self._s.create_collection, self._s, name, opts)
    if ok then
      sc = c
    else
      secondary_failed(self, c, "create_collection")
      sc = failing(c)
    end
  else
    local ok, c = pcall(self._s.collection, self._s, name)
    sc = ok and c or failing(c)
  end
  return wrap_collection(self, name, pc, sc)
end

--- `col = h:collection(name)`: opens the collection on both sides. The
-- side reads go to must have it (the primary in "primary" and "fallback"
-- mode); when the other side lacks it, using that side fails later, under
-- the usual rules.
function Dual:collection(name)
  check_dual(self)
  local p, s = self._p, self._s
  local okp, pc = pcall(p.collection, p, name)
  if not okp and not core.is_error(pc) then error(pc, 0) end -- a bad argument
  local oks, sc = pcall(s.collection, s, name)
  if self._read == "secondary" then
    if not oks then error(side_error(sc, "secondary", "collection"), 0) end
  elseif not okp then
    error(side_error(pc, "primary", "collection"), 0)
  end
  return wrap_collection(self, name, okp and pc or failing(pc), oks and sc or failing(sc))
end

--- `list = h:list_collections([prefix])` per the read mode (fallback:
-- the union by name, the primary's entry winning).
function Dual:list_collections(prefix)
  check_dual(self)
  local function always() return true end
  local function merge(pl, sl)
    local seen, out = {}, {}
    for _, c in ipairs(pl) do
      seen[c.name] = true
      out[#out + 1] = c
    end
    for _, c in ipairs(sl) do
      if not seen[c.name] then out[#out + 1] = c end
    end
    table.sort(out, function(a, b) return cmp_bytes(a.name, b.name) < 0 end)
    return out
  end
  return dual_read(self, self._p, self._s, "list_collections", always, merge, prefix)
end

--- `existed = h:drop_collection(name)` on both (the primary's answer).
function Dual:drop_collection(name)
  check_dual(self)
  return dual_write_op(self, self._p, self._s, "drop_collection", name)
end

local function dc_write(op)
  return function(self, ...)
    check_dual(self._dual)
    return dual_write_op(self._dual, self._p, self._s, op, ...)
  end
end

local function dc_read(op, miss)
  return function(self, ...)
    check_dual(self._dual)
    return dual_read(self._dual, self._p, self._s, op, miss, nil, ...)
  end
end

local function empty(t) return type(t) == "table" and #t == 0 end

--- `n = col:add(entries [, opts])` on both.
DualCollection.add = dc_write("add")
--- `n = col:upsert(entries [, opts])` on both.
DualCollection.upsert = dc_write("upsert")
--- `n = col:delete(ids)` on both.
DualCollection.delete = dc_write("delete")
--- `col:update_metadata(id, metadata)` on both.
DualCollection.update_metadata = dc_write("update_metadata")
--- `n = col:delete_scope(scope)` on both.
DualCollection.delete_scope = dc_write("delete_scope")
--- `n = col:purge_expired()` on both.
DualCollection.purge_expired = dc_write("purge_expired")
--- `col:snapshot()` on both.
DualCollection.snapshot = dc_write("snapshot")
--- `entry = col:get(id [, opts])` per the read mode (fallback on nil).
DualCollection.get = dc_read("get", is_nil)
--- `results = col:search(vector, opts)` per the read mode (fallback on
-- an error or no results).
DualCollection.search = dc_read("search", empty)
--- `lists = col:search_many(vectors, opts)` per the read mode.
DualCollection.search_many = dc_read("search_many", never)
--- `n = col:count()` per the read mode.
DualCollection.count = dc_read("count", never)
--- `t = col:stats()` per the read mode.
DualCollection.stats = dc_read("stats", never)
--- `t = col:stats_for_scope(scope)` per the read mode.
DualCollection.stats_for_scope = dc_read("stats_for_scope", never)

--- The collection's name. @treturn string
function DualCollection:name() return self._name end

--- Closes both sides' collection objects. Idempotent.
function DualCollection:close()
  pcall(self._s.close, self._s)
  pcall(self._p.close, self._p)
end

DualCollection.__close = DualCollection.close
DualCollection.__len = function(self) return self:count() end
DualCollection.__tostring = function(self)
  return format("llmspell.storage.migrate.DualCollection (%s)", self._name)
end

-- ---------------------------------------------------------------- plans

local PLAN_ORDER = { "version", "created_at", "from", "to", "tenant", "components",
                     "collections", "prefix", "batch_size", "on_conflict", "sample", "method" }
local PLAN_FIELDS = set_of { "from", "to", "components", "batch_size", "tenant", "prefix",
                             "collections", "on_conflict", "sample", "method", "version",
                             "created_at" }

--- Checks a plan (a table from `plan` or from JSON); returns a clean copy.
local function check_plan(p, n, fname, from_json)
  local function bad(msg)
    if from_json then fail("format", "migration plan: %s", msg) end
    argerror(n, fname, msg)
  end
  if type(p) ~= "table" then bad("plan table expected, got " .. type(p)) end
  for k in pairs(p) do
    if not PLAN_FIELDS[k] then bad(format("unknown field '%s'", tostring(k))) end
  end
  local function int(v, name, min)
    if v == nil then return nil end
    local i = math.tointeger(v)
    if not i or i < min then bad(format("'%s' must be an integer >= %d", name, min)) end
    return i
  end
  local function str(v, name, required)
    if v == nil and not required then return nil end
    if type(v) ~= "string" or v == "" then bad(format("'%s' must be a non-empty string", name)) end
    return v
  end
  local version = int(p.version, "version", 1) or PLAN_VERSION
  if version ~= PLAN_VERSION then
    if from_json then fail("version", "migration plan version %d is not supported", version) end
    bad(format("'version' must be %d", PLAN_VERSION))
  end
  local out = {
    version = version,
    from = str(p.from, "from", true), to = str(p.to, "to", true),
    tenant = str(p.tenant, "tenant"), prefix = str(p.prefix, "prefix"),
    batch_size = int(p.batch_size, "batch_size", 1) or DEFAULT_BATCH,
    sample = int(p.sample, "sample", 0),
    created_at = int(p.created_at, "created_at", 0),
  }
  if out.batch_size > MAX_BATCH then bad(format("'batch_size' must be at most %d", MAX_BATCH)) end
  local comps = p.components or COMPONENT_NAMES
  if type(comps) ~= "table" then bad("'components' must be an array") end
  out.components = {}
  for i, c in ipairs(comps) do
    if not COMPONENTS[c] then
      bad(format("'components' entry %d must be \"%s\"", i, table.concat(COMPONENT_NAMES,
                                                                        "\", \"")))
    end
    out.components[i] = c
  end
  if #out.components == 0 then bad("'components' must name at least one component") end
  if p.collections ~= nil then
    if type(p.collections) ~= "table" then bad("'collections' must be an array of names") end
    out.collections = {}
    for i, c in ipairs(p.collections) do
      out.collections[i] = str(c, "collections[" .. i .. "]", true)
    end
  end
  for name, values in pairs { on_conflict = { "replace", "skip", "error" },
                              method = { "auto", "export", "api" } } do
    local v = p[name]
    if v ~= nil then
      local okv = false
      for _, x in ipairs(values) do okv = okv or v == x end
      if not okv then
        bad(format("'%s' must be \"%s\"", name, table.concat(values, "\", \"")))
      end
      out[name] = v
    end
  end
  out.on_conflict = out.on_conflict or "replace"
  return out
end

--- Makes a migration plan: what to move from where to where, as a table
-- of strings and integers that `save_plan` writes as JSON and `execute`
-- carries out.
--
--    local plan = migrate.plan{ from = "sqlite:data/app.db", to = pg_url,
--                               components = { "kv", "vectors" }, batch_size = 500 }
--
-- @tparam table spec `from`, `to` (URLs as `storage.open` takes them;
--   required), `components` (array of `"kv"`, `"vectors"`, `"sections"`;
--   default all three), `batch_size` (default 1000), `tenant` (both
--   sides; default the stores' default), `prefix` (keys), `collections`
--   (names; default all), `on_conflict` (`"replace"` default, `"skip"`,
--   `"error"`), `sample` (verify n entries per section instead of all),
--   `method` (as for copy)
-- @treturn table the plan (the same fields, defaults filled in, plus
--   `version = 1` and `created_at` in seconds)
-- @raise bad argument for a malformed spec
function migrate.plan(spec)
  local p = check_plan(spec, 1, "plan")
  p.created_at = p.created_at or os.time()
  return p
end

--- Writes a plan as one JSON document (lua-cjson), atomically (a
-- temporary file renamed into place). A URL's password is written as it
-- is: keep plan files private, or put the password in libpq's
-- `~/.pgpass` instead.
-- @tparam table plan from `migrate.plan`
-- @tparam string path the file to write
-- @treturn string path
-- @raise bad argument for a malformed plan; error object `io`
function migrate.save_plan(plan, path)
  local p = check_plan(plan, 1, "save_plan")
  if type(path) ~= "string" or path == "" then
    argerror(2, "save_plan", "file path expected, got " .. type(path))
  end
  local cjson = require "cjson"
  -- one field per line in a fixed order, so a plan reads well in review
  -- and diffs cleanly; every value is encoded by lua-cjson ("\/" is its
  -- escape for "/", which JSON does not need)
  local lines = {}
  for _, k in ipairs(PLAN_ORDER) do
    if p[k] ~= nil then
      local v = cjson.encode(p[k]):gsub("\\/", "/")
      lines[#lines + 1] = format("  %s: %s", cjson.encode(k), v)
    end
  end
  local text = "{\n" .. table.concat(lines, ",\n") .. "\n}"
  local part = path .. ".part"
  local f, err = io.open(part, "wb")
  if not f then fail("io", "cannot write %s: %s", part, tostring(err)) end
  local ok, werr = f:write(text, "\n")
  local closed, cerr = f:close()
  if not ok or not closed then
    os.remove(part)
    fail("io", "cannot write %s: %s", part, tostring(werr or cerr))
  end
  local renamed, rerr = os.rename(part, path)
  if not renamed then
    os.remove(part)
    fail("io", "cannot write %s: %s", path, tostring(rerr))
  end
  return path
end

--- Reads a plan written by `save_plan`.
-- @tparam string path
-- @treturn table the plan
-- @raise error objects `io` (unreadable), `format` (not a plan),
--   `version` (a newer plan version)
function migrate.load_plan(path)
  if type(path) ~= "string" then argerror(1, "load_plan", "file path expected") end
  local f, err = io.open(path, "rb")
  if not f then fail("io", "cannot read %s: %s", path, tostring(err)) end
  local text = f:read("a")
  f:close()
  local cjson = require "cjson"
  local ok, v = pcall(cjson.decode, text)
  if not ok then fail("format", "migration plan %s: %s", path, tostring(v)) end
  if type(v) == "table" then
    for k, x in pairs(v) do
      if x == cjson.null then v[k] = nil end
    end
  end
  return check_plan(v, 1, "load_plan", true)
end

local function sqlite_file(url)
  local p = url:match("^sqlite:(.*)$")
  if not p then return nil end
  p = p:gsub("^//", "")
  if p == ":memory:" or p == "" then return nil end
  return p
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- Opens one side of a plan. A source SQLite file must exist. For a dry
-- run into an SQLite file that does not exist yet, an empty in-memory
-- SQLite store stands in (its directory must exist), so a dry run does
-- not even create the file; the second result is then true.
local function open_side(url, tenant, side, must_exist, dry)
  local path = sqlite_file(url)
  local o = tenant and { tenant = tenant } or nil
  if path and not file_exists(path) then
    if must_exist then
      error(tag(core.error("not_found", "no such SQLite database: " .. path), side), 0)
    end
    if dry then
      local dir = path:match("^(.*)/[^/]*$") or "."
      if dir == "" then dir = "/" end
      if not os.rename(dir, dir) then
        error(tag(core.error("io", "no such directory: " .. dir), side), 0)
      end
      return on_side(side, core.open, "sqlite::memory:", o), true
    end
  end
  return on_side(side, core.open, url, o), false
end

local function selected_set(plan)
  local comp = set_of(plan.components)
  return { kv = comp.kv == true, vectors = comp.vectors == true, prefix = plan.prefix,
           collections = plan.collections }
end

--- Carries out a plan: opens both URLs, checks before (the source is
-- readable, the target reachable, and every collection to copy that the
-- target already has has the same dimension and metric), copies (a dry
-- run reads and checks everything and writes nothing), then verifies
-- (`migrate.verify`, the target may hold more than the source; values are
-- compared unless `on_conflict` is `"skip"`). Both stores are closed
-- afterwards.
--
--    migrate.save_plan(migrate.plan{ from = a, to = b }, "plan.json")
--    local report = migrate.execute("plan.json", { dry_run = true })
--    print(report.ok, report.copied.kv_entries)
--
-- @tparam table|string plan_or_path a plan, or the path of a saved one
-- @tparam[opt] table opts `dry_run`, `progress = function(done, total,
--   phase)`, `tmpdir`, `sample` (overrides the plan's)
-- @treturn table report `{ ok=, dry_run=, stage = "before" (the checks
--   before failed) | "done", plan=, before = { source = { keys=, collections = {
--   name = n } }, target = {..., missing = true when a dry run's SQLite
--   target does not exist yet}, problems = {...} }, copied = counts,
--   verify = verify report, problems = {...}, seconds= }`; `ok` is false
--   when the checks before or the verification found problems (nothing is
--   copied when the checks before fail)
-- @raise error objects with `side` when a store cannot be opened or read
function migrate.execute(plan_or_path, opts)
  local plan
  if type(plan_or_path) == "string" then
    plan = migrate.load_plan(plan_or_path)
  else
    plan = check_plan(plan_or_path, 1, "execute")
  end
  local o = check_opts(opts, 2, "execute", set_of { "dry_run", "progress", "tmpdir", "sample" })
  local dry = opt_type(o, "dry_run", "boolean", 2, "execute") == true
  local progress = opt_type(o, "progress", "function", 2, "execute")
  local tmpdir = opt_type(o, "tmpdir", "string", 2, "execute")
  local sample = o.sample
  if sample == nil then sample = plan.sample end
  if sample ~= nil and (math.type(sample) ~= "integer" or sample < 0) then
    argerror(2, "execute", "option 'sample' must be a non-negative integer")
  end
  local t0 = clock()
  local report = { ok = false, dry_run = dry, plan = plan, stage = "before", problems = {} }

  local src <close> = open_side(plan.from, plan.tenant, "source", true)
  local dst <close>, stand_in = open_side(plan.to, plan.tenant, "target", false, dry)
  local sel = selected_set(plan)
  local sc, dc = census(src, sel, "source"), census(dst, { kv = sel.kv, vectors = sel.vectors,
                                                           prefix = sel.prefix }, "target")
  local before = { problems = {},
                   source = { keys = sc.keys, vectors = sc.vectors,
                              collections = sc.collections },
                   target = { keys = dc.keys, vectors = dc.vectors,
                              collections = dc.collections, missing = stand_in } }
  report.before = before
  for name, a in pairs(sc.params) do
    local b = dc.params[name]
    if b and (a.dimension ~= b.dimension or a.metric ~= b.metric) then
      before.problems[#before.problems + 1] = format(
        "collection %s: %d-d %s in the source, %d-d %s in the target", name, a.dimension,
        a.metric, b.dimension, b.metric)
    end
  end
  if sel.collections then
    for _, name in ipairs(sel.collections) do
      if not sc.params[name] then
        before.problems[#before.problems + 1] = format("collection %s: not in the source", name)
      end
    end
  end
  table.sort(before.problems)
  if #before.problems > 0 then
    for _, p in ipairs(before.problems) do report.problems[#report.problems + 1] = p end
    report.seconds = clock() - t0
    return report
  end

  report.stage = "copy"
  report.copied = migrate.copy(src, dst, {
    components = plan.components, batch_size = plan.batch_size, prefix = plan.prefix,
    collections = plan.collections, on_conflict = plan.on_conflict, dry_run = dry,
    method = plan.method, progress = progress, tmpdir = tmpdir,
  })
  if dry then
    report.stage, report.ok = "done", true
    report.seconds = clock() - t0
    return report
  end
  report.stage = "verify"
  local vcomp = {}
  for _, c in ipairs(plan.components) do
    if c ~= "sections" then vcomp[#vcomp + 1] = c end
  end
  local ok, vr = true, nil
  if #vcomp > 0 then
    ok, vr = migrate.verify(src, dst, {
      components = vcomp, prefix = plan.prefix, collections = plan.collections,
      sample = sample, allow_extra = true, values = plan.on_conflict ~= "skip",
      progress = progress, tmpdir = tmpdir, batch_size = plan.batch_size,
    })
    report.verify = vr
    for _, p in ipairs(vr.problems) do report.problems[#report.problems + 1] = p end
  end
  report.stage, report.ok = "done", ok
  report.seconds = clock() - t0
  return report
end

--- Checks that a store survives export and import unchanged: copies it
-- (export path) into a scratch memory store and compares the two
-- (`migrate.verify` with `strict`: values, TTLs, kv_id, key-value
-- metadata and times, every vector field, collection parameters), and the
-- passthrough sections by count.
--
--    local ok, report = migrate.roundtrip(db)
--    if not ok then print(table.concat(report.problems, "\n")) end
--
-- @param db a store handle
-- @tparam[opt] table opts `sample`, `limit`, `tmpdir` (as for verify)
-- @treturn boolean true when the copy is identical
-- @treturn table report: the verify report plus `copied` (copy counts)
function migrate.roundtrip(db, opts)
  if not is_store(db) then
    argerror(1, "roundtrip", "store handle expected, got " .. type(db))
  end
  local o = check_opts(opts, 2, "roundtrip", set_of { "sample", "limit", "tmpdir" })
  local scratch <close> = core.open("memory")
  local counts = migrate.copy(db, scratch, { method = "export", tmpdir = o.tmpdir })
  local ok, report = migrate.verify(db, scratch, { strict = true, sample = o.sample,
                                                   limit = o.limit, tmpdir = o.tmpdir,
                                                   ttl_tolerance = 0 })
  report.copied = counts
  local es, is = counts.export.sections or {}, counts.import.sections or {}
  for name, n in pairs(es) do
    if (is[name] or 0) ~= n then
      report.problems[#report.problems + 1] = format("section %s: %d records exported, %d "
                                                     .. "imported", name, n, is[name] or 0)
      ok = false
    end
  end
  report.ok = ok
  return ok, report
end

return migrate
