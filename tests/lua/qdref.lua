-- qdref.lua — naive dense references for the Lua tests (not a test file itself).
-- Complex numbers are {re, im} pairs; vectors are Lua arrays of pairs; matrices are arrays
-- of rows. Gate matrices are written out here from their textbook definitions (NOT taken
-- from qd.gate_matrix), so the tests compare qd against an independent reference.
-- Conventions as in docs/api.md: qubit 0 is the most significant bit; for a k-qubit
-- matrix on qubits {q1..qk}, q1 is the most significant bit of the matrix index.
local R = {}

local sqrt, cos, sin, exp, pi = math.sqrt, math.cos, math.sin, math.exp, math.pi

local function C(re, im) return { re, im or 0 } end
R.C = C
function R.add(a, b) return { a[1] + b[1], a[2] + b[2] } end
function R.sub(a, b) return { a[1] - b[1], a[2] - b[2] } end
function R.mul(a, b) return { a[1] * b[1] - a[2] * b[2], a[1] * b[2] + a[2] * b[1] } end
function R.conj(a) return { a[1], -a[2] } end
function R.scale(a, x) return { a[1] * x, a[2] * x } end
function R.abs2(a) return a[1] * a[1] + a[2] * a[2] end
local function eix(t) return { cos(t), sin(t) } end
R.eix = eix

-- ---------------------------------------------------------------- gate matrices
local function m1(a, b, c, d) return { { a, b }, { c, d } } end
local function ctrl(u) -- controlled-u, control is the first (most significant) qubit
  local z = C(0)
  return { { C(1), z, z, z }, { z, C(1), z, z }, { z, z, u[1][1], u[1][2] }, { z, z, u[2][1], u[2][2] } }
end
local function eye(d)
  local m = {}
  for i = 1, d do
    m[i] = {}
    for j = 1, d do m[i][j] = C(i == j and 1 or 0) end
  end
  return m
end
R.eye = eye

local function kron(a, b)
  local ra, rb = #a, #b
  local m = {}
  for i = 1, ra * rb do
    m[i] = {}
    for j = 1, ra * rb do
      local ai, bi = (i - 1) // rb + 1, (i - 1) % rb + 1
      local aj, bj = (j - 1) // rb + 1, (j - 1) % rb + 1
      m[i][j] = R.mul(a[ai][aj], b[bi][bj])
    end
  end
  return m
end
R.kron = kron

local function matmul(a, b)
  local m = {}
  for i = 1, #a do
    m[i] = {}
    for j = 1, #b[1] do
      local s = { 0, 0 }
      for l = 1, #b do
        local x, y = a[i][l], b[l][j]
        s[1] = s[1] + x[1] * y[1] - x[2] * y[2]
        s[2] = s[2] + x[1] * y[2] + x[2] * y[1]
      end
      m[i][j] = s
    end
  end
  return m
end
R.matmul = matmul

local function dagger(a)
  local m = {}
  for i = 1, #a[1] do
    m[i] = {}
    for j = 1, #a do m[i][j] = R.conj(a[j][i]) end
  end
  return m
end
R.dagger = dagger

-- exp(-i t P/2) for P with P^2 = I: cos(t/2) I - i sin(t/2) P
local function rot(P, t)
  local c, s = cos(t / 2), sin(t / 2)
  local m = {}
  for i = 1, #P do
    m[i] = {}
    for j = 1, #P do
      local p = P[i][j]
      m[i][j] = { (i == j and c or 0) + s * p[2], -s * p[1] }
    end
  end
  return m
end

local X = m1(C(0), C(1), C(1), C(0))
local Y = m1(C(0), C(0, -1), C(0, 1), C(0))
local Z = m1(C(1), C(0), C(0), C(-1))
local H = m1(C(1 / sqrt(2)), C(1 / sqrt(2)), C(1 / sqrt(2)), C(-1 / sqrt(2)))
R.X, R.Y, R.Z, R.H = X, Y, Z, H

-- name -> function(params...) -> matrix (rows of pairs)
R.gates = {
  id = function() return eye(2) end,
  x = function() return X end,
  y = function() return Y end,
  z = function() return Z end,
  h = function() return H end,
  s = function() return m1(C(1), C(0), C(0), C(0, 1)) end,
  sdg = function() return m1(C(1), C(0), C(0), C(0, -1)) end,
  t = function() return m1(C(1), C(0), C(0), eix(pi / 4)) end,
  tdg = function() return m1(C(1), C(0), C(0), eix(-pi / 4)) end,
  sx = function() return m1(C(.5, .5), C(.5, -.5), C(.5, -.5), C(.5, .5)) end,
  sxdg = function() return m1(C(.5, -.5), C(.5, .5), C(.5, .5), C(.5, -.5)) end,
  rx = function(t) return rot(X, t) end,
  ry = function(t) return rot(Y, t) end,
  rz = function(t) return rot(Z, t) end,
  p = function(l) return m1(C(1), C(0), C(0), eix(l)) end,
  u = function(t, ph, l)
    local c, s = cos(t / 2), sin(t / 2)
    return m1(C(c), R.scale(eix(l), -s), R.scale(eix(ph), s), R.scale(eix(ph + l), c))
  end,
  cx = function() return ctrl(X) end,
  cy = function() return ctrl(Y) end,
  cz = function() return ctrl(Z) end,
  ch = function() return ctrl(H) end,
  swap = function()
    local m = eye(4)
    m[2][2], m[3][3], m[2][3], m[3][2] = C(0), C(0), C(1), C(1)
    return m
  end,
  crx = function(t) return ctrl(rot(X, t)) end,
  cry = function(t) return ctrl(rot(Y, t)) end,
  crz = function(t) return ctrl(rot(Z, t)) end,
  cp = function(l) return ctrl(m1(C(1), C(0), C(0), eix(l))) end,
  rxx = function(t) return rot(kron(X, X), t) end,
  ryy = function(t) return rot(kron(Y, Y), t) end,
  rzz = function(t) return rot(kron(Z, Z), t) end,
  ccx = function()
    local m = eye(8)
    m[7][7], m[8][8], m[7][8], m[8][7] = C(0), C(0), C(1), C(1)
    return m
  end,
  cswap = function()
    local m = eye(8)
    m[6][6], m[7][7], m[6][7], m[7][6] = C(0), C(0), C(1), C(1)
    return m
  end,
  -- (X(x)I - Y(x)X)/sqrt(2), the first qubit the more significant
  ecr = function()
    local a, b = kron(X, eye(2)), kron(Y, X)
    local m = {}
    for i = 1, 4 do
      m[i] = {}
      for j = 1, 4 do
        m[i][j] = R.scale(C(a[i][j][1] - b[i][j][1], a[i][j][2] - b[i][j][2]), 1 / math.sqrt(2))
      end
    end
    return m
  end,
}
R.gate_info = {
  id = { 1, 0 }, x = { 1, 0 }, y = { 1, 0 }, z = { 1, 0 }, h = { 1, 0 }, s = { 1, 0 },
  sdg = { 1, 0 }, t = { 1, 0 }, tdg = { 1, 0 }, sx = { 1, 0 }, sxdg = { 1, 0 },
  rx = { 1, 1 }, ry = { 1, 1 }, rz = { 1, 1 }, p = { 1, 1 }, u = { 1, 3 },
  cx = { 2, 0 }, cy = { 2, 0 }, cz = { 2, 0 }, ch = { 2, 0 }, swap = { 2, 0 },
  crx = { 2, 1 }, cry = { 2, 1 }, crz = { 2, 1 }, cp = { 2, 1 },
  rxx = { 2, 1 }, ryy = { 2, 1 }, rzz = { 2, 1 }, ccx = { 3, 0 }, cswap = { 3, 0 },
  ecr = { 2, 0 },
}
R.gate_names = {}
for k in pairs(R.gate_info) do R.gate_names[#R.gate_names + 1] = k end
table.sort(R.gate_names)

-- every ordered choice of k distinct qubits out of n
function R.qubit_choices(n, k)
  local out = {}
  local function rec(cur)
    if #cur == k then out[#out + 1] = { table.unpack(cur) } return end
    for q = 0, n - 1 do
      local used = false
      for _, c in ipairs(cur) do if c == q then used = true end end
      if not used then cur[#cur + 1] = q; rec(cur); cur[#cur] = nil end
    end
  end
  rec({})
  return out
end

-- full 2^n x 2^n operator of a k-qubit matrix M on qubits qs (qs[1] = MSB of M's index)
function R.full(M, qs, n)
  local d, k = 1 << n, #qs
  local function loc(i)
    local l = 0
    for a = 1, k do l = (l << 1) | ((i >> (n - 1 - qs[a])) & 1) end
    return l
  end
  local mask = 0
  for a = 1, k do mask = mask | (1 << (n - 1 - qs[a])) end
  local U = {}
  for i = 0, d - 1 do
    local row = {}
    for j = 0, d - 1 do
      if (i & ~mask) == (j & ~mask) then row[j + 1] = M[loc(i) + 1][loc(j) + 1] else row[j + 1] = C(0) end
    end
    U[i + 1] = row
  end
  return U
end

function R.apply(U, v)
  local out = {}
  for i = 1, #U do
    local s = { 0, 0 }
    for j = 1, #v do
      local x, y = U[i][j], v[j]
      s[1] = s[1] + x[1] * y[1] - x[2] * y[2]
      s[2] = s[2] + x[1] * y[2] + x[2] * y[1]
    end
    out[i] = s
  end
  return out
end

-- max |a_i - b_i| over complex vectors / matrices
function R.vdiff(a, b)
  if #a ~= #b then return math.huge end
  local m = 0
  for i = 1, #a do
    local x = math.abs(a[i][1] - b[i][1]) + math.abs(a[i][2] - b[i][2])
    if x > m then m = x end
  end
  return m
end
function R.mdiff(a, b)
  if #a ~= #b then return math.huge end
  local m = 0
  for i = 1, #a do
    local x = R.vdiff(a[i], b[i])
    if x > m then m = x end
  end
  return m
end

-- a density matrix as rows of pairs (rho:get is (row, col), 1-based)
function R.dm_rows(rho)
  local d = rho.dim
  local m = {}
  for i = 1, d do
    m[i] = {}
    for j = 1, d do m[i][j] = { rho:get(i, j) } end
  end
  return m
end

-- |v><v| as rows
function R.outer(v)
  local m = {}
  for i = 1, #v do
    m[i] = {}
    for j = 1, #v do m[i][j] = R.mul(v[i], R.conj(v[j])) end
  end
  return m
end

-- a qd.Matrix from rows of pairs
function R.qmatrix(rows) return qd.matrix(rows) end

return R
