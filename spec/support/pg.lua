--- psql and libpq helpers for the PostgreSQL specs that inspect the
-- database directly (raw-SQL row-level security checks, schema checks).
local helpers = require "spec.helpers"
local ctest = require "spec.support.ctest"

local pg = {}

--- Runs SQL through psql as the URL's user (a superuser under `make test`);
-- returns the output lines (unaligned, tuples only). Raises when psql fails.
function pg.psql(sql)
  local file = helpers.tmpname(".sql")
  local f = assert(io.open(file, "w"))
  f:write(sql, "\n")
  f:close()
  local code, out = ctest.run(string.format(
    "%spsql %s -X -q -A -t -F '|' -v ON_ERROR_STOP=1 -f %s", ctest.CLEAN_ENV,
    ctest.quote(helpers.pg_url()), ctest.quote(file)))
  os.remove(file)
  if code ~= 0 then error("psql failed: " .. out .. "\nSQL: " .. sql, 2) end
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines
end

--- The last output line of pg.psql(sql).
function pg.psql1(sql)
  local lines = pg.psql(sql)
  return lines[#lines]
end

--- A PostgreSQL schema of one spec's own and a role without BYPASSRLS
-- (NOLOGIN) for its raw-SQL checks. Returns open(tenant), which opens a
-- store on the schema, and the spec's setup and teardown (busted's
-- functions belong to the spec file, so it registers them): setup drops
-- both, creates the role, creates the schema by opening a store, then
-- runs `GRANT <grants> TO <reader>` with "@S" standing for the schema.
function pg.spec_schema(schema, reader, grants)
  local storage = require "llmspell.storage"
  local function open(tenant)
    return storage.open { backend = "postgres", url = helpers.pg_url(), schema = schema,
                          tenant = tenant }
  end
  local drop = "SET client_min_messages = warning; DROP SCHEMA IF EXISTS " .. schema
               .. " CASCADE; DROP ROLE IF EXISTS " .. reader .. ";"
  local function up()
    pg.psql(drop .. " CREATE ROLE " .. reader .. " NOLOGIN NOSUPERUSER NOBYPASSRLS;")
    open("acme"):close() -- creates the schema
    pg.psql("GRANT USAGE ON SCHEMA " .. schema .. " TO " .. reader .. "; GRANT "
            .. grants:gsub("@S", schema) .. " TO " .. reader .. ";")
  end
  return open, up, function() pg.psql(drop) end
end

--- The libpq include directory (pg_config when present, else Debian's).
function pg.includedir()
  local code, out = ctest.run("pg_config --includedir")
  local dir = code == 0 and out:match("^%s*(.-)%s*$") or ""
  if dir == "" then dir = "/usr/include/postgresql" end
  return dir
end

return pg
