"""The per-stage summary of a report: one row per model the pipeline produced.

Rows, in order: the original model (its float32 .tflite), each training stage
(the Keras model after it), and the final compressed .tflite. Columns: .tflite
bytes, gzip bytes, accuracy, fidelity against the original float model (SQNR,
top-1 agreement) and p50 latency, each where it was measured. The same rows
feed report.md, report.html, the charts and the terminal table.

Works on `Report.to_dict()` (or a loaded report.json), so a saved report can
be rendered again.

Example:
    >>> rows = stage_rows(result.report)
    >>> print(stage_table_text(result.report))
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
        accuracy: top-1 accuracy on the validation data.
        sqnr_db / top1_agreement: the .tflite against the original float model.
        p50_ms: median latency on this CPU, when measured.
    """

    stage: str
    model: str
    tflite_bytes: int | None = None
    gzip_bytes: int | None = None
    accuracy: float | None = None
    sqnr_db: float | str | None = None
    top1_agreement: float | None = None
    p50_ms: float | None = None


def as_dict(report) -> dict:
    """The report as a dict (a Report, or the dict of report.json)."""
    return report if isinstance(report, dict) else report.to_dict()


def stage_rows(report) -> list[StageRow]:
    """The per-stage rows of a report (see the module docstring)."""
    r = as_dict(report)
    accuracy = r.get("accuracy") or {}
    training = r.get("training") or {}
    latency = r.get("latency") or {}
    original_acc = accuracy.get("original", training.get("accuracy_before"))
    rows = [
        StageRow(
            "original",
            "float32 .tflite" + (" (accuracy: Keras model)" if original_acc is not None else ""),
            r["original"]["tflite_bytes"],
            r["original"]["tflite_gzip_bytes"],
            original_acc,
            p50_ms=latency.get("original_p50_ms"),
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
        )
    )
    return rows


HEADER = (
    "stage",
    "measured on",
    ".tflite bytes",
    "gzip bytes",
    "accuracy",
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
    rows = [[HEADER[i] for i in cols], *([row[i] for i in cols] for row in table)]
    widths = [max(len(r[k]) for r in rows) for k in range(len(cols))]
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
    if r.get("stages") or r.get("latency"):
        parts.append(stage_table_text(r))
    line = edgetpu_line(r)
    if line:
        parts.append(line)
    return "\n".join(parts)
