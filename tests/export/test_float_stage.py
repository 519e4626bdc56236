"""The float32 baseline comes from the int8 conversion's own float stage (no second
conversion), and is the file a float32 conversion gives, less its conversion metadata."""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import keras_squeeze as ks
from keras_squeeze.core.models import input_specs
from keras_squeeze.data.inputs import take_samples
from keras_squeeze.export import tflite
from keras_squeeze.report.tflite_reader import read_tflite
from tests.conftest import keras


@pytest.fixture(scope="module")
def cnn():
    k = keras("keras3")
    k.utils.set_random_seed(1)
    inputs = k.Input((8, 8, 1), name="image")
    x = k.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = k.layers.BatchNormalization()(x)
    outputs = k.layers.Dense(10)(k.layers.Flatten()(x))
    return k.Model(inputs, outputs)


def _opcodes(content):
    return sorted({op.opcode for op in read_tflite(content).operators})


def _run(content, x):
    it = Interpreter(model_content=content)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def test_the_int8_conversion_keeps_the_float_file_it_calibrated(cnn, digits8):
    (x, _), _ = digits8
    samples = take_samples(x, input_specs(cnn), 30, "x")
    kept = {}
    content = tflite.convert(cnn, "int8", samples, keep_float=kept)
    assert list(kept) == [content]
    float_stage = kept[content]
    plain = tflite.convert(cnn, "float32")
    # the same ops and weights as a float32 conversion; only conversion metadata differs
    assert _opcodes(float_stage) == _opcodes(plain)
    assert abs(len(float_stage) - len(plain)) < 1024
    np.testing.assert_allclose(_run(float_stage, x[:1]), cnn(x[:1]), rtol=1e-4, atol=1e-4)
    assert all(t.scales is None and t.dtype != "int8" for t in read_tflite(float_stage).tensors)


def test_a_float32_conversion_is_its_own_baseline(cnn, capsys):
    kept = {}
    content = tflite.convert(cnn, "float32", keep_float=kept)
    assert kept == {content: content}
    result = ks.compress(cnn, "float32", verbose=1)
    # one conversion: no separate baseline, and the report compares the file with itself
    assert "converting the original model to a float32 .tflite (baseline)" not in (
        capsys.readouterr().out
    )
    assert result.report.original.tflite_bytes == len(result.tflite)
    assert result.report.size_ratio == 1.0


def test_modes_without_a_float_stage_keep_nothing(cnn):
    kept = {}
    tflite.convert(cnn, "float16", keep_float=kept)
    tflite.convert(cnn, "dynamic", keep_float=kept)
    assert kept == {}


def test_compress_int8_takes_its_baseline_from_that_stage(cnn, digits8, capsys):
    (x, _), _ = digits8
    result = ks.compress(cnn, "int8", representative_data=x[:40], verbose=1)
    out = capsys.readouterr().out
    assert "converting the original model to a float32 .tflite (baseline)" not in out
    plain = ks.compress(cnn, "float16", representative_data=x[:40], verbose=1)
    assert "converting the original model to a float32 .tflite (baseline)" in (
        capsys.readouterr().out
    )
    # the float16 run converted the float32 baseline itself: the two baselines agree
    assert abs(result.report.original.tflite_bytes - plain.report.original.tflite_bytes) < 1024
    assert result.report.size_ratio == pytest.approx(
        result.report.compressed.tflite_bytes / result.report.original.tflite_bytes
    )
