"""A custom layer in both flavours, for the registration tests."""

from __future__ import annotations

import keras
import tf_keras


def _scale_class(base, name):
    class ScaleLayer(base):
        """y = x * w * factor, with one trainable weight per feature."""

        def __init__(self, factor=1.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def build(self, input_shape):
            self.w = self.add_weight(name="w", shape=(input_shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.w * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    ScaleLayer.__name__ = ScaleLayer.__qualname__ = name
    return ScaleLayer


Scale = _scale_class(keras.layers.Layer, "Scale")  # Keras 3
TFScale = _scale_class(tf_keras.layers.Layer, "TFScale")  # its tf_keras twin


class TFScaleWithGain(TFScale):
    """A tf_keras version that names the factor 'gain' (needs a config translation)."""

    def __init__(self, gain=1.0, **kwargs):
        super().__init__(factor=gain, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["gain"] = config.pop("factor")
        return config


class TFScaleWrong(TFScale):
    """A wrong twin: it adds one, so the numeric check must catch it."""

    def call(self, x):
        return x * self.w * self.factor + 1.0


def scale_model(factor=2.0):
    """Input(4) -> Dense -> Scale -> Dense."""
    keras.utils.set_random_seed(5)
    x = keras.Input((4,), name="features")
    y = keras.layers.Dense(3, name="dense_in")(x)
    y = Scale(factor, name="scale")(y)
    y = keras.layers.Dense(2, name="dense_out")(y)
    return keras.Model(x, y, name="scaled")
