"""`layouts` draws the four pictures from the real partition, with and without the stored input image; and the cuts
picture (issue 10 item 7) for rows, sample and replicated steps: one panel per such step, the halo rows each rank
receives computed from the file and equal to what the previous boundary received."""
import pytest

from analysis import layouts
from analysis.figures import plt
from analysis.results import load
from conftest import analysis, assert_figure, make_run

ROWS = "conv=rows,pool=rows,gelu=rows"
SAMPLE = "conv=sample,pool=sample,gelu=sample,fc=sample"


@pytest.mark.parametrize("which", ["run3", "run2"])
def test_layouts(tmp_path, request, which):
    run = request.getfixturevalue(which)  # run2 holds /tensors/input, run3 does not
    analysis("layouts", run, "--out", tmp_path)
    for stem in ("input", "conv_dataflow", "linear", "pipeline"):
        assert_figure(tmp_path, stem)
    assert not (tmp_path / "cuts.png").exists(), "no step is rows, samples or replicated: no cuts picture"
    table = (tmp_path / "layouts.md").read_text()
    assert ("11/11/10" if which == "run3" else "16/16") in table


@pytest.fixture(scope="module")
def cut_runs(tmp_path_factory):
    """Real runs with every kind of cut: seed rows at P = 3 (uneven 9/9/8, a one-row halo), letters rows at P = 3
    (halos on both sides, oversized kernels at the small layers, ranks without rows), seed sample at P = 3 with
    B = 2 (a rank without an image), and seed with replicated layers."""
    runs = {}
    for name, nprocs, options in (("seed-rows", 3, ("--split", ROWS, "--batch", "4")),
                                  ("letters-rows", 3, ("--net", "letters", "--split", ROWS, "--batch", "2")),
                                  ("seed-sample", 3, ("--split", SAMPLE, "--batch", "2")),
                                  ("seed-replicated", 2, ("--split", "conv=replicated,gelu=replicated"))):
        runs[name] = load(make_run(tmp_path_factory.mktemp(name), nprocs, *options)).runs[0]
    return runs


def test_seed_rows_halos(cut_runs):
    """Seed at P = 3: conv rows 9/9/8 of 26, pool rows 5/4/4 of 13. Pool's rank 0 reads conv rows 0-9 and holds
    0-8: a one-row halo (row 9, from rank 1) of 26·32·4·4 = 13,312 B, which is what conv's boundary brought it."""
    run = cut_runs["seed-rows"]
    conv, pool, gelu = (run.layers.index(name) for name in ("conv", "pool", "gelu"))
    assert layouts.window(run, conv) == (3, 1) and layouts.window(run, pool) == (2, 2)
    assert layouts.window(run, gelu) == (1, 1)
    assert layouts.row_halos(run, conv) == [[], [], []]  # the input is broadcast whole
    assert layouts.row_halos(run, pool) == [[layouts.Halo(9, 10, 1)], [], []]
    assert layouts.needed_rows(run, pool, 0) == (0, 10) and layouts.held_rows(run, pool, 0) == (0, 9)
    assert layouts.row_halos(run, gelu) == [[], [], []]  # same blocks as pool: nothing moves
    assert list(layouts.halo_bytes(run, pool)) == [13_312, 0, 0] == list(run.bytes_received[conv])


@pytest.mark.parametrize("name", ["seed-rows", "letters-rows"])
def test_halos_equal_the_bytes_received(cut_runs, name):
    """Every rows step after a rows step: the halo bytes computed from the partition equal what the previous
    boundary received (/comm), rank by rank; halos come from other ranks and lie outside what the rank holds."""
    run = cut_runs[name]
    checked = 0
    for layer in range(1, len(run.layers)):
        if run.split[layer] == run.split[layer - 1] == "rows":
            assert list(layouts.halo_bytes(run, layer)) == list(run.bytes_received[layer - 1]), run.layers[layer]
            for rank, halos in enumerate(layouts.row_halos(run, layer)):
                low, high = layouts.held_rows(run, layer, rank)
                for halo in halos:
                    assert halo.sender != rank and (halo.end <= low or halo.first >= high)
            checked += 1
    assert checked >= (2 if name == "seed-rows" else 8)
    two_sided = [halos for layer in range(1, len(run.layers)) if run.split[layer] == run.split[layer - 1] == "rows"
                 for halos in layouts.row_halos(run, layer) if len({h.sender for h in halos}) == 2]
    assert two_sided or name == "seed-rows", "letters' conv2 at P = 3: rank 1 needs rows from both neighbours"


def _gids(ax, gid):
    return [patch for patch in ax.patches if patch.get_gid() == gid]


@pytest.mark.parametrize("name", ["seed-rows", "letters-rows", "seed-sample", "seed-replicated"])
def test_cuts_figure_panels(cut_runs, name):
    """One panel per rows, samples or replicated step; a rows panel has one output block per rank with rows and
    one hatched rectangle per halo piece; a samples panel one block per rank with images."""
    run = cut_runs[name]
    fig = layouts.cuts_figure(run)
    try:
        steps = layouts.cut_layers(run)
        assert steps and len(fig.axes) == len(steps)
        for ax, layer in zip(fig.axes, steps):
            assert run.layers[layer] in ax.get_title()
            owners = int((run.count[layer] > 0).sum())
            if run.split[layer] == "rows":
                assert len(_gids(ax, "block")) == owners
                assert len(_gids(ax, "halo")) == sum(len(h) for h in layouts.row_halos(run, layer))
                assert len(_gids(ax, "reads")) == owners
            elif run.split[layer] == "samples":
                assert len(_gids(ax, "block")) == owners
            else:
                assert len(_gids(ax, "block")) == 1
        if name == "seed-sample":
            assert list(run.count[0]) == [1, 1, 0], "B = 2 over 3 ranks: rank 2 has no image"
    finally:
        plt.close(fig)


@pytest.mark.parametrize("name", ["seed-rows", "letters-rows", "seed-sample", "seed-replicated"])
def test_layouts_draw_the_cuts(tmp_path, cut_runs, name):
    """The command writes the cuts picture next to the four others, and the halo table for rows runs."""
    run = cut_runs[name]
    analysis("layouts", run.path, "--out", tmp_path)
    for stem in ("input", "conv_dataflow", "linear", "pipeline", "cuts"):
        assert_figure(tmp_path, stem)
    text = (tmp_path / "layouts.md").read_text()
    assert "](cuts.png)" in text
    assert ("| halo rows |" in text) == name.endswith("rows")
    if name == "seed-rows":
        assert "| pool | 0 | 0–4 | 0–9 | 0–8 | 9 from r1 | 13,312 | 13,312 |" in text


def test_layouts_of_compare_splits(tmp_path, splits_subset):
    """A --compare splits file (every decomposition, two consolidations): one section per group, named by its
    decomposition, with the cuts of rows and sample groups only; 2-D cuts (tiles, ...) are drawn by the other
    pictures without error."""
    analysis("layouts", splits_subset, "--out", tmp_path / "out")
    text = (tmp_path / "out" / "layouts.md").read_text()
    for group in ("allgatherv_rows", "allgatherv_sample", "shared_channel"):
        assert_figure(tmp_path / "out", f"{group}_pipeline")
    assert "## allgatherv, rows" in text and "## shared, sample" in text
    assert_figure(tmp_path / "out", "allgatherv_rows_cuts")
    assert_figure(tmp_path / "out", "allgatherv_sample_cuts")
    assert not (tmp_path / "out" / "allgatherv_channel_cuts.png").exists()
