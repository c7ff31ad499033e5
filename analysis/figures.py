"""Shared matplotlib set-up: the Agg back-end (no display needed), one colour per phase, rank and layer, and
saving every figure as both PNG (for Markdown viewers) and SVG (for papers and zooming)."""
from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the back-end must be chosen first)

PHASE_COLORS = {
    "broadcast wait": "#cbb8e6",
    "broadcast transfer": "#8172b3",
    "compute": "#4c72b0",
    "wait": "#bbbbbb",
    "transfer": "#dd8452",
}
PNG_DPI = 110

plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "axes.grid": True, "grid.alpha": 0.3,
                     "axes.axisbelow": True, "svg.hashsalt": "cnnpar", "legend.fontsize": 8})


def rank_colors(nprocs: int) -> list:
    """Distinct colours for up to 20 ranks, a continuous map beyond (neighbouring ranks stay distinguishable)."""
    if nprocs <= 10:
        return [plt.cm.tab10(i) for i in range(nprocs)]
    if nprocs <= 20:
        return [plt.cm.tab20(i) for i in range(nprocs)]
    return [plt.cm.viridis(i / (nprocs - 1)) for i in range(nprocs)]


def layer_color(index: int):
    return plt.cm.tab10(index % 10)


def save(fig, out_dir: pathlib.Path, stem: str) -> str:
    """Writes out_dir/stem.png and .svg, closes the figure, returns the PNG's file name (for Markdown links)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / f"{stem}.png", dpi=PNG_DPI, bbox_inches="tight")
    fig.savefig(out_dir / f"{stem}.svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return f"{stem}.png"
