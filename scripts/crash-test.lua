#!/usr/bin/env lua5.4
--- Crash test: SIGKILLs writers at random points and checks that every
-- write was all or nothing (`make crash-test`; spec/crash_spec.lua runs a
-- few kills in the suite; docs/testing.md).
--
--   lua5.4 scripts/crash-test.lua [--kills N] [--backends sqlite,postgres] [--seed S]
--                                 [--writers kv,import,collection,components]
--
-- Three writers (spec/support/crash_*.lua), each in its own process,
-- writing units in a loop and acknowledging each in a progress file:
--   kv          db:set_batch of 50 keys plus a marker
--   import      importer:from_file of a document of 2000 keys and 200 vectors
--   collection  col:add of 100 entries, a snapshot every third batch
--   components  a transaction over a session, 6 artifacts (compressed,
--               deduplicated), an agent state and a workflow
-- Kills go to the writers in turn, then to the backends in turn: each
-- starts its writer on a fresh store (an SQLite file, or a fresh PostgreSQL tenant),
-- waits until it writes, sleeps a random part of a second, kill -9s it,
-- then checks: SQLite's PRAGMA integrity_check says ok; every unit is
-- there whole or not at all; every acknowledged unit is there and nothing
-- past the one in flight; the counts match; the collection reopens
-- (from its snapshot, not rebuilt) and searches. PostgreSQL runs when
-- LLMSPELL_TEST_PG_URL is set (scripts/with-postgres.sh sets it) or when
-- --backends names it. Prints one line per kill and a summary
-- "crash-test: N kills ..., N all-or-nothing, V violations"; exits 1 on
-- any violation. Timings vary, so a seed repeats the choices, not the
-- exact kill points. --writers picks writers; "kv_unsafe" (the same keys
-- written one set at a time) is the negative control: it must fail.
local storage = require "llmspell.storage"
local system = require "system"

local LUA = "lua5.4"
local SCRIPT_DIR = (arg[0]:match("^(.*)/[^/]*$") or ".")
local SUPPORT = SCRIPT_DIR .. "/../spec/support"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function usage(msg)
  io.stderr:write("crash-test: ", msg, "\nusage: lua5.4 scripts/crash-test.lua [--kills N]",
                  " [--backends sqlite,postgres] [--seed S] [--writers kv,import,collection,components]\n")
  os.exit(2)
end

local WRITERS -- below the checks

local function parse_args()
  local o = { kills = 30, seed = os.time(), writers = {} }
  for _, w in ipairs(WRITERS) do
    if not w.control then o.writers[#o.writers + 1] = w end
  end
  local pg = os.getenv("LLMSPELL_TEST_PG_URL")
  o.backends = (pg and pg ~= "") and { "sqlite", "postgres" } or { "sqlite" }
  local i = 1
  while i <= #arg do
    local a, v = arg[i], arg[i + 1]
    if a == "--kills" then
      o.kills = math.tointeger(tonumber(v)) or usage("--kills wants a positive integer")
      if o.kills < 1 then usage("--kills wants a positive integer") end
    elseif a == "--seed" then
      o.seed = math.tointeger(tonumber(v)) or usage("--seed wants an integer")
    elseif a == "--backends" then
      o.backends = {}
      for b in (v or ""):gmatch("[^,]+") do
        if b ~= "sqlite" and b ~= "postgres" then usage("unknown backend " .. b) end
        o.backends[#o.backends + 1] = b
      end
      if #o.backends == 0 then usage("--backends wants sqlite, postgres or both") end
    elseif a == "--writers" then
      o.writers = {}
      for name in (v or ""):gmatch("[^,]+") do
        local found
        for _, w in ipairs(WRITERS) do if w.kind == name then found = w end end
        o.writers[#o.writers + 1] = found or usage("unknown writer " .. name)
      end
      if #o.writers == 0 then usage("--writers wants kv, import, collection") end
    else
      usage("unknown argument " .. a)
    end
    i = i + 2
  end
  if o.backends[2] or o.backends[1] == "postgres" then
    o.pg_url = os.getenv("LLMSPELL_TEST_PG_URL")
    if not o.pg_url or o.pg_url == "" then
      usage("postgres needs LLMSPELL_TEST_PG_URL (run under scripts/with-postgres.sh)")
    end
  end
  return o
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

--- The environment for children: this process's module paths, made
-- absolute, so they load the same build from any directory.
local function child_env()
  local p = assert(io.popen("pwd"))
  local cwd = assert(p:read("l"))
  p:close()
  local function abs(paths) return (paths:gsub("%f[^;%z]%./", cwd .. "/")) end
  return ("env LUA_PATH=%s LUA_CPATH=%s "):format(q(abs(package.path)), q(abs(package.cpath)))
end

--- Highest unit the writer acknowledged (complete lines only), and
-- whether it got ready.
local function progress(path)
  local s = read_file(path)
  local ready, last = false, 0
  for line in s:gmatch("([^\n]*)\n") do
    if line == "ready" then
      ready = true
    else
      local i = assert(math.tointeger(tonumber(line)), "garbled progress line: " .. line)
      assert(i == last + 1, "progress out of order: " .. line)
      last = i
    end
  end
  return ready, last
end

-------------------------------------------------------------------- checks

local function fail(fmt, ...) error(("VIOLATION: " .. fmt):format(...), 0) end

--- Units 1..acked+1 are each whole (count(i) == want) or absent
-- (count(i) == 0); all acknowledged ones are present, and the present
-- ones are 1..n without a gap. Returns n.
local function units_present(acked, want, count)
  local present = 0
  for i = 1, acked + 1 do
    local n = count(i)
    if n == 0 then
      if i <= acked then fail("acknowledged unit %d was lost", i) end
    elseif n ~= want then
      fail("unit %d is half-written: %d of %d records", i, n, want)
    elseif present ~= i - 1 then
      fail("unit %d is present after a missing unit %d", i, present + 1)
    else
      present = i
    end
  end
  if count(acked + 2) ~= 0 then fail("unit %d is present, past the one in flight", acked + 2) end
  return present
end

local function check_kv(db, acked, unit)
  local filler = string.rep("x", 200)
  local present = units_present(acked, unit + 1, function(i)
    local keys = db:list_keys("b" .. i .. ":")
    local marker = db:get("m" .. i)
    if #keys == 0 and marker == nil then return 0 end
    if marker ~= tostring(i) then fail("batch %d has %d keys but no marker", i, #keys) end
    local got = db:get_batch(keys)
    for j = 1, #keys do
      local k = ("b%d:%d"):format(i, j)
      if got[k] ~= ("v%d:%d:"):format(i, j) .. filler then fail("key %s has a wrong value", k) end
    end
    return #keys + 1
  end)
  if db:stats().keys ~= present * (unit + 1) then
    fail("%d keys stored, %d batches of %d expected", db:stats().keys, present, unit + 1)
  end
  return present
end

local function collection_or_nil(db, name)
  local ok, col = pcall(db.collection, db, name)
  if ok then return col end
  if storage.is_error(col) and col.code == "not_found" then return nil end
  error(col, 0)
end

local function check_import(db, acked, unit)
  local col = collection_or_nil(db, "crash_import")
  local nvec = unit // 10
  local present = units_present(acked, unit + nvec, function(i)
    local keys = #db:list_keys("d" .. i .. ":")
    local vecs = 0
    for j = 1, nvec do
      if col and col:get(("d%d:v%d"):format(i, j)) then vecs = vecs + 1 end
    end
    if (keys == 0) ~= (vecs == 0) then
      fail("document %d: %d of %d keys but %d of %d vectors", i, keys, unit, vecs, nvec)
    end
    return keys + vecs
  end)
  if db:stats().keys ~= present * unit then fail("%d keys stored", db:stats().keys) end
  if present > 0 and col:count() ~= present * nvec then fail("%d vectors stored", col:count()) end
  return present
end

--- The collection as a fresh handle finds it: counts, the snapshot (a
-- kill during a snapshot write must not leave a broken one) and searches.
local function check_collection(db, acked, unit)
  local col = collection_or_nil(db, "crash_col")
  if not col then fail("the collection is gone") end
  local present = units_present(acked, unit, function(i)
    local n = 0
    for j = 1, unit do
      if col:get(("b%d:%d"):format(i, j)) then n = n + 1 end
    end
    return n
  end)
  if col:count() ~= present * unit then fail("count %d, expected %d", col:count(), present * unit) end
  local st = col:stats()
  if st.rebuilt then fail("the snapshot was unusable: %s", tostring(st.snapshot_error)) end
  if present > 0 then
    local child = dofile(SUPPORT .. "/crash_child.lua")
    local exact = col:search(child.vector(16, 1, 1), { k = 3, strategy = "exact" })
    if not exact[1] or exact[1].id ~= "b1:1" then fail("exact search misses entry b1:1") end
    local hits = col:search(child.vector(16, present, unit), { k = 10, strategy = "graph" })
    if #hits ~= math.min(10, present * unit) then fail("graph search found %d", #hits) end
    for _, h in ipairs(hits) do
      local i = math.tointeger(tonumber(h.id:match("^b(%d+):")))
      if not i or i > present then fail("search returned %s", h.id) end
    end
  end
  return present, st.from_snapshot and "reopened from snapshot" or "reopened from rows"
end

--- The components: each unit's session, its artifacts (bytes, counts and
-- the shared content's reference count), agent state and workflow.
local function check_components(db, acked, unit)
  local child = dofile(SUPPORT .. "/crash_child.lua")
  local sessions, arts = db:sessions(), db:artifacts()
  local states, flows = db:agent_states(), db:workflows()
  local present = units_present(acked, unit + 3, function(i)
    local s = sessions:get("s" .. i)
    local list = s and arts:list("s" .. i) or {}
    local state, info = states:load("a" .. i)
    local wf = flows:load("w" .. i)
    local n = (s and 1 or 0) + #list + (state and 1 or 0) + (wf and 1 or 0)
    if n == 0 then return 0 end
    if not (s and state and wf) or #list ~= unit then
      fail("unit %d: session %s, %d of %d artifacts, state %s, workflow %s", i, tostring(s ~= nil),
           #list, unit, tostring(state ~= nil), tostring(wf ~= nil))
    end
    if s.artifact_count ~= unit then fail("unit %d: artifact_count %d", i, s.artifact_count) end
    for j, info_j in ipairs(list) do
      if arts:get(info_j.artifact_id) ~= child.artifact_bytes(i, j, unit) then
        fail("unit %d: artifact %d has wrong bytes", i, j)
      end
    end
    if state.step ~= 2 or info.data_version ~= 2 then
      fail("unit %d: agent state step %s, data_version %s", i, tostring(state.step),
           tostring(info.data_version))
    end
    if wf.status ~= "running" then fail("unit %d: workflow %s", i, wf.status) end
    return n
  end)
  local st = arts:stats()
  if st.artifacts ~= present * unit then fail("%d artifacts stored", st.artifacts) end
  -- the shared content once, plus each unit's own
  local want = present > 0 and present * (unit - 1) + 1 or 0
  if st.unique_contents ~= want then
    fail("%d unique contents, %d expected", st.unique_contents, want)
  end
  return present
end

WRITERS = {
  { kind = "kv", script = "crash_kv.lua", unit = 50, span = 0.3, check = check_kv },
  { kind = "kv_unsafe", script = "crash_kv_unsafe.lua", unit = 50, span = 0.3, check = check_kv,
    control = true },
  { kind = "import", script = "crash_import.lua", unit = 2000, span = 0.8, check = check_import },
  { kind = "collection", script = "crash_collection.lua", unit = 100, span = 0.8,
    check = check_collection },
  { kind = "components", script = "crash_components.lua", unit = 6, span = 0.5,
    check = check_components },
}

------------------------------------------------------------------- a kill

local function integrity_check(path)
  local p = assert(io.popen(("sqlite3 -batch -bail %s 'PRAGMA integrity_check' 2>&1"):format(q(path))))
  local out = p:read("a"):gsub("%s+$", "")
  p:close()
  if out ~= "ok" then fail("PRAGMA integrity_check: %s", out) end
end

local function open_store(backend, target, tenant)
  if backend == "sqlite" then return storage.open { backend = "sqlite", path = target } end
  return storage.open { backend = "postgres", url = target, tenant = tenant }
end

--- Starts the writer; the shell execs it, so $$ is its pid and closing
-- the pipe waits for exactly that process.
local function start(env, w, backend, target, tenant, prog, errf)
  local p = assert(io.popen(("echo $$; exec %s%s %s %s %s %s %s %d 2>%s"):format(env, LUA,
    q(SUPPORT .. "/" .. w.script), backend, q(target), q(tenant), q(prog), w.unit, q(errf))))
  local pid = math.tointeger(tonumber(p:read("l")))
  assert(pid, "could not start the writer")
  return p, pid
end

--- Waits until the writer is ready, then until a random point; kills it.
-- Returns the delay after ready.
local function kill_at_random(p, pid, w, prog, errf)
  local deadline = system.gettime() + 60
  while not progress(prog) do
    if system.gettime() > deadline or not os.execute("kill -0 " .. pid .. " 2>/dev/null") then
      os.execute("kill -9 " .. pid .. " 2>/dev/null")
      p:close()
      fail("the writer never got ready: %s", read_file(errf))
    end
    system.sleep(0.002)
  end
  local delay = math.random() * w.span
  system.sleep(delay)
  os.execute("kill -9 " .. pid)
  local _, how, sig = p:close()
  if how ~= "signal" or sig ~= 9 then
    fail("the writer ended by itself (%s %s): %s", how, tostring(sig), read_file(errf))
  end
  return delay
end

local function cleanup(backend, target, tenant)
  if backend == "sqlite" then
    for _, s in ipairs { "", "-wal", "-shm", "-journal" } do os.remove(target .. s) end
    return
  end
  local db = open_store(backend, target, tenant)
  for _, name in ipairs { "crash_col", "crash_import" } do db:drop_collection(name) end
  db:clear()
  db:close()
end

--- Kill number k: returns the report line; raises "VIOLATION: ..." when
-- a check fails.
local function one_kill(o, env, work, k)
  local w = o.writers[(k - 1) % #o.writers + 1]
  local backend = o.backends[((k - 1) // #o.writers) % #o.backends + 1]
  local base = ("%s/k%d"):format(work, k)
  local prog, errf = base .. ".progress", base .. ".err"
  local target = backend == "sqlite" and base .. ".db" or o.pg_url
  local tenant = backend == "sqlite" and "default" or ("crash_%d_%d"):format(o.seed % 1000000, k)
  if backend == "postgres" then cleanup(backend, target, tenant) end
  local ok, res = pcall(function()
    local p, pid = start(env, w, backend, target, tenant, prog, errf)
    local delay = kill_at_random(p, pid, w, prog, errf)
    local _, acked = progress(prog)
    if backend == "sqlite" then integrity_check(target) end
    local db = open_store(backend, target, tenant)
    local present, note = w.check(db, acked, w.unit)
    db:close()
    return ("kill %3d  %-10s %-8s at +%.3f s: %d acknowledged, %d present%s"):format(k, w.kind,
      backend, delay, acked, present, note and (", " .. note) or "")
  end)
  local cok, cerr = pcall(cleanup, backend, target, tenant)
  for _, f in ipairs { prog, errf, prog .. ".doc.json" } do os.remove(f) end
  if not ok then error(("kill %d (%s on %s): %s"):format(k, w.kind, backend, tostring(res)), 0) end
  if not cok then error(("kill %d: cleanup failed: %s"):format(k, tostring(cerr)), 0) end
  return res
end

local function main()
  local o = parse_args()
  math.randomseed(o.seed)
  local work = os.tmpname()
  os.remove(work)
  assert(os.execute("mkdir -p " .. q(work)))
  local env = child_env()
  local passed, violations = 0, 0
  for k = 1, o.kills do
    local ok, line = pcall(one_kill, o, env, work, k)
    print(line)
    io.stdout:flush()
    if ok then passed = passed + 1 else violations = violations + 1 end
  end
  os.execute("rm -rf " .. q(work))
  local names = {}
  for _, w in ipairs(o.writers) do names[#names + 1] = w.kind end
  print(("crash-test: %d kills (%s on %s), %d all-or-nothing, %d violations, seed %d"):format(
    o.kills, table.concat(names, ", "), table.concat(o.backends, ", "), passed, violations,
    o.seed))
  os.exit(violations == 0 and 0 or 1)
end

main()
