"""The per-stage summary of a report: one row per model the pipeline produced.

Rows, in order: the original model (its float32 .tflite), each training stage
(the Keras model after it), and the final compressed .tflite. Columns: .tflite
bytes, gzip bytes, the task metric (accuracy of a classification output, MSE
of a regression output), fidelity against the original float model (SQNR,
top-1 agreement) and p50 latency, each where it was measured. The same rows
feed report.md, report.html, the charts and the terminal table.

For a model with several outputs, `output_rows` gives one row per output: its
task, accuracy or MSE / MAE before and after, and its own fidelity.

Works on `Report.to_dict()` (or a loaded report.json), so a saved report can
be rendered again.

Example:
    >>> rows = stage_rows(result.report)
    >>> print(stage_table_text(result.report))
    >>> print(output_table_text(result.report))
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class StageRow:
    """One model of the pipeline.

    Attributes:
        stage: its label ("original", "prune", "int8 .tflite", ...).
        model: what was measured ("float32 .tflite", "Keras model", ...).
        tflite_bytes / gzip_bytes: its .tflite size, raw and gzipped.
        accuracy: top-1 accuracy on the validation data (of the first
            classification output).
        sqnr_db / top1_agreement: the .tflite against the original float model.
        p50_ms: median latency on this CPU, when measured.
        mse: mean squared error on the validation data (of the first
            regression output), for models with a regression output.
    """

    stage: str
    model: str
    tflite_bytes: int | None = None
    gzip_bytes: int | None = None
    accuracy: float | None = None
    sqnr_db: float | str | None = None
    top1_agreement: float | None = None
    p50_ms: float | None = None
    mse: float | None = None


def as_dict(report) -> dict:
    """The report as a dict (a Report, or the dict of report.json)."""
    return report if isinstance(report, dict) else report.to_dict()


def stage_rows(report) -> list[StageRow]:
    """The per-stage rows of a report (see the module docstring)."""
    r = as_dict(report)
    accuracy = r.get("accuracy") or {}
    regression = r.get("regression") or {}
    training = r.get("training") or {}
    latency = r.get("latency") or {}
    original_acc = accuracy.get("original", training.get("accuracy_before"))
    original_mse = regression.get("original")
    measured = "accuracy" if original_acc is not None else "MSE"
    rows = [
        StageRow(
            "original",
            "float32 .tflite"
            + (
                f" ({measured}: Keras model)"
                if original_acc is not None or original_mse is not None
                else ""
            ),
            r["original"]["tflite_bytes"],
            r["original"]["tflite_gzip_bytes"],
            original_acc,
            p50_ms=latency.get("original_p50_ms"),
            mse=original_mse,
        )
    ]
    stages = r.get("stages") or []
    for i, st in enumerate(stages):
        last = i == len(stages) - 1
        rows.append(
            StageRow(
                st["name"],
                "Keras model after the stage",
                None if last else st.get("tflite_bytes"),
                None if last else st.get("tflite_gzip_bytes"),
                st.get("accuracy"),
                mse=st.get("mse"),
            )
        )
    fidelity = r.get("fidelity") or {}
    rows.append(
        StageRow(
            f"{r['recipe']} .tflite" if r["recipe"] != r["quantization"] else r["recipe"],
            f"{r['quantization']} .tflite",
            r["compressed"]["tflite_bytes"],
            r["compressed"]["tflite_gzip_bytes"],
            accuracy.get("compressed"),
            fidelity.get("sqnr_db"),
            fidelity.get("top1_agreement"),
            latency.get("compressed_p50_ms"),
            mse=regression.get("compressed"),
        )
    )
    return rows


HEADER = (
    "stage",
    "measured on",
    ".tflite bytes",
    "gzip bytes",
    "accuracy",
    "MSE",
    "SQNR vs float",
    "top-1 agreement",
    "p50 latency",
)


def format_db(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return "inf" if math.isinf(value) else f"{value:.1f} dB"


def stage_cells(row: StageRow) -> list[str]:
    def num(v):
        return "" if v is None else f"{v:,}"

    return [
        row.stage,
        row.model,
        num(row.tflite_bytes),
        num(row.gzip_bytes),
        "" if row.accuracy is None else f"{row.accuracy:.4f}",
        "" if row.mse is None else f"{row.mse:.4g}",
        format_db(row.sqnr_db),
        "" if row.top1_agreement is None else f"{row.top1_agreement:.2%}",
        "" if row.p50_ms is None else f"{row.p50_ms:.3f} ms",
    ]


def used_columns(table: list[list[str]]) -> list[int]:
    """The header columns plus those with a value in some row."""
    return [i for i in range(len(HEADER)) if i < 2 or any(row[i] for row in table)]


def stage_table_markdown(report) -> list[str]:
    """Markdown lines of the per-stage table (empty columns left out).

    For `Report.to_markdown`: `lines += ["", "## Per stage", "", *stage_table_markdown(self)]`.
    """
    table = [stage_cells(row) for row in stage_rows(report)]
    cols = used_columns(table)
    lines = ["| " + " | ".join(HEADER[i] for i in cols) + " |"]
    lines.append("|" + "|".join("---" if i < 2 else "---:" for i in cols) + "|")
    lines += ["| " + " | ".join(row[i] for i in cols) + " |" for row in table]
    return lines


def stage_table_text(report) -> str:
    """The per-stage table as aligned plain text, for the terminal."""
    table = [stage_cells(row) for row in stage_rows(report)]
    cols = used_columns(table)
    return _text_table([HEADER[i] for i in cols], [[row[i] for i in cols] for row in table])


def _pair(values: dict, fmt: str) -> tuple[str, str]:
    def one(v):
        return "" if v is None else fmt.format(v)

    return one(values.get("original")), one(values.get("compressed"))


def task_rows(report) -> list[tuple[str, str, str]]:
    """(metric, original, compressed) rows of the task metrics for the summary table:
    accuracy of the classification output(s), MSE and MAE of the regression output(s);
    with several outputs one row per output, named."""
    r = as_dict(report)
    acc, reg = r.get("accuracy"), r.get("regression")
    rows = []
    if acc:
        for name, v in (acc.get("per_output") or {None: acc}).items():
            rows.append((f"accuracy ({name})" if name else "accuracy", *_pair(v, "{:.4f}")))
    if reg:
        per_output = reg.get("per_output") or {None: {"mse": reg, "mae": reg["mae"]}}
        for name, v in per_output.items():
            suffix = f" ({name})" if name else ""
            rows.append((f"MSE{suffix}", *_pair(v["mse"], "{:.4g}")))
            rows.append((f"MAE{suffix}", *_pair(v["mae"], "{:.4g}")))
    return rows


@dataclasses.dataclass(frozen=True)
class OutputRow:
    """One output of the model: its task metric before and after, its fidelity.

    Attributes:
        output: the output's name.
        task: "classification" or "regression".
        accuracy / mse / mae: "original -> compressed" on the validation data.
        sqnr_db / top1_agreement / max_abs_diff: the .tflite against the
            original float model (top-1 agreement for classification outputs).
    """

    output: str
    task: str
    accuracy: str = ""
    mse: str = ""
    mae: str = ""
    sqnr_db: float | str | None = None
    top1_agreement: float | None = None
    max_abs_diff: float | None = None


OUTPUT_HEADER = (
    "output",
    "task",
    "accuracy",
    "MSE",
    "MAE",
    "SQNR vs float",
    "top-1 agreement",
    "max |diff|",
)


def _arrow(values: dict | None, fmt: str) -> str:
    if not values:
        return ""
    before, after = _pair(values, fmt)
    return f"{before} → {after}"


def output_rows(report) -> list[OutputRow]:
    """One row per output of the model (see OutputRow)."""
    r = as_dict(report)
    acc, reg = r.get("accuracy") or {}, r.get("regression") or {}
    tasks = r.get("tasks") or {}
    fidelity = (r.get("fidelity") or {}).get("outputs") or []
    acc_per = acc.get("per_output") or ({acc["output"]: acc} if acc.get("output") else {})
    reg_per = reg.get("per_output") or (
        {reg["output"]: {"mse": reg, "mae": reg["mae"]}} if reg.get("output") else {}
    )
    if len(fidelity) == 1 and not acc_per and not reg_per:
        name = fidelity[0]["name"]
        acc_per = {name: acc} if acc else {}
        reg_per = {name: {"mse": reg, "mae": reg["mae"]}} if reg else {}
    rows = []
    for f in fidelity:
        name = f["name"]
        task = tasks.get(name) or ("classification" if f.get("top1_agreement") is not None else "")
        errors = reg_per.get(name) or {}
        rows.append(
            OutputRow(
                name,
                task,
                _arrow(acc_per.get(name), "{:.4f}"),
                _arrow(errors.get("mse"), "{:.4g}"),
                _arrow(errors.get("mae"), "{:.4g}"),
                f.get("sqnr_db"),
                f.get("top1_agreement"),
                f.get("max_abs_diff"),
            )
        )
    return rows


def output_cells(row: OutputRow) -> list[str]:
    return [
        row.output,
        row.task,
        row.accuracy,
        row.mse,
        row.mae,
        format_db(row.sqnr_db),
        "" if row.top1_agreement is None else f"{row.top1_agreement:.2%}",
        "" if row.max_abs_diff is None else f"{row.max_abs_diff:.3g}",
    ]


def _output_table(report) -> tuple[list[str], list[list[str]]]:
    table = [output_cells(row) for row in output_rows(report)]
    cols = [i for i in range(len(OUTPUT_HEADER)) if i < 2 or any(row[i] for row in table)]
    return [OUTPUT_HEADER[i] for i in cols], [[row[i] for i in cols] for row in table]


def output_table_markdown(report) -> list[str]:
    """Markdown lines of the per-output table (empty columns left out)."""
    header, rows = _output_table(report)
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def output_table_text(report) -> str:
    """The per-output table as aligned plain text, for the terminal."""
    return _text_table(*_output_table(report))


def _text_table(header: list[str], table: list[list[str]]) -> str:
    rows = [header, *table]
    widths = [max(len(r[k]) for r in rows) for k in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if k < 2 else c.rjust(w)
            for k, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    rule = "-" * max(len(ln) for ln in lines)
    return "\n".join([rule, lines[0], rule, *lines[1:], rule])


def edgetpu_line(report) -> str | None:
    """One line on Edge TPU readiness, or None when the report has no analysis."""
    e = as_dict(report).get("edgetpu")
    if not e or "ops_total" not in e:
        return None
    text = f"Edge TPU ({e.get('model')}): {e['ops_on_edgetpu']}/{e['ops_total']} ops map"
    first = e.get("first_cpu_op")
    if first:
        text += f", CPU from op {first['index']} {first['op']}"
    if e.get("blockers"):
        text += f", {len(e['blockers'])} blocker(s): the compiler would refuse it"
    elif e.get("compiled"):
        text += ", compiled by edgetpu_compiler"
    elif e.get("compilable"):
        text += ", compilable"
    return text


def terminal_summary(report) -> str:
    """What a script prints at the end: the summary table, the stages, Edge TPU."""
    parts = [report.table()]
    r = as_dict(report)
    if len((r.get("fidelity") or {}).get("outputs") or []) > 1:
        parts.append(output_table_text(r))
    if r.get("stages") or r.get("latency"):
        parts.append(stage_table_text(r))
    line = edgetpu_line(r)
    if line:
        parts.append(line)
    return "\n".join(parts)
