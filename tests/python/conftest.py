"""Fixtures for the analysis/ tests: real results files made by the real binary, and a way to run the CLI.

Run with Debian's Python from the repository root: `/usr/bin/python3 -m pytest tests/python`. The binary comes
from $CNNPAR_BUILD_DIR (default <repo>/build; scripts/build.sh makes it). The runs are tiny (5 iterations) so the
whole suite stays under two minutes on a 2-core machine.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import h5py
import matplotlib.image
import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # `import analysis` from any working directory

MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1"}
TIMEOUT_S = 120


def _binary() -> pathlib.Path:
    build = pathlib.Path(os.environ.get("CNNPAR_BUILD_DIR", REPO / "build"))
    binary = build / "cnnpar_mpi"
    if not binary.is_file():
        pytest.fail(f"{binary} not found: build it with scripts/build.sh (or set CNNPAR_BUILD_DIR)")
    if shutil.which("mpirun") is None:
        pytest.fail("mpirun not found: install Open MPI (scripts/install_deps.sh)")
    return binary


def make_run(directory: pathlib.Path, nprocs: int, *extra: str) -> pathlib.Path:
    """Runs cnnpar_mpi under mpirun and returns the results file it wrote."""
    output = directory / f"run_np{nprocs}.h5"
    command = ["mpirun", "-np", str(nprocs), str(_binary()), "--quiet", "--iterations", "5", "--warmup", "1",
               "--output", str(output), *extra]
    done = subprocess.run(command, env={**os.environ, **MPI_ENV}, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return output


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def run3(runs_dir) -> pathlib.Path:
    """The main results file: P = 3 (uneven splits 11/11/10), exactly the command of the analysis brief."""
    return make_run(runs_dir, 3)


@pytest.fixture(scope="session")
def run2(runs_dir) -> pathlib.Path:
    """P = 2 with the input stored (--dump-tensors final), so the layout picture draws the real image."""
    return make_run(runs_dir, 2, "--dump-tensors", "final")


@pytest.fixture(scope="session")
def run1(runs_dir) -> pathlib.Path:
    return make_run(runs_dir, 1)


@pytest.fixture(scope="session")
def compare_file(run3, runs_dir) -> pathlib.Path:
    """A `--compare`-style file (one group per combination under /compare) built from the real P = 3 run, until
    cnnpar_mpi writes such files itself."""
    path = runs_dir / "compare.h5"
    with h5py.File(run3, "r") as source, h5py.File(path, "w") as target:
        target.attrs.update(source.attrs)
        for consolidation, plan in (("allgatherv", "per-layer"), ("shared", "per-layer")):
            group = target.create_group(f"compare/{consolidation}_{plan}")
            for key in source:
                source.copy(source[key], group, name=key)
            group["meta"].attrs["consolidation"] = consolidation
            group["meta"].attrs["plan"] = plan
    return path


@pytest.fixture(scope="session")
def rows_run3(tmp_path_factory) -> pathlib.Path:
    """P = 3, B = 4, conv, pool and GELU split by rows (9/9/8 and 5/4/4 rows: a one-row halo), fc by feature."""
    return make_run(tmp_path_factory.mktemp("rows"), 3, "--split", "conv=rows,pool=rows,gelu=rows", "--batch", "4")


PACK_SHARE, UNPACK_SHARE = 0.25, 0.125  # of a rows step's recorded compute, in the packed_rows_run3 fixture


@pytest.fixture(scope="session")
def packed_rows_run3(rows_run3, runs_dir) -> pathlib.Path:
    """The rows run as a file written before the kernels computed boxes in place: there each rows step copied its
    region into a packed buffer (pack), ran its kernel on it (compute) and copied the result back (unpack), stamped
    back to back before the boundary. A fresh file records pack = unpack = 0, so this copy moves a share of each rows
    step's compute into pack and unpack (PACK_SHARE, UNPACK_SHARE): their sum is unchanged, so the timestamps,
    forward_s and every parallel time stay as consistent as the original's. Steps of other splits keep zeros."""
    path = runs_dir / "packed_rows_np3.h5"
    path.write_bytes(rows_run3.read_bytes())
    with h5py.File(path, "r+") as f:
        splits = [s.decode() for s in f["layers/split"][...]]
        compute = f["timing/compute_s"][...]
        pack, unpack = np.zeros_like(compute), np.zeros_like(compute)
        for layer, split in enumerate(splits):
            if split == "rows":
                pack[:, layer, :] = compute[:, layer, :] * PACK_SHARE
                unpack[:, layer, :] = compute[:, layer, :] * UNPACK_SHARE
        assert pack.any(), "the rows run has rows steps"
        f["timing/pack_s"][...] = pack
        f["timing/unpack_s"][...] = unpack
        f["timing/compute_s"][...] = compute - pack - unpack
    return path


@pytest.fixture(scope="session")
def windows_run3(tmp_path_factory) -> pathlib.Path:
    """P = 3, B = 2, hierarchical on emulated nodes of 2 ranks: within node 0 ranks read each other's slices in
    place through the shared window, and the leaders exchange their nodes' blocks through MPI."""
    return make_run(tmp_path_factory.mktemp("windows"), 3, "--consolidation", "hierarchical", "--ranks-per-node", "2",
                    "--batch", "2")


@pytest.fixture(scope="session")
def splits_file(tmp_path_factory) -> pathlib.Path:
    """A real `--compare splits` file at P = 2, B = 2: groups /compare/<consolidation>_<decomposition> for the
    decompositions channel, fused, rows and sample, each with /meta@decomposition."""
    return make_run(tmp_path_factory.mktemp("splits"), 2, "--compare", "splits", "--batch", "2")


@pytest.fixture(scope="session")
def splits_subset(splits_file, runs_dir) -> pathlib.Path:
    """The `--compare splits` file with only its allgatherv groups and shared_channel, shared_sample (every
    decomposition once, two consolidations), so the pictures of every group take seconds, not minutes."""
    path = runs_dir / "splits_subset.h5"
    path.write_bytes(splits_file.read_bytes())
    with h5py.File(path, "r+") as f:
        names = [name.decode() if isinstance(name, bytes) else name for name in f["compare/combinations"][...]]
        kept = [name for name in names if name.startswith("allgatherv_") or name in ("shared_channel",
                                                                                     "shared_sample")]
        for name in set(names) - set(kept):
            del f[f"compare/{name}"]
        del f["compare/combinations"]
        f["compare/combinations"] = kept
    return path


TIMESTAMP_DATASETS = ("timing/forward_start_s", "timing/broadcast_enter_s", "timing/broadcast_exit_s",
                      "timing/boundary_enter_s", "timing/boundary_exit_s")


@pytest.fixture(scope="session")
def untimed_run3(run3, runs_dir) -> pathlib.Path:
    """The P = 3 run as a file written before timestamps were recorded: durations only."""
    path = runs_dir / "untimed_np3.h5"
    path.write_bytes(run3.read_bytes())
    with h5py.File(path, "r+") as f:
        for name in TIMESTAMP_DATASETS:
            del f[name]
    return path


def analysis(*args, check: bool = True) -> subprocess.CompletedProcess:
    """`python3 -m analysis ARGS` from the repository root, as a user would run it."""
    done = subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    if check:
        assert done.returncode == 0, f"analysis {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done


def assert_figure(directory: pathlib.Path, stem: str) -> None:
    """stem.png decodes as an image of a sensible size, and stem.svg is a non-empty SVG document."""
    png, svg = directory / f"{stem}.png", directory / f"{stem}.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"
    height, width = matplotlib.image.imread(png).shape[:2]
    assert height > 100 and width > 100, f"{png} is only {width}x{height}"
    assert "<svg" in svg.read_text()[:2000], f"{svg} is not an SVG"
