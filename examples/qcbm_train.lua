-- qcbm_train.lua — train a quantum circuit Born machine p(x) = |<x|U(theta)|0>|^2 with one of
-- the losses of arXiv 2305.02881 and report its final KL, total variation and MMD to the
-- target, with the training curves (history.npy: loss, KL, TV, MMD per iteration).
--
--   --loss    mmd (Gaussian bitstring kernel, --sigma: a number, n, or a mixture "0.25,1,n"),
--             kl (KL(q || p)), local_fidelity, global_fidelity
--   --data    ghz (1/2 (|0..0> + |1..1>) probabilities), bars (bars and stripes, 3 x 3 at
--             n = 9), hep (a discretised jet-like (pT, |eta|) pair), spurious (the parity
--             distribution: every marginal below n bits uniform, as a product distribution's)
--   model     --ansatz (ry_rz_cz) with --layers L, theta_0 ~ U(0, 2 pi), Adam (--lr), exact
--             adjoint gradients; --shots S samples the model (MMD from samples, sampled
--             parameter-shift gradient)
-- Metrics: kl, tv, mmd (at --sigma), loss, zdiff_by_order (sum over Pauli-Z strings of each
-- weight of (<Z_A>_p - <Z_A>_q)^2), zdiff_low (weights 1 and 2).
--
--   qd examples/qcbm_train.lua [--loss mmd] [--sigma 1] [--data ghz] [--n 0] [--layers 0]
--        [--iterations 0] [--lr 0.05] [--shots 0] [--seed 1] [--out DIR] [--small]
local qcbm = require "qd.protocols.qcbm"
local protocol = require "qd.protocol"
local cli = require "qd.cli"

local opts = qcbm.parse_cli(arg, {
  name = "qcbm_train",
  about = "Train a quantum circuit Born machine (MMD, KL or fidelity losses) on a target distribution.",
  options = protocol.cli_options {
    { "loss", "mmd", "mmd | kl | local_fidelity | global_fidelity", choices = qcbm.losses },
    { "sigma", "1", "MMD bandwidth: a number > 0, n, or a comma list (a mixture), e.g. 0.25,1,n" },
    { "data", "ghz", "ghz | bars | hep | spurious", choices = qcbm.datasets },
    { "n", 0, "qubits, 0 ... 24 (0 = the data's default: ghz 6, bars 9, hep 8, spurious 6)", min = 0, max = 24 },
    { "layers", 0, "ansatz layers L (0 = the default: n)", min = 0, max = 1000 },
    { "ansatz", "ry_rz_cz", "ry_rz_cz | hardware_efficient | strongly_entangling", choices = qcbm.ansatze },
    { "iterations", 0, "Adam steps (0 = the default: 300)", min = 0 },
    { "lr", 0.05, "Adam learning rate > 0", min = 0 },
    { "shots", 0, "samples per circuit (0 = exact probabilities; mmd only)", min = 0 },
    { "grad", "auto", "auto (adjoint; sampled shift with shots) | adjoint | shift", choices = { "auto", "adjoint", "shift" } },
  },
})
local sigma, badtext = qcbm.parse_sigma(opts.sigma)
if sigma == nil then cli.fail(opts, "--sigma: a number > 0, n, or a comma list of them expected, got " .. tostring(badtext)) end
if not (opts.lr > 0) then cli.fail(opts, "--lr: > 0 expected, got " .. opts.lr) end

local default_n = { ghz = 6, bars = 9, hep = 8, spurious = 6 }
local n = opts.n > 0 and opts.n or default_n[opts.data]
local L = opts.layers > 0 and opts.layers or n
local iterations = opts.iterations > 0 and opts.iterations or 300
if opts.small then
  n = opts.n > 0 and opts.n or (opts.data == "bars" and 4 or 3)
  L = opts.layers > 0 and opts.layers or 2
  iterations = opts.iterations > 0 and opts.iterations or 12
end

local res = qcbm.train(protocol.from_cli(opts, {
  name = "qcbm_train", n = n, data = opts.data, loss = opts.loss, sigma = sigma, ansatz = opts.ansatz, L = L,
  iterations = iterations, lr = opts.lr, shots = opts.shots, grad = opts.grad,
}))
qcbm.exit_if_stopped(res, opts)
local s = res.settings
print(string.format("QCBM, %s target on %d qubits (%s, L=%d, %d parameters), loss %s (sigma %s), %d iterations, %s, seed %d:",
  s.data, s.n, s.ansatz, s.L, s.nparams, s.loss, opts.sigma, s.iterations,
  s.shots > 0 and (s.shots .. " shots") or "exact probabilities", opts.seed))
qcbm.print_metrics(res)
local z = res.metrics.zdiff_by_order
local t = {}
for k = 2, #z do t[#t + 1] = string.format("%.3g", z[k]) end
print("  zdiff by Pauli weight 1..n: " .. table.concat(t, " "))
