"""The one progress printer: every line keras_squeeze writes while it works.

Lines go to stdout, flushed, prefixed with "keras_squeeze: " so they stand
apart from Keras' progress bars and TensorFlow's own logging; `verbose=0`
silences them.

Example:
    >>> say(1, "converting with 'int8' quantization")
    keras_squeeze: converting with 'int8' quantization
"""

from __future__ import annotations

PREFIX = "keras_squeeze: "


def say(verbose: int, message: str) -> None:
    """Prints one progress line when `verbose` is on."""
    if verbose:
        print(f"{PREFIX}{message}", flush=True)
