-- reverse_multi.lua — reverse-time quantum diffusion of two- and four-qubit ensembles
-- (arXiv 2606.03848) with a learnt feedback Hamiltonian: every qubit is monitored in X, Y
-- and Z (rate gamma, time tau), which drives the average state towards I/d; generation runs
-- the measurement backwards from the forward terminal ensemble with H_fb = sum_P c_P(psi, t) P
-- over the Pauli strings of weight <= --weight acting on consecutive qubits (chain-local
-- terms), c learnt from forward trajectories (docs/api.md "Reverse-time diffusion").
-- tfim: 39 terms (weight <= 2), 50 members x 10 batches by default (the sizes of the
-- docs/results.md runs, chosen when the per-member solve of the learnt feedback ran in Lua;
-- it is C now, runtime/core/feedback.c, and larger runs take a fraction of the time).
--
--   data     cluster2 (QuDDPM's cluster around |00>), bell (cos a |00> + e^{ib} sin a |11>),
--            tfim (ground states of the 4-qubit open TFIM, g ~ U[0.2, 0.4])
--   start    the forward terminal ensemble, or (--start purified) the states I/d purifies to
--            under the same monitoring: random product states (mmd_terminal then compares
--            those with the data)
--   metrics  mmd_return, mmd_noise, mmd_terminal, wass_* over --repeats batches of --N
--   files    generated.npy, data.npy, terminal.npy (R, N, 2^n), run.json
--
--   qd examples/reverse_multi.lua [--data cluster2|bell|tfim] [--weight 0] [--N 100]
--        [--repeats 20] [--tau 0.5] [--gamma 1] [--seed 1] [--out DIR] [--small]
local rd = require "qd.protocols.reverse_diffusion"

local opts = rd.parse_cli(arg, {
  name = "reverse_multi",
  about = "Reverse-time quantum diffusion of 2- and 4-qubit ensembles with a learnt feedback Hamiltonian.",
  options = rd.cli_options {
    { "data", "cluster2", "cluster2 | bell | tfim", choices = { "cluster2", "bell", "tfim" } },
    { "feedback", "learnt", "learnt | none (no feedback: the baseline)", choices = { "learnt", "none" } },
    { "weight", 0, "largest weight of the feedback Pauli strings (0 = 1 for cluster2, 2 for bell and tfim)", min = 0, max = 4 },
    { "train_N", 0, "forward trajectories to learn from (0 = 1000, --small 100)", min = 0, max = 1000000 },
    { "start", "terminal", "reverse from: terminal (the forward terminal ensemble) | purified (I/d monitored until pure)",
      choices = { "terminal", "purified" } },
  },
})

local n = rd.datasets[opts.data].n
local measure = {}
for q = 0, n - 1 do
  for _, P in ipairs { "X", "Y", "Z" } do
    local s = {}
    for j = 0, n - 1 do s[j + 1] = j == q and P or "I" end
    measure[#measure + 1] = table.concat(s)
  end
end
local weight = opts.weight > 0 and opts.weight or (opts.data == "cluster2" and 1 or 2)
if weight > n then require("qd.cli").fail(opts, string.format("--weight %d exceeds the %d qubits of %s", weight, n, opts.data)) end
local cfg = {
  name = "reverse_multi", data = opts.data, feedback = opts.feedback, measure = measure, weight = weight, degree = 1,
  chain = true, start = opts.start, N = 100, repeats = 20, tau = 0.5, steps = 100, train_N = opts.train_N > 0 and opts.train_N or 1000,
}
if opts.data == "tfim" then cfg.N, cfg.repeats, cfg.steps, cfg.train_N = 50, 10, 60, opts.train_N > 0 and opts.train_N or 500 end
if opts.small then
  cfg.N, cfg.repeats, cfg.steps = 20, 3, 20
  cfg.train_N = opts.train_N > 0 and opts.train_N or 100
end
local res = rd.run(rd.from_cli(opts, cfg))
local s, m = res.settings, res.metrics
print(string.format("reverse diffusion, %d qubits, %s data, %s feedback (weight %d, %s terms, gamma %g, tau %g, R = %d x N = %d, seed %d):",
  s.n, s.data, s.feedback, s.weight, tostring(m.terms or 0), s.gamma, s.tau, s.repeats, s.N, opts.seed))
print(string.format("  MMD    return %.3e  noise %.3e  terminal %.3e   return/noise %.2f  terminal/return %.1f",
  m.mmd_return, m.mmd_noise, m.mmd_terminal, m.return_over_noise, m.terminal_over_return))
print(string.format("  Wass.  return %.3e  noise %.3e  terminal %.3e   return/noise %.2f",
  m.wass_return, m.wass_noise, m.wass_terminal, m.wass_return_over_noise))
print(string.format("  feedback setup %.2f s, reverse %.2f s; run record: %s/run.json", m.feedback_seconds, m.reverse_seconds, res.dir))
