-- test_msquddpm.lua — qd.protocols.msquddpm and its kernels (core.dms_*): stacks, the
-- superfidelity MMD / Wasserstein against pairwise Lua references and their gradients against
-- finite differences, the Kraus step against the density-matrix circuit with the ancillas
-- measured, the step's parameter gradient against finite differences, the schedules, the run
-- record and its files, resume bit for bit, and the error messages.
local qd, core, json = require "qd", require "qd.core", require "qd.json"
local msq = require "qd.protocols.msquddpm"
local T = require "testlib"
local P, tmp, slurp = msq.pieces, T.tmpdir(), T.slurp

local function random_stack(n, N, seed)
  local list = {}
  for k = 1, N do list[k] = qd.data.random_mixed(n, qd.rng(seed):substream(k), { measure = "mixture", rank = 2 }) end
  return msq.stack(list), list
end

-- Re Tr(a b) and the superfidelity, from the entries
local function trprod(a, b)
  local d, s = 1 << a.n, 0.0
  for i = 1, d do
    for j = 1, d do
      local ar, ai = a:get(i, j)
      local br, bi = b:get(j, i)
      s = s + ar * br - ai * bi
    end
  end
  return s
end
local function sf(a, b)
  local pa, pb = math.max(1e-16, 1 - trprod(a, a)), math.max(1e-16, 1 - trprod(b, b))
  return trprod(a, b) + math.sqrt(pa * pb)
end

-- the largest |A_ij - B_ij| of two stacks (qd.Matrix arithmetic, then the entries)
local function maxdiff_stack(A, B)
  local m = 0
  for _, row in ipairs((A - B):abs():totable()) do m = math.max(m, table.unpack(row)) end
  return m
end

local function cfg(extra)
  local c = { target = msq.targets.cluster(1, 12, qd.rng(5)), T = 2, L = 2, na = 2, N = 6, epochs = 8,
              quiet = true, seed = 3, loss = "wasserstein" }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

T.test("msquddpm: stacks (from, get, gather, depolarize, expect)", function()
  local S, list = random_stack(2, 4, 1)
  T.eq(select(1, S:shape()), 16, "d^2 rows")
  T.eq(select(2, S:shape()), 4, "N columns")
  for k = 1, 4 do T.ok(maxdiff_stack(msq.stack { msq.member(S, k) }, msq.stack { list[k] }) == 0, "member " .. k) end
  local G = core.dms_gather(S, { 3, 1 })
  T.ok(maxdiff_stack(G, msq.stack { list[3], list[1] }) == 0, "gather")
  local D = core.dms_depolarize(S, 0.3)
  local I = qd.maximally_mixed(2)
  T.ok(maxdiff_stack(D, msq.stack { list[1] * 0.3 + I * 0.7, list[2] * 0.3 + I * 0.7, list[3] * 0.3 + I * 0.7,
                                    list[4] * 0.3 + I * 0.7 }) < 1e-15, "depolarize")
  local O = msq.mx_operator(2)
  local v = core.dms_expect(S, O)
  for k = 1, 4 do T.near(v[k], list[k]:expect(qd.pauli_sum { { 0.5, "XI" }, { 0.5, "IX" } }), 1e-14, "mx " .. k) end
end)

T.test("msquddpm: MMD and Wasserstein = their pairwise definitions", function()
  local A, la = random_stack(1, 4, 2)
  local B, lb = random_stack(1, 4, 3)
  local aa, bb, ab = 0, 0, 0
  for i = 1, 4 do
    for j = 1, 4 do
      aa, bb, ab = aa + sf(la[i], la[j]), bb + sf(lb[i], lb[j]), ab + sf(la[i], lb[j])
    end
  end
  T.near(msq.loss(A, B, "mmd"), (aa + bb - 2 * ab) / 16, 1e-14, "MMD")
  local best = math.huge
  local function perm(p, k)   -- every permutation of 1..4
    if k > 4 then
      local s = 0
      for i = 1, 4 do s = s + 1 - sf(la[i], lb[p[i]]) end
      best = math.min(best, s / 4)
      return
    end
    for i = k, 4 do
      p[k], p[i] = p[i], p[k]
      perm(p, k + 1)
      p[k], p[i] = p[i], p[k]
    end
  end
  perm({ 1, 2, 3, 4 }, 1)
  T.near(msq.loss(A, B, "wasserstein"), best, 1e-14, "Wasserstein")
  T.near(msq.loss(A, A, "mmd"), 0, 1e-15, "MMD(A, A) = 0")
end)

T.test("msquddpm: loss gradients against finite differences", function()
  local A = random_stack(2, 3, 4)
  local B = random_stack(2, 5, 5)
  for _, kind in ipairs { "mmd", "wasserstein" } do
    local _, G = msq.loss(A, B, kind, true)
    -- a Hermitian direction on member 2 (vec index, column-major 4x4: (1,2) = 5, (2,1) = 2, (3,3) = 11)
    local dir = { { 5, 1, 0.5 }, { 2, 1, -0.5 }, { 11, 1, 0 } }
    local an = 0
    for _, e in ipairs(dir) do
      local gr, gi = G:get(e[1], 2)
      an = an + 2 * (gr * e[2] + gi * e[3])
    end
    local h = 1e-6
    local function shift(s)
      for _, e in ipairs(dir) do
        local r, i = A:get(e[1], 2)
        A:set(e[1], 2, { r + s * h * e[2], i + s * h * e[3] })
      end
    end
    shift(1)
    local lp = msq.loss(A, B, kind)
    shift(-2)
    local lm = msq.loss(A, B, kind)
    shift(1)
    T.near(an, (lp - lm) / (2 * h), 1e-7, kind .. " gradient")
  end
end)

T.test("msquddpm: the Kraus step = the circuit on rho (x) ancillas, ancillas measured", function()
  for _, anc in ipairs { "zero", "haar" } do
    local c = P.check(cfg { ancilla = anc, target = random_stack(1, 6, 6) })
    local R = { c = c, circ = qd.ansatz.quddpm(c.n + c.na, c.L) }
    R.Ein = P.basis_inputs(c)
    local theta = qd.rng(7):normal(0, 1, R.circ:nparams())
    local X, list = random_stack(1, 5, 8)
    local out, x = P.step(R, theta, X, qd.rng(9))
    for k = 1, 5 do
      local a = anc == "haar" and qd.dm(x.anc:get(k)) or qd.dm(1)
      local full = a:kron(qd.dm(1)):kron(list[k])
      local o = R.circ:run(full, theta)
      local m = math.tointeger(x.oc[k])
      local blk = o:block({ 2 }, ((m >> 1) & 1) .. (m & 1))
      local want = blk * (1 / blk:trace())
      T.ok(maxdiff_stack(msq.stack { msq.member(out, k) }, msq.stack { want }) < 1e-13, anc .. " member " .. k)
    end
  end
end)

T.test("msquddpm: the Uhlmann kernel = qd.fidelity's root, pair by pair", function()
  for _, n in ipairs { 1, 2 } do
    local A, la = random_stack(n, 3, 20 + n)
    local B, lb = random_stack(n, 2, 30 + n)
    local aa, bb, ab = 0, 0, 0
    for i = 1, 3 do for j = 1, 3 do aa = aa + math.sqrt(qd.fidelity(la[i], la[j])) end end
    for i = 1, 2 do for j = 1, 2 do bb = bb + math.sqrt(qd.fidelity(lb[i], lb[j])) end end
    for i = 1, 3 do for j = 1, 2 do ab = ab + math.sqrt(qd.fidelity(la[i], lb[j])) end end
    T.near(msq.loss(A, B, "mmd", false, "uhlmann"), aa / 9 + bb / 4 - 2 * ab / 6, 1e-9, n .. " qubits: MMD")
  end
end)

T.test("msquddpm: the step's parameter gradient against finite differences", function()
  for _, anc in ipairs { "zero", "haar" } do
    for _, loss in ipairs { "mmd", "wasserstein", "uhlmann" } do
      local kernel = loss == "uhlmann" and "uhlmann" or nil
      loss = loss == "uhlmann" and (anc == "zero" and "mmd" or "wasserstein") or loss
      local c = P.check(cfg { ancilla = anc, loss = loss, L = 1, kernel = kernel })
      local R = { c = c, circ = qd.ansatz.quddpm(c.n + c.na, c.L) }
      R.Ein = P.basis_inputs(c)
      local theta = qd.rng(11):normal(0, 1, R.circ:nparams())
      local X = random_stack(1, 6, 12)
      local targets = random_stack(1, 6, 13)
      local a = anc == "haar" and qd.ensemble.haar(1, 6, qd.rng(14)) or nil
      local _, g = P.loss_grad(R, theta, X, targets, qd.rng(15), a)
      local h = 1e-6
      for i = 1, #theta do
        local t0 = theta[i]
        theta[i] = t0 + h
        local lp = P.loss_grad(R, theta, X, targets, qd.rng(15), a)
        theta[i] = t0 - h
        local lm = P.loss_grad(R, theta, X, targets, qd.rng(15), a)
        theta[i] = t0
        T.near(g[i], (lp - lm) / (2 * h), 1e-7, string.format("%s %s dL/dtheta_%d", anc, loss, i))
      end
    end
  end
end)

T.test("msquddpm: schedules and the learning-rate decay", function()
  local b = msq.betas("cosine", 6)
  local function f(t) return math.cos((t / 6 + 0.001) / 1.001 * math.pi / 2) ^ 2 end
  for t = 1, 5 do T.near(b[t], math.max(1e-4, 1 - f(t) / f(t - 1)), 1e-15, "cosine beta " .. t) end
  T.eq(b[6], 1.0, "the last cosine beta clipped to 1")
  local q = msq.betas("sq_cosine", 6)
  for t = 1, 6 do T.eq(q[t], b[t] * b[t], "sq_cosine = cosine squared") end
  T.eq(msq.betas("linear", 3)[2], 1.0, "linear without from/to: ones")
  T.near(msq.betas("linear", 3, { from = 0.1, to = 0.5 })[2], 0.3, 1e-15, "linear from/to")
  local sets, keep = msq.forward(random_stack(1, 2, 1), b, 1)
  T.eq(#sets, 7, "T + 1 sets")
  T.near(keep[7], 0, 0, "cosine ends maximally mixed")
  local c = { lr = 1, lr_decay = 0.5, lr_decay_count = 4, epochs = 100 }
  T.eq(msq.lr_at(c, 25), 1, "before the first decay")
  T.eq(msq.lr_at(c, 26), 0.5, "after epoch 25")
  T.eq(msq.lr_at(c, 100), 0.125, "three decays, none after the last epoch")
end)

T.test("msquddpm: a run writes its record and files; targets", function()
  local res = msq.run(cfg { out = tmp .. "/run" })
  local rec = json.decode(slurp(tmp .. "/run/run.json"))
  T.eq(rec.status, "done", "status")
  for _, k in ipairs { "F0_train", "F0_test", "F0_data", "mmd_train", "wass_test", "purity_train" } do
    T.ok(type(rec.metrics[k]) == "number", "metric " .. k)
  end
  T.eq(#rec.per_t.mmd, 3, "per-t MMD, t = 0 ... T")
  for _, f in ipairs { "params.npy", "loss.npy", "target.npy", "generated_train.npy", "generated_test.npy", "checkpoint.json" } do
    T.ok(slurp(tmp .. "/run/" .. f) ~= nil, f .. " written")
  end
  T.eq(#res.losses[1], 8, "a loss per epoch")
  T.ok(res.gen_train[1]:is_complex(), "generated stack")
  local S = msq.targets.circle(5, qd.rng(1))
  for k = 1, 5 do T.near(msq.member(S, k):trace(), 1, 1e-14, "circle member trace") end
  local tf = msq.targets.tfim(3, 2, qd.rng(1))
  T.near(msq.member(tf, 1):purity(), 1, 1e-12, "tfim members pure")
  T.ok(core.dms_expect(tf, msq.mx_operator(3))[1] > 0.5, "g near 2: large X magnetisation")
end)

T.test("msquddpm: a resumed run is bit for bit the uninterrupted one", function()
  for _, anc in ipairs { "haar", "zero" } do
    local full = msq.run(cfg { out = tmp .. "/full" .. anc, ancilla = anc })
    local part = msq.run(cfg { out = tmp .. "/part" .. anc, ancilla = anc, stop_after = 11 })
    T.eq(part.stopped, true, "stopped")
    local res = msq.run(cfg { resume = tmp .. "/part" .. anc, ancilla = anc })
    for t = 1, 2 do
      for e = 1, 8 do T.eq(res.losses[t][e], full.losses[t][e], anc .. " loss " .. t .. "," .. e) end
    end
    T.eq(slurp(tmp .. "/part" .. anc .. "/generated_test.npy"), slurp(tmp .. "/full" .. anc .. "/generated_test.npy"),
      "generated_test.npy identical")
    T.raises(function() msq.run(cfg { resume = tmp .. "/part" .. anc, ancilla = anc, epochs = 9 }) end, "settings",
      "changed settings refused")
  end
end)

T.test("msquddpm: best-of-k initialisations (screening), resumed bit for bit", function()
  local o = { best_of = 3, screen = 3, epochs = 6 }
  local full = msq.run(cfg { out = tmp .. "/bo_full", best_of = o.best_of, screen = o.screen, epochs = o.epochs })
  local st = json.decode(slurp(tmp .. "/bo_full/checkpoint.json")).state
  for i, s in ipairs(st.trained) do
    T.ok(s.r >= 1 and s.r <= 3, "step " .. i .. ": the kept candidate is one of 3")
    T.eq(#full.losses[math.tointeger(s.t)], 6, "the kept candidate trained to epochs")
  end
  T.eq(full.settings.screen, 3, "screen recorded")
  -- one candidate alone: best_of = 1 is the plain run
  local one = msq.run(cfg { out = tmp .. "/bo_one", epochs = 6 })
  local again = msq.run(cfg { out = tmp .. "/bo_one2", epochs = 6, best_of = 1 })
  T.eq(slurp(tmp .. "/bo_one/params.npy"), slurp(tmp .. "/bo_one2/params.npy"), "best_of = 1 is the default")
  T.ok(one.settings.screen == nil, "no screen without best_of")
  -- 12 epochs a step (3 x 3 screening, 3 more for the best): stopped inside a screening
  -- candidate (4), inside the continuation of the best (10), in the second step (13)
  for _, stop in ipairs { 4, 10, 13 } do
    local dir = tmp .. "/bo_part" .. stop
    local part = msq.run(cfg { out = dir, best_of = 3, screen = 3, epochs = 6, stop_after = stop })
    T.eq(part.stopped, true, "stopped after " .. stop)
    local res = msq.run(cfg { resume = dir, best_of = 3, screen = 3, epochs = 6 })
    for t = 1, 2 do
      for e = 1, 6 do T.eq(res.losses[t][e], full.losses[t][e], "stop " .. stop .. ": loss " .. t .. "," .. e) end
    end
    T.eq(slurp(dir .. "/generated_test.npy"), slurp(tmp .. "/bo_full/generated_test.npy"), "generated_test.npy identical")
  end
end)

T.test("msquddpm: a damaged checkpoint is refused before anything is written", function()
  local dir = tmp .. "/damaged"
  msq.run(cfg { out = dir, stop_after = 3 })
  local path = dir .. "/checkpoint.json"
  local good = slurp(path)
  local function with(edit, pattern, what)
    local doc = json.decode(good)
    edit(doc.state)
    local f = assert(io.open(path, "w"))
    f:write(json.encode(doc))
    f:close()
    T.raises(function() msq.run(cfg { resume = dir }) end, pattern, what)
  end
  with(function(st) st.trained = 5 end, "resume: damaged checkpoint (trained)", "trained")
  with(function(st) st.cur.best.params = { 1, 2 } end, "damaged checkpoint (cur.best.params: 12 numbers expected)", "params")
  with(function(st) st.cur.best.e = 99 end, "damaged checkpoint (cur.best)", "epochs beyond the run")
  with(function(st) st.cur.t = 1 end, "damaged checkpoint (cur)", "wrong step")
  with(function(st) st.trained = { { t = 1, params = {}, losses = {} } } end, "damaged checkpoint (trained[1])", "trained step")
  local f = assert(io.open(path, "w"))
  f:write(good)
  f:close()
  T.eq(msq.run(cfg { resume = dir }).stopped, false, "the intact checkpoint resumes")
end)

T.test("msquddpm: error messages", function()
  local S = random_stack(1, 3, 1)
  T.raises(function() msq.run(cfg { target = 5 }) end, "option 'target': qd.Matrix|table expected, got number", "target type")
  T.raises(function() msq.run(cfg { target = { 1, 2 } }) end, "option 'target': a stack or a list", "target list")
  T.raises(function() msq.run(cfg { target = qd.matrix(4, 3) }) end, "option 'target': a stack", "real matrix")
  T.raises(function() msq.run(cfg { N = 20 }) end, "option 'N': at most the target's 12 members expected, got 20", "N")
  T.raises(function() msq.run(cfg { na = 12 }) end, "n + na = 1 + 12", "too many qubits")
  T.raises(function() msq.run(cfg { lr = 0 }) end, "option 'lr': > 0 expected", "lr")
  T.raises(function() msq.run(cfg { lr_decay = 2 }) end, "option 'lr_decay': a factor in (0, 1]", "lr_decay")
  T.raises(function() msq.run(cfg { beta_from = 0.1 }) end, "'beta_from' and 'beta_to' go together", "from alone")
  T.raises(function() msq.run(cfg { beta_from = 0.1, beta_to = 0.2 }) end, "for schedule = linear", "from/to")
  T.raises(function() msq.run(cfg { schedule = "exp" }) end, "option 'schedule': linear, cosine, sq_cosine expected", "schedule")
  T.raises(function() msq.run(cfg { loss = "kl" }) end, "option 'loss': mmd, wasserstein expected", "loss")
  T.raises(function() msq.run(cfg { ancilla = "x" }) end, "option 'ancilla': haar, zero expected", "ancilla")
  T.raises(function() msq.run(cfg { epochs = 0 }) end, "option 'epochs': >= 1 expected", "epochs")
  T.raises(function() msq.run(cfg { bogus = 1 }) end, "unknown option 'bogus'", "unknown option")
  T.raises(function() msq.run(cfg { best_of = 1000 }) end, "option 'best_of': at most 999 expected, got 1000", "best_of")
  T.raises(function() msq.run(cfg { best_of = 0 }) end, "option 'best_of': >= 1 expected, got 0", "best_of 0")
  T.raises(function() msq.run(cfg { screen = 9 }) end, "option 'screen': at most epochs = 8 expected, got 9", "screen")
  T.raises(function() msq.run(cfg { resume = tmp .. "/nothing" }) end, "no checkpoint", "resume without checkpoint")
  T.raises(function() msq.loss(S, S, "kl") end, "bad argument #3 to 'loss' (mmd or wasserstein expected, got kl)", "loss kind")
  T.raises(function() msq.betas("exp", 3) end, "bad argument #1 to 'betas'", "betas kind")
  T.raises(function() msq.loss(S, S, "mmd", false, "trace") end, "bad argument #5 to 'loss' (superfidelity or uhlmann expected, got trace)", "kernel")
  T.raises(function() msq.run(cfg { kernel = "x" }) end, "option 'kernel': superfidelity, uhlmann expected", "kernel option")
  T.raises(function() msq.stack {} end, "non-empty table of density matrices", "empty stack")
  T.raises(function() msq.stack { qd.dm(1), qd.dm(2) } end, "entry 2: a qd.DensityMatrix of 1 qubits expected", "mixed sizes")
  T.raises(function() msq.member(S, 4) end, "member 1 ... 3 expected, got 4", "member range")
  T.raises(function() msq.member(qd.matrix(4, 2), 1) end, "a stack of density matrices", "real matrix as stack")
  T.raises(function() msq.member(qd.matrix(3, 2, { complex = true }), 1) end, "a stack of density matrices", "3 rows")
  T.raises(function() msq.loss(S, (random_stack(2, 2, 1)), "mmd") end, "density matrices of 1 qubits expected", "sizes differ")
  T.raises(function() core.dms_mmd_sf(S, S, 1) end, "boolean expected", "grad flag")
  T.raises(function() core.dms_depolarize(S, 1.5) end, "number in [0, 1] expected", "keep")
  T.raises(function() core.dms_gather(S, { 4 }) end, "entry 1: a member index 1 ... 3 expected", "gather index")
  T.raises(function() core.dms_gather(S, {}) end, "non-empty table of member indices", "gather empty")
  T.raises(function() core.dms_expect(S, qd.matrix(4, 4)) end, "a 2x2 matrix expected, got 4x4", "expect size")
  local E = P.basis_inputs(P.check(cfg { ancilla = "zero" }))
  local u = qd.vector(3)
  T.raises(function() core.dms_kraus_step(E, 0, S, u) end, "ancillas 1 ... the isometry's qubits - 1", "na")
  T.raises(function() core.dms_kraus_step(E, 1, S, u) end, "density matrices of 2 qubits expected, got 1", "rho size")
  T.raises(function() core.dms_kraus_step(E, 2, S, qd.vector(2)) end, "a real qd.Vector of 3 uniforms", "u length")
  T.raises(function() core.dms_kraus_step(E, 2, S, u, qd.ensemble.haar(1, 3, qd.rng(1))) end,
    "an ensemble of 4 members expected", "haar needs 2d columns")
  T.raises(function() core.dms_kraus_step(E, 2, S, u, qd.ensemble.haar(1, 2, qd.rng(1))) end,
    "an ensemble of 3 one-qubit states", "anc count")
  local out, oc = core.dms_kraus_step(E, 2, S, u)
  T.raises(function() core.dms_kraus_vjp(E, 2, S, out, nil, qd.vector { 9, 0, 0 }, out) end,
    "entry 1: an outcome 0 ... 3 expected", "outcome range")
  T.raises(function() core.dms_kraus_vjp(E, 2, S, out, nil, oc, (random_stack(1, 2, 1))) end,
    "a gradient shaped like the step's output", "gradient shape")
  T.raises(function() core.dms_kraus_vjp(E, 2, S, (random_stack(1, 2, 1)), nil, oc, out) end,
    "the step's output", "output shape")
  T.raises(function() core.dms_kraus_vjp(E, 2, S, out, nil, qd.vector(2), out) end, "a real qd.Vector of 3 outcomes",
    "outcomes length")
end)

T.rmdir(tmp)
