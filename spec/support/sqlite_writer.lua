--- Child process for spec/sqlite_spec.lua's SIGKILL test.
--
--   lua5.4 spec/support/sqlite_writer.lua DBPATH PROGRESSFILE
--
-- Writes batches 1, 2, 3, ... forever (until killed): batch i is the keys
-- "b<i>:<j>" (j = 1..KEYS) plus the marker "m<i>", written atomically. After
-- a batch commits, "<i>\n" is appended to PROGRESSFILE and flushed, so the
-- parent knows which batches were acknowledged before the kill. The batches
-- rotate through the three atomic paths (set_batch, batch, transaction),
-- since each reaches SQLite differently (apply vs BEGIN/COMMIT).
-- Nothing is printed on stdout: the parent reads it through a pipe only for
-- the process id, and a full pipe would stall the writer.

local storage = require "llmspell.storage"

local KEYS = 50
local FILLER = string.rep("x", 300) -- a few pages per batch, so kills land mid-write

local dbpath, progress_path = arg[1], arg[2]
assert(dbpath and progress_path, "usage: sqlite_writer.lua DBPATH PROGRESSFILE")

local db = storage.open { backend = "sqlite", path = dbpath, synchronous = "normal" }
local progress = assert(io.open(progress_path, "a"))

--- The value stored under batch i, key j: checkable by the parent.
local function value(i, j)
  return ("v%d:%d:"):format(i, j) .. FILLER
end

local function write_batch(i)
  local mode = i % 3
  if mode == 0 then
    local t = { ["m" .. i] = tostring(i) }
    for j = 1, KEYS do t[("b%d:%d"):format(i, j)] = value(i, j) end
    db:set_batch(t)
  elseif mode == 1 then
    local ops = { { op = "set", key = "m" .. i, value = tostring(i) } }
    for j = 1, KEYS do
      ops[#ops + 1] = { op = "set", key = ("b%d:%d"):format(i, j), value = value(i, j) }
    end
    ops[#ops + 1] = { op = "delete", key = "never-there" }
    db:batch(ops)
  else
    db:transaction(function(tx)
      for j = 1, KEYS do tx:set(("b%d:%d"):format(i, j), value(i, j)) end
      tx:set("m" .. i, tostring(i))
    end)
  end
end

local i = 0
while true do
  i = i + 1
  write_batch(i)
  progress:write(i, "\n")
  progress:flush()
end
