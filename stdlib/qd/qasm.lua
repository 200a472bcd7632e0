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
  sxdg = "gate sxdg a { s a; h a; s a; }",
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
  for _, op in ipairs(ops) do
    local qs = {}
    for i, q in ipairs(op.qubits) do qs[i] = fmt("q[%d]", q) end
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
  end
  return table.concat(out, "\n") .. "\n"
end

------------------------------------------------------------------------ import: lexer
-- Linear in the length of the text: every pattern is anchored and either matches a run of
-- one character class or a fixed string, so nothing backtracks over a long run (the old
-- number pattern "%d*%.?%d*[eE]..." retried every split of a digit run: quadratic), and
-- runs of blanks are skipped with one find.
local find, sub, byte = string.find, string.sub, string.byte
local single = {}
for ch in ("()[]{},;=+-*/@^"):gmatch(".") do single[byte(ch)] = ch end

local function count_newlines(text, i, j)
  local _, k = sub(text, i, j):gsub("\n", "")
  return k
end

-- lex(text) -> toks: toks[k] is the k-th token {kind, v, line}, made on first use, so a
-- parse that fails early never tokenizes the rest (a bad 1 MB input costs microseconds).
-- The last token is {kind = "eof"}; indices past it are nil.
local function lex(text)
  local toks, i, line, n = {}, 1, 1, #text
  local count, done = 0, false
  local function push(kind, v)
    count = count + 1
    rawset(toks, count, { kind = kind, v = v, line = line })
  end
  -- lex until token k exists (or the text ends)
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
      local rest = sub(text, i, e)
      local prag = rest:match("^//%s*(pragma%s+qd%s+.*)$")
      if prag then push("pragma", (prag:gsub("^pragma%s+", ""))) end
      i = e + 1
    elseif b == 47 and byte(text, i + 1) == 42 then               -- /* comment */
      local j = find(text, "*/", i + 2, true)
      if not j then error(fmt("qasm:%d: unterminated comment", line), 0) end
      line = line + count_newlines(text, i, j)
      i = j + 2
    elseif (b == 35 or b == 112) and find(text, "^#?pragma[ \t]", i) then
      local _, e = find(text, "^#?pragma[^\n]*", i)
      push("pragma", (sub(text, i, e):match("^#?pragma[ \t]+(.*)$")))
      i = e + 1
    elseif (b >= 65 and b <= 90) or (b >= 97 and b <= 122) or b == 95 then
      local _, e = find(text, "^[%a_][%w_]*", i)
      push("id", sub(text, i, e)); i = e + 1
    elseif (b >= 48 and b <= 57) or (b == 46 and find(text, "^%d", i + 1)) then
      -- digits [. digits] [e [+-] digits], each part one greedy run
      local _, e = find(text, "^%d*", i)
      if byte(text, e + 1) == 46 then _, e = find(text, "^%d*", e + 2) end
      local _, ee = find(text, "^[eE][%+%-]?%d+", e + 1)
      e = ee or e
      local w = sub(text, i, e)
      local v = tonumber(w)
      if not v then error(fmt("qasm:%d: bad number '%s'", line, #w > 40 and w:sub(1, 40) .. "..." or w), 0) end
      push("num", v); i = e + 1
    elseif b == 34 then                                              -- "string"
      local j = find(text, '"', i + 1, true)
      if not j then error(fmt("qasm:%d: unterminated string", line), 0) end
      push("str", sub(text, i + 1, j - 1))
      line = line + count_newlines(text, i, j)
      i = j + 1
    elseif b == 45 and byte(text, i + 1) == 62 then
      push("->", "->"); i = i + 2
    elseif b == 42 and byte(text, i + 1) == 42 then
      push("**", "**"); i = i + 2
    elseif single[b] then
      push(single[b], single[b]); i = i + 1
    elseif b == 207 and byte(text, i + 1) == 128 then   -- UTF-8 pi
      push("id", "pi"); i = i + 2
    else
      error(fmt("qasm:%d: unexpected character '%s'", line, sub(text, i, i)), 0)
    end
  end
    if count < k and not done then
      push("eof", "<end of input>")
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
-- Angle values are affine forms {c = const, s = scale, p = parameter name or nil}.
local function const(x) return { c = x, s = 0 } end
local funcs = {
  sin = math.sin, cos = math.cos, tan = math.tan, exp = math.exp, ln = math.log, sqrt = math.sqrt,
  arcsin = math.asin, arccos = math.acos, arctan = math.atan, asin = math.asin, acos = math.acos,
  atan = math.atan, log = math.log,
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

-- expressions: precedence climbing over + - * / and unary -, ** / ^ for constants
function Parser:primary(env)
  local t = self:next()
  if t.kind == "num" then return const(t.v) end
  if t.kind == "(" or t.kind == "-" or t.kind == "+" then
    -- recursion: bounded so a pathological "((((..." is an error, not a stack overflow
    self.nest = self.nest + 1
    if self.nest > M.max_nesting then
      self:err(fmt("expression nested more than %d deep", M.max_nesting), t)
    end
  end
  if t.kind == "(" then
    local v = self:expr(env)
    self:expect(")")
    self.nest = self.nest - 1
    return v
  end
  if t.kind == "-" then
    local v = self:unary(env)
    self.nest = self.nest - 1
    return { c = -v.c, s = -v.s, p = v.p }
  end
  if t.kind == "+" then
    local v = self:unary(env)
    self.nest = self.nest - 1
    return v
  end
  if t.kind == "id" then
    local w = t.v
    if w == "pi" then return const(math.pi) end
    if w == "tau" then return const(2 * math.pi) end
    if w == "euler" then return const(math.exp(1)) end
    if funcs[w] and self:peek().kind == "(" then
      self:next()
      self.nest = self.nest + 1
      if self.nest > M.max_nesting then self:err(fmt("expression nested more than %d deep", M.max_nesting), t) end
      local v = self:expr(env)
      self:expect(")")
      self.nest = self.nest - 1
      if v.p and v.s ~= 0 then self:err(fmt("%s() of a parameter is not supported (angles must be affine in one parameter)", w), t) end
      return const(funcs[w](v.c))
    end
    if env and env[w] then return env[w] end
    if self.inputs[w] then return { c = 0, s = 1, p = w } end
    self:err(fmt("unknown identifier '%s'", w), t)
  end
  self:err(fmt("expression expected, got '%s'", tostring(t.v)), t)
end

function Parser:unary(env)
  local v = self:primary(env)
  if self:peek().kind == "**" or self:peek().kind == "^" then
    local op = self:next()
    self.nest = self.nest + 1
    if self.nest > M.max_nesting then self:err(fmt("expression nested more than %d deep", M.max_nesting), op) end
    local e = self:unary(env)
    self.nest = self.nest - 1
    if (v.p and v.s ~= 0) or (e.p and e.s ~= 0) then self:err("power of a parameter is not supported", op) end
    return const(v.c ^ e.c)
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
      if v.p and v.s ~= 0 and w.p and w.s ~= 0 then self:err("product of parameters is not supported (angles must be affine)", t) end
      if v.p and v.s ~= 0 then v = { c = v.c * w.c, s = v.s * w.c, p = v.p }
      elseif w.p and w.s ~= 0 then v = { c = w.c * v.c, s = w.s * v.c, p = w.p }
      else v = const(v.c * w.c) end
    elseif t.kind == "/" then
      self:next()
      local w = self:unary(env)
      if w.p and w.s ~= 0 then self:err("division by a parameter is not supported (angles must be affine)", t) end
      if w.c == 0 then self:err("division by zero", t) end
      v = { c = v.c / w.c, s = v.s / w.c, p = v.p }
    else
      return v
    end
  end
end

function Parser:expr(env)
  local v = self:term(env)
  while true do
    local t = self:peek()
    if t.kind == "+" or t.kind == "-" then
      self:next()
      local w = self:term(env)
      local sg = t.kind == "+" and 1 or -1
      local p = v.p
      if v.p and w.p and v.p ~= w.p and v.s ~= 0 and w.s ~= 0 then
        self:err("an angle may depend on one parameter only", t)
      end
      if not (v.p and v.s ~= 0) then p = w.p end
      v = { c = v.c + sg * w.c, s = (v.p == p and v.s or 0) + sg * (w.p == p and w.s or 0), p = p }
    else
      return v
    end
  end
end

------------------------------------------------------------------------ import: statements
-- qd gate names for QASM names
local alias = { U = "u", u3 = "u", u1 = "p", phase = "p", cu1 = "cp", cphase = "cp", CX = "cx", i = "id" }

function Parser:qubit_operand()
  local t = self:expect("id", "qubit operand")
  local reg = self.qregs[t.v]
  if not reg then self:err(fmt("unknown quantum register '%s'", t.v), t) end
  if self:accept("[") then
    local it = self:expect("num", "qubit index")
    if it.v ~= math.floor(it.v) or it.v < 0 or it.v >= reg.size then
      self:err(fmt("index %s out of range for register '%s' of size %d", num(it.v), t.v, reg.size), it)
    end
    self:expect("]")
    return { reg.base + it.v }
  end
  local qs = {}
  for k = 0, reg.size - 1 do qs[#qs + 1] = reg.base + k end
  return qs
end

function Parser:bit_operand()
  local t = self:expect("id", "classical bit")
  if not self.cregs[t.v] then self:err(fmt("unknown classical register '%s'", t.v), t) end
  if self:accept("[") then
    self:expect("num", "bit index")
    self:expect("]")
  end
end

-- gate_cost(name) -> the number of ops one call of gate `name` expands to, computed from
-- the definitions without expanding anything (memoised per definition; a later `gate`
-- redefinition starts a new generation, since it may change a gate used in a body).
-- Nesting deeper than M.max_gate_depth (or a recursive definition) is an error.
function Parser:gate_cost(name, tok, depth)
  local user = self.gates[name]
  if not user then
    if name == "gphase" then return 0 end
    return 1   -- a native gate, or unknown (reported when the call is expanded)
  end
  if user.cost and user.gen == self.gen then return user.cost end
  if user.busy then self:err(fmt("gate '%s' is defined in terms of itself", name), tok) end
  if depth >= M.max_gate_depth then
    self:err(fmt("gate '%s' nests gate definitions more than %d deep", tok.v, M.max_gate_depth), tok)
  end
  user.busy = true
  local total = 0
  for _, st in ipairs(user.body) do
    if not st.gphase then total = total + self:gate_cost(st.name, tok, depth + 1) end
    -- stop counting once past any limit (the sum could grow past 2^53 otherwise)
    if total > self.max_ops then total = self.max_ops + 1 break end
  end
  user.busy = false
  user.cost, user.gen = total, self.gen
  return total
end

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

local NOARGS = setmetatable({}, { __newindex = function() error("NOARGS is read-only", 2) end })

-- apply(nt, args, qs, emit): gate `nt.v` with angle values args on qubits qs (one instance,
-- no broadcast): a native gate is emitted, a user gate expanded. Arity and distinct qubits
-- are checked here, so they are checked for every expanded body statement too.
function Parser:apply(nt, args, qs, emit)
  local name = nt.v
  local user = self.gates[name]
  local qdname = alias[name] or name
  local info = self.qdgates[qdname]
  if user then
    info = nil
  elseif name == "u2" then
    if #args ~= 2 then self:err(fmt("'u2' takes 2 angles, got %d", #args), nt) end
    args = { const(math.pi / 2), args[1], args[2] }
    qdname, info = "u", self.qdgates.u
  elseif name == "u0" then
    qdname, info, args = "id", self.qdgates.id, {}
  end
  local nq, np
  if user then nq, np = #user.qargs, #user.params
  elseif info then nq, np = info.qubits, info.params
  else self:err(fmt("unknown gate '%s'", name), nt) end
  if #args ~= np then self:err(fmt("'%s' takes %d angle%s, got %d", name, np, np == 1 and "" or "s", #args), nt) end
  if #qs ~= nq then self:err(fmt("'%s' acts on %d qubit%s, got %d", name, nq, nq == 1 and "" or "s", #qs), nt) end
  for i = 2, #qs do
    for j = 1, i - 1 do
      if qs[i] == qs[j] then self:err(fmt("'%s' on the same qubit twice", name), nt) end
    end
  end
  if not user then
    emit { kind = "gate", name = qdname, qubits = qs, args = args, line = nt.line }
    return
  end
  -- expand: the body was parsed at definition (callee, qubit argument positions); only
  -- the angle expressions are re-read, from their token positions, with this call's angles
  local benv = {}
  for i, p in ipairs(user.params) do benv[p] = args[i] end
  for _, st in ipairs(user.body) do
    local a = NOARGS
    if st.argpos then
      a = {}
      local pos = self.pos
      self.pos = st.argpos
      if not self:accept(")") then
        repeat a[#a + 1] = self:expr(benv) until not self:accept(",")
        self:expect(")")
      end
      self.pos = pos
    end
    if not st.gphase then
      local q = {}
      for i, k in ipairs(st.q) do q[i] = qs[k] end
      self:apply(st.tok, a, q, emit)
    end
  end
end

-- a gate call at top level (name already read): register broadcast, then apply per instance
function Parser:gate_call(nt, emit)
  local name = nt.v
  local args = {}
  if self:accept("(") then
    if not self:accept(")") then
      repeat args[#args + 1] = self:expr(nil) until not self:accept(",")
      self:expect(")")
    end
  end
  if name == "gphase" then   -- global phase: no effect on an uncontrolled circuit
    self:expect(";")
    return
  end
  local operands = {}
  repeat operands[#operands + 1] = self:qubit_operand() until not self:accept(",")
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
  self:reserve(width * self:gate_cost(name, nt, 0), name, nt)
  for k = 1, width do
    local qs = {}
    for i, o in ipairs(operands) do qs[i] = #o > 1 and o[k] or o[1] end
    self:apply(nt, args, qs, emit)
  end
end

function Parser:gate_def()
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
  self:expect("{")
  local body = {}
  while not self:accept("}") do
    local t = self:peek()
    if t.kind == "eof" then self:err("'}' expected to close gate '" .. nt.v .. "'", t) end
    if t.kind == "id" and t.v == "barrier" then
      while not self:accept(";") do
        if self:peek().kind == "eof" then self:err("';' expected", self:peek()) end
        self:next()
      end
    else
      if t.kind ~= "id" then self:err(fmt("gate call expected in the body of '%s', got '%s'", nt.v, tostring(t.v)), t) end
      -- the statement's structure now; its angles are read when it is expanded (they
      -- depend on the call's angles), its callee is looked up then too
      self:next()
      local st = { tok = t, name = t.v, q = {} }
      if self:accept("(") then
        st.argpos = self.pos
        local depth = 1
        while depth > 0 do
          local u = self:next()
          if u.kind == "eof" or u.kind == ";" or u.kind == "}" then self:err("')' expected", u) end
          if u.kind == "(" then depth = depth + 1 elseif u.kind == ")" then depth = depth - 1 end
        end
      end
      if t.v == "gphase" then
        st.gphase = true
      else
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
  -- a definition of a gate qd knows natively is ignored (qd's exact matrix is used)
  if self.qdgates[alias[nt.v] or nt.v] then return end
  if self.gates[nt.v] then self.gen = self.gen + 1 end   -- a redefinition: costs change
  self.gates[nt.v] = { params = params, qargs = qargs, body = body }
end

function Parser:declare_qreg(name, size, t)
  if self.qregs[name] or self.cregs[name] then self:err(fmt("'%s' declared twice", name), t) end
  if size < 1 or size ~= math.floor(size) then self:err("register size >= 1 expected", t) end
  -- refused here, before a broadcast over the register could make one op per qubit
  if self.nq + size > self.max_qubits then
    self:err(fmt("register '%s' of %s qubits: a circuit has at most %d qubits (qd.max_qubits)%s", name,
                 num(size), self.max_qubits, self.nq > 0 and fmt(", %d declared before", self.nq) or ""), t)
  end
  self.qregs[name] = { base = self.nq, size = size }
  self.nq = self.nq + size
end

function Parser:statement(emit)
  local t = self:next()
  if t.kind == "pragma" then
    local qlist = t.v:match("^qd%s+discard%s+(.*)$")
    if qlist then
      local set = {}
      for reg, idx in qlist:gmatch("([%a_][%w_]*)%s*%[%s*(%d+)%s*%]") do
        local r = self.qregs[reg]
        if not r then self:err("unknown register in pragma: " .. reg, t) end
        set[r.base + tonumber(idx)] = true
      end
      local last = self.ops[#self.ops]
      if not last or last.kind ~= "measure" then self:err("'pragma qd discard' must follow a measurement", t) end
      for _, q in ipairs(last.qubits) do
        if not set[q] then self:err("'pragma qd discard' must list the qubits of the measurement before it", t) end
      end
      last.discard = true
    end
    return
  end
  if t.kind ~= "id" then self:err(fmt("statement expected, got '%s'", tostring(t.v)), t) end
  local w = t.v
  if w == "OPENQASM" then
    local v = self:expect("num", "version")
    if v.v ~= 2 and v.v ~= 3 and math.floor(v.v) ~= 2 and math.floor(v.v) ~= 3 then
      self:err("OpenQASM version 2 or 3 expected", v)
    end
    self:expect(";")
  elseif w == "include" then
    self:expect("str", "file name")
    self:expect(";")
  elseif w == "qreg" or w == "creg" then
    local nm = self:expect("id", "register name")
    self:expect("[")
    local sz = self:expect("num", "register size")
    self:expect("]")
    self:expect(";")
    if w == "qreg" then self:declare_qreg(nm.v, sz.v, nm) else self.cregs[nm.v] = true end
  elseif w == "qubit" or w == "bit" then
    local sz = 1
    if self:accept("[") then
      sz = self:expect("num", "register size").v
      self:expect("]")
    end
    local nm = self:expect("id", "register name")
    self:expect(";")
    if w == "qubit" then self:declare_qreg(nm.v, sz, nm) else self.cregs[nm.v] = true end
  elseif w == "input" then
    local ty = self:expect("id", "type")
    if ty.v ~= "float" and ty.v ~= "angle" then self:err("input float[..] or angle[..] parameter expected", ty) end
    if self:accept("[") then
      self:expect("num", "width")
      self:expect("]")
    end
    local nm = self:expect("id", "parameter name")
    self:expect(";")
    if self.inputs[nm.v] then self:err(fmt("parameter '%s' declared twice", nm.v), nm) end
    self.inputs[nm.v] = true
    self.input_order[#self.input_order + 1] = nm.v
  elseif w == "gate" then
    self:gate_def()
  elseif w == "barrier" then
    while not self:accept(";") do
      if self:peek().kind == "eof" then self:err("';' expected", self:peek()) end
      self:next()
    end
  elseif w == "measure" then
    local qs = self:qubit_operand()
    if self:accept("->") then self:bit_operand() end
    self:expect(";")
    self:reserve(1, "measure", t)
    emit { kind = "measure", qubits = qs, line = t.line }
  elseif w == "reset" then
    local qs = self:qubit_operand()
    self:expect(";")
    self:reserve(1, "reset", t)
    emit { kind = "reset", qubits = qs, line = t.line }
  elseif self.cregs[w] and (self:peek().kind == "=" or self:peek().kind == "[") then
    if self:accept("[") then
      self:expect("num", "bit index")
      self:expect("]")
    end
    self:expect("=")
    local m = self:expect("id", "'measure'")
    if m.v ~= "measure" then self:err("only 'bit = measure qubit' assignments are supported", m) end
    local qs = self:qubit_operand()
    self:expect(";")
    self:reserve(1, "measure", t)
    emit { kind = "measure", qubits = qs, line = t.line }
  elseif w == "ctrl" or w == "negctrl" or w == "inv" or w == "pow" then
    self:err(fmt("gate modifier '%s @' is not supported", w), t)
  elseif w == "if" or w == "for" or w == "while" or w == "def" then
    self:err(fmt("'%s' is not supported (standard-gate subset only)", w), t)
  else
    self:gate_call(t, emit)
  end
end

-- Limits, checked before the work they bound is done (a user gate's expansion is counted
-- from the definitions before it is expanded): ops in one circuit (gate calls after
-- expansion, measurements, resets), nesting of gate definitions, nesting of parentheses and
-- signs in one expression. Raise max_ops here (require("qd.qasm").max_ops = ...) or per
-- call with from_qasm's {max_ops = } option.
M.max_ops = 1000000
M.max_gate_depth = 32
M.max_nesting = 200

local from_opts = { max_ops = true }

function M.from_qasm(qd, text, opts, ...)
  if type(text) ~= "string" then
    error("bad argument #1 to 'from_qasm' (string expected, got " .. type(text) .. ")", outside())
  end
  local max_ops = M.max_ops
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("bad argument #2 to 'from_qasm' (options table expected, got " .. qd.type(opts) .. ")", outside())
    end
    for k in pairs(opts) do
      if not from_opts[k] then
        error("bad argument #2 to 'from_qasm' (unknown option '" .. tostring(k) .. "'; known: max_ops)", outside())
      end
    end
    if opts.max_ops ~= nil then
      max_ops = opts.max_ops
      if math.type(max_ops) ~= "integer" or max_ops < 1 then
        error("bad argument #2 to 'from_qasm' (option 'max_ops': integer >= 1 expected, got " .. tostring(max_ops) .. ")", outside())
      end
    end
  end
  if select("#", ...) > 0 then error("bad argument #3 to 'from_qasm' (unexpected extra argument)", outside()) end
  local p = setmetatable({
    toks = lex(text), pos = 1, qregs = {}, cregs = {}, nq = 0, inputs = {}, input_order = {},
    gates = {}, ops = {}, qdgates = qd.gates(),
    nops = 0, max_ops = max_ops, max_qubits = qd.max_qubits, gen = 0, nest = 0,
  }, Parser)
  local function emit(op)
    -- consecutive measurements (resets) of distinct qubits form one joint op
    local last = p.ops[#p.ops]
    if (op.kind == "measure" or op.kind == "reset") and last and last.kind == op.kind and not last.discard then
      local clash = false
      for _, q in ipairs(op.qubits) do
        for _, r in ipairs(last.qubits) do clash = clash or q == r end
      end
      if not clash then
        for _, q in ipairs(op.qubits) do last.qubits[#last.qubits + 1] = q end
        return
      end
    end
    p.ops[#p.ops + 1] = op
  end
  while p:peek().kind ~= "eof" do
    p:statement(emit)
  end
  if p.nq == 0 then error("qasm:1: no qubit register declared", 0) end
  if p.nq > qd.max_qubits then error(fmt("qasm: %d qubits is too many", p.nq), 0) end
  local c = qd.circuit(p.nq)
  for _, nm in ipairs(p.input_order) do c:param(nm) end
  -- one protected call for the whole list (not a closure per op); k says which op failed
  local k = 0
  local a = {}
  local ok, err = pcall(function()
    for i, op in ipairs(p.ops) do
      k = i
      if op.kind == "gate" then
        local nq = #op.qubits
        for j = 1, nq do a[j] = op.qubits[j] end
        local args = op.args
        for j = 1, #args do
          local v = args[j]
          if v.p and v.s ~= 0 then
            a[nq + j] = { v.p, scale = v.s, offset = v.c }
          else
            a[nq + j] = v.c
          end
        end
        c[op.name](c, table.unpack(a, 1, nq + #args))
      elseif op.kind == "measure" then
        c:measure(op.qubits, { discard = op.discard or false })
      else
        c:reset(op.qubits)
      end
    end
  end)
  if not ok then
    local op = p.ops[k]
    error(fmt("qasm:%d: %s", op and op.line or 0, (tostring(err):gsub("^.-:%d+: ", ""))), 0)
  end
  return c
end

------------------------------------------------------------------------ draw
local function label_of(op, names)
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
