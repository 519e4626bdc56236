"""keras.applications models through the bridge, both directions, checked numerically.

Random init with randomized BatchNormalization statistics and logits out
(classifier_activation=None), 32x32 inputs; each model is built and bridged
once per module.
"""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze import _compat
from keras_squeeze.core.models import walk_layers
from tests.conftest import assert_weights_equal
from tests.keras_bridge.conftest import bridge_both_ways, build_application, images

APPLICATIONS = ["MobileNetV2", "MobileNetV3Small", "ResNet50", "EfficientNetB0"]


@pytest.fixture(scope="module", params=APPLICATIONS)
def bridged(request):
    return bridge_both_ways(build_application(request.param), images(8), name=request.param)


def _assert_close(reference, candidate, rtol=1e-5):
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    assert reference.shape == candidate.shape
    scale = np.abs(reference).max()
    assert scale > 1e-3  # logits, not a saturated softmax
    assert np.abs(reference - candidate).max() <= rtol * scale


def test_forward_rebuild_is_tf_keras_and_agrees(bridged):
    assert _compat.keras_flavour(bridged.tf_keras_model) == _compat.TF_KERAS
    assert bridged.forward.agreement.ok
    assert bridged.forward.agreement.relative <= 1e-5
    # Independently of the bridge's own check: fresh inputs, plain numpy.
    x = images(4, seed=7)
    _assert_close(bridged.model(x, training=False), bridged.tf_keras_model(x, training=False))


def test_layer_names_and_weights_are_kept(bridged):
    keras3_layers = {layer.name: layer for layer in walk_layers(bridged.model)}
    rebuilt = {layer.name: layer for layer in bridged.tf_keras_model.layers}
    op_layers = {
        name for name, layer in rebuilt.items() if type(layer).__name__.endswith("OpLambda")
    }
    assert set(rebuilt) - op_layers == set(keras3_layers)
    assert len(op_layers) == len(bridged.forward.op_layers)
    for name, layer in keras3_layers.items():
        twin = rebuilt[name]
        assert type(twin).__name__ == type(layer).__name__
        assert len(twin.weights) == len(layer.weights)
        for a, b in zip(layer.weights, twin.weights, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert bridged.forward.params == bridged.model.count_params()


def test_backward_gives_a_fresh_keras3_copy_that_agrees(bridged):
    copy = bridged.keras3_model
    assert _compat.keras_flavour(copy) == _compat.KERAS3
    assert copy is not bridged.model
    assert type(copy) is type(bridged.model)
    assert [layer.name for layer in copy.layers] == [layer.name for layer in bridged.model.layers]
    assert bridged.backward.agreement.ok
    x = images(4, seed=8)
    _assert_close(bridged.tf_keras_model(x, training=False), copy(x, training=False))
    for a, b in zip(bridged.model.get_weights(), copy.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_users_model_is_unchanged(bridged):
    assert_weights_equal(bridged.weights, bridged.model)
    assert bridged.model.get_config() == bridged.config


# Keras 3 ops in each graph (MobileNetV3's hard-sigmoid is ReLU(6)(x + 3) * (1/6)).
OPS = {"MobileNetV3Small": {"numpy.Add", "numpy.Multiply"}}


def test_keras3_ops_become_tensorflow_op_layers(bridged):
    assert set(bridged.forward.op_layers.values()) == OPS.get(bridged.name, set())
    op_layers = [
        layer for layer in bridged.tf_keras_model.layers if type(layer).__name__ == "TFOpLambda"
    ]
    assert len(op_layers) == len(bridged.forward.op_layers)
