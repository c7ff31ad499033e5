"""In-pass factors (`--calibrate`'s /calibration/in_pass: a run's gathers timed as a pass leaves the caches) and the
compute of layers whose serial time is of another kernel: a boundary's factor in both plays of
`schedule.predict_pass`, on intra-node messages only, and `model` end to end on a copy of a real two-rank run."""
import json

import h5py
import numpy as np
import pytest

from analysis import model, schedule, stats
from analysis.results import load
from conftest import analysis
from test_model import INTER, INTRA, SIZES, _calibrated_copy

NET = schedule.Network(INTRA, INTER)


def _pass(boundaries, node, **options):
    compute = np.zeros((len(boundaries), len(node)))
    layers, _ = schedule.predict_pass(compute, boundaries, node, NET, **options)
    return [q.transfer for q in layers]


@pytest.mark.parametrize("options", [{}, {"one_play": False}, {"sharing": "averaged"}])
def test_a_boundary_factor_multiplies_its_intra_node_messages(options):
    counts = np.full(2, 1e5)
    plain = _pass([("allgatherv", counts), ("allgatherv", counts)], [0, 0], **options)
    scaled = _pass([("allgatherv", counts, 1.5), ("allgatherv", counts)], [0, 0], **options)
    assert scaled[0] == pytest.approx(1.5 * plain[0], rel=1e-12)
    assert scaled[1] == pytest.approx(plain[1], rel=1e-12)  # the next boundary keeps its own (none)


def test_a_boundary_factor_leaves_inter_node_messages_alone():
    counts = np.full(4, 3e4)
    node = [0, 1, 2, 3]  # one rank per node: every message crosses the network
    assert _pass([("allgatherv", counts, 2.0)], node) == _pass([("allgatherv", counts)], node)


def test_a_factor_of_one_changes_no_bit():
    counts = schedule.even_counts(1_384_448, 8)
    node = schedule.consecutive_nodes(8, 4)
    assert _pass([("allgatherv", counts, 1.0)] * 2, node) == _pass([("allgatherv", counts)] * 2, node)


# ------------------------------------------------------------------------------------------------- end to end

RATIO = {"conv": 1.25, "pool": 1.5, "gelu": 1.1, "fc": 2.0}  # in pass / fresh, per boundary


def _in_pass_copy(run2, path):
    """A copy of run2 (P = 2, one node, per-layer: a gather after every layer) with a /calibration whose fresh
    Allgatherv is timed at the grid and at every boundary's size, and an in_pass row per boundary that takes
    RATIO[layer] times the fresh time of its size."""
    _calibrated_copy(run2, path, 2, 1, fresh=True)
    run = load(path).runs[0]
    boundary = {name: int(b) for name, b in zip(run.layers, stats.boundary_bytes(run))}
    sizes = np.array(sorted(set(SIZES.tolist()) | set(boundary.values())), dtype=np.uint64)
    times = np.empty((3, len(sizes), 5))
    for s, n in enumerate(sizes):
        counts = schedule.even_counts(float(n), 2)
        ops = schedule.programs(schedule.resolve("auto", 2, float(n)), counts)
        times[:, s] = schedule.fluid_calibration_time(ops, [0, 0], NET) * (1 + 0.01 * np.arange(5))
    fresh = {int(n): float(np.median(times[2, s])) for s, n in enumerate(sizes)}
    with h5py.File(path, "r+") as f:
        group = f["calibration"]
        del group["bytes"], group["time_s"]
        group.create_dataset("bytes", data=sizes)
        group.create_dataset("time_s", data=times)
        in_pass = group.create_group("in_pass")
        in_pass.create_dataset("layers", data=list(run.layers), dtype=h5py.string_dtype())
        in_pass.create_dataset("bytes", data=np.array([boundary[name] for name in run.layers], dtype=np.uint64))
        in_pass.create_dataset("evicted_bytes", data=np.full((len(run.layers), 2), 1 << 20, dtype=np.uint64))
        in_pass.create_dataset("time_s", data=np.array(
            [[fresh[boundary[name]] * RATIO[name]] * 5 for name in run.layers]))
    return path, fresh, boundary


def test_model_multiplies_each_calibrated_boundary_by_its_in_pass_factor(tmp_path, run2, run3):
    path, fresh, boundary = _in_pass_copy(run2, tmp_path / "in_pass.h5")
    on, off = tmp_path / "on", tmp_path / "off"
    done = analysis("model", path, "--out", on)
    analysis("model", path, "--out", off, "--in-pass", "off")
    with_factors, without = (json.loads((out / "model.json").read_text()) for out in (on, off))

    mine = {r["layer"]: r for r in with_factors["per_layer"] if r["run"] == path.name and r["layer"] != "whole pass"}
    plain = {r["layer"]: r for r in without["per_layer"] if r["run"] == path.name and r["layer"] != "whole pass"}
    assert set(mine) == set(RATIO)
    for layer, ratio in RATIO.items():
        assert mine[layer]["in_pass_factor"] == pytest.approx(ratio, rel=1e-12)
        assert plain[layer]["in_pass_factor"] is None
        # P = 2 on one node: the boundary is one exchange within the node, so its whole transfer scales
        assert mine[layer]["predicted_transfer_s"] == pytest.approx(ratio * plain[layer]["predicted_transfer_s"],
                                                                    rel=1e-9), layer
    # run3 (P = 3) has no calibration of its own P: nothing applies to it
    rows = model._in_pass_rows([load(path)], model.ModelOptions())
    three = load(run3).runs[0]
    assert len(rows) == 4 and all(model._in_pass_for(three, layer, rows) is None for layer in range(4))

    rows = with_factors["in_pass_factors"]
    names = load(path).runs[0].layers
    assert [(r["layers"], r["bytes"]) for r in rows] == [(name, boundary[name]) for name in names]
    for r in rows:
        assert r["fresh_s"] == pytest.approx(fresh[r["bytes"]], rel=1e-12)
        assert r["factor"] == pytest.approx(RATIO[r["layers"]], rel=1e-12)
        assert r["evicted_bytes_max"] == 1 << 20
    assert without["in_pass_factors"] == []
    report = (on / "model.md").read_text()
    assert "In-pass factors (`--in-pass`, default on)" in report
    assert "| calibration | P | nodes | after | n B | streamed B/rank (max) | fresh µs | in pass µs | factor |" in report
    assert "In-pass factors: off (`--in-pass off`)" in (off / "model.md").read_text()
    assert "PROBLEM" not in done.stderr
    assert "gather boundaries × an in-pass factor of 1.10 … 2.00, calibrated at 4 boundaries" in done.stdout


def test_layers_whose_serial_time_is_of_another_kernel_take_their_measured_compute(tmp_path, run2):
    """The serial reference fused conv + pool + GELU (/timing/serial_fused_with_next), the run computed them apart:
    those layers' predicted compute is each rank's measured median and the source says so; fc's stays the serial
    share. (With the serial reference computed as the run was, every layer is the serial share:
    test_model.py's crafted case.)"""
    run = load(run2).runs[0]
    measured = stats.median_per_rank(run, "compute").max(axis=1)
    share = (run.serial_layer[:, None] * run.ops / stats.layer_ops(run)[:, None]).max(axis=1)
    path = _calibrated_copy(run2, tmp_path / "fused.h5", 2, 1, fresh=True)
    with h5py.File(path, "r+") as f:
        f["timing/serial_fused_with_next"][...] = np.array([1, 1, 0, 0])
        f["layers/fused_with_next"][...] = np.zeros(4, dtype=np.int64)
    out = tmp_path / "model"
    analysis("model", path, "--out", out)
    rows = [r for r in json.loads((out / "model.json").read_text())["per_layer"] if r["layer"] != "whole pass"]
    assert [r["predicted_compute_s"] for r in rows] == pytest.approx([*measured[:3], share[3]], rel=1e-12)
    source = rows[0]["compute_source"]
    assert "conv, pool, gelu: each rank's measured compute median" in source and "--fusion off" in source
    assert "conv, pool, gelu: each rank's measured compute median" in (out / "model.md").read_text()
