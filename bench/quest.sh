#!/usr/bin/env bash
# bench/quest.sh — qd against QuEST on the same machine, in the same run (make bench,
# section 7). QuEST is not a dependency of qd and is not fetched: name a QuEST v3.7 source
# tree with QUEST_SRC (the tree of https://github.com/QuEST-Kit/QuEST at tag v3.7.0);
# without it this section is skipped with a note.
#
# The sweeps (bench/quest_sweep.c for QuEST, `bench_core sweep` for qd): h, ry and
# cx(q, q+1) on every qubit of an SV-qubit state vector (default 22), depolarizing
# (p = 0.1, Pauli form: QuEST's mixDepolarising) and amplitude damping (gamma = 0.2:
# mixDamping) on every qubit of a DM-qubit density matrix (default 11). Time per gate per
# element (amplitude or matrix entry), median of 5 sweeps; 1 and 2 threads (QuEST:
# OMP_NUM_THREADS; qd: its thread count). Ratio = QuEST time / qd time (> 1: qd faster).
# QuEST is built with Debian's cmake, its own flags (-O2), OpenMP on, double precision.
#
# Environment: QUEST_SRC, QD_BUILD (default build), QUEST_SV, QUEST_DM, CC.
set -u
cd "$(dirname "$0")/.."
B=${QD_BUILD:-build}
CC=${CC:-gcc}
SV=${QUEST_SV:-22}
DM=${QUEST_DM:-11}
out="$B/bench/quest"
if [ -z "${QUEST_SRC:-}" ]; then
  echo "   SKIPPED: no QuEST source tree (set QUEST_SRC to a QuEST v3.7 tree to compare)"
  exit 0
fi
if [ ! -f "$QUEST_SRC/QuEST/include/QuEST.h" ]; then
  echo "   quest: $QUEST_SRC does not look like a QuEST v3.x tree (no QuEST/include/QuEST.h)"
  exit 1
fi
command -v cmake >/dev/null || { echo "   quest: cmake not found (apt-get install cmake)"; exit 1; }
mkdir -p "$out"
if [ ! -f "$out/build/QuEST/libQuEST.so" ]; then
  cmake -S "$QUEST_SRC" -B "$out/build" -DMULTITHREADED=1 -DPRECISION=2 -DCMAKE_BUILD_TYPE=Release \
    >"$out/cmake.log" 2>&1 && cmake --build "$out/build" --target QuEST -j2 >>"$out/cmake.log" 2>&1 || {
    echo "   quest: building QuEST failed (see $out/cmake.log)"; exit 1; }
fi
$CC -O2 -std=c11 -fopenmp -I"$QUEST_SRC/QuEST/include" bench/quest_sweep.c -L"$out/build/QuEST" \
  -lQuEST -Wl,-rpath,"$(cd "$out/build/QuEST" && pwd)" -lm -o "$out/quest_sweep" || {
  echo "   quest: compiling bench/quest_sweep.c failed"; exit 1; }
[ -x "$B/bench/bench_core" ] || { echo "   quest: $B/bench/bench_core missing (run bench/run.sh)"; exit 1; }
echo "   QuEST $(git -C "$QUEST_SRC" describe --tags 2>/dev/null || echo "(tree at $QUEST_SRC)"), qd kernel set ${QD_SIMD:-auto}; state vector $SV qubits, density matrix $DM qubits"
fails=0
printf '   %-3s %-7s %12s %12s %8s\n' thr op "QuEST ns/el" "qd ns/el" "QuEST/qd"
for t in 1 2; do
  q=$(OMP_NUM_THREADS=$t "$out/quest_sweep" "$SV" "$DM") || { echo "   quest: QuEST run failed"; fails=1; continue; }
  d=$(OMP_NUM_THREADS=$t "$B/bench/bench_core" sweep "$SV" "$DM") || { echo "   quest: qd run failed"; fails=1; continue; }
  for op in h ry cx depol damp; do
    tq=$(echo "$q" | awk -v o="$op" '$2 == o { print $3 }')
    td=$(echo "$d" | awk -v o="$op" '$2 == o { print $3 }')
    printf '   %-3s %-7s %12s %12s %8s\n' "$t" "$op" "$tq" "$td" "$(awk -v a="$tq" -v b="$td" 'BEGIN { printf "%.2f", a / b }')"
  done
done
exit $fails
