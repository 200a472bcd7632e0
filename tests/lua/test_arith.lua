-- test_arith.lua — arithmetic on qd objects (lua_arith.c) against entrywise references:
-- states, density matrices, ensembles, vectors, matrices; dagger, trace, eigh; qd.expect,
-- qd.allclose and ==; error messages.
local T = require "testlib"

local function amps(s)
  local t = {}
  for i = 1, 1 << s.n do
    local re, im = s:amp(i)
    t[i] = { re, im }
  end
  return t
end

T.test("states: +, -, scalar *, /, unary -, == within a tolerance", function()
  local r = qd.rng(3)
  local a, b = qd.haar_state(2, r), qd.haar_state(2, r)
  local A, B = amps(a), amps(b)
  local c = 2 * a - b / { 0, 2 }   -- 2a - b/(2i) = 2a + (i/2) b
  local C = amps(c)
  for i = 1, 4 do
    local re = 2 * A[i][1] - 0.5 * B[i][2]
    local im = 2 * A[i][2] + 0.5 * B[i][1]
    T.ok(math.abs(C[i][1] - re) < 1e-15 and math.abs(C[i][2] - im) < 1e-15, "entry " .. i)
  end
  T.ok(a + b - b == a, "a + b - b == a (within tolerance)")
  T.ok(not (a == b), "different states differ")
  T.ok(-(-a) == a and (a * 1) == a, "unary minus and scaling by 1")
  T.ok(tostring(a + b):find("not normalised", 1, true) ~= nil, "an unnormalised result says so")
  T.ok(qd.allclose((qd.state(1) + qd.state(1):x(0)) / math.sqrt(2), qd.state(1):h(0)), "|+> from |0> + |1>")
  local ok = pcall(function() return qd.ensemble.from { a + b } end)
  T.ok(not ok, "value checks refuse the unnormalised sum")
end)

T.test("density matrices and ensembles", function()
  local r = qd.rng(5)
  local rho, sig = qd.random.dm(2, r), qd.random.dm(2, r)
  local mix = 0.25 * rho + 0.75 * sig
  local want = 0.25 * rho:matrix() + 0.75 * sig:matrix()
  T.ok(qd.allclose(mix:matrix(), want), "a convex mixture entrywise")
  T.ok(math.abs(mix:trace() - 1) < 1e-14, "trace 1")
  local E = qd.ensemble.haar(1, 3, r)
  local F = E + E
  T.ok(F == 2 * E, "E + E == 2 E")
  T.raises(function() return E + qd.ensemble(1, 4) end, "cannot add: qd.Ensemble of 1 qubit x 3 and of 1 qubit x 4")
end)

T.test("matrices and vectors: +, *, matmul, M * v, M * state, dagger, trace, eigh", function()
  local M = qd.matrix { { 1, 2 }, { 3, 4 } }
  local N = qd.matrix { { 0, 1 }, { 1, 0 } }
  local P = M * N
  T.ok(P == qd.matrix { { 2, 1 }, { 4, 3 } }, "matmul")
  T.ok(M + N == qd.matrix { { 1, 3 }, { 4, 4 } } and M - M == qd.matrix(2, 2), "+ and -")
  T.ok(M * qd.vector { 1, 1 } == qd.vector { 3, 7 }, "matrix times vector")
  local re, im = M:trace()
  T.ok(re == 5 and im == 0, "trace")
  local Z = qd.matrix({ { { 1, 1 }, { 0, 2 } }, { 3, 4 } })
  T.ok(Z:dagger():dagger() == Z and Z:dagger():get(1, 2) ~= nil, "dagger twice")
  local H = qd.matrix { { 2, 1 }, { 1, 2 } }
  local w, V = H:eigh()
  T.ok(math.abs(w[1] - 1) < 1e-14 and math.abs(w[2] - 3) < 1e-14, "eigenvalues ascending")
  T.ok(H * V == V * qd.matrix { { w[1], 0 }, { 0, w[2] } }, "H V = V diag(w)")
  T.raises(function() return M:eigh() end, "Hermitian matrix expected")
  local s = N * qd.state(1)
  T.ok(qd.allclose(s, qd.state(1):x(0)), "X |0> = |1>")
  T.raises(function() return M * qd.matrix(3, 3) end, "cannot multiply a 2x2 matrix by a 3x3 one")
  T.raises(function() return M + {} end, "cannot add a qd.Matrix and a table")
end)

T.test("real matrix products (dgemm) against naive sums and the complex path", function()
  local r = qd.rng(17)
  for _, sz in ipairs { { 1, 1, 1 }, { 3, 5, 2 }, { 37, 61, 29 }, { 130, 7, 300 } } do
    local m, k, n = sz[1], sz[2], sz[3]
    local A, B = qd.matrix(m, k), qd.matrix(k, n)
    for i = 1, m do for j = 1, k do A:set(i, j, r:normal()) end end
    for i = 1, k do for j = 1, n do B:set(i, j, r:normal()) end end
    local C = A * B
    local Az = A + qd.matrix(m, k, { complex = true })   -- the same entries, complex
    local Cz = Az * B
    local worst, worstz = 0, 0
    for i = 1, m do
      for j = 1, n do
        local s = 0
        for l = 1, k do s = s + A:get(i, l) * B:get(l, j) end
        worst = math.max(worst, math.abs(C:get(i, j) - s))
        worstz = math.max(worstz, math.abs(C:get(i, j) - (Cz:get(i, j))))
      end
    end
    T.ok(not C:is_complex() and Cz:is_complex(), "real x real stays real")
    T.ok(worst < 1e-12 * k and worstz < 1e-12 * k,
         string.format("%dx%d * %dx%d: naive %.2g, complex path %.2g", m, k, k, n, worst, worstz))
  end
  local v = qd.matrix { { 1, 2 }, { 3, 4 } } * qd.vector { 1, 1 }
  T.eq(qd.type(v), "qd.Vector", "M * v is a Vector")
  T.eq(v[2], 7.0, "M * v entries")
end)

T.test("qd.expect with a matrix, a PauliSum or a Pauli string", function()
  local s = qd.haar_state(2, qd.rng(7))
  local Zm = qd.matrix { { 1, 0, 0, 0 }, { 0, 1, 0, 0 }, { 0, 0, -1, 0 }, { 0, 0, 0, -1 } }
  local re, im = qd.expect(Zm, s)
  T.ok(math.abs(re - s:expect("ZI")) < 1e-14 and math.abs(im) < 1e-14, "<Z(x)I> from the matrix")
  T.ok(math.abs(qd.expect("ZI", s) - s:expect("ZI")) < 1e-15, "a Pauli string")
  T.ok(math.abs(qd.expect(qd.pauli_sum("ZI"), s) - s:expect("ZI")) < 1e-14, "a PauliSum")
  local rho = qd.dm(s)
  T.ok(math.abs(qd.expect(Zm, rho) - re) < 1e-14, "Tr(O rho)")
  local E = qd.ensemble.from { s, qd.state(2) }
  local v = qd.expect(Zm, E)
  T.ok(math.abs(select(1, v:get(2)) - 1) < 1e-15, "per member")
  T.raises(function() return qd.expect(qd.matrix(2, 2), s) end, "4x4 matrix for 2 qubits expected")
end)

T.test("freed operands are errors (fuzzer finding F4)", function()
  local r = qd.dm(2)
  r:free()
  T.raises(function() return r / 2 end, "qd.DensityMatrix has been freed")
  T.raises(function() return r - qd.maximally_mixed(2) end, "qd.DensityMatrix has been freed")
  local s = qd.state(1)
  s:free()
  T.raises(function() return 2 * s end, "qd.State has been freed")
  T.raises(function() return qd.allclose(s, qd.state(1)) end, "qd.State has been freed")
  local M = qd.matrix(2, 2)
  M:free()
  T.raises(function() return M * M end, "has been freed")
end)
