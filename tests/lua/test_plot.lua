-- test_plot.lua — qd.plot: every plot kind rendered to PNG and SVG (PNG signature and IHDR
-- size, SVG well-formed with the expected number of gnuplot plot groups), PDF, the text
-- rendering, atomic output (no temporary left behind), qd.plot.run on a small run record,
-- and every error message: bad arguments, unknown options, no gnuplot (QD_GNUPLOT pointing
-- nowhere is acted out by a fresh qd process), --sandbox. Without gnuplot the rendering
-- tests print SKIP; the error tests still run.
local T = require "testlib"
local P = qd.plot

local QD = (arg and arg[-1]) or "qd"
local tmp = T.tmpdir()

local slurp = T.slurp

-- png_size(bytes) -> width, height (nil if not a PNG)
local function png_size(s)
  if not s or s:sub(1, 8) ~= "\137PNG\r\n\26\n" or s:sub(13, 16) ~= "IHDR" then return nil end
  return string.unpack(">I4", s, 17), string.unpack(">I4", s, 21)
end

-- well-formed XML (enough for gnuplot's SVG): every tag closed in order
local function xml_ok(s)
  s = s:gsub("<!%-%-.-%-%->", ""):gsub("<!%[CDATA%[.-%]%]>", ""):gsub("<%?.-%?>", ""):gsub("<!DOCTYPE.->", "")
  local stack = {}
  for close, name, selfclose in s:gmatch("<(/?)([%w:_%-]+)[^>]-(/?)>") do
    if close == "/" then
      if stack[#stack] ~= name then return false, "</" .. name .. "> closes <" .. tostring(stack[#stack]) .. ">" end
      stack[#stack] = nil
    elseif selfclose ~= "/" then
      stack[#stack + 1] = name
    end
  end
  if #stack > 0 then return false, "<" .. stack[#stack] .. "> not closed" end
  return s:find("<svg", 1, true) ~= nil, "no <svg> element"
end

local function series(s)
  local n = 0
  for _ in s:gmatch('<g id="gnuplot_plot_%d+%a*"') do n = n + 1 end
  return n
end

local function leftovers(dir)
  local p = io.popen("ls -a " .. dir)
  local extra = {}
  for f in p:lines() do if f:find("%.tmp$") then extra[#extra + 1] = f end end
  p:close()
  return extra
end

local E = qd.data.circle(30, qd.rng(1))
local H = qd.ensemble.haar(1, 20, qd.rng(2))
local bell = qd.state(2):h(0):cx(0, 1):s(1)
local circ = qd.circuit(3):h(0):cx(0, 1):rx(2, "a"):crz(1, 2, "b"):swap(0, 2):ccx(0, 1, 2):measure({ 1 })
local traj = {}
for t = 1, 6 do traj[t] = qd.data.circle(8, qd.rng(5)):ry(0, 0.2 * t) end

-- name, function(out) drawing to out, series expected in the SVG
local kinds = {
  { "lines", function(o)
      return P.lines { { 1, 2, 3, 4 }, { 1, 4, 9, 16 }, qd.vector { 2, 3, 4, 5 }, labels = { "sq", "lin" }, out = o }
    end, 2 },
  { "lines_logy", function(o) return P.lines { { 1, 10, 100 }, logy = true, out = o } end, 1 },
  { "hist", function(o) return P.hist({ 1, 2, 2, 3, 3, 3, 4 }, { bins = 4, out = o }) end, 1 },
  { "heatmap_real", function(o) return P.heatmap(qd.matrix { { 1, 2, 3 }, { 4, 5, 6 } }, { out = o }) end, 1 },
  { "heatmap_dm", function(o) return P.heatmap(qd.dm(bell), { out = o }) end, 2 },
  { "heatmap_abs", function(o) return P.heatmap(qd.dm(bell), { phase = false, out = o }) end, 1 },
  { "probs", function(o) return P.probs(bell, { out = o }) end, 1 },
  { "bloch", function(o) return P.bloch({ E, H }, { labels = { "circle", "haar" }, out = o }) end, 3 },
  { "bloch_state", function(o) return P.bloch(bell, { qubit = 1, out = o }) end, 2 },
  { "bloch_traj", function(o) return P.bloch(traj, { trajectories = true, out = o }) end, 3 },
  { "bloch_panels", function(o) return P.bloch({ E, H }, { panels = true, labels = { "a", "b" }, out = o }) end, 4 },
  { "bloch_dm_sets", function(o)
      return P.bloch({ { qd.dm(E[1]), qd.maximally_mixed(1) }, { qd.random.dm(1, qd.rng(3)), E[2] } }, { out = o })
    end, 3 },
  { "images", function(o)
      return P.images({ { { 0, 1 }, { 1, 0 } }, qd.matrix { { 0, 0.5, 1 } }, { { 1 } } }, { out = o })
    end, 3 },
  { "circuit", function(o) return circ:plot { out = o, width = 640, height = 300 } end, 1 },
}

if not P.available() then
  print("SKIP test_plot rendering: " .. select(2, P.available()))
else
  T.test("every kind to PNG and SVG", function()
    for _, k in ipairs(kinds) do
      local png, svg = tmp .. "/" .. k[1] .. ".png", tmp .. "/" .. k[1] .. ".svg"
      T.eq(k[2](png), png, k[1] .. " returns the png path")
      local w, h = png_size(slurp(png))
      T.ok(w and w >= 200 and h >= 100, k[1] .. ": a PNG with a plausible size, got " .. tostring(w) .. "x" .. tostring(h))
      T.eq(k[2](svg), svg, k[1] .. " returns the svg path")
      local s = slurp(svg) or ""
      local ok, why = xml_ok(s)
      T.ok(ok, k[1] .. ": SVG well-formed (" .. tostring(why) .. ")")
      T.eq(series(s), k[3], k[1] .. ": plot groups in the SVG")
    end
    T.eq(#leftovers(tmp), 0, "no temporary files left next to the outputs")
  end)

  T.test("sizes, PDF, text", function()
    P.lines { { 1, 2 }, out = tmp .. "/s.png", width = 320, height = 200 }
    local w, h = png_size(slurp(tmp .. "/s.png"))
    T.eq(w, 320, "png width")
    T.eq(h, 200, "png height")
    P.lines { { 1, 2 }, out = tmp .. "/s.pdf" }
    T.eq((slurp(tmp .. "/s.pdf") or ""):sub(1, 5), "%PDF-", "pdf header")
    local text = P.lines { { 1, 4, 9, 16 }, width = 60, height = 15, print = false }
    T.ok(text:find("%*%*") ~= nil, "text rendering draws the curve")
    local nl = select(2, text:gsub("\n", ""))
    T.ok(nl >= 14 and nl <= 16, "text rendering has the height asked, got " .. nl .. " lines")
    T.ok(circ:plot { print = false }:find("q2", 1, true) ~= nil, "circuit as text names the wires")
    P.lines { { 1, 2 }, title = "a\nb 'q'", out = tmp .. "/q.svg" }
    T.ok((slurp(tmp .. "/q.svg") or ""):find("a b 'q'", 1, true) ~= nil, "a title with a newline and quotes")
    T.ok(P.probs(bell, { print = false }):find("|11>", 1, true) ~= nil, "probs as text has ket labels")
  end)

  T.test("qd.plot.run on a run record", function()
    local run = tmp .. "/run"
    local rec = require("qd.record").open(run, { name = "plot_test", seed = 1 })
    rec.data.per_t = { mmd_train = { 0.3, 0.2, 0.1 }, step_loss = { 0.5, 0.4 } }
    rec:save()
    qd.matrix { { 1, 0.5, 0.25 }, { 2, 1, 0.5 } }:save_npy(rec:path("loss.npy"))
    qd.save_ensembles(rec:path("generated_train.npy"), { E, E, E })
    qd.save_ensembles(rec:path("forward.npy"), { H, H, H })
    local written, skipped = P.run(run)
    T.eq(#written, 5, "five figures")
    T.eq(#skipped, 0, "nothing skipped")
    rec:path("extra.npy")
    rec:save()
    local _, sk0 = P.run(run)
    T.eq(sk0[1], "extra.npy: no standard figure for this file", "a file no figure reads is named")
    for _, f in ipairs(written) do T.ok(png_size(slurp(f)) ~= nil, f .. " is a PNG") end
    local w2 = P.run(run, { out = tmp .. "/figs", format = "svg" })
    T.ok(w2[1]:find("/figs/loss.svg", 1, true) ~= nil, "out and format")
    qd.save_ensembles(rec:path("generated_train.npy"), { qd.ensemble.haar(2, 4, qd.rng(1)) })
    qd.save_ensembles(rec:path("forward.npy"), { qd.ensemble.haar(2, 4, qd.rng(2)) })
    local _, sk = P.run(run)
    T.ok(sk[1] and sk[1]:find("2-qubit", 1, true) ~= nil, "multi-qubit Bloch figures skipped, said why")
    T.raises(function() P.run(tmp .. "/none") end, "no run record in")
    -- ensembles of density matrices (MSQuDDPM's d^2 x N stacks): 1 qubit on the Bloch ball
    local msq = require "qd.protocols.msquddpm"
    local run2 = tmp .. "/run_dms"
    local rec2 = require("qd.record").open(run2, { name = "plot_dms", seed = 1 })
    rec2:save()
    local dms = {}
    for k = 1, 6 do dms[k] = qd.random.dm(1, qd.rng(k)) end
    msq.stack(dms):save_npy(rec2:path("generated_train.npy"))
    msq.stack(dms):save_npy(rec2:path("target.npy"))
    local w3, sk3 = P.run(run2)
    T.ok(#w3 == 1 and w3[1]:find("/bloch.png", 1, true) ~= nil, "a density-matrix ensemble record: bloch.png")
    T.ok(#sk3 == 1 and sk3[1]:find("^metrics:") ~= nil,
      "only the metrics figure skipped (no per-step lists); the stacks are not read as ensembles or single matrices")
    local dms2 = {}
    for k = 1, 3 do dms2[k] = qd.random.dm(2, qd.rng(k)) end
    msq.stack(dms2):save_npy(rec2:path("generated_train.npy"))
    local _, sk4 = P.run(run2)
    T.ok(table.concat(sk4, "\n"):find("bloch: 2-qubit density matrices", 1, true) ~= nil, "multi-qubit stacks skipped, said why")
    T.raises(function() P.run(run, { format = "gif" }) end, "bad argument #2 to 'run' (option 'format'")
  end)

  T.test("gnuplot failure is reported", function()
    T.raises(function() P.lines { { 1, 2 }, { -1, -2 }, logy = true } end, "a log scale needs some values > 0")
    T.raises(function() P.lines { { 1, 2 }, out = "/nonexistent-dir/x.png" } end, "no directory /nonexistent-dir")
  end)
end

T.test("argument errors name the argument", function()
  T.raises(function() P.lines(3) end, "bad argument #1 to 'lines' (table {x, y, ...} expected, got number)")
  T.raises(function() P.lines {} end, "bad argument #1 to 'lines' (no data")
  T.raises(function() P.lines { { 1, 2 }, { 1 } } end, "(y1 has 1 values, x has 2)")
  T.raises(function() P.lines { { 1, "a" } } end, "(y1: entry 2 is string, a number expected)")
  T.raises(function() P.lines { { 1, 2 }, colour = 1 } end, "(unknown option 'colour')")
  T.raises(function() P.lines { { 1, 2 }, out = "x.gif" } end, "(option 'out': a file name ending in .png, .svg or .pdf")
  T.raises(function() P.lines { { 1, 2 }, width = 2.5 } end, "(option 'width': an integer 8..20000 expected")
  T.raises(function() P.lines { { 1, 2 }, style = "bars" } end, "(option 'style'")
  T.raises(function() P.hist({ 1 }, { bins = 0 }) end, "bad argument #2 to 'hist' (option 'bins'")
  T.raises(function() P.hist({}) end, "bad argument #1 to 'hist' (values: no finite values")
  T.raises(function() P.heatmap("x") end,
           "bad argument #1 to 'heatmap' (a qd.Matrix, qd.DensityMatrix or table of rows expected, got string")
  T.raises(function() P.heatmap({ { 1, 2 }, { 1 } }) end, "bad argument #1 to 'heatmap' (a table of rows of numbers expected")
  T.raises(function() P.probs({ 0.5, 0.3, 0.2 }) end, "bad argument #1 to 'probs' (2^k probabilities expected, got 3)")
  T.raises(function() P.probs(bell, { qubits = { 5 } }) end, "bad argument #2 to 'probs' (option 'qubits'")
  T.raises(function() P.bloch(42) end, "bad argument #1 to 'bloch' (an Ensemble, State, DensityMatrix or a non-empty list")
  T.raises(function() P.bloch({ E, bell }) end, "(entry 2: a list mixes Ensembles and single states)")
  T.raises(function() P.bloch({ { bell }, {} }) end, "(entry 2 is an empty list)")
  T.raises(function() P.bloch({ { bell, 3 } }) end, "(entry 1, member 2 is a number, not a State or DensityMatrix)")
  T.raises(function() P.bloch({ { bell }, E }) end, "(entry 2: a list mixes Ensembles and single states)")
  T.raises(function() P.bloch({ { bell } }, { trajectories = true }) end, "(trajectories: a list of Ensembles or of states expected)")
  T.raises(function() P.bloch(E, { qubit = 3 }) end,
           "bad argument #2 to 'bloch' (option 'qubit': 3 is not a qubit of a 1-qubit qd.Ensemble)")
  T.raises(function() P.bloch(E, { trajectories = true }) end, "(trajectories: a list of Ensembles or of states expected)")
  T.raises(function() P.bloch({ E }, { panels = true, trajectories = true }) end,
           "(options 'panels' and 'trajectories' exclude each other)")
  T.raises(function() P.images({}) end, "bad argument #1 to 'images' (a non-empty list of images expected, got an empty table)")
  T.raises(function() P.images({ { { 1, 2 }, { 3 } } }) end, "(image 1: row 2 has 1 values, row 1 has 2)")
  T.raises(function() P.circuit(E) end, "bad argument #1 to 'circuit' (qd.Circuit expected, got qd.Ensemble)")
  T.raises(function() P.run(1) end, "bad argument #1 to 'run' (a run directory (string) expected")
end)

-- a qd process with the given environment prefix and chunk: its stderr
local function child(env, chunk)
  local p = io.popen(string.format("%s %q -e %q 2>&1", env, QD, chunk))
  local out = p:read("a")
  p:close()
  return out
end

T.test("no gnuplot, sandbox", function()
  local out = child("QD_GNUPLOT=/nonexistent/gnuplot", "print(qd.plot.available()) qd.plot.lines{{1, 2}}")
  T.ok(out:find("false\tqd.plot needs gnuplot", 1, true) ~= nil, "available() says why: " .. out)
  T.ok(out:find("install the Debian package gnuplot-nox", 1, true) ~= nil, "the error names the package")
  T.ok(out:find("(command line):1:", 1, true) ~= nil, "the error points at the user's line")
  out = child("QD_GNUPLOT=/nonexistent/gnuplot", "print(qd.state(1):h(0):probs()[1])")
  T.ok(out:find("0.5", 1, true) ~= nil, "everything else works without gnuplot")
  local p = io.popen(string.format("%q --sandbox -e %q 2>&1", QD, "qd.plot.lines{{1, 2}}"))
  out = p:read("a")
  p:close()
  T.ok(out:find("which --sandbox does not allow", 1, true) ~= nil, "--sandbox: a clear error, got " .. out)
end)

T.rmdir(tmp)
