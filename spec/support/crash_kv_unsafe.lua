--- Crash-test writer that is NOT atomic, the crash test's negative
-- control (spec/crash_spec.lua): unit i sets its keys "b<i>:<j>" one by
-- one, then the marker "m<i>", exactly the records crash_kv.lua writes in
-- one set_batch. A kill mid-unit leaves half a unit, which
-- scripts/crash-test.lua must report.
local HERE = arg[0]:match("^(.*)/[^/]*$") or "."
local child = dofile(HERE .. "/crash_child.lua")

local FILLER = string.rep("x", 200)

local a = child.start()
child.loop(a, function(i)
  for j = 1, a.unit do a.db:set(("b%d:%d"):format(i, j), ("v%d:%d:"):format(i, j) .. FILLER) end
  a.db:set("m" .. i, tostring(i))
end)
