-- reverse_feedback.lua — the qd side of the reverse-time SSE benchmark with a state-dependent
-- feedback Hamiltonian (bench/reverse_feedback.py is the numpy side; same problem, same
-- scheme, different noise streams).
--
-- The problem: one qubit, A = Z measured at rate g = 1, N members started on the circle
-- z0 = 0.5 after a forward run to tau = 0.5; the reverse runs `steps` steps of dt = tau/steps
-- from tau down to dt with the exact feedback of a point-like data law (closed form, no
-- Fokker-Planck solve): H_fb = 2 g kappa (y X - x Y), kappa = -(u - u0)/(4 g t) - tanh u,
-- u = artanh z (docs/api.md "Reverse-time diffusion"). Rouchon scheme. Timed: the forward
-- qd.sse call and the reverse qd.sse call with the feedback written three ways: a Lua loop
-- over the members, the elementwise Vector methods (a Lua function called every step), and
-- the same formula as a feedback law (traced once, evaluated by qd.sse in C; min of 3 runs).
--   qd bench/reverse_feedback.lua [N=4000] [steps=500]
local N = math.tointeger(tonumber(arg[1] or "4000"))
local steps = math.tointeger(tonumber(arg[2] or "500"))
local g, tau, z0 = 1.0, 0.5, 0.5
local u0 = 0.5 * math.log((1 + z0) / (1 - z0))
local dt = tau / steps

local function data()
  local E = qd.ensemble(1, N)
  E:ry(0, math.acos(z0))
  E:rz(0, qd.rng(1):uniform(0, 2 * math.pi, N))
  return E
end

local function fb(_, t, E)
  local P = E:probs():totable()
  local x, y = E:expect("X"):totable(), E:expect("Y"):totable()
  local cx, cy = {}, {}
  for j = 1, N do
    local p0, p1 = P[1][j], P[2][j]
    local u = 0.5 * math.log(math.max(p0, 1e-300) / math.max(p1, 1e-300))
    local k = -(u - u0) / (4 * g * t) - math.tanh(u)
    cx[j], cy[j] = 2 * g * k * y[j], -2 * g * k * x[j]
  end
  return qd.matrix { cx, cy }
end

-- the same law with the elementwise Vector methods (lua_vmath.c): a few C calls per step.
-- u = artanh z (= log(p0/p1)/2), clamped away from the poles as the loop above does
local lim = 1 - 1e-15
local function fb_vec(_, t, E)
  local z = E:expect("Z"):clamp(-lim, lim)
  local k = (z:atanh() - u0):mul(-1 / (4 * g * t)) - z
  return qd.matrix { k:mul(E:expect("Y")):mul(2 * g), k:mul(E:expect("X")):mul(-2 * g) }
end

-- the same law traced once: s:expect(P) stands for each member's <P> (lua_law.c)
local function law(t, s)
  local z = s:expect("Z"):clamp(-lim, lim)
  local k = (z:atanh() - u0) * (-1 / (4 * g) / t) - z
  return { k * s:expect("Y") * (2 * g), k * s:expect("X") * (-2 * g) }
end

for _, variant in ipairs { { "Lua loop", fb }, { "Vector methods", fb_vec }, { "law", law } } do
  local best_f, best_r, zmean = math.huge, math.huge, 0
  for _ = 1, 3 do
    local E = data()
    local t0 = qd.clock()
    qd.sse(E, { dt = dt, steps = steps, measure = { "Z" }, gamma = g, rng = qd.rng(2), record = false })
    local t1 = qd.clock()
    qd.sse(E, { dt = dt, steps = steps - 1, measure = { "Z" }, gamma = g, rng = qd.rng(3), record = false,
                reverse = true, t0 = tau,
                feedback = variant[1] == "law" and { terms = { "X", "Y" }, law = law } or { terms = { "X", "Y" }, fn = variant[2] } })
    local t2 = qd.clock()
    best_f, best_r = math.min(best_f, t1 - t0), math.min(best_r, t2 - t1)
    zmean = E:expect("Z"):mean()
  end
  print(string.format("qd: N = %d, %d steps, threads %d: forward %.4f s, reverse with feedback (%s) %.4f s; "
    .. "mean z after reverse %.4f (data %.1f)", N, steps, qd.threads(), best_f, variant[1], best_r, zmean, z0))
end
