--- The C metadata values, JSON and filters (csrc/value.c, csrc/json.c,
-- csrc/filter.c) tested on their own: compiles spec/c/test_value.c and
-- spec/c/test_filter.c with AddressSanitizer and UBSan into a temp dir and
-- runs them. The C tests cover the value API, JSON round trips and
-- malformed input, every filter operator, error messages with paths, and
-- random filters against a brute-force reference evaluator.

-- the repository root, from this file's own path (busted runs from the root,
-- but do not depend on it)
local here = debug.getinfo(1, "S").source:match("^@(.*)$") or "spec/filter_c_spec.lua"
local root = here:match("^(.*)/spec/[^/]*$") or "."

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- `make asan` preloads the sanitizer runtime into the interpreter; the
-- compiler and the test binaries (which link their own) must not inherit it.
local CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

local FLAGS = table.concat({
  "-std=c11 -D_POSIX_C_SOURCE=200809L -O1 -g",
  "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined",
  "-Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes",
}, " ")

describe("value, JSON and filter C core", function()
  local dir

  setup(function()
    local base = os.tmpname()
    os.remove(base)
    dir = base .. "-filter"
    assert(os.execute("mkdir -p " .. sh_quote(dir)))
  end)

  teardown(function()
    if dir then os.execute("rm -rf " .. sh_quote(dir)) end
  end)

  -- Compiles sources (relative to the root) into dir/name, runs it, and
  -- returns its output after asserting a clean exit.
  local function build_and_run(name, sources)
    local cc = os.getenv("CC")
    if not cc or cc == "" then cc = "cc" end
    local srcs = {}
    for _, f in ipairs(sources) do srcs[#srcs + 1] = sh_quote(root .. "/" .. f) end
    local exe = dir .. "/" .. name
    local code, out = run(string.format("%s%s %s -I%s %s -o %s -lyajl -lpthread -lm",
      CLEAN_ENV, cc, FLAGS, sh_quote(root .. "/csrc"), table.concat(srcs, " "), sh_quote(exe)))
    assert.equal(0, code, "compiling " .. name .. " failed:\n" .. out)
    code, out = run(string.format(
      "%sASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 %s",
      CLEAN_ENV, sh_quote(exe)))
    -- the test's own report, visible with busted's verbose output
    io.stdout:write("\n", out)
    assert.equal(0, code, name .. " failed:\n" .. out)
    assert.matches("ok: %d+ checks passed", out)
    return out
  end

  it("value API and JSON pass their standalone test under ASan and UBSan", function()
    build_and_run("test_value",
      { "csrc/value.c", "csrc/json.c", "csrc/buf.c", "spec/c/test_value.c" })
  end)

  it("filters pass their standalone test under ASan and UBSan", function()
    local out = build_and_run("test_filter", { "csrc/filter.c", "csrc/value.c",
      "csrc/json.c", "csrc/buf.c", "spec/c/test_filter.c" })
    assert.matches("random: %d+ filters x %d+ metadata", out)
  end)
end)
