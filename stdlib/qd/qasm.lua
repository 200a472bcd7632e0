-- qd.qasm — text forms of a qd.Circuit: c:to_qasm(2|3), qd.circuit.from_qasm(text) and
-- c:draw(). Works on c:ops() (the C op list), so it needs nothing from the core beyond the
-- public circuit methods.
--
-- Export. QASM 3: `input float[64] name;` per parameter slot (named slots keep their name
-- when it is a valid identifier, unnamed slot i is theta_i), angles written as affine
-- expressions `scale*name + offset`; gates missing from stdgates.inc (rxx ryy rzz sxdg ecr) are
-- defined in the header; u is the builtin U. QASM 2 has no free parameters, so
-- to_qasm(2, params) binds them; gates missing from the original qelib1.inc are defined.
-- A measurement with discard is followed by `pragma qd discard q[i], ...` (QASM 3) or
-- `// pragma qd discard ...` (QASM 2), which from_qasm reads back. Arbitrary unitaries
-- (c:add_unitary) cannot be exported.
--
-- Import: a small recursive-descent parser for the standard-gate subset of OpenQASM 2 and
-- 3: qreg/creg, qubit/bit declarations, `input float[..]`/`input angle[..]` parameters,
-- gate calls with affine angle expressions (pi, + - * /, parentheses, sin/cos/... of
-- constants), register broadcast, user `gate` definitions (expanded), measure (both
-- syntaxes; consecutive measurements form one joint measurement), reset, barrier,
-- comments. Errors read "qasm:LINE: message".
local outside = require("qd.caller").outside   -- errors at the user's line
local M = {}

local fmt = string.format

local function num(x)
  if x == math.floor(x) and math.abs(x) < 1e15 then return fmt("%d", x) end
  return fmt("%.17g", x)
end

------------------------------------------------------------------------ export
local std3 = {
  id = true, x = true, y = true, z = true, h = true, s = true, sdg = true, t = true, tdg = true,
  sx = true, rx = true, ry = true, rz = true, p = true, cx = true, cy = true, cz = true, ch = true,
  swap = true, crx = true, cry = true, crz = true, cp = true, ccx = true, cswap = true,
}
local defs3 = {
  sxdg = "gate sxdg a { s a; h a; s a; gphase(-pi/4); }",
  rzz = "gate rzz(theta) a, b { cx a, b; rz(theta) b; cx a, b; }",
  rxx = "gate rxx(theta) a, b { h a; h b; cx a, b; rz(theta) b; cx a, b; h a; h b; }",
  ryy = "gate ryy(theta) a, b { rx(pi/2) a; rx(pi/2) b; cx a, b; rz(theta) b; cx a, b; rx(-pi/2) a; rx(-pi/2) b; }",
  -- Qiskit's definition: rzx(pi/4) a, b; x a; rzx(-pi/4) a, b, rzx(t) = h b; cx a, b; rz(t) b; cx a, b; h b
  ecr = "gate ecr a, b { h b; cx a, b; rz(pi/4) b; cx a, b; h b; x a; h b; cx a, b; rz(-pi/4) b; cx a, b; h b; }",
}
-- QASM 2: names in the original qelib1.inc, renames, and definitions of the rest
local std2 = {
  id = true, x = true, y = true, z = true, h = true, s = true, sdg = true, t = true, tdg = true,
  rx = true, ry = true, rz = true, cx = true, cy = true, cz = true, ch = true, crz = true, ccx = true,
}
local rename2 = { p = "u1", cp = "cu1", u = "u3" }
local defs2 = {
  sx = "gate sx a { sdg a; h a; sdg a; }",
  sxdg = "gate sxdg a { s a; h a; s a; }",
  swap = "gate swap a, b { cx a, b; cx b, a; cx a, b; }",
  cswap = "gate cswap a, b, c { cx c, b; ccx a, b, c; cx c, b; }",
  crx = "gate crx(theta) a, b { u1(pi/2) b; cx a, b; u3(-theta/2, 0, 0) b; cx a, b; u3(theta/2, -pi/2, 0) b; }",
  cry = "gate cry(theta) a, b { ry(theta/2) b; cx a, b; ry(-theta/2) b; cx a, b; }",
  rzz = "gate rzz(theta) a, b { cx a, b; rz(theta) b; cx a, b; }",
  rxx = "gate rxx(theta) a, b { h a; h b; cx a, b; rz(theta) b; cx a, b; h a; h b; }",
  ryy = "gate ryy(theta) a, b { rx(pi/2) a; rx(pi/2) b; cx a, b; rz(theta) b; cx a, b; rx(-pi/2) a; rx(-pi/2) b; }",
  ecr = "gate ecr a, b { h b; cx a, b; rz(pi/4) b; cx a, b; h b; x a; h b; cx a, b; rz(-pi/4) b; cx a, b; h b; }",
}

local keywords = {
  OPENQASM = true, include = true, qubit = true, bit = true, qreg = true, creg = true, gate = true,
  measure = true, reset = true, barrier = true, input = true, output = true, float = true,
  angle = true, int = true, uint = true, bool = true, pi = true, tau = true, euler = true,
  U = true, CX = true, ctrl = true, negctrl = true, inv = true, pow = true, gphase = true,
  ["if"] = true, ["else"] = true, ["for"] = true, ["while"] = true, ["in"] = true,
  ["return"] = true, def = true, const = true, let = true, pragma = true, sin = true, cos = true,
  tan = true, exp = true, ln = true, sqrt = true, arcsin = true, arccos = true, arctan = true,
  q = true, c = true, true_ = true, duration = true, stretch = true, box = true, delay = true,
}

local function param_names(c)
  local names, used = {}, {}
  local given = c:param_names()
  for i = 1, c:nparams() do
    local nm = given[i]
    if not (nm and nm:match("^[%a_][%w_]*$") and not keywords[nm] and not used[nm]) then
      nm = "theta_" .. i
      while used[nm] or given[nm] do nm = nm .. "_" end
    end
    used[nm] = true
    names[i] = nm
  end
  return names
end

local function angle_text(p, names, params)
  if p.value then return num(p.value) end
  if params then return num(p.offset + p.scale * params[p.slot]) end
  local s
  if p.scale == 1 then s = names[p.slot]
  elseif p.scale == -1 then s = "-" .. names[p.slot]
  else s = num(p.scale) .. "*" .. names[p.slot] end
  if p.offset > 0 then s = s .. " + " .. num(p.offset)
  elseif p.offset < 0 then s = s .. " - " .. num(-p.offset) end
  return s
end

local function params_table(c, params)
  if params == nil then return nil end
  local t = {}
  local n = c:nparams()
  if type(params) == "table" then
    if #params ~= n then error(fmt("bad argument #3 to 'to_qasm' (%d parameters expected, got %d)", n, #params), 3) end
    for i = 1, n do t[i] = params[i] end
  elseif type(params) == "userdata" then
    if #params ~= n then error(fmt("bad argument #3 to 'to_qasm' (%d parameters expected, got %d)", n, #params), 3) end
    for i = 1, n do t[i] = params[i] end
  else
    error("bad argument #3 to 'to_qasm' (parameters (qd.Vector or table) expected, got " .. type(params) .. ")", 3)
  end
  for i = 1, n do
    if type(t[i]) ~= "number" then error(fmt("bad argument #3 to 'to_qasm' (number expected at parameter %d)", i), 3) end
  end
  return t
end

function M.to_qasm(c, version, params)
  version = version or 3
  if version ~= 2 and version ~= 3 then
    error("bad argument #2 to 'to_qasm' (version 2 or 3 expected, got " .. tostring(version) .. ")", 2)
  end
  params = params_table(c, params)
  if version == 2 and c:nparams() > 0 and not params then
    error("bad argument #3 to 'to_qasm' (OpenQASM 2 has no free parameters: pass the parameter values)", 2)
  end
  local ops = c:ops()
  local names = param_names(c)
  local nbits = 0
  for i, op in ipairs(ops) do
    if op.kind == "unitary" then
      error(fmt("to_qasm: op %d is an arbitrary unitary ('%s'), which OpenQASM's standard gates cannot express", i, op.name), 2)
    end
    if op.kind == "channel" then
      error(fmt("to_qasm: op %d is a noise channel ('%s'), which OpenQASM cannot express", i, op.name), 2)
    end
    if op.kind == "measure" then nbits = nbits + #op.qubits end
    if op.condition and (version == 2 or (op.condition.neg and #op.condition > 1)) then
      error(fmt("to_qasm: op %d is conditional on measured bits, which %s", i, version == 2
                and "OpenQASM 2 cannot express (it tests whole registers): use version 3"
                or "this export cannot express (a negated test of several bits)"), 2)
    end
  end
  local out, need = {}, {}
  for _, op in ipairs(ops) do
    if op.kind == "gate" then need[op.name] = true end
  end
  if version == 3 then
    out[#out + 1] = "OPENQASM 3.0;"
    out[#out + 1] = 'include "stdgates.inc";'
    for _, g in ipairs { "sxdg", "rzz", "rxx", "ryy", "ecr" } do
      if need[g] then out[#out + 1] = defs3[g] end
    end
    if not params then
      for i = 1, c:nparams() do out[#out + 1] = fmt("input float[64] %s;", names[i]) end
    end
    out[#out + 1] = fmt("qubit[%d] q;", c.n)
    if nbits > 0 then out[#out + 1] = fmt("bit[%d] c;", nbits) end
  else
    out[#out + 1] = "OPENQASM 2.0;"
    out[#out + 1] = 'include "qelib1.inc";'
    for _, g in ipairs { "sx", "sxdg", "swap", "cswap", "crx", "cry", "rzz", "rxx", "ryy", "ecr" } do
      if need[g] then out[#out + 1] = defs2[g] end
    end
    out[#out + 1] = fmt("qreg q[%d];", c.n)
    if nbits > 0 then out[#out + 1] = fmt("creg c[%d];", nbits) end
  end
  local bit = 0
  local mbase = {}   -- measurement/reset op number -> {first bit, qubits}
  for _, op in ipairs(ops) do
    local qs = {}
    for i, q in ipairs(op.qubits) do qs[i] = fmt("q[%d]", q) end
    if op.kind == "measure" or op.kind == "reset" then mbase[#mbase + 1] = { bit, #op.qubits } end
    if op.condition then   -- QASM 3: nested ifs on the bits its measurements wrote
      local cd, pre, post = op.condition, {}, {}
      for _, b in ipairs(cd) do
        local m = mbase[b.measurement]
        local ci = m[1] + m[2] - 1 - b.bit
        pre[#pre + 1] = fmt("if (c[%d] %s %d) { ", ci, cd.neg and "!=" or "==", b.value)
        post[#post + 1] = " }"
      end
      out[#out + 1] = table.concat(pre)
      op = setmetatable({ condition = false }, { __index = op })
      local k = #out
      post = table.concat(post)
      -- the op itself, then the closing braces on the same line
      local function close() out[k] = out[k] .. table.remove(out, k + 1) .. post end
      if op.kind == "gate" then
        local name = op.name
        if name == "u" then name = "U" end
        local args = {}
        for i, p in ipairs(op.params) do args[i] = angle_text(p, names, params) end
        local a = #args > 0 and ("(" .. table.concat(args, ", ") .. ")") or ""
        out[#out + 1] = fmt("%s%s %s;", name, a, table.concat(qs, ", "))
      end
      close()
      goto continue
    end
    if op.kind == "gate" then
      local name = op.name
      if version == 3 and name == "u" then name = "U" end
      if version == 2 then name = rename2[name] or name end
      local args = {}
      for i, p in ipairs(op.params) do args[i] = angle_text(p, names, params) end
      local a = #args > 0 and ("(" .. table.concat(args, ", ") .. ")") or ""
      out[#out + 1] = fmt("%s%s %s;", name, a, table.concat(qs, ", "))
    elseif op.kind == "measure" then
      for _, q in ipairs(qs) do
        out[#out + 1] = version == 3 and fmt("c[%d] = measure %s;", bit, q) or fmt("measure %s -> c[%d];", q, bit)
        bit = bit + 1
      end
      if op.discard then
        out[#out + 1] = (version == 3 and "pragma" or "// pragma") .. " qd discard " .. table.concat(qs, ", ")
      end
    elseif op.kind == "reset" then
      for _, q in ipairs(qs) do out[#out + 1] = fmt("reset %s;", q) end
    end
    ::continue::
  end
  return table.concat(out, "\n") .. "\n"
end

------------------------------------------------------------------------ import: lexer
-- The lexer starts anywhere (a byte position and its line): the C scanner (lua_qasm.c)
-- reads the plain statements and hands the rest to the parser here, one statement at a
-- time. Linear in the length of the text: every pattern is anchored and matches a run of
-- one character class or a fixed string, so nothing backtracks over a long run.
local find, sub, byte = string.find, string.sub, string.byte
local single, double = {}, {}
for ch in ("()[]{},;=+-*/@^:<>!%~&|"):gmatch(".") do single[byte(ch)] = ch end
for _, s in ipairs { "->", "**", "==", "!=", "<=", ">=", "&&", "||", "+=", "-=", "*=", "/=", "<<", ">>", "++" } do
  double[s] = s
end
local units = { ns = true, us = true, ms = true, s = true, dt = true, ["\194\181s"] = true }
-- identifiers that are spelt with one Unicode letter in the spec
local uident = { ["\207\128"] = "pi", ["\207\132"] = "tau", ["\226\132\135"] = "euler" }

local function count_newlines(text, i, j)
  local _, k = sub(text, i, j):gsub("\n", "")
  return k
end

-- lex(text, i, line) -> toks: toks[k] is the k-th token {kind, v, line, e = its last byte},
-- made on first use, so a statement that fails early never tokenizes the rest. The last
-- token is {kind = "eof"}.
local function lex(text, i, line)
  local toks, n = {}, #text
  local count, done = 0, false
  local function push(kind, v, e)
    count = count + 1
    rawset(toks, count, { kind = kind, v = v, line = line, s = i, e = e })
  end
  local function word(b)
    local _, e = find(text, "^[%w_\128-\255]*", i + 1)
    local w = sub(text, i, e)
    if b >= 128 or find(w, "[\128-\255]") then
      if not utf8.len(w) then error(fmt("qasm:%d: invalid UTF-8 in an identifier", line), 0) end
      w = uident[w] or w
    end
    push("id", w, e); i = e + 1
  end
  local function numtok()
    local _, e = find(text, "^%d*", i)
    if byte(text, e + 1) == 46 then _, e = find(text, "^%d*", e + 2) end
    local _, ee = find(text, "^[eE][%+%-]?%d+", e + 1)
    e = ee or e
    local w = sub(text, i, e)
    local v = tonumber(w)
    if not v then error(fmt("qasm:%d: bad number '%s'", line, #w > 40 and w:sub(1, 40) .. "..." or w), 0) end
    local _, ue = find(text, "^[%a\194\181]+", e + 1)
    if ue and units[sub(text, e + 1, ue)] then
      push("dur", w .. sub(text, e + 1, ue), ue); i = ue + 1
    else
      push("num", v, e); i = e + 1
    end
  end
  local function fill(k)
    while count < k and i <= n do
      local b = byte(text, i)
      if b == 10 then
        line = line + 1; i = i + 1
      elseif b == 32 or b == 9 or b == 13 or b == 11 or b == 12 then
        local _, e = find(text, "^[ \t\r\v\f]+", i)
        i = e + 1
      elseif b == 47 and byte(text, i + 1) == 47 then               -- // comment
        local e = find(text, "\n", i, true)
        e = e and e - 1 or n
        local prag = sub(text, i, e):match("^//%s*(pragma%s+qd%s+.*)$")
        if prag then push("pragma", (prag:gsub("^pragma%s+", "")), e) end
        i = e + 1
      elseif b == 47 and byte(text, i + 1) == 42 then               -- /* comment */
        local j = find(text, "*/", i + 2, true)
        if not j then error(fmt("qasm:%d: unterminated comment", line), 0) end
        line = line + count_newlines(text, i, j)
        i = j + 2
      elseif (b == 35 or b == 112) and find(text, "^#?pragma[ \t]", i) then
        local _, e = find(text, "^#?pragma[^\n]*", i)
        push("pragma", (sub(text, i, e):match("^#?pragma[ \t]+(.*)$")), e)
        i = e + 1
      elseif (b >= 65 and b <= 90) or (b >= 97 and b <= 122) or b == 95 or b >= 128 then
        word(b)
      elseif (b >= 48 and b <= 57) or (b == 46 and find(text, "^%d", i + 1)) then
        numtok()
      elseif b == 34 then                                              -- "string"
        local j = find(text, '"', i + 1, true)
        if not j then error(fmt("qasm:%d: unterminated string", line), 0) end
        push("str", sub(text, i + 1, j - 1), j)
        line = line + count_newlines(text, i, j)
        i = j + 1
      elseif b == 36 and find(text, "^%d", i + 1) then                -- $0: a physical qubit
        local _, e = find(text, "^%d+", i + 1)
        push("phys", sub(text, i, e), e); i = e + 1
      elseif double[sub(text, i, i + 1)] then
        local d = sub(text, i, i + 1)
        push(d, d, i + 1); i = i + 2
      elseif single[b] then
        push(single[b], single[b], i); i = i + 1
      else
        error(fmt("qasm:%d: unexpected character '%s'", line, sub(text, i, i)), 0)
      end
    end
    if count < k and not done then
      push("eof", "<end of input>", n)
      done = true
    end
  end
  return setmetatable(toks, { __index = function(_, k)
    if type(k) ~= "number" or done then return nil end
    fill(k)
    return rawget(toks, k)
  end })
end

------------------------------------------------------------------------ import: values
-- A classical value is an affine form {c = const, s = scale, p = parameter name or nil}
-- (angles may depend on one `input` parameter); `int = true` marks integer arithmetic.
local function const(x, int) return { c = x, s = 0, int = int } end
local function isparam(v) return v.p and v.s ~= 0 end
local function scale(v, k) return { c = v.c * k, s = v.s * k, p = v.p } end
local funcs = {
  sin = math.sin, cos = math.cos, tan = math.tan, exp = math.exp, ln = math.log, sqrt = math.sqrt,
  arcsin = math.asin, arccos = math.acos, arctan = math.atan, asin = math.asin, acos = math.acos,
  atan = math.atan, log = math.log, floor = math.floor, ceiling = math.ceil,
}

local Parser = {}
Parser.__index = Parser

function Parser:err(msg, tok)
  tok = tok or self.toks[self.pos]
  error(fmt("qasm:%d: %s", tok.line, msg), 0)
end

function Parser:peek(k) return self.toks[self.pos + (k or 0)] end
function Parser:next() local t = self.toks[self.pos]; self.pos = self.pos + 1; return t end
function Parser:accept(kind, v)
  local t = self.toks[self.pos]
  if t.kind == kind and (v == nil or t.v == v) then self.pos = self.pos + 1; return t end
end
function Parser:expect(kind, what)
  local t = self:accept(kind)
  if not t then
    local got = self:peek()
    self:err(fmt("%s expected, got '%s'", what or ("'" .. kind .. "'"), tostring(got.v)))
  end
  return t
end
function Parser:isword(v, k) local t = self:peek(k); return t.kind == "id" and t.v == v end

function Parser:nest_in(t)
  self.nest = self.nest + 1
  if self.nest > M.max_nesting then self:err(fmt("expression nested more than %d deep", M.max_nesting), t) end
end

-- the value of identifier w (env: a gate's or subroutine's own names first)
function Parser:ident_value(w, env, t)
  if env and env[w] then return env[w] end
  local v = self.vars[w]
  if v then
    if v.v == nil then self:err(fmt("'%s' is used before it has a value", w), t) end
    return v.v
  end
  if self.inputs[w] then return { c = 0, s = 1, p = w } end
  if w == "pi" then return const(math.pi) end
  if w == "tau" then return const(2 * math.pi) end
  if w == "euler" then return const(math.exp(1)) end
  if w == "true" then return const(1, true) end
  if w == "false" then return const(0, true) end
  if self.cregs[w] then
    self:err(fmt("the measured bits '%s' are used as a number: only 'if' conditions may test them", w), t)
  end
  self:err(fmt("unknown identifier '%s'", w), t)
end

-- expressions: precedence climbing; || && == != < <= > >= + - * / % ** and unary - + !
function Parser:primary(env)
  local t = self:next()
  if t.kind == "num" then return const(t.v, math.type(t.v) == "integer") end
  if t.kind == "(" or t.kind == "-" or t.kind == "+" or t.kind == "!" then
    -- recursion: bounded so a pathological "((((..." is an error, not a stack overflow
    self:nest_in(t)
    local v
    if t.kind == "(" then
      v = self:expr(env)
      self:expect(")")
    else
      v = self:unary(env)
      if t.kind == "-" then v = { c = -v.c, s = -v.s, p = v.p, int = v.int }
      elseif t.kind == "!" then
        if isparam(v) then self:err("'!' of a parameter is not supported", t) end
        v = const(v.c == 0 and 1 or 0, true)
      end
    end
    self.nest = self.nest - 1
    return v
  end
  if t.kind == "id" then
    local w = t.v
    if funcs[w] and self:peek().kind == "(" then
      self:next()
      self:nest_in(t)
      local v = self:expr(env)
      self:expect(")")
      self.nest = self.nest - 1
      if isparam(v) then self:err(fmt("%s() of a parameter is not supported (angles must be affine in one parameter)", w), t) end
      return const(funcs[w](v.c))
    end
    if (w == "int" or w == "uint" or w == "float" or w == "angle" or w == "bool") and
       (self:peek().kind == "(" or self:peek().kind == "[") then
      self:type_width()   -- a cast: float[64](x), int(x)
      self:expect("(")
      self:nest_in(t)
      local v = self:expr(env)
      self:expect(")")
      self.nest = self.nest - 1
      if w == "int" or w == "uint" then
        if isparam(v) then self:err("a parameter cast to an integer is not supported", t) end
        local x = v.c >= 0 and math.floor(v.c) or math.ceil(v.c)
        return const(math.tointeger(x) or x, true)
      end
      if w == "bool" then return const(v.c ~= 0 and 1 or 0, true) end
      return { c = v.c, s = v.s, p = v.p }
    end
    local v = self:ident_value(w, env, t)
    if self:peek().kind == "[" and v.int then   -- bit i of an integer (OpenQASM 3)
      self:next()
      local k = self:int_expr(env, "bit index")
      self:expect("]")
      if k < 0 or k > 62 then self:err(fmt("bit index %d of '%s' out of range", k, w), t) end
      return const(math.tointeger((math.tointeger(v.c) or 0) >> k & 1), true)
    end
    return v
  end
  if t.kind == "dur" then self:err(fmt("a duration ('%s') is not a number", t.v), t) end
  self:err(fmt("expression expected, got '%s'", tostring(t.v)), t)
end

function Parser:unary(env)
  local v = self:primary(env)
  if self:peek().kind == "**" or self:peek().kind == "^" then
    local op = self:next()
    self:nest_in(op)
    local e = self:unary(env)
    self.nest = self.nest - 1
    if isparam(v) or isparam(e) then self:err("power of a parameter is not supported", op) end
    local r = v.c ^ e.c
    if v.int and e.int and e.c >= 0 then r = math.tointeger(r) or r end
    return const(r, v.int and e.int and math.type(r) == "integer")
  end
  return v
end

function Parser:term(env)
  local v = self:unary(env)
  while true do
    local t = self:peek()
    if t.kind == "*" then
      self:next()
      local w = self:unary(env)
      if isparam(v) and isparam(w) then self:err("product of parameters is not supported (angles must be affine)", t) end
      if isparam(v) then v = { c = v.c * w.c, s = v.s * w.c, p = v.p }
      elseif isparam(w) then v = { c = w.c * v.c, s = w.s * v.c, p = w.p }
      else v = const(v.c * w.c, v.int and w.int) end
    elseif t.kind == "/" or t.kind == "%" then
      self:next()
      local w = self:unary(env)
      if isparam(w) then self:err("division by a parameter is not supported (angles must be affine)", t) end
      if w.c == 0 then self:err("division by zero", t) end
      if t.kind == "%" then
        if isparam(v) then self:err("'%' of a parameter is not supported", t) end
        v = const(math.fmod(v.c, w.c), v.int and w.int)
      elseif v.int and w.int then   -- integer division truncates (OpenQASM 3 int)
        local q = v.c / w.c
        v = const(math.tointeger(q >= 0 and math.floor(q) or math.ceil(q)) or q, true)
      else
        v = { c = v.c / w.c, s = v.s / w.c, p = v.p }
      end
    else
      return v
    end
  end
end

function Parser:sum(env)
  local v = self:term(env)
  while true do
    local t = self:peek()
    if t.kind == "+" or t.kind == "-" then
      self:next()
      local w = self:term(env)
      local sg = t.kind == "+" and 1 or -1
      if isparam(v) and isparam(w) and v.p ~= w.p then
        self:err("an angle may depend on one parameter only", t)
      end
      local p = isparam(v) and v.p or w.p
      v = { c = v.c + sg * w.c, s = (v.p == p and v.s or 0) + sg * (w.p == p and w.s or 0), p = p,
            int = v.int and w.int }
    else
      return v
    end
  end
end

local compare = {
  ["=="] = function(a, b) return a == b end, ["!="] = function(a, b) return a ~= b end,
  ["<"] = function(a, b) return a < b end, ["<="] = function(a, b) return a <= b end,
  [">"] = function(a, b) return a > b end, [">="] = function(a, b) return a >= b end,
}

function Parser:comparison(env)
  local v = self:sum(env)
  local t = self:peek()
  if compare[t.kind] then
    self:next()
    local w = self:sum(env)
    if isparam(v) or isparam(w) then self:err("a comparison of parameters is not supported", t) end
    return const(compare[t.kind](v.c, w.c) and 1 or 0, true)
  end
  return v
end

local ends_expr = { [")"] = true, [","] = true, ["]"] = true, [";"] = true }
function Parser:expr(env)
  local t = self.toks[self.pos]
  if t.kind == "num" and ends_expr[self.toks[self.pos + 1].kind] then   -- a lone number: the common case
    self.pos = self.pos + 1
    return const(t.v, math.type(t.v) == "integer")
  end
  local v = self:comparison(env)
  while self:peek().kind == "&&" or self:peek().kind == "||" do
    local t = self:next()
    local w = self:comparison(env)
    if isparam(v) or isparam(w) then self:err("a logical operation on parameters is not supported", t) end
    if t.kind == "&&" then v = const((v.c ~= 0 and w.c ~= 0) and 1 or 0, true)
    else v = const((v.c ~= 0 or w.c ~= 0) and 1 or 0, true) end
  end
  return v
end

-- an integer-valued constant expression (indices, sizes, loop bounds)
function Parser:int_expr(env, what)
  local t = self:peek()
  local v = self:expr(env)
  if isparam(v) then self:err(fmt("%s: a constant expected, got a parameter", what), t) end
  local k = math.tointeger(v.c)
  if not k then self:err(fmt("%s: an integer expected, got %s", what, num(v.c)), t) end
  return k
end

------------------------------------------------------------------------ import: gates
-- qd gate names for QASM names
local alias = { U = "u", u3 = "u", u1 = "p", phase = "p", cu1 = "cp", cphase = "cp", CX = "cx", i = "id",
                cnot = "cx", toffoli = "ccx", fredkin = "cswap" }

-- Gates of the original qelib1.inc and of Qiskit's exports that are not qd gates, as
-- built-in definitions (a file's own definition of the same name replaces them). Each is
-- exact, global phase included, so they are also right under `ctrl @`:
--  cu3 is Qiskit's: exactly controlled-U3 (QASMBench ships a second qelib1.inc whose cu3
--  adds a phase on the control; a file that wants that one defines it). cu is Qiskit's
--  controlled-U with a global phase gamma. c3x, c4x and c3sqrtx are the multi-controlled
--  X and sqrt(X); rccx and rc3x are the relative-phase Toffolis (their phases are part of
--  the gate: Qiskit's matrices, checked in tests/lua/test_qasm.lua).
local library = [[
gate u0(gamma) q { }
gate cu3(theta, phi, lambda) c, t { ctrl @ u(theta, phi, lambda) c, t; }
gate cu(theta, phi, lambda, gamma) c, t { p(gamma) c; ctrl @ u(theta, phi, lambda) c, t; }
gate csx a, b { ctrl @ sx a, b; }
gate c3x a, b, c, d { ctrl(3) @ x a, b, c, d; }
gate c4x a, b, c, d, e { ctrl(4) @ x a, b, c, d, e; }
gate c3sqrtx a, b, c, d { ctrl(3) @ sx a, b, c, d; }
gate rccx a, b, c { h c; p(pi/4) c; cx b, c; p(-pi/4) c; cx a, c; p(pi/4) c; cx b, c; p(-pi/4) c; h c; }
gate rc3x a, b, c, d { h d; p(pi/4) d; cx c, d; p(-pi/4) d; h d; cx a, d; p(pi/4) d; cx b, d; p(-pi/4) d; cx a, d; p(pi/4) d; cx b, d; p(-pi/4) d; h d; p(pi/4) d; cx c, d; p(-pi/4) d; h d; }
gate rzx(theta) a, b { h b; cx a, b; rz(theta) b; cx a, b; h b; }
gate dcx a, b { cx a, b; cx b, a; }
gate iswap a, b { s a; s b; h a; cx a, b; cx b, a; h b; }
gate ccz a, b, c { ctrl(2) @ z a, b, c; }
gate r(theta, phi) a { u(theta, phi - pi/2, -phi + pi/2) a; }
]]

-- Controlled forms and exact decompositions used by `ctrl @` (and `inv @`, `pow(k) @`).
-- A primitive is {g = qd gate, q = qubits, a = angles}, {mcp = angle, ctl = controls, t =
-- target} (a multi-controlled phase), {mcx = true, ctl =, t =} or {gphase = angle}.
local PI = const(math.pi)
local one_ctrl = { y = "cy", h = "ch", rx = "crx", ry = "cry", rz = "crz", swap = "cswap" }
local phase_of = { z = math.pi, s = math.pi / 2, sdg = -math.pi / 2, t = math.pi / 4, tdg = -math.pi / 4 }
local function G(g, q, a) return { g = g, q = q, a = a or {} } end
local function addc(x, y)
  if isparam(x) and isparam(y) and x.p ~= y.p then return nil end
  local p = isparam(x) and x.p or y.p
  return { c = x.c + y.c, s = (x.p == p and x.s or 0) + (y.p == p and y.s or 0), p = p }
end
-- exact decompositions (application order), global phase included
local decomp = {
  y = function(q) return { G("sdg", q), G("x", q), G("s", q) } end,
  h = function(q, _, D) return D.u(q, { const(math.pi / 2), const(0), PI }) end,   -- H = U(pi/2, 0, pi)
  sx = function(q) return { { gphase = const(math.pi / 4) }, G("rx", q, { const(math.pi / 2) }) } end,
  sxdg = function(q) return { { gphase = const(-math.pi / 4) }, G("rx", q, { const(-math.pi / 2) }) } end,
  u = function(q, a)
    local ph = addc(a[2], a[3])
    if not ph then return nil end
    return { { gphase = scale(ph, 0.5) }, G("rz", q, { a[3] }), G("ry", q, { a[1] }), G("rz", q, { a[2] }) }
  end,
  swap = function(q) return { G("cx", { q[1], q[2] }), G("cx", { q[2], q[1] }), G("cx", { q[1], q[2] }) } end,
  cy = function(q) return { G("sdg", { q[2] }), G("cx", q), G("s", { q[2] }) } end,
  ch = function(q) return { G("cz", q), G("cry", q, { const(math.pi / 2) }) } end,
  crz = function(q, a) return { G("p", { q[1] }, { scale(a[1], -0.5) }), G("cp", q, a) } end,
  crx = function(q, a) return { G("h", { q[2] }), G("crz", q, a), G("h", { q[2] }) } end,
  cry = function(q, a) return { G("sdg", { q[2] }), G("crx", q, a), G("s", { q[2] }) } end,
  cswap = function(q) return { G("cx", { q[3], q[2] }), G("ccx", q), G("cx", { q[3], q[2] }) } end,
  rzz = function(q, a) return { G("cx", q), G("rz", { q[2] }, a), G("cx", q) } end,
  rxx = function(q, a)
    return { G("h", { q[1] }), G("h", { q[2] }), G("rzz", q, a), G("h", { q[1] }), G("h", { q[2] }) }
  end,
  ryy = function(q, a)
    local h, mh = { const(math.pi / 2) }, { const(-math.pi / 2) }
    return { G("rx", { q[1] }, h), G("rx", { q[2] }, h), G("rzz", q, a), G("rx", { q[1] }, mh), G("rx", { q[2] }, mh) }
  end,
  ecr = function(q)
    local a, b = { q[1] }, { q[2] }
    return { G("h", b), G("cx", q), G("rz", b, { const(math.pi / 4) }), G("cx", q), G("h", b), G("x", a),
             G("h", b), G("cx", q), G("rz", b, { const(-math.pi / 4) }), G("cx", q), G("h", b) }
  end,
}

local function cat(a, b)
  local r = {}
  for _, x in ipairs(a) do r[#r + 1] = x end
  for _, x in ipairs(b) do r[#r + 1] = x end
  return r
end

-- control(pr, C, out): the primitive pr controlled on the qubits C (all must be 1), exactly
function Parser:control(pr, C, out, tok)
  if pr.gphase then
    local t = C[#C]
    out[#out + 1] = { mcp = pr.gphase, ctl = table.move(C, 1, #C - 1, 1, {}), t = t }
    return
  end
  if pr.mcp then out[#out + 1] = { mcp = pr.mcp, ctl = cat(C, pr.ctl), t = pr.t }; return end
  if pr.mcx then out[#out + 1] = { mcx = true, ctl = cat(C, pr.ctl), t = pr.t }; return end
  local g, q, a = pr.g, pr.q, pr.a
  if g == "id" then return end
  if g == "x" or g == "cx" or g == "ccx" then
    out[#out + 1] = { mcx = true, ctl = cat(C, table.move(q, 1, #q - 1, 1, {})), t = q[#q] }
    return
  end
  if phase_of[g] or g == "p" or g == "cz" or g == "cp" then
    local ang = phase_of[g] and const(phase_of[g]) or (g == "cz" and PI or a[1])
    out[#out + 1] = { mcp = ang, ctl = cat(C, table.move(q, 1, #q - 1, 1, {})), t = q[#q] }
    return
  end
  if #C == 1 and one_ctrl[g] then
    out[#out + 1] = G(one_ctrl[g], cat(C, q), a)
    return
  end
  if g == "rz" or g == "ry" then
    -- C^k R(t) = R(t/2) C^kX R(-t/2) C^kX (X R(-a) X = R(a); the identity when a control is 0)
    out[#out + 1] = G(g, q, { scale(a[1], 0.5) })
    out[#out + 1] = { mcx = true, ctl = C, t = q[1] }
    out[#out + 1] = G(g, q, { scale(a[1], -0.5) })
    out[#out + 1] = { mcx = true, ctl = C, t = q[1] }
    return
  end
  if g == "rx" then   -- H rz H, the H's uncontrolled
    out[#out + 1] = G("h", q)
    self:control(G("rz", q, a), C, out, tok)
    out[#out + 1] = G("h", q)
    return
  end
  local d = decomp[g] and decomp[g](q, a, decomp)
  if not d then self:err(fmt("'ctrl @' on '%s' with these angles is not supported", g), tok) end
  for _, x in ipairs(d) do self:control(x, C, out, tok) end
end

-- the inverse of one primitive
function Parser:invert(pr)
  if pr.gphase then return { gphase = scale(pr.gphase, -1) } end
  if pr.mcp then return { mcp = scale(pr.mcp, -1), ctl = pr.ctl, t = pr.t } end
  if pr.mcx then return pr end
  local rule = self.inverses[pr.g]
  if rule == "negate" then
    local a = {}
    for i, v in ipairs(pr.a) do a[i] = scale(v, -1) end
    return G(pr.g, pr.q, a)
  elseif rule == "u" then
    return G("u", pr.q, { scale(pr.a[1], -1), scale(pr.a[3], -1), scale(pr.a[2], -1) })
  end
  return G(rule, pr.q, pr.a)
end

------------------------------------------------------------------------ import: emitting
-- reserve(k): k more ops are about to be made; refuses when the total would pass max_ops
function Parser:reserve(k, name, tok)
  local total = self.nops + k
  if total > self.max_ops then
    if k > self.max_ops then
      self:err(fmt("gate '%s' expands to more than %d ops, the limit per circuit (max_ops)", name, self.max_ops), tok)
    end
    self:err(fmt("more than %d ops (the limit per circuit, max_ops) at '%s'", self.max_ops, name), tok)
  end
  self.nops = total
end

-- one qd gate into the circuit (under the current `if` condition, if any)
function Parser:native(name, qs, args, tok)
  if self.skipping then return end
  local info = self.qdgates[name]
  self:reserve(1, tok.v, tok)
  local a, nq = self.argbuf, #qs
  for j = 1, nq do a[j] = qs[j] end
  for j = 1, #args do
    local v = args[j]
    if isparam(v) then a[nq + j] = { v.p, scale = v.s, offset = v.c } else a[nq + j] = v.c end
  end
  local S = self.S
  if self.pending then   -- a measurement waits in the builder to be joined with the next
    S:flush()
    self.pending = false
  end
  self.line = tok.line
  self.methods[name](self.circ, table.unpack(a, 1, nq + info.params))
  if self.cond then S:condition(self.cond) end
end

-- a multi-controlled phase and X, in qd gates (exact: Barenco et al. 1995, lemma 7.5 with
-- the phase split in halves): C^k P(l) = CP(l/2)[ck,t] C^{k-1}X[ck] CP(-l/2)[ck,t]
-- C^{k-1}X[ck] C^{k-1}P(l/2)[t]
function Parser:emit_mcp(l, ctl, t, tok)
  local k = #ctl
  if k == 0 then return self:native("p", { t }, { l }, tok) end
  if k == 1 then return self:native("cp", { ctl[1], t }, { l }, tok) end
  local ck, rest = ctl[k], table.move(ctl, 1, k - 1, 1, {})
  self:native("cp", { ck, t }, { scale(l, 0.5) }, tok)
  self:emit_mcx(rest, ck, tok)
  self:native("cp", { ck, t }, { scale(l, -0.5) }, tok)
  self:emit_mcx(rest, ck, tok)
  self:emit_mcp(scale(l, 0.5), rest, t, tok)
end

function Parser:emit_mcx(ctl, t, tok)
  local k = #ctl
  if k == 0 then return self:native("x", { t }, {}, tok) end
  if k == 1 then return self:native("cx", { ctl[1], t }, {}, tok) end
  if k == 2 then return self:native("ccx", { ctl[1], ctl[2], t }, {}, tok) end
  self:native("h", { t }, {}, tok)
  self:emit_mcp(PI, ctl, t, tok)
  self:native("h", { t }, {}, tok)
end

-- ops of a multi-controlled phase / X with k controls (from the recursions above), so that
-- many controls are refused before ~3^k ops are made
local mcp_ops, mcx_ops = { [0] = 1, 1 }, { [0] = 1, 1, 1 }
local function mc_cost(k, x)
  for j = 2, k do
    mcp_ops[j] = mcp_ops[j] or 2 + 2 * (mcx_ops[j - 1] or 2 + mcp_ops[j - 1]) + mcp_ops[j - 1]
    mcx_ops[j] = mcx_ops[j] or 2 + mcp_ops[j]
  end
  return (x and mcx_ops or mcp_ops)[k]
end

function Parser:emit(pr, tok)
  if pr.gphase then return end   -- a global phase: nothing to do unless controlled
  if (pr.mcp or pr.mcx) and mc_cost(#pr.ctl, pr.mcx) > self.max_ops - self.nops then
    self:err(fmt("'%s' with %d controls makes %d ops: more than max_ops (%d) allows", tok.v, #pr.ctl,
                 mc_cost(#pr.ctl, pr.mcx), self.max_ops), tok)
  end
  if pr.mcp then return self:emit_mcp(pr.mcp, pr.ctl, pr.t, tok) end
  if pr.mcx then return self:emit_mcx(pr.ctl, pr.t, tok) end
  return self:native(pr.g, pr.q, pr.a, tok)
end

------------------------------------------------------------------------ import: operands
-- qubit_operand(env) -> list of qubit indices: reg, reg[i], reg[a:b], reg[a:s:b], reg[{i, j}]
-- (env maps a gate's or subroutine's qubit arguments to their lists)
function Parser:qubit_operand(env)
  local t = self:peek()
  if t.kind == "phys" then self:err(fmt("physical qubits ('%s') are not supported: declare a qubit register", t.v), t) end
  t = self:expect("id", "qubit operand")
  local reg = (env and env.qubits and env.qubits[t.v]) or self.qregs[t.v]
  if not reg then
    if self.cregs[t.v] then self:err(fmt("'%s' is a classical register, a qubit operand expected", t.v), t) end
    if self.vars[t.v] then self:err(fmt("'%s' is a classical variable, a qubit operand expected", t.v), t) end
    self:err(fmt("unknown quantum register '%s'", t.v), t)
  end
  if not self:accept("[") then return reg end
  local qs = self:index_list(#reg, t.v, env)
  local r = {}
  for i, k in ipairs(qs) do r[i] = reg[k + 1] end
  return r
end

-- after '[': an index, a range or an index set into a register of size n; returns 0-based
-- indices, the ']' consumed
function Parser:index_list(n, name, env)
  local function check(k, tok)
    if k < 0 then k = k + n end   -- negative indices count from the end (OpenQASM 3)
    if k < 0 or k >= n then
      self:err(fmt("index %s out of range for register '%s' of size %d", num(k), name, n), tok)
    end
    return k
  end
  local r = {}
  if self:accept("{") then
    repeat
      local tk = self:peek()
      r[#r + 1] = check(self:int_expr(env, "index"), tk)
    until not self:accept(",")
    self:expect("}")
    self:expect("]")
    return r
  end
  local tk = self:peek()
  local a = self:peek().kind == ":" and 0 or self:int_expr(env, "index")
  if not self:accept(":") then
    self:expect("]")
    return { check(a, tk) }
  end
  local lo, st, hi = a, 1, n - 1
  if self:peek().kind ~= "]" then
    hi = self:int_expr(env, "range end")
    if self:accept(":") then st, hi = hi, self:int_expr(env, "range end") end
  end
  self:expect("]")
  if st == 0 then self:err("range step 0", tk) end
  if lo < 0 then lo = lo + n end
  if hi < 0 then hi = hi + n end
  for k = lo, hi, st do r[#r + 1] = check(k, tk) end
  if #r == 0 then self:err(fmt("empty range of register '%s'", name), tk) end
  return r
end

-- a classical operand: list of global bit ids
function Parser:bit_operand(env)
  local t = self:expect("id", "classical bit")
  local reg = self.cregs[t.v]
  if not reg then
    if self.qregs[t.v] then self:err(fmt("'%s' is a quantum register, a classical bit expected", t.v), t) end
    if self.vars[t.v] then
      self:err(fmt("measuring into the %s variable '%s' is not supported (measure into a bit register)",
                   self.vars[t.v].type or "classical", t.v), t)
    end
    self:err(fmt("unknown classical register '%s'", t.v), t)
  end
  if not self:accept("[") then return reg end
  local ks = self:index_list(#reg, t.v, env)
  local r = {}
  for i, k in ipairs(ks) do r[i] = reg[k + 1] end
  return r
end

------------------------------------------------------------------------ import: gate calls
-- gate_cost(name) -> an upper bound of the ops one call of gate `name` makes, computed
-- from the definitions without expanding anything (memoised per definition; a later
-- `gate` redefinition starts a new generation). Nesting deeper than M.max_gate_depth (or a
-- recursive definition) is an error.
-- (A modifier's own cost is not counted: `ctrl @` multiplies a gate's ops by a small factor,
-- `pow(k) @` is bounded where it is applied, and every op made counts against max_ops.)
function Parser:gate_cost(name, tok, depth)
  local user = self.gates[name]
  if not user then return 1 end
  if user.cost and user.gen == self.gen then return user.cost end
  if user.busy then self:err(fmt("gate '%s' is defined in terms of itself", name), tok) end
  if depth >= M.max_gate_depth then
    self:err(fmt("gate '%s' nests gate definitions more than %d deep", tok.v, M.max_gate_depth), tok)
  end
  user.busy = true
  local total = 0
  for _, st in ipairs(user.body) do
    if not st.gphase then
      total = total + self:gate_cost(st.name, tok, depth + 1)
    end
    -- stop counting once past any limit (the sum could grow past 2^53 otherwise)
    if total > self.max_ops then total = self.max_ops + 1 break end
  end
  user.busy = false
  user.cost, user.gen = total, self.gen
  return total
end

-- modifiers before a gate name: ctrl[(k)] @, negctrl[(k)] @, inv @, pow(k) @
function Parser:modifiers(env)
  local mods = {}
  while self:peek().kind == "id" do
    local t = self:peek()
    local w = t.v
    if not (w == "ctrl" or w == "negctrl" or w == "inv" or w == "pow") then break end
    local k2 = self:peek(1).kind
    if k2 ~= "@" and k2 ~= "(" then break end
    self:next()
    local m = { kind = w, tok = t, n = 1 }
    if self:accept("(") then
      if w == "inv" then self:err("'inv @' takes no argument", t) end
      if w == "pow" then
        local v = self:expr(env)
        if isparam(v) then self:err("'pow(k) @' with a parameter is not supported", t) end
        m.n = v.c
      else
        m.n = self:int_expr(env, "number of controls")
        if m.n < 1 then self:err(fmt("'%s(k) @' needs k >= 1", w), t) end
      end
      self:expect(")")
    elseif w == "pow" then
      self:err("'pow @' needs an exponent: pow(k) @", t)
    end
    self:expect("@", "'@' after the gate modifier")
    m.n = math.tointeger(m.n) or m.n
    mods[#mods + 1] = m
  end
  return mods
end

-- the number of control qubits the modifiers take
local function ncontrols(mods)
  local k = 0
  for _, m in ipairs(mods) do
    if m.kind == "ctrl" or m.kind == "negctrl" then k = k + m.n end
  end
  return k
end

local u_phase = {
  U = function(a) return scale(a[1], 0.5) end,
  u3 = function(a) return scale(addc(a[2], a[3]) or error("qasm: an angle may depend on one parameter only", 0), -0.5) end,
  u2 = function(a) return scale(addc(a[2], a[3]) or error("qasm: an angle may depend on one parameter only", 0), -0.5) end,
}

-- expand(nt, args, qs, out): gate `nt.v` with angle values args on qubits qs (one
-- instance): its primitives appended to out (a table), or emitted when out is nil. Arity
-- and distinct qubits are checked here, so for every expanded body statement too.
function Parser:expand(nt, args, qs, out)
  local name = nt.v
  local user = self.gates[name]
  local qdname = alias[name] or name
  local info = not user and self.qdgates[qdname]
  if not user and not info and name == "u2" then
    if #args ~= 2 then self:err(fmt("'u2' takes 2 angles, got %d", #args), nt) end
    args = { const(math.pi / 2), args[1], args[2] }
    qdname, info = "u", self.qdgates.u
  end
  local nq, np
  if user then nq, np = #user.qargs, #user.params
  elseif info then nq, np = info.qubits, info.params
  elseif self.opaque[name] then
    self:err(fmt("gate '%s' is declared 'opaque' (no definition): qd cannot simulate it", name), nt)
  elseif self.subs[name] then
    self:err(fmt("'%s' is a subroutine ('def'), not a gate", name), nt)
  else self:err(fmt("unknown gate '%s'", name), nt) end
  if #args ~= np then self:err(fmt("'%s' takes %d angle%s, got %d", name, np, np == 1 and "" or "s", #args), nt) end
  if #qs ~= nq then self:err(fmt("'%s' acts on %d qubit%s, got %d", name, nq, nq == 1 and "" or "s", #qs), nt) end
  for i = 2, #qs do
    for j = 1, i - 1 do
      if qs[i] == qs[j] then self:err(fmt("'%s' on the same qubit twice", name), nt) end
    end
  end
  if not user then
    local pr = G(qdname, qs, args)
    if out then
      -- OpenQASM 3's U is e^{i theta/2} u(theta, phi, lambda) (2 pi-periodic), and its
      -- stdgates.inc u3 and u2 are e^{-i(phi+lambda)/2} u: phases that only `ctrl @` sees,
      -- so only collected primitives carry them (never in an OpenQASM 2 file)
      local ph = self.version ~= 2 and u_phase[name]
      if ph then out[#out + 1] = { gphase = ph(args) } end
      out[#out + 1] = pr
    else
      self:native(qdname, qs, args, nt)
    end
    return
  end
  if self.depth >= M.max_gate_depth then
    self:err(fmt("gate '%s' nests gate definitions more than %d deep", name, M.max_gate_depth), nt)
  end
  self.depth = self.depth + 1
  -- the body was parsed at definition (callee, modifiers, qubit argument positions); only
  -- the angle expressions are read again, from their tokens, with this call's angles
  local benv = {}
  for i, p in ipairs(user.params) do benv[p] = args[i] end
  local toks, pos = self.toks, self.pos
  self.toks = user.toks
  for _, st in ipairs(user.body) do
    local a = {}
    if st.argpos then
      self.pos = st.argpos
      if not self:accept(")") then
        repeat a[#a + 1] = self:expr(benv) until not self:accept(",")
        self:expect(")")
      end
    end
    local mods = {}
    if st.modpos then
      self.pos = st.modpos
      mods = self:modifiers(benv)
    end
    local q = {}
    for i, k in ipairs(st.q) do q[i] = qs[k] end
    if st.gphase then
      if #a ~= 1 then self:err("'gphase' takes 1 angle", st.tok) end
      if out or #mods > 0 then
        if #q ~= ncontrols(mods) then self:err("'gphase' takes one qubit per control", st.tok) end
        self:with_mods(mods, q, function(o) o[#o + 1] = { gphase = a[1] } end, out, st.tok)
      end
    else
      self:call(st.tok, mods, a, q, out)
    end
  end
  self.toks, self.pos = toks, pos
  self.depth = self.depth - 1
end

-- with_mods(mods, q, gen, out, tok): primitives from gen(list) on qubits q (the modifiers'
-- control qubits first), transformed by the modifiers, appended to out or emitted
function Parser:with_mods(mods, q, gen, out, tok)
  local list = {}
  gen(list)
  local k = #q
  -- modifiers apply right to left; control qubits are taken left to right
  local nc = ncontrols(mods)
  local cpos = nc
  for i = #mods, 1, -1 do
    local m = mods[i]
    if m.kind == "inv" then
      local r = {}
      for j = #list, 1, -1 do r[#r + 1] = self:invert(list[j]) end
      list = r
    elseif m.kind == "pow" and math.type(m.n) ~= "integer" then
      list = self:fractional_power(list, m)
    elseif m.kind == "pow" then
      local base = list
      if m.n < 0 then
        base = {}
        for j = #list, 1, -1 do base[#base + 1] = self:invert(list[j]) end
      end
      if #base * math.abs(m.n) > self.max_ops then self:err("'pow(k) @' makes more ops than max_ops", m.tok) end
      list = {}
      if #base > 0 then
        for _ = 1, math.abs(m.n) do for _, x in ipairs(base) do list[#list + 1] = x end end
      end
    else
      local C = table.move(q, cpos - m.n + 1, cpos, 1, {})
      cpos = cpos - m.n
      local r = {}
      if m.kind == "negctrl" then for _, c in ipairs(C) do r[#r + 1] = G("x", { c }) end end
      for _, x in ipairs(list) do self:control(x, C, r, m.tok) end
      if m.kind == "negctrl" then for _, c in ipairs(C) do r[#r + 1] = G("x", { c }) end end
      list = r
    end
  end
  assert(k >= nc)
  for _, x in ipairs(list) do
    if out then out[#out + 1] = x else self:emit(x, tok) end
  end
end

-- pow(k) @ with k not an integer: the principal power, for one rotation or phase (a gate
-- exp(-i t P/2) or diag(1, e^{it}) to the power k is the same gate at k t — exactly so for
-- |t| <= pi, which the principal branch needs) and for x, y, z, s, sdg, t, tdg, sx, sxdg
-- (X^k = e^{i pi k/2} rx(pi k): pow(0.5) @ x is sx, as stdgates.inc defines it)
local scalable = { rx = true, ry = true, rz = true, p = true, rxx = true, ryy = true, rzz = true,
                   crx = true, cry = true, crz = true, cp = true }
local as_rotation = {   -- gate -> {rotation, angle, global phase}
  x = { "rx", math.pi, math.pi / 2 }, y = { "ry", math.pi, math.pi / 2 }, z = { "p", math.pi, 0 },
  s = { "p", math.pi / 2, 0 }, sdg = { "p", -math.pi / 2, 0 }, t = { "p", math.pi / 4, 0 },
  tdg = { "p", -math.pi / 4, 0 }, sx = { "rx", math.pi / 2, math.pi / 4 }, sxdg = { "rx", -math.pi / 2, -math.pi / 4 },
}
local named_power = {   -- exact results that are qd gates
  x = { [0.5] = "sx", [-0.5] = "sxdg" }, z = { [0.5] = "s", [-0.5] = "sdg", [0.25] = "t", [-0.25] = "tdg" },
  s = { [0.5] = "t", [-0.5] = "tdg" }, sdg = { [0.5] = "tdg", [-0.5] = "t" },
}
function Parser:fractional_power(list, m)
  local k = m.n
  local out = {}
  for _, pr in ipairs(list) do
    if #list == 1 and pr.g and named_power[pr.g] and named_power[pr.g][k] then
      out[#out + 1] = G(named_power[pr.g][k], pr.q)
    elseif pr.gphase then
      out[#out + 1] = { gphase = scale(pr.gphase, k) }
    elseif #list == 1 and pr.g and scalable[pr.g] and not isparam(pr.a[1]) and math.abs(pr.a[1].c) <= math.pi then
      out[#out + 1] = G(pr.g, pr.q, { scale(pr.a[1], k) })
    elseif #list == 1 and pr.g and as_rotation[pr.g] then
      local r = as_rotation[pr.g]
      if r[3] ~= 0 then out[#out + 1] = { gphase = const(r[3] * k) } end
      out[#out + 1] = G(r[1], pr.q, { const(r[2] * k) })
    else
      self:err(fmt("'pow(%s) @' with a non-integer power is supported on one rotation or phase gate only", num(k)), m.tok)
    end
  end
  return out
end

-- call(nt, mods, args, qs, out): a gate with modifiers on one instance of its qubits
function Parser:call(nt, mods, args, qs, out)
  if #mods == 0 then return self:expand(nt, args, qs, out) end
  local nc = ncontrols(mods)
  if #qs <= nc then self:err(fmt("'%s' with %d control%s needs more qubits, got %d", nt.v, nc, nc == 1 and "" or "s", #qs), nt) end
  local gq = table.move(qs, nc + 1, #qs, 1, {})
  for i = 2, #qs do
    for j = 1, i - 1 do
      if qs[i] == qs[j] then self:err(fmt("'%s' on the same qubit twice", nt.v), nt) end
    end
  end
  self:with_mods(mods, qs, function(list) self:expand(nt, args, gq, list) end, out, nt)
end

-- a gate call statement (modifiers and name read): angles, operands, register broadcast
function Parser:gate_call(nt, mods, env)
  local name = nt.v
  local args = {}
  if self:accept("(") then
    if not self:accept(")") then
      repeat args[#args + 1] = self:expr(env) until not self:accept(",")
      self:expect(")")
    end
  end
  if name == "gphase" then   -- global phase: no effect on an uncontrolled circuit
    local operands = {}
    if self:peek().kind ~= ";" then
      repeat operands[#operands + 1] = self:qubit_operand(env) until not self:accept(",")
    end
    self:expect(";")
    if ncontrols(mods) > 0 then
      local qs = {}
      for _, o in ipairs(operands) do for _, q in ipairs(o) do qs[#qs + 1] = q end end
      if #qs ~= ncontrols(mods) then self:err("controlled 'gphase' needs one qubit per control", nt) end
      self:with_mods(mods, qs, function(o) o[#o + 1] = { gphase = args[1] or const(0) } end, nil, nt)
    end
    return
  end
  local operands = {}
  repeat operands[#operands + 1] = self:qubit_operand(env) until not self:accept(",")
  self:expect(";")
  -- broadcast over whole registers
  local width = 1
  for _, o in ipairs(operands) do
    if #o > 1 then
      if width > 1 and #o ~= width then self:err("registers of different sizes in one gate call", nt) end
      width = #o
    end
  end
  -- the ops this call makes are counted (user gates from their definitions) before any is made
  local per = self:gate_cost(name, nt, 0)
  if width * per > self.max_ops then
    self:err(fmt("gate '%s' expands to more than %d ops, the limit per circuit (max_ops)", name, self.max_ops), nt)
  end
  for k = 1, width do
    local qs = {}
    for i, o in ipairs(operands) do qs[i] = #o > 1 and o[k] or o[1] end
    self:call(nt, mods, args, qs, nil)
  end
end

------------------------------------------------------------------------ import: statements
function Parser:note(msg, tok)
  if self.noted[msg] then return end
  self.noted[msg] = true
  self.notes[#self.notes + 1] = fmt("qasm:%d: %s", tok.line, msg)
end

-- skip to the end of the statement (its ';'), refusing a '{' or the end of the input
function Parser:skip_statement(t)
  while not self:accept(";") do
    local u = self:peek()
    if u.kind == "eof" or u.kind == "{" or u.kind == "}" then self:err("';' expected", u) end
    self:next()
  end
end

-- the tokens of a { ... } block (the '{' read); returns the position after its '}'
function Parser:skip_block(t)
  local depth = 1
  while depth > 0 do
    local u = self:next()
    if u.kind == "eof" then self:err("'}' expected to close the block of line " .. t.line, u) end
    if u.kind == "{" then depth = depth + 1 elseif u.kind == "}" then depth = depth - 1 end
  end
end

function Parser:type_width(env)
  if self:accept("[") then
    if self:isword("float") then   -- complex[float[64]]
      self:next()
      self:type_width(env)
    else
      self:int_expr(env, "type width")
    end
    self:expect("]")
  end
end

function Parser:gate_def(kw)
  local nt = self:expect("id", "gate name")
  local params, qargs, qpos = {}, {}, {}
  if self:accept("(") then
    if not self:accept(")") then
      repeat params[#params + 1] = self:expect("id", "parameter name").v until not self:accept(",")
      self:expect(")")
    end
  end
  repeat
    local a = self:expect("id", "qubit argument")
    if qpos[a.v] then self:err(fmt("qubit argument '%s' twice in the definition of '%s'", a.v, nt.v), a) end
    qargs[#qargs + 1] = a.v
    qpos[a.v] = #qargs
  until not self:accept(",")
  if kw == "opaque" then
    self:expect(";")
    self.opaque[nt.v] = true
    self.gates[nt.v] = nil
    self.S:block(nt.v)
    return
  end
  self:expect("{")
  local body = {}
  while not self:accept("}") do
    local t = self:peek()
    if t.kind == "eof" then self:err("'}' expected to close gate '" .. nt.v .. "'", t) end
    if t.kind == "id" and t.v == "barrier" then
      self:next()
      self:skip_statement(t)
    else
      if t.kind ~= "id" then self:err(fmt("gate call expected in the body of '%s', got '%s'", nt.v, tostring(t.v)), t) end
      -- the statement's structure now; its angles (and modifiers) are read when it is
      -- expanded (they depend on the call's angles), its callee is looked up then too
      local st = { q = {} }
      if self:peek(1).kind == "@" or ((t.v == "ctrl" or t.v == "negctrl" or t.v == "pow") and self:peek(1).kind == "(") then
        st.modpos = self.pos
        self:modifiers({})
        t = self:peek()
      end
      t = self:expect("id", "gate name")
      st.tok, st.name = t, t.v
      if t.v == "for" or t.v == "if" or t.v == "reset" or t.v == "measure" then
        self:err(fmt("'%s' in the body of gate '%s' is not supported (gate calls only)", t.v, nt.v), t)
      end
      if self:accept("(") then
        st.argpos = self.pos
        local depth = 1
        while depth > 0 do
          local u = self:next()
          if u.kind == "eof" or u.kind == ";" or u.kind == "}" then self:err("')' expected", u) end
          if u.kind == "(" then depth = depth + 1 elseif u.kind == ")" then depth = depth - 1 end
        end
      end
      st.gphase = t.v == "gphase"
      if not (st.gphase and self:peek().kind == ";") then
        repeat
          local u = self:expect("id", "qubit operand")
          if self:peek().kind == "[" then self:err("indexing a gate argument is not supported") end
          local k = qpos[u.v]
          if not k then self:err(fmt("unknown qubit '%s' in gate body", u.v), u) end
          st.q[#st.q + 1] = k
        until not self:accept(",")
      end
      self:expect(";")
      body[#body + 1] = st
    end
  end
  -- A file's own definition of a gate qd knows is checked against qd's matrix: when they
  -- agree (up to a global phase in OpenQASM 2, exactly in OpenQASM 3, where `ctrl @` sees
  -- the phase) qd's gate is used; when they differ the file's definition is used, with a
  -- note. Definitions of the library's gates (cu3, c3x, ...) simply replace them.
  local def = { params = params, qargs = qargs, body = body, toks = self.toks }
  if self:same_as_native(nt, def) then return end
  if self.gates[nt.v] then self.gen = self.gen + 1 end   -- a redefinition: costs change
  if self.gates[nt.v] or self.qdgates[alias[nt.v] or nt.v] or nt.v == "u2" then
    -- gates defined before may call it: their flattened forms in the scanner are stale
    for name, g in pairs(self.gates) do
      if g.macro then g.macro = nil; self.S:block(name) end
    end
  end
  self.gates[nt.v] = def
  self.opaque[nt.v] = nil
  self.S:block(nt.v)
  self:compile_macro(nt.v, def)
end

-- compile_macro(name, def): a definition whose body is plain gate calls (qd gates or gates
-- compiled before) with angles linear in its parameters is flattened and handed to the C
-- scanner, which then expands its calls itself. Linearity is measured (the angles at 0, at
-- each unit vector and at one more point must agree with the linear form to 1e-12);
-- anything else (modifiers, sin(theta), a wrong arity) stays with the Lua expansion, which
-- reports errors at the call.
local PROBE = { 0.3711, -1.2923, 2.0417, -0.6631, 1.5133, -2.2207, 0.9127, -0.4419,
                1.1071, -1.7325, 0.2213, 2.6037, -0.8861, 1.3379, -2.9011, 0.5557 }
function Parser:compile_macro(name, def)
  local np, nq = #def.params, #def.qargs
  if np > 16 or nq > 16 then return end
  local toks, pos, nest = self.toks, self.pos, self.nest
  self.toks = def.toks
  local function angles(st, vals)
    local benv, a = {}, {}
    for i, p in ipairs(def.params) do benv[p] = const(vals[i]) end
    if st.argpos then
      self.pos = st.argpos
      if not self:accept(")") then
        repeat
          local v = self:expr(benv)
          if isparam(v) then error("parameter") end
          a[#a + 1] = v.c
        until not self:accept(",")
        self:expect(")")
      end
    end
    return a
  end
  local ops = {}
  local ok = pcall(function()
    local zero = {}
    for i = 1, np do zero[i] = 0 end
    for _, st in ipairs(def.body) do
      if st.modpos then error("modifiers") end
      if not st.gphase then
        local base, cols = angles(st, zero), {}
        for j = 1, np do
          local e = table.move(zero, 1, np, 1, {})
          e[j] = 1
          cols[j] = angles(st, e)
        end
        local probe = angles(st, PROBE)
        local forms = {}
        for i = 1, #base do
          local f, v = { base[i] }, base[i]
          for j = 1, np do
            f[j + 1] = cols[j][i] - base[i]
            v = v + f[j + 1] * PROBE[j]
          end
          if not (math.abs(v - probe[i]) <= 1e-12 * (1 + math.abs(probe[i]))) then error("not linear") end
          forms[i] = f
        end
        for i = 2, #st.q do
          for j = 1, i - 1 do if st.q[i] == st.q[j] then error("same qubit") end end
        end
        local user = self.gates[st.name]
        if user then
          local sub = user.macro
          if not sub or #forms ~= #user.params or #st.q ~= #user.qargs then error("callee") end
          for _, op in ipairs(sub) do
            local q, fs = {}, {}
            for i, k in ipairs(op[2]) do q[i] = st.q[k + 1] - 1 end
            for i, sf in ipairs(op[3]) do   -- sf over the callee's angles, each linear here
              local f = { sf[1] }
              for j = 1, np do f[j + 1] = 0 end
              for k = 1, #forms do
                local w = sf[k + 1]
                f[1] = f[1] + w * forms[k][1]
                for j = 1, np do f[j + 1] = f[j + 1] + w * forms[k][j + 1] end
              end
              fs[i] = f
            end
            ops[#ops + 1] = { op[1], q, fs }
          end
        else
          local qdname = alias[st.name] or st.name
          if st.name == "u2" then
            local f = { math.pi / 2 }
            for j = 1, np do f[j + 1] = 0 end
            table.insert(forms, 1, f)
            qdname = "u"
          end
          local info = self.qdgates[qdname]
          if not info or info.params ~= #forms or info.qubits ~= #st.q then error("callee") end
          local q = {}
          for i, k in ipairs(st.q) do q[i] = k - 1 end
          ops[#ops + 1] = { qdname, q, forms }
        end
        if #ops > 4096 then error("too long") end
      end
    end
  end)
  self.toks, self.pos, self.nest = toks, pos, nest
  if ok and self.S:macro(name, np, nq, ops) then def.macro = ops end
end

local NOSINK = { flush = function() end, condition = function() end }

-- true if the definition def of gate nt.v is qd's gate of that name (see gate_def)
function Parser:same_as_native(nt, def)
  local name = nt.v
  local qdname = name == "u2" and "u" or alias[name] or name
  local info = self.qdgates[qdname]
  if not info or self.gates[name] then return false end
  local np = name == "u2" and 2 or info.params
  if #def.qargs ~= info.qubits or #def.params ~= np then
    self:note(fmt("gate '%s' defined with %d qubits and %d angles, unlike qd's '%s': the file's definition is used",
                  name, #def.qargs, #def.params, qdname), nt)
    return false
  end
  local vals, args = { 0.3141, -0.7312, 1.1779 }, {}
  for i = 1, np do args[i] = const(vals[i]) end
  local qs = {}
  for i = 1, info.qubits do qs[i] = i - 1 end
  local saved = { self.circ, self.S, self.nops, self.cond, self.skipping, self.pending }
  local tmp = self.qd.circuit(info.qubits)
  self.circ, self.S, self.nops, self.cond, self.skipping, self.pending = tmp, NOSINK, 0, nil, nil, false
  self.gates[name] = def
  local gph = 0   -- the body's global phase (gphase statements), dropped when emitted
  local ok, err = pcall(function()
    local list = {}
    self:expand(nt, args, qs, list)
    for _, pr in ipairs(list) do
      if pr.gphase then gph = gph + pr.gphase.c else self:emit(pr, nt) end
    end
  end)
  self.gates[name] = nil
  self.circ, self.S, self.nops, self.cond, self.skipping, self.pending = table.unpack(saved, 1, 6)
  if not ok then error(err, 0) end
  if name == "u2" then table.insert(vals, 1, math.pi / 2) end
  local U, V = tmp:unitary(), self.qd.gate_matrix(qdname, table.unpack(vals, 1, info.params))
  -- the global phase: from the largest entry of V
  local d, best, br, bi = 2 ^ info.qubits, -1, 0, 0
  for i = 1, d do
    for j = 1, d do
      local x, y = V:get(i, j)
      if x * x + y * y > best then best, br, bi = x * x + y * y, i, j end
    end
  end
  local ur, ui = U:get(br, bi)
  local cr, ci = math.cos(gph), math.sin(gph)
  ur, ui = ur * cr - ui * ci, ur * ci + ui * cr
  local vr, vi = V:get(br, bi)
  local den = vr * vr + vi * vi
  local pr, pi_ = (ur * vr + ui * vi) / den, (ui * vr - ur * vi) / den   -- U/V at that entry
  local dev, exact = 0, math.abs(pr - 1) + math.abs(pi_) < 1e-9
  for i = 1, d do
    for j = 1, d do
      local a, b = U:get(i, j)
      a, b = a * cr - b * ci, a * ci + b * cr
      local x, y = V:get(i, j)
      dev = math.max(dev, math.abs(a - (pr * x - pi_ * y)) + math.abs(b - (pr * y + pi_ * x)))
    end
  end
  if dev < 1e-9 and (exact or self.version ~= 3) then return true end
  self:note(fmt("gate '%s' defined by the file differs from qd's '%s'%s: the file's definition is used", name, qdname,
                dev < 1e-9 and " by a global phase" or ""), nt)
  return false
end

function Parser:declare_qreg(name, size, t)
  self:check_new(name, t)
  if size < 1 or size ~= math.floor(size) then self:err("register size >= 1 expected", t) end
  -- refused here, before a broadcast over the register could make one op per qubit
  if self.nq + size > self.max_qubits then
    self:err(fmt("register '%s' of %s qubits: a circuit has at most %d qubits (qd.max_qubits)%s", name,
                 num(size), self.max_qubits, self.nq > 0 and fmt(", %d declared before", self.nq) or ""), t)
  end
  size = math.tointeger(size)
  local qs = {}
  for k = 1, size do qs[k] = self.nq + k - 1 end
  self.qregs[name] = qs
  self.S:reg(name, self.nq, size)
  self.S:block(name)
  self.nq = self.nq + size
end

function Parser:check_new(name, t)
  -- rawget: a subroutine's own names may shadow the program's (its scope's __index)
  if self.qregs[name] or rawget(self.cregs, name) or rawget(self.vars, name) or self.inputs[name] then
    self:err(fmt("'%s' declared twice", name), t)
  end
end

function Parser:declare_creg(name, size, t)
  self:check_new(name, t)
  if size < 1 or size ~= math.floor(size) or size > 1e6 then self:err("register size 1..1000000 expected", t) end
  size = math.tointeger(size)
  local bits = {}
  for k = 1, size do bits[k] = self.ncbits + k end
  self.ncbits = self.ncbits + size
  self.cregs[name] = bits
  self.S:block(name)
  return bits
end

-- measure qubits qs into bits (a list of bit ids, or nil)
function Parser:measure(qs, bits, t)
  if bits and #bits ~= #qs then
    self:err(fmt("measure: %d qubit%s into %d bit%s", #qs, #qs == 1 and "" or "s", #bits, #bits == 1 and "" or "s"), t)
  end
  if self.cond then self:err("a measurement under 'if' on measured bits is not supported", t) end
  if self.skipping then return end
  self:reserve(1, "measure", t)
  self.line = t.line
  local mi, pos = self.S:measure(qs)
  self.pending = true
  for i, b in ipairs(bits or {}) do self.cbit[b] = { mi, pos + i - 1 } end
end

function Parser:pragma(t)
  local qlist = t.v:match("^qd%s+discard%s+(.*)$")
  if not qlist then return end
  local qs = {}
  for reg, idx in qlist:gmatch("([%a_][%w_]*)%s*%[%s*(%d+)%s*%]") do
    local r = self.qregs[reg]
    if not r then self:err("unknown register in pragma: " .. reg, t) end
    if not r[tonumber(idx) + 1] then self:err("index out of range in pragma: " .. reg .. "[" .. idx .. "]", t) end
    qs[#qs + 1] = r[tonumber(idx) + 1]
  end
  if self.skipping then return end
  if self.S:pending() ~= "measure" then self:err("'pragma qd discard' must follow a measurement", t) end
  if #qs == 0 or not self.S:discard(qs) then
    self:err("'pragma qd discard' must list the qubits of the measurement before it", t)
  end
end

-- `if (cond) body [else body]`: cond on constants (decided now) or on measured bits
-- (a condition carried by each op of the body, evaluated per run)
function Parser:condition(env, t)
  self:expect("(")
  local neg = false
  while self:accept("!") do neg = not neg end
  local w = self:peek()
  -- int[n](c), uint(c), bool(c[i]): a cast of measured bits is their value
  local cast = false
  if w.kind == "id" and (w.v == "int" or w.v == "uint" or w.v == "bool") then
    local k = 1
    if self:peek(1).kind == "[" then k = 4 end
    local inner = self:peek(k + 1)
    if self:peek(k).kind == "(" and inner.kind == "id" and self.cregs[inner.v] then
      self:next()
      self:type_width(env)
      self:expect("(")
      cast, w = true, self:peek()
    end
  end
  if w.kind == "id" and self.cregs[w.v] and not (env and env[w.v]) then
    local bits = self:bit_operand(env)
    if cast then self:expect(")") end
    local val, op = nil, "=="
    if self:peek().kind == "==" or self:peek().kind == "!=" then
      op = self:next().kind
      local vt = self:peek()
      local v = self:sum(env)   -- not a whole expression: `&&` after it is refused below
      val = not isparam(v) and math.tointeger(v.c)
      if not val then self:err(fmt("the value compared with '%s': an integer constant expected", w.v), vt) end
    elseif #bits == 1 then
      val = 1
    else
      val, op = 0, "!="
      self:err(fmt("a condition on the register '%s' needs a value: if (%s == k)", w.v, w.v), w)
    end
    if self:peek().kind ~= ")" then
      self:err(fmt("'%s' in a condition on measured bits is not supported (one comparison of a register or bit)",
                   tostring(self:peek().v)), self:peek())
    end
    self:expect(")")
    if op == "!=" then neg = not neg end
    -- bit i of the register (c[0] least significant, OpenQASM 2's rule) against bit i of val
    local list, static = {}, val >= 0 and val < 2 ^ #bits
    for i, b in ipairs(bits) do
      local want = (val >> (i - 1)) & 1
      local src = self.cbit[b]
      if src then list[#list + 1] = { src[1], src[2], want }
      elseif want ~= 0 then static = false end   -- never measured: 0
    end
    if not static then return neg end          -- statically false (true when negated)
    if #list == 0 then return not neg end      -- statically true
    return { bits = list, neg = neg }
  end
  local v = self:expr(env)
  self:expect(")")
  if isparam(v) then self:err("a condition on a parameter is not supported", t) end
  if neg then return v.c == 0 end
  return v.c ~= 0
end

-- the conjunction of the current condition with c (nil: impossible)
local function conjoin(outer, c)
  if not outer then return c end
  if outer.neg or c.neg then return false end
  local bits = {}
  for _, b in ipairs(outer.bits) do bits[#bits + 1] = b end
  for _, b in ipairs(c.bits) do
    for _, o in ipairs(outer.bits) do
      if o[1] == b[1] and o[2] == b[2] and o[3] ~= b[3] then return nil end
    end
    bits[#bits + 1] = b
  end
  return { bits = bits, neg = false }
end

-- run body (a parser function) under condition c (true/false/dynamic)
function Parser:under(c, t, body)
  local cond, skipping = self.cond, self.skipping
  if c == false or c == nil then
    self.skipping = true
  elseif c ~= true then
    local j = conjoin(self.cond, c)
    if j == false then self:err("nested 'if' on measured bits with 'else' or '!=' is not supported", t) end
    if j == nil then self.skipping = true else self.cond = j end
  end
  body()
  self.cond, self.skipping = cond, skipping
end

function Parser:if_stmt(env, t)
  local c = self:condition(env, t)
  self:under(c, t, function() self:block(env) end)
  if self:isword("else") then
    self:next()
    local nc
    if c == true or c == false then nc = not c
    else nc = { bits = c.bits, neg = not c.neg } end
    self:under(nc, t, function() self:block(env) end)
  end
end

-- a block `{ ... }` or one statement
function Parser:block(env)
  local t = self:peek()
  if self:accept("{") then
    while not self:accept("}") do
      if self:peek().kind == "eof" then self:err("'}' expected to close the block of line " .. t.line, self:peek()) end
      self:statement(env)
    end
  else
    self:statement(env)
  end
end

-- for [type] i in [a:b] / [a:s:b] / {v, ...} body
function Parser:for_stmt(env, t)
  local ty = self:peek()
  if ty.kind == "id" and (ty.v == "int" or ty.v == "uint" or ty.v == "float" or ty.v == "angle") and
     not self:isword("in", 1) then
    self:next()   -- the loop variable's type: for int[32] i in ...
    self:type_width(env)
  end
  local var = self:expect("id", "loop variable")
  local kw = self:expect("id", "'in'")
  if kw.v ~= "in" then self:err("'in' expected, got '" .. kw.v .. "'", kw) end
  local values = {}
  if self:accept("[") then
    local a = self:int_expr(env, "range start")
    self:expect(":")
    local b = self:int_expr(env, "range end")
    local st = 1
    if self:accept(":") then st, b = b, self:int_expr(env, "range end") end
    self:expect("]")
    if st == 0 then self:err("range step 0", t) end
    local count = (b - a) // st + 1
    if count > self.max_ops then self:err(fmt("'for' loop of %d iterations: more than max_ops (%d)", count, self.max_ops), t) end
    for k = a, b, st do values[#values + 1] = k end
  elseif self:accept("{") then
    repeat values[#values + 1] = self:int_expr(env, "loop value") until not self:accept(",")
    self:expect("}")
  else
    self:err("'for' over a range [a:b] or a set {..} expected", self:peek())
  end
  self.iters = self.iters + #values
  if self.iters > self.max_ops then self:err(fmt("more than %d loop iterations (max_ops)", self.max_ops), t) end
  local start = self.pos
  local saved = self.vars[var.v]
  if #values == 0 then
    self:under(false, t, function() self:block(env) end)
  end
  for _, k in ipairs(values) do
    self.pos = start
    self.vars[var.v] = { v = const(k, true), const = true }
    self:block(env)
  end
  self.vars[var.v] = saved
end

-- def name(params) [-> type] { body }: a subroutine, expanded at each call
function Parser:def_stmt(t)
  local nt = self:expect("id", "subroutine name")
  self:check_new(nt.v, nt)
  self:expect("(")
  local params = {}
  if not self:accept(")") then
    repeat
      local ty = self:expect("id", "parameter type")
      local p = { kind = ty.v == "qubit" and "qubit" or "classical" }
      if ty.v == "const" or ty.v == "readonly" or ty.v == "mutable" then
        ty = self:expect("id", "parameter type")
      end
      if ty.v ~= "qubit" and ty.v ~= "float" and ty.v ~= "angle" and ty.v ~= "int" and ty.v ~= "uint" and ty.v ~= "bool" then
        self:err(fmt("subroutine parameter of type '%s' is not supported", ty.v), ty)
      end
      if p.kind == "qubit" and self:accept("[") then
        p.size = self:int_expr(nil, "register size")
        self:expect("]")
      elseif p.kind ~= "qubit" then
        self:type_width()
      end
      p.name = self:expect("id", "parameter name").v
      params[#params + 1] = p
    until not self:accept(",")
    self:expect(")")
  end
  local ret
  if self:accept("->") then   -- measured bits may be returned: -> bit, -> bit[n]
    local ty = self:expect("id", "return type")
    if ty.v ~= "bit" then self:err(fmt("subroutines returning a value ('-> %s') are not supported", ty.v), ty) end
    ret = 1
    if self:accept("[") then
      ret = self:int_expr(nil, "return size")
      self:expect("]")
    end
  end
  local open = self:expect("{")
  local body = self.pos
  self:skip_block(open)
  self.subs[nt.v] = { params = params, toks = self.toks, body = body, tok = nt, ret = ret }
  self.S:block(nt.v)
end

function Parser:sub_call(nt, env, as_value)
  local sb = self.subs[nt.v]
  if sb.busy then self:err(fmt("subroutine '%s' calls itself (recursion is not supported)", nt.v), nt) end
  if self.depth >= M.max_gate_depth then self:err(fmt("subroutine '%s' nests calls more than %d deep", nt.v, M.max_gate_depth), nt) end
  self:expect("(")
  local benv = { qubits = {} }
  for i, p in ipairs(sb.params) do
    if i > 1 then self:expect(",") end
    if p.kind == "qubit" then
      local qs = self:qubit_operand(env)
      if #qs ~= (p.size or 1) then
        self:err(fmt("argument %d of '%s': %d qubit%s expected, got %d", i, nt.v, p.size or 1, (p.size or 1) == 1 and "" or "s", #qs), nt)
      end
      benv.qubits[p.name] = qs
    else
      benv[p.name] = self:expr(env)
    end
  end
  if self:peek().kind == "," then self:err(fmt("'%s' takes %d argument%s", nt.v, #sb.params, #sb.params == 1 and "" or "s"), nt) end
  self:expect(")")
  if not as_value then self:expect(";") end
  local toks, pos, ret, ret_bits = self.toks, self.pos, self.ret, self.ret_bits
  -- its own scope for classical names (bit registers and variables declared in the body)
  local cregs, vars = self.cregs, self.vars
  self.cregs, self.vars = setmetatable({}, { __index = cregs }), setmetatable({}, { __index = vars })
  sb.busy, self.depth = true, self.depth + 1
  self.toks, self.pos, self.ret, self.ret_bits = sb.toks, sb.body, false, nil
  local skipping = self.skipping
  while not self:accept("}") do
    self:statement(benv)
    if self.ret then self.skipping = true end
  end
  local got = self.ret_bits
  self.skipping = skipping
  sb.busy, self.depth = false, self.depth - 1
  self.toks, self.pos, self.ret, self.ret_bits = toks, pos, ret, ret_bits
  self.cregs, self.vars = cregs, vars
  if as_value then
    if not sb.ret then self:err(fmt("subroutine '%s' returns no value", nt.v), nt) end
    if not got and not self.skipping then self:err(fmt("subroutine '%s' ended without 'return'", nt.v), nt) end
    if got and #got ~= sb.ret then self:err(fmt("subroutine '%s' returned %d bits, declared %d", nt.v, #got, sb.ret), nt) end
    return got or {}
  end
end

-- bits = f(args): the bits a subroutine returned, copied (each names the measurement that
-- wrote it)
function Parser:assign_bits(bits, nt, env)
  local src = self:sub_call(nt, env, true)
  if #src ~= #bits and not self.skipping then
    self:err(fmt("'%s' returns %d bits into %d", nt.v, #src, #bits), nt)
  end
  if self.skipping then return end
  if self.cond then self:err("assigning measured bits under 'if' on measured bits is not supported", nt) end
  for i, b in ipairs(bits) do self.cbit[b] = self.cbit[src[i]] end
end

-- a classical declaration: [const] type[width] name [= expr];  (the type word read)
function Parser:classical_decl(ty, env, const_)
  if ty.v == "complex" or ty.v == "array" then self:err(fmt("'%s' variables are not supported", ty.v), ty) end
  self:type_width(env)
  local nm = self:expect("id", "variable name")
  self:check_new(nm.v, nm)
  local v
  if self:accept("=") then
    if self:isword("measure") then
      self:err(fmt("measuring into a '%s' variable is not supported (measure into a bit register)", ty.v), nm)
    end
    v = self:expr(env)
  elseif const_ then
    self:err(fmt("constant '%s' needs a value", nm.v), nm)
  else
    v = const(0, ty.v == "int" or ty.v == "uint" or ty.v == "bool")
  end
  self:expect(";")
  if ty.v == "int" or ty.v == "uint" then
    if isparam(v) then self:err(fmt("integer '%s' cannot hold a parameter", nm.v), nm) end
    local x = v.c >= 0 and math.floor(v.c) or math.ceil(v.c)
    v = const(math.tointeger(x) or x, true)
  elseif ty.v == "bool" then
    v = const(v.c ~= 0 and 1 or 0, true)
  else
    v = { c = v.c, s = v.s, p = v.p }
  end
  self.vars[nm.v] = { v = v, const = const_, type = ty.v }
  self.S:block(nm.v)
end

-- bit[n] name [= measure q];  /  qubit[n] name;
function Parser:size_expr(env)
  local t = self:peek()
  local v = self:expr(env)
  if isparam(v) then self:err("register size: a constant expected, got a parameter", t) end
  return v.c
end

function Parser:reg_decl(w, env)
  local sz, sized = 1, false
  if self:accept("[") then
    sz = self:size_expr(env)
    self:expect("]")
    sized = true
  end
  local nm = self:expect("id", "register name")
  if w == "qubit" then
    self:expect(";")
    return self:declare_qreg(nm.v, sz, nm)
  end
  local bits = self:declare_creg(nm.v, sz, nm)
  if self:accept("=") then
    local m = self:peek()
    if m.kind == "id" and self.subs[m.v] and self:peek(1).kind == "(" then
      self:next()
      self:assign_bits(bits, m, env)
      return self:expect(";")
    end
    if not self:isword("measure") then
      self:err(fmt("initialising the bits of '%s' is not supported (only '= measure ...')", nm.v), m)
    end
    self:next()
    local qs = self:qubit_operand(env)
    self:expect(";")
    if not sized and #qs > 1 then self:err(fmt("measure: %d qubits into 1 bit", #qs), m) end
    return self:measure(qs, bits, m)
  end
  self:expect(";")
end

-- statements that are one keyword; each gets (self, t, env)
local stmt = {}

stmt.OPENQASM = function(self)
  local v = self:expect("num", "version")
  if math.floor(v.v) ~= 2 and math.floor(v.v) ~= 3 then self:err("OpenQASM version 2 or 3 expected", v) end
  self:expect(";")
  self.version = math.floor(v.v)
end
stmt.include = function(self, t)
  local f = self:expect("str", "file name")
  self:expect(";")
  if f.v ~= "qelib1.inc" and f.v ~= "stdgates.inc" then
    self:err(fmt("include \"%s\": only qelib1.inc and stdgates.inc are known (built in)", f.v), t)
  end
end
stmt.qreg = function(self, t, env)
  local nm = self:expect("id", "register name")
  self:expect("[")
  local sz = self:size_expr(env)
  self:expect("]")
  self:expect(";")
  self:declare_qreg(nm.v, sz, nm)
end
stmt.creg = function(self, t, env)
  local nm = self:expect("id", "register name")
  self:expect("[")
  local sz = self:size_expr(env)
  self:expect("]")
  self:expect(";")
  self:declare_creg(nm.v, sz, nm)
end
stmt.qubit = function(self, t, env) self:reg_decl("qubit", env) end
stmt.bit = function(self, t, env) self:reg_decl("bit", env) end
stmt.input = function(self)
  local ty = self:expect("id", "type")
  if ty.v ~= "float" and ty.v ~= "angle" then
    self:err(fmt("input of type '%s' is not supported: input float[..] or angle[..] parameters only", ty.v), ty)
  end
  self:type_width()
  local nm = self:expect("id", "parameter name")
  self:expect(";")
  if self.inputs[nm.v] then self:err(fmt("parameter '%s' declared twice", nm.v), nm) end
  self:check_new(nm.v, nm)
  self.inputs[nm.v] = true
  self.circ:param(nm.v)
  self.S:block(nm.v)
end
stmt.output = function(self, t, env)
  local ty = self:expect("id", "type")
  if ty.v == "bit" then return self:reg_decl("bit", env) end
  if ty.v == "qubit" then self:err("'output qubit' is not valid OpenQASM", ty) end
  self:classical_decl(ty, env, false)
end
stmt.const = function(self, t, env)
  local ty = self:expect("id", "type")
  self:classical_decl(ty, env, true)
end
for _, w in ipairs { "int", "uint", "float", "angle", "bool", "complex", "array" } do
  stmt[w] = function(self, t, env) self:classical_decl(t, env, false) end
end
stmt.gate = function(self) self:gate_def("gate") end
stmt.opaque = function(self) self:gate_def("opaque") end
stmt.barrier = function(self, t) self:skip_statement(t) end
stmt.measure = function(self, t, env)
  local qs = self:qubit_operand(env)
  local bits
  if self:accept("->") then bits = self:bit_operand(env) end
  self:expect(";")
  self:measure(qs, bits, t)
end
stmt.reset = function(self, t, env)
  local qs = self:qubit_operand(env)
  self:expect(";")
  if self.cond then self:err("'reset' under 'if' on measured bits is not supported", t) end
  if self.skipping then return end
  self:reserve(1, "reset", t)
  self.line = t.line
  self.S:measure(qs, true)
  self.pending = true
end
stmt["if"] = function(self, t, env) self:if_stmt(env, t) end
stmt["for"] = function(self, t, env) self:for_stmt(env, t) end
stmt.def = function(self, t) self:def_stmt(t) end
stmt["return"] = function(self, t, env)
  if self.depth == 0 then self:err("'return' outside a subroutine", t) end
  if self:peek().kind ~= ";" then
    local bits
    if self:isword("measure") then   -- return measure q;
      local m = self:next()
      local qs = self:qubit_operand(env)
      bits = {}
      for k = 1, #qs do bits[k] = self.ncbits + k end
      self.ncbits = self.ncbits + #qs
      self:measure(qs, bits, m)
    elseif self:peek().kind == "id" and self.cregs[self:peek().v] then
      bits = self:bit_operand(env)
    else
      self:err("a subroutine may return measured bits only ('return b;' or 'return measure q;')", t)
    end
    if not self.skipping then self.ret_bits = bits end
  end
  self:expect(";")
  self.ret = true
end
stmt.let = function(self, t, env)
  local nm = self:expect("id", "alias name")
  self:check_new(nm.v, nm)
  self:expect("=")
  local qs = {}
  repeat
    for _, q in ipairs(self:qubit_operand(env)) do qs[#qs + 1] = q end
  until not self:accept("||")
  self:expect(";")
  self.qregs[nm.v] = qs
  self.S:block(nm.v)
end
-- timing: parsed, ignored (qd simulates no time), with a note
stmt.delay = function(self, t)
  self:note("'delay' ignored (qd does not simulate timing)", t)
  self:skip_timing(t)
end
-- a timing statement: to its ';', over balanced braces (durationof({ ... }))
function Parser:skip_timing(t)
  local depth = 0
  while true do
    local u = self:next()
    if u.kind == "eof" then self:err("';' expected", u) end
    if u.kind == "{" then depth = depth + 1
    elseif u.kind == "}" then
      depth = depth - 1
      if depth < 0 then self:err("';' expected", u) end
    elseif u.kind == ";" and depth == 0 then return end
  end
end
for _, w in ipairs { "duration", "stretch" } do
  stmt[w] = function(self, t)
    self:note(fmt("'%s' ignored (qd does not simulate timing)", w), t)
    self:skip_timing(t)
  end
end
stmt.box = function(self, t, env)
  self:note("'box' timing ignored (its statements run)", t)
  if self:accept("[") then
    while not self:accept("]") do
      if self:peek().kind == "eof" then self:err("']' expected", self:peek()) end
      self:next()
    end
  end
  if self:peek().kind ~= "{" then self:err("'{' expected after 'box'", self:peek()) end
  self:block(env)
end
stmt["end"] = function(self)
  self:expect(";")
  self.ended = true
end
local refused = {
  ["while"] = "'while' loops are not supported (only 'for' over a range or set)",
  switch = "'switch' is not supported",
  extern = "'extern' functions are not supported",
  defcal = "'defcal' (pulse-level calibration) is not supported",
  defcalgrammar = "'defcalgrammar' (pulse-level calibration) is not supported",
  cal = "'cal' (pulse-level calibration) is not supported",
  ["break"] = "'break' is not supported",
  ["continue"] = "'continue' is not supported",
  ["else"] = "'else' without 'if'",
}

-- name = expr; name op= expr; bits = measure q;
function Parser:assignment(t, env)
  local w = t.v
  if self.cregs[w] then
    local bits = self.cregs[w]
    if self:accept("[") then
      local ks = self:index_list(#bits, w, env)
      local r = {}
      for i, k in ipairs(ks) do r[i] = bits[k + 1] end
      bits = r
    end
    local eq = self:expect("=", "'='")
    local m = self:peek()
    if m.kind == "id" and self.subs[m.v] and self:peek(1).kind == "(" then
      self:next()
      self:assign_bits(bits, m, env)
      return self:expect(";")
    end
    if not self:isword("measure") then
      self:err(fmt("assigning a value to the bits of '%s' is not supported (only '%s = measure ...')", w, w), eq)
    end
    self:next()
    local qs = self:qubit_operand(env)
    self:expect(";")
    return self:measure(qs, bits, m)
  end
  local var = self.vars[w]
  if var.const then self:err(fmt("'%s' is a constant", w), t) end
  local op = self:next()
  local v = self:expr(env)
  self:expect(";")
  if self.cond then self:err(fmt("assigning '%s' under 'if' on measured bits is not supported", w), t) end
  if self.skipping then return end
  local old = var.v
  if op.kind == "+=" then v = addc(old, v) or self:err("an angle may depend on one parameter only", op)
  elseif op.kind == "-=" then v = addc(old, scale(v, -1)) or self:err("an angle may depend on one parameter only", op)
  elseif op.kind == "*=" or op.kind == "/=" then
    if isparam(v) then self:err("product of parameters is not supported", op) end
    if op.kind == "/=" and v.c == 0 then self:err("division by zero", op) end
    v = scale(old, op.kind == "*=" and v.c or 1 / v.c)
  end
  if var.type == "int" or var.type == "uint" then
    if isparam(v) then self:err(fmt("integer '%s' cannot hold a parameter", w), t) end
    local x = v.c >= 0 and math.floor(v.c) or math.ceil(v.c)
    v = const(math.tointeger(x) or x, true)
  end
  var.v = v
end

local assign_ops = { ["="] = true, ["+="] = true, ["-="] = true, ["*="] = true, ["/="] = true }

function Parser:statement(env)
  local t = self:next()
  self.line = t.line
  if t.kind == "pragma" then return self:pragma(t) end
  if t.kind == "@" then   -- an annotation: ignored with its line
    self:note("annotations ('@...') ignored", t)
    local line = t.line
    while self:peek().line == line and self:peek().kind ~= "eof" do self:next() end
    return
  end
  if t.kind == "{" then   -- a bare block (scope)
    self.pos = self.pos - 1
    return self:block(env)
  end
  if t.kind ~= "id" then self:err(fmt("statement expected, got '%s'", tostring(t.v)), t) end
  local w = t.v
  local nk = self:peek().kind
  if refused[w] then self:err(refused[w], t) end
  if (self.cregs[w] and (nk == "=" or nk == "[")) or (self.vars[w] and assign_ops[nk]) then
    return self:assignment(t, env)
  end
  local f = stmt[w]
  if f and not self.gates[w] then return f(self, t, env) end
  if self.subs[w] and nk == "(" then return self:sub_call(t, env) end
  if self.vars[w] or self.inputs[w] then
    self:err(fmt("'%s' is a classical variable; a statement expected", w), t)
  end
  -- a gate call, maybe after modifiers
  self.pos = self.pos - 1
  local mods = self:modifiers(env)
  local nt = self:expect("id", "gate name")
  if #mods > 0 and (stmt[nt.v] or self.subs[nt.v]) and nt.v ~= "gphase" then
    self:err(fmt("gate modifier '%s @' on '%s', which is not a gate", mods[1].kind, nt.v), nt)
  end
  if #mods == 0 and nt.kind == "id" and self:peek().kind == "id" and not self.qregs[self:peek().v]
     and not (env and env.qubits and env.qubits[self:peek().v]) and not self.gates[nt.v]
     and not self.qdgates[alias[nt.v] or nt.v] and nt.v ~= "u2" then
    -- `word name ...` where word is no gate: a declaration of a type qd does not know
    self:err(fmt("unknown gate or type '%s'", nt.v), nt)
  end
  self:gate_call(nt, mods, env)
end

------------------------------------------------------------------------ import: driver
-- Limits, checked before the work they bound is done (a user gate's expansion is counted
-- from the definitions before it is expanded): ops in one circuit (gate calls after
-- expansion, measurements, resets; loop iterations too), nesting of gate definitions and
-- subroutine calls, nesting of parentheses and signs in one expression. Raise max_ops here
-- (require("qd.qasm").max_ops = ...) or per call with from_qasm's {max_ops = } option.
M.max_ops = 1000000
M.max_gate_depth = 32
M.max_nesting = 200

local from_opts = { max_ops = true, fast = true }
local core = require "qd.core"

local function check_opts(qd, opts, nextra)
  local max_ops, fast = M.max_ops, true
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("bad argument #2 to 'from_qasm' (options table expected, got " .. qd.type(opts) .. ")", outside())
    end
    for k in pairs(opts) do
      if not from_opts[k] then
        error("bad argument #2 to 'from_qasm' (unknown option '" .. tostring(k) .. "'; known: max_ops, fast)", outside())
      end
    end
    if opts.max_ops ~= nil then
      max_ops = opts.max_ops
      if math.type(max_ops) ~= "integer" or max_ops < 1 then
        error("bad argument #2 to 'from_qasm' (option 'max_ops': integer >= 1 expected, got " .. tostring(max_ops) .. ")", outside())
      end
    end
    if opts.fast ~= nil then
      if type(opts.fast) ~= "boolean" then
        error("bad argument #2 to 'from_qasm' (option 'fast': boolean expected, got " .. type(opts.fast) .. ")", outside())
      end
      fast = opts.fast
    end
  end
  if nextra > 0 then error("bad argument #3 to 'from_qasm' (unexpected extra argument)", outside()) end
  return max_ops, fast
end

local function new_parser(qd, text, max_ops)
  local circ = qd.circuit(qd.max_qubits)
  local S = core.qasm_builder(text, circ)
  local qdgates = qd.gates()
  for name in pairs(qdgates) do S:allow(name, name) end
  for a, g in pairs(alias) do S:allow(a, g) end
  S:allow("u2", "u", true)
  local p = setmetatable({
    qd = qd, S = S, circ = circ, qregs = {}, cregs = {}, ncbits = 0, cbit = {}, nq = 0, vars = {}, inputs = {},
    gates = {}, subs = {}, opaque = {}, qdgates = qdgates, notes = {}, noted = {}, argbuf = {},
    nops = 0, max_ops = max_ops, max_qubits = qd.max_qubits, gen = 0, nest = 0, depth = 0, iters = 0,
    line = 1, methods = core.metatables["qd.Circuit"].methods, pending = false, inverses = core.gate_inverses(),
  }, Parser)
  -- the built-in gates that are not qd gates (cu3, c3x, ...), defined like a file's own
  p.toks, p.pos = lex(library, 1, 1), 1
  while p:peek().kind ~= "eof" do p:statement() end
  p.gen = 0
  return p
end

function M.from_qasm(qd, text, opts, ...)
  if type(text) ~= "string" then
    error("bad argument #1 to 'from_qasm' (string expected, got " .. type(text) .. ")", outside())
  end
  local max_ops, fast = check_opts(qd, opts, select("#", ...))
  local p = new_parser(qd, text, max_ops)
  local S = p.S
  local ok, err = pcall(function()
    local pos, line = 1, 1
    p.toks, p.pos = lex(text, 1, 1), 1
    while not p.ended do
      if fast then
        local npos, nline, added = S:scan(pos, line, p.max_ops - p.nops)
        p.nops = p.nops + added
        if added > 0 then p.pending = false end
        -- the token stream goes on unless the scanner read a statement (then lex anew from
        -- where it stopped: a stream per statement would cost the Lua path its speed)
        if npos ~= pos and p.toks[p.pos].s < npos then p.toks, p.pos = lex(text, npos, nline), 1 end
        pos, line = npos, nline
      end
      if p:peek().kind == "eof" then break end
      p:statement(nil)
      local last = p.toks[p.pos - 1]
      pos, line = last.e + 1, last.line
    end
  end)
  if not ok then
    err = tostring(err)
    if not err:find("^qasm:") then err = fmt("qasm:%d: %s", p.line, (err:gsub("^.-:%d+: ", ""))) end
    error(err, 0)
  end
  if p.nq == 0 then error("qasm:1: no qubit register declared", 0) end
  S:finish(p.nq)
  if #p.notes > 0 then return p.circ, p.notes end
  return p.circ
end

------------------------------------------------------------------------ draw
local label_plain
local function label_of(op, names)
  if op.condition then return "?" .. label_plain(op, names) end   -- runs if measured bits say so
  return label_plain(op, names)
end
function label_plain(op, names)
  if op.kind == "measure" then return op.discard and "M>" or "M" end
  if op.kind == "reset" then return "|0>" end
  if op.kind == "unitary" then return op.name end
  if op.kind == "channel" then return "~" .. op.name:match("^[^(]*") end   -- noise: ~amplitude_damping
  local args = {}
  for i, p in ipairs(op.params or {}) do
    if p.value then args[i] = fmt("%.4g", p.value)
    else
      local s = names[p.slot]
      if p.scale ~= 1 then s = (p.scale == -1 and "-" or fmt("%.3g*", p.scale)) .. s end
      if p.offset ~= 0 then s = s .. fmt("%+.3g", p.offset) end
      args[i] = s
    end
  end
  return op.name:upper() .. (#args > 0 and ("(" .. table.concat(args, ",") .. ")") or "")
end

local controlled = { cx = "X", cy = "Y", cz = "*", ch = "H", crx = "RX", cry = "RY", crz = "RZ", cp = "P" }

function M.draw(c)
  local n = c.n
  local ops = c:ops()
  local names = {}
  local given = c:param_names()
  for i = 1, c:nparams() do names[i] = given[i] or ("#" .. i) end
  local cols = {}          -- cols[k] = { [q] = text }
  local level = {}         -- first free column per qubit
  local gone = {}
  for q = 0, n - 1 do level[q] = 1 end
  for _, op in ipairs(ops) do
    local lo, hi = math.huge, -math.huge
    for _, q in ipairs(op.qubits) do lo = math.min(lo, q); hi = math.max(hi, q) end
    local col = 1
    for q = lo, hi do col = math.max(col, level[q]) end
    cols[col] = cols[col] or {}
    local cell = cols[col]
    local lab = label_of(op, names)
    local inop = {}
    for i, q in ipairs(op.qubits) do inop[q] = i end
    if op.kind == "gate" and controlled[op.name] then
      local tname = controlled[op.name]
      local rest = lab:match("^C%u+(%(.*%))$") or ""
      cell[op.qubits[1]] = "*"
      cell[op.qubits[2]] = tname == "*" and "*" or (tname .. rest)
    elseif op.kind == "gate" and (op.name == "ccx" or op.name == "cswap") then
      cell[op.qubits[1]] = "*"
      if op.name == "ccx" then cell[op.qubits[2]] = "*"; cell[op.qubits[3]] = "X"
      else cell[op.qubits[2]] = "x"; cell[op.qubits[3]] = "x" end
    elseif op.kind == "gate" and op.name == "swap" then
      cell[op.qubits[1]] = "x"; cell[op.qubits[2]] = "x"
    else
      for i, q in ipairs(op.qubits) do
        cell[q] = (#op.qubits > 1 and op.kind ~= "measure" and op.kind ~= "reset") and (lab .. ":" .. (i - 1)) or lab
      end
    end
    for q = lo, hi do
      if not inop[q] then cell[q] = "|" end
      level[q] = col + 1
    end
    if op.kind == "measure" and op.discard then
      for _, q in ipairs(op.qubits) do gone[q] = col end
    end
  end
  local lines = {}
  for q = 0, n - 1 do lines[q] = { fmt("q%d: ", q) } end
  local w0 = #fmt("q%d: ", n - 1)
  for q = 0, n - 1 do lines[q][1] = lines[q][1] .. string.rep(" ", w0 - #lines[q][1]) end
  local ncol = 0
  for k in pairs(cols) do ncol = math.max(ncol, k) end
  for k = 1, ncol do
    local cell = cols[k] or {}
    local w = 1
    for q = 0, n - 1 do if cell[q] then w = math.max(w, #cell[q]) end end
    for q = 0, n - 1 do
      local wire = (gone[q] and k > gone[q]) and " " or "-"
      local s = cell[q]
      if s then
        local pad = w - #s
        s = string.rep(wire, pad // 2) .. s .. string.rep(wire, pad - pad // 2)
      else
        s = string.rep(wire, w)
      end
      lines[q][#lines[q] + 1] = wire .. s .. wire
    end
  end
  local out = {}
  for q = 0, n - 1 do out[#out + 1] = (table.concat(lines[q], "") .. "-"):gsub("%s+%-$", "") end
  return table.concat(out, "\n")
end

return M
