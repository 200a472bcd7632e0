-- quddpm_tfim.lua — QuDDPM generates ground states of the transverse-field Ising chain
-- (arXiv 2310.05866): targets are ground states of
-- H = −Σ Z_i Z_{i+1} − g Σ X_i (open chain, n = 4), g ~ U[0.2, 0.4] (ferromagnetic side).
-- Metric: mean magnetisation M = Σ_b |ψ_b|² |(1/n) Σ_j (2 b_j − 1)| (true ensemble ≈ 0.96,
-- Haar ≈ 0.38).
--
--   n = 4, n_A = 2, T = 30, L = 12, h = linspace(0.1, 2, 30), MMD, N = 100,
--   3000 epochs/step. Published M (train / test): 0.896 / 0.884.
--
--   qd examples/quddpm_tfim.lua [--seed 1] [--epochs E] [--out DIR] [--resume DIR] [--small]
local qd = require "qd"
local quddpm = require "qd.protocols.quddpm"

local opts = quddpm.parse_cli(arg, {
  name = "quddpm_tfim",
  about = "QuDDPM: generate TFIM ground states (n = 4, g in [0.2, 0.4]).",
  options = quddpm.cli_options {},
})

local task = { n = 4, na = 2, T = 30, L = 12, N = 100, epochs = 3000 }
if opts.small then task.T, task.L, task.N, task.epochs = 3, 3, 12, 20 end
local N = opts.N > 0 and opts.N or task.N
local epochs = opts.epochs > 0 and opts.epochs or task.epochs

local target = qd.data.tfim(task.n, { 0.2, 0.4 }, N, quddpm.stream(opts.seed, "target"))
local res = quddpm.run(quddpm.from_cli(opts, {
  name = "quddpm_tfim",
  target = target,
  schedule = qd.schedule.linear { T = task.T, from = 0.1, to = 2 },
  n = task.n, na = task.na, L = task.L, N = N,
  loss = "mmd",
  lr = 5e-3,
  epochs = epochs,
  metrics = { "magnetization", "mmd" },
}))
quddpm.exit_if_stopped(res, opts)
print(string.format("QuDDPM tfim (n=%d, T=%d, L=%d, N=%d, %d epochs/step, seed %d):", task.n, task.T, task.L, N,
  epochs, opts.seed))
quddpm.print_metrics(res)
