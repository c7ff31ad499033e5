"""Derived quantities of a run, defined once so the report, the sweep, the model and the trace agree.

The convention is the terminal report's, defined in include/cnnpar/records.hpp (slowest_median,
slowest_median_all, slowest_forward_median, median_per_rank) and documented in docs/design.md: an iteration's parallel
time for a layer is its slowest rank's sum over every event, pack + compute + unpack + halo + wait + transfer (pack and
unpack are 0 except in files written before the kernels computed boxes in place, where a rows, sample, tiles or 2-D
step copied its region into and out of a packed buffer — Run.packed —, halo is 0 except at exchange
boundaries, whose wait and transfer are 0 in turn, and all three are 0 in files written before they existed), and a
run's figure is the median of that over the timed iterations. Other per-layer phases (compute alone, wait alone,
pack + unpack, halo, ...) use the same
"slowest rank per iteration, then median" reduction, so they are each an upper envelope and do not add up to the
parallel time exactly. Per-rank figures (the
terminal's breakdown and its "Across ranks" table) are each rank's median over iterations.
tests/python/test_terminal_agrees.py checks that the terminal prints the figures these functions compute.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.results import Run

PHASES = ("pack", "compute", "unpack", "halo", "wait", "transfer")  # every timed event of a step (records.hpp)


def step_phases(run: Run, layer: int) -> tuple[str, ...]:
    """The phases a step has, in execution order: pack, compute, unpack on a step whose kernel ran on a packed copy
    (Run.packed: its recorded pack or unpack is nonzero, which only files written before the box kernels have; else
    compute alone, its pack and unpack being 0), then halo at an exchange boundary (point to point) or wait and
    transfer at any other (0 where nothing moves)."""
    work = ("pack", "compute", "unpack") if run.packed[layer] else ("compute",)
    return work + (("halo",) if run.exchanges[layer] else ("wait", "transfer"))


def packs(run: Run) -> bool:
    """Whether any step ran on a packed region (Run.packed; only in files written before the box kernels, whose
    terminal Summary then had a "max pack" column: the terminal no longer prints one)."""
    return any(run.packed)


def exchanges(run: Run) -> bool:
    """Whether any boundary is an exchange: the terminal's Summary then has a "max halo" column."""
    return any(run.exchanges)


def slowest_rank_median(values: np.ndarray) -> np.ndarray:
    """[I, ..., P] -> [...]: per iteration the maximum over ranks, then the median over iterations."""
    return np.median(values.max(axis=-1), axis=0)


def layer_parallel_time(run: Run) -> np.ndarray:
    """[L] seconds: per iteration the slowest rank's pack + compute + unpack + halo + wait + transfer, median over
    iterations (records.hpp's slowest_median_all)."""
    return slowest_rank_median(run.pack + run.compute + run.unpack + run.halo + run.wait + run.transfer)


def pack_time(run: Run) -> np.ndarray:
    """[L] seconds: per iteration the slowest rank's pack + unpack, median over iterations (the "max pack" the
    terminal's Summary printed before the box kernels; 0 in newer files)."""
    return slowest_rank_median(run.pack + run.unpack)


def forward_parallel_time(run: Run) -> float:
    """Seconds: per iteration the slowest rank's whole forward pass (broadcast included), median over iterations."""
    return float(slowest_rank_median(run.forward))


def layer_speedup(run: Run) -> np.ndarray:
    """[L]: serial reference time of each layer over its parallel time."""
    return run.serial_layer / layer_parallel_time(run)


def total_speedup(run: Run) -> float:
    return run.serial_forward / forward_parallel_time(run)


def efficiency(run: Run, speedup):
    """Speedup / P (the terminal prints it as a percentage)."""
    return speedup / run.nprocs


def layer_ops(run: Run) -> np.ndarray | None:
    """[L] operations of each whole layer for the batch (the terminal's "ops" column), from /work/ops: the ranks'
    parts add up to the layer, except a replicated layer, which every rank computes whole. None if the file has no
    /work/ops."""
    if run.ops is None:
        return None
    return np.array([run.ops[i, 0] if split == "replicated" else run.ops[i].sum()
                     for i, split in enumerate(run.split)], dtype=np.int64)


def received_max(run: Run) -> np.ndarray:
    """[L] bytes: the most any rank received through MPI at each layer's boundary per pass ("recv B/rank")."""
    return run.bytes_received.max(axis=1)


def forward_received_max(run: Run) -> int:
    """Bytes: the forward row's "recv B/rank": the per-boundary maxima summed, plus the input broadcast's maximum."""
    return int(received_max(run).sum() + run.input_bytes_received.max())


def reads_in_place(run: Run) -> bool:
    """Whether the run's ranks read each other's data in place through shared windows (shared, hierarchical) and
    the file records it: the terminal then has "read in place" columns."""
    return run.consolidation != "allgatherv" and run.bytes_read_in_place is not None


def read_in_place_max(run: Run) -> np.ndarray:
    """[L] bytes: the most any rank read in place of other ranks' data at each layer's boundary per pass ("read in
    place B/rank")."""
    return run.bytes_read_in_place.max(axis=1)


def forward_read_in_place_max(run: Run) -> int:
    """Bytes: the forward row's "read in place B/rank": the per-boundary maxima summed, plus the input's maximum."""
    return int(read_in_place_max(run).sum() + run.input_bytes_read_in_place.max())


def median_per_rank(run: Run, phase: str) -> np.ndarray:
    """[L, P] seconds: each rank's median over iterations of one phase (the breakdown's per-rank columns)."""
    return np.median(getattr(run, phase), axis=0)


@dataclass(frozen=True)
class AcrossRanks:
    """min (rank) / avg / max (rank) of one value per rank; efficiency = avg / max (1 when max is 0)."""

    min: float
    min_rank: int
    avg: float
    max: float
    max_rank: int

    @property
    def efficiency(self) -> float:
        return self.avg / self.max if self.max > 0 else 1.0


def across_ranks(per_rank) -> AcrossRanks:
    """The terminal's "Across ranks per layer" row for one layer and phase, from median_per_rank(...)[layer]. Ties go
    to the lowest rank, as in records.cpp."""
    values = np.asarray(per_rank, dtype=np.float64)
    return AcrossRanks(min=float(values.min()), min_rank=int(values.argmin()), avg=float(values.mean()),
                       max=float(values.max()), max_rank=int(values.argmax()))


def phase_times(run: Run) -> dict[str, np.ndarray]:
    """Phase name -> [L] seconds, each the slowest rank per iteration, median over iterations."""
    return {phase: slowest_rank_median(getattr(run, phase)) for phase in PHASES}


def consolidation_time(run: Run) -> np.ndarray:
    """[L] seconds of halo + wait + transfer (the whole boundary as a rank sees it: an exchange's point-to-point
    time, or a collective's wait and transfer), slowest rank, median; the terminal's ranking calls it "boundary"."""
    return slowest_rank_median(run.halo + run.wait + run.transfer)


@dataclass(frozen=True)
class StageSums:
    """The --compare ranking's columns: each stage's slowest-rank median of compute and of boundary (halo + wait +
    transfer; the input broadcast's wait + transfer included), summed over the stages, and the most parameter bytes
    any rank holds (over all steps). The ranking's former "pack us" column is gone with the box kernels
    (pack_time gives it for older files)."""

    compute: float
    boundary: float
    weights: int


def stage_sums(run: Run) -> StageSums:
    broadcast = float(slowest_rank_median(run.broadcast_wait + run.broadcast_transfer))
    return StageSums(compute=float(phase_times(run)["compute"].sum()),
                     boundary=float(consolidation_time(run).sum()) + broadcast,
                     weights=int(run.weight_bytes.sum(axis=0).max()))


def transfer_time(run: Run) -> np.ndarray:
    """[L] seconds of wait-free transfer, slowest rank, median: what a collective costs once everyone is there,
    which is the quantity the alpha-beta models describe."""
    return slowest_rank_median(run.transfer)


def boundary_bytes(run: Run) -> np.ndarray:
    """[L] n of each boundary's collective as the cost models count it: the whole gathered tensor
    (items * item_bytes) for a gather, the whole reduced output for an Allreduce, 0 where slices stay put; an
    exchange (point to point, no collective) counts what its model moves: /comm/bytes_expected summed over ranks."""
    def n(i, kind):
        if kind == "none":
            return 0
        if kind == "allreduce":
            return run.output_bytes[i]
        if kind == "exchange":
            return run.bytes_expected[i].sum()
        return run.gathered_bytes[i]
    return np.array([n(i, kind) for i, kind in enumerate(run.boundary)], dtype=np.int64)


def moved_bytes(run: Run) -> np.ndarray:
    """[L] bytes received over all ranks per consolidation: what actually crossed between ranks."""
    return run.bytes_received.sum(axis=1)


def compute_imbalance(run: Run) -> np.ndarray:
    """[L]: per iteration max / mean of the ranks' compute times, median over iterations (1 = balanced)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.median(run.compute.max(axis=-1) / run.compute.mean(axis=-1), axis=0)


def partition_imbalance(run: Run) -> np.ndarray:
    """[L]: max / mean of the items each rank owns, the imbalance the block partition alone implies."""
    return run.count.max(axis=1) / run.count.mean(axis=1)


def oversubscription(run: Run) -> tuple[int, int] | None:
    """(ranks, CPUs) of the most crowded node when some node has more ranks than CPUs they may run on, else None.

    On such a node a rank can lose its core in the middle of a collective, and the others' waits and transfers
    then measure scheduling, not communication; the cost-model fit leaves such runs out for that reason."""
    crowded = []
    for node in np.unique(run.nodes):
        ranks = np.nonzero(run.nodes == node)[0]
        cpus = set().union(*(_cpu_set(run.cpu_binding[rank]) for rank in ranks))
        if cpus and len(ranks) > len(cpus):
            crowded.append((len(ranks), len(cpus)))
    return max(crowded, key=lambda pair: pair[0] / pair[1], default=None)


def _cpu_set(binding: str) -> set[int]:
    """"0-3,8" -> {0, 1, 2, 3, 8}; an unreadable binding gives the empty set (unknown)."""
    cpus = set()
    try:
        for part in filter(None, binding.split(",")):
            first, _, last = part.partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
    except ValueError:
        return set()
    return cpus


def representative_iteration(run: Run) -> int:
    """The iteration whose slowest-rank forward time is the median one (the lower median for an even count)."""
    per_iteration = run.forward.max(axis=1)
    return int(np.argsort(per_iteration, kind="stable")[(len(per_iteration) - 1) // 2])


@dataclass(frozen=True)
class Segment:
    rank: int
    layer: str  # "input" for the broadcast
    phase: str  # "broadcast wait", "broadcast transfer", or one of PHASES
    start: float  # seconds from the iteration's origin (iteration_starts)
    duration: float

    @property
    def end(self) -> float:
        return self.start + self.duration


# Where a timeline's times come from: the file's timestamps, or (files written before them) its durations alone
TIMESTAMPS, DURATIONS = "timestamps", "durations"
TIMELINE_SOURCES = {
    TIMESTAMPS: "exact: every phase at its recorded time on rank 0's clock (/timing/forward_start_s, "
                "broadcast_enter_s/exit_s, boundary_enter_s/exit_s; compute began at boundary_enter_s − compute_s), "
                "so gaps between phases and skew between ranks are shown",
    DURATIONS: "rebuilt from durations: the file has no timestamps (written before they were recorded), so each "
               "rank's phases are laid end to end from the start of the pass and iterations end to end; gaps "
               "between phases (~1 µs per pass) and skew between ranks are not shown",
}


def timeline_source(run: Run) -> str:
    """TIMESTAMPS when the file records when each phase happened, else DURATIONS (the reconstruction)."""
    return TIMESTAMPS if run.has_timestamps else DURATIONS


def iteration_starts(run: Run) -> np.ndarray:
    """[I] seconds: each iteration's origin. With timestamps, the earliest rank's pass start on the file's clock (0 for
    the first timed pass), so the real gaps between iterations remain; without, the iterations laid end to end, each as
    long as its slowest rank's forward pass."""
    if run.timestamps is not None:
        return run.timestamps.forward_start.min(axis=1)
    lengths = run.forward.max(axis=1)
    return np.concatenate(([0.0], np.cumsum(lengths)[:-1]))


def pass_starts(run: Run, iteration: int) -> np.ndarray:
    """[P] seconds from the iteration's origin at which each rank began the pass (all 0 without timestamps)."""
    if run.timestamps is None:
        return np.zeros(run.nprocs)
    starts = run.timestamps.forward_start[iteration]
    return starts - starts.min()


def boundary_exits(run: Run) -> np.ndarray | None:
    """[L, P] seconds from the iteration's origin (iteration_starts) at which each rank left each layer's boundary,
    each rank's median over the timed iterations; None for a file without timestamps. How spread a boundary's exits
    are is the skew the next layer starts with (its ranks wait for the last one)."""
    if run.timestamps is None:
        return None
    exits = run.timestamps.boundary_exit - iteration_starts(run)[:, None, None]
    return np.median(exits, axis=0)


def timeline(run: Run, iteration: int) -> list[Segment]:
    """One iteration, per rank: broadcast wait and transfer, then per layer its step_phases (pack, compute, unpack on
    packed steps, which only older files have; compute alone otherwise), wait, transfer; times from the
    iteration's origin (iteration_starts). Exact when the file has timestamps (_timed_timeline), else rebuilt from
    the durations (_rebuilt_timeline)."""
    if run.timestamps is not None:
        return _timed_timeline(run, iteration)
    return _rebuilt_timeline(run, iteration)


def _rebuilt_timeline(run: Run, iteration: int) -> list[Segment]:
    """Each rank from 0 after the starting barrier, its phases laid end to end. The file holds durations only, so any
    unrecorded time between phases (~1 µs per pass) is absent and the rebuilt pass ends slightly before forward_s."""
    segments = []
    for rank in range(run.nprocs):
        t = 0.0
        steps = [("input", "broadcast wait", run.broadcast_wait[iteration, rank]),
                 ("input", "broadcast transfer", run.broadcast_transfer[iteration, rank])]
        for index, layer in enumerate(run.layers):
            steps += [(layer, phase, getattr(run, phase)[iteration, index, rank])
                      for phase in step_phases(run, index)]
        for layer, phase, duration in steps:
            segments.append(Segment(rank, layer, phase, t, float(duration)))
            t += float(duration)
    return segments


def _timed_timeline(run: Run, iteration: int) -> list[Segment]:
    """Every phase where the timestamps put it. A boundary (or the broadcast) runs from its enter to its exit stamp:
    its wait from the enter (until the last rank entered), its transfer up to the exit. Compute ends at the boundary's
    enter and lasts compute_s; on a packed step (older files: Run.packed) unpack ends there instead, compute just
    before it and pack just before compute (the three were stamped back to back). An exchange boundary is one halo
    segment from its enter to its exit (point to point: no wait/transfer split). Between a boundary's exit and the
    next step's first phase the stamps leave the unrecorded ~0.1-0.5 µs of bookkeeping, shown as a gap. A wait longer
    than the rank spent in the call is cut at the exit: the root of the input broadcast can leave before the last rank
    has entered, so its recorded wait (last entry − own entry) outlasts its call. No phase starts before the previous
    one on its rank ended."""
    stamps = run.timestamps
    origin = iteration_starts(run)[iteration]
    segments = []
    for rank in range(run.nprocs):
        previous_end = -np.inf

        def add(layer, phase, start, end):
            nonlocal previous_end
            start = max(float(start), previous_end)
            end = max(float(end), start)
            segments.append(Segment(rank, layer, phase, start - origin, end - start))
            previous_end = end

        def boundary(layer, names, enter, exit_, wait, transfer):
            wait_end = min(enter + wait, exit_)
            add(layer, names[0], enter, wait_end)
            add(layer, names[1], max(exit_ - transfer, wait_end), exit_)

        boundary("input", ("broadcast wait", "broadcast transfer"), stamps.broadcast_enter[iteration, rank],
                 stamps.broadcast_exit[iteration, rank], run.broadcast_wait[iteration, rank],
                 run.broadcast_transfer[iteration, rank])
        for index, layer in enumerate(run.layers):
            enter = float(stamps.boundary_enter[iteration, index, rank])
            exit_ = float(stamps.boundary_exit[iteration, index, rank])
            work = [(phase, float(getattr(run, phase)[iteration, index, rank]))
                    for phase in step_phases(run, index) if phase in ("pack", "compute", "unpack")]
            if run.exchanges[index]:
                halo = float(run.halo[iteration, index, rank])
                if not _exchange_stamped(enter, exit_, halo, stamps.forward_start[iteration, rank]):
                    # unusable stamps (see _exchange_stamped): the step's phases follow the previous one's end
                    enter = previous_end + sum(duration for _, duration in work)
                    exit_ = enter + halo
            start = enter - sum(duration for _, duration in work)  # the step's own phases end where its boundary begins
            for phase, duration in work:
                add(layer, phase, start, start + duration)
                start += duration
            if run.exchanges[index]:
                add(layer, "halo", enter, exit_)
            else:
                boundary(layer, ("wait", "transfer"), enter, exit_, run.wait[iteration, index, rank],
                         run.transfer[iteration, index, rank])
    return segments


STAMP_TOLERANCE_S = 1e-6


def _exchange_stamped(enter: float, exit_: float, halo: float, pass_start: float) -> bool:
    """Whether an exchange boundary's enter and exit stamps are its halo event's: within the pass and exactly as far
    apart as halo_s (1 µs). Files written by cnnpar_mpi at 1534f0c hold no such stamps for exchange boundaries (the
    writer took them from the wait and transfer events, which an exchange no longer records, giving minus the clock
    origin); the timeline then places the step's phases end to end after the previous one instead."""
    return (math.isfinite(enter) and math.isfinite(exit_) and enter >= pass_start - STAMP_TOLERANCE_S
            and abs((exit_ - enter) - halo) <= STAMP_TOLERANCE_S)
