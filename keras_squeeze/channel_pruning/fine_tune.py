"""Fine-tuning the pruned model: a pluggable step, plain Keras `fit` by default.

`prune_channels(..., fine_tune=fn)` calls `fn(pruned_model)`; `fn` trains the
model in place (and returns None) or returns the model to use instead, e.g. a
distillation loop with the original model as the teacher. Without `fn`, and
with `train_data` and `epochs`, the pruned model is compiled with the loss
(the original model's compiled loss by default) and the optimizer (Adam at
`DEFAULT_LEARNING_RATE` by default) and trained with `Model.fit`, showing
Keras progress bars when verbose.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.data.inputs import Samples, _is_dataset
from keras_squeeze.errors import DataError

DEFAULT_LEARNING_RATE = 3e-4  # a third of a usual training rate: the kept weights are trained

FineTune = Callable[[object], object]


def _inputs(samples: Samples):
    return samples.inputs[0] if len(samples.inputs) == 1 else samples.inputs


def _looks_like_classes(labels: np.ndarray | None) -> bool:
    return labels is not None and labels.ndim <= 2 and labels.dtype.kind in "iu"


def fit(
    model,
    train,
    *,
    epochs: int,
    loss,
    optimizer=None,
    batch_size: int = 32,
    validation: Samples | None = None,
    verbose: int = 1,
):
    """Compiles `model` with `loss` and `optimizer` and trains it for `epochs` on `train`.

    Args:
        model: the pruned model (trained in place).
        train: labelled Samples, or a tf.data.Dataset of (x, y) batches.
        epochs: number of passes over `train`.
        loss: a callable or Keras loss (required).
        optimizer: a Keras optimizer or name; Adam(DEFAULT_LEARNING_RATE) if None.
        batch_size: batch size for in-memory samples.
        validation: labelled Samples shown after each epoch.
        verbose: Keras `fit` verbosity (1 shows progress bars).

    Returns:
        The history's final-epoch logs.
    """
    k = _compat.keras_module(_compat.keras_flavour(model))
    if optimizer is None:
        optimizer = k.optimizers.Adam(learning_rate=DEFAULT_LEARNING_RATE)
    labels = None if _is_dataset(train) else train.labels
    if not _is_dataset(train) and labels is None:
        raise DataError(
            "Fine-tuning needs labelled training data. Expected train_data=(x, y) or a "
            "tf.data.Dataset of (x, y) batches. Received: inputs without labels"
        )
    metrics = ["accuracy"] if _is_dataset(train) or _looks_like_classes(labels) else []
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    val = None
    if validation is not None and validation.labels is not None:
        val = (_inputs(validation), validation.labels)
    if _is_dataset(train):
        history = model.fit(train, epochs=epochs, validation_data=val, verbose=verbose)
    else:
        history = model.fit(
            _inputs(train),
            labels,
            batch_size=batch_size,
            epochs=epochs,
            validation_data=val,
            shuffle=True,
            verbose=verbose,
        )
    return {key: values[-1] for key, values in history.history.items()}


def describe(fine_tune: FineTune | None, epochs: int, optimizer) -> str:
    if fine_tune is not None:
        return f"custom fine_tune step {getattr(fine_tune, '__name__', type(fine_tune).__name__)}"
    name = "Adam" if optimizer is None else getattr(optimizer, "name", str(optimizer))
    rate = f" (learning rate {DEFAULT_LEARNING_RATE:g})" if optimizer is None else ""
    return f"Model.fit for {epochs} epoch(s) with {name}{rate}"
