--- Building and running the standalone C tests in spec/c/ from busted specs.
-- Each test is compiled with AddressSanitizer and UBSan (and -Werror) into a
-- temporary directory and run there; its report is echoed (visible with
-- busted's verbose output) and it must exit 0 and print "ok: N checks passed".
local ctest = {}

-- The repository root, from this file's own path (busted runs from the root,
-- but do not depend on it).
local here = debug.getinfo(1, "S").source:match("^@(.*)$") or "spec/support/ctest.lua"
ctest.root = here:match("^(.*)/spec/support/[^/]*$") or "."

function ctest.quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- `make asan` preloads the sanitizer runtime into the interpreter; the
-- compiler and the test binaries (which link their own) must not inherit it.
ctest.CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "

--- Runs a shell command; returns its exit code and its output (2>&1).
function ctest.run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

-- The Makefile holds the one definition of the compiler flags; the tests
-- add the sanitizers.
local FLAGS
local function flags()
  if not FLAGS then
    local code, out = ctest.run(ctest.CLEAN_ENV .. "make -s --no-print-directory -C "
      .. ctest.quote(ctest.root) .. " print-cflags")
    assert(code == 0, "make print-cflags failed:\n" .. out)
    FLAGS = out:gsub("%s+$", "") .. " -O1 -g -fsanitize=address,undefined"
      .. " -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
  end
  return FLAGS
end

-- The library's own link libraries, so a test that compiles a layer's
-- sources links whatever those sources need (--as-needed drops the rest).
local LIBS
local function libs()
  if not LIBS then
    local code, out = ctest.run(ctest.CLEAN_ENV .. "make -s --no-print-directory -C "
      .. ctest.quote(ctest.root) .. " print-libs")
    assert(code == 0, "make print-libs failed:\n" .. out)
    LIBS = "-Wl,--as-needed " .. out:gsub("%s+$", "")
  end
  return LIBS
end

--- Expands source patterns relative to the root ("csrc/base/*.c") into
-- quoted paths, so the tests follow files as they move within a folder.
local function expand(patterns)
  local out = {}
  for _, pat in ipairs(patterns) do
    local p = assert(io.popen("cd " .. ctest.quote(ctest.root) .. " && ls -1 " .. pat))
    local any = false
    for f in p:lines() do
      out[#out + 1] = ctest.quote(ctest.root .. "/" .. f)
      any = true
    end
    p:close()
    assert(any, "no source matches " .. pat)
  end
  return out
end

--- The vector datasets the C tests read: spec/data in the repository (a
-- small real dataset, see spec/data/README.md), or $LLMSPELL_DATA_DIR for
-- local runs with a folder holding the same files.
function ctest.data_dir()
  local d = os.getenv("LLMSPELL_DATA_DIR")
  if d and d ~= "" then return d end
  return ctest.root .. "/spec/data"
end

--- A fresh temporary directory; remove it with ctest.remove_dir.
function ctest.temp_dir(tag)
  local dir = require("spec.support.tmpdir").path("-" .. tag)
  assert(os.execute("mkdir -p " .. ctest.quote(dir)))
  return dir
end

function ctest.remove_dir(dir)
  if dir then os.execute("rm -rf " .. ctest.quote(dir)) end
end

--- Compiles and runs one test. opts: name, sources (relative to the root;
-- shell patterns such as "csrc/base/*.c" allowed),
-- includes (extra -I dirs), cflags (extra compiler flags), libs (e.g.
-- "-lsqlite3"), env (extra VAR=value words for the run), args (arguments
-- for the binary). Fails the calling
-- test on a compile error, a non-zero exit or a missing "ok" line; returns
-- the output.
function ctest.build_and_run(dir, opts)
  local cc = os.getenv("CC")
  if not cc or cc == "" then cc = "cc" end
  local srcs, incs = expand(opts.sources), { "-I" .. ctest.quote(ctest.root .. "/csrc") }
  for _, d in ipairs(opts.includes or {}) do incs[#incs + 1] = "-I" .. ctest.quote(d) end
  local exe = dir .. "/" .. opts.name
  local code, out = ctest.run(string.format("%s%s %s %s %s %s -o %s %s %s", ctest.CLEAN_ENV, cc,
    flags(), opts.cflags or "", table.concat(incs, " "), table.concat(srcs, " "), ctest.quote(exe),
    opts.libs or "", libs()))
  assert(code == 0, "compiling " .. opts.name .. " failed:\n" .. out)
  code, out = ctest.run(string.format(
    "%s%s ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 %s %s",
    ctest.CLEAN_ENV, opts.env or "", ctest.quote(exe), opts.args or ""))
  io.stdout:write("\n", out)
  assert(code == 0, opts.name .. " failed:\n" .. out)
  assert(out:match("ok: %d+ checks passed"), opts.name .. " printed no 'ok' line:\n" .. out)
  return out
end

return ctest
