#!/usr/bin/env bash
# test_cli.sh — tests of the `qd` program's command line and prompt (docs/cli.md).
#   bash tests/interp/test_cli.sh path/to/qd
# Runs the binary as a user would: scripts with arguments, -e, stdin, options and their
# validation, error reports, Ctrl-C, the library search path, and the prompt (through a
# pipe, and on a real terminal inside tmux when tmux is installed; skipped otherwise).
# Ends with one line "N passed, N failed"; exits non-zero if anything failed.
# Nothing here depends on timing except generous upper bounds on waits.

QD=${1:?usage: test_cli.sh path/to/qd}
case $QD in /*) ;; *) QD=$PWD/$QD ;; esac
[ -x "$QD" ] || { echo "test_cli.sh: $QD is not an executable"; exit 2; }
SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qd-cli.XXXXXX")
tmux_sock=$tmp/tmux.sock
cleanup() {
    if [ -S "$tmux_sock" ]; then tmux -S "$tmux_sock" kill-server 2>/dev/null; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# Hermetic: no thread count or history from the caller's environment. QD_PATH is kept:
# a binary outside the source tree may need it to find stdlib.
unset QD_THREADS
export QD_HISTORY=

passed=0 failed=0 skipped=0
pass() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    echo "FAIL: $1"
    [ -n "${2:-}" ] && printf '  %s\n' "$2"
    printf '  rc=%s\n  stdout: %s\n  stderr: %s\n' "$rc" "${out:0:400}" "${err:0:600}"
}
skip() { skipped=$((skipped + 1)); echo "skip: $1"; }

# run CMD...          runs with stdin from /dev/null; sets out, err, rc
# run_in INPUT CMD... runs with INPUT on stdin
run() { out=$("$@" </dev/null 2>"$tmp/stderr"); rc=$?; err=$(cat "$tmp/stderr"); }
run_in() {
    local input=$1; shift
    out=$(printf '%s' "$input" | "$@" 2>"$tmp/stderr"); rc=$?; err=$(cat "$tmp/stderr")
}
has() { [[ $1 == *"$2"* ]]; }

# expect NAME RC [STDOUT-EXACT]: checks the last run's status (and stdout if given)
expect() {
    local name=$1 want_rc=$2
    if [ "$rc" != "$want_rc" ]; then fail "$name" "exit status $rc, expected $want_rc"; return 1; fi
    if [ $# -ge 3 ] && [ "$out" != "$3" ]; then fail "$name" "stdout differs, expected: $3"; return 1; fi
    pass
}
# expect_err NAME RC TEXT...: status RC and stderr containing every TEXT
expect_err() {
    local name=$1 want_rc=$2 t; shift 2
    if [ "$rc" != "$want_rc" ]; then fail "$name" "exit status $rc, expected $want_rc"; return 1; fi
    for t in "$@"; do
        if ! has "$err" "$t"; then fail "$name" "stderr lacks: $t"; return 1; fi
    done
    pass
}

# the QGDM examples' usage errors: exit 2 with the option named
run "$QD" "$SRCDIR/examples/qgdm.lua" --n 2 --target mixed --rank 5
expect_err "qgdm.lua: --rank above 2^n is a usage error" 2 "--rank 5 exceeds 2^n = 4" "usage: qd qgdm.lua"
run "$QD" "$SRCDIR/examples/qgdm.lua" --target cat
expect_err "qgdm.lua: an unknown target is a usage error" 2 "--target expects one of pure, mixed, gibbs"
run "$QD" "$SRCDIR/examples/qgdm_vs_qgan.lua" --resume /nonexistent
expect_err "qgdm_vs_qgan.lua: --resume is refused by name" 2 "--resume and --stop-after are not supported"
run "$QD" "$SRCDIR/examples/qgdm_vs_qgan.lua" --small --step-weights 1,1,1
expect_err "qgdm_vs_qgan.lua: --step-weights is refused by name, not ignored" 2 "--step-weights is not supported by this comparison"
run "$QD" "$SRCDIR/examples/re_qgdm.lua" --blocks 0
expect_err "re_qgdm.lua: --blocks 0 is a usage error" 2 "--blocks expects a value >= 1"
run "$QD" "$SRCDIR/examples/genqc_train.lua" --steps 7
expect_err "genqc_train.lua: a Gaussian-process option with the masked process is a usage error" 2 "--steps applies to --process gaussian only" "usage: qd genqc_train.lua"
run "$QD" "$SRCDIR/examples/re_qgdm.lua" --step-weights 1,x
expect_err "re_qgdm.lua: --step-weights with a non-number is a usage error" 2 "--step-weights: numbers >= 0 separated by commas expected, got 'x'" "usage: qd re_qgdm.lua"
run "$QD" "$SRCDIR/examples/re_qgdm.lua" --T 3 --step-weights 1,1
expect_err "re_qgdm.lua: --step-weights of the wrong length is a usage error" 2 "--step-weights: 3 weights (one per step, --T) expected, got 2"
# the non-default modes of the reverse-diffusion examples, small: QuDDPM in the generalisation
# sweep, the MLP drift model
run "$QD" "$SRCDIR/examples/generalisation_quantum.lua" --model quddpm --small --quiet --out "$tmp/genq"
if [ "$rc" = 0 ] && has "$out" "generalisation of QuDDPM" && [ -f "$tmp/genq/curves.npy" ]; then pass
else fail "generalisation_quantum.lua --model quddpm --small" "exit $rc: $err"; fi
run "$QD" "$SRCDIR/examples/reverse_multi.lua" --model mlp --small --quiet --out "$tmp/rmlp"
if [ "$rc" = 0 ] && has "$(cat "$tmp/rmlp/run.json")" '"mlp_params"'; then pass
else fail "reverse_multi.lua --model mlp --small" "exit $rc: $err"; fi
run "$QD" "$SRCDIR/examples/reverse_qubit.lua" --model mlp --small --quiet --out "$tmp/rq"
expect_err "reverse_qubit.lua: --model mlp needs the learnt feedback" 1 "option 'model': 'mlp' is a model of the learnt feedback"

cat >"$tmp/args.lua" <<'EOF'
print(#arg, arg[0]:match("args%.lua$") ~= nil, arg[1], arg[2], select("#", ...), ...)
EOF
cat >"$tmp/boom.lua" <<'EOF'
local x = 1
error("boom")
EOF
cat >"$tmp/syntax.lua" <<'EOF'
x = = 1
EOF
cat >"$tmp/neg.lua" <<'EOF'
print(arg[-1], arg[-2], arg[-3] ~= nil, arg[-4])
EOF
echo 'print(v)' >"$tmp/v.lua"

# ---- information
run "$QD" --version
if [ "$rc" = 0 ] && [[ $out =~ ^qd\ [0-9]+\.[0-9]+\.[0-9]+,\ Lua\ 5\.4\.[0-9]+,\ .+ ]]; then pass
else fail "--version prints 'qd X.Y.Z, Lua 5.4.x, <blas>'"; fi

if has "$out" "kernels: " && has "$out" "built: " && has "$out" "this CPU runs: "; then pass
else fail "--version names the kernel set, the sets built in and the sets this CPU runs"; fi

# ---- QD_SIMD: each set this CPU runs is taken; an unknown or unrunnable set is an error
sets=$("$QD" -e 'io.write(table.concat((qd.simd_sets()), " "))')
for s in $sets; do
    run env QD_SIMD="$s" "$QD" -e 'io.write(qd.simd())'
    expect "QD_SIMD=$s is used" 0 "$s"
done
run env QD_SIMD=auto "$QD" -e 'io.write(qd.simd())'
expect "QD_SIMD=auto: the best set" 0 "${sets##* }"
run env QD_SIMD=sse9 "$QD" -e 'print(1)'
expect_err "QD_SIMD=sse9 is an error" 2 "QD_SIMD=sse9: no such kernel set in this build"
for s in $("$QD" -e 'io.write(table.concat(select(2, qd.simd_sets()), " "))'); do
    case " $sets " in *" $s "*) continue ;; esac
    run env QD_SIMD="$s" "$QD" -e 'print(1)'
    expect_err "QD_SIMD=$s on a CPU that cannot run it is an error" 2 "this CPU cannot run that kernel set"
done

run "$QD" --help
ok=1
for t in usage: -e -i --seed --threads --version --help -- QD_PATH QD_THREADS QD_HISTORY QD_SIMD; do
    has "$out" "$t" || { ok=0; fail "--help mentions $t"; break; }
done
[ $ok = 1 ] && expect "--help exits 0" 0
run "$QD" -h
if [ "$rc" = 0 ] && has "$out" usage:; then pass; else fail "-h is --help"; fi

# ---- running code
run "$QD" "$tmp/args.lua" a b
expect "script gets arg and ..." 0 "$(printf '2\ttrue\ta\tb\t2\ta\tb')"
# arg[0] is the script name; ... holds only the arguments
run "$QD" -e 'print(arg[0])' "$tmp/args.lua"
expect "arg[0] is the script" 0 "$(printf '%s\n0\ttrue\tnil\tnil\t0' "$tmp/args.lua")"
run "$QD" --seed 3 "$tmp/neg.lua" x
expect "negative arg indices hold interpreter options" 0 "$(printf '3\t--seed\ttrue\tnil')"
run "$QD" "$tmp/args.lua" --bogus -e x
expect "options after the script belong to the script" 0 \
    "$(printf '3\ttrue\t--bogus\t-e\t3\t--bogus\t-e\tx')"
run "$QD" -- "$tmp/args.lua" --seed
expect "-- ends options" 0 "$(printf '1\ttrue\t--seed\tnil\t1\t--seed')"

run "$QD" -e 'a = 20' -e 'print(a + 22)'
expect "-e is repeatable and runs in order" 0 "42"
run "$QD" -e'print("attached")'
expect "-echunk" 0 "attached"
run "$QD" -e 'v = 5' "$tmp/v.lua"
expect "-e runs before the script" 0 "5"

run_in 'print("from stdin", ...)' "$QD" - x y
expect "- reads the script from stdin" 0 "$(printf 'from stdin\tx\ty')"
run_in 'print(6 * 7)' "$QD"
expect "non-terminal stdin without script runs as a script" 0 "42"
run_in 'print(type(qd), type(help), package.loaded.qd == qd)' "$QD"
expect "globals qd and help are set" 0 "$(printf 'table\tfunction\ttrue')"

run "$QD" -e 'os.exit(3)'
expect "os.exit status is kept" 3

# ---- errors
run "$QD" "$tmp/boom.lua"
expect_err "runtime error: qd: file:line: message and traceback, exit 1" 1 \
    "qd: $tmp/boom.lua:2: boom" "stack traceback:" "in main chunk"
run "$QD" "$tmp/syntax.lua"
expect_err "syntax error reported, exit 1" 1 "qd: $tmp/syntax.lua:1:"
run "$QD" nosuch.lua
expect_err "missing script" 1 "qd: cannot open nosuch.lua"
run "$QD" -e 'error("in chunk")'
expect_err "error in -e chunk" 1 "qd: (command line):1: in chunk" "stack traceback:"
run "$QD" -e 'error(setmetatable({}, {__tostring = function() return "custom object" end}))'
expect_err "error object with __tostring" 1 "qd: custom object"
run "$QD" -e 'error({})'
expect_err "error object without __tostring" 1 "(error object is a table value)"
run "$QD" -e 'print("before")' -e 'error("x")' -e 'print("never")'
expect "stops at the first failing chunk" 1 "before"

# ---- bad command lines: exit 2 with a usage message
for bad in "--bogus" "-x" "-e" "--seed" "--threads"; do
    run "$QD" $bad
    expect_err "bad command line '$bad'" 2 "usage: qd"
done
for s in -1 abc 1.5 " 1" 0x10 99999999999999999999 9223372036854775808 ""; do
    run "$QD" --seed "$s" -e ''
    expect_err "--seed '$s' rejected" 2 "bad value for --seed"
done
for s in 0 42 9223372036854775807; do
    run "$QD" --seed "$s" -e 'print("ok")'
    expect "--seed $s accepted" 0 "ok"
done
run "$QD" --seed=7 -e 'print("ok")'
expect "--seed=N form" 0 "ok"
for t in 0 1025 -2 x 2.0; do
    run "$QD" --threads "$t" -e ''
    expect_err "--threads '$t' rejected" 2 "bad value for --threads"
done
for t in 1 2 1024; do
    run "$QD" --threads "$t" -e 'print("ok")'
    expect "--threads $t accepted" 0 "ok"
done
run "$QD" --threads=1 -e 'print("ok")'
expect "--threads=N form" 0 "ok"
QD_THREADS=0 run "$QD" -e ''
expect_err "QD_THREADS=0 rejected" 2 "bad value for QD_THREADS"
QD_THREADS=3 run "$QD" -e 'print("ok")'
expect "QD_THREADS=3 accepted" 0 "ok"
QD_THREADS=x run "$QD" --threads 2 -e 'print("ok")'
expect "--threads overrides QD_THREADS" 0 "ok"

# The seed reaches the run's generator (when the library exposes it).
run "$QD" --seed 12345 -e 'print(qd.run_rng and tostring(qd.run_rng()):match("12345") ~= nil or "absent")'
if [ "$out" = "absent" ]; then skip "--seed reaches qd.run_rng() (qd.run_rng not provided)"
else expect "--seed reaches qd.run_rng()" 0 "true"; fi

# ---- Ctrl-C while Lua runs: error "interrupted!" with traceback, exit 1
if command -v timeout >/dev/null; then
    # timeout --foreground signals qd alone (plain timeout also signals its whole process
    # group, so qd would get two SIGINTs and the second, by design, kills it)
    out=$(timeout --foreground --preserve-status -k 5 -s INT 1 "$QD" -e 'while true do end' 2>"$tmp/stderr")
    rc=$?; err=$(cat "$tmp/stderr")
    expect_err "SIGINT interrupts a running chunk" 1 "interrupted!" "stack traceback:"
    printf 'local n = 0\nwhile true do n = n + 1 end\n' >"$tmp/loop.lua"
    out=$(timeout --foreground --preserve-status -k 5 -s INT 1 "$QD" "$tmp/loop.lua" 2>"$tmp/stderr")
    rc=$?; err=$(cat "$tmp/stderr")
    expect_err "SIGINT interrupts a script" 1 "interrupted!" "loop.lua:2:"
else
    skip "SIGINT (timeout(1) not installed)"
fi

# ---- library search path
mkdir -p "$tmp/p1/qd" "$tmp/p2/qd" "$tmp/bad/qd"
echo 'return { marker = "p1" }' >"$tmp/p1/qd/init.lua"
echo 'return { marker = "p2", help = function() return "h" end }' >"$tmp/p2/qd/init.lua"
echo 'error("broken library")' >"$tmp/bad/qd/init.lua"
QD_PATH="$tmp/p1;$tmp/p2;${QD_PATH:-}" run "$QD" -e 'print(qd.marker, help)'
expect "QD_PATH is searched first, in order" 0 "$(printf 'p1\tnil')"
QD_PATH="$tmp/nonexistent;$tmp/p2" run "$QD" -e 'print(qd.marker, help())'
expect "QD_PATH skips missing dirs; help = qd.help" 0 "$(printf 'p2\th')"
QD_PATH="$tmp/bad" run "$QD" -e 'print(1)'
expect_err "require 'qd' failing stops qd" 1 "broken library" "cannot load the qd library"

# an installed qd (make install's layout) runs an example from anywhere
mkdir -p "$tmp/prefix/bin" "$tmp/prefix/share/qd"
cp "$QD" "$tmp/prefix/bin/qd" && cp -r "$SRCDIR/stdlib/qd" "$tmp/prefix/share/qd/"
run env -u QD_PATH bash -c "cd '$tmp' && '$tmp/prefix/bin/qd' '$SRCDIR/examples/01_quddpm_forward.lua' --small --quiet --out '$tmp/instrun'"
if [ "$rc" -eq 0 ] && [ -f "$tmp/instrun/run.json" ]; then pass; else fail "an installed qd runs an example"; fi

# where the executable is: PREFIX/bin/qd uses PREFIX/share/qd, build/qd uses ../stdlib
mkdir -p "$tmp/inst/bin" "$tmp/inst/share/qd/qd" "$tmp/src/build" "$tmp/src/stdlib/qd"
cp "$QD" "$tmp/inst/bin/qd" && cp "$QD" "$tmp/src/build/qd"
echo 'return { marker = "installed" }' >"$tmp/inst/share/qd/qd/init.lua"
echo 'return { marker = "source tree" }' >"$tmp/src/stdlib/qd/init.lua"
ln -s "$tmp/inst/bin/qd" "$tmp/qd-link"
run env -u QD_PATH "$tmp/inst/bin/qd" -e 'print(qd.marker)'
expect "PREFIX/bin/qd finds PREFIX/share/qd" 0 "installed"
run env -u QD_PATH "$tmp/src/build/qd" -e 'print(qd.marker)'
expect "build/qd finds ../stdlib" 0 "source tree"
run env -u QD_PATH "$tmp/qd-link" -e 'print(qd.marker)'
expect "a symlink to qd resolves the real location" 0 "installed"

# ---- the prompt through a pipe (not a terminal: no banner, no prompts)
run_in $'x + 1\nlocal y = 2\nfunction f(a)\n  return a * 2\nend\nf(x)\n1 +\n2\n{\n}\nerror("e1")\nprint("after", nil)\nnil, 1\n' \
    "$QD" -i -e 'x = 41'
if [ "$rc" = 0 ] && [ "$(printf '%s\n' "$out" | sed -n '1,3p;5,6p')" = "$(printf '42\n82\n3\nafter\tnil\nnil\t1')" ] &&
   [ "$(printf '%s\n' "$out" | sed -n 4p)" = "{}" ]; then pass
else fail "-i: expressions print, statements do not, multi-line input continues"; fi
has "$err" "stdin:1: e1" && ! has "$err" "qd: stdin" && pass || fail "-i: error reported without 'qd:' and the loop goes on"
printf 'z = 7\n' >"$tmp/setz.lua"
run_in $'z * 6\n' "$QD" -i "$tmp/setz.lua"
expect "-i script: prompt after the script sees its globals" 0 "42"
run_in $'print("unreached")\n' "$QD" -i "$tmp/boom.lua"
expect_err "-i: a failing script exits 1 without the prompt" 1 "boom"
[ -z "$out" ] || fail "-i: no prompt after a failing script"
run_in $'for i = 1,\n' "$QD" -i
expect_err "-i: input ending inside a chunk reports it" 0 "near <eof>"

# ---- the prompt on a terminal (tmux)
if command -v tmux >/dev/null; then
    T() { tmux -S "$tmux_sock" "$@"; }
    screen() { T capture-pane -p -S -200 -t qdt 2>/dev/null; }
    # wait_for REGEX: polls the screen for up to 10 s
    wait_for() {
        local i
        for ((i = 0; i < 300; i++)); do   # up to 30 s: a loaded machine is slow
            screen | grep -qE -- "$1" && return 0
            sleep 0.1
        done
        return 1
    }
    # wait_last REGEX: the last non-empty line of the screen matches
    wait_last() {
        local i
        for ((i = 0; i < 100; i++)); do
            screen | grep -v '^ *$' | tail -n 1 | grep -qE -- "$1" && return 0
            sleep 0.1
        done
        return 1
    }
    typeline() { T send-keys -t qdt -l "$1"; T send-keys -t qdt Enter; }
    tcheck() { # NAME REGEX
        if wait_for "$2"; then pass
        else rc=-; out=$(screen | tail -n 25); err=; fail "terminal: $1" "screen lacks /$2/"; fi
    }
    cmd=$(printf 'env QD_HISTORY=%q QD_PATH=%q %q; echo EXIT=$?; sleep 30' \
        "$tmp/history" "${QD_PATH:-}" "$QD")
    if T new-session -d -s qdt -x 100 -y 40 "$cmd" 2>/dev/null; then
        tcheck "banner" 'qd [0-9.]+ \(Lua 5\.4\) .* Ctrl-D to exit'
        typeline 'x = 41'
        typeline '1+1'
        tcheck "expression prints its value" '^2$'
        typeline 'function f(a)'
        if wait_last '^\.\.>'; then pass
        else rc=-; out=$(screen | tail -n 25); err=; fail "terminal: continuation prompt"; fi
        typeline '  return a * 2'
        typeline 'end'
        typeline 'f(x)'
        tcheck "multi-line function defined and called" '^82$'
        typeline 'print("looping") while true do end'
        if wait_for '^looping$'; then
            T send-keys -t qdt C-c
            tcheck "Ctrl-C stops a running loop" 'interrupted!'
            typeline 'x'
            tcheck "state intact after Ctrl-C" '^41$'
        else
            rc=-; out=$(screen | tail -n 25); err=; fail "terminal: loop started"
        fi
        T send-keys -t qdt -l 'garbage never run'
        wait_for 'garbage never run$'
        T send-keys -t qdt C-c
        typeline '2+3'
        tcheck "Ctrl-C at the prompt drops the line" '^5$'
        T send-keys -t qdt -l 'for i = 1, 2 do'
        T send-keys -t qdt Enter
        wait_last '^\.\.>'
        T send-keys -t qdt C-c
        typeline '"fresh"'
        tcheck "Ctrl-C drops pending continuation lines" '^fresh$'
        if screen | grep -q "syntax error near 'never'"; then
            rc=-; out=; err=; fail "terminal: dropped line was not run"
        else pass; fi
        typeline 'qd.gates().cx'
        tcheck "tables print nested (qd.pretty)" '^\{doc = "controlled X'
        typeline 'qd.state(1)'
        tcheck "qd objects print via tostring" '^qd.State\(1 qubit\)'
        typeline '_'
        tcheck "_ is the last value" '^qd.State\(1 qubit\).*$'
        typeline 'local z = 7'
        typeline 'z * 6'
        tcheck "a top-level local survives to the next line" '^42$'
        typeline '%time 1 + 1'
        tcheck "%time times a line" '^time: wall [0-9.]+ (us|ms|s), cpu'
        typeline '?qd.purity'
        tcheck "?name shows help" 'qd.purity\(x\) -> Tr rho\^2'
        typeline 'cnt = (cnt or 0) + 1 for i = 1, 1 do'
        typeline 'cnt = cnt + 10 end'
        T send-keys -t qdt Up
        T send-keys -t qdt Enter
        typeline 'cnt * 2'
        tcheck "a multi-line chunk is one history entry (Up, Enter reruns it all)" '^44$'
        typeline 'qd.matrix{{1, 2.5}, {40, 5}}'
        tcheck "matrices print aligned" '^  40    5$'
        typeline '(qd.state(1) + qd.state(1):X(0)) / math.sqrt(2) == qd.state(1):h(0)'
        tcheck "arithmetic and == by value" '^true$'
        typeline 'nz = qd.circuit(1):h(0):channel(qd.channel.dephasing{p = 0.5}, {0}):run(qd.dm(1)); print(math.floor(qd.purity(nz) * 1000 + 0.5))'
        tcheck "a noisy circuit on a density matrix" '^500$'
        typeline 'qd.lindblad(qd.dm(qd.state(7)), qd.pauli_sum.tfim(7, 1), {qd.pauli_sum.sigma_minus(7, 0)}, 1e3, {rtol = 1e-12})'
        sleep 2
        T send-keys -t qdt C-c
        tcheck "Ctrl-C stops a long C kernel" 'interrupted'
        typeline 'x'
        tcheck "state intact after interrupting a kernel" '^41$'
        wait_last '^> ?$' || true   # the prompt is back (readline owns the terminal) before Ctrl-D
        T send-keys -t qdt C-d
        tcheck "Ctrl-D exits with status 0" '^EXIT=0$'
        if grep -qx 'x = 41' "$tmp/history" 2>/dev/null && ! grep -q garbage "$tmp/history"; then pass
        else rc=-; out=$(cat "$tmp/history" 2>&1); err=; fail "history saved to QD_HISTORY"; fi
    else
        skip "terminal prompt (tmux could not start a session)"
    fi
else
    skip "terminal prompt (tmux not installed)"
fi

# ---------------------------------------------------------------- example options (qd.cli)
# every option is validated before any work: a bad value is a usage error (message and
# usage on stderr, exit status 2), never a traceback; --resume refuses options that differ
# from the run's
EX="$(dirname "$0")/../../examples"
run "$QD" "$EX/quddpm_cluster.lua" --lr -1
expect_err "--lr -1 is a usage error" 2 "qd: --lr expects a value >= 0, got -1" "usage: qd quddpm_cluster.lua"
run "$QD" "$EX/quddpm_cluster.lua" --seed -3
expect_err "--seed -3 is a usage error" 2 "qd: --seed expects a value >= 0, got -3"
run "$QD" "$EX/quddpm_cluster.lua" --loss foo
expect_err "--loss foo is a usage error" 2 "qd: --loss expects one of '', mmd, wasserstein, sinkhorn, got 'foo'"
run "$QD" "$EX/quddpm_cluster.lua" --n 3
expect_err "--n 3 is a usage error" 2 "qd: --n expects one of 1, 2, got 3" "options:"
run "$QD" "$EX/quddpm_cluster.lua" --best-of=0
expect_err "--best-of=0 is a usage error" 2 "qd: --best-of expects a value >= 1, got 0"
run "$QD" "$EX/quddpm_cluster.lua" --threads 5000
expect_err "--threads 5000 is a usage error" 2 "qd: --threads expects a value <= 1024, got 5000"
run "$QD" "$EX/quddpm_cluster.lua" --seed 1e400
expect_err "--seed 1e400 is a usage error" 2 "qd: --seed expects an integer, got '1e400'"
run "$QD" "$EX/quddpm_cluster.lua" --lr 1e999
expect_err "--lr 1e999 is a usage error" 2 "qd: --lr expects a finite number, got inf"
run "$QD" "$EX/quddpm_cluster.lua" --progress fancy
expect_err "--progress fancy is a usage error" 2 "qd: --progress expects one of auto, live, lines"
run "$QD" "$EX/quddpm_noise.lua" --p 1.5
expect_err "--p 1.5 is a usage error" 2 "qd: --p expects a value <= 1, got 1.5"
run "$QD" "$EX/quddpm_circle.lua" --sinkhorn-eps 0
expect_err "--sinkhorn-eps 0 is a usage error" 2 "qd: --sinkhorn-eps: a value > 0 expected, got 0"
run "$QD" "$EX/01_quddpm_forward.lua" --mode sideways
expect_err "--mode sideways is a usage error" 2 "qd: --mode expects one of marginal, trajectory, got 'sideways'"
run "$QD" "$EX/quddpm_vs_baselines.lua" --D-layers 0
expect_err "--D-layers 0 is a usage error" 2 "qd: --D-layers expects a value >= 1, got 0"
for e in "$out" "$err"; do has "$e" "stack traceback" && fail "usage errors print no traceback" "$e"; done
run "$QD" "$EX/quddpm_cluster.lua" --resume "$tmp/no-such-run"
expect_err "--resume of a missing run is a usage error" 2 "qd: --resume: no checkpoint in $tmp/no-such-run"
run "$QD" "$EX/quddpm_cluster.lua" --small --quiet --stop-after 5 --out "$tmp/run1"
expect "a run stopped early" 0
run "$QD" "$EX/quddpm_cluster.lua" --resume "$tmp/run1" --n 2 --lr 0.1 --quiet
expect_err "--resume with a different --n and --lr is refused" 2 \
    "these options differ: --lr 0.1 (the run has 0), --n 2 (the run has 1)" "may change on resume" "usage:"
run "$QD" "$EX/quddpm_cluster.lua" --resume "$tmp/run1" --n 1 --small --quiet --threads 1
expect_err "--resume with the same options (and session options) continues" 0
has "$out" "F0_train" && pass || fail "the resumed run finished" "$out"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
