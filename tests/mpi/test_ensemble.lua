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

-- the bits of two ensembles (or nil: a rank without members) as one comparison
local function same_bits(X, Y)
  if X == nil or Y == nil then return X == Y end
  return T.same_ensemble(X, Y)
end

-- a circuit with a mid-circuit measurement (an ancilla measured and discarded) and a channel
-- run as trajectories: member k draws from substream k of the run's generator, so a block
-- must know its first member's global index (c:run's option `first`)
local function noisy_measured()
  local c = qd.ansatz.quddpm(2, 2, { ancillas = 1 })
  c:channel(qd.channel.amplitude_damping { gamma = 0.3 }, { 1 })
  return c
end

T.test("blocks keep their members' substreams (measurement, channel)", function()
  local c = noisy_measured()
  local theta = qd.rng(5):uniform(-2, 2, c:nparams())
  for _, N in ipairs { 1, 9, 20 } do
    local E = qd.ensemble.haar(2, N, qd.rng(11)):embed(1)
    local whole, oc_whole = c:run(E, theta, { rng = qd.rng(77) })
    local part, first = mpi.scatter(E)
    local mine, oc_mine
    if part then mine, oc_mine = c:run(part, theta, { rng = qd.rng(77), first = first }) end
    local got = mpi.allgather_ensemble(mine)
    T.ok(same_bits(got, whole), "run on blocks gathered = whole run, bit for bit, N = " .. N)
    -- the outcomes too, row by row
    local rows = mpi.allgather(oc_mine and { first = first, o = oc_mine } or false)
    local same = true
    for _, r in ipairs(rows) do
      if r then
        local rows_, cols_ = r.o:shape()
        for k = 1, rows_ do
          for i = 1, cols_ do
            if r.o:get(k, i) ~= oc_whole:get(r.first + k - 1, i) then same = false end
          end
        end
      end
    end
    T.ok(same, "outcomes equal, N = " .. N)
  end
  -- without `first` a block other than the first draws member 1's numbers: not the same run
  -- (shows the check above can fail)
  if mpi.size > 1 then
    local E = qd.ensemble.haar(2, 20, qd.rng(11)):embed(1)
    local whole = c:run(E, theta, { rng = qd.rng(77) })
    local part = mpi.scatter(E)
    local got = mpi.allgather_ensemble(c:run(part, theta, { rng = qd.rng(77) }))
    T.ok(not same_bits(got, whole), "without first the gathered run differs")
  end
  -- c:grad and c:forward take it too (outcomes and output of the block = the whole's rows)
  local E = qd.ensemble.haar(2, 12, qd.rng(2)):embed(1)
  local c2 = qd.ansatz.quddpm(2, 2, { ancillas = 1 })
  local loss = function(out) return 0, qd.ensemble(out.n, #out) end
  local _, _, out_whole = c2:grad(E, theta, loss, { rng = qd.rng(8) })
  local part, first = mpi.scatter(E)
  local _, _, out_part = c2:grad(part, theta, loss, { rng = qd.rng(8), first = first })
  local fwd = c2:forward(part, theta, { rng = qd.rng(8), first = first })
  T.ok(same_bits(mpi.allgather_ensemble(out_part), out_whole), "c:grad on blocks")
  T.ok(same_bits(mpi.allgather_ensemble(fwd), out_whole), "c:forward on blocks")
  T.raises(function() c:run(part, theta, { first = 0 }) end, "option 'first': member index >= 1")
  T.raises(function() c:run(part, theta, { first = 1.5 }) end, "option 'first'")
  T.raises(function() c2:grad(part, theta, loss, { first = "a" }) end, "option 'first'")
end)
