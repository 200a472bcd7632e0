-- 01_quddpm_forward.lua — the forward (scrambling) half of QuDDPM (arXiv 2310.05866)
-- on the clustered-state task, with the reference settings by default.
--
-- Target E0 = qd.data.clustered: N states psi ∝ |0> + eps Σ_{j≠0} c_j |j>, c_j = x + iy with
-- x, y ~ N(0, 1) (eps = 0.08 for n = 1, 0.06 for n = 2). Each diffusion step s = 1..T applies
-- to every member its own fresh random W_s = [Π_{i<j} RZZ_ij(g/(2√n))] · ⊗_i RZ(φ3) RY(φ2) RZ(φ1),
-- with φ ~ U[-π/8, π/8]·h_s and g ~ U[0.4, 0.6]·h_s, h_s = linspace(1, 4, T) (n = 1) or
-- linspace(0.5, 4, T) (n = 2) — qd.schedule.linear. qd.diffusion.forward builds the whole
-- family S_0..S_T in one C call; by default (--mode marginal, as the reference code) S_t is
-- t fresh steps on E0 for every t, with --mode trajectory one trajectory per member.
--
-- Prints, per step, the mean fidelity to |0..0> (F0) and the fidelity-kernel MMD to a
-- Haar ensemble, D = F̄(A,A) + F̄(B,B) − 2F̄(A,B); S_T must be Haar-like (MMD at the level
-- of two independent Haar sets). Writes forward.npy (T+1, N, 2^n) — the shape of the
-- reference code's data — and run.json with the metrics and the schedule.
--
--   qd examples/01_quddpm_forward.lua [--n 2] [--N 100] [--T 20] [--seed 1] [--mode marginal]
--                                     [--out DIR] [--small]
local qd = require "qd"
local cli = require "qd.cli"
local record = require "qd.record"

local opts = cli.parse(arg, {
  name = "01_quddpm_forward",
  about = "QuDDPM forward diffusion of clustered states towards Haar (arXiv 2310.05866).",
  options = {
    { "n", 2, "data qubits (1 or 2 in the paper's cluster tasks; any n >= 1 works)", min = 1, max = 20 },
    { "N", 100, "ensemble size", min = 1 },
    { "T", 20, "diffusion steps", min = 1 },
    { "seed", 1, "seed of every random draw", min = 0 },
    { "mode", "marginal", "marginal (fresh steps per S_t, as the reference) or trajectory",
      choices = { "marginal", "trajectory" } },
    { "out", "", "run directory (default runs/01_quddpm_forward-<time>)" },
    { "small", false, "small settings for tests (N = 32, T = 8)" },
    { "quiet", false, "print only the summary" },
  },
})
if opts.small then opts.N, opts.T = 32, 8 end
local n, N, T = opts.n, opts.N, opts.T
if n < 1 or N < 2 or T < 1 or (opts.mode ~= "marginal" and opts.mode ~= "trajectory") then
  io.stderr:write("qd: need --n >= 1, --N >= 2, --T >= 1, --mode marginal|trajectory\n")
  os.exit(2)
end

local rng = qd.rng(opts.seed)
local eps = n == 1 and 0.08 or 0.06
local schedule = qd.schedule.linear { T = T, from = n == 1 and 1.0 or 0.5, to = 4.0 }

local E = qd.data.clustered(n, N, rng, { eps = eps })
local haar = qd.ensemble.haar(n, N, rng)
local zero = qd.state(n)

local function mmd(A, B)
  return A:overlaps():mean() + B:overlaps():mean() - 2 * A:overlaps(B):mean()
end

local rec = record.open(opts.out, {
  name = "01_quddpm_forward", seed = opts.seed,
  settings = { n = n, N = N, T = T, eps = eps, mode = opts.mode, schedule = schedule:totable(), small = opts.small },
})
local t0 = qd.clock()
local sets = qd.diffusion.forward(E, schedule, rng, { mode = opts.mode })   -- sets[t + 1] = S_t
local elapsed = qd.clock() - t0
local f0, mmds = {}, {}
for s = 1, T do
  local S = sets[s + 1]
  f0[s] = S:fidelities(zero):mean()
  mmds[s] = mmd(S, haar)
  if not opts.quiet then
    print(string.format("step %2d/%d  h = %.3f  F0 = %.4f  MMD(S_t, Haar) = %.5f", s, T, schedule[s], f0[s], mmds[s]))
  end
end

-- reference level: MMD between two independent Haar sets of the same size
local haar2 = qd.ensemble.haar(n, N, rng)
local floor = mmd(haar, haar2)
local F0_start = sets[1]:fidelities(zero):mean()
local dim = 1 << n

qd.diffusion.save(rec:path("forward.npy"), sets)
rec.metrics.F0_target = F0_start
rec.metrics.F0_final = f0[T]
rec.metrics.mmd_final_to_haar = mmds[T]
rec.metrics.mmd_haar_vs_haar = floor
rec.metrics.F0_per_step = f0
rec.metrics.mmd_per_step = mmds
rec.metrics.forward_seconds = elapsed
local path = rec:save()

print(string.format("target F0 = %.4f -> after %d steps F0 = %.4f (Haar: 1/%d = %.4f)", F0_start, T, f0[T], dim, 1 / dim))
print(string.format("MMD(S_T, Haar) = %.5f vs Haar-vs-Haar %.5f; forward pass %.3f s", mmds[T], floor, elapsed))
print("run record: " .. path)

-- sanity for the test-suite: scrambling must have moved the ensemble to Haar-like
if not (F0_start > 0.9 and mmds[T] < 5 * floor + 0.02 and f0[T] < 0.5 + 1 / dim) then
  io.stderr:write("qd: forward diffusion did not reach a Haar-like ensemble\n")
  os.exit(1)
end
