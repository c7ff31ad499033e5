"""`report RUN.h5 --out DIR`: the figures and tables of one run, in DIR/report.md.

Four views answer the questions a run raises: where the time of one pass goes on each rank (timeline), whether a
layer's compute outweighs its consolidation (breakdown), whether the bytes moved are the bytes the model predicts
(bytes), and whether the split is balanced (imbalance). A `--compare` file gets one section per combination (a
`--compare splits` file one per consolidation and decomposition, each labelled by its /meta@decomposition). In files
written before the kernels computed boxes in place, a rows, sample, tiles or 2-D step copied its region into and out
of a packed buffer around its kernel: there (Run.packed, from the recorded times) the timeline and the breakdown show
that pack and unpack, which count in the parallel time. Newer files record them as 0, and nothing of them is shown.
"""
from __future__ import annotations

import pathlib
import re

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.ticker import MaxNLocator

from analysis import figures, markdown, stats
from analysis.figures import plt
from analysis.results import Run, load_runs


def write_report(path, out_dir: pathlib.Path) -> pathlib.Path:
    """Writes DIR/report.md and its figures; returns the report's path."""
    runs = load_runs([path])
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"# cnnpar run report: `{pathlib.Path(path).name}`\n"]
    if len(runs) > 1:
        what = "decomposition" if any(run.decomposition for run in runs) else "plan"
        parts.append(f"This file compares {len(runs)} combinations of consolidation and {what}; one section each.\n")
    for run in runs:
        prefix = "" if len(runs) == 1 else _slug(run.label) + "_"
        parts.append(_section(run, out_dir, prefix, heading="##" if len(runs) == 1 else "###",
                              title=None if len(runs) == 1 else f"## {run.consolidation}, {run.scheme}\n"))
    report = out_dir / "report.md"
    report.write_text("\n".join(parts))
    return report


def _slug(label: str) -> str:
    group = label.rsplit("[", 1)[-1].rstrip("]") if "[" in label else label
    return re.sub(r"[^A-Za-z0-9]+", "_", group).strip("_")


def _section(run: Run, out_dir, prefix, heading, title) -> str:
    iteration = stats.representative_iteration(run)
    parts = [title] if title else []
    parts += [_summary(run),
              f"{heading} Timeline of one pass\n",
              markdown.image("per-rank timeline", figures.save(_timeline_figure(run, iteration), out_dir,
                                                                  prefix + "timeline")),
              f"Iteration {iteration} of {run.iterations}, the one whose slowest-rank forward time is the median. "
              f"{_timeline_note(run)} Dotted lines mark where the last rank left each layer's consolidation. "
              "Durations in µs" + (" (the last two rows: times in µs from the earliest rank's start of the pass)"
                                   if run.has_timestamps else "") + ":\n",
              _timeline_table(run, iteration),
              f"{heading} Compute vs consolidation per layer\n",
              markdown.image("compute vs consolidation", figures.save(_breakdown_figure(run), out_dir,
                                                                       prefix + "breakdown")),
              "Every column is the slowest rank per iteration, median over iterations (µs). Parallel = the "
              "slowest rank's " + ("pack + compute + unpack" if stats.packs(run) else "compute")
              + (" + halo" if stats.exchanges(run) else "") + " + wait + transfer; speedup = serial / parallel"
              + ("; pack + unpack = copying a step's region into and out of the kernel's packed buffers, which "
                 "only files written before the kernels computed boxes in place record (the terminal's max pack "
                 "then)" if stats.packs(run) else "")
              + ("; halo = an exchange boundary's point-to-point time, entry to exit (the terminal's max halo; "
                 "consolidation = halo + wait + transfer)" if stats.exchanges(run) else "") + ".\n",
              _breakdown_table(run),
              f"{heading} Bytes received per rank\n",
              markdown.image("bytes per rank", figures.save(_bytes_figure(run), out_dir, prefix + "bytes")),
              "Measured = `/comm/bytes_received`, expected = `/comm/bytes_expected` (for a gather s·(N − n_r)); "
              "n = the whole gathered tensor, or the reduced output of an Allreduce.\n",
              _bytes_table(run),
              f"{heading} Load imbalance\n",
              markdown.image("load imbalance", figures.save(_imbalance_figure(run), out_dir, prefix + "imbalance")),
              "Compute max/avg over ranks per iteration, median over iterations; the partition's max/avg of "
              "items owned is the imbalance the split alone implies.\n",
              _imbalance_table(run)]
    if run.comm_matrix is not None:
        reads = stats.reads_in_place(run)
        parts += [f"{heading} Who sent what to whom\n",
                  markdown.image("communication matrices", figures.save(_matrix_figure(run), out_dir,
                                                                         prefix + "matrix")),
                  "Bytes each rank (row) passed to MPI for each rank (column) in the last timed pass, per stage, "
                  "recorded at the MPI interface (`/comm/matrix`, a PMPI layer) independently of the counts above; "
                  "its row sums are the bytes sent, its column sums the bytes received. White: nothing. "
                  + ("Beside each MPI map, **read in place through the shared window, not MPI traffic** "
                     "(`/comm/shared_read_matrix`): bytes each rank (row) stored in its node's window that each "
                     "rank (column) of that node read there — what the next step's kernel reads of other ranks' "
                     "slices, and a sum's reads of other ranks' partial sums — counted by the consolidation from "
                     "the boxes it hands out, not measured; one colour scale for both. Per boundary:\n"
                     if reads else
                     "Reads of other ranks' slices in place through a shared window are not MPI traffic and do not "
                     "appear here.\n")]
        if reads:
            parts.append(_reads_table(run))
    return "\n".join(parts)


def _reads_table(run: Run) -> str:
    """Per stage: bytes through MPI and read in place, over all ranks and the most one rank took."""
    stages = ["input"] + list(run.layers)
    through_mpi = run.comm_matrix.sum(axis=(1, 2))
    read = np.vstack([run.input_bytes_read_in_place[None, :], run.bytes_read_in_place])
    rows = [(stage, f"{int(through_mpi[k]):,}", f"{int(read[k].sum()):,}", f"{int(read[k].max()):,}")
            for k, stage in enumerate(stages)]
    return markdown.table(["stage", "through MPI, all ranks (B)", "read in place, all ranks (B)",
                           "read in place, most by one rank (B)"], rows)


def _matrix_figure(run: Run):
    """One heat map per stage (the input broadcast, then each layer's boundary), log colour scale; for shared
    windows each beside the map of what was read in place at that stage."""
    stages = ["input"] + list(run.layers)
    maps = [(f"{stage}: MPI" if stats.reads_in_place(run) else stage, run.comm_matrix[k])
            for k, stage in enumerate(stages)]
    if stats.reads_in_place(run):
        maps = [m for k, mpi in enumerate(maps) for m in (mpi, (f"{stages[k]}: read in place",
                                                               run.shared_read_matrix[k]))]
    cols = min(len(maps), 4)
    rows = -(-len(maps) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.5 * cols, 3.0 * rows), squeeze=False)
    if stats.reads_in_place(run):
        fig.suptitle("left of each pair: passed to MPI; right: read in place through the shared window, not MPI "
                     "traffic", fontsize=10)
    top = max(max(int(matrix.max()) for _, matrix in maps), 1)
    image = None
    for k, ax in enumerate(axes.flat):
        if k >= len(maps):
            ax.axis("off")
            continue
        title, matrix = maps[k]
        shown = np.ma.masked_equal(matrix.astype(float), 0.0)
        image = ax.imshow(shown, cmap="viridis", norm=LogNorm(vmin=1, vmax=top), interpolation="nearest")
        ax.set_title(f"{title}: {int(matrix.sum()):,} B", fontsize=9)
        reader = title.endswith("read in place")
        ax.set_xlabel("read by rank" if reader else "to rank", fontsize=8)
        ax.set_ylabel("stored by rank" if reader else "from rank", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="bytes")
    return fig


def _summary(run: Run) -> str:
    meta = run.meta
    parallel = stats.forward_parallel_time(run)
    speedup = run.serial_forward / parallel
    hosts = ", ".join(sorted(set(run.hosts)))
    crowded = stats.oversubscription(run)
    if crowded:
        hosts += (f"; **oversubscribed**: {crowded[0]} ranks share {crowded[1]} CPUs on a node, so waits and "
                  "transfers include time a rank spent descheduled")
    items = [("file", f"`{run.path}`"), ("created (UTC)", meta.get("created_utc", "?")),
             ("command", f"`{meta.get('command_line', '?')}`"),
             ("ranks / nodes", f"{run.nprocs} / {run.node_count} ({hosts})"),
             ("network", run.network), ("batch", run.batch),
             ("iterations (warm-up)", f"{run.iterations} ({meta.get('warmup', '?')})"),
             ("consolidation / plan", f"{run.consolidation} / {run.plan}"
                                      + (f", `--split {run.splits_option}`" if run.splits_option else "")
                                      + (f" (decomposition {run.decomposition})" if run.decomposition else "")),
             ("MPI", meta.get("mpi_library", "?")), ("build", meta.get("git_commit", "?")),
             ("verification", meta.get("verification", "?")),
             ("forward pass", f"serial {markdown.us(run.serial_forward)} µs, parallel {markdown.us(parallel)} µs "
                              f"(slowest rank, median): speedup {markdown.ratio(speedup)}×, efficiency "
                              f"{markdown.ratio(100 * speedup / run.nprocs, 0)}%")]
    return "".join(f"- **{name}**: {value}\n" for name, value in items)


def _timeline_note(run: Run) -> str:
    if stats.timeline_source(run) == stats.TIMESTAMPS:
        return ("Timeline source: **timestamps** — every phase is drawn at its recorded time (`/timing/*_enter_s`, "
                "`*_exit_s`, `forward_start_s` on rank 0's clock; compute began at `boundary_enter_s` − "
                "`compute_s`" + (", or on a step with a pack and unpack (this file predates the box kernels) − "
                                 "`unpack_s` − `compute_s`, pack just before it" if stats.packs(run) else "")
                + "), from the earliest rank's start of the pass, so the gaps between phases and the skew between "
                "ranks are real.")
    return ("Timeline source: **durations** — this file has no timestamps (it was written before they were "
            "recorded), so each rank's phases are laid end to end from the barrier that starts the pass; gaps "
            "between phases and skew between ranks are not shown.")


def _timeline_figure(run: Run, iteration: int):
    segments = stats.timeline(run, iteration)
    fig, ax = plt.subplots(figsize=(10, min(1.6 + 0.45 * run.nprocs, 14)))
    for phase, color in figures.PHASE_COLORS.items():
        spans = [(s.rank, s.start * 1e6, s.duration * 1e6) for s in segments if s.phase == phase]
        for rank, start, width in spans:
            ax.barh(rank, width, left=start, height=0.7, color=color, edgecolor="white", linewidth=0.3)
        ax.barh(np.nan, 0, color=color, label=phase)  # legend entry only
    boundaries = _layer_ends(run, segments)
    previous = 0.0
    for name, end in boundaries:
        ax.axvline(end, color="black", linestyle=":", linewidth=0.8)
        ax.text((previous + end) / 2, 1.01, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                fontsize=8, rotation=0 if end - previous > 0.06 * boundaries[-1][1] else 60)
        previous = end
    exact = stats.timeline_source(run) == stats.TIMESTAMPS
    if exact:  # each rank's whole pass, so a late start or an early finish shows against the others
        for rank, start in enumerate(stats.pass_starts(run, iteration)):
            ax.plot([start * 1e6, (start + run.forward[iteration, rank]) * 1e6], [rank + 0.42] * 2, color="black",
                    linewidth=1.2, solid_capstyle="butt", label="forward_s (pass)" if rank == 0 else None)
    ax.set_yticks(range(run.nprocs), [f"rank {r} ({run.hosts[r]})" for r in range(run.nprocs)])
    ax.invert_yaxis()
    ax.set_xlabel("time since the earliest rank began the pass (µs, rank 0's clock, from timestamps)" if exact else
                  "time since the start of the pass (µs, rebuilt from durations: no timestamps in the file)")
    ax.set_title(f"Per-rank timeline, iteration {iteration} (median forward), P = {run.nprocs}", pad=22)
    fig.tight_layout()
    fig.legend(*ax.get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=5,
               frameon=False)
    return fig


def _layer_ends(run: Run, segments) -> list[tuple[str, float]]:
    """(layer, µs) where the last rank finished each step: the input broadcast, then each layer."""
    ends = {}
    for s in segments:
        name = "bcast" if s.layer == "input" else s.layer
        ends[name] = max(ends.get(name, 0.0), (s.start + s.duration) * 1e6)
    return list(ends.items())


def _timeline_table(run: Run, iteration: int) -> str:
    rows = [("broadcast wait", *run.broadcast_wait[iteration]),
            ("broadcast transfer", *run.broadcast_transfer[iteration])]
    for index, layer in enumerate(run.layers):
        rows += [(f"{layer} {phase}", *getattr(run, phase)[iteration, index])
                 for phase in stats.step_phases(run, index)]
    recorded = run.forward[iteration]
    total = np.sum([row[1:] for row in rows], axis=0)
    rows += [("sum of phases", *total), ("forward_s (recorded)", *recorded)]
    if run.has_timestamps:  # when each rank began and ended, from the earliest rank's start
        starts = stats.pass_starts(run, iteration)
        ends = [max(s.end for s in stats.timeline(run, iteration) if s.rank == rank) for rank in range(run.nprocs)]
        rows += [("pass start (timestamp)", *starts), ("last boundary exit (timestamp)", *ends)]
    return markdown.table(["phase"] + [f"rank {r}" for r in range(run.nprocs)],
                          [(name, *(markdown.us(v) for v in values)) for name, *values in rows])


def _breakdown_figure(run: Run):
    phases = stats.phase_times(run)
    consolidation = stats.consolidation_time(run)
    parallel = stats.layer_parallel_time(run)
    packing = stats.pack_time(run)
    x = np.arange(len(run.layers))
    fig, ax = plt.subplots(figsize=figures.layer_figsize(len(run.layers), 4))
    ax.bar(x, phases["compute"] * 1e6, 0.6, color=figures.PHASE_COLORS["compute"], label="compute")
    bottom = phases["compute"] * 1e6
    if stats.packs(run):
        ax.bar(x, packing * 1e6, 0.6, bottom=bottom, color=figures.PHASE_COLORS["pack"], label="pack + unpack")
        bottom = bottom + packing * 1e6
    ax.bar(x, consolidation * 1e6, 0.6, bottom=bottom, color=figures.PHASE_COLORS["transfer"],
           label="consolidation (halo + wait + transfer)" if stats.exchanges(run) else
           "consolidation (wait + transfer)")
    ax.plot(x, parallel * 1e6, "kD", markersize=5, label="parallel (slowest rank's sum)")
    ax.hlines(run.serial_layer * 1e6, x - 0.3, x + 0.3, color="crimson", linewidth=2, label="serial reference")
    for xi, value in zip(x, parallel):
        ax.annotate(f"{value * 1e6:,.0f}", (xi, value * 1e6), textcoords="offset points", xytext=(8, 2),
                    fontsize=7)
    figures.layer_ticks(ax, x, run.layers)
    ax.set_xlabel("layer")
    ax.set_ylabel("time per pass (µs, slowest rank, median)")
    ax.set_title(f"Compute vs consolidation per layer, P = {run.nprocs}, B = {run.batch}")
    ax.legend()
    return fig


def _breakdown_table(run: Run) -> str:
    phases = stats.phase_times(run)
    consolidation = stats.consolidation_time(run)
    parallel = stats.layer_parallel_time(run)
    speedup = stats.layer_speedup(run)
    # the terminal's "max halo" column where some boundary exchanges, and its former "max pack" where some step of a
    # file written before the box kernels packed
    optional = []
    if stats.packs(run):
        optional.append(("pack + unpack", stats.pack_time(run)))
    if stats.exchanges(run):
        optional.append(("halo", phases["halo"]))
    rows = [(layer, markdown.us(run.serial_layer[i]), markdown.us(phases["compute"][i]),
             *(markdown.us(values[i]) for _, values in optional),
             markdown.us(phases["wait"][i]), markdown.us(phases["transfer"][i]), markdown.us(consolidation[i]),
             markdown.us(parallel[i]), markdown.ratio(speedup[i], suffix="×"))
            for i, layer in enumerate(run.layers)]
    rows.append(("forward (incl. broadcast)", markdown.us(run.serial_forward), "", *("" for _ in optional),
                 "", "", "", markdown.us(stats.forward_parallel_time(run)),
                 markdown.ratio(stats.total_speedup(run), suffix="×")))
    return markdown.table(["layer", "serial µs", "compute", *(name for name, _ in optional), "wait",
                           "transfer", "consolidation", "parallel µs", "speedup"], rows)


def _bytes_figure(run: Run):
    fig, ax = plt.subplots(figsize=figures.layer_figsize(len(run.layers), 4))
    width = 0.8 / run.nprocs
    colors = figures.rank_colors(run.nprocs)
    for rank in range(run.nprocs):
        x = np.arange(len(run.layers)) + (rank - (run.nprocs - 1) / 2) * width
        ax.bar(x, run.bytes_received[:, rank], width, color=colors[rank],
               label=f"rank {rank}" if run.nprocs <= 12 else None)
        ax.hlines(run.bytes_expected[:, rank], x - width / 2, x + width / 2, color="black", linewidth=1.5,
                  label="expected s·(N − n_r)" if rank == 0 else None)
    if (run.bytes_received > 0).all():
        ax.set_yscale("log")
    figures.layer_ticks(ax, np.arange(len(run.layers)), run.layers)
    ax.set_xlabel("layer" + ("" if run.nprocs <= 12 else f" (bars: ranks 0 … {run.nprocs - 1} left to right)"))
    ax.set_ylabel("bytes received per consolidation (B)")
    ax.set_title(f"Bytes received per rank: measured bars, expected marks (P = {run.nprocs}, B = {run.batch})")
    ax.legend(ncol=2)
    return fig


def _bytes_table(run: Run) -> str:
    rows = []
    sizes = stats.boundary_bytes(run)
    for i, layer in enumerate(run.layers):
        measured, expected = run.bytes_received[i], run.bytes_expected[i]
        rows.append((f"{layer} ({run.boundary[i]})", markdown.count(sizes[i]),
                     *(f"{markdown.count(m)}" + ("" if m == e else f" (expected {markdown.count(e)})")
                       for m, e in zip(measured, expected)),
                     "yes" if (measured == expected).all() else "**no**"))
    expected = run.input_bytes_expected
    rows.append(("input (broadcast)", markdown.count(run.input_bytes_received.max()),
                 *(markdown.count(v) for v in run.input_bytes_received),
                 "—" if expected is None else "yes" if (expected == run.input_bytes_received).all() else "**no**"))
    return markdown.table(["layer (boundary)", "n (B)"] + [f"rank {r}" for r in range(run.nprocs)] + ["= expected"],
                          rows)


def _imbalance_figure(run: Run):
    measured = stats.compute_imbalance(run)
    implied = stats.partition_imbalance(run)
    x = np.arange(len(run.layers))
    fig, ax = plt.subplots(figsize=figures.layer_figsize(len(run.layers), 3.6))
    ax.bar(x, measured, 0.6, color=figures.PHASE_COLORS["compute"], label="compute max / avg (measured)")
    ax.hlines(implied, x - 0.3, x + 0.3, color="black", linewidth=2, label="items max / avg (partition)")
    ax.axhline(1.0, color="gray", linewidth=0.8)
    figures.layer_ticks(ax, x, run.layers)
    ax.set_xlabel("layer")
    ax.set_ylabel("max / average over ranks")
    ax.set_ylim(0.9, max(1.1, np.nanmax(np.concatenate([measured, implied])) * 1.08))
    ax.set_title(f"Load imbalance of compute across {run.nprocs} ranks (1 = perfectly balanced)")
    ax.legend(loc="upper left")
    return fig


def _imbalance_table(run: Run) -> str:
    compute = np.median(run.compute, axis=0)  # [L, P] per-rank medians, for the min/avg/max columns
    measured = stats.compute_imbalance(run)
    implied = stats.partition_imbalance(run)
    rows = [(layer, "/".join(str(c) for c in run.count[i]), markdown.us(compute[i].min()),
             markdown.us(compute[i].mean()), markdown.us(compute[i].max()), markdown.ratio(measured[i]),
             markdown.ratio(implied[i]))
            for i, layer in enumerate(run.layers)]
    return markdown.table(["layer", "items per rank", "min compute µs", "avg", "max", "compute max/avg",
                           "items max/avg"], rows)
