-- qd.plot — pictures: curves, histograms, heatmaps, basis-state probabilities, the Bloch
-- sphere, image grids, circuit diagrams and the standard figures of a run record. Drawn by
-- gnuplot (Debian gnuplot-nox, through a pipe: qd/plot_core.lua); every function takes
-- {out = "x.png" | "x.svg" | "x.pdf", title=, xlabel=, ylabel=, width=, height=} and
-- without out prints a text rendering (gnuplot's dumb terminal; {print = false} returns it).
--   qd.plot.lines{x, y1, y2, labels = {"train", "test"}, logy = true, out = "loss.png"}
--   qd.plot.heatmap(rho, {out = "rho.svg"})      -- |rho_ij| and arg(rho_ij)
--   qd.plot.bloch(E, {qubit = 0})                 -- points on the Bloch sphere
local C = require "qd.plot_core"

local M = {}
local fmt = string.format

-- qd.plot.available() -> true | false, message (why qd.plot would fail here)
function M.available()
  local gp, msg = C.locate()
  if gp then return true end
  return false, msg
end

------------------------------------------------------------------------ lines
local lines_opts = { labels = "table", logy = "boolean", logx = "boolean", style = "string", key = "boolean" }

-- the positional arrays of lines{...}: one -> y against 1..n; more -> x then ys
local function lines_data(t)
  local arrays = {}
  for i = 1, #t do arrays[i] = C.numbers("lines", 1, t[i], i == 1 and #t > 1 and "x" or ("y" .. (#t > 1 and i - 1 or 1))) end
  if #arrays == 0 then C.argerror("lines", 1, "no data: {x, y, ...} or {y} expected") end
  if #arrays == 1 then
    local x = {}
    for i = 1, #arrays[1] do x[i] = i end
    table.insert(arrays, 1, x)
  end
  local n = #arrays[1]
  if n == 0 then C.argerror("lines", 1, "x has no values") end
  for k = 2, #arrays do
    if #arrays[k] ~= n then
      C.argerror("lines", 1, fmt("y%d has %d values, x has %d", k - 1, #arrays[k], n))
    end
  end
  return arrays, n
end

-- The curves go to gnuplot as a temporary .npy in binary: qd.matrix{x, y1, ...} is column-
-- major, so point i's values (x_i, y1_i, ...) are one record (10^5 points: 10 ms here,
-- against 0.13 s of string.format and 0.1 s more of gnuplot parsing text).
local function lines_file(arrays, n)
  local qd = require "qd"
  local path = C.tmpname()
  qd.matrix(arrays):save_npy(path)
  local f = assert(io.open(path, "rb"))
  local head = f:read(12)
  f:close()
  local skip = head:byte(7) == 1 and 10 + string.unpack("<I2", head, 9) or 12 + string.unpack("<I4", head, 9)
  return path, fmt("%s binary skip=%d record=%d format='%s'", C.q(path), skip, n, string.rep("%float64", #arrays))
end

local function check_log(arrays, k0, what)
  for k = k0, #arrays do
    for _, v in ipairs(arrays[k]) do if v > 0 then return end end
  end
  C.argerror("lines", 1, what .. ": a log scale needs some values > 0")
end

-- qd.plot.lines{[x,] y1, y2, ..., labels=, logy=, logx=, key=, style="lines"|"points"|"linespoints"}
function M.lines(t)
  if type(t) ~= "table" then C.argerror("lines", 1, "table {x, y, ...} expected, got " .. type(t)) end
  local o = C.check_opts("lines", 1, t, lines_opts)
  local arrays, n = lines_data(t)
  if o.logy then check_log(arrays, 2, "logy") end
  if o.logx then check_log(arrays, 1, "logx") end
  local style = o.style or "lines"
  if style ~= "lines" and style ~= "points" and style ~= "linespoints" then
    C.argerror("lines", 1, "option 'style': 'lines', 'points' or 'linespoints' expected, got '" .. style .. "'")
  end
  local labels = o.labels or {}
  local path, src = lines_file(arrays, n)
  local s = { C.header(o) }
  if o.logy then s[#s + 1] = "set logscale y" end
  if o.logx then s[#s + 1] = "set logscale x" end
  if (#arrays == 2 and not labels[1]) or o.key == false then s[#s + 1] = "unset key" end
  local plots = {}
  for k = 2, #arrays do
    local lab = labels[k - 1]
    plots[#plots + 1] = fmt("%s using 1:%d with %s %s", src, k, style,
                            lab and ("title " .. C.q(lab)) or ("title " .. C.q("y" .. (k - 1))))
  end
  s[#s + 1] = "plot " .. table.concat(plots, ", ")
  return C.render("lines", o, table.concat(s, "\n"), { path })
end

------------------------------------------------------------------------ hist
-- qd.plot.hist(values [, {bins = 20, range = {lo, hi}}])
function M.hist(values, opts)
  local o = C.check_opts("hist", 2, opts, { bins = "number", range = "table" })
  local v = C.numbers("hist", 1, values, "values")
  local bins = o.bins or 20
  if math.type(bins) ~= "integer" or bins < 1 or bins > 100000 then
    C.argerror("hist", 2, "option 'bins': an integer 1..100000 expected, got " .. tostring(bins))
  end
  local lo, hi = math.huge, -math.huge
  for _, x in ipairs(v) do
    if x == x then lo, hi = math.min(lo, x), math.max(hi, x) end
  end
  if o.range then lo, hi = o.range[1], o.range[2] end
  if type(lo) ~= "number" or type(hi) ~= "number" or not (lo <= hi) or hi - lo == math.huge then
    C.argerror("hist", o.range and 2 or 1, o.range and "option 'range': {lo, hi} with lo <= hi expected"
                                           or "values: no finite values to count")
  end
  if hi == lo then lo, hi = lo - 0.5, hi + 0.5 end
  local w, counts = (hi - lo) / bins, {}
  for b = 1, bins do counts[b] = 0 end
  for _, x in ipairs(v) do
    if x >= lo and x <= hi then
      local b = math.min(bins, math.floor((x - lo) / w) + 1)
      counts[b] = counts[b] + 1
    end
  end
  local rows = {}
  for b = 1, bins do rows[b] = fmt("%s %d", C.num(lo + (b - 0.5) * w), counts[b]) end
  local s = { C.datablock("h", rows), C.header(o), "unset key", "set style fill solid 0.6 border -1",
              "set yrange [0:*]", fmt("set boxwidth %s", C.num(w)), "plot $h using 1:2 with boxes" }
  return C.render("hist", o, table.concat(s, "\n"))
end

------------------------------------------------------------------------ heatmap
-- The matrix goes to gnuplot as a temporary .npy (written by the C code: a 1024 x 1024
-- matrix in milliseconds), read as binary past its header. .npy matrices here are
-- column-major (fortran_order): the row index runs fastest, hence scan=yx.
local function npy_skip(path)
  local f = assert(io.open(path, "rb"))
  local head = f:read(12)
  f:close()
  if head:byte(7) == 1 then return 10 + string.unpack("<I2", head, 9) end
  return 12 + string.unpack("<I4", head, 9)
end

local function heat_matrix(A)
  local qd = require "qd"
  local t = qd.type(A)
  if t == "qd.Matrix" or t == "qd.DensityMatrix" then
    if t == "qd.Matrix" then
      local r, c = A:shape()
      return A, r, c, A:is_complex()
    end
    local d = 1 << A.n
    return A, d, d, true
  end
  if t ~= "table" then
    C.argerror("heatmap", 1, "a qd.Matrix, qd.DensityMatrix or table of rows expected, got " .. t)
  end
  local ok, M_ = pcall(qd.matrix, A)
  if not ok then
    local why = tostring(M_):gsub("^.-%((.*)%)$", "%1")
    C.argerror("heatmap", 1, "a table of rows of numbers expected (" .. why .. ")")
  end
  local r, c = M_:shape()
  return M_, r, c, M_:is_complex()
end

local function heat_panel(src, r, c, using, title, palette, range)
  return table.concat({
    "set title " .. C.q(title), palette, range or "set autoscale cb",
    fmt("plot %s binary skip=%d array=(%d,%d) scan=yx origin=(1,1) format='%s' using %s with image notitle",
        C.q(src.path), src.skip, c, r, src.complex and "%float64%float64" or "%float64", using),
  }, "\n")
end

-- qd.plot.heatmap(M [, {phase = true}]): a real matrix as colours; a complex matrix or a
-- density matrix as |M_ij| beside arg(M_ij) (phase = false: |M_ij| only)
function M.heatmap(A, opts)
  local o = C.check_opts("heatmap", 2, opts, { phase = "boolean" })
  local Mx, r, c, complex = heat_matrix(A)
  if require("qd").type(Mx) == "qd.DensityMatrix" then Mx = Mx:matrix() end
  -- a complex matrix goes to gnuplot as |M| and arg M, computed in C (gnuplot's own
  -- per-pixel expressions cost seconds on 10^6 pixels)
  local function source(X)
    local p = C.tmpname()
    X:save_npy(p)
    return { path = p, complex = false, skip = npy_skip(p) }
  end
  local src = source(complex and Mx:abs() or Mx)
  local phase = complex and o.phase ~= false and source(Mx:angle()) or nil
  local files = { src.path, phase and phase.path or nil }
  local common = table.concat({
    C.header(o), "set size ratio -1", fmt("set xrange [0.5:%d.5]", c), fmt("set yrange [%d.5:0.5]", r),
    "set tics out", r > 32 and "" or "set xtics 1\nset ytics 1",
  }, "\n")
  local function plotline(using, title, palette, range, from)
    return heat_panel(from or src, r, c, using, title, palette, range)
  end
  local viridis = "set palette defined (0 '#440154', 1 '#3b528b', 2 '#21918c', 3 '#5ec962', 4 '#fde725')"
  local s, size
  if not complex then
    s = { common, plotline("1", o.title or "", viridis) }
  elseif o.phase == false then
    s = { common, plotline("1", o.title or "|M_ij|", viridis) }
  else
    size = { 1100, 500 }
    s = { common, "set multiplot layout 1,2" .. (o.title and (" title " .. C.q(o.title)) or ""),
          plotline("1", "|M_ij|", viridis),
          plotline("1", "arg M_ij", "set palette model HSV defined (0 0 1 1, 1 1 1 1)",
                   "set cbrange [-pi:pi]", phase),
          "unset multiplot" }
  end
  return C.render("heatmap", o, table.concat(s, "\n"), files, size)
end

------------------------------------------------------------------------ probs
local function ket(i, k)
  local b = {}
  for j = k - 1, 0, -1 do b[#b + 1] = ((i >> j) & 1) == 1 and "1" or "0" end
  return "|" .. table.concat(b) .. ">"
end

-- qd.plot.probs(x [, {qubits = {...}}]): the basis-state probabilities of a State or
-- DensityMatrix (of the listed qubits), or of a vector of 2^k probabilities, with ket labels
function M.probs(x, opts)
  local qd = require "qd"
  local o = C.check_opts("probs", 2, opts, { qubits = "table" })
  local t = qd.type(x)
  local p
  if t == "qd.State" or t == "qd.DensityMatrix" then
    local ok, v = pcall(x.probs, x, o.qubits)
    if not ok then C.argerror("probs", 2, "option 'qubits': " .. tostring(v):gsub("^.-%((.*)%)$", "%1")) end
    p = v:totable()
  else
    p = C.numbers("probs", 1, x, "probabilities")
  end
  local n = #p
  local k = 0
  while (1 << k) < n do k = k + 1 end
  if n == 0 or (1 << k) ~= n then
    C.argerror("probs", 1, fmt("2^k probabilities expected, got %d", n))
  end
  local rows, tics = {}, {}
  for i = 1, n do
    rows[i] = fmt("%d %s", i - 1, C.num(p[i]))
    if n <= 64 then tics[#tics + 1] = fmt("%s %d", C.q(ket(i - 1, k)), i - 1) end
  end
  local s = { C.datablock("p", rows), C.header(o), "unset key", "set style fill solid 0.6 border -1",
              "set boxwidth 0.8", "set yrange [0:*]", fmt("set xrange [-0.6:%s]", C.num(n - 0.4)),
              #tics > 0 and ("set xtics (" .. table.concat(tics, ", ") .. ")" .. (n > 8 and " rotate by 90 right" or ""))
              or "", "plot $p using 1:2 with boxes" }
  return C.render("probs", o, table.concat(s, "\n"))
end

------------------------------------------------------------------------ images
local function image_rows(img, i)
  local qd = require "qd"
  local rows = qd.type(img) == "qd.Matrix" and img:totable() or img
  if type(rows) ~= "table" or #rows == 0 then
    C.argerror("images", 1, fmt("image %d: a real qd.Matrix or a table of rows expected", i))
  end
  local out, w = {}, nil
  for r, row in ipairs(rows) do
    if type(row) ~= "table" then C.argerror("images", 1, fmt("image %d: row %d is not a table", i, r)) end
    w = w or #row
    if #row ~= w or w == 0 then C.argerror("images", 1, fmt("image %d: row %d has %d values, row 1 has %d", i, r, #row, w)) end
    local cells = {}
    for j, v in ipairs(row) do
      if type(v) ~= "number" then C.argerror("images", 1, fmt("image %d: entry (%d,%d) is not a number", i, r, j)) end
      cells[j] = C.num(v)
    end
    out[r] = table.concat(cells, " ")
  end
  return out
end

-- qd.plot.images(grid [, {cols = , titles = {...}}]): greyscale images (real qd.Matrix or
-- tables of rows, row 1 at the top) in a grid
function M.images(grid, opts)
  local o = C.check_opts("images", 2, opts, { cols = "number", titles = "table" })
  if type(grid) ~= "table" or #grid == 0 then
    C.argerror("images", 1, "a non-empty list of images expected, got " ..
                            (type(grid) == "table" and "an empty table" or type(grid)))
  end
  local n = #grid
  local cols = o.cols or math.ceil(math.sqrt(n))
  if math.type(cols) ~= "integer" or cols < 1 then C.argerror("images", 2, "option 'cols': a positive integer expected") end
  local nrows = math.ceil(n / cols)
  local s = { C.header(o), "unset key", "unset colorbox", "unset tics", "unset border",
              "set palette gray", "set size ratio -1" }
  local blocks = {}
  for i = 1, n do blocks[i] = C.datablock("i" .. i, image_rows(grid[i], i)) end
  table.insert(s, 1, table.concat(blocks))
  s[#s + 1] = fmt("set multiplot layout %d,%d%s", nrows, cols, o.title and (" title " .. C.q(o.title)) or "")
  s[#s + 1] = "unset title"
  for i = 1, n do
    local title = o.titles and o.titles[i]
    s[#s + 1] = title and ("set title " .. C.q(title)) or "unset title"
    s[#s + 1] = fmt("set yrange [*:*] reverse\nplot $i%d matrix with image", i)
  end
  s[#s + 1] = "unset multiplot"
  return C.render("images", o, table.concat(s, "\n"), nil, { 160 * cols + 40, 160 * nrows + 40 })
end

M.bloch = require("qd.plot_bloch").bloch
M.circuit = require("qd.plot_circuit").circuit
M.run = function(...) return require("qd.plot_run").figures(...) end

return M
