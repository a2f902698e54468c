--- The C metadata values, JSON and filters (csrc/value.c, csrc/json.c,
-- csrc/filter.c) tested on their own: compiles spec/c/test_value.c and
-- spec/c/test_filter.c with AddressSanitizer and UBSan into a temp dir and
-- runs them. The C tests cover the value API, JSON round trips and
-- malformed input, every filter operator, error messages with paths, and
-- random filters against a brute-force reference evaluator.

local ctest = require "spec.support.ctest"

describe("value, JSON and filter C core", function()
  local dir
  setup(function() dir = ctest.temp_dir("filter") end)
  teardown(function() ctest.remove_dir(dir) end)

  local function build_and_run(name, sources)
    return ctest.build_and_run(dir, { name = name, sources = sources,
                                      libs = "-lyajl -lpthread -lm" })
  end

  it("value API and JSON pass their standalone test under ASan and UBSan", function()
    build_and_run("test_value",
      { "csrc/base/*.c", "csrc/value/value.c", "csrc/value/json.c", "csrc/value/json_scan.c",
        "spec/c/test_value.c" })
  end)

  it("filters pass their standalone test under ASan and UBSan", function()
    local out = build_and_run("test_filter", { "csrc/base/*.c", "csrc/value/*.c",
      "spec/c/test_filter.c" })
    assert.matches("random: %d+ filters x %d+ metadata", out)
  end)
end)
