"""Command line: `python3 -m analysis {report,sweep,layouts,model,trace} ...` (docs/analysis.md).

Subcommand modules are imported only when chosen, so `--help` and the error paths stay fast (matplotlib is slow to
import). A file the analysis cannot use ends the program with one line on stderr and exit status 2, the same
convention as cnnpar_mpi for bad input.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

from analysis.results import ResultsError

EXIT_BAD_INPUT = 2


def _report(args):
    from analysis.report import write_report
    return write_report(args.run, args.out)


def _sweep(args):
    from analysis.sweep import write_sweep
    return write_sweep(args.files, args.out, scaling=args.scaling)


def _layouts(args):
    from analysis.layouts import write_layouts
    return write_layouts(args.run, args.out)


def _model(args):
    from analysis.model import ModelOptions, write_model
    options = ModelOptions(algorithm=args.algorithm, inter_alpha=args.inter_alpha, inter_beta=args.inter_beta,
                           gamma=args.gamma, ranks_per_node=args.ranks_per_node,
                           accept_suspect=args.accept_suspect_parameters, compute=args.compute,
                           sharing=args.sharing, size_factors=args.size_factors, in_pass=args.in_pass,
                           jitter=args.jitter,
                           replays=args.replays)
    return write_model(args.files, args.out, options)


def _trace(args):
    from analysis.trace import write_trace
    return write_trace(args.run, args.out)


def _parser() -> argparse.ArgumentParser:
    from analysis.costmodel import DEFAULT_GAMMA, DEFAULT_INTER_ALPHA, DEFAULT_INTER_BETA, DEFAULT_RANKS_PER_NODE
    from analysis.schedule import ALGORITHMS
    parser = argparse.ArgumentParser(prog="python3 -m analysis", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    path = pathlib.Path

    p = sub.add_parser("report", help="figures and report.md for one run")
    p.add_argument("run", type=path, help="results file (cnnpar_mpi --output)")
    p.add_argument("--out", type=path, required=True, help="output directory")
    p.set_defaults(action=_report)

    p = sub.add_parser("sweep", help="strong and weak scaling and consolidation cost over many runs")
    p.add_argument("files", type=path, nargs="+", help="results files, e.g. P = 1, 2, 4, 8 of one configuration")
    p.add_argument("--out", type=path, required=True, help="output directory")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--weak", dest="scaling", action="store_const", const="weak",
                      help="weak scaling: group runs by batch per rank (batch / P), whatever their batch")
    kind.add_argument("--strong", dest="scaling", action="store_const", const="strong",
                      help="strong scaling only: group runs by batch (no weak-scaling series)")
    p.set_defaults(scaling="auto")
    p.set_defaults(action=_sweep)

    p = sub.add_parser("layouts", help="the four memory-layout pictures of a run's partition")
    p.add_argument("run", type=path)
    p.add_argument("--out", type=path, required=True, help="output directory")
    p.set_defaults(action=_layouts)

    p = sub.add_parser("model", help="fit the network's alpha-beta parameters, predict every layer, extrapolate")
    p.add_argument("files", type=path, nargs="+",
                   help="results files: --calibrate runs (fitted) and runs (predicted layer by layer)")
    p.add_argument("--out", type=path, required=True, help="output directory")
    p.add_argument("--algorithm", choices=ALGORITHMS, default="auto",
                   help="Allgatherv algorithm (default auto: the one Open MPI 4.1's rules pick for each P and n)")
    p.add_argument("--inter-alpha", type=float, default=None, metavar="S",
                   help="inter-node latency in seconds, replacing what a calibration measured (when nothing "
                        f"measured it: {DEFAULT_INTER_ALPHA:g}, an assumption)")
    p.add_argument("--inter-beta", type=float, default=None, metavar="S_PER_BYTE",
                   help="inter-node seconds per byte, likewise (default when not measured: "
                        f"{DEFAULT_INTER_BETA:g} = 1/(10 GB/s))")
    p.add_argument("--gamma", type=float, default=None, metavar="S_PER_BYTE",
                   help=f"reduction seconds per byte when no allreduce was measured (default {DEFAULT_GAMMA:g})")
    p.add_argument("--ranks-per-node", type=int, default=DEFAULT_RANKS_PER_NODE, metavar="N",
                   help=f"ranks per node in the multi-node extrapolation (default {DEFAULT_RANKS_PER_NODE})")
    p.add_argument("--compute", choices=("serial-share", "measured"), default="serial-share",
                   help="each rank's compute in the per-layer predictions: the serial layer time times the rank's "
                        "share of the layer's operations (default: a prediction), or the rank's measured median "
                        "(then only the boundaries are predicted)")
    p.add_argument("--sharing", choices=("fluid", "averaged"), default="fluid",
                   help="how the per-layer predictions share a node's link between the messages crossing it: "
                        "instant by instant, weighted max-min as a flow-level simulator (default), or by how long "
                        "the messages overlap, averaged over each one's time (the fit's rule; faster, cruder skew)")
    p.add_argument("--size-factors", choices=("on", "off"), default="on",
                   help="intra-node messages priced by the fitted line times a factor by message size, measured "
                        "where a two-rank calibration timed that size (as SMPI's own piecewise bw-factor; default "
                        "on: off prices every intra-node message by the line alone)")
    p.add_argument("--in-pass", choices=("on", "off"), default="on",
                   help="a run's Allgatherv boundary that --calibrate timed as a pass leaves the caches "
                        "(/calibration/in_pass: same P, nodes, bytes and layers) has its intra-node messages "
                        "multiplied by that time over the fresh gather's (default on; off: every gather as the "
                        "fresh calibration)")
    p.add_argument("--jitter", type=float, default=0.0, metavar="S",
                   help="replay every predicted pass with each rank's compute of each layer moved by a normal "
                        "deviate of S seconds (e.g. 1e-7) and report each layer's range over the replays: a layer "
                        "whose range is wide is set by the order in which ranks leave a boundary, not by the "
                        "network (default 0: no replays)")
    p.add_argument("--replays", type=int, default=8, metavar="N",
                   help="replays with --jitter (default 8; seeded, so the tables repeat digit for digit)")
    p.add_argument("--accept-suspect-parameters", action="store_true",
                   help="predict and extrapolate even when the parameters fail their checks (a zero alpha or "
                        "beta, an inter-node link faster than the intra-node one); they are still reported")
    p.set_defaults(action=_model)

    p = sub.add_parser("trace", help="Chrome/Perfetto JSON trace of every iteration")
    p.add_argument("run", type=path)
    p.add_argument("--out", type=path, required=True, help="output JSON file, e.g. trace.json")
    p.set_defaults(action=_trace)
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        written = args.action(args)
    except ResultsError as error:
        print(f"analysis {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
