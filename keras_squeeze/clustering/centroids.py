"""Weight clustering maths: centroid initialization, assignment and the training update.

Plain functions of arrays, unit-tested without models. Rows are clustered
independently: a kernel clustered per tensor is one row, a convolution
clustered per output channel has one row per channel (`to_rows` /
`from_rows`). Centroids are kept sorted along each row, so the nearest one is
found by a binary search over the midpoints between them.

Initializations (as tfmot's CentroidInitialization): "linear" (evenly spaced
from the row's minimum to its maximum), "kmeans++" (k-means++ seeding:
each next centroid drawn with probability proportional to the squared
distance to the nearest one chosen), "density" (evenly spaced on the
empirical CDF, so clusters are used about equally often) and "random"
(uniform between minimum and maximum).

Training (the native engine, `update`): the kernel holds its clustered
values C[idx] in the forward pass; after an optimizer step moved it by D,
the latent (unclustered) weights take D (the straight-through estimator),
each centroid moves by the mean D of its members (the step of one shared
weight), and every weight is re-assigned to the centroid nearest its latent
value; the kernel is then C[idx] again.
"""

from __future__ import annotations

import numpy as np

INITS = ("kmeans++", "linear", "density", "random")


def to_rows(kernel, per_channel: bool):
    """The kernel as rows to cluster: one per output channel (the last axis), or one.

    Works on numpy arrays and TF tensors (returns a tensor).
    """
    import tensorflow as tf

    kernel = tf.convert_to_tensor(kernel)
    rank = len(kernel.shape)
    if per_channel:
        moved = tf.transpose(kernel, [rank - 1, *range(rank - 1)])
        return tf.reshape(moved, [kernel.shape[-1], -1])
    return tf.reshape(kernel, [1, -1])


def from_rows(rows, shape: tuple, per_channel: bool):
    """The inverse of `to_rows` for a kernel of `shape` (returns a tensor)."""
    import tensorflow as tf

    shape = tuple(int(d) for d in shape)
    if per_channel:
        moved = tf.reshape(rows, [shape[-1], *shape[:-1]])
        return tf.transpose(moved, [*range(1, len(shape)), 0])
    return tf.reshape(rows, shape)


def initial(values: np.ndarray, k: int, init: str, seed: int = 0) -> np.ndarray:
    """`k` sorted centroids for one row of `values` (at least one value).

    Raises:
        ValueError: an unknown `init`.
    """
    values = np.asarray(values, np.float64).ravel()
    low, high = float(values.min()), float(values.max())
    rng = np.random.default_rng(seed)
    if init == "linear":
        centroids = np.linspace(low, high, k)
    elif init == "random":
        centroids = rng.uniform(low, high, k)
    elif init == "density":
        centroids = np.quantile(values, np.linspace(0.0, 1.0, k))
    elif init == "kmeans++":
        centroids = kmeans_plus_plus(values, k, rng)
    else:
        raise ValueError(f"unknown centroid initialization {init!r}; expected one of {INITS}")
    return np.sort(centroids)


def kmeans_plus_plus(values: np.ndarray, k: int, rng) -> np.ndarray:
    """k-means++ seeding of `k` centroids (repeats when a row has fewer distinct values)."""
    values = np.asarray(values, np.float64).ravel()
    chosen = [values[rng.integers(values.size)]]
    nearest = (values - chosen[0]) ** 2
    for _ in range(1, k):
        total = nearest.sum()
        if total <= 0:
            chosen.append(chosen[-1])
            continue
        pick = values[rng.choice(values.size, p=nearest / total)]
        chosen.append(pick)
        nearest = np.minimum(nearest, (values - pick) ** 2)
    return np.asarray(chosen)


def assign(rows, centroids):
    """The index of the nearest centroid for every value (rows (r, n), sorted centroids (r, k)).

    Works on numpy arrays and TF tensors alike (tf.searchsorted over the
    midpoints); returns int32.
    """
    import tensorflow as tf

    centroids = tf.convert_to_tensor(centroids)
    rows = tf.cast(tf.convert_to_tensor(rows), centroids.dtype)
    midpoints = (centroids[:, 1:] + centroids[:, :-1]) / 2.0
    return tf.searchsorted(midpoints, rows, side="left", out_type=tf.int32)


def gather(centroids, idx):
    """Each value's centroid: C[idx] row by row."""
    import tensorflow as tf

    return tf.gather(centroids, idx, batch_dims=1)


def update(latent, centroids, idx, moved, keep=None):
    """One training update after an optimizer step; returns (latent, centroids, idx, rows).

    Args:
        latent: the unclustered weights, rows (r, n).
        centroids: sorted centroids (r, k).
        idx: each weight's centroid (r, n), int32.
        moved: the kernel's rows after the optimizer step (it held
            C[idx] * keep before).
        keep: 1 for weights that cluster, 0 for pruned zeros kept at zero
            (sparsity-preserving clustering); None clusters every weight.

    Returns:
        The new latent weights, centroids (sorted), assignments, and the rows
        the kernel takes (C[idx] * keep).
    """
    import tensorflow as tf

    centroids = tf.convert_to_tensor(centroids)
    dtype = centroids.dtype
    moved = tf.cast(moved, dtype)
    keep = tf.ones_like(moved) if keep is None else tf.cast(keep, dtype)
    before = gather(centroids, idx) * keep
    step = (moved - before) * keep
    latent = tf.cast(latent, dtype) + step
    rows, k = tf.shape(centroids)[0], tf.shape(centroids)[1]
    segments = tf.reshape(idx + tf.range(rows)[:, None] * k, [-1])
    total = tf.math.unsorted_segment_sum(tf.reshape(step, [-1]), segments, rows * k)
    count = tf.math.unsorted_segment_sum(tf.reshape(keep, [-1]), segments, rows * k)
    shift = tf.reshape(tf.math.divide_no_nan(total, count), tf.shape(centroids))
    centroids = tf.sort(centroids + shift, axis=-1)
    idx = assign(latent, centroids)
    return latent, centroids, idx, gather(centroids, idx) * keep


def kmeans(values: np.ndarray, k: int, iterations: int = 20, seed: int = 0) -> np.ndarray:
    """Lloyd's k-means on one row of values, from k-means++ seeding; returns the values
    replaced by their nearest centroid (same shape and dtype).

    Plain numpy, for measuring what clustering costs without training (a row with at
    most `k` distinct values comes back unchanged).

    Example:
        >>> kmeans(np.array([0.0, 0.1, 5.0, 5.2]), 2)
        array([0.05, 0.05, 5.1 , 5.1 ])
    """
    values = np.asarray(values)
    flat = values.astype(np.float64).ravel()
    distinct = np.unique(flat)
    if distinct.size <= k:
        return values.copy()
    centroids = np.unique(initial(flat, k, "kmeans++", seed))
    for _ in range(iterations):
        idx = np.searchsorted((centroids[1:] + centroids[:-1]) / 2.0, flat, side="left")
        sums = np.bincount(idx, weights=flat, minlength=centroids.size)
        counts = np.bincount(idx, minlength=centroids.size)
        moved = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        moved = np.sort(moved)
        if np.allclose(moved, centroids):
            break
        centroids = moved
    idx = np.searchsorted((centroids[1:] + centroids[:-1]) / 2.0, flat, side="left")
    return centroids[idx].reshape(values.shape).astype(values.dtype)
