-- qd.optim — first-order optimizers over real parameter vectors, in Torch's convention
--
--   x, fx = optim.adam(feval, x, state)
--
-- feval(x) returns f, grad (grad a real qd.Vector or a table of numbers, same length as x);
-- x (a real qd.Vector or a table of numbers) is updated IN PLACE and returned with f(x)
-- evaluated before the step. `state` holds the hyper-parameters (lr, ...) and everything
-- the method remembers (step count t; Adam's moments m, v: real qd.Vectors when x is one, else
-- plain Lua arrays of floats), so a
-- run resumes exactly from optim.checkpoint(state) / optim.restore(t) (JSON-safe tables).
--
-- Formulas are PyTorch's (torch.optim.Adam / SGD, amsgrad = False, maximize = False),
-- written in the same operation order so that steps agree to the last bit with a
-- straightforward double-precision re-implementation (torch 1.13 itself agrees to <= 1 ulp
-- per step: its vector kernels fuse multiply-adds; tests/data/optim has its trajectories):
--   Adam: g += wd*x; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
--         step = lr / (1 - b1^t); denom = sqrt(v) / sqrt(1 - b2^t) + eps; x -= step * m / denom
--   SGD:  g += wd*x; buf = g (first step) or mu*buf + (1-dampening)*g;
--         g = g + mu*buf (nesterov) or buf; x -= lr * g
-- Learning-rate schedules are plain data tables (optim.schedule.cosine{...}); put one in
-- state.schedule and the lr of step t is optim.lr_at(schedule, t) — data, not closures, so
-- they are saved with the state.
local core = require "qd.core"

local M = {}

-- errors point at the user's line, however deep in the library they are raised
local outside = require("qd.caller").outside

-- the per-entry loops and a one-call Vector check are C (runtime/lua/lua_optim.c)
local c_adam, c_sgd, vinfo = core.optim_adam, core.optim_sgd, core.optim_vinfo

-- ------------------------------------------------------------------ helpers

local function isvector(x)
  local mt = getmetatable(x)
  return type(mt) == "table" and mt.__name == "qd.Vector"
end

-- The checks below run on every step, so each has a fast path for the common case (a live
-- real qd.Vector, options already set and valid) that falls back to the full check — which
-- raises the error — whenever anything differs; behaviour and messages are the full check's.
local function check_params(x, fname)
  local n, cplx = vinfo(x)
  if n and not cplx then return n end
  if isvector(x) then
    if x:is_complex() then
      error(string.format("bad argument #2 to '%s' (real qd.Vector expected, got a complex one)", fname), outside())
    end
    return #x
  end
  if type(x) ~= "table" then
    error(string.format("bad argument #2 to '%s' (qd.Vector or table of numbers expected, got %s)",
                        fname, type(x)), outside())
  end
  return #x
end

local function eval(feval, x, n, fname)
  local f, g = feval(x)
  if type(f) ~= "number" then
    error(string.format("%s: feval must return f (a number), grad; got %s", fname, type(f)), outside())
  end
  local gn, gc = vinfo(g)
  if gn == n and not gc then return f, g end
  if not (isvector(g) or type(g) == "table") then
    error(string.format("%s: feval must return f, grad (qd.Vector or table); got grad of type %s",
                        fname, type(g)), outside())
  end
  if isvector(g) and g:is_complex() then
    error(string.format("%s: real gradient expected, got a complex qd.Vector", fname), outside())
  end
  if #g ~= n then
    error(string.format("%s: gradient of length %d expected, got %d", fname, n, #g), outside())
  end
  return f, g
end

local function check_state(state, fname)
  if type(state) ~= "table" then
    error(string.format("bad argument #3 to '%s' (state table expected, got %s)", fname, type(state)), outside())
  end
end

-- the keys a state table may hold (hyper-parameters and what the method keeps); any other
-- key is a misspelt option (learning_rate for lr) and an error, not silently ignored
local adam_keys = { lr = true, beta1 = true, beta2 = true, eps = true, weight_decay = true, schedule = true,
                    t = true, m = true, v = true }
local sgd_keys = { lr = true, momentum = true, dampening = true, nesterov = true, weight_decay = true,
                   schedule = true, t = true, buf = true }

local function check_keys(state, known, fname)
  for k in next, state do
    if not known[k] then
      local names = {}
      for name in pairs(known) do names[#names + 1] = name end
      table.sort(names)
      error(string.format("bad argument #3 to '%s' (unknown key '%s' in the state table; known: %s)", fname,
                          tostring(k), table.concat(names, ", ")), outside())
    end
  end
end

local function num_opt(state, key, def, fname, lo, open)
  local v = state[key]
  if v == nil then
    state[key] = def
    return def
  end
  if type(v) ~= "number" or v ~= v or (open and v <= lo) or (not open and v < lo) then
    error(string.format("%s: state.%s must be a number %s %s, got %s", fname, key, open and ">" or ">=",
                        tostring(lo), tostring(v)), outside())
  end
  return v
end

-- Adam's moments: a real qd.Vector when x is one (updated in place in C: no per-entry Lua
-- table traffic), else a plain array of floats; a state restored from an older checkpoint
-- keeps its plain arrays and works as before
local function moments(state, key, n, fname, vec)
  local m = state[key]
  if m == nil then
    if vec then
      m = core.vector(n)
    else
      m = {}
      for i = 1, n do m[i] = 0.0 end
    end
    state[key] = m
    return m
  end
  local mn, mc = vinfo(m)
  if mn == n and not mc then return m end
  if type(m) ~= "table" or #m ~= n then
    local what = "no entries"
    if type(m) == "table" then
      what = #m .. " entries"
    elseif isvector(m) then   -- vinfo said nothing: freed or complex, or another length
      local ok, cplx = pcall(m.is_complex, m)
      what = not ok and "a freed qd.Vector" or cplx and "complex entries" or #m .. " entries"
    end
    error(string.format("%s: state.%s holds %s, parameters have %d", fname, key, what, n), outside())
  end
  return m
end

-- ------------------------------------------------------------------ schedules

M.schedule = {}

-- the options each kind needs, then the optional ones it takes
local kinds = {
  constant = { "lr" },
  step = { "lr", "step_size", "gamma" },
  exponential = { "lr", "gamma" },
  cosine = { "lr", "T" },
  linear = { "lr", "T" },
}
local optional = { constant = {}, step = {}, exponential = {}, cosine = { lr_min = true, warmup = true },
                   linear = { lr_end = true } }

local function mk(kind, opts)
  if type(opts) ~= "table" then
    error(string.format("bad argument #1 to 'schedule.%s' (options table expected, got %s)", kind, type(opts)), outside())
  end
  local allowed = {}
  for _, k in ipairs(kinds[kind]) do allowed[k] = true end
  for k in pairs(optional[kind]) do allowed[k] = true end
  for k in pairs(opts) do
    if not allowed[k] then
      error(string.format("bad argument #1 to 'schedule.%s' (unknown option '%s')", kind, tostring(k)), outside())
    end
  end
  for _, k in ipairs(kinds[kind]) do
    if type(opts[k]) ~= "number" then
      error(string.format("bad argument #1 to 'schedule.%s' (option '%s': number expected, got %s)",
                          kind, k, type(opts[k])), outside())
    end
  end
  local s = { kind = kind }
  for k, v in pairs(opts) do s[k] = v end
  return s
end

-- constant{lr=}: lr
function M.schedule.constant(o) return mk("constant", o) end
-- step{lr=, step_size=, gamma=}: lr * gamma^floor((t-1)/step_size) (torch StepLR)
function M.schedule.step(o) return mk("step", o) end
-- exponential{lr=, gamma=}: lr * gamma^(t-1)
function M.schedule.exponential(o) return mk("exponential", o) end
-- cosine{lr=, T=, lr_min=0, warmup=0}: linear warm-up over `warmup` steps, then cosine
-- annealing from lr to lr_min at step T (constant lr_min after T)
function M.schedule.cosine(o) return mk("cosine", o) end
-- linear{lr=, T=, lr_end=0}: linear from lr (t = 1) to lr_end (t = T), then lr_end
function M.schedule.linear(o) return mk("linear", o) end

-- lr_at(schedule, t): the learning rate of step t (1-based)
function M.lr_at(s, t)
  if type(s) ~= "table" or not kinds[s.kind] then
    error("bad argument #1 to 'lr_at' (schedule table expected)", outside())
  end
  if math.type(t) ~= "integer" or t < 1 then
    error("bad argument #2 to 'lr_at' (step t >= 1 expected)", outside())
  end
  local k = s.kind
  if k == "constant" then return s.lr
  elseif k == "step" then return s.lr * s.gamma ^ ((t - 1) // s.step_size)
  elseif k == "exponential" then return s.lr * s.gamma ^ (t - 1)
  elseif k == "cosine" then
    local w, lo = s.warmup or 0, s.lr_min or 0
    if t <= w then return s.lr * t / w end
    if t >= s.T then return lo end
    local u = (t - w) / (s.T - w)
    return lo + 0.5 * (s.lr - lo) * (1 + math.cos(math.pi * u))
  else -- linear
    local lo = s.lr_end or 0
    if t >= s.T then return lo end
    if s.T <= 1 then return lo end
    return s.lr + (lo - s.lr) * (t - 1) / (s.T - 1)
  end
end

local function current_lr(state, fname, def)
  if state.schedule ~= nil then
    return M.lr_at(state.schedule, state.t)
  end
  return num_opt(state, "lr", def, fname, 0, false)
end

-- ------------------------------------------------------------------ Adam

-- optim.adam(feval, x, state) -> x, fx
-- state: lr (1e-3), beta1 (0.9), beta2 (0.999), eps (1e-8), weight_decay (0), schedule;
-- kept: t (steps taken), m, v (moment arrays). Any other key is an error.
function M.adam(feval, x, state)
  local fname = "adam"
  if type(feval) ~= "function" then
    error(string.format("bad argument #1 to 'adam' (function expected, got %s)", type(feval)), outside())
  end
  local n = check_params(x, fname)
  if type(state) ~= "table" then check_state(state, fname) end
  check_keys(state, adam_keys, fname)
  -- options: num_opt (defaults, errors) unless the value is already a valid number
  local b1, b2, eps, wd = state.beta1, state.beta2, state.eps, state.weight_decay
  if not (type(b1) == "number" and b1 >= 0) then b1 = num_opt(state, "beta1", 0.9, fname, 0, false) end
  if not (type(b2) == "number" and b2 >= 0) then b2 = num_opt(state, "beta2", 0.999, fname, 0, false) end
  if not (type(eps) == "number" and eps >= 0) then eps = num_opt(state, "eps", 1e-8, fname, 0, false) end
  if not (type(wd) == "number" and wd >= 0) then wd = num_opt(state, "weight_decay", 0.0, fname, 0, false) end
  if b1 >= 1 or b2 >= 1 then error("adam: state.beta1 and state.beta2 must be < 1", outside()) end
  local f, g = eval(feval, x, n, fname)
  local vec = vinfo(x) ~= nil
  local m = moments(state, "m", n, fname, vec)
  local v = moments(state, "v", n, fname, vec)
  local t = (state.t or 0) + 1
  state.t = t
  local lr = state.lr
  if state.schedule ~= nil or not (type(lr) == "number" and lr >= 0) then lr = current_lr(state, fname, 1e-3) end
  local bc1 = 1 - b1 ^ t
  local bc2 = 1 - b2 ^ t
  local step = lr / bc1
  local bc2s = math.sqrt(bc2)
  -- the per-entry loop is C (runtime/lua/lua_optim.c): the same operations in the same order
  -- as the loop written out in tests/lua/test_optim.lua, so the bits are the same
  c_adam(x, g, m, v, n, b1, b2, eps, wd, -step, bc2s)
  return x, f
end

-- ------------------------------------------------------------------ SGD

-- optim.sgd(feval, x, state) -> x, fx
-- state: lr (required unless schedule), momentum (0), dampening (0), nesterov (false),
-- weight_decay (0), schedule; kept: t, buf (momentum buffer). Any other key is an error.
function M.sgd(feval, x, state)
  local fname = "sgd"
  if type(feval) ~= "function" then
    error(string.format("bad argument #1 to 'sgd' (function expected, got %s)", type(feval)), outside())
  end
  local n = check_params(x, fname)
  if type(state) ~= "table" then check_state(state, fname) end
  check_keys(state, sgd_keys, fname)
  if state.lr == nil and state.schedule == nil then
    error("sgd: state.lr (or state.schedule) expected", outside())
  end
  local mu, damp, wd = state.momentum, state.dampening, state.weight_decay
  if not (type(mu) == "number" and mu >= 0) then mu = num_opt(state, "momentum", 0.0, fname, 0, false) end
  if not (type(damp) == "number" and damp >= 0) then damp = num_opt(state, "dampening", 0.0, fname, 0, false) end
  if not (type(wd) == "number" and wd >= 0) then wd = num_opt(state, "weight_decay", 0.0, fname, 0, false) end
  local nesterov = state.nesterov or false
  if type(nesterov) ~= "boolean" then error("sgd: state.nesterov must be a boolean", outside()) end
  if nesterov and (mu <= 0 or damp ~= 0) then
    error("sgd: Nesterov momentum requires momentum > 0 and dampening = 0", outside())
  end
  local f, g = eval(feval, x, n, fname)
  local t = (state.t or 0) + 1
  state.t = t
  local lr = state.lr
  if state.schedule ~= nil or not (type(lr) == "number" and lr >= 0) then lr = current_lr(state, fname, nil) end
  local buf
  if mu ~= 0 then
    buf = state.buf
    if buf ~= nil and (type(buf) ~= "table" or #buf ~= n) then
      error(string.format("sgd: state.buf does not match %d parameters", n), outside())
    end
  end
  local first = buf == nil
  if mu ~= 0 and first then buf = {}; state.buf = buf end
  -- per-entry loop in C (runtime/lua/lua_optim.c), operation for operation the Lua loop's
  c_sgd(x, g, buf, n, lr, mu, damp, wd, nesterov, first)
  return x, f
end

-- ------------------------------------------------------------------ checkpoints
-- checkpoint(v) -> a JSON-safe deep copy of v: qd.Vectors become {__vector = {...}},
-- floats that JSON cannot spell exactly (NaN, +-inf, -0) become {__float = "nan"|"inf"|
-- "-inf"|"-0"}; everything else is kept (finite doubles print exactly with %.17g in
-- qd.json). restore(t) undoes it; numbers come back as floats except integer-valued
-- fields named t / step / steps / epoch (which come back as integers), so arithmetic on a
-- restored state is bit-identical to the original.
local int_keys = { t = true, step = true, steps = true, epoch = true, step_size = true }

local function enc_num(v)
  if v ~= v then return { __float = "nan" } end
  if v == math.huge then return { __float = "inf" } end
  if v == -math.huge then return { __float = "-inf" } end
  if v == 0 and math.type(v) == "float" and 1 / v < 0 then return { __float = "-0" } end
  return v
end

-- freeze(t) (below): t -> its converted copy (false: not converted yet)
local frozen = setmetatable({}, { __mode = "k" })

local function ckpt(v, seen)
  local tv = type(v)
  if tv == "number" then return enc_num(v) end
  if tv == "string" or tv == "boolean" then return v end
  if isvector(v) then
    if v:is_complex() then error("checkpoint: complex qd.Vector not supported", outside()) end
    local out = {}
    for i = 1, #v do out[i] = enc_num(v[i]) end
    return { __vector = out }
  end
  if tv == "table" then
    local fz = frozen[v]
    if fz then return fz end
    if seen[v] then error("checkpoint: table contains itself", outside()) end
    seen[v] = true
    local out = {}
    for k, val in pairs(v) do
      if type(k) ~= "string" and math.type(k) ~= "integer" then
        error("checkpoint: keys must be strings or integers, got " .. type(k), outside())
      end
      out[k] = ckpt(val, seen)
    end
    seen[v] = nil
    if fz == false then frozen[v] = require("qd.json").freeze(out) end
    return out
  end
  error("checkpoint: cannot save a value of type " .. tv, outside())
end

function M.checkpoint(v) return ckpt(v, {}) end

-- freeze(t) -> t: a promise that t and everything in it will not change again (a finished
-- step of a protocol: its parameters and loss history). checkpoint() then converts t once
-- and reuses the copy, and qd.json encodes that copy once (json.freeze): the finished steps
-- are not re-encoded at every later checkpoint (T steps of E epochs had cost O(T^2 E)
-- number formatting per run). The checkpoint's text is the same either way.
function M.freeze(t)
  if type(t) ~= "table" then error("bad argument #1 to 'freeze' (table expected, got " .. type(t) .. ")", outside()) end
  if frozen[t] == nil then frozen[t] = false end
  return t
end

local specials = { nan = 0 / 0, inf = math.huge, ["-inf"] = -math.huge, ["-0"] = -0.0 }

local function rst(v, key)
  if type(v) == "number" then
    if int_keys[key] and math.tointeger(v) then return math.tointeger(v) end
    return v + 0.0
  end
  if type(v) ~= "table" then return v end
  if v.__float ~= nil then
    local s = specials[v.__float]
    if s == nil then error("restore: unknown special float '" .. tostring(v.__float) .. "'", outside()) end
    return s
  end
  if v.__vector ~= nil then
    local vals = {}
    for i, x in ipairs(v.__vector) do vals[i] = rst(x) end
    local vec = core.vector(#vals > 0 and #vals or 1)
    for i = 1, #vals do vec[i] = vals[i] end
    return vec
  end
  local out = {}
  for k, val in pairs(v) do
    local kk = k
    if type(k) == "string" and k:match("^%d+$") then kk = math.tointeger(tonumber(k)) end
    out[kk] = rst(val, kk)
  end
  return out
end

function M.restore(t) return rst(t, nil) end

-- save(path, v) / load(path): checkpoint through qd.json (atomic write via a temp file)
function M.save(path, v)
  local json = require "qd.json"
  local record = require "qd.record"
  local text = json.encode(M.checkpoint(v))
  local ok, err = pcall(record.write_atomic, path, text .. "\n")
  if not ok then return nil, err end
  return true
end

function M.load(path)
  local json = require "qd.json"
  local text, err = require("qd.record").read_file(path)
  if not text then return nil, err end
  return M.restore(json.decode(text))
end

return M
