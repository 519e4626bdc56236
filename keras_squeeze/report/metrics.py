"""Agreement metrics between a reference (the float Keras model) and an export.

Plain functions of numpy arrays; no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import zlib
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


CLASSIFICATION = "classification"
REGRESSION = "regression"


def regression_errors(output: np.ndarray, target: np.ndarray) -> dict:
    """Mean squared and absolute error of outputs against targets of the same size, and the
    relative MSE: MSE over the targets' variance (1 - R^2; 0 is perfect, 1 is as good as
    predicting the mean; None for constant targets)."""
    out = np.asarray(output, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64).reshape(out.shape)
    err = out - target
    mse = float(np.mean(err**2))
    variance = float(np.var(target))
    return {
        "mse": mse,
        "mae": float(np.mean(np.abs(err))),
        "relative_mse": mse / variance if variance > 0 else None,
    }


def output_scores(
    outputs: Sequence[np.ndarray], labels, roles: Sequence[str], names: Sequence[str]
) -> list[dict]:
    """The task metric of every output: top-1 accuracy of a classification output,
    MSE / MAE / relative MSE of a regression output.

    Args:
        outputs: the model's outputs, in order.
        labels: labels matched to the outputs (`data.labels.per_output`): one
            array for a one-output model, else a list with one per output.
        roles: "classification" or "regression" per output.
        names: the outputs' names.

    Returns:
        One dict per output: {"name", "task", "accuracy"} or {"name", "task",
        "mse", "mae", "relative_mse"}.
    """
    from keras_squeeze.data.inputs import class_ids

    label_list = list(labels) if isinstance(labels, list) else [labels]
    scores = []
    for name, out, y, role in zip(names, outputs, label_list, roles, strict=True):
        if role == CLASSIFICATION and is_classifier_output(np.asarray(out)):
            scores.append(
                {"name": name, "task": CLASSIFICATION, "accuracy": accuracy(out, class_ids(y))}
            )
        else:
            scores.append({"name": name, "task": REGRESSION, **regression_errors(out, y)})
    return scores


def task_summary(
    original: Sequence[dict], compressed: Sequence[dict], samples: int, data: str
) -> tuple[dict | None, dict | None]:
    """The report's `accuracy` and `regression` entries from `output_scores` of the
    original model and of the compressed one.

    accuracy: {"original", "compressed", "samples", "data"} of the first
    classification output; with several outputs also "output" (its name) and
    "per_output" ({name: {"original", "compressed"}} of every classification
    output). regression: the same for the first regression output's MSE, with
    "mae" and "relative_mse" ({"original", "compressed"}), "output" and, with
    several outputs, "per_output" ({name: {"mse", "mae", "relative_mse"}}).
    Either is None when no output has that task.
    """
    several = len(original) > 1
    pairs = list(zip(original, compressed, strict=True))
    cls = [(o, c) for o, c in pairs if o["task"] == CLASSIFICATION]
    reg = [(o, c) for o, c in pairs if o["task"] == REGRESSION]
    accuracy = regression = None
    if cls:
        o, c = cls[0]
        accuracy = {
            "original": o["accuracy"],
            "compressed": c["accuracy"],
            "samples": samples,
            "data": data,
        }
        if several:
            accuracy["output"] = o["name"]
            accuracy["per_output"] = {
                o["name"]: {"original": o["accuracy"], "compressed": c["accuracy"]} for o, c in cls
            }

    def both(o, c, key):
        return {"original": o[key], "compressed": c[key]}

    if reg:
        o, c = reg[0]
        regression = {
            "output": o["name"],
            "original": o["mse"],
            "compressed": c["mse"],
            "mae": both(o, c, "mae"),
            "relative_mse": both(o, c, "relative_mse"),
            "samples": samples,
            "data": data,
        }
        if several:
            regression["per_output"] = {
                o["name"]: {k: both(o, c, k) for k in ("mse", "mae", "relative_mse")}
                for o, c in reg
            }
    return accuracy, regression


def renamed(fidelity: Fidelity, names: Sequence[str]) -> Fidelity:
    """The fidelity with its outputs under `names` (the user's output names, in order: a
    QAT model's outputs are named quant_<name>)."""
    if len(names) != len(fidelity.outputs):
        return fidelity
    outputs = [dataclasses.replace(o, name=n) for o, n in zip(fidelity.outputs, names, strict=True)]
    return dataclasses.replace(fidelity, outputs=outputs)


def only_classifiers(fidelity: Fidelity, classifier: Sequence[bool]) -> Fidelity:
    """The fidelity with top-1 agreement kept for classifier outputs only (an arg-max
    agreement says nothing about a box or an embedding)."""
    per_output = [
        o if keep else dataclasses.replace(o, top1_agreement=None)
        for o, keep in zip(fidelity.outputs, classifier, strict=True)
    ]
    agreements = [o.top1_agreement for o in per_output if o.top1_agreement is not None]
    return dataclasses.replace(
        fidelity, outputs=per_output, top1_agreement=min(agreements) if agreements else None
    )


# gzip at level 9 costs 3-4 s per 100 MB of float32 weights here (no zlib level is much
# faster on data that barely compresses), so a file above GZIP_EXACT_BYTES is measured on
# every GZIP_STRIDE-th block of GZIP_BLOCK bytes and the ratio scaled to its size: a
# quarter of the time, within 0.1% of the exact figure on the benchmarks' files
# (benchmarks/RESULTS.md, "cost").
GZIP_EXACT_BYTES = 16 * 2**20
GZIP_BLOCK = 2**16
GZIP_STRIDE = 4


def gzip_size(content: bytes) -> int:
    """Size after gzip at level 9, the usual measure of download size.

    Exact up to GZIP_EXACT_BYTES; above, estimated from every GZIP_STRIDE-th block
    (each block gzipped on its own, the ratio scaled to the whole file), deterministic.
    """
    content = bytes(content)
    if len(content) <= GZIP_EXACT_BYTES:
        return len(gzip.compress(content, compresslevel=9, mtime=0))
    sampled = packed = 0
    for start in range(0, len(content), GZIP_BLOCK * GZIP_STRIDE):
        block = content[start : start + GZIP_BLOCK]
        sampled += len(block)
        packed += len(zlib.compress(block, 9))
    return round(len(content) * packed / sampled) + _GZIP_FRAME_BYTES


# gzip's header and trailer around the deflate stream (zlib.compress adds 6 bytes of its own
# per block, which the ratio above carries: 0.01% of a 64 KiB block).
_GZIP_FRAME_BYTES = 18


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
