-- qgdm_vs_qgan.lua — QGDM against the QGAN baseline on mixed targets (arXiv 2401.07039
-- reports 53 % higher fidelity for QGDM on mixed states). For each of --targets random
-- rank-2 mixed states on --n qubits, both models train the same generator (the same
-- parameter-shared circuits on data + time + auxiliary qubits, the same parameter count)
-- for the same number of iterations from the same initial parameters:
--   QGDM  Adam on the per-step infidelity summed over the generation chain;
--   QGAN  alternating Adam steps of a parameterised-measurement discriminator
--         (hardware_efficient(n, D_layers) then qubit 0 measured) and of the generator.
-- Run directory: run.json (metrics.fidelity_qgdm, fidelity_qgan: means over the targets;
-- per-target lists; the ratio), curves_loss.npy and curves_fidelity.npy (2 targets x
-- iterations: row k = QGDM on target k, row targets + k = QGAN on it; the loss and the
-- Uhlmann fidelity of rhohat_0 per iteration), and one sub-directory per model and target
-- with its own record (qgdm-K/, qgan-K/).
--
--   qd examples/qgdm_vs_qgan.lua [--n 2] [--targets 3] [--iterations 800] [--D-layers 4]
--        [--seed 1] [--out DIR] [--small]
local qd = require "qd"
local record = require "qd.record"
local qgdm = require "qd.protocols.qgdm"
local cli = require "qd.cli"

local opts = cli.parse(arg, {
  name = "qgdm_vs_qgan",
  about = "QGDM vs QGAN on random mixed targets: same generator, parameter count and budget.",
  options = qgdm.cli_options {
    { "n", 2, "data qubits, 1 ... 4", min = 1, max = 4 },
    { "targets", 3, "random rank-2 mixed targets, 1 ... 100", min = 1, max = 100 },
    { "rank", 2, "rank of the targets, >= 1", min = 1 },
    { "D_layers", 4, "QGAN discriminator layers, >= 1", min = 1, max = 100 },
  },
})
if opts.resume ~= "" or opts.stop_after > 0 then
  cli.fail(opts, "--resume and --stop-after are not supported by this comparison (each model's run is short)")
end
if opts.threads > 0 then qd.set_threads(opts.threads) end
if opts.step_weights ~= "" then
  cli.fail(opts, "--step-weights is not supported by this comparison (QGAN has no per-step losses to weight)")
end
if opts.rank > 2 ^ opts.n then cli.fail(opts, string.format("--rank %d exceeds 2^n = %d", opts.rank, 2 ^ opts.n)) end

local L_of = { 4, 6, 8, 10 }
local task = { T = 10, L = L_of[opts.n], iterations = 800, lr = opts.lr > 0 and opts.lr or 0.02, targets = opts.targets }
if opts.small then task.T, task.L, task.iterations = 3, 2, 12 end
if opts.T > 0 then task.T = opts.T end
if opts.L > 0 then task.L = opts.L end
if opts.iterations > 0 then task.iterations = opts.iterations end
if opts.small and not cli.given(opts).targets then task.targets = 2 end

local rec = record.open(opts.out ~= "" and opts.out or nil, {
  name = "qgdm_vs_qgan", seed = opts.seed,
  settings = { n = opts.n, targets = task.targets, rank = opts.rank, T = task.T, L = task.L,
               iterations = task.iterations, lr = task.lr, D_layers = opts.D_layers,
               options = qgdm.result_options(opts) },
})
local t_start = qd.clock()
local curves = {}   -- [model][k] = history matrix
local F = { {}, {} }
local root = qgdm.stream(opts.seed, "target")
for k = 1, task.targets do
  local target = qgdm.target("mixed", opts.n, root:substream(k), { rank = opts.rank })
  for m, name in ipairs { "qgdm", "qgan" } do
    local cfg = {
      name = name, seed = opts.seed, target = target,
      schedule = qd.schedule.linear { T = task.T, from = 1e-4, to = 0.5 },
      L = task.L, iterations = task.iterations, lr = task.lr,
      out = rec.dir .. "/" .. name .. "-" .. k, quiet = opts.quiet, progress = opts.progress,
      options = opts, loss = opts.loss, time = opts.time, forward = opts.forward, ansatz = opts.ansatz,
      lr_decay = opts.lr_decay ~= "" and opts.lr_decay or nil,
      init_scale = opts.init_scale ~= 0.1 and opts.init_scale or nil,
    }
    if name == "qgdm" then cfg.training = opts.training else cfg.D_layers = opts.D_layers end
    local res = (name == "qgdm" and qgdm.run or qgdm.qgan)(cfg)
    F[m][k] = res.metrics.fidelity
    curves[m] = curves[m] or {}
    curves[m][k] = { res.losses, res.fidelities }
  end
end

local function mean(t)
  local s = 0
  for _, v in ipairs(t) do s = s + v end
  return s / #t
end
local m = rec.metrics
m.fidelity_qgdm, m.fidelity_qgan = mean(F[1]), mean(F[2])
m.fidelity_ratio = m.fidelity_qgdm / m.fidelity_qgan
m.fidelities_qgdm, m.fidelities_qgan = F[1], F[2]
-- the curves: row (model - 1) * targets + k (model 1 = QGDM, 2 = QGAN), column = iteration
local CL, CF = qd.matrix(2 * task.targets, task.iterations), qd.matrix(2 * task.targets, task.iterations)
for mi = 1, 2 do
  for k = 1, task.targets do
    local losses, fids = curves[mi][k][1], curves[mi][k][2]
    for it = 1, task.iterations do
      CL:set((mi - 1) * task.targets + k, it, losses[it])
      CF:set((mi - 1) * task.targets + k, it, fids[it])
    end
  end
end
CL:save_npy(rec:path("curves_loss.npy"))
CF:save_npy(rec:path("curves_fidelity.npy"))
rec.data.timing = { wall_seconds = qd.clock() - t_start, threads = qd.threads() }
rec.data.status = "done"
rec:finish()

print(string.format("QGDM vs QGAN on %d random rank-%d mixed targets, n = %d (T=%d, L=%d, %d iterations each, seed %d):",
  task.targets, opts.rank, opts.n, task.T, task.L, task.iterations, opts.seed))
for k = 1, task.targets do
  print(string.format("  target %-3d QGDM F = %.5f   QGAN F = %.5f", k, F[1][k], F[2][k]))
end
print(string.format("  mean       QGDM F = %.5f   QGAN F = %.5f   ratio %.2f", m.fidelity_qgdm, m.fidelity_qgan, m.fidelity_ratio))
print("run record: " .. rec.dir .. "/run.json")
