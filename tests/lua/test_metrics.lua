-- test_metrics.lua — qd.metrics: memorisation, convergence and latent recovery against naive
-- per-pair references (ensembles and real samples), known cases, the linear-testbed theory
-- (BBP values, Marchenko-Pastur moments, limits), and the error messages.
local T = require "testlib"
local qd = require "qd"
local metrics = qd.metrics

local function randmat(rng, d, N)
  local X = qd.matrix(d, N)
  for j = 1, N do for i = 1, d do X:set(i, j, rng:normal()) end end
  return X
end

-- naive squared cosine of columns a of A and b of B
local function cos2(A, a, B, b)
  local d = A:shape()
  local s, na, nb = 0, 0, 0
  for i = 1, d do
    local x, y = A:get(i, a), B:get(i, b)
    s, na, nb = s + x * y, na + x * x, nb + y * y
  end
  return s * s / (na * nb)
end

T.test("metrics: memorisation of ensembles = mean of the naive nearest-member fidelity", function()
  local r = qd.rng(11)
  local G, Tr = qd.ensemble.haar(2, 7, r), qd.ensemble.haar(2, 5, r)
  local m, per, nearest = metrics.memorisation(G, Tr)
  local sum = 0
  for k = 1, 7 do
    local best, bj = -1, 0
    for j = 1, 5 do
      local f = qd.fidelity(G[k], Tr[j])
      if f > best then best, bj = f, j end
    end
    T.near(per[k], best, 1e-12, "per-member maximum")
    T.eq(nearest[k], bj, "nearest training member")
    sum = sum + best
  end
  T.near(m, sum / 7, 1e-12, "mean")
  -- a copy of the training set is memorised completely
  T.near((metrics.memorisation(Tr, Tr)), 1.0, 1e-12, "copies memorise")
  -- a qd.State is one member
  T.near((metrics.memorisation(G[2], Tr)), per[2], 1e-12, "State as one member")
end)

T.test("metrics: memorisation and convergence of real samples = naive squared cosines", function()
  local r = qd.rng(12)
  local A, B = randmat(r, 6, 9), randmat(r, 6, 4)
  local m, per = metrics.memorisation(A, B)
  local sum = 0
  for k = 1, 9 do
    local best = 0
    for j = 1, 4 do best = math.max(best, cos2(A, k, B, j)) end
    T.near(per[k], best, 1e-12, "per-sample maximum")
    sum = sum + best
  end
  T.near(m, sum / 9, 1e-12, "mean")
  local C = randmat(r, 6, 9)
  local q, qper = metrics.convergence(A, C)
  local s2 = 0
  for k = 1, 9 do
    T.near(qper[k], cos2(A, k, C, k), 1e-12, "paired cosine")
    s2 = s2 + qper[k]
  end
  T.near(q, s2 / 9, 1e-12, "convergence mean")
  -- scale invariance: 3 A against A
  T.near((metrics.convergence(A * 3.0, A)), 1.0, 1e-12, "scaled copy converges")
end)

T.test("metrics: convergence of ensembles pairs member k with member k", function()
  local r = qd.rng(13)
  local A, B = qd.ensemble.haar(1, 6, r), qd.ensemble.haar(1, 6, r)
  local q, per = metrics.convergence(A, B)
  local s = 0
  for k = 1, 6 do
    T.near(per[k], qd.fidelity(A[k], B[k]), 1e-12, "paired fidelity")
    s = s + per[k]
  end
  T.near(q, s / 6, 1e-12, "mean")
  T.near((metrics.convergence(A, A)), 1.0, 1e-12, "identical models converge")
end)

T.test("metrics: latent recovery of known average states", function()
  -- {|0>, |0>, |1>}: average diag(2/3, 1/3), top eigenvector |0>
  local E = qd.ensemble.from { qd.state(1, "0"), qd.state(1, "0"), qd.state(1, "1") }
  local Q, v, lam = metrics.latent_recovery(E, qd.state(1, "0"))
  T.near(Q, 1.0, 1e-12, "top eigenvector |0>")
  T.near(lam, 2 / 3, 1e-12, "its eigenvalue")
  T.near(qd.fidelity(v, qd.state(1, "0")), 1.0, 1e-12, "v returned")
  local plus = qd.state(1):h(0)
  T.near((metrics.latent_recovery(E, plus)), 0.5, 1e-12, "|+> overlaps 1/2")
  -- real samples: columns e1, e1, -e1, e2 -> second moment diag(3/4, 1/4, 0)
  local X = qd.matrix { { 1, 1, -1, 0 }, { 0, 0, 0, 1 }, { 0, 0, 0, 0 } }
  local Qr, vr, lr = metrics.latent_recovery(X, qd.vector { 2, 0, 0 })
  T.near(Qr, 1.0, 1e-12, "real: top direction e1 (u need not be unit)")
  T.near(lr, 0.75, 1e-12, "real: eigenvalue")
  T.near(math.abs(vr[1]), 1.0, 1e-12, "real: v = +-e1")
  T.near((metrics.latent_recovery(X, qd.vector { 1, 1, 0 })), 0.5, 1e-12, "real: 45 degrees")
  -- against a naive power iteration on a random ensemble's average state
  local r = qd.rng(14)
  local H = qd.ensemble.haar(2, 9, r)
  local u = qd.haar_state(2, r)
  local rho = H:mean_dm()
  local x = qd.haar_state(2, r)
  for _ = 1, 2000 do
    local amps = {}
    for i = 1, 4 do
      local sr, si = 0, 0
      for j = 1, 4 do
        local ar, ai = rho:get(i, j)
        local br, bi = x:amp(j)
        sr, si = sr + ar * br - ai * bi, si + ar * bi + ai * br
      end
      amps[i] = { sr, si }
    end
    local nn = 0
    for i = 1, 4 do nn = nn + amps[i][1] ^ 2 + amps[i][2] ^ 2 end
    nn = math.sqrt(nn)
    for i = 1, 4 do amps[i] = { amps[i][1] / nn, amps[i][2] / nn } end
    x = qd.state.from(amps)
  end
  T.near((metrics.latent_recovery(H, u)), qd.fidelity(x, u), 1e-8, "vs power iteration")
end)

T.test("metrics.theory: BBP, Marchenko-Pastur moments and limits", function()
  local th = metrics.theory
  T.eq(th.latent_recovery(0.2, 2), 0.0, "below the transition gamma = 1/beta^2 = 0.25")
  T.eq(th.latent_recovery(0.25, 2), 0.0, "at the transition")
  T.near(th.latent_recovery(1, 2), (1 - 1 / 4) / (1 + 1 / 2), 1e-15, "gamma = 1, beta = 2")
  T.near(th.latent_recovery(1e9, 3), 1.0, 1e-8, "infinite data recovers u")
  for _, c in ipairs { 0.3, 1, 2.5 } do
    T.near(th.mp_mean(c, function() return 1 end), 1.0, 1e-6, "MP mass, c = " .. c)
    T.near(th.mp_mean(c, function(l) return l end), 1.0, 1e-6, "MP mean, c = " .. c)
    T.near(th.mp_mean(c, function(l) return l * l end), 1 + c, 1e-6, "MP second moment 1 + c, c = " .. c)
  end
  T.near(th.mp_mean(1, math.sqrt), 8 / (3 * math.pi), 1e-7, "E sqrt(lambda) at c = 1")
  T.near(th.convergence(1), (8 / (3 * math.pi)) ^ 4, 1e-6, "convergence at gamma = 1")
  T.ok(th.convergence(1e4) > 0.999, "convergence -> 1")
  T.ok(th.convergence(0.5) > th.convergence(0.2), "convergence grows with gamma")
  T.eq(th.memorisation(1, 50, qd.rng(1)), 1.0, "one training point is always the nearest")
  -- n = 2: max(B, 1 - B), B ~ Beta(1/2, 1/2): 1/2 + 1/pi
  T.near(th.memorisation(2, 50, qd.rng(2), 40000), 0.5 + 1 / math.pi, 0.01, "n = 2 small-load value")
  T.eq(th.memorisation(60, 50, qd.rng(3)), nil, "no small-load prediction for n > d")
  local f = th.memorisation_floor(100, 200, qd.rng(4), 400)
  T.ok(f > 0.01 and f < 0.1, "floor ~ 2 ln(n) / d: " .. f)
end)

T.test("metrics: the linear testbed at small d follows BBP and the convergence theory", function()
  -- d = 40, gamma = 4, beta = 3: 6 draws of S^(1/2) from n = 160 samples
  local d, n, beta = 40, 160, 3.0
  local r = qd.rng(21)
  local u = qd.vector(d)
  u[1] = 1.0
  local Q, qs = 0, 0
  for _ = 1, 6 do
    local X = randmat(r, d, n)
    for j = 1, n do X:set(1, j, X:get(1, j) * math.sqrt(1 + beta)) end
    Q = Q + metrics.latent_recovery(X, u) / 6
    local Y = randmat(r, d, n)
    for j = 1, n do Y:set(1, j, Y:get(1, j) * math.sqrt(1 + beta)) end
    qs = qs + metrics.latent_recovery(Y, u) / 6
  end
  T.near(Q, metrics.theory.latent_recovery(4, beta), 0.08, "sample top eigenvector vs BBP (d = 40)")
  T.near(qs, metrics.theory.latent_recovery(4, beta), 0.08, "second set")
end)

T.test("metrics: errors name the argument", function()
  local E = qd.ensemble.haar(1, 3, qd.rng(1))
  local E2 = qd.ensemble.haar(2, 3, qd.rng(1))
  local X = qd.matrix(3, 4)
  for i = 1, 3 do for j = 1, 4 do X:set(i, j, i + j) end end
  T.raises(function() metrics.memorisation(1, E) end, "bad argument #1 to 'memorisation' (qd.Ensemble, qd.State or real qd.Matrix")
  T.raises(function() metrics.memorisation(E, "x") end, "bad argument #2 to 'memorisation'")
  T.raises(function() metrics.memorisation(E, X) end, "bad argument #2 to 'memorisation' (qd.Ensemble expected")
  T.raises(function() metrics.memorisation(E, E2) end, "ensemble on 1 qubits expected (as argument #1), got 2 qubits")
  T.raises(function() metrics.convergence(E, qd.ensemble.haar(1, 4, qd.rng(2))) end,
    "bad argument #2 to 'convergence' (3 members (paired with argument #1) expected, got 4)")
  T.raises(function() metrics.convergence(X, qd.matrix(2, 4)) end, "samples of dimension 3 expected (as argument #1), got 2")
  T.raises(function() metrics.memorisation(X, qd.matrix(3, 2)) end,
    "bad argument #2 to 'memorisation' (sample 1 has zero or non-finite norm)")
  T.raises(function() metrics.memorisation(qd.matrix(2, 2, { complex = true }), X) end, "complex qd.Matrix")
  T.raises(function() metrics.latent_recovery(E, qd.vector { 1, 0 }) end, "bad argument #2 to 'latent_recovery' (qd.State expected")
  T.raises(function() metrics.latent_recovery(E, qd.state(2)) end, "state on 1 qubits expected, got 2 qubits")
  T.raises(function() metrics.latent_recovery(X, qd.vector { 1, 0 }) end, "qd.Vector of 3 entries expected, got 2")
  T.raises(function() metrics.latent_recovery(X, qd.matrix(3, 2)) end, "a qd.Vector of 3 entries expected, got a 3 x 2 qd.Matrix")
  T.raises(function() metrics.latent_recovery(X, qd.vector(3)) end, "non-zero vector expected")
  T.raises(function() metrics.theory.latent_recovery(-1, 2) end, "bad argument #1 to 'latent_recovery' (gamma > 0 expected")
  T.raises(function() metrics.theory.latent_recovery(1, 0 / 0) end, "bad argument #2 to 'latent_recovery' (beta (a finite number) expected")
  T.raises(function() metrics.theory.convergence("a") end, "bad argument #1 to 'convergence'")
  T.raises(function() metrics.theory.memorisation(0, 3, qd.rng(1)) end, "bad argument #1 to 'memorisation' (n: integer >= 1")
  T.raises(function() metrics.theory.memorisation(2, 3, 5) end, "bad argument #3 to 'memorisation' (qd.Rng expected, got number)")
  T.raises(function() metrics.theory.memorisation_floor(2, 1, qd.rng(1)) end, "bad argument #2 to 'memorisation_floor' (d: integer >= 2")
end)
