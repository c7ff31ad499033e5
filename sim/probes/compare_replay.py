"""Every rank's exit of each replayed boundary: SimGrid's replay without the rest of the pass (allgatherv_replay's
output), the pass's own (the results file) and the model's play of the same messages from the replay's entries to
that boundary, with the platform's own α and β. Usage: compare_replay.py FILE.h5 REPLAY.out LAYER [LAYER ...]
[--no-climb]: the layers as given to replay_input.py; --no-climb plays without the fat tree's spine links."""
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from analysis import fluid, schedule  # noqa: E402
from analysis.costmodel import Params  # noqa: E402
from analysis.results import load  # noqa: E402

arguments = [a for a in sys.argv[1:] if a != "--no-climb"]
run = load(arguments[0]).runs[0]
replay = np.loadtxt(arguments[1], ndmin=2)
names = arguments[2:]
# the platforms' own parameters (sim/make_platforms.py): loopback; two node links; two node and two spine links
platform = schedule.Network(Params(0.3e-6, 1 / 20e9), Params(2e-6, 1 / 12.5e9), Params(4e-6, 1 / 12.5e9))
climbs = None if "--no-climb" in sys.argv else run.climbs
first = run.layers.index(names[0])
origin = run.timestamps.boundary_enter[0, first].min()


def spread(label, difference):
    p = np.percentile(1e6 * difference, [0, 1, 50, 99, 100])
    worst = int(np.argmax(np.abs(difference)))
    print(f"  {label:<34} least {p[0]:+8.2f}  1% {p[1]:+8.2f}  median {p[2]:+7.2f}  99% {p[3]:+7.2f}"
          f"  largest {p[4]:+8.2f} µs  (worst rank {worst})")


for k, name in enumerate(names):
    layer = run.layers.index(name)
    entered, left = replay[:, 1 + 2 * k], replay[:, 2 + 2 * k]
    in_pass = run.timestamps.boundary_exit[0, layer] - origin
    blocks = run.count[layer] * run.item_bytes[layer]
    ops = schedule.programs(schedule.resolve("auto", run.nprocs, float(blocks.sum())), blocks)
    played = fluid.play(ops, run.nodes, platform, run.switches, entered, climbs)
    print(f"{run.label} {name} at P = {run.nprocs}: per rank")
    spread("replay entry - pass entry", entered - (run.timestamps.boundary_enter[0, layer] - origin))
    spread("replay exit - pass exit", left - in_pass)
    spread("model - replay" + (" (no spine links)" if climbs is None else ""), played - left)
    print(f"  exit spread: pass {1e6 * np.ptp(in_pass):.1f}, replay {1e6 * np.ptp(left):.1f}, "
          f"model {1e6 * np.ptp(played):.1f} µs")
