"""The int8 error probe: what each layer's full-integer quantization adds, per layer.

TFLite's `tf.lite.experimental.QuantizationDebugger` calibrates the model as
the "int8" recipe does (int8 weights per-channel symmetric, int8 activations
per-tensor asymmetric) and builds a debug model in which every quantized op
is followed by a NumericVerify op comparing its dequantized output with the
same op run in float on the same (dequantized) inputs: the error that op's own
quantization adds, not the error accumulated before it. The debug model is run
with every tensor preserved, so each op's float output and quantized output
are both read (`layer_direct_compare_metrics`); per layer:

- sqnr_db: 10 log10(sum f^2 / sum (f - q)^2) over the debug samples;
- rmse: sqrt(mean (f - q)^2).

Ops are mapped to Keras layers by their weights: an op whose constant input
matches a layer's kernel by value (`report.layers.similarity`, as the
report's per-layer table does) belongs to that layer; else by the name
scopes of its output tensor (`bench.op_layers.layers_of_tensor`). A layer
with several ops (attention's projections) sums their signal and noise.

The debugger runs its debug model in TensorFlow's own (deprecated)
`tf.lite.Interpreter`, the runtime that has the NumericVerify op; every file
keras_squeeze deploys is verified in ai_edge_litert as before. Recurrent
layers are calibrated on an unrolled copy (`export.recurrent.prepare`), as
compress() converts them.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from keras_squeeze.core import models
from keras_squeeze.core.native_output import NativeOutput
from keras_squeeze.core.progress import say
from keras_squeeze.export import recurrent
from keras_squeeze.export.signature import converter_for
from keras_squeeze.layer_sensitivity.probes import (
    ErrorProbe,
    ProbeContext,
    ProbeResult,
    register_error_probe,
)
from keras_squeeze.quantization import ptq
from keras_squeeze.report.layers import MATCH_THRESHOLD, kernels, similarity
from keras_squeeze.report.tflite_reader import read_tflite

_VERIFY_PREFIX = "NumericVerify/"


def _signal(f, q, scale, zero_point) -> float:
    return float(np.sum(np.square(f.astype(np.float64))))


def _noise(f, q, scale, zero_point) -> float:
    real = (q.astype(np.float64) - zero_point) * scale
    return float(np.sum(np.square(f.astype(np.float64) - real)))


def _count(f, q, scale, zero_point) -> float:
    return float(f.size)


def _converter(model, calibration):
    specs = models.input_specs(model)

    def representative():
        for i in range(calibration.count):
            yield {s.name: calibration.inputs[k][i : i + 1] for k, s in enumerate(specs)}

    converter = converter_for(model)
    # Float model I/O: the debugger feeds and reads float tensors.
    return ptq.configure_converter(
        converter, ptq.get_mode("int8"), representative, "float32", "float32"
    )


def _input_order(tflite_model, specs) -> list[int]:
    """For each .tflite input, the index of the Keras input it is (by name; else in order)."""
    names = [tflite_model.tensors[i].name for i in tflite_model.inputs]
    order = []
    for position, name in enumerate(names):
        base = name.split(":")[0]  # e.g. "serving_default_features"
        found = [k for k, s in enumerate(specs) if base == s.name or base.endswith(f"_{s.name}")]
        found.sort(key=lambda k: len(specs[k].name))
        order.append(found[-1] if found else position)
    return order if sorted(order) == list(range(len(specs))) else list(range(len(specs)))


def _op_layers(tflite_model, layers: dict, model_name: str) -> dict[int, str]:
    """{output tensor index: layer name} for the ops of the layers measured."""
    from keras_squeeze.bench.op_layers import layers_of_tensor

    layer_kernels = {name: kernels(layer) for name, layer in layers.items()}
    by_size: dict[int, list[tuple[str, np.ndarray]]] = {}
    for name, ks in layer_kernels.items():
        for k in ks:
            by_size.setdefault(int(k.size), []).append((name, k))
    found: dict[int, str] = {}
    for op in tflite_model.operators:
        if op.opcode.startswith("NumericVerify") or not op.outputs:
            continue
        best, owner = 0.0, None
        for i in op.inputs:
            t = tflite_model.tensors[i] if i >= 0 else None
            if t is None or not t.is_constant or t.data.size <= 1:
                continue
            values = None
            for name, k in by_size.get(int(t.data.size), []):
                values = t.values() if values is None else values
                score = similarity(k, values)
                if score >= MATCH_THRESHOLD and score > best:
                    best, owner = score, name
        if owner is None:
            named = layers_of_tensor(
                tflite_model.tensors[op.outputs[0]].name, list(layers), model_name
            )
            owner = named[0] if named else None
        if owner is not None:
            for out in op.outputs:
                found[out] = owner
    return found


def measure(ctx: ProbeContext) -> ProbeResult:
    """Per-layer SQNR and RMSE of full-integer int8 quantization (see the module docstring).

    Raises:
        ExportError: the model would calibrate a recurrent WHILE loop.
        Exception: whatever the converter or the debugger raise (the caller
            leaves the column empty with the reason).
    """
    import tensorflow as tf

    model = ctx.model
    if recurrent.find(model):  # a WHILE loop would crash the calibrator: unrolled or fused
        model = recurrent.prepare(model, "int8", ctx.debug, fuse=False).model
    recurrent.check_calibration_safe(model, "int8")
    say(
        ctx.verbose,
        f"sensitivity: int8 per-layer error (QuantizationDebugger), calibrated on "
        f"{ctx.calibration.describe()}, measured on {ctx.debug.describe()}",
    )
    log = NativeOutput(enabled=ctx.verbose < 2)
    with log, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        warnings.filterwarnings("ignore", message=r".*tf\.lite\.Interpreter is deprecated.*")
        # Asked for: the debugger compares each op's float and quantized outputs.
        warnings.filterwarnings("ignore", message=r".*experimental_preserve_all_tensors")
        converter = _converter(model, ctx.calibration)
        debug_model = _debug_model(tf, converter, ctx)
        tflite_model = read_tflite(debug_model)
        order = _input_order(tflite_model, models.input_specs(model))
        debug = ctx.debug

        def dataset():
            for i in range(debug.count):
                yield [debug.inputs[k][i : i + 1] for k in order]

        options = tf.lite.experimental.QuantizationDebugOptions(
            layer_direct_compare_metrics={"signal": _signal, "noise": _noise, "count": _count}
        )
        # From the model's bytes, the debugger keeps every tensor (the float and quantized
        # outputs it compares would otherwise share memory with later ops).
        debugger = tf.lite.experimental.QuantizationDebugger(
            quant_debug_model_content=debug_model, debug_dataset=dataset, debug_options=options
        )
        debugger.run()
    owners = _op_layers(tflite_model, ctx.layers, model.name)
    sums: dict[str, list[float]] = {}
    for name, stats in debugger.layer_statistics.items():
        if not name.startswith(_VERIFY_PREFIX):
            continue
        index = int(name.rsplit(":", 1)[1])
        owner = owners.get(index)
        if owner is None:
            continue
        acc = sums.setdefault(owner, [0.0, 0.0, 0.0])
        acc[0] += float(stats["signal"])
        acc[1] += float(stats["noise"])
        acc[2] += float(stats["count"])
    result = {}
    for owner, (signal, noise, count) in sums.items():
        if signal == 0.0:
            sqnr = None  # nothing passed through this op on the debug samples
        elif noise == 0.0:
            sqnr = math.inf
        else:
            sqnr = 10.0 * math.log10(signal / noise)
        result[owner] = {"sqnr_db": sqnr, "rmse": math.sqrt(noise / count) if count else None}
    notes = [
        "int8: full-integer quantization as the 'int8' recipe (weights int8 per-channel "
        "symmetric, activations int8 per-tensor asymmetric); each layer's error is its own "
        "op's quantized output against the same op in float on the same inputs "
        "(TFLite's QuantizationDebugger)"
    ]
    missing = [n for n in ctx.layers if n not in result]
    if missing:
        notes.append(
            "int8: no quantized op of " + ", ".join(f"'{n}'" for n in missing[:8]) + " was found "
            "in the debug model (left in float, folded into another op, or not matched)"
        )
    return ProbeResult(result, notes)


def _debug_model(tf, converter, ctx) -> bytes:
    """The calibrated model with NumericVerify ops after every quantized op."""
    calibrated = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=lambda: iter(()),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(),
    )
    return bytes(calibrated.get_debug_quantized_model())


register_error_probe(ErrorProbe("int8", "int8", measure))
