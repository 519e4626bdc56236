"""BatchNormalization statistics re-estimated on data, for the weights a model has now.

A BatchNormalization's moving mean and variance are exponential averages of the
batch statistics seen while the weights changed. After a short fine-tuning (a few
hundred steps at momentum 0.99) they still carry the weights the model had before,
and a model that lost blocks has inputs to every later normalization that its
statistics never saw. `reestimate` sets each layer's mean and variance to those of
its inputs over the samples, computed as Model.fit computes batch statistics
(training mode), which is what the moving averages converge to at fixed weights.
Folding the layers into the one before is then exact for the weights that will ship.
"""

from __future__ import annotations

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.data.inputs import Samples

BATCH_SIZE = 64


def _axes(config: dict, rank: int) -> tuple[int, ...] | None:
    axis = config.get("axis", -1)
    axis = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if len(axis) != 1:
        return None
    channel = axis[0] % rank
    return tuple(a for a in range(rank) if a != channel)


def _candidates(model) -> list:
    """The model's own BatchNormalization layers that are called once, with one channel axis
    and no renormalization (nested models and shared layers keep their statistics)."""
    found = []
    for layer in model.layers:
        config = layer.get_config()
        if type(layer).__name__ != "BatchNormalization" or config.get("renorm"):
            continue
        if len(getattr(layer, "_inbound_nodes", [])) != 1:
            continue  # shared, or never called
        tensor = layer.input
        if not isinstance(tensor, (list, tuple)) and _axes(config, len(tensor.shape)) is not None:
            found.append(layer)
    return found


def reestimate(model, samples: Samples, batch_size: int = BATCH_SIZE) -> list[str]:
    """Sets the moving mean and variance of `model`'s BatchNormalization layers in place to
    the mean and variance of their inputs over `samples`, in training mode.

    Args:
        model: a functional or Sequential Keras 3 or tf_keras model.
        samples: inputs to run (labels are not used).
        batch_size: samples per forward pass (the batch statistics each layer normalizes
            with while the statistics are gathered, as in fit).

    Returns:
        The names of the layers re-estimated (empty when the model has none it can reach).
    """
    layers = _candidates(model)
    if not layers or samples.count == 0:
        return []
    k = _compat.keras_module(_compat.keras_flavour(model))
    probe = k.Model(model.inputs, [layer.input for layer in layers])
    axes = [_axes(layer.get_config(), len(layer.input.shape)) for layer in layers]
    sums = [None] * len(layers)
    squares = [None] * len(layers)
    counts = [0] * len(layers)
    for start in range(0, samples.count, batch_size):
        batch = samples.batch(start, start + batch_size)
        outputs = probe(batch, training=True)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for i, value in enumerate(outputs):
            x = np.asarray(value, np.float64)
            s, q = x.sum(axis=axes[i]), np.square(x).sum(axis=axes[i])
            sums[i] = s if sums[i] is None else sums[i] + s
            squares[i] = q if squares[i] is None else squares[i] + q
            counts[i] += x.size // s.size
    for layer, s, q, n in zip(layers, sums, squares, counts, strict=True):
        mean = s / n
        variance = np.maximum(q / n - np.square(mean), 0.0)
        dtype = layer.moving_mean.dtype
        layer.moving_mean.assign(mean.astype(np.dtype(getattr(dtype, "name", dtype))))
        layer.moving_variance.assign(variance.astype(np.dtype(getattr(dtype, "name", dtype))))
    return [layer.name for layer in layers]
