"""Importance and selection maths on plain arrays (no models)."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze.channel_pruning import importance, selection
from keras_squeeze.channel_pruning.selection import CostModel


def test_channel_norms_per_output_filter():
    kernel = np.zeros((3, 3, 2, 4))
    kernel[..., 1] = 1.0
    kernel[0, 0, 0, 3] = -2.0
    np.testing.assert_allclose(importance.channel_norms(kernel, 1), [0, 18, 0, 2])
    np.testing.assert_allclose(importance.channel_norms(kernel, 2), [0, np.sqrt(18), 0, 2])
    # Dense (in, out) and the input axis of a kernel
    np.testing.assert_allclose(importance.channel_norms(np.eye(3)[:, :2] * 3, 1), [3, 3])
    np.testing.assert_allclose(importance.channel_norms(kernel, 1, axis=2), [11, 9])


def test_taylor_sums_is_abs_of_spatial_sum_per_sample():
    a = np.zeros((2, 2, 2, 3))
    g = np.zeros_like(a)
    a[0, :, :, 0], g[0, :, :, 0] = 1.0, 1.0  # sample 0: sum 4
    a[1, 0, 0, 0], g[1, 0, 0, 0] = 2.0, -1.0  # sample 1: sum -2 -> |.| 2
    a[0, 0, 0, 1], g[0, 0, 0, 1] = 3.0, 1.0  # +3
    a[0, 0, 1, 1], g[0, 0, 1, 1] = 3.0, -1.0  # -3: cancels within the sample
    np.testing.assert_allclose(importance.taylor_sums(a, g), [6.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="shapes differ"):
        importance.taylor_sums(a, g[:1])


def test_group_scores_normalise_each_source_by_its_mean():
    big = np.array([100.0, 300.0])  # mean 200 -> 0.5, 1.5
    small = np.array([3.0, 1.0])  # mean 2 -> 1.5, 0.5
    np.testing.assert_allclose(importance.group_scores([big, small], 2), [1.0, 1.0])
    np.testing.assert_allclose(importance.group_scores([np.zeros(2), big], 2), [0.25, 0.75])
    np.testing.assert_allclose(importance.group_scores([], 3), [1, 1, 1])
    # a source covering components twice (e.g. after Flatten) averages its positions
    np.testing.assert_allclose(
        importance.source_scores(np.array([0, 1, 0, 1]), np.array([1.0, 2.0, 3.0, 6.0]), 3),
        [2.0, 4.0, 0.0],
    )


def test_top_components_prefers_high_scores_then_low_index():
    scores = np.array([0.0, 5.0, 1.0, 5.0, 0.0, 2.0])
    np.testing.assert_array_equal(importance.top_components(scores, 3), [1, 3, 5])
    np.testing.assert_array_equal(importance.top_components(scores, 5), [0, 1, 2, 3, 5])


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [(21.0, 64, 24), (19.9, 64, 16), (20.0, 64, 24), (2.0, 64, 8), (0.0, 64, 8), (63.0, 64, 64)],
)
def test_round_channels_to_the_multiple_never_below_it(value, size, expected):
    assert selection.round_channels(value, size, 8) == expected


def test_round_channels_keeps_small_groups_whole_and_never_reaches_zero():
    assert selection.round_channels(1.0, 6, 8) == 6
    assert selection.round_channels(0.0, 3, 1) == 1
    assert selection.round_channels(36.0, 36, 8) == 36


def _chain(sizes, spatial=(64, 16, 4)):
    """A conv chain: input (3 fixed) -> g0 -> g1 -> g2 -> 10 fixed outputs; MACs per layer."""
    g = len(sizes)
    rows = []
    eye = np.eye(g)
    zero = np.zeros(g)
    rows.append((spatial[0] * 9 * 3, zero, 1.0, eye[0], 0.0))  # 3 -> g0
    for i in range(1, g):
        rows.append((spatial[i] * 9, eye[i - 1], 0.0, eye[i], 0.0))  # g(i-1) -> g(i)
    rows.append((1.0, eye[g - 1], 0.0, zero, 10.0))  # g(last) -> 10
    coef, a, a0, b, b0 = zip(*rows, strict=True)
    return CostModel.dense(coef, np.stack(a), a0, np.stack(b), b0)


def test_cost_model_evaluates_bilinear_terms():
    cost = _chain([32, 64, 128])
    expected = 64 * 9 * 3 * 32 + 16 * 9 * 32 * 64 + 4 * 9 * 64 * 128 + 128 * 10
    assert cost([32, 64, 128]) == expected
    assert cost([16, 64, 128]) == expected - 64 * 9 * 3 * 16 - 16 * 9 * 16 * 64


@pytest.mark.parametrize("target", [0.25, 0.5, 0.75])
@pytest.mark.parametrize(("sizes", "closeness"), [((32, 64, 128), 0.8), ((256, 512, 1024), 0.98)])
def test_uniform_keep_meets_the_budget_closely(target, sizes, closeness):
    sizes = np.array(sizes)
    cost = _chain(sizes)
    full = cost(sizes)
    keep = selection.uniform_keep(sizes, cost, target * full, 8)
    assert closeness * target * full <= cost(keep) <= target * full
    assert (keep % 8 == 0).all() and (keep >= 8).all() and (keep <= sizes).all()
    ratios = keep / sizes
    # the same fraction, up to rounding and one extra multiple from the fill pass
    assert ratios.max() - ratios.min() <= 16 / sizes.min() + 1e-9


def test_uniform_keep_full_budget_keeps_everything_and_unreachable_keeps_the_minimum():
    sizes = np.array([32, 64, 128])
    cost = _chain(sizes)
    np.testing.assert_array_equal(selection.uniform_keep(sizes, cost, cost(sizes), 8), sizes)
    np.testing.assert_array_equal(selection.uniform_keep(sizes, cost, 1.0, 8), [8, 8, 8])


def test_global_keep_removes_the_least_important_blocks_first():
    sizes = np.array([16, 16])
    cost = CostModel.dense([1.0, 1.0], np.eye(2), [0.0, 0.0], np.zeros((2, 2)), [1.0, 1.0])
    important = np.linspace(1.0, 2.0, 16)  # tight: normalised ~0.67..1.33
    spread = np.r_[np.full(8, 0.01), np.full(8, 1.0)]  # 8 near-zero channels
    keep = selection.global_keep(sizes, [important, spread], cost, 24, 8)
    np.testing.assert_array_equal(keep, [16, 8])
    # never below the multiple, even when the budget asks for it
    keep = selection.global_keep(sizes, [important, spread], cost, 0, 8)
    np.testing.assert_array_equal(keep, [8, 8])


def test_global_keep_rounds_a_ragged_group_to_the_multiple_first():
    sizes = np.array([20])
    cost = CostModel.dense([1.0], np.eye(1), [0.0], np.zeros((1, 1)), [1.0])
    assert selection.global_keep(sizes, [np.arange(20.0)], cost, 19, 8).tolist() == [16]
    assert selection.global_keep(sizes, [np.arange(20.0)], cost, 15, 8).tolist() == [8]


def test_ratio_keep_rounds_each_group():
    keep = selection.ratio_keep(np.array([64, 40, 6]), np.array([0.5, 0.3, 0.1]), 8)
    np.testing.assert_array_equal(keep, [32, 16, 6])
