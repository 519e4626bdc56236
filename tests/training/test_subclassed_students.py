"""The training loop's view of a subclassed student: its outputs read by running it."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze.core import models
from keras_squeeze.errors import RecipeError
from keras_squeeze.training import losses, trainer
from tests.conftest import keras


def _head(activation, units=4):
    k = keras("keras3")

    class Head(k.Model):
        def __init__(self):
            super().__init__()
            self.out = k.layers.Dense(units, activation=activation)

        def call(self, x):
            return self.out(x)

    model = Head()
    model(np.zeros((2, 6), np.float32))
    models.resolve_signature(model)
    return model


def test_logits_or_probabilities_and_classifier_from_the_outputs():
    assert losses.output_kind(_head(None)) == losses.LOGITS
    assert losses.output_kind(_head("softmax")) == losses.PROBABILITIES
    assert losses.is_classifier(_head(None)) and not losses.is_classifier(_head(None, units=1))
    assert models.output_shapes(_head(None)) == [(4,)]


def test_feature_distillation_needs_a_layer_graph():
    with pytest.raises(
        RecipeError, match=r"Feature distillation reads the outputs of inner layers"
    ):
        trainer._feature_view(_head(None), ["out"])
