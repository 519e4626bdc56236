"""Walking the layer graph of a Keras 3 Sequential or functional model.

The walk is `core.graph.walk`: back from `model.outputs` over what Keras 3
records when a layer or op is called on symbolic tensors (keras/src/ops/node.py),
every call once in dependency order; each call keeps the symbolic `arguments`
it was given, which `evaluate` fills with values. Nested models (a
keras.applications backbone used as a layer, a Sequential inside a functional
model) are walked through: their calls are inlined, so the rebuilt model is
flat (see `keras_bridge.forward`).

This is Keras 3 glue only: `evaluate` runs a callback per call and leaves the
meaning of a call to it (build a tf_keras layer, run a layer eagerly, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from keras_squeeze import _compat
from keras_squeeze.core import graph as core_graph
from keras_squeeze.errors import BridgeError


@dataclasses.dataclass
class Call:
    """One call of a layer or op in the graph.

    Attributes:
        operation: the Keras 3 layer or op that was called.
        args, kwargs: the call's arguments, with values in place of the
            symbolic tensors (a `KerasTensor` argument is replaced by the value
            the walk computed for it).
        path: names of the enclosing models, outermost (the model walked) first.
    """

    operation: object
    args: tuple
    kwargs: dict
    path: tuple[str, ...]

    @property
    def label(self) -> str:
        return "/".join((*self.path[1:], self.operation.name))


def has_graph(model) -> bool:
    """True for a Keras 3 Sequential or functional model with defined inputs and outputs."""
    try:
        inputs, outputs = list(model.inputs or []), list(model.outputs or [])
    except (AttributeError, ValueError):
        return False
    return (
        bool(inputs) and bool(outputs) and all(core_graph.history(t) is not None for t in outputs)
    )


def io_structure(model, which: str):
    """`model.input` / `model.output` as the user built them (a tensor, list or dict)."""
    import keras

    flat = list(model.inputs if which == "input" else model.outputs)
    try:
        structure = getattr(model, which)
    except (AttributeError, ValueError):
        structure = None
    if structure is not None:
        try:
            if [id(t) for t in keras.tree.flatten(structure)] == [id(t) for t in flat]:
                return structure
        except (TypeError, ValueError):
            pass
    return flat[0] if len(flat) == 1 else flat


def ordered_nodes(model) -> list:
    """The calls (Keras 3 `Node`s) of `model`'s graph in dependency order.

    Inputs come before the calls that use them; siblings keep the order of the
    arguments that use them, so the order is deterministic. The walk stops at
    the model's inputs (which may be tensors of a larger graph).
    """
    return core_graph.walk(model, stop=model.inputs)


def is_nested_model(operation) -> bool:
    return _compat.is_keras_model(operation) and has_graph(operation)


def evaluate(model, inputs: list, on_call: Callable[[Call], object], path=()) -> list:
    """Runs `model`'s graph: `on_call` computes each call's outputs from its values.

    Args:
        model: a Keras 3 Sequential or functional model.
        inputs: one value per `model.inputs` entry, in that order.
        on_call: computes one call; returns its outputs (a value, or a list or
            dict of values in the structure the layer returns).
        path: names of the enclosing models (for labels).

    Returns:
        One value per `model.outputs` entry.

    Raises:
        BridgeError: the graph uses a layer called with arguments that cannot be
            followed, or an output not computable from the inputs.
    """
    import keras

    values = {id(t): v for t, v in zip(model.inputs, inputs, strict=True)}

    def fill(x):
        if isinstance(x, keras.KerasTensor):
            if id(x) not in values:
                raise BridgeError(
                    f"A tensor of model '{model.name}' is not computable from its inputs. "
                    "Expected every layer input to come from the model's keras.Input tensors. "
                    f"Received: {x.name}"
                )
            return values[id(x)]
        return x

    for node in ordered_nodes(model):
        operation = node.operation
        if node.is_input:
            if not all(id(t) in values for t in node.outputs):
                raise BridgeError(
                    f"The model '{model.name}' uses the input '{operation.name}' that is not among "
                    "its inputs. Expected every keras.Input the outputs depend on to be passed to "
                    f"keras.Model(inputs=...). Received: inputs {[t.name for t in model.inputs]}"
                )
            continue
        args = keras.tree.map_structure(fill, node.arguments.args)
        kwargs = keras.tree.map_structure(fill, node.arguments.kwargs)
        if is_nested_model(operation):
            outputs = _evaluate_nested(operation, args, kwargs, on_call, (*path, model.name))
        else:
            outputs = on_call(Call(operation, tuple(args), dict(kwargs), (*path, model.name)))
        flat = flatten_outputs(outputs)
        if len(flat) != len(node.outputs):
            raise BridgeError(
                f"The layer '{operation.name}' returned {len(flat)} outputs where the Keras 3 "
                f"graph has {len(node.outputs)}. Expected the rebuilt layer to return the same "
                f"structure. Received: {type(outputs).__name__}"
            )
        for t, v in zip(node.outputs, flat, strict=True):
            values[id(t)] = v
    return [fill(t) for t in model.outputs]


def flatten_outputs(outputs) -> list:
    import tensorflow as tf

    return tf.nest.flatten(outputs, expand_composites=False)


# Keyword arguments a nested model's call may carry that do not change what
# it computes in inference (training is decided by the caller of the
# rebuilt model; masks are recomputed by the inlined layers).
_NESTED_CALL_KWARGS = ("training", "mask")


def _evaluate_nested(model, args, kwargs, on_call, path) -> list:
    import keras

    extra = sorted(k for k, v in kwargs.items() if k not in _NESTED_CALL_KWARGS and v is not None)
    if len(args) != 1 or extra:
        raise BridgeError(
            f"The nested model '{model.name}' is called with arguments the bridge cannot inline. "
            "Expected one positional argument holding its inputs. "
            f"Received: {len(args)} positional arguments, keyword arguments {extra}"
        )
    flat = keras.tree.flatten(args[0])
    if len(flat) != len(model.inputs):
        raise BridgeError(
            f"The nested model '{model.name}' is called on {len(flat)} tensors. Expected one per "
            f"input of the model ({len(model.inputs)}). Received: {len(flat)}"
        )
    # The flat outputs, in the order the outer node lists them.
    return evaluate(model, flat, on_call, path)
