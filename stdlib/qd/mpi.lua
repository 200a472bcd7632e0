-- qd.mpi — qd on several processes (Open MPI; the `make MPI=1` build, docs/scaling.md).
-- `mpirun -n P qd script.lua` runs the script on every rank; rank 0 alone prints and
-- writes run records (the others' records go to a scratch directory removed at exit).
-- The build without MPI has the same module for one rank (rank 0, size 1, collectives
-- return their argument), so a script runs either way.
--   qd.mpi.rank, qd.mpi.size, qd.mpi.enabled
--   qd.mpi.barrier()
--   qd.mpi.allreduce(x [, "sum"|"max"|"min"|"prod"])   number, {numbers}, qd.Vector, qd.Matrix
--   qd.mpi.bcast(v [, root]), qd.mpi.gather(v [, root]), qd.mpi.allgather(v)   Lua values
--   qd.mpi.send(v, dest [, tag]), qd.mpi.recv([src [, tag]]) -> v, src, tag
--   qd.mpi.dstate(n) -> qd.DistState (a state vector split over the ranks)
--   qd.mpi.share(N), qd.mpi.scatter(E), qd.mpi.allgather_ensemble(part)   ensembles by blocks
--   qd.mpi.overlaps(A [, B]), qd.mpi.mmd(A, B [, {grad=}])   losses over blocks (one-rank bits)
--   qd.mpi.grad(c, X, params, loss_fn [, {rng=}])   c:grad over blocks (one-rank bits)
-- Reductions add in rank order 0..P-1 on rank 0 and broadcast, so the bits do not depend
-- on the MPI library. Lua values travel in a binary form (string.pack; numbers exact):
-- nil, booleans, numbers, strings, tables of those (no cycles) and qd.Vector / qd.Matrix.
local core = require "qd.core"
local caller = require "qd.caller"
local C = core.mpi

local M = { enabled = C.enabled, rank = C.rank, size = C.size, library = C.library }

local MAXDEPTH = 64

local function pack(v, out, depth)
  local t = type(v)
  if t == "nil" then out[#out + 1] = "n"
  elseif t == "boolean" then out[#out + 1] = v and "t" or "f"
  elseif math.type(v) == "integer" then out[#out + 1] = string.pack("<c1i8", "i", v)
  elseif t == "number" then out[#out + 1] = string.pack("<c1d", "d", v)
  elseif t == "string" then out[#out + 1] = string.pack("<c1s8", "s", v)
  elseif t == "table" then
    if depth >= MAXDEPTH then error("table nested deeper than " .. MAXDEPTH .. " (a cycle?)", 0) end
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    out[#out + 1] = string.pack("<c1i8", "T", n)
    for k, x in pairs(v) do
      pack(k, out, depth + 1)
      pack(x, out, depth + 1)
    end
  else
    local qt = require("qd").type(v)
    if qt == "qd.Vector" or qt == "qd.Matrix" then
      out[#out + 1] = string.pack("<c1s8", "A", C.array_pack(v))
    else
      error("cannot send a " .. qt .. " to another rank", 0)
    end
  end
end

local function unpack_at(s, pos)
  local tag = s:sub(pos, pos)
  if tag == "n" then return nil, pos + 1
  elseif tag == "t" then return true, pos + 1
  elseif tag == "f" then return false, pos + 1
  elseif tag == "i" then return string.unpack("<i8", s, pos + 1)
  elseif tag == "d" then return string.unpack("<d", s, pos + 1)
  elseif tag == "s" then return string.unpack("<s8", s, pos + 1)
  elseif tag == "A" then
    local b, p = string.unpack("<s8", s, pos + 1)
    return C.array_unpack(b), p
  elseif tag == "T" then
    local n, p = string.unpack("<i8", s, pos + 1)
    local t = {}
    for _ = 1, n do
      local k, x
      k, p = unpack_at(s, p)
      x, p = unpack_at(s, p)
      if k ~= nil then t[k] = x end
    end
    return t, p
  end
  error("malformed message from another rank", 0)
end

-- serialise(v) -> string; deserialise(s) -> v (exact for numbers; what travels between ranks)
function M.serialise(v)
  local out = {}
  local ok, err = pcall(pack, v, out, 0)
  if not ok then error(err, caller.outside()) end
  return table.concat(out)
end

function M.deserialise(s)
  if type(s) ~= "string" then error("bad argument #1 to 'deserialise' (string expected)", 2) end
  return (unpack_at(s, 1))
end

local function check_root(root, arg, fname)
  root = root == nil and 0 or root
  if math.type(root) ~= "integer" or root < 0 or root >= M.size then
    error(string.format("bad argument #%d to '%s' (root rank 0..%d expected, got %s)", arg,
                        fname, M.size - 1, tostring(root)), caller.outside())
  end
  return root
end

function M.barrier() C.barrier() end

function M.allreduce(x, op) return C.allreduce(x, op) end

function M.is_root() return M.rank == 0 end

-- bcast(v [, root = 0]) -> root's v on every rank
function M.bcast(v, root)
  root = check_root(root, 2, "bcast")
  return M.deserialise(C.bcast_bytes(M.rank == root and M.serialise(v) or nil, root))
end

-- gather(v [, root = 0]) -> {v of rank 0, ..., v of rank P-1} on root, nil on the others
-- (a rank's nil leaves a hole: use select or a wrapper table when values may be nil)
function M.gather(v, root)
  root = check_root(root, 2, "gather")
  local parts = C.gather_bytes(M.serialise(v), root)
  if not parts then return nil end
  local out = {}
  for r = 1, #parts do out[r] = M.deserialise(parts[r]) end
  return out
end

-- allgather(v) -> {v of each rank} on every rank
function M.allgather(v)
  return M.bcast(M.gather(v, 0), 0)
end

function M.send(v, dest, tag)
  if math.type(dest) ~= "integer" then
    error("bad argument #2 to 'send' (rank expected)", caller.outside())
  end
  C.send_bytes(M.serialise(v), dest, tag or 0)
end

-- recv([src = any [, tag = any]]) -> v, src, tag
function M.recv(src, tag)
  local s, from, tg = C.recv_bytes(src or -1, tag or -1)
  return M.deserialise(s), from, tg
end

function M.iprobe(src, tag) return C.iprobe(src or -1, tag or -1) end

M.dstate = C.dstate

-- ---------------------------------------------------------------- ensembles over ranks
-- An ensemble's members 1..N in contiguous blocks, rank r holding share(N, r): every rank
-- makes (or loads) the same whole ensemble from the same seed, keeps its block (scatter),
-- runs its members (gates, circuits without mid-circuit measurement: a member's arithmetic
-- does not depend on the batch), and allgather_ensemble puts the blocks back in member
-- order — the same bits as the run on one rank.

-- share(N [, rank [, size]]) -> first, count: the members rank holds (the first N % P ranks
-- one more)
function M.share(N, r, P)
  if math.type(N) ~= "integer" or N < 0 then
    error("bad argument #1 to 'share' (member count >= 0 expected)", caller.outside())
  end
  r, P = r or M.rank, P or M.size
  local base, extra = N // P, N % P
  return r * base + math.min(r, extra) + 1, base + (r < extra and 1 or 0)
end

-- scatter(E) -> this rank's block of E as a qd.Ensemble (nil when it holds no member), first
function M.scatter(E)
  local qd = require "qd"
  if qd.type(E) ~= "qd.Ensemble" then
    error("bad argument #1 to 'scatter' (qd.Ensemble expected, got " .. qd.type(E) .. ")",
          caller.outside())
  end
  local first, count = M.share(#E)
  if count == 0 then return nil, first end
  return C.ens_unpack({ C.ens_pack(E, first, count) }), first
end

-- allgather_ensemble(part) -> the whole ensemble (members in rank order) on every rank;
-- part: this rank's qd.Ensemble or nil (no member)
function M.allgather_ensemble(part)
  local qd = require "qd"
  if part ~= nil and qd.type(part) ~= "qd.Ensemble" then
    error("bad argument #1 to 'allgather_ensemble' (qd.Ensemble or nil expected, got " ..
          qd.type(part) .. ")", caller.outside())
  end
  -- the blocks' shapes, then the amplitudes in one MPI_Allgatherv (lua_mpi.c)
  return C.ens_allgather(part)
end

-- overlaps(A [, B]) -> this rank's rows of |<a_i|b_j>|^2 (#A x #B_whole qd.Matrix; nil on a
-- rank without A members). A, B: this rank's blocks (qd.Ensemble or nil); B omitted: B = A.
-- The B blocks travel round the ring of ranks (P - 1 MPI_Sendrecv steps); every entry is
-- the bits of the one-process E:overlaps entry (runtime/core/dist.c says when).
M.overlaps = C.overlaps

-- mmd(A, B [, {grad = true, method =}]) -> value [, G_A, G_B, sharded]: qd.loss.mmd of the
-- whole ensembles whose blocks are A and B (nil: none here), the value on every rank and
-- this rank's gradient columns, all the one-process bits. sharded: the work was split
-- (the average-state form, 2^n <= 32 on an FMA CPU); else the blocks were gathered.
M.mmd = C.mmd

-- this rank's offset in the whole ensemble whose blocks the ranks hold (part nil: 0 members)
local function block_offset(part)
  local counts = M.allgather(part and #part or 0)
  local off = 0
  for r = 1, M.rank do off = off + counts[r] end
  return off
end

-- wasserstein(A, B [, opts]) -> value, plan [, G_A, G_B]: qd.loss.wasserstein of the whole
-- ensembles whose blocks are A and B (nil: none here). The assignment needs the whole cost
-- matrix, so the blocks are gathered and the one-process loss runs on every rank: the value
-- and plan on every rank and this rank's gradient columns are the one-process bits (no
-- speed-up; the MMD is the loss that shards). opts as qd.loss.wasserstein's.
function M.wasserstein(A, B, opts)
  local qd = require "qd"
  for i, part in ipairs { A, B } do
    if part ~= nil and qd.type(part) ~= "qd.Ensemble" then
      error(string.format("bad argument #%d to 'wasserstein' (qd.Ensemble or nil expected, got %s)", i,
                          qd.type(part)), caller.outside())
    end
  end
  local Aw, Bw = M.allgather_ensemble(A), M.allgather_ensemble(B)
  local v, plan, GA, GB = qd.loss.wasserstein(Aw, Bw, opts)
  if GA == nil then return v, plan end
  local fa, fb = block_offset(A), block_offset(B)
  local function block(G, part, off)
    if part == nil then return nil end
    return C.ens_unpack({ C.ens_pack(G, off + 1, #part) })
  end
  return v, plan, block(GA, A, fa), block(GB, B, fb)
end

-- grad(c, X, params, loss_fn [, {rng =}]) -> L, dL/dtheta, output [, outcomes]: c:grad on an
-- ensemble in blocks (X this rank's block, a member at least on every rank; loss_fn(out)
-- returns the loss of the whole ensemble and G for this block, e.g. through qd.mpi.mmd).
-- The outcomes come from the members' global substreams and the per-member gradient terms
-- are added in the one-process order: the bits of c:grad on the whole ensemble.
M.grad = C.grad

-- the directory a rank other than 0 writes its run records into (qd.record)
M.scratch_dir = C.scratch_dir

return M
