"""compress() + save() for both Keras flavours and every post-training recipe.

Each saved artifact is loaded back here, in its own runtime, independently of
keras_squeeze's own verification, and compared with the Keras model.
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_squeeze as ks
from tests.conftest import assert_saved_files, assert_weights_equal, keras, weights_snapshot

RECIPES = ["dynamic", "float16", "int8", "int16x8"]
REPORT_KEYS = {
    "recipe",
    "original",
    "compressed",
    "fidelity",
    "accuracy",
    "layers",
    "conversion_seconds",
}


def _tflite_logits(path, x):
    runner = Interpreter(model_path=str(path)).get_signature_runner()
    ((name, d_in),) = runner.get_input_details().items()
    ((out_name, d_out),) = runner.get_output_details().items()
    assert list(d_in["shape_signature"]) == [1, *x.shape[1:]]  # batch 1 by default
    in_q = d_in["quantization"] if d_in["quantization"][0] else None
    feed = np.clip(np.round(x / in_q[0] + in_q[1]), -128, 127).astype(d_in["dtype"]) if in_q else x
    out = np.concatenate([runner(**{name: feed[i : i + 1]})[out_name] for i in range(len(x))])
    s, z = d_out["quantization"]
    return ((out.astype(np.float32) - z) * s if s else out), in_q


@pytest.mark.parametrize("recipe", RECIPES)
def test_compress_and_save_then_every_artifact_runs(trained, flavour, digits8, tmp_path, recipe):
    (x, _), (xt, yt) = digits8
    before = weights_snapshot(trained)
    result = ks.compress(
        trained, recipe, representative_data=x, validation_data=(xt, yt), verbose=0
    )
    assert_weights_equal(before, trained)  # the user's model is never changed
    assert result.model is trained
    assert result.report.keras_flavour == flavour
    assert result.report.compressed.tflite_bytes == len(result.tflite)
    assert result.report.size_ratio < (0.6 if recipe == "float16" else 0.35)

    out = result.save(tmp_path / "out")
    assert_saved_files(out, ["model.onnx", "model.tflite", "saved_model"], ("size", "accuracy"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left

    ref = np.asarray(trained(xt[:64], training=False))
    # .tflite in ai_edge_litert
    tfl, in_q = _tflite_logits(out / "model.tflite", xt[:64])
    assert (tfl.argmax(-1) == ref.argmax(-1)).mean() >= 0.95
    # .onnx in onnxruntime (same I/O types as the .tflite it came from)
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    feed = xt[:64]
    if in_q:
        feed = np.clip(np.round(feed / in_q[0] + in_q[1]), -128, 127).astype(np.int8)
    onnx_out = np.concatenate(  # converted from the batch-1 .tflite
        [sess.run(None, {"image": feed[i : i + 1]})[0] for i in range(len(feed))]
    ).astype(np.float32)
    if recipe == "int8":
        d_out = Interpreter(model_path=str(out / "model.tflite")).get_output_details()[0]
        s, z = d_out["quantization"]
        onnx_out = (onnx_out - z) * s
    assert (onnx_out.argmax(-1) == tfl.argmax(-1)).mean() >= 0.98
    # SavedModel with tf.saved_model.load, TF Serving layout
    sig = tf.saved_model.load(str(out / "saved_model" / "1")).signatures["serving_default"]
    sm = sig(image=tf.constant(xt[:64]))["logits"].numpy()
    np.testing.assert_allclose(sm, ref, atol=1e-4)

    report = json.loads((out / "report.json").read_text())
    assert set(report) >= REPORT_KEYS
    for side in ("original", "compressed"):
        assert set(report[side]) == {"params", "tflite_bytes", "tflite_gzip_bytes"}
    assert set(report["fidelity"]) >= {"sqnr_db", "top1_agreement", "max_abs_diff"}
    assert report["fidelity"]["top1_agreement"] >= 0.95
    assert set(report["accuracy"]) >= {"original", "compressed"}
    assert abs(report["accuracy"]["original"] - report["accuracy"]["compressed"]) < 0.05
    assert set(report["exports"]) == {"tflite", "onnx", "saved_model"}
    assert report["exports"]["onnx"]["agreement"]["sqnr_db"] != "-inf"
    # artifacts are named inside the output folder, so a copied folder stays right
    paths = {name: r["path"] for name, r in report["exports"].items()}
    assert paths == {"tflite": "model.tflite", "onnx": "model.onnx", "saved_model": "saved_model/1"}
    for name in ("report.json", "report.md", "report.html"):
        assert str(tmp_path) not in (out / name).read_text(), name
    for row in report["layers"]:
        assert {"name", "type", "sparsity", "clusters", "quantized", "reason"} <= set(row)
    conv_rows = [r for r in report["layers"] if r["type"] == "Conv2D"]
    expected = {"dynamic": "int8", "float16": "float16", "int8": "int8", "int16x8": "int8"}[recipe]
    for r in conv_rows:
        if recipe == "dynamic" and r["params"] < 1024:
            assert r["quantized"] == "float32" and "under 1,024 elements" in r["reason"], r
        else:
            assert r["quantized"].startswith(expected), r
    md = (out / "report.md").read_text()
    assert f"# keras_squeeze report: {recipe}" in md and "| layer | type |" in md


def test_saving_again_replaces_the_artifacts(trained_models, digits8, tmp_path):
    (x, _), _ = digits8
    model = trained_models["keras3"]
    first = ks.compress(model, "dynamic", verbose=0).save(tmp_path / "o", formats=["tflite"])
    second = ks.compress(model, "int8", representative_data=x, verbose=0)
    second.save(first, formats=["tflite", "saved_model"])
    assert json.loads((first / "report.json").read_text())["recipe"] == "int8"
    assert (first / "model.tflite").read_bytes() == second.tflite
    assert_saved_files(first, ["model.tflite", "saved_model"])


def test_calibration_is_bounded_and_reported(trained_models, digits8):
    (x, y), _ = digits8
    result = ks.compress(
        trained_models["tf_keras"], "int8", train_data=(x, y), num_calibration_samples=50, verbose=0
    )
    assert result.report.calibration == "50 of 1400 samples from train_data"
    assert result.report.accuracy is None  # no validation data


def test_int8_is_the_converter_call_of_to_tflite(trained_models, digits8):
    # The speed benchmarks take compress()'s int8 file from to_tflite on this equality.
    (x, _), _ = digits8
    model = trained_models["keras3"]
    result = ks.compress(model, "int8", representative_data=x[:60], verbose=0)
    art = ks.export.to_tflite(model, quantization="int8", representative_data=x[:60])
    assert result.tflite == art.content


def test_synthetic_fidelity_is_said(trained_models):
    result = ks.compress(trained_models["keras3"], "float16", verbose=0)
    assert "synthetic" in result.report.fidelity.inputs
    assert any("synthetic inputs" in n for n in result.report.notes)


def test_progress_lines(trained_models, digits8, capsys):
    (x, _), _ = digits8
    ks.compress(trained_models["keras3"], "int8", representative_data=x, verbose=1)
    out = capsys.readouterr().out
    assert "keras_squeeze: calibrating on 200 of 1400 samples from representative_data" in out
    assert "keras_squeeze: verifying the .tflite" in out
    ks.compress(trained_models["keras3"], "dynamic", verbose=0)
    assert capsys.readouterr().out == ""


def test_uint8_io_end_to_end(trained_models, digits8, tmp_path):
    (x, _), (xt, yt) = digits8
    result = ks.compress(
        trained_models["tf_keras"],
        "int8",
        representative_data=x,
        validation_data=(xt, yt),
        inference_input_type="uint8",
        inference_output_type="uint8",
        verbose=0,
    )
    assert result.report.fidelity.top1_agreement >= 0.95
    out = result.save(tmp_path / "u8", formats=["tflite", "onnx"])
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].type == "tensor(uint8)"


@pytest.mark.parametrize("fmt", ["keras", "h5", "saved_model_tf_keras", "saved_model_export"])
def test_model_paths_load(trained_models, digits8, tmp_path, fmt):
    (x, _), (xt, _) = digits8
    if fmt == "keras":
        model = trained_models["keras3"]
        path = tmp_path / "m.keras"
        model.save(path)
    elif fmt == "h5":
        model = trained_models["tf_keras"]
        path = tmp_path / "m.h5"
        model.save(path)
    elif fmt == "saved_model_tf_keras":
        model = trained_models["tf_keras"]
        path = tmp_path / "sm"
        model.save(path, save_format="tf")
    else:
        model = trained_models["keras3"]
        path = tmp_path / "exported"
        model.export(path, verbose=False)
    result = ks.compress(
        str(path), "int8", representative_data=x, validation_data=xt[:100], verbose=0
    )
    ref = np.asarray(model(xt[:100], training=False))
    tfl = ks.export.to_tflite(result.model, quantization="float32").content
    runner = Interpreter(model_content=tfl).get_signature_runner()
    ((name, _),) = runner.get_input_details().items()
    out = next(iter(runner(**{name: xt[:1]}).values()))
    np.testing.assert_allclose(out, ref[:1], atol=1e-4)
    assert result.report.fidelity.top1_agreement >= 0.95


def test_keras3_sequential_and_tf_data(digits8):
    (x, y), _ = digits8
    k = keras("keras3")
    model = k.Sequential([k.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10)])
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    result = ks.compress(
        model, "int8", representative_data=ds, num_calibration_samples=100, verbose=0
    )
    assert result.report.calibration == "the first 100 samples from representative_data"


def test_latency_is_measured_on_request(trained_models, digits8):
    (x, _), _ = digits8
    result = ks.compress(
        trained_models["keras3"], "int8", representative_data=x, measure_latency=True, verbose=0
    )
    lat = result.report.latency
    assert lat["num_threads"] == 1 and lat["runs"] >= 30
    assert lat["original_p50_ms"] > 0 and lat["compressed_p50_ms"] > 0
    assert lat["speedup"] == pytest.approx(
        lat["original_p50_ms"] / lat["compressed_p50_ms"], rel=1e-6
    )
    assert "p50 latency (1 thread)" in result.report.table()
    assert ks.compress(trained_models["keras3"], "dynamic", verbose=0).report.latency is None
