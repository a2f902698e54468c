#!/usr/bin/env lua5.4
-- Rewrites the C source list of rockspec/llmspell-storage-scm-1.rockspec
-- from the files under csrc/ (run after adding, moving or removing one;
-- spec/packaging_spec.lua checks the list is complete).
local path = "rockspec/llmspell-storage-scm-1.rockspec"
local p = assert(io.popen("find csrc -name '*.c' | LC_ALL=C sort"))
local files = {}
for f in p:lines() do files[#files + 1] = '"' .. f .. '"' end
p:close()
local lines, line = {}, "           "
for _, f in ipairs(files) do
  if #line + #f + 2 > 95 then
    lines[#lines + 1] = line
    line = "           "
  end
  line = line .. " " .. f .. ","
end
lines[#lines + 1] = line
local fh = assert(io.open(path))
local text = fh:read("a")
fh:close()
local new, n = text:gsub("(sources = {\n).-(\n%s*},\n%s*defines)", function(a, b)
  return a .. table.concat(lines, "\n") .. b
end)
assert(n == 1, "sources list not found in " .. path)
fh = assert(io.open(path, "w"))
fh:write(new)
fh:close()
