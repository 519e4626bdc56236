"""Image folders in keras.utils.image_dataset_from_directory's layout, written as real PNGs."""

from __future__ import annotations

import pathlib

import numpy as np


def write_png(path: pathlib.Path, image: np.ndarray) -> None:
    """Writes an (h, w, c) uint8 image as PNG with TensorFlow's encoder."""
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(image).numpy())


def digits_folder(root, classes=(0, 1, 2), per_class: int = 20, size: int = 8) -> pathlib.Path:
    """The built-in digits of `classes` as grayscale PNGs, one sub-folder per class."""
    from keras_squeeze.data import load_digits

    root = pathlib.Path(root)
    (x, y), _ = load_digits(size)
    for c in classes:
        for i, k in enumerate(np.flatnonzero(y == c)[:per_class]):
            write_png(root / f"digit_{c}" / f"{i:03d}.png", (x[k] * 255).round().astype(np.uint8))
    return root
