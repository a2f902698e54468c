--- llmspell.storage.migrate.plan: migrations from a saved JSON plan.
--
-- `plan` makes a plan, `save_plan` / `load_plan` write and read it, and
-- `execute` carries it out: checks before, copy, verify.
--
-- @module llmspell.storage.migrate.plan

local core = require "llmspell.storage.core"
local common = require "llmspell.storage.migrate.common"

local M = {}

local DEFAULT_BATCH, MAX_BATCH = common.DEFAULT_BATCH, common.MAX_BATCH
local COMPONENT_NAMES, COMPONENTS, clock = common.COMPONENT_NAMES, common.COMPONENTS, common.clock
local argerror, fail, check_opts = common.argerror, common.fail, common.check_opts
local set_of, opt_type, tag, on_side = common.set_of, common.opt_type, common.tag, common.on_side
local census = common.census
local copy = require("llmspell.storage.migrate.copy").copy
local verify = require("llmspell.storage.migrate.verify").verify
local format = string.format

local PLAN_VERSION = 1

local PLAN_ORDER = { "version", "created_at", "from", "to", "tenant", "components",
                     "collections", "prefix", "batch_size", "on_conflict", "sample", "method" }
local PLAN_FIELDS = set_of { "from", "to", "components", "batch_size", "tenant", "prefix",
                             "collections", "on_conflict", "sample", "method", "version",
                             "created_at" }

--- Checks a plan (a table from `plan` or from JSON); returns a clean copy.
local function check_plan(p, n, fname, from_json)
  local function bad(msg)
    if from_json then fail("format", "migration plan: %s", msg) end
    argerror(n, fname, msg)
  end
  if type(p) ~= "table" then bad("plan table expected, got " .. type(p)) end
  for k in pairs(p) do
    if not PLAN_FIELDS[k] then bad(format("unknown field '%s'", tostring(k))) end
  end
  local function int(v, name, min)
    if v == nil then return nil end
    local i = math.tointeger(v)
    if not i or i < min then bad(format("'%s' must be an integer >= %d", name, min)) end
    return i
  end
  local function str(v, name, required)
    if v == nil and not required then return nil end
    if type(v) ~= "string" or v == "" then bad(format("'%s' must be a non-empty string", name)) end
    return v
  end
  local version = int(p.version, "version", 1) or PLAN_VERSION
  if version ~= PLAN_VERSION then
    if from_json then fail("version", "migration plan version %d is not supported", version) end
    bad(format("'version' must be %d", PLAN_VERSION))
  end
  local out = {
    version = version,
    from = str(p.from, "from", true), to = str(p.to, "to", true),
    tenant = str(p.tenant, "tenant"), prefix = str(p.prefix, "prefix"),
    batch_size = int(p.batch_size, "batch_size", 1) or DEFAULT_BATCH,
    sample = int(p.sample, "sample", 0),
    created_at = int(p.created_at, "created_at", 0),
  }
  if out.batch_size > MAX_BATCH then bad(format("'batch_size' must be at most %d", MAX_BATCH)) end
  local comps = p.components or common.DEFAULT_COMPONENTS
  if type(comps) ~= "table" then bad("'components' must be an array") end
  out.components = {}
  for i, c in ipairs(comps) do
    if not COMPONENTS[c] then
      bad(format("'components' entry %d must be \"%s\"", i, table.concat(COMPONENT_NAMES,
                                                                        "\", \"")))
    end
    out.components[i] = c
  end
  if #out.components == 0 then bad("'components' must name at least one component") end
  if p.collections ~= nil then
    if type(p.collections) ~= "table" then bad("'collections' must be an array of names") end
    out.collections = {}
    for i, c in ipairs(p.collections) do
      out.collections[i] = str(c, "collections[" .. i .. "]", true)
    end
  end
  for name, values in pairs { on_conflict = { "replace", "skip", "error" },
                              method = { "auto", "export", "api" } } do
    local v = p[name]
    if v ~= nil then
      local okv = false
      for _, x in ipairs(values) do okv = okv or v == x end
      if not okv then
        bad(format("'%s' must be \"%s\"", name, table.concat(values, "\", \"")))
      end
      out[name] = v
    end
  end
  out.on_conflict = out.on_conflict or "replace"
  return out
end

--- Makes a migration plan: what to move from where to where, as a table
-- of strings and integers that `save_plan` writes as JSON and `execute`
-- carries out.
--
--    local plan = migrate.plan{ from = "sqlite:data/app.db", to = pg_url,
--                               components = { "kv", "vectors" }, batch_size = 500 }
--
-- @tparam table spec `from`, `to` (URLs as `storage.open` takes them;
--   required), `components` (array of `"kv"`, `"vectors"`, `"sections"`;
--   default all three), `batch_size` (default 1000), `tenant` (both
--   sides; default the stores' default), `prefix` (keys), `collections`
--   (names; default all), `on_conflict` (`"replace"` default, `"skip"`,
--   `"error"`), `sample` (verify n entries per section instead of all),
--   `method` (as for copy)
-- @treturn table the plan (the same fields, defaults filled in, plus
--   `version = 1` and `created_at` in seconds)
-- @raise bad argument for a malformed spec
function M.plan(spec)
  local p = check_plan(spec, 1, "plan")
  p.created_at = p.created_at or os.time()
  return p
end

--- Writes a plan as one JSON document (the core's codec), atomically (a
-- temporary file renamed into place). A URL's password is written as it
-- is: keep plan files private, or put the password in libpq's
-- `~/.pgpass` instead.
-- @tparam table plan from `migrate.plan`
-- @tparam string path the file to write
-- @treturn string path
-- @raise bad argument for a malformed plan; error object `io`
function M.save_plan(plan, path)
  local p = check_plan(plan, 1, "save_plan")
  if type(path) ~= "string" or path == "" then
    argerror(2, "save_plan", "file path expected, got " .. type(path))
  end
  -- one field per line in a fixed order, so a plan reads well in review
  -- and diffs cleanly; every value is encoded by the core's codec
  local lines = {}
  for _, k in ipairs(PLAN_ORDER) do
    if p[k] ~= nil then
      lines[#lines + 1] = format("  %s: %s", core.json_encode(k), core.json_encode(p[k]))
    end
  end
  local text = "{\n" .. table.concat(lines, ",\n") .. "\n}"
  local part = path .. ".part"
  local f, err = io.open(part, "wb")
  if not f then fail("io", "cannot write %s: %s", part, tostring(err)) end
  local ok, werr = f:write(text, "\n")
  local closed, cerr = f:close()
  if not ok or not closed then
    os.remove(part)
    fail("io", "cannot write %s: %s", part, tostring(werr or cerr))
  end
  local renamed, rerr = os.rename(part, path)
  if not renamed then
    os.remove(part)
    fail("io", "cannot write %s: %s", path, tostring(rerr))
  end
  return path
end

--- Reads a plan written by `save_plan`.
-- @tparam string path
-- @treturn table the plan
-- @raise error objects `io` (unreadable), `format` (not a plan),
--   `version` (a newer plan version)
function M.load_plan(path)
  if type(path) ~= "string" then argerror(1, "load_plan", "file path expected") end
  local f, err = io.open(path, "rb")
  if not f then fail("io", "cannot read %s: %s", path, tostring(err)) end
  local text = f:read("a")
  f:close()
  local ok, v = pcall(core.json_decode, text)
  if not ok then
    fail("format", "migration plan %s: %s", path, core.is_error(v) and v.message or tostring(v))
  end
  return check_plan(v, 1, "load_plan", true)
end

local function sqlite_file(url)
  local p = url:match("^sqlite:(.*)$")
  if not p then return nil end
  p = p:gsub("^//", "")
  if p == ":memory:" or p == "" then return nil end
  return p
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- Opens one side of a plan. A source SQLite file must exist. For a dry
-- run into an SQLite file that does not exist yet, an empty in-memory
-- SQLite store stands in (its directory must exist), so a dry run does
-- not even create the file; the second result is then true.
local function open_side(url, tenant, side, must_exist, dry)
  local path = sqlite_file(url)
  local o = tenant and { tenant = tenant } or nil
  if path and not file_exists(path) then
    if must_exist then
      error(tag(core.error("not_found", "no such SQLite database: " .. path), side), 0)
    end
    if dry then
      local dir = path:match("^(.*)/[^/]*$") or "."
      if dir == "" then dir = "/" end
      if not os.rename(dir, dir) then
        error(tag(core.error("io", "no such directory: " .. dir), side), 0)
      end
      return on_side(side, core.open, "sqlite::memory:", o), true
    end
  end
  return on_side(side, core.open, url, o), false
end

local function selected_set(plan)
  local comp = set_of(plan.components)
  return { kv = comp.kv == true, vectors = comp.vectors == true, prefix = plan.prefix,
           collections = plan.collections }
end

--- Carries out a plan: opens both URLs, checks before (the source is
-- readable, the target reachable, and every collection to copy that the
-- target already has has the same dimension and metric), copies (a dry
-- run reads and checks everything and writes nothing), then verifies
-- (`migrate.verify`, the target may hold more than the source; values are
-- compared unless `on_conflict` is `"skip"`). Both stores are closed
-- afterwards.
--
--    migrate.save_plan(migrate.plan{ from = a, to = b }, "plan.json")
--    local report = migrate.execute("plan.json", { dry_run = true })
--    print(report.ok, report.copied.kv_entries)
--
-- @tparam table|string plan_or_path a plan, or the path of a saved one
-- @tparam[opt] table opts `dry_run`, `progress = function(done, total,
--   phase)`, `tmpdir`, `sample` (overrides the plan's)
-- @treturn table report `{ ok=, dry_run=, stage = "before" (the checks
--   before failed) | "done", plan=, before = { source = { keys=, collections = {
--   name = n } }, target = {..., missing = true when a dry run's SQLite
--   target does not exist yet}, problems = {...} }, copied = counts,
--   verify = verify report, problems = {...}, seconds= }`; `ok` is false
--   when the checks before or the verification found problems (nothing is
--   copied when the checks before fail)
-- @raise error objects with `side` when a store cannot be opened or read
function M.execute(plan_or_path, opts)
  local plan
  if type(plan_or_path) == "string" then
    plan = M.load_plan(plan_or_path)
  else
    plan = check_plan(plan_or_path, 1, "execute")
  end
  local o = check_opts(opts, 2, "execute", set_of { "dry_run", "progress", "tmpdir", "sample" })
  local dry = opt_type(o, "dry_run", "boolean", 2, "execute") == true
  local progress = opt_type(o, "progress", "function", 2, "execute")
  local tmpdir = opt_type(o, "tmpdir", "string", 2, "execute")
  local sample = o.sample
  if sample == nil then sample = plan.sample end
  if sample ~= nil and (math.type(sample) ~= "integer" or sample < 0) then
    argerror(2, "execute", "option 'sample' must be a non-negative integer")
  end
  local t0 = clock()
  local report = { ok = false, dry_run = dry, plan = plan, stage = "before", problems = {} }

  local src <close> = open_side(plan.from, plan.tenant, "source", true)
  local dst <close>, stand_in = open_side(plan.to, plan.tenant, "target", false, dry)
  local sel = selected_set(plan)
  local sc, dc = census(src, sel, "source"), census(dst, { kv = sel.kv, vectors = sel.vectors,
                                                           prefix = sel.prefix }, "target")
  local before = { problems = {},
                   source = { keys = sc.keys, vectors = sc.vectors,
                              collections = sc.collections },
                   target = { keys = dc.keys, vectors = dc.vectors,
                              collections = dc.collections, missing = stand_in } }
  report.before = before
  for name, a in pairs(sc.params) do
    local b = dc.params[name]
    if b and (a.dimension ~= b.dimension or a.metric ~= b.metric) then
      before.problems[#before.problems + 1] = format(
        "collection %s: %d-d %s in the source, %d-d %s in the target", name, a.dimension,
        a.metric, b.dimension, b.metric)
    end
  end
  if sel.collections then
    for _, name in ipairs(sel.collections) do
      if not sc.params[name] then
        before.problems[#before.problems + 1] = format("collection %s: not in the source", name)
      end
    end
  end
  table.sort(before.problems)
  if #before.problems > 0 then
    for _, p in ipairs(before.problems) do report.problems[#report.problems + 1] = p end
    report.seconds = clock() - t0
    return report
  end

  report.stage = "copy"
  report.copied = copy(src, dst, {
    components = plan.components, batch_size = plan.batch_size, prefix = plan.prefix,
    collections = plan.collections, on_conflict = plan.on_conflict, dry_run = dry,
    method = plan.method, progress = progress, tmpdir = tmpdir,
  })
  if dry then
    report.stage, report.ok = "done", true
    report.seconds = clock() - t0
    return report
  end
  report.stage = "verify"
  local vcomp = plan.components
  local ok, vr = true, nil
  if #vcomp > 0 then
    ok, vr = verify(src, dst, {
      components = vcomp, prefix = plan.prefix, collections = plan.collections,
      sample = sample, allow_extra = true, values = plan.on_conflict ~= "skip",
      progress = progress, tmpdir = tmpdir, batch_size = plan.batch_size,
    })
    report.verify = vr
    for _, p in ipairs(vr.problems) do report.problems[#report.problems + 1] = p end
  end
  report.stage, report.ok = "done", ok
  report.seconds = clock() - t0
  return report
end

return M
