"""`trace` writes valid Chrome/Perfetto JSON: one named track per rank, every phase of every iteration."""
import json

import h5py

from conftest import analysis


def test_trace(tmp_path, run3):
    out = tmp_path / "trace.json"
    analysis("trace", run3, "--out", out)
    events = json.loads(out.read_text())["traceEvents"]
    with h5py.File(run3) as f:
        iterations, layers, ranks = f["timing/compute_s"].shape
        hosts = [h.decode() for h in f["ranks/host"][...]]
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {rank: f"rank {rank} ({hosts[rank]})" for rank in range(ranks)}
    complete = [e for e in events if e["ph"] == "X"]
    assert {e["tid"] for e in complete} == set(range(ranks))
    assert {e["pid"] for e in events} == {0}
    # per rank and iteration: forward, broadcast wait + transfer, and compute/wait/transfer per layer
    assert len(complete) == iterations * ranks * (1 + 2 + 3 * layers)
    for rank in range(ranks):
        phases = [e for e in complete if e["tid"] == rank and e["name"] != "forward"]
        starts = [e["ts"] for e in phases]
        assert starts == sorted(starts), "phases of a track must be laid out in order"
        assert all(e["dur"] >= 0 for e in phases)
    forwards = sorted((e for e in complete if e["name"] == "forward" and e["tid"] == 0), key=lambda e: e["ts"])
    for before, after in zip(forwards, forwards[1:]):
        assert after["ts"] >= before["ts"] + before["dur"] - 1e-3, "iterations must not overlap"
