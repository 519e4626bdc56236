"""The serving function shared by the ONNX and SavedModel exporters."""

from __future__ import annotations

from keras_squeeze.core import models


def serving_function(model, output_names=None):
    """A `tf.function` taking the model's inputs by name, returning outputs by name:
    `output_names` (in the model's output order) when given, else the model's own.

    Returns:
        (function, input_signature): the signature is a list of named
        `tf.TensorSpec`s with a free batch axis.
    """
    import tensorflow as tf

    specs = models.input_specs(model)
    own = models.output_names(model)
    names = list(output_names) if output_names is not None else own
    signature = [tf.TensorSpec((None, *s.shape), s.dtype, name=s.name) for s in specs]

    @tf.function(input_signature=signature)
    def serve(*args):
        out = model(list(args) if len(args) > 1 else args[0], training=False)
        if isinstance(out, dict):
            out = [out[n] for n in own]
        out = out if isinstance(out, (list, tuple)) else [out]
        return dict(zip(names, out, strict=True))

    return serve, signature
