"""Channel pruning settings: a small validated object that round-trips through its config."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from keras_squeeze.channel_pruning.importance import CRITERIA
from keras_squeeze.errors import RecipeError
from keras_squeeze.layer_plan import check_skip
from keras_squeeze.training import rate

METRICS = ("flops", "params")
ALLOCATIONS = ("uniform", "global")
DEFAULT_TAYLOR_SAMPLES = 128
# The kept channels are trained already: fine-tuning adapts them in smaller steps.
DEFAULT_LEARNING_RATE_SCALE = 0.3


def _check_fraction(value, argument: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0.0 < value <= 1.0
    ):
        raise RecipeError(
            f"{argument} must be the fraction to keep. Expected a number in (0, 1]. "
            f"Received: {argument}={value!r}"
        )
    return float(value)


def _check_choice(value, choices, argument: str) -> str:
    if value not in choices:
        raise RecipeError(
            f"Unknown {argument}. Expected one of {', '.join(map(repr, choices))}. "
            f"Received: {argument}={value!r}"
        )
    return value


def _check_int(value, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RecipeError(
            f"{argument} must be a positive integer. Expected >= 1. Received: {argument}={value!r}"
        )
    return value


@dataclasses.dataclass(frozen=True)
class ChannelPruning:
    """What channel pruning aims for and how it chooses channels.

    Args:
        target: the fraction of the model's cost to keep, in (0, 1] (cost is
            `metric`); or a dict {layer name: fraction of its output channels
            to keep}, pruning only the named layers (and the layers coupled
            with them).
        metric: "flops" (multiply-accumulates of Conv / Depthwise / Separable /
            ConvTranspose / Dense layers at the model's input size, batch 1;
            see `count_flops`) or "params" (all weights, trainable or not).
            Ignored with a per-layer `target`.
        criterion: channel importance: "l1" or "l2" (filter norms), "bn_scale"
            (|gamma| of the BatchNormalization in the group; groups without one
            fall back to "l1") or "taylor" (first-order Taylor on a few batches
            of labelled data). See `keras_squeeze.channel_pruning.importance`.
        allocation: "uniform" (every group keeps the same fraction of its
            channels; the default: predictable latency, no layer collapses) or
            "global" (channels of all groups ranked together by normalised
            importance). See `keras_squeeze.channel_pruning.selection`.
        round_to: kept channel counts are multiples of this (8 suits SIMD
            kernels); a group never keeps fewer than `round_to` channels (nor
            zero), and groups of at most `round_to` channels are kept whole.
        skip: names of layers whose output channels are left whole (with
            everything coupled to them). Their input channels still shrink when
            the layer feeding them is pruned; skip that layer too to prevent it.
        taylor_samples: samples used by the "taylor" criterion.
        learning_rate_scale: the smaller model fine-tunes at this multiple of
            the run's learning rate (default 0.3: the kept weights are
            trained; see `keras_squeeze.training.rate`).

    Example:
        >>> settings = ChannelPruning(target=0.5, metric="flops", criterion="l1")
        >>> ChannelPruning.from_config(settings.get_config()) == settings
        True
    """

    target: float | Mapping[str, float] = 0.5
    metric: str = "flops"
    criterion: str = "l1"
    allocation: str = "uniform"
    round_to: int = 8
    skip: tuple[str, ...] = ()
    taylor_samples: int = DEFAULT_TAYLOR_SAMPLES
    learning_rate_scale: float = DEFAULT_LEARNING_RATE_SCALE

    def __post_init__(self):
        if isinstance(self.target, Mapping):
            if not self.target:
                raise RecipeError(
                    "A per-layer target must name at least one layer. Expected a dict "
                    "{layer name: fraction to keep}. Received: target={}"
                )
            ratios = {}
            for name, value in self.target.items():
                if not isinstance(name, str):
                    raise RecipeError(
                        "A per-layer target is keyed by layer name. Expected string keys. "
                        f"Received: key {name!r}"
                    )
                ratios[name] = _check_fraction(value, f"target[{name!r}]")
            object.__setattr__(self, "target", ratios)
        else:
            object.__setattr__(self, "target", _check_fraction(self.target, "target"))
        _check_choice(self.metric, METRICS, "metric")
        _check_choice(self.criterion, CRITERIA, "criterion")
        _check_choice(self.allocation, ALLOCATIONS, "allocation")
        _check_int(self.round_to, "round_to")
        _check_int(self.taylor_samples, "taylor_samples")
        object.__setattr__(self, "skip", check_skip(self.skip))
        object.__setattr__(self, "learning_rate_scale", rate.check_scale(self.learning_rate_scale))

    @property
    def per_layer(self) -> bool:
        return isinstance(self.target, dict)

    def describe(self) -> str:
        if self.per_layer:
            what = ", ".join(f"{k}: {v:g}" for k, v in self.target.items())
            aim = f"per-layer channel fractions ({what})"
        else:
            aim = f"{self.target:g} of the {self.metric}"
        return (
            f"keep {aim}; importance '{self.criterion}', '{self.allocation}' allocation, "
            f"channel counts multiples of {self.round_to}"
        )

    def get_config(self) -> dict:
        config = dataclasses.asdict(self)
        config["skip"] = list(self.skip)
        config["target"] = dict(self.target) if self.per_layer else self.target
        return config

    @classmethod
    def from_config(cls, config: dict) -> ChannelPruning:
        if not isinstance(config, dict):
            raise RecipeError(
                "A channel pruning config must be a dict. Expected ChannelPruning.get_config() "
                f"output. Received: {type(config).__name__}"
            )
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(config) - set(names))
        if unknown:
            raise RecipeError(
                f"Unknown channel pruning config keys. Expected keys from {names}. "
                f"Received: {unknown}"
            )
        return cls(**config)
