"""The sensitivity table: one row per layer, what each probe measured, as an object.

`Sensitivity` is what `ks.sensitivity` returns and what a search reads:
`.layers` (rows in model order), `.layer(name)`, `.ranked(by)` (most
sensitive first), `.to_json()` / `Sensitivity.from_json()` (a lossless round
trip), `.table()` (text) and `.save(dir)` (sensitivity.json and, with
matplotlib, sensitivity.png).

JSON layout (`SCHEMA_VERSION` 1):

    {"schema": 1, "model": ..., "metric": ..., "baseline": ..., "samples": ...,
     "probes": {"drops": [{"name": "prune_0.5", "label": "prune 50%"}, ...],
                "errors": [{"name": "int8", "label": "int8"}, ...]},
     "layers": [{"name", "type", "kernel_params",
                 "drops": {"prune_0.5": 0.012 | null, ...},
                 "errors": {"int8": {"sqnr_db": 31.2, "rmse": 0.004} | null, ...},
                 "skipped": {"cluster_16": "why", ...}}, ...],
     "notes": [...], "seconds": ..., "complete": true}

A drop is the metric of the original model minus the metric with that layer
alone changed: points of accuracy (a fraction) for a classifier, points of
relative MSE (MSE / variance of the targets) for a regression output; for
several outputs, the largest drop among them. An infinite SQNR (an op
quantized without error) is written as the string "inf".
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

from keras_squeeze.errors import ConfigError

SCHEMA_VERSION = 1
JSON_NAME = "sensitivity.json"
CHART_NAME = "sensitivity.png"


def _json_float(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    return value


def format_points(drop) -> str:
    """A drop in points with its sign ("+1.5"); "+0.0" for a drop that rounds to zero."""
    if drop is None:
        return "-"
    shown = round(100 * drop, 1)
    return f"{shown if shown != 0 else 0.0:+.1f}"


def _cell(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _read_float(value):
    return float(value) if isinstance(value, str) else value


@dataclasses.dataclass
class LayerSensitivity:
    """One layer's row.

    Attributes:
        name, type: the Keras layer's name and class name.
        kernel_params: number of kernel weights the weight probes change.
        drops: {probe name: metric drop, or None when not measured}.
        errors: {error probe name: {"sqnr_db", "rmse"}, or None when not measured}.
        skipped: {probe name: why it was not measured on this layer}.
    """

    name: str
    type: str
    kernel_params: int
    drops: dict = dataclasses.field(default_factory=dict)
    errors: dict = dataclasses.field(default_factory=dict)
    skipped: dict = dataclasses.field(default_factory=dict)

    @property
    def worst_drop(self) -> float | None:
        """The largest metric drop any weight probe measured on this layer."""
        values = [v for v in self.drops.values() if v is not None]
        return max(values) if values else None

    def to_dict(self) -> dict:
        errors = {
            k: None if v is None else {m: _json_float(x) for m, x in v.items()}
            for k, v in self.errors.items()
        }
        return {
            "name": self.name,
            "type": self.type,
            "kernel_params": self.kernel_params,
            "drops": dict(self.drops),
            "errors": errors,
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_dict(cls, d: dict) -> LayerSensitivity:
        errors = {
            k: None if v is None else {m: _read_float(x) for m, x in v.items()}
            for k, v in d.get("errors", {}).items()
        }
        return cls(
            d["name"],
            d["type"],
            int(d["kernel_params"]),
            dict(d.get("drops", {})),
            errors,
            dict(d.get("skipped", {})),
        )


@dataclasses.dataclass
class Sensitivity:
    """Per-layer sensitivity of a model, measured on the user's data (see the module
    docstring for what each figure means).

    Attributes:
        model: the model's name.
        metric: what the drops are measured in, e.g. "accuracy".
        baseline: the original model's value of that metric (first output's).
        samples: which samples the metric was measured on.
        drop_probes / error_probes: [(name, label)] of the columns, in order.
        layers: one LayerSensitivity per measured layer, in model order.
        notes: how things were measured, and what was left out and why.
        seconds: how long the measurement took.
        complete: False when the time budget stopped it before every layer.
    """

    model: str
    metric: str
    baseline: float | None
    samples: str
    drop_probes: list
    error_probes: list
    layers: list
    notes: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    complete: bool = True

    def layer(self, name: str) -> LayerSensitivity:
        """The row of layer `name`.

        Raises:
            ConfigError: no such row.
        """
        for row in self.layers:
            if row.name == name:
                return row
        raise ConfigError(
            f"No layer of that name in the sensitivity table. Expected one of "
            f"{[r.name for r in self.layers][:12]}. Received: {name!r}"
        )

    @property
    def columns(self) -> list[str]:
        """Every column key: the drop probes' names, then "<error>.sqnr_db" / "<error>.rmse"."""
        keys = [name for name, _ in self.drop_probes]
        for name, _ in self.error_probes:
            keys += [f"{name}.sqnr_db", f"{name}.rmse"]
        return keys

    def value(self, row: LayerSensitivity, column: str):
        """One cell: a drop (column "prune_0.5") or an error figure ("int8.sqnr_db")."""
        if column in row.drops:
            return row.drops[column]
        probe, _, figure = column.partition(".")
        if probe in row.errors:
            err = row.errors[probe]
            return None if err is None else err.get(figure or "sqnr_db")
        if column in self.columns:
            return None
        raise ConfigError(
            f"Unknown sensitivity column. Expected one of {self.columns}. Received: {column!r}"
        )

    def ranked(self, by: str | None = None) -> list[LayerSensitivity]:
        """The rows, most sensitive first.

        Args:
            by: a column (see `columns`; an error probe's name alone means its
                SQNR): drops rank high first, SQNR low first, RMSE high first.
                None (default): by the worst drop any weight probe caused, then,
                for rows without one, by the first error probe's SQNR.
        Rows without a value for the column come last, in model order.

        Raises:
            ConfigError: an unknown column.
        """
        if by is not None and "." not in by and by in {n for n, _ in self.error_probes}:
            by = f"{by}.sqnr_db"
        if by is not None and by not in self.columns:
            raise ConfigError(
                f"Unknown sensitivity column. Expected one of {self.columns} (or None). "
                f"Received: by={by!r}"
            )

        def key(row):
            if by is None:
                worst = row.worst_drop
                if worst is not None:
                    return (0, -worst)
                if self.error_probes:
                    sqnr = self.value(row, f"{self.error_probes[0][0]}.sqnr_db")
                    if sqnr is not None:
                        return (1, sqnr)
                return (2, 0.0)
            v = self.value(row, by)
            if v is None:
                return (1, 0.0)
            return (0, v if by.endswith(".sqnr_db") else -v)

        return sorted(self.layers, key=key)

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA_VERSION,
            "model": self.model,
            "metric": self.metric,
            "baseline": self.baseline,
            "samples": self.samples,
            "probes": {
                "drops": [{"name": n, "label": label} for n, label in self.drop_probes],
                "errors": [{"name": n, "label": label} for n, label in self.error_probes],
            },
            "layers": [row.to_dict() for row in self.layers],
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
            "complete": self.complete,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict) -> Sensitivity:
        """The table from `to_dict()` / sensitivity.json.

        Raises:
            ConfigError: not a sensitivity table of a known schema.
        """
        if not isinstance(d, dict) or d.get("schema") != SCHEMA_VERSION:
            got = d.get("schema") if isinstance(d, dict) else type(d).__name__
            raise ConfigError(
                f"Not a sensitivity table this version reads. Expected a sensitivity.json of "
                f"schema {SCHEMA_VERSION}. Received: schema {got!r}"
            )
        probes = d["probes"]
        return cls(
            model=d["model"],
            metric=d["metric"],
            baseline=d["baseline"],
            samples=d["samples"],
            drop_probes=[(p["name"], p["label"]) for p in probes["drops"]],
            error_probes=[(p["name"], p["label"]) for p in probes["errors"]],
            layers=[LayerSensitivity.from_dict(r) for r in d["layers"]],
            notes=list(d.get("notes", [])),
            seconds=float(d.get("seconds", 0.0)),
            complete=bool(d.get("complete", True)),
        )

    @classmethod
    def from_json(cls, text: str) -> Sensitivity:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(
                f"A sensitivity table is JSON. Expected the text of a sensitivity.json. "
                f"Received: {e}"
            ) from e
        return cls.from_dict(data)

    def table(self) -> str:
        """The table as aligned text: one row per layer, in model order."""
        headers = ["layer", "type", "weights"]
        headers += [label for _, label in self.drop_probes]
        for _, label in self.error_probes:
            headers += [f"{label} SQNR dB", f"{label} RMSE"]
        lines = []
        for row in self.layers:
            cells = [row.name, row.type, f"{row.kernel_params:,}"]
            for name, _ in self.drop_probes:
                v = row.drops.get(name)
                cells.append(format_points(v))
            for name, _ in self.error_probes:
                err = row.errors.get(name)
                if err is None:
                    cells += ["-", "-"]
                else:
                    cells += [_cell(err.get("sqnr_db"), "{:.1f}"), _cell(err.get("rmse"), "{:.3g}")]
            lines.append(cells)
        widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(headers)]

        def fmt(cells):
            return "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )

        base = "-" if self.baseline is None else f"{self.baseline:.4f}"
        title = (
            f"sensitivity of '{self.model}': drops in points of {self.metric} "
            f"(original {base}, {self.samples}), each layer changed alone, no fine-tuning"
        )
        out = [title, fmt(headers), fmt(["-" * w for w in widths])]
        out += [fmt(c) for c in lines]
        if not self.complete:
            out.append("(stopped at the time budget: '-' cells were not measured)")
        return "\n".join(out)

    def save(self, directory) -> dict[str, pathlib.Path]:
        """Writes sensitivity.json and, with matplotlib, sensitivity.png into `directory`
        (each file atomically); returns {file name: path}.

        Raises:
            OutputError: the directory cannot be written.
        """
        from keras_squeeze.core import atomic
        from keras_squeeze.report import charts

        target = atomic.check_writable_dir(directory, "sensitivity directory")
        files = {JSON_NAME: (self.to_json() + "\n").encode("utf-8")}
        png = charts.sensitivity_chart(self.to_dict())  # drawn before anything is written
        if png is not None:
            files[CHART_NAME] = png
        return {name: atomic.write_bytes(target / name, data) for name, data in files.items()}
