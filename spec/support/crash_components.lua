--- Crash-test writer: the components (see crash_child.lua). Unit i is one
-- db:transaction that creates session "s<i>", puts UNIT artifacts in it
-- (every third one 20 KB, so it is compressed and chunked; the last one
-- the same bytes in every unit, so it is deduplicated across units),
-- saves agent state "a<i>" twice and workflow "w<i>" moved to running;
-- after a kill every unit is there whole or not at all.
local HERE = arg[0]:match("^(.*)/[^/]*$") or "."
local child = dofile(HERE .. "/crash_child.lua")

local bytes = child.artifact_bytes

local a = child.start()
local sessions, arts = a.db:sessions(), a.db:artifacts()
local states, flows = a.db:agent_states(), a.db:workflows()
child.loop(a, function(i)
  a.db:transaction(function()
    sessions:create("s" .. i, { data = { unit = i } })
    for j = 1, a.unit do arts:put("s" .. i, bytes(i, j, a.unit), { name = "f" .. j }) end
    states:save("a" .. i, { unit = i, step = 1 })
    states:save("a" .. i, { unit = i, step = 2 })
    flows:save("w" .. i, { name = "unit " .. i })
    flows:set_status("w" .. i, "running")
  end)
end)
