-- quddpm_circle.lua — QuDDPM on the circle ensemble (arXiv 2310.05866):
-- target states cos φ|0> + sin φ|1>, φ ~ U[0, 2π) (a ring on the Bloch sphere's XZ great
-- circle), learned with the Wasserstein (optimal transport) loss, cost 1 − |<a|b>|².
--
--   n = 1, n_A = 2, T = 40, L = 6, h_s = 1e-3·s² (s = 1..40), Wasserstein, N = 500,
--   5000 epochs/step. Published (t = 0, train / test): W 0.0055 / 0.0028,
--   <Y>² 0.0037 / 0.0051 (Haar: 1/3).
-- Metrics: wass_* = W(generated, S_0), y2_* = mean over members of <Y>², F0 for reference.
-- With N = 500 an epoch costs ~1.1 ms on one core (the exact N × N assignment dominates), so
-- the full budget (200k epochs) takes about 4 minutes (docs/results.md); --epochs sets a
-- smaller budget, --ckpt-every N with --resume DIR splits a run across sessions, --loss
-- sinkhorn is the entropic variant.
--
--   qd examples/quddpm_circle.lua [--seed 1] [--epochs E] [--N 500] [--lr 5e-3]
--        [--loss wasserstein|sinkhorn|mmd] [--out DIR] [--resume DIR] [--small]
local qd = require "qd"
local quddpm = require "qd.protocols.quddpm"

local opts = quddpm.parse_cli(arg, {
  name = "quddpm_circle",
  about = "QuDDPM: generate states on a circle of the Bloch sphere (Wasserstein loss).",
  options = quddpm.cli_options {
    { "sinkhorn_eps", 0.05, "entropic regularisation for --loss sinkhorn (> 0)",
      check = function(v) if not (v > 0) then return "a value > 0 expected, got " .. v end end },
  },
})

local task = { n = 1, na = 2, T = 40, L = 6, N = 500, epochs = 5000 }
if opts.small then task.T, task.N, task.epochs = 4, 16, 30 end
local N = opts.N > 0 and opts.N or task.N
local epochs = opts.epochs > 0 and opts.epochs or task.epochs

local target = qd.data.circle(N, quddpm.stream(opts.seed, "target"))
local res = quddpm.run(quddpm.from_cli(opts, {
  name = "quddpm_circle",
  target = target,
  schedule = qd.schedule.quadratic { T = task.T, scale = 1e-3 },
  n = task.n, na = task.na, L = task.L, N = N,
  loss = "wasserstein", sinkhorn_eps = opts.sinkhorn_eps,
  lr = 5e-3,
  epochs = epochs,
  metrics = { "wass", "y2", "F0" },
}))
quddpm.exit_if_stopped(res, opts)
print(string.format("QuDDPM circle (T=%d, L=%d, N=%d, %d epochs/step, loss %s, seed %d):", task.T, task.L, N,
  epochs, res.settings.loss, opts.seed))
quddpm.print_metrics(res)
