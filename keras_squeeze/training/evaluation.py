"""Measuring a Keras model on labelled validation samples, the same way for every caller."""

from __future__ import annotations

from keras_squeeze.core import models
from keras_squeeze.data import labels as labels_mod
from keras_squeeze.data.inputs import Samples
from keras_squeeze.report import metrics


def validation_accuracy(model, samples: Samples | None) -> float | None:
    """Top-1 accuracy of a one-output classifier on labelled samples, else None."""
    if samples is None or samples.labels is None:
        return None
    return metrics.classifier_accuracy(models.keras_outputs(model, samples), samples.labels)


def output_roles(reference, samples: Samples | None, loss=None) -> list[str]:
    """Each output's role for measuring: "classification" or "regression".

    Read from `reference` (the user's model: its output shapes and compiled
    loss), the labels of `samples` and the `loss=` given (see `training.tasks`).
    """
    from keras_squeeze.training import tasks

    labels = samples.labels if samples is not None else None
    return tasks.roles(reference, labels, loss)


def validation_scores(
    model, samples: Samples | None, roles: list[str], names: list[str] | None = None
) -> list[dict] | None:
    """The task metric of each output of `model` on labelled samples (see
    `report.metrics.output_scores`), else None; under `names` (the user's output names,
    in order) when given, else `model`'s."""
    if samples is None or samples.labels is None:
        return None
    outputs = models.keras_outputs(model, samples)
    if names is None or len(names) != len(outputs):
        names = [s.name for s in labels_mod.output_specs(model)]
    if len(names) != len(outputs):
        names = models.output_names(model)
    return metrics.output_scores(outputs, samples.labels, roles, names)


def headline(scores: list[dict] | None) -> dict:
    """{"accuracy": first classification output's, "mse": first regression output's,
    "per_output": {name: its figures} when there are several outputs}."""
    if not scores:
        return {"accuracy": None, "mse": None, "per_output": None}
    first_cls = next((s for s in scores if s["task"] == metrics.CLASSIFICATION), None)
    first_reg = next((s for s in scores if s["task"] == metrics.REGRESSION), None)
    per_output = None
    if len(scores) > 1:
        per_output = {s["name"]: {k: v for k, v in s.items() if k not in ("name",)} for s in scores}
    return {
        "accuracy": first_cls["accuracy"] if first_cls else None,
        "mse": first_reg["mse"] if first_reg else None,
        "per_output": per_output,
    }


def label_forms(train, model) -> str | dict | None:
    """How the training labels look, for the report: "class ids" or "one-hot" for a
    one-output model (as before), else {output name: "class ids" / "one-hot" / "targets"}."""
    if not train.has_labels:
        return None
    specs = labels_mod.output_specs(model)
    sample = train.label_sample
    if sample is None:
        return "one-hot" if train.one_hot else "class ids"
    forms = {}
    for spec, y in zip(specs, sample if isinstance(sample, list) else [sample], strict=True):
        classes = spec.shape[0] if labels_mod.is_classifier_shape(spec.shape) else None
        forms[spec.name] = labels_mod.describe(y, classes)
    return forms if len(forms) > 1 else next(iter(forms.values()))
