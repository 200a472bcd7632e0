-- summarize.lua — one metric over several run records: each run's value, then the mean,
-- minimum and maximum, and the total training time.
--   qd scripts/summarize.lua METRIC RUNDIR...      e.g. fidelity runs/qgdm-n2-pure-*
local json = require "qd.json"
local record = require "qd.record"
local metric = arg[1]
if not metric or not arg[2] then
  io.stderr:write("usage: qd scripts/summarize.lua METRIC RUNDIR...\n")
  os.exit(2)
end
local vals, secs = {}, 0
for i = 2, #arg do
  local text = record.read_file(arg[i] .. "/run.json")
  local ok, doc = pcall(json.decode, text or "")
  local v = ok and type(doc) == "table" and doc.metrics and doc.metrics[metric]
  if type(v) ~= "number" then
    io.stderr:write("summarize: " .. arg[i] .. ": no numeric metrics." .. metric .. "\n")
    os.exit(1)
  end
  vals[#vals + 1] = v
  secs = secs + ((doc.timing or {}).train_seconds or 0)
  print(string.format("  %-40s %s %.6f", arg[i], metric, v))
end
local s, lo, hi = 0, math.huge, -math.huge
for _, v in ipairs(vals) do s, lo, hi = s + v, math.min(lo, v), math.max(hi, v) end
print(string.format("%d runs: mean %.6f  min %.6f  max %.6f  (training %.1f s in all)", #vals, s / #vals, lo, hi, secs))
