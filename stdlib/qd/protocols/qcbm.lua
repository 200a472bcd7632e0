-- qd.protocols.qcbm — quantum circuit Born machines: training with explicit (KL) and
-- implicit (bitstring MMD) losses and the fidelity losses, and the concentration
-- (trainability) study of arXiv 2305.02881.
--
--   local qcbm = require "qd.protocols.qcbm"
--   local res = qcbm.train{ seed = 1, n = 6, data = "spurious", loss = "mmd", sigma = "n",
--                           L = 4, iterations = 300, lr = 0.05, out = "runs/x" }
--   res.metrics.kl, res.metrics.tv, res.metrics.mmd, res.metrics.zdiff_by_order, ...
--   local v = qcbm.variance{ seed = 1, n = {2, 4, 6}, L = 2, K = 200 }
--   v.metrics.variance.loss.sigma_1[i], v.metrics.variance.grad.kl[i], v.metrics.variance.n[i]
--
-- The model: p_theta(x) = |<x|U(theta)|0..0>|^2, U an ansatz of qd.ansatz with L layers
-- ("ry_rz_cz" by default; "hardware_efficient", "strongly_entangling"); qubit 0 is the most
-- significant bit of x, as everywhere in qd.
-- The losses (q the target distribution, |q> = sum_x sqrt(q_x)|x>):
--   mmd              MMD^2(p, q) with the Gaussian bitstring kernel exp(-hamming/(2 sigma)),
--                    sigma a number, "n" (= the qubit count) or a list (a mixture: the mean
--                    kernel). As an observable it is sum_A w_sigma(|A|) (<Z_A>_p - <Z_A>_q)^2,
--                    w_sigma(k) = (1 - p_s)^(n-k) p_s^k, p_s = (1 - e^{-1/(2 sigma)})/2:
--                    global for small sigma, low-bodied for sigma ~ n.
--   kl               KL(q || p), p clipped at 1e-12 (explicit).
--   global_fidelity  1 - |<q|U|0>|^2.
--   local_fidelity   1 - (1/n) sum_j <phi|(|0><0|_j (x) I)|phi>, phi = U^dagger |q>.
-- Gradients: "adjoint" (exact, all parameters in one backward sweep: the Born-rule chain
-- rule G = dL/dp .* psi, qd.loss.born_vjp) or "shift" (the hardware-style parameter-shift
-- rule, two circuits per parameter: for the probability losses the exact derivative
-- sum_x dL/dp_x (p_x(theta + pi/2) - p_x(theta - pi/2))/2, qd.loss.born_shift; the fidelity
-- losses are linear in the state, so their own shifted values). Both need every parameter
-- slot to enter one rotation exp(-i theta P/2) once — true of the qd.ansatz builders.
-- Finite shots (shots > 0, loss mmd only): the model is sampled, the loss is the unbiased
-- U-statistic against a fixed data set of `shots` draws from q (qd.loss.mmd_bits_samples),
-- and the gradient the sampled parameter-shift estimator of Liu & Wang (arXiv 1804.04168):
-- dMMD^2/dtheta_k = 1/2 [(M(x-, x) - M(x-, y)) - (M(x+, x) - M(x+, y))], M the U-statistic,
-- x, x+, x- model samples at theta, theta +- pi/2 e_k, y the data (the self terms cancel
-- exactly, so the estimate is unbiased).
--
-- Targets (qcbm.target): "ghz" 1/2 (delta_{0..0} + delta_{1..1}); "bars" bars and stripes on
-- a rows x cols grid (rows the largest divisor of n <= sqrt n: 3 x 3 for n = 9); "hep" a
-- discretised jet-like (pT, |eta|) pair (qcbm.hep); "spurious" the parity distribution
-- q(x) = 2^{1-n} for even |x| (0 otherwise): every marginal of fewer than n bits is uniform,
-- exactly that of the uniform product distribution, while <Z_0 ... Z_{n-1}>_q = 1 where the
-- product has 0 — a loss that only sees low-order correlations cannot tell them apart.
--
-- Randomness: substreams of qd.rng(seed) keyed by purpose (qcbm.keys): init (training's
-- theta ~ U(0, 2 pi)), data (the target's samples), shots (the model's samples: iteration it
-- uses substream it of this stream), variance (the study's theta: substream n, then k for
-- init k). A resumed run gives the bits of an uninterrupted one.
local qd = require "qd"
local core = require "qd.core"
local protocol = require "qd.protocol"

local M = {}
M.format = 1

local outside = protocol.outside

M.keys = { init = 1, data = 2, shots = 3, variance = 4 }
-- qcbm.stream(seed, name) -> the substream of qd.rng(seed) used for name
M.stream = protocol.streams(M.keys)

M.ansatze = { "ry_rz_cz", "hardware_efficient", "strongly_entangling" }
M.datasets = { "ghz", "bars", "hep", "spurious" }
M.losses = { "mmd", "kl", "local_fidelity", "global_fidelity" }
-- the largest register: 2^24 amplitudes (256 MiB) per state; the variance study holds six
M.max_qubits = 24

local function fail(fname, k, msg) error(string.format("bad argument #%d to '%s' (%s)", k, fname, msg), outside()) end

local function one_of(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

-- ------------------------------------------------------------------ ansatz and targets

-- qcbm.ansatz(name, n, L) -> qd.Circuit: the qd.ansatz builder of that name
function M.ansatz(name, n, L)
  if not one_of(M.ansatze, name) then
    fail("ansatz", 1, "one of " .. table.concat(M.ansatze, ", ") .. " expected, got " .. tostring(name))
  end
  return qd.ansatz[name](n, L)
end

-- erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7; Lua has none): bin masses of the
-- HEP-like target, a smooth model, not a measurement
local function erf(x)
  local s = x < 0 and -1 or 1
  x = math.abs(x)
  local t = 1 / (1 + 0.3275911 * x)
  local y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
    * math.exp(-x * x)
  return s * y
end

-- qcbm.hep(n) -> qd.Vector: a jet-like correlated pair discretised to n bits. The leading
-- jet's transverse momentum pT in [30, 300] GeV with the falling spectrum dN/dpT ~ pT^-3,
-- in 2^n1 logarithmic bins (n1 = ceil(n/2), qubits 0 .. n1-1, most significant first); its
-- |pseudorapidity| in [0, 2.5] given pT a half-normal of width s(pT) = 0.5 + 1.5 (30 GeV/pT)
-- (hard jets are central), in 2^(n-n1) linear bins (the other qubits). Bin masses are exact
-- integrals (the pT bin's width taken at its geometric centre): p(i, j) = P(pT bin i) P(|eta|
-- bin j | pT_i). Deterministic (no sampling).
function M.hep(n)
  if math.type(n) ~= "integer" or n < 1 or n > M.max_qubits then
    fail("hep", 1, string.format("number of qubits 1 ... %d expected, got %s", M.max_qubits, tostring(n)))
  end
  local n1 = (n + 1) // 2
  local n2 = n - n1
  local B1, B2 = 1 << n1, 1 << n2
  local lo, hi, etamax = 30.0, 300.0, 2.5
  local pt_mass, pt_mid = {}, {}
  for i = 0, B1 - 1 do
    local a, b = lo * (hi / lo) ^ (i / B1), lo * (hi / lo) ^ ((i + 1) / B1)
    pt_mass[i] = a ^ -2 - b ^ -2          -- integral of pT^-3 (up to a factor)
    pt_mid[i] = math.sqrt(a * b)
  end
  local v = qd.vector(B1 * B2)
  local total = 0
  for i = 0, B1 - 1 do
    local s = (0.5 + 1.5 * lo / pt_mid[i]) * math.sqrt(2)
    local norm = erf(etamax / s)
    for j = 0, B2 - 1 do
      local m = pt_mass[i] * (erf(etamax * (j + 1) / B2 / s) - erf(etamax * j / B2 / s)) / norm
      v[i * B2 + j + 1] = m
      total = total + m
    end
  end
  return v * (1 / total)
end

local function grid_of(n)
  local r = 1
  for d = 1, math.floor(math.sqrt(n) + 1e-9) do if n % d == 0 then r = d end end
  return r, n // r
end

-- qcbm.target(kind, n) -> qd.Vector q over 2^n bitstrings (kinds in the header)
function M.target(kind, n, ...)
  if select("#", ...) > 0 then fail("target", 3, "unexpected extra argument") end
  if not one_of(M.datasets, kind) then
    fail("target", 1, "one of " .. table.concat(M.datasets, ", ") .. " expected, got " .. tostring(kind))
  end
  if math.type(n) ~= "integer" or n < 1 or n > M.max_qubits then
    fail("target", 2, string.format("number of qubits 1 ... %d expected, got %s", M.max_qubits, tostring(n)))
  end
  if kind == "ghz" then return qd.data.ghz(n) end
  if kind == "bars" then
    local r, c = grid_of(n)
    return (qd.data.bars_and_stripes(r, c))
  end
  if kind == "hep" then return M.hep(n) end
  local w = {}   -- parity: weight by the number of ones
  for k = 0, n do w[k + 1] = (k % 2 == 0) and 1.0 or 0.0 end
  return core.dist_popcount(n, w)
end

-- |q> = sum_x sqrt(q_x)|x> as a qd.State (one pass over 2^n entries)
function M.target_state(q)
  local v = qd.vector(#q)
  for i = 1, #q do v[i] = math.sqrt(q[i]) end
  return qd.state.from(v, { normalize = true })
end

-- sigma list of a spec: a number, "n", or a list of them -> list of numbers
local function sigmas_of(spec, n, fname)
  local list = type(spec) == "table" and spec or { spec }
  if #list < 1 then fail(fname, 1, "option 'sigma': a number > 0, \"n\" or a non-empty list of them expected") end
  local out = {}
  for i, s in ipairs(list) do
    if s == "n" then out[i] = n
    elseif type(s) == "number" and s > 0 and s < math.huge then out[i] = s
    else fail(fname, 1, "option 'sigma': a number > 0, \"n\" or a non-empty list of them expected, got " .. tostring(s)) end
  end
  return out
end
M.sigmas_of = function(spec, n) return sigmas_of(spec, n, "sigmas_of") end

-- the run.json key of a bandwidth: sigma_0.1, sigma_1, sigma_n
function M.sigma_key(s)
  if s == "n" then return "sigma_n" end
  return "sigma_" .. string.format("%g", s)
end

-- ------------------------------------------------------------------ metrics

-- qcbm.zdiff_by_order(p, q) -> {d_0, ..., d_n}: sum over Pauli-Z strings A of weight k
-- (entry k+1) of (<Z_A>_p - <Z_A>_q)^2. From mmd_bits_orders at sigma = 0.01, where
-- e^{-1/(2 sigma)} = e^{-50} vanishes (below 2^-72) and every weight is 2^-n.
function M.zdiff_by_order(p, q)
  local n = math.floor(math.log(#p, 2) + 0.5)
  local o = qd.loss.mmd_bits_orders(p, q, { sigma = 0.01 })
  local f = 2.0 ^ n
  for k = 1, #o do o[k] = o[k] * f end
  return o
end

-- qcbm.distances(p, q, sigma) -> {kl = KL(q || p), tv = 1/2 sum |p - q|, mmd = MMD^2 at sigma}
function M.distances(p, q, sig)
  return { kl = qd.loss.kl(p, q), tv = 0.5 * (p - q):abs():sum(), mmd = qd.loss.mmd_bits(p, q, { sigma = sig }) }
end

-- ------------------------------------------------------------------ losses and gradients

-- the model R of a checked configuration: circuit, its inverse (local fidelity), target,
-- |q>, bandwidths, the zero state
local function model(c)
  local R = { c = c }
  R.circ = M.ansatz(c.ansatz, c.n, c.L)
  R.P = R.circ:nparams()
  R.q = M.target(c.data, c.n)
  R.sig = sigmas_of(c.sigma, c.n, "train")
  R.zero = qd.state(c.n)
  if c.loss == "local_fidelity" then
    R.inv = R.circ:inverse()
    R.qstate = M.target_state(R.q)
  end
  if c.shots > 0 then
    R.data_samples = M.target_state(R.q):sample(c.shots, M.stream(c.seed, "data"))
  end
  return R
end

-- L, dL/dp of a probability loss (mmd, kl)
local function prob_loss(R, p)
  if R.c.loss == "mmd" then return qd.loss.mmd_bits(p, R.q, { sigma = R.sig, grad = true }) end
  return qd.loss.kl(p, R.q, { grad = true })
end

-- the loss alone at theta (exact probabilities)
local function loss_at(R, theta)
  local loss = R.c.loss
  if loss == "local_fidelity" then return qd.loss.local_fidelity(R.inv:run(R.qstate, theta)) end
  local psi = R.circ:run(R.zero, theta)
  if loss == "global_fidelity" then return qd.loss.global_fidelity(psi, R.q) end
  return (prob_loss(R, psi:probs()))
end

local function shifted(theta, k, d)
  local t = theta:copy()
  t[k] = t[k] + d
  return t
end

-- exact loss and gradient by the adjoint
local function grad_adjoint(R, theta)
  local loss = R.c.loss
  if loss == "local_fidelity" then
    local L, g = R.inv:grad(R.qstate, theta, function(out) return qd.loss.local_fidelity(out, { grad = true }) end)
    return L, g
  end
  local L, g = R.circ:grad(R.zero, theta, function(out)
    if loss == "global_fidelity" then return qd.loss.global_fidelity(out, R.q, { grad = true }) end
    local l, gp = prob_loss(R, out:probs())
    return l, qd.loss.born_vjp(out, gp)
  end)
  return L, g
end

-- exact loss and gradient by the parameter-shift rule (two circuits per parameter)
local function grad_shift(R, theta)
  local g = qd.vector(R.P)
  local h = math.pi / 2
  local loss = R.c.loss
  if loss == "mmd" or loss == "kl" then
    local L, gp = prob_loss(R, R.circ:run(R.zero, theta):probs())
    for k = 1, R.P do
      local pp = R.circ:run(R.zero, shifted(theta, k, h)):probs()
      local pm = R.circ:run(R.zero, shifted(theta, k, -h)):probs()
      g[k] = qd.loss.born_shift(gp, pp, pm)
    end
    return L, g
  end
  for k = 1, R.P do g[k] = 0.5 * (loss_at(R, shifted(theta, k, h)) - loss_at(R, shifted(theta, k, -h))) end
  return loss_at(R, theta), g
end

-- finite shots (mmd): the U-statistic loss and the sampled parameter-shift gradient; rng
-- the iteration's generator
local function grad_shots(R, theta, rng)
  local c = R.c
  local opt = { sigma = R.sig }
  local function draw(th) return R.circ:run(R.zero, th):sample(c.shots, rng) end
  local x = draw(theta)
  local L = qd.loss.mmd_bits_samples(x, R.data_samples, opt)
  local g = qd.vector(R.P)
  local h = math.pi / 2
  for k = 1, R.P do
    local xp, xm = draw(shifted(theta, k, h)), draw(shifted(theta, k, -h))
    local dm = qd.loss.mmd_bits_samples(xm, x, opt) - qd.loss.mmd_bits_samples(xm, R.data_samples, opt)
    local dp = qd.loss.mmd_bits_samples(xp, x, opt) - qd.loss.mmd_bits_samples(xp, R.data_samples, opt)
    g[k] = 0.5 * (dm - dp)
  end
  return L, g
end

-- qcbm.loss_grad(R, theta [, method [, rng]]) -> L, dL/dtheta: method "adjoint", "shift" or
-- "shots" (rng: the generator of the samples)
local function loss_grad(R, theta, method, rng)
  method = method or R.c.grad
  if method == "adjoint" then return grad_adjoint(R, theta) end
  if method == "shift" then return grad_shift(R, theta) end
  return grad_shots(R, theta, rng)
end

-- ------------------------------------------------------------------ training

local train_spec = protocol.with_session_keys {
  name = { "string", "qcbm" },
  seed = { "integer", 1, 0 },
  n = { "integer", nil, 1 },
  data = { "string", "ghz", choices = M.datasets },
  loss = { "string", "mmd", choices = M.losses },
  sigma = { "number|string|table", 1.0 },
  ansatz = { "string", "ry_rz_cz", choices = M.ansatze },
  L = { "integer", 2, 1 },
  iterations = { "integer", nil, 1 },
  lr = { "number", 0.05 },
  shots = { "integer", 0, 0 },
  grad = { "string", "auto", choices = { "auto", "adjoint", "shift" } },
}
M.train_spec = train_spec
M.default_ckpt_every = 100

local function check_train(cfg)
  local c = protocol.config(train_spec, cfg, "train")
  local function bad(msg) fail("train", 1, msg) end
  if c.n > M.max_qubits then bad(string.format("option 'n': at most %d qubits, got %d", M.max_qubits, c.n)) end
  if not (c.lr > 0 and c.lr < math.huge) then bad("option 'lr': > 0 expected, got " .. c.lr) end
  if type(c.sigma) == "string" and c.sigma ~= "n" then bad("option 'sigma': a number > 0, \"n\" or a list expected, got " .. c.sigma) end
  sigmas_of(c.sigma, c.n, "train")
  if c.shots > 0 then
    if c.loss ~= "mmd" then bad("option 'shots': finite shots need loss 'mmd' (got '" .. c.loss .. "')") end
    if c.shots < 2 then bad("option 'shots': >= 2 expected (the unbiased estimate pairs distinct draws)") end
    if c.grad == "adjoint" then bad("option 'grad': with shots > 0 the gradient is the sampled parameter shift ('shift')") end
    c.grad = "shots"
  elseif c.grad == "auto" then
    c.grad = "adjoint"
  end
  if c.ckpt_every == 0 then c.ckpt_every = M.default_ckpt_every end
  return c
end

local function train_settings(c, P)
  return {
    name = c.name, seed = c.seed, n = c.n, data = c.data, loss = c.loss, sigma = c.sigma, ansatz = c.ansatz,
    L = c.L, iterations = c.iterations, lr = c.lr, shots = c.shots, grad = c.grad, nparams = P,
    options = protocol.result_options(c.options),
  }
end

local function check_train_state(R, st)
  local function damaged(what) error("resume: damaged checkpoint (" .. what .. ")", 0) end
  if qd.type(st.theta) ~= "qd.Vector" or #st.theta ~= R.P then damaged("theta") end
  if type(st.hist) ~= "table" or type(st.opt) ~= "table" then damaged("history") end
  for _, k in ipairs { "loss", "kl", "tv", "mmd" } do
    if type(st.hist[k]) ~= "table" or #st.hist[k] ~= #st.hist.loss then damaged("history " .. k) end
  end
  if #st.hist.loss > R.c.iterations then damaged("more iterations than the run has") end
end

local function history_matrix(h)
  local keys = { "loss", "kl", "tv", "mmd" }
  local H = qd.matrix(#h.loss, #keys)
  for i = 1, #h.loss do
    for j, k in ipairs(keys) do H:set(i, j, h[k][i]) end
  end
  return H
end

-- qcbm.train(cfg) -> {dir, stopped, settings, metrics, params, probs, history, timing}
-- cfg: n, data, loss, sigma (number, "n" or list; mmd's bandwidth and the reported mmd's),
-- ansatz, L, iterations, lr (Adam), shots (0 = exact probabilities), grad ("auto" = adjoint,
-- or the sampled shift rule with shots; "shift"), and the session keys (out, resume, ...).
-- history: per iteration the loss (as trained: an estimate with shots) and the exact KL, TV
-- and MMD of the model before the step.
local function train_impl(cfg)
  local c = check_train(cfg)
  local R = model(c)
  local settings = train_settings(c, R.P)
  local S = protocol.session {
    name = c.name, seed = c.seed, settings = settings, format = M.format, out = c.out, resume = c.resume,
    quiet = c.quiet, progress = c.progress, stop_after = c.stop_after, ckpt_every = c.ckpt_every,
    state = function()
      local th = qd.vector(R.P)
      local u = M.stream(c.seed, "init"):uniform(0, 2 * math.pi, R.P)
      for i = 1, R.P do th[i] = u[i] end
      return { theta = th, opt = { lr = c.lr }, hist = { loss = {}, kl = {}, tv = {}, mmd = {} } }
    end,
  }
  local st = S.state
  if c.resume then check_train_state(R, st) end
  local prog = S:progress { steps = 1, epochs = c.iterations, total = c.iterations, label = "QCBM " .. c.loss }
  prog:begin_step(1, 0)
  local h = st.hist
  local stopped = false
  for it = #h.loss + 1, c.iterations do
    local rng = c.shots > 0 and M.stream(c.seed, "shots"):substream(it) or nil
    local d = M.distances(R.circ:run(R.zero, st.theta):probs(), R.q, R.sig)
    local _, L = qd.optim.adam(function(x) return loss_grad(R, x, c.grad, rng) end, st.theta, st.opt)
    h.loss[it], h.kl[it], h.tv[it], h.mmd[it] = L, d.kl, d.tv, d.mmd
    prog:update(it, L)
    if not S:epoch(it) then stopped = true break end
  end
  prog:end_step(h.loss[#h.loss] or 0)
  prog:finish()
  local res = { dir = S.dir, stopped = stopped, settings = settings, params = st.theta, history = h,
                metrics = S.rec.metrics }
  if stopped then
    S:stop()
    return res
  end
  local p = R.circ:run(R.zero, st.theta):probs()
  local m = M.distances(p, R.q, R.sig)
  m.loss = loss_at(R, st.theta)
  m.iterations = #h.loss
  m.zdiff_by_order = M.zdiff_by_order(p, R.q)
  m.zdiff_low = 0   -- the discrepancy of the 1- and 2-body Z correlations
  for k = 2, math.min(3, #m.zdiff_by_order) do m.zdiff_low = m.zdiff_low + m.zdiff_by_order[k] end
  for k, v in pairs(m) do S.rec.metrics[k] = v end
  if c.save_data then
    local rec = S.rec
    st.theta:save_npy(rec:path("params.npy"))
    p:save_npy(rec:path("probs.npy"))
    R.q:save_npy(rec:path("target.npy"))
    if #h.loss > 0 then history_matrix(h):save_npy(rec:path("history.npy")) end
    S.rec.data.history_columns = { "loss", "kl", "tv", "mmd" }
  end
  res.probs = p
  res.timing = S:finish()
  return res
end

-- ------------------------------------------------------------------ the concentration study

local variance_spec = protocol.with_session_keys {
  name = { "string", "qcbm_variance" },
  seed = { "integer", 1, 0 },
  n = { "table" },
  K = { "integer", 200, 2 },
  L = { "integer", 2, 1 },
  ansatz = { "string", "ry_rz_cz", choices = M.ansatze },
  data = { "string", "ghz", choices = M.datasets },
  sigmas = { "table", false },
  param = { "integer", 1, 1 },
  grad = { "string", "shift", choices = { "shift", "adjoint" } },
}
M.variance_spec = variance_spec

-- the study's columns: the MMD bandwidths (keys sigma_*), then kl, local and global fidelity
local function variance_keys(sigmas)
  local keys = {}
  for i, s in ipairs(sigmas) do keys[i] = M.sigma_key(s) end
  for _, k in ipairs { "kl", "local_fidelity", "global_fidelity" } do keys[#keys + 1] = k end
  return keys
end

local function check_variance(cfg)
  local c = protocol.config(variance_spec, cfg, "variance")
  local function bad(msg) fail("variance", 1, msg) end
  if #c.n < 1 then bad("option 'n': a non-empty list of qubit counts expected") end
  local seen = {}
  for i, n in ipairs(c.n) do
    if math.type(n) ~= "integer" or n < 1 or n > M.max_qubits then
      bad(string.format("option 'n': qubit counts 1 ... %d expected, got %s at position %d", M.max_qubits, tostring(n), i))
    end
    if seen[n] then bad("option 'n': qubit count " .. n .. " given twice") end
    seen[n] = true
  end
  c.sigmas = c.sigmas or { 0.1, 1, "n" }
  if #c.sigmas < 1 then bad("option 'sigmas': a non-empty list expected") end
  local sk = {}
  for i, s in ipairs(c.sigmas) do
    if not (s == "n" or (type(s) == "number" and s > 0 and s < math.huge)) then
      bad(string.format("option 'sigmas': numbers > 0 or \"n\" expected, got %s at position %d", tostring(s), i))
    end
    if sk[M.sigma_key(s)] then bad("option 'sigmas': bandwidth " .. tostring(s) .. " given twice") end
    sk[M.sigma_key(s)] = true
  end
  for _, n in ipairs(c.n) do
    local P = M.ansatz(c.ansatz, n, c.L):nparams()
    if c.param > P then bad(string.format("option 'param': slot 1 ... %d of the %d-qubit ansatz expected, got %d", P, n, c.param)) end
  end
  return c
end

-- theta of init k at size n: U(0, 2 pi)^P from substream k of substream n of the "variance"
-- stream (independent of K and of the other sizes)
function M.variance_theta(seed, n, k, P)
  local u = M.stream(seed, "variance"):substream(n):substream(k):uniform(0, 2 * math.pi, P)
  local th = qd.vector(P)
  for i = 1, P do th[i] = u[i] end
  return th
end

-- one random initialisation: the value of every loss and its derivative along slot j.
-- Z = {circ, inv, zero, q, qstate, sig (numbers), keys}; returns {key = loss}, {key = dL/dtheta_j},
-- orders (per bandwidth, mmd_bits_orders)
local function study_point(Z, theta, j, method)
  local loss, grad, orders = {}, {}, {}
  local h = math.pi / 2
  local ns = #Z.sig
  if method == "adjoint" then
    for i, s in ipairs(Z.sig) do
      local L, g, out = Z.circ:grad(Z.zero, theta, function(o)
        local l, gp = qd.loss.mmd_bits(o:probs(), Z.q, { sigma = s, method = "pauli", grad = true })
        return l, qd.loss.born_vjp(o, gp)
      end)
      loss[Z.keys[i]], grad[Z.keys[i]] = L, g[j]
      orders[i] = qd.loss.mmd_bits_orders(out:probs(), Z.q, { sigma = s })
    end
    local L, g = Z.circ:grad(Z.zero, theta, function(o)
      local l, gp = qd.loss.kl(o:probs(), Z.q, { grad = true })
      return l, qd.loss.born_vjp(o, gp)
    end)
    loss.kl, grad.kl = L, g[j]
    L, g = Z.inv:grad(Z.qstate, theta, function(o) return qd.loss.local_fidelity(o, { grad = true }) end)
    loss.local_fidelity, grad.local_fidelity = L, g[j]
    L, g = Z.circ:grad(Z.zero, theta, function(o) return qd.loss.global_fidelity(o, Z.qstate, { grad = true }) end)
    loss.global_fidelity, grad.global_fidelity = L, g[j]
    return loss, grad, orders
  end
  -- parameter shift. Slot j enters one rotation R(theta_j) = exp(-i theta_j P/2), and
  -- R(theta_j +- pi/2) = (R(theta_j) +- R(theta_j + pi))/sqrt 2 (as R(t + pi) = -i P R(t)), so
  -- the shifted states are sums of two runs: U(theta +- pi/2 e_j)|0> = (psi +- psi_pi)/sqrt 2,
  -- and the same on |q> backward — four circuits instead of six, the same values to rounding
  local tpi = shifted(theta, j, math.pi)
  local r2 = 1 / math.sqrt(2)
  local psi, psipi = Z.circ:run(Z.zero, theta), Z.circ:run(Z.zero, tpi)
  local psip, psim = (psi + psipi) * r2, (psi - psipi) * r2
  local p, pp, pm = psi:probs(), psip:probs(), psim:probs()
  for i = 1, ns do
    local L, gp = qd.loss.mmd_bits(p, Z.q, { sigma = Z.sig[i], method = "pauli", grad = true })
    loss[Z.keys[i]], grad[Z.keys[i]] = L, qd.loss.born_shift(gp, pp, pm)
    orders[i] = qd.loss.mmd_bits_orders(p, Z.q, { sigma = Z.sig[i] })
  end
  local L, gp = qd.loss.kl(p, Z.q, { grad = true })
  loss.kl, grad.kl = L, qd.loss.born_shift(gp, pp, pm)
  local gf = qd.loss.global_fidelity   -- against |q> as a State: an inner product, no sqrt per call
  loss.global_fidelity = gf(psi, Z.qstate)
  grad.global_fidelity = 0.5 * (gf(psip, Z.qstate) - gf(psim, Z.qstate))
  local lf = qd.loss.local_fidelity
  local chi, chipi = Z.inv:run(Z.qstate, theta), Z.inv:run(Z.qstate, tpi)
  loss.local_fidelity = lf(chi)
  grad.local_fidelity = 0.5 * (lf((chi + chipi) * r2) - lf((chi - chipi) * r2))
  return loss, grad, orders
end
M.study_point = study_point

-- mean and unbiased variance (denominator K - 1) of a list, in index order
local function mean_var(x)
  local m = 0
  for i = 1, #x do m = m + x[i] end
  m = m / #x
  local v = 0
  for i = 1, #x do v = v + (x[i] - m) ^ 2 end
  return m, v / (#x - 1)
end
M.mean_var = mean_var

-- the study at one size n: K inits -> {n, loss = {key = {K values}}, grad = {...},
-- orders = {key = mean mmd_bits_orders over the inits}}
local function study_size(c, n, keys, prog)
  local Z = { circ = M.ansatz(c.ansatz, n, c.L), zero = qd.state(n), q = M.target(c.data, n), keys = keys }
  Z.inv = Z.circ:inverse()
  Z.qstate = M.target_state(Z.q)
  Z.sig = {}
  for i, s in ipairs(c.sigmas) do Z.sig[i] = s == "n" and n or s end
  local P = Z.circ:nparams()
  local res = { n = n, loss = {}, grad = {}, orders = {} }
  for _, k in ipairs(keys) do res.loss[k], res.grad[k] = {}, {} end
  local osum = {}
  for i = 1, #Z.sig do
    osum[i] = {}
    for w = 1, n + 1 do osum[i][w] = 0 end
  end
  for k = 1, c.K do
    local th = M.variance_theta(c.seed, n, k, P)
    local L, G, O = study_point(Z, th, c.param, c.grad)
    for _, key in ipairs(keys) do
      res.loss[key][k], res.grad[key][k] = L[key], G[key]
    end
    for i = 1, #Z.sig do
      for w = 1, n + 1 do osum[i][w] = osum[i][w] + O[i][w] end
    end
    if prog then prog:update(k, L[keys[1]]) end
  end
  for i = 1, #Z.sig do
    local o = {}
    for w = 1, n + 1 do o[w] = osum[i][w] / c.K end
    res.orders[keys[i]] = o
  end
  return res
end

local function variance_settings(c, keys)
  return {
    name = c.name, seed = c.seed, n = c.n, K = c.K, L = c.L, ansatz = c.ansatz, data = c.data, sigmas = c.sigmas,
    param = c.param, grad = c.grad, keys = keys, options = protocol.result_options(c.options),
  }
end

local function check_variance_state(c, st)
  local function damaged(what) error("resume: damaged checkpoint (" .. what .. ")", 0) end
  if type(st.done) ~= "table" or #st.done > #c.n then damaged("sizes done") end
  for i, r in ipairs(st.done) do
    if type(r) ~= "table" or r.n ~= c.n[i] or type(r.loss) ~= "table" or type(r.grad) ~= "table" then
      damaged("size " .. i)
    end
  end
end

-- the metrics of the finished sizes: variance and mean of loss and gradient per key (one
-- entry per n), the sizes, and the mean MMD decomposition by Pauli weight
local function variance_metrics(done, keys)
  local V = { loss = {}, grad = {}, n = {} }
  local Mn = { loss = {}, grad = {} }
  local orders = {}
  for _, k in ipairs(keys) do V.loss[k], V.grad[k], Mn.loss[k], Mn.grad[k] = {}, {}, {}, {} end
  for i, r in ipairs(done) do
    V.n[i] = r.n
    for _, k in ipairs(keys) do
      Mn.loss[k][i], V.loss[k][i] = mean_var(r.loss[k])
      Mn.grad[k][i], V.grad[k][i] = mean_var(r.grad[k])
    end
    for k, o in pairs(r.orders) do
      orders[k] = orders[k] or {}
      orders[k][i] = o
    end
  end
  return V, Mn, orders
end

-- qcbm.variance(cfg) -> {dir, stopped, metrics = {variance, mean, orders, n}, values, timing}
-- cfg: n (list of sizes), K (inits, default 200), L (2), ansatz ("ry_rz_cz"), data ("ghz"),
-- sigmas ({0.1, 1, "n"}), param (the slot j of dL/dtheta_j, 1), grad ("shift": the states
-- at theta and theta + pi e_j, forward and on |q> — four circuits per init — give the
-- shifted states (psi +- psi_pi)/sqrt 2 and every loss's derivative; "adjoint":
-- one backward sweep per loss), and the session keys. One checkpoint per size (resume
-- continues with the next). values_n<N>.npy: K x (2 * keys) loss values then derivatives,
-- columns in the order of settings.keys.
local function variance_impl(cfg)
  local c = check_variance(cfg)
  local keys = variance_keys(c.sigmas)
  local settings = variance_settings(c, keys)
  local S = protocol.session {
    name = c.name, seed = c.seed, settings = settings, format = M.format, out = c.out, resume = c.resume,
    quiet = c.quiet, progress = c.progress, stop_after = c.stop_after, ckpt_every = 1,
    state = function() return { done = {}, seconds = {} } end,
  }
  local st = S.state
  if c.resume then check_variance_state(c, st) end
  local prog = S:progress { steps = #c.n, epochs = c.K, total = #c.n * c.K, label = "QCBM variance" }
  local stopped = false
  for i = #st.done + 1, #c.n do
    local t0 = qd.clock()
    prog:begin_step(i, (i - 1) * c.K)
    st.done[i] = study_size(c, c.n[i], keys, prog)
    st.seconds[i] = qd.clock() - t0
    prog:end_step(0)
    if not S:epoch(i) then stopped = true break end
  end
  prog:finish()
  local V, Mn, orders = variance_metrics(st.done, keys)
  local res = { dir = S.dir, stopped = stopped, settings = settings, values = st.done, metrics = S.rec.metrics }
  if stopped then
    S:stop()
    return res
  end
  local m = S.rec.metrics
  m.variance, m.mean, m.orders = V, Mn, orders
  if c.save_data then
    for _, r in ipairs(st.done) do
      local X = qd.matrix(c.K, 2 * #keys)
      for j, k in ipairs(keys) do
        for i = 1, c.K do
          X:set(i, j, r.loss[k][i])
          X:set(i, #keys + j, r.grad[k][i])
        end
      end
      X:save_npy(S.rec:path(string.format("values_n%02d.npy", r.n)))
    end
  end
  res.timing = S:finish { seconds_per_n = st.seconds }
  return res
end

-- qcbm.fit_rate(n, v) -> b, a: least-squares fit of log v = a - b n (b: the decay rate per
-- qubit of a variance; entries with v <= 0 are skipped)
function M.fit_rate(ns, v)
  local X, Y = {}, {}
  for i = 1, #ns do
    if v[i] > 0 then X[#X + 1], Y[#Y + 1] = ns[i], math.log(v[i]) end
  end
  if #X < 2 then return nil end
  local mx, my = 0, 0
  for i = 1, #X do mx, my = mx + X[i] / #X, my + Y[i] / #X end
  local sxy, sxx = 0, 0
  for i = 1, #X do sxy, sxx = sxy + (X[i] - mx) * (Y[i] - my), sxx + (X[i] - mx) ^ 2 end
  local slope = sxy / sxx
  return -slope, my - slope * mx
end

M.train = protocol.generational(train_impl)
M.variance = protocol.generational(variance_impl)

-- the pieces, each testable alone
M.pieces = { check_train = check_train, check_variance = check_variance, model = model, loss_grad = loss_grad,
             loss_at = loss_at, study_point = study_point, study_size = study_size }

-- ------------------------------------------------------------------ scripts

function M.parse_cli(argv, spec_)
  return protocol.parse_cli(argv, spec_, M.format)
end

-- qcbm.parse_sigma(text, n) -> a sigma spec from the command line: "1", "n", "0.25,1,n"
function M.parse_sigma(text)
  local list = {}
  for item in tostring(text):gmatch("[^,]+") do
    item = item:match("^%s*(.-)%s*$")
    local v = item == "n" and "n" or tonumber(item)
    if v == nil or (v ~= "n" and not (v > 0 and v < math.huge)) then return nil, item end
    list[#list + 1] = v
  end
  if #list == 0 then return nil, text end
  if #list == 1 then return list[1] end
  return list
end

M.print_metrics = protocol.print_metrics
M.exit_if_stopped = protocol.exit_if_stopped

return M
