"""Merging what can be merged in the Keras model itself: BatchNormalization and linear pairs.

- BatchNormalization folded into the layer before it (Conv1D/2D/3D,
  DepthwiseConv1D/2D, SeparableConv1D/2D, Conv1D/2D/3DTranspose, Dense) when
  that layer has no activation, its output is read by the normalization
  alone, both are called once, the normalization works on the channel (last)
  axis and its output is not a model output. In inference,
  `y = gamma * (z - mean) / sqrt(var + eps) + beta` with `z = W x + b`, so
  with `s = gamma / sqrt(var + eps)` per output channel the folded layer has
  kernel `W * s` and bias `(b - mean) * s + beta`.
- Two linear layers merged: Dense (no activation) -> Dense becomes one Dense
  with kernel `W1 @ W2` and bias `b1 @ W2 + b2`; a convolution (no activation)
  -> 1x1 convolution (stride 1, no dilation) becomes one convolution with the
  first's kernel size and the second's filters, kernel `W1 . W2` over the
  channel axis. Merged only where that needs fewer multiply-accumulates per
  position (`in * out < in * mid + mid * out`: a bottleneck stays two layers).

The maths are plain functions of arrays (`fold_batchnorm_weights`,
`merge_dense_weights`, `merge_conv_weights`); `plan_folds` and `plan_merges`
find the pairs on a graph and return a `surgery.Plan`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_squeeze.channel_pruning.graph import GraphView
from keras_squeeze.depth_pruning.surgery import Plan, Replacement
from keras_squeeze.depth_pruning.units import graph_of

FOLDABLE = frozenset(
    [
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "SeparableConv1D",
        "SeparableConv2D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "Dense",
    ]
)
_CONVS = frozenset(("Conv1D", "Conv2D", "Conv3D"))


@dataclasses.dataclass(frozen=True)
class Merge:
    """One merge done: `into` took the work of `removed` ("bn": folded; "linear": merged)."""

    kind: str
    removed: str
    into: str


def _linear(config: dict) -> bool:
    return config.get("activation", "linear") in ("linear", None)


def _channel_axis_last(bn_config: dict, rank: int) -> bool:
    axis = bn_config.get("axis", -1)
    axis = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    return len(axis) == 1 and axis[0] in (-1, rank - 1)


def _bn_weight_count(config: dict) -> int:
    return int(config.get("scale", True)) + int(config.get("center", True)) + 2


def _bn_affine(bn_layer) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) per channel of a BatchNormalization in inference."""
    config = bn_layer.get_config()
    weights = [np.asarray(w, np.float64) for w in bn_layer.get_weights()]
    gamma = weights.pop(0) if config.get("scale", True) else None
    beta = weights.pop(0) if config.get("center", True) else None
    mean, var = weights
    scale = 1.0 / np.sqrt(var + float(config.get("epsilon", 1e-3)))
    if gamma is not None:
        scale = gamma * scale
    shift = -mean * scale
    if beta is not None:
        shift = shift + beta
    return scale, shift


def fold_batchnorm_weights(
    kind: str, weights: list[np.ndarray], use_bias: bool, scale: np.ndarray, shift: np.ndarray
) -> list[np.ndarray]:
    """The weights of layer `kind` (class name) with `y * scale + shift` folded in, with a bias.

    Args:
        kind: the layer's class name ("Conv2D", "DepthwiseConv2D", ...).
        weights: its weights as `get_weights()` gives them.
        use_bias: whether they end with a bias.
        scale / shift: per output channel.

    Returns:
        The new weights, ending with a bias.
    """
    weights = [np.asarray(w, np.float64) for w in weights]
    bias = weights.pop() if use_bias else None
    if kind.startswith("Depthwise"):
        kernel = weights[0]
        c, m = kernel.shape[-2], kernel.shape[-1]
        weights[0] = kernel * scale.reshape(c, m)
    elif kind.startswith("Separable"):
        weights[1] = weights[1] * scale
    elif kind.endswith("Transpose"):
        weights[0] = weights[0] * scale[:, None]
    else:
        weights[0] = weights[0] * scale
    if bias is None:
        bias = np.zeros_like(scale)
    return [*weights, bias * scale + shift]


def merge_dense_weights(
    first: list[np.ndarray], second: list[np.ndarray], bias1: bool, bias2: bool
):
    """[kernel, bias] of Dense(W2) after Dense(W1), no activation between."""
    w1, w2 = np.asarray(first[0], np.float64), np.asarray(second[0], np.float64)
    b1 = np.asarray(first[1], np.float64) if bias1 else np.zeros(w1.shape[-1])
    b2 = np.asarray(second[1], np.float64) if bias2 else np.zeros(w2.shape[-1])
    return [w1 @ w2, b1 @ w2 + b2]


def merge_conv_weights(first: list[np.ndarray], second: list[np.ndarray], bias1: bool, bias2: bool):
    """[kernel, bias] of a convolution W1 followed by a 1x1 convolution W2."""
    w1 = np.asarray(first[0], np.float64)
    w2 = np.asarray(second[0], np.float64).reshape(second[0].shape[-2], second[0].shape[-1])
    b1 = np.asarray(first[1], np.float64) if bias1 else np.zeros(w1.shape[-1])
    b2 = np.asarray(second[1], np.float64) if bias2 else np.zeros(w2.shape[-1])
    return [np.tensordot(w1, w2, axes=([w1.ndim - 1], [0])), b1 @ w2 + b2]


def _cast(weights, like):
    return [np.asarray(w, dtype=np.asarray(like[0]).dtype) for w in weights]


def _only_reader(g, node_index: int):
    """The call reading `node_index`'s single output alone, or None."""
    node = g.nodes[node_index]
    if len(node.outputs) != 1 or node.outputs[0] in g.outputs:
        return None
    readers = g.readers(node.outputs[0])
    return readers[0] if len(readers) == 1 else None


def _once(view: GraphView, node) -> bool:
    return view.calls.get(node.name, 1) == 1


def _expected_weights(kind: str, use_bias: bool) -> int:
    return (2 if kind.startswith("Separable") else 1) + int(use_bias)


def plan_folds(view: GraphView) -> tuple[Plan, list[Merge]]:
    """The plan folding every foldable BatchNormalization into the layer before it."""
    g = graph_of(view)
    plan, done = Plan(), []
    for i, node in enumerate(g.nodes):
        if node.kind not in FOLDABLE or not _once(view, node) or len(node.inputs) != 1:
            continue
        config = node.layer.get_config()
        if not _linear(config) or config.get("data_format", "channels_last") != "channels_last":
            continue
        use_bias = bool(config.get("use_bias", True))
        weights = node.layer.get_weights()
        if len(weights) != _expected_weights(node.kind, use_bias):
            continue  # LoRA, quantized or otherwise modified
        j = _only_reader(g, i)
        if j is None:
            continue
        bn = g.nodes[j]
        rank = len(view.shapes[node.outputs[0]])
        if (
            bn.kind != "BatchNormalization"
            or not _once(view, bn)
            or bn.outputs[0] in g.outputs
            or not _channel_axis_last(bn.layer.get_config(), rank)
            or len(bn.layer.get_weights()) != _bn_weight_count(bn.layer.get_config())
        ):
            continue  # renormalization and other variants keep their own layer
        scale, shift = _bn_affine(bn.layer)
        new_weights = fold_batchnorm_weights(node.kind, weights, use_bias, scale, shift)
        plan.replace[node.name] = Replacement(
            type(node.layer), {**config, "use_bias": True}, _cast(new_weights, weights)
        )
        plan.bypass([j], node.outputs[0], bn.outputs[0])
        done.append(Merge("bn", bn.name, node.name))
    return plan, done


def _kernel_window(config: dict) -> int:
    size = config.get("kernel_size", 1)
    size = size if isinstance(size, (list, tuple)) else [size]
    return int(np.prod(size))


def _pointwise(config: dict) -> bool:
    def ones(value):
        value = value if isinstance(value, (list, tuple)) else [value]
        return all(v == 1 for v in value)

    return (
        ones(config.get("kernel_size", 1))
        and ones(config.get("strides", 1))
        and ones(config.get("dilation_rate", 1))
        and config.get("groups", 1) == 1
    )


def plan_merges(view: GraphView) -> tuple[Plan, list[Merge]]:
    """The plan merging consecutive linear layers where that costs fewer MACs (one pass;
    no layer takes part in two merges)."""
    g = graph_of(view)
    plan, done, used = Plan(), [], set()
    for i, node in enumerate(g.nodes):
        if i in used or node.kind not in ("Dense", *_CONVS) or not _once(view, node):
            continue
        config = node.layer.get_config()
        if not _linear(config) or config.get("data_format", "channels_last") != "channels_last":
            continue
        if node.kind in _CONVS and config.get("groups", 1) != 1:
            continue
        j = _only_reader(g, i)
        if j is None or j in used:
            continue
        nxt = g.nodes[j]
        if nxt.kind != node.kind or not _once(view, nxt):
            continue
        config2 = nxt.layer.get_config()
        if nxt.kind != "Dense" and (
            not _pointwise(config2)
            or config2.get("data_format", "channels_last") != "channels_last"
        ):
            continue
        bias1, bias2 = bool(config.get("use_bias", True)), bool(config2.get("use_bias", True))
        w1, w2 = node.layer.get_weights(), nxt.layer.get_weights()
        if len(w1) != 1 + bias1 or len(w2) != 1 + bias2:
            continue
        window = _kernel_window(config) if node.kind != "Dense" else 1
        c_in, mid, c_out = w1[0].shape[-2], w1[0].shape[-1], w2[0].shape[-1]
        if window * c_in * c_out >= window * c_in * mid + mid * c_out:
            continue
        if node.kind == "Dense":
            weights = merge_dense_weights(w1, w2, bias1, bias2)
            new_config = {**config2, "use_bias": True}
        else:
            weights = merge_conv_weights(w1, w2, bias1, bias2)
            new_config = {
                **config,
                "name": config2["name"],
                "filters": int(c_out),
                "activation": config2.get("activation", "linear"),
                "use_bias": True,
            }
        plan.replace[nxt.name] = Replacement(type(nxt.layer), new_config, _cast(weights, w1))
        plan.bypass([i], node.inputs[0], node.outputs[0])
        used.update((i, j))
        done.append(Merge("linear", node.name, nxt.name))
    return plan, done
