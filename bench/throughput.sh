#!/usr/bin/env bash
# Benchmark: single-rank forward-pass throughput of the seed network (images/s) at several batch sizes, and the
# per-rank memory the distributed run allocates. Prints a table. Usage: bench/throughput.sh [ITERATIONS]
# (after scripts/build.sh; -DCNNPAR_NATIVE=ON builds with -march=native).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exe=${CNNPAR_BUILD_DIR:-$root/build}/cnnpar_mpi
iterations=${1:-50}
source "$root/scripts/mpi_env.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-6s %-4s %14s %14s %18s %18s\n' "batch" "P" "serial img/s" "parallel img/s" "weights B/rank" "activations B/rank"
for batch in 1 64 256; do
  for np in 1 2; do
    mpirun -np "$np" "$exe" --quiet --no-progress --batch "$batch" --iterations "$iterations" --warmup 3 \
      --output "$work/b${batch}_np${np}.h5" >"$work/out.txt"
    read -r parallel serial <<<"$(sed -nE 's/^Throughput: ([0-9]+) images\/s on [0-9]+ ranks?, ([0-9]+) images\/s serial.*/\1 \2/p' "$work/out.txt")"
    read -r weights activations <<<"$(/usr/bin/python3 - "$work/b${batch}_np${np}.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1]) as f:
    print(int(f["memory/weight_bytes"][...].sum(axis=0).max()), int(f["memory/activation_bytes"][...].max()))
PY
)"
    printf '%-6s %-4s %14s %14s %18s %18s\n' "$batch" "$np" "$serial" "$parallel" "$weights" "$activations"
  done
done
