"""The Edge TPU's rules as plain functions over a parsed .tflite.

Each check takes the parsed model (`keras_squeeze.report.tflite_reader`) and
one operator, and returns the reasons it cannot run on the Edge TPU (an empty
list when it can). Shapes are read as the compiler reads them: `shape`, where a
dynamic batch is already 1; `shape_signature` only to find dynamic sizes.

Axes follow TFLite's NHWC layout: axis 0 is the batch, the last axis is "z"
(channels), the axes in between are "y" and "x".
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from keras_squeeze.edgetpu import table
from keras_squeeze.report.tflite_reader import Operator, Tensor, TFLiteModel

EIGHT_BIT = ("int8", "uint8")
FLOAT_TYPES = ("float32", "float16", "float64")
INDEX_TYPES = ("int32", "int64")
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
DATA_TYPE_STATUS = "Operation is working on an unsupported data type"
RANK_STATUS = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"


def _tensors(model: TFLiteModel, indices) -> list[tuple[int, Tensor]]:
    return [(pos, model.tensors[i]) for pos, i in enumerate(indices) if i >= 0]


def effective_shape(shape) -> tuple[int, ...]:
    """The shape without leading 1s (at least one dimension): (1, 1, 10) -> (10,)."""
    shape = tuple(int(d) for d in shape)
    i = 0
    while i < len(shape) - 1 and shape[i] == 1:
        i += 1
    return shape[i:]


def exceeds_rank(shape) -> bool:
    """True when a dimension outside the 3 innermost ones is larger than 1."""
    return any(int(d) > 1 for d in tuple(shape)[:-3])


def _axes(model: TFLiteModel, op: Operator, position: int, rank: int) -> list[int] | None:
    """The constant axis list of an op's input, normalised to [0, rank)."""
    if position >= len(op.inputs) or op.inputs[position] < 0:
        return None
    t = model.tensors[op.inputs[position]]
    if t.data is None:
        return None
    return sorted({int(a) % rank for a in np.ravel(t.data)}) if rank else []


def is_model_input_quantize(model: TFLiteModel, op: Operator) -> bool:
    """A QUANTIZE of a float model input (float I/O): the compiler keeps it on the CPU.

    It runs before the Edge TPU part without splitting the model (compiler
    log: "Operation is otherwise supported, but not mapped due to some
    unspecified limitation").
    """
    if op.opcode != "QUANTIZE" or not op.inputs:
        return False
    src = op.inputs[0]
    return src in model.inputs and model.tensors[src].dtype in FLOAT_TYPES


def is_model_output_dequantize(model: TFLiteModel, op: Operator) -> bool:
    """A DEQUANTIZE producing a float model output: stays on the CPU, after the Edge TPU part."""
    if op.opcode != "DEQUANTIZE":
        return False
    consumed = {i for other in model.operators for i in other.inputs}
    return all(o in model.outputs and o not in consumed for o in op.outputs)


def check_loadable(op: Operator) -> list[str]:
    """Reasons the compiler cannot load this op at all (then it compiles nothing)."""
    if op.is_custom:
        return []
    limit = table.COMPILER_MAX_VERSIONS.get(op.opcode)
    if limit is None:
        message = (
            f"Op builtin_code out of range: {op.builtin_code}"
            if op.builtin_code > table.MAX_BUILTIN_CODE
            else f"Didn't find op for builtin opcode '{op.opcode}' version '{op.version}'"
        )
        return [
            f"{op.opcode} is unknown to edgetpu_compiler {table.COMPILER_VERSION} (it loads "
            f'TFLite 2.5\'s builtin operators; it stops with "{message}")'
        ]
    if op.version > limit:
        return [
            f"{op.opcode} version {op.version} is newer than edgetpu_compiler "
            f"{table.COMPILER_VERSION} loads (up to version {limit}; it stops with \"Didn't find "
            f"op for builtin opcode '{op.opcode}' version '{op.version}'\")"
        ]
    return []


def check_supported(op: Operator, runtime_version: int) -> list[str]:
    """Is the op in the Edge TPU's table (for this runtime version)?"""
    if op.is_custom:
        return [f"custom op '{op.opcode}' runs on the CPU (the Edge TPU maps builtin ops only)"]
    spec = table.EDGETPU_OPS.get(op.opcode)
    if spec is None:
        return [f"{op.opcode} is not an Edge TPU operation ({table.SOURCE_OPS})"]
    if spec.runtime > runtime_version:
        return [
            f"{spec.name} needs Edge TPU runtime {spec.runtime} or newer; compiling for runtime "
            f"{runtime_version}"
        ]
    return []


def check_types(model: TFLiteModel, op: Operator) -> list[str]:
    """8-bit activations and weights, int32 biases; float or int16 tensors stay on the CPU."""
    weights = table.WEIGHT_INPUTS.get(op.opcode, ())
    biases = table.BIAS_INPUTS.get(op.opcode, ())
    params = table.PARAMETER_INPUTS.get(op.opcode, ())
    bad = []
    for pos, t in _tensors(model, op.inputs):
        if pos in biases:
            ok = t.dtype == "int32"
        elif pos in params and pos not in weights:
            ok = t.dtype in INDEX_TYPES or t.dtype in EIGHT_BIT
        else:
            ok = t.dtype in EIGHT_BIT
        if not ok:
            bad.append(f"input '{t.name}' is {t.dtype}")
    bad += [f"output '{t.name}' is {t.dtype}" for _, t in _tensors(model, op.outputs)
            if t.dtype not in EIGHT_BIT]  # fmt: skip
    if not bad:
        return []
    return [
        f"works on non-8-bit tensors ({'; '.join(bad)}); the Edge TPU computes int8/uint8 only "
        f"(compiler log: '{DATA_TYPE_STATUS}')"
    ]


def _tensors_where(model: TFLiteModel, op: Operator, bad, shape_of) -> str:
    """ "'name' (shape), ..." of the op's input/output tensors for which bad(t) holds."""
    return ", ".join(
        f"'{t.name}' {tuple(shape_of(t))}"
        for _, t in _tensors(model, list(op.inputs) + list(op.outputs))
        if bad(t)
    )


def check_static(model: TFLiteModel, op: Operator) -> list[str]:
    """Tensor sizes must be known at compile time (a dynamic batch alone is read as 1)."""
    dynamic = _tensors_where(
        model,
        op,
        lambda t: any(int(d) < 0 for d in tuple(t.shape_signature)[1:]),
        lambda t: t.shape_signature,
    )
    return [f"dynamic tensor size (-1 beyond the batch axis): {dynamic}"] if dynamic else []


def check_rank(model: TFLiteModel, op: Operator) -> list[str]:
    """Only the 3 innermost dimensions of an activation may be larger than 1."""
    bad = _tensors_where(
        model, op, lambda t: not t.is_constant and exceeds_rank(t.shape), lambda t: t.shape
    )
    if not bad:
        return []
    return [
        f"tensor with more than 3 dimensions larger than 1: {bad} (compiler log: '{RANK_STATUS}')"
    ]


def check_parameters(model: TFLiteModel, op: Operator) -> list[str]:
    """Weights, biases, shapes and axes must be constant at compile time."""
    bad = []
    for pos in table.PARAMETER_INPUTS.get(op.opcode, ()):
        if pos < len(op.inputs) and op.inputs[pos] >= 0:
            t = model.tensors[op.inputs[pos]]
            if not t.is_constant:
                bad.append(f"input {pos} '{t.name}'")
    if not bad:
        return []
    return [
        f"parameter computed at run time ({', '.join(bad)}); the Edge TPU needs weights, biases, "
        "shapes and axes constant at compile time"
    ]


# --- the "Known limitations" column, one function per operation ------------


def _fused_activation(model, op, runtime_version):
    act = int(op.options.get("fusedActivationFunction", 0) or 0)
    if act:
        return [f"fused {_ACTIVATIONS.get(act, act)} activation (the Edge TPU needs none here)"]
    return []


def _concatenation(model, op, runtime_version):
    reasons = _fused_activation(model, op, runtime_version)
    consts = [t for _, t in _tensors(model, op.inputs) if t.is_constant]
    if consts:
        zero = all(np.all(t.values() == 0) for t in consts)
        if len(op.inputs) != 2 or not zero:
            reasons.append(
                "a constant input is allowed only as one of exactly 2 inputs and all zeros "
                f"(received {len(op.inputs)} inputs, constant all zeros: {zero})"
            )
    return reasons


def _dilation(model, op, runtime_version):
    w = int(op.options.get("dilationWFactor", 1) or 1)
    h = int(op.options.get("dilationHFactor", 1) or 1)
    if op.opcode == "DEPTHWISE_CONV_2D" and runtime_version <= 12 and (w > 1 or h > 1):
        return [f"dilated depthwise kernel ({h}x{w}) needs Edge TPU runtime 13 or newer"]
    if w != h:
        return [f"different dilation in y and x ({h} vs {w})"]
    return []


def _fully_connected(model, op, runtime_version):
    reasons = []
    if int(op.options.get("weightsFormat", 0) or 0) != 0:
        reasons.append("weights are not in the default format")
    out = model.tensors[op.outputs[0]]
    if len(effective_shape(out.shape)) > 1:
        reasons.append(f"output {tuple(out.shape)} is not one-dimensional")
    return reasons


def _reduce(model, op, runtime_version):
    src = model.tensors[op.inputs[0]]
    rank = len(src.shape)
    axes = _axes(model, op, 1, rank)
    if axes is None:
        return []
    if op.opcode == "MEAN" and runtime_version <= 12:
        allowed = set(range(1, rank - 1))
        if not set(axes) <= allowed:
            return [f"reduces axes {axes}; runtime {runtime_version} reduces along x/y only"]
        return []
    reasons = []
    if rank > 1 and 0 in axes:
        reasons.append(f"reduces the batch axis (axes {axes})")
    if op.opcode == "MEAN" and rank - 1 in axes and int(src.shape[-1]) % 4:
        reasons.append(f"z-reduction over {int(src.shape[-1])} channels (must be a multiple of 4)")
    return reasons


def _pad(model, op, runtime_version):
    pads = model.tensors[op.inputs[1]].data if len(op.inputs) > 1 else None
    if pads is None:
        return []
    pads = np.asarray(pads).reshape(-1, 2)
    padded = [i for i, p in enumerate(pads) if np.any(p != 0)]
    if runtime_version <= 12:
        bad = [i for i in padded if not 0 < i < len(pads) - 1]
        return [f"pads axes {padded}; runtime {runtime_version} pads along x/y only"] if bad else []
    return ["pads the batch axis"] if 0 in padded else []


def _batch_axis_option(model, op, runtime_version):
    rank = len(model.tensors[op.outputs[0]].shape)
    axis = int(op.options.get("axis", 0) or 0) % max(rank, 1)
    return ["packs along the batch axis"] if axis == 0 and rank > 1 else []


def _split(model, op, runtime_version):
    src = model.tensors[op.inputs[1]]
    axes = _axes(model, op, 0, len(src.shape))
    return ["splits along the batch axis"] if axes and 0 in axes and len(src.shape) > 1 else []


def _prelu(model, op, runtime_version):
    alpha = model.tensors[op.inputs[1]]
    if len(effective_shape(alpha.shape)) > 1:
        return [
            f"alpha {tuple(alpha.shape)} is not 1-dimensional (Keras PReLU: shared_axes=[1, 2])"
        ]
    return []


def _resize(model, op, runtime_version):
    bad = [
        f"'{t.name}' {tuple(t.shape)}"
        for _, t in _tensors(model, [op.inputs[0], op.outputs[0]])
        if len(effective_shape(t.shape)) > 3
    ]
    return [f"input/output is not 3-dimensional: {', '.join(bad)}"] if bad else []


def _softmax(model, op, runtime_version):
    shape = effective_shape(model.tensors[op.inputs[0]].shape)
    if len(shape) > 1 or int(np.prod(shape)) > 16000:
        return [f"input {shape} is not 1-D with at most 16,000 elements"]
    return []


def _strided_slice(model, op, runtime_version):
    reasons = []
    strides = model.tensors[op.inputs[3]].data if len(op.inputs) > 3 else None
    if strides is not None and np.any(np.asarray(strides) != 1):
        reasons.append(f"strides {np.asarray(strides).tolist()} (all must be 1)")
    for key, label in (("ellipsisMask", "ellipsis"), ("newAxisMask", "new-axis")):
        if int(op.options.get(key, 0) or 0):
            reasons.append(f"{label} mask is set")
    return reasons


def _squeeze(model, op, runtime_version):
    if runtime_version > 12:
        return []
    shape = tuple(model.tensors[op.inputs[0]].shape)
    dims = op.options.get("squeezeDims") or [i for i, d in enumerate(shape) if d == 1]
    dims = sorted(int(d) % len(shape) for d in dims)
    if dims != list(range(len(dims))):
        return [f"squeezes non-leading axes {dims}; runtime {runtime_version} needs no relayout"]
    return []


LIMITATION_CHECKS: dict[str, Callable[[TFLiteModel, Operator, int], list[str]]] = {
    "AVERAGE_POOL_2D": _fused_activation,
    "MAX_POOL_2D": _fused_activation,
    "CONCATENATION": _concatenation,
    "CONV_2D": _dilation,
    "DEPTHWISE_CONV_2D": _dilation,
    "FULLY_CONNECTED": _fully_connected,
    "MEAN": _reduce,
    "SUM": _reduce,
    "REDUCE_MAX": _reduce,
    "REDUCE_MIN": _reduce,
    "PAD": _pad,
    "PACK": _batch_axis_option,
    "SPLIT": _split,
    "PRELU": _prelu,
    "RESIZE_BILINEAR": _resize,
    "RESIZE_NEAREST_NEIGHBOR": _resize,
    "SOFTMAX": _softmax,
    "STRIDED_SLICE": _strided_slice,
    "SQUEEZE": _squeeze,
}

# Caveats the table states that no static check can settle.
CAVEATS = {
    "RESIZE_BILINEAR": "depending on input/output size the compiler may leave it on the CPU to "
    "avoid loss in precision",
    "RESIZE_NEAREST_NEIGHBOR": "depending on input/output size the compiler may leave it on the "
    "CPU to avoid loss in precision",
    "RESHAPE": "certain reshapes of large tensors might not be mapped",
}


def check_limitations(model: TFLiteModel, op: Operator, runtime_version: int) -> list[str]:
    """The op's "Known limitations" from Coral's table."""
    fn = LIMITATION_CHECKS.get(op.opcode)
    if fn is None:
        return []
    try:
        return fn(model, op, runtime_version)
    except (IndexError, KeyError, ValueError, ZeroDivisionError):
        # A malformed op (missing inputs): the compiler will not map it either.
        return [f"{op.opcode} does not have the inputs its limitation check expects"]
