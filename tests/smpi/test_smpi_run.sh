#!/usr/bin/env bash
# smpi.verify.np16: cnnpar_smpi at P = 16 on the 4-node platform, --verify and --output; the file must pass
# check_results_file.py and its /meta must say it was simulated, on which platform, with which configuration.
# Usage: test_smpi_run.sh SMPI_RUN PLATFORM PYTHON CHECKER WORKDIR
set -euo pipefail
run=$1 platform=$2 python=$3 checker=$4 work=$5
rm -rf "$work" && mkdir -p "$work"
"$run" -np 16 "$platform" --verify --quiet --iterations 5 --warmup 1 --batch 4 --output "$work/run.h5" | tee "$work/out.txt"
grep -q "bit-for-bit equal" "$work/out.txt"
"$python" "$checker" "$work/run.h5" --nprocs 16 --iterations 5 --batch 4
"$python" - "$work/run.h5" <<'PY'
import sys, h5py
m = h5py.File(sys.argv[1], "r")["meta"].attrs
def s(k):
    v = m[k]
    return v.decode() if isinstance(v, bytes) else str(v)
assert int(m["simulated"]) == 1, "simulated"
assert int(m["nodes"]) == 4, f"nodes = {m['nodes']}"
assert s("smpi_platform").endswith("cluster-4x4.xml"), s("smpi_platform")
assert "<cluster" in s("smpi_platform_xml"), "platform text"
assert "smpi/coll-selector:ompi" in s("smpi_config"), s("smpi_config")
assert "conv=" in s("smpi_compute_rates"), s("smpi_compute_rates")
assert "SMPI" in s("mpi_library"), s("mpi_library")
print("meta: simulated on", s("smpi_platform"), "with", s("smpi_config"))
PY
