"""Allgatherv as the MPI library runs it: which algorithm it picks, the messages that algorithm sends, and the time of
those messages' dependency graph on a machine of nodes (pure Python and numpy, no files, so the tests can check it).

Why not the closed forms of `costmodel`: they assume one algorithm, equal blocks and one kind of link. A real
boundary breaks all three. The library picks its algorithm by P and n (Open MPI 4.1's fixed decision rules, which
SimGrid 3.32 copies for `smpi/coll-selector:ompi`: Bruck, ring, neighbour exchange, gather + broadcast, pairwise);
a channel split of 32 channels over 64 ranks leaves half the blocks empty (the mpich ring then skips them, so the
pass becomes a pipeline, not P − 1 equal steps); and a step is as slow as its slowest message, which beyond one node
crosses the network and shares its node's link with that node's other ranks.

So each algorithm is written out as the program every rank runs (`programs`: per rank a list of operations, each
a set of sends and receives posted together and waited for), and `evaluate` plays it: a message starts when both
its sender and its receiver have posted it (SimGrid's rendezvous; a send below `DETACHED_BYTES` is detached, so its
sender does not wait for it) and takes α + b·β of its link, intra-node or inter-node. Inter-node messages that leave
(or enter) the same node share its link: a message of b bytes among others of b_j bytes takes Σ_j min(b_j, b)·β
(fair sharing of one link by flows that start together), each b_j counted for the fraction of the message's time it
is in flight too — first assuming a step's messages overlap completely, then as played, until the shares settle
(SHARING_PASSES). The result is every rank's finish and, because every time is a sum of such terms, its
coefficients on (α_intra, β_intra, α_inter, β_inter, α_cross, β_cross). The barrier before each `--calibrate` call
and the input broadcast before each pass are played the same way. That averaged play is `--sharing averaged`; by
default the model plays the same programs with `fluid.play` (links shared instant by instant) and takes the
coefficients of its times by differences (`fluid_coefficients`).

Sources (the decision rules and algorithms as SimGrid 3.32 implements them, which the simulations run):
src/smpi/colls/smpi_openmpi_selector.cpp (allgatherv__ompi, bcast__ompi, barrier__ompi), allgatherv-ompi-bruck.cpp,
allgatherv-mpich-ring.cpp, allgatherv-ompi-neighborexchange.cpp, allgatherv-GB.cpp, allgatherv-pair.cpp,
bcast-mvapich-smp.cpp (knomial, factor 4). Open MPI 4.1's coll/tuned has the same allgatherv table.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np

from analysis import fluid
from analysis.costmodel import Params
from analysis.fluid import DETACHED_BYTES

# Allgatherv algorithms with a schedule here; "auto" is the library's choice (ompi_allgatherv_algorithm).
ALGORITHMS = ("auto", "bruck", "ring", "neighbor-exchange", "recursive-doubling", "gather-bcast", "pair")
# The mpich ring moves a block in pieces of at most this many bytes (its `min`: 32768 * 8).
RING_PIECE_BYTES = 262144
KNOMIAL_FACTOR = 4  # bcast knomial's fan-out (mv2_intra_node_knomial_factor's default)
# Rounds of `evaluate`'s link sharing: the first assumes a step's messages over one link overlap completely, each
# next one shares a link only between messages whose played times overlap; it stops earlier once the loads settle.
SHARING_PASSES = 4
COEFFICIENTS = ("alpha_intra", "beta_intra", "alpha_inter", "beta_inter", "alpha_cross", "beta_cross")
K = len(COEFFICIENTS)


@dataclass(frozen=True)
class SizeFactors:
    """A factor by message size, measured: what an intra-node message of m bytes takes over its line α + m·β (SMPI's
    piecewise `smpi/bw-factor` plays the same part). A shared-memory transport is not one line in m: small messages
    pay a protocol step, and the bandwidth bends as the messages outgrow the caches; the line is fitted, the factors
    are read off what it leaves at the sizes a calibration timed. Between two measured sizes the factor is linear in
    log m (the sizes are a geometric grid, so that is where the points are evenly spread); outside the measured range
    it is the nearest end's (nothing was measured there to say how it bends), and an empty message (a barrier's) takes
    the smallest size's: the smallest calibrated messages are all latency already."""

    sizes: tuple[float, ...]  # message bytes, increasing, > 0
    factors: tuple[float, ...]  # [len(sizes)] the factor at each, > 0

    def __post_init__(self):
        sizes, factors = np.asarray(self.sizes, dtype=float), np.asarray(self.factors, dtype=float)
        if len(sizes) == 0 or sizes.shape != factors.shape:
            raise ValueError(f"size factors need as many factors as sizes, at least one: {self.sizes}, {self.factors}")
        if np.any(sizes <= 0) or np.any(np.diff(sizes) <= 0) or np.any(factors <= 0):
            raise ValueError(f"size factors need increasing positive sizes and positive factors: {self.sizes}, "
                             f"{self.factors}")

    def at(self, m):
        """The factor of a message of m bytes (a number or an array of them)."""
        log_m = np.log(np.maximum(np.asarray(m, dtype=float), self.sizes[0]))  # m = 0: the smallest size's
        factor = np.interp(log_m, np.log(self.sizes), self.factors)  # np.interp holds the ends beyond them
        return float(factor) if np.ndim(factor) == 0 else factor


@dataclass(frozen=True)
class Network:
    """Per-message parameters within a node (intra), between nodes under one switch (inter) and between nodes under
    different switches (cross; None: priced as inter); `intra_factor`, when given, multiplies each intra-node
    message's α + b·β by its factor at b bytes (None: the line alone). `theta` and `of` are the line's parameters
    only: the fit works on the line, and the factors are measured from what it leaves."""

    intra: Params
    inter: Params
    cross: Params | None = None
    intra_factor: SizeFactors | None = None

    def intra_scale(self, b: float) -> float:
        """What an intra-node message of b bytes is multiplied by: its size factor, 1 without a table."""
        return 1.0 if self.intra_factor is None else self.intra_factor.at(b)

    @property
    def theta(self) -> np.ndarray:
        cross = self.cross if self.cross is not None else self.inter
        return np.array([self.intra.alpha, self.intra.beta, self.inter.alpha, self.inter.beta, cross.alpha,
                         cross.beta])

    @staticmethod
    def of(theta) -> "Network":
        """The network of the parameters `theta` [K], in the order of COEFFICIENTS (the inverse of `theta`)."""
        return Network(Params(theta[0], theta[1]), Params(theta[2], theta[3]), Params(theta[4], theta[5]))


def ompi_allgatherv_algorithm(p: int, total_bytes: float) -> str:
    """The algorithm Open MPI 4.1's fixed rules (SimGrid 3.32's allgatherv__ompi) choose for p ranks and n bytes in
    all: by p and the average block, n / p."""
    if p <= 1:
        return "none"
    per_rank = total_bytes // p
    # Each row: the communicator sizes it covers (p < limit), then (block size limit, algorithm) in order, and the
    # algorithm for blocks beyond the last limit. Names: 1 gather-bcast, 2 bruck, 3 ring, 4 neighbor-exchange,
    # 5 pair (two_proc).
    table = (
        (3, ((2048, "ring"), (4096, "pair"), (8192, "ring")), "pair"),
        (8, ((256, "gather-bcast"), (4096, "neighbor-exchange"), (8192, "ring"), (16384, "neighbor-exchange"),
             (262144, "bruck")), "neighbor-exchange"),
        (16, ((1024, "gather-bcast"),), "bruck"),
        (32, ((128, "gather-bcast"), (262144, "bruck")), "ring"),
        (64, ((256, "gather-bcast"), (8192, "bruck")), "ring"),
        (128, ((256, "gather-bcast"), (4096, "bruck")), "ring"),
        (256, ((1024, "bruck"), (65536, "neighbor-exchange")), "ring"),
        (512, ((1024, "bruck"),), "ring"),
        (1024, ((512, "bruck"), (1024, "gather-bcast"), (4096, "bruck"), (1048576, "neighbor-exchange")), "ring"),
        (math.inf, ((4096, "bruck"),), "neighbor-exchange"),
    )
    for limit, rules, beyond in table:
        if p < limit:
            for size_limit, algorithm in rules:
                if per_rank < size_limit:
                    return algorithm
            return beyond
    raise AssertionError("unreachable")


def resolve(algorithm: str, p: int, total_bytes: float) -> str:
    """The algorithm that really runs: the library's choice for "auto"; neighbour exchange needs an even p (the
    library falls back to a ring), recursive doubling a power of two (Bruck otherwise), pair p = 2."""
    chosen = ompi_allgatherv_algorithm(p, total_bytes) if algorithm == "auto" else algorithm
    if chosen == "neighbor-exchange" and p % 2:
        return "ring"
    if chosen == "recursive-doubling" and p & (p - 1):
        return "bruck"
    if chosen == "pair" and p != 2:
        return "ring"
    return chosen


# One operation of one rank: (sends, receives, step); sends and receives are tuples of (peer, bytes). The rank
# posts all of them at once and goes on when they are done.
Op = tuple[tuple[tuple[int, float], ...], tuple[tuple[int, float], ...], int]


def programs(algorithm: str, counts: np.ndarray) -> list[list[Op]]:
    """Every rank's operations for an Allgatherv of blocks `counts` [p] bytes (rank r contributes counts[r])."""
    counts = [float(c) for c in counts]
    p = len(counts)
    if p <= 1:
        return [[] for _ in range(p)]
    make = {"bruck": _bruck, "ring": _ring, "neighbor-exchange": _neighbor_exchange,
            "recursive-doubling": _recursive_doubling, "gather-bcast": _gather_bcast, "pair": _pair}
    return make[algorithm](counts)


def _bruck(counts):
    p = len(counts)
    ops = [[] for _ in range(p)]
    distance, step = 1, 0
    while distance < p:
        blocks = distance if distance <= p // 2 else p - distance
        for r in range(p):
            sent = sum(counts[(r + i) % p] for i in range(blocks))
            source = (r + distance) % p
            received = sum(counts[(source + i) % p] for i in range(blocks))
            ops[r].append(((((r - distance) % p, sent),), ((source, received),), step))
        distance *= 2
        step += 1
    return ops


def _ring(counts):
    """The mpich ring: each rank forwards blocks to its right neighbour, starting with its own, in pieces of at most
    RING_PIECE_BYTES, and skips what is empty (it sends only, receives only, or does nothing)."""
    p = len(counts)
    smallest = min(counts)
    piece = max(smallest, RING_PIECE_BYTES)  # mpich's `min`: the smallest block, at least 256 KiB
    ops = [[] for _ in range(p)]
    total = sum(counts)
    for r in range(p):
        left, right = (r - 1) % p, (r + 1) % p
        to_send, to_receive = total - counts[right], total - counts[r]
        send_index, receive_index, send_offset, receive_offset, step = r, left, 0.0, 0.0, 0
        while to_send > 0 or to_receive > 0:
            send_now = min(piece, counts[send_index] - send_offset) if to_send > 0 else 0.0
            receive_now = min(piece, counts[receive_index] - receive_offset) if to_receive > 0 else 0.0
            if send_now or receive_now:
                ops[r].append((((right, send_now),) if send_now else (),
                               ((left, receive_now),) if receive_now else (), step))
            to_send -= send_now
            to_receive -= receive_now
            send_offset += send_now
            receive_offset += receive_now
            if send_offset >= counts[send_index]:
                send_offset, send_index = 0.0, (send_index - 1) % p
            if receive_offset >= counts[receive_index]:
                receive_offset, receive_index = 0.0, (receive_index - 1) % p
            step += 1
    return ops


def _neighbor_exchange(counts):
    p = len(counts)
    ops = [[] for _ in range(p)]
    for r in range(p):
        even = r % 2 == 0
        neighbor = ((r + 1) % p, (r - 1) % p) if even else ((r - 1) % p, (r + 1) % p)
        offset = (2, -2) if even else (-2, 2)
        receive_from = [r, r] if even else [neighbor[0], neighbor[0]]
        ops[r].append((((neighbor[0], counts[r]),), ((neighbor[0], counts[neighbor[0]]),), 0))
        send_from = r if even else receive_from[0]
        for i in range(1, p // 2):
            parity = i % 2
            receive_from[parity] = (receive_from[parity] + offset[parity]) % p
            sent = counts[send_from] + counts[(send_from + 1) % p]
            received = counts[receive_from[parity]] + counts[(receive_from[parity] + 1) % p]
            ops[r].append((((neighbor[parity], sent),), ((neighbor[parity], received),), i))
            send_from = receive_from[parity]
    return ops


def _recursive_doubling(counts):
    p = len(counts)
    ops = [[] for _ in range(p)]
    distance, step = 1, 0
    while distance < p:
        for r in range(p):
            partner = r ^ distance
            mine = r & ~(distance - 1)
            theirs = partner & ~(distance - 1)
            ops[r].append((((partner, sum(counts[mine:mine + distance])),),
                           ((partner, sum(counts[theirs:theirs + distance])),), step))
        distance *= 2
        step += 1
    return ops


def _pair(counts):
    return [[(((1 - r, counts[r]),), ((1 - r, counts[1 - r]),), 0)] for r in range(2)]


def _gather_bcast(counts):
    """Gatherv to rank 0 (every other rank sends its block; rank 0 receives them all at once), then a knomial
    broadcast (fan-out KNOMIAL_FACTOR) of the whole tensor from rank 0."""
    p, total = len(counts), sum(counts)
    ops = [[] for _ in range(p)]
    ops[0].append(((), tuple((q, counts[q]) for q in range(1, p)), 0))
    for r in range(1, p):
        ops[r].append((((0, counts[r]),), (), 0))
    for r, step_ops in enumerate(_knomial_bcast(p, total)):
        ops[r] += step_ops
    return ops


def _knomial_bcast(p: int, n: float, first_step: int = 1):
    ops = [[] for _ in range(p)]
    k = KNOMIAL_FACTOR
    for r in range(p):
        mask = 1
        while mask < p:
            if r % (k * mask):
                parent = r // (k * mask) * (k * mask)
                ops[r].append(((), ((parent, n),), first_step + _level(mask, k)))
                break
            mask *= k
        mask //= k
        while mask > 0:
            children = [r + mask * j for j in range(1, k) if r + mask * j < p]
            if children:
                ops[r].append((tuple((c, n) for c in children), (), first_step + _level(mask, k) + 1))
            mask //= k
    return ops


def _level(mask: int, k: int) -> int:
    return round(math.log(mask, k)) if mask > 1 else 0


@dataclass(frozen=True)
class Timing:
    """Seconds until the last rank is done, and their coefficients on (α_intra, β_intra, α_inter, β_inter, α_cross,
    β_cross); and the same per rank (`finish`, `finish_coefficients`), on the clock the ranks started on."""

    seconds: float
    coefficients: np.ndarray  # [K]
    messages: int
    inter_messages: int
    finish: np.ndarray | None = None  # [p] seconds
    finish_coefficients: np.ndarray | None = None  # [p, K]


def evaluate(ops: list[list[Op]], node, network: Network, start=None, switch=None) -> Timing:
    """Plays the programs: see the module's docstring. `node` [p] is each rank's node; `start` [p] (default 0) the
    time each rank reaches its first operation, as seconds or as (seconds, coefficients [K]) pairs; `switch` [p] the
    switch of each rank's node (None: one switch), which makes a message between switches α_cross + b·β_cross."""
    p = len(ops)
    if start is None:
        clock = [(0.0, np.zeros(K))] * p
    else:
        clock = [(float(v[0]), np.asarray(v[1], dtype=float)) if isinstance(v, tuple) else (float(v), np.zeros(K))
                 for v in start]
    if p == 0:
        return Timing(0.0, np.zeros(K), 0, 0, np.zeros(0), np.zeros((0, K)))
    node = [int(v) for v in node]
    switch = [0] * p if switch is None else [int(v) for v in switch]
    theta = network.theta
    # Messages, matched in order per (sender, receiver) as MPI matches them: key (sender, receiver, k).
    size = {}
    count_s, count_r = defaultdict(int), defaultdict(int)
    op_messages = []  # per rank, per op: list of (key, is_send)
    for r, program in enumerate(ops):
        mine = []
        for sends, receives, step in program:
            keys = []
            for peer, b in sends:
                key = (r, peer, count_s[(r, peer)])
                count_s[(r, peer)] += 1
                size[key] = (b, step)
                keys.append((key, True))
            for peer, b in receives:
                key = (peer, r, count_r[(peer, r)])
                count_r[(peer, r)] += 1
                keys.append((key, False))
            mine.append(keys)
        op_messages.append(mine)
    unmatched = set(count_s.items()) ^ set(count_r.items())
    if unmatched:
        raise ValueError(f"unmatched sends and receives: {sorted(unmatched)[:4]}")
    # Which node link each inter-node message crosses: out of its sender's node and into its receiver's.
    links = defaultdict(list)
    for key in size:
        s, d, _ = key
        if node[s] != node[d]:
            links[("out", node[s])].append(key)
            links[("in", node[d])].append(key)
    inter_count = sum(1 for s, d, _ in size if node[s] != node[d])
    # An intra-node message's α and β both scale by its size factor (1 without a table), so its coefficients do too.
    intra_scale = {key: network.intra_scale(b) for key, (b, _) in size.items() if node[key[0]] == node[key[1]]}
    # First pass: the messages of one algorithm step that cross one link all share it for their whole duration.
    load = {}
    for group in links.values():
        by_step = defaultdict(list)
        for key in group:
            by_step[size[key][1]].append(key)
        for keys in by_step.values():
            for key in keys:
                b = size[key][0]
                load[key] = max(load.get(key, 0.0), sum(min(size[k][0], b) for k in keys))
    start_clock = clock
    for _ in range(SHARING_PASSES):
        clock, spans = _play(op_messages, size, node, switch, theta, load, intra_scale, list(start_clock), ops)
        # Next pass: a message shares a link with another only while both are in flight, as played.
        new_load = {}
        for group in links.values():
            begin = np.array([spans[k][0] for k in group])
            end = np.array([spans[k][1] for k in group])
            sizes = np.array([size[k][0] for k in group])
            overlap = np.clip(np.minimum(end[:, None], end[None, :]) - np.maximum(begin[:, None], begin[None, :]),
                              0, None)
            duration = np.maximum(end - begin, 1e-300)
            share = overlap / duration[:, None]
            np.fill_diagonal(share, 1.0)
            shared = (np.minimum(sizes[None, :], sizes[:, None]) * share).sum(axis=1)
            for key, value in zip(group, shared):
                new_load[key] = max(new_load.get(key, 0.0), float(value))
        if all(abs(new_load[k] - load[k]) <= 1e-3 * max(load[k], 1.0) for k in load):
            break
        load = new_load
    finish = np.array([c[0] for c in clock])
    coefficients = np.array([c[1] for c in clock])
    last = int(np.argmax(finish))
    return Timing(float(finish[last]), coefficients[last], len(size), inter_count, finish, coefficients)


def _play(op_messages, size, node, switch, theta, load, intra_scale, clock, ops):
    """One play of the programs with each inter-node message's shared bytes `load` and each intra-node message's
    size factor `intra_scale`: per rank its finish (seconds, coefficients), and per message its (start, end)."""
    p = len(ops)
    posted_send, posted_recv, done_at, spans = {}, {}, {}, {}
    cost = {}
    for key, (b, _) in size.items():
        s, d, _ = key
        cost[key] = np.zeros(K)
        where = 0 if node[s] == node[d] else 2 if switch[s] == switch[d] else 4
        cost[key][where:where + 2] = (intra_scale[key], intra_scale[key] * b) if where == 0 else (1.0, load[key])
    position = [0] * p

    def post(r):
        # A message starts when both sides have posted it (SimGrid's rendezvous in the mailbox).
        t = clock[r]
        for key, is_send in op_messages[r][position[r]]:
            (posted_send if is_send else posted_recv)[key] = t
            if key in posted_send and key in posted_recv and key not in done_at:
                a, b = posted_send[key], posted_recv[key]
                begin = a if a[0] >= b[0] else b
                c = cost[key]
                done_at[key] = (begin[0] + float(c @ theta), begin[1] + c)
                spans[key] = (begin[0], done_at[key][0])

    def try_finish(r):
        latest = clock[r]
        for key, is_send in op_messages[r][position[r]]:
            if is_send and size[key][0] < DETACHED_BYTES:
                continue  # detached: the sender does not wait for it
            if key not in done_at:
                return False
            if done_at[key][0] > latest[0]:
                latest = done_at[key]
        clock[r] = latest
        position[r] += 1
        return True

    # Pure max-plus algebra: the order in which ranks are visited changes no time.
    ready, pending = list(range(p)), []
    while ready or pending:
        for r in ready:
            if position[r] < len(ops[r]):
                post(r)
                pending.append(r)
        ready, still = [], []
        for r in pending:
            (ready if try_finish(r) else still).append(r)
        if not ready and still:
            raise ValueError("deadlock in the schedule: every rank waits for a message nobody posts")
        pending = still
    return clock, spans


def allgatherv_time(counts, node, network: Network, algorithm: str = "auto", start=None) -> tuple[str, Timing]:
    """(the algorithm that runs, its timing) for blocks `counts` [p] bytes on ranks placed on nodes `node` [p]."""
    counts = np.asarray(counts, dtype=float)
    chosen = resolve(algorithm, len(counts), float(counts.sum()))
    ops = programs(chosen, counts) if chosen != "none" else [[] for _ in counts]
    return chosen, evaluate(ops, np.asarray(node), network, start)


def ompi_barrier_algorithm(p: int) -> str:
    """MPI_Barrier's algorithm by Open MPI 4.1's fixed rules (SimGrid 3.32's barrier__ompi)."""
    if p < 4 or 8 <= p < 64:
        return "recursive-doubling"
    if p < 8:
        return "linear"
    return "dissemination"  # bruck (64-255, 512-1023); the tree of 256-511 and 1024+ has as many rounds


def barrier_programs(p: int) -> list[list[Op]]:
    """Empty messages of MPI_Barrier among p ranks (ranks 0 … p−1), as `ompi_barrier_algorithm` runs it."""
    algorithm = ompi_barrier_algorithm(p)
    ops = [[] for _ in range(p)]
    if p <= 1:
        return ops
    if algorithm == "linear":  # everyone to rank 0, then rank 0 to everyone
        ops[0] = [((), tuple((q, 0.0) for q in range(1, p)), 0), (tuple((q, 0.0) for q in range(1, p)), (), 1)]
        for q in range(1, p):
            ops[q] = [(((0, 0.0),), (), 0), ((), ((0, 0.0),), 1)]
        return ops
    if algorithm == "recursive-doubling" and not p & (p - 1):
        distance, step = 1, 0
        while distance < p:
            for r in range(p):
                ops[r].append((((r ^ distance, 0.0),), ((r ^ distance, 0.0),), step))
            distance, step = distance * 2, step + 1
        return ops
    distance, step = 1, 0  # dissemination: send to r + d, receive from r − d
    while distance < p:
        for r in range(p):
            ops[r].append(((((r + distance) % p, 0.0),), (((r - distance) % p, 0.0),), step))
        distance, step = distance * 2, step + 1
    return ops


def on_ranks(ops: list[list[Op]], ranks, world: int, step_offset: int = 0) -> list[list[Op]]:
    """Programs of a sub-communicator (local ranks 0 … k−1) as programs of `world` ranks (local i is ranks[i])."""
    ranks = list(ranks)
    out = [[] for _ in range(world)]
    for local, program in enumerate(ops):
        out[ranks[local]] = [(tuple((ranks[q], b) for q, b in sends), tuple((ranks[q], b) for q, b in receives),
                              step + step_offset) for sends, receives, step in program]
    return out


def concatenate(*parts: list[list[Op]]) -> list[list[Op]]:
    """Each rank runs its operations of every part, one part after the other."""
    world = len(parts[0])
    return [[op for part in parts for op in part[r]] for r in range(world)]


def hierarchical_programs(counts, node, algorithm: str = "auto") -> tuple[str, list[list[Op]]]:
    """The hierarchical consolidation's gather (src/consolidation.cpp, WindowConsolidation::finish): a barrier on
    each node (publish), MPI_Allgatherv of each node's block among the node leaders (the lowest rank of each node)
    when there are several nodes, and a barrier on each node again. Loads and stores in the window are not MPI
    traffic (and cost no simulated time under SMPI)."""
    counts = np.asarray(counts, dtype=float)
    node = np.asarray(node)
    world = len(counts)
    nodes = list(dict.fromkeys(int(v) for v in node))
    members = {n: [r for r in range(world) if node[r] == n] for n in nodes}

    def barriers(offset):
        parts = [on_ranks(barrier_programs(len(members[n])), members[n], world, offset) for n in nodes]
        return concatenate(*parts) if len(parts) > 1 else parts[0]

    if len(nodes) == 1:
        return "barrier", barriers(0)
    leaders = [members[n][0] for n in nodes]
    node_counts = np.array([counts[members[n]].sum() for n in nodes])
    chosen = resolve(algorithm, len(leaders), float(node_counts.sum()))
    gather = on_ranks(programs(chosen, node_counts), leaders, world, 100)
    return chosen, concatenate(barriers(0), gather, barriers(10_000))


def calibration_time(collective_ops: list[list[Op]], node, network: Network, switch=None) -> tuple[float, np.ndarray]:
    """What `--calibrate` measures for one call (time_collectives): every rank leaves an MPI_Barrier, times the call
    from there, and the slowest rank's time is kept: max over ranks of (its finish − its barrier exit), with the
    coefficients of that difference. The barrier's skew is part of what small calls measure."""
    p = len(collective_ops)
    barrier = evaluate(barrier_programs(p), node, network, switch=switch)
    starts = [(float(barrier.finish[r]), barrier.finish_coefficients[r]) for r in range(p)]
    call = evaluate(collective_ops, node, network, starts, switch)
    spans = call.finish - barrier.finish
    r = int(np.argmax(spans))
    return float(spans[r]), call.finish_coefficients[r] - barrier.finish_coefficients[r]


def fluid_calibration_time(collective_ops: list[list[Op]], node, network: Network, switch=None,
                           climb=None) -> float:
    """`calibration_time` with the messages played by `fluid.play` (links shared instant by instant)."""
    barrier = fluid.play(barrier_programs(len(collective_ops)), node, network, switch, climb=climb)
    call = fluid.play(collective_ops, node, network, switch, barrier, climb)
    return float((call - barrier).max())


def fluid_coefficients(seconds_at, network: Network, columns) -> tuple[float, np.ndarray]:
    """(seconds, coefficients [K]) of a time `seconds_at(network)` played by `fluid.play`. A fluid play is
    homogeneous of degree one in the parameters (scale every α and β by c and every time scales by c: the flows'
    weights 1/α keep their ratios), so by Euler's theorem its time is exactly gradient · θ, and the gradient is
    what a least-squares fit needs. Central differences of relative step 1e-6 over `columns` (the classes the
    play uses; the others are 0): central, because the play is piecewise linear and a fit often sits on a kink —
    a flow between switches limited as much by its node link (β_inter) as by its own bound (β_cross) — where
    one-sided differences would count the same seconds in both columns."""
    theta = network.theta
    seconds = seconds_at(network)
    row = np.zeros(K)

    def moved(parameters):  # the line moved, its size factors kept (the time stays homogeneous: they are fixed)
        return replace(Network.of(parameters), intra_factor=network.intra_factor)

    for c in columns:
        step = max(theta[c], 1e-30) * 1e-6
        up, down = theta.copy(), theta.copy()
        up[c] += step
        down[c] -= step
        row[c] = (seconds_at(moved(up)) - seconds_at(moved(down))) / (2 * step)
    return seconds, row


def columns_used(node, switch=None) -> list[int]:
    """The coefficients a play on these ranks can depend on: intra when two ranks share a node, inter when two
    nodes share a switch, cross when there are several switches — and then β_inter too: in a fluid play the node
    links a flow between switches crosses have the capacity 1/β_inter (`fluid`)."""
    node = np.asarray(node)
    switch = np.zeros(len(node), dtype=int) if switch is None else np.asarray(switch)
    columns = []
    if len(set(node.tolist())) < len(node):
        columns += [0, 1]
    nodes_per_switch = {}
    for n, s in zip(node.tolist(), switch.tolist()):
        nodes_per_switch.setdefault(s, set()).add(n)
    if any(len(members) > 1 for members in nodes_per_switch.values()):
        columns += [2, 3]
    if len(nodes_per_switch) > 1:
        columns = sorted(set(columns) | {3, 4, 5})
    return columns


def even_counts(total_bytes: float, p: int, unit: int = 4) -> np.ndarray:
    """Blocks of `--calibrate`'s Allgatherv: n / 4 floats split in blocks, the first ranks one float more."""
    items = int(total_bytes) // unit
    base, extra = divmod(items, p)
    return np.array([(base + (r < extra)) * unit for r in range(p)], dtype=float)


def consecutive_nodes(p: int, ranks_per_node: int) -> np.ndarray:
    """[p] node of each rank when consecutive ranks fill nodes of `ranks_per_node`."""
    return np.arange(p) // max(1, ranks_per_node)


@dataclass(frozen=True)
class LayerPrediction:
    """One layer of a modelled pass, in the measurements' own terms (records.hpp's skew rule): per rank the step
    starts at `start`, computes, enters its boundary, waits until the last rank entered and transfers until it
    leaves. Each value is the slowest rank's."""

    algorithm: str
    compute: float
    wait: float
    transfer: float
    layer: float  # max over ranks of exit − start: compute + wait + transfer of one rank
    exits: np.ndarray | None = None  # [p] when each rank leaves the boundary, seconds from the pass's start


def input_broadcast_programs(kind: str, n: float, node) -> list[list[Op]]:
    """The input broadcast from rank 0 that begins every pass: MPI_Bcast of n bytes, which Open MPI 4.1's rules
    (bcast__ompi) run as a knomial tree at P ≥ 32 and these sizes (other P: the same tree, an approximation); under
    hierarchical, the same among the node leaders, then a barrier on each node (publish)."""
    node = np.asarray(node)
    world = len(node)
    if kind != "hierarchical":
        return _knomial_bcast(world, n, first_step=0)
    nodes = list(dict.fromkeys(int(v) for v in node))
    members = {m: [r for r in range(world) if node[r] == m] for m in nodes}
    leaders = [members[m][0] for m in nodes]
    parts = [on_ranks(_knomial_bcast(len(leaders), n, first_step=0), leaders, world)] if len(leaders) > 1 else []
    parts += [on_ranks(barrier_programs(len(members[m])), members[m], world, 1000) for m in nodes]
    return concatenate(*parts)


def _layer(algorithm: str, compute: np.ndarray, start, enter, leave, moves: bool) -> LayerPrediction:
    """One layer in the measurements' terms (records.hpp) from each rank's start, boundary entry and exit: the wait
    until the last rank entered and the transfer after it, both 0 where nothing moves."""
    last_in = enter.max()
    wait = float((last_in - enter).max()) if moves else 0.0
    transfer = float(np.maximum(leave - last_in, 0).max()) if moves else 0.0
    return LayerPrediction(algorithm, float(compute.max()), wait, transfer, float((leave - start).max()), leave)


def _in_pass_factor(boundary) -> float:
    """A boundary's in-pass factor (`predict_pass`): its third item, 1 without one."""
    return float(boundary[2]) if boundary is not None and len(boundary) > 2 else 1.0


def _in_pass_network(network: Network, factor: float) -> Network:
    """The network with every intra-node message's time multiplied by `factor` too (a boundary played on its own)."""
    if factor == 1.0:
        return network
    table = network.intra_factor or SizeFactors((1.0,), (1.0,))
    return replace(network, intra_factor=SizeFactors(table.sizes, tuple(f * factor for f in table.factors)))


def predict_pass(compute: np.ndarray, boundaries: list, node, network: Network, algorithm: str = "auto",
                 broadcast: tuple[str, float] | None = None, switch=None,
                 sharing: str = "fluid", climb=None, one_play: bool = True) -> tuple[list[LayerPrediction], float]:
    """Plays a forward pass: `compute` [L, p] seconds of each rank's kernel per layer; `boundaries` per layer
    ("allgatherv" or "hierarchical", counts [p] bytes), optionally with a third item, the boundary's in-pass factor
    (its intra-node messages' times multiplied by it: `fluid.play_program`'s factors; 1 without it), ("fixed",
    seconds) for a collective priced by a closed form
    (everyone leaves that long after the last one entered), or None where nothing moves; `broadcast` (kind, bytes)
    the input broadcast before the first layer (None: every rank starts at 0); `switch` [p] the switch of each
    rank's node (None: one switch); `climb` [p] the spine a message to each rank climbs to on a fat tree
    (`fluid.play`; None: no links between switches). Each layer starts on each rank when it left the previous
    boundary, so the skew a boundary leaves is carried into the next layer as in the run. The messages are played by
    `fluid.play` (links shared instant by instant; `sharing="fluid"`) or by `evaluate` (shares averaged over each
    message's time, `sharing="averaged"`, which has no links between switches). With the fluid play and no closed
    form among the boundaries the whole pass is one play (`fluid.play_program`), so a boundary's last flows share
    the links with the first flows of the ranks that have already gone on to the next; otherwise (or with
    `one_play=False`) boundary by boundary. With `broadcast` (a run's pass) the pass starts, as in the program, with
    a barrier (src/experiment.cpp), whose exits are spread: times are from the first rank out of it. Returns the
    layers and the pass: the longest of the ranks' passes, from its barrier exit to its exit from the last
    boundary, as the files' forward times are."""
    node = np.asarray(node)
    p = compute.shape[1]
    has_broadcast = broadcast is not None and p > 1

    def boundary_programs(boundary):
        kind, what = boundary[:2]
        if kind == "hierarchical":
            return hierarchical_programs(what, node, algorithm)
        chosen = resolve(algorithm, p, float(np.sum(what)))
        return chosen, (programs(chosen, what) if chosen != "none" else [[] for _ in range(p)])

    if one_play and sharing == "fluid" and not any(b is not None and b[0] == "fixed" for b in boundaries):
        # One program per rank: the barrier and the broadcast, then per layer an empty operation that carries the
        # layer's compute (its completion is the rank's entry into the boundary) and the boundary's operations.
        barrier = barrier_programs(p) if has_broadcast else [[] for _ in range(p)]
        broadcast_ops = input_broadcast_programs(broadcast[0], broadcast[1], node) if has_broadcast \
            else [[] for _ in range(p)]
        ops = [list(barrier[r]) + list(broadcast_ops[r]) for r in range(p)]
        delays = [[0.0] * len(program) for program in ops]
        factors = [[1.0] * len(program) for program in ops]
        spans, chosen = [], []
        for l, boundary in enumerate(boundaries):
            algorithm_used, boundary_ops = ("none", [[] for _ in range(p)]) if boundary is None \
                else boundary_programs(boundary)
            chosen.append(algorithm_used)
            first = [len(program) for program in ops]
            for r in range(p):
                ops[r] = ops[r] + [((), (), -1 - l)] + list(boundary_ops[r])
                delays[r] = delays[r] + [float(compute[l][r])] + [0.0] * len(boundary_ops[r])
                factors[r] = factors[r] + [1.0] + [_in_pass_factor(boundary)] * len(boundary_ops[r])
            spans.append((first, [len(program) - 1 for program in ops]))
        _, completed = fluid.play_program(ops, node, network, switch, None, climb, delays, factors)
        # Times from the first rank out of the barrier, as the files' timestamps are (stats.iteration_starts).
        origin = np.array([completed[r][len(barrier[r]) - 1] if barrier[r] else 0.0 for r in range(p)])
        zero = origin.min()
        origin -= zero
        start = np.array([completed[r][spans[0][0][r] - 1] - zero if spans[0][0][r] > 0 else 0.0 for r in range(p)])
        out = []
        for l, (first, last) in enumerate(spans):
            enter = np.array([completed[r][first[r]] for r in range(p)]) - zero
            leave = np.array([completed[r][last[r]] for r in range(p)]) - zero
            out.append(_layer(chosen[l], compute[l], start, enter, leave, boundaries[l] is not None))
            start = leave
        return out, float((start - origin).max())

    def play(ops, start=None, factor=1.0):
        played = _in_pass_network(network, factor)
        if sharing == "fluid":
            return fluid.play(ops, node, played, switch, start, climb)
        return evaluate(ops, node, played, None if start is None else list(start), switch).finish

    origin = start = np.zeros(p)
    if has_broadcast:
        barrier = play(barrier_programs(p))
        origin = barrier - barrier.min()
        start = play(input_broadcast_programs(broadcast[0], broadcast[1], node), origin)
    out = []
    for l, boundary in enumerate(boundaries):
        enter = start + compute[l]
        if boundary is None:
            chosen, leave = "none", enter
        elif boundary[0] == "fixed":
            chosen, leave = "closed form", np.full(p, enter.max() + float(boundary[1]))
        else:
            chosen, ops = boundary_programs(boundary)
            leave = np.maximum(play(ops, enter, _in_pass_factor(boundary)), enter)
        out.append(_layer(chosen, compute[l], start, enter, leave, boundary is not None))
        start = leave
    return out, float((start - origin).max())
