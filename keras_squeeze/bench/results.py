"""Benchmark results: one record per model, the side-by-side comparison, table and JSON."""

from __future__ import annotations

import dataclasses
import json
import math

from keras_squeeze.bench.stats import LatencyStats, latency_ratio
from keras_squeeze.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class MemoryFootprint:
    """Peak memory of one model, and exactly how it was measured.

    Attributes:
        peak_bytes: the peak growth attributed to the model.
        method: what was measured (see `keras_squeeze.bench.memory` for the
            local scheme, or the benchmark_model line it came from).
        peak_rss_bytes: the process's whole peak resident set, when known.
    """

    peak_bytes: int
    method: str
    peak_rss_bytes: int | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class OpTiming:
    """One row of an operator profile (benchmark_model --enable_op_profiling).

    Attributes:
        node_type: the TFLite op ("CONV_2D") or delegate kernel
            ("TfLiteXNNPackDelegate", "Convolution (NHWC, F32) IGEMM").
        first_ms, avg_ms: time of the first run and the average over runs.
        percent: share of the total, in percent.
        times_called: calls per run.
        name: the profiler's name: output tensor names and the node index.
        tensors: the output tensor names parsed from `name`.
        node_index: the node index parsed from `name`, if any.
        layers: Keras layer names the op belongs to, where the converter kept
            them in the tensor names (empty when it did not).
    """

    node_type: str
    first_ms: float
    avg_ms: float
    percent: float
    times_called: int
    name: str
    tensors: list[str] = dataclasses.field(default_factory=list)
    node_index: int | None = None
    layers: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(repr=False)
class ModelResult:
    """How fast one model ran, and under which settings.

    Attributes:
        name: the model's label.
        size_bytes: .tflite size.
        target: "cpu" (this host, ai_edge_litert) or "android:<serial>".
        delegate: "xnnpack", "none" (built-in kernels), "edgetpu", "gpu",
            "nnapi" or an external delegate path.
        num_threads: CPU threads.
        init_ms: interpreter creation + allocate_tensors (benchmark_model: its
            "Init" time).
        first_inference_ms: the first invoke() after init.
        warmup: the warm-up runs (not part of `latency`).
        latency: the steady-state runs.
        memory: peak memory, when measured.
        samples_ms: every steady-state time (local runs), for charts.
        inputs: how each input was filled.
        op_profile: per-op times (Android with op profiling).
        notes: anything that qualifies the figures.
        raw_output: benchmark_model's full output (Android runs).
    """

    name: str
    size_bytes: int
    target: str
    delegate: str
    num_threads: int | None
    init_ms: float | None
    first_inference_ms: float | None
    warmup: LatencyStats | None
    latency: LatencyStats
    memory: MemoryFootprint | None = None
    samples_ms: list[float] | None = None
    inputs: list[str] = dataclasses.field(default_factory=list)
    op_profile: list[OpTiming] | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    raw_output: str | None = None

    def __repr__(self) -> str:
        return (
            f"ModelResult({self.name!r}, {self.target}, {self.delegate}, "
            f"p50={_ms(self.latency.p50_ms)}, mean={_ms(self.latency.mean_ms)}, "
            f"runs={self.latency.count})"
        )

    def to_dict(self, include_samples: bool = True) -> dict:
        return {
            "name": self.name,
            "size_bytes": self.size_bytes,
            "target": self.target,
            "delegate": self.delegate,
            "num_threads": self.num_threads,
            "init_ms": self.init_ms,
            "first_inference_ms": self.first_inference_ms,
            "warmup": self.warmup.to_dict() if self.warmup else None,
            "latency": self.latency.to_dict(),
            "memory": self.memory.to_dict() if self.memory else None,
            "samples_ms": list(self.samples_ms) if include_samples and self.samples_ms else None,
            "inputs": list(self.inputs),
            "op_profile": [o.to_dict() for o in self.op_profile] if self.op_profile else None,
            "notes": list(self.notes),
        }


def check_baseline(baseline: str | None, names: list[str]) -> None:
    """Raises ConfigError unless `baseline` is None or one of `names`."""
    if baseline is not None and baseline not in names:
        raise ConfigError(
            f"The baseline is not one of the models. Expected one of {names}. "
            f"Received: baseline={baseline!r}"
        )


def _ms(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


@dataclasses.dataclass(repr=False)
class BenchmarkResult:
    """Several models measured side by side.

    Attributes:
        models: {name: ModelResult}, in the order given.
        baseline: the name ratios are taken against (None: the first model).
        settings: the harness settings (threads, delegate, runs, seconds,
            interleaving).
        machine: where it ran.

    Example:
        >>> result = ks.benchmark({"float": "f.tflite", "int8": "q.tflite"},
        ...                       baseline="float")
        >>> result.ratio("int8")          # p50 int8 / p50 float
        0.42
        >>> print(result.table())
    """

    models: dict[str, ModelResult]
    baseline: str | None
    settings: dict
    machine: str

    def __post_init__(self):
        check_baseline(self.baseline, list(self.models))

    def __getitem__(self, name: str) -> ModelResult:
        return self.models[name]

    def __repr__(self) -> str:
        return f"BenchmarkResult({list(self.models)}, baseline={self.reference!r})"

    @property
    def reference(self) -> str:
        return self.baseline if self.baseline is not None else next(iter(self.models))

    def ratio(self, name: str) -> float:
        """p50 of `name` / p50 of the baseline (the mean where no p50 is known)."""
        base = self.models[self.reference].latency.center_ms
        return latency_ratio(self.models[name].latency.center_ms, base)

    def ratios(self) -> dict[str, float]:
        return {name: self.ratio(name) for name in self.models}

    def speedup(self, name: str) -> float:
        """How many times faster than the baseline `name` is (1 / ratio)."""
        return 1.0 / self.ratio(name)

    def table(self) -> str:
        """A plain-text table for the terminal."""
        header = [
            "model",
            "init ms",
            "first ms",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "mean±std ms",
            "min ms",
            "runs",
            "peak MB",
            f"vs {self.reference}",
        ]
        rows = []
        for name, r in self.models.items():
            lat = r.latency
            rows.append(
                [
                    name,
                    _ms(r.init_ms, 1),
                    _ms(r.first_inference_ms),
                    _ms(lat.p50_ms),
                    _ms(lat.p90_ms),
                    _ms(lat.p99_ms),
                    f"{_ms(lat.mean_ms)}±{_ms(lat.std_ms)}",
                    _ms(lat.min_ms),
                    str(lat.count),
                    "-" if r.memory is None else f"{r.memory.peak_bytes / 2**20:.1f}",
                    f"{self.ratio(name):.3f}x",
                ]
            )
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        lines.append(f"settings: {_settings_text(self.settings)}; {self.machine}")
        return "\n".join(lines)

    def to_dict(self, include_samples: bool = True) -> dict:
        return {
            "baseline": self.reference,
            "ratios": self.ratios(),
            "settings": dict(self.settings),
            "machine": self.machine,
            "models": {n: r.to_dict(include_samples) for n, r in self.models.items()},
        }

    def to_json(self, include_samples: bool = True) -> str:
        return json.dumps(self.to_dict(include_samples), indent=2, default=str)

    def save_json(self, path, include_samples: bool = True):
        """Writes the JSON atomically; returns the path."""
        from keras_squeeze.core import atomic

        return atomic.write_text(path, self.to_json(include_samples) + "\n")

    def chart(self, path, title: str | None = None):
        """Writes a PNG of the latency distributions (needs matplotlib); returns the path."""
        from keras_squeeze.bench.chart import latency_chart

        return latency_chart(self, path, title)


def _settings_text(settings: dict) -> str:
    keys = ("num_threads", "delegate", "warmup_runs", "min_runs", "min_seconds", "order")
    return ", ".join(f"{k}={settings[k]}" for k in keys if k in settings)
