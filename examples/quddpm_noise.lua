-- quddpm_noise.lua — QuDDPM learns a correlated-noise ensemble (arXiv 2310.05866):
-- ψ0 = (√0.1 e^{0.8i}, √0.55 e^{1.7i}, 0, √0.35 e^{2.4i}) with, with
-- probability p = 0.8, e^{−iεX⊗X} applied, otherwise e^{−iεZ⊗Z}, ε ~ U[−π/3, π/3].
-- Only X⊗X moves weight into |10>, so the generated ensemble reveals p through
--   p̂ = mean |<10|ψ>|² / (0.55 · E sin²ε),  E sin²ε = 0.2933.
--
--   n = 2, n_A = 2, T = 20, L = 6, h = [linspace(0.05, 1, 12), linspace(1.2, 4, 8)], MMD,
--   N = 500, 2500 epochs/step. Published p̂ (train / test): 0.791 / 0.829 (truth 0.8).
--
--   qd examples/quddpm_noise.lua [--seed 1] [--epochs E] [--N 500] [--p 0.8] [--out DIR]
--        [--resume DIR] [--small]
local qd = require "qd"
local quddpm = require "qd.protocols.quddpm"

local opts = quddpm.parse_cli(arg, {
  name = "quddpm_noise",
  about = "QuDDPM: learn a correlated-noise ensemble and infer its noise probability.",
  options = quddpm.cli_options {
    { "p", 0.8, "probability of the X⊗X noise in the target ensemble", min = 0, max = 1 },
  },
})

local task = { n = 2, na = 2, L = 6, N = 500, epochs = 2500 }
local schedule = qd.schedule.piecewise {
  qd.schedule.linear { T = 12, from = 0.05, to = 1 },
  qd.schedule.linear { T = 8, from = 1.2, to = 4 },
}
if opts.small then
  task.N, task.epochs = 16, 30
  schedule = qd.schedule.from { 0.3, 1.0, 2.5 }
end
local N = opts.N > 0 and opts.N or task.N
local epochs = opts.epochs > 0 and opts.epochs or task.epochs

local target = qd.data.noise(N, quddpm.stream(opts.seed, "target"), { p = opts.p })
local res = quddpm.run(quddpm.from_cli(opts, {
  name = "quddpm_noise",
  target = target, schedule = schedule,
  n = task.n, na = task.na, L = task.L, N = N,
  loss = "mmd",
  lr = 5e-3,
  epochs = epochs,
  metrics = { "p_hat", "mmd" },
}))
quddpm.exit_if_stopped(res, opts)
print(string.format("QuDDPM noise (T=%d, L=%d, N=%d, %d epochs/step, p = %g, seed %d):", #schedule, task.L, N,
  epochs, opts.p, opts.seed))
quddpm.print_metrics(res)
