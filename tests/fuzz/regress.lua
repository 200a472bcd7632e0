-- regress.lua — every crash the fuzzers found, as a one-line script (tests/fuzz/FINDINGS.md
-- has the seed and the function at fault). Each runs under pcall and must raise a Lua
-- error with a non-empty message (or, where `may_succeed` is set, return normally): never
-- crash. Scripts see qd and the helpers of lib.lua (MT, FREED, PROXY, DEEP).
-- `open = true` marks a finding not fixed yet: it is skipped with a SKIP line naming the
-- reproducer, so make check stays green until the fix lands. REMOVE `open = true` WHEN
-- THE FIX IS IN (and drop its entry from the KNOWN list in api.lua), so it becomes a test.
-- Usage: qd tests/fuzz/regress.lua (run by tests/fuzz/run.sh, hence by make check).
local dir = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "."
local L = dofile(dir .. "/lib.lua")

local CASES = {
  -- known before the fuzzer (issue 10); fixed in the bindings (the fuzzer finds this class)
  { id = "K1a", script = [[getmetatable(qd.state(1)).__tostring({})]] },
  { id = "K1b", script = [[getmetatable(qd.state(1)).__index({}, "n")]] },
  { id = "K2", script = [[qd.schedule.piecewise{PROXY({0.1, 0.2}, {len = -1})}]] },
  { id = "K3", script = [[qd.ensemble.from(PROXY({qd.state(1), qd.state(1)}, {len = 1e18}))]] },
  { id = "K4", script = [[qd.sse(qd.state(1), {dt = 0.01, steps = 2, measure = {qd.pauli_sum("Z")}, feedback = {terms = PROXY({"X"}, {len = -1}), fn = function() return {0.1} end}})]] },
  -- found by the fuzzer (FINDINGS.md)
  { id = "F1", script = [[qd.state(1).measure(qd.ensemble(2, 3), {0}, qd.rng(1))]] },
  { id = "F2", may_succeed = true, script = [[qd.save_ensembles("o.npy", PROXY({qd.ensemble(1, 2), qd.ensemble(1, 2)}, {after = 2, junk = "tbl"}))]] },
  -- hangs / slow errors (not crashes)
  { id = "H1", script = [[qd.ansatz.ry_rz_cz(1, 2^40 | 0)]] },
  { id = "F4", script = [[MT.DensityMatrix.__div(FREED(qd.dm(qd.haar_state(3, qd.rng(605)))), 2.0)]] },
  { id = "F5", script = [[MT.DensityMatrix.__sub(FREED(qd.dm(qd.haar_state(3, qd.rng(458)))), qd.maximally_mixed(3))]] },
  { id = "H3", script = [[qd.pauli_sum(PROXY({{-1.0, "I"}, {{0.5, 0.1}, "Y"}}, {len = 9007199254740992, after = 0, junk = (0/0)}))]] },
  { id = "H2", script = [[qd.loss.mmd_bits_samples({0, 1, 3}, PROXY({"01", "11"}, {len = 2147483648}), {sigma = 1.0})]] },
  { id = "H4", script = [[qd.loss.mmd_bits_orders(qd.rng(594):uniform(0, 1, 16), PROXY({0.0625, 0.0625, 0.0625, 0.0625, 0.0625, 0.0625, 0.0625, 0.0625, 0.0625, 0.0625, 0.0625, 0.0625, 0.0625, 0.0625, 0.0625, 0.0625}, {len = 2147483648}), {grad = true, sigma = 1.0})]] },
  { id = "H5", script = [[qd.ensemble.haar(5, 3, qd.rng(343)):evolve(qd.pauli_sum.tfim(5, 0.2), -9.2233720368547758e+18, {method = "krylov"})]] },
}

local env = setmetatable({ MT = L.MT, FREED = L.FREED, PROXY = L.PROXY, DEEP = L.DEEP, FREE = L.FREE },
  { __index = _G })
local passed, failed = 0, 0
for _, c in ipairs(CASES) do
  if c.open then
    print(string.format("SKIP %s (open finding): %s", c.id, c.script))
  else
    local f, err = load(c.script, "=" .. c.id, "t", env)
    local ok, e
    if f then ok, e = pcall(f) else ok, e = false, err end
    if (not ok and type(e) == "string" and e ~= "") or (ok and c.may_succeed) then
      passed = passed + 1
    else
      failed = failed + 1
      print(string.format("FAIL %s: %s -> %s", c.id, c.script, ok and "no error" or ("error value " .. tostring(e))))
    end
    collectgarbage()
  end
end
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
