"""Reads what edgetpu_compiler prints (stdout with -s) and its operation log file.

The format, as printed by compiler versions 2.0 to 16.0 (see
tests/edgetpu/data/SOURCES.md for the recorded logs this is tested on):

    Edge TPU Compiler version 16.0.384591198
    Started a compilation timeout timer of 180 seconds.

    Model compiled successfully in 1524 ms.

    Input model: model.tflite
    Input size: 4.24MiB
    Output model: model_edgetpu.tflite
    Output size: 5.57MiB
    On-chip memory used for caching model parameters: 4.21MiB
    On-chip memory remaining for caching model parameters: 3.29MiB
    Off-chip memory used for streaming uncached model parameters: 0.00B
    Number of Edge TPU subgraphs: 1
    Total number of operations: 267
    Operation log: model_edgetpu.log

    Model successfully compiled but not all operations are supported by the Edge TPU. ...
    Number of operations that will run on Edge TPU: 264
    Number of operations that will run on CPU: 3

    Operator                       Count      Status

    ADD                            42         Mapped to Edge TPU
    DEQUANTIZE                     2          Operation is working on an unsupported data type

The counts are printed only when some ops run on the CPU; the operator table
only with -s (--show_operations) or in the operation log file. Failures print
"Invalid model: ..." with a reason line, "ERROR: ..." lines, "Compilation
failed..." or "Internal compiler error. Aborting!".
"""

from __future__ import annotations

import dataclasses
import re

MAPPED = "Mapped to Edge TPU"

_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
# Numbers as printed, bounded: a damaged log cannot make int() or float() fail. Text
# fields end at their last non-blank (greedy): a damaged line is read in linear time.
_INT = r"(\d{1,18})(?!\d)"
_SIZE = r"(\d{1,18}(?:\.\d{1,18})?)(?![\d.])\s*(B|KiB|MiB|GiB)"
_FIELDS = {
    "compiler_version": (r"Edge TPU Compiler version\s+(\S+)", str),
    "compile_time_ms": (r"Models? compiled successfully in " + _INT + r" ms", int),
    "input_model": (r"^Input model:[ \t]*(.*\S)[ \t]*$", str),
    "output_model": (r"^Output model:[ \t]*(.*\S)[ \t]*$", str),
    "input_size_bytes": (r"^Input size:\s*" + _SIZE, "size"),
    "output_size_bytes": (r"^Output size:\s*" + _SIZE, "size"),
    "on_chip_used_bytes": (r"On-chip memory used for caching model parameters:\s*" + _SIZE, "size"),
    "on_chip_remaining_bytes": (
        r"On-chip memory (?:remaining|available) for caching model parameters:\s*" + _SIZE,
        "size",
    ),
    "off_chip_used_bytes": (
        r"Off-chip memory used for streaming uncached model parameters:\s*" + _SIZE,
        "size",
    ),
    "edgetpu_subgraphs": (r"Number of Edge TPU subgraphs:\s*" + _INT, int),
    "total_ops": (r"Total number of operations:\s*" + _INT, int),
    "operation_log": (r"^Operation log:[ \t]*(.*\S)[ \t]*$", str),
    "ops_on_edgetpu": (r"Number of operations that will run on Edge TPU:\s*" + _INT, int),
    "ops_on_cpu": (r"Number of operations that will run on CPU:\s*" + _INT, int),
    "timeout_seconds": (r"Started a compilation timeout timer of " + _INT + r" seconds", int),
}
_ROW = re.compile(r"^([A-Z][A-Z0-9_]*|[A-Za-z][\w.\-]*)\s{2,}(\d{1,18})\s{2,}(\S(?:.*\S)?)\s*$")
_ERROR_LINES = re.compile(
    r"^(ERROR:.*|Invalid model:.*|Model not quantized.*|Model could not be parsed.*|"
    r"Compilation failed.*|Internal compiler error.*)$"
)
_SUCCESS = ("compiled successfully", "Compilation succeeded")
_FAILURE = ("Compilation failed", "Internal compiler error", "Invalid model:")


def parse_size(number: str, unit: str) -> int:
    """'4.21', 'MiB' -> bytes (the compiler prints binary units with 2 decimals)."""
    return round(float(number) * _UNITS[unit])


@dataclasses.dataclass(frozen=True)
class OperatorStatus:
    """One row of the compiler's operator table."""

    opcode: str
    count: int
    status: str

    @property
    def mapped(self) -> bool:
        return self.status == MAPPED


@dataclasses.dataclass(frozen=True)
class CompilerLog:
    """What one edgetpu_compiler run reported. Fields it did not print are None.

    Attributes:
        succeeded: "Model compiled successfully" was printed.
        operators: the operator table (opcode, count, status), in printed order.
        errors: the lines that explain a failure.
        sizes: in bytes, converted from the printed KiB/MiB (2 decimals).
    """

    compiler_version: str | None = None
    succeeded: bool = False
    compile_time_ms: int | None = None
    timeout_seconds: int | None = None
    input_model: str | None = None
    output_model: str | None = None
    operation_log: str | None = None
    input_size_bytes: int | None = None
    output_size_bytes: int | None = None
    on_chip_used_bytes: int | None = None
    on_chip_remaining_bytes: int | None = None
    off_chip_used_bytes: int | None = None
    edgetpu_subgraphs: int | None = None
    total_ops: int | None = None
    ops_on_edgetpu: int | None = None
    ops_on_cpu: int | None = None
    operators: tuple[OperatorStatus, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def mapped_ops(self) -> int:
        """Ops the table lists as mapped (0 without a table)."""
        return sum(r.count for r in self.operators if r.mapped)

    @property
    def cpu_ops(self) -> int:
        return sum(r.count for r in self.operators if not r.mapped)

    def statuses(self) -> dict[str, dict[str, int]]:
        """{opcode: {status: count}} summed over the table's rows."""
        out: dict[str, dict[str, int]] = {}
        for r in self.operators:
            row = out.setdefault(r.opcode, {})
            row[r.status] = row.get(r.status, 0) + r.count
        return out

    def merged(self, other: CompilerLog) -> CompilerLog:
        """This log with the fields it lacks (e.g. the operator table) taken from `other`."""
        values = {}
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            values[f.name] = mine if mine not in (None, (), False) else theirs
        return CompilerLog(**values)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["operators"] = [dataclasses.asdict(r) for r in self.operators]
        d["errors"] = list(self.errors)
        return d


def parse_compiler_log(text: str) -> CompilerLog:
    """Parses edgetpu_compiler's stdout/stderr or its `*_edgetpu.log` file.

    Args:
        text: the printed text (any compiler version from 2.0 to 16.0).

    Returns:
        A CompilerLog; when the counts of ops on the Edge TPU / CPU are not
        printed (all ops mapped) but the operator table is, they are summed
        from the table.

    Example:
        >>> log = parse_compiler_log(completed.stdout)
        >>> log.ops_on_edgetpu, log.on_chip_used_bytes
        (264, 4414505)
    """
    text = text.replace("\r\n", "\n")
    values: dict = {}
    for name, (pattern, kind) in _FIELDS.items():
        m = re.search(pattern, text, flags=re.MULTILINE)
        if m is None:
            continue
        values[name] = parse_size(m.group(1), m.group(2)) if kind == "size" else kind(m.group(1))
    rows, errors, in_table = [], [], False
    for line in text.split("\n"):
        stripped = line.strip()
        if re.match(r"^Operator\s+Count\s+Status$", stripped):
            in_table = True
            continue
        if in_table:
            m = _ROW.match(stripped)
            if m:
                rows.append(OperatorStatus(m.group(1), int(m.group(2)), m.group(3)))
                continue
            if stripped:
                in_table = False
        if _ERROR_LINES.match(stripped):
            errors.append(stripped)
    values["operators"] = tuple(rows)
    values["errors"] = tuple(errors)
    # With --search_delegate the compiler retries: the last verdict counts.
    last_ok = max(text.rfind(s) for s in _SUCCESS)
    last_bad = max(text.rfind(s) for s in _FAILURE)
    values["succeeded"] = last_ok > last_bad
    if rows and "ops_on_edgetpu" not in values:
        values["ops_on_edgetpu"] = sum(r.count for r in rows if r.mapped)
        values["ops_on_cpu"] = sum(r.count for r in rows if not r.mapped)
    return CompilerLog(**values)
