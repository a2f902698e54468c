--- Child of spec/full_disk_spec.lua: runs under `ulimit -f` (with SIGXFSZ
-- ignored), so a write past the limit fails as on a full disk. Opens the
-- store at arg[1], tries a batch and an export that cannot fit, then reads
-- and writes a little; prints one line per step ("step code|ok").
local storage = require "llmspell.storage"

local path, export_path = arg[1], arg[2]
local db = storage.open("sqlite:" .. path)

local function try(step, f)
  local ok, err = pcall(f)
  if ok then
    print(step .. " ok")
  else
    print(step .. " " .. tostring(storage.is_error(err) and err.code or err))
  end
end

try("batch", function()
  local big = {}
  for i = 1, 200 do big[string.format("big:%03d", i)] = string.rep("x", 65536) end
  db:set_batch(big)
end)
try("transaction", function()
  db:transaction(function()
    for i = 1, 200 do db:set(string.format("tx:%03d", i), string.rep("y", 65536)) end
  end)
end)
try("export", function()
  local col = db:collection("docs")
  for i = 1, 50 do col:get("d" .. i) end
  storage.exporter(db):to_file(export_path)
end)
try("read", function() assert(db:get("keep:001") == "value 1" .. string.rep("v", 20000)) end)
try("small write", function() db:set("after", "fits") end)
db:close()
