--- Crash-test writer: imports (see crash_child.lua). Unit i writes a
-- document to a file (UNIT keys "d<i>:<j>" and UNIT // 10 vectors
-- "d<i>:v<j>" of collection "crash_import", embeddings as JSON arrays as
-- rs-llmspell writes them) and imports it with
-- importer:from_file; after a kill every document is there whole or not
-- at all.
local HERE = arg[0]:match("^(.*)/[^/]*$") or "."
local child = dofile(HERE .. "/crash_child.lua")
local storage = require "llmspell.storage"

local DIM = 8
local FILLER = string.rep("y", 120)

local a = child.start()
local path = arg[4] .. ".doc.json" -- beside the progress file

--- s in base64, as the format carries KV values.
local function b64(raw)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return (raw:gsub("..?.?", function(c)
    local n, pad = 0, 3 - #c
    for k = 1, 3 do n = n * 256 + (c:byte(k) or 0) end
    local out = {}
    for k = 3, 0, -1 do
      local x = (n >> (6 * k)) & 63
      out[#out + 1] = alphabet:sub(x + 1, x + 1)
    end
    return table.concat(out):sub(1, 4 - pad) .. string.rep("=", pad)
  end))
end

local function document(i)
  local kv, vecs = {}, {}
  for j = 1, a.unit do
    local value = ("d%d:%d:"):format(i, j) .. FILLER
    kv[j] = { key = ("d%d:%d"):format(i, j), value = b64(value) }
  end
  for j = 1, a.unit // 10 do
    vecs[j] = { id = ("d%d:v%d"):format(i, j), collection = "crash_import", dimension = DIM,
                embedding = storage.array(child.vector(DIM, i, j)), metadata = { doc = i } }
  end
  return storage.json_encode {
    version = "1.0",
    data = { kv_store = kv, vector_embeddings = { [tostring(DIM)] = vecs },
             vector_collections = { { name = "crash_import", dimension = DIM, metric = "l2" } } },
  }
end

local imp = storage.importer(a.db)
child.loop(a, function(i)
  local f = assert(io.open(path, "wb"))
  f:write(document(i))
  f:close()
  imp:from_file(path)
end)
