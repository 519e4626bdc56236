"""keras.applications models lose whole blocks, run and convert (small inputs, random init)."""

from __future__ import annotations

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.depth_pruning import BlockRemoval, remove_blocks
from tests.conftest import keras

APPLICATIONS = {
    "MobileNetV2": lambda k: k.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10
    ),
    "ResNet50": lambda k: k.applications.ResNet50(
        input_shape=(32, 32, 3), weights=None, classes=10
    ),
}
# residual blocks (identity blocks / inverted residuals) and shape-keeping chain layers
REMOVABLE = {"MobileNetV2": (10, 3), "ResNet50": (12, 5)}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flavour", "name"),
    # ResNet50 runs on Keras 3 only, as in the channel pruning tests (tf_keras is slower).
    [("keras3", "MobileNetV2"), ("tf_keras", "MobileNetV2"), ("keras3", "ResNet50")],
)
def test_application_loses_blocks_runs_and_converts(flavour, name):
    k = keras(flavour)
    k.utils.set_random_seed(0)
    model = APPLICATIONS[name](k)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    settings = BlockRemoval(0.7, "blocks", "output-distance", importance_samples=4, remeasure=False)
    result = remove_blocks(model, settings, importance_data=x, verbose=0)
    report = result.report
    residual, chain = REMOVABLE[name]
    removable = [u for u in report.units if u.removable]
    assert sum(u.kind == "residual" for u in removable) == residual
    assert sum(u.kind == "chain" for u in removable) == chain
    total = residual + chain
    assert len(result.removed) == total - int(0.7 * total)  # to at most 70% of the blocks
    assert report.depth_after < report.depth_before and report.flops_ratio < 0.9
    adds = sum(type(layer).__name__ == "Add" for layer in result.model.layers)
    gone = sum(1 for u in report.removed if u.kind == "residual")
    assert adds == sum(type(layer).__name__ == "Add" for layer in model.layers) - gone
    assert not any(type(layer).__name__ == "BatchNormalization" for layer in result.model.layers)
    out = np.asarray(result.model(x, training=False))
    assert out.shape == (4, 10) and np.isfinite(out).all()
    art = ks.export.to_tflite(result.model, verification_data=x)
    assert art.fidelity.top1_agreement == 1.0
