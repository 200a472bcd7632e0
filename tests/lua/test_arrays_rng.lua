-- test_arrays_rng.lua — qd.Vector, qd.Matrix and qd.Rng from Lua: constructors, element
-- access (1-based, column-major storage), conversions, reductions, copies; generator
-- determinism (same seed, same numbers), split / substreams, sane statistics with a
-- fixed seed, the run's generator (qd.run_rng, qd.set_seed, `qd --seed N`).
local T = require "testlib"

T.test("qd.Vector", function()
  local v = qd.vector(4)
  T.eq(qd.type(v), "qd.Vector"); T.eq(#v, 4); T.eq(v:is_complex(), false)
  for i = 1, 4 do T.eq(v[i], 0, "zeroed") end
  local r, c = v:shape()
  T.eq(r, 4); T.eq(c, 1)
  v[2] = 3.5
  T.eq(v[2], 3.5); T.eq(v:get(2), 3.5)
  T.ok(rawequal(v:set(3, -1), v), "set returns self")
  T.eq(v[3], -1)
  T.eq(v:sum(), 2.5); T.eq(v:mean(), 0.625)
  T.eq(v[5], nil, "v[i] past the end is nil"); T.eq(v[0], nil)
  T.eq(v[4 / 2], 3.5, "v[2.0] is v[2]"); T.eq(v[1.5], nil)
  v[6 / 2] = 7
  T.eq(v[3], 7, "v[3.0] = x writes v[3]")
  v[3] = -1
  local t = v:totable()
  T.eq(#t, 4); T.eq(t[2], 3.5)
  -- from a table: real
  local w = qd.vector { 1, 2, 3 }
  T.eq(#w, 3); T.eq(w[3], 3); T.eq(w:is_complex(), false)
  -- complex when any entry is a pair; numbers become re + 0i
  local z = qd.vector { 1, { 0, 2 }, -1 }
  T.ok(z:is_complex()); T.eq(#z, 3)
  local re, im = z:get(2)
  T.eq(re, 0); T.eq(im, 2)
  T.eq(z[1][1], 1); T.eq(z[1][2], 0, "v[i] of a complex vector is {re, im}")
  local sr, si = z:sum()
  T.eq(sr, 0); T.eq(si, 2)
  local mr, mi = z:mean()
  T.eq(mr, 0); T.near(mi, 2 / 3, 1e-15)
  z[3] = { 1, -1 }
  re, im = z:get(3)
  T.eq(re, 1); T.eq(im, -1)
  z:set(1, { 5, 6 })
  T.eq(z:totable()[1][2], 6, "totable gives pairs")
  local zc = qd.vector(2, { complex = true })
  T.ok(zc:is_complex())
  T.eq(qd.vector(2, { complex = false }):is_complex(), false)
  -- copy is independent
  local c2 = w:copy()
  c2[1] = 100
  T.eq(w[1], 1); T.eq(qd.type(c2), "qd.Vector")
  -- empty table -> empty vector
  local e = qd.vector {}
  T.eq(#e, 0); T.eq(e:sum(), 0)
  -- printing
  T.eq(tostring(w), "qd.Vector(3, real): [1, 2, 3]")
  T.ok(tostring(qd.vector(20)):find("..., 0]", 1, true) ~= nil, "long vectors truncated")
  T.ok(tostring(z):find("complex", 1, true) ~= nil)
end)

T.test("qd.Matrix", function()
  local M = qd.matrix { { 1, 2, 3 }, { 4, 5, 6 } }
  T.eq(qd.type(M), "qd.Matrix")
  local r, c = M:shape()
  T.eq(r, 2); T.eq(c, 3); T.eq(#M, 2, "#M is the row count")
  T.eq(M:get(1, 3), 3); T.eq(M:get(2, 1), 4)
  T.eq(M:is_complex(), false)
  T.eq(M:sum(), 21); T.eq(M:mean(), 3.5)
  T.ok(rawequal(M:set(2, 3, -6), M))
  T.eq(M:get(2, 3), -6)
  local t = M:totable()
  T.eq(#t, 2); T.eq(#t[1], 3); T.eq(t[2][3], -6, "totable is rows")
  local Z = qd.matrix(2, 2)
  T.eq(Z:get(2, 2), 0)
  local ZC = qd.matrix(2, 3, { complex = true })
  T.ok(ZC:is_complex())
  ZC:set(1, 2, { 1, 2 })
  local re, im = ZC:get(1, 2)
  T.eq(re, 1); T.eq(im, 2)
  T.eq(ZC:totable()[1][2][2], 2)
  local C = qd.matrix { { 1, { 0, 1 } }, { { 0, -1 }, 1 } }
  T.ok(C:is_complex())
  re, im = C:get(2, 1)
  T.eq(re, 0); T.eq(im, -1)
  local sr, si = C:sum()
  T.eq(sr, 2); T.eq(si, 0)
  local cp = M:copy()
  cp:set(1, 1, 9)
  T.eq(M:get(1, 1), 1); T.eq(qd.type(cp), "qd.Matrix")
  -- a column matrix accepts a single index
  local col = qd.matrix { { 1 }, { 2 } }
  T.eq(col:get(2), 2)
  -- M[i] is not an entry accessor (nil), entries are set with set()
  T.eq(M[1], nil)
  T.raises(function() M[1] = 2 end, "qd.Matrix entries are set with M:set(i, j, x)")
  T.eq(tostring(qd.matrix { { 1, 2 }, { 3, 4 } }), "qd.Matrix(2x2, real):\n  1  2\n  3  4")
  local big = tostring(qd.matrix(20, 20))
  T.ok(big:find("...", 1, true) ~= nil, "big matrices truncated")
  -- results of qd functions are Matrices / Vectors of the documented kinds
  T.eq(qd.type(qd.gate_matrix("h")), "qd.Matrix")
  T.ok(qd.gate_matrix("h"):is_complex())
  T.eq(qd.type(qd.ensemble(1, 2):overlaps()), "qd.Matrix")
end)

T.test("freed arrays", function()
  local v = qd.vector { 1, 2 }
  v:free()
  v:free()   -- idempotent
  T.eq(tostring(v), "qd.Vector (freed)")
  T.raises(function() return v:get(1) end, "qd.Vector has been freed")
  T.raises(function() return v:sum() end, "qd.Vector has been freed")
  T.raises(function() return #v end, "qd.Vector has been freed")
  T.raises(function() v[1] = 3 end, "qd.Vector has been freed")
  local keep
  do
    local m <close> = qd.matrix(2, 2)
    m:set(1, 1, 1)
    keep = m
  end
  T.raises(function() return keep:get(1, 1) end, "qd.Matrix has been freed", "<close> frees")
  T.eq(tostring(keep), "qd.Matrix (freed)")
end)

T.test("qd.Rng: determinism", function()
  local a, b = qd.rng(42), qd.rng(42)
  local xa, xb = {}, {}
  for i = 1, 10 do xa[i], xb[i] = a:uniform(), b:uniform() end
  T.eq(table.concat(xa, ","), table.concat(xb, ","), "same seed, same numbers")
  T.eq(qd.type(a), "qd.Rng")
  T.eq(a:seed(), 42)
  T.ok(qd.rng(43):uniform() ~= qd.rng(42):uniform(), "different seeds differ")
  T.eq(qd.rng(0):seed(), 0)
  T.eq(qd.rng(math.maxinteger):seed(), math.maxinteger)
  -- normal / integer / vector forms are deterministic too
  T.eq(qd.rng(1):normal(), qd.rng(1):normal())
  T.eq(qd.rng(1):integer(1, 100), qd.rng(1):integer(1, 100))
  local u1, u2 = qd.rng(5):uniform(0, 1, 6), qd.rng(5):uniform(0, 1, 6)
  T.eq(table.concat(u1:totable(), ","), table.concat(u2:totable(), ","))
  -- the vector form draws the same numbers as repeated scalar calls
  local r = qd.rng(5)
  for i = 1, 6 do T.eq(r:uniform(), u1[i], "vector = scalar draws") end
  -- split: a new independent generator; advances the parent
  local p = qd.rng(9)
  local child = p:split()
  T.eq(qd.type(child), "qd.Rng")
  local fresh = qd.rng(9)
  T.ok(p:uniform() ~= fresh:uniform(), "split advanced the parent")
  T.ok(child:uniform() ~= qd.rng(9):uniform(), "child differs from the parent's stream")
  local p2 = qd.rng(9)
  T.eq(p2:split():uniform(), qd.rng(9):split():uniform(), "split is deterministic")
  -- substream(k): deterministic, does not advance, distinct across k
  local s = qd.rng(7)
  local s1 = s:substream(1):uniform()
  T.eq(s:substream(1):uniform(), s1, "substream deterministic")
  T.eq(s:uniform(), qd.rng(7):uniform(), "substream does not advance the parent")
  T.ok(s:substream(2):uniform() ~= qd.rng(7):substream(1):uniform(), "substreams differ")
  T.ok(qd.rng(7):substream(0):uniform() ~= qd.rng(7):substream(1):uniform())
  -- many substreams: first draws all distinct
  local seen, dup = {}, false
  for k = 0, 199 do
    local x = qd.rng(3):substream(k):uniform()
    if seen[x] then dup = true end
    seen[x] = true
  end
  T.ok(not dup, "200 substreams, no repeated first draw")
  T.ok(tostring(qd.rng(3)):find("qd.Rng(seed 3", 1, true) ~= nil)
end)

T.test("qd.Rng: statistics (fixed seed)", function()
  local r = qd.rng(2024)
  local n = 20000
  local u = r:uniform(0, 1, n)
  T.eq(#u, n)
  local mean = u:mean()
  T.near(mean, 0.5, 0.01, "uniform mean (sd 0.002)")
  local lo, hi, var = 1, 0, 0
  for i = 1, n do
    local x = u[i]
    if x < lo then lo = x end
    if x > hi then hi = x end
    var = var + (x - 0.5) ^ 2
  end
  T.ok(lo >= 0 and hi < 1, "uniform in [0, 1)")
  T.near(var / n, 1 / 12, 0.004, "uniform variance")
  local ab = r:uniform(-2, 3, 1000)
  local okr = true
  for i = 1, 1000 do if ab[i] < -2 or ab[i] >= 3 then okr = false end end
  T.ok(okr, "uniform(a, b) in [a, b)")
  local x = r:uniform(5, 7)
  T.ok(x >= 5 and x < 7)
  T.eq(r:uniform(2, 2), 2, "degenerate interval")
  -- normal
  local g = r:normal(0, 1, n)
  local m, v2 = g:mean(), 0
  for i = 1, n do v2 = v2 + (g[i] - m) ^ 2 end
  T.near(m, 0, 0.03, "normal mean (sd 0.007)")
  T.near(v2 / n, 1, 0.05, "normal variance")
  local h = r:normal(10, 2, 5000)
  T.near(h:mean(), 10, 0.15, "normal(mu, sigma) mean")
  T.eq(r:normal(3, 0), 3, "sigma 0")
  -- integer: inclusive bounds, every value hit, roughly uniform
  local counts = {}
  for _ = 1, 6000 do
    local k = r:integer(1, 6)
    counts[k] = (counts[k] or 0) + 1
  end
  local all = true
  for k = 1, 6 do if not counts[k] or math.abs(counts[k] - 1000) > 150 then all = false end end
  T.ok(all, "die faces ~1000 each")
  T.eq(counts[0], nil); T.eq(counts[7], nil)
  T.eq(r:integer(-3, -3), -3)
  local big = r:integer(math.mininteger, math.maxinteger)
  T.eq(math.type(big), "integer", "full 64-bit range")
end)

T.test("run rng: qd.run_rng, qd.set_seed, --seed", function()
  local rr = qd.run_rng()
  T.eq(qd.type(rr), "qd.Rng")
  qd.set_seed(77)
  T.eq(qd.run_rng():seed(), 77)
  local a = qd.run_rng():uniform()
  qd.set_seed(77)
  T.eq(qd.run_rng():uniform(), a, "set_seed reproduces the run's numbers")
  T.eq(a, qd.rng(77):uniform(), "the run's generator is qd.rng(seed)")
  -- the command line: `qd --seed N` seeds the run's generator; default seed 1
  local exe
  local i = 0
  while arg and arg[i - 1] do i = i - 1 end
  exe = arg and arg[i]
  if T.ok(exe ~= nil, "interpreter path in arg") then
    local function run(opts)
      local p = io.popen(string.format("%q %s -e %q 2>&1", exe, opts,
                                       "io.write(string.format('%d %.17g', qd.run_rng():seed(), qd.haar_state(1):amp(1)))"))
      local out = p:read("a")
      p:close()
      return out
    end
    local seven = run("--seed 7")
    qd.set_seed(7)
    T.eq(seven, string.format("%d %.17g", 7, qd.haar_state(1):amp(1)), "--seed 7 = set_seed(7)")
    T.eq(run("--seed=7"), seven)
    local default = run("")
    qd.set_seed(1)
    T.eq(default, string.format("%d %.17g", 1, qd.haar_state(1):amp(1)), "default seed 1")
    T.ok(run("--seed 8") ~= seven, "different seeds differ")
  end
end)

T.test("abs and angle: moduli and phases as real arrays of the same shape", function()
  local M = qd.matrix { { 1, { 0, -2 } }, { -3, { 3, 4 } } }
  local A, P = M:abs(), M:angle()
  T.eq(A:is_complex(), false); T.eq(qd.type(P), "qd.Matrix")
  T.near(A:get(2, 2), 5, 1e-15); T.near(A:get(1, 2), 2, 0); T.near(A:get(2, 1), 3, 0)
  T.near(P:get(1, 2), -math.pi / 2, 1e-15); T.near(P:get(2, 1), math.pi, 1e-15); T.near(P:get(2, 2), math.atan(4, 3), 1e-15)
  local v = qd.vector { -1, 2 }
  T.eq(qd.type(v:abs()), "qd.Vector"); T.eq(v:abs()[1], 1); T.near(v:angle()[1], math.pi, 0); T.eq(v:angle()[2], 0)
  T.raises(function() M:abs(1) end, "unexpected extra argument")
end)
