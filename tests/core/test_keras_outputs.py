"""keras_outputs runs large inputs as one traced graph, with the eager call's results."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_squeeze.core import models
from keras_squeeze.data.inputs import take_samples
from tests.conftest import keras

k = keras("keras3")


@pytest.fixture(scope="module")
def large():
    """Enough values (64 x 256 x 256) for the traced path."""
    x = np.random.default_rng(0).random((64, 256, 256, 1), dtype=np.float32)
    assert x.size >= models.GRAPH_MIN_VALUES
    return x


def _conv():
    k.utils.set_random_seed(0)
    inputs = k.Input((256, 256, 1))
    x = k.layers.Conv2D(2, 3, strides=4, activation="relu")(inputs)
    return k.Model(inputs, k.layers.Dense(3)(k.layers.GlobalAveragePooling2D()(x)))


class Counting(k.Model):
    """Counts its eager calls (tracing runs call() with symbolic tensors)."""

    def __init__(self):
        super().__init__()
        self.dense = k.layers.Dense(3)
        self.eager_calls = 0

    def call(self, x):
        if tf.executing_eagerly():
            self.eager_calls += 1
        return self.dense(k.ops.mean(x, axis=(1, 2)))


class Untraceable(Counting):
    """Needs eager tensors (as Python-side code such as .numpy() does): no graph."""

    def build(self, input_shape):  # built without a symbolic call, which would fail
        self.dense.build((input_shape[0], input_shape[-1]))

    def call(self, x):
        if not tf.executing_eagerly():
            raise TypeError("this model runs eagerly only")
        return super().call(x)


class Drifting(Counting):
    """Adds a Python-side count of its calls: a trace freezes it, so graph and eager part."""

    def __init__(self):
        super().__init__()
        self.python_calls = 0

    def call(self, x):
        self.python_calls += 1
        return super().call(x) + float(self.python_calls)


def _samples(model, x):
    return take_samples(x, models.input_specs(model), len(x), "x")


# keras_outputs(..., batch_size=16) on `large`: batches of at most BATCH_MAX_VALUES values
BATCHES = -(-64 // min(16, models.BATCH_MAX_VALUES // (256 * 256)))


def _calls_besides_batches(model, x):
    """Eager calls keras_outputs makes before any batch (reading a subclassed model's
    output names calls it once); the counter is reset."""
    model(x[:1])
    model.eager_calls = 0
    models.output_names(model)
    calls, model.eager_calls = model.eager_calls, 0
    return calls


def test_large_inputs_run_traced_with_the_eager_results(large):
    model = _conv()
    samples = _samples(model, large)
    traced = models.keras_outputs(model, samples, batch_size=16)[0]
    eager = np.asarray(model(large))
    np.testing.assert_allclose(traced, eager, rtol=1e-5, atol=1e-6)


def test_the_traced_path_calls_the_model_eagerly_once_only(large):
    model = Counting()
    other = _calls_besides_batches(model, large)
    models.keras_outputs(model, _samples(model, large), batch_size=16)
    assert BATCHES > 1
    assert model.eager_calls == other + 1  # the check of the first sample; the batches traced


def test_a_model_that_cannot_be_traced_runs_eagerly(large):
    model = Untraceable()
    other = _calls_besides_batches(model, large)
    out = models.keras_outputs(model, _samples(model, large), batch_size=16)[0]
    assert out.shape == (64, 3)
    assert model.eager_calls == other + BATCHES  # every batch, eagerly


def test_small_inputs_stay_eager():
    model = Counting()
    x = np.zeros((8, 4, 4, 1), np.float32)
    other = _calls_besides_batches(model, x)
    models.keras_outputs(model, _samples(model, x), batch_size=4)
    assert model.eager_calls == other + 2


def test_a_model_whose_trace_disagrees_with_its_eager_call_runs_eagerly(large):
    model = Drifting()
    other = _calls_besides_batches(model, large)
    models.keras_outputs(model, _samples(model, large), batch_size=16)
    assert model.eager_calls == other + 1 + BATCHES  # the check, then every batch eagerly


def test_reused_outputs_runs_a_model_once_per_samples_within_its_span():
    model = Counting()
    x = np.ones((8, 4, 4, 1), np.float32)
    other = _calls_besides_batches(model, x)
    samples = _samples(model, x)
    with models.reused_outputs():
        first = models.keras_outputs(model, samples, batch_size=4)
        first[0][:] = 0  # the caller's copy
        again = models.keras_outputs(model, samples, batch_size=4)
        assert model.eager_calls == other + 2
        assert np.abs(again[0]).sum() > 0
        models.keras_outputs(model, _samples(model, x), batch_size=4)  # other samples: runs
        assert model.eager_calls == 2 * (other + 2)
    models.keras_outputs(model, samples, batch_size=4)  # the span ended: runs again
    assert model.eager_calls == 3 * (other + 2)


def test_large_samples_run_in_batches_small_enough_for_their_activations():
    model = Counting()
    x = np.zeros((4, 512, 512, 1), np.float32)  # 2**18 values a sample, 2**20 in all: eager
    other = _calls_besides_batches(model, x)
    models.keras_outputs(model, _samples(model, x), batch_size=64)
    assert model.eager_calls == other + 4 * 512 * 512 // models.BATCH_MAX_VALUES
