-- test_circuit.lua — qd.Circuit from Lua: slot syntax, runs on State / Ensemble /
-- DensityMatrix against gate-by-gate application, unitary / inverse, measurement and
-- discard, gradients (adjoint vs finite differences vs parameter shift, with measurement,
-- expected mode, density matrices), ansatz layouts, draw, thread invariance, errors.
local T = require "testlib"

local function maxdiff_states(a, b)
  local m = 0
  for i = 1, #a do
    local x, y = a:amp(i)
    local u, v = b:amp(i)
    m = math.max(m, math.abs(x - u) + math.abs(y - v))
  end
  return m
end

local function maxdiff_mat(A, B)
  local r, c = A:shape()
  local m = 0
  for i = 1, r do
    for j = 1, c do
      local x, y = A:get(i, j)
      local u, v = B:get(i, j)
      m = math.max(m, math.abs(x - u) + math.abs((y or 0) - (v or 0)))
    end
  end
  return m
end

local function maxdiff_vec(a, b)
  local m = 0
  for i = 1, #a do m = math.max(m, math.abs(a[i] - b[i])) end
  return m
end

local rng = qd.rng(2024)

local function rand_params(n)
  local t = {}
  for i = 1, n do t[i] = (2 * rng:uniform() - 1) * math.pi end
  return t
end

-- L = sum_k |<phi_k|psi_k>|^2 with G_k = <phi_k|psi_k> phi_k (State or Ensemble)
local function overlap_loss(phis)
  return function(out)
    local single = qd.type(out) == "qd.State"
    local N = single and 1 or #out
    local L, Gs = 0, {}
    for k = 1, N do
      local psi = single and out or out[k]
      local phi = phis[k]
      local re, im = phi:inner(psi)
      L = L + re * re + im * im
      local amps = {}
      for i = 1, #phi do
        local a, b = phi:amp(i)
        amps[i] = { re * a - im * b, re * b + im * a }
      end
      Gs[k] = qd.state.from(amps, { normalize = false })   -- a gradient, not a state
    end
    return L, single and Gs[1] or qd.ensemble.from(Gs, { normalize = false })
  end
end

-- L = sum_k <psi_k|Z_q|psi_k>, G = Z_q psi
local function z_loss(q)
  return function(out)
    local single = qd.type(out) == "qd.State"
    local N = single and 1 or #out
    local L, Gs = 0, {}
    for k = 1, N do
      local psi = single and out or out[k]
      L = L + psi:expect("Z", { q })
      Gs[k] = psi:copy():z(q)
    end
    return L, single and Gs[1] or qd.ensemble.from(Gs, { normalize = false })
  end
end

T.test("slot syntax", function()
  local c = qd.circuit(2)
  c:rx(0, 0.5)                         -- fixed
  T.eq(c:nparams(), 0, "fixed angle makes no slot")
  c:ry(1, "a")                         -- named
  c:rz(0, "a")                         -- shared
  T.eq(c:nparams(), 1, "named slot reused")
  c:rx(1)                              -- new unnamed
  T.eq(c:nparams(), 2, "omitted angle = new slot")
  c:rzz(0, 1, { 5 })                   -- slot by number (creates 3..5)
  T.eq(c:nparams(), 5, "slot by number")
  c:crx(0, 1, { "b", scale = 2, offset = 0.1 })
  T.eq(c:nparams(), 6, "named with scale")
  T.eq(c:param_index("a"), 1, "param_index a")
  T.eq(c:param_index("b"), 6, "param_index b")
  T.eq(c:param_index("zz"), nil, "absent name")
  T.eq(c:param("c"), 7, "param() creates")
  T.eq(c:param(), 8, "param() unnamed")
  local names = c:param_names()
  T.eq(names[1], "a", "names[1]")
  T.eq(names[2], nil, "unnamed slot has no name")
  T.eq(#c, 6, "#c counts ops")
  T.eq(c.n, 2, "c.n")
  T.ok(tostring(c):find("qd.Circuit(2 qubits, 6 ops, 8 parameters)", 1, true), tostring(c))
  -- the angle rule: angle = offset + scale * theta
  local th = { 0.3, -0.4, 0, 0, 0.9, 0.7, 0, 0 }
  local s = qd.haar_state(2, rng)
  local out = c:run(s, th)
  local ref = s:copy():rx(0, 0.5):ry(1, 0.3):rz(0, 0.3):rx(1, -0.4):rzz(0, 1, 0.9):crx(0, 1, 0.1 + 2 * 0.7)
  T.ok(maxdiff_states(out, ref) < 1e-13, "run vs gates by hand")
  -- the u gate's three angles, each its own spec
  local u = qd.circuit(1):u(0, 0.1, "p", { 1, scale = -1 })
  local s1 = qd.haar_state(1, rng)
  T.ok(maxdiff_states(u:run(s1, { 0.8 }), s1:copy():u(0, 0.1, 0.8, -0.8)) < 1e-14, "u with specs")
end)

-- a random circuit with every gate of the table, slots shared
local function random_circuit(n, extra, nslots)
  local c = qd.circuit(n)
  for i = 1, nslots do c:param() end
  local names = {}
  for name, g in pairs(qd.gates()) do
    if g.qubits <= n then names[#names + 1] = name end
  end
  table.sort(names)
  local list = {}
  for _, nm in ipairs(names) do list[#list + 1] = nm end
  for _ = 1, extra do list[#list + 1] = names[rng:integer(1, #names)] end
  local gates = qd.gates()
  for _, nm in ipairs(list) do
    local g = gates[nm]
    local qs = {}
    while #qs < g.qubits do
      local q = rng:integer(0, n - 1)
      local dup = false
      for _, p in ipairs(qs) do dup = dup or p == q end
      if not dup then qs[#qs + 1] = q end
    end
    local args = {}
    for i = 1, g.params do
      local u = rng:uniform()
      if u < 0.2 then args[i] = rng:uniform() * 3
      elseif u < 0.6 then args[i] = { rng:integer(1, nslots) }
      else args[i] = { rng:integer(1, nslots), scale = 2 * rng:uniform() - 1, offset = rng:uniform() } end
    end
    local all = {}
    for _, q in ipairs(qs) do all[#all + 1] = q end
    for i = 1, g.params do all[#all + 1] = args[i] end
    c[nm](c, table.unpack(all, 1, g.qubits + g.params))
  end
  return c
end

T.test("run on State, Ensemble, DensityMatrix; unitary; inverse", function()
  for n = 1, 4 do
    local c = random_circuit(n, 10, 3)
    local th = rand_params(3)
    local E = qd.ensemble.haar(n, 4, rng)
    local out = c:run(E, th)
    T.eq(qd.type(out), "qd.Ensemble", "ensemble out")
    local md = 0
    for k = 1, 4 do md = math.max(md, maxdiff_states(out[k], c:run(E[k], th))) end
    T.ok(md < 1e-13, "ensemble members = single runs")
    -- unitary columns
    local U = c:unitary(th)
    local d = 2 ^ n
    local mc = 0
    for j = 1, d do
      local bits = {}
      for b = n - 1, 0, -1 do bits[#bits + 1] = ((j - 1) >> b) & 1 end
      local col = c:run(qd.state(n, table.concat(bits)), th)
      for i = 1, d do
        local x, y = U:get(i, j)
        local u, v = col:amp(i)
        mc = math.max(mc, math.abs(x - u) + math.abs(y - v))
      end
    end
    T.ok(mc < 1e-13, "unitary columns = runs on basis states")
    -- inverse
    local ci = c:inverse()
    local back = ci:run(out, th)
    local mb = 0
    for k = 1, 4 do mb = math.max(mb, maxdiff_states(back[k], E[k])) end
    T.ok(mb < 1e-12, "inverse undoes the circuit")
    -- density matrix
    local s = qd.haar_state(n, rng)
    local rho = c:run(qd.dm(s), th)
    T.eq(qd.type(rho), "qd.DensityMatrix", "dm out")
    T.ok(maxdiff_mat(rho:matrix(), qd.dm(c:run(s, th)):matrix()) < 1e-12, "dm run = |Us><Us|")
    -- apply in place
    local s2 = s:copy()
    T.ok(c:apply(s2, th) == s2, "apply returns the object")
    T.ok(maxdiff_states(s2, c:run(s, th)) < 1e-14, "apply = run")
    -- append
    local c2 = qd.circuit(n)
    c2:append(c)
    T.eq(c2:nparams(), 3, "append copies slots")
    T.ok(maxdiff_mat(c2:unitary(th), U) < 1e-14, "append = same circuit")
  end
end)

T.test("measurement, discard, outcomes, probabilities", function()
  local c = qd.ansatz.quddpm(2, 2, { ancillas = 1 })
  T.eq(c:nparams(), 12, "quddpm parameter count 2(n+na)L")
  T.eq(c.nout, 2, "data qubits out")
  local th = rand_params(12)
  local E = qd.ensemble.haar(2, 6, rng):embed(1)
  local out, oc, pr = c:run(E, th, { rng = qd.rng(5) })
  T.eq(qd.type(out), "qd.Ensemble", "ensemble out")
  T.eq(out.n, 2, "ancilla discarded")
  local r, cc = oc:shape()
  T.eq(r, 6, "outcome rows = members")
  T.eq(cc, 1, "one measurement")
  T.eq(#pr, 6, "probabilities")
  for k = 1, 6 do
    T.ok(math.abs(out[k]:norm() - 1) < 1e-13, "normalised post-measurement state")
    T.ok(oc:get(k, 1) == 0 or oc:get(k, 1) == 1, "outcome bit")
  end
  -- same rng seed -> same outcomes; fixed outcomes reproduce the states
  local out2, oc2 = c:run(E, th, { rng = qd.rng(5) })
  T.ok(maxdiff_mat(oc, oc2) == 0, "reproducible outcomes")
  local out3 = c:run(E, th, { outcomes = oc })
  local md = 0
  for k = 1, 6 do md = math.max(md, maxdiff_states(out3[k], out[k])) end
  T.ok(md == 0, "fixed outcomes reproduce the run")
  -- probabilities: p(m) = || <m|_A U x ||^2
  local full = qd.circuit(3)
  full:append(qd.ansatz.quddpm(3, 2))
  local y = full:run(E[1], th)
  local p0 = y:probs({ 0 })[1]
  local m = oc:get(1, 1)
  T.near(pr[1], m == 0 and p0 or 1 - p0, 1e-13, "outcome probability")
  -- first = k: a block of members k.. draws from their global substreams, so blocks run
  -- apart equal the run on the whole (outcomes, states, probabilities)
  do
    local B1, B2 = qd.ensemble(3, 2), qd.ensemble(3, 4)
    for k = 1, 2 do B1[k] = E[k] end
    for k = 1, 4 do B2[k] = E[k + 2] end
    local o1, c1, p1 = c:run(B1, th, { rng = qd.rng(5) })
    local o2, c2, p2 = c:run(B2, th, { rng = qd.rng(5), first = 3 })
    local same = true
    for k = 1, 6 do
      local ob, cb, pb = k <= 2 and o1 or o2, k <= 2 and c1 or c2, k <= 2 and p1 or p2
      local kk = k <= 2 and k or k - 2
      same = same and maxdiff_states(ob[kk], out[k]) == 0 and cb:get(kk, 1) == oc:get(k, 1) and pb[kk] == pr[k]
    end
    T.ok(same, "first: blocks run apart = the whole run, bit for bit")
    T.raises(function() c:run(B2, th, { first = 0 }) end, "option 'first': member index >= 1 expected")
    T.raises(function() c:run(B2, th, { first = 1.5 }) end, "option 'first': member index >= 1 expected")
    T.raises(function() c:run(qd.dm(3), th, { first = 2 }) end, "option 'first': a DensityMatrix draws nothing")
    T.raises(function() c:grad(B2, th, function(o) return 0, qd.ensemble(2, 4) end, { first = 2, expected = true }) end,
             "option 'first': only for sampled runs")
  end
  -- a State input returns a number probability
  local s_out, s_oc, s_p = c:run(E[2], th)
  T.eq(type(s_p), "number", "State: probability is a number")
  -- density matrix: measurement + discard = Tr_anc of U rho U^dagger
  local rho = qd.dm(E[1])
  local rout = c:run(rho, th)
  T.eq(rout.n, 2, "dm discard")
  local ref = qd.dm(y):ptrace({ 1, 2 })
  T.ok(maxdiff_mat(rout:matrix(), ref:matrix()) < 1e-13, "dm run = partial trace")
  T.near(rout:trace(), 1, 1e-13, "trace 1")
  -- reset
  local rc = qd.circuit(2):h(0):cx(0, 1):reset({ 0 })
  local st = rc:run(qd.state(2))
  T.near(st:probs({ 0 })[1], 1, 1e-14, "reset leaves |0>")
  local rd = rc:run(qd.dm(2))
  T.near(rd:probs({ 0 })[1], 1, 1e-14, "dm reset")
  T.near(rd:purity(), 0.5, 1e-14, "dm reset keeps the other qubit mixed")
end)

T.test("gradients: adjoint vs finite differences vs parameter shift", function()
  for n = 1, 3 do
    local c = random_circuit(n, 8, 4)
    local th = rand_params(4)
    local E = qd.ensemble.haar(n, 3, rng)
    local phis = { qd.haar_state(n, rng), qd.haar_state(n, rng), qd.haar_state(n, rng) }
    for _, loss in ipairs { overlap_loss(phis), z_loss(n - 1) } do
      local L, g = c:grad(E, th, loss)
      local Lf, gf = c:grad_fd(E, th, loss)
      local Lp, gp = c:grad_ps(E, th, loss)
      T.near(L, Lf, 1e-13, "loss value")
      T.near(L, Lp, 1e-13, "loss value ps")
      T.ok(maxdiff_vec(g, gf) < 1e-6, "adjoint vs fd n=" .. n .. ": " .. maxdiff_vec(g, gf))
      T.ok(maxdiff_vec(g, gp) < 1e-11, "adjoint vs shift n=" .. n .. ": " .. maxdiff_vec(g, gp))
      -- the same through vjp directly, G as a complex qd.Matrix
      local out = c:run(E, th)
      local _, G = loss(out)
      local M = qd.matrix(2 ^ n, 3, { complex = true })
      for k = 1, 3 do
        local gk = G[k]
        for i = 1, 2 ^ n do M:set(i, k, { gk:amp(i) }) end
      end
      local gv, Gin = c:vjp(E, th, M)
      T.ok(maxdiff_vec(gv, g) < 1e-14, "vjp with a matrix G")
      T.eq(qd.type(Gin), "qd.Ensemble", "G_in type")
    end
  end
end)

T.test("gradients through measurement (outcome held fixed)", function()
  local c = qd.ansatz.quddpm(2, 2, { ancillas = 1 })
  local th = rand_params(12)
  local E = qd.ensemble.haar(2, 4, rng):embed(1)
  local phis = { qd.haar_state(2, rng), qd.haar_state(2, rng), qd.haar_state(2, rng), qd.haar_state(2, rng) }
  local loss = overlap_loss(phis)
  local L, g, out, oc = c:grad(E, th, loss, { rng = qd.rng(77) })
  T.eq(qd.type(oc), "qd.Matrix", "grad returns the outcomes")
  local Lf, gf = c:grad_fd(E, th, loss, { outcomes = oc })
  T.near(L, Lf, 1e-13, "same loss")
  T.ok(maxdiff_vec(g, gf) < 1e-6, "measurement adjoint vs fd: " .. maxdiff_vec(g, gf))
  T.raises(function() c:grad_ps(E, th, loss) end, "grad_ps: the circuit measures a pure state")
  -- expected mode: sum over outcomes of P_m * l(psi'_m), per member
  local function per_member(out_m)
    local N = #out_m
    local ls, Gs = qd.vector(N), {}
    for k = 1, N do
      local re, im = phis[k]:inner(out_m[k])
      ls[k] = re * re + im * im
      local amps = {}
      for i = 1, #phis[k] do
        local a, b = phis[k]:amp(i)
        amps[i] = { re * a - im * b, re * b + im * a }
      end
      Gs[k] = qd.state.from(amps, { normalize = false })   -- a gradient, not a state
    end
    return ls, qd.ensemble.from(Gs, { normalize = false })
  end
  local Ee, ge = c:grad(E, th, per_member, { expected = true })
  local Ef, gef = c:grad_fd(E, th, per_member, { expected = true })
  T.near(Ee, Ef, 1e-13, "expected value")
  T.ok(maxdiff_vec(ge, gef) < 1e-6, "expected-mode adjoint vs fd: " .. maxdiff_vec(ge, gef))
  -- for l = <Z> the expected loss is the density-matrix value
  local function zmem(out_m)
    local ls, Gs = qd.vector(#out_m), {}
    for k = 1, #out_m do
      ls[k] = out_m[k]:expect("Z", { 0 })
      Gs[k] = out_m[k]:copy():z(0)
    end
    return ls, qd.ensemble.from(Gs, { normalize = false })
  end
  local Ez, gz = c:grad(E[1], th, function(s, p, m)
    local l, G = zmem(qd.ensemble.from { s })
    return l[1], G[1]
  end, { expected = true })
  local rho = qd.dm(E[1])
  local Gz = qd.matrix { { 0.5, 0, 0, 0 }, { 0, 0.5, 0, 0 }, { 0, 0, -0.5, 0 }, { 0, 0, 0, -0.5 } }
  local Gzc = qd.matrix(4, 4, { complex = true })
  for i = 1, 4 do Gzc:set(i, i, Gz:get(i, i)) end
  T.near(Ez, c:run(rho, th):expect("Z", { 0 }), 1e-13, "expected <Z> = dm <Z>")
  local gd = c:vjp(rho, th, Gzc)
  T.ok(maxdiff_vec(gz, gd) < 1e-12, "expected-mode gradient = dm adjoint: " .. maxdiff_vec(gz, gd))
end)

T.test("density-matrix gradients", function()
  local c = random_circuit(3, 6, 4)
  c:measure({ 0 }, { discard = true })
  local th = rand_params(4)
  local rho = qd.dm(qd.haar_state(3, rng))
  -- L = Tr(rho_out^2): G = rho_out
  local function purity_loss(r)
    local M = r:matrix()
    return r:purity(), M
  end
  local L, g = c:grad(rho, th, purity_loss)
  local Lf, gf = c:grad_fd(rho, th, purity_loss)
  T.near(L, Lf, 1e-13, "purity loss")
  T.ok(maxdiff_vec(g, gf) < 1e-6, "dm adjoint vs fd: " .. maxdiff_vec(g, gf))
  -- linear loss <Z_0>: G = Z/2, and parameter shift is exact
  local function zl(r)
    local G = qd.matrix(4, 4, { complex = true })
    G:set(1, 1, 0.5); G:set(2, 2, 0.5); G:set(3, 3, -0.5); G:set(4, 4, -0.5)
    return r:expect("Z", { 0 }), G
  end
  local _, g1 = c:grad(rho, th, zl)
  local _, g2 = c:grad_ps(rho, th, zl)
  T.ok(maxdiff_vec(g1, g2) < 1e-12, "dm adjoint vs parameter shift")
end)

T.test("thread invariance of gradients", function()
  local c = qd.ansatz.quddpm(4, 2, { ancillas = 2 })
  local th = rand_params(c:nparams())
  local E = qd.ensemble.haar(4, 300, rng):embed(2)
  local loss = function(out)
    local Gs = {}
    local L = 0
    for k = 1, #out do
      local s = out[k]
      L = L + s:expect("Z", { 1 })
      Gs[k] = s:copy():z(1)
    end
    return L, qd.ensemble.from(Gs)
  end
  local t0 = qd.threads()
  qd.set_threads(1)
  local L1, g1 = c:grad(E, th, loss, { rng = qd.rng(3) })
  qd.set_threads(2)
  local L2, g2 = c:grad(E, th, loss, { rng = qd.rng(3) })
  qd.set_threads(t0)
  T.eq(L1, L2, "loss identical for 1 and 2 threads")
  T.eq(maxdiff_vec(g1, g2), 0, "gradient identical for 1 and 2 threads")
end)

T.test("ansatz layouts", function()
  -- quddpm: slot 2N(l-1)+i+1 is RX on qubit i, 2N(l-1)+N+i+1 is RY
  local N, L = 3, 2
  local c = qd.ansatz.quddpm(N, L)
  local th = rand_params(2 * N * L)
  local s = qd.haar_state(N, rng)
  local ref = s:copy()
  for l = 1, L do
    local b = 2 * N * (l - 1)
    for i = 0, N - 1 do ref:rx(i, th[b + i + 1]):ry(i, th[b + N + i + 1]) end
    ref:cz(0, 1)
    ref:cz(1, 2)
  end
  T.ok(maxdiff_states(c:run(s, th), ref) < 1e-13, "quddpm layout")
  -- strongly entangling: Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi), CNOT ring range r
  local se = qd.ansatz.strongly_entangling(3, 2)
  T.eq(se:nparams(), 18, "strongly entangling params")
  local t2 = rand_params(18)
  ref = s:copy()
  for l = 1, 2 do
    local b = 9 * (l - 1)
    for i = 0, 2 do ref:rz(i, t2[b + 3 * i + 1]):ry(i, t2[b + 3 * i + 2]):rz(i, t2[b + 3 * i + 3]) end
    local r = ((l - 1) % 2) + 1
    for i = 0, 2 do ref:cx(i, (i + r) % 3) end
  end
  T.ok(maxdiff_states(se:run(s, t2), ref) < 1e-13, "strongly entangling layout")
  local rr = qd.ansatz.ry_rz_cz(3, 1)
  local t3 = rand_params(6)
  ref = s:copy():ry(0, t3[1]):ry(1, t3[2]):ry(2, t3[3]):rz(0, t3[4]):rz(1, t3[5]):rz(2, t3[6]):cz(0, 1):cz(1, 2)
  T.ok(maxdiff_states(rr:run(s, t3), ref) < 1e-13, "ry_rz_cz layout")
  local he = qd.ansatz.hardware_efficient(2, 1, { final = true })
  T.eq(he:nparams(), 8, "hardware efficient params")
  local t4 = rand_params(8)
  local s2 = qd.haar_state(2, rng)
  ref = s2:copy():ry(0, t4[1]):rz(0, t4[2]):ry(1, t4[3]):rz(1, t4[4]):cx(0, 1)
             :ry(0, t4[5]):rz(0, t4[6]):ry(1, t4[7]):rz(1, t4[8])
  T.ok(maxdiff_states(he:run(s2, t4), ref) < 1e-13, "hardware efficient layout")
  T.raises(function() qd.ansatz.quddpm(0, 1) end, "integer >= 1 expected")
  T.raises(function() qd.ansatz.quddpm(2, 1, { ancilla = 1 }) end, "unknown option 'ancilla'")
end)

T.test("draw", function()
  local c = qd.circuit(3):h(0):cx(0, 2):rx(1, "a"):measure({ 2 }, { discard = true })
  local d = c:draw()
  T.ok(d:find("q0: ", 1, true) and d:find("H", 1, true) and d:find("RX(a)", 1, true), d)
  local lines = {}
  for l in d:gmatch("[^\n]+") do lines[#lines + 1] = l end
  T.eq(#lines, 3, "one line per qubit")
  T.ok(lines[2]:find("|", 1, true) ~= nil, "control line crosses qubit 1")
  T.ok(lines[3]:find("M>", 1, true) ~= nil, "discarding measurement")
end)

T.test("errors", function()
  local c = qd.circuit(2)
  T.raises(function() qd.circuit(0) end, "number of qubits >= 1 expected")
  T.raises(function() qd.circuit("a") end, "number of qubits expected")
  T.raises(function() c:rx(2, 0.1) end, "qubit index 0..1 expected, got 2")
  T.raises(function() c:cx(0, 0) end, "distinct qubits expected")
  T.raises(function() c:rx(0, true) end, "angle (number), parameter name")
  T.raises(function() c:rx(0, { 1, scal = 2 }) end, "unknown key")
  T.raises(function() c:rx(0, { scale = 2 }) end, "no slot at [1]")
  T.raises(function() c:rx(0, { 0 }) end, "parameter slot")
  T.raises(function() c:rx(0, 0 / 0) end, "finite angle expected")
  T.raises(function() c:rx(0, 1, 2) end, "unexpected extra argument")
  T.raises(function() c:ccx(0, 1, 1) end, "'ccx' acts on 3 qubits, the circuit has 2")
  c:rx(0, "a"):cx(0, 1)
  local s = qd.state(2)
  T.raises(function() c:run(s) end, "parameters (qd.Vector or table of 1 numbers) expected")
  T.raises(function() c:run(s, { 1, 2 }) end, "1 parameters expected, got 2")
  T.raises(function() c:run(s, { "x" }) end, "number expected at parameter 1")
  T.raises(function() c:run(qd.state(3), { 1 }) end, "2-qubit input expected")
  T.raises(function() c:run(42, { 1 }) end, "qd.State, qd.DensityMatrix or qd.Ensemble expected")
  T.raises(function() c:run(s, { 1 }, { rgn = 1 }) end, "unknown option 'rgn'")
  T.raises(function() c:add_unitary({ { 1, 1 }, { 0, 1 } }, { 0 }) end, "unitary matrix expected")
  T.raises(function() c:add_unitary({ { 1, 0 }, { 0, 1 } }, { 0, 1 }) end, "4x4 matrix for 2 qubits expected")
  T.raises(function() c:measure({ 0, 1 }, { discard = true }) end, "cannot discard every qubit")
  T.raises(function() c:measure({ 0 }, { keep = true }) end, "unknown option 'keep'")
  local m = c:copy():measure({ 0 }, { discard = true })
  T.raises(function() m:rx(0, 1) end, "qubit 0 was discarded")
  T.raises(function() m:unitary({ 1 }) end, "measurements, resets or channels")
  T.raises(function() m:inverse() end, "no inverse")
  T.raises(function() m:apply(s, { 1 }) end, "use c:run")
  T.raises(function() m:vjp(s, { 1 }, qd.state(1)) end, "option 'outcomes'")
  T.raises(function() c:vjp(s, { 1 }, qd.state(1)) end, "gradient G: qd.State of 2 qubits expected")
  T.raises(function() c:grad(s, { 1 }, function(o) return "x" end) end, "must return a number first")
  T.raises(function() c:grad(s, { 1 }, function(o) return 1, 2 end) end, "second result")
  T.raises(function() c:grad(s, { 1 }, 5) end, "function expected")
  T.raises(function() c:grad(s, { 1 }, function(o) return 0, o end, { expected = true }) end,
           "expected mode needs a circuit with measurements")
  T.raises(function() m:run(s, { 1 }, { outcomes = qd.matrix { { 5 } } }) end, "out of range")
  T.raises(function() m:run(s, { 1 }, { outcomes = qd.matrix { { 0.5 } } }) end, "non-negative integer outcomes")
  T.raises(function() m:run(s, { 1 }, { outcomes = qd.matrix { { 0, 0 } } }) end, "1x1 qd.Matrix of outcomes")
  T.raises(function() m:run(s, { 1 }, { rng = 3 }) end, "option 'rng': qd.Rng expected")
  T.raises(function() c:grad_fd(s, { 1 }, function(o) return 0 end, { h = -1 }) end, "positive step")
  -- the circuit must not change during a gradient
  T.raises(function() c:grad(s, { 1 }, function(o) c:h(0); return 0, o end) end, "modified by the loss function")
  -- zero-probability fixed outcome
  local z = qd.circuit(2):measure({ 0 }, { discard = true })
  T.raises(function() z:run(qd.state(2), nil, { outcomes = qd.matrix { { 1 } } }) end, "has probability 0")
end)

T.test("with the loss library's gradients (same convention)", function()
  if not (qd.loss and qd.loss.mmd and qd.loss.wasserstein) then return end
  local r = qd.rng(3)
  local c = qd.ansatz.quddpm(2, 3, { ancillas = 1 })
  local th = qd.vector(c:nparams())
  for i = 1, #th do th[i] = r:normal() end
  local E = qd.ensemble.haar(2, 12, r):embed(1)
  local targets = qd.ensemble.haar(2, 12, r)
  local mmd = function(out) local v, GA = qd.loss.mmd(out, targets, { grad = true }); return v, GA end
  local L, g, _, oc = c:grad(E, th, mmd, { rng = r })
  local Lf, gf = c:grad_fd(E, th, mmd, { outcomes = oc })
  T.near(L, Lf, 1e-14, "mmd value")
  T.ok(maxdiff_vec(g, gf) < 1e-7, "mmd gradient vs fd: " .. maxdiff_vec(g, gf))
  local w = function(out) local v, _, GA = qd.loss.wasserstein(out, targets, { grad = true }); return v, GA end
  L, g, _, oc = c:grad(E, th, w, { rng = r })
  Lf, gf = c:grad_fd(E, th, w, { outcomes = oc })
  T.ok(maxdiff_vec(g, gf) < 1e-7, "wasserstein gradient vs fd: " .. maxdiff_vec(g, gf))
end)

T.test("a failed gate call leaves the circuit unchanged", function()
  local c = qd.circuit(1)
  T.raises(function() c:u(0, "a", {}, 0.1) end, "no slot at [1]")
  T.eq(c:nparams(), 0, "no slot created")
  T.eq(c:param_index("a"), nil, "name not created")
  T.eq(#c, 0, "no op")
end)

T.test("c:grad (one forward with its tape) = c:run + c:vjp, bitwise", function()
  local r = qd.rng(4242)
  -- measure-and-discard ancilla (QuDDPM), a mid-circuit measurement and a reset, no measurement
  local cq = qd.ansatz.quddpm(2, 3, { ancillas = 1 })
  local cm = qd.circuit(3)
  cm:rx(0, "a"):ry(1, "b"):cz(0, 1):measure({ 1 }):rxx(0, 2, "c"):reset({ 0 }):ry(0, "d"):rz(2, "a")
  local cu = qd.circuit(2)
  cu:rx(0, "a"):ry(1, "b"):cx(0, 1):rz(1, "c"):ryy(0, 1, "a")
  for _, c in ipairs({ cq, cm, cu }) do
    local E = qd.ensemble.haar(c.n, 7, r)
    local th = r:normal(0, 1, c:nparams())
    local loss = function(out)
      local v, G = qd.loss.mmd(out, qd.ensemble.haar(out.n, 5, qd.rng(1)), { grad = true })
      return v, G
    end
    for _, opts in ipairs({ { rng = qd.rng(9) }, {} }) do
      local L, g, out, oc = c:grad(E, th, loss, opts)
      local out2 = c:run(E, th, oc and { outcomes = oc } or nil)
      local L2, G2 = loss(out2)
      local g2 = c:vjp(E, th, G2, oc and { outcomes = oc } or nil)
      T.eq(L, L2, "loss identical")
      local same = true
      for i = 1, c:nparams() do same = same and g[i] == g2[i] end
      T.ok(same, "gradient bitwise identical to run + vjp")
      local same_out = true
      for k = 1, #out do
        local a, b = out[k]:totable(), out2[k]:totable()
        for i = 1, #a do same_out = same_out and a[i][1] == b[i][1] and a[i][2] == b[i][2] end
      end
      T.ok(same_out, "output identical")
    end
  end
end)

T.test("c:forward + tape:vjp = c:run + c:vjp, bitwise; input_grad = false; tape errors", function()
  local r = qd.rng(777)
  local cq = qd.ansatz.quddpm(2, 3, { ancillas = 1 })
  local cm = qd.circuit(3)
  cm:rx(0, "a"):ry(1, "b"):cz(0, 1):measure({ 1 }):rxx(0, 2, "c"):reset({ 0 }):ry(0, "d"):rz(2, "a")
  local ch = qd.ansatz.hardware_efficient(4, 3)   -- cx ladders (the lane backward pass)
  local function same_vec(a, b)
    if #a ~= #b then return false end
    for i = 1, #a do if a[i] ~= b[i] then return false end end
    return true
  end
  local function same_state(a, b)
    local x, y = a:totable(), b:totable()
    if #x ~= #y then return false end
    for i = 1, #x do if x[i][1] ~= y[i][1] or x[i][2] ~= y[i][2] then return false end end
    return true
  end
  local function same_reg(a, b)
    local t = qd.type(a)
    if t ~= qd.type(b) then return false end
    if t == "qd.State" then return same_state(a, b) end
    if t == "qd.Ensemble" then
      if #a ~= #b then return false end
      for k = 1, #a do if not same_state(a[k], b[k]) then return false end end
      return true
    end
    local x, y = a:matrix(), b:matrix()   -- density matrices
    local r, cc = x:shape()
    for i = 1, r do
      for j = 1, cc do
        local p1, p2 = x:get(i, j)
        local q1, q2 = y:get(i, j)
        if p1 ~= q1 or p2 ~= q2 then return false end
      end
    end
    return true
  end
  for _, c in ipairs({ cq, cm, ch }) do
    for _, kind in ipairs({ "ensemble", "state" }) do
      local x = kind == "ensemble" and qd.ensemble.haar(c.n, 6, r) or qd.random.state(c.n, r)
      local th = r:normal(0, 1, c:nparams())
      local out, tape, oc, pr = c:forward(x, th, { rng = qd.rng(5) })
      local out2, oc2, pr2 = c:run(x, th, { rng = qd.rng(5) })
      T.ok(same_reg(out, out2), "forward's output = run's (" .. kind .. ")")
      if c.nmeas > 0 then
        T.ok(oc ~= nil and pr ~= nil, "forward returns outcomes and probabilities after the tape")
      end
      local G = kind == "ensemble" and qd.ensemble.haar(c.nout, 6, r) or qd.random.state(c.nout, r)
      local g1, gx1 = c:vjp(x, th, G, oc and { outcomes = oc } or nil)
      -- the tape holds copies: changing x and th afterwards changes nothing
      if kind == "ensemble" then x:ry(0, 0.3) else x:h(0) end
      for i = 1, #th do th[i] = th[i] + 1 end
      local g2, gx2 = tape:vjp(G)
      T.ok(same_vec(g1, g2), "tape:vjp gradient = c:vjp's, bitwise (" .. qd.type(x) .. ")")
      T.ok(same_reg(gx1, gx2), "tape:vjp input gradient = c:vjp's, bitwise")
      local g3, none = tape:vjp(G, { input_grad = false })
      T.ok(same_vec(g1, g3) and none == nil, "input_grad = false: the same gradient only")
      local g4 = tape:vjp(G)   -- a tape is reusable
      T.ok(same_vec(g1, g4), "a second tape:vjp gives the same")
      tape:free()
      T.raises(function() tape:vjp(G) end, "the qd.Tape has been freed")
      tape:free()   -- idempotent
    end
  end
  -- density matrices: the tape keeps the input
  local rho = qd.dm(qd.random.state(4, r))
  local th = r:normal(0, 1, ch:nparams())
  local out, tape = ch:forward(rho, th)
  T.ok(same_reg(out, ch:run(rho, th)), "forward on a DensityMatrix = run")
  local Gd = qd.dm(qd.random.state(4, r))
  local g1, gx1 = ch:vjp(rho, th, Gd)
  local g2, gx2 = tape:vjp(Gd)
  T.ok(same_vec(g1, g2) and same_reg(gx1, gx2), "DensityMatrix tape:vjp = c:vjp, bitwise")
  T.ok(same_vec(g1, (ch:vjp(rho, th, Gd, { input_grad = false }))), "c:vjp input_grad = false")
  T.eq(select("#", ch:vjp(rho, th, Gd, { input_grad = false })), 1, "c:vjp input_grad = false: one result")
  T.ok(tape:circuit() == ch, "tape:circuit()")
  T.ok(tostring(tape):match("^qd.Tape%(qd.DensityMatrix of 4 qubits"), "tostring")
  -- errors
  T.raises(function() tape:vjp(qd.dm(3)) end, "gradient G: qd.DensityMatrix of 4 qubits")
  T.raises(function() tape:vjp(Gd, { dLdP = 1 }) end, "option 'dLdP' needs a circuit with measurements")
  T.raises(function() tape:vjp(Gd, { bogus = 1 }) end, "unknown option 'bogus'")
  T.raises(function() tape.vjp(qd.state(1), Gd) end, "qd.Tape expected")
  local c2 = qd.circuit(2):ry(0, "a"):cx(0, 1)
  local E = qd.ensemble.haar(2, 3, r)
  local _, t2 = c2:forward(E, { 0.4 })
  c2:rz(1, "b")
  T.raises(function() t2:vjp(qd.ensemble.haar(2, 3, r)) end, "the circuit has changed since c:forward")
  local c3 = qd.circuit(2):ry(0, "a")
  local _, t3 = c3:forward(E, { 0.4 })
  c3:free()
  T.raises(function() t3:vjp(qd.ensemble.haar(2, 3, r)) end, "the tape's circuit has been freed")
  local cn = qd.circuit(1):ry(0, "a"):channel(qd.channel.dephasing { p = 0.1 }, { 0 })
  T.raises(function() cn:forward(qd.state(1), { 0.1 }) end, "no gradient through a channel on pure states")
  T.ok(pcall(cn.forward, cn, qd.dm(1), { 0.1 }), "a channel on a DensityMatrix: fine")
end)

-- gate fusion of forward runs (1-qubit gates per qubit into one 2x2, diagonal runs into one
-- table pass; circuit.c): c:run / c:apply / c:unitary against the same gates applied one by
-- one to the object, for random circuits mixing every gate type with diagonal-heavy layers
-- and measurement barriers, on states and ensembles of 1..9 qubits
T.test("gate fusion: runs = gate-by-gate application", function()
  local r = qd.rng(77)
  local gates = qd.gates()
  local names = {}
  for name, g in pairs(gates) do names[#names + 1] = name end
  table.sort(names)
  local diag = { "rz", "p", "s", "t", "z", "cz", "cp", "crz", "rzz", "rz", "cz", "cz" }
  for n = 1, 9 do
    for _, N in ipairs({ 0, 3 }) do   -- 0: a State
      local c = qd.circuit(n)
      c:param()
      local ops = {}   -- {name, qubits..., angles...} as applied by hand
      local th = { 0.7 }
      for t = 1, 8 * n + 10 do
        local nm
        if r:uniform() < 0.5 then nm = diag[r:integer(1, #diag)] else nm = names[r:integer(1, #names)] end
        local g = gates[nm]
        if g.qubits <= n then
          local qs = {}
          while #qs < g.qubits do
            local q = r:integer(0, n - 1)
            local dup = false
            for _, p in ipairs(qs) do dup = dup or p == q end
            if not dup then qs[#qs + 1] = q end
          end
          local args, vals = {}, {}
          for i = 1, g.params do
            if r:uniform() < 0.5 then
              vals[i] = r:uniform() * 3
              args[i] = vals[i]
            else
              args[i] = { 1, scale = 2, offset = 0.1 }
              vals[i] = 2 * th[1] + 0.1
            end
          end
          local all, hand = {}, {}
          for _, q in ipairs(qs) do all[#all + 1] = q; hand[#hand + 1] = q end
          for i = 1, g.params do all[#all + 1] = args[i]; hand[#hand + 1] = vals[i] end
          c[nm](c, table.unpack(all))
          ops[#ops + 1] = { nm, hand }
        end
        if N > 0 and t % 13 == 0 then   -- a measurement barrier (outcomes fixed below)
          local q = r:integer(0, n - 1)
          c:measure({ q })
          ops[#ops + 1] = { "measure", q }
        end
      end
      local x = N > 0 and qd.ensemble.haar(n, N, r) or qd.haar_state(n, r)
      local out, oc = c:run(x, th, { rng = qd.rng(5) })
      -- by hand: gates one by one, measurements projected on the sampled outcomes
      local members = {}
      for k = 1, math.max(N, 1) do
        local s = N > 0 and x[k]:copy() or x:copy()
        local mi = 0
        for _, op in ipairs(ops) do
          if op[1] == "measure" then
            mi = mi + 1
            local m = oc:get(k, mi)
            local mc = qd.circuit(n)
            mc:measure({ op[2] })
            local M = qd.matrix(1, 1)
            M:set(1, 1, m)
            s = mc:run(s, nil, { outcomes = M })
          else
            s[op[1]](s, table.unpack(op[2]))
          end
        end
        members[k] = s
      end
      local md = 0
      if N > 0 then
        for k = 1, N do md = math.max(md, maxdiff_states(out[k], members[k])) end
      else
        md = maxdiff_states(out, members[1])
      end
      T.ok(md < 1e-13, string.format("fused run = gate by gate (n=%d, N=%d): %g", n, N, md))
      if N == 0 and n <= 6 then
        -- unitary columns = the gate-by-gate runs on basis states
        local U = c:unitary(th)
        local mu = 0
        for j = 1, 2 ^ n do
          local bits = {}
          for b = n - 1, 0, -1 do bits[#bits + 1] = ((j - 1) >> b) & 1 end
          local s = qd.state(n, table.concat(bits))
          for _, op in ipairs(ops) do s[op[1]](s, table.unpack(op[2])) end
          for i = 1, 2 ^ n do
            local a, b = U:get(i, j)
            local u, v = s:amp(i)
            mu = math.max(mu, math.abs(a - u) + math.abs(b - v))
          end
        end
        T.ok(mu < 1e-13, string.format("fused unitary = gate by gate (n=%d): %g", n, mu))
        local y = x:copy()
        c:apply(y, th)
        T.ok(maxdiff_states(y, out) == 0, "apply = run, bitwise")
      end
    end
  end
end)

T.test("gate fusion: results identical for 1 and 2 threads", function()
  local c = qd.ansatz.ry_rz_cz(8, 4)
  c:rzz(0, 5, 0.3):crz(2, 7, 0.4):s(3):h(3):measure({ 2 }):p(1, 0.2):cz(1, 4)
  local E = qd.ensemble.haar(8, 150, qd.rng(3))
  local th = qd.rng(4):normal(0, 1, c:nparams())
  local t0 = qd.threads()
  qd.set_threads(1)
  local a, oa = c:run(E, th, { rng = qd.rng(8) })
  qd.set_threads(2)
  local b, ob = c:run(E, th, { rng = qd.rng(8) })
  qd.set_threads(t0)
  local same = true
  for k = 1, 150 do
    local x, y = a[k]:totable(), b[k]:totable()
    for i = 1, #x do same = same and x[i][1] == y[i][1] and x[i][2] == y[i][2] end
    same = same and oa:get(k, 1) == ob:get(k, 1)
  end
  T.ok(same, "bitwise identical")
end)

T.test("circuit free and to-be-closed", function()
  local c = qd.circuit(1):h(0)
  c:free()
  local ok, err = pcall(function() return c:run(qd.state(1)) end)
  T.ok(not ok and tostring(err):find("qd.Circuit has been freed", 1, true) ~= nil, "a freed circuit refuses use: " .. tostring(err))
  local held
  do
    local d <close> = qd.circuit(2):cx(0, 1)
    held = d
  end
  T.ok(not pcall(function() return held.n end), "closed at the end of its scope")
  for _, name in ipairs { "qd.Circuit", "qd.PauliSum", "qd.Channel", "qd.Schedule", "qd.State" } do
    T.ok(type(require("qd.core").metatables[name]) == "table", "core.metatables lists " .. name)
  end
end)
