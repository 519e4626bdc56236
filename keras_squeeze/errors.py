"""Errors raised by keras_squeeze.

Every error is a `KerasSqueezeError`; each subclass also derives from the
built-in exception of its natural kind, so `except ValueError` keeps working.
Messages follow one pattern: what is wrong. Expected .... Received: ....
"""

from __future__ import annotations

__all__ = [
    "AccuracyBudgetWarning",
    "BenchmarkError",
    "BridgeError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DelegateError",
    "DependencyError",
    "DeviceError",
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


class CheckpointError(KerasSqueezeError, ValueError):
    """A checkpoint_dir belongs to another run, or its files do not restore this one."""


class ConfigError(KerasSqueezeError, ValueError):
    """A setting is out of range or inconsistent (run counts, threads, names)."""


class BenchmarkError(KerasSqueezeError, RuntimeError):
    """A latency benchmark could not run or its output could not be read."""


class DelegateError(BenchmarkError):
    """A TFLite delegate the model needs (Edge TPU, external) is missing or fails."""


class DeviceError(BenchmarkError):
    """adb is missing, no usable device is attached, or the device stopped answering."""


class DependencyError(KerasSqueezeError, ImportError):
    """An optional dependency (e.g. matplotlib for charts) is not installed."""


class AccuracyBudgetWarning(UserWarning):
    """compress(max_accuracy_drop=...): the compressed .tflite lost more of the model's
    metric on the validation data than the budget allows (an error with strict=True)."""
