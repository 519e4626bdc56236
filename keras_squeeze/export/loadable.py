"""Quantized .tflite files LiteRT would abort on, found before an interpreter loads them.

Some kernels check their quantization parameters with a hard assertion when
the interpreter prepares them: a failed check ends the whole process
(SIGABRT), not with an error Python could catch. The converter can write such
parameters when calibration saw a tensor that did not vary: LiteRT's integer
ADD and SUB rescale their inputs to twice the larger input scale and then to
the output scale by a multiplier that must be below 1,

    2 * max(input scales) / (2**left_shift * output scale) < 1

(left_shift 20 for int8 and uint8, 15 for int16 without power-of-two scales;
tensorflow/lite/kernels/add.cc and sub.cc). An output calibrated to a constant
(a LayerNormalization over an axis of size 1, a branch that is always zero
on the calibration data) gets a scale near 0 and breaks it.

`check_loadable` reads the file's quantization parameters (no interpreter)
and raises an ExportError naming the op and the layer instead.
"""

from __future__ import annotations

from keras_squeeze.errors import ExportError

# LiteRT's integer ADD / SUB: the left shift applied before rescaling, by output type.
_LEFT_SHIFT = {"int8": 20, "uint8": 20, "int16": 15}
_RESCALED = ("ADD", "SUB")


def unloadable_ops(content: bytes) -> list[dict]:
    """The ops of a .tflite whose quantization LiteRT's kernels assert against.

    Returns:
        [{"op", "output", "output_scale", "input_scales", "multiplier"}, ...].
    """
    from keras_squeeze.report.tflite_reader import read_tflite

    model = read_tflite(content)
    found = []
    for op in model.operators:
        if op.opcode not in _RESCALED or len(op.inputs) < 2 or not op.outputs:
            continue
        out = model.tensors[op.outputs[0]]
        shift = _LEFT_SHIFT.get(out.dtype)
        if shift is None or out.scales is None or len(out.scales) != 1:
            continue
        if out.dtype == "int16" and op.options.get("potScaleInt16", True):
            continue  # the power-of-two path has no such multiplier
        ins = [model.tensors[i] for i in op.inputs[:2] if i >= 0]
        scales = [float(t.scales[0]) for t in ins if t.scales is not None and len(t.scales)]
        if len(scales) != 2:
            continue
        out_scale = float(out.scales[0])
        multiplier = (
            float("inf") if out_scale <= 0 else 2 * max(scales) / ((1 << shift) * out_scale)
        )
        if multiplier >= 1.0:
            found.append(
                {
                    "op": op.opcode,
                    "output": out.name,
                    "output_scale": out_scale,
                    "input_scales": scales,
                    "multiplier": multiplier,
                }
            )
    return found


def check_loadable(content: bytes, mode_name: str) -> None:
    """Raises ExportError for a quantized .tflite LiteRT would abort the process on."""
    bad = unloadable_ops(content)
    if not bad:
        return
    first = bad[0]
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    raise ExportError(
        f"The '{mode_name}' .tflite cannot be run: its {first['op']} op with output "
        f"'{first['output']}'{more} has an output scale of {first['output_scale']:.3g} against "
        f"input scales of {', '.join(f'{s:.3g}' for s in first['input_scales'])}, which "
        "LiteRT's integer kernel cannot rescale (it would abort the process). This happens "
        "when that output was constant on the calibration data. Expected calibration data on "
        "which every layer's output varies (representative_data= with real inputs) and no "
        "layer whose output is always the same (e.g. a LayerNormalization over an axis of "
        "size 1). Received: a file with a rescaling multiplier of "
        f"{first['multiplier']:.3g} (must be under 1); 'dynamic' or 'float16' need no "
        "calibration."
    )
