"""Which steps packed their region is read from the recorded times (Run.packed), not from the split's name.

Before the kernels computed boxes in place, a rows, sample, tiles or 2-D step copied its region into a packed
buffer and back around its kernel, timed as /timing/pack_s and unpack_s; since, every split computes in place and
those datasets are all zeros (kept in the schema, so old files still read). Fresh files must therefore show no
packing for any split, and files from before (made here by writing pack and unpack times into a fresh file, the
packed_rows_run3 fixture) must still show it for exactly the steps that recorded it.
"""
import h5py
import numpy as np
import pytest

from analysis import stats
from analysis.results import load
from conftest import PACK_SHARE, UNPACK_SHARE


def test_fresh_rows_run_records_and_shows_no_packing(rows_run3):
    """cnnpar_mpi writes pack = unpack = 0 for every step, rows steps included, and the analysis sees no packed step:
    compute alone before the boundary, no pack time."""
    with h5py.File(rows_run3) as f:
        assert "pack_s" in f["timing"] and "unpack_s" in f["timing"], "the events stay in the schema"
        assert not f["timing/pack_s"][...].any() and not f["timing/unpack_s"][...].any()
    run = load(rows_run3).runs[0]
    assert run.split[:3] == ("rows",) * 3
    assert run.packed == (False,) * len(run.layers)
    assert not stats.packs(run)
    assert stats.step_phases(run, 0) == ("compute", "halo")  # conv: rows, its boundary an exchange
    assert all(phase not in ("pack", "unpack") for i in range(len(run.layers)) for phase in stats.step_phases(run, i))
    assert not stats.pack_time(run).any()


def test_old_rows_file_shows_packing(packed_rows_run3, rows_run3):
    """A file from before the box kernels: its rows steps packed, its fc step (by feature) did not; their phases are
    pack, compute, unpack, and the pack time and the parallel time count the recorded copies."""
    run = load(packed_rows_run3).runs[0]
    fresh = load(rows_run3).runs[0]
    expected = tuple(split == "rows" for split in run.split)
    assert run.packed == expected and any(expected) and not all(expected)
    assert stats.packs(run)
    for i in range(len(run.layers)):
        work = ("pack", "compute", "unpack") if expected[i] else ("compute",)
        assert stats.step_phases(run, i)[:len(work)] == work
    packing = stats.pack_time(run)
    assert (packing[np.array(expected)] > 0).all() and not packing[~np.array(expected)].any()
    # the slowest rank's pack + unpack: the fixture's share of each rows step's compute, rank by rank
    share = np.median(((PACK_SHARE + UNPACK_SHARE) * fresh.compute).max(axis=2), axis=0)
    assert packing == pytest.approx(np.where(expected, share, 0.0), rel=1e-9, abs=1e-15)
    # pack + compute + unpack is the fresh file's compute: the parallel time is the same
    assert stats.layer_parallel_time(run) == pytest.approx(stats.layer_parallel_time(fresh), rel=1e-9)


def test_packed_is_decided_by_the_data_on_any_rank_and_iteration(tmp_path, run3):
    """A channel-split step is packed as soon as one rank in one iteration recorded an unpack (or a pack) time,
    and only that step: the split's name plays no part."""
    path = tmp_path / "one_unpack.h5"
    path.write_bytes(run3.read_bytes())
    with h5py.File(path, "r+") as f:
        unpack = f["timing/unpack_s"][...]
        iterations, layers, ranks = unpack.shape
        unpack[iterations - 1, 1, ranks - 1] = 1e-7
        f["timing/unpack_s"][...] = unpack
    run = load(path).runs[0]
    assert run.split[1] != "rows"
    assert run.packed == tuple(layer == 1 for layer in range(layers))
    assert stats.step_phases(run, 1)[:3] == ("pack", "compute", "unpack")
    assert load(run3).runs[0].packed == (False,) * layers
