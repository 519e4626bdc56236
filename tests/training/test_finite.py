"""Fine-tuning that diverges stops at once with a NonFiniteError naming what, when and why."""

from __future__ import annotations

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.core import models
from keras_squeeze.errors import NonFiniteError
from keras_squeeze.training import data as train_data
from keras_squeeze.training import trainer
from tests.conftest import assert_weights_equal, keras, weights_snapshot


def test_a_diverging_stage_stops_with_the_stage_epoch_and_step(trained_models, digits8):
    (x, y), _ = digits8
    model = trained_models["keras3"]
    before = weights_snapshot(model)
    with pytest.raises(
        NonFiniteError,
        match=r"The prune stage stopped: the loss became (nan|inf) at epoch 1, step \d+\. "
        r"Expected finite values; a lower learning rate usually fixes this \(learning_rate_scale",
    ):
        ks.compress(
            model,
            "prune",
            train_data=(x, y),
            optimizer=keras("keras3").optimizers.SGD(learning_rate=1e12),
            epochs=1,
            verbose=0,
        )
    assert_weights_equal(before, model)  # the user's model is untouched


def test_a_weight_turning_nan_stops_at_the_end_of_the_epoch(digits8):
    """Batch normalization's moving mean does not enter the training loss: only the
    epoch-end check of every weight (trainable or not) can catch it."""
    (x, y), _ = digits8
    k = keras("tf_keras")
    student = ks.data.example_model((8, 8, 1), flavour="tf_keras")
    bn = next(la for la in student.layers if type(la).__name__ == "BatchNormalization")

    class Poison(k.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                bn.moving_mean.assign(np.full(bn.moving_mean.shape, np.nan, np.float32))

    data = train_data.prepare((x[:64], y[:64]), models.input_specs(student), 32)
    with pytest.raises(NonFiniteError, match=r"the weight '.*moving_mean.*' holds NaN or Inf"):
        trainer.fine_tune(student, data, 1, callbacks=[Poison()], verbose=0, what="a test run")
