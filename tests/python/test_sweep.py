"""`sweep` over a strong-scaling series P = 1, 2, 3 of real runs, plus a --compare style file; a weak-scaling sweep
(batch = b·P) of real runs; and the rules that sort runs into strong and weak series."""
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from analysis.sweep import _series
from conftest import analysis, assert_figure, make_run


def test_sweep(tmp_path, run1, run2, run3, compare_file):
    analysis("sweep", run1, run2, run3, compare_file, "--out", tmp_path)
    for stem in ("speedup", "efficiency", "consolidation"):
        assert_figure(tmp_path, stem)
    assert not (tmp_path / "weak_scaling.png").exists()
    sweep = (tmp_path / "sweep.md").read_text()
    assert "5 runs from 4 files: 2 strong-scaling series" in sweep and "and 0 weak-scaling series" in sweep
    for run in (run1, run2, run3):
        assert f"| {run.name} |" in sweep
    assert "[shared_per-layer]" in sweep  # each compare group is a point of its own
    assert "| run_np3.h5 | 3 |" in sweep


@pytest.fixture(scope="module")
def weak_runs(tmp_path_factory):
    """A tiny weak-scaling sweep made by the real binary: b = 2 images per rank, P = 1 (batch 2) and P = 2 (batch 4)."""
    directory = tmp_path_factory.mktemp("weak")
    return [make_run(directory, nprocs, "--batch", str(2 * nprocs)) for nprocs in (1, 2)]


def _forward_time(path) -> float:
    """The sweep's T: per iteration the slowest rank's forward pass, median over iterations."""
    with h5py.File(path) as f:
        return float(np.median(f["timing/forward_s"][...].max(axis=1)))


@pytest.mark.parametrize("option", [None, "--weak"])
def test_weak_sweep(tmp_path, weak_runs, option):
    """Detected (or forced with --weak): one weak series of both runs, efficiency T(1, b=2) / T(2, batch 4) and
    throughput batch / T in its table, the weak-scaling figure, and no strong-scaling figures."""
    analysis("sweep", *weak_runs, "--out", tmp_path, *([option] if option else []))
    assert_figure(tmp_path, "weak_scaling")
    assert_figure(tmp_path, "consolidation")
    assert not (tmp_path / "speedup.png").exists() and not (tmp_path / "efficiency.png").exists()
    sweep = (tmp_path / "sweep.md").read_text()
    assert "2 runs from 2 files: 0 strong-scaling series" in sweep and "and 1 weak-scaling series" in sweep
    assert "## Weak scaling" in sweep and "b = 2 per rank (batch b·P)" in sweep
    one, two = (_forward_time(path) for path in weak_runs)
    with h5py.File(weak_runs[1]) as f:
        serial_two = float(f["meta"].attrs["serial_forward_s"])
    weak_section = sweep[sweep.index("## Weak scaling"):sweep.index("## Consolidation")]
    rows = {line.split(" | ")[0].lstrip("| "): line.strip(" |").split(" | ")
            for line in weak_section.splitlines() if line.startswith("| run_np")}
    assert rows["run_np1.h5"][1:3] == ["1", "2"] and rows["run_np2.h5"][1:3] == ["2", "4"]
    assert rows["run_np1.h5"][5] == "1.00"
    assert float(rows["run_np2.h5"][5]) == pytest.approx(one / two, abs=0.006)  # efficiency vs P = 1
    assert float(rows["run_np2.h5"][6]) == pytest.approx(serial_two / (2 * two), abs=0.006)  # vs own serial
    assert float(rows["run_np2.h5"][-2].replace(",", "")) == pytest.approx(4 / two, abs=1)  # images/s


def test_weak_runs_as_strong(tmp_path, weak_runs):
    """--strong groups by batch: two one-point series, no weak-scaling figure."""
    analysis("sweep", *weak_runs, "--out", tmp_path, "--strong")
    assert_figure(tmp_path, "speedup")
    assert not (tmp_path / "weak_scaling.png").exists()
    assert "2 strong-scaling series" in (tmp_path / "sweep.md").read_text()


def _runs(*pairs, consolidation="allgatherv"):
    return [SimpleNamespace(consolidation=consolidation, plan="per-layer", network="n", batch=batch, nprocs=nprocs)
            for nprocs, batch in pairs]


def _shape(series):
    return sorted((key[3], key[4], tuple((run.nprocs, run.batch) for run in members))
                  for key, members in series.items())


def test_series_detection():
    """Which series runs join without --weak or --strong."""
    # a weak sweep: one series, no strong ones
    strong, weak = _series(_runs((1, 8), (2, 16), (4, 32), (8, 64)))
    assert not strong and _shape(weak) == [("b", 8, ((1, 8), (2, 16), (4, 32), (8, 64)))]
    # two strong sweeps at batches 4 and 8 are not mistaken for weak ones (P = 1 at 4 and P = 2 at 8 share b = 4)
    strong, weak = _series(_runs((1, 4), (2, 4), (4, 4), (1, 8), (2, 8), (4, 8)))
    assert not weak and _shape(strong) == [("B", 4, ((1, 4), (2, 4), (4, 4))), ("B", 8, ((1, 8), (2, 8), (4, 8)))]
    # a strong and a weak sweep together: both series, the P = 1 run at batch 8 in each
    strong, weak = _series(_runs((1, 8), (2, 8), (4, 8), (2, 16), (4, 32)))
    assert _shape(strong) == [("B", 8, ((1, 8), (2, 8), (4, 8)))]
    assert _shape(weak) == [("b", 8, ((1, 8), (2, 16), (4, 32)))]
    # a strong sweep at batch 1 (batch per rank 1, 1/2, 1/3) and a lone run of another configuration
    strong, weak = _series(_runs((1, 1), (2, 1), (3, 1)) + _runs((3, 1), consolidation="shared"))
    assert not weak and len(strong) == 2
    # forced
    assert not _series(_runs((1, 4), (2, 4)), "weak")[0] and len(_series(_runs((1, 4), (2, 4)), "weak")[1]) == 2
    assert not _series(_runs((1, 8), (2, 16)), "strong")[1]


def test_sweep_of_compare_splits(tmp_path, splits_subset, rows_run3, run3):
    """A --compare splits file: each group is a series of its own, labelled by its decomposition; a run with
    --split is not put in the same series as a run of the same plan without it."""
    analysis("sweep", splits_subset, rows_run3, run3, "--out", tmp_path)
    sweep = (tmp_path / "sweep.md").read_text()
    for decomposition in ("channel", "fused", "rows", "sample"):
        assert f"### allgatherv, {decomposition} — " in sweep
        assert f"| allgatherv | {decomposition} | 2 |" in sweep  # the consolidation table's scheme column
    assert "### allgatherv, per-layer conv=rows,pool=rows,gelu=rows — " in sweep
    assert "### allgatherv, per-layer — " in sweep
    assert_figure(tmp_path, "consolidation")


def test_series_by_decomposition():
    """Runs of one plan but different decompositions (or --split) form different series."""
    runs = [SimpleNamespace(consolidation="allgatherv", plan="per-layer", scheme=scheme, network="n", batch=4,
                            nprocs=nprocs) for scheme in ("channel", "rows") for nprocs in (1, 2)]
    strong, weak = _series(runs)
    assert not weak and sorted(key[1] for key in strong) == ["channel", "rows"]
