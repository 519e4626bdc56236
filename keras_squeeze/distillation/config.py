"""Distillation settings: a small validated object with documented defaults."""

from __future__ import annotations

import dataclasses

from keras_squeeze.errors import RecipeError

AUTO = "auto"
_KINDS = (AUTO, "logits", "probabilities")

DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.9


@dataclasses.dataclass(frozen=True)
class Distill:
    """How a student learns from a teacher.

    Args:
        temperature: softening temperature T > 0 of the KD loss (default 4.0).
        alpha: weight of the KD loss in [0, 1]; the task loss on labels gets
            1 - alpha (default 0.9). Without labels alpha is taken as 1.
        teacher_outputs / student_outputs: "logits", "probabilities" or "auto"
            (read from the output layer's activation: softmax/sigmoid means
            probabilities). A wrong guess silently weakens training, so pass
            it when the output layer hides its activation.
        features: pairs (teacher_layer, student_layer) whose outputs are also
            matched (mean squared error; a learned 1x1 projection bridges
            different channel counts).
        feature_weight: weight of the feature loss (default 1.0).
        mix_inputs: also match the teacher on mixed inputs (each sample
            blended with another of its batch, lambda ~ U(0, 1)), where labels
            say nothing but the teacher still answers ("function matching";
            labels are used on the real samples only). Float inputs only.

    Example:
        >>> ks.compress(model, "prune", train_data=(x, y), distill=ks.Distill(alpha=0.7))
    """

    temperature: float = DEFAULT_TEMPERATURE
    alpha: float = DEFAULT_ALPHA
    teacher_outputs: str = AUTO
    student_outputs: str = AUTO
    features: tuple[tuple[str, str], ...] = ()
    feature_weight: float = 1.0
    mix_inputs: bool = False

    def __post_init__(self):
        if not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
            raise RecipeError(
                "The distillation temperature must be positive. Expected a number > 0. "
                f"Received: temperature={self.temperature!r}"
            )
        if not isinstance(self.alpha, (int, float)) or not 0.0 <= self.alpha <= 1.0:
            raise RecipeError(
                "The distillation weight alpha must lie in [0, 1]. Expected 0 <= alpha <= 1. "
                f"Received: alpha={self.alpha!r}"
            )
        for name in ("teacher_outputs", "student_outputs"):
            if getattr(self, name) not in _KINDS:
                raise RecipeError(
                    f"Unknown output kind. Expected one of {list(_KINDS)}. "
                    f"Received: {name}={getattr(self, name)!r}"
                )
        pairs = tuple(tuple(p) for p in self.features)
        if any(len(p) != 2 or not all(isinstance(n, str) for n in p) for p in pairs):
            raise RecipeError(
                "features must be (teacher_layer, student_layer) name pairs. Expected e.g. "
                f"[('block_3', 'block_3')]. Received: features={self.features!r}"
            )
        object.__setattr__(self, "features", pairs)
        if not self.feature_weight >= 0:
            raise RecipeError(
                f"feature_weight must be >= 0. Received: feature_weight={self.feature_weight!r}"
            )

    def get_config(self) -> dict:
        config = dataclasses.asdict(self)
        config["features"] = [list(p) for p in self.features]
        return config

    @classmethod
    def from_config(cls, config: dict) -> Distill:
        return cls(**config)
