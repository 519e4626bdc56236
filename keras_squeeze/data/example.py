"""The example model of the embedded default: a small CNN for the digits."""

from __future__ import annotations

from keras_squeeze import _compat

BN_MOMENTUM = 0.9


def example_model(
    input_shape=(16, 16, 1), num_classes: int = 10, flavour: str = _compat.KERAS3, seed: int = 0
):
    """Builds the example CNN (about 580K parameters at 16x16), uncompiled.

    conv32-bn-relu, conv64-bn-relu, maxpool, conv64-relu, flatten, dense128,
    dense(num_classes) logits. The batch normalizations keep their moving
    statistics with momentum 0.9 (Keras' default is 0.99): on a small data set
    (the digits give 44 steps an epoch) the 0.99 averages still lag the
    weights after 8 epochs, and the model scores about 0.80 on the test digits
    in inference mode against about 0.95 with 0.9.

    Args:
        input_shape: image shape without the batch axis.
        num_classes: number of output logits.
        flavour: "keras3" (the `keras` package) or "tf_keras".
        seed: seed of the weight initializers.
    """
    if flavour not in (_compat.KERAS3, _compat.TF_KERAS):
        from keras_squeeze.errors import ModelError

        raise ModelError(
            f"Unknown Keras flavour. Expected 'keras3' or 'tf_keras'. Received: flavour={flavour!r}"
        )
    k = _compat.keras_module(flavour)
    layers = k.layers

    def init(i):
        return k.initializers.GlorotUniform(seed=seed + i)

    # Every layer is named (as Keras names the first such model of a session), so that
    # reports and per-layer keys ("dense") name the same layers however many models the
    # process built before: Keras numbers unnamed layers across a session.
    inputs = k.Input(shape=tuple(input_shape), name="image")
    x = layers.Conv2D(
        32, 3, padding="same", use_bias=False, kernel_initializer=init(0), name="conv2d"
    )(inputs)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="batch_normalization")(x)
    x = layers.ReLU(name="re_lu")(x)
    x = layers.Conv2D(
        64, 3, padding="same", use_bias=False, kernel_initializer=init(1), name="conv2d_1"
    )(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="batch_normalization_1")(x)
    x = layers.ReLU(name="re_lu_1")(x)
    x = layers.MaxPooling2D(name="max_pooling2d")(x)
    x = layers.Conv2D(
        64, 3, padding="same", activation="relu", kernel_initializer=init(2), name="conv2d_2"
    )(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", kernel_initializer=init(3), name="dense")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=init(4), name="logits")(x)
    return k.Model(inputs, outputs, name="digits_cnn")


def train_example_model(
    epochs: int = 8,
    image_size: int = 16,
    flavour: str = _compat.KERAS3,
    seed: int = 0,
    verbose: int = 0,
):
    """Builds and trains the example CNN on the built-in digits.

    Returns:
        The trained, compiled model (Adam, sparse categorical cross-entropy
        on logits, accuracy metric).
    """
    from keras_squeeze.data.digits import load_digits

    k = _compat.keras_module(flavour)
    k.utils.set_random_seed(seed)
    (x, y), _ = load_digits(image_size)
    model = example_model((image_size, image_size, 1), flavour=flavour, seed=seed)
    model.compile(
        optimizer=k.optimizers.Adam(1e-3),
        loss=k.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=verbose, shuffle=True)
    return model
