-- qd.replay — `qd replay RUNDIR [--out DIR] [--threads N] [--no-sandbox]` (docs/cli.md).
-- The interpreter (interp/main.c) calls plan() to read the record and check that it can be
-- rerun as it was, reruns the stored script text in a fresh (by default sandboxed) Lua
-- state, then calls compare(): the new record's settings and metrics must equal the old
-- one's exactly (timings excepted) and every data file must be the same bytes.
local json = require "qd.json"
local record = require "qd.record"
local sys = require("qd.core").sys

local M = {}

-- a user-facing error: an object with __tostring, which qd prints without a traceback
local function fail(msg)
  error(setmetatable({}, { __tostring = function() return "replay: " .. msg end }), 0)
end

local function load_record(dir)
  local text, err = record.read_file(dir .. "/run.json")
  if not text then return nil, "no run record in " .. dir .. " (" .. tostring(err) .. ")" end
  local ok, doc = pcall(json.decode, text)
  if not ok or type(doc) ~= "table" then return nil, dir .. "/run.json is not a run record" end
  return doc
end

local function unhex(h)
  if #h % 2 == 1 or h:find("[^%x]") then return nil end
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

-- plan(rundir, out) -> {script, chunkname, text, args, run_seed, threads, out, rundir}
function M.plan(rundir, out)
  local doc, err = load_record(rundir)
  if not doc then fail(err) end
  local text = doc.script_text
  if text == nil and type(doc.script_text_hex) == "string" then text = unhex(doc.script_text_hex) end
  if type(text) ~= "string" then
    fail(rundir .. "/run.json holds no script text (written by a qd before replay existed, " ..
         "or by a script run through -e): it cannot be replayed")
  end
  if type(doc.script_sha256) ~= "string" or sys.sha256(text) ~= doc.script_sha256 then
    fail("the script text in " .. rundir .. "/run.json does not match its SHA-256: the record was edited")
  end
  if type(doc.arguments) ~= "table" then fail(rundir .. "/run.json: no arguments list") end
  for _, inp in ipairs(doc.inputs or {}) do
    if type(inp) ~= "table" or type(inp.path) ~= "string" then fail("malformed inputs list in run.json") end
    local h = sys.is_file(inp.path) and sys.sha256_file(inp.path)
    if not h then fail("input file " .. inp.path .. " of the run is missing") end
    if h ~= inp.sha256 then
      fail("input file " .. inp.path .. " changed since the run (SHA-256 " .. h .. ", was " ..
           tostring(inp.sha256) .. ")")
    end
  end
  -- the new run directory: given, else <rundir>-replay[-k]; never an existing record
  if out then
    if sys.exists(out .. "/run.json") then fail(out .. " already holds a run record; choose another --out") end
    local ok, e = sys.mkdir_p(out)
    if not ok then fail(e) end
  else
    local base = rundir:gsub("/+$", "") .. "-replay"
    for k = 1, 1000 do
      local d = k == 1 and base or (base .. "-" .. k)
      local ok, e, exists = sys.mkdir(d)
      if ok then out = d break end
      if not exists then fail(e) end
    end
    if not out then fail("no free directory name for the replay next to " .. rundir) end
  end
  -- the arguments, with the output directory replaced (and --resume dropped: a resumed run
  -- gives the bits of an uninterrupted one, so the replay runs from the start)
  local args, i, a = {}, 1, doc.arguments
  while i <= #a do
    local v = tostring(a[i])
    if v == "--out" or v == "--resume" then
      if v == "--out" then args[#args + 1] = "--out"; args[#args + 1] = out end
      i = i + 2
    elseif v:match("^%-%-out=") then
      args[#args + 1] = "--out=" .. out
      i = i + 1
    elseif v:match("^%-%-resume=") then
      i = i + 1
    else
      args[#args + 1] = v
      i = i + 1
    end
  end
  local script = type(doc.script) == "string" and doc.script or "script"
  return {
    rundir = rundir, out = out, script = script, chunkname = "@" .. script, text = text,
    args = args, run_seed = math.tointeger(doc.run_seed) or 1,
    threads = math.tointeger(doc.threads),
  }
end

-- keys holding timings, which a rerun does not reproduce
local function is_timing(key)
  key = tostring(key)
  return key:find("seconds", 1, true) or key:find("_time", 1, true) or key == "time"
end

-- first difference between two JSON values, as a path and the two values, or nil
local function diff(a, b, path)
  if type(a) ~= type(b) then return path, a, b end
  if type(a) ~= "table" then
    if a ~= b then return path, a, b end
    return nil
  end
  local keys = {}
  for k in pairs(a) do keys[#keys + 1] = k end
  for k in pairs(b) do if a[k] == nil then keys[#keys + 1] = k end end
  table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
  for _, k in ipairs(keys) do
    if not is_timing(k) then
      local p = type(k) == "number" and string.format("%s[%d]", path, k) or (path .. "." .. tostring(k))
      local dp, da, db = diff(a[k], b[k], p)
      if dp then return dp, da, db end
    end
  end
  return nil
end

local function show(v)
  if type(v) == "number" then return string.format("%.17g", v) end
  if type(v) == "table" then return "(a table)" end
  return tostring(v)
end

-- compare(plan, ran) -> true if identical (prints the verdict)
function M.compare(plan, ran)
  local old = assert(load_record(plan.rundir))
  local new, err = load_record(plan.out)
  if not ran or not new then
    print(string.format("qd replay: the rerun of %s failed%s", plan.rundir,
      new and "" or (" (" .. tostring(err) .. ")")))
    return false
  end
  local nvals = 0
  for _, part in ipairs { "settings", "metrics" } do
    local p, a, b = diff(old[part], new[part], part)
    if p then
      print(string.format("qd replay: DIFFERENT — %s: %s in %s, %s in %s", p, show(a), plan.rundir,
        show(b), plan.out))
      return false
    end
    for _ in pairs(old[part] or {}) do nvals = nvals + 1 end
  end
  local nbytes = 0
  local files = old.files or {}
  for _, f in ipairs(files) do
    local x = record.read_file(plan.rundir .. "/" .. f)
    local y = record.read_file(plan.out .. "/" .. f)
    if not x then
      print("qd replay: DIFFERENT — " .. f .. " is missing from " .. plan.rundir)
      return false
    end
    if not y then
      print("qd replay: DIFFERENT — the rerun wrote no " .. f)
      return false
    end
    if x ~= y then
      local k = 1
      while k <= #x and x:byte(k) == y:byte(k) do k = k + 1 end
      print(string.format("qd replay: DIFFERENT — %s differs from byte %d (sizes %d and %d)", f, k - 1, #x, #y))
      return false
    end
    nbytes = nbytes + #x
  end
  print(string.format("qd replay: identical — %d settings and metrics, %d file%s (%d bytes) bit for bit; " ..
    "new record in %s", nvals, #files, #files == 1 and "" or "s", nbytes, plan.out))
  return true
end

-- digest(dir) -> lines "settings <sha256>", "metrics <sha256>", "file <name> <sha256>": what a
-- run computed, timings excepted (the settings and metrics as canonical JSON: keys sorted,
-- doubles as %.17g). tests/golden.lua compares these with stored ones.
local function canonical(v)
  if type(v) ~= "table" then return json.encode(v) end
  local keys = {}
  for k in pairs(v) do
    if not is_timing(k) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = json.encode(tostring(k)) .. ":" .. canonical(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

function M.digest(dir)
  local doc, err = load_record(dir)
  if not doc then return nil, err end
  local lines = {
    "settings " .. sys.sha256(canonical(doc.settings or {})),
    "metrics " .. sys.sha256(canonical(doc.metrics or {})),
  }
  local files = {}
  for _, f in ipairs(doc.files or {}) do files[#files + 1] = f end
  table.sort(files)
  for _, f in ipairs(files) do
    local h, e = sys.sha256_file(dir .. "/" .. f)
    if not h then return nil, e end
    lines[#lines + 1] = "file " .. f .. " " .. h
  end
  return lines
end

return M
