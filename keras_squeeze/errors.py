"""Errors raised by keras_squeeze.

Every error is a `KerasSqueezeError`; each subclass also derives from the
built-in exception of its natural kind, so `except ValueError` keeps working.
Messages follow one pattern: what is wrong. Expected .... Received: ....
"""

from __future__ import annotations

__all__ = [
    "BridgeError",
    "DataError",
    "ExportError",
    "KerasSqueezeError",
    "ModelError",
    "NonFiniteError",
    "OutputError",
    "RecipeError",
    "VerificationError",
]


class KerasSqueezeError(Exception):
    """Base class of every error keras_squeeze raises on purpose."""


class ModelError(KerasSqueezeError, TypeError):
    """The model argument is not a usable Keras model (or model file)."""


class BridgeError(ModelError):
    """A model cannot be rebuilt between Keras 3 and tf_keras (see keras_bridge)."""


class RecipeError(KerasSqueezeError, ValueError):
    """A recipe name or recipe setting is invalid."""


class DataError(KerasSqueezeError, ValueError):
    """A data argument is missing, or does not fit the model."""


class NonFiniteError(KerasSqueezeError, ValueError):
    """NaN or Inf where finite numbers are required (weights or data)."""


class OutputError(KerasSqueezeError, OSError):
    """An output location cannot be written."""


class ExportError(KerasSqueezeError, RuntimeError):
    """A converter (TFLite, tf2onnx, SavedModel) failed on the model."""


class VerificationError(ExportError):
    """An exported artifact does not load, run, or agree with the Keras model."""
