from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_squeeze.data.inputs import InputSpec
from keras_squeeze.errors import DataError
from keras_squeeze.training.data import prepare

SPEC = [InputSpec("x", (3,), "float32")]
X = np.arange(30, dtype=np.float32).reshape(10, 3)
Y = np.arange(10) % 2


def _all(train):
    xs, ys = zip(
        *[(a.numpy(), b.numpy()) for a, b in train.dataset.take(train.steps_per_epoch)], strict=True
    )
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.parametrize(
    "make, steps",
    [
        (lambda: (X, Y), 3),
        (lambda: tf.data.Dataset.from_tensor_slices((X, Y)).batch(5), 2),
        (lambda: tf.data.Dataset.from_tensor_slices((X, Y)), 3),  # unbatched: batched here
        (
            lambda: tf.data.Dataset.from_generator(
                lambda: ((X[i : i + 5], Y[i : i + 5]) for i in (0, 5)),
                output_signature=(tf.TensorSpec((None, 3)), tf.TensorSpec((None,), tf.int64)),
            ),
            2,
        ),
        (lambda: lambda: ((X[i : i + 2], Y[i : i + 2]) for i in range(0, 10, 2)), 5),
    ],
)
def test_every_form_gives_all_the_data_once_per_epoch(make, steps):
    train = prepare(make(), SPEC, batch_size=4)
    assert train.steps_per_epoch == steps and train.has_labels
    xs, ys = _all(train)
    order = np.argsort(xs[:, 0])
    np.testing.assert_array_equal(xs[order], X)
    np.testing.assert_array_equal(ys[order], Y)


def test_without_labels_and_one_hot():
    assert not prepare(X, SPEC).has_labels
    assert prepare((X, np.eye(2)[Y]), SPEC).one_hot


def test_bad_training_data():
    with pytest.raises(DataError, match="one-shot generator"):
        prepare(((X[i : i + 2], Y[i : i + 2]) for i in range(5)), SPEC)
    with pytest.raises(DataError, match=r"repeats forever.*steps_per_epoch"):
        prepare(tf.data.Dataset.from_tensor_slices((X, Y)).batch(2).repeat(), SPEC)
    assert (
        prepare(
            tf.data.Dataset.from_tensor_slices((X, Y)).batch(2).repeat(), SPEC, steps_per_epoch=7
        ).steps_per_epoch
        == 7
    )
    with pytest.raises(DataError, match=r"Expected train_data=.*Received: train_data=None"):
        prepare(None, SPEC)
    with pytest.raises(DataError, match=r"does not match the model's input 'x'"):
        prepare((np.zeros((4, 5)), Y[:4]), SPEC)
