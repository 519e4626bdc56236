"""The training loop's after_step hook: run inside the step, after every optimizer step."""

from __future__ import annotations

import numpy as np

from keras_squeeze.data.inputs import InputSpec
from keras_squeeze.training import data as train_data
from keras_squeeze.training import trainer
from tests.conftest import keras


def test_after_step_hooks_run_after_every_optimizer_step(flavour):
    import tensorflow as tf

    k = keras(flavour)
    inputs = k.Input((6,))
    model = k.Model(inputs, k.layers.Dense(3, name="head")(inputs))
    x = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    y = np.arange(64) % 3
    kernel = model.get_layer("head").kernel
    calls = tf.Variable(0)

    def clip():
        kernel.assign(tf.clip_by_value(kernel, -0.01, 0.01))
        calls.assign_add(1)

    data = train_data.prepare((x, y), [InputSpec("input", (6,), "float32")], batch_size=16)
    trainer.fine_tune(model, data, 2, after_step=[clip], verbose=0, learning_rate=0.1)
    assert int(calls.numpy()) == 2 * data.steps_per_epoch
    assert np.abs(np.asarray(kernel)).max() <= 0.01 + 1e-7
