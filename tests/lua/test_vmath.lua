-- test_vmath.lua — elementwise maths on real qd.Vector / qd.Matrix (lua_vmath.c) against
-- Lua's math library entry by entry, shapes and types kept, domain errors naming the entry,
-- and qd.matrix{v1, v2} with vectors as rows.
local T = require "testlib"

local function atanh(x) return 0.5 * math.log((1 + x) / (1 - x)) end
local function tanh(x) local e = math.exp(2 * x); return (e - 1) / (e + 1) end
local ref = {
  exp = math.exp, log = math.log, sqrt = math.sqrt, tanh = tanh, atanh = atanh, sin = math.sin, cos = math.cos,
  sigmoid = function(x) return 1 / (1 + math.exp(-x)) end,
}

T.test("unary functions against math.*, Vector and Matrix", function()
  local rng = qd.rng(4)
  local v = rng:uniform(0.01, 0.99, 50)
  local M = qd.matrix(5, 10)
  for i = 1, 5 do for j = 1, 10 do M:set(i, j, v[(j - 1) * 5 + i]) end end
  for name, f in pairs(ref) do
    local w = v[name](v)
    local worst = 0
    for i = 1, #v do worst = math.max(worst, math.abs(w[i] - f(v[i])) / math.max(1, math.abs(f(v[i])))) end
    T.ok(worst < 1e-14, name .. " matches the reference (" .. worst .. ")")
    T.eq(qd.type(w), "qd.Vector", name .. " of a Vector is a Vector")
    local W = M[name](M)
    T.eq(qd.type(W), "qd.Matrix", name .. " of a Matrix is a Matrix")
    T.eq(W:get(3, 7), w[(7 - 1) * 5 + 3], name .. ": the same entry, column-major")
  end
  local s = qd.vector { -800, 0, 800 }:sigmoid()
  T.ok(s[1] == 0 and s[2] == 0.5 and s[3] == 1, "sigmoid saturates without overflow")
end)

T.test("clamp, mul, div", function()
  local v = qd.vector { -2, 0.5, 3 }
  local c = v:clamp(0, 1)
  T.ok(c[1] == 0 and c[2] == 0.5 and c[3] == 1, "clamp")
  local w = qd.vector { 2, 4, -1 }
  local p, q = v:mul(w), v:div(w)
  T.ok(p[1] == -4 and p[2] == 2 and p[3] == -3, "elementwise product")
  T.ok(q[1] == -1 and q[2] == 0.125 and q[3] == -3, "elementwise quotient")
  T.eq(v:mul(2)[3], 6, "times a number"); T.eq(v:div(4)[1], -0.5, "divided by a number")
  T.eq(v[1], -2, "the receiver is unchanged")
end)

T.test("a number added to or subtracted from every entry", function()
  local v = qd.vector { 1, 2 }
  local a, b, c = v + 1, 1 - v, v - 0.5
  T.ok(a[1] == 2 and a[2] == 3 and b[1] == 0 and b[2] == -1 and c[2] == 1.5, "v + x, x - v, v - x")
  T.eq(qd.type(b), "qd.Vector", "x - v is a Vector")
  local M = qd.matrix { { 1, 2 } } + 1
  T.eq(qd.type(M), "qd.Matrix", "M + x is a Matrix"); T.eq(M:get(1, 2), 3, "M + x entry")
  local z = qd.vector { { 0, 1 } } + 1
  T.eq(select(2, z:get(1)), 1, "complex entries keep their imaginary part")
  T.raises(function() return v + 0 / 0 end, "cannot add a qd array and a non-finite number")
end)

T.test("qd.matrix with qd.Vector rows", function()
  local a, b = qd.vector { 1, 2, 3 }, qd.vector { 4, 5, 6 }
  local M = qd.matrix { a, b }
  T.eq(select(1, M:shape()), 2, "rows"); T.eq(select(2, M:shape()), 3, "columns")
  T.eq(M:get(2, 3), 6, "entry")
  local Z = qd.matrix { a, qd.vector { 1, 2, { 0, 1 } } }
  T.ok(Z:is_complex(), "complex when a row is")
  local m2 = qd.matrix { a, { 7, 8, 9 } }
  T.eq(m2:get(2, 1), 7, "tables and vectors mixed")
  T.raises(function() qd.matrix { a, qd.vector { 1, 2 } } end, "rows of equal length expected (row 2 has 2 entries")
  local f = qd.vector { 1, 2, 3 }; f:free()
  T.raises(function() qd.matrix { a, f } end, "row 2: the qd.Vector has been freed")
  T.raises(function() qd.matrix { a, qd.state(1) } end, "row 2: table or qd.Vector expected")
  -- all rows real Vectors (built directly) = the same rows as tables (the general path),
  -- and = rows read through a metatable (general path again)
  local r = qd.rng(3)
  local rows, trows = {}, {}
  for i = 1, 3 do
    rows[i] = r:uniform(-1, 1, 7)
    trows[i] = rows[i]:totable()
  end
  local V, T2 = qd.matrix(rows), qd.matrix(trows)
  local P = qd.matrix(setmetatable({}, { __index = rows, __len = function() return 3 end }))
  local same = qd.type(V) == "qd.Matrix" and not V:is_complex()
  for i = 1, 3 do
    for j = 1, 7 do same = same and V:get(i, j) == T2:get(i, j) and P:get(i, j) == T2:get(i, j) end
  end
  T.ok(same, "Vector rows = table rows = rows through __index, entry for entry")
  T.raises(function() qd.matrix { f, a } end, "row 1: the qd.Vector has been freed")
  T.raises(function() qd.matrix { qd.vector { 1 }, qd.vector { 1, 2 } } end, "rows of equal length expected")
end)

T.test("errors", function()
  T.raises(function() qd.vector { 1, -1 }:log() end, "entry 2 is -1.0, > 0 expected")
  T.raises(function() qd.vector { 0, 1 }:log() end, "entry 1 is 0.0, > 0 expected")
  T.raises(function() qd.vector { 4, -1 }:sqrt() end, "entry 2 is -1.0, >= 0 expected")
  T.raises(function() qd.vector { 0.5, 1 }:atanh() end, "entry 2 is 1.0, in (-1, 1) expected")
  T.raises(function() qd.vector { 1, 0 / 0 }:tanh() end, "entry 2 is")
  T.raises(function() qd.vector { 1, 0 / 0 }:tanh() end, "finite expected")
  T.raises(function() qd.vector { 1000 }:exp() end, "entry 1 overflows")
  T.raises(function() qd.vector { 1, { 0, 1 } }:exp() end, "real qd.Vector or qd.Matrix expected, got a complex one")
  T.raises(function() qd.vector { 1 }:exp(2) end, "bad argument #1")
  T.raises(function() qd.vector { 1, 2 }:clamp(1, 0) end, "upper bound >= lower bound expected")
  T.raises(function() qd.vector { 1, 0 / 0 }:clamp(0, 1) end, "entry 2 is nan")
  T.raises(function() qd.vector { 1, 2 }:mul(qd.vector { 1 }) end, "2x1 array expected (the shape of the receiver), got 1x1")
  T.raises(function() qd.vector { 1, 2 }:div(qd.vector { 1, 0 }) end, "entry 2 is 0 (division by zero)")
  T.raises(function() qd.vector { 1, 2 }:div(0) end, "finite non-zero number expected")
  T.raises(function() qd.vector { 1, 2 }:mul(math.huge) end, "finite number expected")
  T.raises(function() qd.vector { 1e300 }:mul(1e300) end, "the result is not finite")
  T.raises(function() qd.vector { 1, 2 }:mul("x") end, "qd.Vector or qd.Matrix expected, got string")
  local f = qd.vector { 1 }; f:free()
  T.raises(function() f:exp() end, "has been freed")
end)
