-- qd.protocols.qddm — image diffusion with quantum denoisers (QDDM, arXiv 2401.07049; the
-- reference code is michaelkoelle/quantum-diffusion, PennyLane + PyTorch).
--
--   local qddm = require "qd.protocols.qddm"
--   local data = qd.data.digits{n_classes = 2, ds_size = 100, rng = ...}
--   local res = qddm.run{ name = "qddm", seed = 1, model = "qdense", layers = 55,
--                         data = data, epochs = 100, out = "runs/x" }
--   res.metrics.mse, .psnr, .ssim, .gen_mse, .gen_psnr, .gen_ssim, .nparams
--
-- Classical pixel-space diffusion (the reference's add_normal_noise_multiple, decay 3):
--   x_t = clamp((1 - w_t) x0 + w_t eps, 0, 1), eps ~ N(0.5, 0.2^2) per pixel (one eps for all
--   t of an image), w_t = (t/T)^3 (w_T = 1), t = 0..T; the denoiser maps x_t to x_{t-1}
--   ("data" goal) or predicts the step's difference x_t - x_{t-1} ("noise" goal, the
--   reference's default: the model's read-out y in [0, 1] is mapped to (y - 0.5) 0.1 and the
--   reverse step is x_{t-1} = clamp(x_t - (y - 0.5) 0.1, 0, 1)). MSE loss, Adam, batches of
--   `batch` images (each gives T training pairs), fresh eps per batch and epoch.
-- Denoisers (models):
--   qdense           Q-Dense: the 64 pixels amplitude-encoded (normalised) on 6 qubits,
--                    strongly entangling layers (qd.ansatz.strongly_entangling) with angles
--                    pi tanh(w), read-out y = clamp(64 p(x), 0, 1) of the Born probabilities
--   qdense_directed  the same on 7 qubits: qubit 6 an ancilla in RX(label)|0> (label = class /
--                    largest class), y from the probabilities with the ancilla in 0 (p[::2])
--   single_step      training on states: the noisy image amplitude-encoded, the loss on the
--                    output amplitudes times the input norm (the reference's
--                    QDense4StatesUndirected, "data" goal only); the same U every step, so
--                    t steps are U^t: sampled as one compiled matrix power (c:unitary()), and
--                    checked against t repeated runs (metrics.unitary_power_error)
--   dense            the classical baseline: a ReLU network 64 -> hidden -> 64 (ReLU output,
--                    as the reference's DenseUndirected) with qd.nn; hidden defaults to the
--                    width whose parameter count is closest below Q-Dense's for `layers`
--   qdense_reupload  qdense_directed with RX(label) before each of `reuploads` blocks of the
--                    layers (numpy.array_split of the L layers; the reference's
--                    QDenseDirectedReupload); members grouped by label, a circuit per class
--   dense_directed   the same with the label appended as a 65th input (the reference's
--                    DenseDirected), its width matched to qdense_directed's count
-- Every gradient is exact (adjoint through the circuit, c:grad; backprop in qd.nn) and one
-- Adam step per batch. Randomness: substreams of qd.rng(seed) keyed by purpose (init, noise
-- per epoch and batch, eval, sample).
-- Metrics (run.json): mse, psnr, ssim of denoising T steps from x_T on the held-out test
-- images (x_T = clamp(eps): w_T = 1); gen_mse, gen_psnr, gen_ssim of `samples` images
-- generated from x_T noise against their nearest training image (by MSE); PSNR per image
-- with data range 1, averaged; SSIM scikit-image's default (7x7 uniform window, sample
-- covariance, K1 = 0.01, K2 = 0.03, data range 1, averaged over the windows inside the
-- image), averaged over images; nparams; loss (last epoch's mean batch loss); seconds.
-- FID is not computed: it needs Inception network weights, which cannot be downloaded here.
-- Run directory: run.json, params.npy (raw weights w), loss.npy (per epoch), denoised.npy,
-- generated.npy (64 x N), chain.npy (64 x samples (T+1): the reverse chains), and when
-- gnuplot is there (not under --sandbox) samples.png and denoise.png.
local qd = require "qd"
local protocol = require "qd.protocol"

local M = {}
M.format = 1

local outside = protocol.outside

M.keys = { init = 1, noise = 2, eval = 3, sample = 4, data = 5 }
M.stream = protocol.streams(M.keys)

M.models = { "qdense", "qdense_directed", "qdense_reupload", "single_step", "dense",
             "dense_directed" }

-- the models that take the class label
local directed = { qdense_directed = true, qdense_reupload = true, dense_directed = true }

local spec = protocol.with_session_keys {
  name = { "string", "qddm" },
  seed = { "integer", 1, 0 },
  model = { "string", "qdense", choices = M.models },
  layers = { "integer", 55, 1 },
  reuploads = { "integer", 2, 1 },
  hidden = { "integer", false, 1 },
  goal = { "string", "noise", choices = { "noise", "data" } },
  T = { "integer", 10, 1 },
  epochs = { "integer", nil, 1 },
  batch = { "integer", 10, 1 },
  lr = { "number", 1e-4 },
  init_scale = { "number", 0.4 },
  samples = { "integer", 8, 1 },
  data = { "table" },
  pictures = { "boolean", true },
}
M.settings_spec = spec

local function nrows(X) return (X:shape()) end
local function ncols(X) return select(2, X:shape()) end

local function bad(msg) error("bad argument #1 to 'run' (" .. msg .. ")", outside()) end

local function check_cfg(cfg)
  local c = protocol.config(spec, cfg, "run")
  local d = c.data
  if qd.type(d.train) ~= "qd.Matrix" or qd.type(d.test) ~= "qd.Matrix" then
    bad("option 'data': a table with train and test image matrices expected (qd.data.digits)")
  end
  if nrows(d.train) ~= 64 or nrows(d.test) ~= 64 then
    bad("option 'data': 8x8 images (64 rows) expected")
  end
  if c.model == "single_step" and c.goal ~= "data" then
    bad("model single_step trains on states: goal 'data' expected")
  end
  if directed[c.model] and
     (qd.type(d.train_labels) ~= "qd.Vector" or qd.type(d.test_labels) ~= "qd.Vector") then
    bad("model " .. c.model .. " needs data.train_labels and data.test_labels")
  end
  if not (c.lr > 0) then bad("option 'lr': > 0 expected, got " .. c.lr) end
  if c.model == "qdense_reupload" and c.reuploads > c.layers then
    bad(string.format("option 'reuploads': at most the %d layers expected, got %d", c.layers,
      c.reuploads))
  end
  if c.ckpt_every == 0 then c.ckpt_every = 100 end
  return c
end

-- ------------------------------------------------------------------ the noise process

-- qddm.weights(T) -> Vector of w_0..w_T, w_t = (t/T)^3 (the reference's decay_mod = 3,
-- normalised by the largest: w_T = 1)
function M.weights(T)
  local w = qd.vector(T + 1)
  for t = 0, T do w[t + 1] = (t / T) ^ 3 end
  return w
end

-- qddm.noise(X0, rng) -> eps (64 x N): N(0.5, 0.2^2) per pixel
function M.noise(X0, rng)
  local v = rng:normal(0.5, 0.2, nrows(X0) * ncols(X0))
  return v
end

-- qddm.pairs(X0, eps, T, goal) -> inputs x_t (64 x N T, column (j-1) T + t), targets
-- (x_{t-1} for "data", x_t - x_{t-1} for "noise")
function M.pairs(X0, eps, T, goal)
  local Xin, Xprev = qd.image.diffuse(X0, eps, M.weights(T))
  if goal == "data" then return Xin, Xprev end
  return Xin, Xin - Xprev
end

-- ------------------------------------------------------------------ models


-- the angles pi tanh(w) of the reference's qw_map.tanh, and the chain rule back to w (C:
-- qd.image.tanh_map; the per-entry loop in Lua cost ~10 % of a 55-layer batch)
local function remap(w) return qd.image.tanh_map(w) end

local function chain_back(w, g) return qd.image.tanh_map_vjp(w, g) end

-- repeat every label T times (the T training pairs of one image)
local function repeat_labels(lab, T)
  local v = qd.vector(#lab * T)
  for j = 1, #lab do for t = 1, T do v[(j - 1) * T + t] = lab[j] end end
  return v
end

local function readout_opts(directed, goal)
  local ro = { rows = 64, scale = 64 }
  if directed then ro.stride = 2 end
  if goal == "noise" then ro.gain, ro.offset = 0.1, -0.05 end
  return ro
end

-- the reverse step from the model's prediction
local function step_from(X, pred, goal)
  if goal == "data" then return pred end
  return qd.image.clamp(X - pred)
end

-- Q-Dense (directed: ancilla qubit 6 in RX(label)|0>): model table with nparams, init,
-- predict(w, X, labels), grad(w, X, target, labels) -> L, g
local function qdense(c)
  local directed = c.model == "qdense_directed"
  local n = directed and 7 or 6
  local circ = qd.ansatz.strongly_entangling(n, c.layers)
  local ro = readout_opts(directed, c.goal)
  local m = { circuit = circ, nparams = circ:nparams(), readout = ro, qubits = n }
  local function enc(X, labels)
    return (qd.image.encode(X, directed and { angles = labels } or nil))
  end
  function m.predict(w, X, labels)
    return qd.image.readout(circ:run(enc(X, labels), remap(w)), ro)
  end
  function m.grad(w, X, target, labels)
    local L, g = circ:grad(enc(X, labels), remap(w), function(out)
      local Y = qd.image.readout(out, ro)
      local l, GY = qd.nn.mse(Y, target, { grad = true })
      return l, qd.image.readout_vjp(out, GY, ro)
    end)
    return L, chain_back(w, g)
  end
  function m.step(w, X, labels) return step_from(X, m.predict(w, X, labels), c.goal) end
  return m
end

-- the blocks of layers of the re-uploading model: numpy.array_split(range(L), r) (the first
-- L mod r blocks one layer longer)
local function split_layers(L, r)
  local sizes = {}
  for b = 1, r do sizes[b] = L // r + ((b <= L % r) and 1 or 0) end
  return sizes
end

-- Q-Dense with label re-uploading (the reference's QDenseDirectedReupload): before each of the
-- `reuploads` blocks of strongly entangling layers (each block its own weights and its own
-- range pattern, as separate StronglyEntanglingLayers calls) RX(label) on the ancilla qubit 6.
-- The angle differs per image and a circuit's fixed angle is shared by all members, so the
-- members are grouped by label (a class each) and each group runs its own circuit.
local function qdense_reupload(c)
  local n, sizes = 7, split_layers(c.layers, c.reuploads)
  local ro = readout_opts(true, c.goal)
  local circuits = {}
  local function circuit(label)
    local key = string.format("%.17g", label)
    if circuits[key] then return circuits[key] end
    local q = qd.circuit(n)
    local base = 0
    for _, len in ipairs(sizes) do
      q:rx(n - 1, label)
      for l = 1, len do
        local o = base + 3 * n * (l - 1)
        for i = 0, n - 1 do
          q:rz(i, { o + 3 * i + 1 })
          q:ry(i, { o + 3 * i + 2 })
          q:rz(i, { o + 3 * i + 3 })
        end
        local r = ((l - 1) % (n - 1)) + 1
        for i = 0, n - 1 do q:cx(i, (i + r) % n) end
      end
      base = base + 3 * n * len
    end
    circuits[key] = q
    return q
  end
  local m = { nparams = 3 * n * c.layers, readout = ro, qubits = n, circuit_for = circuit }
  -- the columns of every label value, in order of first appearance
  local function groups(labels)
    local order, idx = {}, {}
    for j = 1, #labels do
      local k = labels[j]
      if not idx[k] then idx[k] = {} order[#order + 1] = k end
      local t = idx[k]
      t[#t + 1] = j
    end
    return order, idx
  end
  local function enc(X)   -- the ancilla in |0>: RX(label) is the circuit's first gate
    return (qd.image.encode(X, { angles = qd.vector(select(2, X:shape())) }))
  end
  function m.predict(w, X, labels)
    local phi, order, idx = remap(w), groups(labels)
    local Y = qd.matrix(64, #labels)
    for _, k in ipairs(order) do
      local Yg = qd.image.readout(circuit(k):run(enc(qd.nn.columns(X, idx[k])), phi), ro)
      for a, j in ipairs(idx[k]) do for i = 1, 64 do Y:set(i, j, Yg:get(i, a)) end end
    end
    return Y
  end
  function m.grad(w, X, target, labels)
    local phi, order, idx = remap(w), groups(labels)
    local L, g = 0, qd.vector(m.nparams)
    for _, k in ipairs(order) do
      local wt = #idx[k] / #labels   -- the mean over all entries, split by group
      local Tg = qd.nn.columns(target, idx[k])
      local lg, gg = circuit(k):grad(enc(qd.nn.columns(X, idx[k])), phi, function(out)
        local Y = qd.image.readout(out, ro)
        local l, GY = qd.nn.mse(Y, Tg, { grad = true })
        return l, qd.image.readout_vjp(out, GY, ro)
      end)
      L = L + wt * lg
      for i = 1, m.nparams do g[i] = g[i] + wt * gg[i] end
    end
    return L, chain_back(w, g)
  end
  function m.step(w, X, labels) return step_from(X, m.predict(w, X, labels), c.goal) end
  return m
end

-- training on states (QDense4StatesUndirected): out = U(phi) x/|x|, loss on |x| out vs x_{t-1}
local function single_step(c)
  local circ = qd.ansatz.strongly_entangling(6, c.layers)
  local m = { circuit = circ, nparams = circ:nparams(), qubits = 6 }
  function m.grad(w, X, target)
    local E, nr = qd.image.encode(X)
    local L, g = circ:grad(E, remap(w), function(out)
      return qd.image.amp_mse(out, target, nr, { grad = true })
    end)
    return L, chain_back(w, g)
  end
  -- one step: x -> clamp(|x| |U x/|x||)
  function m.step(w, X)
    local E, nr = qd.image.encode(X)
    return qd.image.clamp(qd.image.decode(circ:run(E, remap(w)), nr))
  end
  -- t steps at once: the states U^t x/|x| (chain = true: t runs of the circuit), the norms
  function m.states(w, X, t, chain)
    local E, nr = qd.image.encode(X)
    local phi = remap(w)
    if chain then
      for _ = 1, t do E = circ:run(E, phi) end
      return E, nr
    end
    local U = M.matrix_power(circ:unitary(phi), t)
    E:unitary(U, { 0, 1, 2, 3, 4, 5 })
    return E, nr
  end
  return m
end

-- qddm.matrix_power(U, t) -> U^t (t >= 1) by repeated squaring
function M.matrix_power(U, t)
  local R, B = nil, U
  while t > 0 do
    if t % 2 == 1 then R = R and R * B or B end
    t = t // 2
    if t > 0 then B = B * B end
  end
  return R
end

-- the dense width whose parameter count (n0 + 65) h + 64 (n0 -> h -> 64, n0 = 64 or 65 with
-- the label) is closest to P from below
function M.dense_width(P, n0)
  n0 = n0 or 64
  return math.max(1, (P - 64) // (n0 + 65))
end

-- dense (directed: the label appended as input 65, the reference's DenseDirected)
local function dense(c)
  local directed = c.model == "dense_directed"
  local n0 = directed and 65 or 64
  local h = c.hidden or
            (directed and M.dense_width(21 * c.layers, 65) or M.dense_width(18 * c.layers))
  local net = qd.nn.mlp { sizes = { n0, h, 64 }, activation = "relu", output = "relu" }
  local big = 1e300
  local m = { net = net, nparams = net:nparams(), hidden = h }
  local function input(X, labels)
    if not directed then return X end
    local row = qd.matrix(1, #labels)
    for j = 1, #labels do row:set(1, j, labels[j]) end
    return qd.nn.vstack(X, row)
  end
  local function post(Y)
    if c.goal == "data" then return Y end
    return qd.image.clamp(Y, { scale = 0.1, offset = -0.05, lo = -big, hi = big })
  end
  function m.predict(w, X, labels) return post(net:forward(input(X, labels), w)) end
  function m.grad(w, X, target, labels)
    return net:grad(input(X, labels), w, function(Y)
      local l, G = qd.nn.mse(post(Y), target, { grad = true })
      if c.goal == "noise" then G = qd.image.clamp(G, { scale = 0.1, lo = -big, hi = big }) end
      return l, G
    end)
  end
  function m.step(w, X, labels) return step_from(X, m.predict(w, X, labels), c.goal) end
  return m
end

-- qddm.model(c) -> the model of the checked configuration c
function M.model(c)
  if c.model == "dense" or c.model == "dense_directed" then return dense(c) end
  if c.model == "single_step" then return single_step(c) end
  if c.model == "qdense_reupload" then return qdense_reupload(c) end
  return qdense(c)
end

-- initial parameters: w ~ N(0, init_scale^2) for the circuits (the reference's randn * 0.4),
-- PyTorch's nn.Linear default for the dense network
local function init_params(c, m)
  local r = M.stream(c.seed, "init")
  if m.net then return m.net:init(r) end
  return r:normal(0, c.init_scale, m.nparams)
end

-- ------------------------------------------------------------------ training

-- the image columns of batch b (1-based) of size B over N images
local function batch_cols(b, B, N)
  local idx = {}
  for j = (b - 1) * B + 1, math.min(b * B, N) do idx[#idx + 1] = j end
  return idx
end

-- one epoch: a pass over the training images in order (the reference's DataLoader,
-- shuffle = False), one Adam step per batch; returns the mean batch loss
function M.epoch(c, m, st, epoch)
  local X, N = c.data.train, ncols(c.data.train)
  local nb = (N + c.batch - 1) // c.batch
  local tot = 0
  local noise = M.stream(c.seed, "noise"):substream(epoch)
  for b = 1, nb do
    local idx = batch_cols(b, c.batch, N)
    local X0 = qd.nn.columns(X, idx)
    local Xin, target = M.pairs(X0, M.noise(X0, noise:substream(b)), c.T, c.goal)
    local labels
    if directed[c.model] then
      local lab = qd.vector(#idx)
      for k, j in ipairs(idx) do lab[k] = c.data.train_labels[j] end
      labels = repeat_labels(lab, c.T)
    end
    local function feval(w) return m.grad(w, Xin, target, labels) end
    local _, fx = qd.optim.adam(feval, st.params, st.opt)
    tot = tot + fx
  end
  return tot / nb
end

-- ------------------------------------------------------------------ evaluation

-- the reverse chain from X (T steps): the final images and the list of all T + 1 stages
function M.reverse(c, m, w, X, labels)
  local stages = { X }
  for _ = 1, c.T do
    X = m.step(w, X, labels)
    stages[#stages + 1] = X
  end
  return X, stages
end

local function mean_mse(A, B)
  local s, n = 0, nrows(A) * ncols(A)
  for i = 1, nrows(A) do for j = 1, ncols(A) do s = s + (A:get(i, j) - B:get(i, j)) ^ 2 end end
  return s / n
end

-- nearest training image (by MSE) of every column of G, as a matrix
local function nearest(G, Xtr)
  local idx = {}
  for j = 1, ncols(G) do
    local best, bk = math.huge, 1
    for k = 1, ncols(Xtr) do
      local s = 0
      for i = 1, 64 do s = s + (G:get(i, j) - Xtr:get(i, k)) ^ 2 end
      if s < best then best, bk = s, k end
    end
    idx[j] = bk
  end
  return qd.nn.columns(Xtr, idx)
end

local function x_T(c, X0, rng)
  local eps = M.noise(X0, rng)
  local Xin = qd.image.diffuse(X0, eps, M.weights(c.T))
  local cols = {}
  for j = 1, ncols(X0) do cols[j] = (j - 1) * c.T + c.T end
  return qd.nn.columns(Xin, cols)
end

local function sample_labels(c, n)
  if not directed[c.model] then return nil end
  local lab = qd.vector(n)
  local maxl = 0
  for j = 1, #c.data.train_labels do maxl = math.max(maxl, c.data.train_labels[j]) end
  -- the classes in turn, as the reference's label range [0, 1]
  local ncls = 0
  for j = 1, #c.data.train_labels do ncls = math.max(ncls, c.data.train_classes[j]) end
  for j = 1, n do lab[j] = ncls > 0 and ((j - 1) % (ncls + 1)) / ncls * maxl or 0.0 end
  return lab
end

-- qddm.evaluate(c, m, w) -> metrics, outputs {denoised, noised, generated, chain (stages)}
function M.evaluate(c, m, w)
  local Xte = c.data.test
  local noised = x_T(c, Xte, M.stream(c.seed, "eval"))
  local den = M.reverse(c, m, w, noised, directed[c.model] and c.data.test_labels or nil)
  local met = {}
  met.mse = mean_mse(den, Xte)
  met.psnr = qd.image.psnr(Xte, den)
  met.ssim = qd.image.ssim(Xte, den)
  -- generation from x_T noise (start images: eps of the "sample" stream on a zero image)
  local start = x_T(c, qd.matrix(64, c.samples), M.stream(c.seed, "sample"))
  local gen, stages = M.reverse(c, m, w, start, sample_labels(c, c.samples))
  local near = nearest(gen, c.data.train)
  met.gen_mse = mean_mse(gen, near)
  met.gen_psnr = qd.image.psnr(near, gen)
  met.gen_ssim = qd.image.ssim(near, gen)
  return met, { denoised = den, noised = noised, generated = gen, stages = stages }
end

-- qddm.power_check(c, m, w, X) -> max |U^T x - (T runs) x| over the amplitudes, seconds of
-- the compiled power (incl. c:unitary and the squarings) and of the T runs (single_step)
function M.power_check(c, m, w, X, reps)
  reps = reps or 1
  local t0 = qd.clock()
  local Ep
  for _ = 1, reps do Ep = m.states(w, X, c.T, false) end
  local t1 = qd.clock()
  local Ec
  for _ = 1, reps do Ec = m.states(w, X, c.T, true) end
  local t2 = qd.clock()
  local err = 0
  for j = 1, #Ep do
    local a, b = Ep[j], Ec[j]
    for i = 1, 64 do
      local ar, ai = a:amp(i)
      local br, bi = b:amp(i)
      err = math.max(err, math.abs(ar - br), math.abs(ai - bi))
    end
  end
  return err, (t1 - t0) / reps, (t2 - t1) / reps
end

-- ------------------------------------------------------------------ pictures

local function image_rows(X, j)
  local rows = {}
  for r = 1, 8 do
    local row = {}
    for col = 1, 8 do row[col] = X:get((r - 1) * 8 + col, j) end
    rows[r] = row
  end
  return rows
end

-- samples.png (one generated digit per column, the reverse chain down the rows) and
-- denoise.png (test image, noised, denoised per column); nil, message without gnuplot
function M.pictures(dir, outs, maxcols)
  local ok, msg = require("qd.plot_core").locate()
  if not ok then return nil, msg end
  local grid = {}
  local n = math.min(maxcols, ncols(outs.generated))
  for _, X in ipairs(outs.stages) do
    for j = 1, n do grid[#grid + 1] = image_rows(X, j) end
  end
  qd.plot.images(grid, { cols = n, out = dir .. "/samples.png" })
  grid = {}
  local k = math.min(maxcols, ncols(outs.denoised))
  for _, X in ipairs { outs.test, outs.noised, outs.denoised } do
    for j = 1, k do grid[#grid + 1] = image_rows(X, j) end
  end
  qd.plot.images(grid, { cols = k, out = dir .. "/denoise.png" })
  return true
end

-- ------------------------------------------------------------------ run

local function settings_of(c, m)
  return {
    name = c.name, seed = c.seed, model = c.model, layers = c.layers, hidden = m.hidden,
    reuploads = c.model == "qdense_reupload" and c.reuploads or nil,
    goal = c.goal, T = c.T, epochs = c.epochs, batch = c.batch, lr = c.lr,
    init_scale = c.init_scale,
    samples = c.samples, nparams = m.nparams,
    data = { source = c.data.source, train = ncols(c.data.train), test = ncols(c.data.test) },
    options = protocol.result_options(c.options),
  }
end

local function save_data(rec, st, outs)
  st.params:save_npy(rec:path("params.npy"))
  local lv = qd.vector(#st.losses)
  for i, l in ipairs(st.losses) do lv[i] = l end
  lv:save_npy(rec:path("loss.npy"))
  outs.denoised:save_npy(rec:path("denoised.npy"))
  outs.generated:save_npy(rec:path("generated.npy"))
end

local function run_impl(cfg)
  local c = check_cfg(cfg)
  local m = M.model(c)
  local settings = settings_of(c, m)
  local S = protocol.session {
    name = c.name, seed = c.seed, settings = settings, format = M.format, out = c.out,
    resume = c.resume, quiet = c.quiet, progress = c.progress, stop_after = c.stop_after,
    ckpt_every = c.ckpt_every,
    state = function()
      return { params = init_params(c, m), opt = { lr = c.lr }, losses = {} }
    end,
  }
  local st = S.state
  if qd.type(st.params) ~= "qd.Vector" then st.params = qd.vector(st.params) end
  local prog = S:progress { steps = 1, epochs = c.epochs, total = c.epochs }
  local stopped = false
  local t_train = qd.clock()
  for e = #st.losses + 1, c.epochs do
    st.losses[e] = M.epoch(c, m, st, e)
    prog:update(e, st.losses[e])
    if not S:epoch(e) then stopped = e < c.epochs break end
  end
  prog:end_step(st.losses[#st.losses] or 0)
  prog:finish()
  local result = { dir = S.dir, stopped = stopped, settings = settings, params = st.params,
                   losses = st.losses, metrics = S.rec.metrics }
  if stopped then
    S:stop()
    return result
  end
  local t0 = qd.clock()
  t_train = t0 - t_train
  local met, outs = M.evaluate(c, m, st.params)
  met.nparams = m.nparams
  met.loss = st.losses[#st.losses]
  if c.model == "single_step" then
    local err, tp, tc = M.power_check(c, m, st.params, c.data.test)
    met.unitary_power_error = err
    met.power_seconds, met.chain_seconds = tp, tc
  end
  for k, v in pairs(met) do S.rec.metrics[k] = v end
  if c.save_data then save_data(S.rec, st, outs) end
  outs.test = c.data.test
  local t_eval = qd.clock() - t0
  -- seconds: this session's training loop and evaluation (pictures excepted)
  S.rec.metrics.seconds = t_train + t_eval
  result.timing = S:finish { eval_seconds = t_eval, loop_seconds = t_train }
  if c.pictures then
    local ok, msg = M.pictures(S.dir, outs, 8)
    result.pictures = ok and { S.dir .. "/samples.png", S.dir .. "/denoise.png" } or nil
    result.pictures_note = msg
  end
  result.outputs = outs
  return result
end

M.run = protocol.generational(run_impl)

M.pieces = { check = check_cfg, model = M.model, epoch = M.epoch, evaluate = M.evaluate,
             reverse = M.reverse, power_check = M.power_check, remap = remap,
             chain_back = chain_back }

-- ------------------------------------------------------------------ scripts

function M.parse_cli(argv, spec_)
  return protocol.parse_cli(argv, spec_, M.format)
end

M.from_cli = protocol.from_cli
M.print_metrics = protocol.print_metrics
M.exit_if_stopped = protocol.exit_if_stopped

return M
