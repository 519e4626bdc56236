"""Each op's precision read back from real .tflite files of every kind."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_squeeze.data.inputs import Samples
from keras_squeeze.export import tflite as tflite_export
from keras_squeeze.report.precision import op_precisions, precision_counts, summary
from keras_squeeze.report.tflite_reader import read_tflite


@pytest.fixture(scope="module")
def dense_model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((64,), name="x")
    h = keras.layers.Dense(32, activation="relu", name="a")(inp)
    return keras.Model(inp, keras.layers.Dense(16, name="b")(h))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("float32", {"float32": 2}),
        ("float16", {"float16 weights": 2}),  # read through their DEQUANTIZE ops
        ("dynamic", {"int8 weights": 1, "float32": 1}),  # 'b' has 512 weights, 'a' 2,048
        ("int8", {"int8": 2}),
        ("int16x8", {"int16x8": 2}),
    ],
)
def test_op_precision_of_each_mode(dense_model, mode, expected):
    x = np.random.default_rng(0).normal(size=(16, 64)).astype(np.float32)
    samples = Samples([x], None, 16, 16, "x")
    content = tflite_export.convert(dense_model, mode, samples)
    model = read_tflite(content)
    ops = op_precisions(model)
    assert precision_counts(ops) == expected
    assert all(op.opcode == "FULLY_CONNECTED" for op in ops)
    entry = summary(model, content)
    assert entry["counts"] == expected and "plan" not in entry
