"""Checking a rebuilt model against its source, and finding where they part."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from keras_squeeze.data.inputs import Samples, batched_call
from keras_squeeze.errors import VerificationError
from keras_squeeze.keras_bridge import agreement as agreement_lib
from keras_squeeze.keras_bridge import graph

DEFAULT_SAMPLES = 8
BATCH_SIZE = 16


def _input_structure(model):
    if graph.has_graph(model):  # either flavour: tf_keras tensors carry _keras_history too
        try:
            return model.input
        except (AttributeError, ValueError):
            pass
    return None


def model_outputs(model, samples: Samples) -> list[np.ndarray]:
    """The model's outputs in inference mode, flattened (dict outputs by sorted key)."""
    import tensorflow as tf

    structure = _input_structure(model)

    def run(batch):
        if structure is not None and len(tf.nest.flatten(structure)) == len(batch):
            x = tf.nest.pack_sequence_as(structure, batch)
        else:
            x = batch if len(batch) > 1 else batch[0]
        out = model(x, training=False)
        return [np.asarray(o, dtype=np.float32) for o in tf.nest.flatten(out)]

    return batched_call(run, samples, BATCH_SIZE)


def check(
    reference: list[np.ndarray],
    candidate: list[np.ndarray],
    rtol: float,
    what: str,
    diagnose: Callable[[], str | None] | None = None,
) -> agreement_lib.Agreement:
    """The agreement of `candidate` with `reference`; raises VerificationError if off.

    Args:
        reference, candidate: flat outputs of the source and the rebuilt model.
        rtol: bound on the relative difference (see `keras_bridge.agreement`).
        what: e.g. "the tf_keras rebuild of 'model'", for the message.
        diagnose: called on failure; returns a sentence naming the first
            layer that diverges, or None.
    """
    result = agreement_lib.agreement(reference, candidate, rtol)
    if not result.ok:
        where = diagnose() if diagnose is not None else None
        raise VerificationError(
            f"{what[0].upper()}{what[1:]} does not reproduce the source model"
            f"{'; ' + where if where else ''}. Expected a relative difference <= {rtol:g}. "
            f"Received: {result.summary()}"
        )
    return result


def inference_call(layer, args, kwargs):
    """Calls a layer (or op) eagerly in inference mode: training=False where it takes it."""
    kwargs = {k: v for k, v in kwargs.items() if k != "training"}
    call = getattr(layer, "call", None)
    try:
        takes_training = call is not None and "training" in inspect.signature(call).parameters
    except (TypeError, ValueError):
        takes_training = False
    if takes_training:
        kwargs["training"] = False
    return layer(*args, **kwargs)


def first_divergence(model, keras3_call, rebuilt_call, samples: Samples, rtol: float):
    """The first call of `model`'s graph whose rebuilt outputs differ from Keras 3's.

    Both sides run the same walk eagerly on the first samples, each feeding
    its own values forward, so the first call that differs is where the
    rebuild departs (not a consequence of an earlier difference).

    Args:
        model: the Keras 3 Sequential or functional model.
        keras3_call, rebuilt_call: compute a `graph.Call` with Keras 3 and
            with the rebuilt layer or op.
        samples: inputs; at most 4 are used.

    Returns:
        (label, Agreement) of the first diverging call, or None.
    """
    inputs = [np.asarray(a[:4]) for a in samples.inputs]
    trace_k3: list = []
    trace_new: list = []

    def recorder(fn, trace):
        def on_call(call):
            out = fn(call)
            trace.append((call.label, [np.asarray(v) for v in graph.flatten_outputs(out)]))
            return out

        return on_call

    graph.evaluate(model, inputs, recorder(keras3_call, trace_k3))
    graph.evaluate(model, inputs, recorder(rebuilt_call, trace_new))
    for (label, ref), (_, new) in zip(trace_k3, trace_new, strict=True):
        result = agreement_lib.agreement(ref, new, rtol)
        if not result.ok:
            return label, result
    return None
