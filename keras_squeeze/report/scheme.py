"""The report's numeric scheme: the mode's activations, and the weights as the .tflite holds them.

The converter's choices depend on the TF version and the layer (TF 2.21
quantizes Dense kernels per channel, clustered Dense kernels get one scale,
small constants stay float32 under dynamic range), so the report states the
weights from the per-layer table, which reads every kernel from the .tflite.

Example:
    >>> describe(PTQ_MODES["int8"], rows)
    'full integer: weights as stored in the .tflite: Conv2D int8 per-channel (3), Dense int8
    per-channel (2); activations int8 per-tensor asymmetric ...'
"""

from __future__ import annotations

from collections import Counter


def weights_found(rows) -> str:
    """E.g. "Conv2D int8 per-channel (3), Dense int8 per-tensor (1)", from the layer rows."""
    counts = Counter((row.type, row.quantized) for row in rows if row.quantized)
    return ", ".join(f"{kind} {storage} ({n})" for (kind, storage), n in sorted(counts.items()))


def describe(mode, rows) -> str:
    """The scheme of one .tflite: `mode`'s activations, the weights its layer rows found."""
    found = weights_found(rows)
    if not found:
        return mode.scheme
    return f"{mode.kind}: weights as stored in the .tflite: {found}; {mode.activations}"
