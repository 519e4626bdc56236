"""Distillation settings: a small validated object with documented defaults."""

from __future__ import annotations

import dataclasses

from keras_squeeze.errors import RecipeError

AUTO = "auto"
_KINDS = (AUTO, "logits", "probabilities")

# Chosen by the sweep in benchmarks/RESULTS.md (distill_sweep): over three teacher/student
# pairs and "prune" fine-tuning, the setting that still learns from the teacher and is not
# significantly worse than labels only on any of them (the former 0.9 and 4 lost up to 5.4
# points). No fixed setting was ahead of labels only everywhere: with labelled validation
# data ks.distill and the "auto" search choose instead (`distillation.choice`).
DEFAULT_TEMPERATURE = 1.0
DEFAULT_ALPHA = 0.5


@dataclasses.dataclass(frozen=True)
class Distill:
    """How a student learns from a teacher.

    Args:
        temperature: softening temperature T > 0 of the KD loss (default 1.0).
        alpha: weight of the KD loss in [0, 1]; the task loss on labels gets
            1 - alpha (default 0.5). Without labels alpha is taken as 1. The
            defaults are the sweep's safest setting (`DEFAULT_ALPHA`), not a
            setting that helps every student: ks.distill with labelled
            validation data chooses among labels only, this and alpha 0.9,
            T 4 (`distillation.choice`).
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
