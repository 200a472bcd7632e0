-- test_data.lua — qd.data against the definitions: clustered states (rebuilt in Lua from
-- the documented substreams), circle states, the correlated XX/ZZ noise ensemble (gate
-- reference and the paper's p-hat statistic), random pure/mixed targets, and the Born
-- machine distributions (bars and stripes, GHZ-like, Gaussian mixtures; bit order), with
-- the error messages.
local T = require "testlib"

local function amps(s)
  local t = {}
  for i = 1, s.dim do t[i] = { s:amp(i) } end
  return t
end

T.test("clustered states", function()
  local E = qd.data.clustered(2, 20, qd.rng(5))
  T.eq(qd.type(E), "qd.Ensemble"); T.eq(#E, 20); T.eq(E.n, 2)
  -- member k: normalise(1, eps (x + i y), ...), x, y ~ N(0,1) from substream k-1 of rng:split()
  local base = qd.rng(5):split()
  local worst = 0
  for k = 1, 20 do
    local r = base:substream(k - 1)
    local v = { { 1, 0 } }
    local nn = 1
    for j = 2, 4 do
      local x, y = r:normal(), r:normal()
      v[j] = { 0.06 * x, 0.06 * y }
      nn = nn + v[j][1] ^ 2 + v[j][2] ^ 2
    end
    local a = amps(E[k])
    for j = 1, 4 do
      worst = math.max(worst, math.abs(a[j][1] - v[j][1] / math.sqrt(nn)), math.abs(a[j][2] - v[j][2] / math.sqrt(nn)))
    end
  end
  T.ok(worst < 1e-15, "clustered = definition (eps = 0.06 for n = 2): " .. worst)
  local E1 = qd.data.clustered(1, 2000, qd.rng(1))
  local f0 = E1:fidelities(qd.state(1)):mean()
  -- E|c|^2 = 2 per amplitude: F0 = E 1/(1 + eps^2 |c|^2) ~ 1 - 2 eps^2 = 0.9872 (eps = 0.08)
  T.near(f0, 0.9875, 0.003, "n = 1 default eps 0.08: mean F0")
  local Ee = qd.data.clustered(1, 10, qd.rng(1), { eps = 0 })
  T.eq(Ee[7]:amp(1), 1, "eps = 0 gives |0>")
  local a = qd.data.clustered(3, 5, qd.rng(2))
  local b = qd.data.clustered(3, 50, qd.rng(2))
  T.eq(a[5]:amp(3), b[5]:amp(3), "member k does not depend on N")
end)

T.test("circle states", function()
  local E, phi = qd.data.circle(50, qd.rng(3))
  T.eq(#E, 50); T.eq(E.n, 1); T.eq(qd.type(phi), "qd.Vector"); T.eq(#phi, 50)
  local ok = true
  for k = 1, 50 do
    local a0, b0 = E[k]:amp(1)
    local a1, b1 = E[k]:amp(2)
    ok = ok and a0 == math.cos(phi[k]) and a1 == math.sin(phi[k]) and b0 == 0 and b1 == 0
    ok = ok and phi[k] >= 0 and phi[k] < 2 * math.pi
  end
  T.ok(ok, "cos phi |0> + sin phi |1>, phi in [0, 2 pi)")
  -- <Y> = 0 for real states, mean <Z> = E cos 2 phi ~ 0
  T.near(E:expect("Y"):mean(), 0, 1e-15)
  local E2, phi2 = qd.data.circle(4, qd.rng(1), { n = 2, range = { 0, 1 } })
  T.eq(E2.n, 2); T.eq(qd.type(phi2), "qd.Matrix")
  local c0, s0, c1, s1 = math.cos(phi2:get(1, 3)), math.sin(phi2:get(1, 3)), math.cos(phi2:get(2, 3)), math.sin(phi2:get(2, 3))
  T.near(E2[3]:amp("01"), c0 * s1, 1e-16, "product state, qubit 0 first")
  T.near(E2[3]:amp("10"), s0 * c1, 1e-16)
  T.ok(phi2:get(2, 4) < 1, "range respected")
end)

T.test("correlated XX/ZZ noise ensemble", function()
  local E, isxx, eps = qd.data.noise(30, qd.rng(8))
  T.eq(#E, 30); T.eq(E.n, 2); T.eq(#isxx, 30); T.eq(#eps, 30)
  local psi0 = qd.state.from { { math.sqrt(0.1) * math.cos(0.8), math.sqrt(0.1) * math.sin(0.8) },
                               { math.sqrt(0.55) * math.cos(1.7), math.sqrt(0.55) * math.sin(1.7) }, 0,
                               { math.sqrt(0.35) * math.cos(2.4), math.sqrt(0.35) * math.sin(2.4) } }
  local worst = 0
  for k = 1, 30 do
    local s = psi0:copy()
    if isxx[k] == 1 then s:rxx(0, 1, 2 * eps[k]) else s:rzz(0, 1, 2 * eps[k]) end
    local a, b = amps(s), amps(E[k])
    for i = 1, 4 do worst = math.max(worst, math.abs(a[i][1] - b[i][1]), math.abs(a[i][2] - b[i][2])) end
    T.ok(math.abs(eps[k]) <= math.pi / 3, "eps in range")
  end
  T.ok(worst < 1e-15, "exp(-i eps PP) = rpp(2 eps): " .. worst)
  -- the paper's estimator: p-hat = mean |<10|psi>|^2 / (0.55 * 0.2933) ~ 0.8
  local big = qd.data.noise(4000, qd.rng(9))
  local f10 = big:probs():totable()
  local m, m2 = 0, 0
  for k = 1, 4000 do
    local x = f10[3][k]
    m, m2 = m + x, m2 + x * x
  end
  m, m2 = m / 4000, m2 / 4000
  local esin2 = 0.5 - math.sin(2 * math.pi / 3) / (2 * (2 * math.pi / 3))
  T.near(esin2, 0.2933, 1e-4, "E sin^2 eps = 0.2933")
  T.near(m / (0.55 * esin2), 0.8, 5 * math.sqrt((m2 - m * m) / 4000) / (0.55 * esin2), "p-hat = 0.8")
  local zz = qd.data.noise(10, qd.rng(1), { p = 0 })
  local _, xx = qd.data.noise(10, qd.rng(1), { p = 1 })
  T.near(zz[4]:probs()[3], 0, 1e-30, "p = 0: only ZZ noise, |10> stays empty")
  T.eq(xx:sum(), 10, "p = 1: all XX")
end)

T.test("random targets", function()
  local E = qd.data.random_pure(3, 12, qd.rng(1))
  T.eq(#E, 12); T.eq(E.n, 3)
  local H = qd.ensemble.haar(3, 12, qd.rng(1))
  T.eq(E[12]:amp(5), H[12]:amp(5), "random_pure = qd.ensemble.haar")
  local r = qd.data.random_mixed(2, qd.rng(1), { rank = 1 })
  T.near(r:purity(), 1, 1e-12, "rank 1 is pure")
  local b = qd.data.random_mixed(2, qd.rng(1), { measure = "bures" })
  T.near(b:trace(), 1, 1e-13)
  local m = qd.data.random_mixed(3, qd.rng(1), { measure = "mixture", rank = 2 })
  local ev = m:eigenvalues()
  T.near(ev[6], 0, 1e-13, "mixture of rank 2"); T.ok(ev[7] > 1e-6)
  T.eq(qd.data.random_mixed(1).n, 1, "run rng")
end)

T.test("Born-machine distributions", function()
  local v, pats = qd.data.bars_and_stripes(2, 3)
  T.eq(#v, 64); T.eq(#pats, 2 ^ 2 + 2 ^ 3 - 2)
  T.near(v:sum(), 1, 1e-15)
  local set = {}
  for _, p in ipairs(pats) do set[p] = true end
  -- pixel (r, c) is qubit r*cols + c: row 0 = qubits 0..2 (the leftmost three bits)
  T.ok(set["111000"] and set["000111"] and set["100100"] and set["010010"] and set["101101"], "stripes and bars present")
  T.ok(not set["110000"], "a half row is not a pattern")
  T.near(v[tonumber("111000", 2) + 1], 1 / 10, 1e-16, "index of a bitstring = its binary value + 1")
  T.eq(v[tonumber("110000", 2) + 1], 0)
  local g = qd.data.ghz(3)
  T.eq(g[1], 0.5); T.eq(g[8], 0.5); T.eq(g[2], 0)
  local gf = qd.data.ghz(2, { flip = 0.1 })
  T.near(gf[1], 0.41, 1e-15); T.near(gf[2], 0.09, 1e-15); T.near(gf[3], 0.09, 1e-15); T.near(gf[4], 0.41, 1e-15)
  local gw = qd.data.ghz(2, { weight = 0.25 })
  T.eq(gw[1], 0.25); T.eq(gw[4], 0.75)
  local gm = qd.data.gaussian_mixture(6)
  T.near(gm:sum(), 1, 1e-14)
  local function unnorm(x) return math.exp(-(x - 128 / 7) ^ 2 / 128) + math.exp(-(x - 320 / 7) ^ 2 / 128) end
  T.near(gm[11] / gm[41], unnorm(10) / unnorm(40), 1e-12, "Liu-Wang default mixture (means 2/7, 5/7 of 2^n, sigma 2^n/8)")
  local g1 = qd.data.gaussian_mixture(4, { means = { 5 }, sigmas = { 1 } })
  T.near(g1[6] / g1[7], math.exp(0.5), 1e-12, "single Gaussian centred at x = 5")
  local g2 = qd.data.gaussian_mixture(3, { means = { 1, 6 }, sigmas = { 0.5, 0.5 }, weights = { 1, 0 } })
  T.ok(g2[2] > 0.6 and g2[7] < 1e-10, "weights")
end)

T.test("errors", function()
  T.raises(function() qd.data.clustered(0, 5) end, "bad argument #1 to 'clustered' (number of qubits 1..30 expected, got 0)")
  T.raises(function() qd.data.clustered(2, 0) end, "number of states >= 1 expected, got 0")
  T.raises(function() qd.data.clustered(2, 1.5) end, "number of states expected, got a non-integer")
  T.raises(function() qd.data.clustered(2, 5, 3) end, "bad argument #3 to 'clustered' (qd.Rng or options table expected, got number)")
  T.raises(function() qd.data.clustered(2, 5, qd.rng(1), { epsilon = 1 }) end, "unknown option 'epsilon' (known: eps)")
  T.raises(function() qd.data.clustered(2, 5, qd.rng(1), { eps = -1 }) end, "option 'eps': eps >= 0 expected, got -1")
  T.raises(function() qd.data.clustered(2, 5, qd.rng(1), { eps = "x" }) end, "option 'eps': finite number expected, got string")
  T.raises(function() qd.data.clustered(2, 5, qd.rng(1), {}, 1) end, "bad argument #5 to 'clustered' (unexpected extra argument)")
  T.raises(function() qd.data.clustered(2, 5, {}, 1) end, "bad argument #4 to 'clustered' (unexpected extra argument)")
  T.raises(function() qd.data.circle(5, qd.rng(1), { n = 0 }) end, "option 'n': number of qubits 1..30 expected, got 0")
  T.raises(function() qd.data.circle(5, qd.rng(1), { range = { 2, 1 } }) end, "option 'range': {lo, hi} with lo <= hi expected")
  T.raises(function() qd.data.noise(5, qd.rng(1), { p = 2 }) end, "option 'p': probability 0..1 expected, got 2")
  T.raises(function() qd.data.noise(5, qd.rng(1), { eps_max = -1 }) end, "option 'eps_max': eps_max >= 0 expected")
  T.raises(function() qd.data.random_pure(2, 3, 4.5) end, "bad argument #3 to 'random_pure' (qd.Rng (or an integer seed) expected, got number)")
  T.raises(function() qd.data.random_mixed(2, qd.rng(1), { measure = "x" }) end, "option 'measure': \"hs\", \"bures\" or \"mixture\" expected, got x")
  T.raises(function() qd.data.random_mixed(2, qd.rng(1), { rank = 9 }) end, "option 'rank': 1..4 expected, got 9")
  T.raises(function() qd.data.random_mixed(2, qd.rng(1), { measure = "bures", rank = 2 }) end, "option 'rank' is for the hs and mixture measures only")
  T.raises(function() qd.data.bars_and_stripes(5, 5) end, "rows * cols <= 24 expected, got 25")
  T.raises(function() qd.data.bars_and_stripes(0, 2) end, "rows 1..20 expected, got 0")
  T.raises(function() qd.data.ghz(2, { flip = 2 }) end, "option 'flip': probability 0..1 expected, got 2")
  T.raises(function() qd.data.ghz(2, 5) end, "bad argument #2 to 'ghz' (options table expected, got number)")
  T.raises(function() qd.data.ghz(30) end, "number of qubits 1..24 expected, got 30")
  T.raises(function() qd.data.gaussian_mixture(4, { means = { 1, 2 }, sigmas = { 1 } }) end, "means, sigmas and weights of equal length expected (2, 1, 2)")
  T.raises(function() qd.data.gaussian_mixture(4, { sigmas = { 0, 1 } }) end, "option 'sigmas': positive number expected at position 1")
  T.raises(function() qd.data.gaussian_mixture(4, { means = { 1 }, weights = { 0 } }) end, "a positive total weight expected")
  T.raises(function() qd.data.gaussian_mixture(4, { mean = { 1 } }) end, "unknown option 'mean'")
end)

T.test("help entries", function()
  local out = {}
  local saved = print
  print = function(...) out[#out + 1] = table.concat({ ... }, " ") end
  local ok, err = pcall(function()
    for _, mod in ipairs { "random", "schedule", "diffusion", "data" } do
      help(qd[mod])
      local names = {}
      for k in pairs(qd[mod]) do names[#names + 1] = k end
      table.sort(names)
      for _, k in ipairs(names) do help(qd[mod][k]) end
    end
    help(qd.schedule.linear { T = 2, from = 0, to = 1 })
    help("qd.Schedule:alpha_bar"); help("qd.Schedule:clip"); help("alpha_bar")
  end)
  print = saved
  T.ok(ok, tostring(err))
  local missing = 0
  for _, line in ipairs(out) do
    if line:find("no documentation", 1, true) then
      missing = missing + 1
      io.stderr:write("  " .. line .. "\n")
    end
  end
  T.eq(missing, 0, "every qd.random/schedule/diffusion/data function has a help entry")
  T.ok(#out >= 30, "help printed " .. #out .. " entries")
end)

-- unknown option keys name the key and the function and point at the caller's line, also
-- when the check is made by a helper deeper in the module
T.test("data/ansatz: unknown options at the caller's line", function()
  local cases = {
    { function() qd.data.clustered(1, 10, { epsilon = 1 }) end, "bad argument #3 to 'clustered' (unknown option 'epsilon' (known: eps))" },
    { function() qd.data.ghz(2, { weigth = 1 }) end, "bad argument #2 to 'ghz' (unknown option 'weigth'" },
    { function() qd.data.circle(4, qd.rng(1), { m = 1 }) end, "bad argument #3 to 'circle' (unknown option 'm'" },
    { function() qd.data.clustered(0, 10) end, "bad argument #1 to 'clustered' (number of qubits 1..30 expected, got 0)" },
    { function() qd.ansatz.quddpm(2, 1, { ancilla = 1 }) end, "bad argument #3 to 'quddpm' (unknown option 'ancilla' (known: ancillas))" },
    { function() qd.ansatz.hardware_efficient(2, 1, { finale = true }) end, "unknown option 'finale'" },
  }
  for i, cs in ipairs(cases) do
    local ok, err = pcall(cs[1])
    err = tostring(err)
    T.ok(not ok and err:find(cs[2], 1, true) ~= nil, string.format("case %d: %s", i, err))
    T.ok(err:find("^[^:]*test_data.lua:%d+: ") ~= nil, string.format("case %d at the caller's line: %s", i, err))
  end
end)
