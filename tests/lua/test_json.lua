-- test_json.lua — qd.json: the C fast path for arrays of numbers (core.json_numarray) gives
-- byte-for-byte the text of the pure-Lua encoder, which is kept here as the reference; it
-- declines anything that is not a plain array of numbers; encode/decode round trips.
local T = require "testlib"
local json = require "qd.json"

-- the reference: qd.json's number and array rules written out in Lua
local function ref(v)
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if math.type(v) == "integer" then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  local parts = {}
  for i = 1, #v do parts[i] = ref(v[i]) end
  return "[" .. table.concat(parts, ",") .. "]"
end

T.test("number arrays: the fast path = the Lua rules", function()
  local core = require "qd.core"
  local r = qd.rng(5)
  for _, n in ipairs { 1, 2, 7, 100, 1000 } do
    local t = {}
    for i = 1, n do
      local u = r:uniform()
      if u < 0.2 then t[i] = r:integer(-1000000, 1000000)
      elseif u < 0.25 then t[i] = ({ 0 / 0, math.huge, -math.huge, -0.0, 1e-308, 5e-324 })[r:integer(1, 6)]
      else t[i] = r:normal() * 10 ^ r:integer(-20, 20) end
    end
    local fast = core.json_numarray(t)
    T.eq(fast, ref(t), "n = " .. n .. ": byte-identical")
    T.eq(json.encode(t), ref(t), "json.encode uses it (n = " .. n .. ")")
  end
  T.eq(json.encode { math.maxinteger, math.mininteger, 0.1, 1 / 3 },
       "[9223372036854775807,-9223372036854775808,0.10000000000000001,0.33333333333333331]",
       "extremes and %.17g")
end)

T.test("not a plain number array: declined, the Lua encoder decides", function()
  local core = require "qd.core"
  T.eq(core.json_numarray {}, nil, "empty")
  T.eq(core.json_numarray { 1, "2" }, nil, "a string entry")
  T.eq(core.json_numarray { 1, 2, x = 3 }, nil, "a string key")
  T.eq(core.json_numarray { [1] = 1, [3] = 3 }, nil, "a hole")
  T.eq(core.json_numarray { 1, { 2 } }, nil, "a nested table")
  T.eq(core.json_numarray { [1.5] = 1 }, nil, "a float key")
  T.eq(json.encode { 1, 2, x = 3 }, '{"1":1,"2":2,"x":3}', "mixed table as an object")
  T.eq(json.encode { 1, { 2, 3.5 }, "a" }, '[1,[2,3.5],"a"]', "nested arrays")
  T.eq(json.encode({ 1, 2 }, { indent = true }), "[\n  1,\n  2\n]", "indent: the Lua path")
  T.raises(function() core.json_numarray(5) end, "table expected")
end)

T.test("round trip", function()
  local doc = { losses = { 0.5, 1e-12, 3 }, params = { { 1.25, -2 }, { 0 / 0 } }, name = "x" }
  local back = json.decode(json.encode(doc))
  T.eq(back.losses[2], 1e-12, "float exact")
  T.eq(math.type(back.losses[3]), "integer", "integer stays integer")
  T.eq(back.params[1][1], 1.25, "nested")
  T.eq(json.encode(doc.params[2]), "[null]", "NaN encodes as null")
  T.eq(back.params[2][1], nil, "and decodes as nil")
end)
