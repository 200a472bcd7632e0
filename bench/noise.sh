#!/usr/bin/env bash
# bench/noise.sh — noise channels and stochastic trajectories, qd against QuTiP in the same
# run (issue #3, "Bench"; not part of `make check`). bench/RESULTS.md (section 5) records a run.
#
#   1. channels: 1-qubit depolarizing (p = 0.1) and amplitude damping (gamma = 0.2) on one
#      qubit of a random full-rank 10- and 12-qubit density matrix and on every qubit of the
#      10-qubit one; qd's rho:apply against QuTiP's Kraus sum / superoperator with the
#      operators expanded by qutip.tensor (the faster is the reference); outputs compared
#      to 1e-12 (same input rho, .npy)          (channels_qutip.py, channels_qutip.lua)
#   2. SSE: 1000 trajectories x 1000 Euler-Maruyama steps of a 4-qubit TFIM with sum_i Z_i
#      measured (homodyne); qd.sse against qutip.ssesolve; trajectory averages of the
#      measured observable at the end compared within statistical error, and against
#      qutip.mesolve                           (sse_qutip.py, sse_qutip.lua)
#
# Threads: QuTiP always runs with OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1; qd runs with
# --threads 1 (same environment), --threads 2, and --threads 2 with OMP_WAIT_POLICY=passive
# (label "2p": on a shared, oversubscribed machine spinning OpenMP threads lose their core).
# Speed-ups are QuTiP time / qd time, each a minimum over repeats; the target is >= 10x.
#
# Environment: QD_BUILD (build directory, default build), PYTHON (default /usr/bin/python3),
# QUTIP_REPEATS (QuTiP repeats per measurement, default 3; 2 for the 12-qubit cases).
# python3-qutip (Debian) is installed with apt-get if missing, as scripts/setup.sh does.
set -u
cd "$(dirname "$0")/.."
B=${QD_BUILD:-build}
PY=${PYTHON:-/usr/bin/python3}
out="$B/bench/noise"
fails=0

echo "== qd vs QuTiP: noise channels and SSE trajectories  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "   CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- QuTiP from Debian (idempotent; only when missing)
if ! dpkg-query -W -f='${Status}' python3-qutip 2>/dev/null | grep -q 'install ok installed'; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "   installing python3-qutip (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends python3-qutip; } || {
    echo "noise bench: installing python3-qutip failed"; exit 1; }
fi
if ! "$PY" -c 'import qutip, numpy' 2>/dev/null; then
  echo "noise bench: $PY cannot import qutip and numpy"; exit 1
fi

# ---- build qd (a no-op when up to date)
make --no-print-directory BUILD="$B" -j2 "$B/qd" >/dev/null || { echo "noise bench: building $B/qd failed"; exit 1; }
mkdir -p "$out"
echo "   $("$B/qd" -e 'print("qd " .. qd.version .. ", " .. qd.blas_info())')"

ONE=(env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1)
TWO=(env OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2)
TWOP=(env OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OMP_WAIT_POLICY=passive)

qd_runs() {  # script: runs it with 1, 2, 2p threads; sets $tags to the ones that succeeded
  local script=$1
  tags=()
  "${ONE[@]}" "$B/qd" --threads 1 "$script" "$out" 1 && tags+=(1) || fails=$((fails + 1))
  "${TWO[@]}" "$B/qd" --threads 2 "$script" "$out" 2 && tags+=(2) || fails=$((fails + 1))
  "${TWOP[@]}" "$B/qd" --threads 2 "$script" "$out" 2p && tags+=(2p) || fails=$((fails + 1))
}

# ---- 1. channels
echo
echo "== 1. 1-qubit depolarizing and amplitude damping on 10- and 12-qubit density matrices"
rm -f "$out"/qd_*
if "$PY" bench/channels_qutip.py gen "$out"; then
  qd_runs bench/channels_qutip.lua
  echo "-- QuTiP (1 thread), then the comparison"
  "${ONE[@]}" "$PY" bench/channels_qutip.py run "$out" "${tags[@]}" || fails=$((fails + 1))
else
  fails=$((fails + 1))
fi

# ---- 2. SSE trajectories
echo
echo "== 2. SSE: 1000 trajectories x 1000 Euler-Maruyama steps, 4 qubits, sum Z_i measured"
if "$PY" bench/sse_qutip.py gen "$out"; then
  qd_runs bench/sse_qutip.lua
  echo "-- QuTiP (1 thread), then the comparison"
  "${ONE[@]}" "$PY" bench/sse_qutip.py run "$out" "${tags[@]}" || fails=$((fails + 1))
else
  fails=$((fails + 1))
fi
rm -f "$out"/rho*.npy "$out"/qd_*_n12_*.npy   # the 12-qubit matrices: 256 MB each

echo
if [ "$fails" -eq 0 ]; then
  echo "noise bench: all checks passed"
else
  echo "noise bench: $fails part(s) reported a failed check (see above)"
fi
[ "$fails" -eq 0 ]
