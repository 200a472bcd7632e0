-- qd.protocols.msquddpm — mixed-state QuDDPM (MSQuDDPM, arXiv 2411.17608): QuDDPM's
-- step-by-step denoising on ensembles of density matrices, with depolarizing noise as the
-- forward process and measured ancillas in the backward steps.
--
--   local msq = require "qd.protocols.msquddpm"
--   local S0 = msq.targets.cluster(1, 1000, qd.rng(1))       -- a stack of 1000 density matrices
--   local res = msq.run{ name = "msq", seed = 1, target = S0, schedule = "cosine", T = 6, L = 4,
--                        na = 2, ancilla = "haar", N = 100, loss = "wasserstein", epochs = 2000 }
--   res.metrics.F0_train, res.metrics.wass_train, ...
--
-- Stacks. An ensemble of N density matrices of n qubits is one complex qd.Matrix of d^2 x N
-- (d = 2^n), column k = member k's matrix in column-major order (msq.stack, msq.member); the
-- kernels below take and return whole stacks.
--
-- The algorithm (arXiv 2411.17608; details as its reference code gkwun/msquddpm has them):
--   * forward: per step t every member goes through the global depolarizing channel
--     rho -> (1 - q_t) rho + q_t I/d, q_t from the schedule's betas: "linear" (from .. to over
--     T steps; without from/to every beta is 1), "cosine" (abar(t) = f(t)/f(0), f(t) =
--     cos^2((t/T + s)/(1 + s) pi/2), s = 0.001, beta_t = 1 - abar(t)/abar(t-1)) or "sq_cosine"
--     (those betas squared); betas clipped to [1e-4, 1] before squaring. per_qubit = true (the
--     reference code) applies the channel n times per step, false (the paper's Eq. 1) once.
--     Deterministic: S_t = keep_t S_0 + (1 - keep_t) I/d, keep_t = prod_{s<=t} (1 - q_s)^reps.
--   * backward step t -> t-1 (t = T ... 1, separate parameters theta_t): the circuit
--     U = qd.ansatz.quddpm(na + n, L) (RX, RY on every qubit, then CZ on (0,1),(2,3),... and
--     (1,2),(3,4),...; 2(n + na)L parameters) on |phi><phi| (x) |0..0><0..0| (x) rho, ancillas
--     first; the ancillas are measured, the outcome m sampled and kept, the data register
--     renormalised: rho' = K_m rho K_m^H / p_m, K_m = (<m| (x) I) U (|phi 0..0> (x) I).
--     ancilla = "zero": |phi> = |0>; "haar": the first ancilla starts in a Haar-random pure
--     state of its own per member (fixed while a step trains, fresh in generation).
--     The Kraus blocks come from one run of the circuit on its basis inputs (d, or 2d with a
--     Haar ancilla, whose blocks are then phi_0 K(0) + phi_1 K(1)), so a member's step is a few
--     d x d products (core.dms_kraus_step), and its vector-Jacobian product
--     (core.dms_kraus_vjp) goes back through the normalisation to the isometry, then through
--     the circuit by the adjoint method (circuit:vjp) — the outcome held fixed.
--   * training: the N inputs start as I/d, are pushed through the steps already trained (fresh
--     outcomes, no gradient), theta_t ~ N(0, 1); each epoch draws N targets of S_{t-1} without
--     replacement, runs the step with fresh outcomes and takes an Adam step on the loss; the
--     learning rate is multiplied by lr_decay every epochs // lr_decay_count epochs (not after
--     the last), as the reference's ExponentialLR. best_of = k > 1 (not in the paper): each step
--     tries k initialisations for `screen` epochs (default epochs // 10) and continues the one
--     with the lowest mean loss over its last 10% of epochs, as QuDDPM's screening.
--   * loss (arXiv 2411.17608 Eqs. 4-7), superfidelity G(r, s) = Tr rs + sqrt((1 - Tr r^2)(1 - Tr s^2)):
--     "mmd" = mean G(A,A) + mean G(B,B) - 2 mean G(A,B) (core.dms_mmd_sf), "wasserstein" = exact
--     optimal transport with cost 1 - G (core.dms_wass_sf), gradients in C. kernel = "uhlmann"
--     puts the root fidelity Tr sqrt(sqrt(r) s sqrt(r)) in place of G (the reference's "normal"
--     fidelity, there by a Newton-Schulz square root; here exact: a closed form for one qubit,
--     an eigen-decomposition per member pair beyond, which is slow: ~0.2 ms per pair).
--   * generation: from N (train) and N_test (test) copies of I/d through the trained chain with
--     fresh ancillas and outcomes; metrics at t = 0 against a sample of S_0.
--
-- Per epoch: the circuit on its basis inputs, the step, the loss, the step's vjp, the
-- circuit's vjp, Adam — a few C calls, nothing per member in Lua.
--
-- Randomness: substreams of qd.rng(seed) keyed by purpose, step and epoch (M.keys): a run
-- stopped at any epoch and resumed from its checkpoint gives the bits of an uninterrupted run.
--
-- Run directory: run.json (metrics: F0, purity, mmd, wass of the generated ensembles at t = 0,
-- _train and _test, and of a fresh data sample ("data_"), plus metrics.per_t), params.npy
-- (T x P, row t = theta_t), loss.npy (T x epochs, row t = step t's loss history),
-- target.npy (the S_0 sample, d^2 x N stack), generated_train.npy / generated_test.npy (the
-- generated ensembles at t = 0, stacks), checkpoint.json.
local qd = require "qd"
local core = require "qd.core"
local optim = require "qd.optim"
local protocol = require "qd.protocol"
local outside, int = protocol.outside, math.tointeger

local M = { format = 1 }   -- the checkpoint format

-- substream keys of qd.rng(seed); step t uses step + 1000 t (+ its epochs below it)
M.keys = { data = 1, test_data = 2, sample = 3, gen_train = 4, gen_test = 5, push = 6, step = 10000 }
M.stream = protocol.streams(M.keys, 10000)

-- ------------------------------------------------------------------ stacks

-- msq.stack({rho1, rho2, ...}) -> stack (complex d^2 x N qd.Matrix); msq.member(S, k) -> rho_k
M.stack = core.dms_from
M.member = core.dms_get

-- msq.loss(A, B, kind [, grad [, kernel]]) -> value [, dL/d conj(A)]: kind "mmd" or
-- "wasserstein"; kernel "superfidelity" (the default) or "uhlmann" (the root fidelity
-- Tr sqrt(sqrt(a) b sqrt(a)): closed form for one qubit, eigen-decompositions beyond)
local loss_fns = {
  superfidelity = { mmd = core.dms_mmd_sf, wasserstein = core.dms_wass_sf },
  uhlmann = { mmd = core.dms_mmd_uhl, wasserstein = core.dms_wass_uhl },
}
function M.loss(A, B, kind, grad, kernel)
  local fns = loss_fns[kernel or "superfidelity"]
  if not fns then
    error("bad argument #5 to 'loss' (superfidelity or uhlmann expected, got " .. tostring(kernel) .. ")", outside())
  end
  local f = fns[kind]
  if not f then error("bad argument #3 to 'loss' (mmd or wasserstein expected, got " .. tostring(kind) .. ")", outside()) end
  return f(A, B, grad)
end

-- the qubits and members of a stack
local function shape(S)
  local rows, cols = S:shape()
  local n = 0
  while (1 << n) * (1 << n) < rows do n = n + 1 end
  return n, cols
end
M.shape = shape

-- ------------------------------------------------------------------ targets

M.targets = {}

-- (1 - q) |psi><psi| + q I/d for each member of a pure ensemble, q ~ U[0, q_max) per qubit
-- (applied n times, as the reference's small_depolarize)
local function small_depolarize(E, q_max, rng)
  local n, N = E.n, #E
  local list = {}
  local I = qd.maximally_mixed(n)
  for k = 1, N do
    local r = qd.dm(E:get(k))
    for _ = 1, n do
      local q = rng:uniform() * q_max
      r = r * (1 - q) + I * q
    end
    list[k] = r
  end
  return core.dms_from(list)
end

-- cluster(n, N, rng [, {eps = 0.08, q = 0.01}]): |0..0> + eps sum c_j |j> (c_j complex normal),
-- normalised, then small depolarizing noise; eps = 0.08 is the paper's (the code's 0.04)
function M.targets.cluster(n, N, rng, o)
  o = o or {}
  local E = qd.data.clustered(n, N, rng:substream(1), { eps = o.eps or 0.08 })
  return small_depolarize(E, o.q or 0.01, rng:substream(2))
end

-- circle(N, rng [, {q = 0.04}]): cos(phi)|0> + sin(phi)|1>, phi ~ U[0, 2pi), then small
-- depolarizing noise (q up to 0.04)
function M.targets.circle(N, rng, o)
  o = o or {}
  local E = qd.data.circle(N, rng:substream(1))
  return small_depolarize(E, o.q or 0.04, rng:substream(2))
end

-- tfim(n, N, rng [, {g = {1.8, 2.2}}]): ground states of H = -sum Z_i Z_{i+1} - g sum X_i (open
-- chain), g uniform in the range (pure: no noise)
function M.targets.tfim(n, N, rng, o)
  o = o or {}
  local E = qd.data.tfim(n, o.g or { 1.8, 2.2 }, N, rng)
  local list = {}
  for k = 1, N do list[k] = qd.dm(E:get(k)) end
  return core.dms_from(list)
end

-- the X magnetisation (1/n) sum_i X_i as a d x d table of rows (the many-body task's metric)
function M.mx_operator(n)
  local d = 1 << n
  local rows = {}
  for r = 0, d - 1 do
    local row = {}
    for c = 0, d - 1 do
      local x = r ~ c
      row[c + 1] = (x ~= 0 and x & (x - 1) == 0) and 1 / n or 0
    end
    rows[r + 1] = row
  end
  return qd.matrix(rows)
end

-- ------------------------------------------------------------------ schedule

-- msq.betas(kind, T [, {from =, to =, s = 0.001}]) -> {beta_1 ... beta_T} (see the header)
function M.betas(kind, T, o)
  o = o or {}
  local b = {}
  if kind == "linear" then
    for t = 1, T do
      b[t] = o.from and (T == 1 and o.from or o.from + (o.to - o.from) * (t - 1) / (T - 1)) or 1.0
    end
  elseif kind == "cosine" or kind == "sq_cosine" then
    local s = o.s or 0.001
    local function f(t) return math.cos((t / T + s) / (1 + s) * 0.5 * math.pi) ^ 2 end
    for t = 1, T do
      local v = 1 - f(t) / f(t - 1)
      v = math.min(1, math.max(1e-4, v))
      b[t] = kind == "sq_cosine" and v * v or v
    end
  else
    error("bad argument #1 to 'betas' (linear, cosine or sq_cosine expected, got " .. tostring(kind) .. ")", outside())
  end
  return b
end

-- msq.forward(S0, betas, reps) -> {S_0, ..., S_T} (index t + 1), keep (index t + 1)
function M.forward(S0, betas, reps)
  local sets, keep = { S0 }, { 1.0 }
  for t = 1, #betas do
    keep[t + 1] = keep[t] * (1 - betas[t]) ^ reps
    sets[t + 1] = core.dms_depolarize(S0, keep[t + 1])
  end
  return sets, keep
end

-- ------------------------------------------------------------------ configuration

local spec = protocol.with_session_keys {
  name = { "string", "msquddpm" },
  seed = { "integer", 1, 0 },
  target = { "qd.Matrix|table" },
  schedule = { "string", "cosine", choices = { "linear", "cosine", "sq_cosine" } },
  beta_from = { "number", false },
  beta_to = { "number", false },
  per_qubit = { "boolean", true },
  T = { "integer", nil, 1 },
  L = { "integer", nil, 1 },
  na = { "integer", 2, 1 },
  ancilla = { "string", "haar", choices = { "haar", "zero" } },
  N = { "integer", 100, 1 },
  N_test = { "integer", false, 1 },
  epochs = { "integer", nil, 1 },
  lr = { "number", 5e-3 },
  lr_decay = { "number", 1.0 },
  lr_decay_count = { "integer", 2, 1 },
  loss = { "string", "mmd", choices = { "mmd", "wasserstein" } },
  best_of = { "integer", 1, 1 },
  screen = { "integer", false, 1 },
  kernel = { "string", "superfidelity", choices = { "superfidelity", "uhlmann" } },
  observable = { "string", "F0", choices = { "F0", "mx" } },
}
M.settings_spec = spec

-- the largest register: data + ancillas (the circuit runs on 2d basis inputs of 2^(n+na))
M.max_qubits = 12

local function bad(msg) error("bad argument #1 to 'run' (" .. msg .. ")", outside()) end

local function check_cfg(cfg)
  local c = protocol.config(spec, cfg, "run")
  if type(c.target) == "table" then
    local ok, S = pcall(core.dms_from, c.target)
    if not ok then bad("option 'target': a stack or a list of density matrices of one size expected") end
    c.target = S
  end
  if not c.target:is_complex() or qd.type(c.target) ~= "qd.Matrix" then
    bad("option 'target': a stack (complex d^2 x N qd.Matrix) expected")
  end
  c.n, c.ndata = shape(c.target)
  if (1 << c.n) * (1 << c.n) ~= (c.target:shape()) then bad("option 'target': a stack (complex d^2 x N qd.Matrix) expected") end
  if c.N > c.ndata then bad(string.format("option 'N': at most the target's %d members expected, got %d", c.ndata, c.N)) end
  c.N_test = c.N_test or c.N
  if c.n + c.na > M.max_qubits then
    bad(string.format("n + na = %d + %d; at most %d qubits", c.n, c.na, M.max_qubits))
  end
  if not (c.lr > 0) then bad("option 'lr': > 0 expected, got " .. c.lr) end
  if not (c.lr_decay > 0 and c.lr_decay <= 1) then bad("option 'lr_decay': a factor in (0, 1] expected, got " .. c.lr_decay) end
  if (c.beta_from == nil) ~= (c.beta_to == nil) then bad("options 'beta_from' and 'beta_to' go together") end
  if c.beta_from and c.schedule ~= "linear" then bad("options 'beta_from' and 'beta_to' are for schedule = linear") end
  if c.best_of > 999 then bad("option 'best_of': at most 999 expected, got " .. c.best_of) end
  c.screen = c.screen or math.max(1, c.epochs // 10)
  if c.screen > c.epochs then bad(string.format("option 'screen': at most epochs = %d expected, got %d", c.epochs, c.screen)) end
  c.betas = M.betas(c.schedule, c.T, { from = c.beta_from, to = c.beta_to })
  return c
end

local function settings_of(c, P)
  local fp = core.dms_expect(c.target, M.mx_operator(c.n))
  return {
    name = c.name, seed = c.seed, n = c.n, na = c.na, T = c.T, L = c.L, N = c.N, N_test = c.N_test,
    ndata = c.ndata, schedule = c.schedule, betas = c.betas, per_qubit = c.per_qubit, ancilla = c.ancilla,
    epochs = c.epochs, lr = c.lr, lr_decay = c.lr_decay, lr_decay_count = c.lr_decay_count, loss = c.loss,
    kernel = c.kernel, best_of = c.best_of, screen = c.best_of > 1 and c.screen or nil,
    observable = c.observable, nparams = P,
    -- the target is part of the result: the first member's <mx> and entry (1,1) fingerprint it
    target_fingerprint = { fp[1], (c.target:get(1, 1)) },
    options = protocol.result_options(c.options),
  }
end

-- ------------------------------------------------------------------ the pieces

-- the circuit's basis inputs |x 0..0>_A |i> (x = 0 only for ancilla "zero"), member x d + i
local function basis_inputs(c)
  local states = {}
  for x = 0, c.ancilla == "haar" and 1 or 0 do
    for i = 0, (1 << c.n) - 1 do
      local bits = { tostring(x), string.rep("0", c.na - 1) }
      for b = c.n - 1, 0, -1 do bits[#bits + 1] = tostring((i >> b) & 1) end
      states[#states + 1] = qd.state(c.n + c.na, table.concat(bits))
    end
  end
  return qd.ensemble.from(states)
end

-- the first ancillas' states for N members from rng (nil for ancilla "zero")
local function ancillas(c, N, rng)
  if c.ancilla == "zero" then return nil end
  return qd.ensemble.haar(1, N, rng)
end

-- step(R, theta, X, rng [, anc]) -> out, x: one backward step on the stack X (outcomes from
-- rng, first ancillas anc or fresh from rng), x = what the vjp needs
local function step(R, theta, X, rng, anc)
  local c = R.c
  anc = anc or ancillas(c, (select(2, X:shape())), rng:substream(1))
  local W = R.circ:run(R.Ein, theta)
  local u = rng:substream(2):uniform(0, 1, (select(2, X:shape())))
  local out, oc = core.dms_kraus_step(W, c.na, X, u, anc)
  return out, { W = W, X = X, anc = anc, oc = oc, out = out }
end

-- loss_grad(R, theta, X, targets, rng, anc) -> loss, dL/dtheta: one step's loss and gradient
local function loss_grad(R, theta, X, targets, rng, anc)
  local out, x = step(R, theta, X, rng, anc)
  local L, G = M.loss(out, targets, R.c.loss, true, R.c.kernel)
  local gW = core.dms_kraus_vjp(x.W, R.c.na, X, out, x.anc, x.oc, G)
  return L, R.circ:vjp(R.Ein, theta, gW)
end

-- the learning rate of epoch e: lr times lr_decay for every decay point passed before it
local function lr_at(c, e)
  if c.lr_decay == 1 then return c.lr end
  local per = c.epochs // c.lr_decay_count
  if per < 1 then return c.lr end
  local k = 0
  for j = 1, (e - 1) // per do
    if j * per + 1 < c.epochs then k = k + 1 end
  end
  return c.lr * c.lr_decay ^ k
end
M.lr_at = lr_at

-- N targets of S_{t-1} without replacement (the set itself when it has N members: both
-- losses are invariant under a permutation of their second argument)
local function draw(R, St, rng)
  local c = R.c
  if c.ndata == c.N then return St end
  local idx = R.idx or {}
  R.idx = idx
  for i = 1, c.ndata do idx[i] = i end
  for i = 1, c.N do
    local j = rng:integer(i, c.ndata)
    idx[i], idx[j] = idx[j], idx[i]
  end
  local pick = R.pick or {}
  R.pick = pick
  for i = 1, c.N do pick[i] = idx[i] end
  return core.dms_gather(St, pick)
end

-- a resumed state is checked whole before anything is written
local function check_state(c, P, st)
  local function damaged(what) error("resume: damaged checkpoint (" .. what .. ")", 0) end
  local function vec(v, n, what)
    if qd.type(v) ~= "qd.Vector" and type(v) ~= "table" then damaged(what) end
    if #v ~= n then damaged(what .. ": " .. n .. " numbers expected") end
  end
  if type(st.trained) ~= "table" then damaged("trained") end
  for i, s in ipairs(st.trained) do
    local t = type(s) == "table" and int(s.t)
    if not t or t ~= c.T - i + 1 then damaged("trained[" .. i .. "]") end
    vec(s.params, P, "trained[" .. i .. "].params")
    vec(s.losses, c.epochs, "trained[" .. i .. "].losses")
  end
  local function cand_ok(cand, what)
    if cand == false then return end
    if type(cand) ~= "table" or not int(cand.r) or not int(cand.e) or int(cand.e) > c.epochs then damaged(what) end
    vec(cand.params, P, what .. ".params")
    vec(cand.losses, int(cand.e), what .. ".losses")
    if type(cand.opt) ~= "table" then damaged(what .. ".opt") end
  end
  if st.cur then
    local cur = st.cur
    if type(cur) ~= "table" or int(cur.t) ~= c.T - #st.trained or not int(cur.r) then damaged("cur") end
    cand_ok(cur.cand, "cur.cand")
    cand_ok(cur.best, "cur.best")
  end
end

-- setup(cfg) -> R: checked config, circuit, basis inputs, forward sets, the session
local function setup(cfg)
  local c = check_cfg(cfg)
  local R = { c = c, root = qd.rng(c.seed) }
  R.circ = qd.ansatz.quddpm(c.n + c.na, c.L)
  R.P = R.circ:nparams()
  R.Ein = basis_inputs(c)
  R.sets, R.keep = M.forward(c.target, c.betas, c.per_qubit and c.n or 1)
  R.settings = settings_of(c, R.P)
  R.S = protocol.session {
    name = c.name, seed = c.seed, settings = R.settings, format = M.format, out = c.out,
    resume = c.resume, quiet = c.quiet, progress = c.progress, stop_after = c.stop_after,
    ckpt_every = c.ckpt_every, state = function() return { trained = {}, cur = false } end,
  }
  if c.resume then check_state(c, R.P, R.S.state) end
  R.dir = R.S.dir
  return R
end

-- maximally mixed inputs: N copies of I/d
local function mixed_inputs(R, N)
  local idx = {}
  for i = 1, N do idx[i] = 1 end
  return core.dms_depolarize(core.dms_gather(R.c.target, idx), 0.0)
end

-- inputs(R): the training inputs I/d pushed through the steps already trained (index t + 1:
-- theta_t); R.t_next = the next step to train
local function inputs(R)
  local c = R.c
  R.params, R.losses = {}, {}
  R.X = mixed_inputs(R, c.N)
  for _, s in ipairs(R.S.state.trained) do
    optim.freeze(s)   -- finished steps: encoded once in later checkpoints
    local t = int(s.t)
    R.params[t], R.losses[t] = s.params, s.losses
    R.X = step(R, s.params, R.X, R.root:substream(M.keys.push):substream(t))
  end
  R.t_next = c.T - #R.S.state.trained
end

-- a candidate initialisation r of step t: its stream (the init, the first ancillas fixed while it
-- trains, one substream per epoch), parameters ~ N(0, 1), Adam state, losses; e = epochs done
local function cand_stream(R, t, r) return R.root:substream(M.keys.step + 1000 * t + r - 1) end

local function new_cand(R, t, r)
  return { r = r, e = 0, params = cand_stream(R, t, r):substream(0):normal(0, 1, R.P), opt = { lr = R.c.lr }, losses = {} }
end

-- train_cand(R, t, cand, upto): cand's epochs up to `upto`; false when the budget ran out
local function train_cand(R, t, cand, upto)
  local c, S = R.c, R.S
  local stream = cand_stream(R, t, int(cand.r))
  local anc = ancillas(c, c.N, stream:substream(1))
  local St = R.sets[t]   -- S_{t-1}
  local targets, es
  local function feval(p) return loss_grad(R, p, R.X, targets, es, anc) end
  for e = int(cand.e) + 1, upto do
    es = stream:substream(1 + e)
    targets = draw(R, St, es:substream(3))
    cand.opt.lr = lr_at(c, e)
    local _, L = optim.adam(feval, cand.params, cand.opt)
    cand.losses[e], cand.e = L, e
    R.prog:update(e, L)
    if not S:epoch(e) then return false end
  end
  return true
end

-- the mean loss of a candidate's last 10% of epochs (QuDDPM's screening score)
local score_of = require("qd.protocols.quddpm").pieces.score_of

-- train_step(R, t) -> false if stopped: with best_of > 1 that many candidates are trained
-- `screen` epochs each and the best (score_of) continues; theta_t then trained to `epochs`,
-- frozen, the inputs pushed through it, checkpoint
local function train_step(R, t)
  local c, st, S = R.c, R.S.state, R.S
  if not st.cur then st.cur = { t = t, r = 1, cand = false, best = false } end
  local cur = st.cur
  R.prog:begin_step(c.T - t + 1, t)
  while c.best_of > 1 and int(cur.r) <= c.best_of do
    cur.cand = cur.cand or new_cand(R, t, int(cur.r))
    if not train_cand(R, t, cur.cand, c.screen) then return false end
    cur.cand.score = score_of(cur.cand)
    if not cur.best or cur.cand.score < cur.best.score then cur.best = cur.cand end
    cur.cand, cur.r = false, int(cur.r) + 1
  end
  cur.best = cur.best or new_cand(R, t, 1)
  local best = cur.best
  if not train_cand(R, t, best, c.epochs) then return false end
  R.params[t], R.losses[t] = best.params, best.losses
  st.trained[#st.trained + 1] = optim.freeze { t = t, r = best.r, params = best.params, losses = best.losses }
  st.cur = false
  R.prog:end_step(best.losses[c.epochs])
  R.X = step(R, best.params, R.X, R.root:substream(M.keys.push):substream(t))
  S:checkpoint()
  return true
end

-- generate(R, N, key) -> {X_0, ..., X_T} (index t + 1): N copies of I/d through the chain
local function generate(R, N, key)
  local c = R.c
  local gen = { [c.T + 1] = mixed_inputs(R, N) }
  local rng = R.root:substream(key)
  for t = c.T, 1, -1 do gen[t] = step(R, R.params[t], gen[t + 1], rng:substream(t)) end
  return gen
end

-- the metrics of an ensemble A at t = 0 against the S_0 sample B, into out
local function metrics_of(R, A, B, prefix, out)
  local c = R.c
  local d = 1 << c.n
  local O = c.observable == "mx" and M.mx_operator(c.n) or nil
  if not O then
    local rows = {}
    for r = 1, d do rows[r] = {} for k = 1, d do rows[r][k] = (r == 1 and k == 1) and 1 or 0 end end
    O = qd.matrix(rows)
  end
  out[c.observable .. "_" .. prefix] = core.dms_expect(A, O):mean()
  local N, purity = select(2, A:shape()), 0.0
  for k = 1, N do purity = purity + core.dms_get(A, k):purity() end
  out["purity_" .. prefix] = purity / N
  out["mmd_" .. prefix] = (core.dms_mmd_sf(A, B))
  out["wass_" .. prefix] = (core.dms_wass_sf(A, B))
end

-- evaluate(R, gen_train, gen_test) -> the metrics at t = 0 (against an S_0 sample of N), the
-- same for a fresh data sample of the target (the sampling floor), per-t MMD to S_t
local function evaluate(R, gen_train, gen_test)
  local c, rec = R.c, R.S.rec
  local sample = draw(R, R.sets[1], R.root:substream(M.keys.sample))
  local m = rec.metrics
  metrics_of(R, gen_train[1], sample, "train", m)
  metrics_of(R, gen_test[1], sample, "test", m)
  if c.ndata >= 2 * c.N then   -- a second, disjoint sample of the data: the floor of the metrics
    local idx = {}
    for i = 1, c.ndata do idx[i] = i end
    local rng = R.root:substream(M.keys.test_data)
    for i = 1, 2 * c.N do
      local j = rng:integer(i, c.ndata)
      idx[i], idx[j] = idx[j], idx[i]
    end
    local a, b = {}, {}
    for i = 1, c.N do a[i], b[i] = idx[i], idx[c.N + i] end
    metrics_of(R, core.dms_gather(R.sets[1], a), core.dms_gather(R.sets[1], b), "data", m)
  end
  local per_t = { mmd = {}, keep = {} }
  for t = 0, c.T do
    per_t.mmd[t + 1] = (core.dms_mmd_sf(gen_train[t + 1], R.sets[t + 1]))
    per_t.keep[t + 1] = R.keep[t + 1]
  end
  rec.data.per_t = per_t
  return sample
end

local function save_data(R, sample, gen_train, gen_test)
  local c, rec = R.c, R.S.rec
  local PM, LM = qd.matrix(c.T, R.P), qd.matrix(c.T, c.epochs)
  for t = 1, c.T do
    for j = 1, R.P do PM:set(t, j, R.params[t][j]) end
    for e = 1, c.epochs do LM:set(t, e, R.losses[t][e]) end
  end
  PM:save_npy(rec:path("params.npy"))
  LM:save_npy(rec:path("loss.npy"))
  sample:save_npy(rec:path("target.npy"))
  gen_train[1]:save_npy(rec:path("generated_train.npy"))
  gen_test[1]:save_npy(rec:path("generated_test.npy"))
end

M.pieces = { check = check_cfg, setup = setup, inputs = inputs, step = step, loss_grad = loss_grad,
             train_step = train_step, train_cand = train_cand, generate = generate, evaluate = evaluate,
             basis_inputs = basis_inputs }

-- msq.run(cfg) -> {dir, stopped, metrics, params (index t), losses (index t), gen_train,
-- gen_test (index t + 1 = time t), sets (forward, index t + 1), settings, timing}
local function run_impl(cfg)
  local R = setup(cfg)
  local c, S = R.c, R.S
  inputs(R)
  local per_step = c.best_of > 1 and c.best_of * c.screen + c.epochs - c.screen or c.epochs
  R.prog = S:progress { steps = c.T, epochs = c.epochs, total = c.T * per_step }
  local t = R.t_next   -- the steps left, T ... 1; train_step is false when the budget ran out
  while t >= 1 and train_step(R, t) do t = t - 1 end
  R.prog:finish()
  local result = { dir = R.dir, stopped = t >= 1, params = R.params, losses = R.losses, sets = R.sets,
                   settings = R.settings, metrics = S.rec.metrics }
  if result.stopped then return S:stop() or result end
  local tg = qd.clock()
  local gen_train = generate(R, c.N, M.keys.gen_train)
  local gen_test = generate(R, c.N_test, M.keys.gen_test)
  local sample = evaluate(R, gen_train, gen_test)
  local generate_seconds = qd.clock() - tg
  if c.save_data then save_data(R, sample, gen_train, gen_test) end
  result.timing = S:finish { generate_seconds = generate_seconds }
  result.gen_train, result.gen_test = gen_train, gen_test
  return result
end

M.run = protocol.generational(run_impl)

-- ------------------------------------------------------------------ scripts

-- the example's training options over the task's defaults: numbers (0 = the task's) and
-- choices (empty = the task's), in this order on the usage line
local cli_numbers = {
  { "epochs", "epochs per step" }, { "lr", "Adam learning rate > 0" }, { "T", "diffusion steps" },
  { "L", "layers per step" }, { "N", "ensemble size" }, { "best_of", "initialisations tried per step" },
  { "screen", "epochs each initialisation gets before the best continues" },
}
local cli_choices = {
  { "loss", { "mmd", "wasserstein" } }, { "ancilla", { "haar", "zero" } },
  { "schedule", { "linear", "cosine", "sq_cosine" } }, { "kernel", { "superfidelity", "uhlmann" } },
}

-- msq.cli_options(extra) -> the example's options (qd.cli format): the protocol's common
-- ones, the training options above, then extra
function M.cli_options(extra)
  local own = {}
  for _, e in ipairs(cli_numbers) do
    own[#own + 1] = { e[1], e[1] == "lr" and 0.0 or 0, e[2] .. " (0: the task's default)", min = 0 }
  end
  for _, e in ipairs(cli_choices) do
    own[#own + 1] = { e[1], "", table.concat(e[2], " | ") .. " (empty: the task's default)", choices = { "", table.unpack(e[2]) } }
  end
  for _, e in ipairs(extra or {}) do own[#own + 1] = e end
  return protocol.cli_options(own)
end

-- msq.from_cli(opts, cfg) -> cfg with the command line's session options (protocol.from_cli)
-- and its training options over the task's defaults in cfg
function M.from_cli(opts, cfg)
  protocol.from_cli(opts, cfg)
  for _, e in ipairs(cli_numbers) do
    if opts[e[1]] > 0 then cfg[e[1]] = opts[e[1]] end
  end
  for _, e in ipairs(cli_choices) do
    if opts[e[1]] ~= "" then cfg[e[1]] = opts[e[1]] end
  end
  return cfg
end

-- parse_cli(arg, spec) (protocol.parse_cli with this protocol's checkpoint format),
-- print_metrics, exit_if_stopped: as every protocol example has them
M.parse_cli = function(argv, s) return protocol.parse_cli(argv, s, M.format) end
M.print_metrics, M.exit_if_stopped = protocol.print_metrics, protocol.exit_if_stopped

return M
