-- dist_state.lua — a state vector split over the MPI ranks (qd.mpi.dstate, QuEST's scheme):
-- a fixed circuit of every gate kind on local and rank qubits, each gate kind's time split
-- into compute and exchange (the slowest rank's), and the observables that the 1-rank run
-- must reproduce to 1e-12 (tests: bench/dist_state.sh compares the two).
--   mpirun -n P build-mpi/qd --threads 1 bench/dist_state.lua [n = 26] [reps = 1] [json]
-- With a third argument the observables are printed as one JSON line (for the comparison).
local qd = require "qd"
local mpi = qd.mpi
local n = tonumber(arg[1]) or 26
local reps = tonumber(arg[2]) or 1
local as_json = arg[3] ~= nil

local d = mpi.dstate(n)
local kinds, order = {}, {}
local function gate(name, ...)
  d:stats(true)
  d[name](d, ...)
  local st = d:stats(true)
  local k = kinds[name]
  if not k then
    k = { count = 0, compute = 0, exchange = 0, messages = 0, bytes = 0 }
    kinds[name] = k
    order[#order + 1] = name
  end
  k.count = k.count + 1
  k.compute = k.compute + st.compute
  k.exchange = k.exchange + st.exchange
  k.messages = k.messages + st.messages
  k.bytes = k.bytes + st.bytes
end

-- the circuit: qubit 0 (and 1 on 4 ranks) index the ranks
local rng = qd.rng(11)
local t0 = qd.clock()
for _ = 1, reps do
  for q = 0, n - 1 do gate("h", q) end
  for q = 0, n - 1 do gate("ry", q, rng:uniform(-3, 3)) end
  for q = 0, n - 2, 2 do gate("cx", q, q + 1) end
  for q = 0, n - 1, 3 do gate("rz", q, rng:uniform(-3, 3)) end
  for q = 0, n - 2, 4 do gate("rzz", q, q + 1, rng:uniform(-3, 3)) end
  for q = 1, n - 1, 5 do gate("cx", 0, q) end      -- control on the rank qubit
  for q = 1, n - 1, 5 do gate("cx", q, 0) end      -- target on the rank qubit
  gate("rx", 0, 0.3)
  gate("swap", 0, n - 1)
  gate("cz", 0, n - 1)
  gate("ccx", 0, 1, 2)
  gate("u", 0, 0.1, 0.2, 0.3)
  gate("rxx", 0, 3, 0.7)
end
local wall = qd.clock() - t0

-- observables: every P(q = 1), a few Z strings, the norm
local obs = { prob1 = {}, zz = {} }
for q = 0, n - 1 do obs.prob1[q + 1] = d:prob1(q) end
obs.zz[1] = d:expect_z({ 0, 1 })
obs.zz[2] = d:expect_z({ 0, n - 1 })
obs.zz[3] = d:expect_z({ 2, 5, 7, n - 2 })
local all = {}
for q = 0, n - 1 do all[q + 1] = q end
obs.zz[4] = d:expect_z(all)
obs.norm = select(1, d:inner(d))

if as_json then
  print(require("qd.json").encode(obs))
else
  print(string.format("dist_state: %d qubits on %d ranks (%d local qubits, %.0f MiB of " ..
                      "amplitudes " ..
                      "per rank), %s, %d threads, wall %.2f s", n, mpi.size, d.local_qubits,
                      2 ^ d.local_qubits * 16 / 2 ^ 20, qd.simd(), qd.threads(), wall))
  print(string.format("  %-5s %5s %12s %12s %12s %9s %11s", "gate", "count", "compute ms",
                      "exchange ms", "ms/gate", "messages", "MiB sent"))
  for _, name in ipairs(order) do
    local k = kinds[name]
    -- the slowest rank's times: a gate ends when its last rank does
    local c = mpi.allreduce(k.compute, "max")
    local x = mpi.allreduce(k.exchange, "max")
    print(string.format("  %-5s %5d %12.1f %12.1f %12.2f %9d %11.1f", name, k.count, 1e3 * c,
                        1e3 * x, 1e3 * (c + x) / k.count, k.messages, k.bytes / 2 ^ 20))
  end
  print(string.format("  norm - 1 = %.3g, <Z0 Z1> = %.15f", obs.norm - 1, obs.zz[1]))
end
