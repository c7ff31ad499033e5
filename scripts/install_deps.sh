#!/usr/bin/env bash
# Installs the Debian packages cnnpar needs to build, run, test and analyse. Safe to re-run: it asks apt only for
# packages that are missing, and runs `apt-get update` at most once per invocation.
# Usage: scripts/install_deps.sh [--with-slurm] [--with-simgrid]    (root, or a user with sudo)
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  openmpi-bin libopenmpi-dev
  libboost-mpi-dev libboost-serialization-dev libboost-program-options-dev
  libhdf5-dev hdf5-tools zlib1g-dev
  googletest libgtest-dev libbenchmark-dev
  libhwy-dev
  clang-14 libclang-rt-14-dev
  python3 python3-numpy python3-h5py python3-matplotlib python3-pytest
)
for arg in "$@"; do
  case "$arg" in
    --with-slurm) packages+=(slurm-wlm munge) ;;
    --with-simgrid) packages+=(libsimgrid-dev) ;;  # smpicxx, smpirun: the simulated cluster (docs/simulation.md)
    *) echo "install_deps: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if ((${#missing[@]} == 0)); then
  echo "install_deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "install_deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
