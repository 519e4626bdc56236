"""How many channels each group keeps: plain functions of numpy arrays (no Keras).

The cost of a network (multiply-accumulates or parameters) is a sum of terms,
each `coef * (a . k + a0) * (b . k + b0)`, where `k` is the vector of kept
channels per prunable group and `a . k + a0` is the size of a layer's input
channel axis (a0 counts channels that cannot be pruned; a Flatten's output
counts H*W per kept channel), `b . k + b0` that of its output. `CostModel`
evaluates it.

Allocations (each keeps at least `min(multiple, size)` channels per group, so
never zero, and rounds counts to a multiple of `multiple`, unless keeping the
whole group):

- `uniform_keep`: every group keeps the same fraction r of its channels;
  r is the largest one whose rounded counts meet the budget (bisection), then
  each group, lowest kept fraction first, gets one more multiple if the budget
  still allows (one pass, so counts stay within one multiple of uniform).
- `global_keep`: all groups' channels are ranked together by their
  mean-normalised importance; blocks of `multiple` least important channels are
  removed, lowest first, until the budget is met.
- `ratio_keep`: each group keeps the fraction it was given.

Example:
    >>> cost = CostModel.dense(coef=[1.0], a=[[1.0]], a0=[0.0], b=[[0.0]], b0=[1.0])
    >>> uniform_keep(np.array([64]), cost, budget=32, multiple=8)
    array([32])
"""

from __future__ import annotations

import dataclasses
import heapq

import numpy as np

from keras_squeeze.channel_pruning.importance import normalise


@dataclasses.dataclass
class CostModel:
    """`cost(k) = sum_t coef[t] * (a[t] . k + a0[t]) * (b[t] . k + b0[t])`."""

    coef: np.ndarray
    a: np.ndarray
    a0: np.ndarray
    b: np.ndarray
    b0: np.ndarray

    @classmethod
    def dense(cls, coef, a, a0, b, b0) -> CostModel:
        arrays = [np.asarray(x, np.float64) for x in (coef, a, a0, b, b0)]
        return cls(*arrays)

    def __call__(self, keep) -> float:
        k = np.asarray(keep, np.float64)
        left = self.a @ k + self.a0 if self.a.size else self.a0
        right = self.b @ k + self.b0 if self.b.size else self.b0
        return float(np.sum(self.coef * left * right))


def round_channels(value: float, size: int, multiple: int) -> int:
    """`value` rounded half up to a multiple of `multiple`, within [min(multiple, size), size].

    Example:
        >>> round_channels(21.0, 64, 8), round_channels(2.0, 64, 8), round_channels(60.0, 60, 8)
        (24, 8, 60)
    """
    if size <= multiple:
        return int(size)
    rounded = int(np.floor(value / multiple + 0.5)) * multiple
    return int(min(size, max(multiple, rounded)))


def _counts(sizes: np.ndarray, fraction: float, multiple: int) -> np.ndarray:
    return np.array([round_channels(fraction * s, int(s), multiple) for s in sizes], np.int64)


def _next_up(k: int, size: int, multiple: int) -> int:
    return int(min(size, (k // multiple + 1) * multiple))


def uniform_keep(sizes: np.ndarray, cost: CostModel, budget: float, multiple: int) -> np.ndarray:
    """The same kept fraction for every group, the largest that meets `budget`.

    Returns:
        Kept channels per group. If even the minimum counts exceed the budget,
        the minimum counts (the caller reports the target as unreachable).
    """
    sizes = np.asarray(sizes, np.int64)
    lo, hi = 0.0, 1.0
    if cost(_counts(sizes, 1.0, multiple)) <= budget:
        return sizes.copy()
    for _ in range(40):
        mid = (lo + hi) / 2
        if cost(_counts(sizes, mid, multiple)) <= budget:
            lo = mid
        else:
            hi = mid
    keep = _counts(sizes, lo, multiple)
    return _fill(keep, sizes, cost, budget, multiple)


def _fill(keep, sizes, cost, budget, multiple) -> np.ndarray:
    """Gives each group, lowest kept fraction first, one more multiple if the budget allows.

    One pass only, so no group drifts more than one multiple from the uniform fraction.
    """
    keep = keep.copy()
    for i in np.argsort(keep / sizes, kind="stable"):
        if keep[i] >= sizes[i]:
            continue
        trial = keep.copy()
        trial[i] = _next_up(int(keep[i]), int(sizes[i]), multiple)
        if cost(trial) <= budget:
            keep = trial
    return keep


def _next_down(k: int, size: int, multiple: int) -> int | None:
    floor = min(multiple, size)
    lower = ((k - 1) // multiple) * multiple
    return lower if lower >= floor and lower < k else None


def global_keep(
    sizes: np.ndarray,
    scores: list[np.ndarray],
    cost: CostModel,
    budget: float,
    multiple: int,
) -> np.ndarray:
    """Removes blocks of the globally least important channels until `budget` is met.

    Args:
        sizes: channels per group.
        scores: per group, one importance score per channel; each group's
            scores are divided by their mean before the global ranking.
        cost: the cost model.
        budget: the cost to reach.
        multiple: channel counts are multiples of this (or the whole group).

    Returns:
        Kept channels per group.
    """
    sizes = np.asarray(sizes, np.int64)
    keep = sizes.copy()
    ordered = [np.sort(normalise(s)) for s in scores]  # ascending: removed first
    heap: list[tuple[float, int]] = []

    def push(g: int) -> None:
        lower = _next_down(int(keep[g]), int(sizes[g]), multiple)
        if lower is not None:
            block = ordered[g][sizes[g] - keep[g] : sizes[g] - lower]
            heapq.heappush(heap, (float(block.mean()), g))

    for g in range(len(sizes)):
        push(g)
    while heap and cost(keep) > budget:
        _, g = heapq.heappop(heap)
        keep[g] = _next_down(int(keep[g]), int(sizes[g]), multiple)
        push(g)
    return keep


def ratio_keep(sizes: np.ndarray, ratios: np.ndarray, multiple: int) -> np.ndarray:
    """Each group keeps `ratio * size` channels, rounded to the multiple."""
    return np.array(
        [round_channels(r * s, int(s), multiple) for s, r in zip(sizes, ratios, strict=True)],
        np.int64,
    )
