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
local record = require "qd.record"
local progress = require "qd.progress"

local M = {}
M.format = 1

-- outside() -> the level for error(msg, level) of the nearest caller outside this file, so
-- errors in the options of run/qudt/qugan point at the user's line, not at this module
local SRC = debug.getinfo(1, "S").source
local function outside()
  local l = 3
  while true do
    local info = debug.getinfo(l, "S")
    if not info then return 0 end
    if info.source ~= SRC then return l - 1 end
    l = l + 1
  end
end

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
function M.stream(seed, name)
  local k = M.keys[name]
  if type(k) ~= "number" or k >= 10000 then
    error("bad argument #2 to 'stream' (one of target, forward, inputs, test_inputs, test_target, extra expected, got "
          .. tostring(name) .. ")", outside())
  end
  return qd.rng(seed):substream(k)
end

-- ------------------------------------------------------------------ configuration

local spec = {
  -- key = {type, default or nil (required), check}
  name = { "string", "quddpm" },
  seed = { "integer", 1, 0 },
  target = { "ensemble" },
  schedule = { "schedule" },
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
  if type(cfg) ~= "table" then error("bad argument #1 to 'run' (options table expected, got " .. type(cfg) .. ")", outside()) end
  for k in pairs(cfg) do
    if not spec[k] then error("bad argument #1 to 'run' (unknown option '" .. tostring(k) .. "')", outside()) end
  end
  local c = {}
  for k, s in pairs(spec) do
    local v = cfg[k]
    if v == nil then
      if s[2] == nil then error("bad argument #1 to 'run' (option '" .. k .. "' is required)", outside()) end
      v = s[2] or nil
    else
      local ok
      if s[1] == "integer" then ok = math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v))
      elseif s[1] == "ensemble" then ok = qd.type(v) == "qd.Ensemble"
      elseif s[1] == "schedule" then ok = qd.type(v) == "qd.Schedule" or type(v) == "table"
      else ok = type(v) == s[1] end
      if not ok then
        error(string.format("bad argument #1 to 'run' (option '%s': %s expected, got %s)", k, s[1], qd.type(v)), outside())
      end
      if s[1] == "integer" then v = math.tointeger(v) end
      if s[3] and v < s[3] then
        error(string.format("bad argument #1 to 'run' (option '%s': >= %d expected, got %d)", k, s[3], v), outside())
      end
    end
    c[k] = v
  end
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

-- the settings that define the result (compared on resume, stored in run.json)
-- script options that only steer a session (not the result)
M.session_keys = { resume = true, out = true, quiet = true, threads = true, progress = true,
                   stop_after = true, ckpt_every = true, force = true }

local function settings_of(c)
  local options = json.object()
  for k, v in pairs(c.options or {}) do
    if not M.session_keys[k] then options[k] = v end
  end
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

local write_atomic, read_file = record.write_atomic, record.read_file

-- quddpm.load_checkpoint(dir) -> {settings = plain table, state = restored table} or nil, msg
function M.load_checkpoint(dir)
  local text, err = read_file(dir .. "/checkpoint.json")
  if not text then return nil, "no checkpoint in " .. dir .. " (" .. tostring(err) .. ")" end
  local ok, doc = pcall(json.decode, text)
  if not ok or type(doc) ~= "table" or doc.format ~= M.format then
    return nil, "malformed checkpoint " .. dir .. "/checkpoint.json"
  end
  return { settings = doc.settings, state = optim.restore(doc.state) }
end

-- quddpm.resume_options(opts, dir [, keep]) -> opts with the saved script options of the run
-- in dir (the `options` table given to run), except the keys in keep (default: resume, out,
-- quiet, threads, progress, stop_after, ckpt_every), so a resumed script rebuilds exactly the
-- same run. An option given on the command line (opts from qd.cli.parse) that is not in
-- keep and differs from the saved value is refused — a usage error naming every such option
-- — rather than silently replaced.
function M.resume_options(opts, dir, keep)
  local cli = require "qd.cli"
  local ck, err = M.load_checkpoint(dir)
  if not ck then
    if cli.given(opts) then cli.fail(opts, "--resume: " .. err) end
    error("resume: " .. err, outside())
  end
  keep = keep or M.session_keys
  local saved = ck.settings.options or {}
  local given = cli.given(opts) or {}
  local bad = {}
  for k, v in pairs(saved) do
    if not keep[k] then
      if given[k] and opts[k] ~= v then
        bad[#bad + 1] = string.format("--%s %s (the run has %s)", k:gsub("_", "-"), tostring(opts[k]), tostring(v))
      end
      opts[k] = v
    end
  end
  if #bad > 0 then
    table.sort(bad)
    local names = {}
    for k in pairs(keep) do names[#names + 1] = "--" .. k:gsub("_", "-") end
    table.sort(names)
    cli.fail(opts, "--resume " .. dir .. " continues a run with its own settings; these options differ: " ..
             table.concat(bad, ", ") .. " (only " .. table.concat(names, ", ") .. " may change on resume)")
  end
  return opts
end

local function int(x) return math.tointeger(x) end

-- ------------------------------------------------------------------ the run

-- quddpm.run(cfg) -> result {dir, metrics, stopped, params = {θ_0..θ_{T-1}} (index t+1),
--   losses (index t+1), gen_train, gen_test (index t+1 = time t), forward sets, timing}
local function run_impl(cfg)
  local c = check_cfg(cfg)
  local n, na, T, N = c.n, c.na, c.T, c.N
  local circ = qd.ansatz.quddpm(n, c.L, { ancillas = na })
  c.P = circ:nparams()
  local settings = settings_of(c)
  local root = qd.rng(c.seed)
  local wall0 = qd.clock()

  -- resume: the checkpoint's settings must equal ours
  local state
  local dir = c.resume or c.out
  if c.resume then
    local ck, err = M.load_checkpoint(c.resume)
    if not ck then error("resume: " .. err, outside()) end
    local a, b = json.encode(ck.settings), json.encode(json.decode(json.encode(settings)))
    if a ~= b then
      error("resume: the settings of " .. c.resume .. " differ from this run's:\n  checkpoint " .. a .. "\n  this run   " .. b, outside())
    end
    state = ck.state
  else
    state = { trained = {}, cur = false, epochs_done = 0, train_seconds = 0.0, sessions = 0 }
  end
  state.sessions = int(state.sessions) + 1
  state.epochs_done = int(state.epochs_done)

  local rec = record.open(dir, { name = c.name, seed = c.seed, settings = settings, resume = c.resume and true or nil })
  dir = rec.dir
  rec.data.status = "running"

  -- forward sets (deterministic: recomputed on resume)
  local tf = qd.clock()
  local sets = qd.diffusion.forward(c.target, c.schedule, root:substream(M.keys.forward))
  local forward_seconds = qd.clock() - tf

  -- training inputs, pushed through the steps already trained
  local inputs = qd.ensemble.haar(n, N, root:substream(M.keys.inputs))
  local params = {}   -- params[t + 1] = θ_t (qd.Vector)
  local losses = {}   -- losses[t + 1] = list
  local scores = {}
  for _, s in ipairs(state.trained) do
    local t = int(s.t)
    params[t + 1], losses[t + 1], scores[t + 1] = s.params, s.losses, s.score
  end
  local function push(t)
    local X = inputs:embed(na)
    inputs = circ:run(X, params[t + 1], { rng = root:substream(M.keys.push + t) })
  end
  local t_next = T - 1
  while params[t_next + 1] do
    if t_next >= 1 then push(t_next) end
    t_next = t_next - 1
  end

  -- optimizer, loss closure (targets and rng are upvalues set per epoch: no allocation of
  -- closures in the loop)
  local opt_fn = c.optimizer == "adam" and optim.adam or optim.sgd
  local function new_opt()
    if c.optimizer == "adam" then return { lr = c.lr } end
    return { lr = c.lr, momentum = c.momentum }
  end
  local targets, X
  local lossfn
  local lopt = { grad = true }
  if c.loss == "mmd" then
    lossfn = function(out) local v, G = qd.loss.mmd(out, targets, lopt) return v, G end
  elseif c.loss == "wasserstein" then
    lopt = { grad = true, plan = false }   -- the N x N plan is never read here
    lossfn = function(out) local v, _, G = qd.loss.wasserstein(out, targets, lopt) return v, G end
  else
    lopt = { grad = true, eps = c.sinkhorn_eps, strict = false }
    lossfn = function(out) local v, _, G = qd.loss.sinkhorn(out, targets, lopt) return v, G end
  end
  local gopt = { rng = false }
  local feval = function(p)
    local L, g = circ:grad(X, p, lossfn, gopt)
    return L, g
  end

  -- N targets of S_t without replacement (see the header: S_t itself when ndata == N)
  local gather
  local function draw(St, rng)
    if c.ndata == N then return St end
    local idx = {}
    for i = 1, c.ndata do idx[i] = i end
    for i = 1, N do
      local j = rng:integer(i, c.ndata)
      idx[i], idx[j] = idx[j], idx[i]
    end
    gather = gather or qd.ensemble(n, N)
    for i = 1, N do gather:set(i, St:get(idx[i])) end
    return gather
  end

  local per_step_epochs = c.best_of * c.e_cand + (c.epochs - c.e_cand)
  local prog = progress.new { steps = T, epochs = c.epochs, total = T * per_step_epochs,
                              done = state.epochs_done, quiet = c.quiet,
                              mode = c.quiet and "quiet" or c.progress }

  local session_t0 = qd.clock()
  local session_epochs = 0
  local function save_checkpoint()
    state.train_seconds = state.train_seconds + (qd.clock() - session_t0)
    session_t0 = qd.clock()
    local doc = { format = M.format, settings = settings, state = optim.checkpoint(state) }
    write_atomic(dir .. "/checkpoint.json", json.encode(doc) .. "\n")
  end

  local function new_cand(t, r)
    local s = root:substream(M.keys.step + 10000 * t + r)
    return { r = r, e = 0, params = s:substream(0):normal(0, 1, c.P), opt = new_opt(), losses = {} }
  end

  local function score_of(cand)
    local e = int(cand.e)
    local w = math.max(1, e // 10)
    local s = 0.0
    for i = e - w + 1, e do s = s + cand.losses[i] end
    return s / w
  end

  -- run candidate epochs up to `upto`; returns false when the session budget ran out
  -- Wasserstein: the assignment of each candidate is warm-started from its previous epoch's
  -- column prices (one table per candidate, so a new step or candidate starts cold). Only
  -- when the targets are S_t itself (ndata == N): column j is then the same target every
  -- epoch. The tables are not checkpointed: the solver returns the exact optimum from any
  -- start, and with continuous random states the optimal assignment is unique (ties have
  -- probability 0), so plan, loss and gradient do not depend on the start and a resumed
  -- run (cold first solve) is bit-identical (tests/lua/test_quddpm.lua checks this).
  local warm_of = (c.loss == "wasserstein" and c.ndata == N) and setmetatable({}, { __mode = "k" })
  local function train(t, cand, upto)
    local stream = root:substream(M.keys.step + 10000 * t + int(cand.r))
    local St = sets[t + 1]
    if warm_of then
      warm_of[cand] = warm_of[cand] or {}
      lopt.warm = warm_of[cand]
    end
    for e = int(cand.e) + 1, upto do
      local es = stream:substream(e)
      targets = draw(St, es)
      gopt.rng = es
      local _, L = opt_fn(feval, cand.params, cand.opt)
      cand.losses[e] = L
      cand.e = e
      state.epochs_done = state.epochs_done + 1
      session_epochs = session_epochs + 1
      prog:update(e, L)
      if c.stop_after > 0 and session_epochs >= c.stop_after then return false end
      if c.ckpt_every > 0 and e % c.ckpt_every == 0 then save_checkpoint() end
    end
    return true
  end

  local stopped = false
  for t = t_next, 0, -1 do
    local cur = state.cur
    if not cur or int(cur.t) ~= t then
      cur = { t = t, r = 1, cand = false, best = false }
      state.cur = cur
    end
    prog:begin_step(T - t, t, c.best_of > 1 and string.format("init %d/%d", int(cur.r), c.best_of) or nil)
    X = inputs:embed(na)
    -- candidates
    while int(cur.r) <= c.best_of do
      if not cur.cand then cur.cand = new_cand(t, int(cur.r)) end
      if c.best_of > 1 then prog.note = string.format("init %d/%d", int(cur.r), c.best_of) end
      if not train(t, cur.cand, c.e_cand) then stopped = true break end
      cur.cand.score = score_of(cur.cand)
      if not cur.best or cur.cand.score < cur.best.score then cur.best = cur.cand end
      cur.cand = false
      cur.r = int(cur.r) + 1
    end
    if stopped then break end
    -- the best candidate continues to the full budget (screening mode)
    local best = cur.best
    if c.best_of > 1 then prog.note = string.format("best init %d", int(best.r)) end
    if not train(t, best, c.epochs) then stopped = true break end
    best.score = score_of(best)
    params[t + 1], losses[t + 1], scores[t + 1] = best.params, best.losses, best.score
    state.trained[#state.trained + 1] = { t = t, r = best.r, params = best.params, losses = best.losses, score = best.score }
    state.cur = false
    prog:end_step(best.score)
    if t >= 1 then push(t) end
    save_checkpoint()
  end
  prog:finish()

  local result = { dir = dir, stopped = stopped, params = params, losses = losses, sets = sets,
                   settings = settings, metrics = rec.metrics }
  if stopped then
    save_checkpoint()
    rec.data.status = "stopped"
    rec.data.epochs_done = state.epochs_done
    rec:save()
    return result
  end

  -- generation from the training inputs and from fresh Haar inputs
  local tg = qd.clock()
  local function generate(E, key)
    local gen = {}
    gen[T + 1] = E
    for t = T - 1, 0, -1 do
      gen[t + 1] = circ:run(gen[t + 2]:embed(na), params[t + 1], { rng = root:substream(key + t) })
    end
    return gen
  end
  local gen_train = generate(qd.ensemble.haar(n, N, root:substream(M.keys.inputs)), M.keys.gen_train)
  local gen_test = generate(qd.ensemble.haar(n, c.N_test, root:substream(M.keys.test_inputs)), M.keys.gen_test)
  local generate_seconds = qd.clock() - tg

  -- metrics at t = 0 against the target S_0
  local S0 = sets[1]
  for _, m in ipairs(c.metrics) do
    rec.metrics[m .. "_train"] = metric(m, gen_train[1], S0)
    rec.metrics[m .. "_test"] = metric(m, gen_test[1], S0)
  end
  rec.metrics.target = json.object()
  for _, m in ipairs(c.metrics) do
    if m ~= "mmd" and m ~= "wass" then rec.metrics.target[m] = metric(m, S0, S0) end
  end
  -- per time step: MMD(generated_t, S_t) and the final loss of each step
  local traj = { mmd_train = {}, step_loss = {}, step_last_loss = {} }
  for t = 0, T do traj.mmd_train[t + 1] = (qd.loss.mmd(gen_train[t + 1], sets[t + 1])) end
  for t = 0, T - 1 do
    traj.step_loss[t + 1] = scores[t + 1]
    traj.step_last_loss[t + 1] = losses[t + 1][c.epochs]
  end
  rec.data.per_t = traj
  rec.data.step_final_loss = traj.step_loss

  -- data files
  if c.save_data then
    qd.diffusion.save(rec:path("forward.npy"), sets)
    local PM = qd.matrix(T, c.P)
    local LM = qd.matrix(T, c.epochs)
    for t = 0, T - 1 do
      local p, l = params[t + 1], losses[t + 1]
      for j = 1, c.P do PM:set(t + 1, j, p[j]) end
      for e = 1, c.epochs do LM:set(t + 1, e, l[e]) end
    end
    PM:save_npy(rec:path("params.npy"))
    LM:save_npy(rec:path("loss.npy"))
    qd.save_ensembles(rec:path("generated_train.npy"), gen_train)
    qd.save_ensembles(rec:path("generated_test.npy"), gen_test)
  end

  state.train_seconds = state.train_seconds + (qd.clock() - session_t0)
  session_t0 = qd.clock()
  local timing = {
    forward_seconds = forward_seconds, generate_seconds = generate_seconds,
    train_seconds = state.train_seconds, epochs = state.epochs_done,
    seconds_per_epoch = state.epochs_done > 0 and state.train_seconds / state.epochs_done or 0,
    sessions = state.sessions, threads = qd.threads(),
    this_session_seconds = qd.clock() - wall0,
  }
  rec.data.timing = timing
  rec.data.status = "done"
  save_checkpoint()
  rec:save()
  result.gen_train, result.gen_test, result.timing = gen_train, gen_test, timing
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

-- the options every QuDDPM example takes (qd.cli format); extra task options appended
-- Training allocates a few short-lived ensembles per epoch: Lua's generational collector
-- handles that ~3% faster than the incremental one (tfim 2.34 -> 2.26 s, cluster-2 1.43 ->
-- 1.36 s at 300/2000 epochs per step), with identical results. The caller's mode is
-- restored on return (an error leaves the generational mode on: harmless).
local function generational(f)
  return function(...)
    local prev = collectgarbage("generational")
    local r = f(...)
    if prev == "incremental" then collectgarbage("incremental") end
    return r
  end
end
M.run = generational(run_impl)
M.qudt = generational(qudt_impl)
M.qugan = generational(qugan_impl)

function M.cli_options(extra)
  local o = {
    { "small", false, "tiny settings for tests (a few seconds)" },
    { "seed", 1, "seed of every random draw (0 ... 2^63-1)", min = 0 },
    { "out", "", "run directory (default runs/<name>-<time>)" },
    { "resume", "", "continue the interrupted run in this directory (its settings are used)" },
    { "epochs", 0, "epochs per step (0 = the task's default)", min = 0 },
    { "lr", 0.0, "learning rate > 0 (0 = the task's default)", min = 0 },
    { "best_of", 1, "initialisations per step (best kept), 1 ... 9999", min = 1, max = 9999 },
    { "screen", 0, "with best_of > 1: epochs each candidate gets before the best continues (0 = all)", min = 0 },
    { "loss", "", "mmd | wasserstein | sinkhorn (empty = the task's)", choices = { "", "mmd", "wasserstein", "sinkhorn" } },
    { "N", 0, "ensemble size (0 = the task's)", min = 0 },
    { "threads", 0, "threads, 0 ... 1024 (0 = keep qd's setting, qd --threads N)", min = 0, max = 1024 },
    { "quiet", false, "no progress output" },
    { "progress", "auto", "auto | live | lines", choices = { "auto", "live", "lines" } },
    { "ckpt_every", 0, "also checkpoint every this many epochs (0 = after each step only)", min = 0 },
    { "stop_after", 0, "stop (with a checkpoint) after this many epochs; for testing --resume", min = 0 },
  }
  for _, e in ipairs(extra or {}) do o[#o + 1] = e end
  return o
end

-- print the metrics in a fixed order, one per line
function M.print_metrics(res, keys)
  local m = res.metrics
  local names = {}
  for k, v in pairs(m) do if type(v) == "number" then names[#names + 1] = k end end
  table.sort(names)
  for _, k in ipairs(names) do print(string.format("  %-20s %.6g", k, m[k])) end
  if res.timing then
    print(string.format("  train %.2f s (%d epochs, %.1f us/epoch), threads %d", res.timing.train_seconds,
      res.timing.epochs, res.timing.seconds_per_epoch * 1e6, res.timing.threads))
  end
  print("run record: " .. res.dir .. "/run.json")
end

return M
