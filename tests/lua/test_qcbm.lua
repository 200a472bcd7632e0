-- test_qcbm.lua — qd.protocols.qcbm and the Born-rule helpers it adds to qd.loss: the
-- targets, the losses against naive Lua references, the MMD observable identity
-- MMD^2 = sum_A w_sigma(|A|) (<Z_A>_p - <Z_A>_q)^2, adjoint gradients against finite
-- differences, parameter shift = adjoint, the sampled shift estimator is unbiased, the
-- variance study's bookkeeping, resume bit for bit, and the error messages.
local T = require "testlib"
local qd = require "qd"
local json = require "qd.json"
local qcbm = require "qd.protocols.qcbm"
local P = qcbm.pieces

local tmp = T.tmpdir()
local slurp = T.slurp

local function popcount(x)
  local c = 0
  while x > 0 do c, x = c + (x & 1), x >> 1 end
  return c
end

local function vec(t)
  local v = qd.vector(#t)
  for i = 1, #t do v[i] = t[i] end
  return v
end

local function random_probs(n, seed)
  local u = qd.rng(seed):uniform(0, 1, 1 << n)
  local s = 0
  for i = 1, #u do s = s + u[i] end
  local p = qd.vector(1 << n)
  for i = 1, #u do p[i] = u[i] / s end
  return p
end

-- <Z_A>_p = sum_x p_x (-1)^{|x & A|}, A a bit mask (qubit q = bit n-1-q; the sum is over all A)
local function zexp(p, A)
  local s = 0
  for x = 0, #p - 1 do s = s + p[x + 1] * ((popcount(x & A) % 2 == 0) and 1 or -1) end
  return s
end

local function naive_mmd(p, q, sigmas)
  local v = 0
  for x = 0, #p - 1 do
    for y = 0, #p - 1 do
      local k = 0
      for _, s in ipairs(sigmas) do k = k + math.exp(-popcount(x ~ y) / (2 * s)) / #sigmas end
      v = v + (p[x + 1] - q[x + 1]) * (p[y + 1] - q[y + 1]) * k
    end
  end
  return v
end

local function theta_of(P_, seed)
  local u = qd.rng(seed):uniform(0, 2 * math.pi, P_)
  local t = qd.vector(P_)
  for i = 1, P_ do t[i] = u[i] end
  return t
end

T.test("qcbm: targets", function()
  local g = qcbm.target("ghz", 4)
  T.near(g[1], 0.5, 0, "ghz 0000"); T.near(g[16], 0.5, 0, "ghz 1111")
  T.near(g:sum(), 1, 1e-15, "ghz normalised")
  local b = qcbm.target("bars", 9)
  local nz = 0
  for i = 1, #b do if b[i] > 0 then nz = nz + 1; T.near(b[i], 1 / 14, 1e-15, "bars uniform") end end
  T.eq(nz, 14, "3 x 3 bars and stripes: 2^3 + 2^3 - 2 patterns")
  -- spurious: every marginal below n bits is uniform, the n-body parity is +1
  local n = 5
  local s = qcbm.target("spurious", n)
  T.near(s:sum(), 1, 1e-15, "spurious normalised")
  local worst = 0
  for A = 1, (1 << n) - 2 do worst = math.max(worst, math.abs(zexp(s, A))) end
  T.ok(worst < 1e-15, "every <Z_A> with |A| < n vanishes, as for the uniform product")
  T.near(zexp(s, (1 << n) - 1), 1, 1e-15, "<Z_0 ... Z_{n-1}> = 1")
  local z = qcbm.zdiff_by_order(s, qd.data.ghz(n, { flip = 0.5 }))   -- flip 0.5 = uniform
  for k = 2, n do T.ok(math.abs(z[k]) < 1e-14, "zdiff of weight " .. (k - 1) .. " against uniform is 0") end
  T.near(z[n + 1], 1, 1e-12, "zdiff of weight n is 1")
  -- hep: normalised, and hard jets are central (mean |eta| bin falls with pT)
  local h = qcbm.target("hep", 6)
  T.near(h:sum(), 1, 1e-12, "hep normalised")
  local function mean_eta(i)
    local m, w = 0, 0
    for j = 0, 7 do m, w = m + j * h[i * 8 + j + 1], w + h[i * 8 + j + 1] end
    return m / w
  end
  T.ok(mean_eta(0) > mean_eta(7) + 1, "pT and |eta| correlated")
  T.ok(h[1] + h[2] > h[#h], "falling pT spectrum")
  T.eq(#qcbm.target("hep", 5), 32, "odd n: 3 pT bits, 2 eta bits")
end)

T.test("qcbm: born_vjp and born_shift against naive loops", function()
  local s = qd.haar_state(3, qd.rng(5))
  local g = random_probs(3, 6)
  local G = qd.loss.born_vjp(s, g)
  T.eq(qd.type(G), "qd.State", "G is a State")
  local worst = 0
  for i = 1, 8 do
    local sr, si = s:amp(i)
    local gr, gi = G:amp(i)
    worst = math.max(worst, math.abs(gr - g[i] * sr), math.abs(gi - g[i] * si))
  end
  T.ok(worst == 0, "G = dL/dp .* psi")
  local a, b = random_probs(3, 7), random_probs(3, 8)
  local ref = 0
  for i = 1, 8 do ref = ref + g[i] * (a[i] - b[i]) end
  T.near(qd.loss.born_shift(g, a, b), 0.5 * ref, 1e-16, "born_shift = sum g (p+ - p-)/2")
end)

T.test("qcbm: losses against naive references", function()
  local n = 3
  local c = qcbm.ansatz("hardware_efficient", n, 2)
  local th = theta_of(c:nparams(), 11)
  local psi = c:run(qd.state(n), th)
  local p, q = psi:probs(), random_probs(n, 12)
  for _, sig in ipairs { { 0.1 }, { 1 }, { 3 }, { 0.25, 1, 3 } } do
    local arg = #sig == 1 and sig[1] or sig
    T.near(qd.loss.mmd_bits(p, q, { sigma = arg }), naive_mmd(p, q, sig), 1e-14, "mmd vs naive double sum")
  end
  local kl = 0
  for i = 1, #q do kl = kl + q[i] * math.log(q[i] / p[i]) end
  T.near(qd.loss.kl(p, q), kl, 1e-13, "kl vs naive")
  local ov_r, ov_i = 0, 0
  for i = 1, #q do
    local r, im = psi:amp(i)
    ov_r, ov_i = ov_r + math.sqrt(q[i]) * r, ov_i + math.sqrt(q[i]) * im
  end
  T.near(qd.loss.global_fidelity(psi, q), 1 - ov_r ^ 2 - ov_i ^ 2, 1e-14, "global fidelity vs naive overlap")
  -- local fidelity of phi = U^dagger |q>: 1 - mean_j P(qubit j = 0), from the amplitudes
  local phi = c:inverse():run(qcbm.target_state(q), th)
  local pz = 0
  for x = 0, 7 do
    local r, im = phi:amp(x + 1)
    pz = pz + (r * r + im * im) * (n - popcount(x)) / n
  end
  T.near(qd.loss.local_fidelity(phi), 1 - pz, 1e-14, "local fidelity vs naive")
  -- U^dagger really is the inverse: U U^dagger |q> = |q>
  T.near(c:run(phi, th):fidelity(qcbm.target_state(q)), 1, 1e-12, "U U^dagger |q> = |q>")
end)

T.test("qcbm: the MMD is the observable sum_A w_sigma(|A|) (<Z_A>_p - <Z_A>_q)^2", function()
  for _, n in ipairs { 2, 4 } do
    local p, q = random_probs(n, 20 + n), qcbm.target("ghz", n)
    for _, sig in ipairs { 0.1, 1, n, 7.5 } do
      local ps = (1 - math.exp(-1 / (2 * sig))) / 2
      local obs, by = 0, {}
      for k = 0, n do by[k + 1] = 0 end
      for A = 0, (1 << n) - 1 do
        local k = popcount(A)
        local t = (1 - ps) ^ (n - k) * ps ^ k * (zexp(p, A) - zexp(q, A)) ^ 2
        obs, by[k + 1] = obs + t, by[k + 1] + t
      end
      T.near(qd.loss.mmd_bits(p, q, { sigma = sig }), obs, 1e-14, string.format("n=%d sigma=%g: kernel form = observable", n, sig))
      T.near(naive_mmd(p, q, { sig }), obs, 1e-14, "naive kernel sum = observable")
      local o = qd.loss.mmd_bits_orders(p, q, { sigma = sig })
      for k = 0, n do T.near(o[k + 1], by[k + 1], 1e-14, "order " .. k) end
    end
    local z = qcbm.zdiff_by_order(p, q)
    for k = 0, n do
      local ref = 0
      for A = 0, (1 << n) - 1 do if popcount(A) == k then ref = ref + (zexp(p, A) - zexp(q, A)) ^ 2 end end
      T.near(z[k + 1], ref, 1e-12, "zdiff_by_order weight " .. k)
    end
  end
end)

local function cfg(extra)
  local c = { n = 3, data = "bars", loss = "mmd", sigma = 1, L = 2, iterations = 8, quiet = true, seed = 4 }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

T.test("qcbm: adjoint gradients = finite differences, parameter shift = adjoint", function()
  for _, case in ipairs {
    { loss = "mmd", sigma = 0.5 }, { loss = "mmd", sigma = { 0.25, "n" } }, { loss = "kl", data = "hep" },
    { loss = "global_fidelity" }, { loss = "local_fidelity", data = "spurious" },
    { loss = "mmd", ansatz = "strongly_entangling", sigma = "n" }, { loss = "kl", ansatz = "hardware_efficient", data = "ghz" },
  } do
    local R = P.model(P.check_train(cfg(case)))
    local th = theta_of(R.P, 31)
    local L, g = P.loss_grad(R, th, "adjoint")
    local Ls, gs = P.loss_grad(R, th, "shift")
    T.near(L, P.loss_at(R, th), 1e-14, case.loss .. ": loss of the gradient call = loss_at")
    T.near(Ls, L, 1e-14, case.loss .. ": shift loss = adjoint loss")
    local h, wfd, wps = 1e-6, 0, 0
    for i = 1, R.P do
      local x = th:copy()
      x[i] = th[i] + h
      local lp = P.loss_at(R, x)
      x[i] = th[i] - h
      local lm = P.loss_at(R, x)
      wfd = math.max(wfd, math.abs((lp - lm) / (2 * h) - g[i]))
      wps = math.max(wps, math.abs(gs[i] - g[i]))
    end
    local label = case.loss .. " " .. (case.ansatz or "ry_rz_cz") .. " " .. json.encode(case.sigma or "")
    T.ok(wfd < 1e-7, string.format("%s: adjoint = FD (max error %.2e)", label, wfd))
    T.ok(wps < 1e-12, string.format("%s: shift = adjoint (max difference %.2e)", label, wps))
  end
end)

T.test("qcbm: the sampled parameter-shift gradient is unbiased", function()
  local R = P.model(P.check_train(cfg { n = 2, data = "ghz", loss = "mmd", sigma = 0.7, L = 1, shots = 50 }))
  local th = theta_of(R.P, 41)
  local _, gex = P.loss_grad(R, th, "adjoint")
  -- the exact MMD against the data's empirical distribution is what the estimator targets
  local emp = qd.vector(4)
  local tot = 0
  for k, v in pairs(R.data_samples) do emp[tonumber(k, 2) + 1] = v; tot = tot + v end
  for i = 1, 4 do emp[i] = emp[i] / tot end
  local R2 = { c = R.c, circ = R.circ, zero = R.zero, sig = R.sig, q = emp, P = R.P }
  local _, gemp = P.loss_grad(R2, th, "adjoint")
  local reps = 300
  local m, m2 = {}, {}
  for i = 1, R.P do m[i], m2[i] = 0, 0 end
  for r = 1, reps do
    local _, g = P.loss_grad(R, th, "shots", qd.rng(900 + r))
    for i = 1, R.P do m[i], m2[i] = m[i] + g[i] / reps, m2[i] + g[i] ^ 2 / reps end
  end
  for i = 1, R.P do
    local se = math.sqrt((m2[i] - m[i] ^ 2) / reps)
    T.ok(math.abs(m[i] - gemp[i]) < 5 * se + 1e-12,
      string.format("slot %d: mean %.4g vs exact %.4g (se %.2g; exact vs the true target %.4g)", i, m[i], gemp[i], se, gex[i]))
  end
end)

T.test("qcbm: training records, files, and lowers the loss", function()
  local dir = tmp .. "/t"
  local res = qcbm.train(cfg { out = dir, iterations = 40, loss = "kl", data = "ghz" })
  local doc = json.decode(slurp(dir .. "/run.json"))
  T.eq(doc.status, "done", "status")
  local m = doc.metrics
  for _, k in ipairs { "kl", "tv", "mmd", "loss", "zdiff_by_order", "zdiff_low", "iterations" } do T.ok(m[k] ~= nil, "metric " .. k) end
  local d = qcbm.distances(res.probs, qcbm.target("ghz", 3), 1)
  T.near(m.kl, d.kl, 1e-14, "kl = KL(q || p) of the final model"); T.near(m.tv, d.tv, 1e-14, "tv")
  T.ok(res.history.loss[40] < res.history.loss[1], "loss decreases")
  T.near(res.history.kl[1], res.history.loss[1], 1e-13, "history: kl before step 1 = its loss")
  for f, shape in pairs { ["history.npy"] = "(40, 4)", ["probs.npy"] = "(8,)", ["target.npy"] = "(8,)",
                          ["params.npy"] = "(" .. #res.params .. ",)" } do
    local s = slurp(dir .. "/" .. f)
    T.ok(s and s:find("'shape': " .. shape:gsub("%p", "%%%0"), 1), f .. " shape " .. shape)
  end
  local r2 = qcbm.train(cfg { out = tmp .. "/t2", iterations = 200, loss = "mmd", sigma = "n", data = "ghz", lr = 0.1, L = 3 })
  T.ok(r2.metrics.tv < 0.05, "ghz on 3 qubits learnt with MMD (tv " .. r2.metrics.tv .. ")")
end)

T.test("qcbm: a resumed run is bit for bit the uninterrupted one", function()
  for _, extra in ipairs { { loss = "mmd", sigma = { 0.5, 2 } }, { loss = "mmd", shots = 40 }, { loss = "local_fidelity" } } do
    local tag = extra.loss .. (extra.shots and "shots" or "")
    local full = qcbm.train(cfg { out = tmp .. "/full" .. tag, iterations = 10, loss = extra.loss, sigma = extra.sigma, shots = extra.shots })
    local part = qcbm.train(cfg { out = tmp .. "/part" .. tag, iterations = 10, stop_after = 4, loss = extra.loss, sigma = extra.sigma, shots = extra.shots })
    T.eq(part.stopped, true, tag .. ": stopped")
    local res = qcbm.train(cfg { resume = tmp .. "/part" .. tag, iterations = 10, loss = extra.loss, sigma = extra.sigma, shots = extra.shots })
    local same = true
    for i = 1, 10 do same = same and res.history.loss[i] == full.history.loss[i] end
    T.ok(same, tag .. ": losses identical")
    T.eq(slurp(tmp .. "/part" .. tag .. "/params.npy"), slurp(tmp .. "/full" .. tag .. "/params.npy"), tag .. ": params.npy identical")
    T.eq(slurp(tmp .. "/part" .. tag .. "/history.npy"), slurp(tmp .. "/full" .. tag .. "/history.npy"), tag .. ": history.npy identical")
  end
  T.raises(function() qcbm.train(cfg { resume = tmp .. "/partmmd", iterations = 11, sigma = { 0.5, 2 } }) end, "settings", "changed settings refused")
  -- the variance study: one checkpoint per size
  local vc = { n = { 2, 3, 4 }, K = 5, quiet = true, seed = 2 }
  local function V(extra)
    local c = {}
    for k, v in pairs(vc) do c[k] = v end
    for k, v in pairs(extra) do c[k] = v end
    return qcbm.variance(c)
  end
  local full = V { out = tmp .. "/vfull" }
  local part = V { out = tmp .. "/vpart", stop_after = 2 }
  T.eq(part.stopped, true, "variance stopped")
  V { resume = tmp .. "/vpart" }
  local a, b = json.decode(slurp(tmp .. "/vfull/run.json")), json.decode(slurp(tmp .. "/vpart/run.json"))
  T.eq(json.encode(b.metrics), json.encode(a.metrics), "variance metrics identical after resume")
  for _, n in ipairs { 2, 3, 4 } do
    local f = string.format("/values_n%02d.npy", n)
    T.eq(slurp(tmp .. "/vpart" .. f), slurp(tmp .. "/vfull" .. f), f .. " identical")
  end
  T.eq(#full.values, 3, "three sizes")
end)

T.test("qcbm: variance study bookkeeping; shift = adjoint; inits independent of K", function()
  local a = qcbm.variance { n = { 3, 2 }, K = 4, quiet = true, seed = 7, save_data = false, out = tmp .. "/va" }
  local b = qcbm.variance { n = { 2 }, K = 6, quiet = true, seed = 7, grad = "adjoint", save_data = false, out = tmp .. "/vb" }
  local keys = a.settings.keys
  T.eq(table.concat(keys, ","), "sigma_0.1,sigma_1,sigma_n,kl,local_fidelity,global_fidelity", "keys")
  local V = a.metrics.variance
  T.eq(V.n[1], 3, "sizes in the given order"); T.eq(V.n[2], 2, "second size")
  for _, k in ipairs(keys) do
    local m, v = qcbm.mean_var(a.values[1].loss[k])
    T.near(V.loss[k][1], v, 0, k .. ": variance of the recorded values"); T.near(a.metrics.mean.loss[k][1], m, 0, k .. ": mean")
    for i = 1, 4 do
      T.near(b.values[1].loss[k][i], a.values[2].loss[k][i], 1e-13, k .. ": init " .. i .. " the same for K = 4 and 6")
      T.near(b.values[1].grad[k][i], a.values[2].grad[k][i], 1e-12, k .. ": dL/dtheta_1 adjoint = shift, init " .. i)
    end
  end
  -- the decomposition by Pauli weight sums to the mean MMD
  local o = a.metrics.orders.sigma_1[1]
  local s = 0
  for w = 1, #o do s = s + o[w] end
  T.near(s, a.metrics.mean.loss.sigma_1[1], 1e-14, "orders sum to the mean MMD")
  T.eq(#o, 4, "weights 0..3 at n = 3")
  -- theta ~ U(0, 2 pi) from the variance stream
  local th = qcbm.variance_theta(7, 3, 1, 12)
  local u = qd.rng(7):substream(qcbm.keys.variance):substream(3):substream(1):uniform(0, 2 * math.pi, 12)
  T.eq(th[12], u[12], "theta from substream n, k")
  local b1, a1 = qcbm.fit_rate({ 1, 2, 3 }, { math.exp(2 - 0.5), math.exp(2 - 1.0), math.exp(2 - 1.5) })
  T.near(b1, 0.5, 1e-12, "fit_rate slope"); T.near(a1, 2, 1e-12, "fit_rate intercept")
end)

T.test("qcbm: errors name the argument", function()
  local tr = function(extra) return function() qcbm.train(cfg(extra)) end end
  T.raises(tr { bogus = 1 }, "unknown option 'bogus'", "unknown option")
  T.raises(tr { loss = "hinge" }, "option 'loss'", "loss")
  T.raises(tr { data = "mnist" }, "option 'data'", "data")
  T.raises(tr { ansatz = "qaoa" }, "option 'ansatz'", "ansatz")
  T.raises(tr { sigma = 0 }, "option 'sigma'", "sigma 0")
  T.raises(tr { sigma = "m" }, "option 'sigma'", "sigma string")
  T.raises(tr { sigma = {} }, "option 'sigma'", "sigma empty")
  T.raises(tr { sigma = { 1, -2 } }, "option 'sigma'", "sigma list entry")
  T.raises(tr { lr = 0 }, "option 'lr'", "lr")
  T.raises(tr { L = 0 }, "option 'L'", "L")
  T.raises(tr { n = 25 }, "at most 24", "n")
  T.raises(tr { iterations = 0 }, "option 'iterations'", "iterations")
  T.raises(tr { loss = "kl", shots = 10 }, "option 'shots'", "shots need mmd")
  T.raises(tr { shots = 1 }, "option 'shots': >= 2", "one shot")
  T.raises(tr { shots = 10, grad = "adjoint" }, "option 'grad'", "adjoint with shots")
  T.raises(tr { grad = "fd" }, "option 'grad'", "grad choice")
  T.raises(function() qcbm.train(7) end, "options table expected", "not a table")
  local va = function(c) return function() qcbm.variance(c) end end
  T.raises(va { n = {} }, "option 'n'", "no sizes")
  T.raises(va { n = { 2, 0 } }, "option 'n': qubit counts", "bad size")
  T.raises(va { n = { 2, 2 } }, "given twice", "size twice")
  T.raises(va { n = 3 }, "option 'n'", "n not a list")
  T.raises(va { n = { 2 }, K = 1 }, "option 'K'", "K")
  T.raises(va { n = { 2 }, sigmas = { 0.1, "x" } }, "option 'sigmas'", "bad sigma")
  T.raises(va { n = { 2 }, sigmas = { 1, 1.0 } }, "given twice", "sigma twice")
  T.raises(va { n = { 2 }, sigmas = {} }, "option 'sigmas'", "no sigmas")
  T.raises(va { n = { 2 }, param = 9 }, "option 'param'", "param beyond the slots")
  T.raises(va { n = { 2 }, grad = "fd" }, "option 'grad'", "variance grad")
  T.raises(function() qcbm.target("mnist", 3) end, "bad argument #1 to 'target'", "target kind")
  T.raises(function() qcbm.target("ghz", 0) end, "bad argument #2 to 'target'", "target n")
  T.raises(function() qcbm.target("ghz", 3, {}) end, "bad argument #3 to 'target'", "target extra")
  T.raises(function() qcbm.hep(2.5) end, "bad argument #1 to 'hep'", "hep n")
  T.raises(function() qcbm.ansatz("qaoa", 2, 1) end, "bad argument #1 to 'ansatz'", "ansatz name")
  T.raises(function() qcbm.sigmas_of({ "x" }, 3) end, "option 'sigma'", "sigmas_of")
  T.raises(function() qcbm.stream(1, "bogus") end, "one of init, data, shots, variance expected", "stream name")
  local s = qd.state(2)
  T.raises(function() qd.loss.born_vjp(s, { 1, 2, 3 }) end, "bad argument #2 to 'born_vjp' (gradient dL/dp of length 4 expected, got 3)", "vjp length")
  T.raises(function() qd.loss.born_vjp(s, { 1, 0 / 0, 1, 1 }) end, "finite entries expected", "vjp nan")
  T.raises(function() qd.loss.born_vjp({}, { 1 }) end, "bad argument #1 to 'born_vjp'", "vjp state")
  T.raises(function() qd.loss.born_vjp(s, { 1, 1, 1, 1 }, 3) end, "unexpected extra argument", "vjp extra")
  T.raises(function() qd.loss.born_shift({ 1, 1 }, { 0.5, 0.5 }, { 1, 0, 0 }) end, "bad argument #3 to 'born_shift'", "shift lengths")
  T.raises(function() qd.loss.born_shift({ 1, 1 }, { -0.5, 0.5 }, { 1, 0 }) end, "probabilities >= 0", "shift negative")
  T.raises(function() qd.loss.born_shift({ 1 }, { 0.5, 0.5 }, { 1, 0 }) end, "bad argument #1 to 'born_shift'", "shift gradient length")
  T.eq(qcbm.parse_sigma("n"), "n", "parse n")
  local l = qcbm.parse_sigma("0.25, 1,n")
  T.eq(#l, 3, "parse list"); T.eq(l[2], 1, "parse list entry")
  T.eq(qcbm.parse_sigma("0"), nil, "parse 0 refused")
  T.eq(qcbm.parse_sigma("abc"), nil, "parse junk refused")
end)

-- the examples' usage errors: a message naming the option, exit status 2, no run directory
T.test("qcbm: the examples refuse bad options", function()
  local QD = (arg and arg[-1]) or "qd"
  local function run(args)
    local p = io.popen(string.format("'%s' %s 2>&1; echo \"rc=$?\"", QD, args))
    local out = p:read("a")
    p:close()
    return out
  end
  local root = (arg and arg[0] and arg[0]:match("^(.*)/tests/lua/[^/]*$")) or "."
  local ex = root .. "/examples/"
  for _, case in ipairs {
    { "qcbm_train.lua --sigma 0", "--sigma: a number > 0, n, or a comma list" },
    { "qcbm_train.lua --sigma 1,x", "got x" },
    { "qcbm_train.lua --loss hinge", "--loss" },
    { "qcbm_train.lua --data mnist", "--data" },
    { "qcbm_train.lua --n 25", "--n" },
    { "qcbm_variance.lua --nmin 5 --nmax 3", "--nmax 3 is below --nmin 5" },
    { "qcbm_variance.lua --inits 1", "--inits" },
    { "qcbm_variance.lua --grad fd", "--grad" },
  } do
    local out = run(ex .. case[1] .. " --out " .. tmp .. "/never")
    T.ok(out:find(case[2], 1, true) ~= nil and out:find("rc=2", 1, true) ~= nil,
      case[1] .. ": usage error naming the option (got: " .. out:sub(1, 200) .. ")")
  end
  T.ok(slurp(tmp .. "/never/run.json") == nil, "no run record written")
end)

T.rmdir(tmp)
