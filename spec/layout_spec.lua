--- The house rules of the C tree (DESIGN "Shape"), checked so they hold:
-- one folder per layer, one .h per .c, no Lua below csrc/lua/, no include
-- cycle, files and functions of a readable size, and a test suite that
-- needs nothing beside the repository.
local ctest = require "spec.support.ctest"

local ROOT = ctest.root
local MAX_FILE_LINES = 900
local MAX_FUNCTION_LINES = 80
local LAYERS = { "base", "value", "vector", "backend", "backends/memory", "backends/sqlite",
                 "backends/postgres", "collection", "lua" }

local function lines_of(path)
  local f = assert(io.open(ROOT .. "/" .. path))
  local t = {}
  for line in f:lines() do t[#t + 1] = line end
  f:close()
  return t
end

local function c_files(ext)
  local out = {}
  local p = assert(io.popen("cd " .. ctest.quote(ROOT) .. " && find csrc -name '*." .. ext
                            .. "' | LC_ALL=C sort"))
  for f in p:lines() do out[#out + 1] = f end
  p:close()
  return out
end

-- The csrc-relative headers a file includes with "...".
local function includes(path)
  local out = {}
  for _, line in ipairs(lines_of(path)) do
    local h = line:match('^%s*#%s*include%s+"([^"]+)"')
    if h then out[#out + 1] = h end
  end
  return out
end

describe("the C tree", function()
  it("has one folder per layer and per backend, and nothing at the top", function()
    for _, f in ipairs(c_files("[ch]")) do
      local dir = f:match("^csrc/(.+)/[^/]+$")
      assert.is_truthy(dir, f .. " lies directly in csrc/")
      local known = false
      for _, l in ipairs(LAYERS) do known = known or dir == l end
      assert.is_true(known, f .. " is outside the layers of DESIGN \"Shape\"")
    end
  end)

  it("has a header for every source file", function()
    for _, f in ipairs(c_files("c")) do
      local h = f:gsub("%.c$", ".h")
      local fh = io.open(ROOT .. "/" .. h)
      assert.is_truthy(fh, f .. " has no " .. h)
      if fh then fh:close() end
    end
  end)

  it("keeps Lua out of the layers below csrc/lua", function()
    for _, f in ipairs(c_files("[ch]")) do
      if not f:match("^csrc/lua/") then
        for _, line in ipairs(lines_of(f)) do
          local h = line:match('^%s*#%s*include%s*[<"]([%w_]+)%.h[>"]')
          assert.is_falsy(h == "lua" or h == "lauxlib" or h == "lualib" or h == "luaconf",
                          f .. " includes a Lua header: " .. line)
          assert.is_falsy(line:match('^%s*#%s*include%s*"lua/'),
                          f .. " includes a file of csrc/lua: " .. line)
        end
      end
    end
  end)

  it("has no include cycle between headers", function()
    local deps = {}
    for _, f in ipairs(c_files("h")) do
      deps[f:gsub("^csrc/", "")] = includes(f)
    end
    local state = {}
    local function visit(h, path)
      if state[h] == "done" or not deps[h] then return end
      assert.is_true(state[h] ~= "active", "include cycle: " .. table.concat(path, " -> "))
      state[h] = "active"
      for _, d in ipairs(deps[h]) do
        path[#path + 1] = d
        visit(d, path)
        path[#path] = nil
      end
      state[h] = "done"
    end
    for h in pairs(deps) do visit(h, { h }) end
  end)

  it("has no cycle of calls between files", function()
    -- From the objects `make` built: file A depends on file B when A uses
    -- a symbol B defines. Types shared through headers do not count; calls
    -- and data do.
    local obj
    for _, d in ipairs { "build/obj", "build-asan/obj" } do
      local fh = io.open(ROOT .. "/" .. d .. "/base/buf.o")
      if fh then
        fh:close()
        obj = obj or d
      end
    end
    assert.is_truthy(obj, "no build under build/obj or build-asan/obj: run make first")
    -- Only the objects of today's sources: a build directory may hold
    -- objects of files since moved.
    local objs = {}
    for _, f in ipairs(c_files("c")) do
      objs[#objs + 1] = ctest.quote("./" .. f:gsub("^csrc/", ""):gsub("%.c$", ".o"))
    end
    local p = assert(io.popen("cd " .. ctest.quote(ROOT .. "/" .. obj) .. " && nm -A "
                              .. table.concat(objs, " ")))
    local defined, used = {}, {}
    for line in p:lines() do
      local file, kind, sym = line:match("^%./(.-)%.o:%s*%x*%s+(%a)%s+(%S+)$")
      if file then
        if kind == "U" then
          used[file] = used[file] or {}
          used[file][#used[file] + 1] = sym
        elseif kind:match("[TDBR]") then
          defined[sym] = file
        end
      end
    end
    p:close()
    local deps = {}
    for file, syms in pairs(used) do
      deps[file] = {}
      for _, sym in ipairs(syms) do
        local d = defined[sym]
        if d and d ~= file then deps[file][d] = sym end
      end
    end
    local state = {}
    local function visit(m, path)
      if state[m] == "done" then return end
      assert.is_true(state[m] ~= "active", "call cycle: " .. table.concat(path, " -> "))
      state[m] = "active"
      for d, sym in pairs(deps[m] or {}) do
        path[#path + 1] = d .. " (" .. sym .. ")"
        visit(d, path)
        path[#path] = nil
      end
      state[m] = "done"
    end
    for m in pairs(deps) do visit(m, { m }) end
  end)

  it("keeps files under " .. MAX_FILE_LINES .. " lines and functions under "
     .. MAX_FUNCTION_LINES, function()
    for _, f in ipairs(c_files("[ch]")) do
      local t = lines_of(f)
      assert.is_true(#t <= MAX_FILE_LINES, f .. " has " .. #t .. " lines")
      local i = 1
      while i <= #t do
        local line = t[i]
        -- A function definition: starts at column 0 and opens its body at
        -- the end of the line; its body ends at a "}" in column 0.
        if line:match("^[%a_][^;=]*%)%s*{%s*$") and not line:match("^struct")
            and not line:match("^typedef") then
          local j = i + 1
          while j <= #t and t[j] ~= "}" do j = j + 1 end
          assert.is_true(j - i <= MAX_FUNCTION_LINES,
                         string.format("%s:%d: a function of %d lines", f, i, j - i))
          i = j
        end
        i = i + 1
      end
    end
  end)
end)

describe("the test suite", function()
  it("needs nothing beside the repository", function()
    local p = assert(io.popen("cd " .. ctest.quote(ROOT)
                              .. " && grep -rln '\\.\\./shared' spec .ci Makefile"))
    local found = {}
    for f in p:lines() do
      if f ~= "spec/layout_spec.lua" then found[#found + 1] = f end
    end
    p:close()
    assert.same({}, found)
  end)
end)
