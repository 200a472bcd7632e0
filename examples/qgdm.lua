-- qgdm.lua — QGDM (arXiv 2401.07039): generate one target density matrix from the maximally
-- mixed state by a learnt, parameter-shared denoising channel.
--
--   forward   rho_t = abar_t rho_0 + (1 - abar_t) I/d  (global depolarizing; --forward local:
--             every qubit depolarized), betas linear from 1e-4 to 0.5 over T steps
--             (--beta-min, --beta-max)
--   backward  one circuit on data + time register + n auxiliary qubits, its parameters shared
--             by all steps, time and auxiliaries traced out; generation from I/d
--   loss      sum over t of 1 - F(rhohat_{t-1}, rho_{t-1}) (Uhlmann fidelity; --loss for
--             trace distance, Hilbert-Schmidt or superfidelity), Adam on the exact gradient
--             through the whole generation chain
-- Targets (drawn from the seed): a random pure state, a random rank-r mixture, or the Gibbs
-- state of the 4-qubit (any n) open TFIM at inverse temperature beta. The paper reports
-- Uhlmann fidelity > 0.99 up to 4 qubits. Metrics: fidelity (squared Uhlmann F of the
-- generated rhohat_0 and the target), trace_distance, fidelity_per_t (t = T ... 0).
--
--   qd examples/qgdm.lua [--n 2] [--target pure|mixed|gibbs] [--rank 2] [--beta 1]
--        [--iterations N] [--lr 0.02] [--T 10] [--L 0] [--beta-min 1e-4] [--beta-max 0.5]
--        [--seed 1] [--out DIR] [--small]
local qd = require "qd"
local qgdm = require "qd.protocols.qgdm"

local options = qgdm.target_options(2, 5)
options[#options + 1] = { "na", 0, "auxiliary qubits (0 = n)", min = 0, max = 8 }
options[#options + 1] = { "beta_min", 1e-4, "forward schedule: betas linear from this ...", min = 0, max = 1 }
options[#options + 1] = { "beta_max", 0.5, "... to this over the T steps", min = 0, max = 1 }
local opts = qgdm.parse_cli(arg, {
  name = "qgdm",
  about = "QGDM: diffusion of one density matrix (pure, rank-r mixed or TFIM Gibbs target).",
  options = qgdm.cli_options(options),
})

-- settings per size: layers and iterations grow with n; from n = 3 a larger rate decayed
-- (cosine) to lr/20 (docs/results.md)
local L_of, it_of = { 4, 8, 10, 10, 10 }, { 400, 1000, 1000, 600, 400 }
local task = { T = 10, L = L_of[opts.n], iterations = it_of[opts.n], lr = opts.n >= 3 and 0.05 or 0.02,
               lr_decay = opts.n >= 3 and "cosine" or "none" }
if opts.small then task.T, task.L, task.iterations = 3, 2, 20 end
if opts.T > 0 then task.T = opts.T end
if opts.L > 0 then task.L = opts.L end

local target = qgdm.target_from_cli(opts)
local res = qgdm.run(qgdm.from_cli(opts, {
  name = "qgdm",
  target = target,
  schedule = qd.schedule.linear { T = task.T, from = opts.beta_min, to = opts.beta_max },
  L = task.L, na = opts.na > 0 and opts.na or opts.n,
  iterations = task.iterations, lr = task.lr, lr_decay = task.lr_decay,
}))
qgdm.exit_if_stopped(res, opts)
local s = res.settings
print(string.format("QGDM, %s target on %d qubits (T=%d, L=%d, na=%d, %d parameters, %d iterations, loss %s, seed %d):",
  opts.target, s.n, s.T, s.L, s.na, s.nparams, s.iterations, s.loss, opts.seed))
qgdm.print_metrics(res)
