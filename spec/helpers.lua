--- Shared test helpers: the backend list every contract spec runs against,
-- temp paths, and small assertions.
local system = require "system"

local helpers = {}

--- PostgreSQL URL for the tests. `make test` starts a throwaway server and
-- sets it; running a PostgreSQL spec without one is an error, never a skip.
function helpers.pg_url()
  local url = os.getenv("LLMSPELL_TEST_PG_URL")
  if not url or url == "" then
    error("LLMSPELL_TEST_PG_URL is not set: run the suite with `make test` "
          .. "(it starts a throwaway PostgreSQL) or point it at a server", 2)
  end
  return url
end

local tmpdir = require "spec.support.tmpdir"

--- A fresh temporary path (the file itself is not created), inside the
-- suite's own temporary directory (spec/support/tmpdir.lua): whatever a
-- spec does not remove there fails spec/zz_leftovers_spec.lua.
function helpers.tmpname(suffix)
  return tmpdir.path(suffix or ".db")
end

--- s quoted for the shell (one word, whatever it holds).
helpers.shell_quote = tmpdir.quote

local counter = 0

--- Removes an SQLite database and its WAL side files.
function helpers.remove_db(path)
  for _, p in ipairs { path, path .. "-wal", path .. "-shm", path .. "-journal" } do
    os.remove(p)
  end
end

--- A unique tenant id, so PostgreSQL specs never see each other's rows.
function helpers.unique_tenant(base)
  counter = counter + 1
  return string.format("%s_%d_%d", base or "t", math.floor(system.gettime() * 1000) % 100000000,
                       counter)
end

--- The backends the shared contract runs against. Each entry has a name,
-- `open(opts)` giving a fresh, empty store (opts: extra open options such
-- as tenant), `shared` (two handles can address the same data) and
-- `cleanup()`.
function helpers.backends()
  -- base options, overridden by the per-test opts
  local function opener(base)
    return function(opts, self)
      local o = {}
      for k, v in pairs(base(self)) do o[k] = v end
      for k, v in pairs(opts or {}) do o[k] = v end
      return require("llmspell.storage").open(o)
    end
  end
  return {
    {
      name = "memory",
      shared = false,
      open = opener(function() return { backend = "memory" } end),
    },
    {
      name = "sqlite file",
      shared = true,
      setup = function(self) self.path = helpers.tmpname(".db") end,
      open = opener(function(self) return { backend = "sqlite", path = self.path } end),
      teardown = function(self) helpers.remove_db(self.path) end,
    },
    {
      name = "sqlite :memory:",
      shared = false,
      open = opener(function() return { url = "sqlite::memory:" } end),
    },
    {
      name = "postgres",
      shared = true,
      setup = function(self) self.tenant = helpers.unique_tenant("contract") end,
      open = opener(function(self)
        return { backend = "postgres", url = helpers.pg_url(), tenant = self.tenant }
      end),
    },
  }
end

--- A shell command running `lua5.4 ARGS` with this process's module paths,
-- so child processes load the same build whether or not the environment
-- already points at it.
function helpers.lua_command(args)
  return string.format("LUA_PATH='%s' LUA_CPATH='%s' lua5.4 %s", package.path,
                       package.cpath, args)
end

--- The vector datasets the specs read: spec/data in the repository (a small
-- real dataset, see spec/data/README.md), or $LLMSPELL_DATA_DIR for local
-- runs with a folder holding the same files.
function helpers.data_dir()
  local d = os.getenv("LLMSPELL_DATA_DIR")
  if d and d ~= "" then return d end
  local here = debug.getinfo(1, "S").source:match("^@(.*)$") or "spec/helpers.lua"
  return (here:match("^(.*)/[^/]*$") or "spec") .. "/data"
end

--- Reads a texmex .fvecs file: returns an array of packed little-endian
-- float32 strings (what collections take as vectors) and the dimension.
function helpers.read_fvecs(path, limit)
  local f = assert(io.open(path, "rb"), "cannot open " .. path)
  local data = f:read("a")
  f:close()
  local dim = string.unpack("<i4", data)
  local rec = 4 + 4 * dim
  local out = {}
  for off = 1, #data, rec do
    if limit and #out >= limit then break end
    out[#out + 1] = data:sub(off + 4, off + rec - 1)
  end
  return out, dim
end

--- Reads a texmex .ivecs file: an array of arrays of 0-based ids.
function helpers.read_ivecs(path, limit)
  local f = assert(io.open(path, "rb"), "cannot open " .. path)
  local data = f:read("a")
  f:close()
  local k = string.unpack("<i4", data)
  local out = {}
  for off = 1, #data, 4 + 4 * k do
    if limit and #out >= limit then break end
    out[#out + 1] = { string.unpack("<" .. string.rep("i4", k), data, off + 4) }
    out[#out].n = nil
    table.remove(out[#out]) -- string.unpack's trailing position
  end
  return out
end

--- Wall-clock seconds (float).
helpers.now = system.gettime

--- Sleeps for s seconds.
helpers.sleep = system.sleep

--- Wraps a test body so it runs inside a fresh coroutine, whose Lua stack
-- starts at about 40 slots: C code that pushes without making room first
-- overflows it there (and crashes, or shows under ASan). Errors (busted's
-- failure objects included) are rethrown as they are, a string with the
-- coroutine's traceback.
function helpers.in_coroutine(body)
  return function(...)
    local co = coroutine.create(body)
    local res = table.pack(coroutine.resume(co, ...))
    if not res[1] then
      local err = res[2]
      if type(err) == "string" then err = debug.traceback(co, err) end
      error(err, 0)
    end
    if coroutine.status(co) ~= "dead" then error("the test body yielded", 0) end
    return table.unpack(res, 2, res.n)
  end
end

--- The two ways a contract spec runs, given busted's `it`: each run has
-- an `it` that runs the body as it is, then one that runs it inside a
-- coroutine (helpers.in_coroutine); `run.name` is "" or " (in a
-- coroutine)", for describe names.
function helpers.runs(plain)
  return {
    { name = "", it = plain },
    { name = " (in a coroutine)",
      it = function(name, body) return plain(name, helpers.in_coroutine(body)) end },
  }
end

--- Stores of one fresh tenant on each kind of backend, for the export
-- section specs. Returns a table: open(kind) (kind "memory", "sqlite" or
-- "postgres"), tenant() and stores() (those opened so far), and before /
-- after for the spec to pass to busted's before_each / after_each (a new
-- tenant and SQLite path; clean(db) on each store still open, then close,
-- and the file removed).
function helpers.section_stores(prefix, clean)
  local storage = require "llmspell.storage"
  local tenant, path, stores
  local t = {}
  function t.before()
    tenant = helpers.unique_tenant(prefix)
    path = helpers.tmpname(".db")
    stores = {}
  end
  function t.after()
    for _, db in ipairs(stores) do
      if pcall(db.tenant, db) then
        clean(db)
        db:close()
      end
    end
    helpers.remove_db(path)
  end
  function t.open(kind)
    local db
    if kind == "memory" then
      db = storage.open { backend = "memory", tenant = tenant }
    elseif kind == "sqlite" then
      db = storage.open { backend = "sqlite", path = path, tenant = tenant }
    else
      db = storage.open { backend = "postgres", url = helpers.pg_url(), tenant = tenant }
    end
    stores[#stores + 1] = db
    return db
  end
  function t.tenant() return tenant end
  function t.stores() return stores end
  return t
end

--- Races processes: starts one child per argument list in `argv` (each a
-- Lua script and its arguments, run with helpers.lua_command), waits until
-- every child has written "ready" to its stderr, then creates the file
-- `go` they wait for. Returns each child's stdout, in order, after
-- asserting that every child succeeded.
function helpers.race(argv, go)
  local quote = helpers.shell_quote
  local children, errs = {}, {}
  for i, args in ipairs(argv) do
    errs[i] = helpers.tmpname(".err")
    local q = {}
    for j, a in ipairs(args) do q[j] = quote(tostring(a)) end
    children[i] = assert(io.popen(helpers.lua_command(table.concat(q, " ")) .. " 2>"
                                  .. quote(errs[i])))
  end
  -- all are ready (or failed) before the go file appears
  for i = 1, #argv do
    local deadline = helpers.now() + 30
    while true do
      local f = io.open(errs[i])
      local text = f and f:read("a") or ""
      if f then f:close() end
      if text:match("ready") then break end
      assert(helpers.now() < deadline, "child " .. i .. " not ready: " .. text)
      helpers.sleep(0.01)
    end
  end
  assert(io.open(go, "w")):close()
  local outs = {}
  for i, c in ipairs(children) do
    outs[i] = c:read("a")
    local ok = c:close()
    local f = assert(io.open(errs[i]))
    local err = f:read("a")
    f:close()
    os.remove(errs[i])
    assert(ok, "child " .. i .. " failed: " .. err)
  end
  return outs
end

--- Calls f and returns the error it raised (fails the test when it did not).
function helpers.error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error, but the call succeeded")
  return err
end

return helpers
