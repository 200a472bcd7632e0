-- test_print_help.lua — printed summaries (tostring of every object: a 3-qubit state in
-- ket notation, a 20-qubit one truncated with its size, density matrices, ensembles,
-- freed objects), help(obj) / help(qd.state) / help("name") paragraphs, and qd.type.
local T = require "testlib"

-- everything help() prints, as one string
local function helptext(...)
  local out = {}
  local saved = print
  print = function(...)
    local t = {}
    for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
    out[#out + 1] = table.concat(t, "\t")
  end
  local ok, err = pcall(help, ...)
  print = saved
  if not ok then error(err, 0) end
  return table.concat(out, "\n")
end

local function has(s, sub) return s:find(sub, 1, true) ~= nil end

T.test("State summaries", function()
  local ghz = qd.state(3):h(0):cx(0, 1):cx(1, 2)
  T.eq(tostring(ghz), "qd.State(3 qubits): 0.7071|000> + 0.7071|111>", "GHZ in ket notation")
  T.eq(tostring(qd.state(3, "101")), "qd.State(3 qubits): 1|101>", "qubit 0 leftmost")
  T.eq(tostring(qd.state(3):x(0):h(0)), "qd.State(3 qubits): 0.7071|000> - 0.7071|100>", "signs")
  T.eq(tostring(qd.state(1)), "qd.State(1 qubit): 1|0>", "singular")
  T.eq(tostring(qd.state.from { 0, { 0, 1 } }), "qd.State(1 qubit): 1i|1>", "imaginary")
  T.eq(tostring(qd.state.from { 0, { 0, -1 } }), "qd.State(1 qubit): -1i|1>")
  T.eq(tostring(qd.state.from { { 0.6, 0.8 }, 0 }), "qd.State(1 qubit): (0.6+0.8i)|0>", "complex coefficient")
  T.eq(tostring(qd.state.from({ 0, 0 }, { normalize = false })), "qd.State(1 qubit, norm 0: not normalised): 0", "zero vector")
  -- a 3-qubit state with every amplitude nonzero shows all eight kets
  local u = qd.state(3):h(0):h(1):h(2)
  local txt = tostring(u)
  local kets = 0
  for _ in txt:gmatch("|[01][01][01]>") do kets = kets + 1 end
  T.eq(kets, 8, "all 8 kets shown")
  T.ok(has(txt, "0.3536|000>") and has(txt, "+ 0.3536|111>"), txt)
  -- 20 qubits: a truncated view and the size
  local big = qd.state(20)
  for q = 0, 19 do big:h(q) end
  local b = tostring(big)
  T.ok(b:sub(1, 29) == "qd.State(20 qubits, 16 MiB): ", "header with qubits and size: " .. b:sub(1, 40))
  T.ok(has(b, "|00000000000000000000>"), "first ket")
  T.ok(b:sub(-6) == " + ...", "ends truncated")
  local n20 = 0
  for _ in b:gmatch("|[01]+>") do n20 = n20 + 1 end
  T.eq(n20, 8, "8 terms shown of 2^20")
  T.ok(#b < 400, "short: " .. #b .. " characters")
  -- medium states report how many terms were left out
  local h12 = tostring(qd.haar_state(12, qd.rng(1)))
  T.ok(h12:sub(1, 28) == "qd.State(12 qubits, 64 KiB):", h12:sub(1, 30))
  T.ok(has(h12, "+ ... (4088 more terms)"), "count of hidden terms")
  -- print() uses the same text
  local out
  local saved = print
  print = function(x) out = tostring(x) end
  print(ghz)
  print = saved
  T.eq(out, tostring(ghz))
end)

T.test("DensityMatrix, Ensemble, arrays, Rng summaries", function()
  local r1 = tostring(qd.dm(1))
  T.eq(r1, "qd.DensityMatrix(1 qubit, 64 B, trace 1, purity 1)\n  1+0i  0+0i\n  0+0i  0+0i")
  local mm = tostring(qd.maximally_mixed(3))
  T.ok(mm:find("^qd.DensityMatrix%(3 qubits, 1 KiB, trace 1, purity 0.125%)\n  0.125%+0i      0%+0i") ~= nil,
    "entries shown at 3 qubits: " .. mm)
  local big = tostring(qd.maximally_mixed(4))
  T.ok(select(2, big:gsub("\n", "")) == 9 and big:find("...", 1, true) ~= nil, "16 x 16: 4 + ... + 4 rows, elided")
  T.eq(tostring(qd.state(2):rx(0, 1e-9)), "qd.State(2 qubits): 1|00> - 5e-10i|10>", "a small amplitude shown")
  local M = tostring(qd.matrix { { 1, 2.5 }, { 40, 5 } })
  T.eq(M, "qd.Matrix(2x2, real):\n   1  2.5\n  40    5", "columns aligned")
  local e = tostring(qd.ensemble.from { qd.state(2), qd.state(2, "11"), qd.state(2):h(0), qd.state(2) })
  T.eq(e, "qd.Ensemble(4 states of 2 qubits, 256 B)\n  [1] 1|00>\n  [2] 1|11>\n  [3] 0.7071|00> + 0.7071|10>\n  ...")
  T.eq(tostring(qd.ensemble(1, 1)), "qd.Ensemble(1 state of 1 qubit, 32 B)\n  [1] 1|0>")
  T.eq(tostring(qd.ensemble(14, 2)):match("^[^\n]*"), "qd.Ensemble(2 states of 14 qubits, 512 KiB)")
  T.ok(not has(tostring(qd.ensemble(14, 2)), "[1]"), "no members shown past 12 qubits")
  T.eq(tostring(qd.vector { 1, 2.5 }), "qd.Vector(2, real): [1, 2.5]")
  T.eq(tostring(qd.vector { { 1, -1 } }), "qd.Vector(1, complex): [1-1i]")
  T.eq(tostring(qd.matrix { { 1, 2 } }), "qd.Matrix(1x2, real):\n  1  2")
  T.eq(tostring(qd.rng(5)), "qd.Rng(seed 5, 0 draws)")
  local fs, fd, fe, fv = qd.state(1), qd.dm(1), qd.ensemble(1, 1), qd.vector(1)
  fs:free(); fd:free(); fe:free(); fv:free()
  T.eq(tostring(fs), "qd.State (freed)"); T.eq(tostring(fd), "qd.DensityMatrix (freed)")
  T.eq(tostring(fe), "qd.Ensemble (freed)"); T.eq(tostring(fv), "qd.Vector (freed)")
end)

T.test("help", function()
  T.eq(help, qd.help, "help is a global")
  local top = helptext()
  T.ok(has(top, "qubit 0 is the most significant bit"), "overview")
  -- constructors and functions: one paragraph naming the call
  local hs = helptext(qd.state)
  T.ok(hs:sub(1, 30) == "qd.state(n [, bits]) -> qd.Sta", hs)
  T.ok(has(hs, "qd.state.from(amps [, {normalize=}])"))
  T.ok(has(helptext(qd.state.from), "qd.state.from(amps [, {normalize=}]) -> qd.State"))
  T.ok(has(helptext(qd.ensemble), "qd.ensemble(n, N) -> qd.Ensemble"))
  T.ok(has(helptext(qd.ensemble.haar), "qd.ensemble.haar(n, N [, rng])"))
  T.ok(has(helptext(qd.ensemble.from), "qd.ensemble.from{states}"))
  T.ok(has(helptext(qd.load_npy), "nil, message"))
  -- every foundation function of qd has an entry
  for _, name in ipairs { "state", "haar_state", "dm", "maximally_mixed", "ensemble", "vector", "matrix",
                          "rng", "run_rng", "set_seed", "kron", "fidelity", "trace_distance", "purity",
                          "entropy", "load_npy", "save_ensembles", "gates", "gate_matrix", "set_threads",
                          "threads", "blas_info", "clock", "type" } do
    local t = helptext(qd[name])
    T.ok(has(t, "qd." .. name) and not has(t, "no documentation"), "help(qd." .. name .. "): " .. t:sub(1, 50))
  end
  -- objects: their type's paragraph and the list of methods
  local so = helptext(qd.state(2))
  T.ok(so:sub(1, 10) == "qd.State: ", so:sub(1, 20))
  T.ok(has(so, "qubit 0 = most"), "conventions in the paragraph")
  -- methods, then gates, wrapped over several lines
  local methods = so:match("methods: (.*)\n  help%(")
  methods = methods and methods:gsub("gates:", " "):gsub("%s+", " ")
  T.ok(methods ~= nil, "methods listed")
  for _, m in ipairs { "measure", "probs", "expect", "ptrace", "embed", "kron", "unitary", "rx", "ccx", "save_npy", "free" } do
    T.ok(has(" " .. methods .. " ", " " .. m .. " "), "State method listed: " .. m)
  end
  T.ok(has(helptext(qd.dm(1)), "qd.DensityMatrix: a mixed state"))
  local eh = helptext(qd.ensemble(1, 2))
  T.ok(has(eh, "qd.Ensemble: N pure states") and has(eh, "overlaps") and has(eh, "mean_dm"))
  T.ok(has(helptext(qd.vector(1)), "qd.Vector:")); T.ok(has(helptext(qd.matrix(1, 1)), "qd.Matrix:"))
  T.ok(has(helptext(qd.rng(1)), "qd.Rng:"))
  -- names: methods and gates
  T.ok(has(helptext("measure"), "s:measure(qubits [, rng] [, {keep=true}])"))
  T.ok(has(helptext("qd.State:measure"), "keep=false leaves s unchanged and returns a new"))
  local rx = helptext("rx")
  T.ok(has(rx, "obj:rx(q0, theta) -> obj") and has(rx, "exp(-i theta X/2)"), rx)
  T.ok(has(helptext("crx"), "obj:crx(q0, q1, theta)"))
  T.ok(has(helptext("u"), "obj:u(q0, theta1, theta2, theta3)"))
  T.ok(has(helptext("unitary"), "obj:unitary(U, {q1, ..., qk})"))
  for _, m in ipairs { "probs", "sample", "project", "expect", "embed", "ptrace", "schmidt_rank",
                       "overlaps", "mean_dm", "save_npy", "free", "normalize", "inner", "amp" } do
    T.ok(not has(helptext(m), "no documentation"), "help('" .. m .. "')")
  end
  T.ok(has(helptext(help), "help(x): print the documentation of x"), "help(help)")
  T.eq(helptext("no_such_thing"), "no documentation for no_such_thing; help() shows where to start, help(qd) lists the library")
  T.eq(helptext(12), "no documentation for 12; help() shows where to start, help(qd) lists the library")
end)

T.test("qd.type", function()
  T.eq(qd.type(qd.state(1)), "qd.State"); T.eq(qd.type(qd.dm(1)), "qd.DensityMatrix")
  T.eq(qd.type(qd.ensemble(1, 1)), "qd.Ensemble"); T.eq(qd.type(qd.vector(1)), "qd.Vector")
  T.eq(qd.type(qd.matrix(1, 1)), "qd.Matrix"); T.eq(qd.type(qd.rng(1)), "qd.Rng")
  local f = qd.state(1)
  f:free()
  T.eq(qd.type(f), "qd.State", "a freed object keeps its type")
  T.eq(qd.type(1), "number"); T.eq(qd.type("s"), "string"); T.eq(qd.type(nil), "nil")
  T.eq(qd.type({}), "table"); T.eq(qd.type(print), "function"); T.eq(qd.type(io.stdout), "userdata")
  T.eq(qd.type(setmetatable({}, { __name = "other" })), "table", "foreign __name ignored")
  T.eq(qd.type(qd.state), "table", "qd.state is a callable table")
  -- require "qd" is the same module as the global
  T.ok(rawequal(require "qd", qd), "require 'qd' returns the global qd")
  T.eq(type(qd.version), "string"); T.eq(qd.max_qubits, 60)
  T.ok(type(qd.blas_info()) == "string" and #qd.blas_info() > 0)
  T.ok(qd.threads() >= 1)
  local t0 = qd.clock()
  T.ok(type(t0) == "number" and qd.clock() >= t0, "monotonic clock")
end)

-- the README's ten lines run as printed there
T.test("README example", function()
  local s = qd.state(3):h(0):cx(0, 1):cx(1, 2)
  T.eq(tostring(s), "qd.State(3 qubits): 0.7071|000> + 0.7071|111>")
  T.near(s:expect("ZZI"), 1, 1e-12)
  T.eq(tostring(s:probs({ 0 })), "qd.Vector(2, real): [0.5, 0.5]")
  local rng = qd.rng(7)
  local E = qd.ensemble.haar(2, 100, rng)
  E:ry(0, rng:uniform(0, math.pi, 100))
  local F = E:overlaps()
  local r, c = F:shape()
  T.eq(r, 100); T.eq(c, 100)
  local outcomes, p, post = E:measure({ 0 }, rng, { keep = false })
  T.eq(#outcomes, 100); T.eq(#p, 100); T.eq(post.n, 1); T.eq(#post, 100)
  T.near(qd.fidelity(qd.dm(s):ptrace({ 0 }), qd.maximally_mixed(1)), 1, 1e-12)
end)
