"""The network as a fluid: the messages of `schedule`'s programs played event by event, each inter-node message a
flow that shares its node links with the flows in flight at every instant (weighted max-min fairness), as a
flow-level simulator does (SimGrid's LV08/SMPI model, which our simulations run), instead of `schedule.evaluate`'s
shares averaged over each message's duration.

Why: at 1,024 ranks the times of the layers after a boundary depend on *when* each rank leaves it, and a message
that starts alone on its link runs at the full link and leaves early while later ones share. Averaging the shares
gets each boundary's last exit right but not how spread the exits are; the next layer waits on that spread.

The model, in the fitted parameters only (`schedule.Network`):
- A message within a node takes α_intra + b·β_intra and shares nothing (a node's loopback is a fat pipe: a
  shared-memory copy per pair of cores); with a table of size factors (`Network.intra_factor`) that time is
  multiplied by the factor at b bytes, latency and bytes alike.
- A message between nodes waits its latency (α_inter under one switch, α_cross between switches), then its bytes
  flow out of the sender's node link and into the receiver's, each of capacity 1/β_inter, shared by the flows in
  flight: max-min fair, weighted by 1/α (a flow's share is inversely proportional to its round-trip latency, as TCP's
  is and as SimGrid's sharing penalty is — latency plus a constant per link crossed — for links that are alike). A
  flow between switches is also bounded by 1/β_cross. On a two-level fat tree (`climb`) it also climbs its leaf's
  link to the spine its destination's position picks (d-mod-k, as SimGrid routes), of capacity 1/β_cross, shared
  with every flow of that leaf to destinations of the same residue — from whichever node of the leaf, at whichever
  step of its exchange: at 1,024 ranks the ranks of a Bruck exchange are at different steps, and two nodes of one
  leaf then send to one spine (without this link ranks left GELU's boundary up to 86 µs early). The way down from
  a spine to a leaf carries only flows to one node there, which its node link already limits. What is not
  modelled: a backbone of less than full bisection, other topologies' links between switches.
- A message starts when both sides have posted it; a send below `DETACHED_BYTES` is detached (its sender
  goes on). Every rank posts its operation's sends and receives together and goes on when they are done;
  `play_program` also lets a rank compute for a while before an operation, so that a whole pass is one play.

Pure Python and numpy; `play` returns every rank's finish time, in seconds, on the clock the ranks started on.
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from analysis.schedule import Network, Op

# Below this many bytes SMPI sends detached: the sender goes on at once (smpi/send-is-detached-thresh, 65,536).
DETACHED_BYTES = 65536

INTRA, INTER, CROSS = 0, 1, 2
# A flow whose remaining bytes would take less than this many seconds more is done (float round-off of the fluid's
# steps, not a physical threshold: 1e-15 s is below any latency).
DONE_SECONDS = 1e-15


def play(ops: list[list[Op]], node, network: Network, switch=None, start=None, climb=None) -> np.ndarray:
    """[p] finish of every rank: see the module docstring. `node` [p] each rank's node; `switch` [p] the switch of
    each rank's node (None: all under one switch); `start` [p] seconds each rank reaches its first operation;
    `climb` [p] the spine a message to this rank climbs to from another leaf of a fat tree (`topology.climbs`;
    None: the links between switches are not modelled, only each flow's bound 1/β_cross)."""
    return play_program(ops, node, network, switch, start, climb)[0]


def play_program(ops: list[list[Op]], node, network: Network, switch=None, start=None, climb=None,
                 delays=None, factors=None) -> tuple[np.ndarray, list[list[float]]]:
    """`play`, with `delays` [p][operations]: seconds each rank computes before it posts each operation (None: none),
    so that a whole pass — its boundaries one after the other, the compute between them — is one play and a
    boundary's last flows share the links with the next one's first (at P = 1,024 the ranks that leave pool's
    boundary early start GELU's exchange while the last of pool's flows are still crossing); and `factors`
    [p][operations] (None: all 1) what the intra-node messages an operation posts take over their time (a
    boundary's in-pass factor: its gather measured as a pass leaves the caches, over the fresh one). Returns every
    rank's finish and, per rank, when each of its operations completed."""
    p = len(ops)
    node = np.asarray(node, dtype=int)
    switch = np.zeros(p, dtype=int) if switch is None else np.asarray(switch, dtype=int)
    start = np.zeros(p) if start is None else np.asarray(start, dtype=float)
    if p == 0:
        return np.zeros(0)
    cross = network.cross if network.cross is not None else network.inter
    alpha = (network.intra.alpha, network.inter.alpha, cross.alpha)
    capacity = 1.0 / network.inter.beta
    bound = (1.0 / network.intra.beta, capacity, 1.0 / cross.beta)

    # Messages matched in order per (sender, receiver), as MPI matches them.
    src, dst, size, op_factor = [], [], [], []
    index = {}

    def message(key, sender, receiver, b, factor):
        m = index.setdefault(key, len(index))
        if m == len(src):  # first seen from this side (both sides' operations are of one boundary)
            src.append(sender)
            dst.append(receiver)
            size.append(float(b))
            op_factor.append(factor)
        return m

    count_s, count_r = defaultdict(int), defaultdict(int)
    op_messages = []  # per rank, per op: [(message, waited)]
    for r, program in enumerate(ops):
        mine = []
        for i, (sends, receives, _) in enumerate(program):
            entries = []
            factor = 1.0 if factors is None else float(factors[r][i])
            for peer, b in sends:
                m = message((r, peer, count_s[(r, peer)]), r, peer, b, factor)
                count_s[(r, peer)] += 1
                entries.append((m, b >= DETACHED_BYTES))  # a detached send is not waited for
            for peer, b in receives:
                m = message((peer, r, count_r[(peer, r)]), peer, r, b, factor)
                count_r[(peer, r)] += 1
                entries.append((m, True))
            mine.append(entries)
        op_messages.append(mine)
    if set(count_s.items()) != set(count_r.items()):
        unmatched = set(count_s.items()) ^ set(count_r.items())
        raise ValueError(f"unmatched sends and receives: {sorted(unmatched)[:4]}")
    n_messages = len(src)
    src, dst, size = np.array(src, dtype=int), np.array(dst, dtype=int), np.array(size)
    kind = np.where(node[src] == node[dst], INTRA, np.where(switch[src] == switch[dst], INTER, CROSS))
    # What each message's own time is multiplied by: an intra-node message's size factor, 1 for every other (and
    # for all without a table: x · 1.0 is x, so those plays are unchanged to the last bit).
    scale = np.ones(n_messages)
    if network.intra_factor is not None and np.any(kind == INTRA):
        scale[kind == INTRA] = network.intra_factor.at(size[kind == INTRA])
    if factors is not None:
        scale[kind == INTRA] *= np.array(op_factor)[kind == INTRA]
    posted = np.zeros((n_messages, 2), dtype=bool)  # [m, (send, receive)]
    waiters = [[] for _ in range(n_messages)]
    remaining = size.copy()

    nodes = int(node.max()) + 1
    # Links: each node's out and in link (capacity 1/β_inter); on a fat tree each leaf's link up to each spine
    # (1/β_cross), which a flow between leaves climbs by its destination (d-mod-k), so flows out of different nodes
    # of one leaf to destinations of one residue share it; last, a link of no limit for flows that climb nothing.
    count = 2 * nodes
    climbing = np.full(n_messages, -1)
    if climb is not None:
        climb = np.asarray(climb, dtype=int)
        spines = int(climb.max()) + 1
        crossing = kind == CROSS
        climbing[crossing] = count + switch[src[crossing]] * spines + climb[dst[crossing]]
        count += (int(switch.max()) + 1) * spines
    climbing[climbing < 0] = count
    link_of = np.stack([node[src], nodes + node[dst], climbing], axis=1)
    link_capacity = np.full(count + 1, capacity)
    link_capacity[2 * nodes:count] = 1.0 / cross.beta
    link_capacity[count] = np.inf
    # Shares inversely proportional to latency; with a latency of 0 (a fit that could not pin it down) fair shares.
    weight = 1.0 / np.array(alpha)[kind] if min(alpha) > 0 else np.ones(n_messages)
    flow_bound = np.array(bound)[kind]

    position = np.zeros(p, dtype=int)
    delayed = np.zeros(p, dtype=bool)  # the rank's compute before its current operation is done
    completed = [[] for _ in range(p)]  # per rank, when each operation completed
    pending = np.zeros(p, dtype=int)  # messages the rank's current operation still waits for
    finish = start.copy()
    events = []  # (time, sequence, what, value): what 0 = a rank starts, 1 = latency over, 2 = message done
    sequence = 0

    def push(t, what, value):
        nonlocal sequence
        heapq.heappush(events, (t, sequence, what, value))
        sequence += 1

    active = []  # messages whose bytes are flowing between nodes
    changed = False

    def post(r, now):
        """Rank r posts its operations from its current one on, as long as they complete at once."""
        while position[r] < len(ops[r]):
            if delays is not None and not delayed[r] and delays[r][position[r]] > 0:
                delayed[r] = True
                push(now + delays[r][position[r]], 0, r)
                return
            delayed[r] = False
            waiting = 0
            for m, waited in op_messages[r][position[r]]:
                side = 0 if src[m] == r else 1
                posted[m, side] = True
                if posted[m, 1 - side]:  # both posted: it starts now, with its latency
                    push(now + alpha[kind[m]] * scale[m], 1, m)
                if waited and remaining[m] >= 0:
                    waiters[m].append(r)
                    waiting += 1
            if waiting:
                pending[r] = waiting
                return
            completed[r].append(now)
            position[r] += 1
        finish[r] = now

    def done(m, now):
        remaining[m] = -1.0  # marks it done
        for r in waiters[m]:
            pending[r] -= 1
            if pending[r] == 0:
                completed[r].append(now)
                position[r] += 1
                post(r, now)
        waiters[m] = []

    for r in range(p):
        push(float(start[r]), 0, r)
    rate = np.zeros(0)
    now = float(start.min())
    while events or active:
        if changed:
            rate = _max_min(np.array(active, dtype=int), link_of, weight, flow_bound, link_capacity)
            changed = False
        t = events[0][0] if events else np.inf
        if active:
            ids = np.array(active, dtype=int)
            left = remaining[ids] / rate
            t = min(t, now + float(left.min()))
            remaining[ids] -= rate * (t - now)
            finished = left <= (t - now) + DONE_SECONDS
        now = t
        if active and finished.any():
            over = [m for m, f in zip(active, finished) if f]
            active = [m for m, f in zip(active, finished) if not f]
            changed = True
            for m in over:
                done(m, now)
        while events and events[0][0] <= now:
            _, _, what, value = heapq.heappop(events)
            if what == 0:
                post(value, now)
            elif what == 1:
                m = value
                if kind[m] == INTRA or size[m] <= 0:
                    push(now + size[m] / bound[INTRA] * scale[m] if kind[m] == INTRA else now, 2, m)
                else:
                    active.append(m)
                    changed = True
            else:
                done(value, now)
    if np.any(position < [len(program) for program in ops]):
        raise ValueError("deadlock in the schedule: every rank waits for a message nobody posts")
    return finish, completed


def _max_min(flows: np.ndarray, link_of: np.ndarray, weight, bound, capacity: np.ndarray) -> np.ndarray:
    """Rates of `flows` by weighted max-min fairness (progressive filling): every flow's rate is λ·weight until a
    link it crosses (`link_of` [messages, k] its links, `capacity` [links] theirs) is full or its own bound is
    reached, then it is frozen and λ rises for the others."""
    n = len(flows)
    rate = np.zeros(n)
    if n == 0:
        return rate
    on, w, b = link_of[flows], weight[flows], bound[flows]
    links = len(capacity)
    residual = capacity.astype(float)
    free = np.ones(n, dtype=bool)

    def load(which, values):
        total = np.bincount(on[which, 0], values, minlength=links)
        for column in range(1, on.shape[1]):
            total = total + np.bincount(on[which, column], values, minlength=links)
        return total

    while free.any():
        wsum = load(free, w[free])
        used = wsum > 0
        level = np.full(links, np.inf)
        level[used] = np.maximum(residual[used], 0.0) / wsum[used]
        flow_level = np.minimum(level[on].min(axis=1), b / w)
        lowest = float(flow_level[free].min())
        freeze = free & (flow_level <= lowest * (1 + 1e-12))
        rate[freeze] = lowest * w[freeze]
        residual -= load(freeze, rate[freeze])
        free &= ~freeze
    return rate
