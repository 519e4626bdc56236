"""Learning rates per training stage.

Every training stage starts from trained weights, so each fine-tunes at a
multiple of the run's learning rate (the given optimizer's, else the model's
compiled one): `learning_rate_scale` on ks.Prune, ks.Cluster and ks.QAT.
Pruning has to recover from removed weights and keeps the run's rate;
clustering and quantization-aware training only adapt trained weights (to
their centroids, to int8 rounding) and default to 0.3 of it
(benchmarks/RESULTS.md compares both with the training rate).
"""

from __future__ import annotations

import copy
import math
import numbers

from keras_squeeze.errors import RecipeError

MAX_SCALE = 10.0


def check_scale(value) -> float:
    """A learning-rate multiplier in (0, MAX_SCALE], as a float.

    Raises:
        RecipeError: not a number, or outside (0, MAX_SCALE].
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0.0 < value <= MAX_SCALE:
        raise RecipeError(
            "learning_rate_scale multiplies the fine-tuning optimizer's learning rate. Expected "
            f"a number in (0, {MAX_SCALE:g}]. Received: learning_rate_scale={value!r}"
        )
    return float(value)


def scaled(optimizer, factor: float):
    """A fresh copy of a Keras optimizer with its learning rate times `factor`.

    A learning-rate schedule is scaled through its initial learning rate.

    Raises:
        RecipeError: the schedule has no initial learning rate to scale.
    """
    if factor == 1.0:
        return optimizer
    config = optimizer.get_config()
    lr = config.get("learning_rate")
    if isinstance(lr, numbers.Real):
        config["learning_rate"] = float(lr) * factor
    elif isinstance(lr, dict) and "initial_learning_rate" in lr.get("config", {}):
        lr = copy.deepcopy(lr)
        start = float(lr["config"]["initial_learning_rate"])
        lr["config"]["initial_learning_rate"] = start * factor
        config["learning_rate"] = lr
    else:
        name = lr.get("class_name", "schedule") if isinstance(lr, dict) else type(lr).__name__
        raise RecipeError(
            "The optimizer's learning rate cannot be scaled for this stage. Expected a number or "
            "a schedule with an initial_learning_rate, or learning_rate_scale=1.0 on the stage. "
            f"Received: {name}"
        )
    return type(optimizer).from_config(config)


def describe(optimizer) -> str:
    """E.g. "Adam at learning rate 0.0003" or "SGD, CosineDecay from 0.01"."""
    lr = optimizer.get_config().get("learning_rate")
    name = type(optimizer).__name__
    if isinstance(lr, numbers.Real):
        return f"{name} at learning rate {float(lr):.3g}"
    if isinstance(lr, dict):
        start = lr.get("config", {}).get("initial_learning_rate")
        schedule = lr.get("class_name", "a schedule")
        return f"{name}, {schedule}" + (f" from {float(start):.3g}" if start is not None else "")
    return name
