"""The record of one exported artifact, and the checks every export passes."""

from __future__ import annotations

import dataclasses
import math
import pathlib

import numpy as np

from keras_squeeze.errors import VerificationError
from keras_squeeze.report.metrics import Fidelity

# A float export of a float model must reproduce it to within rounding; below
# this the export is wrong, not merely imprecise.
FLOAT_MIN_SQNR_DB = 40.0


@dataclasses.dataclass
class Artifact:
    """One exported model, loaded back and checked in its own runtime.

    Attributes:
        format: "tflite", "onnx" or "saved_model".
        path: where it was written, or None when only held in memory.
        size_bytes: file size (sum of files for a SavedModel directory).
        fidelity: its outputs against the float Keras model on the same inputs.
        content: the bytes, for single-file formats.
        reference: what `agreement` compares against, e.g. "model.tflite".
        agreement: its outputs against `reference` (e.g. ONNX converted from a
            .tflite against that .tflite), or None.
        notes: how it was produced.
    """

    format: str
    path: pathlib.Path | None
    size_bytes: int
    fidelity: Fidelity | None
    content: bytes | None = dataclasses.field(default=None, repr=False)
    reference: str | None = None
    agreement: Fidelity | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "path": str(self.path) if self.path is not None else None,
            "bytes": self.size_bytes,
            "fidelity": self.fidelity.to_dict() if self.fidelity else None,
            "reference": self.reference,
            "agreement": self.agreement.to_dict() if self.agreement else None,
            "notes": list(self.notes),
        }


def check_outputs_finite(outputs, what: str) -> None:
    for i, o in enumerate(outputs):
        if not np.isfinite(o).all():
            raise VerificationError(
                f"The {what} produced NaN or Inf (output {i}). Expected finite outputs like the "
                "Keras model's. Received: non-finite values"
            )


def check_float_fidelity(fidelity: Fidelity, what: str) -> None:
    """A float export must reproduce the float model (SQNR >= 40 dB)."""
    if not (fidelity.sqnr_db >= FLOAT_MIN_SQNR_DB or math.isinf(fidelity.sqnr_db)):
        raise VerificationError(
            f"The {what} does not reproduce the Keras model. Expected SQNR >= "
            f"{FLOAT_MIN_SQNR_DB:.0f} dB for a float export. Received: {fidelity.summary()}"
        )


def dir_size(path: pathlib.Path) -> int:
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file())


def verification_samples(specs, verification_data=None, fallback=None, limit: int = 256):
    """Samples to verify an export on: given data, else `fallback`, else synthetic."""
    from keras_squeeze.data import inputs as data_inputs

    if verification_data is not None:
        return data_inputs.take_samples(verification_data, specs, limit, "verification_data")
    if fallback is not None:
        return fallback
    return data_inputs.synthetic_samples(specs, 16)
