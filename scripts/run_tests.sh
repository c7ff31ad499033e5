#!/usr/bin/env bash
# README command (b), and what .ci/run calls: install what is missing, build with warnings as errors, run every test.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CNNPAR_BUILD_DIR:-$root/build}
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh" -DCNNPAR_WERROR=ON
source "$root/scripts/mpi_env.sh"
cd "$build"
ctest --output-on-failure -j "$(nproc)" "$@"
