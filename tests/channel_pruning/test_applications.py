"""keras.applications models prune, run and convert (structure checks at small input sizes)."""

from __future__ import annotations

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.channel_pruning import ChannelPruning, prune_channels
from tests.conftest import keras

APPLICATIONS = {
    "MobileNetV2": lambda k: k.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10
    ),
    "ResNet50": lambda k: k.applications.ResNet50(
        input_shape=(32, 32, 3), weights=None, classes=10
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flavour", "name"),
    # ResNet50 runs on Keras 3 only: tf_keras adds ~45 s for the same graph walk.
    [("keras3", "MobileNetV2"), ("tf_keras", "MobileNetV2"), ("keras3", "ResNet50")],
)
def test_application_prunes_runs_and_converts(flavour, name):
    k = keras(flavour)
    k.utils.set_random_seed(0)
    model = APPLICATIONS[name](k)
    result = prune_channels(model, ChannelPruning(target=0.5), verbose=0)
    report = result.report
    assert abs(report.flops_ratio - 0.5) <= 0.025  # within 5% of the target
    assert report.params_after < 0.7 * report.params_before
    # every residual Add still adds tensors of one shape (the model runs), and the
    # classifier keeps its 10 outputs
    x = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    out = np.asarray(result.model(x, training=False))
    assert out.shape == (4, 10) and np.isfinite(out).all()
    adds = [layer for layer in result.model.layers if type(layer).__name__ == "Add"]
    assert len(adds) == sum(type(layer).__name__ == "Add" for layer in model.layers) > 0
    art = ks.export.to_tflite(result.model, verification_data=x)
    assert art.fidelity.top1_agreement == 1.0
    rows = {r.name: r for r in report.layers}
    assert rows["predictions"].channels_after == 10
