-- test_qgdm.lua — qd.protocols.qgdm: the forward states against their closed forms, the
-- chain gradient (every loss, both time encodings, RE-QGDM's resets, teacher training,
-- the QGAN generator through the discriminator) against finite differences, the run record
-- and its files, resume bit for bit, and the error messages.
local T = require "testlib"
local qd = require "qd"
local json = require "qd.json"
local qgdm = require "qd.protocols.qgdm"
local core = require "qd.core"
local P = qgdm.pieces

local tmp = T.tmpdir()

local slurp = T.slurp

local function cfg(extra)
  local c = { target = qgdm.target("mixed", 1, qd.rng(3)), schedule = qd.schedule.linear { T = 3, from = 0.1, to = 0.5 },
              L = 2, iterations = 6, quiet = true, seed = 4 }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

-- fold(nr, nc, fa, fb, f, acc): acc = f(acc, ar, ai, br, bi) over the entries (i, j) of two
-- equally shaped complex tables read by fa(i, j) and fb(i, j) -> re, im
local function fold(nr, nc, fa, fb, f)
  local acc = 0
  for i = 1, nr do
    for j = 1, nc do
      local ar, ai = fa(i, j)
      local br, bi = fb(i, j)
      acc = f(acc, ar, ai, br, bi)
    end
  end
  return acc
end
local function entries(M) return function(i, j) return M:get(i, j) end end
local function members(E) return function(i, a) return E[i]:amp(a) end end
local function redot(acc, ar, ai, br, bi) return acc + ar * br + ai * bi end

-- max |a_ij - b_ij| of two density-matrix-shaped objects
local function maxdiff(a, b)
  return fold(2 ^ a.n, 2 ^ a.n, entries(a), entries(b),
    function(m, ar, ai, br, bi) return math.max(m, math.abs(ar - br), math.abs(ai - bi)) end)
end

-- Re Tr(A^H B) = Re sum conj(A_ij) B_ij of two density-matrix-shaped objects
local function re_inner(A, B) return fold(2 ^ A.n, 2 ^ A.n, entries(A), entries(B), redot) end

-- Re sum_ia conj(X_i[a]) Y_i[a] of two ensembles of the same shape
local function re_dot(X, Y) return fold(#X, 2 ^ X.n, members(X), members(Y), redot) end

T.test("qgdm: forward states (global closed form, local = the channel on every qubit)", function()
  local rho0 = qgdm.target("pure", 2, qd.rng(1))
  local s = qd.schedule.linear { T = 4, from = 0.05, to = 0.3 }
  local rhos, abar = qgdm.forward(rho0, s, "global")
  T.eq(#rhos, 5, "T + 1 states")
  for t = 0, 4 do
    local ab = s:alpha_bar(t)
    T.near(abar[t + 1], ab, 1e-15, "alpha_bar " .. t)
    T.ok(maxdiff(rhos[t + 1], rho0 * ab + qd.maximally_mixed(2) * (1 - ab)) < 1e-14, "rho_" .. t)
  end
  local loc = qgdm.forward(rho0, s, "local")
  local r = rho0:copy()
  for t = 1, 4 do
    for q = 0, 1 do r:apply(qd.channel.depolarizing { p = s:beta(t) }, { q }) end
    T.ok(maxdiff(loc[t + 1], r) < 1e-14, "local rho_" .. t)
  end
  T.ok(math.abs(loc[5]:purity() - 0.25) < math.abs(rho0:purity() - 0.25), "local noise mixes")
end)

T.test("qgdm: rho:block is <b|rho|b> and the vjp of rho -> rho (x) |0><0|", function()
  local r = qd.dm(qd.haar_state(3, qd.rng(2)))
  local b = r:block({ 0, 2 }, "1")
  local re, im = b:get(1, 3)   -- rows 0b0?0 -> index 2, columns 0b1?0 -> index 6 (qubit 1 = '1')
  local er, ei = r:get(3, 7)
  T.near(re, er, 0, "entry re"); T.near(im, ei, 0, "entry im")
  T.raises(function() r:block({ 0 }, "1") end, "2 bits expected", "bits length")
  T.raises(function() r:block({ 0 }, "1x") end, "'0' and '1'", "bits chars")
end)

-- finite-difference check of loss_grad (or of a custom value function) at a random theta
local function fd_check(label, c, value_grad)
  local R = P.model(P.check(c))
  R.teacher = c.training == "teacher"
  local theta = qd.rng(9):normal(0, 1, R.P)
  local L, g = value_grad(R, theta)
  local h, worst = 1e-6, 0
  for i = 1, R.P, math.max(1, R.P // 7) do
    local x = theta:copy()
    x[i] = theta[i] + h
    local lp = value_grad(R, x)
    x[i] = theta[i] - h
    local lm = value_grad(R, x)
    worst = math.max(worst, math.abs((lp - lm) / (2 * h) - g[i]))
  end
  T.ok(worst < 1e-6, string.format("%s: gradient = finite differences (max error %.2e)", label, worst))
  return L
end

local function bits(i, n)
  local t = {}
  for b = n - 1, 0, -1 do t[#t + 1] = (i >> b) & 1 end
  return table.concat(t)
end

T.test("qgdm: core.isometry_channel = Tr_m[W rho W^H] (rho as a mixture of states)", function()
  -- { 4, 5, 1 }: products above the small-size loops (OpenBLAS); the others in the loops
  for _, case in ipairs { { 2, 2, 1 }, { 2, 3, 1 }, { 3, 2, 2 }, { 1, 1, 2 }, { 4, 5, 1 }, { 3, 4, 2 } } do   -- nin, nout, m
    local nin, nout, m = case[1], case[2], case[3]
    local N, rng = nout + m, qd.rng(nin * 100 + nout * 10 + m)
    local U = qd.random.unitary(N, rng)
    local cols = {}
    for i = 1, 2 ^ nin do cols[i] = U * qd.state(N, bits(i - 1, N)) end
    local W = qd.ensemble.from(cols)
    local keep = {}
    for q = 0, nout - 1 do keep[#keep + 1] = q end
    local rho, ref = nil, nil
    for k, p in ipairs { 0.5, 0.3, 0.2 } do   -- rho = sum_k p_k |v_k><v_k|, W rho W^H likewise
      local v = qd.haar_state(nin, rng)
      local Wv = 0 * cols[1]
      for i = 1, 2 ^ nin do
        local re, im = v:amp(i)
        Wv = Wv + cols[i] * { re, im }
      end
      rho = k == 1 and p * qd.dm(v) or rho + p * qd.dm(v)
      ref = k == 1 and p * Wv:ptrace(keep) or ref + p * Wv:ptrace(keep)
    end
    local out = core.isometry_channel(W, rho, m)
    T.eq(out.n, nout, "output qubits")
    T.ok(maxdiff(out, ref) < 1e-13, string.format("%d -> %d qubits, m = %d", nin, nout, m))
    -- the vjp is the adjoint: Re <G, Phi(X)> = Re <grho, X> for the channel Phi (linear in
    -- rho), and dL/dW by central differences along a random direction of W
    local G = qd.dm(qd.haar_state(nout, rng)) * 0.7 + qd.maximally_mixed(nout) * 0.3
    local gW, grho = core.isometry_channel_vjp(W, rho, m, G)
    local X = qd.dm(qd.haar_state(nin, rng))
    local lhs, rhs = re_inner(G, core.isometry_channel(W, X, m)), re_inner(grho, X)
    T.ok(math.abs(lhs - rhs) < 1e-13, string.format("vjp: grho is the adjoint (%d -> %d, m = %d): %.1e",
      nin, nout, m, math.abs(lhs - rhs)))
    local D = qd.ensemble.haar(N, 2 ^ nin, rng)
    local h = 1e-6
    local Lp = re_inner(G, core.isometry_channel(W + D * h, rho, m))
    local Lm = re_inner(G, core.isometry_channel(W - D * h, rho, m))
    local dir = re_dot(gW, D)   -- d(Re <G, Phi>) = Re sum conj(gW) dW
    T.ok(math.abs((Lp - Lm) / (2 * h) - dir) < 1e-7, string.format("vjp: gW = finite differences (%d -> %d, m = %d): %.1e",
      nin, nout, m, math.abs((Lp - Lm) / (2 * h) - dir)))
  end
  T.raises(function() core.isometry_channel(qd.ensemble.haar(2, 3, qd.rng(1)), qd.dm(2), 1) end, "2^2 members", "member count")
  T.raises(function() core.isometry_channel(qd.ensemble.haar(2, 4, qd.rng(1)), qd.dm(2), 2) end, "#3", "m too large")
  T.raises(function() core.isometry_channel_vjp(qd.ensemble.haar(3, 4, qd.rng(1)), qd.dm(2), 1, qd.dm(1)) end,
    "output's qubits", "gradient shape")
end)

-- the Hermitian paths of the channel (linalg.c qd_isometry_channel_h / _vjp_h): a positive
-- definite rho and a Hermitian G, from 32 x 32 on; rank-deficient, non-Hermitian or small
-- inputs take the general code (the test above)
T.test("qgdm: isometry channel on density matrices (Cholesky path) = naive references", function()
  local function exactly_hermitian(A)
    for i = 1, 2 ^ A.n do
      for j = i, 2 ^ A.n do
        local ar, ai = A:get(i, j)
        local br, bi = A:get(j, i)
        if ar ~= br or ai ~= -bi then return false end
      end
    end
    return true
  end
  for _, case in ipairs { { 5, 5, 1 }, { 5, 6, 1 }, { 6, 5, 2 } } do   -- nin, nout, m
    local nin, nout, m = case[1], case[2], case[3]
    local N, rng = nout + m, qd.rng(700 + nin * 100 + nout * 10 + m)
    local U = qd.random.unitary(N, rng)
    local cols = {}
    for i = 1, 2 ^ nin do cols[i] = U * qd.state(N, bits(i - 1, N)) end
    local W = qd.ensemble.from(cols)
    local keep = {}
    for q = 0, nout - 1 do keep[#keep + 1] = q end
    -- rho = 0.6 |v><v| + 0.4 I/d (positive definite); W rho W^H traced = 0.6 Tr_m |Wv><Wv| +
    -- 0.4/d sum_i Tr_m |W_i><W_i|
    local v = qd.haar_state(nin, rng)
    local Wv = 0 * cols[1]
    for i = 1, 2 ^ nin do
      local re, im = v:amp(i)
      Wv = Wv + cols[i] * { re, im }
    end
    local rho = 0.6 * qd.dm(v) + 0.4 * qd.maximally_mixed(nin)
    local ref = 0.6 * Wv:ptrace(keep)
    for i = 1, 2 ^ nin do ref = ref + (0.4 / 2 ^ nin) * cols[i]:ptrace(keep) end
    local out = core.isometry_channel(W, rho, m)
    local tag = string.format("%d -> %d, m = %d", nin, nout, m)
    T.ok(maxdiff(out, ref) < 1e-13, tag .. ": = Tr_m[W rho W^H] (" .. string.format("%.1e", maxdiff(out, ref)) .. ")")
    T.ok(exactly_hermitian(out), tag .. ": output exactly Hermitian (the Cholesky path ran)")
    -- vjp with a Hermitian G (upper-triangle path) and a non-Hermitian one (general path):
    -- grho is the adjoint for both (the channel is linear in rho); gW = finite differences
    -- for the Hermitian G (the contract: G = dL/d conj(out) of a real L is Hermitian)
    local G = qd.dm(qd.haar_state(nout, rng)) * 0.7 + qd.maximally_mixed(nout) * 0.3
    local Gn = G + G * { 0, 0.3 }   -- G (1 + 0.3i): not Hermitian
    local X = 0.5 * qd.dm(qd.haar_state(nin, rng)) + 0.5 * qd.maximally_mixed(nin)
    for _, g in ipairs { { G, "Hermitian G" }, { Gn, "non-Hermitian G" } } do
      local gW, grho = core.isometry_channel_vjp(W, rho, m, g[1])
      if g[1] == G then T.ok(exactly_hermitian(grho), tag .. ": grho exactly Hermitian") end
      local lhs, rhs = re_inner(g[1], core.isometry_channel(W, X, m)), re_inner(grho, X)
      T.ok(math.abs(lhs - rhs) < 1e-13, string.format("%s, %s: grho is the adjoint (%.1e)", tag, g[2], math.abs(lhs - rhs)))
      if g[1] == G then
        local D = qd.ensemble.haar(N, 2 ^ nin, rng)
        local h = 1e-6
        local Lp = re_inner(G, core.isometry_channel(W + D * h, rho, m))
        local Lm = re_inner(G, core.isometry_channel(W - D * h, rho, m))
        local dir = re_dot(gW, D)
        T.ok(math.abs((Lp - Lm) / (2 * h) - dir) < 1e-7, string.format("%s: gW = finite differences (%.1e)",
          tag, math.abs((Lp - Lm) / (2 * h) - dir)))
      end
    end
  end
  -- the chain's G comes from the infidelity's gradient: exactly Hermitian (loss.c builds it as
  -- a zherk), so the vjp of the step before takes the Hermitian path too
  local a = 0.7 * qd.dm(qd.haar_state(5, qd.rng(1))) + 0.3 * qd.maximally_mixed(5)
  local _, Ga = qd.loss.infidelity(a, qd.dm(qd.haar_state(5, qd.rng(2))), { grad = true, wrt = 1 })
  T.ok(exactly_hermitian(Ga), "infidelity gradient exactly Hermitian")
end)

T.test("qgdm: chain gradients against finite differences", function()
  for _, loss in ipairs { "infidelity", "trace_distance", "hilbert_schmidt", "superfidelity" } do
    fd_check("chain " .. loss, cfg { loss = loss }, P.loss_grad)
  end
  fd_check("basis time register", cfg { time = "basis", schedule = qd.schedule.linear { T = 4, from = 0.1, to = 0.5 } }, P.loss_grad)
  fd_check("RE-QGDM (2 blocks, 1 reset auxiliary)", cfg { target = qgdm.target("pure", 2, qd.rng(1)), na = 1, blocks = 2 }, P.loss_grad)
  fd_check("teacher", cfg { training = "teacher" }, P.loss_grad)
  fd_check("local forward", cfg { forward = "local", ansatz = "strongly_entangling" }, P.loss_grad)
  fd_check("step weights, RE-QGDM", cfg { target = qgdm.target("mixed", 2, qd.rng(2)), na = 1, blocks = 2,
                                          step_weights = { 0.5, 3, 0 } }, P.loss_grad)
end)

T.test("qgdm: step_weights scale each step's loss and gradient", function()
  -- the weighted loss is sum_t w_t D_t: with weights e_t (one step alone) the three
  -- single-step losses and gradients add up to those of weights (a, b, c)
  local w = { 0.5, 3, 2 }
  local theta = qd.rng(7):normal(0, 1, P.model(P.check(cfg())).P)
  local Lw, gw = P.loss_grad(P.model(P.check(cfg { step_weights = w })), theta)
  local L1, g1 = P.loss_grad(P.model(P.check(cfg())), theta)
  local Ls, gs = 0, qd.vector(#theta)
  for t = 1, 3 do
    local e = { 0, 0, 0 }
    e[t] = w[t]
    local L, g = P.loss_grad(P.model(P.check(cfg { step_weights = e })), theta)
    Ls, gs = Ls + L, gs + g
  end
  T.near(Lw, Ls, 1e-12, "loss = sum of the weighted single-step losses")
  local worst = 0
  for i = 1, #theta do worst = math.max(worst, math.abs(gw[i] - gs[i])) end
  T.ok(worst < 1e-12, string.format("gradient = sum of the single-step gradients (%.1e)", worst))
  T.ok(math.abs(Lw - L1) > 1e-3, "the weights change the loss")
  local L11 = P.loss_grad(P.model(P.check(cfg { step_weights = { 1, 1, 1 } })), theta)
  T.near(L11, L1, 0, "weights 1 = no weights")
end)

T.test("qgdm: the Kraus method = the density-matrix method (loss, gradient, generated state)", function()
  for _, extra in ipairs { {}, { training = "teacher" }, { time = "basis", schedule = qd.schedule.linear { T = 4, from = 0.1, to = 0.5 } },
                           { target = qgdm.target("pure", 2, qd.rng(1)), na = 1 },
                           { target = qgdm.target("pure", 2, qd.rng(1)), na = 1, blocks = 2 },
                           { na = 1, blocks = 3, time = "basis", schedule = qd.schedule.linear { T = 4, from = 0.1, to = 0.5 } },
                           { na = 2, blocks = 2, training = "teacher" } } do
    local a, b = cfg(extra), cfg(extra)
    a.method, b.method = "kraus", "dm"
    local Ra, Rb = P.model(P.check(a)), P.model(P.check(b))
    Ra.teacher, Rb.teacher = a.training == "teacher", b.training == "teacher"
    T.ok(Ra.kraus and not Rb.kraus, "the two methods")
    local theta = qd.rng(5):normal(0, 1, Ra.P)
    local La, ga, ra = P.loss_grad(Ra, theta)
    local Lb, gb, rb = P.loss_grad(Rb, theta)
    local worst = 0
    for i = 1, Ra.P do worst = math.max(worst, math.abs(ga[i] - gb[i])) end
    T.near(La, Lb, 1e-12, "loss")
    T.ok(worst < 1e-11, string.format("gradient (max difference %.2e)", worst))
    T.ok(qd.trace_distance(ra, rb) < 1e-13, "generated state")
  end
  fd_check("dm method", cfg { method = "dm" }, P.loss_grad)
  fd_check("dm method, teacher", cfg { method = "dm", training = "teacher" }, P.loss_grad)
  T.eq(P.check(cfg()).method, "kraus", "auto = kraus for QGDM")
  T.eq(P.check(cfg { blocks = 2, na = 1 }).method, "kraus", "auto = kraus with resets")
  fd_check("RE-QGDM, dm method", cfg { target = qgdm.target("pure", 2, qd.rng(1)), na = 1, blocks = 2, method = "dm" }, P.loss_grad)
end)

T.test("qgdm: QGAN generator gradient through the discriminator and the chain", function()
  local raw = cfg { target = qgdm.target("mixed", 2, qd.rng(4)) }
  local c = P.check(cfg { target = raw.target })
  local dcirc, G = P.disc_parts(c, 2)
  local td = qd.rng(2):normal(0, 1, dcirc:nparams())
  -- the discriminator's value is the probability of qubit 0 = 0 after U_D
  local p = P.disc(dcirc, td, c.target, G, 1)
  T.near(p, dcirc:run(c.target, td):probs({ 0 })[1], 1e-14, "D(rho)")
  fd_check("QGAN generator", raw, function(R, x)
    local xs, o = P.chain(R, x, false)
    local pf, _, grho = P.disc(dcirc, td, o[0], G, -1)
    return -pf, P.backprop(R, x, xs, o, grho, false)
  end)
  local _, gd = P.disc(dcirc, td, c.target, G, 1)
  local worst = 0
  for i = 1, #td do
    local x = td:copy()
    x[i] = td[i] + 1e-6
    local pp = P.disc(dcirc, x, c.target, G, 1)
    x[i] = td[i] - 1e-6
    local pm = P.disc(dcirc, x, c.target, G, 1)
    worst = math.max(worst, math.abs((pp - pm) / 2e-6 - gd[i]))
  end
  T.ok(worst < 1e-6, string.format("QGAN discriminator gradient = finite differences (max error %.2e)", worst))
end)

T.test("qgdm: run record, files, metrics; training lowers the loss", function()
  local dir = tmp .. "/a"
  local res = qgdm.run(cfg { out = dir, iterations = 40 })
  local doc = json.decode(slurp(dir .. "/run.json"))
  T.eq(doc.status, "done", "status")
  local m = doc.metrics
  T.ok(m.fidelity > 0 and m.fidelity <= 1 + 1e-12, "fidelity in [0, 1]")
  T.near(m.fidelity, qd.fidelity(res.generated, res.settings and cfg().target or nil), 1e-12, "metric = F(generated, target)")
  T.eq(#m.fidelity_per_t, 4, "fidelity_per_t: T + 1 entries")
  T.near(m.fidelity_per_t[#m.fidelity_per_t], m.fidelity, 1e-15, "last entry is t = 0")
  T.near(m.fidelity_per_t[1], qd.fidelity(qd.maximally_mixed(1), res.forward[4]), 1e-12, "first entry is t = T (I/d)")
  T.eq(#m.alpha_bar, 4, "alpha_bar t = 0..T")
  T.ok(res.losses[40] < res.losses[1], "loss decreases")
  T.near(res.losses[40], m.loss, 0, "metrics.loss = last loss")
  for f, shape in pairs { ["forward.npy"] = "(4, 2, 2)", ["generated_chain.npy"] = "(4, 2, 2)", ["target.npy"] = "(2, 2)",
                          ["generated.npy"] = "(2, 2)", ["params.npy"] = "(" .. #res.params .. ",)", ["history.npy"] = "(40, 2)" } do
    local s = slurp(dir .. "/" .. f)
    T.ok(s and s:find("'shape': " .. shape:gsub("%p", "%%%0"), 1), f .. " shape " .. shape)
  end
  local g = qd.load_npy(dir .. "/generated.npy", "dm")
  T.ok(maxdiff(g, res.generated) == 0, "generated.npy = the generated state")
end)

T.test("qgdm: a resumed run is bit for bit the uninterrupted one", function()
  local full = qgdm.run(cfg { out = tmp .. "/full", iterations = 12 })
  local part = qgdm.run(cfg { out = tmp .. "/part", iterations = 12, stop_after = 5 })
  T.eq(part.stopped, true, "stopped")
  T.eq(json.decode(slurp(tmp .. "/part/run.json")).status, "stopped", "status stopped")
  local res = qgdm.run(cfg { resume = tmp .. "/part", iterations = 12 })
  for i = 1, 12 do T.eq(res.losses[i], full.losses[i], "loss " .. i) end
  T.eq(slurp(tmp .. "/part/params.npy"), slurp(tmp .. "/full/params.npy"), "params.npy identical")
  T.raises(function() qgdm.run(cfg { resume = tmp .. "/part", iterations = 13 }) end, "settings", "changed settings refused")
end)

T.test("qgdm: a checkpoint every 100 iterations unless told otherwise", function()
  T.eq(P.check(cfg()).ckpt_every, 100, "default period")
  T.eq(P.check(cfg { ckpt_every = 7 }).ckpt_every, 7, "given period")
end)

T.test("qgdm: QGAN runs and records its curves", function()
  local res = qgdm.qgan(cfg { out = tmp .. "/gan", iterations = 5, D_layers = 2 })
  T.eq(#res.fidelities, 5, "fidelity per iteration")
  T.eq(json.decode(slurp(tmp .. "/gan/run.json")).settings.kind, "qgan", "record says qgan")
end)

T.test("qgdm: targets", function()
  local g = qgdm.target("gibbs", 3, qd.rng(1), { beta = 0.7, g = 1.3 })
  T.ok(maxdiff(g, (qd.pauli_sum.tfim(3, 1.3):gibbs(0.7))) < 1e-15, "gibbs = the TFIM's Gibbs state")
  T.near(qgdm.target("pure", 2, qd.rng(1)):purity(), 1, 1e-12, "pure")
  local m = qgdm.target("mixed", 3, qd.rng(1), { rank = 3 })
  local ev, nz = m:eigenvalues(), 0
  for i = 1, #ev do if ev[i] > 1e-12 then nz = nz + 1 end end
  T.eq(nz, 3, "rank-3 mixture")
end)

T.test("qgdm: --ansatz reaches the run; ry_rz_cz with even L starts every block at the identity", function()
  local spec = { name = "t", options = qgdm.cli_options() }
  T.eq(qgdm.from_cli(qgdm.parse_cli({}, spec), {}).ansatz, "hardware_efficient", "default = the library's")
  local opts = qgdm.parse_cli({ "--ansatz", "ry_rz_cz", "--init-scale", "0" }, spec)
  local c = qgdm.from_cli(opts, cfg { na = 1, blocks = 2, L = 2 })
  T.eq(c.ansatz, "ry_rz_cz", "--ansatz ry_rz_cz")
  T.eq(c.init_scale, 0, "--init-scale 0")
  -- at theta = 0 every step is the identity channel: the chain from I/d stays at I/d and
  -- the gradient vanishes there (the chain's first-order change of I/d (x) pad is zero)
  local R = P.model(P.check(c))
  local L, g, gen0 = P.loss_grad(R, qd.vector(R.P))
  local gmax = 0
  for i = 1, #g do gmax = math.max(gmax, math.abs(g[i])) end
  T.ok(gmax < 1e-14, string.format("gradient 0 at the identity (max %.2e)", gmax))
  T.ok(qd.trace_distance(gen0, qd.maximally_mixed(1)) < 1e-14, "rhohat_0 = I/d at the identity")
  T.ok(L > 0, "loss")
  -- recorded among the options only when given: older runs keep their settings (and resume)
  local r0 = qgdm.run(qgdm.from_cli(qgdm.parse_cli({ "--quiet" }, spec), cfg { iterations = 1, save_data = false, out = tmp .. "/ans0" }))
  T.eq(r0.settings.options.ansatz, nil, "default --ansatz not in the recorded options")
  T.eq(r0.settings.ansatz, "hardware_efficient", "the settings still name the ansatz")
  local r1 = qgdm.run(qgdm.from_cli(qgdm.parse_cli({ "--ansatz", "ry_rz_cz", "--quiet" }, spec), cfg { iterations = 1, save_data = false, out = tmp .. "/ans1" }))
  T.eq(r1.settings.options.ansatz, "ry_rz_cz", "a given --ansatz is recorded")
  -- away from it the gradient agrees with finite differences
  fd_check("RE-QGDM, ry_rz_cz", cfg { target = qgdm.target("pure", 2, qd.rng(1)), na = 1, blocks = 2, ansatz = "ry_rz_cz" }, P.loss_grad)
end)

T.test("qgdm: errors name the option", function()
  T.raises(function() qgdm.run(cfg { loss = "kl" }) end, "option 'loss'", "loss")
  T.raises(function() qgdm.run(cfg { L = 0 }) end, "option 'L'", "L")
  T.raises(function() qgdm.run(cfg { ansatz = "brickwork" }) end, "option 'ansatz'", "ansatz")
  T.raises(function() qgdm.run(cfg { bogus = 1 }) end, "unknown option 'bogus'", "unknown")
  T.raises(function() qgdm.run(cfg { target = qd.ensemble(1, 2) }) end, "option 'target'", "target type")
  T.raises(function() qgdm.run(cfg { lr = -1 }) end, "option 'lr'", "lr")
  T.raises(function() qgdm.run(cfg { target = qgdm.target("pure", 7, qd.rng(1)) }) end, "at most 13", "too many qubits")
  T.raises(function() qgdm.run(cfg { blocks = 2, na = 0 }) end, "na >= 1", "blocks without auxiliaries")
  T.raises(function() qgdm.qgan(cfg { D_layers = 0 }) end, "D_layers", "D_layers")
  T.raises(function() qgdm.qgan(cfg { step_weights = { 1, 1, 1 } }) end, "option 'step_weights'", "qgan refuses step weights")
  T.raises(function() qgdm.run(cfg { step_weights = { 1, 1 } }) end, "option 'step_weights': 3 weights (one per step) expected, got 2", "weights count")
  T.raises(function() qgdm.run(cfg { step_weights = { 1, -1, 1 } }) end, "weight 2: finite number >= 0 expected, got -1", "negative weight")
  T.raises(function() qgdm.run(cfg { step_weights = { 1, 1, "x" } }) end, "weight 3: finite number >= 0 expected", "weight type")
  T.raises(function() qgdm.run(cfg { step_weights = 2 }) end, "option 'step_weights'", "weights not a table")
  T.raises(function() qgdm.target("cat", 2, qd.rng(1)) end, "pure, mixed or gibbs", "target kind")
  local ok, err = pcall(function() qgdm.run(cfg { loss = "kl" }) end)
  T.ok(not ok and err:find("test_qgdm.lua", 1, true), "error points at the caller: " .. tostring(err))
end)

T.rmdir(tmp)
