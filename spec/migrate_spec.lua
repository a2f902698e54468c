--- llmspell.storage.migrate: copy + verify between every pair of memory,
-- SQLite and PostgreSQL (binary values, TTLs, collections with their
-- parameters and metadata, passthrough sections), the API copy path,
-- verify catching changed values and vectors (full and sampled),
-- dual-write reads in each mode with one side failing, the five-phase hot
-- swap, plans saved/loaded/executed and dry runs, and roundtrip.
local storage = require "llmspell.storage"
local migrate = require "llmspell.storage.migrate"
local helpers = require "spec.helpers"
local cjson = require "cjson"

-- float32-exact numbers, so vectors compare bit for bit.
local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

local function vec(i, dim)
  local v = {}
  for j = 1, dim do v[j] = f32(math.sin(i * 7.31 + j * 1.7)) end
  return v
end

local opened, files = {}, {}

local KINDS = {
  {
    name = "memory",
    open = function(t) return storage.open { backend = "memory", tenant = t } end,
  },
  {
    name = "sqlite file",
    open = function(t)
      local path = helpers.tmpname(".db")
      files[#files + 1] = path
      return storage.open { backend = "sqlite", path = path, tenant = t }
    end,
  },
  {
    name = "postgres",
    open = function(t)
      return storage.open { backend = "postgres", url = helpers.pg_url(), tenant = t }
    end,
  },
}
local BY_NAME = {}
for _, k in ipairs(KINDS) do BY_NAME[k.name] = k end

local function open(kind)
  local t = helpers.unique_tenant("mig")
  local db = (type(kind) == "string" and BY_NAME[kind] or kind).open(t)
  opened[#opened + 1] = db
  return db, t
end

local function cleanup()
  for _, db in ipairs(opened) do pcall(db.close, db) end
  for _, p in ipairs(files) do
    helpers.remove_db(p)
    os.remove(p)
  end
  opened, files = {}, {}
end

-- Passthrough sections the public API cannot write: they arrive by import.
local SECTIONS = [[{"version":"1.0","data":{
  "agent_state":[{"state_id":"s1","agent_id":"a1","state_data":{"n":9007199254740993}},
    {"state_id":"s2","agent_id":"a2","state_data":{}}],
  "sessions":[{"id":"sess-1","session_id":"sess-1","session_data":{"a":[1,2,3]}}]}}]]

local N_MANY = 50
local N_KEYS = N_MANY + 6
local N_DOCS, N_IP = 120, 5
local DOC_IDS = {}
for i = 1, N_DOCS - 4 do DOC_IDS[i] = string.format("doc%03d", i) end
-- ids whose byte order differs from a locale's: the merge must agree
for _, id in ipairs { "Z", "a\"quote", "é-accent", "日本" } do DOC_IDS[#DOC_IDS + 1] = id end

--- Fills a store with everything a migration has to carry.
local function populate(db)
  db:set("bin/nul", "a\0b\0")
  db:set("bin/invalid-utf8", "\xff\xfe\xc3\x28")
  db:set("bin/empty", "")
  db:set("text/ключ 日本", "значение")
  db:set("ttl/one-hour", "expires later", { ttl = 3600 })
  local big = {}
  for i = 1, 70000 do big[i] = string.char((i * 7919) % 256) end
  db:set("big", table.concat(big))
  local many = {}
  for i = 1, N_MANY do many[string.format("many/%03d", i)] = "value " .. i end
  db:set_batch(many)

  local docs = db:create_collection("docs", { dimension = 8, metric = "cosine", m = 12,
                                              ef_construction = 100, ef_search = 40 })
  local batch = {}
  for i, id in ipairs(DOC_IDS) do
    batch[i] = {
      id = id, vector = vec(i, 8),
      metadata = { n = i, big = 9007199254740993 + i, f = i + 0.25, whole = 2.0,
                   tag = i % 2 == 0 and "even" or "odd", flag = i % 3 == 0,
                   nested = { list = { 1, 2.5, "x" }, deep = { k = "v" } } },
      scope = i % 4 == 0 and "tenant:acme" or "global",
      event_time = 1700000000 + i,
      expires_at = i % 10 == 0 and os.time() + 86400 or nil,
    }
  end
  docs:add(batch)
  db:create_collection("empty", { dimension = 4, metric = "l2", m = 6 })
  local ip = db:create_collection("ip3", { dimension = 3, metric = "ip", preset = "fast" })
  for i = 1, N_IP do ip:add { id = "p" .. i, vector = vec(i + 500, 3) } end
  storage.importer(db):from_string(SECTIONS)
end

--- The exported record of a key (to read its stored expiry).
local function kv_record(db, key)
  local doc = cjson.decode((storage.exporter(db):to_string { prefix = key }))
  for _, r in ipairs(doc.data.kv_store) do
    if r.key == key then return r end
  end
end

local function assert_populated(db)
  assert.equal(N_KEYS, db:stats().keys)
  assert.equal("a\0b\0", db:get("bin/nul"))
  assert.equal("\xff\xfe\xc3\x28", db:get("bin/invalid-utf8"))
  assert.equal("", db:get("bin/empty"))
  assert.equal("значение", db:get("text/ключ 日本"))
  assert.equal(70000, #db:get("big"))
  assert.equal("value 7", db:get("many/007"))
  local cols = db:list_collections()
  assert.equal(3, #cols)
  assert.same({ "docs", "empty", "ip3" }, { cols[1].name, cols[2].name, cols[3].name })
  assert.same({ 8, "cosine", 12, 100, 40, N_DOCS },
              { cols[1].dimension, cols[1].metric, cols[1].m, cols[1].ef_construction,
                cols[1].ef_search, cols[1].count })
  assert.same({ 4, "l2", 6, 0 }, { cols[2].dimension, cols[2].metric, cols[2].m, cols[2].count })
  assert.same({ 3, "ip", 12, 100, 50 }, { cols[3].dimension, cols[3].metric, cols[3].m,
                                         cols[3].ef_construction, cols[3].ef_search })
  local docs = db:collection("docs")
  local e = docs:get("doc012")
  assert.equal(12, e.metadata.n)
  assert.equal("integer", math.type(e.metadata.n))
  assert.equal(9007199254740993 + 12, e.metadata.big)
  assert.equal("float", math.type(e.metadata.whole))
  assert.same({ 1, 2.5, "x" }, e.metadata.nested.list)
  assert.equal("tenant:acme", e.scope)
  assert.equal(1700000012, e.event_time)
  assert.same(vec(12, 8), e.vector)
  assert.is_number(docs:get("doc010").expires_at)
  assert.equal("日本", docs:get("日本").id)
  assert.equal("doc012", docs:search(vec(12, 8), { k = 1 })[1].id)
end

describe("migrate", function()
  after_each(cleanup)

  describe("copy + verify between every pair of backends", function()
    for _, a in ipairs(KINDS) do
      for _, b in ipairs(KINDS) do
        it(a.name .. " -> " .. b.name, function()
          local src = open(a)
          populate(src)
          local dst = open(b)
          local phases = {}
          local counts = migrate.copy(src, dst, {
            batch_size = 16,
            progress = function(done, total, phase)
              assert.is_number(done)
              phases[phase] = true
            end,
          })
          assert.equal("export", counts.method)
          assert.equal(N_KEYS, counts.kv_entries)
          assert.equal(N_DOCS + N_IP, counts.vectors)
          assert.equal(3, counts.collections)
          assert.equal(2, counts.import.sections.agent_state)
          assert.is_true(phases["export kv_store"])
          assert.is_true(phases["import done"])
          assert_populated(dst)
          -- the TTL is the same absolute expiry, to the microsecond
          assert.equal(kv_record(src, "ttl/one-hour").expires_at,
                       kv_record(dst, "ttl/one-hour").expires_at)
          assert.is_nil(kv_record(dst, "bin/nul").expires_at)

          local ok, report = migrate.verify(src, dst, { strict = true, ttl_tolerance = 0 })
          assert.is_true(ok, table.concat(report.problems, "\n"))
          assert.equal("full", report.mode)
          assert.equal(N_KEYS, report.kv.checked)
          assert.equal(N_DOCS + N_IP, report.vectors.checked)
          assert.equal(N_DOCS, report.counts.target.collections.docs)
          assert.equal(0, report.counts.target.collections.empty)
          assert.equal(N_KEYS, report.counts.source.keys)
          assert.same({}, report.kv.mismatches)
        end)
      end
    end
  end)

  describe("the API path", function()
    for _, pair in ipairs { { "memory", "sqlite file" }, { "sqlite file", "postgres" },
                            { "postgres", "memory" } } do
      it(pair[1] .. " -> " .. pair[2] .. " keeps remaining TTLs and every vector field",
         function()
        local src = open(pair[1])
        populate(src)
        local dst = open(pair[2])
        local counts = migrate.copy(src, dst, { method = "api", batch_size = 7 })
        assert.equal("api", counts.method)
        assert.equal(N_KEYS, counts.kv_entries)
        assert.equal(N_DOCS + N_IP, counts.vectors)
        assert.equal(3, counts.collections)
        assert_populated(dst)
        local want = kv_record(src, "ttl/one-hour").expires_at
        local got = kv_record(dst, "ttl/one-hour").expires_at
        assert.is_number(got)
        assert.is_true(math.abs(want - got) < 2e6, "expiry moved by " .. (got - want) .. " us")
        local ok, report = migrate.verify(src, dst)
        assert.is_true(ok, table.concat(report.problems, "\n"))
        -- what only the export path carries: kv_id and creation times
        ok = migrate.verify(src, dst, { strict = true })
        assert.is_false(ok)
      end)
    end

    it("copies from and into handles that are not stores (a dual-write handle)", function()
      local src = open("memory")
      populate(src)
      local a, b = open("sqlite file"), open("memory")
      local h = migrate.dual_write(a, b)
      local counts = migrate.copy(src, h, { batch_size = 10 })
      assert.equal("api", counts.method)
      assert_populated(a)
      assert_populated(b)
      local ok, report = migrate.verify(src, h)
      assert.is_true(ok, table.concat(report.problems, "\n"))
      -- and back out of it: keys through scan (no TTLs), vectors by enumeration
      local c = open("memory")
      counts = migrate.copy(h, c)
      assert.equal(N_KEYS, counts.kv_entries)
      assert.equal(N_DOCS + N_IP, counts.vectors)
      ok, report = migrate.verify(h, c)
      assert.is_true(ok, table.concat(report.problems, "\n"))
      assert.is_nil(kv_record(c, "ttl/one-hour").expires_at)
    end)
  end)

  describe("selections", function()
    it("copies a prefix, some collections, or one component", function()
      local src = open("sqlite file")
      populate(src)
      local dst = open("memory")
      local counts = migrate.copy(src, dst, { prefix = "many/", collections = { "ip3" } })
      assert.equal(N_MANY, counts.kv_entries)
      assert.equal(N_IP, counts.vectors)
      assert.equal(N_MANY, dst:stats().keys)
      assert.equal(1, #dst:list_collections())
      assert.is_true((migrate.verify(src, dst, { prefix = "many/", collections = { "ip3" } })))

      dst = open("memory")
      counts = migrate.copy(src, dst, { components = { "vectors" } })
      assert.equal(0, dst:stats().keys)
      assert.equal(3, #dst:list_collections())
      assert.is_true((migrate.verify(src, dst, { components = { "vectors" } })))

      dst = open("postgres")
      counts = migrate.copy(src, dst, { components = { "kv" }, method = "api" })
      assert.equal(N_KEYS, dst:stats().keys)
      assert.equal(0, #dst:list_collections())
      assert.is_true((migrate.verify(src, dst, { components = { "kv" } })))
    end)

    it("dry run reads everything and writes nothing", function()
      local src = open("memory")
      populate(src)
      for _, method in ipairs { "export", "api" } do
        local dst = open("postgres")
        local counts = migrate.copy(src, dst, { dry_run = true, method = method })
        assert.equal(N_KEYS, counts.kv_entries)
        assert.equal(N_DOCS + N_IP, counts.vectors)
        assert.equal(0, dst:stats().keys)
        assert.equal(0, #dst:list_collections())
      end
    end)
  end)

  describe("verify", function()
    local src, dst
    before_each(function()
      src = open("sqlite file")
      populate(src)
      dst = open("memory")
      migrate.copy(src, dst)
    end)

    it("reports changed, missing and extra keys and vectors by key and id", function()
      dst:set("many/007", "changed")
      dst:delete("bin/empty")
      dst:set("extra/key", "x") -- the same number of keys as the source
      dst:set("ttl/one-hour", "expires later", { ttl = 60 })
      local docs = dst:collection("docs")
      local e = docs:get("doc005")
      e.vector[1] = f32(e.vector[1] + 0.5)
      docs:upsert { id = e.id, vector = e.vector, metadata = e.metadata, scope = e.scope,
                    event_time = e.event_time }
      docs:update_metadata("doc006", { n = 6 })
      docs:delete("doc007")

      local ok, report = migrate.verify(src, dst)
      assert.is_false(ok)
      local by_key = {}
      for _, m in ipairs(report.kv.mismatches) do by_key[m.key] = m end
      assert.equal("different", by_key["many/007"].reason)
      assert.same({ "value" }, by_key["many/007"].fields)
      assert.equal(#"value 7", by_key["many/007"].source_bytes)
      assert.equal(#"changed", by_key["many/007"].target_bytes)
      assert.equal("missing", by_key["bin/empty"].reason)
      assert.equal("extra", by_key["extra/key"].reason)
      assert.same({ "ttl" }, by_key["ttl/one-hour"].fields)
      assert.equal(4, #report.kv.mismatches)
      local by_id = {}
      for _, m in ipairs(report.vectors.mismatches) do by_id[m.id] = m end
      assert.equal("docs", by_id.doc005.collection)
      assert.same({ "vector" }, by_id.doc005.fields)
      assert.same({ "metadata" }, by_id.doc006.fields)
      assert.equal("missing", by_id.doc007.reason)
      assert.equal(3, #report.vectors.mismatches)
      assert.equal(1, report.vectors.missing)
      assert.equal(2, report.vectors.different)
      assert.is_true(#report.problems >= 4)
      local text = table.concat(report.problems, "\n")
      assert.matches("collection docs: 120 vectors in the source, 119 in the target", text,
                     1, true)

      -- presence only, and a target allowed to hold more
      ok, report = migrate.verify(src, dst, { values = false, allow_extra = true })
      assert.is_false(ok)
      assert.equal(1, report.kv.missing)
      assert.equal(0, report.kv.different)
      assert.equal(0, report.kv.extra)

      -- the list is capped, the counts are not
      ok, report = migrate.verify(src, dst, { limit = 1 })
      assert.is_true(report.truncated)
      assert.equal(1, #report.kv.mismatches)
      assert.equal(2, report.kv.different)
    end)

    it("catches a changed vector in PostgreSQL", function()
      local pg = open("postgres")
      migrate.copy(src, pg)
      assert.is_true((migrate.verify(src, pg)))
      local col = pg:collection("ip3")
      local e = col:get("p3")
      e.vector[2] = f32(-e.vector[2])
      col:upsert { id = e.id, vector = e.vector }
      pg:set("big", "small")
      local ok, report = migrate.verify(src, pg)
      assert.is_false(ok)
      assert.equal("p3", report.vectors.mismatches[1].id)
      assert.equal("ip3", report.vectors.mismatches[1].collection)
      assert.equal("big", report.kv.mismatches[1].key)
    end)

    it("samples the same entries every time, evenly spaced", function()
      local ok, r1 = migrate.verify(src, dst, { sample = 5 })
      assert.is_true(ok, table.concat(r1.problems, "\n"))
      assert.equal("sample", r1.mode)
      assert.equal(5, r1.kv.checked)
      assert.equal(5 + 5, r1.vectors.checked) -- docs and ip3 (empty has none)
      -- change every key: exactly the sampled ones are reported, the same twice
      local all = {}
      for k in dst:scan() do all[k] = "changed" end
      dst:set_batch(all)
      local _, r2 = migrate.verify(src, dst, { sample = 5 })
      local _, r3 = migrate.verify(src, dst, { sample = 5 })
      assert.equal(5, r2.kv.different)
      assert.same(r2.kv.mismatches, r3.kv.mismatches)
      assert.equal("ttl/one-hour", r2.kv.mismatches[5].key) -- the last key is always in
    end)
  end)

  describe("dual_write", function()
    local p, s, h
    before_each(function()
      p, s = open("memory"), open("sqlite file")
      h = migrate.dual_write(p, s)
    end)

    it("refuses the components, whose writes would reach one side only", function()
      for _, kind in ipairs { "sessions", "artifacts", "agent_states", "workflows", "patterns",
                              "graph", "hook_history", "events" } do
        local err = helpers.error_of(h[kind], h)
        assert.equal("invalid", err.code, kind)
        assert.matches("not dual-written", err.message, 1, true)
      end
    end)

    it("writes every operation to both stores", function()
      h:set("a", "1")
      h:set("t", "x", { ttl = 60 })
      assert.equal(2, h:set_batch { b = "2", c = "3" })
      h:batch { { op = "set", key = "d", value = "4" }, { op = "delete", key = "a" } }
      assert.is_true(h:delete("b"))
      assert.equal(1, h:delete_batch { "c", "zzz" })
      h:transaction(function(tx)
        tx:set("in-tx", "yes")
      end)
      for _, db in ipairs { p, s } do
        assert.same({ "d", "in-tx", "t" }, db:list_keys())
      end
      assert.has_error(function()
        h:transaction(function(tx)
          tx:set("rolled", "back")
          error("boom")
        end)
      end)
      assert.is_nil(p:get("rolled"))
      assert.is_nil(s:get("rolled"))

      local col = h:create_collection("docs", { dimension = 3, metric = "l2", m = 8 })
      col:add { { id = "x", vector = { 1, 0, 0 }, metadata = { n = 1 } },
                { id = "y", vector = { 0, 1, 0 } } }
      col:upsert { id = "y", vector = { 0, 1, 1 } }
      col:update_metadata("x", { n = 2 })
      assert.equal(1, col:delete("y"))
      assert.equal(1, #col)
      for _, db in ipairs { p, s } do
        local c = db:collection("docs")
        assert.equal(8, db:list_collections()[1].m)
        assert.equal(1, c:count())
        assert.equal(2, c:get("x").metadata.n)
      end
      assert.equal("x", col:search({ 1, 0, 0 }, { k = 1 })[1].id)
      h:clear()
      assert.equal(0, p:stats().keys)
      assert.equal(0, s:stats().keys)
      assert.is_true(h:drop_collection("docs"))
      assert.equal(0, #s:list_collections())
    end)

    it("reads from the primary, the secondary, or the primary then the secondary", function()
      p:set("only-p", "P")
      s:set("only-s", "S")
      p:set("both", "from p")
      s:set("both", "from s")
      assert.equal("P", h:get("only-p"))
      assert.is_nil(h:get("only-s"))
      assert.same({ "both", "only-p" }, h:list_keys())

      h:set_read("secondary")
      assert.is_nil(h:get("only-p"))
      assert.equal("from s", h:get("both"))
      assert.is_true(h:exists("only-s"))

      h:set_read("fallback")
      assert.equal("P", h:get("only-p"))
      assert.equal("S", h:get("only-s"))
      assert.equal("from p", h:get("both"))
      assert.is_nil(h:get("nowhere"))
      assert.is_true(h:exists("only-s"))
      assert.same({ both = "from p", ["only-p"] = "P", ["only-s"] = "S" },
                  h:get_batch { "both", "only-p", "only-s", "nowhere" })
      assert.same({ "both", "only-p", "only-s" }, h:list_keys())
      local seen = {}
      for k, v in h:scan() do seen[#seen + 1] = k .. "=" .. v end
      assert.same({ "both=from p", "only-p=P", "only-s=S" }, seen)
      assert.is_true(h:dual_stats().fallbacks > 0)

      -- collections: a miss on the primary is looked up on the secondary
      local pc = p:create_collection("c", { dimension = 2 })
      local sc = s:create_collection("c", { dimension = 2 })
      sc:add { id = "only-s", vector = { 1, 0 } }
      pc:add { id = "only-p", vector = { 0, 1 } }
      local col = h:collection("c")
      assert.equal("only-s", col:get("only-s").id)
      h:set_read("primary")
      assert.is_nil(col:get("only-s"))
      assert.equal("only-p", col:search({ 1, 0 }, { k = 1 })[1].id)
      h:set_read("secondary")
      assert.equal("only-s", col:search({ 0, 1 }, { k = 1 })[1].id)
      assert.has_error(function() h:set_read("sideways") end)
    end)

    it("raises when the secondary fails, saying which side and operation", function()
      p:set("k", "old")
      s:close()
      local err = helpers.error_of(h.set, h, "k", "new")
      assert.is_true(storage.is_error(err))
      assert.equal("closed", err.code)
      assert.equal("secondary", err.side)
      assert.equal("set", err.op)
      assert.equal("closed", err.cause.code)
      assert.matches("secondary set failed", tostring(err), 1, true)
      assert.equal("new", p:get("k")) -- the primary was written first
      assert.equal(1, h:dual_stats().secondary_errors)
      -- reads: a primary hit never touches the secondary; a miss does
      h:set_read("fallback")
      assert.equal("new", h:get("k"))
      assert.equal("secondary", helpers.error_of(h.get, h, "nope").side)
      h:set_read("secondary")
      assert.equal("secondary", helpers.error_of(h.get, h, "k").side)
      h:set_read("primary")
      assert.equal("new", h:get("k"))
      -- a transaction cannot start on the secondary: nothing is written
      assert.equal("secondary", helpers.error_of(h.transaction, h, function(tx)
        tx:set("tx", "1")
      end).side)
      assert.is_nil(p:get("tx"))
    end)

    it("logs secondary failures with on_secondary_error = \"log\"", function()
      local logged = {}
      h = migrate.dual_write(p, s, { on_secondary_error = "log", read = "fallback",
                                     log = function(err, op) logged[#logged + 1] = op end })
      s:close()
      h:set("k", "v")
      h:set_batch { a = "1" }
      assert.equal("v", p:get("k"))
      assert.is_nil(h:get("missing")) -- the secondary's failure is logged
      h:transaction(function(tx) tx:set("tx", "1") end)
      assert.equal("1", p:get("tx"))
      local st = h:dual_stats()
      assert.equal(st.secondary_errors, #logged)
      assert.same({ "set", "set_batch", "get", "transaction", "set" }, logged)
      assert.is_true(storage.is_error(st.last_secondary_error))
      assert.equal("secondary", st.last_secondary_error.side)
    end)

    it("raises when the primary fails and leaves the secondary untouched", function()
      p:close()
      local err = helpers.error_of(h.set, h, "k", "v")
      assert.equal("primary", err.side)
      assert.equal("closed", err.code)
      assert.is_nil(s:get("k"))
      -- fallback reads go to the secondary when the primary errors
      s:set("k", "from s")
      h:set_read("fallback")
      assert.equal("from s", h:get("k"))
      assert.same({ "k" }, h:list_keys())
      local seen = {}
      for k in h:scan() do seen[#seen + 1] = k end
      assert.same({ "k" }, seen)
      h:set_read("primary")
      assert.equal("primary", helpers.error_of(h.get, h, "k").side)
    end)

    it("rolls both back when the secondary fails inside a transaction", function()
      s:set("taken", "1")
      local sc = s:create_collection("c", { dimension = 2 })
      p:create_collection("c", { dimension = 2 })
      sc:add { id = "dup", vector = { 1, 0 } }
      local col = h:collection("c")
      local err = helpers.error_of(h.transaction, h, function(tx)
        tx:set("written", "1")
        col:add { id = "dup", vector = { 0, 1 } } -- conflict on the secondary only
      end)
      assert.equal("secondary", err.side)
      assert.equal("conflict", err.code)
      assert.is_nil(p:get("written"))
      assert.is_nil(s:get("written"))
      assert.equal(0, p:collection("c"):count())
    end)

    it("opens a collection one side lacks; using that side fails then", function()
      p:create_collection("c", { dimension = 2 })
      local col = h:collection("c")
      local err = helpers.error_of(col.add, col, { id = "x", vector = { 1, 0 } })
      assert.equal("secondary", err.side)
      assert.equal("not_found", err.code)
      assert.equal(1, col:count()) -- the primary was written, and reads go there
      assert.equal("x", col:get("x").id)
      h:set_read("fallback")
      assert.equal("x", col:get("x").id) -- a hit never asks the secondary
      assert.equal("secondary", helpers.error_of(col.get, col, "y").side) -- a miss does
      h:set_read("secondary")
      err = helpers.error_of(h.collection, h, "c")
      assert.equal("secondary", err.side)
      local quiet = migrate.dual_write(p, s, { on_secondary_error = "log", log = false })
      quiet:collection("c"):add { id = "y", vector = { 0, 1 } }
      assert.equal(1, quiet:dual_stats().secondary_errors)
      assert.equal(2, p:collection("c"):count())
      -- the primary must have it when reads go there
      s:create_collection("only-s", { dimension = 2 })
      assert.equal("primary", helpers.error_of(quiet.collection, quiet, "only-s").side)
    end)

    it("swaps roles, and closes both stores when it owns them", function()
      h:swap()
      assert.equal(s, h:primary())
      assert.equal(p, h:secondary())
      h:set("k", "v")
      assert.equal("v", s:get("k"))
      local owner = migrate.dual_write(p, s, { own = true })
      assert.matches("DualWrite", tostring(owner))
      do
        local _ <close> = owner
      end
      assert.equal("closed", helpers.error_of(p.get, p, "k").code)
      assert.equal("closed", helpers.error_of(s.get, s, "k").code)
    end)

    it("walks the five phases of a hot swap (SQLite to PostgreSQL)", function()
      local old = open("sqlite file")
      local new = open("postgres")
      old:set("a", "1")
      old:set("b", "2")
      -- phase 1: write both, read the old store, backfill, verify
      h = migrate.dual_write(new, old, { read = "secondary" })
      h:set("c", "3")
      assert.equal("1", h:get("a"))
      migrate.copy(old, new, { on_conflict = "skip" })
      assert.is_true((migrate.verify(old, new)))
      -- phase 2: the new store, falling back to the old
      h:set_read("fallback")
      old:set("late", "only in old")
      assert.equal("only in old", h:get("late"))
      assert.equal("3", h:get("c"))
      -- phase 3: the new store only
      h:set_read("primary")
      assert.is_nil(h:get("late"))
      -- phase 4: stop writing the old store
      h:set_write("primary")
      h:set("d", "4")
      assert.equal("4", new:get("d"))
      assert.is_nil(old:get("d"))
      -- phase 5: the new store alone
      assert.equal(new, h:primary())
      assert.equal(old, h:secondary())
      h:close()
      assert.equal("closed", helpers.error_of(h.get, h, "a").code)
      assert.equal("1", new:get("a")) -- the stores stay open (no `own`)
      assert.equal("1", old:get("a"))
    end)
  end)

  describe("plans", function()
    local function sqlite_source(tenant)
      local path = helpers.tmpname(".db")
      files[#files + 1] = path
      local db = storage.open("sqlite:" .. path, { tenant = tenant })
      populate(db)
      db:close()
      return path
    end

    it("are saved as JSON of strings and integers, and load back", function()
      local plan = migrate.plan { from = "sqlite:/tmp/a.db", to = "postgresql://x@h/db",
                                  components = { "kv", "vectors" }, batch_size = 500,
                                  tenant = "acme", collections = { "docs" } }
      assert.equal(1, plan.version)
      assert.equal("replace", plan.on_conflict)
      assert.equal("integer", math.type(plan.created_at))
      local path = helpers.tmpname(".json")
      files[#files + 1] = path
      assert.equal(path, migrate.save_plan(plan, path))
      local f = assert(io.open(path))
      local doc = cjson.decode(f:read("a"))
      f:close()
      local function only_strings_and_ints(v)
        if type(v) == "table" then
          for k, x in pairs(v) do
            assert.is_true(type(k) == "string" or math.type(k) == "integer")
            only_strings_and_ints(x)
          end
        else
          assert.is_true(type(v) == "string" or math.tointeger(v) ~= nil, tostring(v))
        end
      end
      only_strings_and_ints(doc)
      assert.equal(500, doc.batch_size)
      assert.same({ "kv", "vectors" }, doc.components)
      local back = migrate.load_plan(path)
      assert.same(plan, back)
      assert.equal("integer", math.type(back.batch_size))

      local p2 = migrate.plan { from = "memory", to = "memory" }
      assert.same({ "kv", "vectors", "sections" }, p2.components)
      assert.equal(1000, p2.batch_size)
    end)

    it("refuse malformed specs and files", function()
      assert.matches("'from' must be", helpers.error_of(migrate.plan, { to = "memory" }))
      assert.matches("entry 1 must be", helpers.error_of(migrate.plan, {
        from = "memory", to = "memory", components = { "graphs" } }))
      assert.matches("unknown field 'frm'", helpers.error_of(migrate.plan, {
        frm = "memory", from = "memory", to = "memory" }))
      local path = helpers.tmpname(".json")
      files[#files + 1] = path
      local f = assert(io.open(path, "w"))
      f:write("{not json")
      f:close()
      assert.equal("format", helpers.error_of(migrate.load_plan, path).code)
      f = assert(io.open(path, "w"))
      f:write('{"version":99,"from":"memory","to":"memory"}')
      f:close()
      assert.equal("version", helpers.error_of(migrate.execute, path).code)
      assert.equal("io", helpers.error_of(migrate.load_plan, path .. ".missing").code)
    end)

    it("execute: dry run writes nothing, then copies and verifies", function()
      local tenant = helpers.unique_tenant("plan")
      local src = sqlite_source(tenant)
      local plan = migrate.plan { from = "sqlite:" .. src, to = helpers.pg_url(),
                                  tenant = tenant, batch_size = 16 }
      local path = helpers.tmpname(".json")
      files[#files + 1] = path
      migrate.save_plan(plan, path)

      local report = migrate.execute(path, { dry_run = true })
      assert.is_true(report.ok, table.concat(report.problems, "\n"))
      assert.is_true(report.dry_run)
      assert.equal(N_KEYS, report.copied.kv_entries)
      assert.equal(N_DOCS + N_IP, report.copied.vectors)
      assert.equal(N_KEYS, report.before.source.keys)
      assert.is_nil(report.verify)
      local pg = storage.open(helpers.pg_url(), { tenant = tenant })
      opened[#opened + 1] = pg
      assert.equal(0, pg:stats().keys)
      assert.equal(0, #pg:list_collections())

      local phases = {}
      report = migrate.execute(path, { progress = function(_, _, ph) phases[ph] = true end })
      assert.is_true(report.ok, table.concat(report.problems, "\n"))
      assert.equal("done", report.stage)
      assert.is_true(report.verify.ok)
      assert.equal(N_KEYS, report.verify.kv.checked)
      assert.is_true(phases["import kv_store"])
      assert_populated(pg)
      -- again, into a target that now holds it all: still verified
      report = migrate.execute(plan)
      assert.is_true(report.ok, table.concat(report.problems, "\n"))
    end)

    it("execute: a dry run does not create an SQLite target", function()
      local src = sqlite_source("default")
      local target = helpers.tmpname(".db")
      files[#files + 1] = target
      local report = migrate.execute({ from = "sqlite:" .. src, to = "sqlite:" .. target,
                                       components = { "kv" } }, { dry_run = true })
      assert.is_true(report.ok)
      assert.is_true(report.before.target.missing)
      assert.equal(N_KEYS, report.copied.kv_entries)
      assert.is_nil(io.open(target))
      report = migrate.execute { from = "sqlite:" .. src, to = "sqlite:" .. target,
                                 components = { "kv" }, sample = 10 }
      assert.is_true(report.ok, table.concat(report.problems, "\n"))
      assert.equal("sample", report.verify.mode)
      local db = storage.open("sqlite:" .. target)
      opened[#opened + 1] = db
      assert.equal(N_KEYS, db:stats().keys)
      assert.equal(0, #db:list_collections())
    end)

    it("execute: checks dimensions before copying anything", function()
      local tenant = helpers.unique_tenant("plandim")
      local src = sqlite_source(tenant)
      local pg = storage.open(helpers.pg_url(), { tenant = tenant })
      opened[#opened + 1] = pg
      pg:create_collection("docs", { dimension = 16 })
      local report = migrate.execute { from = "sqlite:" .. src, to = helpers.pg_url(),
                                       tenant = tenant }
      assert.is_false(report.ok)
      assert.equal("before", report.stage)
      assert.matches("collection docs: 8%-d cosine in the source, 16%-d cosine in the target",
                     report.problems[1])
      assert.is_nil(report.copied)
      assert.equal(0, pg:stats().keys)
      -- a source that does not exist: an error naming the side
      local err = helpers.error_of(migrate.execute, { from = "sqlite:/nonexistent/x.db",
                                                      to = "memory" })
      assert.equal("source", err.side)
      assert.equal("not_found", err.code)
    end)
  end)

  describe("roundtrip", function()
    for _, kind in ipairs(KINDS) do
      it("is lossless on " .. kind.name, function()
        local db = open(kind)
        populate(db)
        local ok, report = migrate.roundtrip(db)
        assert.is_true(ok, table.concat(report.problems, "\n"))
        assert.equal(N_KEYS, report.kv.checked)
        assert.equal(N_DOCS + N_IP, report.vectors.checked)
        assert.equal(2, report.copied.export.sections.agent_state)
      end)
    end

    it("refuses what is not a store", function()
      assert.matches("^bad argument #1 to 'roundtrip'", helpers.error_of(migrate.roundtrip, {}))
    end)
  end)

  describe("errors", function()
    it("name the side that failed", function()
      local src, dst = open("memory"), open("sqlite file")
      populate(src)
      dst:set("bin/nul", "already here")
      local err = helpers.error_of(migrate.copy, src, dst, { on_conflict = "error" })
      assert.equal("conflict", err.code)
      assert.equal("target", err.side)
      assert.is_nil(dst:get("many/001")) -- the import is all or nothing
      err = helpers.error_of(migrate.copy, src, dst, { on_conflict = "error", method = "api" })
      assert.equal("target", err.side)
      src:close()
      err = helpers.error_of(migrate.copy, src, dst)
      assert.equal("source", err.side)
      assert.equal("closed", err.code)
      err = helpers.error_of(migrate.verify, dst, src)
      assert.equal("target", err.side)
    end)

    it("refuse bad arguments", function()
      local a, b = open("memory"), open("memory")
      assert.equal("bad argument #3 to 'copy' (unknown option 'bogus')",
                   helpers.error_of(migrate.copy, a, b, { bogus = 1 }))
      assert.matches("batch_size", helpers.error_of(migrate.copy, a, b, { batch_size = 0 }))
      assert.matches("on_conflict", helpers.error_of(migrate.copy, a, b, { on_conflict = "x" }))
      assert.matches("components", helpers.error_of(migrate.copy, a, b, { components = { 1 } }))
      assert.matches("method 'export' needs store handles",
                     helpers.error_of(migrate.copy, a, {}, { method = "export" }))
      assert.matches("sample", helpers.error_of(migrate.verify, a, b, { sample = -1 }))
      assert.matches("read", helpers.error_of(migrate.dual_write, a, b, { read = "both" }))
      assert.matches("^bad argument #1 to 'copy'", helpers.error_of(migrate.copy, nil, b))
    end)
  end)

  it("is reachable as require \"llmspell.storage.migrate\"", function()
    assert.equal(migrate, require "llmspell.storage.migrate")
    for _, f in ipairs { "copy", "verify", "dual_write", "plan", "save_plan", "load_plan",
                         "execute", "roundtrip" } do
      assert.is_function(migrate[f])
    end
  end)
end)
