--- The crash test (scripts/crash-test.lua) in the suite, with few kills:
-- writers SIGKILLed at random points on SQLite and PostgreSQL leave every
-- KV batch, import and collection add whole or absent, SQLite's file
-- passes PRAGMA integrity_check, and the collection reopens and searches.
-- `make crash-test` runs the same driver with 30 kills (CRASH_KILLS).
local helpers = require "spec.helpers"

local HERE = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local DRIVER = HERE .. "/../scripts/crash-test.lua"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- Runs the driver with args; returns its exit code and output. The
-- module paths go along absolute, as the driver's children need them.
local function crash_test(args)
  local pwd = assert(io.popen("pwd"))
  local cwd = assert(pwd:read("l"))
  pwd:close()
  local function abs(paths) return (paths:gsub("%f[^;%z]%./", cwd .. "/")) end
  local p = assert(io.popen(("env LUA_PATH=%s LUA_CPATH=%s LLMSPELL_TEST_PG_URL=%s lua5.4 %s %s 2>&1")
    :format(q(abs(package.path)), q(abs(package.cpath)), q(helpers.pg_url()), q(DRIVER), args)))
  local out = p:read("a")
  local ok, _, code = p:close()
  io.stdout:write("\n", out)
  return ok and 0 or code, out
end

describe("crash test", function()
  it("finds every write all or nothing after 8 kills on SQLite and PostgreSQL", function()
    local code, out = crash_test("--kills 8 --backends sqlite,postgres")
    assert.are.equal(0, code, out)
    assert.matches("crash%-test: 8 kills %(kv, import, collection, components on sqlite, "
                   .. "postgres%), 8 all%-or%-nothing, 0 violations", out)
    -- each writer was killed on each backend, after it had written
    for _, backend in ipairs { "sqlite", "postgres" } do
      for _, kind in ipairs { "kv", "import", "collection", "components" } do
        assert.matches("kill +%d+ +" .. kind .. " +" .. backend .. " +at %+[%d.]+ s: %d+ "
                       .. "acknowledged", out)
      end
    end
    assert.matches("collection sqlite .* reopened from", out)
  end)

  it("reports a writer that is not atomic (negative control)", function()
    -- kv_unsafe writes the same keys as kv, one set at a time: a kill
    -- almost always lands inside a unit, and one half-written unit is
    -- enough for the driver to fail.
    local code, out = crash_test("--kills 3 --backends sqlite --writers kv_unsafe")
    assert.are.equal(1, code, out)
    assert.matches("VIOLATION: batch %d+ has %d+ keys but no marker", out)
    assert.matches("crash%-test: 3 kills %(kv_unsafe on sqlite%), %d all%-or%-nothing, "
                   .. "[123] violations", out)
  end)
end)
