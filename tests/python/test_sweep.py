"""`sweep` over a strong-scaling series P = 1, 2, 3 of real runs, plus a --compare style file."""
from conftest import analysis, assert_figure


def test_sweep(tmp_path, run1, run2, run3, compare_file):
    analysis("sweep", run1, run2, run3, compare_file, "--out", tmp_path)
    for stem in ("speedup", "efficiency", "consolidation"):
        assert_figure(tmp_path, stem)
    sweep = (tmp_path / "sweep.md").read_text()
    for run in (run1, run2, run3):
        assert f"| {run.name} |" in sweep
    assert "[shared_per-layer]" in sweep  # each compare group is a point of its own
    assert "| run_np3.h5 | 3 |" in sweep
