"""Measuring a Keras model on labelled validation samples, the same way for every caller."""

from __future__ import annotations

from keras_squeeze.core import models
from keras_squeeze.data.inputs import Samples
from keras_squeeze.report import metrics


def validation_accuracy(model, samples: Samples | None) -> float | None:
    """Top-1 accuracy of a one-output classifier on labelled samples, else None."""
    if samples is None or samples.labels is None:
        return None
    return metrics.classifier_accuracy(models.keras_outputs(model, samples), samples.labels)
