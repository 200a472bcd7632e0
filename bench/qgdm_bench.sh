#!/usr/bin/env bash
# bench/qgdm_bench.sh — QGDM / RE-QGDM training (qd.protocols.qgdm) against an independent
# PyTorch implementation of the same protocol (bench/qgdm_torch.py), same inputs.
#
#   bench/qgdm_bench.sh [CASE ...]        CASE: n2 n4 re8 (default: all three)
#
#   n2   QGDM,    n = 2, L = 6,  T = 10, na = 2            (5-qubit register,  70 parameters)
#   n4   QGDM,    n = 4, L = 10, T = 10, na = 4            (9-qubit register, 198 parameters)
#   re8  RE-QGDM, n = 8, L = 4,  T = 6,  na = 1, blocks = 3 (10-qubit register, 300 parameters)
#
# Linear schedule 1e-4 .. 0.5, infidelity loss, chain training, Adam lr 0.02, seed 1; mixed
# rank-2 targets for n2 / n4, a pure one for re8. Per case:
#   1. qd (bench/qgdm_bench.lua, --threads 1) writes the inputs (target, the protocol's initial
#      theta, the schedule) and its results: loss and gradient at theta0, and (K > 0) the K
#      per-iteration losses of qgdm.run{iterations = K}, its final theta and the loss and
#      gradient there;
#   2. torch (--check) recomputes them from the same inputs and prints the differences;
#      PASS = loss and gradient at theta0 and every loss of the K-iteration run within 1e-10;
#   3. for each thread count in QD_BENCH_THREADS: qd times REPS x one iteration's loss +
#      gradient (P.loss_grad at theta0) and REPS x a whole qgdm.run of K iterations (quiet,
#      save_data = false), then torch the same (torch.set_num_threads); medians and the
#      ratios torch / qd. The machine may be shared: the load average is printed with
#      every figure.
# re8 is slow on both sides: its K is 0 (no run: the iteration time and the check at theta0).
# n2 takes milliseconds: 5 x REPS repetitions. With one thread, every case is also timed with
# torch's --method kraus (the step as K rhohat K^dag from the columns of U that the pure
# padding selects: the same values, not the same algorithm; see bench/qgdm_torch.py).
#
# Environment: QD_BUILD (build directory, default build; nothing is built), PYTHON (default
# /usr/bin/python3), QD_BENCH_REPS (3), QD_BENCH_THREADS ("1 2"), QD_BENCH_OUT (scratch
# directory, kept; default a fresh mktemp -d, removed at the end unless QD_BENCH_KEEP=1).
# Exit status: 0 if every check passed, 1 if one failed, 77 if skipped (no torch).
set -u
cd "$(dirname "$0")/.."
B=${QD_BUILD:-build}
PY=${PYTHON:-/usr/bin/python3}
REPS=${QD_BENCH_REPS:-3}
THREADS=${QD_BENCH_THREADS:-"1 2"}
CASES=${*:-"n2 n4 re8"}

echo "== QGDM training, qd vs PyTorch  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "   CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
  echo "   SKIPPED: $PY with torch and numpy not found (apt-get install python3-torch python3-numpy," \
       "or PYTHON=/path/to/python3)"
  exit 77
fi
echo "   torch $("$PY" -c 'import torch; print(torch.__version__)'), qd: $B/qd"
if [ ! -x "$B/qd" ]; then
  echo "qgdm_bench: $B/qd not found (this script builds nothing)"; exit 1
fi
for c in $CASES; do
  case $c in n2|n4|re8) ;; *) echo "qgdm_bench: unknown case $c (n2, n4, re8)"; exit 1;; esac
done
if [ -n "${QD_BENCH_OUT:-}" ]; then OUT=$QD_BENCH_OUT; KEEP=1; mkdir -p "$OUT"
else OUT=$(mktemp -d /tmp/qgdm_bench.XXXXXX); KEEP=${QD_BENCH_KEEP:-0}; fi
fails=0

for c in $CASES; do
  case $c in
    n2)  K=20; echo; echo "== n2: QGDM, n = 2, L = 6, T = 10, na = 2";;
    n4)  K=3;  echo; echo "== n4: QGDM, n = 4, L = 10, T = 10, na = 4";;
    re8) K=0;  echo; echo "== re8: RE-QGDM, n = 8, L = 4, T = 6, na = 1, blocks = 3";;
    *) echo "qgdm_bench: unknown case $c (n2, n4, re8)"; exit 1;;
  esac
  "$B/qd" --threads 1 bench/qgdm_bench.lua "$OUT" "$c" "$K" 1 dump || { fails=$((fails + 1)); continue; }
  "$PY" bench/qgdm_torch.py "$OUT" "$c" --threads 1 --reps 0 --check || fails=$((fails + 1))
  R=$REPS
  [ "$c" = n2 ] && R=$((5 * REPS))   # milliseconds: more repetitions
  for t in $THREADS; do
    "$B/qd" --threads "$t" bench/qgdm_bench.lua "$OUT" "$c" "$K" "$R" time "t$t" || fails=$((fails + 1))
    "$PY" bench/qgdm_torch.py "$OUT" "$c" --threads "$t" --reps "$R" --K "$K" || fails=$((fails + 1))
    [ "$t" = 1 ] && { "$PY" bench/qgdm_torch.py "$OUT" "$c" --threads 1 --reps "$R" --K "$K" \
      --method kraus || fails=$((fails + 1)); }
  done
done

[ "$KEEP" = 1 ] && echo "   inputs and results kept in $OUT" || rm -rf "$OUT"
echo
if [ "$fails" -eq 0 ]; then
  echo "qgdm_bench: all checks passed"
else
  echo "qgdm_bench: $fails part(s) reported a failed check (see above)"
fi
[ "$fails" -eq 0 ]
