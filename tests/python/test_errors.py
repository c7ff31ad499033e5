"""Every subcommand rejects unusable input with one line on stderr and exit status 2, never a traceback."""
import h5py
import pytest

from conftest import analysis

SUBCOMMANDS = {"report": ["--out", "{tmp}/out"], "sweep": ["--out", "{tmp}/out"], "layouts": ["--out", "{tmp}/out"],
               "model": ["--out", "{tmp}/out"], "trace": ["--out", "{tmp}/trace.json"]}


def _fails_with_one_line(tmp_path, subcommand, path, expected):
    options = [o.format(tmp=tmp_path) for o in SUBCOMMANDS[subcommand]]
    done = analysis(subcommand, path, *options, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{done.stderr}"
    assert expected in lines[0] and str(path) in lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "trace.json").exists()


def _damaged_copy(tmp_path, run, name, damage):
    """A copy of a real results file, changed by damage(h5py.File) in place."""
    path = tmp_path / name
    path.write_bytes(run.read_bytes())
    with h5py.File(path, "r+") as f:
        damage(f)
    return path


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_missing_file(tmp_path, subcommand):
    _fails_with_one_line(tmp_path, subcommand, tmp_path / "absent.h5", "no such file")


def test_not_hdf5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not HDF5 at all\n")
    _fails_with_one_line(tmp_path, "report", path, "not an HDF5 file")


@pytest.mark.parametrize("schema", [None, "other-results"])
def test_not_a_cnnpar_file(tmp_path, schema):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=[1, 2, 3])
        if schema:
            f.attrs["schema"] = schema
    _fails_with_one_line(tmp_path, "report", path, "not a cnnpar results file")


@pytest.mark.parametrize("version, word", [(2, "newer"), (0, "older")])
def test_wrong_schema_version(tmp_path, run3, version, word):
    path = _damaged_copy(tmp_path, run3, "versioned.h5", lambda f: f.attrs.__setitem__("schema_version", version))
    for subcommand in ("report", "trace"):
        _fails_with_one_line(tmp_path, subcommand, path, f"schema version {version} is {word}")


def test_missing_dataset(tmp_path, run3):
    path = _damaged_copy(tmp_path, run3, "truncated.h5", lambda f: f.__delitem__("timing/forward_s"))
    _fails_with_one_line(tmp_path, "report", path, "missing dataset /timing/forward_s")


def test_model_needs_communication(tmp_path, run1):
    """A P = 1 run moves nothing, so there is nothing to fit: a clear error, not an empty report."""
    _fails_with_one_line(tmp_path, "model", run1, "nothing to fit")


def test_partial_timestamps(tmp_path, run3):
    """A file with some of the timestamp datasets but not all is damaged, not an old file: an error."""
    path = _damaged_copy(tmp_path, run3, "partial.h5", lambda f: f.__delitem__("timing/boundary_exit_s"))
    _fails_with_one_line(tmp_path, "trace", path, "missing dataset /timing/boundary_exit_s")
