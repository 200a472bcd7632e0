-- api.lua — the API fuzzer (issue 10). Walks the qd table, qd.json and every type's
-- methods and metamethods, and calls them with seeded arguments: a valid argument list
-- from a per-function generator (below, SPEC), then one or two mutations (wrong types,
-- other types' objects, freed objects, lying proxy tables, NaN/inf, huge/negative/
-- off-by-one numbers, long strings, deep tables, callbacks that free or resize what is in
-- use). Every call must succeed or raise a Lua error with a non-empty string message;
-- a crash or sanitizer report kills the process (the driver, run.sh, sees it).
--
--   qd tests/fuzz/api.lua --seed S --seconds T [--calls N] [--log FILE] [--limit SEC]
--
-- Before each call "call #k: <Lua expression>" goes to the log (default fuzz-api.log in
-- the current directory) and is flushed, so the last line names the call that crashed
-- or hung; the expression uses the helpers of lib.lua (MT, FREED, PROXY, DEEP). A run is
-- a function of its seed: `--seed S --calls k` replays it up to call k. Files are written
-- only under the current directory (run it in a temporary one; run.sh does).
-- Ends with one line "api: seed=S calls=K ok=O errors=E raw=R hangs=H bad=B"; exits 3
-- if a call hung (took more than --limit CPU seconds in Lua code) or raised a bad error.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local L = dofile(dir .. "/lib.lua")
local json = require "qd.json"
local MT, FREED, PROXY, DEEP, numsrc = L.MT, L.FREED, L.PROXY, L.DEEP, L.numsrc

-- ---------------------------------------------------------------- options
local o = { seed = 1, seconds = 10, calls = math.huge, log = "fuzz-api.log", limit = 3,
            verbose = false, skip_known = true }
do
  local i = 1
  while i <= #arg do
    local k = arg[i]:match("^%-%-(.*)$")
    if k == "verbose" then o.verbose = true; i = i + 1
    elseif k == "no-skip" then o.skip_known = false; i = i + 1
    elseif k and o[k] ~= nil and arg[i + 1] then
      o[k] = type(o[k]) == "number" and assert(tonumber(arg[i + 1]), "number expected") or arg[i + 1]
      i = i + 2
    else
      io.stderr:write("api.lua: bad argument " .. arg[i] .. "\n"); os.exit(2)
    end
  end
end
if o.calls < math.huge and not table.concat(arg, " "):find("--seconds", 1, true) then o.seconds = math.huge end
math.randomseed(o.seed)
local R = math.random
local function pick(t) return t[R(1, #t)] end
local function chance(p) return R() < p end
local fmt = string.format
qd.set_threads(1)

-- ---------------------------------------------------------------- argument records
-- A leaf {v = value, d = "Lua source"}; a table node {items = {rec…}, fields = {{k, rec}…},
-- proxy = spec}: realised into a fresh table (or PROXY) just before the call.
local function V(v, d) return { v = v, d = d } end
local function strsrc(s)
  return '"' .. s:gsub('[%c\128-\255"\\]', function(c) return fmt("\\%03d", c:byte()) end) .. '"'
end
local function N(x) return V(x, numsrc(x)) end
local function S(s) return V(s, strsrc(s)) end
local function T(items, fields)
  local f = {}
  for _, k in ipairs(fields and (function() local ks = {} for key in pairs(fields) do ks[#ks + 1] = key end
    table.sort(ks); return ks end)() or {}) do f[#f + 1] = { k = k, r = fields[k] } end
  return { items = items or {}, fields = f }
end
local function istable(r) return r.items ~= nil end

local function specsrc(s)
  local p = {}
  for _, k in ipairs { "len", "after", "junk" } do
    local v = s[k]
    if v ~= nil then
      p[#p + 1] = k .. " = " .. (type(v) == "number" and numsrc(v) or type(v) == "string" and strsrc(v) or tostring(v))
    end
  end
  return "{" .. table.concat(p, ", ") .. "}"
end

local realize, desc
function realize(r)
  if not istable(r) then return r.v end
  local t = {}
  for i, it in ipairs(r.items) do t[i] = realize(it) end
  for _, f in ipairs(r.fields) do t[f.k] = realize(f.r) end
  if r.proxy then return PROXY(t, r.proxy) end
  return t
end
function desc(r)
  if not istable(r) then return r.d end
  local p = {}
  for _, it in ipairs(r.items) do p[#p + 1] = desc(it) end
  for _, f in ipairs(r.fields) do
    local k = f.k
    p[#p + 1] = (type(k) == "string" and k:match("^[%a_][%w_]*$") and k or "[" ..
      (type(k) == "number" and numsrc(k) or strsrc(tostring(k))) .. "]") .. " = " .. desc(f.r)
  end
  local s = "{" .. table.concat(p, ", ") .. "}"
  if r.proxy then s = "PROXY(" .. s .. ", " .. specsrc(r.proxy) .. ")" end
  return s
end

-- ---------------------------------------------------------------- callbacks
-- Compiled from source, so the log shows them as they are. Their environment gives A
-- (the arguments of the call being made), F (the function being called), FREE and PROXY.
local CBENV = setmetatable({ FREE = L.FREE, PROXY = PROXY, qd = qd }, { __index = _G })
local function cb(src, valid)
  local env = CBENV
  if valid then env = setmetatable({ VALID = valid.v }, { __index = CBENV }) end
  local f = assert(load("return " .. src, "=callback", "t", env))()
  return V(f, valid and src:gsub("VALID", function() return "(" .. valid.d .. ")" end) or src)
end
local CB_PLAIN = {
  "function() return 0 end",
  "function() error('callback raised') end",
  "function() collectgarbage() collectgarbage() end",
  "function(...) for i = 1, select('#', ...) do FREE((select(i, ...))) end end",
  "function() for i = 1, #A do FREE(A[i]) end return 0 end",
  "function() coroutine.yield() end",
  "function(...) return ... end",
  "function() return 0/0, 0/0 end",
  "function() return {}, {} end",
  "function() return qd.state(1), qd.vector(1) end",
  "function() return string.rep('x', 100) end",
  "function() local t = {} for i = 1, 300 do t[i] = i end return table.unpack(t) end",
  "function() return F(table.unpack(A)) end",
}
local CB_WRAP = {
  "function(...) FREE((...)) return VALID(...) end",
  "function(...) local r = table.pack(VALID(...)) FREE((...)) return table.unpack(r, 1, r.n) end",
  "function(...) local r = table.pack(VALID(...)) for i = 1, r.n do FREE(r[i]) end return table.unpack(r, 1, r.n) end",
  "function(...) collectgarbage() return VALID(...) end",
  "function(...) local r = table.pack(VALID(...)) for i = 1, #A do FREE(A[i]) end return table.unpack(r, 1, r.n) end",
  "function(x, ...) if type(x) == 'table' then x[#x + 1] = 1 end return VALID(x, ...) end",
  "function(x, ...) if type(x) == 'table' then x[#x] = nil end return VALID(x, ...) end",
  "function(...) local a, b = VALID(...) return b, a end",
  "function(...) return (VALID(...)) end",
  "function(...) local r = table.pack(VALID(...)) r[1] = 0/0 return table.unpack(r, 1, r.n) end",
  "function(...) local r = table.pack(VALID(...)) for i = 1, r.n do if type(r[i]) == 'table' then r[i] = PROXY(r[i], {len = -1}) end end return table.unpack(r, 1, r.n) end",
  "function(...) local r = table.pack(VALID(...)) for i = 1, r.n do if type(r[i]) == 'table' then r[i] = PROXY(r[i], {len = 'flip'}) end end return table.unpack(r, 1, r.n) end",
  "function(...) local r = table.pack(VALID(...)) for i = 1, r.n do if type(r[i]) == 'table' then r[i] = PROXY(r[i], {after = 1, junk = 'err'}) end end return table.unpack(r, 1, r.n) end",
  "function(...) local r = table.pack(VALID(...)) return table.unpack(r, 1, r.n), qd.state(1) end",
  "function(...) local r = table.pack(VALID(...)) if r.n >= 2 then r[2] = qd.vector(1) end return table.unpack(r, 1, r.n) end",
}

-- ---------------------------------------------------------------- value generators
local function nq(lo, hi) lo = lo or 1; return chance(0.85) and R(lo, math.max(lo, hi or 3)) or R(lo, math.max(lo, 5)) end
local function seed() return R(1, 999) end
local function rngv() local s = seed(); return V(qd.rng(s), fmt("qd.rng(%d)", s)) end
local function angle() return N((R() * 2 - 1) * 4) end
local function state(n) local s = seed(); return V(qd.haar_state(n, qd.rng(s)), fmt("qd.haar_state(%d, qd.rng(%d))", n, s)) end
local function dm(n)
  if chance(0.3) then return V(qd.maximally_mixed(n), fmt("qd.maximally_mixed(%d)", n)) end
  local s = seed()
  return V(qd.dm(qd.haar_state(n, qd.rng(s))), fmt("qd.dm(qd.haar_state(%d, qd.rng(%d)))", n, s))
end
local function ens(n, cnt) local s = seed(); return V(qd.ensemble.haar(n, cnt, qd.rng(s)), fmt("qd.ensemble.haar(%d, %d, qd.rng(%d))", n, cnt, s)) end
local function reg(n) local k = R(1, 3); if k == 1 then return state(n) elseif k == 2 then return dm(n) else return ens(n, R(1, 6)) end end
local function pure(n) if chance(0.5) then return state(n) end return ens(n, R(1, 6)) end
local function vec(len, cplx)
  local s = seed()
  if cplx then return V(qd.vector(len, { complex = true }), fmt("qd.vector(%d, {complex = true})", len)) end
  return V(qd.rng(s):uniform(0, 1, len), fmt("qd.rng(%d):uniform(0, 1, %d)", s, len))
end
local function rmat(r, c)   -- real r x c with entries in [0, 1]
  local s = seed()
  return V(qd.ensemble.haar(1, r, qd.rng(s)):overlaps(qd.ensemble.haar(1, c, qd.rng(s + 1))),
    fmt("qd.ensemble.haar(1, %d, qd.rng(%d)):overlaps(qd.ensemble.haar(1, %d, qd.rng(%d)))", r, s, c, s + 1))
end
local function unitary(n) local s = seed(); return V(qd.random.unitary(n, qd.rng(s)), fmt("qd.random.unitary(%d, qd.rng(%d))", n, s)) end
local function circ(n)
  local k = R(1, 4)
  if k == 1 then local l = R(1, 2); return V(qd.ansatz.hardware_efficient(n, l), fmt("qd.ansatz.hardware_efficient(%d, %d)", n, l))
  elseif k == 2 then return V(qd.circuit(n):h(0):rx(n - 1):rz(0, "a"), fmt("qd.circuit(%d):h(0):rx(%d):rz(0, \"a\")", n, n - 1))
  elseif k == 3 then return V(qd.circuit(n):ry(0):measure({ n - 1 }), fmt("qd.circuit(%d):ry(0):measure({%d})", n, n - 1))
  else return V(qd.circuit(n), fmt("qd.circuit(%d)", n)) end
end
local function chan(k)
  local c = R(1, 5)
  if c == 1 then return V(qd.channel.depolarizing { p = 0.1, n = k }, fmt("qd.channel.depolarizing{p = 0.1, n = %d}", k))
  elseif c == 2 then return V(qd.channel.reset { n = k }, fmt("qd.channel.reset{n = %d}", k))
  elseif c == 3 then return V(qd.channel.global_depolarizing { lambda = 0.3, n = k }, fmt("qd.channel.global_depolarizing{lambda = 0.3, n = %d}", k))
  elseif c == 4 and k == 1 then return V(qd.channel.amplitude_damping { gamma = 0.2 }, "qd.channel.amplitude_damping{gamma = 0.2}")
  else local s = seed(); return V(qd.channel.unitary(qd.random.unitary(k, qd.rng(s))), fmt("qd.channel.unitary(qd.random.unitary(%d, qd.rng(%d)))", k, s)) end
end
local function pstring(n) local t = {} for i = 1, n do t[i] = pick { "I", "X", "Y", "Z" } end return table.concat(t) end
local function pauli(n)
  if chance(0.5) then local g = R(1, 9) / 10; return V(qd.pauli_sum.tfim(n, g), fmt("qd.pauli_sum.tfim(%d, %s)", n, numsrc(g))) end
  local p = pstring(n)
  return V(qd.pauli_sum(p), fmt("qd.pauli_sum(%q)", p))
end
local function sched(T) T = T or R(1, 5); return V(qd.schedule.linear { T = T, from = 0.1, to = 1 }, fmt("qd.schedule.linear{T = %d, from = 0.1, to = 1}", T)) end
local function bits(n) local t = {} for i = 1, n do t[i] = tostring(R(0, 1)) end return table.concat(t) end
local function qubits(n, k)   -- k distinct qubits of n, as a table node
  local all = {} for i = 0, n - 1 do all[#all + 1] = i end
  for i = #all, 2, -1 do local j = R(1, i); all[i], all[j] = all[j], all[i] end
  local t = {} for i = 1, math.min(k or R(1, n), n) do t[i] = N(all[i]) end
  return T(t)
end
local function numlist(len, f) local t = {} for i = 1, len do t[i] = N(f and f(i) or R()) end return T(t) end
local function anyobj()
  local n = nq()
  return pick { state, dm, ens, function(m) return vec(R(1, 4)) end, function(m) return rmat(2, 2) end,
    function() return rngv() end, circ, function(m) return chan(1) end, pauli, function() return sched() end }(n,
    R(1, 3))
end
local function opts(t) return T(nil, t) end

-- ---------------------------------------------------------------- valid arguments
-- SPEC[name]() returns the argument records of a call that should succeed (mostly).
local SPEC = {}
local GATES = qd.gates()
local function def(names, f) for nm in names:gmatch("%S+") do SPEC[nm] = f end end

def("qd.state", function() local n = nq(); if chance(0.5) then return { N(n) } end return { N(n), S(bits(n)) } end)
def("qd.state.from", function()
  local n = nq(); local t = {}
  for i = 1, 2 ^ n do t[i] = chance(0.5) and N(i == 1 and 1 or 0) or T { N(0), N(0) } end
  if chance(0.3) then return { state(n) } end
  return { T(t) }
end)
def("qd.ensemble", function() return { N(nq()), N(R(1, 6)) } end)
def("qd.ensemble.haar qd.random.ensemble qd.data.random_pure", function() return { N(nq()), N(R(1, 6)), rngv() } end)
def("qd.ensemble.from", function()
  local n = nq()
  if chance(0.3) then local s = seed(); local N_ = R(1, 4)
    return { V(qd.matrix(N_, 2 ^ n, { complex = true }), fmt("qd.matrix(%d, %d, {complex = true})", N_, 2 ^ n)) } end
  local t = {} for i = 1, R(1, 4) do t[i] = state(n) end
  return { T(t) }
end)
def("qd.haar_state qd.random.state qd.random.unitary", function() return { N(nq()), rngv() } end)
def("qd.dm", function() local k = R(1, 3); local n = nq()
  if k == 1 then return { N(n) } elseif k == 2 then return { state(n) } end
  return { V(qd.maximally_mixed(n):matrix(), fmt("qd.maximally_mixed(%d):matrix()", n)) } end)
def("qd.maximally_mixed", function() return { N(nq()) } end)
def("qd.vector", function()
  if chance(0.5) then return { N(R(1, 8)), opts { complex = V(chance(0.5), "true") } } end
  return { T { N(1), N(2), T { N(0), N(1) } } } end)
def("qd.matrix", function()
  if chance(0.5) then return { N(R(1, 4)), N(R(1, 4)), opts { complex = V(true, "true") } } end
  return { T { T { N(1), N(0) }, T { N(0), T { N(0), N(1) } } } } end)
def("qd.rng qd.set_seed", function() return { N(R(0, 1000)) } end)
def("qd.kron qd.fidelity qd.trace_distance qd.superfidelity", function()
  local n = nq(); local a = chance(0.5) and state(n) or dm(n)
  return { a, chance(0.5) and state(n) or dm(n) } end)
def("qd.purity qd.entropy", function() local n = nq(); return { chance(0.5) and state(n) or dm(n) } end)
local NPY = {}   -- files written at start-up (below), for load_npy
def("qd.load_npy", function()
  local f = pick(NPY)
  return { S(f[1]), S(pick { f[2], "state", "ensemble", "dm", "vector", "matrix", "ensembles" }) } end)
def("qd.save_ensembles qd.diffusion.save", function()
  local n = nq(); local c = R(1, 3)
  return { S("out_" .. R(1, 3) .. ".npy"), T { ens(n, c), ens(n, c) } } end)
def("qd.gate_matrix", function()
  local g = pick { "h", "rx", "u", "crz", "rzz", "ccx" }
  local a = { S(g) } for _ = 1, GATES[g].params do a[#a + 1] = angle() end
  return a end)
def("qd.set_threads", function() return { N(R(1, 2)) } end)
def("qd.set_simd", function() return { S(pick { "portable", "avx2", "avx512", "auto" }) } end)
def("qd.type qd.help", function() return { anyobj() } end)
def("qd.random.dm", function() local n = nq()
  return { N(n), rngv(), opts { measure = S(pick { "hs", "bures" }), rank = N(R(1, 2 ^ n)) } } end)
def("qd.random.mixture", function() local n = nq(); local k = R(1, 2 ^ n)
  return { N(n), N(k), rngv(), chance(0.5) and opts { weights = numlist(k, function() return 1 / k end) } or nil } end)
def("qd.random.circuit", function() return { N(nq()), N(R(1, 4)), rngv() } end)
def("qd.random.circuit_states", function() return { N(nq()), N(R(1, 4)), N(R(1, 4)), rngv() } end)
def("qd.schedule.linear qd.schedule.quadratic qd.schedule.geometric qd.schedule.sq_cosine", function()
  local f = { T = N(R(1, 6)), from = N(0.1), to = N(1.0) }
  if chance(0.3) then f.clip = T { N(0.0), N(0.5) } end
  return { opts(f) } end)
def("qd.schedule.cosine", function() return { opts { T = N(R(1, 6)), s = N(0.008), max_beta = N(0.999) } } end)
def("qd.schedule.piecewise", function() return { T { sched(), numlist(R(1, 3)) } } end)
def("qd.schedule.from", function()
  local k = R(1, 3)
  if k == 1 then return { numlist(R(1, 4)) } elseif k == 2 then return { vec(R(1, 4)) } end
  return { sched() } end)
def("qd.diffusion.scramble", function() return { ens(nq(), R(1, 4)), N(R()), rngv() } end)
def("qd.diffusion.forward", function()
  return { ens(nq(), R(1, 4)), sched(R(1, 3)), rngv(), opts { mode = S(pick { "marginal", "trajectory" }) } } end)
def("qd.data.clustered", function() return { N(nq()), N(R(1, 5)), rngv(), opts { eps = N(0.1) } } end)
def("qd.data.circle", function() return { N(R(1, 5)), rngv(), opts { n = N(nq()) } } end)
def("qd.data.noise", function() return { N(R(1, 5)), rngv(), opts { p = N(0.5) } } end)
def("qd.data.random_mixed", function() return { N(nq()), rngv(), opts { measure = S(pick { "hs", "bures", "mixture" }), rank = N(1) } } end)
def("qd.data.bars_and_stripes", function() return { N(R(1, 3)), N(R(1, 3)) } end)
def("qd.data.ghz", function() return { N(nq()), opts { weight = N(0.5), flip = N(0.1) } } end)
def("qd.data.gaussian_mixture", function() return { N(nq()) } end)
def("qd.data.tfim", function() return { N(R(2, 4)), T { N(0.2), N(0.4) }, N(R(1, 3)), rngv() } end)
def("qd.data.gibbs", function() return { pauli(nq()), N(R()) } end)
def("qd.channel.depolarizing qd.channel.dephasing", function() return { opts { p = N(R()), n = chance(0.5) and N(R(1, 2)) or nil } } end)
def("qd.channel.global_depolarizing", function() return { opts { lambda = N(R()) } } end)
def("qd.channel.amplitude_damping", function() return { opts { gamma = N(R()) } } end)
def("qd.channel.generalized_amplitude_damping", function() return { opts { gamma = N(R()), p = N(R()) } } end)
def("qd.channel.pauli", function() return { opts { px = N(0.1), py = N(0.2), pz = N(0.3) } } end)
def("qd.channel.reset", function() return { opts { n = N(R(1, 2)) } } end)
def("qd.channel.unitary", function() return { unitary(R(1, 2)), opts { tol = N(1e-8) } } end)
def("qd.channel.kraus", function()
  local k = R(1, 2)
  return { V(qd.channel.amplitude_damping { gamma = 0.3 }:kraus(), "qd.channel.amplitude_damping{gamma = 0.3}:kraus()") } end)
def("qd.channel.superop", function() local k = R(1, 2)
  return { V(qd.channel.depolarizing { p = 0.2, n = k }:superop(), fmt("qd.channel.depolarizing{p = 0.2, n = %d}:superop()", k)) } end)
def("qd.loss.mmd qd.loss.wasserstein qd.loss.sinkhorn", function()
  local n = nq(); local A, B = ens(n, R(1, 5)), ens(n, R(1, 5))
  local f = { grad = V(chance(0.5), "true") }
  if chance(0.3) then f.warm = T {} end
  return { A, B, opts(f) } end)
def("qd.loss.mmd_bits qd.loss.mmd_bits_orders qd.loss.kl qd.loss.cross_entropy", function()
  local n = nq(); local len = 2 ^ n
  return { vec(len), numlist(len, function() return 1 / len end), opts { sigma = N(1.0), grad = V(true, "true") } } end)
def("qd.loss.mmd_bits_samples", function()
  return { T { N(0), N(1), N(3) }, T { S("01"), S("11") }, opts { sigma = N(1.0) } } end)
def("qd.loss.global_fidelity", function() local n = nq(); return { state(n), state(n), opts { grad = V(true, "true") } } end)
def("qd.loss.local_fidelity", function() return { state(nq()), opts { grad = V(true, "true") } } end)
def("qd.loss.infidelity qd.loss.trace_distance qd.loss.hilbert_schmidt qd.loss.superfidelity", function()
  local n = nq(); return { chance(0.5) and state(n) or dm(n), chance(0.5) and state(n) or dm(n), opts { grad = V(true, "true") } } end)
def("qd.loss.mse", function()
  local n = nq(); local k = R(1, 4)
  if k == 1 then return { state(n), state(n), opts { grad = V(true, "true") } }
  elseif k == 2 then local c = R(1, 3); return { ens(n, c), ens(n, c) }
  elseif k == 3 then return { dm(n), dm(n), opts { grad = V(true, "true") } } end
  return { vec(4), vec(4) } end)
def("qd.ot.exact qd.ot.sinkhorn", function() return { rmat(R(1, 4), R(1, 4)) } end)
def("qd.ot.assign", function() local k = R(1, 4); return { rmat(k, k) } end)
local FEVAL = "function(x) local g = {} for i = 1, #x do g[i] = 2 * x[i] end return 1, g end"
def("qd.optim.adam qd.optim.sgd", function()
  local x = chance(0.5) and numlist(R(1, 4)) or vec(R(1, 4))
  local st = { lr = N(0.01) }
  if chance(0.3) then st.momentum = N(0.9) end
  return { cb(FEVAL), x, opts(st) } end)
def("qd.optim.checkpoint", function() return { opts { x = vec(3), t = N(2), m = numlist(3) } } end)
def("qd.optim.freeze", function() return { opts { x = vec(3), losses = numlist(4), t = N(2) } } end)
def("qd.optim.restore", function() return { opts { x = opts { __vector = numlist(2) }, f = opts { __float = S("nan") }, t = N(1.0) } } end)
def("qd.optim.save", function() return { S("ckpt_" .. R(1, 3) .. ".json"), opts { x = vec(3), t = N(2) } } end)
def("qd.optim.load", function() return { S(pick { "ckpt_1.json", "ckpt_2.json", "missing.json", "npy_0.npy" }) } end)
def("qd.optim.lr_at", function() return { opts { kind = S("step"), lr = N(0.1), step_size = N(2), gamma = N(0.5) }, N(R(1, 9)) } end)
def("qd.optim.schedule.constant qd.optim.schedule.step qd.optim.schedule.exponential qd.optim.schedule.cosine qd.optim.schedule.linear",
  function() return { opts { lr = N(0.1), step_size = N(2), gamma = N(0.5), T = N(10) } } end)
def("qd.circuit", function() return { N(nq()) } end)
def("qd.circuit.from_qasm", function()
  local n = nq()
  local c = qd.ansatz.hardware_efficient(n, 1)
  return { S(c:to_qasm(pick { 2, 3 }, qd.vector(c:nparams()))) } end)
def("qd.ansatz.quddpm", function() return { N(nq()), N(R(1, 3)), opts { ancillas = N(R(0, 2)) } } end)
def("qd.ansatz.strongly_entangling qd.ansatz.ry_rz_cz qd.ansatz.hardware_efficient", function() return { N(nq()), N(R(1, 3)) } end)
def("qd.pauli_sum", function()
  local n = nq()
  if chance(0.3) then return { S(pstring(n)) } end
  return { T { T { N(-1.0), S(pstring(n)) }, T { T { N(0.5), N(0.1) }, S(pstring(n)) } } } end)
def("qd.pauli_sum.tfim", function() return { N(nq()), N(R()), opts { J = N(1.0), periodic = V(true, "true") } } end)
def("qd.pauli_sum.sigma_minus qd.pauli_sum.sigma_plus", function() local n = nq(); return { N(n), N(R(0, n - 1)) } end)
def("qd.lindblad", function()
  local n = nq(1, 2)
  return { dm(n), pauli(n), T { V(qd.pauli_sum.sigma_minus(n, 0), fmt("qd.pauli_sum.sigma_minus(%d, 0)", n)) },
    chance(0.5) and N(0.1) or T { N(0.05), N(0.1) }, opts { max_steps = N(1000) } } end)
local FEEDBACK = "function(step, t, obj) return {0.1} end"
-- feedback laws (traced once with symbolic values; %q: a Pauli string of the register)
local LAWS = {
  "function(t, s) return { (s:expect(%q) * 0.5):atanh() * t + 1 } end",
  "function(t, s) return { (s:expect(%q) - 1):log():exp() } end",
  "function(t, s) return { t / s:expect(%q) } end",
  "function(t, s) KEPT = s:expect(%q) return { 1 } end",
  "function(t, s) return { KEPT or s:expect(%q) } end",
  "function(t, s) local x = t for i = 1, 3000 do x = x * 1.0001 + s:expect(%q) end return { x } end",
  "function(t, s) FREE(A[1]) return { s:expect(%q) } end",
  "function(t, s) collectgarbage() return { s, %q } end",
  "function(t, s) if s:expect(%q) > t then return { 1 } end return { 0 } end",
  "function(t, s) return setmetatable({}, { __len = function() error('len ' .. %q) end }) end",
  "function(t, s) return { (s:expect(%q) ^ 2):sqrt():min(t):max(-t):sigmoid() } end",
  "function(t, s) coroutine.yield(s:expect(%q)) end",
}
def("qd.sse", function()
  local n = nq(1, 2)
  local f = { dt = N(0.01), steps = N(R(1, 5)), H = pauli(n), measure = T { pauli(n) }, gamma = N(1.0), rng = rngv() }
  if chance(0.3) then f.feedback = opts { terms = T { S(pstring(n)) }, fn = cb(FEEDBACK) }
  elseif chance(0.4) then f.feedback = opts { terms = T { S(pstring(n)) }, law = cb(fmt(pick(LAWS), pstring(n))) } end
  if chance(0.3) then f.observe = T { pauli(n) } end
  if chance(0.2) then f.scheme = S("euler") end
  return { pure(n), opts(f) } end)
def("json.encode", function() return { opts { a = numlist(3), b = S("x"), c = opts { d = V(true, "true") } } } end)
def("json.freeze", function() return { opts { a = numlist(3), b = S("x") } } end)
def("json.decode", function() return { S(json.encode { a = { 1, 2.5, -3e300 }, b = "s\n", c = { d = true }, e = json.object() }) } end)

-- qd.nn: a small network, a batch of its width, parameters of its size (api.lua's own sizes)
local ACTS = { "linear", "relu", "tanh", "sigmoid", "silu" }
local function mlpv(n0, n1)
  local h, o = pick(ACTS), pick(ACTS)
  return V(qd.nn.mlp { sizes = { n0, 3, n1 }, activation = h, output = o },
           fmt("qd.nn.mlp{sizes = {%d, 3, %d}, activation = %q, output = %q}", n0, n1, h, o))
end
local rbatch = rmat   -- a real r x c batch
-- qd.nn.conv: G steps of ci features + nc condition rows in, G steps of co out
local function convv(G, ci, co, nc)
  local k, L, h, nh = 2 * R(0, G - 1) + 1, R(0, 2), pick(ACTS), R(0, 2)   -- heads 0 (none), 1 or 2 (divisors of 2)
  return V(qd.nn.conv { length = G, inputs = ci, channels = 2, outputs = co, kernel = k, layers = L, cond = nc,
                        activation = h, heads = nh },
           fmt("qd.nn.conv{length = %d, inputs = %d, channels = 2, outputs = %d, kernel = %d, layers = %d, cond = %d, activation = %q, heads = %d}",
               G, ci, co, k, L, nc, h, nh))
end
def("qd.nn.conv", function() return { opts { length = N(R(0, 4)), inputs = N(R(0, 3)), channels = N(R(0, 3)),
  outputs = N(R(0, 3)), kernel = N(R(0, 5)), layers = N(R(0, 3)), cond = N(R(0, 2)), activation = S(pick(ACTS)),
  heads = N(R(0, 4)) } } end)
def("qd.nn.mlp", function() return { opts { sizes = numlist(R(1, 4), function() return R(0, 5) end),
  activation = S(pick(ACTS)), output = S(pick(ACTS)) } } end)
def("qd.nn.mse", function() local r, c = R(1, 3), R(1, 3); return { rmat(r, c), rmat(r, c), opts { grad = V(true, "true") } } end)
def("qd.nn.columns", function() local c = R(1, 3); return { rmat(2, c), numlist(R(1, 4), function() return R(0, c + 1) end) } end)
def("qd.nn.vstack", function() local c = R(1, 3); return { rmat(R(1, 2), c), rmat(R(1, 2), c) } end)
-- qd.image (lua_image.c): images as real matrix columns; an ensemble and a matching gradient
def("qd.image.encode", function() local c = R(1, 3)
  return { rmat(R(1, 8), c), opts { pad = N(R()), angles = V(qd.vector(c), fmt("qd.vector(%d)", c)) } } end)
def("qd.image.readout", function() return { ens(R(1, 3), R(1, 3)), opts { stride = N(R(1, 2)), scale = N(R(1, 8)) } } end)
def("qd.image.readout_vjp", function() local n, c = R(1, 3), R(1, 3)
  return { ens(n, c), rmat(1 << n, c), opts { gain = N(R()), offset = N(R()) } } end)
def("qd.image.diffuse", function() local c = R(1, 3)
  return { rmat(4, c), rmat(4, c), V(qd.vector { 0, 0.5, 1 }, "qd.vector{0, 0.5, 1}") } end)
def("qd.image.clamp", function() return { rmat(R(1, 3), R(1, 3)), opts { scale = N(2), lo = N(0.2) } } end)
def("qd.image.decode", function() local c = R(1, 3)
  return { ens(R(1, 3), c), V(qd.vector(c), fmt("qd.vector(%d)", c)) } end)
def("qd.image.amp_mse", function() local n, c = R(1, 3), R(1, 3)
  return { ens(n, c), rmat(1 << n, c), V(qd.vector(c), fmt("qd.vector(%d)", c)), opts { grad = V(true, "true") } } end)
def("qd.image.psnr qd.image.ssim", function() local c = R(1, 3)
  return { rmat(64, c), rmat(64, c), opts { range = N(1) } } end)
def("qd.image.tanh_map", function() return { rmat(R(1, 4), 1), opts { scale = N(R()) } } end)
def("qd.image.tanh_map_vjp", function() local n = R(1, 4); return { rmat(n, 1), rmat(n, 1), opts { scale = N(2) } } end)
def("qd.data.digits", function()
  return { opts { n_classes = N(R(1, 10)), ds_size = N(R(2, 40)), generated = V(true, "true") } } end)
def("core.feedback_solve", function()
  local cnt, m = R(1, 4), R(1, 3)
  local nv = m + R(0, 2)
  local ent = {}
  for q = 1, m do
    for _ = 1, R(0, 2) do ent[#ent + 1] = N(q); ent[#ent + 1] = N(R(1, m)); ent[#ent + 1] = N(R(1, nv)); ent[#ent + 1] = N(R() - 0.5) end
  end
  return { rmat(cnt * nv, 1), rmat(cnt, m), numlist(m), T(ent), N(pick { 1e-3, 1e-9, 1.0 }) } end)
-- methods: receiver first
local REG = { State = state, DensityMatrix = dm, Ensemble = function(n) return ens(n, R(1, 5)) end }
local function M(types, names, f)
  for t in types:gmatch("%S+") do
    for nm in names:gmatch("%S+") do SPEC["MT." .. t .. ".methods." .. nm] = function() return f(t, nm) end end
  end
end
local function recv(t, n) return REG[t](n) end
M("State", "amp", function(t) local n = nq(); return { recv(t, n), chance(0.5) and N(R(1, 2 ^ n)) or S(bits(n)) } end)
M("State", "totable vector copy norm normalize dm purity entropy", function(t) return { recv(t, nq()) } end)
M("DensityMatrix", "matrix trace purity entropy eigenvalues copy totable", function(t) return { recv(t, nq()) } end)
M("Ensemble", "copy states norms mean_dm", function(t) return { recv(t, nq()) } end)
M("State DensityMatrix", "fidelity trace_distance kron inner", function(t) local n = nq(); return { recv(t, n), chance(0.5) and state(n) or dm(n) } end)
M("State DensityMatrix Ensemble", "probs", function(t) local n = nq(); return { recv(t, n), qubits(n) } end)
M("State DensityMatrix", "sample", function(t) local n = nq(); return { recv(t, n), N(R(1, 100)), rngv(), opts { qubits = qubits(n) } } end)
M("State DensityMatrix Ensemble", "measure", function(t) local n = nq(); return { recv(t, n), qubits(n), rngv(), opts { keep = V(chance(0.5), "false") } } end)
M("State", "project", function(t) local n = nq(); local q = qubits(n); return { recv(t, n), q, S(bits(#q.items)), opts { keep = V(false, "false") } } end)
M("State DensityMatrix Ensemble", "expect", function(t) local n = nq(); local q = qubits(n); return { recv(t, n), S(pstring(#q.items)), q } end)
M("State Ensemble", "embed", function(t) return { recv(t, nq()), N(R(0, 2)) } end)
M("State DensityMatrix", "ptrace", function(t) local n = nq(); return { recv(t, n), qubits(n) } end)
M("State", "schmidt_rank", function(t) local n = nq(); return { recv(t, n), qubits(n), N(1e-10) } end)
M("State DensityMatrix Ensemble Vector Matrix", "save_npy", function(t)
  local r = REG[t] and recv(t, nq()) or (t == "Vector" and vec(R(1, 4)) or rmat(2, 3))
  return { r, S("save_" .. R(1, 3) .. ".npy") } end)
M("State DensityMatrix Ensemble", "apply", function(t) local n = nq(); local k = R(1, n)
  return { recv(t, n), chan(k), qubits(n, k), t ~= "DensityMatrix" and rngv() or nil } end)
M("State DensityMatrix Ensemble", "evolve", function(t) local n = nq(1, 2)
  local f = { method = t ~= "DensityMatrix" and S(pick { "eig", "krylov", "auto" }) or nil }
  if t == "DensityMatrix" and chance(0.5) then f.jumps = T { S(pstring(n)) } end
  return { recv(t, n), pauli(n), N(R()), opts(f) } end)
M("State DensityMatrix Ensemble", "unitary", function(t) local n = nq(); local k = R(1, math.min(n, 2))
  return { recv(t, n), unitary(k), qubits(n, k) } end)
M("State DensityMatrix Ensemble Vector Matrix Channel PauliSum", "free", function(t)
  return { REG[t] and recv(t, nq()) or t == "Vector" and vec(2) or t == "Matrix" and rmat(2, 2)
    or t == "Channel" and chan(1) or pauli(2) } end)
M("DensityMatrix", "get", function(t) local n = nq(); return { recv(t, n), N(R(1, 2 ^ n)), N(R(1, 2 ^ n)) } end)
M("Ensemble", "get", function(t) local c = R(1, 4); return { ens(nq(), c), N(R(1, c)) } end)
M("Ensemble", "set", function(t) local n, c = nq(), R(1, 4); return { ens(n, c), N(R(1, c)), state(n) } end)
M("Ensemble", "overlaps", function(t) local n = nq(); return { ens(n, R(1, 5)), chance(0.5) and ens(n, R(1, 5)) or nil } end)
M("Ensemble", "fidelities", function(t) local n = nq(); return { ens(n, R(1, 5)), state(n) } end)
M("Vector", "get", function(t) local k = R(1, 4); return { vec(k, chance(0.3)), N(R(1, k)) } end)
M("Vector", "set", function(t) local k = R(1, 4); return { vec(k, chance(0.3)), N(R(1, k)), chance(0.5) and N(R()) or T { N(1), N(2) } } end)
M("Matrix", "get", function(t) return { rmat(2, 3), N(R(1, 2)), N(R(1, 3)) } end)
M("Matrix", "set", function(t) return { rmat(2, 3), N(R(1, 2)), N(R(1, 3)), N(R()) } end)
M("Vector", "totable shape is_complex sum mean copy", function(t) return { vec(R(1, 4), chance(0.3)) } end)
M("Matrix", "totable shape is_complex sum mean copy", function(t) return { chance(0.5) and rmat(R(1, 3), R(1, 3)) or unitary(1) } end)
M("Rng", "uniform normal", function(t) return { rngv(), N(0), N(1), chance(0.5) and N(R(1, 5)) or nil } end)
M("Rng", "integer", function(t) return { rngv(), N(1), N(R(1, 100)) } end)
M("Rng", "split seed", function(t) return { rngv() } end)
M("Rng", "substream", function(t) return { rngv(), N(R(0, 100)) } end)
M("Circuit", "add_unitary", function(t) local n = nq(); local k = R(1, math.min(n, 2)); return { circ(n), unitary(k), qubits(n, k), S("U") } end)
M("Circuit", "measure", function(t) local n = nq(); return { circ(n), qubits(n), opts { discard = V(chance(0.5), "true") } } end)
M("Circuit", "reset", function(t) local n = nq(); return { circ(n), qubits(n) } end)
M("Circuit", "append", function(t) local n = nq(); return { circ(n), circ(n), chance(0.5) and numlist(n, function(i) return i - 1 end) or nil } end)
M("Circuit", "copy inverse nparams param_names ops draw", function(t) return { circ(nq()) } end)
M("Circuit", "param param_index", function(t) return { circ(nq()), S(pick { "a", "b", "theta_1" }) } end)
M("Circuit", "to_qasm", function(t) local n = nq()
  local c = qd.ansatz.hardware_efficient(n, 1)
  return { V(c, fmt("qd.ansatz.hardware_efficient(%d, 1)", n)), N(pick { 2, 3 }), vec(c:nparams()) } end)
M("Circuit", "unitary", function(t) local n = nq()
  local c = qd.ansatz.hardware_efficient(n, 1)
  return { V(c, fmt("qd.ansatz.hardware_efficient(%d, 1)", n)), vec(c:nparams()) } end)
local function circ_with_params()
  local n = nq(1, 2); local k = R(1, 3); local c, d
  if k == 1 then c, d = qd.ansatz.quddpm(n, 1, { ancillas = 1 }), fmt("qd.ansatz.quddpm(%d, 1, {ancillas = 1})", n)
  else c, d = qd.ansatz.hardware_efficient(n, 1), fmt("qd.ansatz.hardware_efficient(%d, 1)", n) end
  return V(c, d), c.n, c:nparams()
end
M("Circuit", "run apply forward", function(t) local c, n, p = circ_with_params()
  return { c, pick { state, dm, function(m) return ens(m, R(1, 3)) end }(n), vec(p), opts { rng = rngv() } } end)
local LOSS = "function(out) return qd.loss.mse(out, out:copy(), {grad = true}) end"
M("Circuit", "grad grad_ps grad_fd", function(t, nm) local c, n, p = circ_with_params()
  local x = pick { state, dm, function(m) return ens(m, R(1, 3)) end }(n)
  return { c, x, vec(p), cb(LOSS), nm ~= "grad_ps" and opts { rng = rngv() } or nil } end)
M("Circuit", "vjp", function(t) local n = nq(1, 3); local c = qd.ansatz.hardware_efficient(n, 1)
  local x = pure(n)
  local G = qd.type(x.v) == "qd.State" and state(n) or V(x.v:copy(), x.d)
  return { V(c, fmt("qd.ansatz.hardware_efficient(%d, 1)", n)), x, vec(c:nparams()), G } end)
-- a tape of c:forward on a pure register or a density matrix, then G for its output
M("Tape", "vjp circuit free", function(t) local n = nq(1, 3); local c = qd.ansatz.hardware_efficient(n, 1)
  local kind = pick { "qd.state", "qd.dm" }
  local np = c:nparams()
  local _, tp = c:forward(kind == "qd.state" and qd.state(n) or qd.dm(n), qd.vector(np))
  local tv = V(tp, fmt("select(2, qd.ansatz.hardware_efficient(%d, 1):forward(%s(%d), qd.vector(%d)))", n, kind, n, np))
  if t == "vjp" then
    local G = chance(0.7) and (kind == "qd.state" and state(n) or dm(n)) or anyobj()
    return { tv, G, chance(0.5) and opts { input_grad = V(false, "false"), dLdP = N(R()) } or nil }
  end
  return { tv } end)
M("MLP", "nparams init forward grad vjp spec", function(t, nm)
  local n0, n1, B = R(1, 3), R(1, 3), R(1, 4)
  local net = mlpv(n0, n1)
  local np = net.v:nparams()
  if nm == "init" then return { net, rngv() } end
  if nm == "nparams" or nm == "spec" then return { net } end
  local X, P = rbatch(n0, B), vec(np)
  if nm == "forward" then return { net, X, P } end
  if nm == "vjp" then return { net, X, P, rbatch(n1, B) } end
  return { net, X, P, cb("function(Y) return qd.nn.mse(Y, Y:copy(), {grad = true}) end") } end)
M("ConvNet", "nparams init forward grad vjp spec", function(t, nm)
  local G, ci, co, nc, B = R(1, 3), R(1, 2), R(1, 2), R(0, 2), R(1, 3)
  local net = convv(G, ci, co, nc)
  local np = net.v:nparams()
  if nm == "init" then return { net, rngv() } end
  if nm == "nparams" or nm == "spec" then return { net } end
  local X, P = rbatch(G * ci + nc, B), vec(np)
  if nm == "forward" then return { net, X, P } end
  if nm == "vjp" then return { net, X, P, rbatch(G * co, B) } end
  return { net, X, P, cb("function(Y) return qd.nn.mse(Y, Y:copy(), {grad = true}) end") } end)
-- elementwise maths (lua_vmath.c) on real vectors and matrices with entries in (0, 1)
local function arr_of(t) if t == "Vector" then return vec(R(1, 4)) end return rmat(R(1, 3), R(1, 3)) end
M("Vector Matrix", "exp log sqrt tanh atanh sin cos sigmoid", function(t) return { arr_of(t) } end)
M("Vector Matrix", "clamp", function(t) return { arr_of(t), N(R() - 0.5), N(R() + 0.5) } end)
M("Vector Matrix", "mul div", function(t)
  if chance(0.5) then return { arr_of(t), N(R() + 0.1) } end
  if t == "Vector" then local n = R(1, 4); return { vec(n), vec(n) } end
  local r, c = R(1, 3), R(1, 3); return { rmat(r, c), rmat(r, c) } end)
M("Channel", "apply", function(t) local n = nq(); local k = R(1, n); return { chan(k), reg(n), qubits(n, k) } end)
M("Channel", "choi kraus superop is_cptp", function(t) return { chan(R(1, 2)) } end)
M("Channel", "compose", function(t) local k = R(1, 2); return { chan(k), chan(k) } end)
M("Channel", "tensor", function(t) return { chan(R(1, 2)), chan(R(1, 2)) } end)
M("PauliSum", "apply expect", function(t) local n = nq(); return { pauli(n), t == "expect" and reg(n) or pure(n) } end)
M("PauliSum", "dagger eigh matrix norm_bound spectrum terms is_hermitian", function(t) return { pauli(nq()) } end)
M("PauliSum", "simplify", function(t) return { pauli(nq()), N(1e-12) } end)
M("PauliSum", "gibbs", function(t) return { pauli(nq()), N(R()) } end)
M("PauliSum", "ground_state", function(t) return { pauli(nq()), opts { method = S(pick { "auto", "eig", "lanczos" }) } } end)
M("PauliSum", "evolve", function(t) local n = nq(); return { pauli(n), reg(n), N(R()) } end)
M("Schedule", "alpha beta", function(t) local T_ = R(1, 5); return { sched(T_), N(R(1, T_)) } end)
M("Schedule", "alpha_bar", function(t) local T_ = R(1, 5); return { sched(T_), N(R(0, T_)) } end)
M("Schedule", "clip", function(t) return { sched(), N(0.2), N(0.8) } end)
M("Schedule", "totable values", function(t) return { sched() } end)
-- gates: receiver, qubits, angles (per member for an Ensemble sometimes; slots for a Circuit)
for g, info in pairs(GATES) do
  for _, t in ipairs { "State", "DensityMatrix", "Ensemble", "Circuit" } do
    SPEC["MT." .. t .. ".methods." .. g] = function()
      local n = math.max(info.qubits, nq()); local cnt = R(1, 4)
      local r = t == "Circuit" and V(qd.circuit(n), fmt("qd.circuit(%d)", n)) or t == "Ensemble" and ens(n, cnt) or recv(t, n)
      local a = { r }
      for _, q in ipairs(qubits(n, info.qubits).items) do a[#a + 1] = q end
      for _ = 1, info.params do
        if t == "Ensemble" and chance(0.3) then a[#a + 1] = vec(cnt)
        elseif t == "Circuit" and chance(0.5) then a[#a + 1] = chance(0.5) and S("a") or T({ N(R(1, 3)) }, { scale = N(2.0) })
        else a[#a + 1] = angle() end
      end
      return a
    end
  end
end
-- metamethods, called directly (getmetatable(x).__index(x, k) …)
local function obj_of(t, n)
  n = n or nq()
  if REG[t] then return recv(t, n) elseif t == "Vector" then return vec(R(1, 4), chance(0.3))
  elseif t == "Matrix" then return rmat(2, 2) elseif t == "Rng" then return rngv() elseif t == "Circuit" then return circ(n)
  elseif t == "Channel" then return chan(1) elseif t == "PauliSum" then return pauli(n)
  elseif t == "MLP" then return mlpv(R(1, 3), R(1, 3))
  elseif t == "ConvNet" then return convv(R(1, 3), R(1, 2), R(1, 2), R(0, 2)) else return sched() end
end
for t in pairs(MT) do
  SPEC["MT." .. t .. ".__index"] = function()
    return { obj_of(t), pick { S("n"), S("N"), S("dim"), S("T"), S("kind"), S("nqubits"), N(1), N(0), N(2), S("free") } } end
  SPEC["MT." .. t .. ".__newindex"] = function() return { obj_of(t), N(R(0, 3)), N(R()) } end
  for _, mm in ipairs { "__len", "__tostring", "__gc", "__close", "__unm" } do
    SPEC["MT." .. t .. "." .. mm] = function() return { obj_of(t) } end
  end
  for _, mm in ipairs { "__add", "__sub", "__mul", "__div", "__eq" } do
    SPEC["MT." .. t .. "." .. mm] = function() local n = nq()
      local a, b = obj_of(t, n), obj_of(t, n)
      if mm == "__div" or (mm == "__mul" and t == "PauliSum" and chance(0.5)) then b = N(2.0) end
      return { a, b } end
  end
end

-- ---------------------------------------------------------------- mutations
-- (no counts near 2^31 — a vector of 2^31 doubles is a valid 16 GiB request on a big machine,
-- filled slowly under ASan — nor 1024, where qd.data.tfim's valid 1024 ground states take
-- more than the per-call bound under ASan: hang reports that need no fix; 2^32 and up are
-- refused)
local NUMS = { 0, -1, 1, 2, -2, 3, 7, 31, 32, 33, 62, 63, 64, 65, 100, 300,
  2 ^ 32 | 0, 2 ^ 40 | 0, 2 ^ 53 | 0, math.maxinteger, math.mininteger, -(2 ^ 31 | 0),
  0.0, -0.0, 0.5, -0.5, 1.5, 1e-300, 1e300, 2.0 ^ 63, 2.0 ^ 64, -2.0 ^ 63, 1e18, 0 / 0, math.huge, -math.huge,
  4.9e-324, 1.7976931348623157e308 }
local function mut_number(x)
  local k = R(1, 4)
  if k == 1 and math.type(x) == "integer" then return N(x + pick { -1, 1, -x - 1, x }) end   -- off by one, negated
  if k == 2 then return N(x + 0.5) end
  return N(pick(NUMS))
end
local function mut_string(s)
  local k = R(1, 10)
  if k == 1 then return S("") end
  if k == 2 then local m = pick { 1000, 100000, 1000000 }; local u = #s > 0 and s:sub(1, 4) or "x"
    return V(u:rep(m), fmt("string.rep(%s, %d)", strsrc(u), m)) end
  if k == 3 then return S(s .. "\0" .. s) end
  if k == 4 then return S(s .. "\255\254\192\128") end
  if k == 5 then return S(s:sub(1, R(0, #s))) end
  if k == 6 then return S(s:upper()) end
  if k == 7 then return S(pick { "%s%s%n%d", "3", "0x10", "-1", "nan", "inf", "1e400", "0", "q[0]", "Z", "I" }) end
  if k == 8 and #s > 0 then local i = R(1, #s); return S(s:sub(1, i - 1) .. string.char(R(0, 255)) .. s:sub(i + 1)) end
  if k == 9 then return S(s .. s) end
  local t = {} for i = 1, R(1, 20) do t[i] = string.char(R(1, 255)) end
  return S((table.concat(t):gsub("/", "_")))
end
local function wrong_type()
  return pick {
    function() return V(nil, "nil") end, function() return V(true, "true") end, function() return V(false, "false") end,
    function() return T {} end, function() return cb("function() end") end, function() return S("x") end,
    function() return N(0) end, function() return N(0 / 0) end,
    function() return V(coroutine.create(function() end), "coroutine.create(function() end)") end,
    function() return V(io.stdout, "io.stdout") end,
  }()
end
local function mut_table(r)
  local k = R(1, 9)
  if k <= 3 then
    local spec = {}
    local c = R(1, 3)
    if c ~= 2 then spec.len = pick { -1, -(2 ^ 31 | 0), math.mininteger, math.maxinteger, 2 ^ 31 | 0, 2 ^ 53 | 0, 0, 0.5, 1.5,
      0 / 0, math.huge, "3", "flip", "grow", "err", #r.items + 1, #r.items - 1, 1e18 } end
    if c ~= 1 then spec.after = R(0, 3); spec.junk = pick { "err", "gc", "tbl", 0 / 0, -1, "x", false } end
    local c2 = { items = r.items, fields = r.fields, proxy = spec }
    return c2
  elseif k == 4 then   -- drop an item or field
    local items = { table.unpack(r.items) }
    if #items > 0 then table.remove(items, R(1, #items)) end
    return { items = items, fields = r.fields }
  elseif k == 5 then   -- add a junk item
    local items = { table.unpack(r.items) }
    items[#items + 1] = chance(0.5) and anyobj() or wrong_type()
    return { items = items, fields = r.fields }
  elseif k == 6 then   -- unknown or odd key
    local fields = { table.unpack(r.fields) }
    fields[#fields + 1] = { k = pick { "bogus", "n", "N", "grad", "rng", 0, -1, 2 ^ 40 | 0, 1.5 }, r = N(pick(NUMS)) }
    return { items = r.items, fields = fields }
  elseif k == 7 then local d = pick { 10, 200, 1000, 100000 }; return V(DEEP(d), fmt("DEEP(%d)", d))
  elseif k == 8 then   -- a hole in the middle
    local items = { table.unpack(r.items) }
    if #items > 0 then items[R(1, #items)] = V(nil, "nil") end
    return { items = items, fields = r.fields }
  end
  return wrong_type()
end
local POOL = {}   -- results of earlier calls (stateful sequences), as records "R#k"
local function mut_leaf(r)
  local v = r.v
  local c = R(1, 10)
  if c == 1 then return wrong_type() end
  if c == 2 then return anyobj() end
  if c == 3 and #POOL > 0 then return pick(POOL) end
  if type(v) == "userdata" and c <= 6 then
    if getmetatable(v) and getmetatable(v).__gc then return V(FREED(v), "FREED(" .. r.d .. ")") end
    return anyobj()
  end
  if type(v) == "function" then
    if c <= 7 then return cb(pick(CB_WRAP), r) end
    return cb(pick(CB_PLAIN))
  end
  if type(v) == "number" then return mut_number(v) end
  if type(v) == "string" then return mut_string(v) end
  return pick { wrong_type, anyobj, function() return N(pick(NUMS)) end }()
end

-- all records of an argument list (with where they sit), for picking one to mutate
local function collect(args)
  local out = {}
  local function walk(list, i, r, depth)
    out[#out + 1] = { list = list, i = i, r = r, top = depth == 0 }
    if istable(r) and depth < 4 then
      for j, it in ipairs(r.items) do walk(r.items, j, it, depth + 1) end
      for _, f in ipairs(r.fields) do walk(f, "r", f.r, depth + 1) end
    end
  end
  for i = 1, args.n do if args[i] then walk(args, i, args[i], 0) end end
  return out
end
local function mutate(args)
  local k = R(1, 12)
  if k == 1 then args.n = args.n + 1; args[args.n] = chance(0.5) and anyobj() or wrong_type(); return end
  if k == 2 and args.n > 0 then args[args.n] = nil; args.n = args.n - 1; return end
  if k == 3 and args.n >= 2 then local i, j = R(1, args.n), R(1, args.n); args[i], args[j] = args[j], args[i]; return end
  local all = collect(args)
  if #all == 0 then args.n = 1; args[1] = wrong_type(); return end
  local e = all[R(1, #all)]
  if not e.top and chance(0.4) then   -- prefer top-level arguments a little
    local tops = {} for _, x in ipairs(all) do if x.top then tops[#tops + 1] = x end end
    e = tops[R(1, #tops)] or e
  end
  -- copy-on-write for the parent item lists (the mutation must not alias other records)
  local new = istable(e.r) and mut_table(e.r) or mut_leaf(e.r)
  e.list[e.i] = new
end

-- ---------------------------------------------------------------- targets
local targets = {}
local function add(name, fn) targets[#targets + 1] = { name = name, fn = fn, ok = 0, err = 0 } end
local function sorted_keys(t)
  local ks = {} for k in pairs(t) do if type(k) == "string" then ks[#ks + 1] = k end end
  table.sort(ks); return ks
end
local SKIP = { ["qd.help"] = false }
local function walk(t, path, seen)
  if seen[t] then return end
  seen[t] = true
  local mt = getmetatable(t)
  if type(mt) == "table" and mt.__call then add(path, t) end
  for _, k in ipairs(sorted_keys(t)) do
    local v = rawget(t, k)
    local p = path .. "." .. k
    if type(v) == "function" and not SKIP[p] then add(p, v)
    elseif type(v) == "table" then walk(v, p, seen) end
  end
end
walk(qd, "qd", {})
-- a qd.core function the protocols call directly (reverse_diffusion.lua)
add("core.feedback_solve", require("qd.core").feedback_solve)
add("json.encode", json.encode); add("json.decode", json.decode); add("json.freeze", json.freeze)
for _, t in ipairs(sorted_keys(MT)) do
  local mt = MT[t]
  for _, k in ipairs(sorted_keys(mt)) do
    if k:match("^__") and type(mt[k]) == "function" then add("MT." .. t .. "." .. k, mt[k]) end
  end
  if type(mt.methods) == "table" then
    for _, k in ipairs(sorted_keys(mt.methods)) do
      if type(mt.methods[k]) == "function" then add("MT." .. t .. ".methods." .. k, mt.methods[k]) end
    end
  end
end

-- files for load_npy (valid ones of each kind, then the runs' own outputs)
do
  local n = 2
  qd.haar_state(n, qd.rng(1)):save_npy("npy_0.npy"); NPY[#NPY + 1] = { "npy_0.npy", "state" }
  qd.ensemble.haar(n, 3, qd.rng(2)):save_npy("npy_1.npy"); NPY[#NPY + 1] = { "npy_1.npy", "ensemble" }
  qd.dm(qd.haar_state(n, qd.rng(3))):save_npy("npy_2.npy"); NPY[#NPY + 1] = { "npy_2.npy", "dm" }
  qd.rng(4):uniform(0, 1, 5):save_npy("npy_3.npy"); NPY[#NPY + 1] = { "npy_3.npy", "vector" }
  qd.save_ensembles("npy_4.npy", { qd.ensemble.haar(1, 2, qd.rng(5)), qd.ensemble.haar(1, 2, qd.rng(6)) })
  NPY[#NPY + 1] = { "npy_4.npy", "ensembles" }
  NPY[#NPY + 1] = { "missing.npy", "state" }
  NPY[#NPY + 1] = { "save_1.npy", "matrix" }
  NPY[#NPY + 1] = { "out_1.npy", "ensembles" }
  qd.optim.save("ckpt_1.json", { x = qd.vector { 1, 2 }, t = 3 })
end

-- generic arguments for functions without a SPEC (new API appears here first)
local function generic()
  local a = { n = R(0, 3) }
  for i = 1, a.n do a[i] = chance(0.5) and anyobj() or chance(0.5) and N(R(0, 3)) or wrong_type() end
  return a
end

-- ---------------------------------------------------------------- known crashes
-- Calls that match an open finding of FINDINGS.md are not made (counted as skipped), so
-- that a run gets past them to new ones; --no-skip makes them. Remove an entry when its
-- finding is fixed (its reproducer in regress.lua then runs in make check).
local function has_proxy(args)
  local found = false
  local function walk(r, d)
    if found or not r or d > 6 then return end
    if istable(r) then
      if r.proxy then found = true; return end
      for _, it in ipairs(r.items) do walk(it, d + 1) end
      for _, f in ipairs(r.fields) do walk(f.r, d + 1) end
    end
  end
  for i = 1, args.n do walk(args[i], 0) end
  return found
end
local function wrong_receiver(name, vals, types)
  local t, mm = name:match("^MT%.(%w+)%.(__%w+)$")
  return t and types[t .. "." .. mm] and qd.type(vals[1]) ~= "qd." .. t
end
-- findings not fixed yet, skipped by name (FINDINGS.md); empty when all are fixed
local KNOWN = {
}

-- ---------------------------------------------------------------- the loop
local log = assert(io.open(o.log, "w"))
local deadline = math.huge
local TIMEOUT = "fuzz: call exceeded the time bound"
debug.sethook(function()
  if os.clock() > deadline then error(TIMEOUT, 2) end
end, "", 1000)

local stats = { calls = 0, ok = 0, errors = 0, raw = 0, hangs = 0, bad = 0, skipped = 0 }
local rawseen, rawlist = {}, {}
local nospec = {}
local t_end = qd.clock() + o.seconds
local function summarize(v)
  local ok, s = pcall(tostring, v)
  return ok and s or "?"
end

while stats.calls < o.calls and qd.clock() < t_end do
  stats.calls = stats.calls + 1
  local k = stats.calls
  local tg = targets[R(1, #targets)]
  local args
  local gen = SPEC[tg.name]
  if gen then
    local ok, a = pcall(gen)
    if not ok then   -- a broken generator is a bug of this file: say so once, use random arguments
      if not nospec[tg.name] then io.stderr:write("generator for " .. tg.name .. " failed: " .. tostring(a) .. "\n") end
      nospec[tg.name] = true; a = {}
    end
    args = { n = 0 }
    for i, r in pairs(a) do args[i] = r; if i > args.n then args.n = i end end
    for i = 1, args.n do if args[i] == nil then args[i] = V(nil, "nil") end end
  else
    nospec[tg.name] = true
    args = generic()
  end
  if chance(0.85) then mutate(args); if chance(0.2) then mutate(args) end end
  local vals, ds = {}, {}
  for i = 1, args.n do
    local r = args[i] or V(nil, "nil")
    local ok, v = pcall(realize, r)
    vals[i] = ok and v or nil
    ds[i] = desc(r)
  end
  local line = fmt("call #%d: %s(%s)", k, tg.name, table.concat(ds, ", "))
  if #line > 4000 then line = line:sub(1, 4000) .. " …" end
  local known
  if o.skip_known then
    for _, kn in ipairs(KNOWN) do if kn[2](tg.name, vals, args) then known = kn[1]; break end end
  end
  if known then
    stats.skipped = stats.skipped + 1
    log:write("skip (", known, ") ", line, "\n")
    goto continue
  end
  log:write(line, "\n"); log:flush()
  CBENV.A, CBENV.F = vals, tg.fn
  deadline = os.clock() + o.limit
  local res = table.pack(pcall(tg.fn, table.unpack(vals, 1, args.n)))
  deadline = math.huge
  CBENV.A, CBENV.F = nil, nil
  if res[1] then
    stats.ok = stats.ok + 1; tg.ok = tg.ok + 1
    for i = 2, res.n do
      local v = res[i]
      if type(v) == "userdata" and chance(0.5) then summarize(v) end
      if type(v) == "userdata" and chance(0.1) then
        if #POOL >= 16 then table.remove(POOL, 1) end
        POOL[#POOL + 1] = V(v, "R#" .. k)
      end
    end
  else
    local e = res[2]
    stats.errors = stats.errors + 1; tg.err = tg.err + 1
    if type(e) == "string" and e:find(TIMEOUT, 1, true) then
      stats.hangs = stats.hangs + 1
      print(fmt("HANG %s (more than %g s of CPU)", line, o.limit))
    elseif type(e) ~= "string" or e == "" then
      stats.bad = stats.bad + 1
      print(fmt("BAD error value (%s %q) from %s", type(e), summarize(e), line))
    elseif e:find("attempt to ", 1, true) or e:find("stack overflow", 1, true) and not e:find("C stack overflow", 1, true) then
      -- a Lua runtime error inside the stdlib, not a checked argument: a weaker finding
      stats.raw = stats.raw + 1
      local key = tg.name .. ": " .. e:gsub("%d+", "N"):sub(1, 120)
      if not rawseen[key] then rawseen[key] = true; rawlist[#rawlist + 1] = fmt("%s\n      first: %s", e:sub(1, 200), line:sub(1, 300)) end
    end
  end
  if k % 64 == 0 then collectgarbage() end
  ::continue::
end
debug.sethook()
collectgarbage(); collectgarbage()

if o.verbose then
  print("unchecked Lua errors (first occurrence of each kind):")
  for _, s in ipairs(rawlist) do print("  " .. s) end
  local ns = sorted_keys(nospec)
  if #ns > 0 then print("no valid-argument generator (random arguments only): " .. table.concat(ns, " ")) end
  print("targets that never succeeded:")
  for _, t in ipairs(targets) do if t.ok == 0 and t.err > 0 then io.write(t.name, "(", t.err, ") ") end end
  print()
end
print(fmt("api: seed=%d calls=%d ok=%d errors=%d raw=%d hangs=%d bad=%d skipped=%d targets=%d",
  o.seed, stats.calls, stats.ok, stats.errors, stats.raw, stats.hangs, stats.bad, stats.skipped, #targets))
log:close()
os.exit((stats.hangs == 0 and stats.bad == 0) and 0 or 3)
