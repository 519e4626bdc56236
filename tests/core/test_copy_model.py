"""Copies of subclassed models (which keras.models.clone_model cannot clone): the user's
model is never changed, and the copy reproduces it."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze.core import models
from keras_squeeze.errors import ModelError
from tests import subclassed
from tests.conftest import assert_weights_equal, keras, weights_snapshot

X = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")


def _bare(flavour):
    """A class whose __init__ takes nothing (no config to rebuild it from)."""
    k = keras(flavour)

    class Bare(k.Model):
        def __init__(self):
            super().__init__()
            self.conv = k.layers.Conv2D(4, 3)
            self.flat = k.layers.Flatten()
            self.out = k.layers.Dense(3)

        def call(self, x):
            return self.out(self.flat(self.conv(x)))

    return Bare()


@pytest.mark.parametrize(
    "make",
    [
        lambda: subclassed.cnn("keras3"),
        lambda: _bare("keras3"),
        lambda: _bare("tf_keras"),
        lambda: subclassed.cnn("tf_keras"),
    ],
    ids=["keras3-config", "keras3-bare", "tf_keras-bare", "tf_keras-kwargs"],
)
def test_a_copy_reproduces_the_model_and_leaves_it_alone(make):
    model = make()
    model(X[:2])
    models.resolve_signature(model)
    before = weights_snapshot(model)
    copy = models.copy_model(model)
    assert type(copy) is type(model) and copy is not model
    assert [la.name for la in models.walk_layers(copy)] == [
        la.name for la in models.walk_layers(model)
    ]
    np.testing.assert_allclose(np.asarray(copy(X)), np.asarray(model(X)), rtol=1e-6, atol=1e-6)
    for w in copy.weights:  # training the copy must not reach the model
        w.assign(np.zeros(w.shape, np.float32))
    assert_weights_equal(before, model)
    assert models.signature_of(copy) == models.signature_of(model)


def test_a_class_that_cannot_be_rebuilt_is_refused():
    k = keras("keras3")

    class Needy(k.Model):
        def __init__(self, head):
            super().__init__()
            self.head = head  # a layer object: no config Keras can record

        def call(self, x):
            return self.head(x)

    model = Needy(k.layers.Dense(2))
    model(np.zeros((1, 3), np.float32))
    with pytest.raises(
        ModelError,
        match=r"The subclassed model '.*' cannot be copied, and training works on a copy \(your "
        r"model is never changed\)\. Expected a class that from_config\(get_config\(\)\) rebuilds"
        r".*Received: Needy \(from_config: .*; constructor: .*; deepcopy: .*\)",
    ):
        models.copy_model(model)


def _incomplete_config():
    """A class whose get_config() forgets its constructor arguments (as user code often
    does): from_config rebuilds it with the defaults."""
    k = keras("keras3")

    class Configurable(k.Model):
        def __init__(self, units=4, act=False, **kwargs):
            super().__init__(**kwargs)
            self.extra = k.layers.ReLU() if act else k.layers.Flatten()
            self.out = k.layers.Dense(units)

        def call(self, x):
            return self.out(self.extra(x))

        def get_config(self):
            return {}

    return Configurable


def test_a_copy_with_other_weights_or_layers_is_refused():
    cls = _incomplete_config()
    wide = cls(units=8)
    wide(np.zeros((1, 6), np.float32))
    with pytest.raises(
        ModelError, match=r"The copy of the subclassed model '.*' does not hold the"
    ):
        models.copy_model(wide)
    other = cls(act=True)
    other(np.zeros((1, 6), np.float32))
    with pytest.raises(
        ModelError,
        match=r"The copy of the subclassed model '.*' has other layers\. Expected the "
        r"layers \['ReLU', 'Dense'\]\. Received: \['Flatten', 'Dense'\]",
    ):
        models.copy_model(other)


def test_a_copy_that_shares_variables_is_refused():
    k = keras("tf_keras")

    class Shared(k.Model):
        def __init__(self, head):
            super().__init__()
            self.head = head

        def call(self, x):
            return self.head(x)

        def __deepcopy__(self, memo):  # a "copy" that is the model itself
            return self

    model = Shared(k.layers.Dense(2))
    model(np.zeros((1, 3), np.float32))
    with pytest.raises(ModelError, match=r"shares variables with it, so training the copy would"):
        models.copy_model(model)


def test_a_fixed_batch_copy_needs_a_signature():
    from keras_squeeze.core.batch import with_batch_size

    never_called = _bare("keras3")
    with pytest.raises(ModelError, match=r"has no defined inputs"):
        with_batch_size(never_called, 1)
    model = _bare("keras3")
    model(X[:2])
    fixed = with_batch_size(model, 1)
    assert models.signature_of(fixed).batch == 1
    np.testing.assert_allclose(np.asarray(fixed(X[:1])), np.asarray(model(X[:1])), atol=1e-6)
