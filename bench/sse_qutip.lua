-- sse_qutip.lua — the qd side of the stochastic Schroedinger equation benchmark against
-- QuTiP's ssesolve (run by bench/noise.sh as `qd --threads T bench/sse_qutip.lua DIR T`).
--
-- The problem (DIR/sse_params.txt, written by `sse_qutip.py gen DIR`): n = 4 qubits from
-- |0000>, H = -J sum Z_i Z_{i+1} - g sum X_i (open chain), the observable A = sum_i Z_i
-- measured continuously at rate gamma (diffusive/homodyne unravelling, Ito), N = 1000
-- trajectories x 1000 Euler-Maruyama steps of dt, renormalised after every step, the
-- trajectory mean of <A> tracked at every step (as QuTiP's e_ops does); measurement records
-- not kept (QuTiP: store_measurement=False).
-- Timed: the whole qd.sse call on a fresh ensemble (min over repeats; the same seed, so
-- every repeat computes the same thing). Written: DIR/qd_sse_mean_t<T>.npy (the mean of <A>
-- at the steps + 1 times), DIR/qd_sse_final_t<T>.npy (each trajectory's final <A>) and
-- DIR/qd_sse_times_t<T>.txt; `sse_qutip.py run` compares them with QuTiP.
local dir = assert(arg[1], "usage: qd --threads T bench/sse_qutip.lua DIR TAG")
local tag = arg[2] or tostring(qd.threads())

local P = {}
for line in assert(io.lines(dir .. "/sse_params.txt")) do
  local k, v = line:match("^(%S+)%s+(%S+)$")
  P[k] = tonumber(v)
end
local n, N, steps = math.tointeger(P.n), math.tointeger(P.N), math.tointeger(P.steps)

local H = qd.pauli_sum.tfim(n, P.g, {J = P.J})
local terms = {}
for q = 0, n - 1 do terms[#terms + 1] = {1, "Z", {q}} end
local A = qd.pauli_sum(terms, {n = n})

local function run()
  local E = qd.ensemble(n, N)
  local t0 = qd.clock()
  local r = qd.sse(E, {dt = P.dt, steps = steps, H = H, measure = {A}, gamma = P.gamma,
                       scheme = "euler", rng = qd.rng(math.tointeger(P.seed)), record = false,
                       observe = {A}})
  return qd.clock() - t0, E, r
end

local best, reps, spent = math.huge, 0, 0
local E, r
while reps < 3 or (reps < 20 and spent < 3.0) do
  local t
  t, E, r = run()
  best, spent, reps = math.min(best, t), spent + t, reps + 1
end

r.observed:save_npy(string.format("%s/qd_sse_mean_t%s.npy", dir, tag))
A:expect(E):save_npy(string.format("%s/qd_sse_final_t%s.npy", dir, tag))
local f = assert(io.open(string.format("%s/qd_sse_times_t%s.txt", dir, tag), "w"))
f:write(string.format("sse %.9e %d\n", best, reps))
f:close()
print(string.format("  qd %s, %d thread%s, OMP_WAIT_POLICY=%s: qd.sse %d trajectories x %d steps"
                    .. "  %9.1f ms  (min of %d)", qd.version, qd.threads(),
                    qd.threads() > 1 and "s" or "", os.getenv("OMP_WAIT_POLICY") or "unset", N,
                    steps, best * 1e3, reps))
