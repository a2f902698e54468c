--- The SQLite backend's vector-collection slots (csrc/kv_sqlite.c) tested
-- without Lua: compiles spec/c/test_sqlite_vectors.c with AddressSanitizer
-- and UBSan into a temp dir and runs it there. The C test opens the backend
-- through lls_sqlite_vt and covers collections (create, get, literal-prefix
-- list, drop, tenant isolation), rows (add conflicts, upsert, delete,
-- tombstones, seq bookkeeping, catch-up streams), transactions and
-- savepoints, snapshots (parts, newest wins), tombstone pruning and the
-- "history pruned" error, two handles on one file, and a 10k x 768-d batch.

-- the repository root, from this file's own path (busted runs from the root,
-- but do not depend on it)
local here = debug.getinfo(1, "S").source:match("^@(.*)$") or "spec/sqlite_vectors_c_spec.lua"
local root = here:match("^(.*)/spec/[^/]*$") or "."

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- `make asan` preloads the sanitizer runtime into the interpreter; the
-- compiler and the test binary (which links its own) must not inherit it.
local CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

describe("sqlite vector slots (C)", function()
  local dir, exe

  setup(function()
    local base = os.tmpname()
    os.remove(base)
    dir = base .. "-sqlvec"
    assert(os.execute("mkdir -p " .. sh_quote(dir)))
    exe = dir .. "/test_sqlite_vectors"
  end)

  teardown(function()
    if dir then os.execute("rm -rf " .. sh_quote(dir)) end
  end)

  it("builds and passes the standalone test under ASan and UBSan", function()
    local cc = os.getenv("CC")
    if not cc or cc == "" then cc = "cc" end
    local flags = table.concat({
      "-std=c11 -D_POSIX_C_SOURCE=200809L -O1 -g",
      "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined",
      "-Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes",
    }, " ")
    local srcs = {}
    for _, f in ipairs { "csrc/kv_sqlite.c", "csrc/util.c", "csrc/buf.c",
                         "spec/c/test_sqlite_vectors.c" } do
      srcs[#srcs + 1] = sh_quote(root .. "/" .. f)
    end
    local code, out = run(string.format("%s%s %s -I%s %s -o %s -lsqlite3", CLEAN_ENV,
      cc, flags, sh_quote(root .. "/csrc"), table.concat(srcs, " "), sh_quote(exe)))
    assert.equal(0, code, "compiling test_sqlite_vectors.c failed:\n" .. out)

    code, out = run(string.format(
      "%sASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 %s %s",
      CLEAN_ENV, sh_quote(exe), sh_quote(dir)))
    -- the test's own report, visible with busted's verbose output
    io.stdout:write("\n", out)
    assert.equal(0, code, "test_sqlite_vectors failed:\n" .. out)
    assert.matches("ok: %d+ checks passed", out)
  end)
end)
