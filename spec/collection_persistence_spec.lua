--- Persistence of vector collections on the backends that keep rows
-- (SQLite file, PostgreSQL): snapshots, corrupt snapshots, catch-up after
-- another process writes.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

local function ids(res)
  local out = {}
  for i, r in ipairs(res) do out[i] = r.id end
  return out
end

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local backends = {
  {
    name = "sqlite",
    setup = function(self) self.path = helpers.tmpname(".db") end,
    teardown = function(self) helpers.remove_db(self.path) end,
    open = function(self) return storage.open { backend = "sqlite", path = self.path,
                                                tenant = self.tenant } end,
    target = function(self) return self.path end,
    -- Flips one byte in the middle of the first snapshot part.
    corrupt = function(self)
      local ok, out = run("sqlite3 " .. sh_quote(self.path) .. " \"UPDATE vector_snapshots SET "
                          .. "data = substr(data, 1, 200) || x'5A' || substr(data, 202) "
                          .. "WHERE part = (SELECT min(part) FROM vector_snapshots)\"")
      assert(ok, out)
    end,
  },
  {
    name = "postgres",
    setup = function() end,
    teardown = function() end,
    open = function(self) return storage.open { backend = "postgres", url = helpers.pg_url(),
                                                tenant = self.tenant } end,
    target = function() return helpers.pg_url() end,
    corrupt = function(self)
      local sql = string.format("UPDATE llmspell.vector_snapshots SET data = overlay(data "
        .. "placing '\\x5a'::bytea from 201 for 1) WHERE tenant_id = '%s' AND part = "
        .. "(SELECT min(part) FROM llmspell.vector_snapshots WHERE tenant_id = '%s')",
        self.tenant, self.tenant)
      local ok, out = run(string.format("env -u LD_PRELOAD psql -X -q -v ON_ERROR_STOP=1 "
        .. "-h %s -p %s -U postgres -d postgres -c %s", os.getenv("LLMSPELL_TEST_PG_HOST"),
        os.getenv("LLMSPELL_TEST_PG_PORT"), sh_quote(sql)))
      assert(ok, out)
    end,
  },
}

for _, b in ipairs(backends) do
  describe("collection persistence on " .. b.name, function()
    local queries

    before_each(function()
      b:setup()
      b.tenant = helpers.unique_tenant("persist")
      queries = {}
      for i = 1, 5 do queries[i] = { i, 1 - i, 0.25 * i } end
    end)

    after_each(function() b:teardown() end)

    -- Creates "docs" with v1..v300 and returns the answers to `queries`.
    local function fill()
      local db = b:open()
      local col = db:create_collection("docs", { dimension = 3, metric = "l2" })
      local batch = {}
      for i = 1, 300 do
        batch[i] = { id = "v" .. i, vector = { i % 17, (i * 7) % 13, i / 10 },
                     metadata = { i = i } }
      end
      col:add(batch)
      local answers = {}
      for i, q in ipairs(queries) do answers[i] = ids(col:search(q, { k = 10 })) end
      return db, col, answers
    end

    it("reopens from the snapshot without rebuilding", function()
      local db, col, answers = fill()
      assert.is_true(col:snapshot() > 0)
      db:close()
      db = b:open()
      local again = db:collection("docs")
      local st = again:stats()
      assert.is_true(st.from_snapshot)
      assert.is_false(st.rebuilt)
      assert.equal(300, st.count)
      for i, q in ipairs(queries) do assert.same(answers[i], ids(again:search(q, { k = 10 }))) end
      assert.same({ i = 42 }, again:get("v42").metadata)
      db:close()
    end)

    it("writes a snapshot when the store closes", function()
      local db = fill()
      db:close()
      db = b:open()
      assert.is_true(db:collection("docs"):stats().from_snapshot)
      db:close()
    end)

    it("rebuilds from the rows when the snapshot is corrupt", function()
      local db, _, answers = fill()
      db:close()
      b:corrupt()
      db = b:open()
      local col = db:collection("docs")
      local st = col:stats()
      assert.is_false(st.from_snapshot)
      assert.is_true(st.rebuilt)
      assert.is_string(st.snapshot_error)
      assert.equal(300, st.count)
      for i, q in ipairs(queries) do assert.same(answers[i], ids(col:search(q, { k = 10 }))) end
      db:close()
    end)

    it("catches up with another process's writes, without a rebuild", function()
      local db, col = fill()
      col:snapshot()
      local loads = col:stats().loads
      local ok, out = run(helpers.lua_command(string.format(
        "spec/support/vector_writer.lua %s %s %s docs churn", b.name == "sqlite" and "sqlite"
        or "postgres", sh_quote(b:target()), b.tenant)))
      assert(ok and out:match("done"), out)
      -- this handle: incremental catch-up
      assert.equal(310, col:count())
      local st = col:stats()
      assert.equal(loads, st.loads)
      assert.is_true(st.catch_ups >= 1)
      assert.is_nil(col:get("v5"))
      assert.equal("child", col:get("new7").metadata.from)
      assert.is_true(col:get("v20").metadata.updated)
      assert.same({ "v21" }, ids(col:search({ 100, 100, 100 }, { k = 1 })))
      local found = ids(col:search({ 7, -7, 0.5 }, { k = 1 }))
      assert.same({ "new7" }, found)
      -- a fresh handle: older snapshot + rows written after it
      local db2 = b:open()
      local col2 = db2:collection("docs")
      st = col2:stats()
      assert.is_true(st.from_snapshot)
      assert.equal(310, st.count)
      assert.is_nil(col2:get("v5"))
      assert.same({ "v21" }, ids(col2:search({ 100, 100, 100 }, { k = 1 })))
      db2:close()
      db:close()
    end)

    it("sees writes by another handle in the same process", function()
      local db = fill()
      local db2 = b:open()
      local a, c2 = db:collection("docs"), db2:collection("docs")
      a:add { id = "extra", vector = { 50, 50, 50 } }
      assert.same({ "extra" }, ids(c2:search({ 50, 50, 50 }, { k = 1 })))
      c2:delete("extra")
      assert.is_nil(a:get("extra"))
      db:drop_collection("docs")
      assert.equal("not_found", helpers.error_of(c2.count, c2).code)
      db2:close()
      db:close()
    end)
  end)
end
