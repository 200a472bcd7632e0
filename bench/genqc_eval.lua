-- bench/genqc_eval.lua — qd's side of bench/genqc_eval.sh: B random 5-qubit {h, cx} token
-- circuits with 16 time steps (a few malformed), written to DIR/tokens.npy, then the
-- evaluation (decode + validity, SRV from |0...0>, gate counts, uniqueness keys) timed as one
-- qd.synth.evaluate call (minimum over 3 runs) and as the bare C batch (core.synth.eval).
--   qd bench/genqc_eval.lua B DIR  -> "RESULT seconds_evaluate seconds_core B valid checksum unique"
local B, dir = tonumber(arg[1]) or 100000, arg[2] or "/tmp"
local n, G, vocab = 5, 16, { "h", "cx" }
local T = qd.tokens.random(n, G, vocab, B, qd.rng(1), { min_gates = 1 })
-- every 50th circuit malformed (a control without its target)
for b = 1, B, 50 do T:set(1, b, -2); T:set(2, b, 0); T:set(3, b, 0); T:set(4, b, 0); T:set(5, b, 0) end
qd.tokens.save(dir .. "/tokens.npy", T, n)
local core = require("qd.core").synth
local best, bestc, ev, r = math.huge, math.huge, nil, nil
for _ = 1, 3 do
  local t0 = qd.clock()
  ev = qd.synth.evaluate(T, { qubits = n, vocab = vocab, srv = { 2, 2, 2, 2, 2 } })
  best = math.min(best, qd.clock() - t0)
  t0 = qd.clock()
  r = core.eval(T, n, vocab, { keys = "ops" })
  bestc = math.min(bestc, qd.clock() - t0)
end
local valid, checksum, uniq, seen = 0, 0, 0, {}
for b = 1, B do
  if r.valid[b] == 1 then
    valid = valid + 1
    for q = 1, n do checksum = checksum + math.tointeger(r.srv:get(q, b)) * q end
    if not seen[r.keys[b]] then seen[r.keys[b]] = true; uniq = uniq + 1 end
  end
end
assert(math.abs(ev.valid_fraction - valid / B) < 1e-12)
print(string.format("RESULT %.6f %.6f %d %d %d %d", best, bestc, B, valid, checksum, uniq))
