-- run.lua — runs tests/lua/test_*.lua (or the files given as arguments) with qd.
-- Usage: build/qd tests/lua/run.lua [files...]
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local T = require "testlib"

local files = {}
for i = 1, #arg do files[#files + 1] = arg[i] end
if #files == 0 then
  local p = io.popen('ls "' .. dir .. '"/test_*.lua 2>/dev/null')
  for f in p:lines() do files[#files + 1] = f end
  p:close()
end
table.sort(files)
for _, f in ipairs(files) do
  local before_p, before_f = T.passed, T.failed
  local chunk, err = loadfile(f)
  if not chunk then
    T.failed = T.failed + 1
    io.stderr:write("FAIL loading " .. f .. ": " .. err .. "\n")
  else
    T.current = f
    local ok, e = xpcall(chunk, debug.traceback)
    if not ok then
      T.failed = T.failed + 1
      io.stderr:write("FAIL " .. f .. ": " .. tostring(e) .. "\n")
    end
  end
  print(string.format("%-40s %d passed, %d failed", f:match("[^/]*$"), T.passed - before_p, T.failed - before_f))
end
print(string.format("%d passed, %d failed", T.passed, T.failed))
os.exit(T.failed == 0 and 0 or 1)
