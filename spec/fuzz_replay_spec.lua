--- The fuzz corpora as regression inputs: each fuzz target of spec/fuzz/
-- is compiled with the system compiler (no clang or libFuzzer needed)
-- plus spec/fuzz/replay_main.c under AddressSanitizer and UBSan
-- (spec/support/ctest.lua), and run over every file of its corpus
-- spec/fuzz/<target>/. A target aborts on a sanitizer finding or a broken
-- invariant, so a regression on any saved input fails here in seconds.
-- `make fuzz` grows the corpora with libFuzzer (docs/testing.md).
local ctest = require "spec.support.ctest"

local function pg_includedir()
  local code, out = ctest.run(ctest.CLEAN_ENV .. "pg_config --includedir")
  assert(code == 0, "pg_config failed: " .. out)
  return (out:gsub("%s+$", ""))
end

local function lua_cflags()
  local code, out = ctest.run("pkg-config --cflags lua5.4")
  return code == 0 and out:gsub("%s+$", "") or "-I/usr/include/lua5.4"
end

local function corpus_size(target)
  local p = assert(io.popen("ls -1 " .. ctest.quote(ctest.root .. "/spec/fuzz/" .. target)))
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

-- Each target with the sources it needs.
local TARGETS = {
  { name = "import", sources = { "csrc/*/*.c", "csrc/backends/*/*.c", "spec/fuzz/lua_guard.c" } },
  { name = "filter", sources = { "csrc/base/*.c", "csrc/value/*.c" } },
  { name = "snapshot", sources = { "csrc/vector/*.c" } },
  { name = "luavalue", sources = { "csrc/base/*.c", "csrc/value/*.c", "csrc/lua/luavalue.c",
                                   "spec/fuzz/lua_guard.c" } },
}

describe("fuzz corpora replayed under ASan and UBSan", function()
  local dir
  setup(function() dir = ctest.temp_dir("fuzz") end)
  teardown(function() ctest.remove_dir(dir) end)

  for _, t in ipairs(TARGETS) do
    it(t.name .. ": every input of spec/fuzz/" .. t.name .. "/ passes", function()
      local sources = { "spec/fuzz/fuzz_" .. t.name .. ".c", "spec/fuzz/replay_main.c" }
      for _, s in ipairs(t.sources) do sources[#sources + 1] = s end
      local n = corpus_size(t.name)
      assert.is_true(n >= 5, "the corpus of " .. t.name .. " has only " .. n .. " inputs")
      local out = ctest.build_and_run(dir, {
        name = "fuzz_" .. t.name,
        sources = sources,
        includes = { ctest.root .. "/spec/fuzz", pg_includedir() },
        cflags = lua_cflags(),
        libs = "-llua5.4",
        args = ctest.quote(ctest.root .. "/spec/fuzz/" .. t.name),
      })
      assert.matches("ok: " .. n .. " checks passed", out, 1, true)
    end)
  end
end)
