-- test_simd.lua — the kernel sets (qd.simd, runtime/core/qd_isa.h): switching, errors, and the
-- promise that every set this CPU runs gives the same bits. One workload touching each
-- kernel family (fused circuit runs in and above the lane-sweep range, the adjoint with and
-- without measurements, overlaps, MMD and Wasserstein with gradients, dense gates on a big
-- state, channels on a density matrix, SSE trajectories) runs under each set; every result
-- is written as .npy and compared byte for byte, every scalar with ==.
local T = require "testlib"

local runnable, built, cpu = qd.simd_sets()
local start = qd.simd()

T.test("simd: names and switching", function()
  T.eq(type(start), "string")
  T.ok(#runnable >= 1 and runnable[1] == (built[1]), "the first built set is always runnable")
  local forced = os.getenv("QD_SIMD")
  if not forced or forced == "" or forced == "auto" then
    T.eq(runnable[#runnable], start, "the best runnable set is used unless QD_SIMD forces one")
  else
    T.eq(start, forced, "QD_SIMD forces the set")
  end
  T.eq(type(cpu), "string")
  for _, s in ipairs(runnable) do
    qd.set_simd(s)
    T.eq(qd.simd(), s, "set_simd " .. s)
  end
  qd.set_simd(start)
  T.raises(function() qd.set_simd("sse9") end, "no kernel set 'sse9' in this build")
  T.raises(function() qd.set_simd() end, "string expected")
  T.raises(function() qd.set_simd("avx2", 1) end, "")
  for _, s in ipairs(built) do
    local ok = false
    for _, r in ipairs(runnable) do ok = ok or r == s end
    if not ok then
      T.raises(function() qd.set_simd(s) end, "this CPU cannot run the kernel set '" .. s .. "'")
    end
  end
  T.eq(qd.simd(), start, "a refused switch changes nothing")
end)

local tmp = os.tmpname()
os.remove(tmp)

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  os.remove(path)
  return s
end

-- the workload; returns {name = bytes or number}
local function workload()
  local out = {}
  local rng = qd.rng(2026)
  local function keep(name, obj)
    local path = tmp .. "-" .. name .. ".npy"
    obj:save_npy(path)
    out[name] = read(path)
  end
  local function rand_theta(k)
    local v = qd.vector(k)
    for i = 1, k do v[i] = 2 * math.pi * rng:uniform() - math.pi end
    return v
  end
  -- fused runs and the adjoint with an MMD loss: 2, 3 and 6 qubits (lane sweeps), 12 (per pass)
  for _, n in ipairs { 2, 3, 6, 12 } do
    local N = n == 12 and 3 or 13
    local c = qd.ansatz.ry_rz_cz(n, 3)
    local th = rand_theta(c:nparams())
    local E = qd.ensemble.haar(n, N, rng)
    local target = qd.ensemble.haar(n, N, rng)
    local o = c:run(E, th)
    keep("run" .. n, o)
    keep("overlaps" .. n, o:overlaps())
    local L, g = c:grad(E, th, function(x)
      local v, GA = qd.loss.mmd(x, target, { grad = true })
      return v, GA
    end)
    out["mmd" .. n] = L
    keep("grad" .. n, g)
  end
  -- QuDDPM's shape: ancilla, measurement with sampled outcomes, Wasserstein loss
  do
    local c = qd.ansatz.quddpm(1, 4, { ancillas = 2 })
    local th = rand_theta(c:nparams())
    local E = qd.ensemble.haar(1, 20, rng):embed(2)
    local target = qd.ensemble.haar(1, 20, rng)
    local L, g, o = c:grad(E, th, function(x)
      local v, _, GA = qd.loss.wasserstein(x, target, { grad = true })
      return v, GA
    end, { rng = qd.rng(77) })
    out.wass = L
    keep("wass_grad", g)
    keep("wass_out", o)
  end
  -- dense gates on a 16-qubit state, every bit class (low, mid, high), 1 and 2 qubits
  do
    local s = qd.haar_state(16, rng)
    for q = 0, 15 do s:h(q):ry(q, 0.1 * q + 0.3):rz(q, 0.7 - 0.05 * q) end
    s:cx(0, 15):cx(15, 1):rxx(3, 4, 0.4):cp(2, 14, 0.9):swap(5, 11)
    s:u(15, 0.3, 0.5, 0.7):u(14, 1.1, -0.4, 0.2):crx(15, 14, 0.8):rzz(0, 15, 0.6)
    keep("state16", s)
  end
  -- channels on a 6-qubit density matrix
  do
    local rho = qd.dm(qd.haar_state(6, rng))
    rho:apply(qd.channel.depolarizing { p = 0.1 }, { 0 })
    rho:apply(qd.channel.depolarizing { p = 0.05, n = 2 }, { 2, 5 })
    rho:apply(qd.channel.amplitude_damping { gamma = 0.2 }, { 5 })
    rho:apply(qd.channel.dephasing { p = 0.3 }, { 3 })
    rho:h(1):cx(1, 4):ry(4, 0.3)
    keep("dm6", rho)
  end
  -- SSE trajectories
  do
    local H = qd.pauli_sum { { 0.9, "XI" }, { 0.5, "ZZ" } }
    local E = qd.ensemble(2, 50)
    local res = qd.sse(E, { H = H, measure = { "ZI", "IX" }, gamma = { 0.6, 0.4 }, dt = 0.01,
                            steps = 40, rng = qd.rng(11) })
    keep("sse_state", E)
    keep("sse_rec", res.records[1])
  end
  return out
end

T.test("simd: every kernel set gives the same bits", function()
  local ref = nil
  local refname = nil
  for _, s in ipairs(runnable) do
    qd.set_simd(s)
    local r = workload()
    if not ref then
      ref, refname = r, s
    else
      local names = {}
      for k in pairs(ref) do names[#names + 1] = k end
      table.sort(names)
      for _, k in ipairs(names) do
        T.ok(r[k] == ref[k], string.format("%s: %s and %s differ", k, refname, s))
      end
    end
  end
  qd.set_simd(start)
  if #runnable < 2 then
    T.ok(true, "only one kernel set runs on this CPU: nothing to compare")
  end
end)
