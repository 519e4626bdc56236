"""Generated and given inputs: ranges, dtypes and quantization (plain numpy, no models)."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze.bench import inputs
from keras_squeeze.errors import ConfigError, DataError


def detail(dtype, shape=(1, 4, 4, 3), quant=(0.0, 0), name="x:0", index=0):
    """A tensor detail as Interpreter.get_input_details() returns it."""
    return {
        "name": name,
        "index": index,
        "shape": np.array(shape),
        "dtype": dtype,
        "quantization": quant,
    }


def test_quantized_input_spans_the_whole_int_range():
    d = detail(np.int8, shape=(1, 64, 64, 3), quant=(0.0078, -1))
    x = inputs.generate(d, np.random.default_rng(0))
    assert x.dtype == np.int8 and x.shape == (1, 64, 64, 3)
    assert x.min() == -128 and x.max() == 127
    assert inputs.describe(d) == (
        "int8 uniform over [-128, 127] (real [-0.9906, 0.9984] via scale 0.0078, zero point -1)"
    )


def test_quantized_input_with_a_float_range_is_its_quantized_image():
    scale, zero = 1 / 255, -128  # a [0, 1] calibrated input
    d = detail(np.int8, shape=(1, 1000), quant=(scale, zero))
    x = inputs.generate(d, np.random.default_rng(0), (0.0, 0.5))
    real = (x.astype(np.float32) - zero) * scale
    assert real.min() >= 0.0 and real.max() <= 0.5 + scale / 2
    assert x.min() == -128 and x.max() <= -128 + 128


def test_float_and_plain_integer_inputs():
    rng = np.random.default_rng(0)
    f = inputs.generate(detail(np.float32, shape=(1, 1000)), rng)
    assert f.dtype == np.float32 and -1 <= f.min() < -0.9 and 0.9 < f.max() <= 1
    f01 = inputs.generate(detail(np.float32, shape=(1, 1000)), rng, (0.0, 1.0))
    assert f01.min() >= 0 and f01.max() <= 1
    ids = inputs.generate(detail(np.int32, shape=(1, 1000)), rng)
    assert ids.dtype == np.int32 and ids.min() == 0 and ids.max() == 9
    b = inputs.generate(detail(np.bool_, shape=(1, 100)), rng)
    assert b.dtype == np.bool_ and 0 < b.sum() < 100
    with pytest.raises(DataError, match=r"Inputs of dtype <U1 cannot be generated \(input 'x:0'\)"):
        inputs.generate(detail(np.dtype("<U1")), rng)


def test_generation_is_seeded():
    d = detail(np.float32)
    a = inputs.generate(d, np.random.default_rng(7))
    b = inputs.generate(d, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_given_floats_are_quantized_with_the_inputs_own_parameters():
    d = detail(np.uint8, shape=(1, 3), quant=(0.5, 10))
    (q,) = inputs.arrange(np.array([0.0, 1.0, 200.0], np.float32), [d], "m")
    # q = clip(round(x / scale) + zero_point, 0, 255)
    np.testing.assert_array_equal(q, np.array([[10, 12, 255]], np.uint8))


def test_arrange_by_list_dict_and_signature_name():
    a, b = (
        detail(np.float32, (1, 2), name="serving_default_a:0", index=3),
        detail(np.float32, (1, 3), name="serving_default_b:0", index=5),
    )
    by_list = inputs.arrange([np.ones(2), np.zeros((1, 3))], [a, b], "m")
    assert [x.shape for x in by_list] == [(1, 2), (1, 3)]
    by_dict = inputs.arrange(
        {"b": np.zeros(3), "serving_default_a": np.ones(2)}, [a, b], "m", {5: "b"}
    )
    assert by_dict[0].sum() == 2 and by_dict[1].sum() == 0
    with pytest.raises(
        DataError,
        match=r"does not give one array per input of model 'm'\. Expected 2 arrays\. Received: 1",
    ):
        inputs.arrange([np.ones(2)], [a, b], "m")
    with pytest.raises(DataError, match=r"single array but model 'm' has 2 inputs"):
        inputs.arrange(np.ones(2), [a, b], "m")
    with pytest.raises(DataError, match=r"has NaN or Inf for input 'serving_default_a:0'"):
        inputs.arrange([np.array([np.nan, 1.0]), np.zeros(3)], [a, b], "m")


@pytest.mark.parametrize("bad", [(1.0,), ("a", "b"), (2.0, 1.0), (0.0, float("inf"))])
def test_bad_input_range(bad):
    with pytest.raises(ConfigError, match=r"input_range must be"):
        inputs.check_input_range(bad)
