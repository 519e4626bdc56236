"""Built-in layers, activations and Keras 3 ops, each through the bridge both ways."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze.keras_bridge import ops as bridge_ops
from keras_squeeze.keras_bridge import to_keras3, to_tf_keras
from keras_squeeze.keras_bridge.activations import keras3_only

ACTIVATIONS = [
    "gelu", "silu", "swish", "relu6", "leaky_relu", "hard_sigmoid", "hard_silu", "hard_swish",
    "selu", "elu", "mish", "log_softmax", "softplus", "softsign", "celu", "squareplus",
    "tanh_shrink", "log_sigmoid", "hard_tanh", "soft_shrink", "hard_shrink", "exponential",
]  # fmt: skip


def _cases():
    from keras import layers as L

    return {
        "conv1d": ((16, 3), lambda x: L.Conv1D(4, 3, padding="same", dilation_rate=2)(x)),
        "separable_conv1d": ((16, 3), lambda x: L.SeparableConv1D(4, 3)(x)),
        "conv2d_transpose": ((8, 8, 3), lambda x: L.Conv2DTranspose(4, 3, strides=2)(x)),
        "separable_conv2d": (
            (8, 8, 3),
            lambda x: L.SeparableConv2D(4, 3, depth_multiplier=2, activation="relu6")(x),
        ),
        "conv3d": ((4, 4, 4, 2), lambda x: L.Conv3D(3, 2)(x)),
        "grouped_conv": ((8, 8, 4), lambda x: L.Conv2D(4, 3, groups=2)(x)),
        "pooling": (
            (8, 8, 3),
            lambda x: L.GlobalMaxPooling2D()(
                L.AveragePooling2D(2)(L.MaxPooling2D(padding="same")(x))
            ),
        ),
        "reshaping": (
            (8, 8, 3),
            lambda x: L.Permute((2, 1))(L.Reshape((14, 42))(L.Cropping2D(1)(L.UpSampling2D(2)(x)))),
        ),
        "merging": (
            (6,),
            lambda x: L.Average()(
                [
                    L.Subtract()([x, x * 2.0]),
                    L.Maximum()([x, -x]),
                    L.Minimum()([x, x]),
                    L.Multiply()([x, x]),
                ]
            ),
        ),
        "dot": ((6,), lambda x: L.Dot(axes=1)([x, x])),
        "activation_layers": (
            (6,),
            lambda x: L.PReLU()(L.ELU()(L.LeakyReLU(0.1)(L.Softmax()(L.ReLU(3.0, 0.1)(x))))),
        ),
        "activation_names": (
            (6,),
            lambda x: L.Concatenate()([L.Activation(a)(x) for a in ACTIVATIONS]),
        ),
        "normalizations": (
            (5, 6),
            lambda x: L.UnitNormalization()(L.GroupNormalization(2)(L.LayerNormalization()(x))),
        ),
        "recurrent": (
            (5, 3),
            lambda x: L.Bidirectional(L.LSTM(4, return_sequences=True))(
                L.GRU(4, return_sequences=True)(L.SimpleRNN(3, return_sequences=True)(x))
            ),
        ),
        "masking": ((5, 3), lambda x: L.LSTM(2)(L.Masking()(x))),
        "time_distributed": ((5, 3), lambda x: L.TimeDistributed(L.Dense(2))(x)),
        "attention": ((5, 8), lambda x: L.Attention()([L.MultiHeadAttention(2, 4)(x, x), x])),
        "preprocessing": (
            (8, 8, 3),
            lambda x: L.CenterCrop(4, 4)(L.Resizing(6, 6)(L.Rescaling(2.0, offset=-1)(x))),
        ),
        # Random and noise layers are identities in inference, in both flavours.
        "random_layers": (
            (8, 8, 3),
            lambda x: L.RandomFlip()(
                L.RandomRotation(0.1)(L.GaussianNoise(0.1)(L.SpatialDropout2D(0.1)(x)))
            ),
        ),
        "batch_norm_axis_1": ((3, 4, 5), lambda x: L.BatchNormalization(axis=1)(x)),
        "small_layers": (
            (5, 3),
            lambda x: L.RepeatVector(2)(
                L.Flatten()(L.ZeroPadding1D(2)(L.Cropping1D(1)(L.Identity()(x))))
            ),
        ),
        "lambda_of_a_keras_op": ((4,), "lambda"),
        "embedding_with_mask": ((5,), "embedding"),
        "adapted_normalization": ((4,), "normalization"),
        "category_encoding": ((3,), "category_encoding"),
    }


def _build(name):
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    shape, make = _cases()[name]
    data = None
    if make == "embedding":
        x = keras.Input(shape, dtype="int32")
        y = L.GlobalAveragePooling1D()(L.Embedding(10, 4, mask_zero=True)(x))
        data = rng.integers(0, 10, (6, *shape)).astype("int32")
    elif make == "normalization":
        x = keras.Input(shape)
        norm = L.Normalization()
        norm.adapt(rng.uniform(0, 5, (20, 4)).astype("float32"))
        y = norm(x)
    elif make == "category_encoding":
        x = keras.Input(shape, dtype="int32")
        y = L.CategoryEncoding(num_tokens=5, output_mode="multi_hot")(x)
        data = rng.integers(0, 5, (6, *shape)).astype("int32")
    elif make == "lambda":
        x = keras.Input(shape)
        y = L.Lambda(keras.ops.relu)(x)
    else:
        x = keras.Input(shape)
        y = make(x)
    if data is None:
        data = rng.normal(size=(6, *shape)).astype("float32")
    return keras.Model(x, y), data


@pytest.mark.parametrize("name", sorted(_cases()))
def test_built_in_layers_both_directions(name):
    model, data = _build(name)
    tfk, forward = to_tf_keras(model, data)
    back, backward = to_keras3(tfk, model, data)
    assert forward.agreement.ok and backward.agreement.ok
    reference = np.asarray(model(data, training=False))
    np.testing.assert_allclose(
        np.asarray(tfk(data, training=False)), reference, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(back(data, training=False)), reference, rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_compute_what_keras3_computes(name):
    import keras

    from keras_squeeze.keras_bridge.activations import to_tf_keras as activation

    x = np.linspace(-5, 5, 41, dtype="float32").reshape(1, 41)
    expected = np.asarray(keras.activations.get(name)(x))
    translated = activation(name, "test")
    if isinstance(translated, str):
        import tf_keras

        translated = tf_keras.activations.get(translated)
    np.testing.assert_allclose(np.asarray(translated(x)), expected, rtol=1e-6, atol=1e-6)


def test_hard_sigmoid_is_the_keras3_definition_not_tf_keras():
    import keras
    import tensorflow as tf
    import tf_keras

    x = tf.constant([[-2.0, 1.0, 2.0]], dtype="float32")
    keras3 = np.asarray(keras.activations.hard_sigmoid(x))  # relu6(x + 3) / 6
    np.testing.assert_allclose(keras3, [[1 / 6, 4 / 6, 5 / 6]], rtol=1e-6)
    assert not np.allclose(np.asarray(tf_keras.activations.hard_sigmoid(x)), keras3)
    np.testing.assert_allclose(np.asarray(keras3_only()["hard_sigmoid"](x)), keras3, rtol=1e-6)


def test_every_translated_op():
    import keras
    from keras import ops

    x = keras.Input((4, 6))
    pos = ops.absolute(x) + 1.0
    as_float = lambda t: ops.cast(t, "float32")  # noqa: E731
    outs = [
        x - 1.0, x * 2.0, ops.divide(x, 2.0), ops.true_divide(x, 3.0), ops.power(pos, 2.0), ops.maximum(x, 0.1),
        ops.minimum(x, 0.1), ops.matmul(x, ops.transpose(x, (0, 2, 1))), -x, ops.abs(x),
        ops.sqrt(pos), ops.square(x), ops.exp(x), ops.log(pos), ops.tanh(x),
        ops.mean(x, axis=1), ops.sum(x, axis=-1, keepdims=True), ops.max(x, axis=1),
        ops.min(x, axis=2), ops.clip(x, -0.5, 0.5), ops.reshape(x, (-1, 24)),
        ops.squeeze(ops.expand_dims(x, 1), axis=1), ops.stack([x, x], axis=1), x[:, 1:3, ::2],
        as_float(ops.equal(x, 0.0)), as_float(ops.not_equal(x, 0.0)),
        as_float(ops.greater(x, 0.0)), as_float(ops.greater_equal(x, 0.0)),
        as_float(ops.less(x, 0.0)), as_float(ops.less_equal(x, 0.0)),
        as_float(ops.logical_and(ops.greater(x, 0.0), ops.less(x, 1.0))),
        as_float(ops.logical_or(ops.greater(x, 1.0), ops.less(x, -1.0))),
        as_float(ops.logical_not(ops.greater(x, 0.0))),
        as_float(ops.any(ops.greater(x, 1.0), axis=-1)),
        as_float(ops.all(ops.greater(x, -1.0), axis=-1)),
        ops.where(ops.greater(x, 0.0), x, 0.0), ops.relu(x), ops.relu6(x), ops.sigmoid(x),
        ops.silu(x), ops.softmax(x), ops.log_softmax(x, axis=1), ops.gelu(x),
        ops.leaky_relu(x), ops.hard_sigmoid(x), ops.hard_silu(x),
        ops.concatenate([x, x], axis=-1),
    ]  # fmt: skip
    model = keras.Model(x, outs)
    data = np.random.default_rng(0).normal(size=(6, 4, 6)).astype("float32")
    tfk, report = to_tf_keras(model, data)
    assert set(report.op_layers.values()) == set(bridge_ops.table())
    back, _ = to_keras3(tfk, model, data)
    for ref, new, again in zip(model(data), tfk(data), back(data), strict=True):
        np.testing.assert_allclose(np.asarray(new), np.asarray(ref), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(again), np.asarray(ref), rtol=1e-5, atol=1e-5)
