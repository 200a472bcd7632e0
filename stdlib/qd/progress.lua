-- qd.progress — progress reports for long training loops (QuDDPM and friends).
--
--   local progress = require "qd.progress"
--   local p = progress.new{ steps = T, epochs = E, total = T * E [, quiet = false]
--                           [, mode = "auto" | "live" | "lines"] [, every = 10] [, out = io.stdout]
--                           [, label = "step"] }
--   p:begin_step(i, t [, note])     -- i = 1..steps (position), t = the step's own label
--   p:update(epoch, loss)           -- once per epoch; cheap (looks at the clock every 32 calls)
--   p:end_step(loss [, note])       -- final line of the step
--   p:message(text)                 -- a line that does not break the live line
--   p:finish()
--
-- On a terminal ("live") one line per step is rewritten in place with '\r':
--   step 3/20 (t=17)  epoch 1200/2000  loss 1.234e-03  1830 it/s  ETA 0:00:41
-- and left standing when the step ends. When output is not a terminal ("lines", e.g. under
-- nohup or in a pipe) a plain line is printed every `every` seconds and at the end of each
-- step. quiet = true prints nothing. "auto" asks the shell once whether stdout is a terminal
-- (`test -t 1`); QD_PROGRESS=live|lines|quiet in the environment overrides it.
-- it/s counts epochs per second over the run so far (resumed runs count from the resume);
-- the ETA is the remaining epochs (total − done) at that rate.
local M = {}
local P = {}
P.__index = P

local core = require "qd.core"

local function isatty_stdout()
  return core.sys.isatty(1)
end

local function hms(s)
  if s ~= s or s == math.huge or s < 0 then return "?" end
  s = math.floor(s + 0.5)
  return string.format("%d:%02d:%02d", s // 3600, (s // 60) % 60, s % 60)
end
M.hms = hms

local known = { steps = true, epochs = true, total = true, quiet = true, mode = true, every = true,
                out = true, label = true, done = true }

function M.new(o)
  o = o or {}
  if type(o) ~= "table" then error("bad argument #1 to 'progress.new' (options table expected, got " .. type(o) .. ")", 2) end
  for k in pairs(o) do
    if not known[k] then error("bad argument #1 to 'progress.new' (unknown option '" .. tostring(k) .. "')", 2) end
  end
  local mode = o.mode or "auto"
  local env = os.getenv("QD_PROGRESS")
  if o.quiet then mode = "quiet"
  elseif env == "live" or env == "lines" or env == "quiet" then mode = env end
  if mode == "auto" then mode = isatty_stdout() and "live" or "lines" end
  if mode ~= "live" and mode ~= "lines" and mode ~= "quiet" then
    error("bad argument #1 to 'progress.new' (option 'mode': auto, live, lines or quiet expected, got " .. tostring(mode) .. ")", 2)
  end
  local now = core.clock()
  return setmetatable({
    mode = mode, steps = o.steps or 0, epochs = o.epochs or 0,
    total = o.total or 0, done = o.done or 0, done0 = o.done or 0,
    every = o.every or 10, out = o.out or io.stdout, label = o.label or "step",
    t0 = now, last = now, calls = 0, i = 0, t = 0, epoch = 0, loss = 0 / 0, width = 0,
  }, P)
end

function P:rate()
  local dt = core.clock() - self.t0
  if dt <= 0 then return 0 end
  return (self.done - self.done0) / dt
end

function P:line()
  local rate = self:rate()
  local eta = rate > 0 and (self.total - self.done) / rate or math.huge
  local loss = self.loss == self.loss and string.format("%.4e", self.loss) or "-"
  return string.format("%s %d/%d (t=%d)%s  epoch %d/%d  loss %s  %.0f it/s  ETA %s",
    self.label, self.i, self.steps, self.t, self.note and ("  " .. self.note) or "",
    self.epoch, self.epochs, loss, rate, hms(eta))
end

function P:write_live(s, final)
  local pad = self.width > #s and string.rep(" ", self.width - #s) or ""
  self.out:write("\r", s, pad, final and "\n" or "")
  self.out:flush()
  self.width = final and 0 or #s
end

function P:begin_step(i, t, note)
  self.i, self.t, self.note, self.epoch, self.loss = i, t, note, 0, 0 / 0
  if self.mode == "live" then self:write_live(self:line(), false) end
end

function P:update(epoch, loss)
  self.epoch, self.loss = epoch, loss
  self.done = self.done + 1
  if self.mode == "quiet" then return end
  self.calls = self.calls + 1
  if self.calls % 32 ~= 0 then return end
  local now = core.clock()
  if self.mode == "live" then
    if now - self.last >= 0.1 then
      self.last = now
      self:write_live(self:line(), false)
    end
  elseif now - self.last >= self.every then
    self.last = now
    self.out:write(self:line(), "\n")
    self.out:flush()
  end
end

function P:end_step(loss, note)
  if loss ~= nil then self.loss = loss end
  if note ~= nil then self.note = note end
  if self.mode == "quiet" then return end
  local s = self:line()
  if self.mode == "live" then self:write_live(s, true)
  else
    self.out:write(s, "\n")
    self.out:flush()
    self.last = core.clock()
  end
end

function P:message(text)
  if self.mode == "quiet" then return end
  if self.mode == "live" and self.width > 0 then
    self:write_live("", false)
    self.out:write("\r")
  end
  self.out:write(text, "\n")
  self.out:flush()
  if self.mode == "live" and self.i > 0 and self.width > 0 then self:write_live(self:line(), false) end
end

function P:finish()
  if self.mode == "live" and self.width > 0 then self:write_live(self:line(), true) end
end

return M
