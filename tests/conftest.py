"""Shared fixtures: small trained models of both Keras flavours on the digits.

Models are tiny (8x8 or 16x16 inputs) and trained for a couple of epochs, so
the whole suite stays fast on two cores; figures of merit live in benchmarks/.
"""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze import _compat
from keras_squeeze.data import load_digits, train_example_model

FLAVOURS = (_compat.KERAS3, _compat.TF_KERAS)


@pytest.fixture(scope="session")
def digits8():
    return load_digits(8)


@pytest.fixture(scope="session")
def digits16():
    return load_digits(16)


@pytest.fixture(scope="session")
def trained_models():
    """{flavour: example CNN on 8x8 digits, trained 3 epochs}."""
    return {f: train_example_model(epochs=3, image_size=8, flavour=f, seed=1) for f in FLAVOURS}


@pytest.fixture(params=FLAVOURS)
def flavour(request):
    return request.param


@pytest.fixture
def trained(trained_models, flavour):
    return trained_models[flavour]


def keras(flavour):
    return _compat.keras_module(flavour)


def weights_snapshot(model):
    return [np.array(w) for w in model.get_weights()]


def assert_weights_equal(before, model):
    after = model.get_weights()
    assert len(before) == len(after)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
