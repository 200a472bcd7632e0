-- mpi_pingpong.lua — what a message between two ranks costs through qd.mpi.send/recv (Lua
-- values, serialised): round-trip time for sizes 8 B .. 64 MiB, the latency and bandwidth the
-- model of docs/scaling.md takes. Two ranks:
--   mpirun -n 2 build-mpi/qd --threads 1 bench/mpi_pingpong.lua [reps = 20]
local qd = require "qd"
local mpi = qd.mpi
assert(mpi.size == 2, "run on 2 ranks")
local reps = tonumber(arg[1]) or 20
if mpi.rank == 0 then
  print(string.format("mpi_pingpong: %s; %d round trips per size (median)", mpi.library, reps))
  print(string.format("  %12s %14s %14s", "bytes", "one way us", "MB/s"))
end
local size = 8
while size <= 64 * 2 ^ 20 do
  local msg = string.rep("x", size)
  local times = {}
  for r = 1, reps do
    mpi.barrier()
    local t0 = qd.clock()
    if mpi.rank == 0 then
      mpi.send(msg, 1, 1)
      mpi.recv(1, 1)
    else
      local m = mpi.recv(0, 1)
      mpi.send(m, 0, 1)
    end
    times[r] = (qd.clock() - t0) / 2
  end
  table.sort(times)
  local t = times[(reps + 1) // 2]
  if mpi.rank == 0 then
    print(string.format("  %12d %14.1f %14.1f", size, 1e6 * t, size / t / 1e6))
  end
  size = size * 8
end
