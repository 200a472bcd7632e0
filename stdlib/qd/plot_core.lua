-- qd.plot_core — the gnuplot driver behind qd.plot (not public: qd.plot is). A plot is a
-- gnuplot script (data inline as datablocks, big matrices as a temporary .npy read in
-- binary) in a temporary file run by one gnuplot process (io.popen), its stderr kept in a
-- temporary file and reported if gnuplot fails. Files: `out` ending in .png (pngcairo, else the libgd
-- png terminal), .svg or .pdf (pdfcairo), rendered under a temporary name in out's
-- directory and renamed into place (no half-written picture). No `out`: gnuplot's `dumb`
-- terminal, the text printed (REPL, ssh), or returned with {print = false}.
-- gnuplot is Debian's gnuplot-nox (scripts/setup.sh); QD_GNUPLOT names another program
-- (tests use it to act out a machine without gnuplot).
local caller = require "qd.caller"

local M = {}
local fmt = string.format

M.PACKAGE = "gnuplot-nox"

-- an error at the user's line (the library's own frames skipped)
function M.fail(msg) error(msg, caller.outside()) end
M.argerror = caller.argerror

local function shquote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- gnuplot string literal: single quotes, '' for a quote inside; control characters (a
-- newline would end the script line) become spaces
function M.q(s) return "'" .. tostring(s):gsub("%c", " "):gsub("'", "''") .. "'" end

local found   -- {prog=, path=, cairo=, pdf=} of the gnuplot found, per QD_GNUPLOT value

-- locate(): the gnuplot program and its terminals, or nil, message
function M.locate()
  if not io.popen then
    return nil, "qd.plot runs gnuplot, which --sandbox does not allow (draw the run's " ..
                "figures afterwards with qd plot RUNDIR)"
  end
  local prog = os.getenv("QD_GNUPLOT")
  if not prog or prog == "" then prog = "gnuplot" end
  if found and found.prog == prog then return found end
  local f = io.popen("command -v " .. shquote(prog) .. " 2>/dev/null")
  local path = f and f:read("l")
  if f then f:close() end
  if not path or path == "" then
    return nil, "qd.plot needs gnuplot, which is not installed: install the Debian package " ..
                M.PACKAGE .. " (apt-get install " .. M.PACKAGE .. ")"
  end
  local t = io.popen(shquote(path) .. " -e 'set terminal' 2>&1 </dev/null")
  local terms = t and t:read("a") or ""
  if t then t:close() end
  found = { prog = prog, path = path, cairo = terms:find("pngcairo", 1, true) ~= nil,
            pdf = terms:find("pdfcairo", 1, true) ~= nil }
  return found
end

local function gnuplot()
  local gp, msg = M.locate()
  if not gp then M.fail(msg) end
  return gp
end

-- Options every plot takes; each plot adds its own (check_opts names unknown keys).
M.common = { out = "string", title = "string", xlabel = "string", ylabel = "string",
             width = "number", height = "number", print = "boolean" }

-- check_opts(fname, argn, o, extra) -> o (a table; nil gives {}): every key known and of
-- its type. extra maps more keys to a type name ("table", "any", ...).
function M.check_opts(fname, argn, o, extra)
  if o == nil then return {} end
  if type(o) ~= "table" then M.argerror(fname, argn, "options table expected, got " .. type(o)) end
  for k, v in pairs(o) do
    if type(k) == "string" then
      local want = M.common[k] or (extra and extra[k])
      if not want then
        M.argerror(fname, argn, "unknown option '" .. k .. "'")
      elseif want ~= "any" and type(v) ~= want then
        M.argerror(fname, argn, fmt("option '%s': %s expected, got %s", k, want, type(v)))
      end
    end
  end
  if o.out then
    local ext = (o.out:match("%.(%w+)$") or ""):lower()
    if ext ~= "png" and ext ~= "svg" and ext ~= "pdf" then
      M.argerror(fname, argn, "option 'out': a file name ending in .png, .svg or .pdf expected, got '" .. o.out .. "'")
    end
    local dir = o.out:match("^(.*)/[^/]*$")
    local f = dir and dir ~= "" and io.open(dir .. "/.", "r")
    if f then f:close() elseif dir and dir ~= "" then
      M.argerror(fname, argn, "option 'out': no directory " .. dir)
    end
  end
  for _, k in ipairs { "width", "height" } do
    local v = o[k]
    if v ~= nil and not (math.type(v) == "integer" and v >= 8 and v <= 20000) then
      M.argerror(fname, argn, fmt("option '%s': an integer 8..20000 expected, got %s", k, tostring(v)))
    end
  end
  return o
end

-- the terminal line for out (by extension) or the text terminal
local function terminal(gp, fname, o, size)
  if not o.out then
    return fmt("set terminal dumb size %d,%d", o.width or 79, o.height or 24)
  end
  local ext = (o.out:match("%.(%w+)$") or ""):lower()
  local w, h = o.width or size and size[1] or 800, o.height or size and size[2] or 600
  if ext == "png" then
    if gp.cairo then return fmt("set terminal pngcairo size %d,%d font 'sans,10'", w, h) end
    return fmt("set terminal png size %d,%d", w, h)
  elseif ext == "svg" then
    return fmt("set terminal svg size %d,%d font 'sans,10' background rgb 'white'", w, h)
  elseif ext == "pdf" then
    if not gp.pdf then M.fail("qd.plot." .. fname .. ": this gnuplot has no pdfcairo terminal (PDF); write .png or .svg") end
    return fmt("set terminal pdfcairo size %gin,%gin font 'sans,8'", w / 100, h / 100)
  end
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- a fresh name (a temporary file's, removed) to build temporary names from
local function tag()
  local t = os.tmpname()
  os.remove(t)
  return t:match("[^/]+$")
end

-- a temporary file of the system's (created empty by os.tmpname; the caller removes it);
-- gnuplot is looked for first, so that a missing gnuplot or --sandbox (no os.tmpname
-- either) is the error a plot gives
function M.tmpname()
  gnuplot()
  return os.tmpname()
end

local function target(o)
  if not o.out then return M.tmpname() end
  local dir, base = o.out:match("^(.*)/([^/]*)$")
  if not dir then dir, base = ".", o.out end
  if dir == "" then dir = "/" end
  return fmt("%s/.%s.%s.tmp", dir, base, tag())
end

-- the first lines of gnuplot's complaint, without its echo of the script line
local function gp_message(text)
  local lines = {}
  for l in (text or ""):gmatch("[^\n]+") do
    if #lines < 6 and l:find("%S") then lines[#lines + 1] = l:gsub("^%s+", "") end
  end
  return #lines > 0 and table.concat(lines, " / ") or "(no message)"
end

-- render(fname, o, body [, cleanup [, size]]): runs gnuplot on body (script text after the
-- terminal and output lines); removes the files in cleanup; size = {w, h} in pixels unless
-- o says; returns o.out; the text rendering is printed, or returned if o.print == false
function M.render(fname, o, body, cleanup, size)
  local gp = gnuplot()
  local term = terminal(gp, fname, o, size)
  local tmp, errf, script = target(o), M.tmpname(), M.tmpname()
  -- the script goes to gnuplot as a file: gnuplot reads a pipe a character at a time (1e5
  -- points of inline data: 1.1 s from a pipe, 0.3 s from a file)
  local f = io.open(script, "wb")
  if not f then M.fail("qd.plot." .. fname .. ": cannot write a temporary file in " .. script:match("^(.*)/")) end
  f:write(term, "\nset termoption noenhanced\nset encoding utf8\nset output ", M.q(tmp), "\n",
          body, "\nset output\n")
  f:close()
  local p = io.popen(shquote(gp.path) .. " " .. shquote(script) .. " </dev/null >/dev/null 2>" .. shquote(errf), "r")
  local ok = p and p:close()
  local etext = slurp(errf)
  os.remove(errf)
  os.remove(script)
  for _, f in ipairs(cleanup or {}) do os.remove(f) end
  if not ok then
    os.remove(tmp)
    M.fail("qd.plot." .. fname .. ": gnuplot failed: " .. gp_message(etext))
  end
  if o.out then
    local moved, err = os.rename(tmp, o.out)
    if not moved then
      os.remove(tmp)
      M.fail("qd.plot." .. fname .. ": cannot write " .. o.out .. ": " .. tostring(err))
    end
    return o.out
  end
  local text = slurp(tmp) or ""
  os.remove(tmp)
  if o.print == false then return text end
  io.write(text)   -- and nothing returned: the prompt would print the text a second time
  io.flush()
end

-- the common header lines: title and axis labels
function M.header(o)
  local s = {}
  if o.title then s[#s + 1] = "set title " .. M.q(o.title) end
  if o.xlabel then s[#s + 1] = "set xlabel " .. M.q(o.xlabel) end
  if o.ylabel then s[#s + 1] = "set ylabel " .. M.q(o.ylabel) end
  return table.concat(s, "\n")
end

-- number text gnuplot reads back (NaN/inf spelt its way)
function M.num(x)
  if x ~= x then return "NaN" end
  if x == math.huge then return "Inf" end
  if x == -math.huge then return "-Inf" end
  return fmt("%.10g", x)
end

-- numbers(fname, argn, v, what) -> a Lua list of numbers from a table of numbers or a
-- real qd.Vector (or a one-column real qd.Matrix)
function M.numbers(fname, argn, v, what)
  local qd = require "qd"
  local t = qd.type(v)
  if t == "qd.Vector" or t == "qd.Matrix" then
    if v:is_complex() then M.argerror(fname, argn, what .. ": real values expected, got a complex " .. t) end
    local r, c = v:shape()
    if c ~= 1 then M.argerror(fname, argn, fmt("%s: a vector expected, got a %dx%d qd.Matrix", what, r, c)) end
    return v:totable()
  end
  if t ~= "table" then M.argerror(fname, argn, what .. ": a table of numbers or a qd.Vector expected, got " .. t) end
  local n = #v
  for i = 1, n do
    if type(v[i]) ~= "number" then
      M.argerror(fname, argn, fmt("%s: entry %d is %s, a number expected", what, i, type(v[i])))
    end
  end
  return v
end

-- datablock(name, rows): gnuplot inline data ($name << EOD ... EOD); rows are strings
function M.datablock(name, rows)
  return "$" .. name .. " << EOD\n" .. table.concat(rows, "\n") .. "\nEOD\n"
end

return M
