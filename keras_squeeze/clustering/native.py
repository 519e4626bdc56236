"""Weight clustering without wrappers, on the model in its own Keras flavour.

For models whose layers are reachable only as tracked sub-layers
(subclassed models, which tfmot cannot wrap), and for functional models with
`Cluster(engine="native")`. The model's own `call()` runs unchanged: each
clustered kernel holds its centroid values, and its latent weights,
centroids and assignments live in non-trainable variables kept here (not in
the model); after every optimizer step the training loop's `after_step`
hook moves them (`clustering.centroids.update`) and writes the clustered
values back. Convolutions cluster per output channel with or without a bias
(the tfmot engine falls back to per tensor without one).
"""

from __future__ import annotations

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.clustering import centroids as cmath
from keras_squeeze.clustering.config import Cluster
from keras_squeeze.layer_plan import Decision, LayerInfo
from keras_squeeze.pruning.native import layers
from keras_squeeze.report.layers import weight_short_name

# The weights the engine clusters, per layer class (tfmot's clustering registry, by class
# name). DepthwiseConv2D is left alone, as the tfmot engine does (large accuracy loss).
CLUSTERED_WEIGHTS = {
    **dict.fromkeys(
        (
            "Conv1D",
            "Conv2D",
            "Conv3D",
            "Conv1DTranspose",
            "Conv2DTranspose",
            "Conv3DTranspose",
            "Dense",
            "EinsumDense",
        ),
        ("kernel",),
    ),
    "SeparableConv1D": ("pointwise_kernel",),
    "SeparableConv2D": ("pointwise_kernel",),
    "Embedding": ("embeddings",),
    **dict.fromkeys(
        ("SimpleRNN", "GRU", "LSTM", "SimpleRNNCell", "GRUCell", "LSTMCell"),
        ("kernel", "recurrent_kernel"),
    ),
}
ENGINE_NOTE = (
    "native engine: centroids and assignments updated after every optimizer step, no wrappers"
)
DEPTHWISE_REASON = "the clustering engines leave depthwise kernels alone (large accuracy loss)"


def clustered_weights(layer) -> list:
    """The variables clustering acts on: get_clusterable_weights(), else the table's."""
    if hasattr(layer, "get_clusterable_weights"):
        return [w for _, w in layer.get_clusterable_weights()]
    names = CLUSTERED_WEIGHTS.get(type(layer).__name__, ())
    return [w for w in layer.weights if weight_short_name(w) in names]


def per_channel(layer, config: Cluster) -> bool:
    """Per output channel: Conv2D kernels with `per_channel` (bias or not)."""
    return config.per_channel and type(layer).__name__ == "Conv2D"


def layer_infos(model, config: Cluster) -> list[LayerInfo]:
    """A LayerInfo per layer, in the order the model holds them (as the tfmot engine's)."""
    infos, first_seen = [], False
    for name, layer in layers(model).items():
        kind = type(layer).__name__
        weights = clustered_weights(layer)
        if kind == "DepthwiseConv2D":
            count = int(sum(int(np.prod(w.shape)) for w in layer.weights if "kernel" in w.name))
            supported, reason = False, DEPTHWISE_REASON
        else:
            count = int(sum(int(np.prod(w.shape)) for w in weights))
            supported = count > 0
            reason = (
                f"{kind} is not supported by the native clustering engine; custom layers opt in "
                "with get_clusterable_weights()"
            )
        first = count > 0 and not first_seen
        first_seen = first_seen or count > 0
        infos.append(LayerInfo(name, kind, count, supported, first, reason))
    return infos


def too_small_rule(model, config: Cluster):
    """Leaves layers with fewer weights (per channel) than clusters alone."""
    by_name = layers(model)

    def rule(info: LayerInfo) -> str | None:
        layer = by_name[info.name]
        if per_channel(layer, config):
            weights = info.weights // max(int(clustered_weights(layer)[0].shape[-1]), 1)
            if weights < config.num_clusters:
                return f"{weights} weights per channel, fewer than {config.num_clusters} clusters"
        elif info.weights < config.num_clusters:
            return f"{info.weights} weights, fewer than {config.num_clusters} clusters"
        return None

    return rule


def _read(variable):
    import tensorflow as tf

    if _compat.keras_flavour(variable) == _compat.KERAS3:
        return tf.convert_to_tensor(variable.value)
    return tf.convert_to_tensor(variable)


class Clusterer:
    """The clustering state of the kernels a plan selected, and its per-step update.

    On creation every selected kernel is clustered (centroids initialized per
    row, each weight assigned to the nearest); `apply` (the training loop's
    `after_step` hook) moves centroids and assignments after every optimizer
    step and writes the clustered values back into the kernel.
    """

    def __init__(self, model, decisions: dict[str, Decision], config: Cluster, preserve: bool):
        import tensorflow as tf

        self.entries = []
        for name, layer in layers(model).items():
            decision = decisions.get(name)
            if decision is None or decision.setting is None:
                continue
            k = int(decision.setting)
            for variable in clustered_weights(layer):
                per = per_channel(layer, config) and len(variable.shape) >= 2
                shape = tuple(int(d) for d in variable.shape)
                rows = cmath.to_rows(np.asarray(variable), per).numpy().astype(np.float32)
                keep = (rows != 0).astype(np.float32) if preserve else np.ones_like(rows)
                start = np.stack(
                    [
                        cmath.initial(row[on > 0] if on.any() else np.zeros(1), k, config.init, i)
                        for i, (row, on) in enumerate(zip(rows, keep, strict=True))
                    ]
                ).astype(np.float32)
                idx = cmath.assign(rows, start)
                clustered = cmath.gather(start, idx) * keep
                variable.assign(cmath.from_rows(clustered, shape, per).numpy().astype(np.float32))
                self.entries.append(
                    {
                        "variable": variable,
                        "shape": shape,
                        "per_channel": per,
                        "latent": tf.Variable(rows, trainable=False, name="latent"),
                        "centroids": tf.Variable(start, trainable=False, name="centroids"),
                        "idx": tf.Variable(idx, trainable=False, name="assignments"),
                        "keep": tf.constant(keep),
                    }
                )

    @property
    def variables(self) -> list:
        """Latent weights, centroids, assignments: training state outside the model."""
        return [e[key] for e in self.entries for key in ("latent", "centroids", "idx")]

    def apply(self) -> None:
        """Latent weights, centroids and assignments after an optimizer step; the kernel
        back to its centroid values (TF ops)."""
        for e in self.entries:
            moved = cmath.to_rows(_read(e["variable"]), e["per_channel"])
            latent, centroids, idx, rows = cmath.update(
                e["latent"], e["centroids"], e["idx"], moved, e["keep"]
            )
            e["latent"].assign(latent)
            e["centroids"].assign(centroids)
            e["idx"].assign(idx)
            e["variable"].assign(cmath.from_rows(rows, e["shape"], e["per_channel"]))
