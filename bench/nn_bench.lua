-- nn_bench.lua — one training step (forward, MSE, backward) of qd.nn.mlp 65-256-256-64 (relu,
-- sigmoid output) on a batch of B random samples; bench/nn_bench.py is the PyTorch side (float64,
-- one thread). qd bench/nn_bench.lua [B=512]
local sizes = {65, 256, 256, 64}
local B = tonumber(arg[1]) or 512
local net = qd.nn.mlp{sizes = sizes, activation = "relu", output = "sigmoid"}
local p = net:init(qd.rng(1))
local rng = qd.rng(2)
local X = qd.matrix(65, B); local Tm = qd.matrix(64, B)
for j = 1, B do for i = 1, 65 do X:set(i, j, rng:uniform()) end for i = 1, 64 do Tm:set(i, j, rng:uniform()) end end
local function lf(Y) return qd.nn.mse(Y, Tm, {grad = true}) end
for _ = 1, 5 do net:grad(X, p, lf) end
local t0 = qd.clock(); local n = 200
for _ = 1, n do net:grad(X, p, lf) end
print(string.format("qd  B=%d: %.3f ms/step", B, (qd.clock() - t0) / n * 1e3))
