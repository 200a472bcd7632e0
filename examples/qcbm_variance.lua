-- qcbm_variance.lua — the concentration of Born-machine losses (arXiv 2305.02881): the
-- variance over K random initialisations theta ~ U(0, 2 pi) of each loss and of its
-- derivative dL/dtheta_1, as the qubit count n grows.
--
--   losses    MMD^2 with the Gaussian bitstring kernel at sigma = 0.1, 1 and n; KL(q || p);
--             the local and the global fidelity loss
--   model     qd.ansatz.ry_rz_cz(n, L) (L = 2 by default) on |0..0>
--   target    the GHZ-like q = 1/2 (delta_{0..0} + delta_{1..1}) (--data for the others)
--   gradient  dL/dtheta_1 by the parameter-shift rule (exact; --grad adjoint to use the
--             adjoint instead: the same numbers to rounding)
-- The claim: Var at sigma = 0.1 falls exponentially in n, at sigma = n slowly; KL and the
-- global fidelity concentrate, the local fidelity does not (at L = 2). run.json:
-- metrics.variance = {loss = {sigma_0.1 = [...], sigma_1, sigma_n, kl, local_fidelity,
-- global_fidelity}, grad = {same keys}, n = [...]} (one entry per n); metrics.mean likewise;
-- metrics.orders[sigma key][i] = the mean MMD^2 split by Pauli weight 0 ... n at n[i];
-- values_nNN.npy the raw values (K x 12). Timing per n in run.json timing.seconds_per_n.
--
--   qd examples/qcbm_variance.lua [--nmin 2] [--nmax 20] [--layers 2] [--inits 200]
--        [--data ghz] [--grad shift] [--seed 1] [--out DIR] [--small]
local qcbm = require "qd.protocols.qcbm"
local protocol = require "qd.protocol"

local opts = qcbm.parse_cli(arg, {
  name = "qcbm_variance",
  about = "Variance of QCBM losses and gradients over random initialisations, as n grows.",
  options = protocol.cli_options {
    { "nmin", 2, "smallest qubit count, 1 ... 24", min = 1, max = 24 },
    { "nmax", 20, "largest qubit count, nmin ... 24", min = 1, max = 24 },
    { "layers", 2, "ansatz layers L, >= 1", min = 1, max = 1000 },
    { "inits", 200, "random initialisations K per n, >= 2", min = 2 },
    { "ansatz", "ry_rz_cz", "ry_rz_cz | hardware_efficient | strongly_entangling", choices = qcbm.ansatze },
    { "data", "ghz", "target: ghz | bars | hep | spurious", choices = qcbm.datasets },
    { "grad", "shift", "dL/dtheta_1 by shift (parameter shift) | adjoint", choices = { "shift", "adjoint" } },
  },
})
if opts.small then opts.nmin, opts.nmax, opts.inits = 2, 5, 8 end
if opts.nmax < opts.nmin then
  require("qd.cli").fail(opts, string.format("--nmax %d is below --nmin %d", opts.nmax, opts.nmin))
end
local ns = {}
for n = opts.nmin, opts.nmax do ns[#ns + 1] = n end

local res = qcbm.variance(protocol.from_cli(opts, {
  name = "qcbm_variance", n = ns, K = opts.inits, L = opts.layers, ansatz = opts.ansatz, data = opts.data,
  grad = opts.grad,
}))
qcbm.exit_if_stopped(res, opts)

local V = res.metrics.variance
local keys = res.settings.keys
print(string.format("QCBM loss concentration: %s(n, %d), %s target, K = %d inits, seed %d", opts.ansatz, opts.layers,
  opts.data, opts.inits, opts.seed))
for _, what in ipairs { "loss", "grad" } do
  print(what == "loss" and "Var[L]:" or "Var[dL/dtheta_1]:")
  local head = { string.format("%4s", "n") }
  for _, k in ipairs(keys) do head[#head + 1] = string.format("%16s", k) end
  print(table.concat(head, " "))
  for i, n in ipairs(V.n) do
    local row = { string.format("%4d", n) }
    for _, k in ipairs(keys) do row[#row + 1] = string.format("%16.4e", V[what][k][i]) end
    print(table.concat(row, " "))
  end
end
if #V.n >= 2 then
  print("fitted decay rate b of Var ~ e^{-b n} (per qubit):")
  for _, k in ipairs(keys) do
    local bl, bg = qcbm.fit_rate(V.n, V.loss[k]), qcbm.fit_rate(V.n, V.grad[k])
    print(string.format("  %-16s loss %8.4f   grad %8.4f", k, bl or 0 / 0, bg or 0 / 0))
  end
end
-- where the mean MMD^2 sits at the largest n: its share per Pauli weight |A| (the largest three)
local last = #V.n
print(string.format("mean MMD^2 by Pauli weight at n = %d (share of the total, largest three):", V.n[last]))
for i = 1, #res.settings.sigmas do
  local key = keys[i]
  local o = res.metrics.orders[key][last]
  local total, idx = 0, {}
  for w = 1, #o do total, idx[w] = total + o[w], w end
  table.sort(idx, function(a, b) return o[a] > o[b] end)
  local parts = {}
  for r = 1, math.min(3, #idx) do
    parts[r] = string.format("|A|=%d %.0f%%", idx[r] - 1, total > 0 and 100 * o[idx[r]] / total or 0)
  end
  print(string.format("  %-10s %s", key, table.concat(parts, ", ")))
end
local secs = res.timing.seconds_per_n
local t = {}
for i, n in ipairs(V.n) do t[#t + 1] = string.format("n=%d %.2fs", n, secs[i]) end
print("time per n (threads " .. res.timing.threads .. "): " .. table.concat(t, ", "))
print("run record: " .. res.dir .. "/run.json")
