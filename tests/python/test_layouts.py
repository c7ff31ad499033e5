"""`layouts` draws the four pictures from the real partition, with and without the stored input image."""
import pytest

from conftest import analysis, assert_figure


@pytest.mark.parametrize("which", ["run3", "run2"])
def test_layouts(tmp_path, request, which):
    run = request.getfixturevalue(which)  # run2 holds /tensors/input, run3 does not
    analysis("layouts", run, "--out", tmp_path)
    for stem in ("input", "conv_dataflow", "linear", "pipeline"):
        assert_figure(tmp_path, stem)
    table = (tmp_path / "layouts.md").read_text()
    assert ("11/11/10" if which == "run3" else "16/16") in table
