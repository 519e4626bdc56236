"""Pruning masks as plain numpy: magnitude (per weight or per block) and M:N.

The same rules as tfmot's pruning_impl, on arrays in Keras layout (Dense
(inputs, units), Conv2D (h, w, inputs, filters)), so the native engine and
the tfmot engine zero the same weights:

- magnitude: keep the round(size * (1 - sparsity)) largest |w| (at least one;
  ties at the threshold are kept), zero the rest;
- blocks (rows, cols) of a rank-2 kernel are scored by their mean |w| and
  kept or zeroed whole (a partial block at the edge is scored by the weights
  it holds; tfmot's SAME pooling centres its windows instead, so there its
  scores are off the mask's blocks by a row or two);
- blocks apply where tfmot can prune in them (`block_for`: rank-2 kernels
  with two or more blocks along each axis); any other layer is pruned per
  weight, by both engines;
- M:N: in every N consecutive weights along the input-channel axis, the
  N - M largest |w| stay (a last partial block is padded with zeros).
"""

from __future__ import annotations

import numpy as np


def _keep_count(size: int, sparsity: float) -> int:
    return min(size, max(int(np.round(size * (1.0 - sparsity))), 1))


def _block_scores(magnitude: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    rows, cols = block
    h, w = magnitude.shape
    padded = np.full((-(-h // rows) * rows, -(-w // cols) * cols), np.nan)
    padded[:h, :w] = magnitude
    blocks = padded.reshape(padded.shape[0] // rows, rows, padded.shape[1] // cols, cols)
    return np.nanmean(blocks, axis=(1, 3))


def block_for(shapes, block: tuple[int, int]) -> tuple[int, int]:
    """The block a layer whose pruned weights have `shapes` is pruned in: `block` or (1, 1).

    One block for all of a layer's weights (tfmot's wrapper takes one), and
    only where every weight is a rank-2 kernel holding two or more blocks
    along each axis: tfmot squeezes the kernel, then its grid of block scores,
    before scoring the blocks, so a kernel of one unit or one input (1548x1),
    or one a single block tall or wide (3x400 in 4x1 blocks), reaches its
    pooling as rank 1 and fails midway through training ("factorized_pool()
    accepts tensors of rank 2 only").
    """
    block = tuple(block)

    def fits(shape) -> bool:
        return len(shape) == 2 and all(
            -(-int(size) // b) >= 2 for size, b in zip(shape, block, strict=True)
        )

    shapes = list(shapes)
    return block if shapes and all(fits(s) for s in shapes) else (1, 1)


def magnitude_mask(
    values: np.ndarray, sparsity: float, block: tuple[int, int] = (1, 1)
) -> np.ndarray:
    """A 0/1 mask (values' dtype) that zeros the `sparsity` fraction of smallest |values|.

    Args:
        values: a kernel in Keras layout.
        sparsity: fraction to zero, in [0, 1).
        block: (rows, cols) blocks of a rank-2 kernel kept or zeroed together;
            (1, 1) scores each weight on its own.

    Raises:
        ValueError: blocks on a kernel that is not rank 2.
    """
    values = np.asarray(values)
    magnitude = np.abs(values.astype(np.float64))
    block = tuple(block)
    if block != (1, 1):
        if values.ndim != 2:
            raise ValueError(f"blocks need a rank-2 kernel, got shape {values.shape}")
        scores = _block_scores(magnitude, block)
    else:
        scores = magnitude
    flat = scores.ravel()
    keep = _keep_count(flat.size, sparsity)
    threshold = np.partition(flat, flat.size - keep)[flat.size - keep]
    kept = scores >= threshold
    if block != (1, 1):
        kept = np.repeat(np.repeat(kept, block[0], axis=0), block[1], axis=1)
        kept = kept[: values.shape[0], : values.shape[1]]
    return kept.astype(values.dtype)


def m_by_n_mask(values: np.ndarray, m: int, n: int) -> np.ndarray:
    """A 0/1 mask with M zeros in every N consecutive weights along the input-channel axis.

    The input-channel axis is the second to last in Keras layout (Dense:
    inputs; Conv2D: in-channels), the last of TFLite's (out, ..., in) layout.
    Among equal magnitudes the earlier weight stays.
    """
    values = np.asarray(values)
    if values.ndim < 2:
        raise ValueError(f"M:N needs a kernel of rank >= 2, got shape {values.shape}")
    moved = np.moveaxis(np.abs(values.astype(np.float64)), -2, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    pad = (-rows.shape[1]) % n
    padded = np.concatenate([rows, np.zeros((rows.shape[0], pad))], axis=1)
    blocks = padded.reshape(rows.shape[0], -1, n)
    order = np.argsort(-blocks, axis=-1, kind="stable")[..., : n - m]
    kept = np.zeros_like(blocks, dtype=bool)
    np.put_along_axis(kept, order, True, axis=-1)
    kept = kept.reshape(rows.shape[0], -1)[:, : rows.shape[1]].reshape(moved.shape)
    return np.moveaxis(kept, -1, -2).astype(values.dtype)
