--- storage.limits against what the core does: every limit is accepted at
-- its value and refused one past it, and every text the API takes (keys,
-- prefixes, ids, scopes, names, tenants) must be UTF-8 without NUL, on
-- every backend. What the store accepts, its own export can write.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

local limits = storage.limits

-- The bad-argument message a call raised; fails the test when the call
-- succeeded or raised something else (an error object, say).
local function refused(f, ...)
  local err = helpers.error_of(f, ...)
  assert.is_string(err, "expected a bad-argument error, got " .. tostring(err))
  assert.matches("bad argument #%d+ to '[%w_.?]+' %(", err)
  return err
end

-- Asserts that err contains each of the plain texts.
local function says(err, ...)
  for _, text in ipairs { ... } do assert.matches(text, err, 1, true) end
end

-- Tables nested n deep: { a = { a = ... { a = 1 } } }.
local function nested(n)
  local t = { a = 1 }
  for _ = 2, n do t = { a = t } end
  return t
end

-- Texts that break "UTF-8 without NUL" in different ways.
local BAD_TEXTS = {
  { "a\xff", "bad byte at 2" },        -- not UTF-8 at all
  { "a\0b", "bad byte at 2" },         -- NUL
  { "\xc3", "bad byte at 1" },         -- truncated sequence
  { "x\xed\xa0\x80", "bad byte at 2" }, -- a UTF-16 surrogate
  { "\xc0\xaf", "bad byte at 1" },     -- overlong
}

describe("storage.limits", function()
  it("is a table of the core's numbers and name rule", function()
    for _, name in ipairs { "max_key", "max_id", "max_name", "max_scope", "max_tenant",
                            "max_tenant_id", "max_section", "max_dimension", "max_k",
                            "min_m", "max_m", "max_ef_construction", "max_ef_search",
                            "max_threads", "max_depth", "max_json_depth", "max_batch",
                            "max_pattern_key", "max_pattern_value", "max_hook_context" } do
      assert.is_true(math.type(limits[name]) == "integer", name)
      assert.is_true(limits[name] > 0, name)
    end
    assert.is_number(limits.max_ttl)
    assert.is_string(limits.name_chars)
    assert.is_string(limits.name_chars_text)
    assert.is_truthy(("tenant_a:docs/v1.2-x"):match("^" .. limits.name_chars .. "+$"))
    assert.is_falsy(("a b"):match("^" .. limits.name_chars .. "+$"))
  end)
end)

for _, backend in ipairs(helpers.backends()) do
  describe("limits on " .. backend.name, function()
    local db

    local function open(opts) return backend.open(opts, backend) end

    before_each(function()
      if backend.setup then backend:setup() end
      db = open()
      db:clear()
      for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
    end)

    after_each(function()
      if db then
        pcall(function()
          db:clear()
          for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
        end)
        db:close()
      end
      if backend.teardown then backend:teardown() end
    end)

    describe("keys and prefixes", function()
      it("take max_key bytes and refuse one more", function()
        local key = ("k"):rep(limits.max_key)
        db:set(key, "v")
        assert.equal("v", db:get(key))
        local wide = ("\u{e9}"):rep(limits.max_key // 2) -- bytes, not characters
        db:set(wide, "w")
        assert.equal("w", db:get(wide))
        assert.same({ key }, db:list_keys(key))
        says(refused(function() db:set(key .. "k", "v") end),
             string.format("key is %d bytes, at most %d allowed", limits.max_key + 1,
                           limits.max_key))
        says(refused(function() db:list_keys(key .. "k") end), "prefix is")
        says(refused(function() db:set_batch({ [key .. "k"] = "v" }) end), "at most")
      end)

      it("must be UTF-8 without NUL", function()
        for _, bad in ipairs(BAD_TEXTS) do
          says(refused(function() db:set(bad[1], "v") end),
               "key must be UTF-8 text without NUL bytes", bad[2])
          says(refused(function() db:get(bad[1]) end), "key must be UTF-8")
          says(refused(function() db:list_keys(bad[1]) end), "prefix must be UTF-8")
          says(refused(function() db:scan(bad[1]) end), "prefix must be UTF-8")
        end
        assert.same({}, db:list_keys())
      end)
    end)

    describe("collection names", function()
      it("take max_name bytes and refuse one more", function()
        local name = ("n"):rep(limits.max_name)
        local col = db:create_collection(name, { dimension = 2 })
        assert.equal(name, col:name())
        assert.equal(col, db:collection(name))
        assert.equal(name, db:list_collections(name)[1].name)
        says(refused(function() db:create_collection(name .. "n", { dimension = 2 }) end),
             string.format("name must be 1..%d bytes", limits.max_name))
        says(refused(function() db:collection(name .. "n") end), "name must be")
        says(refused(function() db:drop_collection("") end), "name must be")
        says(refused(function() db:create_collection("a b", { dimension = 2 }) end),
             limits.name_chars_text)
        assert.is_true(db:drop_collection(name))
      end)

      it("list_collections refuses a prefix that is not UTF-8 without NUL", function()
        db:create_collection("docs", { dimension = 2 })
        for _, bad in ipairs(BAD_TEXTS) do
          says(refused(function() db:list_collections(bad[1]) end),
               "prefix must be UTF-8 text without NUL bytes", bad[2])
        end
        says(refused(function() db:list_collections(("p"):rep(limits.max_name + 1)) end),
             string.format("prefix is %d bytes, at most %d allowed", limits.max_name + 1,
                           limits.max_name))
        assert.equal(1, #db:list_collections(("d"):rep(1)))
        assert.equal(0, #db:list_collections(("d"):rep(limits.max_name)))
      end)
    end)

    describe("collection parameters", function()
      it("take each maximum and refuse one past it", function()
        local col = db:create_collection("wide", { dimension = limits.max_dimension,
                                                   m = limits.max_m,
                                                   ef_construction = limits.max_ef_construction,
                                                   ef_search = limits.max_ef_search })
        local info = db:list_collections("wide")[1]
        assert.same({ limits.max_dimension, limits.max_m, limits.max_ef_construction,
                      limits.max_ef_search },
                    { info.dimension, info.m, info.ef_construction, info.ef_search })
        col:close()
        db:create_collection("narrow", { dimension = 1, m = limits.min_m })
        local cases = {
          { { dimension = limits.max_dimension + 1 }, "option 'dimension'" },
          { { dimension = 2, m = limits.max_m + 1 }, "option 'm'" },
          { { dimension = 2, m = limits.min_m - 1 }, "option 'm'" },
          { { dimension = 2, ef_construction = limits.max_ef_construction + 1 },
            "option 'ef_construction'" },
          { { dimension = 2, ef_search = limits.max_ef_search + 1 }, "option 'ef_search'" },
        }
        for _, c in ipairs(cases) do
          says(refused(function() db:create_collection("x", c[1]) end), c[2],
               "must be an integer in [")
        end
        assert.equal(2, #db:list_collections())
      end)

      it("search takes k, ef_search and threads up to their maxima", function()
        local col = db:create_collection("s", { dimension = 2 })
        col:add({ { id = "a", vector = { 1, 0 } }, { id = "b", vector = { 0, 1 } } },
                { threads = limits.max_threads })
        assert.equal(2, #col:search({ 1, 0 }, { k = limits.max_k,
                                                ef_search = limits.max_ef_search }))
        assert.equal(1, #col:search_many({ { 1, 0 } }, { threads = limits.max_threads }))
        says(refused(function() col:search({ 1, 0 }, { k = limits.max_k + 1 }) end), "option 'k'")
        says(refused(function()
               col:search({ 1, 0 }, { ef_search = limits.max_ef_search + 1 })
             end),
             "option 'ef_search'")
        says(refused(function()
               col:search_many({ { 1, 0 } }, { threads = limits.max_threads + 1 })
             end),
             "option 'threads'")
        says(refused(function()
               col:add({ id = "c", vector = { 1, 1 } }, { threads = limits.max_threads + 1 })
             end),
             "option 'threads'")
        assert.equal(2, #col)
      end)

      it("ttl takes max_ttl seconds and refuses more", function()
        db:set("k", "v", { ttl = limits.max_ttl })
        assert.equal("v", db:get("k"))
        says(refused(function() db:set("k", "v", { ttl = limits.max_ttl * 2 }) end), "ttl must be")
        local col = db:create_collection("t", { dimension = 2 })
        col:add { id = "a", vector = { 1, 0 }, ttl = limits.max_ttl }
        assert.is_table(col:get("a"))
        says(refused(function()
               col:add({ id = "b", vector = { 1, 0 }, ttl = limits.max_ttl * 2 })
             end),
             "entry 1: ttl must be")
      end)

      it("metadata nests max_depth tables deep and no deeper", function()
        local col = db:create_collection("m", { dimension = 2 })
        col:add { id = "a", vector = { 1, 0 }, metadata = nested(limits.max_depth) }
        local md = col:get("a").metadata
        for _ = 2, limits.max_depth do md = md.a end
        assert.equal(1, md.a)
        says(refused(function()
               col:add({ id = "b", vector = { 1, 0 }, metadata = nested(limits.max_depth + 1) })
             end),
             "nested too deeply")
        says(refused(function()
               col:search({ 1, 0 }, { filter = nested(limits.max_depth + 1) })
             end),
             "nested too deeply")
      end)
    end)

    describe("ids and scopes", function()
      local col

      before_each(function()
        col = db:create_collection("ids", { dimension = 2 })
        col:add { id = "good", vector = { 1, 0 }, scope = "s1", metadata = { n = 1 } }
      end)

      it("ids take max_id bytes and refuse one more, or none", function()
        local id = ("i"):rep(limits.max_id)
        col:add { id = id, vector = { 0, 1 } }
        assert.equal(id, col:get(id).id)
        local too_long = id .. "i"
        local range = string.format("id must be 1..%d bytes", limits.max_id)
        says(refused(function() col:add({ id = too_long, vector = { 0, 1 } }) end),
             "entry 1: " .. range)
        says(refused(function() col:add({ id = "", vector = { 0, 1 } }) end), "entry 1: " .. range)
        says(refused(function() col:get(too_long) end), range)
        says(refused(function() col:delete({ "good", too_long }) end), "id 2: " .. range)
        assert.equal(2, #col)
      end)

      it("scopes take max_scope bytes and refuse one more, or none", function()
        local scope = ("s"):rep(limits.max_scope)
        col:add { id = "wide", vector = { 0, 1 }, scope = scope }
        assert.equal(scope, col:get("wide").scope)
        assert.equal(1, col:stats_for_scope(scope).vectors)
        assert.equal(1, #col:search({ 0, 1 }, { scope = scope }))
        local range = string.format("scope must be 1..%d bytes", limits.max_scope)
        for _, s in ipairs { scope .. "s", "" } do
          says(refused(function() col:add({ id = "x", vector = { 0, 1 }, scope = s }) end),
               "entry 1: " .. range)
          says(refused(function() col:search({ 0, 1 }, { scope = s }) end),
               "option 'scope' must be 1..")
          says(refused(function() col:stats_for_scope(s) end), range)
          says(refused(function() col:delete_scope(s) end), range)
        end
        assert.equal(1, col:delete_scope(scope))
        assert.equal(1, #col)
      end)

      it("ids must be UTF-8 without NUL, in every method that takes one", function()
        for _, bad in ipairs(BAD_TEXTS) do
          local id, at = bad[1], bad[2]
          local utf8 = "id must be UTF-8 text without NUL bytes"
          says(refused(function() col:add({ id = id, vector = { 0, 1 } }) end),
               "bad argument #1 to 'add' (entry 1: " .. utf8, at)
          says(refused(function() col:add({ { id = "fine", vector = { 0, 1 } },
                                       { id = id, vector = { 0, 1 } } }) end), "entry 2: " .. utf8)
          says(refused(function() col:upsert({ id = id, vector = { 0, 1 } }) end),
               "bad argument #1 to 'upsert' (entry 1: " .. utf8, at)
          says(refused(function() col:get(id) end), "bad argument #1 to 'get'", utf8, at)
          says(refused(function() col:delete(id) end), "bad argument #1 to 'delete'", utf8)
          says(refused(function() col:delete({ "good", id }) end), "id 2: " .. utf8)
          says(refused(function() col:update_metadata(id, { n = 2 }) end),
               "bad argument #1 to 'update_metadata'", utf8)
        end
        assert.equal(1, #col)
        assert.is_nil(col:get("fine"))
        assert.equal(1, col:get("good").metadata.n)
      end)

      it("scopes must be UTF-8 without NUL, in every method that takes one", function()
        for _, bad in ipairs(BAD_TEXTS) do
          local scope, at = bad[1], bad[2]
          local utf8 = "scope must be UTF-8 text without NUL bytes"
          says(refused(function() col:add({ id = "x", vector = { 0, 1 }, scope = scope }) end),
               "bad argument #1 to 'add' (entry 1: " .. utf8, at)
          says(refused(function()
                 col:upsert({ id = "good", vector = { 0, 1 }, scope = scope })
               end),
               "bad argument #1 to 'upsert' (entry 1: " .. utf8)
          says(refused(function() col:search({ 1, 0 }, { scope = scope }) end),
               "bad argument #2 to 'search' (option 'scope' must be UTF-8", at)
          says(refused(function() col:search_many({ { 1, 0 } }, { scope = scope }) end),
               "option 'scope' must be UTF-8")
          says(refused(function() col:stats_for_scope(scope) end),
               "bad argument #1 to 'stats_for_scope' (" .. utf8, at)
          says(refused(function() col:delete_scope(scope) end),
               "bad argument #1 to 'delete_scope' (" .. utf8, at)
        end
        assert.equal(1, #col)
        assert.equal("s1", col:get("good").scope)
      end)

      it("leave a store its own export can write and import", function()
        for _, bad in ipairs(BAD_TEXTS) do
          pcall(col.add, col, { id = bad[1], vector = { 0, 1 } })
          pcall(col.upsert, col, { id = "x" .. bad[1], vector = { 0, 1 } })
          pcall(col.add, col, { id = "y", vector = { 0, 1 }, scope = bad[1] })
          pcall(db.set, db, bad[1], "v")
        end
        col:add { id = "\u{e9}t\u{e9}", vector = { 0, 1 }, scope = "sc\u{f4}pe" }
        db:set("k\u{e9}", "v")
        local text = storage.exporter(db):to_string()
        assert.is_string(text)
        local copy = storage.open("memory")
        local st = storage.importer(copy):from_string(text)
        assert.equal(2, st.vectors)
        assert.equal(1, st.kv_entries)
        local ids = copy:collection("ids")
        assert.equal("sc\u{f4}pe", ids:get("\u{e9}t\u{e9}").scope)
        assert.equal("v", copy:get("k\u{e9}"))
        copy:close()
      end)
    end)

    describe("tenants", function()
      -- PostgreSQL specs share one database: each tenant must be new.
      local function tenant_of(len)
        local base = helpers.unique_tenant("lim")
        return base .. ("t"):rep(len - #base)
      end

      it("take max_tenant bytes and refuse one more, or none", function()
        local t = tenant_of(limits.max_tenant)
        local other = open { tenant = t }
        assert.equal(t, other:tenant())
        other:set("k", "v")
        assert.equal("v", other:get("k"))
        other:clear()
        other:close()
        local range = string.format("option 'tenant' must be 1..%d bytes", limits.max_tenant)
        says(refused(open, { tenant = tenant_of(limits.max_tenant + 1) }), range)
        says(refused(open, { tenant = "" }), range)
      end)

      it("must be UTF-8 without NUL", function()
        for _, bad in ipairs(BAD_TEXTS) do
          says(refused(open, { tenant = bad[1] }),
               "option 'tenant' must be UTF-8 text without NUL bytes", bad[2])
        end
      end)
    end)
  end)
end
