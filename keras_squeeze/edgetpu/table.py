"""What the Edge TPU compiler maps, and which operator versions it can load.

Two tables, both plain data:

- `EDGETPU_OPS`: the operations the Edge TPU executes, each with the Edge TPU
  runtime version that introduced it and its documented limitations, from
  "Supported operations" of https://coral.ai/docs/edgetpu/models-intro/
  (read 2025 through the search tools; the page describes compiler 16.0 and
  runtime 14, the last releases, July 2021). The ops and limitation texts match
  the copy at https://developer.axis.com/computer-vision/on-device/system-on-chip/artpec-7/supported-ops/
  (an Edge TPU SoC); the runtime-13 additions (ExpandDims, Pack, Quantize,
  Sum, TransposeConv) match google-coral/edgetpu CHANGES.md ("Edge TPU
  runtime v13 and compiler 2.0.291256449 (January 2020)").

- `COMPILER_MAX_VERSIONS`: the highest version of every builtin operator that
  edgetpu_compiler 16.0.384591198 can load. The compiler embeds TensorFlow
  Lite 2.5 (Coral shipped tflite_runtime 2.5.0.post1 with compiler/runtime
  16); this is that release's `BuiltinOpResolver`
  (tensorflow/lite/kernels/register.cc as built in
  github.com/barbolo/tflite_runtime_build for tflite_runtime 2.5.0, commit
  d9597285d1091c6c0a2b7dd546ca0f8d5a66c582). It agrees with every load
  failure reported for compiler 16.0: CONV_2D version 6
  (google-coral/edgetpu#631), TRANSPOSE_CONV version 4 (#845), EXP version 2
  (google-coral/libedgetpu#71), and GELU (builtin code 150: "Op builtin_code
  out of range"). A newer version, or a builtin this table lacks, stops the
  compiler before it compiles anything ("Didn't find op for builtin opcode
  ... / Model could not be parsed").
"""

from __future__ import annotations

import dataclasses

SOURCE_OPS = "https://coral.ai/docs/edgetpu/models-intro/#supported-operations"
SOURCE_VERSIONS = (
    "TensorFlow Lite 2.5.0 BuiltinOpResolver (tensorflow/lite/kernels/register.cc), the "
    "TFLite inside edgetpu_compiler 16.0.384591198"
)
COMPILER_VERSION = "16.0.384591198"
# The Edge TPU runtime released with compiler 16 (coral.ai/news/updates-07-2021).
DEFAULT_RUNTIME_VERSION = 14
# The last builtin code in TFLite 2.5's schema (HASHTABLE_SIZE); higher codes
# make the compiler print "Op builtin_code out of range".
MAX_BUILTIN_CODE = 139


@dataclasses.dataclass(frozen=True)
class EdgeTPUOp:
    """One row of the Edge TPU's supported-operations table.

    Attributes:
        name: the operation's name in Coral's table ("Conv2d").
        runtime: the Edge TPU runtime version that first maps it.
        limitations: Coral's "Known limitations" text, for the runtime in use.
        old_limitations: the text for runtimes before 13, where it differs.
    """

    name: str
    runtime: int = 0
    limitations: str = ""
    old_limitations: str | None = None

    def limitation_text(self, runtime_version: int) -> str:
        if runtime_version <= 12 and self.old_limitations is not None:
            return self.old_limitations
        return self.limitations


_NO_FUSED = "No fused activation function."
_RESIZE = (
    "Input/output is a 3-dimensional tensor. Depending on input/output size, this operation "
    "might not be mapped to the Edge TPU to avoid loss in precision."
)

# Keyed by TFLite builtin operator name.
EDGETPU_OPS: dict[str, EdgeTPUOp] = {
    "ADD": EdgeTPUOp("Add"),
    "AVERAGE_POOL_2D": EdgeTPUOp("AveragePool2d", limitations=_NO_FUSED),
    "CONCATENATION": EdgeTPUOp(
        "Concatenation",
        limitations=_NO_FUSED + " If any input is a compile-time constant tensor, there must be "
        "only 2 inputs, and this constant tensor must be all zeroes (effectively, a zero-padding "
        "op).",
    ),
    "CONV_2D": EdgeTPUOp("Conv2d", limitations="Must use the same dilation in x and y dimensions."),
    "DEPTHWISE_CONV_2D": EdgeTPUOp(
        "DepthwiseConv2d",
        limitations="Must use the same dilation in x and y dimensions.",
        old_limitations="Dilated conv kernels are not supported.",
    ),
    "EXPAND_DIMS": EdgeTPUOp("ExpandDims", runtime=13),
    "FULLY_CONNECTED": EdgeTPUOp(
        "FullyConnected",
        limitations="Only the default format is supported for fully-connected weights. Output "
        "tensor is one-dimensional.",
    ),
    "L2_NORMALIZATION": EdgeTPUOp("L2Normalization"),
    "LOGISTIC": EdgeTPUOp("Logistic"),
    "LSTM": EdgeTPUOp("LSTM", runtime=14, limitations="Unidirectional LSTM only."),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": EdgeTPUOp(
        "LSTM", runtime=14, limitations="Unidirectional LSTM only."
    ),
    "MAXIMUM": EdgeTPUOp("Maximum"),
    "MAX_POOL_2D": EdgeTPUOp("MaxPool2d", limitations=_NO_FUSED),
    "MEAN": EdgeTPUOp(
        "Mean",
        limitations="No reduction in batch dimension. If a z-reduction, the z-dimension must be "
        "multiple of 4.",
        old_limitations="No reduction in batch dimension. Supports reduction along x- and/or "
        "y-dimensions only.",
    ),
    "MINIMUM": EdgeTPUOp("Minimum"),
    "MUL": EdgeTPUOp("Mul"),
    "PACK": EdgeTPUOp("Pack", runtime=13, limitations="No packing in batch dimension."),
    "PAD": EdgeTPUOp(
        "Pad",
        limitations="No padding in batch dimension.",
        old_limitations="Supports padding along x- and/or y-dimensions only.",
    ),
    "PRELU": EdgeTPUOp(
        "PReLU",
        runtime=13,
        limitations="Alpha must be 1-dimensional (only the innermost dimension can be >1 size). "
        "If using Keras PReLU with 4D input (batch, height, width, channels), then shared_axes "
        "must be [1,2] so each filter has only one set of parameters.",
    ),
    "QUANTIZE": EdgeTPUOp("Quantize", runtime=13),
    "REDUCE_MAX": EdgeTPUOp(
        "ReduceMax", runtime=14, limitations="Cannot operate on the batch dimension."
    ),
    "REDUCE_MIN": EdgeTPUOp(
        "ReduceMin", runtime=14, limitations="Cannot operate on the batch dimension."
    ),
    "RELU": EdgeTPUOp("ReLU"),
    "RELU6": EdgeTPUOp("ReLU6"),
    "RELU_N1_TO_1": EdgeTPUOp("ReLUN1To1"),
    "RESHAPE": EdgeTPUOp(
        "Reshape", limitations="Certain reshapes might not be mapped for large tensor sizes."
    ),
    "RESIZE_BILINEAR": EdgeTPUOp("ResizeBilinear", limitations=_RESIZE),
    "RESIZE_NEAREST_NEIGHBOR": EdgeTPUOp("ResizeNearestNeighbor", limitations=_RESIZE),
    "RSQRT": EdgeTPUOp("Rsqrt", runtime=14),
    "SLICE": EdgeTPUOp("Slice"),
    "SOFTMAX": EdgeTPUOp(
        "Softmax", limitations="Supports only 1-D input tensor with a max of 16,000 elements."
    ),
    "SPACE_TO_DEPTH": EdgeTPUOp("SpaceToDepth"),
    "SPLIT": EdgeTPUOp("Split", limitations="No splitting in batch dimension."),
    "SQUEEZE": EdgeTPUOp(
        "Squeeze",
        limitations="",
        old_limitations="Supported only when input tensor dimensions that have leading 1s (that "
        "is, no relayout needed). For example input tensor with [y][x][z] = 1,1,10 or 1,5,10 is "
        "ok. But [y][x][z] = 5,1,10 is not supported.",
    ),
    "STRIDED_SLICE": EdgeTPUOp(
        "StridedSlice",
        limitations="Supported only when all strides are equal to 1 (that is, effectively a "
        "Stride op), and with ellipsis-axis-mask == 0, and new-axis-max == 0.",
    ),
    "SUB": EdgeTPUOp("Sub"),
    "SUM": EdgeTPUOp("Sum", runtime=13, limitations="Cannot operate on the batch dimension."),
    "SQUARED_DIFFERENCE": EdgeTPUOp("Squared-difference", runtime=14),
    "TANH": EdgeTPUOp("Tanh"),
    "TRANSPOSE": EdgeTPUOp("Transpose", runtime=14),
    "TRANSPOSE_CONV": EdgeTPUOp("TransposeConv", runtime=13),
}

# Inputs that must be compile-time constants ("Model parameters (such as bias
# tensors) are constant at compile-time"), by input position.
PARAMETER_INPUTS: dict[str, tuple[int, ...]] = {
    "CONV_2D": (1, 2),
    "DEPTHWISE_CONV_2D": (1, 2),
    "FULLY_CONNECTED": (1, 2),
    "TRANSPOSE_CONV": (0, 1, 3),  # output shape, filter, bias
    "RESHAPE": (1,),
    "PAD": (1,),
    "MEAN": (1,),
    "SUM": (1,),
    "REDUCE_MAX": (1,),
    "REDUCE_MIN": (1,),
    "SPLIT": (0,),
    "SLICE": (1, 2),
    "STRIDED_SLICE": (1, 2, 3),
    "EXPAND_DIMS": (1,),
    "TRANSPOSE": (1,),
    "RESIZE_BILINEAR": (1,),
    "RESIZE_NEAREST_NEIGHBOR": (1,),
    "PRELU": (1,),
}
# Of those, the weights (8-bit like activations) and the biases (int32).
WEIGHT_INPUTS: dict[str, tuple[int, ...]] = {
    "CONV_2D": (1,),
    "DEPTHWISE_CONV_2D": (1,),
    "FULLY_CONNECTED": (1,),
    "TRANSPOSE_CONV": (1,),
    "PRELU": (1,),
}
BIAS_INPUTS: dict[str, tuple[int, ...]] = {
    "CONV_2D": (2,),
    "DEPTHWISE_CONV_2D": (2,),
    "FULLY_CONNECTED": (2,),
    "TRANSPOSE_CONV": (3,),
}

# Highest loadable version per builtin (TFLite 2.5.0 BuiltinOpResolver).
# A builtin registered without a version range loads version 1 only.
COMPILER_MAX_VERSIONS: dict[str, int] = {
    "ABS": 3, "HARD_SWISH": 1, "RELU": 3, "RELU_N1_TO_1": 1, "RELU6": 3, "TANH": 3,
    "LOGISTIC": 3, "AVERAGE_POOL_2D": 3, "MAX_POOL_2D": 3, "L2_POOL_2D": 1, "CONV_2D": 5,
    "DEPTHWISE_CONV_2D": 6, "SVDF": 4, "RNN": 3, "BIDIRECTIONAL_SEQUENCE_RNN": 3,
    "UNIDIRECTIONAL_SEQUENCE_RNN": 3, "EMBEDDING_LOOKUP": 3, "EMBEDDING_LOOKUP_SPARSE": 1,
    "FULLY_CONNECTED": 9, "LSH_PROJECTION": 1, "HASHTABLE_LOOKUP": 1, "SOFTMAX": 3,
    "CONCATENATION": 3, "ADD": 3, "SPACE_TO_BATCH_ND": 3, "BATCH_TO_SPACE_ND": 3, "MUL": 4,
    "L2_NORMALIZATION": 2, "LOCAL_RESPONSE_NORMALIZATION": 1, "LSTM": 4,
    "BIDIRECTIONAL_SEQUENCE_LSTM": 3, "UNIDIRECTIONAL_SEQUENCE_LSTM": 3, "PAD": 3, "PADV2": 3,
    "RESHAPE": 1, "RESIZE_BILINEAR": 4, "RESIZE_NEAREST_NEIGHBOR": 4, "SKIP_GRAM": 1,
    "SPACE_TO_DEPTH": 2, "DEPTH_TO_SPACE": 2, "GATHER": 5, "TRANSPOSE": 5, "MEAN": 3, "DIV": 2,
    "SUB": 5, "SPLIT": 4, "SPLIT_V": 2, "SQUEEZE": 2, "STRIDED_SLICE": 5, "EXP": 1, "TOPK_V2": 2,
    "LOG": 1, "LOG_SOFTMAX": 2, "CAST": 1, "DEQUANTIZE": 4, "PRELU": 1, "MAXIMUM": 4,
    "MINIMUM": 4, "ARG_MAX": 2, "ARG_MIN": 2, "GREATER": 2, "GREATER_EQUAL": 2, "LESS": 2,
    "LESS_EQUAL": 2, "FLOOR": 1, "CEIL": 1, "ROUND": 1, "NEG": 1, "SELECT": 2, "SELECT_V2": 1,
    "SLICE": 5, "SIN": 1, "COS": 1, "TRANSPOSE_CONV": 3, "TILE": 2, "SUM": 2, "REDUCE_PROD": 1,
    "REDUCE_MAX": 3, "REDUCE_MIN": 3, "REDUCE_ANY": 1, "EXPAND_DIMS": 1, "SPARSE_TO_DENSE": 3,
    "EQUAL": 3, "NOT_EQUAL": 3, "SQRT": 1, "RSQRT": 2, "SHAPE": 1, "RANK": 1, "POW": 1,
    "FAKE_QUANT": 2, "PACK": 3, "ONE_HOT": 1, "LOGICAL_OR": 1, "LOGICAL_AND": 1,
    "LOGICAL_NOT": 1, "UNPACK": 4, "FLOOR_DIV": 2, "SQUARE": 1, "ZEROS_LIKE": 1, "FLOOR_MOD": 1,
    "RANGE": 1, "LEAKY_RELU": 2, "SQUARED_DIFFERENCE": 2, "FILL": 3, "MIRROR_PAD": 2,
    "UNIQUE": 1, "REVERSE_V2": 3, "ADD_N": 1, "GATHER_ND": 3, "WHERE": 1, "ELU": 1,
    "REVERSE_SEQUENCE": 1, "MATRIX_DIAG": 1, "QUANTIZE": 2, "MATRIX_SET_DIAG": 1, "IF": 1,
    "WHILE": 1, "NON_MAX_SUPPRESSION_V4": 1, "NON_MAX_SUPPRESSION_V5": 1, "SCATTER_ND": 1,
    "DENSIFY": 1, "SEGMENT_SUM": 1, "BATCH_MATMUL": 4, "CUMSUM": 1, "BROADCAST_TO": 3,
    "CALL_ONCE": 1, "RFFT2D": 1, "CONV_3D": 1, "IMAG": 1, "REAL": 1, "COMPLEX_ABS": 1,
    "HASHTABLE": 1, "HASHTABLE_FIND": 1, "HASHTABLE_IMPORT": 1, "HASHTABLE_SIZE": 1,
}  # fmt: skip

# Custom ops TFLite 2.5's resolver registers (the compiler loads them and
# leaves them on the CPU).
COMPILER_CUSTOM_OPS = frozenset(
    {"NumericVerify", "Mfcc", "AudioSpectrogram", "TFLite_Detection_PostProcess"}
)
