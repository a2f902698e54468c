--- llmspell.storage.migrate.files: reading export files, in one place.
--
-- The migration recipes read what a store holds through its own export
-- file (one consistent view, streamed). Everything that reads such a file
-- is here, behind two functions:
--
-- * `files.each_record(path, fn)`: calls `fn(section, record)` for every
--   record of `data.kv_store` (section `"kv_store"`) and of
--   `data.vector_embeddings.<dimension>` (section `"vector_embeddings"`), in
--   file order, in bounded memory. A record has the file's fields
--   (`key`, `value`, `expires_at`, ...; `id`, `dimension`, `embedding`,
--   `metadata`, ...), integers as integers, floats as floats.
-- * `files.bytes(field)`: the bytes of a record's `value` or `embedding`
--   as `each_record` gave it. Two fields are equal exactly when their bytes
--   are (the exporter's encoding is canonical), so callers compare fields
--   as they are and decode only what they write or measure.
--
-- This reader is pure Lua (a small JSON reader and a base64 decoder); the
-- C reader `storage.records(path)`, which streams the same records with
-- values and embeddings already bytes, takes its place by making
-- `each_record` pass its kv and vector records on and `bytes` the identity.
--
-- @module llmspell.storage.migrate.files

local core = require "llmspell.storage.core"

local files = {}

local byte, sub, find, format = string.byte, string.sub, string.find, string.format

local function fail(code, fmt, ...)
  error(core.error(code, format(fmt, ...)), 0)
end

-- ---------------------------------------------------------------- base64

local B64 = {}
do
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for i = 1, 64 do B64[byte(alphabet, i)] = i - 1 end
end

--- The bytes of a `value` or `embedding` field (base64 in the file).
-- @tparam string s
-- @treturn string
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

--- Streams an export file, calling fn(section, record) with each record of
-- data.kv_store ("kv_store") and data.vector_embeddings.* ("vector_embeddings"),
-- decoded, in file order. Memory: one chunk plus one record. Outside the
-- records only the document's skeleton is tokenised.
-- @tparam string path
-- @tparam function fn
-- @raise error objects `io` (unreadable), `format` (malformed, truncated)
function files.each_record(path, fn)
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
          kind = "kv_store"
        elseif depth == 4 and stack[2].key == "vector_embeddings" and stack[3].obj
            and not stack[4].obj then
          kind = "vector_embeddings"
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

files.bytes = b64decode

return files
