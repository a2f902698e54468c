--- The PostgreSQL backend's export/import slots (kv_dump, kv_load, vec_dump,
-- vec_has, sec_put, sec_dump, sec_clear, check), tested in C through
-- lls_postgres_vt (spec/c/test_pg_export_slots.c, built here with
-- AddressSanitizer and UBSan), then the rows it leaves behind inspected with
-- psql as a role without BYPASSRLS: row-level security holds in raw SQL on
-- export_sections, not only through the library.
--
-- Needs LLMSPELL_TEST_PG_URL (a superuser URL; `make test` starts a throwaway
-- server) and `psql`. Without a URL the test fails: never a skip. The C test
-- owns schema llmspell_pgexp_c and roles llmspell_pgexp_{reader,app}; they
-- are dropped here afterwards.
local helpers = require "spec.helpers"

local SCHEMA = "llmspell_pgexp_c"
local READER = "llmspell_pgexp_reader"
local APP = "llmspell_pgexp_app"

local ctest = require "spec.support.ctest"
local sh_quote = ctest.quote

local pg = require "spec.support.pg"
local psql, psql1, pg_includedir = pg.psql, pg.psql1, pg.includedir

describe("PostgreSQL export/import slots (C)", function()
  local dir

  setup(function() dir = ctest.temp_dir("pgexp") end)

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
      name = "test_pg_export_slots",
      sources = { "csrc/base/*.c", "csrc/backend/*.c", "csrc/backends/postgres/*.c",
                  "spec/c/test_pg_export_slots.c" },
      includes = { pg_includedir() },
      libs = "-lpq",
      env = "LLMSPELL_TEST_PG_URL=" .. sh_quote(url),
    })

    -- The schema the C test left: migration 3 applied, export_sections
    -- with forced RLS and its policy, kv_store.kv_id.
    assert.equal("3|export", psql1("SELECT version, name FROM " .. SCHEMA
                                   .. ".llmspell_migrations WHERE version = 3"))
    assert.equal("t|t", psql1("SELECT relrowsecurity, relforcerowsecurity FROM pg_class"
                              .. " WHERE oid = '" .. SCHEMA .. ".export_sections'::regclass"))
    assert.equal("1", psql1("SELECT count(*) FROM pg_policy WHERE polrelid = '" .. SCHEMA
                            .. ".export_sections'::regclass"
                            .. " AND polname = 'export_sections_tenant_isolation'"))
    assert.equal("text", psql1("SELECT data_type FROM information_schema.columns"
                               .. " WHERE table_schema = '" .. SCHEMA .. "'"
                               .. " AND table_name = 'kv_store' AND column_name = 'kv_id'"))

    -- Both tenants have section records; a role without BYPASSRLS (the C
    -- test granted it SELECT) sees none without a tenant, and exactly its
    -- tenant's with one, even when it asks for the other's by name.
    local q = "SELECT count(*) FROM " .. SCHEMA .. ".export_sections"
    local totals = {}
    for _, tenant in ipairs { "acme", "globex" } do
      totals[tenant] = tonumber(psql1(q .. " WHERE tenant_id = '" .. tenant .. "'"))
      assert.is_true(totals[tenant] > 0, "export_sections has no " .. tenant .. " rows")
    end
    local as_reader = "SET ROLE " .. READER .. ";\n"
    local function set_tenant(t)
      return "SELECT set_config('app.current_tenant_id', '" .. t .. "', false);\n"
    end
    assert.equal("0", psql1(as_reader .. q .. ";"), "without a tenant")
    for tenant, other in pairs { acme = "globex", globex = "acme" } do
      assert.equal(tostring(totals[tenant]), psql1(as_reader .. set_tenant(tenant) .. q .. ";"),
                   "as " .. tenant)
      assert.equal("0", psql1(as_reader .. set_tenant(tenant) .. q
                              .. " WHERE tenant_id = '" .. other .. "';"),
                   tenant .. " sees " .. other)
    end
    -- and the records it sees are byte for byte what the library stored
    -- (text, not jsonb: spacing and member order kept)
    assert.equal('{"b":2,"a":1}', psql1(as_reader .. set_tenant("acme")
      .. "SELECT record FROM " .. SCHEMA .. ".export_sections"
      .. " WHERE section = 'agent_state' AND ord = 1;"))
  end)
end)
