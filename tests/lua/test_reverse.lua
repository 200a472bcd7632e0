-- test_reverse.lua — qd.protocols.reverse_diffusion: the data sets, the time grid, the
-- Fokker-Planck solver against the closed-form law and against Monte Carlo trajectories, the
-- Pauli algebra, the learnt feedback recovering the exact one on one qubit, the reverse
-- run returning to the data (exact feedback) where no feedback does not, determinism of a
-- run's files, and the error messages.
local T = require "testlib"
local qd = require "qd"
local rd = require "qd.protocols.reverse_diffusion"

local tmp = T.tmpdir()

T.test("reverse: data sets", function()
  local E = rd.data("circle", 50, qd.rng(1), { z0 = 0.3 })
  local z = E:expect("Z")
  for k = 1, 50 do T.near(z[k], 0.3, 1e-12, "circle z0") end
  local C = rd.data("cap", 200, qd.rng(2), { zc = 0.7 })
  local zc, ok = C:expect("Z"), true
  for k = 1, 200 do ok = ok and zc[k] >= 0.7 - 1e-12 and zc[k] <= 1 + 1e-12 end
  T.ok(ok, "cap members have z >= zc")
  local B = rd.data("bell", 20, qd.rng(3))
  local zz = B:expect("ZZ")
  for k = 1, 20 do T.near(zz[k], 1.0, 1e-12, "bell family lives on |00>, |11>") end
  T.eq(rd.data("tfim", 3, qd.rng(4)).n, 4, "tfim: 4 qubits")
  T.eq(rd.data("cluster2", 3, qd.rng(4)).n, 2, "cluster2: 2 qubits")
  local _, p = rd.data("clusters", 4, qd.rng(5), { sigma = 0.1 })
  T.eq(p.sigma, 0.1, "parameter given")
  T.eq(p.theta1, math.pi / 3, "default filled in")
  T.raises(function() rd.data("square", 3, qd.rng(1)) end,
    "bad argument #1 to 'data' (bell, cap, circle, cluster2, clusters, tfim expected, got square)")
  T.raises(function() rd.data("circle", 0, qd.rng(1)) end, "bad argument #2 to 'data'")
  T.raises(function() rd.data("circle", 3, 7) end, "bad argument #3 to 'data' (qd.Rng expected, got number)")
  T.raises(function() rd.data("circle", 3, qd.rng(1), { zc = 1 }) end, "bad argument #4 to 'data' (unknown parameter 'zc' of circle)")
  T.raises(function() rd.data("circle", 3, qd.rng(1), { z0 = 1 }) end, "parameter 'z0': -1 < z0 < 1 expected")
end)

T.test("reverse: time grid", function()
  local g = rd.time_grid(0.5, 1e-3, 50)
  T.eq(g[1], 0.0, "starts at 0")
  T.eq(g[2], 1e-3, "then t_stop")
  T.eq(g[#g], 0.5, "ends at tau")
  local ok, maxd = true, 0
  for k = 2, #g do
    ok = ok and g[k] > g[k - 1]
    maxd = math.max(maxd, g[k] - g[k - 1])
  end
  T.ok(ok, "increasing")
  T.ok(maxd <= 0.5 / 50 * 1.25 + 1e-12, "spacing at most tau / steps (last step within 1.25x)")
end)

-- the closed form of the law of u = artanh z from a point u0 (one qubit, A = Z, rate g):
-- q = N(u; u0, 4 g t) cosh(u) / cosh(u0) e^{-2 g t} (Doob h-transform of a Brownian motion)
local function exact_q(u, u0, g, t)
  local v = 4 * g * t
  return math.exp(-(u - u0) ^ 2 / (2 * v)) / math.sqrt(2 * math.pi * v) * math.cosh(u) / math.cosh(u0) * math.exp(-2 * g * t)
end

T.test("reverse: Fokker-Planck solver vs the closed-form law", function()
  local u0, g = 0.5 * math.log(1.5 / 0.5), 1.0   -- z0 = 0.5
  local times = { 0 }
  for k = 1, 60 do times[k + 1] = 0.3 * k / 60 end
  local F = rd.fokker_planck({ u0 }, g, times, { h = 0.01 })
  for _, k in ipairs { 21, 61 } do
    local t = times[k]
    local l1, mass = 0, 0
    for i, u in ipairs(F.u) do
      l1 = l1 + math.abs(F.q[k][i] - exact_q(u, u0, g, t)) * F.h
      mass = mass + F.q[k][i] * F.h
    end
    T.near(mass, 1.0, 1e-9, "mass conserved at t = " .. t)
    T.ok(l1 < 0.02, string.format("L1 distance to the closed form at t = %g: %.4f < 0.02", t, l1))
  end
end)

T.test("reverse: Fokker-Planck law vs Monte Carlo trajectories", function()
  local c = rd.check { data = "circle", feedback = "exact", tau = 0.3, steps = 60 }
  local E0 = rd.data("circle", 4000, qd.rng(7), { z0 = 0.5 })
  local ET = rd.forward(E0, c, qd.rng(8))
  local z = ET:expect("Z")
  local m1, m2 = 0, 0
  for k = 1, 4000 do m1, m2 = m1 + z[k] / 4000, m2 + z[k] ^ 2 / 4000 end
  local F = rd.fokker_planck(rd.bloch_u(E0), c.gamma, c.grid, { h = 0.01 })
  local K = #c.grid
  local f1, f2 = 0, 0
  for i, u in ipairs(F.u) do
    local w = F.q[K][i] * F.h
    f1, f2 = f1 + w * math.tanh(u), f2 + w * math.tanh(u) ^ 2
  end
  T.near(f1, 0.5, 0.01, "z is a martingale (Fokker-Planck)")
  T.near(m1, 0.5, 0.03, "z is a martingale (trajectories)")
  T.near(m2, f2, 0.02, "E z^2: trajectories vs Fokker-Planck")
  T.ok(f2 > 0.4, "the law has spread (E z^2 = " .. f2 .. ")")
end)

T.test("reverse: Pauli algebra", function()
  local R, re, im = rd.pmul("XY", "YY")
  T.eq(R, "ZI", "XY * YY = ZI")
  T.eq(re, 0, "phase real part")
  T.eq(im, 1, "phase i")
  R, re, im = rd.pmul("Z", "X")
  T.eq(R, "Y", "ZX = iY")
  T.eq(im, 1, "ZX = +iY")
  T.ok(rd.anticommute("XI", "ZI"), "X, Z anticommute")
  T.ok(not rd.anticommute("XX", "ZZ"), "XX, ZZ commute")
  T.eq(#rd.paulis(2, 1), 6, "weight 1 on 2 qubits")
  T.eq(#rd.paulis(2, 2), 15, "weight <= 2 on 2 qubits")
  T.eq(#rd.paulis(4, 2), 66, "weight <= 2 on 4 qubits")
  T.eq(#rd.paulis(4, 2, true), 39, "chain-local weight <= 2 on 4 qubits: 12 + 3 x 9")
  local ok = true
  for _, P in ipairs(rd.paulis(4, 3, true)) do ok = ok and not P:match("[XYZ]I+[XYZ]") end
  T.ok(ok, "chain-local strings have no gap")
  T.eq(#rd.monomials(3, 2), 10, "monomials of degree <= 2 in 3 variables")
end)

T.test("reverse: the learnt feedback recovers the exact one on one qubit", function()
  local c = rd.check { data = "circle", feedback = "learnt", steps = 60, train_N = 1500 }
  local E0 = rd.data("circle", 1500, qd.rng(1), { z0 = 0.5 })
  local _, snaps = rd.forward(E0, c, qd.rng(2), true)
  local fl = rd.learnt_feedback(rd.learn(snaps, c), c)
  local fe = rd.exact_feedback(c, rd.data("circle", 5000, qd.rng(5), { z0 = 0.5 }))
  local _, s2 = rd.forward(rd.data("circle", 300, qd.rng(3), { z0 = 0.5 }), c, qd.rng(4), true)
  for _, frac in ipairs { 0.2, 0.5, 0.9 } do
    local k = math.floor(frac * #c.grid)
    local E = s2[k]
    local Cl, Ce = fl(c.grid[k], E), fe(k, E)
    local sxy, sxx, syy, dz = 0, 0, 0, 0
    for j = 1, #E do
      for p = 1, 2 do
        local a, b = Cl:get(p, j), Ce:get(p, j)
        sxy, sxx, syy = sxy + a * b, sxx + a * a, syy + b * b
      end
      dz = dz + Cl:get(3, j) ^ 2
    end
    local corr = sxy / math.sqrt(sxx * syy)
    T.ok(corr > 0.97, string.format("t = %.4f: correlation of learnt and exact (c_X, c_Y) %.4f > 0.97", c.grid[k], corr))
    T.ok(math.sqrt((sxx - 2 * sxy + syy) / syy) < 0.4, "t = " .. c.grid[k] .. ": relative error < 0.4")
    -- the exact feedback has no Z term (a rotation about z moves only the azimuth, which the
    -- forward process keeps); the learnt one has a small one
    T.ok(math.sqrt(dz / syy) < 0.25, string.format("small Z term: rms ratio %.3f < 0.25", math.sqrt(dz / syy)))
  end
end)

T.test("reverse: exact feedback returns the circle; no feedback does not; files", function()
  local cfg = { data = "circle", feedback = "exact", N = 60, repeats = 4, steps = 40, ref_N = 4000, fp_h = 0.04, quiet = true, seed = 3 }
  cfg.out = tmp .. "/exact"
  local res = rd.run(cfg)
  local m = res.metrics
  T.ok(m.wass_return < 2 * m.wass_noise, string.format("wass_return %.4f < 2 x wass_noise %.4f", m.wass_return, m.wass_noise))
  T.ok(m.mmd_return < 2 * m.mmd_noise, "mmd_return < 2 x mmd_noise")
  T.ok(m.wass_terminal > 5 * m.wass_return, "the terminal ensemble is far")
  local G = qd.load_npy(tmp .. "/exact/generated.npy", "ensembles")
  T.eq(#G, 4, "generated.npy: R batches")
  T.eq(#G[1], 60, "of N members")
  T.eq(#qd.load_npy(tmp .. "/exact/data.npy", "ensembles"), 4, "data.npy")
  local json = require "qd.json"
  local doc = json.decode(T.slurp(tmp .. "/exact/run.json"))
  T.eq(doc.settings.params.z0, 0.5, "run.json settings hold the data-set parameters")
  T.eq(doc.settings.feedback, "exact", "settings.feedback")
  -- the same run again: the same bytes
  cfg.out = tmp .. "/exact2"
  rd.run(cfg)
  T.eq(T.slurp(tmp .. "/exact2/generated.npy"), T.slurp(tmp .. "/exact/generated.npy"), "deterministic generated.npy")
  cfg.out, cfg.feedback = tmp .. "/none", "none"
  local r0 = rd.run(cfg)
  T.ok(r0.metrics.wass_return > 5 * r0.metrics.wass_noise, "without feedback the reverse does not return")
end)

T.test("reverse: purified start states", function()
  local E = rd.purified(2, 4000, { "XI", "YI", "ZI", "IX", "IY", "IZ" }, qd.rng(1))
  T.near(E:mean_dm():purity(), 0.25, 0.01, "isotropic monitoring: average state I/4")
  T.near(E:expect("ZZ"):mean(), 0.0, 0.05, "qubits independent")
  local zs, ok = E:expect("ZI"), true
  local F = rd.purified(1, 50, { "Z" }, qd.rng(2))
  local fz = F:expect("Z")
  for k = 1, 50 do ok = ok and math.abs(math.abs(fz[k]) - 1) < 1e-12 end
  T.ok(ok and #zs == 4000, "Z monitoring purifies to |0> or |1>")
  T.raises(function() rd.purified(1, 3, { "X" }, qd.rng(1)) end, "qubit 0: X, Y and Z, or Z alone, expected")
  T.raises(function() rd.purified(2, 3, { "ZZ" }, qd.rng(1)) end, "single-qubit Pauli strings expected, entry 1 is ZZ")
  T.raises(function() rd.run { data = "circle", feedback = "learnt", start = "purified", measure = { "X" } } end,
    "bad argument #1 to 'run' (option 'start': 'purified' needs every qubit monitored in X, Y and Z or in Z alone (qubit 0")
  local res = rd.run { data = "cluster2", feedback = "learnt", start = "purified", N = 30, repeats = 3, steps = 30, quiet = true,
                       measure = { "XI", "YI", "ZI", "IX", "IY", "IZ" }, train_N = 300, degree = 1, out = tmp .. "/pur" }
  local m = res.metrics
  T.ok(m.mmd_terminal > 20 * m.mmd_return,
    string.format("from purified states back to cluster2: %.2e vs %.2e", m.mmd_return, m.mmd_terminal))
end)

T.test("reverse: errors", function()
  T.raises(function() rd.run { data = "bell", feedback = "exact", quiet = true } end,
    "bad argument #1 to 'run' (feedback 'exact' is known for one qubit, H = nil, measure = {\"Z\"} only)")
  T.raises(function() rd.run { data = "nope" } end, "bad argument #1 to 'run' (option 'data':")
  T.raises(function() rd.run { data = "circle", tau = -1 } end, "option 'tau': > 0 expected")
  T.raises(function() rd.run { data = "circle", t_stop = 2 } end, "option 't_stop': 0 < t_stop < tau expected")
  T.raises(function() rd.run { data = "circle", feedback = "learnt", measure = { "Q" } } end,
    "option 'measure': Pauli strings of 1 letters IXYZ expected")
  T.raises(function() rd.run { data = "circle", weight = 2 } end, "option 'weight': at most n = 1 expected, got 2")
  T.raises(function() rd.run { data = "circle", stop_after = 1 } end, "option 'stop_after': reverse_diffusion runs in one pass")
  T.raises(function() rd.run { data = "circle", resume = "x" } end, "option 'resume'")
  T.raises(function() rd.run { data = "circle", bogus = 1 } end, "unknown option 'bogus'")
  T.raises(function() rd.run { data = "circle", feedback = "learnt", H = "X" } end,
    "option 'H': the learnt feedback is implemented for H = nil only")
end)

-- the per-member solve in C against the same algorithm written in Lua (bit for bit: the
-- same operations in the same order), the normal equations it solves, and its errors
T.test("feedback_solve: C against Lua, normal equations, errors", function()
  local core = require "qd.core"
  local rng = qd.rng(21)
  local m, nv, N, eps = 5, 8, 70, 1e-3
  local V, H = qd.matrix(N * nv, 1), qd.matrix(N, m)
  for i = 1, N * nv do V:set(i, 1, 2 * rng:uniform() - 1) end
  for j = 1, N do for q = 1, m do H:set(j, q, 2 * rng:uniform() - 1) end end
  local damp, ent = {}, {}
  for q = 1, m do
    damp[q] = -rng:uniform()
    for p = 1, m do
      if (q + p) % 2 == 1 or p == q % m + 1 then
        ent[#ent + 1] = q; ent[#ent + 1] = p; ent[#ent + 1] = 1 + math.floor(rng:uniform() * nv); ent[#ent + 1] = 2 * rng:uniform() - 1
      end
    end
  end
  local C = core.feedback_solve(V, H, damp, ent, eps)
  local same, worst = true, 0
  for j = 1, N do
    local val = function(v) return V:get((v - 1) * N + j, 1) end
    local S, b = {}, {}
    for i = 1, m * m do S[i] = 0.0 end
    for p = 1, m do S[(p - 1) * m + p] = eps; b[p] = 0.0 end
    local a = 1
    for q = 1, m do
      local hq = H:get(j, q) - damp[q] * val(q)
      local row = {}
      while a <= #ent and ent[a] == q do row[#row + 1] = { ent[a + 1], ent[a + 3] * val(ent[a + 2]) }; a = a + 4 end
      for _, e in ipairs(row) do
        b[e[1]] = b[e[1]] + e[2] * hq
        for _, e2 in ipairs(row) do local k = (e[1] - 1) * m + e2[1]; S[k] = S[k] + e[2] * e2[2] end
      end
    end
    local Lm, y = {}, {}
    for i = 1, m do
      for jj = 1, i do
        local sum = S[(i - 1) * m + jj]
        for k = 1, jj - 1 do sum = sum - Lm[(i - 1) * m + k] * Lm[(jj - 1) * m + k] end
        if i == jj then Lm[(i - 1) * m + i] = math.sqrt(sum > 1e-300 and sum or 1e-300) else Lm[(i - 1) * m + jj] = sum / Lm[(jj - 1) * m + jj] end
      end
    end
    for i = 1, m do
      local sum = b[i]
      for k = 1, i - 1 do sum = sum - Lm[(i - 1) * m + k] * y[k] end
      y[i] = sum / Lm[(i - 1) * m + i]
    end
    for i = m, 1, -1 do
      local sum = y[i]
      for k = i + 1, m do sum = sum - Lm[(k - 1) * m + i] * y[k] end
      y[i] = sum / Lm[(i - 1) * m + i]
    end
    for p = 1, m do
      same = same and C:get(p, j) == y[p]
      -- the normal equations: sum_p' S[p, p'] c_p' = b_p
      local r = -b[p]
      for p2 = 1, m do r = r + S[(p - 1) * m + p2] * C:get(p2, j) end
      worst = math.max(worst, math.abs(r))
    end
  end
  T.ok(same, "C gives the Lua algorithm's bits")
  T.ok(worst < 1e-10, "the coefficients solve (J^T J + eps I) c = J^T h (" .. worst .. ")")
  local t0 = qd.threads()
  qd.set_threads(2)
  local C2 = core.feedback_solve(V, H, damp, ent, eps)
  qd.set_threads(t0)
  local same2 = true
  for j = 1, N do for p = 1, m do same2 = same2 and C2:get(p, j) == C:get(p, j) end end
  T.ok(same2, "2 threads give the same bits")
  T.raises(function() core.feedback_solve(qd.matrix(3, 1), H, damp, ent, eps) end, "N x nv values expected with N = 70")
  T.raises(function() core.feedback_solve(V, H, { 1 }, ent, eps) end, "bad argument #3 to 'feedback_solve' (5 numbers expected, got 1)")
  T.raises(function() core.feedback_solve(V, H, damp, { 1, 2, 3 }, eps) end, "length a multiple of 4")
  T.raises(function() core.feedback_solve(V, H, damp, { 1, 9, 1, 0.5 }, eps) end, "entry 1: column (p) index in 1..5 expected")
  T.raises(function() core.feedback_solve(V, H, damp, { 1, 1, 99, 0.5 }, eps) end, "entry 1: value (v) index in 1..8 expected")
  T.raises(function() core.feedback_solve(V, H, damp, { 2, 1, 1, 0.5, 1, 1, 1, 0.5 }, eps) end, "entry 2: rows (q) in non-decreasing order")
  T.raises(function() core.feedback_solve(V, H, damp, { 1, 1, 1, 0 / 0 }, eps) end, "entry 1: finite factor expected")
  T.raises(function() core.feedback_solve(V, H, damp, ent, 0) end, "bad argument #5 to 'feedback_solve' (finite eps > 0 expected)")
  T.raises(function() core.feedback_solve(V, H, damp, ent, eps, 1) end, "bad argument #6")
end)

T.test("poly_features: C against the Lua products, errors", function()
  local core = require "qd.core"
  local N, nv = 37, 4
  local r = qd.rng(11)
  local vals = {}
  for i = 1, nv do vals[i] = r:uniform(-1, 1, N) end
  local V = qd.nn.vstack(table.unpack(vals))
  local mono = rd.monomials(3, 3)   -- degree <= 3 in the first 3 values ({} first)
  mono[#mono + 1] = { 4, 4, 1 }     -- a column beyond the model's, repeated factors
  local tf = { 1.0, 0.37, -2.5 }
  local Phi = core.poly_features(V, N, mono, tf)
  local rows, cols = Phi:shape()
  local same = rows == N and cols == #tf * #mono
  for j = 1, N do
    for a, ta in ipairs(tf) do
      for b, mon in ipairs(mono) do
        local v = 1.0
        for _, i in ipairs(mon) do v = v * vals[i][j] end
        same = same and Phi:get(j, (a - 1) * #mono + b) == ta * v
      end
    end
  end
  T.ok(same, "Phi[j, (a-1) #mono + b] = tf[a] * the monomial, bit for bit")
  local part = core.poly_features(V, N, mono, tf, 5, 11)   -- members 5..11: rows 5..11 of Phi
  local pr, pc = part:shape()
  local rows_same = pr == 7 and pc == cols
  for j = 1, 7 do
    for k = 1, cols do rows_same = rows_same and part:get(j, k) == Phi:get(j + 4, k) end
  end
  T.ok(rows_same, "members j0..j1: those rows of Phi, bit for bit")
  T.raises(function() core.poly_features(V, N, mono, tf, 0) end, "first member in 1..37 expected")
  T.raises(function() core.poly_features(V, N, mono, tf, 5, 4) end, "last member in 5..37 expected")
  T.raises(function() core.poly_features(V, 5, mono, tf) end, "member count dividing the 148 values expected")
  T.raises(function() core.poly_features(V, N, { { 5 } }, tf) end, "monomial 1, entry 1: index in 1..4 expected")
  T.raises(function() core.poly_features(V, N, { 3 }, tf) end, "monomial 1: list of indices expected")
  T.raises(function() core.poly_features(V, N, mono, { 1, 0 / 0 }) end, "entry 2: finite number expected")
  T.raises(function() core.poly_features(V, N, mono, 7) end, "bad argument #4")
end)

T.test("learnt feedback with the mlp drift model (qd.nn)", function()
  local base = { data = "cluster2", feedback = "learnt", model = "mlp", N = 30, repeats = 3, steps = 30, quiet = true,
                 measure = { "XI", "YI", "ZI", "IX", "IY", "IZ" }, train_N = 200, degree = 1, hidden = 16, mlp_steps = 300 }
  local cfg = {}
  for k, v in pairs(base) do cfg[k] = v end
  cfg.out = tmp .. "/mlp1"
  local res = rd.run(cfg)
  local m = res.metrics
  T.eq(m.mlp_params, (10 * 16 + 16) + (16 * 16 + 16) + (16 * 6 + 6), "the network's parameter count in the metrics")
  T.ok(m.mmd_terminal > 10 * m.mmd_return,
    string.format("the mlp model brings cluster2 back: return %.2e vs terminal %.2e", m.mmd_return, m.mmd_terminal))
  T.eq(res.settings.model, "mlp", "settings.model")
  cfg.out = tmp .. "/mlp2"
  local res2 = rd.run(cfg)
  T.eq(res2.metrics.mmd_return, m.mmd_return, "a rerun with the same seed gives the same bits")
  T.raises(function() rd.run { data = "circle", feedback = "exact", model = "mlp", quiet = true } end,
    "option 'model': 'mlp' is a model of the learnt feedback")
  T.raises(function() rd.run { data = "circle", feedback = "learnt", model = "mlp", mlp_lr = 0, quiet = true } end,
    "option 'mlp_lr': > 0 expected")
  T.raises(function() rd.run { data = "circle", feedback = "learnt", model = "deep", quiet = true } end, "option 'model'")
  T.raises(function() rd.run { data = "circle", feedback = "learnt", hidden = 8, quiet = true } end,
    "option 'hidden': an option of model = \"mlp\" (model is 'linear')")
end)

T.rmdir(tmp)
