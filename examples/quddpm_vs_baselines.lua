-- quddpm_vs_baselines.lua — QuDDPM against the paper's two baselines on the cluster-2 task
-- (arXiv 2310.05866), all three with the same 720 parameters:
--   QuDDPM  T = 20 steps × 36 parameters (n = 2, n_A = 1, L = 6), 2000 epochs per step;
--   QuDT    direct transport: one circuit of L = 120 layers (n = 2, n_A = 1) from Haar to the
--           target with the MMD loss, 40000 epochs;
--   QuGAN   the same generator against a hardware-efficient discriminator on the data
--           qubits (P_real = (1 + <Z0>)/2), 40000 alternating epochs.
-- Published MMD (train / test): QuDDPM 0.0026 / 0.0036, QuDT 0.253 / 0.403,
-- QuGAN 0.358 / 0.587. Metrics: mmd_quddpm, mmd_qudt, mmd_qugan (train) and *_test.
--
--   qd examples/quddpm_vs_baselines.lua [--seed 1] [--epochs E] [--baseline-epochs E]
--        [--out DIR] [--small]
local qd = require "qd"
local json = require "qd.json"
local record = require "qd.record"
local quddpm = require "qd.protocols.quddpm"

local opts = quddpm.parse_cli(arg, {
  name = "quddpm_vs_baselines",
  about = "QuDDPM vs direct transport (QuDT) and QuGAN on cluster-2, same parameter count.",
  options = quddpm.cli_options {
    { "baseline_epochs", 0, "epochs of QuDT and QuGAN (0 = 40000)", min = 0 },
    { "D_layers", 4, "QuGAN discriminator layers", min = 1 },
  },
})

local t_start = qd.clock()
local n, na, L, T = 2, 1, 6, 20
local N, epochs, bepochs = 100, 2000, 40000
if opts.small then T, N, epochs, bepochs = 3, 12, 20, 60 end
N = opts.N > 0 and opts.N or N
epochs = opts.epochs > 0 and opts.epochs or epochs
bepochs = opts.baseline_epochs > 0 and opts.baseline_epochs or bepochs
local L_dt = T * L   -- same parameter count: T·2(n+n_A)L = 2(n+n_A)·(T L)

local target = qd.data.clustered(n, N, quddpm.stream(opts.seed, "target"), { eps = 0.06 })
local res = quddpm.run(quddpm.from_cli(opts, {
  name = "quddpm_vs_baselines",
  target = target,
  schedule = qd.schedule.linear { T = T, from = 0.5, to = 4.0 },
  n = n, na = na, L = L, N = N, loss = "mmd",
  lr = 5e-3,
  epochs = epochs,
  metrics = { "F0", "mmd" },
}))
quddpm.exit_if_stopped(res, opts)

local common = { target = target, n = n, na = na, L = L_dt, N = N, seed = opts.seed, epochs = bepochs,
                 lr = opts.lr > 0 and opts.lr or 5e-3, quiet = opts.quiet, progress = opts.progress }
local dt = quddpm.qudt(common)
common.D_layers = opts.D_layers
local gan = quddpm.qugan(common)

-- add the comparison to the run record written by quddpm.run
local path = res.dir .. "/run.json"
local doc = json.decode(assert(record.read_file(path)))
local m = doc.metrics
m.mmd_quddpm, m.mmd_quddpm_test = m.mmd_train, m.mmd_test
m.mmd_qudt, m.mmd_qudt_test = dt.metrics.mmd_train, dt.metrics.mmd_test
m.mmd_qugan, m.mmd_qugan_test = gan.metrics.mmd_train, gan.metrics.mmd_test
m.F0_qudt, m.F0_qudt_test = dt.metrics.F0_train, dt.metrics.F0_test
m.F0_qugan, m.F0_qugan_test = gan.metrics.F0_train, gan.metrics.F0_test
doc.baselines = { epochs = bepochs, qudt_layers = L_dt, qudt_params = dt.nparams, qugan_disc_layers = opts.D_layers,
                  qudt_seconds = dt.seconds, qugan_seconds = gan.seconds,
                  total_wall_seconds = qd.clock() - t_start }
record.write_atomic(path, json.encode(doc, { indent = "  " }) .. "\n")
local LM = qd.matrix(2, bepochs)
for e = 1, bepochs do LM:set(1, e, dt.losses[e]); LM:set(2, e, gan.losses[e]) end
LM:save_npy(res.dir .. "/baseline_loss.npy")

print(string.format("cluster-2, %d parameters each (seed %d):", dt.nparams, opts.seed))
print(string.format("  %-8s MMD train %.4g  test %.4g   F0 train %.4f test %.4f", "QuDDPM", m.mmd_train, m.mmd_test,
  m.F0_train, m.F0_test))
print(string.format("  %-8s MMD train %.4g  test %.4g   F0 train %.4f test %.4f  (%.1f s)", "QuDT", m.mmd_qudt,
  m.mmd_qudt_test, m.F0_qudt, m.F0_qudt_test, dt.seconds))
print(string.format("  %-8s MMD train %.4g  test %.4g   F0 train %.4f test %.4f  (%.1f s)", "QuGAN", m.mmd_qugan,
  m.mmd_qugan_test, m.F0_qugan, m.F0_qugan_test, gan.seconds))
print(string.format("  ratio   QuDT/QuDDPM %.1fx, QuGAN/QuDDPM %.1fx (train)", m.mmd_qudt / m.mmd_train,
  m.mmd_qugan / m.mmd_train))
print("run record: " .. path)
