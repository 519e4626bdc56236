"""The converter's own printing (C++ writes to descriptors 1 and 2) is kept below verbose=2."""

from __future__ import annotations

import pytest
import tensorflow as tf

from keras_squeeze.core.models import input_specs
from keras_squeeze.data.inputs import take_samples
from keras_squeeze.errors import ExportError
from keras_squeeze.export import tflite
from tests.conftest import keras


@pytest.fixture(scope="module")
def tiny():
    k = keras("keras3")
    inputs = k.Input((8, 8, 1), name="image")
    x = k.layers.Conv2D(4, 3, activation="relu")(inputs)
    outputs = k.layers.Dense(10)(k.layers.Flatten()(x))
    return k.Model(inputs, outputs)


@pytest.fixture(scope="module")
def unconvertible():
    """A determinant: a TensorFlow op TFLite's builtins do not have."""
    k = keras("keras3")
    inputs = k.Input((4,))
    det = k.layers.Lambda(lambda t: tf.reshape(tf.linalg.det(tf.reshape(t, (-1, 2, 2))), (-1, 1)))
    return k.Model(inputs, det(inputs))


def test_int8_calibration_prints_nothing_below_verbose_2(tiny, digits8, capfd):
    (x, _), _ = digits8
    samples = take_samples(x, input_specs(tiny), 50, "x")
    capfd.readouterr()
    tflite.convert(tiny, "int8", samples, verbose=1)
    quiet = capfd.readouterr()
    assert "fully_quantize" not in quiet.err + quiet.out
    assert quiet.err == "" and quiet.out == ""
    tflite.convert(tiny, "int8", samples, verbose=2)
    loud = capfd.readouterr()
    assert "fully_quantize: 0, inference_type: 6" in loud.err


def test_a_converter_failure_keeps_its_log_for_the_error(unconvertible, capfd):
    capfd.readouterr()
    with pytest.raises(
        ExportError,
        match=r"TFLite's builtin ops cannot express layer\(s\) '.*' \(tf\.MatrixDeterminant\) "
        r"under 'float32' quantization\..* Received: ConverterError: .*error.* TF Select "
        r"ops: MatrixDeterminant \(the converter printed \d+ lines; verbose=2 shows them\)",
    ):
        tflite.convert(unconvertible, "float32", verbose=1)
    quiet = capfd.readouterr()
    assert quiet.err == "" and quiet.out == ""
    with pytest.raises(ExportError, match=r"TF Select ops: MatrixDeterminant$"):
        tflite.convert(unconvertible, "float32", verbose=2)
    assert "MatrixDeterminant" in capfd.readouterr().err  # the converter's own lines, shown


def test_a_model_with_free_spatial_dimensions_still_runs_in_the_runner(capfd):
    # The runner allocates early (inside the capture of LiteRT's notice); a model
    # that allocates only at real input shapes gets them from run().
    import numpy as np

    from keras_squeeze.export.runtime import TFLiteRunner

    k = keras("keras3")
    inputs = k.Input((None, None, 1), name="img")
    x = k.layers.GlobalAveragePooling2D()(k.layers.Conv2D(4, 5)(inputs))
    model = k.Model(inputs, k.layers.Dense(3, name="out")(x))
    runner = TFLiteRunner(content=tflite.convert(model, "float32"))
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    samples = take_samples(x, input_specs(model), 4, "x")
    (out,) = runner.run(samples, ["img"], ["out"])
    np.testing.assert_allclose(out, np.asarray(model(x)), atol=1e-5)
    assert capfd.readouterr().err == ""
