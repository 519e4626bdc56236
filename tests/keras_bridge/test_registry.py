"""register_layer: the three forms, and the errors around them."""

from __future__ import annotations

import numpy as np
import pytest
import tf_keras

from keras_squeeze.errors import BridgeError, VerificationError
from keras_squeeze.keras_bridge import register_layer, to_keras3, to_tf_keras, unregister_layer
from tests.keras_bridge.custom_layers import (
    Scale,
    TFScale,
    TFScaleWithGain,
    TFScaleWrong,
    scale_model,
)

X = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")


@pytest.fixture
def registered():
    """Registers what the test passes; always removes it afterwards."""

    def register(*args, **kwargs):
        register_layer(Scale, *args, **kwargs)

    yield register
    unregister_layer(Scale)


def _set_scale_weights(model):
    model.get_layer("scale").set_weights([np.array([0.5, -1.0, 2.0], "float32")])
    return model


def test_a_custom_layer_needs_a_registration():
    with pytest.raises(
        BridgeError,
        match=r"layer 'scale' \(Scale\) is a custom layer the bridge does not know\. Expected a "
        r"built-in Keras layer, or a class registered with keras_squeeze\.keras_bridge\."
        r"register_layer.*Received: tests\.keras_bridge\.custom_layers\.Scale",
    ):
        to_tf_keras(scale_model())


def test_register_a_tf_keras_twin(registered):
    registered(TFScale)
    model = _set_scale_weights(scale_model())
    tfk, _ = to_tf_keras(model, X)
    twin = tfk.get_layer("scale")
    assert isinstance(twin, TFScale) and twin.factor == 2.0
    np.testing.assert_array_equal(twin.get_weights()[0], [0.5, -1.0, 2.0])
    back, _ = to_keras3(tfk, model, X)
    np.testing.assert_allclose(back(X), model(X), rtol=1e-6)


def test_register_a_twin_with_a_config_translation(registered):
    def rename(config):
        config["gain"] = config.pop("factor")
        return config

    registered(TFScaleWithGain, translate=rename)
    tfk, _ = to_tf_keras(_set_scale_weights(scale_model(3.0)), X)
    assert tfk.get_layer("scale").factor == 3.0


def test_register_a_builder(registered):
    registered(translate=lambda layer: TFScale(layer.factor, name=layer.name))
    tfk, report = to_tf_keras(_set_scale_weights(scale_model()), X)
    assert isinstance(tfk.get_layer("scale"), TFScale)
    assert report.agreement.ok


def test_a_wrong_twin_is_caught_and_named(registered):
    registered(TFScaleWrong)
    with pytest.raises(
        VerificationError,
        match=r"The tf_keras rebuild of 'scaled' does not reproduce the source model; the first "
        r"layer that diverges is 'scale' .*Expected a relative difference <= 1e-05\. Received: "
        r"max \|diff\|",
    ):
        to_tf_keras(scale_model(), X)


def test_a_builder_must_return_a_tf_keras_layer_of_the_same_name(registered):
    registered(translate=lambda layer: Scale(name=layer.name))
    with pytest.raises(
        BridgeError,
        match=r"builder for layer 'scale' \(Scale\) did not return a tf_keras layer\. Expected a "
        r"tf_keras\.layers\.Layer\. Received: Scale",
    ):
        to_tf_keras(scale_model(), X)
    registered(translate=lambda layer: TFScale(name="other"))
    with pytest.raises(BridgeError, match=r"Expected name='scale'.*Received: 'other'"):
        to_tf_keras(scale_model(), X)


def test_registration_arguments_are_checked():
    with pytest.raises(BridgeError, match=r"takes a Keras 3 layer class first.*\(tf_keras\)"):
        register_layer(TFScale, TFScale)
    with pytest.raises(BridgeError, match=r"Expected a subclass of keras\.layers\.Layer"):
        register_layer("Scale", TFScale)
    with pytest.raises(BridgeError, match=r"tf_keras_cls must be a tf_keras layer class"):
        register_layer(Scale, Scale)
    with pytest.raises(
        BridgeError, match=r"needs a tf_keras class or a builder.*Received: neither"
    ):
        register_layer(Scale)
    with pytest.raises(BridgeError, match=r"translate must be callable"):
        register_layer(Scale, TFScale, translate="rename")
    with pytest.raises(TypeError):  # BridgeError is a ModelError, a TypeError
        register_layer(Scale)
    assert tf_keras.layers.Layer  # the tf_keras import stays usable
