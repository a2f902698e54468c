--- The C vector index (csrc/hnsw.c, csrc/distance.c) tested on its own:
-- compiles spec/c/test_hnsw.c with AddressSanitizer and UBSan into a temp
-- dir and runs it on ../shared/data (or $LLMSPELL_DATA_DIR). The C test
-- covers kernels, every metric against brute force, siftsmall recall
-- against the official ground truth, filters, churn, snapshots and threads.

-- the repository root, from this file's own path (busted runs from the root,
-- but do not depend on it)
local here = debug.getinfo(1, "S").source:match("^@(.*)$") or "spec/hnsw_c_spec.lua"
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

describe("hnsw C core", function()
  local dir, exe

  setup(function()
    local base = os.tmpname()
    os.remove(base)
    dir = base .. "-hnsw"
    assert(os.execute("mkdir -p " .. sh_quote(dir)))
    exe = dir .. "/test_hnsw"
  end)

  teardown(function()
    if dir then os.execute("rm -rf " .. sh_quote(dir)) end
  end)

  -- compiles test_hnsw.c with the index into `out`; extra: more cc flags
  local function build(out, extra)
    local cc = os.getenv("CC")
    if not cc or cc == "" then cc = "cc" end
    local flags = table.concat({
      "-std=c11 -D_POSIX_C_SOURCE=200809L -O1 -g",
      "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined",
      "-Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes", extra or "",
    }, " ")
    local srcs = {}
    for _, f in ipairs { "csrc/hnsw.c", "csrc/distance.c", "spec/c/test_hnsw.c" } do
      srcs[#srcs + 1] = sh_quote(root .. "/" .. f)
    end
    local code, msg = run(string.format("%s%s %s -I%s %s -o %s -lpthread -lm", CLEAN_ENV,
      cc, flags, sh_quote(root .. "/csrc"), table.concat(srcs, " "), sh_quote(out)))
    assert.equal(0, code, "compiling test_hnsw.c failed:\n" .. msg)
  end

  it("builds and passes the standalone test under ASan and UBSan", function()
    build(exe)
    local code, out

    local data = os.getenv("LLMSPELL_DATA_DIR")
    if not data or data == "" then data = root .. "/../shared/data" end
    code, out = run(string.format(
      "%sASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 %s %s",
      CLEAN_ENV, sh_quote(exe), sh_quote(data)))
    -- the test's own report, visible with busted's verbose output
    io.stdout:write("\n", out)
    assert.equal(0, code, "test_hnsw failed:\n" .. out)

    local recall = out:match("siftsmall recall@10 = (%d%.%d+) %(M=16 efC=200 ef=100")
    assert.is_truthy(recall, "no siftsmall recall line in:\n" .. out)
    assert.is_true(tonumber(recall) >= 0.95, "siftsmall recall@10 " .. recall .. " < 0.95")
    assert.matches("ok: %d+ checks passed", out)
  end)

  it("survives an allocation failure at every allocation point", function()
    -- every malloc/realloc/calloc in hnsw.c goes through a wrapper that
    -- fails from the k-th call on; each operation is run for k = 0, 1, ...
    local oom = dir .. "/test_hnsw_oom"
    build(oom, "-DHNSW_TEST_OOM -DHNSW_NO_HW_CRC "
      .. "-Dmalloc=oom_malloc -Drealloc=oom_realloc -Dcalloc=oom_calloc")
    local code, out = run(string.format("%sASAN_OPTIONS=detect_leaks=1:abort_on_error=1 %s",
      CLEAN_ENV, sh_quote(oom)))
    io.stdout:write("\n", out)
    assert.equal(0, code, "test_hnsw (allocation failures) failed:\n" .. out)
    assert.matches("oom: deserialize +survives", out)
    assert.matches("ok: %d+ checks passed %(allocation failures%)", out)
  end)
end)
