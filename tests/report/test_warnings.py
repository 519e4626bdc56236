"""The report's warnings, each made to fire on a real .tflite that must trip it.

A warning that is only ever checked to be absent would pass if it never
fired; here each gets a case it has to catch: a badly calibrated int8 file,
and each stage's check of its targets fed a dense .tflite that holds none
of what the stage claims.
"""

from __future__ import annotations

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.core import models
from keras_squeeze.errors import RecipeError, VerificationError
from keras_squeeze.layer_plan import Decision
from keras_squeeze.report.layers import match_layers
from keras_squeeze.report.tflite_reader import read_tflite
from keras_squeeze.stages import StageRecord, get_stage
from tests.conftest import assert_weights_equal, keras, weights_snapshot


def _record(name: str, **settings) -> StageRecord:
    return StageRecord(name, settings, 1, 1, 0.0, None, {}, details={"per_tensor": []})


@pytest.fixture(scope="module")
def dense_int8(trained_models, digits8):
    """A plain int8 result of the example CNN, with its kernels found in the .tflite."""
    (x, _), _ = digits8
    model = trained_models["keras3"]
    result = ks.compress(model, "int8", representative_data=x, verbose=0)
    matches = match_layers(list(models.walk_layers(model)), read_tflite(result.tflite))
    return result, matches


def _row(result, name):
    return next(row for row in result.report.layers if row.name == name)


def test_poorly_calibrated_int8_warns_about_top1_agreement(trained_models, digits8):
    (x, _), (xt, yt) = digits8
    with pytest.warns(UserWarning, match=r"agrees with the float model on only"):
        result = ks.compress(
            trained_models["keras3"],
            "int8",
            representative_data=np.zeros_like(x[:32]),  # nothing like the real inputs
            validation_data=(xt, yt),
            verbose=0,
        )
    assert result.report.fidelity.top1_agreement < 0.95
    assert any("check the calibration data covers real inputs" in w for w in result.report.warnings)
    # ... and loudly: the .tflite departs from its own Keras model, from a named layer on
    parity = result.report.conversion_parity
    assert parity["ok"] is False and parity["top1_agreement"] < 0.9
    first = parity["first_divergent_layer"]
    assert first in {layer.name for layer in trained_models["keras3"].layers}
    (loud,) = [w for w in result.report.warnings if w.startswith("THE .tflite DEPARTS")]
    assert f"they first part at layer '{first}'" in loud
    # ... and the accuracy it lost on the labelled data is a warning of its own
    acc = result.report.accuracy
    assert acc["original"] - acc["compressed"] > 0.02
    (drop,) = [w for w in result.report.warnings if "points under the original" in w]
    assert drop.startswith(f"the compressed .tflite's accuracy is {acc['compressed']:.4f}, ")
    assert f"({acc['samples']} samples of validation_data)" in drop


def test_strict_turns_a_departing_tflite_into_an_error(trained_models, digits8):
    (x, _), (xt, yt) = digits8
    model = trained_models["keras3"]
    before = weights_snapshot(model)
    with pytest.raises(
        VerificationError, match=r"THE \.tflite DEPARTS FROM THE KERAS MODEL.*strict"
    ):
        ks.compress(
            model,
            "int8",
            representative_data=np.zeros_like(x[:32]),
            validation_data=(xt, yt),
            strict=True,
            verbose=0,
        )
    assert_weights_equal(before, model)
    with pytest.raises(RecipeError, match=r"strict must be True or False"):
        ks.compress(model, "dynamic", strict="yes", verbose=0)


def test_an_agreeing_tflite_passes_the_conversion_check(dense_int8):
    result, _ = dense_int8
    assert result.report.conversion_parity["ok"] is True
    assert "layers" not in result.report.conversion_parity
    assert not [w for w in result.report.warnings if "DEPARTS" in w]


def test_poorly_calibrated_regression_warns_about_sqnr():
    k = keras("keras3")
    k.utils.set_random_seed(0)
    inputs = k.Input((8,), name="x")
    outputs = k.layers.Dense(1, name="value")(k.layers.Dense(16, activation="relu")(inputs))
    model = k.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    with pytest.warns(UserWarning, match=r"outputs are far from the float model's \(SQNR"):
        result = ks.compress(
            model,
            "int8",
            representative_data=np.zeros((32, 8), np.float32),
            validation_data=rng.normal(size=(64, 8)).astype(np.float32) * 10,
            verbose=0,
        )
    assert result.report.fidelity.top1_agreement is None


def test_pruning_check_warns_below_target(dense_int8):
    result, matches = dense_int8
    report = result.report
    row = _row(result, "dense")
    get_stage("prune").annotate(
        report, row, Decision(0.8, None), matches["dense"], _record("prune")
    )
    assert row.targets["sparsity"] == 0.8
    assert report.warnings[-1].startswith("layer 'dense' has ")
    assert "zeros in the .tflite, below its 80% target" in report.warnings[-1]


def test_pruning_check_warns_when_m_by_n_blocks_are_missing(dense_int8):
    result, matches = dense_int8
    report = result.report
    row = _row(result, "dense")
    record = _record("prune", m_by_n=[2, 4])
    get_stage("prune").annotate(report, row, Decision(0.5, None), matches["dense"], record)
    assert row.measured["m_by_n_blocks"] < 1.0
    assert "of its 4-weight blocks hold 2 zeros" in report.warnings[-1]


def test_clustering_check_warns_about_too_many_values(dense_int8):
    result, matches = dense_int8
    report = result.report
    row = _row(result, "logits")
    record = _record("cluster", preserve_sparsity=False, per_channel=True)
    get_stage("cluster").annotate(report, row, Decision(4, None), matches["logits"], record)
    assert row.clusters > 4 and row.targets["clusters"] == 4
    assert "distinct kernel values per" in report.warnings[-1]
    assert "more than its 4 clusters" in report.warnings[-1]
