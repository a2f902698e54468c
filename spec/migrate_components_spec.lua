--- Component-aware migration (issue 13): storage.migrate.copy / verify /
-- plan / execute and the CLI's `migrate plan`, `migrate execute` and
-- `validate --components` move and check chosen components only, so one
-- component can move from SQLite to PostgreSQL while the rest stay.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"
local migrate = require "llmspell.storage.migrate"
local cli = require "llmspell.storage.cli"

--- Runs the CLI; returns the exit code and what it printed.
local function run(argv)
  local o = assert(io.tmpfile())
  local code = cli.main(argv, { stdout = o, stderr = o, signals = false })
  o:seek("set")
  local out = o:read("a")
  o:close()
  return code, out
end

--- A bit of every component, keys and a collection.
local function fill(db)
  db:set("k1", "v1")
  local col = db:collection("docs", { dimension = 2, create = true })
  col:add { id = "d1", vector = { 1, 0 }, metadata = { n = 1 } }
  local s = db:sessions()
  s:create("s1", { data = { user = "ada" } })
  s:create("s2", { status = "completed" })
  db:artifacts():put("s1", "notes of s1", { name = "notes.txt" })
  db:artifacts():put("s2", "\0binary\255", { name = "b.bin" })
  db:agent_states():save("agent-1", { step = 3 })
  db:workflows():save("wf-1", { name = "ingest" })
  db:graph():add_entity { id = "ada", type = "person", name = "Ada" }
  db:patterns():record("nav", "home", "settings")
  db:events():append { type = "agent.start", data = { n = 1 } }
end

describe("component-aware migration", function()
  local path, url, src, dst, tenant

  before_each(function()
    path = helpers.tmpname(".db")
    url = "sqlite:" .. path
    tenant = helpers.unique_tenant("mig")
    src = storage.open { url = url, tenant = tenant }
    fill(src)
    dst = storage.open { url = helpers.pg_url(), tenant = tenant }
  end)

  after_each(function()
    src:close()
    dst:close()
    helpers.remove_db(path)
  end)

  it("moves only sessions and artifacts from SQLite to PostgreSQL, and verifies them",
     function()
    local counts = migrate.copy(src, dst, { components = { "sessions", "artifacts" } })
    assert.equal("export", counts.method)
    assert.equal(2, dst:sessions():count())
    assert.equal(2, dst:artifacts():stats().artifacts)
    assert.equal("notes of s1", (dst:artifacts():get(dst:artifacts():list("s1")[1].artifact_id)))
    -- the rest stayed where it was
    assert.is_nil(dst:get("k1"))
    assert.same({}, dst:list_collections())
    assert.is_nil(dst:agent_states():load("agent-1"))
    assert.is_nil(dst:workflows():load("wf-1"))
    assert.is_nil(dst:graph():get_entity("ada"))
    assert.equal(0, dst:patterns():count())
    assert.equal(0, dst:events():count())
    assert.equal("v1", src:get("k1"))
    assert.equal(2, src:sessions():count())
    -- verify compares the records, component by component
    local ok, report = migrate.verify(src, dst, { components = { "sessions", "artifacts" } })
    assert.is_true(ok, table.concat(report.problems, "\n"))
    assert.equal(2, report.components.sessions.checked)
    assert.equal(0, report.components.sessions.different)
    assert.is_table(report.components.artifacts)
    ok, report = migrate.verify(src, dst, { components = { "agent_states" } })
    assert.is_false(ok)
    assert.equal(1, report.components.agent_state.missing)
    assert.equal("agent-1", report.components.agent_state.mismatches[1].key)
    -- a record changed behind the migration's back is found, by key and field
    dst:sessions():update("s2", { data = { changed = true } })
    ok, report = migrate.verify(src, dst, { components = { "sessions" } })
    assert.is_false(ok)
    assert.equal(1, report.components.sessions.different)
    assert.equal("s2", report.components.sessions.mismatches[1].key)
    assert.matches("sessions: 1 record differs", table.concat(report.problems, "\n"), 1, true)
  end)

  it("takes a session's artifacts with it (and the sessions with artifacts)", function()
    migrate.copy(src, dst, { components = { "artifacts" } })
    assert.equal(2, dst:sessions():count())
    assert.equal(1, dst:sessions():get("s1").artifact_count)
    local ok, report = migrate.verify(src, dst, { components = { "sessions" } })
    assert.is_true(ok, table.concat(report.problems, "\n"))
    assert.equal(1, report.components.artifacts.checked) -- an object section: compared whole
    assert.equal(0, report.components.artifacts.different)
  end)

  it("moves the graph and the event log alone, record for record", function()
    src:graph():update_entity("ada", { title = "Countess" })
    migrate.copy(src, dst, { components = { "graph", "events" } })
    assert.equal("Countess", dst:graph():get_entity("ada").properties.title)
    assert.equal(1, dst:events():count())
    assert.equal(0, dst:sessions():count())
    local ok, report = migrate.verify(src, dst, { components = { "graph", "events" } })
    assert.is_true(ok, table.concat(report.problems, "\n"))
    assert.equal(1, report.components.knowledge_graph.checked)
    assert.equal(1, report.components.event_log.checked)
  end)

  it("refuses components on the API path and unknown names", function()
    local err = helpers.error_of(migrate.copy, src, dst, { components = { "sessions" },
                                                           method = "api" })
    assert.matches("need method \"export\"", err, 1, true)
    err = helpers.error_of(migrate.copy, src, dst, { components = { "session" } })
    assert.matches("option 'components': entry 1 must be", err, 1, true)
  end)

  it("works the seeds' CLI shape: plan, execute (dry run, then for real), validate",
     function()
    local plan = helpers.tmpname(".json")
    src:close()
    dst:close()
    local pg = helpers.pg_url()
    local code, out = run { "migrate", "plan", "--from", url, "--to", pg, "--tenant", tenant,
                            "--components", "sessions,agent_state", "--output", plan }
    assert.equal(0, code, out)
    local p = storage.json_decode(assert(io.open(plan)):read("a"))
    assert.same({ "sessions", "agent_states" }, p.components)
    code, out = run { "migrate", "execute", "--plan", plan, "--dry-run", "--json" }
    assert.equal(0, code, out)
    dst = storage.open { url = pg, tenant = tenant }
    assert.equal(0, dst:sessions():count()) -- a dry run writes nothing
    dst:close()
    code, out = run { "migrate", "execute", "--plan", plan, "--json" }
    assert.equal(0, code, out)
    local doc = storage.json_decode(out)
    assert.is_true(doc.ok)
    assert.equal(2, doc.verify.components.sessions.checked)
    src = storage.open { url = url, tenant = tenant }
    dst = storage.open { url = pg, tenant = tenant }
    assert.equal(2, dst:sessions():count())
    assert.is_table((dst:agent_states():load("agent-1")))
    assert.equal(2, dst:artifacts():stats().artifacts) -- artifacts follow sessions
    -- validate one component of a store
    code, out = run { "validate", url, "--tenant", tenant, "--components", "sessions,graph" }
    assert.equal(0, code, out)
    code, out = run { "migrate", "--from", url, "--to", pg, "--tenant", tenant,
                      "--components", "patterns", "--json" }
    assert.equal(0, code, out)
    assert.equal(1, dst:patterns():count())
    code, out = run { "migrate", "plan", "--from", url, "--to", pg, "--components", "bogus",
                      "--output", plan }
    assert.equal(2, code)
    assert.matches("unknown component 'bogus'", out, 1, true)
    os.remove(plan)
  end)
end)
