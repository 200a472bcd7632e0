-- test_dynamics.lua — qd.lindblad / rho:evolve{jumps=} against QuTiP mesolve
-- (tests/data/dynamics), qd.sse (records, substreams, N independence, observed means vs
-- the Lindblad solution, feedback functions shared and per member, reverse time), the
-- TFIM data set (definition, magnetisation), and the error messages.
local T = require "testlib"

local src = debug.getinfo(1, "S").source:sub(2)
local datadir = os.getenv("QD_TEST_DATA") or ((src:match("^(.*)/lua/[^/]*$") or "tests") .. "/data")
local function ref(name, kind) return assert(qd.load_npy(datadir .. "/dynamics/" .. name .. ".npy", kind)) end

local function h3()
  return qd.pauli_sum { { 0.7, "XII" }, { 0.4, "IZI" }, { -0.3, "IIY" }, { 0.5, "ZZI" }, { 0.2, "IXX" }, { 0.25, "YIY" } }
end
local function l3()
  return { math.sqrt(0.3) * qd.pauli_sum("ZII"), math.sqrt(0.2) * qd.pauli_sum.sigma_minus(3, 1),
           math.sqrt(0.1) * qd.pauli_sum.sigma_minus(3, 2), math.sqrt(0.15) * qd.pauli_sum("IIZ") }
end

-- max |rho - R| with R row i = member i of an ensemble (a (d, d) slice of a (T, d, d) file)
-- a (T, d, d) series of density matrices: not states, so read as a flat vector (C order);
-- want[t][i]:amp(j) is element (i, j) at time t
local function series(name, d)
  local v = ref(name, "vector")
  local out = {}
  for t = 1, #v // (d * d) do
    local rows = {}
    for i = 1, d do
      rows[i] = { amp = function(_, j) return v:get((t - 1) * d * d + (i - 1) * d + j) end }
    end
    out[t] = rows
  end
  return out
end

local function dmdiff(rho, R, d)
  local m = 0
  for i = 1, d do
    for j = 1, d do
      local ar, ai = rho:get(i, j)
      local br, bi = R[i]:amp(j)
      m = math.max(m, math.abs(ar - br), math.abs(ai - bi))
    end
  end
  return m
end

T.test("lindblad vs QuTiP mesolve", function()
  local rho0 = ref("rho3_0", "dm")
  local want = series("lindblad3", 8)
  local out, info = qd.lindblad(rho0, h3(), l3(), { 0, 0.5, 1, 2 }, { rtol = 1e-10, atol = 1e-12, observe = { "ZII", h3() } })
  T.eq(#out, 4); T.eq(qd.type(out[2]), "qd.DensityMatrix")
  local worst = 0
  for i = 1, 4 do worst = math.max(worst, dmdiff(out[i], want[i], 8)) end
  T.ok(worst < 1e-8, "3 qubits, dephasing + amplitude damping: " .. worst)
  T.ok(info.steps > 0 and info.rejected >= 0 and info.fevals > 6 * info.steps, "info")
  T.near(info.expect:get(3, 1), out[3]:expect("ZII"), 1e-14, "observe: <Z0> at t = 1")
  T.near(info.expect:get(4, 2), h3():expect(out[4]), 1e-14, "observe: <H> at t = 2")
  T.near(rho0:trace(), 1, 1e-15, "input unchanged")
  -- single time -> one DensityMatrix; rho:evolve in place with jumps
  local r1 = qd.lindblad(rho0, h3(), l3(), 2)
  T.ok(dmdiff(r1, want[4], 8) < 1e-6, "default tolerances: " .. dmdiff(r1, want[4], 8))
  local r2 = qd.dm(rho0:matrix())
  local same, inf2 = r2:evolve(h3(), 2, { jumps = l3(), rtol = 1e-10, atol = 1e-12 })
  T.ok(rawequal(same, r2), "evolve returns the object")
  T.ok(dmdiff(r2, want[4], 8) < 1e-8, "rho:evolve{jumps=} in place")
  T.ok(inf2.steps > 0)
  -- 2 qubits
  local want2 = series("lindblad2", 4)
  local H2 = qd.pauli_sum { { 1, "XI" }, { 0.6, "ZZ" }, { 0.3, "IY" } }
  local L2 = { 0.5 * qd.pauli_sum.sigma_minus(2, 0), math.sqrt(0.4) * qd.pauli_sum("IZ"), math.sqrt(0.1) * qd.pauli_sum.sigma_minus(2, 1) }
  local o2 = qd.lindblad(ref("rho2_0", "dm"), H2, L2, { 0, 0.3, 1.5, 3 }, { rtol = 1e-10, atol = 1e-12 })
  worst = 0
  for i = 1, 4 do worst = math.max(worst, dmdiff(o2[i], want2[i], 4)) end
  T.ok(worst < 1e-8, "2 qubits: " .. worst)
  -- no Hamiltonian, pure dephasing: coherence decays as exp(-2 g t)
  local plus = qd.dm(qd.state(1):h(0))
  local r = qd.lindblad(plus, nil, { math.sqrt(0.25) * qd.pauli_sum("Z") }, 1.0)
  T.near(r:expect("X"), math.exp(-0.5), 1e-8, "dephasing <X>(t) = exp(-2 g t)")
end)

T.test("lindblad errors", function()
  local rho = qd.dm(2)
  T.raises(function() qd.lindblad(qd.state(2), nil, nil, 1) end, "bad argument #1 to 'lindblad' (qd.DensityMatrix expected, got qd.State)")
  T.raises(function() qd.lindblad(rho, "ZZZ", nil, 1) end, "Hamiltonian): Pauli string of 2 letters expected, got \"ZZZ\"")
  T.raises(function() qd.lindblad(rho, qd.pauli_sum.sigma_minus(2, 0), nil, 1) end, "Hermitian Hamiltonian (real coefficients) expected")
  T.raises(function() qd.lindblad(rho, nil, qd.pauli_sum("ZZ"), 1) end, "a single qd.PauliSum (wrap it in {})")
  T.raises(function() qd.lindblad(rho, nil, { qd.pauli_sum("ZZZ") }, 1) end, "jump operators, entry 1): operator on 2 qubits expected, got 3 qubits")
  T.raises(function() qd.lindblad(rho, nil, { 5 }, 1) end, "qd.PauliSum or Pauli string expected, got number")
  T.raises(function() qd.lindblad(rho, nil, nil, -1) end, "finite time >= 0 expected")
  T.raises(function() qd.lindblad(rho, nil, nil, { 1, 0.5 }) end, "increasing finite times >= 0 expected (entry 2)")
  T.raises(function() qd.lindblad(rho, nil, nil, "x") end, "time (number) or table of increasing times expected, got string")
  T.raises(function() qd.lindblad(rho, nil, nil, 1, { rtol = 0 }) end, "option 'rtol': number in (0, 1) expected")
  T.raises(function() qd.lindblad(rho, nil, nil, 1, { method = "rk4" }) end, "unknown option 'method' (known: rtol, atol, h0, max_steps, observe)")
  T.raises(function() qd.lindblad(rho, "XX", { "ZI" }, 100, { max_steps = 2 }) end, "more than 2 steps")
  T.raises(function() qd.lindblad(rho, nil, nil, 1, nil, 5) end, "unexpected extra argument")
  T.raises(function() rho:evolve("XX", 1, { jumps = { "ZI" }, foo = 1 }) end, "unknown option 'foo' (known: jumps, rtol, atol, h0, max_steps, observe)")
  T.raises(function() rho:evolve("XX", { 1, 2 }, { jumps = { "ZI" } }) end, "time (number) expected, got table")
  T.raises(function() qd.lindblad(qd.dm(11), nil, nil, 1) end, "density matrix of at most 10 qubits expected, got 11")
end)

T.test("sse: records, streams, observed means", function()
  local H = qd.pauli_sum { { 0.9, "XI" }, { 0.5, "ZZ" }, { 0.4, "IY" } }
  local E = qd.ensemble(2, 4000)
  local res = qd.sse(E, { H = H, measure = { "ZI", "IX" }, gamma = { 0.6, 0.4 }, dt = 0.01, steps = 100,
                          rng = qd.rng(11), observe = { "YI", "ZY" }, every = 25 })
  T.eq(res.scheme, "rouchon", "default scheme"); T.eq(res.steps, 100); T.near(res.t, 1.0, 1e-12)
  T.eq(#res.records, 2)
  local r, c = res.records[1]:shape()
  T.eq(r, 100); T.eq(c, 4000, "records: steps x N")
  T.eq(#res.times, 5); T.near(res.times[5], 1.0, 1e-12)
  local rr, cc = res.observed:shape()
  T.eq(rr, 5); T.eq(cc, 2)
  T.near(res.observed:get(5, 1), E:expect("YI"):mean(), 1e-13, "observed = E:expect at the end")
  -- first record of member 1: 2 sqrt(g) <Z0> dt + sqrt(dt) N(0,1), <Z0> = 1 for |00>
  local base = qd.rng(11):split()
  local dW = 0.1 * base:substream(0):normal()
  T.near(res.records[1]:get(1, 1), 2 * math.sqrt(0.6) * 0.01 + dW, 1e-15, "record from substream 0")
  -- the trajectory average follows the Lindblad equation (sampling error ~ 0.5/sqrt(4000) = 0.008,
  -- scheme bias ~0.4 dt = 0.004)
  local rho = qd.lindblad(qd.dm(2), H, { math.sqrt(0.6) * qd.pauli_sum("ZI"), math.sqrt(0.4) * qd.pauli_sum("IX") }, { 0.25, 0.5, 0.75, 1.0 })
  local worst = 0
  for i = 1, 4 do
    worst = math.max(worst, math.abs(res.observed:get(i + 1, 1) - rho[i]:expect("YI")),
                     math.abs(res.observed:get(i + 1, 2) - rho[i]:expect("ZY")))
  end
  T.ok(worst < 0.04, "trajectory average = Lindblad within 5 standard errors: " .. worst)
  -- member k does not depend on N; same seed, same result; Euler scheme
  local A = qd.ensemble(2, 3)
  local B = qd.ensemble(2, 7)
  local o = { H = H, measure = { "ZI" }, gamma = 1, dt = 0.02, steps = 10, scheme = "euler" }
  o.rng = qd.rng(5); qd.sse(A, o)
  o.rng = qd.rng(5); local rb = qd.sse(B, o)
  T.eq(select(1, A[3]:amp(2)), select(1, B[3]:amp(2)), "member 3 independent of N")
  T.eq(rb.scheme, "euler")
  T.near(B[7]:norm(), 1, 1e-14, "Euler renormalises by default")
  local C = qd.ensemble(2, 3)
  o.rng = qd.rng(5); o.normalize = false; o.record = false
  local rc = qd.sse(C, o)
  T.ok(rc.records == nil, "record = false")
  T.ok(math.abs(C[1]:norm() - 1) > 1e-8, "normalize = false: raw Euler-Maruyama (norm drifts)")
  -- a single State works too
  local s = qd.state(1):h(0)
  qd.sse(s, { measure = { "Z" }, gamma = 5, dt = 0.01, steps = 200, rng = qd.rng(1) })
  T.ok(math.abs(s:expect("Z")) > 0.9, "strong Z measurement collapses a State: <Z> = " .. s:expect("Z"))
end)

T.test("sse: feedback and reverse time", function()
  -- shared coefficients from a function of (step, t): H_fb = c X with c = 0.5 -> rotation about X
  local calls, last = 0, nil
  local E = qd.ensemble(1, 3)
  qd.sse(E, { dt = 0.001, steps = 1000, feedback = { terms = { "X" }, fn = function(step, t, obj)
    calls = calls + 1
    last = { step, t }
    T.ok(rawequal(obj, E) or calls > 1, "the evolving object is passed")
    return { 0.5 }
  end } })
  T.eq(calls, 1000); T.eq(last[1], 1000); T.near(last[2], 0.999, 1e-12)
  local exact = qd.state(1):evolve(qd.pauli_sum { { 0.5, "X" } }, 1.0)
  T.ok(math.abs(E[2]:expect("Z") - exact:expect("Z")) < 2e-3, "shared feedback = exp(-i 0.5 X t): " .. E[2]:expect("Z"))
  -- per-member coefficients as a 2 x N matrix (terms X and Z), state-dependent: c_X = <Z>
  local F = qd.ensemble(1, 4)
  local res = qd.sse(F, { dt = 0.01, steps = 10, t0 = 2.0, reverse = true, observe = { "Z" },
    feedback = { terms = qd.pauli_sum { { 1, "X" }, { 1, "Z" } }, fn = function(step, t, obj)
      local z = obj:expect("Z")
      local M = qd.matrix(2, #obj)
      for j = 1, #obj do M:set(1, j, j * 0.3 * z[j]); M:set(2, j, 0) end
      return M
    end } })
  T.near(res.t, 1.9, 1e-12, "reverse: t = t0 - steps dt")
  T.near(res.times[2], 1.99, 1e-12)
  T.ok(F[4]:expect("Z") < F[1]:expect("Z"), "member 4 rotated further than member 1")
  -- reverse time undoes the static Hamiltonian (no measurement)
  local H = qd.pauli_sum { { 0.8, "XZ" }, { 0.3, "YI" } }
  local G = qd.ensemble.haar(2, 3, qd.rng(9))
  local G0 = G:copy()
  qd.sse(G, { H = H, dt = 0.002, steps = 500 })
  local moved = 1 - G:fidelities(G0[1])[1]
  qd.sse(G, { H = H, dt = 0.002, steps = 500, t0 = 1.0, reverse = true })
  local back = 1 - G:fidelities(G0[1])[1]
  T.ok(moved > 0.05 and back < 1e-4, "forward then reverse: moved " .. moved .. ", back " .. back)
end)

-- the law of a one-qubit reverse run (bench/reverse_feedback.lua's): written three ways
local LIM = 1 - 1e-12
local function law_k(z, t) return (z:clamp(-LIM, LIM):atanh() - 0.3) * (-0.25 / t) - z end

T.test("sse: feedback laws (traced once, evaluated in C) = the same law as a function", function()
  local function start(N)
    local E = qd.ensemble(1, N)
    E:ry(0, 1.0)
    E:rz(0, qd.rng(4):uniform(0, 2 * math.pi, N))
    return E
  end
  local base = { dt = 0.002, steps = 60, measure = { "Z" }, gamma = 1, reverse = true, t0 = 0.3, record = false }
  local function run(E, fb, seed, threads)
    local o = {}
    for k, v in pairs(base) do o[k] = v end
    o.rng, o.feedback = qd.rng(seed), fb
    local th = qd.threads()
    if threads then qd.set_threads(threads) end
    local ok, err = pcall(qd.sse, E, o)
    qd.set_threads(th)
    assert(ok, err)
    return E
  end
  local lawfb = { terms = { "X", "Y" }, law = function(t, s)
    local k = law_k(s:expect("Z"), t)
    return { k * s:expect("Y") * 2, k * s:expect("X") * -2 }
  end }
  local vecfb = { terms = { "X", "Y" }, fn = function(_, t, E)
    local k = law_k(E:expect("Z"), t)
    return qd.matrix { k:mul(E:expect("Y")):mul(2), k:mul(E:expect("X")):mul(-2) }
  end }
  for _, N in ipairs { 5, 70 } do
    local A, B = run(start(N), lawfb, 7), run(start(N), vecfb, 7)
    local d = 0
    for j = 1, N do d = math.max(d, 1 - A[j]:fidelity(B[j])) end
    T.ok(d < 1e-12, "law = Vector-method function, N = " .. N .. ": 1 - F = " .. d)
  end
  -- a member's bits: independent of the member count and the thread count
  local A70, A70t, A3 = run(start(70), lawfb, 8, 1), run(start(70), lawfb, 8, 2), run(start(3), lawfb, 8, 1)
  T.ok(T.same_ensemble(A70, A70t), "law: 1 and 2 threads give the same bits")
  local same = true
  for j = 1, 3 do
    for i = 1, 2 do
      local ar, ai = A70[j]:amp(i)
      local br, bi = A3[j]:amp(i)
      same = same and ar == br and ai == bi
    end
  end
  T.ok(same, "law: members 1-3 the same alone and among 70")
  -- every operation against a Lua loop over the members (math.* per member)
  local function f_sym(t, x, y, z)
    local a = (x:exp() + (y ^ 2 + 1):log() + (z:abs() + 0.1):sqrt() + x:tanh() + y:clamp(-0.9, 0.9):atanh())
    local b = (x:sin() - y:cos()):mul(z:sigmoid()):div(2 + x * x) + x:min(y) - z:max(0.2) + (-y) / t
    return { a * 0.1, b * 0.1 }
  end
  local function sig(v) return v >= 0 and 1 / (1 + math.exp(-v)) or math.exp(v) / (1 + math.exp(v)) end
  local function f_num(t, x, y, z)
    local yc = math.max(-0.9, math.min(0.9, y))
    local a = math.exp(x) + math.log(y * y + 1) + math.sqrt(math.abs(z) + 0.1) + math.tanh(x) + 0.5 * math.log((1 + yc) / (1 - yc))
    local b = (math.sin(x) - math.cos(y)) * sig(z) / (2 + x * x) + math.min(x, y) - math.max(z, 0.2) + (-y) / t
    return a * 0.1, b * 0.1
  end
  local ops = { terms = { "Z", "X" }, law = function(t, s) return f_sym(t, s:expect("X"), s:expect("Y"), s:expect("Z")) end }
  local loop = { terms = { "Z", "X" }, fn = function(_, t, E)
    local x, y, z = E:expect("X"), E:expect("Y"), E:expect("Z")
    local M = qd.matrix(2, #E)
    for j = 1, #E do
      local a, b = f_num(t, x[j], y[j], z[j])
      M:set(1, j, a); M:set(2, j, b)
    end
    return M
  end }
  local A, B = run(start(20), ops, 9), run(start(20), loop, 9)
  local d = 0
  for j = 1, 20 do d = math.max(d, 1 - A[j]:fidelity(B[j])) end
  T.ok(d < 1e-12, "every law operation = its math.* value per member: 1 - F = " .. d)
  -- past the lane path (7 qubits: the member-by-member path), and constant outputs
  local G1, G2 = qd.ensemble.haar(7, 4, qd.rng(2)), nil
  G2 = G1:copy()
  local o7 = function(fb) return { dt = 0.01, steps = 5, measure = { "ZIIIIII" }, gamma = 1, rng = qd.rng(3), feedback = fb } end
  qd.sse(G1, o7 { terms = { "XIIIIIZ", "IYIIIII" }, law = function(t, s) return { s:expect("ZZIIIII") * t, 0.25 } end })
  qd.sse(G2, o7 { terms = { "XIIIIIZ", "IYIIIII" }, fn = function(_, t, E)
    local v = E:expect("ZZIIIII")
    return qd.matrix { v:mul(t), v:mul(0) + 0.25 }
  end })
  d = 0
  for j = 1, 4 do d = math.max(d, 1 - G1[j]:fidelity(G2[j])) end
  T.ok(d < 1e-12, "7 qubits (member by member): law = function: 1 - F = " .. d)
end)

T.test("sse: feedback law errors", function()
  local E = qd.ensemble(1, 3)
  local function sse(law, terms, n)
    return qd.sse(n and qd.ensemble(n, 2) or E, { dt = 0.01, steps = 3, measure = { n and string.rep("Z", n) or "Z" }, gamma = 1,
                      feedback = { terms = terms or { "X" }, law = law } })
  end
  T.raises(function() sse(function(t, s) return { (s:expect("Z") - 1):log() } end) end,
           "bad argument #2 to 'sse' (option 'feedback': feedback law: a value is not finite for member 1 at step 1")
  T.raises(function() sse(function(t, s) return { s:expect("Z"):atanh() } end) end, "a value is not finite for member 1 at step 1")
  T.raises(function() sse(function(t, s) return { 1 / (s:expect("Z") - 1) } end) end, "a value is not finite")
  T.raises(function() sse(function(t, s) return { (-s:expect("Z")):sqrt() } end) end, "a value is not finite")
  T.raises(function() sse(function(t, s) return { (s:expect("Z") * 1000):exp() } end) end, "a value is not finite")
  -- exp(-inf) would be 0: an intermediate non-finite value is caught too
  T.raises(function() sse(function(t, s) return { ((s:expect("Z") - 1):log()):exp() } end) end, "a value is not finite")
  T.raises(function() sse(7, {"X"}) end, "option 'feedback': law (a function(t, s) returning the coefficients' formulas) expected")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 1, feedback = { terms = { "X" }, fn = print, law = print } }) end,
           "option 'feedback': fn or law, not both")
  T.raises(function() sse(function(t, s) if s:expect("Z") > 0 then return { 1 } end return { 0 } end) end,
           "option 'feedback': law: ", "cannot compare them or branch on them (use :min, :max or :clamp)")
  T.raises(function() sse(function(t, s) return { s:expect("Z"):floor() } end) end, "symbolic values have no method 'floor'")
  T.raises(function() sse(function(t, s) return { s:expect("Z") ^ 3 } end) end, "only x ^ 2 is supported")
  T.raises(function() sse(function(t, s) return { math.exp(s:expect("Z")) } end) end, "option 'feedback': law: ")
  T.raises(function() sse(function(t, s) return { s:expect("ZZ") } end) end, "bad argument #1 to 'expect'", "Pauli string of 1 letters expected")
  T.raises(function() sse(function(t, s) return { s:expect(qd.pauli_sum.sigma_minus(1, 0)) } end) end, "Hermitian operator (real coefficients) expected")
  T.raises(function() sse(function(t, s) return { 1, 2 } end) end, "law: 1 coefficients expected (one per term), got 2")
  T.raises(function() sse(function(t, s) return { t, "x" } end, { "X", "Z" }) end, "coefficient 2: symbolic value or finite number expected, got string")
  T.raises(function() sse(function(t, s) return "x" end, { "X", "Z" }) end, "a table of 2 coefficients expected, got string")
  T.raises(function() sse(function(t, s) return { 0 / 0 } end) end, "coefficient 1: symbolic value or finite number expected, got a non-finite number")
  T.raises(function() sse(function(t, s) return { t + math.huge } end) end, "finite number expected")
  T.raises(function() sse(function(t, s) return { s:expect("Z"):clamp(1, 0) } end) end, "upper bound >= lower bound expected")
  T.raises(function() sse(function(t, s) error("boom") end) end, "option 'feedback': law: ", "boom")
  local Fr = qd.ensemble(1, 2)
  T.raises(function() qd.sse(Fr, { dt = 0.01, steps = 2, feedback = { terms = { "X" }, law = function(t) Fr:free() return { t } end } }) end,
           "option 'feedback': the law freed the evolving qd.Ensemble")
  -- values kept past their law: refused, not dangling
  local kept
  sse(function(t, s) kept = s:expect("Z"); return { 0 } end)
  T.raises(function() return kept + 1 end, "a symbolic value used after its law was traced")
  T.raises(function() sse(function(t, s) return { kept + t } end) end, "option 'feedback': law: ", "used after its law was traced")
  T.ok(tostring(kept):find("qd.LawValue", 1, true) ~= nil, "tostring names the type")
  -- a law reading nothing: constant coefficients, = a function returning them
  local A, B = qd.ensemble(1, 4):h(0), qd.ensemble(1, 4):h(0)
  qd.sse(A, { dt = 0.01, steps = 20, measure = { "Z" }, gamma = 1, rng = qd.rng(1), feedback = { terms = { "X" }, law = function() return 0.4 end } })
  qd.sse(B, { dt = 0.01, steps = 20, measure = { "Z" }, gamma = 1, rng = qd.rng(1), feedback = { terms = { "X" }, fn = function() return { 0.4 } end } })
  local d = 0
  for j = 1, 4 do d = math.max(d, 1 - A[j]:fidelity(B[j])) end
  T.ok(d < 1e-12, "constant law = constant function: " .. d)
end)

T.test("sse errors", function()
  local E = qd.ensemble(2, 3)
  T.raises(function() qd.sse(qd.dm(2), { dt = 0.1, steps = 1 }) end, "qd.State or qd.Ensemble expected, got qd.DensityMatrix")
  T.raises(function() qd.sse(E) end, "bad argument #2 to 'sse' (options table {dt=, steps=, ...} expected, got no value)")
  T.raises(function() qd.sse(E, { steps = 1 }) end, "option 'dt' (number > 0) expected, got no value")
  T.raises(function() qd.sse(E, { dt = 0.1 }) end, "option 'steps' (an integer >= 1) expected, got no value")
  T.raises(function() qd.sse(E, { dt = -0.1, steps = 1 }) end, "option 'dt': number > 0 expected")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 1.5 }) end, "option 'steps': integer >= 1 expected")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 1, foo = 1 }) end, "unknown option 'foo'")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 1, scheme = "milstein" }) end, "option 'scheme': \"euler\" or \"rouchon\" expected, got milstein")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 1, measure = { "ZI" } }) end, "option 'gamma' (measurement rate: a number or one per observable) expected")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 1, measure = { "ZI" }, gamma = { 1, 2 } }) end, "option 'gamma': 1 rates expected (one per measured observable), got 2")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 1, measure = { "ZI" }, gamma = -1 }) end, "option 'gamma': finite rates >= 0 expected")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 1, measure = { "Z" }, gamma = 1 }) end, "option 'measure', entry 1): Pauli string of 2 letters expected, got \"Z\"")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 1, measure = { qd.pauli_sum.sigma_minus(2, 0) }, gamma = 1 }) end, "observable 1 is not Hermitian")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 1, H = "XYZ" }) end, "option 'H'): Pauli string of 2 letters expected")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 1, rng = 5 }) end, "option 'rng': qd.Rng expected, got number")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 1, feedback = { terms = { "XI" } } }) end, "option 'feedback': fn (a function(step, t, obj) returning the coefficients) or law (a function(t, s) traced once) expected")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 1, feedback = { terms = { "XI" }, fn = print, gain = 1 } }) end, "option 'feedback': unknown key 'gain' (known: terms, fn, law)")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 2, feedback = { terms = { "XI" }, fn = function(s) if s == 2 then error("boom") end return { 1 } end } }) end, "feedback function failed at step 2:")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 2, feedback = { terms = { "XI", "ZZ" }, fn = function() return { 1 } end } }) end, "feedback function at step 1: 2 coefficients expected (a table or qd.Vector of 2, or a 2 x 3 qd.Matrix, one column per member), got table")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 2, feedback = { terms = { "XI" }, fn = function() return qd.matrix(1, 2) end } }) end, "got an array of another shape")
  T.raises(function() qd.sse(E, { dt = 0.1, steps = 2, feedback = { terms = { "XI" }, fn = function() return 0 / 0 end } }) end, "feedback coefficients at step 1 are not finite")
  local F = qd.ensemble(2, 3)
  T.raises(function() qd.sse(F, { dt = 0.1, steps = 2, feedback = { terms = { "XI" }, fn = function(s, t, o) o:free() return { 1 } end } }) end, "feedback function freed the evolving qd.Ensemble at step 1")
  T.raises(function() qd.sse(qd.ensemble(1, 2):h(0), { dt = 10, steps = 100, measure = { "Z" }, gamma = 1e6, scheme = "euler", normalize = false }) end, "norm vanished or is not finite")
end)

T.test("qd.data.tfim", function()
  local E, g = qd.data.tfim(4, { 0.2, 0.4 }, 40, qd.rng(3))
  T.eq(#E, 40); T.eq(E.n, 4); T.eq(#g, 40)
  -- member k: ground state of tfim(4, g_k), g_k from substream k-1 of rng:split()
  local base = qd.rng(3):split()
  T.eq(g[7], base:substream(6):uniform(0.2, 0.4), "g from the documented substream")
  local s, e0 = qd.pauli_sum.tfim(4, g[7]):ground_state()
  T.near(qd.fidelity(E[7], s), 1, 1e-12, "member = ground state")
  T.near(qd.pauli_sum.tfim(4, g[7]):expect(E[7]), e0, 1e-12)
  local amin = 1
  for k = 1, 40 do T.ok(g[k] >= 0.2 and g[k] < 0.4) end
  -- mean magnetisation M = sum_b |psi_b|^2 |(1/n) sum_j (2 b_j - 1)| (QuDDPM's tfim task: ~0.96)
  local P = E:probs()
  local M = 0
  for k = 1, 40 do
    for b = 0, 15 do
      local ones = 0
      for j = 0, 3 do ones = ones + ((b >> j) & 1) end
      M = M + P:get(b + 1, k) * math.abs((2 * ones - 4) / 4)
    end
  end
  M = M / 40
  T.ok(M > 0.94 and M < 0.98, "mean magnetisation " .. M)
  for k = 1, 40 do amin = math.min(amin, (E[k]:amp(1))) end
  T.ok(amin > 0, "phase fixed: real positive amplitudes")
  local A = qd.data.tfim(3, 1.0, 2)
  T.near(qd.fidelity(A[1], A[2]), 1, 1e-14, "fixed g: identical members")
  local B = qd.data.tfim(4, { 0.2, 0.4 }, 5, qd.rng(3))
  T.eq(select(1, B[5]:amp(1)), select(1, E[5]:amp(1)), "member k independent of N")
  T.raises(function() qd.data.tfim(0, 1, 2) end, "bad argument #1 to 'tfim' (number of qubits 1..20 expected, got 0)")
  T.raises(function() qd.data.tfim(3, { 0.4, 0.2 }, 2) end, "bad argument #2 to 'tfim' (field range {lo, hi} (lo <= hi) or a number expected, got table)")
  T.raises(function() qd.data.tfim(3, 1, 0) end, "bad argument #3 to 'tfim' (number of states >= 1 expected, got 0)")
  T.raises(function() qd.data.tfim(3, 1, 2, qd.rng(1), { h = 1 }) end, "unknown option 'h' (known: J, periodic)")
  T.raises(function() qd.data.tfim(3, 1, 2, { periodic = 1 }) end, "option 'periodic': boolean expected, got number")
end)

T.test("sse: the feedback function may free the operators it was given", function()
  local F = qd.pauli_sum { { 1, "X" } }
  local A = qd.pauli_sum("Z")
  local E = qd.ensemble(1, 3)
  qd.sse(E, { dt = 0.01, steps = 5, measure = { A }, gamma = 1, rng = qd.rng(1), observe = { A },
              feedback = { terms = F, fn = function() F:free(); A:free(); collectgarbage(); return { 0.3 } end } })
  T.near(E[1]:norm(), 1, 1e-14, "ran on copies")
end)
