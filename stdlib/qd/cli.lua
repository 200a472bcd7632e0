-- qd.cli — command-line options for example and protocol scripts.
--   local opts = require("qd.cli").parse(arg, {
--     name = "quddpm_forward", about = "one line",
--     options = { {"small", false, "small settings"}, {"seed", 1, "rng seed"}, ... } })
-- The type of each option comes from its default (boolean flag, integer/number, string).
-- An option may also carry checks, applied to a value given on the command line:
--   {"lr", 0.0, "learning rate", min = 0}            -- number >= min (max = ... likewise)
--   {"loss", "", "loss", choices = {"", "mmd", "wasserstein"}}
--   {"n", 1, "qubits", choices = {1, 2}}
--   {"x", 0, "...", check = function(v) if bad then return "message" end end}
-- Numbers must be finite. Accepts --name value and --name=value; --help prints usage and
-- exits 0; an unknown, malformed or out-of-range option prints the message and the usage
-- to stderr and exits 2 (a usage error, never a traceback).
-- parse returns opts, given (given[name] = true for the options on the command line);
-- M.given(opts) gives that set back later and M.fail(opts, msg) raises a usage error for
-- the script that parsed opts (used by quddpm.resume_options for conflicting options).
local M = {}

-- opts table -> {spec = , given = } of the parse that made it (weak: no leak)
local parsed = setmetatable({}, { __mode = "k" })

local function usage(spec)
  local lines = { string.format("usage: qd %s.lua [options]", spec.name) }
  if spec.about then lines[#lines + 1] = spec.about end
  lines[#lines + 1] = "options:"
  for _, o in ipairs(spec.options) do
    local name, def, help = o[1], o[2], o[3] or ""
    local arg = type(def) == "boolean" and "" or (type(def) == "number" and " N" or " S")
    -- options are written with dashes (--best-of); underscores are accepted too
    local shown = (type(def) == "boolean" or def == "") and "" or " (default: " .. tostring(def) .. ")"
    if help:find("default", 1, true) then shown = "" end
    lines[#lines + 1] = string.format("  --%-14s %s%s", name:gsub("_", "-") .. arg, help, shown)
  end
  lines[#lines + 1] = "  --help           this text"
  return table.concat(lines, "\n")
end
M.usage = usage

local function fail(spec, msg)
  io.stderr:write("qd: " .. msg .. "\n" .. usage(spec) .. "\n")
  os.exit(2)
end

local function show(v) return type(v) == "string" and ("'" .. v .. "'") or tostring(v) end

-- the checks an option spec carries (min, max, choices, check); returns a message or nil
local function check_value(o, v)
  local name = "--" .. o[1]:gsub("_", "-")
  if type(v) == "number" and (v ~= v or v == math.huge or v == -math.huge) then
    return name .. " expects a finite number, got " .. tostring(v)
  end
  if o.choices then
    local ok, list = false, {}
    for _, c in ipairs(o.choices) do
      ok = ok or c == v
      list[#list + 1] = c == "" and "''" or tostring(c)
    end
    if not ok then return name .. " expects one of " .. table.concat(list, ", ") .. ", got " .. show(v) end
  end
  if o.min ~= nil and v < o.min then return name .. " expects a value >= " .. tostring(o.min) .. ", got " .. tostring(v) end
  if o.max ~= nil and v > o.max then return name .. " expects a value <= " .. tostring(o.max) .. ", got " .. tostring(v) end
  if o.check then
    local msg = o.check(v)
    if msg then return name .. ": " .. msg end
  end
end

local spec_keys = { [1] = true, [2] = true, [3] = true, min = true, max = true, choices = true, check = true }

-- M.given(opts) -> the set of option names given on the command line (nil if opts did not
-- come from parse)
function M.given(opts)
  local p = parsed[opts]
  return p and p.given
end

-- M.fail(opts, msg): a usage error (message and usage to stderr, exit status 2) for the
-- script whose parse made opts; a plain error (level 2) when opts did not come from parse
function M.fail(opts, msg)
  local p = parsed[opts]
  if not p then error(msg, 2) end
  fail(p.spec, msg)
end

-- A script with an --out option also gets --force: replace the run record an existing
-- --out directory holds (qd.record refuses otherwise); and --plot: draw the run record's
-- standard figures into its figures/ directory when the script ends (qd.plot.run).
local force_option = { "force", false, "replace the run record in an existing --out directory" }
local plot_option = { "plot", false, "draw the run's figures into <run dir>/figures (gnuplot)" }

local function with_force(spec)
  local has_out, has = false, {}
  for _, o in ipairs(spec.options) do
    if o[1] == "out" then has_out = true end
    has[o[1]] = true
  end
  if not has_out or (has.force and has.plot) then return spec end
  local s = {}
  for k, v in pairs(spec) do s[k] = v end
  s.options = {}
  for i, o in ipairs(spec.options) do s.options[i] = o end
  if not has.force then s.options[#s.options + 1] = force_option end
  if not has.plot then s.options[#s.options + 1] = plot_option end
  return s
end

function M.parse(argv, spec)
  if type(spec) ~= "table" or type(spec.options) ~= "table" then
    error("bad argument #2 to 'parse' (a spec table with an options list expected)", 2)
  end
  local auto_force = with_force(spec)
  local added = auto_force ~= spec
  spec = auto_force
  local opts, byname = {}, {}
  for _, o in ipairs(spec.options) do
    for k in pairs(o) do
      if not spec_keys[k] then
        error(string.format("bad argument #2 to 'parse' (option '%s': unknown key '%s' in its spec; known: min, max, choices, check)",
                            tostring(o[1]), tostring(k)), 2)
      end
    end
    opts[o[1]] = o[2]
    byname[o[1]] = o
  end
  local given = {}
  local i = 1
  argv = argv or {}
  while i <= #argv do
    local a = argv[i]
    if a == "--help" or a == "-h" then
      print(usage(spec))
      os.exit(0)
    end
    local name, val = a:match("^%-%-([%w_%-]+)=(.*)$")
    if not name then name = a:match("^%-%-([%w_%-]+)$") end
    if not name then fail(spec, "unexpected argument '" .. a .. "'") end
    name = name:gsub("%-", "_")
    local o = byname[name]
    if not o then fail(spec, "unknown option --" .. name) end
    local def = o[2]
    if type(def) == "boolean" then
      if val ~= nil then
        if val == "true" or val == "1" then val = true
        elseif val == "false" or val == "0" then val = false
        else fail(spec, "--" .. name .. " takes no value or true/false") end
      else
        val = true
      end
    else
      if val == nil then
        i = i + 1
        val = argv[i]
        if val == nil then fail(spec, "--" .. name .. " needs a value") end
      end
      if type(def) == "number" then
        local v = tonumber(val)
        if not v then fail(spec, "--" .. name .. " expects a number, got '" .. val .. "'") end
        if math.type(def) == "integer" then
          v = math.tointeger(v)   -- nil for 2.5, 1e400, 2^63
          if not v then fail(spec, "--" .. name .. " expects an integer, got '" .. val .. "'") end
        end
        val = v
      end
    end
    local msg = check_value(o, val)
    if msg then fail(spec, msg) end
    opts[name] = val
    given[name] = true
    i = i + 1
  end
  parsed[opts] = { spec = spec, given = given }
  if added and opts.force then require("qd.record").force = true end
  if added and opts.plot then require("qd.record").plot = true end
  return opts, given
end

return M
