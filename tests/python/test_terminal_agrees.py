"""The terminal and analysis/ print the same figures for the same run (issue 9: one definition of every statistic).

cnnpar_mpi prints its report from the records it gathered (src/report.cpp, with the statistics of
include/cnnpar/records.hpp); analysis/stats.py computes the same figures from the results file the same run wrote. For
seed and letters, per-layer and fused, rows and sample splits (whose kernels compute their boxes in place: no step
records a pack or unpack time, so neither the terminal nor the analysis shows one), shared and hierarchical windows
(whose "in place B" columns count the bytes ranks read of each other's data through the window), every figure of
the terminal's breakdown (per-rank medians), Summary table
(slowest rank per iteration, median over iterations), "Across ranks" table (every event but pack and unpack) and, for --compare and
--compare splits, every combination's table must equal the analysis's to the printed precision: 0.1 µs, speedups
0.01, efficiencies 1 % (0.01 as a ratio), bytes and operation counts exactly.
"""
from __future__ import annotations

import os
import re
import subprocess

import numpy as np
import pytest

from analysis import stats
from analysis.results import load
from conftest import MPI_ENV, TIMEOUT_S, _binary

US = 0.05 + 1e-6  # half the printed 0.1 µs, plus slack for the decimal conversion
RATIO = 0.005 + 1e-9  # speedups printed with 2 decimals
PERCENT = 0.5 + 1e-9  # efficiencies printed as whole percentages

RUNS = {  # id -> (ranks, options)
    "seed-np2-per-layer": (2, ()),
    "seed-np3-fused": (3, ("--plan", "fused")),
    "letters-np2-per-layer": (2, ("--net", "letters")),
    "letters-np3-fused": (3, ("--net", "letters", "--plan", "fused", "--batch", "2")),
    "seed-np2-rows": (2, ("--split", "conv=rows,pool=rows,gelu=rows", "--batch", "4")),
    "letters-np3-rows": (3, ("--net", "letters", "--split", "conv=rows,pool=rows,gelu=rows", "--batch", "2")),
    "seed-np2-sample": (2, ("--split", "conv=sample,pool=sample,gelu=sample,fc=sample", "--batch", "3")),
    "seed-np3-sample": (3, ("--split", "conv=sample,pool=sample,gelu=sample,fc=sample", "--batch", "4")),
    # shared windows: the "in place B" columns (reads of other ranks' data through the window, no MPI)
    "seed-np3-shared-per-layer": (3, ("--consolidation", "shared", "--batch", "2")),
    "seed-np2-shared-rows": (2, ("--consolidation", "shared", "--split", "conv=rows,pool=rows,gelu=rows",
                                 "--batch", "2")),
    "letters-np3-hierarchical-fused": (3, ("--net", "letters", "--consolidation", "hierarchical",
                                           "--ranks-per-node", "2", "--plan", "fused")),
}


def run_terminal(directory, name: str, nprocs: int, *extra: str, iterations: int = 20) -> tuple[str, object]:
    """Runs cnnpar_mpi as a user would (no --quiet) and returns (stdout, the results file)."""
    output = directory / f"{name}.h5"
    command = ["mpirun", "-np", str(nprocs), str(_binary()), "--iterations", str(iterations), "--warmup", "2",
               "--output", str(output), *extra]
    done = subprocess.run(command, env={**os.environ, **MPI_ENV}, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout, output


@pytest.fixture(scope="module", params=list(RUNS))
def terminal_run(request, tmp_path_factory):
    nprocs, extra = RUNS[request.param]
    stdout, path = run_terminal(tmp_path_factory.mktemp("terminal"), request.param, nprocs, *extra)
    return stdout, load(path).runs[0]


def number(text: str) -> float:
    return float(text.replace(",", "").rstrip("x%"))


def close(printed: float, value: float, tolerance: float, what: str) -> None:
    assert abs(printed - value) <= tolerance, f"{what}: the terminal prints {printed}, analysis/ computes {value}"


# --- the terminal's tables, parsed --------------------------------------------------------------------------------

def summary_rows(stdout: str) -> dict[str, list[str]]:
    """The Summary table: layer name -> its columns as printed (the forward row has no phase columns). With a
    "max halo" column (some boundary an exchange) a layer row has one cell more, after max compute."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Summary (")) + 2
    rows = {}
    for line in lines[start:]:
        if line.startswith("Throughput:"):
            break
        name, *cells = line.split()
        rows[name] = cells
    return rows


def breakdown_columns(header: str) -> list[str]:
    """The per-rank time columns a step's breakdown prints, from its header: compute, wait, transfer, halo (an
    exchange boundary); pack and unpack too should it print them (it printed them for rows and sample steps before
    the box kernels)."""
    names = {"compute us": "compute", "pack us": "pack", "unpack us": "unpack", "wait us": "wait",
             "transfer us": "transfer", "halo us": "halo"}
    found = sorted((header.index(f"  {label}") if f"  {label}" in header else -1, phase)
                   for label, phase in names.items())
    return [phase for position, phase in found if position >= 0]


def breakdown_rows(stdout: str) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The per-step breakdown: layer name -> (its time columns, per rank [ops, weights B, sent B, received B, in place
    B (shared windows only), then those times])."""
    rows, layer, columns, in_place = {}, None, [], False
    for line in stdout.splitlines():
        step = re.match(r"Step \d+ +(\S+): ", line)
        if step:
            layer = step.group(1)
            rows[layer] = ([], [])
        elif layer and line.strip().startswith("rank  owns"):
            columns = breakdown_columns(line)
            in_place = "  in place B" in line
            rows[layer] = (columns, [])
        elif layer and re.match(r" {8} *\d+  ", line):
            rows[layer][1].append(line.split()[-(4 + in_place + len(columns)):])
        elif line.startswith("Summary ("):
            break
    return rows


def across_rows(stdout: str) -> dict[tuple[str, str], list[str]]:
    """The "Across ranks" table: (layer, phase) -> [min, (rN), avg, max, (rN), efficiency]."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Across ranks per layer")) + 2
    rows = {}
    for line in lines[start:]:
        if not line.strip():
            break
        layer, phase, *cells = line.split()
        rows[(layer, phase)] = cells
    return rows


def rank_of(cell: str) -> int:
    return int(cell.strip("()r"))


# --- the checks -----------------------------------------------------------------------------------------------------

def test_summary_table_agrees(terminal_run):
    stdout, run = terminal_run
    rows = summary_rows(stdout)
    assert list(rows) == [*run.layers, "forward"]
    title = next(line for line in stdout.splitlines() if line.startswith("Summary ("))
    header = stdout.splitlines()[stdout.splitlines().index(title) + 1]
    # the box kernels: no step records a pack or unpack time, whatever its split, and the terminal has no pack column
    assert not stats.packs(run) and not stats.pack_time(run).any(), "a fresh run packs no step"
    assert "pack" not in header and "pack" not in title
    assert title.endswith("parallel = compute" + (" + halo" if stats.exchanges(run) else "") + " + wait + transfer)")
    assert ("max halo" in header) == stats.exchanges(run), "a max halo column exactly when some boundary exchanges"
    in_place = stats.reads_in_place(run)
    assert ("in place B/rank" in header) == in_place, "an in place column exactly for shared windows"
    phases = stats.phase_times(run)
    parallel = stats.layer_parallel_time(run)
    speedup = stats.layer_speedup(run)
    ops = stats.layer_ops(run)
    received = stats.received_max(run)
    for i, layer in enumerate(run.layers):
        cells = list(rows[layer])
        if in_place:  # the last column
            assert number(cells.pop()) == stats.read_in_place_max(run)[i], f"{layer} in place B/rank"
        if stats.exchanges(run):  # after max compute
            halo = cells.pop(3)
            close(number(halo), phases["halo"][i] * 1e6, US, f"{layer} max halo")
        ops_cell, serial, compute, wait, transfer, par, up, eff, recv = cells
        assert number(ops_cell) == ops[i], f"{layer} ops"
        close(number(serial), run.serial_layer[i] * 1e6, US, f"{layer} serial us")
        close(number(compute), phases["compute"][i] * 1e6, US, f"{layer} max compute")
        close(number(wait), phases["wait"][i] * 1e6, US, f"{layer} max wait")
        close(number(transfer), phases["transfer"][i] * 1e6, US, f"{layer} max xfer")
        close(number(par), parallel[i] * 1e6, US, f"{layer} parallel us")
        close(number(up), speedup[i], RATIO, f"{layer} speedup")
        close(number(eff), 100 * stats.efficiency(run, speedup[i]), PERCENT, f"{layer} efficiency")
        assert number(recv) == received[i], f"{layer} recv B/rank"
    forward = list(rows["forward"])
    if in_place:
        assert number(forward.pop()) == stats.forward_read_in_place_max(run), "forward in place B/rank"
    ops_cell, serial, par, up, eff, recv = forward
    assert number(ops_cell) == ops.sum(), "forward ops"
    close(number(serial), run.serial_forward * 1e6, US, "forward serial us")
    close(number(par), stats.forward_parallel_time(run) * 1e6, US, "forward parallel us")
    close(number(up), stats.total_speedup(run), RATIO, "forward speedup")
    close(number(eff), 100 * stats.efficiency(run, stats.total_speedup(run)), PERCENT, "forward efficiency")
    assert number(recv) == stats.forward_received_max(run), "forward recv B/rank"
    throughput = re.search(r"Throughput: (\d+) images/s", stdout)
    close(float(throughput.group(1)), run.batch / stats.forward_parallel_time(run), 0.5 + 1e-6, "throughput")


def test_breakdown_agrees(terminal_run):
    stdout, run = terminal_run
    rows = breakdown_rows(stdout)
    assert list(rows) == list(run.layers)
    medians = {phase: stats.median_per_rank(run, phase) for phase in stats.PHASES}
    assert run.packed == (False,) * len(run.layers), "the box kernels: no step packs, whatever its split"
    for i, layer in enumerate(run.layers):
        printed, per_rank = rows[layer]
        expected = ["compute", "wait", "transfer"] + (["halo"] if run.exchanges[i] else [])
        assert printed == expected, f"{layer}: the breakdown's columns"
        assert len(per_rank) == run.nprocs
        for rank, (ops, weights, sent, received, *times) in enumerate(per_rank):
            where = f"{layer} rank {rank}"
            assert number(ops) == run.ops[i, rank], f"{where} ops"
            assert number(weights) == run.weight_bytes[i, rank], f"{where} weights B"
            assert number(sent) == run.bytes_sent[i, rank], f"{where} sent B"
            assert number(received) == run.bytes_received[i, rank], f"{where} received B"
            if stats.reads_in_place(run):
                in_place = times.pop(0)
                assert number(in_place) == run.bytes_read_in_place[i, rank], f"{where} in place B"
            for phase, cell in zip(printed, times):
                close(number(cell), medians[phase][i, rank] * 1e6, US, f"{where} {phase} us")


def test_input_line_agrees(terminal_run):
    """Step 0: the most any rank received through MPI, and under shared windows read in place, of the batch."""
    stdout, run = terminal_run
    line = next(line for line in stdout.splitlines() if line.startswith("Step 0 "))
    received = re.search(r"at most ([\d,]+) B received through MPI by a rank(, ([\d,]+) B read in place)?;", line)
    assert number(received.group(1)) == run.input_bytes_received.max()
    assert (received.group(2) is not None) == stats.reads_in_place(run)
    if stats.reads_in_place(run):
        assert number(received.group(3)) == run.input_bytes_read_in_place.max()


def test_across_ranks_agrees(terminal_run):
    stdout, run = terminal_run
    rows = across_rows(stdout)
    # every event of every step but pack and unpack (0 since the kernels compute every region in place), halo too
    shown = [phase for phase in stats.PHASES if phase not in ("pack", "unpack")]
    assert len(rows) == len(run.layers) * len(shown)
    for phase in shown:
        medians = stats.median_per_rank(run, phase)
        for i, layer in enumerate(run.layers):
            low, low_rank, avg, high, high_rank, eff = rows[(layer, phase)]
            st = stats.across_ranks(medians[i])
            where = f"{layer} {phase}"
            close(number(low), st.min * 1e6, US, f"{where} min")
            close(number(avg), st.avg * 1e6, US, f"{where} avg")
            close(number(high), st.max * 1e6, US, f"{where} max")
            close(number(eff), st.efficiency, RATIO, f"{where} efficiency")
            # the rank named holds the extreme (another rank may tie with it)
            close(medians[i, rank_of(low_rank)] * 1e6, st.min * 1e6, 1e-6, f"{where} min rank")
            close(medians[i, rank_of(high_rank)] * 1e6, st.max * 1e6, 1e-6, f"{where} max rank")


def ranking_rows(stdout: str) -> dict[tuple[str, str], list[str]]:
    """--compare's ranking: (consolidation, plan or decomposition) -> [forward us, speedup, efficiency, compute us,
    boundary us, recv B/rank, in place B/rank, weights B/rank] (no pack column since the box kernels: the header must
    not name one; "in place B/rank" only when some combination reads through a shared window: None here otherwise)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Ranking by")) + 2
    assert "pack" not in lines[start - 2] and "pack" not in lines[start - 1], lines[start - 1]
    assert lines[start - 1].split()[:9] == ["combination", "forward", "us", "speedup", "efficiency", "compute", "us",
                                            "boundary", "us"], lines[start - 1]
    in_place = "in place B/rank" in lines[start - 1]
    rows = {}
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        consolidation, slash, scheme, *cells = line.split()
        assert slash == "/", line
        rows[(consolidation, scheme)] = cells[:8] if in_place else [*cells[:6], None, cells[6]]
    return rows


def comparison_sections(stdout: str) -> dict[tuple[str, str], dict[str, list[str]]]:
    """--compare: (consolidation, plan) -> layer (and "total") -> the columns after the boundary column; --compare
    splits names its sections (consolidation, decomposition)."""
    sections, current = {}, None
    for line in stdout.splitlines():
        header = re.match(r"(\S+) / (\S+): ", line)
        if header:
            current = sections.setdefault((header.group(1), header.group(2)), {})
        elif line.startswith("Ranking by"):
            break
        elif current is not None and line.startswith("  ") and not line.split()[0] in ("layer", "input"):
            cells = line.split()
            if cells[0] == "total":
                current["total"] = cells[1:]
            else:
                current[cells[0]] = cells[2:]  # after the boundary action
    return sections


@pytest.mark.parametrize("nprocs, options", [(2, ("--net", "letters", "--compare")),
                                             (3, ("--compare", "splits", "--batch", "4"))],
                         ids=["letters-np2-compare", "seed-np3-compare-splits"])
def test_comparison_agrees(tmp_path, nprocs, options):
    """--compare prints one table per combination; each must equal the analysis of its /compare group. With
    --compare splits a group's label is its decomposition (/meta@decomposition), and no group packs, rows, sample,
    tiles and 2-D included (their kernels compute their boxes in place)."""
    stdout, path = run_terminal(tmp_path, "compare", nprocs, *options, iterations=10)
    sections = comparison_sections(stdout)
    ranking = ranking_rows(stdout)
    runs = load(path).runs
    assert set(ranking) == set(sections)
    assert len(runs) == len(sections) > 1
    if "splits" in options:
        assert {run.decomposition for run in runs} >= {"channel", "fused", "rows", "sample"}
        assert {"rows", "sample", "tiles"} <= {run.decomposition for run in runs}
        assert not any(stats.packs(run) for run in runs), "no decomposition packs any more"
    for run in runs:
        rows = sections[(run.consolidation, run.decomposition or run.plan)]
        assert list(rows) == [*run.layers, "total"], run.label
        phases = stats.phase_times(run)
        parallel = stats.layer_parallel_time(run)
        speedup = stats.layer_speedup(run)
        for i, layer in enumerate(run.layers):
            recv, _model, wait, transfer, compute, par, up, eff = rows[layer]
            where = f"{run.label} {layer}"
            assert number(recv) == stats.received_max(run)[i], f"{where} recv B/rank"
            close(number(wait), phases["wait"][i] * 1e6, US, f"{where} wait")
            close(number(transfer), phases["transfer"][i] * 1e6, US, f"{where} xfer")
            close(number(compute), phases["compute"][i] * 1e6, US, f"{where} compute")
            close(number(par), parallel[i] * 1e6, US, f"{where} parallel")
            close(number(up), speedup[i], RATIO, f"{where} speedup")
            close(number(eff), 100 * stats.efficiency(run, speedup[i]), PERCENT, f"{where} efficiency")
        forward, up, eff, compute, boundary, recv, in_place, weights = ranking[(run.consolidation,
                                                                                run.decomposition or run.plan)]
        sums = stats.stage_sums(run)
        close(number(forward), stats.forward_parallel_time(run) * 1e6, US, f"{run.label} ranking forward")
        close(number(up), stats.total_speedup(run), RATIO, f"{run.label} ranking speedup")
        close(number(eff), 100 * stats.efficiency(run, stats.total_speedup(run)), PERCENT, f"{run.label} ranking eff")
        close(number(compute), sums.compute * 1e6, US, f"{run.label} ranking compute")
        close(number(boundary), sums.boundary * 1e6, US, f"{run.label} ranking boundary")
        assert number(recv) == stats.forward_received_max(run), f"{run.label} ranking recv B/rank"
        assert number(weights) == sums.weights, f"{run.label} ranking weights B/rank"
        # every --compare here runs the shared windows too, so the column is there; allgatherv reads nothing in place
        assert in_place is not None, "an in place B/rank column when some combination uses a shared window"
        want = stats.forward_read_in_place_max(run) if stats.reads_in_place(run) else 0
        assert number(in_place) == want, f"{run.label} ranking in place B/rank"
        recv, _model, par, up, eff = rows["total"]
        assert number(recv) == stats.forward_received_max(run), f"{run.label} total recv"
        close(number(par), stats.forward_parallel_time(run) * 1e6, US, f"{run.label} forward parallel")
        close(number(up), stats.total_speedup(run), RATIO, f"{run.label} forward speedup")
        close(number(eff), 100 * stats.efficiency(run, stats.total_speedup(run)), PERCENT,
              f"{run.label} forward efficiency")
