"""ks.distill's default chooses the distillation setting on labelled validation data.

Two real cases pull the choice in opposite directions, so a default that went back
to a fixed setting without looking fails one of them: a teacher that answers the
wrong class (its logits rolled by one) makes labels only the best, and training
labels that are pure noise, with a good teacher, make distillation the best.
"""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze.distillation import choice, distill
from keras_squeeze.distillation.config import DEFAULT_ALPHA, DEFAULT_TEMPERATURE, Distill
from tests.conftest import keras


def _student(flavour="keras3", units=10):
    k = keras(flavour)
    return k.Sequential(
        [
            k.Input((8, 8, 1), name="image"),
            k.layers.Flatten(),
            k.layers.Dense(32, activation="relu"),
            k.layers.Dense(units),
        ]
    )


def _rolled(teacher):
    """A copy of `teacher` whose logits are rolled by one class: it answers (y + 1) % 10."""
    from keras_squeeze.distillation.api import copy_model

    wrong = copy_model(teacher)
    head = wrong.layers[-1]
    kernel, bias = head.get_weights()
    head.set_weights([np.roll(kernel, 1, axis=1), np.roll(bias, 1)])
    return wrong


def test_choose_keeps_the_best_score_and_gives_ties_to_the_earlier_candidate():
    scores = {0.0: 0.5, 0.5: 0.7, 0.9: 0.7}
    made = choice.choose(lambda config, epochs: config.alpha, lambda alpha: scores[alpha])
    assert made.config == choice.CANDIDATES[1]  # 0.7, and the earlier of the two at 0.7
    rows = made.as_report()["candidates"]
    assert [r["setting"] for r in rows] == ["labels only", "alpha=0.5, T=1", "alpha=0.9, T=4"]
    assert [r["chosen"] for r in rows] == [False, True, False]
    assert made.as_report()["chosen"] == "alpha=0.5, T=1"
    assert "0.7000 (labels only 0.5000)" in made.reason
    tie = choice.choose(lambda config, epochs: config, lambda config: 1.0)
    assert tie.config == choice.LABELS_ONLY and "labels only" not in tie.reason.split(":")[-1]


def test_a_teacher_that_answers_wrong_is_not_followed(trained_models, digits8, capsys):
    (x, y), (xt, yt) = digits8
    wrong = _rolled(trained_models["keras3"])
    result = distill(wrong, _student(), (x, y), epochs=1, validation_data=(xt, yt))
    made = result.report["choice"]
    assert made["chosen"] == "labels only"
    assert result.report["distill"]["alpha"] == 0.0
    rows = {r["setting"]: r for r in made["candidates"]}
    assert set(rows) == {choice.describe(c) for c in choice.CANDIDATES}
    assert (
        rows["labels only"]["validation_accuracy"] > rows["alpha=0.9, T=4"]["validation_accuracy"]
    )
    assert made["probe_epochs"] == choice.PROBE_EPOCHS
    assert "distill: labels only, chosen for the highest validation accuracy" in (
        capsys.readouterr().out
    )


def test_noisy_labels_with_a_good_teacher_choose_distillation(trained_models, digits8):
    (x, y), (xt, yt) = digits8
    noise = np.random.default_rng(0).integers(0, 10, size=len(y))
    result = distill(
        trained_models["keras3"], _student(), (x, noise), epochs=1, validation_data=(xt, yt)
    )
    made = result.report["choice"]
    assert made["chosen"] != "labels only"
    chosen = next(r for r in made["candidates"] if r["chosen"])
    assert result.report["distill"]["alpha"] == chosen["alpha"] > 0
    assert result.report["distill"]["temperature"] == chosen["temperature"]
    labels = next(r for r in made["candidates"] if r["setting"] == "labels only")
    assert chosen["validation_accuracy"] > labels["validation_accuracy"] + 0.1


@pytest.mark.parametrize(
    "kwargs, reason, alpha, temperature",
    [
        ({}, "no validation_data: the fixed default", DEFAULT_ALPHA, DEFAULT_TEMPERATURE),
        (
            {"alpha": 0.3, "validation": True},
            "alpha or temperature given",
            0.3,
            DEFAULT_TEMPERATURE,
        ),
        ({"temperature": 2.0, "validation": True}, "given", DEFAULT_ALPHA, 2.0),
    ],
)
def test_no_choice_without_validation_data_or_with_a_setting_given(
    trained_models, digits8, kwargs, reason, alpha, temperature
):
    (x, y), (xt, yt) = digits8
    if kwargs.pop("validation", False):
        kwargs["validation_data"] = (xt, yt)
    result = distill(trained_models["keras3"], _student(), (x, y), epochs=1, verbose=0, **kwargs)
    made = result.report["choice"]
    assert reason in made["reason"] and made["candidates"] == [] and made["probe_epochs"] is None
    assert result.report["distill"]["alpha"] == alpha
    assert result.report["distill"]["temperature"] == temperature


def test_no_choice_without_training_labels(trained_models, digits8):
    (x, _), (xt, yt) = digits8
    result = distill(
        trained_models["keras3"], _student(), x, epochs=1, validation_data=(xt, yt), verbose=0
    )
    assert result.report["choice"]["reason"].startswith("no labels in train_data")
    assert result.report["choice"]["candidates"] == []


def test_no_choice_for_a_regression_student(digits8):
    (x, _), (xt, _) = digits8
    teacher = _student(units=1)
    targets = np.asarray(teacher(x[:300])).astype("float32")
    result = distill(
        teacher,
        _student(units=1),
        (x[:300], targets),
        epochs=1,
        validation_data=(xt[:100], np.asarray(teacher(xt[:100]))),
        verbose=0,
    )
    assert result.report["choice"]["reason"] == (
        "validation accuracy is measured on one-output classifiers only"
    )
    assert result.report["distill"] == Distill().get_config()
