"""The library side of keras-squeeze-compress: a typed run() the script only calls."""

from __future__ import annotations

import pathlib

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.errors import DataError

DIGITS = "digits"
EXAMPLE_IMAGE_SIZE = 16


def _say(verbose: int, message: str) -> None:
    if verbose:
        print(f"keras_squeeze: {message}", flush=True)


def load_data(
    source: str, specs
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Training and validation data from "digits" or a .npz file.

    The digits are resized to the model's square image input and repeated
    over its channels. A .npz holds `x` and `y` (split 80/20 in order) or
    `x_train`, `y_train`, `x_test`, `y_test`.
    """
    if len(specs) != 1:
        raise DataError(
            f"The command line feeds single-input models. Expected one model input. "
            f"Received: {len(specs)} inputs ({', '.join(s.name for s in specs)})"
        )
    shape = specs[0].shape
    if source == DIGITS:
        from keras_squeeze.data import load_digits

        if len(shape) != 3 or shape[0] is None or shape[0] != shape[1]:
            raise DataError(
                "The built-in digits need a square image input. Expected a model input of shape "
                f"(size, size, channels). Received: {shape}"
            )
        (x, y), (xt, yt) = load_digits(int(shape[0]))
        if shape[2] not in (None, 1):
            x, xt = np.repeat(x, shape[2], axis=-1), np.repeat(xt, shape[2], axis=-1)
        return (x, y), (xt, yt)
    path = pathlib.Path(source)
    if path.suffix != ".npz" or not path.is_file():
        raise DataError(
            f"Unknown data source. Expected 'digits' or an existing .npz file with x/y arrays. "
            f"Received: '{source}'"
        )
    try:
        with np.load(path) as npz:
            arrays = dict(npz)
    except Exception as e:
        raise DataError(
            f"The .npz could not be read. Expected a numpy .npz. Received: '{path}' ({e})"
        ) from e
    if {"x_train", "y_train", "x_test", "y_test"} <= set(arrays):
        return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    if {"x", "y"} <= set(arrays):
        split = int(len(arrays["x"]) * 0.8)
        return (arrays["x"][:split], arrays["y"][:split]), (
            arrays["x"][split:],
            arrays["y"][split:],
        )
    raise DataError(
        "The .npz does not hold the expected arrays. Expected x and y, or x_train, y_train, x_test "
        f"and y_test. Received: {sorted(arrays)}"
    )


def run(
    model: str | None = None,
    recipe: str = "int8",
    output_dir: str = "squeezed",
    data: str = DIGITS,
    epochs: int = 8,
    num_calibration_samples: int = 200,
    inference_input_type: str | None = None,
    inference_output_type: str | None = None,
    formats: tuple[str, ...] = ("tflite", "onnx", "saved_model"),
    verbose: int = 1,
):
    """Compresses a model file (or the example CNN trained on the digits) and saves it.

    Args:
        model: path to a .keras / .h5 / SavedModel; None trains the example CNN
            on the built-in digits for `epochs` epochs.
        recipe: a preset recipe name.
        output_dir: where the artifacts and reports go.
        data: "digits" or a .npz with x/y arrays (calibration and validation).
        epochs: training epochs of the example model.

    Returns:
        The CompressionResult.
    """
    from keras_squeeze.api import models
    from keras_squeeze.api.compress import compress
    from keras_squeeze.api.recipe import Recipe
    from keras_squeeze.export import atomic

    Recipe.get(recipe)
    atomic.check_writable_dir(output_dir)
    if model is None:
        from keras_squeeze.data import train_example_model

        _say(verbose, f"training the example CNN on the built-in digits ({epochs} epochs)")
        keras_model = train_example_model(
            epochs=epochs,
            image_size=EXAMPLE_IMAGE_SIZE,
            flavour=_compat.KERAS3,
            verbose=1 if verbose else 0,
        )
    else:
        _say(verbose, f"loading {model}")
        keras_model = models.load_model(model)
    (x, y), (xt, yt) = load_data(data, models.input_specs(keras_model))
    result = compress(
        keras_model,
        recipe,
        train_data=(x, y),
        representative_data=x,
        validation_data=(xt, yt),
        num_calibration_samples=num_calibration_samples,
        inference_input_type=inference_input_type,
        inference_output_type=inference_output_type,
        verbose=verbose,
    )
    out = result.save(output_dir, formats=formats)
    print(result.report.table())
    print(f"artifacts in {out}")
    return result
