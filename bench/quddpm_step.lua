-- quddpm_step.lua — the qd side of the QuDDPM training-iteration benchmark
-- (run by bench/quddpm_step.sh as `build/qd --threads T bench/quddpm_step.lua DIR SETTING`).
--
-- One training iteration of one QuDDPM backward step (arXiv 2310.05866):
--   X = inputs with the ancillas in |0> as the most significant qubits (E:embed(na)),
--   U(theta) = qd.ansatz.quddpm(n, L, {ancillas = na}) (RX, RY on every qubit, CZ on even
--   then odd pairs, L layers; ancillas measured and discarded at the end), an outcome per
--   member, the normalised post-measurement data states, the loss against N targets, the
--   adjoint gradient with the outcomes held fixed (c:grad), one Adam step (qd.optim.adam).
--
-- Settings:
--   mmd     n = 2, n_A = 1, L = 6, N = 100, fidelity-kernel MMD (qd.loss.mmd); targets: S_10
--           of the cluster-2 forward process (clustered eps = 0.06, linspace(0.5, 4, 20))
--   circle  n = 1, n_A = 2, L = 6, N = 100, exact Wasserstein, cost 1 - |<a|b>|^2
--           (qd.loss.wasserstein, assignment); targets: S_20 of the circle forward process
--           (schedule 1e-3 s^2, T = 40)
-- Inputs: N Haar states; theta ~ N(0, 1); all from fixed seeds, so every run (any thread
-- count) makes the same inputs. They are written to DIR/SETTING_{X,targets,theta,outcomes}.npy
-- for quddpm_step_torch.py, with the outcomes sampled by c:run from those inputs.
--
-- Check (same inputs, the written outcomes passed as outcomes=): the loss, dL/dtheta, the
-- generated ensemble and theta after one Adam step go to DIR/SETTING_qd_tT_*.npy (T = the
-- thread count) for the torch script to compare to 1e-10.
--
-- Timing: one iteration = theta <- theta0, then c:grad + loss + one Adam step (the Adam
-- state carries on, so every step is an ordinary, not a first, Adam step). Resetting theta
-- makes every timed iteration the same problem on both sides: the circuit work does not
-- depend on theta, but the assignment solver's does (random theta0 ~ N(0, 1) is the start of
-- a step's training). After a warm-up, REPEATS batches of BATCH iterations, each iteration
-- timed on its own; the figure is the minimum over batches of the batch median.
-- Two modes: "fixed" (outcomes = the written ones: exactly the torch computation) and
-- "sampled" (fresh outcomes every iteration from an rng, as training does).
-- Result lines go to DIR/SETTING_qd_tT_times.txt; when the file exists (an earlier round of
-- quddpm_step.sh) the minimum of the old and new figures is kept.
local dir = assert(arg[1], "usage: qd [--threads T] bench/quddpm_step.lua DIR mmd|circle")
local setting = assert(arg[2], "usage: qd [--threads T] bench/quddpm_step.lua DIR mmd|circle")
local WARMUP, BATCH, REPEATS = 50, 100, tonumber(os.getenv("QD_BENCH_REPEATS") or "15")
local LR = 5e-3

local n, na, L, N, lossname
if setting == "mmd" then
  n, na, L, N, lossname = 2, 1, 6, 100, "mmd"
elseif setting == "circle" then
  n, na, L, N, lossname = 1, 2, 6, 100, "wasserstein"
else
  error("setting must be mmd or circle, got " .. tostring(setting))
end

-- ---------------------------------------------------------------- the same inputs every run
local root = qd.rng(20261126)
local c = qd.ansatz.quddpm(n, L, { ancillas = na })
local P = c:nparams()
local inputs = qd.ensemble.haar(n, N, root:substream(1))
local targets
if setting == "mmd" then
  local E0 = qd.data.clustered(n, N, root:substream(2), { eps = 0.06 })
  targets = qd.diffusion.forward(E0, qd.schedule.linear { T = 20, from = 0.5, to = 4 },
                                 root:substream(3))[11]          -- S_10
else
  local E0 = qd.data.circle(N, root:substream(2))
  targets = qd.diffusion.forward(E0, qd.schedule.quadratic { T = 40, scale = 1e-3 },
                                 root:substream(3))[21]          -- S_20
end
local theta0 = root:substream(4):normal(0, 1, P)
local X = inputs:embed(na)
local _, outcomes = c:run(X, theta0, { rng = root:substream(5) })

local pre = dir .. "/" .. setting .. "_"
X:save_npy(pre .. "X.npy")
targets:save_npy(pre .. "targets.npy")
theta0:save_npy(pre .. "theta.npy")
outcomes:save_npy(pre .. "outcomes.npy")

-- ---------------------------------------------------------------- the iteration
local lopt = { grad = true }
local lossfn
if lossname == "mmd" then
  lossfn = function(out) local v, G = qd.loss.mmd(out, targets, lopt) return v, G end
else
  -- plan = false: the N x N plan matrix is not built (the loop never reads it; torch's
  -- side gets index arrays from scipy's linear_sum_assignment), as qd.protocols.quddpm does
  lopt.plan = false
  lossfn = function(out) local v, _, G = qd.loss.wasserstein(out, targets, lopt) return v, G end
end

local gopt                       -- options of c:grad, set per mode
local last = {}
local function feval(p)
  local l, g, out = c:grad(X, p, lossfn, gopt)
  last.loss, last.grad, last.out = l, g, out
  return l, g
end
local function iteration(theta, state)
  qd.optim.adam(feval, theta, state)
end
local function timed_iteration(state)
  iteration(theta0:copy(), state)
end

-- ---------------------------------------------------------------- check output (fixed outcomes)
local thr = qd.threads()
gopt = { outcomes = outcomes }
local theta = theta0:copy()
iteration(theta, { lr = LR })
local tag = string.format("%sqd_t%d_", pre, thr)
qd.vector { last.loss }:save_npy(tag .. "loss.npy")
last.grad:save_npy(tag .. "grad.npy")
last.out:save_npy(tag .. "out.npy")
theta:save_npy(tag .. "theta1.npy")
local check_loss = last.loss

-- ---------------------------------------------------------------- timing
local function median(t)
  table.sort(t)
  local m = #t
  if m % 2 == 1 then return t[(m + 1) // 2] end
  return 0.5 * (t[m // 2] + t[m // 2 + 1])
end

local function bench(opts)
  gopt = opts
  local state = { lr = LR }
  for _ = 1, WARMUP do timed_iteration(state) end
  local best, ts = math.huge, {}
  for _ = 1, REPEATS do
    for i = 1, BATCH do
      local t0 = qd.clock()
      timed_iteration(state)
      ts[i] = qd.clock() - t0
    end
    local m = median(ts)
    if m < best then best = m end
  end
  return best
end

collectgarbage()
local t_fixed = bench { outcomes = outcomes }
local t_sampled = bench { rng = qd.rng(7) }

-- ---------------------------------------------------------------- trajectory
-- K consecutive real training iterations from theta0 (theta advancing with Adam, fresh Adam
-- state), as training does. Two kinds of per-iteration ancilla outcomes, both fixed
-- beforehand and written for torch, so both sides follow the same trajectory:
--   "sampled": outcomes sampled once by qd along the trajectory (c:grad with an rng at each
--              iterate theta_k, rng substream k), as training does (a fresh draw per epoch);
--   "held":    the written outcomes (DIR/SETTING_outcomes.npy) at every iteration, so the
--              generated states only drift with theta.
-- The Wasserstein loss keeps one warm table over the sequence (qd.loss.wasserstein{warm =
-- S}, as qd.protocols.quddpm does per candidate); "cold" is the same sequence without it
-- (its losses and final theta must be bitwise the same). Time = the whole sequence / K; the
-- figure is the minimum over TREPEATS sequences. Losses and the final theta go to
-- DIR/SETTING_qd_tT_traj{s,h}_{losses,theta}.npy.
local K = 200
local TREPEATS = tonumber(os.getenv("QD_BENCH_TRAJ_REPEATS") or "10")
local function trajectory(ocs, warm, losses)
  local theta, state = theta0:copy(), { lr = LR }
  lopt.warm = warm and {} or nil
  for k = 1, K do
    gopt.outcomes = ocs[k]
    local _, l = qd.optim.adam(feval, theta, state)
    if losses then losses[k] = l end
  end
  lopt.warm = nil
  return theta
end
local oc_s, oc_h = {}, {}
do   -- record the sampled outcomes: drawn at each iterate theta_k
  local rs = root:substream(6)
  local theta, state = theta0:copy(), { lr = LR }
  local g2 = {}
  gopt = g2
  local recfeval = function(p)
    g2.rng = rs:substream(#oc_s + 1)
    local l, g, _, oc = c:grad(X, p, lossfn, g2)
    oc_s[#oc_s + 1] = oc
    return l, g
  end
  for k = 1, K do
    qd.optim.adam(recfeval, theta, state)
    oc_h[k] = outcomes
  end
  assert(#oc_s == K)
end
gopt = {}
local Om = qd.matrix(K, N)
for k = 1, K do for i = 1, N do Om:set(k, i, oc_s[k]:get(i, 1)) end end
Om:save_npy(pre .. "traj_outcomes.npy")
local changed = 0
for k = 2, K do for i = 1, N do if Om:get(k, i) ~= Om:get(k - 1, i) then changed = changed + 1 end end end
local warm_on = lossname == "wasserstein"
local traj_same, traj_first, traj_last = true, {}, {}
for kind, ocs in pairs { s = oc_s, h = oc_h } do
  local tl_w, tl_c = {}, {}
  local th_w = trajectory(ocs, warm_on, tl_w)
  local th_c = trajectory(ocs, false, tl_c)
  for k = 1, K do if tl_w[k] ~= tl_c[k] then traj_same = false end end
  for i = 1, P do if th_w[i] ~= th_c[i] then traj_same = false end end
  qd.vector(tl_w):save_npy(tag .. "traj" .. kind .. "_losses.npy")
  th_w:save_npy(tag .. "traj" .. kind .. "_theta.npy")
  traj_first[kind], traj_last[kind] = tl_w[1], tl_w[K]
end
local function time_traj(ocs, warm)
  local best = math.huge
  trajectory(ocs, warm)   -- warm-up
  for _ = 1, TREPEATS do
    local t0 = qd.clock()
    trajectory(ocs, warm)
    local dt = (qd.clock() - t0) / K
    if dt < best then best = dt end
  end
  return best
end
collectgarbage()
local tt = {}
tt.trajs = time_traj(oc_s, warm_on)
tt.trajscold = warm_on and time_traj(oc_s, false) or tt.trajs
tt.trajh = time_traj(oc_h, warm_on)
tt.trajhcold = warm_on and time_traj(oc_h, false) or tt.trajh

-- several rounds (quddpm_step.sh runs qd and torch alternately): keep the best per mode
local fn, prev = tag .. "times.txt", {}
local pf = io.open(fn, "r")
if pf then
  for k, v in pf:read("a"):gmatch("(%w+) (%S+)") do prev[k] = tonumber(v) end
  pf:close()
end
local best_fixed = math.min(t_fixed, prev.fixed or math.huge)
local best_sampled = math.min(t_sampled, prev.sampled or math.huge)
local best_t = {}
for k, v in pairs(tt) do best_t[k] = math.min(v, prev[k] or math.huge) end
local rounds = (prev.rounds or 0) + 1
local f = assert(io.open(fn, "w"))
f:write(string.format("fixed %.9e\nsampled %.9e\nbatch %d\nrepeats %d\nthreads %d\nrounds %d\n",
                      best_fixed, best_sampled, BATCH, REPEATS, thr, rounds))
for _, k in ipairs { "trajs", "trajscold", "trajh", "trajhcold" } do
  f:write(string.format("%s %.9e\n", k, best_t[k]))
end
f:close()
print(string.format("  qd %s, %d thread%s: %s, n=%d n_A=%d L=%d N=%d, %d parameters; loss %.15g",
                    qd.version, thr, thr > 1 and "s" or "", lossname, n, na, L, N, P, check_loss))
print(string.format("  qd iteration  fixed outcomes %9.1f us   sampled outcomes %9.1f us   (min over %d batches of the median of %d)%s",
                    t_fixed * 1e6, t_sampled * 1e6, REPEATS, BATCH,
                    rounds > 1 and string.format("; best of %d rounds %.1f / %.1f us", rounds,
                                                 best_fixed * 1e6, best_sampled * 1e6) or ""))
for _, kind in ipairs { "s", "h" } do
  local key = "traj" .. kind
  print(string.format("  qd trajectory, %s outcomes (K = %d iterations from theta0, Adam)%s: %8.1f us per iteration%s; loss %.6g -> %.6g%s",
                      kind == "s" and "sampled" or "held", K, warm_on and ", warm assignment" or "",
                      tt[key] * 1e6,
                      warm_on and string.format(" (cold assignment %.1f us)", tt[key .. "cold"] * 1e6) or "",
                      traj_first[kind], traj_last[kind],
                      rounds > 1 and string.format("; best of %d rounds %.1f%s us", rounds, best_t[key] * 1e6,
                        warm_on and string.format(" / cold %.1f", best_t[key .. "cold"] * 1e6) or "") or ""))
end
print(string.format("  sampled outcomes: %.1f%% of the members change outcome between consecutive iterations",
                    100 * changed / ((K - 1) * N)))
if warm_on then
  print("  qd trajectories warm vs cold assignment: losses and final theta bitwise identical: "
        .. (traj_same and "yes" or "NO (FAIL)"))
end
if not traj_same then os.exit(1) end
