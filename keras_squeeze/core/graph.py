"""The one walk over a Keras functional graph, the same for both flavours.

Keras 3 and tf_keras record a functional (or Sequential) model's graph the
same way, with different attribute names:

- every symbolic tensor carries `_keras_history`, a named tuple
  `(layer_or_operation, node_index, tensor_index)` in both flavours;
- `layer._inbound_nodes[node_index]` is the call that made it;
- a Keras 3 `Node` lists its symbolic inputs in `node.input_tensors` (flat,
  from its `arguments`) and its outputs in `node.outputs` (flat); a tf_keras
  `Node` lists them in `node.keras_inputs` (flat) and `node.outputs` (a
  nested structure).

Keras has no public API for this walk; these attributes are what
`keras.Model` itself reads to run and clone a functional model. The bridge,
channel pruning and quantization-aware training all read the graph through
this module, so a change in Keras is mended in one place.
"""

from __future__ import annotations

from collections.abc import Iterable


def history(tensor):
    """`(layer, node_index, tensor_index)` of a symbolic tensor, or None."""
    return getattr(tensor, "_keras_history", None)


def producer(tensor):
    """The layer (or Keras 3 operation) whose call made `tensor`, or None."""
    h = history(tensor)
    return h[0] if h is not None else None


def node_of(tensor):
    """The call (a Keras `Node`) that made `tensor`."""
    layer, node_index = history(tensor)[0], history(tensor)[1]
    return layer._inbound_nodes[node_index]


def flatten(structure) -> list:
    """Leaves of nested lists, tuples and dicts (dict values in key order)."""
    if isinstance(structure, (list, tuple)):
        return [x for s in structure for x in flatten(s)]
    if isinstance(structure, dict):
        return [x for k in sorted(structure) for x in flatten(structure[k])]
    return [structure]


def node_layer(node):
    """The layer (or Keras 3 operation) a call called."""
    return node.operation if hasattr(node, "operation") else node.layer  # Keras 3 / tf_keras


def node_inputs(node) -> list:
    """The symbolic tensors a call read, in call order."""
    if hasattr(node, "keras_inputs"):  # tf_keras
        return list(node.keras_inputs)
    return list(node.input_tensors)  # Keras 3


def node_outputs(node) -> list:
    """The symbolic tensors a call made, flat."""
    return flatten(node.outputs)


def inbound_layers(layer) -> list:
    """The layers feeding `layer`, over all its calls, in call order."""
    found = []
    for node in getattr(layer, "_inbound_nodes", ()):
        found += [producer(t) for t in node_inputs(node)]
    return found


def _key(tensor) -> tuple[int, int]:
    h = history(tensor)
    return id(h[0]), h[1]


def walk(model, start: Iterable | None = None, stop: Iterable = ()) -> list:
    """The calls (Keras `Node`s) of `model`'s graph, each after the calls it reads.

    A post-order walk back from `start` (default: the model's outputs), so it
    holds this model's calls only (a layer also used in another model keeps its
    other calls out). Siblings keep the order of the arguments that use them,
    so the order is deterministic. Iterative: deep models (ResNet) exceed
    Python's recursion limit.

    Args:
        model: a functional or Sequential model of either flavour.
        start: tensors to walk back from, in order (e.g. inputs, then outputs,
            to list input calls first).
        stop: tensors the walk does not go beyond (e.g. a model's own inputs,
            which may be tensors of a larger graph); their calls are left out.

    Returns:
        The calls in dependency order, each once (a shared layer once per call).
    """
    stopped = {id(t) for t in stop}
    start = list(model.outputs) if start is None else list(start)
    order, done = [], set()
    stack = [(t, False) for t in reversed(start) if id(t) not in stopped]
    while stack:
        tensor, expanded = stack.pop()
        key = _key(tensor)
        if key in done:
            continue
        node = node_of(tensor)
        if expanded:
            done.add(key)
            order.append(node)
            continue
        stack.append((tensor, True))
        for parent in reversed(node_inputs(node)):
            h = history(parent)
            if id(parent) in stopped or h is None or h[0] is None:
                continue
            if _key(parent) not in done:
                stack.append((parent, False))
    return order


def call_arguments(node) -> tuple[tuple, dict]:
    """The positional and keyword arguments a call was made with, symbolic tensors in place.

    Keras 3 keeps them in `node.arguments` (`.args`, `.kwargs`), tf_keras in
    `node.call_args` / `node.call_kwargs`; both are what the flavour's own
    functional model reads to run the call again.
    """
    if hasattr(node, "arguments"):  # Keras 3
        return tuple(node.arguments.args), dict(node.arguments.kwargs)
    return tuple(node.call_args), dict(node.call_kwargs)  # tf_keras


def replace_tensors(structure, value_of):
    """`structure` (nested lists, tuples, dicts) with each symbolic tensor `t` replaced by
    `value_of(t)`; other leaves (constants, None, settings) stay as they are."""
    if isinstance(structure, (list, tuple)):
        items = [replace_tensors(s, value_of) for s in structure]
        if isinstance(structure, tuple) and hasattr(structure, "_fields"):  # a named tuple
            return type(structure)(*items)
        return type(structure)(items)
    if isinstance(structure, dict):
        return {k: replace_tensors(v, value_of) for k, v in structure.items()}
    return value_of(structure) if history(structure) is not None else structure


def has_mask(tensor) -> bool:
    """Whether a mask travels with a symbolic tensor (from Embedding(mask_zero=True),
    Masking, ...): both flavours record it on the tensor as `_keras_mask`."""
    return getattr(tensor, "_keras_mask", None) is not None
