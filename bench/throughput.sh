#!/usr/bin/env bash
# Benchmark: forward-pass throughput of the seed network (images/s) at B = 1, 64 and 256 -- cnnpar on 1 and 2 ranks
# and its serial reference, next to PyTorch on one thread in the same run -- and the per-rank memory the distributed
# run allocates. Prints a table of medians over REPEATS interleaved rounds (a shared machine drifts; interleaving
# makes the drift hit every column alike).
#
# Usage: bench/throughput.sh [ITERATIONS] [REPEATS]      (after scripts/build.sh; default 50 iterations, 3 rounds)
# Environment: CNNPAR_BUILD_DIR (default build/); PYTHON (default /usr/bin/python3, Debian's python3-torch).
# Columns: serial = the serial reference inside the same job; P1/serial = the one-rank pass against it (1.00 is
# fair: a one-rank run should show no speedup); PyTorch = torch 1.13 with torch.set_num_threads(1), inference
# mode, the same network (conv 3x3x32, max-pool 2, GELU tanh, linear 5408->128), median of ITERATIONS passes
# after 10 warm-up. The PyTorch column is "-" when torch is not installed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CNNPAR_BUILD_DIR:-$root/build}
exe=$build/cnnpar_mpi
python=${PYTHON:-/usr/bin/python3}
iterations=${1:-50}
repeats=${2:-3}
source "$root/scripts/mpi_env.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

have_torch=0
if "$python" -c 'import torch' 2>/dev/null; then have_torch=1; fi

torch_rate() {  # images/s of PyTorch on one thread at batch $1
  "$python" - "$1" "$iterations" <<'PY'
import statistics, sys, time
import torch
torch.set_num_threads(1)
batch, iterations = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3), torch.nn.MaxPool2d(2), torch.nn.GELU(approximate="tanh"),
                          torch.nn.Flatten(), torch.nn.Linear(32 * 13 * 13, 128)).eval()
x = torch.rand(batch, 1, 28, 28)
times = []
with torch.inference_mode():
    for i in range(10 + iterations):
        t0 = time.perf_counter()
        net(x)
        if i >= 10:
            times.append(time.perf_counter() - t0)
print(round(batch / statistics.median(times)))
PY
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

batches=(1 64 256)
for ((round = 0; round < repeats; round++)); do
  for batch in "${batches[@]}"; do
    for np in 1 2; do
      mpirun -np "$np" "$exe" --quiet --no-progress --force --batch "$batch" --iterations "$iterations" --warmup 3 \
        --output "$work/b${batch}_np${np}.h5" >"$work/out.txt"
      sed -nE 's/^Throughput: ([0-9]+) images\/s on [0-9]+ ranks?, ([0-9]+) images\/s serial.*/\1 \2/p' \
        "$work/out.txt" >>"$work/rates_b${batch}_np${np}.txt"
    done
    if ((have_torch)); then torch_rate "$batch" >>"$work/torch_b${batch}.txt"; fi
  done
done

# The kernels' instruction set and this core's FMA peak, from the microbenchmark binary when it was built.
if [[ -x "$build/cnnpar_kernels_bench" ]]; then
  "$build/cnnpar_kernels_bench" --benchmark_filter='^$' 2>/dev/null | grep -m1 '^kernels:' || true
fi
echo "medians of $repeats rounds, $iterations iterations each; images/s"
printf '%-6s %-3s %13s %15s %10s %16s %15s %18s\n' "batch" "P" "serial img/s" "parallel img/s" "P/serial" \
  "PyTorch 1 thr" "weights B/rank" "activations B/rank"
for batch in "${batches[@]}"; do
  torch="-"
  if ((have_torch)); then torch=$(median <"$work/torch_b${batch}.txt"); fi
  for np in 1 2; do
    parallel=$(awk '{ print $1 }' "$work/rates_b${batch}_np${np}.txt" | median)
    serial=$(awk '{ print $2 }' "$work/rates_b${batch}_np${np}.txt" | median)
    ratio=$(awk -v p="$parallel" -v s="$serial" 'BEGIN { printf "%.2f", p / s }')
    read -r weights activations <<<"$("$python" - "$work/b${batch}_np${np}.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1]) as f:
    print(int(f["memory/weight_bytes"][...].sum(axis=0).max()), int(f["memory/activation_bytes"][...].max()))
PY
)"
    printf '%-6s %-3s %13s %15s %10s %16s %15s %18s\n' "$batch" "$np" "$serial" "$parallel" "$ratio" "$torch" \
      "$weights" "$activations"
  done
done
if ((!have_torch)); then echo "PyTorch column skipped: '$python -c \"import torch\"' failed (Debian: apt-get install python3-torch)"; fi
