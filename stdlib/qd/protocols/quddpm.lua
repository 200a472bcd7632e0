-- qd.protocols.quddpm — QuDDPM end to end (arXiv 2310.05866, PRL 132, 100602):
-- forward sets, step-by-step backward training, generation,
-- evaluation, checkpoints that resume bit for bit, and a run record.
--
--   local quddpm = require "qd.protocols.quddpm"
--   local res = quddpm.run{
--     name = "quddpm_cluster", seed = 1,
--     target = E0,                       -- qd.Ensemble: the training data S_0 (>= N members)
--     schedule = qd.schedule.linear{T = 20, from = 1, to = 4},
--     n = 1, na = 1, L = 4, N = 100, loss = "mmd", lr = 5e-3, epochs = 1000,
--     metrics = {"F0", "mmd"}, out = "runs/x" }
--   res.metrics.F0_train, res.metrics.mmd_test, ...
--
-- The algorithm (arXiv 2310.05866):
--   * forward: S_t = t fresh scrambling steps on S_0 (qd.diffusion.forward, "marginal").
--   * backward step t+1 -> t: U(θ_t) = qd.ansatz.quddpm(n, L, {ancillas = na}) on
--     |0..0>_A ⊗ |ψ>, ancillas measured, the sampled outcome kept, data register
--     renormalised. Training goes t = T-1 … 0, one step at a time, steps already trained
--     frozen: the N training inputs (Haar, fixed seed) are pushed through steps T-1..t+1
--     (outcomes sampled, no gradient); θ_t ~ N(0, 1); each epoch draws N targets from S_t
--     without replacement, runs the step with fresh outcomes and takes one optimizer step on
--     D(generated, targets) — gradient by the adjoint method through the normalised
--     post-measurement state with the sampled outcome held fixed (c:grad).
--   * loss D: "mmd" (fidelity-kernel MMD), "wasserstein" (exact OT, cost 1 − |<a|b>|²),
--     "sinkhorn" (entropic OT, eps = sinkhorn_eps).
--   * best-of-k: each step tries best_of initialisations; with screen = s > 0 each is trained
--     s epochs and the best (lowest mean loss over its last 10% of epochs) continues to
--     `epochs`; with screen = 0 every candidate is trained the full budget.
--   * generation: the trained chain on the training inputs ("train") and on N_test fresh Haar
--     states ("test"); metrics at t = 0 against the target S_0.
--
-- Per epoch the work is three C calls (circuit adjoint gradient of the whole ensemble, the
-- loss with its gradient on whole ensembles, nothing per member in Lua) plus a Lua Adam
-- update over the P parameters. When the forward set has exactly N members the per-epoch
-- draw "N of N without replacement" is a permutation; every loss here is invariant under
-- permuting its second argument, so S_t is then used as it is (no copy). With more members
-- (ndata > N) the N targets are drawn by a partial Fisher–Yates shuffle and gathered.
--
-- Randomness: everything derives from qd.rng(seed) by substreams keyed by purpose, step,
-- candidate and epoch (M.keys), never from a generator's position, so a run interrupted at
-- any epoch and resumed from its checkpoint (the parameters, Adam moments and loss
-- histories, stored as %.17g JSON doubles, which round-trip exactly) gives bit for bit the
-- result of an uninterrupted run. Results do not depend on the thread count.
--
-- Run directory: run.json (qd.record) + forward.npy (T+1, ndata, 2^n), params.npy (T, P)
-- (row t+1 = θ_t), loss.npy (T, epochs) (row t+1 = the loss history of θ_t),
-- generated_train.npy / generated_test.npy (T+1, N, 2^n) (index t = the ensemble at time t;
-- index T = the Haar inputs), checkpoint.json (written after every step and every
-- ckpt_every epochs).
local qd = require "qd"
local json = require "qd.json"
local optim = require "qd.optim"
local progress = require "qd.progress"
local protocol = require "qd.protocol"

local M = {}
M.format = 1

-- errors in the options of run/qudt/qugan point at the user's line, not at the library
local outside = protocol.outside

-- substream keys of qd.rng(seed)
M.keys = {
  target = 1, forward = 2, inputs = 3, test_inputs = 4, test_target = 5, extra = 6,
  push = 10000,      -- + t: outcomes when the training inputs pass trained step t
  gen_train = 20000, -- + t: outcomes of generation from the training inputs
  gen_test = 30000,  -- + t
  step = 1000000,    -- + 10000 t + r: candidate r of step t; its substream e = epoch e, 0 = init
}

-- quddpm.stream(seed, name) -> qd.Rng: the substream the protocol uses for `name`
-- (target, forward, inputs, test_inputs, test_target, extra)
M.stream = protocol.streams(M.keys, 10000)

-- ------------------------------------------------------------------ configuration

local spec = {
  -- key = {type, default or nil (required), check}
  name = { "string", "quddpm" },
  seed = { "integer", 1, 0 },
  target = { "qd.Ensemble" },
  schedule = { "qd.Schedule|table" },   -- or its totable() form
  n = { "integer", nil, 1 },
  na = { "integer", 1, 0 },
  L = { "integer", nil, 1 },
  N = { "integer", nil, 1 },
  N_test = { "integer", false, 1 },
  loss = { "string", "mmd" },
  sinkhorn_eps = { "number", 0.05 },
  optimizer = { "string", "adam" },
  lr = { "number", 5e-3 },
  momentum = { "number", 0 },
  epochs = { "integer", nil, 1 },
  best_of = { "integer", 1, 1 },
  screen = { "integer", 0, 0 },
  metrics = { "table", false },
  out = { "string", false },
  resume = { "string", false },
  quiet = { "boolean", false },
  progress = { "string", "auto" },
  ckpt_every = { "integer", 0, 0 },
  stop_after = { "integer", 0, 0 },
  options = { "table", false },
  save_data = { "boolean", true },
}
M.settings_spec = spec

local metric_names = { F0 = true, mmd = true, wass = true, y2 = true, p_hat = true, magnetization = true }
M.metric_names = metric_names

local function check_cfg(cfg)
  local c = protocol.config(spec, cfg, "run")
  if qd.type(c.schedule) ~= "qd.Schedule" then c.schedule = qd.schedule.from(c.schedule) end
  c.T = #c.schedule
  if c.loss ~= "mmd" and c.loss ~= "wasserstein" and c.loss ~= "sinkhorn" then
    error("bad argument #1 to 'run' (option 'loss': mmd, wasserstein or sinkhorn expected, got " .. c.loss .. ")", outside())
  end
  if c.optimizer ~= "adam" and c.optimizer ~= "sgd" then
    error("bad argument #1 to 'run' (option 'optimizer': adam or sgd expected, got " .. c.optimizer .. ")", outside())
  end
  if not (c.lr > 0) then error("bad argument #1 to 'run' (option 'lr': > 0 expected, got " .. c.lr .. ")", outside()) end
  if c.target.n ~= c.n then
    error(string.format("bad argument #1 to 'run' (target on %d qubits, n = %d)", c.target.n, c.n), outside())
  end
  if c.target.N < c.N then
    error(string.format("bad argument #1 to 'run' (target has %d members, N = %d needed)", c.target.N, c.N), outside())
  end
  c.ndata = c.target.N
  c.N_test = c.N_test or c.N
  if c.T > 9999 or c.best_of > 9999 then error("bad argument #1 to 'run' (T and best_of must be < 10000)", outside()) end
  c.metrics = c.metrics or { "F0", "mmd" }
  for _, m in ipairs(c.metrics) do
    if not metric_names[m] then
      error("bad argument #1 to 'run' (unknown metric '" .. tostring(m) .. "'; F0, mmd, wass, y2, p_hat, magnetization)", outside())
    end
  end
  c.e_cand = (c.best_of > 1 and c.screen > 0 and c.screen < c.epochs) and c.screen or c.epochs
  -- a fingerprint of the data (fidelities with a fixed random state: their mean and a
  -- position-weighted sum), so that resuming with different data is refused
  local f = c.target:fidelities(qd.haar_state(c.n, qd.rng(20231005)))
  local s1, s2 = 0.0, 0.0
  for i = 1, #f do s1 = s1 + f[i]; s2 = s2 + i * f[i] end
  c.fingerprint = { s1 / #f, s2 / #f }
  return c
end

-- script options that only steer a session (not the result)
M.session_keys = protocol.session_keys

-- the settings that define the result (compared on resume, stored in run.json)
local function settings_of(c)
  local options = protocol.result_options(c.options)
  return {
    name = c.name, seed = c.seed, n = c.n, na = c.na, L = c.L, T = c.T, N = c.N, N_test = c.N_test,
    ndata = c.ndata, loss = c.loss, sinkhorn_eps = c.sinkhorn_eps, optimizer = c.optimizer,
    lr = c.lr, momentum = c.momentum, epochs = c.epochs, best_of = c.best_of, screen = c.screen,
    metrics = c.metrics, schedule = c.schedule:totable(), nparams = c.P,
    target_fingerprint = c.fingerprint,
    options = options,
  }
end

-- ------------------------------------------------------------------ metrics

local function mean_vec(v)
  local s = 0.0
  for i = 1, #v do s = s + v[i] end
  return s / #v
end

-- metric(name, E, S0) -> number; E, S0 ensembles on n qubits
local function metric(name, E, S0)
  local n = E.n
  if name == "F0" then
    return E:fidelities(qd.state(n)):mean()
  elseif name == "mmd" then
    return (qd.loss.mmd(E, S0))
  elseif name == "wass" then
    return (qd.loss.wasserstein(E, S0))
  elseif name == "y2" then
    -- mean over members (and qubits) of <Y>^2: 1/3 for Haar states, 0 on the circle
    local s = 0.0
    for q = 0, n - 1 do
      local y = E:expect("Y", { q })
      for i = 1, #y do s = s + y[i] * y[i] end
    end
    return s / (n * E.N)
  elseif name == "p_hat" then
    -- noise task: p̂ = mean |<10|ψ>|² / (0.55 · E sin²ε), E sin²ε = 1/2 − sin(2π/3)/(4π/3)
    if n ~= 2 then error("metric p_hat needs n = 2", outside()) end
    local esin2 = 0.5 - math.sin(2 * math.pi / 3) / (4 * math.pi / 3)
    return E:fidelities(qd.state(2, "10")):mean() / (0.55 * esin2)
  elseif name == "magnetization" then
    -- M = mean over members of Σ_b |ψ_b|² |(1/n) Σ_j (2 b_j − 1)| (linear in the mean state)
    local rho = E:mean_dm()
    local s = 0.0
    for b = 0, (1 << n) - 1 do
      local w = 0
      for j = 0, n - 1 do w = w + ((b >> j) & 1) end
      s = s + rho:get(b + 1, b + 1) * math.abs((2 * w - n) / n)
    end
    return s
  end
end
M.metric = metric

-- ------------------------------------------------------------------ checkpoints

-- quddpm.load_checkpoint(dir) -> {settings = plain table, state = restored table} or nil, msg
function M.load_checkpoint(dir)
  return protocol.load_checkpoint(dir, M.format)
end

-- quddpm.resume_options(opts, dir [, keep]) -> opts with the saved script options of the run
-- in dir, except the keys in keep (default: the session keys); a differing option given on
-- the command line is a usage error (qd.protocol.resume_options)
function M.resume_options(opts, dir, keep)
  return protocol.resume_options(opts, dir, M.format, keep)
end

local function int(x) return math.tointeger(x) end

-- ------------------------------------------------------------------ the run

-- The run in pieces (M.pieces, each testable alone); a run is a table R holding the config c,
-- the circuit, the root generator, the session S (qd.protocol: directory, record,
-- checkpoint, progress) and what has been computed so far.

-- A resumed state is checked whole before the run writes anything, so a damaged
-- checkpoint.json is refused with the directory left as it was (not found wrong later,
-- after new checkpoints or data files were written).
local function check_state(c, st)
  local function bad(what) error("resume: damaged checkpoint (" .. what .. ")", 0) end
  local function int_in(v, lo, hi, what)   -- JSON brings integers back as floats
    v = math.tointeger(v)
    if not v or v < lo or v > hi then bad(what) end
  end
  local function numbers(v, n, what)
    local len = qd.type(v) == "qd.Vector" and #v or (type(v) == "table" and #v or -1)
    if len ~= n then bad(what .. ": " .. n .. " numbers expected") end
    for i = 1, n do
      local x = v[i]
      if type(x) ~= "number" then bad(what .. ": numbers expected") end
    end
  end
  local function cand_ok(cand, t, what)
    if type(cand) ~= "table" then bad(what) end
    int_in(cand.r, 1, c.best_of, what .. ".r")
    int_in(cand.e, 0, c.epochs, what .. ".e")
    numbers(cand.params, c.P, what .. ".params")
    numbers(cand.losses, math.tointeger(cand.e), what .. ".losses")
    if type(cand.opt) ~= "table" then bad(what .. ".opt") end
    if cand.score ~= nil and type(cand.score) ~= "number" then bad(what .. ".score") end
  end
  int_in(st.epochs_done, 0, math.maxinteger, "epochs_done")
  if type(st.train_seconds) ~= "number" then bad("train_seconds") end
  if type(st.trained) ~= "table" then bad("trained") end
  local seen = {}
  for i, s in ipairs(st.trained) do
    local what = "trained[" .. i .. "]"
    if type(s) ~= "table" then bad(what) end
    int_in(s.t, 0, c.T - 1, what .. ".t")
    local t = math.tointeger(s.t)
    if seen[t] then bad(what .. ": step trained twice") end
    seen[t] = true
    numbers(s.params, c.P, what .. ".params")
    numbers(s.losses, c.epochs, what .. ".losses")
    if type(s.score) ~= "number" then bad(what .. ".score") end
  end
  if st.cur ~= false then
    local cur = st.cur
    if type(cur) ~= "table" then bad("cur") end
    int_in(cur.t, 0, c.T - 1, "cur.t")
    int_in(cur.r, 1, c.best_of + 1, "cur.r")
    if cur.cand ~= false then cand_ok(cur.cand, cur.t, "cur.cand") end
    if cur.best ~= false then cand_ok(cur.best, cur.t, "cur.best") end
  end
end

-- setup(cfg) -> R: checked config, the step circuit, settings, the session (resumed or new)
local function setup(cfg)
  local c = check_cfg(cfg)
  local R = { c = c, root = qd.rng(c.seed) }
  R.circ = qd.ansatz.quddpm(c.n, c.L, { ancillas = c.na })
  c.P = R.circ:nparams()
  R.settings = settings_of(c)
  R.S = protocol.session {
    name = c.name, seed = c.seed, settings = R.settings, format = M.format, out = c.out,
    resume = c.resume, quiet = c.quiet, progress = c.progress, stop_after = c.stop_after,
    ckpt_every = c.ckpt_every, state = function() return { trained = {}, cur = false } end,
  }
  if c.resume then check_state(c, R.S.state) end
  R.dir = R.S.dir
  return R
end

-- forward(R): the forward sets S_0..S_T (deterministic: recomputed on resume) and the
-- training inputs pushed through the steps already trained; R.t_next = the next step
local function push(R, t)
  local X = R.inputs:embed(R.c.na)
  R.inputs = R.circ:run(X, R.params[t + 1], { rng = R.root:substream(M.keys.push + t) })
end

local function forward(R)
  local c = R.c
  local tf = qd.clock()
  R.sets = qd.diffusion.forward(c.target, c.schedule, R.root:substream(M.keys.forward))
  R.forward_seconds = qd.clock() - tf
  R.inputs = qd.ensemble.haar(c.n, c.N, R.root:substream(M.keys.inputs))
  R.params, R.losses, R.scores = {}, {}, {}   -- index t + 1: θ_t (qd.Vector), its losses, score
  for _, s in ipairs(R.S.state.trained) do
    optim.freeze(s)   -- finished steps: encoded once in later checkpoints
    local t = int(s.t)
    R.params[t + 1], R.losses[t + 1], R.scores[t + 1] = s.params, s.losses, s.score
  end
  local t = c.T - 1
  while R.params[t + 1] do
    if t >= 1 then push(R, t) end
    t = t - 1
  end
  R.t_next = t
end

-- the loss D(generated, targets) with its gradient, the gradient of a step's parameters
-- through the circuit (c:grad), the optimizer. The targets, inputs and epoch generator live
-- in the trainer table T: set per epoch, no closure made in the loop.
local function make_trainer(R)
  local c = R.c
  local T = { opt_fn = c.optimizer == "adam" and optim.adam or optim.sgd, gopt = { rng = false } }
  local lopt = { grad = true }
  if c.loss == "mmd" then
    T.lossfn = function(out) local v, G = qd.loss.mmd(out, T.targets, lopt) return v, G end
  elseif c.loss == "wasserstein" then
    lopt = { grad = true, plan = false }   -- the N x N plan is never read here
    T.lossfn = function(out) local v, _, G = qd.loss.wasserstein(out, T.targets, lopt) return v, G end
  else
    lopt = { grad = true, eps = c.sinkhorn_eps, strict = false }
    T.lossfn = function(out) local v, _, G = qd.loss.sinkhorn(out, T.targets, lopt) return v, G end
  end
  T.lopt = lopt
  local circ, gopt = R.circ, T.gopt
  T.feval = function(p) local L, g = circ:grad(T.X, p, T.lossfn, gopt) return L, g end
  -- Wasserstein: the assignment of each candidate is warm-started from its previous epoch's
  -- column prices (one table per candidate, so a new step or candidate starts cold). Only
  -- when the targets are S_t itself (ndata == N): column j is then the same target every
  -- epoch. The tables are not checkpointed: the solver returns the exact optimum from any
  -- start, and with continuous random states the optimal assignment is unique (ties have
  -- probability 0), so plan, loss and gradient do not depend on the start and a resumed run
  -- (cold first solve) is bit-identical (tests/lua/test_quddpm.lua checks this).
  T.warm_of = (c.loss == "wasserstein" and c.ndata == c.N) and setmetatable({}, { __mode = "k" })
  return T
end

-- N targets of S_t without replacement (S_t itself when ndata == N: see the header)
local function draw(R, T, St, rng)
  local c = R.c
  if c.ndata == c.N then return St end
  local idx = {}
  for i = 1, c.ndata do idx[i] = i end
  for i = 1, c.N do
    local j = rng:integer(i, c.ndata)
    idx[i], idx[j] = idx[j], idx[i]
  end
  T.gather = T.gather or qd.ensemble(c.n, c.N)
  for i = 1, c.N do T.gather:set(i, St:get(idx[i])) end
  return T.gather
end

local function new_cand(R, t, r)
  local c = R.c
  local s = R.root:substream(M.keys.step + 10000 * t + r)
  local opt = c.optimizer == "adam" and { lr = c.lr } or { lr = c.lr, momentum = c.momentum }
  return { r = r, e = 0, params = s:substream(0):normal(0, 1, c.P), opt = opt, losses = {} }
end

-- a candidate's score: its mean loss over the last 10% of its epochs
local function score_of(cand)
  local e = int(cand.e)
  local w = math.max(1, e // 10)
  local s = 0.0
  for i = e - w + 1, e do s = s + cand.losses[i] end
  return s / w
end

-- train_candidate(R, T, t, cand, upto): epochs of candidate cand of step t up to `upto`;
-- false when the session's budget ran out (stop_after)
local function train_candidate(R, T, t, cand, upto)
  local S = R.S
  local stream = R.root:substream(M.keys.step + 10000 * t + int(cand.r))
  local St = R.sets[t + 1]
  if T.warm_of then
    T.warm_of[cand] = T.warm_of[cand] or {}
    T.lopt.warm = T.warm_of[cand]
  end
  for e = int(cand.e) + 1, upto do
    local es = stream:substream(e)
    T.targets = draw(R, T, St, es)
    T.gopt.rng = es
    local _, L = T.opt_fn(T.feval, cand.params, cand.opt)
    cand.losses[e] = L
    cand.e = e
    R.prog:update(e, L)
    if not S:epoch(e) then return false end
  end
  return true
end

-- train_step(R, T, t) -> false if stopped: best-of-k candidates (screening), the best
-- continues to the full budget, θ_t frozen, the inputs pushed through it, checkpoint
local function train_step(R, T, t)
  local c, state, prog = R.c, R.S.state, R.prog
  local cur = state.cur
  if not cur or int(cur.t) ~= t then
    cur = { t = t, r = 1, cand = false, best = false }
    state.cur = cur
  end
  prog:begin_step(c.T - t, t, c.best_of > 1 and string.format("init %d/%d", int(cur.r), c.best_of) or nil)
  T.X = R.inputs:embed(c.na)
  while int(cur.r) <= c.best_of do
    if not cur.cand then cur.cand = new_cand(R, t, int(cur.r)) end
    if c.best_of > 1 then prog.note = string.format("init %d/%d", int(cur.r), c.best_of) end
    if not train_candidate(R, T, t, cur.cand, c.e_cand) then return false end
    cur.cand.score = score_of(cur.cand)
    if not cur.best or cur.cand.score < cur.best.score then cur.best = cur.cand end
    cur.cand = false
    cur.r = int(cur.r) + 1
  end
  local best = cur.best
  if c.best_of > 1 then prog.note = string.format("best init %d", int(best.r)) end
  if not train_candidate(R, T, t, best, c.epochs) then return false end
  best.score = score_of(best)
  R.params[t + 1], R.losses[t + 1], R.scores[t + 1] = best.params, best.losses, best.score
  state.trained[#state.trained + 1] = optim.freeze { t = t, r = best.r, params = best.params, losses = best.losses,
                                                     score = best.score }
  state.cur = false
  prog:end_step(best.score)
  if t >= 1 then push(R, t) end
  R.S:checkpoint()
  return true
end

-- generate(R, E, key) -> {E_0, ..., E_T}: the trained chain from E (= E_T), outcomes from
-- substreams key + t
local function generate(R, E, key)
  local c = R.c
  local gen = { [c.T + 1] = E }
  for t = c.T - 1, 0, -1 do
    gen[t + 1] = R.circ:run(gen[t + 2]:embed(c.na), R.params[t + 1], { rng = R.root:substream(key + t) })
  end
  return gen
end

-- evaluate(R, gen_train, gen_test): the metrics at t = 0 against S_0, the target's own
-- values, and per time step MMD(generated_t, S_t) and the steps' final losses
local function evaluate(R, gen_train, gen_test)
  local c, rec, sets = R.c, R.S.rec, R.sets
  local S0 = sets[1]
  for _, m in ipairs(c.metrics) do
    rec.metrics[m .. "_train"] = metric(m, gen_train[1], S0)
    rec.metrics[m .. "_test"] = metric(m, gen_test[1], S0)
  end
  rec.metrics.target = json.object()
  for _, m in ipairs(c.metrics) do
    if m ~= "mmd" and m ~= "wass" then rec.metrics.target[m] = metric(m, S0, S0) end
  end
  local traj = { mmd_train = {}, step_loss = {}, step_last_loss = {} }
  for t = 0, c.T do traj.mmd_train[t + 1] = (qd.loss.mmd(gen_train[t + 1], sets[t + 1])) end
  for t = 0, c.T - 1 do
    traj.step_loss[t + 1] = R.scores[t + 1]
    traj.step_last_loss[t + 1] = R.losses[t + 1][c.epochs]
  end
  rec.data.per_t = traj
  rec.data.step_final_loss = traj.step_loss
end

-- save_data(R, gen_train, gen_test): forward.npy, params.npy, loss.npy, generated_*.npy
local function save_data(R, gen_train, gen_test)
  local c, rec = R.c, R.S.rec
  qd.diffusion.save(rec:path("forward.npy"), R.sets)
  local PM = qd.matrix(c.T, c.P)
  local LM = qd.matrix(c.T, c.epochs)
  for t = 0, c.T - 1 do
    local p, l = R.params[t + 1], R.losses[t + 1]
    for j = 1, c.P do PM:set(t + 1, j, p[j]) end
    for e = 1, c.epochs do LM:set(t + 1, e, l[e]) end
  end
  PM:save_npy(rec:path("params.npy"))
  LM:save_npy(rec:path("loss.npy"))
  qd.save_ensembles(rec:path("generated_train.npy"), gen_train)
  qd.save_ensembles(rec:path("generated_test.npy"), gen_test)
end

-- quddpm.generate_from(res, E, seed [, key = 1]) -> the generated ensemble at t = 0: the
-- backward steps of a finished run (res from quddpm.run: its settings and params) applied to
-- the noise states E, the measurements drawn from the substreams key + t of qd.rng(seed), so
-- two models given the same E, seed and key share their measurement streams
function M.generate_from(res, E, seed, key)
  local s = res.settings
  local R = { c = { T = s.T, na = s.na }, circ = qd.ansatz.quddpm(s.n, s.L, { ancillas = s.na }),
              params = res.params, root = qd.rng(seed) }
  return generate(R, E, key or 1)[1]
end

M.pieces = { setup = setup, forward = forward, push = push, make_trainer = make_trainer,
             train_candidate = train_candidate, train_step = train_step, generate = generate,
             evaluate = evaluate, save_data = save_data, score_of = score_of }

-- quddpm.run(cfg) -> result {dir, metrics, stopped, params = {θ_0..θ_{T-1}} (index t+1),
--   losses (index t+1), gen_train, gen_test (index t+1 = time t), forward sets, timing}
local function run_impl(cfg)
  local R = setup(cfg)
  local c, S = R.c, R.S
  forward(R)
  local trainer = make_trainer(R)
  local per_step_epochs = c.best_of * c.e_cand + (c.epochs - c.e_cand)
  R.prog = S:progress { steps = c.T, epochs = c.epochs, total = c.T * per_step_epochs }
  local stopped = false
  for t = R.t_next, 0, -1 do
    if not train_step(R, trainer, t) then stopped = true break end
  end
  R.prog:finish()
  local result = { dir = R.dir, stopped = stopped, params = R.params, losses = R.losses, sets = R.sets,
                   settings = R.settings, metrics = S.rec.metrics }
  if stopped then
    S:stop()
    return result
  end
  local tg = qd.clock()
  local gen_train = generate(R, qd.ensemble.haar(c.n, c.N, R.root:substream(M.keys.inputs)), M.keys.gen_train)
  local gen_test = generate(R, qd.ensemble.haar(c.n, c.N_test, R.root:substream(M.keys.test_inputs)), M.keys.gen_test)
  local generate_seconds = qd.clock() - tg
  evaluate(R, gen_train, gen_test)
  if c.save_data then save_data(R, gen_train, gen_test) end
  result.timing = S:finish { forward_seconds = R.forward_seconds, generate_seconds = generate_seconds }
  result.gen_train, result.gen_test = gen_train, gen_test
  return result
end

-- ------------------------------------------------------------------ baselines

-- The two baselines of the QuDDPM paper (arXiv 2310.05866), trained on the same data and
-- Haar inputs as quddpm.run with the same seed: a single deep circuit that maps Haar states
-- to the target directly.
--   quddpm.qudt{target=, n=, na=, L=, N=, seed=, epochs=, lr= [, N_test=, quiet=]}
--     direct transport: generator qd.ansatz.quddpm(n, L, {ancillas = na}) trained on
--     MMD(G(inputs), S_0) with Adam.
--   quddpm.qugan{... , D_layers = 4}
--     QuGAN: the same generator; discriminator qd.ansatz.hardware_efficient(n, D_layers,
--     {final = true}) on the data qubits, P_real = (1 + <Z0>)/2;
--     L_D = mean P_real(fake) − mean P_real(real), L_G = −mean P_real(fake); per epoch one
--     Adam step of D, then one of G (through D by its vector-Jacobian product).
-- Both return {params, losses, gen_train, gen_test, metrics = {mmd_train, mmd_test, F0_*},
-- seconds}. Randomness: substreams of qd.rng(seed) (keys 40000 + epoch for QuDT, 50000 +
-- epoch for QuGAN; generation 60000/60001); not resumable (they are comparisons).
local baseline_spec = { target = true, n = true, na = true, L = true, N = true, seed = true, epochs = true,
                        lr = true, N_test = true, quiet = true, D_layers = true, progress = true }

local function baseline_setup(o, fname)
  if type(o) ~= "table" then error("bad argument #1 to '" .. fname .. "' (options table expected)", outside()) end
  for k in pairs(o) do
    if not baseline_spec[k] then error("bad argument #1 to '" .. fname .. "' (unknown option '" .. tostring(k) .. "')", outside()) end
  end
  for _, k in ipairs { "n", "L", "N", "epochs" } do
    if math.type(o[k]) ~= "integer" or o[k] < 1 then
      error("bad argument #1 to '" .. fname .. "' (option '" .. k .. "': integer >= 1 expected)", outside())
    end
  end
  if qd.type(o.target) ~= "qd.Ensemble" then
    error("bad argument #1 to '" .. fname .. "' (option 'target': qd.Ensemble expected)", outside())
  end
  local root = qd.rng(o.seed or 1)
  local na = o.na or 1
  local circ = qd.ansatz.quddpm(o.n, o.L, { ancillas = na })
  local inputs = qd.ensemble.haar(o.n, o.N, root:substream(M.keys.inputs))
  local test = qd.ensemble.haar(o.n, o.N_test or o.N, root:substream(M.keys.test_inputs))
  local theta = root:substream(70000):normal(0, 1, circ:nparams())
  return root, na, circ, inputs, test, theta
end

local function baseline_finish(o, root, na, circ, theta, inputs, test, losses, t0)
  local gen_train = circ:run(inputs:embed(na), theta, { rng = root:substream(60000) })
  local gen_test = circ:run(test:embed(na), theta, { rng = root:substream(60001) })
  local m = {
    mmd_train = (qd.loss.mmd(gen_train, o.target)), mmd_test = (qd.loss.mmd(gen_test, o.target)),
    F0_train = metric("F0", gen_train), F0_test = metric("F0", gen_test),
  }
  return { params = theta, losses = losses, gen_train = gen_train, gen_test = gen_test, metrics = m,
           seconds = qd.clock() - t0, nparams = circ:nparams() }
end

local function qudt_impl(o)
  local root, na, circ, inputs, test, theta = baseline_setup(o, "qudt")
  local t0 = qd.clock()
  local X = inputs:embed(na)
  local target = o.target
  local lopt = { grad = true }
  local lossfn = function(out) local v, G = qd.loss.mmd(out, target, lopt) return v, G end
  local gopt = { rng = false }
  local feval = function(p) local L, g = circ:grad(X, p, lossfn, gopt) return L, g end
  local state = { lr = o.lr or 5e-3 }
  local losses = {}
  local prog = progress.new { steps = 1, epochs = o.epochs, total = o.epochs, quiet = o.quiet,
                              mode = o.quiet and "quiet" or (o.progress or "auto"), label = "QuDT" }
  prog:begin_step(1, 0)
  for e = 1, o.epochs do
    gopt.rng = root:substream(40000 + e)
    local _, L = optim.adam(feval, theta, state)
    losses[e] = L
    prog:update(e, L)
  end
  prog:end_step(losses[o.epochs])
  return baseline_finish(o, root, na, circ, theta, inputs, test, losses, t0)
end

local function qugan_impl(o)
  local root, na, circ, inputs, test, theta = baseline_setup(o, "qugan")
  local t0 = qd.clock()
  local n, N = o.n, o.N
  local D = qd.ansatz.hardware_efficient(n, o.D_layers or 4, { final = true })
  local phi = root:substream(70001):normal(0, 1, D:nparams())
  local X = inputs:embed(na)
  local real = o.target
  local sg, sd = { lr = o.lr or 5e-3 }, { lr = o.lr or 5e-3 }
  local losses = {}
  -- mean P_real over an ensemble and, for its gradient, G = Z0 ψ (∂Σ<Z0>/∂ψ̄)
  local function preal(E)
    local out = D:run(E, phi)
    local Z = out:copy():z(0)
    return (1 + out:expect("Z", { 0 }):mean()) / 2, out, Z
  end
  local prog = progress.new { steps = 1, epochs = o.epochs, total = o.epochs, quiet = o.quiet,
                              mode = o.quiet and "quiet" or (o.progress or "auto"), label = "QuGAN" }
  prog:begin_step(1, 0)
  local scale_d = 1 / (2 * N)
  local scale_r = 1 / (2 * real.N)
  for e = 1, o.epochs do
    local fake, outcomes = circ:run(X, theta, { rng = root:substream(50000 + e) })
    -- discriminator step: L_D = mean P_real(fake) − mean P_real(real)
    optim.adam(function()
      local pf, outf, Zf = preal(fake)
      local pr, outr, Zr = preal(real)
      local gf = D:vjp(fake, phi, Zf)
      local gr = D:vjp(real, phi, Zr)
      local g = {}
      for i = 1, #gf do g[i] = scale_d * gf[i] - scale_r * gr[i] end
      return pf - pr, g
    end, phi, sd)
    -- generator step: L_G = −mean P_real(fake), through D and the generator's measurement
    local _, LG = optim.adam(function()
      local pf, _, Zf = preal(fake)
      local _, gx = D:vjp(fake, phi, Zf)
      local gt = circ:vjp(X, theta, gx, { outcomes = outcomes })
      local g = {}
      for i = 1, #gt do g[i] = -scale_d * gt[i] end
      return -pf, g
    end, theta, sg)
    losses[e] = LG
    prog:update(e, LG)
  end
  prog:end_step(losses[o.epochs])
  local res = baseline_finish(o, root, na, circ, theta, inputs, test, losses, t0)
  res.disc_params = phi
  return res
end

-- ------------------------------------------------------------------ script helpers

M.run = protocol.generational(run_impl)
M.qudt = protocol.generational(qudt_impl)
M.qugan = protocol.generational(qugan_impl)

-- the options every QuDDPM example takes (qd.cli format; the protocol's common ones, then
-- the training options), task options appended
function M.cli_options(extra)
  local o = protocol.cli_options {
    { "epochs", 0, "epochs per step (0 = the task's default)", min = 0 },
    { "lr", 0.0, "learning rate > 0 (0 = the task's default)", min = 0 },
    { "best_of", 1, "initialisations per step (best kept), 1 ... 9999", min = 1, max = 9999 },
    { "screen", 0, "with best_of > 1: epochs each candidate gets before the best continues (0 = all)", min = 0 },
    { "loss", "", "mmd | wasserstein | sinkhorn (empty = the task's)", choices = { "", "mmd", "wasserstein", "sinkhorn" } },
    { "N", 0, "ensemble size (0 = the task's)", min = 0 },
  }
  for _, e in ipairs(extra or {}) do o[#o + 1] = e end
  return o
end

-- print the metrics in a fixed order, one per line
M.print_metrics = protocol.print_metrics

-- quddpm.parse_cli(arg, spec) -> opts: the command line (qd.cli.parse), then --resume's
-- saved options (quddpm.resume_options) and --threads applied
function M.parse_cli(argv, spec)
  return protocol.parse_cli(argv, spec, M.format)
end

-- quddpm.from_cli(opts, cfg) -> cfg for quddpm.run with the command line's settings: seed,
-- the options (stored in the record), --loss and --lr over cfg's task defaults, --best-of,
-- --screen, --out, --resume, --quiet, --progress, --ckpt-every, --stop-after
function M.from_cli(opts, cfg)
  protocol.from_cli(opts, cfg)
  if opts.loss ~= nil and opts.loss ~= "" then cfg.loss = opts.loss end
  if opts.lr ~= nil and opts.lr > 0 then cfg.lr = opts.lr end
  cfg.best_of, cfg.screen = opts.best_of, opts.screen
  return cfg
end

-- ends the script (status 0) when the run stopped early (--stop-after), saying how to go on
M.exit_if_stopped = protocol.exit_if_stopped

return M
