-- test_synth.lua — qd.synth against numpy references (tests/data/synth, made by
-- make_synth_refs.py independently of qd): Schmidt-rank vectors of random states (genQC's
-- partial trace + matrix_rank), and of 40 random multimodal token circuits' outputs; their
-- unitaries, infidelities and Frobenius distances against a random target; decode + c:unitary
-- agreeing with the batch path; data-set generation (seeded, de-duplicated, balanced) and the
-- one-call evaluation; thread-count independence; argument errors.
local T = require "testlib"

local src = debug.getinfo(1, "S").source:match("^@(.*)$") or ""
local datadir = os.getenv("QD_TEST_DATA") or ((src:match("^(.*)/lua/[^/]*$") or "tests") .. "/data")
local D = datadir .. "/synth/"
local MM = { "h", "cx", "ccx", "swap", "rx", "ry", "rz", "cp" }

T.test("SRV of random states against numpy", function()
  for n = 2, 5 do
    local E = assert(qd.load_npy(D .. "srv_states_n" .. n .. ".npy", "ensemble"))
    local want = assert(qd.load_npy(D .. "srv_n" .. n .. ".npy", "matrix"))
    local R = qd.synth.srv(E)
    local bad = 0
    for k = 1, #E do
      for q = 1, n do if R:get(q, k) ~= want:get(k, q) then bad = bad + 1 end end
      local r1 = qd.synth.srv(E[k])
      for q = 1, n do if r1[q] ~= want:get(k, q) then bad = bad + 1 end end
    end
    T.eq(bad, 0, "n = " .. n)
  end
  local s = qd.state(3):h(0):cx(0, 2)
  local r, ev = qd.synth.srv(s)
  T.eq(table.concat(r, ","), "2,1,2", "Bell pair on qubits 0 and 2")
  T.near(ev[1], 0.5, 1e-15, "smaller eigenvalue 1/2")
  T.near(ev[2], 0, 1e-15, "product qubit")
  T.eq(table.concat(qd.synth.srv(qd.circuit(3):h(1):cx(1, 2)), ","), "1,2,2", "a circuit's output")
end)

T.test("token circuits: unitaries, SRV, infidelity, distance against numpy", function()
  local batch, n, G = qd.tokens.load(D .. "circ_tokens.npy")
  T.eq(n, 3, "n")
  T.eq(G, 12, "G")
  local P = assert(qd.tokens.load(D .. "circ_params.npy"))
  local I32 = assert(qd.tokens.load(D .. "circ_tokens_int32.npy"))
  local same = true
  for b = 1, 40 do for i = 1, 36 do if I32:get(i, b) ~= batch:get(i, b) then same = false end end end
  T.ok(same, "int32 tokens (genQC's dtype) read the same")
  local V = assert(qd.load_npy(D .. "circ_target.npy", "matrix"))
  local Us = assert(qd.load_npy(D .. "circ_unitaries.npy", "ensembles"))
  local srv = assert(qd.load_npy(D .. "circ_srv.npy", "matrix"))
  local infid = assert(qd.load_npy(D .. "circ_infid.npy", "vector"))
  local dist = assert(qd.load_npy(D .. "circ_dist.npy", "vector"))
  local r = require("qd.core").synth.eval(batch, 3, MM, { params = P, target = V, unitaries = true })
  local B = #infid
  local du, ds, di, dd = 0, 0, 0, 0
  for b = 1, B do
    T.eq(r.valid[b], 1, "valid " .. b)
    -- Us[b] member i + 1 is row i of U_b (C order)
    for i = 0, 7 do
      for j = 0, 7 do
        local re, im = r.unitaries:get(i + 8 * j + 1, b)
        local wr, wi = Us[b][i + 1]:amp(j + 1)
        du = math.max(du, math.abs(re - wr) + math.abs(im - wi))
      end
    end
    for q = 1, 3 do if r.srv:get(q, b) ~= srv:get(b, q) then ds = ds + 1 end end
    di = math.max(di, math.abs(r.infidelity[b] - infid[b]))
    dd = math.max(dd, math.abs(r.distance[b] - dist[b]))
    -- the decoded circuit's own unitary agrees with the batch path
    local c = assert(qd.tokens.decode(qd.tokens.column(batch, b, 3), qd.tokens.column(P, b, 1), { vocab = MM }))
    T.near(qd.synth.infidelity(c, V), infid[b], 1e-12, "decode path infidelity " .. b)
  end
  T.ok(du < 1e-12, "unitaries, max deviation " .. du)
  T.eq(ds, 0, "SRV of the outputs")
  T.ok(di < 1e-12, "infidelity, max deviation " .. di)
  T.ok(dd < 1e-12, "distance, max deviation " .. dd)
end)

T.test("unitary distances and compiles", function()
  local c = qd.circuit(2):h(0):cx(0, 1)
  local U = c:unitary()
  T.near(qd.synth.infidelity(U, U), 0, 1e-15, "same")
  local c2 = qd.circuit(2):h(0):cx(0, 1):rz(0, 2 * math.pi)   -- -I on the output: a global phase
  T.near(qd.synth.infidelity(c2, U), 0, 1e-14, "global phase free")
  T.near(qd.synth.distance(c2, U), 8, 1e-12, "Frobenius distance sees the phase: 1/2 ||2U||^2 = 2d")
  T.eq(qd.synth.compiles(c2, U), true, "compiles")
  local ok, f = qd.synth.compiles(qd.circuit(2):h(0), U)
  T.eq(ok, false, "does not compile")
  T.near(f, 0.75, 1e-12, "against the Bell circuit: 1 - |Tr(CX)/4|^2 = 1 - 1/4")
  local Q = qd.synth.reverse_qubits(qd.circuit(2):cx(0, 1):unitary())
  T.near(qd.synth.infidelity(Q, qd.circuit(2):cx(1, 0):unitary()), 0, 1e-15, "reversed qubit order")
end)

T.test("data set: seeded, de-duplicated, balanced", function()
  local ds = qd.synth.dataset { qubits = 3, max_gates = 6, samples = 3000, seed = 5 }
  local ds2 = qd.synth.dataset { qubits = 3, max_gates = 6, samples = 3000, seed = 5 }
  T.eq(#ds.names, 5, "five SRV classes on 3 qubits")
  local cnt
  for _, l in ipairs(ds.names) do
    cnt = cnt or ds.classes[l]
    T.eq(ds.classes[l], cnt, "balanced " .. l)
  end
  local _, B = ds.tokens:shape()
  T.eq(B, 5 * cnt, "size")
  local same = true
  for b = 1, B do for i = 1, 18 do if ds.tokens:get(i, b) ~= ds2.tokens:get(i, b) then same = false end end end
  T.ok(same, "same seed, same bits")
  local ev = qd.synth.evaluate(ds.tokens, { qubits = 3, srv = ds.srv, train = ds.tokens })
  T.eq(ev.accuracy, 1, "labels are the SRVs")
  T.eq(ev.unique_fraction, 1, "de-duplicated")
  T.eq(ev.novel_fraction, 0, "all in the training set")
  T.eq(ev.valid_fraction, 1, "valid")
  local du = qd.synth.dataset { qubits = 2, max_gates = 4, samples = 500, seed = 2, dedup = "unitary", label = "unitary" }
  local _, Bu = du.tokens:shape()
  local r = require("qd.core").synth.eval(du.tokens, 2, { "h", "cx" }, { keys = "unitary" })
  local seen, dup = {}, 0
  for b = 1, Bu do if seen[r.keys[b]] then dup = dup + 1 end; seen[r.keys[b]] = true end
  T.eq(dup, 0, "unitary de-duplication: no two equal up to phase")
  T.ok(Bu < 200, "few distinct 2-qubit {h, cx} unitaries up to 4 gates (" .. Bu .. ")")
  T.eq(select(2, du.unitaries:shape()), Bu, "unitary labels")
end)

T.test("evaluation table", function()
  -- 4 circuits on 2 qubits: Bell (srv [2,2]), H (srv [1,1]), invalid, Bell again
  local B = qd.tokens.stack {
    qd.matrix { { 1, -2, 3 }, { 0, 2, 3 } }, qd.matrix { { 1, 3, 3 }, { 0, 3, 3 } },
    qd.matrix { { -2, 0, 0 }, { 0, 0, 0 } }, qd.matrix { { 1, -2, 3 }, { 0, 2, 3 } } }
  local ev = qd.synth.evaluate(B, { qubits = 2, srv = { 2, 2 } })
  T.eq(ev.valid_fraction, 0.75, "valid")
  T.eq(ev.accuracy, 0.5, "accuracy counts invalid as wrong")
  T.eq(ev.unique_fraction, 0.5, "two correct, one distinct")
  T.eq(ev.gates_mean, 5 / 3, "gates")
  T.eq(ev.gates_hist[2] + ev.gates_hist[3], 3, "histogram")
  T.eq(ev.novel_fraction, nil, "no training set, no novelty")
  local ev2 = qd.synth.evaluate(B, { qubits = 2, srv = { 2, 2 }, train = qd.tokens.stack { qd.matrix { { 1, -2, 0 }, { 0, 2, 0 } } } })
  T.eq(ev2.novel_fraction, 0, "padding and empty columns do not make a circuit new")
  local U = qd.circuit(2):h(0):cx(0, 1):unitary()
  local ev3 = qd.synth.evaluate(B, { qubits = 2, target = "unitary", unitary = U })
  T.eq(ev3.accuracy, 0.5, "compiles")
  T.eq(ev3.per_class.unitary.n, 4, "per class")
end)

T.test("evaluation independent of the thread count", function()
  local batch = qd.tokens.random(5, 16, { "h", "cx" }, 3000, qd.rng(9))
  local S = require("qd.core").synth
  local old = qd.threads()
  qd.set_threads(1)
  local r1 = S.eval(batch, 5, { "h", "cx" }, { keys = "ops" })
  qd.set_threads(2)
  local r2 = S.eval(batch, 5, { "h", "cx" }, { keys = "ops" })
  qd.set_threads(old)
  local same = true
  for b = 1, 3000 do
    for q = 1, 5 do if r1.srv:get(q, b) ~= r2.srv:get(q, b) then same = false end end
    if r1.keys[b] ~= r2.keys[b] then same = false end
  end
  T.ok(same, "1 and 2 threads")
end)

T.test("argument errors", function()
  local S = require("qd.core").synth
  T.raises(function() qd.synth.srv(qd.dm(2)) end, "qd.State, qd.Ensemble or qd.Circuit expected")
  T.raises(function() qd.synth.srv(qd.state(2), { tol = 2 }) end, "option 'tol'")
  T.raises(function() qd.synth.infidelity(qd.matrix(2, 2), qd.matrix(4, 4)) end, "2x2 matrix expected, got 4x4")
  T.raises(function() qd.synth.compiles(5, qd.matrix(2, 2)) end, "qd.Circuit expected")
  T.raises(function() qd.synth.dataset { qubits = 3 } end, "option 'max_gates'")
  T.raises(function() qd.synth.dataset { qubits = 3, max_gates = 2, samples = 4, label = "x" } end, "option 'label'")
  T.raises(function() qd.synth.evaluate(qd.matrix(6, 2), { qubits = 2, srv = { 1 } }) end, "option 'srv'")
  T.raises(function() qd.synth.evaluate(qd.matrix(6, 2), { qubits = 2, target = "unitary" }) end, "option 'unitary'")
  T.raises(function() qd.synth.evaluate(qd.matrix(6, 2), { qubits = 2, srv = { 1, 1 }, x = 1 }) end, "unknown option 'x'")
  T.raises(function() S.eval(qd.matrix(7, 2), 2, { "h" }) end, "rows a multiple n*G")
  T.raises(function() S.eval(qd.matrix(6, 2), 0, { "h" }) end, "qubits 1 ... 16")
  T.raises(function() S.eval(qd.matrix(6, 2), 2, { "h" }, { target = qd.matrix(2, 2) }) end, "option 'target'")
  T.raises(function() S.eval(qd.matrix(6, 2), 2, { "h" }, { keys = "x" }) end, "option 'keys'")
  T.raises(function() S.eval(qd.matrix(6, 2), 2, {}) end, "at least one gate")
  T.raises(function() S.embed(qd.matrix { { 5 } }, qd.matrix(2, 3), -1) end, "outside -1 ... 1")
  T.raises(function() S.nearest(qd.matrix(3, 1), qd.matrix(2, 3), 0) end, "multiple of the embedding dimension")
  T.raises(function() S.diffuse(qd.matrix(3, 2), qd.vector(3), qd.vector(2)) end, "rows expected")
  T.eq(select(2, qd.tokens.load("/nonexistent-qd/x.npy")) ~= nil, true, "load: nil, message")
end)

return T
