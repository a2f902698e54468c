--- Semantic memory, db:graph() (COMPONENTS.md "Semantic memory",
-- docs/graph.md): the bi-temporal contract on memory, SQLite (file and
-- :memory:) and PostgreSQL, plainly and inside a coroutine; then what each
-- SQL backend stores (sqlite3, psql as a role without BYPASSRLS) and the
-- plans get_entity and traverse run; then the knowledge_graph section.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"
local pg = require "spec.support.pg"

local sh_quote = helpers.shell_quote

local function code_of(code, f, ...)
  local err = helpers.error_of(f, ...)
  assert.is_true(storage.is_error(err), tostring(err))
  assert.equal(code, err.code, tostring(err.message))
  return err
end

local function argerror_of(pattern, f, ...)
  local err = helpers.error_of(f, ...)
  assert.is_string(err)
  assert.matches("bad argument", err, 1, true)
  assert.matches(pattern, err, 1, true)
  return err
end

--- The ids of an array of entities (or of traverse's {entity=} rows).
local function ids(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = (r.entity or r).id end
  return out
end

--- Builds the walk graph: a->b, a->c, b->d, c->d, d->a (a cycle), all
-- "x"; d->e "y"; e->f "x"; and c->g "x" valid only from 4e9 (2096).
local function build_walk(g)
  for _, id in ipairs { "a", "b", "c", "d", "e", "f", "g" } do
    g:add_entity { id = id, type = "node", name = id:upper(), valid_from = 0 }
  end
  local function rel(id, from, to, type, t)
    g:add_relationship { id = id, from = from, to = to, type = type, valid_from = t or 0 }
  end
  rel("ab", "a", "b", "x")
  rel("ac", "a", "c", "x")
  rel("bd", "b", "d", "x")
  rel("cd", "c", "d", "x")
  rel("da", "d", "a", "x")
  rel("de", "d", "e", "y")
  rel("ef", "e", "f", "x")
  rel("cg", "c", "g", "x", 4e9)
end

local function contract(backend, it, run_name)
  describe("graph on " .. backend.name .. run_name, function()
    local db, g
    local backend_name = backend.name:match("^sqlite") and "sqlite" or backend.name

    before_each(function()
      if backend.setup then backend:setup() end
      db = backend.open({ tenant = helpers.unique_tenant("gr") }, backend)
      g = db:graph()
    end)

    after_each(function()
      if db then db:close() end
      if backend.teardown then backend:teardown() end
    end)

    it("is one object per store, printed with kind, backend, tenant and rows", function()
      assert.equal(g, db:graph())
      assert.equal("llmspell.storage.Graph", getmetatable(g).__name)
      g:add_entity { id = "e", type = "t", name = "E" }
      assert.matches("^llmspell%.storage%.Graph %(" .. backend_name .. " ", tostring(g))
      assert.matches("tenant " .. db:tenant() .. ", 1 rows)", tostring(g), 1, true)
      do
        local scoped <close> = db:graph()
        assert.equal("E", scoped:get_entity("e").name)
      end
      assert.equal("llmspell.storage.Graph (closed)", tostring(g))
      code_of("closed", g.get_entity, g, "e")
      local g2 = db:graph()
      assert.not_equal(g, g2)
      assert.equal("E", g2:get_entity("e").name)
      db:close()
      code_of("closed", g2.get_entity, g2, "e")
      db = nil
    end)

    it("adds, reads, updates by merging, and deletes keeping history", function()
      local id = g:add_entity { type = "person", name = "Ada",
                                properties = { born = 1815, big = 9007199254740993,
                                               tags = storage.array { "math" } } }
      assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", id)
      local e = g:get_entity(id)
      assert.equal("person", e.type)
      assert.equal(9007199254740993, e.properties.big)
      assert.same({ "math" }, e.properties.tags)
      assert.equal(math.huge, e.valid_to)
      assert.equal(math.huge, e.superseded_at)
      code_of("conflict", g.add_entity, g, { id = id, type = "person", name = "Ada" })
      assert.is_true(g:update_entity(id, { title = "Countess" }, { name = "Ada L." }))
      e = g:get_entity(id)
      assert.equal("Ada L.", e.name)
      assert.same({ born = 1815, big = 9007199254740993, tags = { "math" }, title = "Countess" },
                  e.properties)
      code_of("not_found", g.update_entity, g, "nobody", {})
      assert.is_true(g:delete_entity(id))
      assert.is_nil(g:get_entity(id))
      assert.is_false(g:delete_entity(id))
      code_of("not_found", g.update_entity, g, id, {})
      -- deleted entities can come back, as a new version
      g:add_entity { id = id, type = "person", name = "Ada again" }
      assert.equal("Ada again", g:get_entity(id).name)
    end)

    it("answers at (valid time) and as_of (transaction time) after three updates", function()
      local rec = {}
      g:add_entity { id = "e", type = "t", name = "v1", valid_from = 100 }
      rec[1] = g:get_entity("e", { at = 1e9 }).recorded_at
      for i, t in ipairs { 200, 300, 400 } do
        g:update_entity("e", { n = i + 1 }, { name = "v" .. (i + 1), valid_from = t })
        rec[i + 1] = g:get_entity("e", { at = 1e9 }).recorded_at
      end
      for i = 2, 4 do assert.is_true(rec[i] > rec[i - 1]) end
      local function name_at(opts)
        local e = g:get_entity("e", opts)
        return e and e.name or "none"
      end
      for _, case in ipairs {
        { 50, "none" }, { 100, "v1" }, { 199, "v1" }, { 200, "v2" }, { 299.5, "v2" },
        { 300, "v3" }, { 399, "v3" }, { 400, "v4" }, { 1e9, "v4" },
      } do
        assert.equal(case[2], name_at { at = case[1] }, "at " .. case[1])
      end
      for _, case in ipairs {
        { rec[1] - 1, "none" }, { rec[1], "v1" }, { rec[2], "v2" }, { rec[3], "v3" },
        { rec[4], "v4" },
      } do
        assert.equal(case[2], name_at { at = 1e9, as_of = case[1] }, "as_of " .. case[1])
      end
      -- both at once: what was believed then about another time
      assert.equal("v3", name_at { at = 450, as_of = rec[3] }) -- v3 was open then
      assert.equal("v1", name_at { at = 150, as_of = rec[4] })
      assert.equal("none", name_at { at = 50, as_of = rec[4] })
      local v2 = g:get_entity("e", { at = 250 })
      assert.equal(200, v2.valid_from)
      assert.equal(300, v2.valid_to)
      assert.equal(math.huge, v2.superseded_at)
      local old = g:get_entity("e", { at = 250, as_of = rec[2] })
      assert.equal(math.huge, old.valid_to) -- as believed before the third update
      assert.equal(rec[3], old.superseded_at)
    end)

    it("adds relationships between existing ends and lists them by direction and type",
       function()
      build_walk(g)
      code_of("not_found", g.add_relationship, g, { from = "a", to = "zz", type = "x" })
      local err = code_of("not_found", g.add_relationship, g, { from = "zz", to = "a", type = "x" })
      assert.matches("from", err.message, 1, true)
      code_of("conflict", g.add_relationship, g, { id = "ab", from = "a", to = "b", type = "x" })
      assert.same({ "da", "de" }, ids(g:relationships("d", { direction = "out" })))
      assert.same({ "bd", "cd" }, ids(g:relationships("d", { direction = "in" })))
      assert.same({ "bd", "cd", "da", "de" }, ids(g:relationships("d")))
      assert.same({ "de" }, ids(g:relationships("d", { type = "y" })))
      local r = g:relationships("a", { direction = "out" })[1]
      assert.equal("a", r.from)
      assert.equal("b", r.to)
      assert.equal("x", r.type)
      assert.same({ "cd" }, ids(g:relationships("c", { direction = "out" })))
      assert.same({ "cd", "cg" }, ids(g:relationships("c", { direction = "out", at = 4.1e9 })))
      assert.same({ "a", "b", "c", "e" }, ids(g:related("d")))
      assert.same({ "a", "e" }, ids(g:related("d", { direction = "out" })))
      assert.is_true(g:delete_relationship("da"))
      assert.same({ "e" }, ids(g:related("d", { direction = "out" })))
      assert.is_false(g:delete_relationship("da"))
    end)

    it("traverses each entity once at its smallest depth, cycles safe, in the engine",
       function()
      build_walk(g)
      local rows = g:traverse("a", { depth = 3 })
      assert.same({ "b", "c", "d", "e" }, ids(rows))
      local by = {}
      for _, r in ipairs(rows) do by[r.entity.id] = r end
      assert.equal(1, by.b.depth)
      assert.equal(2, by.d.depth)
      assert.equal(3, by.e.depth)
      assert.same({ "a", "b", "d" }, by.d.path)
      assert.same({ "a", "b", "d", "e" }, by.e.path)
      assert.equal("D", by.d.entity.name)
      assert.same({ "b", "c" }, ids(g:traverse("a")))
      assert.same({ "b", "c", "d" }, ids(g:traverse("a", { depth = 32, type = "x" })))
      assert.same({ "b", "c", "d", "e", "f" }, ids(g:traverse("a", { depth = 32 })))
      assert.same({ "b", "c", "d", "g", "e", "f" }, ids(g:traverse("a", { depth = 9, at = 4.1e9 })))
      assert.same({ "b", "c", "a" }, ids(g:traverse("d", { direction = "in", depth = 2 })))
      local both = g:traverse("e", { direction = "both", depth = 1 })
      assert.same({ "d", "f" }, ids(both))
      -- history: the walk as the store saw it before b was deleted
      local before = g:relationships("g", { direction = "in", at = 4.1e9 })[1].recorded_at
      g:delete_entity("b")
      assert.same({ "c", "d", "e" }, ids(g:traverse("a", { depth = 3 })))
      assert.same({ "b", "c", "d", "e" }, ids(g:traverse("a", { depth = 3, as_of = before })))
      assert.same({}, g:traverse("nobody"))
    end)

    it("queries by type, name, properties filter, time ranges and limit", function()
      g:add_entity { id = "p1", type = "person", name = "Ada", properties = { born = 1815 },
                     valid_from = 100 }
      g:add_entity { id = "p2", type = "person", name = "Charles", properties = { born = 1791 },
                     valid_from = 100 }
      g:add_entity { id = "m1", type = "machine", name = "Engine", valid_from = 100 }
      g:update_entity("p1", { born = 1816 }, { valid_from = 200 })
      assert.same({ "p1", "p2" }, ids(g:query { type = "person" }))
      assert.same({ "m1" }, ids(g:query { name = "Engine" }))
      assert.same({ "p1" }, ids(g:query { type = "person", name = "Ada" }))
      assert.same({ "p1" }, ids(g:query { properties = { born = { ["$gt"] = 1800 } } }))
      assert.same({ "p2" }, ids(g:query { type = "person", properties = { born = 1791 } }))
      assert.same({ "m1" }, ids(g:query { limit = 1 }))
      -- every version valid some time in [150, 250]: Ada's two, Charles, the engine
      local all = g:query { valid = { 150, 250 } }
      assert.same({ "m1", "p1", "p1", "p2" }, ids(all))
      assert.same({ 1815, 1816 }, { all[2].properties.born, all[3].properties.born })
      assert.same({ "p1" }, ids(g:query { valid = { nil, 150 }, properties = { born = 1815 } }))
      assert.same({}, ids(g:query { valid = { nil, 50 } }))
      -- recorded over all time: also the superseded version of Ada
      assert.equal(5, #g:query { valid = { nil, nil }, recorded = { nil, nil } })
      assert.equal(4, #g:query { valid = { nil, nil } })
    end)

    it("purges superseded versions before a time, keeping current ones", function()
      g:add_entity { id = "e", type = "t", name = "v1" }
      g:update_entity("e", { a = 1 })
      g:update_entity("e", { a = 2 })
      local st = g:stats()
      assert.equal(5, st.entity_versions)
      local cut = g:get_entity("e").recorded_at + 1
      assert.equal(2, g:purge_before(cut))
      assert.equal(3, g:stats().entity_versions)
      assert.equal(2, g:get_entity("e").properties.a)
      assert.equal(0, g:purge_before(cut))
    end)

    it("refuses bad arguments naming them, writing nothing", function()
      argerror_of("'type' is required", g.add_entity, g, { name = "x" })
      argerror_of("'name' is required", g.add_entity, g, { type = "x" })
      argerror_of("properties", g.add_entity, g, { type = "t", name = "n", properties = "x" })
      argerror_of("properties", g.add_entity, g, { type = "t", name = "n", properties = { 1, 2 } })
      argerror_of("valid_from", g.add_entity, g, { type = "t", name = "n", valid_from = 0 / 0 })
      argerror_of("colour", g.add_entity, g, { type = "t", name = "n", colour = 1 })
      argerror_of("id", g.add_entity, g, { id = "", type = "t", name = "n" })
      argerror_of("id", g.get_entity, g, 42)
      argerror_of("at", g.get_entity, g, "e", { at = "now" })
      argerror_of("changes", g.update_entity, g, "e", "x")
      argerror_of("direction", g.relationships, g, "e", { direction = "up" })
      argerror_of("depth", g.traverse, g, "e", { depth = 0 })
      argerror_of("depth", g.traverse, g, "e", { depth = 33 })
      argerror_of("valid", g.query, g, { valid = 5 })
      argerror_of("from is after to", g.query, g, { valid = { 5, 1 } })
      argerror_of("properties", g.query, g, { properties = { a = { ["$bad"] = 1 } } })
      argerror_of("limit", g.query, g, { limit = 0 })
      argerror_of("'to' is required", g.add_relationship, g, { from = "a", type = "x" })
      assert.equal(0, g:stats().entity_versions)
    end)

    it("joins the store's transactions: a rollback undoes graph, KV and the rest", function()
      g:add_entity { id = "kept", type = "t", name = "K" }
      local ok = pcall(db.transaction, db, function()
        db:set("k", "v")
        g:add_entity { id = "new", type = "t", name = "N" }
        g:update_entity("kept", { x = 1 })
        g:add_relationship { from = "kept", to = "new", type = "r" }
        assert.equal(1, #g:traverse("kept")) -- its own writes, seen inside
        error("boom")
      end)
      assert.is_false(ok)
      assert.is_nil(db:get("k"))
      assert.is_nil(g:get_entity("new"))
      assert.same({}, g:get_entity("kept").properties)
      assert.same({ entity_versions = 1, relationship_versions = 0 }, g:stats())
    end)

    if backend.shared then
      it("is bound to the store's tenant", function()
        build_walk(g)
        local other = backend.open({ tenant = helpers.unique_tenant("gr_other") }, backend)
        local og = other:graph()
        assert.is_nil(og:get_entity("a"))
        assert.same({}, og:traverse("a", { depth = 3 }))
        assert.same({}, og:query {})
        code_of("not_found", og.add_relationship, og, { from = "a", to = "b", type = "x" })
        og:add_entity { id = "a", type = "t", name = "mine" }
        assert.equal("A", g:get_entity("a").name)
        assert.equal(0, og:purge_before(1e12))
        other:close()
        local same = backend.open({ tenant = db:tenant() }, backend)
        assert.same({ "b", "c" }, ids(same:graph():traverse("a")))
        same:close()
      end)
    end
  end)
end

for _, run in ipairs(helpers.runs(it)) do
  for _, backend in ipairs(helpers.backends()) do contract(backend, run.it, run.name) end
end

describe("graph in a SQLite file", function()
  local path, db

  local function sqlite3(sql)
    local f = assert(io.popen("sqlite3 -batch -bail " .. sh_quote(path) .. " " .. sh_quote(sql)
                              .. " 2>&1"))
    local out = f:read("a")
    assert(f:close(), "sqlite3 failed: " .. out)
    return (out:gsub("\n$", ""))
  end

  before_each(function()
    path = helpers.tmpname(".db")
    db = storage.open { backend = "sqlite", path = path, tenant = "acme" }
    build_walk(db:graph())
  end)

  after_each(function()
    db:close()
    helpers.remove_db(path)
  end)

  it("keeps versions as rows sqlite3 reads, open ends as 2^63 - 1", function()
    db:graph():update_entity("a", { k = "v" }, { valid_from = 10 })
    assert.equal("a|A|{}|0|9223372036854775807|1\na|A|{}|0|10000000|9223372036854775807\n"
                 .. "a|A|{\"k\":\"v\"}|10000000|9223372036854775807|9223372036854775807",
                 sqlite3("SELECT entity_id, name, properties, valid_time_start, valid_time_end,"
                         .. " CASE WHEN transaction_time_end = 9223372036854775807"
                         .. " THEN transaction_time_end ELSE 1 END FROM entities"
                         .. " WHERE entity_id = 'a' ORDER BY transaction_time_start,"
                         .. " valid_time_start"))
    assert.equal("d|e|y", sqlite3("SELECT source_entity_id, target_entity_id,"
                                   .. " relationship_type FROM relationships WHERE"
                                   .. " relationship_id = 'de'"))
  end)

  it("runs get_entity{at=} and each hop of traverse through indexes", function()
    -- the statements get_entity and traverse run (their texts, the
    -- parameters inlined; + keeps a time index out, graph.c says why)
    local get = sqlite3("EXPLAIN QUERY PLAN SELECT * FROM entities e WHERE e.tenant_id = 'acme'"
                        .. " AND e.entity_id = 'a' AND +e.valid_time_start <= 3e15"
                        .. " AND 3e15 < +e.valid_time_end AND +e.transaction_time_start <= 3e15"
                        .. " AND 3e15 < +e.transaction_time_end"
                        .. " ORDER BY e.transaction_time_start DESC LIMIT 1")
    assert.matches("SEARCH e USING INDEX entities_version (tenant_id=? AND entity_id=?", get, 1,
                   true)
    local walk = [[WITH RECURSIVE walk(id, depth, parent) AS (SELECT 'a', 0, NULL UNION
      SELECT r.target_entity_id, w.depth + 1, w.id FROM walk w JOIN relationships r
      INDEXED BY relationships_from ON r.tenant_id = 'acme' AND r.source_entity_id = w.id
      WHERE w.depth < 3 AND +r.valid_time_start <= 3e15 AND 3e15 < +r.valid_time_end
      AND +r.transaction_time_start <= 3e15 AND 3e15 < +r.transaction_time_end)
      SELECT id, min(depth) FROM walk GROUP BY id]]
    local plan = sqlite3("EXPLAIN QUERY PLAN " .. walk)
    assert.matches("SEARCH r USING COVERING INDEX relationships_from (tenant_id=? AND "
                   .. "source_entity_id=?)", plan, 1, true)
    assert.not_matches("SCAN r", plan, 1, true)
    assert.equal("a|0\nb|1\nc|1\nd|2\ne|3", sqlite3(walk .. " ORDER BY 2, 1"))
  end)
end)

describe("graph in PostgreSQL", function()
  local SCHEMA = "llmspell_grspec"
  local READER = "llmspell_grspec_reader" -- NOLOGIN, no BYPASSRLS
  local acme, globex

  local function open(tenant)
    return storage.open { backend = "postgres", url = helpers.pg_url(), schema = SCHEMA,
                          tenant = tenant }
  end

  setup(function()
    pg.psql("SET client_min_messages = warning; DROP SCHEMA IF EXISTS " .. SCHEMA
            .. " CASCADE; DROP ROLE IF EXISTS " .. READER .. "; CREATE ROLE " .. READER
            .. " NOLOGIN NOSUPERUSER NOBYPASSRLS;")
    open("acme"):close() -- creates the schema
    pg.psql("GRANT USAGE ON SCHEMA " .. SCHEMA .. " TO " .. READER .. "; GRANT SELECT ON "
            .. SCHEMA .. ".entities, " .. SCHEMA .. ".relationships TO " .. READER .. ";")
  end)

  teardown(function()
    pg.psql("SET client_min_messages = warning; DROP SCHEMA IF EXISTS " .. SCHEMA
            .. " CASCADE; DROP ROLE IF EXISTS " .. READER .. ";")
  end)

  before_each(function()
    acme, globex = open("acme"), open("globex")
    build_walk(acme:graph())
    globex:graph():add_entity { id = "a", type = "node", name = "globex's" }
  end)

  after_each(function()
    for _, db in ipairs { acme, globex } do db:close() end
    pg.psql("TRUNCATE " .. SCHEMA .. ".entities, " .. SCHEMA .. ".relationships")
  end)

  it("keeps each tenant's versions from a role without BYPASSRLS, in raw SQL", function()
    local as = "SET ROLE " .. READER .. ";\n"
    for _, t in ipairs { "entities", "relationships" } do
      local q = "SELECT count(*) FROM " .. SCHEMA .. "." .. t .. ";"
      assert.equal("0", pg.psql1(as .. q))
      assert.equal(t == "entities" and "7" or "8", pg.psql1(as
        .. "SELECT set_config('app.current_tenant_id', 'acme', false);\n" .. q))
      assert.equal(t == "entities" and "1" or "0", pg.psql1(as
        .. "SELECT set_config('app.current_tenant_id', 'globex', false);\n" .. q))
      assert.equal("t|t", pg.psql1("SELECT relrowsecurity, relforcerowsecurity FROM pg_class"
        .. " WHERE oid = '" .. SCHEMA .. "." .. t .. "'::regclass"))
    end
  end)

  it("stores open ends as 'infinity' and properties as jsonb", function()
    acme:graph():update_entity("a", { k = 1 }, { valid_from = 10 })
    assert.equal("infinity|infinity|jsonb|{\"k\": 1}", pg.psql1(
      "SELECT valid_time_end, transaction_time_end, pg_typeof(properties), properties FROM "
      .. SCHEMA .. ".entities WHERE tenant_id = 'acme' AND entity_id = 'a'"
      .. " AND valid_time_start > 'epoch'"))
  end)

  it("runs get_entity{at=} and each hop of traverse through indexes", function()
    -- a graph of some size (the planner weighs its statistics): 20,000
    -- relationships over 20,000 entities of another tenant
    pg.psql("INSERT INTO " .. SCHEMA .. ".entities SELECT 'other', 'n' || i, 'node', 'N', '{}',"
            .. " 'epoch', 'infinity', now(), 'infinity', now() FROM generate_series(1, 20000) i;"
            .. "INSERT INTO " .. SCHEMA .. ".relationships SELECT 'other', 'r' || i,"
            .. " 'n' || (i % 2000), 'n' || ((i * 7) % 2000), 'x', '{}', 'epoch', 'infinity',"
            .. " now(), 'infinity', now() FROM generate_series(1, 20000) i;"
            .. " ANALYZE " .. SCHEMA .. ".relationships; ANALYZE " .. SCHEMA .. ".entities;")
    local function plan(sql)
      return table.concat(pg.psql("EXPLAIN " .. sql), "\n")
    end
    local get = plan("SELECT * FROM " .. SCHEMA .. ".entities e WHERE e.tenant_id = 'acme'"
                     .. " AND e.entity_id = 'a' AND e.valid_time_start <= now()"
                     .. " AND now() < e.valid_time_end AND e.transaction_time_start <= now()"
                     .. " AND now() < e.transaction_time_end"
                     .. " ORDER BY e.transaction_time_start DESC LIMIT 1")
    assert.matches("Index Scan[^\n]* using entities_pkey", get)
    local walk = plan("WITH RECURSIVE walk(id, depth, parent) AS (SELECT 'a'::text COLLATE \"C\","
      .. " 0, NULL::text COLLATE \"C\" UNION SELECT r.target_entity_id, w.depth + 1, w.id"
      .. " FROM walk w JOIN " .. SCHEMA
      .. ".relationships r ON r.tenant_id = 'acme' AND r.source_entity_id = w.id"
      .. " WHERE w.depth < 3 AND r.valid_time_start <= now() AND now() < r.valid_time_end"
      .. " AND r.transaction_time_start <= now() AND now() < r.transaction_time_end)"
      .. " SELECT id, min(depth) FROM walk GROUP BY id")
    assert.matches("Recursive Union", walk, 1, true)
    assert.matches("Index[^\n]* Scan[^\n]* using relationships_from_idx", walk)
    assert.not_matches("Seq Scan on relationships", walk, 1, true)
  end)
end)

-- The "knowledge_graph" section: every version, rs-llmspell's fields.
describe("the knowledge_graph section", function()
  local tenant, path, stores

  local function open(kind)
    local db
    if kind == "memory" then
      db = storage.open { backend = "memory", tenant = tenant }
    elseif kind == "sqlite" then
      db = storage.open { backend = "sqlite", path = path, tenant = tenant }
    else
      db = storage.open { backend = "postgres", url = helpers.pg_url(), tenant = tenant }
    end
    stores[#stores + 1] = db
    return db
  end

  local function section(db)
    return storage.json_decode(storage.exporter(db):to_string()).data.knowledge_graph
  end

  before_each(function()
    tenant = helpers.unique_tenant("grx")
    path = helpers.tmpname(".db")
    stores = {}
  end)

  after_each(function()
    for _, db in ipairs(stores) do
      if pcall(db.tenant, db) then
        db:graph():purge_before(1e12)
        db:close()
      end
    end
    helpers.remove_db(path)
  end)

  it("round-trips memory -> SQLite -> PostgreSQL -> memory, every version", function()
    local mem = open("memory")
    local g = mem:graph()
    for i = 1, 150 do
      g:add_entity { id = string.format("e%03d", i), type = "t" .. (i % 3), name = "N\u{e9}" .. i,
                     properties = { i = i, f = i / 4 }, valid_from = i }
    end
    for i = 1, 150, 2 do g:update_entity(string.format("e%03d", i), { odd = true }) end
    for i = 1, 149 do
      g:add_relationship { id = "r" .. i, from = string.format("e%03d", i),
                           to = string.format("e%03d", i + 1), type = "next",
                           properties = { w = i }, valid_from = 200 }
    end
    g:delete_entity("e150")
    local want = section(mem)
    assert.is_true(#want.entities > 256) -- more than one dump page
    local e = want.entities[1]
    local fields = {}
    for k in pairs(e) do fields[#fields + 1] = k end
    table.sort(fields)
    assert.same({ "created_at", "entity_id", "entity_type", "name", "properties", "tenant_id",
                  "transaction_time_end", "transaction_time_start", "valid_time_end",
                  "valid_time_start" }, fields)
    fields = {}
    for k in pairs(want.relationships[1]) do fields[#fields + 1] = k end
    table.sort(fields)
    assert.same({ "created_at", "properties", "relationship_id", "relationship_type",
                  "source_entity_id", "target_entity_id", "tenant_id", "transaction_time_end",
                  "transaction_time_start", "valid_time_end", "valid_time_start" }, fields)
    assert.equal(9223372036854775807, want.relationships[1].valid_time_end)
    local doc = storage.exporter(mem):to_string()
    for _, kind in ipairs { "sqlite", "postgres", "memory" } do
      local db = open(kind)
      local st = storage.importer(db):from_string(doc)
      assert.equal(#want.entities, st.entities)
      assert.equal(#want.relationships, st.relationships)
      assert.same(want, section(db))
      assert.same({ "e002", "e003" }, ids(db:graph():traverse("e001", { depth = 2 })))
      assert.equal(1.25, db:graph():get_entity("e005", { at = 100 }).properties.f)
      doc = storage.exporter(db):to_string()
    end
    assert.same(want, section(stores[#stores]))
  end)

  it("imports rs-llmspell's records, restoring every version, on every backend", function()
    local doc = [[{"version":"1.0","data":{"knowledge_graph":{"entities":[
      {"entity_id":"e-1","tenant_id":"rs","entity_type":"person","name":"Ada",
       "properties":{"born":1815},"valid_time_start":1000000000,
       "valid_time_end":2000000000,"transaction_time_start":1000000000,
       "transaction_time_end":9223372036854775807,"created_at":1000000000},
      {"entity_id":"e-1","tenant_id":"rs","entity_type":"person","name":"Ada L.",
       "properties":{"born":1815,"title":"Countess"},"valid_time_start":2000000000,
       "valid_time_end":9223372036854775807,"transaction_time_start":2000000000,
       "transaction_time_end":9223372036854775807,"created_at":2000000000},
      {"entity_id":"e-2","tenant_id":"rs","entity_type":"thing","name":"Engine",
       "properties":{},"valid_time_start":1000000000,"valid_time_end":9999999999,
       "transaction_time_start":1000000000,"transaction_time_end":null,
       "created_at":1000000000}],
     "relationships":[{"relationship_id":"r-1","tenant_id":"rs","source_entity_id":"e-1",
       "target_entity_id":"e-2","relationship_type":"designed","properties":{"year":1837},
       "valid_time_start":1000000000,"valid_time_end":9223372036854775807,
       "transaction_time_start":1000000000,"transaction_time_end":9223372036854775807,
       "created_at":1000000000}]}}}]]
    for _, kind in ipairs { "memory", "sqlite", "postgres" } do
      local db = open(kind)
      local st = storage.importer(db):from_string(doc)
      assert.equal(3, st.entities)
      assert.equal(1, st.relationships)
      local g = db:graph()
      assert.equal("Ada", g:get_entity("e-1", { at = 1500 }).name)
      assert.equal("Countess", g:get_entity("e-1").properties.title)
      assert.equal(math.huge, g:get_entity("e-2").valid_to)
      assert.same({ "e-2" }, ids(g:traverse("e-1")))
      local back = section(db)
      assert.equal(3, #back.entities)
      assert.equal(tenant, back.entities[1].tenant_id)
      assert.equal(9223372036854775807, back.entities[3].valid_time_end)
      assert.equal(9223372036854775807, back.entities[3].transaction_time_end)
      assert.same({ year = 1837 }, back.relationships[1].properties)
      -- the same key again: replaced, skipped, or refused
      assert.equal(0, storage.importer(db):from_string(doc, { on_conflict = "skip" }).entities)
      code_of("conflict", function()
        storage.importer(db):from_string(doc, { on_conflict = "error" })
      end)
      g:purge_before(1e12)
    end
  end)

  it("refuses a bad record naming it and the field, writing nothing, dry run too", function()
    local db = open("sqlite")
    local function doc(entity)
      return '{"version":"1.0","data":{"knowledge_graph":{"entities":[{"entity_id":"ok",'
        .. '"entity_type":"t","name":"n"},' .. entity .. '],"relationships":[]}}}'
    end
    for _, case in ipairs {
      { '{"entity_type":"t","name":"n"}', "entity_id is missing" },
      { '{"entity_id":"x","name":"n"}', "entity_type is missing" },
      { '{"entity_id":"x","entity_type":"t","name":"n","properties":[1]}', "properties" },
      { '{"entity_id":"x","entity_type":"t","name":"n","valid_time_start":"y"}',
        "valid_time_start" },
      { '{"entity_id":"x","entity_type":"t","name":"n","valid_time_start":5,'
        .. '"valid_time_end":4}', "after valid_time_end" },
    } do
      for _, dry in ipairs { true, false } do
        local err = code_of("format", function()
          storage.importer(db):from_string(doc(case[1]), { dry_run = dry })
        end)
        assert.matches(case[2], err.message, 1, true)
        assert.matches("knowledge_graph[1]", err.message, 1, true)
      end
    end
    assert.equal(0, db:graph():stats().entity_versions)
  end)
end)
