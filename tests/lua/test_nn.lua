-- test_nn.lua — qd.nn: the MLP's forward pass against a naive Lua evaluation, its parameter
-- and input gradients against central finite differences for every activation, the
-- PyTorch-default initialisation bounds, mse, columns, vstack, training with qd.optim.adam,
-- thread independence, and every error message. The same for the residual 1-D convolution
-- network qd.nn.conv (against a naive per-step evaluation written from the formula), with and
-- without its self-attention sub-blocks (heads > 0).
local T = require "testlib"
local nn = qd.nn

local acts = { "linear", "relu", "tanh", "sigmoid", "silu" }
local function actf(name, z)
  if name == "linear" then return z end
  if name == "relu" then return z > 0 and z or 0 end
  if name == "tanh" then return math.tanh and math.tanh(z) or (math.exp(2 * z) - 1) / (math.exp(2 * z) + 1) end
  local s = 1 / (1 + math.exp(-z))
  if name == "sigmoid" then return s end
  return z * s
end

-- naive forward: parameters layer by layer, W column-major (n_out x n_in), then b
local function naive(sizes, hidden, output, p, X)
  local B = select(2, X:shape())
  local out = {}
  for j = 1, B do
    local a = {}
    for i = 1, sizes[1] do a[i] = X:get(i, j) end
    local off = 0
    for l = 2, #sizes do
      local nin, nout = sizes[l - 1], sizes[l]
      local z = {}
      for r = 1, nout do
        local s = p[off + nout * nin + r]
        for c = 1, nin do s = s + p[off + (c - 1) * nout + r] * a[c] end
        z[r] = actf(l == #sizes and output or hidden, s)
      end
      off = off + nout * (nin + 1)
      a = z
    end
    out[j] = a
  end
  return out
end

local function randmat(rows, cols, rng, scale)
  local M = qd.matrix(rows, cols)
  for j = 1, cols do for i = 1, rows do M:set(i, j, (scale or 1) * (2 * rng:uniform() - 1)) end end
  return M
end

T.test("forward against a naive evaluation, every activation", function()
  local rng = qd.rng(11)
  for _, h in ipairs(acts) do
    for _, o in ipairs({ "linear", "sigmoid" }) do
      local sizes = { 4, 6, 5, 3 }
      local net = nn.mlp { sizes = sizes, activation = h, output = o }
      T.eq(net:nparams(), 6 * 5 + 5 * 7 + 3 * 6, "nparams")
      local p = net:init(rng)
      local X = randmat(4, 7, rng, 2)
      local Y = net:forward(X, p)
      local ref = naive(sizes, h, o, p, X)
      local err = 0
      for j = 1, 7 do for i = 1, 3 do err = math.max(err, math.abs(Y:get(i, j) - ref[j][i])) end end
      T.ok(err < 1e-13, h .. "/" .. o .. ": forward matches the naive evaluation (" .. err .. ")")
    end
  end
end)

T.test("initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), seeded", function()
  local net = nn.mlp { sizes = { 16, 4 } }
  local p = net:init(qd.rng(3))
  local lo, hi = math.huge, -math.huge
  for i = 1, #p do lo, hi = math.min(lo, p[i]), math.max(hi, p[i]) end
  T.ok(lo >= -0.25 and hi <= 0.25 and hi - lo > 0.3, "bounds of 1/sqrt(16)")
  local q = net:init(qd.rng(3))
  local same = true
  for i = 1, #p do same = same and p[i] == q[i] end
  T.ok(same, "same seed, same parameters")
end)

-- L = sum_ij c_ij Y_ij^2 / 2 (so dL/dY = c .* Y)
local function quad_loss(C)
  return function(Y)
    local rows, cols = Y:shape()
    local G, L = qd.matrix(rows, cols), 0
    for j = 1, cols do for i = 1, rows do
      local y, c = Y:get(i, j), C:get(i, j)
      L = L + 0.5 * c * y * y
      G:set(i, j, c * y)
    end end
    return L, G
  end
end

T.test("parameter and input gradients against finite differences", function()
  local rng = qd.rng(5)
  for _, h in ipairs(acts) do
    local net = nn.mlp { sizes = { 3, 5, 4, 2 }, activation = h, output = h == "linear" and "tanh" or "linear" }
    local p = net:init(rng)
    local X = randmat(3, 4, rng, 1.5)
    local C = randmat(2, 4, rng)
    local lossfn = quad_loss(C)
    local L, g, Y = net:grad(X, p, lossfn)
    T.ok(math.abs(L - lossfn(net:forward(X, p))) < 1e-15, h .. ": grad returns the loss")
    T.eq(select(2, Y:shape()), 4, "grad returns the output")
    local eps, worst = 1e-6, 0
    for i = 1, #p do
      local s = p[i]
      p[i] = s + eps; local lp = lossfn(net:forward(X, p))
      p[i] = s - eps; local lm = lossfn(net:forward(X, p))
      p[i] = s
      worst = math.max(worst, math.abs((lp - lm) / (2 * eps) - g[i]))
    end
    -- relu's kink: no input sits on it with these random draws
    T.ok(worst < 1e-8, h .. ": dL/dparams matches finite differences (" .. worst .. ")")
    local G = select(2, lossfn(net:forward(X, p)))
    local g2, gX = net:vjp(X, p, G)
    local same = true
    for i = 1, #g do same = same and g2[i] == g[i] end
    T.ok(same, h .. ": vjp gives grad's parameter gradient")
    worst = 0
    for j = 1, 4 do for i = 1, 3 do
      local s = X:get(i, j)
      X:set(i, j, s + eps); local lp = lossfn(net:forward(X, p))
      X:set(i, j, s - eps); local lm = lossfn(net:forward(X, p))
      X:set(i, j, s)
      worst = math.max(worst, math.abs((lp - lm) / (2 * eps) - gX:get(i, j)))
    end end
    T.ok(worst < 1e-8, h .. ": dL/dX matches finite differences (" .. worst .. ")")
  end
end)

T.test("mse: value and gradient (PyTorch's MSELoss, mean)", function()
  local Y, Tm = qd.matrix { { 1, 2 }, { 3, 4 } }, qd.matrix { { 0, 2 }, { 1, 1 } }
  T.near(nn.mse(Y, Tm), (1 + 0 + 4 + 9) / 4, 1e-15, "value")
  local L, G = nn.mse(Y, Tm, { grad = true })
  T.near(L, 3.5, 1e-15, "value with grad")
  T.near(G:get(2, 2), 2 * 3 / 4, 1e-15, "gradient entry")
  T.eq(getmetatable(G).__name, "qd.Matrix", "gradient shaped like Y")
  local v = nn.mse(qd.vector { 1, 1 }, qd.vector { 0, 0 }, { grad = true })
  T.near(v, 1, 0, "vectors")
end)

T.test("columns and vstack", function()
  local M = qd.matrix { { 1, 2, 3 }, { 4, 5, 6 } }
  local C = nn.columns(M, { 3, 1, 3 })
  T.eq(C:get(1, 1), 3, "first chosen column"); T.eq(C:get(2, 2), 4, "second"); T.eq(select(2, C:shape()), 3, "count")
  local S = nn.vstack(M, qd.matrix { { 7, 8, 9 } })
  T.eq(S:shape(), 3, "rows stacked"); T.eq(S:get(3, 2), 8, "entry of the second block")
  local Z = nn.vstack(qd.matrix { { 1 } }, qd.matrix { { { 0, 1 } } })
  T.ok(Z:is_complex(), "complex when any block is")
end)

T.test("training a small regression with qd.optim.adam lowers the loss", function()
  local rng = qd.rng(9)
  local net = nn.mlp { sizes = { 2, 16, 1 }, activation = "tanh" }
  local p = net:init(rng)
  local X = randmat(2, 32, rng)
  local Ty = qd.matrix(1, 32)
  for j = 1, 32 do Ty:set(1, j, X:get(1, j) * X:get(2, j)) end
  local function feval(th)
    local L, g = net:grad(X, th, function(Y) return nn.mse(Y, Ty, { grad = true }) end)
    return L, g
  end
  local st = { lr = 0.05 }
  local first = feval(p)
  for _ = 1, 300 do qd.optim.adam(feval, p, st) end
  local last = feval(p)
  T.ok(last < 0.1 * first, string.format("loss falls by 10x (%.3g -> %.3g)", first, last))
end)

T.test("results do not depend on the thread count", function()
  local rng = qd.rng(2)
  local net = nn.mlp { sizes = { 40, 300, 40 }, activation = "silu" }
  local p = net:init(rng)
  local X = randmat(40, 600, rng)
  local t0 = qd.threads()
  qd.set_threads(1)
  local _, g1, Y1 = net:grad(X, p, function(Y) return nn.mse(Y, X, { grad = true }) end)
  qd.set_threads(2)
  local _, g2, Y2 = net:grad(X, p, function(Y) return nn.mse(Y, X, { grad = true }) end)
  qd.set_threads(t0)
  local same = true
  for i = 1, #g1 do same = same and g1[i] == g2[i] end
  for i = 1, 40 do same = same and Y1:get(i, 600) == Y2:get(i, 600) end
  T.ok(same, "1 and 2 threads give the same bits")
end)

T.test("error messages", function()
  T.raises(function() nn.mlp {} end, "option 'sizes': table of layer widths")
  T.raises(function() nn.mlp { sizes = { 3 } } end, "at least two widths")
  T.raises(function() nn.mlp { sizes = { 3, 0 } } end, "entry 2: integer in 1")
  T.raises(function() nn.mlp { sizes = { 3, 2.5 } } end, "entry 2: integer")
  T.raises(function() nn.mlp { sizes = { 3, 2 }, activation = "elu" } end, "option 'activation': one of linear")
  T.raises(function() nn.mlp { sizes = { 3, 2 }, act = "relu" } end, "act")
  T.raises(function() nn.mlp { sizes = { 1048576, 1048576, 1048576 } }:init(qd.rng(1)) end, "not enough memory")
  local net = nn.mlp { sizes = { 2, 3 } }
  local p = net:init(qd.rng(1))
  T.raises(function() net:forward(qd.matrix(3, 1), p) end, "inputs: 2 rows expected")
  T.raises(function() net:forward(qd.matrix(2, 1, { complex = true }), p) end, "real qd.Matrix expected")
  T.raises(function() net:forward(qd.matrix(2, 1), qd.vector(5)) end, "real qd.Vector of 9 parameters expected")
  T.raises(function() net:forward(qd.matrix(2, 1), "x") end, "bad argument #2")
  local bad = qd.matrix(2, 1); bad:set(1, 1, 0 / 0)
  T.raises(function() net:forward(bad, p) end, "inputs: entry 1 is not finite")
  local pn = p:copy(); pn[3] = math.huge
  T.raises(function() net:forward(qd.matrix(2, 1), pn) end, "parameter 3 is not finite")
  T.raises(function() net:grad(qd.matrix(2, 1), p, function() return "x" end) end, "must return a number first")
  T.raises(function() net:grad(qd.matrix(2, 1), p, function() return 1, qd.matrix(2, 1) end) end,
           "(dL/dY): 3 rows expected")
  T.raises(function() net:grad(qd.matrix(2, 2), p, function() return 1, qd.matrix(3, 1) end) end,
           "2 columns expected")
  T.raises(function() net:grad(qd.matrix(2, 1), p, function() local G = qd.matrix(3, 1); G:set(1, 1, 0 / 0); return 1, G end) end,
           "entry 1 is not finite")
  T.raises(function() net:grad(qd.matrix(2, 1), p) end, "function expected")
  T.raises(function() net:vjp(qd.matrix(2, 1), p, qd.matrix(2, 1)) end, "G: 3 rows expected")
  T.raises(function() net.forward(5) end, "qd.MLP expected, got number")
  T.raises(function() net:init("x") end, "bad argument #1 to 'init' (qd.Rng (or an integer seed) expected, got string)")
  T.eq(net:init(4)[2], net:init(qd.rng(4))[2], "an integer seed for the generator")
  T.raises(function() nn.mse(qd.matrix(2, 2), qd.matrix(2, 3)) end, "2x2 array expected")
  T.raises(function() nn.mse(qd.matrix(2, 2), qd.matrix(2, 2), { grad = true, x = 1 }) end, "x")
  T.raises(function() nn.columns(qd.matrix(2, 2), { 3 }) end, "entry 1: column number in 1..2")
  T.raises(function() nn.columns(qd.matrix(2, 2), {}) end, "non-empty list")
  T.raises(function() nn.vstack(qd.matrix(2, 2), qd.matrix(2, 3)) end, "2 columns expected")
  T.raises(function() nn.vstack() end, "got no value")
  T.eq(tostring(net), "qd.MLP(2 -> 3; relu, output linear; 9 parameters)", "tostring")
  local s = net:spec()
  T.eq(s.sizes[2], 3, "spec sizes"); T.eq(s.output, "linear", "spec output")
  T.eq(nn.mlp(s):nparams(), 9, "spec rebuilds the network")
end)


-- ------------------------------------------------------------------ qd.nn.conv

-- naive evaluation from the formula in qd_nn.h, reading the parameters in their documented order
local function naive_conv(s, p, X)
  local G, ci, H, co, k, L, nc = s.length, s.inputs, s.channels, s.outputs, s.kernel, s.layers, s.cond
  local nh = s.heads or 0
  local r = (k - 1) // 2
  local B = select(2, X:shape())
  local pos = 0
  local function mat(rows, cols)   -- column-major block of the parameter vector
    local o = pos
    pos = pos + rows * cols
    return function(i, j) return p[o + (j - 1) * rows + i] end
  end
  local Win, bin, P = mat(H, ci), mat(H, 1), mat(H, G)
  local blocks = {}
  for l = 1, L do
    blocks[l] = {}
    if nh > 0 then
      blocks[l].Wq, blocks[l].bq, blocks[l].Wa, blocks[l].ba = mat(3 * H, H), mat(3 * H, 1), mat(H, H), mat(H, 1)
    end
    blocks[l].C, blocks[l].bc, blocks[l].U = mat(H, k * H), mat(H, 1), mat(H, nc)
    blocks[l].Wo, blocks[l].bo = mat(H, H), mat(H, 1)
  end
  -- self-attention of one block: m_t = a_t + W_a o_t + b_a, heads of d = H / nh features
  local function attend(bl, a)
    local d, qkv, m = H // nh, {}, {}
    for t = 1, G do
      qkv[t] = {}
      for i = 1, 3 * H do
        local v = bl.bq(i, 1)
        for c = 1, H do v = v + bl.Wq(i, c) * a[t][c] end
        qkv[t][i] = v
      end
    end
    for t = 1, G do
      local o = {}
      for h = 0, nh - 1 do
        local sc, mx, sum = {}, -math.huge, 0
        for u = 1, G do
          local v = 0
          for i = 1, d do v = v + qkv[t][h * d + i] * qkv[u][H + h * d + i] end
          sc[u] = v / math.sqrt(d)
          mx = math.max(mx, sc[u])
        end
        for u = 1, G do sc[u] = math.exp(sc[u] - mx); sum = sum + sc[u] end
        for i = 1, d do
          local v = 0
          for u = 1, G do v = v + sc[u] / sum * qkv[u][2 * H + h * d + i] end
          o[h * d + i] = v
        end
      end
      m[t] = {}
      for i = 1, H do
        local v = a[t][i] + bl.ba(i, 1)
        for c = 1, H do v = v + bl.Wa(i, c) * o[c] end
        m[t][i] = v
      end
    end
    return m
  end
  local Wout, bout = mat(co, H), mat(co, 1)
  assert(pos == #p)
  local out = {}
  for b = 1, B do
    local a = {}
    for t = 1, G do
      a[t] = {}
      for i = 1, H do
        local v = bin(i, 1) + P(i, t)
        for c = 1, ci do v = v + Win(i, c) * X:get((t - 1) * ci + c, b) end
        a[t][i] = v
      end
    end
    for l = 1, L do
      local bl, an = blocks[l], {}
      if nh > 0 then a = attend(bl, a) end
      for t = 1, G do
        an[t] = {}
        local h = {}
        for i = 1, H do
          local z = bl.bc(i, 1)
          for c = 1, nc do z = z + bl.U(i, c) * X:get(G * ci + c, b) end
          for j = 0, k - 1 do
            local src = t + j - r
            if src >= 1 and src <= G then
              for c = 1, H do z = z + bl.C(i, j * H + c) * a[src][c] end
            end
          end
          h[i] = actf(s.activation, z)
        end
        for i = 1, H do
          local v = a[t][i] + bl.bo(i, 1)
          for c = 1, H do v = v + bl.Wo(i, c) * h[c] end
          an[t][i] = v
        end
      end
      a = an
    end
    out[b] = {}
    for t = 1, G do
      for o = 1, co do
        local v = bout(o, 1)
        for c = 1, H do v = v + Wout(o, c) * a[t][c] end
        out[b][(t - 1) * co + o] = v
      end
    end
  end
  return out
end

local conv_specs = {
  { length = 5, inputs = 3, channels = 4, outputs = 2, kernel = 3, layers = 2, cond = 2, activation = "silu" },
  { length = 4, inputs = 2, channels = 3, outputs = 3, kernel = 7, layers = 1, cond = 0, activation = "tanh" },
  { length = 6, inputs = 2, channels = 5, outputs = 1, kernel = 1, layers = 3, cond = 3, activation = "relu" },
  { length = 3, inputs = 4, channels = 2, outputs = 2, kernel = 5, layers = 0, cond = 1, activation = "sigmoid" },
  -- with self-attention: two heads, one head, a transformer layer (kernel 1), four heads of 1
  { length = 5, inputs = 3, channels = 4, outputs = 2, kernel = 3, layers = 2, cond = 2, activation = "silu", heads = 2 },
  { length = 4, inputs = 2, channels = 3, outputs = 3, kernel = 3, layers = 1, cond = 0, activation = "tanh", heads = 1 },
  { length = 6, inputs = 2, channels = 4, outputs = 2, kernel = 1, layers = 2, cond = 3, activation = "relu", heads = 4 },
  { length = 1, inputs = 2, channels = 2, outputs = 1, kernel = 1, layers = 1, cond = 1, activation = "silu", heads = 2 },
}

T.test("conv: forward against a naive evaluation", function()
  local rng = qd.rng(21)
  for n, s in ipairs(conv_specs) do
    local net = nn.conv(s)
    local H, k = s.channels, s.kernel
    T.eq(net:nparams(), H * (s.inputs + 1 + s.length) + s.layers * (H * (k * H + 1) + H * s.cond + H * (H + 1)
         + ((s.heads or 0) > 0 and 4 * H * (H + 1) or 0)) + s.outputs * (H + 1), n .. ": nparams")
    local p = net:init(rng)
    -- larger parameters than the initialisation, so every path matters
    for i = 1, #p do p[i] = 2 * p[i] end
    local X = randmat(s.inputs * s.length + s.cond, 3, rng, 1.5)
    local Y = net:forward(X, p)
    T.eq(Y:shape(), s.outputs * s.length, n .. ": output rows")
    local ref = naive_conv(s, p, X)
    local err = 0
    for b = 1, 3 do for i = 1, s.outputs * s.length do err = math.max(err, math.abs(Y:get(i, b) - ref[b][i])) end end
    T.ok(err < 1e-12, n .. ": forward matches the naive evaluation (" .. err .. ")")
  end
end)

T.test("conv: a sample's output depends only on its own column; the kernel's reach", function()
  local s = { length = 8, inputs = 2, channels = 3, outputs = 1, kernel = 3, layers = 1, cond = 1 }
  local net = nn.conv(s)
  local p = net:init(qd.rng(4))
  local rng = qd.rng(5)
  local X = randmat(17, 2, rng)
  local Y = net:forward(X, p)
  local X2 = X:copy()
  X2:set(1, 1, X:get(1, 1) + 1)   -- step 1 of sample 1
  local Y2 = net:forward(X2, p)
  local same2, changed = true, {}
  for i = 1, 8 do
    same2 = same2 and Y:get(i, 2) == Y2:get(i, 2)
    changed[i] = Y:get(i, 1) ~= Y2:get(i, 1)
  end
  T.ok(same2, "the other sample is unchanged")
  -- one block of kernel 3: step 1 reaches steps 1 and 2 only
  T.ok(changed[1] and changed[2] and not changed[3] and not changed[8], "receptive field of one kernel-3 block")
  -- with attention, one block of kernel 1 reaches every step; without it, only its own
  s.kernel = 1
  for _, nh in ipairs { 0, 3 } do
    s.heads = nh
    local an = nn.conv(s)
    local pa = an:init(qd.rng(4))
    local Ya, Ya2 = an:forward(X, pa), an:forward(X2, pa)
    local all, others = true, false
    for i = 1, 8 do
      all = all and Ya:get(i, 1) ~= Ya2:get(i, 1)
      others = others or (i > 1 and Ya:get(i, 1) ~= Ya2:get(i, 1))
      all = all and Ya:get(i, 2) == Ya2:get(i, 2)
    end
    if nh > 0 then T.ok(all, "attention: step 1 reaches all 8 steps, the other sample unchanged")
    else T.ok(not others, "kernel 1 without attention: step 1 reaches only itself") end
  end
end)

T.test("conv: parameter and input gradients against finite differences", function()
  local rng = qd.rng(6)
  for n, s in ipairs(conv_specs) do
    local net = nn.conv(s)
    local p = net:init(rng)
    for i = 1, #p do p[i] = 2 * p[i] end
    local X = randmat(s.inputs * s.length + s.cond, 3, rng, 1.5)
    local C = randmat(s.outputs * s.length, 3, rng)
    local lossfn = quad_loss(C)
    local L, g = net:grad(X, p, lossfn)
    T.ok(math.abs(L - lossfn(net:forward(X, p))) < 1e-14, n .. ": grad returns the loss")
    local eps, worst, scale = 1e-6, 0, 0
    for i = 1, #p do
      local v = p[i]
      p[i] = v + eps; local lp = lossfn(net:forward(X, p))
      p[i] = v - eps; local lm = lossfn(net:forward(X, p))
      p[i] = v
      worst = math.max(worst, math.abs((lp - lm) / (2 * eps) - g[i]))
      scale = math.max(scale, math.abs(g[i]))
    end
    T.ok(worst < 1e-7 * math.max(1, scale), n .. ": dL/dparams matches finite differences (" .. worst .. ")")
    local G = select(2, lossfn(net:forward(X, p)))
    local g2, gX = net:vjp(X, p, G)
    local same = true
    for i = 1, #g do same = same and g2[i] == g[i] end
    T.ok(same, n .. ": vjp gives grad's parameter gradient")
    worst = 0
    local rows = s.inputs * s.length + s.cond
    for j = 1, 3 do for i = 1, rows do
      local v = X:get(i, j)
      X:set(i, j, v + eps); local lp = lossfn(net:forward(X, p))
      X:set(i, j, v - eps); local lm = lossfn(net:forward(X, p))
      X:set(i, j, v)
      worst = math.max(worst, math.abs((lp - lm) / (2 * eps) - gX:get(i, j)))
    end end
    T.ok(worst < 1e-7, n .. ": dL/dX (steps and condition) matches finite differences (" .. worst .. ")")
  end
end)

T.test("conv: initialisation bounds, seeded", function()
  local s = { length = 4, inputs = 16, channels = 4, outputs = 2, kernel = 3, layers = 1, cond = 4 }
  local net = nn.conv(s)
  local p = net:init(qd.rng(3))
  local hi = 0
  for i = 1, 4 * (16 + 1 + 4) do hi = math.max(hi, math.abs(p[i])) end
  T.ok(hi <= 0.25 and hi > 0.15, "input projection and positions within 1/sqrt(inputs)")
  local o, hc = 4 * 21, 0
  for i = o + 1, o + 4 * 13 do hc = math.max(hc, math.abs(p[i])) end
  T.ok(hc <= 1 / math.sqrt(12) and hc > 0.2, "convolution within 1/sqrt(kernel * channels)")
  T.eq(net:init(qd.rng(3))[#p], p[#p], "same seed, same parameters")
  -- with attention the block opens with W_qkv, b_qkv, W_a, b_a within 1/sqrt(channels)
  s.heads, s.channels = 2, 16
  local pa = nn.conv(s):init(qd.rng(3))
  local ha = 0
  o = 16 * 21
  for i = o + 1, o + 4 * 16 * 17 do ha = math.max(ha, math.abs(pa[i])) end
  T.ok(ha <= 0.25 and ha > 0.24, "attention within 1/sqrt(channels) (" .. ha .. ")")
  local hc2 = 0
  o = o + 4 * 16 * 17
  for i = o + 1, o + 16 * 48 do hc2 = math.max(hc2, math.abs(pa[i])) end
  T.ok(hc2 <= 1 / math.sqrt(48) and hc2 > 0.13, "then the convolution within 1/sqrt(kernel * channels)")
end)

T.test("conv: training with qd.optim.adam learns a shift over time", function()
  -- target: y_t = x_{t-1} (zero at t = 1), one feature per step; needs the kernel's reach
  local rng = qd.rng(8)
  local net = nn.conv { length = 6, inputs = 1, channels = 8, outputs = 1, kernel = 3, layers = 1, activation = "tanh" }
  local p = net:init(rng)
  local X = randmat(6, 64, rng)
  local Ty = qd.matrix(6, 64)
  for b = 1, 64 do for t = 2, 6 do Ty:set(t, b, X:get(t - 1, b)) end end
  local function feval(th)
    local L, g = net:grad(X, th, function(Y) return nn.mse(Y, Ty, { grad = true }) end)
    return L, g
  end
  local st = { lr = 0.02 }
  local first = feval(p)
  for _ = 1, 300 do qd.optim.adam(feval, p, st) end
  local last = feval(p)
  T.ok(last < 0.02 * first, string.format("loss falls by 50x (%.3g -> %.3g)", first, last))
end)

T.test("conv: results do not depend on the thread count", function()
  for _, nh in ipairs { 0, 4 } do
  local rng = qd.rng(2)
  local net = nn.conv { length = 8, inputs = 12, channels = 64, outputs = 11, kernel = 5, layers = 2, cond = 6,
                        heads = nh }
  local p = net:init(rng)
  local X = randmat(8 * 12 + 6, 300, rng)
  local Tg = randmat(88, 300, rng)
  local t0 = qd.threads()
  qd.set_threads(1)
  local _, g1, Y1 = net:grad(X, p, function(Y) return nn.mse(Y, Tg, { grad = true }) end)
  local _, gx1 = net:vjp(X, p, Tg)
  qd.set_threads(2)
  local _, g2, Y2 = net:grad(X, p, function(Y) return nn.mse(Y, Tg, { grad = true }) end)
  local _, gx2 = net:vjp(X, p, Tg)
  qd.set_threads(t0)
  local same = true
  for i = 1, #g1 do same = same and g1[i] == g2[i] end
  for i = 1, 88 do same = same and Y1:get(i, 300) == Y2:get(i, 300) end
  for i = 1, 102 do same = same and gx1:get(i, 7) == gx2:get(i, 7) end
  T.ok(same, "1 and 2 threads give the same bits (heads " .. nh .. ")")
  end
end)

T.test("conv: error messages", function()
  local ok = { length = 4, inputs = 2, channels = 3, outputs = 2 }
  local function with(k, v)
    local t = {}
    for a, b in pairs(ok) do t[a] = b end
    t[k] = v
    return t
  end
  T.raises(function() nn.conv { inputs = 2, channels = 3, outputs = 2 } end, "option 'length' is required")
  T.raises(function() nn.conv(with("channels", 0)) end, "option 'channels': integer in 1..1048576 expected, got 0")
  T.raises(function() nn.conv(with("inputs", 1.5)) end, "option 'inputs': integer in 1..1048576 expected, got 1.5")
  T.raises(function() nn.conv(with("outputs", "x")) end, "option 'outputs': integer in 1..1048576 expected, got string")
  T.raises(function() nn.conv(with("kernel", 4)) end, "option 'kernel': odd width in 1..7 (2 * length - 1) expected, got 4")
  T.raises(function() nn.conv(with("kernel", 9)) end, "odd width in 1..7")
  T.raises(function() nn.conv(with("layers", -1)) end, "option 'layers': integer in 0..64")
  T.raises(function() nn.conv(with("cond", -2)) end, "option 'cond': integer in 0..")
  T.raises(function() nn.conv(with("activation", "elu")) end, "option 'activation': one of linear")
  T.raises(function() nn.conv(with("width", 3)) end, "width")
  T.raises(function() nn.conv(with("heads", 2)) end, "option 'heads': a divisor of channels (3) expected, got 2")
  T.raises(function() nn.conv(with("heads", 6)) end, "option 'heads': a divisor of channels (3) expected, got 6")
  T.raises(function() nn.conv(with("heads", -1)) end, "option 'heads': integer in 0..1048576 expected, got -1")
  T.raises(function() nn.conv(with("heads", 1.5)) end, "option 'heads': integer in 0..")
  T.raises(function() nn.conv(ok, 1) end, "bad argument #2")
  T.raises(function() nn.conv { length = 4, inputs = 1, channels = 1048576, outputs = 1, layers = 1 }:init(qd.rng(1)) end,
           "not enough memory")
  local net = nn.conv(with("cond", 1))
  local p = net:init(qd.rng(1))
  T.raises(function() net:forward(qd.matrix(8, 1), p) end, "inputs: 9 rows expected")
  T.raises(function() net:forward(qd.matrix(9, 1), qd.vector(5)) end, "real qd.Vector of " .. net:nparams() .. " parameters expected")
  local bad = qd.matrix(9, 1); bad:set(9, 1, 0 / 0)
  T.raises(function() net:forward(bad, p) end, "inputs: entry 9 is not finite")
  T.raises(function() net:grad(qd.matrix(9, 2), p, function() return 1, qd.matrix(8, 1) end) end, "2 columns expected")
  T.raises(function() net:vjp(qd.matrix(9, 1), p, qd.matrix(7, 1)) end, "G: 8 rows expected")
  T.raises(function() net.forward(nn.mlp { sizes = { 1, 1 } }) end, "qd.ConvNet expected, got qd.MLP")
  T.raises(function() nn.mlp { sizes = { 1, 1 } }.forward(net) end, "qd.MLP expected, got qd.ConvNet")
  T.eq(tostring(net), "qd.ConvNet(4 steps x 2 -> 3 channels, 2 blocks of kernel 3, 1 condition features, silu -> "
       .. "4 steps x 2; " .. net:nparams() .. " parameters)", "tostring")
  local s = net:spec()
  T.eq(s.kernel, 3, "spec: default kernel"); T.eq(s.layers, 2, "spec: default layers"); T.eq(s.activation, "silu", "spec")
  T.eq(nn.conv(s):nparams(), net:nparams(), "spec rebuilds the network")
  T.eq(s.heads, 0, "spec: default heads")
  local at = nn.conv(with("heads", 3))
  T.eq(at:spec().heads, 3, "spec: heads")
  T.eq(at:nparams(), net:nparams() - 2 * 3 + 2 * 4 * 3 * 4, "attention adds 4 H (H + 1) per block")
  T.eq(tostring(at), "qd.ConvNet(4 steps x 2 -> 3 channels, 2 blocks of 3-head attention + kernel 3, 0 condition "
       .. "features, silu -> 4 steps x 2; " .. at:nparams() .. " parameters)", "tostring with attention")
end)
