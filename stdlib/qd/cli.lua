-- qd.cli — command-line options for example and protocol scripts.
--   local opts = require("qd.cli").parse(arg, {
--     name = "quddpm_forward", about = "one line",
--     options = { {"small", false, "small settings"}, {"seed", 1, "rng seed"}, ... } })
-- The type of each option comes from its default (boolean flag, integer/number, string).
-- Accepts --name value and --name=value; --help prints usage and exits 0; an unknown or
-- malformed option prints the usage to stderr and exits 2.
local M = {}

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

function M.parse(argv, spec)
  local opts, byname = {}, {}
  for _, o in ipairs(spec.options) do
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
          if math.type(v) ~= "integer" and v ~= math.floor(v) then
            fail(spec, "--" .. name .. " expects an integer, got '" .. val .. "'")
          end
          v = math.tointeger(v)
        end
        val = v
      end
    end
    opts[name] = val
    given[name] = true
    i = i + 1
  end
  return opts, given
end

return M
