"""Maps profiled TFLite ops back to the Keras layers they came from.

The TFLite converter names each op's output tensor after the TensorFlow ops
it fused, e.g. "sequential_1/conv_a_1/Relu;sequential_1/conv_a_1/convolution"
(Keras 3) or "model/conv2d/Relu" (tf_keras): path components are name scopes,
the first the model, then nested layers, the last the TF op. Keras 3 traces
the model twice on export, so every scope carries a "_1"-style suffix; when
the first component is the model's name plus such a suffix, that suffix is
removed from every component before matching.

A profile row names its output tensors ("[a, b]:12"); rows naming none (a
delegate's internal kernels) are looked up by node index in the .tflite
(read with keras_squeeze.report.tflite_reader), when the index is an op of
the model. Ops whose names keep no layer (e.g. "Identity") map to nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from keras_squeeze.bench.results import OpTiming

_SUFFIX = re.compile(r"^(?P<base>.+)_(?P<n>\d+)$")


def _trace_suffix(first_component: str, model_name: str | None) -> str | None:
    """The suffix Keras added to every scope ("_1"), judged from the model scope."""
    if model_name is None or first_component == model_name:
        return None
    m = _SUFFIX.match(first_component)
    if m and m.group("base") == model_name:
        return f"_{m.group('n')}"
    return None


def layers_of_tensor(
    tensor_name: str, layer_names: Iterable[str] | None = None, model_name: str | None = None
) -> list[str]:
    """The Keras layer names one tensor name points at (most specific scope first).

    With `layer_names`, a scope counts only if it names a layer; without, the
    scope after the model scope is returned as written.

    Example:
        >>> layers_of_tensor("sequential_1/conv_a_1/Relu", ["conv_a", "head"], "sequential")
        ['conv_a']
    """
    known = set(layer_names) if layer_names is not None else None
    found: list[str] = []
    for piece in tensor_name.split(";"):
        parts = piece.split("/")
        if len(parts) < 2:
            continue
        suffix = _trace_suffix(parts[0], model_name)
        scopes = parts[1:-1]
        if known is None:
            candidates = scopes[:1]
        else:
            candidates = []
            for scope in reversed(scopes):
                if suffix and scope.endswith(suffix) and scope[: -len(suffix)] in known:
                    candidates.append(scope[: -len(suffix)])
                elif scope in known:
                    candidates.append(scope)
                elif (m := _SUFFIX.match(scope)) and m.group("base") in known and not suffix:
                    candidates.append(m.group("base"))
            candidates = candidates[:1]
        for c in candidates:
            if c not in found:
                found.append(c)
    return found


def _tflite_outputs(content: bytes | None) -> list[list[str]] | None:
    if content is None:
        return None
    from keras_squeeze.report.tflite_reader import read_tflite

    model = read_tflite(content)
    return [[model.tensors[i].name for i in op.outputs] for op in model.operators]


def _model_names(model) -> tuple[list[str], str]:
    from keras_squeeze.core.models import walk_layers

    return [layer.name for layer in walk_layers(model)], model.name


def map_layers(
    ops: Sequence[OpTiming],
    tflite: bytes | None = None,
    layer_names: Iterable[str] | None = None,
    model_name: str | None = None,
    model=None,
) -> list[OpTiming]:
    """Fills each row's `layers` (in place) and returns the rows.

    Args:
        ops: parsed profile rows.
        tflite: the profiled .tflite, to name rows that carry only a node index.
        layer_names / model_name: the Keras model's layer names and name;
            or pass `model` (a Keras model) to take both from it.
    """
    if model is not None:
        layer_names, model_name = _model_names(model)
    layer_names = list(layer_names) if layer_names is not None else None
    outputs = _tflite_outputs(tflite)
    for op in ops:
        tensors = list(op.tensors)
        known_index = op.node_index is not None and outputs is not None
        if not tensors and known_index and op.node_index < len(outputs):
            tensors = outputs[op.node_index]
        layers: list[str] = []
        for t in tensors:
            for layer in layers_of_tensor(t, layer_names, model_name):
                if layer not in layers:
                    layers.append(layer)
        op.layers = layers
    return list(ops)


def time_by_layer(ops: Sequence[OpTiming]) -> list[tuple[str, float]]:
    """Average ms per layer (or per group of layers a delegate node fused), slowest first.

    Rows mapped to no layer are summed under "(unmapped)".
    """
    totals: dict[str, float] = {}
    for op in ops:
        key = " + ".join(op.layers) if op.layers else "(unmapped)"
        totals[key] = totals.get(key, 0.0) + op.avg_ms * max(op.times_called, 1)
    return sorted(totals.items(), key=lambda kv: -kv[1])
