--- llmspell.storage.cli: the command-line tool `llmspell-storage`, as a
-- module: inspect, export, import, migrate and validate stores from the
-- shell.
--
--   llmspell-storage info URL
--   llmspell-storage export URL -o FILE
--   llmspell-storage import URL -i FILE
--   llmspell-storage migrate --from URL --to URL [--batch-size N] [--dry-run]
--   llmspell-storage validate URL
--
-- URLs are what `storage.open` takes: "sqlite:PATH", "postgresql://...",
-- "memory". Exit codes: 0 ok, 1 operational error, 2 usage error,
-- 3 validate found problems, 128 + N stopped by signal N (130 Ctrl-C, 143
-- SIGTERM, 129 SIGHUP). `-o -` / `-i -` are stdout / stdin. Errors are one line on
-- stderr, never a traceback (LLMSPELL_STORAGE_DEBUG=1 adds one).
--
-- bin/llmspell-storage finds the library and calls `cli.main(arg)`;
-- `main` returns the exit code and never exits itself, so it can run
-- in-process (the specs do): `cli.main({ "info", "memory", "--json" },
-- { stdout = f, stderr = g })`.
--
-- @module llmspell.storage.cli

local cli = {}

local PROG = "llmspell-storage"
local EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_PROBLEMS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- ---------------------------------------------------------------- errors

-- Errors the tool raises itself are tables with a kind: "usage" (exit 2)
-- or "fail" (exit 1). Anything else (error objects of the library, Lua
-- errors) is operational (exit 1).
local ToolError = {}
ToolError.__index = ToolError
ToolError.__tostring = function(e) return e.message end

local function usage_error(fmt, ...)
  error(setmetatable({ kind = "usage", message = string.format(fmt, ...) }, ToolError), 0)
end

local function fail(fmt, ...)
  error(setmetatable({ kind = "fail", message = string.format(fmt, ...) }, ToolError), 0)
end

-- A failure with one of the library's error codes (storage.error_codes),
-- shown as "(code)" and as error.code in --json, like the library's own.
local function fail_code(code, fmt, ...)
  error(setmetatable({ kind = "fail", code = code, message = string.format(fmt, ...) },
                     ToolError), 0)
end

-- The library, loaded by main when a command needs it (help and usage
-- errors do not).
local storage

-- One line describing any error value.
local function error_line(e)
  local msg
  if getmetatable(e) == ToolError then
    msg = e.message
    if e.code then msg = msg .. " (" .. e.code .. ")" end
  elseif storage and storage.is_error(e) then
    msg = tostring(e.message or "")
    if e.context then msg = e.context .. ": " .. msg end
    if e.code then msg = msg .. " (" .. tostring(e.code) .. ")" end
  elseif type(e) == "table" and type(e.message) == "string" then
    msg = e.message
  else
    msg = tostring(e)
    -- "file.lua:12: text" from a raw Lua error: keep the text
    msg = msg:gsub("^[^\n:]+:%d+: ", "")
  end
  msg = msg:gsub("%s*\n%s*", "; "):gsub("%s+$", "")
  return msg
end

-- Runs f(...) and, when it raises a library error object, records `ctx`
-- (which store failed) in it before rethrowing.
local function in_context(ctx, f, ...)
  local res = table.pack(pcall(f, ...))
  if res[1] then return table.unpack(res, 2, res.n) end
  local e = res[2]
  if storage and storage.is_error(e) and not e.context then e.context = ctx end
  error(e, 0)
end

-- ---------------------------------------------------------------- JSON out

-- The tool's reports (counts, names, problems) go through the library's
-- own codec (storage.json_encode: canonical, so output is deterministic).
-- Arrays are marked with storage.array, so an empty list stays [].
local function lib()
  if not storage then storage = require "llmspell.storage" end
  return storage
end

local function array(t) return lib().array(t) end

--- Encodes a report as one line of JSON.
-- @param v a value built from strings, numbers, booleans and tables
--   (arrays marked with `array`)
-- @treturn string
local function to_json(v)
  return lib().json_encode(v)
end

-- Text made valid UTF-8 (bad bytes as U+FFFD), for messages that may
-- quote a file name or input verbatim.
local function utf8_text(s)
  if utf8.len(s) then return s end
  local parts, i = {}, 1
  while i <= #s do
    local ok, n = pcall(utf8.len, s, i, i)
    if ok and n then
      local len = #utf8.char(utf8.codepoint(s, i))
      parts[#parts + 1] = s:sub(i, i + len - 1)
      i = i + len
    else
      parts[#parts + 1] = "\u{FFFD}"
      i = i + 1
    end
  end
  return table.concat(parts)
end

-- ---------------------------------------------------------------- time

local clock
do
  local ok, system = pcall(require, "system")
  if ok and system.monotime then
    clock = system.monotime
  else
    clock = os.clock -- CPU time: close enough for a progress rate
  end
end

-- ---------------------------------------------------------------- formats

local function human_bytes(n)
  n = n or 0
  local units = { "B", "KB", "MB", "GB", "TB" }
  local i = 1
  while n >= 1000 and i < #units do
    n = n / 1000
    i = i + 1
  end
  return i == 1 and string.format("%d B", n) or string.format("%.1f %s", n, units[i])
end

local function grouped(n)
  local s = string.format("%d", math.floor((n or 0) + 0.5))
  local sign, digits = s:match("^(-?)(%d+)$")
  digits = digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return sign .. digits
end

local function duration(s)
  if not s or s ~= s or s < 0 or s == math.huge then return "--:--" end
  s = math.floor(s + 0.5)
  if s >= 3600 then
    return string.format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60)
  end
  return string.format("%d:%02d", s // 60, s % 60)
end

-- Hides the password of a libpq URL or conninfo, for anything printed.
local function redact(url)
  if type(url) ~= "string" then return url end
  url = url:gsub("^(%a[%w+.-]*://[^/@:]*):[^/@]*@", "%1:***@")
  url = url:gsub("([?&]password=)[^&]*", "%1***")
  url = url:gsub("(password%s*=%s*)'[^']*'", "%1***"):gsub("(password%s*=%s*)[^%s']+", "%1***")
  return url
end

-- ---------------------------------------------------------------- progress

--- A progress line on stderr: phase, count (of total), rate, ETA and a bar
-- when the total is known. Redrawn at most 10 times a second.
local Progress = {}
Progress.__index = Progress

-- `err` is the handle the line is drawn on.
local function new_progress(enabled, err)
  return setmetatable({ enabled = enabled, err = err, started = clock(),
                        last_draw = -math.huge, drawn = false }, Progress)
end

--- Records a step; the signature fits both the exporter's and the
-- importer's progress callbacks.
-- @param done records so far
-- @param total records expected, or nil
-- @param phase what is running ("kv_store", "vector_embeddings", ...)
-- @param bytes bytes read so far (import), or nil
-- @param bytes_total the file's size (import), or nil
function Progress:update(done, total, phase, bytes, bytes_total)
  if not self.enabled then return end
  local now = clock()
  phase = phase and tostring(phase) or ""
  -- counts run across phases; a count that goes back starts a new rate
  if not self.base_time or (done or 0) < (self.base_done or 0) then
    self.base_time, self.base_done = now, done or 0
  end
  if now - self.last_draw < 0.1 and done ~= total and phase == self.phase then return end
  self.phase, self.last_draw = phase, now
  local elapsed = now - self.base_time
  local rate = elapsed > 0 and ((done or 0) - self.base_done) / elapsed or 0
  local frac, eta
  if bytes_total and bytes_total > 0 and bytes then
    frac = bytes / bytes_total
    local all = now - self.started
    eta = bytes > 0 and all * (bytes_total - bytes) / bytes or nil
  elseif total and total > 0 and done then
    frac = done / total
    eta = rate > 0 and (total - done) / rate or nil
  end
  local count = grouped(done)
  if total then count = count .. "/" .. grouped(total) end
  local line = string.format("%-18s %s  %s/s", phase, count, grouped(rate))
  if frac then
    frac = math.max(0, math.min(1, frac))
    local width = 20
    local fill = math.floor(frac * width + 0.5)
    line = string.format("%s  [%s%s] %3d%%  ETA %s", line, string.rep("=", fill),
                         string.rep(" ", width - fill), math.floor(frac * 100), duration(eta))
  end
  self.err:write("\r", line, "\27[K")
  self.err:flush()
  self.drawn = true
end

--- Clears the progress line (before the final report).
function Progress:finish()
  if self.drawn then
    self.err:write("\r\27[K")
    self.err:flush()
    self.drawn = false
  end
end

--- The callback to hand to the exporter or importer. Even when nothing is
-- drawn it runs Lua every ~1000 records, which is where lua5.4 turns a
-- Ctrl-C into an error: the export or import stops and rolls back.
function Progress:callback()
  if not self.enabled then return function() end end
  return function(...) self:update(...) end
end

-- ---------------------------------------------------------------- commands

local GLOBAL_HELP = [[
Usage: llmspell-storage COMMAND [OPTIONS] ...

Inspect, export, import, migrate and validate llmspell.storage stores.

Commands:
  info URL                          backend, counts (keys, components), collections,
                                    migrations
  export URL -o FILE                write the store to a JSON export file (- stdout)
  import URL -i FILE                load an export file, all or nothing (- stdin)
  migrate --from URL --to URL       copy one store (or --components) into another,
                                    then verify
  migrate plan --from URL --to URL -o PLAN   write a migration plan (JSON)
  migrate execute --plan PLAN       carry out a saved plan: check, copy, verify
  validate URL                      check the store; exit 3 on problems

URLs: "sqlite:PATH", "sqlite::memory:", "postgresql://...", "memory".

Options for every command:
  --tenant T    the tenant to work on (default "default")
  --json        machine-readable output: one JSON document on stdout
  --quiet       no progress bar and no report (errors still print)
  -h, --help    help (llmspell-storage COMMAND --help for a command)
  --version     print the library version

Exit codes: 0 ok, 1 operational error, 2 usage error,
3 validate found problems, 128+N stopped by signal N (130 Ctrl-C,
143 SIGTERM, 129 SIGHUP; an export leaves no FILE.part behind).
]]

local COMMANDS = {
  info = {
    args = { "URL" },
    options = {},
    help = [[
Usage: llmspell-storage info URL [--tenant T] [--json]

Prints the backend, location, tenant, number of keys and their bytes, each
vector collection (name, dimension, metric, count, HNSW parameters) and the
schema migrations applied. An SQLite file must exist.
]],
  },
  export = {
    args = { "URL" },
    options = { "output", "prefix", "collection", "no-sections" },
    required = { "output" },
    help = [[
Usage: llmspell-storage export URL -o FILE [OPTIONS]

Writes the tenant's data as one JSON document (format "1.0"), streaming:
memory stays bounded whatever the size. FILE appears only once complete
(written as FILE.part until then, removed if the export fails or a signal
stops it). With -o - the document goes to stdout and the report to stderr.

Options:
  -o, --output FILE     the export file (required; - for stdout)
  --prefix P            only KV keys starting with P
  --collection NAME     only this collection (repeatable; default all)
  --no-sections         leave out passthrough sections (agent_state, ...)
  --tenant T, --json, --quiet
]],
  },
  import = {
    args = { "URL" },
    options = { "input", "on-conflict", "batch-size", "dry-run" },
    required = { "input" },
    help = [[
Usage: llmspell-storage import URL -i FILE [OPTIONS]

Loads an export file (ours or rs-llmspell's) into the store in one
transaction: on any error the store keeps exactly what it held. An SQLite
file is created if missing.

Options:
  -i, --input FILE            the export file (required; - for stdin)
  --on-conflict MODE          replace (default), skip or error, for keys and
                              vector ids that already exist
  --batch-size N              records written per batch (default 1000)
  --dry-run                   read and check the whole file, count, write nothing
  --tenant T, --json, --quiet
]],
  },
  migrate = {
    args = {},
    actions = { plan = { "from", "to", "output" }, execute = { "plan" } },
    options = { "from", "to", "on-conflict", "batch-size", "dry-run", "components", "plan",
                "output" },
    required = { "from", "to" },
    help = [[
Usage: llmspell-storage migrate --from URL --to URL [OPTIONS]
       llmspell-storage migrate plan --from URL --to URL --output PLAN [OPTIONS]
       llmspell-storage migrate execute --plan PLAN [--dry-run]

plan writes a migration plan (JSON: from, to, components, batch size,
conflict mode) without touching either store; execute reads one, checks
both stores, copies and verifies (llmspell.storage.migrate.plan /
execute). Without plan or execute, migrate copies and verifies at once:

Exports the source to a temporary file (in $TMPDIR, else /tmp), imports it
into the target in one transaction, then verifies: every source key and
vector must be in the target with the same value (vector, metadata, scope,
times; with --on-conflict skip only present). The temporary file is
removed. Uses the llmspell.storage.migrate module (migrate.copy and
migrate.verify).

Options:
  --from URL                  the source store (required; an SQLite file must exist)
  --to URL                    the target store (required; SQLite: created if missing)
  --batch-size N              records written per batch (default 1000)
  --on-conflict MODE          replace (default), skip or error
  --dry-run                   export and check the file, write nothing to the target
  --components LIST           what to move, comma-separated: kv, vectors, sessions,
                              artifacts, agent_states, workflows, graph, patterns,
                              events, hook_history, sections (all the components
                              and passthrough sections); default kv,vectors,sections.
                              The seeds' names are accepted too (agent_state,
                              workflow_states, knowledge_graph, procedural_memory,
                              event_log). Verification compares each chosen
                              component's records.
  --plan FILE, -o/--output FILE   the plan to execute / to write
  --tenant T, --json, --quiet
]],
  },
  validate = {
    args = { "URL" },
    options = { "components" },
    help = [[
Usage: llmspell-storage validate URL [--components LIST] [--tenant T] [--json]

With --components (as for migrate), only those components are checked
(the backend's integrity check always runs; collections with vectors).

Checks the store: the backend's own integrity check (SQLite PRAGMA
integrity_check), then every collection of the tenant: it opens, its HNSW
snapshot is usable (checksums), and its index holds as many entries as its
rows. Prints the problems and exits 3 when there are any, 0 when none.
]],
  },
}

-- Every option: long name -> { short =, value = metavar or nil, multi = }.
local OPTIONS = {
  help = { short = "h" },
  version = {},
  json = {},
  quiet = { short = "q" },
  tenant = { value = "T" },
  output = { short = "o", value = "FILE" },
  input = { short = "i", value = "FILE" },
  prefix = { value = "P" },
  collection = { value = "NAME", multi = true },
  ["no-sections"] = {},
  ["on-conflict"] = { value = "MODE" },
  ["batch-size"] = { value = "N" },
  ["dry-run"] = {},
  from = { value = "URL" },
  to = { value = "URL" },
  components = { value = "LIST" },
  plan = { value = "FILE" },
}
local GLOBAL_OPTIONS = { help = true, version = true, json = true, quiet = true, tenant = true }
local SHORT = {}
for name, o in pairs(OPTIONS) do
  if o.short then SHORT[o.short] = name end
end

--- Parses the command line.
-- @tparam table argv the arguments
-- @treturn table { command=, args = {...}, opts = { name = value } }
-- @raise a usage error
local function parse_args(argv)
  local cmd, positional, opts = nil, {}, {}
  local i, only_args = 1, false
  local function set(name, value)
    local o = OPTIONS[name]
    if o.multi then
      opts[name] = opts[name] or {}
      table.insert(opts[name], value)
    elseif opts[name] ~= nil and o.value then
      usage_error("option --%s given twice", name)
    else
      opts[name] = value
    end
  end
  while i <= #argv do
    local a = argv[i]
    local name, value
    if not only_args and a == "--" then
      only_args = true
    elseif not only_args and a:sub(1, 2) == "--" then
      name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      if not OPTIONS[name] then usage_error("unknown option '--%s'", name) end
    elseif not only_args and a:sub(1, 1) == "-" and #a > 1 then
      name = SHORT[a:sub(2, 2)]
      if not name then usage_error("unknown option '%s'", a) end
      if #a > 2 then value = a:sub(3) end
    elseif not cmd then
      cmd = a
    else
      positional[#positional + 1] = a
    end
    if name then
      local o = OPTIONS[name]
      if o.value then
        if value == nil then
          i = i + 1
          value = argv[i]
          if value == nil then usage_error("option --%s needs a value (%s)", name, o.value) end
        end
        set(name, value)
      else
        if value ~= nil then usage_error("option --%s takes no value", name) end
        set(name, true)
      end
    end
    i = i + 1
  end
  return { command = cmd, args = positional, opts = opts }
end

-- The seeds' names for what --components lists, as migrate names them.
local COMPONENT_ALIASES = {
  agent_state = "agent_states", workflow_states = "workflows", workflow = "workflows",
  knowledge_graph = "graph", procedural_memory = "patterns", event_log = "events",
  hooks = "hook_history", kv_store = "kv", vector_embeddings = "vectors",
}
local COMPONENT_LIST = { "kv", "vectors", "sessions", "artifacts", "agent_states", "workflows",
                         "graph", "patterns", "events", "hook_history", "sections" }

-- --components "a,b" -> { "a", "b" } in migrate's names.
local function parse_components(list)
  local known, out = {}, {}
  for _, n in ipairs(COMPONENT_LIST) do known[n] = true end
  for item in (list .. ","):gmatch("([^,]*),") do
    local name = item:match("^%s*(.-)%s*$")
    name = COMPONENT_ALIASES[name] or name
    if not known[name] then
      usage_error("--components: unknown component '%s' (expected %s)", item,
                  table.concat(COMPONENT_LIST, ", "))
    end
    out[#out + 1] = name
  end
  return out
end

-- Checks the parsed line against the command's rules.
local function check_args(p)
  local spec = COMMANDS[p.command]
  if spec.actions and spec.actions[p.args[1]] then
    p.action = table.remove(p.args, 1)
    spec = setmetatable({ required = spec.actions[p.action] }, { __index = spec })
  end
  if p.opts.components then p.opts.components = parse_components(p.opts.components) end
  local allowed = {}
  for _, n in ipairs(spec.options) do allowed[n] = true end
  for name in pairs(p.opts) do
    if not allowed[name] and not GLOBAL_OPTIONS[name] then
      usage_error("option --%s does not apply to '%s'", name, p.command)
    end
  end
  for _, name in ipairs(spec.required or {}) do
    if p.opts[name] == nil or p.opts[name] == "" then
      local o = OPTIONS[name]
      usage_error("%s needs %s%s %s", p.command, o.short and ("-" .. o.short .. "/") or "",
                  "--" .. name, o.value)
    end
  end
  if #p.args < #spec.args then
    usage_error("%s needs %s", p.command, table.concat(spec.args, " "))
  elseif #p.args > #spec.args then
    usage_error("unexpected argument '%s'", p.args[#spec.args + 1])
  end
  local oc = p.opts["on-conflict"]
  if oc and oc ~= "replace" and oc ~= "skip" and oc ~= "error" then
    usage_error("--on-conflict must be replace, skip or error, got '%s'", oc)
  end
  local bs = p.opts["batch-size"]
  if bs then
    local n = tonumber(bs)
    if not n or math.type(n) ~= "integer" or n < 1 then
      usage_error("--batch-size must be a positive integer, got '%s'", bs)
    end
    p.opts["batch-size"] = n
  end
  if p.opts.tenant == "" then usage_error("--tenant needs a non-empty tenant id") end
end

-- Checks the arguments against the library's limits (storage.limits),
-- once it is loaded.
local function check_limits(p, limits)
  local bs = p.opts["batch-size"]
  if bs and bs > limits.max_batch then
    usage_error("--batch-size must be at most %d, got %d", limits.max_batch, bs)
  end
end

-- ---------------------------------------------------------------- stores

-- The SQLite path of a URL, or nil for other backends and ":memory:".
local function sqlite_path(url)
  local p = url:match("^sqlite:(.*)$")
  if not p then return nil end
  p = p:gsub("^//", "")
  if p == ":memory:" or p == "" then return nil end
  return p
end

local function check_url(url, what)
  if url == "memory" or url == "memory:" or url:match("^sqlite:")
      or url:match("^postgresql://") or url:match("^postgres://") then
    return
  end
  usage_error("%s: unknown storage URL '%s' (expected \"sqlite:PATH\", "
              .. "\"postgresql://...\" or \"memory\")", what, redact(url))
end

--- Opens a store.
-- @tparam string url the URL
-- @tparam table opts the parsed options (tenant)
-- @tparam boolean must_exist an SQLite file must exist already
-- @tparam[opt] string ctx which store, for messages ("source", "target")
local function open_store(url, opts, must_exist, ctx)
  check_url(url, ctx or "URL")
  local path = sqlite_path(url)
  if must_exist and path and not file_exists(path) then
    fail_code("not_found", "%sno such SQLite database: %s", ctx and (ctx .. ": ") or "", path)
  end
  local ok, db = pcall(storage.open, url, { tenant = opts.tenant })
  if ok then return db end
  if type(db) == "string" and db:match("^bad argument") then
    usage_error("%s%s", ctx and (ctx .. ": ") or "", db:match("%((.*)%)$") or db)
  end
  if storage.is_error(db) and ctx and not db.context then db.context = ctx end
  error(db, 0)
end

local function count_sections(stats)
  local n = 0
  if type(stats.sections) == "table" then
    for _, v in pairs(stats.sections) do n = n + (tonumber(v) or 0) end
  end
  return n
end

-- "1200 KV entries, 3400 vectors in 2 collections, 5 section records"
local function describe(stats)
  local parts = {
    string.format("%d KV entr%s", stats.kv_entries or 0,
                  (stats.kv_entries or 0) == 1 and "y" or "ies"),
    string.format("%d vector%s in %d collection%s", stats.vectors or 0,
                  (stats.vectors or 0) == 1 and "" or "s", stats.collections or 0,
                  (stats.collections or 0) == 1 and "" or "s"),
  }
  local ns = count_sections(stats)
  if ns > 0 then parts[#parts + 1] = string.format("%d section records", ns) end
  if (stats.skipped or 0) > 0 then
    parts[#parts + 1] = string.format("%d skipped", stats.skipped)
  end
  return table.concat(parts, ", ")
end

-- A copy of a stats table ready for JSON (sections as an object).
local function stats_json(stats)
  local t = {}
  for k, v in pairs(stats or {}) do t[k] = v end
  if type(t.sections) == "table" then
    local s = {}
    for k, v in pairs(t.sections) do s[k] = v end
    t.sections = s
  end
  return t
end

-- ---------------------------------------------------------------- info

local function cmd_info(p, out)
  local url = p.args[1]
  local db <close> = open_store(url, p.opts, true)
  local st = db:stats()
  local cols = array()
  for _, c in ipairs(db:list_collections()) do
    cols[#cols + 1] = { name = c.name, dimension = c.dimension, metric = c.metric,
                        count = c.count, m = c.m, ef_construction = c.ef_construction,
                        ef_search = c.ef_search }
  end
  local migs = array()
  for _, m in ipairs(db:migrations()) do
    migs[#migs + 1] = { name = m.name, applied_at = m.applied_at }
  end
  local comps = {}
  for name, n in pairs(st.components or {}) do comps[name] = n end
  local report = { ok = true, command = "info", backend = st.backend,
                   location = redact(st.location), tenant = st.tenant, keys = st.keys,
                   bytes = st.bytes, collections = cols, migrations = migs,
                   components = comps }
  if p.opts.json then
    out(to_json(report))
    return EXIT_OK
  end
  if p.opts.quiet then return EXIT_OK end
  local names = {}
  for i, m in ipairs(migs) do names[i] = m.name end
  out(string.format("backend      %s", st.backend))
  out(string.format("location     %s", redact(st.location)))
  out(string.format("tenant       %s", st.tenant))
  out(string.format("keys         %d", st.keys))
  out(string.format("bytes        %d (%s)", st.bytes, human_bytes(st.bytes)))
  out(string.format("migrations   %s", #names > 0 and table.concat(names, ", ") or "(none)"))
  local cnames = {}
  for name in pairs(comps) do cnames[#cnames + 1] = name end
  table.sort(cnames)
  for _, name in ipairs(cnames) do
    out(string.format("%-12s %d", name, comps[name]))
  end
  out(string.format("collections  %d", #cols))
  if #cols > 0 then
    local w = 4
    for _, c in ipairs(cols) do w = math.max(w, #c.name) end
    out(string.format("  %-" .. w .. "s  %9s  %-6s  %10s  %s", "NAME", "DIMENSION", "METRIC",
                      "COUNT", "M/EF_CONSTRUCTION/EF_SEARCH"))
    for _, c in ipairs(cols) do
      out(string.format("  %-" .. w .. "s  %9d  %-6s  %10d  %d/%d/%d", c.name, c.dimension,
                        c.metric, c.count, c.m or 0, c.ef_construction or 0, c.ef_search or 0))
    end
  end
  return EXIT_OK
end

-- ---------------------------------------------------------------- export

-- Streams the export to the tool's stdout (`-o -`): an open file handle is
-- written where it stands (a pipe, a `>>` file); anything else with a
-- write method gets the document in one piece.
local function export_to_stdout(exp, eopts, io_)
  local ok, stats
  if io.type(io_.stdout) == "file" then
    ok, stats = pcall(exp.to_file, exp, io_.stdout, eopts)
  else
    local doc
    ok, doc, stats = pcall(exp.to_string, exp, eopts)
    if ok then io_.stdout:write(doc) end
  end
  if ok then io_.stdout:flush() end
  return ok, stats
end

-- The export file is written as FILE.part and renamed once complete; the
-- signal guard removes FILE.part when a signal stops the tool, even one
-- that ends it at once (cli.main).
local function cmd_export(p, out, progress, io_)
  local url, file = p.args[1], p.opts.output
  local db <close> = open_store(url, p.opts, true)
  local exp = storage.exporter(db)
  local eopts = { progress = progress:callback(), prefix = p.opts.prefix,
                  collections = p.opts.collection,
                  sections = not p.opts["no-sections"] }
  local ok, stats
  if file == "-" then
    ok, stats = export_to_stdout(exp, eopts, io_)
    progress:finish()
    if not ok then error(stats, 0) end
  else
    local part = file .. ".part"
    if io_.guard then io_.guard:remove_on_signal(part) end
    ok, stats = pcall(exp.to_file, exp, part, eopts)
    progress:finish()
    if not ok then
      os.remove(part)
      error(stats, 0)
    end
    local renamed, rerr = os.rename(part, file)
    if io_.guard then io_.guard:remove_on_signal(nil) end
    if not renamed then
      os.remove(part)
      fail_code("io", "cannot write %s: %s", file, rerr)
    end
  end
  if p.opts.json then
    out(to_json({ ok = true, command = "export", source = redact(url), file = file,
                  stats = stats_json(stats) }))
  elseif not p.opts.quiet then
    out(string.format("exported %s to %s (%s, %.2f s)", describe(stats),
                      file == "-" and "stdout" or file, human_bytes(stats.bytes),
                      stats.seconds or 0))
  end
  return EXIT_OK
end

-- ---------------------------------------------------------------- import

local function import_opts(p, progress)
  return { progress = progress:callback(), on_conflict = p.opts["on-conflict"],
           batch_size = p.opts["batch-size"], dry_run = p.opts["dry-run"] == true }
end

-- `-i -` reads the tool's stdin, in pieces as it arrives.
local function cmd_import(p, out, progress, io_)
  local url, file = p.args[1], p.opts.input
  if file ~= "-" and not file_exists(file) then
    fail_code("not_found", "cannot read %s: no such file", file)
  end
  local db <close> = open_store(url, p.opts, false)
  local imp = storage.importer(db)
  local src = file
  if file == "-" then
    src = io_.stdin
    if io.type(src) ~= "file" then fail("-i -: stdin is not an open file handle") end
  end
  local ok, stats = pcall(imp.from_file, imp, src, import_opts(p, progress))
  progress:finish()
  if not ok then error(stats, 0) end
  local dry = p.opts["dry-run"] == true
  if p.opts.json then
    out(to_json({ ok = true, command = "import", target = redact(url), file = file,
                  dry_run = dry, stats = stats_json(stats) }))
  elseif not p.opts.quiet then
    out(string.format("%s %s from %s (%.2f s)", dry and "dry run: would import" or "imported",
                      describe(stats), file == "-" and "stdin" or file, stats.seconds or 0))
  end
  return EXIT_OK
end

-- ---------------------------------------------------------------- migrate

-- What a store holds: keys and per-collection counts.
local function census(db)
  local c = { keys = db:stats().keys, collections = {} }
  for _, col in ipairs(db:list_collections()) do c.collections[col.name] = col.count end
  return c
end

-- The verify report's figures for --json (mismatch lists stay short).
local function verify_json(vr)
  local function section(s)
    local list = array()
    for i, m in ipairs(s.mismatches) do
      list[i] = { key = m.key, collection = m.collection, id = m.id, reason = m.reason,
                  fields = m.fields and array(m.fields) or nil }
    end
    return { checked = s.checked, missing = s.missing, extra = s.extra,
             different = s.different, mismatches = list }
  end
  local comps
  if vr.components then
    comps = {}
    for name, s in pairs(vr.components) do comps[name] = section(s) end
  end
  return { ok = vr.ok, mode = vr.mode, kv = section(vr.kv), vectors = section(vr.vectors),
           components = comps, problems = array(vr.problems), truncated = vr.truncated }
end

-- Copies --from into --to with llmspell.storage.migrate (export to a
-- temporary file, import in one transaction), then verifies with
-- migrate.verify: every source key and vector is in the target, with the
-- same value, vector, metadata, scope and times (presence only with
-- --on-conflict skip); the target may hold more.
-- migrate plan: writes a plan (migrate.plan, migrate.save_plan); touches
-- neither store.
local function cmd_migrate_plan(p, out)
  local from, to = p.opts.from, p.opts.to
  check_url(from, "--from")
  check_url(to, "--to")
  local migrate = require "llmspell.storage.migrate"
  local plan = migrate.plan { from = from, to = to, components = p.opts.components,
                              batch_size = p.opts["batch-size"], tenant = p.opts.tenant,
                              on_conflict = p.opts["on-conflict"] }
  migrate.save_plan(plan, p.opts.output)
  if p.opts.json then
    out(to_json({ ok = true, command = "migrate plan", plan = p.opts.output,
                  from = redact(from), to = redact(to), components = array(plan.components) }))
  elseif not p.opts.quiet then
    out(string.format("plan written to %s: %s from %s to %s", p.opts.output,
                      table.concat(plan.components, ","), redact(from), redact(to)))
  end
  return EXIT_OK
end

-- migrate execute: carries out a saved plan (migrate.execute): the checks
-- before, the copy, the verification.
local function cmd_migrate_execute(p, out, progress)
  local migrate = require "llmspell.storage.migrate"
  local dry = p.opts["dry-run"] == true
  local report = migrate.execute(p.opts.plan, { dry_run = dry, progress = progress:callback() })
  progress:finish()
  if not report.ok then
    fail("migrate execute: %s failed: %s", report.stage, table.concat(report.problems, "; "))
  end
  if p.opts.json then
    out(to_json({ ok = true, command = "migrate execute", plan = p.opts.plan, dry_run = dry,
                  components = array(report.plan.components),
                  copied = report.copied and stats_json(report.copied.import) or nil,
                  verify = report.verify and verify_json(report.verify) or nil }))
  elseif not p.opts.quiet then
    out(string.format("%s %s from %s to %s (%.2f s)", dry and "dry run: checked" or "migrated",
                      table.concat(report.plan.components, ","), redact(report.plan.from),
                      redact(report.plan.to), report.seconds or 0))
  end
  return EXIT_OK
end

local function cmd_migrate(p, out, progress)
  if p.action == "plan" then return cmd_migrate_plan(p, out) end
  if p.action == "execute" then return cmd_migrate_execute(p, out, progress) end
  local from, to = p.opts.from, p.opts.to
  check_url(from, "--from")
  check_url(to, "--to")
  if from == to and from ~= "memory" and from ~= "sqlite::memory:" then
    usage_error("--from and --to name the same store")
  end
  local migrate = require "llmspell.storage.migrate"
  local dry = p.opts["dry-run"] == true
  local on_conflict = p.opts["on-conflict"] or "replace"
  local started = clock()
  local function run()
    local src <close> = open_store(from, p.opts, true, "source")
    local dst <close> = open_store(to, p.opts, false, "target")
    local source = in_context("source", census, src)
    local counts = migrate.copy(src, dst, {
      method = "export", batch_size = p.opts["batch-size"], on_conflict = on_conflict,
      dry_run = dry, progress = progress:callback(), components = p.opts.components })
    progress:finish()
    local problems, target, vr = {}, nil, nil
    if dry then
      -- nothing was written: the importer read the whole file
      local est, ist = counts.export, counts.import
      if est.total ~= (ist.total or 0) + (ist.skipped or 0) then
        problems[1] = string.format("imported + skipped records: expected %s, got %s",
                                    tostring(est.total),
                                    tostring((ist.total or 0) + (ist.skipped or 0)))
      end
    else
      local ok
      ok, vr = migrate.verify(src, dst, { allow_extra = true,
                                          values = on_conflict ~= "skip",
                                          components = p.opts.components,
                                          progress = progress:callback() })
      progress:finish()
      if not ok then problems = vr.problems end
      target = in_context("target", census, dst)
    end
    return counts, problems, source, target, vr
  end
  local ok, counts, problems, source, target, vr = pcall(run)
  progress:finish()
  if not ok then error(counts, 0) end
  if #problems > 0 then
    fail("migrate: verification failed: %s", table.concat(problems, "; "))
  end
  local est, ist = counts.export, counts.import
  if p.opts.json then
    out(to_json({ ok = true, command = "migrate", from = redact(from), to = redact(to),
                  dry_run = dry, verified = not dry, export = stats_json(est),
                  import = stats_json(ist),
                  source = { keys = source.keys, collections = source.collections },
                  target = target and { keys = target.keys,
                                        collections = target.collections } or nil,
                  verify = vr and verify_json(vr) or nil }))
  elseif not p.opts.quiet then
    if dry then
      out(string.format("dry run: would migrate %s from %s to %s (nothing written)",
                        describe(ist), redact(from), redact(to)))
    else
      out(string.format("migrated %s from %s to %s; counts verified, %d keys and %d vectors "
                        .. "compared (%.2f s)", describe(ist), redact(from), redact(to),
                        vr.kv.checked, vr.vectors.checked, clock() - started))
    end
  end
  return EXIT_OK
end

-- ---------------------------------------------------------------- validate

-- Whether db:check's `where` names a component section.
local function common_section(where)
  local common = require "llmspell.storage.migrate.common"
  for _, s in pairs(common.COMPONENT_SECTIONS) do
    if s == where then return true end
  end
  return false
end

-- SQLite primary result codes that mean a damaged file.
local SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26

local function cmd_validate(p, out)
  local url = p.args[1]
  local problems = array()
  local function problem(where, what)
    problems[#problems + 1] = { where = where, what = what }
  end
  local checked = { collections = 0 }
  local ok, db = pcall(open_store, url, p.opts, true)
  if not ok then
    local e = db
    local code = storage.is_error(e) and tonumber(e.sqlite_code)
    if code and (code & 0xff == SQLITE_CORRUPT or code & 0xff == SQLITE_NOTADB) then
      problem("open", error_line(e))
    else
      error(e, 0)
    end
  else
    local db_ <close> = db
    -- with --components: the chosen components' problems (by the section
    -- db:check names: agent_state, artifacts, ...) and the store's own
    local only, sections = p.opts.components, nil
    if only then
      sections = {}
      local common = require "llmspell.storage.migrate.common"
      for _, c in ipairs(only) do
        if c == "sections" then sections = nil break end
        if common.COMPONENT_SECTIONS[c] then sections[common.COMPONENT_SECTIONS[c]] = true end
      end
    end
    local function wanted(where)
      return not sections or not common_section(where) or sections[where]
    end
    local okc, found = pcall(db.check, db)
    if not okc then
      problem("integrity check", error_line(found))
    else
      for _, pr in ipairs(found) do
        if wanted(pr.where) then problem(pr.where, pr.what) end
      end
    end
    local vectors = not only
    for _, c in ipairs(only or {}) do vectors = vectors or c == "vectors" end
    local okl, cols = pcall(db.list_collections, db)
    if not vectors then okl, cols = true, {} end
    if not okl then
      problem("collections", error_line(cols))
      cols = {}
    end
    for _, info in ipairs(cols) do
      checked.collections = checked.collections + 1
      local where = "collection " .. info.name
      local oko, col = pcall(db.collection, db, info.name)
      if not oko then
        problem(where, "does not open: " .. error_line(col))
      else
        local oks, st = pcall(col.stats, col)
        if not oks then
          problem(where, "stats failed: " .. error_line(st))
        else
          if st.rebuilt then
            problem(where, "snapshot unusable, index rebuilt from the rows"
                           .. (st.snapshot_error and (": " .. st.snapshot_error) or ""))
          elseif st.snapshot_error then
            problem(where, "snapshot: " .. tostring(st.snapshot_error))
          end
          local stored = st.stored or st.count
          if stored ~= info.count then
            problem(where, string.format("index holds %d entries, rows say %d",
                                         stored, info.count))
          end
          if st.dimension ~= info.dimension or st.metric ~= info.metric then
            problem(where, string.format("index is %s-d %s, collection row says %s-d %s",
                                         tostring(st.dimension), tostring(st.metric),
                                         tostring(info.dimension), tostring(info.metric)))
          end
        end
        pcall(col.close, col)
      end
    end
    local okst, st = pcall(db.stats, db)
    if okst then checked.keys = st.keys end
  end
  local bad = #problems > 0
  if p.opts.json then
    out(to_json({ ok = not bad, command = "validate", url = redact(url), problems = problems,
                  checked = checked }))
  elseif bad then
    out(string.format("%d problem%s in %s:", #problems, #problems == 1 and "" or "s",
                      redact(url)))
    for _, pr in ipairs(problems) do out(string.format("  %s: %s", pr.where, pr.what)) end
  elseif not p.opts.quiet then
    out(string.format("ok: %s (%d keys, %d collection%s checked)", redact(url),
                      checked.keys or 0, checked.collections,
                      checked.collections == 1 and "" or "s"))
  end
  return bad and EXIT_PROBLEMS or EXIT_OK
end

local RUN = { info = cmd_info, export = cmd_export, import = cmd_import,
              migrate = cmd_migrate, validate = cmd_validate }

-- ---------------------------------------------------------------- main

-- Whether the progress line can be drawn: stderr is the process's own and
-- a terminal.
local function stderr_is_tty(err)
  if err ~= io.stderr then return false end
  local ok = os.execute("test -t 2")
  return ok == true
end

-- What the tool says for each signal the guard catches (by number, from
-- core._signals once loaded); the exit code is 128 + the number.
local SIGNAL_WORDS = {}

-- The signal guard (core._signals, csrc/lua/signals.c) for a command: while
-- it is active, SIGINT, SIGTERM and SIGHUP stop the command with an error
-- (and exit 128 + the signal), and the file registered with
-- guard:remove_on_signal is removed even when a second signal ends the
-- process at once. nil when the core has none or a guard is active.
local function signal_guard()
  local okc, core = pcall(require, "llmspell.storage.core")
  if not okc or type(core._signals) ~= "table" then return nil end
  local s = core._signals
  SIGNAL_WORDS = { [s.SIGINT] = "interrupted", [s.SIGTERM] = "terminated (SIGTERM)",
                   [s.SIGHUP] = "hung up (SIGHUP)" }
  local okg, guard = pcall(s.catch)
  return okg and guard or nil
end

-- The body of cli.main; state.guard is the signal guard once made.
local function run_main(argv, handles, state)
  local stdout, stderr = handles.stdout or io.stdout, handles.stderr or io.stderr
  local io_ = { stdout = stdout, stdin = handles.stdin or io.stdin }
  local json = false
  for _, a in ipairs(argv) do
    if a == "--" then break end
    if a == "--json" then json = true end
  end
  -- the report's handle: stdout, or stderr when stdout carries the data
  local report = stdout
  local function out(s)
    report:write(s, "\n")
  end
  local progress = new_progress(false, stderr)
  local traceback, command

  local ok, res = xpcall(function()
    local p = parse_args(argv)
    command = COMMANDS[p.command] and p.command or nil
    if p.opts.version then
      storage = require "llmspell.storage"
      out(PROG .. " (llmspell.storage " .. tostring(storage._VERSION) .. ")")
      return EXIT_OK
    end
    if p.command == "help" then
      local topic = p.args[1]
      if topic and not COMMANDS[topic] then usage_error("unknown command '%s'", topic) end
      stdout:write(topic and COMMANDS[topic].help or GLOBAL_HELP)
      return EXIT_OK
    end
    if p.opts.help then
      if p.command and not COMMANDS[p.command] then
        usage_error("unknown command '%s'", p.command)
      end
      stdout:write(p.command and COMMANDS[p.command].help or GLOBAL_HELP)
      return EXIT_OK
    end
    if not p.command then usage_error("no command given") end
    if not COMMANDS[p.command] then usage_error("unknown command '%s'", p.command) end
    check_args(p)
    local okr, lib = pcall(require, "llmspell.storage")
    if not okr then
      fail("cannot load the llmspell.storage library: %s", error_line(lib))
    end
    storage = lib
    check_limits(p, storage.limits)
    if p.command == "export" and p.opts.output == "-" then report = stderr end
    progress.enabled = not p.opts.quiet and not json and stderr_is_tty(stderr)
    if handles.signals ~= false then
      state.guard = signal_guard()
      io_.guard = state.guard
    end
    local code = RUN[p.command](p, out, progress, io_)
    if state.guard then state.guard:release() end
    return code
  end, function(e)
    if os.getenv("LLMSPELL_STORAGE_DEBUG") then traceback = debug.traceback(nil, 2) end
    return e
  end)
  if ok then return res end

  progress:finish()
  local e = res
  local code, kind = EXIT_FAIL, "error"
  local line = error_line(e)
  if getmetatable(e) == ToolError and e.kind == "usage" then
    code, kind = EXIT_USAGE, "usage"
    line = string.format("%s (see '%s%s --help')", line, PROG, command and (" " .. command) or "")
  else
    local sig = state.guard and state.guard:caught()
    if state.guard then state.guard:release() end
    if sig then
      code, kind, line = 128 + sig, "interrupted", SIGNAL_WORDS[sig] or "interrupted"
    elseif type(e) == "string" and e:match("interrupted!$") then
      code, kind, line = EXIT_INTERRUPTED, "interrupted", "interrupted"
    end
  end
  stderr:write(PROG, ": ", line, "\n")
  if traceback then stderr:write(traceback, "\n") end
  if json then
    local err = { kind = kind, message = utf8_text(line) }
    if (storage and storage.is_error(e)) or getmetatable(e) == ToolError then
      err.code = e.code
    end
    -- without the library (it failed to load) there is no JSON to write
    pcall(function() out(to_json({ ok = false, error = err })) end)
  end
  return code
end

--- Runs the tool.
-- @tparam table argv the arguments (`arg`)
-- @tparam[opt] table handles `stdout`, `stderr`: file handles to write to
--   (default io.stdout, io.stderr); `stdin`: the handle `-i -` reads
--   (default io.stdin); `signals = false`: leave signal handling alone
--   (by default SIGINT, SIGTERM and SIGHUP are caught while a command
--   runs, and their previous handling restored afterwards)
-- @treturn integer the exit code: 0 ok, 1 operational error, 2 usage
--   error, 3 validate found problems, 128 + N stopped by signal N (130
--   SIGINT, 143 SIGTERM, 129 SIGHUP)
function cli.main(argv, handles)
  handles = handles or {}
  local state = {}
  local ok, res = pcall(run_main, argv, handles, state)
  if state.guard then state.guard:release() end
  if ok then return res end
  -- only a signal caught as the command was finishing comes here: its
  -- error was raised outside run_main's own handler
  local sig = state.guard and state.guard:caught()
  if not sig then error(res, 0) end
  pcall(function()
    (handles.stderr or io.stderr):write(PROG, ": ", SIGNAL_WORDS[sig] or "interrupted", "\n")
  end)
  return 128 + sig
end

return cli
