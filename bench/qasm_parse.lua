-- qasm_parse.lua — how fast qd.circuit.from_qasm reads OpenQASM (issue 20), against the
-- reader it replaced (the all-Lua lexer and parser of stdlib/qd/qasm.lua at commit 2cd3370,
-- read with `git show`, so it needs a git checkout; skipped otherwise).
--
--   build/qd bench/qasm_parse.lua [GATES]       (default 200000)
--
-- File A is QASMBench/Qiskit-shaped OpenQASM 2: 16 qubits, one qelib1 gate per line (h x t
-- tdg s sdg cx rz u3 u2 cu1 ccx, literal angles and pi expressions), measurements at the
-- end: the shape the C scanner (runtime/lua/lua_qasm.c) reads. File B has the same number
-- of ops made by calling a gate the file defines (the Lua parser expands those). Every
-- timing is wall time, the minimum over repeats; the circuits read by the readers are
-- compared op for op.
local G = tonumber(arg[1] or 200000)
local rng = qd.rng(2026)
local N = 16

local function fileA()
  local t = { "OPENQASM 2.0;", 'include "qelib1.inc";', "qreg q[" .. N .. "];", "creg c[" .. N .. "];" }
  local one = { "h", "x", "t", "tdg", "s", "sdg" }
  for k = 1, G do
    local a, b = rng:integer(0, N - 1), rng:integer(0, N - 2)
    if b >= a then b = b + 1 end
    local u = rng:uniform()
    if u < 0.35 then t[#t + 1] = string.format("cx q[%d],q[%d];", a, b)
    elseif u < 0.6 then t[#t + 1] = string.format("%s q[%d];", one[rng:integer(1, 6)], a)
    elseif u < 0.75 then t[#t + 1] = string.format("rz(%.17g) q[%d];", rng:uniform(-3, 3), a)
    elseif u < 0.85 then t[#t + 1] = string.format("u3(%.17g,%.17g,pi/2) q[%d];", rng:uniform(), rng:uniform(), a)
    elseif u < 0.9 then t[#t + 1] = string.format("u2(0,pi) q[%d];", a)
    elseif u < 0.97 then t[#t + 1] = string.format("cu1(pi/%d) q[%d],q[%d];", rng:integer(1, 64), a, b)
    else
      local c = (a + 1 + (b == (a + 1) % N and 1 or 0)) % N
      while c == a or c == b do c = (c + 1) % N end
      t[#t + 1] = string.format("ccx q[%d],q[%d],q[%d];", a, b, c)
    end
  end
  for q = 0, N - 1 do t[#t + 1] = string.format("measure q[%d] -> c[%d];", q, q) end
  return table.concat(t, "\n") .. "\n"
end

local function fileB()
  local t = { "OPENQASM 2.0;", 'include "qelib1.inc";', "qreg q[" .. N .. "];",
              "gate zz(theta) a,b { cx a,b; u1(theta) b; cx a,b; }" }
  for _ = 1, G // 3 do
    local a, b = rng:integer(0, N - 1), rng:integer(0, N - 2)
    if b >= a then b = b + 1 end
    t[#t + 1] = string.format("zz(%.17g) q[%d],q[%d];", rng:uniform(-1, 1), a, b)
  end
  return table.concat(t, "\n") .. "\n"
end

local function best(f, reps)
  local tmin, out = math.huge, nil
  for _ = 1, reps do
    collectgarbage()
    local t0 = qd.clock()
    out = f()
    tmin = math.min(tmin, qd.clock() - t0)
  end
  return tmin, out
end

local function same(c1, c2)
  local a, b = c1:ops(), c2:ops()
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i].name ~= b[i].name or table.concat(a[i].qubits, ",") ~= table.concat(b[i].qubits, ",") then return false end
    for j, p in ipairs(a[i].params or {}) do
      if math.abs(p.value - b[i].params[j].value) > 1e-15 * math.max(1, math.abs(p.value)) then return false end
    end
  end
  return true
end

local old
do
  local p = io.popen("git show 2cd3370:stdlib/qd/qasm.lua 2>/dev/null")
  local src = p and p:read("a")
  if p then p:close() end
  if src and #src > 0 then old = load(src, "=qasm_2cd3370")() end
end

local fails = 0
local function report(label, text, ops, reps_old)
  local mb = #text / 1e6
  local tf, cf = best(function() return qd.circuit.from_qasm(text) end, 3)
  local tl, cl = best(function() return qd.circuit.from_qasm(text, { fast = false }) end, 1)
  print(string.format("%s: %d ops, %.1f MB", label, #cf:ops(), mb))
  print(string.format("  from_qasm (C scanner + Lua)   %8.3f s  %10.0f ops/s", tf, ops / tf))
  print(string.format("  from_qasm {fast = false}      %8.3f s  %10.0f ops/s", tl, ops / tl))
  if not same(cf, cl) then print("  CHECK FAILED: the two readers differ"); fails = fails + 1 end
  if old and reps_old > 0 then
    local to, co = best(function() return old.from_qasm(qd, text) end, reps_old)
    print(string.format("  the old reader (2cd3370)      %8.3f s  %10.0f ops/s   -> new/old speed %.1fx", to, ops / to, to / tf))
    if not same(cf, co) then print("  CHECK FAILED: differs from the old reader"); fails = fails + 1 end
  end
  return tf
end

print(string.format("qasm_parse: %d gates, qd %s, kernel set %s", G, qd.version, qd.simd and qd.simd() or "?"))
local tA = report("A (qelib1 gates, one per line)", fileA(), G + N, 1)
report("B (calls of a gate the file defines)", fileB(), 3 * (G // 3), 1)
if G == 200000 then
  print(string.format("target: file A of 200k gates in <= 0.5 s: %.3f s %s", tA, tA <= 0.5 and "ok" or "MISSED"))
  if tA > 0.5 then fails = fails + 1 end
end
print(fails == 0 and "qasm_parse: all checks passed" or ("qasm_parse: " .. fails .. " checks failed"))
