"""The bridge's plain logic, without models: output agreement and weight matching."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keras_squeeze.keras_bridge.agreement import agreement, relative_difference
from keras_squeeze.keras_bridge.weights import match_weights, shapes_compatible


def test_relative_difference_is_max_abs_diff_over_output_scale():
    diff, scale, relative = relative_difference(np.array([2.0, -4.0]), np.array([2.0, -4.00004]))
    assert scale == 4.0
    assert diff == pytest.approx(4e-5)
    assert relative == pytest.approx(1e-5)


def test_identical_outputs_agree_exactly_even_when_all_zero():
    assert relative_difference(np.zeros(3), np.zeros(3)) == (0.0, 0.0, 0.0)
    assert agreement([np.ones(3)], [np.ones(3)]).ok


def test_shape_or_finiteness_mismatch_never_agrees():
    assert math.isinf(relative_difference(np.zeros(3), np.zeros(4))[2])
    assert math.isinf(relative_difference(np.array([1.0, np.nan]), np.array([1.0, 2.0]))[2])
    # NaN where the reference has NaN is the same output.
    assert relative_difference(np.array([1.0, np.nan]), np.array([1.0, np.nan]))[2] == 0.0
    assert math.isinf(relative_difference(np.zeros(2), np.array([0.0, 1e-9]))[2])


def test_agreement_reports_the_worst_output_against_the_bound():
    ref = [np.array([1.0, 1.0]), np.array([100.0])]
    new = [np.array([1.0, 1.0 + 2e-5]), np.array([100.0 + 1e-4])]
    result = agreement(ref, new, rtol=1e-5)
    assert result.relative == pytest.approx(2e-5)  # the first output, relative to 1.0
    assert result.max_abs_diff == pytest.approx(1e-4)  # the largest absolute, from the second
    assert not result.ok
    assert agreement(ref, new, rtol=3e-5).ok
    assert "relative 2e-05, bound 1e-05" in result.summary()


def test_weights_match_by_name_in_any_order():
    source = [(["dense", "bias"], (3,)), (["dense", "kernel"], (2, 3))]
    target = [(["kernel"], (2, 3)), (["bias"], (3,))]
    assert match_weights(source, target) == [1, 0]


def test_weights_match_on_the_shortest_unique_suffix():
    # A Bidirectional LSTM: "kernel" is not unique, "forward_lstm/lstm_cell/kernel" is.
    parts = [
        ["bidi", d, "lstm_cell", w]
        for d in ("forward_lstm", "backward_lstm")
        for w in ("kernel", "recurrent_kernel", "bias")
    ]
    source = [(p, (i + 1,)) for i, p in enumerate(parts)]
    target = [(p[1:], (i + 1,)) for i, p in enumerate(parts)]
    target = target[3:] + target[:3]  # backward first
    assert match_weights(source, target) == [3, 4, 5, 0, 1, 2]


def test_weights_shapes_may_differ_only_by_unit_axes():
    assert shapes_compatible((1, 1, 1, 8), (8,))
    assert not shapes_compatible((2, 4), (4, 2))
    assert match_weights([(["mean"], (1, 1, 1, 8))], [(["mean"], (8,))]) == [0]
    assert match_weights([(["kernel"], (2, 4))], [(["kernel"], (4, 2))]) is None


def test_weights_fall_back_to_position_only_when_every_shape_agrees():
    source = [(["a"], (2,)), (["b"], (3,))]
    assert match_weights(source, [(["x"], (2,)), (["y"], (3,))]) == [0, 1]
    assert match_weights(source, [(["x"], (3,)), (["y"], (2,))]) is None
    assert match_weights(source, [(["a"], (2,))]) is None  # counts differ
