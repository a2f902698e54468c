--- The components together (issue 10): one transaction over KV, vectors,
-- sessions, artifacts, agent states and workflows; export/import of their
-- sections between every pair of backends, record for record; an
-- rs-llmspell-shaped file; `info` and `migrate` carrying them.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

local BACKENDS = helpers.backends()

local function by_name(name)
  for _, b in ipairs(BACKENDS) do
    if b.name == name then return b end
  end
end

--- A fresh store of backend b (its setup run), and its teardown.
local function fresh(b, opts)
  local o = {}
  for k, v in pairs(b) do o[k] = v end
  if o.setup then o:setup() end
  return o.open(opts, o), function() if o.teardown then o:teardown() end end
end

local BIG = string.rep("compressible text ", 2000) -- 36 KB: stored lz4-compressed
local BINARY = "\0\1\2\255\254 bytes"

--- Fills db with a bit of everything the five components hold.
local function fill(db)
  local s, a, g, w = db:sessions(), db:artifacts(), db:agent_states(), db:workflows()
  s:create("s1", { data = { user = "alice", n = 1, f = 0.5, list = storage.array { 1, 2 } } })
  s:create("s2", { status = "completed", ttl = 3600 })
  a:put("s1", BIG, { name = "notes.txt", type = "document", mime_type = "text/plain",
                     tags = { "x", "y" }, metadata = { lang = "en" } })
  a:put("s1", BINARY, { name = "blob.bin" })
  a:put("s2", BINARY, { name = "again.bin", type = "data" }) -- deduplicated
  g:save("agent-1", { memory = { "a", "b" }, step = 3 }, { agent_type = "planner" })
  g:save("agent-1", { memory = { "a", "b", "c" }, step = 4 }, { agent_type = "planner" })
  g:save("agent-2", "plain text state", { agent_type = "writer" })
  w:save("wf-1", { name = "ingest", data = { k = 1 } })
  w:set_status("wf-1", "running")
  w:set_status("wf-1", "completed")
  w:save("wf-2", { name = "pending one", current_step = 2 })
  local p = db:patterns()
  for _ = 1, 3 do p:record("nav", "home", "settings") end
  p:record("tool", "search", "")
  local kg = db:graph()
  kg:add_entity { id = "ada", type = "person", name = "Ada", properties = { born = 1815 },
                  valid_from = 100 }
  kg:add_entity { id = "engine", type = "machine", name = "Analytical Engine", valid_from = 100 }
  kg:update_entity("ada", { title = "Countess" }, { valid_from = 200 })
  kg:add_relationship { id = "wrote", from = "ada", to = "engine", type = "wrote_about",
                        properties = { year = 1843 }, valid_from = 300 }
  local h = db:hook_history()
  h:record { execution_id = "exec-1", hook_id = "audit", hook_type = "pre_agent",
             correlation_id = "corr-1", context = BIG, result = { Continue = true },
             duration_ms = 7, tags = { "x" }, retention_priority = 3,
             metadata = { n = 1, f = 0.5 }, timestamp = 1700000000.5 }
  h:record { execution_id = "exec-2", hook_id = "audit", hook_type = "post_agent",
             correlation_id = "corr-1", context = BINARY, triggering_component = "Agent",
             component_id = "agent-1", modified_operation = true }
  local e = db:events()
  e:append { type = "agent.start", data = { step = 1, big = 9007199254740993 },
             correlation_id = "run-1", timestamp = 1700000000.25 }
  e:append_batch {
    { id = "ev-2", type = "tool.call", correlation_id = "run-1", timestamp = 946684800 },
    { type = "agent.stop", language = "rust", timestamp = 3786912000, data = "done" },
  }
end

--- SHA-256 hex of s, by coreutils (what rs-llmspell computes too).
local function sha256(s)
  local path = helpers.tmpname(".bin")
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
  local p = assert(io.popen("sha256sum " .. path))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out:match("^%x+")
end

local SECTIONS = { "sessions", "artifacts", "agent_state", "workflow_states",
                   "procedural_memory", "knowledge_graph", "hook_history", "event_log" }

--- The component sections of an export, with tenant ids blanked (the
-- stores of a pair belong to different tenants on PostgreSQL).
local function sections_of(json)
  local doc = storage.json_decode(json)
  local out = {}
  local function strip(t)
    if type(t) ~= "table" then return t end
    local c = {}
    for k, v in pairs(t) do
      if k ~= "tenant_id" then c[k] = strip(v) end
    end
    return c
  end
  for _, name in ipairs(SECTIONS) do out[name] = strip(doc.data[name]) end
  return out
end

describe("components together", function()
  for _, b in ipairs(BACKENDS) do
    describe("on " .. b.name, function()
      local db, teardown
      before_each(function() db, teardown = fresh(b) end)
      after_each(function()
        db:close()
        teardown()
      end)

      it("are the same objects while referenced, and print what they are", function()
        for _, kind in ipairs { "sessions", "artifacts", "agent_states", "workflows", "patterns",
                                "graph", "hook_history", "events" } do
          local c = db[kind](db)
          assert.equal(c, db[kind](db))
          assert.matches(db:backend_type(), tostring(c), 1, true)
          assert.matches("0 rows", tostring(c), 1, true)
        end
      end)

      it("roll back together with KV and vectors in one transaction", function()
        local col = db:collection("docs", { dimension = 2, create = true })
        db:sessions():create("base")
        local err = helpers.error_of(db.transaction, db, function()
          db:set("k", "v")
          col:add { id = "v1", vector = { 1, 0 } }
          db:sessions():create("s-tx")
          db:artifacts():put("base", "content in tx")
          db:agent_states():save("a-tx", { x = 1 })
          db:workflows():save("w-tx", { name = "x" })
          db:patterns():record("tx", "k", "v")
          db:graph():add_entity { id = "tx", type = "t", name = "in tx" }
          db:hook_history():record { execution_id = "h-tx", hook_id = "h", hook_type = "t" }
          db:events():append { type = "tx.event" }
          db:events():append_batch { { type = "tx.a" }, { type = "tx.b" } }
          error({ code = "mine" })
        end)
        assert.equal("mine", err.code)
        assert.is_nil(db:get("k"))
        assert.equal(0, col:count())
        assert.is_nil(db:sessions():get("s-tx"))
        assert.same({}, db:artifacts():list("base"))
        assert.equal(0, db:sessions():get("base").artifact_count)
        assert.is_nil(db:agent_states():load("a-tx"))
        assert.is_nil(db:workflows():load("w-tx"))
        assert.equal(0, db:patterns():frequency("tx", "k", "v"))
        assert.is_nil(db:graph():get_entity("tx"))
        assert.is_nil(db:hook_history():get("h-tx"))
        assert.equal(0, db:events():count())
        -- the rolled-back sequences are handed out again: no gap
        assert.equal(1, db:events():append { type = "after.tx" })
        -- and a nested level rolls back alone
        db:transaction(function(tx)
          db:sessions():create("outer")
          pcall(tx.transaction, tx, function()
            db:sessions():create("inner")
            db:artifacts():put("outer", "inner bytes")
            error("undo the inner level")
          end)
        end)
        assert.is_table(db:sessions():get("outer"))
        assert.is_nil(db:sessions():get("inner"))
        assert.equal(0, db:sessions():get("outer").artifact_count)
        assert.equal(0, db:artifacts():stats().artifacts)
      end)

      it("are counted by db:stats() and by info", function()
        fill(db)
        local c = db:stats().components
        assert.same({ sessions = 2, artifacts = 3, artifact_content = 2, agent_state = 2,
                      workflow_states = 2, procedural_memory = 2, entities = 4,
                      relationships = 1, hook_history = 2, event_log = 3 }, c)
      end)

      it("pass db:check() when healthy", function()
        fill(db)
        assert.same({}, db:check())
      end)

      it("refuse use after the store closes", function()
        local s = db:sessions()
        db:close()
        local err = helpers.error_of(s.get, s, "x")
        assert.equal("closed", err.code)
      end)
    end)
  end

  describe("export and import", function()
    local NAMES = { "memory", "sqlite file", "postgres" }
    for _, from in ipairs(NAMES) do
      for _, to in ipairs(NAMES) do
        it("carry every record from " .. from .. " to " .. to, function()
          local src, t1 = fresh(by_name(from))
          local dst, t2 = fresh(by_name(to))
          finally(function()
            src:close()
            dst:close()
            t1()
            t2()
          end)
          fill(src)
          local json, st = storage.exporter(src):to_string()
          assert.equal(2, st.sessions)
          assert.equal(2, st.agent_states)
          assert.equal(2, st.workflow_states)
          assert.equal(3, st.artifacts)
          assert.equal(2, st.artifact_content)
          assert.equal(2, st.patterns)
          assert.equal(4, st.entities)
          assert.equal(1, st.relationships)
          assert.equal(2, st.hooks)
          assert.equal(3, st.events)
          local ist = storage.importer(dst):from_string(json)
          assert.equal(2, ist.sessions)
          assert.equal(3, ist.artifacts)
          assert.equal(2, ist.artifact_content)
          assert.equal(2, ist.patterns)
          assert.equal(4, ist.entities)
          assert.equal(1, ist.relationships)
          assert.equal(2, ist.hooks)
          assert.equal(3, ist.events)
          local back = storage.exporter(dst):to_string()
          assert.same(sections_of(json), sections_of(back))
          -- and the API reads what came in
          assert.equal(BIG, (dst:artifacts():get(dst:artifacts():list("s1")[1].artifact_id)))
          assert.equal("plain text state", (dst:agent_states():load("agent-2")))
          assert.equal(2, select(2, dst:agent_states():load("agent-1")).data_version)
          local wf = dst:workflows():load("wf-1")
          assert.equal("completed", wf.status)
          assert.is_number(wf.started_at)
          assert.equal(2, dst:sessions():get("s1").artifact_count)
          assert.equal(3, dst:patterns():frequency("nav", "home", "settings"))
          assert.equal("Countess", dst:graph():get_entity("ada").properties.title)
          assert.is_nil(dst:graph():get_entity("ada", { at = 150 }).properties.title)
          assert.same({ "engine" }, { dst:graph():traverse("ada")[1].entity.id })
          assert.equal(BIG, dst:hook_history():get("exec-1").context)
          assert.same({ "exec-2", "exec-1" }, (function()
            local out = {}
            for i, r in ipairs(dst:hook_history():by_correlation("corr-1")) do
              out[i] = r.execution_id
            end
            return out
          end)())
          local evs = dst:events():query { correlation_id = "run-1" }
          assert.same({ 1, 2 }, { evs[1].sequence, evs[2].sequence })
          assert.equal(9007199254740993, evs[1].data.big)
          assert.equal(1700000000.25, evs[1].timestamp)
          assert.equal(4, dst:events():append { type = "next" }) -- the counter carries on
          dst:events():cleanup_before(4e9)
          storage.importer(dst):from_string(json)
          -- importing again with on_conflict = "error" changes nothing
          local err = helpers.error_of(storage.importer(dst).from_string,
                                       storage.importer(dst), json, { on_conflict = "error" })
          assert.equal("conflict", err.code)
          assert.same(sections_of(back), sections_of(storage.exporter(dst):to_string()))
        end)
      end
    end

    it("read an rs-llmspell file's sections into the tables", function()
      local db, t = fresh(by_name("sqlite file"))
      finally(function()
        db:close()
        t()
      end)
      local hello = "hello artifact"
      local b64 = "aGVsbG8gYXJ0aWZhY3Q="
      local hash, state_sum = sha256(hello), sha256('{"k":[1,2]}')
      local doc = string.format([[{"version":"1.0","exported_at":"2025-01-01T00:00:00Z",
        "source_backend":"postgresql","migrations":[],"data":{
        "sessions":[{"id":"6f1c2b1e-0000-4000-8000-000000000001","tenant_id":"t",
          "session_id":"rs-s1","session_data":{"topic":"x"},"status":"active",
          "created_at":1700000000000000,"expires_at":null}],
        "artifacts":{"content":[{"tenant_id":"t","content_hash":"%s","data":"%s",
            "size_bytes":14,"is_compressed":false,"original_size_bytes":null,
            "reference_count":1,"created_at":1700000000000000,
            "last_accessed_at":1700000000000000}],
          "artifacts":[{"tenant_id":"t","artifact_id":"rs-s1:1:%s","session_id":"rs-s1",
            "sequence":1,"content_hash":"%s","metadata":{},"name":"a.txt",
            "artifact_type":"document","mime_type":"text/plain","size_bytes":14,
            "created_at":1700000000000000,"created_by":null,"version":1,
            "parent_artifact_id":null,"tags":[],"stored_at":1700000000000000,
            "updated_at":1700000000000000}]},
        "agent_state":[{"state_id":"6f1c2b1e-0000-4000-8000-000000000002","tenant_id":"t",
          "agent_id":"rs-agent","agent_type":"chat","state_data":{"k":[1,2]},
          "schema_version":1,"data_version":5,"checksum":"%s",
          "created_at":1700000000000000,"updated_at":1700000001000000}],
        "workflow_states":[{"tenant_id":"t","workflow_id":"rs-wf","workflow_name":"w",
          "state_data":{},"current_step":1,"status":"running",
          "started_at":1700000000000000,"completed_at":null,
          "last_updated":1700000000000000,"created_at":1700000000000000}],
        "knowledge_graph":{"entities":[{"entity_id":"rs-e","tenant_id":"t",
          "entity_type":"topic","name":"X","properties":{},
          "valid_time_start":1700000000000000,"valid_time_end":9223372036854775807,
          "transaction_time_start":1700000000000000,
          "transaction_time_end":9223372036854775807,"created_at":1700000000000000}],
          "relationships":[]},
        "rs_extension":{"note":"kept"}}}]], hash, b64, hash, hash,
        state_sum)
      -- a dry run checks the records as the import does, and writes nothing
      local bad = doc:gsub('"agent_id":"rs%-agent"', '"agent_id":""')
      local err = helpers.error_of(function()
        storage.importer(db):from_string(bad, { dry_run = true })
      end)
      assert.equal("format", err.code)
      assert.matches("agent_state[0]", err.message, 1, true)
      local dry = storage.importer(db):from_string(doc, { dry_run = true })
      assert.equal(1, dry.sessions)
      assert.is_nil(db:sessions():get("rs-s1"))
      local st = storage.importer(db):from_string(doc)
      assert.equal(1, st.sessions)
      assert.equal(1, st.artifacts)
      local s = db:sessions():get("rs-s1")
      assert.same({ topic = "x" }, s.data)
      assert.equal(1700000000, s.created_at)
      assert.equal(hello, (db:artifacts():get("rs-s1:1:" .. hash)))
      local state, info = db:agent_states():load("rs-agent")
      assert.same({ k = { 1, 2 } }, state)
      assert.equal("chat", info.agent_type)
      assert.equal("running", db:workflows():load("rs-wf").status)
      -- a section no component knows stays passthrough, and comes back
      local back = storage.json_decode(storage.exporter(db):to_string())
      assert.same({ note = "kept" }, back.data.rs_extension)
      assert.equal("X", db:graph():get_entity("rs-e").name)
      assert.equal(1, #back.data.knowledge_graph.entities)
      assert.equal("rs-s1", back.data.sessions[1].session_id)
      assert.equal("6f1c2b1e-0000-4000-8000-000000000001", back.data.sessions[1].id)
    end)

    it("that were damaged behind the library's back show in db:check()", function()
      local db, t = fresh(by_name("sqlite file"))
      finally(function()
        db:close()
        t()
      end)
      fill(db)
      local path = db:stats().location
      local function sql(q)
        local p = assert(io.popen("sqlite3 -batch " .. path .. " \"" .. q .. "\" 2>&1"))
        local out = p:read("a")
        p:close()
        return out
      end
      sql("UPDATE agent_states SET state_data = CAST('{}' AS BLOB) WHERE agent_id = 'agent-2'")
      sql("UPDATE artifact_chunks SET data = zeroblob(length(data)) WHERE raw_size = "
          .. #BINARY)
      local where = {}
      for _, p in ipairs(db:check()) do where[#where + 1] = p.where end
      table.sort(where)
      assert.same({ "agent_state", "artifacts" }, where)
    end)

    it("are carried by migrate.copy and counted by info", function()
      local src, t1 = fresh(by_name("memory"))
      local dst, t2 = fresh(by_name("sqlite file"))
      finally(function()
        src:close()
        dst:close()
        t1()
        t2()
      end)
      fill(src)
      require("llmspell.storage.migrate").copy(src, dst)
      assert.same(src:stats().components, dst:stats().components)
      local cli = require "llmspell.storage.cli"
      local o = assert(io.tmpfile())
      local path = dst:stats().location
      local code = cli.main({ "info", "sqlite:" .. path, "--json" }, { stdout = o, stderr = o })
      o:seek("set")
      local out = o:read("a")
      o:close()
      assert.equal(0, code, out)
      local doc = storage.json_decode(out)
      assert.equal(2, doc.components.sessions)
      assert.equal(3, doc.components.artifacts)
      assert.equal(2, doc.components.procedural_memory)
      assert.equal(4, doc.components.entities)
      assert.equal(1, doc.components.relationships)
      assert.equal(2, doc.components.hook_history)
      assert.equal(3, doc.components.event_log)
      assert.equal(BINARY, dst:hook_history():get("exec-2").context)
      assert.equal(3, dst:patterns():frequency("nav", "home", "settings"))
      assert.equal("Ada", dst:graph():get_entity("ada", { at = 150 }).name)
      assert.same(src:events():query(), dst:events():query())
    end)
  end)
end)
