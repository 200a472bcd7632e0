-- qd.caller — where an error in qd's Lua library should point: outside() is the level for
-- error(msg, level) of the nearest caller outside the library (every file under the
-- directory holding qd/), so an argument error raised however deep in a library module
-- points at the user's line. No dependencies: any library module may require it.
--   local outside = require("qd.caller").outside
--   error("bad argument #1 to 'f' (...)", outside())
local M = {}

local LIB = debug.getinfo(1, "S").source:match("^(@.*/)qd/[^/]*$")

function M.outside()
  local l = 3   -- getinfo level of the caller of the function that calls outside()
  while true do
    local info = debug.getinfo(l, "S")
    if not info then return 0 end
    if not (LIB and info.source:sub(1, #LIB) == LIB) then return l - 1 end
    l = l + 1
  end
end

return M
