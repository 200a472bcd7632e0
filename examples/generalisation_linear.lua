-- generalisation_linear.lua — memorisation, convergence and latent recovery of the linear
-- Gaussian generative model (arXiv 2605.21402) as the training set grows, against the
-- asymptotic theory.
--
--   data    x ~ N(0, I + beta u u^T) in d dimensions (u a random unit vector)
--   model   x_gen = S^(1/2) z, S = X X^T / n the sample covariance of n training points,
--           z ~ N(0, I); gamma = n / d is the load
--   metrics (qd.metrics on real samples, overlap = squared cosine)
--           memorisation   mean over generated points of the largest overlap with a training point
--           convergence    mean overlap of paired points of two models trained on disjoint
--                          training sets and fed the same z
--           latent_recovery |<v|u>|^2, v the top eigenvector of the generated samples' second
--                          moment (latent_recovery_model: of S itself)
--   theory  BBP for the latent recovery, free probability (Marchenko-Pastur) for the
--           convergence, a Gram-matrix reduction for the memorisation (n <= d); docs/api.md
-- Every point is the mean over --draws independent training sets (standard errors in
-- run.json metrics.*_err). The table printed at the end is plot-ready.
--
--   qd examples/generalisation_linear.lua [--d 200] [--beta 2] [--draws 8] [--seed 1] [--out DIR] [--small]
local qd = require "qd"
local protocol = require "qd.protocol"

local opts = protocol.parse_cli(arg, {
  name = "generalisation_linear",
  about = "Linear Gaussian testbed: memorisation, convergence and latent recovery vs gamma = n/d, with theory.",
  options = protocol.cli_options {
    { "d", 200, "data dimension, 4 ... 1000", min = 4, max = 1000 },
    { "beta", 2.0, "spike strength beta > 0 (covariance I + beta u u^T)", min = 1e-9, max = 1e6 },
    { "draws", 0, "training sets per point (0 = 8, --small 2)", min = 0, max = 1000 },
    { "gen", 0, "generated points for memorisation and convergence (0 = d, at least 100)", min = 0, max = 100000 },
    { "latent_mult", 20, "generated points for the latent recovery, as a multiple of d", min = 1, max = 1000 },
  },
}, 1)

local d, beta = opts.d, opts.beta
local draws = opts.draws > 0 and opts.draws or (opts.small and 2 or 8)
local gammas = { 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8 }
if opts.small then
  d = math.min(d, 24)
  gammas = { 0.1, 0.5, 1, 2 }
end
local Nc = opts.gen > 0 and opts.gen or math.max(100, d)
local Nl = opts.latent_mult * d
local Nmem = math.min(Nc, 200)   -- generated points compared with the training set

-- randomness: substream 1 the spike direction u, 2 the memorisation theory, then one
-- substream per (gamma, draw)
local root = qd.rng(opts.seed)

local function randn(rng, rows, cols)
  local v = rng:normal(0, 1, rows * cols)
  local M = qd.matrix(rows, cols)
  local k = 0
  for j = 1, cols do
    for i = 1, rows do
      k = k + 1
      M:set(i, j, v[k])
    end
  end
  return M
end

-- the spike direction: a uniformly random unit vector, as a d x 1 matrix and a qd.Vector
local U, u = randn(root:substream(1), d, 1), qd.vector(d)
do
  local s = 0.0
  for i = 1, d do s = s + U:get(i, 1) ^ 2 end
  s = math.sqrt(s)
  for i = 1, d do
    U:set(i, 1, U:get(i, 1) / s)
    u[i] = U:get(i, 1)
  end
end
local Ut = U:dagger()
local spike = math.sqrt(1 + beta) - 1

-- n samples of N(0, I + beta u u^T) as columns: z + (sqrt(1 + beta) - 1) u (u . z)
local function data(rng, n)
  local Z = randn(rng, d, n)
  return Z + U * (Ut * Z) * spike
end

-- S^(1/2) (real, symmetric) of S = X X^T / n, and the overlap of S's top eigenvector with u
local function model(X, n)
  local S = (X * X:dagger()) * (1.0 / n)
  local w, V = S:eigh()
  local W = qd.matrix(d, d, { complex = true })
  for j = 1, d do
    local s = math.sqrt(math.max(w[j], 0))
    for i = 1, d do
      local re, im = V:get(i, j)
      W:set(i, j, { re * s, im * s })
    end
  end
  local Rc = W * V:dagger()
  local R = qd.matrix(d, d)
  for j = 1, d do for i = 1, d do R:set(i, j, (Rc:get(i, j))) end end
  local vr, vi = 0.0, 0.0
  for i = 1, d do
    local re, im = V:get(i, d)
    vr, vi = vr + re * u[i], vi + im * u[i]
  end
  return R, vr * vr + vi * vi
end

local settings = { d = d, beta = beta, draws = draws, gammas = gammas, generated = Nc, memorisation_generated = Nmem,
                   latent_generated = Nl, options = protocol.result_options(opts) }
local S = protocol.session { name = "generalisation_linear", seed = opts.seed, settings = settings, format = 1,
                             out = opts.out ~= "" and opts.out or nil, quiet = opts.quiet, progress = opts.progress }
local prog = S:progress { steps = 1, epochs = #gammas, total = #gammas, label = "gamma sweep" }
prog:begin_step(1, 0)

local function mean_err(xs)
  local m = 0.0
  for _, x in ipairs(xs) do m = m + x end
  m = m / #xs
  local v = 0.0
  for _, x in ipairs(xs) do v = v + (x - m) ^ 2 end
  return m, #xs > 1 and math.sqrt(v / (#xs - 1) / #xs) or 0.0
end

local names = { "memorisation", "convergence", "latent_recovery", "latent_recovery_model" }
local out = { gamma = {}, n = {}, memorisation_theory = {}, memorisation_floor = {}, convergence_theory = {}, latent_recovery_theory = {} }
for _, k in ipairs(names) do out[k], out[k .. "_err"] = {}, {} end
local th = qd.metrics.theory
local mem_rng = root:substream(2)
for gi, g in ipairs(gammas) do
  local n = math.max(1, math.floor(g * d + 0.5))
  local vals = { memorisation = {}, convergence = {}, latent_recovery = {}, latent_recovery_model = {} }
  for r = 1, draws do
    local rng = root:substream(1000 + 1000 * gi + r)
    local X1, X2 = data(rng, n), data(rng, n)
    local R1, lat_model = model(X1, n)
    local R2 = model(X2, n)
    local Z = randn(rng, d, Nc)
    local G1, G2 = R1 * Z, R2 * Z
    local Zm = Nmem < Nc and randn(rng, d, Nmem) or Z
    vals.memorisation[r] = qd.metrics.memorisation(Nmem < Nc and R1 * Zm or G1, X1)
    vals.convergence[r] = qd.metrics.convergence(G1, G2)
    vals.latent_recovery[r] = qd.metrics.latent_recovery(R1 * randn(rng, d, Nl), u)
    vals.latent_recovery_model[r] = lat_model
  end
  out.gamma[gi], out.n[gi] = n / d, n
  for _, k in ipairs(names) do out[k][gi], out[k .. "_err"][gi] = mean_err(vals[k]) end
  -- the small-load memorisation holds for n <= d (-1 above: no prediction; JSON has no
  -- NaN); the floor of a model independent of its training set, for gamma >> 1
  out.memorisation_theory[gi] = th.memorisation(n, d, mem_rng, opts.small and 200 or 2000) or -1
  out.memorisation_floor[gi] = th.memorisation_floor(n, d, mem_rng, opts.small and 100 or 500)
  out.convergence_theory[gi] = th.convergence(n / d)
  out.latent_recovery_theory[gi] = th.latent_recovery(n / d, beta)
  prog:update(gi, out.latent_recovery[gi])
  if not S:epoch(gi) then break end
end
prog:end_step(0)
prog:finish()

for k, v in pairs(out) do S.rec.metrics[k] = v end
S.rec.metrics.transition_gamma = 1 / (beta * beta)
-- the largest deviation of the latent recovery from BBP away from the transition
-- (gamma outside (gamma_c / 2, 2 gamma_c), gamma_c = 1/beta^2: inside, the finite-d
-- crossover is wide), the acceptance check of docs/results.md
local dev, gc = 0.0, 1 / beta ^ 2
for gi, g in ipairs(out.gamma) do
  if g <= gc / 2 or g >= 2 * gc then
    dev = math.max(dev, math.abs(out.latent_recovery_model[gi] - out.latent_recovery_theory[gi]))
  end
end
S.rec.metrics.latent_max_dev = dev
-- the table as a (gammas x 9) matrix: gamma, m, m_theory (small load), m_floor, q,
-- q_theory, Q, Q_model, Q_theory
local T = qd.matrix(#out.gamma, 9)
for gi = 1, #out.gamma do
  local row = { out.gamma[gi], out.memorisation[gi], out.memorisation_theory[gi], out.memorisation_floor[gi], out.convergence[gi],
                out.convergence_theory[gi], out.latent_recovery[gi], out.latent_recovery_model[gi],
                out.latent_recovery_theory[gi] }
  for j = 1, 9 do T:set(gi, j, row[j]) end
end
T:save_npy(S.rec:path("curves.npy"))
local timing = S:finish()

print(string.format("linear Gaussian testbed, d = %d, beta = %g (BBP transition at gamma = %.4g), %d draws, seed %d:",
  d, beta, 1 / beta ^ 2, draws, opts.seed))
print(string.format("  %6s %5s  %15s %7s %7s  %15s %7s  %15s %7s %7s", "gamma", "n", "memorisation", "theory", "floor",
  "convergence", "theory", "latent_recovery", "model", "theory"))
for gi = 1, #out.gamma do
  print(string.format("  %6.3f %5d  %7.4f+-%6.4f %7.4f %7.4f  %7.4f+-%6.4f %7.4f  %7.4f+-%6.4f %7.4f %7.4f", out.gamma[gi], out.n[gi],
    out.memorisation[gi], out.memorisation_err[gi], out.memorisation_theory[gi], out.memorisation_floor[gi], out.convergence[gi],
    out.convergence_err[gi], out.convergence_theory[gi], out.latent_recovery[gi], out.latent_recovery_err[gi],
    out.latent_recovery_model[gi], out.latent_recovery_theory[gi]))
end
print(string.format("  latent recovery of S vs BBP away from the transition: max |deviation| = %.4f", dev))
print(string.format("  %.2f s; run record: %s/run.json", timing.this_session_seconds, S.dir))
