-- qcbm_bench.lua — qd's side of bench/qcbm_bench.sh: the QCBM concentration study at one n
-- (qcbm.variance: six losses and dL/dtheta_1 per init, ry_rz_cz(n, L), GHZ-like target),
-- timed per init, and the inits written for the Python side (thetas_nNN.npy, K x P) next to
-- qd's values (DIR/qd_nNN/values_nNN.npy).
--   qd --threads 1 bench/qcbm_bench.lua N K DIR [L] [grad]     (REPS=3: the minimum of 3 runs)
local qd = require "qd"
local qcbm = require "qd.protocols.qcbm"
local n, K, dir = math.tointeger(tonumber(arg[1])), math.tointeger(tonumber(arg[2])), arg[3]
local L, grad = math.tointeger(tonumber(arg[4] or "2")), arg[5] or "shift"
if not (n and K and dir and L) then
  io.stderr:write("usage: qd bench/qcbm_bench.lua N K DIR [L] [shift|adjoint]\n")
  os.exit(2)
end
local P = qcbm.ansatz("ry_rz_cz", n, L):nparams()
local T = qd.matrix(K, P)
for k = 1, K do
  local th = qcbm.variance_theta(1, n, k, P)
  for i = 1, P do T:set(k, i, th[i]) end
end
T:save_npy(string.format("%s/thetas_n%02d.npy", dir, n))
-- the minimum over REPS runs (environment, default 3): the machine may be shared
local reps = math.tointeger(tonumber(os.getenv("REPS") or "3")) or 3
local best = math.huge
for r = 1, reps do
  local out = string.format("%s/qd_n%02d", dir, n)
  os.execute("rm -rf '" .. out .. "'")
  local res = qcbm.variance { n = { n }, K = K, L = L, seed = 1, grad = grad, quiet = true, out = out }
  best = math.min(best, res.timing.seconds_per_n[1] / K)
end
print(string.format("RESULT impl=qd-%s n=%d K=%d seconds_per_init=%.6g threads=%d reps=%d", grad, n, K,
  best, qd.threads(), reps))
