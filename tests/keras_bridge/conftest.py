"""Keras 3 models for the bridge tests, built once per session (small inputs)."""

from __future__ import annotations

import types

import numpy as np
import pytest

from tests.conftest import weights_snapshot

IMAGE = 32


def randomize_batch_norm(model, seed: int = 0) -> None:
    """Non-trivial BatchNormalization statistics, so a wrong translation shows."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            randomize_batch_norm(layer, seed + 1)
        elif isinstance(layer, keras.layers.BatchNormalization):
            shapes = [tuple(w.shape) for w in layer.weights]
            values = [rng.uniform(0.5, 1.5, shapes[0]), rng.normal(0, 0.1, shapes[1])]
            values += [rng.normal(0, 0.1, shapes[2]), rng.uniform(0.5, 1.5, shapes[3])]
            layer.set_weights([v.astype("float32") for v in values])


def images(n: int = 8, size: int = IMAGE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype("float32")


def build_application(name: str):
    """A keras.applications model, random init, logits out, small input."""
    import keras

    keras.utils.set_random_seed(0)
    kw = {"input_shape": (IMAGE, IMAGE, 3), "weights": None, "classifier_activation": None}
    if name == "MobileNetV2":
        model = keras.applications.MobileNetV2(alpha=0.35, **kw)
    elif name == "MobileNetV3Small":
        model = keras.applications.MobileNetV3Small(alpha=0.75, **kw)
    elif name == "ResNet50":
        model = keras.applications.ResNet50(**kw)
    else:
        model = keras.applications.EfficientNetB0(**kw)
    randomize_batch_norm(model)
    return model


def build_multi_io_model():
    """Two inputs, three outputs, a shared layer called three times, a nested
    keras.applications backbone, a nested Sequential, Keras 3 ops, a frozen part."""
    import keras
    from keras import layers, ops

    keras.utils.set_random_seed(1)
    backbone = keras.applications.MobileNetV2(
        input_shape=(IMAGE, IMAGE, 3), alpha=0.35, include_top=False, weights=None, pooling="avg"
    )
    randomize_batch_norm(backbone, 3)
    head = keras.Sequential(
        [layers.Dense(16, activation="hard_silu", name="head_dense"), layers.Dropout(0.1)],
        name="head",
    )
    image = keras.Input((IMAGE, IMAGE, 3), name="image")
    meta = keras.Input((6,), name="meta")
    features = backbone(image)
    shared = layers.Dense(8, activation="relu", name="shared_dense")
    a = shared(head(features))
    b = shared(layers.Dense(16, name="meta_dense")(meta))
    c = shared(ops.concatenate([a, b], axis=-1)[:, :16] * 0.5 + 1.0)
    merged = layers.Concatenate(name="merge")([a, b, c])
    logits = layers.Dense(5, name="logits", kernel_regularizer="l2")(merged)
    score = layers.Dense(1, activation="sigmoid", name="score")(
        ops.mean(merged, axis=-1, keepdims=True) + b
    )
    frozen = layers.Dense(3, name="frozen_dense", trainable=False)(a)
    return keras.Model([image, meta], [logits, score, frozen], name="multi_io")


@pytest.fixture(scope="session")
def multi_io_model():
    return build_multi_io_model()


@pytest.fixture(scope="session")
def multi_io_inputs():
    rng = np.random.default_rng(2)
    return [images(8, seed=2), rng.normal(size=(8, 6)).astype("float32")]


def bridge_both_ways(model, x, **extra):
    """The user's model, a snapshot of it, and both crossings (for module fixtures)."""
    from keras_squeeze.keras_bridge import to_keras3, to_tf_keras

    weights, config = weights_snapshot(model), model.get_config()
    tf_keras_model, forward = to_tf_keras(model, x)
    keras3_model, backward = to_keras3(tf_keras_model, like=model, sample_inputs=x)
    return types.SimpleNamespace(
        model=model,
        weights=weights,
        config=config,
        tf_keras_model=tf_keras_model,
        forward=forward,
        keras3_model=keras3_model,
        backward=backward,
        **extra,
    )
