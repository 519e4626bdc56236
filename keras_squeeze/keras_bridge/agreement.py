"""How closely two models' outputs agree: the bridge's acceptance test (numpy only).

For each output, with `ref` the original model's values and `new` the
rebuilt model's on the same inputs:

    max_abs_diff = max |ref - new|
    scale        = max |ref|                     (the output's scale)
    relative     = max_abs_diff / scale          (0 when both are all zero)

The rebuild is accepted when `relative <= rtol` for every output (default
rtol = 1e-5): float32 kernels of the two flavours differ in summation order
only, a few units in the last place per layer, while a wrong translation
(another activation, a missing bias, a shifted axis) changes outputs by
percents.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

DEFAULT_RTOL = 1e-5


@dataclasses.dataclass(frozen=True)
class Agreement:
    """Worst-case agreement over all outputs (see the module docstring).

    Attributes:
        max_abs_diff: largest |ref - new| over all outputs.
        scale: max |ref| of the output with the largest relative difference.
        relative: largest per-output max_abs_diff / scale.
        rtol: the acceptance bound on `relative`.
    """

    max_abs_diff: float
    scale: float
    relative: float
    rtol: float

    @property
    def ok(self) -> bool:
        return self.relative <= self.rtol

    def summary(self) -> str:
        return (
            f"max |diff| {self.max_abs_diff:.3g} at output scale {self.scale:.3g} "
            f"(relative {self.relative:.3g}, bound {self.rtol:g})"
        )


def relative_difference(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float, float]:
    """(max_abs_diff, scale, relative) of one output; inf when shapes or finiteness differ.

    Example:
        >>> relative_difference(np.array([2.0, -4.0]), np.array([2.0, -4.00004]))
        (4.0000000000040004e-05, 4.0, 1.0000000000010001e-05)
    """
    ref = np.asarray(reference, dtype=np.float64)
    new = np.asarray(candidate, dtype=np.float64)
    if ref.shape != new.shape:
        return float("inf"), float("nan"), float("inf")
    if ref.size == 0:
        return 0.0, 0.0, 0.0
    finite = np.isfinite(ref) & np.isfinite(new)
    if not np.array_equal(np.isfinite(ref), np.isfinite(new)) or not np.array_equal(
        ref[~finite], new[~finite], equal_nan=True
    ):
        return float("inf"), float("nan"), float("inf")
    diff = float(np.max(np.abs(ref[finite] - new[finite]), initial=0.0))
    scale = float(np.max(np.abs(ref[finite]), initial=0.0))
    if diff == 0.0:
        return 0.0, scale, 0.0
    return diff, scale, diff / scale if scale > 0 else float("inf")


def agreement(
    reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], rtol: float = DEFAULT_RTOL
) -> Agreement:
    """The worst per-output agreement of `candidate` with `reference` (same order)."""
    if len(reference) != len(candidate):
        raise ValueError(f"Output counts differ: {len(reference)} vs {len(candidate)}")
    worst = (0.0, 0.0, 0.0)
    largest = 0.0
    for ref, new in zip(reference, candidate, strict=True):
        diff, scale, relative = relative_difference(ref, new)
        largest = max(largest, diff)
        if relative >= worst[2]:
            worst = (diff, scale, relative)
    return Agreement(max_abs_diff=largest, scale=worst[1], relative=worst[2], rtol=rtol)
