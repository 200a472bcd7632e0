-- qd.json — JSON encoding for run records (and a small decoder to read them back).
-- Objects get sorted keys so a record is byte-stable; NaN and infinities become null
-- (JSON has no spelling for them) — the record never holds executable content.
local M = {}
local numarray = require("qd.core").json_numarray

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function encstr(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function isarray(t)
  local n = #t
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

-- tables promised never to change (M.freeze): their compact encoding, once made (false: not yet)
local frozen = setmetatable({}, { __mode = "k" })

local function enc(v, indent, depth, seen)
  local t = type(v)
  if v == nil then return "null"
  elseif t == "boolean" then return tostring(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if math.type(v) == "integer" then return string.format("%d", v) end
    return string.format("%.17g", v)
  elseif t == "string" then return encstr(v)
  elseif t == "table" then
    local fz   -- nil, or the frozen entry (only compact encodings are kept)
    if not indent then fz = frozen[v] end
    if fz then return fz end
    if not indent then   -- a plain array of numbers: encoded in C (checkpoints hold long ones)
      local fast = numarray(v)
      if fast then
        if fz == false then frozen[v] = fast end
        return fast
      end
    end
    if seen[v] then error("json: cannot encode a table that contains itself", 0) end
    seen[v] = true
    local pad = indent and ("\n" .. string.rep(indent, depth + 1)) or ""
    local close = indent and ("\n" .. string.rep(indent, depth)) or ""
    local sep = indent and ": " or ":"
    local parts = {}
    local out
    if next(v) == nil then
      out = isarray(v) and (getmetatable(v) == M.object_mt and "{}" or "[]") or "{}"
    elseif isarray(v) then
      for i = 1, #v do parts[i] = pad .. enc(v[i], indent, depth + 1, seen) end
      out = "[" .. table.concat(parts, ",") .. close .. "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" and type(k) ~= "number" then
          error("json: object keys must be strings or numbers, got " .. type(k), 0)
        end
        keys[#keys + 1] = tostring(k)
      end
      table.sort(keys)
      for i, k in ipairs(keys) do
        local val = v[k]
        if val == nil then val = v[tonumber(k)] end
        parts[i] = pad .. encstr(k) .. sep .. enc(val, indent, depth + 1, seen)
      end
      out = "{" .. table.concat(parts, ",") .. close .. "}"
    end
    seen[v] = nil
    if fz == false then frozen[v] = out end
    return out
  else
    -- qd objects and functions are not data: store their printed summary
    return encstr(tostring(v))
  end
end

M.object_mt = {}
-- json.object() -> an empty table that encodes as {} rather than []
function M.object() return setmetatable({}, M.object_mt) end

-- json.freeze(t) -> t: a promise that t and everything in it will not change again; its
-- compact encoding (no indent) is then made once and reused (qd.optim.freeze uses it for
-- the finished parts of checkpoints)
function M.freeze(t)
  if type(t) ~= "table" then error("bad argument #1 to 'freeze' (table expected, got " .. type(t) .. ")", 2) end
  if frozen[t] == nil then frozen[t] = false end
  return t
end

function M.encode(v, opts)
  local indent = opts and opts.indent
  if indent == true then indent = "  " end
  return enc(v, indent, 0, {})
end

-- decoder (strict enough for files we wrote)
function M.decode(s)
  local pos = 1
  local function ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local function err(msg) error(string.format("json: %s at position %d", msg, pos), 0) end
  local value
  local function str()
    local out, i = {}, pos + 1
    while true do
      local c = s:sub(i, i)
      if c == "" then err("unterminated string") end
      if c == '"' then break end
      if c == "\\" then
        local e = s:sub(i + 1, i + 1)
        local map = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }
        if map[e] then out[#out + 1] = map[e]; i = i + 2
        elseif e == "u" then
          local code = tonumber(s:sub(i + 2, i + 5), 16) or err("bad \\u escape")
          out[#out + 1] = utf8.char(code); i = i + 6
        else err("bad escape") end
      else
        out[#out + 1] = c; i = i + 1
      end
    end
    pos = i + 1
    return table.concat(out)
  end
  function value()
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      pos = pos + 1
      local t = {}
      ws()
      if s:sub(pos, pos) == "}" then pos = pos + 1 return setmetatable(t, M.object_mt) end
      while true do
        ws()
        if s:sub(pos, pos) ~= '"' then err("object key expected") end
        local k = str()
        ws()
        if s:sub(pos, pos) ~= ":" then err("':' expected") end
        pos = pos + 1
        t[k] = value()
        ws()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return t end
        if d ~= "," then err("',' or '}' expected") end
      end
    elseif c == "[" then
      pos = pos + 1
      local t = {}
      ws()
      if s:sub(pos, pos) == "]" then pos = pos + 1 return t end
      while true do
        t[#t + 1] = value()
        ws()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return t end
        if d ~= "," then err("',' or ']' expected") end
      end
    elseif c == '"' then return str()
    elseif s:sub(pos, pos + 3) == "true" then pos = pos + 4 return true
    elseif s:sub(pos, pos + 4) == "false" then pos = pos + 5 return false
    elseif s:sub(pos, pos + 3) == "null" then pos = pos + 4 return nil
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if not num or num == "" then err("unexpected character '" .. c .. "'") end
      pos = pos + #num
      return math.tointeger(tonumber(num)) or tonumber(num)
    end
  end
  local v = value()
  ws()
  if pos <= #s then err("trailing characters") end
  return v
end

return M
