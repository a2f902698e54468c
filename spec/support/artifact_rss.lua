-- Child process for artifacts_spec: a big artifact in and out with
-- bounded memory.
--   lua5.4 artifact_rss.lua <sqlite|postgres|memory> <path|url> <tenant> <file>
-- Opens the store, makes a session, then records VmHWM (the peak resident
-- set), puts <file> with put_file, reads it back through open():read() in
-- 1 MiB pieces comparing each with the file, and prints
-- "ok <artifact size> <peak growth in KiB>".
local storage = require "llmspell.storage"
local backend, target, tenant, file = ...

local function hwm_kib()
  local f = assert(io.open("/proc/self/status"))
  local kib = tonumber(f:read("a"):match("VmHWM:%s*(%d+)"))
  f:close()
  return kib
end

local opts = { backend = backend, tenant = tenant }
if backend == "sqlite" then
  opts.path = target
  -- the page cache is the store's, whatever it holds: the spec caps it
  opts.cache_size = tonumber(os.getenv("CACHE"))
elseif backend == "postgres" then
  opts.url = target
end
local db = storage.open(opts)
local a = db:artifacts()
db:sessions():create("big")
collectgarbage()
local before = hwm_kib()

local put = a:put_file("big", file, { type = "data" })
local r <close> = a:open(put.artifact_id)
local f <close> = assert(io.open(file, "rb"))
local n = 0
while true do
  local piece = r:read(1048576)
  local want = f:read(1048576)
  if piece ~= want then error("piece at " .. n .. " differs") end
  if not piece then break end
  n = n + #piece
end
assert(put.deduplicated == false)
local again = a:put_file("big", file) -- a duplicate: hashed, then only counted
assert(again.deduplicated == true)
local after = hwm_kib()
io.write("ok ", n, " ", after - before, "\n")
