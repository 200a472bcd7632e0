-- qd.pretty — readable text for any Lua value, as the prompt shows results:
--   qd.pretty(v [, {depth = 3, items = 20, width = 100}]) -> string
-- Tables are shown nested (array part first, then the other keys sorted), at most `items`
-- entries per table and `depth` levels (deeper ones as {…}), on one line when that fits in
-- `width` characters, else one entry per line; qd objects and values with a __tostring are
-- shown by it (a multi-line one indented); strings quoted inside tables; a table seen
-- twice (a cycle) is shown as <cycle>.
local M = {}

local function is_ident(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil and not ({
    ["and"] = 1, ["break"] = 1, ["do"] = 1, ["else"] = 1, ["elseif"] = 1, ["end"] = 1,
    ["false"] = 1, ["for"] = 1, ["function"] = 1, ["goto"] = 1, ["if"] = 1, ["in"] = 1,
    ["local"] = 1, ["nil"] = 1, ["not"] = 1, ["or"] = 1, ["repeat"] = 1, ["return"] = 1,
    ["then"] = 1, ["true"] = 1, ["until"] = 1, ["while"] = 1 })[k]
end

local function scalar(v, inside)
  local t = type(v)
  if t == "string" then
    if not inside then return v end
    if #v > 200 then v = v:sub(1, 200) .. "…" end
    return string.format("%q", v):gsub("\\\n", "\\n")
  elseif t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v ~= v then return "nan" end
    if v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
    return string.format("%.10g", v)
  end
  return nil
end

local function has_tostring(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__tostring") ~= nil
end

local function render(v, o, level, seen, indent)
  local s = scalar(v, level > 0)
  if s then return s end
  if type(v) ~= "table" or has_tostring(v) then
    local ok, r = pcall(tostring, v)
    r = ok and tostring(r) or ("<" .. type(v) .. ">")
    if level > 0 and r:find("\n") then r = r:gsub("\n", "\n" .. indent .. "  ") end
    return r
  end
  if seen[v] then return "<cycle>" end
  if level >= o.depth then return next(v) == nil and "{}" or "{…}" end
  seen[v] = true
  local parts, n = {}, 0
  local len = #v
  for i = 1, len do
    n = n + 1
    if n > o.items then break end
    parts[#parts + 1] = render(v[i], o, level + 1, seen, indent .. "  ")
  end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= len) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  local total = len + #keys
  for _, k in ipairs(keys) do
    n = n + 1
    if n > o.items then break end
    local ks = is_ident(k) and k or ("[" .. (scalar(k, true) or tostring(k)) .. "]")
    parts[#parts + 1] = ks .. " = " .. render(v[k], o, level + 1, seen, indent .. "  ")
  end
  seen[v] = nil
  if total > o.items then parts[#parts + 1] = string.format("… (%d more)", total - o.items) end
  if #parts == 0 then return "{}" end
  local one = "{" .. table.concat(parts, ", ") .. "}"
  if #one + #indent <= o.width and not one:find("\n") then return one end
  return "{\n" .. indent .. "  " .. table.concat(parts, ",\n" .. indent .. "  ") .. "\n" .. indent .. "}"
end

local defaults = { depth = 3, items = 20, width = 100 }

function M.pretty(v, opts)
  local o = {}
  for k, d in pairs(defaults) do o[k] = d end
  if opts ~= nil then
    if type(opts) ~= "table" then error("bad argument #2 to 'pretty' (options table expected)", 2) end
    for k, x in pairs(opts) do
      if defaults[k] == nil then error("bad argument #2 to 'pretty' (unknown option '" .. tostring(k) .. "')", 2) end
      if math.type(x) ~= "integer" or x < 1 then
        error("bad argument #2 to 'pretty' (option '" .. k .. "': a positive integer expected)", 2)
      end
      o[k] = x
    end
  end
  return render(v, o, 0, {}, "")
end

return setmetatable(M, { __call = function(_, ...) return M.pretty(...) end })
