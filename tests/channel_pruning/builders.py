"""Small models for the channel pruning tests, in either Keras flavour."""

from __future__ import annotations

import numpy as np

from keras_squeeze import _compat


def randomize(model, seed: int = 0):
    """Gives every weight random values (BN statistics included) so no channel is special."""
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.get_weights():
        if w.ndim == 1 and w.size > 0 and (w > 0).all() and np.allclose(w, 1.0):
            weights.append(rng.uniform(0.5, 1.5, w.shape).astype(w.dtype))  # gamma, variance
        else:
            weights.append(rng.normal(0, 0.3, w.shape).astype(w.dtype))
    model.set_weights(weights)
    return model


def zoo(flavour: str, size: int = 16):
    """A CNN with BN, Depthwise, residual Add, squeeze-excite, Concatenate, Flatten -> Dense."""
    k = _compat.keras_module(flavour)
    L = k.layers
    inputs = k.Input((size, size, 3), name="image")
    x = L.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    y = L.Conv2D(32, 1, name="expand")(x)
    y = L.BatchNormalization(name="expand_bn")(y)
    y = L.Activation("relu", name="expand_relu")(y)
    y = L.DepthwiseConv2D(3, padding="same", name="dw")(y)
    y = L.BatchNormalization(name="dw_bn")(y)
    y = L.ReLU(6.0, name="dw_relu")(y)
    y = L.Conv2D(16, 1, name="project")(y)
    x = L.Add(name="add")([x, y])
    se = L.GlobalAveragePooling2D(name="se_pool")(x)
    se = L.Dense(16, activation="relu", name="se_reduce")(se)
    se = L.Dense(16, activation="sigmoid", name="se_expand")(se)
    se = L.Reshape((1, 1, 16), name="se_reshape")(se)
    x = L.Multiply(name="se_scale")([x, se])
    a = L.Conv2D(24, 3, padding="same", activation="relu", name="branch_a")(x)
    b = L.Conv2D(40, 3, padding="same", name="branch_b")(x)
    b = L.LeakyReLU(name="branch_b_act")(b)
    c = L.Concatenate(name="concat")([a, b])
    c = L.MaxPooling2D(name="pool")(c)
    c = L.Conv2D(32, 3, padding="same", activation="relu", name="head")(c)
    c = L.ZeroPadding2D(1, name="pad")(c)
    c = L.Dropout(0.2, name="drop")(c)
    f = L.Flatten(name="flatten")(c)
    d = L.Dense(48, activation="relu", name="fc")(f)
    outputs = L.Dense(10, name="logits")(d)
    return randomize(k.Model(inputs, outputs, name="zoo"))


def sequential(flavour: str):
    k = _compat.keras_module(flavour)
    L = k.layers
    model = k.Sequential(
        [
            k.Input((8, 8, 1)),
            L.Conv2D(16, 3, activation="relu", name="c1"),
            L.Conv2D(24, 3, activation="relu", name="c2"),
            L.GlobalMaxPooling2D(name="gmp"),
            L.Dense(5, name="out"),
        ],
        name="seq",
    )
    return randomize(model, seed=1)


BN_EPSILON = 2.0**-10  # moving_variance = 1 - epsilon makes rsqrt(var + eps) exactly 1


def exact_cnn(flavour: str):
    """A CNN whose float32 arithmetic is exact (dyadic weights, BN scale exactly gamma).

    Weights are -0.5, 0 or 0.5 and the BN variance makes
    rsqrt(variance + epsilon) == 1, so on small integer inputs every sum is
    exact in any order: outputs can be compared bit for bit.
    """
    k = _compat.keras_module(flavour)
    L = k.layers
    inputs = k.Input((8, 8, 2), name="image")
    x = L.Conv2D(16, 3, padding="same", use_bias=False, name="c1")(inputs)
    x = L.BatchNormalization(epsilon=BN_EPSILON, name="bn1")(x)
    x = L.ReLU(name="relu1")(x)
    y = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    y = L.ReLU(name="dw_relu")(y)
    y = L.Conv2D(16, 1, name="c2")(y)
    x = L.Add(name="add")([x, y])
    a = L.Conv2D(8, 3, padding="same", activation="relu", name="a")(x)
    b = L.Conv2D(16, 3, padding="same", activation="relu", name="b")(x)
    x = L.Concatenate(name="cat")([a, b])
    x = L.MaxPooling2D(name="pool")(x)
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="c3")(x)
    x = L.Flatten(name="flat")(x)
    x = L.Dense(16, activation="relu", name="fc")(x)
    outputs = L.Dense(4, name="out")(x)
    model = k.Model(inputs, outputs, name="exact_cnn")
    rng = np.random.default_rng(3)
    weights = []
    for layer in model.layers:
        for w, v in zip(layer.weights, layer.get_weights(), strict=True):
            name = (getattr(w, "path", None) or w.name).split("/")[-1].split(":")[0]
            if name == "moving_variance":
                weights.append(np.full(v.shape, 1.0 - BN_EPSILON, v.dtype))
            else:
                weights.append((rng.integers(-1, 2, v.shape) / 2.0).astype(v.dtype))
    model.set_weights(weights)
    return model


def integer_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 3, (n, 8, 8, 2)).astype(np.float32)


def extras(flavour: str):
    """Separable, transposed and 1-D convolutions, PReLU, Dense on a 4-D tensor, more merges."""
    k = _compat.keras_module(flavour)
    L = k.layers
    inputs = k.Input((8, 8, 3), name="image")
    x = L.SeparableConv2D(24, 3, padding="same", name="sep")(inputs)
    x = L.PReLU(shared_axes=[1, 2], name="prelu")(x)
    y = L.Conv2DTranspose(24, 3, strides=2, padding="same", name="up_conv")(x)
    y = L.Cropping2D(4, name="crop")(y)
    z = L.UpSampling2D(1, name="same_size")(x)
    x = L.Subtract(name="sub")([y, z])
    x = L.Maximum(name="max")([x, L.Dense(24, name="dense4d")(x)])
    x = L.Average(name="avg")([x, L.SeparableConv2D(24, 1, name="sep2")(x)])
    x = L.Reshape((64, 24), name="to_sequence")(x)
    x = L.Conv1D(16, 3, padding="same", activation="tanh", name="conv1d")(x)
    x = L.GlobalMaxPooling1D(name="gmp")(x)
    outputs = L.Dense(5, name="out")(x)
    return randomize(k.Model(inputs, outputs, name="extras"), seed=2)


def zero_removed_inputs(model, analysis, plans):
    """Sets to zero, in place, each consumer's weights that read channels the plan removes.

    The model then ignores those channels: the pruned model must compute the same.
    """
    for info in analysis.nodes:
        if info.reason or info.rule is None or info.rule.role != "producer":
            continue
        plan = plans[info.node.name]
        drop = np.setdiff1d(np.arange(plan.in_size), plan.in_keep)
        layer = model.get_layer(info.node.name)
        weights = layer.get_weights()
        if info.node.kind.startswith("SeparableConv"):
            weights[1][..., drop, :] = 0.0
        elif info.node.kind.endswith("Transpose"):
            weights[0][..., drop] = 0.0
        else:
            weights[0][..., drop, :] = 0.0
        layer.set_weights(weights)
    return model
