-- bench/qgdm_bench.lua — the qd side of the QGDM / RE-QGDM comparison with PyTorch
-- (bench/qgdm_bench.sh runs it; bench/qgdm_torch.py is the other side).
--
--   qd --threads TH bench/qgdm_bench.lua DIR CASE K REPS dump|time [TAG]
--
-- CASE: n2 (n = 2, L = 6, T = 10, na = 2, QGDM), n4 (n = 4, L = 10, T = 10, na = 4, QGDM),
-- re8 (n = 8, L = 4, T = 6, na = 1, blocks = 3, RE-QGDM). Targets: qgdm.target("mixed", n,
-- qgdm.stream(1, "target"), {rank = 2}) for n2 / n4 (rank-deficient: the t = 1 term is the
-- rank-deficient Uhlmann case), "pure" for re8 (examples/re_qgdm.lua's default). Schedule
-- qd.schedule.linear{T, from = 1e-4, to = 0.5}, lr 0.02, seed 1, the protocol's defaults
-- otherwise (infidelity loss, chain training, angle time encoding, global forward).
--
-- "dump" (once per case) writes DIR/CASE/: settings.json, target.npy, theta0.npy (the
-- protocol's initial theta, drawn as init_theta in qgdm.lua does), grad0.npy (qd's dL/dtheta
-- at theta0, P.loss_grad), and, when K > 0, losses.npy (the K per-iteration losses of
-- qgdm.run{iterations = K}), thetaK.npy (its final theta), gradK.npy and the loss at thetaK
-- (in results.json, with the loss at theta0).
-- "time" writes DIR/CASE/qd_TAG.json (TAG: e.g. t1 for --threads 1) the times: REPS x P.loss_grad at theta0 (one
-- iteration's loss and gradient) and, when K > 0, REPS x a whole qgdm.run of K iterations
-- (quiet = true, save_data = false; run directory under DIR, removed afterwards).
local qgdm = require "qd.protocols.qgdm"
local P = qgdm.pieces

local usage = "usage: qd [--threads TH] bench/qgdm_bench.lua DIR n2|n4|re8 K REPS [dump|time]"
local dir, case = assert(arg[1], usage), assert(arg[2], usage)
local K, REPS = math.tointeger(tonumber(arg[3] or "0")), math.tointeger(tonumber(arg[4] or "1"))
local mode = arg[5] or "time"
assert(K and REPS and (mode == "dump" or mode == "time"), usage)

local cases = {
  n2 = { n = 2, L = 6, T = 10, na = 2, blocks = 1, kind = "mixed" },
  n4 = { n = 4, L = 10, T = 10, na = 4, blocks = 1, kind = "mixed" },
  re8 = { n = 8, L = 4, T = 6, na = 1, blocks = 3, kind = "pure" },
}
local cs = assert(cases[case], usage)
local seed = 1
local cdir = dir .. "/" .. case
os.execute("mkdir -p '" .. cdir .. "'")

local function config(iterations, out)
  return {
    name = "qgdm-bench", seed = seed,
    target = qgdm.target(cs.kind, cs.n, qgdm.stream(seed, "target"), { rank = 2 }),
    schedule = qd.schedule.linear { T = cs.T, from = 1e-4, to = 0.5 },
    L = cs.L, na = cs.na, blocks = cs.blocks, lr = 0.02, iterations = math.max(iterations, 1),
    quiet = true, save_data = false, out = out,
  }
end

local c = P.check(config(1))
local R = P.model(c)
-- the initial theta exactly as qgdm.lua's init_theta draws it
local theta0 = qd.vector(R.P)
do
  local v = qd.rng(c.seed):substream(qgdm.keys.init):normal(0, c.init_scale, R.P)
  for i = 1, R.P do theta0[i] = v[i] end
end

local function g17(x) return string.format("%.17g", x) end
local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end
local function median(t)
  local s = {}
  for i = 1, #t do s[i] = t[i] end
  table.sort(s)
  local m = #s // 2
  return #s % 2 == 1 and s[m + 1] or 0.5 * (s[m] + s[m + 1])
end
local function list(t)
  local o = {}
  for i = 1, #t do o[i] = g17(t[i]) end
  return "[" .. table.concat(o, ", ") .. "]"
end
local function loadavg()
  local f = io.open("/proc/loadavg")
  if not f then return "?" end
  local s = f:read("l")
  f:close()
  return s:match("^(%S+ %S+ %S+)") or "?"
end

local run_no = 0
local function run_qgdm(iterations)
  run_no = run_no + 1
  local out = string.format("%s/run_%s_%d_%d", dir, case, os.time(), run_no)
  local t0, c0 = qd.clock(), os.clock()
  local res = qgdm.run(config(iterations, out))
  local dt, dc = qd.clock() - t0, os.clock() - c0
  os.execute("rm -rf '" .. out .. "'")
  return res, dt, dc
end

if mode == "dump" then
  c.target:save_npy(cdir .. "/target.npy")
  theta0:save_npy(cdir .. "/theta0.npy")
  local L0, g0 = P.loss_grad(R, theta0)
  g0:save_npy(cdir .. "/grad0.npy")
  local betas = c.schedule:totable().values
  write(cdir .. "/settings.json", string.format(
    '{"case": "%s", "n": %d, "na": %d, "nt": %d, "N": %d, "L": %d, "T": %d, "blocks": %d, ' ..
    '"nparams": %d, "lr": %s, "seed": %d, "target": "%s", "K": %d, "betas": %s}\n',
    case, c.n, c.na, c.nt, c.N, c.L, c.T, c.blocks, R.P, g17(c.lr), seed, cs.kind, K, list(betas)))
  local extra = ""
  if K > 0 then
    local res = run_qgdm(K)
    local losses = qd.vector(#res.losses)
    for i = 1, #res.losses do losses[i] = res.losses[i] end
    losses:save_npy(cdir .. "/losses.npy")
    res.params:save_npy(cdir .. "/thetaK.npy")
    local LK, gK = P.loss_grad(R, res.params)
    gK:save_npy(cdir .. "/gradK.npy")
    extra = string.format(', "lossK": %s, "fidelityK": %s', g17(LK), g17(res.metrics.fidelity))
  end
  write(cdir .. "/results.json", string.format('{"loss0": %s%s}\n', g17(L0), extra))
  print(string.format("qd %s: %d parameters, loss(theta0) = %.15g%s", case, R.P, L0,
    K > 0 and string.format(", %d Adam iterations written", K) or ""))
  return
end

-- mode "time": REPS x (loss + gradient at theta0), REPS x whole run of K iterations
local threads = qd.threads and qd.threads() or nil
local it_times, run_times, it_cpu, run_cpu = {}, {}, {}, {}
local load0 = loadavg()
for r = 1, REPS do
  local t0, c0 = qd.clock(), os.clock()
  P.loss_grad(R, theta0)
  it_times[r], it_cpu[r] = qd.clock() - t0, os.clock() - c0
end
if K > 0 then
  for r = 1, REPS do
    local _, dt, dc = run_qgdm(K)
    run_times[r], run_cpu[r] = dt, dc
  end
end
local load1 = loadavg()
local tag = arg[6] or "?"
local path = string.format("%s/qd_%s.json", cdir, tag)
write(path, string.format('{"iteration": %s, "run": %s, "iteration_cpu": %s, "run_cpu": %s, "K": %d, ' ..
  '"threads": "%s", "load_before": "%s", "load_after": "%s"}\n',
  list(it_times), list(run_times), list(it_cpu), list(run_cpu), K, tostring(threads or tag), load0, load1))
local function short(t)
  local o = {}
  for i = 1, #t do o[i] = string.format("%.4g", t[i]) end
  return table.concat(o, ", ")
end
print(string.format("qd %s [%s]: loss+grad %.4g s wall, %.4g s CPU (median of %d: %s)%s   load %s -> %s", case, tag,
  median(it_times), median(it_cpu), REPS, short(it_times),
  K > 0 and string.format("; run of %d iterations %.4g s wall, %.4g s CPU (median of %d: %s)", K,
    median(run_times), median(run_cpu), REPS, short(run_times)) or "",
  load0, load1))
