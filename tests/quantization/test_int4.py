"""int4 weights through ai-edge-quantizer: the preset, its report, per-layer errors, refusals."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.data.inputs import Samples
from keras_squeeze.errors import RecipeError
from keras_squeeze.export import localise
from keras_squeeze.export import tflite as tflite_export
from keras_squeeze.export.runtime import TFLiteRunner
from keras_squeeze.quantization import int4
from keras_squeeze.report.metrics import compare
from keras_squeeze.report.precision import op_precisions
from keras_squeeze.report.tflite_reader import read_tflite


@pytest.fixture(scope="module")
def mlp(digits8):
    """An MLP of 17K weights on the 8x8 digits (3 epochs): Dense layers with inputs of 64
    and 160 (blockwise) and one of 40 (not a multiple of 32: per channel)."""
    (x, y), (xt, yt) = digits8
    keras.utils.set_random_seed(3)
    inp = keras.Input((64,), name="x")
    h = keras.layers.Dense(160, activation="relu", name="wide")(inp)
    h = keras.layers.Dense(40, activation="relu", name="narrow")(h)
    out = keras.layers.Dense(10, name="logits")(h)
    model = keras.Model(inp, out)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x.reshape(-1, 64), y, epochs=3, batch_size=64, verbose=0)
    return model, xt[:64].reshape(-1, 64), yt[:64]


@pytest.fixture(scope="module")
def results(mlp):
    model, x, y = mlp
    return {
        recipe: ks.compress(model, recipe, representative_data=x, validation_data=(x, y), verbose=0)
        for recipe in ("int4-weights", "int8")
    }


def test_int4_file_is_smaller_than_int8_and_reports_int4(results):
    four, eight = results["int4-weights"], results["int8"]
    assert len(four.tflite) < 0.7 * len(eight.tflite)
    assert four.report.size_ratio < 0.2
    rows = {row.name: row.quantized for row in four.report.layers}
    assert rows["wide"] == "int4 blockwise-32"
    assert rows["narrow"] == "int4 blockwise-32"  # its input axis (160) is 5 blocks
    assert rows["logits"] == "int4 per-channel"  # 40 inputs: no whole block
    counts = four.report.precision["counts"]
    assert counts == {"int4 weights": 3}
    assert "int4 blockwise-32" in four.report.scheme
    # the fidelity checks ran on it, against the float Keras model
    assert four.report.fidelity.sqnr_db > 15
    assert four.report.conversion_parity["ok"]
    assert four.report.accuracy["compressed"] >= four.report.accuracy["original"] - 0.05
    assert eight.report.precision["counts"] == {"int8": 3}


def test_int4_values_read_back_close_to_the_keras_kernels(results, mlp):
    model, _, _ = mlp
    tensors = [t for t in read_tflite(results["int4-weights"].tflite).tensors if t.dtype == "int4"]
    assert sorted(t.block_size for t in tensors) == [0, 32, 32]  # logits: per channel
    kernel = model.get_layer("wide").get_weights()[0].T  # FULLY_CONNECTED stores (out, in)
    stored = next(t for t in tensors if t.shape == kernel.shape).values()
    step = np.abs(kernel).max() / 7
    assert np.abs(stored - kernel).max() <= step  # within one int4 step of the largest block


def test_channelwise_when_the_input_axis_is_not_a_multiple_of_the_block():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((40,)), keras.layers.Dense(8, name="d")])
    content = tflite_export.convert(model, "float32")
    ops = int4.weight_ops(content)
    assert [op.granularity for op in ops] == ["CHANNELWISE"]
    tflite = read_tflite(int4.quantize(content))
    assert [p.precision for p in op_precisions(tflite)] == ["int4 weights"]


def test_layer_errors_one_layer_at_a_time(mlp, results):
    model, x, _ = mlp
    samples = Samples([x[:16]], None, 16, 16, "x")
    errors = int4.layer_errors(model, samples)
    assert set(errors) == {"wide", "narrow", "logits"}
    # each layer alone adds less error than all three together
    content = results["int4-weights"].tflite
    reference = TFLiteRunner(content=tflite_export.convert(model)).run(samples, ["x"], ["logits"])
    outputs = TFLiteRunner(content=content).run(samples, ["x"], ["logits"])
    together = compare(reference, outputs, ["logits"], "")
    assert all(np.isfinite(v) and v > together.sqnr_db - 0.5 for v in errors.values())


def test_int4_refuses_a_model_without_a_weight_op(tmp_path):
    inp = keras.Input((8, 8, 3), name="image")
    out = keras.layers.DepthwiseConv2D(3, name="dw")(inp)
    model = keras.Model(inp, keras.layers.LayerNormalization()(out))
    target = tmp_path / "model.tflite"
    with pytest.raises(
        RecipeError,
        match=r"found no weight op ai-edge-quantizer can store in int4\. Expected a model with "
        r"Dense.*Received: a float \.tflite of ops .*DEPTHWISE_CONV_2D",
    ):
        ks.export.to_tflite(model, target, quantization="int4-weights")
    assert list(tmp_path.iterdir()) == []


def test_onnx_of_an_int4_result_says_its_weights_are_float(results, tmp_path):
    out = results["int4-weights"].save(tmp_path / "out", formats=("tflite", "onnx"))
    onnx = results["int4-weights"].report.exports["onnx"]
    assert "FLOAT32 WEIGHTS" in onnx["notes"][0] and "INT4" in onnx["notes"][0]
    assert (out / "model.onnx").exists()
    assert onnx["bytes"] > len(results["int4-weights"].tflite)


def test_localising_an_int4_departure_skips_prefixes_without_a_weight_op():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    h = keras.layers.Embedding(50, 32, name="embed")(tokens)  # GATHER: no int4 recipe
    h = keras.layers.Dense(32, name="proj")(h)
    model = keras.Model(tokens, keras.layers.Dense(4, name="head")(keras.layers.Flatten()(h)))
    x = np.random.default_rng(0).integers(0, 50, (8, 6)).astype(np.int32)
    samples = Samples([x], None, 8, 8, "tokens")
    where, probes = localise.first_departing_layer(
        model, lambda m: tflite_export.convert(m, "int4-weights"), samples, 200.0
    )
    assert where == "proj"  # int4 departs (at 200 dB) first where its first kernel is
    assert {"layer": "embed", "sqnr_db": float("inf"), "ok": True} in probes
