--- Metadata filter builder.
--
-- `storage.filter():eq("category", "docs"):gt("year", 2023)` builds the same
-- table as `{ category = "docs", year = { ["$gt"] = 2023 } }`. The builder
-- keeps its conditions in itself, so the object *is* the filter table:
-- pass it straight to `col:search(v, { filter = f })`.
--
-- @module llmspell.storage.filter

local Filter = {}
Filter.__index = Filter

local function check_field(name, field)
  if type(field) ~= "string" or field == "" then
    error(string.format("bad argument #1 to '%s' (field name expected, got %s)", name,
                        type(field)), 3)
  end
end

-- Adds `op = value` to field's operator table, turning an earlier plain
-- equality into `$eq` so conditions on one field combine (AND).
local function add(self, name, field, op, value)
  check_field(name, field)
  local cur = rawget(self, field)
  if cur == nil then
    cur = {}
  elseif type(cur) ~= "table" or getmetatable(cur) == Filter or cur[1] ~= nil then
    cur = { ["$eq"] = cur }
  end
  cur[op] = value
  rawset(self, field, cur)
  return self
end

--- field == value
function Filter:eq(field, value) return add(self, "eq", field, "$eq", value) end
--- field ~= value (also true when the field is missing)
function Filter:ne(field, value) return add(self, "ne", field, "$ne", value) end
--- field > value (numbers, or strings in byte order)
function Filter:gt(field, value) return add(self, "gt", field, "$gt", value) end
--- field >= value
function Filter:gte(field, value) return add(self, "gte", field, "$gte", value) end
--- field < value
function Filter:lt(field, value) return add(self, "lt", field, "$lt", value) end
--- field <= value
function Filter:lte(field, value) return add(self, "lte", field, "$lte", value) end
--- field equals one of the values (an array)
function Filter:in_(field, values) return add(self, "in_", field, "$in", values) end
--- field equals none of the values
function Filter:nin(field, values) return add(self, "nin", field, "$nin", values) end
--- the field is present (default) or absent
function Filter:exists(field, present)
  return add(self, "exists", field, "$exists", present == nil and true or present)
end
--- lo <= field <= hi
function Filter:range(field, lo, hi)
  add(self, "range", field, "$gte", lo)
  return add(self, "range", field, "$lte", hi)
end

-- Appends filters to a logical operator's array.
local function logical(self, op, ...)
  local list = rawget(self, op) or {}
  for i = 1, select("#", ...) do
    local f = select(i, ...)
    if type(f) ~= "table" then
      error(string.format("bad argument #%d to '%s' (filter table expected, got %s)", i,
                          op, type(f)), 3)
    end
    list[#list + 1] = f
  end
  rawset(self, op, list)
  return self
end

--- All of the given filters match (in addition to this one's conditions).
function Filter:and_(...) return logical(self, "$and", ...) end
--- At least one of the given filters matches.
function Filter:or_(...) return logical(self, "$or", ...) end
--- The given filter does not match.
function Filter:not_(f)
  if type(f) ~= "table" then
    error("bad argument #1 to 'not_' (filter table expected, got " .. type(f) .. ")", 2)
  end
  rawset(self, "$not", f)
  return self
end

--- A plain table copy of the filter (without the builder's metatable).
function Filter:build()
  local t = {}
  for k, v in pairs(self) do t[k] = v end
  return t
end

function Filter.__tostring(self)
  local n = 0
  for _ in pairs(self) do n = n + 1 end
  return string.format("llmspell.storage.Filter (%d condition%s)", n, n == 1 and "" or "s")
end

--- Starts a new, empty filter (which matches everything).
-- @treturn table a builder that is also the filter table
local function new() return setmetatable({}, Filter) end

return setmetatable({ new = new, Filter = Filter },
                    { __call = function(_, ...) return new(...) end })
