"""Writes allgatherv_replay's input from a results file: P, then per rank its block bytes of LAYER's boundary and
when it entered that boundary (seconds after the first rank did, first pass). Usage: replay_input.py FILE.h5 LAYER OUT."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from analysis.results import load  # noqa: E402

run = load(sys.argv[1]).runs[0]
layer = run.layers.index(sys.argv[2])
enter = run.timestamps.boundary_enter[0, layer]
blocks = run.count[layer] * run.item_bytes[layer]
with open(sys.argv[3], "w") as out:
    out.write(f"{run.nprocs}\n")
    for r in range(run.nprocs):
        out.write(f"{blocks[r]:.0f} {enter[r] - enter.min():.12f}\n")
