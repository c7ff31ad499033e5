#!/usr/bin/env bash
# README command (b), and what .ci/run calls: install what is missing, build with warnings as errors, run every test.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CNNPAR_BUILD_DIR:-$root/build}
# CNNPAR_SKIP_SMPI=1: only the normal build (the SMPI build, SimGrid's simulated cluster, adds ~4 minutes).
smpi=$([[ "${CNNPAR_SKIP_SMPI:-0}" == 1 ]] && echo 0 || echo 1)
"$root/scripts/install_deps.sh" $( ((smpi)) && echo --with-simgrid)
"$root/scripts/build.sh" -DCNNPAR_WERROR=ON
source "$root/scripts/mpi_env.sh"
(cd "$build" && ctest --output-on-failure -j "$(nproc)" "$@")
if ((smpi)); then
  "$root/scripts/build_smpi.sh" -DCNNPAR_WERROR=ON
  ctest --test-dir "${CNNPAR_SMPI_BUILD_DIR:-$root/build-smpi}" --output-on-failure
fi
