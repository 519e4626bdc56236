"""Task losses and output kinds, as plain TF ops that work for both Keras flavours."""

from __future__ import annotations

LOGITS = "logits"
PROBABILITIES = "probabilities"
_EPS = 1e-7


def _activation_name(layer) -> str | None:
    if type(layer).__name__ == "Softmax":
        return "softmax"
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) if activation is not None else None


def output_kind(model) -> str:
    """Whether the model's (first) output is logits or probabilities.

    Read from the layer producing the output: a softmax or sigmoid activation
    (as `activation=` or a Softmax / Activation layer) means probabilities. A
    subclassed model has no output layer to read: its output on synthetic
    inputs is probabilities when every value lies in [0, 1].
    """
    from keras_squeeze.core import models

    if not models.is_graph_model(model):
        return _kind_from_values(model)
    name = _activation_name(models.output_layer(model))
    return PROBABILITIES if name in ("softmax", "sigmoid") else LOGITS


def output_kinds(model) -> list[str]:
    """`output_kind` of every output, in order."""
    from keras_squeeze import _compat
    from keras_squeeze.core import graph, models

    if not models.is_graph_model(model):  # no layer graph: read the kinds from the values
        return _kinds_from_values(model)
    kinds = []
    for tensor in model.outputs:
        layer = graph.producer(tensor) or model.layers[-1]
        while _compat.is_keras_model(layer) and getattr(layer, "outputs", None):
            layer = graph.producer(layer.outputs[0]) or layer.layers[-1]
        name = _activation_name(layer)
        kinds.append(PROBABILITIES if name in ("softmax", "sigmoid") else LOGITS)
    return kinds


def as_logits(outputs, kind: str):
    """Logits from outputs: log-probabilities stand in for logits of probabilities
    (softmax(log p) == p), so both kinds soften the same way."""
    import tensorflow as tf

    if kind == PROBABILITIES:
        return tf.math.log(tf.clip_by_value(outputs, _EPS, 1.0))
    return outputs


def is_one_hot(labels) -> bool:
    """One-hot (or soft) label rows, judged from the tensor's static shape."""
    import tensorflow as tf

    shape = tf.TensorShape(labels.shape)
    return shape.rank is not None and shape.rank >= 2 and shape[-1] not in (None, 1)


def class_ids(labels):
    """Integer class ids from class ids or one-hot rows (TF)."""
    import tensorflow as tf

    if is_one_hot(labels):
        return tf.argmax(labels, axis=-1)
    return tf.reshape(tf.cast(labels, tf.int64), [-1])


def classification_loss(labels, outputs, kind: str):
    """Mean cross-entropy of class ids (or one-hot rows) against logits or probabilities."""
    import tensorflow as tf

    logits = as_logits(outputs, kind)
    if is_one_hot(labels):
        per_sample = tf.nn.softmax_cross_entropy_with_logits(tf.cast(labels, logits.dtype), logits)
    else:
        ids = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        per_sample = tf.nn.sparse_softmax_cross_entropy_with_logits(ids, logits)
    return tf.reduce_mean(per_sample)


def _kinds_from_values(model) -> list[str]:
    import numpy as np

    from keras_squeeze.core import models
    from keras_squeeze.data.inputs import synthetic_samples

    outputs = models.keras_outputs(model, synthetic_samples(models.input_specs(model), 8))
    return [
        PROBABILITIES if float(np.min(o)) >= 0.0 and float(np.max(o)) <= 1.0 else LOGITS
        for o in outputs
    ]


def _kind_from_values(model) -> str:
    return _kinds_from_values(model)[0]


def is_classifier(model) -> bool:
    """A single (batch, classes >= 2) output."""
    from keras_squeeze.core import models

    shapes = models.output_shapes(model)
    if len(shapes) != 1:
        return False
    shape = shapes[0]
    return len(shape) == 1 and shape[-1] is not None and shape[-1] >= 2
