"""The reference models in tflite_models/: the files match manifest.json, and the harness
benchmarks every one of them (and each still scores its manifest accuracy)."""

from __future__ import annotations

import pytest

import keras_squeeze as ks
from tflite_models import build

MANIFEST = build.load_manifest()
MODELS = {name: build.HERE / name for name in MANIFEST["models"]}


def test_files_match_the_manifest():
    assert build.check_files() == []
    assert len(MODELS) >= 6
    assert sum(m["bytes"] for m in MANIFEST["models"].values()) < 3_000_000


def test_every_reference_model_is_benchmarked():
    result = ks.benchmark(
        {name.removesuffix(".tflite"): str(path) for name, path in MODELS.items()},
        baseline="digits_cnn_float32",
        warmup_runs=2,
        min_runs=10,
        min_seconds=0.0,
        measure_memory=False,
    )
    assert len(result.models) == len(MODELS)
    for name, record in MANIFEST["models"].items():
        r = result.models[name.removesuffix(".tflite")]
        assert r.size_bytes == record["bytes"]
        assert r.latency.count >= 10 and r.latency.percentiles[50] > 0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_manifest_accuracy_and_io(name, digits8):
    record = MANIFEST["models"][name]
    content = MODELS[name].read_bytes()
    assert build.io_spec(content) == {"input": record["input"], "output": record["output"]}
    _, (x_test, y_test) = digits8
    assert build.tflite_accuracy(content, x_test, y_test) == pytest.approx(
        record["accuracy"], abs=2 / len(y_test)
    )
    assert record["accuracy"] > 0.85
