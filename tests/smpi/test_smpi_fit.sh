#!/usr/bin/env bash
# smpi.fit_recovers_platform: the cost model's fit (analysis/costmodel.py: α-β by relative least squares) applied to
# --calibrate data simulated on a platform whose latency and bandwidth we wrote must give them back within 5%.
#   inter-node: 2 ranks on two nodes of cluster-4x4 — one message crosses two 1 µs, 12.5 GB/s node links:
#               α = 2 µs, 1/β = 12.5 GB/s (MPI_Bcast and MPI_Allgatherv)
#   intra-node: 2 ranks on one node — the loopback, 0.3 µs and 20 GB/s (MPI_Allgatherv; SimGrid 3.32's intra-node
#               MPI_Bcast above 64 KiB takes a constant 0.7 µs whatever the size, so it is left out)
#   between switches: 2 ranks on nodes under two leaf switches of the fat tree (sim/platforms/fattree-64x16.xml) —
#               four 1 µs, 12.5 GB/s links: α = 4 µs, 1/β = 12.5 GB/s
# Usage: test_smpi_fit.sh SMPI_RUN PLATFORM PYTHON WORKDIR
set -euo pipefail
run=$1 platform=$2 python=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
printf 'node-0:1\nnode-1:1\n' >"$work/inter.hosts"
printf 'node-0:2\n' >"$work/intra.hosts"
printf 'node-0:1\nnode-16:1\n' >"$work/cross.hosts"
fat_tree=$(cd "$(dirname "$0")/../.." && pwd)/sim/platforms/fattree-64x16.xml
for where in inter intra cross; do
  on=$platform
  [[ $where == cross ]] && on=$fat_tree
  CNNPAR_SMPI_HOSTFILE=$work/$where.hosts "$run" -np 2 "$on" --quiet --iterations 1 --warmup 0 --calibrate \
    --no-progress --output "$work/$where.h5" >/dev/null
done
cd "$(dirname "$0")/../.."
"$python" - "$work" <<'PY'
import sys, numpy as np, h5py
from analysis import costmodel

def recover(path, collectives, alpha, bandwidth, where):
    f = h5py.File(path, "r")
    c = f["calibration"]
    names = [n.decode() if isinstance(n, bytes) else n for n in c["collective"][()]]
    sizes, times = c["bytes"][()], c["time_s"][()]
    rows, t = [], []
    for k, name in enumerate(names):
        if name in collectives:
            for j, n in enumerate(sizes):
                rows.append(costmodel.design_row(name, 2, float(n)))
                t.append(float(np.median(times[k, j])))
    fit = costmodel.fit(np.array(rows), np.array(t), fit_gamma=False)
    a, bw = fit.params.alpha, 1 / fit.params.beta
    ea, eb = a / alpha - 1, bw / bandwidth - 1
    print(f"{where}: alpha {a * 1e6:.3f} us (platform {alpha * 1e6:.3f}, {ea:+.1%}), bandwidth {bw / 1e9:.2f} GB/s "
          f"(platform {bandwidth / 1e9:.2f}, {eb:+.1%}), rms rel. error {fit.rms_relative_error:.1%}")
    return abs(ea) <= 0.05 and abs(eb) <= 0.05

ok = recover(f"{sys.argv[1]}/inter.h5", ("bcast", "allgatherv"), 2e-6, 12.5e9, "inter-node")
ok &= recover(f"{sys.argv[1]}/intra.h5", ("allgatherv",), 0.3e-6, 20e9, "intra-node")
ok &= recover(f"{sys.argv[1]}/cross.h5", ("bcast", "allgatherv"), 4e-6, 12.5e9, "between leaf switches")
sys.exit(0 if ok else 1)
PY
