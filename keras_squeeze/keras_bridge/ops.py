"""Keras 3 ops in a model graph as TensorFlow ops, which tf_keras wraps as layers.

Calling a Keras 3 op on a symbolic tensor (`x + 3.0`, `keras.ops.mean(x)`,
`x[:, 0]`) records an `Operation` in the graph that is not a layer
(MobileNetV3's hard-sigmoid is `ReLU(6.0)(x + 3.0) * (1.0 / 6.0)`). Here
each public op maps to the TensorFlow function Keras 3's TensorFlow backend
runs; called on tf_keras symbolic tensors, tf_keras records it as a
`TFOpLambda` / `SlicingOpLambda` layer, exactly what tf_keras' own
applications contain. The same functions run eagerly, which the divergence
search uses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from keras_squeeze.errors import BridgeError


def _table() -> dict[str, Callable]:
    import tensorflow as tf

    from keras_squeeze.keras_bridge import activations

    extra = activations.keras3_only()

    def reduce(fn):
        return lambda c, x: fn(x, axis=c.get("axis"), keepdims=c.get("keepdims", False))

    def clip(c, x):
        return tf.clip_by_value(x, c["x_min"], c["x_max"])

    return {
        # keras.ops.numpy (also what +, -, *, /, x[...] record)
        "numpy.Add": lambda c, a, b: tf.math.add(a, b),
        "numpy.Subtract": lambda c, a, b: tf.math.subtract(a, b),
        "numpy.Multiply": lambda c, a, b: tf.math.multiply(a, b),
        "numpy.Divide": lambda c, a, b: tf.math.truediv(a, b),
        "numpy.TrueDivide": lambda c, a, b: tf.math.truediv(a, b),
        "numpy.Power": lambda c, a, b: tf.math.pow(a, b),
        "numpy.Maximum": lambda c, a, b: tf.math.maximum(a, b),
        "numpy.Minimum": lambda c, a, b: tf.math.minimum(a, b),
        "numpy.Matmul": lambda c, a, b: tf.linalg.matmul(a, b),
        "numpy.Negative": lambda c, x: tf.math.negative(x),
        "numpy.Absolute": lambda c, x: tf.math.abs(x),
        "numpy.Sqrt": lambda c, x: tf.math.sqrt(x),
        "numpy.Square": lambda c, x: tf.math.square(x),
        "numpy.Exp": lambda c, x: tf.math.exp(x),
        "numpy.Log": lambda c, x: tf.math.log(x),
        "numpy.Tanh": lambda c, x: tf.math.tanh(x),
        "numpy.Mean": reduce(tf.math.reduce_mean),
        "numpy.Sum": reduce(tf.math.reduce_sum),
        "numpy.Max": reduce(tf.math.reduce_max),
        "numpy.Min": reduce(tf.math.reduce_min),
        "numpy.Clip": clip,
        "numpy.Reshape": lambda c, x: tf.reshape(x, c["newshape"]),
        "numpy.Transpose": lambda c, x: tf.transpose(x, perm=c.get("axes")),
        "numpy.ExpandDims": lambda c, x: tf.expand_dims(x, c["axis"]),
        "numpy.Squeeze": lambda c, x: tf.squeeze(x, axis=c.get("axis")),
        "numpy.Concatenate": lambda c, xs: tf.concat(list(xs), axis=c.get("axis", 0)),
        "numpy.Stack": lambda c, xs: tf.stack(list(xs), axis=c.get("axis", 0)),
        "numpy.GetItem": lambda c, x, key: x[key],
        "numpy.Equal": lambda c, a, b: tf.math.equal(a, b),
        "numpy.NotEqual": lambda c, a, b: tf.math.not_equal(a, b),
        "numpy.Greater": lambda c, a, b: tf.math.greater(a, b),
        "numpy.GreaterEqual": lambda c, a, b: tf.math.greater_equal(a, b),
        "numpy.Less": lambda c, a, b: tf.math.less(a, b),
        "numpy.LessEqual": lambda c, a, b: tf.math.less_equal(a, b),
        "numpy.LogicalAnd": lambda c, a, b: tf.math.logical_and(a, b),
        "numpy.LogicalOr": lambda c, a, b: tf.math.logical_or(a, b),
        "numpy.LogicalNot": lambda c, x: tf.math.logical_not(x),
        "numpy.Any": reduce(tf.math.reduce_any),
        "numpy.All": reduce(tf.math.reduce_all),
        "numpy.Where": lambda c, cond, a, b: tf.where(cond, a, b),
        # keras.ops.nn
        "nn.Relu": lambda c, x: tf.nn.relu(x),
        "nn.Relu6": lambda c, x: tf.nn.relu6(x),
        "nn.Sigmoid": lambda c, x: tf.math.sigmoid(x),
        "nn.Silu": lambda c, x: tf.nn.silu(x),
        "nn.Softmax": lambda c, x: tf.nn.softmax(x, axis=c.get("axis", -1)),
        "nn.LogSoftmax": lambda c, x: tf.nn.log_softmax(x, axis=c.get("axis", -1)),
        "nn.Gelu": lambda c, x: tf.nn.gelu(x, approximate=c.get("approximate", True)),
        "nn.LeakyRelu": lambda c, x: tf.nn.leaky_relu(x, alpha=c.get("negative_slope", 0.2)),
        "nn.HardSigmoid": lambda c, x: extra["hard_sigmoid"](x),
        "nn.HardSilu": lambda c, x: extra["hard_silu"](x),
        # keras.ops.core
        "core.Cast": lambda c, x: tf.cast(x, c["dtype"]),
    }


@functools.cache
def table() -> dict[str, Callable]:
    """{"numpy.Add": fn(config, *args, **kwargs), ...} for every translated Keras 3 op."""
    return _table()


def op_key(operation) -> str:
    """ "numpy.Add" for keras.src.ops.numpy.Add."""
    module = type(operation).__module__
    prefix = "keras.src.ops."
    short = module[len(prefix) :] if module.startswith(prefix) else module
    return f"{short}.{type(operation).__name__}"


def is_op(operation) -> bool:
    """True for a Keras 3 op (an Operation that is not a layer)."""
    import keras

    return not isinstance(operation, keras.layers.Layer) and type(operation).__module__.startswith(
        "keras."
    )


def translate(operation) -> Callable:
    """A function computing the Keras 3 op with TensorFlow ops: fn(*args, **kwargs).

    Raises:
        BridgeError: the op is not one the bridge translates.
    """
    fn = table().get(op_key(operation))
    if fn is None:
        raise BridgeError(
            f"The op '{operation.name}' ({op_key(operation)}) has no tf_keras translation in the "
            f"bridge. Expected one of {sorted(table())}; or wrap the computation in a layer and "
            "register it with keras_squeeze.keras_bridge.register_layer. "
            f"Received: {type(operation).__module__}.{type(operation).__name__}"
        )
    config = operation.get_config()
    return functools.partial(fn, config)
