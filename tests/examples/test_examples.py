"""Every example script runs end to end with tiny settings, and does what it says.

The same results feed tflite_models/build.py's writer, so the reference-model
pipeline (files, sha256, accuracy on the test digits, manifest) is exercised
here on real models without training them twice.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex

import numpy as np
import pytest

import keras_squeeze as ks
from examples import (
    benchmark_android,
    distill_student,
    export_tf_serving,
    prune_and_quantize,
    qat_edgetpu,
    quickstart_keras3,
)
from tests.bench.conftest import adb_port  # noqa: F401  (session fixture)
from tests.conftest import assert_saved_files, weights_snapshot
from tflite_models import build

TINY = {"image_size": 8}


def _run(main, *args, **kwargs):
    """(what main returns, what it printed)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        returned = main(*args, **kwargs)
    return returned, buffer.getvalue()


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("examples")


@pytest.fixture(scope="module")
def quickstart(out):
    return quickstart_keras3.main(out / "quickstart", epochs=2, verbose=0, **TINY)


@pytest.fixture(scope="module")
def pruned(out):
    return prune_and_quantize.main(
        out / "prune", epochs=1, finetune_epochs=1, target_sparsity=0.5, verbose=0, **TINY
    )


@pytest.fixture(scope="module")
def qat(out):
    return _run(qat_edgetpu.main, out / "qat", epochs=1, finetune_epochs=1, verbose=0, **TINY)


@pytest.fixture(scope="module")
def student(out):
    return distill_student.main(out / "student", teacher_epochs=1, epochs=3, verbose=0, **TINY)


def test_quickstart_writes_verified_int8_files(quickstart, out, capsys):
    model, result = quickstart
    assert type(model).__module__.startswith("keras.")  # a Keras 3 model
    assert_saved_files(out / "quickstart", ["model.onnx", "model.tflite", "saved_model"])
    report = json.loads((out / "quickstart" / "report.json").read_text())
    assert report["quantization"] == "int8" and report["size_ratio"] < 0.5
    assert set(report["exports"]) == {"tflite", "onnx", "saved_model"}
    assert result.report.fidelity.top1_agreement >= 0.9


def test_prune_and_quantize_reaches_its_target(pruned, out):
    targets = [row for row in pruned.report.layers if "sparsity" in row.targets]
    assert targets and all(row.targets["sparsity"] == 0.5 for row in targets)
    assert all(row.sparsity >= 0.48 for row in targets)
    assert "logits" not in [row.name for row in targets]  # skipped, as the example asks
    assert pruned.report.quantization == "int8"
    assert_saved_files(out / "prune", ["model.onnx", "model.tflite"], ("size", "sparsity"))


def test_distilled_student_is_small_and_learns(student):
    distilled, result = student
    assert distilled.model.count_params() < 5_000
    acc = distilled.report["accuracy"]
    assert acc["student"] > 0.3 and acc["teacher"] > 0.3  # well above chance (0.1)
    assert result.report.quantization == "int8"


def test_qat_for_the_edgetpu(qat, out):
    result, text = qat
    edgetpu = result.report.edgetpu
    assert edgetpu["model"] == "model.tflite" and edgetpu["blockers"] == []
    assert edgetpu["ops_on_edgetpu"] == edgetpu["ops_total"]
    assert edgetpu["input_types"] == ["uint8"] and edgetpu["output_types"] == ["uint8"]
    assert (out / "qat" / "model_for_edgetpu.tflite").is_file()
    assert f"Edge TPU: {edgetpu['ops_total']} of {edgetpu['ops_total']} ops map" in text
    if not edgetpu.get("compiled"):  # no edgetpu_compiler here: the command to run is printed
        command = ks.edgetpu.compiler_command(
            "edgetpu_compiler", out / "qat" / "model_for_edgetpu.tflite", out / "qat"
        )
        assert "  " + " ".join(str(c) for c in command) in text.splitlines()


def test_export_for_tf_serving_answers_like_the_keras_model(out):
    artifact, body, served = export_tf_serving.main(out / "serving", epochs=1, **TINY)
    assert artifact.path == out / "serving" / "digits" / "1"
    assert (artifact.path / "saved_model.pb").is_file()
    assert body["signature_name"] == "serving_default" and len(body["instances"]) == 3
    (name,) = body["instances"][0]
    assert np.asarray(body["instances"][0][name]).shape == (8, 8, 1)
    assert json.loads((out / "serving" / "request.json").read_text()) == body
    assert served.shape == (3, 10) and np.isfinite(served).all()


def test_benchmark_on_android_prints_its_plan_without_a_device(out, adb_port, capsys):  # noqa: F811
    run = benchmark_android.main(
        out / "android",
        epochs=1,
        binary="android_aarch64_benchmark_model",
        adb_server_port=adb_port,
        **TINY,
    )
    assert run["result"] is None and not any(d.ready for d in run["devices"])
    assert sorted(run["models"]) == ["float32", "int8"]
    text = capsys.readouterr().out
    assert "Not benchmarking: no Android device is attached." in text
    commands = run["commands"]
    assert commands[0] == [
        "adb",
        "-s",
        "<serial>",
        "push",
        "android_aarch64_benchmark_model",
        "/data/local/tmp/benchmark_model",
    ]
    runs = [c[-1] for c in commands if c[3] == "shell" and "benchmark_model --graph" in c[-1]]
    assert [shlex.split(r)[1] for r in runs] == [
        "--graph=/data/local/tmp/keras_squeeze/float32.tflite",
        "--graph=/data/local/tmp/keras_squeeze/int8.tflite",
    ]
    assert all("--num_threads=4" in r and "--enable_op_profiling=true" in r for r in runs)
    assert all(shlex.join(c) in text for c in commands)


def test_benchmark_on_android_without_adb_prints_its_plan(out, monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    run = benchmark_android.main(out / "android2", epochs=1, **TINY)
    assert run["result"] is None and run["devices"] == []
    assert "Not benchmarking: adb was not found." in capsys.readouterr().out


def test_reference_model_writer_on_the_example_results(quickstart, pruned, qat, student, tmp_path):
    model, result = quickstart
    before = weights_snapshot(model)
    entries = (
        build.quickstart_entries(model, result)
        + build.prune_entries(pruned)
        + build.qat_entries(qat[0])
        + build.student_entries(student[1])
    )
    manifest = build.write_models(entries, tmp_path)
    assert build.check_files(tmp_path) == []
    files = manifest["models"]
    assert set(files) == {e.file for e in entries} and "digits_cnn_pruned50_int8.tflite" in files
    assert files["small_cnn_int8.tflite"]["input"] == {"shape": [1, 8, 8, 1], "dtype": "int8"}
    assert files["digits_cnn_qat_uint8io.tflite"]["input"]["dtype"] == "uint8"
    assert files["small_cnn_float32.tflite"]["accuracy"] == pytest.approx(
        result.report.accuracy["original"], abs=2 / 397
    )
    assert files["small_cnn_int8.tflite"]["accuracy"] == pytest.approx(
        result.report.accuracy["compressed"], abs=1e-4
    )
    for w0, w1 in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(w0, w1)
    (tmp_path / "small_cnn_int8.tflite").write_bytes(b"changed")
    (tmp_path / "stray.tflite").write_bytes(b"x")
    assert build.check_files(tmp_path) == [
        f"small_cnn_int8.tflite: 7 bytes, manifest says {files['small_cnn_int8.tflite']['bytes']}",
        "small_cnn_int8.tflite: sha256 differs from the manifest",
        "stray.tflite: not in the manifest",
    ]
