#!/usr/bin/env bash
# bench/qddm_bench.sh — one training epoch of QDDM's Q-Dense (arXiv 2401.07049;
# qd.protocols.qddm) against an independent PyTorch implementation (bench/qddm_torch.py:
# complex128 state vector, autograd, one gate at a time as PennyLane's default.qubit.torch
# runs the reference code; PennyLane is not installable here), same inputs.
#
#   bench/qddm_bench.sh
#
# The reference's defaults: 55 strongly entangling layers on 6 qubits (990 parameters),
# batches of 10 images x T = 10 noise levels, the noise goal, MSE, Adam (lr 1e-3 here), the
# first 100 images of classes 0 and 1 of the 8x8 digits (80 train: 8 batches per epoch).
#   1. qd (bench/qddm_bench.lua dump, --threads 1) writes the epoch's inputs (noisy images,
#      targets, w0) and its results: loss and gradient on batch 1 at w0, the 8 batch losses
#      of one Adam epoch and the weights after it;
#   2. torch (--check) recomputes them from the same inputs; PASS = every difference <= 1e-10;
#   3. for each thread count in QD_BENCH_THREADS: qd times REPS x one epoch (and U^T against
#      T runs of the single-sampling model on 80 images), then torch the same ("gates", and
#      with one thread also "fused": one 64 x 64 matmul per layer); medians and the ratios
#      torch / qd. The machine may be shared: the load average is printed.
# Needs Debian's python3-sklearn (the digits). Environment: QD_BUILD (default build), PYTHON
# (default /usr/bin/python3), QD_BENCH_REPS (3), QD_BENCH_THREADS ("1 2"), QD_BENCH_OUT
# (scratch directory, kept). Exit status: 0 if the check passed, 1 if not, 77 if skipped.
set -u
cd "$(dirname "$0")/.."
B=${QD_BUILD:-build}
PY=${PYTHON:-/usr/bin/python3}
REPS=${QD_BENCH_REPS:-3}
THREADS=${QD_BENCH_THREADS:-"1 2"}

echo "== QDDM Q-Dense training epoch, qd vs PyTorch  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "   CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
  echo "   SKIPPED: $PY with torch and numpy not found"; exit 77
fi
if [ ! -f /usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz ]; then
  echo "   SKIPPED: the digits (Debian's python3-sklearn) are not installed"; exit 77
fi
[ -x "$B/qd" ] || { echo "qddm_bench: $B/qd not found (this script builds nothing)"; exit 1; }
echo "   torch $("$PY" -c 'import torch; print(torch.__version__)'), qd: $B/qd"
if [ -n "${QD_BENCH_OUT:-}" ]; then OUT=$QD_BENCH_OUT; KEEP=1; mkdir -p "$OUT"
else OUT=$(mktemp -d /tmp/qddm_bench.XXXXXX); KEEP=0; fi
fails=0
"$B/qd" --threads 1 bench/qddm_bench.lua "$OUT" dump || fails=$((fails + 1))
"$PY" bench/qddm_torch.py "$OUT" --check || fails=$((fails + 1))
for t in $THREADS; do
  echo "   load average $(cut -d' ' -f1-3 /proc/loadavg)"
  "$B/qd" --threads "$t" bench/qddm_bench.lua "$OUT" time "$REPS" "t$t" || fails=$((fails + 1))
  "$PY" bench/qddm_torch.py "$OUT" --threads "$t" --reps "$REPS" --tag "t$t" || fails=$((fails + 1))
  if [ "$t" = 1 ]; then
    "$PY" bench/qddm_torch.py "$OUT" --threads 1 --reps "$REPS" --tag t1 --method fused || fails=$((fails + 1))
  fi
done
[ "$KEEP" = 1 ] && echo "   inputs and results kept in $OUT" || rm -rf "$OUT"
[ "$fails" -eq 0 ] && echo "qddm_bench: check passed" || echo "qddm_bench: $fails part(s) failed"
[ "$fails" -eq 0 ]
