-- losses over an ensemble spread over the ranks in blocks (qd.mpi.overlaps, qd.mpi.mmd):
-- every number equals the one-process computation on the whole ensemble, bit for bit (the
-- BLAS-sized overlaps to rounding), on every rank.
local T = require "testlib"
local qd = require "qd"
local mpi = qd.mpi

-- this rank's rows of the whole matrix F equal to rows (bit for bit, or to tol)
local function rows_match(rows, F, first, tol)
  local nr, nc = F:shape()
  if rows == nil then return true end
  local r, c = rows:shape()
  if c ~= nc or first + r - 1 > nr then return false end
  for i = 1, r do
    for j = 1, nc do
      local a, b = rows:get(i, j), F:get(first + i - 1, j)
      if (tol and math.abs(a - b) > tol) or (not tol and a ~= b) then return false end
    end
  end
  return true
end

-- the bits of a block G equal to members first.. of the whole Gw
local function cols_match(G, Gw, first)
  if G == nil then return true end
  local d = 1 << G.n
  for k = 1, #G do
    for i = 1, d do
      local ar, ai = G[k]:amp(i)
      local br, bi = Gw[first + k - 1]:amp(i)
      if ar ~= br or ai ~= bi then return false end
    end
  end
  return true
end

-- every rank's flag (a table of booleans) all true
local function all_ranks(ok)
  local c = mpi.allreduce(ok and 0 or 1, "max")
  return c == 0
end

T.test("block-cyclic overlaps equal the one-process overlaps", function()
  for _, sz in ipairs { { 2, 7, 5 }, { 3, 16, 16 }, { 1, 1, 3 }, { 4, 9, 1 } } do
    local n, N, M = sz[1], sz[2], sz[3]
    local A, B = qd.ensemble.haar(n, N, qd.rng(1)), qd.ensemble.haar(n, M, qd.rng(2))
    local pa, fa = mpi.scatter(A)
    local pb = mpi.scatter(B)
    local rows = mpi.overlaps(pa, pb)
    T.ok(all_ranks(rows_match(rows, A:overlaps(B), fa)),
         string.format("A x B rows, n = %d, N = %d, M = %d", n, N, M))
    T.ok(all_ranks(rows_match(mpi.overlaps(pa), A:overlaps(), fa)),
         string.format("self-overlaps rows, n = %d, N = %d", n, N))
    T.eq(rows == nil, pa == nil, "rows only where there are members")
  end
  -- the matrix really is filled from the other rank's block: a wrong row offset fails
  local A = qd.ensemble.haar(2, 8, qd.rng(4))
  local pa, fa = mpi.scatter(A)
  if mpi.size > 1 then
    T.ok(not rows_match(mpi.overlaps(pa), A:overlaps(), fa % 8 + 1), "shifted rows differ")
  end
  -- states beyond the direct kernel (2^11 amplitudes): zgemm, equal to rounding
  local A2, B2 = qd.ensemble.haar(11, 5, qd.rng(5)), qd.ensemble.haar(11, 3, qd.rng(6))
  local p2, f2 = mpi.scatter(A2)
  T.ok(all_ranks(rows_match(mpi.overlaps(p2, (mpi.scatter(B2))), A2:overlaps(B2), f2, 1e-14)),
       "n = 11 (zgemm) to 1e-14")
  T.raises(function() mpi.overlaps(5) end, "qd.Ensemble or nil")
  T.raises(function() mpi.overlaps(pa, (mpi.scatter(qd.ensemble.haar(3, 8, qd.rng(1))))) end,
           "members of 2 qubits")
end)

T.test("distributed MMD: value and gradient columns equal the one-process loss", function()
  -- n, N, M, expected sharded: the average-state lanes (d <= 32) are split over the ranks;
  -- d = 64 (zgemm average states) and the Gram form (d >= N + M) gather the blocks
  for _, sz in ipairs { { 1, 20, 13, true }, { 2, 100, 100, true }, { 5, 40, 30, true },
                        { 3, 9, 1, true }, { 6, 40, 30, false }, { 3, 3, 2, false } } do
    local n, N, M, expect = sz[1], sz[2], sz[3], sz[4]
    local A, B = qd.ensemble.haar(n, N, qd.rng(7)), qd.ensemble.haar(n, M, qd.rng(8))
    local v1, GA1, GB1 = qd.loss.mmd(A, B, { grad = true })
    local pa, fa = mpi.scatter(A)
    local pb, fb = mpi.scatter(B)
    local v, GA, GB, sharded = mpi.mmd(pa, pb, { grad = true })
    local what = string.format(" (n = %d, N = %d, M = %d)", n, N, M)
    T.ok(all_ranks(v == v1), "value bit for bit" .. what)
    T.eq(mpi.mmd(pa, pb), v1, "value without gradient" .. what)
    T.ok(all_ranks(cols_match(GA, GA1, fa) and cols_match(GB, GB1, fb)),
         "gradient columns bit for bit" .. what)
    T.eq(sharded, expect, "sharded as expected" .. what)
    T.eq(GA == nil, pa == nil, "G_A only where there are members")
  end
  -- the gradient against central differences (dL = 2 Re <G|dpsi>): member 3 of A turned
  -- by rx(h) on qubit 0, so dpsi/dh = -i/2 X psi and dL/dh = Im <G_3|X psi_3>
  local A, B = qd.ensemble.haar(2, 10, qd.rng(9)), qd.ensemble.haar(2, 6, qd.rng(10))
  local _, GA = mpi.mmd((mpi.scatter(A)), (mpi.scatter(B)), { grad = true })
  local G3 = mpi.allgather_ensemble(GA)[3]
  local _, want = G3:inner(A[3]:x(0))
  local h = 1e-5
  local function L_at(t)
    local X = A:copy()
    X:set(3, A[3]:rx(0, t))
    return (mpi.mmd((mpi.scatter(X)), (mpi.scatter(B))))
  end
  T.near((L_at(h) - L_at(-h)) / (2 * h), want, 1e-8, "dL/dh = 2 Re <G|dpsi/dh>")
  T.ok(math.abs(want) > 1e-3, "a gradient that is not zero")
  T.raises(function() mpi.mmd((mpi.scatter(A)), nil) end, "no rank holds a member")
  T.raises(function() mpi.mmd((mpi.scatter(A)), (mpi.scatter(B)), { method = "x" }) end,
           "option 'method'")
  T.raises(function() mpi.mmd((mpi.scatter(A)), (mpi.scatter(B)), { grads = true }) end, "grads")
end)

T.test("distributed Wasserstein: the blocks gathered, the one-process bits", function()
  for _, sz in ipairs { { 1, 12, 12 }, { 2, 9, 5 }, { 3, 4, 7 } } do
    local n, N, M = sz[1], sz[2], sz[3]
    local A, B = qd.ensemble.haar(n, N, qd.rng(11)), qd.ensemble.haar(n, M, qd.rng(12))
    local v1, P1, GA1, GB1 = qd.loss.wasserstein(A, B, { grad = true })
    local pa, fa = mpi.scatter(A)
    local pb, fb = mpi.scatter(B)
    local v, P, GA, GB = mpi.wasserstein(pa, pb, { grad = true })
    local what = string.format(" (n = %d, N = %d, M = %d)", n, N, M)
    T.ok(all_ranks(v == v1 and rows_match(P, P1, 1)), "value and plan bit for bit" .. what)
    T.ok(all_ranks(cols_match(GA, GA1, fa) and cols_match(GB, GB1, fb)), "gradient columns bit for bit" .. what)
    T.eq(GA == nil, pa == nil, "G_A only where there are members")
    T.eq(select("#", mpi.wasserstein(pa, pb)), 2, "no gradient asked: value, plan")
  end
  T.raises(function() mpi.wasserstein(5, nil) end, "bad argument #1 to 'wasserstein' (qd.Ensemble or nil expected")
end)
