"""A small read-only view of a Keras functional graph, the same for both flavours.

Built on `core.graph.walk` (back from the model's inputs and outputs), so the
view holds the calls of this model only, each with the keys of the tensors it
reads and writes and every tensor's static shape.
"""

from __future__ import annotations

import dataclasses

from keras_squeeze.core import graph
from keras_squeeze.core.models import is_graph_model
from keras_squeeze.errors import ModelError


@dataclasses.dataclass
class GraphNode:
    """One call of a layer in the model.

    Attributes:
        layer: the layer (or a Keras 3 operation such as `keras.ops.add`).
        inputs / outputs: keys of the symbolic tensors it reads and writes,
            in call order.
        is_input: True for the node of an `InputLayer`.
    """

    layer: object
    inputs: list[int]
    outputs: list[int]
    is_input: bool

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def kind(self) -> str:
        return type(self.layer).__name__


@dataclasses.dataclass
class GraphView:
    """The model's calls in topological order, with every tensor's static shape.

    Attributes:
        nodes: the calls, each after the calls it reads from.
        tensors: key -> the symbolic tensor (held so keys stay valid).
        shapes: key -> static shape with the batch axis (None where unknown).
        inputs / outputs: keys of the model's input and output tensors.
        calls: layer name -> number of calls of that layer in the model.
    """

    nodes: list[GraphNode]
    tensors: dict[int, object]
    shapes: dict[int, tuple]
    inputs: list[int]
    outputs: list[int]
    calls: dict[str, int]

    def producer(self, key: int) -> GraphNode:
        return self._by_output[key]

    def __post_init__(self):
        self._by_output = {k: n for n in self.nodes for k in n.outputs}


def _shape(tensor) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def graph_view(model) -> GraphView:
    """Builds the GraphView of a functional or Sequential model.

    Raises:
        ModelError: a subclassed model, or a model without defined inputs and
            outputs (an unbuilt Sequential).

    Example:
        >>> view = graph_view(model)
        >>> [n.kind for n in view.nodes][:3]
        ['InputLayer', 'Conv2D', 'BatchNormalization']
    """
    if not is_graph_model(model):
        raise ModelError(
            "Channel pruning needs the model's layer graph, which a subclassed model does not "
            "expose. Expected a functional or Sequential model (keras.Model(inputs, outputs) "
            f"or keras.Sequential). Received: a subclassed model of class "
            f"{type(model).__qualname__}"
        )
    try:
        outputs = list(model.outputs or [])
        inputs = list(model.inputs or [])
    except (AttributeError, ValueError):
        outputs, inputs = [], []
    if not outputs or not inputs:
        raise ModelError(
            f"The model '{model.name}' has no defined inputs and outputs. Expected a model built "
            "on keras.Input(shape=...) (start a Sequential with an Input). "
            f"Received: a {type(model).__name__} that was not built"
        )
    tensors: dict[int, object] = {}
    order: list[GraphNode] = []
    for node in graph.walk(model, start=inputs + outputs):
        parents, outs = graph.node_inputs(node), graph.node_outputs(node)
        for x in (*parents, *outs):
            tensors[id(x)] = x
        order.append(
            GraphNode(
                layer=graph.node_layer(node),
                inputs=[id(x) for x in parents],
                outputs=[id(x) for x in outs],
                is_input=not parents,
            )
        )
    calls: dict[str, int] = {}
    for n in order:
        calls[n.name] = calls.get(n.name, 0) + 1
    return GraphView(
        nodes=order,
        tensors=tensors,
        shapes={k: _shape(t) for k, t in tensors.items()},
        inputs=[id(t) for t in inputs],
        outputs=[id(t) for t in outputs],
        calls=calls,
    )
