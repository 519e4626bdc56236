"""Damaged inputs, and the rule every reader must keep on them.

Shared by the fuzz tests (tests/fuzz) and the longer campaign of
benchmarks/robustness.py. The rule: a reader given a damaged or hostile
input either reads it or raises a `KerasSqueezeError` whose message is one
line, names the input and says what was expected; never another exception,
never a hang (a time bound per case), never a crash of the process (native
readers run in a child process, see keras_squeeze.safety.probe).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import pathlib
import signal
import struct
import time

from keras_squeeze.errors import KerasSqueezeError

READ = "read"  # the input was read (or the artifact verified)
REFUSED = "KerasSqueezeError"
RAW = "raw exception"
HANG = "hang"
CRASH = "crash"
PARTIAL = "partial output"
MUTATED = "mutated model"
KINDS = (READ, REFUSED, RAW, CRASH, HANG, PARTIAL, MUTATED)
BAD_KINDS = (RAW, CRASH, HANG, PARTIAL, MUTATED)

ROOT = pathlib.Path(__file__).resolve().parents[2]
TFLITE_MODELS = ROOT / "tflite_models"
EDGETPU_LOGS = ROOT / "tests" / "edgetpu" / "data"
BENCHMARK_LOGS = ROOT / "tests" / "bench" / "data"


@dataclasses.dataclass
class Outcome:
    """How one case ended: its kind (READ, REFUSED, RAW, HANG, ...) and message."""

    kind: str
    message: str = ""
    seconds: float = 0.0

    def __str__(self) -> str:
        return f"{self.kind} after {self.seconds:.2f} s: {self.message}"


class CaseTimeout(BaseException):
    """Raised in the case's thread when it runs past its time bound."""


@contextlib.contextmanager
def time_bound(seconds: float):
    """Interrupts the block (with CaseTimeout) after `seconds`: a Python-level hang fails.

    Main thread only (SIGALRM); native code is bounded by the child processes
    the library runs it in.
    """

    def expire(signum, frame):
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_case(fn, *args, bound: float = 60.0, **kwargs) -> Outcome:
    """Runs fn(*args, **kwargs) under a time bound and classifies how it ended."""
    start = time.perf_counter()
    try:
        with time_bound(bound):
            fn(*args, **kwargs)
        kind, message = READ, ""
    except CaseTimeout:
        kind, message = HANG, f"no answer within {bound:g} s"
    except KerasSqueezeError as e:
        kind, message = REFUSED, str(e)
    except Exception as e:
        kind, message = RAW, f"{type(e).__module__}.{type(e).__name__}: {e}"
    return Outcome(kind, message, time.perf_counter() - start)


def problems(outcome: Outcome, names=()) -> list[str]:
    """What breaks the rule in `outcome` (empty when it keeps it).

    A refusal must be one line, say what was expected, and name the input
    (one of `names`, when given).
    """
    if outcome.kind == READ:
        return []
    if outcome.kind != REFUSED:
        return [str(outcome)]
    found = []
    message = outcome.message
    if "\n" in message:
        found.append(f"the message is not one line: {message!r}")
    if "Expected" not in message:
        found.append(f"the message does not say what was expected: {message!r}")
    if names and not any(str(n) in message for n in names):
        found.append(f"the message names none of {list(map(str, names))}: {message!r}")
    return found


def assert_clean(outcome: Outcome, names=()) -> None:
    found = problems(outcome, names)
    assert not found, "; ".join(found)


# --- byte-level damage ------------------------------------------------------


def truncate(data: bytes, at: int) -> bytes:
    return data[: max(0, min(at, len(data)))]


def flip_bits(data: bytes, flips) -> bytes:
    """`data` with bit `bit` of byte `pos % len` flipped, for each (pos, bit)."""
    out = bytearray(data)
    for pos, bit in flips:
        if out:
            out[pos % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def overwrite(data: bytes, edits) -> bytes:
    """`data` with byte `pos % len` set to `value`, for each (pos, value)."""
    out = bytearray(data)
    for pos, value in edits:
        if out:
            out[pos % len(out)] = value % 256
    return bytes(out)


def splice(data: bytes, start: int, stop: int, garbage: bytes) -> bytes:
    """`data` with bytes [start, stop) replaced by `garbage`."""
    start, stop = sorted((start % (len(data) + 1), stop % (len(data) + 1)))
    return data[:start] + garbage + data[stop:]


# --- TFLite flatbuffers -----------------------------------------------------


@functools.cache
def reference_tflite(name: str) -> bytes:
    return (TFLITE_MODELS / name).read_bytes()


def repack(model) -> bytes:
    """A ModelT (the schema's object API) written back as .tflite bytes."""
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def unpack(content: bytes):
    from ai_edge_litert import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(content, 0)


def cut_root_vtable(content: bytes, fields: int = 1) -> bytes:
    """The model with its root table's vtable cut to its first `fields` fields.

    With only the version field left, the model has no subgraphs: ai_edge_litert's
    Interpreter crashes (SIGSEGV) on such a file, where the Python bindings see
    an empty model.
    """
    root = struct.unpack_from("<I", content, 0)[0]
    vtable = root - struct.unpack_from("<i", content, root)[0]
    out = bytearray(content)
    struct.pack_into("<H", out, vtable, 4 + 2 * fields)
    return bytes(out)


HUGE = (2**31 - 1, 2**31, 2**32 - 1, 10**9, 65536)
NEGATIVE = (-1, -2, -(2**31))


def edit_tflite(content: bytes, field: str, position: int, value: int) -> bytes:
    """One structural edit of a .tflite: a size or index set to an impossible `value`.

    Args:
        field: which number to set (see TFLITE_FIELDS).
        position: which tensor / operator / buffer (taken modulo their count).
        value: the value to write.
    """
    bits, signed = _FIELD_TYPES.get(field, (32, True))
    value %= 2**bits
    if signed and value >= 2 ** (bits - 1):
        value -= 2**bits
    model = unpack(content)
    graph = model.subgraphs[0]
    tensor = graph.tensors[position % len(graph.tensors)]
    op = graph.operators[position % len(graph.operators)]
    if field == "tensor_shape":
        shape = list(tensor.shape) if tensor.shape is not None and len(tensor.shape) else [1]
        shape[position % len(shape)] = value
        tensor.shape = shape
    elif field == "tensor_buffer":
        tensor.buffer = value
    elif field == "tensor_type":
        tensor.type = value
    elif field == "op_input":
        op.inputs = [value, *list(op.inputs)[1:]]
    elif field == "op_output":
        op.outputs = [value]
    elif field == "opcode_index":
        op.opcodeIndex = value
    elif field == "opcode_version":
        model.operatorCodes[position % len(model.operatorCodes)].version = value
    elif field == "builtin_code":
        code = model.operatorCodes[position % len(model.operatorCodes)]
        code.builtinCode = value
        code.deprecatedBuiltinCode = min(max(value, 0), 127)
    elif field == "graph_input":
        graph.inputs = [value]
    elif field == "graph_output":
        graph.outputs = [value]
    elif field == "quantized_dimension":
        if tensor.quantization is not None:
            tensor.quantization.quantizedDimension = value
    elif field == "scale_count":
        if tensor.quantization is not None:
            tensor.quantization.scale = [0.5] * (value % 4096)
            tensor.quantization.zeroPoint = [0] * (value % 4096)
    elif field == "buffer_bytes":
        constants = [b for b in model.buffers if b.data is not None and len(b.data)]
        if constants:
            buf = constants[position % len(constants)]
            buf.data = list(buf.data)[: value % (len(buf.data) + 1)]
    elif field == "buffer_offset":
        buf = model.buffers[position % len(model.buffers)]
        buf.data, buf.offset, buf.size = None, value, abs(value) % 2**20 + 1
    elif field == "no_subgraphs":
        model.subgraphs = []
    elif field == "model_version":
        model.version = value
    return repack(model)


# (bits, signed) of each field in the schema: values wrap into its range.
_FIELD_TYPES = {
    "tensor_buffer": (32, False),
    "tensor_type": (8, True),
    "opcode_index": (32, False),
    "buffer_offset": (64, False),
    "model_version": (32, False),
}

TFLITE_FIELDS = (
    "tensor_shape",
    "tensor_buffer",
    "tensor_type",
    "op_input",
    "op_output",
    "opcode_index",
    "opcode_version",
    "builtin_code",
    "graph_input",
    "graph_output",
    "quantized_dimension",
    "scale_count",
    "buffer_bytes",
    "buffer_offset",
    "no_subgraphs",
    "model_version",
)
