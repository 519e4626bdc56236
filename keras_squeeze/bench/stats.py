"""Latency statistics and the run-scheduling rules: plain functions, no TensorFlow.

Numeric schemes, stated exactly:

- percentiles interpolate linearly between the two nearest order statistics
  (Hyndman & Fan type 7, numpy's default): with the n samples sorted,
  rank r = q / 100 * (n - 1), and the value is s[floor(r)] + (r - floor(r)) *
  (s[floor(r) + 1] - s[floor(r)]);
- the standard deviation is the population one (divide by n), as TFLite's
  benchmark_model reports it;
- a latency ratio is candidate p50 / baseline p50 (below 1: faster), and a
  speed-up its inverse.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

DEFAULT_PERCENTILES = (50, 90, 99)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100) of `values`, linear interpolation (type 7).

    Example:
        >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
        2.5
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    s = sorted(values)
    rank = q / 100.0 * (len(s) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(s) - 1)
    return s[low] + (rank - low) * (s[high] - s[low])


@dataclasses.dataclass(frozen=True)
class LatencyStats:
    """Summary of steady-state inference times, in milliseconds.

    Attributes:
        count: number of timed inferences.
        mean_ms, std_ms: mean and population standard deviation.
        min_ms, max_ms: extremes.
        percentiles: {q: value} for the percentiles known (e.g. {50: ..,
            90: .., 99: ..}); from benchmark_model output only those it prints.
    """

    count: int
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    percentiles: Mapping[int, float] = dataclasses.field(default_factory=dict)

    @property
    def p50_ms(self) -> float | None:
        return self.percentiles.get(50)

    @property
    def p90_ms(self) -> float | None:
        return self.percentiles.get(90)

    @property
    def p99_ms(self) -> float | None:
        return self.percentiles.get(99)

    @property
    def center_ms(self) -> float:
        """The p50 when known, else the mean: what ratios compare."""
        return self.p50_ms if self.p50_ms is not None else self.mean_ms

    def to_dict(self) -> dict:
        out = {
            "count": self.count,
            "mean_ms": self.mean_ms,
            "std_ms": self.std_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
        }
        out.update({f"p{q}_ms": v for q, v in sorted(self.percentiles.items())})
        return out


def summarize(
    samples_ms: Sequence[float], percentiles: Sequence[int] = DEFAULT_PERCENTILES
) -> LatencyStats:
    """LatencyStats of raw per-inference times in milliseconds.

    Example:
        >>> summarize([2.0, 1.0, 3.0]).p50_ms
        2.0
    """
    n = len(samples_ms)
    if n == 0:
        raise ValueError("no timing samples to summarize")
    mean = math.fsum(samples_ms) / n
    var = math.fsum((x - mean) ** 2 for x in samples_ms) / n
    return LatencyStats(
        count=n,
        mean_ms=mean,
        std_ms=math.sqrt(var),
        min_ms=min(samples_ms),
        max_ms=max(samples_ms),
        percentiles={int(q): percentile(samples_ms, q) for q in percentiles},
    )


def latency_ratio(candidate_ms: float, baseline_ms: float) -> float:
    """candidate / baseline: 0.5 means the candidate takes half the time."""
    if baseline_ms <= 0:
        raise ValueError(f"baseline latency must be positive, got {baseline_ms}")
    return candidate_ms / baseline_ms


def relative_gap(a: float, b: float) -> float:
    """|a - b| / min(a, b): how far apart two latencies are, relative to the faster."""
    low = min(a, b)
    if low <= 0:
        raise ValueError(f"latencies must be positive, got {a} and {b}")
    return abs(a - b) / low


def round_order(num_models: int, round_index: int) -> list[int]:
    """The order models run in during one interleaved round.

    Each round starts one model later than the previous (a rotation), so no
    model always follows the same neighbour (caches, frequency boosts and
    noise bursts then fall on every model alike).

    Example:
        >>> [round_order(3, r) for r in range(3)]
        [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
    """
    start = round_index % num_models
    return [(start + i) % num_models for i in range(num_models)]


def keep_running(
    rounds_done: int, elapsed_s: float, min_runs: int, min_seconds: float, max_seconds: float
) -> bool:
    """benchmark_model's stopping rule, applied to interleaved rounds.

    Runs continue until both `min_runs` rounds and `min_seconds` of measuring
    have passed, but never start a round after `max_seconds`.
    """
    if elapsed_s > max_seconds:
        return False
    return rounds_done < min_runs or elapsed_s < min_seconds
