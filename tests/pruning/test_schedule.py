"""Schedule maths: sized to the fine-tune, and never silently incomplete."""

from __future__ import annotations

import pytest

from keras_squeeze.errors import RecipeError
from keras_squeeze.pruning.schedule import derive


@pytest.mark.parametrize("total", [1, 2, 7, 44, 264, 10_000])
def test_default_polynomial_completes_within_the_fine_tune(total):
    if total == 1:
        with pytest.raises(RecipeError, match=r"at least 2 steps.*Received: 1 step"):
            derive(total)
        return
    s = derive(total)
    assert s.begin_step == 0 and 0 < s.end_step <= total - 1
    assert (s.end_step - s.begin_step) % s.frequency == 0  # final sparsity is applied
    assert s.final_update_step(total) == s.end_step
    assert s.end_step <= 0.75 * total  # leaves steps to recover at final sparsity
    assert (s.end_step - s.begin_step) // s.frequency >= min(16, s.end_step)


def test_constant_schedule_updates_through_the_fine_tune():
    s = derive(264, "constant")
    assert s.end_step == -1 and s.frequency == 16
    assert s.final_update_step(264) == 256


def test_the_tfmot_default_frequency_trap_is_refused():
    # tfmot's default frequency=100 with end at the last step: the final mask
    # update never happens on a 264-step fine-tune.
    with pytest.raises(RecipeError, match=r"not a mask-update step.*multiple of frequency=100"):
        derive(264, begin_step=0, end_step=263, frequency=100)
    with pytest.raises(
        RecipeError, match=r"ends at step 400, but the fine-tune has only 264 steps"
    ):
        derive(264, end_step=400, frequency=100)
    assert derive(264, end_step=200, frequency=100).final_update_step(264) == 200


def test_bad_schedules():
    with pytest.raises(RecipeError, match=r"Unknown pruning schedule.*Received: schedule='cosine'"):
        derive(100, "cosine")
    with pytest.raises(
        RecipeError, match=r"begin step must fall within the fine-tune.*begin_step=100"
    ):
        derive(100, begin_step=100)
    with pytest.raises(RecipeError, match="at least one training step"):
        derive(0)
