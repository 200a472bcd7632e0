-- batched_step.lua — the qd side of the batched diffusion-training-shaped steps
-- (run by bench/run.sh as `build/qd bench/batched_step.lua DIR MODE LABEL`).
--
-- 100 states x 8 qubits through 10 layers of RY on every qubit, RZ on every qubit and a CZ
-- ladder cz(0,1) ... cz(6,7), then the 100 x 100 fidelity matrix |<psi_i|psi_j>|^2
-- (E:overlaps(): for an ensemble with itself only the pairs j >= i; 8-qubit states go through
-- qd's direct SIMD kernel, not BLAS, so the BLAS core does not matter for this step).
--   MODE shared   the training step: one angle per gate for the whole batch, written the
--                 natural qd way: c = qd.ansatz.ry_rz_cz(8, 10); out = c:run(E, theta);
--                 out:overlaps()  (theta: the 160 circuit parameters, DIR/theta.npy)
--   MODE member   the QuDDPM forward-process shape: one angle per gate and member, one C
--                 call per gate for all members (E:ry(q, v), E:rz(q, v) with a qd.Vector of
--                 100 angles, E:cz(q, q+1)); angles from DIR/ry.npy, DIR/rz.npy (80 x 100,
--                 row = layer*8 + qubit)
-- Inputs come from numpy (`batched_step.py gen`); the fidelity matrices go to
-- DIR/F_MODE_LABEL.npy (1 thread) and DIR/F2_MODE_LABEL.npy (2 threads), the timings (min
-- over repeats, seconds), the BLAS core and the thread checks to DIR/times_MODE_LABEL.txt,
-- for `batched_step.py run DIR MODE LABEL...`. The step is timed with 1 and 2 threads; the
-- final ensembles and the fidelity matrices of the two are compared bitwise (reported here,
-- judged by batched_step.py).
local dir, mode = arg[1], arg[2]
assert(dir and (mode == "shared" or mode == "member"),
       "usage: qd bench/batched_step.lua DIR shared|member [LABEL]")
local label = arg[3] or "qd"
local LAYERS, NQ = 10, 8

local E0 = assert(qd.load_npy(dir .. "/psi0.npy", "ensemble"))
local N = E0.N
assert(E0.n == NQ and N == 100, "psi0.npy: 100 states of 8 qubits expected")

local step
if mode == "shared" then
  local c = qd.ansatz.ry_rz_cz(NQ, LAYERS)
  local theta = assert(qd.load_npy(dir .. "/theta.npy", "vector"))
  assert(#theta == c:nparams(), "theta.npy: " .. c:nparams() .. " angles expected")
  step = function()
    local out = c:run(E0, theta)
    return out, out:overlaps()
  end
else
  local RY = assert(qd.load_npy(dir .. "/ry.npy", "matrix"))
  local RZ = assert(qd.load_npy(dir .. "/rz.npy", "matrix"))
  -- per-gate angle vectors (row layer*8 + q of the (80, 100) matrices), made once
  local function rows(M)
    local out = {}
    for r = 1, LAYERS * NQ do
      local t = {}
      for j = 1, N do t[j] = M:get(r, j) end
      out[r] = qd.vector(t)
    end
    return out
  end
  local ry, rz = rows(RY), rows(RZ)
  step = function()
    local E = E0:copy()
    for l = 0, LAYERS - 1 do
      for q = 0, NQ - 1 do
        E:ry(q, ry[l * NQ + q + 1])
        E:rz(q, rz[l * NQ + q + 1])
      end
      for q = 0, NQ - 2 do
        E:cz(q, q + 1)
      end
    end
    return E, E:overlaps()
  end
end

-- min over repeats: at least 20, then until ~1 s has passed (at most 2000); the GC runs
-- inside the timed region as it would in a training loop
local function best_time(fn)
  fn()
  local best, reps, start = math.huge, 0, qd.clock()
  while reps < 20 or (reps < 2000 and qd.clock() - start < 1.0) do
    local t0 = qd.clock()
    fn()
    local t = qd.clock() - t0
    if t < best then best = t end
    reps = reps + 1
  end
  return best, reps
end

local saved = qd.threads()
local times, results = {}, {}
for _, thr in ipairs{1, 2} do
  qd.set_threads(thr)
  times[thr], results[thr] = {best_time(step)}, {step()}
  collectgarbage()
end
qd.set_threads(saved)

-- bitwise identity of the final ensembles and of the fidelity matrices
local function same_ensemble(A, B)
  for k = 1, N do
    local a, b = A[k]:totable(), B[k]:totable()
    for i = 1, #a do
      if a[i][1] ~= b[i][1] or a[i][2] ~= b[i][2] then return false end
    end
  end
  return true
end
local function same_matrix(A, B)
  local r, c = A:shape()
  for i = 1, r do
    for j = 1, c do
      if A:get(i, j) ~= B:get(i, j) then return false end
    end
  end
  return true
end
local same_E = same_ensemble(results[1][1], results[2][1])
local same_F = same_matrix(results[1][2], results[2][2])
local maxdF = 0
do
  local r, c = results[1][2]:shape()
  for i = 1, r do
    for j = 1, c do
      maxdF = math.max(maxdF, math.abs(results[1][2]:get(i, j) - results[2][2]:get(i, j)))
    end
  end
end

local core = qd.blas_info():match("core: ([%w_]+)") or "?"
local tag = mode .. "_" .. label
results[1][2]:save_npy(dir .. "/F_" .. tag .. ".npy")
results[2][2]:save_npy(dir .. "/F2_" .. tag .. ".npy")
local f = assert(io.open(dir .. "/times_" .. tag .. ".txt", "w"))
f:write(string.format("t1 %.9e\nt2 %.9e\nreps1 %d\nreps2 %d\nsameE %d\nsameF %d\nmaxdF %.3e\ncore %s\n",
                      times[1][1], times[2][1], times[1][2], times[2][2], same_E and 1 or 0,
                      same_F and 1 or 0, maxdF, core))
f:close()

print(string.format("  qd %s, BLAS core %s (OPENBLAS_CORETYPE=%s)", qd.version, core,
                    os.getenv("OPENBLAS_CORETYPE") or "unset"))
for _, thr in ipairs{1, 2} do
  print(string.format("  qd %s step, %d thread%s  %9.3f ms  (min of %d)", mode, thr,
                      thr > 1 and "s" or " ", times[thr][1] * 1e3, times[thr][2]))
end
print("  final ensembles bitwise identical with 1 and 2 threads: " .. (same_E and "yes" or "NO"))
print("  fidelity matrices (direct kernel) bitwise identical with 1 and 2 threads: " ..
      (same_F and "yes" or string.format("NO (max |difference| %.1e)", maxdF)))
