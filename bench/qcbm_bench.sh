#!/usr/bin/env bash
# bench/qcbm_bench.sh — the QCBM concentration study (examples/qcbm_variance.lua: six losses
# and dL/dtheta_1 per random init, ry_rz_cz(n, 2), GHZ-like target) in qd against PyTorch
# (autograd, Gram-form MMD) and numpy (parameter shift, Gram-form MMD), bench/qcbm_torch.py,
# on the same inits, in the same run; prints seconds per init and the ratios torch / qd and
# numpy / qd, and checks the Python values against qd's (max |difference|).
#
#   bench/qcbm_bench.sh [N:K ...]        default: 10:100 12:4 14:4 18:2  (n and inits, K >= 2)
#
# Past n = 13 the Gram matrix (8 * 4^n bytes) no longer fits a sensible budget; the Python
# side then applies the kernel in its Kronecker form (rows "torch-kron", "numpy-kron").
# One thread everywhere (qd --threads 1, torch.set_num_threads(1), OMP/OPENBLAS_NUM_THREADS=1);
# every time is the minimum over REPS runs (default 3) of the K inits.
# The machine may be shared: the load average is printed with every case.
# Environment: QD_BUILD (default build), PYTHON (default /usr/bin/python3).
set -u
cd "$(dirname "$0")/.."
B=${QD_BUILD:-build}
PY=${PYTHON:-/usr/bin/python3}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(10:100 12:4 14:4 18:2)
echo "== QCBM variance study: qd vs PyTorch / numpy  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "   CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
for c in "${cases[@]}"; do
  n=${c%%:*}; K=${c##*:}
  echo "-- n = $n, K = $K   (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  qd_line=$("$B/qd" --threads 1 bench/qcbm_bench.lua "$n" "$K" "$dir" | grep '^RESULT')
  echo "   $qd_line"
  tq=$(echo "$qd_line" | sed -E 's/.*seconds_per_init=([^ ]+).*/\1/')
  vals=$(printf '%s/qd_n%02d/values_n%02d.npy' "$dir" "$n" "$n")
  th=$(printf '%s/thetas_n%02d.npy' "$dir" "$n")
  for impl in torch numpy; do
    line=$("$PY" bench/qcbm_torch.py --n "$n" --thetas "$th" --values "$vals" --impl "$impl" --reps "${REPS:-3}" | grep '^RESULT')
    t=$(echo "$line" | sed -E 's/.*seconds_per_init=([^ ]+).*/\1/')
    echo "   $line   ratio $(awk -v a="$t" -v b="$tq" 'BEGIN { printf "%.1f", a / b }')x"
  done
done
