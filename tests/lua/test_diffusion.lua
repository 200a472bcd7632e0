-- test_diffusion.lua — qd.diffusion from Lua: scramble against the same step composed
-- from single gate calls member by member (angles redrawn in Lua from the documented
-- substreams), independence of N and of the thread count (bitwise), the forward family
-- (shape, S_0, modes, determinism, drift to Haar), saving as one (T+1, N, 2^n) .npy, and
-- the error messages.
local T = require "testlib"

local function same_members(A, B, count)
  for k = 1, count do
    local a, b = A[k], B[k]
    for i = 1, a.dim do
      local x1, y1 = a:amp(i)
      local x2, y2 = b:amp(i)
      if x1 ~= x2 or y1 ~= y2 then return false end
    end
  end
  return true
end

local function maxdiff(a, b)
  local m = 0
  for i = 1, a.dim do
    local x1, y1 = a:amp(i)
    local x2, y2 = b:amp(i)
    m = math.max(m, math.abs(x1 - x2), math.abs(y1 - y2))
  end
  return m
end

T.test("scramble = rz ry rz on every qubit, then rzz on every pair", function()
  for n = 1, 4 do
    local N, h = 6, 1.7
    local E0 = qd.ensemble.haar(n, N, qd.rng(n))
    local E = E0:copy()
    T.ok(rawequal(qd.diffusion.scramble(E, h, qd.rng(42)), E), "returns E")
    -- the stream: split off the rng; member k: substream(k-1), step 1: substream(1)
    local base = qd.rng(42):split()
    local worst = 0
    for k = 1, N do
      local r = base:substream(k - 1):substream(1)
      local s = E0[k]
      for q = 0, n - 1 do
        local p1 = r:uniform(-math.pi / 8 * h, math.pi / 8 * h)
        local p2 = r:uniform(-math.pi / 8 * h, math.pi / 8 * h)
        local p3 = r:uniform(-math.pi / 8 * h, math.pi / 8 * h)
        s:rz(q, p1):ry(q, p2):rz(q, p3)
      end
      if n >= 2 then
        local g = r:uniform(0.4 * h, 0.6 * h)
        for i = 0, n - 2 do
          for j = i + 1, n - 1 do s:rzz(i, j, g / (2 * math.sqrt(n))) end
        end
      end
      worst = math.max(worst, maxdiff(s, E[k]))
    end
    T.ok(worst < 1e-13, string.format("n = %d: scramble = gate calls (max diff %g)", n, worst))
  end
end)

T.test("independent of N and of the thread count", function()
  local E100 = qd.ensemble.haar(3, 100, qd.rng(1))
  local E10 = qd.ensemble.from(qd.matrix((function()
    local rows = {}
    for k = 1, 10 do rows[k] = E100[k]:totable() end
    return rows
  end)()))
  qd.diffusion.scramble(E100, 2.0, qd.rng(7))
  qd.diffusion.scramble(E10, 2.0, qd.rng(7))
  T.ok(same_members(E10, E100, 10), "members 1..10 identical for N = 10 and N = 100")
  local saved = qd.threads()
  local A = qd.ensemble.haar(4, 1000, qd.rng(2))   -- 16000 amplitudes: runs in parallel
  local B = A:copy()
  qd.set_threads(1)
  qd.diffusion.scramble(A, 3.0, qd.rng(5))
  local FA = qd.diffusion.forward(A, { 0.5, 1, 2 }, qd.rng(6))
  qd.set_threads(2)
  qd.diffusion.scramble(B, 3.0, qd.rng(5))
  local FB = qd.diffusion.forward(B, { 0.5, 1, 2 }, qd.rng(6))
  qd.set_threads(saved)
  T.ok(same_members(A, B, 1000), "scramble: 1 and 2 threads bitwise identical")
  T.ok(same_members(FA[4], FB[4], 1000), "forward: 1 and 2 threads bitwise identical")
end)

T.test("forward family", function()
  local E0 = qd.data.clustered(2, 60, qd.rng(3))
  local s = qd.schedule.linear { T = 20, from = 0.5, to = 4 }
  local sets = qd.diffusion.forward(E0, s, qd.rng(4))
  T.eq(#sets, 21, "T + 1 ensembles")
  T.ok(not rawequal(sets[1], E0), "S_0 is a copy")
  T.ok(same_members(sets[1], E0, 60), "S_0 = E0")
  for t = 1, 21 do
    T.eq(#sets[t], 60); T.eq(sets[t].n, 2)
  end
  local norms = sets[21]:norms()
  T.near(norms[17], 1, 1e-13, "norm preserved")
  local zero = qd.state(2)
  local f0 = sets[1]:fidelities(zero):mean()
  local fT = sets[21]:fidelities(zero):mean()
  T.ok(f0 > 0.95, "starts clustered at |00>: " .. f0)
  T.ok(fT < 0.4, "S_T is Haar-like (F0 -> 1/4): " .. fT)
  -- same arguments, same sets; schedule as a table or Vector gives the same result
  local again = qd.diffusion.forward(E0, s:values(), qd.rng(4))
  local tab = qd.diffusion.forward(E0, s:totable().values, qd.rng(4), { mode = "marginal" })
  T.ok(same_members(again[11], sets[11], 60) and same_members(tab[21], sets[21], 60), "deterministic; Vector/table schedules")
  -- trajectory mode: S_t = step t applied to S_{t-1}: differs from marginal, same law
  local traj = qd.diffusion.forward(E0, s, qd.rng(4), { mode = "trajectory" })
  T.eq(#traj, 21)
  T.ok(not same_members(traj[21], sets[21], 1), "trajectory differs from marginal draws")
  T.ok(traj[21]:fidelities(zero):mean() < 0.4, "trajectory mode also reaches Haar")
  -- marginal sets are independent draws: S_1 of a longer schedule = S_1 of a T = 1 run
  local one = qd.diffusion.forward(E0, { s[1] }, qd.rng(4))
  T.ok(same_members(one[2], sets[2], 60), "S_1 does not depend on T")
  -- run rng when none given; options without an rng
  T.eq(#qd.diffusion.forward(E0, { 1, 2 }), 3)
  T.eq(#qd.diffusion.forward(E0, { 1, 2 }, { mode = "trajectory" }), 3)
  -- one .npy of shape (T+1, N, 2^n)
  local dir = os.tmpname()
  os.remove(dir)
  local path = dir .. ".npy"
  qd.diffusion.save(path, sets)
  local back = qd.load_npy(path, "ensembles")
  os.remove(path)
  T.eq(#back, 21); T.eq(#back[1], 60); T.eq(back[1].n, 2)
  T.ok(same_members(back[21], sets[21], 60), "saved and read back exactly")
end)

T.test("errors", function()
  local E = qd.ensemble(2, 3)
  T.raises(function() qd.diffusion.scramble(qd.state(2), 1) end, "qd.Ensemble expected, got qd.State")
  T.raises(function() qd.diffusion.scramble(E, "x") end, "number expected, got string")
  T.raises(function() qd.diffusion.scramble(E, 0 / 0) end, "finite strength h expected")
  T.raises(function() qd.diffusion.scramble(E, 1, 5.5) end, "qd.Rng (or an integer seed) expected, got number")
  T.raises(function() qd.diffusion.scramble(E, 1, qd.rng(1), 2) end, "unexpected extra argument")
  T.raises(function() qd.diffusion.forward(E, 3) end, "qd.Schedule, qd.Vector or table of strengths expected, got number")
  T.raises(function() qd.diffusion.forward(E, {}) end, "1..10000000 strengths expected, got 0")
  T.raises(function() qd.diffusion.forward(E, { 1, "a" }) end, "number expected at position 2, got string")
  T.raises(function() qd.diffusion.forward(E, { 1, 1 / 0 }) end, "finite strength expected at position 2")
  T.raises(function() qd.diffusion.forward(E, { 1 }, qd.rng(1), { mode = "x" }) end,
           "option 'mode': \"marginal\" or \"trajectory\" expected, got \"x\"")
  T.raises(function() qd.diffusion.forward(E, { 1 }, qd.rng(1), { steps = 1 }) end, "unknown option 'steps'")
  T.raises(function() qd.diffusion.forward(E, { 1 }, { mode = "marginal" }, 1) end, "unexpected extra argument")
  T.raises(function() qd.diffusion.forward(E, qd.vector { 1, { 0, 1 } }) end, "real strengths expected")
  local F = qd.ensemble(1, 2)
  F:free()
  T.raises(function() qd.diffusion.scramble(F, 1) end, "qd.Ensemble has been freed")
end)
