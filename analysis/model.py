"""`model FILE.h5 [more.h5 ...] --out DIR`: fit the network's α and β and predict every layer of every run.

What is fitted: four parameters, α and β of a message within a node (intra) and between nodes (inter), and γ (s
per byte reduced) when an Allreduce was measured, by least squares of the relative error. By default the fit uses
`/calibration` (`cnnpar_mpi --calibrate`: the collectives timed alone, at a grid of sizes and at the exact sizes of
the run's boundaries); each Allgatherv point is priced as the library runs it (`schedule`: the algorithm Open MPI's
rules choose for that P and n, its messages on the calibration's nodes, and the barrier skew `--calibrate` measures
with it). Only when no input has a calibration does it fall back to the runs' own boundaries (each layer's wait-free
transfer), and it says so: those include whatever the pass suffers (cold caches, a descheduled rank).

Before anything is used it is checked (`sanity`): an oversubscribed input (more ranks than CPUs on a node) is
flagged and left out of the fit unless it is all there is; a zero fitted α or β, or an inter-node link faster than
the intra-node one (lower α and lower β), is a problem, reported at the top of model.md and on stderr, and then the
predictions and the extrapolation are withheld unless `--accept-suspect-parameters`.

Then every layer of every run is predicted in the run's own terms (`schedule.predict_pass`: each rank's compute,
the serial layer time times its share of the layer's operations, then its boundary played on the run's own counts,
nodes and switches, the links shared instant by instant as in a flow-level simulator: `fluid`; an intra-node
message's line times a factor by its size, measured where two-rank calibrations timed that size: `_size_factors`)
and set against the measurement, with the relative error. Writes DIR/model.md, DIR/model.json and
figures.
"""
from __future__ import annotations

import json
import math
import pathlib
import sys
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from analysis import costmodel, figures, fluid, markdown, schedule, stats
from analysis.costmodel import Params
from analysis.extrapolation import COLLECTIVE_OF_BOUNDARY, Extrapolation, extrapolation_section
from analysis.figures import plt
from analysis.results import ResultsError, Run, load

CLOSED_FORM_ALGORITHMS = costmodel.ALLGATHER_ALGORITHMS  # what the extrapolation's closed forms know
# A fit whose rms relative error exceeds this is reported: its parameters describe the points badly.
RMS_WARNING = 0.25
COLUMNS = (*schedule.COEFFICIENTS, "gamma")
GAMMA = len(COLUMNS) - 1
WHERE = {"intra": "intra-node", "inter": "inter-node", "cross": "between-switch"}
FRESH = "allgatherv_fresh"  # --calibrate's Allgatherv of data each rank has just read and rewritten, as in a pass


@dataclass(frozen=True)
class ModelOptions:
    algorithm: str = "auto"  # Allgatherv algorithm: "auto" = the library's choice (schedule.ALGORITHMS)
    inter_alpha: float | None = None  # given: used whatever was measured; None: measured, else the default
    inter_beta: float | None = None
    gamma: float | None = None  # reduction s/B when no allreduce was measured; None = default
    ranks_per_node: int = costmodel.DEFAULT_RANKS_PER_NODE
    accept_suspect: bool = False  # predict and extrapolate even with the problems sanity() found
    compute: str = "serial-share"  # each rank's compute: serial layer × its share of /work/ops, or "measured"
    sharing: str = "fluid"  # how predictions share links: "fluid" (instant by instant) or "averaged" (schedule)
    size_factors: str = "on"  # "on": intra-node messages × a factor by size measured by two-rank calibrations
    in_pass: str = "on"  # "on": a gather boundary's intra-node messages × its in-pass factor, where calibrated
    jitter: float = 0.0  # seconds (σ) each rank's compute is moved by in each replay; 0: no replays
    replays: int = 8  # replays with jitter


@dataclass(frozen=True)
class Point:
    """One measured collective: what it is, where its ranks were, and the measured seconds."""

    source: str
    what: str  # layer name, or the calibration's size (and the layers it is the boundary of)
    collective: str
    p: int
    n: float
    measured: float
    node: tuple[int, ...]  # [p] node of each rank
    counts: tuple[float, ...] | None  # [p] bytes of each rank's block (Allgatherv), None otherwise
    calibration: bool  # a --calibrate point (timed after a barrier) rather than a run's boundary
    fitted: bool = True  # False: shown against the fit but left out of it (oversubscribed, or no model)
    why_not: str = ""
    switch: tuple[int, ...] | None = None  # [p] switch of each rank's node (None: one switch)
    climb: tuple[int, ...] | None = None  # [p] spine a message to each rank climbs to (None: not a fat tree)


@dataclass
class NetworkFit:
    """The fitted parameters; a class whose columns no point measured is None."""

    intra: Params | None
    inter: Params | None
    cross: Params | None  # between nodes under different switches
    gamma: float | None
    points: int
    rms_relative_error: float
    iterations: int


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)  # block predictions unless --accept-suspect-parameters
    warnings: list[str] = field(default_factory=list)  # reported, nothing withheld


def write_model(paths, out_dir: pathlib.Path, options: ModelOptions = ModelOptions()) -> pathlib.Path:
    files = [load(path) for path in paths]
    runs = [run for f in files for run in f.runs]
    findings = Findings()
    run_points, notes = _run_points(runs, findings)
    calibration_points, calibration_notes = _calibration_points(files, findings)
    notes += calibration_notes
    calibration_fit = _fit(calibration_points, options.algorithm, options.sharing)
    # The runs' own boundaries are fitted only when nothing else is: with a calibration they are what is predicted
    # (and a fluid play of a 1,024-rank boundary, seven times per point for its coefficients, costs minutes).
    run_fit = _fit(run_points, options.algorithm, options.sharing) if calibration_fit is None else None
    if calibration_fit is None and run_fit is None:
        raise ResultsError(f"{', '.join(map(str, paths))}: nothing to fit: no /calibration (cnnpar_mpi --calibrate) "
                           f"and no run with P > 1 whose boundaries are MPI collectives "
                           f"({'; '.join(notes) or 'no runs'})")
    if calibration_fit is not None:
        used_name, used = "calibration", calibration_fit
    else:
        used_name, used = "run", run_fit
        findings.warnings.append(
            "no input has a /calibration group, so the parameters are fitted to the runs' own boundaries (each "
            "layer's wait-free transfer), which include whatever the pass suffers — cold data, a descheduled rank, "
            "a few points only. Run with --calibrate for a fit on the collectives timed alone at these sizes")
    crosses_switches = any(len(set(run.switches.tolist())) > 1 for run in runs)
    network, sources = _network(used, used_name, options, findings, crosses_switches)
    gamma = used.gamma if used.gamma is not None else (
        options.gamma if options.gamma is not None else costmodel.DEFAULT_GAMMA)
    _sanity(used, used_name, network, sources, findings)
    # The factors are measured from what the fitted line leaves of the calibrations (so after the fit, on its
    # residuals), and only the predictions use them.
    factors, factor_rows, factors_left_out = _size_factors(calibration_points if used_name == "calibration" else [],
                                                           used, network, options)
    if factors is not None:
        network = replace(network, intra_factor=factors)
    in_pass = _in_pass_rows(files, options)
    usable = options.accept_suspect or not findings.problems
    for text in findings.problems:
        print(f"analysis model: PROBLEM: {text}", file=sys.stderr)
    for text in findings.warnings:
        print(f"analysis model: warning: {text}", file=sys.stderr)

    out_dir.mkdir(parents=True, exist_ok=True)
    parts = ["# cnnpar collective cost model\n", _findings_section(findings, options)]
    parts.append(_parameters_section(run_fit, calibration_fit, used_name, network, sources, gamma, options,
                                     _size_factors_text(factor_rows, factors_left_out, options)
                                     + _in_pass_text(in_pass, options)))
    per_layer = []
    if usable:
        per_layer = [row for run in runs for row in _predict_run(run, network, gamma, options, in_pass)]
        parts.append(_per_layer_section(per_layer))
    else:
        parts.append("## Per-layer predictions\n\nWithheld: the parameters failed the checks above. Fix the inputs "
                     "(or pass `--accept-suspect-parameters` to see what they predict).\n")
    if notes:
        parts.append("Left out of the fits: " + "; ".join(notes) + ".\n")
    all_points = calibration_points + run_points
    fits = {"calibration": calibration_fit, "run": run_fit}
    parts += ["## The fitted points\n",
              markdown.image("model fit", figures.save(
                  _fit_figure(all_points, fits, options.algorithm, options.sharing), out_dir, "model_fit")),
              _prediction_table(all_points, fits, options.algorithm, options.sharing)]
    reference = next((run for run in runs if run.nprocs > 1), runs[0] if runs else None)
    extrapolated = reference is not None and usable
    if extrapolated:
        closed = options.algorithm if options.algorithm in CLOSED_FORM_ALGORITHMS else "bruck"
        intra = Params(network.intra.alpha, network.intra.beta, gamma)
        inter = Params(network.inter.alpha, network.inter.beta, gamma)
        parts += [_algorithms_section(reference, intra),
                  "The extrapolation below uses the closed forms (Allgatherv as "
                  f"{closed}" + ("" if closed == options.algorithm else
                                 ": a closed form cannot follow the library's choice per P and n") +
                  "), not the message schedules of the per-layer predictions above.\n",
                  extrapolation_section(Extrapolation(reference, intra, inter, closed, options.ranks_per_node),
                                        out_dir)]
    report = out_dir / "model.md"
    report.write_text("\n".join(parts))
    _print_summary(used, used_name, network, sources, per_layer, in_pass)
    (out_dir / "model.json").write_text(json.dumps(_finite({
        "algorithm": options.algorithm, "used": used_name,
        "fits": {name: _fit_json(fit) for name, fit in fits.items()},
        "intra": {"alpha": network.intra.alpha, "beta": network.intra.beta, "gamma": gamma,
                  "source": sources["intra"]},
        "inter": {"alpha": network.inter.alpha, "beta": network.inter.beta, "gamma": gamma,
                  "source": sources["inter"]},
        "cross": {"alpha": network.cross.alpha, "beta": network.cross.beta, "gamma": gamma,
                  "source": sources["cross"]},
        "sharing": options.sharing, "ranks_per_node": options.ranks_per_node,
        "intra_size_factors": [{"bytes": r.message_bytes, "factor": r.factor, "points": r.points,
                                "measured_s": r.measured, "modelled_s": r.modelled} for r in factor_rows],
        "in_pass_factors": [{"calibration": r.source, "p": r.p, "nodes": r.nodes, "layers": r.layers,
                             "bytes": r.bytes, "evicted_bytes_max": r.evicted_bytes, "fresh_s": r.fresh,
                             "in_pass_s": r.in_pass, "factor": r.factor} for r in in_pass],
        "problems": findings.problems, "warnings": findings.warnings,
        "predictions_withheld": not usable, "extrapolated": extrapolated, "per_layer": per_layer}), indent=2) + "\n")
    return report


def _finite(value):
    """A copy with every non-finite float as None: JSON has no NaN (a boundary that moves nothing has no error)."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------------------------------- the points

def _run_points(runs: list[Run], findings: Findings) -> tuple[list[Point], list[str]]:
    """Every boundary that is one MPI Allgatherv or Allreduce of a run (the fallback fit's points). Runs with more
    ranks than CPUs on a node are flagged and left out of the fit unless every run is like that."""
    notes, eligible = [], []
    for run in runs:
        if run.nprocs == 1:
            notes.append(f"{run.label} (P = 1, nothing moved)")
        elif run.consolidation != "allgatherv":
            notes.append(f"{run.label} ({run.consolidation} consolidation is not one MPI collective)")
        else:
            eligible.append(run)
    crowded = {index: stats.oversubscription(run) for index, run in enumerate(eligible)
               if stats.oversubscription(run)}
    fit_crowded = len(crowded) == len(eligible)
    points = []
    for index, run in enumerate(eligible):
        transfer = stats.transfer_time(run)
        sizes = stats.boundary_bytes(run)
        fitted = fit_crowded or index not in crowded
        why = "" if fitted else "oversubscribed"
        for layer, name in enumerate(run.layers):
            # an exchange boundary (rows, sample) is point to point, not one collective: not fitted
            if run.boundary[layer] in COLLECTIVE_OF_BOUNDARY and run.bytes_received[layer].sum() > 0:
                collective = COLLECTIVE_OF_BOUNDARY[run.boundary[layer]]
                counts = (tuple(float(c) for c in run.count[layer] * run.item_bytes[layer])
                          if collective == "allgatherv" else None)
                points.append(Point(run.label, name, collective, run.nprocs, float(sizes[layer]),
                                    float(transfer[layer]), tuple(int(v) for v in run.nodes), counts, False,
                                    fitted, why, tuple(int(v) for v in run.switches), _climb(run)))
    for index, (ranks, cpus) in crowded.items():
        findings.warnings.append(
            f"{eligible[index].label} is oversubscribed ({ranks} ranks on {cpus} CPUs of one node): its times "
            "include descheduled ranks, not only communication — "
            + ("fitted anyway, as no other run is available" if fit_crowded else "shown, not fitted"))
    return points, notes


def _calibration_points(files, findings: Findings) -> tuple[list[Point], list[str]]:
    """The medians of every /calibration (collective, size). Allgatherv is priced by its schedule; Bcast and
    Allreduce by their closed forms where those hold (every rank on one node, or two ranks), else left out."""
    points, notes, groups = [], [], []
    for f in files:
        calibration = f.calibration
        if calibration is None:
            continue
        if calibration.nprocs == 1:
            notes.append(f"{calibration.label} /calibration (P = 1)")
            continue
        run = f.runs[0] if f.runs else None
        same = run is not None and run.nprocs == calibration.nprocs
        node = (tuple(int(v) for v in run.nodes) if same
                else tuple(int(v) for v in schedule.consecutive_nodes(
                    calibration.nprocs, -(-calibration.nprocs // max(1, calibration.nodes)))))
        switch = tuple(int(v) for v in run.switches) if same else None
        climb = _climb(run) if same else None
        crowded = stats.oversubscription(run) if run is not None else None
        groups.append((calibration, node, switch, climb, crowded))
    fit_crowded = bool(groups) and all(crowded for *_, crowded in groups)
    # A pass gathers data its ranks have just written (and read), which on a shared-memory node costs up to twice
    # the same gather of warm buffers: when the calibrations timed that (allgatherv_fresh), it is what is fitted, and
    # the warm Allgatherv is shown beside it.
    fresh = any(FRESH in (c.lower() for c in calibration.collectives) for calibration, *_ in groups)
    for calibration, node, switch, climb, crowded in groups:
        if crowded:
            findings.warnings.append(
                f"{calibration.label} /calibration ran oversubscribed ({crowded[0]} ranks on {crowded[1]} CPUs of "
                "one node): a rank can lose its core in the middle of a call — "
                + ("fitted anyway, as no other calibration is available" if fit_crowded else "shown, not fitted"))
        for k, collective in enumerate(calibration.collectives):
            collective = collective.lower()
            if collective not in costmodel.COLLECTIVES and collective != FRESH:
                notes.append(f"{calibration.label} /calibration '{collective}' (no cost model)")
                continue
            # Allgatherv has its schedule; an Allreduce of two ranks is one exchange whatever the algorithm (its
            # closed form holds, and it gives γ). Beyond two ranks Open MPI's Bcast and Allreduce change algorithm
            # with P and n (knomial, pipelined, split binary tree, ring, ...), which the closed forms do not follow,
            # and no gather boundary uses them: shown, not fitted.
            gather = collective in ("allgatherv", "allgather", FRESH)
            model_holds = (gather and (collective == FRESH or not fresh)) or (
                collective == "allreduce" and calibration.nprocs == 2)
            for s, n in enumerate(calibration.bytes):
                label = f"{int(n):,} B"
                if calibration.boundaries and calibration.boundaries[s]:
                    label += f" ({calibration.boundaries[s]})"
                counts = (tuple(float(c) for c in schedule.even_counts(n, calibration.nprocs)) if gather else None)
                fitted = model_holds and (fit_crowded or not crowded)
                why = ("" if fitted else "oversubscribed" if model_holds
                       else f"warm buffers: {FRESH} (freshly written, as in a pass) is fitted" if gather
                       else f"{collective} at P = {calibration.nprocs}: the library's algorithm is not modelled")
                points.append(Point(f"{calibration.label} /calibration", label, collective, calibration.nprocs,
                                    float(n), float(np.median(calibration.time_s[k, s])), node, counts, True,
                                    fitted, why, switch, climb))
        notes.append(f"{calibration.label} /calibration Bcast" + (" and Allreduce" if calibration.nprocs > 2 else "")
                     + " (shown: no schedule of the algorithms Open MPI picks for them; "
                     + (f"{FRESH} is fitted)" if fresh else "Allgatherv is fitted)"))
    return points, notes


# ---------------------------------------------------------------------------------------------------- the fit

def _point_row(point: Point, network: schedule.Network, algorithm: str, sharing: str = "fluid") -> np.ndarray:
    """[7] coefficients of the point's modelled time on (α_intra, β_intra, α_inter, β_inter, α_cross, β_cross, γ)
    at `network`, its messages played with `sharing` (as the predictions are)."""
    row = np.zeros(len(COLUMNS))
    if point.counts is not None:
        chosen = schedule.resolve(algorithm, point.p, point.n)
        ops = schedule.programs(chosen, np.array(point.counts))
        node = np.array(point.node)
        if sharing == "fluid":
            _, row[:GAMMA] = schedule.fluid_coefficients(lambda net: _fluid_seconds(point, ops, net), network,
                                                         schedule.columns_used(node, point.switch))
            return row
        if point.calibration:
            _, coefficients = schedule.calibration_time(ops, np.array(point.node), network, point.switch)
        else:
            coefficients = schedule.evaluate(ops, np.array(point.node), network, switch=point.switch).coefficients
        row[:GAMMA] = coefficients
        return row
    closed = costmodel.design_row(point.collective, point.p, point.n)
    offset = 0 if len(set(point.node)) == 1 else 2 if len(set(point.switch or (0,))) == 1 else 4
    row[offset:offset + 2] = closed[:2]
    row[GAMMA] = closed[2]
    return row


def _climb(run: Run) -> tuple[int, ...] | None:
    climbs = run.climbs
    return None if climbs is None else tuple(int(v) for v in climbs)


def _fluid_seconds(point: Point, ops, network: schedule.Network) -> float:
    """An Allgatherv point's time with its messages played by `fluid.play` (a calibration point after its
    barrier)."""
    if point.calibration:
        return schedule.fluid_calibration_time(ops, np.array(point.node), network, point.switch, point.climb)
    return float(fluid.play(ops, np.array(point.node), network, point.switch, climb=point.climb).max())


def _network_of(theta: np.ndarray) -> schedule.Network:
    return schedule.Network.of(theta[:GAMMA])


# Where the fit starts: a shared-memory and a 100 Gb/s fabric's order of magnitude. Only which message of each step
# is the slowest depends on it; the fit iterates until that no longer changes.
START = np.array([0.5e-6, 1 / 10e9, costmodel.DEFAULT_INTER_ALPHA, costmodel.DEFAULT_INTER_BETA,
                  2 * costmodel.DEFAULT_INTER_ALPHA, costmodel.DEFAULT_INTER_BETA, 0.0])


def _fit(points: list[Point], algorithm: str, sharing: str = "fluid") -> NetworkFit | None:
    """Relative non-negative least squares on the points marked fitted with a positive time. Each point's row
    depends on which messages are the slowest, which depends on the parameters, so: rows at the current
    parameters, fit, again, until the parameters stop changing (a few rounds)."""
    points = [p for p in points if p.fitted and p.measured > 0]
    if not points:
        return None
    times = np.array([p.measured for p in points])
    theta = START.copy()
    for iteration in range(1, 11):
        rows = np.array([_point_row(p, _network_of(theta), algorithm, sharing) for p in points])
        measured_columns = [c for c in range(len(COLUMNS)) if np.any(rows[:, c] != 0)]
        if not any(p.collective == "allreduce" for p in points):
            measured_columns = [c for c in measured_columns if c != GAMMA]
        solution, rms = costmodel.nnls_relative(rows[:, measured_columns], times)
        new = theta.copy()
        new[measured_columns] = solution
        converged = np.allclose(new, theta, rtol=1e-6, atol=1e-15)
        theta = new
        if converged:
            break
    columns = set(measured_columns)
    intra = Params(theta[0], theta[1]) if {0, 1} & columns else None
    inter = Params(theta[2], theta[3]) if {2, 3} & columns else None
    cross = Params(theta[4], theta[5]) if {4, 5} & columns else None
    return NetworkFit(intra, inter, cross, theta[GAMMA] if GAMMA in columns else None, len(points), rms, iteration)


def _network(fit: NetworkFit, name: str, options: ModelOptions, findings: Findings, crosses_switches: bool):
    """The parameters the predictions use, and where each class came from (`crosses_switches`: some run to predict
    has nodes under different switches)."""
    sources = {}
    if options.inter_alpha is not None or options.inter_beta is not None:
        measured = fit.inter or Params(costmodel.DEFAULT_INTER_ALPHA, costmodel.DEFAULT_INTER_BETA)
        inter = Params(options.inter_alpha if options.inter_alpha is not None else measured.alpha,
                       options.inter_beta if options.inter_beta is not None else measured.beta)
        sources["inter"] = "given (--inter-alpha/--inter-beta)" + (
            f", replacing the {name} fit's" if fit.inter is not None else "")
    elif fit.inter is not None:
        inter, sources["inter"] = fit.inter, f"{name} fit"
    else:
        inter = Params(costmodel.DEFAULT_INTER_ALPHA, costmodel.DEFAULT_INTER_BETA)
        sources["inter"] = "assumed (default; nothing measured across nodes)"
        findings.warnings.append(
            f"no input measured messages between nodes: inter-node α = {inter.alpha * 1e6:.1f} µs and 1/β = "
            f"{1 / inter.beta / 1e9:.0f} GB/s are assumptions (a 100 Gb/s fabric), not measurements; give a "
            "--calibrate run over two nodes, or --inter-alpha/--inter-beta")
    if fit.intra is not None:
        intra, sources["intra"] = fit.intra, f"{name} fit"
    else:
        intra, sources["intra"] = inter, "not measured: priced as inter-node"
        findings.warnings.append(
            "no input measured messages within a node (every calibration spans nodes with one rank each or all its "
            "steps cross nodes): intra-node messages are priced with the inter-node parameters; add a one-node "
            "--calibrate run")
    if fit.cross is not None:
        cross, sources["cross"] = fit.cross, f"{name} fit"
    else:
        cross, sources["cross"] = inter, "not measured: priced as under one switch (inter-node)"
        if crosses_switches:
            findings.warnings.append(
                "no input measured messages between nodes under different switches, but a run to predict spans "
                "switches: those messages are priced as under one switch (fewer links, so too fast); add a "
                "--calibrate run whose nodes hang from different switches (docs/simulation.md)")
    return schedule.Network(intra, inter, cross), sources


def _sanity(fit: NetworkFit, name: str, network: schedule.Network, sources: dict, findings: Findings) -> None:
    """Problems (zero or negative parameters, inter-node faster than intra-node, between switches faster than under
    one) and warnings (a poor fit, one parameter of a farther link better than the nearer one's)."""
    for where, params in (("intra", network.intra), ("inter", network.inter), ("cross", network.cross)):
        if sources[where].startswith("not measured"):
            continue
        for symbol, value, meaning in (("α", params.alpha, "latency"), ("β", params.beta, "time per byte")):
            if not value > 0:
                findings.problems.append(
                    f"{WHERE[where]} {symbol} ({meaning}) is {value:.3g} ({sources[where]}): the points cannot pin it "
                    f"down (all {'bandwidth' if symbol == 'α' else 'latency'}-bound?) and every prediction that "
                    "needs it would be wrong by that term")
    if fit.gamma is not None and not fit.gamma > 0:
        findings.warnings.append(f"γ (reduction time per byte) fitted as {fit.gamma:.3g}: reductions cost nothing "
                                 "in the predictions")
    intra, inter, cross = network.intra, network.inter, network.cross
    if not sources["intra"].startswith("not measured"):
        if inter.alpha < intra.alpha and inter.beta < intra.beta:
            findings.problems.append(
                f"the inter-node link is faster than the intra-node one: α {inter.alpha * 1e6:.3f} µs < "
                f"{intra.alpha * 1e6:.3f} µs and 1/β {1 / inter.beta / 1e9:.2f} GB/s > "
                f"{1 / intra.beta / 1e9:.2f} GB/s (inter: {sources['inter']}; intra: {sources['intra']}). Leaving "
                "the node would make passes faster. Usually the intra-node fit is wrong (an oversubscribed or noisy "
                "input) or the inter-node values are not this machine's")
        elif inter.alpha < intra.alpha or inter.beta < intra.beta:
            which = "α" if inter.alpha < intra.alpha else "β"
            findings.warnings.append(
                f"the inter-node {which} is better than the intra-node one (inter α {inter.alpha * 1e6:.3f} µs, "
                f"1/β {1 / inter.beta / 1e9:.2f} GB/s; intra α {intra.alpha * 1e6:.3f} µs, 1/β "
                f"{1 / intra.beta / 1e9:.2f} GB/s): possible (a fast fabric beside a copy-based shared-memory "
                "transport), but check it")
    if not sources["cross"].startswith("not measured"):
        if cross.alpha < inter.alpha and cross.beta < inter.beta:
            findings.problems.append(
                f"a message between switches is faster than one under a switch: α {cross.alpha * 1e6:.3f} µs < "
                f"{inter.alpha * 1e6:.3f} µs and 1/β {1 / cross.beta / 1e9:.2f} GB/s > "
                f"{1 / inter.beta / 1e9:.2f} GB/s (cross: {sources['cross']}; inter: {sources['inter']}): it "
                "crosses more links. Check which nodes the calibrations ran on")
        elif cross.alpha < inter.alpha:
            findings.warnings.append(
                f"the latency between switches ({cross.alpha * 1e6:.3f} µs) is below the latency under one switch "
                f"({inter.alpha * 1e6:.3f} µs), though its messages cross more links: check the calibrations")
    if fit.rms_relative_error > RMS_WARNING:
        findings.warnings.append(
            f"the {name} fit describes its {fit.points} points with an rms relative error of "
            f"{100 * fit.rms_relative_error:.0f}% (> {100 * RMS_WARNING:.0f}%): predictions inherit that")


# ---------------------------------------------------------------------------------------------------- size factors

@dataclass(frozen=True)
class SizeFactorRow:
    """One measured size of the intra-node size factors: a row of model.md's table and of model.json."""

    message_bytes: float  # m: the larger block of the two-rank gather, the bytes of its slower message
    points: int  # calibration points at this m
    measured: float  # seconds, their median
    modelled: float  # seconds the fitted line models for them, barrier included (their median)
    factor: float  # the median of their factors


def _size_factors(points: list[Point], fit: NetworkFit, network: schedule.Network, options: ModelOptions):
    """The factor by message size of an intra-node message (`schedule.SizeFactors`), read off the fitted calibration
    points of two ranks on one node. Each is a barrier and then one exchange of the two blocks (every algorithm the
    library picks at P = 2 moves each block once, in one message), so its slower message is m = the larger block.
    The barrier's part stays as the fit models it and the message takes the rest: f = (measured − (modelled −
    line)) / line, with line = α_intra + m·β_intra and modelled the point's time at the fitted line, priced as the
    fit prices it. Only P = 2: in a ring or a Bruck of more ranks messages of several sizes share one time, so no
    single m owns the residual. Several points at one m (a grid size that is also a boundary's, several files):
    their median. Returns (the table, None when off or nothing was measured; its rows; the sizes left out, why)."""
    if options.size_factors == "off" or fit.intra is None:
        return None, [], []
    by_size, left_out = {}, []
    for point in points:
        if not (point.calibration and point.fitted and point.measured > 0 and point.counts is not None
                and point.collective in ("allgatherv", FRESH) and point.p == 2 and len(set(point.node)) == 1):
            continue
        ops = schedule.programs(schedule.resolve(options.algorithm, 2, point.n), np.array(point.counts))
        if any(len(program) != 1 or len(program[0][0]) != 1 or len(program[0][1]) != 1 for program in ops):
            left_out.append(f"{point.source} {point.what} (--algorithm {options.algorithm} is not one exchange)")
            continue
        m = max(point.counts)
        line = network.intra.alpha + m * network.intra.beta
        if not (m > 0 and line > 0):
            left_out.append(f"{point.source} {point.what} (no bytes, or a line of 0 s: nothing to scale)")
            continue
        modelled = _predict_point(point, fit, options.algorithm, options.sharing)
        by_size.setdefault(m, []).append((point.measured, modelled, (point.measured - (modelled - line)) / line))
    rows = []
    for m in sorted(by_size):
        measured, modelled, factors = (np.array(column) for column in zip(*by_size[m]))
        factor = float(np.median(factors))
        if factor <= 0:  # the point measured less than the barrier alone is modelled to take
            left_out.append(f"{int(m):,} B per message (factor {factor:.3g}: the measurement is below the modelled "
                            "barrier part)")
            continue
        rows.append(SizeFactorRow(m, len(factors), float(np.median(measured)), float(np.median(modelled)), factor))
    if not rows:
        return None, [], left_out
    table = schedule.SizeFactors(tuple(r.message_bytes for r in rows), tuple(r.factor for r in rows))
    return table, rows, left_out


def _size_factors_text(rows: list[SizeFactorRow], left_out: list[str], options: ModelOptions) -> str:
    """model.md's paragraph (and table) on the intra-node size factors."""
    if options.size_factors == "off":
        return "- Intra-node messages are priced by the fitted line alone (`--size-factors off`).\n"
    if not rows:
        return ("- Intra-node size factors: none measured (no fitted calibration of two ranks on one node), so "
                "intra-node messages are priced by the fitted line alone."
                + (f" Left out: {'; '.join(left_out)}." if left_out else "") + "\n")
    cells = [[markdown.count(r.message_bytes), str(r.points), f"{r.measured * 1e6:,.2f}", f"{r.modelled * 1e6:,.2f}",
              f"{r.factor:.3f}"] for r in rows]
    return "\n".join([
        "\n### Intra-node size factors\n",
        "One α-β line does not follow a shared-memory transport (small messages pay a protocol step, the bandwidth "
        "bends with the caches), so in the per-layer predictions an intra-node message of m bytes takes (α_intra + "
        "m·β_intra)·f(m) (`--size-factors on`, as SMPI's piecewise `smpi/bw-factor`). f is measured by the fitted "
        "calibrations of two ranks on one node, one exchange of m bytes each way after a barrier: the barrier's part "
        "stays as modelled and the message takes the rest, f = (measured − (modelled − line)) / line, where *line* = "
        "α + m·β and *modelled* is the point's time at the fitted line, barrier included (the table: medians over "
        "the points of one m). Between these sizes f "
        "is linear in log m; below the smallest (an empty message too) and beyond the largest it is that end's. The "
        "fit, the fitted-points table and the extrapolation's closed forms use the line alone.\n",
        markdown.table(["message B", "points", "measured µs", "modelled µs", "factor"], cells)]
        + ([f"Left out: {'; '.join(left_out)}.\n"] if left_out else []))


# ---------------------------------------------------------------------------------------------------- predictions

def _predict_run(run: Run, network: schedule.Network, gamma: float, options: ModelOptions,
                 in_pass: list[InPassRow] = ()) -> list[dict]:
    """Each layer of one run, predicted in the run's terms and set against its measurement (rows for model.json
    and the per-layer table); [] when the run moves nothing or its boundaries have no model. An Allgatherv
    boundary with an in-pass calibration of the same P, nodes, size and steps has its intra-node messages
    multiplied by that factor (`_in_pass_for`)."""
    if run.nprocs == 1:
        return []
    if run.consolidation not in ("allgatherv", "hierarchical") or any(run.exchanges):
        return [{"run": run.label, "p": run.nprocs, "nodes": run.node_count, "layer": "—",
                 "skipped": f"{run.consolidation} consolidation"
                 + (" with exchange boundaries" if any(run.exchanges) else "") + ": no schedule model"}]
    crowded = stats.oversubscription(run)
    compute, compute_source = _compute(run, options.compute)
    boundaries, factors = [], []
    for layer in range(len(run.layers)):
        kind = run.boundary[layer]
        row = _in_pass_for(run, layer, in_pass) if run.consolidation == "allgatherv" and kind == "allgather" else None
        factors.append(row.factor if row is not None else None)
        if kind == "none":
            boundaries.append(None)
        elif kind == "allreduce":
            one_node = run.node_count == 1
            if not one_node:
                return [{"run": run.label, "p": run.nprocs, "nodes": run.node_count, "layer": "—",
                         "skipped": "Allreduce across nodes: no schedule model"}]
            seconds = costmodel.predict("allreduce", run.nprocs, float(run.output_bytes[layer]),
                                        Params(network.intra.alpha, network.intra.beta, gamma))
            boundaries.append(("fixed", seconds))
        else:
            boundaries.append((run.consolidation, run.count[layer] * run.item_bytes[layer])
                              + ((factors[layer],) if factors[layer] is not None else ()))
    switches, climbs = run.switches, run.climbs

    def play(compute):
        return schedule.predict_pass(
            compute, boundaries, run.nodes, network, options.algorithm,
            broadcast=(run.consolidation, float(run.input_bytes_received.max())), switch=switches,
            sharing=options.sharing, climb=climbs)

    predicted, forward = play(compute)
    replayed = _replays(run, compute, play, options)
    transfer, wait = stats.transfer_time(run), stats.slowest_rank_median(run.wait)
    layer_time = stats.layer_parallel_time(run)
    exits = stats.boundary_exits(run)
    rows = []
    for layer, name in enumerate(run.layers):
        q = predicted[layer]
        skew = {}
        if exits is not None:
            # The skew the boundary leaves (what the next layer waits for), and the rank the model places worst.
            difference = q.exits - exits[layer]
            worst = int(np.argmax(np.abs(difference)))
            skew = {"measured_exit_spread_s": float(np.ptp(exits[layer])),
                    "predicted_exit_spread_s": float(np.ptp(q.exits)),
                    "largest_rank_exit_difference_s": float(difference[worst]), "that_rank": worst}
        rows.append({"run": run.label, "p": run.nprocs, "nodes": run.node_count, "consolidation": run.consolidation,
                     "layer": name, "algorithm": q.algorithm, "oversubscribed": bool(crowded),
                     "compute_source": compute_source, "in_pass_factor": factors[layer],
                     "predicted_compute_s": q.compute, "predicted_wait_s": q.wait,
                     "predicted_transfer_s": q.transfer, "measured_transfer_s": float(transfer[layer]),
                     "transfer_error": _error(q.transfer, transfer[layer]),
                     "measured_wait_s": float(wait[layer]),
                     "predicted_layer_s": q.layer, "measured_layer_s": float(layer_time[layer]),
                     "layer_error": _error(q.layer, layer_time[layer]), **skew,
                     **_replay_fields(replayed, layer, layer_time[layer], options)})
    measured_forward = stats.forward_parallel_time(run)
    rows.append({"run": run.label, "p": run.nprocs, "nodes": run.node_count, "consolidation": run.consolidation,
                 "layer": "whole pass", "algorithm": "", "oversubscribed": bool(crowded),
                 "compute_source": compute_source, "predicted_layer_s": forward,
                 "measured_layer_s": measured_forward, "layer_error": _error(forward, measured_forward),
                 **_replay_fields(replayed, None, measured_forward, options)})
    return rows


def _replays(run: Run, compute: np.ndarray, play, options: ModelOptions) -> np.ndarray | None:
    """[replays, L + 1] each layer's predicted time (and the whole pass's, last) when the pass is played again with
    every rank's compute of every layer moved by a normal deviate of `options.jitter` seconds; None without jitter.

    Why: after a long exchange the next layer waits for the rank that left first, and which rank that is can hang
    on nanoseconds. A single prediction of such a layer is one draw; the replays show how wide the draw is (at
    P = 1,024 in docs/simulation.md, 3.2% for the linear layer at 0.1 µs). Seeded by the run's label, so the same
    inputs give the same tables."""
    if options.jitter <= 0 or options.replays < 1:
        return None
    rng = np.random.default_rng(zlib.crc32(run.label.encode()))
    out = []
    for _ in range(options.replays):
        moved = np.maximum(compute + rng.normal(0.0, options.jitter, compute.shape), 0.0)
        layers, forward = play(moved)
        out.append([q.layer for q in layers] + [forward])
    return np.array(out)


def _replay_fields(replayed: np.ndarray | None, layer: int | None, measured: float, options: ModelOptions) -> dict:
    """model.json fields of one layer's replays (layer None: the whole pass): their least, median and largest
    time, and whether the measurement lies between the least and the largest."""
    if replayed is None:
        return {}
    times = replayed[:, -1 if layer is None else layer]
    low, high = float(times.min()), float(times.max())
    return {"jitter_s": options.jitter, "replays": int(len(times)), "replayed_layer_min_s": low,
            "replayed_layer_median_s": float(np.median(times)), "replayed_layer_max_s": high,
            "measured_within_replays": bool(low <= measured <= high)}


def _compute(run: Run, how: str) -> tuple[np.ndarray, str]:
    """[L, P] seconds of each rank's kernel: the serial layer time times the rank's share of the layer's operations
    (/work/ops; a replicated layer is the whole layer on every rank), else — or with how = "measured" — each rank's
    measured median (then only the boundaries are predicted). A layer whose serial time is of another kernel than
    the run's (`_other_kernels`) takes its measured median too, and the source says so."""
    ops = stats.layer_ops(run)
    if how != "measured" and ops is not None and np.all(ops > 0):
        share = run.ops / ops[:, None]
        compute = run.serial_layer[:, None] * share
        source = "serial layer time × the rank's share of /work/ops"
        other = _other_kernels(run)
        if other.any():
            compute[other] = stats.median_per_rank(run, "compute")[other]
            names = ", ".join(name for name, o in zip(run.layers, other) if o)
            source += (f" ({names}: each rank's measured compute median, as the serial reference fused "
                       f"{'it' if other.sum() == 1 else 'them'} with a neighbour and the run did not, so the serial "
                       "times are of other kernels; run with --fusion off to predict them)")
        return compute, source
    why = "--compute measured" if how == "measured" else "the file has no /work/ops"
    return stats.median_per_rank(run, "compute"), f"each rank's measured compute median ({why})"


def _other_kernels(run: Run) -> np.ndarray:
    """[L] True where the serial reference computed the layer by another kernel than the run did: fused with a
    neighbour in one and not in the other (/timing/serial_fused_with_next against /layers/fused_with_next). A fused
    conv + pool + GELU reads each layer's input from the caches while the layers computed apart read it from memory:
    at P = 2 here pool's serial time at B = 64 is 136 µs fused and 289 µs apart, so a share of the fused time
    predicted under half of pool's compute. Files that do not record the serial reference's fusion: all False."""
    layers = len(run.layers)
    if run.serial_fused_with_next is None or run.fused_with_next is None:
        return np.zeros(layers, dtype=bool)

    def neighbours(fused):
        before = np.concatenate([[False], fused[:-1]])
        return np.stack([before, fused], axis=1)

    return np.any(neighbours(run.serial_fused_with_next) != neighbours(run.fused_with_next), axis=1)


# ---------------------------------------------------------------------------------------------------- in pass

@dataclass(frozen=True)
class InPassRow:
    """A gather boundary's in-pass factor: its `--calibrate` time as the pass leaves the caches over the fresh
    Allgatherv of the same size in the same calibration (both medians)."""

    source: str  # the calibration's file
    p: int
    nodes: int
    layers: str  # the steps since the previous boundary ("conv+pool", "pool")
    bytes: float
    evicted_bytes: float  # the most any rank streamed through before each call
    fresh: float  # seconds
    in_pass: float  # seconds
    factor: float


def _in_pass_rows(files, options: ModelOptions) -> list[InPassRow]:
    """Every /calibration/in_pass boundary with a fresh Allgatherv of its size beside it (--in-pass off: none)."""
    rows = []
    if options.in_pass == "off":
        return rows
    for calibration in (f.calibration for f in files):
        names = [c.lower() for c in calibration.collectives] if calibration is not None else []
        if FRESH not in names or not calibration.in_pass:
            continue
        k = names.index(FRESH)
        for gather in calibration.in_pass:
            same = np.flatnonzero(calibration.bytes == gather.bytes)
            fresh = float(np.median(calibration.time_s[k, same[0]])) if len(same) else 0.0
            if fresh > 0:
                in_pass = float(np.median(gather.time_s))
                rows.append(InPassRow(calibration.label, calibration.nprocs, calibration.nodes, gather.layers,
                                      gather.bytes, float(np.max(gather.evicted_bytes)), fresh, in_pass,
                                      in_pass / fresh))
    return rows


def _in_pass_for(run: Run, layer: int, rows) -> InPassRow | None:
    """The in-pass row of the run's boundary after `layer`: same P, nodes, gathered bytes and steps since the
    previous boundary; the run's own file's first, then any other's."""
    first = layer
    while first > 0 and run.boundary[first - 1] == "none":
        first -= 1
    chain = "+".join(run.layers[first:layer + 1])
    total = float(stats.boundary_bytes(run)[layer])  # the gathered tensor, as /calibration/in_pass/bytes
    matches = [r for r in rows if r.p == run.nprocs and r.nodes == run.node_count and r.layers == chain
               and r.bytes == total]
    own = [r for r in matches if r.source == run.path.name]
    return (own or matches or [None])[0]


def _in_pass_text(rows: list[InPassRow], options: ModelOptions) -> str:
    """The in-pass factors used, for the parameters section."""
    if options.in_pass == "off":
        return "- In-pass factors: off (`--in-pass off`): every gather is priced as the fresh calibration.\n"
    if not rows:
        return ("- In-pass factors: none (no /calibration/in_pass with a fresh Allgatherv of the same size: "
                "calibrations written before `--calibrate` timed the runs' gathers as a pass leaves the caches), so "
                "a gather is priced as the fresh one.\n")
    cells = [[r.source, str(r.p), str(r.nodes), r.layers, f"{r.bytes:,.0f}", f"{r.evicted_bytes:,.0f}",
              markdown.us(r.fresh), markdown.us(r.in_pass), f"{r.factor:.3f}"] for r in rows]
    return "\n".join([
        "- In-pass factors (`--in-pass`, default on): a pass's gather follows its kernels, which evict the caches the "
        "fresh calibration keeps warm; `--calibrate` times each of the runs' gather boundaries as a pass leaves "
        "them (every rank first streams through what its kernels since the previous boundary read and write). "
        "A run's Allgatherv boundary with such a calibration (same P, nodes, bytes and steps; its own file's first) "
        "has its intra-node messages multiplied by in pass / fresh (on top of the size factors); other messages "
        "and boundaries are as they were.\n",
        markdown.table(["calibration", "P", "nodes", "after", "n B", "streamed B/rank (max)", "fresh µs",
                        "in pass µs", "factor"], cells)])


def _error(predicted: float, measured: float) -> float:
    return (predicted - measured) / measured if measured > 0 else math.nan


def per_layer_rows(rows: list[dict]) -> list[list[str]]:
    """The per-layer table's cells (also used by the tests)."""
    cells = []
    for row in rows:
        if "skipped" in row:
            cells.append([row["run"], str(row["p"]), str(row["nodes"]), "—", row["skipped"], *["—"] * 7])
            continue
        whole = row["layer"] == "whole pass"
        cells.append([row["run"] + (" (oversubscribed)" if row["oversubscribed"] else ""), str(row["p"]),
                      str(row["nodes"]), row["layer"], row["algorithm"] or "—",
                      "—" if whole else markdown.us(row["measured_transfer_s"]),
                      "—" if whole else markdown.us(row["predicted_transfer_s"]),
                      "—" if whole else _percent(row["transfer_error"]),
                      "—" if whole else markdown.us(row["predicted_compute_s"]),
                      markdown.us(row["measured_layer_s"]), markdown.us(row["predicted_layer_s"]),
                      _percent(row["layer_error"])])
    return cells


def _percent(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{100 * value:+.1f}%"


def _largest_errors(rows: list[dict]) -> list[tuple[str, str, str]]:
    """Per run: (label, its largest transfer error, its largest layer error), by magnitude over its layers."""
    summary = []
    for label in dict.fromkeys(row["run"] for row in rows):
        mine = [r for r in rows if r["run"] == label and "skipped" not in r and r["layer"] != "whole pass"]
        if mine:
            boundary = [r["transfer_error"] for r in mine if math.isfinite(r["transfer_error"])]
            layer = [r["layer_error"] for r in mine if math.isfinite(r["layer_error"])]
            summary.append((label, _percent(max(boundary, key=abs)) if boundary else "—",
                            _percent(max(layer, key=abs)) if layer else "—"))
    return summary


def _print_summary(fit: NetworkFit, name: str, network: schedule.Network, sources: dict, rows: list[dict],
                   in_pass: list[InPassRow] = ()) -> None:
    """What a user running `analysis model` at a terminal wants first: the parameters and the largest errors."""
    print(f"analysis model: {name} fit of {fit.points} points, rms relative error "
          f"{100 * fit.rms_relative_error:.1f}%")
    for where, params in (("intra", network.intra), ("inter", network.inter), ("cross", network.cross)):
        bandwidth = f"{1 / params.beta / 1e9:.2f} GB/s" if params.beta > 0 else "∞"
        print(f"  {WHERE[where]:<15} α {params.alpha * 1e6:8.3f} µs   1/β {bandwidth:>11}   ({sources[where]})")
    if network.intra_factor is not None:
        table = network.intra_factor
        print(f"  intra-node messages × a size factor of {min(table.factors):.2f} … {max(table.factors):.2f}, measured "
              f"at {len(table.sizes)} sizes of {markdown.count(table.sizes[0])} … {markdown.count(table.sizes[-1])} B "
              "(--size-factors off: the line alone)")
    if in_pass:
        factors = [r.factor for r in in_pass]
        print(f"  gather boundaries × an in-pass factor of {min(factors):.2f} … {max(factors):.2f}, calibrated at "
              f"{len(in_pass)} boundaries (--in-pass off: as the fresh gather)")
    summary = _largest_errors(rows)
    if summary:
        width = max(len(label) for label, _, _ in summary)
        print("largest per-layer error, predicted / measured − 1:")
        print(f"  {'run':<{width}}  {'transfer':>8}  {'layer':>8}")
        for label, transfer, layer in summary:
            print(f"  {label:<{width}}  {transfer:>8}  {layer:>8}")


def _per_layer_section(rows: list[dict]) -> str:
    if not rows:
        return "## Per-layer predictions\n\nNo run with P > 1 among the inputs: nothing to predict.\n"
    summary = _largest_errors(rows)
    return "\n".join([
        "## Per-layer predictions\n",
        "Each run's pass played by the model (`schedule.predict_pass`): every rank computes its layer for "
        f"{rows[0]['compute_source'] if 'compute_source' in rows[0] else 'its predicted compute'}, enters its "
        "boundary, and the "
        "boundary's messages are played as the library runs them (algorithm by Open MPI 4.1's rules for that P "
        "and n, the run's own block sizes `/partition/count` × `item_bytes` and nodes `/ranks/node`), starting "
        "on each rank when it entered; the barrier before the pass and the input broadcast (knomial tree) start it "
        "(times from the first rank out of the barrier, as the files'), and the whole pass is one "
        "play (a boundary's last flows share the links with the next boundary's first). Measured and predicted "
        "in the same terms (records.hpp): *transfer* = from the last rank's entry to a rank's exit, *layer* = a "
        "rank's compute + wait + transfer, each the slowest rank's (median over iterations for the measurement); "
        "the whole pass is the slowest rank's forward time (its broadcast included). Error = predicted / measured "
        "− 1.\n",
        markdown.table(["run", "P", "nodes", "layer", "algorithm", "measured transfer µs", "predicted µs",
                        "error", "predicted compute µs", "measured layer µs", "predicted µs", "error"],
                       per_layer_rows(rows)),
        "Largest error per run (by magnitude, over its layers):\n",
        markdown.table(["run", "transfer", "layer"], summary), _skew_section(rows), _replay_section(rows)])


def _skew_section(rows: list[dict]) -> str:
    """How spread each boundary's exits are, measured (the file's timestamps, each rank's median) and predicted, and
    the rank whose predicted exit is farthest from its measured one: the next layer waits for that skew."""
    timed = [r for r in rows if "measured_exit_spread_s" in r]
    if not timed:
        return ""
    cells = [[r["run"], str(r["p"]), r["layer"], markdown.us(r["measured_exit_spread_s"]),
              markdown.us(r["predicted_exit_spread_s"]),
              f"{r['largest_rank_exit_difference_s'] * 1e6:+,.1f} (rank {r['that_rank']})"] for r in timed]
    return "\n".join([
        "\nThe skew each boundary leaves (files with timestamps): the spread of the ranks' exits from it, measured "
        "(each rank's median) and predicted, and the rank whose predicted exit is farthest from its measured one "
        "(predicted − measured, both from the pass's start). The next layer's wait is that spread.\n",
        markdown.table(["run", "P", "layer", "measured exit spread µs", "predicted µs",
                        "largest rank difference µs"], cells)])


def _replay_section(rows: list[dict]) -> str:
    """With --jitter: each layer's predicted time over the replays, beside the prediction and the measurement."""
    replayed = [r for r in rows if "replays" in r]
    if not replayed:
        return ""
    first = replayed[0]
    cells = [[r["run"], str(r["p"]), r["layer"], markdown.us(r["predicted_layer_s"]),
              markdown.us(r["replayed_layer_min_s"]), markdown.us(r["replayed_layer_median_s"]),
              markdown.us(r["replayed_layer_max_s"]),
              f"{100 * (r['replayed_layer_max_s'] - r['replayed_layer_min_s']) / r['predicted_layer_s']:.1f}%"
              if r["predicted_layer_s"] > 0 else "—",
              markdown.us(r["measured_layer_s"]), "yes" if r["measured_within_replays"] else "no"] for r in replayed]
    return "\n".join([
        f"\nHow sensitive each layer's prediction is (`--jitter {first['jitter_s']:g}`): the pass played again "
        f"{first['replays']} times, every rank's compute of every layer moved by a normal deviate of "
        f"{first['jitter_s'] * 1e6:g} µs (seeded). A layer whose replays spread widely is set by the order in which "
        "the ranks left the boundary before it, not by the network: its single prediction, and a single "
        "measurement, are one draw of that spread.\n",
        markdown.table(["run", "P", "layer", "predicted µs", "replays: least µs", "median µs", "largest µs",
                        "spread / predicted", "measured µs", "measured within the replays"], cells)])


# ---------------------------------------------------------------------------------------------------- the report

def _findings_section(findings: Findings, options: ModelOptions) -> str:
    lines = []
    if findings.problems:
        lines.append("## ⚠ Problems: the parameters failed their checks\n")
        lines += [f"- **{text}**" for text in findings.problems]
        lines.append("\n" + ("Predictions and extrapolation are shown anyway (`--accept-suspect-parameters`)."
                             if options.accept_suspect else
                             "Per-layer predictions and the extrapolation are therefore withheld "
                             "(`--accept-suspect-parameters` shows them anyway).") + "\n")
    if findings.warnings:
        lines.append("## Warnings\n")
        lines += [f"- {text}" for text in findings.warnings]
        lines.append("")
    return "\n".join(lines)


def _fit_json(fit: NetworkFit | None):
    if fit is None:
        return None
    out = {"points": fit.points, "rms_relative_error": fit.rms_relative_error, "iterations": fit.iterations,
           "fitted_gamma": fit.gamma is not None, "gamma": fit.gamma}
    for where, params in (("intra", fit.intra), ("inter", fit.inter), ("cross", fit.cross)):
        out[f"alpha_{where}"] = params.alpha if params is not None else None
        out[f"beta_{where}"] = params.beta if params is not None else None
    return out


def _params_text(params: Params) -> str:
    bandwidth = f"1/β = {1 / params.beta / 1e9:.2f} GB/s" if params.beta > 0 else "β = 0"
    return f"α = {params.alpha * 1e6:.3f} µs, β = {params.beta * 1e9:.4f} ns/B ({bandwidth})"


def _cells(params: Params | None) -> list[str]:
    if params is None:
        return ["not measured"] * 3
    return [f"{params.alpha * 1e6:.3f}", f"{params.beta * 1e9:.4f}",
            f"{1 / params.beta / 1e9:.2f}" if params.beta > 0 else "∞"]


def _parameters_section(run_fit, calibration_fit, used_name, network, sources, gamma, options,
                        size_factors_text: str) -> str:
    rows = []
    for name, fit in (("calibration", calibration_fit), ("run (layer boundaries)", run_fit)):
        if fit is not None:
            rows.append((name, *_cells(fit.intra), *_cells(fit.inter), *_cells(fit.cross),
                         f"{fit.gamma * 1e9:.4f}" if fit.gamma is not None else "not fitted", fit.points,
                         f"{100 * fit.rms_relative_error:.1f}%"))
    algorithm = ("the library's own choice per P and n (Open MPI 4.1's decision rules: gather + broadcast, Bruck, "
                 "ring, neighbour exchange, pairwise)" if options.algorithm == "auto" else f"**{options.algorithm}**")
    return "\n".join([
        "## Parameters\n",
        f"Allgatherv is priced as it runs: {algorithm} (`--algorithm`), its messages played on the ranks' nodes, "
        "each message α + b·β of its link class — within a node, between nodes under one switch, between "
        "switches (*cross*) — a node's inter-node messages of one step sharing its link "
        "(`analysis/schedule.py`); a calibration point also carries the skew of the barrier before it. Bcast "
        "(binomial) and Allreduce (Rabenseifner) use the closed forms of `costmodel`, where they hold (one node, or "
        "P = 2). Fitted by non-negative least squares of the relative error (medians over repetitions or "
        "iterations, slowest rank).\n",
        markdown.table(["fit", "intra α µs", "intra β ns/B", "intra 1/β GB/s", "inter α µs", "inter β ns/B",
                        "inter 1/β GB/s", "cross α µs", "cross β ns/B", "cross 1/β GB/s", "γ ns/B", "points",
                        "rms rel. error"], rows),
        f"Used below: the **{used_name}** fit.\n",
        f"- Intra-node: {_params_text(network.intra)} — {sources['intra']}.",
        f"- Inter-node (under one switch): {_params_text(network.inter)} — {sources['inter']}.",
        f"- Between switches: {_params_text(network.cross)} — {sources['cross']}.",
        "- Per-layer predictions share links "
        + ("instant by instant (`--sharing fluid`: `analysis/fluid.py`, weighted max-min as a flow-level "
           "simulator)" if options.sharing == "fluid" else
           "by how long messages overlap (`--sharing averaged`: `schedule.evaluate`, as the fit)") + ".",
        f"- γ = {gamma * 1e9:.4f} ns/B" + ("" if (calibration_fit if used_name == "calibration" else run_fit).gamma
                                          is not None else " (not measured: `--gamma`, default 10 GB/s of reduced "
                                          "data, the order of the memcpy bandwidth measured on the development VM)")
        + f"; {options.ranks_per_node} ranks per node in the extrapolation (`--ranks-per-node`).",
        size_factors_text])


_PREDICTED: dict = {}  # (point, fit's parameters, algorithm, sharing) -> seconds: the table and the figure share them


def _predict_point(point: Point, fit: NetworkFit | None, algorithm: str, sharing: str = "fluid") -> float:
    if fit is None:
        return math.nan
    key = (point, repr((fit.intra, fit.inter, fit.cross, fit.gamma)), algorithm, sharing)
    if key not in _PREDICTED:
        _PREDICTED[key] = _predict_point_uncached(point, fit, algorithm, sharing)
    return _PREDICTED[key]


def _predict_point_uncached(point: Point, fit: NetworkFit, algorithm: str, sharing: str) -> float:
    intra = fit.intra or fit.inter
    inter = fit.inter or Params(costmodel.DEFAULT_INTER_ALPHA, costmodel.DEFAULT_INTER_BETA)
    cross = fit.cross or inter
    theta = np.array([intra.alpha, intra.beta, inter.alpha, inter.beta, cross.alpha, cross.beta,
                      fit.gamma or 0.0])
    network = _network_of(theta)
    if point.counts is not None and sharing == "fluid":
        ops = schedule.programs(schedule.resolve(algorithm, point.p, point.n), np.array(point.counts))
        return _fluid_seconds(point, ops, network)
    return float(_point_row(point, network, algorithm, sharing) @ theta)


def _prediction_table(points: list[Point], fits: dict, algorithm: str, sharing: str) -> str:
    available = [(name, fit) for name, fit in fits.items() if fit is not None]
    rows = []
    for point in points:
        chosen = (schedule.resolve(algorithm, point.p, point.n) if point.counts is not None else "closed form")
        row = [point.source + ("" if point.fitted else f" (not fitted: {point.why_not})"), point.what,
               point.collective, chosen, point.p, len(set(point.node)), markdown.count(point.n),
               markdown.us(point.measured)]
        for _, fit in available:
            predicted = _predict_point(point, fit, algorithm, sharing)
            row += [markdown.us(predicted), _percent(_error(predicted, point.measured))]
        rows.append(row)
    headers = ["source", "layer / size", "collective", "algorithm", "P", "nodes", "n (B)", "measured µs"]
    for name, _ in available:
        headers += [f"{name} fit µs", "error"]
    return markdown.table(headers, rows)


def _fit_figure(points: list[Point], fits: dict, algorithm: str, sharing: str):
    """Parity plot of every point against the fit of its kind (calibration points against the calibration fit,
    run points against the run fit, or the other when theirs is missing), and the points against n."""
    fig, (parity, sizes) = plt.subplots(1, 2, figsize=(12, 4.6))
    markers = {"allgatherv": "o", "allgather": "o", FRESH: "D", "allreduce": "s", "bcast": "^"}
    sources = sorted({p.source for p in points})
    colors = {source: figures.layer_color(i) for i, source in enumerate(sources)}
    for source in sources:
        mine = [p for p in points if p.source == source]
        fit = (fits["calibration"] if mine[0].calibration else fits["run"]) or fits["calibration"] or fits["run"]
        for collective in sorted({p.collective for p in mine}):
            chosen = [p for p in mine if p.collective == collective]
            measured = np.array([p.measured for p in chosen]) * 1e6
            predicted = np.array([_predict_point(p, fit, algorithm, sharing) for p in chosen]) * 1e6
            label = f"{source}: {collective} (P = {chosen[0].p})"
            face = [colors[source] if p.fitted else "none" for p in chosen]
            parity.scatter(measured, predicted, marker=markers[collective], edgecolors=colors[source],
                           facecolors=face, label=label, alpha=0.8)
            order = np.argsort([p.n for p in chosen])
            n = np.array([p.n for p in chosen])[order]
            sizes.plot(n, measured[order], markers[collective], color=colors[source], label=f"{label}, measured",
                       alpha=0.8)
            sizes.plot(n, predicted[order], "-", color=colors[source], linewidth=0.9)
    positive = [p.measured * 1e6 for p in points if p.measured > 0]
    if positive:
        span = [min(positive) / 2, max(positive) * 2]
        parity.plot(span, span, "--", color="gray", linewidth=0.8, label="predicted = measured")
    for ax in (parity, sizes):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=6)
    parity.set_xlabel("measured (µs)")
    parity.set_ylabel("predicted by its fit (µs)")
    parity.set_title("Predicted vs measured (open markers: not fitted)")
    sizes.set_xlabel("n: bytes of the whole gathered tensor / reduced vector / message (B)")
    sizes.set_ylabel("time (µs, slowest rank, median)")
    sizes.set_title("Measured (markers) and predicted (lines) against n")
    fig.tight_layout()
    return fig


def _algorithms_section(run: Run, intra: Params) -> str:
    rows = []
    sizes = stats.boundary_bytes(run)
    for layer, name in enumerate(run.layers):
        if run.boundary[layer] == "none":
            rows.append((name, "none", "0", "—", "—", "—", "—"))
            continue
        if run.boundary[layer] not in COLLECTIVE_OF_BOUNDARY:  # exchange: point to point, no collective model
            rows.append((name, f"{run.boundary[layer]} (point to point, not modelled)", markdown.count(sizes[layer]),
                         "—", "—", "—", "—"))
            continue
        collective, n = COLLECTIVE_OF_BOUNDARY[run.boundary[layer]], float(sizes[layer])
        if collective == "allreduce":
            cells = [markdown.us(costmodel.predict("allreduce", run.nprocs, n, intra))] * 3
            library = "—"
        else:
            cells = [markdown.us(costmodel.predict(collective, run.nprocs, n, intra, algorithm))
                     for algorithm in ("ring", "recursive-doubling", "bruck")]
            library = schedule.ompi_allgatherv_algorithm(run.nprocs, n)
        rows.append((name, collective, markdown.count(n), library, *cells))
    rows.append(("input broadcast (binomial)", "bcast", markdown.count(run.input_bytes_received.max()), "—",
                 *[markdown.us(costmodel.predict("bcast", run.nprocs, run.input_bytes_received.max(), intra))] * 3))
    return "\n".join([f"## Algorithms at the measured P = {run.nprocs} ({run.label})\n",
                      "Closed forms of one call on one node with the intra-node parameters (µs), beside the algorithm "
                      "the library's rules pick for this P and n:\n",
                      markdown.table(["layer", "collective", "n (B)", "library's choice", "ring",
                                      "recursive doubling", "Bruck"], rows)])
