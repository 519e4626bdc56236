"""Edge TPU readiness of a .tflite: which ops the compiler maps, and where it cuts to the CPU.

edgetpu_compiler puts the Edge TPU-compatible ops into one custom op and
leaves the rest to the CPU. It does not split the model more than once: "as
soon as an unsupported operation occurs, that operation and everything after it
executes on the CPU, even if supported operations occur later"
(https://coral.ai/docs/edgetpu/models-intro/). So the analysis walks the ops
in execution order; the first op that cannot map is the cut, and every op
after it runs on the CPU (the compiler logs the supported ones among them as
"More than one subgraph is not supported"). Two exceptions observed in
compiler logs: a QUANTIZE of a float model input and a DEQUANTIZE producing a
float model output stay on the CPU at the edges without cutting the model.
"""

from __future__ import annotations

import dataclasses
import os

from keras_squeeze.bench.sources import EDGETPU_CUSTOM_OP, read_tflite_file
from keras_squeeze.edgetpu import checks, table
from keras_squeeze.errors import ModelError
from keras_squeeze.report.tflite_reader import TFLiteModel, read_tflite

AFTER_CUT_STATUS = "More than one subgraph is not supported"
QUANTIZE_FIRST = (
    "quantize first with keras_squeeze's 'int8' post-training recipe "
    "(ks.compress(model, recipe='int8', representative_data=x), or "
    "ks.export.to_tflite(model, quantization='int8', representative_data=x, "
    "inference_input_type='uint8', inference_output_type='uint8')) or the 'qat' recipe"
)
FIX_BATCH = (
    "fix the batch size to 1 before converting (keras.Input(shape, batch_size=1), or "
    "keras_squeeze.edgetpu.with_batch_size(model, 1))"
)


@dataclasses.dataclass(frozen=True)
class OpCheck:
    """The verdict on one operator.

    Attributes:
        index: its position in execution order.
        opcode / version: the TFLite operator and operator version.
        on_edgetpu: whether the compiler is expected to map it.
        reasons: why it cannot map by itself (empty when it could).
        after_cut: it could map, but runs on the CPU because an earlier op did not.
        edge: a float-I/O QUANTIZE/DEQUANTIZE that stays on the CPU without a cut.
        caveats: documented conditions a static check cannot settle.
    """

    index: int
    opcode: str
    version: int
    on_edgetpu: bool
    reasons: tuple[str, ...] = ()
    after_cut: bool = False
    edge: bool = False
    caveats: tuple[str, ...] = ()

    @property
    def why(self) -> str:
        if self.on_edgetpu:
            return "maps to the Edge TPU"
        if self.reasons:
            return "; ".join(self.reasons)
        return f"after the first CPU op (compiler log: '{AFTER_CUT_STATUS}')"

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "op": self.opcode,
            "version": self.version,
            "edgetpu": self.on_edgetpu,
            "why": self.why,
            "after_cut": self.after_cut,
            "edge": self.edge,
            "caveats": list(self.caveats),
        }


@dataclasses.dataclass(frozen=True)
class EdgeTPUReport:
    """Edge TPU readiness of one .tflite (see `check_edgetpu`).

    Attributes:
        ops: one OpCheck per operator, in execution order.
        first_cpu_op: the op where the compiler cuts to the CPU, or None.
        blockers: reasons edgetpu_compiler would refuse the whole model.
        notes: advice that does not change the per-op verdicts.
        input_types / output_types: the model's I/O tensor types.
        runtime_version: the Edge TPU runtime the table was read for.
    """

    ops: tuple[OpCheck, ...]
    first_cpu_op: OpCheck | None
    blockers: tuple[str, ...]
    notes: tuple[str, ...]
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]
    runtime_version: int = table.DEFAULT_RUNTIME_VERSION

    @property
    def ops_on_edgetpu(self) -> int:
        return sum(op.on_edgetpu for op in self.ops)

    @property
    def ops_on_cpu(self) -> int:
        return len(self.ops) - self.ops_on_edgetpu

    @property
    def compilable(self) -> bool:
        """False when edgetpu_compiler 16 is expected to refuse the model."""
        return not self.blockers

    @property
    def fully_mapped(self) -> bool:
        return self.compilable and self.ops_on_cpu == 0

    def summary(self) -> str:
        head = (
            f"{self.ops_on_edgetpu} of {len(self.ops)} ops on the Edge TPU, "
            f"{self.ops_on_cpu} on the CPU"
        )
        if self.blockers:
            head += f"; edgetpu_compiler {table.COMPILER_VERSION} would refuse the model"
        if self.first_cpu_op is not None:
            op = self.first_cpu_op
            head += f"; cut at op {op.index} {op.opcode}: {op.why}"
        return head

    def table(self) -> str:
        """One line per op: index, op, where it runs, why."""
        lines = [f"{'#':>4}  {'op':<28} {'runs on':<9} why"]
        for op in self.ops:
            where = "EdgeTPU" if op.on_edgetpu else "CPU"
            lines.append(
                f"{op.index:>4}  {op.opcode + ' v' + str(op.version):<28} {where:<9} {op.why}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        first = self.first_cpu_op
        return {
            "compiler": table.COMPILER_VERSION,
            "runtime_version": self.runtime_version,
            "quantized": True,
            "compilable": self.compilable,
            "fully_mapped": self.fully_mapped,
            "ops_total": len(self.ops),
            "ops_on_edgetpu": self.ops_on_edgetpu,
            "ops_on_cpu": self.ops_on_cpu,
            "first_cpu_op": None if first is None else first.to_dict(),
            "blockers": list(self.blockers),
            "notes": list(self.notes),
            "input_types": list(self.input_types),
            "output_types": list(self.output_types),
            "ops": [op.to_dict() for op in self.ops],
            "sources": {"ops": table.SOURCE_OPS, "versions": table.SOURCE_VERSIONS},
        }


def _load(tflite) -> tuple[TFLiteModel, str | None]:
    """The parsed model, and the file it came from as messages name it (None for bytes)."""
    if isinstance(tflite, TFLiteModel):
        return tflite, None
    if isinstance(tflite, (str, os.PathLike)):
        content, path = read_tflite_file(tflite, "to check")
        return read_tflite(content, f"'{path}'"), f"'{path}'"
    if isinstance(tflite, (bytes, bytearray, memoryview)):
        return read_tflite(bytes(tflite), "The .tflite to check"), None
    raise ModelError(
        "The Edge TPU check takes a .tflite. Expected bytes or a path to a .tflite file. "
        f"Received: {type(tflite).__name__}"
    )


def activation_types(model: TFLiteModel) -> set[str]:
    """Types of the tensors ops compute (not constants, not int32 index tensors)."""
    seen = set()
    for op in model.operators:
        for i in list(op.inputs) + list(op.outputs):
            if i >= 0 and not model.tensors[i].is_constant:
                seen.add(model.tensors[i].dtype)
    return seen - set(checks.INDEX_TYPES) - {"bool"}


def quantization_kind(model: TFLiteModel) -> str:
    """ "int8" (8-bit activations), "int16x8", "dynamic-range", "float16" or "float32"."""
    acts = activation_types(model)
    if acts & set(checks.EIGHT_BIT):
        return "int8"
    if "int16" in acts:
        return "int16x8"
    consts = {t.dtype for t in model.constants()}
    if consts & set(checks.EIGHT_BIT):
        return "dynamic-range"
    if "float16" in consts:
        return "float16"
    return "float32"


def require_quantized(model: TFLiteModel, what: str | None = None) -> None:
    """Raises ModelError unless the model computes in 8-bit integers.

    Args:
        model: the parsed .tflite.
        what: the file, as the error names it (default "The model" / "The .tflite").

    Raises:
        ModelError: a float, float16, dynamic-range or int16x8 model, or a
            model already compiled for the Edge TPU.
    """
    if any(op.opcode == EDGETPU_CUSTOM_OP for op in model.operators):
        raise ModelError(
            f"{what or 'The .tflite'} is already compiled for the Edge TPU (it holds the "
            f"'{EDGETPU_CUSTOM_OP}' op). Expected the .tflite before edgetpu_compiler. "
            "Received: a *_edgetpu.tflite"
        )
    kind = quantization_kind(model)
    if kind == "int8":
        return
    detail = {
        "float32": "float32 weights and activations",
        "float16": "float16 weights, float32 activations",
        "dynamic-range": "int8 weights but float32 activations",
        "int16x8": "int16 activations",
    }[kind]
    raise ModelError(
        f"{what or 'The model'} is not quantized for the Edge TPU: it is a {kind} model "
        f"({detail}), and the Edge TPU runs only full-integer 8-bit models (edgetpu_compiler "
        f"says 'Model not quantized'). Expected a full-integer int8 .tflite: {QUANTIZE_FIRST}; "
        "int8 or uint8 model inputs and outputs put the whole model on the Edge TPU. Received: a "
        f"{kind} .tflite with {len(model.operators)} ops, activation types "
        f"{sorted(activation_types(model))}"
    )


def _verdicts(model: TFLiteModel, runtime_version: int):
    """Yields (op, reasons, blockers, edge, caveats) per op, before the cut is applied."""
    for op in model.operators:
        blockers = checks.check_loadable(op)
        edge = checks.is_model_input_quantize(model, op) or checks.is_model_output_dequantize(
            model, op
        )
        if edge:
            reasons = [
                "converts the model's float input/output (float I/O): stays on the CPU at the "
                "edge; use int8 or uint8 inputs and outputs to map it"
            ]
        else:
            reasons = blockers + checks.check_supported(op, runtime_version)
            reasons += checks.check_types(model, op)
            reasons += checks.check_static(model, op)
            reasons += checks.check_rank(model, op)
            reasons += checks.check_parameters(model, op)
            if op.opcode in table.EDGETPU_OPS and not op.is_custom:
                reasons += checks.check_limitations(model, op, runtime_version)
        caveat = checks.CAVEATS.get(op.opcode)
        yield op, reasons, blockers, edge, (caveat,) if caveat else ()


def _model_notes(model: TFLiteModel, ops: list[OpCheck]) -> tuple[list[str], list[str]]:
    """Model-level blockers and notes: dynamic batch, run-time shapes, float I/O, subgraphs."""
    blockers, notes = [], []
    batch_dynamic = [
        model.tensors[i].name
        for i in model.inputs
        if tuple(model.tensors[i].shape_signature)[:1] == (-1,)
    ]
    # A RESHAPE whose target shape is not a constant gets a dynamic-sized
    # output tensor in the TFLite interpreter the compiler runs.
    runtime_shapes = [
        op for op in model.operators
        if op.opcode == "RESHAPE" and len(op.inputs) > 1 and op.inputs[1] >= 0
        and not model.tensors[op.inputs[1]].is_constant
    ]  # fmt: skip
    if runtime_shapes:
        where = ", ".join(f"op {op.index} RESHAPE" for op in runtime_shapes)
        blockers.append(
            f"the reshape target is computed at run time ({where}), which makes a dynamic-sized "
            'tensor; edgetpu_compiler 16 refuses such graphs ("Attempting to use a delegate that '
            'only supports static-sized tensors with a graph that has dynamic-sized tensors"); '
            + FIX_BATCH
        )
    if batch_dynamic:
        notes.append(
            f"dynamic batch size on input(s) {batch_dynamic}: the compiler compiles for batch 1"
            + ("" if runtime_shapes else "; to be explicit, " + FIX_BATCH)
        )
    edges = [op for op in ops if op.edge]
    if edges:
        notes.append(
            "float model inputs/outputs: the QUANTIZE/DEQUANTIZE at the edges run on the CPU "
            "(the ops between them can still map); convert with inference_input_type='uint8' "
            "(or 'int8') and inference_output_type='uint8' (or 'int8') to run everything on "
            "the Edge TPU"
        )
    if model.num_subgraphs > 1:
        notes.append(
            f"the model has {model.num_subgraphs} subgraphs (control flow); only the main "
            "subgraph is analysed and ops of the others run on the CPU"
        )
    customs = sorted(
        {op.opcode for op in model.operators if op.is_custom} - table.COMPILER_CUSTOM_OPS
    )
    if customs:
        notes.append(
            f"custom op(s) {customs} are unknown to the compiler's TFLite runtime; it may refuse "
            "to load the model"
        )
    return blockers, notes


def check_edgetpu(tflite, *, runtime_version: int = table.DEFAULT_RUNTIME_VERSION) -> EdgeTPUReport:
    """Checks every operator of a .tflite against the Edge TPU's supported operations.

    Checks, per op in execution order: the operator version edgetpu_compiler
    16 can load, the Edge TPU's supported-operation table and its known
    limitations, int8/uint8 tensors (int32 biases and index constants),
    static sizes, at most 3 dimensions larger than 1, and constant
    parameters. The first op that cannot map is where the compiler cuts the
    model; every later op runs on the CPU.

    Args:
        tflite: .tflite bytes, a path, or a parsed `TFLiteModel`.
        runtime_version: the Edge TPU runtime to compile for (the compiler's
            --min_runtime_version; 14 is the runtime of compiler 16).

    Returns:
        An EdgeTPUReport.

    Raises:
        ModelError: not a .tflite, or a damaged one (a missing, unreadable or
            truncated file; indices or sizes that do not fit the file); not a
            full-integer 8-bit model (quantize first); or already compiled for
            the Edge TPU.

    Example:
        >>> report = ks.edgetpu.check_edgetpu("model_int8.tflite")
        >>> report.summary()
        '7 of 7 ops on the Edge TPU, 0 on the CPU'
    """
    model, what = _load(tflite)
    require_quantized(model, what)
    ops: list[OpCheck] = []
    blockers: list[str] = []
    cut = None
    for op, reasons, op_blockers, edge, caveats in _verdicts(model, runtime_version):
        blockers += [f"op {op.index}: {b}" for b in op_blockers]
        if cut is None and reasons and not edge:
            cut = op.index
        after_cut = cut is not None and op.index > cut and not reasons
        ops.append(
            OpCheck(
                op.index,
                op.opcode,
                op.version,
                on_edgetpu=not reasons and not after_cut,
                reasons=tuple(reasons),
                after_cut=after_cut,
                edge=edge,
                caveats=caveats,
            )
        )
    model_blockers, notes = _model_notes(model, ops)
    return EdgeTPUReport(
        ops=tuple(ops),
        first_cpu_op=None if cut is None else ops[cut],
        blockers=tuple(blockers + model_blockers),
        notes=tuple(notes),
        input_types=tuple(model.tensors[i].dtype for i in model.inputs),
        output_types=tuple(model.tensors[i].dtype for i in model.outputs),
        runtime_version=runtime_version,
    )


def edgetpu_readiness(tflite_bytes: bytes) -> dict:
    """The readiness analysis as a JSON-ready dict for report.json.

    A model that is not full-integer 8-bit gives a short dict with
    "quantized": false and the "quantize first" message instead of raising.

    Example:
        >>> ks.edgetpu.edgetpu_readiness(result.tflite)["ops_on_cpu"]
        0
    """
    model, _ = _load(tflite_bytes)
    try:
        return check_edgetpu(model).to_dict()
    except ModelError as e:
        return {
            "compiler": table.COMPILER_VERSION,
            "quantized": quantization_kind(model) == "int8",
            "compilable": False,
            "fully_mapped": False,
            "message": str(e),
        }
