#!/usr/bin/env bash
# Runs cnnpar_mpi with the PyTorch fixture's weights on the fixture's images and compares the output with PyTorch's
# (tests/check_pytorch_fixture.py: |a - b| <= atol + rtol*|b|, atol = rtol = 1e-5).
# Every layer's dumped output is checked too (--dump-tensors all): under every plan the dump holds each layer's whole
# output, so it must agree with PyTorch's layer by layer.
# Usage: test_pytorch_fixture.sh PYTHON CHECKER FIXTURE MPIEXEC NP_FLAG NP CNNPAR_MPI WORKDIR [cnnpar_mpi options...]
set -euo pipefail
python=$1 checker=$2 fixture=$3 mpiexec=$4 npflag=$5 np=$6 exe=$7 work=$8
shift 8
rm -rf "$work" && mkdir -p "$work"
batch=$("$python" -c "import h5py,sys; print(h5py.File(sys.argv[1])['expected_output'].shape[0])" "$fixture")
"$mpiexec" "$npflag" "$np" "$exe" --quiet --iterations 2 --warmup 0 --weights "$fixture" --batch "$batch" \
  --index 0 --verify --output "$work/out.h5" --dump-tensors all "$@" | tail -n 3
"$python" "$checker" --fixture "$fixture" --results "$work/out.h5" --atol 1e-5 --rtol 1e-5 --require-layers
