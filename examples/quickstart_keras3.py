"""Quick start with Keras 3: train a small CNN, quantize it to int8, save verified files.

    python examples/quickstart_keras3.py

Writes squeezed/quickstart/: model.tflite (full int8), model.onnx (QDQ),
saved_model/1/ (TF Serving), report.json and report.md. Every file is loaded
back in its own runtime and compared with the Keras model first.
"""

from __future__ import annotations

import keras

import keras_squeeze as ks


def build_model(image_size: int = 8, num_classes: int = 10) -> keras.Model:
    """A small Keras 3 CNN for the digits (about 5K parameters at 8x8)."""
    inputs = keras.Input((image_size, image_size, 1), name="image")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="digits_small_cnn")


def main(output_dir="squeezed/quickstart", epochs: int = 30, image_size: int = 8, verbose=1):
    """Trains the CNN on the built-in digits, compresses it with "int8" and saves it.

    Returns:
        (the trained Keras model, the CompressionResult).
    """
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = ks.data.load_digits(image_size=image_size)
    model = build_model(image_size)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)

    # Post-training full-integer quantization, calibrated on 200 training images.
    result = ks.compress(
        model,
        "int8",
        representative_data=x_train,
        validation_data=(x_test, y_test),
        verbose=verbose,
    )
    result.save(output_dir)
    print(result.report.table())
    return model, result


if __name__ == "__main__":
    main()
