#!/usr/bin/env bash
# dist_state.sh — bench/dist_state.lua on 1 and P ranks: the observables' largest difference
# (must be <= 1e-12) and each gate kind's compute/exchange times (docs/scaling.md).
#   bash bench/dist_state.sh [MPI_QD = build-mpi/qd] [n = 26] [P = 2]
set -eu
cd "$(dirname "$0")/.."
QD=${1:-build-mpi/qd}; N=${2:-26}; P=${3:-2}
M=(mpirun --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none)
[ "$(id -u)" -eq 0 ] && M+=(--allow-run-as-root)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for r in 1 "$P"; do
  "${M[@]}" -n "$r" "$QD" --threads 1 bench/dist_state.lua "$N" 1
  "${M[@]}" -n "$r" "$QD" --threads 1 bench/dist_state.lua "$N" 1 json > "$tmp/o$r.json"
done
"$QD" bench/dist_state_cmp.lua "$tmp/o1.json" "$tmp/o$P.json" "$P"
