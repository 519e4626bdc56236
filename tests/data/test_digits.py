from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze.data import example_model, load_digits
from keras_squeeze.errors import DataError, ModelError


def test_digits_split_and_range(digits8):
    (x, y), (xt, yt) = digits8
    assert x.shape == (1400, 8, 8, 1) and xt.shape == (397, 8, 8, 1)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() >= 0.0 and x.max() == 1.0
    assert set(np.unique(np.concatenate([y, yt]))) == set(range(10))
    # The shipped copy is scikit-learn's, in its order: the first digit is a 0.
    assert y[0] == 0 and y[1] == 1 and y[2] == 2


def test_digits_resized(digits16):
    (x, _), (xt, _) = digits16
    assert x.shape == (1400, 16, 16, 1) and xt.shape == (397, 16, 16, 1)
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_bad_image_size():
    with pytest.raises(
        DataError, match=r"image_size must be a positive integer.*Received: image_size=0"
    ):
        load_digits(0)


def test_example_model_size():
    m = example_model((16, 16, 1))
    assert 570_000 < m.count_params() < 590_000  # the ~580K-parameter benchmark CNN
    with pytest.raises(ModelError, match=r"Unknown Keras flavour"):
        example_model(flavour="keras2")


@pytest.mark.parametrize("flavour", ["keras3", "tf_keras"])
def test_example_model_names_its_layers_the_same_every_time(flavour):
    # Keras numbers unnamed layers across a session; per-layer keys ("dense") and report
    # rows must not depend on how many models the process built before.
    first, second = (example_model((8, 8, 1), flavour=flavour) for _ in range(2))
    names = [la.name for la in first.layers]
    assert names == [la.name for la in second.layers]
    assert names[1:3] == ["conv2d", "batch_normalization"] and names[-2:] == ["dense", "logits"]
