#!/usr/bin/env bash
# --compare end to end: every consolidation x plan combination runs, is verified against the serial reference
# (bit for bit, or within the bound for the row-parallel plan), its measured bytes equal the model, and the HDF5
# file holds one group per combination with the full schema.
# Usage: test_compare.sh PYTHON CHECKER MPIEXEC NP_FLAG NP CNNPAR_MPI WORKDIR COMBINATIONS [cnnpar_mpi options...]
set -euo pipefail
python=$1 checker=$2 mpiexec=$3 npflag=$4 np=$5 exe=$6 work=$7 combinations=$8
shift 8
rm -rf "$work" && mkdir -p "$work"
out="$work/compare.h5"
compare=--compare
[[ " $* " == *" --compare "* ]] && compare=  # --compare splits given by the caller
"$mpiexec" "$npflag" "$np" "$exe" $compare --iterations 3 --warmup 1 --output "$out" "$@" | tee "$work/stdout.txt"
fail() { echo "FAIL: $*"; exit 1; }
exact=$(grep -c ": bit-for-bit equal; bytes equal the model" "$work/stdout.txt" || true)
bounded=$(grep -c ": within the bound .*; bytes equal the model" "$work/stdout.txt" || true)
((exact + bounded == combinations)) || fail "$exact exact + $bounded bounded verified combinations, expected $combinations"
# The row-parallel (fused) combinations are checked against the rounding bound, every other one bit for bit.
fused=$(grep -c "^[a-z]* / fused: " "$work/stdout.txt" || true)
((fused > 0 && bounded == fused)) || fail "$bounded combinations within the bound, expected the $fused fused ones"
grep -q "^Ranking by forward-pass time" "$work/stdout.txt" || fail "no ranking"
"$python" "$checker" "$out" --nprocs "$np" --iterations 3 --combinations "$combinations"
