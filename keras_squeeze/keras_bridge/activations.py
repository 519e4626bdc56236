"""Keras 3 activation names as tf_keras activations, with the same mathematics.

Most names mean the same in both flavours ("relu", "softmax", ...). Some
exist only in Keras 3 ("relu6", "hard_silu", ...), and one changed meaning:
Keras 3 `hard_sigmoid(x) = relu6(x + 3) / 6`, tf_keras
`hard_sigmoid(x) = clip(0.2 x + 0.5, 0, 1)`. Those are given here as tf
functions written like Keras 3's TensorFlow backend
(keras/src/backend/tensorflow/nn.py), registered with tf_keras as
"keras_squeeze>name" so tf_keras (and tfmot, which clones layers through
their configs) can serialize and rebuild them.
"""

from __future__ import annotations

import functools

from keras_squeeze.errors import BridgeError

# Same name, same function in Keras 3 and tf_keras (defaults included).
SAME = frozenset(
    {
        "linear",
        "relu",
        "sigmoid",
        "softmax",
        "tanh",
        "elu",
        "selu",
        "softplus",
        "softsign",
        "swish",
        "gelu",
        "exponential",
        "mish",
    }
)
RENAMED = {"silu": "swish"}


def _definitions():
    import tensorflow as tf

    def hard_sigmoid(x):
        return tf.nn.relu6(x + tf.constant(3.0, x.dtype)) / tf.constant(6.0, x.dtype)

    def hard_silu(x):
        return x * hard_sigmoid(x)

    def relu6(x):
        return tf.nn.relu6(x)

    def leaky_relu(x):
        return tf.nn.leaky_relu(x, alpha=0.2)

    def log_softmax(x):
        return tf.nn.log_softmax(x, axis=-1)

    def log_sigmoid(x):
        return tf.math.log_sigmoid(x)

    def hard_tanh(x):
        return tf.clip_by_value(x, -1.0, 1.0)

    def tanh_shrink(x):
        return x - tf.math.tanh(x)

    def celu(x):
        return tf.maximum(x, 0.0) + tf.math.expm1(tf.minimum(x, 0.0))

    def squareplus(x):
        return (x + tf.sqrt(tf.square(x) + tf.constant(4.0, x.dtype))) / 2

    def soft_shrink(x):
        return tf.where(x > 0.5, x - 0.5, tf.where(x < -0.5, x + 0.5, tf.zeros_like(x)))

    def hard_shrink(x):
        return tf.where(tf.abs(x) > 0.5, x, tf.zeros_like(x))

    return {
        "hard_sigmoid": hard_sigmoid,
        "hard_silu": hard_silu,
        "hard_swish": hard_silu,
        "relu6": relu6,
        "leaky_relu": leaky_relu,
        "log_softmax": log_softmax,
        "log_sigmoid": log_sigmoid,
        "hard_tanh": hard_tanh,
        "tanh_shrink": tanh_shrink,
        "celu": celu,
        "squareplus": squareplus,
        "soft_shrink": soft_shrink,
        "hard_shrink": hard_shrink,
    }


@functools.cache
def keras3_only() -> dict:
    """{Keras 3 name: tf function registered with tf_keras as 'keras_squeeze>name'}."""
    import tf_keras

    registered = {}
    for name, fn in _definitions().items():
        canonical = "hard_silu" if name == "hard_swish" else name
        if canonical in registered:
            registered[name] = registered[canonical]
            continue
        fn.__name__ = canonical
        registered[name] = tf_keras.saving.register_keras_serializable(
            package="keras_squeeze", name=canonical
        )(fn)
    return registered


_KERAS_ACTIVATION_MODULES = ("keras.activations", "keras.src.activations.activations")


def activation_name(value):
    """The Keras 3 activation name a layer config holds, or None for a custom one."""
    if value is None or isinstance(value, str):
        return value
    if (
        isinstance(value, dict)
        and value.get("class_name") == "function"
        and value.get("module") in _KERAS_ACTIVATION_MODULES
        and isinstance(value.get("config"), str)
    ):
        return value["config"]
    return None


def to_tf_keras(value, where: str):
    """A Keras 3 activation (config value) as what a tf_keras layer config accepts.

    Args:
        value: the activation in a Keras 3 layer config: a name or a
            serialized function.
        where: the layer and argument, for error messages.

    Raises:
        BridgeError: a custom activation function, or a Keras 3 activation
            without a tf_keras equivalent here.
    """
    name = activation_name(value)
    if name is None and value is not None:
        raise BridgeError(
            f"The activation of {where} is a custom function the bridge cannot rebuild in "
            "tf_keras. Expected a built-in Keras activation name (or an Activation layer "
            "registered with keras_squeeze.keras_bridge.register_layer). Received: "
            f"{value!r}"
        )
    if name is None or name in SAME:
        return name
    if name in RENAMED:
        return RENAMED[name]
    extra = keras3_only()
    if name in extra:
        return extra[name]
    raise BridgeError(
        f"The activation of {where} has no tf_keras equivalent in the bridge. Expected one of "
        f"{sorted(SAME | set(RENAMED) | set(extra))}. Received: '{name}'"
    )
