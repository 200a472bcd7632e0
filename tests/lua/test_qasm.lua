-- test_qasm.lua — c:to_qasm(2|3) and qd.circuit.from_qasm: round trips give the same
-- unitary (every gate, shared slots with scale/offset, named and unnamed parameters),
-- measurement/discard/reset survive, hand-written OpenQASM 2 and 3 parse to the circuit
-- built by hand, and bad input raises "qasm:LINE: ..." errors.
local T = require "testlib"

local rng = qd.rng(77)

local function maxdiff_mat(A, B)
  local r, c = A:shape()
  local m = 0
  for i = 1, r do
    for j = 1, c do
      local x, y = A:get(i, j)
      local u, v = B:get(i, j)
      m = math.max(m, math.abs(x - u) + math.abs(y - v))
    end
  end
  return m
end

local function random_circuit(n, extra)
  local c = qd.circuit(n)
  c:param("alpha")
  c:param()
  c:param("beta")
  local gates = qd.gates()
  local names = {}
  for nm, g in pairs(gates) do if g.qubits <= n then names[#names + 1] = nm end end
  table.sort(names)
  for _ = 1, extra do names[#names + 1] = names[rng:integer(1, #names)] end
  for _, nm in ipairs(names) do
    local g = gates[nm]
    local all = {}
    while #all < g.qubits do
      local q = rng:integer(0, n - 1)
      local dup = false
      for _, p in ipairs(all) do dup = dup or p == q end
      if not dup then all[#all + 1] = q end
    end
    for _ = 1, g.params do
      local u = rng:uniform()
      if u < 0.25 then all[#all + 1] = 4 * rng:uniform() - 2
      elseif u < 0.5 then all[#all + 1] = { rng:integer(1, 3) }
      else all[#all + 1] = { rng:integer(1, 3), scale = 2 * rng:uniform() - 1, offset = rng:uniform() - 0.5 } end
    end
    c[nm](c, table.unpack(all, 1, g.qubits + g.params))
  end
  return c
end

T.test("round trip QASM 3 and QASM 2", function()
  for n = 1, 4 do
    local c = random_circuit(n, 15)
    local th = { 0.37, -1.21, 2.5 }
    local text = c:to_qasm(3)
    T.ok(text:find("OPENQASM 3.0;", 1, true) == 1, "header")
    T.ok(text:find("input float[64] alpha;", 1, true) ~= nil, "named input")
    T.ok(text:find("input float[64] theta_2;", 1, true) ~= nil, "unnamed input")
    local c2 = qd.circuit.from_qasm(text)
    T.eq(c2:nparams(), 3, "parameters read back")
    T.eq(c2:param_index("beta"), 3, "parameter order kept")
    T.ok(maxdiff_mat(c:unitary(th), c2:unitary(th)) < 1e-13, "QASM 3 round trip unitary n=" .. n)
    -- QASM 2 binds the parameters
    local t2 = c:to_qasm(2, th)
    T.ok(t2:find("OPENQASM 2.0;", 1, true) == 1, "QASM 2 header")
    T.ok(not t2:find("input", 1, true), "no inputs in QASM 2")
    local c3 = qd.circuit.from_qasm(t2)
    T.eq(c3:nparams(), 0, "bound")
    T.ok(maxdiff_mat(c:unitary(th), c3:unitary()) < 1e-13, "QASM 2 round trip unitary n=" .. n)
    -- default version is 3; parameters bound in QASM 3 too
    T.eq(c:to_qasm(), text, "default version 3")
    local c4 = qd.circuit.from_qasm(c:to_qasm(3, th))
    T.ok(maxdiff_mat(c:unitary(th), c4:unitary()) < 1e-13, "QASM 3 bound round trip")
  end
end)

T.test("measurement, discard and reset survive", function()
  local c = qd.ansatz.quddpm(2, 1, { ancillas = 1 })
  c = qd.circuit(3):append(c)
  local text = c:to_qasm(3)
  T.ok(text:find("c[0] = measure q[0];", 1, true) ~= nil, "QASM 3 measure syntax")
  T.ok(text:find("pragma qd discard q[0]", 1, true) ~= nil, "discard pragma")
  local c2 = qd.circuit.from_qasm(text)
  T.eq(c2.nout, 2, "discard read back")
  local th = {}
  for i = 1, c:nparams() do th[i] = rng:uniform() end
  local rho = qd.dm(qd.haar_state(3, rng))
  T.ok(maxdiff_mat(c:run(rho, th):matrix(), c2:run(rho, th):matrix()) < 1e-13, "same channel")
  local r = qd.circuit(2):h(0):reset({ 0, 1 }):measure({ 0, 1 })
  local t2 = r:to_qasm(2)
  T.ok(t2:find("measure q[1] -> c[1];", 1, true) ~= nil, "QASM 2 measure syntax")
  local r2 = qd.circuit.from_qasm(t2)
  local ops = r2:ops()
  T.eq(#ops, 3, "joint reset and joint measurement")
  T.eq(ops[2].kind, "reset", "reset op")
  T.eq(#ops[3].qubits, 2, "two measured qubits in one op")
  T.raises(function() qd.circuit(1):add_unitary({ { 0, 1 }, { 1, 0 } }, { 0 }):to_qasm() end, "arbitrary unitary")
end)

T.test("hand-written OpenQASM", function()
  local q2 = [[
// a QASM 2 file with the usual qelib1 names
OPENQASM 2.0;
include "qelib1.inc";
qreg a[2];
qreg b[1];
creg m[3];
gate mygate(t) x, y { cx x, y; u1(t/2) y; cx x, y; }
h a;                      /* broadcast over the register */
u2(0, pi) b[0];
u3(pi/2, 0.1, -0.2) a[1];
CX a[0], b[0];
cu1(pi/4) a[1], b[0];
mygate(3*pi/4) a[0], a[1];
barrier a, b;
U(0.3, 0.2, 0.1) a[0];
measure a[0] -> m[0];
]]
  local c = qd.circuit.from_qasm(q2)
  local ref = qd.circuit(3):h(0):h(1):u(2, math.pi / 2, 0, math.pi):u(1, math.pi / 2, 0.1, -0.2)
      :cx(0, 2):cp(1, 2, math.pi / 4):cx(0, 1):p(1, 3 * math.pi / 8):cx(0, 1):u(0, 0.3, 0.2, 0.1)
  local cu = qd.circuit.from_qasm((q2:gsub("measure a%[0%] %-> m%[0%];\n", "")))
  T.ok(maxdiff_mat(cu:unitary(), ref:unitary()) < 1e-13, "QASM 2 file = circuit by hand")
  T.eq(c.nmeas, 1, "measurement read")
  local q3 = [[
OPENQASM 3;
include "stdgates.inc";
input float[64] a;
input angle[32] b;
qubit[2] q;
bit[2] c;
rx(2*a - pi/2) q[0];
ry(-(b + 1)/2) q[1];
rzz(a) q[0], q[1];
cphase(sin(pi/6)) q[0], q[1];
gphase(0.5);
c = measure q;
]]
  local c3 = qd.circuit.from_qasm(q3)
  T.eq(c3:nparams(), 2, "two inputs")
  local ref3 = qd.circuit(2):rx(0, { "a", scale = 2, offset = -math.pi / 2 }):ry(1, { "b", scale = -0.5, offset = -0.5 })
      :rzz(0, 1, "a"):cp(0, 1, 0.5)
  local cc = qd.circuit(2)
  local ops = c3:ops()
  T.eq(ops[#ops].kind, "measure", "register measurement")
  T.eq(#ops[#ops].qubits, 2, "both qubits")
  local th = { 0.4, -0.9 }
  local noms = qd.circuit.from_qasm((q3:gsub("c = measure q;\n", "")))
  T.ok(maxdiff_mat(noms:unitary(th), ref3:unitary(th)) < 1e-13, "QASM 3 expressions")
end)

T.test("errors with line numbers", function()
  local function bad(text, msg)
    T.raises(function() qd.circuit.from_qasm(text) end, msg)
  end
  bad("OPENQASM 3;\nqubit[2] q;\nfoo q[0];\n", "qasm:3: unknown gate 'foo'")
  bad("OPENQASM 3;\nqubit[2] q;\n\nrx q[0];\n", "qasm:4: 'rx' takes 1 angle, got 0")
  bad("OPENQASM 3;\nqubit[2] q;\ncx q[0];\n", "qasm:3: 'cx' acts on 2 qubits, got 1")
  bad("OPENQASM 3;\nqubit[2] q;\nh r[0];\n", "qasm:3: unknown quantum register 'r'")
  bad("OPENQASM 3;\nqubit[2] q;\nh q[2];\n", "qasm:3: index 2 out of range for register 'q' of size 2")
  bad("OPENQASM 3;\nqubit[2] q;\nh q[0]\nx q[1];\n", "qasm:4: ';' expected")
  bad("OPENQASM 3;\nqubit[2] q;\nh q[0]; $\n", "qasm:3: unexpected character '$'")
  bad("OPENQASM 3;\ninput float[64] a;\nqubit q;\nrx(a*a) q;\n", "qasm:4: product of parameters")
  bad("OPENQASM 3;\ninput float[64] a;\nqubit q;\nrx(sin(a)) q;\n", "qasm:4: sin() of a parameter")
  bad("OPENQASM 3;\nqubit q;\nrx(zz) q;\n", "qasm:3: unknown identifier 'zz'")
  bad("OPENQASM 3;\nqubit[2] q;\npow(0.5) @ h q[0];\n", "qasm:3: 'pow(0.5) @' with a non-integer power is supported on one rotation or phase gate only")
  bad("OPENQASM 3;\nqubit[2] q;\ncx q[0], q[0];\n", "qasm:3: 'cx' on the same qubit twice")
  bad("OPENQASM 3;\nqubit[2] q;\n/* open\n", "qasm:3: unterminated comment")
  bad("OPENQASM 3;\n", "no qubit register declared")
  bad("OPENQASM 3;\nqubit q;\nqubit q;\n", "qasm:3: 'q' declared twice")
  bad("OPENQASM 3;\nqubit[2] q;\ngate g a { h a;\n", "qasm:4: '}' expected")
  bad("OPENQASM 3;\nqubit[2] q;\nmeasure q[0];\nx q[0];\npragma qd discard q[0]\n", "qasm:5: 'pragma qd discard' must follow a measurement")
  bad("OPENQASM 3;\nqubit[2] q;\ngate g a { h a; }\ngate g2 a { g2 a; }\ng2 q[0];\n", "qasm:5: gate 'g2' is defined in terms of itself")
  bad("OPENQASM 3;\nqubit[2] q;\ngate g a { h b; }\n", "qasm:3: unknown qubit 'b' in gate body")
  bad("OPENQASM 3;\nqubit[2] q;\ngate g a, a { h a; }\n", "qubit argument 'a' twice")
  bad("OPENQASM 3;\nqubit[2] q;\ngate g(t) a { rx(t a; }\n", "qasm:3: ')' expected")
  bad("OPENQASM 3;\nqubit[2] q;\ngate g a { barrier a\n", "';' expected")
  T.raises(function() qd.circuit.from_qasm(42) end, "string expected")
  local c = qd.circuit(1):rx(0, "a")
  T.raises(function() c:to_qasm(4) end, "version 2 or 3 expected")
  T.raises(function() c:to_qasm(2) end, "OpenQASM 2 has no free parameters")
  T.raises(function() c:to_qasm(3, { 1, 2 }) end, "1 parameters expected, got 2")
end)

-- Limits (qasm.lua: max_ops, max_gate_depth, max_nesting, qd.max_qubits): every bad input
-- is refused before the work it would cause, so each case below takes milliseconds; the
-- bounds are generous (seconds) so a loaded machine does not fail them.
local qasm = require "qd.qasm"

local function timed(f)
  local t0 = os.clock()
  local ok, err = pcall(f)
  return os.clock() - t0, ok, err
end

T.test("lexing is linear: 10^6-character inputs fail fast", function()
  local M = 1000000
  local cases = {
    { ("0"):rep(M), "statement expected" },
    { ("1"):rep(M) .. ".5e", "statement expected" },
    { "qreg q[1]; rx(" .. ("9"):rep(M) .. ") q;", nil },
    { ("a"):rep(M), "qubit operand expected" },
    { (" "):rep(M), "no qubit register declared" },
    { ("\n"):rep(M), "no qubit register declared" },
    { (" \t\r\n"):rep(M // 4) .. "$", "unexpected character" },
    { ("("):rep(M), "statement expected" },
    { "qreg q[1]; rx" .. ("("):rep(M) .. "1" .. (")"):rep(M) .. " q;", "nested more than 200 deep" },
    { "qreg q[1]; rx(" .. ("-"):rep(M) .. "1) q;", "nested more than 200 deep" },
    { "qreg q[1]; rx(2" .. ("**2"):rep(M // 3) .. ") q;", "nested more than 200 deep" },
    { '"' .. ("x"):rep(M), "unterminated string" },
    { "/*" .. ("x\n"):rep(M // 2), "unterminated comment" },
    { ("/*"):rep(M // 2), "statement expected" },
    { "//" .. (" "):rep(M), "no qubit register declared" },
    { ("// pragma qd \n"):rep(M // 14), "no qubit register declared" },
    { ("pragma x\n"):rep(M // 9), "no qubit register declared" },
    { ("x;"):rep(M // 2), "qubit operand expected" },
  }
  for i, cs in ipairs(cases) do
    local dt, ok, err = timed(function() return qd.circuit.from_qasm(cs[1]) end)
    T.ok(dt < 5, string.format("case %d: %.2f s (bound 5 s)", i, dt))
    if cs[2] then
      T.ok(not ok and tostring(err):find(cs[2], 1, true), string.format("case %d: %s", i, tostring(err)))
    end
  end
end)

local function chain(d)
  local t = { "OPENQASM 2.0;", "qreg q[2];", "gate g0 a, b { cx a, b; }" }
  for k = 1, d do t[#t + 1] = string.format("gate g%d a, b { g%d a, b; g%d b, a; }", k, k - 1, k - 1) end
  t[#t + 1] = string.format("g%d q[0], q[1];", d)
  return table.concat(t, "\n")
end

T.test("gate expansion is bounded before it starts", function()
  -- 2^d ops: counted from the definitions, refused at the call's line
  local c = qd.circuit.from_qasm(chain(6))
  T.eq(#c:ops(), 64, "a small chain expands")
  local dt, ok, err = timed(function() return qd.circuit.from_qasm(chain(30)) end)
  T.ok(not ok, "2^30 ops refused")
  T.ok(tostring(err):find("qasm:34: gate 'g30' expands to more than 1000000 ops", 1, true), tostring(err))
  T.ok(dt < 5, string.format("refused in %.2f s", dt))
  dt, ok, err = timed(function() return qd.circuit.from_qasm(chain(40)) end)
  T.ok(not ok and tostring(err):find("gate 'g40' nests gate definitions more than 32 deep", 1, true), tostring(err))
  T.ok(dt < 5, string.format("depth refused in %.2f s", dt))
  -- the limit is a module setting; the count includes earlier ops and broadcasts
  local old = qasm.max_ops
  qasm.max_ops = 65
  T.raises(function() qd.circuit.from_qasm(chain(7)) end, "gate 'g7' expands to more than 65 ops")
  T.eq(#qd.circuit.from_qasm(chain(6)):ops(), 64, "64 <= 65")
  T.raises(function() qd.circuit.from_qasm(chain(6) .. "\nh q;\n") end,
           "qasm:11: more than 65 ops (the limit per circuit, max_ops) at 'h'")
  T.raises(function() qd.circuit.from_qasm("qreg q[60];\nh q;\nh q;\n") end, "qasm:3: more than 65 ops")
  qasm.max_ops = old
  -- a redefinition changes the count of gates built on it
  local text = "qreg q[1];\ngate a x { h x; }\ngate b x { a x; a x; }\nb q[0];\n" ..
               "gate a x { h x; h x; h x; }\nb q[0];\n"
  T.eq(#qd.circuit.from_qasm(text):ops(), 8, "2 + 6 ops after redefining a")
  -- from_qasm's options are checked (qasm.from_qasm is what qd.circuit.from_qasm calls)
  T.raises(function() qasm.from_qasm(qd, "qreg q[1]; h q;", { max_op = 3 }) end,
           "bad argument #2 to 'from_qasm' (unknown option 'max_op'")
  T.raises(function() qasm.from_qasm(qd, "qreg q[1]; h q;", { max_ops = 0 }) end, "integer >= 1 expected")
  T.raises(function() qasm.from_qasm(qd, "qreg q[2]; h q;", { max_ops = 1 }) end, "more than 1 ops")
end)

T.test("registers beyond qd.max_qubits are refused at the declaration", function()
  local dt, ok, err = timed(function() return qd.circuit.from_qasm("OPENQASM 2.0;\nqreg q[1000000000];\nh q;\n") end)
  T.ok(not ok and tostring(err):find("qasm:2: register 'q' of 1000000000 qubits: a circuit has at most "
                                        .. qd.max_qubits .. " qubits (qd.max_qubits)", 1, true), tostring(err))
  T.ok(dt < 5, string.format("refused in %.2f s", dt))
  T.raises(function() qd.circuit.from_qasm(string.format("qreg a[%d];\nqreg b[1];\n", qd.max_qubits)) end,
           "qasm:2: register 'b' of 1 qubits: a circuit has at most " .. qd.max_qubits .. " qubits (qd.max_qubits), "
           .. qd.max_qubits .. " declared before")
  T.raises(function() qd.circuit.from_qasm("OPENQASM 3;\nqubit[1e300] q;\n") end, "qasm:2: register 'q' of")
end)

------------------------------------------------------------------------ issue 20
-- The corpus tests/data/qasm/*.qasm (Qiskit- and QASMBench-shaped programs: every qelib1
-- gate, several registers, classical control, mid-circuit measurement and reset, a file's
-- own definitions of gates qd knows, OpenQASM 3 features) against an independent dense
-- simulator (tests/data/qasm/make_refs.py: its own parser, gates as matrices, measurement
-- as exact branching; the final density matrix in <name>.rho.npy).
local CORPUS = { "qelib1_all", "teleport", "mid_measure", "shadow", "qiskit_export", "qasm3_features" }
local DIR = "tests/data/qasm/"

local function readfile(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function maxdiff_dm(rho, ref)
  return maxdiff_mat(rho:matrix(), ref)
end

T.test("corpus: every file's density matrix matches the independent simulator", function()
  for _, name in ipairs(CORPUS) do
    local c = qd.circuit.from_qasm(readfile(DIR .. name .. ".qasm"))
    local ref = qd.load_npy(DIR .. name .. ".rho.npy")
    local d = maxdiff_dm(c:run(qd.dm(c.n)), ref)
    T.ok(d < 1e-12, string.format("%s: max |rho - ref| = %.3g", name, d))
    -- the Lua parser alone (no C scanner) reads the same circuit
    local c2 = qd.circuit.from_qasm(readfile(DIR .. name .. ".qasm"), { fast = false })
    T.eq(#c2:ops(), #c:ops(), name .. ": same ops with and without the C scanner")
    T.ok(maxdiff_dm(c2:run(qd.dm(c.n)), ref) < 1e-12, name .. ": Lua parser alone")
  end
end)

T.test("corpus: classical control per member on ensembles and states", function()
  -- the average of the members' final states is the density matrix (statistically: 400
  -- members, trace distance within 0.15; a wrong condition moves it by ~0.5)
  for _, name in ipairs { "teleport", "mid_measure", "qasm3_features" } do
    local c = qd.circuit.from_qasm(readfile(DIR .. name .. ".qasm"))
    local ref = qd.dm(qd.load_npy(DIR .. name .. ".rho.npy"))
    local N = 400
    local E = c:run(qd.ensemble(c.n, N), nil, { rng = qd.rng(11) })
    local acc = qd.dm(E[1])
    for k = 2, N do acc = acc + qd.dm(E[k]) end
    acc = acc / N
    local td = qd.trace_distance(acc, ref)
    T.ok(td < 0.15, string.format("%s: ensemble average within %.3f of the channel", name, td))
    -- a State run is member 1 of an ensemble run with the same generator
    local s = c:run(qd.state(c.n), nil, { rng = qd.rng(11) })
    T.ok(qd.fidelity(s, E[1]) > 1 - 1e-12, name .. ": State run = ensemble member 1")
  end
  -- teleportation: every member ends with the input state on q[2] before the second part
  local tele = readfile(DIR .. "teleport.qasm"):gsub("h q%[3%];.*$", "")
  local c = qd.circuit.from_qasm(tele)
  local want = qd.dm(qd.state(1):u(0, 0.3, 0.2, 0.1))
  local E = c:run(qd.ensemble(4, 64), nil, { rng = qd.rng(5) })
  local worst = 1
  for k = 1, 64 do worst = math.min(worst, qd.fidelity(qd.dm(E[k]):ptrace({ 2 }), want)) end
  T.ok(worst > 1 - 1e-12, "teleported in every member")
end)

T.test("conditional ops: ops(), append, to_qasm, no gradient", function()
  local c = qd.circuit.from_qasm(readfile(DIR .. "teleport.qasm"))
  local conds = 0
  for _, op in ipairs(c:ops()) do
    if op.condition then
      conds = conds + 1
      T.ok(op.condition[1].measurement >= 1 and op.condition[1].value ~= nil, "condition fields")
    end
  end
  T.eq(conds, 5, "five conditional ops")
  local back = qd.circuit.from_qasm(c:to_qasm(3))
  T.ok(maxdiff_dm(back:run(qd.dm(4)), c:run(qd.dm(4)):matrix()) < 1e-13, "QASM 3 export of if round trips")
  T.raises(function() c:to_qasm(2) end, "OpenQASM 2 cannot express")
  -- appended after a measurement of its own: the conditions still read the appended
  -- circuit's measurements
  local pre = qd.circuit(4):h(0):measure({ 0 })
  local big = pre:copy():append(c)
  local want = c:run(pre:run(qd.dm(4))):matrix()
  T.ok(maxdiff_dm(big:run(qd.dm(4)), want) < 1e-13, "append keeps conditions")
  T.ok(c:draw():find("?X", 1, true) ~= nil, "draw marks conditional ops")
  T.raises(function()
    c:grad(qd.state(4), {}, function(out) return 0, out end, { rng = qd.rng(1) })
  end, "no gradient through a conditional op")
end)

T.test("OpenQASM 3: declarations, loops, modifiers, subroutines, Unicode, timing notes", function()
  local text = [[
OPENQASM 3.0;
include "stdgates.inc";
const int[32] n = 3;
float[64] a = pi / 4;
angle[20] β = 2 * a;
qubit[n] q;
let r = q[1:2];
for int i in [0:n - 1] { rx(a * (i + 1)) q[i]; }
ctrl @ rz(β) q[0], q[2];
inv @ pow(2) @ s q[1];
stretch g;
delay[g] q[0];
box[20ns] { h r; }
bit[3] c = measure q;
]]
  local c, notes = qd.circuit.from_qasm(text)
  local ref = qd.circuit(3):rx(0, math.pi / 4):rx(1, math.pi / 2):rx(2, 3 * math.pi / 4)
      :crz(0, 2, math.pi / 2):z(1):h(1):h(2):measure({ 0, 1, 2 })
  local rho = qd.dm(qd.haar_state(3, rng))
  T.ok(maxdiff_dm(c:run(rho), ref:run(rho):matrix()) < 1e-13, "the circuit it says")
  T.ok(notes and #notes == 3, "three notes")
  T.ok(notes[1]:find("qasm:11: 'stretch' ignored", 1, true) ~= nil, notes and notes[1] or "no notes")
  T.ok(notes[3]:find("qasm:13: 'box' timing ignored", 1, true) ~= nil, notes and notes[3] or "no notes")
  local plain, none = qd.circuit.from_qasm("qreg q[1]; h q;")
  T.eq(none, nil, "no notes, one result")
  T.ok(plain ~= nil, "circuit")
  -- subroutines with qubit and angle arguments, and parameters (input) through modifiers
  local s = qd.circuit.from_qasm([[
OPENQASM 3;
input float[64] t;
qubit[2] q;
def ent(qubit a, qubit b, float[64] w) { h a; ctrl @ rx(w) a, b; }
ent(q[0], q[1], 2 * t);
inv @ ctrl @ ry(t + 0.1) q[1], q[0];
]])
  local sref = qd.circuit(2):h(0):crx(0, 1, { "t", scale = 2 }):cry(1, 0, { "t", scale = -1, offset = -0.1 })
  T.ok(maxdiff_mat(s:unitary({ 0.37 }), sref:unitary({ 0.37 })) < 1e-13, "def + parameters under modifiers")
end)

T.test("subroutines that return measured bits (a syndrome, then corrections)", function()
  -- the 3-qubit bit-flip code: encode ry(0.8)|0> as a|000> + b|111>, flip the middle qubit,
  -- measure the syndrome in a subroutine, correct from the returned bits
  local text = [[
OPENQASM 3.0;
include "stdgates.inc";
qubit[3] d;
qubit[2] anc;
def syndrome(qubit[3] data, qubit[2] a) -> bit[2] {
  bit[2] s;
  cx data[0], a[0];
  cx data[1], a[0];
  cx data[1], a[1];
  cx data[2], a[1];
  s = measure a;
  return s;
}
ry(0.8) d[0];
cx d[0], d[1];
cx d[0], d[2];
x d[1];
bit[2] syn = syndrome(d, anc);
if (int[2](syn) == 1) x d[0];
if (int[2](syn) == 3) x d[1];
if (int[2](syn) == 2) x d[2];
]]
  local c = qd.circuit.from_qasm(text)
  local want = qd.state(3):ry(0, 0.8):cx(0, 1):cx(0, 2)
  local rho = c:run(qd.dm(5)):ptrace({ 0, 1, 2 })
  T.ok(qd.fidelity(rho, qd.dm(want)) > 1 - 1e-12, "corrected on the density matrix")
  local E = c:run(qd.ensemble(5, 16), nil, { rng = qd.rng(3) })
  local worst = 1
  for k = 1, 16 do worst = math.min(worst, qd.fidelity(qd.dm(E[k]):ptrace({ 0, 1, 2 }), qd.dm(want))) end
  T.ok(worst > 1 - 1e-12, "corrected in every member")
  -- return measure q; and a second call (the body's names are its own)
  local c2 = qd.circuit.from_qasm([[
OPENQASM 3;
qubit[2] q;
def flip(qubit a) -> bit { bit r; h a; r = measure a; return r; }
bit[2] c;
c[0] = flip(q[0]);
c[1] = flip(q[1]);
if (c == 3) x q[0];
]])
  T.eq(#c2:ops(), 5, "h, measure, h, measure, conditional x")
  local last = c2:ops()[5]
  T.ok(last.condition and #last.condition == 2 and last.condition[1].measurement ~= last.condition[2].measurement,
       "the condition reads both returned bits")
end)

T.test("refusals name the construct and its line", function()
  local function bad(text, msg)
    T.raises(function() qd.circuit.from_qasm(text) end, msg)
  end
  local h3 = "OPENQASM 3;\nqubit[2] q;\n"
  bad("OPENQASM 2.0;\nqreg q[1];\nopaque g a;\ng q[0];\n", "qasm:4: gate 'g' is declared 'opaque' (no definition)")
  bad(h3 .. "while (true) { x q[0]; }\n", "qasm:3: 'while' loops are not supported")
  bad(h3 .. "input int[8] k;\n", "qasm:3: input of type 'int' is not supported")
  bad(h3 .. "x $0;\n", "qasm:3: physical qubits ('$0') are not supported")
  bad(h3 .. 'include "mylib.inc";\n', 'qasm:3: include "mylib.inc": only qelib1.inc and stdgates.inc')
  bad(h3 .. "def f(qubit a) -> int[8] { }\n", "qasm:3: subroutines returning a value ('-> int') are not supported")
  bad(h3 .. "def f(qubit a) -> bit { x a; }\nbit b = f(q[0]);\n", "qasm:4: subroutine 'f' ended without 'return'")
  bad(h3 .. "def f(qubit a) { x a; }\nbit b = f(q[0]);\n", "qasm:4: subroutine 'f' returns no value")
  bad(h3 .. "def f(qubit a) { f(a); }\nf(q[0]);\n", "qasm:3: subroutine 'f' calls itself")
  bad(h3 .. "array[int[8], 3] a;\n", "qasm:3: 'array' variables are not supported")
  bad(h3 .. "complex[float[64]] z = 1;\n", "qasm:3: 'complex' variables are not supported")
  bad(h3 .. "defcal x $0 { }\n", "qasm:3: 'defcal' (pulse-level calibration) is not supported")
  bad(h3 .. "extern f(int) -> int;\n", "qasm:3: 'extern' functions are not supported")
  bad(h3 .. "switch (1) { }\n", "qasm:3: 'switch' is not supported")
  bad(h3 .. "int[32] k = measure q[0];\n", "qasm:3: measuring into a 'int' variable is not supported")
  bad(h3 .. "bit[2] c;\nc = 3;\n", "qasm:4: assigning a value to the bits of 'c' is not supported")
  bad(h3 .. "bit c;\nc = measure q[0];\nif (c == 1) measure q[1] -> c;\n", "qasm:5: a measurement under 'if' on measured bits")
  bad(h3 .. "const int n = 2;\nn = 3;\n", "qasm:4: 'n' is a constant")
  bad(h3 .. "for i in [0:3] { x q[i]; }\n", "qasm:3: index 2 out of range for register 'q' of size 2")
  bad(h3 .. "for i in [0:100000000] { }\n", "'for' loop of 100000001 iterations: more than max_ops")
  bad(h3 .. "foo bar;\n", "qasm:3: unknown gate or type 'foo'")
  bad(h3 .. "ctrl @ measure q[0];\n", "qasm:3: gate modifier 'ctrl @' on 'measure'")
  bad(h3 .. "\195 x;\n", "invalid UTF-8 in an identifier")
  bad(h3 .. "bit c;\nc = measure q[0];\nrx(c) q[1];\n", "qasm:5: the measured bits 'c' are used as a number")
  bad(h3 .. "bit[2] c;\nc = measure q;\nif (c[0] == 1 && c[1] == 0) x q[0];\n",
      "qasm:5: '&&' in a condition on measured bits is not supported")
  local all = {}
  for k = 0, 29 do all[#all + 1] = "q[" .. k .. "]" end
  bad("OPENQASM 3;\nqubit[30] q;\nctrl(29) @ x " .. table.concat(all, ", ") .. ";\n", "qasm:3: 'x' with 29 controls makes")
  bad("OPENQASM 2.0;\nqreg q[40];\nh q;\nmeasure q;\n", "qasm:4: measure: at most 30 qubits at once, got 40")
  -- each former misreport of the issue now parses (or is refused by name)
  for _, ok in ipairs {
    "const int[32] n = 3;", "stretch g;", "let r = q;", "delay[100ns] q[0];", "float[64] a = 0.5;",
    "for int i in [0:1] { h q[i]; }", "for int[32] i in [0:1] { h q[i]; }", "for i in {1, 0} x q[i];", "h q[0:1];", "bit[2] c = measure q;", "gate rθ(θ) a { rx(θ) a; }\nrθ(0.1) q[0];",
  } do
    local good, err = pcall(qd.circuit.from_qasm, h3 .. ok .. "\n")
    T.ok(good, ok .. ": " .. tostring(err))
  end
end)

T.test("a file's definition of a qd gate: used when it differs, checked when it agrees", function()
  local same = "OPENQASM 2.0;\nqreg q[2];\ngate rzz(t) a, b { cx a, b; u1(t) b; cx a, b; }\nrzz(0.4) q[0], q[1];\n"
  local c, notes = qd.circuit.from_qasm(same)
  T.eq(notes, nil, "agrees up to a global phase in QASM 2: no note")
  T.eq(c:ops()[1].name, "rzz", "qd's gate kept (one op)")
  local differ = "OPENQASM 2.0;\nqreg q[2];\ngate rzz(t) a, b { cx a, b; rz(2*t) b; cx a, b; }\nrzz(0.5) q[0], q[1];\n"
  c, notes = qd.circuit.from_qasm(differ)
  T.ok(notes and notes[1]:find("qasm:3: gate 'rzz' defined by the file differs from qd's 'rzz'", 1, true), "noted")
  local want = qd.circuit(2):rzz(0, 1, 1.0)
  T.ok(maxdiff_mat(c:unitary(), want:unitary()) < 1e-13, "the file's body is used")
  -- QASM 3: a global phase is part of the gate (ctrl @ sees it)
  local ph = "OPENQASM 3;\nqubit[2] q;\ngate z a { rz(pi) a; }\nctrl @ z q[0], q[1];\n"
  c, notes = qd.circuit.from_qasm(ph)
  T.ok(notes and notes[1]:find("differs from qd's 'z' by a global phase", 1, true), "phase noted")
  T.ok(maxdiff_mat(c:unitary(), qd.circuit(2):crz(0, 1, math.pi):unitary()) < 1e-13, "controlled file body")
  -- the two historic cu3: the built-in is Qiskit's exact controlled-U3
  local cu3 = qd.circuit.from_qasm("qreg q[2];\ncu3(0.3, 0.7, -1.1) q[0], q[1];\n")
  local U = qd.gate_matrix("u", 0.3, 0.7, -1.1)
  local CU = qd.matrix { { 1, 0, 0, 0 }, { 0, 1, 0, 0 }, { 0, 0, { U:get(1, 1) }, { U:get(1, 2) } },
                         { 0, 0, { U:get(2, 1) }, { U:get(2, 2) } } }
  T.ok(maxdiff_mat(cu3:unitary(), CU) < 1e-13, "cu3 = controlled-U3 exactly")
end)

T.test("OpenQASM 3's U, u3, u2 phases; fractional powers; definitions in stdgates.inc's style", function()
  -- the spec's U is e^{i theta/2} u: seen under ctrl @ only
  local c = qd.circuit.from_qasm("OPENQASM 3;\nqubit[2] q;\nctrl @ U(0.7, 0.2, -0.4) q[0], q[1];\n")
  local U = qd.gate_matrix("u", 0.7, 0.2, -0.4)
  local e = { math.cos(0.35), math.sin(0.35) }
  local function mul(z) return { e[1] * z[1] - e[2] * z[2], e[1] * z[2] + e[2] * z[1] } end
  local want = qd.matrix { { 1, 0, 0, 0 }, { 0, 1, 0, 0 }, { 0, 0, mul { U:get(1, 1) }, mul { U:get(1, 2) } },
                           { 0, 0, mul { U:get(2, 1) }, mul { U:get(2, 2) } } }
  T.ok(maxdiff_mat(c:unitary(), want) < 1e-13, "ctrl @ U carries e^{i theta/2}")
  local c2 = qd.circuit.from_qasm("OPENQASM 2.0;\nqreg q[1];\nU(0.7, 0.2, -0.4) q[0];\n")
  T.eq(#c2:ops(), 1, "uncontrolled: one u")
  -- stdgates.inc-style definitions agree with qd's gates exactly: no note, qd's gate kept
  local _, notes = qd.circuit.from_qasm([[
OPENQASM 3;
gate x a { U(π, 0, π) a; gphase(-π/2); }
gate h a { U(π/2, 0, π) a; gphase(-π/4); }
gate rx(θ) a { U(θ, -π/2, π/2) a; gphase(-θ/2); }
gate rz(λ) a { gphase(-λ/2); U(0, 0, λ) a; }
gate s a { pow(0.5) @ z a; }
gate sdg a { inv @ pow(0.5) @ z a; }
gate t a { pow(0.5) @ s a; }
gate sx a { pow(0.5) @ x a; }
gate p(λ) a { ctrl @ gphase(λ) a; }
gate cu(θ, φ, λ, γ) a, b { p(γ-θ/2) a; ctrl @ U(θ, φ, λ) a, b; }
qubit[2] q;
cu(0.3, 0.2, 0.1, 0.4) q[0], q[1];
]])
  T.eq(notes, nil, "x h rx rz s sdg t sx p agree with qd's gates exactly")
  -- and the spec's cu is the built-in cu (Qiskit's controlled e^{i gamma} U3)
  local a = qd.circuit.from_qasm("OPENQASM 3;\ngate cu2(θ, φ, λ, γ) a, b { p(γ-θ/2) a; ctrl @ U(θ, φ, λ) a, b; }\n" ..
                                 "qubit[2] q;\ncu2(0.3, 0.2, 0.1, 0.4) q[0], q[1];\n")
  local b = qd.circuit.from_qasm("OPENQASM 3;\nqubit[2] q;\ncu(0.3, 0.2, 0.1, 0.4) q[0], q[1];\n")
  T.ok(maxdiff_mat(a:unitary(), b:unitary()) < 1e-13, "stdgates.inc's cu = the built-in cu")
  local f = qd.circuit.from_qasm("OPENQASM 3;\nqubit q;\npow(0.5) @ x q;\npow(0.25) @ z q;\npow(1.5) @ rx(0.4) q;\n")
  local g = qd.circuit(1):sx(0):t(0):rx(0, 0.6)
  T.ok(maxdiff_mat(f:unitary(), g:unitary()) < 1e-13, "pow(0.5) @ x = sx, pow(0.25) @ z = t, pow(1.5) @ rx(a) = rx(1.5 a)")
end)

T.test("the C scanner and the Lua parser read the same circuit", function()
  local lines = { "OPENQASM 2.0;", 'include "qelib1.inc";', "qreg a[3];", "qreg b[2];", "creg c[5];",
    "h a;", "cx a[0],b[1];", "rz(1e-3) a[1];", "rx(.5) b[0];", "ry(2.) a[2];", "u3(1E+0,-pi/2,pi*0.25) b[1];",
    "u2(0,π) a[0];", "u1(-(1+2)/3) b[0];", "cp(tau/8) a[2],b[0];", "/* comment */ swap a[0] , a[2] ;",
    "// a comment\nccx a[0],a[1],b[0];", "cx a,a;", "barrier a,b;", "rzz(0.1) a[0],b[0];", "measure a -> c[0:2];" }
  local text = table.concat(lines, "\n")
  local ok1, c1 = pcall(qd.circuit.from_qasm, text)
  local ok2, c2 = pcall(qd.circuit.from_qasm, text, { fast = false })
  T.eq(ok1, ok2, "both refuse or both accept")
  T.eq(tostring(c1), tostring(c2), "same error")
  text = text:gsub("cx a,a;\n", "")
  c1 = qd.circuit.from_qasm(text)
  c2 = qd.circuit.from_qasm(text, { fast = false })
  local o1, o2 = c1:ops(), c2:ops()
  T.eq(#o1, #o2, "same number of ops")
  local same = true
  for i = 1, #o1 do
    same = same and o1[i].kind == o2[i].kind and o1[i].name == o2[i].name and
           table.concat(o1[i].qubits, ",") == table.concat(o2[i].qubits, ",")
    for j, p in ipairs(o1[i].params or {}) do same = same and p.value == o2[i].params[j].value end
  end
  T.ok(same, "op for op, angles bit for bit")
end)
