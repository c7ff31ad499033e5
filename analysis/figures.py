"""Shared matplotlib set-up: the Agg back-end (no display needed), one colour per phase, rank and layer, and
saving every figure as both PNG (for Markdown viewers) and SVG (for papers and zooming)."""
from __future__ import annotations

import pathlib
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the back-end must be chosen first)

PHASE_COLORS = {
    "broadcast wait": "#cbb8e6",
    "broadcast transfer": "#8172b3",
    "pack": "#64b5cd",
    "compute": "#4c72b0",
    "unpack": "#8c8c3c",
    "halo": "#c44e52",
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
    """tab10 for the first 10 layers, then tab20's lighter shades, so up to 20 layers (letters has 15) differ."""
    if index < 10:
        return plt.cm.tab10(index)
    return plt.cm.tab20((2 * (index - 10) + 1) % 20)


def wrap(text: str, width: int = 90) -> str:
    """A title line broken into lines of at most `width` characters (a deep network's one-line description is long);
    existing line breaks are kept."""
    return "\n".join(textwrap.fill(line, width, break_on_hyphens=False) for line in text.split("\n"))


def layer_figsize(layers: int, height: float) -> tuple[float, float]:
    """A per-layer bar chart's size: 7 inches wide for the seed's 4 layers, wider for deeper networks."""
    return max(7.0, 0.55 * layers + 1.5), height


def layer_ticks(ax, x, names) -> None:
    """Layer names under the bars, slanted when there are many (conv1 … logsoftmax would overlap)."""
    if len(names) > 6:
        ax.set_xticks(x, names, rotation=40, ha="right")
    else:
        ax.set_xticks(x, names)


def save(fig, out_dir: pathlib.Path, stem: str) -> str:
    """Writes out_dir/stem.png and .svg, closes the figure, returns the PNG's file name (for Markdown links)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / f"{stem}.png", dpi=PNG_DPI, bbox_inches="tight")
    fig.savefig(out_dir / f"{stem}.svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return f"{stem}.png"
