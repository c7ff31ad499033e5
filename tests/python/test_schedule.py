"""analysis/schedule.py: the library's algorithm choice, each algorithm's messages, and their played time (pure
Python: no runs needed)."""
import math

import numpy as np
import pytest

from analysis import schedule
from analysis.costmodel import Params

NET = schedule.Network(Params(0.3e-6, 1 / 20e9), Params(2e-6, 1 / 12.5e9))


@pytest.mark.parametrize("p, n, expected", [
    (2, 1000, "ring"), (2, 2 * 3000, "pair"), (2, 2 * 5000, "ring"), (2, 1384448, "pair"),
    (4, 4 * 100, "gather-bcast"), (4, 4 * 1000, "neighbor-exchange"), (4, 4 * 100000, "bruck"),
    (16, 16 * 100, "gather-bcast"), (16, 16 * 512, "bruck"), (16, 1384448, "bruck"),
    (64, 8192, "gather-bcast"), (64, 346112, "ring"), (64, 1384448, "ring"),
    (256, 8192, "bruck"), (256, 1384448, "ring"),
    (1024, 8192, "bruck"), (1024, 346112, "bruck"), (1024, 1384448, "bruck"),
    (1024, 1024 * 5000, "neighbor-exchange"),
])
def test_decision_rules(p, n, expected):
    """Spot checks of Open MPI 4.1's fixed rules (SimGrid 3.32's allgatherv__ompi) by P and n / P."""
    assert schedule.ompi_allgatherv_algorithm(p, n) == expected


@pytest.mark.parametrize("algorithm", ["bruck", "ring", "neighbor-exchange", "recursive-doubling", "pair"])
@pytest.mark.parametrize("counts", [[40, 40, 40, 40, 40, 40, 40, 40], [4, 0, 8, 0, 0, 12, 4, 4], [1000, 3000]])
def test_every_rank_receives_every_other_block(algorithm, counts):
    """Each rank receives exactly the bytes of the others' blocks, and every send has its receive."""
    p = len(counts)
    if (algorithm == "pair") != (p == 2) or (algorithm == "neighbor-exchange" and p % 2):
        pytest.skip("not defined for this P")
    ops = schedule.programs(algorithm, np.array(counts))
    received = [sum(b for op in ops[r] for _, b in op[1]) for r in range(p)]
    assert received == [sum(counts) - counts[r] for r in range(p)]
    sent = sum(b for program in ops for op in program for _, b in op[0])
    assert sent == sum(received)


@pytest.mark.parametrize("p", [3, 8, 16])
def test_one_node_equal_blocks_equal_closed_forms(p):
    """On one node, equal blocks: Bruck ⌈lg p⌉·α + (p−1)/p·n·β, ring (p−1)·(α + n/p·β)."""
    n = 4000.0 * p
    node = np.zeros(p, dtype=int)
    a, b = NET.intra.alpha, NET.intra.beta
    _, bruck = schedule.allgatherv_time(np.full(p, n / p), node, NET, "bruck")
    assert bruck.seconds == pytest.approx(math.ceil(math.log2(p)) * a + (p - 1) / p * n * b, rel=1e-12)
    assert bruck.coefficients == pytest.approx([math.ceil(math.log2(p)), (p - 1) / p * n, 0, 0, 0, 0])
    _, ring = schedule.allgatherv_time(np.full(p, n / p), node, NET, "ring")
    assert ring.seconds == pytest.approx((p - 1) * (a + n / p * b), rel=1e-12)


def test_inter_node_messages_share_their_link():
    """Two ranks on each of two nodes, pairwise across nodes at once: each node's link carries two messages."""
    ops = [[(((2, 1e6),), ((2, 1e6),), 0)], [(((3, 1e6),), ((3, 1e6),), 0)],
           [(((0, 1e6),), ((0, 1e6),), 0)], [(((1, 1e6),), ((1, 1e6),), 0)]]
    timing = schedule.evaluate(ops, np.array([0, 0, 1, 1]), NET)
    assert timing.seconds == pytest.approx(NET.inter.alpha + 2e6 * NET.inter.beta, rel=1e-9)
    assert timing.inter_messages == 4


def test_skipped_empty_blocks_make_a_pipeline():
    """The mpich ring skips empty blocks: one non-empty block of b bytes among p ranks on one node travels p − 1
    hops, (p − 1)·(α + b·β), not (p − 1) steps of the largest block for every block."""
    p, b = 8, 1e5
    counts = np.zeros(p)
    counts[0] = b
    _, timing = schedule.allgatherv_time(counts, np.zeros(p, dtype=int), NET, "ring")
    assert timing.seconds == pytest.approx((p - 1) * (NET.intra.alpha + b * NET.intra.beta), rel=1e-12)


def test_calibration_time_includes_barrier_skew():
    """--calibrate times each rank from its own barrier exit: across nodes the barrier leaves ranks at different
    times, and the slowest rank's span is longer than the call played from a common start."""
    p = 64
    node = schedule.consecutive_nodes(p, 16)
    ops = schedule.programs("gather-bcast", schedule.even_counts(64, p))
    span, coefficients = schedule.calibration_time(ops, node, NET)
    plain = schedule.evaluate(ops, node, NET)
    assert span > plain.seconds
    assert span == pytest.approx(float(coefficients @ NET.theta), rel=1e-12)


def test_unmatched_programs_are_rejected():
    with pytest.raises(ValueError, match="unmatched"):
        schedule.evaluate([[(((1, 8.0),), (), 0)], []], np.zeros(2, dtype=int), NET)
