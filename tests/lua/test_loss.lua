-- test_loss.lua — qd.loss, qd.ot and qd.superfidelity from Lua: values against formulas
-- computed here from overlaps / fidelities, every returned gradient against central finite
-- differences (Wirtinger: dL/dRe = 2 Re G, dL/dIm = 2 Im G; density matrices along
-- Hermitian traceless directions: dL = 2 Re Tr(G^H H)), and the error messages.
local T = require "testlib"

local rng = qd.rng(2024)

-- ---------------------------------------------------------------- helpers

local function amps(s) return s:totable() end   -- {{re, im}, ...}

-- a copy of ensemble/state x with amplitude i (1-based, member k) shifted by (dre, dim)
local function shifted(x, k, i, dre, dim)
  if qd.type(x) == "qd.Ensemble" then
    -- a finite-difference step leaves the unit sphere: members taken as given
    local ms = {}
    for j = 1, x.N do ms[j] = x[j] end
    local a = amps(x[k])
    a[i] = { a[i][1] + dre, a[i][2] + dim }
    ms[k] = qd.state.from(a, { normalize = false })
    return qd.ensemble.from(ms, { normalize = false })
  end
  local a = amps(x)
  a[i] = { a[i][1] + dre, a[i][2] + dim }
  return qd.state.from(a, { normalize = false })
end

-- max |FD - analytic| over all amplitudes of all members of x; f(x) -> value
local function fd_wirtinger(f, x, G)
  local h, worst = 1e-6, 0
  local members = qd.type(x) == "qd.Ensemble" and #x or 1
  for k = 1, members do
    local g = qd.type(G) == "qd.Ensemble" and amps(G[k]) or amps(G)
    for i = 1, x.dim do
      local dre = (f(shifted(x, k, i, h, 0)) - f(shifted(x, k, i, -h, 0))) / (2 * h)
      local dim = (f(shifted(x, k, i, 0, h)) - f(shifted(x, k, i, 0, -h))) / (2 * h)
      worst = math.max(worst, math.abs(dre - 2 * g[i][1]), math.abs(dim - 2 * g[i][2]))
    end
  end
  return worst
end

-- a density matrix rho + t*H (H Hermitian traceless, fixed by seed)
local function herm_dir(d, r)
  local H = {}
  for i = 1, d do H[i] = {} end
  for i = 1, d do
    for j = i, d do
      if i == j then H[i][i] = { r:normal(), 0 }
      else
        local re, im = r:normal(), r:normal()
        H[i][j] = { re, im }; H[j][i] = { re, -im }
      end
    end
  end
  local tr = 0
  for i = 1, d do tr = tr + H[i][i][1] end
  for i = 1, d do H[i][i][1] = H[i][i][1] - tr / d end
  return H
end

local function dm_plus(rho, H, t)
  local M = rho:matrix():totable()
  for i = 1, #M do
    for j = 1, #M do
      local m, hh = M[i][j], H[i][j]
      local re = type(m) == "table" and m[1] or m
      local im = type(m) == "table" and m[2] or 0
      M[i][j] = { re + t * hh[1], im + t * hh[2] }
    end
  end
  return qd.dm(qd.matrix(M))
end

-- 2 Re Tr(G^H H) for a DensityMatrix-shaped gradient
local function pair(G, H)
  local M = G:matrix():totable()
  local s = 0
  for i = 1, #M do
    for j = 1, #M do
      local g = M[i][j]
      local gre = type(g) == "table" and g[1] or g
      local gim = type(g) == "table" and g[2] or 0
      s = s + 2 * (gre * H[i][j][1] + gim * H[i][j][2])
    end
  end
  return s
end

local function fd_dm(f, rho, G, r)
  local worst, h = 0, 1e-5
  for _ = 1, 3 do
    local H = herm_dir(rho.dim, r)
    local fd = (-f(dm_plus(rho, H, 2 * h)) + 8 * f(dm_plus(rho, H, h)) - 8 * f(dm_plus(rho, H, -h))
                + f(dm_plus(rho, H, -2 * h))) / (12 * h)
    worst = math.max(worst, math.abs(fd - pair(G, H)))
  end
  return worst
end

-- a well-conditioned random density matrix: 0.6 |psi><psi| + 0.4 * (a random mixed one)
local function rand_dm(n, r)
  local E = qd.ensemble.haar(n, 4, r)
  local M = E:mean_dm():matrix():totable()
  local psi = amps(qd.haar_state(n, r))
  local d = 2 ^ n
  for i = 1, d do
    for j = 1, d do
      local m = M[i][j]
      local re = type(m) == "table" and m[1] or m
      local im = type(m) == "table" and m[2] or 0
      -- psi_i conj(psi_j)
      local pr = psi[i][1] * psi[j][1] + psi[i][2] * psi[j][2]
      local pi = psi[i][2] * psi[j][1] - psi[i][1] * psi[j][2]
      M[i][j] = { 0.4 * re + 0.6 * pr, 0.4 * im + 0.6 * pi }
    end
  end
  return qd.dm(qd.matrix(M))
end

-- ---------------------------------------------------------------- ensemble losses

T.test("mmd fidelity kernel", function()
  local A, B = qd.ensemble.haar(2, 5, rng), qd.ensemble.haar(2, 3, rng)
  local function mean(M) return M:mean() end
  local naive = mean(A:overlaps()) + mean(B:overlaps()) - 2 * mean(A:overlaps(B))
  T.near(qd.loss.mmd(A, B), naive, 1e-13, "mmd = V-statistic of overlaps")
  T.near(qd.loss.mmd(A, B, { method = "gram" }), naive, 1e-13, "gram")
  T.near(qd.loss.mmd(A, B, { method = "dm" }), naive, 1e-13, "Tr[(rhoA - rhoB)^2]")
  T.near(qd.loss.mmd(A, A), 0, 1e-15, "mmd(A, A) = 0")
  local v, GA, GB = qd.loss.mmd(A, B, { grad = true })
  T.near(v, naive, 1e-13)
  T.eq(qd.type(GA), "qd.Ensemble", "G_A shaped like A"); T.eq(#GA, 5); T.eq(#GB, 3)
  T.ok(fd_wirtinger(function(x) return qd.loss.mmd(x, B) end, A, GA) < 1e-8, "dMMD/dA by FD")
  T.ok(fd_wirtinger(function(x) return qd.loss.mmd(A, x) end, B, GB) < 1e-8, "dMMD/dB by FD")
  -- a State is a one-member ensemble; its gradient is a State
  local s = qd.haar_state(2, rng)
  local vs, Gs = qd.loss.mmd(s, B, { grad = true })
  T.near(vs, qd.loss.mmd(qd.ensemble.from { s }, B), 1e-14, "State as 1-member ensemble")
  T.eq(qd.type(Gs), "qd.State")
  T.ok(fd_wirtinger(function(x) return qd.loss.mmd(x, B) end, s, Gs) < 1e-8, "dMMD/ds by FD")
end)

T.test("wasserstein and sinkhorn", function()
  local A, B = qd.ensemble.haar(1, 4, rng), qd.ensemble.haar(1, 6, rng)
  local v, P, GA, GB = qd.loss.wasserstein(A, B, { grad = true })
  local F = A:overlaps(B)
  local s, rows, cols = 0, {}, {}
  for i = 1, 4 do
    for j = 1, 6 do
      local p = P:get(i, j)
      T.ok(p >= 0, "plan >= 0")
      s = s + p * (1 - F:get(i, j))
      rows[i] = (rows[i] or 0) + p; cols[j] = (cols[j] or 0) + p
    end
  end
  T.near(v, s, 1e-13, "W = sum P (1 - |<a|b>|^2)")
  for i = 1, 4 do T.near(rows[i], 1 / 4, 1e-14, "row marginal") end
  for j = 1, 6 do T.near(cols[j], 1 / 6, 1e-14, "column marginal") end
  local Cm = qd.matrix(4, 6)
  for i = 1, 4 do for j = 1, 6 do Cm:set(i, j, 1 - F:get(i, j)) end end
  local c2 = qd.ot.exact(Cm)
  T.near(v, c2, 1e-13, "W = qd.ot.exact on the cost matrix")
  T.ok(fd_wirtinger(function(x) return (qd.loss.wasserstein(x, B)) end, A, GA) < 1e-7, "dW/dA by FD")
  T.ok(fd_wirtinger(function(x) return (qd.loss.wasserstein(A, x)) end, B, GB) < 1e-7, "dW/dB by FD")
  -- equal sizes: a permutation / N
  local C = qd.ensemble.haar(1, 4, rng)
  local w4, P4 = qd.loss.wasserstein(A, C)
  local cost, perm = qd.ot.assign((function()
    local M = qd.matrix(4, 4)
    local O = A:overlaps(C)
    for i = 1, 4 do for j = 1, 4 do M:set(i, j, 1 - O:get(i, j)) end end
    return M
  end)())
  T.near(w4, cost / 4, 1e-13, "equal sizes: assignment / N")
  for i = 1, 4 do T.near(P4:get(i, perm[i]), 0.25, 1e-15, "plan on the permutation") end
  -- plan = false: nil in the plan's place, the same value and gradients (both paths)
  for _, BB in ipairs { B, C } do
    local va, Pa, GAa, GBa = qd.loss.wasserstein(A, BB, { grad = true })
    local vb, Pb, GAb, GBb = qd.loss.wasserstein(A, BB, { grad = true, plan = false })
    T.ok(Pa ~= nil and Pb == nil, "plan = false: nil plan")
    T.eq(vb, va, "plan = false: same value")
    local same = true
    for _, pair in ipairs { { GAa, GAb }, { GBa, GBb } } do
      for k = 1, #pair[1] do
        for t = 1, 2 do
          local r1, i1 = pair[1][k]:amp(t)
          local r2, i2 = pair[2][k]:amp(t)
          if r1 ~= r2 or i1 ~= i2 then same = false end
        end
      end
    end
    T.ok(same, "plan = false: same gradients")
    local v1, P1 = qd.loss.wasserstein(A, BB, { plan = true })
    T.ok(v1 == va and P1 ~= nil, "plan = true: the default")
  end
  -- weights
  local vw = qd.loss.wasserstein(A, B, { a = { 1, 1, 1, 1 }, b = { 2, 2, 2, 2, 2, 2 } })
  T.near(vw, v, 1e-13, "uniform given weights = default")
  -- Sinkhorn: regularised value >= W, -> W as eps -> 0; gradient by FD
  local vs, Ps, GSA = qd.loss.sinkhorn(A, B, { eps = 0.05, tol = 1e-13, grad = true })
  T.ok(vs >= v - 1e-12 and vs <= v + 0.05 * math.log(24) + 1e-12, "W <= OT_eps <= W + eps log NM")
  T.eq(qd.type(Ps), "qd.Matrix")
  local vs2 = qd.loss.sinkhorn(A, B, { eps = 1e-3, tol = 1e-10, max_iter = 100000 })
  T.ok(math.abs(vs2 - v) < 1e-3 * math.log(24) + 1e-9, "sinkhorn -> W")
  T.ok(fd_wirtinger(function(x) return (qd.loss.sinkhorn(x, B, { eps = 0.05, tol = 1e-14, max_iter = 100000 })) end,
                    A, GSA) < 1e-7, "dSinkhorn/dA by FD")
  local ov, oplan, info = qd.ot.sinkhorn(Cm, { eps = 0.05, tol = 1e-13 })
  T.near(ov, vs, 1e-11, "qd.ot.sinkhorn = loss.sinkhorn on the cost")
  T.ok(info.converged and info.iters >= 1 and info.err <= 1e-13, "info table")
  T.near(info.cost, (function()
    local s2 = 0
    for i = 1, 4 do for j = 1, 6 do s2 = s2 + oplan:get(i, j) * Cm:get(i, j) end end
    return s2
  end)(), 1e-14, "info.cost = <P, C>")
  T.raises(function() qd.loss.sinkhorn(A, B, { eps = 1e-4, max_iter = 3 }) end,
           "sinkhorn did not converge in 3 iterations")
  local _, _, inf2 = qd.ot.sinkhorn(Cm, { eps = 1e-4, max_iter = 3 })
  T.eq(inf2.converged, false, "qd.ot.sinkhorn reports instead of raising")
end)

-- ---------------------------------------------------------------- Born machine

local function probs_of(s) return s:probs():totable() end

T.test("mmd_bits three ways", function()
  local p, q = probs_of(qd.haar_state(3, rng)), probs_of(qd.haar_state(3, rng))
  local function naive(sig)
    local s = 0
    for x = 0, 7 do
      for y = 0, 7 do
        local h = 0
        local z = x ~ y
        while z > 0 do h = h + (z & 1); z = z >> 1 end
        local k = 0
        for _, sg in ipairs(sig) do k = k + math.exp(-h / (2 * sg)) / #sig end
        s = s + (p[x + 1] - q[x + 1]) * (p[y + 1] - q[y + 1]) * k
      end
    end
    return s
  end
  for _, sig in ipairs { { 0.1 }, { 3 }, { 0.25, 1, 10 } } do
    local e = naive(sig)
    T.near(qd.loss.mmd_bits(p, q, { sigma = sig }), e, 1e-15, "exact")
    T.near(qd.loss.mmd_bits(p, q, { sigma = sig, method = "pauli" }), e, 1e-15, "Pauli-Z expansion")
    local orders = qd.loss.mmd_bits_orders(p, q, { sigma = sig })
    T.eq(#orders, 4, "orders 0..n")
    local so = 0
    for _, c in ipairs(orders) do so = so + c end
    T.near(so, e, 1e-15, "orders sum to MMD")
  end
  T.near(qd.loss.mmd_bits(qd.vector(p), qd.vector(q), { sigma = 2 }), naive { 2 }, 1e-15, "qd.Vector inputs")
  local v, g = qd.loss.mmd_bits(p, q, { sigma = { 0.5, 2 }, grad = true })
  local _, g2 = qd.loss.mmd_bits(p, q, { sigma = { 0.5, 2 }, grad = true, method = "pauli" })
  T.eq(qd.type(g), "qd.Vector")
  for x = 1, 8 do
    local h = 1e-6
    local pp, pm = { table.unpack(p) }, { table.unpack(p) }
    pp[x] = pp[x] + h; pm[x] = pm[x] - h
    local fd = (qd.loss.mmd_bits(pp, q, { sigma = { 0.5, 2 } }) - qd.loss.mmd_bits(pm, q, { sigma = { 0.5, 2 } })) / (2 * h)
    T.near(g[x], fd, 1e-9, "dMMD/dp by FD")
    T.near(g2[x], g[x], 1e-14, "pauli gradient = exact gradient")
  end
  -- samples (unbiased): large samples from p and q agree with exact within a few se
  local s1 = qd.state.from((function() local a = {} for i = 1, 8 do a[i] = math.sqrt(p[i]) end return a end)())
  local s2 = qd.state.from((function() local a = {} for i = 1, 8 do a[i] = math.sqrt(q[i]) end return a end)())
  local est = qd.loss.mmd_bits_samples(s1:sample(4000, rng), s2:sample(4000, rng), { sigma = { 0.5, 2 } })
  T.ok(math.abs(est - v) < 0.01, string.format("sample estimate %g vs exact %g", est, v))
  T.near(qd.loss.mmd_bits_samples({ 0, 3 }, { "00", "11" }, { sigma = 1 }),
         2 * math.exp(-1) - 2 * (2 + 2 * math.exp(-1)) / 4, 1e-15, "indices = bitstrings, by hand")
end)

T.test("probability losses read qd.Vectors in place, safely", function()
  -- the bindings view a qd.Vector's own buffer (no copy); an option's metamethod that frees
  -- the vector before the computation gets an error, not a read of freed memory
  local p, q = probs_of(qd.haar_state(3, rng)), probs_of(qd.haar_state(3, rng))
  local vp, vq = qd.vector(p), qd.vector(q)
  T.eq(qd.loss.mmd_bits(vp, vq, { sigma = 1 }), qd.loss.mmd_bits(p, q, { sigma = 1 }), "vector = table, bitwise")
  T.eq(qd.loss.kl(vp, vq), qd.loss.kl(p, q), "kl: vector = table, bitwise")
  local function freeing(v, opts)
    return setmetatable(opts, { __index = function() v:free() end })
  end
  T.raises(function() qd.loss.mmd_bits(vp, q, freeing(vp, { sigma = 1 })) end, "freed", "mmd_bits")
  local v2 = qd.vector(p)
  local sig = setmetatable({}, { __len = function() return 1 end, __index = function() v2:free() return 1 end })
  T.raises(function() qd.loss.mmd_bits_orders(q, v2, { sigma = sig }) end, "freed", "orders")
  local v3 = qd.vector(p)
  T.raises(function() qd.loss.kl(v3, q, freeing(v3, {})) end, "freed", "kl")
  -- a table argument read after a vector: its metamethods run before the vector is viewed
  local v4 = qd.vector(p)
  local t = setmetatable({}, { __len = function() return 8 end,
                               __index = function(_, i) v4:free() return q[i] end })
  T.raises(function() qd.loss.born_shift(v4, p, t) end, "freed", "born_shift")
  T.ok(qd.loss.kl(qd.vector { -0.0, 1 }, { 0.5, 0.5 }) > 0, "-0 is a probability")
  -- bad entries are found wherever they are (the scan works in blocks of 256)
  local big = {}
  for i = 1, 1024 do big[i] = 1 / 1024 end
  for _, pos in ipairs { 1, 256, 257, 700, 1024 } do
    local b = { table.unpack(big) }
    b[pos] = -1e-3
    T.raises(function() qd.loss.mmd_bits(qd.vector(b), big, { sigma = 1 }) end,
             string.format("at position %d", pos), "negative entry at " .. pos)
    b[pos] = 0 / 0
    T.raises(function() qd.loss.kl(big, qd.vector(b)) end, string.format("at position %d", pos), "NaN at " .. pos)
    b[pos] = math.huge
    T.raises(function() qd.loss.born_shift(b, big, big) end, string.format("at position %d", pos), "inf gradient at " .. pos)
  end
end)

T.test("kl, cross entropy, fidelity losses", function()
  local p, q = probs_of(qd.haar_state(2, rng)), probs_of(qd.haar_state(2, rng))
  local kl, g = qd.loss.kl(p, q, { grad = true })
  local e, hq = 0, 0
  for i = 1, 4 do e = e + q[i] * math.log(q[i] / p[i]); hq = hq - q[i] * math.log(q[i]) end
  T.near(kl, e, 1e-14, "KL(q || p)")
  T.near(qd.loss.cross_entropy(p, q), e + hq, 1e-14, "CE = KL + H(q)")
  for i = 1, 4 do T.near(g[i], -q[i] / p[i], 1e-14, "dKL/dp") end
  local kz = qd.loss.kl({ 0, 0.5, 0.5, 0 }, { 0.25, 0.25, 0.25, 0.25 }, { eps = 1e-6 })
  T.ok(kz == kz and kz < math.huge, "clipped KL finite")
  T.near(qd.loss.kl(q, q), 0, 1e-15, "KL(q || q) = 0")
  -- global fidelity against a probability vector = 1 - |<sqrt q | psi>|^2
  local psi = qd.haar_state(2, rng)
  local tq = qd.state.from((function() local a = {} for i = 1, 4 do a[i] = math.sqrt(q[i]) end return a end)())
  local vg, Gg = qd.loss.global_fidelity(psi, q, { grad = true })
  T.near(vg, 1 - qd.fidelity(psi, tq), 1e-14, "global fidelity loss")
  T.near(qd.loss.global_fidelity(psi, tq), vg, 1e-15, "target as a State")
  T.ok(fd_wirtinger(function(x) return qd.loss.global_fidelity(x, q) end, psi, Gg) < 1e-8, "global grad FD")
  local vl, Gl = qd.loss.local_fidelity(psi, { grad = true })
  local pz = 0
  for j = 0, 1 do pz = pz + psi:probs({ j }):get(1) / 2 end
  T.near(vl, 1 - pz, 1e-14, "local fidelity = 1 - mean P(q_j = 0)")
  T.ok(fd_wirtinger(function(x) return qd.loss.local_fidelity(x) end, psi, Gl) < 1e-8, "local grad FD")
  T.near(qd.loss.local_fidelity(qd.state(3)), 0, 1e-15, "|000> has local loss 0")
end)

-- ---------------------------------------------------------------- state losses

T.test("state losses: wrt = 1 | 2 returns that gradient alone (the same numbers)", function()
  local r = qd.rng(78)
  local psi, rho, sig = qd.haar_state(3, r), rand_dm(3, r), rand_dm(3, r)
  for _, name in ipairs { "infidelity", "trace_distance", "hilbert_schmidt", "superfidelity" } do
    for _, pair in ipairs { { rho, sig }, { psi, sig }, { sig, psi } } do
      local v, Ga, Gb = qd.loss[name](pair[1], pair[2], { grad = true })
      local v1, G1, extra1 = qd.loss[name](pair[1], pair[2], { grad = true, wrt = 1 })
      local v2, G2, extra2 = qd.loss[name](pair[1], pair[2], { grad = true, wrt = 2 })
      T.near(v1, v, 1e-12, name .. " value (wrt = 1)"); T.near(v2, v, 1e-12, name .. " value (wrt = 2)")
      T.ok(extra1 == nil and extra2 == nil, name .. ": one gradient")
      T.ok(qd.allclose(G1, Ga, { rtol = 1e-10, atol = 1e-12 }) and qd.allclose(G2, Gb, { rtol = 1e-10, atol = 1e-12 }),
        name .. ": the same gradients")
    end
  end
  T.raises(function() qd.loss.infidelity(rho, sig, { wrt = 1 }) end, "option 'wrt' needs grad = true", "wrt without grad")
  T.raises(function() qd.loss.infidelity(rho, sig, { grad = true, wrt = 3 }) end, "option 'wrt'", "wrt = 3")
  T.raises(function() qd.loss.infidelity(rho, sig, { grad = true, wrt = 1.5 }) end, "1 or 2 expected", "wrt = 1.5")
end)

T.test("state losses and gradients", function()
  local r = qd.rng(77)
  local a, b = qd.haar_state(2, r), qd.haar_state(2, r)
  local rho, sig = rand_dm(2, r), rand_dm(2, r)
  -- infidelity: pure-pure, pure-mixed, Uhlmann
  local v, Ga, Gb = qd.loss.infidelity(a, b, { grad = true })
  T.near(v, 1 - qd.fidelity(a, b), 1e-14, "pure infidelity")
  T.ok(fd_wirtinger(function(x) return qd.loss.infidelity(x, b) end, a, Ga) < 1e-8, "d/da")
  T.ok(fd_wirtinger(function(x) return qd.loss.infidelity(a, x) end, b, Gb) < 1e-8, "d/db")
  v, Ga, Gb = qd.loss.infidelity(a, sig, { grad = true })
  T.near(v, 1 - qd.fidelity(a, sig), 1e-14, "pure-mixed infidelity")
  T.eq(qd.type(Ga), "qd.State"); T.eq(qd.type(Gb), "qd.DensityMatrix")
  T.ok(fd_wirtinger(function(x) return qd.loss.infidelity(x, sig) end, a, Ga) < 1e-8, "d/dpsi")
  T.ok(fd_dm(function(x) return qd.loss.infidelity(a, x) end, sig, Gb, r) < 1e-8, "d/drho (pure-mixed)")
  local v2, Gb2, Ga2 = qd.loss.infidelity(sig, a, { grad = true })
  T.near(v2, v, 1e-15, "symmetric"); T.eq(qd.type(Ga2), "qd.State"); T.eq(qd.type(Gb2), "qd.DensityMatrix")
  v, Ga, Gb = qd.loss.infidelity(rho, sig, { grad = true })
  T.near(v, 1 - qd.fidelity(rho, sig), 1e-13, "Uhlmann infidelity")
  T.ok(fd_dm(function(x) return qd.loss.infidelity(x, sig) end, rho, Ga, r) < 1e-7, "Uhlmann d/drho")
  T.ok(fd_dm(function(x) return qd.loss.infidelity(rho, x) end, sig, Gb, r) < 1e-7, "Uhlmann d/dsigma")
  -- trace distance
  v, Ga, Gb = qd.loss.trace_distance(rho, sig, { grad = true })
  T.near(v, qd.trace_distance(rho, sig), 1e-14, "trace distance")
  T.ok(fd_dm(function(x) return qd.loss.trace_distance(x, sig) end, rho, Ga, r) < 1e-7, "trace d/drho")
  v, Ga = qd.loss.trace_distance(a, sig, { grad = true })
  T.near(v, qd.trace_distance(a, sig), 1e-14, "trace distance state vs dm")
  T.ok(fd_wirtinger(function(x) return qd.loss.trace_distance(x, sig) end, a, Ga) < 1e-7,
       "trace d/dpsi (chained through |psi><psi|: G_psi = 2 G_rho psi)")
  -- Hilbert–Schmidt
  v, Ga, Gb = qd.loss.hilbert_schmidt(rho, sig, { grad = true })
  T.near(v, qd.purity(rho) + qd.purity(sig) - 2 * (qd.superfidelity(rho, sig)
         - math.sqrt((1 - qd.purity(rho)) * (1 - qd.purity(sig)))), 1e-13, "HS = Tr(rho - sigma)^2")
  T.ok(fd_dm(function(x) return qd.loss.hilbert_schmidt(x, sig) end, rho, Ga, r) < 1e-8, "HS d/drho")
  T.ok(fd_dm(function(x) return qd.loss.hilbert_schmidt(rho, x) end, sig, Gb, r) < 1e-8, "HS d/dsigma")
  T.near(qd.loss.hilbert_schmidt(a, b), 2 - 2 * qd.fidelity(a, b), 1e-14, "HS of pure states")
  v, Ga = qd.loss.hilbert_schmidt(a, sig, { grad = true })
  T.ok(fd_wirtinger(function(x) return qd.loss.hilbert_schmidt(x, sig) end, a, Ga) < 1e-8, "HS d/dpsi")
  -- superfidelity
  local sf = qd.superfidelity(rho, sig)
  T.ok(sf >= qd.fidelity(rho, sig) - 1e-14 and sf <= 1 + 1e-14, "F <= superfidelity <= 1")
  T.near(qd.superfidelity(a, b), qd.fidelity(a, b), 1e-14, "pure states: superfidelity = F")
  v, Ga, Gb = qd.loss.superfidelity(rho, sig, { grad = true })
  T.near(v, 1 - sf, 1e-15, "superfidelity loss = 1 - G")
  T.ok(fd_dm(function(x) return qd.loss.superfidelity(x, sig) end, rho, Ga, r) < 1e-8, "superfid d/drho")
  T.ok(fd_dm(function(x) return qd.loss.superfidelity(rho, x) end, sig, Gb, r) < 1e-8, "superfid d/dsigma")
  -- mse
  local x, y = qd.vector { 1, 2, 3 }, qd.vector { 0, 2, 5 }
  local m, gx, gy = qd.loss.mse(x, y, { grad = true })
  T.near(m, 5 / 3, 1e-15, "mse")
  T.near(gx[1], 2 / 3, 1e-15, "dmse/dx"); T.near(gx[3], -4 / 3, 1e-15); T.near(gy[1], -2 / 3, 1e-15)
  local ms, Gs = qd.loss.mse(a, b, { grad = true })
  T.ok(fd_wirtinger(function(z) return qd.loss.mse(z, b) end, a, Gs) < 1e-8, "mse of states: Wirtinger")
  T.ok(ms > 0)
end)

T.test("wasserstein warm start", function()
  -- a slowly changing problem (as along training): members drift a little each step;
  -- the warm solve must give the cold optimum (tie-free random costs: the same plan)
  local r = qd.rng(77)
  local N = 40
  local base, dir = {}, {}
  for k = 1, N do base[k] = amps(qd.random.state(2, r)); dir[k] = amps(qd.random.state(2, r)) end
  local B = qd.ensemble.haar(2, N, r)
  local function at(t)
    local ss = {}
    for k = 1, N do
      local a = {}
      for i = 1, 4 do
        a[i] = { base[k][i][1] + t * dir[k][i][1], base[k][i][2] + t * dir[k][i][2] }
      end
      ss[k] = qd.state.from(a, { normalize = false })   -- a path off the unit sphere
    end
    return qd.ensemble.from(ss, { normalize = false })
  end
  local S = {}
  for step = 0, 6 do
    local A = at(0.03 * step)
    local v0, P0, GA0, GB0 = qd.loss.wasserstein(A, B, { grad = true })
    local v1, P1, GA1, GB1 = qd.loss.wasserstein(A, B, { grad = true, warm = S })
    T.near(v1, v0, 1e-12, "warm value = cold value")
    local same = true
    for i = 1, N do for j = 1, N do if P0:get(i, j) ~= P1:get(i, j) then same = false end end end
    T.ok(same, "warm plan = cold plan (tie-free costs)")
    local gd = 0
    for k = 1, N do
      local g0, g1 = amps(GA0[k]), amps(GA1[k])
      local h0, h1 = amps(GB0[k]), amps(GB1[k])
      for i = 1, 4 do
        gd = math.max(gd, math.abs(g0[i][1] - g1[i][1]), math.abs(g0[i][2] - g1[i][2]),
                      math.abs(h0[i][1] - h1[i][1]), math.abs(h0[i][2] - h1[i][2]))
      end
    end
    T.ok(gd == 0, "warm gradient = cold gradient")
    T.eq(qd.type(S.v), "qd.Vector", "S.v holds the prices")
    T.eq(S.n, N, "S.n = N")
  end
  -- the prices are dual-feasible and tight on the plan: v_j - u_i <= C_ij (u_i = min_j C_ij - v_j)
  local A = at(0.2)
  local _, P = qd.loss.wasserstein(A, B, { warm = S })
  local O = A:overlaps(B)
  local tight = 0
  for i = 1, N do
    local u = math.huge
    for j = 1, N do u = math.min(u, 1 - O:get(i, j) - S.v[j]) end
    for j = 1, N do
      if P:get(i, j) > 0 then tight = math.max(tight, math.abs(1 - O:get(i, j) - S.v[j] - u)) end
    end
  end
  T.ok(tight < 1e-12, "returned prices are optimal duals (complementary slackness)")
  -- a size change solves cold and replaces the prices
  local A2, B2 = qd.ensemble.haar(2, 7, r), qd.ensemble.haar(2, 7, r)
  local c0 = qd.loss.wasserstein(A2, B2)
  local c1 = qd.loss.wasserstein(A2, B2, { warm = S })
  T.near(c1, c0, 1e-12, "size change: cold solve")
  T.eq(#S.v, 7, "prices resized")
  T.eq(S.n, 7, "S.n updated")
  -- arbitrary finite prices are a valid start
  for j = 1, 7 do S.v[j] = 10 * r:normal() end
  T.near((qd.loss.wasserstein(A2, B2, { warm = S })), c0, 1e-12, "any finite start -> optimum")
  -- weights or unequal sizes: S is ignored (neither read nor written)
  local S2 = { v = "not read", n = 3 }
  local B3 = qd.ensemble.haar(2, 9, r)
  local u0 = qd.loss.wasserstein(A2, B3)
  T.near((qd.loss.wasserstein(A2, B3, { warm = S2 })), u0, 0, "unequal sizes: junk S ignored")
  T.eq(S2.v, "not read", "unequal sizes: junk S untouched")
  local S3 = {}
  T.near((qd.loss.wasserstein(A2, B3, { warm = S3 })), u0, 0, "unequal sizes: same value")
  T.eq(next(S3), nil, "unequal sizes: S untouched")
  T.near((qd.loss.wasserstein(A2, B2, { warm = S3, a = { 1, 1, 1, 1, 1, 1, 2 } })),
         (qd.loss.wasserstein(A2, B2, { a = { 1, 1, 1, 1, 1, 1, 2 } })), 0, "weights: same value")
  T.eq(next(S3), nil, "weights: S untouched")
  T.raises(function() qd.loss.wasserstein(A2, B2, { warm = S2 }) end,
           "option 'warm': field 'v' must be a real qd.Vector or nil, got string")
end)

-- ---------------------------------------------------------------- errors

T.test("error messages", function()
  local A, B3 = qd.ensemble.haar(2, 3, rng), qd.ensemble.haar(3, 3, rng)
  T.raises(function() qd.loss.mmd(A, 1) end, "bad argument #2 to 'mmd' (qd.Ensemble or qd.State expected, got number)")
  T.raises(function() qd.loss.mmd(A, B3) end, "2-qubit members expected, got 3 qubits")
  T.raises(function() qd.loss.mmd(A, A, { grad = true, meth = 1 }) end, "unknown option 'meth'")
  T.raises(function() qd.loss.mmd(A, A, { method = "fast" }) end, "\"auto\", \"gram\" or \"dm\" expected")
  T.raises(function() qd.loss.mmd(A, A, { grad = 1 }) end, "option 'grad': boolean expected")
  T.raises(function() qd.loss.mmd(A, A, nil, 4) end, "unexpected extra argument")
  local F = qd.ensemble.haar(2, 3, rng); F:free()
  T.raises(function() qd.loss.mmd(A, F) end, "qd.Ensemble has been freed")
  T.raises(function() qd.loss.wasserstein(A, A, { a = { 1, 2 } }) end, "option 'a': 3 weights expected, got 2")
  T.raises(function() qd.loss.wasserstein(A, A, { a = { 1, -1, 1 } }) end, "option 'a': weights >= 0 expected")
  T.raises(function() qd.loss.wasserstein(A, A, { plan = 0 }) end, "option 'plan': boolean expected, got number")
  T.raises(function() qd.loss.wasserstein(A, A, { warm = 1 }) end, "option 'warm': table expected, got number")
  T.raises(function() qd.loss.wasserstein(A, A, { warm = true }) end, "option 'warm': table expected, got boolean")
  T.raises(function() qd.loss.wasserstein(A, A, { warm = { v = qd.matrix(3, 1) } }) end,
           "option 'warm': field 'v' must be a real qd.Vector or nil, got qd.Matrix")
  T.raises(function() qd.loss.wasserstein(A, A, { warm = { v = qd.vector(3), n = "3" } }) end,
           "option 'warm': field 'n' must be an integer or nil, got string")
  local Sb = {}
  qd.loss.wasserstein(A, A, { warm = Sb })
  Sb.v[2] = 0 / 0
  T.raises(function() qd.loss.wasserstein(A, A, { warm = Sb }) end, "warm start: non-finite column potential at 2")
  local Sf = { v = qd.vector(3), n = 3 }; Sf.v:free()
  T.raises(function() qd.loss.wasserstein(A, A, { warm = Sf }) end, "a freed qd.Vector")
  T.raises(function() qd.loss.sinkhorn(A, A, { eps = 0 }) end, "option 'eps': number > 0")
  T.raises(function() qd.loss.sinkhorn(A, A, { max_iter = 2.5 }) end, "option 'max_iter': integer")
  T.raises(function() qd.ot.exact({ 1, 2 }) end, "cost matrix (qd.Matrix) expected, got table")
  T.raises(function() qd.ot.assign(qd.matrix(2, 3)) end, "square cost matrix expected, got 2x3")
  T.raises(function() qd.ot.exact(qd.matrix { { 1, 0 / 0 } }) end, "finite costs expected")
  T.raises(function() qd.loss.mmd_bits({ 0.5, 0.5 }, { 1, 0 }) end, "options table with 'sigma'")
  T.raises(function() qd.loss.mmd_bits({ 0.5, 0.5 }, { 1, 0 }, { sigma = -1 }) end, "bandwidths > 0 expected")
  T.raises(function() qd.loss.mmd_bits({ 0.5, 0.5 }, { 1, 0 }, { sigma = "x" }) end, "number or list of numbers expected")
  T.raises(function() qd.loss.mmd_bits({ 0.2, 0.3, 0.5 }, { 1, 0, 0 }, { sigma = 1 }) end,
           "probability vector of length 2^n expected, got length 3")
  T.raises(function() qd.loss.mmd_bits({ 0.5, 0.5 }, { 1, 0, 0, 0 }, { sigma = 1 }) end,
           "probability vector of length 2 expected, got 4")
  T.raises(function() qd.loss.mmd_bits({ 0.5, -0.5 }, { 1, 0 }, { sigma = 1 }) end, "probabilities >= 0 expected")
  T.raises(function() qd.loss.mmd_bits({ 0.5, "a" }, { 1, 0 }, { sigma = 1 }) end, "number expected at position 2")
  T.raises(function() qd.loss.mmd_bits({ 0.5, 0.5 }, { 1, 0 }, { sigma = 1, method = "mc" }) end, "\"exact\" or \"pauli\"")
  T.raises(function() qd.loss.mmd_bits_samples({ 1 }, { 1, 2 }, { sigma = 1 }) end, "at least 2 samples expected")
  T.raises(function() qd.loss.mmd_bits_samples({ "01", "2" }, { 1, 2 }, { sigma = 1 }) end, "bitstring expected at position 2")
  T.raises(function() qd.loss.mmd_bits_samples({ ["0x"] = 2 }, { 1, 2 }, { sigma = 1 }) end, "bitstring keys")
  T.raises(function() qd.loss.kl({ 0.5, 0.5 }, { 1 }) end, "probability vector of length 2 expected, got 1")
  T.raises(function() qd.loss.kl({ 0.5, 0.5 }, { 1, 0 }, { eps = -1 }) end, "option 'eps': number > 0")
  T.raises(function() qd.loss.infidelity(A, A) end, "qd.State or qd.DensityMatrix expected, got qd.Ensemble")
  T.raises(function() qd.loss.infidelity(qd.state(1), qd.state(2)) end, "1-qubit state expected, got 2 qubits")
  T.raises(function() qd.loss.local_fidelity(qd.dm(1)) end, "qd.State expected, got qd.DensityMatrix")
  T.raises(function() qd.loss.global_fidelity(qd.state(2), { 1, 0 }) end, "length 4 expected, got 2")
  T.raises(function() qd.loss.mse(qd.vector { 1 }, qd.vector { 1, 2 }) end, "1x1 array expected, got 2x1")
  T.raises(function() qd.loss.mse(qd.state(1), qd.dm(1)) end, "qd.State of the same shape")
  T.raises(function() qd.superfidelity(qd.state(1), 3) end, "qd.State or qd.DensityMatrix expected, got number")
end)

T.test("same bits for 1 and 2 threads", function()
  local r = qd.rng(9)
  local A, B = qd.ensemble.haar(3, 40, r), qd.ensemble.haar(3, 30, r)
  local before = qd.threads()
  local out = {}
  for k, th in ipairs { 1, 2 } do
    qd.set_threads(th)
    local v1, G1 = qd.loss.mmd(A, B, { grad = true, method = "gram" })
    local v2, G2 = qd.loss.mmd(A, B, { grad = true, method = "dm" })
    local v3, _, G3 = qd.loss.wasserstein(A, B, { grad = true })
    out[k] = { v1, v2, v3, G1[7]:amp(3), G2[5]:amp(8), G3[2]:amp(1) }
  end
  qd.set_threads(before)
  for i = 1, #out[1] do T.eq(out[1][i], out[2][i], "loss/gradient entry " .. i .. " identical") end
end)

-- the gradient convention is the circuits' (c:vjp): losses chain into parameter gradients
T.test("circuit gradients through the losses", function()
  local r = qd.rng(3)
  local c = qd.circuit(2)
  c:ry(0):rx(1):cz(0, 1):ry(0):rx(1)
  local p = qd.vector { 0.3, -0.7, 1.1, 0.4 }
  local E, Tg = qd.ensemble.haar(2, 6, r), qd.ensemble.haar(2, 5, r)
  local sig = qd.random.dm(2, r)
  local cases = {
    mmd = function(out) return qd.loss.mmd(out, Tg, { grad = true }) end,
    wasserstein = function(out) local v, _, G = qd.loss.wasserstein(out, Tg, { grad = true }); return v, G end,
    sinkhorn = function(out)
      local v, _, G = qd.loss.sinkhorn(out, Tg, { grad = true, eps = 0.1, tol = 1e-14, max_iter = 100000 })
      return v, G
    end,
  }
  for name, lf in pairs(cases) do
    local L, g = c:grad(E, p, lf)
    local L2, g2 = c:grad_fd(E, p, lf)
    T.near(L, L2, 1e-14, name .. " value")
    for i = 1, 4 do T.near(g[i], g2[i], 1e-7, name .. ": dL/dtheta via vjp = FD") end
  end
  local rho = qd.random.dm(2, r)
  for name, fn in pairs { infidelity = qd.loss.infidelity, trace_distance = qd.loss.trace_distance,
                          hilbert_schmidt = qd.loss.hilbert_schmidt, superfidelity = qd.loss.superfidelity } do
    local lf = function(out) return fn(out, sig, { grad = true }) end
    local _, g = c:grad(rho, p, lf)
    local _, g2 = c:grad_fd(rho, p, lf)
    for i = 1, 4 do T.near(g[i], g2[i], 1e-7, name .. " (density matrix): vjp = FD") end
  end
  -- a short training run: Adam on the MMD moves the ensemble onto the targets
  local c1 = qd.circuit(1)
  c1:ry(0):rz(0):ry(0)
  local src = qd.ensemble(1, 8)
  local tgt = qd.ensemble(1, 8):ry(0, 2.0):rz(0, 0.7)
  local x, st = qd.vector { 0.1, 0.2, 0.3 }, { lr = 0.05 }
  local first, last
  for i = 1, 150 do
    local _, f = qd.optim.adam(function(th)
      local L, g = c1:grad(src, th, function(out) return qd.loss.mmd(out, tgt, { grad = true }) end)
      return L, g
    end, x, st)
    if i == 1 then first = f end
    last = f
  end
  T.ok(first > 0.1 and last < 1e-4, string.format("MMD training: %g -> %g", first, last))
end)

T.test("infidelity gradient against a rank-deficient state: the exact -sigma/2 for a pure sigma", function()
  for n = 1, 4 do
    local sigma = qd.dm(qd.haar_state(n, qd.rng(n)))
    local rho = qd.dm(qd.haar_state(n, qd.rng(10 + n))) * 0.7 + qd.maximally_mixed(n) * 0.3
    local _, G = qd.loss.infidelity(rho, sigma, { grad = true })
    local worst = 0
    for i = 1, 2 ^ n do
      for j = 1, 2 ^ n do
        local gr, gi = G:get(i, j)
        local sr, si = sigma:get(i, j)
        worst = math.max(worst, math.abs(gr + sr / 2), math.abs(gi + si / 2))
      end
    end
    T.ok(worst < 1e-12, string.format("n = %d: max |G + sigma/2| = %.2e", n, worst))
  end
end)
