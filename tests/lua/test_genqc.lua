-- test_genqc.lua — the pieces of qd.protocols.genqc: genQC's schedules (linear betas and
-- cos_alpha against their formulas), the fixed orthogonal embeddings, the valid-column
-- vocabulary, embedding and nearest-embedding decoding as inverses, the DDPM noising helper,
-- the per-cell softmax and the (masked, weighted) cross-entropies against a direct computation
-- and their gradients against central differences, and tiny runs of each process and option
-- (Gaussian x0 / epsilon / logits with self-conditioning and EMA, masked) that are
-- reproducible bit for bit (two runs, same seed); the same for model = "conv" (qd.nn.conv,
-- with and without its self-attention heads), with its records and option errors.
local T = require "testlib"
local genqc = require "qd.protocols.genqc"
local S = require("qd.core").synth

-- every entry of two matrices of the same shape equal
local function same_entries(A, B)
  local nr, nc = A:shape()
  for i = 1, nr do
    for j = 1, nc do if A:get(i, j) ~= B:get(i, j) then return false end end
  end
  return true
end

T.test("schedules", function()
  local a = genqc.schedule("linear", 1000)
  T.near(a[1], 1 - 1e-4, 1e-15, "abar_0 = 1 - beta_0")
  local p = 1.0
  for i = 1, 1000 do p = p * (1 - (1e-4 + (0.02 - 1e-4) * (i - 1) / 999)) end
  T.near(a[1000], p, 1e-15, "cumulative product")
  local c = genqc.schedule("cos_alpha", 1000)
  local f = function(t) return math.cos((t / 1000 + 0.008) * math.pi / 2.016) ^ 2 end
  T.near(c[1], f(1) / f(0), 1e-14, "cos_alpha abar_0 = f(1)/f(0)")
  T.near(c[500], f(500) / f(0), 1e-12, "cos_alpha abar_t = f(t + 1)/f(0) (no clipping in the middle)")
  T.raises(function() genqc.schedule("quadratic", 10) end, "linear or cos_alpha")
end)

T.test("embeddings and columns", function()
  local E = genqc.orthogonal(6, qd.rng(1))
  local worst = 0
  for i = 1, 6 do
    for j = 1, 6 do
      local d = 0
      for k = 1, 6 do d = d + E:get(k, i) * E:get(k, j) end
      worst = math.max(worst, math.abs(d - (i == j and 6 or 0)))
    end
  end
  T.ok(worst < 1e-12, "orthogonal columns of norm sqrt(K): " .. worst)
  local cols, index = genqc.columns({ "h", "cx" }, 3)
  T.eq(#cols, 1 + 3 + 6 + 1, "empty, h on 3 qubits, cx on 6 ordered pairs, padding")
  T.ok(index["-2,2,0"] ~= nil and index["0,1,0"] ~= nil and index["0,-2,-2"] == nil, "cx(0, 1) and h(1) are columns")
  local cc = genqc.columns({ "h", "cx", "z", "x", "ccx", "swap" }, 3)
  T.eq(#cc, 1 + 3 + 6 + 3 + 3 + 3 + 3 + 1, "the compile vocabulary's columns on 3 qubits")
  local Tk = qd.tokens.random(3, 8, { "h", "cx" }, 50, qd.rng(2))
  local Em = genqc.embedding(2, qd.rng(3))
  local X = S.embed(Tk, Em, -2)
  local back = S.nearest(X, Em, -2)
  local same = true
  for b = 1, 50 do for i = 1, 24 do if back:get(i, b) ~= Tk:get(i, b) then same = false end end end
  T.ok(same, "nearest(embed(T)) = T")
  local X0 = qd.matrix(4, 3)
  local Xt, Ep = S.diffuse(X0, qd.vector { 1, 1, 1 }, qd.vector { 0.5, 0.5, 0.5 }, qd.rng(4))
  T.near(Xt:get(2, 3), 0.5 * Ep:get(2, 3), 1e-15, "xt = a x0 + s eps")
  local Xt2 = S.diffuse(X0, qd.vector { 1, 1, 1 }, qd.vector { 0.5, 0.5, 0.5 }, qd.rng(4))
  T.eq(Xt2:get(4, 1), Xt:get(4, 1), "seeded")
end)

T.test("per-cell softmax and cross-entropy (prediction = logits)", function()
  -- a stand-in for the fixed parts: 3 cells of K = 4 values, block matrices as setup builds them
  local K, cells, B = 4, 3, 5
  local R = { K = K, cells = cells, D = K * cells, c = { prediction = "logits" } }
  R.Ones = qd.matrix(R.D, R.D)
  for cell = 0, cells - 1 do
    for i = 1, K do for j = 1, K do R.Ones:set(cell * K + i, cell * K + j, 1) end end
  end
  local rng = qd.rng(5)
  local Y, O = qd.matrix(R.D, B), qd.matrix(R.D, B)
  for b = 1, B do
    for cell = 0, cells - 1 do
      for i = 1, K do Y:set(cell * K + i, b, 3 * rng:normal(0, 1)) end
      O:set(cell * K + rng:integer(1, K), b, 1)
    end
  end
  -- reference: each cell's softmax and -log p(true) written out directly
  local ref, worstp = 0, 0
  local P = genqc.softmax_blocks(R, Y)
  for b = 1, B do
    for cell = 0, cells - 1 do
      local z, s = {}, 0
      for i = 1, K do z[i] = math.exp(Y:get(cell * K + i, b)); s = s + z[i] end
      for i = 1, K do
        worstp = math.max(worstp, math.abs(P:get(cell * K + i, b) - z[i] / s))
        if O:get(cell * K + i, b) == 1 then ref = ref - math.log(z[i] / s) end
      end
    end
  end
  ref = ref / (cells * B)
  T.ok(worstp < 1e-14, "softmax per cell block: " .. worstp)
  local L, G = genqc.cross_entropy(R, Y, O)
  T.near(L, ref, 1e-13, "mean cross-entropy over cells and batch")
  -- gradient against central differences
  local h, worst = 1e-6, 0
  for b = 1, B do
    for i = 1, R.D do
      local y0 = Y:get(i, b)
      Y:set(i, b, y0 + h); local Lp = genqc.cross_entropy(R, Y, O)
      Y:set(i, b, y0 - h); local Lm = genqc.cross_entropy(R, Y, O)
      Y:set(i, b, y0)
      worst = math.max(worst, math.abs((Lp - Lm) / (2 * h) - G:get(i, b)))
    end
  end
  T.ok(worst < 1e-8, "dL/dY against finite differences: " .. worst)
  -- the masked process's loss: weights w per cell (0 on visible steps, 1/m on hidden ones)
  local W = qd.matrix(R.D, B)
  local wref = 0
  for b = 1, B do
    local m = (b % cells) + 1
    for cell = 0, m - 1 do for i = 1, K do W:set(cell * K + i, b, 1 / m) end end
  end
  for b = 1, B do
    for cell = 0, cells - 1 do
      local z, s = {}, 0
      for i = 1, K do z[i] = math.exp(Y:get(cell * K + i, b)); s = s + z[i] end
      for i = 1, K do
        if O:get(cell * K + i, b) == 1 then wref = wref - W:get(cell * K + i, b) * math.log(z[i] / s) end
      end
    end
  end
  local Lw, Gw = genqc.masked_cross_entropy(R, Y, O, W)
  T.near(Lw, wref / B, 1e-13, "masked cross-entropy: weighted sum over hidden steps / B")
  local worstw = 0
  for b = 1, B do
    for i = 1, R.D do
      local y0 = Y:get(i, b)
      Y:set(i, b, y0 + h); local Lp = genqc.masked_cross_entropy(R, Y, O, W)
      Y:set(i, b, y0 - h); local Lm = genqc.masked_cross_entropy(R, Y, O, W)
      Y:set(i, b, y0)
      worstw = math.max(worstw, math.abs((Lp - Lm) / (2 * h) - Gw:get(i, b)))
    end
  end
  T.ok(worstw < 1e-8, "masked: dL/dY against finite differences: " .. worstw)
  -- saturated logits stay finite
  local Ybig = qd.matrix(R.D, 1)
  for i = 1, R.D do Ybig:set(i, 1, (i % K == 1) and 5000 or -5000) end
  local Pb = genqc.softmax_blocks(R, Ybig)
  T.near(Pb:get(1, 1), 1, 1e-12, "logits beyond +-300 clamped: a one-hot softmax, no NaN")
end)

T.test("a tiny run, reproducible", function()
  local dir = T.tmpdir()
  local cfg = function(o)
    return { samples = 600, iterations = 8, hidden = { 16 }, T = 50, steps = 5, per_class_samples = 8,
             quiet = true, out = dir .. "/" .. o }
  end
  local r1 = genqc.run(cfg("a"))
  local r2 = genqc.run(cfg("b"))
  T.eq(r1.losses[8], r2.losses[8], "same loss bits")
  T.eq(r1.metrics.valid_fraction, r2.metrics.valid_fraction, "same metrics")
  T.ok(r1.metrics.accuracy >= 0 and r1.metrics.accuracy <= 1, "accuracy in [0, 1]")
  T.ok(r1.metrics.valid_fraction >= 0 and r1.metrics.valid_fraction <= 1, "valid fraction")
  T.eq(#r1.settings.classes, 5, "five classes")
  local c3 = cfg("c")
  c3.embedding, c3.prediction, c3.eta = "cell", "epsilon", 1.0
  local r3 = genqc.run(c3)
  T.ok(r3.metrics.valid_fraction >= 0, "cell embedding, epsilon prediction run, DDIM eta = 1")
  local c3b = cfg("c2")
  c3b.embedding, c3b.prediction, c3b.eta = "cell", "epsilon", 1.0
  T.eq(genqc.run(c3b).metrics.accuracy, r3.metrics.accuracy, "eta = 1: the fresh noise is seeded")
  local c4 = cfg("d")
  c4.prediction, c4.ema, c4.self_cond = "logits", 0.9, true
  local r4 = genqc.run(c4)
  local c5 = cfg("e")
  c5.prediction, c5.ema, c5.self_cond = "logits", 0.9, true
  local r5 = genqc.run(c5)
  T.eq(r4.losses[8], r5.losses[8], "logits: same loss bits")
  T.ok(r4.losses[1] > r4.losses[8], "logits: cross-entropy falls over 8 iterations")
  T.eq(r4.metrics.accuracy, r5.metrics.accuracy, "logits with EMA: same metrics")
  T.raises(function() genqc.run { prediction = "probs" } end, "prediction")
  T.eq(r4.settings.sizes[1], 2 * 8 * 11 + 16 + 6, "self-conditioning: noisy tensor, estimate, time, class")
  T.raises(function() genqc.run { prediction = "epsilon", self_cond = true } end, "needs prediction x0 or logits")
  local c6 = cfg("f")
  c6.process, c6.iterations, c6.T, c6.steps = "masked", 12, nil, nil
  local r6 = genqc.run(c6)
  local c7 = cfg("g")
  c7.process, c7.iterations, c7.T, c7.steps = "masked", 12, nil, nil
  local r7 = genqc.run(c7)
  T.eq(r6.settings.T, nil, "masked: no noise schedule in the record")
  -- the Gaussian process's settings are refused with the masked one, not ignored
  T.raises(function() genqc.run { process = "masked", steps = 5 } end, "option 'steps': a setting of process = \"gaussian\"")
  T.raises(function() genqc.run { process = "masked", prediction = "logits" } end, "option 'prediction'")
  T.raises(function() genqc.run { process = "masked", schedule = "linear" } end, "option 'schedule'")
  T.eq(r6.losses[12], r7.losses[12], "masked: same loss bits")
  T.ok(r6.losses[12] < r6.losses[1], "masked: the loss falls over 12 iterations")
  T.eq(r6.metrics.accuracy, r7.metrics.accuracy, "masked: same metrics")
  T.eq(r6.settings.sizes[1], 8 * 12 + 6, "masked: one-hots of 11 columns + mask per step, class")
  T.raises(function() genqc.run { process = "masked", embedding = "cell" } end, "option 'embedding': a setting of process")
  T.raises(function() genqc.run { bogus = 1 } end, "unknown option 'bogus'")
  T.raises(function() genqc.run { min_gates = 9 } end, "min_gates")
  T.rmdir(dir)
end)

T.test("model = conv: the time-step convolution as denoiser, both processes", function()
  local dir = T.tmpdir()
  local cfg = function(o, process)
    local c = { samples = 600, iterations = 12, model = "conv", channels = 8, layers = 2, kernel = 3,
                per_class_samples = 8, quiet = true, out = dir .. "/" .. o, process = process }
    if process ~= "masked" then c.T, c.steps = 50, 5 end
    return c
  end
  local r1, r2 = genqc.run(cfg("a", "masked")), genqc.run(cfg("b", "masked"))
  T.eq(r1.losses[12], r2.losses[12], "masked conv: same loss bits")
  T.eq(r1.metrics.accuracy, r2.metrics.accuracy, "masked conv: same metrics")
  T.ok(r1.losses[12] < r1.losses[1], "masked conv: the loss falls over 12 iterations")
  local cs = r1.settings.conv
  T.eq(r1.settings.model, "conv", "the record names the model")
  T.eq(r1.settings.sizes, nil, "no MLP sizes in a conv record")
  T.ok(cs.length == 8 and cs.inputs == 12 and cs.outputs == 11 and cs.cond == 6 and cs.channels == 8,
       "masked: 8 steps of 11 columns + mask in, 11 logits out, the class as condition")
  T.eq(r1.settings.nparams, qd.nn.conv(cs):nparams(), "the record rebuilds the network")
  local p = qd.load_npy(r1.dir .. "/params.npy")
  T.eq(#p, r1.settings.nparams, "params.npy holds the conv's parameters")
  local g = genqc.run(cfg("c", "gaussian"))
  T.eq(g.settings.conv.inputs, 11, "Gaussian conv: the 11 embedding coordinates per step")
  T.eq(g.settings.conv.cond, 16 + 6, "Gaussian conv: time features and class as condition")
  T.ok(g.metrics.valid_fraction >= 0 and g.metrics.valid_fraction <= 1, "Gaussian conv runs")
  T.raises(function() genqc.run { model = "conv", kernel = 4 } end,
           "option 'kernel': odd width in 1..15 (2 max_gates - 1) expected, got 4")
  T.raises(function() genqc.run { model = "conv", kernel = 17 } end, "odd width in 1..15")
  T.raises(function() genqc.run { model = "conv", prediction = "logits", self_cond = true } end,
           "option 'self_cond': not available with model conv")
  T.raises(function() genqc.run { channels = 8 } end, "option 'channels': a setting of model = \"conv\"")
  T.raises(function() genqc.run { model = "conv", hidden = { 64 } } end,
           "option 'hidden': a setting of model = \"mlp\", not used by model = \"conv\"")
  T.raises(function() genqc.run { model = "rnn" } end, "model")
  T.eq(cs.heads, nil, "no heads in a record without attention")
  -- heads: self-attention opening every block
  local ca = cfg("d", "masked")
  ca.heads = 2
  local a1, a2 = genqc.run(ca), genqc.run((function() local c = cfg("e", "masked"); c.heads = 2; return c end)())
  T.eq(a1.losses[12], a2.losses[12], "masked conv with attention: same loss bits")
  T.ok(a1.losses[12] < a1.losses[1], "masked conv with attention: the loss falls over 12 iterations")
  T.eq(a1.settings.conv.heads, 2, "the record holds heads")
  T.eq(a1.settings.nparams, r1.settings.nparams + 2 * 4 * 8 * 9, "4 H (H + 1) attention parameters per block")
  T.eq(a1.settings.nparams, qd.nn.conv(a1.settings.conv):nparams(), "the record rebuilds the attention network")
  T.raises(function() genqc.run { model = "conv", channels = 8, heads = 3 } end,
           "option 'heads': a divisor of channels (8) expected, got 3")
  T.raises(function() genqc.run { heads = 2 } end, "option 'heads': a setting of model = \"conv\"")
  T.rmdir(dir)
end)

T.test("masked sampling options: temperature, reveal, re-masking; per-class loss weights", function()
  -- draw: temperature 0 is the argmax (no random number), a small one almost surely too, 1 the softmax
  local K, B = 5, 3
  local y = qd.matrix(2 * K, B)
  local rng = qd.rng(11)
  for i = 1, 2 * K do for b = 1, B do y:set(i, b, 2 * rng:normal(0, 1)) end end
  for b = 1, B do
    for o = 0, K, K do
      local best, bv = 1, -math.huge
      for k = 1, K do if y:get(o + k, b) > bv then best, bv = k, y:get(o + k, b) end end
      local r0 = qd.rng(3)
      local k0, p0 = genqc.draw(y, o, b, K, 0, r0)
      T.eq(k0, best, "temperature 0: the argmax")
      local s = 0
      for k = 1, K do s = s + math.exp(y:get(o + k, b) - bv) end
      T.near(p0, 1 / s, 1e-14, "the probability at temperature 1 of the drawn column")
      T.eq(r0:uniform(), qd.rng(3):uniform(), "temperature 0 draws no random number")
      local same = 0
      for i = 1, 50 do if genqc.draw(y, o, b, K, 1e-3, qd.rng(100 + i)) == best then same = same + 1 end end
      T.eq(same, 50, "temperature 1e-3: the argmax every time")
    end
  end
  local n, counts, r = 20000, { 0, 0, 0, 0, 0 }, qd.rng(12)
  for _ = 1, n do local k = genqc.draw(y, 0, 1, K, 1, r); counts[k] = counts[k] + 1 end
  local hot, hcounts = { 0, 0, 0, 0, 0 }, { 0, 0, 0, 0, 0 }
  local s, sh = 0, 0
  for k = 1, K do s = s + math.exp(y:get(k, 1)); sh = sh + math.exp(y:get(k, 1) / 2) end
  for _ = 1, n do local k = genqc.draw(y, 0, 1, K, 2, r); hcounts[k] = hcounts[k] + 1 end
  local worst, worsth = 0, 0
  for k = 1, K do
    worst = math.max(worst, math.abs(counts[k] / n - math.exp(y:get(k, 1)) / s))
    worsth = math.max(worsth, math.abs(hcounts[k] / n - math.exp(y:get(k, 1) / 2) / sh))
  end
  T.ok(worst < 0.015, "temperature 1: frequencies of the softmax: " .. worst)
  T.ok(worsth < 0.015, "temperature 2: frequencies of softmax(y / 2): " .. worsth)

  local dir = T.tmpdir()
  local cfg = function(o)
    return { samples = 600, iterations = 12, model = "conv", channels = 8, layers = 2, kernel = 3, process = "masked",
             per_class_samples = 8, quiet = true, out = dir .. "/" .. o }
  end
  local r0 = genqc.run(cfg("a"))
  T.ok(r0.settings.temperature == 1 and r0.settings.reveal == 1 and r0.settings.remask == 0,
       "the record holds the sampling settings (defaults: temperature 1, reveal 1, no re-masking)")
  T.eq(r0.settings.remask_rounds, nil, "no re-masking rounds in the record without re-masking")
  -- all 8 steps revealed in one pass at temperature 0: the argmax of the all-hidden guided logits,
  -- whatever the random stream
  local c = require("qd.protocol").config(genqc.settings_spec, (function()
    local x = cfg("b"); x.out, x.quiet = nil, nil; x.temperature, x.reveal = 0, 8; return x end)(), "run")
  local R = genqc.setup(c)
  local p = r0.params
  local t1 = genqc.sample(R, p, 5, 4, qd.rng(1), 3)
  local t2 = genqc.sample(R, p, 5, 4, qd.rng(2), 3)
  local In = qd.matrix(8, 4)
  for t = 1, 8 do for b = 1, 4 do In:set(t, b, R.K + 1) end end
  local function inp(cls) return qd.nn.vstack(S.embed(In, R.Iin, 1), qd.nn.columns(R.LF, { cls, cls, cls, cls })) end
  local yu = R.net:forward(inp(R.C + 1), p)
  local yg = yu + 3 * (R.net:forward(inp(5), p) - yu)
  local want = qd.matrix(8, 4)
  for b = 1, 4 do for t = 1, 8 do want:set(t, b, (genqc.draw(yg, (t - 1) * R.K, b, R.K, 0))) end end
  local wt = genqc.pieces.from_columns(want, 3, R.cols)
  T.ok(same_entries(t1, t2), "temperature 0, one pass: the same circuits from two random streams")
  T.ok(same_entries(t1, wt), "temperature 0, one pass: the per-step argmax of the guided logits")
  -- re-masking and a sharper temperature: reproducible, recorded, and a different sampler
  local cr = cfg("c"); cr.temperature, cr.remask, cr.remask_rounds = 0.5, 3, 2
  local cr2 = cfg("d"); cr2.temperature, cr2.remask, cr2.remask_rounds = 0.5, 3, 2
  local a, b2 = genqc.run(cr), genqc.run(cr2)
  T.eq(a.losses[12], r0.losses[12], "sampling settings leave training alone")
  T.eq(a.metrics.accuracy, b2.metrics.accuracy, "re-masking: same metrics")
  local ga, gb, g0 = a.generated[5], b2.generated[5], r0.generated[5]
  T.ok(same_entries(ga, gb), "re-masking: the same circuits bit for bit")
  T.ok(not same_entries(ga, g0), "re-masking at temperature 0.5: other circuits than the default sampler")
  T.ok(a.settings.temperature == 0.5 and a.settings.remask == 3 and a.settings.remask_rounds == 2, "recorded")
  -- per-class loss weights: every class doubled doubles the first loss exactly (same parameters)
  local cw = cfg("e"); cw.iterations = 1
  cw.class_weight = { ["[1,1,1]"] = 2, ["[1,2,2]"] = 2, ["[2,1,2]"] = 2, ["[2,2,1]"] = 2, ["[2,2,2]"] = 2 }
  local c1 = cfg("f"); c1.iterations = 1
  local w2, w1 = genqc.run(cw), genqc.run(c1)
  T.eq(w2.losses[1], 2 * w1.losses[1], "class weights 2 on every class: twice the loss")
  local c3 = cfg("g"); c3.iterations = 1; c3.class_weight = { ["[2,2,2]"] = 3 }
  local w3 = genqc.run(c3)
  T.ok(w3.losses[1] > w1.losses[1] and w3.losses[1] < 3 * w1.losses[1], "weight 3 on [2,2,2] alone: in between")
  T.eq(w3.settings.class_weight["[2,2,2]"], 3, "the record holds the weights")
  T.eq(w3.settings.class_weight["[1,1,1]"], 1, "the other classes at 1")
  T.eq(w1.settings.class_weight, nil, "no weights in the record without them")
  -- bad values name the option
  T.raises(function() genqc.run { process = "masked", temperature = -1 } end, "temperature")
  T.raises(function() genqc.run { process = "masked", reveal = 0 } end, "reveal")
  T.raises(function() genqc.run { process = "masked", remask = -2 } end, "remask")
  T.raises(function() genqc.run { process = "masked", remask_rounds = 0 } end, "remask_rounds")
  T.raises(function() genqc.run { process = "masked", samples = 600, iterations = 1, class_weight = { ["[3,3,3]"] = 2 } } end,
           "option 'class_weight': unknown class '[3,3,3]'")
  T.raises(function() genqc.run { process = "masked", samples = 600, iterations = 1, class_weight = { ["[2,2,2]"] = 0 } } end,
           "option 'class_weight': a positive finite weight expected for [2,2,2], got 0")
  T.raises(function() genqc.run { temperature = 0.5 } end,
           "option 'temperature': a setting of process = \"masked\", not used by process = \"gaussian\"")
  T.raises(function() genqc.run { remask = 2 } end, "option 'remask': a setting of process = \"masked\"")
  T.rmdir(dir)
end)

return T
