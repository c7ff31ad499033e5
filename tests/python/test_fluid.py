"""analysis/fluid.py: messages played as flows sharing node links instant by instant (weighted max-min), checked
against times worked out by hand, and against `schedule.evaluate` where no link is shared."""
import numpy as np
import pytest

from analysis import fluid, schedule, topology
from analysis.costmodel import Params

INTRA, INTER, CROSS = Params(0.3e-6, 1 / 20e9), Params(2e-6, 1 / 12.5e9), Params(4e-6, 1 / 12.5e9)
NET = schedule.Network(INTRA, INTER, CROSS)
MB = 1e6


def send(to, b):
    return (((to, b),), (), 0)


def receive(frm, b):
    return ((), ((frm, b),), 0)


def test_one_message_of_each_class():
    for node, switch, params in (([0, 0], None, INTRA), ([0, 1], None, INTER), ([0, 1], [0, 1], CROSS)):
        finish = fluid.play([[send(1, MB)], [receive(0, MB)]], node, NET, switch)
        assert finish == pytest.approx([params.alpha + MB * params.beta] * 2, rel=1e-12)


def test_flows_out_of_one_node_share_its_link():
    # ranks 0, 1 on node 0 send to ranks 2, 3 on node 1 at once: each at half the link
    ops = [[send(2, MB)], [send(3, MB)], [receive(0, MB)], [receive(1, MB)]]
    finish = fluid.play(ops, [0, 0, 1, 1], NET)
    assert finish == pytest.approx([INTER.alpha + 2 * MB * INTER.beta] * 4, rel=1e-12)


def test_a_flow_alone_runs_at_the_full_link_until_another_joins():
    # rank 1's message starts 40 µs after rank 0's: rank 0's runs alone, then both share, then rank 1's alone
    ops = [[send(2, MB)], [send(3, MB)], [receive(0, MB)], [receive(1, MB)]]
    late = 40e-6
    finish = fluid.play(ops, [0, 0, 1, 1], NET, start=[0, late, 0, late])
    a, rate = INTER.alpha, 1 / INTER.beta
    alone = late - a  # seconds rank 0's bytes flow alone before rank 1's latency ends at late + a
    shared_from = late + a
    first_left = MB - rate * (shared_from - a)
    first_done = shared_from + first_left / (rate / 2)
    second_left = MB - (rate / 2) * (first_done - shared_from)
    second_done = first_done + second_left / rate
    assert alone > 0
    assert finish == pytest.approx([first_done, second_done, first_done, second_done], rel=1e-12)
    # the averaged sharing of `schedule.evaluate` cannot tell the first from the second this finely
    assert finish[0] < finish[1]


def test_max_min_fairness_gives_a_link_what_the_others_leave():
    # B, C, D share node 2's link in (a third each); A and B share node 0's link out: A gets the two thirds B leaves
    ops = [[], [], [], [], []]
    ops[0] = [(((1, 0.1 * MB), (2, 10 * MB)), (), 0)]  # A: 0 -> 1 (node 0 -> node 1), B: 0 -> 2
    ops[1] = [receive(0, 0.1 * MB)]
    ops[2] = [((), ((0, 10 * MB), (3, 10 * MB), (4, 10 * MB)), 0)]
    ops[3] = [send(2, 10 * MB)]
    ops[4] = [send(2, 10 * MB)]
    finish = fluid.play(ops, [0, 1, 2, 3, 4], NET)
    assert finish[1] == pytest.approx(INTER.alpha + 0.1 * MB / (2 / 3 / INTER.beta), rel=1e-9)
    assert finish[2] == pytest.approx(INTER.alpha + 30 * MB * INTER.beta, rel=1e-9)


def test_a_flow_shares_in_inverse_proportion_to_its_latency():
    # out of node 0: rank 0 to node 1 under the same switch (α 2 µs), rank 1 to node 2 under another (α 4 µs);
    # node 1 and node 2 are on switches 0 and 1. Both flows then share node 0's link 2 : 1.
    ops = [[send(2, MB)], [send(3, MB)], [receive(0, MB)], [receive(1, MB)]]
    node, switch = [0, 0, 1, 2], [0, 0, 0, 1]
    finish = fluid.play(ops, node, NET, switch)
    rate = 1 / INTER.beta
    # the near flow's bytes start at 2 µs, alone until 4 µs, then at 2/3 of the link until done
    near_left = MB - rate * (CROSS.alpha - INTER.alpha)
    near_done = CROSS.alpha + near_left / (2 / 3 * rate)
    far_left = MB - (rate / 3) * (near_done - CROSS.alpha)
    far_done = near_done + far_left / rate
    assert finish[2] == pytest.approx(near_done, rel=1e-12)
    assert finish[3] == pytest.approx(far_done, rel=1e-12)


def test_the_cross_bound_limits_a_flow_between_switches():
    slow = schedule.Network(INTRA, INTER, Params(4e-6, 1 / 5e9))
    finish = fluid.play([[send(1, MB)], [receive(0, MB)]], [0, 1], slow, [0, 1])
    assert finish == pytest.approx([4e-6 + MB / 5e9] * 2, rel=1e-12)


@pytest.mark.parametrize("algorithm", ["bruck", "ring", "neighbor-exchange", "gather-bcast"])
def test_within_one_node_it_equals_the_averaged_play(algorithm):
    # nothing is shared within a node (a fat pipe), so both plays must agree exactly, rank by rank
    counts = np.array([4000.0 * (1 + r % 3) for r in range(12)])
    ops = schedule.programs(algorithm, counts)
    node = np.zeros(12, dtype=int)
    start = np.linspace(0, 5e-6, 12)
    assert fluid.play(ops, node, NET, start=start) == pytest.approx(
        schedule.evaluate(ops, node, NET, list(start)).finish, rel=1e-12)


def test_a_detached_send_does_not_wait_but_a_large_one_does():
    small, large = schedule.DETACHED_BYTES - 4, schedule.DETACHED_BYTES
    for b, sender_waits in ((small, False), (large, True)):
        # the receiver posts 10 µs late; the sender's second operation receives an empty message from rank 2
        ops = [[send(1, b), receive(2, 0.0)], [receive(0, b)], [send(0, 0.0)]]
        finish = fluid.play(ops, [0, 1, 2], NET, start=[0, 10e-6, 0])
        transfer_done = 10e-6 + INTER.alpha + b * INTER.beta
        if sender_waits:
            assert finish[0] == pytest.approx(transfer_done + INTER.alpha, rel=1e-12)
        else:
            assert finish[0] == pytest.approx(INTER.alpha, rel=1e-12)
        assert finish[1] == pytest.approx(transfer_done, rel=1e-12)


def test_times_scale_with_the_parameters():
    # every time is α's and β's times counts: doubling every parameter doubles every finish (a check that nothing
    # in the play is a constant in seconds)
    counts = schedule.even_counts(1_384_448, 64)
    ops = schedule.programs("ring", counts)
    node = schedule.consecutive_nodes(64, 16)
    double = schedule.Network(*(Params(2 * q.alpha, 2 * q.beta) for q in (INTRA, INTER, CROSS)))
    once = fluid.play(ops, node, NET, node // 2)
    assert fluid.play(ops, node, double, node // 2) == pytest.approx(2 * once, rel=1e-9)


def test_unmatched_and_deadlocked_programs_are_errors():
    with pytest.raises(ValueError, match="unmatched"):
        fluid.play([[send(1, 8.0)], []], [0, 0], NET)
    with pytest.raises(ValueError, match="deadlock"):
        # both receive first, then send: each waits for the other's send (above the detached size)
        b = float(schedule.DETACHED_BYTES)
        fluid.play([[receive(1, b), send(1, b)], [receive(0, b), send(0, b)]], [0, 1], NET)


def test_switches_from_platform_files():
    def hosts(*nodes):
        return [f"node-{n}" for n in nodes]

    fat_tree = open("sim/platforms/fattree-64x16.xml").read()
    switch, how = topology.switches(hosts(0, 15, 16, 47, 48, 63), fat_tree)
    assert switch.tolist() == [0, 0, 1, 2, 3, 3] and "16 nodes per leaf switch" in how
    racks = open("sim/platforms/twolevel-8x8x16.xml").read()
    assert topology.switches(hosts(0, 7, 8, 63), racks)[0].tolist() == [0, 0, 1, 7]
    crossbar = open("sim/platforms/crossbar-64x16.xml").read()
    assert topology.switches(hosts(0, 63), crossbar)[0].tolist() == [0, 0]
    real, how = topology.switches(["a", "b"], "")
    assert real.tolist() == [0, 0] and "real run" in how
    unknown, how = topology.switches(hosts(0, 99), crossbar)
    assert unknown.tolist() == [0, 0] and "not in any cluster" in how and "node-99" in how
    assert "does not parse" in topology.switches(["x"], "<platform")[1]


def test_climbs_from_platform_files():
    """d-mod-k on the fat tree (up = 1,16 parents): a message to node n climbs to spine n mod 16; other platforms
    and real runs have no spine links."""
    fat_tree = open("sim/platforms/fattree-64x16.xml").read()
    assert topology.climbs([f"node-{n}" for n in (0, 10, 26, 42, 63)], fat_tree).tolist() == [0, 10, 10, 10, 15]
    assert topology.climbs(["node-0"], open("sim/platforms/crossbar-64x16.xml").read()) is None
    assert topology.climbs(["node-0"], open("sim/platforms/twolevel-8x8x16.xml").read()) is None
    assert topology.climbs(["a"], "") is None
    assert topology.climbs(["node-99"], fat_tree) is None


def test_flows_of_one_leaf_to_one_residue_share_its_link_to_a_spine():
    """Ranks on two nodes of leaf 0 send to nodes of leaf 1 and leaf 2 that climb to the same spine: the two flows
    share leaf 0's link to it (1/β_cross) though no node link is shared; climbing to different spines, or without
    spine links (climb None), each runs at its full rate. Found against SimGrid's fat tree: without these links
    ranks of a 1,024-rank Bruck exchange left up to 86 µs early."""
    ops = [[send(2, MB)], [send(3, MB)], [receive(0, MB)], [receive(1, MB)]]
    node, switch = [0, 1, 2, 3], [0, 0, 1, 2]
    alone = CROSS.alpha + MB * CROSS.beta
    shared = fluid.play(ops, node, NET, switch, climb=[0, 1, 5, 5])
    assert shared[2:] == pytest.approx([CROSS.alpha + 2 * MB * CROSS.beta] * 2, rel=1e-12)
    apart = fluid.play(ops, node, NET, switch, climb=[0, 1, 5, 6])
    assert apart[2:] == pytest.approx([alone] * 2, rel=1e-12)
    assert fluid.play(ops, node, NET, switch)[2:] == pytest.approx([alone] * 2, rel=1e-12)
    # under one leaf nothing climbs, whatever the residues
    same_leaf = fluid.play(ops, node, NET, [0, 0, 0, 0], climb=[0, 1, 5, 5])
    assert same_leaf[2:] == pytest.approx([INTER.alpha + MB * INTER.beta] * 2, rel=1e-12)


def test_a_program_computes_before_its_operations_and_reports_each_one():
    """play_program's delays: rank 1 computes 10 µs before it posts its receive, so the message starts then; each
    operation's completion is reported (rank 0's send is detached: done when posted)."""
    small = 1000.0
    ops = [[send(1, small), send(1, small)], [receive(0, small), receive(0, small)]]
    finish, completed = fluid.play_program(ops, [0, 1], NET, delays=[[0.0, 0.0], [10e-6, 5e-6]])
    one = INTER.alpha + small * INTER.beta
    assert completed[0] == pytest.approx([0.0, 0.0], abs=1e-15)
    assert completed[1] == pytest.approx([10e-6 + one, 10e-6 + one + 5e-6 + one], rel=1e-12)
    assert finish == pytest.approx([0.0, 10e-6 + one + 5e-6 + one], rel=1e-12)
    assert fluid.play(ops, [0, 1], NET).tolist() == fluid.play_program(ops, [0, 1], NET)[0].tolist()


def test_one_play_of_a_pass_shares_links_across_boundaries():
    """Two boundaries of a pass, each the mpich ring of one 4 MB (then 2 MB) block from rank 0, on two nodes
    alternating (ranks 0, 2 on node 1; 1, 3 on node 0). The ring lets ranks leave the first boundary at different
    times, and those who left start the second while the last of the first's flows still cross the same node link:
    played as one program the first boundary ends 2.8% later than played by itself (a ratio found by trying the
    layouts of four ranks on two nodes; the others tie). On one node (nothing shared) both plays give the same
    times."""
    first, second = np.array([4 * MB, 0.0, 0.0, 0.0]), np.array([2 * MB, 0.0, 0.0, 0.0])
    boundaries = [("allgatherv", first), ("allgatherv", second)]
    compute = np.zeros((2, 4))
    node = [1, 0, 1, 0]
    together, _ = schedule.predict_pass(compute, boundaries, node, NET, "ring")
    apart, _ = schedule.predict_pass(compute, boundaries, node, NET, "ring", one_play=False)
    assert together[0].transfer == pytest.approx(apart[0].transfer * 1.028, rel=1e-3)
    one_node = [0, 0, 0, 0]
    together, whole = schedule.predict_pass(compute, boundaries, one_node, NET, "ring")
    apart, whole_apart = schedule.predict_pass(compute, boundaries, one_node, NET, "ring", one_play=False)
    assert [q.layer for q in together] == pytest.approx([q.layer for q in apart], rel=1e-12)
    assert whole == pytest.approx(whole_apart, rel=1e-12)


def test_a_pass_starts_with_the_barrier_that_lines_the_ranks_up():
    """predict_pass with a broadcast is a run's pass: a barrier (src/experiment.cpp), then the input broadcast. On
    four nodes the barrier's exits are spread; the times are from the first rank out of it, and the pass is the
    longest of the ranks' own passes (from its barrier exit), as the files' forward times are — both plays alike."""
    node = [0, 1, 2, 3]
    barrier = fluid.play(schedule.barrier_programs(4), node, NET)
    origin = barrier - barrier.min()
    assert np.ptp(origin) > 0  # the barrier leaves them apart
    broadcast = fluid.play(schedule.input_broadcast_programs("allgatherv", 0.2 * MB, node), node, NET, start=origin)
    compute = np.array([[1e-6, 2e-6, 3e-6, 4e-6]])
    for one_play in (True, False):
        layers, whole = schedule.predict_pass(compute, [None], node, NET, broadcast=("allgatherv", 0.2 * MB),
                                              one_play=one_play)
        assert layers[0].exits == pytest.approx(broadcast + compute[0], rel=1e-12)
        assert whole == pytest.approx(float((broadcast + compute[0] - origin).max()), rel=1e-12)
