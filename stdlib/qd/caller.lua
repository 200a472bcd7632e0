-- qd.caller — where an error in qd's Lua library should point: outside() is the level for
-- error(msg, level) of the nearest caller outside the library (every file under the
-- directory holding qd/), so an argument error raised however deep in a library module
-- points at the user's line. No dependencies: any library module may require it.
--   local outside = require("qd.caller").outside
--   error("bad argument #1 to 'f' (...)", outside())
--   require("qd.caller").argerror("f", 1, "...")   -- the same, in the bindings' wording
--   require("qd.caller").check_options(opts, {a = true}, 2, "f")   -- unknown keys are errors
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

-- argerror(fname, n, msg): raises "bad argument #n to 'fname' (msg)" at the user's line, the
-- wording of the C bindings' luaL_argerror
function M.argerror(fname, n, msg)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), M.outside())
end

-- check_options(o, allowed, n, fname): o (nil, or a table whose keys are all in the set
-- allowed) for argument n of fname; returns o or {}. Unknown keys are errors, as in the
-- bindings (qdL_checkoptions)
function M.check_options(o, allowed, n, fname)
  if o == nil then return {} end
  if type(o) ~= "table" then
    local mt = getmetatable(o)
    local got = type(mt) == "table" and type(mt.__name) == "string" and mt.__name or type(o)
    M.argerror(fname, n, "options table expected, got " .. got)
  end
  for key in pairs(o) do
    if not allowed[key] then M.argerror(fname, n, "unknown option '" .. tostring(key) .. "'") end
  end
  return o
end

return M
