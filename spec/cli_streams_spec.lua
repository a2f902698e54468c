--- The command-line tool and the shell around it: `-o -` and `-i -` stream
-- through stdout and stdin (the report going to stderr), `info --json`
-- carries `ok` and `command` like every other command, and an export
-- stopped by SIGTERM, SIGHUP or two Ctrl-Cs leaves no FILE.part behind
-- (csrc/lua/signals.c); the exporter and importer take open file handles.
local storage = require "llmspell.storage"
local cjson = require "cjson"
local helpers = require "spec.helpers"

local q = helpers.shell_quote
local CWD
do
  local p = assert(io.popen("pwd"))
  CWD = assert(p:read("l"))
  p:close()
end
local CLI = CWD .. "/bin/llmspell-storage"

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Children load this process's build, from any directory.
local function abs_paths(paths) return (paths:gsub("%f[^;%z]%./", CWD .. "/")) end
local PRELOAD = os.getenv("LD_PRELOAD")
local ENV = string.format("LUA_PATH=%s LUA_CPATH=%s%s", q(abs_paths(package.path)),
                          q(abs_paths(package.cpath)),
                          PRELOAD and PRELOAD ~= "" and (" LD_PRELOAD=" .. q(PRELOAD)) or "")
-- the tool as one command word (for pipes); other tools run without the
-- sanitizer runtime `make asan` preloads (its leak checker fails them)
local TOOL = ENV .. " lua5.4 " .. q(CLI)

--- Runs a shell line (`$TOOL` stands for the tool) in dir; returns the
-- exit code, stdout and stderr.
local function sh(dir, line)
  local out, err = helpers.tmpname(".out"), helpers.tmpname(".err")
  local script = line:gsub("%$TOOL", function() return TOOL end)
  local _, _, code = os.execute(string.format("unset LD_PRELOAD; cd %s && { %s ; } >%s 2>%s",
                                              q(dir), script,
                                              q(out), q(err)))
  local o, e = read_file(out) or "", read_file(err) or ""
  os.remove(out)
  os.remove(err)
  return code, o, e
end

local function filled_sqlite(path)
  local db = storage.open("sqlite:" .. path)
  for i = 1, 50 do db:set(string.format("key%03d", i), "value " .. i) end
  local col = db:create_collection("docs", { dimension = 3 })
  for i = 1, 20 do col:add { id = "d" .. i, vector = { i, 1, 0 }, metadata = { n = i } } end
  db:close()
end

local function remove_tree(dir) os.execute("rm -rf " .. q(dir)) end

describe("llmspell-storage and the shell", function()
  local dir, src
  before_each(function()
    dir = helpers.tmpname("-cli")
    assert(os.execute("mkdir -p " .. q(dir)))
    src = dir .. "/src.db"
    filled_sqlite(src)
  end)
  after_each(function() remove_tree(dir) end)

  it("exports to stdout with -o -, the report on stderr, no file named -", function()
    local code, out, err = sh(dir, "$TOOL export sqlite:src.db -o -")
    assert.equal(0, code, err)
    assert.is_false(exists(dir .. "/-"))
    assert.is_false(exists(dir .. "/-.part"))
    local doc = cjson.decode(out)
    assert.equal("1.0", doc.version)
    assert.equal(50, #doc.data.kv_store)
    assert.matches("^exported 50 KV entries, 20 vectors in 1 collection to stdout", err)
    -- --json: the report is JSON on stderr, the document alone on stdout
    code, out, err = sh(dir, "$TOOL export sqlite:src.db -o - --json")
    assert.equal(0, code, err)
    assert.equal("1.0", cjson.decode(out).version)
    local rep = cjson.decode(err)
    assert.is_true(rep.ok)
    assert.equal("export", rep.command)
    assert.equal(50, rep.stats.kv_entries)
    -- into a pipe, and appended to a file (>>) without truncating it
    code, out, err = sh(dir, "$TOOL export sqlite:src.db -o - --quiet | wc -c")
    assert.equal(0, code, err)
    assert.is_true(tonumber(out) > 1000, out)
    write_file(dir .. "/log", "first line\n")
    code, out, err = sh(dir, "$TOOL export sqlite:src.db -o - --quiet >> log")
    assert.equal(0, code, err)
    local log = read_file(dir .. "/log")
    assert.equal("first line\n", log:sub(1, 11))
    assert.equal("1.0", cjson.decode(log:sub(12)).version)
    -- a failure: the error on stderr, as one line, and as JSON there too
    code, out, err = sh(dir, "$TOOL export sqlite:src.db -o - --collection nope --json")
    assert.equal(1, code)
    local e = cjson.decode(err:match("\n(.*)$"))
    assert.is_false(e.ok)
    assert.equal("not_found", e.error.code)
  end)

  it("imports from stdin with -i -: a pipe, a redirected file", function()
    local code, _, err = sh(dir, "$TOOL export sqlite:src.db -o dump.json --quiet")
    assert.equal(0, code, err)
    local out
    code, out, err = sh(dir, "cat dump.json | $TOOL import sqlite:a.db -i - --json")
    assert.equal(0, code, err)
    local rep = cjson.decode(out)
    assert.is_true(rep.ok)
    assert.equal("import", rep.command)
    assert.equal(50, rep.stats.kv_entries)
    assert.equal(20, rep.stats.vectors)
    local db = storage.open("sqlite:" .. dir .. "/a.db")
    assert.equal("value 7", db:get("key007"))
    assert.equal(20, db:collection("docs"):count())
    db:close()
    code, out, err = sh(dir, "$TOOL import sqlite:b.db -i - < dump.json")
    assert.equal(0, code, err)
    assert.matches("^imported 50 KV entries, 20 vectors in 1 collection from stdin", out)
    assert.is_false(exists(dir .. "/-"))
    -- a truncated stream is refused, all or nothing
    code, out, err = sh(dir, "head -c 3000 dump.json | $TOOL import sqlite:c.db -i -")
    assert.equal(1, code)
    assert.matches("%(format%)", err)
    db = storage.open("sqlite:" .. dir .. "/c.db")
    assert.equal(0, db:stats().keys)
    db:close()
    -- and export | import, end to end
    code, out, err = sh(dir, "$TOOL export sqlite:src.db -o - --quiet | "
                        .. "$TOOL import sqlite:d.db -i - --quiet")
    assert.equal(0, code, err)
    db = storage.open("sqlite:" .. dir .. "/d.db")
    assert.equal(50, db:stats().keys)
    db:close()
  end)

  it("runs -o - and -i - in-process through the given handles", function()
    local cli = require "llmspell.storage.cli"
    local data, rep = helpers.tmpname(".json"), helpers.tmpname(".txt")
    local fo, fe = assert(io.open(data, "wb")), assert(io.open(rep, "wb"))
    local code = cli.main({ "export", "sqlite:" .. src, "-o", "-" }, { stdout = fo, stderr = fe })
    fo:close()
    fe:close()
    assert.equal(0, code, read_file(rep))
    assert.equal("1.0", cjson.decode(read_file(data)).version)
    assert.matches("^exported 50 KV entries", read_file(rep))
    local fi = assert(io.open(data, "rb"))
    fo = assert(io.open(rep, "wb"))
    code = cli.main({ "import", "sqlite:" .. dir .. "/in.db", "-i", "-", "--json" },
                    { stdin = fi, stdout = fo, stderr = fo })
    fi:close()
    fo:close()
    assert.equal(0, code, read_file(rep))
    assert.equal(50, cjson.decode(read_file(rep)).stats.kv_entries)
    os.remove(data)
    os.remove(rep)
  end)

  it("reports ok and command in info --json, like every other command", function()
    local code, out, err = sh(dir, "$TOOL info sqlite:src.db --json")
    assert.equal(0, code, err)
    local doc = cjson.decode(out)
    assert.is_true(doc.ok)
    assert.equal("info", doc.command)
    assert.equal(50, doc.keys)
    assert.equal("docs", doc.collections[1].name)
  end)
end)

describe("the exporter and importer on file handles", function()
  it("write to and read from open handles, which stay open", function()
    local db = storage.open("memory")
    for i = 1, 2500 do db:set(string.format("k%05d", i), string.rep("v", 100)) end
    local path = helpers.tmpname(".json")
    local f = assert(io.open(path, "wb"))
    f:write("#") -- written where the handle stands, after what is there
    local st = storage.exporter(db):to_file(f)
    assert.equal(2500, st.kv_entries)
    assert.equal("file", io.type(f))
    f:close()
    local text = read_file(path)
    assert.equal("#", text:sub(1, 1))
    assert.equal(st.bytes, #text - 1)
    f = assert(io.open(path, "rb"))
    assert.equal("#", f:read(1)) -- read from where the handle stands
    local db2 = storage.open("memory")
    local seen
    local ist = storage.importer(db2):from_file(f, { progress = function(_, _, _, bytes, total)
      seen = total
    end })
    assert.equal(2500, ist.kv_entries)
    assert.equal(#text - 1, seen) -- the bytes from the handle's position
    assert.equal("file", io.type(f))
    f:close()
    assert.equal(string.rep("v", 100), db2:get("k02500"))
    -- closed handles and other values are refused, naming the argument
    local err = helpers.error_of(storage.exporter(db).to_file, storage.exporter(db), f)
    assert.matches("bad argument #2.*closed", err)
    err = helpers.error_of(storage.importer(db2).from_file, storage.importer(db2), {})
    assert.matches("bad argument #2.*path %(string%) or file handle expected", err)
    -- a progress function that closes the handle: an io error, nothing left open
    f = assert(io.open(path, "wb"))
    err = helpers.error_of(storage.exporter(db).to_file, storage.exporter(db), f,
                           { progress = function() if io.type(f) == "file" then f:close() end end })
    assert.equal("io", err.code)
    os.remove(path)
    db:close()
    db2:close()
  end)
end)

describe("an export stopped by a signal", function()
  -- The export reads a PostgreSQL table another session holds locked, so
  -- it waits (in C, with FILE.part created) until the test has sent its
  -- signals and they have been delivered; then the lock goes and the tool
  -- goes on, or has ended.
  local SCRIPT = [=[
set -u
url=$1 tenant=$2 out=$3 sigs=$4
PGAPPNAME=llmspell-sig-lock psql "$url" -X -q -c 'BEGIN' \
  -c 'LOCK TABLE llmspell.kv_store IN ACCESS EXCLUSIVE MODE' -c 'SELECT pg_sleep(120)' \
  >/dev/null 2>&1 &
lock=$!
i=0
until [ "$(psql "$url" -X -A -t -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a
      USING (pid) WHERE a.application_name = 'llmspell-sig-lock' AND l.granted
      AND l.mode = 'AccessExclusiveLock'")" = 1 ] || [ $i -ge 600 ]; do
  sleep 0.05; i=$((i+1))
done
$TOOL export "$url" --tenant "$tenant" -o "$out" >"$out.stdout" 2>"$out.stderr" &
pid=$!
i=0
until [ -e "$out.part" ] || [ $i -ge 600 ]; do sleep 0.05; i=$((i+1)); done
[ -e "$out.part" ] && echo "part created"
# one signal at a time: each is delivered (no longer pending in
# /proc/PID/status) before the next is sent, or two would merge into one
for s in $sigs; do
  kill -s "$s" $pid
  i=0
  while grep -q '^ShdPnd:.*[1-9a-f]' /proc/$pid/status 2>/dev/null && [ $i -lt 600 ]; do
    sleep 0.05; i=$((i+1))
  done
done
psql "$url" -X -q -A -t -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
  WHERE application_name = 'llmspell-sig-lock'" >/dev/null
wait $pid
echo "status $?"
wait $lock
cat "$out.stderr"
rm -f "$out.stdout" "$out.stderr"
]=]

  local function stopped(sigs)
    local tenant = helpers.unique_tenant("cli_sig")
    local db = storage.open(helpers.pg_url(), { tenant = tenant })
    local m = {}
    for i = 1, 3000 do m[string.format("k%05d", i)] = "v" end
    db:set_batch(m)
    db:close()
    local dir = helpers.tmpname("-sig")
    assert(os.execute("mkdir -p " .. q(dir)))
    local script = dir .. "/run.sh"
    write_file(script, SCRIPT:gsub("%$TOOL", function() return TOOL end))
    local out = dir .. "/out.json"
    local p = assert(io.popen(string.format("unset LD_PRELOAD; sh %s %s %s %s %s 2>&1",
                                            q(script), q(helpers.pg_url()), q(tenant), q(out),
                                            q(sigs))))
    local text = p:read("a")
    p:close()
    local left = {}
    local ls = assert(io.popen("ls -A " .. q(dir)))
    for name in ls:lines() do if name ~= "run.sh" then left[#left + 1] = name end end
    ls:close()
    remove_tree(dir)
    return text, left
  end

  it("by SIGTERM: exit 143, no FILE.part, no FILE", function()
    local text, left = stopped("TERM")
    assert.matches("part created", text)
    assert.matches("status 143", text)
    assert.matches("llmspell%-storage: terminated %(SIGTERM%)", text)
    assert.same({}, left)
  end)

  it("by SIGHUP: exit 129, no FILE.part", function()
    local text, left = stopped("HUP")
    assert.matches("status 129", text)
    assert.same({}, left)
  end)

  it("by two Ctrl-Cs (SIGINT twice, the second ends it at once): no FILE.part", function()
    local text, left = stopped("INT INT")
    assert.matches("part created", text)
    assert.matches("status 130", text) -- killed by SIGINT: 128 + 2
    assert.same({}, left)
  end)

  it("by SIGTERM twice: no FILE.part", function()
    local text, left = stopped("TERM TERM")
    assert.matches("status 143", text)
    assert.same({}, left)
  end)

  it("by one Ctrl-C: exit 130, no FILE.part, as before", function()
    local text, left = stopped("INT")
    assert.matches("status 130", text)
    assert.matches("llmspell%-storage: interrupted\n", text)
    assert.same({}, left)
  end)
end)
