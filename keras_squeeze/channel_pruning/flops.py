"""Counting multiply-accumulates and parameters, and the cost model selection uses.

What is counted (batch 1, at the model's input size):

- MACs (multiply-accumulates; FLOPs = 2 x MACs) of Conv1D/2D/3D
  (`H_out * W_out * kh * kw * C_in * C_out`), ConvTranspose
  (`H_in * W_in * kh * kw * C_in * C_out`), DepthwiseConv
  (`H_out * W_out * kh * kw * C`), SeparableConv (depthwise + pointwise
  `H_out * W_out * C_in * C_out`) and Dense (`positions * C_in * C_out`, where
  positions is 1 for a 2-D input). Biases, BatchNormalization (folded into the
  convolution by converters), activations, pooling, element-wise merges and
  unknown layers count 0: the counted layers are where the time goes.
- Parameters: every weight scalar, trainable or not (BatchNormalization's
  moving statistics included), as `Model.count_params()` does with
  non-trainable weights.

Example:
    >>> cost = ks.channel_pruning.count_flops(ks.data.example_model())
    >>> cost.macs, cost.params
    (7677184, 581738)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_squeeze.channel_pruning import rules
from keras_squeeze.channel_pruning.dependency import Analysis
from keras_squeeze.channel_pruning.graph import graph_view
from keras_squeeze.channel_pruning.selection import CostModel
from keras_squeeze.errors import ModelError


@dataclasses.dataclass
class LayerCost:
    """One layer's MACs (summed over its calls) and parameters."""

    name: str
    type: str
    macs: int
    params: int


@dataclasses.dataclass
class CostCount:
    """A model's MACs and parameters, in total and per layer."""

    macs: int | None
    params: int
    layers: list[LayerCost]

    @property
    def flops(self) -> int | None:
        """2 x MACs (one multiply and one add each)."""
        return None if self.macs is None else 2 * self.macs

    def by_name(self) -> dict[str, LayerCost]:
        return {row.name: row for row in self.layers}


def _static(shape, layer_name: str) -> None:
    if any(d is None for d in shape[1:]):
        raise ModelError(
            f"Counting FLOPs needs static tensor shapes. Expected a model built on a fixed input "
            f"size (e.g. keras.Input((224, 224, 3))), or metric='params'. Received: layer "
            f"'{layer_name}' sees a tensor of shape {tuple(shape)}"
        )


def _weight_count(layer) -> int:
    return int(sum(int(np.prod(w.shape)) for w in getattr(layer, "weights", [])))


def _channels_last(layer, shape) -> tuple:
    if layer.get_config().get("data_format") == "channels_first" and len(shape) > 2:
        return (shape[0], *shape[2:], shape[1])
    return tuple(shape)


def _in_channels(layer, shape) -> int:
    return _channels_last(layer, shape)[-1]


def _macs_terms(layer, in_shape, out_shape) -> list[rules.Term]:
    """MAC terms of one call (channels-last shapes), [] for layers that count 0."""
    rule = rules.rule_for(layer)
    if rule is None or rule.macs is None:
        return []
    _static(in_shape, layer.name)
    _static(out_shape, layer.name)
    return rule.macs(layer, _channels_last(layer, in_shape), _channels_last(layer, out_shape))


def count_flops(model, static: bool = True) -> CostCount:
    """Multiply-accumulates (batch 1) and parameters of a functional or Sequential model.

    Args:
        model: a functional or Sequential model of either flavour.
        static: raise when a counted layer's shapes are not static; with False,
            `macs` is None for such a model and the parameters are still counted.

    Raises:
        ModelError: a subclassed model, or (static=True) a counted layer sees a
            tensor whose shape is not static.
    """
    view = graph_view(model)
    rows: dict[str, LayerCost] = {}
    unknown = False
    for node in view.nodes:
        if node.is_input:
            continue
        row = rows.get(node.name)
        if row is None:
            row = rows[node.name] = LayerCost(node.name, node.kind, 0, _weight_count(node.layer))
        if node.inputs and node.outputs and hasattr(node.layer, "get_weights"):
            in_shape = view.shapes[node.inputs[0]]
            out_shape = view.shapes[node.outputs[0]]
            try:
                terms = _macs_terms(node.layer, in_shape, out_shape)
            except ModelError:
                if static:
                    raise
                unknown = True
                continue
            if terms:
                row.macs += rules.evaluate(
                    terms,
                    _in_channels(node.layer, in_shape),
                    _channels_last(node.layer, out_shape)[-1],
                )
    layers = list(rows.values())
    macs = None if unknown else sum(r.macs for r in layers)
    return CostCount(macs, sum(r.params for r in layers), layers)


def _form(analysis: Analysis, label, column: np.ndarray, sizes: np.ndarray):
    """(a, a0): a label's channel count as `a . k + a0` over prunable groups."""
    cols = column[analysis.element_group[label]]
    pruned = cols[cols >= 0]
    a = np.bincount(pruned, minlength=len(sizes)) / sizes
    return a, float(np.sum(cols < 0))


def cost_model(analysis: Analysis, groups: list, metric: str) -> CostModel:
    """The CostModel of `metric` ("flops" counts MACs) over the given prunable groups.

    `cost_model(...)(sizes)` equals `count_flops(model).macs` (or `.params`) and,
    for kept counts `k`, the count of the model pruned to `k`.
    """
    sizes = np.array([g.size for g in groups], np.float64)
    column = np.full(len(analysis.groups), -1, np.int64)
    for i, g in enumerate(groups):
        column[g.id] = i
    zero = np.zeros(len(groups))
    rows: list[tuple[float, np.ndarray, float, np.ndarray, float]] = []
    counted: set[str] = set()
    for info in analysis.nodes:
        node = info.node
        if node.is_input or not hasattr(node.layer, "get_weights"):
            continue
        first_call = node.name not in counted
        counted.add(node.name)
        analysable = info.reason is None and info.rule is not None
        if metric == "params":
            if not first_call:
                continue
            if not analysable or info.rule.params is None:
                rows.append((float(_weight_count(node.layer)), zero, 1.0, zero, 1.0))
                continue
            terms = info.rule.params(node.layer)
        else:
            in_shape = analysis.view.shapes[node.inputs[0]]
            out_shape = analysis.view.shapes[node.outputs[0]]
            terms = _macs_terms(node.layer, in_shape, out_shape)
            if not analysable:  # left whole: a constant
                total = rules.evaluate(terms, _in_channels(node.layer, in_shape), out_shape[-1])
                rows.append((float(total), zero, 1.0, zero, 1.0))
                continue
        if not terms:
            continue
        a, a0 = _form(analysis, info.inputs[0], column, sizes)
        b, b0 = _form(analysis, info.outputs[0], column, sizes)
        for coef, uses_in, uses_out in terms:
            rows.append(
                (
                    float(coef),
                    a if uses_in else zero,
                    a0 if uses_in else 1.0,
                    b if uses_out else zero,
                    b0 if uses_out else 1.0,
                )
            )
    rows = rows or [(0.0, zero, 1.0, zero, 1.0)]
    coef, a, a0, b, b0 = zip(*rows, strict=True)
    return CostModel.dense(coef, np.stack(a), a0, np.stack(b), b0)
