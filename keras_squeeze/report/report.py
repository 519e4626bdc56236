"""The compression report: what was done, what it measured, what was skipped and why."""

from __future__ import annotations

import dataclasses
import json

from keras_squeeze.report.layers import LayerRow, format_target, target_keys
from keras_squeeze.report.metrics import Fidelity, format_db
from keras_squeeze.report.precision import float32_file_text
from keras_squeeze.report.search import search_markdown, search_text
from keras_squeeze.report.summary import output_table_markdown, task_rows


@dataclasses.dataclass
class ModelStats:
    """Size of one model: Keras parameters and its .tflite, raw and gzipped."""

    params: int
    tflite_bytes: int
    tflite_gzip_bytes: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Report:
    """Everything compress() measured.

    Attributes:
        recipe: the recipe's name.
        quantization: the post-training mode applied at conversion.
        scheme: its exact numeric scheme.
        keras_flavour: "keras3" or "tf_keras" (of the model passed in).
        original / compressed: params and .tflite sizes; the original's .tflite
            is its float32 conversion.
        fidelity: the compressed .tflite against the original float Keras model.
        accuracy: {"original", "compressed", "samples", "data"} when
            validation data with labels was given, else None; "compressed" is
            measured on the .tflite. For a model with several outputs these are
            of its first classification output ("output"), and "per_output"
            holds every classification output's; None without one.
        regression: the same for regression outputs (boxes, embeddings, dense
            maps): "original" / "compressed" mean squared error, "mae" and
            "relative_mse" (MSE / variance of the targets) {"original",
            "compressed"}, "output", "samples", "data", and "per_output" for
            several outputs; None without a regression output or labels.
        tasks: {output name: "classification" / "regression"}.
        conversion_seconds: wall time of the compressed conversion.
        calibration: which samples calibrated the quantization, if any.
        layers: one row per layer.
        stages: per training stage: settings, epochs, time, accuracy and
            .tflite size after the stage, and each layer's setting or reason.
        training: fine-tuning settings (epochs, batches, distillation), if any.
        latency: original vs compressed .tflite timing on this CPU when
            measured (see keras_squeeze.bench.compare_latency).
        edgetpu: for full-integer results, the Edge TPU readiness analysis
            (ops on the Edge TPU / CPU, the first op cut to the CPU, blockers)
            and, after save(), the compiler's parsed log when it ran.
        qat_parity: after quantization-aware training, the QAT Keras model
            against its .tflite (SQNR, top-1 agreement; per layer when they
            disagree).
        conversion_parity: for every other result, the Keras model that was
            converted against its .tflite (the same fields; per layer when the
            .tflite departs from it).
        precision: each op's precision read back from the .tflite
            (`report.precision.summary`): "counts" {precision: ops}, "ops" (index,
            opcode, output tensor, precision), "float32_only" (every op runs in
            float32) and, for "int8-mixed", the "plan" stored in the file (each
            op's measured error, the ops kept float32 and why) and, when it kept
            every op float32, a "note" saying the file is a float32 one.
        exports: per saved format, its Artifact record (filled by save()).
        accuracy_budget: with compress(max_accuracy_drop=...): {"max_drop",
            "drop" (the worst output's), "metric", "output", "met",
            "per_output": {name: {"metric", "drop"}}}; else None.
        search: with compress(model, "auto"): the search (`api.auto`): "chosen",
            "objective", "max_drop", "seed", "seconds", "time_budget_s",
            "stopped", "latency" (objective="latency": how the candidates were
            timed, `api.auto_latency`) and "candidates" (one row each: recipe,
            kind, status, bytes, gzip bytes, metric, drop, seconds, within
            budget, "precision" ("float32" for an int8-mixed file that kept
            every op float32), Pareto; with objective="latency" also
            "latency_ms" and "latency_spread_ms"); else None.
        notes / warnings: what the user should know.
    """

    recipe: str
    quantization: str
    scheme: str
    keras_flavour: str
    original: ModelStats
    compressed: ModelStats
    fidelity: Fidelity
    accuracy: dict | None
    conversion_seconds: float
    calibration: str | None
    layers: list[LayerRow]
    regression: dict | None = None
    tasks: dict | None = None
    stages: list[dict] = dataclasses.field(default_factory=list)
    training: dict | None = None
    latency: dict | None = None
    qat_parity: dict | None = None
    conversion_parity: dict | None = None
    edgetpu: dict | None = None
    precision: dict | None = None
    exports: dict = dataclasses.field(default_factory=dict)
    accuracy_budget: dict | None = None
    search: dict | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def size_ratio(self) -> float:
        """compressed .tflite bytes / original float32 .tflite bytes."""
        return self.compressed.tflite_bytes / self.original.tflite_bytes

    @property
    def gzip_ratio(self) -> float:
        return self.compressed.tflite_gzip_bytes / self.original.tflite_gzip_bytes

    def to_dict(self) -> dict:
        return {
            "recipe": self.recipe,
            "quantization": self.quantization,
            "scheme": self.scheme,
            "keras_flavour": self.keras_flavour,
            "original": self.original.to_dict(),
            "compressed": self.compressed.to_dict(),
            "size_ratio": round(self.size_ratio, 4),
            "gzip_ratio": round(self.gzip_ratio, 4),
            "fidelity": self.fidelity.to_dict(),
            "accuracy": self.accuracy,
            "regression": self.regression,
            "tasks": self.tasks,
            "conversion_seconds": round(self.conversion_seconds, 3),
            "calibration": self.calibration,
            "layers": [row.to_dict() for row in self.layers],
            "stages": list(self.stages),
            "training": self.training,
            "latency": self.latency,
            "qat_parity": self.qat_parity,
            "conversion_parity": self.conversion_parity,
            "edgetpu": self.edgetpu,
            "precision": self.precision,
            "exports": {k: v for k, v in self.exports.items()},
            "accuracy_budget": self.accuracy_budget,
            "search": self.search,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def summary_rows(self) -> list[tuple[str, str, str]]:
        """(metric, original, compressed) rows for the summary tables."""
        o, c = self.original, self.compressed
        rows = [
            ("params", f"{o.params:,}", f"{c.params:,}"),
            (
                ".tflite bytes",
                f"{o.tflite_bytes:,}",
                f"{c.tflite_bytes:,} ({self.size_ratio:.2f}x)",
            ),
            (
                "gzip bytes",
                f"{o.tflite_gzip_bytes:,}",
                f"{c.tflite_gzip_bytes:,} ({self.gzip_ratio:.2f}x)",
            ),
        ]
        rows += task_rows(self.to_dict())
        if self.latency:
            lat = self.latency
            rows.append(
                (
                    f"p50 latency ({lat['num_threads']} thread)",
                    f"{lat['original_p50_ms']:.3f} ms",
                    f"{lat['compressed_p50_ms']:.3f} ms ({lat['speedup']:.2f}x faster)",
                )
            )
        if self.qat_parity:
            p = self.qat_parity
            text = (
                f"SQNR {p['sqnr_db'] if isinstance(p['sqnr_db'], str) else round(p['sqnr_db'], 1)}"
            )
            if p.get("top1_agreement") is not None:
                text += f", top-1 {p['top1_agreement']:.2%}"
            rows.append(("QAT model vs .tflite", "", text))
        f = self.fidelity
        lowest = " (lowest output)" if len(f.outputs) > 1 else ""
        rows.append((f"SQNR vs float{lowest}", "", format_db(f.sqnr_db)))
        if f.top1_agreement is not None:
            rows.append(("top-1 agreement", "", f"{f.top1_agreement:.2%}"))
        rows.append(("max |diff|", "", f"{f.max_abs_diff:.3g}"))
        return rows

    def table(self) -> str:
        """A compact plain-text summary for the terminal."""
        rows = [("", "original", f"{self.recipe}"), *self.summary_rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(r)
            )
            for r in rows
        ]
        rule = "-" * len(lines[0])
        out = [rule, lines[0], rule, *lines[1:], rule]
        for name, record in self.exports.items():
            fid = record.get("fidelity") or {}
            line = f"{name}: {record.get('path')} ({record.get('bytes', 0):,} bytes)"
            if fid:
                sq = fid["sqnr_db"]
                line += f", SQNR vs float {sq if isinstance(sq, str) else f'{sq:.1f} dB'}"
            out.append(line)
        float32_file = float32_file_text(self.quantization, self.precision)
        if float32_file:
            out.append(f"op precision (read from the .tflite): {float32_file}")
        if self.search:
            out.append(search_text(self.search))
        out.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(out)

    def to_markdown(self) -> str:
        lines = [
            f"# keras_squeeze report: {self.recipe}",
            "",
            f"- Keras flavour: {self.keras_flavour}",
            f"- Quantization: {self.quantization} ({self.scheme})",
        ]
        if self.calibration:
            lines.append(f"- Calibration: {self.calibration}")
        if self.precision and self.precision.get("counts"):
            counts = ", ".join(f"{k} x{v}" for k, v in self.precision["counts"].items())
            float32_file = float32_file_text(self.quantization, self.precision)
            counts += f" (**{float32_file}**)" if float32_file else ""
            lines.append(f"- Op precision (read from the .tflite): {counts}")
        lines.append(f"- Fidelity measured on: {self.fidelity.inputs}")
        scored = self.accuracy or self.regression
        if scored:
            what = "Accuracy" if self.accuracy else "Error"
            lines.append(f"- {what} measured on: {scored['samples']} samples from {scored['data']}")
        lines.append(f"- Conversion time: {self.conversion_seconds:.2f} s")
        lines += ["", "## Summary", "", "| | original | compressed |", "|---|---:|---:|"]
        lines += [f"| {m} | {o} | {c} |" for m, o, c in self.summary_rows()]
        if len(self.fidelity.outputs) > 1:
            lines += ["", "## Per output", "", *output_table_markdown(self.to_dict())]
        if self.stages:
            lines += ["", "## Training stages", ""]
            mse = any(st.get("mse") is not None for st in self.stages)
            lines.append(
                "| stage | epochs | steps | seconds | accuracy | "
                + ("MSE | " if mse else "")
                + ".tflite bytes | gzip bytes |"
            )
            lines.append("|---|---:|---:|---:|---:|" + ("---:|" if mse else "") + "---:|---:|")
            for st in self.stages:
                acc = "" if st["accuracy"] is None else f"{st['accuracy']:.4f}"
                err = "" if st.get("mse") is None else f"{st['mse']:.4g}"
                size = "" if st["tflite_bytes"] is None else f"{st['tflite_bytes']:,}"
                gz = "" if st["tflite_gzip_bytes"] is None else f"{st['tflite_gzip_bytes']:,}"
                lines.append(
                    f"| {st['name']} | {st['epochs']} | {st['steps']} | {st['seconds']:.1f} | "
                    f"{acc} | {f'{err} | ' if mse else ''}{size} | {gz} |"
                )
            lines += [f"- {st['name']}: {note}" for st in self.stages for note in st["notes"]]
        if self.exports:
            lines += [
                "",
                "## Exports",
                "",
                "| format | path | bytes | fidelity vs float Keras | notes |",
            ]
            lines.append("|---|---|---:|---|---|")
            for name, r in self.exports.items():
                fid = r.get("fidelity")
                fid_text = _fidelity_text(fid) if fid else ""
                if r.get("agreement"):
                    fid_text += f"; vs {r['reference']}: {_fidelity_text(r['agreement'])}"
                lines.append(
                    f"| {name} | {r.get('path')} | {r.get('bytes', 0):,} | {fid_text} | "
                    f"{'; '.join(r.get('notes', []))} |"
                )
        if self.search:
            lines += search_markdown(self.search)
        keys = target_keys(self.layers)
        clustered = any(row.clusters is not None for row in self.layers)
        header = ["layer", "type", "params", ".tflite kernel", "sparsity"]
        header += [f"{key} target" for key in keys] + (["clusters"] if clustered else [])
        lines += ["", "## Layers", "", "| " + " | ".join([*header, "note"]) + " |"]
        lines.append("|---|---|---:|---|---:|" + "---:|" * (len(header) - 5) + "---|")
        for row in self.layers:
            cells = [row.name, row.type, f"{row.params:,}", row.quantized or ""]
            cells.append("" if row.sparsity is None else f"{row.sparsity:.1%}")
            cells += [format_target(row.targets.get(key)) for key in keys]
            if clustered:
                cells.append("" if row.clusters is None else str(row.clusters))
            lines.append("| " + " | ".join([*cells, row.reason or ""]) + " |")
        if self.notes or self.warnings:
            lines += ["", "## Notes", ""]
            lines += [f"- {n}" for n in self.notes]
            lines += [f"- **Warning:** {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"


def _fidelity_text(fid: dict) -> str:
    sq = fid["sqnr_db"]
    parts = [f"SQNR {sq}" if isinstance(sq, str) else f"SQNR {sq:.1f} dB"]
    if fid.get("top1_agreement") is not None:
        parts.append(f"top-1 {fid['top1_agreement']:.2%}")
    parts.append(f"max diff {fid['max_abs_diff']:.3g}")
    return ", ".join(parts)
