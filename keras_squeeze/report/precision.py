"""Each op's precision, read back from the .tflite, and the plan a mixed mode stored in it.

`op_precisions` reads what every compute op of a .tflite runs at, from its
tensors' stored types: "int4 weights" (an int4 constant input; the
activations float32), "int8 weights" (an int8 constant input, float32
activations: dynamic range), "int8", "int16x8" (int16 activations), "float16
weights" or "float32". QUANTIZE / DEQUANTIZE ops are conversions, not
compute, and are left out.

A mode that chooses a precision per op ("int8-mixed") stores why in the file
itself, as a TFLite metadata entry named `PLAN_METADATA` holding JSON
(`with_plan` / `read_plan`), so the report of any copy of the file can say it.

Example:
    >>> op_precisions(read_tflite(content))[0]
    OpPrecision(index=0, opcode='FULLY_CONNECTED', output='dense/MatMul', precision='int4 weights')
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

from keras_squeeze.report.tflite_reader import TFLiteModel

PLAN_METADATA = "keras_squeeze.precision_plan"
_CONVERSIONS = ("QUANTIZE", "DEQUANTIZE")


@dataclasses.dataclass(frozen=True)
class OpPrecision:
    """The precision one op of a .tflite runs at (see the module docstring)."""

    index: int
    opcode: str
    output: str
    precision: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _stored(model: TFLiteModel, index: int, producers: dict):
    """The constant behind input `index`: itself, or what a DEQUANTIZE op expands into it
    (float16 weights, weight-only quantization)."""
    t = model.tensors[index]
    if t.is_constant:
        return t
    producer = producers.get(index)
    if producer is not None and producer.opcode == "DEQUANTIZE" and producer.inputs:
        source = model.tensors[producer.inputs[0]]
        return source if source.is_constant else None
    return None


def _precision(model: TFLiteModel, op, producers: dict) -> str:
    ins = [i for i in op.inputs if i >= 0]
    outs = [model.tensors[i] for i in op.outputs if i >= 0]
    stored = {i: _stored(model, i, producers) for i in ins}
    consts = [t for t in stored.values() if t is not None]
    acts = [model.tensors[i] for i in ins if stored[i] is None] + outs
    kinds = {t.dtype for t in acts}
    if "int16" in kinds:
        return "int16x8"
    if kinds & {"int8", "uint8"} and not kinds & {"float32", "float16"}:
        return "int8"
    stored = {t.dtype for t in consts}
    if "int4" in stored:
        return "int4 weights"
    if stored & {"int8", "uint8"}:
        return "int8 weights"
    if "float16" in stored:
        return "float16 weights"
    return "float32"


def op_precisions(model: TFLiteModel) -> list[OpPrecision]:
    """Every compute op of the main subgraph with its precision, in execution order."""
    producers = {o: op for op in model.operators for o in op.outputs}
    return [
        OpPrecision(
            op.index,
            op.opcode,
            model.tensors[op.outputs[0]].name if op.outputs else "",
            _precision(model, op, producers),
        )
        for op in model.operators
        if op.opcode not in _CONVERSIONS
    ]


def precision_counts(ops: list[OpPrecision]) -> dict[str, int]:
    """{precision: number of ops}, most frequent first."""
    return dict(Counter(op.precision for op in ops).most_common())


FLOAT32_FILE = "a float32 file, not an int8 one"
INT8_MIXED_FLOAT32 = "INT8-MIXED KEPT EVERY OP FLOAT32"


def float32_only(entry: dict | None) -> bool:
    """Whether a `summary` entry has compute ops and every one of them runs in float32."""
    counts = (entry or {}).get("counts") or {}
    return bool(counts) and set(counts) == {"float32"}


def float32_file_text(quantization: str, entry: dict | None) -> str | None:
    """What the report says of a quantizing mode's .tflite whose every op is float32
    (int8-mixed that had to keep them all), else None."""
    if quantization == "float32" or not float32_only(entry):
        return None
    ops = entry["counts"]["float32"]
    return f"every op float32 ({ops} ops): {quantization} made {FLOAT32_FILE}"


def summary(model: TFLiteModel, content: bytes | None = None) -> dict:
    """The report's `precision` entry: counts, the ops per precision, whether every op is
    float32 ("float32_only"), and the stored plan."""
    ops = op_precisions(model)
    entry = {"counts": precision_counts(ops), "ops": [op.to_dict() for op in ops]}
    entry["float32_only"] = float32_only(entry)
    if content is not None:
        plan = read_plan(content)
        if plan is not None:
            entry["plan"] = plan
    return entry


def with_plan(content: bytes, plan: dict) -> bytes:
    """`content` with `plan` stored as JSON in its `PLAN_METADATA` metadata entry."""
    from ai_edge_litert import schema_py_generated as s
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    buffer = s.BufferT()
    buffer.data = list(json.dumps(plan, sort_keys=True).encode())
    model.buffers.append(buffer)
    entry = s.MetadataT()
    entry.name = PLAN_METADATA
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if _name(m) != PLAN_METADATA] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _name(entry) -> str:
    name = entry.name
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name or "")


def read_plan(content: bytes) -> dict | None:
    """The plan `with_plan` stored in `content`, or None."""
    from ai_edge_litert import schema_py_generated as s

    model = s.Model.GetRootAsModel(content, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if (entry.Name() or b"").decode("utf-8", "replace") != PLAN_METADATA:
            continue
        buffer = model.Buffers(entry.Buffer())
        if buffer is None or buffer.DataLength() == 0:
            return None
        try:
            return json.loads(bytes(buffer.DataAsNumpy()).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None
    return None
