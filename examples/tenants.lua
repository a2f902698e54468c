-- tenants.lua: two tenants in one store, isolated from each other, one of
-- them under quotas. Runs on a fresh SQLite file (or the URL given:
-- `lua5.4 examples/tenants.lua memory`, `... postgresql://...`).
local storage = require "llmspell.storage"
local tenant = require "llmspell.storage.tenant"

local url, path = arg[1], nil
if not url then
  local base = os.tmpname() -- reserves a unique name; we use it as a stem
  os.remove(base)
  path = base .. "-tenants.db"
  url = "sqlite:" .. path
end
local function say(fmt, ...) print(string.format(fmt, ...)) end

-- Deterministic stand-in embeddings (no network): a direction per topic.
local function embed(topic, i)
  local a = ({ billing = 0.0, shipping = 1.2, returns = 2.4 })[topic] + i * 0.05
  return { math.cos(a), math.sin(a), 0.3 }
end

-- Runs f and reports the error it raises, if any.
local function try(what, f)
  local ok, err = pcall(f)
  if ok then
    say("  %-48s ok", what)
  elseif storage.is_error(err) then
    say("  %-48s refused: %s %s (used %s, requested %s, limit %s)", what, err.code,
        tostring(err.quota), tostring(err.used), tostring(err.requested), tostring(err.limit))
  else
    say("  %-48s refused: %s", what, tostring(err):gsub("^[^:]*:%d+: ", ""))
  end
end

do
  local db <close> = storage.open(url)
  say("store   %s", tostring(db))

  -- Naming: every tenant's collections and scope follow the seeds' pattern.
  say("naming  collection %s, scope %s, parse -> %s",
      tenant.collection("acme", "docs"), tenant.scope("acme"),
      table.concat({ tenant.parse("tenant_acme:docs") }, " + "))
  say("        id 'a:b' valid? %s", select(2, tenant.is_valid_id("a:b")))

  -- acme is on the small plan; globex has no limits.
  local acme <close> = tenant.open(db, "acme", {
    max_collections = 1, max_vectors_per_collection = 4, max_total_vectors = 4,
    max_kv_bytes = 64,
  })
  local globex <close> = tenant.open(db, "globex")
  say("opened  %s and %s", tostring(acme), tostring(globex))

  -- Key-value: the same key names, separate namespaces.
  acme:set("settings", '{"plan":"small"}')
  globex:set("settings", '{"plan":"enterprise"}')
  say("\nkey-value")
  say("  acme:get('settings')    -> %s", acme:get("settings"))
  say("  globex:get('settings')  -> %s", globex:get("settings"))
  say("  globex:get('../acme/settings') -> %s", tostring(globex:get("../acme/settings")))
  say("  raw keys in the store   -> %s", table.concat(db:list_keys("tenant:"), ", "))

  -- Collections: each tenant has its own "docs".
  local adocs = acme:create_collection("docs", { dimension = 3 })
  local gdocs = globex:create_collection("docs", { dimension = 3 })
  adocs:add {
    { id = "a1", vector = embed("billing", 1), metadata = { topic = "billing" } },
    { id = "a2", vector = embed("shipping", 1), metadata = { topic = "shipping" } },
    { id = "a3", vector = embed("returns", 1), metadata = { topic = "returns" } },
  }
  for i = 1, 5 do
    gdocs:add { id = "g" .. i, vector = embed("billing", i), metadata = { topic = "billing" } }
  end
  say("\ncollections in the store: %s", (function()
    local names = {}
    for _, c in ipairs(db:list_collections()) do names[#names + 1] = c.name end
    return table.concat(names, ", ")
  end)())
  local e = adocs:get("a1")
  say("acme's entry a1: scope %s, metadata.tenant_id %s", e.scope, e.metadata.tenant_id)

  say("\nsearch for billing (k = 10)")
  for _, t in ipairs { { "acme", adocs }, { "globex", gdocs } } do
    local ids = {}
    for _, hit in ipairs(t[2]:search(embed("billing", 1), { k = 10 })) do
      ids[#ids + 1] = string.format("%s(%.2f)", hit.id, hit.score)
    end
    say("  %-7s -> %s", t[1], table.concat(ids, " "))
  end

  -- The secondary check: an entry whose metadata was tampered with through
  -- the raw store is no longer acme's, whatever collection it sits in.
  db:collection("tenant_acme:docs"):update_metadata("a3", { tenant_id = "globex" })
  say("\nafter tampering with a3 through the raw store:")
  say("  acme get('a3') -> %s; search finds %d entries", tostring(adocs:get("a3")),
      #adocs:search(embed("returns", 1), { k = 10 }))

  say("\nquotas for acme: %s", (function()
    local q, parts = acme:quota(), {}
    for _, k in ipairs { "max_collections", "max_vectors_per_collection",
                         "max_total_vectors", "max_kv_bytes" } do
      parts[#parts + 1] = k .. "=" .. q[k]
    end
    return table.concat(parts, " ")
  end)())
  try("create a second collection", function()
    acme:create_collection("faq", { dimension = 3 })
  end)
  try("add 2 vectors (3 stored, limit 4)", function()
    adocs:add { { id = "a4", vector = embed("billing", 2) },
                { id = "a5", vector = embed("billing", 3) } }
  end)
  try("add 1 vector (reaches the limit exactly)", function()
    adocs:add { id = "a4", vector = embed("billing", 2) }
  end)
  try("upsert a1 (replaces: no growth)", function()
    adocs:upsert { id = "a1", vector = embed("billing", 1), metadata = { topic = "billing" } }
  end)
  try("set 'notes' (40 bytes: 24 + 40 = 64, the limit)", function()
    acme:set("notes", ("x"):rep(35))
  end)
  try("set 'x' = '' (1 byte more)", function() acme:set("x", "") end)
  try("add with another tenant's scope", function()
    adocs:upsert { id = "a1", vector = embed("billing", 1), scope = "tenant:globex" }
  end)
  try("globex: 1000 bytes (no quota)", function() globex:set("blob", ("y"):rep(995)) end)

  local u = tenant.usage(db, "acme")
  say("\nusage of acme: %d collection(s), %d vectors (docs: %d), %d KV bytes in %d keys",
      u.collections, u.vectors, u.vectors_by_collection.docs, u.kv_bytes, u.kv_keys)
  u = globex:usage()
  say("usage of globex: %d collection(s), %d vectors, %d KV bytes in %d keys",
      u.collections, u.vectors, u.kv_bytes, u.kv_keys)

  say("\nacme:clear() removed %d key(s); globex still has %s", acme:clear(),
      table.concat(globex:list_keys(), ", "))
end

if path then
  for _, p in ipairs { path, path .. "-wal", path .. "-shm" } do os.remove(p) end
end
