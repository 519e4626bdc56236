"""ks.export.* on both Keras flavours, each file loaded back and run by the test itself."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_squeeze as ks
from keras_squeeze.core.models import input_specs, keras_outputs
from keras_squeeze.data.inputs import take_samples
from keras_squeeze.errors import DataError, ExportError, RecipeError
from tests.conftest import keras


def _run_tflite_file(path, x):
    it = Interpreter(model_path=str(path))
    runner = it.get_signature_runner()
    ((name, detail),) = runner.get_input_details().items()
    scale, zero = detail["quantization"]
    feed = (
        x if not scale else np.clip(np.round(x / scale + zero), -128, 255).astype(detail["dtype"])
    )
    ((out_name, out_detail),) = runner.get_output_details().items()
    if detail["shape"][0] == 1:  # the default .tflite fixes the batch at 1: one row at a time
        out = np.concatenate(
            [runner(**{name: feed[i : i + 1]})[out_name] for i in range(len(feed))]
        )
    else:
        out = runner(**{name: feed})[out_name]
    o_scale, o_zero = out_detail["quantization"]
    return (out.astype(np.float32) - o_zero) * o_scale if o_scale else out


@pytest.mark.parametrize("mode", ["float32", "dynamic", "float16", "int8", "int16x8"])
def test_to_tflite_writes_a_file_that_runs(trained, digits8, tmp_path, mode):
    (x, _), (xt, _) = digits8
    path = tmp_path / "m.tflite"
    art = ks.export.to_tflite(
        trained, path, quantization=mode, representative_data=x[:100], verification_data=xt[:50]
    )
    assert path.read_bytes() == art.content and art.size_bytes == path.stat().st_size
    assert art.fidelity.samples == 50 and art.fidelity.top1_agreement >= 0.9
    out = _run_tflite_file(path, xt[:20])
    ref = np.asarray(trained(xt[:20], training=False))
    assert (out.argmax(-1) == ref.argmax(-1)).mean() >= 0.9
    if mode == "float32":
        np.testing.assert_allclose(out, ref, atol=1e-4)
    assert list(tmp_path.iterdir()) == [path]  # no temp files left behind


@pytest.mark.parametrize("io_type", ["int8", "uint8", "float32"])
def test_int8_io_types(trained_models, digits8, io_type):
    (x, _), _ = digits8
    art = ks.export.to_tflite(
        trained_models["keras3"],
        quantization="int8",
        representative_data=x[:64],
        inference_input_type=io_type,
        inference_output_type=io_type,
    )
    it = Interpreter(model_content=art.content)
    assert np.dtype(it.get_input_details()[0]["dtype"]).name == io_type
    assert np.dtype(it.get_output_details()[0]["dtype"]).name == io_type
    assert art.fidelity.top1_agreement >= 0.9


def test_int16x8_with_int16_io(trained_models, digits8):
    (x, _), _ = digits8
    art = ks.export.to_tflite(
        trained_models["tf_keras"],
        quantization="int16x8",
        representative_data=x[:64],
        inference_input_type="int16",
        inference_output_type="int16",
    )
    assert (
        np.dtype(Interpreter(model_content=art.content).get_input_details()[0]["dtype"]) == np.int16
    )
    assert art.fidelity.sqnr_db > 30


def test_to_tflite_bad_arguments(trained_models, digits8):
    (x, _), _ = digits8
    m = trained_models["keras3"]
    with pytest.raises(
        DataError,
        match=r"'int8' quantization needs representative data.*Received: representative_data=None",
    ):
        ks.export.to_tflite(m, quantization="int8")
    with pytest.raises(
        RecipeError, match=r"Unknown quantization mode.*'int8'.*Received: quantization='int4'"
    ):
        ks.export.to_tflite(m, quantization="int4")
    with pytest.raises(
        RecipeError,
        match=r"inference_input_type does not fit the 'float16'.*Received: inference_input_type='int8'",
    ):
        ks.export.to_tflite(m, quantization="float16", inference_input_type="int8")
    with pytest.raises(RecipeError, match=r"Expected one of 'int8', 'uint8', 'float32'"):
        ks.export.to_tflite(
            m, quantization="int8", representative_data=x[:8], inference_input_type="int16"
        )


def test_float_onnx_from_keras_keeps_names_and_values(trained, digits8, tmp_path):
    _, (xt, _) = digits8
    path = tmp_path / "m.onnx"
    art = ks.export.to_onnx(trained, path, verification_data=xt[:32])
    assert art.agreement is None and art.fidelity.max_abs_diff < 1e-4
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert [o.name for o in sess.get_outputs()] == ["logits"]
    out = sess.run(None, {"image": xt[:16]})[0]
    np.testing.assert_allclose(out, np.asarray(trained(xt[:16], training=False)), atol=1e-4)


@pytest.mark.parametrize("mode", ["dynamic", "float16", "int8", "int16x8"])
def test_quantized_onnx_from_tflite(trained, digits8, tmp_path, mode):
    (x, _), (xt, _) = digits8
    tfl = ks.export.to_tflite(trained, quantization=mode, representative_data=x[:64])
    path = tmp_path / "q.onnx"
    art = ks.export.to_onnx(trained, path, tflite=tfl.content, verification_data=xt[:32])
    assert art.agreement is not None and art.agreement.sqnr_db >= 30
    import onnx

    proto = onnx.load(str(path))
    ops = {n.op_type for n in proto.graph.node}
    if mode in ("int8", "int16x8", "dynamic"):
        assert "DequantizeLinear" in ops  # QDQ form carries the quantization
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert [o.name for o in sess.get_outputs()] == ["logits"]
    feed = xt[:8]
    if mode == "int8":  # int8 model I/O: quantize with the .tflite's input parameters
        d = Interpreter(model_content=tfl.content).get_input_details()[0]
        scale, zero = d["quantization"]
        feed = np.clip(np.round(feed / scale + zero), -128, 127).astype(np.int8)
    assert sess.get_inputs()[0].shape[0] == 1  # the batch-1 .tflite gives a batch-1 ONNX file
    out = np.concatenate([sess.run(None, {"image": feed[i : i + 1]})[0] for i in range(len(feed))])
    assert out.shape == (8, 10)


def test_saved_model_in_tf_serving_layout(trained, digits8, tmp_path):
    _, (xt, _) = digits8
    art = ks.export.to_saved_model(trained, tmp_path / "digits", verification_data=xt[:16])
    assert art.path == tmp_path / "digits" / "1"
    assert (art.path / "saved_model.pb").exists() and (art.path / "variables").is_dir()
    loaded = tf.saved_model.load(str(art.path))
    sig = loaded.signatures["serving_default"]
    assert list(sig.structured_input_signature[1]) == ["image"]
    assert list(sig.structured_outputs) == ["logits"]
    out = sig(image=tf.constant(xt[:8]))["logits"].numpy()
    np.testing.assert_allclose(out, np.asarray(trained(xt[:8], training=False)), atol=1e-5)
    again = ks.export.to_saved_model(trained, tmp_path / "digits", version=2)
    assert again.path.name == "2" and (tmp_path / "digits" / "1").exists()
    assert sorted(p.name for p in (tmp_path / "digits").iterdir()) == ["1", "2"]
    with pytest.raises(
        ExportError, match=r"version must be a non-negative integer.*Received: version='v1'"
    ):
        ks.export.to_saved_model(trained, tmp_path / "x", version="v1")


def _two_in_two_out(flavour):
    k = keras(flavour)
    a = k.Input((4,), name="zeta")
    b = k.Input((3,), name="alpha")
    h = k.layers.Concatenate()([k.layers.Dense(8)(a), k.layers.Dense(8)(b)])
    return k.Model(
        [a, b], [k.layers.Dense(2, name="zz_out")(h), k.layers.Dense(5, name="aa_out")(h)]
    )


def test_multi_input_multi_output_through_every_format(flavour, tmp_path):
    model = _two_in_two_out(flavour)
    rng = np.random.default_rng(0)
    data = [rng.random((64, 4), dtype=np.float32) * 10, rng.random((64, 3), dtype=np.float32) * 0.1]
    samples = take_samples(data, input_specs(model), None, "x")
    ref = keras_outputs(model, samples)
    tfl = ks.export.to_tflite(
        model, quantization="int8", representative_data=data, verification_data=data
    )
    # Inputs with 100x different ranges get their own scales: mapping by name worked.
    assert tfl.fidelity.sqnr_db > 25
    onnx_art = ks.export.to_onnx(model, tmp_path / "m.onnx", verification_data=data)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    outs = dict(
        zip(
            [o.name for o in sess.get_outputs()],
            sess.run(None, {"zeta": data[0], "alpha": data[1]}),
            strict=True,
        )
    )
    np.testing.assert_allclose(outs["zz_out"], ref[0], atol=1e-4)
    np.testing.assert_allclose(outs["aa_out"], ref[1], atol=1e-4)
    assert onnx_art.fidelity.max_abs_diff < 1e-4
    sm = ks.export.to_saved_model(model, tmp_path / "sm", verification_data=data)
    sig = tf.saved_model.load(str(sm.path)).signatures["serving_default"]
    res = sig(zeta=tf.constant(data[0]), alpha=tf.constant(data[1]))
    np.testing.assert_allclose(res["aa_out"].numpy(), ref[1], atol=1e-5)


def test_to_tflite_fixes_the_batch_at_one_unless_asked(trained_models):
    from keras_squeeze.report.tflite_reader import read_tflite

    model = trained_models["keras3"]
    assert model.inputs[0].shape[0] is None
    fixed = read_tflite(ks.export.to_tflite(model).content)
    free = read_tflite(ks.export.to_tflite(model, dynamic_batch=True).content)
    assert fixed.tensors[fixed.inputs[0]].shape_signature[0] == 1
    assert free.tensors[free.inputs[0]].shape_signature[0] == -1
    assert model.inputs[0].shape[0] is None  # the user's model keeps its free batch


def test_a_subclassed_model_gets_a_batch_1_file_too():
    k = keras("keras3")

    class Net(k.Model):
        def __init__(self):
            super().__init__()
            self.d = k.layers.Dense(3)

        def call(self, x):
            return self.d(x)

    net = Net()
    net(np.zeros((2, 5), np.float32))
    art = ks.export.to_tflite(net)
    # copied from its class and traced at batch 1 (core.models.fixed_batch_copy); a copy
    # that cannot be made keeps the free batch with a note (tests/core, test_cluster)
    assert not any("keeps a free batch" in n for n in art.notes), art.notes
    assert Interpreter(model_content=art.content).get_input_details()[0]["shape_signature"][0] == 1
