-- test_errors.lua — the error messages of every Lua function: wrong types, wrong argument
-- counts, out-of-range qubits, duplicate targets, mismatched sizes, bad options, freed
-- objects. Each check asserts that the message names the argument (Lua's
-- "bad argument #k to 'f'", counted without self for method calls) and says what was
-- expected and what came. Nothing here may crash: every case must raise a Lua error.
local T = require "testlib"

local function raises(fn, ...)
  local pats = { ... }
  local ok, err = pcall(fn)
  if ok then
    T.ok(false, "expected an error containing '" .. pats[1] .. "', got none")
    return
  end
  err = tostring(err)
  for _, p in ipairs(pats) do
    T.ok(err:find(p, 1, true) ~= nil, string.format("expected '%s' in '%s'", p, err))
  end
end

local s, rho, E = qd.state(2), qd.dm(2), qd.ensemble(2, 3)
local r = qd.rng(1)
local v, M = qd.vector { 1, 2 }, qd.matrix { { 1, 0 }, { 0, 1 } }

T.test("errors carry the caller's position", function()
  local ok, err = pcall(function() qd.state(0) end)
  T.ok(not ok and err:find("test_errors.lua:%d+: bad argument #1 to 'state'") ~= nil, err)
end)

T.test("qd.state, qd.state.from, qd.haar_state", function()
  raises(function() qd.state() end, "bad argument #1 to 'state'", "number of qubits expected, got no value")
  raises(function() qd.state("a") end, "bad argument #1 to 'state'", "number of qubits expected, got string")
  raises(function() qd.state(1.5) end, "number of qubits expected, got non-integer 1.5")
  raises(function() qd.state(0) end, "number of qubits >= 1 expected, got 0")
  raises(function() qd.state(-3) end, "number of qubits >= 1 expected, got -3")
  raises(function() qd.state(s) end, "number of qubits expected, got qd.State")
  raises(function() qd.state(2, "012") end, "bad argument #2 to 'state'", "bitstring of 2 characters 0/1 expected, got '012'")
  raises(function() qd.state(2, "0") end, "bitstring of 2 characters 0/1 expected, got '0'")
  raises(function() qd.state(2, {}) end, "bitstring of 2 characters 0/1 expected, got table")
  raises(function() qd.state(2, "01", 3) end, "bad argument #3 to 'state' (unexpected extra argument)")
  raises(function() qd.state.from() end, "bad argument #1 to 'from'", "table of amplitudes or qd.Vector expected, got no value")
  raises(function() qd.state.from(3) end, "table of amplitudes or qd.Vector expected, got number")
  raises(function() qd.state.from { 1, 2, 3 } end, "2^n amplitudes (n >= 1) expected, got 3")
  raises(function() qd.state.from { 1 } end, "2^n amplitudes (n >= 1) expected, got 1")
  raises(function() qd.state.from {} end, "2^n amplitudes (n >= 1) expected, got 0")
  raises(function() qd.state.from { 1, "a" } end, "number or {re, im} expected at position 2")
  raises(function() qd.state.from { { 1 }, 0 } end, "number or {re, im} expected at position 1")
  raises(function() qd.state.from { 1, 0 / 0 } end, "finite amplitudes expected (position 2)")
  raises(function() qd.state.from { 1, { 0, math.huge } } end, "finite amplitudes expected (position 2)")
  raises(function() qd.state.from(qd.matrix(2, 2)) end, "table of amplitudes or qd.Vector expected, got a 2x2 qd.Matrix")
  raises(function() qd.state.from({ 1, 0 }, 1) end, "bad argument #2 to 'from' (options table expected, got number)")
  raises(function() qd.state.from({ 1, 0 }, {}, 1) end, "bad argument #3 to 'from' (unexpected extra argument)")
  raises(function() qd.haar_state() end, "bad argument #1 to 'haar_state'", "number of qubits expected")
  raises(function() qd.haar_state(2, 5.5) end, "bad argument #2 to 'haar_state' (qd.Rng (or an integer seed) expected, got number)")
  raises(function() qd.haar_state(2, s) end, "qd.Rng (or an integer seed) expected, got qd.State")
  raises(function() qd.haar_state(2, r, 1) end, "bad argument #3 to 'haar_state' (unexpected extra argument)")
end)

-- every gate on every register type: the same argument rules
T.test("gates: qubits, angles, counts, types", function()
  local objs = { State = qd.state(3), DensityMatrix = qd.dm(3), Ensemble = qd.ensemble(3, 2) }
  local n = 0
  for kind, o in pairs(objs) do
    for name, g in pairs(qd.gates()) do
      local k, np = g.qubits, g.params
      local qs, ps = {}, {}
      for i = 1, k do qs[i] = i - 1 end
      for i = 1, np do ps[i] = 0.1 end
      -- called with method syntax (o:name(...)) so that messages count without self
      local mcall = load("local o = ...; return o:" .. name .. "(select(2, ...))")
      local function call(...) return mcall(o, ...) end
      local function args(qa, pa, extra)
        local t = {}
        for i = 1, #qa do t[#t + 1] = qa[i] end
        for i = 1, #pa do t[#t + 1] = pa[i] end
        if extra then t[#t + 1] = extra end
        return table.unpack(t, 1, #qa + #pa + (extra and 1 or 0))
      end
      local tag = kind .. ":" .. name
      -- out of range (the last qubit argument)
      local bad = { table.unpack(qs) }
      bad[k] = 3
      raises(function() call(args(bad, ps)) end, string.format("bad argument #%d to '%s' (qubit index 0..2 expected, got 3)", k, name))
      bad[k] = -1
      raises(function() call(args(bad, ps)) end, "qubit index 0..2 expected, got -1")
      -- wrong type / non-integer qubit
      bad[k] = "a"
      raises(function() call(args(bad, ps)) end, string.format("bad argument #%d to '%s' (qubit index expected, got string)", k, name))
      bad[k] = 0.5
      raises(function() call(args(bad, ps)) end, "qubit index expected, got non-integer 0.5")
      -- missing qubit
      raises(function() call() end, string.format("bad argument #1 to '%s' (qubit index expected, got no value)", name))
      -- duplicate targets
      if k > 1 then
        local dup = { table.unpack(qs) }
        dup[k] = dup[1]
        raises(function() call(args(dup, ps)) end, string.format("bad argument #%d to '%s' (distinct qubits expected, got qubit 0 twice)", k, name))
      end
      -- angles: missing, wrong type, not finite
      if np > 0 then
        local few = { table.unpack(ps) }
        few[np] = nil
        raises(function() call(args(qs, few)) end,
               string.format("bad argument #%d to '%s' ('%s' takes %d qubit", k + np, name, name, k), "angle expected")
        local wrong = { table.unpack(ps) }
        wrong[1] = "x"
        raises(function() call(args(qs, wrong)) end, string.format("bad argument #%d to '%s'", k + 1, name), "expected, got string")
        wrong[1] = 0 / 0
        raises(function() call(args(qs, wrong)) end, "finite angle expected, got nan or inf")
        wrong[1] = math.huge
        raises(function() call(args(qs, wrong)) end, "finite angle expected, got nan or inf")
        if kind ~= "Ensemble" then
          wrong[1] = { 0.1, 0.2 }
          raises(function() call(args(qs, wrong)) end, "angle (number) expected, got table")
        end
      end
      -- too many arguments
      raises(function() call(args(qs, ps, 0)) end, string.format("bad argument #%d to '%s' (unexpected extra argument)", k + np + 1, name))
      -- wrong self
      raises(function() o[name](5, args(qs, ps)) end, "qd.State, qd.DensityMatrix or qd.Ensemble expected, got number")
      n = n + 1
    end
  end
  local ng = 0
  for _ in pairs(qd.gates()) do ng = ng + 1 end
  T.ok(ng >= 30 and n == 3 * ng, "every gate on 3 types: " .. n)
  -- too few qubits in the register
  raises(function() qd.state(2):ccx(0, 1, 1) end, "'ccx' acts on 3 qubits, the qd.State has 2")
  raises(function() qd.dm(1):cx(0, 0) end, "'cx' acts on 2 qubits, the qd.DensityMatrix has 1")
  raises(function() qd.ensemble(1, 2):swap(0, 1) end, "'swap' acts on 2 qubits, the qd.Ensemble has 1")
  -- per-member angles on ensembles: count, type, finiteness
  raises(function() E:rx(0, { 1, 2 }) end, "bad argument #2 to 'rx' (number or table of 3 angles expected, got 2 angles)")
  raises(function() E:rx(0, qd.vector { 1, 2 }) end, "number or real qd.Vector of 3 angles expected, got array of 2")
  raises(function() E:rx(0, qd.vector { { 1, 1 }, 2, 3 }) end, "number or real qd.Vector of 3 angles expected, got complex array of 3")
  raises(function() E:rx(0, qd.matrix(3, 2)) end, "3 angles expected, got array of 6")
  raises(function() E:rx(0, { 1, "a", 3 }) end, "angle at position 2 is not a number")
  raises(function() E:rx(0, { 1, 0 / 0, 3 }) end, "bad argument #2 to 'rx' (finite angle expected, got nan or inf)")
  raises(function() E:rzz(0, 1, qd.vector { 1, 2 }) end, "bad argument #3 to 'rzz'", "3 angles expected")
  raises(function() E:u(0, { 1, 2, 3 }, 1) end, "bad argument #4 to 'u' ('u' takes 1 qubit and 3 angles; angle expected)")
  raises(function() E:u(0, { 1, 2, 3 }, "a", 1) end, "bad argument #3 to 'u' (angle (number or qd.Vector of angles) expected, got string)")
  raises(function() rho:rx(0, { 1 }) end, "bad argument #2 to 'rx' (angle (number) expected, got table)")
  raises(function() s:rx(0, qd.vector { 1 }) end, "bad argument #2 to 'rx' (angle (number) expected, got userdata)")
end)

T.test("unitary", function()
  for _, o in ipairs { s, rho, E } do
    raises(function() o:unitary() end, "bad argument #2 to 'unitary' (qubit list (table of integers) expected, got no value)")
    raises(function() o:unitary(M) end, "qubit list (table of integers) expected, got no value")
    raises(function() o:unitary(M, "a") end, "bad argument #2 to 'unitary' (qubit list (table of integers) expected, got string)")
    raises(function() o:unitary(M, { 0, 1 }) end, "bad argument #1 to 'unitary' (4x4 matrix for 2 qubits expected, got 2x2)")
    raises(function() o:unitary({ { 1, 1 }, { 0, 1 } }, { 0 }) end, "bad argument #1 to 'unitary' (unitary matrix expected (max |U^dagger U - I| = 1")
    raises(function() o:unitary({ { 0 / 0, 0 }, { 0, 1 } }, { 0 }) end, "unitary matrix expected (max |U^dagger U - I| = inf)")
    raises(function() o:unitary(qd.matrix(4, 4), { 0, 0 }) end, "bad argument #2 to 'unitary' (distinct qubits expected, got qubit 0 twice)")
    raises(function() o:unitary(M, { 5 }) end, "bad argument #2 to 'unitary' (qubit indices 0..1 expected, got 5 at position 1)")
    raises(function() o:unitary(M, { -1 }) end, "qubit indices 0..1 expected, got -1 at position 1")
    raises(function() o:unitary(M, { 0.5 }) end, "qubit indices 0..1 expected, got a non-integer at position 1")
    raises(function() o:unitary(M, 2) end, "bad argument #2 to 'unitary' (qubit index 0..1 expected, got 2)")
    raises(function() o:unitary(M, {}) end, "bad argument #2 to 'unitary' (1..2 qubits expected, got 0)")
    raises(function() o:unitary(M, { 0, 1, 0 }) end, "1..2 qubits expected, got 3")
    raises(function() o:unitary("x", { 0 }) end, "bad argument #1 to 'unitary' (matrix (qd.Matrix or table of rows) expected, got string)")
    raises(function() o:unitary(qd.matrix(2, 3), { 0 }) end, "square matrix expected, got 2x3")
    raises(function() o:unitary({ { 1, 2 } }, { 0 }) end, "square matrix expected (row 1 of 1 does not have 1 entries)")
    raises(function() o:unitary({ { 1, 0 }, { 0 } }, { 0 }) end, "square matrix expected (row 2 of 2 does not have 2 entries)")
    raises(function() o:unitary({}, { 0 }) end, "non-empty matrix expected")
    raises(function() o:unitary({ { 1, "a" }, { 0, 1 } }, { 0 }) end, "number or {re, im} expected at [1][2]")
    raises(function() o:unitary(M, { 0 }, 1) end, "bad argument #3 to 'unitary' (unexpected extra argument)")
  end
end)

T.test("State methods", function()
  raises(function() s:amp(0) end, "bad argument #1 to 'amp' (index 1..4 expected, got 0)")
  raises(function() s:amp(5) end, "index 1..4 expected, got 5")
  raises(function() s:amp("012") end, "bad argument #1 to 'amp' (bitstring of 2 characters 0/1 expected)")
  raises(function() s:amp() end, "bad argument #1 to 'amp' (number expected, got no value)")
  raises(function() s:amp(1.5) end, "bad argument #1 to 'amp' (number has no integer representation)")
  raises(function() s:amp(1, 2) end, "bad argument #2 to 'amp' (unexpected extra argument)")
  raises(function() s.amp(rho, 1) end, "bad argument #1 to 'amp' (qd.State expected, got qd.DensityMatrix)")
  raises(function() s:inner() end, "bad argument #1 to 'inner' (qd.State expected, got no value)")
  raises(function() s:inner(1) end, "qd.State expected, got number")
  raises(function() s:inner(rho) end, "qd.State expected, got qd.DensityMatrix")
  raises(function() s:inner(qd.state(3)) end, "bad argument #1 to 'inner' (2-qubit qd.State expected, got 3 qubits)")
  raises(function() s:inner(s, s) end, "bad argument #2 to 'inner' (unexpected extra argument)")
  for _, m in ipairs { "norm", "normalize", "copy", "totable", "vector", "dm" } do
    raises(function() s[m](s, 1) end, "bad argument #2 to ", "(unexpected extra argument)")
    raises(function() s[m](E) end, "bad argument #1 to ", "(qd.State expected, got qd.Ensemble)")
  end
  raises(function() qd.state.from({ 0, 0 }, { normalize = false }):normalize() end, "cannot normalize a state of norm 0")
  -- schmidt_rank
  raises(function() s:schmidt_rank() end, "bad argument #1 to 'schmidt_rank' (qubit list (table of integers) expected, got no value)")
  raises(function() s:schmidt_rank({ 2 }) end, "qubit indices 0..1 expected, got 2 at position 1")
  raises(function() s:schmidt_rank({ 0, 0 }) end, "distinct qubits expected, got qubit 0 twice")
  raises(function() s:schmidt_rank({ 0 }, "a") end, "bad argument #2 to 'schmidt_rank' (number expected, got string)")
  raises(function() s:schmidt_rank({ 0 }, -1) end, "bad argument #2 to 'schmidt_rank' (finite tolerance >= 0 expected)")
  raises(function() s:schmidt_rank({ 0 }, 0 / 0) end, "finite tolerance >= 0 expected")
  raises(function() s:schmidt_rank({ 0 }, 1e-10, 1) end, "bad argument #3 to 'schmidt_rank' (unexpected extra argument)")
  -- project
  raises(function() s:project() end, "bad argument #1 to 'project' (qubit list (table of integers) expected, got no value)")
  raises(function() s:project(0) end, "bad argument #2 to 'project' (outcome bitstring of 1 characters expected)")
  raises(function() s:project({ 0, 1 }, "0") end, "outcome bitstring of 2 characters expected")
  raises(function() s:project(0, "2") end, "outcome bitstring of 1 characters expected")
  raises(function() s:project(0, "1") end, "outcome 1 has probability 0")
  raises(function() s:project(5, "1") end, "bad argument #1 to 'project' (qubit index 0..1 expected, got 5)")
  raises(function() s:project({ 1, 1 }, "11") end, "distinct qubits expected, got qubit 1 twice")
  raises(function() s:project(0, "0", { x = 1 }) end, "bad argument #3 to 'project' (unknown option 'x' (known: keep))")
  raises(function() s:project(0, "0", { keep = "no" }) end, "option 'keep': boolean expected, got string")
  raises(function() s:project(0, "0", 5) end, "bad argument #3 to 'project' (options table expected, got number)")
  raises(function() s:project({ 0, 1 }, "00", { keep = false }) end, "keep=false needs at least one unmeasured qubit")
  raises(function() s:project(0, "0", {}, 1) end, "bad argument #4 to 'project' (unexpected extra argument)")
  -- embed
  raises(function() s:embed() end, "bad argument #1 to 'embed' (number expected, got no value)")
  raises(function() s:embed(-1) end, "bad argument #1 to 'embed' (number of ancillas 0..58 expected)")
  raises(function() s:embed(59) end, "number of ancillas 0..58 expected")
  raises(function() s:embed(math.mininteger) end, "number of ancillas 0..58 expected")
  raises(function() s:embed("a") end, "number expected, got string")
  raises(function() s:embed(1.5) end, "number has no integer representation")
  raises(function() s:embed(1, 2) end, "bad argument #2 to 'embed' (unexpected extra argument)")
  raises(function() s.embed(rho, 1) end, "embed is for qd.State and qd.Ensemble")
  T.eq(rho.embed, nil, "no embed method on a DensityMatrix")
  T.eq(rho.project, nil); T.eq(rho.schmidt_rank, nil); T.eq(E.sample, nil); T.eq(E.ptrace, nil)
end)

T.test("probs, sample, measure, expect (all types)", function()
  for _, o in ipairs { s, rho, E } do
    raises(function() o:probs({ 5 }) end, "bad argument #1 to 'probs' (qubit indices 0..1 expected, got 5 at position 1)")
    raises(function() o:probs({ 0, 0 }) end, "distinct qubits expected, got qubit 0 twice")
    raises(function() o:probs("a") end, "qubit list (table of integers) expected, got string")
    raises(function() o:probs({}) end, "1..2 qubits expected, got 0")
    raises(function() o:probs({ 0.5 }) end, "got a non-integer at position 1")
    raises(function() o:probs(7) end, "qubit index 0..1 expected, got 7")
    raises(function() o:probs({ 0 }, 1) end, "bad argument #2 to 'probs' (unexpected extra argument)")
    raises(function() o:measure() end, "bad argument #1 to 'measure' (qubit list (table of integers) expected, got no value)")
    raises(function() o:measure({ 2 }) end, "qubit indices 0..1 expected, got 2 at position 1")
    raises(function() o:measure({ 0, 0 }) end, "distinct qubits expected, got qubit 0 twice")
    raises(function() o:measure(0, 5.5) end, "bad argument #2 to 'measure' (qd.Rng (or an integer seed) expected, got number)")
    raises(function() o:measure(0, s) end, "qd.Rng (or an integer seed) expected, got qd.State")
    raises(function() o:measure(0, r, { keep = 1 }) end, "bad argument #3 to 'measure' (option 'keep': boolean expected, got number)")
    raises(function() o:measure(0, r, { kep = true }) end, "bad argument #3 to 'measure' (unknown option 'kep' (known: keep))")
    raises(function() o:measure(0, r, 5) end, "bad argument #3 to 'measure' (options table expected, got number)")
    raises(function() o:measure(0, { keep = true }, 1) end, "bad argument #3 to 'measure' (unexpected extra argument)")
    raises(function() o:measure(0, r, {}, 1) end, "bad argument #4 to 'measure' (unexpected extra argument)")
    raises(function() o:measure({ 0, 1 }, r, { keep = false }) end, "bad argument #1 to 'measure' (keep=false needs at least one unmeasured qubit)")
    raises(function() o:expect() end, "bad argument #1 to 'expect' (string expected, got no value)")
    raises(function() o:expect("XQ") end, "bad argument #1 to 'expect' (Pauli string of I, X, Y, Z expected, got 'XQ')")
    raises(function() o:expect("xx") end, "Pauli string of I, X, Y, Z expected, got 'xx'")
    raises(function() o:expect("X") end, "Pauli string of length 2 (one letter per qubit) expected, got length 1; or give the qubits")
    raises(function() o:expect("") end, "got length 0")
    raises(function() o:expect("XX", { 0 }) end, "bad argument #2 to 'expect' (2 qubits for a 2-letter Pauli string expected, got 1)")
    raises(function() o:expect("XX", { 0, 0 }) end, "distinct qubits expected, got qubit 0 twice")
    raises(function() o:expect("ZZ", { 0, 5 }) end, "qubit indices 0..1 expected, got 5 at position 2")
    raises(function() o:expect("XX", { 0, 1 }, 1) end, "bad argument #3 to 'expect' (unexpected extra argument)")
  end
  raises(function() qd.state.from({ 0, 0 }, { normalize = false }):measure(0, r) end, "cannot measure a state of zero norm")
  raises(function() qd.ensemble.from({ qd.state.from({ 0, 0 }, { normalize = false }) }, { normalize = false }):measure(0, r) end, "cannot measure a state of zero norm")
  for _, o in ipairs { s, rho } do
    raises(function() o:sample() end, "bad argument #1 to 'sample' (number of shots expected, got no value)")
    raises(function() o:sample(0) end, "number of shots >= 1 expected, got 0")
    raises(function() o:sample(-5) end, "number of shots >= 1 expected, got -5")
    raises(function() o:sample(2.5) end, "number of shots expected, got non-integer 2.5")
    raises(function() o:sample("a") end, "number of shots expected, got string")
    raises(function() o:sample(10, 5.5) end, "bad argument #2 to 'sample' (qd.Rng (or an integer seed) expected, got number)")
    raises(function() o:sample(10, { foo = 1 }) end, "bad argument #2 to 'sample' (unknown option 'foo' (known: qubits))")
    raises(function() o:sample(10, r, { qubits = { 3 } }) end, "qubit indices 0..1 expected, got 3 at position 1")
    raises(function() o:sample(10, r, { qubits = { 1, 1 } }) end, "distinct qubits expected, got qubit 1 twice")
    raises(function() o:sample(10, r, { qubits = "a" }) end, "qubit list (table of integers) expected, got string")
    raises(function() o:sample(10, r, 5) end, "bad argument #3 to 'sample' (options table expected, got number)")
    raises(function() o:sample(10, r, {}, 1) end, "bad argument #4 to 'sample' (unexpected extra argument)")
    raises(function() o:sample(10, {}, 1) end, "bad argument #3 to 'sample' (unexpected extra argument)")
  end
  raises(function() s.sample(E, 10) end, "sample is defined for qd.State and qd.DensityMatrix")
end)

T.test("kron, ptrace, quantities", function()
  raises(function() qd.kron(s) end, "bad argument #2 to 'kron' (qd.State, qd.DensityMatrix or qd.Ensemble expected, got no value)")
  raises(function() qd.kron(s, 1) end, "got number")
  raises(function() qd.kron(1, s) end, "bad argument #1 to 'kron'")
  raises(function() qd.kron(s, E) end, "kron is for qd.State and qd.DensityMatrix (use E:embed for ancillas)")
  raises(function() qd.kron(s, s, s) end, "bad argument #3 to 'kron' (unexpected extra argument)")
  raises(function() s:kron() end, "bad argument #1 to 'kron'")
  for _, o in ipairs { s, rho } do
    raises(function() o:ptrace() end, "bad argument #1 to 'ptrace' (qubit list (table of integers) expected, got no value)")
    raises(function() o:ptrace({ 3 }) end, "qubit indices 0..1 expected, got 3 at position 1")
    raises(function() o:ptrace({ 0, 0 }) end, "distinct qubits expected, got qubit 0 twice")
    raises(function() o:ptrace({ 0 }, 1) end, "bad argument #2 to 'ptrace' (unexpected extra argument)")
  end
  raises(function() s.ptrace(E, { 0 }) end, "ptrace is for qd.State and qd.DensityMatrix")
  for _, f in ipairs { "fidelity", "trace_distance" } do
    raises(function() qd[f](s) end, "bad argument #2 to ", "(qd.State, qd.DensityMatrix or qd.Ensemble expected, got no value)")
    raises(function() qd[f](s, 1) end, "got number")
    raises(function() qd[f](s, qd.state(3)) end, "bad argument #2 to ", "(2-qubit state expected, got 3 qubits)")
    raises(function() qd[f](rho, qd.dm(1)) end, "2-qubit state expected, got 1 qubits")
    raises(function() qd[f](s, E) end, "bad argument #2 to ", "(qd.State or qd.DensityMatrix expected, got qd.Ensemble)")
    raises(function() qd[f](E, s) end, "bad argument #1 to ", "(qd.State or qd.DensityMatrix expected, got qd.Ensemble)")
    raises(function() qd[f](s, s, s) end, "bad argument #3 to ", "(unexpected extra argument)")
    raises(function() s[f](s) end, "bad argument #2 to ")
  end
  for _, f in ipairs { "purity", "entropy" } do
    raises(function() qd[f]() end, "bad argument #1 to ", "(qd.State, qd.DensityMatrix or qd.Ensemble expected, got no value)")
    raises(function() qd[f](1) end, "got number")
    raises(function() qd[f](E) end, "bad argument #1 to ", "(qd.State or qd.DensityMatrix expected, got qd.Ensemble)")
    raises(function() qd[f](s, s) end, "bad argument #2 to ", "(unexpected extra argument)")
  end
end)

T.test("qd.dm, qd.maximally_mixed, DensityMatrix methods", function()
  raises(function() qd.dm() end, "bad argument #1 to 'dm' (number of qubits expected, got no value)")
  raises(function() qd.dm("a") end, "number of qubits expected, got string")
  raises(function() qd.dm(0) end, "number of qubits >= 1 expected, got 0")
  raises(function() qd.dm(2, 1) end, "bad argument #2 to 'dm' (unexpected extra argument)")
  raises(function() qd.dm(E) end, "number of qubits expected, got qd.Ensemble")
  raises(function() qd.dm(rho) end, "got qd.DensityMatrix")
  raises(function() qd.dm { { 0.5, 1 }, { 0, 0.5 } } end, "bad argument #1 to 'dm' (density matrix expected (Hermitian, trace 1): max |rho - rho^dagger| = 1")
  raises(function() qd.dm { { 1, 0 }, { 0, 1 } } end, "trace = 2")
  raises(function() qd.dm { { 1.5, 0 }, { 0, -0.5 } } end, "positive semidefinite matrix expected (smallest eigenvalue -0.5")
  raises(function() qd.dm { { 1, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 } } end, "2^n x 2^n matrix expected, got 3x3")
  raises(function() qd.dm { { 1 } } end, "2^n x 2^n matrix expected, got 1x1")
  raises(function() qd.dm(qd.matrix(2, 3)) end, "square matrix expected, got 2x3")
  raises(function() qd.dm { { 0 / 0, 0 }, { 0, 1 } } end, "density matrix expected")
  raises(function() qd.dm { { 1, 0 }, { 0, "x" } } end, "number or {re, im} expected at [2][2]")
  raises(function() qd.maximally_mixed() end, "bad argument #1 to 'maximally_mixed' (number of qubits expected, got no value)")
  raises(function() qd.maximally_mixed(0) end, "number of qubits >= 1 expected, got 0")
  raises(function() qd.maximally_mixed(1, 2) end, "bad argument #2 to 'maximally_mixed' (unexpected extra argument)")
  raises(function() rho:get(0, 1) end, "bad argument #1 to 'get' (row 1..4 expected, got 0)")
  raises(function() rho:get(1, 5) end, "bad argument #2 to 'get' (column 1..4 expected, got 5)")
  raises(function() rho:get(1) end, "bad argument #2 to 'get' (number expected, got no value)")
  raises(function() rho:get(1, 1, 1) end, "bad argument #3 to 'get' (unexpected extra argument)")
  raises(function() rho.get(s, 1, 1) end, "bad argument #1 to 'get' (qd.DensityMatrix expected, got qd.State)")
  for _, m in ipairs { "trace", "matrix", "eigenvalues", "copy" } do
    raises(function() rho[m](rho, 1) end, "bad argument #2 to ", "(unexpected extra argument)")
    raises(function() rho[m](s) end, "qd.DensityMatrix expected, got qd.State")
  end
end)

T.test("Ensemble constructors and methods", function()
  raises(function() qd.ensemble() end, "bad argument #1 to 'ensemble' (number of qubits expected, got no value)")
  raises(function() qd.ensemble(2) end, "bad argument #2 to 'ensemble' (number of states expected, got no value)")
  raises(function() qd.ensemble(2, 0) end, "number of states >= 1 expected, got 0")
  raises(function() qd.ensemble(2, 1.5) end, "number of states expected, got non-integer 1.5")
  raises(function() qd.ensemble(2, "a") end, "number of states expected, got string")
  raises(function() qd.ensemble(0, 2) end, "bad argument #1 to 'ensemble' (number of qubits >= 1 expected, got 0)")
  raises(function() qd.ensemble(2, 3, 4) end, "bad argument #3 to 'ensemble' (unexpected extra argument)")
  raises(function() qd.ensemble.haar(2) end, "bad argument #2 to 'haar' (number of states expected, got no value)")
  raises(function() qd.ensemble.haar(2, 3, 5.5) end, "bad argument #3 to 'haar' (qd.Rng (or an integer seed) expected, got number)")
  raises(function() qd.ensemble.haar(2, 3, r, 1) end, "bad argument #4 to 'haar' (unexpected extra argument)")
  raises(function() qd.ensemble.from() end, "bad argument #1 to 'from' (table expected, got no value)")
  raises(function() qd.ensemble.from "a" end, "table expected, got string")
  raises(function() qd.ensemble.from {} end, "non-empty table of qd.State expected")
  raises(function() qd.ensemble.from { s, 1 } end, "qd.State expected at position 2, got number")
  raises(function() qd.ensemble.from { s, rho } end, "qd.State expected at position 2, got qd.DensityMatrix")
  raises(function() qd.ensemble.from { s, qd.state(3) } end, "states of equal size expected (position 2 has 3 qubits, position 1 has 2)")
  raises(function() qd.ensemble.from(qd.matrix(2, 3)) end, "N x 2^n matrix (one member per row) expected, got 2x3")
  raises(function() qd.ensemble.from(qd.vector { 1, 0 }) end, "got 2x1")
  raises(function() qd.ensemble.from({ s }, 1) end, "bad argument #2 to 'from' (options table expected, got number)")
  raises(function() qd.ensemble.from({ s }, {}, 1) end, "bad argument #3 to 'from' (unexpected extra argument)")
  raises(function() E:get(0) end, "bad argument #1 to 'get' (member index 1..3 expected, got 0)")
  raises(function() E:get(4) end, "member index 1..3 expected, got 4")
  raises(function() E:get() end, "bad argument #1 to 'get' (number expected, got no value)")
  raises(function() E:get(1, 2) end, "bad argument #2 to 'get' (unexpected extra argument)")
  raises(function() return E[4] end, "ensemble member 1..3 expected, got 4")
  raises(function() E:set(1) end, "bad argument #2 to 'set' (qd.State expected, got no value)")
  raises(function() E:set(4, s) end, "bad argument #1 to 'set' (member index 1..3 expected, got 4)")
  raises(function() E:set(1, qd.state(3)) end, "bad argument #2 to 'set' (2-qubit qd.State expected, got 3 qubits)")
  raises(function() E:set(1, rho) end, "qd.State expected, got qd.DensityMatrix")
  raises(function() E:set(1, s, 1) end, "bad argument #3 to 'set' (unexpected extra argument)")
  raises(function() E:overlaps(s) end, "bad argument #1 to 'overlaps' (qd.Ensemble expected, got qd.State)")
  raises(function() E:overlaps(qd.ensemble(3, 2)) end, "ensemble of 2-qubit states expected, got 3 qubits")
  raises(function() E:overlaps(E, 1) end, "bad argument #2 to 'overlaps' (unexpected extra argument)")
  raises(function() E:fidelities() end, "bad argument #1 to 'fidelities' (qd.State expected, got no value)")
  raises(function() E:fidelities(qd.state(3)) end, "2-qubit qd.State expected, got 3 qubits")
  raises(function() E:fidelities(E) end, "qd.State expected, got qd.Ensemble")
  raises(function() E:embed(-1) end, "bad argument #1 to 'embed' (number of ancillas 0..58 expected)")
  for _, m in ipairs { "mean_dm", "norms", "states", "copy" } do
    raises(function() E[m](E, 1) end, "bad argument #2 to ", "(unexpected extra argument)")
    raises(function() E[m](s) end, "qd.Ensemble expected, got qd.State")
  end
end)

T.test("Vector and Matrix", function()
  raises(function() qd.vector() end, "bad argument #1 to 'vector' (length expected, got no value)")
  raises(function() qd.vector(0) end, "length >= 1 expected, got 0")
  raises(function() qd.vector("a") end, "length expected, got string")
  raises(function() qd.vector(2, { cplx = true }) end, "bad argument #2 to 'vector' (unknown option 'cplx' (known: complex))")
  raises(function() qd.vector(2, { complex = 1 }) end, "option 'complex': boolean expected, got number")
  raises(function() qd.vector(2, 5) end, "options table expected, got number")
  raises(function() qd.vector { 1, "a" } end, "number or {re, im} expected at position 2, got string")
  raises(function() qd.vector { 1, { 1 } } end, "number or {re, im} expected at position 2")
  raises(function() qd.vector({ 1 }, 2) end, "bad argument #2 to 'vector' (unexpected extra argument)")
  raises(function() qd.vector(2, {}, 3) end, "bad argument #3 to 'vector' (unexpected extra argument)")
  raises(function() qd.matrix() end, "bad argument #1 to 'matrix' (rows expected, got no value)")
  raises(function() qd.matrix(2) end, "bad argument #2 to 'matrix' (cols expected, got no value)")
  raises(function() qd.matrix(2, 0) end, "cols >= 1 expected, got 0")
  raises(function() qd.matrix {} end, "non-empty table of rows expected")
  raises(function() qd.matrix { 1 } end, "row 1: table or qd.Vector expected")
  raises(function() qd.matrix { { 1 }, { 1, 2 } } end, "rows of equal length expected (row 2 has 2 entries, row 1 has 1)")
  raises(function() qd.matrix { { "a" } } end, "number or {re, im} expected at [1][1]")
  raises(function() qd.matrix(2, 2, { x = 1 }) end, "bad argument #3 to 'matrix' (unknown option 'x' (known: complex))")
  raises(function() v:get(0) end, "bad argument #1 to 'get' (index 1..2 expected, got 0)")
  raises(function() v:get(3) end, "index 1..2 expected, got 3")
  raises(function() v:get() end, "number expected, got no value")
  raises(function() v:get(1, 1) end, "bad argument #2 to 'get' (unexpected extra argument)")
  raises(function() v:set(1, "a") end, "bad argument #2 to 'set' (number or {re, im} expected)")
  raises(function() v:set(1, { 1, 1 }) end, "real value expected for a real array")
  raises(function() v:set(5, 1) end, "bad argument #1 to 'set' (index 1..2 expected, got 5)")
  raises(function() v:set(1, 1, 1) end, "bad argument #3 to 'set' (unexpected extra argument)")
  raises(function() v[3] = 1 end, "index 1..2 expected, got 3")
  raises(function() v[1] = "a" end, "real value expected")
  raises(function() v[1] = { 1, 2 } end, "real value expected")
  raises(function() v.x = 1 end, "qd.Vector entries are set with v[i] = x")
  raises(function() v[1.5] = 1 end, "qd.Vector entries are set with v[i] = x (i an integer index)")
  raises(function() return E[2.5] end, "ensemble member 1..3 expected, got non-integer 2.5")
  raises(function() M[1] = 1 end, "qd.Matrix entries are set with M:set(i, j, x)")
  raises(function() M:get(3, 1) end, "bad argument #1 to 'get' (row 1..2 expected, got 3)")
  raises(function() M:get(1, 3) end, "bad argument #2 to 'get' (column 1..2 expected, got 3)")
  raises(function() M:get(1) end, "bad argument #2 to 'get' (number expected, got no value)")
  raises(function() M:get(1, 1, 1) end, "bad argument #3 to 'get' (unexpected extra argument)")
  raises(function() M:set(1, 1) end, "bad argument #3 to 'set' (number or {re, im} expected)")
  raises(function() M:set(1, 1, { 0, 1 }) end, "real value expected for a real array")
  for _, m in ipairs { "totable", "shape", "is_complex", "sum", "mean", "copy", "free" } do
    raises(function() v[m](v, 1) end, "bad argument #2 to ", "(unexpected extra argument)")
  end
  raises(function() v.sum(s) end, "bad argument #1 to 'sum' (qd.Vector or qd.Matrix expected, got qd.State)")
  raises(function() v.get(5, 1) end, "qd.Vector or qd.Matrix expected, got number")
end)

T.test("Rng and module functions", function()
  raises(function() qd.rng() end, "bad argument #1 to 'rng' (non-negative integer seed expected, got no value)")
  raises(function() qd.rng(-1) end, "non-negative integer seed expected, got -1")
  raises(function() qd.rng(1.5) end, "non-negative integer seed expected, got a non-integer")
  raises(function() qd.rng("a") end, "non-negative integer seed expected, got string")
  raises(function() qd.rng(1, 2) end, "bad argument #2 to 'rng' (unexpected extra argument)")
  raises(function() r:uniform(1, 0) end, "bad argument #2 to 'uniform' (finite bounds with a <= b expected)")
  raises(function() r:uniform(0, math.huge) end, "finite bounds with a <= b expected")
  raises(function() r:uniform("a") end, "bad argument #1 to 'uniform' (number expected, got string)")
  raises(function() r:uniform(0, 1, 0) end, "bad argument #3 to 'uniform' (count >= 1 expected, got 0)")
  raises(function() r:uniform(0, 1, 1.5) end, "count expected, got non-integer 1.5")
  raises(function() r:uniform(0, 1, 2, 3) end, "bad argument #4 to 'uniform' (unexpected extra argument)")
  raises(function() r:normal(0, -1) end, "bad argument #2 to 'normal' (finite sigma >= 0 expected)")
  raises(function() r:normal(0 / 0, 1) end, "finite sigma >= 0 expected")
  raises(function() r:normal(0, 1, 0) end, "count >= 1 expected, got 0")
  raises(function() r:normal("a") end, "bad argument #1 to 'normal' (number expected, got string)")
  raises(function() r:integer(2, 1) end, "bad argument #2 to 'integer' (upper bound >= lower bound expected)")
  raises(function() r:integer(1) end, "bad argument #2 to 'integer' (number expected, got no value)")
  raises(function() r:integer(1.5, 2) end, "number has no integer representation")
  raises(function() r:integer(1, 2, 3) end, "bad argument #3 to 'integer' (unexpected extra argument)")
  raises(function() r:split(1) end, "bad argument #1 to 'split' (unexpected extra argument)")
  raises(function() r:substream() end, "bad argument #1 to 'substream' (number expected, got no value)")
  raises(function() r:substream(-1) end, "substream index >= 0 expected, got -1")
  raises(function() r:substream(1, 2) end, "bad argument #2 to 'substream' (unexpected extra argument)")
  raises(function() r:seed(1) end, "bad argument #1 to 'seed' (unexpected extra argument)")
  raises(function() r.uniform(s) end, "bad argument #1 to 'uniform' (qd.Rng expected, got qd.State)")
  raises(function() qd.run_rng(1) end, "bad argument #1 to 'run_rng' (unexpected extra argument)")
  raises(function() qd.set_seed() end, "bad argument #1 to 'set_seed' (non-negative integer seed expected, got no value)")
  raises(function() qd.set_seed(-1) end, "got -1")
  raises(function() qd.set_threads(0) end, "bad argument #1 to 'set_threads' (thread count 1..1024 expected)")
  raises(function() qd.set_threads("a") end, "number expected, got string")
  raises(function() qd.gate_matrix() end, "bad argument #1 to 'gate_matrix' (string expected, got no value)")
  raises(function() qd.gate_matrix("foo") end, "gate name expected, got 'foo'")
  raises(function() qd.gate_matrix("rx") end, "bad argument #2 to 'gate_matrix' (number expected, got no value)")
  raises(function() qd.gate_matrix("rx", "a") end, "number expected, got string")
  raises(function() qd.gate_matrix("h", 1) end, "bad argument #2 to 'gate_matrix' (unexpected extra argument)")
  raises(function() qd.gates(1) end, "bad argument #1 to 'gates' (unexpected extra argument)")
end)

T.test(".npy arguments", function()
  raises(function() qd.load_npy() end, "bad argument #1 to 'load_npy' (string expected, got no value)")
  raises(function() qd.load_npy({}) end, "string expected, got table")
  raises(function() qd.load_npy("x", "foo") end, "bad argument #2 to 'load_npy' (invalid option 'foo')")
  raises(function() qd.load_npy("x", "state", 1) end, "bad argument #3 to 'load_npy' (unexpected extra argument)")
  raises(function() s:save_npy() end, "bad argument #1 to 'save_npy' (string expected, got no value)")
  raises(function() s:save_npy({}) end, "string expected, got table")
  raises(function() s:save_npy("a", "b") end, "bad argument #2 to 'save_npy' (unexpected extra argument)")
  raises(function() s.save_npy(5, "x") end, "bad argument #1 to 'save_npy'", "got number")
  raises(function() qd.save_ensembles() end, "bad argument #1 to 'save_ensembles' (string expected, got no value)")
  raises(function() qd.save_ensembles("x") end, "bad argument #2 to 'save_ensembles' (table expected, got no value)")
  raises(function() qd.save_ensembles("x", {}) end, "non-empty table of qd.Ensemble expected")
  raises(function() qd.save_ensembles("x", { E, s }) end, "qd.Ensemble expected at position 2, got qd.State")
  raises(function() qd.save_ensembles("x", { E, 5 }) end, "qd.Ensemble expected at position 2, got number")
  raises(function() qd.save_ensembles("x", { E, qd.ensemble(2, 4) }) end, "ensembles of equal shape expected (position 2 differs from position 1)")
  raises(function() qd.save_ensembles("x", { E, qd.ensemble(3, 3) }) end, "ensembles of equal shape expected")
  raises(function() qd.save_ensembles("x", { E }, 1) end, "bad argument #3 to 'save_ensembles' (unexpected extra argument)")
  raises(function() qd.save_stack("x", {}) end, "non-empty table of states, density matrices or ensembles expected")
  raises(function() qd.save_stack("x", { qd.dm(1), s }) end, "qd.DensityMatrix expected at position 2, got qd.State")
  raises(function() qd.save_stack("x", { qd.dm(1), qd.dm(2) }) end, "density matrices of equal shape expected (position 2")
  raises(function() qd.save_stack("x", { 5 }) end, "qd.State, qd.DensityMatrix or qd.Ensemble expected at position 1, got number")
end)

T.test("freed objects", function()
  local fs, fd, fe = qd.state(2), qd.dm(1), qd.ensemble(2, 2)
  local fv, fm = qd.vector { 1 }, qd.matrix(2, 2)
  for _, o in ipairs { fs, fd, fe, fv, fm } do
    o:free()
    o:free()   -- idempotent
  end
  T.eq(tostring(fs), "qd.State (freed)"); T.eq(tostring(fd), "qd.DensityMatrix (freed)")
  T.eq(tostring(fe), "qd.Ensemble (freed)"); T.eq(tostring(fm), "qd.Matrix (freed)")
  -- every method of every register type refuses a freed self
  local count = 0
  for _, o in ipairs { fs, fd, fe } do
    local name = qd.type(o)
    for m, f in pairs(getmetatable(o).methods) do
      if m ~= "free" then
        raises(function() f(o) end, name .. " has been freed")
        count = count + 1
      end
    end
  end
  T.ok(count > 100, "methods checked on freed objects: " .. count)
  raises(function() fs:h(0) end, "calling 'h' on bad self (qd.State has been freed)")
  raises(function() return #fs end, "qd.State has been freed")
  raises(function() return fe[1] end, "qd.Ensemble has been freed")
  raises(function() return #fe end, "qd.Ensemble has been freed")
  raises(function() fd:trace() end, "calling 'trace' on bad self (qd.DensityMatrix has been freed)")
  -- as arguments
  raises(function() s:inner(fs) end, "bad argument #1 to 'inner' (qd.State has been freed)")
  raises(function() qd.fidelity(s, fs) end, "bad argument #2 to 'fidelity' (qd.State has been freed)")
  raises(function() qd.fidelity(fd, rho) end, "bad argument #1 to 'fidelity' (qd.DensityMatrix has been freed)")
  raises(function() qd.trace_distance(rho, fd) end, "qd.DensityMatrix has been freed")
  raises(function() qd.purity(fs) end, "qd.State has been freed")
  raises(function() qd.entropy(fd) end, "qd.DensityMatrix has been freed")
  raises(function() qd.kron(fs, s) end, "bad argument #1 to 'kron' (qd.State has been freed)")
  raises(function() qd.dm(fs) end, "bad argument #1 to 'dm' (qd.State has been freed)")
  raises(function() E:set(1, fs) end, "bad argument #2 to 'set' (qd.State has been freed)")
  raises(function() E:overlaps(fe) end, "bad argument #1 to 'overlaps' (qd.Ensemble has been freed)")
  raises(function() E:fidelities(fs) end, "qd.State has been freed")
  raises(function() qd.ensemble.from { s, fs } end, "qd.State expected at position 2, got a freed qd.State")
  raises(function() qd.save_ensembles("x", { fe }) end, "qd.Ensemble expected at position 1, got a freed qd.Ensemble")
  raises(function() fs:save_npy("x") end, "qd.State has been freed")
  raises(function() fv:save_npy("x") end, "qd.Vector has been freed")
  raises(function() return fv[1] end, "qd.Vector has been freed")
  raises(function() fv:get(1) end, "calling 'get' on bad self (qd.Vector has been freed)")
  raises(function() fm:get(1, 1) end, "qd.Matrix has been freed")
  raises(function() qd.state.from(fv) end, "bad argument #1 to 'from' (qd.Vector has been freed)")
  raises(function() qd.ensemble(1, 1):rx(0, fv) end, "bad argument #2 to 'rx' (qd.Vector has been freed)")
  raises(function() s:unitary(fm, { 0 }) end, "bad argument #1 to 'unitary' (qd.Matrix has been freed)")
  raises(function() qd.dm(fm) end, "qd.Matrix has been freed")
  raises(function() qd.ensemble.from(fm) end, "qd.Matrix has been freed")
  -- <close> frees at scope end
  local keep
  do
    local t <close> = qd.state(3)
    keep = t
    T.eq(keep.n, 3)
  end
  raises(function() keep:norm() end, "qd.State has been freed")
end)

T.test("size guard: never a crash", function()
  raises(function() qd.state(40) end, "not enough memory for a 40-qubit state (16 TiB requested)")
  raises(function() qd.state(34) end, "not enough memory for a 34-qubit state (256 GiB requested)")
  raises(function() qd.dm(30) end, "not enough memory for a 30-qubit density matrix (16 EiB requested)")
  raises(function() qd.state(60) end, "not enough memory for a 60-qubit state (16 EiB requested)")
  raises(function() qd.state(200) end, "not enough memory for a 200-qubit state (2^204 B requested)")
  raises(function() qd.state(math.maxinteger) end, "not enough memory for a 9223372036854775807-qubit state (more than 2^1000 B requested)")
  raises(function() qd.state(2):embed(math.maxinteger) end, "bad argument #1 to 'embed' (number of ancillas 0..58 expected)")
  raises(function() qd.ensemble(2, math.maxinteger) end, "not enough memory for an ensemble of 9223372036854775807 2-qubit states (size overflows)")
  raises(function() qd.rng(1):normal(0, 1, math.maxinteger) end, "not enough memory for a 9223372036854775807x1 array (size overflows)")
  raises(function() qd.ensemble(35, 2) end, "not enough memory for an ensemble of 2 35-qubit states (1 TiB requested)")
  raises(function() qd.ensemble(25, 1 << 50) end, "not enough memory for an ensemble of")
  raises(function() qd.vector(1 << 60) end, "not enough memory for a 1152921504606846976x1 real array (8 EiB requested)")
  raises(function() qd.matrix(1 << 40, 1 << 40) end, "not enough memory for a 1099511627776x1099511627776 array (size overflows)")
  raises(function() qd.rng(1):uniform(0, 1, 1 << 50) end, "not enough memory for a")
  raises(function() qd.state(8):embed(40) end, "not enough memory for a 48-qubit state")
end)

T.test("module functions reject extra arguments", function()
  T.raises(function() qd.clock(1) end, "unexpected extra argument")
  T.raises(function() qd.threads(1) end, "unexpected extra argument")
  T.raises(function() qd.blas_info(1) end, "unexpected extra argument")
  T.raises(function() qd.set_threads(1, 2) end, "unexpected extra argument")
  T.raises(function() qd.set_threads(0) end, "thread count 1..1024 expected")
end)

T.test("options a function does not take are refused, not ignored", function()
  local c = qd.circuit(1):rx(0, { 1 })
  local loss = function() return 0, qd.state(1) end
  raises(function() c:grad(qd.state(1), { 0.1 }, loss, { h = 1e-3 }) end,
    "bad argument #4 to 'grad' (unknown option 'h' (known: rng, outcomes, expected, first))")
  -- grad_fd takes the step
  local val, g = c:grad_fd(qd.state(1), { 0.1 }, function(x) return x:expect("Z") end, { h = 1e-3 })
  T.ok(math.abs(g[1] + math.sin(0.1)) < 1e-6, "grad_fd takes h: d<Z>/da = -sin a")
  raises(function() qd.optim.schedule.constant { lr = 1, gamma = 3 } end,
    "bad argument #1 to 'schedule.constant' (unknown option 'gamma')")
  raises(function() qd.optim.schedule.linear { lr = 1, T = 3, lr_min = 0 } end,
    "bad argument #1 to 'schedule.linear' (unknown option 'lr_min')")
  T.ok(qd.optim.schedule.cosine { lr = 1, T = 3, lr_min = 0.1, warmup = 1 } ~= nil, "cosine takes lr_min, warmup")
end)

T.test("a loss function's bad result names the loss argument; a real G is taken", function()
  local c = qd.circuit(1):rx(0, { 1 })
  raises(function() c:grad(qd.dm(1), { 0.1 }, function() return 0, qd.matrix(3, 3) end) end,
    "bad argument #3 to 'grad' (the loss function's second result: qd.DensityMatrix of 1 qubits or a 2x2 array expected")
  local Z = qd.matrix { { 1, 0 }, { 0, -1 } }
  local L, g = c:grad(qd.dm(1), { 0.1 }, function(o) return (qd.expect(Z, o)), 0.5 * Z end)
  T.ok(math.abs(g[1] + math.sin(0.1)) < 1e-12, "d<Z>/da = -sin a with a real G")
end)
