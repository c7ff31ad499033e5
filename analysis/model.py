"""`model RUN.h5 [more.h5 ...] --out DIR`: fit α, β (and γ) to measured consolidations and extrapolate.

Two fits, kept apart because they measure different things: the run fit uses each layer's wait-free transfer
(slowest rank, median) against the bytes n of the whole gathered tensor, so it includes whatever the real pass
suffers (cache misses, a descheduled rank on an oversubscribed node); the calibration fit uses `/calibration`
(`cnnpar_mpi --calibrate`), isolated collectives over a range of sizes, which pins α and β down far better. The
extrapolation uses the calibration fit when there is one, else the run fit, and says which. Writes DIR/model.md,
DIR/model.json (the fitted parameters, for scripts) and figures.
"""
from __future__ import annotations

import json
import pathlib
from dataclasses import asdict, dataclass

import numpy as np

from analysis import costmodel, figures, markdown, stats
from analysis.costmodel import Fit, Params
from analysis.extrapolation import COLLECTIVE_OF_BOUNDARY, Extrapolation, extrapolation_section
from analysis.figures import plt
from analysis.results import Calibration, ResultsError, Run, load



@dataclass(frozen=True)
class ModelOptions:
    algorithm: str = "bruck"
    inter_alpha: float = costmodel.DEFAULT_INTER_ALPHA
    inter_beta: float = costmodel.DEFAULT_INTER_BETA
    gamma: float | None = None  # reduction s/B when no allreduce was measured; None = default
    ranks_per_node: int = costmodel.DEFAULT_RANKS_PER_NODE


@dataclass(frozen=True)
class Point:
    """One measured collective: its model inputs and the measured seconds."""

    source: str
    what: str  # layer name, or the calibration's size index
    collective: str
    p: int
    n: float
    measured: float
    fitted: bool = True  # False: shown against the fit but left out of it (an oversubscribed run)


def write_model(paths, out_dir: pathlib.Path, options: ModelOptions = ModelOptions()) -> pathlib.Path:
    files = [load(path) for path in paths]
    runs = [run for f in files for run in f.runs]
    calibrations = [f.calibration for f in files if f.calibration is not None]
    run_points, notes = _run_points(runs)
    calibration_points, calibration_notes = _calibration_points(calibrations)
    notes += calibration_notes
    run_fit = _fit(run_points, options.algorithm)
    calibration_fit = _fit(calibration_points, options.algorithm)
    if run_fit is None and calibration_fit is None:
        raise ResultsError(f"{', '.join(map(str, paths))}: nothing to fit: no run with P > 1 and Allgatherv "
                           f"consolidation, and no /calibration ({'; '.join(notes) or 'no runs'})")
    used_name, used = ("calibration", calibration_fit) if calibration_fit else ("run", run_fit)
    gamma = used.params.gamma if used.fitted_gamma else (
        options.gamma if options.gamma is not None else costmodel.DEFAULT_GAMMA)
    intra = Params(used.params.alpha, used.params.beta, gamma)
    inter = Params(options.inter_alpha, options.inter_beta, gamma)
    reference = next((run for run in runs if run.nprocs > 1), runs[0] if runs else None)

    out_dir.mkdir(parents=True, exist_ok=True)
    parts = ["# cnnpar collective cost model\n",
             _parameters_section(run_fit, calibration_fit, used_name, used, intra, inter, options)]
    if notes:
        parts.append("Left out of the fits: " + "; ".join(notes) + ".\n")
    all_points = run_points + calibration_points
    fits = {"run": run_fit, "calibration": calibration_fit}
    parts += ["## Predicted vs measured\n",
              markdown.image("model fit", figures.save(_fit_figure(all_points, fits, used, options.algorithm),
                                                       out_dir, "model_fit")),
              _prediction_table(all_points, fits, options.algorithm)]
    if reference is not None:
        extrapolation = Extrapolation(reference, intra, inter, options.algorithm, options.ranks_per_node)
        parts += [_algorithms_section(reference, intra), extrapolation_section(extrapolation, out_dir)]
    report = out_dir / "model.md"
    report.write_text("\n".join(parts))
    (out_dir / "model.json").write_text(json.dumps(
        {"algorithm": options.algorithm, "used": used_name,
         "fits": {name: _fit_json(fit) for name, fit in fits.items()},
         "intra": asdict(intra), "inter": asdict(inter), "ranks_per_node": options.ranks_per_node}, indent=2) + "\n")
    return report


def _run_points(runs: list[Run]) -> tuple[list[Point], list[str]]:
    """Every consolidation that is one MPI collective. Runs with more ranks than CPUs on a node are shown but
    left out of the fit (their transfers include descheduled time) unless every run is like that."""
    points, notes, eligible = [], [], []
    for run in runs:
        if run.nprocs == 1:
            notes.append(f"{run.label} (P = 1, nothing moved)")
        elif run.consolidation != "allgatherv":
            notes.append(f"{run.label} ({run.consolidation} consolidation is not one MPI collective)")
        else:
            eligible.append(run)
    # by position, not label: files of the same name in different directories have the same label
    crowded = {index: stats.oversubscription(run) for index, run in enumerate(eligible)
               if stats.oversubscription(run)}
    fit_crowded = len(crowded) == len(eligible)
    for index, (ranks, cpus) in crowded.items():
        notes.append(f"{eligible[index].label} ({ranks} ranks on {cpus} CPUs: oversubscribed, "
                     + ("fitted anyway as no other run is available)" if fit_crowded else "shown, not fitted)"))
    for index, run in enumerate(eligible):
        transfer = stats.transfer_time(run)
        fitted = fit_crowded or index not in crowded
        sizes = stats.boundary_bytes(run)
        for layer, name in enumerate(run.layers):
            # an exchange boundary (rows, sample) is point to point, not one collective: not fitted
            if run.boundary[layer] in COLLECTIVE_OF_BOUNDARY and run.bytes_received[layer].sum() > 0:
                points.append(Point(run.label, name, COLLECTIVE_OF_BOUNDARY[run.boundary[layer]], run.nprocs,
                                    float(sizes[layer]), float(transfer[layer]), fitted))
    return points, notes


def _calibration_points(calibrations: list[Calibration]) -> tuple[list[Point], list[str]]:
    points, notes = [], []
    for calibration in calibrations:
        if calibration.nprocs == 1:
            notes.append(f"{calibration.label} /calibration (P = 1)")
            continue
        for k, collective in enumerate(calibration.collectives):
            if collective.lower() not in costmodel.COLLECTIVES:
                notes.append(f"{calibration.label} /calibration '{collective}' (no cost model)")
                continue
            for s, n in enumerate(calibration.bytes):
                points.append(Point(f"{calibration.label} /calibration", f"{int(n):,} B", collective.lower(),
                                    calibration.nprocs, float(n), float(np.median(calibration.time_s[k, s]))))
    return points, notes


def _fit(points: list[Point], algorithm: str) -> Fit | None:
    """The fit of the points marked fitted with a positive time, or None when there are none."""
    points = [p for p in points if p.fitted and p.measured > 0]
    if not points:
        return None
    rows = np.array([costmodel.design_row(p.collective, p.p, p.n, algorithm) for p in points])
    return costmodel.fit(rows, np.array([p.measured for p in points]),
                         fit_gamma=any(p.collective == "allreduce" for p in points))


def _fit_json(fit: Fit | None):
    return None if fit is None else {**asdict(fit.params), "points": fit.points,
                                     "rms_relative_error": fit.rms_relative_error, "fitted_gamma": fit.fitted_gamma}


def _params_text(params: Params) -> str:
    bandwidth = f"1/β = {1 / params.beta / 1e9:.2f} GB/s" if params.beta > 0 else "β = 0"
    return f"α = {params.alpha * 1e6:.3f} µs, β = {params.beta * 1e9:.4f} ns/B ({bandwidth})"


def _parameters_section(run_fit, calibration_fit, used_name, used, intra, inter, options) -> str:
    rows = []
    for name, fit in (("run (layer consolidations)", run_fit), ("calibration", calibration_fit)):
        if fit is not None:
            gamma = f"{fit.params.gamma * 1e9:.4f}" if fit.fitted_gamma else "not fitted"
            rows.append((name, f"{fit.params.alpha * 1e6:.3f}", f"{fit.params.beta * 1e9:.4f}",
                         f"{1 / fit.params.beta / 1e9:.2f}" if fit.params.beta > 0 else "∞", gamma, fit.points,
                         f"{100 * fit.rms_relative_error:.1f}%"))
    return "\n".join([
        f"Allgatherv assumed to run as **{options.algorithm}** (`--algorithm`): T = a(p)·α + (p−1)/p·n·β with "
        "a(p) = ⌈lg p⌉ (Bruck), lg p (recursive doubling) or p − 1 (ring); Bcast ⌈lg p⌉·(α + n·β); Allreduce "
        "(Rabenseifner) 2·⌈lg p⌉·α + 2·(p−1)/p·n·β + (p−1)/p·n·γ (Thakur, Rabenseifner & Gropp 2005). n is the "
        "whole gathered tensor / reduced vector / message. Fitted by non-negative least squares of the relative "
        "error; each measurement is the wait-free transfer time, slowest rank, median over iterations (runs) or "
        "the median over repetitions of the slowest rank (calibration).\n",
        markdown.table(["fit", "α µs", "β ns/B", "1/β GB/s", "γ ns/B", "points", "rms rel. error"], rows),
        f"Used below: the **{used_name}** fit, intra-node {_params_text(intra)}, γ = {intra.gamma * 1e9:.4f} ns/B"
        + ("" if used.fitted_gamma else " (not measured: `--gamma`, default 10 GB/s of "
           "reduced data, the order of the memcpy bandwidth measured on the development VM)") + ".",
        f"Inter-node: {_params_text(inter)} (`--inter-alpha`, `--inter-beta`; defaults assume a 100 Gb/s fabric, "
        "InfiniBand EDR / 100 GbE class, whose MPI latency is typically 1–2 µs and achievable bandwidth 10–12 GB/s "
        f"— assumptions, not measurements), {options.ranks_per_node} ranks per node (`--ranks-per-node`).\n"])


def _prediction_table(points: list[Point], fits: dict, algorithm: str) -> str:
    available = [(name, fit) for name, fit in fits.items() if fit is not None]
    rows = []
    for point in points:
        row = [point.source + ("" if point.fitted else " (not fitted)"), point.what, point.collective, point.p,
               markdown.count(point.n), markdown.us(point.measured)]
        for _, fit in available:
            predicted = costmodel.predict(point.collective, point.p, point.n, fit.params, algorithm)
            error = (predicted - point.measured) / point.measured if point.measured > 0 else float("nan")
            row += [markdown.us(predicted), markdown.ratio(100 * error, 0, "%")]
        rows.append(row)
    headers = ["source", "layer / size", "collective", "P", "n (B)", "measured µs"]
    for name, _ in available:
        headers += [f"{name} fit µs", "rel. error"]
    return markdown.table(headers, rows)


def _fit_figure(points: list[Point], fits: dict, used: Fit, algorithm: str):
    """Parity plot, and the points against n with each fit's model curve (a source without its own fit, e.g. runs
    whose every point was left out, is drawn against the fit used for the predictions)."""
    fig, (parity, curves) = plt.subplots(1, 2, figsize=(12, 4.6))
    markers = {"allgatherv": "o", "allgather": "o", "allreduce": "s", "bcast": "^"}
    sources = sorted({p.source for p in points})
    colors = {source: figures.layer_color(i) for i, source in enumerate(sources)}
    for source in sources:
        mine = [p for p in points if p.source == source]
        fit = (fits["calibration"] if source.endswith("/calibration") else fits["run"]) or used
        for collective in sorted({p.collective for p in mine}):
            chosen = [p for p in mine if p.collective == collective]
            measured = np.array([p.measured for p in chosen]) * 1e6
            predicted = np.array([costmodel.predict(p.collective, p.p, p.n, fit.params, algorithm)
                                  for p in chosen]) * 1e6
            label = f"{source}: {collective} (P = {chosen[0].p})" + ("" if chosen[0].fitted else ", not fitted")
            face = colors[source] if chosen[0].fitted else "none"
            for ax, x in ((parity, measured), (curves, [p.n for p in chosen])):
                ax.plot(x, measured if ax is curves else predicted, markers[collective], color=colors[source],
                        markerfacecolor=face, label=label, alpha=0.8)
            sizes = np.geomspace(max(1, min(p.n for p in chosen) / 2), max(p.n for p in chosen) * 2, 100)
            for p_ranks in sorted({p.p for p in chosen}):
                model = [costmodel.predict(collective, p_ranks, n, fit.params, algorithm) * 1e6 for n in sizes]
                curves.plot(sizes, model, "-", color=colors[source], linewidth=0.9)
    positive = [v for p in points for v in (p.measured * 1e6,) if v > 0]
    if positive:
        span = [min(positive) / 2, max(positive) * 2]
        parity.plot(span, span, "--", color="gray", linewidth=0.8, label="predicted = measured")
    for ax in (parity, curves):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=6)
    parity.set_xlabel("measured (µs)")
    parity.set_ylabel("predicted by its fit (µs)")
    parity.set_title("Predicted vs measured")
    curves.set_xlabel("n: bytes of the whole gathered tensor / reduced vector (B)")
    curves.set_ylabel("transfer time (µs, slowest rank, median)")
    curves.set_title(f"Measured points and fitted model (lines), Allgatherv as {algorithm}")
    fig.tight_layout()
    return fig


def _algorithms_section(run: Run, intra: Params) -> str:
    rows = []
    sizes = stats.boundary_bytes(run)
    for layer, name in enumerate(run.layers):
        if run.boundary[layer] == "none":
            rows.append((name, "none", "0", "—", "—", "—"))
            continue
        if run.boundary[layer] not in COLLECTIVE_OF_BOUNDARY:  # exchange: point to point, no collective model
            rows.append((name, f"{run.boundary[layer]} (point to point, not modelled)", markdown.count(sizes[layer]),
                         "—", "—", "—"))
            continue
        collective, n = COLLECTIVE_OF_BOUNDARY[run.boundary[layer]], float(sizes[layer])
        if collective == "allreduce":
            cells = [markdown.us(costmodel.predict("allreduce", run.nprocs, n, intra))] * 3
        else:
            cells = [markdown.us(costmodel.predict(collective, run.nprocs, n, intra, algorithm))
                     for algorithm in ("ring", "recursive-doubling", "bruck")]
        rows.append((name, collective, markdown.count(n), *cells))
    rows.append(("input broadcast (binomial)", "bcast", markdown.count(run.input_bytes_received.max()),
                 *[markdown.us(costmodel.predict("bcast", run.nprocs, run.input_bytes_received.max(), intra))] * 3))
    return "\n".join([f"## Algorithms at the measured P = {run.nprocs} ({run.label})\n",
                      "Predicted time of one call with the parameters used above (µs):\n",
                      markdown.table(["layer", "collective", "n (B)", "ring", "recursive doubling", "Bruck"], rows)])
