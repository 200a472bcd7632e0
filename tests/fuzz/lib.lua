-- lib.lua — helpers shared by the fuzzers (api.lua, files.lua) and the regression
-- scripts (regress.lua). The fuzzers print every call as a Lua expression over these
-- names, so a logged call can be pasted after `dofile "tests/fuzz/lib.lua"`:
--   MT.State           the metatable of qd.State (likewise every other qd type)
--   FREED(o)           o after its type's free (or __gc when it has no free): a closed object
--   PROXY(t, spec)     an empty table whose __index/__len answer from t, then lie (spec)
--   DEEP(n, leaf)      n nested one-element tables around leaf
local L = {}

-- One object of each type, for its metatable (the methods live in mt.methods).
L.MT = {
  State = getmetatable(qd.state(1)),
  DensityMatrix = getmetatable(qd.dm(1)),
  Ensemble = getmetatable(qd.ensemble(1, 1)),
  Vector = getmetatable(qd.vector(1)),
  Matrix = getmetatable(qd.matrix(1, 1)),
  Rng = getmetatable(qd.rng(1)),
  Circuit = getmetatable(qd.circuit(1)),
  Tape = getmetatable(select(2, qd.circuit(1):forward(qd.state(1)))),
  Channel = getmetatable(qd.channel.dephasing { p = 0.1 }),
  PauliSum = getmetatable(qd.pauli_sum("Z")),
  Schedule = getmetatable(qd.schedule.from { 0.1 }),
  MLP = getmetatable(qd.nn.mlp { sizes = { 1, 1 } }),
  ConvNet = getmetatable(qd.nn.conv { length = 2, inputs = 1, channels = 1, outputs = 1 }),
}

function L.FREED(o)
  local mt = getmetatable(o)
  local f = type(mt) == "table" and ((type(mt.methods) == "table" and mt.methods.free) or mt.__gc)
  if f then f(o) end
  return o
end

-- Frees o if it can be freed; never raises (callbacks use it on whatever they are given).
function L.FREE(o)
  if type(o) == "userdata" then pcall(L.FREED, o) end
end

-- spec.len: nil (#t), a value __len returns as is (negative, huge, fractional, NaN, a
--   string), "flip" (alternates #t and 2#t+3), "grow" (#t + calls), "err" (raises);
-- spec.after = k: the first k reads answer from t, the next 8 give spec.junk:
--   nil, "err" (raises), "gc" (collects, then t[key]), "tbl" ({}), or a value; later
--   reads give nil (so the table is finite: a reader looping to the first nil ends).
function L.PROXY(t, spec)
  spec = spec or {}
  local reads, lens = 0, 0
  return setmetatable({}, {
    __index = function(_, k)
      reads = reads + 1
      if spec.after and reads > spec.after + 8 then return nil end
      if spec.after and reads > spec.after then
        local j = spec.junk
        if j == "err" then error("proxy __index raised", 0)
        elseif j == "gc" then collectgarbage(); return t[k]
        elseif j == "tbl" then return {}
        else return j end
      end
      return t[k]
    end,
    __len = function()
      lens = lens + 1
      local l = spec.len
      if l == nil then return #t
      elseif l == "flip" then return lens % 2 == 1 and #t or 2 * #t + 3
      elseif l == "grow" then return #t + lens
      elseif l == "err" then error("proxy __len raised", 0)
      else return l end
    end,
  })
end

function L.DEEP(n, leaf)
  local t = leaf
  if t == nil then t = {} end
  for _ = 1, n do t = { t } end
  return t
end

-- Lua source for a number that reads back as the same value and subtype.
function L.numsrc(x)
  if math.type(x) == "integer" then
    if x == math.mininteger then return "math.mininteger" end
    return string.format("%d", x)
  end
  if x ~= x then return "(0/0)" end
  if x == math.huge then return "(1/0)" end
  if x == -math.huge then return "(-1/0)" end
  if x == 0 and 1 / x < 0 then return "(-0.0)" end
  local s = string.format("%.17g", x)
  if not s:find("[%.eEn]") then s = s .. ".0" end
  return s
end

return L
