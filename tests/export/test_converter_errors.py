"""A model TFLite's builtin ops cannot express: one line naming the layer and the op, and
allow_tf_ops=True to keep such ops as TensorFlow ops (verified where a Flex delegate exists)."""

from __future__ import annotations

import pytest

import keras_squeeze as ks
from keras_squeeze.errors import ExportError, VerificationError
from keras_squeeze.export import tflite as tflite_export
from keras_squeeze.report.tflite_reader import read_tflite
from tests.conftest import keras


@pytest.fixture(scope="module")
def determinant_model():
    import tensorflow as tf

    k = keras("keras3")
    inputs = k.Input((3, 3), name="m")
    x = k.layers.Lambda(lambda t: tf.linalg.det(t), name="determinant")(inputs)
    outputs = k.layers.Dense(2, name="head")(k.layers.Reshape((1,))(x))
    return k.Model(inputs, outputs)


def test_the_error_names_the_layer_and_the_op(determinant_model, tmp_path):
    with pytest.raises(
        ExportError,
        match=r"TFLite's builtin ops cannot express layer\(s\) 'determinant' "
        r"\(tf\.MatrixDeterminant\) under 'float32' quantization\. Expected .*allow_tf_ops=True",
    ) as caught:
        ks.compress(determinant_model, "float32", verbose=0)
    assert "\n" not in str(caught.value)


def test_allow_tf_ops_keeps_the_op_and_is_verified_or_refused(determinant_model):
    content = tflite_export.convert(determinant_model, "float32", allow_tf_ops=True)
    assert "FlexMatrixDeterminant" in {op.opcode for op in read_tflite(content).operators}
    # This machine's LiteRT has no Flex delegate: the file cannot be run, so it is not handed out.
    with pytest.raises(VerificationError, match=r"need the Flex delegate.*LiteRT#6458"):
        ks.compress(determinant_model, "float32", allow_tf_ops=True, verbose=0)


def test_failing_layers_reads_keras3_suffixed_scopes(determinant_model):
    text = (
        'loc(callsite(fused["MatrixDeterminant:", "functional_1/determinant_1/'
        "MatrixDeterminant@__inference_function_86\"] at ...)): 'tf.MatrixDeterminant' op is "
        "neither a custom op nor a flex op\n"
        'loc(fused["Erfinv:", "functional_1/head_3/Erfinv@x"]): \'tf.Erfinv\' op is neither'
    )
    assert tflite_export.failing_layers(text, determinant_model) == [
        ("determinant", "MatrixDeterminant"),
        ("head", "Erfinv"),
    ]
    assert tflite_export.failing_layers("no locations here", determinant_model) == []
