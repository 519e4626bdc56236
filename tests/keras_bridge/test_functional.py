"""A hand-built functional model through the bridge: shared layers, several inputs
and outputs, a nested keras.applications backbone, a nested Sequential, Keras 3
ops, a frozen layer and a regularizer; plus dict inputs/outputs and Sequential."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze import _compat
from keras_squeeze.core.models import walk_layers
from keras_squeeze.keras_bridge import to_keras3, to_tf_keras
from tests.conftest import assert_weights_equal
from tests.keras_bridge.conftest import bridge_both_ways


@pytest.fixture(scope="module")
def bridged(multi_io_model, multi_io_inputs):
    return bridge_both_ways(multi_io_model, multi_io_inputs)


def _fresh_inputs():
    rng = np.random.default_rng(11)
    return [
        rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32"),
        rng.normal(size=(4, 6)).astype("float32"),
    ]


def _assert_outputs_close(reference, candidate, rtol=1e-5):
    assert len(reference) == len(candidate)
    for ref, new in zip(reference, candidate, strict=True):
        ref, new = np.asarray(ref), np.asarray(new)
        assert ref.shape == new.shape
        assert np.abs(ref - new).max() <= rtol * np.abs(ref).max()


def test_both_directions_agree_on_fresh_inputs(bridged):
    x = _fresh_inputs()
    reference = bridged.model(x, training=False)
    _assert_outputs_close(reference, bridged.tf_keras_model(x, training=False))
    _assert_outputs_close(reference, bridged.keras3_model(x, training=False))
    assert bridged.forward.agreement.ok and bridged.backward.agreement.ok


def test_inputs_outputs_and_names_are_kept(bridged):
    tfk = bridged.tf_keras_model
    assert _compat.keras_flavour(tfk) == _compat.TF_KERAS
    assert tfk.name == "multi_io"
    assert [t.name.split(":")[0] for t in tfk.inputs] == ["image", "meta"]
    assert len(tfk.outputs) == 3
    leaf_names = {layer.name for layer in walk_layers(bridged.model)} - {"image", "meta"}
    rebuilt = {layer.name for layer in tfk.layers}
    # The nested models' own InputLayers are inlined away; every other layer is there.
    nested_inputs = {
        layer.name for layer in walk_layers(bridged.model) if type(layer).__name__ == "InputLayer"
    }
    assert leaf_names - nested_inputs <= rebuilt


def test_nested_models_are_inlined(bridged):
    assert bridged.forward.flattened == ["mobilenetv2_0.35_32", "head"]
    tfk = bridged.tf_keras_model
    assert not any(_compat.is_keras_model(layer) for layer in tfk.layers)
    assert type(tfk.get_layer("Conv1")).__name__ == "Conv2D"  # a backbone layer
    assert type(tfk.get_layer("head_dense")).__name__ == "Dense"  # the Sequential's layer


def test_a_shared_layer_stays_one_layer_called_three_times(bridged):
    shared = bridged.tf_keras_model.get_layer("shared_dense")
    assert len(shared._inbound_nodes) == 3
    assert len(shared.weights) == 2


def test_ops_become_tensorflow_op_layers(bridged):
    assert sorted(set(bridged.forward.op_layers.values())) == [
        "numpy.Add",
        "numpy.Concatenate",
        "numpy.GetItem",
        "numpy.Mean",
        "numpy.Multiply",
    ]


def test_training_settings_are_kept(bridged):
    tfk = bridged.tf_keras_model
    assert not tfk.get_layer("frozen_dense").trainable
    assert len(tfk.trainable_weights) == len(bridged.model.trainable_weights)
    assert len(tfk.non_trainable_weights) == len(bridged.model.non_trainable_weights)
    regularizer = tfk.get_layer("logits").kernel_regularizer
    assert type(regularizer).__module__.startswith("tf_keras")
    assert regularizer.get_config() == pytest.approx({"l2": 0.01})
    # The Keras 3 hard_silu runs as a registered tf_keras function, so tf_keras
    # (and tfmot, which clones layers through their configs) can rebuild it.
    import tf_keras

    head = tfk.get_layer("head_dense")
    assert head.get_config()["activation"]["config"] == "keras_squeeze>hard_silu"
    assert tf_keras.layers.Dense.from_config(head.get_config()).activation is head.activation


def test_the_keras3_copy_has_the_users_architecture(bridged):
    copy = bridged.keras3_model
    assert _compat.keras_flavour(copy) == _compat.KERAS3
    assert copy is not bridged.model
    assert [layer.name for layer in copy.layers] == [layer.name for layer in bridged.model.layers]
    assert _compat.is_keras_model(copy.get_layer("mobilenetv2_0.35_32"))
    assert copy.get_layer("head") is not bridged.model.get_layer("head")


def test_the_users_model_is_unchanged(bridged):
    assert_weights_equal(bridged.weights, bridged.model)
    assert bridged.model.get_config() == bridged.config


def test_dict_inputs_and_outputs():
    import keras

    keras.utils.set_random_seed(3)
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    joined = keras.layers.Concatenate(name="join")([a, b])
    model = keras.Model(
        {"a": a, "b": b},
        {"y": keras.layers.Dense(2, name="y")(joined), "z": keras.layers.Dense(1, name="z")(a)},
    )
    rng = np.random.default_rng(0)
    x = {
        "a": rng.normal(size=(5, 4)).astype("float32"),
        "b": rng.normal(size=(5, 3)).astype("float32"),
    }
    tfk, report = to_tf_keras(model, x)
    assert report.agreement.ok
    out = tfk(x)
    assert isinstance(out, dict) and sorted(out) == ["y", "z"]
    np.testing.assert_allclose(out["y"], model(x)["y"], rtol=1e-6, atol=1e-6)
    back, _ = to_keras3(tfk, model, x)
    np.testing.assert_allclose(back(x)["z"], model(x)["z"], rtol=1e-6, atol=1e-6)


def test_sequential_both_directions():
    import keras

    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1), name="pixels"),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(3, activation="softmax", name="probs"),
        ],
        name="seq",
    )
    tfk, forward = to_tf_keras(model)
    # Rebuilt as a functional tf_keras model (tfmot takes both), InputLayer included.
    assert [layer.name for layer in tfk.layers] == ["pixels", "conv", "bn", "flat", "probs"]
    back, backward = to_keras3(tfk, like=model)
    assert isinstance(back, keras.Sequential)
    assert back.inputs[0].name == "pixels"
    assert forward.agreement.ok and backward.agreement.ok
    assert "synthetic uniform [0, 1) inputs" in forward.samples


def test_a_nested_model_called_twice_shares_its_layers():
    import keras

    keras.utils.set_random_seed(6)
    tower = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(4, activation="gelu", name="tower_dense")],
        name="tower",
    )
    left, right = keras.Input((5,), name="left"), keras.Input((5,), name="right")
    distance = keras.layers.Subtract(name="distance")([tower(left), tower(right)])
    model = keras.Model([left, right], distance, name="siamese")
    rng = np.random.default_rng(1)
    x = [rng.normal(size=(6, 5)).astype("float32") for _ in range(2)]
    tfk, report = to_tf_keras(model, x)
    assert report.flattened == ["tower"]
    assert len(tfk.get_layer("tower_dense")._inbound_nodes) == 2
    assert len(tfk.weights) == 2
    back, _ = to_keras3(tfk, model, x)
    np.testing.assert_allclose(back(x), model(x), rtol=1e-6, atol=1e-6)
