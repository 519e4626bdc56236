"""The built-in digits data set (shipped inside the package, no download)."""

from __future__ import annotations

import functools
import importlib.resources

import numpy as np

NUM_CLASSES = 10
NUM_TRAIN = 1400  # The last 397 samples are the test split.


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    with importlib.resources.files(__package__).joinpath("digits.npz").open("rb") as f:
        npz = np.load(f)
        return npz["images"], npz["labels"]


def load_digits(image_size: int = 8):
    """Loads the 1,797 handwritten digits, split like `keras.datasets`.

    Pixels are scaled to [0, 1] float32 with a channel axis; images are resized
    bilinearly when `image_size` is not 8. The first 1,400 samples are the
    training split, the last 397 the test split.

    Args:
        image_size: side of the square images returned (8 = original).

    Returns:
        `(x_train, y_train), (x_test, y_test)`; labels are int64 class ids.

    Example:
        >>> (x, y), (x_test, y_test) = ks.data.load_digits(image_size=16)
        >>> x.shape
        (1400, 16, 16, 1)
    """
    if not isinstance(image_size, int) or image_size < 1:
        from keras_squeeze.errors import DataError

        raise DataError(
            f"image_size must be a positive integer. Received: image_size={image_size!r}"
        )
    images, labels = _raw()
    x = (images.astype(np.float32) / 16.0)[..., None]
    if image_size != 8:
        import tensorflow as tf

        x = tf.image.resize(x, (image_size, image_size), method="bilinear").numpy()
        x = np.clip(x, 0.0, 1.0).astype(np.float32)
    y = labels.astype(np.int64)
    return (x[:NUM_TRAIN], y[:NUM_TRAIN]), (x[NUM_TRAIN:], y[NUM_TRAIN:])
