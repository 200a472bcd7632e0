-- qd.synth — data and evaluation for quantum circuit synthesis (genQC, arXiv 2311.02041):
-- Schmidt-rank vectors (SRV), unitary distances, genQC-style data sets (random circuits over
-- a vocabulary, labelled by SRV or unitary, de-duplicated, balanced per label, seeded) and
-- one-call evaluation of any generator's token tensors. The hot loops (decoding, simulating
-- and ranking 10^5 circuits) are C (lua_synth.c, runtime/core/synth.c); circuits are token
-- batches as in qd.tokens (n*G x B real matrices, one circuit per column).
-- qd itself is loaded when these functions run (init.lua requires this file while loading)
local qd = setmetatable({}, { __index = function(_, k) return require("qd")[k] end })
local core = require "qd.core"
local tokens = require "qd.tokens"
local outside = require("qd.caller").outside
local S = core.synth

local M = {}

local function bad(k, fname, msg)
  error(string.format("bad argument #%d to '%s' (%s)", k, fname, msg), outside())
end

local check_opts = require("qd.caller").check_options

-- the label text of an SRV table, "[2,1,2]" (genQC's prompt "Generate SRV: [2, 1, 2]")
function M.label(srv)
  if type(srv) ~= "table" then bad(1, "label", "table of ranks expected, got " .. qd.type(srv)) end
  return "[" .. table.concat(srv, ",") .. "]"
end

-- synth.srv(x [, {tol = 1e-8, params =}]) -> table of n Schmidt ranks (qubit q at [q + 1]),
-- table of the reduced states' smaller eigenvalues. x: a qd.State, a qd.Ensemble (then an
-- n x N matrix of ranks) or a qd.Circuit (its output from |0...0>).
function M.srv(x, o)
  o = check_opts(o, { tol = true, params = true }, 2, "srv")
  local tol = o.tol or 1e-8
  if type(tol) ~= "number" or tol < 0 or tol >= 1 then bad(2, "srv", "option 'tol': number in [0, 1) expected") end
  if qd.type(x) == "qd.Circuit" then
    x = x:run(qd.state(x.n), o.params)
  elseif o.params then
    bad(2, "srv", "option 'params' is for circuits")
  end
  local t = qd.type(x)
  if t ~= "qd.State" and t ~= "qd.Ensemble" then bad(1, "srv", "qd.State, qd.Ensemble or qd.Circuit expected, got " .. t) end
  return S.srv(x, tol)
end

local function unitary_of(U, k, fname, params)
  if qd.type(U) == "qd.Circuit" then return U:unitary(params) end
  if qd.type(U) ~= "qd.Matrix" and type(U) ~= "table" then
    bad(k, fname, "qd.Matrix, table of rows or qd.Circuit expected, got " .. qd.type(U))
  end
  return U
end

-- synth.distance(U, V) -> 1/2 ||U - V||_F^2; U, V matrices or circuits
function M.distance(U, V)
  return S.distance(unitary_of(U, 1, "distance"), unitary_of(V, 2, "distance"))
end

-- synth.infidelity(U, V) -> 1 - |Tr(V^dagger U)/d|^2 (free of a global phase)
function M.infidelity(U, V)
  return S.infidelity(unitary_of(U, 1, "infidelity"), unitary_of(V, 2, "infidelity"))
end

-- synth.compiles(circuit, U [, tol = 1e-3 [, params]]) -> true | false, infidelity
function M.compiles(c, U, tol, params)
  if qd.type(c) ~= "qd.Circuit" then bad(1, "compiles", "qd.Circuit expected, got " .. qd.type(c)) end
  tol = tol or 1e-3
  if type(tol) ~= "number" or tol <= 0 then bad(3, "compiles", "tolerance > 0 expected") end
  local f = S.infidelity(c:unitary(params), unitary_of(U, 2, "compiles"))
  return f < tol, f
end

-- synth.reverse_qubits(U) -> U with the qubit order reversed (Qiskit's little-endian
-- matrices <-> qd's big-endian ones): (P U P)[i, j] = U[rev(i), rev(j)]
function M.reverse_qubits(U)
  if qd.type(U) ~= "qd.Matrix" then bad(1, "reverse_qubits", "qd.Matrix expected, got " .. qd.type(U)) end
  local d, d2 = U:shape()
  local n = math.floor(math.log(d, 2) + 0.5)
  if d ~= d2 or 1 << n ~= d then bad(1, "reverse_qubits", "2^n x 2^n matrix expected") end
  local rev = {}
  for i = 0, d - 1 do
    local r = 0
    for b = 0, n - 1 do if i & (1 << b) ~= 0 then r = r | (1 << (n - 1 - b)) end end
    rev[i] = r
  end
  local cplx = U:is_complex()
  local V = qd.matrix(d, d, { complex = cplx })
  for i = 0, d - 1 do
    for j = 0, d - 1 do
      if cplx then
        local re, im = U:get(rev[i] + 1, rev[j] + 1)
        V:set(i + 1, j + 1, { re, im })
      else
        V:set(i + 1, j + 1, U:get(rev[i] + 1, rev[j] + 1))
      end
    end
  end
  return V
end

-- per-column SRV labels of an n x B rank matrix: list of label strings, list of rank tables
local function srv_labels(R, n, B, valid)
  local labels = {}
  for b = 1, B do
    if not valid or valid[b] == 1 then
      local t = {}
      for q = 1, n do t[q] = math.tointeger(R:get(q, b)) end
      labels[b] = M.label(t)
    else
      labels[b] = false
    end
  end
  return labels
end

-- the classes (sorted label strings) of a list of labels and the indices of each
local function group(labels, keep)
  local idx, names = {}, {}
  for b, l in ipairs(labels) do
    if l and keep[b] then
      if not idx[l] then idx[l] = {}; names[#names + 1] = l end
      local t = idx[l]
      t[#t + 1] = b
    end
  end
  table.sort(names)
  return names, idx
end

local function shuffle(list, rng)
  for i = #list, 2, -1 do
    local j = rng:integer(1, i)
    list[i], list[j] = list[j], list[i]
  end
end

local dataset_opts = { qubits = true, max_gates = true, min_gates = true, vocab = true, samples = true,
                       label = true, dedup = true, balance = true, per_class = true, rng = true,
                       seed = true, tol = true }

-- synth.dataset{qubits =, max_gates =, min_gates = 1, vocab = "srv", samples =, label = "srv" |
--   "unitary", dedup = "tokens" | "unitary" | false, balance = true, per_class =, seed | rng}
-- -> {tokens = batch (n*G x B), params = batch | nil, srv = n x B ranks, labels = {...},
--     classes = {label = count}, unitaries = d*d x B (label "unitary"), generated, unique}
-- genQC's recipe: random circuits (gate count uniform in min_gates ... max_gates, gates and
-- qubits uniform), labelled, de-duplicated (by canonical tokens, or by unitary up to a
-- global phase), balanced (every class cut to the smallest class's size, or per_class),
-- shuffled. All randomness from the rng (default qd.rng(seed), seed default 1).
function M.dataset(o)
  local fname = "dataset"
  o = check_opts(o, dataset_opts, 1, fname)
  local n, G, N = o.qubits, o.max_gates, o.samples
  for _, k in ipairs { "qubits", "max_gates", "samples" } do
    if math.type(o[k]) ~= "integer" or o[k] < 1 then bad(1, fname, "option '" .. k .. "': integer >= 1 expected") end
  end
  local vocab = tokens.vocab_of(o.vocab or "srv", 1, fname)
  local label = o.label or "srv"
  if label ~= "srv" and label ~= "unitary" then bad(1, fname, "option 'label': srv or unitary expected") end
  local dedup = o.dedup == nil and "tokens" or o.dedup
  if dedup ~= "tokens" and dedup ~= "unitary" and dedup ~= false then
    bad(1, fname, "option 'dedup': tokens, unitary or false expected")
  end
  local rng = o.rng or qd.rng(o.seed or 1)
  local T, P = S.random(n, G, vocab, N, rng:substream(1), { min_gates = o.min_gates or 1, max_gates = G })
  local want_u = label == "unitary"
  local r = S.eval(T, n, vocab, { params = P, tol = o.tol, srv = true, unitaries = want_u,
                                  keys = dedup == "unitary" and "unitary" or "ops" })
  local keep, seen, nunique = {}, {}, 0
  for b = 1, N do
    local k = r.keys[b]
    if dedup == false or not seen[k] then
      seen[k] = true
      keep[b] = true
      nunique = nunique + 1
    end
  end
  local labels
  if label == "srv" then
    labels = srv_labels(r.srv, n, N)
  else
    labels = {}
    for b = 1, N do labels[b] = "unitary" end
  end
  local names, idx = group(labels, keep)
  local per = o.per_class
  if o.balance ~= false and label == "srv" then
    for _, l in ipairs(names) do per = math.min(per or math.huge, #idx[l]) end
  end
  local sel, classes = {}, {}
  local srng = rng:substream(2)
  for _, l in ipairs(names) do
    local list = idx[l]
    shuffle(list, srng)
    local m = per and math.min(per, #list) or #list
    classes[l] = m
    for i = 1, m do sel[#sel + 1] = list[i] end
  end
  shuffle(sel, srng)
  local ds = { tokens = qd.nn.columns(T, sel), params = P and qd.nn.columns(P, sel) or nil,
               srv = qd.nn.columns(r.srv, sel), classes = classes, names = names, qubits = n,
               max_gates = G, vocab = vocab, generated = N, unique = nunique, labels = {} }
  for i, b in ipairs(sel) do ds.labels[i] = labels[b] end
  if want_u then ds.unitaries = qd.nn.columns(r.unitaries, sel) end
  return ds
end

-- synth.save_dataset(dir, ds): tokens.npy (B, n, G), srv.npy (B, n), params.npy (B, P, G),
-- unitaries.npy (B, d*d, 1: column-major U per circuit) as present. dir: a directory, or a
-- run record (qd.record; the files are then part of the record)
function M.save_dataset(dir, ds)
  if type(dir) ~= "string" and not (type(dir) == "table" and dir.path) then
    bad(1, "save_dataset", "directory or run record expected, got " .. qd.type(dir))
  end
  if type(ds) ~= "table" or qd.type(ds.tokens) ~= "qd.Matrix" then
    bad(2, "save_dataset", "a data set (qd.synth.dataset) expected")
  end
  local function path(name)
    if type(dir) == "table" and dir.path then return dir:path(name) end
    return dir .. "/" .. name
  end
  S.save_tokens(path("tokens.npy"), ds.tokens, ds.qubits)
  S.save_tokens(path("srv.npy"), ds.srv, ds.qubits)
  if ds.params then S.save_tokens(path("params.npy"), ds.params, ds.params:shape() // ds.max_gates) end
  if ds.unitaries then S.save_tokens(path("unitaries.npy"), ds.unitaries, 1) end
end

-- the requested SRV of column b: a table of ranks (all circuits) or an n x B matrix
local function requested(req, n, B, fname)
  if qd.type(req) == "qd.Matrix" then
    local r, c = req:shape()
    if r ~= n or c ~= B then bad(2, fname, string.format("option 'srv': %d x %d matrix expected, got %d x %d", n, B, r, c)) end
    return srv_labels(req, n, B)
  end
  if type(req) ~= "table" or #req ~= n then bad(2, fname, "option 'srv': table of " .. n .. " ranks or an n x B matrix expected") end
  local l, labels = M.label(req), {}
  for b = 1, B do labels[b] = l end
  return labels
end

-- the keys of a training set (a token batch) as a set
local function train_keys(train, n, vocab, P)
  local r = S.eval(train, n, vocab, { srv = false, keys = "ops", params = P })
  local set = {}
  for _, k in ipairs(r.keys) do if k then set[k] = true end end
  return set
end

local eval_opts = { qubits = true, vocab = true, target = true, srv = true, unitary = true, train = true,
                    train_params = true, params = true, tol = true, srv_tol = true }

-- synth.evaluate(batch, {qubits =, vocab = "srv", target = "srv" | "unitary", srv = ranks |
--   n x B matrix, unitary = U | d*d x B matrix, train = batch, params =, tol = 1e-3}) -> table
-- valid_fraction, accuracy (correct / all), per_class {label = {n, accuracy}}, gates_mean,
-- gates_min, gates_max, gates_hist (of valid circuits), unique_fraction (distinct correct /
-- correct), novel_fraction (correct not in the training set / correct), count.
function M.evaluate(batch, o)
  local fname = "evaluate"
  if qd.type(batch) ~= "qd.Matrix" then bad(1, fname, "token batch (qd.Matrix, n*G x B) expected, got " .. qd.type(batch)) end
  o = check_opts(o, eval_opts, 2, fname)
  local n = o.qubits
  if math.type(n) ~= "integer" or n < 1 then bad(2, fname, "option 'qubits': integer >= 1 expected") end
  local vocab = tokens.vocab_of(o.vocab or "srv", 2, fname)
  local target = o.target or "srv"
  local _, B = batch:shape()
  local eopt = { params = o.params, keys = "ops", srv = target == "srv", tol = o.srv_tol }
  local want
  if target == "srv" then
    want = requested(o.srv, n, B, fname)
  elseif target == "unitary" then
    if o.unitary == nil then bad(2, fname, "option 'unitary' is required with target = \"unitary\"") end
    eopt.target = o.unitary
  else
    bad(2, fname, "option 'target': srv or unitary expected")
  end
  local r = S.eval(batch, n, vocab, eopt)
  local tol = o.tol or 1e-3
  local got = target == "srv" and srv_labels(r.srv, n, B, r.valid) or nil
  local res = { count = B, per_class = {} }
  local nvalid, ncorrect, gsum, gmin, gmax, hist = 0, 0, 0, math.huge, 0, {}
  local uniq, nuniq, novel = {}, 0, 0
  local tk = o.train and train_keys(o.train, n, vocab, o.train_params) or nil
  for b = 1, B do
    local cls = target == "srv" and want[b] or "unitary"
    local pc = res.per_class[cls] or { n = 0, correct = 0 }
    res.per_class[cls] = pc
    pc.n = pc.n + 1
    if r.valid[b] == 1 then
      nvalid = nvalid + 1
      local g = math.tointeger(r.gates[b])
      gsum, gmin, gmax = gsum + g, math.min(gmin, g), math.max(gmax, g)
      hist[g + 1] = (hist[g + 1] or 0) + 1
      local ok
      if target == "srv" then ok = got[b] == want[b] else ok = r.infidelity[b] < tol end
      if ok then
        ncorrect, pc.correct = ncorrect + 1, pc.correct + 1
        local k = r.keys[b]
        if not uniq[k] then uniq[k] = true; nuniq = nuniq + 1 end
        if tk and not tk[k] then novel = novel + 1 end
      end
    end
  end
  for _, pc in pairs(res.per_class) do pc.accuracy = pc.correct / pc.n end
  for g = 1, gmax + 1 do hist[g] = hist[g] or 0 end
  res.valid_fraction = nvalid / B
  res.accuracy = ncorrect / B
  res.correct = ncorrect
  res.gates_mean = nvalid > 0 and gsum / nvalid or 0
  res.gates_min = nvalid > 0 and gmin or 0
  res.gates_max = gmax
  res.gates_hist = hist
  res.unique_fraction = ncorrect > 0 and nuniq / ncorrect or 0
  res.novel_fraction = tk and (ncorrect > 0 and novel / ncorrect or 0) or nil
  return res
end

return M
