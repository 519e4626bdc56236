"""The numpy maths of block removal: folding, merging, importance measures, the greedy choice."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze.depth_pruning import importance, merging

RNG = np.random.default_rng(0)


def _bn(z, gamma, beta, mean, var, eps):
    return gamma * (z - mean) / np.sqrt(var + eps) + beta


def test_fold_batchnorm_into_dense_matches_dense_then_bn():
    x = RNG.normal(size=(5, 4))
    w, b = RNG.normal(size=(4, 3)), RNG.normal(size=3)
    gamma, beta, mean = RNG.normal(size=3), RNG.normal(size=3), RNG.normal(size=3)
    var = RNG.uniform(0.5, 2, size=3)
    scale = gamma / np.sqrt(var + 1e-3)
    folded = merging.fold_batchnorm_weights("Dense", [w, b], True, scale, beta - mean * scale)
    np.testing.assert_allclose(
        x @ folded[0] + folded[1], _bn(x @ w + b, gamma, beta, mean, var, 1e-3)
    )
    no_bias = merging.fold_batchnorm_weights("Dense", [w], False, scale, beta - mean * scale)
    np.testing.assert_allclose(
        x @ no_bias[0] + no_bias[1], _bn(x @ w, gamma, beta, mean, var, 1e-3)
    )


@pytest.mark.parametrize(
    ("kind", "shapes", "channel"),
    [
        ("Conv2D", [(3, 3, 2, 4)], lambda w: w[..., :]),
        ("DepthwiseConv2D", [(3, 3, 2, 2)], None),
        ("SeparableConv2D", [(3, 3, 2, 1), (1, 1, 2, 4)], None),
        ("Conv2DTranspose", [(3, 3, 4, 2)], None),
    ],
)
def test_fold_batchnorm_scales_each_output_channel(kind, shapes, channel):
    weights = [RNG.normal(size=s) for s in shapes]
    outputs = 4
    scale, shift = RNG.uniform(0.5, 2, outputs), RNG.normal(size=outputs)
    folded = merging.fold_batchnorm_weights(kind, [*weights, np.ones(outputs)], True, scale, shift)
    np.testing.assert_allclose(folded[-1], scale + shift)
    if kind == "Conv2D":
        np.testing.assert_allclose(folded[0], weights[0] * scale)
    elif kind == "DepthwiseConv2D":  # output channel c * multiplier + m
        np.testing.assert_allclose(folded[0].reshape(3, 3, 4), weights[0].reshape(3, 3, 4) * scale)
    elif kind == "SeparableConv2D":
        np.testing.assert_allclose(folded[0], weights[0])
        np.testing.assert_allclose(folded[1], weights[1] * scale)
    else:  # transposed kernels hold (..., out, in)
        np.testing.assert_allclose(folded[0], weights[0] * scale[:, None])


def test_merge_dense_and_conv_weights_are_exact():
    x = RNG.normal(size=(6, 5))
    w1, b1, w2, b2 = (
        RNG.normal(size=(5, 3)),
        RNG.normal(size=3),
        RNG.normal(size=(3, 2)),
        RNG.normal(size=2),
    )
    kernel, bias = merging.merge_dense_weights([w1, b1], [w2, b2], True, True)
    np.testing.assert_allclose(x @ kernel + bias, (x @ w1 + b1) @ w2 + b2)
    kernel, bias = merging.merge_dense_weights([w1], [w2], False, False)
    np.testing.assert_allclose(bias, 0.0)
    conv1, pointwise = RNG.normal(size=(3, 3, 5, 3)), RNG.normal(size=(1, 1, 3, 2))
    kernel, bias = merging.merge_conv_weights([conv1, b1], [pointwise, b2], True, True)
    assert kernel.shape == (3, 3, 5, 2)
    patch = RNG.normal(size=(3, 3, 5))  # one output position of a valid 3x3 convolution
    first = np.einsum("hwc,hwco->o", patch, conv1) + b1
    np.testing.assert_allclose(
        np.einsum("hwc,hwco->o", patch, kernel) + bias, first @ pointwise[0, 0] + b2
    )


def test_output_distance_and_taylor():
    ref = [np.array([[1.0, 2.0], [0.0, 0.0]])]
    num, den = importance.squared_error_sums(ref, [np.array([[1.0, 0.0], [0.0, 1.0]])])
    assert (num, den) == (5.0, 5.0) and importance.relative_distance(num, den) == 1.0
    assert importance.relative_distance(2.0, 0.0) == 2.0
    x, y = np.ones((2, 3)), np.zeros((2, 3))
    grad = np.array([[1.0, 1.0, 1.0], [-1.0, 0.0, 0.0]])
    assert importance.taylor_sum(x, y, grad) == 3.0 + 1.0  # |<g, x - y>| per sample


def test_greedy_takes_the_least_important_per_saving_until_the_budget():
    savings = {"a": 10.0, "b": 10.0, "c": 40.0, "d": 40.0}
    scores = {"a": 0.2, "b": 0.1, "c": 0.3, "d": 4.0}
    calls = []

    def measure(units, removed):
        calls.append((tuple(units), tuple(removed)))
        return {u: scores[u] for u in units}

    s = importance.greedy(list(savings), savings, 100.0, 50.0, measure, remeasure=False)
    # per share of the cost: c 0.75, b 1.0, a 2.0, d 10.0
    assert s.removed == ["c", "b"] and s.cost == 50.0 and s.reached and s.rounds == 1
    assert s.alone == scores and s.at_removal == {"c": 0.3, "b": 0.1} and len(calls) == 1
    s = importance.greedy(list(savings), savings, 100.0, 50.0, measure, remeasure=True)
    assert calls[-1] == (("a", "b", "d"), ("c",)) and s.rounds == 2
    ranked = importance.greedy(
        list(savings), {k: 1.0 for k in savings}, 4.0, 3.0, measure, False, rank_savings=savings
    )
    assert ranked.removed == ["c"]


def test_greedy_negative_importance_ties_and_an_unreachable_budget():
    savings = {"a": 1.0, "b": 2.0, "c": 2.0}
    scores = {"a": -0.5, "b": 0.0, "c": -0.1}
    s = importance.greedy(list(savings), savings, 6.0, 0.5, lambda u, r: scores, False)
    assert s.removed == ["a", "c", "b"]  # most negative first, then the larger saving
    assert not s.reached and s.cost == 1.0
    assert importance.order_score(-1.0, 1.0, 2.0) == 0.0
    assert importance.order_score(1.0, 0.0, 2.0) == 1.0 / importance.MIN_SHARE
