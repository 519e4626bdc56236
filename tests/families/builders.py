"""Small models of the families the package is for, with data that has a learnable rule.

Each builder returns (model, train, test): a Keras 3 model trained two short
epochs on `train`, and held-out `test` data ((x, y) each): enough for the
recipes to have something to preserve, fast enough for the tests.
"""

from __future__ import annotations

import numpy as np

VOCAB, SEQ = 40, 12


def _fit(model, x, y, epochs=2):
    import keras

    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return model


def token_data(n=192, seed=0):
    """Token ids; the class is whether token 1 ("the keyword") appears."""
    rng = np.random.default_rng(seed)
    x = rng.integers(2, VOCAB, (n, SEQ)).astype("int32")
    y = rng.integers(0, 2, n)
    x[y == 1, rng.integers(0, SEQ, int((y == 1).sum()))] = 1
    return x, y.astype("int32")


def text_transformer(seed=0):
    """Embedding + learned positions, one encoder block (MHA, LayerNorm, GELU FFN)."""
    import keras

    keras.utils.set_random_seed(seed)
    ids = keras.Input((SEQ,), dtype="int32", name="ids")
    x = keras.layers.Embedding(VOCAB, 32, name="tokens")(ids)
    # learned positions: the position ids derive from the input, so the Embedding is a layer
    # of the model (called on a constant it would run once and leave a frozen constant);
    # a product, since the converter fuses `+ arange` into an int32 BiasAdd TFLite lacks
    position_ids = (ids * 0 + 1) * keras.ops.arange(SEQ, dtype="int32")
    positions = keras.layers.Embedding(SEQ, 32, name="positions")(position_ids)
    x = keras.layers.Add(name="embed")([x, positions])
    att = keras.layers.MultiHeadAttention(2, 16, name="attention")(x, x)
    x = keras.layers.LayerNormalization(name="norm1")(keras.layers.Add(name="res1")([x, att]))
    f = keras.layers.Dense(64, activation="gelu", name="ffn_in")(x)
    f = keras.layers.Dense(32, name="ffn_out")(f)
    x = keras.layers.LayerNormalization(name="norm2")(keras.layers.Add(name="res2")([x, f]))
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    model = keras.Model(ids, keras.layers.Dense(2, name="logits")(x), name="text_transformer")
    train = token_data(seed=seed)
    return _fit(model, *train), train, token_data(96, seed + 1)


def image_data(n=192, seed=0, size=16):
    """Images with a bright square in one of four quadrants; the class is the quadrant."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, 3), dtype=np.float32) * 0.2
    y = rng.integers(0, 4, n)
    half = size // 2
    for i, q in enumerate(y):
        r, c = divmod(int(q), 2)
        x[i, r * half : r * half + half, c * half : c * half + half] += 0.8
    return x, y.astype("int32")


def small_vit(seed=0, size=16, patch=4):
    """Patch embedding (a strided convolution), one encoder block, mean pooling."""
    import keras

    keras.utils.set_random_seed(seed)
    image = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(32, patch, strides=patch, name="patches")(image)
    x = keras.layers.Reshape(((size // patch) ** 2, 32), name="tokens")(x)
    att = keras.layers.MultiHeadAttention(2, 16, name="attention")(x, x)
    x = keras.layers.LayerNormalization(name="norm1")(keras.layers.Add(name="res1")([x, att]))
    f = keras.layers.Dense(64, activation="gelu", name="ffn_in")(x)
    f = keras.layers.Dense(32, name="ffn_out")(f)
    x = keras.layers.LayerNormalization(name="norm2")(keras.layers.Add(name="res2")([x, f]))
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    model = keras.Model(image, keras.layers.Dense(4, name="logits")(x), name="small_vit")
    train = image_data(seed=seed)
    return _fit(model, *train), train, image_data(96, seed + 1)
