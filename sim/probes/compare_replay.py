"""Every rank's exit of one boundary: SimGrid's replay alone (allgatherv_replay's output), the pass's own (the results
file) and the model's play of the same messages from the same entries with the platform's parameters (or the
fitted ones given as α/β per class). Usage: compare_replay.py FILE.h5 LAYER REPLAY.out [--no-climb]"""
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from analysis import fluid, schedule  # noqa: E402
from analysis.costmodel import Params  # noqa: E402
from analysis.results import load  # noqa: E402

run = load(sys.argv[1]).runs[0]
layer = run.layers.index(sys.argv[2])
replay = np.loadtxt(sys.argv[3])
enter, exit_in_pass = run.timestamps.boundary_enter[0, layer], run.timestamps.boundary_exit[0, layer]
entered, left = replay[:, 1], replay[:, 2]
# the platforms' own parameters (sim/make_platforms.py): loopback, two node links, two node + two spine links
platform = schedule.Network(Params(0.3e-6, 1 / 20e9), Params(2e-6, 1 / 12.5e9), Params(4e-6, 1 / 12.5e9))
blocks = run.count[layer] * run.item_bytes[layer]
ops = schedule.programs(schedule.resolve("auto", run.nprocs, float(blocks.sum())), blocks)
climbs = None if "--no-climb" in sys.argv else run.climbs
played = fluid.play(ops, run.nodes, platform, run.switches, entered, climbs)


def spread(label, difference):
    p = np.percentile(1e6 * difference, [0, 1, 50, 99, 100])
    worst = int(np.argmax(np.abs(difference)))
    print(f"{label:<34} min {p[0]:+8.2f}  1% {p[1]:+8.2f}  median {p[2]:+7.2f}  99% {p[3]:+7.2f}  max {p[4]:+8.2f} µs"
          f"  (worst rank {worst})")


print(f"{run.label} {sys.argv[2]} at P = {run.nprocs}: exits, differences per rank")
spread("replay entry - pass entry", entered - (enter - enter.min()))
spread("replay exit - pass exit", left - (exit_in_pass - enter.min()))
spread("model - replay" + (" (no spine links)" if climbs is None else ""), played - left)
print(f"exit spread: pass {1e6 * np.ptp(exit_in_pass):.1f}, replay {1e6 * np.ptp(left):.1f}, "
      f"model {1e6 * np.ptp(played):.1f} µs")
