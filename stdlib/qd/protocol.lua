-- qd.protocol — the skeleton every protocol library shares (QuDDPM today; QGDM, reverse-time
-- diffusion, Born machines, image diffusion next): checked configuration, a session that
-- owns the run directory, the run record, the checkpoint and the progress line, resume with
-- a settings check, and the command-line options and printing of the example scripts.
-- A protocol keeps only its algorithm; see stdlib/qd/protocols/quddpm.lua for the pattern
-- and docs/architecture.md ("A new protocol").
--
--   local protocol = require "qd.protocol"
--   local c = protocol.config(spec, cfg, "run")            -- typed, defaults, ranges
--   local S = protocol.session{ name = c.name, seed = c.seed, settings = settings, format = 1,
--                               out = c.out, resume = c.resume, quiet = c.quiet,
--                               progress = c.progress, stop_after = c.stop_after,
--                               ckpt_every = c.ckpt_every, state = function() return {...} end }
--   S.state, S.rec, S.dir        -- restored (resume) or fresh state; the record; its directory
--   local prog = S:progress{steps = T, epochs = E, total = T * E}
--   if not S:epoch() then ... end  -- after each epoch: counts, checkpoints, false = stop_after hit
--   S:checkpoint()                 -- whenever the state is consistent (e.g. after a step)
--   return S:stop() / S:finish{...timing}   -- status "stopped" / "done", record and checkpoint
--
-- Randomness is the protocol's: derive everything from qd.rng(seed) substreams keyed by
-- purpose (never a generator's position), so a resumed session gives the bits of an
-- uninterrupted run; the checkpoint holds only what cannot be recomputed (parameters,
-- optimizer moments, histories), as %.17g JSON doubles (qd.optim.checkpoint).
local qd = require "qd"
local json = require "qd.json"
local optim = require "qd.optim"
local record = require "qd.record"
local progress = require "qd.progress"

local M = {}

-- outside() -> the level for error(msg, level) of the nearest caller outside qd's library
-- (qd.caller), so a protocol's argument errors point at the user's line
M.outside = require("qd.caller").outside
local outside = M.outside

-- ------------------------------------------------------------------ randomness

-- streams(keys [, below]) -> stream(seed, name): the qd.Rng substream keys[name] of
-- qd.rng(seed), a protocol's generator for one purpose; only keys below `below` are public
-- (the others are families such as "step + t"), and another name is an argument error
function M.streams(keys, below)
  local names = {}
  for k, v in pairs(keys) do if not below or v < below then names[#names + 1] = k end end
  table.sort(names, function(a, b) return keys[a] < keys[b] end)
  local list = table.concat(names, ", ")
  return function(seed, name)
    local k = keys[name]
    if type(k) ~= "number" or (below and k >= below) then
      error("bad argument #2 to 'stream' (one of " .. list .. " expected, got " .. tostring(name) .. ")", outside())
    end
    return qd.rng(seed):substream(k)
  end
end

-- ------------------------------------------------------------------ configuration

-- config(spec, cfg, fname [, level]) -> c: cfg checked against spec, defaults filled in.
-- spec: key = {type, default, min, choices = {...}}; type "string", "number", "integer",
-- "boolean", "table", a qd type name ("qd.Ensemble"), or alternatives ("qd.Schedule|table");
-- default nil: the key
-- is required; default false: optional without a value. Errors name fname and the key, at
-- the caller's level (level, else the first caller outside the protocol library).
function M.config(spec, cfg, fname, level)
  local function fail(msg) error(string.format("bad argument #1 to '%s' (%s)", fname, msg), level or outside()) end
  if type(cfg) ~= "table" then fail("options table expected, got " .. type(cfg)) end
  for k in pairs(cfg) do
    if not spec[k] then fail("unknown option '" .. tostring(k) .. "'") end
  end
  local c = {}
  for k, s in pairs(spec) do
    local v = cfg[k]
    if v == nil then
      if s[2] == nil then fail("option '" .. k .. "' is required") end
      v = s[2] or nil
    else
      local t, ok = s[1], false
      for alt in t:gmatch("[^|]+") do   -- "qd.Schedule|table": either
        if alt == "integer" then ok = ok or math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v))
        elseif alt:match("^qd%.") then ok = ok or qd.type(v) == alt
        else ok = ok or type(v) == alt end
      end
      if not ok then fail(string.format("option '%s': %s expected, got %s", k, t, qd.type(v))) end
      if t == "integer" then v = math.tointeger(v) end
      if s[3] and v < s[3] then fail(string.format("option '%s': >= %s expected, got %s", k, s[3], v)) end
      if s.choices then
        local found = false
        for _, ch in ipairs(s.choices) do if ch == v then found = true end end
        if not found then
          local names = {}
          for i, ch in ipairs(s.choices) do names[i] = tostring(ch) end
          fail(string.format("option '%s': %s expected, got %s", k, table.concat(names, ", "), tostring(v)))
        end
      end
    end
    c[k] = v
  end
  return c
end

-- with_session_keys(spec) -> spec with the configuration keys of the session added (out,
-- resume, quiet, progress, ckpt_every, stop_after, options, save_data: what from_cli fills
-- and session takes), for a protocol's config spec
function M.with_session_keys(spec)
  spec.out = { "string", false }
  spec.resume = { "string", false }
  spec.quiet = { "boolean", false }
  spec.progress = { "string", "auto" }
  spec.ckpt_every = { "integer", 0, 0 }
  spec.stop_after = { "integer", 0, 0 }
  spec.options = { "table", false }
  spec.save_data = { "boolean", true }
  return spec
end

-- script options that only steer a session, not the result: never compared on resume,
-- never part of the settings
M.session_keys = { resume = true, out = true, quiet = true, threads = true, progress = true,
                   stop_after = true, ckpt_every = true, force = true, plot = true }

-- the script options that define the result (the session keys dropped), as a JSON object
function M.result_options(options)
  local o = json.object()
  for k, v in pairs(options or {}) do
    if not M.session_keys[k] then o[k] = v end
  end
  return o
end

-- ------------------------------------------------------------------ checkpoints

-- load_checkpoint(dir, format) -> {settings = plain table, state = restored table} | nil, msg
function M.load_checkpoint(dir, format)
  local text, err = record.read_file(dir .. "/checkpoint.json")
  if not text then return nil, "no checkpoint in " .. dir .. " (" .. tostring(err) .. ")" end
  local ok, doc = pcall(json.decode, text)
  if not ok or type(doc) ~= "table" or doc.format ~= format then
    return nil, "malformed checkpoint " .. dir .. "/checkpoint.json"
  end
  return { settings = doc.settings, state = optim.restore(doc.state) }
end

-- resume_options(opts, dir, format [, keep]) -> opts with the saved script options of the run
-- in dir (settings.options of its checkpoint), except the keys in keep (default: the session
-- keys). An option given on the command line (opts from qd.cli.parse) that is not in keep and
-- differs from the saved value is refused — a usage error naming every such option.
function M.resume_options(opts, dir, format, keep)
  local cli = require "qd.cli"
  local ck, err = M.load_checkpoint(dir, format)
  if not ck then
    if cli.given(opts) then cli.fail(opts, "--resume: " .. err) end
    error("resume: " .. err, outside())
  end
  keep = keep or M.session_keys
  local saved = ck.settings.options or {}
  local given = cli.given(opts) or {}
  local bad = {}
  for k, v in pairs(saved) do
    if not keep[k] then
      if given[k] and opts[k] ~= v then
        bad[#bad + 1] = string.format("--%s %s (the run has %s)", k:gsub("_", "-"), tostring(opts[k]), tostring(v))
      end
      opts[k] = v
    end
  end
  if #bad > 0 then
    table.sort(bad)
    local names = {}
    for k in pairs(keep) do names[#names + 1] = "--" .. k:gsub("_", "-") end
    table.sort(names)
    cli.fail(opts, "--resume " .. dir .. " continues a run with its own settings; these options differ: " ..
             table.concat(bad, ", ") .. " (only " .. table.concat(names, ", ") .. " may change on resume)")
  end
  return opts
end

-- ------------------------------------------------------------------ the session

local Session = {}
Session.__index = Session

-- session{name, seed, settings, format, out, resume, quiet, progress, stop_after, ckpt_every,
-- state = function() -> fresh state} -> session. On resume the checkpoint's settings must
-- equal these (else an error showing both) and its state is taken; the state always carries
-- sessions (this one counted), epochs_done and train_seconds.
function M.session(o)
  local state
  if o.resume then
    local ck, err = M.load_checkpoint(o.resume, o.format)
    if not ck then error("resume: " .. err, outside()) end
    local a, b = json.encode(ck.settings), json.encode(json.decode(json.encode(o.settings)))
    if a ~= b then
      error("resume: the settings of " .. o.resume .. " differ from this run's:\n  checkpoint " .. a ..
            "\n  this run   " .. b, outside())
    end
    state = ck.state
  else
    state = o.state and o.state() or {}
  end
  state.sessions = math.tointeger(state.sessions or 0) + 1
  state.epochs_done = math.tointeger(state.epochs_done or 0)
  state.train_seconds = state.train_seconds or 0.0
  local rec = record.open(o.resume or o.out, { name = o.name, seed = o.seed, settings = o.settings,
                                               resume = o.resume and true or nil })
  rec.data.status = "running"
  return setmetatable({
    o = o, state = state, rec = rec, dir = rec.dir, settings = o.settings,
    wall0 = qd.clock(), t0 = qd.clock(), session_epochs = 0,
  }, Session)
end

-- the progress line of this session (done = epochs of earlier sessions)
function Session:progress(p)
  local o = self.o
  self.prog = progress.new { steps = p.steps, epochs = p.epochs, total = p.total, label = p.label,
                             done = self.state.epochs_done, quiet = o.quiet,
                             mode = o.quiet and "quiet" or (o.progress or "auto") }
  return self.prog
end

-- adds the training time since the last call to state.train_seconds
function Session:clock()
  local now = qd.clock()
  self.state.train_seconds = self.state.train_seconds + (now - self.t0)
  self.t0 = now
end

function Session:checkpoint()
  self:clock()
  local doc = { format = self.o.format, settings = self.settings, state = optim.checkpoint(self.state) }
  record.write_atomic(self.dir .. "/checkpoint.json", json.encode(doc) .. "\n")
end

-- after every epoch e (of a step or candidate): counts it, checkpoints every ckpt_every
-- epochs; false when the session's stop_after budget is used up (the caller stops)
function Session:epoch(e)
  self.state.epochs_done = self.state.epochs_done + 1
  self.session_epochs = self.session_epochs + 1
  local o = self.o
  if (o.stop_after or 0) > 0 and self.session_epochs >= o.stop_after then return false end
  if (o.ckpt_every or 0) > 0 and e % o.ckpt_every == 0 then self:checkpoint() end
  return true
end

-- the run stopped early (stop_after): checkpoint, status "stopped", record saved
function Session:stop()
  self:checkpoint()
  self.rec.data.status = "stopped"
  self.rec.data.epochs_done = self.state.epochs_done
  self.rec:save()
end

-- the run is complete: timing (train_seconds, epochs, seconds_per_epoch, sessions, threads,
-- this_session_seconds, plus the fields of extra), status "done", checkpoint, record saved.
-- Returns the timing table.
function Session:finish(extra)
  self:clock()
  local st = self.state
  local timing = {
    train_seconds = st.train_seconds, epochs = st.epochs_done,
    seconds_per_epoch = st.epochs_done > 0 and st.train_seconds / st.epochs_done or 0,
    sessions = st.sessions, threads = qd.threads(),
    this_session_seconds = qd.clock() - self.wall0,
  }
  for k, v in pairs(extra or {}) do timing[k] = v end
  self.rec.data.timing = timing
  self.rec.data.status = "done"
  self:checkpoint()
  self.rec:save()
  return timing
end

-- ------------------------------------------------------------------ script helpers

-- Training allocates a few short-lived ensembles per epoch: Lua's generational collector
-- handles that ~3% faster than the incremental one, with identical results. The caller's
-- mode is restored on return (an error leaves the generational mode on: harmless).
function M.generational(f)
  return function(...)
    local prev = collectgarbage("generational")
    local r = f(...)
    if prev == "incremental" then collectgarbage("incremental") end
    return r
  end
end

-- the options every protocol example takes (qd.cli format), then extra
function M.cli_options(extra)
  local o = {
    { "small", false, "tiny settings for tests (a few seconds)" },
    { "seed", 1, "seed of every random draw (0 ... 2^63-1)", min = 0 },
    { "out", "", "run directory (default runs/<name>-<time>)" },
    { "resume", "", "continue the interrupted run in this directory (its settings are used)" },
    { "threads", 0, "threads, 0 ... 1024 (0 = keep qd's setting, qd --threads N)", min = 0, max = 1024 },
    { "quiet", false, "no progress output" },
    { "progress", "auto", "auto | live | lines", choices = { "auto", "live", "lines" } },
    { "ckpt_every", 0, "also checkpoint every this many epochs (0 = after each step only)", min = 0 },
    { "stop_after", 0, "stop (with a checkpoint) after this many epochs; for testing --resume", min = 0 },
  }
  for _, e in ipairs(extra or {}) do o[#o + 1] = e end
  return o
end

-- parse_cli(arg, spec, format) -> opts: the command line (qd.cli.parse), then --resume's
-- saved options (resume_options with the protocol's checkpoint format) and --threads applied
function M.parse_cli(argv, spec, format)
  local opts = require("qd.cli").parse(argv, spec)
  if opts.resume ~= "" then M.resume_options(opts, opts.resume, format) end
  if opts.threads > 0 then qd.set_threads(opts.threads) end
  return opts
end

-- from_cli(opts, cfg) -> cfg with the session options of the command line (seed, the options
-- themselves for the record, --out, --resume, --quiet, --progress, --ckpt-every,
-- --stop-after); a protocol adds its own training options after this
function M.from_cli(opts, cfg)
  cfg.seed, cfg.options = opts.seed, opts
  cfg.out = opts.out ~= "" and opts.out or nil
  cfg.resume = opts.resume ~= "" and opts.resume or nil
  cfg.quiet, cfg.progress = opts.quiet, opts.progress
  cfg.ckpt_every, cfg.stop_after = opts.ckpt_every, opts.stop_after
  return cfg
end

-- ends the script (status 0) when the run stopped early (--stop-after), saying how to go on
function M.exit_if_stopped(res, opts)
  if res.stopped then
    print("stopped after " .. opts.stop_after .. " epochs; continue with --resume " .. res.dir)
    os.exit(0)
  end
end

-- print the numeric metrics in a fixed order, one per line, then the timing and the record
function M.print_metrics(res)
  local m = res.metrics
  local names = {}
  for k, v in pairs(m) do if type(v) == "number" then names[#names + 1] = k end end
  table.sort(names)
  for _, k in ipairs(names) do print(string.format("  %-20s %.6g", k, m[k])) end
  if res.timing then
    print(string.format("  train %.2f s (%d epochs, %.1f us/epoch), threads %d", res.timing.train_seconds,
      res.timing.epochs, res.timing.seconds_per_epoch * 1e6, res.timing.threads))
  end
  print("run record: " .. res.dir .. "/run.json")
end

return M
