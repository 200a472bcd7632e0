-- 01_quddpm_forward.lua — the forward (scrambling) half of QuDDPM (arXiv 2310.05866,
-- protocols.md §1) on the clustered-state task, with the reference settings by default.
--
-- Target E0: N states psi ∝ |0> + eps Σ_{j≠0} c_j |j>, c_j complex normal (eps = 0.08 for
-- n = 1, 0.06 for n = 2). Each diffusion step s = 1..T applies to every member its own
-- fresh random W_s = [Π_{i<j} RZZ_ij(g/(2√n))] · ⊗_i RZ(φ3) RY(φ2) RZ(φ1), with
-- φ ~ U[-π/8, π/8]·h_s and g ~ U[0.4, 0.6]·h_s, h_s = linspace(1, 4, T) (n = 1) or
-- linspace(0.5, 4, T) (n = 2). Per-member angles go in as qd.Vector arguments, so each gate
-- is one C call over the whole ensemble. We record one trajectory per member; S_t, the set
-- after t steps, has the same marginal law as drawing t fresh steps.
--
-- Prints, per step, the mean fidelity to |0..0> (F0) and the fidelity-kernel MMD to a
-- Haar ensemble, D = F̄(A,A) + F̄(B,B) − 2F̄(A,B); S_T must be Haar-like (MMD at the level
-- of two independent Haar sets). Writes forward.npy (T+1, N, 2^n) — the shape of the
-- reference code's data — and run.json with the metrics.
--
--   qd examples/01_quddpm_forward.lua [--n 2] [--N 100] [--T 20] [--seed 1] [--out DIR] [--small]
local qd = require "qd"
local cli = require "qd.cli"
local record = require "qd.record"

local opts = cli.parse(arg, {
  name = "01_quddpm_forward",
  about = "QuDDPM forward diffusion of clustered states towards Haar (protocols.md §1).",
  options = {
    { "n", 2, "data qubits (1 or 2 in the paper's cluster tasks; any n >= 1 works)" },
    { "N", 100, "ensemble size" },
    { "T", 20, "diffusion steps" },
    { "seed", 1, "seed of every random draw" },
    { "out", "", "run directory (default runs/01_quddpm_forward-<time>)" },
    { "small", false, "small settings for tests (N = 32, T = 8)" },
    { "quiet", false, "print only the summary" },
  },
})
if opts.small then opts.N, opts.T = 32, 8 end
local n, N, T = opts.n, opts.N, opts.T
if n < 1 or N < 2 or T < 1 then
  io.stderr:write("qd: need --n >= 1, --N >= 2, --T >= 1\n")
  os.exit(2)
end

local rng = qd.rng(opts.seed)
local eps = n == 1 and 0.08 or 0.06
local h_from = n == 1 and 1.0 or 0.5

-- the schedule h_s = linspace(h_from, 4, T)
local h = {}
for s = 1, T do h[s] = T == 1 and 4.0 or h_from + (4.0 - h_from) * (s - 1) / (T - 1) end

-- target ensemble: |0> + eps * complex-normal tail, normalised
local members = {}
local dim = 1 << n
for k = 1, N do
  local amps = { { 1, 0 } }
  for j = 2, dim do
    amps[j] = { eps * rng:normal() / math.sqrt(2), eps * rng:normal() / math.sqrt(2) }
  end
  members[k] = qd.state.from(amps):normalize()
end
local E = qd.ensemble.from(members)
local haar = qd.ensemble.haar(n, N, rng)
local zero = qd.state(n)

local function mmd(A, B)
  return A:overlaps():mean() + B:overlaps():mean() - 2 * A:overlaps(B):mean()
end

local sets = { E:copy() }
local rec = record.open(opts.out, {
  name = "01_quddpm_forward", seed = opts.seed,
  settings = { n = n, N = N, T = T, eps = eps, schedule = h, small = opts.small },
})
local f0, mmds = {}, {}
local t0 = qd.clock()
local pi8 = math.pi / 8
for s = 1, T do
  for q = 0, n - 1 do
    E:rz(q, rng:uniform(-pi8 * h[s], pi8 * h[s], N))
     :ry(q, rng:uniform(-pi8 * h[s], pi8 * h[s], N))
     :rz(q, rng:uniform(-pi8 * h[s], pi8 * h[s], N))
  end
  if n >= 2 then
    -- one g per member per step, shared by every pair
    local g = rng:uniform(0.4 * h[s], 0.6 * h[s], N)
    local angle = qd.vector(N)
    for k = 1, N do angle[k] = g[k] / (2 * math.sqrt(n)) end
    for i = 0, n - 2 do
      for j = i + 1, n - 1 do E:rzz(i, j, angle) end
    end
  end
  sets[#sets + 1] = E:copy()
  f0[s] = E:fidelities(zero):mean()
  mmds[s] = mmd(E, haar)
  if not opts.quiet then
    print(string.format("step %2d/%d  h = %.3f  F0 = %.4f  MMD(S_t, Haar) = %.5f", s, T, h[s], f0[s], mmds[s]))
  end
end
local elapsed = qd.clock() - t0

-- reference level: MMD between two independent Haar sets of the same size
local haar2 = qd.ensemble.haar(n, N, rng)
local floor = mmd(haar, haar2)
local F0_start = sets[1]:fidelities(zero):mean()

qd.save_ensembles(rec:path("forward.npy"), sets)
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
