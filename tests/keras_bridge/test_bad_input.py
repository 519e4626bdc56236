"""Models the bridge cannot rebuild: a clear KerasSqueezeError naming the layer and what to do."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze.errors import BridgeError, KerasSqueezeError, ModelError
from keras_squeeze.keras_bridge import to_keras3, to_tf_keras
from tests.conftest import assert_weights_equal, weights_snapshot
from tests.keras_bridge.custom_layers import scale_model


def _double(t):
    return t * 2.0


def _dense_model(**dense_kwargs):
    import keras

    x = keras.Input((4,), name="x")
    return keras.Model(x, keras.layers.Dense(2, name="head", **dense_kwargs)(x), name="small")


def test_an_option_tf_keras_does_not_have():
    # LoRA exists in Keras 3 only; unused (lora_rank=None) it is dropped, used it cannot be.
    with pytest.raises(
        BridgeError,
        match=r"The config of layer 'head' \(Dense\) cannot be translated to tf_keras: the "
        r"option 'lora_rank' has no tf_keras equivalent in Dense\. Expected 'lora_rank' at its "
        r"Keras 3 default \(None\), or a translation registered with keras_squeeze\.keras_bridge"
        r"\.register_layer\. Received: lora_rank=2",
    ):
        to_tf_keras(_dense_model(lora_rank=2))


def test_a_custom_regularizer_or_activation_cannot_be_translated():
    import keras

    @keras.saving.register_keras_serializable(package="tests")
    class Penalty(keras.regularizers.Regularizer):
        def __call__(self, w):
            return keras.ops.sum(w) * 0.1

        def get_config(self):
            return {}

    with pytest.raises(
        BridgeError,
        match=r"The regularizer of layer 'head' \(Dense\) \(kernel_regularizer\) has no tf_keras "
        r"equivalent\. Expected a built-in Keras regularizer.*Received: .*Penalty",
    ):
        to_tf_keras(_dense_model(kernel_regularizer=Penalty()))
    with pytest.raises(
        BridgeError,
        match=r"The activation of layer 'head' \(Dense\) \(activation\) is a custom function",
    ):
        to_tf_keras(_dense_model(activation=_double))


@pytest.mark.filterwarnings("ignore:Layer InputLayer does not have a `quantize` method")
def test_a_quantized_dtype_policy_cannot_be_translated():
    model = _dense_model()
    model.quantize("int8")
    with pytest.raises(
        BridgeError, match=r"dtype policy of layer 'head' .*has no tf_keras equivalent"
    ):
        to_tf_keras(model)


def test_a_lambda_of_python_code_is_refused_with_what_to_do():
    import keras

    x = keras.Input((4,))
    model = keras.Model(x, keras.layers.Lambda(lambda t: t * 2.0, name="double")(x))
    with pytest.raises(
        BridgeError,
        match=r"The Lambda layer 'double' \(Lambda\) wraps a Python function the bridge cannot "
        r"translate\. Expected a Lambda of a public Keras or TensorFlow op.*register_layer\. "
        r"Received: .*<lambda>",
    ):
        to_tf_keras(model)


def test_an_op_without_translation():
    import keras

    x = keras.Input((4,))
    model = keras.Model(x, keras.ops.cumsum(x, axis=-1))
    with pytest.raises(
        BridgeError,
        match=r"The op 'cumsum' \(numpy.Cumsum\) has no tf_keras translation in the bridge\. "
        r"Expected one of \[.*'numpy.Add'.*\]; or wrap the computation in a layer and register "
        r"it.*Received: keras.src.ops.numpy.Cumsum",
    ):
        to_tf_keras(model)


def test_an_unbuilt_sequential():
    import keras

    model = keras.Sequential([keras.layers.Dense(3)], name="lazy")
    with pytest.raises(
        BridgeError,
        match=r"The Sequential model 'lazy' has no defined inputs\. Expected a model built on an "
        r"input shape: start it with keras\.Input\(shape=\.\.\.\).*Received: an unbuilt Sequential",
    ):
        to_tf_keras(model)


def test_a_tf_keras_model_is_not_bridged_again():
    import tf_keras

    x = tf_keras.Input((4,))
    model = tf_keras.Model(x, tf_keras.layers.Dense(2)(x), name="legacy")
    with pytest.raises(
        BridgeError,
        match=r"The model 'legacy' is already a tf_keras model\. Expected a Keras 3 model "
        r"\(keras\.Model\); a tf_keras model goes to tfmot as it is\. Received: tf_keras",
    ):
        to_tf_keras(model)
    with pytest.raises(ModelError, match=r"model is not a Keras model"):
        to_tf_keras({"not": "a model"})


def test_mixed_flavours_on_the_way_back():
    model = _dense_model()
    tfk, _ = to_tf_keras(model)
    with pytest.raises(
        BridgeError, match=r"to_keras3 takes a tf_keras model first.*Received: a keras3"
    ):
        to_keras3(model, like=model)
    with pytest.raises(BridgeError, match=r"The model 'small' is already a tf_keras model"):
        to_keras3(tfk, like=tfk)


def test_the_way_back_needs_the_same_layers():
    tfk, _ = to_tf_keras(_dense_model())
    other = scale_model()
    with pytest.raises(
        BridgeError,
        match=r"The tf_keras model 'small' does not have the layers of the Keras 3 model 'scaled'\. "
        r"Expected the same layers with weights, by name\. Received: missing \['dense_in', "
        r"'dense_out', 'scale'\], not in the Keras 3 model \['head'\]",
    ):
        to_keras3(tfk, like=other)


def test_the_way_back_checks_weight_shapes():
    import keras

    tfk, _ = to_tf_keras(_dense_model())
    x = keras.Input((5,), name="x")
    wider = keras.Model(x, keras.layers.Dense(2, name="head")(x))
    with pytest.raises(
        BridgeError,
        match=r"The weights of layer 'head' do not match its Keras 3 rebuild\. Expected the same "
        r"weights by name and shape\. Received: .*\(4, 2\).*\(5, 2\)",
    ):
        to_keras3(tfk, like=wider)


def test_duplicate_names_once_nested_models_are_inlined():
    import keras

    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, keras.layers.Dense(4, name="dense_twice")(inner_in), name="inner")
    x = keras.Input((4,))
    model = keras.Model(x, keras.layers.Dense(2, name="dense_twice")(inner(x)))
    with pytest.raises(
        BridgeError,
        match=r"Two layers are named 'dense_twice' once nested models are inlined\. Expected unique "
        r"layer names.*Received: 'inner/dense_twice' and 'dense_twice' \(rename one\)",
    ):
        to_tf_keras(model)


def test_errors_leave_the_users_model_unchanged():
    model = _dense_model(activation=_double)
    weights, config = weights_snapshot(model), model.get_config()
    with pytest.raises(KerasSqueezeError):
        to_tf_keras(model)
    assert_weights_equal(weights, model)
    assert model.get_config() == config


def test_sample_inputs_must_fit_the_model():
    from keras_squeeze.errors import DataError

    with pytest.raises(DataError, match=r"sample_inputs does not match the model's input 'x'"):
        to_tf_keras(_dense_model(), np.zeros((3, 5), "float32"))
