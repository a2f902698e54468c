--- Catching up with another process's writes when this handle's own write
-- call changes nothing (issue 17). A collection remembers the change
-- sequence (seq) it reflects; a write call that removes nothing (delete of
-- a missing id, delete_scope of a scope another process just emptied) must
-- not advance it, or a write that another process committed between this
-- handle's catch-up and its write is never replayed: the handle stays
-- stale for good while a fresh handle sees everything.
--
-- The interleaving is made deterministic by spec/support/racing_writer.lua:
-- the child holds its write in an open transaction and commits only once
-- this process is seen blocked behind that transaction's lock, i.e. after
-- this process's call has caught up and before its write runs.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- This process's pid (the child watches it wait on SQLite's lock).
local function my_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("a"):match("^(%d+)")
  f:close()
  return pid
end

local function vec(id)
  local h = 0
  for i = 1, #id do h = (h * 31 + id:byte(i)) % 1000 end
  return { h / 100, (1000 - h) / 100, #id }
end

local backends = {
  {
    name = "sqlite",
    setup = function(self) self.path = helpers.tmpname(".db") end,
    teardown = function(self) helpers.remove_db(self.path) end,
    open = function(self) return storage.open { backend = "sqlite", path = self.path,
                                                tenant = self.tenant } end,
    target = function(self) return self.path end,
  },
  {
    name = "postgres",
    setup = function() end,
    teardown = function() end,
    open = function(self) return storage.open { backend = "postgres", url = helpers.pg_url(),
                                                tenant = self.tenant } end,
    target = function() return helpers.pg_url() end,
  },
}

--- Everything a reader can see of col, for comparing two handles' views:
-- count, seq, every entry of ids by get, and exact searches over all.
local function view(col, ids)
  local v = { count = col:count(), seq = col:seq(), entries = {}, searches = {} }
  for _, id in ipairs(ids) do v.entries[id] = col:get(id) or false end
  for i, q in ipairs { { 0, 0, 0 }, { 5, 5, 2 }, { 10, 0, 3 } } do
    local hits = col:search(q, { k = 100, strategy = "exact" })
    local out = {}
    for j, hit in ipairs(hits) do out[j] = hit.id .. "@" .. string.format("%.6g", hit.distance) end
    v.searches[i] = out
  end
  return v
end

for _, b in ipairs(backends) do
  describe("catch-up after no-op writes on " .. b.name, function()
    before_each(function()
      b.tenant = helpers.unique_tenant("noop")
      b:setup()
    end)
    after_each(function() b:teardown() end)

    it("a handle mixing no-op and real writes with another process's commits ends with a "
       .. "fresh handle's view", function()
      local db = b:open()
      local col = db:create_collection("race", { dimension = 3, metric = "l2" })
      for i = 1, 6 do
        local id = "a" .. i
        col:add { id = id, vector = vec(id), metadata = { i = i }, scope = i <= 3 and "bs" or nil }
      end
      local pid = my_pid()

      -- Runs the child's write `action ...` so that it commits while op is
      -- blocked between its catch-up and its write.
      local function race(op, ...)
        local args = { b.name, b:target(), b.tenant, "race", pid, ... }
        for i, a in ipairs(args) do args[i] = sh_quote(a) end
        local p = assert(io.popen(helpers.lua_command("spec/support/racing_writer.lua "
                                                      .. table.concat(args, " ")) .. " 2>&1"))
        local first = p:read("l")
        if first ~= "ready" then
          local rest = p:read("a")
          p:close()
          error("child failed: " .. tostring(first) .. "\n" .. tostring(rest))
        end
        local ok, err = pcall(op)
        local rest = p:read("a")
        p:close()
        assert(ok, err)
        assert.matches("waited\ndone", rest)
      end

      -- no-op: a missing id, while the child adds b1
      race(function() assert.equal(0, col:delete("missing")) end, "add", "b1")
      assert.is_table(col:get("b1"))
      assert.equal(7, col:count())
      -- real write while the child adds b2
      race(function() col:add { id = "a7", vector = vec("a7"), metadata = { i = 7 } } end,
           "add", "b2")
      -- no-op: several missing ids, while the child adds b3 in a scope
      race(function() assert.equal(0, col:delete { "m1", "m2" }) end, "add", "b3", "bs2")
      -- no-op: delete_scope of a scope the child empties (and adds b4)
      race(function() assert.equal(0, col:delete_scope("bs")) end, "delete_scope", "bs", "b4")
      -- no-ops that never reach the backend
      assert.equal("not_found",
                   helpers.error_of(col.update_metadata, col, "missing", { x = 1 }).code)
      assert.equal(0, col:delete_scope("no-such-scope"))
      -- real writes while the child adds
      race(function() col:upsert { id = "a4", vector = vec("a4x"), metadata = { up = true } } end,
           "add", "b5")
      race(function() assert.equal(1, col:delete("a5")) end, "add", "b6")
      race(function() assert.equal(0, col:delete("a5")) end, "add", "b7")

      local ids = { "missing", "m1", "m2" }
      for i = 1, 7 do ids[#ids + 1] = "a" .. i; ids[#ids + 1] = "b" .. i end
      local db2 = b:open()
      local fresh = view(db2:collection("race"), ids)
      assert.equal(10, fresh.count) -- a4, a6, a7, b1..b7
      assert.same(fresh, view(col, ids))
      -- and it stays so: nothing of this handle's memory is stale
      assert.same(fresh, view(col, ids))
      db2:close()
      db:close()
    end)
  end)
end
