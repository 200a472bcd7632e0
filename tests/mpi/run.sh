#!/usr/bin/env bash
# run.sh — the distributed tests (make check-mpi; make check on an MPI build):
#   bash tests/mpi/run.sh MPI_QD [SERIAL_QD] [RANKS]
# 1. tests/mpi/test_*.lua on RANKS ranks (default 2), counts added over the ranks;
# 2. a 20-point QCBM sweep on RANKS ranks against the same sweep run serially (SERIAL_QD,
#    default MPI_QD without mpirun): the records' results equal bit for bit;
# 3. a 14-qubit distributed state's observables on 1 and RANKS ranks: the same bits;
# 4. QCBM and QuDDPM cluster examples (--small) on RANKS ranks against their golden digests
#    (the records of one process), QCBM also under --sandbox.
# mpirun options for this container (and most laptops): --oversubscribe (more ranks than
# cores), the shared-memory transport without CMA single copy (not allowed in containers
# without ptrace rights), --allow-run-as-root when root. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
QD=${1:?usage: run.sh MPI_QD [SERIAL_QD] [RANKS]}
SERIAL=${2:-$QD}
P=${3:-2}
MPIRUN=(mpirun -n "$P" --oversubscribe --mca btl self,vader
        --mca btl_vader_single_copy_mechanism none)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
export QD_TEST_DATA=tests/data QD_HISTORY="" OMPI_MCA_hwloc_base_binding_policy=none
. tests/pin_blas.sh   # the golden digests are for OpenBLAS's Haswell kernels
pass=0; fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
count() {  # count NAME CMD...: runs, adds its last "N passed, N failed" line
  local name=$1; shift
  "$@" >"$tmp/log" 2>&1
  local rc=$? line p f
  line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$tmp/log" | tail -n 1)
  p=$(echo "$line" | sed -nE 's/^([0-9]+) passed.*/\1/p'); p=${p:-0}
  f=$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p'); f=${f:-0}
  [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
  [ -z "$line" ] && [ "$rc" -eq 0 ] && p=1
  pass=$((pass + p)); fail=$((fail + f))
  if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then cat "$tmp/log"; echo "   -> $name FAILED"
  else echo "   -> $name: ${line:-ok}"; fi
}
count "Lua tests on $P ranks" "${MPIRUN[@]}" "$QD" --threads 1 tests/mpi/run.lua
count "sweep, 1 process" "$SERIAL" --threads 1 tests/mpi/sweep_qcbm.lua "$tmp/sweep1"
count "sweep, $P ranks" "${MPIRUN[@]}" "$QD" --threads 1 tests/mpi/sweep_qcbm.lua "$tmp/sweepP"
count "sweep results equal" "$SERIAL" tests/mpi/same_results.lua "$tmp/sweep1" "$tmp/sweepP"
# a 14-qubit distributed state: its observables (tree sums over the global index) are the
# same bits on 1 and P ranks
ds() { mpirun -n "$1" "${MPIRUN[@]:3}" "$QD" --threads 1 bench/dist_state.lua 14 1 json; }
ds 1 >"$tmp/ds1.json" 2>&1; ds "$P" >"$tmp/dsP.json" 2>&1
count "distributed state: the same bits on 1 and $P ranks" cmp "$tmp/ds1.json" "$tmp/dsP.json"
for ex in qcbm_train quddpm_cluster; do
  count "$ex --small on $P ranks" "${MPIRUN[@]}" "$QD" --threads 1 "examples/$ex.lua" --small \
    --out "$tmp/$ex"
  count "golden digests of $ex on $P ranks" "$SERIAL" tests/golden.lua check "$tmp/$ex" \
    "tests/data/golden/$ex.txt"
done
# the sandbox on 2 ranks: rank 1 writes only its private scratch directory
count "qcbm_train --small --sandbox on $P ranks" "${MPIRUN[@]}" "$QD" --sandbox --threads 1 \
  examples/qcbm_train.lua --small --out "$tmp/sandboxed"
count "golden digests of the sandboxed run" "$SERIAL" tests/golden.lua check "$tmp/sandboxed" \
  tests/data/golden/qcbm_train.txt
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
