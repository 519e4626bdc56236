"""Per-stage learning rates: validation, scaling real Keras optimizers, the stage notes."""

from __future__ import annotations

import keras
import pytest
import tf_keras

import keras_squeeze as ks
from keras_squeeze.errors import RecipeError
from keras_squeeze.training import rate


@pytest.mark.parametrize("value", [0, -0.5, 10.5, float("inf"), float("nan"), True, "0.3", None])
def test_bad_scales_are_refused_with_the_value(value):
    with pytest.raises(RecipeError, match=r"Expected a number in \(0, 10\].*learning_rate_scale="):
        rate.check_scale(value)


@pytest.mark.parametrize("stage", [ks.Prune, ks.Cluster, ks.QAT])
def test_stages_check_and_round_trip_the_scale(stage):
    with pytest.raises(RecipeError, match="learning_rate_scale=0"):
        stage(learning_rate_scale=0)
    s = stage(learning_rate_scale=2)
    assert s.learning_rate_scale == 2.0 and isinstance(s.learning_rate_scale, float)
    assert stage.from_config(s.get_config()) == s


def test_defaults_fine_tune_clusters_and_qat_slower_than_pruning():
    assert ks.Prune().learning_rate_scale == 1.0
    assert ks.Cluster().learning_rate_scale == 0.3 and ks.QAT().learning_rate_scale == 0.3


@pytest.mark.parametrize("k", [tf_keras, keras], ids=["tf_keras", "keras3"])
def test_scaled_copies_the_optimizer_with_a_smaller_rate(k):
    opt = k.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    got = rate.scaled(opt, 0.3)
    assert got is not opt and type(got) is type(opt)
    assert got.get_config()["learning_rate"] == pytest.approx(0.003)
    assert got.get_config()["momentum"] == 0.9
    assert opt.get_config()["learning_rate"] == pytest.approx(0.01)  # untouched
    assert rate.scaled(opt, 1.0) is opt
    assert rate.describe(got) == "SGD at learning rate 0.003"


@pytest.mark.parametrize("k", [tf_keras, keras], ids=["tf_keras", "keras3"])
def test_scaled_scales_a_schedule_from_its_initial_rate(k):
    schedule = k.optimizers.schedules.CosineDecay(1e-3, decay_steps=100)
    got = rate.scaled(k.optimizers.Adam(schedule), 0.5)
    lr = k.optimizers.schedules.deserialize(got.get_config()["learning_rate"])
    assert float(lr(0)) == pytest.approx(5e-4) and float(lr(100)) == pytest.approx(0.0)
    assert rate.describe(got) == "Adam, CosineDecay from 0.0005"


def test_a_schedule_without_an_initial_rate_cannot_be_scaled():
    schedule = tf_keras.optimizers.schedules.PiecewiseConstantDecay([10], [1e-3, 1e-4])
    opt = tf_keras.optimizers.Adam(schedule)
    with pytest.raises(RecipeError, match="Received: PiecewiseConstantDecay"):
        rate.scaled(opt, 0.3)
    assert rate.scaled(opt, 1.0) is opt


def test_compress_refuses_an_unscalable_schedule_before_any_training(
    trained_models, digits8, capsys
):
    (x, y), _ = digits8
    schedule = tf_keras.optimizers.schedules.PiecewiseConstantDecay([10], [1e-3, 1e-4])
    with pytest.raises(RecipeError, match=r"learning_rate_scale=1\.0 on the stage"):
        ks.compress(
            trained_models["tf_keras"],
            "prune-cluster-qat",
            train_data=(x[:64], y[:64]),
            optimizer=tf_keras.optimizers.Adam(schedule),
            epochs=1,
        )
    assert "pruning" not in capsys.readouterr().out  # refused before the first stage
