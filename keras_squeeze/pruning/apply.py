"""Applying tfmot's magnitude pruning layer by layer (tf_keras models only).

tfmot's whole-model `prune_low_magnitude` fails on the first layer it does not
support, and leaves unsupported layers shared with the model it was given.
Here the working copy is cloned with a clone function that wraps only the
layers the plan selected; every other layer is left as it is, with a reason.
"""

from __future__ import annotations

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.core import models
from keras_squeeze.errors import RecipeError
from keras_squeeze.layer_plan import Decision, LayerInfo
from keras_squeeze.pruning import masks
from keras_squeeze.pruning.config import Prune
from keras_squeeze.pruning.schedule import CONSTANT, StepSchedule
from keras_squeeze.report.layers import KERNEL_NAMES, weight_short_name

M_BY_N_TYPES = ("Conv2D", "Dense")
XNNPACK_REASON = "XNNPACK sparse inference runs only 1x1 convolutions sparse"


def _sparsity_api():
    return _compat.import_tfmot().sparsity.keras


def _registry():
    # tfmot has no public "is this layer prunable" check; supports() only reads.
    from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

    return prune_registry.PruneRegistry


# What tfmot prunes where it is not simply the kernels (prune_registry's table).
_PRUNED_WEIGHTS = {
    "SeparableConv1D": ("pointwise_kernel",),
    "SeparableConv2D": ("pointwise_kernel",),
}
_KERNELS = (*KERNEL_NAMES, "recurrent_kernel")


def _pruned_weights(layer) -> list:
    """The weights pruning acts on (kernels, or get_prunable_weights())."""
    if hasattr(layer, "get_prunable_weights"):
        return list(layer.get_prunable_weights())
    names = _PRUNED_WEIGHTS.get(type(layer).__name__, _KERNELS)
    return [w for w in layer.weights if weight_short_name(w) in names]


def prunable_weight_count(layer) -> int:
    """Scalars in the weights pruning acts on (kernels, or get_prunable_weights())."""
    return int(sum(int(np.prod(w.shape)) for w in _pruned_weights(layer)))


def layer_block(weights, block: tuple[int, int]) -> tuple[int, int]:
    """The block a layer whose pruned variables are `weights` is pruned in (`masks.block_for`)."""
    return masks.block_for([tuple(w.shape) for w in weights], block)


def block_notes(chosen: dict[str, list], block: tuple[int, int]) -> list[str]:
    """A note for each layer ({name: pruned variables}) pruned per weight, not in `block`s,
    for a rank-2 kernel too small for them (other kernels are always, as documented)."""
    notes = []
    for name, weights in chosen.items():
        small = [
            tuple(w.shape)
            for w in weights
            if len(w.shape) == 2 and masks.block_for([tuple(w.shape)], block) != tuple(block)
        ]
        if small:
            shapes = ", ".join(f"{r}x{c}" for r, c in small)
            notes.append(
                f"layer '{name}' pruned per weight, not in {block[0]}x{block[1]} blocks: its "
                f"{shapes} kernel holds a single block along an axis (blocks need two or more "
                "along each)"
            )
    return notes


def chosen_weights(model, chosen) -> dict[str, list]:
    """{name: pruned variables} of the chosen top-level layers."""
    return {layer.name: _pruned_weights(layer) for layer in model.layers if layer.name in chosen}


def _supported(layer, config: Prune, policy) -> tuple[bool, str]:
    custom = hasattr(layer, "get_prunable_weights")
    if not custom and not _registry().supports(layer):
        return False, (
            f"{type(layer).__name__} is not supported by the pruning engine (tfmot); custom "
            "layers opt in with get_prunable_weights()"
        )
    if not custom and _registry()._LAYERS_WEIGHTS_MAP.get(type(layer), None) == []:
        # e.g. DepthwiseConv2D: the engine wraps it but masks none of its weights.
        return False, (
            f"the pruning engine (tfmot) prunes no weights of {type(layer).__name__} "
            "(it wraps the layer but masks nothing)"
        )
    if policy is not None and not policy.allow_pruning(layer):
        return False, XNNPACK_REASON
    if config.m_by_n and type(layer).__name__ not in M_BY_N_TYPES:
        return False, f"M:N sparsity applies to {' and '.join(M_BY_N_TYPES)} layers only"
    return True, ""


def xnnpack_policy(model):
    """tfmot's XNNPACK latency policy, after checking the model qualifies.

    Raises:
        RecipeError: the model has no subgraph XNNPACK's sparse inference can run.
    """
    policy = _sparsity_api().PruneForLatencyOnXNNPack()
    try:
        policy.ensure_model_supports_pruning(model)
    except ValueError as e:
        raise RecipeError(
            "The model cannot use XNNPACK's sparse inference. Expected a model with a subgraph "
            "XNNPACK runs sparse (e.g. MobileNet-style: a 3x3 stride-2 first convolution after "
            "ZeroPadding2D, 1x1 convolutions, global average pooling with keepdims). Received: "
            f"{e}"
        ) from e
    return policy


def layer_infos(model, config: Prune, policy=None) -> list[LayerInfo]:
    """A LayerInfo per top-level layer (nested models are planned as one unit)."""
    infos = []
    first_seen = False
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        count = prunable_weight_count(layer)
        supported, reason = _supported(layer, config, policy)
        first = count > 0 and not first_seen
        first_seen = first_seen or count > 0
        infos.append(LayerInfo(layer.name, type(layer).__name__, count, supported, first, reason))
    return infos


def tfmot_schedule(config: Prune, schedule: StepSchedule, sparsity: float):
    sp = _sparsity_api()
    if schedule.kind == CONSTANT or config.m_by_n:
        return sp.ConstantSparsity(
            sparsity, schedule.begin_step, schedule.end_step, schedule.frequency
        )
    return sp.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=sparsity,
        begin_step=schedule.begin_step,
        end_step=schedule.end_step,
        frequency=schedule.frequency,
    )


def wrap(model, decisions: dict[str, Decision], config: Prune, schedule: StepSchedule):
    """Clones `model` with PruneLowMagnitude around the layers the plan selected."""
    sp = _sparsity_api()
    k = _compat.keras_module(_compat.TF_KERAS)

    def clone(layer):
        decision = decisions.get(layer.name)
        if decision is None or decision.setting is None:
            return layer
        block = layer_block(_pruned_weights(layer), config.block_size)
        try:
            return sp.prune_low_magnitude(
                layer,
                pruning_schedule=tfmot_schedule(config, schedule, float(decision.setting)),
                block_size=block,
                sparsity_m_by_n=config.m_by_n,
            )
        except ValueError as e:
            raise RecipeError(
                f"The pruning engine refused layer '{layer.name}'. Expected a prunable layer. "
                f"Received: {e}"
            ) from e

    return k.models.clone_model(model, clone_function=clone)


def callbacks():
    return [_sparsity_api().UpdatePruningStep()]


def strip(model):
    """The model without pruning wrappers (the wrapped layers keep their masked weights),
    each layer's weights in the order a freshly built layer has them (see
    `core.models.in_built_order`)."""
    return models.in_built_order(_sparsity_api().strip_pruning(model))
