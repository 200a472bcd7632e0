#!/usr/bin/env bash
# test_plot.sh — pictures from the command line (docs/api.md "Pictures"):
#   bash tests/interp/test_plot.sh path/to/qd
# `qd plot RUNDIR [--out DIR] [--format F]` on a small QuDDPM run (files, exit statuses,
# usage errors), an example's --plot option, the error without gnuplot, and the text plot
# at the prompt on a plain terminal inside tmux (skipped without tmux). Without gnuplot the
# drawing checks print SKIP. Ends with "N passed, N failed"; exits non-zero on failure.

QD=${1:?usage: test_plot.sh path/to/qd}
case $QD in /*) ;; *) QD=$PWD/$QD ;; esac
[ -x "$QD" ] || { echo "test_plot.sh: $QD is not an executable"; exit 2; }
SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
EX=$SRCDIR/examples

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qd-plot.XXXXXX")
tmux_sock=$tmp/tmux.sock
cleanup() {
    if [ -S "$tmux_sock" ]; then tmux -S "$tmux_sock" kill-server 2>/dev/null; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
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
check() { # NAME CONDITION...
    local name=$1; shift
    if "$@"; then pass; else fail "$name"; fi
}
png() { [ "$(head -c 8 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; }

# ---- usage errors and a missing record (no gnuplot needed)
run "$QD" plot
check "qd plot without a directory: exit 2" [ "$rc" -eq 2 ]
check "... says what is missing" grep -q "qd plot needs a run directory" <<<"$err"
run "$QD" plot "$tmp" --colour red
check "qd plot with an unknown option: exit 2" [ "$rc" -eq 2 ]
run "$QD" plot "$tmp/none"
check "qd plot on a directory without run.json: exit 1" [ "$rc" -eq 1 ]
check "... names the problem" grep -q "no run record in $tmp/none" <<<"$err"
run "$QD" plot --help
check "qd plot --help: exit 0 with usage" [ "$rc" -eq 0 ]
check "... prints the usage" grep -q "usage: qd plot RUNDIR" <<<"$out"
run "$QD" "$EX/quddpm_circle.lua" --help
check "examples list --plot" grep -q -- "--plot" <<<"$out"

# ---- a small run record, then its figures
run "$QD" --threads 1 "$EX/quddpm_circle.lua" --small --out "$tmp/circle"
check "small circle run" [ "$rc" -eq 0 ]
if ! "$QD" -e 'os.exit(qd.plot.available() and 0 or 1)'; then
    echo "SKIP: gnuplot is not installed (Debian package gnuplot-nox): drawing checks not run"
else
    run "$QD" plot "$tmp/circle"
    check "qd plot RUNDIR: exit 0" [ "$rc" -eq 0 ]
    for f in loss metrics forward bloch trajectory; do
        check "qd plot wrote figures/$f.png" png "$tmp/circle/figures/$f.png"
    done
    run "$QD" plot "$tmp/circle" --out "$tmp/figs" --format svg
    check "qd plot --out DIR --format svg" grep -q "<svg" "$tmp/figs/loss.svg"
    run "$QD" --threads 1 "$EX/quddpm_cluster.lua" --small --out "$tmp/cluster" --plot
    check "an example with --plot: exit 0" [ "$rc" -eq 0 ]
    check "... says where the figures are" grep -q "figures written to $tmp/cluster/figures" <<<"$err"
    check "... and drew them" png "$tmp/cluster/figures/loss.png"
fi
run env QD_GNUPLOT=/nonexistent/gnuplot "$QD" plot "$tmp/circle"
check "qd plot without gnuplot: exit 1" [ "$rc" -eq 1 ]
check "... names the package" grep -q "gnuplot-nox" <<<"$err"

# ---- the text plot at the prompt, on a plain terminal (tmux)
if command -v tmux >/dev/null && "$QD" -e 'os.exit(qd.plot.available() and 0 or 1)'; then
    T() { tmux -S "$tmux_sock" "$@"; }
    screen() { T capture-pane -p -t qdp 2>/dev/null; }
    cmd=$(printf 'env TERM=xterm QD_HISTORY= %q; echo EXIT=$?; sleep 30' "$QD")
    if T new-session -d -s qdp -x 100 -y 40 "$cmd" 2>/dev/null; then
        T send-keys -t qdp -l 'qd.plot.lines{{1, 4, 9, 16, 25}, width = 70, height = 20, title = "squares"}'
        T send-keys -t qdp Enter
        ok=
        for ((i = 0; i < 100; i++)); do
            if screen | grep -q "squares" && screen | grep -qE '^ +25 \+-+\+ *$'; then ok=1; break; fi
            sleep 0.1
        done
        rc=-; out=$(screen | tail -n 25); err=
        check "text plot at the prompt: title and frame on the terminal" [ -n "$ok" ]
        check "... the curve is drawn" grep -q '\*\*' <<<"$out"
        T send-keys -t qdp C-d
    else
        echo "SKIP: text plot at the prompt (tmux could not start a session)"
    fi
else
    echo "SKIP: text plot at the prompt (tmux or gnuplot not installed)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
