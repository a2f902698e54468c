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

local ctest = require "spec.support.ctest"
local sh_quote = ctest.quote

local pg = require "spec.support.pg"
local psql, psql1, pg_includedir = pg.psql, pg.psql1, pg.includedir

describe("PostgreSQL vector collections (C)", function()
  local dir

  setup(function() dir = ctest.temp_dir("pgvec") end)

  teardown(function()
    ctest.remove_dir(dir)
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
    ctest.build_and_run(dir, {
      name = "test_pg_vectors",
      sources = { "csrc/base/*.c", "csrc/backend/*.c", "csrc/backends/postgres/*.c",
                  "spec/c/test_pg_vectors.c" },
      includes = { pg_includedir() },
      libs = "-lpq -lpthread",
      env = "LLMSPELL_TEST_PG_URL=" .. sh_quote(url),
    })

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
