-- test_schedule.lua — qd.Schedule from Lua: every constructor against hand values and
-- numpy (linspace/geomspace bitwise where numpy's formula is followed), s[t], #s, beta,
-- alpha, alpha_bar, clipping, piecewise (the QuDDPM noise-task schedule), the table/JSON
-- form and its exact round trip through qd.schedule.from, and the error messages.
local T = require "testlib"
local json = require "qd.json"

T.test("linear, quadratic, geometric, sq_cosine", function()
  local s = qd.schedule.linear { T = 20, from = 1, to = 4 }
  T.eq(qd.type(s), "qd.Schedule")
  T.eq(#s, 20); T.eq(s.T, 20); T.eq(s.kind, "linear")
  -- numpy.linspace(1, 4, 20)[[0, 1, 7, 19]]
  T.eq(s[1], 1.0); T.eq(s[2], 1.1578947368421053); T.eq(s[8], 2.1052631578947367); T.eq(s[20], 4.0)
  local one = qd.schedule.linear { T = 1, from = 2, to = 3 }
  T.eq(#one, 1); T.eq(one[1], 2.0, "T = 1 gives from, as numpy.linspace")
  -- circle task: 1e-3 s^2, s = 1..40, two ways
  local q = qd.schedule.quadratic { T = 40, scale = 1e-3 }
  local q2 = qd.schedule.quadratic { T = 40, from = 1e-3, to = 1.6 }
  local worst = 0
  for t = 1, 40 do worst = math.max(worst, math.abs(q[t] - 1e-3 * t * t) / (1e-3 * t * t)) end
  T.ok(worst < 1e-14, "quadratic{scale = c} = c t^2 (rel " .. worst .. ")")
  T.ok(q == q2, "scale form = from/to form")
  T.eq(q.kind, "quadratic")
  local g = qd.schedule.geometric { T = 5, from = 0.01, to = 1 }
  local ref = { 0.01, 0.03162277660168379, 0.09999999999999999, 0.31622776601683794, 1.0 }
  for t = 1, 5 do T.near(g[t] / ref[t], 1, 1e-15, "geomspace(0.01, 1, 5)") end
  local c = qd.schedule.sq_cosine { T = 8, from = 0.1, to = 2 }
  for t = 1, 8 do T.near(c[t], 0.1 + 1.9 * math.sin(math.pi * t / 16) ^ 2, 1e-15, "sq_cosine formula") end
  T.near(c[4], 1.05, 1e-15, "midpoint")
  T.eq(c[8], 2.0)
end)

T.test("cosine (Nichol-Dhariwal) and alpha_bar", function()
  local s = qd.schedule.cosine { T = 10 }
  local ref = { 0.027907262886031292, 0.07549363729672232, 0.1243959863690487, 0.1771895254015734,
                0.237281530190525, 0.3098834401085724, 0.4040031430396753, 0.5369981776428852,
                0.7438293668954272, 0.999 }
  for t = 1, 10 do T.near(s[t], ref[t], 1e-14, "cosine beta_" .. t) end
  T.eq(s:beta(3), s[3]); T.eq(s:alpha(3), 1 - s[3])
  T.eq(s:alpha_bar(0), 1.0)
  local f = function(t) return math.cos((t / 10 + 0.008) / 1.008 * math.pi / 2) ^ 2 end
  T.near(s:alpha_bar(5), f(5) / f(0), 1e-14, "alpha_bar(t) = f(t)/f(0)")
  local p = 1
  for t = 1, 10 do p = p * (1 - s[t]) end
  T.near(s:alpha_bar(10), p, 1e-16, "alpha_bar(T) = prod(1 - beta)")
  local s2 = qd.schedule.cosine { T = 10, s = 0.1, max_beta = 0.5 }
  T.eq(s2[10], 0.5, "max_beta clips")
  local t = s2:totable()
  T.eq(t.s, 0.1); T.eq(t.max_beta, 0.5)
end)

T.test("clip, piecewise, from", function()
  local s = qd.schedule.linear { T = 5, from = 0, to = 4, clip = { 0.5, 3 } }
  T.eq(s[1], 0.5); T.eq(s[2], 1.0); T.eq(s[5], 3.0)
  local c = qd.schedule.linear { T = 5, from = 0, to = 4 }:clip(1.5, 2.5)
  T.eq(c[1], 1.5); T.eq(c[3], 2.0); T.eq(c[5], 2.5)
  T.eq(c:totable().clip[2], 2.5, "clip recorded in the spec")
  -- the noise task: [linspace(0.05, 1, 12), linspace(1.2, 4, 8)]
  local p = qd.schedule.piecewise { qd.schedule.linear { T = 12, from = 0.05, to = 1 },
                                    qd.schedule.linear { T = 8, from = 1.2, to = 4 } }
  T.eq(#p, 20); T.eq(p.kind, "piecewise")
  T.eq(p[2], 0.13636363636363635); T.eq(p[12], 1.0); T.eq(p[13], 1.2); T.eq(p[20], 4.0)
  T.eq(#p:totable().parts, 2); T.eq(p:totable().parts[2].kind, "linear")
  local p2 = qd.schedule.piecewise { { 0.1, 0.2 }, qd.vector { 0.3 } }
  T.eq(#p2, 3); T.eq(p2[3], 0.3)
  local f = qd.schedule.from { 0.3, 0.1, 0.7 }
  T.eq(#f, 3); T.eq(f[2], 0.1); T.eq(f.kind, "from")
  local fc = qd.schedule.from { 0.3, 0.1, 0.7, clip = { 0.2, 0.5 } }
  T.eq(fc[2], 0.2); T.eq(fc[3], 0.5)
  local fv = qd.schedule.from(qd.vector { 1, 2 })
  T.eq(fv[2], 2.0)
  local v = f:values()
  T.eq(qd.type(v), "qd.Vector"); T.eq(#v, 3); T.eq(v[3], 0.7)
  T.ok(tostring(f):find("qd.Schedule(from, T=3: 0.3 0.1 0.7)", 1, true), tostring(f))
  T.ok(tostring(p):find("qd.Schedule(piecewise, T=20:", 1, true), tostring(p))
end)

T.test("table / JSON round trip", function()
  local scheds = {
    qd.schedule.linear { T = 20, from = 0.5, to = 4 },
    qd.schedule.cosine { T = 7, s = 0.02 },
    qd.schedule.quadratic { T = 40, scale = 1e-3 },
    qd.schedule.geometric { T = 9, from = 1e-4, to = 0.02, clip = { 0, 0.01 } },
    qd.schedule.sq_cosine { T = 6, from = 0.3, to = 1 / 3 },
    qd.schedule.piecewise { qd.schedule.linear { T = 3, from = 0.1, to = 1 / 7 }, { 2, 3 } },
    qd.schedule.from { 0.1, 1 / 3, 2 / 3 },
  }
  for _, s in ipairs(scheds) do
    local t = s:totable()
    T.eq(t.kind, s.kind); T.eq(t.T, #s); T.eq(#t.values, #s)
    local r = qd.schedule.from(t)
    T.ok(r == s, s.kind .. ": from(totable) has the same values bitwise")
    T.eq(json.encode(r:totable()), json.encode(t), s.kind .. ": same spec")
    local back = qd.schedule.from(json.decode(json.encode(t)))
    T.ok(back == s, s.kind .. ": round trip through JSON is exact")
    T.eq(back.kind, s.kind)
    T.eq(json.encode(back:totable()), json.encode(t), s.kind .. ": same JSON after the round trip")
  end
  local copy = qd.schedule.from(scheds[1])
  T.ok(copy == scheds[1] and not rawequal(copy, scheds[1]), "from(schedule) copies")
  T.ok(scheds[1] ~= scheds[2], "different schedules are not equal")
end)

T.test("errors", function()
  T.raises(function() qd.schedule.linear { from = 0, to = 1 } end, "option 'T': integer number of steps expected, got nil")
  T.raises(function() qd.schedule.linear { T = 0, from = 0, to = 1 } end, "option 'T': 1..10000000 steps expected, got 0")
  T.raises(function() qd.schedule.linear { T = 2.5, from = 0, to = 1 } end, "got a non-integer")
  T.raises(function() qd.schedule.linear { T = 3, from = 0 } end, "option 'to' (finite number) expected, got no value")
  T.raises(function() qd.schedule.linear { T = 3, from = 0, to = 1, steps = 3 } end, "unknown option 'steps'")
  T.raises(function() qd.schedule.linear { T = 3, from = 0, to = 1 / 0 } end, "option 'to': finite number expected")
  T.raises(function() qd.schedule.linear(3) end, "table expected, got number")
  T.raises(function() qd.schedule.linear({ T = 3, from = 0, to = 1 }, 2) end, "unexpected extra argument")
  T.raises(function() qd.schedule.linear { T = 3, from = 0, to = 1, clip = { 2, 1 } } end, "option 'clip': {lo, hi} with lo <= hi expected")
  T.raises(function() qd.schedule.quadratic { T = 3, from = -1, to = 1 } end, "from, to >= 0")
  T.raises(function() qd.schedule.quadratic { T = 3, from = 1, scale = 1 } end, "either 'scale' or 'from'/'to' expected")
  T.raises(function() qd.schedule.geometric { T = 3, from = 0, to = 1 } end, "from, to > 0")
  T.raises(function() qd.schedule.cosine { T = 3, s = -1 } end, "offset s >= 0 expected")
  T.raises(function() qd.schedule.cosine { T = 3, max_beta = 2 } end, "max_beta in (0, 1] expected")
  T.raises(function() qd.schedule.from {} end, "values: 1..10000000 values expected, got 0")
  T.raises(function() qd.schedule.from { 1, "x" } end, "values: number expected at position 2, got string")
  T.raises(function() qd.schedule.from { 1, 0 / 0 } end, "finite value expected at position 2")
  T.raises(function() qd.schedule.from { 1, 2, foo = 1 } end, "unknown option 'foo'")
  T.raises(function() qd.schedule.from { values = { 1 }, f = print } end, "schedule spec values must be plain data, got function")
  T.raises(function() qd.schedule.piecewise {} end, "non-empty list of schedules expected")
  T.raises(function() qd.schedule.piecewise { 3 } end, "qd.Schedule or table of numbers expected at position 1, got number")
  local s = qd.schedule.linear { T = 3, from = 0, to = 1 }
  T.raises(function() return s[0] end, "step 1..3 expected, got 0")
  T.raises(function() return s[4] end, "step 1..3 expected, got 4")
  T.raises(function() return s[1.5] end, "integer step expected, got a non-integer")
  T.raises(function() s:beta(4) end, "step 1..3 expected, got 4")
  T.raises(function() s:alpha_bar(-1) end, "step 0..3 expected, got -1")
  T.raises(function() s:clip(1, 0) end, "bounds with lo <= hi expected")
  T.raises(function() s.beta(qd.vector(2), 1) end, "qd.Schedule expected, got qd.Vector")
  T.eq(s.nosuch, nil, "unknown keys read as nil")
end)
