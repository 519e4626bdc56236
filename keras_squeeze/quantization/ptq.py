"""Post-training quantization modes applied by the TFLite converter.

One table entry per mode; `configure_converter` is the only place converter
flags are set, so each scheme is stated once, exactly.
"""

from __future__ import annotations

import dataclasses

from keras_squeeze.errors import RecipeError


@dataclasses.dataclass(frozen=True)
class PTQMode:
    """A post-training quantization mode.

    Attributes:
        name: the mode's name ("int8", ...).
        kind: what the mode is ("full integer", ...).
        weights: how the converter stores weights under it (TF 2.21: Conv and
            Dense kernels alike; the report reads what each .tflite holds).
        activations: activations, biases and model I/O.
        needs_calibration: whether representative data is required.
        io_types: allowed model input/output types; the first is the default.
        converts_as: for a mode made by a pass over a converted file, the
            converter mode that file is converted with ("int4-weights": a
            float32 file that ai-edge-quantizer rewrites; "int8-mixed": int8
            calibrated by the converter, re-quantized op by op); None otherwise.
    """

    name: str
    kind: str
    weights: str
    activations: str
    needs_calibration: bool
    io_types: tuple[str, ...]
    converts_as: str | None = None

    @property
    def scheme(self) -> str:
        """The exact numeric scheme, for docs and reports."""
        return f"{self.kind}: weights {self.weights}; {self.activations}"


PTQ_MODES: dict[str, PTQMode] = {
    m.name: m
    for m in (
        PTQMode(
            "float32",
            "no quantization",
            "float32",
            "activations float32",
            False,
            ("float32",),
        ),
        PTQMode(
            "dynamic",
            "dynamic-range",
            "int8 per-channel symmetric (constants under 1,024 elements stay float32)",
            "activations float32, quantized per batch at run time by kernels that support it",
            False,
            ("float32",),
        ),
        PTQMode(
            "float16",
            "float16 weights",
            "float16, dequantized to float32 at load on CPU (the GPU delegate runs them in "
            "float16)",
            "activations float32",
            False,
            ("float32",),
        ),
        PTQMode(
            "int8",
            "full integer",
            "int8 per-channel symmetric",
            "activations int8 per-tensor asymmetric calibrated on representative data, bias "
            "int32; model inputs/outputs int8 or uint8 (or float32 with quantize/dequantize "
            "at the edges)",
            True,
            ("int8", "uint8", "float32"),
        ),
        PTQMode(
            "int16x8",
            "16x8",
            "int8 per-channel symmetric",
            "activations int16 per-tensor symmetric calibrated on representative data, bias "
            "int64; model inputs/outputs float32 or int16",
            True,
            ("float32", "int16"),
        ),
        PTQMode(
            "int4-weights",
            "int4 weights",
            "int4 symmetric blockwise (32 weights per block along the input axis, one float16 "
            "scale each) for FULLY_CONNECTED and EMBEDDING_LOOKUP, by ai-edge-quantizer; other "
            "ops' constants stay float32",
            "activations float32 (the FULLY_CONNECTED kernel quantizes its input per row at run "
            "time)",
            False,
            ("float32",),
            converts_as="float32",
        ),
        PTQMode(
            "int8-mixed",
            "mixed int8",
            "int8 per-channel symmetric; the ops kept float keep float32 weights",
            "activations int8 per-tensor asymmetric calibrated on representative data, except the "
            "most sensitive ops (measured per op), kept float32 until the outputs on the "
            "calibration samples are within the bound of `quantization.mixed`; model "
            "inputs/outputs float32",
            True,
            ("float32",),
            converts_as="int8",
        ),
    )
}


def get_mode(name: str) -> PTQMode:
    """The PTQMode called `name`.

    Raises:
        RecipeError: unknown name.
    """
    try:
        return PTQ_MODES[name]
    except (KeyError, TypeError):
        raise RecipeError(
            f"Unknown quantization mode. Expected one of {', '.join(map(repr, PTQ_MODES))}. "
            f"Received: quantization={name!r}"
        ) from None


def resolve_io_type(mode: PTQMode, value: str | None, argument: str) -> str:
    """The model input/output type for `mode`, checking `value` is allowed."""
    if value is None:
        return mode.io_types[0]
    if value not in mode.io_types:
        raise RecipeError(
            f"{argument} does not fit the '{mode.name}' quantization. Expected one of "
            f"{', '.join(map(repr, mode.io_types))}. Received: {argument}={value!r}"
        )
    return value


def check_inputs(mode: PTQMode | str, specs) -> None:
    """Refuses a mode the model's input dtypes cannot be calibrated under.

    TensorFlow 2.21's 16x8 calibrator records no range for an integer tensor
    (token ids, their casts) and fails ("Max and min for dynamic tensors should
    be recorded during calibration"), whatever the ops after it.

    Raises:
        RecipeError: "int16x8" for a model with an integer input.
    """
    name = mode if isinstance(mode, str) else mode.name
    if name != "int16x8":
        return
    integer = [f"'{s.name}' ({s.dtype})" for s in specs if s.dtype.startswith(("int", "uint"))]
    if integer:
        raise RecipeError(
            f"The 'int16x8' quantization cannot calibrate the integer input {', '.join(integer)}: "
            "TensorFlow's 16x8 calibrator records no range for integer tensors such as token "
            "ids (tensorflow/tensorflow#60799). Expected float inputs for 'int16x8', or another "
            "mode for a token-id model ('int8', 'dynamic', 'float16'). Received: quantization "
            "'int16x8'"
        )


def configure_converter(
    converter,
    mode: PTQMode,
    representative_dataset,
    input_type: str,
    output_type: str,
    sparse: bool = False,
    per_tensor_dense: bool = False,
    allow_tf_ops: bool = False,
):
    """Sets the converter's flags for `mode`.

    Args:
        converter: a `tf.lite.TFLiteConverter`.
        mode: the PTQMode.
        representative_dataset: a callable returning a generator of input
            dicts (required when `mode.needs_calibration`).
        input_type / output_type: model I/O types allowed by the mode.
        sparse: store weights with many zeros in TFLite's sparse format
            (EXPERIMENTAL_SPARSITY; DENSIFY ops restore them at load, and
            XNNPACK can run sparse 1x1 convolutions from them).
        per_tensor_dense: one int8 scale per Dense kernel instead of one per
            output unit. A kernel clustered per tensor then keeps one int8
            code per centroid across the whole kernel; per-channel scales
            would map each centroid to a different code in every row, which
            costs gzip what clustering saved.
        allow_tf_ops: let ops TFLite's builtins lack stay TensorFlow ops
            (SELECT_TF_OPS: the runtime then needs the Flex delegate); in the
            integer modes such ops, and ops without an integer kernel, run in float.
    """
    import tensorflow as tf

    extra = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY] if sparse else []
    if mode.name == "int4-weights":
        mode = PTQ_MODES["float32"]  # the float file; quantization.int4 rewrites it
    if mode.name == "int8-mixed":
        # calibrated as "int8" with float I/O; quantization.mixed quantizes it op by op, and
        # the builtins stay beside the int8 set for the ops it keeps float
        converter.optimizations = [tf.lite.Optimize.DEFAULT, *extra]
        converter._experimental_disable_per_channel_quantization_for_dense_layers = per_tensor_dense
        converter.representative_dataset = representative_dataset
        if allow_tf_ops:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS,
                tf.lite.OpsSet.SELECT_TF_OPS,
            ]
        return converter
    if allow_tf_ops:
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS,
            tf.lite.OpsSet.SELECT_TF_OPS,
        ]
    if mode.name == "float32":
        converter.optimizations = extra
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT, *extra]
    # A documented TFLiteConverter attribute (TF >= 2.14) without a public setter.
    converter._experimental_disable_per_channel_quantization_for_dense_layers = per_tensor_dense
    if mode.name == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode.name == "int8":
        converter.representative_dataset = representative_dataset
        if not allow_tf_ops:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.as_dtype(input_type)
        converter.inference_output_type = tf.as_dtype(output_type)
    elif mode.name == "int16x8":
        converter.representative_dataset = representative_dataset
        ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        # Without SELECT_TF_OPS the builtins are not added beside the 16x8 set: the float
        # fallback they allow gives a file whose int16 tensors reach float-only kernels
        # (SQUARED_DIFFERENCE of a LayerNormalization fails at run time).
        converter.target_spec.supported_ops = (
            [*ops, tf.lite.OpsSet.SELECT_TF_OPS] if allow_tf_ops else ops
        )
        converter.inference_input_type = tf.as_dtype(input_type)
        converter.inference_output_type = tf.as_dtype(output_type)
    return converter
