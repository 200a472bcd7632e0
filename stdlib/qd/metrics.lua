-- qd.metrics — generalisation metrics of a generative model (arXiv 2605.21402, used for
-- quantum diffusion by arXiv 2606.03848): how much a generated ensemble copies its training
-- set (memorisation), how alike two models trained on disjoint data and driven by the same
-- noise are (convergence), and whether the model found the data's principal direction
-- (latent recovery).
--
-- Every function takes quantum ensembles (qd.Ensemble, or a qd.State as one member; the
-- overlap of two members is the fidelity |<a|b>|^2) or real samples (a qd.Matrix whose
-- columns are the samples, d x N — the layout of an ensemble's buffer; the overlap of two
-- samples is their squared cosine (a.b)^2 / (|a|^2 |b|^2), the real analogue of the
-- fidelity, invariant to the samples' scale as the fidelity is to a global phase).
--
-- Cost: memorisation is one overlap matrix (a zgemm / dgemm in C) and a row maximum;
-- convergence pairs member k with member k (N fidelities); latent recovery one average
-- state (or sample covariance, one matmul) and one Hermitian eigendecomposition (LAPACK).
local outside = require("qd.caller").outside

local M = {}

-- qd itself is loaded at the first call (qd's init.lua loads this module while it is built)
local qd = setmetatable({}, { __index = function(t, k)
  local q = require "qd"
  setmetatable(t, { __index = q })
  return q[k]
end })

local function argerr(k, fname, msg) error(string.format("bad argument #%d to '%s' (%s)", k, fname, msg), outside()) end

-- the kind of a sample set: "quantum" (Ensemble/State) or "real" (a real qd.Matrix, columns
-- = samples); anything else is an argument error
local function kind_of(x, k, fname)
  local t = qd.type(x)
  if t == "qd.Ensemble" or t == "qd.State" then return "quantum" end
  if t == "qd.Matrix" then
    if x:is_complex() then argerr(k, fname, "real qd.Matrix of samples (columns) expected, got a complex qd.Matrix") end
    local r, c = x:shape()
    if r < 1 or c < 1 then argerr(k, fname, "non-empty qd.Matrix of samples expected") end
    return "real"
  end
  argerr(k, fname, "qd.Ensemble, qd.State or real qd.Matrix (samples as columns) expected, got " .. t)
end

local function as_ensemble(x)
  if qd.type(x) == "qd.State" then return qd.ensemble.from { x } end
  return x
end

local function count(x)
  if qd.type(x) == "qd.Matrix" then
    local _, c = x:shape()
    return c
  end
  return qd.type(x) == "qd.State" and 1 or #x
end

-- squared column norms of a real d x N matrix (a zero column is refused: its direction, and
-- so its overlap, is undefined)
local function col_norms2(X, k, fname)
  local d, N = X:shape()
  local rows = X:totable()   -- d rows of N entries (one C call, not d x N)
  local nrm = {}
  for j = 1, N do
    local s = 0.0
    for i = 1, d do
      local v = rows[i][j]
      s = s + v * v
    end
    if not (s > 0) or s ~= s or s == math.huge then
      argerr(k, fname, string.format("sample %d has zero or non-finite norm", j))
    end
    nrm[j] = s
  end
  return nrm
end

-- overlap_rows(A, B, kind, fname) -> the N x M member overlaps (fidelity or squared cosine)
-- as N Lua rows of M numbers
local function overlap_rows(A, B, kind, fname)
  if kind == "quantum" then
    local EA, EB = as_ensemble(A), as_ensemble(B)
    if EA.n ~= EB.n then
      argerr(2, fname, string.format("ensemble on %d qubits expected (as argument #1), got %d qubits", EA.n, EB.n))
    end
    return EA:overlaps(EB):totable()
  end
  local dA = A:shape()
  local dB = B:shape()
  if dA ~= dB then argerr(2, fname, string.format("samples of dimension %d expected (as argument #1), got %d", dA, dB)) end
  local na, nb = col_norms2(A, 1, fname), col_norms2(B, 2, fname)
  local rows = (A:dagger() * B):totable()   -- NA x NB inner products (one matrix product)
  for i, row in ipairs(rows) do
    local ni = na[i]
    for j = 1, #row do
      local g = row[j]
      row[j] = g * g / (ni * nb[j])
    end
  end
  return rows
end

-- memorisation(generated, train) -> m, per (qd.Vector), nearest (table of indices):
-- per[k] = max_j overlap(generated_k, train_j), m = mean_k per[k]; nearest[k] the j attaining it
-- the kind ("quantum" or real) shared by arguments #1 and #2 of fname
local function same_kind(a, b, fname)
  local ka, kb = kind_of(a, 1, fname), kind_of(b, 2, fname)
  if ka ~= kb then
    argerr(2, fname, (ka == "quantum" and "qd.Ensemble" or "real qd.Matrix") .. " expected (as argument #1), got " .. qd.type(b))
  end
  return ka
end

function M.memorisation(gen, train)
  local fname = "memorisation"
  local kg = same_kind(gen, train, fname)
  local O = overlap_rows(gen, train, kg, fname)
  local N = #O
  local per, nearest, sum = qd.vector(N), {}, 0.0
  for i = 1, N do
    local best, bj = -1.0, 0
    local row = O[i]
    for j = 1, #row do
      local v = row[j]
      if v > best then best, bj = v, j end
    end
    per[i], nearest[i] = best, bj
    sum = sum + best
  end
  return sum / N, per, nearest
end

-- convergence(E1, E2) -> q, per (qd.Vector): per[k] = overlap(E1_k, E2_k) of paired members
-- (two models driven by the same noise: member k of each from the same draw), q = mean
function M.convergence(A, B)
  local fname = "convergence"
  local ka = same_kind(A, B, fname)
  local N, NB = count(A), count(B)
  if N ~= NB then argerr(2, fname, string.format("%d members (paired with argument #1) expected, got %d", N, NB)) end
  local per, sum = qd.vector(N), 0.0
  if ka == "quantum" then
    local EA, EB = as_ensemble(A), as_ensemble(B)
    if EA.n ~= EB.n then
      argerr(2, fname, string.format("ensemble on %d qubits expected (as argument #1), got %d qubits", EA.n, EB.n))
    end
    for k = 1, N do
      local f = qd.fidelity(EA[k], EB[k])
      per[k] = f
      sum = sum + f
    end
  else
    local d = A:shape()
    local dB = B:shape()
    if d ~= dB then argerr(2, fname, string.format("samples of dimension %d expected (as argument #1), got %d", d, dB)) end
    local na, nb = col_norms2(A, 1, fname), col_norms2(B, 2, fname)
    local ra, rb = A:totable(), B:totable()
    for k = 1, N do
      local s = 0.0
      for i = 1, d do s = s + ra[i][k] * rb[i][k] end
      local f = s * s / (na[k] * nb[k])
      per[k] = f
      sum = sum + f
    end
  end
  return sum / N, per
end

-- the top eigenvector (largest eigenvalue) of a Hermitian qd.Matrix as {re, im} pairs, and
-- that eigenvalue
local function top_eigenvector(C)
  local w, V = C:eigh()
  local d = #w
  local v = {}
  for i = 1, d do
    local re, im = V:get(i, d)
    v[i] = { re, im or 0.0 }
  end
  return v, w[d]
end

-- latent_recovery(E, u) -> Q, v, lambda: Q = |<v|u>|^2 / (<v|v><u|u>) with v the top
-- eigenvector of E's average state (an Ensemble, u a qd.State of the same qubits), or of
-- the sample second-moment matrix X X^T / N (a real d x N qd.Matrix X, u a qd.Vector of d);
-- v is returned as a qd.State (quantum) or qd.Vector (real), lambda its eigenvalue
function M.latent_recovery(E, u)
  local fname = "latent_recovery"
  local kind = kind_of(E, 1, fname)
  if kind == "quantum" then
    local EA = as_ensemble(E)
    if qd.type(u) ~= "qd.State" then argerr(2, fname, "qd.State expected, got " .. qd.type(u)) end
    if u.n ~= EA.n then argerr(2, fname, string.format("state on %d qubits expected, got %d qubits", EA.n, u.n)) end
    local v, lam = top_eigenvector(EA:mean_dm():matrix())
    local vs = qd.state.from(v)
    local nu = qd.fidelity(u, u)   -- |<u|u>|^2 = <u|u>^2
    return qd.fidelity(vs, u) / nu, vs, lam
  end
  local d, N = E:shape()
  local t = qd.type(u)
  local ud
  if t == "qd.Vector" then
    ud = #u
  elseif t == "qd.Matrix" then
    local r, c = u:shape()
    if c ~= 1 then argerr(2, fname, string.format("a qd.Vector of %d entries expected, got a %d x %d qd.Matrix", d, r, c)) end
    ud = r
  else
    argerr(2, fname, "qd.Vector of " .. d .. " entries expected, got " .. t)
  end
  if u:is_complex() then argerr(2, fname, "real qd.Vector expected, got a complex one") end
  if ud ~= d then argerr(2, fname, string.format("qd.Vector of %d entries expected, got %d", d, ud)) end
  local C = (E * E:dagger()) * (1.0 / N)
  local v, lam = top_eigenvector(C)
  local vu, vv, uu = 0.0, 0.0, 0.0
  local vout = qd.vector(d)
  -- a real symmetric matrix's eigenvector is real up to one global phase: remove it
  local k = 1
  for i = 2, d do if v[i][1] ^ 2 + v[i][2] ^ 2 > v[k][1] ^ 2 + v[k][2] ^ 2 then k = i end end
  local pr, pi = v[k][1], v[k][2]
  local pn = math.sqrt(pr * pr + pi * pi)
  for i = 1, d do
    local re = (v[i][1] * pr + v[i][2] * pi) / pn   -- Re(v_i conj(phase))
    local ui = u:get(i)
    vout[i] = re
    vu, vv, uu = vu + re * ui, vv + re * re, uu + ui * ui
  end
  if not (uu > 0) then argerr(2, fname, "non-zero vector expected") end
  return vu * vu / (vv * uu), vout, lam
end

-- ------------------------------------------------------------------ linear testbed theory
-- Asymptotic predictions for the linear Gaussian testbed of arXiv 2605.21402: data
-- x ~ N(0, I + beta u u^T) in d dimensions, the model x_gen = S^(1/2) z with S the sample
-- covariance of n training points, gamma = n / d, d -> infinity (docs/api.md derives them).
M.theory = {}

local function numarg(v, k, fname, what, lo)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
    argerr(k, fname, what .. " (a finite number) expected, got " .. tostring(v))
  end
  if lo and not (v > lo) then argerr(k, fname, string.format("%s > %s expected, got %s", what, lo, v)) end
  return v
end

-- theory.latent_recovery(gamma, beta) -> |<v|u>|^2 of the top sample eigenvector (spiked
-- covariance, BBP transition at gamma = 1 / beta^2): (1 - 1/(gamma beta^2)) / (1 + 1/(gamma beta))
-- above it, 0 below
function M.theory.latent_recovery(gamma, beta)
  local fname = "latent_recovery"
  numarg(gamma, 1, fname, "gamma", 0)
  numarg(beta, 2, fname, "beta", 0)
  local c = 1 / gamma
  if beta * beta <= c then return 0.0 end
  return (1 - c / (beta * beta)) / (1 + c / beta)
end

-- mean of f(lambda) over the Marchenko-Pastur law of ratio c = d/n (variance 1): the atom
-- (1 - 1/c) f(0) when c > 1, plus the continuous part integrated with lambda = m - h cos(theta),
-- which removes the square-root edges (midpoint rule, K nodes)
local function mp_mean(c, f, K)
  K = K or 4000
  local m, h = 1 + c, 2 * math.sqrt(c)
  local s = 0.0
  for k = 1, K do
    local th = (k - 0.5) * math.pi / K
    local lam = m - h * math.cos(th)
    local sn = math.sin(th)
    s = s + f(lam) * h * h * sn * sn / (2 * math.pi * c * lam)
  end
  s = s * math.pi / K
  if c > 1 then s = s + (1 - 1 / c) * f(0) end
  return s
end
M.theory.mp_mean = mp_mean

-- theory.convergence(gamma) -> the mean squared cosine of x1 = S1^(1/2) z and x2 = S2^(1/2) z
-- (independent training sets, shared z): S1, S2 are asymptotically free, so
-- cos -> tau(S^(1/2))^2 / tau(S) with tau the normalised trace; tau(S) -> 1 and
-- tau(S^(1/2)) -> E sqrt(lambda) under Marchenko-Pastur(d/n); the squared cosine -> (E sqrt(lambda))^4
-- (the spike changes these by O(1/d))
function M.theory.convergence(gamma)
  numarg(gamma, 1, "convergence", "gamma", 0)
  local e = mp_mean(1 / gamma, function(l) return math.sqrt(math.max(l, 0)) end)
  return e ^ 4
end

-- theory.memorisation(n, d, rng [, draws = 2000]) -> the small-load prediction of the mean
-- largest squared cosine between a generated point and the n training points, for n <= d.
-- For n <= d, x_gen = X w / sqrt(n) with w ~ N(0, I_n) exactly (S^(1/2) = X (X^T X)^(-1/2) X^T
-- / sqrt(n)), so cos_i^2 = (G w)_i^2 / (w^T G w G_ii) with G = X^T X; as d -> infinity at
-- fixed n, G -> d I and cos_i^2 -> w_i^2 / |w|^2: m0(n) = E max_i w_i^2 / |w|^2 (its mean
-- over draws, Monte Carlo from rng; corrections are O(n/d)). For n > d, nil (x_gen leaves
-- the span of the training set and the reduction does not hold).
-- the arguments (n, d, rng [, draws]) of the two Monte Carlo predictions below
local function mc_args(fname, n, d, dmin, rng, draws, default)
  if math.type(n) ~= "integer" or n < 1 then argerr(1, fname, "n: integer >= 1 expected, got " .. tostring(n)) end
  if math.type(d) ~= "integer" or d < dmin then
    argerr(2, fname, "d: integer >= " .. dmin .. " expected, got " .. tostring(d))
  end
  if qd.type(rng) ~= "qd.Rng" then argerr(3, fname, "qd.Rng expected, got " .. qd.type(rng)) end
  draws = draws or default
  if math.type(draws) ~= "integer" or draws < 1 then argerr(4, fname, "draws: integer >= 1 expected, got " .. tostring(draws)) end
  return draws
end

function M.theory.memorisation(n, d, rng, draws)
  draws = mc_args("memorisation", n, d, 1, rng, draws, 2000)
  if n > d then return nil end
  local total = 0.0
  for _ = 1, draws do
    local w = rng:normal(0, 1, n)
    local den, best = 0.0, 0.0
    for i = 1, n do
      local a = w[i] * w[i]
      den = den + a
      if a > best then best = a end
    end
    total = total + best / den
  end
  return total / draws
end

-- theory.memorisation_floor(n, d, rng [, draws = 500]) -> the memorisation of a model that
-- has forgotten its training set (gamma >> 1: S -> the population covariance, x_gen
-- independent of the training points): E max_i cos_i^2 over n independent directions, with
-- cos^2 = g^2 / (g^2 + chi^2_(d-1)) and chi^2_(d-1) replaced by its mean d - 1 (Monte Carlo)
function M.theory.memorisation_floor(n, d, rng, draws)
  draws = mc_args("memorisation_floor", n, d, 2, rng, draws, 500)
  local total = 0.0
  for _ = 1, draws do
    local g = rng:normal(0, 1, n)
    local best = 0.0
    for i = 1, n do
      local a = g[i] * g[i]
      if a > best then best = a end
    end
    total = total + best / (best + d - 1)
  end
  return total / draws
end

return M
