"""OutputsAhead: the original model's outputs, computed in a thread while compress() converts."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tensorflow as tf

import keras_squeeze as ks
from keras_squeeze.core import models
from keras_squeeze.data.inputs import take_samples
from tests.conftest import keras

k = keras("keras3")
THREAD = "keras_squeeze-outputs-ahead"


class Recording(k.layers.Layer):
    """Doubles its input; records (its id, the thread) of each eager call, and raises
    when `fail` is set."""

    calls: list = []

    def __init__(self, fail=False, **kwargs):
        super().__init__(**kwargs)
        self.fail = fail

    def call(self, x):
        if tf.executing_eagerly():
            Recording.calls.append((id(self), threading.current_thread().name))
            if self.fail:
                raise ValueError("this layer fails when called")
        return x * 2.0

    def get_config(self):
        return {**super().get_config(), "fail": self.fail}


def _model(batch_size=None, fail=False):
    k.utils.set_random_seed(0)
    inputs = k.Input((8, 8, 1), batch_size=batch_size)
    recording = Recording(fail=fail)
    x = k.layers.Conv2D(4, 3, activation="relu")(recording(inputs))
    model = k.Model(inputs, k.layers.Dense(3)(k.layers.Flatten()(x)))
    return model, recording


@pytest.fixture
def x():
    Recording.calls.clear()
    return np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)


def _threads(layer) -> set[str]:
    return {thread for owner, thread in Recording.calls if owner == id(layer)}


def test_fills_the_table_in_its_own_thread(x):
    model, recording = _model()
    other, _ = _model()
    samples = take_samples(x, models.input_specs(model), 16, "x")
    table: dict = {}
    with models.OutputsAhead(table, [(model, samples)]).overlapping(other):
        pass
    assert _threads(recording) == {THREAD}
    with models.reused_outputs(table):
        ahead = models.keras_outputs(model, samples)
    assert _threads(recording) == {THREAD}  # read from the table, not run again
    np.testing.assert_array_equal(ahead[0], models.keras_outputs(model, samples)[0])


def test_does_not_call_the_model_the_caller_works_on(x):
    model, recording = _model()
    samples = take_samples(x, models.input_specs(model), 16, "x")
    table: dict = {}
    with models.OutputsAhead(table, [(model, samples)]).overlapping(model):
        pass
    assert table == {}
    assert _threads(recording) == set()


def test_a_failure_is_raised_by_the_callers_own_call(x):
    model, recording = _model(fail=True)
    other, _ = _model()
    samples = take_samples(x, models.input_specs(model), 16, "x")
    table: dict = {}
    with models.OutputsAhead(table, [(model, samples)]).overlapping(other):
        pass
    assert table == {}
    assert _threads(recording) == {THREAD}
    with models.reused_outputs(table), pytest.raises(ValueError, match="fails when called"):
        models.keras_outputs(model, samples)
    assert _threads(recording) == {THREAD, threading.current_thread().name}


def test_compress_verifies_against_outputs_computed_during_conversion(x):
    model, recording = _model()
    result = ks.compress(model, "int8", representative_data=x, verbose=0)
    # the original's outputs came from the thread (its batch-1 copy was converted meanwhile)
    assert THREAD in _threads(recording)
    assert _threads(recording) - {THREAD} <= {threading.current_thread().name}
    assert result.report.fidelity.top1_agreement >= 0.9


def test_compress_runs_no_thread_when_the_model_itself_converts(x):
    model, recording = _model(batch_size=1)  # batch 1 already: converted as it is
    result = ks.compress(model, "int8", representative_data=x, verbose=0)
    assert THREAD not in _threads(recording)
    assert _threads(recording)  # verified all the same, in the caller's thread
    assert result.report.fidelity.top1_agreement >= 0.9
