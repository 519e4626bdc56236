"""Keras 3 Sequential / functional model -> equivalent tf_keras functional model.

The rebuild walks the Keras 3 layer graph (`keras_bridge.graph`), not the
serialized functional config (whose format differs between the flavours):
each layer becomes the tf_keras layer of the same name and class, built from
its translated config (`keras_bridge.layers`), called on the rebuilt tensors
in the same way (a layer called several times stays one shared layer); each
Keras 3 op becomes TensorFlow op layers (`keras_bridge.ops`). Then the
weights are copied by name and the two models are run on the same inputs.

Nested models are inlined (flattened): their layers become layers of the
rebuilt model, under their own names. tfmot's prune_low_magnitude,
cluster_weights and quantize_apply walk one level of layers and do not reach
into a nested model, and keras_squeeze's per-layer settings and reports
already name the leaf layers (`core.models.walk_layers`).
"""

from __future__ import annotations

import time

from keras_squeeze import _compat
from keras_squeeze.core import graph as core_graph
from keras_squeeze.core import models
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.errors import BridgeError
from keras_squeeze.keras_bridge import graph, layers, ops, verify
from keras_squeeze.keras_bridge.agreement import DEFAULT_RTOL
from keras_squeeze.keras_bridge.report import KERAS3_TO_TF_KERAS, BridgeReport
from keras_squeeze.keras_bridge.weights import copy_weights

POST_TRAINING_RECIPES = "'dynamic', 'float16', 'int8', 'int16x8'"


def check_graph_model(model, flavour: str = _compat.KERAS3) -> None:
    """Raises BridgeError unless `model` is a Sequential or functional model of `flavour`."""
    models.ensure_model(model)
    found = _compat.keras_flavour(model)
    if found != flavour:
        if found == _compat.TF_KERAS:
            raise BridgeError(
                f"The model '{model.name}' is already a tf_keras model. Expected a Keras 3 model "
                "(keras.Model); a tf_keras model goes to tfmot as it is. "
                f"Received: {type(model).__module__}.{type(model).__name__}"
            )
        raise BridgeError(
            f"The model '{model.name}' is a Keras 3 model. Expected a {flavour} model. "
            f"Received: {type(model).__module__}.{type(model).__name__}"
        )
    if graph.has_graph(model):
        return
    import keras

    if isinstance(model, keras.Sequential):
        raise BridgeError(
            f"The Sequential model '{model.name}' has no defined inputs. Expected a model built "
            "on an input shape: start it with keras.Input(shape=...) or call model.build(...). "
            "Received: an unbuilt Sequential"
        )
    raise BridgeError(
        f"The model '{model.name}' is a subclassed model: it has no layer graph to rebuild in "
        "tf_keras, which training-time recipes (pruning, clustering, quantization-aware "
        "training) need. Expected a functional or Sequential model (built on keras.Input). "
        f"Received: a {type(model).__name__} subclass of keras.Model. The post-training recipes "
        f"({POST_TRAINING_RECIPES}) work on subclassed models."
    )


def take_samples(sample_inputs, specs, num_samples: int):
    if sample_inputs is None:
        return data_inputs.synthetic_samples(specs, num_samples)
    return data_inputs.take_samples(sample_inputs, specs, num_samples, "sample_inputs")


class _Rebuild:
    """The state of one rebuild: Keras 3 layer -> tf_keras layer, ops, notes."""

    def __init__(self):
        self.pairs: dict[int, tuple] = {}
        self.names: dict[str, str] = {}
        self.op_layers: dict[str, str] = {}
        self.flattened: list[str] = []
        self.notes: list[str] = []

    def _claim_name(self, name: str, label: str) -> None:
        if self.names.setdefault(name, label) != label:
            raise BridgeError(
                f"Two layers are named '{name}' once nested models are inlined. Expected unique "
                "layer names (tf_keras requires them; settings and reports map by name). "
                f"Received: '{self.names[name]}' and '{label}' (rename one)"
            )

    def tf_keras_layer(self, call: graph.Call):
        layer = call.operation
        pair = self.pairs.get(id(layer))
        if pair is None:
            self._claim_name(layer.name, call.label)
            pair = (layer, layers.build(layer, self.notes))
            self.pairs[id(layer)] = pair
        return pair[1]

    def call(self, call: graph.Call, eager: bool = False):
        """Computes a call with the rebuilt layer or op (symbolic, or eager in inference)."""
        for depth in range(2, len(call.path) + 1):
            label = "/".join(call.path[1:depth])
            if label not in self.flattened:
                self.flattened.append(label)
        if ops.is_op(call.operation):
            self.op_layers.setdefault(call.label, ops.op_key(call.operation))
            return ops.translate(call.operation)(*call.args, **call.kwargs)
        # Keras 3 records the `training` value seen while the graph was built
        # and overrides it with the model's at run time; in tf_keras a recorded
        # value would stay fixed, so the rebuilt layer follows the model's.
        layer = self.tf_keras_layer(call)
        if eager:
            return verify.inference_call(layer, call.args, call.kwargs)
        kwargs = {k: v for k, v in call.kwargs.items() if k != "training"}
        return layer(*call.args, **kwargs)

    def inputs(self, model) -> list:
        import tf_keras

        tensors = []
        for t in model.inputs:
            layer = core_graph.producer(t)
            config = layer.get_config()
            if config.get("optional"):
                raise BridgeError(
                    f"The input '{layer.name}' is optional. Expected required inputs (tf_keras has "
                    "no optional inputs). Received: optional=True"
                )
            self._claim_name(layer.name, layer.name)
            tensors.append(
                tf_keras.Input(
                    batch_shape=tuple(config["batch_shape"]),
                    dtype=config.get("dtype"),
                    sparse=bool(config.get("sparse")),
                    ragged=bool(config.get("ragged")),
                    name=layer.name,
                )
            )
        return tensors

    def build(self, model):
        import tensorflow as tf
        import tf_keras

        inputs = self.inputs(model)
        outputs = graph.evaluate(model, inputs, self.call)
        try:
            return tf_keras.Model(
                inputs=tf.nest.pack_sequence_as(graph.io_structure(model, "input"), inputs),
                outputs=tf.nest.pack_sequence_as(graph.io_structure(model, "output"), outputs),
                name=model.name,
            )
        except Exception as e:
            raise BridgeError(
                f"tf_keras could not assemble the rebuilt model '{model.name}'. Expected a valid "
                f"functional graph. Received: {type(e).__name__}: {str(e)[:300]}"
            ) from e

    def copy_weights(self) -> int:
        return sum(copy_weights(k3, tfk, "tf_keras") for k3, tfk in self.pairs.values())


def to_tf_keras(
    model,
    sample_inputs=None,
    *,
    rtol: float = DEFAULT_RTOL,
    num_samples: int = verify.DEFAULT_SAMPLES,
):
    """Rebuilds a Keras 3 Sequential or functional model as an equivalent tf_keras model.

    Every layer keeps its name and weights; nested models are inlined (their
    layers become top-level layers under their own names, which is what tfmot
    can wrap); Keras 3 ops (`x + 3.0`, `keras.ops.mean`, `x[:, 0]`) become
    TensorFlow op layers. The user's model is not changed.

    Numeric check: both models run on `sample_inputs` (default: 8 synthetic
    uniform [0, 1) inputs) in inference mode; for every output,
    max |keras3 - tf_keras| / max |keras3| must be <= `rtol`.

    Args:
        model: a Keras 3 `keras.Model` (Sequential or functional).
        sample_inputs: inputs to compare on: an array, (x, y) tuple, list or
            dict per input, tf.data.Dataset or generator (first
            `num_samples` samples used).
        rtol: bound on the relative output difference (default 1e-5).
        num_samples: how many samples to compare on.

    Returns:
        (tf_keras model, BridgeReport).

    Raises:
        BridgeError: not a Keras 3 graph model (a tf_keras model, a subclassed
            model, an unbuilt Sequential), or a layer that cannot be rebuilt:
            the message names the layer and what to do.
        VerificationError: the rebuilt model's outputs differ; the message
            names the first layer that diverges.

    Example:
        >>> from keras_squeeze.keras_bridge import to_tf_keras
        >>> tfk_model, report = to_tf_keras(keras_model, x_train[:8])
        >>> report.agreement.ok
        True
    """
    start = time.perf_counter()
    check_graph_model(model)
    specs = models.input_specs(model)
    samples = take_samples(sample_inputs, specs, num_samples)
    rebuild = _Rebuild()
    tfk_model = rebuild.build(model)
    copied = rebuild.copy_weights()
    if not model.trainable:  # setting True would unfreeze the frozen layers too
        tfk_model.trainable = False

    def diagnose():
        found = verify.first_divergence(
            model,
            lambda call: verify.inference_call(call.operation, call.args, call.kwargs),
            lambda call: rebuild.call(call, eager=True),
            samples,
            rtol,
        )
        if found is None:
            return None
        label, result = found
        return f"the first layer that diverges is '{label}' ({result.summary()})"

    result = verify.check(
        verify.model_outputs(model, samples),
        verify.model_outputs(tfk_model, samples),
        rtol,
        f"the tf_keras rebuild of '{model.name}'",
        diagnose,
    )
    report = BridgeReport(
        direction=KERAS3_TO_TF_KERAS,
        model=model.name,
        layers=len(rebuild.pairs),
        op_layers=dict(rebuild.op_layers),
        flattened=list(rebuild.flattened),
        weights=copied,
        params=models.count_params(tfk_model),
        agreement=result,
        samples=samples.describe(),
        seconds=time.perf_counter() - start,
        notes=list(rebuild.notes),
    )
    return tfk_model, report
