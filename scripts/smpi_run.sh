#!/usr/bin/env bash
# Runs cnnpar_smpi on a simulated cluster under SimGrid's smpirun with the project's SMPI configuration, and records
# the platform and that configuration in the results file's /meta (through the environment: CNNPAR_SMPI_*).
#
# Usage: scripts/smpi_run.sh -np P PLATFORM.xml [cnnpar_smpi arguments...]
#   PLATFORM.xml  a platform from sim/platforms/ (its PLATFORM.hosts hostfile is used: consecutive ranks fill a node)
# Environment:
#   CNNPAR_SMPI_BIN     the program (default: build-smpi/cnnpar_smpi)
#   CNNPAR_SMPI_RATES   kernel rates per layer kind (default: sim/rates.env, else the built-in ones; sim_compute.hpp)
#   CNNPAR_SMPI_COLL    collective selector (default ompi: Open MPI's tuned decision rules, which our real runs use)
#   CNNPAR_SMPI_HOSTFILE  another hostfile than PLATFORM.hosts (e.g. one rank per node)
#   CNNPAR_SMPI_EXTRA   more smpirun options, e.g. "--cfg=smpi/shared-malloc:global"
#
# The configuration, and why:
#   smpi/simulate-computation:no  code between MPI calls costs no simulated time ...
#   smpi/cpu-threshold:-1         ... except the kernels, which charge their exact operation counts at the
#                                 calibrated rates (sim_compute.hpp): deterministic, unlike benchmarking the real clock
#   smpi/host-speed:S             S = the platform's core speed, so one charged second here is one simulated second
#   smpi/coll-selector:ompi       MPI_Allgatherv, MPI_Bcast, ... pick their algorithms as Open MPI 4.1 does (SMPI's
#                                 default allgatherv is the naive one)
#   smpi/lat-factor:0:1,          the platform's latencies and bandwidths as written: SMPI's default factors (latency
#   smpi/bw-factor:0:1            x2 to x11.6, bandwidth x0.34 to x1.09 by message size) were fitted to a TCP cluster
#   network/crosstraffic:0        no reverse "acknowledgement" flow: by default every transfer also loads the reverse
#                                 route with 5% of its rate (TCP's acks), which makes a node that sends and receives at
#                                 once 5% slower than its link; our platforms model an RDMA fabric, as written
#   smpi/privatize-libs:<hdf5>    each simulated rank gets its own copy of libhdf5's globals (only rank 0 writes, but
#                                 HDF5 keeps library-wide state; the program itself is privatised by smpirun's dlopen)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ "${1:-}" == "-np" && $# -ge 3 ]] || { echo "usage: $0 -np P PLATFORM.xml [cnnpar_smpi arguments...]" >&2; exit 2; }
np=$2 platform=$3
shift 3
bin=${CNNPAR_SMPI_BIN:-$root/build-smpi/cnnpar_smpi}
hosts=${CNNPAR_SMPI_HOSTFILE:-${platform%.xml}.hosts}
[[ -f "$platform" && -f "$hosts" ]] || { echo "$0: need $platform and $hosts" >&2; exit 2; }
[[ -x "$bin" ]] || { echo "$0: no $bin (build it: scripts/build_smpi.sh)" >&2; exit 2; }
if [[ -z "${CNNPAR_SMPI_RATES:-}" && -f "$root/sim/rates.env" ]]; then source "$root/sim/rates.env"; fi
# The core speed as written in the platform (speed="5.08e+09f"), without its unit.
speed=$(grep -o 'speed="[0-9.e+-]*f"' "$platform" | head -n 1 | sed 's/speed="\(.*\)f"/\1/')
hdf5=$(ldd "$bin" | awk '/libhdf5/ {print $1}' | head -n 1)
cfg=(--cfg=smpi/simulate-computation:no --cfg=smpi/cpu-threshold:-1 "--cfg=smpi/host-speed:${speed}f"
     "--cfg=smpi/coll-selector:${CNNPAR_SMPI_COLL:-ompi}" --cfg=smpi/lat-factor:0:1 --cfg=smpi/bw-factor:0:1
     --cfg=network/crosstraffic:0)
[[ -n "$hdf5" ]] && cfg+=("--cfg=smpi/privatize-libs:$hdf5")
read -r -a extra <<<"${CNNPAR_SMPI_EXTRA:-}"
cfg+=("${extra[@]}")
export CNNPAR_SMPI_PLATFORM
CNNPAR_SMPI_PLATFORM=$(realpath "$platform")
export CNNPAR_SMPI_CONFIG="${cfg[*]}"
export CNNPAR_SMPI_RATES
exec smpirun -np "$np" -platform "$platform" -hostfile "$hosts" "${cfg[@]}" --log=root.thresh:warning \
  "$bin" "$@"
