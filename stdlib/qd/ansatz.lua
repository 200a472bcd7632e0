-- qd.ansatz — circuit builders with documented parameter layouts. Every builder returns a
-- new qd.Circuit whose parameter slots are unnamed and numbered 1..c:nparams() in the
-- layout given below (l = layer 1..L, i = qubit 0..n-1), so a parameter vector from
-- another implementation can be used as is.
local core = require "qd.core"
local M = {}

-- errors point at the user's line, however deep in the library they are raised
local outside = require("qd.caller").outside

-- layers per builder: the circuits are built gate by gate in Lua, so a count is bounded
-- before the work starts (10^4 layers of 60 qubits is already millions of ops)
M.max_layers = 10000

local argerror = require("qd.caller").argerror

-- argument #pos of fname, an integer in lo..hi
local function check_int(v, pos, name, fname, lo, hi)
  if math.type(v) ~= "integer" or v < lo or (hi and v > hi) then
    argerror(fname, pos, string.format("%s: integer %s expected, got %s", name,
      hi and string.format("in %d..%d", lo, hi) or (">= " .. lo), tostring(v)))
  end
end

-- the options table, argument #pos of fname
local function check_opts(opts, pos, allowed, fname)
  if opts == nil then return {} end
  if type(opts) ~= "table" then argerror(fname, pos, "options table expected, got " .. type(opts)) end
  for k in pairs(opts) do
    if not allowed[k] then
      local names = {}
      for a in pairs(allowed) do names[#names + 1] = a end
      table.sort(names)
      argerror(fname, pos, string.format("unknown option '%s' (known: %s)", tostring(k), table.concat(names, ", ")))
    end
  end
  return opts
end

-- QuDDPM backward circuit (arXiv 2310.05866), on N = n + na qubits
-- with the na ancillas as qubits 0..na-1 (most significant, as E:embed(na) places them):
--   for l = 1..L:  RX(theta) then RY(theta) on every qubit,
--                  CZ on (0,1), (2,3), ...  then CZ on (1,2), (3,4), ...
-- Layout (as the reference code): slot 2N(l-1) + i + 1 is RX on qubit i,
-- slot 2N(l-1) + N + i + 1 is RY on qubit i; 2NL parameters.
-- With na > 0 the ancillas are measured at the end and discarded, so c:run(E:embed(na),
-- theta) returns the normalised data states (outcomes sampled; c:grad holds them fixed).
function M.quddpm(n, L, opts)
  check_int(n, 1, "n", "quddpm", 1)
  check_int(L, 2, "L", "quddpm", 1, M.max_layers)
  opts = check_opts(opts, 3, { ancillas = true }, "quddpm")
  local na = opts.ancillas or 0
  check_int(na, 3, "ancillas", "quddpm", 0)
  local N = n + na
  local c = core.circuit(N)
  for l = 1, L do
    local base = 2 * N * (l - 1)
    for i = 0, N - 1 do
      c:rx(i, { base + i + 1 })
      c:ry(i, { base + N + i + 1 })
    end
    for i = 0, N - 2, 2 do c:cz(i, i + 1) end
    for i = 1, N - 2, 2 do c:cz(i, i + 1) end
  end
  if na > 0 then
    local anc = {}
    for i = 0, na - 1 do anc[#anc + 1] = i end
    c:measure(anc, { discard = true })
  end
  return c
end

-- Strongly entangling layers (PennyLane StronglyEntanglingLayers; QDDM's "Q-Dense"):
--   for l = 1..L: Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi) on every qubit
--                 (RZ(phi) applied first), then CNOT(i, (i + r) mod n) for i = 0..n-1 with
--                 range r = ((l-1) mod (n-1)) + 1 (no CNOTs when n = 1).
-- Layout: slots 3n(l-1) + 3i + 1, +2, +3 are phi, theta, omega of qubit i (PennyLane's
-- weights[l][i][j] flattened in C order); 3nL parameters.
function M.strongly_entangling(n, L)
  check_int(n, 1, "n", "strongly_entangling", 1)
  check_int(L, 2, "L", "strongly_entangling", 1, M.max_layers)
  local c = core.circuit(n)
  for l = 1, L do
    local base = 3 * n * (l - 1)
    for i = 0, n - 1 do
      c:rz(i, { base + 3 * i + 1 })
      c:ry(i, { base + 3 * i + 2 })
      c:rz(i, { base + 3 * i + 3 })
    end
    if n > 1 then
      local r = ((l - 1) % (n - 1)) + 1
      for i = 0, n - 1 do c:cx(i, (i + r) % n) end
    end
  end
  return c
end

-- RY-RZ layers with a CZ ladder:
--   for l = 1..L: RY on every qubit, RZ on every qubit, then CZ(0,1), CZ(1,2), ..., CZ(n-2,n-1).
-- Layout: slot 2n(l-1) + i + 1 is RY on qubit i, slot 2n(l-1) + n + i + 1 is RZ on qubit i.
function M.ry_rz_cz(n, L)
  check_int(n, 1, "n", "ry_rz_cz", 1)
  check_int(L, 2, "L", "ry_rz_cz", 1, M.max_layers)
  local c = core.circuit(n)
  for l = 1, L do
    local base = 2 * n * (l - 1)
    for i = 0, n - 1 do c:ry(i, { base + i + 1 }) end
    for i = 0, n - 1 do c:rz(i, { base + n + i + 1 }) end
    for i = 0, n - 2 do c:cz(i, i + 1) end
  end
  return c
end

-- Hardware-efficient ansatz (Kandala et al. 2017 style):
--   for l = 1..L: RY then RZ on each qubit, then CNOT chain CX(0,1), CX(1,2), ..., CX(n-2,n-1);
--   with {final = true} a last RY, RZ layer follows the last entangler.
-- Layout: slot 2n(l-1) + 2i + 1 is RY on qubit i, + 2 is RZ on qubit i (layer L+1 is the
-- final layer); 2nL (+2n) parameters.
function M.hardware_efficient(n, L, opts)
  check_int(n, 1, "n", "hardware_efficient", 1)
  check_int(L, 2, "L", "hardware_efficient", 1, M.max_layers)
  opts = check_opts(opts, 3, { final = true }, "hardware_efficient")
  local c = core.circuit(n)
  local function rot(l)
    local base = 2 * n * (l - 1)
    for i = 0, n - 1 do
      c:ry(i, { base + 2 * i + 1 })
      c:rz(i, { base + 2 * i + 2 })
    end
  end
  for l = 1, L do
    rot(l)
    for i = 0, n - 2 do c:cx(i, i + 1) end
  end
  if opts.final then rot(L + 1) end
  return c
end

return M
