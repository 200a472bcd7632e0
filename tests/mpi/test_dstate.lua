-- qd.DistState (a state vector over the ranks, QuEST's scheme) against qd.State: every gate
-- on rank and local qubits, probabilities, Z expectations, sampling, the Walsh–Hadamard
-- MMD. On one rank the same code runs with no rank qubit.
local T = require "testlib"
local qd = require "qd"
local mpi = qd.mpi
local P = mpi.size

-- the same random circuit on both: every gate of the registry, on random qubits (the rank
-- qubits 0..log2(P)-1 included), with random angles; the generator is the same on every rank
local function random_circuit(n, depth, seed, targets)
  local rng = qd.rng(seed)
  local gates = qd.gates()
  local names = {}
  for name in pairs(gates) do names[#names + 1] = name end
  table.sort(names)
  for _ = 1, depth do
    for _, name in ipairs(names) do
      local g = gates[name]
      local qs, used = {}, {}
      while #qs < g.qubits do
        local q = rng:integer(0, n - 1)
        if not used[q] then used[q] = true; qs[#qs + 1] = q end
      end
      local args = {}
      for i = 1, g.qubits do args[i] = qs[i] end
      for _ = 1, g.params do args[#args + 1] = rng:uniform(-math.pi, math.pi) end
      for _, t in ipairs(targets) do t[name](t, table.unpack(args)) end
    end
  end
end

T.test("gates equal the single-process state to 1e-12", function()
  local n = 9
  local d = mpi.dstate(n)
  local s = qd.state(n)
  T.eq(d.n, n)
  random_circuit(n, 3, 7, { d, s })
  local g = d:state()
  if mpi.rank == 0 then
    local worst = 0
    for i = 1, 2 ^ n do
      local ar, ai = g:amp(i)
      local br, bi = s:amp(i)
      worst = math.max(worst, math.abs(ar - br), math.abs(ai - bi))
    end
    T.ok(worst <= 1e-12, "max amplitude difference " .. worst)
  else
    T.eq(g, nil, "state() only on rank 0")
  end
  local p = s:probs()
  for q = 0, n - 1 do
    local want = 0
    for i = 0, 2 ^ n - 1 do
      if (i >> (n - 1 - q)) & 1 == 1 then want = want + p:get(i + 1) end
    end
    T.near(d:prob1(q), want, 1e-12, "prob1(" .. q .. ")")
  end
  local want = 0
  for i = 0, 2 ^ n - 1 do
    local par = ((i >> (n - 1)) ~ (i >> (n - 4)) ~ i) & 1
    want = want + (par == 1 and -1 or 1) * p:get(i + 1)
  end
  T.near(d:expect_z({ 0, 3, n - 1 }), want, 1e-12, "expect_z")
  local dp = d:probs()
  if mpi.rank == 0 then T.near(dp:get(5), p:get(5), 1e-12, "probs") end
  local re, im = d:inner(d)
  T.near(re, 1, 1e-12, "norm")
  T.near(im, 0, 1e-12, "norm im")
  local st = d:stats(true)
  T.ok(st.compute >= 0 and st.exchange >= 0, "timings")
  if P > 1 then T.ok(st.messages > 0 and st.bytes > 0, "exchanges counted") end
  T.eq(d:stats().messages, 0, "stats reset")
end)

T.test("sampling and the Walsh-Hadamard MMD", function()
  local n = 8
  local d = mpi.dstate(n)
  local s = qd.state(n)
  random_circuit(n, 1, 3, { d, s })
  local r = qd.rng(5)
  local k = d:sample(r)
  T.ok(k >= 0 and k < 2 ^ n, "index in range")
  T.eq(mpi.allreduce(k, "max"), mpi.allreduce(k, "min"), "the same outcome on every rank")
  -- the outcome is the one the cumulative distribution gives for the same uniform
  local u = qd.rng(5):uniform()
  local p = s:probs()
  local c, want = 0, 2 ^ n - 1
  for i = 1, 2 ^ n do
    c = c + p:get(i)
    if u < c then want = i - 1; break end
  end
  T.eq(k, want, "sample")
  local q = qd.vector(2 ^ n)
  for i = 1, 2 ^ n do q:set(i, 1 / 2 ^ n) end
  local v = d:mmd_bits(q, { sigma = { 0.5, 2 } })
  local w = qd.loss.mmd_bits(p, q, { sigma = { 0.5, 2 } })
  T.near(v, w, 1e-12, "MMD by Walsh-Hadamard")
end)

T.test("errors", function()
  local d = mpi.dstate(6)
  T.raises(function() d:h(6) end, "bad argument #1 to 'h'")
  T.raises(function() d:cx(1, 1) end, "distinct qubits")
  T.raises(function() d:rx(0, 0 / 0) end, "finite angle")
  T.raises(function() d:rx(0) end, "number expected")
  T.raises(function() d:expect_z({ 0, 9 }) end, "qubit 0..5")
  T.raises(function() d:mmd_bits(qd.vector(3), { sigma = 1 }) end, "2^n probabilities")
  T.raises(function() d:mmd_bits(qd.vector(64)) end, "sigma")
  T.raises(function() mpi.dstate(0) end, "qubit count")
  T.raises(function() mpi.dstate(2) end, "qubits expected")
  T.raises(function() mpi.dstate(50) end, "not enough memory")
  d:free()
  T.raises(function() d:h(0) end, "freed")
  d:free()
  T.ok(tostring(d):find("freed") ~= nil, "tostring of a freed state")
end)
