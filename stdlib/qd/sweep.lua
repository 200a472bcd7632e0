-- qd.sweep — many independent runs (seeds x sizes x qubit counts ...) over the MPI ranks,
-- or one after another without MPI; the results are the same either way.
--   local res = qd.sweep{
--     grid = {seed = {1, 2, 3}, N = {10, 20}},     -- every combination is a point
--     run = function(cfg, k) return {loss = ...} end,  -- cfg = {seed = 1, N = 10}; k its number
--     [order = {"N", "seed"}],   -- key order of the product (default: sorted; first slowest)
--     [points = {{...}, ...}],   -- instead of grid: the list of configurations
--     [seed = 1],                -- the run's generator before point k: substream k of it
--     [out = dir], [name = "sweep"], [record = true],   -- write one run record (rank 0)
--     [quiet = false]}
--   -> results: { {cfg = cfg_1, result = r_1}, ... } in point order, on every rank; and the
--      record's directory when one was written
-- Work is handed out dynamically: rank 0 keeps the queue, each other rank asks for its next
-- point before it starts its current one (rank 0 also runs points, answering between them,
-- while there are at most 4 ranks; beyond that it only hands out work). A point's result is
-- whatever run returns (nil, booleans, numbers, strings, tables, qd.Vector/qd.Matrix), sent
-- exactly. Before point k the run's generator (qd.run_rng) is reseeded from substream k of
-- `seed`, so a point draws the same numbers whichever rank runs it and in whatever order.
local mpi = require "qd.mpi"
local caller = require "qd.caller"

local M = {}

local TAG_ASK, TAG_WORK = 11, 12   -- worker -> rank 0 (asks, results); rank 0 -> worker

local function argerr(msg) caller.argerror("sweep", 1, msg) end

-- the points of the grid in a fixed order (the first key the slowest)
local function expand(grid, order)
  local keys = {}
  if order then
    if type(order) ~= "table" then argerr("option 'order': list of grid keys expected") end
    local seen = {}
    for i, k in ipairs(order) do
      if grid[k] == nil then argerr("option 'order': entry " .. i .. " is not a grid key") end
      seen[k] = true
      keys[i] = k
    end
    for k in pairs(grid) do
      if not seen[k] then argerr("option 'order': grid key '" .. tostring(k) .. "' missing") end
    end
  else
    for k in pairs(grid) do
      if type(k) ~= "string" then argerr("option 'grid': string keys expected") end
      keys[#keys + 1] = k
    end
    table.sort(keys)
  end
  for _, k in ipairs(keys) do
    local v = grid[k]
    if type(v) ~= "table" or #v == 0 then
      argerr("option 'grid': key '" .. k .. "' needs a non-empty list of values")
    end
  end
  local points, cfg = {}, {}
  local function rec(d)
    if d > #keys then
      local c = {}
      for k, v in pairs(cfg) do c[k] = v end
      points[#points + 1] = c
      return
    end
    for _, v in ipairs(grid[keys[d]]) do
      cfg[keys[d]] = v
      rec(d + 1)
    end
  end
  rec(1)
  return points, keys
end

local ALLOWED = { grid = 1, run = 1, order = 1, points = 1, seed = 1, out = 1, name = 1,
                  record = 1, quiet = 1 }

local function check_opts(o)
  if type(o) ~= "table" then argerr("table of options expected, got " .. type(o)) end
  for k in pairs(o) do
    if not ALLOWED[k] then argerr("unknown option '" .. tostring(k) .. "'") end
  end
  if type(o.run) ~= "function" then argerr("option 'run': function expected") end
  if (o.grid == nil) == (o.points == nil) then argerr("one of 'grid' and 'points' expected") end
  if o.points ~= nil and (type(o.points) ~= "table" or #o.points == 0) then
    argerr("option 'points': non-empty list of configurations expected")
  end
  if o.grid ~= nil and type(o.grid) ~= "table" then argerr("option 'grid': table expected") end
  if o.seed ~= nil and (math.type(o.seed) ~= "integer" or o.seed < 0) then
    argerr("option 'seed': non-negative integer expected")
  end
end

local function run_point(o, points, k)
  local qd = require "qd"
  qd.set_seed(qd.rng(o.seed or 1):substream(k):integer(0, (1 << 53) - 1))
  local t0 = qd.clock()
  local r = o.run(points[k], k)
  return r, qd.clock() - t0
end

-- rank 0: the queue. A worker asks for points ({want = m}) and sends results ({k =, r =, t =});
-- it asks for its next point before it starts its last one, so the answer (given between
-- rank 0's own points) arrives while it computes and it rarely waits. An empty answer means
-- the queue is empty: every worker gets exactly one, and rank 0 ends when it has all
-- results and has told every worker.
local function master(o, points, slots, stats)
  local K, nxt, done, told = #points, 1, 0, 0
  local works = mpi.size <= 4 or mpi.size == 1
  local function serve()
    local msg, src = mpi.recv(-1, TAG_ASK)
    if msg.k then
      slots[msg.k] = { cfg = points[msg.k], result = msg.r }
      stats[msg.k] = { rank = src, seconds = msg.t }
      done = done + 1
    end
    if (msg.want or 0) > 0 then
      local give = {}
      while #give < msg.want and nxt <= K do
        give[#give + 1] = nxt
        nxt = nxt + 1
      end
      if #give == 0 then told = told + 1 end
      mpi.send(give, src, TAG_WORK)
    end
  end
  while done < K or told < mpi.size - 1 do
    while mpi.size > 1 and mpi.iprobe(-1, TAG_ASK) do serve() end
    if nxt <= K and (works or mpi.size == 1) then
      local k = nxt
      nxt = nxt + 1
      local r, t = run_point(o, points, k)
      slots[k] = { cfg = points[k], result = r }
      stats[k] = { rank = 0, seconds = t }
      done = done + 1
      if not o.quiet then
        print(string.format("sweep: point %d/%d done (%d of %d)", k, K, done, K))
      end
    elseif done < K or told < mpi.size - 1 then
      serve()
    end
  end
end

local function worker(o, points)
  local queue, asked, last = {}, 1, false
  mpi.send({ want = 2 }, 0, TAG_ASK)
  while true do
    -- answers: wait for one when there is nothing to do, else take those already here
    while asked > 0 and (#queue == 0 or mpi.iprobe(0, TAG_WORK)) do
      local got = mpi.recv(0, TAG_WORK)
      asked = asked - 1
      if #got == 0 then last = true end
      for _, k in ipairs(got) do queue[#queue + 1] = k end
    end
    if #queue == 0 then return end
    local k = table.remove(queue, 1)
    if #queue == 0 and asked == 0 and not last then   -- the next one, before this one
      mpi.send({ want = 1 }, 0, TAG_ASK)
      asked = 1
    end
    local r, t = run_point(o, points, k)
    mpi.send({ k = k, r = r, t = t }, 0, TAG_ASK)
  end
end

local function write_record(o, keys, slots, stats, wall)
  local record = require "qd.record"
  local rec = record.open(o.out, { name = o.name or "sweep", seed = o.seed or 1,
                                   settings = { grid = o.grid, points = o.points,
                                                order = keys } })
  rec.data.results = slots
  rec.metrics.points = #slots
  -- who ran what and how long: outside `results`, which is the same on 1 or P ranks
  local per_rank, seconds = {}, {}
  for r = 1, mpi.size do per_rank[r] = 0 end
  for k, s in ipairs(stats) do
    per_rank[s.rank + 1] = per_rank[s.rank + 1] + 1
    seconds[k] = s.seconds
  end
  rec.data.sweep = { ranks = mpi.size, points_per_rank = per_rank, seconds = seconds,
                     wall_seconds = wall }
  rec:finish()
  return rec.dir
end

function M.sweep(o)
  check_opts(o)
  local points, keys
  if o.grid then points, keys = expand(o.grid, o.order) else points = o.points end
  local slots, stats = {}, {}
  local t0 = require("qd").clock()
  if mpi.rank == 0 then master(o, points, slots, stats) else worker(o, points) end
  slots = mpi.bcast(slots, 0)
  stats = mpi.bcast(stats, 0)
  local dir
  local wall = require("qd").clock() - t0
  if o.out or o.name or o.record then dir = write_record(o, keys, slots, stats, wall) end
  return slots, dir
end

return M
