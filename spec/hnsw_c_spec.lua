--- The C vector index (csrc/vector/) tested on its own: compiles
-- spec/c/test_hnsw.c with AddressSanitizer and UBSan into a temp dir and
-- runs it on spec/data (or $LLMSPELL_DATA_DIR). The C test covers kernels,
-- every metric against brute force, recall on a DEEP1B slice against its
-- exact ground truth, filters, churn, snapshots and threads.

local ctest = require "spec.support.ctest"

local SOURCES = { "csrc/vector/*.c", "spec/c/test_hnsw.c" }

describe("hnsw C core", function()
  local dir
  setup(function() dir = ctest.temp_dir("hnsw") end)
  teardown(function() ctest.remove_dir(dir) end)

  it("builds and passes the standalone test under ASan and UBSan", function()
    local out = ctest.build_and_run(dir, { name = "test_hnsw", sources = SOURCES,
                                           libs = "-lpthread -lm",
                                           args = ctest.quote(ctest.data_dir()) })
    local recall = out:match("deep1b recall@10 = (%d%.%d+) %(M=16 efC=200 ef=100")
    assert.is_truthy(recall, "no deep1b recall line in:\n" .. out)
    assert.is_true(tonumber(recall) >= 0.95, "deep1b recall@10 " .. recall .. " < 0.95")
  end)

  it("survives an allocation failure at every allocation point", function()
    -- every malloc/realloc/calloc in csrc/vector/ goes through a wrapper that
    -- fails from the k-th call on; each operation is run for k = 0, 1, ...
    local out = ctest.build_and_run(dir, {
      name = "test_hnsw_oom", sources = SOURCES, libs = "-lpthread -lm",
      cflags = "-DHNSW_TEST_OOM -DHNSW_NO_HW_CRC "
               .. "-Dmalloc=oom_malloc -Drealloc=oom_realloc -Dcalloc=oom_calloc",
    })
    assert.matches("oom: deserialize +survives", out)
    assert.matches("ok: %d+ checks passed %(allocation failures%)", out)
  end)
end)
