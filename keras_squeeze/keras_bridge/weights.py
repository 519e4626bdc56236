"""Matching and copying a layer's weights between Keras 3 and tf_keras, by name.

Variable names differ between the flavours: Keras 3 has `path`
"conv2d/kernel", tf_keras `name` "conv2d/kernel:0" (or "kernel:0" for a layer
built outside its name scope, "bidirectional/forward_lstm/lstm_cell/kernel:0"
inside wrappers). Weights are matched on the shortest name suffix that is
unique on both sides ("kernel", then "lstm_cell/kernel", ...); a weight whose
shape differs only by axes of size 1 (e.g. Normalization's mean kept as
(1, 1, 1, C) by one flavour and (C,) by the other) is reshaped. Position is
used only when names cannot decide and every shape agrees.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from keras_squeeze.errors import BridgeError

_SUFFIX = re.compile(r":\d+$")


def name_parts(variable) -> list[str]:
    """Path components of a variable's name, without the ':0' suffix."""
    name = getattr(variable, "path", None) or variable.name
    return _SUFFIX.sub("", name).split("/")


def _suffix(parts: Sequence[str], n: int) -> str:
    return "/".join(parts[-n:])


def shapes_compatible(a: Sequence[int], b: Sequence[int]) -> bool:
    """Same shape, or the same after dropping axes of size 1."""
    a, b = tuple(a), tuple(b)
    return a == b or tuple(d for d in a if d != 1) == tuple(d for d in b if d != 1)


def match_weights(
    source: Sequence[tuple[Sequence[str], Sequence[int]]],
    target: Sequence[tuple[Sequence[str], Sequence[int]]],
) -> list[int] | None:
    """For each target weight, the index of the source weight holding its value.

    Args:
        source, target: (name parts, shape) per weight, in layer order.

    Returns:
        A list of source indices (one per target weight), or None when the two
        cannot be matched: different counts, or no name suffix length at which
        the names are unique on both sides and equal as sets, and shapes that
        differ in order.

    Example:
        >>> match_weights([(["d", "bias"], (3,)), (["d", "kernel"], (2, 3))],
        ...               [(["kernel"], (2, 3)), (["bias"], (3,))])
        [1, 0]
    """
    if len(source) != len(target):
        return None
    if not source:
        return []
    longest = max(len(parts) for parts, _ in [*source, *target])
    for n in range(1, longest + 1):
        src = [_suffix(parts, n) for parts, _ in source]
        tgt = [_suffix(parts, n) for parts, _ in target]
        if len(set(src)) == len(src) and len(set(tgt)) == len(tgt) and set(src) == set(tgt):
            index = {name: i for i, name in enumerate(src)}
            order = [index[name] for name in tgt]
            if all(
                shapes_compatible(source[i][1], shape)
                for i, (_, shape) in zip(order, target, strict=True)
            ):
                return order
            return None
    if all(shapes_compatible(s, t) for (_, s), (_, t) in zip(source, target, strict=True)):
        return list(range(len(target)))
    return None


def copy_weights(source_layer, target_layer, direction: str) -> int:
    """Sets `target_layer`'s weights from `source_layer`'s, matched by name.

    Returns:
        The number of weight arrays copied.

    Raises:
        BridgeError: the layers' weights cannot be matched (names or shapes).
    """
    src, tgt = list(source_layer.weights), list(target_layer.weights)
    order = match_weights(
        [(name_parts(v), tuple(v.shape)) for v in src],
        [(name_parts(v), tuple(v.shape)) for v in tgt],
    )
    if order is None:
        raise BridgeError(
            f"The weights of layer '{source_layer.name}' do not match its {direction} rebuild. "
            f"Expected the same weights by name and shape. Received: "
            f"{[(v.path if hasattr(v, 'path') else v.name, tuple(v.shape)) for v in src]} vs "
            f"{[(getattr(v, 'path', None) or v.name, tuple(v.shape)) for v in tgt]}"
        )
    values = [np.asarray(v.numpy() if hasattr(v, "numpy") else v) for v in src]
    target_layer.set_weights(
        [values[i].reshape(tuple(v.shape)) for i, v in zip(order, tgt, strict=True)]
    )
    # Layers that derive constants from their weights (an adapted
    # Normalization's mean and variance) recompute them here.
    finalize = getattr(target_layer, "finalize_state", None)
    if callable(finalize):
        finalize()
    return len(tgt)
