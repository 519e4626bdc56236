"""Which TFLite converter a model gets (`export.signature.converter_for`): a tf_keras
model's traced serving function converts to the file `from_keras_model` gives, without
the legacy SavedModel save that traces every layer, and keeps a batch-1 copy at batch 1."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from keras_squeeze import _compat
from keras_squeeze.core.batch import with_batch_size
from keras_squeeze.export import tflite
from keras_squeeze.export.signature import converter_for
from keras_squeeze.quantization import ptq
from keras_squeeze.report.tflite_reader import read_tflite
from tests.conftest import keras


def _cnn(flavour):
    k = keras(flavour)
    k.utils.set_random_seed(0)
    inputs = k.Input((8, 8, 1), name="image")
    x = k.layers.Conv2D(8, 3, name="conv")(inputs)
    x = k.layers.ReLU()(k.layers.BatchNormalization(name="bn")(x))
    x = k.layers.Flatten()(x)
    return k.Model(inputs, k.layers.Dense(10, name="logits")(x))


def _run(content, x):
    """Each sample through the file, fed as its int8 input."""
    it = Interpreter(model_content=content)
    it.allocate_tensors()
    (d_in,), (d_out,) = it.get_input_details(), it.get_output_details()
    scale, zero = d_in["quantization"]
    out = []
    for sample in x:
        it.set_tensor(d_in["index"], np.round(sample[None] / scale + zero).astype(np.int8))
        it.invoke()
        out.append(it.get_tensor(d_out["index"]))
    return np.concatenate(out)


def _int8(converter, x):
    def representative():
        for i in range(16):
            yield [x[i : i + 1]]

    ptq.configure_converter(converter, ptq.get_mode("int8"), representative, "int8", "int8")
    return bytes(converter.convert())


@pytest.fixture(scope="module")
def qat_model(digits8):
    tfmot = _compat.import_tfmot()
    tf_keras = keras("tf_keras")
    (x, y), _ = digits8
    model = tfmot.quantization.keras.quantize_model(_cnn("tf_keras"))
    model.compile("adam", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:64], y[:64], epochs=1, batch_size=16, verbose=0)
    return model


def test_keras3_graph_models_keep_from_keras_model():
    assert type(converter_for(_cnn("keras3"))).__name__ == "TFLiteKerasModelConverterV2"


def test_a_quantization_aware_tf_keras_model_converts_traced_to_the_same_file(qat_model, digits8):
    (x, _), _ = digits8
    traced = converter_for(qat_model)
    assert type(traced).__name__ != "TFLiteKerasModelConverterV2"
    ours = _int8(traced, x)
    theirs = _int8(tf.lite.TFLiteConverter.from_keras_model(qat_model), x)
    # the same ops, tensors and weights; only the converter's metadata may differ
    a, b = read_tflite(ours), read_tflite(theirs)
    assert [op.opcode for op in a.operators] == [op.opcode for op in b.operators]
    assert [(t.name, t.shape, t.dtype) for t in a.tensors] == [
        (t.name, t.shape, t.dtype) for t in b.tensors
    ]
    assert abs(len(ours) - len(theirs)) < 1024
    np.testing.assert_array_equal(_run(ours, x[:8]), _run(theirs, x[:8]))


def test_a_batch_one_tf_keras_copy_converts_at_batch_one():
    model = _cnn("tf_keras")
    fixed = read_tflite(tflite.convert(with_batch_size(model, 1), "float32"))
    assert fixed.tensors[fixed.inputs[0]].shape_signature[0] == 1
    free = read_tflite(tflite.convert(model, "float32"))
    assert free.tensors[free.inputs[0]].shape_signature[0] == -1
