"""Builds the smaller model: new layers from edited configs, kept weight slices copied in.

The model is rebuilt with the flavour's own `clone_model` (Keras 3 or tf_keras)
and a clone function that creates each layer from its config, with `filters`
/ `units` (or a channel-keeping Reshape's `target_shape`) set to the kept
count. Weights are then copied layer by layer: Conv kernels keep the kept
input and output channels, biases and BatchNormalization gamma / beta /
moving mean / moving variance the kept channels, Depthwise kernels the kept
channels, Dense kernels the kept input rows (after a Flatten, every H*W row
of a kept channel, in NHWC order) and output columns. The user's model is
only read.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.channel_pruning.dependency import Analysis
from keras_squeeze.errors import ModelError


@dataclasses.dataclass
class LayerPlan:
    """What changes in one layer: kept input and output channel positions."""

    in_keep: np.ndarray | None
    out_keep: np.ndarray | None
    in_size: int | None
    out_size: int | None

    @property
    def changed(self) -> bool:
        return (self.in_keep is not None and len(self.in_keep) != self.in_size) or (
            self.out_keep is not None and len(self.out_keep) != self.out_size
        )


def plan_layers(analysis: Analysis, keep: np.ndarray) -> dict[str, LayerPlan]:
    """Per analysable layer, the kept channel positions of its input and output.

    Args:
        analysis: the dependency analysis.
        keep: boolean mask over elements (see `Analysis.kept_elements`).
    """
    plans = {}
    for info in analysis.nodes:
        if info.reason is not None or info.rule is None or info.rule.role == "input":
            continue
        label_in = info.inputs[0] if len(info.inputs) == 1 else None
        label_out = info.outputs[0] if info.outputs else None
        plans[info.node.name] = LayerPlan(
            None if label_in is None else np.flatnonzero(keep[label_in]),
            None if label_out is None else np.flatnonzero(keep[label_out]),
            None if label_in is None else len(label_in),
            None if label_out is None else len(label_out),
        )
    return plans


def _new_config(layer, rule, plan: LayerPlan | None) -> dict:
    config = layer.get_config()
    if plan is None or plan.out_keep is None or len(plan.out_keep) == plan.out_size:
        return config
    if rule.resize is not None:
        return rule.resize(config, len(plan.out_keep))
    if rule.role == "reshape":
        target = list(config["target_shape"])
        target[-1] = len(plan.out_keep)
        return {**config, "target_shape": tuple(target)}
    return config


def rebuild(model, analysis: Analysis, plans: dict[str, LayerPlan]):
    """A new model of the same flavour with the planned channels removed.

    Raises:
        ModelError: the flavour's clone_model cannot rebuild a layer (a custom
            layer without get_config / from_config).
    """
    k = _compat.keras_module(_compat.keras_flavour(model))
    rules_by_name = {info.node.name: info.rule for info in analysis.nodes}
    created: list[tuple[object, object]] = []

    def clone_function(layer):
        if not hasattr(layer, "get_weights"):  # a stateless Keras 3 operation
            return layer
        plan = plans.get(layer.name)
        config = _new_config(layer, rules_by_name.get(layer.name), plan)
        new = layer.__class__.from_config(config)
        created.append((layer, new))
        return new

    try:
        pruned = k.models.clone_model(model, clone_function=clone_function)
    except Exception as e:
        raise ModelError(
            "The model could not be rebuilt with fewer channels. Expected layers that "
            "round-trip through get_config / from_config (register custom layers). "
            f"Received: {type(e).__name__}: {e}"
        ) from e
    for old, new in created:
        weights = old.get_weights()
        plan = plans.get(old.name)
        rule = rules_by_name.get(old.name)
        if plan is not None and plan.changed and rule is not None and rule.slice is not None:
            everything = np.arange(plan.in_size or 0)
            weights = rule.slice(
                weights,
                plan.in_keep if plan.in_keep is not None else everything,
                plan.out_keep,
            )
        new.set_weights(weights)
    return pruned
