"""compress(max_accuracy_drop=...): a drop over the budget is a loud warning of its own kind,
an error with strict=True (nothing returned), and bad budgets are refused before any work.

The regression model's validation targets are its own float outputs, so the original's
relative MSE is 0 and any int8 error is a drop: max_accuracy_drop=0 is broken for sure,
while the int8 file stays faithful (no departure warning, which strict would raise first).
"""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

import keras_squeeze as ks


@pytest.fixture(scope="module")
def regression():
    import keras

    rng = np.random.default_rng(0)
    inputs = keras.Input((12,), name="features")
    x = keras.layers.Dense(24, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, name="values")(x)
    model = keras.Model(inputs, outputs, name="mlp")
    x = rng.normal(size=(160, 12)).astype("float32")
    return model, x, np.asarray(model(x))


def budget_warnings(record):
    return [w for w in record if issubclass(w.category, ks.AccuracyBudgetWarning)]


def test_a_broken_budget_warns_loudly(regression, capsys):
    model, x, y = regression
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = ks.compress(
            model, "int8", representative_data=x, validation_data=(x, y), max_accuracy_drop=0.0
        )
    found = budget_warnings(record)
    assert len(found) == 1 and "ACCURACY BUDGET EXCEEDED" in str(found[0].message)
    assert "relative MSE rose by" in str(found[0].message)
    budget = result.report.accuracy_budget
    assert budget["met"] is False and budget["metric"] == "relative MSE"
    assert budget["max_drop"] == 0.0 and budget["drop"] > 0.0
    assert "WARNING: ACCURACY BUDGET EXCEEDED" in capsys.readouterr().out
    assert "warning: ACCURACY BUDGET EXCEEDED" in result.report.table()
    assert json.loads(result.report.to_json())["accuracy_budget"]["met"] is False
    assert not any("DEPARTS" in w for w in result.report.warnings)


def test_a_budget_replaces_the_default_task_drop_warning(trained_models, digits8):
    """int8 calibrated on zeros loses far more than the default 2 points: without a budget
    that is a warning (tests/report/test_warnings.py); a budget that allows it is met and
    the default's warning gives way to it."""
    (x, _), (xt, yt) = digits8
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = ks.compress(
            trained_models["keras3"],
            "int8",
            representative_data=np.zeros_like(x[:32]),
            validation_data=(xt, yt),
            max_accuracy_drop=0.99,
            verbose=0,
        )
    acc = result.report.accuracy
    assert acc["original"] - acc["compressed"] > 0.02
    assert result.report.accuracy_budget["met"] is True
    assert not budget_warnings(record)
    assert not [w for w in result.report.warnings if "points under the original" in w]


def test_a_budget_that_cannot_be_measured_says_so(regression):
    model, x, y = regression
    with pytest.warns(ks.AccuracyBudgetWarning, match="ACCURACY BUDGET NOT CHECKED.*constant"):
        result = ks.compress(model, "int8", representative_data=x,
                             validation_data=(x, np.zeros_like(y)), max_accuracy_drop=0.1,
                             verbose=0)  # fmt: skip
    assert result.report.accuracy_budget is None


def test_strict_makes_it_an_error_and_writes_nothing(regression, tmp_path, monkeypatch):
    model, x, y = regression
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ks.VerificationError, match=r"ACCURACY BUDGET EXCEEDED.*nothing was"):
        ks.compress(
            model,
            "int8",
            representative_data=x,
            validation_data=(x, y),
            max_accuracy_drop=0.0,
            strict=True,
            verbose=0,
        )
    assert list(tmp_path.iterdir()) == []


def test_a_generous_budget_is_met_quietly(trained_models, digits8):
    _, (xt, yt) = digits8
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = ks.compress(
            trained_models["keras3"],
            "int8",
            representative_data=xt,
            validation_data=(xt, yt),
            max_accuracy_drop=0.5,
            strict=True,
            verbose=0,
        )
    assert budget_warnings(record) == []
    budget = result.report.accuracy_budget
    assert budget["met"] is True and budget["metric"] == "accuracy"
    assert budget["drop"] == pytest.approx(
        result.report.accuracy["original"] - result.report.accuracy["compressed"]
    )
    assert any(n.startswith("accuracy budget met") for n in result.report.notes)


@pytest.mark.parametrize("value", [1.0, -0.1, "0.1", True, float("nan")])
def test_a_budget_outside_0_1_is_refused(regression, value):
    model, x, y = regression
    with pytest.raises(ks.RecipeError, match=r"Expected a value in \[0, 1\)"):
        ks.compress(model, "int8", representative_data=x, validation_data=(x, y),
                    max_accuracy_drop=value, verbose=0)  # fmt: skip


@pytest.mark.parametrize(
    "validation, received",
    [(None, "validation_data=None"), ("inputs", "validation_data without labels")],
)
def test_a_budget_needs_labelled_validation_data(regression, validation, received):
    model, x, _ = regression
    data = x if validation == "inputs" else None
    with pytest.raises(ks.DataError, match=f"labelled validation data.*Received: {received}"):
        ks.compress(model, "int8", representative_data=x, validation_data=data,
                    max_accuracy_drop=0.01, verbose=0)  # fmt: skip


def test_a_drop_equal_to_the_budget_meets_it(regression):
    """One sample of 100 lost is a drop of exactly max_accuracy_drop=0.01, though
    0.97 - 0.96 is 0.010000000000000009 in floats; two samples are over it."""
    from keras_squeeze.api import reporting

    model, x, _ = regression
    report = ks.compress(model, "int8", representative_data=x, verbose=0).report
    for compressed, met in ((0.96, True), (0.95, False)):
        case = dataclasses.replace(
            report,
            accuracy={"original": 0.97, "compressed": compressed, "samples": 100},
            regression=None,
            notes=[],
            warnings=[],
        )
        warning = reporting.apply_accuracy_budget(case, 0.01, verbose=0)
        assert case.accuracy_budget["met"] is met
        exceeded = [w for w in case.warnings if "ACCURACY BUDGET EXCEEDED" in w]
        assert (warning is None) is met and len(exceeded) == (0 if met else 1)


def test_a_drop_equal_to_the_default_task_drop_is_not_warned(regression):
    """The default 2-point warning compares the same way: 0.97 -> 0.95 (two samples of 100,
    0.020000000000000018 in floats) is not over it; 0.94 is."""
    from keras_squeeze.api import reporting

    model, x, _ = regression
    report = ks.compress(model, "int8", representative_data=x, verbose=0).report
    for compressed, warned in ((0.95, False), (0.94, True)):
        case = dataclasses.replace(
            report,
            accuracy={"original": 0.97, "compressed": compressed, "samples": 100, "data": "d"},
            regression=None,
            warnings=[],
        )
        reporting.warn_on_task_drop(case)
        assert len([w for w in case.warnings if "points under the original" in w]) == warned
