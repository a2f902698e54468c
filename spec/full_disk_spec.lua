--- A full disk: a write that does not fit raises `io`, the store holds
-- exactly what it held before, the handle stays usable, and an export that
-- cannot be written leaves no partial file. The child runs under
-- `ulimit -f` with SIGXFSZ ignored, so its writes past the limit fail the
-- way they fail on a full disk (SQLite sees the short write).
local storage = require "llmspell.storage"
local helpers = require "spec.helpers"

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

local function sqlite3(path, sql)
  local p = assert(io.popen("sqlite3 -batch " .. sh_quote(path) .. " " .. sh_quote(sql)
                            .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return (out:gsub("%s+$", ""))
end

describe("a full disk (SQLite)", function()
  local path, export_path

  before_each(function()
    path = helpers.tmpname(".db")
    export_path = helpers.tmpname(".json")
  end)

  after_each(function()
    helpers.remove_db(path)
    os.remove(export_path)
  end)

  it("raises io, keeps what was committed and nothing of the failed writes", function()
    local db = storage.open("sqlite:" .. path)
    local keep = {}
    -- 2 MB of values: their export (base64) is larger than the file limit
    for i = 1, 100 do
      keep[string.format("keep:%03d", i)] = "value " .. i .. string.rep("v", 20000)
    end
    db:set_batch(keep)
    local col = db:create_collection("docs", { dimension = 4 })
    local rows = {}
    for i = 1, 50 do rows[i] = { id = "d" .. i, vector = { i, 1, 2, 3 } } end
    col:add(rows)
    db:close() -- checkpoints the WAL into the file
    -- room for the small writes, not for 12 MB (ulimit -f counts KiB)
    local limit_kb = math.floor(file_size(path) / 1024) + 128
    local cmd = string.format("trap '' XFSZ; ulimit -f %d; %s 2>&1", limit_kb,
                              helpers.lua_command("spec/support/full_disk_writer.lua "
                                                  .. sh_quote(path) .. " "
                                                  .. sh_quote(export_path)))
    local p = assert(io.popen("bash -c " .. sh_quote(cmd)))
    local out = p:read("a")
    p:close()
    assert.matches("batch io\n", out, out)
    assert.matches("transaction io\n", out, out)
    assert.matches("export io\n", out, out)
    assert.matches("read ok\n", out, out)
    assert.matches("small write ok\n", out, out)
    -- no partial export file left behind
    assert.is_nil(io.open(export_path, "rb"))
    -- the store: what was committed, the small write, nothing else
    assert.equal("ok", sqlite3(path, "PRAGMA integrity_check"))
    db = storage.open("sqlite:" .. path)
    local keys = db:list_keys("")
    assert.equal(101, #keys)
    for k, v in pairs(keep) do assert.equal(v, db:get(k)) end
    assert.equal("fits", db:get("after"))
    assert.is_nil(db:get("big:001"))
    assert.is_nil(db:get("tx:001"))
    assert.equal(50, db:collection("docs"):count())
    db:close()
  end)
end)
