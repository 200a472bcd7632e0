-- qd.data — seeded data-set generators for diffusion models and Born machines.
-- Quantum data sets return Ensembles (member k drawn from substream k of a stream split
-- off rng, so member k does not depend on N); classical distributions for Born machines
-- return a qd.Vector of 2^n probabilities. Settings are those of the QuDDPM reference runs
-- (arXiv 2310.05866) unless stated.
--
-- Bit order of the distributions (same as s:probs()): entry i + 1 of the Vector is the
-- probability of basis index i; qubit q holds bit (n-1-q) of i, i.e. the bitstring read
-- left to right is qubits 0, 1, ..., n-1 (qubit 0 most significant).
--
-- qd.data.tfim (ground states of the open TFIM chain with g in a range) and qd.data.gibbs
-- (e^{-βH}/Z targets) are at the end of this file (Hamiltonians: lua_pauli.c).
local core = require "qd.core"

local M = {}

-- errors point at the user's line, however deep in the library they are raised
local outside = require("qd.caller").outside

local argerror = require("qd.caller").argerror

local function qtype(x)
  local mt = getmetatable(x)
  if type(mt) == "table" and type(mt.__name) == "string" then return mt.__name end
  return type(x)
end

-- checks: integer in [lo, hi]
local function checkint(fname, i, x, what, lo, hi)
  if math.type(x) ~= "integer" then
    argerror(fname, i, string.format("%s expected, got %s", what,
                                     type(x) == "number" and "a non-integer" or qtype(x)))
  end
  if x < lo or (hi and x > hi) then
    argerror(fname, i, hi and string.format("%s %d..%d expected, got %d", what, lo, hi, x)
                          or string.format("%s >= %d expected, got %d", what, lo, x))
  end
  return x
end

-- (rng, opts) from the arguments at position i: rng optional (the run's generator)
local function rng_opts(fname, i, a, b, nextra)
  if nextra > 2 then argerror(fname, i + 2, "unexpected extra argument") end
  if qtype(a) == "qd.Rng" then return a, b, i + 1 end
  if a == nil then return nil, b, i + 1 end
  if type(a) == "table" then
    if b ~= nil then argerror(fname, i + 1, "unexpected extra argument") end
    return nil, a, i
  end
  argerror(fname, i, "qd.Rng or options table expected, got " .. qtype(a))
end

local function checkopts(fname, i, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then argerror(fname, i, "options table expected, got " .. qtype(opts)) end
  for k in pairs(opts) do
    if not allowed[k] then
      local names = {}
      for name in pairs(allowed) do names[#names + 1] = name end
      table.sort(names)
      argerror(fname, i, string.format("unknown option '%s' (known: %s)", tostring(k), table.concat(names, ", ")))
    end
  end
  return opts
end

local function optnum(fname, i, opts, key, def, ok, what)
  local v = opts[key]
  if v == nil then return def end
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
    argerror(fname, i, string.format("option '%s': finite number expected, got %s", key, qtype(v)))
  end
  if ok and not ok(v) then argerror(fname, i, string.format("option '%s': %s expected, got %s", key, what, tostring(v))) end
  return v
end

-- ---------------------------------------------------------------- quantum data sets

-- clustered(n, N [, rng] [, {eps=}]) -> Ensemble: psi ∝ |0..0> + eps Σ_{j≠0} c_j |j>,
-- c_j = x + i y, x, y ~ N(0, 1) (the reference code's randn + 1j randn); eps defaults to the
-- paper's 0.08 (n = 1) / 0.06 (n ≥ 2).
function M.clustered(n, N, a, b, ...)
  local f = "clustered"
  checkint(f, 1, n, "number of qubits", 1, 30)
  checkint(f, 2, N, "number of states", 1)
  local rng, opts, oi = rng_opts(f, 3, a, b, select("#", ...) + 2)
  opts = checkopts(f, oi, opts, { eps = true })
  local eps = optnum(f, oi, opts, "eps", n == 1 and 0.08 or 0.06, function(x) return x >= 0 end, "eps >= 0")
  return core.data_clustered(n, N, eps, rng)
end

-- circle(N [, rng] [, {n = 1, range = {0, 2π}}]) -> Ensemble, angles:
-- each qubit cos φ|0> + sin φ|1>, φ ~ U[range) (one per qubit; n = 1 is the paper's task).
-- angles: qd.Vector of N (n = 1) or an n x N qd.Matrix.
function M.circle(N, a, b, ...)
  local f = "circle"
  checkint(f, 1, N, "number of states", 1)
  local rng, opts, oi = rng_opts(f, 2, a, b, select("#", ...) + 2)
  opts = checkopts(f, oi, opts, { n = true, range = true })
  local n = opts.n or 1
  if math.type(n) ~= "integer" or n < 1 or n > 30 then
    argerror(f, oi, "option 'n': number of qubits 1..30 expected, got " .. tostring(n))
  end
  local lo, hi = 0, 2 * math.pi
  if opts.range ~= nil then
    local r = opts.range
    if type(r) ~= "table" or #r ~= 2 or type(r[1]) ~= "number" or type(r[2]) ~= "number" or not (r[1] <= r[2]) then
      argerror(f, oi, "option 'range': {lo, hi} with lo <= hi expected")
    end
    lo, hi = r[1], r[2]
  end
  local E, phis = core.data_circle(n, N, lo, hi, rng)
  if n == 1 then phis = core.vector(phis:totable()[1]) end
  return E, phis
end

-- noise(N [, rng] [, {p = 0.8, eps_max = π/3}]) -> Ensemble, is_xx, eps:
-- the correlated-noise ensemble on 2 qubits, psi0 = (√0.1 e^{0.8i}, √0.55 e^{1.7i}, 0,
-- √0.35 e^{2.4i}); with probability p exp(-iεX⊗X), else exp(-iεZ⊗Z), ε ~ U[-eps_max, eps_max).
-- is_xx: qd.Vector of 1 (XX) / 0 (ZZ); eps: qd.Vector of ε. Mean |<10|ψ>|² = 0.55 p E sin²ε.
function M.noise(N, a, b, ...)
  local f = "noise"
  checkint(f, 1, N, "number of states", 1)
  local rng, opts, oi = rng_opts(f, 2, a, b, select("#", ...) + 2)
  opts = checkopts(f, oi, opts, { p = true, eps_max = true })
  local p = optnum(f, oi, opts, "p", 0.8, function(x) return x >= 0 and x <= 1 end, "probability 0..1")
  local emax = optnum(f, oi, opts, "eps_max", math.pi / 3, function(x) return x >= 0 end, "eps_max >= 0")
  return core.data_xxzz(N, p, emax, rng)
end

-- random_pure(n, N [, rng]) -> Ensemble of N Haar-random states (qd.ensemble.haar)
function M.random_pure(n, N, rng, ...)
  local f = "random_pure"
  checkint(f, 1, n, "number of qubits", 1, 30)
  checkint(f, 2, N, "number of states", 1)
  if rng ~= nil and qtype(rng) ~= "qd.Rng" and not (math.type(rng) == "integer" and rng >= 0) then
    argerror(f, 3, "qd.Rng (or an integer seed) expected, got " .. qtype(rng))
  end
  if select("#", ...) > 0 then argerror(f, 4, "unexpected extra argument") end
  return core.ensemble_haar(n, N, rng)
end

-- random_mixed(n [, rng] [, {measure = "hs" | "bures" | "mixture", rank = k}])
--   -> DensityMatrix: qd.random.dm (Hilbert-Schmidt / induced with rank, Bures) or, with
--   measure = "mixture", qd.random.mixture(n, rank) (Haar eigenvectors, Dirichlet weights).
function M.random_mixed(n, a, b, ...)
  local f = "random_mixed"
  checkint(f, 1, n, "number of qubits", 1, 12)
  local rng, opts, oi = rng_opts(f, 2, a, b, select("#", ...) + 2)
  opts = checkopts(f, oi, opts, { measure = true, rank = true })
  local measure = opts.measure or "hs"
  if measure ~= "hs" and measure ~= "bures" and measure ~= "mixture" then
    argerror(f, oi, "option 'measure': \"hs\", \"bures\" or \"mixture\" expected, got " .. tostring(measure))
  end
  local d = 1 << n
  local rank = opts.rank
  if rank ~= nil and (math.type(rank) ~= "integer" or rank < 1 or rank > d) then
    argerror(f, oi, string.format("option 'rank': 1..%d expected, got %s", d, tostring(rank)))
  end
  if measure == "mixture" then
    return core.random.mixture(n, rank or d, rng)
  end
  if measure == "bures" then
    if rank ~= nil and rank ~= d then argerror(f, oi, "option 'rank' is for the hs and mixture measures only") end
    return core.random.dm(n, rng, { measure = "bures" })
  end
  return core.random.dm(n, rng, { rank = rank })
end

-- ---------------------------------------------------------------- Born-machine distributions

-- vector of probabilities from a Lua function p(i) over i = 0..2^n-1, normalised
local function distribution(n, p)
  local d = 1 << n
  local v = core.vector(d)
  local s = 0
  for i = 0, d - 1 do
    local x = p(i)
    v[i + 1] = x
    s = s + x
  end
  for i = 1, d do v[i] = v[i] / s end
  return v
end

-- bars_and_stripes(rows, cols) -> Vector, patterns: uniform over the images of a rows x cols
-- grid whose rows are all constant (stripes) or whose columns are all constant (bars);
-- 2^rows + 2^cols - 2 distinct patterns (all-0 and all-1 are both). Pixel (r, c), 0-based,
-- is qubit r*cols + c. patterns: sorted table of the bitstrings with probability > 0.
function M.bars_and_stripes(rows, cols, ...)
  local f = "bars_and_stripes"
  checkint(f, 1, rows, "rows", 1, 20)
  checkint(f, 2, cols, "cols", 1, 20)
  if select("#", ...) > 0 then argerror(f, 3, "unexpected extra argument") end
  local n = rows * cols
  if n > 24 then argerror(f, 2, string.format("rows * cols <= 24 expected, got %d", n)) end
  local set = {}
  local function bit_of(r, c) return n - 1 - (r * cols + c) end   -- qubit q is bit n-1-q
  for m = 0, (1 << rows) - 1 do        -- stripes: row r all equal to bit r of m
    local i = 0
    for r = 0, rows - 1 do
      if (m >> r) & 1 == 1 then
        for c = 0, cols - 1 do i = i | (1 << bit_of(r, c)) end
      end
    end
    set[i] = true
  end
  for m = 0, (1 << cols) - 1 do        -- bars: column c all equal to bit c of m
    local i = 0
    for c = 0, cols - 1 do
      if (m >> c) & 1 == 1 then
        for r = 0, rows - 1 do i = i | (1 << bit_of(r, c)) end
      end
    end
    set[i] = true
  end
  local support = {}
  for i in pairs(set) do support[#support + 1] = i end
  local v = core.dist_uniform(n, support)   -- one C loop (was a Lua call per entry)
  local patterns = {}
  for i in pairs(set) do
    local bits = {}
    for q = 0, n - 1 do bits[q + 1] = ((i >> (n - 1 - q)) & 1 == 1) and "1" or "0" end
    patterns[#patterns + 1] = table.concat(bits)
  end
  table.sort(patterns)
  return v, patterns
end

-- ghz(n [, {weight = 0.5, flip = 0}]) -> Vector: weight on 0..0 and 1 - weight on 1..1, then
-- every bit flipped independently with probability flip:
--   p(x) = weight f^|x| (1-f)^(n-|x|) + (1 - weight) f^(n-|x|) (1-f)^|x|,  |x| = ones in x.
function M.ghz(n, opts, ...)
  local f = "ghz"
  checkint(f, 1, n, "number of qubits", 1, 24)
  if select("#", ...) > 0 then argerror(f, 3, "unexpected extra argument") end
  opts = checkopts(f, 2, opts, { weight = true, flip = true })
  local w = optnum(f, 2, opts, "weight", 0.5, function(x) return x >= 0 and x <= 1 end, "weight 0..1")
  local fl = optnum(f, 2, opts, "flip", 0, function(x) return x >= 0 and x <= 1 end, "probability 0..1")
  -- p depends on the number k of ones only: n + 1 weights, filled in by one C loop
  local wk = {}
  for k = 0, n do wk[k + 1] = w * fl ^ k * (1 - fl) ^ (n - k) + (1 - w) * fl ^ (n - k) * (1 - fl) ^ k end
  return core.dist_popcount(n, wk)
end

-- gaussian_mixture(n [, {means=, sigmas=, weights=}]) -> Vector over x = 0..2^n-1 (x is the
-- basis index): p(x) ∝ Σ_k w_k exp(-(x - μ_k)² / (2 σ_k²)). Defaults (Liu & Wang, arXiv
-- 1804.04168): means {2/7, 5/7} · 2^n, sigmas 2^n / 8 each, equal weights.
function M.gaussian_mixture(n, opts, ...)
  local f = "gaussian_mixture"
  checkint(f, 1, n, "number of qubits", 1, 24)
  if select("#", ...) > 0 then argerror(f, 3, "unexpected extra argument") end
  opts = checkopts(f, 2, opts, { means = true, sigmas = true, weights = true })
  local d = 1 << n
  local function list(key, def, positive)
    local t = opts[key]
    if t == nil then return def end
    if type(t) ~= "table" or #t < 1 then argerror(f, 2, string.format("option '%s': non-empty table of numbers expected", key)) end
    for j = 1, #t do
      local x = t[j]
      if type(x) ~= "number" or x ~= x or math.abs(x) == math.huge or (positive and not (x > 0)) then
        argerror(f, 2, string.format("option '%s': %s number expected at position %d", key, positive and "positive" or "finite", j))
      end
    end
    return t
  end
  local means = list("means", { 2 / 7 * d, 5 / 7 * d }, false)
  local K = #means
  local defs, defw = {}, {}
  for j = 1, K do defs[j] = d / 8; defw[j] = 1 / K end
  local sigmas = list("sigmas", defs, true)
  local weights = opts.weights and list("weights", nil, false) or defw
  local wsum = 0
  for j = 1, #weights do
    if weights[j] < 0 then argerror(f, 2, "option 'weights': non-negative weights expected") end
    wsum = wsum + weights[j]
  end
  if not (wsum > 0) then argerror(f, 2, "option 'weights': a positive total weight expected") end
  if #sigmas ~= K or #weights ~= K then
    argerror(f, 2, string.format("means, sigmas and weights of equal length expected (%d, %d, %d)", K, #sigmas, #weights))
  end
  return distribution(n, function(x)
    local s = 0
    for j = 1, K do s = s + weights[j] * math.exp(-(x - means[j]) ^ 2 / (2 * sigmas[j] ^ 2)) end
    return s
  end)
end

-- ---------------------------------------------------------------- Hamiltonian targets

-- tfim(n, g_range, N [, rng] [, {J = 1, periodic = false}]) -> Ensemble, g:
-- ground states of H = -J Σ Z_i Z_{i+1} - g Σ X_i (open chain unless periodic), one
-- g ~ U[lo, hi) per member (member k draws from substream k-1 of a stream split off rng;
-- g_range may be a number for a fixed g). Phase fixed: the largest amplitude is real > 0.
-- g: qd.Vector of the fields. QuDDPM's tfim task: tfim(4, {0.2, 0.4}, 100).
function M.tfim(n, g_range, N, a, b, ...)
  local f = "tfim"
  checkint(f, 1, n, "number of qubits", 1, 20)   -- dense eig up to 10 qubits, Lanczos above
  local lo, hi
  if type(g_range) == "number" and g_range == g_range and math.abs(g_range) ~= math.huge then
    lo, hi = g_range, g_range
  elseif type(g_range) == "table" and #g_range == 2 and type(g_range[1]) == "number" and type(g_range[2]) == "number"
      and g_range[1] <= g_range[2] and math.abs(g_range[1]) ~= math.huge and math.abs(g_range[2]) ~= math.huge then
    lo, hi = g_range[1], g_range[2]
  else
    argerror(f, 2, "field range {lo, hi} (lo <= hi) or a number expected, got " .. qtype(g_range))
  end
  checkint(f, 3, N, "number of states", 1)
  local rng, opts, oi = rng_opts(f, 4, a, b, select("#", ...) + 2)
  opts = checkopts(f, oi, opts, { J = true, periodic = true })
  local J = optnum(f, oi, opts, "J", 1)
  if opts.periodic ~= nil and type(opts.periodic) ~= "boolean" then
    argerror(f, oi, "option 'periodic': boolean expected, got " .. qtype(opts.periodic))
  end
  local base = (rng or core.run_rng()):split()
  local E = core.ensemble_new(n, N)
  local g = core.vector(N)
  for k = 1, N do
    local gk = lo == hi and lo or base:substream(k - 1):uniform(lo, hi)
    local H = core.pauli_tfim(n, gk, { J = J, periodic = opts.periodic or false })
    local s = H:ground_state()
    E:set(k, s)
    g[k] = gk
    H:free(); s:free()
  end
  return E, g
end

-- gibbs(H, beta) -> DensityMatrix e^{-βH}/Z, ln Z  (H a qd.PauliSum, at most 12 qubits)
function M.gibbs(H, beta, ...)
  local f = "gibbs"
  if qtype(H) ~= "qd.PauliSum" then argerror(f, 1, "qd.PauliSum expected, got " .. qtype(H)) end
  if type(beta) ~= "number" or beta ~= beta or beta < 0 or beta == math.huge then
    argerror(f, 2, "inverse temperature beta >= 0 (finite) expected, got " .. tostring(beta))
  end
  if select("#", ...) > 0 then argerror(f, 3, "unexpected extra argument") end
  return H:gibbs(beta)
end

-- qd.data.digits{n_classes=, ds_size=, train_fraction=, path=, rng=, fallback=, generated=}:
-- the 8x8 handwritten digits as image matrices (stdlib/qd/digits.lua)
function M.digits(o, ...)
  if select("#", ...) > 0 then argerror("digits", 2, "unexpected extra argument") end
  return require("qd.digits").load(o)
end

return M
