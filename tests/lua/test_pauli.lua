-- test_pauli.lua — qd.PauliSum from Lua: construction forms, arithmetic against dense
-- matrices, application and expectations against s:expect / E:expect / rho:expect,
-- spectra, ground states, Gibbs states and exp(-iHt) against QuTiP references
-- (tests/data/dynamics, made by make_dynamics_refs.py), Krylov vs eig, and the error
-- messages.
local T = require "testlib"

local src = debug.getinfo(1, "S").source:sub(2)
local datadir = os.getenv("QD_TEST_DATA") or ((src:match("^(.*)/lua/[^/]*$") or "tests") .. "/data")
local function ref(name, kind) return assert(qd.load_npy(datadir .. "/dynamics/" .. name .. ".npy", kind)) end

local function h3()
  return qd.pauli_sum { { 0.7, "XII" }, { 0.4, "IZI" }, { -0.3, "IIY" }, { 0.5, "ZZI" }, { 0.2, "IXX" }, { 0.25, "YIY" } }
end

-- max |A - B| over entries of two complex matrices (qd.Matrix or DensityMatrix via get)
local function mdiff(A, B, d)
  local m = 0
  for i = 1, d do
    for j = 1, d do
      local ar, ai = A:get(i, j)
      local br, bi = B:get(i, j)
      m = math.max(m, math.abs(ar - br), math.abs((ai or 0) - (bi or 0)))
    end
  end
  return m
end

local function sdiff(a, b)
  local m = 0
  for i = 1, a.dim do
    local ar, ai = a:amp(i)
    local br, bi = b:amp(i)
    m = math.max(m, math.abs(ar - br), math.abs(ai - bi))
  end
  return m
end

T.test("construction", function()
  local H = qd.pauli_sum { { -1, "ZZI" }, { 0.5, "XII" }, { { 0, 2 }, "Y", { 2 } }, { 1, "ZZI" } }
  T.eq(qd.type(H), "qd.PauliSum"); T.eq(H.n, 3); T.eq(#H, 2, "ZZI terms cancel, merged")
  local t = H:terms()
  T.eq(t[1][2], "XII"); T.eq(t[1][1], 0.5, "order of first occurrence")
  T.eq(t[2][2], "IIY"); T.eq(t[2][1][2], 2, "complex coefficient {re, im}")
  T.ok(not H:is_hermitian(), "imaginary coefficient: not Hermitian")
  local Z = qd.pauli_sum("ZX")
  T.eq(Z.n, 2); T.eq(Z:terms()[1][1], 1)
  local K = qd.pauli_sum({ { 2, "XZ", { 3, 0 } } }, { n = 4 })
  T.eq(K:terms()[1][2], "ZIIX", "qubit list: X on 3, Z on 0")
  T.eq(#qd.pauli_sum({}, { n = 2 }), 0, "zero operator")
  T.ok(tostring(H):find("qd.PauliSum(3 qubits, 2 terms)", 1, true), tostring(H))
  local F = qd.pauli_sum.tfim(4, 0.3)
  T.eq(#F, 7); T.ok(F:is_hermitian())
  T.eq(#qd.pauli_sum.tfim(4, 0.3, { periodic = true }), 8, "periodic adds Z3 Z0")
  local sm = qd.pauli_sum.sigma_minus(1, 0)
  local M = sm:matrix()
  T.eq(M:get(1, 2), 1, "sigma_minus = |0><1|"); T.eq(M:get(2, 1), 0)
  T.eq(qd.pauli_sum.sigma_plus(1, 0):matrix():get(2, 1), 1, "sigma_plus = |1><0|")
end)

T.test("arithmetic matches matrices", function()
  local A = qd.pauli_sum { { 0.3, "XY" }, { -1.2, "ZI" }, { 0.5, "YY" } }
  local B = qd.pauli_sum { { 0.7, "IX" }, { { 0.1, -0.4 }, "ZZ" } }
  local MA, MB = A:matrix(), B:matrix()
  local function mm(X, Y, d)   -- dense product as a table-of-rows matrix
    local out = {}
    for i = 1, d do
      out[i] = {}
      for j = 1, d do
        local re, im = 0, 0
        for k = 1, d do
          local xr, xi = X:get(i, k)
          local yr, yi = Y:get(k, j)
          re = re + xr * yr - xi * yi
          im = im + xr * yi + xi * yr
        end
        out[i][j] = { re, im }
      end
    end
    return qd.matrix(out)
  end
  T.ok(mdiff((A * B):matrix(), mm(MA, MB, 4), 4) < 1e-14, "A * B")
  local S = (A + 2 * B - A / 2):matrix()
  local worst = 0
  for i = 1, 4 do
    for j = 1, 4 do
      local ar, ai = MA:get(i, j)
      local br, bi = MB:get(i, j)
      local sr, si = S:get(i, j)
      worst = math.max(worst, math.abs(sr - (0.5 * ar + 2 * br)), math.abs(si - (0.5 * ai + 2 * bi)))
    end
  end
  T.ok(worst < 1e-14, "A + 2B - A/2: " .. worst)
  local D = B:dagger():matrix()
  local r, i = D:get(4, 4)
  local r2, i2 = MB:get(4, 4)
  T.eq(r, r2); T.eq(i, -i2, "dagger conjugates")
  T.eq(#(-A + A), 0, "unary minus")
  T.near(A:norm_bound(), 2.0, 1e-15)
  T.eq(#qd.pauli_sum { { 1e-14, "XI" }, { 1, "ZZ" } }:simplify(1e-12), 1, "simplify(tol) drops small terms")
end)

T.test("apply and expect", function()
  local rng = qd.rng(4)
  local s = qd.haar_state(3, rng)
  local H = h3()
  local want = 0.7 * s:expect("XII") + 0.4 * s:expect("IZI") - 0.3 * s:expect("IIY") + 0.5 * s:expect("ZZI")
               + 0.2 * s:expect("IXX") + 0.25 * s:expect("YIY")
  T.near(H:expect(s), want, 1e-14, "<H> = sum of string expectations")
  local Hs = H:apply(s)
  local re, im = s:inner(Hs)
  T.near(re, want, 1e-14, "<s|H s>"); T.near(im, 0, 1e-14)
  local E = qd.ensemble.haar(3, 5, rng)
  local v = H:expect(E)
  T.eq(qd.type(v), "qd.Vector"); T.eq(#v, 5)
  T.near(v[4], H:expect(E[4]), 1e-14, "ensemble member 4")
  local HE = H:apply(E)
  T.eq(qd.type(HE), "qd.Ensemble")
  T.near(select(1, E[2]:inner(HE[2])), v[2], 1e-14)
  local rho = qd.dm(s)
  T.near(H:expect(rho), want, 1e-14, "Tr(H rho)")
  local sm = qd.pauli_sum.sigma_minus(3, 1)
  local r1, i1 = sm:expect(s)
  T.ok(type(i1) == "number", "non-Hermitian: re, im")
  -- <s|sm_1|s> = sum over x, y of conj(s_x0y) s_x1y
  local er, ei = 0, 0
  for _, p in ipairs { { "000", "010" }, { "001", "011" }, { "100", "110" }, { "101", "111" } } do
    local ar, ai = s:amp(p[1])
    local br, bi = s:amp(p[2])
    er = er + ar * br + ai * bi
    ei = ei + ar * bi - ai * br
  end
  T.near(r1, er, 1e-14); T.near(i1, ei, 1e-14)
  T.eq(qd.type(sm:expect(E)), "qd.Vector")
  T.ok(select(2, sm:expect(E):get(1)) ~= nil, "complex vector for a non-Hermitian operator")
end)

T.test("spectrum, ground state, Gibbs vs QuTiP", function()
  local F = qd.pauli_sum.tfim(4, 0.3)
  local w = F:spectrum()
  local wr = ref("tfim4_spectrum")
  local worst = 0
  for i = 1, 16 do worst = math.max(worst, math.abs(w[i] - wr[i])) end
  T.ok(worst < 1e-12, "TFIM(4, 0.3) spectrum: " .. worst)
  local g, e0, gap = F:ground_state()
  T.near(e0, wr[1], 1e-12); T.near(gap, wr[2] - wr[1], 1e-12)
  T.ok(sdiff(g, ref("tfim4_ground", "state")) < 1e-10, "ground state (phase fixed) = QuTiP")
  T.near(F:expect(g), e0, 1e-12)
  local _, e6 = qd.pauli_sum.tfim(6, 1.0):ground_state()
  T.near(e6, ref("tfim6_e0")[1], 1e-12, "TFIM(6, 1) ground energy")
  local la, el, gl = qd.pauli_sum.tfim(6, 0.8):ground_state { method = "lanczos", tol = 1e-11 }
  local ea_s, ea = qd.pauli_sum.tfim(6, 0.8):ground_state { method = "eig" }
  T.near(el, ea, 1e-12, "Lanczos energy = eig"); T.eq(gl, nil, "no gap from Lanczos")
  T.near(qd.fidelity(la, ea_s), 1, 1e-12, "Lanczos state = eig state")
  local _, e11 = qd.pauli_sum.tfim(11, 1):ground_state()   -- auto: Lanczos above 10 qubits
  T.near(e11, 1 - 1 / math.sin(math.pi / (2 * 23)), 1e-10, "critical TFIM(11): E0 = 1 - csc(pi/(2(2N+1)))")
  local vals, V = h3():eigh()
  T.eq(#vals, 8); T.eq(select(1, V:shape()), 8)
  local G, logz = h3():gibbs(0.7)
  T.eq(qd.type(G), "qd.DensityMatrix")
  T.ok(mdiff(G, ref("gibbs3", "dm"), 8) < 1e-14, "Gibbs = QuTiP")
  T.near(logz, ref("gibbs3_logz")[1], 1e-13, "ln Z")
  local G2 = qd.data.gibbs(h3(), 0.7)
  T.ok(mdiff(G2, G, 8) == 0, "qd.data.gibbs")
  T.near(qd.pauli_sum.tfim(2, 1):gibbs(0):purity(), 0.25, 1e-15, "beta = 0: maximally mixed")
end)

T.test("exp(-iHt)", function()
  local H = h3()
  local psi = ref("psi3", "state")
  local want = ref("expm3", "state")
  local a = psi:copy():evolve(H, 1.3)
  T.ok(sdiff(a, want) < 1e-13, "eig = QuTiP expm: " .. sdiff(a, want))
  local b, st = H:evolve(psi:copy(), 1.3, { method = "krylov", tol = 1e-12, stats = true })
  T.ok(sdiff(b, want) < 1e-11, "Krylov = QuTiP: " .. sdiff(b, want))
  T.ok(st.matvecs >= 1 and st.substeps >= 1, "stats")
  -- ensemble: each member as the single state
  local E = qd.ensemble.haar(3, 4, qd.rng(2))
  local e2 = E[3]:copy():evolve(H, -0.4)
  E:evolve(H, -0.4)
  T.ok(sdiff(E[3], e2) < 1e-14, "ensemble member = single state")
  -- density matrix: U rho U^H = |U psi><U psi|
  local rho = qd.dm(psi):evolve(H, 1.3)
  T.ok(mdiff(rho, qd.dm(want), 8) < 1e-13, "U rho U^H")
  -- 9 qubits: auto (Krylov) vs eig
  local F = qd.pauli_sum.tfim(9, 0.7) + qd.pauli_sum({ { 0.2, "YY", { 1, 6 } } }, { n = 9 })
  local s = qd.haar_state(9, qd.rng(6))
  local k, ks = s:copy():evolve(F, 2.0, { stats = true })
  local e = s:copy():evolve(F, 2.0, { method = "eig" })
  T.ok(sdiff(k, e) < 1e-10, "Krylov vs eig at 9 qubits: " .. sdiff(k, e))
  T.ok(ks.substeps > 1 and ks.error_estimate < 1e-11, "Krylov sub-steps " .. ks.substeps)
  T.near(k:norm(), 1, 1e-12, "norm preserved")
end)

T.test("errors", function()
  T.raises(function() qd.pauli_sum(5) end, "bad argument #1 to 'pauli_sum' (table of terms {coef, \"ZZI\"} or a Pauli string expected, got number)")
  T.raises(function() qd.pauli_sum { { 1, "ZQ" } } end, "term 1: Pauli letter I, X, Y or Z expected, got 'Q'")
  T.raises(function() qd.pauli_sum { { 1, "ZZ" }, { 1, "ZZZ" } } end, "term 2: Pauli string of 2 letters expected, got \"ZZZ\"")
  T.raises(function() qd.pauli_sum { { "a", "ZZ" } } end, "term 1: finite coefficient (number or {re, im}) expected first")
  T.raises(function() qd.pauli_sum { { 1, "Z", { 0 } } } end, "number of qubits unknown")
  T.raises(function() qd.pauli_sum({ { 1, "Z", { 5 } } }, { n = 2 }) end, "term 1: qubit indices 0..1 expected")
  T.raises(function() qd.pauli_sum({ { 1, "ZZ", { 0, 0 } } }, { n = 2 }) end, "qubit 0 appears twice")
  T.raises(function() qd.pauli_sum({}, { qubits = 2 }) end, "unknown option 'qubits' (known: n)")
  T.raises(function() qd.pauli_sum("") end, "Pauli string of 0 letters expected")
  local H = h3()
  T.raises(function() H:expect(qd.state(2)) end, "bad argument #1 to 'expect' (qd.State of 3 qubits expected (the operator acts on 3), got 2 qubits)")
  T.raises(function() H:expect(5) end, "qd.State, qd.DensityMatrix or qd.Ensemble expected, got number")
  T.raises(function() H:apply(qd.dm(3)) end, "qd.State or qd.Ensemble expected, got qd.DensityMatrix")
  T.raises(function() qd.pauli_sum.sigma_minus(2, 0):ground_state() end, "ground_state() needs a Hermitian operator")
  T.raises(function() qd.pauli_sum.tfim(13, 1):spectrum() end, "spectrum() needs a dense matrix: at most 12 qubits, got 13")
  T.raises(function() H:ground_state { method = "dmrg" } end, "option 'method': \"auto\", \"eig\" or \"lanczos\" expected, got dmrg")
  T.raises(function() H:ground_state { tol = 0 } end, "option 'tol': a number in (0, 1) expected")
  T.raises(function() H:ground_state { maxiter = 3 } end, "unknown option 'maxiter' (known: method, tol)")
  T.raises(function() qd.pauli_sum.sigma_minus(11, 0):ground_state() end, "ground_state() needs a Hermitian operator")
  T.raises(function() H:gibbs(-1) end, "inverse temperature beta >= 0 (finite) expected")
  T.raises(function() qd.state(3):evolve(H, 0 / 0) end, "finite time expected")
  T.raises(function() qd.state(3):evolve(H, 1, { method = "taylor" }) end, "option 'method': \"auto\", \"eig\" or \"krylov\" expected, got \"taylor\"")
  T.raises(function() qd.state(3):evolve(H, 1, { tol = 2 }) end, "option 'tol': a number in (0, 1) expected")
  T.raises(function() qd.state(3):evolve(qd.pauli_sum.sigma_minus(3, 0), 1) end, "exp(-iHt) needs a Hermitian operator")
  T.raises(function() qd.dm(3):evolve(H, 1, { method = "krylov" }) end, "a qd.DensityMatrix evolves by eigen-decomposition")
  -- a time no time stepping can cover is refused at once (the fuzzer's -9.2e18 hung it), and
  -- the exact method still takes it
  T.raises(function() qd.ensemble.haar(3, 2, qd.rng(1)):evolve(H, -9.2233720368547758e18, { method = "krylov" }) end,
           "Krylov exp(-iHt): |t| times the norm bound of H is")
  local Eb = qd.ensemble.haar(3, 2, qd.rng(1))
  Eb:evolve(H, -9.2233720368547758e18, { method = "eig" })
  T.near(Eb:get(1):norm(), 1, 1e-9, "the exact method: a long time, still a state")
  T.raises(function() return H + qd.pauli_sum("Z") end, "cannot add Pauli sums on 3 and 1 qubits")
  T.raises(function() return H / 0 end, "non-zero number or {re, im} expected")
  T.raises(function() qd.pauli_sum.tfim(3, 0 / 0) end, "finite field g expected")
  T.raises(function() qd.pauli_sum.tfim(3, 1, { J = "x" }) end, "option 'J': finite number expected")
  T.raises(function() qd.pauli_sum.sigma_minus(2, 2) end, "qubit index 0..1 expected, got 2")
  local F = qd.pauli_sum("XX")
  F:free(); F:free()
  T.raises(function() F:matrix() end, "qd.PauliSum has been freed")
  T.raises(function() return #F end, "qd.PauliSum has been freed")
  T.raises(function() qd.data.gibbs("H", 1) end, "bad argument #1 to 'gibbs' (qd.PauliSum expected, got string)")
  T.raises(function() qd.data.gibbs(H, -1) end, "bad argument #2 to 'gibbs' (inverse temperature beta >= 0 (finite) expected, got -1)")
end)

T.test("help entries", function()
  local function helptext(x)
    local out = {}
    local old = print
    print = function(...) out[#out + 1] = table.concat({ ... }, "\t") end
    local ok, err = pcall(help, x)
    print = old
    assert(ok, err)
    return table.concat(out, "\n")
  end
  for _, x in ipairs { qd.pauli_sum, qd.pauli_sum.tfim, qd.pauli_sum.sigma_minus, qd.pauli_sum.sigma_plus,
                       qd.lindblad, qd.sse, qd.data.tfim, qd.data.gibbs, qd.pauli_sum("Z") } do
    local t = helptext(x)
    T.ok(not t:find("no documentation", 1, true) and #t > 20, "help: " .. t:sub(1, 40))
  end
  for _, m in ipairs { "eigh", "spectrum", "ground_state", "gibbs", "terms", "dagger", "simplify", "is_hermitian",
                       "norm_bound", "evolve", "qd.PauliSum:apply", "qd.PauliSum:expect", "qd.PauliSum:matrix" } do
    T.ok(not helptext(m):find("no documentation", 1, true), "help('" .. m .. "')")
  end
  T.ok(helptext(qd.state(1)):find("evolve", 1, true) ~= nil, "State lists evolve")
end)
