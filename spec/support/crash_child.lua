--- What the crash-test writers share (scripts/crash-test.lua starts them
-- and SIGKILLs them). Each writer is run as
--
--   lua5.4 spec/support/crash_<kind>.lua BACKEND TARGET TENANT PROGRESS UNIT
--
-- BACKEND "sqlite" (TARGET a path) or "postgres" (TARGET a URL, TENANT
-- the tenant to write as). It prepares, writes "ready" to PROGRESS, then
-- writes units 1, 2, 3, ... forever (UNIT: records per unit), appending
-- "<i>" to PROGRESS after unit i is acknowledged by the store. Nothing
-- goes to stdout (the parent reads it only for the pid).
local storage = require "llmspell.storage"

local child = {}

--- The arguments as a table, and the store opened from them.
function child.start()
  local backend, target, tenant, progress, unit = table.unpack(arg, 1, 5)
  assert(backend and target and tenant and progress and unit,
         "usage: crash_<kind>.lua BACKEND TARGET TENANT PROGRESS UNIT")
  local opts = { backend = backend, tenant = tenant }
  if backend == "sqlite" then
    opts.path = target
    opts.synchronous = "normal"
  else
    opts.url = target
  end
  local a = { backend = backend, target = target, tenant = tenant,
              unit = assert(math.tointeger(tonumber(unit)), "UNIT: an integer") }
  a.db = storage.open(opts)
  a.progress = assert(io.open(progress, "a"))
  return a
end

--- Appends one line to the progress file, flushed, so the parent sees it
-- even when the next instruction is the kill.
function child.say(a, line)
  a.progress:write(line, "\n")
  a.progress:flush()
end

--- Calls write(i) for i = 1, 2, ... until killed, acknowledging each.
function child.loop(a, write)
  child.say(a, "ready")
  local i = 0
  while true do
    i = i + 1
    write(i)
    child.say(a, tostring(i))
  end
end

--- The vector of unit i, entry j: distinct, finite, checkable.
function child.vector(dim, i, j)
  local v = {}
  for d = 1, dim do v[d] = math.sin(i * 7.1 + j * 1.3 + d * 0.37) end
  return v
end

--- The bytes of artifact j of unit i (crash_components.lua): every third
-- one 20 KB (compressed, chunked), the last of each unit the same bytes
-- in every unit (deduplicated across units).
function child.artifact_bytes(i, j, unit)
  if j == unit then return string.rep("shared artifact bytes ", 50) end
  return ("u%d:a%d:"):format(i, j) .. string.rep("z", j % 3 == 0 and 20000 or 300)
end

return child
