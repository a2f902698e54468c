--- Packaging: the module loads twice, installs where lua5.4 finds it, and
-- the rockspec stays in step with the sources.
local helpers = require "spec.helpers"

-- Runs a shell command, returning its exit code and output. Tools such as
-- make and luarocks run without a sanitizer runtime `make asan` preloads
-- (its leak checker would abort them); Lua children that load our build
-- keep it (keep_preload).
local function run(cmd, keep_preload)
  if not keep_preload then cmd = "unset LD_PRELOAD; " .. cmd end
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

describe("packaging", function()
  it("loads the C core twice in one interpreter", function()
    local storage = require "llmspell.storage"
    local db = storage.open("memory")
    db:set("k", "v")
    package.loaded["llmspell.storage"] = nil
    package.loaded["llmspell.storage.core"] = nil
    local again = require "llmspell.storage"
    assert.are_not.equal(storage, again)
    local db2 = again.open("memory")
    db2:set("k", "v2")
    assert.equal("v", db:get("k"))
    assert.equal("v2", db2:get("k"))
    db:close()
    local err = helpers.error_of(db.get, db, "k")
    assert.is_true(again.is_error(err))
    assert.equal("closed", err.code)
    db2:close()
  end)

  it("installs into PREFIX/DESTDIR where lua5.4 finds it", function()
    local dest = helpers.tmpname("-destdir")
    local code, out = run("make -s install PREFIX=/usr/local DESTDIR=" .. dest)
    assert.equal(0, code, out)
    local so = dest .. "/usr/local/lib/lua/5.4/llmspell/storage/core.so"
    local lua = dest .. "/usr/local/share/lua/5.4/llmspell/storage/init.lua"
    assert.is_truthy(io.open(so), so)
    assert.is_truthy(io.open(lua), lua)
    code, out = run(string.format(
      "cd / && LUA_PATH='%s/usr/local/share/lua/5.4/?.lua;%s/usr/local/share/lua/5.4/?/init.lua' "
      .. "LUA_CPATH='%s/usr/local/lib/lua/5.4/?.so' lua5.4 -e "
      .. "'local s = require \"llmspell.storage\"; local db = s.open(\"memory\"); "
      .. "db:set(\"a\", \"b\"); "
      .. "io.write(db:get(\"a\"), package.searchpath(\"llmspell.storage\", package.path))'",
      dest, dest, dest))
    assert.equal(0, code, out)
    assert.matches("^b" .. dest:gsub("%p", "%%%0"), out)
    -- the modules of subfolders too (llmspell.storage.migrate and its parts)
    code, out = run(string.format(
      "cd / && LUA_PATH='%s/usr/local/share/lua/5.4/?.lua;%s/usr/local/share/lua/5.4/?/init.lua' "
      .. "LUA_CPATH='%s/usr/local/lib/lua/5.4/?.so' lua5.4 -e "
      .. "'local m = require \"llmspell.storage.migrate\"; "
      .. "io.write(type(m.copy), package.searchpath(\"llmspell.storage.migrate.files\", "
      .. "package.path))'", dest, dest, dest))
    assert.equal(0, code, out)
    assert.matches("^function" .. dest:gsub("%p", "%%%0")
                   .. "/usr/local/share/lua/5%.4/llmspell/storage/migrate/files%.lua$", out)
    -- uninstall removes it all, leaving no empty llmspell/ folder
    code, out = run("make -s uninstall PREFIX=/usr/local DESTDIR=" .. dest)
    assert.equal(0, code, out)
    local p = assert(io.popen("find '" .. dest .. "' -name 'llmspell*'"))
    local left = p:read("a")
    p:close()
    assert.equal("", left)
    os.execute("rm -rf '" .. dest .. "'")
  end)

  it("lists every C source in the rockspec, and passes luarocks lint", function()
    local f = assert(io.open("rockspec/llmspell-storage-scm-1.rockspec"))
    local spec = f:read("a")
    f:close()
    local p = assert(io.popen("find csrc -name '*.c'"))
    local n = 0
    for file in p:lines() do
      n = n + 1
      assert.matches('"' .. file .. '"', spec, 1, true)
    end
    p:close()
    assert.is_true(n >= 8)
    -- every Lua module, in subfolders too, under its module name; and
    -- every module the rockspec names exists
    p = assert(io.popen("find lua/llmspell -name '*.lua'"))
    local files = 0
    for file in p:lines() do
      files = files + 1
      local mod = file:match("^lua/(.*)%.lua$"):gsub("/init$", ""):gsub("/", ".")
      assert.matches('["' .. mod .. '"] = "' .. file .. '"', spec, 1, true)
    end
    p:close()
    assert.is_true(files >= 10)
    local listed = 0
    for mod, file in spec:gmatch('%["(llmspell[%w_.]*)"%] = "(lua/[^"]+)"') do
      listed = listed + 1
      local fh = io.open(file)
      assert.is_truthy(fh, mod .. ": " .. file)
      if fh then fh:close() end
    end
    assert.equal(files, listed)
    local code, out = run("luarocks lint rockspec/llmspell-storage-scm-1.rockspec")
    assert.equal(0, code, out)
  end)

  it("runs every other example", function()
    for _, ex in ipairs { "tenants", "cached_reads", "rag" } do
      local code, out = run(helpers.lua_command("examples/" .. ex .. ".lua"), true)
      assert.equal(0, code, ex .. ": " .. out)
      assert.is_true(#out > 0, ex .. " printed nothing")
    end
    local code, out = run(helpers.lua_command("examples/migrate_sqlite_to_postgres.lua "
                                              .. "'" .. helpers.pg_url() .. "'"), true)
    assert.equal(0, code, out)
  end)

  it("runs the quickstart example", function()
    local code, out = run(helpers.lua_command("examples/quickstart.lua"), true)
    assert.equal(0, code, out)
    assert.matches("get user:1      -> {\"name\":\"Ada\"}", out, 1, true)
    assert.matches("otp after 0.3 s -> nil", out, 1, true)
    assert.matches("reopened        -> ", out, 1, true)
  end)
end)
