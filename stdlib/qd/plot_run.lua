-- qd.plot_run — the standard figures of a run record: qd.plot.run(dir [, opts]) and the
-- command `qd plot RUNDIR [--out DIR] [--format png|svg|pdf]` (interp/main.c calls
-- command()). From what the record holds, whatever protocol wrote it:
--   loss.png        loss per epoch of every diffusion step (loss.npy: steps x epochs)
--   metrics.png     the per-step lists of run.json (per_t: e.g. MMD to the target vs t) and
--                   any other numeric lists among its results
--   bloch.png       generated (t = 0) vs target ensembles on the Bloch sphere (1-qubit runs:
--                   generated_train.npy, forward.npy)
--   trajectory.png  the generation trajectory: the generated ensemble at five times T..0
--   forward.png     the forward (noising) process: the training sets at five times 0..T
--   history.png     loss and 1 - fidelity per training iteration (history.npy: QGDM)
--   density_target.png, density_generated.png   |rho_ij| and phase (target.npy, generated.npy)
--   bloch.png       for ensembles of density matrices (MSQuDDPM: target.npy and
--                   generated_train.npy as d^2 x N stacks) of one qubit: generated vs target
--                   inside the Bloch ball
-- Anything else is named as skipped, with the reason.
local json = require "qd.json"
local C = require "qd.plot_core"

local M = {}
local fmt = string.format

local function read_record(dir)
  local f = io.open(dir .. "/run.json", "rb")
  if not f then return nil, "no run record in " .. dir .. " (no run.json)" end
  local text = f:read("a")
  f:close()
  local ok, doc = pcall(json.decode, text)
  if not ok or type(doc) ~= "table" then return nil, dir .. "/run.json is not a run record" end
  return doc
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function numeric_list(v)
  if type(v) ~= "table" or #v < 2 then return false end
  for i = 1, #v do if type(v[i]) ~= "number" then return false end end
  return true
end

-- loss.npy (row t + 1: the losses of step t's epochs) as one curve per step
local function loss_figure(ctx)
  local qd = require "qd"
  local L = ctx.load("loss.npy")
  if not L then return end
  local T, E = L:shape()
  local rows = L:totable()
  local t = { {} }
  local positive = false
  for e = 1, E do t[1][e] = e end
  local labels = {}
  for s = T, 1, -1 do
    t[#t + 1] = rows[s]
    labels[#labels + 1] = "t=" .. (s - 1)
    for _, v in ipairs(rows[s]) do positive = positive or v > 0 end
  end
  if E < 2 then return ctx.skip("loss.npy", "one epoch per step: no curve to draw") end
  t.labels, t.key, t.logy = labels, T <= 12, positive or nil
  t.title = fmt("%s: loss per epoch, %d diffusion steps", ctx.name, T)
  t.xlabel, t.ylabel, t.out = "epoch", "loss", ctx.path("loss")
  ctx.done(qd.plot.lines(t))
end

-- the numeric lists of run.json: per_t's, then any list among the results
local function metric_lists(doc)
  local found, names = {}, {}
  local function scan(tbl, prefix)
    if type(tbl) ~= "table" then return end
    local keys = {}
    for k in pairs(tbl) do if type(k) == "string" then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do
      -- metrics.X_per_t repeats per_t.X (in another order, t = T..0): drawn once
      local dup = tbl ~= doc.per_t and type(doc.per_t) == "table" and k:match("^(.*)_per_t$")
      if numeric_list(tbl[k]) and not found[prefix .. k] and not (dup and doc.per_t[dup]) then
        found[prefix .. k] = tbl[k]
        names[#names + 1] = prefix .. k
      end
    end
  end
  scan(doc.per_t, "")
  scan(doc.metrics, "")
  scan(doc.results, "")
  scan(doc.history, "")
  return found, names
end

local function metrics_figure(ctx)
  local qd = require "qd"
  local found, names = metric_lists(ctx.doc)
  if #names == 0 then return ctx.skip("metrics", "run.json holds no per-step lists") end
  local n = 0
  for _, k in ipairs(names) do n = math.max(n, #found[k]) end
  local t, positive = { {} }, true
  for i = 1, n do t[1][i] = i - 1 end
  for _, k in ipairs(names) do
    local v = {}
    for i = 1, n do
      v[i] = found[k][i] or (0 / 0)
      if v[i] == v[i] and v[i] <= 0 then positive = false end
    end
    t[#t + 1] = v
  end
  t.labels, t.logy, t.style = names, positive or nil, "linespoints"
  t.title = ctx.name .. ": per diffusion step"
  t.xlabel, t.out = ctx.doc.per_t and "t" or "index", ctx.path("metrics")
  ctx.done(qd.plot.lines(t))
end

-- up to five times from t = T down to 0, evenly spaced
local function snapshot_times(T)
  local ts, seen = {}, {}
  for k = 0, 4 do
    local t = math.floor(T * (4 - k) / 4 + 0.5)
    if not seen[t] then ts[#ts + 1], seen[t] = t, true end
  end
  return ts
end

-- the sets at snapshot_times as Bloch panels; times run from `first` to the other end
local function panels(ctx, sets_by_t, stem, title, reverse)
  local qd = require "qd"
  local T = #sets_by_t - 1
  local sets, labels = {}, {}
  for _, t in ipairs(snapshot_times(T)) do
    if reverse then t = T - t end
    sets[#sets + 1], labels[#labels + 1] = sets_by_t[t + 1], "t=" .. t
  end
  ctx.done(qd.plot.bloch(sets, { labels = labels, panels = true, out = ctx.path(stem), title = title }))
end

local function bloch_figures(ctx)
  local qd = require "qd"
  if ctx.stacks then return end
  -- a density-matrix record's forward.npy is a stack of matrices, not ensembles (its
  -- figures: history and density_*)
  for _, f in ipairs(type(ctx.doc.files) == "table" and ctx.doc.files or {}) do
    if f == "generated_chain.npy" then return end
  end
  local fwd = ctx.load("forward.npy", "ensembles")
  local gen = ctx.load("generated_train.npy", "ensembles")
  local n = (fwd and fwd[1].n) or (gen and gen[1].n)
  if not n then return end
  if n ~= 1 then
    return ctx.skip("bloch", fmt("%d-qubit states: the Bloch figures are drawn for 1-qubit runs", n))
  end
  if fwd then
    panels(ctx, fwd, "forward", ctx.name .. ": forward (noising) process, data (t=0) to noise", true)
  end
  if not (gen and fwd) then return end
  ctx.done(qd.plot.bloch({ fwd[1], gen[1] }, { labels = { "target", "generated (t=0)" },
                         title = ctx.name .. ": generated vs target", out = ctx.path("bloch") }))
  panels(ctx, gen, "trajectory", ctx.name .. ": generation, noise (t=" .. (#gen - 1) .. ") to data (t=0)")
end

-- history.npy (iterations x 2: loss, fidelity of the generated state; the density-matrix
-- protocols): the loss and the infidelity 1 - F per iteration, log scale
local function history_figure(ctx)
  local qd = require "qd"
  local H = ctx.load("history.npy")
  if not H then return end
  local n, cols = H:shape()
  if cols ~= 2 or n < 2 then return ctx.skip("history.npy", "not an (iterations x 2) history") end
  local it, loss, inf = {}, {}, {}
  local positive = true
  for i = 1, n do
    it[i], loss[i], inf[i] = i, H:get(i, 1), 1 - H:get(i, 2)
    positive = positive and loss[i] > 0 and inf[i] > 0
  end
  ctx.done(qd.plot.lines { it, loss, inf, labels = { "loss", "1 - F(generated, target)" }, logy = positive or nil,
                           title = ctx.name .. ": training", xlabel = "iteration", out = ctx.path("history") })
end

-- target.npy and generated.npy (density matrices): |rho_ij| and phase of each
local function density_figures(ctx)
  local qd = require "qd"
  if ctx.stacks then return end
  for _, f in ipairs { "target", "generated" } do
    local rho = ctx.load(f .. ".npy", "dm")
    if rho then
      ctx.done(qd.plot.heatmap(rho, { title = ctx.name .. ": " .. f .. " density matrix", out = ctx.path("density_" .. f) }))
    end
  end
end

-- generated_train.npy as a 2-D (d^2 x N) complex matrix: the record holds ensembles of density
-- matrices, column k member k (MSQuDDPM); ctx.stacks = that matrix
local function find_stacks(ctx)
  local qd = require "qd"
  local p = ctx.dir .. "/generated_train.npy"
  if not exists(p) then return end
  local v = qd.load_npy(p)
  if qd.type(v) == "qd.Matrix" and v:is_complex() then ctx.stacks = v end
end

-- the members of a d^2 x N stack as DensityMatrices (nil, reason if it is not one)
local function stack_members(S)
  local core = require "qd.core"
  local members = {}
  local _, N = S:shape()
  for k = 1, N do
    local ok, rho = pcall(core.dms_get, S, k)
    if not ok then return nil, tostring(rho) end
    members[k] = rho
  end
  return members
end

-- ensembles of density matrices (MSQuDDPM) of one qubit: generated (t = 0) vs target
local function stack_figures(ctx)
  local qd = require "qd"
  if not ctx.stacks then return end
  local d2 = ctx.stacks:shape()
  if d2 ~= 4 then
    return ctx.skip("bloch", fmt("%d-qubit density matrices: the Bloch figures are drawn for 1-qubit runs",
                                 math.floor(math.log(d2, 4) + 0.5)))
  end
  local gen, err = stack_members(ctx.stacks)
  if not gen then return ctx.skip("generated_train.npy", err) end
  local T = exists(ctx.dir .. "/target.npy") and qd.load_npy(ctx.dir .. "/target.npy")
  local tgt = qd.type(T) == "qd.Matrix" and stack_members(T)
  if not tgt then return ctx.skip("target.npy", "not a stack of 1-qubit density matrices") end
  ctx.done(qd.plot.bloch({ tgt, gen }, { labels = { "target", "generated (t=0)" },
                         title = ctx.name .. ": generated vs target", out = ctx.path("bloch") }))
end

-- the record's files no figure reads, named as skipped
local used = { ["loss.npy"] = true, ["forward.npy"] = true, ["generated_train.npy"] = true,
               ["history.npy"] = true, ["target.npy"] = true, ["generated.npy"] = true }
local function unused_files(ctx)
  for _, f in ipairs(type(ctx.doc.files) == "table" and ctx.doc.files or {}) do
    if type(f) == "string" and not used[f] then ctx.skip(f, "no standard figure for this file") end
  end
end

-- the context the figure functions share
local function context(dir, doc, outdir, format)
  local qd = require "qd"
  local ctx = { dir = dir, doc = doc, name = tostring(doc.name or "run"), written = {}, skipped = {} }
  function ctx.path(stem) return fmt("%s/%s.%s", outdir, stem, format) end
  function ctx.done(p) ctx.written[#ctx.written + 1] = p end
  function ctx.skip(what, why) ctx.skipped[#ctx.skipped + 1] = what .. ": " .. why end
  function ctx.load(file, kind)
    local p = dir .. "/" .. file
    if not exists(p) then return nil end
    local v, err = qd.load_npy(p, kind)
    if not v then ctx.skip(file, "not the " .. (kind or "matrix") .. " this figure reads (" .. tostring(err) .. ")") end
    return v
  end
  return ctx
end

-- qd.plot.run(dir [, {out = DIR, format = "png"}]) -> written files, skipped notes
function M.figures(dir, opts)
  if type(dir) ~= "string" then C.argerror("run", 1, "a run directory (string) expected, got " .. type(dir)) end
  if opts ~= nil and type(opts) ~= "table" then C.argerror("run", 2, "options table expected, got " .. type(opts)) end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "out" and k ~= "format" then C.argerror("run", 2, "unknown option '" .. tostring(k) .. "'") end
  end
  local format = opts.format or "png"
  if format ~= "png" and format ~= "svg" and format ~= "pdf" then
    C.argerror("run", 2, "option 'format': 'png', 'svg' or 'pdf' expected, got '" .. tostring(format) .. "'")
  end
  local doc, err = read_record(dir)
  if not doc then C.fail(err) end
  local outdir = opts.out or (dir .. "/figures")
  local ok, msg = require("qd.core").sys.mkdir_p(outdir)
  if not ok then C.fail("cannot create " .. outdir .. ": " .. tostring(msg)) end
  local ctx = context(dir, doc, outdir, format)
  find_stacks(ctx)
  loss_figure(ctx)
  metrics_figure(ctx)
  bloch_figures(ctx)
  history_figure(ctx)
  density_figures(ctx)
  stack_figures(ctx)
  unused_files(ctx)
  return ctx.written, ctx.skipped
end

local usage = "usage: qd plot RUNDIR [--out DIR] [--format png|svg|pdf]\n" ..
              "draws the standard figures of a run record into RUNDIR/figures (or DIR)\n"

local function parse(args)
  local o = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, val = a:match("^%-%-(%w+)=(.*)$")
    if not name and (a == "--out" or a == "--format") then name, val, i = a:sub(3), args[i + 1], i + 1 end
    if a == "-h" or a == "--help" then return nil, nil end
    if name == "out" or name == "format" then
      if not val then return nil, "--" .. name .. " needs a value" end
      o[name] = val
    elseif a:sub(1, 1) == "-" or o.dir then
      return nil, "qd plot: unexpected argument '" .. a .. "'"
    else
      o.dir = a
    end
    i = i + 1
  end
  if not o.dir then return nil, "qd plot needs a run directory" end
  return o
end

-- command(args) -> exit status: 0 drawn, 1 failed, 2 bad command line
function M.command(args)
  local o, msg = parse(args)
  if not o then
    if not msg then io.write(usage) return 0 end
    io.stderr:write("qd: ", msg, "\n", usage)
    return 2
  end
  local ok, written, skipped = pcall(M.figures, o.dir, { out = o.out, format = o.format })
  if not ok then
    io.stderr:write("qd plot: ", (tostring(written):gsub("^[^:]*:%d+: ", "")), "\n")
    return 1
  end
  for _, p in ipairs(written) do print("wrote " .. p) end
  for _, s in ipairs(skipped) do print("skipped " .. s) end
  return 0
end

return M
