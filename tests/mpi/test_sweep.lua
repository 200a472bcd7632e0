-- qd.sweep over the ranks against the same points run one after another: the same results,
-- bit for bit, in grid order.
local T = require "testlib"
local qd = require "qd"

local function run(cfg)
  -- a point's own seed and the run's generator (reseeded per point by the sweep)
  local rng = qd.rng(cfg.seed)
  local s = qd.haar_state(cfg.n, rng)
  return { e = s:expect(string.rep("Z", cfg.n)),
           u = qd.run_rng():uniform(), v = rng:normal(0, 1, 3), tag = cfg.n .. "/" .. cfg.seed }
end

T.test("a 20-point sweep equals 20 serial runs", function()
  local res = qd.sweep { grid = { seed = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, n = { 2, 3 } },
                         run = run, seed = 4, quiet = true }
  T.eq(#res, 20, "points")
  local k = 0
  for _, n in ipairs { 2, 3 } do
    for seed = 1, 10 do
      k = k + 1
      T.eq(res[k].cfg.n, n, "order: n slowest")
      T.eq(res[k].cfg.seed, seed, "order: seed fastest")
      qd.set_seed(qd.rng(4):substream(k):integer(0, (1 << 53) - 1))
      local want = run({ seed = seed, n = n })
      local got = res[k].result
      T.eq(string.pack("<d", got.e), string.pack("<d", want.e), "e bits at " .. k)
      T.eq(got.u, want.u, "run rng at " .. k)
      T.eq(got.v:get(3), want.v:get(3), "vector at " .. k)
      T.eq(got.tag, want.tag)
    end
  end
end)

T.test("points, order and a record", function()
  local res = qd.sweep { points = { { a = 1 }, { a = 2 }, { a = 3 } },
                         run = function(c, k) return c.a * 10 + k end, quiet = true }
  T.eq(res[3].result, 33)
  local r2 = qd.sweep { grid = { x = { 1, 2 }, y = { "a", "b" } }, order = { "y", "x" },
                        run = function(c) return c.y .. c.x end, quiet = true }
  T.eq(r2[2].result, "a2", "order: y slowest")
  local dir = qd.mpi.bcast(qd.mpi.rank == 0 and T.tmpdir() or nil)
  local _, rdir = qd.sweep { grid = { x = { 1, 2, 3 } }, run = function(c) return c.x ^ 2 end,
                             out = dir .. "/sw", quiet = true }
  if qd.mpi.rank == 0 then
    T.eq(rdir, dir .. "/sw")
    local rec = require("qd.json").decode(T.slurp(dir .. "/sw/run.json"))
    T.eq(rec.metrics.points, 3)
    T.eq(rec.results[3].result, 9)
    local sum = 0
    for _, c in ipairs(rec.sweep.points_per_rank) do sum = sum + c end
    T.eq(sum, 3, "points per rank add up")
    T.rmdir(dir)
  else
    T.ok(rdir ~= dir .. "/sw", "other ranks write elsewhere")
  end
end)

T.test("errors", function()
  T.raises(function() qd.sweep(5) end, "table of options expected")
  T.raises(function() qd.sweep { grid = { a = { 1 } } } end, "option 'run'")
  T.raises(function() qd.sweep { run = print } end, "one of 'grid' and 'points'")
  T.raises(function() qd.sweep { grid = { a = {} }, run = print } end, "non-empty list")
  T.raises(function() qd.sweep { grid = { a = { 1 } }, run = print, speed = 1 } end,
           "unknown option 'speed'")
  T.raises(function() qd.sweep { grid = { a = { 1 } }, order = { "b" }, run = print } end,
           "not a grid key")
  T.raises(function() qd.sweep { points = {}, run = print } end, "option 'points'")
end)
