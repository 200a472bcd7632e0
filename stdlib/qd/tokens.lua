-- qd.tokens — circuits as genQC token tensors (arXiv 2311.02041; the C half is lua_synth.c).
--
-- A token tensor of n qubits and G time steps is a real n x G qd.Matrix (row q + 1 = qubit
-- q): at (q, t) +v if qubit q is a target of the gate with vocabulary index v (1-based), -v if
-- a control, 0 empty, and the padding token V + 1 in whole columns after the circuit's end;
-- one gate per time step. Parameters (the multimodal version): a P x G matrix, the angle mod
-- 4 pi mapped linearly to [-1, 1) (x = (angle mod 4 pi - 2 pi) / 2 pi; decoding takes
-- (x + 1) 2 pi). Qubit q of the tensor is qd's qubit q (qd's qubit 0 is the most significant
-- bit of a basis index; Qiskit's, and so genQC's unitaries, have it least significant:
-- qd.synth.reverse_qubits converts a unitary). A batch of B circuits is a real qd.Matrix of
-- n*G rows and B columns (circuit b's entry (q, t) at row q + n*t + 1); .npy files hold
-- genQC's shape (B, n, G).
-- qd itself is loaded when these functions run (init.lua requires this file while loading)
local qd = setmetatable({}, { __index = function(_, k) return require("qd")[k] end })
local core = require "qd.core"
local outside = require("qd.caller").outside
local S = core.synth

local M = {}

-- the vocabularies of the paper's models
M.vocabularies = {
  srv = { "h", "cx" },                                            -- entanglement (SRV) model
  compile = { "h", "cx", "z", "x", "ccx", "swap" },               -- unitary compilation
  multimodal = { "h", "cx", "ccx", "swap", "rx", "ry", "rz", "cp" },  -- with parameters
}

local function bad(k, fname, msg)
  error(string.format("bad argument #%d to '%s' (%s)", k, fname, msg), outside())
end

-- the vocabulary option (a name of M.vocabularies or a table of gate names), checked
local function vocab_of(v, k, fname)
  if type(v) == "string" then
    if not M.vocabularies[v] then bad(k, fname, "option 'vocab': srv, compile, multimodal or a table of gate names expected, got " .. v) end
    return M.vocabularies[v]
  end
  if type(v) ~= "table" or #v < 1 then
    bad(k, fname, "option 'vocab': a table of gate names expected, got " .. qd.type(v))
  end
  for i, name in ipairs(v) do
    if type(name) ~= "string" then bad(k, fname, "option 'vocab': gate name expected at [" .. i .. "]") end
    local c, msg = S.role(name)
    if not c then bad(k, fname, "option 'vocab': " .. msg) end
  end
  return v
end
M.vocab_of = vocab_of

local check_opts = require("qd.caller").check_options

-- the most angles of any gate of the vocabulary
function M.nparams(vocab)
  local P = 0
  for _, name in ipairs(vocab_of(vocab, 1, "nparams")) do
    local _, _, np = S.role(name)
    if np > P then P = np end
  end
  return P
end

-- the padding token of a vocabulary (its size + 1)
function M.padding(vocab) return #vocab_of(vocab, 1, "padding") + 1 end

local FOUR_PI = 4 * math.pi

-- an angle as genQC's parameter token: mod 4 pi, then linearly to [-1, 1)
function M.angle_token(a)
  if type(a) ~= "number" then bad(1, "angle_token", "number expected, got " .. qd.type(a)) end
  local m = a % FOUR_PI
  return (m - 2 * math.pi) / (2 * math.pi)
end

-- the angle of op o's k-th parameter (fixed value, or offset + scale * params[slot])
local function angle_of(p, params, fname)
  if p.value then return p.value end
  if not params then bad(1, fname, "the circuit has parameter slots; give option 'params'") end
  local x = params[p.slot]
  if type(x) ~= "number" then bad(2, fname, "option 'params': no value for slot " .. p.slot) end
  return p.offset + p.scale * x
end

-- tokens.encode(circuit, {vocab =, max_gates = G, pad = true, params =}) -> T (n x G) [, P]
-- P (a P x G matrix of angle tokens) when the vocabulary has parametrised gates. params:
-- values of the circuit's parameter slots (a qd.Vector or table). Raises for a gate outside
-- the vocabulary, more gates than max_gates, measurements, resets or unitaries.
function M.encode(c, o)
  local fname = "encode"
  if qd.type(c) ~= "qd.Circuit" then bad(1, fname, "qd.Circuit expected, got " .. qd.type(c)) end
  o = check_opts(o, { vocab = true, max_gates = true, pad = true, params = true }, 2, fname)
  local vocab = vocab_of(o.vocab or "srv", 2, fname)
  local index = {}
  for i, name in ipairs(vocab) do index[name] = i end
  local ops = c:ops()
  local G = o.max_gates or #ops
  if math.type(G) ~= "integer" and not (type(G) == "number" and G == math.floor(G)) or G < 1 then
    bad(2, fname, "option 'max_gates': integer >= 1 expected, got " .. tostring(G))
  end
  G = math.tointeger(G)
  if #ops > G then bad(1, fname, string.format("%d gates do not fit max_gates = %d", #ops, G)) end
  local n, V, P = c.n, #vocab, M.nparams(vocab)
  local params = o.params
  if params ~= nil and type(params) ~= "table" and qd.type(params) ~= "qd.Vector" then
    bad(2, fname, "option 'params': qd.Vector or table expected, got " .. qd.type(params))
  end
  local T = qd.matrix(n, G)
  local A = P > 0 and qd.matrix(P, G) or nil
  for t, op in ipairs(ops) do
    local v = op.kind == "gate" and index[op.name]
    if not v then
      bad(1, fname, string.format("op %d (%s %s) is not in the vocabulary {%s}", t, op.kind,
          tostring(op.name or ""), table.concat(vocab, ", ")))
    end
    local nc = S.role(op.name)
    for i, q in ipairs(op.qubits) do T:set(q + 1, t, i <= nc and -v or v) end
    for k, p in ipairs(op.params or {}) do A:set(k, t, M.angle_token(angle_of(p, params, fname))) end
  end
  if o.pad ~= false then
    for t = #ops + 1, G do
      for q = 1, n do T:set(q, t, V + 1) end
    end
  end
  return T, A
end

-- tokens.decode(T [, P], {vocab =}) -> qd.Circuit | nil, reason
function M.decode(T, P, o)
  local fname = "decode"
  if o == nil and type(P) == "table" and qd.type(P) == "table" then P, o = nil, P end
  if qd.type(T) ~= "qd.Matrix" then bad(1, fname, "qd.Matrix (qubits x time) expected, got " .. qd.type(T)) end
  if P ~= nil and qd.type(P) ~= "qd.Matrix" then bad(2, fname, "qd.Matrix (parameters x time) expected, got " .. qd.type(P)) end
  o = check_opts(o, { vocab = true }, 3, fname)
  local vocab = vocab_of(o.vocab or "srv", 3, fname)
  local ops, why = S.decode(T, P, vocab)
  if not ops then return nil, why end
  local c = qd.circuit((T:shape()))
  for _, op in ipairs(ops) do
    local args = {}
    for i, q in ipairs(op.qubits) do args[i] = q end
    for _, a in ipairs(op.params) do args[#args + 1] = a end
    c[op.name](c, table.unpack(args))
  end
  return c
end

-- tokens.column(batch, b, n) -> circuit b of a batch as an n x G matrix
function M.column(batch, b, n)
  if qd.type(batch) ~= "qd.Matrix" then bad(1, "column", "qd.Matrix expected, got " .. qd.type(batch)) end
  local rows, B = batch:shape()
  if type(b) ~= "number" or b < 1 or b > B then bad(2, "column", "column 1 ... " .. B .. " expected") end
  if type(n) ~= "number" or n < 1 or rows % n ~= 0 then bad(3, "column", "a divisor of " .. rows .. " expected") end
  local G = rows // n
  local T = qd.matrix(n, G)
  for t = 1, G do
    for q = 1, n do T:set(q, t, batch:get(q + n * (t - 1), b)) end
  end
  return T
end

-- tokens.stack({T1, T2, ...}) -> batch (n*G x B) of equal-shaped n x G matrices
function M.stack(list)
  if type(list) ~= "table" or #list < 1 then bad(1, "stack", "non-empty table of qd.Matrix expected") end
  if qd.type(list[1]) ~= "qd.Matrix" then bad(1, "stack", "qd.Matrix expected at [1]") end
  local n, G = list[1]:shape()
  local Bm = qd.matrix(n * G, #list)
  for b, T in ipairs(list) do
    if qd.type(T) ~= "qd.Matrix" then bad(1, "stack", "qd.Matrix expected at [" .. b .. "]") end
    local n2, G2 = T:shape()
    if n2 ~= n or G2 ~= G then bad(1, "stack", string.format("%dx%d matrix expected at [%d], got %dx%d", n, G, b, n2, G2)) end
    for t = 1, G do
      for q = 1, n do Bm:set(q + n * (t - 1), b, T:get(q, t)) end
    end
  end
  return Bm
end

-- tokens.load(path) -> batch (n*G x B), n, G | nil, msg: a (B, n, G) or (n, G) .npy
M.load = S.load_tokens
-- tokens.save(path, batch, n): a (B, n, G) float64 .npy (parameters: n = P)
M.save = S.save_tokens
-- tokens.random(n, G, vocab, B [, rng] [, {min_gates, max_gates, pad}]) -> batch [, params]
function M.random(n, G, vocab, B, ...)
  return S.random(n, G, vocab_of(vocab, 3, "random"), B, ...)
end

return M
