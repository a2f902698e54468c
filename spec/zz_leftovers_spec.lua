--- The suite's last file (busted runs spec files in name order): no spec
-- leaves a file behind in the suite's temporary directory
-- (spec/support/tmpdir.lua; helpers.tmpname and ctest.temp_dir hand out
-- paths there, and `make test` points TMPDIR at it for child processes).
local tmpdir = require "spec.support.tmpdir"

describe("the test suite", function()
  it("leaves nothing in its temporary directory", function()
    local left = tmpdir.leftovers()
    assert.are.same({}, left, "left in " .. tmpdir.dir .. ":\n  " .. table.concat(left, "\n  "))
    if tmpdir.owned then os.remove(tmpdir.dir) end
  end)
end)
