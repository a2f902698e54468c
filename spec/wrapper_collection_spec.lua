--- db:collection(name, {create = true, ...}) through every wrapper (the
-- tenant handle, the cache, the dual-write store): get-or-create works as
-- on the store, twice in a row, and the tenant's max_collections quota
-- counts a collection it creates.
local storage = require "llmspell.storage"

local function wrappers()
  return {
    { name = "tenant", make = function(db)
        return storage.tenant.open(db, "acme", { max_collections = 1 })
      end, quota = true },
    { name = "cache", make = function(db) return storage.cache.wrap(db, { search = true }) end },
    { name = "dual write", make = function(db)
        return storage.migrate.dual_write(db, storage.open("memory"))
      end },
  }
end

for _, w in ipairs(wrappers()) do
  describe("db:collection with create through the " .. w.name .. " wrapper", function()
    it("creates when absent and opens when present", function()
      local db = storage.open("memory")
      local h = w.make(db)
      local a = h:collection("docs", { dimension = 2, create = true })
      a:add { { id = "x", vector = { 1, 0 } } }
      local b = h:collection("docs", { dimension = 2, create = true })
      assert.equal(1, b:count())
      local ok, err = pcall(h.collection, h, "docs", { dimension = 3, create = true })
      assert.is_false(ok)
      assert.equal("conflict", err.code)
      ok, err = pcall(h.collection, h, "absent")
      assert.is_false(ok)
      assert.equal("not_found", err.code)
      if w.quota then
        ok, err = pcall(h.collection, h, "second", { dimension = 2, create = true })
        assert.is_false(ok)
        assert.equal("quota", err.code)
      end
      db:close()
    end)
  end)
end
