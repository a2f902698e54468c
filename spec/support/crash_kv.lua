--- Crash-test writer: KV batches (see crash_child.lua). Unit i is one
-- db:set_batch of UNIT keys "b<i>:<j>" plus the marker "m<i>"; after a
-- kill every batch is there whole or not at all.
local HERE = arg[0]:match("^(.*)/[^/]*$") or "."
local child = dofile(HERE .. "/crash_child.lua")

local FILLER = string.rep("x", 200) -- a few pages per batch, so kills land mid-write

local a = child.start()
child.loop(a, function(i)
  local t = { ["m" .. i] = tostring(i) }
  for j = 1, a.unit do t[("b%d:%d"):format(i, j)] = ("v%d:%d:"):format(i, j) .. FILLER end
  a.db:set_batch(t)
end)
