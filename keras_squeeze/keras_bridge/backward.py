"""tf_keras model (after pruning or clustering and strip) -> Keras 3 copy of the user's model.

The way back does not translate tf_keras configs: it clones the user's own
Keras 3 architecture (`keras.models.clone_model`, which leaves the user's
model alone) and sets every layer's weights from the tf_keras layer of the
same name, matched weight by weight by name and shape. So the result is
the same flavour and architecture the user passed in, holding the weights
training produced.

Only plain layers can come back: a model still wrapped by tfmot (prune,
cluster or quantize wrappers) must be stripped first
(`tfmot.sparsity.keras.strip_pruning`, `tfmot.clustering.keras.strip_clustering`).
A quantization-aware-trained model has fake-quant state that Keras 3 layers
do not have, so it stays a tf_keras model.
"""

from __future__ import annotations

import time

from keras_squeeze import _compat
from keras_squeeze.core import graph as core_graph
from keras_squeeze.core import models
from keras_squeeze.errors import BridgeError
from keras_squeeze.keras_bridge import graph, ops, verify
from keras_squeeze.keras_bridge.agreement import DEFAULT_RTOL
from keras_squeeze.keras_bridge.forward import check_graph_model, take_samples
from keras_squeeze.keras_bridge.report import TF_KERAS_TO_KERAS3, BridgeReport
from keras_squeeze.keras_bridge.weights import copy_weights

# tfmot wrapper classes: a model holding them has not been stripped.
_TFMOT_WRAPPERS = ("PruneLowMagnitude", "ClusterWeights", "QuantizeWrapper", "QuantizeLayer")


def _check_tf_keras_model(model) -> None:
    models.ensure_model(model, "tf_keras_model")
    if _compat.keras_flavour(model) != _compat.TF_KERAS:
        raise BridgeError(
            f"to_keras3 takes a tf_keras model first. Expected a tf_keras.Model (e.g. the "
            f"stripped output of tfmot). Received: a {_compat.keras_flavour(model) or 'non-Keras'} "
            f"{type(model).__module__}.{type(model).__name__}"
        )
    wrapped = [
        layer.name
        for layer in models.walk_layers(model)
        if type(layer).__name__.startswith(_TFMOT_WRAPPERS)
    ]
    if wrapped:
        raise BridgeError(
            f"The tf_keras model '{model.name}' still holds tfmot wrappers, which Keras 3 layers "
            "cannot hold. Expected a stripped model (tfmot.sparsity.keras.strip_pruning, "
            "tfmot.clustering.keras.strip_clustering); a quantization-aware-trained model stays "
            f"tf_keras. Received: wrapped layers {wrapped[:5]}{' ...' if len(wrapped) > 5 else ''}"
        )


def _clone(like):
    """A new Keras 3 model of `like`'s architecture, with the same layer and input names.

    `keras.models.clone_model` renames a functional model's inputs unless it
    is given input tensors, so it gets new `keras.Input`s named like the old.
    """
    import keras
    import tensorflow as tf

    try:
        if isinstance(like, keras.Sequential):
            return keras.models.clone_model(like)
        inputs = []
        for t in like.inputs:
            layer = core_graph.producer(t)
            config = layer.get_config()
            inputs.append(
                keras.Input(
                    batch_shape=config["batch_shape"],
                    dtype=config.get("dtype"),
                    sparse=bool(config.get("sparse")),
                    name=layer.name,
                )
            )
        structure = tf.nest.pack_sequence_as(graph.io_structure(like, "input"), inputs)
        return keras.models.clone_model(like, input_tensors=structure)
    except (TypeError, ValueError) as e:
        if not getattr(like, "compiled", False):
            raise _not_cloned(like, e) from e
        # clone_model compiles the clone from the model's compile config, which fails on a
        # custom loss or metric that is not registered; the clone needs no compile.
        try:
            return like.__class__.from_config(like.get_config())
        except Exception:
            raise _not_cloned(like, e) from e
    except Exception as e:
        raise _not_cloned(like, e) from e


def _not_cloned(like, e) -> BridgeError:
    return BridgeError(
        f"The Keras 3 model '{like.name}' could not be cloned to receive the weights. Expected "
        "a model keras.models.clone_model can copy (custom layers need get_config). "
        f"Received: {type(e).__name__}: {str(e)[:300]}"
    )


def _weighted_layers(model, flavour_name: str) -> dict:
    out = {}
    for layer in models.walk_layers(model):
        if not layer.weights:
            continue
        if layer.name in out:
            raise BridgeError(
                f"The {flavour_name} model '{model.name}' has two layers named '{layer.name}'. "
                "Expected unique layer names (weights are matched by layer name). "
                f"Received: {type(out[layer.name]).__name__} and {type(layer).__name__}"
            )
        out[layer.name] = layer
    return out


def _diagnose(clone, tf_keras_model, samples, rtol) -> str | None:
    """Names the first layer whose tf_keras twin (same name) computes differently."""
    by_name = {layer.name: layer for layer in models.walk_layers(tf_keras_model)}

    def tf_keras_call(call):
        if ops.is_op(call.operation):
            return ops.translate(call.operation)(*call.args, **call.kwargs)
        twin = by_name.get(call.operation.name)
        if twin is None:
            raise BridgeError(f"no tf_keras layer named '{call.operation.name}'")
        return verify.inference_call(twin, call.args, call.kwargs)

    try:
        found = verify.first_divergence(
            clone,
            lambda call: verify.inference_call(call.operation, call.args, call.kwargs),
            tf_keras_call,
            samples,
            rtol,
        )
    except BridgeError:
        return None
    if found is None:
        return None
    label, result = found
    return f"the first layer that diverges is '{label}' ({result.summary()})"


def to_keras3(
    tf_keras_model,
    like,
    sample_inputs=None,
    *,
    rtol: float = DEFAULT_RTOL,
    num_samples: int = verify.DEFAULT_SAMPLES,
):
    """Puts a tf_keras model's weights into a fresh Keras 3 copy of `like`.

    For models out of pruning or clustering, after tfmot's strip: the result
    is a Keras 3 model of the user's own architecture (a clone of `like`;
    `like` itself is not changed) holding the tf_keras model's weights,
    matched by layer name and weight name. Nested models in `like` are
    matched through their layers' names (the tf_keras rebuild is flat).
    Quantization-aware-trained models stay tf_keras: their fake-quant state
    has no Keras 3 counterpart.

    Numeric check: both models run on `sample_inputs` (default: 8 synthetic
    uniform [0, 1) inputs); for every output, max |tf_keras - keras3| /
    max |tf_keras| must be <= `rtol`.

    Args:
        tf_keras_model: the tf_keras model, e.g. from `to_tf_keras` then tfmot
            and strip.
        like: the user's Keras 3 Sequential or functional model.
        sample_inputs: inputs to compare on (array, tuple, dict, dataset...).
        rtol: bound on the relative output difference (default 1e-5).
        num_samples: how many samples to compare on.

    Returns:
        (Keras 3 model, BridgeReport).

    Raises:
        BridgeError: wrong flavours, tfmot wrappers left in, or the two
            architectures' layers or weights do not match by name and shape.
        VerificationError: the Keras 3 copy's outputs differ.

    Example:
        >>> pruned = tfmot.sparsity.keras.strip_pruning(pruned_tfk_model)
        >>> keras3_model, report = to_keras3(pruned, like=original_keras3_model)
    """
    start = time.perf_counter()
    _check_tf_keras_model(tf_keras_model)
    check_graph_model(like)
    source = _weighted_layers(tf_keras_model, "tf_keras")
    clone = _clone(like)
    target = _weighted_layers(clone, "Keras 3")
    missing = sorted(set(target) - set(source))
    extra = sorted(set(source) - set(target))
    if missing or extra:
        raise BridgeError(
            f"The tf_keras model '{tf_keras_model.name}' does not have the layers of the Keras 3 "
            f"model '{like.name}'. Expected the same layers with weights, by name. Received: "
            f"missing {missing[:8]}, not in the Keras 3 model {extra[:8]}"
        )
    copied = sum(copy_weights(source[name], target[name], "Keras 3") for name in target)
    if not like.trainable:  # setting True would unfreeze the frozen layers too
        clone.trainable = False

    specs = models.input_specs(like)
    samples = take_samples(sample_inputs, specs, num_samples)
    result = verify.check(
        verify.model_outputs(tf_keras_model, samples),
        verify.model_outputs(clone, samples),
        rtol,
        f"the Keras 3 copy of '{like.name}' with the tf_keras weights",
        lambda: _diagnose(clone, tf_keras_model, samples, rtol),
    )
    report = BridgeReport(
        direction=TF_KERAS_TO_KERAS3,
        model=clone.name,
        layers=len(target),
        op_layers={},
        flattened=[],
        weights=copied,
        params=models.count_params(clone),
        agreement=result,
        samples=samples.describe(),
        seconds=time.perf_counter() - start,
    )
    return clone, report
