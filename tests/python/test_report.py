"""`report` on a real run, and on a --compare style file (one section per combination)."""
import h5py
import numpy as np

from analysis import markdown, stats
from analysis.results import load
from conftest import analysis, assert_figure

FIGURES = ("timeline", "breakdown", "bytes", "imbalance")


def test_report_writes_figures_and_tables(tmp_path, run3):
    analysis("report", run3, "--out", tmp_path)
    report = (tmp_path / "report.md").read_text()
    for stem in FIGURES:
        assert_figure(tmp_path, stem)
        assert f"]({stem}.png)" in report
    with h5py.File(run3) as f:
        received = f["comm/bytes_received"][...]
        layers = [name.decode() for name in f["layers/name"][...]]
    for layer in layers:
        assert f"| {layer} " in report
    assert f"{int(received[0, 2]):,}" in report  # the numbers behind the bytes figure
    assert "| forward_s (recorded) |" in report and "| rank 2 |" in report
    # the timeline from the file's timestamps, with each rank's start of the pass
    assert "Timeline source: **timestamps**" in report and "| pass start (timestamp) |" in report


def test_report_matrices_of_allgatherv_run(tmp_path, run3):
    """Private buffers: the MPI matrix alone, and the note that reads in place would not appear in it."""
    analysis("report", run3, "--out", tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert_figure(tmp_path, "matrix")
    assert "do not appear here" in report and "read in place, all ranks" not in report


def test_report_matrices_of_shared_windows(tmp_path, windows_run3):
    """Shared windows: beside each MPI map the map of what was read in place, captioned as no MPI traffic, and a
    table whose numbers are the file's, stage by stage."""
    analysis("report", windows_run3, "--out", tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert_figure(tmp_path, "matrix")
    assert "read in place through the shared window, not MPI traffic" in report
    with h5py.File(windows_run3) as f:
        layers = [name.decode() for name in f["layers/name"][...]]
        mpi = f["comm/matrix"][...].sum(axis=(1, 2))
        read = np.vstack([f["comm/input_bytes_read_in_place"][...][None, :], f["comm/bytes_read_in_place"][...]])
        matrix = f["comm/shared_read_matrix"][...]
    assert read.any() and mpi.any(), "hierarchical on two nodes: both kinds of traffic"
    assert (matrix.sum(axis=1) == read).all()
    for k, stage in enumerate(["input"] + layers):
        assert f"| {stage} | {int(mpi[k]):,} | {int(read[k].sum()):,} | {int(read[k].max()):,} |" in report


def test_report_of_shared_windows_before_reads_were_recorded(tmp_path, windows_run3):
    """A shared-window file written before reads in place were recorded loads without them, and its report draws the
    MPI maps alone."""
    old = tmp_path / "old.h5"
    old.write_bytes(windows_run3.read_bytes())
    with h5py.File(old, "r+") as f:
        for name in ("comm/shared_read_matrix", "comm/bytes_read_in_place", "comm/input_bytes_read_in_place"):
            del f[name]
    analysis("report", old, "--out", tmp_path / "report")
    report = (tmp_path / "report" / "report.md").read_text()
    assert_figure(tmp_path / "report", "matrix")
    assert "do not appear here" in report and "read in place, all ranks" not in report


def test_report_of_compare_file(tmp_path, compare_file):
    analysis("report", compare_file, "--out", tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "## allgatherv, per-layer" in report and "## shared, per-layer" in report
    for prefix in ("allgatherv_per_layer", "shared_per_layer"):
        for stem in FIGURES:
            assert_figure(tmp_path, f"{prefix}_{stem}")


def test_report_without_timestamps(tmp_path, untimed_run3):
    """A file written before timestamps were recorded: the timeline is rebuilt from durations, and says so."""
    analysis("report", untimed_run3, "--out", tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "Timeline source: **durations**" in report and "pass start" not in report
    assert_figure(tmp_path, "timeline")


def test_report_of_rows_run(tmp_path, rows_run3):
    """A rows run: its kernels compute their boxes in place, so no step packs. The timeline table has compute and
    the halo exchange, no pack or unpack rows; the breakdown has no pack + unpack column, and the parallel time is
    compute + halo + wait + transfer, as the terminal's Summary says."""
    analysis("report", rows_run3, "--out", tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "| conv compute |" in report and "| gelu compute |" in report
    assert "pack |" not in report and "unpack" not in report and "packed" not in report
    assert "pack + unpack" not in report and "slowest rank's compute + halo + wait + transfer" in report
    assert "| conv halo |" in report and "| conv wait |" not in report  # conv's boundary is an exchange
    assert "`--split conv=rows,pool=rows,gelu=rows`" in report
    for stem in FIGURES:
        assert_figure(tmp_path, stem)


def test_report_of_rows_file_from_before_box_kernels(tmp_path, packed_rows_run3):
    """A rows file written when the rows steps still copied their region into a packed buffer (pack and unpack
    recorded): the timeline table has each rows step's pack and unpack with the file's durations, the breakdown a
    pack + unpack column with the slowest rank's median, and the parallel time counts them."""
    analysis("report", packed_rows_run3, "--out", tmp_path)
    report = (tmp_path / "report.md").read_text()
    run = load(packed_rows_run3).runs[0]
    iteration = stats.representative_iteration(run)
    for layer in ("conv", "pool", "gelu"):
        index = run.layers.index(layer)
        for phase in ("pack", "unpack"):
            values = " | ".join(markdown.us(v) for v in getattr(run, phase)[iteration, index])
            assert f"| {layer} {phase} | {values} |" in report
    assert "| fc pack |" not in report and "| fc unpack |" not in report  # fc is split by feature: nothing packed
    assert "| pack + unpack |" in report and "pack + compute + unpack + halo + wait + transfer" in report
    assert "predates the box kernels" in report  # the timeline note: compute began before unpack
    conv = run.layers.index("conv")
    assert (f"| conv | {markdown.us(run.serial_layer[conv])} | {markdown.us(stats.phase_times(run)['compute'][conv])}"
            f" | {markdown.us(stats.pack_time(run)[conv])} | {markdown.us(stats.phase_times(run)['halo'][conv])} |"
            in report)
    assert "| conv halo |" in report and "| conv wait |" not in report
    for stem in FIGURES:
        assert_figure(tmp_path, stem)


def test_report_of_compare_splits(tmp_path, splits_subset):
    """A --compare splits file: one section per consolidation and decomposition, named by /meta@decomposition; an
    exchange boundary's time is its halo column."""
    analysis("report", splits_subset, "--out", tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "combinations of consolidation and decomposition" in report
    sections = [("allgatherv", decomposition) for decomposition in ("channel", "fused", "rows", "sample")]
    for consolidation, decomposition in sections + [("shared", "channel"), ("shared", "sample")]:
        assert f"## {consolidation}, {decomposition}\n" in report
        assert_figure(tmp_path, f"{consolidation}_{decomposition}_breakdown")
    assert "(decomposition rows)" in report and "| halo |" in report
