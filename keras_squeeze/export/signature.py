"""The serving function shared by the ONNX and SavedModel exporters."""

from __future__ import annotations

from keras_squeeze import _compat
from keras_squeeze.core import models


def serving_function(model, output_names=None, graph_batch: bool = False):
    """A `tf.function` taking the model's inputs by name, returning outputs by name:
    `output_names` (in the model's output order) when given, else the model's own.

    The model is called as `models.call_model` calls it (a dict for a
    subclassed model whose signature is a dict), so the same function serves
    models with and without a layer graph.

    Returns:
        (function, input_signature): the signature is a list of named
        `tf.TensorSpec`s with a free batch axis (a fixed one for a
        `fixed_batch_copy` of a subclassed model; with `graph_batch`, a graph
        model's inputs' own, e.g. 1 for a `core.batch.with_batch_size` copy).
    """
    import tensorflow as tf

    specs = models.input_specs(model)
    own = models.output_names(model)
    names = list(output_names) if output_names is not None else own
    traced = models.signature_of(model)
    batch = traced.batch if traced is not None else None
    if graph_batch and models.is_graph_model(model):
        batch = model.inputs[0].shape[0]
    signature = [tf.TensorSpec((batch, *s.shape), s.dtype, name=s.name) for s in specs]

    @tf.function(input_signature=signature)
    def serve(*args):
        out = models.call_model(model, args)
        if isinstance(out, dict):
            out = [out[n] for n in own]
        out = out if isinstance(out, (list, tuple)) else [out]
        return dict(zip(names, out, strict=True))

    return serve, signature


def converter_for(model):
    """The TFLite converter of `model`: `from_keras_model` for a Keras 3 graph model,
    else `traced_converter`.

    `from_keras_model` reads a subclassed model only through Keras' own record of its
    first call, and saves a tf_keras model in the legacy SavedModel format first, which
    traces every layer's call functions: for a quantization-aware MobileNetV2 (alpha
    0.35, 32x32) 55 s against 8 s traced, the same file bit for bit
    (tests/export/test_converter.py).
    """
    import tensorflow as tf

    if models.is_graph_model(model) and _compat.keras_flavour(model) == _compat.KERAS3:
        return tf.lite.TFLiteConverter.from_keras_model(model)
    return traced_converter(model)


def traced_converter(model):
    """A TFLite converter from the model's traced serving function, at the batch of
    its inputs (a graph model's own; a subclassed model's resolved signature).

    The variables the function reads are tracked next to it, so the converter freezes
    them into constants (untracked, they stay resource variables that calibration
    cannot read); the model itself is not (its other trackables, e.g. a dropout
    layer's seed state, cost the .tflite its signature).
    """
    import tensorflow as tf

    serve, _ = serving_function(model, graph_batch=True)
    concrete = serve.get_concrete_function()
    holder = tf.Module()
    holder.frozen = list(concrete.variables)
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)
