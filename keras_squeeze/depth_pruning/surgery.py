"""Rebuilding a model without some of its calls: bypasses, folded and merged layers.

A `Plan` says what changes: tensors replaced by others (`aliases`: a bypassed
unit's output by its input, a folded BatchNormalization's output by its
convolution's), calls left out (`dropped`) and layers replaced by new ones
(`replace`: a convolution with the normalization folded in, two linear layers
merged). `rebuild` replays the graph call by call with the arguments each
call was made with (`core.graph.call_arguments`) on new `keras.Input`s of the
model's own flavour: every kept layer is a fresh copy made from its config
(a Keras 3 operation such as `x + y` is stateless and reused), then the
weights are copied in. A Sequential model comes back as a Sequential. The
user's model is only read.

`run_calls` is the same replay on values: the importance measurements run the
model's own layers eagerly, in inference mode, with units bypassed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.channel_pruning.graph import GraphView
from keras_squeeze.core import graph as core_graph
from keras_squeeze.errors import ModelError


@dataclasses.dataclass
class Replacement:
    """A new layer in place of an old one: its class, config and weights."""

    cls: type
    config: dict
    weights: list[np.ndarray]


@dataclasses.dataclass
class Plan:
    """What a rebuild changes (see the module docstring)."""

    aliases: dict[int, int] = dataclasses.field(default_factory=dict)
    dropped: set[int] = dataclasses.field(default_factory=set)
    replace: dict[str, Replacement] = dataclasses.field(default_factory=dict)

    def resolve(self, key: int) -> int:
        seen = 0
        while key in self.aliases:
            key = self.aliases[key]
            seen += 1
            if seen > len(self.aliases):
                raise ModelError(
                    "A rebuild plan replaces a tensor by itself. Expected bypasses that lead back "
                    f"to a computed tensor. Received: a cycle through tensor {key}"
                )
        return key

    def bypass(self, nodes, source: int, output: int) -> None:
        """Leaves out the calls `nodes`; what read `output` reads `source` instead."""
        self.dropped.update(nodes)
        self.aliases[output] = source


def bypass_plan(units) -> Plan:
    """The plan that bypasses every unit in `units`."""
    plan = Plan()
    for unit in units:
        plan.bypass(unit.nodes, unit.input, unit.output)
    return plan


def is_layer(operation) -> bool:
    """A layer (with weights and a config), not a stateless Keras 3 operation."""
    return hasattr(operation, "get_weights")


def call(operation, args, kwargs, inference: bool):
    """One call of a layer or operation on values or symbolic tensors."""
    if inference and is_layer(operation):
        kwargs = {**kwargs, "training": False}
    return operation(*args, **kwargs)


def run_calls(
    view: GraphView, values: dict, plan: Plan, start: int = 0, changed=None, base=None, hook=None
) -> dict:
    """Runs the model's own calls on values (eagerly, in inference mode).

    Args:
        view: the model's graph.
        values: tensor key -> value; holds the model inputs (and, for a partial
            run, every value of the `base` plan's run); updated in place.
        plan: the bypasses (replacements are not used here).
        start: the first call to run.
        changed: with a set of tensor keys (and `base`, the plan `values` were
            computed with), run only the calls that read a tensor in it or a
            tensor `plan` rewires away from `base`, adding their outputs to it;
            None runs every call from `start`.
        hook: `hook(key, value) -> value`, called on each value computed
            (e.g. to watch it on a gradient tape).

    Returns:
        `values`.
    """
    for i in range(start, len(view.nodes)):
        node = view.nodes[i]
        if node.is_input or i in plan.dropped:
            continue
        if changed is not None and not any(
            plan.resolve(k) in changed or plan.resolve(k) != base.resolve(k) for k in node.inputs
        ):
            continue
        args, kwargs = core_graph.call_arguments(node.call)
        lookup = _lookup(values, plan)
        out = call(
            node.layer,
            core_graph.replace_tensors(args, lookup),
            core_graph.replace_tensors(kwargs, lookup),
            inference=True,
        )
        for key, value in zip(node.outputs, core_graph.flatten(out), strict=True):
            values[key] = value if hook is None else hook(key, value)
            if changed is not None:
                changed.add(key)
    return values


def _lookup(values: dict, plan: Plan):
    def value_of(tensor):
        return values[plan.resolve(id(tensor))]

    return value_of


def outputs_of(view: GraphView, values: dict, plan: Plan) -> list:
    return [values[plan.resolve(k)] for k in view.outputs]


def _input_tensor(k, layer):
    config = layer.get_config()
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    dtype = config.get("dtype")
    if isinstance(dtype, dict):  # a Keras 3 dtype policy
        dtype = dtype.get("config", {}).get("name")
    kwargs = {"batch_shape": tuple(shape), "dtype": dtype, "name": layer.name}
    if config.get("sparse"):
        kwargs["sparse"] = True
    if config.get("ragged"):
        kwargs["ragged"] = True
    return k.Input(**kwargs)


def _structure(model, which: str, flat_new: list, flat_old: list):
    """The new tensors in the structure of `model.input` / `model.output`."""
    import tensorflow as tf

    try:
        structure = getattr(model, which)
        leaves = tf.nest.flatten(structure)
    except (AttributeError, ValueError, TypeError):
        structure, leaves = None, []
    if structure is not None and [id(t) for t in leaves] == [id(t) for t in flat_old]:
        return tf.nest.pack_sequence_as(structure, flat_new)
    return flat_new[0] if len(flat_new) == 1 else list(flat_new)


def _fresh(layer, replacement: Replacement | None, k):
    if replacement is not None:
        return replacement.cls.from_config(replacement.config)
    if _compat.is_keras_model(layer):
        return k.models.clone_model(layer)
    return layer.__class__.from_config(layer.get_config())


def rebuild(model, view: GraphView, plan: Plan, shared: dict | None = None):
    """A new model of `model`'s flavour with the plan applied, weights copied.

    Args:
        model: the model `view` was made from.
        view: its graph (`channel_pruning.graph.graph_view`).
        plan: the changes.
        shared: layer name -> layer to call instead of a fresh copy (layers of
            an earlier rebuild, to build several variants without copying
            weights again); new copies are added to it.

    Raises:
        ModelError: a layer cannot be made again from its config (a custom
            layer without get_config / from_config), or the graph cannot be
            replayed.
    """
    k = _compat.keras_module(_compat.keras_flavour(model))
    created: list[tuple[str, object, object]] = []
    layers = {} if shared is None else shared

    def layer_for(node):
        operation = node.layer
        if not is_layer(operation):
            return operation
        if operation.name not in layers:
            replacement = plan.replace.get(operation.name)
            layers[operation.name] = _fresh(operation, replacement, k)
            created.append((operation.name, operation, layers[operation.name]))
        return layers[operation.name]

    try:
        if type(model).__name__ == "Sequential":
            new = _sequential(k, model, view, plan, layer_for)
        else:
            new = _functional(k, model, view, plan, layer_for)
    except ModelError:
        raise
    except Exception as e:
        raise ModelError(
            "The model could not be rebuilt without the removed layers. Expected layers that "
            "round-trip through get_config / from_config (register custom layers). "
            f"Received: {type(e).__name__}: {str(e)[:300]}"
        ) from e
    for name, old, fresh in created:
        replacement = plan.replace.get(name)
        fresh.set_weights(replacement.weights if replacement is not None else old.get_weights())
    return new


def _functional(k, model, view, plan, layer_for):
    values: dict[int, object] = {}
    new_inputs = []
    for key in view.inputs:
        tensor = _input_tensor(k, view.producer(key).layer)
        values[key] = tensor
        new_inputs.append(tensor)
    for i, node in enumerate(view.nodes):
        if node.is_input or i in plan.dropped:
            continue
        args, kwargs = core_graph.call_arguments(node.call)
        lookup = _lookup(values, plan)
        out = call(
            layer_for(node),
            core_graph.replace_tensors(args, lookup),
            core_graph.replace_tensors(kwargs, lookup),
            inference=False,
        )
        for key, value in zip(node.outputs, core_graph.flatten(out), strict=True):
            values[key] = value
    inputs = _structure(model, "input", new_inputs, [view.tensors[key] for key in view.inputs])
    outputs = _structure(
        model, "output", outputs_of(view, values, plan), [view.tensors[key] for key in view.outputs]
    )
    return k.Model(inputs, outputs, name=model.name)


def _sequential(k, model, view, plan, layer_for):
    (key,) = view.inputs
    layers = [_input_tensor(k, view.producer(key).layer)]
    for i, node in enumerate(view.nodes):
        if not node.is_input and i not in plan.dropped:
            layers.append(layer_for(node))
    return k.Sequential(layers, name=model.name)
