-- run.lua — the distributed tests (tests/mpi/test_*.lua, or the files given) on every rank:
--   mpirun -n 2 build/qd tests/mpi/run.lua     (tests/mpi/run.sh has the mpirun options)
-- Each rank runs every check; the counts are added over the ranks (qd.mpi.allreduce) and
-- rank 0 prints "N passed, N failed" (a failing rank's FAIL lines go to its stderr).
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/../lua/?.lua;" .. dir .. "/?.lua;" .. package.path
local qd = require "qd"
require("testlib").run_files(dir, arg, {
  reduce = function(p, f)
    local c = qd.mpi.allreduce({ p, f })
    return c[1], c[2]
  end,
  tag = " (rank " .. qd.mpi.rank .. ")",
  suffix = " (" .. qd.mpi.size .. " ranks)",
})
