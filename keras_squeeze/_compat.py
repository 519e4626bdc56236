"""Keras flavours (Keras 3 and tf_keras) and the tfmot import guard.

TensorFlow >= 2.16 gives users Keras 3; tensorflow-model-optimization (tfmot)
works on tf_keras (Keras 2) only, and its import sets TF_USE_LEGACY_KERAS=1,
which flips `tf.keras` to Keras 2 for the rest of the process if `tf.keras`
was not resolved yet. `import_tfmot()` resolves `tf.keras` under the user's
environment first and restores the variable afterwards.
"""

from __future__ import annotations

import importlib
import os
import threading

KERAS3 = "keras3"
TF_KERAS = "tf_keras"

_LEGACY_ENV = "TF_USE_LEGACY_KERAS"
_tfmot_lock = threading.Lock()


def keras_flavour(obj) -> str | None:
    """Returns "keras3", "tf_keras" or None for any Keras object or class.

    Decided from the class hierarchy, so it imports neither Keras package.
    """
    cls = obj if isinstance(obj, type) else type(obj)
    for base in cls.__mro__:
        module = base.__module__ or ""
        if module == "tf_keras" or module.startswith("tf_keras."):
            return TF_KERAS
        if module == "keras" or module.startswith("keras."):
            # Keras 2 standalone (keras<3) is not a supported install here,
            # and keras._tf_keras is Keras 3 too.
            return KERAS3
    return None


def is_keras_model(obj) -> bool:
    """True for a Keras 3 or tf_keras `Model` instance (any subclass)."""
    if isinstance(obj, type):
        return False
    for base in type(obj).__mro__:
        if base.__name__ == "Model" and keras_flavour(base) is not None:
            return True
    return False


def keras_module(flavour: str):
    """The top-level Keras module of a flavour: `keras` or `tf_keras`."""
    return importlib.import_module("keras" if flavour == KERAS3 else "tf_keras")


def import_tfmot():
    """Imports tensorflow_model_optimization without changing the user's Keras.

    Returns:
        The `tensorflow_model_optimization` module.
    """
    with _tfmot_lock:
        import tensorflow as tf

        # Resolve tf.keras now, under the environment the user chose, so
        # tfmot's TF_USE_LEGACY_KERAS=1 cannot decide it for them.
        _ = tf.keras.__name__
        before = os.environ.get(_LEGACY_ENV)
        try:
            import tensorflow_model_optimization as tfmot
        finally:
            if before is None:
                os.environ.pop(_LEGACY_ENV, None)
            else:
                os.environ[_LEGACY_ENV] = before
    return tfmot
