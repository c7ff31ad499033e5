"""`sweep FILES... --out DIR`: strong scaling over many runs, and what consolidation costs per byte moved.

Runs are grouped into series of one configuration (consolidation, plan, network, batch) so a directory of mixed
results still gives one curve per configuration; within a series the points are ordered by P. The seed text's
claimed 4-worker speedups are drawn as marks so the measured curves can be held against them.
"""
from __future__ import annotations

import math
import pathlib
from collections import defaultdict

import numpy as np

from analysis import figures, markdown, stats
from analysis.figures import plt
from analysis.results import Run, load_runs

# The seed text's claims for 4 workers, by our layer names: linear 3.19x, convolution 1.5x, activation 1.2x.
SEED_CLAIMS = {"fc": 3.19, "conv": 1.5, "gelu": 1.2}
SEED_CLAIM_WORKERS = 4
PLAN_MARKERS = {"per-layer": "o", "fused": "s", "fused-column": "^"}
MAX_POINT_LABELS = 40  # beyond this the per-layer panel would be unreadable with labels
CONSOLIDATION_COLORS = {"allgatherv": "#4c72b0", "shared": "#55a868", "hierarchical": "#c44e52"}


def write_sweep(paths, out_dir: pathlib.Path) -> pathlib.Path:
    runs = load_runs(paths)
    series = _series(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    speedup_png = figures.save(_scaling_figure(series, efficiency=False), out_dir, "speedup")
    efficiency_png = figures.save(_scaling_figure(series, efficiency=True), out_dir, "efficiency")
    consolidation_png = figures.save(_consolidation_figure(runs), out_dir, "consolidation")
    parts = ["# cnnpar scaling sweep\n",
             f"{len(runs)} runs from {len(paths)} files, {len(series)} configuration(s). Speedup of a layer = "
             "`/timing/serial_layer_s` / parallel layer time (per iteration the slowest rank's compute + wait + "
             "transfer, median over iterations); total = `/meta@serial_forward_s` / median of the slowest rank's "
             "`/timing/forward_s`; efficiency = speedup / P. Stars: the seed text's claims for "
             f"{SEED_CLAIM_WORKERS} workers (linear {SEED_CLAIMS['fc']}×, convolution {SEED_CLAIMS['conv']}×, "
             f"activation {SEED_CLAIMS['gelu']}×).\n",
             markdown.image("speedup against P", speedup_png), markdown.image("efficiency against P", efficiency_png)]
    for key, members in series.items():
        parts += [f"## {_series_title(key)}\n", "Speedup (efficiency):\n", _scaling_table(members)]
    parts += ["## Consolidation time against bytes moved\n",
              markdown.image("consolidation time against bytes moved", consolidation_png),
              "Consolidation = wait + transfer, slowest rank per iteration, median over iterations, summed over the "
              "layer boundaries of one pass; bytes moved = `/comm/bytes_received` summed over ranks (and layers): "
              "what went through MPI, so shared-memory consolidation on one node shows 0. P = 1 runs and boundaries "
              "that keep their slices are left out of the figure. The input broadcast is not included.\n",
              _consolidation_table(runs)]
    report = out_dir / "sweep.md"
    report.write_text("\n".join(parts))
    return report


def _series(runs: list[Run]) -> dict[tuple, list[Run]]:
    groups = defaultdict(list)
    for run in runs:
        groups[(run.consolidation, run.plan, run.network, run.batch)].append(run)
    return {key: sorted(members, key=lambda r: r.nprocs) for key, members in groups.items()}


def _series_title(key, shown=None) -> str:
    """consolidation, plan — network, B; without the last two when `shown` (in the figure title) holds them."""
    consolidation, plan, network, batch = key
    return f"{consolidation}, {plan}" + ("" if shown else f" — {network}, B = {batch}")


def _scaling_figure(series: dict, efficiency: bool):
    count = len(series)
    columns = min(count, 3 if count > 4 else 2)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 4.3 * rows), squeeze=False)
    shared = _shared_settings(series)
    for ax, (key, members) in zip(axes.flat, series.items()):
        _scaling_panel(ax, members, efficiency)
        ax.set_title(_series_title(key, shown=shared), fontsize=9)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    what = "Parallel efficiency (speedup / P)" if efficiency else "Speedup over the serial reference"
    common = f"\n{shared[0]}, B = {shared[1]}" if shared else ""
    fig.suptitle(f"{what} per layer and in total, against ranks P{common}", fontsize=10)
    fig.tight_layout()
    return fig


def _shared_settings(series: dict) -> tuple | None:
    """(network, batch) when every series has the same, so panel titles need only consolidation and plan."""
    settings = {key[2:] for key in series}
    return settings.pop() if len(settings) == 1 else None


def _scaling_panel(ax, members: list[Run], efficiency: bool) -> None:
    procs = np.array([run.nprocs for run in members])
    scale = procs if efficiency else np.ones(len(procs))
    layers = members[0].layers
    for index, layer in enumerate(layers):
        values = np.array([_layer_speedups(run).get(layer, np.nan) for run in members]) / scale
        _median_line(ax, procs, values, color=figures.layer_color(index), label=layer)
    totals = np.array([stats.total_speedup(run) for run in members]) / scale
    _median_line(ax, procs, totals, color="black", label="total (forward)", linewidth=2.2)
    ideal = np.unique(np.concatenate([[1], procs, [SEED_CLAIM_WORKERS]]))
    ax.plot(ideal, np.ones(len(ideal)) if efficiency else ideal, "--", color="gray", linewidth=1,
            label="ideal (linear)")
    for index, layer in enumerate(layers):
        if layer in SEED_CLAIMS:
            claim = SEED_CLAIMS[layer] / (SEED_CLAIM_WORKERS if efficiency else 1)
            ax.plot(SEED_CLAIM_WORKERS, claim, "*", color=figures.layer_color(index), markersize=13,
                    markeredgecolor="black", markeredgewidth=0.6,
                    label="seed claim (4 workers)" if layer == "fc" else None)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ideal, [str(p) for p in ideal])
    ax.set_xlabel("ranks P")
    ax.set_ylabel("efficiency" if efficiency else "speedup (×)")
    if not efficiency:
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.legend(fontsize=7, ncol=2)


def _median_line(ax, procs, values, **style) -> None:
    """Every run as a point, and a line through the median per P (repeated runs of one P are common)."""
    unique = np.unique(procs)
    medians = [np.nanmedian(values[procs == p]) for p in unique]
    ax.plot(unique, medians, marker="o", markersize=4, **style)
    if len(unique) < len(procs):
        ax.plot(procs, values, ".", color=style["color"], alpha=0.5)


def _layer_speedups(run: Run) -> dict[str, float]:
    return dict(zip(run.layers, stats.layer_speedup(run)))


def _scaling_table(members: list[Run]) -> str:
    layers = members[0].layers
    rows = []
    for run in members:
        speedups = _layer_speedups(run)
        cells = [_speedup_cell(speedups.get(layer, math.nan), run.nprocs) for layer in layers]
        rows.append((run.label, run.nprocs, markdown.us(run.serial_forward),
                     markdown.us(stats.forward_parallel_time(run)), *cells,
                     _speedup_cell(stats.total_speedup(run), run.nprocs)))
    return markdown.table(["run", "P", "serial µs", "parallel µs", *layers, "total"], rows)


def _speedup_cell(speedup: float, procs: int) -> str:
    return f"{markdown.ratio(speedup)}× ({markdown.ratio(100 * speedup / procs, 0)}%)"


def _consolidation_figure(runs: list[Run]):
    """Per run (one pass) and per consolidation (one layer boundary): time against bytes moved through MPI.
    Shared-memory strategies move nothing through MPI on one node, so the byte axis is linear near 0."""
    fig, (per_pass, per_layer) = plt.subplots(1, 2, figsize=(12, 4.8))
    seen = set()
    label_points = len(runs) * max(len(run.layers) for run in runs) <= MAX_POINT_LABELS
    for run in runs:
        color = CONSOLIDATION_COLORS.get(run.consolidation, "gray")
        marker = PLAN_MARKERS.get(run.plan, "D")
        key = (run.consolidation, run.plan)
        label = None if key in seen else f"{run.consolidation}, {run.plan}"
        seen.add(key)
        moved, time = stats.moved_bytes(run), stats.consolidation_time(run)
        active = np.array([kind != "none" for kind in run.boundary]) & (time > 0)
        if run.nprocs > 1 and active.any():
            per_pass.plot(moved.sum(), time[active].sum() * 1e6, marker, color=color, markersize=7, label=label)
            per_pass.annotate(f"P={run.nprocs}", (moved.sum(), time[active].sum() * 1e6),
                              textcoords="offset points", xytext=(5, 3), fontsize=7)
            per_layer.plot(moved[active], time[active] * 1e6, marker, color=color, alpha=0.75, label=label)
            for layer, b, t in zip(np.array(run.layers)[active], moved[active], time[active]):
                if label_points:
                    per_layer.annotate(f"{layer} P={run.nprocs}", (b, t * 1e6), textcoords="offset points",
                                       xytext=(4, 2), fontsize=6)
    for ax, title in ((per_pass, "Whole pass (sum over boundaries)"), (per_layer, "Each layer boundary")):
        ax.set_xscale("symlog", linthresh=100, linscale=0.5)
        ax.set_xlim(left=-10)
        ax.set_yscale("log")
        ax.set_xlabel("bytes moved through MPI, received summed over ranks (B)")
        ax.set_ylabel("consolidation time (µs, slowest rank, median)")
        ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(title="consolidation, plan", fontsize=7)
    fig.suptitle("Consolidation time (wait + transfer) against bytes moved, per strategy and plan")
    fig.tight_layout()
    return fig


def _consolidation_table(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        moved, time = stats.moved_bytes(run), stats.consolidation_time(run)
        rows.append((run.label, run.consolidation, run.plan, run.nprocs, markdown.count(moved.sum()),
                     markdown.us(time.sum()),
                     ", ".join(f"{layer} {markdown.count(b)} B / {markdown.us(t)} µs"
                               for layer, b, t in zip(run.layers, moved, time))))
    return markdown.table(["run", "consolidation", "plan", "P", "bytes moved", "time µs", "per layer"], rows)
