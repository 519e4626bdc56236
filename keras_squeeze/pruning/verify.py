"""Checks on exported weights: sparsity and the M:N pattern (plain numpy)."""

from __future__ import annotations

import numpy as np


def sparsity(values: np.ndarray) -> float:
    """Fraction of exact zeros."""
    values = np.asarray(values)
    return float((values == 0).mean()) if values.size else 0.0


def m_by_n_fraction(tflite_kernel: np.ndarray, m: int, n: int) -> float:
    """Fraction of N-blocks along the input-channel axis holding at least M zeros.

    `tflite_kernel` is in TFLite layout: (out, ..., in) for CONV_2D, (out, in)
    for FULLY_CONNECTED; the blocks run along the last axis, as tfmot prunes.
    A last axis not divisible by N has its final partial block padded with zeros.
    """
    w = np.asarray(tflite_kernel)
    rows = w.reshape(-1, w.shape[-1])
    pad = (-rows.shape[1]) % n
    if pad:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], pad), rows.dtype)], axis=1)
    blocks = rows.reshape(rows.shape[0], -1, n)
    zeros = (blocks == 0).sum(axis=-1)
    return float((zeros >= m).mean())
