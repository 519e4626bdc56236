"""Distil a student: a 90x smaller CNN learns from the example CNN, then goes to int8.

    python examples/distill_student.py

Loss: alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
      + (1 - alpha) * cross-entropy on the labels.
"""

from __future__ import annotations

import keras

import keras_squeeze as ks


def build_student(image_size: int = 8, num_classes: int = 10) -> keras.Model:
    """A narrow student CNN (about 2K parameters at 8x8)."""
    inputs = keras.Input((image_size, image_size, 1), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(24, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="digits_student")


def main(
    output_dir="squeezed/distill_student",
    teacher_epochs: int = 12,
    epochs: int = 30,
    image_size: int = 8,
    temperature: float = 4.0,
    alpha: float = 0.9,
    verbose=1,
):
    """Trains the teacher, distils the student from it, quantizes the student to int8.

    Returns:
        (the DistillResult, the student's CompressionResult).
    """
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = ks.data.load_digits(image_size=image_size)
    teacher = ks.data.train_example_model(epochs=teacher_epochs, image_size=image_size)
    student = build_student(image_size)
    student.compile(optimizer=keras.optimizers.Adam(1e-2))  # ks.distill uses this optimizer

    distilled = ks.distill(
        teacher,
        student,
        (x_train, y_train),
        epochs=epochs,
        temperature=temperature,
        alpha=alpha,
        validation_data=(x_test, y_test),
        verbose=0,
    )
    result = ks.compress(
        distilled.model,
        "int8",
        representative_data=x_train,
        validation_data=(x_test, y_test),
        verbose=verbose,
    )
    result.save(output_dir, formats=("tflite",))
    accuracy = distilled.report["accuracy"]
    print(
        f"teacher {teacher.count_params():,} params, accuracy {accuracy['teacher']:.3f}; "
        f"student {student.count_params():,} params, accuracy {accuracy['student']:.3f}; "
        f"student int8 .tflite {len(result.tflite):,} bytes, accuracy "
        f"{result.report.accuracy['compressed']:.3f}"
    )
    return distilled, result


if __name__ == "__main__":
    main()
