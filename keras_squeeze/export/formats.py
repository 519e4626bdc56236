"""The artifact formats a result or the export script writes, and their file names.

Import-light on purpose: the scripts read it while parsing flags.
"""

from __future__ import annotations

FORMATS = ("tflite", "onnx", "saved_model")
FILE_NAMES = {"tflite": "model.tflite", "onnx": "model.onnx", "saved_model": "saved_model"}


def check_formats(formats, error: type[Exception]) -> tuple[str, ...]:
    """`formats` as a tuple, or `error` when it is empty or names an unknown format."""
    formats = tuple(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise error(
            f"Unknown export format. Expected a non-empty subset of {list(FORMATS)}. "
            f"Received: formats={list(formats)}"
        )
    return formats
