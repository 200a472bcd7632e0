-- test_ensemble.lua — qd.Ensemble from Lua: constructors, member access (E[k] copies,
-- E:set), conversions (from{...}, from(M), states, mean_dm), every gate on every member
-- against explicit matrices (one angle, or per-member angles as a qd.Vector or table),
-- :unitary, probs, batched expectations, overlaps, fidelities, measurement (each member
-- its own outcome, independent of N and of the thread count), embedding.
local T = require "testlib"
local R = require "qdref"

local TOL = 1e-12

T.test("constructors and member access", function()
  local E = qd.ensemble(2, 5)
  T.eq(qd.type(E), "qd.Ensemble")
  T.eq(#E, 5); T.eq(E.N, 5); T.eq(E.n, 2); T.eq(E.dim, 4)
  for k = 1, 5 do T.eq(E[k]:amp(1), 1, "member is |00>") end
  T.raises(function() return E[6] end, "ensemble member 1..5 expected, got 6")
  T.raises(function() return E[0] end, "ensemble member 1..5 expected, got 0")
  T.raises(function() return E[1.5] end, "ensemble member 1..5 expected, got non-integer 1.5")
  T.eq(qd.type(E[10 / 2]), "qd.State", "E[5.0] is E[5] (an integral float)")
  T.eq(E.nonexistent, nil, "unknown keys are nil")
  -- E[k] is a copy
  local m = E[2]
  T.eq(qd.type(m), "qd.State"); T.eq(m.n, 2)
  m:x(0)
  T.eq(E[2]:amp(1), 1, "changing E[k] does not change E")
  -- E:get(k) the same
  T.eq(E:get(3):amp(1), 1)
  -- E:set(k, s) copies s in
  local s = qd.state(2, "11")
  T.ok(rawequal(E:set(2, s), E), "set returns E")
  T.eq(E[2]:amp("11"), 1)
  s:x(0)
  T.eq(E[2]:amp("11"), 1, "set copies the state")
  T.eq(E[1]:amp(1), 1, "other members untouched")
  -- from{states}
  local a, b, c = qd.haar_state(2, qd.rng(1)), qd.haar_state(2, qd.rng(2)), qd.haar_state(2, qd.rng(3))
  local F = qd.ensemble.from { a, b, c }
  T.eq(#F, 3); T.eq(F.n, 2)
  T.eq(R.vdiff(F[1]:totable(), a:totable()), 0); T.eq(R.vdiff(F[3]:totable(), c:totable()), 0)
  -- from(M): N x 2^n matrix, one member per row
  local rows = {}
  for k, st in ipairs { a, b, c } do rows[k] = st:totable() end
  local G = qd.ensemble.from(qd.matrix(rows))
  T.eq(#G, 3); T.eq(G.n, 2)
  T.eq(R.vdiff(G[2]:totable(), b:totable()), 0, "from(M) row k is member k")
  local Rm = qd.ensemble.from(qd.matrix { { 1, 0 }, { 0, 1 }, { 0.6, 0.8 } })   -- a real matrix
  T.eq(#Rm, 3); T.eq(Rm.n, 1)
  T.eq(Rm[2]:amp(2), 1); T.eq(Rm[3]:amp(2), 0.8)
  -- states(): table of copies
  local st = F:states()
  T.eq(#st, 3); T.eq(qd.type(st[2]), "qd.State")
  T.eq(R.vdiff(st[2]:totable(), b:totable()), 0)
  st[2]:x(0)
  T.eq(R.vdiff(F[2]:totable(), b:totable()), 0, "states() are copies")
  -- copy
  local Fc = F:copy()
  Fc:x(0)
  T.eq(R.vdiff(F[1]:totable(), a:totable()), 0, "copy independent")
  -- norms
  local un = qd.ensemble.from({ qd.state.from({ 3, 4 }, { normalize = false }), qd.state.from { 1, 0 } }, { normalize = false })
  local nv = un:norms()
  T.eq(qd.type(nv), "qd.Vector"); T.eq(#nv, 2)
  T.near(nv[1], 5, TOL); T.near(nv[2], 1, TOL)
end)

T.test("haar ensembles: reproducible, independent of N", function()
  local E1 = qd.ensemble.haar(3, 6, qd.rng(3))
  local E2 = qd.ensemble.haar(3, 6, qd.rng(3))
  local E3 = qd.ensemble.haar(3, 2, qd.rng(3))
  for k = 1, 6 do T.near(E1[k]:norm(), 1, 1e-12, "member normalised") end
  T.eq(R.vdiff(E1[4]:totable(), E2[4]:totable()), 0, "same seed same ensemble")
  T.eq(R.vdiff(E1[2]:totable(), E3[2]:totable()), 0, "member k independent of N")
  T.ok(R.vdiff(E1[1]:totable(), E1[2]:totable()) > 1e-3, "members differ")
  T.ok(R.vdiff(E1[1]:totable(), qd.ensemble.haar(3, 1, qd.rng(4))[1]:totable()) > 1e-3, "seeds differ")
  -- and of the thread count
  local nt = qd.threads()
  qd.set_threads(1)
  local A = qd.ensemble.haar(4, 40, qd.rng(8))
  qd.set_threads(2)
  local B = qd.ensemble.haar(4, 40, qd.rng(8))
  qd.set_threads(nt)
  local same = true
  for k = 1, 40 do if R.vdiff(A[k]:totable(), B[k]:totable()) ~= 0 then same = false end end
  T.ok(same, "haar ensemble identical for 1 and 2 threads")
  -- run rng
  qd.set_seed(3)
  local r1 = qd.ensemble.haar(2, 3)
  qd.set_seed(3)
  local r2 = qd.ensemble.haar(2, 3)
  T.eq(R.vdiff(r1[3]:totable(), r2[3]:totable()), 0, "run rng reproducible")
end)

T.test("gates on every member against explicit matrices", function()
  local n, N = 3, 3
  local E0 = qd.ensemble.haar(n, N, qd.rng(42))
  local v0 = {}
  for k = 1, N do v0[k] = E0[k]:totable() end
  local angles = { 0.7, -1.3, 2.1 }
  local count = 0
  for _, name in ipairs(R.gate_names) do
    local k, np = R.gate_info[name][1], R.gate_info[name][2]
    local M = R.gates[name](table.unpack(angles, 1, np))
    for _, qs in ipairs(R.qubit_choices(n, k)) do
      local E = E0:copy()
      local args = { table.unpack(qs) }
      for i = 1, np do args[#args + 1] = angles[i] end
      T.ok(rawequal(E[name](E, table.unpack(args)), E), name .. " returns E")
      local U = R.full(M, qs, n)
      local worst = 0
      for m = 1, N do worst = math.max(worst, R.vdiff(E[m]:totable(), R.apply(U, v0[m]))) end
      if not T.ok(worst < 1e-12, string.format("ensemble %s on {%s}: %g", name, table.concat(qs, ","), worst)) then
        break
      end
      count = count + 1
    end
  end
  T.eq(count, 138, "gate applications checked")
end)

T.test("per-member angles (qd.Vector or table)", function()
  local n, N = 3, 4
  local E0 = qd.ensemble.haar(n, N, qd.rng(7))
  local v0 = {}
  for k = 1, N do v0[k] = E0[k]:totable() end
  local th = { { 0.1, -0.5, 1.7, 3.0 }, { 0.9, 0.2, -2.2, 0.4 }, { -1.0, 1.1, 0.3, 2.5 } }
  local count = 0
  for _, name in ipairs(R.gate_names) do
    local k, np = R.gate_info[name][1], R.gate_info[name][2]
    if np > 0 then
      for ci, qs in ipairs(R.qubit_choices(n, k)) do
        -- alternate the container: qd.Vector for odd choices, table for even; for u, one
        -- angle shared (a number) and the others per member
        local args = { table.unpack(qs) }
        for i = 1, np do
          if name == "u" and i == 2 then
            args[#args + 1] = 0.6
          elseif ci % 2 == 1 then
            args[#args + 1] = qd.vector(th[i])
          else
            args[#args + 1] = th[i]
          end
        end
        local E = E0:copy()
        E[name](E, table.unpack(args))
        local worst = 0
        for m = 1, N do
          local ps = {}
          for i = 1, np do ps[i] = (name == "u" and i == 2) and 0.6 or th[i][m] end
          local U = R.full(R.gates[name](table.unpack(ps)), qs, n)
          worst = math.max(worst, R.vdiff(E[m]:totable(), R.apply(U, v0[m])))
        end
        T.ok(worst < 1e-12, string.format("per-member %s on {%s}: %g", name, table.concat(qs, ","), worst))
        count = count + 1
      end
    end
  end
  T.eq(count, 5 * 3 + 7 * 6, "per-member gate applications checked")
  -- rng:uniform(a, b, N) gives the per-member vector directly (the QuDDPM forward step)
  local E = qd.ensemble(1, 5)
  local ang = qd.rng(1):uniform(0, math.pi, 5)
  E:ry(0, ang)
  for m = 1, 5 do T.near(E[m]:amp(2), math.sin(ang[m] / 2), 1e-14, "ry per member") end
end)

T.test("unitary on an ensemble", function()
  local E = qd.ensemble.haar(3, 3, qd.rng(5))
  local U = R.matmul(R.gates.rxx(0.4), R.kron(R.gates.h(), R.gates.u(0.2, 0.3, 0.4)))
  local before = {}
  for k = 1, 3 do before[k] = E[k]:totable() end
  E:unitary(qd.matrix(U), { 2, 0 })
  local Uf = R.full(U, { 2, 0 }, 3)
  for k = 1, 3 do T.ok(R.vdiff(E[k]:totable(), R.apply(Uf, before[k])) < 1e-12, "member " .. k) end
end)

T.test("probs, expect, overlaps, fidelities, mean_dm", function()
  local E = qd.ensemble.haar(3, 4, qd.rng(11))
  -- probs: 2^k x N, one column per member
  local P = E:probs({ 2, 0 })
  T.eq(qd.type(P), "qd.Matrix")
  local r, c = P:shape()
  T.eq(r, 4); T.eq(c, 4)
  for k = 1, 4 do
    local pk = E[k]:probs({ 2, 0 })
    for i = 1, 4 do T.near(P:get(i, k), pk[i], 1e-15) end
  end
  local Pa = E:probs()
  local ra = Pa:shape()
  T.eq(ra, 8, "all qubits by default")
  -- expect: a qd.Vector of N values, batched
  for _, case in ipairs { { "XYZ" }, { "ZX", { 2, 0 } }, { "Y", { 1 } } } do
    local v = case[2] and E:expect(case[1], case[2]) or E:expect(case[1])
    T.eq(qd.type(v), "qd.Vector"); T.eq(#v, 4)
    for k = 1, 4 do
      local want = case[2] and E[k]:expect(case[1], case[2]) or E[k]:expect(case[1])
      T.near(v[k], want, 1e-14, "batched expect " .. case[1])
    end
  end
  -- overlaps: N x M of |<e_i|f_j>|^2
  local F = qd.ensemble.haar(3, 3, qd.rng(12))
  local O = E:overlaps(F)
  T.eq(qd.type(O), "qd.Matrix")
  local orr, oc = O:shape()
  T.eq(orr, 4); T.eq(oc, 3)
  for i = 1, 4 do
    for j = 1, 3 do
      local re, im = E[i]:inner(F[j])
      T.near(O:get(i, j), re * re + im * im, 1e-14, "overlap")
    end
  end
  local S = E:overlaps()
  local sr, sc = S:shape()
  T.eq(sr, 4); T.eq(sc, 4)
  for i = 1, 4 do T.near(S:get(i, i), 1, 1e-12, "self overlap") end
  T.near(S:get(1, 2), S:get(2, 1), 1e-15, "symmetric")
  -- fidelities(s)
  local s = qd.haar_state(3, qd.rng(13))
  local fv = E:fidelities(s)
  T.eq(#fv, 4)
  for k = 1, 4 do T.near(fv[k], qd.fidelity(s, E[k]), 1e-14) end
  -- mean_dm
  local rho = E:mean_dm()
  T.eq(qd.type(rho), "qd.DensityMatrix"); T.eq(rho.n, 3)
  local want = {}
  for i = 1, 8 do
    want[i] = {}
    for j = 1, 8 do want[i][j] = { 0, 0 } end
  end
  for k = 1, 4 do
    local o = R.outer(E[k]:totable())
    for i = 1, 8 do for j = 1, 8 do want[i][j] = R.add(want[i][j], R.scale(o[i][j], 0.25)) end end
  end
  T.ok(R.mdiff(R.dm_rows(rho), want) < 1e-14, "mean_dm = (1/N) sum |e_k><e_k|")
  T.near(rho:trace(), 1, 1e-12)
  -- mean over a large Haar ensemble is close to I/d
  local H = qd.ensemble.haar(2, 2000, qd.rng(1)):mean_dm()
  T.ok(qd.trace_distance(H, qd.maximally_mixed(2)) < 0.06, "Haar mean ~ I/d")
end)

T.test("measure: each member its own outcome", function()
  -- members |000>, |111>, |+00>
  local E = qd.ensemble.from { qd.state(3), qd.state(3, "111"), qd.state(3):h(0) }
  local outs, p, post = E:measure({ 0 }, qd.rng(5))
  T.eq(type(outs), "table"); T.eq(#outs, 3)
  T.eq(outs[1], "0"); T.eq(outs[2], "1")
  T.eq(qd.type(p), "qd.Vector"); T.eq(#p, 3)
  T.eq(p[1], 1); T.eq(p[2], 1); T.near(p[3], 0.5, TOL)
  T.ok(rawequal(post, E), "keep=true: E itself")
  T.near(E[3]:amp(outs[3] .. "00"), 1, TOL, "member 3 collapsed")
  -- keep=false: a new ensemble on the unmeasured qubits
  local G = qd.ensemble.from { qd.state(3):h(0):cx(0, 1):cx(1, 2), qd.state(3, "101") }
  local o2, p2, q2 = G:measure({ 0, 2 }, qd.rng(6), { keep = false })
  T.eq(qd.type(q2), "qd.Ensemble"); T.eq(q2.n, 1); T.eq(#q2, 2)
  T.ok(o2[1] == "00" or o2[1] == "11"); T.eq(o2[2], "11")
  T.near(p2[1], 0.5, TOL); T.eq(p2[2], 1)
  T.near(q2[1]:amp(o2[1] == "00" and 1 or 2), 1, TOL)
  T.near(q2[2]:amp(1), 1, TOL, "|101> with qubits 0,2 measured leaves |0>")
  T.near(G[1]:amp("000"), 1 / math.sqrt(2), TOL, "keep=false leaves G unchanged")
  -- statistics: 1000 copies of ry-rotated |0> with P(1) = 0.3
  local th = 2 * math.asin(math.sqrt(0.3))
  local B = qd.ensemble(1, 1000):ry(0, th)
  local ob = B:measure(0, qd.rng(9))
  local ones = 0
  for _, o in ipairs(ob) do if o == "1" then ones = ones + 1 end end
  T.near(ones / 1000, 0.3, 0.072, "frequency of 1 within 5 sd")
  -- member k's outcome does not depend on N (substream k) nor on the thread count
  local H = qd.ensemble.haar(3, 50, qd.rng(2))
  local Hs = qd.ensemble.from { H[1], H[2], H[3] }
  local oa = H:copy():measure({ 1, 2 }, qd.rng(33))
  local ob2 = Hs:measure({ 1, 2 }, qd.rng(33))
  T.eq(table.concat(oa, ",", 1, 3), table.concat(ob2, ","), "outcomes independent of N")
  local nt = qd.threads()
  qd.set_threads(1)
  local t1 = H:copy():measure({ 0 }, qd.rng(1))
  qd.set_threads(2)
  local t2 = H:copy():measure({ 0 }, qd.rng(1))
  qd.set_threads(nt)
  T.eq(table.concat(t1), table.concat(t2), "outcomes independent of threads")
  -- probabilities match probs()
  local P = H:probs({ 1, 2 })
  local oh, ph = H:copy():measure({ 1, 2 }, qd.rng(4))
  for k = 1, 50 do
    if not T.near(ph[k], P:get(tonumber(oh[k], 2) + 1, k), 1e-14, "member probability") then break end
  end
  -- run rng
  qd.set_seed(4)
  local u1 = qd.ensemble(1, 8):h(0):measure(0)
  qd.set_seed(4)
  local u2 = qd.ensemble(1, 8):h(0):measure(0, nil, { keep = true })
  T.eq(table.concat(u1), table.concat(u2), "run rng reproducible")
end)

T.test("embed", function()
  local E = qd.ensemble.haar(2, 3, qd.rng(21))
  local A = E:embed(1)
  T.eq(qd.type(A), "qd.Ensemble"); T.eq(A.n, 3); T.eq(#A, 3)
  for k = 1, 3 do
    T.ok(R.vdiff(A[k]:totable(), E[k]:embed(1):totable()) == 0, "member embedded")
    local re = A[k]:probs({ 0 })[1]
    T.near(re, 1, 1e-12, "ancilla is |0> and most significant")
  end
  T.eq(R.vdiff(E:embed(0)[2]:totable(), E[2]:totable()), 0)
end)

T.test("size guard", function()
  T.raises(function() qd.ensemble(30, 1000) end,
           "not enough memory for an ensemble of 1000 30-qubit states (15.6 TiB requested)")
  T.raises(function() qd.ensemble.haar(40, 10) end, "not enough memory for an ensemble of 10 40-qubit states (160 TiB requested)")
  T.raises(function() qd.ensemble(20, 1 << 40) end, "not enough memory for an ensemble of")
  T.raises(function() qd.ensemble(20, 2):mean_dm() end, "not enough memory for a 20-qubit density matrix")
end)

-- quality bar: results identical for 1 and 2 threads — gates (per-member angles too),
-- expectations, probabilities, measurement, and the zgemm-backed overlaps and mean_dm
-- (qd_la_zgemm splits work in fixed blocks, OpenBLAS single-threaded in each).
T.test("identical results for 1 and 2 threads", function()
  local nt = qd.threads()
  local function run(t)
    qd.set_threads(t)
    local E = qd.ensemble.haar(8, 300, qd.rng(1))
    E:ry(3, qd.rng(2):uniform(0, 6, 300)):cz(0, 7):rxx(2, 5, qd.rng(3):uniform(0, 6, 300)):h(1)
    E:unitary(qd.gate_matrix("u", 0.1, 0.2, 0.3), { 4 })
    local s = qd.haar_state(18, qd.rng(5)):h(0):cx(3, 17):rz(9, 0.3):crx(17, 2, 0.4)
    local out = {
      E = E, s = s, ex = E:expect("XZ", { 1, 4 }), P = E:probs({ 0, 2 }), ps = s:probs({ 1, 2, 3 }),
      norm = s:norm(), sx = s:expect("XYZ", { 0, 5, 17 }),
      O = E:overlaps(qd.ensemble.haar(8, 250, qd.rng(4))), rho = E:mean_dm(),
    }
    out.meas = table.concat((E:copy():measure({ 2, 6 }, qd.rng(6))))
    qd.set_threads(nt)
    return out
  end
  local a, b = run(1), run(2)
  local function maxdiff(x, y)
    local d = 0
    local r, c = x:shape()
    for i = 1, r do
      for j = 1, c do
        local u1, v1, u2, v2
        if qd.type(x) == "qd.Vector" then u1, v1 = x:get(i); u2, v2 = y:get(i)
        else u1, v1 = x:get(i, j); u2, v2 = y:get(i, j) end
        d = math.max(d, math.abs(u1 - u2) + math.abs((v1 or 0) - (v2 or 0)))
      end
    end
    return d
  end
  local dE = 0
  for k = 1, 300, 13 do dE = math.max(dE, R.vdiff(a.E[k]:totable(), b.E[k]:totable())) end
  T.eq(dE, 0, "ensemble gates (amplitudes)")
  local ds = 0
  for i = 1, a.s.dim, 97 do
    local r1, i1 = a.s:amp(i)
    local r2, i2 = b.s:amp(i)
    ds = math.max(ds, math.abs(r1 - r2) + math.abs(i1 - i2))
  end
  T.eq(ds, 0, "18-qubit state gates")
  T.eq(maxdiff(a.ex, b.ex), 0, "batched expect"); T.eq(maxdiff(a.P, b.P), 0, "ensemble probs")
  T.eq(maxdiff(a.ps, b.ps), 0, "state probs"); T.eq(a.norm, b.norm, "norm"); T.eq(a.sx, b.sx, "state expect")
  T.eq(a.meas, b.meas, "ensemble measurement")
  T.eq(maxdiff(a.O, b.O), 0, "overlaps (zgemm)")
  T.eq(maxdiff(a.rho:matrix(), b.rho:matrix()), 0, "mean_dm (zgemm)")
end)
