--- Default thread counts follow the CPUs the process may use
-- (csrc/vector/cpus.c): the affinity mask (`taskset -c 0` gives one
-- thread) and cgroup CPU quotas (v2 cpu.max, v1 cpu.cfs_quota_us; the
-- parsing runs in spec/c/test_cpus.c against a fake cgroup tree), not the
-- machine's online count.
local ctest = require "spec.support.ctest"
local helpers = require "spec.helpers"

local function nproc()
  local p = assert(io.popen("nproc"))
  local n = tonumber(p:read("l"))
  p:close()
  return n
end

describe("usable CPUs", function()
  local dir
  setup(function() dir = ctest.temp_dir("cpus") end)
  teardown(function() ctest.remove_dir(dir) end)

  it("reads cgroup quotas from a fake tree, and the affinity mask", function()
    local out = ctest.build_and_run(dir, { name = "test_cpus",
      sources = { "csrc/vector/cpus.c", "spec/c/test_cpus.c" },
      args = ctest.quote(dir .. "/tree") .. " " .. nproc() })
    assert.matches("cgroup v2 ok", out)
    assert.matches("cgroup v1 ok", out)
  end)

  it("gives a collection one thread under taskset -c 0", function()
    local script = "local s = require 'llmspell.storage'; local db = s.open('memory'); "
      .. "local c = db:create_collection('c', { dimension = 2 }); "
      .. "io.write(c:stats().threads)"
    local p = assert(io.popen("taskset -c 0 env " .. helpers.lua_command("-e " .. ctest.quote(script))
                              .. " 2>&1"))
    local out = p:read("a")
    p:close()
    assert.equal("1", out)
    -- without a mask: the CPUs the affinity mask allows (nproc), or fewer
    -- under a cgroup quota, at most max_threads
    p = assert(io.popen(helpers.lua_command("-e " .. ctest.quote(script)) .. " 2>&1"))
    out = p:read("a")
    p:close()
    local limit = require("llmspell.storage").limits.max_threads
    local n = tonumber(out)
    assert.is_truthy(n, out)
    assert.is_true(n >= 1 and n <= math.min(nproc(), limit), out)
  end)
end)
