"""Finding the units a model can lose on its Keras graph, and why the others cannot go.

Three kinds of unit, found on the graph of a functional or Sequential model
of either flavour (`channel_pruning.graph.graph_view`, built on the one graph
walk `core.graph.walk`):

- "residual": an addition `x + f(x)` whose branch `f` reads nothing but `x`
  and whose tensors are read nowhere else; bypassed, the block is `x`. An
  idempotent activation right after the addition (ResNet's ReLU) goes with it
  when `x` already went through the same activation (`relu(relu(x)) ==
  relu(x)`). These are the repeated stages of keras.applications models:
  ResNet's identity blocks, MobileNetV2's inverted residuals, EfficientNet's
  MBConv blocks with stride 1. An addition whose two inputs each have layers
  of their own (a projection shortcut, a merge of two branches) is listed
  with that reason.
- "chain": a Conv / Depthwise / Separable / ConvTranspose / Dense layer with
  the normalization and activation layers that follow it alone, removable
  when its input and output shapes (and dtypes) match, it produces no model
  output and its layer is called once. Layers inside a removable residual
  branch belong to that block and form no chain unit of their own.
- "identity": a layer that is an identity at inference (Dropout and its kin,
  GaussianNoise, ActivityRegularization, Identity): removing it changes no
  output and saves nothing.

A Dense or Conv layer whose kernel is (close to) an identity map is noted on
its chain unit: bypassing it changes the outputs little, so its importance is
low.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_squeeze.channel_pruning.graph import GraphNode, GraphView

RESIDUAL, CHAIN, IDENTITY = "residual", "chain", "identity"

MAIN_LAYERS = frozenset(
    [
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "Dense",
        "SeparableConv1D",
        "SeparableConv2D",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
    ]
)
FOLLOWERS = frozenset(
    [
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "ThresholdedReLU",
        "Softmax",
    ]
)
INFERENCE_IDENTITIES = frozenset(
    [
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
        "Identity",
    ]
)
# A kernel this close to the identity map (relative Frobenius distance) is noted.
NEAR_IDENTITY = 1e-2
_TF_ADD_FUNCTIONS = ("__operators__.add", "math.add")


@dataclasses.dataclass
class Unit:
    """One candidate for removal.

    Attributes:
        name: the unit's name: the residual block's (its Add layer's name
            without "_add", or the Add's own), the chain's first layer's, the
            identity layer's.
        kind: "residual", "chain" or "identity".
        nodes: positions in `GraphView.nodes` of the calls that go with it.
        input / output: keys of the tensors it reads and writes; bypassed,
            `output` is replaced by `input`.
        layers: names of the layers it holds.
        reason: why it cannot be removed (None when it can).
        note: a further fact (e.g. a kernel close to the identity).
    """

    name: str
    kind: str
    nodes: tuple[int, ...]
    input: int | None
    output: int | None
    layers: tuple[str, ...]
    reason: str | None = None
    note: str | None = None

    @property
    def removable(self) -> bool:
        return self.reason is None

    @property
    def free(self) -> bool:
        """An identity at inference: removing it costs no accuracy and saves nothing."""
        return self.kind == IDENTITY


@dataclasses.dataclass
class Graph:
    """The view with who reads each tensor."""

    view: GraphView
    consumers: dict[int, list[int]]
    outputs: set[int]

    @property
    def nodes(self) -> list[GraphNode]:
        return self.view.nodes

    def readers(self, key: int) -> list[int]:
        return self.consumers.get(key, [])

    def producer_index(self, key: int) -> int | None:
        return self._producer.get(key)

    def __post_init__(self):
        self._producer = {k: i for i, n in enumerate(self.view.nodes) for k in n.outputs}


def _graph(view: GraphView) -> Graph:
    consumers: dict[int, list[int]] = {}
    for i, node in enumerate(view.nodes):
        for key in node.inputs:
            consumers.setdefault(key, []).append(i)
    return Graph(view, consumers, set(view.outputs))


def _is_add(node: GraphNode) -> bool:
    if node.kind == "Add":  # the Add layer, or Keras 3's `x + y` / keras.ops.add
        return True
    if node.kind == "TFOpLambda":  # tf_keras' `x + y`
        return node.layer.get_config().get("function") in _TF_ADD_FUNCTIONS
    return False


def _activation_signature(node: GraphNode):
    """("relu", max_value) for an idempotent activation layer, else None."""
    if not hasattr(node.layer, "get_config"):
        return None
    config = node.layer.get_config()
    if node.kind == "ReLU":
        if config.get("negative_slope", 0.0) or config.get("threshold", 0.0):
            return None
        top = config.get("max_value")
        return ("relu", None if top is None else float(top))
    if node.kind == "Activation":
        name = config.get("activation")
        if name == "relu":
            return ("relu", None)
        if name == "relu6":
            return ("relu", 6.0)
    return None


def _shape_text(shape) -> str:
    return str(tuple(shape))


def _branch(g: Graph, skip: int, branch: int) -> tuple[list[int] | None, str | None]:
    """The calls computing `branch` from `skip` alone, or (None, why not)."""
    start = g.producer_index(branch)
    if start is None:
        return None, "its input is a model input"
    found, stack = set(), [start]
    while stack:
        i = stack.pop()
        if i in found:
            continue
        node = g.nodes[i]
        if node.is_input:
            return None, "projection"
        found.add(i)
        for key in node.inputs:
            if key == skip:
                continue
            parent = g.producer_index(key)
            if parent is None:
                return None, "projection"
            stack.append(parent)
    if not any(k == skip for i in found for k in g.nodes[i].inputs):
        return None, "projection"
    members = sorted(found)
    for i in members:
        node = g.nodes[i]
        for key in node.outputs:
            if key in g.outputs:
                return None, f"the branch's layer '{node.name}' produces a model output"
            readers = g.readers(key)
            inside = all(r in found for r in readers)
            if key == branch:
                continue
            if not inside:
                outside = next(g.nodes[r].name for r in readers if r not in found)
                return None, (
                    f"the branch's tensor from '{node.name}' is also read by '{outside}' outside "
                    "the block"
                )
        if g.view.calls.get(node.name, 1) > 1:
            return (
                None,
                f"its layer '{node.name}' is shared (called {g.view.calls[node.name]} times)",
            )
    return members, None


def _residual_name(add: GraphNode, taken: set[str]) -> str:
    """The block's name: its Add layer's without "_add" ("conv2_block2_add" -> "conv2_block2")
    when no layer has that name, else the Add's own."""
    name = add.name
    base = name[: -len("_add")] if name.endswith("_add") else ""
    return base if base and base not in taken else name


def _residual(g: Graph, index: int, taken: set[str]) -> Unit | None:
    add = g.nodes[index]
    if len(add.inputs) != 2 or add.inputs[0] == add.inputs[1]:
        return None
    name = _residual_name(add, taken)
    out = add.outputs[0]
    reasons = []
    for skip, branch in ((add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])):
        if g.view.shapes.get(skip) != g.view.shapes.get(out):
            reasons.append(
                f"the addition broadcasts {_shape_text(g.view.shapes.get(skip))} to "
                f"{_shape_text(g.view.shapes.get(out))}"
            )
            continue
        if g.readers(branch) != [index]:
            reasons.append("the branch's output is also read outside the block")
            continue
        members, why = _branch(g, skip, branch)
        if members is None:
            reasons.append(why)
            continue
        nodes = [*members, index]
        output = out
        readers = g.readers(out)
        if len(readers) == 1 and out not in g.outputs:
            after = g.nodes[readers[0]]
            before = g.producer_index(skip)
            signature = _activation_signature(after)
            if (
                signature is not None
                and before is not None
                and _activation_signature(g.nodes[before]) == signature
                and g.view.calls.get(after.name, 1) == 1
            ):
                nodes.append(readers[0])
                output = after.outputs[0]
        return Unit(
            name,
            RESIDUAL,
            tuple(sorted(nodes)),
            skip,
            output,
            tuple(g.nodes[i].name for i in sorted(nodes)),
        )
    specific = [r for r in reasons if r != "projection"]
    reason = (
        specific[0]
        if specific
        else (
            "neither input of the addition is the block's input: the shortcut has layers of its "
            "own (a projection) or two branches merge"
        )
    )
    return Unit(name, RESIDUAL, (index,), None, out, (add.name,), reason=reason)


def _kernel_identity_distance(node: GraphNode) -> float | None:
    """||W - I|| / ||I|| (bias included) for a square Dense / stride-1 Conv kernel."""
    layer = node.layer
    config = layer.get_config()
    weights = layer.get_weights()
    if not weights:
        return None
    kernel = np.asarray(weights[0], np.float64)
    if node.kind == "Dense":
        if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1]:
            return None
        eye = np.eye(kernel.shape[0])
    elif node.kind in ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D"):
        strides = config.get("strides", 1)
        strides = strides if isinstance(strides, (list, tuple)) else [strides]
        if any(s != 1 for s in strides) or config.get("groups", 1) != 1:
            return None
        if any(k % 2 == 0 for k in kernel.shape[:-2]):
            return None
        depthwise = node.kind.startswith("Depthwise")
        if not depthwise and kernel.shape[-1] != kernel.shape[-2]:
            return None
        if depthwise and kernel.shape[-1] != 1:
            return None
        eye = np.zeros_like(kernel)
        centre = tuple(k // 2 for k in kernel.shape[:-2])
        eye[centre] = np.ones((kernel.shape[-2], 1)) if depthwise else np.eye(kernel.shape[-1])
    else:
        return None
    if config.get("activation", "linear") not in ("linear", None):
        return None
    diff = float(np.sum((kernel - eye) ** 2))
    if len(weights) > 1 and config.get("use_bias", False):
        diff += float(np.sum(np.asarray(weights[1], np.float64) ** 2))
    return float(np.sqrt(diff / np.sum(eye**2)))


def _chain(g: Graph, index: int) -> Unit:
    first = g.nodes[index]
    nodes = [index]
    tail = first.outputs[0]
    while tail not in g.outputs:
        readers = g.readers(tail)
        if len(readers) != 1:
            break
        follower = g.nodes[readers[0]]
        if (
            follower.kind not in FOLLOWERS
            or len(follower.inputs) != 1
            or len(follower.outputs) != 1
        ):
            break
        nodes.append(readers[0])
        tail = follower.outputs[0]
    source = first.inputs[0]
    layers = tuple(g.nodes[i].name for i in nodes)
    shape_in, shape_out = g.view.shapes.get(source), g.view.shapes.get(tail)
    reason = None
    if shape_in != shape_out:
        reason = f"it changes the shape {_shape_text(shape_in)} -> {_shape_text(shape_out)}"
    elif g.view.tensors[source].dtype != g.view.tensors[tail].dtype:
        reason = (
            f"it changes the dtype {g.view.tensors[source].dtype} -> {g.view.tensors[tail].dtype}"
        )
    elif tail in g.outputs:
        reason = f"its layer '{g.nodes[nodes[-1]].name}' produces a model output"
    else:
        shared = [g.nodes[i].name for i in nodes if g.view.calls.get(g.nodes[i].name, 1) > 1]
        if shared:
            reason = f"its layer '{shared[0]}' is shared (called {g.view.calls[shared[0]]} times)"
    note = None
    if reason is None:
        distance = _kernel_identity_distance(first)
        if distance is not None and distance <= NEAR_IDENTITY:
            note = f"'{first.name}' is close to an identity map (relative distance {distance:.2g})"
    return Unit(first.name, CHAIN, tuple(nodes), source, tail, layers, reason=reason, note=note)


def _identity(g: Graph, index: int) -> Unit:
    node = g.nodes[index]
    out = node.outputs[0]
    reason = None
    if out in g.outputs:
        reason = f"it produces a model output (the output keeps the name '{node.name}')"
    elif g.view.calls.get(node.name, 1) > 1:
        reason = f"it is shared (called {g.view.calls[node.name]} times)"
    return Unit(node.name, IDENTITY, (index,), node.inputs[0], out, (node.name,), reason=reason)


def find_units(view: GraphView) -> list[Unit]:
    """Every candidate unit of the model, removable or not, in graph order.

    Example:
        >>> [u.name for u in find_units(graph_view(resnet)) if u.removable][:2]
        ['conv2_block2', 'conv2_block3']
    """
    g = _graph(view)
    units: list[Unit] = []
    covered: set[int] = set()
    taken = set(view.calls)
    for i, node in enumerate(g.nodes):
        if not node.is_input and _is_add(node):
            unit = _residual(g, i, taken)
            if unit is not None:
                units.append(unit)
                taken.add(unit.name)
                if unit.removable:
                    covered.update(unit.nodes)
    for i, node in enumerate(g.nodes):
        if node.is_input or len(node.inputs) != 1 or len(node.outputs) != 1:
            continue
        if node.kind in INFERENCE_IDENTITIES:
            units.append(_identity(g, i))
        elif node.kind in MAIN_LAYERS and i not in covered:
            units.append(_chain(g, i))
    first_node = {id(u): min(u.nodes) for u in units}
    return sorted(units, key=lambda u: first_node[id(u)])


def graph_of(view: GraphView) -> Graph:
    """The view with each tensor's readers (for the rebuild and the importance runs)."""
    return _graph(view)
