"""Quantization-aware training settings: a small validated stage object for ks.Recipe."""

from __future__ import annotations

import dataclasses

from keras_squeeze.errors import RecipeError
from keras_squeeze.layer_plan import check_selection

# The QAT Keras model and its .tflite should agree this well on top-1 class.
DEFAULT_MIN_TOP1_AGREEMENT = 0.99
DEFAULT_MIN_SQNR_DB = 15.0
# QAT from trained weights only adapts to rounding: smaller steps than training.
DEFAULT_LEARNING_RATE_SCALE = 0.3


@dataclasses.dataclass(frozen=True)
class QAT:
    """Quantization-aware training (engine: tfmot's default 8-bit scheme), then int8.

    Scheme: weights int8 per-channel symmetric for convolutions (per-tensor
    for Dense), activations int8 per-tensor asymmetric with moving-average
    ranges learnt in training; batch normalization after a convolution is
    folded into it. Layers the engine has no config for are handled layer by
    layer: weightless ones (standalone batch normalization, Rescaling,
    Normalization, Multiply, swish / hard-swish activations, ...) get their
    output quantized; TF-op layers and unsupported weighted layers stay float
    in training and the converter calibrates their int8 ranges. Each such
    layer is named in the report with its reason.

    Args:
        layers: per-layer choice: {key: True (quantize-aware) or None (keep
            float in training)}; a key is a layer name, class name or regular
            expression. Naming a layer that cannot take QAT is an error.
        skip: layer names, class names or patterns kept float in training.
        min_top1_agreement / min_sqnr_db: the QAT Keras model and its .tflite
            must agree at least this well, or the report warns loudly and
            compares them layer by layer.
        learning_rate_scale: the stage fine-tunes at this multiple of the
            run's learning rate (default 0.3: the weights are trained already
            and only adapt to int8 rounding; benchmarks/RESULTS.md compares
            it with the training rate).

    Example:
        >>> ks.Recipe(qat=ks.QAT(skip=["logits"]), quantization="int8")
    """

    layers: dict = dataclasses.field(default_factory=dict)
    skip: tuple[str, ...] = ()
    min_top1_agreement: float = DEFAULT_MIN_TOP1_AGREEMENT
    min_sqnr_db: float = DEFAULT_MIN_SQNR_DB
    learning_rate_scale: float = DEFAULT_LEARNING_RATE_SCALE

    def __post_init__(self):
        check_selection(
            self,
            maps_to="True or None",
            valid=lambda v: v is True,
            value_rule="A per-layer QAT choice is True (quantize-aware) or None (keep float)",
        )
        if not 0.0 <= self.min_top1_agreement <= 1.0:
            raise RecipeError(
                "min_top1_agreement is a fraction. Expected a value in [0, 1]. "
                f"Received: min_top1_agreement={self.min_top1_agreement!r}"
            )

    def get_config(self) -> dict:
        config = dataclasses.asdict(self)
        config["skip"] = list(self.skip)
        return config

    @classmethod
    def from_config(cls, config: dict) -> QAT:
        config = dict(config)
        config["skip"] = tuple(config.get("skip", ()))
        return cls(**config)
