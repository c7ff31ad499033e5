#!/usr/bin/env bash
# Configures and builds cnnpar into build/ (or $CNNPAR_BUILD_DIR). Extra arguments go to cmake's configure step,
# e.g. scripts/build.sh -DCNNPAR_NATIVE=ON.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CNNPAR_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
