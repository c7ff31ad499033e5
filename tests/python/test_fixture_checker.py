"""tests/check_pytorch_fixture.py passes and fails where it should, without cnnpar_mpi: the results files here are
made from each PyTorch fixture's own expected tensors (tests/data/pytorch_*_fixture.h5), then changed."""
import importlib.util
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import REPO

CHECKER = REPO / "tests" / "check_pytorch_fixture.py"
FIXTURES = {"seed": REPO / "tests" / "data" / "pytorch_seed_fixture.h5",
            "letters": REPO / "tests" / "data" / "pytorch_letters_fixture.h5"}
PERTURBATION = 1e-3  # 100 x atol: far outside 1e-5 + 1e-5*|ref| for every reference here (|ref| < 4)

_spec = importlib.util.spec_from_file_location("check_pytorch_fixture", CHECKER)
checker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checker)


def _fixture(network):
    path = FIXTURES[network]
    if not path.is_file():
        pytest.fail(f"{path} not found (it is committed; make_pytorch_*fixture.py in tests/data regenerates it)")
    return path


def _layer_names(network):
    with h5py.File(_fixture(network), "r") as f:
        return list(f["expected"])


LAYER_CASES = [(network, name) for network in FIXTURES if FIXTURES[network].is_file()
               for name in _layer_names(network)]


def fake_results(path, fixture, change=None, linear_as_4d=True):
    """A results file holding what a correct cnnpar run would dump: /tensors/output = expected_output and
    /tensors/layers/<name> = expected/<name>, the [B, O] ones as [B, O, 1, 1] like cnnpar unless linear_as_4d is
    False. change(name, array) may return a changed array, or None to leave the layer out."""
    with h5py.File(fixture, "r") as src, h5py.File(path, "w") as dst:
        tensors = {"output": src["expected_output"][()]}
        tensors.update({f"layers/{name}": src[f"expected/{name}"][()] for name in src["expected"]})
        for name, array in tensors.items():
            if change is not None:
                array = change(name, array.copy())
                if array is None:
                    continue
            if name != "output" and array.ndim == 2 and linear_as_4d:
                array = array.reshape(*array.shape, 1, 1)
            dst.create_dataset(f"tensors/{name}", data=array)
    return path


def perturb(target, amount=PERTURBATION):
    """A change() that adds amount to one element of the tensor named target."""
    def change(name, array):
        if name == target:
            array.flat[array.size // 2] += np.float32(amount)
        return array
    return change


def run_checker(capsys, fixture, results, *extra):
    status = checker.main(["--fixture", str(fixture), "--results", str(results), *extra])
    out, err = capsys.readouterr()
    return status, out, err


def _rows(out):
    """{tensor label: PASS/FAIL/ERROR} from the checker's table."""
    rows = {}
    for line in out.splitlines():
        words = line.split()
        if words and words[-1] in ("PASS", "FAIL", "ERROR") and (words[0] == "output"
                                                                  or words[0].startswith("layers/")):
            rows[words[0]] = words[-1]
    return rows


@pytest.mark.parametrize("linear_as_4d", [True, False], ids=["cnnpar_BO11", "BO"])
@pytest.mark.parametrize("network", FIXTURES)
def test_fixture_against_itself_passes(tmp_path, capsys, network, linear_as_4d):
    fixture = _fixture(network)
    results = fake_results(tmp_path / "run.h5", fixture, linear_as_4d=linear_as_4d)
    status, out, err = run_checker(capsys, fixture, results, "--require-layers")
    assert status == 0, out + err
    rows = _rows(out)
    assert rows == {"output": "PASS", **{f"layers/{name}": "PASS" for name in _layer_names(network)}}, out
    assert out.splitlines()[-1].startswith(f"PASS ({len(rows)} tensors")


@pytest.mark.parametrize("network", FIXTURES)
def test_differences_within_tolerance_pass(tmp_path, capsys, network):
    """Half the absolute tolerance on every element of every tensor still passes: the check is not exact equality."""
    fixture = _fixture(network)
    results = fake_results(tmp_path / "run.h5", fixture, change=lambda name, a: a + np.float32(5e-6))
    status, out, err = run_checker(capsys, fixture, results)
    assert status == 0, out + err


@pytest.mark.parametrize("network,layer", LAYER_CASES)
def test_perturbed_layer_fails_naming_it(tmp_path, capsys, network, layer):
    fixture = _fixture(network)
    results = fake_results(tmp_path / "run.h5", fixture, change=perturb(f"layers/{layer}"))
    status, out, err = run_checker(capsys, fixture, results)
    assert status == 1, out + err
    rows = _rows(out)
    assert rows.pop(f"layers/{layer}") == "FAIL", out
    assert set(rows.values()) == {"PASS"}, out  # only the perturbed layer fails
    assert f"FAIL layers/{layer}: 1 of " in out
    assert out.splitlines()[-1] == f"FAIL (1 of {len(rows) + 1} tensors outside tolerance: layers/{layer})"


@pytest.mark.parametrize("network", FIXTURES)
def test_perturbed_output_fails(tmp_path, capsys, network):
    fixture = _fixture(network)
    results = fake_results(tmp_path / "run.h5", fixture, change=perturb("output"))
    status, out, err = run_checker(capsys, fixture, results)
    assert status == 1, out + err
    assert _rows(out)["output"] == "FAIL" and "FAIL output: 1 of " in out


@pytest.mark.parametrize("network", FIXTURES)
def test_nan_fails(tmp_path, capsys, network):
    fixture = _fixture(network)
    layer = _layer_names(network)[-1]
    results = fake_results(tmp_path / "run.h5", fixture, change=perturb(f"layers/{layer}", np.nan))
    status, out, err = run_checker(capsys, fixture, results)
    assert status == 1, out + err
    assert f"FAIL layers/{layer}: 1 of " in out and "(1 non-finite)" in out


@pytest.mark.parametrize("network,layer", LAYER_CASES)
def test_missing_layer_fails_naming_it(tmp_path, capsys, network, layer):
    fixture = _fixture(network)
    results = fake_results(tmp_path / "run.h5", fixture,
                           change=lambda name, a: None if name == f"layers/{layer}" else a)
    status, out, err = run_checker(capsys, fixture, results)
    assert status == 2, out + err
    assert _rows(out)[f"layers/{layer}"] == "ERROR", out
    assert f"layer '{layer}' is missing" in err
    assert out.splitlines()[-1].startswith("FAIL (error")


def test_wrong_layer_shape_fails(tmp_path, capsys):
    fixture = _fixture("letters")
    results = fake_results(tmp_path / "run.h5", fixture,
                           change=lambda name, a: a[:, :-1] if name == "layers/conv2" else a)
    status, out, err = run_checker(capsys, fixture, results)
    assert status == 2, out + err
    assert "shape mismatch: results /tensors/layers/conv2 has shape [8, 63, 11, 11]" in err


@pytest.mark.parametrize("network", FIXTURES)
def test_output_only_results(tmp_path, capsys, network):
    """A file written with --dump-tensors final (no /tensors/layers) checks the output alone, and says so, unless
    --require-layers is given."""
    fixture = _fixture(network)
    results = fake_results(tmp_path / "run.h5", fixture,
                           change=lambda name, a: a if name == "output" else None)
    status, out, err = run_checker(capsys, fixture, results)
    assert status == 0, out + err
    assert _rows(out) == {"output": "PASS"}
    assert "layers were not checked" in out
    status, out, err = run_checker(capsys, fixture, results, "--require-layers")
    assert status == 2, out + err
    assert "no /tensors/layers group" in err


def test_command_line_exit_status(tmp_path):
    """The script itself, as ctest runs it: exit 1 on a perturbed layer, 0 on the fixture's own tensors."""
    fixture = _fixture("letters")
    command = [sys.executable, str(CHECKER), "--fixture", str(fixture), "--results"]
    good = fake_results(tmp_path / "good.h5", fixture)
    bad = fake_results(tmp_path / "bad.h5", fixture, change=perturb("layers/gelu4"))
    done = subprocess.run([*command, str(good), "--require-layers"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([*command, str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL layers/gelu4" in done.stdout
