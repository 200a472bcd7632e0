-- genqc_train.lua — a small circuit-diffusion model trained in qd (genQC, arXiv 2311.02041):
-- 3-qubit circuits over {h, cx} with up to 8 gates, conditioned on their Schmidt-rank vector
-- (all five SRV classes). A genQC data set (random circuits, de-duplicated, balanced), each
-- time step seen as one of the vocabulary's valid columns. Two diffusion processes:
--   --process masked (default): discrete diffusion with an absorbing mask state (D3PM, arXiv
--     2107.03006): m of the 8 time steps hidden, the denoiser sees one-hots of the steps
--     (column or mask) and the SRV class and predicts the hidden columns (cross-entropy,
--     weighted 1/m, times --class-weight); sampling reveals one random hidden step at a time
--     (--reveal per pass), 8 passes, drawing from the guided softmax at --temperature 0.5,
--     then re-masks the --remask 4 least confident steps and draws them again, --remask-rounds
--     2 times (ReMDM, arXiv 2503.00307);
--   --process gaussian: genQC's continuous view — a fixed orthogonal embedding (--embedding
--     column, or cell: each token), DDPM noising (--schedule cos_alpha, genQC's
--     abar(t) = cos^2((t/T + 0.008) pi / 2.016), or linear beta 1e-4 -> 0.02), an MLP predicting
--     the clean tensor (--prediction epsilon: the noise; logits: per-step column logits), a
--     time embedding; DDIM sampling (--steps), decoded by nearest embedding.
-- The denoiser (--model; auto: conv with masked, mlp with gaussian): mlp, a multilayer perceptron over the flattened tensor (--hidden
-- wide, three hidden layers); conv, a residual 1-D convolution over the time steps (qd.nn.conv:
-- --channels wide, --layers blocks of kernel width --kernel, the class added in every block;
-- --heads N: each block opens with N-head self-attention over all time steps).
-- Either way the class is dropped to a null class with probability 0.1 in training for
-- classifier-free guidance (--guidance), Adam with cosine decay; --per-class circuits per class
-- are generated and evaluated by qd.synth.evaluate against the training set.
-- Metrics: accuracy (requested SRV, all classes), accuracy_<srv> per class,
-- accuracy_min_class, valid_fraction, unique_fraction and novel_fraction (of the correct
-- circuits), gates_mean. Files: tokens.npy / srv.npy (training set), generated_<srv>.npy,
-- loss.npy, params.npy.
--
--   qd examples/genqc_train.lua [--process masked|gaussian] [--qubits 3] [--gates 8] [--samples 300000]
--        [--iterations 20000 masked, 4000 gaussian] [--hidden 384] [--guidance 3 masked, 7 gaussian]
--        [--steps 20] [--per-class 256] [--schedule cos_alpha] [--embedding column|cell]
--        [--prediction x0|epsilon|logits] [--self-cond] [--ema D] [--lr 0.002] [--seed 1] [--out DIR] [--small]
--        [--model auto|mlp|conv] [--channels 96] [--layers 4] [--kernel 5] [--heads 0]
--        masked only: [--class-weight 222=3] [--temperature 0.5] [--reveal 1] [--remask 4] [--remask-rounds 2]
local genqc = require "qd.protocols.genqc"
local protocol = require "qd.protocol"

local opts = protocol.parse_cli(arg, {
  name = "genqc_train",
  about = "genQC: a small conditional circuit-diffusion model on SRV classes, trained and evaluated in qd.",
  options = protocol.cli_options {
    { "qubits", 3, "qubits, 2 ... 6", min = 2, max = 6 },
    { "gates", 8, "time steps (max gates), 1 ... 32", min = 1, max = 32 },
    { "samples", 300000, "random circuits drawn for the data set (300000: 64925 distinct, balanced)", min = 1 },
    { "iterations", 0, "training iterations (0 = the example's default)", min = 0 },
    { "hidden", 0, "width of the three hidden layers (0 = the example's default)", min = 0 },
    { "batch", 256, "batch size", min = 1 },
    { "lr", 2e-3, "Adam learning rate (cosine decay to lr/20)", min = 0 },
    { "T", 1000, "diffusion steps of training", min = 2 },
    { "schedule", "cos_alpha", "cos_alpha | linear", choices = { "cos_alpha", "linear" } },
    { "process", "masked", "masked (absorbing-state discrete diffusion over time steps) | gaussian (DDPM/DDIM on the embedding)", choices = { "masked", "gaussian" } },
    { "guidance", 0.0, "classifier-free guidance scale (0 = the process's default: 3 masked, 7 gaussian)", min = 0 },
    { "embedding", "column", "column (each time step one valid column) | cell (each token)", choices = { "column", "cell" } },
    { "prediction", "x0", "x0 (the clean tensor) | epsilon (the noise) | logits (per-step column logits, cross-entropy)", choices = { "x0", "epsilon", "logits" } },
    { "self_cond", false, "self-conditioning: the network also sees its previous estimate of the clean tensor" },
    { "ema", 0.0, "decay of the weights' moving average used for sampling (0 = none)", min = 0, max = 1 },
    { "steps", 20, "DDIM sampling steps", min = 1 },
    { "per_class", 256, "generated circuits per SRV class", min = 1 },
    { "model", "auto", "auto (conv masked, mlp gaussian) | mlp (over the flattened tensor) | conv (residual 1-D convolution over the time steps)", choices = { "auto", "mlp", "conv" } },
    { "channels", 0, "conv: features per time step inside the network (0 = the example's default)", min = 0 },
    { "layers", 0, "conv: residual blocks (0 = the example's default)", min = 0 },
    { "kernel", 0, "conv: kernel width over time, odd (0 = the example's default)", min = 0 },
    { "heads", 0, "conv: self-attention heads opening each block (0 = none; a divisor of --channels)", min = 0 },
    { "class_weight", "", "masked: loss weights of SRV classes, e.g. 222=3 or 122=2,222=3 (digits of the SRV; others 1)" },
    { "temperature", 0.5, "masked: softmax temperature of the revealed steps (< 1 sharpens, 0 = argmax, 1 = the model's softmax)", min = 0 },
    { "reveal", 1, "masked: time steps revealed per sampling pass", min = 1 },
    { "remask", 4, "masked: after sampling, re-mask this many least confident steps and resample them (0 = none)", min = 0 },
    { "remask_rounds", 2, "masked: rounds of --remask", min = 1 },
  },
}, genqc.format)
local masked = opts.process == "masked"
local conv = opts.model == "conv" or (opts.model == "auto" and masked)
local task = { samples = opts.samples, iterations = masked and 20000 or 4000, hidden = 384, T = opts.T,
               steps = opts.steps, per_class = opts.per_class, channels = 96, layers = 4, kernel = 5 }
if opts.small then
  task = { samples = 2000, iterations = 20, hidden = 32, T = 100, steps = 5, per_class = 16,
           channels = 16, layers = 2, kernel = 3 }
end
for _, k in ipairs { "channels", "layers", "kernel", "heads" } do
  if opts[k] > 0 then
    if not conv then require("qd.cli").fail(opts, "--" .. k .. " applies to --model conv only") end
    task[k] = opts[k]
  end
end
if opts.iterations > 0 then task.iterations = opts.iterations end
if opts.hidden > 0 then
  if conv then require("qd.cli").fail(opts, "--hidden applies to --model mlp only") end
  task.hidden = opts.hidden
end
local h = task.hidden
-- the Gaussian process's options are refused with the masked one, not ignored
if masked then
  local given = { opts.T ~= 1000 and "--T", opts.schedule ~= "cos_alpha" and "--schedule",
                  opts.steps ~= 20 and "--steps", opts.embedding ~= "column" and "--embedding",
                  opts.prediction ~= "x0" and "--prediction", opts.self_cond and "--self-cond" }
  for i = 1, 6 do
    if given[i] then require("qd.cli").fail(opts, given[i] .. " applies to --process gaussian only") end
  end
else
  local given = { opts.class_weight ~= "" and "--class-weight", opts.temperature ~= 0.5 and "--temperature",
                  opts.reveal ~= 1 and "--reveal", opts.remask ~= 4 and "--remask",
                  opts.remask_rounds ~= 2 and "--remask-rounds" }
  for i = 1, 5 do
    if given[i] then require("qd.cli").fail(opts, given[i] .. " applies to --process masked only") end
  end
end
-- --class-weight 222=3,122=2: SRV digits = weight
local class_weight
if opts.class_weight ~= "" then
  class_weight = {}
  for item in opts.class_weight:gmatch("[^,]+") do
    local digits, w = item:match("^%s*(%d+)%s*=%s*([^%s]+)%s*$")
    local wn = tonumber(w)
    if not digits or not wn then
      require("qd.cli").fail(opts, "--class-weight: SRV digits = weight expected (e.g. 222=3), got '" .. item .. "'")
    end
    class_weight["[" .. digits:gsub("%d", "%0,"):sub(1, -2) .. "]"] = wn
  end
end
local cfg = {
  name = "genqc_train", qubits = opts.qubits, max_gates = opts.gates, samples = task.samples,
  iterations = task.iterations, hidden = not conv and { h, h, h } or nil, batch = opts.batch, lr = opts.lr,
  guidance = opts.guidance > 0 and opts.guidance or (masked and 3.0 or 7.0),
  process = opts.process, ema = opts.ema, per_class_samples = task.per_class,
}
if masked then
  cfg.class_weight, cfg.temperature, cfg.reveal = class_weight, opts.temperature, opts.reveal
  cfg.remask, cfg.remask_rounds = opts.remask, opts.remask_rounds
end
if conv then
  cfg.model, cfg.channels, cfg.layers, cfg.kernel = "conv", task.channels, task.layers, task.kernel
  if task.heads then cfg.heads = task.heads end
end
if not masked then
  cfg.T, cfg.schedule, cfg.steps = task.T, opts.schedule, task.steps
  cfg.embedding, cfg.prediction, cfg.self_cond = opts.embedding, opts.prediction, opts.self_cond
end
local res = genqc.run(protocol.from_cli(opts, cfg))
genqc.exit_if_stopped(res, opts)
local s = res.settings
local net = s.conv and string.format("conv %d channels, %d blocks, kernel %d%s", s.conv.channels, s.conv.layers,
  s.conv.kernel, s.conv.heads and string.format(", %d attention heads", s.conv.heads) or "")
  or ("MLP " .. table.concat(s.sizes, "-"))
print(string.format("genQC on %d qubits, {h, cx}, up to %d gates: %d training circuits, %d classes, %s diffusion, " ..
  "%s (%d parameters), %d iterations, guidance %g, %s, seed %d:", s.qubits, s.max_gates, s.train_size,
  #s.classes, s.process, net, s.nparams, s.iterations, s.guidance,
  s.process == "masked" and string.format("%d reveal steps (%d per pass) at temperature %g%s%s", s.max_gates, s.reveal,
    s.temperature, s.remask > 0 and string.format(", re-masking %d steps %d times", s.remask, s.remask_rounds) or "",
    s.class_weight and ", class weights" or "")
  or (s.steps .. " DDIM steps"), opts.seed))
genqc.print_metrics(res)
