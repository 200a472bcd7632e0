-- qd.protocols.qgdm — diffusion of density matrices: QGDM and its resource-efficient variant
-- RE-QGDM (arXiv 2401.07039), with the QGAN baseline the paper compares against.
--
--   local qgdm = require "qd.protocols.qgdm"
--   local res = qgdm.run{
--     name = "qgdm", seed = 1,
--     target = rho0,                           -- qd.DensityMatrix (or qd.State) on n qubits
--     schedule = qd.schedule.linear{T = 10, from = 1e-4, to = 0.5},
--     L = 6, iterations = 500, lr = 0.02, out = "runs/x" }
--   res.metrics.fidelity, res.metrics.trace_distance, res.metrics.fidelity_per_t, ...
--
-- The model.
--   * forward (deterministic, known in closed form): rho_t = abar_t rho_0 + (1 - abar_t) I/d
--     ("global": the global depolarizing channel, abar_t = prod_{s<=t} (1 - beta_s) from the
--     schedule's betas), or every qubit through the depolarizing channel of strength beta_t
--     at step t ("local": qd.channel.depolarizing{p = beta_t}, the Pauli-probability form).
--   * backward: ONE circuit, its parameters shared by all steps, on N = n + nt + na qubits
--     (data 0..n-1, the time register n..n+nt-1, auxiliary qubits after it), applied to
--     rhohat_t (x) tau(t) (x) |0..0><0..0| and followed by the partial trace over time and
--     auxiliary qubits:  rhohat_{t-1} = Tr_{time,aux}[ U(theta) (rhohat_t (x) tau(t) (x) |0><0|) U^dag ].
--     tau(t): "angle" encoding, one qubit RY(pi t / T)|0>; "basis" encoding, nt = ceil(log2 T)
--     qubits in the basis state |t - 1>. U(theta): `blocks` copies of the ansatz
--     (hardware_efficient with a final rotation layer, strongly_entangling or ry_rz_cz; L
--     layers each, their own parameters) on all N qubits; between blocks the auxiliary qubits
--     are reset to |0> and reused — RE-QGDM, which reaches n = 8 with 1-2 auxiliary qubits
--     where QGDM needs na ~ n fresh ones. blocks = 1 is QGDM.
--     Generation starts from rhohat_T = I/d.
--   * loss: the per-step distance to the known forward state, summed over t:
--       L(theta) = sum_{t=1..T} D(rhohat_{t-1}, rho_{t-1}),
--     D = infidelity (1 - Uhlmann F, the default), trace_distance, hilbert_schmidt or
--     superfidelity (1 - superfidelity); step_weights = {w_1, ..., w_T} weighs the terms
--     (w_t D_t; all 1 by default). training = "chain" (the default) evaluates rhohat
--     along the generation chain from I/d and differentiates through the whole chain
--     (adjoint gradients of each step's circuit, the input gradient carried to the previous
--     step through the block <0|G|0> of the padding qubits: rho:block); training =
--     "teacher" feeds every step the exact rho_t instead (no gradient between steps: cheaper,
--     but the errors of the chain are never seen, and it generalises worse — see
--     docs/results.md). Each iteration is one Adam step on the full, exact gradient: the run
--     is deterministic; its only randomness is the initial theta ~ N(0, init_scale^2).
--
-- QGAN baseline (qgdm.qgan): the generator is the same chain of circuits from I/d with the
-- same parameters (so the same parameter count), trained adversarially against a
-- discriminator that is a parameterised measurement: D(rho) = Tr[U_D rho U_D^dag (|0><0| (x) I)],
-- U_D = hardware_efficient(n, D_layers, {final = true}). Per iteration one Adam step of
-- the discriminator on L_D = D(fake) - D(target), then one of the generator on
-- L_G = -D(fake); the generator's gradient goes through U_D and the whole chain.
--
-- Run directory: run.json (metrics.fidelity, trace_distance, fidelity_per_t (t = T ... 0),
-- alpha_bar (t = 0 ... T; for "local" the weight of rho_0 in one qubit's marginal), loss,
-- iterations), target.npy (d x d complex), generated.npy (rhohat_0), forward.npy
-- (T+1, d, d: rho_t at index t), generated_chain.npy (T+1, d, d: rhohat_t at index t),
-- params.npy (P), history.npy (iterations x 2: loss, Uhlmann fidelity of rhohat_0 per
-- iteration), checkpoint.json (every ckpt_every iterations, 0 = every 100, and at the end;
-- resume with --resume: bit for bit the uninterrupted run).
local qd = require "qd"
local core = require "qd.core"
local protocol = require "qd.protocol"

local M = {}
M.format = 1

local outside = protocol.outside

-- substream keys of qd.rng(seed)
M.keys = { init = 1, target = 2, extra = 6, disc = 7 }

-- qgdm.stream(seed, name) -> the substream the protocol uses for name (init, target, extra)
M.stream = protocol.streams(M.keys)

-- ------------------------------------------------------------------ configuration

local spec = {
  name = { "string", "qgdm" },
  seed = { "integer", 1, 0 },
  target = { "qd.DensityMatrix|qd.State" },
  schedule = { "qd.Schedule|table" },
  forward = { "string", "global", choices = { "global", "local" } },
  time = { "string", "angle", choices = { "angle", "basis" } },
  na = { "integer", false, 0 },
  L = { "integer", nil, 1 },
  blocks = { "integer", 1, 1 },
  ansatz = { "string", "hardware_efficient", choices = { "hardware_efficient", "strongly_entangling", "ry_rz_cz" } },
  loss = { "string", "infidelity", choices = { "infidelity", "trace_distance", "hilbert_schmidt", "superfidelity" } },
  training = { "string", "chain", choices = { "chain", "teacher" } },
  method = { "string", "auto", choices = { "auto", "kraus", "dm" } },
  lr = { "number", 0.02 },
  lr_decay = { "string", "none", choices = { "none", "cosine" } },
  iterations = { "integer", nil, 1 },
  init_scale = { "number", 0.1 },
  step_weights = { "table", false },
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

-- ckpt_every = 0 means a checkpoint every this many iterations
M.default_ckpt_every = 100

-- the largest register simulated: N = n + nt + na qubits of density matrix (2^(2N) amplitudes)
M.max_qubits = 13

local function bad(msg) error("bad argument #1 to 'run' (" .. msg .. ")", outside()) end

local function check_cfg(cfg)
  local c = protocol.config(spec, cfg, "run")
  if qd.type(c.schedule) ~= "qd.Schedule" then c.schedule = qd.schedule.from(c.schedule) end
  if qd.type(c.target) == "qd.State" then c.target = qd.dm(c.target) end
  c.T = #c.schedule
  c.n = c.target.n
  c.na = c.na or c.n
  c.nt = c.time == "angle" and 1 or math.max(1, math.ceil(math.log(c.T, 2) - 1e-12))
  c.N = c.n + c.nt + c.na
  if c.N > M.max_qubits then
    bad(string.format("n + time + auxiliary qubits = %d + %d + %d = %d; at most %d (a %d-qubit density matrix)",
      c.n, c.nt, c.na, c.N, M.max_qubits, M.max_qubits))
  end
  if not (c.lr > 0) then bad("option 'lr': > 0 expected, got " .. c.lr) end
  if not (c.init_scale >= 0) then bad("option 'init_scale': >= 0 expected, got " .. c.init_scale) end
  if c.blocks > 1 and c.na == 0 then bad("option 'blocks' > 1 resets the auxiliary qubits: na >= 1 needed") end
  if c.step_weights then
    local w = c.step_weights
    if #w ~= c.T then bad(string.format("option 'step_weights': %d weights (one per step) expected, got %d", c.T, #w)) end
    for t = 1, c.T do
      if type(w[t]) ~= "number" or not (w[t] >= 0 and w[t] < math.huge) then
        bad(string.format("option 'step_weights': weight %d: finite number >= 0 expected, got %s", t, tostring(w[t])))
      end
    end
  end
  if c.method == "auto" then c.method = "kraus" end
  -- one training "step" only: without a period a long run would checkpoint at its end alone
  if c.ckpt_every == 0 then c.ckpt_every = M.default_ckpt_every end
  return c
end

-- the settings that define the result (compared on resume, stored in run.json)
-- qgdm.result_options(opts) -> the command line's options as a run records them
-- (protocol.result_options); --ansatz, added later, only when it is not the default, so runs
-- made before it (their golden digests, their --resume) keep their settings
function M.result_options(opts)
  local options = protocol.result_options(opts)
  if options.ansatz == "hardware_efficient" then options.ansatz = nil end
  return options
end

local function settings_of(c, P)
  local options = M.result_options(c.options)
  return {
    name = c.name, seed = c.seed, n = c.n, na = c.na, nt = c.nt, L = c.L, T = c.T, blocks = c.blocks,
    forward = c.forward, time = c.time, ansatz = c.ansatz, loss = c.loss, training = c.training, method = c.method,
    lr = c.lr, lr_decay = c.lr_decay, iterations = c.iterations, init_scale = c.init_scale, nparams = P,
    schedule = c.schedule:totable(),
    -- the target itself is part of the result: its purity and <0..0|rho|0..0> fingerprint it
    target_fingerprint = { c.target:purity(), (c.target:get(1, 1)) },
    options = options,
    -- only when given: the records (and golden digests) of unweighted runs stay as they were
    step_weights = c.step_weights or nil,
  }
end

-- ------------------------------------------------------------------ the pieces

-- qgdm.forward(rho0, schedule [, kind]) -> {rho_0, ..., rho_T} (index t + 1), alpha_bar
-- (index t + 1): kind "global" (default) or "local" (see the header)
function M.forward(rho0, schedule, kind)
  local T, n = #schedule, rho0.n
  local I = qd.maximally_mixed(n)
  local rhos, abar = { rho0 }, { 1.0 }
  for t = 1, T do
    if kind == "local" then
      local ch = qd.channel.depolarizing { p = schedule:beta(t) }
      local r = rhos[t]:copy()
      for q = 0, n - 1 do r:apply(ch, { q }) end
      rhos[t + 1] = r
      -- one qubit's Bloch vector shrinks by 1 - 4p/3 per step
      abar[t + 1] = abar[t] * (1 - 4 * schedule:beta(t) / 3)
    else
      local ab = schedule:alpha_bar(t)
      rhos[t + 1] = rho0 * ab + I * (1 - ab)
      abar[t + 1] = ab
    end
  end
  return rhos, abar
end

-- the time-register gates of step t on circuit circ (fixed angles: no parameter slot)
local function time_gates(c, circ, t)
  if c.time == "angle" then
    circ:ry(c.n, math.pi * t / c.T)
  else
    for b = 0, c.nt - 1 do   -- |t - 1>, the register's first qubit most significant
      if ((t - 1) >> (c.nt - 1 - b)) & 1 == 1 then circ:x(c.n + b) end
    end
  end
end

local function ansatz_of(c)
  if c.ansatz == "hardware_efficient" then return qd.ansatz.hardware_efficient(c.N, c.L, { final = true }) end
  return qd.ansatz[c.ansatz](c.N, c.L)
end

-- qgdm.circuits(c) -> {circuit of step t (index t)}, P: the backward step on N qubits with
-- the time and auxiliary qubits traced out at the end (the "dm" method); every circuit has the
-- same P parameter slots (blocks x the ansatz's: block 1's first), in the same layout
function M.circuits(c)
  local ans = ansatz_of(c)
  local aux, dropped = {}, {}
  for q = c.n + c.nt, c.N - 1 do aux[#aux + 1] = q end
  for q = c.n, c.N - 1 do dropped[#dropped + 1] = q end
  local circs = {}
  for t = 1, c.T do
    local circ = qd.circuit(c.N)
    time_gates(c, circ, t)
    for b = 1, c.blocks do
      circ:append(ans)
      if b < c.blocks then circ:reset(aux) end
    end
    circ:measure(dropped, { discard = true })
    circs[t] = circ
  end
  return circs, circs[1]:nparams()
end

-- the 2^k basis states |i>|0..0> of the N-qubit register (i on its first k qubits): the
-- inputs whose images are the columns of an isometry
local function basis_inputs(c, k)
  local states = {}
  for i = 0, (1 << k) - 1 do
    local bits = {}
    for b = k - 1, 0, -1 do bits[#bits + 1] = (i >> b) & 1 end
    states[i + 1] = qd.state(c.N, table.concat(bits) .. string.rep("0", c.N - k))
  end
  return qd.ensemble.from(states)
end

-- the Kraus method's pieces: first[t] = the time gates and block 1 (unitary), mid = one later
-- block (the same circuit for blocks 2 ... blocks, each with its own slice of theta), Pa =
-- the parameters of one block; Ein = the d data basis inputs, EinD = the 2^(n + nt) data +
-- time basis inputs of the blocks after the first (the auxiliary qubits are reset before each)
local function kraus_model(R, c)
  local ans = ansatz_of(c)
  R.first = {}
  for t = 1, c.T do
    local circ = qd.circuit(c.N)
    time_gates(c, circ, t)
    circ:append(ans)
    R.first[t] = circ
  end
  R.Pa = ans:nparams()
  R.P = c.blocks * R.Pa
  R.kraus, R.Ein = true, basis_inputs(c, c.n)
  if c.blocks > 1 then
    R.mid = qd.circuit(c.N)
    R.mid:append(ans)
    R.EinD = basis_inputs(c, c.n + c.nt)
  end
end

-- the model R: config, circuits, forward states, the padding |0..0><0..0| of time + aux
local function model(c)
  local R = { c = c }
  if c.method == "kraus" then kraus_model(R, c) else R.circs, R.P = M.circuits(c) end
  R.rhos, R.abar = M.forward(c.target, c.schedule, c.forward)
  R.pad = qd.dm(c.nt + c.na)
  R.keep = {}
  for q = 0, c.n - 1 do R.keep[q + 1] = q end
  R.I = qd.maximally_mixed(c.n)
  R.lossf = qd.loss[c.loss]
  return R
end

-- block b of step t under the Kraus method: its circuit, basis inputs, the qubits traced out
-- after it (auxiliary; time too after the last block) and its slice of theta
local function traced_after(R, b)
  local c = R.c
  return b == c.blocks and c.nt + c.na or c.na
end

local function kraus_block(R, t, b, theta)
  local c = R.c
  local th = theta   -- one block: all of theta, no copy
  if c.blocks > 1 then
    th = qd.vector(R.Pa)
    for i = 1, R.Pa do th[i] = theta[(b - 1) * R.Pa + i] end
  end
  if b == 1 then return R.first[t], R.Ein, traced_after(R, b), th end
  return R.mid, R.EinD, traced_after(R, b), th
end

-- one step under the Kraus method: every block is the channel of its isometry's Kraus
-- blocks (the isometry from the circuit run on its basis inputs) -> x (what the vjp needs:
-- with grad, each block's tape, so the backward pass does not run the circuit again), out
local function kraus_step(R, t, theta, input, grad)
  local x, s = { W = {}, rho = {}, tape = {} }, input
  for b = 1, R.c.blocks do
    local circ, E, m, th = kraus_block(R, t, b, theta)
    local W
    if grad then W, x.tape[b] = circ:forward(E, th) else W = circ:run(E, th) end
    x.W[b], x.rho[b] = W, s
    s = core.isometry_channel(W, s, m)
  end
  return x, s
end

local no_input_grad = { input_grad = false }

-- dL/dtheta of block b from dL/d conj(W): from its tape, or (a chain run without grad)
-- by the circuit's own vjp, which runs it again
local function block_vjp(R, t, b, theta, x, gW)
  if x.tape[b] then return x.tape[b]:vjp(gW, no_input_grad) end
  local circ, E, _, th = kraus_block(R, t, b, theta)
  return circ:vjp(E, th, gW, no_input_grad)
end

local function kraus_step_vjp(R, t, theta, x, G)
  if R.c.blocks == 1 then
    local gW, gs = core.isometry_channel_vjp(x.W[1], x.rho[1], traced_after(R, 1), G)
    return block_vjp(R, t, 1, theta, x, gW), gs
  end
  local g = qd.vector(R.P)
  for b = R.c.blocks, 1, -1 do
    local gW, gs = core.isometry_channel_vjp(x.W[b], x.rho[b], traced_after(R, b), G)
    local gb = block_vjp(R, t, b, theta, x, gW)
    for i = 1, R.Pa do g[(b - 1) * R.Pa + i] = gb[i] end
    G = gs
  end
  return g, G
end

-- chain(R, theta) -> xs, outs: the generation chain from I/d; xs[t] = the input of step t
-- (rhohat_t (x) pad), outs[t] = rhohat_t (t = 0 ... T, outs[T] = I/d); with teacher = true
-- every step gets the exact rho_t instead; grad = true keeps what backprop needs
local function chain(R, theta, teacher, grad)
  local c = R.c
  local xs, outs = {}, { [c.T] = R.I }
  for t = c.T, 1, -1 do
    local input = teacher and R.rhos[t + 1] or outs[t]
    if R.kraus then
      xs[t], outs[t - 1] = kraus_step(R, t, theta, input, grad)
    else
      xs[t] = input:kron(R.pad)
      outs[t - 1] = R.circs[t]:run(xs[t], theta)
    end
  end
  return xs, outs
end

-- one step's vector-Jacobian product: dL/dtheta and dL/d conj(input) for G at its output
local function step_vjp(R, t, theta, x, G)
  if R.kraus then return kraus_step_vjp(R, t, theta, x, G) end
  local gt, gx = R.circs[t]:vjp(x, theta, G)
  return gt, gx:block(R.keep)
end
M.chain = function(R, theta) return chain(R, theta, false) end

-- backprop(R, theta, xs, outs, G0 [, per_step]) -> dL/dtheta (qd.Vector), loss:
-- reverse-mode through the chain. G0: dL/d conj(rhohat_0) from outside (or nil);
-- per_step = true adds the per-step loss D(rhohat_{t-1}, rho_{t-1}) at every t. With
-- R.teacher the inputs are fixed (no gradient between steps).
local function backprop(R, theta, xs, outs, G0, per_step)
  local c = R.c
  local g = qd.vector(R.P)
  local total, up = 0.0, G0
  for t = 1, c.T do   -- step t made outs[t - 1]; up = the gradient arriving at outs[t - 1]
    local G = up
    if per_step then
      local l, Gl = R.lossf(outs[t - 1], R.rhos[t], { grad = true, wrt = 1 })
      local w = R.c.step_weights and R.c.step_weights[t]
      if w then l, Gl = w * l, Gl * w end
      total = total + l
      G = G and (G + Gl) or Gl
    end
    if G then
      local gt, gin = step_vjp(R, t, theta, xs[t], G)
      g = g + gt
      up = (not R.teacher and t < c.T) and gin or nil
    else
      up = nil
    end
  end
  return g, total
end
M.backprop = backprop

-- the per-step loss and its gradient at theta; rhohat_0 of the generation chain as third
-- result (teacher training runs the generation chain once more for it)
local function loss_grad(R, theta)
  local xs, outs = chain(R, theta, R.teacher, true)
  local g, L = backprop(R, theta, xs, outs, nil, true)
  local gen0 = outs[0]
  if R.teacher then
    local _, o2 = chain(R, theta, false)
    gen0 = o2[0]
  end
  return L, g, gen0
end
M.loss_grad = loss_grad

-- metrics of the generated chain against the forward states
local function evaluate(R, theta)
  local c = R.c
  local _, outs = chain(R, theta, false)
  local per_t, alpha_bar = {}, {}
  for t = c.T, 0, -1 do per_t[#per_t + 1] = qd.fidelity(outs[t], R.rhos[t + 1]) end
  for t = 0, c.T do alpha_bar[t + 1] = R.abar[t + 1] end
  return {
    fidelity = qd.fidelity(outs[0], c.target),
    trace_distance = qd.trace_distance(outs[0], c.target),
    purity_generated = outs[0]:purity(), purity_target = c.target:purity(),
    fidelity_per_t = per_t, alpha_bar = alpha_bar,
  }, outs
end
M.evaluate = evaluate

local function init_theta(R, key)
  local c = R.c
  local theta = qd.vector(R.P)
  if c.init_scale > 0 then
    local v = qd.rng(c.seed):substream(key):normal(0, c.init_scale, R.P)
    for i = 1, R.P do theta[i] = v[i] end
  end
  return theta
end

local function history_matrix(losses, fids)
  local H = qd.matrix(#losses, 2)
  for i = 1, #losses do H:set(i, 1, losses[i]); H:set(i, 2, fids[i]) end
  return H
end

local function save_data(R, theta, outs, losses, fids)
  local c, rec = R.c, R.S.rec
  c.target:save_npy(rec:path("target.npy"))
  outs[0]:save_npy(rec:path("generated.npy"))
  qd.save_stack(rec:path("forward.npy"), R.rhos)
  local gen = {}
  for t = 0, c.T do gen[t + 1] = outs[t] end
  qd.save_stack(rec:path("generated_chain.npy"), gen)
  theta:save_npy(rec:path("params.npy"))
  if #losses > 0 then history_matrix(losses, fids):save_npy(rec:path("history.npy")) end
end

-- a resumed state is checked before anything is written
local function check_state(R, st)
  local function damaged(what) error("resume: damaged checkpoint (" .. what .. ")", 0) end
  if qd.type(st.theta) ~= "qd.Vector" or #st.theta ~= R.P then damaged("theta") end
  if type(st.losses) ~= "table" or type(st.fids) ~= "table" or #st.losses ~= #st.fids then damaged("history") end
  if type(st.opt) ~= "table" then damaged("optimizer state") end
  if #st.losses > R.c.iterations then damaged("more iterations than the run has") end
end

-- Adam's state: lr, and with lr_decay = "cosine" a cosine decay to lr / 20 over the run
function M.optimizer_state(c)
  local st = { lr = c.lr }
  if c.lr_decay == "cosine" then
    st.schedule = require("qd.optim").schedule.cosine { lr = c.lr, T = c.iterations, lr_min = c.lr / 20 }
  end
  return st
end

-- the session: run directory, record, checkpoint, progress
local function open_session(R, name, extra_state, extra_settings)
  local c = R.c
  R.settings = settings_of(c, R.P)
  for k, v in pairs(extra_settings or {}) do R.settings[k] = v end
  R.S = protocol.session {
    name = c.name, seed = c.seed, settings = R.settings, format = M.format, out = c.out,
    resume = c.resume, quiet = c.quiet, progress = c.progress, stop_after = c.stop_after,
    ckpt_every = c.ckpt_every,
    state = function()
      local st = { theta = init_theta(R, M.keys.init), opt = M.optimizer_state(c), losses = {}, fids = {} }
      for k, f in pairs(extra_state or {}) do st[k] = f() end
      return st
    end,
  }
  if c.resume then check_state(R, R.S.state) end
  R.dir = R.S.dir
  R.prog = R.S:progress { steps = 1, epochs = c.iterations, total = c.iterations, label = name }
  R.prog:begin_step(1, 0)
end

-- the training loop: step(st) does one iteration and returns loss, fidelity of rhohat_0
local function train(R, step)
  local st, S = R.S.state, R.S
  for it = #st.losses + 1, R.c.iterations do
    local L, F = step(st)
    st.losses[it], st.fids[it] = L, F
    R.prog:update(it, L)
    if not S:epoch(it) then return false end
  end
  return true
end

local function finish(R, theta, stopped)
  local c, S, st = R.c, R.S, R.S.state
  R.prog:end_step(st.losses[#st.losses] or 0)
  R.prog:finish()
  local result = { dir = R.dir, stopped = stopped, settings = R.settings, params = theta,
                   losses = st.losses, fidelities = st.fids, metrics = S.rec.metrics }
  if stopped then
    S:stop()
    return result
  end
  local metrics, outs = evaluate(R, theta)
  metrics.loss = st.losses[#st.losses]
  metrics.iterations = #st.losses
  for k, v in pairs(metrics) do S.rec.metrics[k] = v end
  -- the same per-step lists in time order (index t + 1), as the other protocols' per_t
  local fid_t = {}
  for t = 0, c.T do fid_t[t + 1] = metrics.fidelity_per_t[c.T + 1 - t] end
  S.rec.data.per_t = { fidelity = fid_t, alpha_bar = metrics.alpha_bar }
  if c.save_data then save_data(R, theta, outs, st.losses, st.fids) end
  result.timing = S:finish()
  result.generated, result.chain, result.forward = outs[0], outs, R.rhos
  return result
end

-- ------------------------------------------------------------------ QGDM / RE-QGDM

-- qgdm.run(cfg) -> {dir, stopped, metrics, params, losses, fidelities (per iteration),
--   generated (rhohat_0), chain (index t: rhohat_t), forward (index t + 1: rho_t), timing}
local function run_impl(cfg)
  local c = check_cfg(cfg)
  local R = model(c)
  R.teacher = c.training == "teacher"
  open_session(R, c.blocks > 1 and "RE-QGDM" or "QGDM")
  local st = R.S.state
  local gen0
  local function feval(x)
    local L, g, g0 = loss_grad(R, x)
    gen0 = g0
    return L, g
  end
  local ok = train(R, function(s)
    local _, L = qd.optim.adam(feval, s.theta, s.opt)
    return L, qd.fidelity(gen0, c.target)
  end)
  return finish(R, st.theta, not ok)
end

-- ------------------------------------------------------------------ QGAN baseline

-- the discriminator's "real" projector |0><0| (x) I on the data register, as dL/d conj(rho)
-- of D(rho) = Tr[Pi rho] in qd's convention (dL = 2 Tr(G drho)): G = Pi / 2
local function disc_parts(c, D_layers)
  local circ = qd.ansatz.hardware_efficient(c.n, D_layers, { final = true })
  -- pi = (|0><0| (x) I) / 2^(n-1) is a density matrix: G = Pi / 2 = pi * 2^(n-2)
  local pi = c.n == 1 and qd.dm(1) or qd.dm(1):kron(qd.maximally_mixed(c.n - 1))
  return circ, pi * (2.0 ^ (c.n - 2))
end

-- D(rho) and, with the gradient G of a loss sign * D, dL/dtheta_D and dL/d conj(rho)
local function disc(circ, theta_d, rho, Gpi, sign)
  local out = circ:run(rho, theta_d)
  local p = out:probs({ 0 })[1]
  local gd, grho = circ:vjp(rho, theta_d, Gpi * sign)
  return p, gd, grho
end

-- qgdm.qgan(cfg): cfg as for qgdm.run (training, loss unused) plus D_layers (default 4) and
-- lr_d (default lr); returns what run returns (metrics of the generator's chain)
local function qgan_impl(cfg)
  local D_layers = cfg.D_layers or 4
  local lr_d = cfg.lr_d
  local c0 = {}
  for k, v in pairs(cfg) do if k ~= "D_layers" and k ~= "lr_d" then c0[k] = v end end
  if math.type(D_layers) ~= "integer" or D_layers < 1 then bad("option 'D_layers': integer >= 1 expected") end
  if lr_d ~= nil and not (type(lr_d) == "number" and lr_d > 0) then bad("option 'lr_d': number > 0 expected") end
  -- the generator is trained by the discriminator, not by per-step distances
  if c0.step_weights ~= nil then bad("option 'step_weights': weights of the per-step losses, which QGAN does not use") end
  local c = check_cfg(c0)
  c.lr_d = lr_d or c.lr
  local R = model(c)
  local dcirc, Gpi = disc_parts(c, D_layers)
  open_session(R, "QGAN", {
    theta_d = function()
      local v = qd.rng(c.seed):substream(M.keys.disc):normal(0, 1, dcirc:nparams())
      local th = qd.vector(dcirc:nparams())
      for i = 1, #th do th[i] = v[i] end
      return th
    end,
    opt_d = function() return M.optimizer_state { lr = c.lr_d, lr_decay = c.lr_decay, iterations = c.iterations } end,
  }, { D_layers = D_layers, lr_d = c.lr_d, kind = "qgan" })
  local ok = train(R, function(s)
    local _, outs = chain(R, s.theta, false)
    local fake = outs[0]
    -- discriminator: minimise D(fake) - D(target)
    qd.optim.adam(function(td)
      local pf, gf = disc(dcirc, td, fake, Gpi, 1)
      local pr, gr = disc(dcirc, td, c.target, Gpi, -1)
      local g = qd.vector(#td)
      for i = 1, #td do g[i] = gf[i] + gr[i] end
      return pf - pr, g
    end, s.theta_d, s.opt_d)
    -- generator: minimise -D(fake), through the discriminator and the chain
    local LG
    qd.optim.adam(function(x)
      local xs, o = chain(R, x, false, true)
      local p, _, grho = disc(dcirc, s.theta_d, o[0], Gpi, -1)
      LG = -p
      local g = backprop(R, x, xs, o, grho, false)
      return LG, g
    end, s.theta, s.opt)
    local _, o = chain(R, s.theta, false)
    return LG, qd.fidelity(o[0], c.target)
  end)
  return finish(R, R.S.state.theta, not ok)
end

M.run = protocol.generational(run_impl)
M.qgan = protocol.generational(qgan_impl)

-- the pieces, each testable alone: model(c) with c from check(cfg); chain, backprop and
-- loss_grad on a model; disc_parts / disc the QGAN discriminator
M.pieces = { check = check_cfg, model = model, chain = chain, backprop = backprop, loss_grad = loss_grad,
             evaluate = evaluate, disc_parts = disc_parts, disc = disc }

-- ------------------------------------------------------------------ targets

-- qgdm.target(kind, n, rng [, {rank =, beta =, g =}]) -> DensityMatrix:
--   "pure": |psi><psi| of a random state prepared by a random circuit (Haar-random here);
--   "mixed": a random rank-r mixture (qd.data.random_mixed, measure "mixture": Haar
--   eigenvectors, Dirichlet weights), rank default 2;
--   "gibbs": the Gibbs state e^{-beta H}/Z of the open TFIM H = -sum Z_i Z_{i+1} - g sum X_i
--   (g default 1), beta default 1.
function M.target(kind, n, rng, o)
  o = o or {}
  if kind == "pure" then
    return qd.dm(qd.haar_state(n, rng))
  elseif kind == "mixed" then
    return qd.data.random_mixed(n, rng, { measure = "mixture", rank = o.rank or 2 })
  elseif kind == "gibbs" then
    return (qd.pauli_sum.tfim(n, o.g or 1.0):gibbs(o.beta or 1.0))
  end
  error("bad argument #1 to 'target' (pure, mixed or gibbs expected, got " .. tostring(kind) .. ")", outside())
end

-- ------------------------------------------------------------------ scripts

-- the options every QGDM example takes (the protocol's common ones, then these), extra appended
function M.cli_options(extra)
  local o = protocol.cli_options {
    { "iterations", 0, "training iterations (0 = the example's default)", min = 0 },
    { "lr", 0.0, "Adam learning rate > 0 (0 = the example's default)", min = 0 },
    { "lr_decay", "", "none | cosine (to lr/20 over the run; empty = the example's)", choices = { "", "none", "cosine" } },
    { "T", 0, "diffusion steps (0 = the example's default)", min = 0, max = 1000 },
    { "L", 0, "ansatz layers per block (0 = the example's default)", min = 0, max = 1000 },
    { "loss", "infidelity", "infidelity | trace_distance | hilbert_schmidt | superfidelity",
      choices = { "infidelity", "trace_distance", "hilbert_schmidt", "superfidelity" } },
    { "training", "chain", "chain (through the generation chain) | teacher (exact inputs)", choices = { "chain", "teacher" } },
    { "time", "angle", "time register: angle (1 qubit) | basis (ceil(log2 T) qubits)", choices = { "angle", "basis" } },
    { "forward", "global", "forward noise: global (global depolarizing) | local (every qubit)", choices = { "global", "local" } },
    { "step_weights", "", "weights of the per-step losses, t = 1 ... T, comma-separated (empty = all 1)" },
    { "init_scale", 0.1, "initial parameters ~ N(0, s^2), s >= 0", min = 0 },
    -- ry_rz_cz with an even --L is the identity at zero angles (its CZ ladders cancel in pairs):
    -- with a small --init-scale every block starts near the identity
    { "ansatz", "hardware_efficient", "ansatz of each block: hardware_efficient | strongly_entangling | ry_rz_cz",
      choices = { "hardware_efficient", "strongly_entangling", "ry_rz_cz" } },
  }
  for _, e in ipairs(extra or {}) do o[#o + 1] = e end
  return o
end

-- qgdm.target_options(n, max_n) -> the examples' target options (qd.cli format): --n (default
-- n, 1 ... max_n), --target, --rank, --beta, --g
function M.target_options(n, max_n)
  return {
    { "n", n, string.format("data qubits, 1 ... %d", max_n), min = 1, max = max_n },
    { "target", "pure", "pure | mixed | gibbs", choices = { "pure", "mixed", "gibbs" } },
    { "rank", 2, "rank of a mixed target, >= 1", min = 1 },
    { "beta", 1.0, "inverse temperature of a Gibbs target, >= 0", min = 0 },
    { "g", 1.0, "transverse field of the Gibbs target's TFIM" },
  }
end

-- qgdm.target_from_cli(opts [, n]) -> the target the options describe, on n qubits (default
-- opts.n), drawn from stream(seed, "target"); a rank above 2^n is a usage error
function M.target_from_cli(opts, n)
  n = n or opts.n
  if opts.target == "mixed" and opts.rank > 2 ^ n then
    require("qd.cli").fail(opts, string.format("--rank %d exceeds 2^n = %d", opts.rank, 2 ^ n))
  end
  return M.target(opts.target, n, M.stream(opts.seed, "target"), { rank = opts.rank, beta = opts.beta, g = opts.g })
end

-- qgdm.from_cli(opts, cfg) -> cfg for qgdm.run with the command line's settings over cfg's
function M.from_cli(opts, cfg)
  protocol.from_cli(opts, cfg)
  if opts.iterations > 0 then cfg.iterations = opts.iterations end
  if opts.lr > 0 then cfg.lr = opts.lr end
  if opts.lr_decay ~= "" then cfg.lr_decay = opts.lr_decay end
  cfg.loss, cfg.training, cfg.time, cfg.forward = opts.loss, opts.training, opts.time, opts.forward
  cfg.ansatz = opts.ansatz
  if opts.init_scale ~= 0.1 then cfg.init_scale = opts.init_scale end
  if opts.step_weights ~= "" then
    local w = {}
    for item in (opts.step_weights .. ","):gmatch("([^,]*),") do
      local v = tonumber(item)
      if not v or not (v >= 0 and v < math.huge) then
        require("qd.cli").fail(opts, "--step-weights: numbers >= 0 separated by commas expected, got '" .. item .. "'")
      end
      w[#w + 1] = v
    end
    -- one weight per step: a usage error here, not the library's error from qgdm.run
    local T = cfg.schedule and #cfg.schedule
    if T and #w ~= T then
      require("qd.cli").fail(opts, string.format("--step-weights: %d weights (one per step, --T) expected, got %d", T, #w))
    end
    cfg.step_weights = w
  end
  return cfg
end

function M.parse_cli(argv, spec_)
  return protocol.parse_cli(argv, spec_, M.format)
end

M.print_metrics = protocol.print_metrics
M.exit_if_stopped = protocol.exit_if_stopped

return M
