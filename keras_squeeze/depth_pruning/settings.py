"""Block removal settings: a small validated object that round-trips through its config."""

from __future__ import annotations

import dataclasses
import math

from keras_squeeze.errors import RecipeError
from keras_squeeze.layer_plan import check_skip
from keras_squeeze.training import rate

METRICS = ("flops", "params", "latency", "blocks")
CRITERIA = ("bypass-loss", "output-distance", "taylor")
DEFAULT_TARGET = 0.7
DEFAULT_IMPORTANCE_SAMPLES = 64
# The kept blocks are trained, but the model lost whole blocks: on the residual digits
# CNN of benchmarks/depth.py (one seed) 0.3 of the rate recovered less than 0.5 and 1.0,
# which recovered the same.
DEFAULT_LEARNING_RATE_SCALE = 0.5
# When BatchNormalization is folded into the layer before it: "after" fine-tuning (kept
# while fine-tuning, its statistics re-estimated for the final weights, then folded),
# "before" it (the folded layers fine-tune like normalization in inference mode), or never
# (False: the layers stay). True is "after".
FOLD_CHOICES = ("after", "before", False)


def _check_bool(value, argument: str):
    if not isinstance(value, bool):
        raise RecipeError(
            f"{argument} is a switch. Expected True or False. Received: {argument}={value!r}"
        )
    return value


@dataclasses.dataclass(frozen=True)
class BlockRemoval:
    """What block removal (depth pruning) aims for and how it chooses the blocks.

    Removable units are found on the Keras graph (see
    `keras_squeeze.depth_pruning.units`): residual blocks `x + f(x)` (bypassed:
    `x`), blocks of a chain whose input and output shapes match (a Conv / Dense
    with its normalization and activation), and layers that are identities at
    inference (Dropout and its kin). Each unit is bypassed alone on a few
    batches of data and scored; the least important go first until the target
    is met.

    Args:
        target: the fraction of the model's cost to keep, in (0, 1); units are
            removed until the cost is at or below it.
        metric: the cost: "flops" (multiply-accumulates at the model's input
            size, batch 1; `ks.count_flops`), "params" (all weights),
            "latency" (each unit's measured saving: the float .tflite of the
            model with that unit bypassed against the original, interleaved,
            1 thread, XNNPACK; one conversion per unit) or "blocks" (each
            removable unit counts one, layers that are identities at inference
            none; which ones go is still ranked by importance per share of
            the MACs they save, when the shapes are static).
        criterion: how a unit's importance is measured with it bypassed:
            "bypass-loss" (the rise of the task loss on labelled data),
            "output-distance" (the squared distance of the model's outputs from
            the original's, relative to their mean square; no labels needed) or
            "taylor" (the first-order estimate of the loss change,
            mean |<dL/dy, x - y>| over samples, for a unit mapping x to y; one
            backward pass for all units).
        skip: unit or layer names to keep (a layer keeps the unit holding it).
        importance_samples: samples the importance is measured on.
        remeasure: re-measure the remaining units after each removal: True,
            False or None (when it is cheap: always for "taylor", and for the
            other criteria when it needs at most `MAX_REMEASURE_RUNS` bypassed
            runs).
        fold_batchnorm: when to fold BatchNormalization into the preceding
            Conv / Depthwise / Dense layer: "after" (default; True means the
            same) fine-tuning: the layers stay while the model fine-tunes,
            their statistics are then re-estimated on training data for the
            final weights (those of a model that lost blocks are stale, and
            a short fine-tuning does not renew the moving averages) and they
            are folded; "before": folded first, so the folded layers
            fine-tune like normalization in inference mode; False: never
            (the layers stay, with their moving averages).
        merge_linear: merge two consecutive linear layers (Dense -> Dense,
            Conv -> 1x1 Conv, no activation between) into one where that
            costs fewer multiply-accumulates.
        measure_latency: also measure the float .tflite latency before and
            after (always done for metric="latency").
        learning_rate_scale: the shallower model fine-tunes at this multiple
            of the run's learning rate (see `keras_squeeze.training.rate`).

    Example:
        >>> settings = ks.BlockRemoval(target=0.7, metric="flops", criterion="bypass-loss")
        >>> ks.BlockRemoval.from_config(settings.get_config()) == settings
        True
    """

    target: float = DEFAULT_TARGET
    metric: str = "flops"
    criterion: str = "bypass-loss"
    skip: tuple[str, ...] = ()
    importance_samples: int = DEFAULT_IMPORTANCE_SAMPLES
    remeasure: bool | None = None
    fold_batchnorm: str | bool = "after"
    merge_linear: bool = True
    measure_latency: bool = False
    learning_rate_scale: float = DEFAULT_LEARNING_RATE_SCALE

    def __post_init__(self):
        t = self.target
        if (
            isinstance(t, bool)
            or not isinstance(t, (int, float))
            or not math.isfinite(t)
            or not 0.0 < t < 1.0
        ):
            raise RecipeError(
                "target is the fraction of the model's cost to keep. Expected a number in (0, 1). "
                f"Received: target={t!r}"
            )
        object.__setattr__(self, "target", float(t))
        for value, choices, argument in (
            (self.metric, METRICS, "metric"),
            (self.criterion, CRITERIA, "criterion"),
        ):
            if value not in choices:
                raise RecipeError(
                    f"Unknown {argument}. Expected one of {', '.join(map(repr, choices))}. "
                    f"Received: {argument}={value!r}"
                )
        n = self.importance_samples
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise RecipeError(
                "importance_samples must be a positive integer. Expected >= 1. Received: "
                f"importance_samples={n!r}"
            )
        if self.remeasure is not None:
            _check_bool(self.remeasure, "remeasure")
        fold = self.fold_batchnorm
        if fold is True:
            fold = "after"
        if not any(fold is c if isinstance(c, bool) else fold == c for c in FOLD_CHOICES):
            raise RecipeError(
                "fold_batchnorm says when BatchNormalization is folded. Expected 'after', "
                f"'before', True (the same as 'after') or False (never). Received: "
                f"fold_batchnorm={self.fold_batchnorm!r}"
            )
        object.__setattr__(self, "fold_batchnorm", fold)
        for name in ("merge_linear", "measure_latency"):
            _check_bool(getattr(self, name), name)
        object.__setattr__(self, "skip", check_skip(self.skip, "unit or layer names"))
        object.__setattr__(self, "learning_rate_scale", rate.check_scale(self.learning_rate_scale))

    @property
    def needs_labels(self) -> bool:
        return self.criterion in ("bypass-loss", "taylor")

    def describe(self) -> str:
        return (
            f"keep {self.target:g} of the {self.metric}; importance '{self.criterion}' on "
            f"{self.importance_samples} samples"
        )

    def get_config(self) -> dict:
        config = dataclasses.asdict(self)
        config["skip"] = list(self.skip)
        return config

    @classmethod
    def from_config(cls, config: dict) -> BlockRemoval:
        if not isinstance(config, dict):
            raise RecipeError(
                "A block removal config must be a dict. Expected BlockRemoval.get_config() "
                f"output. Received: {type(config).__name__}"
            )
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(config) - set(names))
        if unknown:
            raise RecipeError(
                f"Unknown block removal config keys. Expected keys from {names}. "
                f"Received: {unknown}"
            )
        return cls(**config)
