-- Child process for artifacts_spec: puts the same contents into one
-- session n times, racing other children doing the same.
--   lua5.4 artifact_putter.lua <sqlite|postgres> <path|url> <tenant> <session> <n> <go file>
-- Prints "ready" once the store is open, waits for the go file (so every
-- child starts at once), then puts alternately a small content (one
-- statement on PostgreSQL) and a 1.5 MiB one (chunk by chunk), both the
-- same in every child, and prints "done <sequences>" (comma-separated).
local storage = require "llmspell.storage"
local system = require "system"
local backend, target, tenant, session, n, go = ...
n = assert(tonumber(n))

local opts = { backend = backend, tenant = tenant }
if backend == "sqlite" then
  opts.path = target
  opts.busy_timeout_ms = 60000
else
  opts.url = target
end
local db = storage.open(opts)
local a = db:artifacts()
local small = "shared small content"
local big = string.rep("0123456789abcdef", 98304) -- 1.5 MiB
io.write("ready\n")
io.flush()

local deadline = system.gettime() + 60
while true do
  local gf = io.open(go)
  if gf then
    gf:close()
    break
  end
  if system.gettime() > deadline then error("the go file never appeared") end
  system.sleep(0.002)
end

local seqs = {}
for i = 1, n do
  local r = a:put(session, i % 2 == 0 and big or small, { name = "racer" })
  seqs[#seqs + 1] = r.sequence
end
db:close()
io.write("done ", table.concat(seqs, ","), "\n")
