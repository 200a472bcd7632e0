-- files.lua — the file fuzzers (issue 10): damaged .npy files for qd.load_npy (every
-- kind), OpenQASM 2/3 text for qd.circuit.from_qasm, JSON run records and checkpoints
-- for qd.json.decode, quddpm.load_checkpoint and qd.optim.restore, and --resume
-- directories with a damaged checkpoint.json for an example run in a subprocess.
-- Every reader must return its result or `nil, message`, or raise a Lua error with a
-- non-empty message; a crash kills the process (run.sh sees it). A resumed run must
-- exit 0, 1 or 2 (never a signal or a sanitizer's code) and, when it fails, leave the
-- directory's other files as they were.
--
--   qd tests/fuzz/files.lua --seed S --seconds T [--files N] [--corpus DIR] [--resume-runs K]
--
-- --corpus DIR holds fwd/ and ckpt/, the outputs of
--   qd examples/01_quddpm_forward.lua --small --quiet --out DIR/fwd
--   qd examples/quddpm_cluster.lua --small --quiet --stop-after 1 --out DIR/ckpt
-- (made here, under the current directory, when not given). Before each input
-- "file #k: <reader> <file> (<mutation>)" goes to the log (fuzz-files.log), flushed, and
-- the input itself to last-input.<ext>, so the last line and that file name the culprit.
-- Ends with "files: seed=S files=K ok=O nil=M errors=E resumes=R bad=B"; exits 3 on a bad
-- result (a non-string error, a resumed run killed by a signal, a damaged directory).
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local L = dofile(dir .. "/lib.lua")
local json = require "qd.json"
local quddpm = require "qd.protocols.quddpm"
local fmt = string.format

local o = { seed = 1, seconds = 10, files = math.huge, corpus = "", log = "fuzz-files.log",
            ["resume-runs"] = 2, limit = 5 }
do
  local i = 1
  while i <= #arg do
    local k = arg[i]:match("^%-%-(.*)$")
    if k and o[k] ~= nil and arg[i + 1] then
      o[k] = type(o[k]) == "number" and assert(tonumber(arg[i + 1]), "number expected") or arg[i + 1]
      i = i + 2
    else
      io.stderr:write("files.lua: bad argument " .. arg[i] .. "\n"); os.exit(2)
    end
  end
end
if o.files < math.huge and not table.concat(arg, " "):find("--seconds", 1, true) then o.seconds = math.huge end
math.randomseed(o.seed)
local R = math.random
local function pick(t) return t[R(1, #t)] end
local function chance(p) return R() < p end
qd.set_threads(1)

-- the qd binary and the repository (for the examples): arg[-k] is the interpreter
local QD = arg[-1]
for i = -1, -10, -1 do if arg[i] and not arg[i]:match("^%-") then QD = arg[i] end end
local ROOT = dir:gsub("/?tests/fuzz$", "")
if ROOT == "" then ROOT = "." end
local function sh(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function readall(p) local f = io.open(p, "rb"); if not f then return nil end local s = f:read("a"); f:close(); return s end
local function writeall(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close() end

-- ---------------------------------------------------------------- byte mutations
local function bytemut(s)
  local k = R(1, 8)
  local n = #s
  if n == 0 then return string.char(R(0, 255)), "one byte" end
  local i = R(1, n)
  if k == 1 then return s:sub(1, R(0, n - 1)), "truncated" end
  if k == 2 then return s:sub(1, i - 1) .. string.char(R(0, 255)) .. s:sub(i + 1), "byte " .. i .. " changed" end
  if k == 3 then local b = s:byte(i) ~ (1 << R(0, 7)); return s:sub(1, i - 1) .. string.char(b) .. s:sub(i + 1), "bit flip at " .. i end
  if k == 4 then return s:sub(1, i - 1) .. s:sub(i + R(1, 16)), "bytes deleted at " .. i end
  if k == 5 then local j = R(i, n); return s:sub(1, j) .. s:sub(i, j) .. s:sub(j + 1), "range duplicated" end
  if k == 6 then return s:sub(1, i - 1) .. pick { "\0", "\255", "\192\128", "\237\160\128", "\n", "\\", '"' } .. s:sub(i), "byte inserted at " .. i end
  if k == 7 then return s .. s:sub(1, R(1, n)), "garbage appended" end
  return s:sub(1, i - 1) .. string.rep(s:sub(i, i), R(2, 5000)) .. s:sub(i + 1), "byte repeated at " .. i
end

-- ---------------------------------------------------------------- .npy
-- npy(descr, fortran, shape, data [, version, header_len_fix]) builds a file by hand, so
-- the header can lie about the data.
local function npy(descr, fortran, shape, data, version, extra)
  version = version or 1
  local hdr = fmt("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }%s", descr,
    fortran and "True" or "False", shape, extra or "")
  local lenbytes = version == 1 and 2 or 4
  local pre = 6 + 2 + lenbytes
  local pad = (64 - (pre + #hdr + 1) % 64) % 64
  hdr = hdr .. string.rep(" ", pad) .. "\n"
  local len = version == 1 and string.pack("<I2", #hdr) or string.pack("<I4", #hdr)
  return "\147NUMPY" .. string.char(version, 0) .. len .. hdr .. data
end
local function doubles(k, f) local t = {} for i = 1, k do t[i] = string.pack("<d", f and f(i) or R()) end return table.concat(t) end
local KINDS = { "state", "ensemble", "dm", "vector", "matrix", "ensembles" }
local NPY_BASE = {}
local function npy_corpus()
  local n = 2
  local list = {
    { qd.haar_state(n, qd.rng(1)), "state" }, { qd.ensemble.haar(n, 3, qd.rng(2)), "ensemble" },
    { qd.dm(qd.haar_state(n, qd.rng(3))), "dm" }, { qd.rng(4):uniform(0, 1, 5), "vector" },
    { qd.ensemble.haar(1, 2, qd.rng(5)):overlaps(qd.ensemble.haar(1, 3, qd.rng(6))), "matrix" },
  }
  for i, e in ipairs(list) do
    e[1]:save_npy("base.npy")
    NPY_BASE[#NPY_BASE + 1] = { readall("base.npy"), e[2], "qd-written " .. e[2] }
  end
  qd.save_ensembles("base.npy", { qd.ensemble.haar(1, 2, qd.rng(7)), qd.ensemble.haar(1, 2, qd.rng(8)) })
  NPY_BASE[#NPY_BASE + 1] = { readall("base.npy"), "ensembles", "qd-written ensembles" }
  -- hand-made: every dtype, order and version, shapes that lie
  local hand = {
    { "<c16", false, "(4,)", doubles(8) }, { ">c16", false, "(4,)", doubles(8) }, { "<c8", true, "(2, 2)", doubles(4) },
    { "<f8", false, "(3,)", doubles(3) }, { "<f4", false, "(4,)", doubles(2) }, { "<f2", false, "(4,)", doubles(1) },
    { "|b1", false, "(8,)", "\1\0\1\0\1\0\1\0" }, { "<i8", false, "(2,)", doubles(2) }, { "|u1", false, "(4,)", "abcd" },
    { "<c16", true, "(2, 2)", doubles(8) }, { "<c16", false, "(2, 2, 2)", doubles(16) }, { "<c16", false, "()", doubles(2) },
    { "<c16", false, "(1, 4)", doubles(8) }, { "<c16", false, "(0, 4)", "" }, { "<c16", false, "(4, 0)", "" },
    { "<c16", false, "(4,)", doubles(3) }, { "<c16", false, "(99999999999, 4)", doubles(8) },
    { "<c16", false, "(4611686018427387904, 4)", doubles(8) }, { "<c16", false, "(-1,)", doubles(2) },
    { "<c16", false, "(18446744073709551615,)", "" }, { "<c16", false, "(4294967296, 4294967296)", "" },
    { "|O", false, "(1,)", doubles(1) }, { "<U3", false, "(1,)", "abcabcabcabc" }, { "<M8[s]", false, "(1,)", doubles(1) },
    { "[('a', '<f8')]", false, "(1,)", doubles(1) }, { "<c32", false, "(4,)", doubles(16) }, { "<f16", false, "(2,)", doubles(4) },
    { "<c16", false, "(4,)", doubles(8), 2 }, { "<c16", false, "(4,)", doubles(8), 3 }, { "<c16", false, "(4,)", doubles(8), 9 },
    { "<c16", false, "(4,)", doubles(8, function() return 0 / 0 end) },
    { "<c16", false, "(4,)", doubles(8, function() return math.huge end) },
    { "<f8", false, "(2, 2, 2, 2, 2)", doubles(32) }, { "<f8", false, "(1, 1, 4)", doubles(4) },
    { "<c16", false, "(2, 2, 3)", doubles(24) }, { "<c16", false, "(2,)", doubles(4), 1, "'extra': 1, " },
  }
  for _, h in ipairs(hand) do
    NPY_BASE[#NPY_BASE + 1] = { npy(h[1], h[2], h[3], h[4], h[5], h[6]), nil, fmt("hand-made %s %s %s v%d", h[1], h[2] and "F" or "C", h[3], h[5] or 1) }
  end
end
local HDR_SUBST = {
  { "'descr': '[^']*'", { "'descr': '<c16'", "'descr': '>f8'", "'descr': 'c16'", "'descr': ''", "'descr': '<c'", "'descr': 5", "'descr': '<c1600000000000000000'" } },
  { "'shape': %b()", { "'shape': ()", "'shape': (,)", "'shape': (4,,)", "'shape': (-4,)", "'shape': (4.5,)", "'shape': (9223372036854775807,)",
      "'shape': (99999999999999999999999,)", "'shape': (2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2)",
      "'shape': 4", "'shape': (4", "'shape': [4]", "'shape': (0x4,)", "'shape': (1, 4)", "'shape': (4, 1)", "'shape': (1, 1, 4)" } },
  { "'fortran_order': %a+", { "'fortran_order': True", "'fortran_order': False", "'fortran_order': 1", "'fortran_order': Tru" } },
  { "^\147NUMPY..", { "\147NUMPY\1\0", "\147NUMPY\2\0", "\147NUMPY\3\0", "\147NUMPY\0\0", "\147NUMPX\1\0", "NUMPY\1\0" } },
}
local function npy_mutate(s)
  local k = R(1, 5)
  if k <= 2 then
    local sub = pick(HDR_SUBST)
    local rep = pick(sub[2])
    local out, c = s:gsub(sub[1], function() return rep end, 1)
    if c > 0 then return out, "header " .. rep:gsub("[^%g ]", "?") end
  end
  if k == 3 and #s > 10 then   -- lying header length
    local v = s:byte(7)
    local len = pick { 0, 1, 9, 0xffff, #s, #s - 10, 118, 119, 120 }
    if v == 1 then return s:sub(1, 8) .. string.pack("<I2", len % 65536) .. s:sub(11), "header length " .. len end
    return s:sub(1, 8) .. string.pack("<I4", len) .. s:sub(13), "header length " .. len
  end
  return bytemut(s)
end

-- ---------------------------------------------------------------- QASM
local QASM_BASE = {}
local function qasm_corpus()
  local cs = { qd.ansatz.hardware_efficient(2, 1), qd.ansatz.quddpm(1, 1, { ancillas = 1 }),
    qd.ansatz.strongly_entangling(3, 1), qd.circuit(3):h(0):cx(0, 1):ccx(0, 1, 2):rzz(1, 2, "a"):measure({ 0, 1 }):reset({ 2 }) }
  for _, c in ipairs(cs) do
    QASM_BASE[#QASM_BASE + 1] = c:to_qasm(3)
    QASM_BASE[#QASM_BASE + 1] = c:to_qasm(2, qd.vector(c:nparams()))
  end
  QASM_BASE[#QASM_BASE + 1] = [[
OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
creg c[3];
gate majority a,b,c { cx c,b; cx c,a; ccx a,b,c; }
gate g2(theta) a { u3(theta, pi/2, -pi/4) a; }
majority q[0],q[1],q[2];
g2(0.3*pi) q;
u1(pi) q[0]; u2(0, pi) q[1]; cu1(pi/8) q[0], q[2];
barrier q;
measure q -> c;
reset q[1];
]]
  QASM_BASE[#QASM_BASE + 1] = [[
OPENQASM 3.0;
include "stdgates.inc";
input float[64] theta;
input angle phi;
qubit[2] q;
bit[2] b;
// a comment
/* block
   comment */
U(theta, phi, 0) q[0];
cphase(2*theta + 0.1) q[0], q[1];
phase(-phi/2) q[1];
b[0] = measure q[0];
b = measure q;
pragma qd discard q[1]
]]
end
local QASM_TOKENS = { "qreg", "creg", "qubit", "bit", "gate", "input", "float[64]", "angle", "measure", "reset",
  "barrier", "->", "=", "(", ")", "{", "}", "[", "]", ";", ",", "pi", "-", "+", "*", "/", "^", "1e999", "-1e999",
  "0", "99999999999999999999", "q[4294967296]", "q[-1]", "q[2147483647]", "sin(", "cos(1)", "sqrt(-1)", "ln(0)",
  "OPENQASM", "3.0", "2.0", "include", "\"stdgates.inc\"", "U", "CX", "cx", "h", "rzz", "u3", "theta", "nan",
  "\0", "\255", "//", "/*", "\"", "gate g a { g a; }", "qubit[100000] r;", "qreg r[0];", "qubit[0] z;", "pragma" }
local function qasm_tokens(s)
  local t = {}
  for tok in s:gmatch("%s*([%w_%.%[%]]+%s*)") do t[#t + 1] = tok end
  return t
end
local function qasm_mutate(s)
  local k = R(1, 6)
  if k <= 3 then
    -- token-level: split into tokens and separators, edit one token
    local parts = {}
    for sep, tok in s:gmatch("([^%w_%.]*)([%w_%.]*)") do parts[#parts + 1] = sep; parts[#parts + 1] = tok end
    if #parts < 2 then return bytemut(s) end
    local i = R(1, #parts)
    local what
    if k == 1 then parts[i] = pick(QASM_TOKENS); what = "token replaced"
    elseif k == 2 then table.remove(parts, i); what = "token deleted"
    else table.insert(parts, i, " " .. pick(QASM_TOKENS) .. " "); what = "token inserted" end
    return table.concat(parts), what
  end
  if k == 4 then   -- a line duplicated or dropped
    local lines = {}
    for l in (s .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
    local i = R(1, #lines)
    if chance(0.5) then table.remove(lines, i); return table.concat(lines, "\n"), "line deleted"
    else table.insert(lines, i, lines[R(1, #lines)]); return table.concat(lines, "\n"), "line duplicated" end
  end
  if k == 5 then return s:gsub("%d+", function(d) if chance(0.3) then return pick { "0", "-1", "4294967296", "99999999999999999999", "1e308", "2" } end end), "numbers changed" end
  return bytemut(s)
end

-- ---------------------------------------------------------------- JSON
local JSON_BASE = {}
local corpus = o.corpus
local function make_corpus()
  if corpus == "" then
    corpus = "corpus"
    os.execute("rm -rf corpus && mkdir -p corpus")
    local c1 = fmt("%s %s --small --quiet --out corpus/fwd >/dev/null 2>&1", sh(QD), sh(ROOT .. "/examples/01_quddpm_forward.lua"))
    local c2 = fmt("%s %s --small --quiet --stop-after 1 --out corpus/ckpt >/dev/null 2>&1", sh(QD), sh(ROOT .. "/examples/quddpm_cluster.lua"))
    os.execute(c1); os.execute(c2)
  end
  for _, p in ipairs { "/fwd/run.json", "/ckpt/run.json", "/ckpt/checkpoint.json", "/fwd/checkpoint.json" } do
    local s = readall(corpus .. p)
    if s then JSON_BASE[#JSON_BASE + 1] = { s, p } end
  end
  JSON_BASE[#JSON_BASE + 1] = { json.encode(qd.optim.checkpoint { x = qd.vector { 1, 0 / 0, -0.0 }, t = 3, m = { math.huge } }), "optim checkpoint" }
  JSON_BASE[#JSON_BASE + 1] = { '{"a": [1, 2.5e-300, -0, "\\u00e9\\ud83d\\ude00", {"b": null}], "c": true}', "small" }
end
local JSON_TOKENS = { "1e999", "-1e999", "NaN", "Infinity", "-0", "0.0000000000000000000001", "123456789012345678901234567890",
  "\"\\ud800\"", "\"\\u0000\"", "\"\\uZZZZ\"", "\"\\", "[", "]", "{", "}", ",", ":", "null", "true", "tru", "\"\"",
  string.rep("[", 100000), string.rep("{\"a\":", 10000), "\"" .. string.rep("x", 100000) .. "\"", "{\"__vector\": 5}",
  "{\"__float\": \"bogus\"}", "{\"__vector\": [1, \"x\"]}", "9223372036854775808", "-9223372036854775809", "1.5", "[]", "{}" }
local function json_mutate(s)
  local k = R(1, 6)
  if k <= 2 then   -- replace one value-ish token
    local spots = {}
    for pos, tok in s:gmatch("()([%-%w%.%+]+)") do spots[#spots + 1] = { pos, tok } end
    if #spots > 0 then
      local sp = pick(spots)
      return s:sub(1, sp[1] - 1) .. pick(JSON_TOKENS) .. s:sub(sp[1] + #sp[2]), "token replaced"
    end
  end
  if k == 3 then   -- drop or duplicate a key
    local spots = {}
    for pos, key in s:gmatch('()("[%w_]+"%s*:)') do spots[#spots + 1] = { pos, key } end
    if #spots > 0 then
      local sp = pick(spots)
      if chance(0.5) then return s:sub(1, sp[1] - 1) .. '"renamed_' .. sp[2]:sub(2), "key renamed" end
      return s:sub(1, sp[1] - 1) .. sp[2] .. ' null, ' .. s:sub(sp[1]), "key duplicated"
    end
  end
  if k == 4 then   -- numbers to huge/negative/fractional
    return s:gsub("(%d+)", function(d) if chance(0.05) then return pick { "0", "-1", "1e308", "0.5", "99999999999", "-0" } end end), "numbers changed"
  end
  return bytemut(s)
end

-- ---------------------------------------------------------------- the loop
local log = assert(io.open(o.log, "w"))
local deadline = math.huge
local TIMEOUT = "fuzz: reader exceeded the time bound"
debug.sethook(function() if os.clock() > deadline then error(TIMEOUT, 2) end end, "", 1000)
local st = { files = 0, ok = 0, nilmsg = 0, errors = 0, resumes = 0, bad = 0, hangs = 0 }

local function check(label, ok, a, b)
  -- ok, a, b: pcall results of a reader that returns value | nil, message
  if not ok then
    st.errors = st.errors + 1
    if type(a) == "string" and a:find(TIMEOUT, 1, true) then st.hangs = st.hangs + 1; print("HANG " .. label); return end
    if type(a) ~= "string" or a == "" then st.bad = st.bad + 1; print(fmt("BAD error value (%s) from %s", type(a), label)) end
    return
  end
  if a == nil then
    st.nilmsg = st.nilmsg + 1
    if type(b) ~= "string" or b == "" then st.bad = st.bad + 1; print("BAD nil without a message from " .. label) end
  else st.ok = st.ok + 1 end
end
local function run(label, f, ...)
  deadline = os.clock() + o.limit
  local r = table.pack(pcall(f, ...))
  deadline = math.huge
  check(label, r[1], r[2], r[3])
  return r
end
local function logline(s) log:write(s, "\n"); log:flush() end

npy_corpus(); qasm_corpus(); make_corpus()
local resumes_left = o["resume-runs"]
local t_end = qd.clock() + o.seconds
local k = 0
while k < o.files and qd.clock() < t_end do
  k = k + 1
  local which = R(1, 10)
  if which <= 4 then
    local base = pick(NPY_BASE)
    local data, what = base[1], "unchanged"
    if chance(0.9) then data, what = npy_mutate(data) end
    if chance(0.2) then local d2, w2 = npy_mutate(data); data, what = d2, what .. ", " .. w2 end
    writeall("last-input.npy", data)
    local kind = chance(0.2) and nil or pick(KINDS)
    logline(fmt("file #%d: qd.load_npy(\"last-input.npy\", %s) -- %s, %s", k, kind and ("%q"):format(kind) or "nil", base[3], what))
    st.files = st.files + 1
    local r = run("load_npy " .. tostring(kind) .. " file #" .. k, qd.load_npy, "last-input.npy", kind)
    if r[1] and r[2] ~= nil and chance(0.5) then pcall(tostring, r[2]) end
  elseif which <= 6 then
    local text, what = pick(QASM_BASE), "unchanged"
    if chance(0.95) then text, what = qasm_mutate(text) end
    if chance(0.3) then local t2, w2 = qasm_mutate(text); text, what = t2, what .. ", " .. w2 end
    writeall("last-input.qasm", text)
    logline(fmt("file #%d: qd.circuit.from_qasm(io.open(\"last-input.qasm\"):read(\"a\")) -- %s", k, what))
    st.files = st.files + 1
    local r = run("from_qasm file #" .. k, qd.circuit.from_qasm, text)
    local c = r[1] and r[2]
    if qd.type(c) == "qd.Circuit" then   -- what it read must be a usable circuit
      logline(fmt("file #%d: (the circuit read) :to_qasm(), :draw(), :run(qd.state(n))", k))
      pcall(c.to_qasm, c); pcall(c.draw, c)
      if c.n <= 8 and c:nparams() <= 64 then
        deadline = os.clock() + o.limit
        local ok, e = pcall(c.run, c, qd.state(c.n), qd.vector(math.max(c:nparams(), 1)):copy())
        deadline = math.huge
      end
    end
  elseif which <= 9 then
    local base = pick(JSON_BASE)
    local text, what = base[1], "unchanged"
    if chance(0.95) then text, what = json_mutate(text) end
    if chance(0.3) then local t2, w2 = json_mutate(text); text, what = t2, what .. ", " .. w2 end
    writeall("last-input.json", text)
    st.files = st.files + 1
    logline(fmt("file #%d: require(\"qd.json\").decode(io.open(\"last-input.json\"):read(\"a\")) -- %s %s", k, base[2], what))
    local r = run("json.decode file #" .. k, json.decode, text)
    local doc = r[1] and r[2]
    if type(doc) == "table" then
      logline(fmt("file #%d: qd.optim.restore(decoded) and quddpm.load_checkpoint of it", k))
      if type(doc.state) == "table" then run("optim.restore file #" .. k, qd.optim.restore, doc.state) end
      if type(doc.settings) == "table" and doc.settings.schedule ~= nil then
        run("schedule.from file #" .. k, qd.schedule.from, doc.settings.schedule)
      end
      os.execute("rm -rf ck && mkdir -p ck")
      writeall("ck/checkpoint.json", text)
      run("load_checkpoint file #" .. k, quddpm.load_checkpoint, "ck")
    end
  elseif resumes_left > 0 and readall(corpus .. "/ckpt/checkpoint.json") then
    -- a resumed example run on a copy of the checkpointed run with checkpoint.json damaged
    resumes_left = resumes_left - 1
    local text, what = json_mutate(readall(corpus .. "/ckpt/checkpoint.json"))
    os.execute("rm -rf rs && cp -r " .. sh(corpus .. "/ckpt") .. " rs")
    writeall("rs/checkpoint.json", text)
    local before = {}
    local p = io.popen("cd rs && ls -A")
    for f in p:lines() do before[f] = readall("rs/" .. f) end
    p:close()
    st.files = st.files + 1; st.resumes = st.resumes + 1
    local cmd = fmt("%s %s --small --quiet --resume rs >resume.out 2>&1", sh(QD), sh(ROOT .. "/examples/quddpm_cluster.lua"))
    logline(fmt("file #%d: cd %s && %s -- checkpoint.json %s (copy in rs.bad/)", k, os.getenv("PWD") or ".", cmd, what))
    debug.sethook()
    local ok, how, code = os.execute("timeout -s KILL 300 " .. cmd)
    debug.sethook(function() if os.clock() > deadline then error(TIMEOUT, 2) end end, "", 1000)
    local out = readall("resume.out") or ""
    local status_ok = how == "exit" and (code == 0 or code == 1 or code == 2)
    if not status_ok then
      st.bad = st.bad + 1
      os.execute("rm -rf rs.bad && cp -r rs rs.bad")
      print(fmt("BAD resumed run ended with %s %s (checkpoint.json %s): %s\n%s", how, tostring(code), what, cmd, out:sub(-2000)))
    elseif code ~= 0 then
      -- a failed resume must leave the directory as it was
      for f, content in pairs(before) do
        if readall("rs/" .. f) ~= content then
          st.bad = st.bad + 1
          print(fmt("BAD failed resume (exit %d) changed rs/%s (checkpoint.json %s)", code, f, what))
        end
      end
      local p2 = io.popen("cd rs && ls -A")
      for f in p2:lines() do
        if before[f] == nil then st.bad = st.bad + 1; print(fmt("BAD failed resume (exit %d) left a new file rs/%s", code, f)) end
      end
      p2:close()
    end
  end
  if k % 64 == 0 then collectgarbage() end
end
debug.sethook()
print(fmt("files: seed=%d files=%d ok=%d nil=%d errors=%d resumes=%d hangs=%d bad=%d",
  o.seed, st.files, st.ok, st.nilmsg, st.errors, st.resumes, st.hangs, st.bad))
log:close()
os.exit((st.bad == 0 and st.hangs == 0) and 0 or 3)
