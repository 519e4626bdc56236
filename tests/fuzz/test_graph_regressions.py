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


# The two 'prune' raw exceptions of the robustness campaign (seed 20261202, graphs 32 and
# 57 of the 'prune' draws, distilled): a one-unit Dense head reading over 1,024 inputs, whose
# 1548x1 / 7182x1 kernel the preset's 4x1 blocks sent to tfmot squeezed to rank 1.
ONE_UNIT_HEAD_OVER_CONVOLUTIONS = Spec(
    inputs=((5, 6, 3),),
    nodes=(
        Node("pool2d", (0,), (("kind", "avg"),)),
        Node(
            "conv2d",
            (0,),
            (
                ("filters", 16),
                ("kernel", 1),
                ("stride", 1),
                ("padding", "valid"),
                ("activation", "sigmoid"),
            ),
        ),
        Node("concatenate", (0, 2)),
        Node(
            "conv2d",
            (2,),
            (
                ("filters", 16),
                ("kernel", 3),
                ("stride", 1),
                ("padding", "same"),
                ("activation", "relu"),
            ),
        ),
        Node("add", (4, 2)),
        Node("activation", (4,), (("fn", "hard_sigmoid"),)),
        Node("flatten", (1,)),
        Node("flatten", (3,)),
        Node("flatten", (5,)),
        Node("flatten", (6,)),
        Node("concatenate", (7, 8)),
        Node("concatenate", (11, 9)),
        Node("concatenate", (12, 10)),
        Node("dense", (13,), (("units", 1), ("activation", "linear"))),
    ),
    outputs=(14,),
)
ONE_UNIT_HEAD_OVER_A_TRANSPOSE = Spec(
    inputs=((7, 8, 3), (7,)),
    nodes=(
        Node("activation", (1,), (("fn", "sigmoid"),)),
        Node(
            "transpose", (0,), (("filters", 32), ("kernel", 3), ("stride", 2), ("padding", "same"))
        ),
        Node("reshape", (2,), (("target", (7, 1)),)),
        Node("multiply", (1, 2)),
        Node("dense", (1,), (("units", 5), ("activation", "relu"))),
        Node("batchnorm", (6,)),
        Node("flatten", (3,)),
        Node("flatten", (4,)),
        Node("concatenate", (8, 9)),
        Node("concatenate", (10, 5)),
        Node("dense", (11,), (("units", 1), ("activation", "linear"))),
        Node("dense", (7,), (("units", 1), ("activation", "softmax"))),
    ),
    outputs=(12, 13),
)


@pytest.mark.parametrize(
    "spec",
    [ONE_UNIT_HEAD_OVER_CONVOLUTIONS, ONE_UNIT_HEAD_OVER_A_TRANSPOSE],
    ids=["conv", "transpose"],
)
def test_prune_blocks_on_a_one_unit_head(tmp_path, spec):
    """Was: builtins.ValueError "factorized_pool() accepts tensors of rank 2 only" from
    tf_keras' train_function; now the head is pruned per weight and the .tflite verified."""
    outcome = graphs.run_recipe(spec, "prune", tmp_path)
    assert outcome.kind == cases.READ and not cases.problems(outcome), outcome
