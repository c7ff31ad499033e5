#!/usr/bin/env bash
# Benchmark: what recording and writing the results file cost in a default 100-iteration run (target: < 2%).
# Prints a table. Usage: bench/overhead.sh [RANKS] [REPEATS]   (after scripts/build.sh)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exe=${CNNPAR_BUILD_DIR:-$root/build}/cnnpar_mpi
np=${1:-4} repeats=${2:-7}
source "$root/scripts/mpi_env.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

wall() {  # seconds of one whole job
  local start=$EPOCHREALTIME
  mpirun -np "$np" "$exe" --quiet "$@" >"$work/out.txt"
  awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f\n", b - a }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

plain=() with=() writes=()
for ((i = 0; i < repeats; i++)); do  # interleaved, so drift affects both alike
  plain+=("$(wall)")
  rm -f "$work/run.h5"
  with+=("$(wall --output "$work/run.h5")")
  writes+=("$(grep -Eo 'written in [0-9]+ ms' "$work/out.txt" | grep -Eo '[0-9]+')")
done
p=$(printf '%s\n' "${plain[@]}" | median)
w=$(printf '%s\n' "${with[@]}" | median)
ms=$(printf '%s\n' "${writes[@]}" | median)
read -r per_pass forward <<<"$(/usr/bin/python3 - "$work/run.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1]) as f:
    m = f["meta"].attrs
    print(m["timestamps_per_pass"] * m["timestamp_cost_s"], np.median(f["timing/forward_s"][...].max(axis=1)))
PY
)"
echo "cnnpar_mpi overhead of recording and writing: P=$np, B=1, 100 iterations + 10 warm-up, median of $repeats jobs"
printf '%-52s %12s\n' "quantity" "value"
printf '%-52s %10.1f ms\n' "job wall time without --output" "$(awk -v x="$p" 'BEGIN { print x * 1e3 }')"
printf '%-52s %10.1f ms\n' "job wall time with --output" "$(awk -v x="$w" 'BEGIN { print x * 1e3 }')"
printf '%-52s %10.1f %%\n' "difference (noise included)" "$(awk -v a="$p" -v b="$w" 'BEGIN { print 100 * (b - a) / a }')"
printf '%-52s %10.1f ms\n' "results file write (gather excluded), in-program" "$ms"
printf '%-52s %10.2f %%\n' "  as a share of the job with --output" "$(awk -v a="$ms" -v b="$w" 'BEGIN { print 100 * a / (b * 1e3) }')"
printf '%-52s %10.1f ns\n' "clock readings per pass and rank x cost" "$(awk -v x="$per_pass" 'BEGIN { print x * 1e9 }')"
printf '%-52s %10.3f %%\n' "  as a share of the median forward pass" "$(awk -v a="$per_pass" -v b="$forward" 'BEGIN { print 100 * a / b }')"
