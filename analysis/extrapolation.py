"""Each plan's consolidation cost extrapolated to P = 8 … 1,024 and to several nodes, against compute.

Only the model is extrapolated: n per layer is fixed by the network and batch, compute is assumed to divide
perfectly (serial / P), and consolidation follows the fitted α, β (one node) or the inter-node parameters beyond
`ranks_per_node` ranks. The interesting output is where the two cross: the P beyond which a layer's consolidation
costs more than its share of the work.
"""
from __future__ import annotations

import numpy as np

from analysis import costmodel, figures, markdown
from analysis.costmodel import Params
from analysis.figures import plt
from analysis.results import Run

EXTRAPOLATION_P = (8, 16, 32, 64, 128, 256, 512, 1024)
MAX_P = 1024
FIGURE_GRID = np.unique(np.geomspace(2, MAX_P, 60).astype(int))
ALGORITHM_STYLES = {"bruck": "-", "recursive-doubling": "--", "ring": ":"}
PLAN_STYLES = {"fused": ("#8172b3", "-"), "fused-column": ("#55a868", "-.")}  # -. : often on top of per-layer
COLLECTIVE_OF_BOUNDARY = {"allgather": "allgatherv", "allreduce": "allreduce"}


PLANS = ("per-layer", "fused", "fused-column")
_SLICED = ("channel", "element", "feature")


def default_splits(plan: str, kinds) -> list[str]:
    """Each layer's split under a plan without --split overrides: the rules of default_split in src/plan.cpp, by layer
    kind ("conv", "pool", "gelu", "fc", "logsoftmax"; results.Run.kinds)."""
    splits = []
    for kind in kinds:
        previous = splits[-1] if splits else "replicated"  # the first layer reads the whole input
        if kind in ("conv", "pool"):
            split = "channel"
        elif kind == "gelu":
            split = ("element" if plan == "per-layer" else "replicated" if previous == "input-feature"
                     else "channel")
        elif kind == "fc":
            split = "input-feature" if plan == "fused" and previous in _SLICED else "feature"
        else:  # logsoftmax
            split = "feature" if plan == "per-layer" else "replicated"
        splits.append(split)
    return splits


def _reads_only_own_part(split: str, next_kind: str, next_split: str) -> bool:
    """Whether the next step reads, on every rank, only the part of this step's output that the rank computed (the
    fused plans' "none"; needed_input within output_range in src/plan.cpp), for any P. Block partitions of the same
    number of channels coincide: a linear layer's output features are its channels, and a row-parallel linear layer
    splits its input by whole channels."""
    if split not in ("channel", "feature"):
        return False  # element ranges line up with nothing but the same element-wise split (never a default here)
    if next_split == "input-feature":
        return True
    return next_kind in ("pool", "gelu") and next_split == "channel"


def plan_boundaries(kinds) -> dict[str, list[str]]:
    """What each plan does after every layer by default (include/cnnpar/plan.hpp): after a row-parallel step an
    allreduce; after a replicated one nothing; otherwise per-layer gathers, and the fused plans gather unless the next
    step reads only each rank's own part (the last step always leaves the whole output on every rank)."""
    kinds = list(kinds)
    out = {}
    for plan in PLANS:
        splits = default_splits(plan, kinds)
        actions = []
        for i, split in enumerate(splits):
            if split == "input-feature":
                actions.append("allreduce")
            elif split == "replicated":
                actions.append("none")
            elif plan != "per-layer" and i + 1 < len(splits) and _reads_only_own_part(split, kinds[i + 1],
                                                                                     splits[i + 1]):
                actions.append("none")
            else:
                actions.append("allgather")
        out[plan] = actions
    return out


class Extrapolation:
    """Modelled consolidation per plan, layer and P ≤ MAX_P for one run's network, on one node or across nodes."""

    def __init__(self, run: Run, intra: Params, inter: Params, algorithm: str, ranks_per_node: int):
        self.run, self.intra, self.inter = run, intra, inter
        self.algorithm, self.ranks_per_node = algorithm, ranks_per_node
        self.plans = plan_boundaries(run.kinds)
        if not run.meta.get("splits"):  # the run's own plan as it ran (the file says what its boundaries did)
            self.plans[run.plan] = list(run.boundary)
        self._tables = {}

    def costs(self, plan: str, p: int, multi_node: bool, algorithm: str | None = None) -> np.ndarray:
        """[L] seconds of each layer's boundary in `plan` at p ranks (0 where the slices stay put)."""
        return self._table(plan, multi_node, algorithm or self.algorithm)[p - 1]

    def crossover(self, plan: str, multi_node: bool, layer: int | None) -> int | None:
        """Smallest P (2 … MAX_P) whose modelled consolidation reaches compute = serial / P; None = never."""
        table = self._table(plan, multi_node, self.algorithm)
        procs = np.arange(1, MAX_P + 1)
        cost = table.sum(axis=1) if layer is None else table[:, layer]
        serial = self.run.serial_layer.sum() if layer is None else self.run.serial_layer[layer]
        crossing = np.nonzero((procs >= 2) & (cost >= serial / procs))[0]
        return int(procs[crossing[0]]) if len(crossing) else None

    def _table(self, plan: str, multi_node: bool, algorithm: str) -> np.ndarray:
        """[MAX_P, L] seconds, row p − 1 for p ranks; computed once per (plan, scenario, algorithm)."""
        key = (plan, multi_node, algorithm)
        if key not in self._tables:
            table = np.zeros((MAX_P, len(self.run.layers)))
            for layer, kind in enumerate(self.plans[plan]):
                if kind == "none":
                    continue
                collective, n = COLLECTIVE_OF_BOUNDARY[kind], float(self.run.output_bytes[layer])
                for p in range(1, MAX_P + 1):
                    table[p - 1, layer] = (
                        costmodel.multi_node_time(collective, p, n, self.ranks_per_node, self.intra, self.inter,
                                                  algorithm) if multi_node
                        else costmodel.predict(collective, p, n, self.intra, algorithm))
            self._tables[key] = table
        return self._tables[key]


def extrapolation_section(model: Extrapolation, out_dir) -> str:
    run = model.run
    multi = f"{model.ranks_per_node} ranks/node"
    scenarios = (("1 node", False), (multi, True))
    columns = [(plan, name, flag) for plan in model.plans for name, flag in scenarios]
    totals = [(p, -(-p // model.ranks_per_node), markdown.us(run.serial_layer.sum() / p),
               *(markdown.us(model.costs(plan, p, flag).sum()) for plan, _, flag in columns))
              for p in EXTRAPOLATION_P]
    per_layer = [(p, *(f"{markdown.us(run.serial_layer[i] / p)} / {markdown.us(one[i])} / {markdown.us(many[i])}"
                       for i in range(len(run.layers))))
                 for p in EXTRAPOLATION_P
                 for one, many in [(model.costs("per-layer", p, False), model.costs("per-layer", p, True))]]
    crossings = [(name, markdown.us(serial),
                  *(_crossing_text(model.crossover(plan, flag, layer)) for plan, _, flag in columns))
                 for layer, name, serial in [(i, n, run.serial_layer[i]) for i, n in enumerate(run.layers)]
                 + [(None, "whole pass", run.serial_layer.sum())]]
    figure = figures.save(_figure(model), out_dir, "model_extrapolation")
    return "\n".join([
        f"## Extrapolation to P = {EXTRAPOLATION_P[0]} … {EXTRAPOLATION_P[-1]:,}\n",
        f"The network and batch of {run.label}: n per layer fixed (each layer's whole output), compute = serial "
        f"layer time / P (perfectly divided), Allgatherv as {model.algorithm}. Plans, with their default splits "
        "(include/cnnpar/plan.hpp): per-layer gathers after every layer; fused keeps chains of conv → pool → GELU "
        "sliced, gathers a conv's input, and sums a row-parallel linear layer's partial outputs with one Allreduce "
        "(after which GELU is replicated and the next linear layer column-parallel, feeding a row-parallel one); "
        "fused-column makes every linear layer column-parallel instead (its input gathered first, no reduction). Per "
        "plan and layer: "
        f"{_boundaries_text(model)}. Beyond one node (consecutive "
        "ranks per node) each algorithm step pays the inter-node α, and the ranks of a node that cross the network "
        "in one step share its link (costmodel.multi_node_time). The input broadcast is the same in every plan and "
        "not included.\n",
        markdown.image("extrapolation", figure),
        "Whole pass: compute against each plan's consolidation (µs):\n",
        markdown.table(["P", "nodes", "compute Σ serial/P"] + [f"{plan}, {name}" for plan, name, _ in columns],
                       totals),
        f"Per layer, per-layer plan: compute / consolidation on 1 node / consolidation with {multi} (µs):\n",
        markdown.table(["P", *run.layers], per_layer),
        "Where consolidation overtakes compute (smallest P with consolidation ≥ serial / P):\n",
        markdown.table(["layer", "serial µs"] + [f"{plan}, {name}" for plan, name, _ in columns], crossings)])


def _boundaries_text(model: Extrapolation) -> str:
    short = {"none": "–", "allgather": "G", "allreduce": "R"}
    return "; ".join(f"{plan} " + " ".join(short[a] for a in actions) for plan, actions in model.plans.items()) + (
        " (G gather, R allreduce, – nothing)")


def _crossing_text(p_star: int | None) -> str:
    return "never (≤ 1,024)" if p_star is None else f"P = {p_star}"


def _figure(model: Extrapolation):
    run, grid = model.run, FIGURE_GRID
    multi_name = f"{model.ranks_per_node} ranks/node"
    panels = list(enumerate(run.layers)) + [(None, "whole pass")]
    columns = 3
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(13, 3.7 * rows), squeeze=False)

    def series(plan, multi_node, layer, algorithm=None):
        values = np.array([model.costs(plan, int(p), multi_node, algorithm) for p in grid])  # [grid, L]
        return (values.sum(axis=1) if layer is None else values[:, layer]) * 1e6

    for ax, (layer, title) in zip(axes.flat, panels):
        serial = run.serial_layer.sum() if layer is None else run.serial_layer[layer]
        compute = serial / grid * 1e6
        ax.plot(grid, compute, color="black", linewidth=2, label="compute = serial / P")
        for algorithm, style in ALGORITHM_STYLES.items():
            ax.plot(grid, series("per-layer", False, layer, algorithm), style, color="#4c72b0",
                    label=f"per-layer, {algorithm}, 1 node")
        multi = series("per-layer", True, layer)
        ax.plot(grid, multi, "-", color="#c44e52", label=f"per-layer, {model.algorithm}, {multi_name}")
        for plan, (color, style) in PLAN_STYLES.items():
            values = series(plan, True, layer)
            if values.any():
                ax.plot(grid, values, style, color=color, label=f"{plan}, {model.algorithm}, {multi_name}")
        p_star = model.crossover("per-layer", True, layer)
        if p_star is not None:
            ax.axvline(p_star, color="#c44e52", linestyle=":", linewidth=1)
            ax.annotate(f"crossover\nP = {p_star}", (p_star, serial / p_star * 1e6), xytext=(6, 12),
                        textcoords="offset points", fontsize=7, color="#c44e52",
                        bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1))
        ax.set_xscale("log", base=2)
        ax.set_xticks([2, 8, 32, 128, 512], ["2", "8", "32", "128", "512"])
        ax.set_yscale("log")
        ax.set_xlabel("ranks P")
        ax.set_ylabel("time per pass (µs)")
        ax.set_title(title if layer is None else f"{title} (n = {markdown.count(run.output_bytes[layer])} B)")
    legend = {}
    for ax in axes.flat[:len(panels)]:
        legend.update(zip(*reversed(ax.get_legend_handles_labels())))
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    spare = len(panels) < rows * columns
    title = f"dotted red line: where the per-layer plan's\nconsolidation ({multi_name}) overtakes compute"
    if spare:  # in the first empty panel's place
        holder = axes.flat[len(panels)]
        holder.set_visible(True)
        holder.axis("off")
        holder.legend(legend.values(), legend.keys(), fontsize=8, loc="center", title=title)
    else:
        fig.legend(legend.values(), legend.keys(), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                   ncol=3, title=title)
    bandwidth = f"{1 / model.intra.beta / 1e9:.1f} GB/s" if model.intra.beta > 0 else "∞"
    heading = (figures.wrap(f"Modelled consolidation vs compute, {run.network}, B = {run.batch}", 120)
               + f"\n(intra α = {model.intra.alpha * 1e6:.2f} µs, 1/β = {bandwidth}; inter α = "
               f"{model.inter.alpha * 1e6:.1f} µs, 1/β = {1 / model.inter.beta / 1e9:.1f} GB/s)")
    fig.suptitle(heading, fontsize=9)
    # leave the heading its lines (about 0.17 inch each) above the panels
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.17 * (heading.count("\n") + 1) / fig.get_figheight()))
    return fig
