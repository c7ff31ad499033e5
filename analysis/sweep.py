"""`sweep FILES... --out DIR`: strong and weak scaling over many runs, and what consolidation costs per byte moved.

Runs are grouped into series of one configuration (consolidation, scheme, network) so a directory of mixed results
still gives one curve per configuration; within a series the points are ordered by P. The scheme is how the run cut
the network: the group's decomposition in a `--compare splits` file (/meta@decomposition: channel, fused, rows,
sample), else the plan, with `--split` appended when it was given (`per-layer conv=rows,pool=rows`), so runs that cut
the same plan differently never share a curve.

- Strong scaling (the same batch at every P): one series per configuration and batch; speedup and efficiency against
  each run's serial reference. The seed text's claimed 4-worker speedups are drawn as marks to hold the curves against.
- Weak scaling (batch = b·P, the batch per rank b fixed; jobs/weak_scaling.sbatch): one series per configuration and
  b; weak-scaling efficiency = T(smallest P, normally P = 1 with batch b) / T(P with batch b·P), T the time per pass,
  also against each run's own serial reference (serial(b·P) / (P·T)), and the throughput in images/s against P.

Which series a run joins (`scaling`): "strong" groups by batch only, "weak" by batch per rank only, and "auto" (the
default) finds weak series itself: a set of runs of one configuration with the same batch per rank at two or more P is
a weak series if at least one of them has no other P at its batch (so it belongs to no strong series); every batch
group with two or more P stays a strong series, and one with a single P does too unless all its runs are in weak
series. A strong and a weak sweep of one configuration in one directory thus give both kinds of series (the P = 1 run
at batch b belongs to both), while two strong sweeps at different batches are not mistaken for a weak one.
"""
from __future__ import annotations

import math
import pathlib
from collections import defaultdict
from fractions import Fraction

import numpy as np

from analysis import figures, markdown, stats
from analysis.figures import plt
from analysis.results import Run, load_runs

# The seed text's claims for 4 workers, by our layer names: linear 3.19x, convolution 1.5x, activation 1.2x.
SEED_CLAIMS = {"fc": 3.19, "conv": 1.5, "gelu": 1.2}
SEED_CLAIM_WORKERS = 4
PLAN_MARKERS = {"per-layer": "o", "fused": "s", "fused-column": "^",  # plans, and --compare splits decompositions
                "channel": "o", "rows": "v", "sample": "P", "tiles": "X", "rows-channel": "<",
                "sample-channel": ">"}
MAX_POINT_LABELS = 40  # beyond this the per-layer panel would be unreadable with labels
CONSOLIDATION_COLORS = {"allgatherv": "#4c72b0", "shared": "#55a868", "hierarchical": "#c44e52"}
SCALINGS = ("auto", "strong", "weak")


def write_sweep(paths, out_dir: pathlib.Path, scaling: str = "auto") -> pathlib.Path:
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, not {scaling!r}")
    runs = load_runs(paths)
    strong, weak = _series(runs, scaling)
    out_dir.mkdir(parents=True, exist_ok=True)
    grouping = {"auto": "weak series detected automatically", "strong": "--strong: grouped by batch",
                "weak": "--weak: grouped by batch per rank"}[scaling]
    parts = ["# cnnpar scaling sweep\n",
             f"{len(runs)} runs from {len(paths)} files: {len(strong)} strong-scaling series (same batch at every P) "
             f"and {len(weak)} weak-scaling series (same batch per rank at every P; {grouping}).\n"]
    if strong:
        speedup_png = figures.save(_scaling_figure(strong, efficiency=False), out_dir, "speedup")
        efficiency_png = figures.save(_scaling_figure(strong, efficiency=True), out_dir, "efficiency")
        parts += ["## Strong scaling\n",
                  "Speedup of a layer = `/timing/serial_layer_s` / parallel layer time (per iteration the slowest "
                  "rank's compute + halo + wait + transfer, plus pack + unpack in files written before the kernels "
                  "computed boxes in place, median over iterations); total = "
                  "`/meta@serial_forward_s` / median of the slowest rank's `/timing/forward_s`; efficiency = "
                  "speedup / P." + _claims_text(strong) + "\n",
                  markdown.image("speedup against P", speedup_png),
                  markdown.image("efficiency against P", efficiency_png)]
        for key, members in strong.items():
            parts += [f"### {_series_title(key)}\n", "Speedup (efficiency):\n", _scaling_table(members)]
    if weak:
        weak_png = figures.save(_weak_figure(weak), out_dir, "weak_scaling")
        parts += ["## Weak scaling\n",
                  "The batch grows with P (batch = b·P), so ideally the time per pass stays that of P = 1 with batch "
                  "b. T = median over iterations of the slowest rank's `/timing/forward_s` (broadcast included). "
                  "Weak-scaling efficiency = T(P = 1, batch b) / T(P, batch b·P) (against the series' smallest P "
                  "when it has no P = 1 run); per layer the same with the layer's parallel time. Against the serial "
                  "reference = `/meta@serial_forward_s` at the run's own batch b·P / (P · T): what P ranks achieve "
                  "against one rank doing the same batch, which needs no P = 1 run and does not count the batch's "
                  "effect on the serial kernels as a loss. Throughput = batch / T images/s; ideal = P × the "
                  "reference run's.\n",
                  markdown.image("weak-scaling efficiency and throughput against P", weak_png)]
        for key, members in weak.items():
            parts += [f"### {_series_title(key)}\n", _weak_table(members)]
    consolidation_png = figures.save(_consolidation_figure(runs), out_dir, "consolidation")
    parts += ["## Consolidation time against bytes moved\n",
              markdown.image("consolidation time against bytes moved", consolidation_png),
              "Consolidation = halo + wait + transfer (halo: an exchange boundary's point-to-point time), slowest rank per iteration, median over iterations, summed over the "
              "layer boundaries of one pass; bytes moved = `/comm/bytes_received` summed over ranks (and layers): "
              "what went through MPI, so shared-memory consolidation on one node shows 0. P = 1 runs and boundaries "
              "that keep their slices are left out of the figure. The input broadcast is not included.\n",
              _consolidation_table(runs)]
    report = out_dir / "sweep.md"
    report.write_text("\n".join(parts))
    return report


def _claims_text(strong: dict) -> str:
    """The sentence about the seed text's claims, for series of the seed network (the only one they are about)."""
    if not any(set(SEED_CLAIMS) <= set(members[0].layers) for members in strong.values()):
        return ""
    return (f" Stars: the seed text's claims for {SEED_CLAIM_WORKERS} workers (linear {SEED_CLAIMS['fc']}×, "
            f"convolution {SEED_CLAIMS['conv']}×, activation {SEED_CLAIMS['gelu']}×), on the seed network's "
            "layers.")


def _per_rank(run: Run) -> Fraction:
    """Batch per rank, exact (a batch that P does not divide gives a fraction, never equal to a whole b·P run's)."""
    return Fraction(run.batch, run.nprocs)


def _series(runs: list[Run], scaling: str = "auto") -> tuple[dict[tuple, list[Run]], dict[tuple, list[Run]]]:
    """(strong, weak): series keyed (consolidation, scheme, network, "B", batch) and (..., "b", batch per rank), each
    ordered by P; `scaling` as in the module docstring."""
    by_batch, by_per_rank = defaultdict(list), defaultdict(list)
    for run in runs:
        config = (run.consolidation, _scheme(run), run.network)
        by_batch[config + ("B", run.batch)].append(run)
        by_per_rank[config + ("b", _per_rank(run))].append(run)

    def ordered(groups):
        return {key: sorted(members, key=lambda r: r.nprocs) for key, members in groups.items()}

    if scaling == "strong":
        return ordered(by_batch), {}
    if scaling == "weak":
        return {}, ordered(by_per_rank)

    def spans(members) -> int:
        return len({run.nprocs for run in members})

    def alone(run) -> bool:  # no other P at this run's batch: it belongs to no strong series
        return spans(by_batch[(run.consolidation, _scheme(run), run.network, "B", run.batch)]) == 1

    weak = {key: members for key, members in by_per_rank.items()
            if spans(members) >= 2 and any(alone(run) for run in members)}
    in_weak = {id(run) for members in weak.values() for run in members}
    strong = {key: members for key, members in by_batch.items()
              if spans(members) >= 2 or not all(id(run) in in_weak for run in members)}
    return ordered(strong), ordered(weak)


def _scheme(run) -> str:
    """Run.scheme: the decomposition, else the plan (and --split)."""
    return getattr(run, "scheme", None) or run.plan


def _series_title(key, shown=None) -> str:
    """consolidation, scheme — network, B (or b per rank); without the last two when `shown` (in the figure title)
    holds them."""
    consolidation, plan, network, kind, batch = key
    what = f"B = {batch}" if kind == "B" else f"b = {batch} per rank (batch b·P)"
    return f"{consolidation}, {plan}" + ("" if shown else f" — {network}, {what}")


def _scaling_figure(series: dict, efficiency: bool):
    count = len(series)
    columns = min(count, 3 if count > 4 else 2)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 4.3 * rows), squeeze=False)
    shared = _shared_settings(series)
    for ax, (key, members) in zip(axes.flat, series.items()):
        _scaling_panel(ax, members, efficiency)
        ax.set_title(figures.wrap(_series_title(key, shown=shared), 70), fontsize=9)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    what = "Parallel efficiency (speedup / P)" if efficiency else "Speedup over the serial reference"
    common = f"\n{shared[0]}, B = {shared[1]}" if shared else ""
    fig.suptitle(figures.wrap(f"{what} per layer and in total, against ranks P{common}"), fontsize=10)
    fig.tight_layout()
    return fig


def _shared_settings(series: dict) -> tuple | None:
    """(network, batch) when every series has the same, so panel titles need only consolidation and plan."""
    settings = {(key[2], key[4]) for key in series}
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


def _weak_reference(members: list[Run]) -> tuple[int, float, np.ndarray]:
    """(P, T, [L] layer times) of the series' smallest P (normally 1), medians over its repeated runs."""
    smallest = min(run.nprocs for run in members)
    base = [run for run in members if run.nprocs == smallest]
    return (smallest, float(np.median([stats.forward_parallel_time(run) for run in base])),
            np.median([stats.layer_parallel_time(run) for run in base], axis=0))


def weak_efficiency(members: list[Run]) -> dict[str, np.ndarray]:
    """Per run of a weak series: "total" = T(reference) / T(run), the reference being the series' smallest P
    (normally P = 1 with batch b); "serial" = serial_forward(b·P) / (P · T(run)); "layers" [runs, L] = the same
    ratio as "total" with layer parallel times; "throughput" and "serial_throughput" in images/s."""
    _, reference, reference_layers = _weak_reference(members)
    times = np.array([stats.forward_parallel_time(run) for run in members])
    procs = np.array([run.nprocs for run in members])
    batches = np.array([run.batch for run in members])
    serial = np.array([run.serial_forward for run in members])
    return {"total": reference / times, "serial": serial / (procs * times),
            "layers": np.array([reference_layers / stats.layer_parallel_time(run) for run in members]),
            "throughput": batches / times, "serial_throughput": batches / serial}


def _weak_figure(series: dict):
    """One row per weak series: efficiency against P (total, per layer, against the serial reference), and
    throughput against P with the ideal line and the serial reference's throughput at each batch."""
    fig, axes = plt.subplots(len(series), 2, figsize=(12.5, 4.4 * len(series)), squeeze=False)
    networks = {key[2] for key in series}
    shared_network = networks.pop() if len(networks) == 1 else None
    for (efficiency_ax, throughput_ax), (key, members) in zip(axes, series.items()):
        procs = np.array([run.nprocs for run in members])
        values = weak_efficiency(members)
        p_ref = _weak_reference(members)[0]
        ticks = np.unique(procs)
        for index, layer in enumerate(members[0].layers):
            _median_line(efficiency_ax, procs, values["layers"][:, index], color=figures.layer_color(index),
                         label=layer, linewidth=1, alpha=0.8)
        _median_line(efficiency_ax, procs, values["total"], color="black", linewidth=2.2,
                     label=f"total: T(P={p_ref}) / T(P)")
        _median_line(efficiency_ax, procs, values["serial"], color="crimson", linestyle="--", linewidth=1.6,
                     label="total vs own serial: serial(b·P) / (P·T)")
        efficiency_ax.axhline(1.0, color="gray", linestyle=":", linewidth=1, label="ideal")
        efficiency_ax.set_ylabel("weak-scaling efficiency")
        highest = np.nanmax(np.concatenate([values["total"], values["serial"], values["layers"].ravel()]))
        efficiency_ax.set_ylim(0, max(1.1, highest) * 1.3)  # the top quarter for the legend
        efficiency_ax.legend(fontsize=7, ncol=3, loc="upper center")
        reference_throughput = np.median(values["throughput"][procs == p_ref])
        _median_line(throughput_ax, procs, values["throughput"], color="black", linewidth=2.2,
                     label="measured: batch / T")
        throughput_ax.plot(ticks, reference_throughput * ticks / p_ref, "--", color="gray", linewidth=1,
                           label=f"ideal: (P / {p_ref}) × P = {p_ref}'s" if p_ref != 1 else "ideal: P × P = 1's")
        throughput_ax.plot(procs, values["serial_throughput"], "x", color="crimson", markersize=7,
                           label="serial reference at the same batch (one rank)")
        for p, batch, rate in zip(procs, (run.batch for run in members), values["throughput"]):
            throughput_ax.annotate(f"B={batch}", (p, rate), textcoords="offset points", xytext=(5, -10), fontsize=7)
        throughput_ax.set_yscale("log")
        low, high = throughput_ax.get_ylim()
        throughput_ax.set_yticks(_log_ticks(low, high), [f"{v:,.0f}" for v in _log_ticks(low, high)])
        throughput_ax.yaxis.set_minor_locator(plt.NullLocator())
        throughput_ax.set_ylim(low, high)
        throughput_ax.set_ylabel("throughput (images/s)")
        throughput_ax.legend(fontsize=7)
        consolidation, plan, network, _, per_rank = key
        title = figures.wrap(f"{consolidation}, {plan}, b = {per_rank} per rank"
                             + ("" if network == shared_network else f"\n{network}"), 60)
        for ax, what in ((efficiency_ax, "Weak-scaling efficiency"), (throughput_ax, "Throughput")):
            ax.set_xscale("log", base=2)
            ax.set_xticks(ticks, [str(p) for p in ticks])
            ax.xaxis.set_minor_locator(plt.NullLocator())
            ax.set_xlabel("ranks P (batch b·P)")
            ax.set_title(f"{what} — {title}", fontsize=9)
    fig.suptitle(figures.wrap("Weak scaling: batch per rank fixed; T = time per pass (slowest rank, median)"
                              + (f"\n{shared_network}" if shared_network else "")), fontsize=10)
    fig.tight_layout()
    return fig


def _log_ticks(low: float, high: float) -> list[float]:
    """Round tick values for a log axis from low to high: 1, 2, 5 × 10^k, or finer when that gives fewer than 4."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for steps in ((1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0 ** k for k in decades for m in steps if low <= m * 10.0 ** k <= high]
        if len(ticks) >= 4:
            break
    return ticks


def _weak_table(members: list[Run]) -> str:
    values = weak_efficiency(members)
    p_ref = _weak_reference(members)[0]
    layers = members[0].layers
    rows = [(run.label, run.nprocs, run.batch, markdown.us(stats.forward_parallel_time(run)),
             markdown.us(run.serial_forward), markdown.ratio(values["total"][i]), markdown.ratio(values["serial"][i]),
             *(markdown.ratio(values["layers"][i, index]) for index in range(len(layers))),
             f"{values['throughput'][i]:,.0f}", f"{values['serial_throughput'][i]:,.0f}")
            for i, run in enumerate(members)]
    return markdown.table(["run", "P", "batch", "T µs", "serial µs", f"efficiency vs P = {p_ref}",
                           "vs own serial", *(f"{layer} eff." for layer in layers), "images/s",
                           "serial images/s"], rows)


def _consolidation_figure(runs: list[Run]):
    """Per run (one pass) and per consolidation (one layer boundary): time against bytes moved through MPI.
    Shared-memory strategies move nothing through MPI on one node, so the byte axis is linear near 0."""
    fig, (per_pass, per_layer) = plt.subplots(1, 2, figsize=(12, 4.8))
    seen = set()
    label_points = len(runs) * max(len(run.layers) for run in runs) <= MAX_POINT_LABELS
    for run in runs:
        color = CONSOLIDATION_COLORS.get(run.consolidation, "gray")
        marker = PLAN_MARKERS.get(run.decomposition or run.plan, "D")
        key = (run.consolidation, run.scheme)
        label = None if key in seen else f"{run.consolidation}, {run.scheme}"
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
            ax.legend(title="consolidation, plan or decomposition", fontsize=7)
    fig.suptitle("Consolidation time (halo + wait + transfer) against bytes moved, per strategy and plan or "
                 "decomposition")
    fig.tight_layout()
    return fig


def _consolidation_table(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        moved, time = stats.moved_bytes(run), stats.consolidation_time(run)
        rows.append((run.label, run.consolidation, run.scheme, run.nprocs, markdown.count(moved.sum()),
                     markdown.us(time.sum()),
                     ", ".join(f"{layer} {markdown.count(b)} B / {markdown.us(t)} µs"
                               for layer, b, t in zip(run.layers, moved, time))))
    return markdown.table(["run", "consolidation", "plan or decomposition", "P", "bytes moved", "time µs",
                           "per layer"], rows)
