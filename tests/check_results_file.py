#!/usr/bin/env python3
"""Checks a cnnpar results file against docs/results-schema.md and the byte model.

Usage: check_results_file.py RESULTS.h5 --nprocs P [--batch B] [--iterations I] [--combinations K]
                             [--schema docs/results-schema.md]

Every dataset in the schema table must exist with the documented shape and type, every dataset in the file must be
documented, the measured bytes must equal the model on every layer and rank — for an MPI_Allgatherv boundary
recomputed here from the partition alone: s*(N - n_r) received, s*n_r*(P - 1) sent — the partition must cover each
layer, times must be finite (compute and forward times positive), and the metadata must describe the run. A --compare
file is checked group by group (--combinations: how many groups it must hold). Exit 0 on success, 1 with a list of
failures.
Run with /usr/bin/python3 (Debian's numpy and h5py).
"""
import argparse
import math
import pathlib
import re
import sys

import h5py
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
TYPES = {"int64": np.int64, "uint64": np.uint64, "float64": np.float64, "float32": np.float32}


def schema_rows(path):
    """(dataset, shape, type) for every row of the dataset table."""
    rows = []
    for line in pathlib.Path(path).read_text().splitlines():
        m = re.match(r"\| `(/[^`]+)` \| ([^|]+) \| ([^|]+) \|", line)
        if m:
            rows.append((m.group(1), m.group(2).strip(), m.group(3).strip()))
    return rows


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def check_calibration_boundaries(c, groups, failures):
    """/calibration/boundary [S] names, per size, the layers whose boundary moves exactly that n; every gather and
    reduction of every run must be among the sizes, labelled with its layer, and no label may name another size."""
    sizes = [int(n) for n in c["bytes"][...]]
    labels = [text(v) for v in c["boundary"][...]]
    if len(labels) != len(sizes):
        failures.append(f"/calibration/boundary has {len(labels)} entries for {len(sizes)} sizes")
        return
    expected = {}
    for g in groups:
        names = [text(v) for v in g["layers/name"][...]]
        boundary = [text(v) for v in g["layers/boundary"][...]]
        items, item_bytes = g["layers/items"][...], g["layers/item_bytes"][...]
        out = g["layers/out_shape"][...]
        batch = int(g["meta"].attrs["batch"])
        for l, name in enumerate(names):
            if boundary[l] == "allgather":
                expected.setdefault(int(items[l]) * int(item_bytes[l]), set()).add(name)
            elif boundary[l] == "allreduce":
                expected.setdefault(int(np.prod(out[l])) * batch * 4, set()).add(name)
    found = {n: set(filter(None, label.split(","))) for n, label in zip(sizes, labels)}
    for n, names in expected.items():
        if found.get(n, set()) != names:
            failures.append(f"/calibration/boundary: n = {n} B is the boundary of {sorted(names)}, "
                            f"labelled {sorted(found.get(n, set()))}")
    for n, names in found.items():
        if names and n not in expected:
            failures.append(f"/calibration/boundary: n = {n} B labelled {sorted(names)} is no run's boundary")


def check_calibration_in_pass(c, groups, nprocs, failures):
    """/calibration/in_pass: one row per contiguous gather boundary of the runs (per tensor size and steps since the
    previous boundary), and each rank's evicted bytes recomputed here from the partition and the layer shapes: the
    input its kernels read (the whole input for conv, fc, logsoftmax and replicated steps; its items' share for
    pool and GELU), the output it writes and the parameters it holds, summed over the steps since the previous
    boundary. Checked against the first run that has the boundary, as the program times it."""
    h = c["in_pass"]
    layers = [text(v) for v in h["layers"][...]]
    sizes = [int(n) for n in h["bytes"][...]]
    evicted, times = h["evicted_bytes"][...], h["time_s"][...]
    J = len(layers)
    if len(sizes) != J or evicted.shape != (J, nprocs) or times.shape != (J, int(c.attrs["repetitions"])):
        failures.append(f"/calibration/in_pass: {J} layers, {len(sizes)} bytes, evicted {evicted.shape}, "
                        f"time_s {times.shape}")
        return
    if not (np.isfinite(times).all() and (times > 0).all()):
        failures.append("/calibration/in_pass: non-finite or non-positive times")
    expected = {}
    for g in groups:
        names = [text(v) for v in g["layers/name"][...]]
        boundary = [text(v) for v in g["layers/boundary"][...]]
        split = [text(v) for v in g["layers/split"][...]]
        count, item_bytes = g["partition/count"][...], g["layers/item_bytes"][...]
        in_shape, weights = g["layers/in_shape"][...], g["memory/weight_bytes"][...]
        batch = int(g["meta"].attrs["batch"])
        chain, touched = [], np.zeros(nprocs, dtype=np.int64)
        for l, name in enumerate(names):
            chain.append(name)
            whole_input = int(np.prod(in_shape[l])) * batch * 4
            if split[l] == "replicated" or not name.startswith(("pool", "gelu")):
                read = np.full(nprocs, whole_input, dtype=np.int64)
            else:  # pool by channel, GELU by channel or element: the same items of the input as of the output
                read = count[l] * (whole_input // max(1, int(g["layers/items"][l])))
            touched = touched + read + count[l] * item_bytes[l] + weights[l]
            if boundary[l] == "none":
                continue
            if boundary[l] == "allgather" and split[l] in ("channels", "elements", "features"):
                expected.setdefault(("+".join(chain), int(g["layers/items"][l]) * int(item_bytes[l])), touched)
            chain, touched = [], np.zeros(nprocs, dtype=np.int64)
    found = {(layer, n): evicted[j] for j, (layer, n) in enumerate(zip(layers, sizes))}
    if set(found) != set(expected):
        failures.append(f"/calibration/in_pass rows {sorted(found)}, expected {sorted(expected)}")
        return
    for key, want in expected.items():
        if not np.array_equal(found[key], want):
            failures.append(f"/calibration/in_pass {key}: evicted_bytes {found[key].tolist()}, expected {want.astype(np.int64).tolist()}")


def check_run(g, args, failures):
    """Checks one run's schema inside group g (the file root, or /compare/<combination>)."""

    def check(ok, what):
        if not ok:
            failures.append(f"{g.name}: {what}")

    meta = g["meta"].attrs
    P = int(meta["nprocs"])
    I = int(meta["iterations"])
    B = int(meta["batch"])
    L = g["layers/name"].shape[0]
    check(P == args.nprocs, f"/meta nprocs {P} != {args.nprocs}")
    if args.batch is not None:
        check(B == args.batch, f"/meta batch {B} != {args.batch}")
    if args.iterations is not None:
        check(I == args.iterations, f"/meta iterations {I} != {args.iterations}")
    out_shape = g["layers/out_shape"][...]
    dims = {"L": L, "S": L + 1, "P": P, "I": I, "B": B, "C": int(g["layers/in_shape"][0][0]),
            "H": int(g["layers/in_shape"][0][1]), "W": int(g["layers/in_shape"][0][2]), "O": int(out_shape[-1][0])}

    # Every documented dataset exists with its shape and type; every dataset is documented.
    documented = set()
    for name, shape, dtype in schema_rows(args.schema):
        if name.startswith("/calibration/"):  # at the file's root: checked in main
            documented.add(name)
            continue
        if "<" in name or name.startswith("/compare/"):  # patterns, and the --compare index: checked below
            continue
        documented.add(name)
        if name.startswith("/tensors/") and "tensors" not in g:
            continue  # optional: only with --dump-tensors
        if name.lstrip("/") not in g:
            check(False, f"{name}: documented but missing")
            continue
        ds = g[name.lstrip("/")]
        want = tuple(int(d) if d.strip().isdigit() else dims[d.strip()] for d in shape.strip("[]").split(","))
        check(ds.shape == want, f"{name}: shape {ds.shape}, documented {shape} = {want}")
        if dtype == "string":
            check(h5py.check_string_dtype(ds.dtype) is not None, f"{name}: not a string dataset")
        else:
            check(ds.dtype == TYPES[dtype], f"{name}: type {ds.dtype}, documented {dtype}")
            for attr in ("units", "dims", "description"):
                check(attr in ds.attrs, f"{name}: no '{attr}' attribute")
    names = [n.decode() if isinstance(n, bytes) else n for n in g["layers/name"][...]]
    patterns = [re.compile(r"/tensors/(%s)\.(weight|bias)$" % "|".join(names)),
                re.compile(r"/tensors/layers/(%s)$" % "|".join(names))]

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            full = "/" + name
            check(full in documented or any(p.match(full) for p in patterns), f"{full}: not in the schema document")
    g.visititems(visit)

    # The byte model. For MPI_Allgatherv boundaries it is recomputed here from the partition alone.
    items = g["layers/items"][...]
    s = g["layers/item_bytes"][...]
    begin = g["partition/begin"][...]
    count = g["partition/count"][...]
    recv = g["comm/bytes_received"][...]
    sent = g["comm/bytes_sent"][...]
    expected = g["comm/bytes_expected"][...]
    expected_sent = g["comm/bytes_sent_expected"][...]
    boundary = [b.decode() if isinstance(b, bytes) else b for b in g["layers/boundary"][...]]
    splits = [b.decode() if isinstance(b, bytes) else b for b in g["layers/split"][...]]
    allgatherv = meta["consolidation"] == "allgatherv"
    for l in range(L):
        if splits[l] in ("tiles", "rows-channels", "samples-channels"):  # a block per grid row, each C times
            grid_cols = int(g["layers/grid"][l][1])
            check(count[l].sum() == items[l] * grid_cols, f"layer {names[l]}: 2-D partition covers "
                  f"{count[l].sum()} of {items[l]} x {grid_cols}")
        elif splits[l] == "replicated":  # every rank computes every item
            check(all(begin[l] == 0) and all(count[l] == items[l]), f"layer {names[l]}: replicated but not whole")
        else:
            check(count[l].sum() == items[l], f"layer {names[l]}: partition covers {count[l].sum()} of {items[l]}")
            check(begin[l][0] == 0 and all(begin[l][r + 1] == begin[l][r] + count[l][r] for r in range(P - 1)),
                  f"layer {names[l]}: partition not contiguous")
        for r in range(P):
            check(int(recv[l][r]) == int(expected[l][r]), f"{names[l]} rank {r}: received {recv[l][r]} != model "
                  f"{expected[l][r]}")
            check(int(sent[l][r]) == int(expected_sent[l][r]), f"{names[l]} rank {r}: sent {sent[l][r]} != model "
                  f"{expected_sent[l][r]}")
            if allgatherv and boundary[l] == "allgather":
                model = int(s[l]) * (int(items[l]) - int(count[l][r]))
                check(int(recv[l][r]) == model, f"{names[l]} rank {r}: received {recv[l][r]} != s*(N-n_r) = {model}")
                model_sent = int(s[l]) * int(count[l][r]) * (P - 1)
                check(int(sent[l][r]) == model_sent, f"{names[l]} rank {r}: sent {sent[l][r]} != {model_sent}")
            if boundary[l] == "none":
                check(int(recv[l][r]) == 0 and int(sent[l][r]) == 0, f"{names[l]} rank {r}: bytes with no boundary")
    # Who sent what to whom, recorded at the MPI interface: rows must sum to what each rank counted as sent, columns
    # to what it counted as received (two independent records of the same traffic), nobody sends to itself.
    matrix = g["comm/matrix"][...].astype(np.int64)
    check(matrix.shape == (L + 1, P, P), f"/comm/matrix shape {matrix.shape} != {(L + 1, P, P)}")
    if matrix.shape == (L + 1, P, P):
        stage_sent = np.vstack([g["comm/input_bytes_sent"][...][None, :], sent]).astype(np.int64)
        stage_recv = np.vstack([g["comm/input_bytes_received"][...][None, :], recv]).astype(np.int64)
        for st in range(L + 1):
            what = "input broadcast" if st == 0 else names[st - 1]
            check(np.array_equal(matrix[st].sum(axis=1), stage_sent[st]),
                  f"{what}: /comm/matrix row sums {matrix[st].sum(axis=1)[:8]} != bytes sent {stage_sent[st][:8]}")
            check(np.array_equal(matrix[st].sum(axis=0), stage_recv[st]),
                  f"{what}: /comm/matrix column sums {matrix[st].sum(axis=0)[:8]} != bytes received "
                  f"{stage_recv[st][:8]}")
            check(not np.diagonal(matrix[st]).any(), f"{what}: /comm/matrix has a rank sending to itself")
    # Reads in place through a shared window (consolidation.hpp), oriented as /comm/matrix: from the rank that stored
    # the data to the rank that read it. Its column sums must equal each reader's total, which the consolidation
    # counts apart; nobody reads itself, only ranks of one node share a window, and allgatherv's private buffers are
    # never read in place.
    reads = g["comm/shared_read_matrix"][...].astype(np.int64)
    check(reads.shape == (L + 1, P, P), f"/comm/shared_read_matrix shape {reads.shape} != {(L + 1, P, P)}")
    read_total = np.vstack([g["comm/input_bytes_read_in_place"][...][None, :],
                            g["comm/bytes_read_in_place"][...]]).astype(np.int64)
    node = g["ranks/node"][...]
    other_node = node[:, None] != node[None, :]
    if reads.shape == (L + 1, P, P):
        for st in range(L + 1):
            what = "input broadcast" if st == 0 else names[st - 1]
            check(np.array_equal(reads[st].sum(axis=0), read_total[st]),
                  f"{what}: /comm/shared_read_matrix column sums {reads[st].sum(axis=0)[:8]} != bytes read in place "
                  f"{read_total[st][:8]}")
            check(not np.diagonal(reads[st]).any(), f"{what}: /comm/shared_read_matrix has a rank reading itself")
            check(not reads[st][other_node].any(), f"{what}: /comm/shared_read_matrix reads across nodes")
    if allgatherv:
        check(not reads.any() and not read_total.any(), "allgatherv: bytes read in place through a window")
    if meta["consolidation"] == "shared" and read_total.shape == (L + 1, P):
        # After the last boundary every rank reads the whole output (to hash its copy): all of it but what the rank
        # stored itself; a row-parallel last layer's sum besides loads the rank's block of every other partial.
        n = int(np.prod(out_shape[-1])) * B
        owned = g["work/elements_owned"][...][-1].astype(np.int64)
        for r in range(P):
            if splits[-1] == "replicated":
                want = 0
            elif splits[-1] == "input-features":
                block = n // P + (1 if r < n % P else 0)
                want = 4 * ((P - 1) * block + n - block)
            else:
                want = 4 * (n - int(owned[r]))
            check(int(read_total[L][r]) == want, f"{names[-1]} rank {r}: read {read_total[L][r]} B in place after "
                  f"the last boundary, expected {want}")
    if meta["plan"] == "per-layer":
        for l in range(L):
            check(count[l].max() - count[l].min() <= 1, f"layer {names[l]}: block partition unbalanced")
    inp = g["comm/input_bytes_received"][...]
    check(list(inp) == list(g["comm/input_bytes_expected"][...]), f"input broadcast bytes {list(inp)} != model")
    if allgatherv:
        in_bytes = 4 * B * dims["C"] * dims["H"] * dims["W"]
        check(list(inp) == [0] + [in_bytes] * (P - 1), f"input broadcast bytes {list(inp)}")

    # Times: finite; compute and forward strictly positive; no wait or transfer without a collective.
    for name in ("compute_s", "wait_s", "transfer_s", "forward_s", "broadcast_wait_s", "broadcast_transfer_s",
                 "serial_layer_s"):
        v = g["timing/" + name][...]
        check(np.isfinite(v).all() and (v >= 0).all(), f"/timing/{name}: non-finite or negative values")
    check((g["timing/compute_s"][...] > 0).all(), "/timing/compute_s: a zero compute time")
    check((g["timing/forward_s"][...] > 0).all(), "/timing/forward_s: a zero forward time")
    for l in range(L):
        if boundary[l] == "none":
            check((g["timing/wait_s"][:, l, :] == 0).all(), f"{names[l]}: wait time at a boundary with no collective")

    # Metadata.
    for key in ("program_version", "git_commit", "created_utc", "command_line", "nodes", "mpi_library", "network",
                "warmup", "seed", "input_file", "input_first_index", "consolidation", "plan", "slurm_job_id",
                "output_checksum_fnv1a64", "verification", "wait_transfer_method"):
        check(key in meta, f"/meta: attribute '{key}' missing")
    check(re.fullmatch(r"0x[0-9a-f]{16}", str(meta["output_checksum_fnv1a64"])) is not None, "checksum format")
    check(meta["verification"] != "differs", "verification failed")
    check(len(g["ranks/host"]) == P and all(len(h) > 0 for h in g["ranks/host"][...]), "/ranks/host")
    return L, P


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("--nprocs", type=int, required=True)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--iterations", type=int)
    ap.add_argument("--schema", default=ROOT / "docs" / "results-schema.md")
    ap.add_argument("--combinations", type=int, help="a --compare file: the number of groups it must hold")
    args = ap.parse_args()
    failures = []
    with h5py.File(args.results, "r") as f:
        if not (f.attrs.get("schema") == "cnnpar-results" and int(f.attrs.get("schema_version", 0)) == 1):
            failures.append("root schema attributes")
        if "compare" in f:
            groups = [f["compare/" + (n.decode() if isinstance(n, bytes) else n)] for n in f["compare/combinations"]]
            if args.combinations is not None and len(groups) != args.combinations:
                failures.append(f"{len(groups)} combinations, expected {args.combinations}")
        else:
            groups = [f]
        for g in groups:
            L, P = check_run(g, args, failures)
        if "calibration" in f:
            c = f["calibration"]
            shape = (len(c["collective"]), len(c["bytes"]), int(c.attrs["repetitions"]))
            if c["time_s"].shape != shape or int(c.attrs["nprocs"]) != args.nprocs:
                failures.append(f"/calibration: time_s {c['time_s'].shape} != {shape} or wrong nprocs")
            t = c["time_s"][...]
            if not (np.isfinite(t).all() and (t > 0).all()):
                failures.append("/calibration: non-finite or non-positive times")
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in c["collective"][()]]
            known = ("allgatherv", "allreduce", "bcast", "allgatherv_fresh")
            if len(set(names)) != len(names) or not set(names) <= set(known):
                failures.append(f"/calibration/collective is {names}: each at most once, of {', '.join(known)}")
            if "boundary" in c:
                check_calibration_boundaries(c, groups, failures)
            if "in_pass" in c:
                check_calibration_in_pass(c, groups, args.nprocs, failures)

    if failures:
        print(f"FAIL: {args.results}: {len(failures)} problem(s)")
        for msg in failures:
            print("  " + msg)
        return 1
    print(f"OK: {args.results}: {len(groups)} run(s): schema, byte model ({L} layers x {P} ranks), timings, metadata")
    return 0


if __name__ == "__main__":
    sys.exit(main())
