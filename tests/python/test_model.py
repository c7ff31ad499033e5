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
    analysis("model", run2, run3, "--out", tmp_path)
    for stem in ("model_fit", "model_extrapolation"):
        assert_figure(tmp_path, stem)
    report = (tmp_path / "model.md").read_text()
    for section in ("Predicted vs measured", "Algorithms at the measured P", "Extrapolation to P = 8 … 1,024",
                    "Where consolidation overtakes compute"):
        assert section in report
    assert "| 1024 |" in report
    parameters = json.loads((tmp_path / "model.json").read_text())
    assert parameters["used"] == "run"
    assert parameters["fits"]["run"]["alpha"] >= 0 and parameters["fits"]["run"]["beta"] > 0
    assert parameters["inter"]["alpha"] == costmodel.DEFAULT_INTER_ALPHA


def test_model_uses_calibration_group(tmp_path, run3):
    """A /calibration group (format of `cnnpar_mpi --calibrate`) with known α, β, γ is fitted and preferred."""
    path = tmp_path / "calibrated.h5"
    path.write_bytes(run3.read_bytes())
    collectives = ["allgatherv", "allreduce", "bcast"]
    sizes = np.geomspace(64, 4 * 2**20, 10).astype(np.uint64)
    nprocs, repetitions = 4, 7
    rng = np.random.default_rng(3)
    times = np.empty((len(collectives), len(sizes), repetitions))
    for k, collective in enumerate(collectives):
        for s, n in enumerate(sizes):
            exact = costmodel.predict(collective, nprocs, float(n), TRUE)
            times[k, s] = exact * (1 + rng.uniform(-0.02, 0.02, repetitions))
    with h5py.File(path, "r+") as f:
        group = f.create_group("calibration")
        group.create_dataset("collective", data=collectives, dtype=h5py.string_dtype())
        group.create_dataset("bytes", data=sizes)
        group.create_dataset("time_s", data=times)
        group.attrs["nprocs"] = nprocs
        group.attrs["nodes"] = 1
    out = tmp_path / "model"
    analysis("model", path, "--out", out, "--inter-alpha", "5e-6", "--inter-beta", "2e-10")
    parameters = json.loads((out / "model.json").read_text())
    assert parameters["used"] == "calibration"
    fitted = parameters["fits"]["calibration"]
    assert fitted["alpha"] == pytest.approx(TRUE.alpha, rel=0.05)
    assert fitted["beta"] == pytest.approx(TRUE.beta, rel=0.05)
    assert fitted["gamma"] == pytest.approx(TRUE.gamma, rel=0.05)
    assert parameters["inter"] == {"alpha": 5e-6, "beta": 2e-10, "gamma": fitted["gamma"]}
    report = (out / "model.md").read_text()
    assert "calibrated.h5 /calibration" in report and "Used below: the **calibration** fit" in report
    assert not math.isnan(fitted["rms_relative_error"])


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
