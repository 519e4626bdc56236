"""Magnitude pruning without wrappers, on the model in its own Keras flavour.

For models whose layers are reachable only as tracked sub-layers (subclassed
models: tfmot wraps the layers of a layer graph and its maintainers declined
subclassed support, tensorflow/model-optimization#292), and for functional
models with `Prune(engine="native")`. The model's own `call()` runs
unchanged: each pruned kernel gets a mask (a non-trainable variable kept
here, not in the model), updated on the schedule's steps and multiplied into
the kernel after every optimizer step (the training loop's `after_step`
hook), so the weights the forward pass sees are always masked. The masks
follow `pruning.masks`, the schedule `pruning.schedule`: the same rules as
the tfmot engine.
"""

from __future__ import annotations

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.core import models
from keras_squeeze.errors import RecipeError
from keras_squeeze.layer_plan import Decision, LayerInfo
from keras_squeeze.pruning import masks
from keras_squeeze.pruning.apply import M_BY_N_TYPES, layer_block, prunable_weight_count
from keras_squeeze.pruning.config import Prune
from keras_squeeze.pruning.schedule import StepSchedule
from keras_squeeze.report.layers import weight_short_name

# The weights the engine prunes, per layer class (tfmot's prune registry, by class name,
# so Keras 3 layers and tf_keras layers alike). A class mapped to () is supported with
# nothing pruned, as in the tfmot engine.
PRUNED_WEIGHTS = {
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
            "MultiHeadAttention",
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
    "DepthwiseConv2D": (),
}
ENGINE_NOTE = "native engine: masks applied after every optimizer step, no wrappers"


def pruned_weights(layer) -> list:
    """The variables pruning masks: get_prunable_weights(), else the table's weights."""
    if hasattr(layer, "get_prunable_weights"):
        return list(layer.get_prunable_weights())
    names = PRUNED_WEIGHTS.get(type(layer).__name__, ())
    return [w for w in layer.weights if weight_short_name(w) in names]


def _supported(layer, config: Prune) -> tuple[bool, str]:
    kind = type(layer).__name__
    if not hasattr(layer, "get_prunable_weights") and kind not in PRUNED_WEIGHTS:
        return False, (
            f"{kind} is not supported by the native pruning engine; custom layers opt in with "
            "get_prunable_weights()"
        )
    if not pruned_weights(layer):
        return False, f"the pruning engines prune no weights of {kind}"
    if config.m_by_n and kind not in M_BY_N_TYPES:
        return False, f"M:N sparsity applies to {' and '.join(M_BY_N_TYPES)} layers only"
    return True, ""


def layers(model) -> dict:
    """{name: layer} of every layer the plan sees (`core.models.walk_layers`).

    Raises:
        RecipeError: two layers share a name (plans and reports name layers).
    """
    found: dict = {}
    for layer in models.walk_layers(model):
        if type(layer).__name__ == "InputLayer":
            continue
        if layer.name in found:
            raise RecipeError(
                f"Two layers of the model are named '{layer.name}', and the native engine plans "
                "and reports layers by name. Expected unique layer names. Received: "
                f"{type(found[layer.name]).__name__} and {type(layer).__name__}"
            )
        found[layer.name] = layer
    return found


def layer_infos(model, config: Prune) -> list[LayerInfo]:
    """A LayerInfo per layer, in the order the model holds them (as the tfmot engine's)."""
    infos, first_seen = [], False
    for name, layer in layers(model).items():
        count = prunable_weight_count(layer)
        supported, reason = _supported(layer, config)
        first = count > 0 and not first_seen
        first_seen = first_seen or count > 0
        infos.append(LayerInfo(name, type(layer).__name__, count, supported, first, reason))
    return infos


class Pruner:
    """The masks of the layers a plan selected, their updates and their application.

    `callback()` (a Keras callback of the model's flavour) updates the masks at
    the schedule's steps, before the step's forward pass; `apply` (the
    training loop's `after_step` hook, traced with the step) multiplies them
    into the kernels after every optimizer step.
    """

    def __init__(self, model, decisions: dict[str, Decision], config: Prune, schedule):
        import tensorflow as tf

        self.model = model
        self.config = config
        self.schedule: StepSchedule = schedule
        self.step = 0
        self.entries = []  # (variable, mask variable, target sparsity, block)
        self.pruned = {}  # {layer name: its pruned variables}
        for name, layer in layers(model).items():
            decision = decisions.get(name)
            if decision is None or decision.setting is None:
                continue
            weights = self.pruned[name] = pruned_weights(layer)
            block = layer_block(weights, config.block_size)
            for variable in weights:
                mask = tf.Variable(
                    np.ones(tuple(variable.shape), np.float32), trainable=False, name="mask"
                )
                self.entries.append((variable, mask, float(decision.setting), block))

    def updates_at(self, step: int) -> bool:
        if self.config.m_by_n:  # M:N masks are set once, at the first step (as tfmot's)
            return step == 0
        return self.schedule.updates_at(step)

    def update(self, step: int) -> None:
        """New masks from the kernels' magnitudes, when the schedule updates at `step`."""
        if not self.updates_at(step):
            return
        for variable, mask, target, block in self.entries:
            values = np.asarray(variable)
            if self.config.m_by_n:
                new = masks.m_by_n_mask(values, *self.config.m_by_n)
            else:
                new = masks.magnitude_mask(values, self.schedule.sparsity_at(step, target), block)
            mask.assign(new.astype(np.float32))
            variable.assign((values * new).astype(values.dtype))

    def apply(self) -> None:
        """kernel <- kernel * mask, for every pruned kernel (TF ops)."""
        for variable, mask, _, _ in self.entries:
            variable.assign(variable * mask)

    @property
    def variables(self) -> list:
        """The masks: training state outside the model (saved with a checkpoint)."""
        return [mask for _, mask, _, _ in self.entries]

    def callback(self):
        k = _compat.keras_module(_compat.keras_flavour(self.model))
        pruner = self

        class UpdateMasks(k.callbacks.Callback):
            def on_train_begin(self, logs=None):
                # The optimizer's step count: 0 for a new fine-tune, the steps done for one
                # resumed from a checkpoint.
                pruner.step = int(np.asarray(self.model.optimizer.iterations))

            def on_train_batch_begin(self, batch, logs=None):
                pruner.update(pruner.step)
                pruner.step += 1

        return UpdateMasks()
