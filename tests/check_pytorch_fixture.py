#!/usr/bin/python3
"""Compare a cnnpar results file with a PyTorch reference fixture (any network).

Usage:
    check_pytorch_fixture.py --fixture F --results R [--atol 1e-5 --rtol 1e-5] [--require-layers]

Compares, elementwise,

    |actual - expected| <= atol + rtol * |expected|

for
  * the network output: ``/tensors/output`` of R (float32 [B, features]) against
    ``expected_output`` of F;
  * every layer the fixture has a reference for: ``/tensors/layers/<name>`` of R
    (written with ``--dump-tensors all``) against ``expected/<name>`` of F.
    cnnpar stores the outputs of linear layers (and of what follows them) as
    [B, O, 1, 1]; [B, O] and [B, O, 1, 1] are both accepted against a [B, O]
    reference.

When R has a ``/tensors/layers`` group, every ``expected/<name>`` of F must be in
it. When R has none (written with ``--dump-tensors final``) only the output is
compared, and the layers are reported as not checked, unless ``--require-layers``
is given: then that is an error. Layers R has but F has no reference for are
listed and not checked.

It prints one line per compared tensor (max abs diff, max rel diff, the largest
diff / allowed, PASS or FAIL) and the worst element of each failing tensor.

Exit status: 0 pass, 1 fail (tolerance exceeded or non-finite values),
2 missing/unreadable file, missing dataset or layer, or shape mismatch.

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
RESULTS_LAYERS = "/tensors/layers"
FIXTURE_LAYERS = "expected"


class CheckError(Exception):
    """A setup problem (missing file/dataset, shape mismatch): exit code 2."""


def open_file(path, what):
    if not os.path.isfile(path):
        raise CheckError(f"{what} file not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise CheckError(f"cannot open {what} file {path} as HDF5: {exc}") from exc


def read_dataset(f, name, what):
    obj = f.get(name)
    if obj is None:
        raise CheckError(f"{what} file {f.filename} has no dataset '{name}'")
    if not isinstance(obj, h5py.Dataset):
        raise CheckError(f"'{name}' in {what} file {f.filename} is not a dataset")
    if obj.dtype.kind not in "fiu":
        raise CheckError(f"dataset '{name}' in {f.filename} has non-numeric dtype {obj.dtype}")
    return obj[()]


def conform(actual, expected, actual_name, expected_name):
    """actual reshaped to expected's shape where only cnnpar's trailing [.., 1, 1] differs; else a CheckError."""
    if actual.shape == expected.shape:
        return actual
    if actual.shape[:-2] == expected.shape and actual.shape[-2:] == (1, 1):
        return actual.reshape(expected.shape)
    raise CheckError(f"shape mismatch: results {actual_name} has shape {list(actual.shape)}, "
                     f"fixture {expected_name} has shape {list(expected.shape)}")


def compare(actual, expected, atol, rtol):
    """Elementwise comparison statistics of two same-shape arrays (in float64)."""
    e = expected.astype(np.float64)
    a = actual.astype(np.float64)
    diff = np.abs(a - e)
    tol = atol + rtol * np.abs(e)
    ok = diff <= tol  # NaN compares False -> counted as failure
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(e != 0, diff / np.abs(e), np.where(diff == 0, 0.0, np.inf))
        ratio = np.where(diff == 0, 0.0, np.where(np.isfinite(diff), diff / tol, np.inf))
    worst = np.unravel_index(int(np.argmax(ratio)), e.shape)
    return {
        "n": int(ok.size),
        "bad": int(ok.size - np.count_nonzero(ok)),
        "nonfinite": int(np.count_nonzero(~np.isfinite(a))),
        "max_abs": float(diff.max()),  # NaN if any element is NaN
        "max_rel": float(rel.max()),
        "max_ratio": float(ratio.max()),
        "max_ref": float(np.abs(e).max()),
        "worst": tuple(int(i) for i in worst),
        "worst_actual": float(a[worst]),
        "worst_expected": float(e[worst]),
        "worst_diff": float(diff[worst]),
        "worst_allowed": float(tol[worst]),
    }


def layer_order(fixture, results, names):
    """names in network order: the fixture's `layers` attribute, else the results file's /layers/name, then the
    rest alphabetically."""
    order = [str(n) for n in fixture.attrs.get("layers", [])]
    if not order and isinstance(results.get("layers/name"), h5py.Dataset):
        order = [n.decode() if isinstance(n, bytes) else str(n) for n in results["layers/name"][()]]
    rank = {name: i for i, name in enumerate(order)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def main(argv=None):
    ap = argparse.ArgumentParser(description="Compare a cnnpar results file with a PyTorch fixture.")
    ap.add_argument("--fixture", required=True, help="PyTorch fixture HDF5 (expected_output, expected/<layer>)")
    ap.add_argument("--results", required=True,
                    help="cnnpar results HDF5 (/tensors/output, and /tensors/layers/<layer> with --dump-tensors all)")
    ap.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (default 1e-5)")
    ap.add_argument("--rtol", type=float, default=1e-5, help="relative tolerance (default 1e-5)")
    ap.add_argument("--expected-dataset", default="expected_output",
                    help="output dataset in the fixture (default: expected_output)")
    ap.add_argument("--results-dataset", default="/tensors/output",
                    help="output dataset in the results file (default: /tensors/output)")
    ap.add_argument("--require-layers", action="store_true",
                    help=f"fail when the results file has no {RESULTS_LAYERS} group (by default only the output "
                         "is compared then)")
    args = ap.parse_args(argv)

    errors = []  # setup problems found while comparing: exit 2 once everything comparable was compared
    rows = []  # (label, shape, stats)
    try:
        fixture = open_file(args.fixture, "fixture")
        results = open_file(args.results, "results")
    except CheckError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        print("FAIL (error)")
        return EXIT_ERROR

    with fixture, results:
        # The network output: without it nothing else is worth reporting.
        try:
            expected = read_dataset(fixture, args.expected_dataset, "fixture")
            actual = read_dataset(results, args.results_dataset, "results")
            actual = conform(actual, expected, args.results_dataset, args.expected_dataset)
            if expected.size == 0:
                raise CheckError("empty tensors")
        except CheckError as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            print("FAIL (error)")
            return EXIT_ERROR
        print(f"fixture: {args.fixture} [{args.expected_dataset}] {expected.dtype} {list(expected.shape)}")
        print(f"results: {args.results} [{args.results_dataset}] {actual.dtype} {list(actual.shape)}")
        print(f"tolerance: atol={args.atol:g} rtol={args.rtol:g}  (|a - b| <= atol + rtol*|b|)")
        rows.append(("output", expected.shape, compare(actual, expected, args.atol, args.rtol)))

        # Every layer the fixture has a reference for.
        ref_group = fixture.get(FIXTURE_LAYERS)
        ref_names = []
        if isinstance(ref_group, h5py.Group):
            ref_names = [n for n in ref_group if isinstance(ref_group[n], h5py.Dataset)]
            ref_names = layer_order(fixture, results, ref_names)
        got_group = results.get(RESULTS_LAYERS)
        unchecked_note = None
        if not isinstance(got_group, h5py.Group):
            if ref_names and args.require_layers:
                errors.append(f"results file has no {RESULTS_LAYERS} group (write it with --dump-tensors all), "
                              f"but the fixture has {len(ref_names)} layers: {', '.join(ref_names)}")
            elif ref_names:
                unchecked_note = (f"note: results file has no {RESULTS_LAYERS} (written without --dump-tensors "
                                  f"all): the fixture's {len(ref_names)} layers were not checked: "
                                  f"{', '.join(ref_names)}")
        else:
            for name in ref_names:
                got_name = f"{RESULTS_LAYERS}/{name}"
                ref_name = f"{FIXTURE_LAYERS}/{name}"
                try:
                    if name not in got_group:
                        raise CheckError(f"layer '{name}' is missing: the fixture has {ref_name}, "
                                         f"the results file has no {got_name}")
                    ref = read_dataset(fixture, ref_name, "fixture")
                    got = conform(read_dataset(results, got_name, "results"), ref, got_name, ref_name)
                except CheckError as exc:
                    errors.append(str(exc))
                    rows.append((f"layers/{name}", None, None))
                    continue
                rows.append((f"layers/{name}", ref.shape, compare(got, ref, args.atol, args.rtol)))
            extra = sorted(set(got_group) - set(ref_names))
            if extra:
                unchecked_note = (f"note: results layers without a reference in the fixture (not checked): "
                                  f"{', '.join(extra)}")

    print(f"{'tensor':<20} {'shape':<18} {'max abs diff':>13} {'max rel diff':>13} {'max diff/allowed':>16}  result")
    failed = []
    for label, shape, s in rows:
        if s is None:
            print(f"{label:<20} {'-':<18} {'-':>13} {'-':>13} {'-':>16}  ERROR")
            continue
        verdict = "PASS" if s["bad"] == 0 else "FAIL"
        print(f"{label:<20} {str(list(shape)):<18} {s['max_abs']:>13.3e} {s['max_rel']:>13.3e} "
              f"{s['max_ratio']:>16.3g}  {verdict}")
        if s["bad"]:
            failed.append((label, s))
    for label, s in failed:
        print(f"FAIL {label}: {s['bad']} of {s['n']} elements outside tolerance"
              + (f" ({s['nonfinite']} non-finite)" if s["nonfinite"] else "")
              + f"; worst element {s['worst']}: actual {s['worst_actual']:.9g}, expected "
              f"{s['worst_expected']:.9g}, diff {s['worst_diff']:.3e}, allowed {s['worst_allowed']:.3e}")
    if unchecked_note:
        print(unchecked_note)
    for message in errors:
        print(f"ERROR: {message}", file=sys.stderr)

    compared = [r for r in rows if r[2] is not None]
    elements = sum(s["n"] for _, _, s in compared)
    if errors:
        print(f"FAIL (error: {len(errors)} missing or mismatched tensors"
              + (f"; {len(failed)} tensors outside tolerance" if failed else "") + ")")
        return EXIT_ERROR
    if failed:
        print(f"FAIL ({len(failed)} of {len(compared)} tensors outside tolerance: "
              f"{', '.join(label for label, _ in failed)})")
        return EXIT_FAIL
    print(f"PASS ({len(compared)} tensors, {elements} elements within tolerance)")
    return EXIT_PASS


if __name__ == "__main__":
    sys.exit(main())
