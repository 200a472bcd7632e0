-- reverse_feedback_multi.lua — the reverse-time SSE benchmark on n qubits (the qd side of
-- bench/reverse_feedback_multi.py; bench/reverse_feedback.lua is the one-qubit case).
--
-- The problem: n qubits, each monitored in Z at rate g = 1, N members started on a product of
-- latitude circles (each qubit at z0 = 0.5, random azimuth), forward to tau = 0.5 in `steps`
-- Rouchon steps, then `steps - 1` reverse steps with the one-qubit circle feedback applied to
-- every qubit from its own Bloch vector: H_fb = sum_q 2 g kappa_q (y_q X_q - x_q Y_q),
-- kappa_q = -(artanh z_q - u0) / (4 g t) - z_q (the exact reverse feedback of a product of
-- circles, since the monitoring acts on each qubit alone). The feedback is written as a Lua
-- function with the Vector methods (called every step) and as a feedback law (traced once).
--   qd bench/reverse_feedback_multi.lua [n=2] [N=4000] [steps=500]
local n = math.tointeger(tonumber(arg[1] or "2"))
local N = math.tointeger(tonumber(arg[2] or "4000"))
local steps = math.tointeger(tonumber(arg[3] or "500"))
local g, tau, z0 = 1.0, 0.5, 0.5
local u0 = 0.5 * math.log((1 + z0) / (1 - z0))
local dt = tau / steps
local lim = 1 - 1e-15

local function on(q, P) return string.rep("I", q) .. P .. string.rep("I", n - q - 1) end
local measure, terms = {}, {}
for q = 0, n - 1 do
  measure[#measure + 1] = on(q, "Z")
  terms[#terms + 1] = on(q, "X")
  terms[#terms + 1] = on(q, "Y")
end

local function data()
  local E = qd.ensemble(n, N)
  local r = qd.rng(1)
  for q = 0, n - 1 do
    E:ry(q, math.acos(z0))
    E:rz(q, r:uniform(0, 2 * math.pi, N))
  end
  return E
end

local function fb_vec(_, t, E)
  local rows = {}
  for q = 0, n - 1 do
    local z = E:expect(on(q, "Z")):clamp(-lim, lim)
    local k = (z:atanh() - u0):mul(-1 / (4 * g * t)) - z
    rows[#rows + 1] = k:mul(E:expect(on(q, "Y"))):mul(2 * g)
    rows[#rows + 1] = k:mul(E:expect(on(q, "X"))):mul(-2 * g)
  end
  return qd.matrix(rows)
end

local function law(t, s)
  local c = {}
  for q = 0, n - 1 do
    local z = s:expect(on(q, "Z")):clamp(-lim, lim)
    local k = (z:atanh() - u0) * (-1 / (4 * g) / t) - z
    c[#c + 1] = k * s:expect(on(q, "Y")) * (2 * g)
    c[#c + 1] = k * s:expect(on(q, "X")) * (-2 * g)
  end
  return c
end

for _, variant in ipairs { { "Vector methods", { terms = terms, fn = fb_vec } }, { "law", { terms = terms, law = law } } } do
  local best_f, best_r, zmean = math.huge, math.huge, 0
  for _ = 1, 3 do
    local E = data()
    local t0 = qd.clock()
    qd.sse(E, { dt = dt, steps = steps, measure = measure, gamma = g, rng = qd.rng(2), record = false })
    local t1 = qd.clock()
    qd.sse(E, { dt = dt, steps = steps - 1, measure = measure, gamma = g, rng = qd.rng(3), record = false,
                reverse = true, t0 = tau, feedback = variant[2] })
    local t2 = qd.clock()
    best_f, best_r = math.min(best_f, t1 - t0), math.min(best_r, t2 - t1)
    zmean = E:expect(on(0, "Z")):mean()
  end
  print(string.format("qd: n = %d, N = %d, %d steps, threads %d: forward %.4f s, reverse with feedback (%s) %.4f s; "
    .. "mean z_0 after reverse %.4f (data %.1f)", n, N, steps, qd.threads(), best_f, variant[1], best_r, zmean, z0))
end
