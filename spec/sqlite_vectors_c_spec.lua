--- The SQLite backend's vector-collection slots (csrc/backends/sqlite/) tested
-- without Lua: compiles spec/c/test_sqlite_vectors.c with AddressSanitizer
-- and UBSan into a temp dir and runs it there. The C test opens the backend
-- through lls_sqlite_vt and covers collections (create, get, literal-prefix
-- list, drop, tenant isolation), rows (add conflicts, upsert, delete,
-- tombstones, seq bookkeeping, catch-up streams), transactions and
-- savepoints, snapshots (parts, newest wins), tombstone pruning and the
-- "history pruned" error, two handles on one file, and a 10k x 768-d batch.

local ctest = require "spec.support.ctest"

describe("sqlite vector slots (C)", function()
  local dir
  setup(function() dir = ctest.temp_dir("sqlvec") end)
  teardown(function() ctest.remove_dir(dir) end)

  it("builds and passes the standalone test under ASan and UBSan", function()
    ctest.build_and_run(dir, {
      name = "test_sqlite_vectors",
      sources = { "csrc/base/*.c", "csrc/backend/*.c", "csrc/backends/sqlite/*.c",
                  "csrc/vector/distance.c", "spec/c/test_sqlite_vectors.c" },
      libs = "-lsqlite3 -lm",
      args = ctest.quote(dir),
    })
  end)
end)
