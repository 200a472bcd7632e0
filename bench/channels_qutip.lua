-- channels_qutip.lua — the qd side of the noise-channel benchmark against QuTiP
-- (run by bench/noise.sh as `qd --threads T bench/channels_qutip.lua DIR T`).
--
-- The cases (DIR/cases.txt, written by `channels_qutip.py gen DIR`, one per line:
-- "name n channel parameter targets", targets comma-separated, applied one after the other)
-- are 1-qubit depolarizing (p) and amplitude damping (gamma) channels on a random full-rank
-- 10- and 12-qubit density matrix DIR/rho<n>.npy (made by numpy). Each case is timed as
-- rho:apply(ch, q) for each listed target q (min over repeats), on one working copy of the
-- input made outside the timed region and reused by the repeats (the cost of these
-- kernels does not depend on the values; a fresh 256 MB copy per repeat only costs
-- page faults). The result of one application goes to
-- DIR/qd_<name>_t<T>.npy and the times (seconds) to DIR/qd_times_t<T>.txt, which
-- `channels_qutip.py run` compares with QuTiP (values to 1e-12, times as ratios).
local dir = assert(arg[1], "usage: qd --threads T bench/channels_qutip.lua DIR TAG")
local tag = arg[2] or tostring(qd.threads())

local function read_cases(path)
  local cases = {}
  for line in assert(io.lines(path)) do
    local name, n, ch, par, tg = line:match("^(%S+)%s+(%d+)%s+(%S+)%s+(%S+)%s+(%S+)$")
    assert(name, "cases.txt: bad line: " .. line)
    local targets = {}
    for q in tg:gmatch("%d+") do targets[#targets + 1] = tonumber(q) end
    cases[#cases + 1] = {name = name, n = tonumber(n), channel = ch, param = tonumber(par),
                         targets = targets}
  end
  return cases
end

local function make_channel(kind, x)
  if kind == "depolarizing" then return qd.channel.depolarizing{p = x} end
  if kind == "amplitude_damping" then return qd.channel.amplitude_damping{gamma = x} end
  error("unknown channel " .. kind)
end

-- min over repeats of fn(w): one warm-up, at least 5, then until ~1 s of timed work
-- (at most 200)
local function best_time(w, fn)
  fn(w)
  local best, reps, spent = math.huge, 0, 0
  while reps < 5 or (reps < 200 and spent < 1.0) do
    local t0 = qd.clock()
    fn(w)
    local t = qd.clock() - t0
    best, spent, reps = math.min(best, t), spent + t, reps + 1
  end
  return best, reps
end

local inputs = {}
local out = assert(io.open(dir .. "/qd_times_t" .. tag .. ".txt", "w"))
print(string.format("  qd %s, %d thread%s, OMP_WAIT_POLICY=%s", qd.version, qd.threads(),
                    qd.threads() > 1 and "s" or "", os.getenv("OMP_WAIT_POLICY") or "unset"))
for _, c in ipairs(read_cases(dir .. "/cases.txt")) do
  if not inputs[c.n] then
    inputs[c.n] = assert(qd.load_npy(string.format("%s/rho%d.npy", dir, c.n), "dm"))
  end
  local rho0, ch, tg = inputs[c.n], make_channel(c.channel, c.param), c.targets
  local function apply(w)
    for i = 1, #tg do w:apply(ch, tg[i]) end
  end
  local w = rho0:copy()
  local t, reps = best_time(w, apply)
  w:free()
  w = rho0:copy()
  apply(w)
  w:save_npy(string.format("%s/qd_%s_t%s.npy", dir, c.name, tag))
  w:free()
  out:write(string.format("%s %.9e %d\n", c.name, t, reps))
  print(string.format("  qd %-28s %10.3f ms  (min of %d)", c.name, t * 1e3, reps))
  collectgarbage()
end
out:close()
