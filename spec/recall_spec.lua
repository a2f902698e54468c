--- Recall through the Lua API on real data with exact ground truth (a
-- DEEP1B slice, 1900 x 96, in spec/data; see spec/data/README.md): a
-- correctness check, not a timing. Also recall under metadata filters at
-- 1%, 10% and 50% selectivity, against exact filtered neighbours computed
-- here in Lua.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

local dir = helpers.data_dir() .. "/deep1b_query_2k/"
local base, dim = helpers.read_fvecs(dir .. "deep_base.fvecs")
local queries = helpers.read_fvecs(dir .. "deep_query.fvecs")
local truth = helpers.read_ivecs(dir .. "deep_groundtruth_l2.ivecs")

local function unpack_vec(s) return { string.unpack("<" .. string.rep("f", dim), s) } end

local function recall_at_10(got, want)
  local w = {}
  for i = 1, 10 do w[want[i]] = true end
  local hit = 0
  for i = 1, math.min(10, #got) do hit = hit + (w[got[i]] and 1 or 0) end
  return hit / 10
end

-- Exact filtered top 10 (L2) for query q among ids with bucket < limit.
local decoded
local function exact_filtered(q, limit)
  if not decoded then
    decoded = {}
    for i, s in ipairs(base) do decoded[i] = unpack_vec(s) end
  end
  local best = {}
  for i = 1, #base do
    if (i - 1) % 100 < limit then
      local v, d = decoded[i], 0
      for j = 1, dim do
        local t = v[j] - q[j]
        d = d + t * t
      end
      best[#best + 1] = { id = i - 1, d = d }
    end
  end
  table.sort(best, function(a, b) return a.d < b.d end)
  local out = {}
  for i = 1, 10 do out[i] = best[i].id end
  return out
end

local function open_backend(name)
  if name == "memory" then return storage.open("memory"), function() end end
  if name == "sqlite" then
    local path = helpers.tmpname(".db")
    return storage.open { backend = "sqlite", path = path },
           function() helpers.remove_db(path) end
  end
  return storage.open { backend = "postgres", url = helpers.pg_url(),
                        tenant = helpers.unique_tenant("recall") }, function() end
end

for _, name in ipairs { "memory", "sqlite", "postgres" } do
  describe("recall on the DEEP1B slice (" .. name .. ")", function()
    local db, cleanup, col

    setup(function()
      db, cleanup = open_backend(name)
      col = db:create_collection("deep", { dimension = dim, metric = "l2", m = 16,
                                           ef_construction = 200 })
      local batch = {}
      for i, v in ipairs(base) do
        -- bucket = id mod 100 gives filters of exact selectivity
        batch[i] = { id = tostring(i - 1), vector = v, metadata = { bucket = (i - 1) % 100 } }
      end
      col:add(batch)
    end)

    teardown(function()
      db:drop_collection("deep")
      db:close()
      cleanup()
    end)

    it("has recall@10 >= 0.95 against the exact ground truth", function()
      assert.equal(1900, #col)
      local total = 0
      for qi, q in ipairs(queries) do
        local got = {}
        for i, r in ipairs(col:search(q, { k = 10, ef_search = 100 })) do
          got[i] = tonumber(r.id)
        end
        total = total + recall_at_10(got, truth[qi])
      end
      local recall = total / #queries
      assert.is_true(recall >= 0.95, string.format("recall@10 = %.3f", recall))
    end)

    if name == "memory" then
      for _, limit in ipairs { 1, 10, 50 } do
        for _, strategy in ipairs { "auto", "graph" } do
          if not (limit == 1 and strategy == "graph") then
            it(string.format("keeps recall@10 >= 0.95 at %d%% selectivity (%s)", limit,
                             strategy), function()
              local total, n = 0, 20
              for qi = 1, n do
                local q = queries[qi]
                local want = exact_filtered(unpack_vec(q), limit)
                local got = {}
                local res = col:search(q, { k = 10, ef_search = 100, strategy = strategy,
                                            filter = { bucket = { ["$lt"] = limit } } })
                for i, r in ipairs(res) do
                  got[i] = tonumber(r.id)
                  assert.is_true(r.metadata.bucket < limit)
                end
                total = total + recall_at_10(got, want)
              end
              local recall = total / n
              assert.is_true(recall >= 0.95, string.format("recall@10 = %.3f", recall))
            end)
          end
        end
      end
    end
  end)
end
