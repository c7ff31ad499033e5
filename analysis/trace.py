"""`trace RUN.h5 --out trace.json`: every iteration as a Chrome / Perfetto trace (open it at ui.perfetto.dev or
chrome://tracing).

One process holds one track (tid) per rank, named "rank N (host)"; every phase is a complete ("X") event in µs, inside
an enclosing "forward" event per rank and iteration. A `--compare` file gives one process per combination.

Where the times come from (stats.timeline): a file with timestamps puts every event at its recorded time on rank 0's
clock (µs from the first timed pass's earliest start, as in the file), so the gaps between phases, the skew between
ranks and the time between iterations are real. A file written before timestamps were recorded holds durations only:
each iteration is rebuilt from them in execution order and the iterations are laid end to end, each as long as its
slowest rank's forward pass. The trace says which in `otherData.timeline` and in each process's label.
"""
from __future__ import annotations

import json
import pathlib

from analysis import stats
from analysis.results import Run, load_runs

PROCESS_ID = 0
DECIMALS = 3  # µs with ns resolution, the clock's


def write_trace(path, out: pathlib.Path) -> pathlib.Path:
    runs = load_runs([path])
    events = []
    for pid, run in enumerate(runs, start=PROCESS_ID):
        events += trace_events(run, pid)
    sources = {run.label: stats.timeline_source(run) for run in runs}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"traceEvents": events,
                               "otherData": {"source": str(path), "runs": [run.label for run in runs],
                                             "timeline": sources,
                                             "timeline_meaning": {source: stats.TIMELINE_SOURCES[source]
                                                                  for source in sorted(set(sources.values()))}}}))
    return out


def trace_events(run: Run, pid: int) -> list[dict]:
    """Metadata naming the process and one track per rank, then one X event per rank, iteration and phase
    (broadcast wait and transfer, then per layer compute, wait, transfer, with pack before and unpack after compute
    on the packed steps of files written before the box kernels: Run.packed) plus an enclosing "forward" event."""
    source = stats.timeline_source(run)
    events = [{"ph": "M", "pid": pid, "tid": 0, "name": "process_name",
               "args": {"name": f"cnnpar_mpi P={run.nprocs} {run.consolidation}/{run.scheme} ({run.label})"}},
              {"ph": "M", "pid": pid, "tid": 0, "name": "process_labels",
               "args": {"labels": "exact timestamps" if source == stats.TIMESTAMPS else "rebuilt from durations"}}]
    for rank in range(run.nprocs):
        events.append({"ph": "M", "pid": pid, "tid": rank, "name": "thread_name",
                       "args": {"name": f"rank {rank} ({run.hosts[rank]})"}})
        events.append({"ph": "M", "pid": pid, "tid": rank, "name": "thread_sort_index", "args": {"sort_index": rank}})
    for iteration, origin in enumerate(stats.iteration_starts(run)):
        for rank, start in enumerate(stats.pass_starts(run, iteration)):
            events.append(_complete("forward", "forward", pid, rank, origin + start,
                                    origin + start + run.forward[iteration, rank], {"iteration": iteration}))
        for segment in stats.timeline(run, iteration):
            name = segment.phase if segment.layer == "input" else f"{segment.layer} {segment.phase}"
            events.append(_complete(name, segment.phase.split()[-1], pid, segment.rank, origin + segment.start,
                                    origin + segment.end, {"iteration": iteration, "layer": segment.layer}))
    return events


def _complete(name, category, pid, tid, start_s, end_s, args) -> dict:
    """An X event; start and end are rounded (not start and duration), so events that touch in the file still touch
    and never overlap in the trace."""
    start, end = round(float(start_s) * 1e6, DECIMALS), round(float(end_s) * 1e6, DECIMALS)
    return {"name": name, "cat": category, "ph": "X", "pid": pid, "tid": tid, "ts": start,
            "dur": round(end - start, DECIMALS), "args": args}
