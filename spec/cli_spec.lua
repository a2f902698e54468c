--- The command-line tool bin/llmspell-storage, run as a child process with
-- this process's module paths: every command on SQLite files, memory and
-- PostgreSQL, help and usage errors (exit 2), --json output, export/import
-- round trips through files, migrate both ways between SQLite and
-- PostgreSQL, validate on healthy and corrupted stores (exit 0 / 3),
-- operational errors (exit 1, one line, no traceback), the progress bar
-- (only on a terminal) and `make install`; and the same module
-- (llmspell.storage.cli) in-process through cli.main.
local storage = require "llmspell.storage"
local cjson = require "cjson"
local helpers = require "spec.helpers"

local CLI = "bin/llmspell-storage"

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local CWD
do
  local p = assert(io.popen("pwd"))
  CWD = assert(p:read("l"))
  p:close()
end

-- This process's module paths, made absolute, so children load the same
-- build from any directory.
local function abs_paths(paths)
  return (paths:gsub("%f[^;%z]%./", CWD .. "/"))
end
-- A sanitizer runtime `make asan` preloads is for Lua children only:
-- other tools (sqlite3, script, cp...) run without it, since its leak
-- checker would fail them at exit.
local PRELOAD = os.getenv("LD_PRELOAD")
local ENV = string.format("LUA_PATH=%s LUA_CPATH=%s%s", q(abs_paths(package.path)),
                          q(abs_paths(package.cpath)),
                          PRELOAD and PRELOAD ~= "" and (" LD_PRELOAD=" .. q(PRELOAD)) or "")

--- A shell command for a tool that is not Lua.
local function tool(cmd) return "unset LD_PRELOAD; " .. cmd end

--- Runs the CLI with the given arguments (an array, each shell-quoted).
-- @return exit code, stdout, stderr
local function run(args, opts)
  opts = opts or {}
  local words = {}
  for i, a in ipairs(args) do words[i] = q(a) end
  local out, err = helpers.tmpname(".out"), helpers.tmpname(".err")
  local cmd = string.format("unset LD_PRELOAD; %s %s %s %s >%s 2>%s", opts.env or ENV,
                            opts.lua or "lua5.4",
                            opts.cli or CLI, table.concat(words, " "), q(out), q(err))
  local _, _, code = os.execute(cmd)
  local o, e = read_file(out) or "", read_file(err) or ""
  os.remove(out)
  os.remove(err)
  return code, o, e
end

--- The stderr of a failed run: exactly one line "llmspell-storage: ...",
-- no traceback and no source positions.
local function assert_one_line(err)
  assert.matches("^llmspell%-storage: [^\n]+\n$", err)
  assert.not_matches("traceback", err)
  assert.not_matches("%.lua:%d+:", err)
  assert.not_matches("llmspell%-storage:%d+:", err)
end

local function decode(s)
  local ok, v = pcall(cjson.decode, s)
  assert(ok, "not one JSON document: " .. tostring(s))
  return v
end

local function sqlite3(path, sql)
  local p = assert(io.popen(tool(string.format("sqlite3 -batch -bail %s %s 2>&1", q(path),
                                                   q(sql)))))
  local out = p:read("a")
  local ok = p:close()
  assert(ok, "sqlite3 failed: " .. out)
  return (out:gsub("\n$", ""))
end

local DIM = 8
local N_KEYS, N_TTL, N_VECTORS = 40, 10, 60

local function vec(i)
  local t = {}
  for j = 1, DIM do t[j] = math.sin(i * 7 + j) end
  return t
end

--- Fills a store: N_KEYS plain keys (binary values), N_TTL keys with a
-- long TTL, a collection of N_VECTORS vectors with metadata, and a second
-- empty l2 collection.
local function fill(db)
  local m = {}
  for i = 1, N_KEYS do m[string.format("key:%03d", i)] = "v\0\255" .. i end
  db:set_batch(m)
  local t = {}
  for i = 1, N_TTL do t[string.format("ttl:%03d", i)] = "t" .. i end
  db:set_batch(t, { ttl = 3600 })
  local col = db:create_collection("docs", { dimension = DIM, metric = "cosine", m = 8 })
  local entries = {}
  for i = 1, N_VECTORS do
    entries[i] = { id = string.format("doc%03d", i), vector = vec(i),
                   metadata = { n = i, tag = i % 2 == 0 and "even" or "odd" },
                   scope = i % 3 == 0 and "tenant:x" or "global" }
  end
  col:add(entries)
  col:snapshot()
  db:create_collection("empty", { dimension = 4, metric = "l2" })
end

-- A filled SQLite file, closed (checkpointed) so it can be copied.
local function filled_sqlite(tenant)
  local path = helpers.tmpname(".db")
  local db = storage.open("sqlite:" .. path, { tenant = tenant })
  fill(db)
  db:close()
  return path
end

--- Checks that `db` holds what fill() wrote.
local function assert_filled(db)
  assert.equal(N_KEYS + N_TTL, db:stats().keys)
  assert.equal("v\0\255" .. 7, db:get("key:007"))
  assert.equal("t3", db:get("ttl:003"))
  local cols = db:list_collections()
  assert.equal(2, #cols)
  assert.equal("docs", cols[1].name)
  assert.equal(N_VECTORS, cols[1].count)
  assert.equal(8, cols[1].m)
  assert.equal("l2", cols[2].metric)
  local col = db:collection("docs")
  local e = col:get("doc012")
  assert.equal(12, e.metadata.n)
  assert.equal("tenant:x", e.scope)
  for j = 1, DIM do
    assert.equal(string.unpack("<f", string.pack("<f", vec(12)[j])), e.vector[j])
  end
  assert.equal("doc012", col:search(vec(12), { k = 1 })[1].id)
end

local function remove_all(paths)
  for _, p in ipairs(paths) do
    helpers.remove_db(p)
    os.remove(p)
  end
end

describe("llmspell-storage", function()
  local cleanup

  before_each(function() cleanup = {} end)
  after_each(function() remove_all(cleanup) end)

  local function tmp(suffix)
    local p = helpers.tmpname(suffix)
    cleanup[#cleanup + 1] = p
    return p
  end

  describe("help and usage errors", function()
    it("prints the global and per-command help with exit 0", function()
      for _, args in ipairs { { "--help" }, { "-h" }, { "help" } } do
        local code, out, err = run(args)
        assert.equal(0, code, err)
        assert.matches("Usage: llmspell%-storage COMMAND", out)
        for _, c in ipairs { "info", "export", "import", "migrate", "validate" } do
          assert.matches("\n  " .. c .. " ", out)
        end
        assert.matches("Exit codes: 0 ok, 1 operational error, 2 usage error", out)
        assert.equal("", err)
      end
      for _, c in ipairs { "info", "export", "import", "migrate", "validate" } do
        for _, args in ipairs { { c, "--help" }, { "help", c }, { "--help", c } } do
          local code, out, err = run(args)
          assert.equal(0, code, err)
          assert.matches("^Usage: llmspell%-storage " .. c .. " ", out)
        end
      end
      local _, out = run { "import", "--help" }
      assert.matches("%-%-on%-conflict MODE", out)
      assert.matches("%-%-dry%-run", out)
      _, out = run { "migrate", "--help" }
      assert.matches("%-%-batch%-size N", out)
    end)

    it("exits 2 with one line on usage errors", function()
      local cases = {
        {},                                              -- no command
        { "frobnicate" },                                -- unknown command
        { "info" },                                      -- missing URL
        { "info", "memory", "extra" },                   -- extra argument
        { "info", "memory", "--frob" },                  -- unknown option
        { "info", "memory", "-x" },
        { "info", "memory", "-o", "x.json" },            -- option of another command
        { "export", "memory" },                          -- missing -o
        { "export", "memory", "-o" },                    -- option without its value
        { "import", "memory" },                          -- missing -i
        { "import", "memory", "-i", "f", "--on-conflict", "merge" },
        { "import", "memory", "-i", "f", "--batch-size", "abc" },
        { "import", "memory", "-i", "f", "--batch-size", "0" },
        { "migrate", "--from", "memory" },               -- missing --to
        { "migrate", "--to", "memory" },
        { "migrate", "--from", "sqlite:/tmp/a.db", "--to", "sqlite:/tmp/a.db" },
        { "info", "mysql://x" },                         -- unknown URL scheme
        { "info", "/tmp/plain-path.db" },
        { "info", "memory", "--tenant", "" },
        { "info", "memory", "--json=yes" },
        { "help", "frobnicate" },
      }
      for _, args in ipairs(cases) do
        local code, out, err = run(args)
        local what = table.concat(args, " ")
        assert.equal(2, code, what .. ": " .. err)
        assert_one_line(err)
        assert.equal("", out, what)
      end
      local _, _, err = run { "export", "memory" }
      assert.matches("%-o/%-%-output FILE", err)
      assert.matches("see 'llmspell%-storage export %-%-help'", err)
    end)

    it("reports usage errors as JSON with --json", function()
      local code, out, err = run { "frobnicate", "--json" }
      assert.equal(2, code)
      assert_one_line(err)
      local doc = decode(out)
      assert.is_false(doc.ok)
      assert.equal("usage", doc.error.kind)
      assert.matches("unknown command", doc.error.message)
    end)

    it("prints the version", function()
      local code, out = run { "--version" }
      assert.equal(0, code)
      assert.equal("llmspell-storage (llmspell.storage " .. storage._VERSION .. ")\n", out)
    end)
  end)

  describe("info", function()
    it("describes an SQLite file, as text and as JSON", function()
      local path = filled_sqlite()
      cleanup[#cleanup + 1] = path
      local code, out, err = run { "info", "sqlite:" .. path }
      assert.equal(0, code, err)
      assert.equal("", err)
      assert.matches("backend%s+sqlite\n", out)
      assert.matches("location%s+" .. path:gsub("%p", "%%%0"), out)
      assert.matches("tenant%s+default\n", out)
      assert.matches("keys%s+" .. (N_KEYS + N_TTL) .. "\n", out)
      assert.matches("001_kv_store, 002_vectors", out)
      assert.matches("\n  docs%s+8%s+cosine%s+" .. N_VECTORS .. "%s+8/200/50\n", out)
      assert.matches("\n  empty%s+4%s+l2%s+0%s", out)

      code, out, err = run { "info", "sqlite:" .. path, "--json" }
      assert.equal(0, code, err)
      local doc = decode(out)
      assert.equal("sqlite", doc.backend)
      assert.equal(path, doc.location)
      assert.equal("default", doc.tenant)
      assert.equal(N_KEYS + N_TTL, doc.keys)
      assert.is_true(doc.bytes > 0)
      assert.equal(2, #doc.collections)
      assert.same({ name = "docs", dimension = 8, metric = "cosine", count = N_VECTORS, m = 8,
                    ef_construction = 200, ef_search = 50 }, doc.collections[1])
      assert.equal("001_kv_store", doc.migrations[1].name)
      assert.is_number(doc.migrations[1].applied_at)

      -- another tenant of the same file is empty
      code, out = run { "info", "sqlite:" .. path, "--json", "--tenant", "other" }
      assert.equal(0, code)
      doc = decode(out)
      assert.equal("other", doc.tenant)
      assert.equal(0, doc.keys)
      assert.equal(0, #doc.collections)
    end)

    it("describes memory and PostgreSQL", function()
      local code, out, err = run { "info", "memory", "--json" }
      assert.equal(0, code, err)
      local doc = decode(out)
      assert.equal("memory", doc.backend)
      assert.equal(0, doc.keys)
      assert.equal("[]", out:match('"collections":(%[%])'))

      local tenant = helpers.unique_tenant("cli_info")
      local db = storage.open(helpers.pg_url(), { tenant = tenant })
      fill(db)
      db:close()
      code, out, err = run { "info", helpers.pg_url(), "--tenant", tenant, "--json" }
      assert.equal(0, code, err)
      doc = decode(out)
      assert.equal("postgres", doc.backend)
      assert.equal(tenant, doc.tenant)
      assert.equal(N_KEYS + N_TTL, doc.keys)
      assert.equal(N_VECTORS, doc.collections[1].count)
      code, out = run { "info", helpers.pg_url(), "--tenant", tenant }
      assert.equal(0, code)
      assert.matches("backend%s+postgres", out)
    end)

    it("hides a password in the URL it prints", function()
      local code, out, err = run { "info", "postgresql://u:s3cret@/x?host=/nonexistent&port=1" }
      assert.equal(1, code)
      assert.equal("", out)
      assert_one_line(err)
      assert.not_matches("s3cret", err)
    end)
  end)

  describe("export and import", function()
    it("round-trips an SQLite file through a file, with --json stats", function()
      local src = filled_sqlite()
      cleanup[#cleanup + 1] = src
      local file, file2, dst = tmp(".json"), tmp(".json"), tmp(".db")
      local code, out, err = run { "export", "sqlite:" .. src, "-o", file, "--json" }
      assert.equal(0, code, err)
      assert.equal("", err) -- stderr is no terminal: no progress
      local doc = decode(out)
      assert.is_true(doc.ok)
      assert.equal(file, doc.file)
      assert.equal(N_KEYS + N_TTL, doc.stats.kv_entries)
      assert.equal(N_VECTORS, doc.stats.vectors)
      assert.is_false(file_exists(file .. ".part"))
      local exported = decode(read_file(file))
      assert.equal("1.0", exported.version)
      assert.equal("sqlite", exported.source_backend)
      assert.equal(N_KEYS + N_TTL, #exported.data.kv_store)

      code, out, err = run { "import", "sqlite:" .. dst, "-i", file, "--json" }
      assert.equal(0, code, err)
      doc = decode(out)
      assert.is_true(doc.ok)
      assert.is_false(doc.dry_run)
      assert.equal(N_KEYS + N_TTL, doc.stats.kv_entries)
      assert.equal(N_VECTORS, doc.stats.vectors)
      local db = storage.open("sqlite:" .. dst)
      assert_filled(db)
      db:close()

      -- exporting the copy gives the same data (only exported_at differs)
      code, out, err = run { "export", "sqlite:" .. dst, "-o", file2, "--quiet" }
      assert.equal("", out)
      assert.equal(0, code, err)
      local a = read_file(file):gsub('"exported_at":"[^"]*"', "")
      local b = read_file(file2):gsub('"exported_at":"[^"]*"', "")
      assert.equal(a, b)
    end)

    it("prints a one-line report, and nothing with --quiet", function()
      local src = filled_sqlite()
      cleanup[#cleanup + 1] = src
      local file = tmp(".json")
      local code, out, err = run { "export", "sqlite:" .. src, "-o", file }
      assert.equal(0, code, err)
      assert.matches("^exported 50 KV entries, 60 vectors in 2 collections to ", out)
      assert.equal(1, select(2, out:gsub("\n", "")))
      code, out = run { "import", "memory", "-i", file }
      assert.equal(0, code)
      assert.matches("^imported 50 KV entries, 60 vectors in 2 collections from ", out)
      code, out, err = run { "import", "memory", "-i", file, "--quiet" }
      assert.equal(0, code, err)
      assert.equal("", out)
      assert.equal("", err)
    end)

    it("exports memory (empty) and imports into memory", function()
      local file = tmp(".json")
      local code, out, err = run { "export", "memory", "-o", file, "--json" }
      assert.equal(0, code, err)
      assert.equal(0, decode(out).stats.kv_entries)
      local exported = decode(read_file(file))
      assert.equal("memory", exported.source_backend)
      code, out, err = run { "import", "memory", "-i", file, "--json" }
      assert.equal(0, code, err)
      assert.equal(0, decode(out).stats.total)
    end)

    it("exports a selection: --prefix, --collection, --no-sections", function()
      local src = filled_sqlite()
      cleanup[#cleanup + 1] = src
      local file = tmp(".json")
      local code, out, err = run { "export", "sqlite:" .. src, "-o", file, "--prefix", "ttl:",
                                   "--collection", "empty", "--no-sections", "--json" }
      assert.equal(0, code, err)
      local doc = decode(out)
      assert.equal(N_TTL, doc.stats.kv_entries)
      assert.equal(0, doc.stats.vectors)
      assert.equal(N_TTL, #decode(read_file(file)).data.kv_store)
    end)

    it("imports with --dry-run writing nothing, and honours --on-conflict", function()
      local src = filled_sqlite()
      cleanup[#cleanup + 1] = src
      local file, dst = tmp(".json"), tmp(".db")
      assert.equal(0, (run { "export", "sqlite:" .. src, "-o", file }))
      local code, out, err = run { "import", "sqlite:" .. dst, "-i", file, "--dry-run", "--json" }
      assert.equal(0, code, err)
      local doc = decode(out)
      assert.is_true(doc.dry_run)
      assert.equal(N_KEYS + N_TTL, doc.stats.kv_entries)
      local db = storage.open("sqlite:" .. dst)
      assert.equal(0, db:stats().keys)
      assert.equal(0, #db:list_collections())
      db:close()
      code, out = run { "import", "sqlite:" .. dst, "-i", file, "--dry-run" }
      assert.equal(0, code)
      assert.matches("^dry run: would import 50 KV entries", out)

      assert.equal(0, (run { "import", "sqlite:" .. dst, "-i", file, "--batch-size", "7" }))
      code, out, err = run { "import", "sqlite:" .. dst, "-i", file, "--on-conflict", "error" }
      assert.equal(1, code)
      assert.equal("", out)
      assert_one_line(err)
      assert.matches("%(conflict%)\n$", err)
      code, out, err = run { "import", "sqlite:" .. dst, "-i", file, "--on-conflict", "skip",
                             "--json" }
      assert.equal(0, code, err)
      doc = decode(out)
      assert.equal(N_KEYS + N_TTL + N_VECTORS, doc.stats.skipped)
      code, out, err = run { "import", "sqlite:" .. dst, "-i", file, "--on-conflict", "replace" }
      assert.equal(0, code, err)
      db = storage.open("sqlite:" .. dst)
      assert_filled(db)
      db:close()
    end)

    it("refuses a malformed or wrong-version file with one line, target unchanged", function()
      local bad, dst = tmp(".json"), tmp(".db")
      local f = assert(io.open(bad, "wb"))
      f:write('{"version":"1.0","data":{"kv_store":[{"key":"a","value":"YQ=="')
      f:close()
      local code, out, err = run { "import", "sqlite:" .. dst, "-i", bad }
      assert.equal(1, code)
      assert.equal("", out)
      assert_one_line(err)
      assert.matches("%(format%)\n$", err)
      f = assert(io.open(bad, "wb"))
      f:write('{"version":"9.9","data":{}}')
      f:close()
      code, out, err = run { "import", "sqlite:" .. dst, "-i", bad, "--json" }
      assert.equal(1, code)
      assert_one_line(err)
      local doc = decode(out)
      assert.is_false(doc.ok)
      assert.equal("version", doc.error.code)
      local db = storage.open("sqlite:" .. dst)
      assert.equal(0, db:stats().keys)
      db:close()
    end)

    it("round-trips PostgreSQL through a file", function()
      local t1, t2 = helpers.unique_tenant("cli_exp"), helpers.unique_tenant("cli_imp")
      local db = storage.open(helpers.pg_url(), { tenant = t1 })
      fill(db)
      db:close()
      local file = tmp(".json")
      local code, _, err = run { "export", helpers.pg_url(), "--tenant", t1, "-o", file }
      assert.equal(0, code, err)
      assert.equal("postgresql", decode(read_file(file)).source_backend)
      code, _, err = run { "import", helpers.pg_url(), "--tenant", t2, "-i", file }
      assert.equal(0, code, err)
      db = storage.open(helpers.pg_url(), { tenant = t2 })
      assert_filled(db)
      db:close()
    end)
  end)

  describe("migrate", function()
    it("moves SQLite to PostgreSQL and back, verifying counts", function()
      local tenant = helpers.unique_tenant("cli_mig")
      local src = filled_sqlite(tenant)
      cleanup[#cleanup + 1] = src
      local back = tmp(".db")
      local pg = helpers.pg_url()

      -- a dry run reads everything and writes nothing
      local code, out, err = run { "migrate", "--from", "sqlite:" .. src, "--to", pg,
                                   "--tenant", tenant, "--dry-run", "--json" }
      assert.equal(0, code, err)
      local doc = decode(out)
      assert.is_true(doc.ok)
      assert.is_true(doc.dry_run)
      assert.equal(N_KEYS + N_TTL, doc.import.kv_entries)
      assert.equal(N_VECTORS, doc.import.vectors)
      local db = storage.open(pg, { tenant = tenant })
      assert.equal(0, db:stats().keys)
      assert.equal(0, #db:list_collections())
      db:close()
      code, out = run { "migrate", "--from", "sqlite:" .. src, "--to", pg, "--tenant", tenant,
                        "--dry-run" }
      assert.equal(0, code)
      assert.matches("^dry run: would migrate 50 KV entries, 60 vectors", out)

      code, out, err = run { "migrate", "--from", "sqlite:" .. src, "--to", pg,
                             "--tenant", tenant, "--batch-size", "16", "--json" }
      assert.equal(0, code, err)
      assert.equal("", err)
      doc = decode(out)
      assert.is_true(doc.ok)
      assert.is_true(doc.verified)
      assert.equal(N_KEYS + N_TTL, doc.export.kv_entries)
      assert.equal(N_KEYS + N_TTL, doc.import.kv_entries)
      assert.equal(N_VECTORS, doc.import.vectors)
      assert.equal(N_KEYS + N_TTL, doc.target.keys)
      assert.equal(N_VECTORS, doc.target.collections.docs)
      assert.equal(0, doc.target.collections.empty)
      db = storage.open(pg, { tenant = tenant })
      assert_filled(db)
      db:close()

      code, out, err = run { "migrate", "--from", pg, "--to", "sqlite:" .. back,
                             "--tenant", tenant }
      assert.equal(0, code, err)
      assert.matches("^migrated 50 KV entries, 60 vectors in 2 collections from ", out)
      assert.matches("counts verified", out)
      db = storage.open("sqlite:" .. back, { tenant = tenant })
      assert_filled(db)
      db:close()

      -- again with on_conflict error: the target already holds the keys
      code, out, err = run { "migrate", "--from", pg, "--to", "sqlite:" .. back,
                             "--tenant", tenant, "--on-conflict", "error" }
      assert.equal(1, code)
      assert.equal("", out)
      assert_one_line(err)
      assert.matches("target: ", err)
      -- skip: nothing written, still verified
      code, out, err = run { "migrate", "--from", pg, "--to", "sqlite:" .. back,
                             "--tenant", tenant, "--on-conflict", "skip", "--json" }
      assert.equal(0, code, err)
      assert.is_true(decode(out).verified)
    end)

    it("leaves no temporary file behind, and honours TMPDIR", function()
      local dir = tmp("-dir")
      assert(os.execute(tool("mkdir " .. q(dir))))
      local src = filled_sqlite()
      cleanup[#cleanup + 1] = src
      local code, _, err = run({ "migrate", "--from", "sqlite:" .. src, "--to", "memory" },
                               { env = ENV .. " TMPDIR=" .. q(dir) })
      assert.equal(0, code, err)
      local p = assert(io.popen(tool("ls -A " .. q(dir))))
      assert.equal("", p:read("a"))
      p:close()
      os.execute(tool("rmdir " .. q(dir)))
    end)

    it("names the failing side", function()
      local src = filled_sqlite()
      cleanup[#cleanup + 1] = src
      local code, out, err = run { "migrate", "--from", "sqlite:" .. src, "--to",
                                   "postgresql:///x?host=/nonexistent&port=1" }
      assert.equal(1, code)
      assert.equal("", out)
      assert_one_line(err)
      assert.matches("^llmspell%-storage: target: ", err)
      code, out, err = run { "migrate", "--from", "sqlite:/nonexistent/x.db", "--to", "memory" }
      assert.equal("", out)
      assert.equal(1, code)
      assert_one_line(err)
      assert.matches("^llmspell%-storage: source: no such SQLite database", err)
    end)
  end)

  describe("validate", function()
    it("passes healthy stores with exit 0", function()
      local path = filled_sqlite()
      cleanup[#cleanup + 1] = path
      local code, out, err = run { "validate", "sqlite:" .. path }
      assert.equal(0, code, err .. out)
      assert.matches("^ok: sqlite:", out)
      assert.matches("2 collections checked", out)
      code, out, err = run { "validate", "sqlite:" .. path, "--json" }
      assert.equal(0, code, err)
      local doc = decode(out)
      assert.is_true(doc.ok)
      assert.equal(0, #doc.problems)
      assert.equal("[]", out:match('"problems":(%[%])'))
      assert.equal(2, doc.checked.collections)

      code, out, err = run { "validate", "memory", "--json" }
      assert.equal(0, code, err)
      assert.is_true(decode(out).ok)

      local tenant = helpers.unique_tenant("cli_val")
      local db = storage.open(helpers.pg_url(), { tenant = tenant })
      fill(db)
      db:close()
      code, out, err = run { "validate", helpers.pg_url(), "--tenant", tenant, "--json" }
      assert.equal(0, code, err .. out)
      assert.is_true(decode(out).ok)
    end)

    -- Copies of a filled file, damaged by `damage(copy)`; validate must exit
    -- 3 listing at least one problem that matches `pattern`. Returns the
    -- path of a damaged copy validate has run on once.
    local function assert_finds(damage, pattern)
      local path = filled_sqlite()
      cleanup[#cleanup + 1] = path
      local function damaged()
        local copy = tmp(".db")
        assert(os.execute(tool("cp " .. q(path) .. " " .. q(copy))))
        damage(copy)
        return copy
      end
      local copy = damaged()
      local code, out, err = run { "validate", "sqlite:" .. copy, "--json" }
      assert.equal(3, code, err .. out)
      assert.equal("", err)
      local doc = decode(out)
      assert.is_false(doc.ok)
      assert.is_true(#doc.problems >= 1)
      local text = {}
      for i, p in ipairs(doc.problems) do text[i] = p.where .. ": " .. p.what end
      assert.matches(pattern, table.concat(text, "\n"))
      local copy2 = damaged()
      code, out = run { "validate", "sqlite:" .. copy2 }
      assert.equal(3, code)
      assert.matches("^%d+ problems? in sqlite:", out)
      assert.matches("\n  " .. pattern, out)
      -- the original is fine
      assert.equal(0, (run { "validate", "sqlite:" .. path }))
      return copy
    end

    it("finds a damaged page (SQLite integrity_check) and exits 3", function()
      assert_finds(function(copy)
        -- change one key inside the TTL index, so the index no longer
        -- matches its table: the file still opens, integrity_check fails
        local ps = tonumber(sqlite3(copy, "PRAGMA page_size"))
        local root = tonumber(sqlite3(copy, "SELECT rootpage FROM sqlite_master "
                                            .. "WHERE name = 'kv_store_expires'"))
        local f = assert(io.open(copy, "r+b"))
        f:seek("set", (root - 1) * ps)
        local page = f:read(ps)
        local at = assert(page:find("ttl:005", 1, true), "key not on the index page")
        f:seek("set", (root - 1) * ps + at - 1)
        f:write("ttl:905")
        f:close()
        assert.not_equal("ok", sqlite3(copy, "PRAGMA integrity_check"))
      end, ".")
    end)

    it("finds a corrupt HNSW snapshot and exits 3", function()
      local copy = assert_finds(function(copy)
        local snap = tmp(".snap")
        sqlite3(copy, "SELECT writefile('" .. snap .. "', data) FROM vector_snapshots "
                      .. "WHERE part = 0 AND collection_id = (SELECT id FROM "
                      .. "vector_collections WHERE name = 'docs')")
        local data = assert(read_file(snap))
        assert.is_true(#data > 200)
        local mid = #data // 2
        data = data:sub(1, mid) .. string.char(data:byte(mid + 1) ~ 0xff) .. data:sub(mid + 2)
        local f = assert(io.open(snap, "wb"))
        f:write(data)
        f:close()
        sqlite3(copy, "UPDATE vector_snapshots SET data = readfile('" .. snap .. "') "
                      .. "WHERE part = 0 AND collection_id = (SELECT id FROM "
                      .. "vector_collections WHERE name = 'docs')")
      end, "collection docs: snapshot")
      -- the rows are the truth: the index rebuilt from them was saved as a
      -- fresh snapshot when validate closed the store, so it is clean now
      local code, out = run { "validate", "sqlite:" .. copy }
      assert.equal(0, code, out)
    end)

    it("finds a collection whose index and rows disagree and exits 3", function()
      assert_finds(function(copy)
        sqlite3(copy, "UPDATE vector_collections SET count = count + 3 WHERE name = 'docs'")
      end, "collection docs: index holds 60 entries, rows say 63")
    end)
  end)

  describe("operational errors", function()
    it("exit 1 with one line for a missing file or an unreachable server", function()
      local missing = helpers.tmpname(".db")
      local cases = {
        { "info", "sqlite:" .. missing },
        { "export", "sqlite:" .. missing, "-o", helpers.tmpname(".json") },
        { "validate", "sqlite:" .. missing },
        { "import", "memory", "-i", helpers.tmpname(".json") },
        { "info", "sqlite:/nonexistent/dir/x.db" },
        { "info", "postgresql:///x?host=/nonexistent&port=1" },
        { "validate", "postgresql:///x?host=/nonexistent&port=1", "--json" },
      }
      for _, args in ipairs(cases) do
        local code, out, err = run(args)
        local what = table.concat(args, " ")
        assert.equal(1, code, what .. ": " .. err)
        assert_one_line(err)
        if args[#args] == "--json" then
          local doc = decode(out)
          assert.is_false(doc.ok)
          assert.equal("connection", doc.error.code)
        else
          assert.equal("", out, what)
        end
      end
      assert.is_false(file_exists(missing)) -- reading never creates the file
      local _, _, err = run { "info", "sqlite:" .. missing }
      assert.matches("no such SQLite database", err)
    end)

    it("names the code of a missing file, in the text line and in --json", function()
      local missing = helpers.tmpname(".json")
      local code, out, err = run { "import", "memory", "-i", missing }
      assert.equal(1, code)
      assert.equal("", out)
      assert_one_line(err)
      assert.matches("cannot read .* %(not_found%)\n$", err)
      code, out = run { "import", "memory", "-i", missing, "--json" }
      assert.equal(1, code)
      local doc = decode(out)
      assert.is_false(doc.ok)
      assert.equal("not_found", doc.error.code)
      code, out, err = run { "info", "sqlite:" .. helpers.tmpname(".db"), "--json" }
      assert.equal(1, code)
      assert.matches("%(not_found%)\n$", err)
      assert.equal("not_found", decode(out).error.code)
    end)

    it("exit 1 when the export file cannot be written, leaving nothing", function()
      local code, out, err = run { "export", "memory", "-o", "/nonexistent/dir/x.json" }
      assert.equal(1, code)
      assert.equal("", out)
      assert_one_line(err)
    end)
  end)

  describe("progress", function()
    it("is quiet when stderr is not a terminal", function()
      local src = filled_sqlite()
      cleanup[#cleanup + 1] = src
      local file = tmp(".json")
      local code, out, err = run { "export", "sqlite:" .. src, "-o", file }
      assert.equal(0, code, err)
      assert.equal("", err)
      code, out, err = run { "import", "memory", "-i", file }
      assert.equal(0, code, err)
      assert.equal("", err)
      assert.is_string(out)
    end)

    it("shows count, rate and phase on a terminal (script -qc)", function()
      local src = filled_sqlite()
      cleanup[#cleanup + 1] = src
      local file, log = tmp(".json"), tmp(".log")
      -- util-linux `script` (Debian's essential bsdutils) gives the child a terminal
      assert.is_truthy(os.execute(tool("command -v script >/dev/null 2>&1")),
                       "script(1) from bsdutils is needed")
      local inner = string.format("%s lua5.4 %s/%s export %s -o %s", ENV, CWD, CLI,
                                  q("sqlite:" .. src), q(file))
      local cmd = tool(string.format("script -qec %s /dev/null >%s 2>&1 </dev/null", q(inner),
                                     q(log)))
      local _, _, code = os.execute(cmd)
      local text = read_file(log) or ""
      assert.equal(0, code, text)
      assert.matches("\r", text)             -- redrawn in place
      assert.matches("%d+/s", text)           -- a rate
      assert.matches("kv", text)              -- a phase
      assert.matches("exported 50 KV entries", text)
      -- --quiet keeps even a terminal quiet
      inner = inner .. " --quiet"
      cmd = tool(string.format("script -qec %s /dev/null >%s 2>&1 </dev/null", q(inner),
                               q(log)))
      _, _, code = os.execute(cmd)
      assert.equal(0, code)
      assert.equal("", read_file(log))
    end)
  end)

  describe("in-process (cli.main)", function()
    local cli = require "llmspell.storage.cli"
    local real_exit

    -- cli.main never exits the process: os.exit raises while these run
    before_each(function()
      real_exit = os.exit
      os.exit = function() error("cli.main called os.exit") end -- luacheck: ignore
    end)
    after_each(function() os.exit = real_exit end) -- luacheck: ignore

    --- Runs cli.main in this process with its output in temporary files.
    -- @return exit code, stdout, stderr
    local function main(args)
      local o, e = assert(io.tmpfile()), assert(io.tmpfile())
      local code = cli.main(args, { stdout = o, stderr = e })
      o:seek("set")
      e:seek("set")
      local out, err = o:read("a"), e:read("a")
      o:close()
      e:close()
      return code, out, err
    end

    it("prints help and refuses bad usage with exit 2, one line", function()
      local code, out, err = main { "--help" }
      assert.equal(0, code, err)
      assert.matches("^Usage: llmspell%-storage COMMAND", out)
      assert.equal("", err)
      code, out = main { "import", "--help" }
      assert.equal(0, code)
      assert.matches("^Usage: llmspell%-storage import ", out)
      code, out, err = main { "frobnicate", "--json" }
      assert.equal(2, code)
      assert_one_line(err)
      local doc = decode(out)
      assert.is_false(doc.ok)
      assert.equal("usage", doc.error.kind)
      -- limits come from storage.limits
      code, out, err = main { "import", "memory", "-i", "x.json", "--batch-size",
                              tostring(storage.limits.max_batch + 1) }
      assert.equal(2, code)
      assert.equal("", out)
      assert_one_line(err)
      assert.matches("--batch-size must be at most " .. storage.limits.max_batch, err, 1, true)
    end)

    it("describes a store as JSON", function()
      local code, out, err = main { "info", "memory", "--json" }
      assert.equal(0, code, err)
      local doc = decode(out)
      assert.equal("memory", doc.backend)
      assert.equal(0, doc.keys)
      assert.equal("", err)
    end)

    it("exports, imports and validates an SQLite file", function()
      local src = filled_sqlite()
      cleanup[#cleanup + 1] = src
      local file, dst = tmp(".json"), tmp(".db")
      local code, out, err = main { "export", "sqlite:" .. src, "-o", file, "--json" }
      assert.equal(0, code, err)
      assert.equal("", err) -- not the process's stderr: no progress line
      assert.equal(N_VECTORS, decode(out).stats.vectors)
      code, out, err = main { "import", "sqlite:" .. dst, "-i", file }
      assert.equal(0, code, err)
      assert.matches("^imported 50 KV entries, 60 vectors in 2 collections", out)
      local db = storage.open("sqlite:" .. dst)
      assert_filled(db)
      db:close()
      code, out, err = main { "validate", "sqlite:" .. dst }
      assert.equal(0, code, err .. out)
      assert.matches("^ok: sqlite:", out)
      -- an operational error: exit 1, one line
      code, out, err = main { "info", "sqlite:" .. helpers.tmpname(".db") }
      assert.equal(1, code)
      assert.equal("", out)
      assert_one_line(err)
      assert.matches("no such SQLite database", err)
    end)

    it("migrates between two SQLite files and verifies", function()
      local src = filled_sqlite()
      cleanup[#cleanup + 1] = src
      local dst = tmp(".db")
      local code, out, err = main { "migrate", "--from", "sqlite:" .. src, "--to",
                                    "sqlite:" .. dst, "--json" }
      assert.equal(0, code, err)
      local doc = decode(out)
      assert.is_true(doc.ok)
      assert.is_true(doc.verified)
      assert.equal(N_KEYS + N_TTL, doc.target.keys)
    end)
  end)

  describe("installation", function()
    it("make install puts an executable that finds the installed library", function()
      local dest = helpers.tmpname("-destdir")
      local p = assert(io.popen("unset LD_PRELOAD; make -s install PREFIX=/opt/lls DESTDIR="
                                .. q(dest) .. " 2>&1"))
      local out = p:read("a")
      assert(p:close(), out)
      local bin = dest .. "/opt/lls/bin/llmspell-storage"
      p = assert(io.popen(tool("stat -c %a " .. q(bin))))
      assert.equal("755", p:read("l"))
      p:close()
      -- nothing on LUA_PATH/LUA_CPATH finds the library: the tool looks
      -- beside its own bin/ (PREFIX/share/lua/5.4, PREFIX/lib/lua/5.4)
      local code, o, err = run({ "info", "memory", "--json" },
                               { env = "cd / && LUA_PATH='/nonexistent/?.lua' "
                                       .. "LUA_CPATH='/nonexistent/?.so'", cli = q(bin) })
      assert.equal(0, code, err)
      assert.equal("memory", decode(o).backend)
      -- and it runs directly through its #! line
      local f = assert(io.popen("unset LD_PRELOAD; cd / && LUA_PATH='/nonexistent/?.lua' "
                                .. "LUA_CPATH='/nonexistent/?.so' " .. q(bin) .. " --help"))
      assert.matches("^Usage: llmspell%-storage", f:read("a"))
      assert(f:close())
      os.execute(tool("rm -rf " .. q(dest)))
    end)

    it("runs from the source tree without LUA_PATH", function()
      -- the tree's own build/ (absent when only `make asan` has built)
      if not file_exists("build/llmspell/storage/core.so") then return end
      local code, out, err = run({ "info", "memory", "--json" },
                                 { env = "env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 "
                                         .. "-u LUA_CPATH_5_4" })
      assert.equal(0, code, err)
      assert.equal("memory", decode(out).backend)
    end)
  end)
end)
