--- The export/import slots of the memory and SQLite backends
-- (csrc/backends/memory/, csrc/backends/sqlite/) tested without Lua: compiles
-- spec/c/test_export_slots.c with AddressSanitizer and UBSan into a temp dir
-- and runs it there. The same assertions run through lls_memory_vt and
-- lls_sqlite_vt: kv_dump paging, order and expiry; kv_load with each
-- on_conflict mode (repeated keys, expired rows, nothing written on a
-- conflict), metadata/kv_id/times round trip, set() keeping metadata;
-- vec_dump paging in id order and vec_has; sections in (section, ord)
-- order with ord -1 first, replace and clear; rollback and savepoints over
-- kv_load and sec_put; check(). SQLite alone: migration 3 (column, table,
-- re-run, upgrade of a version-2 file), tenant isolation, and check()
-- finding a page overwritten in a copy of a file.

local ctest = require "spec.support.ctest"

describe("export/import backend slots (C)", function()
  local dir
  setup(function() dir = ctest.temp_dir("expslots") end)
  teardown(function() ctest.remove_dir(dir) end)

  it("builds and passes the standalone test under ASan and UBSan", function()
    ctest.build_and_run(dir, {
      name = "test_export_slots",
      sources = { "csrc/base/*.c", "csrc/backend/*.c", "csrc/backends/memory/*.c",
                  "csrc/backends/sqlite/*.c", "csrc/vector/distance.c",
                  "spec/c/test_export_slots.c" },
      libs = "-lsqlite3 -lm",
      args = ctest.quote(dir),
    })
  end)
end)
