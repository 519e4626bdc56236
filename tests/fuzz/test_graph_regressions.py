"""Random graphs that failed the rule, shrunk and kept as explicit models."""

from __future__ import annotations

import numpy as np
import pytest

import keras_squeeze as ks
from tests.fuzz import cases, graphs
from tests.fuzz.graphs import Node, Spec

# Two heads on one trunk (the shrunk example of test_training_recipes).
TWO_HEADS = Spec(
    inputs=((8,),),
    nodes=(
        Node("dense", (0,), (("units", 32), ("activation", "relu"))),
        Node("dense", (1,), (("units", 64), ("activation", "relu"))),
        Node("dense", (2,), (("units", 3), ("activation", "softmax"))),
        Node("dense", (2,), (("units", 2), ("activation", "linear"))),
    ),
    outputs=(3, 4),
)


@pytest.fixture(scope="module")
def two_heads():
    model = graphs.build(TWO_HEADS)
    x = graphs.sample_inputs(TWO_HEADS, 16)[0]
    return model, x, graphs.labels(TWO_HEADS, model, 16)


def test_labels_for_each_output_calibrate_and_validate(two_heads):
    """Was: ValueError "inhomogeneous shape" from take_samples on [labels_0, labels_1]."""
    model, x, y = two_heads
    result = ks.compress(
        model, "int8", representative_data=(x, y), validation_data=(x, y), verbose=0
    )
    assert result.report.fidelity.samples == 16
    # each head is scored on its own labels: accuracy for the softmax head, MSE for the other
    assert result.report.accuracy["samples"] == 16
    assert result.report.regression is not None


@pytest.mark.parametrize("distill", [False, None])
def test_training_a_two_output_model_trains_both_heads(two_heads, distill):
    """Was: TensorFlow's 'Incompatible shapes: [8] vs. [8,3]' midway through fine-tuning;
    now each head has its loss (or its distillation target) and both train."""
    model, x, y = two_heads
    before = [w.copy() for w in model.get_weights()]
    result = ks.compress(
        model,
        "prune",
        train_data=(x, y) if distill is False else x,
        distill=distill,
        epochs=1,
        batch_size=8,
        verbose=0,
    )
    assert [s["name"] for s in result.report.stages] == ["prune"]
    assert len(result.report.fidelity.outputs) == 2
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


@pytest.mark.parametrize("recipe", ["prune", "qat"])
def test_through_run_recipe(tmp_path, recipe):
    outcome = graphs.run_recipe(TWO_HEADS, recipe, tmp_path, distill=False)
    assert outcome.kind == cases.READ and not cases.problems(outcome), outcome
