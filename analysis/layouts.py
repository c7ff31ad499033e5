"""`layouts RUN.h5 --out DIR`: four memory-layout pictures drawn from the run's real partition.

The pictures explain the decomposition (docs/design.md) for the network and P actually run, not a textbook case:
every box, slice and byte count comes from `/partition`, `/layers` and `/comm`. (1) the input image in row-major
memory and who reads it, (2) the convolution's data flow, (3) the linear layer's weight matrix cut into per-rank
slices, (4) the whole pipeline. With more than `MAX_RANK_ROWS` ranks the middle ones are elided in the per-rank
rows (the ownership strips still show every rank).
"""
from __future__ import annotations

import math
import pathlib
import textwrap

import numpy as np
from matplotlib.patches import FancyArrowPatch, Rectangle

from analysis import figures, markdown, stats
from analysis.figures import plt
from analysis.report import _slug
from analysis.results import FLOAT_BYTES, Run, load_runs

MAX_RANK_ROWS = 8


def write_layouts(path, out_dir: pathlib.Path) -> pathlib.Path:
    runs = load_runs([path])
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"# Memory layouts of `{pathlib.Path(path).name}`\n"]
    for run in runs:
        prefix = "" if len(runs) == 1 else _slug(run.label) + "_"
        if len(runs) > 1:
            parts.append(f"## {run.consolidation}, {run.plan}\n")
        parts += [f"P = {run.nprocs}, B = {run.batch}, network `{run.network}`.\n",
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
                    "stays sliced: each\nrank keeps its\nchannels for the\nnext layer"))
    _box(ax, full_x, 0.05, 1.9, top - 0.1, whole, color="#fdf1e8")
    for row, rank in enumerate(shown):
        y = top - (row + 1) * 1.0 + 0.15
        if rank is None:
            ax.text(5.8, y + 0.35, "⋮", ha="center", va="center", fontsize=14)
            continue
        first, count = run.begin[layer, rank], run.count[layer, rank]
        last = f"–{first + count - 1}" if count > 1 else ""
        owned = f"filters {first}{last}" if count else "no filters"
        _arrow(ax, (1.9, top / 2), (2.5, y + 0.35))
        _box(ax, 2.5, y, 3.1, 0.7, f"rank {rank}: {owned}\n{count}×{c_in}×{kernel}×{kernel} weights + bias, "
                                   f"{_bytes(run.weight_bytes[layer, rank])}", color="white")
        _arrow(ax, (5.6, y + 0.35), (6.2, y + 0.35))
        _box(ax, 6.2, y, 3.1, 0.7, f"channels {first}{last}: {count}×{oh}×{ow} × B={run.batch}\n"
                                   f"{_bytes(count * run.item_bytes[layer])}, one contiguous block", color="white")
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
    ax.text(full_x + 2.25, top / 2, "channel blocks\nin memory\n(rank colours,\nchannel 0 on top)", fontsize=7,
            va="center")
    for x, text in ((0.95, "1. broadcast input"), (4.05, "2. each rank's filters"),
                    (7.75, "3. its output channels"),
                    (full_x + 0.95, f"4. consolidation ({run.consolidation})" if gathered else
                     f"4. no consolidation ({run.plan})")):
        ax.text(x, -0.35, text, ha="center", fontsize=8, style="italic")
    ax.set_xlim(-0.1, 13.6)
    ax.set_ylim(-0.5, top + 0.1)
    ax.axis("off")
    split = ("replicated (every rank computes every filter)" if run.split[layer] == "replicated" else
             f"split by output channel "
             f"({'/'.join(str(c) for c in run.count[layer]) if run.nprocs <= 16 else f'{channels} over P'})")
    ax.set_title(f"Convolution data flow, P = {run.nprocs}: {run.layers[layer]}, {run.operation[layer]}, {split}")
    return fig


def _linear_figure(run: Run):
    """The weight matrix [out][in] cut into per-rank slices: row slices (output features, the per-layer and
    fused-column plans: whole x, gather of y) or column slices (input features, the fused plan: each rank's part
    of x, partial sums of every output, Allreduce)."""
    layer = _layer_index(run, "linear", -1)
    outputs, inputs = int(np.prod(run.out_shape[layer])), int(np.prod(run.in_shape[layer]))
    replicated = run.split[layer] == "replicated"
    by_rows = run.split[layer] == "features" or replicated  # replicated: every rank holds every row
    colors = figures.rank_colors(run.nprocs)
    total = run.items[layer]
    fig, ax = plt.subplots(figsize=(11, 6))
    mw, mh = 7.0, 4.0  # the matrix: rows = output features (row 0 at the top), columns = input features
    label_every = max(1, math.ceil(run.nprocs / 16))
    for rank in range(1 if replicated else run.nprocs):
        start, share = run.begin[layer, rank] / total, run.count[layer, rank] / total
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
            text = (f"rank {rank}: {'rows' if by_rows else 'columns'} {first}–{first + count - 1} ({shape}, "
                    f"{_bytes(run.weight_bytes[layer, rank])} with bias)")
            if replicated:
                text = f"every rank: the whole matrix ({shape}, {_bytes(run.weight_bytes[layer, rank])} with bias)"
            ax.text(band[0] + band[2] / 2, band[1] + band[3] / 2, text, ha="center", va="center",
                    fontsize=7 if run.nprocs <= 16 else 5, rotation=0 if by_rows else 90)
    ax.add_patch(Rectangle((0, 0), mw, mh, fill=False, edgecolor="black"))
    ax.text(mw / 2, -0.3, f"weight matrix W: {outputs} × {inputs:,} floats ({_bytes(outputs * inputs * FLOAT_BYTES)})"
                          ", PyTorch layout [out][in]", ha="center", va="top", fontsize=8)
    ax.add_patch(Rectangle((0, mh + 0.35), mw, 0.3, facecolor="#cbb8e6" if by_rows else "none", edgecolor="black"))
    holder = "whole on every rank" if by_rows else "rank r holds only its slice x_r"
    ax.text(mw / 2, mh + 0.5, f"input x: {inputs:,} floats × B={run.batch} (previous layer's output, {holder})",
            ha="center", va="center", fontsize=8, bbox=dict(facecolor="white", edgecolor="none", pad=1))
    ax.add_patch(Rectangle((mw + 0.6, 0), 0.35, mh, fill=False, edgecolor="black"))
    ax.text(mw + 0.78, mh + 0.15, "y_r = W_r·x + b_r" if by_rows else "partial y_r = W[:, r]·x_r", ha="center",
            va="bottom", fontsize=8)
    _arrow(ax, (mw + 1.05, mh / 2), (mw + 2.3, mh / 2),
           "none: already whole" if run.boundary[layer] == "none" else
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
    split = ("replicated (every rank computes every output)" if replicated else
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
    ax.set_title(f"Pipeline, P = {run.nprocs}, plan {run.plan}: every layer's shape, split, consolidation and bytes "
                 "per rank\n(ownership strips: each layer's items in memory order, left to right, in rank colours)")
    return fig


def _split_text(run: Run, layer: int) -> str:
    """"32 channels of 2,704 B: 11/11/10 per rank"; a replicated layer: "replicated: 512 channels of 4 B, all on
    every rank"."""
    if run.split[layer] == "replicated":
        return f"replicated: {run.items[layer]:,} channels of {_bytes(run.item_bytes[layer])}, all on every rank"
    return (f"{run.items[layer]:,} {run.split[layer]} of {_bytes(run.item_bytes[layer])}: "
            f"{_counts_text(run.count[layer])} per rank")


def _boundary_text(run: Run, layer: int) -> str:
    """What the layer boundary does and the bytes each rank received, checked against the file's byte model."""
    kind = run.boundary[layer]
    if kind == "none" and run.split[layer] == "replicated":
        return "no consolidation: every rank\ncomputed the whole output"
    if kind == "none":
        return "no consolidation: the next layer\nreads only this rank's slice"
    received = run.bytes_received[layer]
    agrees = "= model" if (received == run.bytes_expected[layer]).all() else "≠ model!"
    what = run.consolidation if kind == "allgather" else "allreduce (sum of partial outputs)"
    return f"{what} of {_bytes(stats.boundary_bytes(run)[layer])}\nreceived per rank: {_spread(received)} ({agrees})"


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
