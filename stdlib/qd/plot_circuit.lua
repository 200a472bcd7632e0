-- qd.plot_circuit — c:plot() = qd.plot.circuit(c): a circuit diagram as a picture, drawn
-- with gnuplot objects and labels (boxes, control dots, target circles, wires). The layout
-- is the text diagram's (c:draw(), qasm.lua): each op in the first column where all the
-- qubits it spans are free; qubit 0 is the top wire.
local C = require "qd.plot_core"

local M = {}
local fmt = string.format

-- two-qubit controlled gates: control on the first qubit, this box (or a target circle) on
-- the second
local controlled = { cx = "+", cy = "Y", cz = "*", ch = "H", crx = "RX", cry = "RY", crz = "RZ", cp = "P" }

local function label_of(op, names)
  if op.kind == "measure" then return op.discard and "M>" or "M" end
  if op.kind == "reset" then return "|0>" end
  if op.kind == "unitary" then return op.name end
  if op.kind == "channel" then return "~" .. op.name:match("^[^(]*") end
  local args = {}
  for i, p in ipairs(op.params or {}) do
    if p.value then args[i] = fmt("%.3g", p.value)
    else
      local s = names[p.slot]
      if p.scale ~= 1 then s = (p.scale == -1 and "-" or fmt("%.3g*", p.scale)) .. s end
      if p.offset ~= 0 then s = s .. fmt("%+.3g", p.offset) end
      args[i] = s
    end
  end
  return op.name:upper() .. (#args > 0 and ("(" .. table.concat(args, ",") .. ")") or "")
end

-- ops placed in columns: {col=, op=, label=, lo=, hi=}; and the number of columns
local function layout(c)
  local names, given = {}, c:param_names()
  for i = 1, c:nparams() do names[i] = given[i] or ("#" .. i) end
  local level, placed, ncol = {}, {}, 0
  for q = 0, c.n - 1 do level[q] = 1 end
  for _, op in ipairs(c:ops()) do
    local lo, hi = math.huge, -math.huge
    for _, q in ipairs(op.qubits) do lo, hi = math.min(lo, q), math.max(hi, q) end
    local col = 1
    for q = lo, hi do col = math.max(col, level[q]) end
    for q = lo, hi do level[q] = col + 1 end
    placed[#placed + 1] = { col = col, op = op, label = label_of(op, names), lo = lo, hi = hi }
    ncol = math.max(ncol, col)
  end
  return placed, ncol
end

-- column centres: a column is as wide as its longest label needs
local function column_x(placed, ncol)
  local w = {}
  for k = 1, ncol do w[k] = 1 end
  for _, p in ipairs(placed) do
    local text = controlled[p.op.name] and p.op.kind == "gate" and #p.label - #p.op.name + 2 or #p.label
    w[p.col] = math.max(w[p.col], 0.35 + 0.13 * text)
  end
  local x, at = {}, 0.6
  for k = 1, ncol do
    x[k] = at + w[k] / 2
    at = at + w[k] + 0.2
  end
  return x, w, at
end

local function box(s, x, y0, y1, w, text)
  s[#s + 1] = fmt("set object rect from %.3f,%.3f to %.3f,%.3f fc rgb '#e8f0fb' fs solid border lc rgb '#1f4e8c' front",
                  x - w / 2, y0 + 0.3, x + w / 2, y1 - 0.3)
  s[#s + 1] = fmt("set label %s at %.3f,%.3f center front", C.q(text), x, (y0 + y1) / 2)
end

local function dot(s, x, y) s[#s + 1] = fmt("set object circle at %.3f,%.3f size 0.08 fc rgb 'black' fs solid front", x, y) end

local function target(s, x, y)
  s[#s + 1] = fmt("set object circle at %.3f,%.3f size 0.2 fc rgb 'white' fs solid border lc rgb 'black' front", x, y)
  s[#s + 1] = fmt("set arrow from %.3f,%.3f to %.3f,%.3f nohead front", x - 0.2, y, x + 0.2, y)
  s[#s + 1] = fmt("set arrow from %.3f,%.3f to %.3f,%.3f nohead front", x, y - 0.2, x, y + 0.2)
end

local function cross(s, x, y)
  s[#s + 1] = fmt("set arrow from %.3f,%.3f to %.3f,%.3f nohead front lw 2", x - 0.12, y - 0.12, x + 0.12, y + 0.12)
  s[#s + 1] = fmt("set arrow from %.3f,%.3f to %.3f,%.3f nohead front lw 2", x - 0.12, y + 0.12, x + 0.12, y - 0.12)
end

-- the objects of one placed op (y = -qubit)
local function draw_op(s, p, x, w)
  local op, qs = p.op, p.op.qubits
  if p.hi > p.lo then
    s[#s + 1] = fmt("set arrow from %.3f,%d to %.3f,%d nohead back lc rgb 'black'", x, -p.lo, x, -p.hi)
  end
  local name = op.kind == "gate" and op.name
  if name and controlled[name] then
    dot(s, x, -qs[1])
    if name == "cx" then target(s, x, -qs[2])
    elseif name == "cz" then dot(s, x, -qs[2])
    else box(s, x, -qs[2], -qs[2], w, controlled[name] .. (p.label:match("%b()") or "")) end
  elseif name == "ccx" then
    dot(s, x, -qs[1]); dot(s, x, -qs[2]); target(s, x, -qs[3])
  elseif name == "swap" then
    cross(s, x, -qs[1]); cross(s, x, -qs[2])
  elseif op.kind == "measure" or op.kind == "reset" or #qs == 1 then
    for _, q in ipairs(qs) do box(s, x, -q, -q, w, p.label) end
  else
    box(s, x, -p.lo, -p.hi, w, p.label)   -- a multi-qubit block over the span
  end
end

-- qd.plot.circuit(c [, opts]) / c:plot([opts])
function M.circuit(c, opts)
  local qd = require "qd"
  if qd.type(c) ~= "qd.Circuit" then C.argerror("circuit", 1, "qd.Circuit expected, got " .. qd.type(c)) end
  local o = C.check_opts("circuit", 2, opts)
  local placed, ncol = layout(c)
  local x, w, xmax = column_x(placed, ncol)
  local s, wires, gone = { C.header(o) }, {}, {}
  for _, p in ipairs(placed) do   -- a measured-and-discarded qubit's wire ends at its box
    if p.op.kind == "measure" and p.op.discard then
      for _, q in ipairs(p.op.qubits) do gone[q] = x[p.col] end
    end
  end
  for q = 0, c.n - 1 do
    wires[#wires + 1] = fmt("0.3 %d\n%.3f %d\n\n", -q, gone[q] or xmax, -q)
    s[#s + 1] = fmt("set label 'q%d' at 0.15,%d right", q, -q)
  end
  for _, p in ipairs(placed) do draw_op(s, p, x[p.col], w[p.col] - 0.1) end
  table.insert(s, 1, C.datablock("w", wires))
  s[#s + 1] = "unset border\nunset tics\nunset key\nset size ratio -1"
  s[#s + 1] = fmt("set xrange [-0.4:%.3f]\nset yrange [%.3f:0.7]", xmax + 0.1, -(c.n - 1) - 0.7)
  s[#s + 1] = "plot $w with lines lc rgb 'black' notitle"
  local width = math.max(240, math.floor(70 * (xmax + 0.5)))
  return C.render("circuit", o, table.concat(s, "\n"), nil, { width, math.floor(70 * (c.n + 0.6) + 40) })
end

return M
