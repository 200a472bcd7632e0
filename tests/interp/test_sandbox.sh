#!/usr/bin/env bash
# test_sandbox.sh — qd --sandbox, the run limits, and qd replay (docs/cli.md).
#   bash tests/interp/test_sandbox.sh path/to/qd
# Every escape from the sandbox we could think of is tried and must be refused (and have
# no effect); what a protocol needs must work; --max-seconds / --max-memory stop a run with
# a message and its partial record; qd replay reproduces runs and notices changes.
# Ends with one line "N passed, N failed"; exits non-zero if anything failed.

QD=${1:?usage: test_sandbox.sh path/to/qd}
case $QD in /*) ;; *) QD=$PWD/$QD ;; esac
[ -x "$QD" ] || { echo "test_sandbox.sh: $QD is not an executable"; exit 2; }
SRC=$(cd "$(dirname "$0")/../.." && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qd-sandbox.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 2
unset QD_THREADS
export QD_HISTORY=

passed=0 failed=0
pass() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    echo "FAIL: $1"
    printf '  rc=%s\n  stdout: %s\n  stderr: %s\n' "$rc" "${out:0:400}" "${err:0:600}"
}
run() { out=$("$@" </dev/null 2>"$tmp/stderr"); rc=$?; err=$(cat "$tmp/stderr"); }

mkdir -p outside
echo "secret" >outside/secret.txt

# escape NAME LUA-CODE EXPECTED-ERROR-PATTERN: the code, run sandboxed, must fail with a
# message matching the pattern, and must not have created outside/pwned
escape() {
    local name=$1 code=$2 pat=$3
    rm -f outside/pwned
    printf '%s\n' "$code" >escape.lua
    run "$QD" --sandbox escape.lua --out box
    if [ "$rc" -ne 1 ] || ! grep -Eq -- "$pat" <<<"$err" || [ -e outside/pwned ]; then
        fail "sandbox refuses: $name (expected exit 1 and /$pat/)"
    else
        pass
    fi
}

P="$tmp/outside/pwned"
escape "os.execute" "os.execute('touch $P')" "attempt to call a nil value \(field 'execute'\)"
escape "io.popen" "io.popen('touch $P')" "attempt to call a nil value \(field 'popen'\)"
escape "package.loadlib" "package.loadlib('libc.so.6', 'system')" "field 'loadlib'"
escape "C module through cpath" "package.cpath = '/usr/lib/x86_64-linux-gnu/lua/5.4/?.so'; require 'lpeg'" "no module 'lpeg'"
escape "debug library" "debug.getregistry()" "field 'getregistry'"
escape "debug.getlocal" "debug.getlocal(1, 1)" "field 'getlocal'"
escape "debug.getinfo 'f'" "local f = debug.getinfo(1, 'f').func" "only options of"
escape "debug.getinfo of a function" "debug.getinfo(print)" "a stack level expected"
escape "require 'debug'" "require('debug').getregistry()" "no module 'debug'"
escape "require of a path" "require '../../../etc/passwd'" "no module"
escape "require through package.path" "package.path = '$tmp/outside/?.lua'; require 'evil'" "no module 'evil'"
printf 'io.open("%s", "w"):close()\n' "$P" >outside/evil.lua
escape "io.open read outside" "print(io.open('$tmp/outside/secret.txt'):read('a'))" "sandbox: no read access"
escape "io.open /etc/passwd" "io.open('/etc/passwd')" "sandbox: no read access"
# the digits file of qd.data.digits is readable (interp/main.c), its directory is not
DIGITS=/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
if [ -f "$DIGITS" ]; then
    escape "a file next to the digits" "io.open('$(dirname "$DIGITS")/iris.csv')" "sandbox: no read access"
    printf 'print(qd.data.digits{n_classes = 2, ds_size = 10}.source)\n' >digits.lua
    run "$QD" --sandbox digits.lua --out box
    if [ "$rc" -eq 0 ] && [ "$out" = digits ]; then pass; else fail "sandbox reads the digits file"; fi
fi
escape "io.open write outside" "io.open('$P', 'w')" "sandbox: no write access"
escape "io.open append outside" "io.open('$P', 'a+')" "sandbox: no write access"
escape "io.open through .." "io.open('box/../outside/pwned', 'w')" "sandbox: no write access"
escape "io.lines outside" "for l in io.lines('$tmp/outside/secret.txt') do print(l) end" "sandbox: no read access"
escape "io.input outside" "io.input('$tmp/outside/secret.txt')" "sandbox: no read access"
escape "io.output outside" "io.output('$P')" "sandbox: no write access"
escape "os.remove outside" "assert(os.remove('$tmp/outside/secret.txt'))" "sandbox: no write access"
escape "os.rename out of the box" "io.open('box/x', 'w'):close(); assert(os.rename('box/x', '$P'))" "sandbox: no write access"
escape "os.tmpname" "os.tmpname()" "field 'tmpname'"
escape "io.tmpfile" "io.tmpfile()" "field 'tmpfile'"
escape "loadfile outside" "loadfile('$tmp/outside/evil.lua')()" "sandbox: no read access"
escape "dofile outside" "dofile('$tmp/outside/evil.lua')" "sandbox: no read access"
escape "string.dump" "load(string.dump(function() end))" "field 'dump'"
escape "binary chunk through load" "load('\\27Lua' .. ('x'):rep(40), 'b', 'b')" "binary"
escape "binary chunk, mode bt" "assert(load('\\27Lua' .. ('x'):rep(40), 'b', 'bt'))" "binary"
escape "binary chunk, default mode" "assert(load('\\27LuaT\\0' .. ('x'):rep(40)))" "attempt to load a binary chunk"
escape "load with a custom env" "load(\"io.open('$P', 'w')\", 'x', 't', {io = io})()" "sandbox: no write access"
escape "string metatable" "local s = getmetatable('').__index; s.dump(print)" "field 'dump'"
escape "collectgarbage stop" "collectgarbage('stop')" "invalid option 'stop'"
escape "qd.load_npy outside" "qd.load_npy('/etc/passwd')" "sandbox: no read access"
escape "save_npy outside" "qd.state(1):save_npy('$P')" "sandbox: no write access"
escape "save_ensembles outside" "qd.save_ensembles('$P', {qd.ensemble.haar(1, 2)})" "sandbox: no write access"
escape "core.sys.write_atomic outside" "assert(require('qd.core').sys.write_atomic('$P', 'x'))" "sandbox: no write access"
escape "core.sys.mkdir_p outside" "assert(require('qd.core').sys.mkdir_p('$tmp/outside/pwned'))" "sandbox: no write access"
escape "record into another directory" "require('qd.record').open('$tmp/outside/pwned', {name = 'x'})" "sandbox: no write access"
ln -s "$tmp/outside" box/link 2>/dev/null || { mkdir -p box && ln -s "$tmp/outside" box/link; }
escape "symlink out of the box (read)" "io.open('box/link/secret.txt')" "sandbox: no read access"
escape "symlink out of the box (write)" "io.open('box/link/pwned', 'w')" "sandbox: no write access"
ln -s "$tmp/outside/pwned" box/dangling
escape "dangling symlink in the box" "io.open('box/dangling', 'w')" "sandbox: no write access"
escape "os.getenv" "assert(os.getenv('HOME'), 'no HOME')" "no HOME"

# os.exit ends the script with its status, not the sandbox
printf 'print("before")\nos.exit(3)\nprint("after")\n' >exit.lua
run "$QD" --sandbox exit.lua --out box
if [ "$rc" -eq 3 ] && [ "$out" = before ]; then pass; else fail "os.exit(3) under the sandbox exits 3"; fi

# what a protocol needs works: its own directory, an input named on the command line
"$QD" -e 'qd.state(2):h(0):save_npy("input.npy")' || fail "making input.npy"
cat >ok.lua <<'EOF'
local cli = require "qd.cli"
local record = require "qd.record"
local opts = cli.parse(arg, { name = "ok", options = { { "out", "", "dir" }, { "input", "", "file" } } })
local s = qd.load_npy(opts.input)
local rec = record.open(opts.out, { name = "ok", seed = 1 })
rec.metrics.purity = qd.purity(s)
s:save_npy(rec:path("s.npy"))
local f = assert(io.open(rec.dir .. "/note.txt", "w")); f:write("hi"); f:close()
for line in io.lines(rec.dir .. "/note.txt") do assert(line == "hi") end
assert(not pcall(function() local g = io.open(opts.input, "w") end))
rec:save()
print("ok")
EOF
run "$QD" --sandbox ok.lua --out okrun --input input.npy
if [ "$rc" -eq 0 ] && [ "$out" = ok ] && [ -f okrun/run.json ] && [ -f okrun/s.npy ]; then pass
else fail "a sandboxed protocol reads its input and writes its run directory"; fi
# the input file is recorded with its hash, and replay reproduces the run
if grep -q '"sha256"' okrun/run.json; then pass; else fail "run.json records the input's SHA-256"; fi
run "$QD" replay okrun
if [ "$rc" -eq 0 ] && grep -q "identical" <<<"$out" && [ -f okrun-replay/s.npy ]; then pass
else fail "qd replay of a sandboxed run"; fi
# a changed input is noticed
"$QD" -e 'qd.state(2):x(0):save_npy("input.npy")'
run "$QD" replay okrun
if [ "$rc" -ne 0 ] && grep -q "input file input.npy changed" <<<"$err"; then pass
else fail "qd replay refuses a changed input"; fi
"$QD" -e 'qd.state(2):h(0):save_npy("input.npy")'
# an edited record is noticed: metrics
sed -i 's/"purity": [0-9.eE+-]*/"purity": 0.5/' okrun/run.json
run "$QD" replay okrun --out rep2
if [ "$rc" -eq 1 ] && grep -q "DIFFERENT — metrics.purity" <<<"$out"; then pass
else fail "qd replay reports the first differing metric"; fi
# ... and the script text
sed -i 's/print(\\"ok\\")/print(\\"ko\\")/' okrun/run.json
run "$QD" replay okrun --out rep3
if [ "$rc" -ne 0 ] && grep -q "does not match its SHA-256" <<<"$err"; then pass
else fail "qd replay refuses a record whose script was edited"; fi
# replay never writes into an existing record
run "$QD" replay okrun-replay --out okrun
if [ "$rc" -ne 0 ] && grep -q "already holds a run record" <<<"$err"; then pass
else fail "qd replay --out an existing record is refused"; fi

# without --out a sandboxed run gets a fresh directory of its own
printf 'local r = require("qd.record").open(nil, {name = "x"}); r:save(); print(r.dir)\n' >fresh.lua
run "$QD" --sandbox fresh.lua
d1=$out
run "$QD" --sandbox fresh.lua
if [ -n "$d1" ] && [ "$d1" != "$out" ] && [ -f "$d1/run.json" ] && [ -f "$out/run.json" ]; then pass
else fail "two sandboxed runs get two directories ($d1, $out)"; fi

# limits: CPU time (Lua loop and a C kernel), memory (Lua heap and qd buffers)
cat >spin.lua <<'EOF'
local rec = require("qd.record").open("spinrun", { name = "spin" })
rec:save()
while true do end
EOF
t0=$(date +%s)
run timeout 60 "$QD" --max-seconds 1 spin.lua
if [ "$rc" -eq 1 ] && grep -q "CPU time limit of 1 s reached" <<<"$err" && \
   grep -q '"status": "interrupted"' spinrun/run.json && [ $(($(date +%s) - t0)) -lt 30 ]; then pass
else fail "--max-seconds stops a Lua loop and saves the partial record"; fi
cat >lind.lua <<'EOF'
local H = qd.pauli_sum.tfim(8, 1)
local rho = qd.dm(qd.state(8))
qd.lindblad(rho, H, { qd.pauli_sum.sigma_minus(8, 0) }, 1e4, { rtol = 1e-12, max_steps = 1e9 })
EOF
t0=$(date +%s)
run timeout 60 "$QD" --max-seconds 2 lind.lua
if [ "$rc" -eq 1 ] && grep -q "CPU time limit of 2 s reached" <<<"$err" && [ $(($(date +%s) - t0)) -lt 30 ]; then pass
else fail "--max-seconds stops a long C kernel (qd.lindblad)"; fi
# Ctrl-C inside a long C kernel stops it within a step
if command -v timeout >/dev/null; then
    t0=$(date +%s)
    run timeout --preserve-status -s INT 2 "$QD" lind.lua
    if [ "$rc" -eq 1 ] && grep -q "interrupted" <<<"$err" && [ $(($(date +%s) - t0)) -lt 20 ]; then pass
    else fail "Ctrl-C stops qd.lindblad"; fi
    # an interrupted example saves its partial record and says how to resume
    # (the circle task at the paper's settings trains for minutes: certain to be running;
    # a checkpoint after every epoch: certain to exist by then)
    run timeout --preserve-status -s INT 3 "$QD" --threads 1 "$SRC/examples/quddpm_circle.lua" --quiet \
        --ckpt-every 1 --out intr
    if [ "$rc" -eq 1 ] && grep -q "partial run record written to intr/run.json" <<<"$err" && \
       grep -q "resume with: qd .*quddpm_circle.lua --resume intr" <<<"$err" && \
       grep -q '"status": "interrupted"' intr/run.json; then pass
    else fail "an interrupted example writes its partial record and says how to resume"; fi
    run "$QD" --threads 1 "$SRC/examples/quddpm_circle.lua" --quiet --out intr
    if [ "$rc" -ne 0 ] && grep -q "already holds a run record" <<<"$err"; then pass
    else fail "an --out holding a record is refused"; fi
fi
# a long single call shows a progress line on a terminal (and nothing through a pipe)
cat >long.lua <<'EOF'
local H = qd.pauli_sum.tfim(6, 1)
local rho = qd.dm(qd.state(6))
qd.lindblad(rho, H, { qd.pauli_sum.sigma_minus(6, 0) }, 80, { rtol = 1e-10 })
print("done")
EOF
if command -v script >/dev/null; then
    out=$(timeout 120 script -qc "$QD long.lua" /dev/null | tr '\r' '\n'); rc=$?
    if grep -q 'qd.lindblad: .*%' <<<"$out" && grep -q 'done' <<<"$out"; then pass
    else fail "a long qd.lindblad shows progress on a terminal"; fi
    run "$QD" long.lua
    if [ "$out" = done ]; then pass; else fail "no progress line through a pipe"; fi
fi
run "$QD" --max-memory 200M -e 'local t = {} for i = 1, 1e8 do t[i] = {i} end'
if [ "$rc" -eq 1 ] && grep -q "max-memory limit of 200 MiB" <<<"$err"; then pass
else fail "--max-memory stops Lua allocations"; fi
run "$QD" --max-memory 200M -e 'local s = qd.state(26)'
if [ "$rc" -eq 1 ] && grep -q "not enough memory" <<<"$err" && grep -q "max-memory" <<<"$err"; then pass
else fail "--max-memory stops qd buffers"; fi
run "$QD" --max-memory 200M -e 'local s = qd.state(20); print(qd.purity(s))'
if [ "$rc" -eq 0 ]; then pass; else fail "--max-memory leaves room for what fits"; fi
run "$QD" --max-memory 12Q -e '1'
if [ "$rc" -eq 2 ] && grep -q "bad value for --max-memory" <<<"$err"; then pass; else fail "--max-memory validation"; fi
run "$QD" --max-seconds -1 -e '1'
if [ "$rc" -eq 2 ] && grep -q "bad value for --max-seconds" <<<"$err"; then pass; else fail "--max-seconds validation"; fi
run "$QD" replay
if [ "$rc" -eq 2 ] && grep -q "needs a run directory" <<<"$err"; then pass; else fail "qd replay without a directory"; fi
run "$QD" replay nowhere
if [ "$rc" -eq 1 ] && grep -q "no run record in nowhere" <<<"$err"; then pass; else fail "qd replay of a missing directory"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
