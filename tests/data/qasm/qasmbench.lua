-- qasmbench.lua — reads the QASMBench suite (github.com/pnnl/QASMBench, not part of this
-- repository) with qd.circuit.from_qasm and compares every circuit of at most MAXQ qubits
-- with the independent simulator make_refs.py (final density matrices, measurement and
-- classical control included). Needs /usr/bin/python3 with numpy.
--
--   build/qd tests/data/qasm/qasmbench.lua QASMBENCH_DIR [MAXQ=9]
--
-- Prints one line per file (read / refused with the message / compared, max |rho - ref|)
-- and a summary; exits 1 if a compared circuit differs by more than 1e-10.
local dir, maxq = arg[1], tonumber(arg[2] or 9)
assert(dir, "usage: qd tests/data/qasm/qasmbench.lua QASMBENCH_DIR [MAXQ]")
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. tmp))

local files = {}
for f in io.popen("find '" .. dir .. "'/small '" .. dir .. "'/medium -name '*.qasm' ! -name '*transpiled*' 2>/dev/null | sort"):lines() do
  files[#files + 1] = f
end
local read, refused, compared, worst, bad = 0, 0, 0, 0, 0
local todo = {}
for _, f in ipairs(files) do
  local fh = io.open(f, "rb")
  local text = fh:read("a")
  fh:close()
  local name = f:match("([^/]+)%.qasm$")
  local t0 = qd.clock()
  local ok, c = pcall(qd.circuit.from_qasm, text)
  local dt = qd.clock() - t0
  if not ok then
    refused = refused + 1
    print(string.format("%-28s refused: %s", name, c))
  else
    read = read + 1
    print(string.format("%-28s %2d qubits %7d ops  read in %.3f s", name, c.n, #c, dt))
    if c.n <= maxq then todo[#todo + 1] = { f, name, c } end
  end
end
local paths = {}
for i, t in ipairs(todo) do paths[i] = "'" .. t[1] .. "'" end
if #paths > 0 then
  os.execute("/usr/bin/python3 " .. here .. "make_refs.py --out " .. tmp .. " " .. table.concat(paths, " ") .. " > /dev/null")
end
for _, t in ipairs(todo) do
  local ref = qd.load_npy(tmp .. "/" .. t[2] .. ".rho.npy")
  if ref then
    local rho = t[3]:run(qd.dm(t[3].n)):matrix()
    local d = 0
    local r = rho:shape()
    for i = 1, r do
      for j = 1, r do
        local a, b = rho:get(i, j)
        local x, y = ref:get(i, j)
        d = math.max(d, math.abs(a - x) + math.abs(b - y))
      end
    end
    compared = compared + 1
    worst = math.max(worst, d)
    if d > 1e-10 then bad = bad + 1; print(string.format("DIFFERS %-20s max |rho - ref| = %.3g", t[2], d)) end
  end
end
os.execute("rm -rf " .. tmp)
print(string.format("qasmbench: %d files, %d read, %d refused; %d of at most %d qubits compared, worst %.3g, %d differ",
                    #files, read, refused, compared, maxq, worst, bad))
os.exit(bad == 0 and 0 or 1)
