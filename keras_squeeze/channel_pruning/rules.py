"""The table of built-in layers: how each one treats the channel axis.

Every rule answers, for one layer class (matched by exact class name, so a
custom subclass is never mistaken for the built-in):

- its role in the dependency analysis:
  "producer"  makes new channels (Conv, Dense, SeparableConv, ConvTranspose);
  "member"    keeps channels one-to-one and holds per-channel weights
              (BatchNormalization, DepthwiseConv with depth_multiplier 1, PReLU);
  "pass"      keeps channels one-to-one without weights (activations, pooling,
              padding, dropout, global pooling, ...);
  "merge"     element-wise over its inputs (Add, Multiply, ...: inputs tied);
  "concat", "flatten", "reshape", "input": handled by the analysis itself;
- `check`: why a layer of this class cannot be analysed (e.g. a grouped or
  channels_first convolution), or None;
- `macs` / `params`: its cost as terms `(coef, uses_in, uses_out)` meaning
  `coef * (C_in if uses_in else 1) * (C_out if uses_out else 1)`, where C_in
  and C_out are the sizes of the channel (last) axis of its input and output;
- `slice`: its weights with only the kept input / output channels;
- `resize`: its config with the new number of output channels.

Layers not in the table are left whole (their channels and their inputs'
channels are not pruned) and the report says why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from keras_squeeze.channel_pruning.importance import channel_norms

Term = tuple[float, bool, bool]

# Activations applied one value at a time (pruning a channel cannot change the
# others). Anything else, e.g. "softmax", mixes channels.
_ACTIVATION_NAMES = (
    "linear relu relu6 leaky_relu elu selu celu gelu silu swish hard_silu hard_swish "
    "sigmoid hard_sigmoid tanh hard_tanh softplus softsign exponential mish log_sigmoid "
    "sparse_plus squareplus tanh_shrink soft_shrink hard_shrink threshold"
)
ELEMENTWISE_ACTIVATIONS = frozenset(_ACTIVATION_NAMES.split())


@dataclasses.dataclass(frozen=True)
class Rule:
    role: str
    check: Callable | None = None
    macs: Callable | None = None
    params: Callable | None = None
    slice: Callable | None = None
    resize: Callable | None = None
    norms: Callable | None = None
    output_check: Callable | None = None


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _config(layer) -> dict:
    return layer.get_config()


def _channels_last(layer) -> str | None:
    fmt = _config(layer).get("data_format")
    if fmt not in (None, "channels_last"):
        return f"data_format='{fmt}' (only channels_last is analysed)"
    return None


def _activation_name(value) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = value.get("config")
        return inner if isinstance(inner, str) else value.get("class_name")
    return None


def _elementwise_activation(layer) -> str | None:
    name = _activation_name(_config(layer).get("activation", "linear"))
    if name not in ELEMENTWISE_ACTIVATIONS:
        return f"activation {name!r} mixes channels or is not a known element-wise function"
    return None


def _weight_count(layer, expected: int) -> str | None:
    got = len(layer.get_weights())
    if got != expected:
        return (
            f"has {got} weight tensors where the plain layer has {expected} "
            "(LoRA, quantized or otherwise modified)"
        )
    return None


def _first(*reasons) -> str | None:
    for r in reasons:
        if r:
            return r
    return None


def _spatial(shape) -> int:
    return _prod(shape[1:-1])


# Convolutions: kernel (*k, C_in / groups, C_out) or, transposed, (*k, C_out, C_in).


def _kernel_check(option: str | None, kernels: int):
    """Checks channels_last, `option` (groups / depth_multiplier) == 1 and the weight count."""

    def check(layer, in_shapes, out_shapes):
        cfg = _config(layer)
        value = cfg.get(option, 1) if option else 1
        return _first(
            _channels_last(layer),
            f"{option}={value} (only 1 is analysed)" if value != 1 else None,
            "LoRA enabled" if getattr(layer, "lora_enabled", False) else None,
            _weight_count(layer, kernels + _bias(layer)),
        )

    return check


def _bias(layer) -> int:
    return int(bool(_config(layer).get("use_bias", True)))


def _conv_macs(layer, in_shape, out_shape):
    return [(_spatial(out_shape) * _prod(layer.get_config()["kernel_size"]), True, True)]


def _conv_params(layer):
    return [(_prod(_config(layer)["kernel_size"]), True, True)] + [(1, False, True)] * _bias(layer)


def _conv_slice(weights, in_keep, out_keep):
    kernel = weights[0][..., in_keep, :][..., out_keep]
    return [kernel] + [b[out_keep] for b in weights[1:]]


def _filters(config, count):
    return {**config, "filters": int(count)}


def _units(config, count):
    return {**config, "units": int(count)}


def _conv_norms(weights, ord_):
    return channel_norms(weights[0], ord_)


def _transpose_macs(layer, in_shape, out_shape):
    return [(_spatial(in_shape) * _prod(layer.get_config()["kernel_size"]), True, True)]


def _transpose_slice(weights, in_keep, out_keep):
    kernel = weights[0][..., out_keep, :][..., in_keep]
    return [kernel] + [b[out_keep] for b in weights[1:]]


def _transpose_norms(weights, ord_):
    return channel_norms(np.swapaxes(weights[0], -1, -2), ord_)


# Dense: kernel (C_in, C_out), applied at every position of an N-D input.


def _dense_macs(layer, in_shape, out_shape):
    return [(_spatial(in_shape), True, True)]


def _dense_params(layer):
    return [(1, True, True)] + [(1, False, True)] * _bias(layer)


# Separable: depthwise (*k, C_in, 1) then pointwise (*1, C_in, C_out).


def _separable_macs(layer, in_shape, out_shape):
    sp = _spatial(out_shape)
    return [(sp * _prod(layer.get_config()["kernel_size"]), True, False), (sp, True, True)]


def _separable_params(layer):
    terms = [(_prod(_config(layer)["kernel_size"]), True, False), (1, True, True)]
    return terms + [(1, False, True)] * _bias(layer)


def _separable_slice(weights, in_keep, out_keep):
    depthwise = weights[0][..., in_keep, :]
    pointwise = weights[1][..., in_keep, :][..., out_keep]
    return [depthwise, pointwise] + [b[out_keep] for b in weights[2:]]


def _separable_norms(weights, ord_):
    return channel_norms(weights[1], ord_)


# Members: one channel in, the same channel out.


def _depthwise_macs(layer, in_shape, out_shape):
    return [(_spatial(out_shape) * _prod(layer.get_config()["kernel_size"]), True, False)]


def _depthwise_params(layer):
    return [(_prod(_config(layer)["kernel_size"]), True, False)] + [(1, True, False)] * _bias(layer)


def _depthwise_slice(weights, in_keep, out_keep):
    return [weights[0][..., in_keep, :]] + [b[in_keep] for b in weights[1:]]


def _depthwise_norms(weights, ord_):
    return channel_norms(np.swapaxes(weights[0], -1, -2), ord_)


def _bn_check(layer, in_shapes, out_shapes):
    axis = _config(layer).get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    rank = len(in_shapes[0])
    if not isinstance(axis, int) or axis % rank != rank - 1:
        return f"axis={axis} (only the last axis is analysed)"
    return None


def _bn_params(layer):
    return [(len(layer.get_weights()), True, False)]


def _per_channel_slice(weights, in_keep, out_keep):
    return [w[..., in_keep] for w in weights]


def _prelu_check(layer, in_shapes, out_shapes):
    return _weight_count(layer, 1)


def _prelu_params(layer):
    alpha = layer.get_weights()[0]
    if alpha.shape[-1] == 1:  # shared over the channel axis
        return [(alpha.size, False, False)]
    return [(_prod(alpha.shape[:-1]), True, False)]


def _prelu_slice(weights, in_keep, out_keep):
    alpha = weights[0]
    return [alpha[..., in_keep]] if alpha.shape[-1] != 1 else [alpha]


def _pass_check(layer, in_shapes, out_shapes):
    return _channels_last(layer)


def _activation_check(layer, in_shapes, out_shapes):
    return _elementwise_activation(layer)


def _softmax_check(layer, in_shapes, out_shapes):
    axis = _config(layer).get("axis", -1)
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    rank = len(in_shapes[0])
    if any(a % rank == rank - 1 for a in axes):
        return "softmax over the channel axis mixes channels"
    return None


def _rescaling_check(layer, in_shapes, out_shapes):
    cfg = _config(layer)
    if any(np.ndim(cfg.get(k, 0.0)) > 0 for k in ("scale", "offset")):
        return "per-channel scale or offset"
    return None


def _producer_rule(check, macs, params, slice_, resize, norms) -> Rule:
    # A channel-mixing activation (softmax) keeps the layer's own outputs whole;
    # its inputs can still be pruned.
    return Rule("producer", check, macs, params, slice_, resize, norms, _elementwise_activation)


_PLAIN = _kernel_check(None, 1)
_CONV = _producer_rule(
    _kernel_check("groups", 1), _conv_macs, _conv_params, _conv_slice, _filters, _conv_norms
)
_TRANSPOSE = _producer_rule(
    _PLAIN, _transpose_macs, _conv_params, _transpose_slice, _filters, _transpose_norms
)
_DENSE = _producer_rule(_PLAIN, _dense_macs, _dense_params, _conv_slice, _units, _conv_norms)
_SEPARABLE = _producer_rule(
    _kernel_check("depth_multiplier", 2),
    _separable_macs,
    _separable_params,
    _separable_slice,
    _filters,
    _separable_norms,
)
_DEPTHWISE = Rule(
    "member",
    lambda layer, i, o: _first(
        _kernel_check("depth_multiplier", 1)(layer, i, o), _elementwise_activation(layer)
    ),
    _depthwise_macs,
    _depthwise_params,
    _depthwise_slice,
    norms=_depthwise_norms,
)
_BN = Rule("member", _bn_check, params=_bn_params, slice=_per_channel_slice)
_PRELU = Rule("member", _prelu_check, params=_prelu_params, slice=_prelu_slice)
_PASS = Rule("pass", _pass_check)
_PASS_NAMES = (
    "ReLU LeakyReLU ELU ThresholdedReLU Dropout SpatialDropout1D SpatialDropout2D "
    "SpatialDropout3D GaussianNoise GaussianDropout AlphaDropout "
    "ActivityRegularization Identity MaxPooling1D MaxPooling2D MaxPooling3D "
    "AveragePooling1D AveragePooling2D AveragePooling3D GlobalAveragePooling1D "
    "GlobalAveragePooling2D GlobalAveragePooling3D GlobalMaxPooling1D "
    "GlobalMaxPooling2D GlobalMaxPooling3D ZeroPadding1D ZeroPadding2D "
    "ZeroPadding3D Cropping1D Cropping2D Cropping3D UpSampling1D UpSampling2D "
    "UpSampling3D"
)
_MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")

RULES: dict[str, Rule] = {
    **dict.fromkeys(("Conv1D", "Conv2D", "Conv3D"), _CONV),
    **dict.fromkeys(("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"), _TRANSPOSE),
    "Dense": _DENSE,
    **dict.fromkeys(("SeparableConv1D", "SeparableConv2D"), _SEPARABLE),
    **dict.fromkeys(("DepthwiseConv1D", "DepthwiseConv2D"), _DEPTHWISE),
    "BatchNormalization": _BN,
    "PReLU": _PRELU,
    "Activation": Rule("pass", _activation_check),
    "Softmax": Rule("pass", _softmax_check),
    "Rescaling": Rule("pass", _rescaling_check),
    **dict.fromkeys(_PASS_NAMES.split(), _PASS),
    **dict.fromkeys(_MERGES, Rule("merge")),
    "Concatenate": Rule("concat"),
    "Flatten": Rule("flatten", _pass_check),
    "Reshape": Rule("reshape"),
    "InputLayer": Rule("input"),
}


def rule_for(layer) -> Rule | None:
    """The rule of a built-in layer class, or None for anything else."""
    return RULES.get(type(layer).__name__)


def evaluate(terms: list[Term], c_in: int, c_out: int) -> int:
    """Sum of `coef * (c_in if uses_in) * (c_out if uses_out)` over the terms."""
    return int(sum(coef * (c_in if i else 1) * (c_out if o else 1) for coef, i, o in terms))
