"""Choosing the distillation setting on labelled validation data instead of assuming one.

No fixed (alpha, T) is at least as good as labels alone for every teacher and
student (benchmarks/RESULTS.md, distill_sweep): a teacher little better than
what the labels teach pulls the student towards its own mistakes. With
labelled validation data, ks.distill's default tries each of `CANDIDATES`
(labels only among them) for `PROBE_EPOCHS` from the same initial weights,
keeps the one whose probe scores best on the validation data (ties go to the
earlier candidate, labels only first) and trains that one for the full epochs.
"""

from __future__ import annotations

import dataclasses
import time

from keras_squeeze.distillation.config import Distill

LABELS_ONLY = Distill(alpha=0.0)
# Labels only; the fixed default (alpha 0.5, T 1: the sweep's safest); the classic setting
# (Hinton et al.), for a teacher far ahead of its student.
CANDIDATES = (LABELS_ONLY, Distill(), Distill(alpha=0.9, temperature=4.0))
PROBE_EPOCHS = 1


def describe(config: Distill) -> str:
    """'labels only' or 'alpha=0.5, T=2'."""
    if config.alpha == 0.0:
        return "labels only"
    return f"alpha={config.alpha:g}, T={config.temperature:g}"


@dataclasses.dataclass
class Choice:
    """The setting chosen and what every candidate scored (report["choice"])."""

    config: Distill
    reason: str
    probe_epochs: int | None = None
    candidates: list = dataclasses.field(default_factory=list)

    def as_report(self) -> dict:
        return {
            "chosen": describe(self.config),
            "reason": self.reason,
            "probe_epochs": self.probe_epochs,
            "candidates": self.candidates,
        }


def fixed(config: Distill, reason: str) -> Choice:
    """No choice made: `config` is used as given, for `reason`."""
    return Choice(config, reason)


def choose(probe, score, candidates=CANDIDATES, probe_epochs: int = PROBE_EPOCHS) -> Choice:
    """The candidate whose short training scores highest.

    Args:
        probe: callable(config, epochs) -> a model trained from the initial weights.
        score: callable(model) -> its validation metric (higher is better).
        candidates: the settings to try, in order of preference on a tie.
        probe_epochs: epochs of each probe.

    Returns:
        A Choice with every candidate's score.
    """
    rows, best, best_score = [], None, None
    for config in candidates:
        start = time.perf_counter()
        value = float(score(probe(config, probe_epochs)))
        rows.append(
            {
                "setting": describe(config),
                "alpha": config.alpha,
                "temperature": config.temperature,
                "validation_accuracy": value,
                "seconds": round(time.perf_counter() - start, 3),
                "chosen": False,
            }
        )
        if best_score is None or value > best_score:
            best, best_score = len(rows) - 1, value
    rows[best]["chosen"] = True
    labels = next((r for r in rows if r["alpha"] == 0.0), None)
    versus = (
        f" (labels only {labels['validation_accuracy']:.4f})"
        if labels is not None and labels is not rows[best]
        else ""
    )
    reason = (
        f"the highest validation accuracy after {probe_epochs} probe "
        f"epoch{'s' if probe_epochs != 1 else ''} of each of {len(rows)} settings: "
        f"{best_score:.4f}{versus}"
    )
    return Choice(candidates[best], reason, probe_epochs, rows)
