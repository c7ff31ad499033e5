"""Collective cost models and their least-squares fit (pure numpy, no files, so the tests can check them exactly).

The models are Thakur, Rabenseifner & Gropp, "Optimization of collective communication operations in MPICH"
(IJHPCA 2005), with n the total bytes of the whole gathered tensor / reduced vector / broadcast message, p ranks,
alpha seconds per message, beta seconds per byte and gamma seconds per byte reduced:

  Allgather(v)  recursive doubling  lg p·α + (p−1)/p·n·β
                Bruck               ⌈lg p⌉·α + (p−1)/p·n·β
                ring                (p−1)·α + (p−1)/p·n·β
  Bcast         binomial tree       ⌈lg p⌉·(α + n·β)
  Allreduce     Rabenseifner        2·⌈lg p⌉·α + 2·(p−1)/p·n·β + (p−1)/p·n·γ

Each is linear in (α, β, γ), so a fit is a least-squares problem over one design row per measurement. Beyond one
node the same algorithms are priced step by step (`multi_node_time`), because a step's cost depends on whether its
messages cross the network and how many ranks share a node's link at once.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

ALLGATHER_ALGORITHMS = ("bruck", "recursive-doubling", "ring")
COLLECTIVES = ("allgatherv", "allgather", "bcast", "allreduce")

# Inter-node defaults for the multi-node extrapolation: a 100 Gb/s fabric (InfiniBand EDR / 100 GbE class). MPI
# point-to-point latency on such fabrics is typically 1-2 µs and the achievable bandwidth ~10-12 GB/s of the
# 12.5 GB/s line rate; we take the pessimistic end. Assumptions, not measurements: pass --inter-alpha/--inter-beta.
DEFAULT_INTER_ALPHA = 2e-6
DEFAULT_INTER_BETA = 1 / 10e9
# Reduction cost when no Allreduce was measured: summing two float vectors is memory-bound, so take 10 GB/s of
# reduced data, the order of the memcpy bandwidths measured on the development VM (12.6-33 GB/s,
# /work/shared/REFERENCE.md). It only matters for large reductions (the fused plan reduces 512 B per image).
DEFAULT_GAMMA = 1 / 10e9
DEFAULT_RANKS_PER_NODE = 32


@dataclass(frozen=True)
class Params:
    alpha: float  # s per message
    beta: float  # s per byte
    gamma: float = 0.0  # s per byte reduced


def ceil_lg(p: int) -> int:
    return math.ceil(math.log2(p)) if p > 1 else 0


def design_row(collective: str, p: int, n: float, algorithm: str = "bruck") -> np.ndarray:
    """Coefficients of (α, β, γ) in the model of one call on one node: time = row · (α, β, γ)."""
    spread = (p - 1) / p * n
    if collective in ("allgatherv", "allgather"):
        latency = {"bruck": ceil_lg(p), "recursive-doubling": math.log2(p), "ring": p - 1}[algorithm]
        return np.array([latency, spread, 0.0])
    if collective == "bcast":
        return np.array([ceil_lg(p), ceil_lg(p) * n, 0.0])
    if collective == "allreduce":
        return np.array([2 * ceil_lg(p), 2 * spread, spread])
    raise ValueError(f"no cost model for collective '{collective}' (known: {', '.join(COLLECTIVES)})")


def predict(collective: str, p: int, n: float, params: Params, algorithm: str = "bruck") -> float:
    """Seconds for one call on one node."""
    return float(design_row(collective, p, n, algorithm) @ [params.alpha, params.beta, params.gamma])


@dataclass(frozen=True)
class Fit:
    params: Params
    points: int
    rms_relative_error: float
    fitted_gamma: bool


def fit(rows: np.ndarray, times: np.ndarray, fit_gamma: bool) -> Fit:
    """Least squares of the relative error, with α, β, γ ≥ 0 (`nnls_relative` on the columns α, β and, with
    fit_gamma, γ)."""
    rows = np.asarray(rows, dtype=float)
    times = np.asarray(times, dtype=float)
    keep = times > 0
    if not keep.any():
        raise ValueError("no positive measurements to fit")
    columns = [0, 1, 2] if fit_gamma else [0, 1]
    solution, rms = nnls_relative(rows[keep][:, columns], times[keep])
    x = np.zeros(3)
    x[columns] = solution
    return Fit(Params(*x), int(keep.sum()), rms, fit_gamma)


def nnls_relative(rows: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, float]:
    """x ≥ 0 minimising Σ (rows·x / times − 1)², and the rms of those relative errors.

    Relative, not absolute: message sizes span orders of magnitude, and an absolute fit would let the largest
    messages decide everything while ignoring the small ones that carry the latency term. The non-negative
    solution is found by trying every subset of the columns (2^k − 1 least-squares problems, k ≤ 5 here), which
    is exact."""
    rows = np.asarray(rows, dtype=float)
    times = np.asarray(times, dtype=float)
    scaled = rows / times[:, None]
    k = rows.shape[1]
    best, best_residual = np.zeros(k), float(len(times))  # x = 0: every relative error is −1
    for size in range(1, k + 1):
        for subset in itertools.combinations(range(k), size):
            solution, *_ = np.linalg.lstsq(scaled[:, subset], np.ones(len(times)), rcond=None)
            if (solution < 0).any():
                continue
            x = np.zeros(k)
            x[list(subset)] = solution
            residual = float(np.sum((scaled @ x - 1) ** 2))
            if residual < best_residual - 1e-15:
                best, best_residual = x, residual
    return best, math.sqrt(best_residual / len(times))


def _steps(collective: str, p: int, n: float, algorithm: str) -> list[tuple[int, float, float]]:
    """(partner distance in ranks, bytes each rank sends, bytes each rank reduces) for every step of one call."""
    if p <= 1:
        return []
    if collective in ("allgatherv", "allgather"):
        if algorithm == "ring":
            return [(1, n / p, 0.0)] * (p - 1)
        return [(2 ** k, min(2 ** k, p - 2 ** k) * n / p, 0.0) for k in range(ceil_lg(p))]
    if collective == "bcast":
        return [(2 ** k, n, 0.0) for k in range(ceil_lg(p))]
    if collective == "allreduce":  # recursive-halving reduce-scatter, then recursive-doubling allgather
        rounds = ceil_lg(p)
        # n/2, n/4, ... scaled to sum to (p−1)/p·n as in the closed form (unscaled when p is a power of 2)
        first = (p - 1) / p * n / (2 * (1 - 0.5 ** rounds))
        halves = [(max(1, p >> (k + 1)), first / 2 ** k) for k in range(rounds)]
        return [(d, v, v) for d, v in halves] + [(d, v, 0.0) for d, v in reversed(halves)]
    raise ValueError(f"no cost model for collective '{collective}'")


def multi_node_time(collective: str, p: int, n: float, ranks_per_node: int, intra: Params, inter: Params,
                    algorithm: str = "bruck") -> float:
    """Seconds for one call over ⌈p / ranks_per_node⌉ nodes holding consecutive ranks.

    A step whose partners are all on one node costs α + v·β with the node's (intra) parameters. Once there are
    several nodes, every step has some partners on other nodes (rank r talks to r ± d), and it is as slow as its
    slowest message: α_inter plus the larger of the intra time and the time for the min(d, ranks_per_node)
    ranks of a node that cross the link at once to push their v bytes through it. On one node this reduces to the
    closed forms of `design_row` (the tests check it).
    """
    nodes = math.ceil(p / ranks_per_node)
    total = 0.0
    for distance, volume, reduced in _steps(collective, p, n, algorithm):
        if nodes == 1:
            total += intra.alpha + volume * intra.beta
        else:
            sharing = min(distance, ranks_per_node)
            total += inter.alpha + max(volume * intra.beta, sharing * volume * inter.beta)
        total += reduced * intra.gamma
    return total
