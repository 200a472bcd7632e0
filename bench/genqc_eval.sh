#!/usr/bin/env bash
# bench/genqc_eval.sh — evaluating generated circuits (genQC, arXiv 2311.02041): validity,
# Schmidt-rank vector, gate counts and uniqueness of B random 5-qubit {h, cx} token circuits
# (16 time steps; every 50th malformed) in qd (qd.synth.evaluate: decoding and simulation in
# C, one call) against plain numpy doing the same per circuit as genQC does (bench/genqc_eval.py:
# decode, simulate, partial trace + matrix_rank). numpy runs on the first NPY circuits only
# (default 10000; its time is scaled to B); the checksums of the SRVs and the unique counts
# are compared on those circuits. qd with 1 and 2 threads; numpy single-threaded.
#
#   bench/genqc_eval.sh [B] [NPY]      default: 100000 10000
# Environment: QD_BUILD (default build), PYTHON (default /usr/bin/python3).
set -u
cd "$(dirname "$0")/.."
Q=${QD_BUILD:-build}
PY=${PYTHON:-/usr/bin/python3}
B=${1:-100000}
NPY=${2:-10000}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
echo "== genQC evaluation: qd vs numpy  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "   CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
l1=$("$Q/qd" --threads 1 bench/genqc_eval.lua "$B" "$dir" | grep '^RESULT')
l2=$("$Q/qd" --threads 2 bench/genqc_eval.lua "$B" "$dir" | grep '^RESULT')
lp=$("$PY" bench/genqc_eval.py "$dir/tokens.npy" 2 "$NPY" | grep '^RESULT')
mkdir -p "$dir/small"
ls1=$("$Q/qd" --threads 1 bench/genqc_eval.lua "$NPY" "$dir/small" | grep '^RESULT')
lps=$("$PY" bench/genqc_eval.py "$dir/small/tokens.npy" 2 | grep '^RESULT')
read -r _ e1 c1 _ v1 s1 u1 <<<"$l1"
read -r _ e2 c2 _ _ _ _ <<<"$l2"
read -r _ ps pc _ _ _ <<<"$lp"
read -r _ _ _ _ sv ss su <<<"$ls1"
read -r _ _ _ pv psum pu <<<"$lps"
awk -v B="$B" -v e1="$e1" -v c1="$c1" -v e2="$e2" -v c2="$c2" -v ps="$ps" -v pc="$pc" 'BEGIN {
  np = ps / pc * B
  printf "   qd, 1 thread : evaluate %.3f s (C batch %.3f s) for %d circuits\n", e1, c1, B
  printf "   qd, 2 threads: evaluate %.3f s (C batch %.3f s)\n", e2, c2
  printf "   numpy        : %.3f s for %d circuits -> %.1f s for %d\n", ps, pc, np, B
  printf "   ratio numpy / qd: %.0fx (1 thread), %.0fx (2 threads)\n", np / e1, np / e2
}'
echo "   qd: $v1 valid of $B, SRV checksum $s1, $u1 unique"
if [ "$sv" = "$pv" ] && [ "$ss" = "$psum" ] && [ "$su" = "$pu" ]; then
  echo "   check: qd and numpy agree on the first $NPY circuits (valid $sv, checksum $ss, unique $su)"
else
  echo "   CHECK FAILED: qd valid/checksum/unique $sv $ss $su, numpy $pv $psum $pu"; exit 1
fi
