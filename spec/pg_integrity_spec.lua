--- PostgreSQL's own checks: a server error of class XX (data_corrupted,
-- index_corrupted: a page that failed `initdb --data-checksums`, a broken
-- index) reaches the user as `integrity`, like a failed SQLite record
-- checksum, not as a generic `io`. The server's corruption is simulated by
-- a trigger raising the same SQLSTATE on one key.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"
local pg = require "spec.support.pg"

describe("PostgreSQL corruption errors", function()
  local schema = "llmspell_integrity_" .. tostring(os.time() % 100000)

  local function open()
    return storage.open { backend = "postgres", url = helpers.pg_url(), schema = schema,
                          tenant = helpers.unique_tenant("integ") }
  end

  after_each(function() pg.psql("DROP SCHEMA IF EXISTS " .. schema .. " CASCADE") end)

  for _, state in ipairs { "XX001", "XX002" } do
    it("raises integrity for SQLSTATE " .. state, function()
      local db = open()
      db:set("fine", "1")
      pg.psql(table.concat({
        "CREATE FUNCTION " .. schema .. ".corrupt() RETURNS trigger LANGUAGE plpgsql AS $$",
        "BEGIN IF NEW.key = 'damaged' THEN",
        "  RAISE EXCEPTION 'simulated damaged page' USING ERRCODE = '" .. state .. "';",
        "END IF; RETURN NEW; END $$;",
        "CREATE TRIGGER corrupt BEFORE INSERT OR UPDATE ON " .. schema .. ".kv_store",
        "  FOR EACH ROW EXECUTE FUNCTION " .. schema .. ".corrupt();",
      }, "\n"))
      local err = helpers.error_of(db.set, db, "damaged", "x")
      assert.is_true(storage.is_error(err))
      assert.equal("integrity", err.code)
      assert.equal(state, err.sqlstate)
      assert.matches("simulated damaged page", err.message)
      -- the handle carries on
      assert.equal("1", db:get("fine"))
      db:close()
    end)
  end
end)
