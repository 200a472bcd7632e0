-- qd.record — run records: a directory holding run.json (script text and its SHA-256,
-- arguments, seeds, qd version, kernel set, BLAS, threads, input files' hashes, settings,
-- results, wall time) next to .npy data files. `qd replay DIR` reruns a record and
-- compares (docs/cli.md).
--   local rec = record.open(opts.out, {name = "quddpm_forward", seed = 3, settings = {...}})
--   rec:path("forward.npy")        -- a file inside the run directory
--   rec.metrics.F0_train = 0.99
--   rec:save()                     -- (re)writes run.json atomically; call as often as you like
-- JSON only: no Lua code or bytecode is ever written.
--
-- No run destroys another's record: the default directory runs/<name>-<UTC time> gets a
-- suffix -2, -3, ... when taken (created with an exclusive mkdir, so two runs started in
-- the same second get two directories); an --out directory that already holds a run.json
-- is refused unless the run resumes it (info.resume) or --force was given (M.force).
-- Every file is written under a temporary name and renamed into place.
--
-- If the script fails, is interrupted (Ctrl-C) or hits a --max-seconds/--max-memory limit,
-- qd calls M.close_all: every open record is saved with status "failed" or
-- "interrupted" and the message, and says where a checkpoint to resume from is.
local json = require "qd.json"
local core = require "qd.core"
local sys = core.sys

local M = {}
local Record = {}
Record.__index = Record

-- set by qd.cli when the command line says --force: an --out directory holding a run
-- record may be replaced
M.force = false

-- set by qd.cli when the command line says --plot: when the script ends well, every run
-- record it opened gets its figures drawn (qd.plot.run) into <dir>/figures
M.plot = false

-- the records opened in this process, to save on abort (weak: a dropped record is done)
local open_records = setmetatable({}, { __mode = "k" })
-- the directories of every record opened in this process, in order (for --plot)
local opened_dirs = {}

-- write_atomic(path, text): text into path through a temporary file in the same directory,
-- renamed over path once complete. Raises on failure (level 2: the caller's line).
function M.write_atomic(path, text)
  local ok, err = sys.write_atomic(path, text)
  if not ok then error("cannot write " .. path .. ": " .. tostring(err), 2) end
  return path
end

-- read_file(path) -> text or nil, message
function M.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  return text
end

-- mkdir -p; returns true or nil, message
function M.mkdir(dir)
  return sys.mkdir_p(dir)
end

local function exists(path) return sys.exists(path) end

-- The default run directory's name, runs/<name>-<UTC time> (M.open appends -2, -3, ...
-- when that is taken; under --sandbox the run gets the directory qd made for it).
function M.default_dir(name)
  return string.format("runs/%s-%s", name, os.date("!%Y%m%d-%H%M%S"))
end

-- creates a new directory: base, else base-2, base-3, ... (exclusive: never an existing one)
local function create_unique(base)
  local parent = base:match("^(.*)/[^/]+$")
  if parent and parent ~= "" then
    local ok, err = sys.mkdir_p(parent)
    if not ok then return nil, err end
  end
  for k = 1, 1000 do
    local dir = k == 1 and base or (base .. "-" .. k)
    local ok, err, exists_ = sys.mkdir(dir)
    if ok then return dir end
    if not exists_ then return nil, err end
  end
  return nil, "cannot find a free directory name after " .. base .. "-1000"
end

-- The JSON-safe script text: a script that is not valid UTF-8 is stored as hex.
local function script_info()
  local name = arg and arg[0]
  local info = { script = name or "?" }
  local text = sys.script_text and sys.script_text()
  if text then
    if utf8.len(text) then info.script_text = text else info.script_text_hex = (text:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
    info.script_sha256 = sys.sha256(text)
  end
  return info
end

-- the input files named on the command line (arguments naming an existing regular file,
-- alone or as --opt=FILE), with their SHA-256, so a replay can tell they are unchanged
local function input_files(argv, dir)
  local inputs = {}
  for _, a in ipairs(argv) do
    local v = a:match("^%-%-[%w_%-]+=(.*)$") or a
    if v ~= "" and sys.is_file(v) then
      local h = sys.sha256_file(v)
      if h then inputs[#inputs + 1] = { path = v, sha256 = h } end
    end
  end
  return inputs
end

function M.open(dir, info)
  if type(info) ~= "table" or type(info.name) ~= "string" then
    error("record.open: info.name expected", 2)
  end
  local given = dir and dir ~= ""
  local had_record = false
  local mpi = require "qd.mpi"
  if mpi.rank ~= 0 then
    -- under MPI rank 0 alone writes the run directory; another rank's record of the same
    -- run goes to its scratch directory (removed at exit; qd.mpi)
    local msg
    dir, msg = create_unique(mpi.scratch_dir() .. "/" .. info.name:gsub("[^%w_%-]", "_"))
    if not dir then error(msg, 2) end
  elseif given then
    had_record = exists(dir .. "/run.json")
    if had_record and not (info.resume or M.force) then
      error(dir .. " already holds a run record (run.json); choose another --out, or give " ..
            "--force to replace it", 2)
    end
    local ok, msg = sys.mkdir_p(dir)
    if not ok then error(msg, 2) end
  elseif sys.default_out() then
    -- the directory qd chose for this run (--sandbox, qd replay)
    dir = sys.default_out()
  else
    local msg
    dir, msg = create_unique(M.default_dir(info.name))
    if not dir then error(msg, 2) end
  end
  local qd = require "qd"
  local argv = {}
  for i = 1, #(arg or {}) do argv[i] = arg[i] end
  -- the interpreter's own options (qd --seed 3 --threads 2 script.lua ...)
  local qd_args = {}
  if arg then
    local lo = 0
    while arg[lo - 1] ~= nil do lo = lo - 1 end
    for i = lo + 1, -1 do qd_args[#qd_args + 1] = arg[i] end
  end
  local si = script_info()
  local self = setmetatable({
    dir = dir,
    t0 = os.clock(),
    wall0 = qd.clock(),
    data = {
      name = info.name,
      script = si.script,
      script_sha256 = si.script_sha256,
      arguments = argv,
      qd_arguments = qd_args,
      inputs = input_files(argv, dir),
      seed = info.seed,
      run_seed = sys.run_seed(),
      qd_version = qd.version,
      lua_version = _VERSION,
      blas = qd.blas_info(),
      simd = qd.simd(),
      threads = qd.threads(),
      mpi_ranks = mpi.size > 1 and mpi.size or nil,
      sandbox = sys.sandboxed(),
      started_utc = os.date("!%Y-%m-%dT%H:%M:%SZ"),
      settings = info.settings or json.object(),
      metrics = json.object(),
      files = {},
      script_text = si.script_text,
      script_text_hex = si.script_text_hex,
    },
  }, Record)
  self.metrics = self.data.metrics
  self.settings = self.data.settings
  -- a record this process has not saved yet over an existing run.json (a resume) is not
  -- written on failure: the old record stays as it was
  self.had_record, self.saved = had_record, false
  open_records[self] = true
  opened_dirs[#opened_dirs + 1] = dir
  return self
end

function Record:path(file)
  local files = self.data.files
  local seen = false
  for _, f in ipairs(files) do if f == file then seen = true end end
  if not seen then files[#files + 1] = file end
  return self.dir .. "/" .. file
end

-- (re)writes run.json. status: set when the run did not complete ("failed",
-- "interrupted"; M.close_all does it); a record without one is a normal run's.
function Record:save(status)
  local qd = require "qd"
  if status then self.data.status = status end
  self.data.cpu_seconds = os.clock() - self.t0
  self.data.wall_seconds = qd.clock() - self.wall0
  local text = json.encode(self.data, { indent = "  " }) .. "\n"
  local final = self.dir .. "/run.json"
  local ok, err = sys.write_atomic(final, text)
  if not ok then error("cannot write run record: " .. tostring(err), 2) end
  self.saved = true
  return final
end

-- the run is over: saved and no longer one of the records M.close_all saves on failure
function Record:finish()
  open_records[self] = nil
  return self:save()
end

-- Called by qd when the script ends. On success the open records are forgotten (the
-- script saved what it meant to); on failure each is saved with status "failed" or
-- "interrupted" (Ctrl-C, --max-seconds, --max-memory) and the first line of the message,
-- and the returned lines say where it is and, when it holds a checkpoint, how to resume.
-- --plot: the figures of every record this process opened (a failure to draw is reported,
-- it does not fail the run)
local function plot_all(lines)
  for _, dir in ipairs(opened_dirs) do
    local ok, written, skipped = pcall(function(d) return require("qd.plot").run(d) end, dir)
    if ok then
      lines[#lines + 1] = string.format("%d figures written to %s/figures%s", #written, dir,
                                        #skipped > 0 and (" (skipped " .. table.concat(skipped, "; ") .. ")") or "")
    else
      lines[#lines + 1] = "--plot: " .. tostring(written)
    end
  end
end

function M.close_all(ok, message)
  local lines = {}
  if ok and M.plot then plot_all(lines) end
  local list = {}
  for r in pairs(open_records) do list[#list + 1] = r end
  table.sort(list, function(a, b) return a.dir < b.dir end)
  for _, r in ipairs(list) do
    open_records[r] = nil
    if not ok and r.had_record and not r.saved then
      lines[#lines + 1] = "the run record in " .. r.dir .. " was left as it was"
    elseif not ok then
      local msg = tostring(message)
      local stopped = msg:find("interrupted", 1, true) or msg:find("--max-", 1, true)
      r.data.error = msg:match("^[^\n]*")
      if pcall(r.save, r, stopped and "interrupted" or "failed") then
        lines[#lines + 1] = "partial run record written to " .. r.dir .. "/run.json"
        if exists(r.dir .. "/checkpoint.json") then
          lines[#lines + 1] = string.format("resume with: qd %s --resume %s", r.data.script, r.dir)
        end
      end
    end
  end
  return lines
end

return M
