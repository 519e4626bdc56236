"""Random graphs that failed the rule, shrunk and kept as explicit models."""

from __future__ import annotations

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.errors import ModelError
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
    # Accuracy is reported for a model with one classifier output only
    # (metrics.classifier_accuracy); this one has two heads.
    assert result.report.accuracy is None


@pytest.mark.parametrize("distill", [False, None])
def test_training_a_two_output_model_is_refused_before_it_starts(two_heads, distill):
    """Was: TensorFlow's 'Incompatible shapes: [8] vs. [8,3]' midway through fine-tuning."""
    model, x, y = two_heads
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ModelError, match=r"(one output|matches one output).*Received: 2 outputs"):
        ks.compress(
            model,
            "prune",
            train_data=(x, y) if distill is False else x,
            distill=distill,
            epochs=1,
            batch_size=8,
            verbose=0,
        )
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


@pytest.mark.parametrize("recipe", ["prune", "qat"])
def test_through_run_recipe(tmp_path, recipe):
    outcome = graphs.run_recipe(TWO_HEADS, recipe, tmp_path, distill=False)
    assert outcome.kind == cases.REFUSED and not cases.problems(outcome), outcome
