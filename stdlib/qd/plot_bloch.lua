-- qd.plot_bloch — qd.plot.bloch: states on the Bloch sphere, drawn the way QuTiP's Bloch
-- class does (wire sphere, x/y/z axes, |0> on top). A point is (<X>, <Y>, <Z>) of the
-- chosen qubit (its reduced state: a pure state of several qubits lands inside the ball).
-- Input: an Ensemble (one point set), a State or DensityMatrix (one point), a list of
-- Ensembles (one set each, e.g. generated vs target), a list of States/DensityMatrices (one
-- set), a list of such lists (one set each: ensembles of density matrices); with {trajectories = true} a list is a path in time: a list of Ensembles gives one
-- curve per member (coloured by position in the list), a list of States one curve.
local C = require "qd.plot_core"

local M = {}
local fmt = string.format

-- (x, y, z) lists of one object's points for qubit q
local function coords(obj, q)
  local qd = require "qd"
  local t = qd.type(obj)
  if obj.n <= q then C.argerror("bloch", 2, fmt("option 'qubit': %d is not a qubit of a %d-qubit %s", q, obj.n, t)) end
  if t == "qd.Ensemble" then
    return obj:expect("X", { q }):totable(), obj:expect("Y", { q }):totable(), obj:expect("Z", { q }):totable()
  end
  return { (obj:expect("X", { q })) }, { (obj:expect("Y", { q })) }, { (obj:expect("Z", { q })) }
end

local quantum = { ["qd.State"] = true, ["qd.DensityMatrix"] = true, ["qd.Ensemble"] = true }

-- the objects of the first argument: {objs}, kind ("qd.Ensemble" or "state")
local function objects(x)
  local qd = require "qd"
  local t = qd.type(x)
  if quantum[t] then return { x }, t == "qd.Ensemble" and t or "state", true end
  if t ~= "table" or #x == 0 then
    C.argerror("bloch", 1, "an Ensemble, State, DensityMatrix or a non-empty list of them expected, got " ..
               (t == "table" and "an empty table" or t))
  end
  local kind
  for i, o in ipairs(x) do
    local ti = qd.type(o)
    if ti == "table" then   -- a set of States / DensityMatrices
      if #o == 0 then C.argerror("bloch", 1, fmt("entry %d is an empty list", i)) end
      for j, m in ipairs(o) do
        local tm = qd.type(m)
        if tm ~= "qd.State" and tm ~= "qd.DensityMatrix" then
          C.argerror("bloch", 1, fmt("entry %d, member %d is a %s, not a State or DensityMatrix", i, j, tm))
        end
      end
    elseif not quantum[ti] then
      C.argerror("bloch", 1, fmt("entry %d is a %s, not a State, DensityMatrix, Ensemble or a list of states", i, ti))
    end
    local k = ti == "qd.Ensemble" and ti or ti == "table" and "sets" or "state"
    if kind and k ~= kind then C.argerror("bloch", 1, fmt("entry %d: a list mixes Ensembles and single states", i)) end
    kind = k
  end
  return x, kind, false
end

-- the wire sphere: equator, two meridians and two latitude circles, one data set
local function sphere_rows()
  local rows = {}
  local function circle(f)
    for k = 0, 72 do
      local a = 2 * math.pi * k / 72
      rows[#rows + 1] = fmt("%.5f %.5f %.5f", f(a))
    end
    rows[#rows + 1] = "NaN NaN NaN"   -- breaks the line (a blank line would mesh circles)
  end
  circle(function(a) return math.cos(a), math.sin(a), 0 end)
  circle(function(a) return math.cos(a), 0, math.sin(a) end)
  circle(function(a) return 0, math.cos(a), math.sin(a) end)
  for _, z in ipairs { 0.5, -0.5 } do
    local r = math.sqrt(1 - z * z)
    circle(function(a) return r * math.cos(a), r * math.sin(a), z end)
  end
  return rows
end

local frame = [[
set view equal xyz
set view 70, 115, 1.3
unset border
unset tics
set xrange [-1.1:1.1]
set yrange [-1.1:1.1]
set zrange [-1.1:1.1]
set arrow from -1,0,0 to 1,0,0 nohead lc rgb '#888888'
set arrow from 0,-1,0 to 0,1,0 nohead lc rgb '#888888'
set arrow from 0,0,-1 to 0,0,1 nohead lc rgb '#888888'
set label 'x' at 1.2,0,0 center
set label 'y' at 0,1.2,0 center
set label '|0>' at 0,0,1.2 center
set label '|1>' at 0,0,-1.25 center
set key top left]]

local colors = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f" }

-- point sets: one data block per object
local function point_sets(objs, kind, q, labels)
  local blocks, plots = {}, {}
  local sets = (kind == "qd.Ensemble" or kind == "sets") and objs or { objs }
  for i, set in ipairs(sets) do
    local rows = {}
    for _, o in ipairs(kind == "qd.Ensemble" and { set } or set) do
      local xs, ys, zs = coords(o, q)
      for k = 1, #xs do rows[#rows + 1] = fmt("%.6g %.6g %.6g", xs[k], ys[k], zs[k]) end
    end
    blocks[i] = C.datablock("s" .. i, rows)
    local lab = labels[i] or (#sets > 1 and ("set " .. i)) or nil
    plots[i] = fmt("$s%d with points pt 7 ps 0.8 lc rgb '%s' %s", i, colors[(i - 1) % #colors + 1],
                   lab and ("title " .. C.q(lab)) or "notitle")
  end
  return blocks, plots
end

-- trajectories: member k of every object in turn, as one curve each (colour = list position)
local function trajectory_sets(objs, q, labels)
  local pts = {}
  local N
  for i, o in ipairs(objs) do
    local xs, ys, zs = coords(o, q)
    N = N or #xs
    if #xs ~= N then C.argerror("bloch", 1, fmt("trajectories: entry %d has %d members, entry 1 has %d", i, #xs, N)) end
    pts[i] = { xs, ys, zs }
  end
  local rows, ends = {}, {}
  for k = 1, N do
    for i = 1, #objs do rows[#rows + 1] = fmt("%.6g %.6g %.6g %d", pts[i][1][k], pts[i][2][k], pts[i][3][k], i) end
    rows[#rows + 1] = "NaN NaN NaN NaN"
    ends[k] = fmt("%.6g %.6g %.6g", pts[#objs][1][k], pts[#objs][2][k], pts[#objs][3][k])
  end
  local blocks = { C.datablock("tr", rows), C.datablock("te", ends) }
  local plots = {
    fmt("$tr using 1:2:3:4 with lines lw 1 lc palette %s", labels[1] and ("title " .. C.q(labels[1])) or "notitle"),
    fmt("$te with points pt 7 ps 0.8 lc rgb '#d62728' title %s", C.q(labels[2] or "end")),
  }
  return blocks, plots
end

local function check_bloch_opts(opts)
  local o = C.check_opts("bloch", 2, opts, { qubit = "number", labels = "table", trajectories = "boolean",
                                             panels = "boolean" })
  local q = o.qubit or 0
  if math.type(q) ~= "integer" or q < 0 then C.argerror("bloch", 2, "option 'qubit': a qubit index >= 0 expected") end
  if o.panels and o.trajectories then C.argerror("bloch", 2, "options 'panels' and 'trajectories' exclude each other") end
  return o, q
end

-- panels: one sphere per point set, side by side (titles = labels)
local function panel_script(blocks, plots, labels, o)
  local s = { C.datablock("sph", sphere_rows()), table.concat(blocks), frame, "unset key",
              fmt("set multiplot layout 1,%d%s", #plots, o.title and (" title " .. C.q(o.title)) or "") }
  for i, p in ipairs(plots) do
    s[#s + 1] = "set title " .. C.q(labels[i] or ("set " .. i))
    s[#s + 1] = "splot $sph with lines lc rgb '#cccccc' notitle, " .. p
  end
  s[#s + 1] = "unset multiplot"
  return table.concat(s, "\n")
end

-- qd.plot.bloch(x [, {qubit = 0, labels = {...}, trajectories = false, panels = false}])
function M.bloch(x, opts)
  local o, q = check_bloch_opts(opts)
  local objs, kind, single = objects(x)
  local labels = o.labels or {}
  local blocks, plots
  if o.trajectories then
    if single or kind == "sets" then C.argerror("bloch", 1, "trajectories: a list of Ensembles or of states expected") end
    blocks, plots = trajectory_sets(objs, q, labels)
  else
    blocks, plots = point_sets(objs, kind, q, labels)
  end
  if o.panels then
    return C.render("bloch", o, panel_script(blocks, plots, labels, o), nil, { 330 * #plots + 20, 380 })
  end
  local s = { C.datablock("sph", sphere_rows()), table.concat(blocks), frame, C.header(o),
              "set palette defined (0 '#9ecae1', 1 '#08306b')\nunset colorbox",
              "splot $sph with lines lc rgb '#cccccc' notitle, " .. table.concat(plots, ", ") }
  return C.render("bloch", o, table.concat(s, "\n"), nil, { 700, 700 })
end

return M
