#!/usr/bin/env bash
# Configures and builds cnnpar_smpi (SimGrid SMPI) into build-smpi/ (or $CNNPAR_SMPI_BUILD_DIR); run its tests with
# `ctest --test-dir build-smpi`. Needs libsimgrid-dev (scripts/install_deps.sh --with-simgrid).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CNNPAR_SMPI_BUILD_DIR:-$root/build-smpi}
command -v smpicxx >/dev/null || { echo "build_smpi: no smpicxx; install libsimgrid-dev (scripts/install_deps.sh --with-simgrid)" >&2; exit 1; }
cmake -S "$root" -B "$build" -DCNNPAR_SMPI=ON -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
