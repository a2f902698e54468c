-- Child process for collection_persistence_spec: writes to a collection
-- through its own handle, then exits WITHOUT closing anything (os.exit
-- skips finalizers), so it leaves no newer snapshot behind: a reader must
-- catch up from the change sequence.
--   lua5.4 vector_writer.lua <json-ish open spec: backend url tenant> <collection> <action>
local storage = require "llmspell.storage"
local backend, target, tenant, name, action = ...
local opts = { backend = backend, tenant = tenant }
if backend == "sqlite" then opts.path = target else opts.url = target end
local db = storage.open(opts)
local col = db:collection(name)
if action == "churn" then
  -- 20 new entries, 10 deleted, one metadata update
  local batch = {}
  for i = 1, 20 do
    batch[i] = { id = "new" .. i, vector = { i, -i, 0.5 }, metadata = { from = "child" } }
  end
  col:add(batch)
  local gone = {}
  for i = 1, 10 do gone[i] = "v" .. i end
  col:delete(gone)
  col:update_metadata("v20", { updated = true })
  col:upsert { id = "v21", vector = { 100, 100, 100 }, metadata = { moved = true } }
end
io.write("done\n")
os.exit(0) -- no close: the parent must catch up without a newer snapshot
