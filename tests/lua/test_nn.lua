-- test_nn.lua — qd.nn: the MLP's forward pass against a naive Lua evaluation, its parameter
-- and input gradients against central finite differences for every activation, the
-- PyTorch-default initialisation bounds, mse, columns, vstack, training with qd.optim.adam,
-- thread independence, and every error message.
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
