--- The strict readers under the importer and storage.json_decode, tested on
-- their own: base64 (csrc/base/b64.c: RFC 4648, whole and streamed) and the
-- lexical pass beside yajl (csrc/value/json_scan.c: RFC 8259 whitespace,
-- strict UTF-8, paired surrogate escapes, captures and token boundaries,
-- the same however the text is cut into pieces). Compiled with
-- AddressSanitizer and UBSan by spec/support/ctest.lua.

local ctest = require "spec.support.ctest"

describe("strict base64 and JSON scanning in C", function()
  local dir
  setup(function() dir = ctest.temp_dir("strict") end)
  teardown(function() ctest.remove_dir(dir) end)

  it("base64 decodes strictly, whole and in pieces", function()
    ctest.build_and_run(dir, { name = "test_b64",
      sources = { "csrc/base/b64.c", "csrc/base/buf.c", "spec/c/test_b64.c" } })
  end)

  it("the JSON scan gives the same events and errors however the text is cut", function()
    ctest.build_and_run(dir, { name = "test_json_scan",
      sources = { "csrc/value/json_scan.c", "csrc/base/buf.c", "spec/c/test_json_scan.c" } })
  end)
end)
