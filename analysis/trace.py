"""`trace RUN.h5 --out trace.json`: every iteration as a Chrome / Perfetto trace (open it at ui.perfetto.dev or
chrome://tracing).

The results file holds durations, not timestamps, so each iteration is rebuilt from its durations in execution
order (stats.timeline) and the iterations are laid end to end, each as long as its slowest rank's forward pass.
One process holds one track (tid) per rank, named "rank N (host)"; every phase is a complete ("X") event in µs.
A `--compare` file gives one process per combination.
"""
from __future__ import annotations

import json
import pathlib

from analysis import stats
from analysis.results import Run, load_runs

PROCESS_ID = 0


def write_trace(path, out: pathlib.Path) -> pathlib.Path:
    runs = load_runs([path])
    events = []
    for pid, run in enumerate(runs, start=PROCESS_ID):
        events += trace_events(run, pid)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"traceEvents": events,
                               "otherData": {"source": str(path), "runs": [run.label for run in runs]}}))
    return out


def trace_events(run: Run, pid: int) -> list[dict]:
    """Metadata naming the process and one track per rank, then one X event per rank, iteration and phase
    (broadcast wait and transfer, then per layer compute, wait, transfer) plus an enclosing "forward" event."""
    events = [{"ph": "M", "pid": pid, "tid": 0, "name": "process_name",
               "args": {"name": f"cnnpar_mpi P={run.nprocs} {run.consolidation}/{run.plan} ({run.label})"}}]
    for rank in range(run.nprocs):
        events.append({"ph": "M", "pid": pid, "tid": rank, "name": "thread_name",
                       "args": {"name": f"rank {rank} ({run.hosts[rank]})"}})
        events.append({"ph": "M", "pid": pid, "tid": rank, "name": "thread_sort_index", "args": {"sort_index": rank}})
    for iteration, start in enumerate(stats.iteration_starts(run)):
        for rank in range(run.nprocs):
            events.append(_complete("forward", "forward", pid, rank, start, run.forward[iteration, rank],
                                    {"iteration": iteration}))
        for segment in stats.timeline(run, iteration):
            name = segment.phase if segment.layer == "input" else f"{segment.layer} {segment.phase}"
            events.append(_complete(name, segment.phase.split()[-1], pid, segment.rank, start + segment.start,
                                    segment.duration, {"iteration": iteration, "layer": segment.layer}))
    return events


def _complete(name, category, pid, tid, start_s, duration_s, args) -> dict:
    return {"name": name, "cat": category, "ph": "X", "pid": pid, "tid": tid, "ts": round(start_s * 1e6, 3),
            "dur": round(float(duration_s) * 1e6, 3), "args": args}
