-- Child process for agent_states_spec: saves n distinct states to one
-- agent, racing other children doing the same.
--   lua5.4 agent_state_saver.lua <sqlite|postgres> <path|url> <tenant> <agent_id>
--                                <tag> <n> <go file>
-- Prints "ready" once the store is open, waits for the go file (so every
-- child starts at once), saves {writer = tag, pid = <pid>, i = 1..n} and
-- prints "done <versions ok> <last version>": versions ok is "ok" when each
-- save's data_version was larger than this child's previous one.
local storage = require "llmspell.storage"
local system = require "system"
local backend, target, tenant, agent, tag, n, go = ...
n = assert(tonumber(n))

local f = assert(io.open("/proc/self/stat"))
local pid = tonumber(f:read("a"):match("^(%d+)"))
f:close()

local opts = { backend = backend, tenant = tenant }
if backend == "sqlite" then opts.path = target else opts.url = target end
local db = storage.open(opts)
local g = db:agent_states()
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

local last, ok = 0, "ok"
for i = 1, n do
  local r = g:save(agent, { writer = tag, pid = pid, i = i }, { agent_type = "racer" })
  if r.data_version <= last then ok = "regressed" end
  last = r.data_version
end
db:close()
io.write("done ", ok, " ", last, "\n")
