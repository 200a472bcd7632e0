-- reverse_qubit.lua — reverse-time quantum diffusion of one qubit (arXiv 2606.03848): the
-- forward noise is a continuous measurement of Z (rate gamma, time tau); generation runs it
-- backwards from the forward terminal ensemble with a feedback Hamiltonian that is either
-- the exact one (from the Fokker-Planck law of z, docs/api.md) or learnt from forward
-- trajectories (least squares on the backward increments of the Bloch vector).
--
--   data     circle (fixed z0, uniform azimuth), cap (z ~ U[zc, 1]), clusters (two
--            Gaussian clusters on the sphere)
--   metrics  mmd_return, mmd_noise, mmd_terminal, wass_return, ... over --repeats batches of
--            --N members (docs/api.md "Reverse-time diffusion"); the fidelity-kernel MMD of
--            one qubit sees only the average Bloch vector, which Z-monitoring keeps for the
--            circle and the cap — the Wasserstein distance sees the whole ensemble
--   files    generated.npy, data.npy, terminal.npy (R, N, 2), run.json
--
--   qd examples/reverse_qubit.lua [--feedback exact|learnt|none] [--data circle|cap|clusters]
--        [--measure z|xyz] [--N 200] [--repeats 20] [--tau 0.5] [--gamma 1] [--seed 1] [--out DIR] [--small]
local rd = require "qd.protocols.reverse_diffusion"

local opts = rd.parse_cli(arg, {
  name = "reverse_qubit",
  about = "Reverse-time quantum diffusion of one qubit with the exact or a learnt feedback Hamiltonian.",
  options = rd.cli_options {
    { "feedback", "exact", "exact | learnt | none (no feedback: the baseline)", choices = { "exact", "learnt", "none" } },
    { "data", "circle", "circle | cap | clusters", choices = { "circle", "cap", "clusters" } },
    { "measure", "z", "measured observables: z (Z) | xyz (X, Y and Z; learnt or none only)", choices = { "z", "xyz" } },
    { "z0", 0.5, "z of the circle, -1 < z0 < 1", min = -0.999, max = 0.999 },
    { "zc", 0.6, "lowest z of the cap, -1 < zc < 1", min = -0.999, max = 0.999 },
    { "train_N", 0, "forward trajectories to learn from (0 = 2000, --small 200)", min = 0, max = 1000000 },
    { "degree", 3, "degree of the Bloch-vector monomials among the learnt model's features", min = 0, max = 6 },
  },
})
if opts.measure == "xyz" and opts.feedback == "exact" then
  require("qd.cli").fail(opts, "--feedback exact needs --measure z (the exact reverse is known for Z monitoring)")
end

local params = opts.data == "circle" and { z0 = opts.z0 } or (opts.data == "cap" and { zc = opts.zc } or nil)
local cfg = {
  name = "reverse_qubit", data = opts.data, params = params, feedback = opts.feedback,
  N = 200, repeats = 20, tau = 0.5, steps = 200, degree = opts.degree,
  train_N = opts.train_N > 0 and opts.train_N or 2000,
  measure = opts.measure == "xyz" and { "X", "Y", "Z" } or nil,
}
if opts.small then
  cfg.N, cfg.repeats, cfg.steps, cfg.ref_N, cfg.fp_h = 40, 4, 40, 2000, 0.05
  cfg.train_N = opts.train_N > 0 and opts.train_N or 200
  cfg.phi_bins = opts.data == "clusters" and 6 or nil
end
local res = rd.run(rd.from_cli(opts, cfg))
local s, m = res.settings, res.metrics
print(string.format("reverse diffusion, one qubit, %s data, %s feedback (measure %s, gamma %g, tau %g, R = %d x N = %d, seed %d):",
  s.data, s.feedback, table.concat(s.measure, ","), s.gamma, s.tau, s.repeats, s.N, opts.seed))
print(string.format("  MMD    return %.3e  noise %.3e  terminal %.3e   return/noise %.2f  terminal/return %.1f",
  m.mmd_return, m.mmd_noise, m.mmd_terminal, m.return_over_noise, m.terminal_over_return))
print(string.format("  Wass.  return %.3e  noise %.3e  terminal %.3e   return/noise %.2f  terminal/return %.1f",
  m.wass_return, m.wass_noise, m.wass_terminal, m.wass_return_over_noise, m.wass_terminal / m.wass_return))
print(string.format("  feedback setup %.2f s, reverse %.2f s; run record: %s/run.json", m.feedback_seconds, m.reverse_seconds, res.dir))
