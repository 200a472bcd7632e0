-- a QuDDPM-style training step on an ensemble in blocks (qd.mpi.grad with qd.mpi.mmd):
-- forward on the blocks with mid-circuit measurement (members' global substreams), the
-- distributed MMD, the backward pass on the blocks, the per-member gradient terms added in
-- the one-process order, Adam — the loss, gradient, outputs and parameters equal c:grad on
-- the whole ensemble bit for bit, on every rank.
local T = require "testlib"
local qd = require "qd"
local optim = require "qd.optim"
local mpi = qd.mpi

local function same_vec(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local same_ens = T.same_ensemble

local function everywhere(ok) return mpi.allreduce(ok and 0 or 1, "max") == 0 end

-- the denoiser of QuDDPM (arXiv 2310.05866): n data qubits, na ancillas measured
local function setup(n, na, L, N, M)
  local c = qd.ansatz.quddpm(n, L, { ancillas = na })
  local X = qd.ensemble.haar(n, N, qd.rng(21)):embed(na)
  local S = qd.ensemble.haar(n, M, qd.rng(22))
  local theta = qd.rng(23):normal(0, 1, c:nparams())
  return c, X, S, theta
end

T.test("one gradient: loss, dL/dtheta, output and outcomes equal c:grad", function()
  for _, sz in ipairs { { 1, 1, 4, 20, 20 }, { 2, 1, 3, 7, 9 }, { 2, 2, 2, 33, 16 } } do
    local c, X, S, theta = setup(table.unpack(sz))
    local what = string.format(" (n = %d, na = %d, N = %d)", sz[1], sz[2], sz[4])
    local L1, g1, out1, oc1 = c:grad(X, theta, function(o)
      local v, G = qd.loss.mmd(o, S, { grad = true })
      return v, G
    end, { rng = qd.rng(5) })
    local Sb = mpi.scatter(S)
    local Xb, first = mpi.scatter(X)
    local L, g, out, oc = mpi.grad(c, Xb, theta, function(o)
      local v, G = mpi.mmd(o, Sb, { grad = true })
      return v, G
    end, { rng = qd.rng(5) })
    T.ok(everywhere(L == L1), "loss" .. what)
    T.ok(everywhere(same_vec(g, g1)), "dL/dtheta bit for bit" .. what)
    T.ok(everywhere(same_ens(mpi.allgather_ensemble(out), out1)), "outputs" .. what)
    local same = true
    local r, m = oc:shape()
    for k = 1, r do
      for i = 1, m do
        if oc:get(k, i) ~= oc1:get(first + k - 1, i) then same = false end
      end
    end
    T.ok(everywhere(same), "outcomes" .. what)
  end
end)

T.test("the parameter gradient against central differences", function()
  local c, X, S, theta = setup(1, 1, 3, 12, 10)
  local Xb, Sb = mpi.scatter(X), mpi.scatter(S)
  local function loss(o) local v, G = mpi.mmd(o, Sb, { grad = true }) return v, G end
  local _, g = mpi.grad(c, Xb, theta, loss, { rng = qd.rng(6) })
  local h = 1e-6
  for _, k in ipairs { 1, 4, c:nparams() } do
    local tp, tm = theta:copy(), theta:copy()
    tp[k], tm[k] = theta[k] + h, theta[k] - h
    -- the same generator state: the same outcomes (held fixed by the gradient)
    local Lp = mpi.grad(c, Xb, tp, loss, { rng = qd.rng(6) })
    local Lm = mpi.grad(c, Xb, tm, loss, { rng = qd.rng(6) })
    T.near((Lp - Lm) / (2 * h), g[k], 1e-6, "slot " .. k)
  end
  T.ok(math.abs(g[1]) + math.abs(g[4]) > 1e-4, "a gradient that is not zero")
end)

T.test("Adam epochs on blocks equal the one-process training", function()
  local c, X, S, theta0 = setup(2, 1, 3, 24, 24)
  local epochs = 5
  local function train(feval_of)
    local theta, state, losses = theta0:copy(), { lr = 0.05 }, {}
    for e = 1, epochs do
      local _, L = optim.adam(feval_of(qd.rng(100 + e)), theta, state)
      losses[e] = L
    end
    return theta, losses
  end
  local th1, l1 = train(function(r)
    return function(p)
      local L, g = c:grad(X, p, function(o)
        local v, G = qd.loss.mmd(o, S, { grad = true })
        return v, G
      end, { rng = r })
      return L, g
    end
  end)
  local Xb, Sb = mpi.scatter(X), mpi.scatter(S)
  local th, l = train(function(r)
    return function(p)
      local L, g = mpi.grad(c, Xb, p, function(o)
        local v, G = mpi.mmd(o, Sb, { grad = true })
        return v, G
      end, { rng = r })
      return L, g
    end
  end)
  T.ok(everywhere(same_vec(th, th1)), "parameters after " .. epochs .. " epochs, bit for bit")
  T.ok(everywhere(same_vec(l, l1)), "losses per epoch")
  T.ok(l[epochs] < l[1], "the loss went down")
end)

T.test("errors", function()
  local c, X = setup(1, 1, 2, 8, 8)
  local Xb = mpi.scatter(X)
  local ok_loss = function(o) return 0, qd.ensemble(o.n, #o) end
  T.raises(function() mpi.grad(c, Xb, { 1 }, ok_loss) end, "parameters expected")
  T.raises(function() mpi.grad(c, Xb, qd.vector(c:nparams()), ok_loss, { rngs = 1 }) end, "rngs")
  T.raises(function() mpi.grad(c, qd.ensemble.haar(3, 4, qd.rng(1)), qd.vector(c:nparams()),
                               ok_loss) end, "members of 2 qubits")
  T.raises(function() mpi.grad(c, Xb, qd.vector(c:nparams()), function() return 0, 1 end) end,
           "second result")
  -- a parameterised 2-qubit gate sums inside the generic backward pass: refused
  local c2 = qd.circuit(2):rzz(0, 1, "a"):measure({ 0 }, { discard = true })
  T.raises(function() mpi.grad(c2, qd.ensemble.haar(2, 4, qd.rng(1)), { 0.3 }, ok_loss) end,
           "lane pass")
end)
