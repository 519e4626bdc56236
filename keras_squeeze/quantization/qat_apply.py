"""Quantization-aware training layer by layer with tfmot (tf_keras models only).

tfmot's `quantize_model` annotates every layer and fails the whole model on
the first one its registry has no config for (Rescaling, standalone
BatchNormalization, Multiply, TF-op layers, hard-swish ...). Here each layer
gets one of four treatments, decided from its type and neighbours:

- "default": the engine's own 8-bit config (weights and activations);
- "folded": batch normalization right after a linear convolution, which the
  engine folds into the convolution;
- "output": weightless (or weights-are-constants) layers the engine does not
  know get their output quantized, so the next layer sees int8 ranges
  learnt in training;
- None: left float in training (TF-op layers, weighted layers the engine
  cannot quantize); the converter calibrates their int8 ranges.
"""

from __future__ import annotations

import functools

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.core import graph, models
from keras_squeeze.errors import RecipeError
from keras_squeeze.layer_plan import Decision, LayerInfo, plan
from keras_squeeze.quantization.qat_config import QAT
from keras_squeeze.report.layers import weight_short_name

DEFAULT = "default"
FOLDED = "folded"
OUTPUT = "output"
QUANT_PREFIX = "quant_"

_CONVS = ("Conv2D", "DepthwiseConv2D")
# Activation functions the engine's 8-bit activation configs handle.
_ENGINE_ACTIVATIONS = ("relu", "relu6", "swish", "gelu", "linear", "softmax", "sigmoid", "tanh")


def _quantization_api():
    return _compat.import_tfmot().quantization.keras


@functools.lru_cache(maxsize=1)
def _registry():
    # No public "does the default 8-bit scheme support this layer" check exists.
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry,
    )

    return registry.Default8BitQuantizeRegistry()


@functools.lru_cache(maxsize=1)
def output_quantize_config_class():
    """A QuantizeConfig quantizing only a layer's output (8-bit, per-tensor, asymmetric)."""
    q = _quantization_api()

    class OutputQuantizeConfig(q.QuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [
                q.quantizers.MovingAverageQuantizer(
                    num_bits=8, per_axis=False, symmetric=False, narrow_range=False
                )
            ]

        def get_config(self):
            return {}

    return OutputQuantizeConfig


def _activation_name(layer) -> str | None:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) if activation is not None else None


def treatment(layer) -> tuple[str | None, str]:
    """(kind, reason) for one layer; the reason says why when kind is not DEFAULT."""
    cls = type(layer).__name__
    if cls == "BatchNormalization":
        previous = graph.inbound_layers(layer)
        if (
            len(previous) == 1
            and type(previous[0]).__name__ in _CONVS
            and _activation_name(previous[0]) in (None, "linear")
            and len(previous[0]._outbound_nodes) == 1
        ):
            return FOLDED, "folded into the preceding convolution"
        return OUTPUT, "batch normalization not right after a convolution: output quantized"
    if cls == "Activation":
        name = _activation_name(layer)
        if name in _ENGINE_ACTIVATIONS:
            return DEFAULT, ""
        return OUTPUT, f"activation '{name}' has no engine config: output quantized"
    if cls in ("TFOpLambda", "SlicingOpLambda", "Lambda"):
        name = getattr(getattr(layer, "function", None), "__name__", cls)
        return None, (
            f"TF-op layer ({name}): kept float in training, its int8 range calibrated by the "
            "converter"
        )
    if _registry().supports(layer):
        act = _activation_name(layer)
        if act is not None and act not in _ENGINE_ACTIVATIONS:
            return None, f"fused activation '{act}' has no engine config: kept float in training"
        return DEFAULT, ""
    if not layer.weights or cls in ("Rescaling", "Normalization"):
        return OUTPUT, f"{cls} has no engine config: output quantized"
    return None, (
        f"{cls} has no 8-bit config in the engine: kept float in training, its int8 ranges "
        "calibrated by the converter"
    )


def layer_infos(model) -> tuple[list[LayerInfo], dict[str, tuple[str | None, str]]]:
    infos, kinds = [], {}
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        kind, reason = treatment(layer)
        kinds[layer.name] = (kind, reason)
        # Every layer counts: QAT quantizes activations, not only weights.
        infos.append(
            LayerInfo(layer.name, type(layer).__name__, 1, kind is not None, False, reason)
        )
    return infos, kinds


def decide(model, config: QAT) -> dict[str, Decision]:
    """Per layer: the treatment to apply (None: float in training) and why."""
    infos, kinds = layer_infos(model)
    decisions = plan(
        infos,
        True,
        technique="quantization-aware training",
        per_layer=config.layers,
        skip=config.skip,
    )
    for name, decision in decisions.items():
        kind, reason = kinds[name]
        if decision.setting is not None:
            decision.setting = kind
            decision.reason = reason or None
    weighted = {layer.name for layer in model.layers if layer.weights}
    if not any(d.setting == DEFAULT and n in weighted for n, d in decisions.items()):
        raise RecipeError(
            "The model has no layer quantization-aware training can train (no convolution or "
            "dense layer the engine supports). Expected at least one. Received: "
            + "; ".join(f"{n}: {d.reason}" for n, d in decisions.items())
        )
    return decisions


def scheme(pruned: bool, clustered: bool):
    """The engine's 8-bit scheme for what came before.

    After pruning alone: the prune-preserving scheme (PQAT), which keeps the
    zeros. After clustering: the default scheme, with the kernels frozen by
    the caller (see `frozen_kernels`): tfmot's cluster-preserving scheme
    re-clusters convolution kernels per channel without a zero centroid, which
    loses the pruned zeros (measured: 50% -> 0-4% zeros in conv kernels).
    """
    tfmot = _compat.import_tfmot()
    if pruned and not clustered:
        return tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    return tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()


_KERNEL_VARIABLES = ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings")


def frozen_kernels(variable) -> bool:
    """True for kernel variables: frozen in QAT after clustering, which keeps each
    kernel's centroid values and zeros exactly (activation ranges, biases and
    batch normalization still train)."""
    return weight_short_name(variable) in _KERNEL_VARIABLES


# Moving-average activation quantizers (tfmot's default for activations and outputs).
_RANGE_VARIABLES = ("post_activation_min", "post_activation_max", "output_min", "output_max")


def calibrate_ranges(qat_model, float_model, inputs: list) -> list[str]:
    """Starts each moving-average activation range at the float model's range.

    tfmot starts these ranges at [-6, 6] and moves them by an exponential
    moving average with decay 0.999, so a fine-tune of a few hundred steps
    trains against ranges still mostly [-6, 6]: logits clipped, small
    activations coarsely quantized. Here each wrapper's range is set to
    [min(0, lo), max(0, hi)] of the wrapped layer's float output on `inputs`
    (the range post-training int8 calibration would pick); training then moves
    it as usual. The input's QuantizeLayer (tfmot: range 0 until the first
    training batch) starts at the input's range the same way.

    Args:
        qat_model: the model from `apply`.
        float_model: the tf_keras model `apply` was given (same layer names).
        inputs: one array per model input.

    Returns:
        Names of the quantization-aware layers whose ranges were set.
    """
    k = _compat.keras_module(_compat.TF_KERAS)
    # A fresh copy: layers of a stripped model may also sit in the engine's graphs,
    # where `layer.output` would name a tensor of another model.
    source = float_model
    float_model = k.models.clone_model(source)
    float_model.set_weights(source.get_weights())
    targets = {}
    for layer in qat_model.layers:
        inner = getattr(layer, "layer", None)
        names = _RANGE_VARIABLES
        if type(layer).__name__ == "QuantizeLayer":  # quantizes what its input layer gives
            inbound = graph.inbound_layers(layer)
            inner = inbound[0] if len(inbound) == 1 else None
            names = (f"{layer.name}_min", f"{layer.name}_max")
        variables = {
            weight_short_name(v): v
            for v in layer.non_trainable_weights
            if weight_short_name(v) in names
        }
        if inner is None or not variables:
            continue
        try:
            output = float_model.get_layer(inner.name).output
        except (ValueError, AttributeError):  # not in the float model, or called twice
            continue
        if not isinstance(output, list):
            targets[layer.name] = (output, variables)
    if not targets:
        return []
    probe = k.Model(float_model.inputs, [t for t, _ in targets.values()])
    # Batch by batch, keeping each output's range only: every wrapped layer's output on
    # every sample at once held 6 GB for MobileNetV2 at 224x224 on 100 samples.
    lows, highs = [0.0] * len(targets), [0.0] * len(targets)
    step = models.capped_batch(inputs, 64)
    for start in range(0, len(inputs[0]), step):
        outputs = probe.predict_on_batch([a[start : start + step] for a in inputs])
        outputs = outputs if isinstance(outputs, list) else [outputs]
        for i, values in enumerate(outputs):
            lows[i] = min(lows[i], float(np.min(values)))
            highs[i] = max(highs[i], float(np.max(values)))
    for (_, variables), low, high in zip(targets.values(), lows, highs, strict=True):
        for name, variable in variables.items():
            variable.assign(np.full(variable.shape, low if name.endswith("_min") else high))
    return list(targets)


def quantize_scope():
    """The scope in which quantization-aware models (with our configs) clone and load."""
    return _quantization_api().quantize_scope(
        {"OutputQuantizeConfig": output_quantize_config_class()}
    )


def apply(model, decisions: dict[str, Decision], quantize_scheme):
    """Annotates the selected layers and returns tfmot's quantization-aware model."""
    q = _quantization_api()
    k = _compat.keras_module(_compat.TF_KERAS)
    output_config = output_quantize_config_class()

    def annotate(layer):
        decision = decisions.get(layer.name)
        if decision is None or decision.setting is None:
            return layer
        if decision.setting == OUTPUT:
            return q.quantize_annotate_layer(layer, output_config())
        return q.quantize_annotate_layer(layer)

    annotated = k.models.clone_model(model, clone_function=annotate)
    try:
        with quantize_scope():
            return q.quantize_apply(
                annotated, quantize_scheme, quantized_layer_name_prefix=QUANT_PREFIX
            )
    except (ValueError, TypeError, RuntimeError) as e:
        raise RecipeError(
            "The quantization engine could not prepare the model for quantization-aware "
            "training. Expected layers it can wrap. Received: "
            f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
        ) from e
