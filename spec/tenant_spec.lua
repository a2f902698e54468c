--- llmspell.storage.tenant: naming and validation, isolation between
-- tenants, quotas (each trips exactly at its limit, with nothing written),
-- usage figures, scoping and the secondary metadata check; against memory,
-- an SQLite file and PostgreSQL.
local storage = require "llmspell.storage"
local tenant = require "llmspell.storage.tenant"
local helpers = require "spec.helpers"

local function sorted(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c
end

local function ids_of(results)
  local out = {}
  for i, r in ipairs(results) do out[i] = r.id end
  table.sort(out)
  return out
end

local function names_of(list)
  local out = {}
  for i, c in ipairs(list) do out[i] = c.name end
  return out
end

-- The error object a quota refusal raises, checked field by field.
local function assert_quota(err, which, limit, used, requested, id)
  assert.is_true(storage.is_error(err), "expected an error object, got " .. tostring(err))
  assert.equal("quota", err.code)
  assert.equal(which, err.quota)
  assert.equal(limit, err.limit)
  assert.equal(used, err.used)
  assert.equal(requested, err.requested)
  assert.equal(id or "acme", err.tenant)
  assert.matches(which, err.message, 1, true)
end

local function bad_arg(pattern, f, ...)
  local err = helpers.error_of(f, ...)
  assert.is_string(err)
  assert.matches(pattern, err, 1, true)
  return err
end

describe("tenant naming", function()
  it("names collections, scopes and key prefixes", function()
    assert.equal("tenant_acme:docs", tenant.collection("acme", "docs"))
    assert.equal("tenant_acme_corp:documents", tenant.collection("acme_corp", "documents"))
    assert.equal("tenant:acme", tenant.scope("acme"))
    assert.equal("tenant:acme/", tenant.key_prefix("acme"))
  end)

  it("parses what it names, splitting at the first ':'", function()
    local cases = {
      { "tenant_acme:docs", "acme", "docs" },
      { "tenant_a_b:x", "a_b", "x" },
      { "tenant_a:_b:x", "a", "_b:x" },
      { "tenant_a:b:c", "a", "b:c" },
      { "tenant_A-1:v1.2/x", "A-1", "v1.2/x" },
      { "tenant__:x", "_", "x" },
      { "tenant_-:x", "-", "x" },
    }
    for _, c in ipairs(cases) do
      local id, name = tenant.parse(c[1])
      assert.equal(c[2], id, c[1])
      assert.equal(c[3], name, c[1])
    end
  end)

  it("refuses names that are not a tenant's", function()
    for _, s in ipairs { "docs", "tenant_:x", "tenant_a", "tenant_a:", "tenant_a b:x",
                         "tenantX_a:x", "tenant-a:x", "tenant_a/b:x", "tenant_a:b c",
                         "tenant_" .. ("a"):rep(65) .. ":x", "tenant_\195\164:x",
                         "tenant_a:" .. ("x"):rep(250) } do
      assert.is_nil(tenant.parse(s), s)
    end
    assert.is_nil(tenant.parse(nil))
    assert.is_nil(tenant.parse(42))
  end)

  it("is injective: distinct (id, name) pairs give distinct names that parse back", function()
    local alphabet_id, alphabet_name = { "a", "_", "-" }, { "a", "_", ":", "/" }
    local function words(alphabet, max)
      local out, level = {}, { "" }
      for _ = 1, max do
        local next_level = {}
        for _, w in ipairs(level) do
          for _, ch in ipairs(alphabet) do
            next_level[#next_level + 1] = w .. ch
            out[#out + 1] = w .. ch
          end
        end
        level = next_level
      end
      return out
    end
    local seen, n = {}, 0
    for _, id in ipairs(words(alphabet_id, 3)) do
      for _, name in ipairs(words(alphabet_name, 3)) do
        local full = tenant.collection(id, name)
        assert.is_nil(seen[full], full)
        seen[full] = true
        n = n + 1
        local pid, pname = tenant.parse(full)
        assert.equal(id, pid)
        assert.equal(name, pname)
        -- key prefixes never nest: no tenant's prefix starts another's
        assert.is_true(tenant.key_prefix(id):sub(-1) == "/")
      end
    end
    assert.equal(39 * 84, n)
  end)

  it("validates ids: letters, digits, '-' and '_', 1..64 characters", function()
    assert.equal("tenant_" .. ("x"):rep(64) .. ":n", tenant.collection(("x"):rep(64), "n"))
    assert.is_true(tenant.is_valid_id("Acme-2_b"))
    for _, id in ipairs { "", ("x"):rep(65), "a:b", "a/b", "a b", "../x", ".", "a.b",
                          "\195\164", "a\0b", "a\n", "tenant:x", "*", "%" } do
      local ok, msg = tenant.is_valid_id(id)
      assert.is_false(ok, id)
      assert.is_string(msg)
      local err = bad_arg("bad argument #1 to 'collection' (tenant id", function()
        local name = tenant.collection(id, "x") -- not a tail call: the frame stays
        return name
      end)
      assert.matches("^spec/tenant_spec.lua:%d+: ", err)
      bad_arg("bad argument #1 to 'scope' (tenant id", tenant.scope, id)
      bad_arg("bad argument #1 to 'key_prefix' (tenant id", tenant.key_prefix, id)
    end
    bad_arg("tenant id is 65 bytes, at most 64 allowed", tenant.scope, ("x"):rep(65))
    bad_arg("tenant id must not be empty", tenant.scope, "")
    bad_arg("\":\" at byte 2", tenant.scope, "a:b")
    for _, id in ipairs { 1, true, {}, false } do
      bad_arg("tenant id must be a string, got " .. type(id), tenant.scope, id)
    end
    bad_arg("tenant id must be a string, got nil", tenant.scope)
  end)

  it("validates collection names", function()
    bad_arg("bad argument #2 to 'collection' (collection name must not be empty",
            tenant.collection, "a", "")
    bad_arg("collection name must be a string, got number", tenant.collection, "a", 1)
    bad_arg("\" \" at byte 2", tenant.collection, "a", "a b")
    local room = 255 - #"tenant_acme:"
    assert.equal(255, #tenant.collection("acme", ("n"):rep(room)))
    bad_arg(string.format("collection name is %d bytes, at most %d allowed for tenant 'acme'",
                          room + 1, room), tenant.collection, "acme", ("n"):rep(room + 1))
  end)

  describe("tenant.open arguments", function()
    local db
    before_each(function() db = storage.open("memory") end)
    after_each(function() db:close() end)

    it("wants a store and a valid id", function()
      bad_arg("bad argument #1 to 'open' (store handle expected, got nil)", tenant.open, nil, "a")
      bad_arg("store handle expected, got string", tenant.open, "memory", "a")
      bad_arg("bad argument #2 to 'open' (tenant id", tenant.open, db, "a:b")
      bad_arg("bad argument #2 to 'open' (tenant id must be a string", tenant.open, db)
    end)

    it("validates quotas", function()
      bad_arg("bad argument #3 to 'open' (quota table expected, got number)", tenant.open, db,
              "a", 5)
      bad_arg("unknown quota 'max_colections' (expected max_collections", tenant.open, db, "a",
              { max_colections = 1 })
      for _, v in ipairs { -1, 1.5, "3", math.huge, 0 / 0, true } do
        bad_arg("quota.max_kv_bytes must be a non-negative integer", tenant.open, db, "a",
                { max_kv_bytes = v })
      end
      local t = tenant.open(db, "a", { max_collections = 2.0, max_kv_bytes = 0 })
      assert.same({ max_collections = 2, max_kv_bytes = 0 }, t:quota())
      assert.equal("integer", math.type(t:quota().max_collections))
    end)

    it("refuses the components, which the store's own tenant partitions", function()
      local t = tenant.open(db, "acme")
      for _, kind in ipairs { "sessions", "artifacts", "agent_states", "workflows", "patterns",
                              "graph", "hook_history", "events" } do
        local err = helpers.error_of(t[kind], t)
        assert.equal("invalid", err.code, kind)
        assert.matches("open the store with { tenant = \"acme\" }", err.message, 1, true)
      end
      t:close()
      assert.equal("closed", helpers.error_of(t.sessions, t).code)
    end)

    it("validates keys, values and options before touching the store", function()
      local t = tenant.open(db, "acme")
      local room = 1024 - #"tenant:acme/"
      t:set(("k"):rep(room), "v")
      assert.equal("v", t:get(("k"):rep(room)))
      local err = bad_arg(string.format("bad argument #1 to 'set' (key is %d bytes, at most %d "
                                        .. "allowed in tenant 'acme')", room + 1, room),
                          function() t:set(("k"):rep(room + 1), "v") end)
      assert.matches("^spec/tenant_spec.lua:%d+: ", err)
      bad_arg("bad argument #1 to 'get' (key must be UTF-8 text without NUL bytes)", t.get, t,
              "a\0b")
      bad_arg("bad argument #1 to 'get' (string key expected, got nil)", t.get, t)
      bad_arg("bad argument #2 to 'set' (string value expected, got number)", t.set, t, "k", 1)
      bad_arg("bad argument #3 to 'set' (ttl must be a positive number of seconds)", t.set, t,
              "k", "v", { ttl = -1 })
      bad_arg("bad argument #3 to 'set' (unknown option 'tll')", t.set, t, "k", "v",
              { tll = 1 })
      bad_arg("bad argument #1 to 'list_keys' (string prefix expected, got number)",
              t.list_keys, t, 5)
      bad_arg("bad argument #1 to 'get_batch' (keys[2]: string key expected, got number)",
              function() t:get_batch { "a", 2 } end)
      bad_arg("bad argument #1 to 'batch' (op 1: field 'op' must be \"set\" or \"delete\")",
              t.batch, t, { { op = "put", key = "k", value = "v" } })
      bad_arg("bad argument #1 to 'batch' (op 2: unknown option 'ttl')", t.batch, t,
              { { op = "set", key = "k", value = "v" }, { op = "delete", key = "k", ttl = 1 } })
      bad_arg("bad argument #1 to 'batch' (op 1: ttl must be a positive number of seconds)",
              t.batch, t, { { op = "set", key = "k", value = "v", ttl = 0 } })
      bad_arg("bad argument #1 to 'transaction' (function expected, got nil)", t.transaction, t)
      bad_arg("bad argument #1 to 'create_collection' (collection name", t.create_collection,
              t, "a b", { dimension = 2 })
      -- the core's own messages keep the method's name and argument number
      bad_arg("bad argument #2 to 'create_collection'", function()
        t:create_collection("docs", { dimension = 0 })
      end)
      assert.same({ ("k"):rep(room) }, t:list_keys())
    end)
  end)
end)

local wanted = { memory = true, ["sqlite file"] = true, postgres = true }
local found = 0
for _, backend in ipairs(helpers.backends()) do
  if wanted[backend.name] then
    found = found + 1
    describe("tenant on " .. backend.name, function()
      local db

      before_each(function()
        if backend.setup then backend:setup() end
        db = backend.open(nil, backend)
      end)

      after_each(function()
        if db then
          pcall(function()
            for _, c in ipairs(db:list_collections()) do db:drop_collection(c.name) end
            db:clear()
          end)
          db:close()
        end
        if backend.teardown then backend:teardown() end
      end)

      local function vec(i) return { math.cos(i), math.sin(i), 0.5 } end

      describe("key-value", function()
        it("namespaces keys under tenant:<id>/ and strips the prefix on the way out", function()
          local t = tenant.open(db, "acme")
          t:set("user:1", "ada")
          t:set("user:2", "bob\0bin")
          t:set("z", "")
          assert.equal("ada", t:get("user:1"))
          assert.equal("bob\0bin", t:get("user:2"))
          assert.equal("ada", db:get("tenant:acme/user:1"))
          assert.is_true(t:exists("z"))
          assert.same({ "user:1", "user:2", "z" }, t:list_keys())
          assert.same({ "user:1", "user:2" }, t:list_keys("user:"))
          local seen = {}
          for k, v in t:scan("user:") do seen[#seen + 1] = k .. "=" .. v end
          assert.same({ "user:1=ada", "user:2=bob\0bin" }, seen)
          assert.same({ ["user:1"] = "ada", z = "" }, t:get_batch { "user:1", "z", "nope" })
          assert.equal(2, t:set_batch({ a = "1", b = "2" }, { ttl = 60 }))
          assert.equal(1, t:batch { { op = "set", key = "c", value = "3" },
                                    { op = "delete", key = "a" } })
          assert.equal(2, t:delete_batch { "b", "c", "nope" })
          assert.is_true(t:delete("z"))
          assert.is_false(t:delete("z"))
          assert.equal("acme", t:tenant())
          assert.equal(db:backend_type(), t:backend_type())
        end)

        it("scans with break, closing the scan, and lets the loop write", function()
          local t = tenant.open(db, "acme")
          for i = 1, 300 do t:set(string.format("k%03d", i), tostring(i)) end
          local n = 0
          for k in t:scan("k") do
            n = n + 1
            t:set("w" .. k, "x")
            if n == 260 then break end
          end
          assert.equal(260, n)
          assert.equal(260, #t:list_keys("w"))
        end)

        it("cannot see, change or delete other tenants' keys, even with crafted keys", function()
          local ids = { "acme", "acme_b", "acme-b", "acmeb", "b" }
          local handles = {}
          for _, id in ipairs(ids) do
            handles[id] = tenant.open(db, id)
            handles[id]:set("k", "value of " .. id)
            handles[id]:set("x/y", id)
          end
          db:set("tenant:acme", "raw, no slash")
          db:set("tenant:acme_b", "raw")
          db:set("raw", "raw")
          for _, id in ipairs(ids) do
            local t = handles[id]
            assert.same({ "k", "x/y" }, t:list_keys(), id)
            assert.equal("value of " .. id, t:get("k"))
            local n = 0
            for _ in t:scan() do n = n + 1 end
            assert.equal(2, n)
          end
          local b = handles["acme_b"]
          for _, crafted in ipairs { "../acme/k", "/k", "../../tenant:acme/k", "tenant:acme/k",
                                    "..", "", "%", "_" } do
            assert.is_nil(b:get(crafted), crafted)
            assert.is_false(b:exists(crafted))
            assert.is_false(b:delete(crafted))
            if crafted ~= "" then assert.same({}, b:list_keys(crafted)) end
          end
          assert.same({}, b:list_keys("../"))
          assert.same({}, b:get_batch { "../acme/k", "tenant:acme/k" })
          assert.equal(0, b:delete_batch { "../acme/k", "tenant:acme/k", "../acme/x/y" })
          assert.equal(0, b:batch { { op = "delete", key = "../acme/k" } })
          -- acme's data is intact
          assert.equal("value of acme", handles.acme:get("k"))
          assert.equal("value of acme", db:get("tenant:acme/k"))
          -- clear removes only the namespace
          assert.equal(2, handles.acme:clear())
          assert.same({}, handles.acme:list_keys())
          for _, id in ipairs(ids) do
            if id ~= "acme" then assert.equal("value of " .. id, handles[id]:get("k")) end
          end
          assert.equal("raw, no slash", db:get("tenant:acme"))
          assert.equal("raw", db:get("raw"))
        end)

        it("runs transactions with the tenant handle: commit and rollback", function()
          local t = tenant.open(db, "acme")
          local a, b = t:transaction(function(tx)
            assert.equal(t, tx)
            tx:set("a", "1")
            return 1, "two"
          end)
          assert.equal(1, a)
          assert.equal("two", b)
          local sentinel = { code = "mine" }
          local ok, err = pcall(t.transaction, t, function(tx)
            tx:set("b", "2")
            tx:delete("a")
            error(sentinel)
          end)
          assert.is_false(ok)
          assert.equal(sentinel, err)
          assert.equal("1", t:get("a"))
          assert.is_nil(t:get("b"))
        end)
      end)

      describe("collections", function()
        it("names them tenant_<id>:<name> and lists only the tenant's", function()
          local a, ab = tenant.open(db, "a"), tenant.open(db, "a_b")
          local c1 = a:create_collection("docs", { dimension = 3 })
          a:create_collection("_b:x", { dimension = 3 })
          ab:create_collection("x", { dimension = 3 })
          ab:create_collection("docs", { dimension = 3, metric = "l2" })
          db:create_collection("tenant_a", { dimension = 3 })
          db:create_collection("plain", { dimension = 3 })
          assert.same({ "_b:x", "docs" }, names_of(a:list_collections()))
          assert.same({ "docs", "x" }, names_of(ab:list_collections()))
          assert.same({ "docs" }, names_of(a:list_collections("d")))
          assert.equal("tenant_a:docs", a:list_collections("d")[1].full_name)
          assert.equal("docs", c1:name())
          assert.equal("docs", c1:stats().name)
          assert.equal("tenant_a:docs", c1:stats().full_name)
          assert.equal("cosine", a:collection("docs"):stats().metric)
          assert.equal("l2", ab:collection("docs"):stats().metric)
          local err = helpers.error_of(a.collection, a, "x")
          assert.equal("not_found", err.code)
          err = helpers.error_of(a.collection, a, "../tenant_a_b:docs")
          assert.equal("not_found", err.code)
          err = helpers.error_of(a.create_collection, a, "docs", { dimension = 3 })
          assert.equal("conflict", err.code)
          assert.is_true(a:drop_collection("docs"))
          assert.is_false(a:drop_collection("docs"))
          assert.equal("l2", ab:collection("docs"):stats().metric)
          assert.equal(6 - 1, #db:list_collections())
        end)

        it("scopes and tags every entry, refusing another scope or tenant_id", function()
          local t = tenant.open(db, "acme")
          local docs = t:create_collection("docs", { dimension = 3 })
          assert.equal(2, docs:add {
            { id = "d1", vector = vec(1), metadata = { lang = "en" } },
            { id = "d2", vector = vec(2), scope = "tenant:acme",
              metadata = { tenant_id = "acme" } },
          })
          local e = docs:get("d1")
          assert.equal("tenant:acme", e.scope)
          assert.same({ lang = "en", tenant_id = "acme" }, e.metadata)
          bad_arg("bad argument #1 to 'add' (entry 2: scope must be 'tenant:acme' for tenant "
                  .. "'acme', got global", docs.add, docs,
                  { { id = "d3", vector = vec(3) },
                    { id = "d4", vector = vec(4), scope = "global" } })
          bad_arg("entry 1: metadata.tenant_id must be 'acme', got other", docs.upsert, docs,
                  { id = "d3", vector = vec(3), metadata = { tenant_id = "other" } })
          bad_arg("entry 1: metadata must be a table, got string", docs.add, docs,
                  { id = "d3", vector = vec(3), metadata = "x" })
          bad_arg("bad argument #1 to 'add' (entry 1: vector has 2 numbers", docs.add, docs,
                  { id = "d3", vector = { 1, 2 } })
          assert.equal(2, docs:count())
          assert.equal(2, #docs)
          assert.is_nil(docs:get("d3"))
          docs:update_metadata("d1", { lang = "fr" })
          assert.same({ lang = "fr", tenant_id = "acme" }, docs:get("d1").metadata)
          bad_arg("bad argument #2 to 'update_metadata' (metadata.tenant_id must be 'acme'",
                  docs.update_metadata, docs, "d1", { tenant_id = "x" })
          assert.equal("not_found", helpers.error_of(docs.update_metadata, docs, "zz", {}).code)
          assert.same({ scope = "tenant:acme", vectors = 2 },
                      { scope = docs:stats_for_scope().scope,
                        vectors = docs:stats_for_scope("tenant:acme").vectors })
          bad_arg("bad argument #1 to 'stats_for_scope' (scope must be 'tenant:acme'",
                  docs.stats_for_scope, docs, "global")
          bad_arg("bad argument #1 to 'delete_scope' (scope must be 'tenant:acme'",
                  docs.delete_scope, docs, "tenant:other")
          assert.equal(1, docs:delete("d2"))
          assert.equal(1, docs:delete_scope())
          assert.equal(0, docs:count())
        end)

        it("scopes and filters searches, ANDing tenant_id with the caller's filter", function()
          local t = tenant.open(db, "acme")
          local docs = t:create_collection("docs", { dimension = 3 })
          local entries = {}
          for i = 1, 20 do
            entries[i] = { id = "d" .. i, vector = vec(i),
                           metadata = { lang = i % 2 == 0 and "en" or "fr", n = i } }
          end
          docs:add(entries)
          local r = docs:search(vec(1), { k = 3 })
          assert.equal(3, #r)
          assert.equal("d1", r[1].id)
          for _, hit in ipairs(r) do
            assert.equal("acme", hit.metadata.tenant_id)
            assert.equal("tenant:acme", hit.scope)
          end
          r = docs:search(vec(1), { k = 50, filter = { lang = "en" } })
          assert.equal(10, #r)
          local f = storage.filter():eq("lang", "fr"):lt("n", 6)
          r = docs:search(vec(1), { k = 50, filter = f })
          assert.same({ "d1", "d3", "d5" }, ids_of(r))
          -- a filter naming another tenant finds nothing (ANDed, not replaced)
          assert.same({}, docs:search(vec(1), { k = 50, filter = { tenant_id = "other" } }))
          assert.same({}, docs:search(vec(1), { k = 50,
                       filter = { ["$or"] = { { tenant_id = "other" }, { n = 999 } } } }))
          assert.equal(20, #docs:search(vec(1), { k = 50, filter = { tenant_id = "acme" } }))
          r = docs:search(vec(1), { k = 2, include_metadata = false })
          assert.equal(2, #r)
          assert.is_nil(r[1].metadata)
          local many = docs:search_many({ vec(1), vec(2) }, { k = 1, filter = { lang = "en" } })
          assert.equal("d2", many[2][1].id)
          assert.equal(1, #many[1])
          bad_arg("bad argument #2 to 'search' (scope must be 'tenant:acme' for tenant 'acme', "
                  .. "got global", docs.search, docs, vec(1), { scope = "global" })
          local err = bad_arg("bad argument #2 to 'search' (filter.n.$gtx: unknown operator",
                              function()
                                docs:search(vec(1), { filter = { n = { ["$gtx"] = 1 } } })
                              end)
          assert.matches("^spec/tenant_spec.lua:%d+: ", err)
          bad_arg("bad argument #2 to 'search' (unknown option 'kk')", function()
            docs:search(vec(1), { kk = 1 })
          end)
        end)

        it("cannot read, search, list or delete another tenant's vectors", function()
          local a, b = tenant.open(db, "acme"), tenant.open(db, "acme_b")
          local da = a:create_collection("docs", { dimension = 3 })
          local db_ = b:create_collection("docs", { dimension = 3 })
          for i = 1, 5 do
            da:add { id = "d" .. i, vector = vec(i), metadata = { owner = "a" } }
            db_:add { id = "d" .. i, vector = vec(i), metadata = { owner = "b" } }
          end
          da:add { id = "only_a", vector = vec(9) }
          assert.is_nil(db_:get("only_a"))
          assert.equal("b", db_:get("d1").metadata.owner)
          for _, hit in ipairs(db_:search(vec(9), { k = 50 })) do
            assert.equal("b", hit.metadata.owner)
            assert.equal("acme_b", hit.metadata.tenant_id)
          end
          assert.equal(0, db_:delete { "only_a", "../only_a" })
          assert.equal(5, db_:delete { "d1", "d2", "d3", "d4", "d5" })
          assert.equal(6, da:count())
          assert.is_false(b:drop_collection("../tenant_acme:docs"))
          assert.equal(6, a:collection("docs"):count())
        end)

        it("checks entries again: tampered metadata or scope are not the tenant's", function()
          local t = tenant.open(db, "acme")
          local docs = t:create_collection("docs", { dimension = 3 })
          for i = 1, 6 do docs:add { id = "d" .. i, vector = vec(i) } end
          local raw = db:collection("tenant_acme:docs")
          raw:update_metadata("d1", { tenant_id = "evil" })
          raw:upsert { id = "g", vector = vec(1), scope = "global",
                       metadata = { tenant_id = "acme" } }
          assert.is_nil(docs:get("d1"))
          assert.is_nil(docs:get("g"))
          local r = docs:search(vec(1), { k = 50 })
          assert.same({ "d2", "d3", "d4", "d5", "d6" }, ids_of(r))
          assert.equal(0, docs:delete("d1"))
          assert.equal(0, docs:delete("g"))
          assert.is_table(raw:get("d1"))
          assert.equal("not_found", helpers.error_of(docs.update_metadata, docs, "d1", {}).code)
          local err = helpers.error_of(docs.upsert, docs, { id = "d1", vector = vec(1) })
          assert.equal("conflict", err.code)
          assert.equal("evil", raw:get("d1").metadata.tenant_id)
        end)

        it("drops results the store returns unfiltered (the secondary check)", function()
          -- A store whose collections ignore filter and scope: only the
          -- re-check in Lua stands between the tenant and foreign entries.
          local function leaky_col(col)
            local function strip(o)
              local c = {}
              for k, v in pairs(o or {}) do c[k] = v end
              c.filter, c.scope = nil, nil
              return c
            end
            return setmetatable({}, { __index = function(_, k)
              if k == "search" then
                return function(_, v, o) return col:search(v, strip(o)) end
              elseif k == "search_many" then
                return function(_, v, o) return col:search_many(v, strip(o)) end
              end
              return function(_, ...) return col[k](col, ...) end
            end })
          end
          local leaky = setmetatable({}, { __index = function(_, k)
            if k == "create_collection" or k == "collection" then
              return function(_, ...) return leaky_col(db[k](db, ...)) end
            end
            return function(_, ...) return db[k](db, ...) end
          end })
          local t = tenant.open(leaky, "acme")
          local docs = t:create_collection("docs", { dimension = 3 })
          for i = 1, 4 do docs:add { id = "d" .. i, vector = vec(i) } end
          local raw = db:collection("tenant_acme:docs")
          raw:update_metadata("d1", { tenant_id = "evil" })
          raw:upsert { id = "g", vector = vec(1), scope = "global",
                       metadata = { tenant_id = "acme" } }
          raw:upsert { id = "n", vector = vec(1), scope = "tenant:acme" }
          assert.equal(6, #raw:search(vec(1), { k = 50 }))
          assert.same({ "d2", "d3", "d4" }, ids_of(docs:search(vec(1), { k = 50 })))
          local r = docs:search(vec(1), { k = 50, include_metadata = false })
          assert.same({ "d2", "d3", "d4" }, ids_of(r))
          assert.is_nil(r[1].metadata)
          local many = docs:search_many({ vec(1), vec(2) }, { k = 50 })
          assert.same({ "d2", "d3", "d4" }, ids_of(many[1]))
          assert.same({ "d2", "d3", "d4" }, ids_of(many[2]))
        end)
      end)

      describe("quotas", function()
        it("max_collections trips at its limit, creating nothing", function()
          local t = tenant.open(db, "acme", { max_collections = 2 })
          local other = tenant.open(db, "acme_b")
          for i = 1, 3 do other:create_collection("c" .. i, { dimension = 3 }) end
          db:create_collection("tenant_acme", { dimension = 3 })
          t:create_collection("a", { dimension = 3 })
          t:create_collection("b", { dimension = 3 })
          local err = helpers.error_of(t.create_collection, t, "c", { dimension = 3 })
          assert_quota(err, "max_collections", 2, 2, 1)
          assert.same({ "a", "b" }, names_of(t:list_collections()))
          assert.equal(0, #db:list_collections("tenant_acme:c"))
          t:drop_collection("a")
          t:create_collection("c", { dimension = 3 })
          assert.same({ "b", "c" }, names_of(t:list_collections()))
        end)

        it("max_collections 0 allows none", function()
          local t = tenant.open(db, "acme", { max_collections = 0 })
          assert_quota(helpers.error_of(t.create_collection, t, "a", { dimension = 3 }),
                       "max_collections", 0, 0, 1)
        end)

        it("max_vectors_per_collection trips at its limit, writing nothing", function()
          local t = tenant.open(db, "acme", { max_vectors_per_collection = 3 })
          local docs = t:create_collection("docs", { dimension = 3 })
          local more = t:create_collection("more", { dimension = 3 })
          docs:add { { id = "a", vector = vec(1) }, { id = "b", vector = vec(2) } }
          local err = helpers.error_of(docs.add, docs, { { id = "c", vector = vec(3) },
                                                         { id = "d", vector = vec(4) } })
          assert_quota(err, "max_vectors_per_collection", 3, 2, 2)
          assert.equal("docs", err.collection)
          assert.equal(2, docs:count())
          assert.is_nil(docs:get("c"))
          assert.equal(1, docs:add { id = "c", vector = vec(3) })       -- == limit
          assert_quota(helpers.error_of(docs.add, docs, { id = "d", vector = vec(4) }),
                       "max_vectors_per_collection", 3, 3, 1)
          -- replacing grows nothing
          assert.equal(2, docs:upsert { { id = "a", vector = vec(5), metadata = { v = 2 } },
                                        { id = "b", vector = vec(6) } })
          assert.equal(2, docs:get("a").metadata.v)
          err = helpers.error_of(docs.upsert, docs,
                                 { { id = "a", vector = vec(7), metadata = { v = 3 } },
                                   { id = "e", vector = vec(8) } })
          assert_quota(err, "max_vectors_per_collection", 3, 3, 1)
          assert.equal(2, docs:get("a").metadata.v)
          assert.is_nil(docs:get("e"))
          assert.equal(3, docs:count())
          -- each collection has its own allowance
          assert.equal(3, more:add { { id = "a", vector = vec(1) }, { id = "b", vector = vec(2) },
                                     { id = "c", vector = vec(3) } })
          -- deleting frees room
          docs:delete("a")
          assert.equal(1, docs:add { id = "d", vector = vec(4) })
        end)

        it("counts expired entries until purge_expired removes them", function()
          local t = tenant.open(db, "acme", { max_vectors_per_collection = 2 })
          local docs = t:create_collection("docs", { dimension = 3 })
          docs:add { { id = "a", vector = vec(1), ttl = 0.05 },
                     { id = "b", vector = vec(2), ttl = 0.05 } }
          helpers.sleep(0.15)
          assert.equal(0, docs:count())
          assert.equal(2, t:usage().vectors)
          assert_quota(helpers.error_of(docs.add, docs, { id = "c", vector = vec(3) }),
                       "max_vectors_per_collection", 2, 2, 1)
          -- upserting an expired id replaces its row: no growth
          assert.equal(1, docs:upsert { id = "a", vector = vec(1) })
          assert.equal(1, docs:purge_expired())
          assert.equal(1, docs:add { id = "c", vector = vec(3) })
          assert.equal(2, docs:count())
        end)

        it("max_total_vectors trips at its limit across collections, writing nothing", function()
          local t = tenant.open(db, "acme", { max_total_vectors = 4 })
          local other = tenant.open(db, "acme_b")
          other:create_collection("x", { dimension = 3 }):add { id = "o", vector = vec(1) }
          local a = t:create_collection("a", { dimension = 3 })
          local b = t:create_collection("b", { dimension = 3 })
          a:add { { id = "1", vector = vec(1) }, { id = "2", vector = vec(2) },
                  { id = "3", vector = vec(3) } }
          local err = helpers.error_of(b.add, b, { { id = "4", vector = vec(4) },
                                                   { id = "5", vector = vec(5) } })
          assert_quota(err, "max_total_vectors", 4, 3, 2)
          assert.equal(0, b:count())
          assert.equal(1, b:add { id = "4", vector = vec(4) })          -- == limit
          assert_quota(helpers.error_of(a.add, a, { id = "5", vector = vec(5) }),
                       "max_total_vectors", 4, 4, 1)
          assert_quota(helpers.error_of(b.upsert, b, { id = "5", vector = vec(5) }),
                       "max_total_vectors", 4, 4, 1)
          assert.equal(3, a:count())
          assert.equal(1, b:count())
          t:drop_collection("a")
          assert.equal(1, b:add { id = "5", vector = vec(5) })
        end)

        it("max_kv_bytes trips at its limit (key + value bytes), writing nothing", function()
          local t = tenant.open(db, "acme", { max_kv_bytes = 20 })
          local other = tenant.open(db, "acme_b")
          other:set("big", ("x"):rep(100))
          db:set("raw", ("x"):rep(100))
          t:set("a", "123456789")                     -- 10
          t:set("b", "12345678")                      -- 19
          t:set("c", "")                              -- 20 == limit
          assert_quota(helpers.error_of(t.set, t, "d", ""), "max_kv_bytes", 20, 20, 1)
          assert.is_false(t:exists("d"))
          -- replacing counts the growth only
          t:set("a", "987654321")
          t:set("a", "1")                             -- 12
          assert_quota(helpers.error_of(t.set, t, "b", ("y"):rep(17)), "max_kv_bytes", 20, 12, 9)
          assert.equal("12345678", t:get("b"))
          t:set("b", ("y"):rep(16))                   -- 20
          assert.equal(20, t:usage().kv_bytes)
          -- batches count as a whole, nothing written when refused
          t:delete("b")                               -- 3
          local err = helpers.error_of(t.set_batch, t, { e = "1234", f = ("z"):rep(13) })
          assert_quota(err, "max_kv_bytes", 20, 3, 19)
          assert.is_nil(t:get("e"))
          assert.equal(2, t:set_batch { e = "1234", f = ("z"):rep(11) }) -- 3 + 5 + 12 = 20
          err = helpers.error_of(t.batch, t, { { op = "delete", key = "f" },
                                               { op = "set", key = "g", value = ("w"):rep(12) } })
          assert_quota(err, "max_kv_bytes", 20, 20, 1)
          assert.is_true(t:exists("f"))
          assert.is_false(t:exists("g"))
          assert.equal(1, t:batch { { op = "delete", key = "f" },
                                    { op = "set", key = "g", value = ("w"):rep(11) } })
          assert.equal(20, t:usage().kv_bytes)
          -- a later delete in the same batch frees what an earlier set took
          t:batch { { op = "set", key = "h", value = "12345" }, { op = "delete", key = "h" } }
          assert.is_false(t:exists("h"))
          -- inside a transaction the check sees the transaction's own writes
          t:clear()
          local ok, e2 = pcall(t.transaction, t, function(tx)
            tx:set("a", ("q"):rep(19))
            tx:set("b", "")
          end)
          assert.is_false(ok)
          assert_quota(e2, "max_kv_bytes", 20, 20, 1)
          assert.same({}, t:list_keys())
          assert.equal(("x"):rep(100), other:get("big"))
        end)
      end)

      if backend.shared then
        it("counts what other handles on the same store wrote", function()
          local db2 = backend.open(nil, backend)
          local q = { max_kv_bytes = 10, max_vectors_per_collection = 2 }
          local t1, t2 = tenant.open(db, "acme", q), tenant.open(db2, "acme", q)
          t1:set("a", "1234")                          -- 5
          assert_quota(helpers.error_of(t2.set, t2, "b", "123456"), "max_kv_bytes", 10, 5, 7)
          t2:set("b", "1234")                          -- 10
          assert_quota(helpers.error_of(t1.set, t1, "c", ""), "max_kv_bytes", 10, 10, 1)
          local c1 = t1:create_collection("docs", { dimension = 3 })
          local c2 = t2:collection("docs")
          c1:add { id = "1", vector = vec(1) }
          c2:add { id = "2", vector = vec(2) }
          assert_quota(helpers.error_of(c1.add, c1, { id = "3", vector = vec(3) }),
                       "max_vectors_per_collection", 2, 2, 1)
          assert.same({ "1", "2" }, ids_of(c1:search(vec(1), { k = 10 })))
          db2:close()
        end)
      end

      it("reports usage as the quotas count it", function()
        local t = tenant.open(db, "acme")
        assert.same({ tenant = "acme", collections = 0, vectors = 0, vectors_by_collection = {},
                      kv_bytes = 0, kv_keys = 0 }, tenant.usage(db, "acme"))
        t:set("ab", "cde")
        t:set("x", "")
        t:set("gone", "x", { ttl = 0.05 })
        tenant.open(db, "acme_b"):set("zz", "zz")
        db:set("tenant:acme", "raw")
        local a = t:create_collection("a", { dimension = 3 })
        t:create_collection("b:c", { dimension = 3 })
        a:add { { id = "1", vector = vec(1) }, { id = "2", vector = vec(2) } }
        tenant.open(db, "acme_b"):create_collection("a", { dimension = 3 })
        helpers.sleep(0.1)
        local expected = { tenant = "acme", collections = 2, vectors = 2,
                           vectors_by_collection = { a = 2, ["b:c"] = 0 },
                           kv_bytes = 6, kv_keys = 2 }
        assert.same(expected, tenant.usage(db, "acme"))
        assert.same(expected, t:usage())
        local st = t:stats()
        assert.equal("acme", st.tenant)
        assert.equal(db:backend_type(), st.backend)
        assert.equal(2, st.keys)
        assert.equal(6, st.bytes)
        assert.equal(2, st.collections)
        assert.equal(2, st.vectors)
        assert.equal(db:tenant(), st.store_tenant)
        bad_arg("bad argument #2 to 'usage' (tenant id", tenant.usage, db, "a:b")
      end)

      describe("objects", function()
        it("print usefully", function()
          local t = tenant.open(db, "acme")
          assert.matches("^llmspell%.storage%.Tenant %(acme, " .. db:backend_type(), tostring(t))
          local docs = t:create_collection("docs", { dimension = 3 })
          docs:add { id = "1", vector = vec(1) }
          assert.equal("llmspell.storage.TenantCollection (acme, docs, 3-d cosine, 1 vectors)",
                       tostring(docs))
          assert.equal("llmspell.storage.Tenant", getmetatable(t).__name)
          t:close()
          assert.equal("llmspell.storage.Tenant (acme, closed)", tostring(t))
          assert.equal("llmspell.storage.TenantCollection (acme, docs, closed)", tostring(docs))
        end)

        it("close without closing the store, and refuse use afterwards", function()
          local docs
          do
            local t <close> = tenant.open(db, "acme")
            t:set("k", "v")
            docs = t:create_collection("docs", { dimension = 3 })
          end
          assert.equal("v", db:get("tenant:acme/k"))
          local err = helpers.error_of(function() return docs:count() end)
          assert.equal("closed", err.code)
          local t = tenant.open(db, "acme")
          t:close()
          t:close()
          for _, f in ipairs { "get", "list_keys", "usage", "create_collection", "stats" } do
            assert.equal("closed", helpers.error_of(t[f], t, "k").code, f)
          end
          local t2 = tenant.open(db, "acme")
          do
            local c <close> = t2:collection("docs")
            assert.equal(0, c:count())
          end
          assert.equal(0, t2:collection("docs"):count())
        end)

        it("refuse use after the store is closed", function()
          local t = tenant.open(db, "acme")
          local docs = t:create_collection("docs", { dimension = 3 })
          db:close()
          for _, f in ipairs { function() return t:get("k") end,
                               function() return t:set("k", "v") end,
                               function() return t:list_collections() end,
                               function() return t:usage() end,
                               function() return docs:search(vec(1)) end,
                               function() return docs:add { id = "x", vector = vec(1) } end } do
            local err = helpers.error_of(f)
            assert.is_true(storage.is_error(err))
            assert.equal("closed", err.code)
          end
          assert.matches("store closed", tostring(t))
          db = nil
        end)
      end)
    end)
  end
end

describe("tenant spec coverage", function()
  it("ran against memory, an SQLite file and PostgreSQL", function()
    assert.equal(3, found)
  end)
end)

describe("a tenant collection's scan", function()
  it("streams only the tenant's entries, in order, and refuses another scope", function()
    local db = storage.open("memory")
    finally(function() db:close() end)
    local t = storage.tenant.open(db, "acme")
    local col = t:create_collection("docs", { dimension = 2 })
    for i = 1, 5 do col:add { id = "d" .. i, vector = { i, 1 }, event_time = 10 - i } end
    -- an entry in the same store collection without the tenant's tags
    db:collection("tenant_acme:docs"):add { id = "intruder", vector = { 1, 1 },
                                            scope = "tenant:acme" }
    local ids = {}
    for e in col:scan { order = "event_time" } do ids[#ids + 1] = e.id end
    assert.same({ "d5", "d4", "d3", "d2", "d1" }, ids)
    ids = {}
    for e in col:scan { include_metadata = false, limit = 2 } do
      ids[#ids + 1] = e.id
      assert.is_nil(e.metadata)
    end
    assert.same({ "d1", "d2" }, ids)
    local err = helpers.error_of(col.scan, col, { scope = "global" })
    assert.matches("scope must be 'tenant:acme'", err, 1, true)
  end)
end)
