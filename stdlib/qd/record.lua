-- qd.record — run records: a directory holding run.json (script, arguments, seed, qd
-- version, BLAS, threads, settings, results, wall time) next to .npy data files.
--   local rec = record.open(opts.out, {name = "quddpm_forward", seed = 3, settings = {...}})
--   rec:path("forward.npy")        -- a file inside the run directory
--   rec.metrics.F0_train = 0.99
--   rec:save()                     -- (re)writes run.json atomically; call as often as you like
-- JSON only: no Lua code or bytecode is ever written.
local json = require "qd.json"

local M = {}
local Record = {}
Record.__index = Record

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- mkdir -p; returns true or nil, message
function M.mkdir(dir)
  local ok = os.execute("mkdir -p " .. shell_quote(dir))
  if not ok then return nil, "cannot create directory " .. dir end
  return true
end

function M.default_dir(name)
  return string.format("runs/%s-%s", name, os.date("!%Y%m%d-%H%M%S"))
end

function M.open(dir, info)
  assert(type(info) == "table" and type(info.name) == "string", "record.open: info.name expected")
  dir = (dir and dir ~= "") and dir or M.default_dir(info.name)
  local ok, msg = M.mkdir(dir)
  if not ok then error(msg, 2) end
  local qd = require "qd"
  local argv = {}
  for i = 1, #(arg or {}) do argv[i] = arg[i] end
  local self = setmetatable({
    dir = dir,
    t0 = os.clock(),
    wall0 = qd.clock(),
    data = {
      name = info.name,
      script = arg and arg[0] or "?",
      arguments = argv,
      seed = info.seed,
      qd_version = qd.version,
      lua_version = _VERSION,
      blas = qd.blas_info(),
      simd = qd.simd(),
      threads = qd.threads(),
      started_utc = os.date("!%Y-%m-%dT%H:%M:%SZ"),
      settings = info.settings or json.object(),
      metrics = json.object(),
      files = {},
    },
  }, Record)
  self.metrics = self.data.metrics
  self.settings = self.data.settings
  return self
end

function Record:path(file)
  local files = self.data.files
  local seen = false
  for _, f in ipairs(files) do if f == file then seen = true end end
  if not seen then files[#files + 1] = file end
  return self.dir .. "/" .. file
end

function Record:save()
  local qd = require "qd"
  self.data.cpu_seconds = os.clock() - self.t0
  self.data.wall_seconds = qd.clock() - self.wall0
  local text = json.encode(self.data, { indent = "  " }) .. "\n"
  local final = self.dir .. "/run.json"
  local tmp = final .. ".tmp"
  local f, err = io.open(tmp, "w")
  if not f then error("cannot write run record: " .. err, 2) end
  f:write(text)
  f:close()
  local ok, rerr = os.rename(tmp, final)
  if not ok then error("cannot write run record: " .. rerr, 2) end
  return final
end

return M
