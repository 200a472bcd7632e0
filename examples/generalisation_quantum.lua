-- generalisation_quantum.lua — memorisation, convergence and latent recovery of the
-- reverse-time quantum diffusion model (arXiv 2606.03848, metrics of arXiv 2605.21402) as
-- the number of training states grows; --model quddpm: the same study for QuDDPM
-- (arXiv 2310.05866).
--
--   data     one qubit, two broad clusters on the Bloch sphere (rd.data "clusters", --sigma)
--   model    forward: continuous measurement of --measure (rate gamma, time tau); the
--            feedback Hamiltonian learnt from one forward trajectory per training state
--   pairs    two models trained on disjoint training sets of M states each, started from the
--            same forward terminal ensemble and driven by the same reverse noise
--   metrics  memorisation(model A's output, A's training states), convergence(A, B),
--            latent_recovery(A, u) with u the top eigenvector of the data's average state
--            (from 20000 data draws); mean and standard error over --seeds repetitions.
--            Baselines: memorisation_data = memorisation(fresh data, A's training states) (the
--            level of a perfect model that never saw the training set), latent_recovery_data
--            = the training set's own latent recovery
--   quddpm   (--model quddpm) two QuDDPM models (n = 1, 2 ancillas, T = 10 steps of h_s =
--            0.016 s^2, L = 6 layers, MMD, --epochs per step) trained on the two training
--            sets, generating from the same Haar noise states with the same measurement
--            streams (both runs share the seed: qd.protocols.quddpm's generator keys)
--
--   qd examples/generalisation_quantum.lua [--model reverse|quddpm] [--seeds 3] [--gen 200] [--measure z|xyz]
--        [--epochs 300] [--seed 1] [--out DIR] [--small]
local qd = require "qd"
local protocol = require "qd.protocol"
local rd = require "qd.protocols.reverse_diffusion"

local opts = rd.parse_cli(arg, {
  name = "generalisation_quantum",
  about = "Memorisation, convergence and latent recovery of the learnt reverse-time model vs training-set size.",
  options = protocol.cli_options {
    { "seeds", 0, "repetitions per size (0 = 3, --small 2)", min = 0, max = 1000 },
    { "gen", 0, "generated members per model (0 = 200, --small 40)", min = 0, max = 100000 },
    { "measure", "xyz", "measured observables: z | xyz", choices = { "z", "xyz" } },
    { "tau", 0.5, "forward time", min = 1e-6 },
    { "sigma", 0.5, "angular spread of the clusters (radians)", min = 0, max = 3 },
    { "model", "reverse", "reverse (learnt reverse-time diffusion) | quddpm", choices = { "reverse", "quddpm" } },
    { "epochs", 0, "QuDDPM epochs per step (0 = 300, --small 20)", min = 0, max = 1000000 },
  },
})
local seeds = opts.seeds > 0 and opts.seeds or (opts.small and 2 or 3)
local Ngen = opts.gen > 0 and opts.gen or (opts.small and 40 or 200)
local quddpm = opts.model == "quddpm"
local sizes = opts.small and { 4, 32 } or (quddpm and { 4, 16, 64, 256 } or { 4, 16, 64, 256, 1024 })
local qtask = { n = 1, na = 2, T = opts.small and 4 or 10, L = opts.small and 2 or 6,
                epochs = opts.epochs > 0 and opts.epochs or (opts.small and 20 or 300) }
local cfg = { data = "clusters", feedback = "learnt", tau = opts.tau, steps = opts.small and 30 or 100,
              measure = opts.measure == "xyz" and { "X", "Y", "Z" } or nil, degree = 3 }
local c = rd.check(cfg)
local P = { sigma = opts.sigma }

-- the latent direction: the top eigenvector of the data's average state
local root = qd.rng(opts.seed)
local big = rd.data("clusters", 20000, root:substream(1), P)
local _, u = qd.metrics.latent_recovery(big, qd.state(1))

local settings = { data = "clusters", params = select(2, rd.data("clusters", 1, qd.rng(0), P)), measure = c.A, tau = c.tau,
                   gamma = c.gamma, steps = c.steps, degree = c.degree, sizes = sizes, seeds = seeds, generated = Ngen,
                   model = opts.model, quddpm = quddpm and qtask or nil, options = protocol.result_options(opts) }
local S = protocol.session { name = "generalisation_quantum", seed = opts.seed, settings = settings, format = 1,
                             out = opts.out ~= "" and opts.out or nil, quiet = opts.quiet, progress = opts.progress }
local prog = S:progress { steps = 1, epochs = #sizes, total = #sizes, label = "training-set sizes" }
prog:begin_step(1, 0)

local function mean_err(xs)
  local m = 0.0
  for _, x in ipairs(xs) do m = m + x / #xs end
  local v = 0.0
  for _, x in ipairs(xs) do v = v + (x - m) ^ 2 end
  return m, #xs > 1 and math.sqrt(v / (#xs - 1) / #xs) or 0.0
end

-- one model: learnt from M training states (one forward trajectory each), generated from ET
-- with the reverse noise of rng_seed
local function model(train, rng_train, ET, rev_seed)
  local _, snaps = rd.forward(train, c, rng_train, true)
  local f, terms = rd.learnt_feedback(rd.learn(snaps, c), c)
  return rd.reverse(ET, c, qd.rng(rev_seed), function(k, E) return f(c.grid[k], E) end, terms)
end

-- one QuDDPM model trained on `train` (M states); generates from the Haar states noise with the
-- measurement streams of gen_seed (the same for both models of a pair)
local qm = require "qd.protocols.quddpm"
local function quddpm_model(train, run_seed, noise, gen_seed)
  local res = qm.run { target = train, n = qtask.n, na = qtask.na, L = qtask.L, N = #train,
                       schedule = qd.schedule.quadratic { T = qtask.T, scale = 0.16 / qtask.T ^ 2 },
                       loss = "mmd", epochs = qtask.epochs, seed = run_seed, quiet = true, save_data = false,
                       out = S.rec:path(string.format("quddpm-%d", run_seed)) }
  return qm.generate_from(res, noise, gen_seed)
end

local out = { size = {}, memorisation = {}, memorisation_err = {}, convergence = {}, convergence_err = {},
              latent_recovery = {}, latent_recovery_err = {}, latent_recovery_data = {}, memorisation_data = {} }
for si, M in ipairs(sizes) do
  local mem, conv, lat, latd, memd = {}, {}, {}, {}, {}
  for r = 1, seeds do
    local s = root:substream(100 + 100 * si + r)
    local trainA, trainB = rd.data("clusters", M, s:substream(1), P), rd.data("clusters", M, s:substream(2), P)
    local rev = opts.seed * 1000003 + 7919 * si + r
    local GA, GB
    if quddpm then
      local noise = qd.ensemble.haar(1, Ngen, s:substream(8))
      GA = quddpm_model(trainA, 2 * (100 * si + r), noise, rev)
      GB = quddpm_model(trainB, 2 * (100 * si + r) + 1, noise, rev)
    else
      local E0 = rd.data("clusters", Ngen, s:substream(3), P)
      local ET = rd.forward(E0, c, s:substream(4))
      GA = model(trainA, s:substream(5), ET, rev)
      GB = model(trainB, s:substream(6), ET, rev)
    end
    mem[r] = qd.metrics.memorisation(GA, trainA)
    conv[r] = qd.metrics.convergence(GA, GB)
    lat[r] = qd.metrics.latent_recovery(GA, u)
    latd[r] = qd.metrics.latent_recovery(trainA, u)
    memd[r] = qd.metrics.memorisation(rd.data("clusters", Ngen, s:substream(7), P), trainA)
  end
  out.size[si] = M
  out.memorisation[si], out.memorisation_err[si] = mean_err(mem)
  out.convergence[si], out.convergence_err[si] = mean_err(conv)
  out.latent_recovery[si], out.latent_recovery_err[si] = mean_err(lat)
  out.latent_recovery_data[si] = mean_err(latd)
  out.memorisation_data[si] = mean_err(memd)
  prog:update(si, out.convergence[si])
  S:epoch(si)
end
prog:end_step(0)
prog:finish()
for k, v in pairs(out) do S.rec.metrics[k] = v end
local Tm = qd.matrix(#sizes, 9)
for si = 1, #sizes do
  local row = { out.size[si], out.memorisation[si], out.memorisation_err[si], out.convergence[si], out.convergence_err[si],
                out.latent_recovery[si], out.latent_recovery_err[si], out.latent_recovery_data[si], out.memorisation_data[si] }
  for j = 1, 9 do Tm:set(si, j, row[j]) end
end
Tm:save_npy(S.rec:path("curves.npy"))
local timing = S:finish()
if quddpm then
  print(string.format("generalisation of QuDDPM (clusters, n = 1, T = %d, L = %d, %d epochs/step, %d seeds, %d generated, seed %d):",
    qtask.T, qtask.L, qtask.epochs, seeds, Ngen, opts.seed))
else
  print(string.format("generalisation of the learnt reverse-time model (clusters, measure %s, tau %g, %d seeds, %d generated, seed %d):",
    table.concat(c.A, ","), c.tau, seeds, Ngen, opts.seed))
end
print(string.format("  %6s  %17s %9s  %17s  %17s %9s", "M", "memorisation", "(data)", "convergence", "latent_recovery", "(train)"))
for si = 1, #sizes do
  print(string.format("  %6d  %8.4f+-%7.4f %9.4f  %8.4f+-%7.4f  %8.4f+-%7.4f %9.4f", out.size[si], out.memorisation[si],
    out.memorisation_err[si], out.memorisation_data[si], out.convergence[si], out.convergence_err[si], out.latent_recovery[si],
    out.latent_recovery_err[si], out.latent_recovery_data[si]))
end
print(string.format("  %.2f s; run record: %s/run.json", timing.this_session_seconds, S.dir))
