#!/usr/bin/env bash
# README command (a): install what is missing, build, and run the default job: the seed network on 4 MPI ranks.
# Extra arguments go to cnnpar_mpi, e.g. scripts/quickstart.sh --batch 8 --verify
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh"
source "$root/scripts/mpi_env.sh"
exec mpirun -np 4 "${CNNPAR_BUILD_DIR:-$root/build}/cnnpar_mpi" "$@"
