#!/usr/bin/env bash
# run_all.sh — the whole suite (make check): C core tests, Lua tests, the CLI tests, and
# every example in its --small mode. Sums every part's "N passed, N failed" line and ends
# with one such line; exits non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."
B=${QD_BUILD:-build}
QD="$B/qd"
export QD_TEST_DATA=tests/data
export QD_HISTORY=""
total_p=0; total_f=0
log=$(mktemp); trap 'rm -f "$log"' EXIT

part() {  # part NAME CMD...
  local name=$1; shift
  echo "== $name"
  "$@" >"$log" 2>&1
  local rc=$?
  local line
  line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -n "$line" ]; then
    local p f
    p=$(echo "$line" | sed -E 's/.*([^0-9]|^)([0-9]+) passed.*/\2/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    total_p=$((total_p + p)); total_f=$((total_f + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then total_f=$((total_f + 1)); fi
  else
    if [ "$rc" -eq 0 ]; then total_p=$((total_p + 1)); else total_f=$((total_f + 1)); fi
  fi
  if [ "$rc" -ne 0 ]; then
    cat "$log"
    echo "   -> $name FAILED (exit $rc)"
  else
    grep -E '^(FAIL|SKIP)' "$log" || true
    echo "   -> ${line:-ok}"
  fi
}

# The C core tests once per kernel set this CPU runs (QD_SIMD forces one; see
# runtime/core/qd_isa.h), so a developer on either CPU class catches the other's breakage as far
# as the CPU allows; a set it cannot run is named, not skipped silently.
read -r -a runnable <<<"$("$QD" -e 'io.write(table.concat((qd.simd_sets()), " "))')"
for s in ${QD_KSETS:-}; do
  case " ${runnable[*]} " in
  *" $s "*) part "C core ($s)" env QD_SIMD="$s" "$B/test_core" ;;
  *) echo "== C core ($s): not run, this CPU cannot run the $s kernel set" ;;
  esac
done
[ -n "${QD_KSETS:-}" ] || part "C core" "$B/test_core"
# gates.c at AVX-512's width (8 doubles) on any CPU (the Makefile's w8 build)
[ -x "$B/w8/test_core" ] && part "C core (gates at 8-double width)" env -u QD_SIMD "$B/w8/test_core"
# the generic paths a CPU without FMA instructions takes instead of the lane kernels
part "C core (paths for CPUs without FMA)" env QD_ASSUME_NO_FMA=1 "$B/test_core"
# no fused multiply-add the source did not ask for, in any kernel set's objects
for s in ${QD_KSETS:-}; do
  [ "$s" = portable ] || part "contraction check ($s)" bash scripts/check_contraction.sh "$B/k/$s.raw.o"
done
part "lint (layering, gate registry, function lengths, whitespace)" bash scripts/lint.sh
part "Lua" "$QD" tests/lua/run.lua
part "fuzz (short, fixed seeds)" env FUZZ_CHUNKS=6 FUZZ_CALLS=4000 FUZZ_FILES=1000 bash tests/fuzz/run.sh "$QD" 0 1
if [ -f tests/interp/test_cli.sh ]; then
  part "CLI" bash tests/interp/test_cli.sh "$QD"
fi
part "sandbox, limits, replay" bash tests/interp/test_sandbox.sh "$QD"
part "pictures (qd.plot, qd plot RUNDIR, --plot)" bash tests/interp/test_plot.sh "$QD"
# the MPI build (make MPI=1): the distributed tests on 2 ranks (tests/mpi/run.sh)
if [ "$("$QD" -e 'io.write(tostring(qd.mpi.enabled))' 2>/dev/null)" = true ]; then
  if command -v mpirun >/dev/null; then part "distributed (mpirun -n 2)" bash tests/mpi/run.sh "$QD"
  else echo "== distributed: not run, mpirun not found (scripts/setup.sh installs Open MPI)"; fi
fi
outdir=$(mktemp -d); trap 'rm -f "$log"; rm -rf "$outdir"' EXIT
. tests/pin_blas.sh   # the golden digests are for OpenBLAS's Haswell kernels
# every example in its small mode with 1 thread; its results against the stored digests
# (tests/golden.lua: any change of any bit fails); then `qd replay` of its record: in the
# sandbox, with 2 threads, compared bit for bit
for ex in examples/*.lua; do
  [ -e "$ex" ] || continue
  run="$outdir/$(basename "$ex" .lua)"
  part "example $(basename "$ex") --small" "$QD" --threads 1 "$ex" --small --out "$run"
  part "golden digests of $(basename "$ex")" "$QD" tests/golden.lua check "$run" \
    "tests/data/golden/$(basename "$ex" .lua).txt"
  part "replay of $(basename "$ex") (sandbox, 2 threads)" "$QD" replay "$run" --threads 2
done
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
