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

  it("uninstalls only its own files, leaving another package's under llmspell/", function()
    local dest = helpers.tmpname("-destdir")
    local q = helpers.shell_quote
    finally(function() run("rm -rf " .. q(dest)) end)
    local code, out = run("make -s install PREFIX=/usr/local DESTDIR=" .. q(dest))
    assert.equal(0, code, out)
    local share = dest .. "/usr/local/share/lua/5.4/llmspell"
    local lib = dest .. "/usr/local/lib/lua/5.4/llmspell"
    -- modules of other packages, beside ours and inside our folder
    for _, f in ipairs { share .. "/other.lua", share .. "/storage/plugin.lua",
                         lib .. "/other/core.so" } do
      code, out = run("mkdir -p " .. q(f:match("^(.*)/")) .. " && touch " .. q(f))
      assert.equal(0, code, out)
    end
    code, out = run("make -s uninstall PREFIX=/usr/local DESTDIR=" .. q(dest))
    assert.equal(0, code, out)
    local _, left = run("cd " .. q(dest) .. " && find . -path '*llmspell*' | LC_ALL=C sort")
    assert.equal(table.concat({
      "./usr/local/lib/lua/5.4/llmspell",
      "./usr/local/lib/lua/5.4/llmspell/other",
      "./usr/local/lib/lua/5.4/llmspell/other/core.so",
      "./usr/local/share/lua/5.4/llmspell",
      "./usr/local/share/lua/5.4/llmspell/other.lua",
      "./usr/local/share/lua/5.4/llmspell/storage",
      "./usr/local/share/lua/5.4/llmspell/storage/plugin.lua",
    }, "\n") .. "\n", left)
  end)

  it("builds and installs with `luarocks --lua-version 5.4 make` as it is", function()
    -- in a copy of the sources: luarocks leaves its objects beside them
    local q = helpers.shell_quote
    local work = helpers.tmpname("-luarocks")
    local src, tree = work .. "/src", work .. "/tree"
    finally(function() run("rm -rf " .. q(work)) end)
    local code, out = run("mkdir -p " .. q(src) .. " && cp -r csrc lua bin rockspec README.md "
                          .. q(src))
    assert.equal(0, code, out)
    -- no PGSQL_INCDIR or other variable: the rockspec finds Debian's
    -- /usr/include/postgresql/libpq-fe.h itself
    code, out = run("cd " .. q(src) .. " && env -u PGSQL_INCDIR -u PGSQL_DIR "
                    .. "luarocks --lua-version 5.4 make --tree " .. q(tree))
    assert.equal(0, code, out)
    assert.matches("is now installed", out)
    -- the module from that tree, and nothing else
    code, out = run(string.format(
      "cd / && env -u LUA_PATH_5_4 -u LUA_CPATH_5_4 LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s",
      q(tree .. "/share/lua/5.4/?.lua;" .. tree .. "/share/lua/5.4/?/init.lua"),
      q(tree .. "/lib/lua/5.4/?.so"),
      q("local s = require 'llmspell.storage'; local db = s.open('memory'); db:set('a', 'b'); "
        .. "local c = db:create_collection('c', { dimension = 2 }); "
        .. "c:add { id = 'x', vector = { 1, 0 } }; "
        .. "io.write(db:get('a'), ' ', c:count(), ' ', "
        .. "package.searchpath('llmspell.storage.core', package.cpath), ' ', "
        .. "type(require('llmspell.storage.migrate').copy))")), true)
    assert.equal(0, code, out)
    assert.equal("b 1 " .. tree .. "/lib/lua/5.4/llmspell/storage/core.so function", out)
    -- the command, installed in the tree's bin/
    code, out = run("cd / && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 "
                    .. q(tree .. "/bin/llmspell-storage") .. " --version", true)
    assert.equal(0, code, out)
    assert.matches("^llmspell%-storage %(llmspell%.storage %d+%.%d+%.%d+%)\n$", out)
  end)

  it("declares every library its Lua modules need", function()
    -- a module required outside pcall is a dependency of the rock; the
    -- specs' own are test dependencies. Map module names to rock names.
    local ROCK = { cjson = "lua-cjson", system = "luasystem", busted = "busted",
                   luassert = "busted" }
    local f = assert(io.open("rockspec/llmspell-storage-scm-1.rockspec"))
    local text = f:read("a")
    f:close()
    local env = {}
    assert(load(text, "rockspec", "t", env))()
    local function declared(list, rock)
      for _, d in ipairs(list or {}) do
        if d:match("^[%w_.-]+") == rock then return true end
      end
      return false
    end
    local function required(dirs, hard_only)
      local mods = {}
      local p = assert(io.popen("find " .. dirs .. " -name '*.lua' -o -name 'llmspell-storage'"))
      for file in p:lines() do
        local fh = assert(io.open(file))
        for line in fh:lines() do
          for m in line:gmatch("require%s*%(?%s*[\"']([%w_.]+)[\"']") do
            local optional = line:match("pcall%s*%(%s*require")
            if not m:match("^llmspell%.") and not m:match("^spec%.")
                and not (hard_only and optional) then
              mods[m:match("^[^.]+")] = file
            end
          end
        end
        fh:close()
      end
      p:close()
      return mods
    end
    for mod, file in pairs(required("lua bin", true)) do
      assert.is_truthy(ROCK[mod], file .. " requires " .. mod .. ": name its rock here")
      assert.is_true(declared(env.dependencies, ROCK[mod]),
                     file .. " requires " .. mod .. ", not in the rockspec's dependencies")
    end
    for mod, file in pairs(required("spec", false)) do
      assert.is_truthy(ROCK[mod], file .. " requires " .. mod .. ": name its rock here")
      assert.is_true(declared(env.test_dependencies, ROCK[mod]),
                     file .. " requires " .. mod .. ", not in the rockspec's test_dependencies")
    end
    -- lua-cjson is the specs' (their JSON reader), never the library's
    assert.is_false(declared(env.dependencies, "lua-cjson"))
  end)

  it("compiles every source with -O1, -O3 and -Os under -Werror", function()
    -- a user's `make CFLAGS=...` must build: each level finds other
    -- may-be-uninitialised paths. The objects only, each in its own BUILD.
    local q = helpers.shell_quote
    for _, level in ipairs { "-O1", "-O3", "-Os" } do
      local dir = helpers.tmpname("-build" .. level)
      local code, out = run(string.format("make -s -j2 BUILD=%s WERROR=-Werror CFLAGS=%s objects",
                                          q(dir), level))
      run("rm -rf " .. q(dir))
      assert.equal(0, code, level .. ":\n" .. out)
    end
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
