-- test_random.lua — qd.random from Lua: Haar unitaries (unitarity, determinism, the
-- first and second moments of |<0|U|0>|^2 with a tolerance of 5 standard errors), random
-- density matrices (trace, positivity, rank, mean purity of the HS and Bures measures),
-- mixtures (spectrum = weights), random circuits (norm, batch independence), and every
-- error message.
local T = require "testlib"

-- complex helpers on {re, im} values read with M:get(i, j)
local function cget(M, i, j)
  local re, im = M:get(i, j)
  return re, im or 0
end

local function unitarity_error(U)
  local d = U:shape()
  local worst = 0
  for i = 1, d do
    for j = 1, d do
      local sr, si = 0, 0
      for l = 1, d do
        local ar, ai = cget(U, l, i)
        local br, bi = cget(U, l, j)
        sr = sr + ar * br + ai * bi     -- conj(a) b
        si = si + ar * bi - ai * br
      end
      worst = math.max(worst, math.abs(sr - (i == j and 1 or 0)), math.abs(si))
    end
  end
  return worst
end

T.test("Haar unitaries", function()
  for n = 1, 3 do
    local U = qd.random.unitary(n, qd.rng(n))
    T.eq(qd.type(U), "qd.Matrix")
    local r, c = U:shape()
    T.eq(r, 1 << n); T.eq(c, 1 << n)
    T.ok(U:is_complex(), "complex")
    T.ok(unitarity_error(U) < 1e-12, "U^H U = I to 1e-12 (n=" .. n .. "): " .. unitarity_error(U))
  end
  local A, B = qd.random.unitary(2, qd.rng(9)), qd.random.unitary(2, qd.rng(9))
  local same = true
  for i = 1, 4 do for j = 1, 4 do
    local a1, a2 = A:get(i, j); local b1, b2 = B:get(i, j)
    same = same and a1 == b1 and a2 == b2
  end end
  T.ok(same, "same seed, same unitary")
  local rng = qd.rng(1)
  local C, D = qd.random.unitary(1, rng), qd.random.unitary(1, rng)
  T.ok(C:get(1, 1) ~= D:get(1, 1), "the generator advances")
  -- moments: |U_11|^2 ~ Beta(1, d-1), E = 1/d, E x^2 = 2/(d(d+1)); E Re U_11 = 0 (phase fix)
  local d, M = 4, 3000
  local m1, m2, m4, re = 0, 0, 0, 0
  local r = qd.rng(2024)
  for _ = 1, M do
    local V = qd.random.unitary(2, r)
    local a, b = V:get(1, 1)
    local x = a * a + b * b
    m1, m2, m4, re = m1 + x, m2 + x * x, m4 + x ^ 4, re + a
  end
  m1, m2, m4, re = m1 / M, m2 / M, m4 / M, re / M
  T.near(m1, 1 / d, 5 * math.sqrt((m2 - m1 * m1) / M), "E|<0|U|0>|^2 = 1/d")
  T.near(m2, 2 / (d * (d + 1)), 5 * math.sqrt((m4 - m2 * m2) / M), "E|<0|U|0>|^4 = 2/(d(d+1))")
  T.near(re, 0, 5 * math.sqrt(1 / (2 * d) / M), "E Re U_00 = 0")
  -- Haar states too
  T.eq(qd.type(qd.random.state(3, qd.rng(1))), "qd.State")
  T.eq(#qd.random.ensemble(2, 7, qd.rng(1)), 7)
end)

T.test("random density matrices", function()
  local rng = qd.rng(5)
  local rho = qd.random.dm(3, rng)
  T.eq(qd.type(rho), "qd.DensityMatrix"); T.eq(rho.n, 3)
  T.near(rho:trace(), 1, 1e-13, "trace 1")
  local ev = rho:eigenvalues()
  T.ok(ev[1] > -1e-14, "PSD")
  local low = qd.random.dm(3, rng, { rank = 2 })
  local e2 = low:eigenvalues()
  local nz = 0
  for i = 1, 8 do if e2[i] > 1e-12 then nz = nz + 1 end end
  T.eq(nz, 2, "rank option gives a rank-2 state")
  local b = qd.random.dm(2, rng, { measure = "bures" })
  T.near(b:trace(), 1, 1e-13, "Bures trace 1")
  T.ok(b:eigenvalues()[1] > -1e-14, "Bures PSD")
  T.eq(qd.type(qd.random.dm(1)), "qd.DensityMatrix", "run rng when none given")
  T.eq(qd.random.dm(1, nil, { measure = "hs" }).n, 1, "nil rng then options")
  T.eq(qd.random.dm(1, { measure = "hs" }).n, 1, "options without an rng")
  -- mean purities (d = 4): HS 2d/(d^2+1) = 8/17, Bures (5d^2+1)/(2d(d^2+2)) = 81/144
  local M = 1500
  local sh, sh2, sb, sb2 = 0, 0, 0, 0
  local r = qd.rng(11)
  for _ = 1, M do
    local p = qd.random.dm(2, r):purity()
    sh, sh2 = sh + p, sh2 + p * p
    p = qd.random.dm(2, r, { measure = "bures" }):purity()
    sb, sb2 = sb + p, sb2 + p * p
  end
  sh, sh2, sb, sb2 = sh / M, sh2 / M, sb / M, sb2 / M
  T.near(sh, 8 / 17, 5 * math.sqrt((sh2 - sh * sh) / M), "HS mean purity 2d/(d^2+1)")
  T.near(sb, 81 / 144, 5 * math.sqrt((sb2 - sb * sb) / M), "Bures mean purity")
end)

T.test("mixtures and circuits", function()
  local rho, w = qd.random.mixture(3, 3, qd.rng(1), { weights = { 0.6, 0.3, 0.1 } })
  local ev = rho:eigenvalues()
  T.near(ev[8], 0.6, 1e-13); T.near(ev[7], 0.3, 1e-13); T.near(ev[6], 0.1, 1e-13); T.near(ev[5], 0, 1e-13)
  T.eq(w[1], 0.6, "weights returned")
  local rho2, w2 = qd.random.mixture(2, 2, qd.rng(2))
  T.near(w2[1] + w2[2], 1, 1e-15, "Dirichlet weights sum to 1")
  T.near(rho2:eigenvalues()[4], math.max(w2[1], w2[2]), 1e-13, "spectrum = weights")
  local r3 = qd.random.mixture(2, 2, qd.rng(3), { weights = qd.vector { 0.5, 0.5 } })
  T.near(r3:purity(), 0.5, 1e-13, "weights as a qd.Vector")

  local s = qd.random.circuit(4, 6, qd.rng(1))
  T.eq(qd.type(s), "qd.State")
  T.near(s:norm(), 1, 1e-13, "circuit state normalised")
  T.ok(math.abs(s:amp(1)) < 0.999, "the circuit did something")
  T.eq(qd.random.circuit(3, 0, qd.rng(1)):amp(1), 1, "depth 0 leaves |0..0>")
  local E10 = qd.random.circuit_states(3, 10, 4, qd.rng(4))
  local E3 = qd.random.circuit_states(3, 3, 4, qd.rng(4))
  local same = true
  for k = 1, 3 do
    for i = 1, 8 do
      local a, b = E10[k]:amp(i); local c, d = E3[k]:amp(i)
      same = same and a == c and b == d
    end
  end
  T.ok(same, "member k independent of N")
  T.ok(E10[1]:amp(1) ~= E10[2]:amp(1), "members differ")
  local n1 = qd.random.circuit(1, 3, qd.rng(1))
  T.near(n1:norm(), 1, 1e-14, "1-qubit circuit")
end)

T.test("errors", function()
  T.raises(function() qd.random.unitary(0) end, "number of qubits 1..12 expected, got 0")
  T.raises(function() qd.random.unitary(13) end, "number of qubits 1..12 expected, got 13")
  T.raises(function() qd.random.unitary(1.5) end, "number of qubits expected, got a non-integer")
  T.raises(function() qd.random.unitary("two") end, "number of qubits expected, got string")
  T.raises(function() qd.random.unitary(2, 3.5) end, "qd.Rng (or an integer seed) expected, got number")
  T.raises(function() qd.random.unitary(2, qd.rng(1), 3) end, "unexpected extra argument")
  T.raises(function() qd.random.dm(2, qd.rng(1), { measure = "x" }) end, "option 'measure': \"hs\" or \"bures\" expected, got \"x\"")
  T.raises(function() qd.random.dm(2, qd.rng(1), { rank = 5 }) end, "option 'rank': 1..4 expected, got 5")
  T.raises(function() qd.random.dm(2, qd.rng(1), { measure = "bures", rank = 2 }) end, "option 'rank' is for the Hilbert-Schmidt")
  T.raises(function() qd.random.dm(2, qd.rng(1), { ranks = 2 }) end, "unknown option 'ranks'")
  T.raises(function() qd.random.dm(2, "x") end, "qd.Rng (or an integer seed) expected, got string")
  T.raises(function() qd.random.mixture(2, 5) end, "rank 1..4 expected, got 5")
  T.raises(function() qd.random.mixture(2, 2, qd.rng(1), { weights = { 0.5 } }) end, "option 'weights': 2 weights expected, got 1")
  T.raises(function() qd.random.mixture(2, 2, qd.rng(1), { weights = { 0.5, 0.6 } }) end, "weights summing to 1 expected")
  T.raises(function() qd.random.mixture(2, 2, qd.rng(1), { weights = { 1.5, -0.5 } }) end, "non-negative weights expected")
  T.raises(function() qd.random.mixture(2, 2, qd.rng(1), { weights = 3 }) end, "option 'weights': 2 weights expected, got number")
  T.raises(function() qd.random.circuit(2, -1) end, "depth 0..100000 expected")
  T.raises(function() qd.random.circuit(0, 1) end, "number of qubits >= 1 expected")
  T.raises(function() qd.random.circuit_states(2, 0, 1) end, "number of states >= 1 expected, got 0")
end)
