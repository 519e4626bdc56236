"""Agreement metrics between a reference (the float Keras model) and an export.

Plain functions of numpy arrays; no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
from collections.abc import Sequence

import numpy as np


def sqnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB: 10 log10(sum(ref^2) / sum((ref - cand)^2)).

    Returns `inf` when the two agree exactly, and `-inf` for a zero reference
    with a non-zero difference.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape:
        raise ValueError(f"Shapes differ: {ref.shape} vs {cand.shape}")
    noise = float(np.sum((ref - cand) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def is_classifier_output(output: np.ndarray) -> bool:
    """A (batch, classes) output with at least two classes."""
    return output.ndim == 2 and output.shape[-1] >= 2


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Fraction of samples whose arg-max class is the same in both outputs."""
    return float(np.mean(np.argmax(reference, axis=-1) == np.argmax(candidate, axis=-1)))


def accuracy(outputs: np.ndarray, class_ids: np.ndarray) -> float:
    """Top-1 accuracy of (batch, classes) outputs against integer class ids."""
    return float(np.mean(np.argmax(outputs, axis=-1) == np.asarray(class_ids).reshape(-1)))


def classifier_accuracy(outputs: list[np.ndarray], labels) -> float | None:
    """Top-1 accuracy of a model's outputs when it has one classifier output
    (batch, classes >= 2) and labels (class ids or one-hot rows) are given; else None."""
    from keras_squeeze.data.inputs import class_ids

    if labels is None or len(outputs) != 1 or not is_classifier_output(outputs[0]):
        return None
    return accuracy(outputs[0], class_ids(labels))


def gzip_size(content: bytes) -> int:
    """Size after gzip at level 9, the usual measure of download size."""
    return len(gzip.compress(bytes(content), compresslevel=9, mtime=0))


@dataclasses.dataclass
class OutputFidelity:
    name: str
    sqnr_db: float
    max_abs_diff: float
    top1_agreement: float | None


@dataclasses.dataclass
class Fidelity:
    """How closely an exported model reproduces the reference on the same inputs.

    Attributes:
        sqnr_db: lowest per-output SQNR in dB (inf when identical).
        top1_agreement: lowest per-output arg-max agreement for classifier
            outputs, None when no output is a classifier.
        max_abs_diff: largest absolute difference over all outputs.
        samples: number of inputs compared.
        inputs: where the inputs came from (e.g. "200 samples from validation_data").
        outputs: the same figures per output.
    """

    sqnr_db: float
    top1_agreement: float | None
    max_abs_diff: float
    samples: int
    inputs: str
    outputs: list[OutputFidelity]

    def to_dict(self) -> dict:
        return {
            "sqnr_db": json_float(self.sqnr_db),
            "top1_agreement": self.top1_agreement,
            "max_abs_diff": self.max_abs_diff,
            "samples": self.samples,
            "inputs": self.inputs,
            "outputs": [
                {**dataclasses.asdict(o), "sqnr_db": json_float(o.sqnr_db)} for o in self.outputs
            ],
        }

    def summary(self) -> str:
        parts = [f"SQNR {format_db(self.sqnr_db)}"]
        if self.top1_agreement is not None:
            parts.append(f"top-1 agreement {self.top1_agreement:.1%}")
        parts.append(f"max |diff| {self.max_abs_diff:.3g}")
        return ", ".join(parts)


def json_float(value: float) -> float | str:
    """JSON has no infinities: write them as strings."""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def format_db(value: float) -> str:
    return "exact" if math.isinf(value) and value > 0 else f"{value:.1f} dB"


def compare(
    reference: Sequence[np.ndarray],
    candidate: Sequence[np.ndarray],
    names: Sequence[str],
    inputs: str,
) -> Fidelity:
    """Fidelity of `candidate` outputs against `reference` outputs (same order)."""
    if len(reference) != len(candidate):
        raise ValueError(f"Output counts differ: {len(reference)} vs {len(candidate)}")
    per_output = []
    for name, ref, cand in zip(names, reference, candidate, strict=True):
        ref = np.asarray(ref, dtype=np.float32)
        cand = np.asarray(cand, dtype=np.float32).reshape(ref.shape)
        per_output.append(
            OutputFidelity(
                name=name,
                sqnr_db=sqnr_db(ref, cand),
                max_abs_diff=float(np.max(np.abs(ref - cand))) if ref.size else 0.0,
                top1_agreement=top1_agreement(ref, cand) if is_classifier_output(ref) else None,
            )
        )
    agreements = [o.top1_agreement for o in per_output if o.top1_agreement is not None]
    return Fidelity(
        sqnr_db=min(o.sqnr_db for o in per_output),
        top1_agreement=min(agreements) if agreements else None,
        max_abs_diff=max(o.max_abs_diff for o in per_output),
        samples=len(reference[0]) if len(reference) else 0,
        inputs=inputs,
        outputs=per_output,
    )
