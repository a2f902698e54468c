-- Child process for pg_fault_spec: injects a fault while the parent's call
-- is inside a statement. It locks a table (ACCESS EXCLUSIVE, in a psql
-- session of its own), says "ready", waits until another session is
-- blocked behind that lock (the parent's: nothing else touches the
-- tenant's tables meanwhile), then injects the fault and lets the lock go:
--   terminate  pg_terminate_backend of the blocked sessions
--   fast       pg_ctl restart -m fast
--   immediate  pg_ctl restart -m immediate
-- and says "faulted" (or "not blocked" when nothing waited within 10 s:
-- the lock is then released without a fault).
--   lua5.4 pg_fault.lua <url> <schema.table> <terminate|fast|immediate>
local url, tbl, fault = ...

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
-- Under `make asan` the sanitizer runtime is preloaded for lua; psql, pg_ctl
-- and the server must not inherit it.
local CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "
local PSQL = CLEAN_ENV .. "psql -X -q -A -t -v ON_ERROR_STOP=1 " .. q(url)

local function psql(sql)
  local p = assert(io.popen(PSQL .. " -c " .. q(sql) .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

-- Waits on the server (pg_locks is live, unlike pg_stat_activity inside a
-- transaction) until a lock on the table matches cond, 10 s at most.
local function wait_lock(cond)
  local ok = psql("DO $$ BEGIN FOR i IN 1..2000 LOOP IF EXISTS (SELECT 1 FROM pg_locks"
    .. " WHERE relation = '" .. tbl .. "'::regclass AND " .. cond .. ") THEN RETURN; END IF;"
    .. " PERFORM pg_sleep(0.005); END LOOP; RAISE 'timed out'; END $$")
  return ok
end

local lock = assert(io.popen(PSQL .. " >/dev/null 2>&1", "w"))
lock:write("BEGIN;\nLOCK TABLE ", tbl, " IN ACCESS EXCLUSIVE MODE;\n")
lock:flush()
if not wait_lock("granted AND mode = 'AccessExclusiveLock'") then
  io.write("lock not taken\n")
  os.exit(1)
end
io.write("ready\n")
io.flush()

if not wait_lock("NOT granted") then
  lock:write("ROLLBACK;\n")
  lock:close()
  io.write("not blocked\n")
  os.exit(0)
end
if fault == "terminate" then
  local ok, out = psql("SELECT pg_terminate_backend(pid, 5000) FROM pg_locks WHERE relation = '"
                       .. tbl .. "'::regclass AND NOT granted")
  lock:write("ROLLBACK;\n")
  lock:close()
  if not ok then
    io.write("terminate failed: ", out, "\n")
    os.exit(1)
  end
else
  local ctl = os.getenv("LLMSPELL_TEST_PG_CTL")
  if not ctl or ctl == "" then
    io.write("LLMSPELL_TEST_PG_CTL is not set\n")
    os.exit(1)
  end
  local p = assert(io.popen(CLEAN_ENV .. q(ctl) .. " restart -m " .. fault .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  lock:close() -- its session ended with the server
  if not ok then
    io.write("restart failed: ", out, "\n")
    os.exit(1)
  end
end
io.write("faulted\n")
os.exit(0)
