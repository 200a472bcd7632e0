-- msquddpm.lua — mixed-state QuDDPM (MSQuDDPM, arXiv 2411.17608): generate an ensemble of
-- density matrices from maximally mixed inputs, one measured denoising step at a time.
--
--   forward   per step the global depolarizing channel on every member (cosine or squared
--             cosine schedule), S_T close to I/d
--   backward  per step a circuit on ancillas (x) data, the ancillas measured (outcome sampled
--             and kept), the data renormalised; trained step by step from t = T down to 1
--   loss      superfidelity-kernel MMD or Wasserstein between generated and data ensembles
-- Tasks (the paper's settings as its reference code gkwun/msquddpm runs them):
--   cluster  1 qubit near |0>: |0> + 0.08 c|1>, c complex normal, then depolarized by q < 0.01;
--            na = 2 (|00>; --ancilla haar: the first a Haar-random pure state, the paper's other
--            row, which stalls at F0 ~0.95 for some seeds), T = 6, L = 4, Wasserstein, cosine
--   circle   1 qubit on the X-Z great circle, depolarized by q < 0.04; na = 2 (|00>), T = 6,
--            L = 8, N = 200, Wasserstein, squared cosine
--   tfim     4-qubit ground states of the open TFIM with g in [1.8, 2.2]; na = 2 (|00>),
--            T = 6, L = 12, MMD, squared cosine, lr 0.02; metric the X magnetisation
-- Metrics at t = 0, for the generated ensembles (train, test) and for a second sample of the
-- data (data: the sampling floor): F0 = mean <0|rho|0> (or mx), purity, mmd and wass against
-- a data sample of N.
--
--   qd examples/msquddpm.lua [--task cluster|circle|tfim] [--epochs E] [--lr 0.005] [--T 6]
--        [--L 4] [--N 100] [--seed 1] [--out DIR] [--small]
local qd = require "qd"
local msq = require "qd.protocols.msquddpm"

local opts = msq.parse_cli(arg, {
  name = "msquddpm",
  about = "MSQuDDPM: generate an ensemble of mixed states (cluster, circle or 4-qubit TFIM task).",
  options = msq.cli_options {
    { "task", "cluster", "cluster | circle | tfim", choices = { "cluster", "circle", "tfim" } },
  },
})

local tasks = {
  cluster = { n = 1, na = 2, T = 6, L = 4, N = 100, ndata = 1000, epochs = 2000, loss = "wasserstein",
              schedule = "cosine", ancilla = "zero", observable = "F0", lr = 5e-3 },
  circle = { n = 1, na = 2, T = 6, L = 8, N = 200, ndata = 1000, epochs = 2000, loss = "wasserstein",
             schedule = "sq_cosine", ancilla = "zero", observable = "F0", lr = 5e-3 },
  -- lr 0.02: at the reference's 5e-3 steps t = 1..3 stall (loss ~0.15, mx 0.83; docs/results.md)
  tfim = { n = 4, na = 2, T = 6, L = 12, N = 100, ndata = 500, epochs = 2000, loss = "mmd",
           schedule = "sq_cosine", ancilla = "zero", observable = "mx", lr = 0.02 },
}
local task = tasks[opts.task]
if opts.small then task.T, task.L, task.N, task.ndata, task.epochs = 2, 2, 8, 16, 10 end
if opts.N > task.ndata then task.ndata = opts.N end

local data = msq.stream(opts.seed, "data")
local target
if opts.task == "cluster" then
  target = msq.targets.cluster(task.n, task.ndata, data)
elseif opts.task == "circle" then
  target = msq.targets.circle(task.ndata, data)
else
  target = msq.targets.tfim(task.n, task.ndata, data)
end

local res = msq.run(msq.from_cli(opts, {
  name = "msquddpm_" .. opts.task, target = target,
  schedule = task.schedule, T = task.T, L = task.L, na = task.na, ancilla = task.ancilla,
  N = task.N, loss = task.loss, lr = task.lr, epochs = task.epochs, observable = task.observable,
}))
msq.exit_if_stopped(res, opts)
local s = res.settings
print(string.format("MSQuDDPM %s (n=%d, na=%d, T=%d, L=%d, N=%d, %d epochs/step, loss %s, %s schedule, %s ancilla, seed %d):",
  opts.task, s.n, s.na, s.T, s.L, s.N, s.epochs, s.loss, s.schedule, s.ancilla, opts.seed))
msq.print_metrics(res)
