--- storage.migrate through col:scan: a 50,000-entry collection behind a
-- handle that is not a store (a dual-write handle, so the API path reads
-- it) migrates whole, and verify compares every entry.
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"
local migrate = storage.migrate

local N = 50000

describe("migrate through col:scan", function()
  local path

  before_each(function() path = helpers.tmpname(".db") end)
  after_each(function() helpers.remove_db(path) end)

  it("copies a 50,000-entry collection whole from a handle that is not a store", function()
    local src = storage.open { backend = "sqlite", path = path }
    local col = src:create_collection("big", { dimension = 3, metric = "l2" })
    for b = 0, N // 1000 - 1 do
      local rows = {}
      for i = 1, 1000 do
        local n = b * 1000 + i
        rows[i] = { id = string.format("e%06d", (n * 7919) % N), vector = { n, n % 13, 1 },
                    scope = "s" .. n % 4, metadata = { n = n },
                    event_time = n % 9 ~= 0 and 1700000000 + n or nil }
      end
      col:add(rows)
    end
    local h = migrate.dual_write(src, storage.open { backend = "memory" })
    local dst = storage.open { backend = "memory" }
    local counts = migrate.copy(h, dst)
    assert.equal("api", counts.method)
    assert.equal(N, counts.vectors)
    local copy = dst:collection("big")
    assert.equal(N, copy:count())
    -- (the API path does not carry creation times)
    local want, got = col:get("e000001"), copy:get("e000001")
    want.created_at, want.updated_at, got.created_at, got.updated_at = nil, nil, nil, nil
    assert.same(want, got)
    local ok, report = migrate.verify(h, dst)
    assert.is_true(ok, table.concat(report.problems or {}, "\n"))
    -- verify reads every entry: one changed far in is found
    copy:update_metadata("e049999", { n = -1 })
    ok, report = migrate.verify(h, dst)
    assert.is_false(ok)
    assert.matches("1 vector differs", table.concat(report.problems, "\n"), 1, true)
    dst:close()
    h:close()
    src:close()
  end)
end)
