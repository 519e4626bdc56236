"""A copy of a Keras model with a fixed batch size, for deployable .tflite files.

With a dynamic batch (None), the TFLite converter turns a Flatten or Reshape
into run-time shape arithmetic (SHAPE, STRIDED_SLICE, PACK on int32 tensors
feeding RESHAPE), and recurrent layers into tensor lists whose element shape
is not static. Phones, microcontrollers and the Edge TPU run batch 1: with
the batch fixed to 1 the converter folds the shapes into constants (none of
that arithmetic maps to the Edge TPU, whose compiler refuses dynamic-sized
tensors). compress() and ks.export.to_tflite convert such a copy by default.
"""

from __future__ import annotations

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.errors import ConfigError, ModelError, VerificationError


def with_batch_size(model, batch_size: int = 1):
    """Returns a copy of a functional or Sequential model whose inputs have a fixed batch size.

    The copy has the same layers (cloned) and the same weights; the user's
    model is not changed. The copy is checked to reproduce the model's outputs
    on one random input.

    Args:
        model: a Keras 3 or tf_keras functional or Sequential model with defined inputs.
        batch_size: the fixed batch size (1 for the Edge TPU).

    Returns:
        The copy, of the same Keras flavour.

    Raises:
        ConfigError: batch_size is not a positive integer.
        ModelError: the model is not a Keras model with defined inputs, or
            cannot be cloned or copied (a subclassed model is copied by
            `core.models.fixed_batch_copy`).
        VerificationError: the copy does not reproduce the model.

    Example:
        >>> fixed = ks.edgetpu.with_batch_size(model, 1)  # also keras_squeeze.core.batch
        >>> art = ks.export.to_tflite(fixed, quantization="int8", representative_data=x,
        ...                           inference_input_type="uint8", inference_output_type="uint8")
    """
    from keras_squeeze.core import models

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(
            f"batch_size must be a positive integer. Expected e.g. 1. Received: {batch_size!r}"
        )
    flavour = _compat.keras_flavour(model) if _compat.is_keras_model(model) else None
    if flavour is None:
        raise ModelError(
            "with_batch_size takes a Keras model. Expected a Keras 3 or tf_keras Model. "
            f"Received: {type(model).__name__}"
        )
    if not models.is_graph_model(model):  # subclassed: a copy traced at a fixed batch
        return models.fixed_batch_copy(model, batch_size)
    k = _compat.keras_module(flavour)
    specs = models.input_specs(model)
    inputs = [
        k.Input(shape=s.shape, batch_size=batch_size, dtype=s.dtype, name=s.name) for s in specs
    ]
    try:
        clone = k.models.clone_model(model, input_tensors=inputs if len(inputs) > 1 else inputs[0])
    except (ValueError, TypeError, NotImplementedError) as e:
        raise ModelError(
            f"The model '{model.name}' cannot be cloned with a fixed batch size. Expected a "
            "functional or Sequential model (build subclassed models on keras.Input(batch_size=1) "
            f"instead). Received: {type(e).__name__}: {e}"
        ) from e
    # In the model's own order first (a clone lists its weights as the model does), else
    # each weight by its name within its layer (tfmot's stripped MultiHeadAttention lists
    # its weights in another order); the copy is kept only if it computes the same.
    failure = None
    for copy in (
        lambda: clone.set_weights(model.get_weights()),
        lambda: models.copy_weights(model, clone),
    ):
        try:
            copy()
            _check_same(model, clone, specs, batch_size)
            return clone
        except (ValueError, VerificationError) as e:
            failure = failure or e
    if isinstance(failure, VerificationError):
        raise failure
    raise ModelError(
        f"The model '{model.name}' cannot be copied with a fixed batch size: its clone holds "
        f"other weights. Expected the same weights in a clone. Received: {failure}"[:600]
    ) from failure


def _check_same(model, clone, specs, batch_size: int) -> None:
    rng = np.random.default_rng(0)
    shapes = [(batch_size, *[2 if d is None else d for d in s.shape]) for s in specs]  # free axes
    feed = [
        rng.uniform(-1, 1, shape).astype(s.dtype)
        if s.dtype.startswith("float")
        else np.zeros(shape, dtype=s.dtype)
        for s, shape in zip(specs, shapes, strict=True)
    ]
    args = feed if len(feed) > 1 else feed[0]
    for a, b in zip(
        _as_list(model(args, training=False)), _as_list(clone(args, training=False)), strict=True
    ):
        if not np.allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6):
            raise VerificationError(
                f"The fixed-batch copy of '{model.name}' does not reproduce the model. Expected "
                "identical outputs on the same input. Received: max abs difference "
                f"{float(np.max(np.abs(np.asarray(a) - np.asarray(b)))):.3g}"
            )


def _as_list(out) -> list:
    if isinstance(out, dict):
        return [out[k] for k in sorted(out)]
    return list(out) if isinstance(out, (list, tuple)) else [out]


def batch_one(model, scopes=()):
    """`model` ready to convert at batch 1: itself when its inputs fix the batch at 1
    already, else a verified fixed-batch copy (cloned inside `scopes`, the context
    managers custom layers need to clone).

    Returns:
        (model, None), or (model itself, the reason) when no copy can be made (a
        subclassed model, a layer that cannot be cloned): it then converts with a
        free batch.
    """
    import contextlib

    try:
        batches = {None if t.shape[0] is None else int(t.shape[0]) for t in model.inputs}
    except (AttributeError, TypeError, ValueError):
        batches = set()
    if batches == {1}:
        return model, None
    try:
        with contextlib.ExitStack() as stack:
            for scope in scopes:
                stack.enter_context(scope)
            return with_batch_size(model, 1), None
    except (ModelError, VerificationError) as e:  # no copy, or one that computes otherwise
        return model, str(e)
