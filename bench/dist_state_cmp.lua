-- dist_state_cmp.lua A.json B.json P — the largest difference between two observable sets of
-- bench/dist_state.lua (1 rank vs P ranks); exits non-zero above 1e-12
local json, rec = require "qd.json", require "qd.record"
local a = json.decode(assert(rec.read_file(arg[1])))
local b = json.decode(assert(rec.read_file(arg[2])))
local worst = math.abs(a.norm - b.norm)
for i = 1, #a.prob1 do worst = math.max(worst, math.abs(a.prob1[i] - b.prob1[i])) end
for i = 1, #a.zz do worst = math.max(worst, math.abs(a.zz[i] - b.zz[i])) end
print(string.format("largest difference 1 rank vs %s ranks: %.3g (%s)", arg[3], worst,
                    worst <= 1e-12 and "<= 1e-12: ok" or "TOO LARGE"))
os.exit(worst <= 1e-12 and 0 or 1)
