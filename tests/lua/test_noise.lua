-- test_noise.lua — noisy circuits (c:channel, c:with_noise): exact on density matrices
-- against the hand-stitched computation (gates and ch:apply), quantum trajectories whose
-- average converges to it (a statistical bound with a fixed seed), member results
-- independent of the ensemble size, gradients through channels against finite differences,
-- errors.
local T = require "testlib"

local ad = qd.channel.amplitude_damping { gamma = 0.3 }
local deph = qd.channel.dephasing { p = 0.2 }
local dep1 = qd.channel.depolarizing { p = 0.1 }
local dep2 = qd.channel.depolarizing { p = 0.15, n = 2 }

local function circuit()
  return qd.circuit(3):h(0):channel(ad, { 0 }):cx(0, 1):channel(dep2, { 0, 1 }):ry(2, { 1 })
    :channel(deph, { 2 }):cz(1, 2):channel(dep1, { 1 })
end

local function by_hand(theta)
  local r = qd.dm(3):h(0)
  ad:apply(r, 0)
  r:cx(0, 1)
  dep2:apply(r, { 0, 1 })
  r:ry(2, theta)
  deph:apply(r, 2)
  r:cz(1, 2)
  dep1:apply(r, 1)
  return r
end

T.test("a DensityMatrix run equals the hand-stitched computation", function()
  local c = circuit()
  T.eq(#c, 8, "ops")
  for _, th in ipairs { 0.0, 0.7, -2.1 } do
    local d = qd.trace_distance(c:run(qd.dm(3), { th }), by_hand(th))
    T.ok(d < 1e-14, "theta " .. th .. ": trace distance " .. d)
  end
end)

T.test("trajectories on an Ensemble converge to the exact run", function()
  local c = circuit()
  local exact = c:run(qd.dm(3), { 0.7 })
  -- fixed seed; for N = 8000 members the trace distance of the sample mean is ~0.01
  -- (statistical error ~ d / sqrt(N)); bound 0.05
  local E = c:run(qd.ensemble(3, 8000), { 0.7 }, { rng = qd.rng(11) })
  local d = qd.trace_distance(E:mean_dm(), exact)
  T.ok(d < 0.05, "trace distance " .. d .. " < 0.05")
  -- every member is a normalised state
  local norms = E:norms()
  local worst = 0
  for i = 1, #norms do worst = math.max(worst, math.abs(norms[i] - 1)) end
  T.ok(worst < 1e-12, "members normalised")
  -- member k's trajectory does not depend on the ensemble size
  local A = c:run(qd.ensemble(3, 5), { 0.7 }, { rng = qd.rng(4) })
  local B = c:run(qd.ensemble(3, 9), { 0.7 }, { rng = qd.rng(4) })
  for k = 1, 5 do T.ok(A[k] == B[k], "member " .. k .. " the same for N = 5 and 9") end
end)

T.test("gradients through channels on a DensityMatrix", function()
  local c = qd.circuit(2):ry(0, { 1 }):channel(ad, { 0 }):cx(0, 1):channel(dep2, { 0, 1 }):rx(1, { 2 })
    :channel(deph, { 1 })
  local Z = qd.matrix(4, 4, { complex = true })
  for i, v in ipairs { 1, -1, -1, 1 } do Z:set(i, i, v) end
  local th = { 0.7, -0.4 }
  local L, g = c:grad(qd.dm(2), th, function(out) return (qd.expect(Z, out)), 0.5 * Z end)
  local _, gfd = c:grad_fd(qd.dm(2), th, function(out) return (qd.expect(Z, out)) end, { h = 1e-6 })
  for i = 1, 2 do T.ok(math.abs(g[i] - gfd[i]) < 1e-7, "dL/dtheta_" .. i .. ": " .. g[i] .. " vs " .. gfd[i]) end
  T.raises(function() return c:grad(qd.ensemble(2, 4), th, function(out) return 0, out end) end,
    "no gradient through a channel on pure states")
end)

T.test("noise models: c:with_noise", function()
  local c = qd.circuit(2):h(0):cx(0, 1):ry(1, { 1 }):measure({ 0 })
  local noisy = c:with_noise { gates = dep1, cx = dep2 }
  T.eq(#noisy, #c + 3, "a channel after h, cx (2-qubit), ry; none after measure")
  T.eq(#c, 4, "the original unchanged")
  local r = noisy:run(qd.dm(2), { 0.3 })
  local h = qd.dm(2):h(0)
  dep1:apply(h, 0)
  h:cx(0, 1)
  dep2:apply(h, { 0, 1 })
  h:ry(1, 0.3)
  dep1:apply(h, 1)
  local m = qd.circuit(2):measure({ 0 }):run(h)
  T.ok(qd.trace_distance(r, m) < 1e-14, "equals the hand-stitched noisy run")
  local per_qubit = qd.circuit(2):cx(0, 1):with_noise { gates = deph }
  T.eq(#per_qubit, 3, "a 1-qubit channel after each qubit of a 2-qubit gate")
  T.raises(function() return c:with_noise { cnot = dep1 } end, "unknown key 'cnot'")
  T.raises(function() return c:with_noise { gates = 3 } end, "qd.Channel expected")
  T.raises(function() return qd.circuit(3):ccx(0, 1, 2):with_noise { gates = dep2 } end, "a 2-qubit channel after the 3-qubit op")
end)

T.test("channel ops: insertion, listing, copies, errors", function()
  local c = qd.circuit(2):h(0):cx(0, 1)
  c:channel(ad, { 1 }, { at = 2 })
  local ops = c:ops()
  T.eq(ops[2].kind, "channel", "inserted before op 2")
  T.eq(#ops[2].kraus, 2, "its Kraus list")
  local d = c:copy()
  T.ok(qd.trace_distance(d:run(qd.dm(2)), c:run(qd.dm(2))) == 0, "a copy runs the same")
  T.raises(function() return c:unitary() end, "channels")
  T.raises(function() return c:inverse() end, "no inverse")
  T.raises(function() return c:to_qasm() end, "noise channel")
  T.raises(function() return c:channel(ad, { 0, 1 }) end, "1 qubit for a 1-qubit channel expected, got 2")
  T.raises(function() return c:channel(qd.state(1), { 0 }) end, "qd.Channel expected")
  T.raises(function() return c:channel(ad, { 0 }, { at = 9 }) end, "option 'at'")
  T.raises(function() return c:channel(qd.channel.global_depolarizing { lambda = 0.1 }, { 0 }) end, "fixed size")
end)
