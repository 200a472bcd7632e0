-- qd.protocols.genqc — quantum circuit synthesis with a denoising diffusion model (genQC,
-- arXiv 2311.02041), small enough to train in qd on a CPU: circuits of a vocabulary as token
-- tensors (qd.tokens) under a fixed orthogonal embedding — embedding = "cell": every token
-- (qubit, time) cell on its own, genQC's way (K = 2V + 2 values); "column" (default): every
-- time step as one of the valid columns of the vocabulary (empty, each gate on each choice of
-- controls and targets, padding), so a decoded tensor has no malformed column by construction
-- —, DDPM noising with genQC's schedules (linear beta 1e-4 -> 0.02, or "cos_alpha" abar(t) =
-- cos^2((t/T + 0.008) pi / 2.016)), an MLP denoiser (qd.nn) that predicts the clean tensor
-- (prediction = "x0", default) or the noise ("epsilon", genQC's) from the flattened noisy
-- tensor, a sinusoidal time embedding and the SRV class one-hot (a null class for
-- classifier-free guidance), DDIM sampling with guidance scale g, decoding by nearest
-- embedding, evaluation by qd.synth.evaluate. Options of that process: prediction = "logits"
-- (per-step column logits, cross-entropy, CDCD), self_cond (Analog Bits' self-conditioning),
-- eta (DDIM's stochastic steps), ema (a moving average of the weights for sampling).
-- process = "masked" (below "masked (absorbing) diffusion"): discrete diffusion on the time
-- steps with a mask state instead of Gaussian noise on the embedding; the same network,
-- classes, guidance and evaluation; its options class_weight (per-class loss weights) and,
-- for sampling, temperature, reveal (steps per pass) and remask / remask_rounds (ReMDM-style
-- re-masking of the least confident steps).
-- model = "conv": instead of the MLP over the flattened tensor, a residual 1-D convolution
-- over the time steps (qd.nn.conv: per-step features in, `channels` wide, `layers` blocks of
-- kernel width `kernel`, the class (and, Gaussian, the time features) added in every block),
-- so each step's prediction is built from its neighbours' features by shared weights; with
-- heads > 0 every block opens with self-attention over all time steps (qd.nn.conv's heads;
-- kernel = 1 then makes it a transformer without normalisation).
--   genqc.data{...}      a data set run: data.npy tokens, srv, classes (genqc_data.lua)
--   genqc.run{...}       data, training, generation per class, evaluation (genqc_train.lua)
--   genqc.eval_file{...} one-call evaluation of a generator's .npy tokens (genqc_eval.lua)
--   genqc.pieces         schedule, embedding, features, train step, sample
-- Randomness: substreams of qd.rng(seed) keyed by purpose (M.keys); training batch `it` and
-- its noise come from substream `it` of their streams, so a resumed run gives the same bits.
local qd = require "qd"
local protocol = require "qd.protocol"
local synth = require "qd.synth"
local tokens = require "qd.tokens"
local core = require "qd.core"
local outside = protocol.outside

local M = {}
M.format = 1
M.keys = { data = 1, init = 2, batch = 3, noise = 4, drop = 5, sample = 6, embed = 7 }
M.stream = protocol.streams(M.keys)

local function bad(msg) error("bad argument #1 to 'run' (" .. msg .. ")", outside()) end

-- ------------------------------------------------------------------ schedules

-- abar[t + 1] for t = 0 ... T - 1 (genQC's DDPM: alphas_cumprod over the train steps)
function M.schedule(kind, T)
  local betas = {}
  if kind == "linear" then
    for i = 1, T do betas[i] = 1e-4 + (0.02 - 1e-4) * (T > 1 and (i - 1) / (T - 1) or 0) end
  elseif kind == "cos_alpha" then
    local function f(t) return math.cos((t / T + 0.008) * math.pi / 2.016) ^ 2 end
    for i = 1, T do betas[i] = math.min(1 - f(i) / f(i - 1), 0.999) end
  else
    bad("option 'schedule': linear or cos_alpha expected, got " .. tostring(kind))
  end
  local abar, p = {}, 1.0
  for i = 1, T do p = p * (1 - betas[i]); abar[i] = p end
  return abar
end

-- ------------------------------------------------------------------ embeddings and features

-- a fixed orthogonal embedding of the K = 2V + 2 token values -V ... V + 1 (pad): rows of a
-- random orthogonal K x K matrix (Gram-Schmidt of Gaussian rows), scaled by sqrt(K) so each
-- coordinate has unit mean square; as a K x K matrix, column k = token vmin + k - 1
function M.embedding(V, rng)
  return M.orthogonal(2 * V + 2, rng), -V
end

-- a random orthogonal K x K matrix scaled by sqrt(K) (columns: the embeddings)
function M.orthogonal(K, rng)
  local rows = {}
  for k = 1, K do
    local v = rng:normal(0, 1, K)
    local r = {}
    for j = 1, K do r[j] = v[j] end
    for l = 1, k - 1 do
      local d = 0
      for j = 1, K do d = d + r[j] * rows[l][j] end
      for j = 1, K do r[j] = r[j] - d * rows[l][j] end
    end
    local nrm = 0
    for j = 1, K do nrm = nrm + r[j] * r[j] end
    nrm = math.sqrt(nrm)
    for j = 1, K do r[j] = r[j] / nrm end
    rows[k] = r
  end
  local E = qd.matrix(K, K)
  local s = math.sqrt(K)
  for k = 1, K do
    for j = 1, K do E:set(j, k, s * rows[k][j]) end
  end
  return E
end

-- the valid columns (time steps) of a vocabulary on n qubits: empty, each gate on each set of
-- control and target qubits, padding; as lists of n tokens, and a lookup from their text
function M.columns(vocab, n)
  local cols = { {} }
  for q = 1, n do cols[1][q] = 0 end
  for v, name in ipairs(vocab) do
    local nc, nt = core.synth.role(name)
    -- every assignment of a role (none, control, target) to each qubit, with nc and nt of them
    local roles = {}
    for q = 1, n do roles[q] = 0 end
    local function rec(q, c, t)
      if q > n then
        if c == nc and t == nt then
          local col = {}
          for i = 1, n do col[i] = roles[i] == 0 and 0 or (roles[i] == 1 and -v or v) end
          cols[#cols + 1] = col
        end
        return
      end
      for r = 0, 2 do
        roles[q] = r
        rec(q + 1, c + (r == 1 and 1 or 0), t + (r == 2 and 1 or 0))
      end
    end
    rec(1, 0, 0)
  end
  local pad = {}
  for q = 1, n do pad[q] = #vocab + 1 end
  cols[#cols + 1] = pad
  local index = {}
  for k, col in ipairs(cols) do index[table.concat(col, ",")] = k end
  return cols, index
end

-- token batch (n*G x B) <-> column indices (G x B, 1-based into cols)
local function to_columns(Tk, n, G, index)
  local _, B = Tk:shape()
  local C = qd.matrix(G, B)
  local col = {}
  for b = 1, B do
    for t = 1, G do
      for q = 1, n do col[q] = math.tointeger(Tk:get(q + n * (t - 1), b)) end
      C:set(t, b, index[table.concat(col, ",")])
    end
  end
  return C
end

local function from_columns(C, n, cols)
  local G, B = C:shape()
  local Tk = qd.matrix(n * G, B)
  for b = 1, B do
    for t = 1, G do
      local col = cols[math.tointeger(C:get(t, b))]
      for q = 1, n do Tk:set(q + n * (t - 1), b, col[q]) end
    end
  end
  return Tk
end

-- sinusoidal time features: F x T matrix, column t + 1 for step t
local function time_features(T, F)
  local M_ = qd.matrix(F, T)
  local half = F // 2
  for t = 0, T - 1 do
    for j = 1, half do
      local w = math.exp(-math.log(10000) * (j - 1) / half)
      M_:set(j, t + 1, math.sin(t * w))
      M_:set(half + j, t + 1, math.cos(t * w))
    end
  end
  return M_
end

-- class one-hots: (C + 1) x (C + 1), column C + 1 the null class (guidance)
local function class_features(C)
  local L = qd.matrix(C + 1, C + 1)
  for c = 1, C + 1 do L:set(c, c, 1) end
  return L
end

-- ------------------------------------------------------------------ settings

local spec = protocol.with_session_keys {
  name = { "string", "genqc" }, seed = { "integer", 1, 0 },
  qubits = { "integer", 3, 2 }, max_gates = { "integer", 8, 1 }, min_gates = { "integer", 1, 0 },
  vocab = { "string|table", "srv" }, samples = { "integer", 30000, 1 }, per_class = { "integer", 0, 0 },
  T = { "integer", 1000, 2 }, schedule = { "string", "cos_alpha", choices = { "linear", "cos_alpha" } },
  hidden = { "table", false }, activation = { "string", "silu" }, time_dim = { "integer", 16, 2 },
  iterations = { "integer", 4000, 1 }, batch = { "integer", 256, 1 }, lr = { "number", 1e-3 },
  lr_decay = { "string", "cosine", choices = { "none", "cosine" } }, drop = { "number", 0.1, 0 },
  guidance = { "number", 4.0, 0 }, steps = { "integer", 20, 1 }, per_class_samples = { "integer", 256, 1 },
  prediction = { "string", "x0", choices = { "x0", "epsilon", "logits" } }, clamp = { "integer", 0, 0 },
  ema = { "number", 0, 0 }, eta = { "number", 0, 0 }, self_cond = { "boolean", false },
  process = { "string", "gaussian", choices = { "gaussian", "masked" } },
  embedding = { "string", "column", choices = { "column", "cell" } },
  model = { "string", "mlp", choices = { "mlp", "conv" } }, channels = { "integer", 96, 1 },
  layers = { "integer", 4, 0 }, kernel = { "integer", 5, 1 }, heads = { "integer", 0, 0 },
  -- masked process only: per-class loss weights, and the sampler's temperature, steps revealed
  -- per pass, and ReMDM-style re-masking (steps per round, rounds)
  class_weight = { "table", false }, temperature = { "number", 1.0, 0 }, reveal = { "integer", 1, 1 },
  remask = { "integer", 0, 0 }, remask_rounds = { "integer", 3, 1 },
}
M.settings_spec = spec

-- ------------------------------------------------------------------ model

-- the model's fixed parts: data set, embedding, features, network
local function setup(c)
  local ds = synth.dataset { qubits = c.qubits, max_gates = c.max_gates, min_gates = c.min_gates,
                             vocab = c.vocab, samples = c.samples, seed = c.seed,
                             per_class = c.per_class > 0 and c.per_class or nil,
                             rng = M.stream(c.seed, "data") }
  local vocab = ds.vocab
  local R = { c = c, ds = ds, vocab = vocab }
  if c.embedding == "cell" then
    R.K = 2 * #vocab + 2
    R.E, R.vmin = M.embedding(#vocab, M.stream(c.seed, "embed"))
    R.cells = c.qubits * c.max_gates
    R.src = ds.tokens
    R.X0 = core.synth.embed(ds.tokens, R.E, R.vmin)
  else
    R.cols, R.index = M.columns(vocab, c.qubits)
    R.K = #R.cols
    R.E = M.orthogonal(R.K, M.stream(c.seed, "embed"))
    R.vmin = 1
    R.cells = c.max_gates
    R.src = to_columns(ds.tokens, c.qubits, c.max_gates, R.index)
    R.X0 = core.synth.embed(R.src, R.E, 1)
  end
  R.D = R.cells * R.K
  if c.prediction == "logits" or c.process == "masked" then
    -- the K x K identity (one-hot targets), and D x D block-diagonal matrices: the embedding
    -- E in every cell's block (probabilities -> posterior-mean embedding) and a block of ones
    -- (per-cell sums of the softmax numerators)
    R.IK = qd.matrix(R.K, R.K)
    for k = 1, R.K do R.IK:set(k, k, 1) end
    R.Ebig, R.Ones = qd.matrix(R.D, R.D), qd.matrix(R.D, R.D)
    for cell = 0, R.cells - 1 do
      local o = cell * R.K
      for i = 1, R.K do
        for j = 1, R.K do
          R.Ebig:set(o + i, o + j, R.E:get(i, j))
          R.Ones:set(o + i, o + j, 1)
        end
      end
    end
  end
  R.N = select(2, ds.tokens:shape())
  R.classes = ds.names
  R.C = #ds.names
  R.class_of = {}
  for i, l in ipairs(ds.names) do R.class_of[l] = i end
  R.label = {}
  for b, l in ipairs(ds.labels) do R.label[b] = R.class_of[l] end
  -- per-class loss weights (masked): class_weight maps SRV labels ("[2,2,2]") to weights, 1 if absent
  R.cw = {}
  for k = 1, R.C do R.cw[k] = 1.0 end
  for l, w in pairs(c.class_weight or {}) do
    if not R.class_of[l] then
      local names = {}
      for i, n in ipairs(ds.names) do names[i] = n end
      bad(string.format("option 'class_weight': unknown class '%s' (the classes: %s)", tostring(l), table.concat(names, " ")))
    end
    if type(w) ~= "number" or w <= 0 or w ~= w or w == math.huge then
      bad(string.format("option 'class_weight': a positive finite weight expected for %s, got %s", l, tostring(w)))
    end
    R.cw[R.class_of[l]] = w
  end
  R.abar = M.schedule(c.schedule, c.T)
  R.TF = time_features(c.T, c.time_dim)
  R.LF = class_features(R.C)
  local hidden = c.hidden or { 512, 512, 512 }
  local sizes = { R.D + (c.self_cond and R.D or 0) + c.time_dim + R.C + 1 }
  if c.process == "masked" then
    -- one-hots of K + 1 values per time step (the columns and a mask) and the class
    R.Iin = qd.matrix(R.K + 1, R.K + 1)
    for k = 1, R.K + 1 do R.Iin:set(k, k, 1) end
    R.Emask = qd.matrix(R.K, 2)
    for k = 1, R.K do R.Emask:set(k, 2, 1) end
    sizes = { R.cells * (R.K + 1) + R.C + 1 }
  end
  for _, h in ipairs(hidden) do sizes[#sizes + 1] = h end
  sizes[#sizes + 1] = R.D
  R.sizes = sizes
  if c.model == "conv" then
    -- the same input columns, read as per-step features + condition features (class, time):
    -- masked, K + 1 one-hot values per step; Gaussian, the K embedding coordinates per step
    local masked = c.process == "masked"
    R.conv = { length = R.cells, inputs = masked and R.K + 1 or R.K, channels = c.channels, outputs = R.K,
               kernel = c.kernel, layers = c.layers, cond = (masked and 0 or c.time_dim) + R.C + 1,
               activation = c.activation, heads = c.heads > 0 and c.heads or nil }
    R.net = qd.nn.conv(R.conv)
  else
    R.net = qd.nn.mlp { sizes = sizes, activation = c.activation }
  end
  return R
end
M.setup = setup

-- the network input for noisy columns X (D x B), time steps ts (0-based) and classes cls;
-- with self_cond also the previous estimate Xh of the clean tensor (zeros when there is none)
local function input(R, X, ts, cls, Xh)
  local tcol, ccol = {}, {}
  for i = 1, #ts do tcol[i] = ts[i] + 1; ccol[i] = cls[i] end
  if R.c.self_cond then
    return qd.nn.vstack(X, Xh or qd.matrix(R.D, #ts), qd.nn.columns(R.TF, tcol), qd.nn.columns(R.LF, ccol))
  end
  return qd.nn.vstack(X, qd.nn.columns(R.TF, tcol), qd.nn.columns(R.LF, ccol))
end

-- one training batch (iteration it): data columns, time steps, classes with dropout, noise
local function batch(R, it)
  local c = R.c
  local r = M.stream(c.seed, "batch"):substream(it)
  local idx, ts, cls, a, s = {}, {}, {}, {}, {}
  for i = 1, c.batch do
    idx[i] = r:integer(1, R.N)
    ts[i] = r:integer(0, c.T - 1)
    cls[i] = r:uniform() < c.drop and R.C + 1 or R.label[idx[i]]
    a[i] = math.sqrt(R.abar[ts[i] + 1])
    s[i] = math.sqrt(1 - R.abar[ts[i] + 1])
  end
  local X0 = qd.nn.columns(R.X0, idx)
  local Xt, Eps = core.synth.diffuse(X0, qd.vector(a), qd.vector(s), M.stream(c.seed, "noise"):substream(it))
  local target = Eps
  if c.prediction == "x0" then
    target = X0
  elseif c.prediction == "logits" then
    target = core.synth.embed(qd.nn.columns(R.src, idx), R.IK, R.vmin)
  end
  -- self-conditioning (Analog Bits, arXiv 2208.04202): on half of the batches (drawn after
  -- the batch, so runs without it keep their bits) the network also sees its own estimate
  local sc = c.self_cond and r:uniform() < 0.5
  return Xt, ts, cls, target, sc
end

-- prediction = "logits": the network gives, for every cell, K logits over its possible values
-- (CDCD, arXiv 2211.15089: a cross-entropy denoiser for continuous diffusion of categorical
-- data); the clean tensor is then the posterior mean sum_k p_k e_k of the embeddings. The
-- softmax is taken per cell block of K rows with block sums by one product with R.Ones; logits
-- are clamped to +-300 first (exp stays finite; a softmax far in saturation is unchanged).
local function softmax_blocks(R, Y)
  local Z = Y:clamp(-300, 300):exp()
  local S = R.Ones * Z
  return Z:div(S), S
end
M.softmax_blocks = softmax_blocks

-- mean cross-entropy over cells and batch of logits Y against one-hot targets O, and dL/dY
local function cross_entropy(R, Y, O)
  local P, S = softmax_blocks(R, Y)
  local _, B = Y:shape()
  local n = R.cells * B
  local L = -(O:mul(Y:clamp(-300, 300) - S:log())):sum() / n
  return L, (1 / n) * (P - O)
end
M.cross_entropy = cross_entropy

-- the clean-tensor estimate of a network output Y (prediction x0 or logits)
local function x0_of(R, Y)
  if R.c.prediction == "logits" then return R.Ebig * softmax_blocks(R, Y) end
  return Y
end

-- ------------------------------------------------------------------ masked (absorbing) diffusion
-- process = "masked": discrete diffusion with an absorbing mask state (D3PM, arXiv 2107.03006;
-- MDLM, arXiv 2406.07524) on the time steps of the column view. Noising hides m of the G
-- time steps (m uniform in 1 ... G, the hidden ones a uniformly random subset); the MLP sees
-- every step as a one-hot over the K columns and the mask, plus the class one-hot (null class
-- with probability drop), and gives K logits per step; the loss is the cross-entropy on the
-- hidden steps, each weighted 1/m (the any-order autoregressive bound of arXiv 2110.02037).
-- Sampling starts from all steps hidden and reveals one uniformly random hidden step at a
-- time, drawing its column from the guided softmax (logits y_0 + g (y_c - y_0)): G network
-- passes (two with guidance), each step conditioned on all revealed ones.
local function masked_input(R, In, cls)
  local ccol = {}
  for i = 1, #cls do ccol[i] = cls[i] end
  return qd.nn.vstack(core.synth.embed(In, R.Iin, 1), qd.nn.columns(R.LF, ccol))
end

local function masked_batch(R, it)
  local c = R.c
  local r = M.stream(c.seed, "batch"):substream(it)
  local G, B = R.cells, c.batch
  local idx, cls, scale = {}, {}, {}
  local In, Hid = qd.matrix(G, B), qd.matrix(G, B)
  local perm = {}
  for i = 1, B do
    idx[i] = r:integer(1, R.N)
    cls[i] = r:uniform() < c.drop and R.C + 1 or R.label[idx[i]]
    local m = r:integer(1, G)
    scale[i] = R.cw[R.label[idx[i]]] / m
    for t = 1, G do perm[t] = t end
    for t = 1, m do
      local j = r:integer(t, G)
      perm[t], perm[j] = perm[j], perm[t]
    end
    for t = 1, G do In:set(t, i, R.src:get(t, idx[i])); Hid:set(t, i, 1) end
    for t = 1, m do In:set(perm[t], i, R.K + 1); Hid:set(perm[t], i, 2) end
  end
  local O = core.synth.embed(qd.nn.columns(R.src, idx), R.IK, 1)
  -- weights: 1/m on the K rows of each hidden step (a per-column scale of the 0/1 mask)
  local zeros = {}
  for i = 1, B do zeros[i] = 0.0 end
  local W = core.synth.diffuse(core.synth.embed(Hid, R.Emask, 1), qd.vector(scale), qd.vector(zeros),
                               M.stream(c.seed, "noise"):substream(it))
  return masked_input(R, In, cls), O, W
end

-- sum over hidden steps of w * (-log p(true column)) / B, and dL/dY, for logits Y
local function masked_cross_entropy(R, Y, O, W)
  local P, S = softmax_blocks(R, Y)
  local _, B = Y:shape()
  local L = -(O:mul(W):mul(Y:clamp(-300, 300) - S:log())):sum() / B
  return L, (1 / B) * (P - O):mul(W)
end
M.masked_cross_entropy = masked_cross_entropy

-- one draw from the softmax of logits y[o + 1 .. o + K, b] at temperature tau (tau = 0: the
-- first largest, no random number used); returns the column and its probability at tau = 1
-- (the confidence re-masking ranks by)
local function draw(y, o, b, K, tau, rng)
  local mx, best = -math.huge, 1
  for k = 1, K do
    local v = y:get(o + k, b)
    if v > mx then mx, best = v, k end
  end
  local z, sum = {}, 0
  for k = 1, K do z[k] = math.exp(y:get(o + k, b) - mx); sum = sum + z[k] end
  local k = best
  if tau > 0 then
    local zt, st = z, sum
    if tau ~= 1 then
      zt, st = {}, 0
      for j = 1, K do zt[j] = math.exp((y:get(o + j, b) - mx) / tau); st = st + zt[j] end
    end
    local u = rng:uniform() * st
    k = 1
    while k < K and u > zt[k] do u = u - zt[k]; k = k + 1 end
  end
  return k, z[k] / sum
end
M.draw = draw

-- sampling (masked): all steps hidden; each pass reveals `reveal` uniformly random hidden steps,
-- each drawn from the guided softmax (y_0 + g (y_c - y_0)) at temperature `temperature`. Then,
-- with remask = k > 0, remask_rounds rounds of ReMDM-style re-masking (arXiv 2503.00307, its
-- confidence schedule): the k steps whose column had the lowest probability when drawn are
-- hidden again and revealed anew the same way, each conditioned on all the others.
local function masked_sample(R, params, cls, B, rng, g)
  local c = R.c
  g = g or c.guidance
  local G, K = R.cells, R.K
  local tau, per = c.temperature, c.reveal
  local In = qd.matrix(G, B)
  local hidden, conf = {}, {}
  for b = 1, B do
    hidden[b], conf[b] = {}, {}
    for t = 1, G do In:set(t, b, K + 1); hidden[b][t] = t end
  end
  local cc, cu = {}, {}
  for i = 1, B do cc[i] = cls; cu[i] = R.C + 1 end
  local function pass()
    local y = R.net:forward(masked_input(R, In, cc), params)
    if g ~= 1 then
      local yu = R.net:forward(masked_input(R, In, cu), params)
      y = yu + g * (y - yu)
    end
    -- the steps to reveal are chosen first, then drawn (one pass: all from the same logits)
    for b = 1, B do
      local h = hidden[b]
      for _ = 1, math.min(per, #h) do
        local j = rng:integer(1, #h)
        local t = h[j]
        h[j] = h[#h]; h[#h] = nil
        local k, p = draw(y, (t - 1) * K, b, K, tau, rng)
        In:set(t, b, k)
        conf[b][t] = p
      end
    end
  end
  local function all_revealed()
    for b = 1, B do if #hidden[b] > 0 then return false end end
    return true
  end
  while not all_revealed() do pass() end
  if c.remask > 0 then
    local km = math.min(c.remask, G)
    for _ = 1, c.remask_rounds do
      for b = 1, B do
        local order = {}
        for t = 1, G do order[t] = t end
        local cb = conf[b]
        table.sort(order, function(u, v) if cb[u] ~= cb[v] then return cb[u] < cb[v] end return u < v end)
        for i = 1, km do hidden[b][i] = order[i]; In:set(order[i], b, K + 1) end
      end
      while not all_revealed() do pass() end
    end
  end
  return from_columns(In, c.qubits, R.cols)
end

local function train_step(R, st, it)
  if R.c.process == "masked" then
    local X, O, W = masked_batch(R, it)
    local function fm(p) return R.net:grad(X, p, function(Y) return masked_cross_entropy(R, Y, O, W) end) end
    local _, L = qd.optim.adam(fm, st.params, st.opt)
    local d = R.c.ema
    if d > 0 then st.ema = st.ema and (d * st.ema + (1 - d) * st.params) or st.params:copy() end
    return L
  end
  local Xt, ts, cls, Tg, sc = batch(R, it)
  local Xh
  if sc then
    -- the estimate from a first pass without one, treated as a constant (no gradient through it)
    Xh = x0_of(R, R.net:forward(input(R, Xt, ts, cls), st.params))
  end
  local X = input(R, Xt, ts, cls, Xh)
  local loss = R.c.prediction == "logits" and function(Y) return cross_entropy(R, Y, Tg) end
    or function(Y) return qd.nn.mse(Y, Tg, { grad = true }) end
  local function feval(p) return R.net:grad(X, p, loss) end
  local _, L = qd.optim.adam(feval, st.params, st.opt)
  -- exponential moving average of the weights (sampling uses it when ema > 0)
  local d = R.c.ema
  if d > 0 then st.ema = st.ema and (d * st.ema + (1 - d) * st.params) or st.params:copy() end
  return L
end
M.train_step = train_step

-- DDIM sampling (genQC's scheduler: steps spaced T/steps apart, the last to t = 0, abar of
-- t < 0 taken as 1), B samples of class cls with guidance scale g: returns token batch
function M.sample(R, params, cls, B, rng, g, clamp)
  local c = R.c
  if c.process == "masked" then return masked_sample(R, params, cls, B, rng, g) end
  g = g or c.guidance
  if clamp == nil then clamp = c.clamp > 0 and c.clamp or false end
  local zero = qd.matrix(R.D, B)
  local ones, zeros = {}, {}
  for i = 1, B do ones[i] = 1.0; zeros[i] = 0.0 end
  local x = core.synth.diffuse(zero, qd.vector(zeros), qd.vector(ones), rng:substream(0))
  local ratio = c.T // c.steps
  local cc, cu = {}, {}
  for i = 1, B do cc[i] = cls; cu[i] = R.C + 1 end
  local xh
  for k = c.steps - 1, 0, -1 do
    local t = k * ratio
    local ts = {}
    for i = 1, B do ts[i] = t end
    local yc = R.net:forward(input(R, x, ts, cc, xh), params)
    local y = yc
    if g ~= 1 then
      local yu = R.net:forward(input(R, x, ts, cu, xh), params)
      y = yu + g * (yc - yu)
    end
    local ab = R.abar[t + 1]
    local abp = t - ratio >= 0 and R.abar[t - ratio + 1] or 1.0
    local x0, eps
    if c.prediction == "x0" or c.prediction == "logits" then
      x0 = c.prediction == "x0" and y or R.Ebig * softmax_blocks(R, y)
      eps = (1 / math.sqrt(1 - ab)) * (x - math.sqrt(ab) * x0)
    else
      eps = y
      x0 = (1 / math.sqrt(ab)) * (x - math.sqrt(1 - ab) * eps)
    end
    if clamp and k < clamp then
      -- Diffusion-LM's clamping trick (arXiv 2205.14217): the predicted clean tensor snapped
      -- to the nearest token embeddings, cell by cell
      x0 = core.synth.embed(core.synth.nearest(x0, R.E, R.vmin), R.E, R.vmin)
      eps = (1 / math.sqrt(1 - ab)) * (x - math.sqrt(ab) * x0)
    end
    xh = x0
    if c.eta > 0 and k > 0 then
      -- DDIM with eta > 0 (arXiv 2010.02502 eq. 12; eta = 1 is DDPM's ancestral step): part of
      -- the noise is fresh, drawn from substream k + 1 of the sampling stream
      local sig = c.eta * math.sqrt((1 - abp) / (1 - ab) * (1 - ab / abp))
      local z = select(2, core.synth.diffuse(zero, qd.vector(zeros), qd.vector(ones), rng:substream(k + 1)))
      x = math.sqrt(abp) * x0 + math.sqrt(math.max(1 - abp - sig * sig, 0)) * eps + sig * z
    else
      x = math.sqrt(abp) * x0 + math.sqrt(1 - abp) * eps
    end
  end
  local Tn = core.synth.nearest(x, R.E, R.vmin)
  if R.cols then return from_columns(Tn, c.qubits, R.cols) end
  return Tn
end

-- samples per class, their requested SRVs (n x total) and the token batch
local function generate(R, params)
  local c = R.c
  local parts, req = {}, {}
  for k, l in ipairs(R.classes) do
    parts[k] = M.sample(R, params, k, c.per_class_samples, M.stream(c.seed, "sample"):substream(k))
    for _ = 1, c.per_class_samples do req[#req + 1] = l end
  end
  return parts, req
end

-- evaluation of the generated parts: one qd.synth.evaluate per class, pooled
local function evaluate(R, parts)
  local c = R.c
  local n = c.qubits
  local total = { count = 0, valid = 0, correct = 0, unique = 0, novel = 0, gates = 0 }
  local per = {}
  for k, l in ipairs(R.classes) do
    local ranks = {}
    for d in l:gmatch("%d") do ranks[#ranks + 1] = tonumber(d) end
    local ev = synth.evaluate(parts[k], { qubits = n, vocab = R.vocab, srv = ranks, train = R.ds.tokens })
    per[l] = ev
    total.count = total.count + ev.count
    total.valid = total.valid + ev.valid_fraction * ev.count
    total.correct = total.correct + ev.correct
    total.unique = total.unique + ev.unique_fraction * ev.correct
    total.novel = total.novel + ev.novel_fraction * ev.correct
    total.gates = total.gates + ev.gates_mean * ev.valid_fraction * ev.count
  end
  local m = {
    accuracy = total.correct / total.count, valid_fraction = total.valid / total.count,
    unique_fraction = total.correct > 0 and total.unique / total.correct or 0,
    novel_fraction = total.correct > 0 and total.novel / total.correct or 0,
    gates_mean = total.valid > 0 and total.gates / total.valid or 0,
  }
  local minacc = 1
  for _, l in ipairs(R.classes) do
    m["accuracy_" .. l:gsub("[^%d]", "")] = per[l].accuracy
    minacc = math.min(minacc, per[l].accuracy)
  end
  m.accuracy_min_class = minacc
  return m, per
end
M.evaluate = evaluate

-- ------------------------------------------------------------------ runs

-- options of the Gaussian process only: refused with process = "masked" (given at all, or, for
-- the three with a value that is right for both, given another value)
local gaussian_only = { T = true, schedule = true, steps = true, eta = true, clamp = true }
local masked_only = { class_weight = true, temperature = true, reveal = true, remask = true, remask_rounds = true }
local gaussian_value = { prediction = "x0", embedding = "column", self_cond = false }

local function settings_of(c, R)
  local st = { qubits = c.qubits, max_gates = c.max_gates, min_gates = c.min_gates, vocab = R.vocab,
           samples = c.samples, per_class = c.per_class, T = c.T, schedule = c.schedule,
           sizes = R.sizes, activation = c.activation, time_dim = c.time_dim, iterations = c.iterations,
           batch = c.batch, lr = c.lr, lr_decay = c.lr_decay, drop = c.drop, guidance = c.guidance,
           steps = c.steps, per_class_samples = c.per_class_samples, classes = R.classes,
           prediction = c.prediction, clamp = c.clamp, embedding = c.embedding, ema = c.ema, eta = c.eta, self_cond = c.self_cond, process = c.process,
           train_size = R.N, nparams = R.net:nparams() }
  if c.model == "conv" then   -- the MLP's records stay as they were
    st.sizes, st.model, st.conv = nil, "conv", R.conv
  end
  if c.process == "masked" then   -- not used by it (run refuses them): not in its record
    for k in pairs(gaussian_only) do st[k] = nil end
    for k in pairs(gaussian_value) do st[k] = nil end
    st.temperature, st.reveal, st.remask = c.temperature, c.reveal, c.remask
    st.remask_rounds = c.remask > 0 and c.remask_rounds or nil
    if c.class_weight then
      local w = {}
      for k, l in ipairs(R.classes) do w[l] = R.cw[k] end
      st.class_weight = w
    end
  end
  return st
end

local function req_matrix(R, req)
  local n = R.c.qubits
  local Q = qd.matrix(n, #req)
  for b, l in ipairs(req) do
    local q = 0
    for d in l:gmatch("%d") do q = q + 1; Q:set(q, b, tonumber(d)) end
  end
  return Q
end

-- genqc.run(cfg) -> {dir, stopped, metrics, per_class, params, losses, generated, timing}
local function run_impl(cfg)
  if type(cfg) == "table" and cfg.process == "masked" then
    for k, v in pairs(cfg) do
      if gaussian_only[k] or (gaussian_value[k] ~= nil and v ~= gaussian_value[k]) then
        bad(string.format("option '%s': a setting of process = \"gaussian\", not used by process = \"masked\"", k))
      end
    end
  elseif type(cfg) == "table" then
    for k in pairs(cfg) do
      if masked_only[k] then
        bad(string.format("option '%s': a setting of process = \"masked\", not used by process = \"gaussian\"", k))
      end
    end
  end
  local c = protocol.config(spec, cfg, "run")
  if c.min_gates > c.max_gates then bad("option 'min_gates' exceeds 'max_gates'") end
  if c.self_cond and c.prediction == "epsilon" then bad("option 'self_cond' needs prediction x0 or logits") end
  if c.process == "masked" and (c.embedding ~= "column" or c.self_cond) then
    bad("option 'process': masked needs embedding column and no self_cond")
  end
  if c.model == "conv" then
    if c.self_cond then bad("option 'self_cond': not available with model conv") end
    if type(cfg) == "table" and cfg.hidden ~= nil then
      bad("option 'hidden': a setting of model = \"mlp\", not used by model = \"conv\"")
    end
    if c.kernel % 2 == 0 or c.kernel > 2 * c.max_gates - 1 then
      bad(string.format("option 'kernel': odd width in 1..%d (2 max_gates - 1) expected, got %d",
                        2 * c.max_gates - 1, c.kernel))
    end
    if c.heads > 0 and c.channels % c.heads ~= 0 then
      bad(string.format("option 'heads': a divisor of channels (%d) expected, got %d", c.channels, c.heads))
    end
  elseif type(cfg) == "table" and (cfg.channels or cfg.layers or cfg.kernel or cfg.heads) then
    bad("option '" .. (cfg.channels and "channels" or cfg.layers and "layers" or cfg.kernel and "kernel" or "heads") ..
        "': a setting of model = \"conv\", not used by model = \"mlp\"")
  end
  local R = setup(c)
  local S = protocol.session {
    name = c.name, seed = c.seed, settings = settings_of(c, R), format = M.format, out = c.out,
    resume = c.resume, quiet = c.quiet, progress = c.progress, stop_after = c.stop_after,
    ckpt_every = c.ckpt_every,
    state = function()
      local opt = { lr = c.lr }
      if c.lr_decay == "cosine" then
        opt.schedule = qd.optim.schedule.cosine { lr = c.lr, T = c.iterations, lr_min = c.lr / 20 }
      end
      return { params = R.net:init(M.stream(c.seed, "init")), opt = opt, losses = {} }
    end,
  }
  local st = S.state
  local prog = S:progress { steps = 1, epochs = c.iterations, total = c.iterations, label = "genQC" }
  prog:begin_step(1, 0)
  local stopped = false
  for it = #st.losses + 1, c.iterations do
    st.losses[it] = train_step(R, st, it)
    prog:update(it, st.losses[it])
    if not S:epoch(it) then stopped = true; break end
  end
  prog:end_step(st.losses[#st.losses] or 0)
  prog:finish()
  local res = { dir = S.dir, stopped = stopped, settings = S.settings, params = st.params,
                losses = st.losses, metrics = S.rec.metrics }
  if stopped then S:stop(); return res end
  S:clock()
  local t0 = qd.clock()
  local parts, req = generate(R, c.ema > 0 and st.ema or st.params)
  local m, per = evaluate(R, parts)
  local sample_seconds = qd.clock() - t0
  m.loss = st.losses[#st.losses]
  for k, v in pairs(m) do S.rec.metrics[k] = v end
  local pc = {}
  for l, ev in pairs(per) do
    pc[l] = { accuracy = ev.accuracy, valid_fraction = ev.valid_fraction, unique_fraction = ev.unique_fraction,
              novel_fraction = ev.novel_fraction, gates_mean = ev.gates_mean, count = ev.count }
  end
  S.rec.data.per_class = pc
  S.rec.data.train_classes = R.ds.classes
  if c.save_data then
    local rec = S.rec
    synth.save_dataset(S.rec, { tokens = R.ds.tokens, srv = R.ds.srv, qubits = c.qubits, max_gates = c.max_gates })
    for k, l in ipairs(R.classes) do
      tokens.save(rec:path("generated_" .. l:gsub("[^%d]", "") .. ".npy"), parts[k], c.qubits)
    end
    local Lm = qd.vector(st.losses)
    Lm:save_npy(rec:path("loss.npy"))
    st.params:save_npy(rec:path("params.npy"))
    if st.ema then st.ema:save_npy(rec:path("params_ema.npy")) end
  end
  res.timing = S:finish { sample_seconds = sample_seconds }
  res.metrics, res.per_class, res.generated, res.requested = S.rec.metrics, pc, parts, req_matrix(R, req)
  return res
end
M.run = protocol.generational(run_impl)

-- genqc.data{qubits, max_gates, min_gates, vocab, samples, per_class, label, seed, out, ...}
-- -> {dir, metrics, dataset}: a data-set run (tokens.npy, srv.npy, run.json with the classes)
function M.data(cfg)
  local dspec = protocol.with_session_keys {
    name = { "string", "genqc_data" }, seed = { "integer", 1, 0 }, qubits = { "integer", 3, 1 },
    max_gates = { "integer", 8, 1 }, min_gates = { "integer", 1, 0 }, vocab = { "string|table", "srv" },
    samples = { "integer", 30000, 1 }, per_class = { "integer", 0, 0 },
    label = { "string", "srv", choices = { "srv", "unitary" } },
    dedup = { "string", "tokens", choices = { "tokens", "unitary", "none" } },
  }
  local c = protocol.config(dspec, cfg, "data")
  local S = protocol.session { name = c.name, seed = c.seed, settings = { qubits = c.qubits, max_gates = c.max_gates,
    min_gates = c.min_gates, vocab = c.vocab, samples = c.samples, per_class = c.per_class, label = c.label,
    dedup = c.dedup }, format = M.format, out = c.out, quiet = true }
  local t0 = qd.clock()
  local ds = synth.dataset { qubits = c.qubits, max_gates = c.max_gates, min_gates = c.min_gates, vocab = c.vocab,
                             samples = c.samples, per_class = c.per_class > 0 and c.per_class or nil,
                             label = c.label, dedup = c.dedup ~= "none" and c.dedup or false,
                             balance = c.label == "srv", rng = M.stream(c.seed, "data") }
  local secs = qd.clock() - t0
  synth.save_dataset(S.rec, ds)
  local m = S.rec.metrics
  m.generated, m.unique, m.size, m.classes = ds.generated, ds.unique, select(2, ds.tokens:shape()), #ds.names
  S.rec.data.class_counts = ds.classes
  S.rec.data.vocab = ds.vocab
  S:finish { generate_seconds = secs }
  return { dir = S.dir, metrics = m, dataset = ds }
end

-- genqc.eval_file{file =, qubits =, vocab =, target = "srv"|"unitary", srv = {...} | file,
-- unitary = file, train = file, out =, seed =} -> {dir, metrics, result}
function M.eval_file(cfg)
  local espec = protocol.with_session_keys {
    name = { "string", "genqc_eval" }, seed = { "integer", 1, 0 }, file = { "string" },
    vocab = { "string|table", "srv" }, target = { "string", "srv", choices = { "srv", "unitary" } },
    srv = { "table|string", false }, unitary = { "string", false }, train = { "string", false },
    tol = { "number", 1e-3 }, qubit_order = { "string", "qd", choices = { "qd", "qiskit" } },
    input_name = { "string", false },
  }
  local c = protocol.config(espec, cfg, "eval_file")
  local B, n = tokens.load(c.file)
  if not B then error(n, outside()) end
  local o = { qubits = n, vocab = c.vocab, target = c.target, tol = c.tol }
  if c.target == "srv" then
    if type(c.srv) == "string" then
      local Q, qn = tokens.load(c.srv)
      if not Q then error(qn, outside()) end
      o.srv = Q
    else
      o.srv = c.srv or bad("option 'srv' is required with target srv")
    end
  else
    local U = c.unitary and qd.load_npy(c.unitary, "matrix") or bad("option 'unitary' is required with target unitary")
    if c.qubit_order == "qiskit" then U = synth.reverse_qubits(U) end
    o.unitary = U
  end
  if c.train then
    local Tr, err = tokens.load(c.train)
    if not Tr then error(err, outside()) end
    o.train = Tr
  end
  local S = protocol.session { name = c.name, seed = c.seed, settings = { file = c.input_name or c.file, vocab = c.vocab,
    target = c.target, tol = c.tol }, format = M.format, out = c.out, quiet = true }
  local t0 = qd.clock()
  local ev = synth.evaluate(B, o)
  local secs = qd.clock() - t0
  for k, v in pairs(ev) do if type(v) == "number" then S.rec.metrics[k] = v end end
  S.rec.data.per_class = ev.per_class
  S.rec.data.gates_hist = ev.gates_hist
  S:finish { eval_seconds = secs }
  return { dir = S.dir, metrics = S.rec.metrics, result = ev }
end

M.pieces = { from_columns = from_columns, setup = setup, input = input, batch = batch, train_step = train_step, sample = M.sample,
             evaluate = evaluate, schedule = M.schedule, embedding = M.embedding,
             columns = M.columns, orthogonal = M.orthogonal }

-- ------------------------------------------------------------------ scripts
M.print_metrics = protocol.print_metrics
M.exit_if_stopped = protocol.exit_if_stopped
return M
