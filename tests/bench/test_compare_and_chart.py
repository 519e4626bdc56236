"""compare_latency() for the report, and the PNG chart."""

from __future__ import annotations

import pathlib
import sys

import pytest

from keras_squeeze.bench import compare_latency
from keras_squeeze.bench.android import to_model_result
from keras_squeeze.bench.benchmark_output import parse_output
from keras_squeeze.bench.local import benchmark
from keras_squeeze.bench.results import BenchmarkResult
from keras_squeeze.errors import ConfigError, DependencyError

DATA = pathlib.Path(__file__).parent / "data"
PNG = b"\x89PNG\r\n\x1a\n"


def test_compare_latency_for_the_report(float_tflite, int8_tflite):
    report = compare_latency(float_tflite, int8_tflite, num_threads=1, min_runs=30)
    assert set(report) == {
        "latency_ratio",
        "speedup",
        "original_p50_ms",
        "compressed_p50_ms",
        "original_p90_ms",
        "compressed_p90_ms",
        "runs",
        "num_threads",
        "delegate",
        "measured",
        "machine",
    }
    assert report["latency_ratio"] == pytest.approx(
        report["compressed_p50_ms"] / report["original_p50_ms"]
    )
    assert report["speedup"] == pytest.approx(1 / report["latency_ratio"])
    assert report["runs"] >= 30 and report["num_threads"] == 1 and report["delegate"] == "xnnpack"


def test_chart_of_a_local_run(float_tflite, int8_tflite, tmp_path):
    pytest.importorskip("matplotlib")
    result = benchmark(
        {"float": float_tflite, "int8": int8_tflite},
        min_runs=50,
        min_seconds=0.05,
        measure_memory=False,
    )
    path = result.chart(tmp_path / "charts" / "latency.png")
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


def test_chart_of_device_results_without_samples(tmp_path):
    pytest.importorskip("matplotlib")
    models = {}
    for name in ("ti_am62x_cpu", "ti_am62x_xnnpack"):
        text = (DATA / f"{name}.txt").read_text()
        models[name] = to_model_result(parse_output(text), name, 1, "android:x", "?", 4)
    result = BenchmarkResult(models, "ti_am62x_cpu", {"num_threads": 4}, "recorded")
    assert result.ratio("ti_am62x_xnnpack") == pytest.approx(899.281 / 1239.807)
    assert result.chart(tmp_path / "device.png").read_bytes()[:8] == PNG


def test_chart_needs_png_and_matplotlib(float_tflite, tmp_path, monkeypatch):
    result = benchmark(float_tflite, min_runs=5, min_seconds=0, measure_memory=False)
    with pytest.raises(
        ConfigError, match=r"Expected a path ending in \.png\. Received: '.*latency\.svg'"
    ):
        result.chart(tmp_path / "latency.svg")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    with pytest.raises(
        DependencyError, match=r"needs matplotlib.*pip install 'keras-squeeze\[charts\]'"
    ):
        result.chart(tmp_path / "latency.png")
    assert not (tmp_path / "latency.png").exists()
