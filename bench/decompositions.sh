#!/usr/bin/env bash
# Benchmark: every decomposition side by side (--compare splits: channel, fused, rows, tiles, sample, rows-channel,
# sample-channel x every consolidation that can run them), verified, at several rank counts and batch sizes. Prints
# each job's ranking table (forward time, speedup, efficiency, compute, boundary, bytes and weights per rank).
# Usage: bench/decompositions.sh [ITERATIONS] [NET] [RANKS...]   (defaults: 100 seed 2 4)
# On a machine with fewer cores than ranks the runs are oversubscribed: the script says so in each heading.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exe=${CNNPAR_BUILD_DIR:-$root/build}/cnnpar_mpi
iterations=${1:-100}
net=${2:-seed}
shift $(($# > 2 ? 2 : $#))
ranks=("$@")
((${#ranks[@]})) || ranks=(2 4)
source "$root/scripts/mpi_env.sh"
cores=$(nproc)
for np in "${ranks[@]}"; do
  for batch in 1 64; do
    note=""
    ((np > cores)) && note=" (oversubscribed: $np ranks on $cores cores)"
    echo "== --net $net, P = $np, B = $batch$note"
    mpirun -np "$np" "$exe" --net "$net" --compare splits --batch "$batch" --iterations "$iterations" --warmup 5 \
      --no-progress | sed -n '/^Ranking by/,$p'
    echo
  done
done
