-- test_state.lua — qd.State from Lua: constructors, conversions, every gate against an
-- explicit matrix computed here (tests/lua/qdref.lua), :unitary, probabilities, sampling,
-- measurement, projection, Pauli expectations, embedding, kron, partial trace, Schmidt
-- rank, and the pure-state quantities. Error messages are in test_errors.lua.
local T = require "testlib"
local R = require "qdref"

local TOL = 1e-12
local function amps(s) return s:totable() end

T.test("constructors", function()
  local s = qd.state(3)
  T.eq(qd.type(s), "qd.State")
  T.eq(s.n, 3, "s.n"); T.eq(s.dim, 8, "s.dim"); T.eq(#s, 8, "#s")
  local re, im = s:amp(1)
  T.eq(re, 1); T.eq(im, 0)
  T.eq(s:amp(2), 0)
  -- qubit 0 is the leftmost character = most significant bit: "100" is basis index 4
  local b = qd.state(3, "100")
  T.eq(b:amp(5), 1, "|100> is index 4 (1-based 5)")
  T.eq(b:amp("100"), 1, "amp by bitstring")
  T.eq(b:amp("001"), 0)
  T.eq(qd.state(1, "1"):amp(2), 1)
  -- from a table of numbers and {re, im} pairs: normalised input (value checks), or
  -- normalize = true
  local f = qd.state.from { 0.6, { 0, 0.8 } }
  T.eq(f.n, 1)
  local r2, i2 = f:amp(2)
  T.eq(r2, 0); T.eq(i2, 0.8)
  T.raises(function() qd.state.from { 1, 1, 1, 1 } end, "normalised amplitudes expected (squared norm 4, off by 3 > 1e-08)")
  local u = qd.state.from({ 1, 1, 1, 1 }, { normalize = true })
  T.near(u:norm(), 1, TOL, "from(amps, {normalize = true}) normalises")
  T.near((u:amp(3)), 0.5, TOL)
  -- from a qd.Vector, real and complex
  local v = qd.state.from(qd.vector { 0, { 0, -1 } })
  local vr, vi = v:amp(2)
  T.eq(vr, 0); T.eq(vi, -1)
  local w = qd.state.from(qd.vector { 0.5, 0.5, 0.5, 0.5 })
  T.eq(w.n, 2); T.near(w:norm(), 1, TOL)
  -- Haar states: normalised, deterministic per seed, different across seeds
  local h1, h2, h3 = qd.haar_state(4, qd.rng(5)), qd.haar_state(4, qd.rng(5)), qd.haar_state(4, qd.rng(6))
  T.near(h1:norm(), 1, 1e-12, "haar normalised")
  T.eq(R.vdiff(amps(h1), amps(h2)), 0, "same seed, same Haar state")
  T.ok(R.vdiff(amps(h1), amps(h3)) > 1e-3, "different seed, different state")
  -- without an rng: the run's generator (reseeded -> reproducible)
  qd.set_seed(11)
  local a1 = qd.haar_state(2)
  qd.set_seed(11)
  local a2 = qd.haar_state(2)
  T.eq(R.vdiff(amps(a1), amps(a2)), 0, "run rng reproducible after set_seed")
  -- Haar average: E|<0|psi>|^2 = 1/d (d = 4); 400 draws, sd of the mean ~ 0.009
  local rng, acc = qd.rng(2024), 0
  for _ = 1, 400 do
    local x = qd.haar_state(2, rng)
    acc = acc + qd.fidelity(x, qd.state(2))
  end
  T.near(acc / 400, 0.25, 0.05, "Haar mean fidelity with |00>")
end)

T.test("conversions: totable, vector, copy, dm", function()
  local s = qd.haar_state(3, qd.rng(1))
  local t = s:totable()
  T.eq(#t, 8)
  T.eq(type(t[1]), "table"); T.eq(#t[1], 2, "{re, im} pairs")
  local re, im = s:amp(3)
  T.eq(t[3][1], re); T.eq(t[3][2], im)
  T.eq(R.vdiff(qd.state.from(t):totable(), t), 0, "totable round trip")
  local v = s:vector()
  T.eq(qd.type(v), "qd.Vector"); T.eq(#v, 8); T.ok(v:is_complex())
  local vr, vi = v:get(3)
  T.eq(vr, re); T.eq(vi, im)
  T.eq(v[3][1], re, "v[i] gives a pair")
  -- copy is independent
  local c = s:copy()
  c:x(0)
  T.ok(R.vdiff(c:totable(), t) > 1e-6, "copy changed")
  T.eq(R.vdiff(s:totable(), t), 0, "original unchanged")
  -- s:dm() = |s><s|
  local rho = s:dm()
  T.eq(qd.type(rho), "qd.DensityMatrix")
  T.ok(R.mdiff(R.dm_rows(rho), R.outer(t)) < TOL, "dm = |s><s|")
  T.ok(R.mdiff(R.dm_rows(qd.dm(s)), R.outer(t)) < TOL, "qd.dm(state)")
end)

T.test("norm, normalize, inner", function()
  local s = qd.state.from({ 3, { 0, 4 } }, { normalize = true })
  T.near(s:norm(), 1, TOL)
  T.ok(rawequal(s:normalize(), s), "normalize returns self")
  T.near(s:norm(), 1, TOL)
  local re, im = s:amp(2)
  T.near(re, 0, TOL); T.near(im, 0.8, TOL)
  -- <s|t> is conjugate-linear in s
  local a = qd.state.from { 1, 0 }
  local b = qd.state.from { { 0, 1 }, 0 }   -- i|0>
  local r1, i1 = a:inner(b)
  T.near(r1, 0, TOL); T.near(i1, 1, TOL, "<0|i0> = i")
  local r2, i2 = b:inner(a)
  T.near(r2, 0, TOL); T.near(i2, -1, TOL, "<i0|0> = -i")
  local p = qd.state(1):h(0)
  T.near((qd.state(1):inner(p)), 1 / math.sqrt(2), TOL)
  -- against the naive sum for random states
  local x, y = qd.haar_state(3, qd.rng(7)), qd.haar_state(3, qd.rng(8))
  local xt, yt = x:totable(), y:totable()
  local sr, si = 0, 0
  for i = 1, 8 do
    local z = R.mul(R.conj(xt[i]), yt[i])
    sr, si = sr + z[1], si + z[2]
  end
  local ir, ii = x:inner(y)
  T.near(ir, sr, 1e-13); T.near(ii, si, 1e-13)
end)

-- every gate, every qubit choice (both orders of 2-qubit gates, all orders of 3-qubit
-- gates) on a random 3-qubit state, against the explicit matrix
T.test("gates against explicit matrices", function()
  local n = 3
  local psi = qd.haar_state(n, qd.rng(42))
  local v0 = psi:totable()
  local angles = { 0.7, -1.3, 2.1 }
  local count = 0
  for _, name in ipairs(R.gate_names) do
    local k, np = R.gate_info[name][1], R.gate_info[name][2]
    local M = R.gates[name](table.unpack(angles, 1, np))
    for _, qs in ipairs(R.qubit_choices(n, k)) do
      local s = psi:copy()
      local args = { table.unpack(qs) }
      for i = 1, np do args[#args + 1] = angles[i] end
      local ret = s[name](s, table.unpack(args))
      T.ok(rawequal(ret, s), name .. " returns self")
      local want = R.apply(R.full(M, qs, n), v0)
      local d = R.vdiff(s:totable(), want)
      if not T.ok(d < 1e-12, string.format("%s on {%s}: max diff %g", name, table.concat(qs, ","), d)) then
        break
      end
      count = count + 1
    end
  end
  T.eq(count, 16 * 3 + 13 * 6 + 2 * 6, "gate applications checked")
  -- gates chain
  local g = qd.state(3):h(0):cx(0, 1):cx(1, 2)
  T.near(g:amp("000"), 1 / math.sqrt(2), TOL); T.near(g:amp("111"), 1 / math.sqrt(2), TOL)
  -- rotations are exp(-i theta P / 2): rx(pi)|0> = -i|1>
  local re, im = qd.state(1):rx(0, math.pi):amp(2)
  T.near(re, 0, TOL); T.near(im, -1, TOL, "rx(pi)|0> = -i|1>")
  -- rzz = exp(-i theta Z(x)Z/2): on |01> the phase is e^{+i theta/2}
  re, im = qd.state(2, "01"):rzz(0, 1, 0.5):amp("01")
  T.near(re, math.cos(0.25), TOL); T.near(im, math.sin(0.25), TOL)
  -- cx: control first; on |10> flips qubit 1, on |01> does nothing
  T.eq(qd.state(2, "10"):cx(0, 1):amp("11"), 1)
  T.eq(qd.state(2, "01"):cx(0, 1):amp("01"), 1)
  T.eq(qd.state(2, "01"):cx(1, 0):amp("11"), 1, "cx(1, 0)")
end)

T.test("qd.gates and qd.gate_matrix", function()
  local g = qd.gates()
  local n = 0
  for name, info in pairs(g) do
    n = n + 1
    local ref = R.gate_info[name]
    if T.ok(ref ~= nil, "gate " .. name .. " has a reference matrix (add it to tests/lua/qdref.lua)") then
      T.eq(info.qubits, ref[1], name .. " qubits"); T.eq(info.params, ref[2], name .. " params")
      T.ok(type(info.doc) == "string" and #info.doc > 0, name .. " doc")
    end
  end
  T.eq(n, #R.gate_names, "number of gates")
  for _, name in ipairs(R.gate_names) do
    local np = R.gate_info[name][2]
    local ps = { 0.3, 1.1, -0.4 }
    local M = qd.gate_matrix(name, table.unpack(ps, 1, np))
    T.eq(qd.type(M), "qd.Matrix")
    local ref = R.gates[name](table.unpack(ps, 1, np))
    T.ok(R.mdiff(M:totable(), ref) < 1e-15, "gate_matrix " .. name)
  end
end)

T.test("unitary(U, {qubits})", function()
  -- a random 2-qubit unitary built from reference gates
  local U = R.matmul(R.kron(R.gates.u(0.3, 1.2, -0.7), R.gates.ry(0.9)), R.gates.crx(1.4))
  U = R.matmul(R.gates.rxx(0.5), U)
  local psi = qd.haar_state(3, qd.rng(9))
  for _, qs in ipairs(R.qubit_choices(3, 2)) do
    local want = R.apply(R.full(U, qs, 3), psi:totable())
    local a = psi:copy():unitary(qd.matrix(U), qs)
    T.ok(R.vdiff(a:totable(), want) < 1e-12, "unitary (qd.Matrix) on {" .. table.concat(qs, ",") .. "}")
    local b = psi:copy():unitary(U, qs)   -- table of rows of {re, im}
    T.ok(R.vdiff(b:totable(), want) < 1e-12, "unitary (table) on {" .. table.concat(qs, ",") .. "}")
  end
  -- 1-qubit: a single integer qubit is accepted; plain numbers as entries
  local s = qd.state(2):unitary({ { 0, 1 }, { 1, 0 } }, 1)
  T.eq(s:amp("01"), 1, "unitary X on qubit 1")
  -- 3-qubit unitary = ccx
  local t = qd.state(3, "110"):unitary(R.gates.ccx(), { 0, 1, 2 })
  T.eq(t:amp("111"), 1)
  -- same as the named gate
  local x = psi:copy():unitary(qd.gate_matrix("cry", 0.8), { 2, 1 })
  local y = psi:copy():cry(2, 1, 0.8)
  T.ok(R.vdiff(x:totable(), y:totable()) < 1e-13, "unitary(gate_matrix) = gate")
end)

T.test("probs", function()
  local g = qd.state(3):h(0):cx(0, 1):cx(1, 2)
  local p = g:probs()
  T.eq(qd.type(p), "qd.Vector"); T.eq(#p, 8)
  T.near(p[1], 0.5, TOL); T.near(p[8], 0.5, TOL); T.near(p:sum(), 1, TOL)
  local p0 = g:probs({ 0 })
  T.eq(#p0, 2); T.near(p0[1], 0.5, TOL); T.near(p0[2], 0.5, TOL)
  T.eq(#g:probs(1), 2, "single integer qubit")
  -- the first listed qubit is the MSB of the outcome: |100>, qubits {2, 0} -> "01"
  local b = qd.state(3, "100")
  local q = b:probs({ 2, 0 })
  T.eq(q[2], 1, "probs({2,0}) of |100> is outcome 01")
  T.eq(b:probs({ 0, 2 })[3], 1, "probs({0,2}) of |100> is outcome 10")
  -- random state: marginals against sums of |a_i|^2
  local s = qd.haar_state(3, qd.rng(3))
  local t = s:totable()
  local m = s:probs({ 1 })
  local want = { 0, 0 }
  for i = 0, 7 do
    local bit = (i >> 1) & 1
    want[bit + 1] = want[bit + 1] + R.abs2(t[i + 1])
  end
  T.near(m[1], want[1], 1e-14); T.near(m[2], want[2], 1e-14)
  local all = s:probs()
  for i = 1, 8 do T.near(all[i], R.abs2(t[i]), 1e-15) end
end)

T.test("sample", function()
  local th = 2 * math.asin(math.sqrt(0.3))   -- P(1) = 0.3
  local s = qd.state(1):ry(0, th)
  local c = s:sample(10000, qd.rng(3))
  T.eq((c["0"] or 0) + (c["1"] or 0), 10000, "counts sum to shots")
  -- sd = sqrt(.3*.7/1e4) = 0.0046; 5 sd
  T.near(c["1"] / 10000, 0.3, 0.023, "frequency of 1")
  local c2 = s:sample(10000, qd.rng(3))
  T.eq(c2["1"], c["1"], "same seed, same counts")
  -- deterministic outcomes, keys are bitstrings with qubit 0 first
  local b = qd.state(3, "110")
  local cb = b:sample(50, qd.rng(1))
  T.eq(cb["110"], 50)
  local nkeys = 0
  for _ in pairs(cb) do nkeys = nkeys + 1 end
  T.eq(nkeys, 1, "only observed outcomes are keys")
  -- a subset of qubits via {qubits=}, in the given order
  local cq = b:sample(20, qd.rng(1), { qubits = { 2, 0 } })
  T.eq(cq["01"], 20)
  local cq2 = b:sample(20, { qubits = { 1 } })   -- run rng
  T.eq(cq2["1"], 20)
  -- an explicit nil rng (a pass-through variable) with options after it: the run rng
  local none
  local cq3 = b:sample(20, none, { qubits = { 0 } })
  T.eq(cq3["1"], 20)
  local o4, p4 = qd.state(2, "01"):measure(1, none, { keep = false })
  T.eq(o4, "1"); T.eq(p4, 1)
  -- GHZ: only 000 and 111, roughly half each
  local g = qd.state(3):h(0):cx(0, 1):cx(1, 2)
  local cg = g:sample(4000, qd.rng(77))
  T.eq(cg["000"] + cg["111"], 4000)
  T.near(cg["000"] / 4000, 0.5, 0.04)
  -- a random 3-qubit state: every outcome's count within 5 sd of shots * p
  local h = qd.haar_state(3, qd.rng(31))
  local ph = h:probs()
  local shots = 20000
  local ch = h:sample(shots, qd.rng(32))
  local worst, total = 0, 0
  for i = 1, 8 do
    local key = string.format("%d%d%d", (i - 1) >> 2 & 1, (i - 1) >> 1 & 1, (i - 1) & 1)
    local n = ch[key] or 0
    total = total + n
    local sd = math.sqrt(shots * ph[i] * (1 - ph[i]))
    worst = math.max(worst, math.abs(n - shots * ph[i]) / sd)
  end
  T.eq(total, shots)
  T.ok(worst < 5, "counts within 5 sd of shots * p (worst " .. worst .. " sd)")
  -- run rng: --seed-driven, reproducible after set_seed
  qd.set_seed(5)
  local r1 = g:sample(100)
  qd.set_seed(5)
  local r2 = g:sample(100)
  T.eq(r1["000"], r2["000"], "run rng reproducible")
end)

T.test("measure (keep true / false)", function()
  local function ghz() return qd.state(3):h(0):cx(0, 1):cx(1, 2) end
  local rng = qd.rng(12)
  local seen = { ["0"] = 0, ["1"] = 0 }
  for _ = 1, 200 do
    local s = ghz()
    local out, p, post = s:measure({ 0 }, rng)
    seen[out] = seen[out] + 1
    T.near(p, 0.5, 1e-12)
    if not T.ok(rawequal(post, s), "keep=true returns the state itself") then break end
    local want = out == "0" and "000" or "111"
    T.near(s:amp(want), 1, 1e-12, "collapsed and renormalised")
  end
  T.eq(seen["0"] + seen["1"], 200)
  T.near(seen["0"] / 200, 0.5, 0.15, "outcomes roughly balanced")
  -- keep=false: a new state on the unmeasured qubits, s unchanged
  local s = ghz()
  local before = s:totable()
  local out, p, post = s:measure({ 1 }, qd.rng(4), { keep = false })
  T.eq(qd.type(post), "qd.State"); T.eq(post.n, 2)
  T.near(p, 0.5, TOL)
  T.near(post:amp(out == "0" and "00" or "11"), 1, TOL)
  T.eq(R.vdiff(s:totable(), before), 0, "keep=false leaves s unchanged")
  -- multi-qubit outcome, order of qubits given: |110>, measure {2, 0} -> "01"
  local o2 = qd.state(3, "110"):measure({ 2, 0 }, qd.rng(1))
  T.eq(o2, "01")
  -- explicit keep=true option, and no rng (run rng)
  local o3, p3, post3 = qd.state(2, "10"):measure(0, { keep = true })
  T.eq(o3, "1"); T.eq(p3, 1); T.eq(post3.n, 2)
  -- (unnormalised input cannot be made with state.from any more: value checks)
  local u = qd.state.from({ 1, 1 }, { normalize = true })
  local _, pu = u:measure(0, qd.rng(1))
  T.near(pu, 0.5, TOL)
  T.near(u:norm(), 1, TOL, "post-state normalised")
  -- same seed, same outcomes
  local a, b = {}, {}
  local ra, rb = qd.rng(99), qd.rng(99)
  for i = 1, 20 do
    a[i] = qd.state(1):h(0):measure(0, ra)
    b[i] = qd.state(1):h(0):measure(0, rb)
  end
  T.eq(table.concat(a), table.concat(b), "measurement reproducible per seed")
  -- probabilities of a partial measurement on a random state match probs()
  local h = qd.haar_state(3, qd.rng(21))
  local pr = h:probs({ 1, 2 })
  local o, ph, hp = h:copy():measure({ 1, 2 }, qd.rng(8), { keep = false })
  T.near(ph, pr[tonumber(o, 2) + 1], 1e-14)
  T.near(hp:norm(), 1, 1e-12)
end)

T.test("project", function()
  local g = qd.state(3):h(0):cx(0, 1):cx(1, 2)
  local gc = g:copy()
  local p, post = gc:project({ 0 }, "1")
  T.ok(rawequal(post, gc), "keep=true projects in place and returns the state")
  T.near(p, 0.5, TOL)
  T.near(post:amp("111"), 1, TOL)
  local p2, post2 = g:project({ 0, 1 }, "11", { keep = false })
  T.near(p2, 0.5, TOL)
  T.eq(post2.n, 1); T.near(post2:amp("1"), 1, TOL)
  T.near(g:amp("000"), 1 / math.sqrt(2), TOL, "keep=false leaves g unchanged")
  T.raises(function() g:project({ 0, 1 }, "10") end, "probability 0")
  local s = qd.haar_state(2, qd.rng(3))
  local pp = s:probs({ 1 })
  local q, sp = s:copy():project(1, "0")
  T.near(q, pp[1], 1e-14)
  T.near(sp:norm(), 1, 1e-12)
end)

T.test("expect", function()
  local g = qd.state(3):h(0):cx(0, 1):cx(1, 2)
  T.near(g:expect("ZZI"), 1, TOL); T.near(g:expect("XXX"), 1, TOL)
  T.near(g:expect("ZZ", { 0, 2 }), 1, TOL); T.near(g:expect("X", { 0 }), 0, TOL)
  T.near(g:expect("YYX"), -1, TOL, "<GHZ|YYX|GHZ> = -1")
  T.near(g:expect("III"), 1, TOL)
  T.near(qd.state(1, "1"):expect("Z"), -1, TOL)
  T.near(qd.state(1):h(0):s(0):expect("Y"), 1, TOL, "|+i> has <Y> = 1")
  -- random state, random strings, against the naive <psi|P|psi>
  local s = qd.haar_state(3, qd.rng(17))
  local v = s:totable()
  local P = { I = R.eye(2), X = R.X, Y = R.Y, Z = R.Z }
  for _, case in ipairs { { "XYZ" }, { "ZIY" }, { "YX", { 2, 0 } }, { "Z", { 1 } }, { "XZ", { 0, 2 } } } do
    local ops, qs = case[1], case[2]
    local full = qs or { 0, 1, 2 }
    local M = { { R.C(1) } }
    for i = 1, #ops do M = R.kron(M, P[ops:sub(i, i)]) end
    local Pv = R.apply(R.full(M, full, 3), v)
    local e = 0
    for i = 1, 8 do e = e + R.mul(R.conj(v[i]), Pv[i])[1] end
    T.near(qs and s:expect(ops, qs) or s:expect(ops), e, 1e-13, "expect " .. ops)
  end
end)

T.test("embed, kron, ptrace, schmidt_rank", function()
  local s = qd.haar_state(2, qd.rng(31))
  local e = s:embed(2)
  T.eq(e.n, 4)
  local st, et = s:totable(), e:totable()
  T.eq(R.vdiff({ table.unpack(et, 1, 4) }, st), 0, "ancillas most significant: first block is s")
  T.eq(R.vdiff({ table.unpack(et, 5, 16) }, (function() local z = {} for i = 1, 12 do z[i] = { 0, 0 } end return z end)()), 0,
       "rest zero")
  T.eq(R.vdiff(s:embed(0):totable(), st), 0, "embed(0) is a copy")
  -- embed = kron(|0..0>, s)
  T.ok(R.vdiff(qd.kron(qd.state(2), s):totable(), et) < 1e-15)
  -- kron order: a's qubits first
  local k = qd.state(1, "1"):kron(qd.state(2, "01"))
  T.eq(k.n, 3); T.eq(k:amp("101"), 1)
  local a, b = qd.haar_state(1, qd.rng(1)), qd.haar_state(2, qd.rng(2))
  local kt = qd.kron(a, b):totable()
  local at, bt = a:totable(), b:totable()
  local want = {}
  for i = 1, 2 do for j = 1, 4 do want[#want + 1] = R.mul(at[i], bt[j]) end end
  T.ok(R.vdiff(kt, want) < 1e-15, "kron against the naive product")
  -- mixed kron: State (x) DensityMatrix is a DensityMatrix
  local m = qd.kron(a, qd.maximally_mixed(1))
  T.eq(qd.type(m), "qd.DensityMatrix"); T.eq(m.n, 2)
  T.near(m:purity(), 0.5, TOL)
  -- ptrace of a Bell pair is I/2; kept qubits in the given order
  local bell = qd.state(2):h(0):cx(0, 1)
  local r = bell:ptrace({ 0 })
  T.eq(qd.type(r), "qd.DensityMatrix"); T.eq(r.n, 1)
  T.near(r:get(1, 1), 0.5, TOL); T.near(r:get(2, 2), 0.5, TOL); T.near(r:get(1, 2), 0, TOL)
  local p = qd.state(3, "100"):ptrace({ 2, 0 })
  T.near(p:get(2, 2), 1, TOL, "ptrace({2,0}) of |100> is |01><01|")
  local pp = qd.state(3, "100"):ptrace(0)
  T.near(pp:get(2, 2), 1, TOL, "single qubit as integer")
  -- ptrace of a product state recovers the factor
  local prod = qd.kron(a, b)
  local ra = prod:ptrace({ 0 })
  T.ok(R.mdiff(R.dm_rows(ra), R.outer(at)) < 1e-13, "ptrace(a (x) b) = |a><a|")
  local rb = prod:ptrace({ 1, 2 })
  T.ok(R.mdiff(R.dm_rows(rb), R.outer(bt)) < 1e-13, "ptrace(a (x) b) = |b><b|")
  -- Schmidt rank
  T.eq(prod:schmidt_rank({ 0 }), 1, "product state")
  T.eq(bell:schmidt_rank({ 0 }), 2, "Bell pair")
  local ghz = qd.state(3):h(0):cx(0, 1):cx(1, 2)
  T.eq(ghz:schmidt_rank({ 0 }), 2); T.eq(ghz:schmidt_rank({ 0, 2 }), 2)
  T.eq(qd.haar_state(4, qd.rng(3)):schmidt_rank({ 0, 1 }), 4, "generic state has full rank")
  T.eq(qd.haar_state(4, qd.rng(3)):schmidt_rank({ 0, 1 }, 10), 0, "tol above every coefficient")
  local eps = qd.state.from { 1, 0, 0, 1e-6 }:normalize()
  T.eq(eps:schmidt_rank({ 0 }), 2); T.eq(eps:schmidt_rank({ 0 }, 1e-3), 1, "tol")
end)

T.test("pure-state quantities", function()
  local a, b = qd.haar_state(2, qd.rng(1)), qd.haar_state(2, qd.rng(2))
  local re, im = a:inner(b)
  local f = re * re + im * im
  T.near(qd.fidelity(a, b), f, 1e-14, "fidelity pure/pure")
  T.near(a:fidelity(b), f, 1e-14, "as a method")
  T.near(qd.trace_distance(a, b), math.sqrt(1 - f), 1e-12, "pure trace distance sqrt(1-F)")
  T.near(a:trace_distance(b), math.sqrt(1 - f), 1e-12)
  T.near(qd.trace_distance(a, qd.dm(b)), math.sqrt(1 - f), 1e-10, "pure vs dm path agrees")
  T.near(qd.purity(a), 1, 1e-12); T.near(a:purity(), 1, 1e-12)
  T.eq(qd.entropy(a), 0); T.eq(a:entropy(), 0)
  T.near(qd.fidelity(a, a), 1, 1e-12)
  T.near(qd.fidelity(qd.state(1), qd.state(1, "1")), 0, TOL)
end)

T.test("size guard", function()
  T.raises(function() qd.state(40) end, "not enough memory for a 40-qubit state (16 TiB requested)")
  T.raises(function() qd.state(34) end, "not enough memory for a 34-qubit state (256 GiB requested)")
  T.raises(function() qd.haar_state(45) end, "not enough memory for a 45-qubit state")
  T.raises(function() qd.state(61) end, "not enough memory for a 61-qubit state")
  T.raises(function() qd.state(2000) end, "not enough memory for a 2000-qubit state")
  T.raises(function() qd.state(8):embed(50) end, "not enough memory for a 58-qubit state")
  T.raises(function() qd.kron(qd.state(20), qd.state(20)) end, "not enough memory for a 40-qubit state")
end)

T.test("natural spellings: gate aliases, E[k] = s, expect of a PauliSum, integer seeds", function()
  local a = qd.state(2):H(0):cnot(0, 1)
  local b = qd.state(2):h(0):cx(0, 1)
  T.ok(math.abs(qd.fidelity(a, b) - 1) < 1e-12, "H and cnot are h and cx")
  T.ok(qd.state(3):x(0):x(1):toffoli(0, 1, 2):probs()[8] == 1, "toffoli is ccx")
  T.ok(#qd.circuit(2):CX(0, 1) == 1, "circuit methods too")
  T.ok(qd.state(1).nosuchgate == nil, "an unknown name is still nil")
  local E = qd.ensemble(1, 3)
  E[2] = qd.state(1):x(0)
  T.ok(E[2]:probs()[2] == 1 and E[1]:probs()[1] == 1, "E[k] = s sets member k")
  local ok, err = pcall(function() a.foo = 1 end)
  T.ok(not ok and tostring(err):find("cannot assign to field 'foo' of a qd.State", 1, true) ~= nil, tostring(err))
  T.ok(math.abs(b:expect(qd.pauli_sum("ZZ")) - 1) < 1e-12, "expect takes a PauliSum")
  T.ok(math.abs(qd.fidelity(qd.haar_state(2, 5), qd.haar_state(2, qd.rng(5))) - 1) < 1e-12, "an integer seed is qd.rng(seed)")
  local ok2 = pcall(function() qd.rng(1).uniform(5) end)
  T.ok(not ok2, "a method's self is never a seed")
end)
