-- test_channel.lua — qd.Channel from Lua: every constructor against QuTiP reference data
-- (tests/data/qutip/channel_*.npy, made by tests/data/qutip/make_channel_refs.py: the
-- superoperator, the Choi matrix and the channel applied to a random 3-qubit density
-- matrix on given targets), composition and tensor conventions, conversions, the
-- structured depolarizing forms, trajectories on States and Ensembles (seeded, batch-size
-- and thread independent, averages converging to the density-matrix result within a
-- tolerance derived from the sample size) and every error message.
local T = require "testlib"

local DATA = (os.getenv("QD_TEST_DATA") or "tests/data") .. "/qutip/"
local function ref(name, kind) return assert(qd.load_npy(DATA .. "channel_" .. name .. ".npy", kind or "matrix")) end

-- max |A - B| over entries of two qd.Matrix (or DensityMatrix via :matrix())
local function mdiff(A, B)
  if qd.type(A) == "qd.DensityMatrix" then A = A:matrix() end
  if qd.type(B) == "qd.DensityMatrix" then B = B:matrix() end
  local ra, ca = A:shape()
  local rb, cb = B:shape()
  if ra ~= rb or ca ~= cb then return math.huge end
  local m = 0
  for i = 1, ra do
    for j = 1, ca do
      local x, y = A:get(i, j)
      local u, v = B:get(i, j)
      y, v = y or 0, v or 0
      m = math.max(m, math.abs(x - u), math.abs(y - v))
    end
  end
  return m
end

-- complex matrix product of two qd.Matrix (naive)
local function matmul(A, B)
  local n = A:shape()
  local C = qd.matrix(n, n, { complex = true })
  for i = 1, n do
    for j = 1, n do
      local sr, si = 0, 0
      for l = 1, n do
        local ar, ai = A:get(i, l)
        local br, bi = B:get(l, j)
        ai, bi = ai or 0, bi or 0
        sr, si = sr + ar * br - ai * bi, si + ar * bi + ai * br
      end
      C:set(i, j, { sr, si })
    end
  end
  return C
end

-- max |a_i - b_i| over the amplitudes of two States
local function sdiff(a, b)
  local m = 0
  for i = 1, #a do
    local x, y = a:amp(i)
    local u, v = b:amp(i)
    m = math.max(m, math.abs(x - u), math.abs(y - v))
  end
  return m
end

local rho3 = ref("rho3", "dm")
local TOL = 1e-12

-- name in the data files, constructor, targets on the 3-qubit state
local CASES = {
  { "depolarizing", function() return qd.channel.depolarizing { p = 0.3 } end, { 1 } },
  { "dephasing", function() return qd.channel.dephasing { p = 0.2 } end, { 1 } },
  { "amplitude_damping", function() return qd.channel.amplitude_damping { gamma = 0.35 } end, { 1 } },
  { "gad", function() return qd.channel.generalized_amplitude_damping { gamma = 0.35, p = 0.8 } end, { 2 } },
  { "pauli", function() return qd.channel.pauli { px = 0.1, py = 0.2, pz = 0.3 } end, { 0 } },
  { "reset", function() return qd.channel.reset {} end, { 1 } },
  { "unitary", function()
      local t = 0.7
      local c, s = math.cos(t / 2), math.sin(t / 2)
      -- [[cos t/2, -i e^{-0.4i} sin t/2], [-i e^{0.4i} sin t/2, cos t/2]]
      return qd.channel.unitary { { c, { s * math.sin(-0.4), -s * math.cos(-0.4) } },
                                  { { s * math.sin(0.4), -s * math.cos(0.4) }, c } }
    end, { 2 } },
  { "depolarizing2", function() return qd.channel.depolarizing { p = 0.4, n = 2 } end, { 2, 0 } },
  { "global2", function() return qd.channel.global_depolarizing { lambda = 0.6, n = 2 } end, { 0, 2 } },
  { "kraus2", function()
      local Q = ref("kraus2_ops")    -- 12 x 4: three 4 x 4 blocks stacked vertically
      local ops = {}
      for b = 0, 2 do
        local K = qd.matrix(4, 4, { complex = true })
        for i = 1, 4 do for j = 1, 4 do K:set(i, j, { Q:get(4 * b + i, j) }) end end
        ops[b + 1] = K
      end
      return qd.channel.kraus(ops)
    end, { 1, 0 } },
  { "rand1", function() return qd.channel.superop(ref("rand1_super")) end, { 0 } },
}

T.test("every channel vs QuTiP: superoperator, Choi, application", function()
  for _, c in ipairs(CASES) do
    local name, make, targets = c[1], c[2], c[3]
    local ch = make()
    T.eq(qd.type(ch), "qd.Channel", name)
    T.eq(ch.n, #targets, name .. " n")
    T.ok(mdiff(ch:superop(), ref(name .. "_super")) < TOL, name .. " superop vs QuTiP: " .. mdiff(ch:superop(), ref(name .. "_super")))
    T.ok(mdiff(ch:choi(), ref(name .. "_choi")) < TOL, name .. " choi vs QuTiP: " .. mdiff(ch:choi(), ref(name .. "_choi")))
    local rho = rho3:copy()
    T.eq(rho:apply(ch, targets), rho, name .. " apply returns the density matrix")
    T.ok(mdiff(rho, ref(name .. "_out")) < TOL, name .. " output vs QuTiP: " .. mdiff(rho, ref(name .. "_out")))
    -- the other spelling, ch:apply(rho, targets)
    local r2 = rho3:copy()
    ch:apply(r2, targets)
    T.ok(mdiff(r2, rho) == 0, name .. " ch:apply(rho) == rho:apply(ch)")
    T.near(rho:trace(), 1, 1e-13, name .. " trace preserved")
    -- the Kraus list rebuilds the same channel
    local again = qd.channel.kraus(ch:kraus())
    T.ok(mdiff(again:superop(), ch:superop()) < TOL, name .. " kraus(ch:kraus()) round trip")
    local ok, dev = ch:is_cptp()
    T.ok(ok and dev < 1e-12, name .. " is_cptp")
  end
end)

T.test("global depolarizing on the whole register and on chosen qubits", function()
  -- without n=: acts on whatever it is applied to (here all 3 qubits)
  local g = qd.channel.global_depolarizing { lambda = 0.45 }
  T.eq(g.n, nil, "register-wide channel has no fixed size")
  local rho = rho3:copy():apply(g)
  T.ok(mdiff(rho, ref("global3_out")) < TOL, "(1 - l) rho + l I/8 vs QuTiP")
  local m = qd.maximally_mixed(3):matrix()
  local want = rho3:matrix()
  for i = 1, 8 do for j = 1, 8 do
    local a, b = want:get(i, j)
    local x = m:get(i, j)
    want:set(i, j, { 0.55 * a + 0.45 * x, 0.55 * b })
  end end
  T.ok(mdiff(rho, want) < 1e-15, "formula")
  -- on targets: the same as the fixed-size channel
  local r2 = rho3:copy():apply(g, { 0, 2 })
  local r3 = rho3:copy():apply(qd.channel.global_depolarizing { lambda = 0.45, n = 2 }, { 0, 2 })
  T.ok(mdiff(r2, r3) < 1e-15, "size-free on {0,2} == n=2 on {0,2}")
  -- lambda = 1 on all qubits: the maximally mixed state
  T.ok(mdiff(rho3:copy():apply(qd.channel.global_depolarizing { lambda = 1 }), qd.maximally_mixed(3)) < 1e-15, "lambda=1 -> I/d")
  -- depolarizing{p} on k qubits == global_depolarizing{lambda = p 4^k/(4^k-1)}
  local a = rho3:copy():apply(qd.channel.depolarizing { p = 0.3, n = 3 })
  local b = rho3:copy():apply(qd.channel.global_depolarizing { lambda = 0.3 * 64 / 63 })
  T.ok(mdiff(a, b) < 1e-15, "Pauli form = global form with lambda = p 4^k/(4^k-1)")
  -- the structured path agrees with the explicit Pauli Kraus list
  for _, t in ipairs { { 1 }, { 2, 0 }, { 1, 2, 0 } } do
    local d = qd.channel.depolarizing { p = 0.27, n = #t }
    local x = rho3:copy():apply(d, t)
    local y = rho3:copy():apply(qd.channel.kraus(d:kraus()), t)
    T.ok(mdiff(x, y) < 1e-14, "structured == Kraus list on " .. table.concat(t, ","))
  end
  -- composition of depolarizing maps stays structured: 1 - l = (1 - l1)(1 - l2)
  local c = qd.channel.global_depolarizing { lambda = 0.2 } * qd.channel.global_depolarizing { lambda = 0.5 }
  T.eq(c.name, "global_depolarizing")
  T.ok(mdiff(rho3:copy():apply(c), rho3:copy():apply(qd.channel.global_depolarizing { lambda = 0.6 })) < 1e-15, "alpha_bar products")
  -- p = 1: the identity operator has weight exactly 0
  local k1 = qd.channel.depolarizing { p = 1, n = 2 }:kraus()[1]
  T.eq(k1:get(1, 1), 0, "p = 1: K_1 = 0")
  -- beyond the explicit-list limit the structured form still applies (6 qubits, 4^6 strings)
  local r6 = qd.dm(qd.haar_state(6, qd.rng(2)))
  local w = r6:copy():apply(qd.channel.depolarizing { p = 0.2, n = 6 })
  local mm = qd.maximally_mixed(6)
  local lam = 0.2 * 4096 / 4095
  local dv = 0
  for i = 1, 64, 7 do for j = 1, 64, 5 do
    local a, b = w:get(i, j)
    local x, y = r6:get(i, j)
    dv = math.max(dv, math.abs(a - ((1 - lam) * x + lam * mm:get(i, j))), math.abs(b - (1 - lam) * y))
  end end
  T.ok(dv < 1e-15, "6-qubit depolarizing: " .. dv)
  T.eq(qd.channel.depolarizing { p = 0.1, n = 2 }.nkraus, 16)
  T.eq(#qd.channel.depolarizing { p = 0.1 }:kraus(), 4)
end)

T.test("composition (a * b: b first) and tensor product (a first) vs QuTiP", function()
  local ad = qd.channel.amplitude_damping { gamma = 0.35 }
  local dph = qd.channel.dephasing { p = 0.2 }
  local pa = qd.channel.pauli { px = 0.1, py = 0.2, pz = 0.3 }
  local c = ad * dph
  T.eq(c.name, "composition")
  T.ok(mdiff(c:superop(), ref("compose_super")) < TOL, "a * b superop = S_a S_b (QuTiP)")
  T.ok(mdiff(c:choi(), ref("compose_choi")) < TOL, "a * b choi (QuTiP)")
  T.ok(mdiff(ad:compose(dph):superop(), c:superop()) == 0, ":compose == *")
  -- order: reset * X is "X then reset" = |0>; X * reset = |1>
  local X = qd.channel.unitary { { 0, 1 }, { 1, 0 } }
  local R = qd.channel.reset {}
  local p1 = qd.dm(1):apply(R * X):get(1, 1)
  local p2 = qd.dm(1):apply(X * R):get(2, 2)
  T.near(p1, 1, 1e-15, "reset * X -> |0>")
  T.near(p2, 1, 1e-15, "X * reset -> |1>")
  local t = ad:tensor(pa)
  T.eq(t.n, 2); T.eq(t.name, "tensor"); T.eq(t.nkraus, 8)
  T.ok(mdiff(t:superop(), ref("tensor_super")) < TOL, "a:tensor(b) superop (QuTiP super_tensor)")
  T.ok(mdiff(t:choi(), ref("tensor_choi")) < TOL, "a:tensor(b) choi (QuTiP)")
  T.ok(mdiff(rho3:copy():apply(t, { 2, 1 }), ref("tensor_out")) < TOL, "tensor applied on {2, 1}")
  -- the same as a on 2 then b on 1
  local seq = rho3:copy():apply(ad, { 2 }):apply(pa, { 1 })
  T.ok(mdiff(seq, ref("tensor_out")) < TOL, "tensor == sequential on disjoint targets")
  -- long Kraus lists are compressed through the Choi matrix (<= 4^k operators)
  local d2 = qd.channel.depolarizing { p = 0.4, n = 2 }
  local k2 = CASES[10][2]()
  local big = d2 * k2
  T.ok(big.nkraus <= 16, "compressed to " .. big.nkraus .. " <= 16 operators")
  T.ok(mdiff(big:superop(), matmul(d2:superop(), k2:superop())) < 1e-12, "compressed composition = S_a S_b")
  local x = rho3:copy():apply(big, { 0, 1 })
  local y = rho3:copy():apply(k2, { 0, 1 }):apply(d2, { 0, 1 })
  T.ok(mdiff(x, y) < 1e-12, "compressed composition applied")
  T.ok(select(1, big:is_cptp()), "composition is CPTP")
end)

T.test("fields, printing, is_cptp, free", function()
  local ad = qd.channel.amplitude_damping { gamma = 0.25 }
  T.eq(ad.n, 1); T.eq(ad.nqubits, 1); T.eq(ad.nkraus, 2); T.eq(ad.name, "amplitude_damping")
  T.eq(tostring(ad), "qd.Channel(amplitude_damping(gamma=0.25), 1 qubit, 2 Kraus operators)")
  T.eq(tostring(qd.channel.global_depolarizing { lambda = 0.1 }),
       "qd.Channel(global_depolarizing(lambda=0.1), any number of qubits)")
  T.eq(tostring(qd.channel.depolarizing { p = 0.1, n = 2 }),
       "qd.Channel(depolarizing(p=0.1, n=2), 2 qubits, 4^2 Kraus operators)")
  T.eq(qd.channel.reset { n = 2 }.nkraus, 4)
  -- reset on 2 qubits sends everything to |00>
  local r = rho3:copy():apply(qd.channel.reset { n = 2 }, { 2, 0 })
  T.near(r:probs({ 0, 2 })[1], 1, 1e-15, "reset{n=2} -> |00> on the targets")
  local ok, dev = ad:is_cptp()
  T.eq(ok, true); T.ok(dev < 1e-15, "deviation")
  -- a list accepted with a looser tolerance is reported as such by is_cptp()
  local loose = qd.channel.kraus({ { { 0.7071, 0 }, { 0, 0.7071 } }, { { 0.7071, 0 }, { 0, -0.7071 } } }, { tol = 1e-3 })
  local ok2, dev2 = loose:is_cptp()
  T.eq(ok2, false, "not CPTP at the default 1e-10")
  T.ok(dev2 > 1e-5 and dev2 < 1e-3, "deviation " .. dev2)
  T.eq(select(1, loose:is_cptp(1e-3)), true, "CPTP at 1e-3")
  local U = qd.channel.unitary(qd.gate_matrix("h"))
  T.eq(U.nkraus, 1)
  T.ok(mdiff(qd.dm(2):apply(U, { 1 }), qd.dm(qd.state(2):h(1))) < 1e-15, "unitary(U) == gate")
  local f = qd.channel.dephasing { p = 0.1 }
  f:free(); f:free()
  T.eq(tostring(f), "qd.Channel (freed)")
  T.raises(function() return f:kraus() end, "qd.Channel has been freed")
  T.raises(function() return qd.dm(1):apply(f, 0) end, "qd.Channel has been freed")
  do local g <close> = qd.channel.dephasing { p = 0.1 } end
  T.ok(qd.help ~= nil)
  -- methods are listed for help() and the REPL
  local mt = getmetatable(ad)
  T.ok(mt.methods.apply and mt.methods.kraus and mt.methods.tensor, "methods table")
  T.ok(getmetatable(qd.dm(1)).methods.apply ~= nil, "DensityMatrix:apply")
  T.ok(getmetatable(qd.state(1)).methods.apply ~= nil, "State:apply")
  T.ok(getmetatable(qd.ensemble(1, 1)).methods.apply ~= nil, "Ensemble:apply")
end)

-- <P> over all Pauli strings: the trajectory average (mean of E:expect) vs the density
-- matrix, each within 5 standard errors (sample std / sqrt(N), samples in [-1, 1]) plus
-- 1e-12. The Pauli expectations determine the state, so this checks the whole average.
local function check_average(E, rho, what)
  local n, N = E.n, #E
  local letters = { "I", "X", "Y", "Z" }
  local worst, checked = 0, 0
  for j = 1, 4 ^ n - 1 do
    local s, x = {}, j
    for q = n, 1, -1 do s[q] = letters[x % 4 + 1]; x = x // 4 end
    local P = table.concat(s)
    local v = E:expect(P)
    local mean, m2 = 0, 0
    for i = 1, N do mean = mean + v[i] end
    mean = mean / N
    for i = 1, N do m2 = m2 + (v[i] - mean) ^ 2 end
    local se = math.sqrt(m2 / (N - 1) / N)
    local exact = rho:expect(P)
    local z = math.abs(mean - exact) / (se + 1e-300)
    if math.abs(mean - exact) > 5 * se + 1e-12 then
      T.ok(false, string.format("%s <%s>: trajectories %.5f vs exact %.5f (se %.2g)", what, P, mean, exact, se))
    end
    checked = checked + 1
    if se > 0 then worst = math.max(worst, z) end
  end
  T.ok(checked == 4 ^ n - 1, what .. ": all Pauli strings")
  return worst
end

T.test("trajectories: averages converge to the density-matrix result", function()
  local N = 4000
  local psi = qd.haar_state(2, qd.rng(11))
  local chans = {
    { qd.channel.amplitude_damping { gamma = 0.4 }, { 1 } },
    { qd.channel.generalized_amplitude_damping { gamma = 0.5, p = 0.3 }, { 0 } },
    { qd.channel.depolarizing { p = 0.5, n = 2 }, { 1, 0 } },
    { qd.channel.global_depolarizing { lambda = 0.7 }, nil },
    { qd.channel.pauli { px = 0.2, py = 0.1, pz = 0.3 }, { 1 } },
    { CASES[10][2](), { 1, 0 } },   -- random 2-qubit Kraus channel
    { qd.channel.reset {}, { 0 } },
  }
  for i, c in ipairs(chans) do
    local members = {}
    for k = 1, N do members[k] = psi end
    local E = qd.ensemble.from(members)
    local _, br = E:apply(c[1], c[2], qd.rng(100 + i), { branches = true })
    T.eq(#br, N, "one branch per member")
    local rho = qd.dm(psi):apply(c[1], c[2])
    check_average(E, rho, tostring(c[1]))
    local norms = E:norms()
    local nbad = 0
    for k = 1, N do if math.abs(norms[k] - 1) > 1e-12 then nbad = nbad + 1 end end
    T.eq(nbad, 0, "members normalised")
  end
end)

T.test("trajectories: branches, seeds, batch size, threads", function()
  -- amplitude damping on |1>: branch 2 (decay) with probability gamma
  local N, g = 5000, 0.3
  local E = qd.ensemble(1, N):x(0)
  local _, br = E:apply(qd.channel.amplitude_damping { gamma = g }, 0, qd.rng(5), { branches = true })
  local decays = 0
  for k = 1, N do decays = decays + (br[k] == 2 and 1 or 0) end
  local sd = math.sqrt(g * (1 - g) / N)
  T.ok(math.abs(decays / N - g) < 5 * sd, string.format("decay frequency %.4f vs %.2f (5 sd %.4f)", decays / N, g, 5 * sd))
  -- the branch index names the Kraus operator applied
  local ks = qd.channel.amplitude_damping { gamma = g }:kraus()
  for k = 1, 20 do
    local s = E[k]
    T.near(s:probs()[br[k] == 2 and 1 or 2], 1, 1e-15, "member " .. k .. " follows its branch")
  end
  T.eq(#ks, 2)
  -- State: same as a one-member ensemble from the same generator state
  local ch = qd.channel.kraus(CASES[10][2]():kraus())
  local s = qd.haar_state(3, qd.rng(3))
  local s1 = s:copy()
  local _, b1 = s1:apply(ch, { 2, 0 }, qd.rng(9), { branches = true })
  T.eq(math.type(b1), "integer")
  local E1 = qd.ensemble.from { s }
  local _, bE = E1:apply(ch, { 2, 0 }, qd.rng(9), { branches = true })
  T.eq(bE[1], b1, "State branch == Ensemble member 1 branch")
  T.eq(sdiff(E1[1], s1), 0, "same output")
  T.eq(s:copy():apply(ch, { 2, 0 }, qd.rng(9)).n, 3, "without branches returns the state")
  -- member k does not depend on N; 1 and 2 threads give identical results
  local Hs = qd.ensemble.haar(3, 40, qd.rng(21))
  local A, B = Hs:copy(), qd.ensemble.from { Hs[1], Hs[2], Hs[3], Hs[4], Hs[5] }
  local _, ba = A:apply(ch, { 1, 2 }, qd.rng(4), { branches = true })
  local _, bb = B:apply(ch, { 1, 2 }, qd.rng(4), { branches = true })
  for k = 1, 5 do
    T.eq(ba[k], bb[k], "branch of member " .. k .. " independent of N")
    T.eq(sdiff(A[k], B[k]), 0, "member " .. k .. " independent of N")
  end
  local t0 = qd.threads()
  local out = {}
  for t = 1, 2 do
    qd.set_threads(t)
    local C = qd.ensemble.haar(6, 300, qd.rng(8))
    local _, b = C:apply(ch, { 5, 0 }, qd.rng(2), { branches = true })
    C:apply(qd.channel.depolarizing { p = 0.3, n = 3 }, { 1, 2, 3 }, qd.rng(3))
    local rho = qd.dm(qd.haar_state(6, qd.rng(1)))
    rho:apply(ch, { 5, 0 }):apply(qd.channel.global_depolarizing { lambda = 0.2 }, { 0, 1, 4 })
    out[t] = { C, b, rho }
  end
  qd.set_threads(t0)
  local same = true
  for k = 1, 300 do
    same = same and out[1][2][k] == out[2][2][k]
    local x, y = out[1][1][k], out[2][1][k]
    for i = 1, 64 do
      local a1, a2 = x:amp(i)
      local b1_, b2 = y:amp(i)
      same = same and a1 == b1_ and a2 == b2
    end
  end
  T.ok(same, "trajectories identical for 1 and 2 threads")
  T.eq(mdiff(out[1][3], out[2][3]), 0, "density matrix identical for 1 and 2 threads")
  -- the run's generator is used without an rng; options alone are accepted
  local _, bq = qd.state(1):apply(qd.channel.dephasing { p = 0.5 }, 0, { branches = true })
  T.ok(bq == 1 or bq == 2)
  -- depolarizing branch 1 is the identity; the rest index Pauli strings (base 4)
  local _, bd = qd.ensemble(2, 200):apply(qd.channel.depolarizing { p = 1, n = 2 }, { 0, 1 }, qd.rng(1), { branches = true })
  local ok = true
  for k = 1, 200 do ok = ok and bd[k] >= 2 and bd[k] <= 16 end
  T.ok(ok, "p = 1: never the identity")
end)

T.test("error messages", function()
  local ch = qd.channel
  -- constructors: options
  T.raises(function() ch.depolarizing() end, "bad argument #1 to 'depolarizing' (options table {p=} expected, got no value)")
  T.raises(function() ch.depolarizing(0.1) end, "bad argument #1 to 'depolarizing' (options table {p=} expected, got number)")
  T.raises(function() ch.depolarizing {} end, "option 'p' (number in [0, 1]) expected, got no value")
  T.raises(function() ch.depolarizing { p = 1.5 } end, "bad argument #1 to 'depolarizing' (option 'p': number in [0, 1] expected, got 1.5)")
  T.raises(function() ch.depolarizing { p = -0.1 } end, "option 'p': number in [0, 1] expected, got -0.1")
  T.raises(function() ch.depolarizing { p = 0 / 0 } end, "option 'p': number in [0, 1] expected, got")
  T.raises(function() ch.depolarizing { p = "x" } end, "option 'p': number expected, got string")
  T.raises(function() ch.depolarizing { p = 0.1, q = 1 } end, "unknown option 'q' (known: p, n)")
  T.raises(function() ch.depolarizing { p = 0.1, n = 0 } end, "option 'n' (number of qubits 1..60) expected, got 0")
  T.raises(function() ch.depolarizing { p = 0.1, n = 1.5 } end, "option 'n' (number of qubits 1..60) expected, got 1.5")
  T.raises(function() ch.depolarizing({ p = 0.1 }, 2) end, "bad argument #2 to 'depolarizing' (unexpected extra argument)")
  T.raises(function() ch.global_depolarizing { lambda = 2 } end, "bad argument #1 to 'global_depolarizing' (option 'lambda': number in [0, 1] expected, got 2)")
  T.raises(function() ch.global_depolarizing { p = 0.1 } end, "unknown option 'p' (known: lambda, n)")
  T.raises(function() ch.dephasing { p = 2 } end, "bad argument #1 to 'dephasing' (option 'p': number in [0, 1] expected, got 2)")
  T.raises(function() ch.amplitude_damping { gamma = -1 } end, "bad argument #1 to 'amplitude_damping' (option 'gamma': number in [0, 1] expected, got -1)")
  T.raises(function() ch.amplitude_damping { p = 0.1 } end, "unknown option 'p' (known: gamma)")
  T.raises(function() ch.generalized_amplitude_damping { gamma = 0.1 } end, "option 'p' (number in [0, 1]) expected, got no value")
  T.raises(function() ch.generalized_amplitude_damping { gamma = 0.1, p = 1.1 } end, "option 'p': number in [0, 1] expected, got 1.1")
  T.raises(function() ch.pauli { px = 0.5, py = 0.4, pz = 0.3 } end, "bad argument #1 to 'pauli' (px + py + pz <= 1 expected, got 1.2)")
  T.raises(function() ch.pauli { px = -0.1 } end, "option 'px': number in [0, 1] expected, got -0.1")
  T.raises(function() ch.reset { n = 6 } end, "option 'n' (number of qubits 1..5) expected, got 6")
  T.raises(function() ch.reset(1) end, "bad argument #1 to 'reset' (options table expected, got number)")
  -- matrices: non-CPTP, wrong sizes, wrong types
  T.raises(function() ch.kraus { { { 1, 0 }, { 0, 1 } }, { { 1, 0 }, { 0, 1 } } } end,
           "bad argument #1 to 'kraus' (trace-preserving Kraus operators expected: ||sum K^dagger K - I||_F = 1.4142135623731 > tol 1e-10)")
  T.raises(function() ch.kraus { { { 0.7071, 0 }, { 0, 0.7071 } }, { { 0.7071, 0 }, { 0, -0.7071 } } } end,
           "trace-preserving Kraus operators expected: ||sum K^dagger K - I||_F = 2.")
  T.raises(function() ch.kraus({ qd.gate_matrix("x") }, { tol = 0 }) end, "option 'tol' (a number in (0, 1)) expected, got 0")
  T.raises(function() ch.kraus({ qd.gate_matrix("x") }, { tl = 1 }) end, "bad argument #2 to 'kraus' (unknown option 'tl' (known: tol))")
  T.raises(function() ch.kraus { { 1, 0 }, { 0, 1 } } end, "table of Kraus operators expected, got a single matrix (write kraus{K})")
  T.raises(function() ch.kraus {} end, "non-empty list of Kraus operators expected")
  T.raises(function() ch.kraus(qd.gate_matrix("x")) end, "bad argument #1 to 'kraus' (table of Kraus operators {K1, K2, ...} expected, got qd.Matrix)")
  T.raises(function() ch.kraus { qd.gate_matrix("x"), x = 1 } end, "list of Kraus operators expected, got key 'x'")
  T.raises(function() ch.kraus { qd.gate_matrix("x"), qd.gate_matrix("cx") } end,
           "Kraus operators of equal size expected (operator 2 is 4x4, operator 1 is 2x2)")
  T.raises(function() ch.kraus { { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } } } end,
           "Kraus operator 1: 2^k x 2^k matrix with 1 <= k <= 5 expected, got 3x3")
  T.raises(function() ch.kraus { qd.gate_matrix("x"), 5 } end, "Kraus operator 2: matrix (qd.Matrix or table of rows) expected, got number")
  T.raises(function() ch.kraus { qd.gate_matrix("x"), { { 1, 0 }, { 0 } } } end,
           "Kraus operator 2: square matrix expected (row 2 of 2 does not have 2 entries)")
  T.raises(function() ch.kraus { { { 1, "a" }, { 0, 1 } } } end, "Kraus operator 1: number or {re, im} expected at [1][2]")
  T.raises(function() ch.kraus { { { 1, 0 }, { 0, 0 / 0 } } } end, "Kraus operator 1: finite entries expected")
  T.raises(function() ch.kraus { qd.matrix(2, 3) } end, "Kraus operator 1: square matrix expected, got 2x3")
  local nanm = qd.matrix(4, 4); nanm:set(2, 3, 0 / 0)
  T.raises(function() ch.superop(nanm) end, "bad argument #1 to 'superop' (S: finite entries expected)")
  local freed = qd.matrix(2, 2); freed:free()
  T.raises(function() ch.kraus { freed } end, "Kraus operator 1: qd.Matrix has been freed")
  T.raises(function() ch.unitary { { 1, 1 }, { 0, 1 } } end,
           "bad argument #1 to 'unitary' (unitary matrix (U^dagger U = I) expected: ||sum K^dagger K - I||_F = ")
  T.raises(function() ch.unitary(qd.matrix(64, 64)) end, "U: 2^k x 2^k matrix with 1 <= k <= 5 expected, got 64x64")
  T.raises(function() ch.unitary("h") end, "U: matrix (qd.Matrix or table of rows) expected, got string")
  T.raises(function() ch.superop(qd.gate_matrix("x")) end, "bad argument #1 to 'superop' (S: 4^k x 4^k superoperator with 1 <= k <= 5 expected, got 2x2)")
  T.raises(function() ch.superop(qd.matrix(2048, 2048)) end, "S: 4^k x 4^k superoperator with 1 <= k <= 5 expected, got 2048x2048")
  T.raises(function() ch.kraus { qd.matrix(64, 64) } end, "Kraus operator 1: 2^k x 2^k matrix with 1 <= k <= 5 expected, got 64x64")
  T.raises(function() ch.superop(qd.gate_matrix("swap")) end,   -- swap is the transpose map: not CP
           "bad argument #1 to 'superop' (completely positive superoperator expected: Choi matrix eigenvalue -1 < -tol)")
  local twice = qd.matrix { { 2, 0, 0, 0 }, { 0, 2, 0, 0 }, { 0, 0, 2, 0 }, { 0, 0, 0, 2 } }
  T.raises(function() ch.superop(twice) end, "trace-preserving superoperator expected: ||Tr_out J - I||_F = 1.4142135623731 > tol 1e-10")
  local nonherm = qd.matrix { { 1, 0, 0, 0 }, { 0, 1, 0.5, 0 }, { 0, 0, 1, 0 }, { 0, 0, 0, 1 } }
  T.raises(function() ch.superop(nonherm) end, "Hermiticity-preserving superoperator expected: ||J - J^dagger||_F = 0.70710678118655 > tol 1e-10")
  -- application: targets, sizes and types
  local ad = ch.amplitude_damping { gamma = 0.1 }
  local d2 = ch.depolarizing { p = 0.1, n = 2 }
  local rho = qd.dm(3)
  T.raises(function() rho:apply(d2, { 0, 1, 2 }) end, "bad argument #2 to 'apply' (targets for a 2-qubit channel expected, got 3 targets)")
  T.raises(function() rho:apply(d2, 1) end, "bad argument #2 to 'apply' (targets for a 2-qubit channel expected, got 1 target)")
  T.raises(function() rho:apply(d2) end, "bad argument #2 to 'apply' (targets for a 2-qubit channel expected, got none)")
  T.raises(function() rho:apply(ad, 3) end, "bad argument #2 to 'apply' (qubit index 0..2 expected, got 3)")
  T.raises(function() rho:apply(ad, -1) end, "qubit index 0..2 expected, got -1")
  T.raises(function() rho:apply(d2, { 1, 1 }) end, "bad argument #2 to 'apply' (distinct qubits expected, got qubit 1 twice)")
  T.raises(function() rho:apply(d2, { 0, 5 }) end, "qubit indices 0..2 expected, got 5 at position 2")
  T.raises(function() rho:apply(ad, "0") end, "bad argument #2 to 'apply' (qubit list (table of integers) expected, got string)")
  T.raises(function() rho:apply(ch.global_depolarizing { lambda = 0.1 }, { 0, 1, 2, 0 }) end, "bad argument #2 to 'apply' (1..3 qubits expected, got 4)")
  T.raises(function() qd.dm(1):apply(d2) end, "bad argument #1 to 'apply' (channel on at most 1 qubit expected for a 1-qubit qd.DensityMatrix, got 2 qubits)")
  T.raises(function() rho:apply(ad, 0, qd.rng(1)) end, "bad argument #3 to 'apply' (no further arguments expected (a qd.DensityMatrix is transformed exactly")
  T.raises(function() rho:apply("ad", 0) end, "bad argument #1 to 'apply' (qd.Channel expected, got string)")
  T.raises(function() rho:apply(qd.gate_matrix("x"), 0) end, "bad argument #1 to 'apply' (qd.Channel expected, got qd.Matrix)")
  T.raises(function() ad:apply(5, 0) end, "bad argument #1 to 'apply' (qd.State, qd.DensityMatrix or qd.Ensemble expected, got number)")
  T.raises(function() ad:apply(qd.vector { 1, 0 }, 0) end, "qd.State, qd.DensityMatrix or qd.Ensemble expected, got qd.Vector")
  local s = qd.state(2)
  T.raises(function() s:apply(ad, 0, 7.5) end, "bad argument #3 to 'apply' (qd.Rng (or an integer seed) expected, got number)")
  T.raises(function() s:apply(ad, 0, qd.rng(1), { branch = true }) end, "bad argument #4 to 'apply' (unknown option 'branch' (known: branches))")
  T.raises(function() s:apply(ad, 0, qd.rng(1), { branches = 1 }) end, "option 'branches': boolean expected, got number")
  T.raises(function() s:apply(ad, 0, qd.rng(1), {}, 1) end, "bad argument #5 to 'apply' (unexpected extra argument)")
  T.raises(function() s:apply(ad, 0, {}, 1) end, "bad argument #4 to 'apply' (unexpected extra argument)")
  T.raises(function() qd.state.from({ 0, 0 }, { normalize = false }):apply(ad, 0, qd.rng(1)) end, "cannot apply a channel to a state of norm 0 (member 1)")
  local E = qd.ensemble.from({ qd.state(2), qd.state.from({ 0, 0, 0, 0 }, { normalize = false }), qd.state(2) }, { normalize = false })
  T.raises(function() E:apply(ad, 0, qd.rng(1)) end, "cannot apply a channel to a state of norm 0 (member 2)")
  local freedS = qd.state(1); freedS:free()
  T.raises(function() freedS:apply(ad, 0) end, "qd.State has been freed")
  -- conversions / composition
  local g = ch.global_depolarizing { lambda = 0.1 }
  T.raises(function() g:kraus() end, "channel of fixed size expected (global_depolarizing without n= acts on any number of qubits; give n=)")
  T.raises(function() g:superop() end, "channel of fixed size expected")
  T.raises(function() ch.depolarizing { p = 0.1, n = 6 }:choi() end, "channel on at most 5 qubits expected for an explicit Kraus list, got 6")
  T.raises(function() return ad * d2 end, "channel composition a * b: channels on the same number of qubits expected, got 1 and 2")
  T.raises(function() return ad:compose(d2) end, "bad argument #1 to 'compose' (1-qubit channel expected (composition needs equal sizes), got 2 qubits)")
  T.raises(function() return ad * 2 end, "channel composition a * b: qd.Channel expected on the right, got number")
  T.raises(function() return qd.dm(1) * ad end, "channel composition a * b: qd.Channel expected on the left, got qd.DensityMatrix")
  T.raises(function() return ad:compose(nil) end, "bad argument #1 to 'compose' (qd.Channel expected, got nil)")
  T.raises(function() return g * ad end, "channel composition a * b: channel of fixed size expected")
  T.raises(function() return g:compose(ad) end, "calling 'compose' on bad self (channel of fixed size expected")
  T.eq(d2:tensor(ch.reset { n = 3 }).n, 5, "5 qubits is the limit")
  T.raises(function() return d2:tensor(ch.reset { n = 4 } ) end, "bad argument #1 to 'tensor' (tensor product on at most 5 qubits expected, got 2 + 4)")
  T.raises(function() return ad:tensor() end, "bad argument #1 to 'tensor' (qd.Channel expected, got no value)")
  T.raises(function() return ad:is_cptp(-1) end, "bad argument #1 to 'is_cptp' (tolerance > 0 expected)")
  T.raises(function() return ad:kraus(1) end, "bad argument #1 to 'kraus' (unexpected extra argument)")
end)

T.test("help entries", function()
  local out = {}
  local oldprint = print
  print = function(...) out[#out + 1] = table.concat({ ... }, " ") end
  local ok, err = pcall(function()
    for name, f in pairs(qd.channel) do
      out = {}
      qd.help(f)
      T.ok(#out == 1 and out[1]:find("qd.channel." .. name, 1, true) ~= nil, "help(qd.channel." .. name .. ")")
    end
    out = {}; qd.help(qd.channel); T.ok(out[1] and out[1]:find("constructors of qd.Channel", 1, true), "help(qd.channel)")
    out = {}; qd.help(qd.channel.reset {}); T.ok(out[1] and out[1]:find("methods: apply choi compose", 1, true), "help(ch) lists methods")
    for _, m in ipairs { "qd.Channel:apply", "kraus", "superop", "choi", "is_cptp", "compose", "tensor" } do
      out = {}; qd.help(m); T.ok(out[1] and not out[1]:find("no documentation", 1, true), "help('" .. m .. "')")
    end
  end)
  print = oldprint
  T.ok(ok, tostring(err))
end)
