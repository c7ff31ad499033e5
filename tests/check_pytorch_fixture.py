#!/usr/bin/python3
"""Compare the cnnpar program's output against the PyTorch reference fixture.

Usage:
    check_pytorch_fixture.py --fixture F --results R [--atol 1e-5 --rtol 1e-5]

Reads ``expected_output`` (float32 [B, 128]) from the fixture F and the
program's output from dataset ``/tensors/output`` of the results file R
(float32 [B, features], PyTorch [N, features] layout), then checks
elementwise

    |actual - expected| <= atol + rtol * |expected|

Exit status: 0 pass, 1 fail (tolerance exceeded or non-finite values),
2 missing/unreadable file, missing dataset or shape mismatch.

Needs only numpy and h5py (runs under Debian's /usr/bin/python3).
"""

import argparse
import os
import sys

import numpy as np

try:
    import h5py
except ImportError as exc:  # pragma: no cover - environment problem
    print(f"ERROR: h5py is required: {exc}", file=sys.stderr)
    sys.exit(2)

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


class CheckError(Exception):
    """A setup problem (missing file/dataset, shape mismatch): exit code 2."""


def read_dataset(path, name, what):
    if not os.path.isfile(path):
        raise CheckError(f"{what} file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CheckError(f"cannot open {what} file {path} as HDF5: {exc}") from exc
    with f:
        obj = f.get(name)
        if obj is None:
            raise CheckError(f"{what} file {path} has no dataset '{name}'")
        if not isinstance(obj, h5py.Dataset):
            raise CheckError(f"'{name}' in {what} file {path} is not a dataset")
        if obj.dtype.kind not in "fiu":
            raise CheckError(f"dataset '{name}' in {path} has non-numeric dtype {obj.dtype}")
        return obj[()]


def main(argv=None):
    ap = argparse.ArgumentParser(description="Compare cnnpar output with the PyTorch fixture.")
    ap.add_argument("--fixture", required=True, help="PyTorch fixture HDF5 (expected_output)")
    ap.add_argument("--results", required=True, help="cnnpar results HDF5 (/tensors/output)")
    ap.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (default 1e-5)")
    ap.add_argument("--rtol", type=float, default=1e-5, help="relative tolerance (default 1e-5)")
    ap.add_argument("--expected-dataset", default="expected_output",
                    help="dataset in the fixture (default: expected_output)")
    ap.add_argument("--results-dataset", default="/tensors/output",
                    help="dataset in the results file (default: /tensors/output)")
    args = ap.parse_args(argv)

    try:
        expected = read_dataset(args.fixture, args.expected_dataset, "fixture")
        actual = read_dataset(args.results, args.results_dataset, "results")
        if expected.shape != actual.shape:
            raise CheckError(
                f"shape mismatch: results {args.results_dataset} has shape {actual.shape}, "
                f"fixture {args.expected_dataset} has shape {expected.shape}")
    except CheckError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        print("FAIL (error)")
        return EXIT_ERROR

    print(f"fixture: {args.fixture} [{args.expected_dataset}] {expected.dtype} {expected.shape}")
    print(f"results: {args.results} [{args.results_dataset}] {actual.dtype} {actual.shape}")
    if expected.size == 0:
        print("ERROR: empty tensors", file=sys.stderr)
        print("FAIL (error)")
        return EXIT_ERROR

    e = expected.astype(np.float64)
    a = actual.astype(np.float64)
    nonfinite = int(np.count_nonzero(~np.isfinite(a)))
    diff = np.abs(a - e)
    tol = args.atol + args.rtol * np.abs(e)
    ok = diff <= tol  # NaN compares False -> counted as failure
    n_bad = int(ok.size - np.count_nonzero(ok))

    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(e != 0, diff / np.abs(e), np.where(diff == 0, 0.0, np.inf))
    finite = np.isfinite(diff)
    max_abs = float(diff.max())  # NaN if any element is NaN
    worst = np.unravel_index(int(np.nanargmax(np.where(finite, diff / tol, np.inf))), e.shape)
    print(f"max abs diff: {max_abs:.3e}")
    print(f"max rel diff: {float(rel.max()):.3e}")
    print(f"max |expected|: {float(np.abs(e).max()):.3e}")
    print(f"worst element {tuple(int(i) for i in worst)}: actual {a[worst]:.9g}, "
          f"expected {e[worst]:.9g}, diff {diff[worst]:.3e}, allowed {tol[worst]:.3e}")
    print(f"tolerance: atol={args.atol:g} rtol={args.rtol:g}")
    if nonfinite:
        print(f"non-finite values in results: {nonfinite}")
    if n_bad == 0:
        print(f"PASS ({ok.size} elements within tolerance)")
        return EXIT_PASS
    print(f"FAIL ({n_bad} of {ok.size} elements outside tolerance)")
    return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
