-- ensembles in blocks over the ranks (qd.mpi.share, scatter, allgather_ensemble): a circuit
-- run on each rank's block and gathered equals the run of the whole ensemble, bit for bit.
local T = require "testlib"
local qd = require "qd"
local mpi = qd.mpi

T.test("share", function()
  local total = 0
  for r = 0, 3 do
    local first, count = mpi.share(10, r, 4)
    T.eq(first, total + 1, "contiguous")
    total = total + count
  end
  T.eq(total, 10, "every member once")
  local _, c0 = mpi.share(10, 0, 4)
  local _, c3 = mpi.share(10, 3, 4)
  T.eq(c0, 3)
  T.eq(c3, 2)
  T.raises(function() mpi.share(-1) end, "member count")
end)

T.test("a circuit on blocks equals the whole run", function()
  for _, N in ipairs { 1, 7, 16 } do
    local E = qd.ensemble.haar(4, N, qd.rng(3))
    local c = qd.ansatz.hardware_efficient(4, 2)
    local theta = qd.rng(9):uniform(-1, 1, c:nparams())
    local whole = c:run(E, theta)
    local part = mpi.scatter(E)
    local mine = part and c:run(part, theta) or nil
    if mine then mine:h(1):rzz(0, 3, 0.4) end
    whole:h(1):rzz(0, 3, 0.4)
    local got = mpi.allgather_ensemble(mine)
    T.eq(#got, N, "members")
    local same = true
    for k = 1, N do
      for i = 1, 16 do
        local a, b = got[k]:amp(i), whole[k]:amp(i)
        local ai, bi = select(2, got[k]:amp(i)), select(2, whole[k]:amp(i))
        if a ~= b or ai ~= bi then same = false end
      end
    end
    T.ok(same, "bit for bit, N = " .. N)
  end
  T.raises(function() mpi.scatter(qd.state(1)) end, "qd.Ensemble expected")
  T.raises(function() mpi.allgather_ensemble(5) end, "qd.Ensemble or nil expected")
end)

T.test("packed blocks", function()
  local C = require("qd.core").mpi
  local E = qd.ensemble.haar(2, 5, qd.rng(1))
  local F = C.ens_unpack({ C.ens_pack(E, 1, 2), C.ens_pack(E, 3) })
  T.eq(#F, 5)
  T.eq(select(2, F[4]:amp(3)), select(2, E[4]:amp(3)), "members in order")
  T.raises(function() C.ens_pack(E, 0) end, "member 1..#E")
  T.raises(function() C.ens_pack(E, 2, 5) end, "member count")
  T.raises(function() C.ens_unpack({ "short" }) end, "packed ensembles expected")
  T.raises(function() C.ens_unpack({ C.ens_pack(E), C.ens_pack(qd.ensemble(3, 1)) }) end,
           "one qubit count")
  T.raises(function() C.ens_unpack({ C.ens_pack(E, 1, 0) }) end, "at least one member")
  T.raises(function() mpi.allgather_ensemble(nil) end, "no rank holds a member")
end)
