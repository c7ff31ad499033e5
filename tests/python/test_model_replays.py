"""`analysis model --jitter S --replays N`: every predicted pass played again with each rank's compute moved by a
normal deviate of S seconds, and each layer's least, median and largest replayed time reported beside the
prediction and the measurement (model.json, model.md)."""
import json

import numpy as np
import pytest

from conftest import analysis
from test_model import _calibrated_copy


def _model(tmp_path, run3, name, *options):
    intra = _calibrated_copy(run3, tmp_path / "intra.h5", 4, 1)
    out = tmp_path / name
    analysis("model", intra, run3, "--out", out, *options)
    return json.loads((out / "model.json").read_text()), (out / "model.md").read_text()


def test_replays_spread_each_layer_and_repeat(tmp_path, run3):
    """A jitter far above the compute (1 ms against tens of µs) must move the layers: the least replay lies below
    the largest for every row, the median between them; the measurement is said to lie within the replays exactly
    when it does; the same inputs give the same replays (seeded). (Without --jitter nothing is replayed:
    test_model.test_model_fits_calibration_by_default.)"""
    parameters, report = _model(tmp_path, run3, "jittered", "--jitter", "1e-3", "--replays", "6")
    rows = [r for r in parameters["per_layer"] if "skipped" not in r]
    assert rows and all(r["replays"] == 6 and r["jitter_s"] == 1e-3 for r in rows)
    for r in rows:
        assert r["replayed_layer_min_s"] < r["replayed_layer_max_s"], r["layer"]
        assert r["replayed_layer_min_s"] <= r["replayed_layer_median_s"] <= r["replayed_layer_max_s"]
        within = r["replayed_layer_min_s"] <= r["measured_layer_s"] <= r["replayed_layer_max_s"]
        assert r["measured_within_replays"] == within
    # a whole pass moved by up to 1 ms per layer is longer in some replay than the unmoved prediction
    whole = next(r for r in rows if r["layer"] == "whole pass")
    assert whole["replayed_layer_max_s"] > whole["predicted_layer_s"]
    assert "How sensitive each layer's prediction is (`--jitter 0.001`)" in report
    assert f"| {rows[0]['run']} | {rows[0]['p']} | {rows[0]['layer']} |" in report

    again, _ = _model(tmp_path, run3, "again", "--jitter", "1e-3", "--replays", "6")
    assert again["per_layer"] == parameters["per_layer"]


def test_a_small_jitter_moves_a_well_conditioned_pass_little(tmp_path, run3):
    """P = 3 on one node, 1 ns of jitter: every layer's replays stay within 1% of its prediction (the compute moves
    by nanoseconds, and nothing here turns that into microseconds)."""
    parameters, _ = _model(tmp_path, run3, "small", "--jitter", "1e-9", "--replays", "4")
    for r in parameters["per_layer"]:
        if "skipped" in r:
            continue
        assert r["replayed_layer_min_s"] == pytest.approx(r["predicted_layer_s"], rel=0.01), r["layer"]
        assert r["replayed_layer_max_s"] == pytest.approx(r["predicted_layer_s"], rel=0.01), r["layer"]
        assert np.isfinite(r["replayed_layer_median_s"])
