--- The demo (`make demo` runs examples/quickstart.lua): it shows each step
-- a newcomer needs -- key-value, a collection with metadata, a filtered and
-- scoped search with scores, a transaction over key-value and vectors, an
-- export -- on SQLite in a data directory, and it runs twice in a row in
-- the same fresh directory (the second run carries on from the first).
local helpers = require "spec.helpers"

-- Runs a command; its exit code and output (stdout and stderr).
local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function has(out, text, label)
  assert.is_truthy(out:find(text, 1, true), (label or "") .. ": no '" .. text .. "' in:\n" .. out)
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- The lines each run shows, for run n (1 or 2) in the same directory.
local function check_steps(out, n)
  local label = "run " .. n
  -- 1. key-value
  has(out, "== 1. key-value ==", label)
  has(out, 'get user:1      -> {"name":"Ada"}', label)
  has(out, "delete_batch    -> removed 1", label)
  has(out, "otp after 0.3 s -> nil", label)
  -- 2. a collection with metadata, vectors from the labelled toy embedder
  has(out, "== 2. collection with metadata (toy embedder, 96-d) ==", label)
  has(out, "upserted        -> 7 documents", label)
  has(out, "llmspell.storage.Collection (docs, 96-d cosine, 7 vectors)", label)
  has(out, "scope tenant:acme   -> 6 vectors", label)
  -- 3. a filtered, scoped search with scores: the TTL document first, and
  -- no other tenant's document
  has(out, "== 3. filtered, scoped search ==", label)
  assert.matches("\n  1%. kv%-ttl +score 0%.%d%d%d  %[kv 2024%]", out)
  assert.is_nil(out:find("globex-ttl", 1, true), label)
  has(out, "builder query   -> 2 hits with score >= 0.2, best vec-filter", label)
  -- 4. a transaction spanning key-value and vectors, committed and rolled back
  has(out, "== 4. agent memory: a transaction over key-value and vectors ==", label)
  has(out, string.format("committed tx    -> memory:turns = %d, inserted turn-%d, "
                         .. "%d turns remembered", n, n, n), label)
  has(out, string.format("failed tx       -> the model call failed; memory:turns still %d, "
                         .. "turn-lost stored: false", n), label)
  has(out, "recall          -> turn-1 (score ", label)
  -- 5. an export, imported elsewhere
  has(out, "== 5. export and import ==", label)
  has(out, string.format("exported        -> 6 keys, %d vectors in 2 collections to "
                         .. "quickstart-export.json", 7 + n), label)
  has(out, string.format("imported        -> %d records into memory; best hit there: kv-ttl",
                         6 + 7 + n), label)
  -- 6. the file persists
  has(out, "reopened        -> 6 keys", label)
  has(out, "docs reopened   -> 7 vectors; best hit again: kv-ttl", label)
  has(out, 'after close     -> code "closed"', label)
  assert.is_nil(out:lower():find("already exists", 1, true), label)
end

describe("the quickstart", function()
  it("shows every step, twice in a row in one fresh directory", function()
    local base = helpers.tmpname("-qs")
    local dir = base .. "/data" -- does not exist yet: the quickstart creates it
    for n = 1, 2 do
      local code, out = run(helpers.lua_command("examples/quickstart.lua " .. quote(dir)))
      assert.equal(0, code, "run " .. n .. ":\n" .. out)
      check_steps(out, n)
      assert.is_truthy(read_file(dir .. "/quickstart.db"), "run " .. n)
      local export = read_file(dir .. "/quickstart-export.json")
      assert.is_truthy(export and export:find('"version":"1.0"', 1, true), "run " .. n)
    end
    os.execute("rm -rf " .. quote(base))
  end)

  it("uses a temporary directory without an argument and removes it", function()
    local code, out = run(helpers.lua_command("examples/quickstart.lua"))
    assert.equal(0, code, out)
    check_steps(out, 1)
    local dir = out:match("opened llmspell%.storage%.Store %(sqlite (.-)/quickstart%.db,")
    assert.is_truthy(dir, out)
    assert.is_nil(io.open(dir .. "/quickstart.db"), dir)
    assert.is_nil((os.rename(dir, dir)), dir .. " is still there")
  end)

  it("is what `make demo` runs, as README's two commands say", function()
    local makefile = assert(read_file("Makefile"))
    local demo = makefile:match("\ndemo:[^\n]*\n(.-)\n\n")
    assert.is_truthy(demo, "no demo target")
    assert.is_truthy(demo:find("$(LUA) examples/quickstart.lua", 1, true), demo)
    local readme = assert(read_file("README.md"))
    local section = readme:match("\n## The two commands\n(.-)\n## ")
    assert.is_truthy(section, "no 'The two commands' section")
    assert.is_truthy(section:find("make demo", 1, true), section)
    assert.is_truthy(section:find("examples/quickstart.lua", 1, true), section)
  end)
end)
