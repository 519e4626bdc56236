"""What each output of a model is: a classifier or a regression output, and its loss.

The same answer serves fine-tuning (the loss and the distillation of each
output), the per-stage validation metric and the report's task metric.

Per output:
- its loss: the `loss=` given (one loss for every output, a list in output
  order, or a dict keyed by output name; a None entry or a missing key falls
  back), else the model's compiled loss for that output, else the default of
  its role: cross-entropy on class ids or one-hot rows for a classifier, mean
  squared error for a regression output;
- its weight: the compiled `loss_weights` (for several outputs), else 1;
- its role (`data.labels.role`): a `(batch, classes >= 2)` output is a
  classifier unless its loss is a regression loss (mse, mae, huber, ...) or
  its labels are neither class ids nor one-hot / soft rows; every other output
  (boxes, embeddings, dense maps, one-unit scores) is a regression output.

Example:
    >>> [(t.name, t.classifier) for t in output_tasks(model, labels=[ids, boxes])]
    [('classes', True), ('box', False)]
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from keras_squeeze import _compat
from keras_squeeze.data import labels as labels_mod
from keras_squeeze.errors import RecipeError
from keras_squeeze.training import losses

AUTO = "auto"
_REGRESSION_NAMES = ("mse", "mae", "mape", "msle", "logcosh")
_REGRESSION_PARTS = ("mean_squared", "mean_absolute", "huber", "log_cosh", "cosine_similarity")
_CLASSIFICATION_NAMES = ("kld", "kl_divergence", "kullback_leibler_divergence")
_CLASSIFICATION_PARTS = ("crossentropy", "hinge")
# Losses the loop computes itself (for either Keras flavour, from logits or probabilities).
_BUILTIN = {
    labels_mod.CLASSIFICATION: ("sparse_categorical_crossentropy", "categorical_crossentropy"),
    labels_mod.REGRESSION: ("mse", "mean_squared_error"),
}


@dataclasses.dataclass(frozen=True)
class OutputTask:
    """One output of the student, as the loop trains and measures it.

    Attributes:
        name: the output's name.
        classifier: a classification output (else regression).
        kind: for a classifier, whether it outputs "logits" or "probabilities".
        loss: a callable(y_true, y_pred), or None for the built-in loss of its
            role (cross-entropy, mean squared error).
        loss_name: the loss's name, for the report ("default" when built in).
        weight: its share of the total loss (the compiled `loss_weights` of a
            model with several outputs; 1.0 otherwise).
    """

    name: str
    classifier: bool
    kind: str = losses.LOGITS
    loss: object = None
    loss_name: str = "default"
    weight: float = 1.0


def loss_name(loss) -> str:
    """A loss's name in snake case: 'mse', 'sparse_categorical_crossentropy', 'huber_loss'..."""
    if isinstance(loss, str):
        name = loss
    else:
        name = getattr(loss, "name", None)
        if not isinstance(name, str):
            name = getattr(loss, "__name__", None)
        if not isinstance(name, str):
            name = type(loss).__name__
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def loss_role(loss) -> str | None:
    """The role a known loss implies (classification / regression), None when unknown."""
    if loss is None:
        return None
    name = loss_name(loss)
    if name in _REGRESSION_NAMES or any(p in name for p in _REGRESSION_PARTS):
        return labels_mod.REGRESSION
    if name in _CLASSIFICATION_NAMES or any(p in name for p in _CLASSIFICATION_PARTS):
        return labels_mod.CLASSIFICATION
    return None


def per_output(loss, names: Sequence[str], argument: str = "loss") -> list:
    """`loss` as one entry per output (None where it gives none).

    Raises:
        RecipeError: a list of the wrong length, a dict keyed by names that are
            not outputs, or an entry that is not a loss.
    """
    if loss is None:
        return [None] * len(names)
    if isinstance(loss, Mapping):
        unknown = [str(k) for k in loss if k not in names]
        if unknown:
            raise RecipeError(
                f"{argument} is keyed by names that are not outputs of the model: {unknown}. "
                f"Expected keys among the model's outputs {list(names)}. Received: keys "
                f"{sorted(str(k) for k in loss)}"
            )
        entries = [loss.get(n) for n in names]
    elif isinstance(loss, Sequence) and not isinstance(loss, str):
        if len(loss) != len(names):
            raise RecipeError(
                f"{argument} gives {len(loss)} losses for a model with {len(names)} output(s). "
                f"Expected one loss per output, in order {list(names)} (or a dict keyed by "
                f"output name, or one loss for every output). Received: {len(loss)} losses"
            )
        entries = list(loss)
    else:
        entries = [loss] * len(names)
    for name, entry in zip(names, entries, strict=True):
        if entry is not None and not isinstance(entry, str) and not callable(entry):
            raise RecipeError(
                f"{argument} for output '{name}' is not a loss. Expected a Keras loss name, "
                f"object or callable(y_true, y_pred). Received: {type(entry).__name__}"
            )
    return entries


def compiled_losses(model, names: Sequence[str]) -> list:
    """The model's compiled loss per output (None entries when it has none or it does not fit)."""
    loss = getattr(model, "loss", None) if model is not None else None
    try:
        return per_output(loss, names, "the model's compiled loss")
    except RecipeError:
        return [None] * len(names)


def compiled_weights(model, names: Sequence[str]) -> list[float]:
    """The model's compiled `loss_weights` per output (1.0 where none, and for one output)."""
    config = getattr(getattr(model, "_compile_config", None), "config", None) or {}
    weights = config.get("loss_weights") if isinstance(config, Mapping) else None
    if weights is None or len(names) == 1:
        return [1.0] * len(names)
    if isinstance(weights, Mapping):
        return [float(weights.get(n, 1.0)) for n in names]
    if isinstance(weights, Sequence) and len(weights) == len(names):
        return [float(w) for w in weights]
    return [1.0] * len(names)


def resolve(entry, role: str, flavour: str, argument: str = "loss"):
    """A callable for one output's loss entry, or None for the loop's built-in loss.

    Raises:
        RecipeError: a loss name Keras does not know.
    """
    if entry is None or loss_name(entry) in _BUILTIN[role]:
        return None
    if not isinstance(entry, str):
        return entry
    k = _compat.keras_module(flavour)
    try:
        return k.losses.get(entry)
    except (ValueError, TypeError) as e:
        raise RecipeError(
            f"Unknown {argument}. Expected a Keras loss name (e.g. 'mse', "
            f"'sparse_categorical_crossentropy'), object or callable(y_true, y_pred). "
            f"Received: {argument}={entry!r}"
        ) from e


def check_loss(loss, model) -> None:
    """Refuses a `loss=` that does not fit the model's outputs, before any work.

    Raises:
        RecipeError: see `per_output` and `resolve`.
    """
    entries = per_output(loss, [s.name for s in labels_mod.output_specs(model)])
    flavour = _compat.keras_flavour(model) or _compat.TF_KERAS
    for entry in entries:
        if isinstance(entry, str):
            resolve(entry, labels_mod.REGRESSION, flavour)


def as_list(labels, count: int) -> list:
    """Labels matched to the outputs (`data.labels.per_output`) as one entry per output."""
    if labels is None:
        return [None] * count
    return list(labels) if isinstance(labels, list) else [labels]


def output_tasks(
    model, labels=None, loss=None, compiled_from=None, student_kind: str = AUTO
) -> list[OutputTask]:
    """Each output's role, output kind and loss (see the module docstring).

    Args:
        model: the student (the model trained or measured).
        labels: labels matched to its outputs (`data.labels.per_output`), or None.
        loss: the `loss=` given, or None.
        compiled_from: the model whose compiled loss and output names count
            (the user's model, when `model` is a working copy of it).
        student_kind: "logits" / "probabilities" for every classifier output,
            or "auto" (read from each output's activation).
    """
    specs = labels_mod.output_specs(model)
    reference = compiled_from if compiled_from is not None else model
    names = labels_mod.output_specs(reference) if reference is not model else specs
    if len(names) == len(specs):
        specs = [labels_mod.OutputSpec(n.name, s.shape) for n, s in zip(names, specs, strict=True)]
    names = [s.name for s in specs]
    given = per_output(loss, names)
    compiled = compiled_losses(reference, names)
    entries = [g if g is not None else c for g, c in zip(given, compiled, strict=True)]
    flavour = _compat.keras_flavour(model) or _compat.TF_KERAS
    try:
        kinds = losses.output_kinds(model)
    except (AttributeError, ValueError, TypeError, IndexError):
        kinds = [losses.LOGITS] * len(specs)
    weights = compiled_weights(reference, names)
    tasks = []
    for spec, y, entry, kind, weight in zip(
        specs, as_list(labels, len(specs)), entries, kinds, weights, strict=True
    ):
        role = labels_mod.role(spec, y, loss_role(entry))
        tasks.append(
            OutputTask(
                name=spec.name,
                classifier=role == labels_mod.CLASSIFICATION,
                kind=kind if student_kind == AUTO else student_kind,
                loss=resolve(entry, role, flavour),
                loss_name="default" if entry is None else loss_name(entry),
                weight=weight,
            )
        )
    return tasks


def roles(model, labels=None, loss=None) -> list[str]:
    """Each output's role ("classification" / "regression"), for measuring `model`."""
    tasks = output_tasks(model, labels, loss)
    return [labels_mod.CLASSIFICATION if t.classifier else labels_mod.REGRESSION for t in tasks]
