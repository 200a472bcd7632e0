-- qd.mpi on any number of ranks (1 without MPI): rank/size, reductions in rank order,
-- broadcast and gather of Lua values, the exact binary form, errors.
local T = require "testlib"
local qd = require "qd"
local mpi = qd.mpi
local P, me = mpi.size, mpi.rank

T.test("rank and size", function()
  T.ok(P >= 1 and me >= 0 and me < P, "rank in 0..size-1")
  T.eq(type(mpi.enabled), "boolean")
  T.eq(mpi.is_root(), me == 0, "is_root")
  mpi.barrier()
end)

T.test("allreduce numbers, tables, vectors, matrices", function()
  T.eq(mpi.allreduce(me + 1), P * (P + 1) / 2, "sum")
  T.eq(mpi.allreduce(me + 1, "max"), P, "max")
  T.eq(mpi.allreduce(me + 1, "min"), 1, "min")
  local fact = 1
  for r = 1, P do fact = fact * r end
  T.eq(mpi.allreduce(me + 1, "prod"), fact, "prod")
  local t = mpi.allreduce({ 1, me, 0.5 })
  T.eq(#t, 3, "table length")
  T.eq(t[1], P, "table sum 1")
  T.eq(t[2], P * (P - 1) / 2, "table sum 2")
  local v = mpi.allreduce(qd.vector({ 1, 2, 3 }))
  T.eq(qd.type(v), "qd.Vector")
  T.eq(v:get(3), 3 * P, "vector sum")
  local m = mpi.allreduce(qd.matrix({ { 1, 2 }, { 3, me } }))
  T.eq(qd.type(m), "qd.Matrix")
  T.eq(m:get(2, 2), P * (P - 1) / 2, "matrix sum")
  -- rank order: (0.1 + 0.2) + 0.3 on every P, not the library's tree
  local x = ({ 0.1, 0.2, 0.3, 0.4 })[me % 4 + 1]
  local want = 0
  for r = 0, P - 1 do want = want + ({ 0.1, 0.2, 0.3, 0.4 })[r % 4 + 1] end
  T.eq(mpi.allreduce(x), want, "sum in rank order, bit for bit")
end)

T.test("bcast, gather, allgather", function()
  local v = mpi.bcast(me == 0 and { a = 1, b = { "x", true, 2.5 }, c = qd.vector({ 1, 2 }) }
                      or "ignored", 0)
  T.eq(v.a, 1)
  T.eq(v.b[1], "x")
  T.eq(v.b[2], true)
  T.eq(v.b[3], 2.5)
  T.eq(v.c:get(2), 2, "vector travels")
  local g = mpi.gather({ r = me }, 0)
  if me == 0 then
    T.eq(#g, P, "gather count")
    for r = 1, P do T.eq(g[r].r, r - 1, "gather order") end
  else
    T.eq(g, nil, "gather: nil off root")
  end
  local a = mpi.allgather(me * 10)
  T.eq(#a, P)
  T.eq(a[P], (P - 1) * 10)
  local last = mpi.bcast(me, P - 1)
  T.eq(last, P - 1, "bcast from the last rank")
end)

T.test("serialise is exact", function()
  for _, x in ipairs { 0.1, -0.0, 1e-310, math.pi, 2^53 + 1, math.mininteger, 1 / 0 } do
    local y = mpi.deserialise(mpi.serialise(x))
    T.eq(string.pack("<d", y), string.pack("<d", x), "number bits " .. tostring(x))
    T.eq(math.type(y), math.type(x), "integer stays integer")
  end
  local z = qd.state(2):h(0):cx(0, 1):vector()
  local w = mpi.deserialise(mpi.serialise(z))
  T.eq(qd.type(w), qd.type(z))
  T.eq(#w, #z)
  T.eq(select(1, w:get(4)), select(1, z:get(4)), "complex vector entry")
  local deep = {}
  for _ = 1, 100 do deep = { deep } end
  T.raises(function() mpi.serialise(deep) end, "nested deeper")
  T.raises(function() mpi.serialise(print) end, "cannot send a function")
  T.raises(function() mpi.serialise(qd.state(1)) end, "cannot send a qd.State")
end)

T.test("errors", function()
  T.raises(function() mpi.bcast(1, P) end, "root rank 0..")
  T.raises(function() mpi.gather(1, -1) end, "root rank 0..")
  T.raises(function() mpi.allreduce("x") end, "bad argument #1 to 'allreduce'")
  T.raises(function() mpi.allreduce(1, "avg") end, "invalid option 'avg'")
  T.raises(function() mpi.allreduce({ 1, "a" }) end, "entry 2: number expected")
  T.raises(function() mpi.deserialise(5) end, "string expected")
  T.raises(function() mpi.deserialise("?") end, "malformed")
  T.raises(function() require("qd.core").mpi.array_unpack("short") end, "packed array expected")
  if not mpi.enabled then
    T.raises(function() mpi.send(1, 0) end, "no other rank")
    T.raises(function() mpi.recv() end, "no other rank")
  end
  -- a shape mismatch between ranks is an error on every rank (not a hang)
  if P > 1 then
    T.raises(function() mpi.allreduce(qd.vector(me == 0 and { 1 } or { 1, 2 })) end,
             "the same kind and shape on every rank")
  end
end)
