"""Writes allgatherv_replay's input from a results file for consecutive boundaries LAYER [LAYER ...] of its first pass:
P and L, then per rank when it entered the first (seconds after the first rank did) and, per boundary, its block
bytes and how long it computed between the previous boundary's exit and this one's entry (0 for the first).
Usage: replay_input.py FILE.h5 OUT LAYER [LAYER ...]"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from analysis.results import load  # noqa: E402

run = load(sys.argv[1]).runs[0]
layers = [run.layers.index(name) for name in sys.argv[3:]]
if layers != list(range(layers[0], layers[0] + len(layers))):
    sys.exit("replay_input.py: the boundaries must be consecutive layers, in order")
enter, leave = run.timestamps.boundary_enter[0], run.timestamps.boundary_exit[0]
with open(sys.argv[2], "w") as out:
    out.write(f"{run.nprocs} {len(layers)}\n")
    for r in range(run.nprocs):
        fields = [f"{enter[layers[0], r] - enter[layers[0]].min():.12f}"]
        for k, layer in enumerate(layers):
            computed = 0.0 if k == 0 else enter[layer, r] - leave[layer - 1, r]
            fields += [f"{run.count[layer, r] * run.item_bytes[layer]:.0f}", f"{computed:.12f}"]
        out.write(" ".join(fields) + "\n")
