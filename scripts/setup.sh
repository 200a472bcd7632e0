#!/usr/bin/env bash
# Installs everything qd needs to build, test and benchmark on Debian (idempotent).
# Build: gcc, make, Lua 5.4 headers+lib, OpenBLAS (with its LAPACK), readline, nettle (SHA-256),
# zlib. Data: python3-sklearn's digits.csv.gz (qd.data.digits; a generated stand-in without it).
# Tests/bench peers: /usr/bin/python3 with numpy (reference generators, bench peers).
# Pictures (qd.plot, qd plot RUNDIR, make figures): gnuplot-nox (pngcairo, svg, pdfcairo, dumb).
set -euo pipefail
pkgs=(build-essential pkg-config liblua5.4-dev lua5.4 libopenblas-dev libopenblas0-openmp liblapacke-dev
      libreadline-dev nettle-dev python3-numpy gnuplot-nox
      libopenmpi-dev openmpi-bin    # Open MPI: the opt-in `make MPI=1` build, tests/mpi
      zlib1g-dev python3-sklearn)   # zlib: qd.data.digits reads sklearn's 8x8 digits (QDDM)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup: all dependencies present"
