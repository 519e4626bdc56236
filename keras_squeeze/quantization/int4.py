"""int4 weights: ai-edge-quantizer rewrites the weight ops of a float32 .tflite.

The "int4-weights" mode converts the model to a float32 .tflite (as the
converter does for "float32") and hands that file to ai-edge-quantizer
(`Quantizer(float_model)` with one recipe entry per op, then `.quantize()`):

- FULLY_CONNECTED and EMBEDDING_LOOKUP kernels whose input axis is a
  multiple of `BLOCK_SIZE`: int4 symmetric blockwise, `BLOCK_SIZE` (32)
  weights per block along the input axis, one float16 scale per block.
  32 rather than 64: a float16 scale per 32 weights costs 0.5 bit per weight
  (4.5 bits in all, 0.14 of float32; 64 gives 4.25 bits), and a block half as
  long shares its scale with half as many neighbours of an outlier weight.
  Measured (benchmarks/RESULTS.md, "mixed"): on a heavy-tailed kernel (the
  outliers of pretrained transformers) 32 keeps 2 dB more weight SQNR (16.8
  vs 14.8 dB) for 6% more bytes; on the briefly trained benchmark encoder,
  which has few outliers, the two agree within noise (28.8 dB both).
  XNNPACK runs it as its blockwise int4 fully-connected kernel (the input
  quantized per row at run time).
- the other FULLY_CONNECTED kernels and CONV_2D kernels: int4 symmetric per
  output channel (ai-edge-quantizer has no blockwise kernel for them).
- everything else (DEPTHWISE_CONV_2D, BATCH_MATMUL between activations,
  GATHER tables of Keras 3 Embedding layers, biases, normalisation
  constants) stays float32: ai-edge-quantizer 0.10 has no int4 recipe for
  them. The report's per-op precision table says which ops hold int4.

The activations stay float32 between ops.

Example:
    >>> content = quantize(float_content)            # every supported weight op
    >>> errors = layer_errors(model, samples)        # {layer: SQNR dB with only it int4}
"""

from __future__ import annotations

import dataclasses
import re

from keras_squeeze.errors import DependencyError, RecipeError

BLOCK_SIZE = 32
# ops with a constant weight ai-edge-quantizer 0.10 stores in int4 (its default policy)
BLOCKWISE_OPS = ("FULLY_CONNECTED", "EMBEDDING_LOOKUP")
CHANNELWISE_OPS = ("FULLY_CONNECTED", "CONV_2D")


def import_quantizer():
    """The ai_edge_quantizer modules (quantizer, qtyping, tfl_flatbuffer_utils), imported now."""
    try:
        from ai_edge_quantizer import qtyping, quantizer
        from ai_edge_quantizer.utils import tfl_flatbuffer_utils
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise DependencyError(
            "int4 weights need ai-edge-quantizer. Expected it installed "
            "(pip install 'ai-edge-quantizer>=0.10,<0.11'). "
            f"Received: ImportError: {e}"
        ) from e
    return quantizer, qtyping, tfl_flatbuffer_utils


@dataclasses.dataclass(frozen=True)
class WeightOp:
    """One op of a float .tflite whose constant weight can be stored in int4.

    Attributes:
        index: the operator's index in the main subgraph.
        opcode: "FULLY_CONNECTED", "EMBEDDING_LOOKUP" or "CONV_2D".
        weight: the index of its weight tensor.
        output: the name of its first output tensor.
        granularity: "BLOCKWISE_32" or "CHANNELWISE".
    """

    index: int
    opcode: str
    weight: int
    output: str
    granularity: str


def weight_ops(content: bytes) -> list[WeightOp]:
    """The ops of a float .tflite that `quantize` stores in int4, in execution order."""
    from keras_squeeze.report.tflite_reader import read_tflite

    model = read_tflite(content)
    found = []
    for op in model.operators:
        if op.opcode not in (*BLOCKWISE_OPS, *CHANNELWISE_OPS) or len(op.inputs) < 2:
            continue
        w = op.inputs[1]
        if w < 0 or not op.outputs:
            continue
        tensor = model.tensors[w]
        if not tensor.is_constant or tensor.dtype != "float32" or len(tensor.shape) < 2:
            continue
        blockwise = op.opcode in BLOCKWISE_OPS and tensor.shape[-1] % BLOCK_SIZE == 0
        if not blockwise and op.opcode not in CHANNELWISE_OPS:
            continue
        found.append(
            WeightOp(
                index=op.index,
                opcode=op.opcode,
                weight=w,
                output=model.tensors[op.outputs[0]].name,
                granularity=f"BLOCKWISE_{BLOCK_SIZE}" if blockwise else "CHANNELWISE",
            )
        )
    return found


def _no_weight_op_error(content: bytes) -> RecipeError:
    from keras_squeeze.report.tflite_reader import read_tflite

    counts = read_tflite(content).opcode_counts()
    ops = ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(counts.items())) or "none"
    return RecipeError(
        "The 'int4-weights' quantization found no weight op ai-edge-quantizer can store in "
        "int4. Expected a model with Dense, EinsumDense or Conv2D kernels (FULLY_CONNECTED, "
        "EMBEDDING_LOOKUP or CONV_2D ops with a float32 constant weight), or another mode "
        f"('dynamic', 'float16', 'int8'). Received: a float .tflite of ops {ops}"
    )


def quantize(content: bytes, ops: list[WeightOp] | None = None, verbose: int = 0) -> bytes:
    """The float .tflite `content` with the weights of `ops` (default: every
    `weight_ops(content)`) stored in int4.

    Raises:
        RecipeError: the file has none of the weight ops ai-edge-quantizer stores in int4.
        ExportError: ai-edge-quantizer failed.
    """
    from keras_squeeze.core.native_output import NativeOutput
    from keras_squeeze.errors import ExportError

    if ops is None:
        ops = weight_ops(content)
    if not ops:
        raise _no_weight_op_error(content)
    quantizer, qtyping, fb_utils = import_quantizer()
    log = NativeOutput(enabled=verbose < 2)
    try:
        with log:
            q = quantizer.Quantizer(bytearray(content))
            # each op's scope as ai-edge-quantizer names it (its output tensors' names)
            graph = fb_utils.read_model(bytearray(content)).subgraphs[0]
            for op in ops:
                scope = fb_utils.get_op_scope(graph.operators[op.index], graph.tensors)
                q.add_dynamic_config(
                    f"^{re.escape(scope)}$",
                    qtyping.TFLOperationName(op.opcode),
                    4,
                    qtyping.QuantGranularity(op.granularity),
                )
            result = q.quantize(enable_progress_report=False, enable_progress_bar=False)
        out = bytes(result.quantized_model)
    except Exception as e:
        raise ExportError(
            "ai-edge-quantizer failed to store the weights in int4. Expected the float .tflite "
            f"to quantize. Received: {type(e).__name__}: {str(e)[:400]}"
        ) from e
    if int4_tensor_count(out) == 0:
        raise _no_weight_op_error(content)
    return out


def int4_tensor_count(content: bytes) -> int:
    """How many int4 constants a .tflite holds."""
    from keras_squeeze.report.tflite_reader import read_tflite

    return sum(1 for t in read_tflite(content).tensors if t.dtype == "int4" and t.is_constant)


def layer_errors(model, samples, float_content: bytes | None = None) -> dict[str, float]:
    """The error int4 weights add, per Keras layer: SQNR (dB, the lowest over the outputs)
    of the model's outputs on `samples` when only that layer's weight op is stored in int4
    (as "int4-weights" stores it), against the float32 .tflite.

    For the sensitivity table's int4 column: a higher figure is a layer that takes int4
    better. Layers without a weight op ai-edge-quantizer stores in int4 are absent.

    Args:
        model: a Keras model (either flavour) with defined inputs.
        samples: a `keras_squeeze.data.inputs.Samples` of its inputs (a few are enough).
        float_content: its float32 .tflite, when already converted.

    Example:
        >>> layer_errors(model, samples)
        {'dense': 38.2, 'dense_1': 41.0}
    """
    from keras_squeeze.core import models
    from keras_squeeze.export import tflite as tflite_export
    from keras_squeeze.export.runtime import TFLiteRunner
    from keras_squeeze.report.layers import match_layers
    from keras_squeeze.report.metrics import compare
    from keras_squeeze.report.tflite_reader import read_tflite

    if float_content is None:
        float_content = tflite_export.convert(model, "float32")
    ops = {op.weight: op for op in weight_ops(float_content)}
    matches = match_layers(list(models.walk_layers(model)), read_tflite(float_content))
    in_names = [s.name for s in models.input_specs(model)]
    out_names = models.output_names(model)
    reference = TFLiteRunner(content=float_content).run(samples, in_names, out_names)
    errors = {}
    for layer, tensors in matches.items():
        chosen = [ops[t.index] for t in tensors if t.index in ops]
        if not chosen:
            continue
        content = quantize(float_content, chosen)
        outputs = TFLiteRunner(content=content).run(samples, in_names, out_names)
        errors[layer] = float(compare(reference, outputs, out_names, "").sqnr_db)
    return errors


def describe_ops(ops: list[WeightOp]) -> str:
    """E.g. "FULLY_CONNECTED blockwise-32 x3, CONV_2D per-channel x1"."""
    counts: dict[str, int] = {}
    for op in ops:
        kind = f"blockwise-{BLOCK_SIZE}" if op.granularity.startswith("BLOCK") else "per-channel"
        key = f"{op.opcode} {kind}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k} x{n}" for k, n in counts.items())
