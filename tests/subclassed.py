"""Small subclassed models for the native engine's tests, in either Keras flavour."""

from __future__ import annotations

import numpy as np

from keras_squeeze import _compat
from tests.conftest import keras

SAMPLES = 512  # of the 8x8 digits: a fine-tune of 16 steps per epoch at batch 32


def cnn(flavour: str, seed: int = 0):
    """conv8 -> conv32 (no bias) -> flatten -> dense64 -> dense10 logits, as a subclass."""
    k = keras(flavour)
    k.utils.set_random_seed(seed)
    init = k.initializers.GlorotUniform

    class SubclassedCNN(k.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.stem = k.layers.Conv2D(8, 3, padding="same", activation="relu")
            self.conv = k.layers.Conv2D(
                32, 3, padding="same", use_bias=False, kernel_initializer=init(seed)
            )
            self.act = k.layers.ReLU()
            self.flat = k.layers.Flatten()
            self.hidden = k.layers.Dense(64, activation="relu", kernel_initializer=init(seed + 1))
            self.logits = k.layers.Dense(10)

        def call(self, x):
            return self.logits(self.hidden(self.flat(self.act(self.conv(self.stem(x))))))

    return SubclassedCNN()


def trained(model, data, epochs: int = 2):
    """`model` fitted on `data` ((x, y) digits), then returned."""
    k = keras(_compat.keras_flavour(model))
    k.utils.set_random_seed(0)
    x, y = data
    model.compile(
        optimizer=k.optimizers.Adam(1e-3),
        loss=k.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = {n: v[:SAMPLES] for n, v in x.items()} if isinstance(x, dict) else x[:SAMPLES]
    model.fit(x, y[:SAMPLES], batch_size=32, epochs=epochs, verbose=0)
    return model


def dict_input_classifier(flavour: str = "keras3"):
    """{"image": 8x8x1, "meta": 5} -> two branches -> dense32 -> dense10 logits."""
    k = keras(flavour)

    class ImageAndMeta(k.Model):
        def __init__(self):
            super().__init__()
            self.conv = k.layers.Conv2D(16, 3, padding="same", activation="relu")
            self.flat = k.layers.Flatten()
            self.meta = k.layers.Dense(8, activation="relu")
            self.merge = k.layers.Concatenate()
            self.hidden = k.layers.Dense(32, activation="relu")
            self.logits = k.layers.Dense(10)

        def call(self, inputs):
            image = self.flat(self.conv(inputs["image"]))
            return self.logits(self.hidden(self.merge([image, self.meta(inputs["meta"])])))

    return ImageAndMeta()


def with_meta(x: np.ndarray) -> dict:
    """The digits with a constant 5-feature side input."""
    return {"image": x, "meta": np.full((len(x), 5), 0.5, np.float32)}
