"""Runs a Keras model and its exports on the same samples, outputs in the same order.

Each runner takes float inputs (one array per model input, in the model's input
order) and returns float outputs in the model's output order, quantizing and
dequantizing at the edges of integer-I/O models.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Sequence

import numpy as np

from keras_squeeze.core.native_output import NativeOutput
from keras_squeeze.data.inputs import Samples, batched_call


@dataclasses.dataclass(frozen=True)
class QuantParams:
    """Affine quantization of one model input or output: real = (q - zero_point) * scale."""

    dtype: str
    scale: float
    zero_point: int

    def quantize(self, x: np.ndarray) -> np.ndarray:
        info = np.iinfo(self.dtype)
        q = np.round(np.asarray(x, np.float32) / self.scale) + self.zero_point
        return np.clip(q, info.min, info.max).astype(self.dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return ((np.asarray(q).astype(np.float32) - self.zero_point) * self.scale).astype(
            np.float32
        )


def quant_params(detail: dict) -> QuantParams | None:
    dtype = np.dtype(detail["dtype"])
    scale, zero = detail.get("quantization", (0.0, 0))
    if dtype.kind in "iu" and scale:
        return QuantParams(dtype.name, float(scale), int(zero))
    return None


def match_names(wanted: Sequence[str], available: Sequence[str]) -> list[str]:
    """Orders `available` names to follow `wanted` (model names).

    An exact match wins, then a name that contains the wanted one as a token
    ("serving_default_img:0" for "img"), then an `output_N` index, then order.
    """
    if len(wanted) != len(available):
        raise ValueError(f"Name counts differ: {list(wanted)} vs {list(available)}")
    if len(available) == 1:
        return list(available)
    remaining = list(available)
    result: list[str | None] = [None] * len(wanted)
    for i, w in enumerate(wanted):
        if w in remaining:
            result[i] = w
            remaining.remove(w)
    for i, w in enumerate(wanted):
        if result[i] is not None:
            continue
        token = re.compile(rf"(^|[^A-Za-z0-9]){re.escape(w)}(:\d+)?$")
        hits = [a for a in remaining if token.search(a)]
        if len(hits) == 1:
            result[i] = hits[0]
            remaining.remove(hits[0])
    indexed = {int(m.group(1)): a for a in remaining if (m := re.fullmatch(r"output_(\d+)", a))}
    for i in range(len(wanted)):
        if result[i] is None and i in indexed:
            result[i] = indexed[i]
            remaining.remove(indexed[i])
    for i in range(len(wanted)):
        if result[i] is None:
            result[i] = remaining.pop(0)
    return [r for r in result if r is not None]


class TFLiteRunner:
    """Runs a .tflite (bytes or path) with ai_edge_litert's signature runner."""

    def __init__(
        self, content: bytes | None = None, path: str | None = None, num_threads: int | None = None
    ):
        from ai_edge_litert.interpreter import Interpreter

        # LiteRT's first allocation in a process applies the XNNPACK delegate,
        # which prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        # to descriptor 2: allocate here, inside the capture. A model with free
        # dimensions may allocate only at real input shapes, which run() sets.
        log = NativeOutput()
        try:
            with log:
                self.interpreter = Interpreter(
                    model_content=content, model_path=path, num_threads=num_threads
                )
                with contextlib.suppress(RuntimeError, ValueError):
                    self.interpreter.allocate_tensors()
        except Exception:
            log.replay()
            raise
        signatures = self.interpreter.get_signature_list()
        self.signature = next(iter(signatures)) if signatures else None
        if self.signature is None:
            raise ValueError("The .tflite has no signature")
        self.runner = self.interpreter.get_signature_runner(self.signature)
        self.input_details = self.runner.get_input_details()
        self.output_details = self.runner.get_output_details()

    @property
    def batch_size(self) -> int | None:
        """The batch size the file fixes (1 for a deployable .tflite), or None when free."""
        batches = {int(d["shape_signature"][0]) for d in self.input_details.values()}
        fixed = [b for b in batches if b > 0]
        return fixed[0] if fixed and len(batches) == 1 else None

    def input_quant(self, model_input_names: Sequence[str]) -> list[QuantParams | None]:
        names = match_names(model_input_names, list(self.input_details))
        return [quant_params(self.input_details[n]) for n in names]

    def output_quant(self, model_output_names: Sequence[str]) -> list[QuantParams | None]:
        names = match_names(model_output_names, list(self.output_details))
        return [quant_params(self.output_details[n]) for n in names]

    def run(
        self,
        samples: Samples,
        input_names: Sequence[str],
        output_names: Sequence[str],
        batch_size: int = 64,
    ):
        in_names = match_names(input_names, list(self.input_details))
        out_names = match_names(output_names, list(self.output_details))
        in_q = [quant_params(self.input_details[n]) for n in in_names]
        out_q = [quant_params(self.output_details[n]) for n in out_names]
        in_dtypes = [np.dtype(self.input_details[n]["dtype"]) for n in in_names]

        def run(batch):
            feed = {}
            for name, q, dtype, x in zip(in_names, in_q, in_dtypes, batch, strict=True):
                feed[name] = q.quantize(x) if q is not None else np.asarray(x).astype(dtype)
            # A fused recurrent op (UNIDIRECTIONAL_SEQUENCE_LSTM) keeps its state in
            # variable tensors across invocations; a Keras call starts from zeros.
            self.interpreter.reset_all_variables()
            result = self.runner(**feed)
            return [
                q.dequantize(result[n]) if q is not None else np.asarray(result[n], np.float32)
                for n, q in zip(out_names, out_q, strict=True)
            ]

        if self.batch_size is not None:
            return batched_call(run, samples, self.batch_size)
        try:
            return batched_call(run, samples, batch_size)
        except (ValueError, RuntimeError):
            # Some graphs fix the batch size at 1 (e.g. reshapes to constant shapes).
            return batched_call(run, samples, 1)


def onnx_outputs(
    model_path: str,
    samples: Samples,
    input_names: Sequence[str],
    input_quant: Sequence[QuantParams | None] | None = None,
    output_quant: Sequence[QuantParams | None] | None = None,
    batch_size: int = 64,
    fuse: bool = True,
) -> list[np.ndarray]:
    """Runs an .onnx file with onnxruntime (CPU); outputs in the file's output order.

    `fuse=False` runs it at graph_optimization_level ORT_ENABLE_BASIC: each
    QuantizeLinear / DequantizeLinear stays a node instead of being fused into
    onnxruntime's integer kernels (its default session fuses them).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not fuse:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    onnx_inputs = session.get_inputs()
    fixed = {i.shape[0] for i in onnx_inputs if i.shape and isinstance(i.shape[0], int)}
    if len(fixed) == 1:  # e.g. converted from a batch-1 .tflite
        batch_size = fixed.pop()
    names = match_names(input_names, [i.name for i in onnx_inputs])
    types = {i.name: i.type for i in onnx_inputs}
    in_q = list(input_quant) if input_quant else [None] * len(names)
    out_q = list(output_quant) if output_quant else [None] * len(session.get_outputs())

    def run(batch):
        feed = {}
        for name, q, x in zip(names, in_q, batch, strict=True):
            if q is not None:
                feed[name] = q.quantize(x)
            else:
                feed[name] = np.asarray(x).astype(_onnx_numpy_type(types[name]))
        out = session.run(None, feed)
        return [
            q.dequantize(o) if q is not None else np.asarray(o, np.float32)
            for o, q in zip(out, out_q, strict=True)
        ]

    return batched_call(run, samples, batch_size)


def _onnx_numpy_type(onnx_type: str) -> str:
    mapping = {
        "tensor(float)": "float32",
        "tensor(double)": "float64",
        "tensor(float16)": "float16",
        "tensor(int8)": "int8",
        "tensor(uint8)": "uint8",
        "tensor(int16)": "int16",
        "tensor(int32)": "int32",
        "tensor(int64)": "int64",
    }
    return mapping.get(onnx_type, "float32")


def saved_model_outputs(
    path: str,
    samples: Samples,
    input_names: Sequence[str],
    output_names: Sequence[str],
    batch_size: int = 64,
) -> list[np.ndarray]:
    """Loads a SavedModel with tf.saved_model.load and runs `serving_default`."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    signature = loaded.signatures["serving_default"]
    sig_inputs = list(signature.structured_input_signature[1])
    in_names = match_names(input_names, sig_inputs)
    out_names = match_names(output_names, list(signature.structured_outputs))

    def run(batch):
        result = signature(**{n: tf.constant(x) for n, x in zip(in_names, batch, strict=True)})
        return [np.asarray(result[n], np.float32) for n in out_names]

    return batched_call(run, samples, batch_size)
