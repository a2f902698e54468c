--- llmspell.storage.migrate.sections: comparing the components' records
-- (and passthrough sections) of two stores, for migrate.verify.
--
-- Each side exports the chosen sections alone (no keys, no vectors) to a
-- temporary file, read back record by record (storage.records). The
-- components export in the order of their keys (sessions by session_id,
-- agent states by agent_id, workflows by workflow_id, patterns by (scope,
-- key, value), hook history by execution_id, the event log by sequence),
-- so the two streams merge by key: a record on one side only is missing or
-- extra, one on both compared field by field. `tenant_id` is left out of
-- the comparison (the stores may be different tenants). A section written
-- as one value (artifacts, knowledge_graph: objects of arrays) comes as
-- one record and is compared whole, in memory.
--
-- @module llmspell.storage.migrate.sections

local core = require "llmspell.storage.core"
local common = require "llmspell.storage.migrate.common"

local M = {}

local on_side, cmp_bytes, temp_file = common.on_side, common.cmp_bytes, common.temp_file
local format = string.format

local DOC = { kv_store = true, vector_collections = true, vector_embeddings = true }

-- The key a section's records are exported in, as a string that sorts in
-- the same order (nil: compare by position).
local KEYS = {
  sessions = function(r) return r.session_id end,
  agent_state = function(r) return r.agent_id end,
  workflow_states = function(r) return r.workflow_id end,
  hook_history = function(r) return r.execution_id end,
  procedural_memory = function(r)
    return (r.scope or "") .. "\0" .. (r.key or "") .. "\0" .. (r.value or "")
  end,
  event_log = function(r)
    return math.type(r.sequence) == "integer" and r.sequence >= 0
           and format("%020d", r.sequence) or nil
  end,
}

local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then return math.type(a) == math.type(b) and a == b end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if k ~= "tenant_id" and not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if k ~= "tenant_id" and a[k] == nil then return false end
  end
  return true
end

-- The fields two records differ in (top level, tenant_id aside).
local function fields_of(a, b)
  local d = {}
  for k, v in pairs(a) do
    if k ~= "tenant_id" and not same(v, b[k]) then d[#d + 1] = k end
  end
  for k in pairs(b) do
    if k ~= "tenant_id" and a[k] == nil then d[#d + 1] = k end
  end
  table.sort(d)
  return d
end

-- A pull reader over h's chosen sections: next() --> section, record.
local function open_side(h, sections, side, tmpdir)
  local tmp = temp_file(tmpdir)
  local exp = on_side(side, core.exporter, h)
  on_side(side, exp.to_file, exp, tmp.path, common.export_selection({}, sections))
  exp:close()
  local co = coroutine.wrap(function()
    for section, record in core.records(tmp.path) do
      if not DOC[section] then coroutine.yield(section, record) end
    end
  end)
  return { tmp = tmp, next = function() return on_side(side, co) end }
end

-- Where a section comes in an export: the components in the exporter's
-- order, then the passthrough sections by name.
local ORDER = { sessions = 1, artifacts = 2, agent_state = 3, workflow_states = 4,
                procedural_memory = 5, knowledge_graph = 6, hook_history = 7, event_log = 8 }
local function section_cmp(a, b)
  local x, y = ORDER[a] or 100, ORDER[b] or 100
  if x ~= y then return x < y and -1 or 1 end
  return cmp_bytes(a, b)
end

--- Compares the sections of src and dst (`sections`: true for all, or an
-- array of names). Returns a table by section: `{ checked=, missing=,
-- extra=, different=, mismatches = { { key=, reason=, fields= } } }`, and
-- adds a line per problem through problem(fmt, ...).
-- @param src, dst store handles
-- @param sections true or an array of section names
-- @tparam table cfg `allow_extra`, `values` (false: presence only), `limit`
--   (mismatches kept per section), `tmpdir`
-- @tparam function problem
function M.compare(src, dst, sections, cfg, problem)
  local a_side = open_side(src, sections, "source", cfg.tmpdir)
  local b_side = open_side(dst, sections, "target", cfg.tmpdir)
  local out = {}
  local function sec(name)
    local s = out[name]
    if not s then
      s = { checked = 0, missing = 0, extra = 0, different = 0, mismatches = {} }
      out[name] = s
    end
    return s
  end
  local function note(name, reason, key, fields)
    local s = sec(name)
    s[reason] = s[reason] + 1
    if #s.mismatches < cfg.limit then
      s.mismatches[#s.mismatches + 1] = { key = key, reason = reason, fields = fields }
    end
  end
  local sa, ra = a_side.next()
  local sb, rb = b_side.next()
  local pos_a, pos_b = 0, 0 -- positions within the current section (no key)
  while sa or sb do
    local c = sa == nil and 1 or sb == nil and -1 or section_cmp(sa, sb)
    local key = (c == 0) and KEYS[sa] or nil
    local ka, kb
    if key then ka, kb = key(ra), key(rb) end
    if c == 0 and (not key or not ka or not kb) then
      -- by position
      pos_a, pos_b = pos_a + 1, pos_b + 1
      sec(sa).checked = sec(sa).checked + 1
      if cfg.values and not same(ra, rb) then note(sa, "different", pos_a, fields_of(ra, rb)) end
      sa, ra = a_side.next()
      sb, rb = b_side.next()
    elseif c == 0 then
      local kc = cmp_bytes(ka, kb)
      if kc == 0 then
        sec(sa).checked = sec(sa).checked + 1
        if cfg.values and not same(ra, rb) then note(sa, "different", ka, fields_of(ra, rb)) end
        sa, ra = a_side.next()
        sb, rb = b_side.next()
      elseif kc < 0 then
        sec(sa).checked = sec(sa).checked + 1
        note(sa, "missing", ka)
        sa, ra = a_side.next()
      else
        if not cfg.allow_extra then note(sb, "extra", kb) end
        sb, rb = b_side.next()
      end
    elseif c < 0 then
      sec(sa).checked = sec(sa).checked + 1
      note(sa, "missing", KEYS[sa] and KEYS[sa](ra) or nil)
      sa, ra = a_side.next()
    else
      if not cfg.allow_extra then note(sb, "extra", KEYS[sb] and KEYS[sb](rb) or nil) end
      sb, rb = b_side.next()
    end
    if sa == nil or sb == nil or sa ~= sb then pos_a, pos_b = 0, 0 end
  end
  local names = {}
  for name in pairs(out) do names[#names + 1] = name end
  table.sort(names, function(x, y) return section_cmp(x, y) < 0 end)
  for _, name in ipairs(names) do
    local s = out[name]
    for _, r in ipairs { "missing", "extra", "different" } do
      if s[r] > 0 then
        problem("%s: %d record%s %s", name, s[r], s[r] == 1 and "" or "s",
                r == "missing" and "missing in the target" or r == "extra" and "only in the target"
                or (s[r] == 1 and "differs" or "differ"))
      end
    end
  end
  os.remove(a_side.tmp.path)
  os.remove(b_side.tmp.path)
  return out
end

return M
