"""The Keras 3 <-> tf_keras bridge: training-time techniques for Keras 3 models.

tensorflow-model-optimization (pruning, clustering, quantization-aware
training) works on tf_keras (Keras 2) models only. `to_tf_keras` rebuilds a
Keras 3 Sequential or functional model as an equivalent tf_keras model
(layer graph walk, config translation, weight copy, numeric check);
`to_keras3` puts the weights of a stripped tf_keras model back into a fresh
Keras 3 copy of the user's own architecture. Custom layers are taught to the
bridge with `register_layer`.

    from keras_squeeze.keras_bridge import to_tf_keras, to_keras3
    tfk_model, report = to_tf_keras(keras3_model, x_sample)
    ...  # tfmot on tfk_model, then strip
    keras3_copy, report = to_keras3(stripped, like=keras3_model)
"""

from keras_squeeze.keras_bridge.agreement import Agreement
from keras_squeeze.keras_bridge.backward import to_keras3
from keras_squeeze.keras_bridge.forward import to_tf_keras
from keras_squeeze.keras_bridge.registry import register_layer, unregister_layer
from keras_squeeze.keras_bridge.report import BridgeReport

__all__ = [
    "Agreement",
    "BridgeReport",
    "register_layer",
    "to_keras3",
    "to_tf_keras",
    "unregister_layer",
]
