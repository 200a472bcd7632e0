-- mpi_training.lua — wall time of QuDDPM-style training epochs (c:grad with the MMD, Adam)
-- on one process against the same epochs on an ensemble in blocks over the ranks
-- (qd.mpi.grad with qd.mpi.mmd), and the MMD with gradients alone both ways; prints one
-- JSON line on rank 0 (the parameters' first entry and the last loss, to compare the bits).
-- Not a test (timing): docs/scaling.md quotes it.
--   qd mpi_training.lua [n] [na] [L] [N] [epochs]
--   mpirun -n 2 ... qd --threads 1 mpi_training.lua ...
local qd = require "qd"
local optim = require "qd.optim"
local mpi = qd.mpi
local n, na, L, N, epochs = tonumber(arg[1] or 4), tonumber(arg[2] or 1), tonumber(arg[3] or 6),
  tonumber(arg[4] or 2000), tonumber(arg[5] or 20)
n, na, L, N, epochs = math.tointeger(n), math.tointeger(na), math.tointeger(L), math.tointeger(N),
  math.tointeger(epochs)
local c = qd.ansatz.quddpm(n, L, { ancillas = na })
local X = qd.ensemble.haar(n, N, qd.rng(21)):embed(na)
local S = qd.ensemble.haar(n, N, qd.rng(22))
local theta0 = qd.rng(23):normal(0, 1, c:nparams())

local function train(feval_of)
  local theta, state = theta0:copy(), { lr = 0.02 }
  local L_last
  mpi.barrier()
  local t0 = qd.clock()
  for e = 1, epochs do
    local _, Lv = optim.adam(feval_of(qd.rng(100 + e)), theta, state)
    L_last = Lv
  end
  local t = qd.clock() - t0
  return theta, L_last, mpi.allreduce(t, "max")
end

local out = { n = n, na = na, L = L, N = N, epochs = epochs, ranks = mpi.size }
if mpi.size == 1 then
  local th, Lv, t = train(function(r)
    return function(p)
      local Lx, g = c:grad(X, p, function(o)
        local v, G = qd.loss.mmd(o, S, { grad = true })
        return v, G
      end, { rng = r })
      return Lx, g
    end
  end)
  out.seconds, out.loss = t, Lv
  out.theta1 = th[1]
end
local Xb, Sb = mpi.scatter(X), mpi.scatter(S)
local th, Lv, t = train(function(r)
  return function(p)
    local Lx, g = mpi.grad(c, Xb, p, function(o)
      local v, G = mpi.mmd(o, Sb, { grad = true })
      return v, G
    end, { rng = r })
    return Lx, g
  end
end)
out.blocks_seconds, out.blocks_loss = t, Lv
out.blocks_theta1 = th[1]
out.sharded = select(4, mpi.mmd(Sb, Sb, { grad = true }))
-- the MMD with gradients alone on the inputs and targets (best of 5 x 20 calls, ms per call)
local Y = qd.ensemble.haar(n, N, qd.rng(24))
local Yb = mpi.scatter(Y)
local function best_ms(f)
  local best = math.huge
  for _ = 1, 5 do
    mpi.barrier()
    local t0 = qd.clock()
    for _ = 1, 20 do f() end
    best = math.min(best, (qd.clock() - t0) / 20)
  end
  return mpi.allreduce(best * 1e3, "max")
end
if mpi.size == 1 then out.mmd_ms = best_ms(function() qd.loss.mmd(S, Y, { grad = true }) end) end
out.blocks_mmd_ms = best_ms(function() mpi.mmd(Sb, Yb, { grad = true }) end)
print(qd.json and qd.json.encode and qd.json.encode(out) or require("qd.json").encode(out))
