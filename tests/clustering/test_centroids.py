"""The native engine's clustering maths: initialization, assignment, the training update."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze.clustering import centroids as cm

RNG = np.random.default_rng(0)


def test_initializations():
    values = RNG.normal(size=2000)
    linear = cm.initial(values, 8, "linear")
    np.testing.assert_allclose(linear, np.linspace(values.min(), values.max(), 8))
    density = cm.initial(values, 8, "density")
    assert density[0] == values.min() and density[-1] == values.max()
    counts = np.bincount(np.asarray(cm.assign(values[None], density[None]))[0], minlength=8)
    assert counts[1:-1].min() > 0.5 * counts[1:-1].max()  # clusters used about equally
    seeded = cm.initial(values, 8, "kmeans++", seed=3)
    assert np.all(np.diff(seeded) >= 0) and np.isin(seeded, values).all()
    np.testing.assert_array_equal(seeded, cm.initial(values, 8, "kmeans++", seed=3))
    assert np.unique(seeded).size == 8
    spread = cm.initial(values, 8, "random", seed=1)
    assert values.min() <= spread.min() and spread.max() <= values.max()
    assert np.unique(cm.initial(np.full(10, 0.5), 4, "kmeans++")).size == 1  # one value
    with pytest.raises(ValueError, match="unknown centroid initialization 'median'"):
        cm.initial(values, 8, "median")


def test_assign_takes_the_nearest_centroid():
    rows = RNG.normal(size=(3, 500)).astype(np.float32)
    centroids = np.sort(RNG.normal(size=(3, 6)), axis=1).astype(np.float32)
    idx = np.asarray(cm.assign(rows, centroids))
    brute = np.abs(rows[:, :, None] - centroids[:, None, :]).argmin(axis=-1)
    np.testing.assert_array_equal(idx, brute)
    np.testing.assert_array_equal(
        np.asarray(cm.gather(centroids, idx)), np.take_along_axis(centroids, brute, axis=1)
    )


def test_rows_per_channel_and_per_tensor_round_trip():
    kernel = RNG.normal(size=(3, 3, 4, 5)).astype(np.float32)
    rows = np.asarray(cm.to_rows(kernel, per_channel=True))
    assert rows.shape == (5, 36)
    np.testing.assert_array_equal(rows[2], kernel[..., 2].ravel())
    np.testing.assert_array_equal(np.asarray(cm.from_rows(rows, kernel.shape, True)), kernel)
    flat = np.asarray(cm.to_rows(kernel, per_channel=False))
    assert flat.shape == (1, 180)
    np.testing.assert_array_equal(np.asarray(cm.from_rows(flat, kernel.shape, False)), kernel)


def _state(rows, k):
    centroids = np.stack([cm.initial(r, k, "linear") for r in rows]).astype(np.float32)
    idx = cm.assign(rows, centroids)
    return centroids, idx, np.asarray(cm.gather(centroids, idx))


def test_update_moves_each_centroid_by_the_mean_step_of_its_members():
    rows = RNG.normal(size=(2, 400)).astype(np.float32)
    centroids, idx, clustered = _state(rows, 4)
    latent, same, same_idx, out = cm.update(rows, centroids, idx, clustered)
    np.testing.assert_allclose(np.asarray(same), centroids)  # no step: nothing moves
    np.testing.assert_array_equal(np.asarray(same_idx), np.asarray(idx))
    step = np.where(np.asarray(idx) == 1, 0.01, 0.0).astype(np.float32)
    latent, moved, _, out = cm.update(rows, centroids, idx, clustered + step)
    np.testing.assert_allclose(np.asarray(moved)[:, 1], centroids[:, 1] + 0.01, atol=1e-6)
    np.testing.assert_allclose(np.asarray(moved)[:, [0, 2, 3]], centroids[:, [0, 2, 3]])
    np.testing.assert_allclose(np.asarray(latent), rows + step, atol=1e-6)
    for row in np.asarray(out):
        assert np.unique(row).size <= 4


def test_update_reassigns_a_weight_whose_latent_value_crossed_over():
    rows = np.array([[0.0, 0.1, 0.9, 1.0]], np.float32)
    centroids, idx, clustered = _state(rows, 2)  # centroids 0 and 1
    push = np.array([[0.0, 0.0, 0.0, 0.0]], np.float32)
    push[0, 1] = 0.7  # 0.1 -> latent 0.8; centroid 0 moves by the mean step to 0.35
    _, _, new_idx, out = cm.update(rows, centroids, idx, clustered + push)
    assert np.asarray(new_idx).tolist() == [[0, 1, 1, 1]]
    assert np.unique(np.asarray(out)).size == 2


def test_update_keeps_pruned_zeros_at_zero():
    rows = RNG.normal(size=(1, 300)).astype(np.float32)
    rows[0, ::3] = 0.0
    keep = (rows != 0).astype(np.float32)
    centroids = cm.initial(rows[0][keep[0] > 0], 5, "linear")[None].astype(np.float32)
    idx = cm.assign(rows, centroids)
    clustered = np.asarray(cm.gather(centroids, idx)) * keep
    step = RNG.normal(scale=0.01, size=rows.shape).astype(np.float32)
    latent, _, _, out = cm.update(rows, centroids, idx, clustered + step, keep)
    out = np.asarray(out)
    assert (out[0, ::3] == 0).all() and (np.asarray(latent)[0, ::3] == 0).all()
    assert np.unique(out).size <= 6  # five centroids and the zeros
