-- golden.lua — what every example computes, pinned: the SHA-256 of its run record's
-- settings and metrics (timings excepted) and of each data file, against the digests stored
-- in tests/data/golden/<example>.txt. A change that moves any bit of any result fails here
-- (refactoring must not); a deliberate change of results updates the file:
--   qd tests/golden.lua check  RUNDIR tests/data/golden/NAME.txt
--   qd tests/golden.lua update RUNDIR tests/data/golden/NAME.txt
-- Results do not depend on the kernel set or the thread count (docs/api.md), so the
-- digests hold on any x86-64 CPU.
local replay = require "qd.replay"
local record = require "qd.record"
local mode, dir, file = arg[1], arg[2], arg[3]
if (mode ~= "check" and mode ~= "update") or not dir or not file then
  io.stderr:write("usage: qd tests/golden.lua check|update RUNDIR DIGESTFILE\n")
  os.exit(2)
end
local lines, err = replay.digest(dir)
if not lines then
  io.stderr:write("golden: " .. tostring(err) .. "\n")
  os.exit(1)
end
local text = table.concat(lines, "\n") .. "\n"
if mode == "update" then
  record.write_atomic(file, text)
  print("golden: wrote " .. file)
  os.exit(0)
end
local want = record.read_file(file)
if not want then
  print("golden: no stored digests " .. file .. " (make them with: qd tests/golden.lua update " .. dir .. " " .. file .. ")")
  print("0 passed, 1 failed")
  os.exit(1)
end
local w = {}
for l in want:gmatch("[^\n]+") do w[#w + 1] = l end
local passed, failed = 0, 0
for i = 1, math.max(#w, #lines) do
  if w[i] == lines[i] then
    passed = passed + 1
  else
    failed = failed + 1
    print(string.format("FAIL golden %s: stored '%s', this run '%s'", file, tostring(w[i]), tostring(lines[i])))
  end
end
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
