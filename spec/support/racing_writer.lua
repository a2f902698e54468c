-- Child process for collection_catch_up_spec: makes one write inside a
-- transaction and commits it only once the parent is blocked behind that
-- transaction's lock, so that the parent's next write call has already
-- caught up (seeing the old seq) when this write commits: the write lands
-- between the parent's catch-up and its own write, deterministically.
--   lua5.4 racing_writer.lua <sqlite|postgres> <path|url> <tenant> <collection>
--                            <parent pid> <action> [ARG...]
-- Prints "ready" once the transaction holds the lock, then "waited" (the
-- parent was seen blocked) or "not blocked" (it never was: the parent's
-- call did not write), then "done".
-- Actions: add ID [SCOPE] | delete_scope SCOPE ID (deletes the scope and
-- adds ID, so that something the parent must catch up with remains).
local storage = require "llmspell.storage"
local system = require "system"
local backend, target, tenant, name, ppid, action, a1, a2 = ...

local opts = { backend = backend, tenant = tenant }
if backend == "sqlite" then opts.path = target else opts.url = target end
local db = storage.open(opts)
local col = db:collection(name)

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Whether the parent is waiting for the lock this transaction holds: on
-- PostgreSQL its backend waits on a lock; on SQLite the busy handler
-- sleeps between attempts (while reading the pipe it is in pipe_read).
local function parent_blocked()
  if backend == "postgres" then
    local p = assert(io.popen("env -u LD_PRELOAD psql -X -q -A -t " .. sh_quote(target)
      .. " -c \"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
      .. " AND application_name = 'llmspell.storage'\" 2>&1"))
    local out = p:read("a")
    p:close()
    return (tonumber(out:match("%d+")) or 0) > 0
  end
  local f = io.open("/proc/" .. ppid .. "/wchan")
  if not f then return false end
  local w = f:read("a") or ""
  f:close()
  return w:find("nanosleep", 1, true) ~= nil
end

local function vec(id)
  local h = 0
  for i = 1, #id do h = (h * 31 + id:byte(i)) % 1000 end
  return { h / 100, (1000 - h) / 100, #id }
end

local waited = false
db:transaction(function()
  if action == "add" then
    col:add { id = a1, vector = vec(a1), metadata = { from = "child" }, scope = a2 }
  elseif action == "delete_scope" then
    col:delete_scope(a1)
    col:add { id = a2, vector = vec(a2), metadata = { from = "child" } }
  else
    error("unknown action " .. tostring(action))
  end
  col:delete("child-missing") -- a no-op write of its own, in the same transaction
  io.write("ready\n")
  io.flush()
  -- Bounded: 10 s at most, then commit anyway (the parent's assertion on
  -- "waited" then fails rather than the run hanging).
  for _ = 1, 1000 do
    if parent_blocked() then
      waited = true
      break
    end
    system.sleep(0.01)
  end
end)
io.write(waited and "waited\n" or "not blocked\n", "done\n")
io.flush()
os.exit(0)
