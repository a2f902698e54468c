--- col:scan on every backend: 50,000 entries scanned by id and by
-- event_time, with scope and filter variants, against a Lua reference
-- (what was written, sorted in Lua); resuming, limits, closing, writes
-- during a scan, bad input; and the plans SQLite and PostgreSQL use.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"
local pg = require "spec.support.pg"

local N = 50000
local SCOPES = { "s1", "s2", "s3", "s4", "s5" }
local T0 = 1700000000

-- Deterministic PRNG, so failures replay.
local function prng(seed)
  local s = seed
  return function(n)
    s = (s * 1103515245 + 12345) % 2147483648
    return s % n + 1
  end
end

-- The entries written: ids in no particular order, a seventh without an
-- event_time, ties in event_time (so the id breaks them), a few expired.
local function make_entries()
  local rand, out = prng(13), {}
  for i = 1, N do
    local e = { id = string.format("%05x-%d", rand(1048575), i), vector = { i % 7, 1, i % 3, 2 },
                scope = SCOPES[rand(#SCOPES)],
                metadata = { n = i, cat = "c" .. (i % 4), flag = i % 2 == 0 } }
    if i % 7 ~= 0 then e.event_time = T0 + rand(20000) end
    if i % 97 == 0 then e.expires_at = os.time() - 60 end
    out[i] = e
  end
  return out
end

local FILTERS = {
  { spec = { cat = "c1" }, ref = function(m) return m.cat == "c1" end },
  { spec = { n = { ["$gte"] = 1000, ["$lt"] = 30000 }, flag = true },
    ref = function(m) return m.n >= 1000 and m.n < 30000 and m.flag end },
}

local function by_id(a, b) return a.id < b.id end
local function by_time(a, b)
  if (a.event_time ~= nil) ~= (b.event_time ~= nil) then return a.event_time ~= nil end
  if a.event_time and a.event_time ~= b.event_time then return a.event_time < b.event_time end
  return a.id < b.id
end

-- The reference: the live entries that pass, sorted in Lua.
local function reference(live, scope, ref, order)
  local out = {}
  for _, e in ipairs(live) do
    if (not scope or e.scope == scope) and (not ref or ref(e.metadata)) then out[#out + 1] = e end
  end
  table.sort(out, order == "event_time" and by_time or by_id)
  return out
end

local function scanned(col, opts)
  local out = {}
  for e in col:scan(opts) do out[#out + 1] = e end
  return out
end

-- The two lists hold the same entries in the same order (ids and times).
local function same_order(want, got, ctx)
  assert.equal(#want, #got, ctx)
  for i = 1, #want do
    if want[i].id ~= got[i].id or want[i].event_time ~= got[i].event_time then
      error(("%s: entry %d: want %s@%s, got %s@%s"):format(ctx, i, want[i].id,
            tostring(want[i].event_time), got[i].id, tostring(got[i].event_time)), 2)
    end
  end
end

local function add_all(col, entries)
  for i = 1, #entries, 1000 do
    col:add(table.move(entries, i, math.min(i + 999, #entries), 1, {}))
  end
end

for _, backend in ipairs(helpers.backends()) do
  describe("col:scan on " .. backend.name, function()
    local db, col, live

    setup(function()
      if backend.setup then backend:setup() end
      db = backend.open(nil, backend)
      col = db:create_collection("scan50k", { dimension = 4 })
      local entries = make_entries()
      add_all(col, entries)
      -- an upsert moves an entry in time, a delete takes one out
      entries[5].event_time = T0 - 1
      col:upsert { entries[5] }
      col:delete { entries[6].id }
      live = {}
      for i, e in ipairs(entries) do
        if i ~= 6 and not e.expires_at then live[#live + 1] = e end
      end
    end)

    teardown(function()
      if db then
        db:drop_collection("scan50k")
        db:close()
      end
      if backend.teardown then backend:teardown() end
    end)

    for _, order in ipairs { "id", "event_time" } do
      it("gives every live entry by " .. order .. ", as the Lua reference does", function()
        local got = scanned(col, { order = order })
        same_order(reference(live, nil, nil, order), got, order)
        -- entries carry what col:get has
        local e = col:get(got[1].id)
        assert.same({ e.id, e.scope, e.metadata, e.created_at, e.event_time },
                    { got[1].id, got[1].scope, got[1].metadata, got[1].created_at,
                      got[1].event_time })
        assert.is_nil(got[1].vector)
      end)

      it("matches the reference by " .. order .. " within a scope and with filters", function()
        for _, scope in ipairs { "s2", "nope" } do
          same_order(reference(live, scope, nil, order),
                     scanned(col, { order = order, scope = scope }), order .. " " .. scope)
        end
        for i, f in ipairs(FILTERS) do
          same_order(reference(live, nil, f.ref, order),
                     scanned(col, { order = order, filter = f.spec }), order .. " filter " .. i)
          same_order(reference(live, "s4", f.ref, order),
                     scanned(col, { order = order, scope = "s4", filter = f.spec }),
                     order .. " s4 filter " .. i)
        end
      end)

      it("resumes after an entry and stops at a limit (by " .. order .. ")", function()
        local want = reference(live, "s1", FILTERS[1].ref, order)
        local got, after = {}, nil
        repeat
          local page = scanned(col, { order = order, scope = "s1", filter = FILTERS[1].spec,
                                      limit = 777, after = after })
          assert.is_true(#page <= 777)
          table.move(page, 1, #page, #got + 1, got)
          after = page[#page]
          if order == "id" and after then after = after.id end
        until #page < 777
        same_order(want, got, order .. " in pages")
      end)
    end

    it("resumes after { event_time, id } and among the untimed with no event_time", function()
      local all = reference(live, nil, nil, "event_time")
      local k = 12345
      same_order({ table.unpack(all, k + 1, k + 5) },
                 scanned(col, { order = "event_time", limit = 5,
                                after = { all[k].event_time, all[k].id } }), "positional")
      local untimed
      for i, e in ipairs(all) do
        if not e.event_time then untimed = i break end
      end
      same_order({ table.unpack(all, untimed + 1, untimed + 3) },
                 scanned(col, { order = "event_time", limit = 3,
                                after = { id = all[untimed].id } }), "untimed")
    end)

    it("hands out vectors when asked", function()
      local e = scanned(col, { limit = 1, include_vector = true, include_metadata = false })[1]
      assert.same(col:get(e.id).vector, e.vector)
      assert.is_nil(e.metadata)
    end)

    it("closes on break, and refuses to go on once closed", function()
      local seen, kept = 0, nil
      for e, _ in col:scan() do
        seen = seen + 1
        if seen == 3 then kept = e break end
      end
      assert.equal(3, seen)
      assert.is_table(kept)
      local iter, s = col:scan()
      assert.matches("CollectionScan %(open%)", tostring(s))
      assert.is_table(iter(s))
      s:close()
      assert.matches("closed", tostring(s))
      assert.equal("closed", helpers.error_of(iter, s).code)
      s:close() -- idempotent
    end)

    it("takes writes made during the loop in its stride", function()
      local c = db:create_collection("scan_writes", { dimension = 2 })
      local rows = {}
      for i = 1, 600 do rows[i] = { id = string.format("w%04d", i), vector = { 1, i } } end
      c:add(rows)
      local got = {}
      for e in c:scan() do
        got[#got + 1] = e.id
        -- past the page being read (256 rows): the next pages see both
        if e.id == "w0100" then c:delete { "w0590" } c:add { { id = "w9999", vector = { 0, 1 } } } end
      end
      assert.equal(600, #got) -- one deleted ahead, one added ahead
      assert.equal("w9999", got[#got])
      db:drop_collection("scan_writes")
    end)

    it("fails with not_found when the collection is dropped under it", function()
      local c = db:create_collection("scan_drop", { dimension = 2 })
      local rows = {}
      for i = 1, 600 do rows[i] = { id = string.format("d%04d", i), vector = { 1, i } } end
      c:add(rows)
      local err = helpers.error_of(function()
        for e in c:scan() do
          if e.id == "d0001" then db:drop_collection("scan_drop") end
        end
      end)
      assert.is_truthy(err.code == "not_found" or err.code == "closed", err.code)
    end)

    it("refuses bad options, naming them", function()
      local function bad(opts, pattern)
        local err = helpers.error_of(col.scan, col, opts)
        assert.matches(pattern, tostring(err.message or err), 1, true)
      end
      bad({ order = "score" }, "option 'order'")
      bad({ limit = 0 }, "limit")
      bad({ after = 3 }, "option 'after'")
      bad({ order = "event_time", after = "x" }, "option 'after'")
      bad({ order = "event_time", after = { event_time = "soon", id = "x" } }, "event_time")
      bad({ scope = 5 }, "option 'scope'")
      bad({ filter = { n = { ["$what"] = 1 } } }, "$what")
      bad({ filter = "cat" }, "option 'filter'")
      bad({ sort = "id" }, "sort")
      bad(5, "table expected")
    end)
  end)
end

describe("col:scan plans", function()
  local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

  it("reads one index range on SQLite, with no sort", function()
    local path = helpers.tmpname(".db")
    local db = storage.open { backend = "sqlite", path = path }
    local col = db:create_collection("plans", { dimension = 2 })
    local rows = {}
    for i = 1, 2000 do
      rows[i] = { id = "p" .. i, vector = { 1, i }, scope = "s" .. i % 3, event_time = i }
    end
    col:add(rows)
    db:close()
    local function plan(sql)
      local f = assert(io.popen("sqlite3 -batch -bail " .. sh_quote(path) .. " "
                                .. sh_quote("ANALYZE; EXPLAIN QUERY PLAN " .. sql) .. " 2>&1"))
      local out = f:read("a")
      assert(f:close(), out)
      assert.not_matches("TEMP B-TREE", out, 1, true)
      return out
    end
    local head = "SELECT id, scope, vector, metadata, created_at, updated_at, event_time,"
                 .. " expires_at, seq, crc FROM vector_embeddings "
    local live = " AND (expires_at IS NULL OR expires_at > 0) AND tenant_id = 'default'"
    assert.matches("USING INDEX sqlite_autoindex_vector_embeddings_1 (collection_id=? AND id>?)",
                   plan(head .. "WHERE collection_id = 1 AND id > 'p1'" .. live
                        .. " ORDER BY id LIMIT 256"), 1, true)
    assert.matches("USING INDEX vector_embeddings_scope_id (collection_id=? AND scope=? AND id>?)",
                   plan(head .. "INDEXED BY vector_embeddings_scope_id WHERE collection_id = 1"
                        .. " AND scope = 's1' AND id > ''" .. live .. " ORDER BY id LIMIT 256"),
                   1, true)
    assert.matches("USING INDEX vector_embeddings_time (collection_id=? AND (event_time,id)>(?,?))",
                   plan(head .. "INDEXED BY vector_embeddings_time WHERE collection_id = 1"
                        .. " AND event_time IS NOT NULL AND (event_time, id) > (5, 'p5')" .. live
                        .. " ORDER BY event_time, id LIMIT 256"), 1, true)
    assert.matches("USING INDEX vector_embeddings_scope_time (collection_id=? AND scope=? AND "
                   .. "(event_time,id)>(?,?))",
                   plan(head .. "INDEXED BY vector_embeddings_scope_time WHERE collection_id = 1"
                        .. " AND scope = 's2' AND event_time IS NOT NULL"
                        .. " AND (event_time, id) > (5, 'p5')" .. live
                        .. " ORDER BY event_time, id LIMIT 256"), 1, true)
    assert.matches("USING INDEX vector_embeddings_time (collection_id=? AND event_time=? AND id>?)",
                   plan(head .. "INDEXED BY vector_embeddings_time WHERE collection_id = 1"
                        .. " AND event_time IS NULL AND id > 'p1'" .. live
                        .. " ORDER BY id LIMIT 256"), 1, true)
    helpers.remove_db(path)
  end)

  it("reads one index range on PostgreSQL, with no sort", function()
    local tenant = helpers.unique_tenant("scanplan")
    local db = storage.open { backend = "postgres", url = helpers.pg_url(), tenant = tenant }
    local col = db:create_collection("plans", { dimension = 2 })
    for b = 0, 9 do
      local rows = {}
      for i = 1, 1000 do
        local n = b * 1000 + i
        rows[i] = { id = "p" .. n, vector = { 1, n }, scope = "s" .. n % 3, event_time = n }
      end
      col:add(rows)
    end
    local id = db:list_collections("plans")[1].name and nil
    pg.psql("ANALYZE llmspell.vectors")
    local cid = pg.psql1("SELECT id FROM llmspell.collections WHERE tenant_id = '" .. tenant
                         .. "' AND name = 'plans'")
    local head = "SELECT * FROM llmspell.vectors x WHERE x.collection_id = " .. cid
                 .. " AND x.tenant_id = '" .. tenant .. "' AND (x.expires_at IS NULL"
                 .. " OR x.expires_at > now())"
    local function plan(sql)
      local out = table.concat(pg.psql("EXPLAIN " .. sql), "\n")
      assert.not_matches("Sort", out, 1, true)
      return out
    end
    assert.matches("Index Scan using vectors_pkey",
                   plan(head .. " AND x.id > 'p1' ORDER BY x.id LIMIT 256"), 1, true)
    assert.matches("Index Scan using vectors_scope_id_idx",
                   plan(head .. " AND x.scope = 's1' AND x.id > '' ORDER BY x.id LIMIT 256"), 1,
                   true)
    assert.matches("Index Scan using vectors_time_idx",
                   plan(head .. " AND x.event_time IS NOT NULL AND (x.event_time, x.id) >"
                        .. " (coalesce(NULL::timestamptz, '-infinity'), '') ORDER BY"
                        .. " x.event_time, x.id LIMIT 256"), 1, true)
    assert.matches("Index Scan using vectors_scope_time_idx",
                   plan(head .. " AND x.scope = 's2' AND x.event_time IS NOT NULL AND"
                        .. " (x.event_time, x.id) > (now(), 'p5') ORDER BY x.event_time, x.id"
                        .. " LIMIT 256"), 1, true)
    assert.matches("Index Scan using vectors_time_idx",
                   plan(head .. " AND x.event_time IS NULL AND x.id > 'p1' ORDER BY"
                        .. " x.event_time, x.id LIMIT 256"), 1, true)
    assert.is_nil(id)
    db:drop_collection("plans")
    db:close()
  end)
end)
