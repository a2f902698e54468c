-- quickstart.lua: the key-value API on SQLite, the embedded default.
-- Run with `make demo` (installs what is missing, builds, runs this).
local storage = require "llmspell.storage"

local path = arg[1]
if not path then
  local base = os.tmpname() -- reserves a unique name; we use it as a stem
  os.remove(base)
  path = base .. "-quickstart.db"
end
local function say(fmt, ...) print(string.format(fmt, ...)) end

do
  local db <close> = storage.open("sqlite:" .. path)
  say("opened %s", tostring(db))

  -- single keys; values are binary-safe strings
  db:set("user:1", '{"name":"Ada"}')
  db:set("user:2", '{"name":"Grace"}')
  db:set("blob", "bytes\0with\0NULs")
  say("get user:1      -> %s", db:get("user:1"))
  say("blob length     -> %d bytes (NULs kept)", #db:get("blob"))
  say("exists user:3   -> %s", tostring(db:exists("user:3")))

  -- prefixes are literal, results come in byte order
  say("list_keys user: -> %s", table.concat(db:list_keys("user:"), ", "))

  -- batches are atomic
  db:set_batch { ["session:a"] = "1", ["session:b"] = "2", ["session:c"] = "3" }
  say("delete_batch    -> removed %d", db:delete_batch { "session:a", "session:x" })
  for k, v in db:scan("session:") do say("scan            -> %s = %s", k, v) end

  -- transactions commit on return and roll back on error
  local ok, err = pcall(db.transaction, db, function(tx)
    tx:set("user:1", "overwritten")
    error("something went wrong")
  end)
  say("failed tx       -> %s; user:1 is still %s", tostring(not ok and err), db:get("user:1"))
  db:transaction(function(tx)
    tx:set("counter", "1")
    tx:delete("blob")
  end)
  say("committed tx    -> counter=%s, blob=%s", db:get("counter"), tostring(db:get("blob")))

  -- TTL: expired keys are invisible
  db:set("otp", "123456", { ttl = 0.2 })
  say("otp now         -> %s", tostring(db:get("otp")))
  os.execute("sleep 0.3")
  say("otp after 0.3 s -> %s", tostring(db:get("otp")))

  -- errors are objects with a code
  local store = db
  db:close()
  local _, closed = pcall(store.get, store, "user:1")
  say("after close     -> %s (code %q)", tostring(closed), closed.code)
end

-- the file persists: reopen and read
local db <close> = storage.open("sqlite:" .. path)
local st = db:stats()
say("reopened        -> %d keys, %d bytes, schema %s", st.keys, st.bytes,
    table.concat((function()
      local names = {}
      for _, m in ipairs(db:migrations()) do names[#names + 1] = m.name end
      return names
    end)(), ","))
db:close()
if not arg[1] then
  for _, p in ipairs { path, path .. "-wal", path .. "-shm" } do os.remove(p) end
end
