-- test_genqc.lua — the pieces of qd.protocols.genqc: genQC's schedules (linear betas and
-- cos_alpha against their formulas), the fixed orthogonal embeddings, the valid-column
-- vocabulary, embedding and nearest-embedding decoding as inverses, the DDPM noising helper,
-- and a tiny run that is reproducible bit for bit (two runs, same seed) with its metrics.
local T = require "testlib"
local genqc = require "qd.protocols.genqc"
local S = require("qd.core").synth

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
  c3.embedding, c3.prediction = "cell", "epsilon"
  local r3 = genqc.run(c3)
  T.ok(r3.metrics.valid_fraction >= 0, "cell embedding, epsilon prediction run")
  T.raises(function() genqc.run { bogus = 1 } end, "unknown option 'bogus'")
  T.raises(function() genqc.run { min_gates = 9 } end, "min_gates")
  T.rmdir(dir)
end)

return T
