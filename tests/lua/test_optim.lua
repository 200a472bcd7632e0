-- test_optim.lua — qd.optim: Adam and SGD (momentum, Nesterov) against the PyTorch update
-- formulas written out here step by step, schedules, exact checkpoint round trips through
-- qd.json (resume = uninterrupted run, bit for bit), and error messages.
local T = require "testlib"
local optim = qd.optim
local json = require "qd.json"

-- f(x) = sum c_i (x_i - a_i)^2 + 0.1 x_1 x_2 (coupled, so steps differ per coordinate)
local c, a = { 1.0, 3.0, 0.5, 2.0 }, { 0.3, -1.2, 2.0, 0.0 }
local function feval(x)
  local f, g = 0.1 * x[1] * x[2], qd.vector(#c)
  for i = 1, #c do
    f = f + c[i] * (x[i] - a[i]) ^ 2
    g[i] = 2 * c[i] * (x[i] - a[i])
  end
  g[1] = g[1] + 0.1 * x[2]
  g[2] = g[2] + 0.1 * x[1]
  return f, g
end

local x0 = { 1.0, 0.5, -0.7, 2.5 }

-- the PyTorch Adam step (torch.optim.Adam, _single_tensor_adam, amsgrad=False), by hand
local function torch_adam(x, m, v, t, g, lr, b1, b2, eps, wd)
  for i = 1, #x do
    local gi = g[i]
    if wd ~= 0 then gi = gi + wd * x[i] end
    m[i] = m[i] * b1 + gi * (1 - b1)                 -- exp_avg.mul_(beta1).add_(grad, alpha=1-beta1)
    v[i] = v[i] * b2 + gi * gi * (1 - b2)            -- exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1-beta2)
    local step_size = lr / (1 - b1 ^ t)              -- lr / bias_correction1
    local denom = math.sqrt(v[i]) / math.sqrt(1 - b2 ^ t) + eps
    x[i] = x[i] + (-step_size) * (m[i] / denom)      -- param.addcdiv_(exp_avg, denom, value=-step_size)
  end
end

T.test("adam = PyTorch formula", function()
  for _, cfg in ipairs {
    { lr = 0.05 }, { lr = 0.01, beta1 = 0.8, beta2 = 0.99, eps = 1e-6 }, { lr = 0.02, weight_decay = 0.1 },
  } do
    local x = qd.vector(x0)
    local state = {}
    for k, v in pairs(cfg) do state[k] = v end
    local rx, rm, rv = { table.unpack(x0) }, { 0, 0, 0, 0 }, { 0, 0, 0, 0 }
    for t = 1, 25 do
      local _, g = feval(rx)
      local fx_ref = feval(rx)
      torch_adam(rx, rm, rv, t, g, cfg.lr, cfg.beta1 or 0.9, cfg.beta2 or 0.999, cfg.eps or 1e-8,
                 cfg.weight_decay or 0)
      local xr, fx = optim.adam(feval, x, state)
      T.ok(rawequal(xr, x), "x updated in place and returned")
      T.eq(fx, fx_ref, "fx = f(x) before the step")
      for i = 1, 4 do T.eq(x[i], rx[i], string.format("adam step %d coordinate %d (bitwise)", t, i)) end
    end
    T.eq(state.t, 25, "step count")
    for i = 1, 4 do T.eq(state.m[i], rm[i], "first moment"); T.eq(state.v[i], rv[i], "second moment") end
  end
  -- step 1 closed form: x1 = x0 - lr * g / (|g| + eps)   (m_hat = g, v_hat = g^2)
  local x = qd.vector(x0)
  local _, g = feval(x)
  optim.adam(feval, x, { lr = 0.1 })
  for i = 1, 4 do T.near(x[i], x0[i] - 0.1 * g[i] / (math.abs(g[i]) + 1e-8), 1e-15, "first Adam step") end
  -- converges on the quadratic; plain tables work as parameters
  local xt = { table.unpack(x0) }
  local st = { lr = 0.05 }
  local f
  for _ = 1, 2000 do _, f = optim.adam(feval, xt, st) end
  local fmin = feval(xt)
  T.ok(fmin < feval(x0) and math.abs(f - fmin) < 1e-6, "adam descends to a minimum")
end)

T.test("sgd with momentum and nesterov = PyTorch formula", function()
  for _, cfg in ipairs {
    { lr = 0.05 }, { lr = 0.05, momentum = 0.9 }, { lr = 0.02, momentum = 0.9, nesterov = true },
    { lr = 0.05, momentum = 0.5, dampening = 0.3, weight_decay = 0.01 },
  } do
    local x, state = qd.vector(x0), {}
    for k, v in pairs(cfg) do state[k] = v end
    local rx, buf = { table.unpack(x0) }, nil
    local mu, damp, wd = cfg.momentum or 0, cfg.dampening or 0, cfg.weight_decay or 0
    for _ = 1, 20 do
      local _, g = feval(rx)
      local d = {}
      for i = 1, 4 do d[i] = g[i] + (wd ~= 0 and wd * rx[i] or 0) end
      if mu ~= 0 then
        if buf == nil then buf = { table.unpack(d) }
        else for i = 1, 4 do buf[i] = buf[i] * mu + d[i] * (1 - damp) end end
        for i = 1, 4 do d[i] = cfg.nesterov and (d[i] + mu * buf[i]) or buf[i] end
      end
      for i = 1, 4 do rx[i] = rx[i] + (-cfg.lr) * d[i] end
      optim.sgd(feval, x, state)
      for i = 1, 4 do T.eq(x[i], rx[i], "sgd step (bitwise)") end
    end
  end
end)

-- against torch itself: trajectories written by tests/data/optim/make_optim_refs.py
-- (torch.optim.Adam / SGD, float64, foreach=False) on the same function and settings
local DATA = (os.getenv("QD_TEST_DATA") or "tests/data") .. "/optim/"
T.test("adam and sgd = torch.optim trajectories", function()
  local function compare(file, cfgs, method, steps)
    local R = qd.load_npy(DATA .. file)
    T.eq(select(1, R:shape()), #cfgs * steps, file .. " rows")
    local worst, exact = 0, true
    for k, cfg in ipairs(cfgs) do
      local x, state = qd.vector(x0), {}
      for key, v in pairs(cfg) do state[key] = v end
      for t = 1, steps do
        optim[method](feval, x, state)
        for i = 1, 4 do
          local ref = R:get((k - 1) * steps + t, i)
          worst = math.max(worst, math.abs(x[i] - ref) / math.max(1, math.abs(ref)))
          exact = exact and x[i] == ref
        end
      end
    end
    T.ok(worst <= 4e-16, string.format("%s matches torch (max rel. diff %g, bitwise: %s)", method, worst,
                                       tostring(exact)))
  end
  compare("adam_torch.npy", { { lr = 0.05 }, { lr = 0.01, beta1 = 0.8, beta2 = 0.99, eps = 1e-6 },
                              { lr = 0.02, weight_decay = 0.1 } }, "adam", 25)
  compare("sgd_torch.npy", { { lr = 0.05 }, { lr = 0.05, momentum = 0.9 },
                             { lr = 0.02, momentum = 0.9, nesterov = true },
                             { lr = 0.05, momentum = 0.5, dampening = 0.3, weight_decay = 0.01 } }, "sgd", 20)
end)

T.test("schedules", function()
  local s = optim.schedule
  T.eq(optim.lr_at(s.constant { lr = 0.1 }, 7), 0.1)
  local st = s.step { lr = 1, step_size = 10, gamma = 0.5 }
  T.eq(optim.lr_at(st, 1), 1); T.eq(optim.lr_at(st, 10), 1); T.eq(optim.lr_at(st, 11), 0.5)
  T.eq(optim.lr_at(st, 21), 0.25)
  T.near(optim.lr_at(s.exponential { lr = 2, gamma = 0.9 }, 3), 2 * 0.81, 1e-15)
  local cs = s.cosine { lr = 1, T = 11, lr_min = 0.1, warmup = 1 }
  T.near(optim.lr_at(cs, 1), 1, 1e-15, "after warm-up")
  T.near(optim.lr_at(cs, 6), 0.55, 1e-15, "cosine midpoint")
  T.near(optim.lr_at(cs, 11), 0.1, 1e-15, "cosine end")
  T.near(optim.lr_at(s.cosine { lr = 1, T = 10, warmup = 4 }, 2), 0.5, 1e-15, "linear warm-up")
  local ls = s.linear { lr = 1, T = 5, lr_end = 0.2 }
  T.near(optim.lr_at(ls, 1), 1, 1e-15); T.near(optim.lr_at(ls, 3), 0.6, 1e-15); T.near(optim.lr_at(ls, 9), 0.2, 1e-15)
  -- a schedule in the state drives the optimizer: step t uses lr_at(schedule, t)
  local x1, x2 = qd.vector(x0), qd.vector(x0)
  local sa, sb = { schedule = st }, {}
  for t = 1, 12 do
    sb.lr = optim.lr_at(st, t)
    optim.sgd(feval, x1, sa)
    optim.sgd(feval, x2, sb)
  end
  for i = 1, 4 do T.eq(x1[i], x2[i], "schedule in state = lr set by hand") end
  T.raises(function() s.cosine { lr = 1 } end, "option 'T': number expected")
  T.raises(function() s.step { lr = 1, step = 3 } end, "unknown option 'step'")
  T.raises(function() optim.lr_at(st, 0) end, "step t >= 1 expected")
end)

T.test("checkpoint round trip is exact", function()
  for _, method in ipairs { "adam", "sgd" } do
    local cfg = method == "adam" and { lr = 0.03, schedule = optim.schedule.cosine { lr = 0.03, T = 40 } }
                or { lr = 0.02, momentum = 0.9, nesterov = true }
    local function fresh() local s = {} for k, v in pairs(cfg) do s[k] = v end return s end
    -- uninterrupted
    local xa, sa = qd.vector(x0), fresh()
    for _ = 1, 30 do optim[method](feval, xa, sa) end
    -- 13 steps, save (state and x) through JSON text, restore, 17 more
    local xb, sb = qd.vector(x0), fresh()
    for _ = 1, 13 do optim[method](feval, xb, sb) end
    local text = json.encode(optim.checkpoint { state = sb, x = xb })
    local back = optim.restore(json.decode(text))
    local xc, sc = back.x, back.state
    T.eq(qd.type(xc), "qd.Vector", "x restored as a qd.Vector")
    T.eq(math.type(sc.t), "integer", "step count stays an integer")
    for _ = 1, 17 do optim[method](feval, xc, sc) end
    for i = 1, 4 do T.eq(xc[i], xa[i], method .. ": resumed run = uninterrupted run (bitwise)") end
    local mk = method == "adam" and "v" or "buf"
    for i = 1, 4 do T.eq(sc[mk][i], sa[mk][i], method .. ": state moments identical") end
  end
  -- Adam's moments are qd.Vectors when x is one (updated in place), plain arrays when x is a
  -- table; a state with plain-array moments (an older checkpoint) goes on bit for bit as one
  -- with Vectors
  do
    local xv, sv = qd.vector(x0), { lr = 0.02 }
    local xt, stt = qd.vector(x0), { lr = 0.02 }
    optim.adam(feval, xv, sv)
    T.eq(qd.type(sv.m), "qd.Vector", "adam: m a qd.Vector for a qd.Vector x")
    T.eq(qd.type(sv.v), "qd.Vector", "adam: v a qd.Vector for a qd.Vector x")
    local xs = {}
    for i = 1, #x0 do xs[i] = x0[i] end
    local ts = { lr = 0.02 }
    optim.adam(feval, xs, ts)
    T.eq(type(ts.m), "table", "adam: m a plain array for a table x")
    optim.adam(feval, xt, stt)
    stt.m, stt.v = stt.m:totable(), stt.v:totable()   -- as an older checkpoint held them
    for _ = 1, 5 do optim.adam(feval, xv, sv); optim.adam(feval, xt, stt) end
    local same = true
    for i = 1, #x0 do same = same and xv[i] == xt[i] and sv.m[i] == stt.m[i] and sv.v[i] == stt.v[i] end
    T.ok(same and type(stt.m) == "table", "adam: plain-array moments = Vector moments, bit for bit")
  end
  -- values JSON cannot spell survive too (tagged), and integral floats stay floats
  local odd = { m = { -0.0, 0 / 0, math.huge, -math.huge, 3.0, 0.1 }, t = 5 }
  local r = optim.restore(json.decode(json.encode(optim.checkpoint(odd))))
  T.ok(1 / r.m[1] < 0, "-0 kept"); T.ok(r.m[2] ~= r.m[2], "nan kept")
  T.eq(r.m[3], math.huge); T.eq(r.m[4], -math.huge)
  T.eq(math.type(r.m[5]), "float", "3.0 stays a float"); T.eq(r.m[6], 0.1, "0.1 exact")
  -- every double survives %.17g: a spread of awkward values
  local vals = {}
  local rr = qd.rng(5)
  for i = 1, 200 do vals[i] = rr:normal() * 10 ^ rr:integer(-300, 300) end
  vals[#vals + 1] = 5e-324; vals[#vals + 1] = 1.7976931348623157e308; vals[#vals + 1] = 2 ^ 53 + 0.0
  local back = optim.restore(json.decode(json.encode(optim.checkpoint { m = vals })))
  local same = true
  for i = 1, #vals do same = same and back.m[i] == vals[i] and math.type(back.m[i]) == "float" end
  T.ok(same, "doubles round-trip bit-exactly through qd.json")
  -- save / load files
  local path = os.tmpname()
  local xs, ss = qd.vector(x0), { lr = 0.01 }
  optim.adam(feval, xs, ss)
  T.ok(optim.save(path, { x = xs, state = ss }), "save")
  local L = optim.load(path)
  os.remove(path)
  T.eq(L.state.t, 1); T.eq(L.x[2], xs[2]); T.eq(L.state.m[3], ss.m[3])
  local okv, err = optim.load("/nonexistent/dir/ckpt.json")
  T.ok(okv == nil and type(err) == "string", "load of a missing file: nil, message")
end)

T.test("optim errors", function()
  local x = qd.vector(x0)
  T.raises(function() optim.adam(1, x, {}) end, "bad argument #1 to 'adam' (function expected, got number)")
  T.raises(function() optim.adam(feval, "x", {}) end, "bad argument #2 to 'adam' (qd.Vector or table of numbers expected, got string)")
  T.raises(function() optim.adam(feval, x) end, "bad argument #3 to 'adam' (state table expected, got nil)")
  T.raises(function() optim.adam(feval, x, { lr = -1 }) end, "state.lr must be a number >= 0")
  T.raises(function() optim.adam(feval, x, { beta1 = 1 }) end, "beta1 and state.beta2 must be < 1")
  T.raises(function() optim.adam(function() return 1, qd.vector(2) end, x, {}) end, "gradient of length 4 expected, got 2")
  T.raises(function() optim.adam(function() return "a", qd.vector(4) end, x, {}) end, "feval must return f (a number)")
  T.raises(function() optim.adam(function() return 1, 2 end, x, {}) end, "grad of type number")
  T.raises(function() optim.adam(feval, x, { m = { 1, 2 } }) end, "state.m holds 2 entries, parameters have 4")
  T.raises(function() optim.adam(feval, x, { v = qd.vector(3) }) end, "state.v holds 3 entries, parameters have 4")
  T.raises(function() optim.adam(feval, x, { m = qd.vector(4, { complex = true }) }) end,
           "state.m holds complex entries, parameters have 4")
  local freed = qd.vector(4); freed:free()
  T.raises(function() optim.adam(feval, x, { v = freed }) end, "state.v holds a freed qd.Vector, parameters have 4")
  T.raises(function() optim.sgd(feval, x, {}) end, "sgd: state.lr (or state.schedule) expected")
  T.raises(function() optim.sgd(feval, x, { lr = 0.1, nesterov = true }) end, "Nesterov momentum requires momentum > 0")
  T.raises(function() optim.adam(feval, qd.vector(4, { complex = true }), {}) end, "real qd.Vector expected")
  T.raises(function() optim.checkpoint { f = print } end, "cannot save a value of type function")
end)

-- ------------------------------------------------------------------ the C loops
-- optim.adam / optim.sgd hand the per-entry loop to C (runtime/lua/lua_optim.c). The loops
-- below are the Lua ones they replaced, verbatim (after the same preparation); the C
-- results must be the same bits — x, m, v, buf — on random inputs.
local function bits(a) return string.pack("<d", a) end

local function lua_adam_loop(x, gt, xt, m, v, n, b1, b2, eps, wd, lr, t)
  local bc1 = 1 - b1 ^ t
  local bc2 = 1 - b2 ^ t
  local step = lr / bc1
  local bc2s = math.sqrt(bc2)
  local sqrt, c1, c2, nstep = math.sqrt, 1 - b1, 1 - b2, -step
  for i = 1, n do
    local gi = gt[i]
    local xi = xt[i]
    if wd ~= 0 then gi = gi + wd * xi end
    local mi = m[i] * b1 + gi * c1
    local vi = v[i] * b2 + gi * gi * c2
    m[i], v[i] = mi, vi
    local denom = sqrt(vi) / bc2s + eps
    x[i] = xi + nstep * (mi / denom)
  end
end

local function lua_sgd_loop(x, g, buf, first, n, lr, mu, damp, wd, nesterov)
  for i = 1, n do
    local gi = g[i]
    local xi = x[i]
    if wd ~= 0 then gi = gi + wd * xi end
    if mu ~= 0 then
      local b
      if first then b = gi + 0.0 else b = buf[i] * mu + gi * (1 - damp) end
      buf[i] = b
      if nesterov then gi = gi + mu * b else gi = b end
    end
    x[i] = xi + (-lr) * gi
  end
end

-- random entries over many magnitudes, with exact zeros of both signs now and then
local function rand_entry(r)
  local u = r:uniform()
  if u < 0.05 then return 0.0 elseif u < 0.1 then return -0.0 end
  return r:normal() * 10 ^ r:integer(-6, 3)
end

local function same_bits(a, b, n)
  for i = 1, n do if bits(a[i]) ~= bits(b[i]) then return false, i end end
  return true
end

T.test("adam: C loop = the Lua loop, bit for bit", function()
  local r = qd.rng(2024)
  local cases = 0
  for _, n in ipairs { 1, 4, 36, 129, 300 } do            -- 129, 300: past the C stack buffer
    for _, xkind in ipairs { "vector", "table" } do
      for _, gkind in ipairs { "vector", "table" } do
        for _, wd in ipairs { 0, 0.0, 1e-2 * r:uniform() } do
          local st = { lr = 10 ^ r:uniform(-4, -1), beta1 = 0.5 + 0.45 * r:uniform(),
                       beta2 = 0.9 + 0.0999 * r:uniform(), eps = 10 ^ r:uniform(-10, -6), weight_decay = wd }
          local x0t = {}
          for i = 1, n do x0t[i] = rand_entry(r) end
          local x = xkind == "vector" and qd.vector(x0t) or { table.unpack(x0t) }
          local rx, rm, rv = { table.unpack(x0t) }, {}, {}
          for i = 1, n do rm[i] = 0.0; rv[i] = 0.0 end
          local ok, where = true, ""
          for t = 1, 6 do
            local gt = {}
            for i = 1, n do gt[i] = rand_entry(r) end
            local g = gkind == "vector" and qd.vector(gt) or gt
            optim.adam(function() return 0, g end, x, st)
            lua_adam_loop(rx, gt, { table.unpack(rx) }, rm, rv, n, st.beta1, st.beta2, st.eps, wd, st.lr, t)
            local okx, ix = same_bits(x, rx, n)
            local okm, im = same_bits(st.m, rm, n)
            local okv, iv = same_bits(st.v, rv, n)
            if not (okx and okm and okv) and ok then
              ok, where = false, string.format("step %d: x %s m %s v %s", t, tostring(ix), tostring(im), tostring(iv))
            end
          end
          T.ok(ok, string.format("adam n=%d x=%s g=%s wd=%s: C = Lua bitwise %s", n, xkind, gkind, tostring(wd), where))
          cases = cases + 1
        end
      end
    end
  end
  T.eq(cases, 60, "cases run")
  -- the gradient may be x itself (the Lua loop read a snapshot; entry i is read before x[i]
  -- is written either way)
  local x = qd.vector { 0.3, -1.5, 2.0, 1e-3 }
  local rx, rm, rv = x:totable(), { 0.0, 0.0, 0.0, 0.0 }, { 0.0, 0.0, 0.0, 0.0 }
  local st = { lr = 0.1, weight_decay = 0.5 }
  for t = 1, 3 do
    optim.adam(function(p) return 0, p end, x, st)
    lua_adam_loop(rx, { table.unpack(rx) }, { table.unpack(rx) }, rm, rv, 4, 0.9, 0.999, 1e-8, 0.5, 0.1, t)
  end
  T.ok(same_bits(x, rx, 4) and same_bits(st.m, rm, 4) and same_bits(st.v, rv, 4), "adam with grad = x")
  -- numbers that are strings are taken as Lua arithmetic takes them
  local xs, xr = qd.vector { 1.0, 2.0 }, qd.vector { 1.0, 2.0 }
  optim.adam(function() return 0, { "0.25", "-1e-3" } end, xs, {})
  optim.adam(function() return 0, { 0.25, -1e-3 } end, xr, {})
  T.ok(same_bits(xs, xr, 2), "numeric strings in a gradient table")
end)

T.test("sgd: C loop = the Lua loop, bit for bit", function()
  local r = qd.rng(77)
  local cases = 0
  for _, n in ipairs { 1, 36, 200 } do
    for _, xkind in ipairs { "vector", "table" } do
      for _, gkind in ipairs { "vector", "table" } do
        for _, cfg in ipairs { {}, { momentum = 0.9 }, { momentum = 0.9, nesterov = true },
                               { momentum = 0.7, dampening = 0.2, weight_decay = 1e-2 },
                               { momentum = 0.8, nesterov = true, weight_decay = 3e-3 }, { weight_decay = 0.1 } } do
          local st = { lr = 10 ^ r:uniform(-4, -1) }
          for k, val in pairs(cfg) do st[k] = val end
          local mu, damp, wd = cfg.momentum or 0.0, cfg.dampening or 0.0, cfg.weight_decay or 0.0
          local x0t = {}
          for i = 1, n do x0t[i] = rand_entry(r) end
          local x = xkind == "vector" and qd.vector(x0t) or { table.unpack(x0t) }
          local rx, rbuf = { table.unpack(x0t) }, {}
          local ok, where = true, ""
          for t = 1, 5 do
            local gt = {}
            for i = 1, n do gt[i] = rand_entry(r) end
            local g = gkind == "vector" and qd.vector(gt) or gt
            optim.sgd(function() return 0, g end, x, st)
            lua_sgd_loop(rx, gt, rbuf, t == 1, n, st.lr, mu, damp, wd, cfg.nesterov or false)
            local okx, ix = same_bits(x, rx, n)
            local okb, ib = true, nil
            if mu ~= 0 then okb, ib = same_bits(st.buf, rbuf, n) end
            if not (okx and okb) and ok then
              ok, where = false, string.format("step %d: x %s buf %s", t, tostring(ix), tostring(ib))
            end
          end
          T.ok(ok, string.format("sgd n=%d x=%s g=%s mu=%g nesterov=%s wd=%g: C = Lua bitwise %s", n, xkind, gkind,
                                 mu, tostring(cfg.nesterov), wd, where))
          T.ok(mu ~= 0 or st.buf == nil, "no momentum buffer without momentum")
          cases = cases + 1
        end
      end
    end
  end
  T.eq(cases, 72, "cases run")
end)

T.test("optim: bad entries and the C functions' checks", function()
  local core = require "qd.core"
  -- a bad entry raises before anything is written
  local x = qd.vector(x0)
  local st = {}
  T.raises(function() optim.adam(function() return 0, { 1, "a", 3, 4 } end, x, st) end,
           "adam: gradient entry 2: number expected, got string")
  for i = 1, 4 do T.eq(x[i], x0[i], "x untouched after a bad gradient entry") end
  for i = 1, 4 do T.eq(st.m[i], 0.0, "m untouched"); T.eq(st.v[i], 0.0, "v untouched") end
  T.raises(function() optim.adam(function() return 0, { 1, 2, 3, nil } end, x, {}) end,
           "gradient of length 4 expected, got 3")
  T.raises(function() optim.adam(feval, x, { m = { 0, 0, {}, 0 } }) end,
           "adam: state.m entry 3: number expected, got table")
  T.raises(function() optim.adam(feval, x, { v = { 0, true, 0, 0 } }) end,
           "adam: state.v entry 2: number expected, got boolean")
  T.raises(function() optim.adam(function() return 0, { 0, 0, 0 } end, { 1, 2, "z" }, {}) end,
           "adam: parameter entry 3: number expected, got string")
  T.raises(function() optim.sgd(feval, x, { lr = 0.1, momentum = 0.9, buf = { 0, 0, false, 0 } }) end,
           "sgd: state.buf entry 3: number expected, got boolean")
  for i = 1, 4 do T.eq(x[i], x0[i], "x untouched after bad state entries") end
  T.raises(function() optim.sgd(function() return 0, { 1, 2, {} } end, { 1, 2, 3 }, { lr = 1 }) end,
           "sgd: gradient entry 3: number expected, got table")
  T.raises(function() optim.sgd(function() return 0, { 1, 2 } end, { 1, "q" }, { lr = 1 }) end,
           "sgd: parameter entry 2: number expected, got string")
  -- a freed qd.Vector: the same errors as before the fast path
  local xf = qd.vector(4)
  xf:free()
  T.raises(function() optim.adam(feval, xf, {}) end, "qd.Vector has been freed")
  local gf = qd.vector(4)
  gf:free()
  T.raises(function() optim.sgd(function() return 0, gf end, qd.vector(4), { lr = 1 }) end, "qd.Vector has been freed")
  T.raises(function() optim.adam(function() return 0, qd.vector(4, { complex = true }) end, x, {}) end,
           "adam: real gradient expected, got a complex qd.Vector")
  -- the internal C functions check what they are given
  local m4, v4 = { 0, 0, 0, 0 }, { 0, 0, 0, 0 }
  local g4 = qd.vector(4)
  T.raises(function() core.optim_adam("x", g4, m4, v4, 4, 0.9, 0.999, 1e-8, 0, -1e-3, 1) end,
           "bad argument #1 to 'optim_adam' (parameters: real qd.Vector or table expected, got string)")
  T.raises(function() core.optim_adam(x, qd.matrix(2, 2), m4, v4, 4, 0.9, 0.999, 1e-8, 0, -1e-3, 1) end,
           "bad argument #2 to 'optim_adam' (gradient: real qd.Vector or table expected, got qd.Matrix)")
  T.raises(function() core.optim_adam(qd.vector(4, { complex = true }), g4, m4, v4, 4, 0.9, 0.999, 1e-8, 0, -1e-3, 1) end,
           "(parameters: real qd.Vector expected, got a complex one)")
  T.raises(function() core.optim_adam(x, qd.vector(3), m4, v4, 4, 0.9, 0.999, 1e-8, 0, -1e-3, 1) end,
           "(gradient: qd.Vector of length 4 expected, got 3)")
  T.raises(function() core.optim_adam(xf, g4, m4, v4, 4, 0.9, 0.999, 1e-8, 0, -1e-3, 1) end,
           "(parameters: qd.Vector has been freed)")
  T.raises(function() core.optim_adam(x, g4, m4, v4, -1, 0.9, 0.999, 1e-8, 0, -1e-3, 1) end,
           "bad argument #5 to 'optim_adam' (parameter count >= 0 expected)")
  T.raises(function() core.optim_adam(x, g4, nil, v4, 4, 0.9, 0.999, 1e-8, 0, -1e-3, 1) end,
           "bad argument #3 to 'optim_adam' (state.m: real qd.Vector or table expected, got nil)")
  T.raises(function() core.optim_adam(x, g4, m4, qd.vector(3), 4, 0.9, 0.999, 1e-8, 0, -1e-3, 1) end,
           "bad argument #4 to 'optim_adam' (state.v: qd.Vector of length 4 expected, got 3)")
  T.raises(function() core.optim_adam(x, g4, m4, v4, 4, 0.9, "b", 1e-8, 0, -1e-3, 1) end,
           "bad argument #7 to 'optim_adam' (number expected, got string)")
  T.raises(function() core.optim_adam(x, g4, m4, v4, 4, 0.9, 0.999, 1e-8, 0, -1e-3, 1, 5) end,
           "optim_adam")
  T.raises(function() core.optim_sgd(x, g4, nil, 4, 0.1, 0.9, 0, 0, false, true) end,
           "bad argument #3 to 'optim_sgd' (table expected, got nil)")
  T.raises(function() core.optim_sgd(x, 7, nil, 4, 0.1, 0, 0, 0, false, true) end,
           "bad argument #2 to 'optim_sgd' (gradient: real qd.Vector or table expected, got number)")
  T.raises(function() core.optim_sgd(x, g4, nil, 4, nil, 0, 0, 0, false, true) end,
           "bad argument #5 to 'optim_sgd' (number expected, got nil)")
  for i = 1, 4 do T.eq(x[i], x0[i], "x untouched by rejected calls") end
  -- n = 0 does nothing; optim_vinfo: length and complexity of a live Vector, else nothing
  core.optim_adam({}, {}, {}, {}, 0, 0.9, 0.999, 1e-8, 0, -1e-3, 1)
  local n, c = core.optim_vinfo(qd.vector(5, { complex = true }))
  T.ok(n == 5 and c == true, "vinfo of a complex Vector")
  n, c = core.optim_vinfo(qd.vector(3))
  T.ok(n == 3 and c == false, "vinfo of a real Vector")
  T.eq(select("#", core.optim_vinfo({})), 0, "vinfo of a table: nothing")
  T.eq(select("#", core.optim_vinfo(xf)), 0, "vinfo of a freed Vector: nothing")
  T.eq(select("#", core.optim_vinfo(qd.matrix(2, 2))), 0, "vinfo of a Matrix: nothing")
end)

-- A misspelt option in the state table is an error naming the key and the function, at
-- the caller's line (not trained silently with the default rate).
T.test("optim: unknown state keys are errors at the caller's line", function()
  local feval = function(x) return 0, { 0 * x[1] } end
  local ok, err = pcall(function() qd.optim.adam(feval, { 1 }, { learning_rate = 0.1 }) end)
  T.ok(not ok, "adam refuses learning_rate")
  T.ok(tostring(err):find("test_optim.lua:%d+: bad argument #3 to 'adam' %(unknown key 'learning_rate' in the state table; known: beta1, beta2, eps, lr, m, schedule, t, v, weight_decay%)") ~= nil,
       tostring(err))
  ok, err = pcall(function() qd.optim.sgd(feval, { 1 }, { lr = 0.1, momentun = 0.9 }) end)
  T.ok(not ok and tostring(err):find("test_optim.lua:%d+: bad argument #3 to 'sgd' %(unknown key 'momentun'") ~= nil,
       tostring(err))
  -- a state carried from step to step keeps working (t, m, v, buf are known keys)
  local st = { lr = 0.1 }
  for _ = 1, 3 do qd.optim.adam(feval, { 1 }, st) end
  T.eq(st.t, 3, "adam state reused")
  local st2 = { lr = 0.1, momentum = 0.9, nesterov = true }
  for _ = 1, 3 do qd.optim.sgd(feval, { 1 }, st2) end
  T.eq(st2.t, 3, "sgd state reused")
  -- errors deeper in the module point at the caller too
  ok, err = pcall(function() qd.optim.adam(feval, { 1 }, { lr = -1 }) end)
  T.ok(not ok and tostring(err):find("^[^\n]*test_optim.lua:%d+: adam: state.lr") ~= nil, tostring(err))
  ok, err = pcall(function() qd.optim.schedule.cosine { lr = 1, T = 3, lr_mni = 0 } end)
  T.ok(not ok and tostring(err):find("test_optim.lua:%d+: bad argument #1 to 'schedule.cosine' %(unknown option 'lr_mni'") ~= nil,
       tostring(err))
end)

T.test("optim: save/load go through record.write_atomic", function()
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  local p = dir .. "/s.json"
  T.ok(qd.optim.save(p, { lr = 0.5, t = 2 }), "saved")
  local back = qd.optim.load(p)
  T.eq(back.lr, 0.5, "lr back")
  T.eq(back.t, 2, "t back")
  local ok, err = qd.optim.save(dir .. "/missing/s.json", { lr = 1 })
  T.ok(ok == nil and tostring(err):find("cannot write", 1, true) ~= nil, tostring(err))
  local names = {}
  for f in io.popen("ls -a " .. dir):lines() do if f ~= "." and f ~= ".." then names[#names + 1] = f end end
  T.eq(#names, 1, "no temporary left: " .. table.concat(names, " "))
  os.execute("rm -rf " .. dir)
end)

T.test("freeze: a frozen part is converted and encoded once, the checkpoint text unchanged", function()
  local function state(frz)
    local s = { trained = {}, cur = { losses = { 0.5 } } }
    for t = 1, 3 do
      local e = { t = t, params = qd.vector { 0.1 * t, -0.0, 1 / 3 }, losses = { 1 / 7, 0 / 0, math.huge, t } }
      s.trained[t] = frz and optim.freeze(e) or e
    end
    return s
  end
  local plain, frozen = state(false), state(true)
  local want = json.encode(optim.checkpoint(plain))
  T.eq(json.encode(optim.checkpoint(frozen)), want, "the same text as without freeze")
  T.eq(json.encode(optim.checkpoint(frozen)), want, "the same text the second time (from the caches)")
  -- the cache is really used: a frozen table's later change is not seen (the promise broken
  -- on purpose here), while the unfrozen part is re-encoded
  frozen.trained[1].losses[1] = 2
  frozen.cur.losses[1] = 0.25
  local again = json.encode(optim.checkpoint(frozen))
  T.ok(again:find("0.14285714285714285", 1, true), "frozen entry: the first encoding kept")
  T.ok(again:find("[0.25]", 1, true), "unfrozen part: re-encoded")
  local back = optim.restore(json.decode(want))
  T.eq(back.trained[2].params[3], 1 / 3, "restored exactly")
  T.ok(back.trained[1].losses[2] ~= back.trained[1].losses[2], "NaN restored")
  -- an indented encoding is never cached
  local J = json.freeze { a = { 1, 2 } }
  T.eq(json.encode(J), '{"a":[1,2]}', "compact")
  T.ok(json.encode(J, { indent = true }):find("\n", 1, true), "indented encoding made anew")
  T.eq(json.encode(J), '{"a":[1,2]}', "compact again")
  T.raises(function() optim.freeze(3) end, "bad argument #1 to 'freeze' (table expected, got number)")
  T.raises(function() json.freeze("x") end, "bad argument #1 to 'freeze' (table expected, got string)")
end)
