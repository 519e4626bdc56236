"""Quantization-aware training with the real engine (tfmot) and converter."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import tf_keras

import keras_squeeze as ks
from keras_squeeze.data.inputs import take_samples
from keras_squeeze.errors import RecipeError
from keras_squeeze.quantization import parity, qat_apply
from keras_squeeze.quantization.qat_config import QAT
from keras_squeeze.report.tflite_reader import read_tflite
from keras_squeeze.stages import get_stage
from tests.conftest import assert_weights_equal, weights_snapshot

L = tf_keras.layers


def _treatments(model):
    return {layer.name: qat_apply.treatment(layer)[0] for layer in model.layers[1:]}


def test_each_layer_gets_a_treatment():
    inp = tf_keras.Input((8, 8, 3))
    a = L.Conv2D(4, 3, name="conv_linear")(inp)
    a = L.BatchNormalization(name="bn_folded")(a)
    b = L.Conv2D(4, 3, activation="relu", name="conv_relu")(inp)
    b = L.BatchNormalization(name="bn_after_relu")(b)
    h = L.Add(name="add")([a, b])
    h = L.Activation("hard_sigmoid", name="hard_sigmoid")(h)
    h = L.Multiply(name="se_multiply")([h, b])
    h = L.Rescaling(2.0, name="rescale")(h)
    h = h + 1.0  # a TF-op layer
    h = L.Flatten(name="flat")(h)
    out = L.Dense(3, activation="softmax", name="head")(h)
    model = tf_keras.Model(inp, out)
    t = _treatments(model)
    op_layer = next(la.name for la in model.layers if type(la).__name__ == "TFOpLambda")
    assert t["conv_linear"] == qat_apply.DEFAULT and t["bn_folded"] == qat_apply.FOLDED
    assert t["bn_after_relu"] == qat_apply.OUTPUT
    assert t["hard_sigmoid"] == qat_apply.OUTPUT and t["se_multiply"] == qat_apply.OUTPUT
    assert t["rescale"] == qat_apply.OUTPUT and t["add"] == qat_apply.DEFAULT
    assert t[op_layer] is None
    assert t["head"] == qat_apply.DEFAULT


@pytest.fixture(scope="module")
def data(digits8):
    (x, y), (xt, yt) = digits8
    return (x[:320], y[:320]), (xt[:128], yt[:128])


@pytest.fixture(scope="module")
def qat_result(trained_models, data):
    model = trained_models["tf_keras"]
    before = weights_snapshot(model)
    (x, y), (xt, yt) = data
    result = ks.compress(
        model, "qat", train_data=(x, y), validation_data=(xt, yt), epochs=1, verbose=0
    )
    return model, before, result


def test_qat_gives_a_full_int8_model_that_agrees_with_its_keras_model(qat_result):
    model, before, result = qat_result
    assert_weights_equal(before, model)
    tfl = read_tflite(result.tflite)
    assert (
        tfl.tensors[tfl.inputs[0]].dtype == "int8" and tfl.tensors[tfl.outputs[0]].dtype == "int8"
    )
    assert not [t for t in tfl.tensors if t.dtype == "float32" and not t.is_constant]
    p = result.report.qat_parity
    assert p["ok"] and p["top1_agreement"] >= 0.99 and p["sqnr_db"] >= 15
    assert "layers" not in p  # per-layer comparison only when they disagree
    rows = {r.name: r for r in result.report.layers}
    assert (
        rows["conv2d_1"].quantized == "int8 per-channel"
        and rows["conv2d_1"].targets["qat"] == "default"
    )
    assert rows["batch_normalization"].targets["qat"] == "folded"
    assert result.report.stages[0]["settings"]["scheme"] == "Default8BitQuantizeScheme"
    # the model was compiled with Adam(1e-3); QAT fine-tunes at 0.3 of it
    assert "fine-tuned with Adam at learning rate 0.0003" in result.report.stages[0]["notes"]
    assert "QAT model vs .tflite" in result.report.table()


def test_qat_model_is_returned_and_exports(qat_result, tmp_path):
    _, _, result = qat_result
    assert any(type(layer).__name__ == "QuantizeWrapperV2" for layer in result.model.layers)
    out = result.save(tmp_path / "q", formats=["tflite", "onnx"])
    assert (out / "model.onnx").exists()
    assert result.report.exports["onnx"]["agreement"]["top1_agreement"] >= 0.98


def test_keras3_qat_stays_tf_keras_and_says_so(trained_models, data):
    (x, y), _ = data
    result = ks.compress(
        trained_models["keras3"], "qat", train_data=(x, y), epochs=1, distill=False, verbose=0
    )
    assert type(result.model).__module__.startswith("tf_keras")
    assert any("stays" in n or "tf_keras model" in n for n in result.report.notes)
    assert result.report.qat_parity["ok"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["MobileNetV3Small", "EfficientNetB0"])
def test_qat_covers_architectures_whole_model_qat_fails_on(name):
    import keras

    builder = getattr(keras.applications, name)
    kwargs = {"alpha": 0.75} if name == "MobileNetV3Small" else {}
    keras.utils.set_random_seed(0)
    model = builder(input_shape=(32, 32, 3), weights=None, classes=10, **kwargs)
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 32, 32, 3), dtype=np.float32) * 255, rng.integers(0, 10, 32)
    with warnings.catch_warnings():  # parity on a random-init model is not the point here
        warnings.simplefilter("ignore")
        result = ks.compress(
            model, "qat", train_data=(x, y), epochs=1, batch_size=16, distill=False, verbose=0
        )
    tfl = read_tflite(result.tflite)
    activations = [t for t in tfl.tensors if not t.is_constant]
    assert all(t.dtype in ("int8", "int32") for t in activations), {t.dtype for t in activations}
    layers = result.report.stages[0]["layers"]
    assert all(d["setting"] is not None or d["reason"] for d in layers.values())
    if name == "MobileNetV3Small":  # its hard-swish comes through the bridge as TF-op layers
        kept = [n for n, d in layers.items() if d["setting"] is None]
        assert kept and all("TF-op layer" in layers[n]["reason"] for n in kept)
    if name == "EfficientNetB0":  # its fused swish is split out for training
        assert any("swish moved out of" in note for note in result.report.stages[0]["notes"])


def test_bad_qat_input(trained_models, data):
    (x, y), _ = data
    with pytest.raises(
        RecipeError,
        match=r"full-integer model.*quantization='int8'.*Received: quantization='float16'",
    ):
        ks.Recipe(qat=QAT(), quantization="float16")
    inp = tf_keras.Input((8, 8, 1))
    nothing = tf_keras.Model(inp, L.Softmax()(L.Flatten()(inp)))
    with pytest.raises(RecipeError, match=r"no layer quantization-aware training can train"):
        ks.compress(nothing, "qat", train_data=(x, y[:320]), verbose=0)

    class Custom(L.Layer):
        def build(self, shape):
            self.w = self.add_weight(name="w", shape=(shape[-1], 4))

        def call(self, v):
            return v @ self.w

    h = Custom(name="custom")(L.Flatten()(inp))
    model = tf_keras.Model(inp, L.Dense(10)(h))
    with pytest.raises(
        RecipeError,
        match=r"'custom' \(Custom\) was named for quantization-aware training but cannot take it",
    ):
        ks.compress(
            model, ks.Recipe(qat=QAT(layers={"custom": True})), train_data=(x, y), verbose=0
        )
    with pytest.raises(
        RecipeError, match=r"per-layer QAT choice is True.*Received: layers\['dense'\]=0\.5"
    ):
        QAT(layers={"dense": 0.5})


def test_parity_names_the_first_layer_that_parts(qat_result, data):
    """A QAT model changed after conversion disagrees with the .tflite from that layer on."""
    _, _, result = qat_result
    qat_model = result.model
    (x, _), _ = data
    samples = take_samples(
        x[:32],
        [__import__("keras_squeeze.core.models", fromlist=["x"]).input_specs(qat_model)[0]],
        None,
        "x",
    )
    assert parity.check(qat_model, result.tflite, samples, 0.99, 15.0)["ok"]
    wrapper = qat_model.get_layer("quant_conv2d_2")
    saved = [w.copy() for w in wrapper.get_weights()]
    try:
        weights = wrapper.get_weights()
        kernel_index = next(i for i, w in enumerate(wrapper.weights) if w.name.endswith("kernel:0"))
        weights[kernel_index] = -weights[kernel_index]
        wrapper.set_weights(weights)
        report = parity.check(qat_model, result.tflite, samples, 0.99, 15.0)
        # the stage's check puts it in the report, loudly
        full = dataclasses.replace(result.report, warnings=[])
        get_stage("qat").verify(full, qat_model, result.tflite, samples, QAT(), verbose=0)
    finally:
        wrapper.set_weights(saved)
    (warning,) = full.warnings
    assert warning.startswith("THE QUANTIZATION-AWARE KERAS MODEL AND ITS .tflite DISAGREE")
    assert "they first part at layer 'quant_conv2d_2'" in warning
    assert not report["ok"]
    assert report["first_divergent_layer"] == "quant_conv2d_2"
    layers = {r["layer"]: r for r in report["layers"]}
    assert layers["quant_max_pooling2d"]["ok"]  # right before the change they still agree


def test_fused_swish_is_split_without_changing_the_float_model():
    from keras_squeeze.quantization.rewrites import split_fused_activations

    inp = tf_keras.Input((6, 6, 3))
    conv = L.Conv2D(3, 1, activation="swish", name="c")
    a = conv(inp)
    b = conv(a * 0.5)  # a shared layer: both of its calls are rewired
    out = L.Dense(2, activation="swish", name="d")(L.Flatten()(L.Add()([a, b])))
    model = tf_keras.Model(inp, out)
    rewritten, split = split_fused_activations(model)
    assert split == ["c", "d"]
    assert rewritten.get_layer("c").get_config()["activation"] == "linear"
    assert rewritten.layers[-1].name == "d_swish"  # the model output now comes from it
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(rewritten(x), model(x), rtol=1e-5, atol=1e-6)
    plain = tf_keras.Sequential([tf_keras.Input((3,)), L.Dense(2)])
    same, none = split_fused_activations(plain)
    assert none == [] and same is plain


def test_activation_ranges_start_at_the_float_models_ranges(trained_models, data):
    """The engine starts moving-average ranges at [-6, 6] (and the input's at 0): before
    any training step the QAT model is then far from the float one."""
    (x, _), (xt, yt) = data
    model = trained_models["tf_keras"]
    decisions = qat_apply.decide(model, QAT())
    qat = qat_apply.apply(model, decisions, qat_apply.scheme(False, False))
    untouched = {v.name: float(np.ravel(v.numpy())[0]) for v in qat.non_trainable_weights}
    assert untouched["quant_logits/post_activation_max:0"] == 6.0  # the engine's start
    set_layers = qat_apply.calibrate_ranges(qat, model, [x[:200]])
    assert "quant_logits" in set_layers and any(n.startswith("quantize_layer") for n in set_layers)
    logits = model.predict(x[:200], verbose=0)
    ranges = {
        v.name.split("/")[-1]: float(v.numpy())
        for v in qat.get_layer("quant_logits").weights
        if "post_activation_m" in v.name
    }
    assert ranges["post_activation_min:0"] == pytest.approx(min(0.0, float(logits.min())), rel=1e-5)
    assert ranges["post_activation_max:0"] == pytest.approx(max(0.0, float(logits.max())), rel=1e-5)
    float_acc = float((model.predict(xt, verbose=0).argmax(-1) == yt).mean())
    qat_acc = float((qat.predict(xt, verbose=0).argmax(-1) == yt).mean())
    assert qat_acc >= float_acc - 0.03  # uncalibrated it is at chance (input range 0)
