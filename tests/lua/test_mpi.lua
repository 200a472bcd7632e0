-- qd.mpi, qd.sweep and qd.DistState on one rank (the build without MPI, or any build run
-- without mpirun): the distributed tests of tests/mpi, which also run under mpirun -n 2.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
for _, f in ipairs { "test_collectives.lua", "test_sweep.lua", "test_dstate.lua",
                     "test_ensemble.lua", "test_losses.lua", "test_training.lua" } do
  assert(loadfile(dir .. "/../mpi/" .. f))()
end
