-- genqc_train.lua — a small circuit-diffusion model trained in qd (genQC, arXiv 2311.02041):
-- 3-qubit circuits over {h, cx} with up to 8 gates, conditioned on their Schmidt-rank vector
-- (all five SRV classes). A genQC data set (random circuits, de-duplicated, balanced); each time
-- step embedded by a fixed orthogonal embedding of the vocabulary's valid columns (--embedding
-- cell: each token cell, genQC's per-token view), DDPM noising (--schedule cos_alpha, genQC's
-- abar(t) = cos^2((t/T + 0.008) pi / 2.016), or linear beta 1e-4 -> 0.02), an MLP denoiser
-- (qd.nn) predicting the clean tensor (--prediction epsilon: the noise) from the noisy one, a
-- time embedding and the SRV class (dropped to a null class with probability 0.1 for
-- classifier-free guidance), Adam; then DDIM sampling (--steps, guidance scale --guidance) of
-- --per-class circuits per class,
-- decoded by nearest embedding and evaluated by qd.synth.evaluate against the training set.
-- Metrics: accuracy (requested SRV, all classes), accuracy_<srv> per class,
-- accuracy_min_class, valid_fraction, unique_fraction and novel_fraction (of the correct
-- circuits), gates_mean. Files: tokens.npy / srv.npy (training set), generated_<srv>.npy,
-- loss.npy, params.npy.
--
--   qd examples/genqc_train.lua [--qubits 3] [--gates 8] [--samples 30000] [--iterations 4000]
--        [--hidden 384] [--guidance 7] [--steps 20] [--per-class 256] [--schedule cos_alpha]
--        [--embedding column|cell] [--prediction x0|epsilon] [--lr 0.002] [--seed 1] [--out DIR] [--small]
local genqc = require "qd.protocols.genqc"
local protocol = require "qd.protocol"

local opts = protocol.parse_cli(arg, {
  name = "genqc_train",
  about = "genQC: a small conditional circuit-diffusion model on SRV classes, trained and evaluated in qd.",
  options = protocol.cli_options {
    { "qubits", 3, "qubits, 2 ... 6", min = 2, max = 6 },
    { "gates", 8, "time steps (max gates), 1 ... 32", min = 1, max = 32 },
    { "samples", 30000, "random circuits drawn for the data set", min = 1 },
    { "iterations", 0, "training iterations (0 = the example's default)", min = 0 },
    { "hidden", 0, "width of the three hidden layers (0 = the example's default)", min = 0 },
    { "batch", 256, "batch size", min = 1 },
    { "lr", 2e-3, "Adam learning rate (cosine decay to lr/20)", min = 0 },
    { "T", 1000, "diffusion steps of training", min = 2 },
    { "schedule", "cos_alpha", "cos_alpha | linear", choices = { "cos_alpha", "linear" } },
    { "guidance", 7.0, "classifier-free guidance scale", min = 0 },
    { "embedding", "column", "column (each time step one valid column) | cell (each token)", choices = { "column", "cell" } },
    { "prediction", "x0", "x0 (the clean tensor) | epsilon (the noise)", choices = { "x0", "epsilon" } },
    { "steps", 20, "DDIM sampling steps", min = 1 },
    { "per_class", 256, "generated circuits per SRV class", min = 1 },
  },
}, genqc.format)
local task = { samples = opts.samples, iterations = 4000, hidden = 384, T = opts.T, steps = opts.steps,
               per_class = opts.per_class }
if opts.small then
  task = { samples = 2000, iterations = 20, hidden = 32, T = 100, steps = 5, per_class = 16 }
end
if opts.iterations > 0 then task.iterations = opts.iterations end
if opts.hidden > 0 then task.hidden = opts.hidden end
local h = task.hidden
local res = genqc.run(protocol.from_cli(opts, {
  name = "genqc_train", qubits = opts.qubits, max_gates = opts.gates, samples = task.samples,
  iterations = task.iterations, hidden = { h, h, h }, batch = opts.batch, lr = opts.lr, T = task.T,
  schedule = opts.schedule, guidance = opts.guidance, embedding = opts.embedding,
  prediction = opts.prediction, steps = task.steps, per_class_samples = task.per_class,
}))
genqc.exit_if_stopped(res, opts)
local s = res.settings
print(string.format("genQC on %d qubits, {h, cx}, up to %d gates: %d training circuits, %d classes, MLP %s " ..
  "(%d parameters), %d iterations, guidance %g, %d DDIM steps, seed %d:", s.qubits, s.max_gates, s.train_size,
  #s.classes, table.concat(s.sizes, "-"), s.nparams, s.iterations, s.guidance, s.steps, opts.seed))
genqc.print_metrics(res)
