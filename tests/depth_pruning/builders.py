"""Small models for the block removal tests, in either Keras flavour."""

from __future__ import annotations

import numpy as np

from keras_squeeze import _compat


def residual_cnn(flavour: str, size: int = 8, width: int = 8, blocks: int = 2, seed: int = 0):
    """Stem, `blocks` residual blocks at `width` channels, a stride-2 conv, `blocks` more at
    twice the width, global pooling, Dropout and a 10-class Dense head."""
    k = _compat.keras_module(flavour)
    L = k.layers
    k.utils.set_random_seed(seed)

    def block(x, name, channels):
        y = L.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
        y = L.BatchNormalization(name=f"{name}_bn1")(y)
        y = L.ReLU(name=f"{name}_relu1")(y)
        y = L.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
        y = L.BatchNormalization(name=f"{name}_bn2")(y)
        x = L.Add(name=f"{name}_add")([x, y])
        return L.ReLU(name=f"{name}_out")(x)

    inputs = k.Input((size, size, 1), name="image")
    x = L.Conv2D(width, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    for i in range(blocks):
        x = block(x, f"s1_b{i}", width)
    x = L.Conv2D(2 * width, 3, strides=2, padding="same", name="down")(x)
    x = L.ReLU(name="down_relu")(x)
    for i in range(blocks):
        x = block(x, f"s2_b{i}", 2 * width)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    x = L.Dropout(0.2, name="drop")(x)
    outputs = L.Dense(10, name="logits")(x)
    return k.Model(inputs, outputs, name="residual_cnn")


def randomize_bn(model, seed: int = 0):
    """Non-trivial BatchNormalization statistics, so that folding has work to do."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            config = layer.get_config()
            weights = layer.get_weights()
            new = []
            if config["scale"]:
                new.append(rng.uniform(0.5, 1.5, weights[0].shape))  # gamma
            if config["center"]:
                new.append(rng.normal(0, 0.2, weights[0].shape))  # beta
            new.append(rng.normal(0, 0.2, weights[0].shape))  # moving mean
            new.append(rng.uniform(0.5, 1.5, weights[0].shape))  # moving variance
            layer.set_weights([w.astype(np.float32) for w in new])
    return model


def identity_block_model(flavour: str):
    """A residual block whose branch is exactly zero (zero kernel, zero BN beta / mean), between
    two ordinary layers: bypassing it must change no output bit."""
    k = _compat.keras_module(flavour)
    L = k.layers
    k.utils.set_random_seed(3)
    inputs = k.Input((6, 6, 3), name="x")
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="before")(inputs)
    y = L.Conv2D(4, 3, padding="same", name="zero_conv", kernel_initializer="zeros")(x)
    y = L.BatchNormalization(name="zero_bn")(y)
    x = L.Add(name="exact_add")([x, y])
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="after")(x)
    x = L.Flatten(name="flat")(x)
    outputs = L.Dense(5, name="head")(x)
    return k.Model(inputs, outputs, name="exact")


def data(size: int = 8, n: int = 64, seed: int = 0, classes: int = 10):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, size, size, 1)).astype(np.float32)
    y = rng.integers(0, classes, n)
    return x, y
