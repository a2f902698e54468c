--- Crash-test writer: collection adds (see crash_child.lua). Unit i is one
-- col:add of UNIT entries "b<i>:<j>" to collection "crash_col"; every
-- third unit also saves a snapshot, so kills land in snapshot writes too.
-- After a kill every batch is there whole or not at all, and the
-- collection reopens (from its snapshot) and searches.
local HERE = arg[0]:match("^(.*)/[^/]*$") or "."
local child = dofile(HERE .. "/crash_child.lua")

local DIM = 16

local a = child.start()
local ok, col = pcall(a.db.collection, a.db, "crash_col")
if not ok then col = a.db:create_collection("crash_col", { dimension = DIM, metric = "l2" }) end
child.loop(a, function(i)
  local batch = {}
  for j = 1, a.unit do
    batch[j] = { id = ("b%d:%d"):format(i, j), vector = child.vector(DIM, i, j),
                 metadata = { batch = i } }
  end
  col:add(batch)
  if i % 3 == 0 then col:snapshot() end
end)
