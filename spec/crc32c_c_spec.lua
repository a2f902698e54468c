--- CRC-32C (csrc/base/crc32c.c), the per-record checksum of the SQLite
-- backend: compiles spec/c/test_crc32c.c with AddressSanitizer and UBSan
-- and runs it (published check values; the SSE4.2 and software paths
-- agree over every length and alignment).

local ctest = require "spec.support.ctest"

describe("CRC-32C", function()
  local dir
  setup(function() dir = ctest.temp_dir("crc32c") end)
  teardown(function() ctest.remove_dir(dir) end)

  it("gives the published check values on both paths", function()
    local out = ctest.build_and_run(dir, { name = "test_crc32c",
      sources = { "csrc/base/crc32c.c", "spec/c/test_crc32c.c" } })
    assert.matches("known values ok", out)
  end)
end)
