-- test_dm.lua — qd.DensityMatrix from Lua: constructors (n, state, checked matrix),
-- accessors, every gate as U rho U^dagger against explicit matrices, :unitary, probs,
-- sampling, measurement (keep true/false), expectations, kron, partial trace, and the
-- mixed-state quantities (fidelity pure/mixed and Uhlmann, trace distance, purity,
-- entropy, eigenvalues) against closed forms.
local T = require "testlib"
local R = require "qdref"

local TOL = 1e-12

-- a random mixed state on n qubits as rows (sum of w_k |psi_k><psi_k|)
local function mixed_rows(n, seed, weights)
  local rng = qd.rng(seed)
  local d = 1 << n
  local m = {}
  for i = 1, d do
    m[i] = {}
    for j = 1, d do m[i][j] = { 0, 0 } end
  end
  for _, w in ipairs(weights) do
    local o = R.outer(qd.haar_state(n, rng):totable())
    for i = 1, d do
      for j = 1, d do m[i][j] = R.add(m[i][j], R.scale(o[i][j], w)) end
    end
  end
  return m
end

local function diag_dm(p)
  local d = #p
  local m = {}
  for i = 1, d do
    m[i] = {}
    for j = 1, d do m[i][j] = i == j and p[i] or 0 end
  end
  return qd.dm(m)
end

T.test("constructors and accessors", function()
  local z = qd.dm(2)
  T.eq(qd.type(z), "qd.DensityMatrix")
  T.eq(z.n, 2); T.eq(z.dim, 4); T.eq(#z, 4)
  T.eq(z:get(1, 1), 1); T.eq(z:get(2, 2), 0); T.eq(z:trace(), 1)
  local mm = qd.maximally_mixed(3)
  T.eq(mm.n, 3)
  for i = 1, 8 do T.near(mm:get(i, i), 1 / 8, TOL) end
  T.near(mm:get(1, 2), 0, TOL)
  T.near(mm:trace(), 1, TOL)
  -- from a state
  local s = qd.haar_state(2, qd.rng(4))
  local rho = qd.dm(s)
  T.ok(R.mdiff(R.dm_rows(rho), R.outer(s:totable())) < TOL, "qd.dm(state) = |s><s|")
  -- from a table of rows (with {re, im} entries) and from a qd.Matrix
  local rows = mixed_rows(2, 7, { 0.6, 0.4 })
  local a = qd.dm(rows)
  T.ok(R.mdiff(R.dm_rows(a), rows) < 1e-15, "qd.dm(rows)")
  local b = qd.dm(qd.matrix(rows))
  T.ok(R.mdiff(R.dm_rows(b), rows) < 1e-15, "qd.dm(qd.Matrix)")
  -- get(i, j) is (row, column), column-major storage does not leak out
  local re, im = a:get(1, 2)
  T.eq(re, rows[1][2][1]); T.eq(im, rows[1][2][2])
  local re2, im2 = a:get(2, 1)
  T.near(re2, re, 1e-15); T.near(im2, -im, 1e-15, "Hermitian")
  -- matrix(): a complex qd.Matrix copy
  local M = a:matrix()
  T.eq(qd.type(M), "qd.Matrix"); T.ok(M:is_complex())
  local r, c = M:shape()
  T.eq(r, 4); T.eq(c, 4)
  local mr, mi = M:get(1, 2)
  T.eq(mr, re); T.eq(mi, im)
  M:set(1, 1, 5)
  T.eq(a:get(1, 1), rows[1][1][1], "matrix() is a copy")
  T.ok(R.mdiff(R.dm_rows(qd.dm(a:matrix())), rows) < 1e-15, "round trip through matrix()")
  -- copy is independent
  local c2 = a:copy()
  c2:x(0)
  T.eq(a:get(1, 1), rows[1][1][1], "copy independent")
  T.ok(math.abs(c2:get(1, 1) - rows[1][1][1]) > 1e-6 or math.abs(rows[1][1][1] - rows[3][3][1]) < 1e-9)
end)

T.test("gates: U rho U^dagger against explicit matrices", function()
  local n = 3
  local rows = mixed_rows(n, 42, { 0.5, 0.3, 0.2 })
  local rho0 = qd.dm(rows)
  local angles = { 0.7, -1.3, 2.1 }
  local count = 0
  for _, name in ipairs(R.gate_names) do
    local k, np = R.gate_info[name][1], R.gate_info[name][2]
    local M = R.gates[name](table.unpack(angles, 1, np))
    for _, qs in ipairs(R.qubit_choices(n, k)) do
      local rho = rho0:copy()
      local args = { table.unpack(qs) }
      for i = 1, np do args[#args + 1] = angles[i] end
      local ret = rho[name](rho, table.unpack(args))
      T.ok(rawequal(ret, rho), name .. " returns self")
      local U = R.full(M, qs, n)
      local want = R.matmul(R.matmul(U, rows), R.dagger(U))
      local d = R.mdiff(R.dm_rows(rho), want)
      if not T.ok(d < 1e-12, string.format("dm %s on {%s}: max diff %g", name, table.concat(qs, ","), d)) then
        break
      end
      count = count + 1
    end
  end
  T.eq(count, 138, "gate applications checked")
  -- the DM result equals |U s><U s| for a pure state
  local s = qd.haar_state(3, qd.rng(5))
  for _, name in ipairs { "h", "ry", "cx", "crz", "ryy", "ccx", "u" } do
    local k, np = R.gate_info[name][1], R.gate_info[name][2]
    local args = {}
    for i = 1, k do args[i] = k - i end       -- reversed qubit order
    for i = 1, np do args[#args + 1] = angles[i] end
    local a = qd.dm(s)[name](qd.dm(s), table.unpack(args))
    local r = qd.dm(s)
    r[name](r, table.unpack(args))
    local t = s:copy()
    t[name](t, table.unpack(args))
    T.ok(R.mdiff(R.dm_rows(r), R.dm_rows(qd.dm(t))) < 1e-13, "dm gate = dm of gated state: " .. name)
    T.eq(qd.type(a), "qd.DensityMatrix")
  end
end)

T.test("unitary on a density matrix", function()
  local rows = mixed_rows(3, 8, { 0.7, 0.3 })
  local U = R.matmul(R.kron(R.gates.u(0.3, 1.2, -0.7), R.gates.rx(0.9)), R.gates.cy())
  for _, qs in ipairs { { 0, 1 }, { 2, 0 }, { 1, 2 } } do
    local Uf = R.full(U, qs, 3)
    local want = R.matmul(R.matmul(Uf, rows), R.dagger(Uf))
    local rho = qd.dm(rows):unitary(qd.matrix(U), qs)
    T.ok(R.mdiff(R.dm_rows(rho), want) < 1e-12, "dm unitary {" .. table.concat(qs, ",") .. "}")
  end
  local r1 = qd.dm(1):unitary({ { 0, 1 }, { 1, 0 } }, 0)
  T.near(r1:get(2, 2), 1, TOL)
end)

T.test("probs, sample, expect", function()
  local rho = diag_dm { 0.1, 0.2, 0.3, 0.4 }
  local p = rho:probs()
  T.eq(qd.type(p), "qd.Vector"); T.eq(#p, 4)
  for i, x in ipairs { 0.1, 0.2, 0.3, 0.4 } do T.near(p[i], x, 1e-15) end
  local p0 = rho:probs({ 0 })
  T.near(p0[1], 0.3, 1e-15); T.near(p0[2], 0.7, 1e-15)
  local p1 = rho:probs({ 1, 0 })   -- outcome index = 2*q1 + q0
  T.near(p1[1], 0.1, 1e-15); T.near(p1[2], 0.3, 1e-15); T.near(p1[3], 0.2, 1e-15); T.near(p1[4], 0.4, 1e-15)
  -- probs of qd.dm(s) equal the state's
  local s = qd.haar_state(3, qd.rng(2))
  local ps, pd = s:probs({ 2, 0 }), qd.dm(s):probs({ 2, 0 })
  for i = 1, 4 do T.near(pd[i], ps[i], 1e-14) end
  -- sample: counts sum to shots, frequencies near p (sd <= 0.0055 at 8000 shots)
  local c = rho:sample(8000, qd.rng(1))
  local tot = 0
  for _, v in pairs(c) do tot = tot + v end
  T.eq(tot, 8000, "counts sum to shots")
  T.near(c["00"] / 8000, 0.1, 0.03); T.near(c["11"] / 8000, 0.4, 0.03)
  local c2 = rho:sample(8000, qd.rng(1))
  T.eq(c2["01"], c["01"], "same seed same counts")
  local cq = rho:sample(1000, qd.rng(2), { qubits = { 0 } })
  T.eq((cq["0"] or 0) + (cq["1"] or 0), 1000)
  -- expectations: linear in rho; match the state's for a pure rho
  for _, ops in ipairs { "XYZ", "ZZI", "IXY", "YYY" } do
    T.near(qd.dm(s):expect(ops), s:expect(ops), 1e-13, "dm expect " .. ops)
  end
  T.near(qd.dm(s):expect("XZ", { 2, 0 }), s:expect("XZ", { 2, 0 }), 1e-13)
  T.near(rho:expect("ZI"), 0.1 + 0.2 - 0.3 - 0.4, 1e-15)
  T.near(rho:expect("Z", { 1 }), 0.1 - 0.2 + 0.3 - 0.4, 1e-15)
  T.near(rho:expect("XX"), 0, 1e-15)
  T.near(qd.maximally_mixed(2):expect("II"), 1, 1e-15)
end)

T.test("measure (keep true / false)", function()
  local bell = qd.dm(qd.state(2):h(0):cx(0, 1))
  local out, p, post = bell:measure({ 0 }, qd.rng(3))
  T.near(p, 0.5, TOL)
  T.ok(rawequal(post, bell), "keep=true: rho itself, collapsed")
  local idx = out == "0" and 1 or 4
  T.near(bell:get(idx, idx), 1, TOL); T.near(bell:trace(), 1, TOL)
  -- keep=false traces out the measured qubits
  local b2 = qd.dm(qd.state(2):h(0):cx(0, 1))
  local o2, p2, q2 = b2:measure({ 1 }, qd.rng(4), { keep = false })
  T.eq(qd.type(q2), "qd.DensityMatrix"); T.eq(q2.n, 1)
  T.near(p2, 0.5, TOL)
  T.near(q2:get(o2 == "0" and 1 or 2, o2 == "0" and 1 or 2), 1, TOL)
  T.near(b2:get(1, 4), 0.5, TOL, "keep=false leaves rho unchanged")
  -- mixed: diag(0.1, 0.2, 0.3, 0.4); measuring qubit 0 gives p(0) = 0.3; frequencies
  local rng, n0 = qd.rng(10), 0
  for _ = 1, 400 do
    local o, pp, q = diag_dm { 0.1, 0.2, 0.3, 0.4 }:measure(0, rng, { keep = false })
    if o == "0" then
      n0 = n0 + 1
      T.near(pp, 0.3, 1e-14); T.near(q:get(1, 1), 1 / 3, 1e-14)
    else
      T.near(pp, 0.7, 1e-14); T.near(q:get(2, 2), 4 / 7, 1e-14)
    end
  end
  T.near(n0 / 400, 0.3, 0.12, "outcome frequency")
  -- the post-measurement state matches the pure-state path
  local s = qd.haar_state(3, qd.rng(6))
  local os_, ps_, posts = s:copy():measure({ 2, 0 }, qd.rng(77), { keep = false })
  local od, pd, postd = qd.dm(s):measure({ 2, 0 }, qd.rng(77), { keep = false })
  T.eq(od, os_, "same outcome for the same u")
  T.near(pd, ps_, 1e-13)
  T.ok(R.mdiff(R.dm_rows(postd), R.dm_rows(qd.dm(posts))) < 1e-12, "dm post = |post><post|")
  local ok_, pk_, pk = qd.dm(s):measure({ 1 }, qd.rng(5))
  local os2 = s:copy():measure({ 1 }, qd.rng(5))
  T.eq(ok_, os2); T.near(pk:trace(), 1, 1e-12); T.ok(pk_ > 0)
end)

T.test("kron and ptrace", function()
  local a = qd.dm(mixed_rows(1, 1, { 0.8, 0.2 }))
  local b = qd.dm(mixed_rows(2, 2, { 0.5, 0.5 }))
  local k = qd.kron(a, b)
  T.eq(k.n, 3)
  local want = R.kron(R.dm_rows(a), R.dm_rows(b))
  T.ok(R.mdiff(R.dm_rows(k), want) < 1e-15, "kron of density matrices")
  T.ok(R.mdiff(R.dm_rows(a:kron(b)), want) < 1e-15, "as a method")
  T.ok(R.mdiff(R.dm_rows(k:ptrace({ 0 })), R.dm_rows(a)) < 1e-14, "ptrace recovers a")
  T.ok(R.mdiff(R.dm_rows(k:ptrace({ 1, 2 })), R.dm_rows(b)) < 1e-14, "ptrace recovers b")
  -- order of kept qubits: {2, 1} is b with its qubits swapped
  local sw = b:copy():swap(0, 1)
  T.ok(R.mdiff(R.dm_rows(k:ptrace({ 2, 1 })), R.dm_rows(sw)) < 1e-14, "kept order")
  -- dm (x) state promotes the state
  local s = qd.state(1, "1")
  local m = qd.kron(a, s)
  T.eq(qd.type(m), "qd.DensityMatrix")
  T.ok(R.mdiff(R.dm_rows(m), R.kron(R.dm_rows(a), R.outer(s:totable()))) < 1e-15)
  -- ptrace of dm(state) equals the state's ptrace
  local h = qd.haar_state(3, qd.rng(3))
  T.ok(R.mdiff(R.dm_rows(qd.dm(h):ptrace({ 2, 0 })), R.dm_rows(h:ptrace({ 2, 0 }))) < 1e-14)
end)

-- Bloch vector of a 1-qubit density matrix
local function bloch(r) return { r:expect("X"), r:expect("Y"), r:expect("Z") } end

T.test("quantities: fidelity, trace distance, purity, entropy, eigenvalues", function()
  -- pure / mixed: <psi|rho|psi>
  local s = qd.haar_state(2, qd.rng(1))
  local rows = mixed_rows(2, 9, { 0.7, 0.2, 0.1 })
  local rho = qd.dm(rows)
  local v = s:totable()
  local rv = R.apply(rows, v)
  local f = 0
  for i = 1, 4 do f = f + R.mul(R.conj(v[i]), rv[i])[1] end
  T.near(qd.fidelity(s, rho), f, 1e-14, "pure/mixed")
  T.near(qd.fidelity(rho, s), f, 1e-14, "mixed/pure (symmetric)")
  T.near(rho:fidelity(s), f, 1e-14); T.near(s:fidelity(rho), f, 1e-14)
  -- rank-deficient arguments: the Uhlmann path is accurate to rounding there too
  T.near(qd.fidelity(qd.dm(s), rho), f, 1e-13, "Uhlmann reduces to <psi|rho|psi>")
  T.near(qd.fidelity(rho, rho), 1, 1e-13, "F(rho, rho) = 1")
  local full = qd.dm(mixed_rows(2, 19, { 0.4, 0.3, 0.2, 0.1 }))   -- full rank
  T.near(qd.fidelity(full, full), 1, 1e-12, "F(rho, rho) = 1 at full rank")
  -- commuting: F = (sum sqrt(p q))^2; T = 1/2 sum |p - q|
  local p, q = { 0.1, 0.2, 0.3, 0.4 }, { 0.25, 0.25, 0.4, 0.1 }
  local sq, td = 0, 0
  for i = 1, 4 do sq = sq + math.sqrt(p[i] * q[i]); td = td + math.abs(p[i] - q[i]) / 2 end
  T.near(qd.fidelity(diag_dm(p), diag_dm(q)), sq * sq, 1e-12, "commuting Uhlmann")
  T.near(qd.trace_distance(diag_dm(p), diag_dm(q)), td, 1e-12, "commuting trace distance")
  -- qubits: F = Tr(rho sigma) + 2 sqrt(det rho det sigma); T = |r - s| / 2
  for seed = 1, 4 do
    local a = qd.dm(mixed_rows(1, 100 + seed, { 0.6, 0.4 }))
    local b = qd.dm(mixed_rows(1, 200 + seed, { 0.9, 0.1 }))
    local ra, rb = bloch(a), bloch(b)
    local dot, ra2, rb2, diff = 0, 0, 0, 0
    for i = 1, 3 do
      dot = dot + ra[i] * rb[i]; ra2 = ra2 + ra[i] ^ 2; rb2 = rb2 + rb[i] ^ 2
      diff = diff + (ra[i] - rb[i]) ^ 2
    end
    local want = (1 + dot) / 2 + 2 * math.sqrt((1 - ra2) / 4 * (1 - rb2) / 4)
    T.near(qd.fidelity(a, b), want, 1e-10, "qubit Uhlmann closed form")
    T.near(a:fidelity(b), want, 1e-10)
    T.near(qd.trace_distance(a, b), math.sqrt(diff) / 2, 1e-10, "qubit trace distance = |r - s|/2")
    T.near(b:trace_distance(a), math.sqrt(diff) / 2, 1e-10)
    T.near(a:purity(), (1 + ra2) / 2, 1e-12, "qubit purity (1 + |r|^2)/2")
  end
  T.near(qd.fidelity(qd.maximally_mixed(1), qd.dm(1)), 0.5, 1e-10)
  T.near(qd.trace_distance(qd.maximally_mixed(1), qd.dm(1)), 0.5, 1e-12)
  T.near(qd.trace_distance(rho, rho), 0, 1e-12)
  T.near(qd.trace_distance(s, rho), qd.trace_distance(qd.dm(s), rho), 1e-12, "state promoted")
  -- purity and entropy
  T.near(qd.purity(qd.maximally_mixed(3)), 1 / 8, 1e-15)
  T.near(qd.entropy(qd.maximally_mixed(3)), 3 * math.log(2), 1e-12, "entropy of I/8 = 3 ln 2")
  T.near(qd.maximally_mixed(2):entropy(), 2 * math.log(2), 1e-12)
  local h = 0
  for i = 1, 4 do h = h - p[i] * math.log(p[i]) end
  T.near(qd.entropy(diag_dm(p)), h, 1e-12, "entropy of diag(p)")
  T.near(diag_dm(p):purity(), 0.01 + 0.04 + 0.09 + 0.16, 1e-15)
  T.near(qd.entropy(qd.dm(s)), 0, 1e-10, "pure rho has zero entropy")
  -- purity = sum of squared moduli of the entries
  local pur = 0
  for i = 1, 4 do for j = 1, 4 do pur = pur + R.abs2(rows[i][j]) end end
  T.near(qd.purity(rho), pur, 1e-14)
  -- eigenvalues: ascending qd.Vector; weights of orthogonal mixtures
  local ev = diag_dm { 0.4, 0.1, 0.3, 0.2 }:eigenvalues()
  T.eq(qd.type(ev), "qd.Vector"); T.eq(#ev, 4)
  for i, x in ipairs { 0.1, 0.2, 0.3, 0.4 } do T.near(ev[i], x, 1e-14) end
  local e2 = rho:eigenvalues()
  T.near(e2:sum(), 1, 1e-12)
  T.ok(e2[1] <= e2[2] and e2[2] <= e2[3] and e2[3] <= e2[4], "ascending")
  local ent = 0
  for i = 1, 4 do if e2[i] > 1e-15 then ent = ent - e2[i] * math.log(e2[i]) end end
  T.near(rho:entropy(), ent, 1e-10, "entropy from eigenvalues")
end)

T.test("size guard", function()
  T.raises(function() qd.dm(31) end, "not enough memory for a 31-qubit density matrix (64 EiB requested)")
  T.raises(function() qd.dm(30) end, "not enough memory for a 30-qubit density matrix (16 EiB requested)")
  T.raises(function() qd.maximally_mixed(45) end, "not enough memory for a 45-qubit density matrix (2^94 B requested)")
  T.raises(function() qd.dm(20) end, "not enough memory for a 20-qubit density matrix (16 TiB requested)")
  T.raises(function() qd.maximally_mixed(25) end, "not enough memory for a 25-qubit density matrix")
  T.raises(function() qd.state(20):dm() end, "not enough memory for a 20-qubit density matrix")
  T.raises(function() qd.state(20):ptrace({ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18 }) end,
           "not enough memory for a 19-qubit density matrix")
end)

T.test("dm adjoint: Pauli rotations (one- and two-qubit, scaled slots) next to generic gates = finite differences", function()
  local c = qd.circuit(3)
  c:ry(0); c:rx(1); c:rz(2); c:ryy(0, 2); c:rxx(1, 2); c:rzz(0, 1); c:ry(1, { 1, scale = -2.5, offset = 0.3 })
  c:crx(0, 2); c:u(1); c:cx(0, 1); c:rx(2)
  local th = qd.rng(3):normal(0, 1, c:nparams())
  local x = qd.dm(qd.haar_state(3, qd.rng(1))) * 0.5 + qd.maximally_mixed(3) * 0.5
  local tgt = qd.dm(qd.haar_state(3, qd.rng(2)))
  local function L(t) return (qd.loss.infidelity(c:run(x, t), tgt)) end
  local _, G = qd.loss.infidelity(c:run(x, th), tgt, { grad = true })
  local g = c:vjp(x, th, G)
  local worst = 0
  for i = 1, c:nparams() do
    local a, b = th:copy(), th:copy()
    a[i], b[i] = a[i] + 1e-6, b[i] - 1e-6
    worst = math.max(worst, math.abs((L(a) - L(b)) / 2e-6 - g[i]))
  end
  T.ok(worst < 1e-7, string.format("max error %.2e", worst))
end)
