#!/usr/bin/env bash
# README command (b), and what .ci/run calls: install what is missing, build with warnings as errors, run every test;
# then (issue 13) the unit and MPI tests again under AddressSanitizer + UndefinedBehaviorSanitizer, and every
# libFuzzer target for a bounded time, from one more build (build-checked/, Debian's clang). Arguments go to the
# first ctest only; CNNPAR_QUICK_TESTS=1 stops after it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CNNPAR_BUILD_DIR:-$root/build}
jobs=$(nproc)
# CNNPAR_SKIP_SMPI=1: no SMPI build (SimGrid's simulated cluster, docs/simulation.md).
smpi=$([[ "${CNNPAR_SKIP_SMPI:-0}" == 1 ]] && echo 0 || echo 1)
# Each phase says when it starts, so a slow CI run shows where its time went.
phase() { echo "== $* (at ${SECONDS} s)"; }
phase "install what is missing, build build/"
"$root/scripts/install_deps.sh" $( ((smpi)) && echo --with-simgrid)
"$root/scripts/build.sh" -DCNNPAR_WERROR=ON
source "$root/scripts/mpi_env.sh"
phase "every test of build/"
(cd "$build" && ctest --output-on-failure -j "$jobs" "$@")
[[ -z ${CNNPAR_QUICK_TESTS:-} ]] || exit 0

if ((smpi)); then
  phase "SMPI: cnnpar_smpi on simulated clusters (build-smpi/, smpicxx)"
  "$root/scripts/build_smpi.sh" -DCNNPAR_WERROR=ON
  ctest --test-dir "${CNNPAR_SMPI_BUILD_DIR:-$root/build-smpi}" --output-on-failure
fi

# One more build serves both: clang with ASan + UBSan (every report fatal) and libFuzzer's coverage, at -O1.
phase "sanitizers and fuzzing: build-checked/ (clang-14, -DCNNPAR_SANITIZE=ON -DCNNPAR_FUZZ=ON)"
checked=$build-checked
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$checked" -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g1" \
  "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" -DCNNPAR_WERROR=ON -DCNNPAR_SANITIZE=ON -DCNNPAR_FUZZ=ON >/dev/null
cmake --build "$checked" -j "$jobs" --target cnnpar_unit_tests cnnpar_mpi_tests cnnpar_mpi fuzz_all

phase "sanitizers: unit tests, MPI tests at np 1-3 and the program at np 1-3 under ASan + UBSan"
# Leaks: Open MPI's own are suppressed (tests/sanitizers/lsan.supp), nothing else. Any report fails the test. For
# the suppressions to see whose allocation it was, stacks are unwound fully (Open MPI is built without frame
# pointers) and Open MPI keeps its components loaded at exit (unloaded, their frames are "<unknown module>").
(
  export ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:check_initialization_order=1:strict_init_order=1
  export LSAN_OPTIONS=suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export OMPI_MCA_mca_base_component_disable_dlclose=1
  cd "$checked" && ctest --output-on-failure -j "$jobs" -R '^(unit\.|mpi\.gtest\.np[123]$|cli\.verify\.np[123]$)'
)

phase "fuzzing: each libFuzzer target for CNNPAR_FUZZ_SECONDS after its committed corpus (fuzz/CMakeLists.txt)"
(cd "$checked" && ctest --output-on-failure -j "$jobs" -L fuzz)
phase "done"
