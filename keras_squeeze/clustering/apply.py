"""Applying tfmot's weight clustering layer by layer (tf_keras models only).

tfmot's `cluster_weights` on a whole model changes the model it is given and
fails on layers it does not know; here the verified working copy is cloned
with a clone function that wraps only the layers the plan selected.
"""

from __future__ import annotations

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.clustering.config import INITS, Cluster
from keras_squeeze.core import models
from keras_squeeze.errors import RecipeError
from keras_squeeze.layer_plan import Decision, LayerInfo
from keras_squeeze.report.layers import weight_short_name

_CLUSTERED = {
    "SeparableConv1D": ("pointwise_kernel",),
    "SeparableConv2D": ("pointwise_kernel",),
    "Embedding": ("embeddings",),
    "DepthwiseConv2D": (),  # the engine leaves depthwise kernels alone (accuracy loss)
}


def _api():
    return _compat.import_tfmot().clustering.keras


def _registry():
    # No public "is this layer clusterable" check exists; supports() only reads.
    from tensorflow_model_optimization.python.core.clustering.keras import clustering_registry

    return clustering_registry.ClusteringRegistry


def clusterable_weights(layer) -> list:
    if hasattr(layer, "get_clusterable_weights"):
        return [w for _, w in layer.get_clusterable_weights()]
    names = _CLUSTERED.get(type(layer).__name__, ("kernel", "recurrent_kernel"))
    return [w for w in layer.weights if weight_short_name(w) in names]


def _per_channel(layer, config: Cluster) -> bool:
    """Per-channel clustering: Conv2D only, and only with a bias.

    Measured with tfmot 0.8.1: with cluster_per_channel=True a Conv2D without a
    bias (the usual conv -> batch norm) comes out of strip_clustering not
    clustered at all, its zeros lost; with a bias it works. Bias-free
    convolutions are clustered per tensor instead.
    """
    return config.per_channel and type(layer).__name__ == "Conv2D" and bool(layer.use_bias)


def per_tensor_fallbacks(model, decisions: dict[str, Decision], config: Cluster) -> list[str]:
    """Selected Conv2D layers clustered per tensor although per_channel was asked."""
    if not config.per_channel:
        return []
    return [
        layer.name
        for layer in model.layers
        if type(layer).__name__ == "Conv2D"
        and decisions.get(layer.name) is not None
        and decisions[layer.name].setting is not None
        and not layer.use_bias
    ]


def layer_infos(model, config: Cluster) -> list[LayerInfo]:
    infos, first_seen = [], False
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        weights = clusterable_weights(layer)
        count = int(sum(int(np.prod(w.shape)) for w in weights))
        supported = hasattr(layer, "get_clusterable_weights") or (
            _registry().supports(layer) and count > 0
        )
        if type(layer).__name__ == "DepthwiseConv2D":
            reason = "the clustering engine leaves depthwise kernels alone (large accuracy loss)"
            count = int(sum(int(np.prod(w.shape)) for w in layer.weights if "kernel" in w.name))
        else:
            reason = (
                f"{type(layer).__name__} is not supported by the clustering engine (tfmot); "
                "custom layers opt in with get_clusterable_weights()"
            )
        first = count > 0 and not first_seen
        first_seen = first_seen or count > 0
        infos.append(LayerInfo(layer.name, type(layer).__name__, count, supported, first, reason))
    return infos


def too_small_rule(model, config: Cluster):
    """The rule leaving layers with fewer weights (per channel) than clusters alone."""
    layers = {layer.name: layer for layer in model.layers}

    def rule(info: LayerInfo) -> str | None:
        layer = layers[info.name]
        weights = info.weights
        if _per_channel(layer, config):
            channels = int(layer.kernel.shape[-1])
            weights //= max(channels, 1)
            if weights < config.num_clusters:
                return f"{weights} weights per channel, fewer than {config.num_clusters} clusters"
        elif weights < config.num_clusters:
            return f"{weights} weights, fewer than {config.num_clusters} clusters"
        return None

    return rule


def wrap(model, decisions: dict[str, Decision], config: Cluster, preserve_sparsity: bool):
    """Clones `model` with ClusterWeights around the layers the plan selected."""
    cl = _api()
    k = _compat.keras_module(_compat.TF_KERAS)
    init = getattr(cl.CentroidInitialization, INITS[config.init])

    def clone(layer):
        decision = decisions.get(layer.name)
        if decision is None or decision.setting is None:
            return layer
        try:
            return cl.cluster_weights(
                layer,
                number_of_clusters=int(decision.setting),
                cluster_centroids_init=init,
                preserve_sparsity=preserve_sparsity,
                cluster_per_channel=_per_channel(layer, config),
            )
        except (ValueError, TypeError) as e:
            raise RecipeError(
                f"The clustering engine refused layer '{layer.name}'. Expected a clusterable "
                f"layer. Received: {e}"
            ) from e

    # The engine's wrappers re-point the weights of the layer they wrap (an RNN cell's
    # kernel becomes a tensor of the wrapper): wrap a copy, so `model` (the user's, or
    # an earlier stage's result, still converted for its own row) stays whole.
    source = k.models.clone_model(model)
    source.set_weights(model.get_weights())
    return k.models.clone_model(source, clone_function=clone)


def copy(model):
    """A tf_keras copy of `model` with its own layers and the same weights."""
    k = _compat.keras_module(_compat.TF_KERAS)
    clone = k.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def strip(model):
    """The model without clustering wrappers (kernels hold their centroid values).

    tfmot's strip_clustering gives layers with sub-layers (MultiHeadAttention)
    their weights in another order than a freshly built layer (kernels first,
    then biases), which breaks every later clone-and-set_weights (QAT's
    quantize_apply, the copy back to Keras 3): the result is rebuilt with the
    usual order, each weight placed by its name.
    """
    return models.in_built_order(_api().strip_clustering(model))


def unique_values(values: np.ndarray, per_channel_axis: int | None) -> int:
    """Distinct values of a kernel, or the most in any channel along `per_channel_axis`."""
    values = np.asarray(values)
    if per_channel_axis is None:
        return int(np.unique(values).size)
    moved = np.moveaxis(values, per_channel_axis, 0).reshape(values.shape[per_channel_axis], -1)
    return int(max(np.unique(row).size for row in moved))
