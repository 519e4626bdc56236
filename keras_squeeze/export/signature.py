"""The serving function shared by the ONNX and SavedModel exporters."""

from __future__ import annotations

from keras_squeeze.core import models


def serving_function(model):
    """A `tf.function` taking the model's inputs by name, returning outputs by name.

    Returns:
        (function, input_signature): the signature is a list of named
        `tf.TensorSpec`s with a free batch axis.
    """
    import tensorflow as tf

    specs = models.input_specs(model)
    names = models.output_names(model)
    signature = [tf.TensorSpec((None, *s.shape), s.dtype, name=s.name) for s in specs]

    @tf.function(input_signature=signature)
    def serve(*args):
        out = model(list(args) if len(args) > 1 else args[0], training=False)
        if isinstance(out, dict):
            out = [out[n] for n in names]
        out = out if isinstance(out, (list, tuple)) else [out]
        return dict(zip(names, out, strict=True))

    return serve, signature
