"""Channel importance: plain functions of numpy arrays (no Keras).

Criteria (each gives one score per channel; higher means more important):

- "l1" / "l2": the L1 / L2 norm of each output filter of a Conv / Dense /
  SeparableConv (pointwise) kernel, and of each DepthwiseConv channel kernel,
  over all axes but the channel's (Li et al. 2017, "Pruning filters for
  efficient ConvNets").
- "bn_scale": |gamma| of each BatchNormalization channel (Liu et al. 2017,
  "Network slimming").
- "taylor": first-order Taylor estimate of the loss change when a channel is
  removed (Molchanov et al. 2017): for activations `a` and the loss gradient
  `g` at the channel's tensor, `score[c] = mean over samples n of
  |sum over spatial positions p of a[n, p, c] * g[n, p, c]|`.

A group's score per component aggregates its *sources* (every kernel, BN or
tensor that holds the group's channels): each source's scores are divided by
their mean over the group's components (so large and small layers weigh the
same), then the normalised sources are averaged.

Example:
    >>> channel_norms(np.ones((3, 3, 4, 2)), ord_=1)
    array([36., 36.])
"""

from __future__ import annotations

import numpy as np

CRITERIA = ("l1", "l2", "bn_scale", "taylor")


def channel_norms(kernel: np.ndarray, ord_: int, axis: int = -1) -> np.ndarray:
    """L-`ord_` norm of each slice of `kernel` along `axis`, over all other axes."""
    k = np.moveaxis(np.asarray(kernel, np.float64), axis, 0)
    return np.linalg.norm(k.reshape(k.shape[0], -1), ord=ord_, axis=1)


def taylor_sums(activation: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """`sum over samples n of |sum over positions p of a[n, p, c] * g[n, p, c]|`, per channel c.

    Args:
        activation, gradient: arrays of the same shape `(n, ..., C)`.

    Returns:
        `(C,)` float64 sums; divide by the number of samples for the mean.
    """
    a = np.asarray(activation, np.float64)
    g = np.asarray(gradient, np.float64)
    if a.shape != g.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {g.shape}")
    per_sample = (a * g).reshape(a.shape[0], -1, a.shape[-1]).sum(axis=1)
    return np.abs(per_sample).sum(axis=0)


def source_scores(components: np.ndarray, scores: np.ndarray, size: int) -> np.ndarray:
    """One source's score per group component (mean over its positions in that component).

    Args:
        components: the component index of each position of the source.
        scores: the source's score at each position.
        size: number of components in the group.
    """
    components = np.asarray(components, np.int64)
    total = np.bincount(components, weights=np.asarray(scores, np.float64), minlength=size)
    count = np.bincount(components, minlength=size)
    return np.divide(total, count, out=np.zeros(size), where=count > 0)


def normalise(scores: np.ndarray) -> np.ndarray:
    """Scores divided by their mean (all zeros stay zeros)."""
    scores = np.asarray(scores, np.float64)
    mean = scores.mean() if scores.size else 0.0
    return scores / mean if mean > 0 else np.zeros_like(scores)


def group_scores(sources: list[np.ndarray], size: int) -> np.ndarray:
    """Average of the mean-normalised per-component scores of a group's sources.

    Example:
        >>> group_scores([np.array([1.0, 3.0]), np.array([10.0, 10.0])], 2)
        array([0.75, 1.25])
    """
    if not sources:
        return np.ones(size)
    return np.mean([normalise(s) for s in sources], axis=0)


def top_components(scores: np.ndarray, keep: int) -> np.ndarray:
    """Indices of the `keep` highest scores, ascending; ties keep the lower index.

    Example:
        >>> top_components(np.array([0.5, 0.0, 2.0, 0.5]), 2)
        array([0, 2])
    """
    scores = np.asarray(scores, np.float64)
    order = np.lexsort((np.arange(len(scores)), -scores))
    return np.sort(order[:keep])
