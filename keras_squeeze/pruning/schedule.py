"""Pruning schedules sized to the fine-tune (plain integer maths).

tfmot updates masks only at steps where (step - begin) % frequency == 0 within
[begin, end]; its default frequency of 100 steps means a short fine-tune never
prunes at all, silently. Here the schedule is derived from the number of
optimizer steps, and a given schedule is checked to complete.
"""

from __future__ import annotations

import dataclasses

from keras_squeeze.errors import RecipeError

POLYNOMIAL = "polynomial"
CONSTANT = "constant"
SCHEDULES = (POLYNOMIAL, CONSTANT)
# Sparsity ramps up over this fraction of the fine-tune; the rest recovers.
RAMP_FRACTION = 0.7
MASK_UPDATES = 16


@dataclasses.dataclass(frozen=True)
class StepSchedule:
    """When masks update, in optimizer steps (tfmot semantics; end -1 = never stops)."""

    kind: str
    begin_step: int
    end_step: int
    frequency: int

    def updates_at(self, step: int) -> bool:
        """Whether masks are updated at optimizer step `step` (0 = the first step):
        within [begin_step, end_step] (end -1: no end), every `frequency` steps."""
        in_range = step >= self.begin_step and (self.end_step < 0 or step <= self.end_step)
        return in_range and (step - self.begin_step) % self.frequency == 0

    def sparsity_at(self, step: int, target: float) -> float:
        """The sparsity masks take when updated at `step`.

        Constant: `target`. Polynomial (tfmot's PolynomialDecay from 0, power 3):
        target * (1 - (1 - p)^3) with p = (step - begin) / (end - begin) in [0, 1].
        """
        if self.kind == CONSTANT:
            return float(target)
        span = max(self.end_step - self.begin_step, 1)
        p = min(1.0, max(0.0, (step - self.begin_step) / span))
        return float(target) * (1.0 - (1.0 - p) ** 3)

    def final_update_step(self, total_steps: int) -> int:
        """The last step at which masks are updated, within `total_steps`."""
        last = total_steps - 1 if self.end_step < 0 else min(self.end_step, total_steps - 1)
        return self.begin_step + ((last - self.begin_step) // self.frequency) * self.frequency


def derive(
    total_steps: int,
    kind: str = POLYNOMIAL,
    begin_step: int | None = None,
    end_step: int | None = None,
    frequency: int | None = None,
) -> StepSchedule:
    """A schedule for a fine-tune of `total_steps` optimizer steps.

    Defaults: begin at 0; a polynomial ramp ends at 70% of the steps (on a
    mask-update step, so the final sparsity is applied) with 16 mask updates;
    a constant schedule updates masks about 16 times over the fine-tune.

    Raises:
        RecipeError: the schedule would not reach its final sparsity within the
            fine-tune, or its numbers are inconsistent.
    """
    if kind not in SCHEDULES:
        raise RecipeError(
            f"Unknown pruning schedule. Expected one of {list(SCHEDULES)}. "
            f"Received: schedule={kind!r}"
        )
    if total_steps < 1:
        raise RecipeError(
            f"Pruning needs at least one training step. Expected >= 1. Received: {total_steps}"
        )
    if kind == POLYNOMIAL and total_steps < 2:
        raise RecipeError(
            "A polynomial pruning schedule ramps sparsity up over several steps. Expected a "
            "fine-tune of at least 2 steps (more epochs or data, or schedule='constant'). "
            f"Received: {total_steps} step"
        )
    begin = 0 if begin_step is None else begin_step
    if begin < 0 or begin >= total_steps:
        raise RecipeError(
            f"The pruning begin step must fall within the fine-tune. Expected 0 <= begin_step < "
            f"{total_steps} (epochs x steps per epoch). Received: begin_step={begin}"
        )
    if kind == CONSTANT:
        span = total_steps - 1 - begin
        freq = frequency if frequency is not None else max(1, span // MASK_UPDATES)
        end = -1 if end_step is None else end_step
    else:
        if end_step is None:
            span = max(1, round((total_steps - 1 - begin) * RAMP_FRACTION))
            freq = frequency if frequency is not None else max(1, span // MASK_UPDATES)
            end = begin + max(1, span // freq) * freq
        else:
            end = end_step
            freq = frequency if frequency is not None else max(1, (end - begin) // MASK_UPDATES)
    if freq < 1:
        raise RecipeError(f"The pruning frequency must be >= 1 step. Received: frequency={freq}")
    schedule = StepSchedule(kind, begin, end, freq)
    if kind == POLYNOMIAL:
        if end <= begin:
            raise RecipeError(
                f"The pruning end step must come after the begin step. Expected end_step > "
                f"{begin}. Received: end_step={end}"
            )
        if end > total_steps - 1:
            raise RecipeError(
                f"The pruning schedule ends at step {end}, but the fine-tune has only "
                f"{total_steps} steps, so the final sparsity would never be reached. Expected "
                f"end_step <= {total_steps - 1} (or more epochs). Received: end_step={end}"
            )
        if (end - begin) % freq:
            raise RecipeError(
                "The pruning end step is not a mask-update step, so the final sparsity would "
                f"never be applied. Expected end_step - begin_step to be a multiple of "
                f"frequency={freq}. Received: end_step={end}, begin_step={begin}"
            )
    return schedule
