"""compress(model, "auto") picks its training candidates' distillation setting on the
validation data: two real cases pull it in opposite directions, so a search that went back
to assuming one setting fails one of them.

- An untrained original model and true labels: fine-tuning on labels beats following the
  original (the teacher), so labels only is chosen.
- A trained original model and training labels that are noise: following the original
  beats the labels, so distillation is chosen.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.api import auto
from keras_squeeze.api.auto import DistillChoice
from tests.conftest import digits_mlp

DISTILLED = DistillChoice.describe(True)  # the recipe's default ks.Distill()


def _search(model, train, validation, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ks.compress(
            model,
            "auto",
            train_data=train,
            validation_data=validation,
            max_accuracy_drop=0.5,
            epochs=2,
            verbose=0,
            **kwargs,
        ).report.search


@pytest.mark.parametrize("case", ["untrained original", "noisy labels"])
def test_the_distillation_setting_is_chosen_on_the_validation_data(digits8, case):
    (x, y), (xt, yt) = digits8
    if case == "untrained original":
        model, labels, expected = digits_mlp(x, y, units=64, epochs=0), y, DistillChoice.LABELS_ONLY
    else:
        noise = np.random.default_rng(0).integers(0, 10, size=len(y))
        model, labels, expected = digits_mlp(x, y, units=64), noise, DISTILLED
    search = _search(model, (x, labels), (xt, yt))
    rows = {r["candidate"]: r for r in search["candidates"]}
    distilled, labels_only = rows["auto-prune"], rows["auto-prune, labels only"]
    assert distilled["distill"] == DISTILLED == "distilled (alpha=0.5, T=1)"
    assert labels_only["distill"] == DistillChoice.LABELS_ONLY
    assert labels_only["recipe"]["distill"] is False and distilled["recipe"]["distill"] is True
    assert distilled["status"] == labels_only["status"] == "tried"
    winner = min((labels_only, distilled), key=lambda r: r["drop"])
    assert winner["distill"] == expected == search["distill"]["chosen"]
    assert abs(distilled["drop"] - labels_only["drop"]) > 0.05  # a real difference, not noise
    assert "for the training candidates" in winner["note"] and "not chosen" not in winner["note"]
    assert search["distill"]["reason"].startswith(f"on auto-prune: {expected} lost")
    assert search["distill"]["candidates"] == ["auto-prune", "auto-prune, labels only"]
    later = [rows[n] for n in auto.TRAINING_NAMES[1:] if rows[n]["status"] == "tried"]
    assert later  # the later candidates fine-tune with the chosen setting
    for row in later:
        assert row["distill"] == expected
        assert row["recipe"]["distill"] is (expected != DistillChoice.LABELS_ONLY)
        assert row["note"] == f"{expected}, as chosen on auto-prune"


def test_a_setting_given_is_used_as_given(digits8):
    (x, y), (xt, yt) = digits8
    model = digits_mlp(x, y, units=64, epochs=3)
    search = _search(model, (x[:300], y[:300]), (xt, yt), distill=False)
    names = [r["candidate"] for r in search["candidates"]]
    assert names == [*auto.POST_TRAINING, *auto.TRAINING_NAMES]  # no labels-only twin
    assert search["distill"] == {"chosen": None, "reason": "distill= given", "candidates": []}
    training = [r for r in search["candidates"] if r["kind"] == "training"]
    assert all(r["distill"] == "distill= given" for r in training if r["status"] == "tried")


def test_the_choice_when_a_setting_did_not_finish():
    recipe = ks.Recipe(prune=ks.Prune(), name="auto-prune")
    for given, reason in (
        ({"teacher": object()}, "teacher= given"),
        ({"distill": True}, "distill"),
    ):
        choice = DistillChoice(given)
        row = auto._row("auto-prune", recipe, "training")
        assert choice.variants(row, recipe, [row]) == [(recipe, row)]
        assert choice.settle(row) is row and choice.summary()["reason"].startswith(reason)
    choice = DistillChoice({})
    rows = [auto._row("auto-prune", recipe, "training")]
    (_, distilled), (_, labels) = choice.variants(rows[0], recipe, rows)
    assert [r["candidate"] for r in rows] == ["auto-prune", "auto-prune, labels only"]
    assert choice.settle(distilled) is distilled  # neither finished: no choice yet
    assert choice.summary() == {
        "chosen": None,
        "reason": "neither setting finished on the first candidate",
        "candidates": [],
    }
    rows = [auto._row("auto-cluster", recipe, "training")]
    (_, distilled), (_, labels) = choice.variants(rows[0], recipe, rows)
    labels["drop"] = 0.02  # the distilled run failed
    assert choice.settle(distilled) is labels
    assert choice.summary()["chosen"] == DistillChoice.LABELS_ONLY
    assert choice.summary()["reason"].endswith(f"{DISTILLED} did not finish")
