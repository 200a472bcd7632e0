-- sweep_qcbm.lua — 20 small QCBM trainings (seeds 1..10 x n = 3, 4; GHZ target, MMD loss)
-- as one qd.sweep; the record's `results` are the same on 1 rank (without MPI) and on P
-- ranks (tests/mpi/run.sh compares them).
--   qd tests/mpi/sweep_qcbm.lua OUTDIR [seeds = 10] [iterations = 10]   (bigger: docs/scaling.md)
local qd = require "qd"
local qcbm = require "qd.protocols.qcbm"
local out = assert(arg[1], "usage: qd tests/mpi/sweep_qcbm.lua OUTDIR")
local seeds = {}
for s = 1, tonumber(arg[2]) or 10 do seeds[s] = s end
local iterations = tonumber(arg[3]) or 10
local t0 = qd.clock()
local res, dir = qd.sweep {
  name = "sweep_qcbm", out = out, quiet = true,
  grid = { seed = seeds, n = { 3, 4 } },
  run = function(cfg, k)
    -- each point's own record goes to a scratch directory: the sweep's record holds results
    local r = qcbm.train { name = "qcbm_point", n = cfg.n, data = "ghz", loss = "mmd", sigma = 1,
                           ansatz = "ry_rz_cz", L = 2, iterations = iterations, lr = 0.05,
                           shots = 0,
                           grad = "auto", seed = cfg.seed, quiet = true,
                           out = qd.mpi.scratch_dir() .. "/point" .. k }
    return { kl = r.metrics.kl, mmd = r.metrics.mmd, loss = r.metrics.loss }
  end,
}
print(string.format("%d points on %d ranks; record %s", #res, qd.mpi.size, dir))
print(string.format("wall %.2f s", qd.clock() - t0))
