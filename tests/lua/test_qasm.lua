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
  bad("OPENQASM 3;\nqubit[2] q;\npow(0.5) @ x q[0];\n", "qasm:3: 'pow(0.5) @': only integer powers are supported")
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
