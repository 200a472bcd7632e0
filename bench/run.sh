#!/usr/bin/env bash
# bench/run.sh — the qd benchmarks (`make bench`; not part of `make check`).
# bench/RESULTS.md explains the figures and records a run.
#
#   1. gates: a 1-qubit and a 2-qubit gate on an n = 20..24 state vector, ns per amplitude
#      and fraction of the in-place roof (a read-modify-write sweep over the same buffer,
#      timed in the same run), 1 and 2 threads                     (bench_core gates)
#   2. overlaps of two 8-qubit ensembles of 1000 states as a fraction of a raw zgemm of the
#      same shape, once per OpenBLAS kernel choice (the variable must be set before the
#      process starts, so the binary runs once per setting)        (bench_core blas)
#   3. the batched diffusion-training-shaped step, 100 states x 8 qubits, 10 layers of RY, RZ
#      + CZ ladder, then the 100x100 fidelity matrix: qd (batched_step.lua) against numpy
#      written its fastest way (batched_step.py), same inputs, results compared to 1e-10;
#      (a) the training step, angles shared by the batch: qd.ansatz.ry_rz_cz(8, 10),
#      c:run(E, theta), out:overlaps() (the main figure); (b) per-member angles, one E:ry /
#      E:rz call per gate (the QuDDPM forward-process shape)
#   4. one QuDDPM training iteration, qd against PyTorch    (bench/quddpm_step.sh)
#   5. noise channels and SSE trajectories, qd against QuTiP (bench/noise.sh)
#   6. QuDDPM end to end, the five tasks on a reduced budget, qd against a PyTorch
#      implementation of the whole protocol (bench/quddpm_e2e.sh, one round, ~5-6 minutes;
#      docs/results.md; for more rounds run it by hand: bash bench/quddpm_e2e.sh --rounds 3)
#   7. qd against QuEST v3.7 built here: gates on a 22-qubit state vector, depolarizing and
#      amplitude damping on an 11-qubit density matrix (bench/quest.sh; needs QUEST_SRC, a
#      QuEST source tree; skipped with a note without it)
#
# Every section runs once per kernel set this CPU runs (runtime/core/qd_isa.h: portable, avx2,
# avx512; forced with QD_SIMD), and the sets it cannot run are named and skipped; so are
# OpenBLAS kernel choices it cannot run (OPENBLAS_CORETYPE=SkylakeX needs AVX-512).
#
# Environment: QD_BUILD (build directory, default build), PYTHON (default /usr/bin/python3),
# CC and OPT as for make, QD_BENCH_ONLY (the sections to run, default "1 2 3 4 5 6 7"),
# QUEST_SRC (a QuEST v3.7 source tree, for section 7),
# QD_BENCH_SETS (the kernel sets, default every set this CPU runs).
# Every timing is a minimum over repeats.
set -u
cd "$(dirname "$0")/.."
B=${QD_BUILD:-build}
CC=${CC:-gcc}
OPT=${OPT:--O3}
PY=${PYTHON:-/usr/bin/python3}
out="$B/bench"
fails=0
ONLY=" ${QD_BENCH_ONLY:-1 2 3 4 5 6 7} "
want() { [[ "$ONLY" == *" $1 "* ]]; }

echo "== qd benchmarks  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "   CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   OPENBLAS_CORETYPE in the environment: ${OPENBLAS_CORETYPE:-unset}"
has_avx512=0
grep -qw avx512f /proc/cpuinfo && has_avx512=1

# ---- build what the benchmarks need (make is a no-op when build/ is up to date)
make --no-print-directory BUILD="$B" -j2 "$B/qd" "$B/libqdcore.a" >/dev/null || {
  echo "bench: building $B/qd failed"; exit 1; }
mkdir -p "$out"
# the same flags the Makefile compiles the core with
# shellcheck disable=SC2046  # the link flags are words
$CC -std=c11 $OPT -g -fopenmp -Wall -Wextra -D_GNU_SOURCE -Iruntime/core \
  bench/bench_core.c "$B/libqdcore.a" $(make --no-print-directory -s print-ldlibs) -o "$out/bench_core" || {
  echo "bench: compiling bench/bench_core.c failed"; exit 1; }
echo "   $("$B/qd" -e 'print("qd " .. qd.version .. ", " .. qd.blas_info())')"
# kernel sets: the ones this CPU runs (best last), or QD_BENCH_SETS
read -r -a runnable <<<"$("$B/qd" -e 'io.write(table.concat((qd.simd_sets()), " "))')"
read -r -a built <<<"$("$B/qd" -e 'io.write(table.concat(select(2, qd.simd_sets()), " "))')"
echo "   CPU ISA: $("$B/qd" -e 'io.write((select(3, qd.simd_sets())))');" \
     "kernel sets built: ${built[*]}; this CPU runs: ${runnable[*]}"
SETS=()
for s in ${QD_BENCH_SETS:-${runnable[*]}}; do
  if [[ " ${runnable[*]} " == *" $s "* ]]; then
    SETS+=("$s")
  else
    echo "   kernel set $s: SKIPPED (this CPU cannot run it, or it is not built)"
  fi
done
for s in "${built[@]}"; do
  [[ " ${runnable[*]} " == *" $s "* ]] || echo "   kernel set $s: not benchmarked here (this CPU cannot run it)"
done
echo "   kernel sets benchmarked: ${SETS[*]}"
per_set() {  # per_set CMD...: CMD once per kernel set (QD_SIMD), failures counted
  for s in "${SETS[@]}"; do
    echo "-- kernel set $s"
    QD_SIMD=$s QD_BUILD="$B" PYTHON="$PY" "$@" || fails=$((fails + 1))
  done
}

# ---- 1. gates
if want 1; then
echo
echo "== 1. gates on a state vector"
per_set "$out/bench_core" gates 20 24
fi

# ---- 2. overlaps vs zgemm, per OpenBLAS kernel choice
if want 2; then
echo
echo "== 2. overlap matrix of two 8-qubit ensembles of 1000 states vs zgemm"
blas_run() {  # label, then env arguments
  local label=$1; shift
  echo "-- $label"
  for s in "${SETS[@]}"; do
    echo "   kernel set $s"
    env "$@" QD_SIMD="$s" "$out/bench_core" blas || fails=$((fails + 1))
  done
}
blas_run "OpenBLAS's own choice (OPENBLAS_CORETYPE unset)" -u OPENBLAS_CORETYPE
if [ -n "${OPENBLAS_CORETYPE:-}" ] && [ "${OPENBLAS_CORETYPE}" != SkylakeX ]; then
  blas_run "as inherited (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE)" OPENBLAS_CORETYPE="$OPENBLAS_CORETYPE"
fi
if [ "$has_avx512" = 1 ]; then
  blas_run "OPENBLAS_CORETYPE=SkylakeX" OPENBLAS_CORETYPE=SkylakeX
else
  echo "-- OPENBLAS_CORETYPE=SkylakeX: SKIPPED (this CPU has no AVX-512)"
fi
fi

# ---- 3. the batched step: qd vs numpy, (a) shared angles (training), (b) per-member angles
if want 3; then
echo
echo "== 3. batched step: 100 states x 8 qubits, 10 layers of RY, RZ on every qubit + CZ ladder, 100x100 fidelities"
if ! "$PY" -c 'import numpy' 2>/dev/null; then
  echo "   SKIPPED: $PY with numpy not found (apt-get install python3-numpy)"
  fails=$((fails + 1))
else
  bdir="$out/batched"
  rm -rf "$bdir" && mkdir -p "$bdir"
  "$PY" bench/batched_step.py gen "$bdir" || fails=$((fails + 1))
  for mode in shared member; do
    echo
    if [ "$mode" = shared ]; then
      echo "-- 3a. training step, angles shared by the batch: c = qd.ansatz.ry_rz_cz(8, 10); c:run(E, theta):overlaps()"
    else
      echo "-- 3b. forward-process step, one angle per gate and member: E:ry(q, v), E:rz(q, v), E:cz; E:overlaps()"
    fi
    labels=()
    qd_step() {  # label, then env arguments
      local label=$1; shift
      echo "-- qd $mode ($label)"
      if env "$@" "$B/qd" bench/batched_step.lua "$bdir" "$mode" "$label"; then
        labels+=("$label")
      else
        fails=$((fails + 1))
      fi
    }
    for s in "${SETS[@]}"; do
      qd_step "$s" QD_SIMD="$s"   # the environment as inherited
      if [ "$has_avx512" = 1 ] && [ "${OPENBLAS_CORETYPE:-}" != SkylakeX ]; then
        qd_step "$s-SkylakeX" QD_SIMD="$s" OPENBLAS_CORETYPE=SkylakeX
      fi
    done
    echo "-- numpy $mode (same inputs; OPENBLAS_CORETYPE as inherited and SkylakeX)"
    "$PY" bench/batched_step.py run "$bdir" "$mode" "${labels[@]}" || fails=$((fails + 1))
  done
fi
fi

# ---- 4. one QuDDPM training iteration: qd vs PyTorch
if want 4; then
echo
echo "== 4. QuDDPM training iteration vs PyTorch (bench/quddpm_step.sh)"
per_set bash bench/quddpm_step.sh
fi
# ---- 5. noise channels and SSE trajectories: qd vs QuTiP (bench/noise.sh; bench/RESULTS.md)
if want 5; then
echo
echo "== 5. noise channels and SSE trajectories vs QuTiP (bench/noise.sh)"
per_set bash bench/noise.sh
fi
# ---- 6. QuDDPM end to end: qd vs PyTorch (bench/quddpm_e2e.sh; docs/results.md)
if want 6; then
echo
echo "== 6. QuDDPM end to end vs PyTorch (bench/quddpm_e2e.sh)"
per_set bash bench/quddpm_e2e.sh
fi

# ---- 7. qd vs QuEST (bench/quest.sh)
if want 7; then
echo
echo "== 7. qd vs QuEST v3.7 built here (bench/quest.sh)"
if [ -n "${QUEST_SRC:-}" ]; then
  per_set bash bench/quest.sh
else
  bash bench/quest.sh   # says why it is skipped
fi
fi

echo
if [ "$fails" -eq 0 ]; then
  echo "bench: all checks passed"
else
  echo "bench: $fails part(s) reported a failed check (see above)"
fi
[ "$fails" -eq 0 ]
