-- test_quddpm.lua — qd.protocols.quddpm and qd.progress: resume is bit for bit, thread
-- count does not matter, run-record files and shapes, metrics, training lowers the loss,
-- baselines' gradients, error messages.
local T = require "testlib"
local qd = require "qd"
local json = require "qd.json"
local quddpm = require "qd.protocols.quddpm"
local progress = require "qd.progress"

local tmp = T.tmpdir()

local slurp = T.slurp

local function cfg(extra)
  local c = {
    name = "t", seed = 5, n = 1, na = 1, L = 2, N = 8, epochs = 12, lr = 0.02,
    target = qd.data.clustered(1, 8, quddpm.stream(5, "target")),
    schedule = qd.schedule.linear { T = 3, from = 1, to = 3 },
    metrics = { "F0", "mmd", "wass", "y2" }, quiet = true,
  }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

local files = { "forward.npy", "params.npy", "loss.npy", "generated_train.npy", "generated_test.npy" }

local function same_files(d1, d2, label)
  for _, f in ipairs(files) do
    local a, b = slurp(d1 .. "/" .. f), slurp(d2 .. "/" .. f)
    T.ok(a ~= nil and a == b, label .. ": " .. f .. " identical")
  end
end

local function metrics_of(dir)
  return json.decode(slurp(dir .. "/run.json")).metrics
end

T.test("quddpm: run writes the record, shapes and metrics", function()
  local dir = tmp .. "/a"
  local res = quddpm.run(cfg { out = dir })
  T.eq(res.stopped, false, "not stopped")
  local doc = json.decode(slurp(dir .. "/run.json"))
  T.eq(doc.status, "done", "status")
  T.eq(doc.seed, 5, "seed")
  T.eq(doc.settings.T, 3, "settings T")
  T.eq(doc.settings.nparams, 8, "P = 2(n+na)L")
  T.eq(#doc.settings.schedule.values, 3, "schedule stored")
  T.ok(type(doc.qd_version) == "string", "qd version")
  T.ok(type(doc.wall_seconds) == "number", "wall time")
  T.eq(#doc.step_final_loss, 3, "per-step final losses")
  T.ok(doc.timing.seconds_per_epoch > 0, "time per epoch")
  for _, k in ipairs { "F0_train", "F0_test", "mmd_train", "mmd_test", "wass_train", "wass_test", "y2_train", "y2_test" } do
    T.ok(type(doc.metrics[k]) == "number", "metric " .. k)
  end
  local sets = qd.load_npy(dir .. "/forward.npy", "ensembles")
  T.eq(#sets, 4, "forward (T+1, ...)")
  T.eq(sets[1].N, 8, "forward N")
  T.eq(sets[1].n, 1, "forward n")
  local P = qd.load_npy(dir .. "/params.npy", "matrix")
  local r, c = P:shape()
  T.eq(r, 3, "params rows = T"); T.eq(c, 8, "params cols = P")
  local Lm = qd.load_npy(dir .. "/loss.npy", "matrix")
  r, c = Lm:shape()
  T.eq(r, 3, "loss rows = T"); T.eq(c, 12, "loss cols = epochs")
  local G = qd.load_npy(dir .. "/generated_test.npy", "ensembles")
  T.eq(#G, 4, "generated (T+1, ...)")
  T.eq(G[4].N, 8, "generated N")
  -- params.npy row t+1 is θ_t, the same numbers as the result
  T.eq(P:get(1, 3), res.params[1][3], "params row 1 = θ_0")
  T.eq(Lm:get(3, 12), res.losses[3][12], "loss row 3 = history of θ_2")
  -- metrics agree with recomputation from the saved generated set
  T.near(doc.metrics.mmd_test, (qd.loss.mmd(G[1], sets[1])), 1e-15, "mmd_test from files")
  T.near(doc.metrics.F0_test, G[1]:fidelities(qd.state(1)):mean(), 1e-15, "F0_test from files")
end)

T.test("quddpm: resume equals an uninterrupted run bit for bit", function()
  local full = tmp .. "/full"
  quddpm.run(cfg { best_of = 2, screen = 5, ckpt_every = 4, out = full })
  -- per step: 2 candidates × 5 epochs + 7 more = 17 epochs; stop inside a candidate, between
  -- candidates, in the continuation and on a step boundary
  local dir = tmp .. "/resumed"
  local c = cfg { best_of = 2, screen = 5, ckpt_every = 4, out = dir, stop_after = 3 }
  local res = quddpm.run(c)
  T.eq(res.stopped, true, "stopped")
  T.eq(json.decode(slurp(dir .. "/run.json")).status, "stopped", "status stopped")
  for _, k in ipairs { 4, 8, 6, 9, 13, 1 } do
    res = quddpm.run(cfg { best_of = 2, screen = 5, ckpt_every = 4, resume = dir, stop_after = k })
    T.eq(res.stopped, true, "stopped after " .. k)
  end
  res = quddpm.run(cfg { best_of = 2, screen = 5, ckpt_every = 4, resume = dir })
  T.eq(res.stopped, false, "finished")
  same_files(full, dir, "resumed")
  local m1, m2 = metrics_of(full), metrics_of(dir)
  for _, k in ipairs { "F0_train", "F0_test", "mmd_train", "mmd_test", "wass_train", "wass_test" } do
    T.eq(m2[k], m1[k], "metric " .. k .. " bitwise")
  end
  T.eq(json.decode(slurp(dir .. "/run.json")).timing.sessions, 8, "sessions counted")
end)

T.test("quddpm: Wasserstein warm starts: resume bit for bit, same as cold solves", function()
  -- circle-like: n = 1, 2 ancillas, exact Wasserstein (assignment, warm-started per
  -- candidate); the warm prices are not checkpointed, so a resumed session starts cold
  local function wc(extra)
    local c = cfg { n = 1, na = 2, L = 2, N = 12, loss = "wasserstein", best_of = 2, screen = 4,
                    ckpt_every = 3, epochs = 10, metrics = { "F0", "wass" },
                    target = qd.data.circle(12, quddpm.stream(5, "target")),
                    schedule = qd.schedule.quadratic { T = 3, scale = 1e-2 } }
    for k, v in pairs(extra) do c[k] = v end
    return c
  end
  local full = tmp .. "/wfull"
  quddpm.run(wc { out = full })
  local dir = tmp .. "/wresumed"
  quddpm.run(wc { out = dir, stop_after = 5 })
  for _, k in ipairs { 2, 7, 3, 11 } do quddpm.run(wc { resume = dir, stop_after = k }) end
  local res = quddpm.run(wc { resume = dir })
  T.eq(res.stopped, false, "finished")
  same_files(full, dir, "wasserstein resumed")
  -- every solve cold (the option stripped): bit-identical files
  local orig, calls = qd.loss.wasserstein, 0
  qd.loss.wasserstein = function(A, B, o)
    if o and o.warm then calls = calls + 1 end
    return orig(A, B, o and { grad = o.grad } or nil)
  end
  local ok, err = pcall(quddpm.run, wc { out = tmp .. "/wcold" })
  qd.loss.wasserstein = orig
  T.ok(ok, tostring(err))
  T.ok(calls > 0, "the protocol passes warm tables (" .. calls .. " calls)")
  same_files(full, tmp .. "/wcold", "warm vs cold")
end)

T.test("quddpm: resume_options restores the script's options", function()
  local dir = tmp .. "/opts"
  quddpm.run(cfg { out = dir, options = { n = 1, epochs = 12, lr = 0.02, out = dir, quiet = true, threads = 2,
                                          stop_after = 5 }, stop_after = 5 })
  local o = quddpm.resume_options({ resume = dir, quiet = false, epochs = 0 }, dir)
  T.eq(o.epochs, 12, "epochs restored")
  T.eq(o.lr, 0.02, "lr restored")
  T.eq(o.n, 1, "n restored")
  T.eq(o.quiet, false, "session key quiet kept")
  T.eq(o.out, nil, "session key out not copied")
  T.eq(o.threads, nil, "session key threads not copied")
  T.eq(o.resume, dir, "resume kept")
end)

T.test("quddpm: thread count does not change the result", function()
  local old = qd.threads()
  qd.set_threads(1)
  quddpm.run(cfg { out = tmp .. "/t1", N = 8 })
  qd.set_threads(2)
  quddpm.run(cfg { out = tmp .. "/t2", N = 8 })
  qd.set_threads(old)
  same_files(tmp .. "/t1", tmp .. "/t2", "threads 1 vs 2")
end)

T.test("quddpm: training lowers the loss; larger data sets are subsampled", function()
  local res = quddpm.run(cfg { out = tmp .. "/learn", epochs = 200, lr = 0.05, L = 4, N = 16, metrics = { "F0", "mmd" },
                               target = qd.data.clustered(1, 16, quddpm.stream(5, "target")),
                               schedule = qd.schedule.linear { T = 2, from = 0.5, to = 1 } })
  T.ok(res.metrics.F0_train > 0.95, "generated states near |0>: F0_train " .. res.metrics.F0_train)
  for t = 0, 1 do
    local l = res.losses[t + 1]
    local a, b = 0, 0
    for e = 1, 15 do a = a + l[e]; b = b + l[#l - 15 + e] end
    T.ok(b < 0.5 * a, string.format("step %d: last losses %.3g < half of first %.3g", t, b / 15, a / 15))
  end
  -- a target set larger than N: N members drawn per epoch
  local big = qd.data.clustered(1, 20, quddpm.stream(5, "target"))
  local r2 = quddpm.run(cfg { out = tmp .. "/big", target = big, epochs = 5 })
  T.eq(r2.sets[1].N, 20, "forward sets keep all 20")
  T.eq(r2.gen_train[1].N, 8, "generated N = 8")
  for _, loss in ipairs { "wasserstein", "sinkhorn" } do
    local r3 = quddpm.run(cfg { out = tmp .. "/" .. loss, loss = loss, epochs = 3 })
    T.ok(r3.metrics.mmd_train == r3.metrics.mmd_train, loss .. " runs")
  end
  local r4 = quddpm.run(cfg { out = tmp .. "/sgd", optimizer = "sgd", epochs = 3 })
  T.ok(r4.losses[1][3] == r4.losses[1][3], "sgd runs")
end)

T.test("quddpm: metrics", function()
  local zero = qd.ensemble(1, 4)
  T.eq(quddpm.metric("F0", zero), 1.0, "F0 of |0>")
  local circ = qd.data.circle(50, qd.rng(2))
  T.near(quddpm.metric("y2", circ), 0, 1e-14, "y2 of the circle")
  local haar = qd.ensemble.haar(1, 4000, qd.rng(3))
  T.near(quddpm.metric("y2", haar), 1 / 3, 0.02, "y2 of Haar ~ 1/3")
  local noise = qd.data.noise(4000, qd.rng(4))
  T.near(quddpm.metric("p_hat", noise), 0.8, 0.03, "p_hat of the noise data ~ 0.8")
  local m = qd.ensemble.from { qd.state(4, "0000"), qd.state(4, "0011"), qd.state(4, "1110") }
  T.near(quddpm.metric("magnetization", m), (1 + 0 + 0.5) / 3, 1e-15, "magnetization")
  T.near(quddpm.metric("mmd", zero, zero), 0, 1e-15, "mmd of equal sets")
  T.raises(function() quddpm.metric("p_hat", zero) end, "p_hat needs n = 2")
end)

T.test("quddpm: baselines (QuGAN generator gradient vs finite differences)", function()
  local target = qd.data.clustered(1, 6, qd.rng(1))
  local dt = quddpm.qudt { target = target, n = 1, na = 1, L = 3, N = 6, seed = 2, epochs = 30, lr = 0.05, quiet = true }
  T.eq(#dt.losses, 30, "QuDT losses")
  T.ok(dt.losses[30] < dt.losses[1], "QuDT loss decreases")
  T.ok(dt.metrics.mmd_test >= 0, "QuDT mmd")
  local gan = quddpm.qugan { target = target, n = 1, na = 1, L = 2, N = 6, seed = 2, epochs = 5, quiet = true }
  T.eq(#gan.losses, 5, "QuGAN losses")
  -- the chain used by qugan: dL/dθ of L = −mean (1+<Z0>)/2 of D(G(x)) via D:vjp then G:vjp
  local G = qd.ansatz.quddpm(1, 2, { ancillas = 1 })
  local D = qd.ansatz.hardware_efficient(1, 2, { final = true })
  local rng = qd.rng(9)
  local th, ph = rng:normal(0, 1, G:nparams()), rng:normal(0, 1, D:nparams())
  local X = qd.ensemble.haar(1, 5, rng):embed(1)
  local fake, outcomes = G:run(X, th, { rng = qd.rng(3) })
  local out = D:run(fake, ph)
  local _, gx = D:vjp(fake, ph, out:copy():z(0))
  local gt = G:vjp(X, th, gx, { outcomes = outcomes })
  local lossf = function(o)
    local d = D:run(o, ph)
    return -(1 + d:expect("Z", { 0 }):mean()) / 2
  end
  local h = 1e-6
  for i = 1, G:nparams() do
    local p1, p2 = th:copy(), th:copy()
    p1[i] = p1[i] + h; p2[i] = p2[i] - h
    local o1 = G:run(X, p1, { outcomes = outcomes })
    local o2 = G:run(X, p2, { outcomes = outcomes })
    local fd = (lossf(o1) - lossf(o2)) / (2 * h)
    T.near(-gt[i] / (2 * 5), fd, 1e-7, "QuGAN generator gradient " .. i)
  end
end)

T.test("quddpm: errors", function()
  T.raises(function() quddpm.run(5) end, "options table expected")
  T.raises(function() quddpm.run(cfg { bogus = 1 }) end, "unknown option 'bogus'")
  local c = cfg(); c.target = nil
  T.raises(function() quddpm.run(c) end, "option 'target' is required")
  T.raises(function() quddpm.run(cfg { target = qd.state(1) }) end, "option 'target': qd.Ensemble expected, got qd.State")
  T.raises(function() quddpm.run(cfg { loss = "kl" }) end, "mmd, wasserstein or sinkhorn expected")
  T.raises(function() quddpm.run(cfg { optimizer = "lbfgs" }) end, "adam or sgd expected")
  T.raises(function() quddpm.run(cfg { lr = -1 }) end, "option 'lr': > 0 expected")
  T.raises(function() quddpm.run(cfg { N = 0 }) end, "option 'N': >= 1 expected")
  T.raises(function() quddpm.run(cfg { epochs = 1.5 }) end, "option 'epochs': integer expected")
  T.raises(function() quddpm.run(cfg { n = 2 }) end, "target on 1 qubits, n = 2")
  T.raises(function() quddpm.run(cfg { N = 9 }) end, "target has 8 members, N = 9 needed")
  T.raises(function() quddpm.run(cfg { metrics = { "F1" } }) end, "unknown metric 'F1'")
  T.raises(function() quddpm.run(cfg { resume = tmp .. "/nothing" }) end, "resume: no checkpoint in")
  T.raises(function() quddpm.run(cfg { resume = tmp .. "/a", lr = 0.03 }) end, "settings of")
  T.raises(function() quddpm.run(cfg { resume = tmp .. "/a", target = qd.data.clustered(1, 8, qd.rng(77)) }) end,
           "settings of")
  T.raises(function() quddpm.stream(1, "bogus") end, "one of target, forward")
  T.raises(function() quddpm.qudt { n = 1 } end, "option 'L': integer >= 1 expected")
  T.raises(function() quddpm.qudt { n = 1, L = 1, N = 1, epochs = 1, target = 3 } end, "option 'target': qd.Ensemble expected")
  T.raises(function() quddpm.qugan { n = 1, L = 1, N = 1, epochs = 1, wat = 1 } end, "unknown option 'wat'")
  T.raises(function() quddpm.resume_options({}, tmp .. "/nothing") end, "resume: no checkpoint")
end)

T.test("quddpm: option errors point at the caller's line", function()
  local function at_caller(f, want)
    local ok, err = pcall(f)
    err = tostring(err)
    T.ok(not ok and err:find(want, 1, true) ~= nil, err)
    T.ok(err:find("^[^:]*test_quddpm.lua:%d+: ") ~= nil, "at the caller's line: " .. err)
  end
  at_caller(function() quddpm.run { foo = 1 } end, "bad argument #1 to 'run' (unknown option 'foo')")
  at_caller(function() quddpm.qudt { foo = 1 } end, "bad argument #1 to 'qudt' (unknown option 'foo')")
  at_caller(function() quddpm.qugan { n = 1, L = 1, N = 1, epochs = 1, wat = 1 } end, "unknown option 'wat'")
  at_caller(function() quddpm.stream(1, "bogus") end, "one of target, forward")
  -- cli options carry their checks (validated by qd.cli.parse before any work)
  local byname = {}
  for _, o in ipairs(quddpm.cli_options()) do byname[o[1]] = o end
  T.eq(byname.seed.min, 0, "--seed >= 0")
  T.eq(byname.lr.min, 0, "--lr >= 0")
  T.eq(#byname.loss.choices, 4, "--loss choices")
  T.eq(byname.best_of.max, 9999, "--best-of <= 9999")
end)

T.test("progress", function()
  local buf = {}
  local out = { write = function(_, ...) for _, s in ipairs { ... } do buf[#buf + 1] = s end end, flush = function() end }
  local p = progress.new { steps = 2, epochs = 64, total = 128, mode = "lines", every = 0, out = out }
  p:begin_step(1, 1)
  for e = 1, 64 do p:update(e, 0.5) end
  p:end_step(0.25)
  local text = table.concat(buf)
  T.ok(text:find("step 1/2 (t=1)", 1, true) ~= nil, "lines mode prints the step")
  T.ok(text:find("epoch 64/64", 1, true) ~= nil, "epoch shown")
  T.ok(text:find("loss 2.5000e-01", 1, true) ~= nil, "final loss shown")
  T.ok(text:find("ETA", 1, true) ~= nil, "ETA shown")
  buf = {}
  local q = progress.new { steps = 1, epochs = 1, total = 1, quiet = true, out = out }
  q:begin_step(1, 0); q:update(1, 1); q:end_step(1); q:message("x"); q:finish()
  T.eq(#buf, 0, "quiet prints nothing")
  local l = progress.new { steps = 1, epochs = 40, total = 40, mode = "live", out = out }
  l:begin_step(1, 0)
  l:end_step(0.1)
  T.ok(table.concat(buf):find("\r", 1, true) ~= nil, "live mode rewrites the line")
  T.eq(progress.hms(3725), "1:02:05", "hms")
  T.raises(function() progress.new { bogus = 1 } end, "unknown option 'bogus'")
  T.raises(function() progress.new { mode = "fancy" } end, "auto, live, lines or quiet expected")
end)

T.rmdir(tmp)

T.test("quddpm: help entries", function()
  local lines = {}
  local oldprint = print
  print = function(s) lines[#lines + 1] = tostring(s) end
  help(quddpm.run); help(quddpm); help(progress.new); help("qd.protocols.quddpm.qudt")
  print = oldprint
  T.ok(lines[1]:find("quddpm.run{target=", 1, true) ~= nil, "help(quddpm.run)")
  T.ok(lines[2]:find("require \"qd.protocols.quddpm\"", 1, true) ~= nil, "help(quddpm)")
  T.ok(lines[3]:find("progress.new{", 1, true) ~= nil, "help(progress.new)")
  T.ok(lines[4]:find("Direct-transport", 1, true) ~= nil, "help by name")
end)

T.test("quddpm pieces: each step of a run alone, the same numbers as quddpm.run", function()
  local P = quddpm.pieces
  local full = quddpm.run(cfg { out = tmp .. "/pieces_full" })
  local R = P.setup(cfg { out = tmp .. "/pieces" })
  P.forward(R)
  T.eq(#R.sets, R.c.T + 1, "forward: T + 1 sets")
  T.eq(R.t_next, R.c.T - 1, "a fresh run starts at step T - 1")
  local tr = P.make_trainer(R)
  R.prog = R.S:progress { steps = R.c.T, epochs = R.c.epochs, total = R.c.T * R.c.epochs }
  for t = R.c.T - 1, 0, -1 do
    T.ok(P.train_step(R, tr, t), "train_step " .. t)
    for j = 1, #R.params[t + 1] do
      T.ok(R.params[t + 1][j] == full.params[t + 1][j], "θ_" .. t .. " equals the run's")
    end
    T.eq(#R.losses[t + 1], R.c.epochs, "a loss per epoch")
  end
  T.ok(io.open(R.dir .. "/checkpoint.json") ~= nil, "train_step checkpoints")
  local gen = P.generate(R, qd.ensemble.haar(R.c.n, R.c.N, R.root:substream(quddpm.keys.inputs)), quddpm.keys.gen_train)
  T.eq(#gen, R.c.T + 1, "generate: T + 1 ensembles")
  T.ok(gen[1]:overlaps(full.gen_train[1]):get(1, 1) == full.gen_train[1]:overlaps():get(1, 1), "generated like the run")
  P.evaluate(R, gen, gen)
  T.ok(R.S.rec.metrics.F0_train == full.metrics.F0_train, "evaluate: the run's F0")
  T.eq(P.score_of { e = 20, losses = (function() local l = {} for i = 1, 20 do l[i] = i end return l end)() }, 19.5,
    "score: mean of the last 10%")
end)

T.test("a damaged checkpoint is refused before anything in the directory changes", function()
  local dir = tmp .. "/damaged"
  quddpm.run(cfg { out = dir, stop_after = 20 })
  local ck = slurp(dir .. "/checkpoint.json")
  local doc = json.decode(ck)
  doc.state.trained[1].losses[2] = "x"
  local f = io.open(dir .. "/checkpoint.json", "w"); f:write(json.encode(doc)); f:close()
  local before = { run = slurp(dir .. "/run.json"), ck = slurp(dir .. "/checkpoint.json") }
  local ok, err = pcall(quddpm.run, cfg { resume = dir })
  T.ok(not ok and tostring(err):find("damaged checkpoint", 1, true) ~= nil, "refused: " .. tostring(err))
  T.ok(slurp(dir .. "/run.json") == before.run and slurp(dir .. "/checkpoint.json") == before.ck,
    "run.json and checkpoint.json unchanged")
  T.ok(slurp(dir .. "/forward.npy") == nil, "no data file written")
end)
