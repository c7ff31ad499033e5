"""The cost model: formulas, the fit on synthetic data with known α, β, γ, and `model` on real runs and on a
synthetic /calibration group written into a copy of a real results file."""
import json
import math

import h5py
import numpy as np
import pytest

from analysis import costmodel
from analysis.costmodel import Params
from conftest import analysis, assert_figure

TRUE = Params(alpha=3e-6, beta=4e-10, gamma=1e-9)


def test_closed_forms():
    n = 1000.0
    ab = Params(1.0, 1.0)
    assert costmodel.predict("allgatherv", 8, n, ab, "recursive-doubling") == pytest.approx(3 + 7 / 8 * n)
    assert costmodel.predict("allgatherv", 5, n, ab, "bruck") == pytest.approx(3 + 4 / 5 * n)
    assert costmodel.predict("allgatherv", 5, n, ab, "ring") == pytest.approx(4 + 4 / 5 * n)
    assert costmodel.predict("bcast", 4, n, ab) == pytest.approx(2 * (1 + n))
    assert costmodel.predict("allreduce", 4, n, Params(1, 1, 1)) == pytest.approx(4 + 2 * 3 / 4 * n + 3 / 4 * n)
    assert costmodel.predict("allgatherv", 1, n, ab) == 0


@pytest.mark.parametrize("p", [2, 3, 4, 7, 8, 16, 33])
@pytest.mark.parametrize("collective, algorithm", [("allgatherv", "bruck"), ("allgatherv", "ring"),
                                                   ("bcast", "bruck"), ("allreduce", "bruck")])
def test_one_node_steps_equal_closed_forms(p, collective, algorithm):
    """The step-by-step multi-node model reduces to the closed forms when every rank is on one node."""
    n = 86528.0
    stepwise = costmodel.multi_node_time(collective, p, n, p, TRUE, Params(1.0, 1.0, 1.0), algorithm)
    assert stepwise == pytest.approx(costmodel.predict(collective, p, n, TRUE, algorithm), rel=1e-12)


def test_multi_node_costs_more():
    one = costmodel.multi_node_time("allgatherv", 64, 86528.0, 64, TRUE, Params(2e-6, 1e-10))
    two = costmodel.multi_node_time("allgatherv", 64, 86528.0, 32, TRUE, Params(2e-6, 1e-10))
    assert two > one


def _synthetic(params, algorithm, noise, rng):
    """Allgatherv measurements over several P and sizes from 64 B to 4 MB, with multiplicative noise."""
    rows, times = [], []
    for p in (2, 3, 4, 8, 16):
        for n in np.geomspace(64, 4e6, 12):
            row = costmodel.design_row("allgatherv", p, n, algorithm)
            rows.append(row)
            times.append(row @ [params.alpha, params.beta, params.gamma] * (1 + rng.uniform(-noise, noise)))
    return np.array(rows), np.array(times)


@pytest.mark.parametrize("algorithm", costmodel.ALLGATHER_ALGORITHMS)
def test_fit_recovers_alpha_beta(algorithm):
    rows, times = _synthetic(TRUE, algorithm, noise=0.03, rng=np.random.default_rng(1))
    fit = costmodel.fit(rows, times, fit_gamma=False)
    assert fit.params.alpha == pytest.approx(TRUE.alpha, rel=0.05)
    assert fit.params.beta == pytest.approx(TRUE.beta, rel=0.05)
    assert fit.rms_relative_error < 0.03


def test_fit_is_non_negative():
    """Pure bandwidth data must not produce a negative latency."""
    rows, times = _synthetic(Params(0.0, 4e-10), "bruck", noise=0.05, rng=np.random.default_rng(2))
    fit = costmodel.fit(rows, times, fit_gamma=False)
    assert fit.params.alpha >= 0 and fit.params.beta == pytest.approx(4e-10, rel=0.05)


def test_model_on_real_runs(tmp_path, run2, run3):
    """Runs only: the fit falls back to their boundaries and says so; run3 (P = 3 on this 2-core machine) is flagged
    as oversubscribed on stderr and in model.md, left out of the fit, and its per-layer rows say so. The fit rests on
    run2's few noisy boundaries, which can give α = 0 (a problem that withholds the predictions): shown anyway here."""
    done = analysis("model", run2, run3, "--out", tmp_path, "--accept-suspect-parameters")
    for stem in ("model_fit", "model_extrapolation"):
        assert_figure(tmp_path, stem)
    report = (tmp_path / "model.md").read_text()
    for section in ("Per-layer predictions", "The fitted points", "Algorithms at the measured P",
                    "Extrapolation to P = 8 … 1,024", "Where consolidation overtakes compute"):
        assert section in report
    assert "| 1024 |" in report
    parameters = json.loads((tmp_path / "model.json").read_text())
    assert parameters["used"] == "run"
    assert parameters["fits"]["run"]["alpha_intra"] >= 0 and parameters["fits"]["run"]["beta_intra"] > 0
    assert parameters["inter"]["alpha"] == costmodel.DEFAULT_INTER_ALPHA
    assert "no input has a /calibration group" in done.stderr and "no input has a /calibration group" in report
    assert f"{run3.name} is oversubscribed (3 ranks on 2 CPUs" in done.stderr
    assert "oversubscribed (3 ranks on 2 CPUs" in report and "(not fitted: oversubscribed)" in report
    rows = [r for r in parameters["per_layer"] if r["run"] == run3.name]
    assert rows and all(r["oversubscribed"] for r in rows)


INTRA = Params(alpha=0.4e-6, beta=1 / 15e9)
INTER = Params(alpha=2.5e-6, beta=1 / 9e9)
SIZES = np.array([64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304], dtype=np.uint64)


def _calibrated_copy(source, path, nprocs, nodes, intra=INTRA, inter=INTER, noise=0.0, seed=3, fresh=False):
    """A copy of `source` with a /calibration group (`cnnpar_mpi --calibrate`'s format) of nprocs ranks on `nodes`
    nodes (consecutive ranks), timed by the model itself at known parameters: Allgatherv as the library's rules
    pick it, its messages played as flows (`fluid`), measured after a barrier as --calibrate measures it. With
    `fresh`, those times are allgatherv_fresh's and the warm allgatherv is written as half of them."""
    from analysis import schedule
    path.write_bytes(source.read_bytes())
    network = schedule.Network(intra, inter)
    node = schedule.consecutive_nodes(nprocs, -(-nprocs // nodes))
    rng = np.random.default_rng(seed)
    repetitions = 5
    times = np.empty((3 if fresh else 2, len(SIZES), repetitions))
    for s, n in enumerate(SIZES):
        counts = schedule.even_counts(float(n), nprocs)
        ops = schedule.programs(schedule.resolve("auto", nprocs, float(n)), counts)
        exact = schedule.fluid_calibration_time(ops, node, network)
        times[0, s] = exact * (1 + rng.uniform(-noise, noise, repetitions))
        if fresh:
            times[2, s] = times[0, s]
            times[0, s] = times[0, s] / 2
        one = intra if nodes == 1 else inter  # Allreduce: fitted at P = 2 only (one exchange)
        times[1, s] = costmodel.predict("allreduce", nprocs, float(n), Params(one.alpha, one.beta, TRUE.gamma))
    with h5py.File(path, "r+") as f:
        group = f.create_group("calibration")
        group.create_dataset("collective", data=["allgatherv", "allreduce"] + (["allgatherv_fresh"] if fresh else []),
                             dtype=h5py.string_dtype())
        group.create_dataset("bytes", data=SIZES)
        group.create_dataset("time_s", data=times)
        group.attrs["nprocs"] = nprocs
        group.attrs["nodes"] = nodes
    return path


def test_model_fits_calibration_by_default(tmp_path, run3):
    """Calibrations on one node and across nodes, timed by the model at known parameters, give them back (within
    2%, with 3% noise) and are what the predictions use, without a fallback warning."""
    intra = _calibrated_copy(run3, tmp_path / "intra.h5", 4, 1, noise=0.03)
    inter = _calibrated_copy(run3, tmp_path / "inter.h5", 8, 2, noise=0.03, seed=4)
    out = tmp_path / "model"
    done = analysis("model", intra, inter, "--out", out)
    parameters = json.loads((out / "model.json").read_text())
    assert parameters["used"] == "calibration"
    fitted = parameters["fits"]["calibration"]
    assert fitted["alpha_intra"] == pytest.approx(INTRA.alpha, rel=0.02)
    assert fitted["beta_intra"] == pytest.approx(INTRA.beta, rel=0.02)
    assert fitted["alpha_inter"] == pytest.approx(INTER.alpha, rel=0.02)
    assert fitted["beta_inter"] == pytest.approx(INTER.beta, rel=0.02)
    assert parameters["intra"]["source"] == parameters["inter"]["source"] == "calibration fit"
    assert "no input has a /calibration" not in done.stderr
    report = (out / "model.md").read_text()
    assert "Used below: the **calibration** fit" in report and "| calibration |" in report
    # the skew each boundary leaves, measured from the timestamps of the predicted run (run3) and predicted
    assert "The skew each boundary leaves" in report
    timed = [r for r in parameters["per_layer"] if "measured_exit_spread_s" in r]
    assert timed and all(r["measured_exit_spread_s"] >= 0 and r["predicted_exit_spread_s"] >= 0
                         and 0 <= r["that_rank"] < r["p"] for r in timed)
    # without --jitter nothing is replayed (test_model_replays.py has the replays)
    assert not any("replays" in r for r in parameters["per_layer"]) and "How sensitive" not in report
    # the terminal gets the parameters and each run's largest errors, as model.md has them
    assert "analysis model: calibration fit of" in done.stdout and "largest per-layer error" in done.stdout
    summary = report[report.index("Largest error per run"):]
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("largest per-layer error"))
    for line in lines[header + 2:]:  # after the column names, up to "wrote ..."
        if line.startswith("wrote"):
            break
        label, transfer, layer = line.split()
        assert f"| {label} | {transfer} | {layer} |" in summary


def test_model_fits_the_gather_of_freshly_written_data(tmp_path, run3):
    """When --calibrate timed allgatherv_fresh (the gather of data just written, as in a pass), that is fitted and
    the warm allgatherv (here twice as fast) is shown, not fitted: the parameters are the fresh gather's."""
    intra = _calibrated_copy(run3, tmp_path / "intra.h5", 4, 1, fresh=True)
    inter = _calibrated_copy(run3, tmp_path / "inter.h5", 8, 2, seed=4, fresh=True)
    out = tmp_path / "model"
    analysis("model", intra, inter, "--out", out)
    fitted = json.loads((out / "model.json").read_text())["fits"]["calibration"]
    for key, value in (("alpha_intra", INTRA.alpha), ("beta_intra", INTRA.beta), ("alpha_inter", INTER.alpha),
                       ("beta_inter", INTER.beta)):
        assert fitted[key] == pytest.approx(value, rel=1e-3), key
    report = (out / "model.md").read_text()
    assert "not fitted: warm buffers: allgatherv_fresh (freshly written, as in a pass) is fitted" in report
    assert "| allgatherv_fresh |" in report
    # no /calibration/in_pass (test_in_pass.py has them): said so, none used
    assert "In-pass factors: none" in report
    assert json.loads((out / "model.json").read_text())["in_pass_factors"] == []


def test_inter_faster_than_intra_is_a_problem(tmp_path, run3):
    """The issue's case: a slow intra-node fit (α = 106 µs) beside a fast inter-node link is reported on stderr and
    at the top of model.md, and nothing is predicted or extrapolated with it unless asked."""
    slow = Params(alpha=106e-6, beta=1 / 1e9)
    intra = _calibrated_copy(run3, tmp_path / "intra.h5", 4, 1, intra=slow)
    inter = _calibrated_copy(run3, tmp_path / "inter.h5", 2, 2, intra=slow)
    out = tmp_path / "model"
    done = analysis("model", intra, inter, "--out", out)
    assert "PROBLEM: the inter-node link is faster than the intra-node one" in done.stderr
    report = (out / "model.md").read_text()
    assert report.index("⚠ Problems") < report.index("## Parameters")
    assert "Withheld: the parameters failed the checks above" in report
    assert "Extrapolation to P" not in report
    parameters = json.loads((out / "model.json").read_text())
    assert parameters["predictions_withheld"] and not parameters["extrapolated"] and parameters["per_layer"] == []
    assert any("faster than the intra-node" in text for text in parameters["problems"])
    forced = tmp_path / "forced"
    analysis("model", intra, inter, "--out", forced, "--accept-suspect-parameters")
    report = (forced / "model.md").read_text()
    assert "⚠ Problems" in report and "shown anyway" in report and "Extrapolation to P" in report
    assert json.loads((forced / "model.json").read_text())["per_layer"]


def test_zero_latency_is_a_problem(tmp_path, run3):
    """Pure-bandwidth calibration data fit α = 0: reported, predictions withheld."""
    path = _calibrated_copy(run3, tmp_path / "flat.h5", 4, 1, intra=Params(0.0, 1 / 15e9))
    out = tmp_path / "model"
    done = analysis("model", path, "--out", out)
    assert "PROBLEM: intra-node α (latency) is 0" in done.stderr
    assert json.loads((out / "model.json").read_text())["predictions_withheld"]


def test_per_layer_error_on_a_crafted_case(tmp_path, run2):
    """P = 2 on one node, parameters known exactly (a calibration timed by the model): each layer's predicted
    transfer and layer time recomputed here by hand — the input broadcast, then per layer each rank's compute (serial
    × its share of /work/ops), one exchange of the two blocks starting when both entered, α + b·β each — and the
    errors against the file's measured medians. The copy's serial reference is marked as computing the layers as
    the run did (run2's fused conv + pool + GELU would take those layers' measured compute: test_in_pass.py)."""
    from analysis import stats
    from analysis.results import load
    alpha, beta = INTRA.alpha, INTRA.beta
    path = _calibrated_copy(run2, tmp_path / "calibrated.h5", 2, 1)
    with h5py.File(path, "r+") as f:
        f["timing/serial_fused_with_next"][...] = f["layers/fused_with_next"][...]
    out = tmp_path / "model"
    analysis("model", path, "--out", out)
    rows = {r["layer"]: r for r in json.loads((out / "model.json").read_text())["per_layer"]}
    run = load(run2).runs[0]
    n_input = float(run.input_bytes_received.max())
    start = np.array([0.0, alpha + n_input * beta])  # rank 0's send is detached (< 64 KiB): it goes on at once
    ops = stats.layer_ops(run)
    transfer, layer_time = stats.transfer_time(run), stats.layer_parallel_time(run)
    for layer, name in enumerate(run.layers):
        enter = start + run.serial_layer[layer] * run.ops[layer] / ops[layer]
        block = (run.count[layer] * run.item_bytes[layer]).astype(float)
        both = enter.max()
        leave = np.array([both + alpha + block[1 - r] * beta for r in range(2)])  # receive the other's block
        for r in range(2):  # a send of 64 KiB or more is waited for too
            if block[r] >= 65536:
                leave[r] = max(leave[r], both + alpha + block[r] * beta)
        predicted_transfer, predicted_layer = (leave - both).max(), (leave - start).max()
        row = rows[name]
        assert row["predicted_transfer_s"] == pytest.approx(predicted_transfer, rel=1e-9)
        assert row["predicted_layer_s"] == pytest.approx(predicted_layer, rel=1e-9)
        assert row["measured_transfer_s"] == pytest.approx(transfer[layer], rel=1e-12)
        assert row["transfer_error"] == pytest.approx(predicted_transfer / transfer[layer] - 1, rel=1e-9)
        assert row["layer_error"] == pytest.approx(predicted_layer / layer_time[layer] - 1, rel=1e-9)
        start = leave
    assert rows["whole pass"]["predicted_layer_s"] == pytest.approx(start.max(), rel=1e-9)
    report = (out / "model.md").read_text()
    assert f"{100 * rows['conv']['transfer_error']:+.1f}%" in report


def test_extrapolation_plans(run3):
    """The fused plan moves only the linear layer's output, so its pass costs less than per-layer's, layers
    that keep their slices never cross over, and more nodes never make the per-layer plan cheaper."""
    from analysis.extrapolation import Extrapolation
    from analysis.results import load

    run = load(run3).runs[0]
    model = Extrapolation(run, TRUE, Params(2e-6, 1e-10, TRUE.gamma), "bruck", ranks_per_node=32)
    assert model.costs("fused", 64, True).sum() < model.costs("per-layer", 64, True).sum()
    assert model.costs("fused", 64, True)[0] == 0 and model.crossover("fused", True, layer=0) is None
    assert model.costs("per-layer", 256, True).sum() >= model.costs("per-layer", 256, False).sum()
    p_star = model.crossover("per-layer", False, layer=None)
    assert p_star is not None and 2 <= p_star <= 1024
    assert model.costs("per-layer", p_star, False).sum() >= run.serial_layer.sum() / p_star


def test_checker_checks_calibration_boundary_labels(tmp_path, run2):
    """tests/check_results_file.py accepts /calibration/boundary naming each boundary's n, and refuses a label on
    the wrong size."""
    import subprocess
    import sys
    from analysis import stats
    from analysis.results import load
    from conftest import REPO
    run = load(run2).runs[0]
    n = {name: int(b) for name, b in zip(run.layers, stats.boundary_bytes(run))}
    sizes = sorted(set(int(s) for s in SIZES) | set(n.values()))
    labels = [",".join(name for name in run.layers if n[name] == size) for size in sizes]

    def write(path, labels):
        path.write_bytes(run2.read_bytes())
        with h5py.File(path, "r+") as f:
            group = f.create_group("calibration")
            group.create_dataset("collective", data=["allgatherv"], dtype=h5py.string_dtype())
            group.create_dataset("bytes", data=np.array(sizes, dtype=np.uint64))
            group.create_dataset("time_s", data=np.full((1, len(sizes), 3), 1e-6))
            group.create_dataset("boundary", data=labels, dtype=h5py.string_dtype())
            group.attrs.update({"nprocs": 2, "nodes": 1, "repetitions": 3})
        return subprocess.run([sys.executable, str(REPO / "tests" / "check_results_file.py"), str(path),
                               "--nprocs", "2"], capture_output=True, text=True)

    good = write(tmp_path / "good.h5", labels)
    assert good.returncode == 0, good.stdout
    wrong = labels[:]
    first = next(i for i, label in enumerate(wrong) if label)
    wrong[first], wrong[first - 1] = "", wrong[first]  # the label moved to the size below
    bad = write(tmp_path / "bad.h5", wrong)
    assert bad.returncode == 1 and "/calibration/boundary" in bad.stdout


def test_between_switches_faster_than_under_one_is_a_problem():
    """A message between switches crosses more links than one under a switch: a fit that makes it faster (lower α
    and β) is a problem, a lower α alone a warning, and a class nothing measured is not checked."""
    from analysis import model, schedule
    intra, inter = Params(0.3e-6, 1 / 20e9), Params(2e-6, 1 / 12.5e9)
    sources = {"intra": "calibration fit", "inter": "calibration fit", "cross": "calibration fit"}
    for cross, problem, warning in ((Params(1e-6, 1 / 20e9), True, False), (Params(1e-6, 1 / 12.5e9), False, True),
                                    (Params(4e-6, 1 / 12.5e9), False, False)):
        fit = model.NetworkFit(intra, inter, cross, None, 10, 0.01, 1)
        findings = model.Findings()
        model._sanity(fit, "calibration", schedule.Network(intra, inter, cross), sources, findings)
        assert any("between switches is faster" in p for p in findings.problems) == problem
        assert any("latency between switches" in w for w in findings.warnings) == warning
    findings = model.Findings()
    unmeasured = dict(sources, cross="not measured: priced as under one switch (inter-node)")
    model._sanity(model.NetworkFit(intra, inter, None, None, 10, 0.01, 1), "calibration",
                  schedule.Network(intra, inter, inter), unmeasured, findings)
    assert not findings.problems and not findings.warnings
