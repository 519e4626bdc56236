"""The user's Keras callbacks in compress(), ks.distill and prune_channels (one device)."""

from __future__ import annotations

import pytest

import keras_squeeze as ks
from keras_squeeze import _compat
from keras_squeeze.errors import RecipeError
from tests.conftest import keras


def _recorder(flavour):
    class Recorder(keras(flavour).callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append((self.stage, epoch))

    return Recorder()


def _stop_after_first(flavour):
    class Stop(keras(flavour).callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    return Stop()


def _stopper(flavour):
    # A baseline the loss never beats: stops after the second epoch (Keras' rule).
    return keras(flavour).callbacks.EarlyStopping(monitor="loss", baseline=-1.0, patience=0)


def test_prune_sees_stage_and_stops_early(trained_models, digits8):
    (x, y), _ = digits8
    recorder = _recorder(_compat.TF_KERAS)
    result = ks.compress(
        trained_models[_compat.TF_KERAS],
        "prune",
        train_data=(x[:128], y[:128]),
        epochs=6,
        verbose=0,
        callbacks=[recorder, _stopper(_compat.TF_KERAS)],
    )
    assert recorder.seen == [("prune", 0), ("prune", 1)]
    notes = result.report.stages[0]["notes"]
    assert any("stopped early by a callback at epoch 2 of 6" in n for n in notes), notes
    assert (result.report.stages[0]["epochs"], result.report.stages[0]["steps"]) == (2, 8)
    # The schedule had not reached its final sparsity: the report's warnings say so.
    assert any("below its 80% target" in w for w in result.report.warnings)


def test_keras3_callback_refused_for_a_tfmot_stage(trained_models, digits8):
    (x, y), _ = digits8
    with pytest.raises(RecipeError, match="The prune stage trains a tf_keras model"):
        ks.compress(
            trained_models[_compat.KERAS3],
            "prune",
            train_data=(x[:64], y[:64]),
            verbose=0,
            callbacks=[_recorder(_compat.KERAS3)],
        )


def test_not_callbacks_refused(trained_models, digits8):
    (x, y), _ = digits8
    model = trained_models[_compat.TF_KERAS]
    with pytest.raises(RecipeError, match="callbacks must be a list of Keras callbacks"):
        ks.compress(model, "prune", train_data=(x, y), callbacks=_recorder(_compat.TF_KERAS))
    with pytest.raises(RecipeError, match="Each of callbacks must be a Keras callback"):
        ks.compress(model, "prune", train_data=(x, y), callbacks=[print])


def test_strategy_not_a_strategy_refused(trained_models, digits8):
    (x, y), _ = digits8
    with pytest.raises(RecipeError, match=r"strategy must be a tf\.distribute\.Strategy"):
        ks.compress(trained_models[_compat.TF_KERAS], "prune", train_data=(x, y), strategy="m")


def test_distill_callbacks(trained_models, digits8):
    (x, y), _ = digits8
    teacher = trained_models[_compat.KERAS3]
    k = keras(_compat.KERAS3)
    student = k.Sequential(
        [k.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10, name="logits")]
    )
    recorder = _recorder(_compat.KERAS3)
    result = ks.distill(
        teacher,
        student,
        (x[:64], y[:64]),
        epochs=3,
        verbose=0,
        callbacks=[recorder, _stop_after_first(_compat.KERAS3)],
    )
    assert recorder.seen == [("distill", 0)]
    assert result.report["stopped_at_epoch"] == 1
    with pytest.raises(RecipeError, match="Distillation trains a keras3 model"):
        ks.distill(teacher, student, (x, y), callbacks=[_recorder(_compat.TF_KERAS)])
    with pytest.raises(RecipeError, match=r"strategy must be a tf\.distribute\.Strategy"):
        ks.distill(teacher, student, (x, y), strategy=object())


def test_prune_channels_callbacks(trained_models, digits8):
    from keras_squeeze.channel_pruning import prune_channels

    (x, y), _ = digits8
    recorder = _recorder(_compat.KERAS3)
    result = prune_channels(
        trained_models[_compat.KERAS3],
        train_data=(x[:64], y[:64]),
        epochs=1,
        verbose=0,
        callbacks=[recorder],
    )
    assert recorder.seen == [("channel-prune", 0)]
    assert "stopped early" not in result.report.fine_tuning
    with pytest.raises(RecipeError, match="Channel pruning trains a keras3 model"):
        prune_channels(
            trained_models[_compat.KERAS3],
            train_data=(x, y),
            callbacks=[_recorder(_compat.TF_KERAS)],
        )


def test_callbacks_without_training_are_ignored_with_a_warning(trained_models):
    recorder = _recorder(_compat.TF_KERAS)
    with pytest.warns(UserWarning, match="callbacks is ignored: the 'float16' recipe has no"):
        result = ks.compress(
            trained_models[_compat.TF_KERAS], "float16", callbacks=[recorder], verbose=0
        )
    assert recorder.seen == [] and any("callbacks is ignored" in n for n in result.report.notes)


def test_structural_pruning_refuses_a_strategy_that_is_not_one(trained_models, digits8):
    (x, y), _ = digits8
    model = trained_models[_compat.TF_KERAS]
    with pytest.raises(RecipeError, match=r"strategy must be a tf\.distribute\.Strategy"):
        ks.prune_channels(model, train_data=(x, y), strategy="mirrored")
    with pytest.raises(RecipeError, match=r"strategy must be a tf\.distribute\.Strategy.*dict"):
        ks.remove_blocks(model, train_data=(x, y), strategy={})
