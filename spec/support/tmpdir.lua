--- The test suite's own temporary directory: every temporary path a spec
-- uses (helpers.tmpname, ctest.temp_dir) lies in it, so what a spec leaves
-- behind shows, and spec/zz_leftovers_spec.lua (the suite's last file)
-- fails when anything is left.
--
-- The Makefile's test targets make a fresh directory for each run, point
-- LLMSPELL_TEST_TMPDIR and TMPDIR at it (TMPDIR: child processes, such as
-- the CLI's migrate, put their own temporary files there too) and remove
-- it afterwards. Without LLMSPELL_TEST_TMPDIR (busted run by hand) a
-- directory is made under $TMPDIR or /tmp on first load; the leftovers
-- spec removes it when it is empty.
--
-- .busted loads this file as busted's helper, before any spec file: the
-- module then lives on across busted's per-file insulation (which unloads
-- modules a spec file loaded), so its counter keeps names unique for the
-- whole run.
local M = {}

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Shell tools run without the sanitizer runtime `make asan` preloads (its
-- leak checker would abort them at exit).
local CLEAN = "unset LD_PRELOAD; "

local env = os.getenv("LLMSPELL_TEST_TMPDIR")
if env and env ~= "" then
  M.dir, M.owned = env, false
else
  local base = os.getenv("TMPDIR")
  if not base or base == "" then base = "/tmp" end
  local p = assert(io.popen(CLEAN .. "mktemp -d " .. quote(base .. "/llmspell-test.XXXXXX")))
  M.dir = p:read("l")
  p:close()
  assert(M.dir and M.dir ~= "", "mktemp -d under " .. base .. " failed")
  -- as the Makefile does: specs that drop to user nobody reach their files
  os.execute(CLEAN .. "chmod 0755 " .. quote(M.dir))
  M.owned = true
end

-- This process's id: child Lua processes may load this module with the
-- same directory, and their names must not collide with ours.
local PID
do
  local f = io.open("/proc/self/stat")
  PID = f and f:read("n")
  if f then f:close() end
  PID = PID or os.time()
end

local n = 0
--- A fresh path inside the directory; nothing is created.
-- @tparam[opt] string suffix appended to the name (".db", "-dir")
-- @treturn string
function M.path(suffix)
  n = n + 1
  return string.format("%s/%d-%d%s", M.dir, PID, n, suffix or "")
end

M.quote = quote

--- What is left in the directory: one line per entry ("name (N bytes)"
-- or "name/ (directory)"), sorted; empty when nothing is.
-- @treturn table
function M.leftovers()
  local p = assert(io.popen(CLEAN .. "cd " .. quote(M.dir) .. " && find . -mindepth 1 -maxdepth 1 "
                            .. "-printf '%P %y %s\\n' | LC_ALL=C sort"))
  local out = {}
  for line in p:lines() do
    local name, kind, size = line:match("^(.*) (%a) (%d+)$")
    if name then
      out[#out + 1] = kind == "d" and (name .. "/ (directory)")
                      or string.format("%s (%s bytes)", name, size)
    end
  end
  p:close()
  return out
end

package.loaded["spec.support.tmpdir"] = M
return M
