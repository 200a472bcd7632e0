-- plot_speed.lua — qd.plot's cost, end to end (data out of Lua/C, gnuplot started, the
-- picture rendered and renamed into place): 10^5 points as a curve and a 1024 x 1024
-- heatmap, to PNG (pngcairo) and SVG. Wall seconds, best of 3 (bench/RESULTS.md).
--   qd bench/plot_speed.lua
local P = qd.plot
assert(P.available())
local dir = os.tmpname()
os.remove(dir)
assert(require("qd.core").sys.mkdir_p(dir))

local function best(f)
  local b = math.huge
  for _ = 1, 3 do
    local t0 = qd.clock()
    f()
    b = math.min(b, qd.clock() - t0)
  end
  return b
end

local n = 100000
local x, y = {}, {}
for i = 1, n do x[i] = i; y[i] = math.sin(i * 1e-3) + 1e-4 * (i % 97) end
local yv = qd.vector(y)
local M = qd.matrix(1024, 1024)
for j = 1, 1024 do for i = 1, 1024 do M:set(i, j, math.sin(i * 0.01) * math.cos(j * 0.013)) end end
local U = qd.random.unitary(10, qd.rng(1))   -- 1024 x 1024 complex: |U_ij| and arg U_ij

local rows = {
  { "lines, 1e5 points (Lua table)", "png", function(o) P.lines { x, y, out = o } end },
  { "lines, 1e5 points (qd.Vector)", "png", function(o) P.lines { yv, out = o } end },
  { "lines, 1e5 points", "svg", function(o) P.lines { x, y, out = o } end },
  { "heatmap 1024x1024 real", "png", function(o) P.heatmap(M, { out = o }) end },
  { "heatmap 1024x1024 real", "svg", function(o) P.heatmap(M, { out = o }) end },
  { "heatmap 1024x1024 complex (|U|, arg U)", "png", function(o) P.heatmap(U, { out = o }) end },
}
print(string.format("%-42s %-4s %s", "plot", "out", "wall s (best of 3)"))
for _, r in ipairs(rows) do
  local out = dir .. "/b." .. r[2]
  print(string.format("%-42s %-4s %.3f", r[1], r[2], best(function() r[3](out) end)))
end
os.execute("rm -rf '" .. dir .. "'")
