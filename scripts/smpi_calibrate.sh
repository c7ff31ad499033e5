#!/usr/bin/env bash
# Measures this machine's kernel rates for the simulated cluster: the real program on 1 rank (no communication),
# per layer kind operations / median serial time (every layer on its own: --fusion off), and writes them to sim/rates.env (CNNPAR_SMPI_RATES, read by
# scripts/smpi_run.sh; sim_compute.hpp). Prints the conv rate: the core speed to give sim/make_platforms.py --speed.
# Both the seed network and letters run, so every layer kind has a rate; rates depend on the batch (the fc kernel is
# memory-bound at B = 1), so calibrate at the batch you simulate.
# The host's speed drifts (other tenants of the VM): the runs are repeated --repeats times (default 5), interleaved, and
# each kind's rate is the median over the repeats; the spread (min-max) is printed so a noisy calibration shows.
# Usage: scripts/smpi_calibrate.sh [--batch B] [--repeats N] [--write-platforms]   (needs the normal build: scripts/build.sh)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
batch=16 platforms=0 repeats=5
while (($#)); do
  case "$1" in
    --batch) batch=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --write-platforms) platforms=1; shift ;;
    *) echo "usage: $0 [--batch B] [--repeats N] [--write-platforms]" >&2; exit 2 ;;
  esac
done
source "$root/scripts/mpi_env.sh"
bin=${CNNPAR_BUILD_DIR:-$root/build}/cnnpar_mpi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for ((r = 0; r < repeats; r++)); do
  for net in seed letters; do
    # --fusion off: the SMPI build charges every layer on its own (sim_compute.hpp), so it needs layer-by-layer rates.
    mpirun -np 1 "$bin" --net "$net" --batch "$batch" --iterations 300 --warmup 30 --fusion off --quiet --no-progress \
      --output "$work/$net.$r.h5" >/dev/null
  done
done
rates=$(/usr/bin/python3 - "$work" "$repeats" <<'PY'
import re, statistics, sys, h5py
work, repeats = sys.argv[1], int(sys.argv[2])
per_repeat = []
for r in range(repeats):
    ops, secs = {}, {}
    for net in ("seed", "letters"):
        with h5py.File(f"{work}/{net}.{r}.h5", "r") as f:
            names = [n.decode() if isinstance(n, bytes) else n for n in f["layers/name"][()]]
            for l, name in enumerate(names):
                kind = re.sub(r"\d+$", "", name)
                ops[kind] = ops.get(kind, 0) + float(f["work/ops"][l].sum())
                secs[kind] = secs.get(kind, 0) + float(f["timing/serial_layer_s"][l])
    per_repeat.append({k: ops[k] / secs[k] for k in ops})
kinds = sorted(per_repeat[0])
for k in kinds:
    values = [rates[k] for rates in per_repeat]
    print(f"  {k}: median {statistics.median(values):.4g}, min {min(values):.4g}, max {max(values):.4g} operations/s",
          file=sys.stderr)
print(",".join(f"{k}={statistics.median(rates[k] for rates in per_repeat):.4g}" for k in kinds))
PY
)
conv=$(sed 's/.*conv=\([^,]*\).*/\1/' <<<"$rates")
{
  echo "# Written by scripts/smpi_calibrate.sh --batch $batch --repeats $repeats on $(hostname) at $(date -u +%FT%TZ): operations per second"
  echo "# of each layer kind, 1 rank, median serial layer times of seed and letters, median of the repeats. Read by scripts/smpi_run.sh."
  echo "CNNPAR_SMPI_RATES=$rates"
} >"$root/sim/rates.env"
echo "rates: $rates"
echo "core speed (conv multiply-adds per second): $conv"
if ((platforms)); then "$root/sim/make_platforms.py" --speed "$conv"; echo "platforms rewritten with --speed $conv"; fi
