"""`layouts` draws the four pictures from the real partition, with and without the stored input image; and the cuts
picture (issue 10 item 7) for rows, sample, replicated and 2-D steps (tiles, rows × channels, images × channels):
one panel per such step, the halo rows (or, for tiles, the halo rows, columns and corner) each rank receives computed
from the file and equal to what the previous boundary received."""
import pytest

from analysis import layouts
from analysis.figures import plt
from analysis.results import load
from conftest import analysis, assert_figure, make_run

ROWS = "conv=rows,pool=rows,gelu=rows"
SAMPLE = "conv=sample,pool=sample,gelu=sample,fc=sample"
TILES = "conv=tiles,pool=tiles,gelu=tiles"
HYBRID = "conv=rows-channel,pool=rows-channel,gelu=sample-channel,fc=sample-channel"


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
    decomposition, with the cuts of rows, sample, tiles and the 2-D hybrid groups, none for channel."""
    analysis("layouts", splits_subset, "--out", tmp_path / "out")
    text = (tmp_path / "out" / "layouts.md").read_text()
    for group in ("allgatherv_rows", "allgatherv_sample", "shared_channel"):
        assert_figure(tmp_path / "out", f"{group}_pipeline")
    assert "## allgatherv, rows" in text and "## shared, sample" in text and "## allgatherv, tiles" in text
    for group in ("allgatherv_rows", "allgatherv_sample", "allgatherv_tiles", "allgatherv_rows_channel",
                  "allgatherv_sample_channel"):
        assert_figure(tmp_path / "out", f"{group}_cuts")
    assert "| halo (rows × columns) |" in text
    assert not (tmp_path / "out" / "allgatherv_channel_cuts.png").exists()


# --- 2-D splits: tiles (rows × columns with halos on both axes), rows × channels, images × channels --------------

@pytest.fixture(scope="module")
def grid_runs(tmp_path_factory):
    """Real 2-D runs: seed tiles on 2 × 2 at P = 4, B = 2 (13/13 tiles, pool 7/6: rank 0's halo has rows, columns
    and a corner); letters tiles on 3 × 2 at P = 6 (uneven, halos on both sides, ranks with empty tiles at the 1 × 1
    layers); seed rows × channels then images × channels on 2 × 2 at P = 4, B = 2."""
    runs = {}
    for name, nprocs, options in (("seed-tiles", 4, ("--split", TILES, "--grid", "2x2", "--batch", "2")),
                                  ("letters-tiles", 6, ("--net", "letters", "--split", TILES, "--grid", "3x2")),
                                  ("seed-hybrid", 4, ("--split", HYBRID, "--grid", "2x2", "--batch", "2"))):
        runs[name] = load(make_run(tmp_path_factory.mktemp(name), nprocs, *options)).runs[0]
    return runs


def test_seed_tiles_halos(grid_runs):
    """Seed at P = 4 on 2 × 2: conv tiles 13×13 of 26×26, pool tiles 7/6 × 7/6 of 13×13. Pool's rank 0 reads conv
    rows and columns 0-13 and holds 0-12 × 0-12: column 13 from rank 1, row 13 from rank 2, the corner (13, 13)
    from rank 3 — 27 pixels of 32·4·2 = 256 B, 6,912 B, which is what conv's boundary brought it."""
    run = grid_runs["seed-tiles"]
    conv, pool, gelu = (run.layers.index(name) for name in ("conv", "pool", "gelu"))
    assert list(layouts.second_axis(run).grid[pool]) == [2, 2]
    assert layouts.tile(run, pool, 3) == ((7, 13), (7, 13))
    assert layouts.tile_halos(run, conv) == [[]] * 4  # the input is broadcast whole
    assert layouts.needed_tile(run, pool, 0) == ((0, 14), (0, 14))
    assert layouts.needed_tile(run, pool, 3) == ((14, 26), (14, 26))  # (13 − 1)·2 + 2 = 26: clamped, no halo
    assert layouts.held_tile(run, pool, 0) == ((0, 13), (0, 13))
    assert layouts.tile_halos(run, pool)[0] == [layouts.TileHalo((0, 13), (13, 14), 1, "columns"),
                                                layouts.TileHalo((13, 14), (0, 13), 2, "rows"),
                                                layouts.TileHalo((13, 14), (13, 14), 3, "corner")]
    assert layouts.tile_halos(run, pool)[1] == [layouts.TileHalo((13, 14), (14, 26), 3, "rows")]
    assert list(layouts.tile_halo_bytes(run, pool)) == [6_912, 3_072, 3_072, 0] == list(run.bytes_received[conv])
    assert layouts.tile_halos(run, gelu) == [[]] * 4  # same tiles as pool, element-wise: nothing moves


@pytest.mark.parametrize("name", ["seed-tiles", "letters-tiles"])
def test_tile_halos_equal_the_bytes_received(grid_runs, name):
    """Every tiles step after a tiles step: the halo bytes computed from the partition equal what the previous
    boundary received (/comm), rank by rank; each piece comes from another rank, lies inside what the rank reads and
    outside what it holds, and the pieces do not overlap."""
    run = grid_runs[name]
    checked, senders, corners = 0, 0, 0
    for layer in range(1, len(run.layers)):
        if not run.split[layer] == run.split[layer - 1] == "tiles":
            continue
        assert list(layouts.tile_halo_bytes(run, layer)) == list(run.bytes_received[layer - 1]), run.layers[layer]
        for rank, halos in enumerate(layouts.tile_halos(run, layer)):
            (n0, n1), (m0, m1) = layouts.needed_tile(run, layer, rank)
            (h0, h1), (w0, w1) = layouts.held_tile(run, layer, rank)
            cells = set()
            for halo in halos:
                assert halo.sender != rank and halo.pixels > 0
                assert n0 <= halo.rows[0] < halo.rows[1] <= n1 and m0 <= halo.columns[0] < halo.columns[1] <= m1
                piece = {(r, c) for r in range(*halo.rows) for c in range(*halo.columns)}
                assert not any(h0 <= r < h1 and w0 <= c < w1 for r, c in piece)
                assert not piece & cells
                cells |= piece
            senders = max(senders, len({h.sender for h in halos}))
            corners += sum(h.part == "corner" for h in halos)
        checked += 1
    assert checked >= (2 if name == "seed-tiles" else 8)
    assert corners > 0, "some tile reads a corner pixel from its diagonal neighbour"
    if name == "letters-tiles":
        assert senders >= 4, "letters' conv2 at 3 × 2: a middle tile reads from rows above and below, and beside"
        assert (run.count[run.layers.index("pool3")] == 0).any(), "pool3's 1×1 output leaves ranks without a tile"


@pytest.mark.parametrize("name", ["seed-tiles", "letters-tiles", "seed-hybrid"])
def test_cuts_figure_grid_panels(grid_runs, name):
    """One panel per 2-D step: a tiles panel has one output block per non-empty tile, one outlined read box per
    rank that reads, and one hatched rectangle per halo piece; a rows × channels or images × channels panel one
    block per rank with a non-empty block."""
    run = grid_runs[name]
    fig = layouts.cuts_figure(run)
    try:
        steps = layouts.cut_layers(run)
        assert len(fig.axes) == len(steps) >= 3
        for ax, layer in zip(fig.axes, steps):
            assert run.layers[layer] in ax.get_title()
            owners = sum(not layouts._empty(layouts.tile(run, layer, rank)) for rank in range(run.nprocs))
            assert len(_gids(ax, "block")) == owners > 0
            if run.split[layer] == "tiles":
                assert "grid" in ax.get_title()
                assert len(_gids(ax, "halo")) == sum(len(h) for h in layouts.tile_halos(run, layer))
                assert len(_gids(ax, "reads")) == owners
            else:
                assert run.split[layer] in ("rows-channels", "samples-channels")
                title = " ".join(ax.get_title().split())
                assert "× channels" in title or "× features" in title
    finally:
        plt.close(fig)


def test_hybrid_blocks_cover_the_output(grid_runs):
    """rows × channels and images × channels at 2 × 2: the four blocks tile the output's first axis × channels
    exactly once."""
    run = grid_runs["seed-hybrid"]
    assert run.split == ("rows-channels", "rows-channels", "samples-channels", "samples-channels")
    for layer in range(len(run.layers)):
        axis = layouts.second_axis(run)
        seconds = int((axis.begin[layer] + axis.count[layer]).max())
        assert seconds == (128 if run.kinds[layer] == "fc" else int(run.out_shape[layer, 0]))
        covered = [0] * (int(run.items[layer]) * seconds)
        for rank in range(run.nprocs):
            (r0, r1), (c0, c1) = layouts.tile(run, layer, rank)
            for r in range(r0, r1):
                for c in range(c0, c1):
                    covered[r * seconds + c] += 1
        assert set(covered) == {1}, run.layers[layer]


@pytest.mark.parametrize("name", ["seed-tiles", "seed-hybrid"])
def test_layouts_draw_the_2d_cuts(tmp_path, grid_runs, name):
    """The command writes the cuts picture and, for tiles, the tile halo table with per-rank bytes next to what the
    previous boundary received."""
    run = grid_runs[name]
    analysis("layouts", run.path, "--out", tmp_path)
    for stem in ("input", "conv_dataflow", "linear", "pipeline", "cuts"):
        assert_figure(tmp_path, stem)
    text = (tmp_path / "layouts.md").read_text()
    assert "](cuts.png)" in text
    assert ("| halo (rows × columns) |" in text) == (name == "seed-tiles")
    if name == "seed-tiles":
        assert ("| pool | 0 | 0–6 × 0–6 | 0–13 × 0–13 | 0–12 × 0–12 | 0–12 × 13 from r1 (columns), 13 × 0–12 from r2 "
                "(rows), 13 × 13 from r3 (corner) | 6,912 | 6,912 |") in text


def test_shared_tiles_read_in_place(splits_file):
    """With shared windows the halo is read in place: the boundary receives nothing through MPI (and its model says
    so), and the panel text says that instead of a mismatch; the bytes the consolidation counted as read in place
    there equal the halo this module computes from the tiles rule, rank by rank (rows likewise)."""
    runs = {run.label.rsplit("[", 1)[-1].rstrip("]"): run for run in load(splits_file).runs}
    for group in ("allgatherv_tiles", "shared_tiles"):
        run = runs[group]
        pool = run.layers.index("pool")
        assert layouts.tile_halo_bytes(run, pool).any()
        check = layouts._tile_check(run, pool)
        assert ("read in place" in check) == group.startswith("shared") and "≠" not in check
        assert ("= conv's /comm/bytes_read_in_place" in check) == group.startswith("shared")
    rows = runs["shared_rows"]
    pool = rows.layers.index("pool")
    assert layouts.halo_bytes(rows, pool).any()
    assert (layouts.halo_bytes(rows, pool) == rows.bytes_read_in_place[pool - 1]).all()
    assert "= conv's /comm/bytes_read_in_place" in layouts._halo_check(rows, pool)
