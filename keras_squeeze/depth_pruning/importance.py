"""The maths of block removal: importance measures and the greedy choice, on plain numbers.

No Keras here: `scoring` runs the model and hands these functions arrays.

- output distance: sum over outputs and samples of ||o - o_ref||^2, divided by
  the same sum of ||o_ref||^2 (a relative squared error; 0 for identical
  outputs);
- Taylor: for a unit mapping x to y, bypassing it changes y by (x - y), so the
  loss changes by about <dL/dy, x - y> per sample; the importance is the mean
  of its absolute value over samples;
- the greedy choice: the unit with the lowest importance per share of the cost
  it saves goes first (a negative importance, a unit whose removal lowers the
  loss, counts as zero; ties go to the unit saving more), until the cost is
  at or below the budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

# A saving this small (relative to the total) counts as this much: the ratio stays finite.
MIN_SHARE = 1e-9


def squared_error_sums(
    reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]
) -> tuple[float, float]:
    """(sum ||o - o_ref||^2, sum ||o_ref||^2) over every output and sample, in float64."""
    num = den = 0.0
    for r, o in zip(reference, outputs, strict=True):
        r = np.asarray(r, np.float64)
        num += float(np.sum((np.asarray(o, np.float64) - r) ** 2))
        den += float(np.sum(r**2))
    return num, den


def relative_distance(numerator: float, denominator: float) -> float:
    """numerator / denominator, with a zero reference giving the plain squared error."""
    return numerator / denominator if denominator > 0 else numerator


def taylor_sum(x: np.ndarray, y: np.ndarray, grad: np.ndarray) -> float:
    """sum over samples of |<grad_n, x_n - y_n>| (axis 0 is the sample axis).

    `grad` is the gradient of the per-sample loss (not of the batch mean).
    """
    delta = (np.asarray(x, np.float64) - np.asarray(y, np.float64)).reshape(len(x), -1)
    g = np.asarray(grad, np.float64).reshape(len(x), -1)
    return float(np.sum(np.abs(np.sum(g * delta, axis=1))))


def order_score(importance: float, saving: float, total: float) -> float:
    """Importance per share of the cost saved: lower goes first."""
    share = max(saving / total if total > 0 else 0.0, MIN_SHARE)
    return max(importance, 0.0) / share


@dataclasses.dataclass
class Selection:
    """What the greedy choice removed, in order, and what it measured.

    Attributes:
        removed: unit names, in the order they were chosen.
        alone: each candidate's importance measured with it bypassed alone.
        at_removal: each removed unit's importance when it was chosen (with
            the units before it removed).
        cost: the cost left, by the savings' sum.
        reached: whether the cost is at or below the budget.
        rounds: how many times the importance was measured.
    """

    removed: list[str]
    alone: dict[str, float]
    at_removal: dict[str, float]
    cost: float
    reached: bool
    rounds: int


def greedy(
    candidates: Sequence[str],
    savings: dict[str, float],
    total: float,
    budget: float,
    measure: Callable[[list[str], list[str]], dict[str, float]],
    remeasure: bool,
    rank_savings: dict[str, float] | None = None,
) -> Selection:
    """Removes units, least important per saving first, until the cost is within `budget`.

    Args:
        candidates: the units that may go, in graph order.
        savings: the cost each saves, in the metric's unit.
        total: the model's whole cost.
        budget: the cost to reach (target x total).
        measure: `measure(units, removed)` -> {unit: importance} of each of
            `units` bypassed with `removed` bypassed already.
        remeasure: measure the remaining units again after each removal.
        rank_savings: the savings the ranking divides by, when they are not
            `savings` (e.g. MACs while the target counts blocks).

    Example:
        >>> greedy(["a", "b"], {"a": 1, "b": 1}, 2, 1, lambda u, r: {"a": 0.1, "b": 0.5}, False
        ...        ).removed
        ['a']
    """
    order = {name: i for i, name in enumerate(candidates)}
    rank = savings if rank_savings is None else rank_savings
    rank_total = total if rank_savings is None else sum(rank_savings.values())
    remaining = list(candidates)
    removed: list[str] = []
    at_removal: dict[str, float] = {}
    cost = float(total)
    scores = measure(list(remaining), []) if remaining else {}
    alone = dict(scores)
    rounds = 1 if remaining else 0
    while remaining and cost > budget * (1 + 1e-12):
        if removed and remeasure:
            scores = measure(list(remaining), list(removed))
            rounds += 1
        best = min(
            remaining,
            key=lambda n: (
                order_score(scores[n], rank[n], rank_total),
                min(scores[n], 0.0),
                -rank[n],
                order[n],
            ),
        )
        removed.append(best)
        at_removal[best] = scores[best]
        remaining.remove(best)
        cost -= savings[best]
    return Selection(removed, alone, at_removal, cost, cost <= budget * (1 + 1e-12), rounds)
