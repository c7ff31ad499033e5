"""Intra-node size factors (`schedule.SizeFactors`): the interpolation, the factor in both plays (`fluid.play`,
`schedule.evaluate`), and `model` end to end on a two-rank calibration that is not one line, whose factors make the
per-layer predictions at the calibrated boundary sizes the calibration's own times."""
import json

import h5py
import numpy as np
import pytest

from analysis import costmodel, fluid, schedule, stats
from analysis.costmodel import Params
from analysis.results import load
from conftest import analysis
from test_model import INTER, INTRA, SIZES, TRUE, _calibrated_copy

TABLE = schedule.SizeFactors(sizes=(1000.0, 100000.0, 1e6), factors=(2.0, 0.5, 1.5))
NET = schedule.Network(INTRA, INTER)
WITH_TABLE = schedule.Network(INTRA, INTER, intra_factor=TABLE)


def exchange(b):
    """Ranks 0 and 1 swap b bytes each, posted together (the two-rank gather)."""
    return [[(((1, b),), ((1, b),), 0)], [(((0, b),), ((0, b),), 0)]]


def test_factors_are_exact_at_the_measured_sizes():
    assert [TABLE.at(m) for m in TABLE.sizes] == list(TABLE.factors)
    assert TABLE.at(np.array(TABLE.sizes)).tolist() == list(TABLE.factors)


def test_factors_are_linear_in_log_size_between_measured_sizes():
    # 10,000 B is halfway from 1,000 to 100,000 in log m; 10^5.25 a quarter of the way from 10^5 to 10^6
    assert TABLE.at(10000.0) == pytest.approx((2.0 + 0.5) / 2, rel=1e-12)
    assert TABLE.at(10 ** 5.25) == pytest.approx(0.5 + 0.25 * (1.5 - 0.5), rel=1e-12)
    between = TABLE.at(np.geomspace(1000, 100000, 9))
    assert np.allclose(between, np.linspace(2.0, 0.5, 9), rtol=1e-12)


def test_factors_hold_the_nearest_end_beyond_the_measured_sizes():
    assert TABLE.at(10.0) == TABLE.at(0.0) == 2.0  # an empty message: the smallest size's factor
    assert TABLE.at(1e9) == 1.5
    assert schedule.SizeFactors((64.0,), (3.0,)).at(np.array([0.0, 1.0, 1e12])).tolist() == [3.0, 3.0, 3.0]


def test_factors_refuse_tables_that_mean_nothing():
    for sizes, factors in (((), ()), ((10.0, 5.0), (1.0, 1.0)), ((10.0, 10.0), (1.0, 1.0)), ((0.0,), (1.0,)),
                           ((10.0,), (0.0,)), ((10.0, 20.0), (1.0,))):
        with pytest.raises(ValueError):
            schedule.SizeFactors(sizes, factors)


@pytest.mark.parametrize("b", [0.0, 500.0, 10000.0, 200000.0, 5e6])
def test_an_intra_node_message_takes_its_factor_times_its_line(b):
    line = INTRA.alpha + b * INTRA.beta
    finish = fluid.play(exchange(b), [0, 0], WITH_TABLE)
    assert finish == pytest.approx([TABLE.at(b) * line] * 2, rel=1e-12)
    averaged = schedule.evaluate(exchange(b), [0, 0], WITH_TABLE)
    assert averaged.finish == pytest.approx([TABLE.at(b) * line] * 2, rel=1e-12)
    # the averaged play's coefficients scale too, so its time is still coefficients · θ
    assert averaged.coefficients[:2] == pytest.approx([TABLE.at(b), TABLE.at(b) * b], rel=1e-12)
    assert averaged.seconds == pytest.approx(float(averaged.coefficients @ WITH_TABLE.theta), rel=1e-12)


def test_factors_touch_intra_node_messages_only():
    # rank 0 sends 10 kB to rank 1 on its node; rank 1 then forwards 20 kB to rank 2 on another node
    ops = [[(((1, 1e4),), (), 0)], [((), ((0, 1e4),), 0), (((2, 2e4),), (), 1)], [((), ((1, 2e4),), 1)]]
    node = [0, 0, 1]
    intra = TABLE.at(1e4) * (INTRA.alpha + 1e4 * INTRA.beta)
    expected = intra + INTER.alpha + 2e4 * INTER.beta
    assert fluid.play(ops, node, WITH_TABLE)[2] == pytest.approx(expected, rel=1e-12)
    assert schedule.evaluate(ops, node, WITH_TABLE).finish[2] == pytest.approx(expected, rel=1e-12)
    one_rank_per_node = fluid.play(schedule.programs("ring", np.full(4, 3e4)), [0, 1, 2, 3], WITH_TABLE)
    assert np.array_equal(one_rank_per_node, fluid.play(schedule.programs("ring", np.full(4, 3e4)), [0, 1, 2, 3],
                                                        NET))


def test_a_table_of_ones_changes_no_bit():
    # the factors multiply: a unit table must give the plays without a table to the last bit (the tables of
    # `model --size-factors off` are checked digit for digit against the line alone)
    ones = schedule.Network(INTRA, INTER, intra_factor=schedule.SizeFactors((64.0, 1e6), (1.0, 1.0)))
    ops = schedule.programs("ring", schedule.even_counts(1_384_448, 16))
    node = schedule.consecutive_nodes(16, 4)
    assert np.array_equal(fluid.play(ops, node, ones), fluid.play(ops, node, NET))
    plain, unit = schedule.evaluate(ops, node, NET), schedule.evaluate(ops, node, ones)
    assert np.array_equal(plain.finish, unit.finish)
    assert np.array_equal(plain.finish_coefficients, unit.finish_coefficients)


# ------------------------------------------------------------------------------------------------- end to end

STEP_BYTES = 4096  # per message: from here on the synthetic transport takes STEP times the model's time
STEP = 2.5


def _stepped_calibration(run2, path):
    """A copy of run2 (P = 2, one node) with a /calibration of the model's own times at INTRA, times STEP for a
    message of STEP_BYTES or more — so not one line — at the grid sizes and at the run's boundary sizes. Returns
    the path and {n: its Allgatherv time}."""
    _calibrated_copy(run2, path, 2, 1)  # the file and its /calibration group; sizes and times replaced below
    run = load(path).runs[0]
    sizes = np.array(sorted(set(SIZES.tolist()) | {int(b) for b in stats.boundary_bytes(run) if b > 0}),
                     dtype=np.uint64)
    times = np.empty((2, len(sizes), 5))
    for s, n in enumerate(sizes):
        counts = schedule.even_counts(float(n), 2)
        ops = schedule.programs(schedule.resolve("auto", 2, float(n)), counts)
        step = STEP if counts.max() >= STEP_BYTES else 1.0
        times[0, s] = schedule.fluid_calibration_time(ops, [0, 0], NET) * step
        times[1, s] = costmodel.predict("allreduce", 2, float(n), Params(INTRA.alpha, INTRA.beta, TRUE.gamma))
    with h5py.File(path, "r+") as f:
        group = f["calibration"]
        del group["bytes"], group["time_s"]
        group.create_dataset("bytes", data=sizes)
        group.create_dataset("time_s", data=times)
    return path, {int(n): float(t) for n, t in zip(sizes, times[0, :, 0])}


def test_predictions_at_calibrated_sizes_are_the_calibrations_times(tmp_path, run2):
    path, calibrated = _stepped_calibration(run2, tmp_path / "stepped.h5")
    run = load(path).runs[0]
    boundary = dict(zip(run.layers, (int(b) for b in stats.boundary_bytes(run))))
    assert {boundary[name] // 2 >= STEP_BYTES for name in run.layers} == {True, False}  # both sides of the step

    on, off = tmp_path / "on", tmp_path / "off"
    done = analysis("model", path, "--out", on)
    analysis("model", path, "--out", off, "--size-factors", "off")
    with_factors, line_only = (json.loads((out / "model.json").read_text()) for out in (on, off))

    # every layer's boundary was calibrated at its own n: its predicted transfer is that calibration's time
    for row in (r for r in with_factors["per_layer"] if r["layer"] != "whole pass"):
        assert row["predicted_transfer_s"] == pytest.approx(calibrated[boundary[row["layer"]]], rel=1e-9), row
    # the line alone cannot follow the step: some layer misses by more than 10%
    misses = [abs(r["predicted_transfer_s"] / calibrated[boundary[r["layer"]]] - 1)
              for r in line_only["per_layer"] if r["layer"] != "whole pass"]
    assert max(misses) > 0.1, misses

    # model.json: one factor per calibrated message size, each measured / line (the barrier's part is 0 at P = 2)
    factors = with_factors["intra_size_factors"]
    alpha, beta = with_factors["intra"]["alpha"], with_factors["intra"]["beta"]
    assert [f["bytes"] for f in factors] == sorted(n / 2 for n in calibrated)
    for f in factors:
        assert f["factor"] == pytest.approx(calibrated[int(2 * f["bytes"])] / (alpha + f["bytes"] * beta), rel=1e-9)
    assert line_only["intra_size_factors"] == []
    report, plain = ((out / "model.md").read_text() for out in (on, off))
    assert "### Intra-node size factors" in report
    assert "| message B | points | measured µs | modelled µs | factor |" in report
    assert "priced by the fitted line alone (`--size-factors off`)" in plain and "### Intra-node" not in plain
    assert "intra-node messages × a size factor" in done.stdout


def test_no_two_rank_calibration_no_factors(tmp_path, run3):
    """A calibration of four ranks has no message that owns its time: no table, one line in model.md."""
    path = _calibrated_copy(run3, tmp_path / "four.h5", 4, 1)
    out = tmp_path / "model"
    done = analysis("model", path, "--out", out)
    assert json.loads((out / "model.json").read_text())["intra_size_factors"] == []
    assert "Intra-node size factors: none measured" in (out / "model.md").read_text()
    assert "size factor" not in done.stdout
