-- qddm_bench.lua — qd's side of bench/qddm_bench.sh: one training epoch of Q-Dense (QDDM,
-- arXiv 2401.07049; qd.protocols.qddm) with the reference's default settings — 55 strongly
-- entangling layers on 6 qubits (990 parameters), batches of 10 images x T = 10 noise
-- levels (100 circuit runs per batch), the noise goal, MSE, Adam — on the first 100 images
-- of classes 0, 1 of the 8x8 digits (80 train: 8 batches per epoch, in file order).
--
--   qd bench/qddm_bench.lua DIR dump     write the inputs and qd's results to DIR:
--        w0.npy (990), xin_B.npy / tgt_B.npy (64 x 100, batch B = 1..8, as numpy reads them:
--        100 x 64 after .T), loss0 / grad0.npy (loss and gradient on batch 1 at w0),
--        losses.npy (the 8 batch losses of one Adam epoch from w0, lr 1e-3), w1.npy (after it)
--   qd bench/qddm_bench.lua DIR time REPS TAG   REPS x one epoch (fresh w0 and optimiser),
--        median seconds to DIR/qd_TAG.json; also the U^T check of the single-sampling model
local qd = require "qd"
local qddm = require "qd.protocols.qddm"
local json = require "qd.json"

local dir, mode = arg[1], arg[2]
local L, T, B, lr = 55, 10, 10, 1e-3

local data = qd.data.digits { n_classes = 2, ds_size = 100, fallback = false }
local c = qddm.pieces.check { model = "qdense", layers = L, T = T, batch = B, epochs = 1, lr = lr, data = data }
local m = qddm.model(c)
local w0 = qd.rng(1):normal(0, 0.4, m.nparams)

-- the epoch's inputs, fixed (the noise of epoch 1 as qddm.epoch draws it)
local batches = {}
local noise = qddm.stream(1, "noise"):substream(1)
for b = 1, 8 do
  local idx = {}
  for j = (b - 1) * B + 1, b * B do idx[#idx + 1] = j end
  local X0 = qd.nn.columns(data.train, idx)
  local Xin, tgt = qddm.pairs(X0, qddm.noise(X0, noise:substream(b)), T, "noise")
  batches[b] = { Xin, tgt }
end

local function epoch(w)
  local st = { lr = lr }
  local losses = {}
  for b = 1, 8 do
    local _, fx = qd.optim.adam(function(x) return m.grad(x, batches[b][1], batches[b][2]) end, w, st)
    losses[b] = fx
  end
  return losses
end

if mode == "dump" then
  w0:save_npy(dir .. "/w0.npy")
  for b = 1, 8 do
    batches[b][1]:save_npy(dir .. "/xin_" .. b .. ".npy")
    batches[b][2]:save_npy(dir .. "/tgt_" .. b .. ".npy")
  end
  local l0, g0 = m.grad(w0, batches[1][1], batches[1][2])
  g0:save_npy(dir .. "/grad0.npy")
  local w = w0:copy()
  local losses = epoch(w)
  qd.vector(losses):save_npy(dir .. "/losses.npy")
  w:save_npy(dir .. "/w1.npy")
  local f = io.open(dir .. "/results.json", "w")
  f:write(json.encode { loss0 = l0, layers = L, T = T, batch = B, lr = lr }, "\n")
  f:close()
  print(string.format("   qd: loss on batch 1 at w0 %.17g; epoch losses %.6g ... %.6g", l0, losses[1], losses[8]))
elseif mode == "time" then
  local reps, tag = tonumber(arg[3]), arg[4]
  local times = {}
  epoch(w0:copy())   -- warm-up
  for r = 1, reps do
    local w = w0:copy()
    local t0 = qd.clock()
    epoch(w)
    times[r] = qd.clock() - t0
  end
  table.sort(times)
  local med = times[(reps + 1) // 2]
  -- single sampling: U^T (one c:unitary + squarings + one 64 x 64 apply) vs T runs, on
  -- 100 images
  local cs = qddm.pieces.check { model = "single_step", goal = "data", layers = L, T = T, epochs = 1, data = data }
  local ms = qddm.model(cs)
  local X = qd.nn.columns(data.train, (function() local t = {} for j = 1, 80 do t[j] = j end return t end)())
  local err, tp, tc = qddm.power_check(cs, ms, w0, X, 5)
  local f = io.open(dir .. "/qd_" .. tag .. ".json", "w")
  f:write(json.encode { epoch_seconds = med, threads = qd.threads(), power_error = err,
                        power_seconds = tp, chain_seconds = tc }, "\n")
  f:close()
  print(string.format("   qd (%d thread%s): one epoch %.4f s (median of %d); U^T vs %d runs on 80 images: " ..
    "max |diff| %.2e, %.2f ms vs %.2f ms (%.1fx)", qd.threads(), qd.threads() > 1 and "s" or "", med, reps, T,
    err, tp * 1e3, tc * 1e3, tc / tp))
else
  io.stderr:write("usage: qd bench/qddm_bench.lua DIR dump | DIR time REPS TAG\n")
  os.exit(2)
end
