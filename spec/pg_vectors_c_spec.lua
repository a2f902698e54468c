--- The PostgreSQL backend's vector-collection slots, tested in C through
-- lls_postgres_vt (spec/c/test_pg_vectors.c, built here with AddressSanitizer
-- and UBSan), then the rows it leaves behind inspected with psql as a role
-- without BYPASSRLS: row-level security holds in raw SQL on every vector
-- table, not only through the library.
--
-- Needs LLMSPELL_TEST_PG_URL (a superuser URL; `make test` starts a throwaway
-- server) and `psql`. Without a URL the test fails: never a skip. The C test
-- owns schema llmspell_pgvec_c and roles llmspell_pgvec_{reader,app}; they
-- are dropped here afterwards.
local helpers = require "spec.helpers"

local SCHEMA = "llmspell_pgvec_c"
local READER = "llmspell_pgvec_reader"
local APP = "llmspell_pgvec_app"
local TABLES = { "collections", "vectors", "vector_tombstones", "vector_snapshots" }

-- the repository root, from this file's own path
local here = debug.getinfo(1, "S").source:match("^@(.*)$") or "spec/pg_vectors_c_spec.lua"
local root = here:match("^(.*)/spec/[^/]*$") or "."

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- `make asan` preloads the sanitizer runtime into the interpreter; the
-- compiler, psql and the test binary (which links its own) must not inherit it.
local CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

--- Runs SQL through psql as the URL's user; returns the output lines
-- (unaligned, tuples only). Fails the test when psql fails.
local function psql(sql)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(sql, "\n")
  f:close()
  local code, out = run(string.format("%spsql %s -X -q -A -t -F '|' -v ON_ERROR_STOP=1 -f %s",
                                      CLEAN_ENV, sh_quote(helpers.pg_url()), sh_quote(file)))
  os.remove(file)
  if code ~= 0 then error("psql failed: " .. out .. "\nSQL: " .. sql, 2) end
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines
end

local function psql1(sql)
  local lines = psql(sql)
  return lines[#lines]
end

--- The libpq include directory (pg_config when present, else Debian's).
local function pg_includedir()
  local code, out = run("pg_config --includedir")
  local dir = code == 0 and out:match("^%s*(.-)%s*$") or ""
  if dir == "" then dir = "/usr/include/postgresql" end
  return dir
end

describe("PostgreSQL vector collections (C)", function()
  local dir, exe

  setup(function()
    local base = os.tmpname()
    os.remove(base)
    dir = base .. "-pgvec"
    assert(os.execute("mkdir -p " .. sh_quote(dir)))
    exe = dir .. "/test_pg_vectors"
  end)

  teardown(function()
    if dir then os.execute("rm -rf " .. sh_quote(dir)) end
    if os.getenv("LLMSPELL_TEST_PG_URL") then
      pcall(psql, table.concat({
        "SET client_min_messages = warning;",
        "DROP SCHEMA IF EXISTS " .. SCHEMA .. " CASCADE;",
        "DROP ROLE IF EXISTS " .. READER .. ";",
        "DROP ROLE IF EXISTS " .. APP .. ";",
      }, "\n"))
    end
  end)

  it("passes the C test under ASan and UBSan, and RLS holds in raw SQL", function()
    local url = helpers.pg_url() -- raises (failing the test) when there is no server

    local cc = os.getenv("CC")
    if not cc or cc == "" then cc = "cc" end
    local flags = table.concat({
      "-std=c11 -D_POSIX_C_SOURCE=200809L -O1 -g",
      "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined",
      "-Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes",
    }, " ")
    local srcs = {}
    for _, f in ipairs { "csrc/kv_postgres.c", "csrc/util.c", "csrc/buf.c",
                         "spec/c/test_pg_vectors.c" } do
      srcs[#srcs + 1] = sh_quote(root .. "/" .. f)
    end
    local code, out = run(string.format("%s%s %s -I%s -I%s %s -o %s -lpq -lpthread", CLEAN_ENV,
      cc, flags, sh_quote(root .. "/csrc"), sh_quote(pg_includedir()), table.concat(srcs, " "),
      sh_quote(exe)))
    assert.equal(0, code, "compiling test_pg_vectors.c failed:\n" .. out)

    code, out = run(string.format(
      "%sLLMSPELL_TEST_PG_URL=%s ASAN_OPTIONS=detect_leaks=1:abort_on_error=1"
      .. " UBSAN_OPTIONS=print_stacktrace=1 %s",
      CLEAN_ENV, sh_quote(url), sh_quote(exe)))
    io.stdout:write("\n", out)
    assert.equal(0, code, "test_pg_vectors failed:\n" .. out)
    assert.matches("ok: %d+ checks passed", out)

    -- The rows the C test left: both tenants have collections, vectors,
    -- tombstones and snapshots.
    assert.equal("2|vectors", psql1("SELECT version, name FROM " .. SCHEMA
                                    .. ".llmspell_migrations WHERE version = 2"))
    for _, t in ipairs(TABLES) do
      assert.equal("t|t", psql1("SELECT relrowsecurity, relforcerowsecurity FROM pg_class"
                                .. " WHERE oid = '" .. SCHEMA .. "." .. t .. "'::regclass"), t)
    end
    assert.equal("C|C", psql1("SELECT"
      .. " (SELECT collation_name FROM information_schema.columns WHERE table_schema = '"
      .. SCHEMA .. "' AND table_name = 'collections' AND column_name = 'name'),"
      .. " (SELECT collation_name FROM information_schema.columns WHERE table_schema = '"
      .. SCHEMA .. "' AND table_name = 'vectors' AND column_name = 'id')"))

    -- A role without BYPASSRLS (the C test granted it SELECT) sees nothing
    -- without a tenant, and exactly its tenant's rows with one, even when
    -- it asks for another tenant's by name.
    local as_reader = "SET ROLE " .. READER .. ";\n"
    local function set_tenant(t)
      return "SELECT set_config('app.current_tenant_id', '" .. t .. "', false);\n"
    end
    for _, t in ipairs(TABLES) do
      local q = "SELECT count(*) FROM " .. SCHEMA .. "." .. t
      local totals = {}
      for _, tenant in ipairs { "acme", "globex" } do
        totals[tenant] = tonumber(psql1(q .. " WHERE tenant_id = '" .. tenant .. "'"))
        assert.is_true(totals[tenant] > 0, t .. " has no " .. tenant .. " rows")
      end
      assert.equal("0", psql1(as_reader .. q .. ";"), t .. " without a tenant")
      for tenant, other in pairs { acme = "globex", globex = "acme" } do
        assert.equal(tostring(totals[tenant]),
                     psql1(as_reader .. set_tenant(tenant) .. q .. ";"), t .. " as " .. tenant)
        assert.equal("0", psql1(as_reader .. set_tenant(tenant) .. q
                                .. " WHERE tenant_id = '" .. other .. "';"),
                     t .. ": " .. tenant .. " sees " .. other)
      end
    end
    -- and the vectors it does see are its own, joined to its own collections
    assert.equal("0", psql1(as_reader .. set_tenant("acme")
      .. "SELECT count(*) FROM " .. SCHEMA .. ".vectors v LEFT JOIN " .. SCHEMA
      .. ".collections c ON c.id = v.collection_id WHERE c.id IS NULL OR c.tenant_id <> 'acme';"))
  end)
end)
