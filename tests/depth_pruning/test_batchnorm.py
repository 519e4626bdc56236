"""BatchNormalization statistics re-estimated on data, and folded after fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze import _compat
from keras_squeeze.data.inputs import Samples
from keras_squeeze.depth_pruning import BlockRemoval, batchnorm, remove_blocks
from keras_squeeze.errors import RecipeError
from tests.conftest import keras
from tests.depth_pruning.builders import randomize_bn, residual_cnn

QUICK = {"importance_samples": 16}


def _samples(x) -> Samples:
    return Samples([x], None, len(x), len(x), "x")


def _two_normalizations(flavour):
    k = keras(flavour)
    L = k.layers
    k.utils.set_random_seed(0)
    inputs = k.Input((5,), name="x")
    h = L.Dense(4, name="dense1")(inputs)
    h = L.ReLU(name="relu")(L.BatchNormalization(name="bn1")(h))
    h = L.Dense(3, name="dense2")(h)
    outputs = L.BatchNormalization(name="bn2", epsilon=1e-2)(h)
    return randomize_bn(k.Model(inputs, outputs), seed=1)


def _moments(h):
    return h.mean(axis=0), h.var(axis=0)


def test_statistics_are_those_of_each_input_in_training_mode(flavour):
    model = _two_normalizations(flavour)
    x = np.random.default_rng(0).normal(1.0, 2.0, (48, 5)).astype(np.float32)
    assert batchnorm.reestimate(model, _samples(x), batch_size=48) == ["bn1", "bn2"]
    w1, b1 = model.get_layer("dense1").get_weights()
    h = x.astype(np.float64) @ w1 + b1
    mean, var = _moments(h)
    bn1 = model.get_layer("bn1")
    np.testing.assert_allclose(np.asarray(bn1.moving_mean), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(bn1.moving_variance), var, rtol=1e-4, atol=1e-5)
    # bn2 sees bn1 normalizing with the batch's own statistics, as in fit
    gamma, beta = bn1.get_weights()[:2]
    h = np.maximum((h - mean) / np.sqrt(var + bn1.epsilon) * gamma + beta, 0.0)
    w2, b2 = model.get_layer("dense2").get_weights()
    mean, var = _moments(h @ w2 + b2)
    bn2 = model.get_layer("bn2")
    np.testing.assert_allclose(np.asarray(bn2.moving_mean), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(bn2.moving_variance), var, rtol=1e-4, atol=1e-5)


def test_batches_pool_into_the_population_statistics(flavour):
    model = _two_normalizations(flavour)
    x = np.random.default_rng(1).normal(0.0, 1.0, (50, 5)).astype(np.float32)
    batchnorm.reestimate(model, _samples(x), batch_size=16)  # 16, 16, 16 and 2
    w1, b1 = model.get_layer("dense1").get_weights()
    mean, var = _moments(x.astype(np.float64) @ w1 + b1)  # bn1's input does not depend on batches
    bn1 = model.get_layer("bn1")
    np.testing.assert_allclose(np.asarray(bn1.moving_mean), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(bn1.moving_variance), var, rtol=1e-4, atol=1e-5)


def test_layers_it_cannot_reach_keep_their_statistics(flavour):
    k = keras(flavour)
    L = k.layers
    inner_in = k.Input((4,))
    inner = k.Model(inner_in, L.BatchNormalization(name="nested_bn")(inner_in), name="inner")
    shared = L.BatchNormalization(name="shared_bn")
    inputs = k.Input((4,))
    a = shared(L.Dense(4, name="a")(inputs))
    b = shared(L.Dense(4, name="b")(inputs))
    model = randomize_bn(k.Model(inputs, [inner(a), b]))
    randomize_bn(inner)
    before = [w.copy() for w in model.get_weights()]
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    assert batchnorm.reestimate(model, _samples(x)) == []
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_fold_after_fine_tuning_is_the_kept_model_with_statistics_re_estimated(flavour):
    (x, y), (xt, _) = ks.data.load_digits(8)
    x, y, xt = x[:128], y[:128], xt[:32]
    model = randomize_bn(residual_cnn(flavour))
    results = {}
    for fold in ("after", False):
        _compat.keras_module(flavour).utils.set_random_seed(0)
        settings = BlockRemoval(fold_batchnorm=fold, **QUICK)
        results[fold] = remove_blocks(model, settings, train_data=(x, y), epochs=1, verbose=0)
    folded, kept = results["after"], results[False]
    assert folded.removed == kept.removed
    kinds = [type(layer).__name__ for layer in folded.model.layers]
    assert "BatchNormalization" not in kinds
    assert "BatchNormalization" in [type(layer).__name__ for layer in kept.model.layers]
    notes = " | ".join(folded.report.notes)
    assert "BatchNormalization layer(s) re-estimated on 128 samples from train_data" in notes
    assert "into the layer before, after fine-tuning" in notes
    assert {m["kind"] for m in folded.report.merged} == {"bn"}
    stale = np.asarray(kept.model(xt, training=False))
    assert batchnorm.reestimate(kept.model, _samples(x))
    fresh = np.asarray(kept.model(xt, training=False))
    assert np.abs(fresh - stale).max() > 1e-3  # the moving averages after one epoch were stale
    np.testing.assert_allclose(np.asarray(folded.model(xt)), fresh, rtol=1e-3, atol=1e-3)


def test_fold_before_and_without_fine_tuning_keep_the_statistics(flavour):
    (x, y), _ = ks.data.load_digits(8)
    x, y = x[:64], y[:64]
    model = randomize_bn(residual_cnn(flavour))

    def run(fold, epochs):
        settings = BlockRemoval(fold_batchnorm=fold, **QUICK)
        result = remove_blocks(model, settings, train_data=(x, y), epochs=epochs, verbose=0)
        return result, " | ".join(result.report.notes)

    _, notes = run("before", 1)
    assert "into the layer before, before fine-tuning" in notes and "re-estimated" not in notes
    untuned, notes = run("after", 0)
    assert "re-estimated" not in notes and "after fine-tuning" not in notes
    assert {m["kind"] for m in untuned.report.merged} == {"bn"}
    same, _ = run("before", 0)
    np.testing.assert_allclose(
        np.asarray(untuned.model(x)), np.asarray(same.model(x)), rtol=1e-5, atol=1e-5
    )


def test_fold_batchnorm_choices():
    assert BlockRemoval().fold_batchnorm == "after"
    assert BlockRemoval(fold_batchnorm=True).fold_batchnorm == "after"
    assert BlockRemoval(fold_batchnorm=False).fold_batchnorm is False
    config = BlockRemoval(fold_batchnorm="before").get_config()
    assert BlockRemoval.from_config(config).fold_batchnorm == "before"
    for value in ("later", 1, None):
        with pytest.raises(RecipeError, match=r"fold_batchnorm says when .* Received: fold_b"):
            BlockRemoval(fold_batchnorm=value)
