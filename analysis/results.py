"""Reading cnnpar results files (docs/results-schema.md) into plain numpy arrays.

This is the only module that knows the HDF5 layout. Every subcommand needs the same checks (is this a cnnpar file,
which schema version) and the same unpacking of `--compare` files, so they live here once and everything downstream
works on `Run` objects. Problems are raised as `ResultsError` with a one-line message naming the file, which the
command line prints as its error.
"""
from __future__ import annotations

import functools
import math
import pathlib
from dataclasses import dataclass

import h5py
import numpy as np

from analysis import topology

SCHEMA = "cnnpar-results"
SCHEMA_VERSION = 1
FLOAT_BYTES = 4
BOUNDARIES = ("none", "allgather", "allreduce", "exchange")  # what a layer boundary does (/layers/boundary)


LAYER_KINDS = ("conv", "pool", "gelu", "fc", "logsoftmax")  # as --split and the spec file name them


def layer_kind(name: str) -> str:
    """conv1 -> conv, fc -> fc, logsoftmax -> logsoftmax; a name of no known kind is returned as it is."""
    stem = name.rstrip("0123456789")
    return stem if stem in LAYER_KINDS else name


class ResultsError(Exception):
    """A results file the analysis cannot use; the message is one line and names the file."""


@dataclass(frozen=True)
class Timestamps:
    """When each phase happened, in seconds on rank 0's clock (every rank's clock offset applied), from the first
    timed pass's earliest start. Compute of layer l on a rank began at boundary_enter - compute_s."""

    forward_start: np.ndarray  # [I, P] the pass began
    broadcast_enter: np.ndarray  # [I, P]
    broadcast_exit: np.ndarray  # [I, P]
    boundary_enter: np.ndarray  # [I, L, P] the layer's compute ended and its boundary began
    boundary_exit: np.ndarray  # [I, L, P]


# Timestamps field -> dataset; all or none of them (files written before they existed have none)
TIMESTAMP_DATASETS = {"forward_start": "timing/forward_start_s", "broadcast_enter": "timing/broadcast_enter_s",
                      "broadcast_exit": "timing/broadcast_exit_s", "boundary_enter": "timing/boundary_enter_s",
                      "boundary_exit": "timing/boundary_exit_s"}


@dataclass(frozen=True)
class Run:
    """One measured run: every rank's records for I timed iterations, L layers and P ranks (times in seconds)."""

    label: str  # file name, plus the compare group for `--compare` files
    path: pathlib.Path
    meta: dict
    layers: tuple[str, ...]
    operation: tuple[str, ...]
    split: tuple[str, ...]
    op_unit: tuple[str, ...]
    boundary: tuple[str, ...]  # per layer one of BOUNDARIES
    in_shape: np.ndarray  # [L, 3] per image C, H, W
    out_shape: np.ndarray  # [L, 3]
    items: np.ndarray  # [L] N
    item_bytes: np.ndarray  # [L] s, whole batch
    begin: np.ndarray  # [L, P]
    count: np.ndarray  # [L, P]
    bytes_received: np.ndarray  # [L, P]
    bytes_expected: np.ndarray  # [L, P]
    bytes_sent: np.ndarray  # [L, P]
    input_bytes_received: np.ndarray  # [P]
    input_bytes_expected: np.ndarray | None  # [P], in files that record it
    weight_bytes: np.ndarray  # [L, P]
    pack: np.ndarray  # [I, L, P] zeros, except in files written before the kernels computed boxes in place: there
    #                   a rows, sample, tiles or 2-D step's copy of its region into the kernel's buffer (see packed;
    #                   zeros also in files written before rows and sample splits existed)
    compute: np.ndarray  # [I, L, P]
    unpack: np.ndarray  # [I, L, P] as pack (the copy of the kernel's output into the layer's tensor)
    halo: np.ndarray  # [I, L, P] an exchange boundary's point-to-point time, entry to exit (zeros elsewhere and in
    #                   files written before it existed); such a boundary's wait and transfer are 0
    wait: np.ndarray  # [I, L, P]
    transfer: np.ndarray  # [I, L, P]
    broadcast_wait: np.ndarray  # [I, P]
    broadcast_transfer: np.ndarray  # [I, P]
    forward: np.ndarray  # [I, P]
    serial_layer: np.ndarray  # [L]
    timestamps: Timestamps | None  # on rank 0's clock, in files that record them (else only durations)
    hosts: tuple[str, ...]
    cpu_binding: tuple[str, ...]  # CPUs each rank may run on, e.g. "0-1"
    nodes: np.ndarray  # [P]
    input_image: np.ndarray | None  # [B, C, H, W] with --dump-tensors, else None
    ops: np.ndarray | None = None  # [L, P] /work/ops: operations of each rank's part (files that record it)
    comm_matrix: np.ndarray | None = None  # [L+1, P, P] /comm/matrix: bytes from rank to rank per stage (if recorded)
    # Shared windows (files that record them): [L+1, P, P] /comm/shared_read_matrix, bytes of rank `from`'s data rank
    # `to` read in place per stage (not MPI traffic); [L, P] and [P] what each rank read in place in all
    shared_read_matrix: np.ndarray | None = None
    bytes_read_in_place: np.ndarray | None = None
    input_bytes_read_in_place: np.ndarray | None = None
    # [L] /layers/fused_with_next (the run computed layer l with l + 1 by one kernel) and
    # /timing/serial_fused_with_next (the serial reference did), in files that record them
    fused_with_next: np.ndarray | None = None
    serial_fused_with_next: np.ndarray | None = None

    @property
    def nprocs(self) -> int:
        return self.compute.shape[2]

    @property
    def has_timestamps(self) -> bool:
        return self.timestamps is not None

    @property
    def iterations(self) -> int:
        return self.compute.shape[0]

    @property
    def batch(self) -> int:
        return int(self.meta.get("batch", 1))

    @property
    def plan(self) -> str:
        return str(self.meta.get("plan", "per-layer"))

    @property
    def consolidation(self) -> str:
        return str(self.meta.get("consolidation", "allgatherv"))

    @property
    def decomposition(self) -> str:
        """/meta@decomposition: the cut a `--compare splits` group ran (channel, fused, rows, sample); "" otherwise."""
        return str(self.meta.get("decomposition", ""))

    @property
    def splits_option(self) -> str:
        """/meta@splits: `--split` as given ("" when the plan's defaults were used)."""
        return str(self.meta.get("splits", ""))

    @property
    def scheme(self) -> str:
        """How the run cut the network, as labels and series name it: the decomposition of a `--compare splits`
        group, else the plan, followed by `--split` when given ("per-layer conv=rows,pool=rows")."""
        if self.decomposition:
            return self.decomposition
        return f"{self.plan} {self.splits_option}" if self.splits_option else self.plan

    @functools.cached_property
    def packed(self) -> tuple[bool, ...]:
        """[L] whether each step copied its region into and out of a packed buffer around its kernel: its recorded
        pack or unpack time is nonzero on some rank in some iteration. Decided from the data, not from the split:
        files written before the kernels computed boxes in place have these copies on their rows, sample, tiles and
        2-D steps, newer files have none on any step (their pack and unpack datasets are kept, all zeros), and the
        split's name alone cannot tell the two apart. The one place that answers it: the timeline's phases, the
        report's pack + unpack column and the trace's pack and unpack events all follow it (stats.step_phases,
        stats.packs)."""
        return tuple(bool(np.any(self.pack[:, layer, :] != 0) or np.any(self.unpack[:, layer, :] != 0))
                     for layer in range(len(self.layers)))

    @property
    def exchanges(self) -> tuple[bool, ...]:
        """[L] whether each boundary is a point-to-point exchange: its time is the halo event, not wait + transfer."""
        return tuple(kind == "exchange" for kind in self.boundary)

    @property
    def network(self) -> str:
        return str(self.meta.get("network", "?"))

    @property
    def network_name(self) -> str:
        """/meta@network_name: "seed", "letters" or the spec file's path ("seed" in files written before it)."""
        return str(self.meta.get("network_name", "seed"))

    @property
    def kinds(self) -> tuple[str, ...]:
        """[L] what each layer is: "conv", "pool", "gelu", "fc" or "logsoftmax". Layer names are PyTorch-style,
        the kind alone when the network has one layer of that kind, else the kind numbered from 1 (conv1, fc3)."""
        return tuple(layer_kind(name) for name in self.layers)

    @property
    def serial_forward(self) -> float:
        return float(self.meta.get("serial_forward_s", math.nan))

    @property
    def node_count(self) -> int:
        return int(self.meta.get("nodes", len(set(self.nodes.tolist()))))

    @property
    def switches(self) -> np.ndarray:
        """[P] the switch each rank's node hangs from (`topology.switches`: from a simulated run's platform file;
        a real run's nodes are all taken as under one switch)."""
        return topology.switches(self.hosts, str(self.meta.get("smpi_platform_xml", "")))[0]

    @property
    def climbs(self) -> np.ndarray | None:
        """[P] the spine a message to each rank climbs to from another leaf of a simulated fat tree
        (`topology.climbs`), None where the run's platform is not one."""
        return topology.climbs(self.hosts, str(self.meta.get("smpi_platform_xml", "")))

    @property
    def gathered_bytes(self) -> np.ndarray:
        """[L] bytes of the whole split tensor (items * item_bytes): what a gather of every slice assembles."""
        return self.items * self.item_bytes

    @property
    def output_bytes(self) -> np.ndarray:
        """[L] bytes of each layer's whole output for the batch, whatever the plan split."""
        return self.out_shape.prod(axis=1) * self.batch * FLOAT_BYTES


@dataclass(frozen=True)
class Calibration:
    """`cnnpar_mpi --calibrate` timings: per collective and message size, R repetitions of one call's slowest rank."""

    label: str
    collectives: tuple[str, ...]  # [K]
    bytes: np.ndarray  # [S] total bytes n of the gathered tensor / reduced vector / broadcast message
    time_s: np.ndarray  # [K, S, R]
    nprocs: int
    nodes: int
    # [S] per size the layers whose boundary moves exactly that n ("" for the grid); () in files without it
    boundaries: tuple[str, ...] = ()
    # /calibration/in_pass: the runs' gathers as a pass leaves the caches; () in files without it
    in_pass: tuple["InPassGather", ...] = ()


@dataclass(frozen=True)
class InPassGather:
    """One gather boundary timed by `--calibrate` as a pass leaves the caches (records.hpp CollectiveTimings::InPass):
    every rank streamed through `evicted_bytes` of its own before each call."""

    layers: str  # the steps since the previous boundary, "conv+pool" or "pool": the gather follows the last
    bytes: float  # n: the whole gathered tensor
    evicted_bytes: np.ndarray  # [P]
    time_s: np.ndarray  # [R] slowest rank of each call


@dataclass(frozen=True)
class ResultsFile:
    path: pathlib.Path
    runs: tuple[Run, ...]
    calibration: Calibration | None


def load(path) -> ResultsFile:
    """Opens and validates one results file; a `--compare` file yields one run per `/compare/<group>`."""
    path = pathlib.Path(path)
    if not path.exists():
        raise ResultsError(f"{path}: no such file")
    if path.is_dir():
        raise ResultsError(f"{path}: is a directory, not a results file")
    if not h5py.is_hdf5(path):
        raise ResultsError(f"{path}: not an HDF5 file")
    try:
        with h5py.File(path, "r") as f:
            _check_schema(path, f)
            groups = ([f] if "timing" in f else []) + _compare_groups(f)
            runs = tuple(_read_run(path, g) for g in groups)
            calibration = _read_calibration(path, f["calibration"]) if "calibration" in f else None
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise ResultsError(f"{path}: unreadable results file ({_one_line(e)})") from e
    if not runs and calibration is None:
        raise ResultsError(f"{path}: holds no run (no /timing group, no /compare groups) and no /calibration")
    return ResultsFile(path, runs, calibration)


def load_runs(paths) -> list[Run]:
    """Every run in every file, in the order given; a file without runs is an error."""
    runs = []
    for path in paths:
        found = load(path).runs
        if not found:
            raise ResultsError(f"{path}: holds no run (calibration only)")
        runs.extend(found)
    return runs


def _compare_groups(f: h5py.File) -> list[h5py.Group]:
    """The /compare/<consolidation>_<plan> groups, in the order /compare/combinations lists them if it exists."""
    if "compare" not in f:
        return []
    groups = {name: item for name, item in f["compare"].items() if isinstance(item, h5py.Group)}
    order = [_text(name) for name in f["compare/combinations"][...]] if "combinations" in f["compare"] else []
    return [groups[name] for name in order if name in groups] + [groups[n] for n in sorted(groups) if n not in order]


def _boundaries(path, g: h5py.Group, plan: str, layers: int) -> tuple[str, ...]:
    """/layers/boundary where the file has it. Files written before it existed ran the per-layer plan (every
    boundary gathers); the fused plan's is inferred as documented in include/cnnpar/plan.hpp."""
    if "layers/boundary" in g:
        found = _strings(path, g, "layers/boundary")
        unknown = sorted(set(found) - set(BOUNDARIES))
        if unknown or len(found) != layers:
            raise ResultsError(f"{path}: /layers/boundary should hold {layers} of {BOUNDARIES}, holds {found}")
        return found
    if plan == "fused":
        return ("none",) * (layers - 1) + ("allreduce",)
    return ("allgather",) * layers


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_schema(path, f: h5py.File) -> None:
    schema = _text(f.attrs.get("schema", ""))
    if schema != SCHEMA:
        found = f"'{schema}'" if schema else "missing"
        raise ResultsError(f"{path}: not a cnnpar results file (root attribute schema is {found}, "
                           f"expected '{SCHEMA}')")
    try:
        version = int(f.attrs["schema_version"])
    except (KeyError, TypeError, ValueError):
        raise ResultsError(f"{path}: cnnpar results file without a usable schema_version attribute") from None
    if version != SCHEMA_VERSION:
        age = "newer" if version > SCHEMA_VERSION else "older"
        raise ResultsError(f"{path}: results schema version {version} is {age} than the one this analysis reads "
                           f"({SCHEMA_VERSION}); use the analysis/ from the cnnpar version that wrote it")


def _meta(group: h5py.Group) -> dict:
    meta = {}
    for key, value in group["meta"].attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.generic):
            value = value.item()
        meta[key] = value
    return meta


def _array(path, group: h5py.Group, name: str, ndim: int) -> np.ndarray:
    if name not in group:
        raise ResultsError(f"{path}: missing dataset {group.name.rstrip('/')}/{name}")
    data = group[name][...]
    if data.ndim != ndim:
        raise ResultsError(f"{path}: {group.name.rstrip('/')}/{name} has {data.ndim} dimensions, expected {ndim}")
    return data


def _strings(path, group: h5py.Group, name: str) -> tuple[str, ...]:
    return tuple(_text(v) for v in _array(path, group, name, 1))


def _read_run(path, g: h5py.Group) -> Run:
    label = path.name if g.name == "/" else f"{path.name} [{g.name.rsplit('/', 1)[-1]}]"
    if "meta" not in g:
        raise ResultsError(f"{path}: missing group {g.name.rstrip('/')}/meta")
    arrays = {name: _array(path, g, dataset, ndim) for name, dataset, ndim in (
        ("in_shape", "layers/in_shape", 2), ("out_shape", "layers/out_shape", 2),
        ("items", "layers/items", 1), ("item_bytes", "layers/item_bytes", 1),
        ("begin", "partition/begin", 2), ("count", "partition/count", 2),
        ("bytes_received", "comm/bytes_received", 2), ("bytes_expected", "comm/bytes_expected", 2),
        ("bytes_sent", "comm/bytes_sent", 2), ("input_bytes_received", "comm/input_bytes_received", 1),
        ("weight_bytes", "memory/weight_bytes", 2),
        ("compute", "timing/compute_s", 3), ("wait", "timing/wait_s", 3), ("transfer", "timing/transfer_s", 3),
        ("broadcast_wait", "timing/broadcast_wait_s", 2), ("broadcast_transfer", "timing/broadcast_transfer_s", 2),
        ("forward", "timing/forward_s", 2), ("serial_layer", "timing/serial_layer_s", 1),
        ("nodes", "ranks/node", 1))}
    for name in ("items", "item_bytes", "begin", "count", "bytes_received", "bytes_expected", "bytes_sent",
                 "input_bytes_received", "weight_bytes"):
        arrays[name] = arrays[name].astype(np.int64)
    layers = _strings(path, g, "layers/name")
    iterations, n_layers, nprocs = arrays["compute"].shape
    if n_layers != len(layers) or iterations == 0 or nprocs == 0:
        raise ResultsError(f"{path}: {g.name.rstrip('/')}/timing/compute_s has shape {arrays['compute'].shape}, "
                           f"expected (iterations >= 1, {len(layers)} layers, ranks >= 1)")
    # files written before rows and sample splits have none: zeros (as every file since the box kernels holds for
    # pack and unpack)
    for name in ("pack", "unpack", "halo"):
        dataset = f"timing/{name}_s"
        arrays[name] = (np.asarray(g[dataset][...], dtype=np.float64) if dataset in g
                        else np.zeros_like(arrays["compute"], dtype=np.float64))
    for name in ("pack", "unpack", "halo", "wait", "transfer"):
        if arrays[name].shape != arrays["compute"].shape:
            raise ResultsError(f"{path}: timing/{name}_s shape {arrays[name].shape} differs from compute_s")
    for name in ("begin", "count", "bytes_received", "bytes_expected", "bytes_sent"):
        if arrays[name].shape != (n_layers, nprocs):
            raise ResultsError(f"{path}: {name} has shape {arrays[name].shape}, expected {(n_layers, nprocs)}")
    timestamps = _read_timestamps(path, g, arrays["compute"].shape)
    image = g["tensors/input"][...] if "tensors/input" in g else None
    input_expected = g["comm/input_bytes_expected"][...].astype(np.int64) if "comm/input_bytes_expected" in g else None
    ops = g["work/ops"][...].astype(np.int64) if "work/ops" in g else None
    if ops is not None and ops.shape != (n_layers, nprocs):
        raise ResultsError(f"{path}: work/ops has shape {ops.shape}, expected {(n_layers, nprocs)}")
    matrix = g["comm/matrix"][...].astype(np.int64) if "comm/matrix" in g else None
    if matrix is not None and matrix.shape != (n_layers + 1, nprocs, nprocs):
        raise ResultsError(f"{path}: comm/matrix has shape {matrix.shape}, expected {(n_layers + 1, nprocs, nprocs)}")
    reads = {name: g[dataset][...].astype(np.int64) if dataset in g else None for name, dataset in (
        ("shared_read_matrix", "comm/shared_read_matrix"), ("bytes_read_in_place", "comm/bytes_read_in_place"),
        ("input_bytes_read_in_place", "comm/input_bytes_read_in_place"))}
    for name, shape in (("shared_read_matrix", (n_layers + 1, nprocs, nprocs)), ("bytes_read_in_place",
                        (n_layers, nprocs)), ("input_bytes_read_in_place", (nprocs,))):
        if reads[name] is not None and reads[name].shape != shape:
            raise ResultsError(f"{path}: comm/{name} has shape {reads[name].shape}, expected {shape}")
    fused = {name: g[dataset][...].astype(bool) if dataset in g else None for name, dataset in (
        ("fused_with_next", "layers/fused_with_next"), ("serial_fused_with_next", "timing/serial_fused_with_next"))}
    for name, values in fused.items():
        if values is not None and values.shape != (n_layers,):
            raise ResultsError(f"{path}: {name} has shape {values.shape}, expected {(n_layers,)}")
    meta = _meta(g)
    return Run(label=label, path=path, meta=meta, layers=layers, input_bytes_expected=input_expected, ops=ops,
               comm_matrix=matrix, **reads, **fused,
               boundary=_boundaries(path, g, str(meta.get("plan", "per-layer")), len(layers)),
               operation=_strings(path, g, "layers/operation"), split=_strings(path, g, "layers/split"),
               op_unit=_strings(path, g, "layers/op_unit"), hosts=_strings(path, g, "ranks/host"),
               cpu_binding=_strings(path, g, "ranks/cpu_binding"),
               input_image=image, timestamps=timestamps, **arrays)


def _read_timestamps(path, g: h5py.Group, shape: tuple[int, int, int]) -> Timestamps | None:
    """The phase timestamps if the file has them (None for files written before they existed); a file with only
    some of them, or with shapes that do not match /timing/compute_s [I, L, P], is an error."""
    present = [dataset for dataset in TIMESTAMP_DATASETS.values() if dataset in g]
    if not present:
        return None
    where = g.name.rstrip("/")
    missing = [dataset for dataset in TIMESTAMP_DATASETS.values() if dataset not in g]
    if missing:
        raise ResultsError(f"{path}: has {where}/{present[0]} but is missing dataset {where}/{missing[0]}")
    iterations, layers, nprocs = shape
    values = {}
    for field, dataset in TIMESTAMP_DATASETS.items():
        expected = (iterations, layers, nprocs) if field.startswith("boundary") else (iterations, nprocs)
        data = np.asarray(g[dataset][...], dtype=np.float64)
        if data.shape != expected:
            raise ResultsError(f"{path}: {where}/{dataset} has shape {data.shape}, expected {expected}")
        values[field] = data
    return Timestamps(**values)


def _read_calibration(path, g: h5py.Group) -> Calibration:
    collectives = _strings(path, g, "collective")
    sizes = _array(path, g, "bytes", 1).astype(np.float64)
    times = _array(path, g, "time_s", 3).astype(np.float64)
    if times.shape[:2] != (len(collectives), len(sizes)):
        raise ResultsError(f"{path}: /calibration/time_s has shape {times.shape}, expected "
                           f"({len(collectives)} collectives, {len(sizes)} sizes, repetitions)")
    if "nprocs" not in g.attrs:
        raise ResultsError(f"{path}: /calibration has no nprocs attribute")
    boundaries = _strings(path, g, "boundary") if "boundary" in g else ()
    if boundaries and len(boundaries) != len(sizes):
        raise ResultsError(f"{path}: /calibration/boundary has {len(boundaries)} entries for {len(sizes)} sizes")
    nprocs = int(g.attrs["nprocs"])
    in_pass = ()
    if "in_pass" in g:
        h = g["in_pass"]
        names = _strings(path, h, "layers")
        sizes_in_pass = _array(path, h, "bytes", 1).astype(np.float64)
        evicted = _array(path, h, "evicted_bytes", 2).astype(np.float64)
        seconds = _array(path, h, "time_s", 2).astype(np.float64)
        if not (len(names) == len(sizes_in_pass) == evicted.shape[0] == seconds.shape[0]) or evicted.shape[1] != nprocs:
            raise ResultsError(f"{path}: /calibration/in_pass has {len(names)} layers, {len(sizes_in_pass)} bytes, "
                               f"evicted_bytes {evicted.shape} and time_s {seconds.shape}: expected one row each per "
                               f"boundary and {nprocs} ranks")
        in_pass = tuple(InPassGather(names[j], float(sizes_in_pass[j]), evicted[j], seconds[j])
                        for j in range(len(names)))
    return Calibration(label=path.name, collectives=collectives, bytes=sizes, time_s=times,
                       nprocs=nprocs, nodes=int(g.attrs.get("nodes", 1)), boundaries=boundaries, in_pass=in_pass)
