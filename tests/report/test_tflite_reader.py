"""The .tflite reader on real converter output: constants, quantization, sparse encoding."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_squeeze.data.inputs import take_samples
from keras_squeeze.errors import ModelError
from keras_squeeze.export import tflite as tflite_export
from keras_squeeze.report import layers
from keras_squeeze.report.layers import layer_rows, similarity
from keras_squeeze.report.tflite_reader import read_tflite
from tests.conftest import keras


def _dense_model(flavour, sparsity=0.0, seed=0):
    k = keras(flavour)
    model = k.Sequential(
        [k.Input((32,)), k.layers.Dense(64, name="hidden"), k.layers.Dense(8, name="out")]
    )
    kernel, bias = model.get_layer("hidden").get_weights()
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=kernel.shape).astype(np.float32)
    kernel[rng.random(kernel.shape) < sparsity] = 0.0
    model.get_layer("hidden").set_weights([kernel, bias])
    return model, kernel


def test_float_constants_read_back_exactly(flavour):
    model, kernel = _dense_model(flavour)
    m = read_tflite(tflite_export.convert(model, "float32"))
    assert "FULLY_CONNECTED" in m.opcode_counts()
    matches = [t for t in m.constants() if t.shape == (64, 32)]
    assert len(matches) == 1
    np.testing.assert_array_equal(matches[0].values(), kernel.T)


def test_int8_constants_dequantize_per_channel(flavour):
    model, kernel = _dense_model(flavour)
    x = np.random.default_rng(1).normal(size=(64, 32)).astype(np.float32)
    from keras_squeeze.core.models import input_specs

    calib = take_samples(x, input_specs(model), None, "representative_data")
    m = read_tflite(tflite_export.convert(model, "int8", calib))
    t = next(t for t in m.constants() if t.shape == (64, 32))
    assert t.dtype == "int8" and t.scales is not None
    # int8 symmetric: error at most half a step of the channel's scale.
    scales = t.scales.reshape(-1, 1) if t.per_channel else t.scales
    assert np.all(np.abs(t.values() - kernel.T) <= scales / 2 + 1e-7)
    assert m.tensors[m.inputs[0]].dtype == "int8"


def test_sparse_encoding_is_densified_exactly():
    model, kernel = _dense_model("keras3", sparsity=0.9)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    m = read_tflite(converter.convert())
    sparse = [t for t in m.tensors if t.sparse]
    assert len(sparse) == 1
    np.testing.assert_array_equal(sparse[0].values(), kernel.T)
    assert sparse[0].stored_bytes < kernel.nbytes / 2  # it really is stored compressed
    assert "DENSIFY" in m.opcode_counts()


def test_not_a_flatbuffer():
    with pytest.raises(ModelError, match=r"not a TFLite model.*'TFL3'.*Received: 11 bytes"):
        read_tflite(b"hello world")


def test_similarity_sees_through_layouts_and_per_channel_scaling():
    rng = np.random.default_rng(0)
    conv = rng.normal(size=(3, 3, 4, 8)).astype(np.float32)  # HWIO
    ohwi = conv.transpose(3, 0, 1, 2)
    scaled = ohwi * rng.uniform(-2, 2, size=(8, 1, 1, 1))  # batch-norm folding
    assert similarity(conv, ohwi) == pytest.approx(1.0)
    assert similarity(conv, scaled) == pytest.approx(1.0)
    other = rng.normal(size=ohwi.shape)
    assert similarity(conv, other) < 0.5
    dw = rng.normal(size=(3, 3, 8, 1)).astype(np.float32)
    assert similarity(dw, dw.reshape(1, 3, 3, 8)) == pytest.approx(1.0)


def _exact_similarity(kernel, values) -> float:
    """similarity() computed on every slice (no probe), as a reference."""
    best = 0.0
    for layout in layers._layouts(kernel):
        if layout.shape != values.shape:
            continue
        for axis in {0, layout.ndim - 1}:
            a = np.moveaxis(layout, axis, 0).reshape(layout.shape[axis], -1).astype(np.float64)
            b = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1).astype(np.float64)
            na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
            live = (na > 0) & (nb > 0)
            if not live.any() or ((na > 0) != (nb > 0)).mean() > 0.05:
                continue
            cos = np.abs((a[live] * b[live]).sum(1)) / (na[live] * nb[live])
            best = max(best, float(cos.mean()))
    return best


def test_similarity_probe_keeps_every_match_and_its_score():
    """Above 2 x PROBE_SLICES slices, a few slices decide first; a real match (quantized,
    scaled per channel, with pruned rows) still scores exactly, a different array is
    rejected on the probe."""
    rng = np.random.default_rng(1)
    conv = rng.normal(size=(3, 3, 16, 64)).astype(np.float32)
    assert conv.shape[-1] > 2 * layers.PROBE_SLICES
    conv[..., ::3] = 0  # pruned output channels, among them slices the probe reads
    ohwi = conv.transpose(3, 0, 1, 2)
    scale = np.abs(ohwi).max(axis=(1, 2, 3), keepdims=True) / 127 + 1e-12
    int8 = np.round(ohwi / scale) * scale * rng.uniform(0.5, 2, size=(64, 1, 1, 1))
    for values in (ohwi, int8):
        assert similarity(conv, values) == pytest.approx(_exact_similarity(conv, values))
        assert similarity(conv, values) >= 0.99
    other = rng.normal(size=ohwi.shape)
    assert similarity(conv, other) < layers.PROBE_REJECT
    assert _exact_similarity(conv, other) < layers.MATCH_THRESHOLD
    dense = rng.normal(size=(40, 24)).astype(np.float32)
    for values in (dense.T, dense.T * 3.0, rng.normal(size=(24, 40))):
        exact = _exact_similarity(dense, values)
        assert (similarity(dense, values) >= layers.MATCH_THRESHOLD) == (
            exact >= layers.MATCH_THRESHOLD
        )


def test_layer_rows_match_by_value_in_both_flavours(trained_models, flavour, digits8):
    model = trained_models[flavour]
    (x, _), _ = digits8
    from keras_squeeze.core.models import input_specs, walk_layers

    calib = take_samples(x[:64], input_specs(model), None, "representative_data")
    m = read_tflite(tflite_export.convert(model, "int8", calib))
    rows = {r.name: r for r in layer_rows(list(walk_layers(model)), m)}
    kernels = [la for la in model.layers if any("kernel" in w.name for w in la.weights)]
    assert len(kernels) == 5
    for layer in kernels:
        row = rows[layer.name]
        assert row.quantized in ("int8 per-channel", "int8 per-tensor"), (layer.name, row)
        assert row.sparsity is not None and row.sparsity < 0.2
    # Conv kernels are per-channel; batch norm after a conv is folded into it.
    conv = next(la for la in kernels if type(la).__name__ == "Conv2D")
    assert rows[conv.name].quantized == "int8 per-channel"
    bn = next(r for r in rows.values() if r.type == "BatchNormalization")
    assert bn.quantized is None and "folded" in bn.reason
