"""Every accepted data form gives the same validated samples; bad data is named."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_squeeze.data import inputs
from keras_squeeze.data.inputs import InputSpec
from keras_squeeze.errors import DataError, NonFiniteError

SPEC = [InputSpec("img", (4, 4, 1), "float32")]
X = np.arange(10 * 16, dtype=np.float32).reshape(10, 4, 4, 1) / 160.0
Y = np.arange(10) % 3


def _forms():
    return {
        "array": lambda: X,
        "tuple": lambda: (X, Y),
        "tuple_with_weights": lambda: (X, Y, np.ones(10)),
        "list_single_batch": lambda: [X],
        "dict": lambda: {"img": X},
        "dataset_batched": lambda: tf.data.Dataset.from_tensor_slices((X, Y)).batch(3),
        "dataset_unbatched": lambda: tf.data.Dataset.from_tensor_slices(X),
        "generator_of_samples": lambda: (X[i] for i in range(10)),
        "generator_of_batches": lambda: ((X[i : i + 4], Y[i : i + 4]) for i in range(0, 10, 4)),
        "callable_of_lists": lambda: lambda: ([X[i : i + 1]] for i in range(10)),
    }


@pytest.mark.parametrize("form", list(_forms()))
def test_every_form_gives_the_same_samples(form):
    samples = inputs.take_samples(_forms()[form](), SPEC, None, "representative_data")
    assert samples.count == 10
    np.testing.assert_allclose(samples.inputs[0], X)
    assert samples.inputs[0].dtype == np.float32
    if form in ("tuple", "tuple_with_weights", "dataset_batched", "generator_of_batches"):
        np.testing.assert_array_equal(samples.labels, Y)
    else:
        assert samples.labels is None


def test_limit_takes_the_first_samples_and_says_so():
    samples = inputs.take_samples((X, Y), SPEC, 4, "representative_data")
    assert samples.count == 4
    np.testing.assert_array_equal(samples.labels, Y[:4])
    assert samples.describe() == "4 of 10 samples from representative_data"
    gen = inputs.take_samples((X[i] for i in range(10)), SPEC, 4, "train_data")
    assert gen.describe() == "the first 4 samples from train_data"
    whole = inputs.take_samples((X[i] for i in range(3)), SPEC, 4, "train_data")
    assert whole.describe() == "3 samples from train_data"


def test_integer_images_are_cast_to_the_model_dtype():
    samples = inputs.take_samples((X * 255).astype(np.uint8), SPEC, None, "representative_data")
    assert samples.inputs[0].dtype == np.float32


def test_multi_input_by_list_and_dict():
    specs = [InputSpec("a", (3,), "float32"), InputSpec("b", (2,), "float32")]
    a, b = np.ones((5, 3)), np.zeros((5, 2))
    by_list = inputs.take_samples([a, b], specs, None, "x")
    by_dict = inputs.take_samples({"b": b, "a": a}, specs, None, "x")
    for s in (by_list, by_dict):
        np.testing.assert_array_equal(s.inputs[0], a)
        np.testing.assert_array_equal(s.inputs[1], b)


@pytest.mark.parametrize(
    "data, match",
    [
        (
            np.zeros((5, 8, 8, 1)),
            r"does not match the model's input 'img'.*Expected batches of shape \(n, 4, 4, 1\).*Received: an array of shape \(5, 8, 8, 1\)",
        ),
        (
            np.zeros((5, 4, 4)),
            r"Expected batches of shape \(n, 4, 4, 1\).*Received: an array of shape \(5, 4, 4\)",
        ),
        (
            np.array([["a"] * 16] * 2).reshape(2, 4, 4, 1),
            r"non-numeric values for input 'img'.*Received: dtype <U1",
        ),
        (np.zeros((0, 4, 4, 1)), r"representative_data is empty"),
        ([np.zeros((2, 4, 4, 1)), np.zeros((2, 4, 4, 1))], r"Expected batches"),
        ({"image": X}, r"a dict without an entry for every model input.*Expected keys \['img'\]"),
        ((X, Y[:3]), r"different number of labels than inputs. Expected 10 labels. Received: 3"),
        (42.0, r"not a supported kind of data.*Received: float"),
        (object(), r"not a supported kind of data.*Received: object"),
    ],
)
def test_bad_data_is_named(data, match):
    with pytest.raises(DataError, match=match):
        inputs.take_samples(data, SPEC, None, "representative_data")


def test_non_finite_values_are_refused():
    bad = X.copy()
    bad[7, 0, 0, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"representative_data contains NaN or Inf.*sample 7"):
        inputs.take_samples(bad, SPEC, None, "representative_data")
    bad[7, 0, 0, 0] = np.inf
    with pytest.raises(NonFiniteError):
        inputs.take_samples((bad[i] for i in range(10)), SPEC, None, "representative_data")


def test_a_one_shot_generator_serves_once_and_is_materialised():
    gen = (X[i] for i in range(10))
    samples = inputs.take_samples(gen, SPEC, None, "x")
    assert samples.count == 10
    # The samples are in memory; the generator is spent.
    assert next(gen, None) is None
    np.testing.assert_allclose(samples.batch(2, 4)[0], X[2:4])


def test_class_ids_from_integers_and_one_hot():
    np.testing.assert_array_equal(inputs.class_ids(np.array([2, 0, 1])), [2, 0, 1])
    np.testing.assert_array_equal(inputs.class_ids(np.eye(3)[[2, 0, 1]]), [2, 0, 1])
    np.testing.assert_array_equal(inputs.class_ids(np.array([[2], [0]])), [2, 0])
    assert inputs.class_ids(None) is None


def test_synthetic_samples_fit_the_specs():
    specs = [InputSpec("a", (None, 3), "float32"), InputSpec("ids", (5,), "int32")]
    s = inputs.synthetic_samples(specs, 4)
    assert s.inputs[0].shape == (4, 1, 3) and s.inputs[0].dtype == np.float32
    assert s.inputs[1].shape == (4, 5) and s.inputs[1].dtype == np.int32
    assert s.inputs[0].min() >= 0 and s.inputs[0].max() < 1
    assert "synthetic" in s.describe()
