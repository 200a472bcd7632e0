-- run.lua — the distributed tests (tests/mpi/test_*.lua, or the files given) on every rank:
--   mpirun -n 2 build/qd tests/mpi/run.lua     (tests/mpi/run.sh has the mpirun options)
-- Each rank runs every check; the counts are added over the ranks (qd.mpi.allreduce) and
-- rank 0 prints "N passed, N failed" (a failing rank's FAIL lines go to its stderr).
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/../lua/?.lua;" .. dir .. "/?.lua;" .. package.path
local T = require "testlib"
local qd = require "qd"

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
      io.stderr:write("FAIL " .. f .. " (rank " .. qd.mpi.rank .. "): " .. tostring(e) .. "\n")
    end
  end
  local c = qd.mpi.allreduce({ T.passed - before_p, T.failed - before_f })
  print(string.format("%-40s %d passed, %d failed", f:match("[^/]*$"), c[1], c[2]))
end
local c = qd.mpi.allreduce({ T.passed, T.failed })
print(string.format("%d passed, %d failed (%d ranks)", c[1], c[2], qd.mpi.size))
os.exit(c[2] == 0 and 0 or 1)
