"""`layouts RUN.h5 --out DIR`: memory-layout pictures drawn from the run's real partition.

The pictures explain the decomposition (docs/design.md) for the network and P actually run, not a textbook case:
every box, slice and byte count comes from `/partition`, `/layers` and `/comm`. (1) the input image in row-major
memory and who reads it, (2) the convolution's data flow, (3) the linear layer's weight matrix cut into per-rank
slices, (4) the whole pipeline, and (5), when some step is split by rows or samples, replicated, or split on a 2-D
grid (tiles, rows × channels, images × channels), the cuts: one panel per such step with each rank's row block and
the halo rows it receives, its block of the batch, the whole layer on every rank, its tile and the halo rows,
columns and corner it receives, or its block of the grid. With more than `MAX_RANK_ROWS` ranks the middle ones are
elided in the per-rank rows (the ownership strips still show every rank).

Halos are computed here from the file, by the rule the plan uses (include/cnnpar/plan.hpp, DistDL's): a rows step of
a conv or pool with kernel K and stride S (parsed from `/layers/operation`; no padding exists) whose rank owns output
rows [h0, h1) reads input rows [h0·S, (h1 − 1)·S + K) clamped to the input; an element-wise step reads [h0, h1). The
halo is what it reads minus the rows the previous step's rank owns (`/partition` of the previous step when that step
is split by rows too; the first step's input is broadcast whole, and any other previous step leaves its whole output,
or whole images, on the rank's side), received from the ranks that own them at the previous step's boundary, so the
halo bytes (rows × columns read × C × 4 × B; the columns read are (W_out − 1)·S + K clamped to W, all of W but for a
window that skips the last columns) add up to that boundary's `/comm/bytes_received`. Tiles follow the same rule
on both axes (tile_halos): rows × columns [h0·S, (h1 − 1)·S + K) × [w0·S, (w1 − 1)·S + K) minus the previous step's
tile, one piece per owner, pixels × C × 4 × B bytes. The 2-D partition (/partition/second_*, /layers/grid) is read
here from the file (second_axis), since `Run` does not carry it.
"""
from __future__ import annotations

import math
import pathlib
import re
import textwrap
from dataclasses import dataclass
from functools import lru_cache

import h5py
import numpy as np
from matplotlib.patches import FancyArrowPatch, Rectangle

from analysis import figures, markdown, stats
from analysis.figures import plt
from analysis.report import _slug
from analysis.results import FLOAT_BYTES, ResultsError, Run, load_runs

MAX_RANK_ROWS = 8


def write_layouts(path, out_dir: pathlib.Path) -> pathlib.Path:
    runs = load_runs([path])
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"# Memory layouts of `{pathlib.Path(path).name}`\n"]
    for run in runs:
        prefix = "" if len(runs) == 1 else _slug(run.label) + "_"
        if len(runs) > 1:
            parts.append(f"## {run.consolidation}, {run.scheme}\n")
        parts += [f"P = {run.nprocs}, B = {run.batch}, network `{run.network}`.\n",
                  *_cuts_parts(run, out_dir, prefix),
                  markdown.image("input in memory", figures.save(_input_figure(run), out_dir, prefix + "input")),
                  markdown.image("convolution data flow",
                                 figures.save(_conv_figure(run), out_dir, prefix + "conv_dataflow")),
                  markdown.image("linear layer", figures.save(_linear_figure(run), out_dir, prefix + "linear")),
                  markdown.image("pipeline", figures.save(_pipeline_figure(run), out_dir, prefix + "pipeline")),
                  _partition_table(run)]
    index = out_dir / "layouts.md"
    index.write_text("\n".join(parts))
    return index


def _shown_ranks(nprocs: int) -> list[int | None]:
    """Ranks drawn as rows; None stands for the elided middle ones."""
    if nprocs <= MAX_RANK_ROWS:
        return list(range(nprocs))
    return [0, 1, 2, None, nprocs - 2, nprocs - 1]


def _layer_index(run: Run, prefix: str, fallback: int) -> int:
    """The first layer whose operation starts with `prefix` (conv, linear), else `fallback`."""
    return next((i for i, op in enumerate(run.operation) if op.startswith(prefix)), fallback % len(run.layers))


def _bytes(value) -> str:
    return f"{markdown.count(value)} B"


def _box(ax, x, y, width, height, text, color="#eef2f8", fontsize=8):
    ax.add_patch(Rectangle((x, y), width, height, facecolor=color, edgecolor="black", linewidth=0.8))
    ax.text(x + width / 2, y + height / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, text=None, fontsize=7):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, linewidth=0.8, color="black"))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.08, text, ha="center", va="bottom",
                fontsize=fontsize)


def _ownership_strip(ax, run: Run, layer: int, x, y, width, height, label_ranks=True):
    """The layer's N items as a bar, each rank's block in its colour, split points labelled with item indices."""
    if run.split[layer] == "replicated":  # every rank computes all of it: one hatched bar, as the input's
        ax.add_patch(Rectangle((x, y), width, height, facecolor="#d9d9d9", edgecolor="black", linewidth=0.8,
                               hatch="//"))
        ax.text(x + width / 2, y + height / 2, "whole layer on every rank (replicated)", ha="center", va="center",
                fontsize=7, bbox=dict(facecolor="white", edgecolor="none", pad=1))
        return
    colors = figures.rank_colors(run.nprocs)
    total = run.items[layer]
    for rank in range(run.nprocs):
        start = x + width * run.begin[layer, rank] / total
        ax.add_patch(Rectangle((start, y), width * run.count[layer, rank] / total, height,
                               facecolor=colors[rank], edgecolor="white", linewidth=0.4))
        if label_ranks and run.nprocs <= MAX_RANK_ROWS and run.count[layer, rank] > 0:
            ax.text(start + width * run.count[layer, rank] / total / 2, y + height / 2, f"r{rank}", ha="center",
                    va="center", fontsize=7, color="white", fontweight="bold")
    ax.add_patch(Rectangle((x, y), width, height, fill=False, edgecolor="black", linewidth=0.8))


def _input_figure(run: Run):
    """Input image in row-major (C,H,W,B) memory: element index of pixel (c, h, w) of image b is
    ((c·H + h)·W + w)·B + b, and every rank holds all of it after the broadcast."""
    channels, height, width = (int(v) for v in run.in_shape[0])
    batch = run.batch
    elements = channels * height * width * batch
    image = run.input_image[0, 0] if run.input_image is not None else None
    fig = plt.figure(figsize=(10, 7.4))
    grid = fig.add_gridspec(2, 1, height_ratios=[3.2, 1.3], hspace=0.35)
    ax = fig.add_subplot(grid[0])
    if image is not None:
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=1, extent=(-0.5, width - 0.5, height - 0.5, -0.5))
        what = "image 0, channel 0 of /tensors/input (pixels / 255)"
    else:
        ax.imshow(np.zeros((height, width)), cmap="gray_r", vmin=0, vmax=1,
                  extent=(-0.5, width - 0.5, height - 0.5, -0.5))
        what = "pixel values not stored (run cnnpar_mpi with --dump-tensors final to draw the image)"
    ax.set_xticks(np.arange(-0.5, width, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, height, 1), minor=True)
    ax.grid(which="minor", color="#9ab", linewidth=0.3)
    ax.grid(which="major", visible=False)
    step = max(1, math.ceil(height / 14))
    rows = list(range(0, height, step))
    ax.set_yticks(rows, [f"h={h}: [{h * width * batch:,}]" for h in rows], fontsize=7)
    ax.set_xticks(range(0, width, max(1, math.ceil(width / 14))))
    ax.set_xlabel("column w")
    ax.set_ylabel("row h: [index of the row's first element]")
    if height * width <= 144:
        for h in range(height):
            for w in range(width):
                ax.text(w, h, str((h * width + w) * batch), ha="center", va="center", fontsize=6, color="crimson")
    else:
        corners = (((0, 0), (0.25, 0.9)), ((1, 0), (0.25, 0.8)), ((0, width - 1), (0.72, 0.9)),
                   ((height - 1, width - 1), (0.72, 0.1)))  # text positions in axes fractions, y up
        for (h, w), (tx, ty) in corners:
            ax.annotate(f"element [{(h * width + w) * batch:,}]: h={h}, w={w}", (w, h), xytext=(tx, ty),
                        textcoords="axes fraction", fontsize=7, color="crimson", ha="center",
                        bbox=dict(boxstyle="round", facecolor="white", edgecolor="crimson", linewidth=0.5),
                        arrowprops=dict(arrowstyle="->", color="crimson", linewidth=0.7))
    ax.set_title(f"Input {channels}×{height}×{width} per image (B = {batch}): {what}\n"
                 f"element [((c·{height} + h)·{width} + w)·{batch} + b], row-major, batch innermost", fontsize=9)

    strip = fig.add_subplot(grid[1])
    # memory order C,H,W,B: the batch's B values of one pixel are adjacent
    values = run.input_image.transpose(1, 2, 3, 0).ravel() if image is not None else np.zeros(elements)
    strip.imshow(values[np.newaxis, :], aspect="auto", cmap="gray_r", vmin=0, vmax=1,
                 extent=(0, elements, 0.6, 1.4))
    shown = _shown_ranks(run.nprocs)
    colors = figures.rank_colors(run.nprocs)
    for row, rank in enumerate(shown):
        y = -0.7 - row * 0.7
        if rank is None:
            strip.text(elements / 2, y + 0.25, "⋮", ha="center", va="center", fontsize=10)
            continue
        strip.add_patch(Rectangle((0, y), elements, 0.5, facecolor=colors[rank], alpha=0.85))
        source = "its own copy (broadcast root)" if rank == 0 else \
            f"receives {_bytes(run.input_bytes_received[rank])} from rank 0"
        strip.text(elements / 2, y + 0.25, f"rank {rank} reads elements 0–{elements - 1:,} (all): {source}",
                   ha="center", va="center", fontsize=7, color="white", fontweight="bold")
    strip.add_patch(Rectangle((0, 0.6), elements, 0.8, fill=False, edgecolor="black", linewidth=0.8))
    strip.vlines([h * width * batch for h in range(1, channels * height)], 0.6, 1.4, color="#9ab", linewidth=0.4)
    strip.set_xlim(0, elements)
    strip.set_ylim(-0.8 - (len(shown) - 1) * 0.7, 1.5)
    strip.set_yticks([1.0], ["memory\n(row starts\nmarked)"], fontsize=7)
    ticks = [h * width * batch for h in range(0, height + 1, 2 * step)]
    strip.set_xticks(ticks, [f"{t:,}" for t in ticks], fontsize=7)
    strip.set_xlabel(f"element index in memory (float32, {_bytes(elements * FLOAT_BYTES)} in all)")
    strip.grid(False)
    interleaved = f", the {batch} images interleaved (batch innermost)" if batch > 1 else ""
    strip.set_title(f"The same input as one row-major array{interleaved}: every rank holds and reads all of it "
                    "(the input is broadcast, not split)", fontsize=9)
    return fig


def _conv_figure(run: Run):
    layer = _layer_index(run, "conv", 0)
    channels, oh, ow = (int(v) for v in run.out_shape[layer])
    c_in, ih, iw = (int(v) for v in run.in_shape[layer])
    kernel = ih - oh + 1
    shown = _shown_ranks(run.nprocs)
    colors = figures.rank_colors(run.nprocs)
    rows = len(shown)
    fig, ax = plt.subplots(figsize=(12, 1.6 + 0.85 * rows))
    top = rows * 1.0
    input_bytes = c_in * ih * iw * run.batch * FLOAT_BYTES
    _box(ax, 0, top / 2 - 0.6, 1.9, 1.2, f"input\n{c_in}×{ih}×{iw} × B={run.batch}\n{_bytes(input_bytes)}\n"
                                         "broadcast from rank 0", color="#f3eefa")
    full_x = 10.4
    gathered = run.boundary[layer] != "none"
    whole = (f"full {run.layers[layer]} output\n{channels}×{oh}×{ow} × B={run.batch}\n"
             f"{_bytes(run.gathered_bytes[layer])}\non every rank")
    if not gathered:
        whole = (f"{run.layers[layer]} output\n{channels}×{oh}×{ow} × B={run.batch}\n"
                 + ("computed whole\non every rank" if run.split[layer] == "replicated" else
                    f"stays sliced: each\nrank keeps its\n{_unit(run, layer)} for the\nnext layer"))
    _box(ax, full_x, 0.05, 1.9, top - 0.1, whole, color="#fdf1e8")
    for row, rank in enumerate(shown):
        y = top - (row + 1) * 1.0 + 0.15
        if rank is None:
            ax.text(5.8, y + 0.35, "⋮", ha="center", va="center", fontsize=14)
            continue
        first, count = run.begin[layer, rank], run.count[layer, rank]
        last = f"–{first + count - 1}" if count > 1 else ""
        by_channel = run.split[layer] in ("channels", "replicated")
        if by_channel:
            owned = f"filters {first}{last}" if count else "no filters"
            filters = count
            block = f"channels {first}{last}: {count}×{oh}×{ow} × B={run.batch}"
            layout = "one contiguous block"
        else:  # rows or samples: every filter, on the rank's rows or images
            unit = _unit(run, layer)
            owned = f"{unit} {first}{last}, all filters" if count else f"no {unit}"
            filters = channels
            block = (f"rows {first}{last}: {channels}×{count}×{ow} × B={run.batch}" if run.split[layer] == "rows"
                     else f"images {first}{last}: {channels}×{oh}×{ow} × {count}")
            # files written before the box kernels copied the block into a packed buffer (Run.packed); since, the
            # kernel writes it where it lies
            layout = "strided (packed for the kernel)" if run.packed[layer] else "strided (kernel writes it there)"
        _arrow(ax, (1.9, top / 2), (2.5, y + 0.35))
        _box(ax, 2.5, y, 3.1, 0.7, f"rank {rank}: {owned}\n{filters}×{c_in}×{kernel}×{kernel} weights + bias, "
                                   f"{_bytes(run.weight_bytes[layer, rank])}", color="white")
        _arrow(ax, (5.6, y + 0.35), (6.2, y + 0.35))
        _box(ax, 6.2, y, 3.1, 0.7, f"{block}\n{_bytes(count * run.item_bytes[layer])}, {layout}", color="white")
        for x in (2.5, 6.2):
            ax.add_patch(Rectangle((x, y), 0.1, 0.7, color=colors[rank]))
        _arrow(ax, (9.3, y + 0.35), (full_x, y + 0.35), f"recv {markdown.count(run.bytes_received[layer, rank])} B"
               if run.nprocs > 1 and gathered else None)
    # the gathered tensor's channel blocks, every rank, in memory order (channel 0 at the top)
    for rank in range(run.nprocs):
        start = run.begin[layer, rank] / run.items[layer]
        height = run.count[layer, rank] / run.items[layer]
        ax.add_patch(Rectangle((full_x + 1.9, 0.05 + (top - 0.1) * (1 - start - height)), 0.25,
                               (top - 0.1) * height, color=colors[rank]))
    blocks = {"rows": "row blocks\n(rank colours,\nrow 0 on top)",
              "samples": "image blocks\n(rank colours,\nimage 0 on top;\ninterleaved in\nmemory, batch\ninnermost)"}
    ax.text(full_x + 2.25, top / 2, blocks.get(run.split[layer], "channel blocks\nin memory\n(rank colours,\n"
                                                                  "channel 0 on top)"), fontsize=7, va="center")
    for x, text in ((0.95, "1. broadcast input"), (4.05, "2. each rank's filters"),
                    (7.75, f"3. its output {_unit(run, layer)}"),
                    (full_x + 0.95, f"4. consolidation ({run.consolidation})" if gathered else
                     f"4. no consolidation ({run.scheme})")):
        ax.text(x, -0.35, text, ha="center", fontsize=8, style="italic")
    ax.set_xlim(-0.1, 13.6)
    ax.set_ylim(-0.5, top + 0.1)
    ax.axis("off")
    what = {"rows": "output rows", "samples": "samples (images)"}.get(run.split[layer], "output channel")
    split = ("replicated (every rank computes every filter)" if run.split[layer] == "replicated" else
             f"split by {what} "
             f"({'/'.join(str(c) for c in run.count[layer]) if run.nprocs <= 16 else f'{run.items[layer]} over P'})")
    ax.set_title(f"Convolution data flow, P = {run.nprocs}: {run.layers[layer]}, {run.operation[layer]}, {split}")
    return fig


def _linear_figure(run: Run):
    """The weight matrix [out][in] cut into per-rank slices: row slices (output features, the per-layer and
    fused-column plans: whole x, gather of y) or column slices (input features, the fused plan: each rank's part
    of x, partial sums of every output, Allreduce)."""
    layer = _layer_index(run, "linear", -1)
    outputs, inputs = int(np.prod(run.out_shape[layer])), int(np.prod(run.in_shape[layer]))
    samples = run.split[layer] == "samples"  # each rank its images, through the whole matrix
    replicated = run.split[layer] == "replicated" or samples
    by_rows = run.split[layer] == "features" or replicated  # replicated: every rank holds every row
    colors = figures.rank_colors(run.nprocs)
    total = run.items[layer]
    fig, ax = plt.subplots(figsize=(11, 6))
    mw, mh = 7.0, 4.0  # the matrix: rows = output features (row 0 at the top), columns = input features
    label_every = max(1, math.ceil(run.nprocs / 16))
    for rank in range(1 if replicated else run.nprocs):
        start, share = run.begin[layer, rank] / total, run.count[layer, rank] / total
        if samples:  # the whole matrix: its rows are not what the ranks divide
            start, share = 0.0, 1.0
        band = (0, mh * (1 - start - share), mw, mh * share) if by_rows else (mw * start, 0, mw * share, mh)
        ax.add_patch(Rectangle(band[:2], band[2], band[3], facecolor=colors[rank], alpha=0.55, edgecolor="white"))
        if by_rows:  # this rank's rows of y
            ax.add_patch(Rectangle((mw + 0.6, band[1]), 0.35, band[3], facecolor=colors[rank], alpha=0.55))
        else:  # this rank's part of x, and its partial sums of every output
            ax.add_patch(Rectangle((band[0], mh + 0.35), band[2], 0.3, facecolor=colors[rank], alpha=0.55))
            ax.add_patch(Rectangle((mw + 0.6 + 0.35 * rank / run.nprocs, 0), 0.35 / run.nprocs, mh,
                                   facecolor=colors[rank], alpha=0.55))
        if rank % label_every == 0 and run.count[layer, rank] > 0:
            first, count = run.begin[layer, rank], run.count[layer, rank]
            shape = f"{count}×{inputs}" if by_rows else f"{outputs}×{count}"
            if samples:
                shape = f"{outputs}×{inputs}"
            text = (f"rank {rank}: {'rows' if by_rows else 'columns'} {first}–{first + count - 1} ({shape}, "
                    f"{_bytes(run.weight_bytes[layer, rank])} with bias)")
            if replicated:
                text = f"every rank: the whole matrix ({shape}, {_bytes(run.weight_bytes[layer, rank])} with bias)"
                if samples:
                    text += f"\napplied to its images: {_counts_text(run.count[layer])} per rank"
            ax.text(band[0] + band[2] / 2, band[1] + band[3] / 2, text, ha="center", va="center",
                    fontsize=7 if run.nprocs <= 16 else 5, rotation=0 if by_rows else 90)
    ax.add_patch(Rectangle((0, 0), mw, mh, fill=False, edgecolor="black"))
    ax.text(mw / 2, -0.3, f"weight matrix W: {outputs} × {inputs:,} floats ({_bytes(outputs * inputs * FLOAT_BYTES)})"
                          ", PyTorch layout [out][in]", ha="center", va="top", fontsize=8)
    ax.add_patch(Rectangle((0, mh + 0.35), mw, 0.3, facecolor="#cbb8e6" if by_rows else "none", edgecolor="black"))
    holder = ("rank r holds its images" if samples else "whole on every rank" if by_rows else
              "rank r holds only its slice x_r")
    ax.text(mw / 2, mh + 0.5, f"input x: {inputs:,} floats × B={run.batch} (previous layer's output, {holder})",
            ha="center", va="center", fontsize=8, bbox=dict(facecolor="white", edgecolor="none", pad=1))
    ax.add_patch(Rectangle((mw + 0.6, 0), 0.35, mh, fill=False, edgecolor="black"))
    ax.text(mw + 0.78, mh + 0.15, "y_r = W_r·x + b_r" if by_rows else "partial y_r = W[:, r]·x_r", ha="center",
            va="bottom", fontsize=8)
    _arrow(ax, (mw + 1.05, mh / 2), (mw + 2.3, mh / 2),
           "none: already whole" if run.boundary[layer] == "none" else
           "exchange: images" if run.boundary[layer] == "exchange" else
           f"{run.consolidation}: concatenate" if by_rows else "allreduce: sum", fontsize=6)
    for rank in range(run.nprocs if by_rows and not replicated else 0):  # the gathered y holds every rank's block in feature order
        start, share = run.begin[layer, rank] / total, run.count[layer, rank] / total
        ax.add_patch(Rectangle((mw + 2.35, mh * (1 - start - share)), 0.35, mh * share, facecolor=colors[rank],
                               edgecolor="white"))
    ax.add_patch(Rectangle((mw + 2.35, 0), 0.35, mh, fill=not by_rows, facecolor="#fdf1e8", edgecolor="black"))
    where = (f"({_bytes(stats.boundary_bytes(run)[layer])})\non every rank;\nreceived per rank:\n"
             f"{_spread(run.bytes_received[layer])}")
    if run.boundary[layer] == "none":
        where = ("computed whole\non every rank" if replicated else
                 "stays sliced:\nrank r keeps its rows\n(the next layer\nreads only them)")
    ax.text(mw + 2.9, mh / 2, f"y: {outputs} floats × B={run.batch}\n{where}", va="center", fontsize=8)
    ax.set_xlim(-0.2, mw + 4.4)
    ax.set_ylim(-0.8, mh + 0.9)
    ax.axis("off")
    split = ("split by samples (each rank its images, the whole matrix)" if samples else
             "replicated (every rank computes every output)" if replicated else
             "split by output feature (row slices)" if by_rows else "split by input feature (column slices)")
    ax.set_title(f"Linear layer, P = {run.nprocs}: {run.layers[layer]}, {run.operation[layer]}, {split}")
    return fig


def _spread(values) -> str:
    """"340 B" when every rank has the same value, else "340–344 B"."""
    low, high = int(np.min(values)), int(np.max(values))
    return _bytes(low) if low == high else f"{markdown.count(low)}–{_bytes(high)}"


def _pipeline_figure(run: Run):
    rows = len(run.layers) + 1
    fig, ax = plt.subplots(figsize=(12, 1.15 * rows + 0.8))
    row_height = 1.15
    c, h, w = (int(v) for v in run.in_shape[0])
    input_bytes = c * h * w * run.batch * FLOAT_BYTES
    y = (rows - 1) * row_height
    _box(ax, 0, y, 3.3, 0.75, f"input {c}×{h}×{w} × B={run.batch}\n{_bytes(input_bytes)}", color="#f3eefa")
    ax.add_patch(Rectangle((3.7, y + 0.2), 5.2, 0.35, facecolor="#cbb8e6", edgecolor="black", hatch="//"))
    ax.text(6.3, y + 0.375, "whole input on every rank", ha="center", va="center", fontsize=7,
            bbox=dict(facecolor="white", edgecolor="none", pad=1))
    ax.text(9.2, y + 0.375, f"broadcast from rank 0:\n{_bytes(run.input_bytes_received.max())} to each of "
                            f"{run.nprocs - 1} ranks", va="center", fontsize=8)
    for layer, name in enumerate(run.layers):
        y = (rows - 2 - layer) * row_height
        _arrow(ax, (1.65, y + row_height), (1.65, y + 0.75))
        out = "×".join(str(int(v)) for v in run.out_shape[layer])
        _box(ax, 0, y, 3.3, 0.75, textwrap.fill(f"{name}: {run.operation[layer]}", 44) + f"\n→ {out} × B={run.batch}",
             color="#eef2f8", fontsize=7)
        _ownership_strip(ax, run, layer, 3.7, y + 0.2, 5.2, 0.35)
        ax.text(6.3, y + 0.62, _split_text(run, layer), ha="center", fontsize=7)
        ax.text(9.2, y + 0.375, _boundary_text(run, layer), va="center", fontsize=8)
    ax.set_xlim(-0.1, 12.6)
    ax.set_ylim(-0.15, rows * row_height)
    ax.axis("off")
    ax.set_title(f"Pipeline, P = {run.nprocs}, {_scheme_text(run)}: every layer's shape, split, consolidation and bytes "
                 "per rank\n(ownership strips: each layer's items in memory order, left to right, in rank colours)")
    return fig


def _split_text(run: Run, layer: int) -> str:
    """"32 channels of 2,704 B: 11/11/10 per rank"; a replicated layer: "replicated: 512 channels of 4 B, all on
    every rank"."""
    if run.split[layer] == "replicated":
        return f"replicated: {run.items[layer]:,} channels of {_bytes(run.item_bytes[layer])}, all on every rank"
    return (f"{run.items[layer]:,} {run.split[layer]} of {_bytes(run.item_bytes[layer])}: "
            f"{_counts_text(run.count[layer])} per rank")


def _scheme_text(run: Run) -> str:
    """"plan per-layer", "plan per-layer, --split conv=rows", "decomposition rows (plan per-layer)"."""
    if run.decomposition:
        return f"decomposition {run.decomposition} (plan {run.plan})"
    return f"plan {run.plan}" + (f", --split {run.splits_option}" if run.splits_option else "")


def _unit(run: Run, layer: int) -> str:
    """What a step's items are, in words: "channels", "rows", "images", ..."""
    return {"samples": "images", "replicated": "channels"}.get(run.split[layer], run.split[layer])


def _boundary_text(run: Run, layer: int) -> str:
    """What the layer boundary does and the bytes each rank received, checked against the file's byte model."""
    kind = run.boundary[layer]
    if kind == "none" and run.split[layer] == "replicated":
        return "no consolidation: every rank\ncomputed the whole output"
    if kind == "none":
        return "no consolidation: the next layer\nreads only this rank's slice"
    received = run.bytes_received[layer]
    agrees = "= model" if (received == run.bytes_expected[layer]).all() else "≠ model!"
    what = {"allgather": run.consolidation, "allreduce": "allreduce (sum of partial outputs)",
            "exchange": "exchange (point to point" + (", read in place)" if run.consolidation == "shared" else ")")
            }.get(kind, kind)
    size = f"{_bytes(stats.boundary_bytes(run)[layer])}" + (" in all" if kind == "exchange" else "")
    return f"{what} of {size}\nreceived per rank: {_spread(received)} ({agrees})"


def _counts_text(counts) -> str:
    """11/11/10, or with many ranks how many own each count in rank order: "1 (32 ranks), 0 (1 rank)"."""
    if len(counts) <= 8:
        return "/".join(str(c) for c in counts)
    values, starts = np.unique(counts, return_index=True)
    runs = [(values[i], int((counts == values[i]).sum())) for i in np.argsort(starts)]
    return ", ".join(f"{value} ({ranks} rank{'s' if ranks > 1 else ''})" for value, ranks in runs)


def _partition_table(run: Run) -> str:
    rows = [(name, run.split[i], run.items[i], _bytes(run.item_bytes[i]), _counts_text(run.count[i]),
             _bytes(run.bytes_received[i].max()))
            for i, name in enumerate(run.layers)]
    return markdown.table(["layer", "split", "items N", "item size s", "items per rank", "max received"], rows)


# --- (5) the cuts: rows with their halos, sample blocks, replicated layers ----------------------------------------

GRID_SPLITS = ("tiles", "rows-channels", "samples-channels")  # the 2-D splits (/layers/grid R × C)
CUT_SPLITS = ("rows", "samples", "replicated", *GRID_SPLITS)  # the /layers/split values the cuts picture draws
_WINDOW = re.compile(r"(\d+)x\d+\b.*\bstride (\d+)")  # "conv 3x3, 32 filters, stride 1", "max-pool 2x2, stride 2"


@dataclass(frozen=True)
class Halo:
    """Input rows [first, end) of a rows step that a rank reads but its previous step did not leave on it: received
    from `sender` at the previous step's boundary."""

    first: int
    end: int
    sender: int

    @property
    def rows(self) -> int:
        return self.end - self.first


def cut_layers(run: Run) -> list[int]:
    """The steps the cuts picture draws: split by rows or samples, replicated, or on a 2-D grid."""
    return [i for i, split in enumerate(run.split) if split in CUT_SPLITS]


def window(run: Run, layer: int) -> tuple[int, int]:
    """(K, S): a conv's or pool's kernel and stride, from /layers/operation; (1, 1) for any other layer (element-wise,
    one input row per output row)."""
    if run.kinds[layer] not in ("conv", "pool"):
        return 1, 1
    match = _WINDOW.search(run.operation[layer])
    if not match:
        raise ResultsError(f"{run.path}: cannot read the kernel and stride of {run.layers[layer]} from "
                           f"/layers/operation '{run.operation[layer]}'")
    return int(match.group(1)), int(match.group(2))


def _block(run: Run, layer: int, rank: int) -> tuple[int, int]:
    first = int(run.begin[layer, rank])
    return first, first + int(run.count[layer, rank])


def needed_rows(run: Run, layer: int, rank: int) -> tuple[int, int]:
    """[first, end) of the input rows a rows step's rank reads: [h0·S, (h1 − 1)·S + K) for its output rows [h0, h1),
    clamped to the input; (0, 0) when it owns no rows."""
    h0, h1 = _block(run, layer, rank)
    if h1 <= h0:
        return 0, 0
    kernel, stride = window(run, layer)
    return h0 * stride, min((h1 - 1) * stride + kernel, int(run.in_shape[layer, 1]))


def held_rows(run: Run, layer: int, rank: int) -> tuple[int, int]:
    """[first, end) of the step's input rows the rank holds before the previous boundary moves anything: the previous
    step's row block when that step is split by rows, else every row (the broadcast input, a gathered or replicated
    output, or the rank's own images whole)."""
    if layer > 0 and run.split[layer - 1] == "rows":
        return _block(run, layer - 1, rank)
    return 0, int(run.in_shape[layer, 1])


def row_halos(run: Run, layer: int) -> list[list[Halo]]:
    """[rank] the halo of a rows step (needed_rows minus held_rows), cut by the previous step's owners, top first."""
    halos = []
    for rank in range(run.nprocs):
        first, end = needed_rows(run, layer, rank)
        low, high = held_rows(run, layer, rank)
        missing = [(first, end)] if high <= low else [(first, min(end, low)), (max(first, high), end)]
        pieces = []
        for a, b in missing:
            if b <= a:
                continue
            for sender in range(run.nprocs):
                s0, s1 = _block(run, layer - 1, sender)
                if max(a, s0) < min(b, s1):
                    pieces.append(Halo(max(a, s0), min(b, s1), sender))
        halos.append(sorted(pieces, key=lambda h: h.first))
    return halos


def needed_columns(run: Run, layer: int) -> int:
    """Input columns a rows step reads (every output column's window): (W_out − 1)·S + K clamped to W_in, which is
    less than W_in when the windows do not reach the last columns (a 2×2 pool of an odd width)."""
    kernel, stride = window(run, layer)
    return min((int(run.out_shape[layer, 2]) - 1) * stride + kernel, int(run.in_shape[layer, 2]))


def row_bytes(run: Run, layer: int) -> int:
    """Bytes of one halo row of a step for the whole batch: the columns it reads × C × 4 × B (the exchange moves
    exactly the box the step reads)."""
    return needed_columns(run, layer) * int(run.in_shape[layer, 0]) * FLOAT_BYTES * run.batch


def halo_bytes(run: Run, layer: int) -> np.ndarray:
    """[P] bytes of every rank's halo at a rows step (what the previous boundary must bring it)."""
    return np.array([sum(h.rows for h in halos) * row_bytes(run, layer) for halos in row_halos(run, layer)],
                    dtype=np.int64)


def _rows_text(first: int, end: int) -> str:
    return "none" if end <= first else f"{first}" if end - first == 1 else f"{first}–{end - 1}"


def cuts_figure(run: Run):
    """One panel per cut_layers step (three to a row); None when there is none."""
    layers = cut_layers(run)
    if not layers:
        return None
    columns = min(len(layers), 3)
    rows = math.ceil(len(layers) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.6 * columns, 4.6 * rows), squeeze=False)
    for ax, layer in zip(axes.flat, layers):
        {"rows": _rows_panel, "samples": _samples_panel, "replicated": _replicated_panel, "tiles": _tiles_panel,
         "rows-channels": _grid_panel, "samples-channels": _grid_panel}[run.split[layer]](ax, run, layer)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
    for ax in axes.flat[len(layers):]:
        fig.delaxes(ax)
    shown = {"rows": "row blocks with the halo rows each rank receives (hatched, in the sender's colour)",
             "samples": "sample blocks (whole weights on every rank)", "replicated": "replicated layers",
             "tiles": "tiles with the halo each rank receives (rows, columns, corner; hatched in the owner's colour)",
             "rows-channels": "rows × channels grids", "samples-channels": "images × channels grids"}
    fig.suptitle(figures.wrap(f"The cuts, P = {run.nprocs}, B = {run.batch}: "
                              + ", ".join(text for split, text in shown.items()
                                          if split in {run.split[i] for i in layers})), fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (4.6 * rows)))  # room for a two-line suptitle
    return fig


def _rows_panel(ax, run: Run, layer: int) -> None:
    """Left: the step's input rows, in the colours of the ranks whose previous step owns them (grey: every rank
    holds them). Middle: per rank the input rows it reads, its own part light, its halo hatched in the sender's
    colour. Right: the output row blocks. Row 0 on top; each tensor's rows fill the height."""
    colors = figures.rank_colors(run.nprocs)
    height_in, height_out = int(run.in_shape[layer, 1]), int(run.out_shape[layer, 1])
    kernel, stride = window(run, layer)
    halos = row_halos(run, layer)
    shown = _shown_ranks(run.nprocs)

    def span(first, end, rows):  # (y, height) of rows [first, end) of a tensor of `rows` rows, row 0 on top
        return 1 - end / rows, (end - first) / rows

    previous_rows = layer > 0 and run.split[layer - 1] == "rows"
    if previous_rows:
        for rank in range(run.nprocs):
            first, end = _block(run, layer - 1, rank)
            if end > first:
                y, h = span(first, end, height_in)
                ax.add_patch(Rectangle((0, y), 1, h, facecolor=colors[rank], alpha=0.45, edgecolor="white",
                                       gid="held"))
    else:
        ax.add_patch(Rectangle((0, 0), 1, 1, facecolor="#d9d9d9", edgecolor="none", hatch="//", gid="held"))
    ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, edgecolor="black", linewidth=0.8))
    where = (f"{run.layers[layer - 1]}'s row blocks" if previous_rows else
             "the broadcast input" if layer == 0 else "whole on every rank")
    ax.text(0.5, 1.03, f"input\n{height_in} rows\n({where})", ha="center", va="bottom", fontsize=6.5)
    x = 1.5
    for rank in shown:
        if rank is None:
            ax.text(x + 0.3, 0.5, "⋯", ha="center", va="center", fontsize=12)
            x += 0.8
            continue
        first, end = needed_rows(run, layer, rank)
        low, high = held_rows(run, layer, rank)
        if end > first:
            own_first, own_end = max(first, low), min(end, high)
            if own_end > own_first:
                y, h = span(own_first, own_end, height_in)
                ax.add_patch(Rectangle((x, y), 0.6, h, facecolor=colors[rank], alpha=0.45, edgecolor="none",
                                       gid="own"))
            for halo in halos[rank]:
                y, h = span(halo.first, halo.end, height_in)
                ax.add_patch(Rectangle((x, y), 0.6, h, facecolor="white", edgecolor=colors[halo.sender],
                                       hatch="xxxx", linewidth=1.0, gid="halo"))
            y, h = span(first, end, height_in)
            ax.add_patch(Rectangle((x, y), 0.6, h, fill=False, edgecolor=colors[rank], linewidth=1.6, gid="reads"))
        halo_rows = sum(h.rows for h in halos[rank])
        ax.text(x + 0.3, 1.03, f"r{rank} reads\n{_rows_text(first, end)}\nhalo {halo_rows}", ha="center",
                va="bottom", fontsize=6.5, color=colors[rank])
        x += 0.8
    out_x = x + 0.5
    for rank in range(run.nprocs):
        first, end = _block(run, layer, rank)
        if end <= first:
            continue
        y, h = span(first, end, height_out)
        ax.add_patch(Rectangle((out_x, y), 1, h, facecolor=colors[rank], edgecolor="white", gid="block"))
        if run.nprocs <= MAX_RANK_ROWS and h > 0.05:
            ax.text(out_x + 0.5, y + h / 2, f"r{rank}\n{_rows_text(first, end)}", ha="center", va="center",
                    fontsize=6.5, color="white", fontweight="bold")
    ax.add_patch(Rectangle((out_x, 0), 1, 1, fill=False, edgecolor="black", linewidth=0.8))
    ax.text(out_x + 0.5, 1.03, f"output\n{height_out} rows\n(row blocks)", ha="center", va="bottom", fontsize=6.5)
    ax.set_xlim(-0.1, out_x + 1.1)
    ax.set_ylim(-0.32, 1.3)
    per_rank = halo_bytes(run, layer)
    per_rank = "/".join(markdown.count(b) for b in per_rank) if run.nprocs <= 8 else _spread(per_rank)
    ax.text((out_x + 1) / 2, -0.04, figures.wrap(
        f"reads rows [h0·{stride}, (h1 − 1)·{stride} + {kernel}); halo = read − held, "
        f"{markdown.count(row_bytes(run, layer))} B a row (columns read·C·4·B); halo bytes per rank {per_rank}"
        f"{_halo_check(run, layer)}", 70), ha="center", va="top", fontsize=6.5)
    ax.set_title(figures.wrap(f"{run.layers[layer]}: {run.operation[layer]} — split by rows "
                              f"({_counts_text(run.count[layer])})", 60), fontsize=8)


def _in_place_check(run: Run, layer: int, halo: np.ndarray) -> str:
    """Under shared windows the halo is read in place: the previous boundary receives nothing through MPI (its model
    says so too), and what the consolidation counted as read of other ranks' data there (/comm/bytes_read_in_place)
    must be the halo, rank by rank. Files written before reads in place were recorded have only the first half."""
    previous = run.layers[layer - 1]
    text = (f"; read in place through the shared window ({run.consolidation}): {previous}'s boundary receives "
            "nothing through MPI, as its model says")
    if run.bytes_read_in_place is None:
        return text
    read = run.bytes_read_in_place[layer - 1]
    return text + (f"; = {previous}'s /comm/bytes_read_in_place" if (halo == read).all() else
                   f"; ≠ {previous}'s /comm/bytes_read_in_place {'/'.join(str(int(v)) for v in read)}")


def _halo_check(run: Run, layer: int) -> str:
    """How the halo bytes compare with what the previous boundary received (/comm/bytes_received), where that
    boundary moves only halos: a rows step after a rows step."""
    if layer == 0 or run.split[layer - 1] != "rows":
        return ""
    received = run.bytes_received[layer - 1]
    if run.boundary[layer - 1] == "none":
        return "; the previous boundary moves nothing" + ("" if not halo_bytes(run, layer).any() else
                                                           " (but a halo is needed: check the file!)")
    if halo_bytes(run, layer).any() and not received.any() and not run.bytes_expected[layer - 1].any():
        return _in_place_check(run, layer, halo_bytes(run, layer))
    same = (halo_bytes(run, layer) == received).all()
    return (f"; = {run.layers[layer - 1]}'s /comm/bytes_received" if same else
            f"; ≠ {run.layers[layer - 1]}'s /comm/bytes_received {'/'.join(str(int(v)) for v in received)}")


def _samples_panel(ax, run: Run, layer: int) -> None:
    """The batch's images left to right, each rank's block in its colour; every rank holds the whole weights."""
    colors = figures.rank_colors(run.nprocs)
    images = int(run.items[layer])
    for rank in range(run.nprocs):
        first, end = _block(run, layer, rank)
        if end > first:
            ax.add_patch(Rectangle((first / images, 0.45), (end - first) / images, 0.3, facecolor=colors[rank],
                                   edgecolor="white", gid="block"))
            if run.nprocs <= MAX_RANK_ROWS:
                ax.text((first + end) / 2 / images, 0.6, f"r{rank}\n{_rows_text(first, end)}", ha="center",
                        va="center", fontsize=7, color="white", fontweight="bold")
    for b in range(1, images):
        ax.plot([b / images] * 2, [0.45, 0.75], color="white", linewidth=0.4)
    ax.add_patch(Rectangle((0, 0.45), 1, 0.3, fill=False, edgecolor="black", linewidth=0.8))
    ax.text(0.5, 0.8, f"the batch: images 0–{images - 1}, each through {run.layers[layer]} "
                      f"→ {'×'.join(str(int(v)) for v in run.out_shape[layer])}", ha="center", fontsize=7)
    idle = [rank for rank in range(run.nprocs) if run.count[layer, rank] == 0]
    weights = run.weight_bytes[layer]
    lines = [f"images per rank: {_counts_text(run.count[layer])}"
             + (f"; {len(idle)} rank{'s' if len(idle) > 1 else ''} without an image" if idle else ""),
             (f"weights: whole on every rank, {_spread(weights)} each" if weights.any() else "no weights"),
             f"after it: {_boundary_text(run, layer)}".replace("\n", " ")]
    ax.text(0.5, 0.38, "\n".join(figures.wrap(line, 75) for line in lines), ha="center", va="top", fontsize=7)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0.1, 0.9)
    ax.set_title(figures.wrap(f"{run.layers[layer]}: {run.operation[layer]} — split by samples", 60), fontsize=8)


def _replicated_panel(ax, run: Run, layer: int) -> None:
    ax.add_patch(Rectangle((0, 0.45), 1, 0.3, facecolor="#d9d9d9", edgecolor="black", hatch="//", gid="block"))
    ax.text(0.5, 0.6, "the whole layer on every rank", ha="center", va="center", fontsize=8,
            bbox=dict(facecolor="white", edgecolor="none", pad=1))
    weights = run.weight_bytes[layer]
    lines = [f"{run.nprocs} ranks each compute all {'×'.join(str(int(v)) for v in run.out_shape[layer])} × "
             f"B={run.batch} outputs",
             f"weights: whole on every rank, {_spread(weights)} each" if weights.any() else "no weights",
             f"after it: {_boundary_text(run, layer)}".replace("\n", " ")]
    ax.text(0.5, 0.38, "\n".join(figures.wrap(line, 75) for line in lines), ha="center", va="top", fontsize=7)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0, 0.95)
    ax.set_title(figures.wrap(f"{run.layers[layer]}: {run.operation[layer]} — replicated", 60), fontsize=8)


def _halo_table(run: Run) -> str:
    rows = []
    for layer in cut_layers(run):
        if run.split[layer] != "rows":
            continue
        halos = row_halos(run, layer)
        halo = halo_bytes(run, layer)
        for rank in range(run.nprocs):
            pieces = ", ".join(f"{_rows_text(h.first, h.end)} from r{h.sender}" for h in halos[rank]) or "none"
            received = (markdown.count(run.bytes_received[layer - 1, rank])
                        if layer > 0 and run.split[layer - 1] == "rows" else "—")
            rows.append((run.layers[layer], rank, _rows_text(*_block(run, layer, rank)),
                         _rows_text(*needed_rows(run, layer, rank)), _rows_text(*held_rows(run, layer, rank)),
                         pieces, markdown.count(halo[rank]), received))
    if not rows:
        return ""
    return markdown.table(["step", "rank", "output rows", "reads input rows", "holds (previous step)", "halo rows",
                           "halo B", "previous boundary received B"], rows)


def _cuts_parts(run: Run, out_dir: pathlib.Path, prefix: str) -> list[str]:
    """The cuts picture and its halo tables, when some step is rows, samples, replicated or on a 2-D grid."""
    fig = cuts_figure(run)
    if fig is None:
        return []
    parts = [markdown.image("the cuts", figures.save(fig, out_dir, prefix + "cuts")),
             "The cuts: every step split by rows or samples, replicated, or on a 2-D grid (tiles, rows × channels, "
             "images × channels). Rows: each rank reads input rows [h0·S, (h1 − 1)·S + K) for its output rows "
             "[h0, h1); the halo (hatched, in the sender's colour) is what it reads minus the rows the previous step "
             "left on it, received at the previous boundary. Tiles: the same on both axes, rows × columns "
             "[h0·S, (h1 − 1)·S + K) × [w0·S, (w1 − 1)·S + K), so a tile's halo has rows above or below it, columns "
             "beside it and the corner (C·4·B bytes a pixel).\n"]
    for table in (_halo_table(run), _tile_halo_table(run)):
        if table:
            parts.append(table)
    return parts


# --- (5b) the 2-D cuts: tiles with their halos on both axes, rows × channels and images × channels grids -----------

@dataclass(frozen=True)
class SecondAxis:
    """A file's 2-D split data, which `Run` does not carry: /partition/second_begin, second_count [L, P] (the first
    column of the rank's tile, or its first channel) and /layers/grid [L, 2] (R × C; 1 × 1 for 1-D splits)."""

    begin: np.ndarray
    count: np.ndarray
    grid: np.ndarray


def second_axis(run: Run) -> SecondAxis:
    """The run's second-axis partition and process grid, read from its file (the run's /compare group if any)."""
    match = re.search(r" \[([^\]]+)\]$", run.label)
    group = f"compare/{match.group(1)}" if match else "/"
    return _read_second_axis(str(run.path), group, len(run.layers), run.nprocs,
                             any(split in GRID_SPLITS for split in run.split))


@lru_cache(maxsize=64)
def _read_second_axis(path: str, group: str, layers: int, nprocs: int, needed: bool) -> SecondAxis:
    with h5py.File(path, "r") as f:
        g = f[group]
        present = all(name in g for name in ("partition/second_begin", "partition/second_count", "layers/grid"))
        if not present:
            if needed:
                raise ResultsError(f"{path}: a 2-D split needs {group.rstrip('/')}/partition/second_begin, "
                                   "second_count and /layers/grid")
            zeros = np.zeros((layers, nprocs), dtype=np.int64)
            return SecondAxis(zeros, zeros, np.ones((layers, 2), dtype=np.int64))
        axis = SecondAxis(g["partition/second_begin"][...].astype(np.int64),
                          g["partition/second_count"][...].astype(np.int64), g["layers/grid"][...].astype(np.int64))
    if axis.begin.shape != (layers, nprocs) or axis.count.shape != (layers, nprocs) or axis.grid.shape != (layers, 2):
        raise ResultsError(f"{path}: {group.rstrip('/')}/partition/second_* or /layers/grid has the wrong shape")
    return axis


Span = tuple[int, int]  # [first, end)
Box = tuple[Span, Span]  # (rows, columns)


def _second_block(run: Run, layer: int, rank: int) -> Span:
    axis = second_axis(run)
    first = int(axis.begin[layer, rank])
    return first, first + int(axis.count[layer, rank])


def tile(run: Run, layer: int, rank: int) -> Box:
    """(rows, columns) of the output tile a tiles step's rank owns."""
    return _block(run, layer, rank), _second_block(run, layer, rank)


def _empty(box: Box) -> bool:
    (r0, r1), (c0, c1) = box
    return r1 <= r0 or c1 <= c0


def needed_tile(run: Run, layer: int, rank: int) -> Box:
    """(rows, columns) of the input a tiles step's rank reads: [h0·S, (h1 − 1)·S + K) × [w0·S, (w1 − 1)·S + K) for
    its output tile [h0, h1) × [w0, w1), clamped to the input; ((0, 0), (0, 0)) when its tile is empty."""
    (h0, h1), (w0, w1) = tile(run, layer, rank)
    if h1 <= h0 or w1 <= w0:
        return (0, 0), (0, 0)
    kernel, stride = window(run, layer)
    return ((h0 * stride, min((h1 - 1) * stride + kernel, int(run.in_shape[layer, 1]))),
            (w0 * stride, min((w1 - 1) * stride + kernel, int(run.in_shape[layer, 2]))))


def owner_boxes(run: Run, layer: int) -> list[Box] | None:
    """[rank] the part of a step's input each rank holds before the previous boundary moves anything, when the
    previous step is cut spatially: its tile (tiles) or its row block across every column (rows); None when every
    rank holds the whole input (the broadcast input, a gathered, replicated or exchanged whole output)."""
    if layer == 0 or run.split[layer - 1] not in ("tiles", "rows"):
        return None
    if run.split[layer - 1] == "tiles":
        return [tile(run, layer - 1, rank) for rank in range(run.nprocs)]
    return [(_block(run, layer - 1, rank), (0, int(run.in_shape[layer, 2]))) for rank in range(run.nprocs)]


def held_tile(run: Run, layer: int, rank: int) -> Box:
    owners = owner_boxes(run, layer)
    return owners[rank] if owners else ((0, int(run.in_shape[layer, 1])), (0, int(run.in_shape[layer, 2])))


@dataclass(frozen=True)
class TileHalo:
    """A box of input rows × columns a tiles step's rank reads but its previous step did not leave on it, received
    from `sender` (the previous step's owner); `part` says where it lies next to the held tile: "rows" (above or
    below it, within its columns), "columns" (left or right, within its rows) or "corner"."""

    rows: Span
    columns: Span
    sender: int
    part: str

    @property
    def pixels(self) -> int:
        return (self.rows[1] - self.rows[0]) * (self.columns[1] - self.columns[0])


def _within(inner: Span, outer: Span) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def tile_halos(run: Run, layer: int) -> list[list[TileHalo]]:
    """[rank] the halo of a tiles step: the input it reads (needed_tile) minus what it holds, cut by the previous
    step's owners (the owners' boxes partition the input, so each piece is the read box ∩ another rank's box);
    top to bottom, left to right."""
    owners = owner_boxes(run, layer)
    halos = []
    for rank in range(run.nprocs):
        needed = needed_tile(run, layer, rank)
        pieces = []
        if owners is not None and not _empty(needed):
            held = owners[rank]
            for sender, ((s0, s1), (t0, t1)) in enumerate(owners):
                if sender == rank:
                    continue
                box = ((max(needed[0][0], s0), min(needed[0][1], s1)), (max(needed[1][0], t0), min(needed[1][1], t1)))
                if _empty(box):
                    continue
                part = ("rows" if _within(box[1], held[1]) else "columns" if _within(box[0], held[0]) else
                        "corner")
                pieces.append(TileHalo(box[0], box[1], sender, part))
        halos.append(sorted(pieces, key=lambda h: (h.rows[0], h.columns[0])))
    return halos


def pixel_bytes(run: Run, layer: int) -> int:
    """Bytes of one input pixel of a step for the whole batch: C × 4 × B."""
    return int(run.in_shape[layer, 0]) * FLOAT_BYTES * run.batch


def tile_halo_bytes(run: Run, layer: int) -> np.ndarray:
    """[P] bytes of every rank's halo at a tiles step (pixels × C × 4 × B)."""
    return np.array([sum(h.pixels for h in halos) * pixel_bytes(run, layer) for halos in tile_halos(run, layer)],
                    dtype=np.int64)


def _box_text(box: Box) -> str:
    if _empty(box):
        return "none"
    return f"{_rows_text(*box[0])} × {_rows_text(*box[1])}"


def _tile_check(run: Run, layer: int) -> str:
    """How the tile halo bytes compare with the previous boundary's /comm/bytes_received, where that boundary moves
    only halos: a tiles step after a tiles step."""
    if layer == 0 or run.split[layer - 1] != "tiles":
        return ""
    halo = tile_halo_bytes(run, layer)
    if run.boundary[layer - 1] == "none":
        return "; the previous boundary moves nothing" + (" (but a halo is needed: check the file!)" if halo.any()
                                                           else "")
    received = run.bytes_received[layer - 1]
    if halo.any() and not received.any() and not run.bytes_expected[layer - 1].any():
        return _in_place_check(run, layer, halo)
    return (f"; = {run.layers[layer - 1]}'s /comm/bytes_received" if (halo == received).all() else
            f"; ≠ {run.layers[layer - 1]}'s /comm/bytes_received {'/'.join(str(int(v)) for v in received)}")


def _grid_text(run: Run, layer: int) -> str:
    rows, columns = (int(v) for v in second_axis(run).grid[layer])
    return f"{rows}×{columns}"


def _tiles_panel(ax, run: Run, layer: int) -> None:
    """Left: per rank the step's input plane (row 0 on top) with the previous step's owners faint, the part it reads
    outlined in its colour, its own part light and each halo piece (rows, columns, corner) hatched in the owner's
    colour. Right: the output tiles on the grid, in rank colours."""
    colors = figures.rank_colors(run.nprocs)
    height_in, width_in = int(run.in_shape[layer, 1]), int(run.in_shape[layer, 2])
    height_out, width_out = int(run.out_shape[layer, 1]), int(run.out_shape[layer, 2])
    kernel, stride = window(run, layer)
    halos = tile_halos(run, layer)
    owners = owner_boxes(run, layer)
    side_in = max(height_in, width_in)
    ih, iw = height_in / side_in, width_in / side_in

    rows, columns = (int(v) for v in second_axis(run).grid[layer])
    on_grid = rows * columns == run.nprocs and run.nprocs <= 16  # the planes placed as the ranks sit on the grid
    shown = list(range(run.nprocs)) if on_grid else _shown_ranks(run.nprocs)
    cell_w, cell_h = iw + 0.25, ih + 0.42  # one plane and its label
    plane_rows = rows if on_grid else 1
    area_h = plane_rows * cell_h
    for index, rank in enumerate(shown):
        x, y = ((rank % columns) * cell_w, (rows - 1 - rank // columns) * cell_h) if on_grid else (index * cell_w, 0)
        if rank is None:
            ax.text(x + iw / 2, y + ih / 2, "⋯", ha="center", va="center", fontsize=12)
            continue

        def rect(box: Box):  # (x, y, w, h) of a box of this rank's input plane, row 0 on top
            (r0, r1), (c0, c1) = box
            return (x + iw * c0 / width_in, y + ih * (1 - r1 / height_in), iw * (c1 - c0) / width_in,
                    ih * (r1 - r0) / height_in)

        if owners is not None:
            for owner, box in enumerate(owners):
                if not _empty(box):
                    bx, by, bw, bh = rect(box)
                    ax.add_patch(Rectangle((bx, by), bw, bh, facecolor=colors[owner], alpha=0.12, edgecolor="white",
                                           linewidth=0.4, gid="held"))
        else:
            ax.add_patch(Rectangle((x, y), iw, ih, facecolor="#eeeeee", edgecolor="none", gid="held"))
        needed = needed_tile(run, layer, rank)
        if not _empty(needed):
            held = held_tile(run, layer, rank)
            own = ((max(needed[0][0], held[0][0]), min(needed[0][1], held[0][1])),
                   (max(needed[1][0], held[1][0]), min(needed[1][1], held[1][1])))
            if not _empty(own):
                bx, by, bw, bh = rect(own)
                ax.add_patch(Rectangle((bx, by), bw, bh, facecolor=colors[rank], alpha=0.5, edgecolor="none",
                                       gid="own"))
            for halo in halos[rank]:
                bx, by, bw, bh = rect((halo.rows, halo.columns))
                ax.add_patch(Rectangle((bx, by), bw, bh, facecolor="white", edgecolor=colors[halo.sender],
                                       hatch="xxxx" if halo.part != "corner" else "....", linewidth=1.0,
                                       gid="halo"))
            bx, by, bw, bh = rect(needed)
            ax.add_patch(Rectangle((bx, by), bw, bh, fill=False, edgecolor=colors[rank], linewidth=1.6, gid="reads"))
        ax.add_patch(Rectangle((x, y), iw, ih, fill=False, edgecolor="black", linewidth=0.6))
        pixels = sum(h.pixels for h in halos[rank])
        ax.text(x + iw / 2, y + ih + 0.03, f"r{rank} reads {_box_text(needed)}\nhalo {pixels} px", ha="center",
                va="bottom", fontsize=6, color=colors[rank])
    out_x = (columns if on_grid else len(shown)) * cell_w + 0.3
    side_out = max(height_out, width_out)
    scale = min(1.0, area_h - 0.42)
    oh, ow = scale * height_out / side_out, scale * width_out / side_out
    out_y = (area_h - 0.42 - oh) / 2
    for rank in range(run.nprocs):
        box = tile(run, layer, rank)
        if _empty(box):
            continue
        (r0, r1), (c0, c1) = box
        bx, by = out_x + ow * c0 / width_out, out_y + oh * (1 - r1 / height_out)
        bw, bh = ow * (c1 - c0) / width_out, oh * (r1 - r0) / height_out
        ax.add_patch(Rectangle((bx, by), bw, bh, facecolor=colors[rank], edgecolor="white", gid="block"))
        if run.nprocs <= MAX_RANK_ROWS and bh > 0.08 and bw > 0.15:
            ax.text(bx + bw / 2, by + bh / 2, f"r{rank}", ha="center", va="center", fontsize=6.5, color="white",
                    fontweight="bold")
    ax.add_patch(Rectangle((out_x, out_y), ow, oh, fill=False, edgecolor="black", linewidth=0.8))
    ax.text(out_x + ow / 2, out_y + oh + 0.03, f"output\n{height_out}×{width_out}\n({_grid_text(run, layer)} tiles)",
            ha="center", va="bottom", fontsize=6.5)
    ih = area_h - 0.42  # for the limits below
    ax.set_xlim(-0.1, out_x + ow + 0.1)
    ax.set_ylim(-0.55, ih + 0.45)
    ax.set_aspect("equal")
    per_rank = tile_halo_bytes(run, layer)
    per_rank = "/".join(markdown.count(b) for b in per_rank) if run.nprocs <= 8 else _spread(per_rank)
    where = ("input held whole by every rank" if owners is None else
             f"held: {run.layers[layer - 1]}'s {'tiles' if run.split[layer - 1] == 'tiles' else 'row blocks'}")
    ax.text((out_x + ow) / 2, -0.04, figures.wrap(
        f"reads rows [h0·{stride}, (h1 − 1)·{stride} + {kernel}) × columns [w0·{stride}, (w1 − 1)·{stride} + "
        f"{kernel}); {where}; halo = read − held (rows, columns ×, corner ·), {markdown.count(pixel_bytes(run, layer))}"
        f" B a pixel (C·4·B); halo bytes per rank {per_rank}{_tile_check(run, layer)}", 75),
        ha="center", va="top", fontsize=6.5)
    first = second_axis(run).count[layer]
    ax.set_title(figures.wrap(f"{run.layers[layer]}: {run.operation[layer]} — tiles on a {_grid_text(run, layer)} "
                              f"grid (rows {_counts_text(run.count[layer])}, columns {_counts_text(first)})", 60),
                 fontsize=8)


def _grid_panel(ax, run: Run, layer: int) -> None:
    """A rows × channels or images × channels step: the output's first axis (rows or images, the first on top)
    against its channels (features for a linear layer) left to right, each rank's block in its colour."""
    colors = figures.rank_colors(run.nprocs)
    axis = second_axis(run)
    first_total = int(run.items[layer])
    second_total = max(int((axis.begin[layer] + axis.count[layer]).max()), 1)
    by_rows = run.split[layer] == "rows-channels"
    first_unit = "rows" if by_rows else "images"
    second_unit = "features" if run.kinds[layer] == "fc" else "channels"
    top, height = 0.85, 0.5
    for rank in range(run.nprocs):
        (r0, r1), (c0, c1) = tile(run, layer, rank)
        if r1 <= r0 or c1 <= c0:
            continue
        y = top - height * r1 / first_total
        ax.add_patch(Rectangle((c0 / second_total, y), (c1 - c0) / second_total, height * (r1 - r0) / first_total,
                               facecolor=colors[rank], edgecolor="white", linewidth=0.6, gid="block"))
        if run.nprocs <= MAX_RANK_ROWS:
            ax.text((c0 + c1) / 2 / second_total, y + height * (r1 - r0) / first_total / 2,
                    f"r{rank}\n{first_unit[0]} {_rows_text(r0, r1)}\n{second_unit[0]} {_rows_text(c0, c1)}",
                    ha="center", va="center", fontsize=6, color="white", fontweight="bold")
    ax.add_patch(Rectangle((0, top - height), 1, height, fill=False, edgecolor="black", linewidth=0.8))
    ax.text(0.5, top + 0.02, f"{second_unit} 0–{second_total - 1} →", ha="center", va="bottom", fontsize=7)
    ax.text(-0.02, top - height / 2, f"{first_unit}\n0–{first_total - 1}\n↓", ha="right", va="center", fontsize=7)
    weights = run.weight_bytes[layer]
    lines = [f"{_grid_text(run, layer)} grid: {first_unit} per rank {_counts_text(run.count[layer])}, {second_unit} "
             f"per rank {_counts_text(axis.count[layer])}",
             f"weights per rank: {_spread(weights)}" if weights.any() else "no weights",
             f"after it: {_boundary_text(run, layer)}".replace("\n", " ")]
    ax.text(0.5, top - height - 0.05, "\n".join(figures.wrap(line, 75) for line in lines), ha="center", va="top",
            fontsize=7)
    ax.set_xlim(-0.18, 1.02)
    ax.set_ylim(0.05, 0.95)
    ax.set_title(figures.wrap(f"{run.layers[layer]}: {run.operation[layer]} — {first_unit} × {second_unit} on a "
                              f"{_grid_text(run, layer)} grid", 60), fontsize=8)


def _tile_halo_table(run: Run) -> str:
    rows = []
    for layer in cut_layers(run):
        if run.split[layer] != "tiles":
            continue
        halos = tile_halos(run, layer)
        halo = tile_halo_bytes(run, layer)
        owners = owner_boxes(run, layer)
        for rank in range(run.nprocs):
            pieces = ", ".join(f"{_box_text((h.rows, h.columns))} from r{h.sender} ({h.part})"
                               for h in halos[rank]) or "none"
            received = (markdown.count(run.bytes_received[layer - 1, rank])
                        if layer > 0 and run.split[layer - 1] == "tiles" else "—")
            rows.append((run.layers[layer], rank, _box_text(tile(run, layer, rank)),
                         _box_text(needed_tile(run, layer, rank)),
                         _box_text(owners[rank]) if owners else "all", pieces, markdown.count(halo[rank]), received))
    if not rows:
        return ""
    return markdown.table(["step", "rank", "output tile (rows × columns)", "reads input", "holds (previous step)",
                           "halo (rows × columns)", "halo B", "previous boundary received B"], rows)
