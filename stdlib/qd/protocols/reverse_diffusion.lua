-- qd.protocols.reverse_diffusion — reverse-time quantum diffusion (arXiv 2606.03848): the
-- forward noise is a continuously measured system (a stochastic Schroedinger equation), and
-- generation runs it backwards — the same measurement plus a state-dependent feedback
-- Hamiltonian H_fb(psi, t) = sum_P c_P(psi, t) P, the quantum analogue of the score.
--
--   local rd = require "qd.protocols.reverse_diffusion"
--   local res = rd.run{ data = "circle", n = 1, feedback = "exact", N = 200, repeats = 20,
--                       tau = 0.5, gamma = 1, seed = 1, out = "runs/x" }
--   res.metrics.mmd_return, mmd_noise, mmd_terminal, wass_return, ...
--
-- Forward: every member of a data batch follows the SSE (qd.sse, Rouchon scheme)
--   d psi = [-iH dt - sum_k g_k/2 (A_k - <A_k>)^2 dt + sum_k sqrt(g_k) (A_k - <A_k>) dW_k] psi
-- with measured Pauli strings A_k (default Z on every qubit) at rate gamma, on a time grid
-- t_0 = 0 < t_1 = t_stop < ... < t_K = tau (geometric near 0, spacing at most tau / steps).
-- Reverse: from the forward terminal ensemble, t runs t_K -> t_1 with the same measurement
-- (fresh noise) and the feedback Hamiltonian; the state at t_stop is the generated member.
--
-- Exact feedback (one qubit, H = 0, A = Z; docs/api.md has the derivation). The state keeps
-- its azimuth; z = <Z> is a martingale, dz = 2 sqrt(g) (1 - z^2) dW. In u = artanh z,
-- du = 4 g tanh(u) dt + 2 sqrt(g) dW, whose law q_t(u) solves the Fokker-Planck equation
--   dq/dt = -d/du (4 g tanh(u) q) + 2 g d^2q/du^2,
-- solved here on a grid (finite volumes, Crank-Nicolson after backward-Euler start steps)
-- from the data's law of u (a histogram of a large reference sample). The reverse drift of
-- z is b = 4 g (1 - z^2) kappa(u, t), kappa = d/du log q_t - 2 tanh u (Anderson's reverse
-- SDE), and the Hamiltonian that gives it without moving the azimuth is
--   H_fb = 2 g kappa(u, t) (y X - x Y),  (x, y) = (<X>, <Y>).
--
-- Learnt feedback (any n): the reverse drift of the Pauli expectations r_Q = <Q> (Q in the
-- Pauli strings of weight <= w) is Nelson's backward mean derivative
--   bbar_Q(psi, t) = lim E[r_Q(t - D) - r_Q(t) | psi_t = psi] / D,
-- estimated by least squares on forward trajectory snapshots: bbar = B^T phi(r, t) with
-- features phi = (monomials of the r_Q up to degree `degree`) x (time functions 1 and
-- exp(-t / l_j)), B minimising sum |(r(t_{k-1}) - r(t_k)) / D_k - B^T phi|^2 + ridge |B|^2.
-- The measurement's own drift of r_Q in the reverse run is known (a Pauli A_k anticommuting
-- with Q gives -2 g_k r_Q), so the feedback must supply h = bbar - drift_meas; a Hamiltonian
-- sum_P c_P P moves r_Q by J_QP c_P with J_QP = i<[P, Q]>, and c solves the ridge least
-- squares (J^T J + eps I) c = J^T h per member and step (the part of h no Hamiltonian can
-- give is dropped). Feedback terms: the same Pauli strings.
--
-- Metrics (R batches of N): mmd_return = mean_r MMD(generated_r, data_r); mmd_noise =
-- mean_r MMD(data_r, data_{r+1 mod R}); mmd_terminal = mean_r MMD(terminal_r, data_r)
-- (qd.loss.mmd: fidelity kernel, V-statistic); wass_* likewise with qd.loss.wasserstein.
-- data_r are fresh batches, independent of the batches the forward started from.
-- Files: run.json, generated.npy, data.npy, terminal.npy (R, N, 2^n).
local qd = require "qd"
local core = require "qd.core"
local protocol = require "qd.protocol"

local M = {}
M.format = 1

local outside = protocol.outside

-- substream keys of qd.rng(seed)
M.keys = { data = 1, forward = 2, reverse = 3, train = 4, reference = 5, train_sse = 6, mlp = 7 }
M.stream = protocol.streams(M.keys)

local function bad(fname, msg) error("bad argument #1 to '" .. fname .. "' (" .. msg .. ")", outside()) end

-- ------------------------------------------------------------------ data sets

-- the data sets: n qubits, the defaults of their parameters
M.datasets = {
  circle = { n = 1, params = { z0 = 0.5 } },
  cap = { n = 1, params = { zc = 0.6 } },
  clusters = { n = 1, params = { theta1 = math.pi / 3, phi1 = 0, theta2 = 2 * math.pi / 3, phi2 = math.pi / 2, sigma = 0.15 } },
  cluster2 = { n = 2, params = { eps = 0.06 } },
  bell = { n = 2, params = { spread = 0.2 } },
  tfim = { n = 4, params = { g_lo = 0.2, g_hi = 0.4 } },
}

-- members with Bloch angles theta[k], phi[k] (tables or qd.Vectors of N)
local function bloch_ensemble(theta, phi, N)
  local E = qd.ensemble(1, N)
  E:ry(0, theta)
  E:rz(0, phi)
  return E
end

-- rd.data(kind, N, rng [, params]) -> Ensemble of N members of data set kind, params (with
-- the defaults filled in). circle: fixed z0, uniform azimuth; cap: z ~ U[zc, 1] (uniform on
-- the cap's area), uniform azimuth; clusters: two Bloch directions (theta_i, phi_i), each
-- member one of them at random with Gaussian spread sigma in both angles; cluster2:
-- qd.data.clustered(2, N) (QuDDPM's cluster around |00>, eps); bell: cos a |00> + e^{ib}
-- sin a |11>, a ~ pi/4 + spread N(0,1), b ~ U[0, 2 pi); tfim: qd.data.tfim(4, {g_lo, g_hi}, N).
function M.data(kind, N, rng, params)
  local ds = M.datasets[kind]
  if not ds then
    local names = {}
    for k in pairs(M.datasets) do names[#names + 1] = k end
    table.sort(names)
    error("bad argument #1 to 'data' (" .. table.concat(names, ", ") .. " expected, got " .. tostring(kind) .. ")", outside())
  end
  if math.type(N) ~= "integer" or N < 1 then
    error("bad argument #2 to 'data' (number of members, an integer >= 1, expected, got " .. tostring(N) .. ")", outside())
  end
  if qd.type(rng) ~= "qd.Rng" then error("bad argument #3 to 'data' (qd.Rng expected, got " .. qd.type(rng) .. ")", outside()) end
  local p = {}
  for k, v in pairs(ds.params) do p[k] = v end
  for k, v in pairs(params or {}) do
    if ds.params[k] == nil then
      error("bad argument #4 to 'data' (unknown parameter '" .. tostring(k) .. "' of " .. kind .. ")", outside())
    end
    if type(v) ~= "number" or v ~= v then
      error("bad argument #4 to 'data' (parameter '" .. k .. "': number expected)", outside())
    end
    p[k] = v
  end
  local E
  if kind == "circle" then
    if not (p.z0 > -1 and p.z0 < 1) then
      error("bad argument #4 to 'data' (parameter 'z0': -1 < z0 < 1 expected, got " .. p.z0 .. ")", outside())
    end
    E = bloch_ensemble(math.acos(p.z0), rng:uniform(0, 2 * math.pi, N), N)
  elseif kind == "cap" then
    if not (p.zc > -1 and p.zc < 1) then
      error("bad argument #4 to 'data' (parameter 'zc': -1 < zc < 1 expected, got " .. p.zc .. ")", outside())
    end
    local z = rng:uniform(p.zc, 1, N)
    local th = qd.vector(N)
    for k = 1, N do th[k] = math.acos(z[k]) end
    E = bloch_ensemble(th, rng:uniform(0, 2 * math.pi, N), N)
  elseif kind == "clusters" then
    local c, a, b = rng:uniform(0, 1, N), rng:normal(0, p.sigma, N), rng:normal(0, p.sigma, N)
    local th, ph = qd.vector(N), qd.vector(N)
    for k = 1, N do
      local first = c[k] < 0.5
      th[k] = (first and p.theta1 or p.theta2) + a[k]
      ph[k] = (first and p.phi1 or p.phi2) + b[k]
    end
    E = bloch_ensemble(th, ph, N)
  elseif kind == "cluster2" then
    E = qd.data.clustered(2, N, rng, { eps = p.eps })
  elseif kind == "bell" then
    -- cos a |00> + e^{ib} sin a |11>: ry(2a) on qubit 0, cx, then the phase on |11> by rz
    local a, b = rng:normal(0, p.spread, N), rng:uniform(0, 2 * math.pi, N)
    local th = qd.vector(N)
    for k = 1, N do th[k] = 2 * (math.pi / 4 + a[k]) end
    E = qd.ensemble(2, N)
    E:ry(0, th)
    E:cx(0, 1)
    E:rz(1, b)
  else
    E = qd.data.tfim(4, { p.g_lo, p.g_hi }, N, rng)
  end
  return E, p
end

-- ------------------------------------------------------------------ time grid, forward

-- rd.time_grid(tau, t_stop, steps [, ratio = 0.05]) -> {t_0 = 0, t_1 = t_stop, ..., t_K = tau}
-- (index k + 1): spacing ratio * t near 0 (geometric), at most tau / steps
function M.time_grid(tau, t_stop, steps, ratio)
  ratio = ratio or 0.05
  local ts, t, dmax = { 0.0, t_stop }, t_stop, tau / steps
  while t < tau * (1 - 1e-12) do
    local dt = math.min(dmax, ratio * t)
    if t + dt > tau or tau - (t + dt) < 0.25 * dt then dt = tau - t end
    t = t + dt
    ts[#ts + 1] = t
  end
  ts[#ts] = tau
  return ts
end

-- the measured Pauli strings: {"Z"} per qubit unless given
local function measured(c)
  if c.measure then return c.measure end
  local A = {}
  for q = 0, c.n - 1 do
    local s = {}
    for j = 0, c.n - 1 do s[j + 1] = j == q and "Z" or "I" end
    A[#A + 1] = table.concat(s)
  end
  return A
end
M.measured = measured

-- one SSE segment of E over [t_a, t_b] (forward) in `sub` steps
local function sse_segment(E, c, rng, dt, sub, extra)
  local o = { dt = dt, steps = sub, measure = c.A, gamma = c.gamma, rng = rng, record = false }
  if c.H then o.H = c.H end
  for k, v in pairs(extra or {}) do o[k] = v end
  qd.sse(E, o)
end

-- rd.forward(E0, c, rng [, keep]) -> E_T (a copy; E0 untouched) [, snapshots]: the forward
-- SSE on c.grid (c.A measured at rate c.gamma, c.H); keep = true also returns the ensemble at
-- every grid time (snapshots[k + 1] at t_k, snapshots[1] = E0's copy)
function M.forward(E0, c, rng, keep)
  local E = E0:copy()
  local snaps = keep and { E:copy() } or nil
  local ts = c.grid
  for k = 2, #ts do
    sse_segment(E, c, rng, (ts[k] - ts[k - 1]) / c.sub, c.sub)
    if keep then snaps[k] = E:copy() end
  end
  return E, snaps
end

-- ------------------------------------------------------------------ exact reference (1 qubit)

-- per-member u = artanh <Z> = 1/2 log(p0 / p1) from the outcome probabilities (exact where
-- <Z> rounds to +-1), x = <X>, y = <Y>
local function bloch_u(E)
  local P = E:probs():totable()   -- rows: p0 of every member, p1 of every member
  local x, y = E:expect("X"):totable(), E:expect("Y"):totable()
  local P0, P1 = P[1], P[2]
  local u = {}
  for k = 1, #P0 do
    local p0, p1 = P0[k], P1[k]
    u[k] = 0.5 * math.log((p0 > 1e-300 and p0 or 1e-300) / (p1 > 1e-300 and p1 or 1e-300))
  end
  return u, x, y
end
M.bloch_u = bloch_u

-- solve a tridiagonal system in place (Thomas): a sub, b diag, c super, d rhs -> d
local function thomas(a, b, c, d, m)
  local cp, dp = {}, {}
  cp[1], dp[1] = c[1] / b[1], d[1] / b[1]
  for i = 2, m do
    local den = b[i] - a[i] * cp[i - 1]
    cp[i] = c[i] / den
    dp[i] = (d[i] - a[i] * dp[i - 1]) / den
  end
  d[m] = dp[m]
  for i = m - 1, 1, -1 do d[i] = dp[i] - cp[i] * d[i + 1] end
  return d
end

-- the finite-volume operator L q (zero flux at the ends) of dq/dt = -d/du(mu q) + D q'':
-- row i has lo[i] q_{i-1} + di[i] q_i + up[i] q_{i+1}
local function fp_operator(us, h, g)
  local m = #us
  local lo, di, up = {}, {}, {}
  local D = 2 * g
  for i = 1, m do lo[i], di[i], up[i] = 0.0, 0.0, 0.0 end
  for i = 1, m - 1 do   -- the face between i and i + 1: F = mu (q_i + q_{i+1}) / 2 - D (q_{i+1} - q_i) / h
    local mu = 4 * g * math.tanh(0.5 * (us[i] + us[i + 1]))
    local fi, fj = 0.5 * mu + D / h, 0.5 * mu - D / h   -- F = fi q_i + fj q_{i+1}
    -- dq_i/dt -= F / h, dq_{i+1}/dt += F / h
    di[i] = di[i] - fi / h
    up[i] = up[i] - fj / h
    lo[i + 1] = lo[i + 1] + fi / h
    di[i + 1] = di[i + 1] + fj / h
  end
  return lo, di, up
end

-- one theta-scheme step q <- (I - th dt L)^{-1} (I + (1 - th) dt L) q
local function fp_step(q, L, dt, th)
  local lo, di, up = L[1], L[2], L[3]
  local m = #q
  local a, b, cc, d = {}, {}, {}, {}
  for i = 1, m do
    local r = q[i] + (1 - th) * dt * (di[i] * q[i] + (i > 1 and lo[i] * q[i - 1] or 0) + (i < m and up[i] * q[i + 1] or 0))
    a[i], b[i], cc[i], d[i] = -th * dt * lo[i], 1 - th * dt * di[i], -th * dt * up[i], r
  end
  return thomas(a, b, cc, d, m)
end

-- rd.fokker_planck(u0s, g, times [, {h = 0.01, U = , sub = 2, start = 10}]) -> F:
-- the law q_t(u) of u = artanh z for one qubit measured in Z at rate g (H = 0), from the
-- initial law given by the samples u0s (a table; cloud-in-cell histogram on the grid), at
-- every time of the ascending list times (times[1] = 0 is the initial law). F.u (grid),
-- F.q[k] (density at times[k]), F.h. Crank-Nicolson with `sub` substeps per interval,
-- after `start` backward-Euler substeps on the first interval (they damp the oscillations
-- a histogram start would give).
function M.fokker_planck(u0s, g, times, o)
  o = o or {}
  local h = o.h or 0.01
  local umax = 0.0
  for _, u in ipairs(u0s) do umax = math.max(umax, math.abs(u)) end
  local T = times[#times]
  local U = o.U or math.min(19.0, umax + 4 * g * T + 8 * math.sqrt(4 * g * T) + 1.0)
  local m = 2 * math.ceil(U / h) + 1
  local us = {}
  for i = 1, m do us[i] = -U + (i - 1) * (2 * U) / (m - 1) end
  h = 2 * U / (m - 1)
  local q = {}
  for i = 1, m do q[i] = 0.0 end
  local w = 1 / (#u0s * h)
  for _, u in ipairs(u0s) do   -- cloud in cell
    local x = (u + U) / h
    local i = math.floor(x)
    local f = x - i
    i = math.max(0, math.min(m - 2, i))
    q[i + 1] = q[i + 1] + (1 - f) * w
    q[i + 2] = q[i + 2] + f * w
  end
  local L = { fp_operator(us, h, g) }
  local Q = { q }
  local sub, start = o.sub or 2, o.start or 10
  for k = 2, #times do
    local dt = times[k] - times[k - 1]
    local cur = Q[k - 1]
    if k == 2 then
      for _ = 1, start do cur = fp_step(cur, L, dt / start, 1.0) end
    else
      for _ = 1, sub do cur = fp_step(cur, L, dt / sub, 0.5) end
    end
    Q[k] = cur
  end
  return { u = us, q = Q, h = h, U = U, times = times }
end

-- kappa(u, t_k) = d/du log q - 2 tanh u on the grid of F at time index k (central
-- differences of log q, the density floored at 1e-300 of its maximum)
local function kappa_table(F, k)
  local q, us, h = F.q[k], F.u, F.h
  local m = #q
  local qmax = 0.0
  for i = 1, m do qmax = math.max(qmax, q[i]) end
  local floor = qmax * 1e-300
  local lq = {}
  for i = 1, m do lq[i] = math.log(math.max(q[i], floor)) end
  local kap = {}
  for i = 1, m do
    local a, b = math.max(i - 1, 1), math.min(i + 1, m)
    kap[i] = (lq[b] - lq[a]) / ((b - a) * h) - 2 * math.tanh(us[i])
  end
  return kap
end

-- the exact feedback of c (one qubit, H = 0, A = Z): the state's azimuth phi never changes,
-- so the reverse drift of z needs the score of the law of z given phi. With c.phi_bins = 1
-- (data whose z and phi are independent: circle, cap) that is the law of z; otherwise the
-- reference sample is split into phi_bins equal azimuth sectors, one Fokker-Planck solve
-- each (an empty sector falls back to the whole sample). Returns fn(k, E) -> the 2 x N
-- coefficients of the terms {"X", "Y"} at grid index k (the step from t_k), the terms, and
-- the solutions (one per sector).
function M.exact_feedback(c, ref)
  local u0s, xr, yr = bloch_u(ref)
  local nb = c.phi_bins or 1
  local function sector(x, y)
    if nb == 1 then return 1 end
    local a = math.atan(y, x) % (2 * math.pi)
    return math.min(nb, math.floor(a / (2 * math.pi) * nb) + 1)
  end
  local groups = {}
  for b = 1, nb do groups[b] = {} end
  for k = 1, #u0s do
    local g = groups[sector(xr[k], yr[k])]
    g[#g + 1] = u0s[k]
  end
  -- one grid for all sectors (the whole sample's range), so tables line up
  local umax = 0.0
  for _, u in ipairs(u0s) do umax = math.max(umax, math.abs(u)) end
  local T, g = c.tau, c.gamma
  local U = math.min(19.0, umax + 4 * g * T + 8 * math.sqrt(4 * g * T) + 1.0)
  local all
  local Fs = {}
  for b = 1, nb do
    if #groups[b] == 0 then
      all = all or M.fokker_planck(u0s, g, c.grid, { h = c.fp_h, U = U })
      Fs[b] = all
    else
      Fs[b] = M.fokker_planck(groups[b], g, c.grid, { h = c.fp_h, U = U })
    end
  end
  local cache = {}
  local function at(b, k)
    cache[b] = cache[b] or {}
    if not cache[b][k] then cache[b][k] = kappa_table(Fs[b], k) end
    return cache[b][k]
  end
  local h, m = Fs[1].h, #Fs[1].u
  return function(k, E)
    local u, x, y = bloch_u(E)
    local N = #E
    local cx, cy = {}, {}
    for j = 1, N do
      local kt = at(sector(x[j], y[j]), k)
      local s = (u[j] + U) / h
      local i = math.floor(s)
      local f = s - i
      local kv
      if i < 0 then kv = kt[1] elseif i >= m - 1 then kv = kt[m] else kv = (1 - f) * kt[i + 1] + f * kt[i + 2] end
      cx[j], cy[j] = 2 * g * kv * y[j], -2 * g * kv * x[j]
    end
    return qd.matrix { cx, cy }   -- 2 x N, column j = member j
  end, { "X", "Y" }, Fs
end

-- ------------------------------------------------------------------ Pauli algebra

local PMUL = {   -- a * b = ph * r for single-qubit letters: PMUL[a][b] = {r, ph as {re, im}}
  I = { I = { "I", 1, 0 }, X = { "X", 1, 0 }, Y = { "Y", 1, 0 }, Z = { "Z", 1, 0 } },
  X = { I = { "X", 1, 0 }, X = { "I", 1, 0 }, Y = { "Z", 0, 1 }, Z = { "Y", 0, -1 } },
  Y = { I = { "Y", 1, 0 }, X = { "Z", 0, -1 }, Y = { "I", 1, 0 }, Z = { "X", 0, 1 } },
  Z = { I = { "Z", 1, 0 }, X = { "Y", 0, 1 }, Y = { "X", 0, -1 }, Z = { "I", 1, 0 } },
}

-- product of Pauli strings: P Q = (re + i im) R
local function pmul(P, Q)
  local re, im, r = 1, 0, {}
  for i = 1, #P do
    local e = PMUL[P:sub(i, i)][Q:sub(i, i)]
    r[i] = e[1]
    re, im = re * e[2] - im * e[3], re * e[3] + im * e[2]
  end
  return table.concat(r), re, im
end
M.pmul = pmul

-- do P and Q anticommute (an odd number of positions with different non-identity letters)?
local function anticommute(P, Q)
  local c = 0
  for i = 1, #P do
    local a, b = P:sub(i, i), Q:sub(i, i)
    if a ~= "I" and b ~= "I" and a ~= b then c = c + 1 end
  end
  return c % 2 == 1
end
M.anticommute = anticommute

-- rd.paulis(n, w [, chain]) -> the Pauli strings on n qubits of weight 1 ... w, in a fixed
-- order; chain = true keeps only those whose non-identity letters sit on consecutive qubits
-- (local terms of a 1-D chain: 12 + 27 strings of weight <= 2 on 4 qubits instead of 66)
function M.paulis(n, w, chain)
  local out = {}
  local letters = { "I", "X", "Y", "Z" }
  local function rec(prefix, i, wt)
    if i > n then
      local first, last = prefix:find("[XYZ].*[XYZ]")
      local contiguous = not first or not prefix:sub(first, last):find("I")
      if wt >= 1 and (not chain or contiguous) then out[#out + 1] = prefix end
      return
    end
    for _, l in ipairs(letters) do
      local nw = wt + (l == "I" and 0 or 1)
      if nw <= w then rec(prefix .. l, i + 1, nw) end
    end
  end
  rec("", 1, 0)
  return out
end

-- ------------------------------------------------------------------ learnt feedback

-- time functions of the features: 1 and exp(-t / l_j), l_j = tau * {1/100, 1/20, 1/5, 1}
local function time_funcs(t, tau)
  return { 1.0, math.exp(-t / (0.01 * tau)), math.exp(-t / (0.05 * tau)), math.exp(-t / (0.2 * tau)), math.exp(-t / tau) }
end

-- monomials of degree <= D in the entries of r (as index lists), in a fixed order
local function monomials(nvar, D)
  local out = { {} }
  local function rec(start, cur, deg)
    if deg == D then return end
    for v = start, nvar do
      local nxt = { table.unpack(cur) }
      nxt[#nxt + 1] = v
      out[#out + 1] = nxt
      rec(v, nxt, deg + 1)
    end
  end
  rec(1, {}, 0)
  return out
end
M.monomials = monomials

-- per-member expectations of the strings in list (one Lua table of N numbers per string)
local function expectations(E, list)
  local out = {}
  for i, P in ipairs(list) do out[i] = E:expect(P):totable() end
  return out
end

-- rd.learn(snaps, c) -> model: the least-squares fit of the reverse drift of the Pauli
-- expectations (the header) from forward snapshots snaps[k + 1] at c.grid[k + 1]; pairs
-- (t_{k-1}, t_k) are taken every c.stride grid points (a coarser difference lowers the
-- variance of the target at an O(D) bias). model = {paulis, mono, B (features x outputs), ...}
function M.learn(snaps, c)
  if c.model == "mlp" then return M.learn_mlp(snaps, c) end
  local Ps = M.paulis(c.n, c.weight, c.chain)
  local model = { paulis = Ps, mono = monomials(#Ps, c.degree), tau = c.tau, n = c.n }
  local nf = #model.mono * 5
  local no = #Ps
  local ts = c.grid
  local idx = { 1 }
  local stride = c.stride
  for k = 1 + stride, #ts, stride do idx[#idx + 1] = k end
  if idx[#idx] ~= #ts then idx[#idx + 1] = #ts end
  local R, V = {}, {}
  for _, k in ipairs(idx) do
    local vals, r = {}, {}
    for i, P in ipairs(Ps) do
      vals[i] = snaps[k]:expect(P)
      r[i] = vals[i]:totable()
    end
    R[k] = r                                   -- for the targets, entry by entry
    V[k] = qd.nn.vstack(table.unpack(vals))   -- N x no (column-major), for core.poly_features
  end
  local N = #snaps[1]
  local A = qd.matrix(nf, nf)
  local Bt = qd.matrix(nf, no)
  -- accumulate Phi^T Phi and Phi^T Y in chunks of rows (each a dgemm); a chunk's feature rows
  -- are pieces {k, j0, j1} (members j0..j1 at grid index k) computed in C
  local chunk = 4000   -- rows per dgemm
  local pieces, yt = {}, {}
  local function flush()
    if #yt == 0 then return end
    local parts = {}
    for i, pc in ipairs(pieces) do
      parts[i] = core.poly_features(V[pc[1]], N, model.mono, time_funcs(ts[pc[1]], model.tau), pc[2], pc[3])
    end
    local Phi, Y = qd.nn.vstack(table.unpack(parts)), qd.matrix(yt)
    local Pt = Phi:dagger()
    A = A + Pt * Phi
    Bt = Bt + Pt * Y
    pieces, yt = {}, {}
  end
  for a = 2, #idx do
    local k0, k1 = idx[a - 1], idx[a]
    local D = ts[k1] - ts[k0]
    local r0, r1 = R[k0], R[k1]
    for j = 1, N do
      local y = {}
      for i = 1, no do y[i] = (r0[i][j] - r1[i][j]) / D end
      yt[#yt + 1] = y
      local last = pieces[#pieces]
      if last and last[1] == k1 and last[3] == j - 1 then last[3] = j else pieces[#pieces + 1] = { k1, j, j } end
      if #yt >= chunk then flush() end
    end
  end
  flush()
  -- (A + ridge * mean diag I)^{-1} Bt through the eigendecomposition of the symmetric A
  local tr = 0.0
  for i = 1, nf do tr = tr + A:get(i, i) end
  local lam = c.ridge * tr / nf
  local w, V = A:eigh()
  local Vr = qd.matrix(nf, nf)
  for j = 1, nf do for i = 1, nf do Vr:set(i, j, (V:get(i, j))) end end
  local VtB = Vr:dagger() * Bt
  for i = 1, nf do
    local s = 1 / (math.max(w[i], 0) + lam)
    for j = 1, no do VtB:set(i, j, VtB:get(i, j) * s) end
  end
  model.B = Vr * VtB
  model.nf, model.no, model.rows = nf, no, (#idx - 1) * N
  return model
end

-- the time inputs of the MLP model: exp(-t / l_j), l_j = tau * {1/100, 1/20, 1/5, 1}
local function time_inputs(t, tau)
  local tf = time_funcs(t, tau)
  return { tf[2], tf[3], tf[4], tf[5] }
end

-- rd.learn_mlp(snaps, c) -> model: the same regression as rd.learn (the reverse drift of the
-- Pauli expectations from forward snapshot pairs), with a small MLP (qd.nn) in place of the
-- linear model: inputs the expectations r and four time functions, outputs the drift divided
-- by its per-output standard deviation (stored in model.scale); MSE, Adam on mini-batches
-- drawn from the substream "mlp" of the run's seed.
function M.learn_mlp(snaps, c)
  local Ps = M.paulis(c.n, c.weight, c.chain)
  local m = #Ps
  local ts, stride = c.grid, c.stride
  local idx = { 1 }
  for k = 1 + stride, #ts, stride do idx[#idx + 1] = k end
  if idx[#idx] ~= #ts then idx[#idx + 1] = #ts end
  local R = {}
  for _, k in ipairs(idx) do R[k] = expectations(snaps[k], Ps) end
  local N = #snaps[1]
  local xin, yout = {}, {}   -- rows of the input and target matrices (features x samples)
  for i = 1, m + 4 do xin[i] = {} end
  for i = 1, m do yout[i] = {} end
  local col = 0
  for a = 2, #idx do
    local k0, k1 = idx[a - 1], idx[a]
    local D = ts[k1] - ts[k0]
    local r0, r1 = R[k0], R[k1]
    local ti = time_inputs(ts[k1], c.tau)
    for j = 1, N do
      col = col + 1
      for i = 1, m do
        xin[i][col] = r1[i][j]
        yout[i][col] = (r0[i][j] - r1[i][j]) / D
      end
      for i = 1, 4 do xin[m + i][col] = ti[i] end
    end
  end
  local scale = {}
  for i = 1, m do
    local s2 = 0.0
    for k = 1, col do s2 = s2 + yout[i][k] * yout[i][k] end
    scale[i] = math.sqrt(s2 / col)
    if not (scale[i] > 0) then scale[i] = 1.0 end
    for k = 1, col do yout[i][k] = yout[i][k] / scale[i] end
  end
  local X, Y = qd.matrix(xin), qd.matrix(yout)
  xin, yout = nil, nil
  local net = qd.nn.mlp { sizes = { m + 4, c.hidden, c.hidden, m }, activation = "tanh" }
  local rng = M.stream(c.seed, "mlp")
  local params = net:init(rng)
  local st = { lr = c.mlp_lr, schedule = qd.optim.schedule.cosine { lr = c.mlp_lr, T = c.mlp_steps, lr_min = 0.05 * c.mlp_lr } }
  local B = math.min(c.mlp_batch, col)
  local last = 0
  for _ = 1, c.mlp_steps do
    local pick = {}
    for b = 1, B do pick[b] = rng:integer(1, col) end
    local Xb, Yb = qd.nn.columns(X, pick), qd.nn.columns(Y, pick)
    local _, f = qd.optim.adam(function(p)
      return net:grad(Xb, p, function(out) return qd.nn.mse(out, Yb, { grad = true }) end)
    end, params, st)
    last = f
  end
  local D = qd.matrix(m, m)
  for i = 1, m do D:set(i, i, scale[i]) end
  return { kind = "mlp", paulis = Ps, tau = c.tau, n = c.n, net = net, params = params, scale = D,
           nf = m + 4, no = m, rows = col, train_loss = last }
end

-- the structure the per-member solve needs: for every pair (Q, P) that anticommutes, the
-- string R and the real factor f with i<[P, Q]> = f <R>; the measured strings' drift factors
function M.feedback_structure(model, c)
  local Ps = model.paulis
  local extra, index = {}, {}
  for i, P in ipairs(Ps) do index[P] = i end
  local pairs_ = {}
  for qi, Q in ipairs(Ps) do
    for pi, P in ipairs(Ps) do
      if anticommute(P, Q) then
        local R, re, im = pmul(P, Q)
        -- i [P, Q] = 2 i P Q = 2 i (re + i im) R: real part -2 im (re = 0 for anticommuting strings)
        if not index[R] and not extra[R] then extra[R] = true end
        pairs_[#pairs_ + 1] = { qi, pi, R, -2 * im }
        assert(re == 0)
      end
    end
  end
  local others = {}
  for R in pairs(extra) do others[#others + 1] = R end
  table.sort(others)
  -- drift of <Q> from the measurement: -2 sum_k g_k over the measured A_k anticommuting with Q
  local damp = {}
  for qi, Q in ipairs(Ps) do
    local s = 0.0
    for k, A in ipairs(c.A) do
      if anticommute(A, Q) then s = s + (type(c.gamma) == "table" and c.gamma[k] or c.gamma) end
    end
    damp[qi] = -2 * s
  end
  return { pairs = pairs_, others = others, index = index, damp = damp }
end

-- the learnt feedback: fn(t, E) -> #paulis x N coefficient matrix. The drift model is
-- evaluated for all members at once (features N x nf times B, a dgemm); J is sparse (only
-- anticommuting pairs), so J^T J is accumulated over its non-zeros, per member, in C
-- (core.feedback_solve, runtime/core/feedback.c).
function M.learnt_feedback(model, c)
  local st = M.feedback_structure(model, c)
  local Ps = model.paulis
  local m = #Ps
  local B = model.B
  local eps = c.fb_ridge
  -- the non-zeros of row q of J: {p, factor, index into r (positive) or into ro (negative)}
  local oidx = {}
  for i, R in ipairs(st.others) do oidx[R] = i end
  local rowsJ = {}
  for q = 1, m do rowsJ[q] = {} end
  for _, pr in ipairs(st.pairs) do
    local R = pr[3]
    local ri = st.index[R] or -oidx[R]
    local row = rowsJ[pr[1]]
    row[#row + 1] = { pr[2], pr[4], ri }
  end
  -- the non-zeros as core.feedback_solve takes them: {q, p, v, f} with v indexing the values
  -- (the model's strings first, then the others)
  local ent = {}
  for q = 1, m do
    for _, e in ipairs(rowsJ[q]) do
      local ri = e[3]
      ent[#ent + 1] = q; ent[#ent + 1] = e[1]; ent[#ent + 1] = ri > 0 and ri or m - ri; ent[#ent + 1] = e[2]
    end
  end
  local all = {}
  for i, P in ipairs(Ps) do all[i] = P end
  for _, R in ipairs(st.others) do all[#all + 1] = R end
  return function(t, E)
    local N = #E
    local vals = {}
    for i, P in ipairs(all) do vals[i] = E:expect(P) end
    local V = qd.nn.vstack(table.unpack(vals))
    -- N x m: the learnt reverse drift of every <Q>; then, per member (in C), the coefficients
    -- whose drift matches it: (J^T J + eps I) c = J^T (h - damp r), Cholesky
    local Hm
    if model.kind == "mlp" then
      local ti, rows = time_inputs(t, model.tau), {}
      for i = 1, m do rows[i] = vals[i]:totable() end
      for i = 1, 4 do
        local row, v = {}, ti[i]
        for j = 1, N do row[j] = v end
        rows[m + i] = row
      end
      Hm = (model.scale * model.net:forward(qd.matrix(rows), model.params)):dagger()
    else
      -- the polynomial features of every member at once, in C (core.poly_features)
      Hm = core.poly_features(V, N, model.mono, time_funcs(t, model.tau)) * B
    end
    return core.feedback_solve(V, Hm, st.damp, ent, eps)
  end, Ps
end

-- ------------------------------------------------------------------ reverse

-- rd.purified(n, N, measure, rng) -> Ensemble: the pure states that continuous monitoring of
-- the maximally mixed state I/d ends in (the long-time limit of the forward process, without
-- the data): with local measurements each qubit purifies independently; a qubit monitored in
-- X, Y and Z ends uniformly on the Bloch sphere (the monitoring is isotropic), a qubit
-- monitored in Z alone in |0> or |1> with probability 1/2. Other measurement sets are refused.
function M.purified(n, N, measure, rng)
  local seen = {}
  for q = 0, n - 1 do seen[q] = {} end
  for i, A in ipairs(measure) do
    local q, letter, count = nil, nil, 0
    for j = 1, #A do
      local l = A:sub(j, j)
      if l ~= "I" then q, letter, count = j - 1, l, count + 1 end
    end
    if count ~= 1 then
      error(string.format("bad argument #3 to 'purified' (single-qubit Pauli strings expected, entry %d is %s)", i, A), outside())
    end
    seen[q][letter] = true
  end
  local E = qd.ensemble(n, N)
  for q = 0, n - 1 do
    local s = seen[q]
    if s.X and s.Y and s.Z then
      local z, ph = rng:uniform(-1, 1, N), rng:uniform(0, 2 * math.pi, N)
      local th = qd.vector(N)
      for k = 1, N do th[k] = math.acos(z[k]) end
      E:ry(q, th)
      E:rz(q, ph)
    elseif s.Z and not s.X and not s.Y then
      local b, th = rng:uniform(0, 1, N), qd.vector(N)
      for k = 1, N do th[k] = b[k] < 0.5 and 0 or math.pi end
      E:ry(q, th)
    else
      error(string.format("bad argument #3 to 'purified' (qubit %d: X, Y and Z, or Z alone, expected)", q), outside())
    end
  end
  return E
end

-- rd.reverse(ET, c, rng, fb, terms) -> E_gen (a copy): the reverse SSE from c.grid's last
-- time to t_stop, fb(k, E) giving the coefficients at grid index k (the step from t_k to
-- t_{k-1}); the measurement as forward, fresh noise from rng
function M.reverse(ET, c, rng, fb, terms)
  local E = ET:copy()
  local ts = c.grid
  for k = #ts, 3, -1 do
    local dt = (ts[k] - ts[k - 1]) / c.sub
    sse_segment(E, c, rng, dt, c.sub, {
      reverse = true, t0 = ts[k],
      feedback = { terms = terms, fn = function() return fb(k, E) end },
    })
  end
  return E
end

-- ------------------------------------------------------------------ the run

local spec = {
  name = { "string", "reverse_diffusion" },
  seed = { "integer", 1, 0 },
  data = { "string", nil, choices = { "circle", "cap", "clusters", "cluster2", "bell", "tfim" } },
  params = { "table", false },
  feedback = { "string", "exact", choices = { "exact", "learnt", "none" } },
  N = { "integer", 200, 2 },
  repeats = { "integer", 20, 2 },
  tau = { "number", 0.5 },
  gamma = { "number", 1.0 },
  H = { "qd.PauliSum|string", false },
  measure = { "table", false },
  steps = { "integer", 200, 2 },
  t_stop = { "number", 1e-3 },
  sub = { "integer", 1, 1 },
  fp_h = { "number", 0.01 },
  phi_bins = { "integer", false, 1 },
  ref_N = { "integer", 20000, 100 },
  train_N = { "integer", 2000, 2 },
  weight = { "integer", 1, 1 },
  chain = { "boolean", false },
  start = { "string", "terminal", choices = { "terminal", "purified" } },
  degree = { "integer", 3, 0 },
  stride = { "integer", 4, 1 },
  ridge = { "number", 1e-6 },
  fb_ridge = { "number", 1e-3 },
  model = { "string", "linear", choices = { "linear", "mlp" } },
  hidden = { "integer", 64, 1 },
  mlp_steps = { "integer", 3000, 1 },
  mlp_batch = { "integer", 256, 1 },
  mlp_lr = { "number", 3e-3 },
}
protocol.with_session_keys(spec)
M.settings_spec = spec

local function check_cfg(cfg)
  local c = protocol.config(spec, cfg, "run")
  c.n = M.datasets[c.data].n
  if c.model ~= "mlp" and type(cfg) == "table" then   -- refused, not ignored
    for _, k in ipairs { "hidden", "mlp_steps", "mlp_batch", "mlp_lr" } do
      if cfg[k] ~= nil then bad("run", "option '" .. k .. "': an option of model = \"mlp\" (model is '" .. c.model .. "')") end
    end
  end
  -- one pass, seconds to minutes: nothing to resume, so the budget options are refused
  -- rather than ignored
  if c.resume then bad("run", "option 'resume': reverse_diffusion runs in one pass and has no checkpoint to resume") end
  if c.stop_after > 0 then bad("run", "option 'stop_after': reverse_diffusion runs in one pass and cannot stop early") end
  if c.ckpt_every > 0 then bad("run", "option 'ckpt_every': reverse_diffusion runs in one pass and writes no intermediate checkpoints") end
  if not (c.tau > 0 and c.tau < math.huge) then bad("run", "option 'tau': > 0 expected, got " .. c.tau) end
  if not (c.gamma > 0 and c.gamma < math.huge) then bad("run", "option 'gamma': > 0 expected, got " .. c.gamma) end
  if not (c.t_stop > 0 and c.t_stop < c.tau) then bad("run", "option 't_stop': 0 < t_stop < tau expected, got " .. c.t_stop) end
  if not (c.fp_h > 0 and c.fp_h <= 0.5) then bad("run", "option 'fp_h': 0 < fp_h <= 0.5 expected, got " .. c.fp_h) end
  if not (c.ridge >= 0) then bad("run", "option 'ridge': >= 0 expected, got " .. c.ridge) end
  if not (c.fb_ridge > 0) then bad("run", "option 'fb_ridge': > 0 expected, got " .. c.fb_ridge) end
  if not (c.mlp_lr > 0 and c.mlp_lr < math.huge) then bad("run", "option 'mlp_lr': > 0 expected, got " .. c.mlp_lr) end
  if c.model == "mlp" and c.feedback ~= "learnt" then
    bad("run", "option 'model': 'mlp' is a model of the learnt feedback (feedback = \"learnt\"), got feedback '" .. c.feedback .. "'")
  end
  if c.weight > c.n then bad("run", string.format("option 'weight': at most n = %d expected, got %d", c.n, c.weight)) end
  if c.measure then
    for i, A in ipairs(c.measure) do
      if type(A) ~= "string" or #A ~= c.n or A:find("[^IXYZ]") or not A:find("[XYZ]") then
        bad("run", string.format("option 'measure': Pauli strings of %d letters IXYZ expected, entry %d is %s", c.n, i, tostring(A)))
      end
    end
  end
  c.A = measured(c)
  -- azimuth sectors of the exact feedback: z and phi are dependent only in "clusters"
  c.phi_bins = c.phi_bins or (c.data == "clusters" and 24 or 1)
  if c.start == "purified" then   -- the purified states are known for local X/Y/Z or Z monitoring
    local ok, err = pcall(M.purified, c.n, 1, c.A, qd.rng(0))
    if not ok then
      bad("run", "option 'start': 'purified' needs every qubit monitored in X, Y and Z or in Z alone ("
          .. tostring(err):match("%((.*)%)$") .. ")")
    end
  end
  if c.feedback == "exact" then
    local z = c.n == 1 and #c.A == 1 and c.A[1] == "Z" and not c.H
    if not z then bad("run", "feedback 'exact' is known for one qubit, H = nil, measure = {\"Z\"} only") end
  end
  if c.H and c.feedback == "learnt" then
    -- the reverse run applies H as exp(+iH dt); its drift of <Q> is not subtracted from the
    -- learnt drift (the model would double-count it)
    bad("run", "option 'H': the learnt feedback is implemented for H = nil only")
  end
  if c.H and type(c.H) == "string" then c.H = qd.pauli_sum { { 1, c.H } } end
  c.grid = M.time_grid(c.tau, c.t_stop, c.steps)
  return c
end
M.check = check_cfg

local function settings_of(c, params)
  return {
    name = c.name, seed = c.seed, data = c.data, n = c.n, params = params, feedback = c.feedback, N = c.N,
    repeats = c.repeats, tau = c.tau, gamma = c.gamma, measure = c.A, H = c.H and tostring(c.H) or nil,
    steps = c.steps, grid_points = #c.grid, t_stop = c.t_stop, sub = c.sub, fp_h = c.fp_h, phi_bins = c.phi_bins, ref_N = c.ref_N,
    train_N = c.train_N, weight = c.weight, chain = c.chain, start = c.start, degree = c.degree, stride = c.stride, ridge = c.ridge,
    fb_ridge = c.fb_ridge, model = c.model, hidden = c.model == "mlp" and c.hidden or nil,
    mlp_steps = c.model == "mlp" and c.mlp_steps or nil, mlp_batch = c.model == "mlp" and c.mlp_batch or nil,
    mlp_lr = c.model == "mlp" and c.mlp_lr or nil, options = protocol.result_options(c.options),
  }
end

-- split the members of E into R ensembles of N (member (r - 1) N + j -> ensemble r, member j)
local function split(E, R, N)
  local out = {}
  for r = 1, R do
    local E2 = qd.ensemble(E.n, N)
    for j = 1, N do E2:set(j, E[(r - 1) * N + j]) end
    out[r] = E2
  end
  return out
end

local function batch_metrics(gen, data, term)
  local R = #data
  local m = { mmd_return = 0, mmd_noise = 0, mmd_terminal = 0, wass_return = 0, wass_noise = 0, wass_terminal = 0 }
  local function W(a, b) return (qd.loss.wasserstein(a, b, { plan = false })) end
  for r = 1, R do
    local nxt = data[r % R + 1]
    m.mmd_return = m.mmd_return + qd.loss.mmd(gen[r], data[r]) / R
    m.mmd_noise = m.mmd_noise + qd.loss.mmd(data[r], nxt) / R
    m.mmd_terminal = m.mmd_terminal + qd.loss.mmd(term[r], data[r]) / R
    m.wass_return = m.wass_return + W(gen[r], data[r]) / R
    m.wass_noise = m.wass_noise + W(data[r], nxt) / R
    m.wass_terminal = m.wass_terminal + W(term[r], data[r]) / R
  end
  m.return_over_noise = m.mmd_return / m.mmd_noise
  m.terminal_over_return = m.mmd_terminal / m.mmd_return
  m.wass_return_over_noise = m.wass_return / m.wass_noise
  return m
end
M.batch_metrics = batch_metrics

-- rd.run(cfg) -> {dir, metrics, settings, generated (table of R ensembles), data, terminal, timing}
local function run_impl(cfg)
  local c = check_cfg(cfg)
  local seed = c.seed
  local R, N = c.repeats, c.N
  local _, params = M.data(c.data, 1, qd.rng(0), c.params or nil)
  local S = protocol.session { name = c.name, seed = seed, settings = settings_of(c, params), format = M.format,
                               out = c.out, resume = c.resume, quiet = c.quiet, progress = c.progress }
  local prog = S:progress { steps = 1, epochs = 3, total = 3, label = "reverse diffusion (" .. c.feedback .. ")" }
  prog:begin_step(1, 0)
  local t0 = qd.clock()
  -- feedback
  local fb, terms, info = nil, nil, {}
  if c.feedback == "exact" then
    local ref = M.data(c.data, c.ref_N, M.stream(seed, "reference"), params)
    local f, tm = M.exact_feedback(c, ref)
    fb, terms = function(k, E) return f(k, E) end, tm
  elseif c.feedback == "learnt" then
    local E0 = M.data(c.data, c.train_N, M.stream(seed, "train"), params)
    local _, snaps = M.forward(E0, c, M.stream(seed, "train_sse"), true)
    local model = M.learn(snaps, c)
    local f, tm = M.learnt_feedback(model, c)
    fb, terms = function(k, E) return f(c.grid[k], E) end, tm
    info.features, info.rows, info.terms = model.nf, model.rows, #tm
    if model.kind == "mlp" then info.mlp_params, info.mlp_train_loss = model.net:nparams(), model.train_loss end
  end
  local t_fb = qd.clock() - t0
  prog:update(1, 0)
  S:epoch(1)
  -- forward from R * N data members, then reverse
  local E0 = M.data(c.data, R * N, M.stream(seed, "forward"), params)
  local ET
  if c.start == "purified" then
    ET = M.purified(c.n, R * N, c.A, M.stream(seed, "forward"):split())
  else
    ET = M.forward(E0, c, M.stream(seed, "forward"):split())
  end
  local t1 = qd.clock()
  local EG
  if fb then
    EG = M.reverse(ET, c, M.stream(seed, "reverse"), fb, terms)
  else
    EG = M.reverse(ET, c, M.stream(seed, "reverse"), function() return qd.matrix(1, R * N) end, { string.rep("Z", c.n) })
  end
  local t_rev = qd.clock() - t1
  prog:update(2, 0)
  S:epoch(2)
  local DA = M.data(c.data, R * N, M.stream(seed, "data"), params)
  local gen, data, term = split(EG, R, N), split(DA, R, N), split(ET, R, N)
  local m = batch_metrics(gen, data, term)
  for k, v in pairs(info) do m[k] = v end
  m.feedback_seconds, m.reverse_seconds = t_fb, t_rev
  for k, v in pairs(m) do S.rec.metrics[k] = v end
  if c.save_data then
    qd.save_ensembles(S.rec:path("generated.npy"), gen)
    qd.save_ensembles(S.rec:path("data.npy"), data)
    qd.save_ensembles(S.rec:path("terminal.npy"), term)
  end
  prog:update(3, 0)
  S:epoch(3)
  prog:end_step(0)
  prog:finish()
  local timing = S:finish()
  return { dir = S.dir, metrics = S.rec.metrics, settings = S.settings, generated = gen, data = data,
           terminal = term, timing = timing }
end

M.run = protocol.generational(run_impl)

-- ------------------------------------------------------------------ scripts

-- the options of the reverse-diffusion examples (the protocol's common ones, then these)
function M.cli_options(extra)
  local o = protocol.cli_options {
    { "N", 0, "members per batch (0 = the example's default)", min = 0, max = 100000 },
    { "repeats", 0, "independent batches R (0 = the example's default: 20)", min = 0, max = 10000 },
    { "tau", 0.0, "forward time (0 = the example's default)", min = 0 },
    { "gamma", 1.0, "measurement rate", min = 1e-9, max = 1e6 },
    { "steps", 0, "time steps at the coarsest spacing (0 = the example's default)", min = 0, max = 100000 },
    { "model", "linear", "model of the learnt drift: linear (least squares on polynomial features) | mlp (qd.nn)",
      choices = { "linear", "mlp" } },
    { "hidden", 64, "hidden width of the mlp model (two tanh layers)", min = 1, max = 4096 },
    { "mlp_steps", 0, "Adam steps of the mlp model (0 = 3000, --small 200)", min = 0, max = 10000000 },
  }
  for _, e in ipairs(extra or {}) do o[#o + 1] = e end
  return o
end

-- rd.from_cli(opts, cfg) -> cfg with the command line's settings over cfg's
function M.from_cli(opts, cfg)
  protocol.from_cli(opts, cfg)
  if opts.N > 0 then cfg.N = opts.N end
  if opts.repeats > 0 then cfg.repeats = opts.repeats end
  if opts.tau > 0 then cfg.tau = opts.tau end
  if opts.steps > 0 then cfg.steps = opts.steps end
  cfg.gamma = opts.gamma
  cfg.model = opts.model
  if opts.model == "mlp" then   -- the mlp options are refused with the linear model, so set only here
    cfg.hidden = opts.hidden
    if opts.mlp_steps > 0 then cfg.mlp_steps = opts.mlp_steps elseif opts.small then cfg.mlp_steps = 200 end
  elseif opts.mlp_steps > 0 or opts.hidden ~= 64 then
    require("qd.cli").fail(opts, "--hidden and --mlp-steps are options of --model mlp")
  end
  return cfg
end

-- rd.parse_cli(arg, spec) -> opts (qd.cli); --resume, --stop-after and --ckpt-every are
-- usage errors (the protocol runs in one pass: nothing to resume)
function M.parse_cli(argv, spec_)
  local cli = require "qd.cli"
  local opts = cli.parse(argv, spec_)
  for _, k in ipairs { "resume", "stop_after", "ckpt_every" } do
    local v = opts[k]
    if (type(v) == "string" and v ~= "") or (type(v) == "number" and v > 0) then
      cli.fail(opts, "--" .. k:gsub("_", "-") .. ": this protocol runs in one pass (nothing to stop, checkpoint or resume)")
    end
  end
  if opts.threads > 0 then qd.set_threads(opts.threads) end
  return opts
end

M.print_metrics = protocol.print_metrics

return M
