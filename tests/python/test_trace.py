"""`trace` writes valid Chrome/Perfetto JSON: one named track per rank, every phase of every iteration; at the times
the file records when it has timestamps, rebuilt from the durations when it does not."""
import json
from collections import defaultdict

import h5py
import numpy as np
import pytest

from conftest import analysis

TOLERANCE_US = 1e-6  # float rounding of ts + dur; events are rounded to the ns at both ends


def _trace(tmp_path, run):
    out = tmp_path / "trace.json"
    analysis("trace", run, "--out", out)
    return json.loads(out.read_text())


def _read(run):
    with h5py.File(run) as f:
        timing = {name: f[f"timing/{name}"][...] for name in f["timing"]}
        hosts = [h.decode() for h in f["ranks/host"][...]]
        layers = [name.decode() for name in f["layers/name"][...]]
    return timing, hosts, layers


@pytest.mark.parametrize("which", ["run3", "untimed_run3"])
def test_trace_tracks_and_events(tmp_path, request, which):
    """Both kinds of file: one named track per rank, one process, every phase of every iteration, iterations in
    order and not overlapping, and the metadata saying where the times came from."""
    run = request.getfixturevalue(which)
    trace = _trace(tmp_path, run)
    events = trace["traceEvents"]
    timing, hosts, _ = _read(run)
    iterations, layers, ranks = timing["compute_s"].shape
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {rank: f"rank {rank} ({hosts[rank]})" for rank in range(ranks)}
    complete = [e for e in events if e["ph"] == "X"]
    assert {e["tid"] for e in complete} == set(range(ranks))
    assert {e["pid"] for e in events} == {0}
    # per rank and iteration: forward, broadcast wait + transfer, and compute/wait/transfer per layer
    assert len(complete) == iterations * ranks * (1 + 2 + 3 * layers)
    assert all(e["dur"] >= 0 for e in complete)
    expected = "timestamps" if which == "run3" else "durations"
    assert trace["otherData"]["timeline"] == {run.name: expected}
    assert expected in trace["otherData"]["timeline_meaning"]
    for rank in range(ranks):
        forwards = sorted((e for e in complete if e["name"] == "forward" and e["tid"] == rank),
                          key=lambda e: e["ts"])
        assert [e["args"]["iteration"] for e in forwards] == list(range(iterations))
        for before, after in zip(forwards, forwards[1:]):
            assert after["ts"] >= before["ts"] + before["dur"] - 1e-3, "iterations must not overlap"


def _by_rank_and_iteration(events):
    groups = defaultdict(list)
    for e in events:
        if e["ph"] == "X" and e["name"] != "forward":
            groups[e["tid"], e["args"]["iteration"]].append(e)
    return groups


def test_trace_uses_timestamps(tmp_path, run3):
    """With timestamps, every rank's phases of one iteration are in execution order, do not overlap and lie inside
    the pass's forward event, and each boundary's transfer ends at the file's boundary exit (within 1 µs)."""
    events = _trace(tmp_path, run3)["traceEvents"]
    timing, _, layers = _read(run3)
    iterations, n_layers, ranks = timing["compute_s"].shape
    order = ["broadcast wait", "broadcast transfer"] + [f"{layer} {phase}" for layer in layers
                                                        for phase in ("compute", "wait", "transfer")]
    forwards = {(e["tid"], e["args"]["iteration"]): e for e in events if e["ph"] == "X" and e["name"] == "forward"}
    groups = _by_rank_and_iteration(events)
    assert len(groups) == iterations * ranks
    for (rank, iteration), phases in groups.items():
        assert [e["name"] for e in phases] == order, "phases in execution order"
        for before, after in zip(phases, phases[1:]):
            assert after["ts"] >= before["ts"] + before["dur"] - TOLERANCE_US, \
                f"rank {rank} iteration {iteration}: {before['name']} overlaps {after['name']}"
        forward = forwards[rank, iteration]
        assert forward["ts"] == pytest.approx(timing["forward_start_s"][iteration, rank] * 1e6, abs=1e-3)
        assert phases[0]["ts"] >= forward["ts"] - TOLERANCE_US
        assert phases[-1]["ts"] + phases[-1]["dur"] <= forward["ts"] + forward["dur"] + TOLERANCE_US
        by_name = {e["name"]: e for e in phases}
        for index, layer in enumerate(layers):
            transfer, compute = by_name[f"{layer} transfer"], by_name[f"{layer} compute"]
            exit_us = timing["boundary_exit_s"][iteration, index, rank] * 1e6
            enter_us = timing["boundary_enter_s"][iteration, index, rank] * 1e6
            assert transfer["ts"] + transfer["dur"] == pytest.approx(exit_us, abs=1.0)
            assert compute["ts"] + compute["dur"] == pytest.approx(enter_us, abs=1.0)
            assert compute["dur"] == pytest.approx(timing["compute_s"][iteration, index, rank] * 1e6, abs=1.0)
        assert by_name["broadcast wait"]["ts"] == pytest.approx(
            timing["broadcast_enter_s"][iteration, rank] * 1e6, abs=1.0)
    # the time axis is the file's own: 0 is the first timed pass's earliest start, and the gaps are kept
    starts = np.array([[forwards[rank, i]["ts"] for rank in range(ranks)] for i in range(iterations)])
    assert starts[0].min() == pytest.approx(0.0, abs=1e-3)
    assert np.allclose(starts, timing["forward_start_s"] * 1e6, atol=1e-3)


def test_trace_rebuilt_from_durations(tmp_path, untimed_run3):
    """Without timestamps, each rank's phases are laid end to end from the start of its iteration, as long as the
    recorded durations, and every rank starts the iteration at the same time."""
    events = _trace(tmp_path, untimed_run3)["traceEvents"]
    timing, _, _ = _read(untimed_run3)
    forwards = {(e["tid"], e["args"]["iteration"]): e for e in events if e["ph"] == "X" and e["name"] == "forward"}
    for (rank, iteration), phases in _by_rank_and_iteration(events).items():
        assert phases[0]["ts"] == pytest.approx(forwards[0, iteration]["ts"], abs=1e-3)
        for before, after in zip(phases, phases[1:]):
            assert after["ts"] == pytest.approx(before["ts"] + before["dur"], abs=2e-3)
        total = sum(e["dur"] for e in phases)
        assert total == pytest.approx((timing["compute_s"][iteration, :, rank].sum()
                                       + timing["wait_s"][iteration, :, rank].sum()
                                       + timing["transfer_s"][iteration, :, rank].sum()
                                       + timing["broadcast_wait_s"][iteration, rank]
                                       + timing["broadcast_transfer_s"][iteration, rank]) * 1e6, abs=0.05)


@pytest.mark.parametrize("which", ["rows_run3", "packed_rows_run3"])
def test_trace_of_rows_run_pack_unpack_and_halo(tmp_path, request, which):
    """A fresh rows run computes its boxes in place: each rows step is compute alone, then its boundary. A rows file
    from before the box kernels (packed_rows_run3: pack and unpack recorded) has pack, compute, unpack in that
    order on its rows steps, back to back, as long as the file's durations. Either way an exchange boundary is one
    halo event (point to point, no wait/transfer split) as long as /timing/halo_s, and where a boundary is not an
    exchange the step's last phase ends at its enter stamp. The fc step (by feature, gathered) has neither pack nor
    halo."""
    run = request.getfixturevalue(which)
    events = _trace(tmp_path, run)["traceEvents"]
    timing, _, layers = _read(run)
    iterations, _, ranks = timing["compute_s"].shape
    with h5py.File(run) as f:
        splits = [s.decode() for s in f["layers/split"][...]]
        boundaries = [s.decode() for s in f["layers/boundary"][...]]
    assert {"pack_s", "unpack_s", "halo_s"} <= set(timing)
    assert splits[:3] == ["rows"] * 3 and "exchange" in boundaries
    old = which == "packed_rows_run3"
    assert (timing["pack_s"].any() and timing["unpack_s"].any()) == old  # fresh files record no copies
    packed = [old and split == "rows" for split in splits]
    phases = {index: (("pack", "compute", "unpack") if packed[index] else ("compute",))
              + (("halo",) if boundaries[index] == "exchange" else ("wait", "transfer"))
              for index in range(len(splits))}
    order = ["broadcast wait", "broadcast transfer"] + [f"{layer} {phase}" for index, layer in enumerate(layers)
                                                        for phase in phases[index]]
    groups = _by_rank_and_iteration(events)
    assert len(groups) == iterations * ranks
    for (rank, iteration), found in groups.items():
        assert [e["name"] for e in found] == order
        for before, after in zip(found, found[1:]):
            assert after["ts"] >= before["ts"] + before["dur"] - TOLERANCE_US, "phases must not overlap"
        by_name = {e["name"]: e for e in found}
        for index, layer in enumerate(layers):
            for phase in phases[index]:
                if phase in ("pack", "compute", "unpack", "halo"):
                    event = by_name[f"{layer} {phase}"]
                    assert event["cat"] == phase
                    assert event["dur"] == pytest.approx(timing[f"{phase}_s"][iteration, index, rank] * 1e6, abs=1.0)
            work = [by_name[f"{layer} {phase}"] for phase in phases[index] if phase in ("pack", "compute", "unpack")]
            for before, after in zip(work, work[1:]):
                assert after["ts"] == pytest.approx(before["ts"] + before["dur"], abs=1e-2)
            if boundaries[index] != "exchange":
                enter_us = timing["boundary_enter_s"][iteration, index, rank] * 1e6
                assert work[-1]["ts"] + work[-1]["dur"] == pytest.approx(enter_us, abs=1.0)
