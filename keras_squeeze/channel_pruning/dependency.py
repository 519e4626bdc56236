"""Which channels must be pruned together: dependency analysis on the layer graph.

Every channel a layer creates is an *element*. Each tensor carries a *label*:
the element behind each position of its last (channel) axis. Labels flow
through the graph:

- Conv / Dense / SeparableConv / ConvTranspose outputs get new elements;
- BatchNormalization, DepthwiseConv (depth_multiplier 1), PReLU, activations,
  pooling, padding, dropout, global pooling pass their input's label on;
- Add / Subtract / Multiply / Average / Maximum / Minimum tie their inputs'
  elements position by position (a (1, 1, C) squeeze-excite scale ties to
  the (H, W, C) feature map it multiplies; a size-1 channel axis broadcasts
  and ties nothing);
- Concatenate on the channel axis joins labels (channel offsets);
- Flatten of (H, W, C) repeats the label H*W times, NHWC order, so a kept
  channel keeps all its H*W rows of the next Dense kernel;
- Reshape that keeps the last axis passes the label on.

Tied elements are merged with union-find. A *group* is a set of producer
layers whose channels are tied one-to-one; pruning keeps the same
components in all of them. Elements reaching a model output, a model input,
a layer in the skip list or a layer that is not understood (Lambda, custom
layers, Reshape across the channel axis, shared layers, LayerNormalization,
...) are frozen: their whole group is left as it is, with the reason.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_squeeze.channel_pruning import rules
from keras_squeeze.channel_pruning.graph import GraphNode, GraphView


class _Unanalysable(Exception):
    """Raised inside the walk when a layer cannot be analysed; carries the reason."""


@dataclasses.dataclass
class Group:
    """Producers whose output channels are pruned together.

    Attributes:
        id: index in `Analysis.groups`.
        producers: names of the layers whose output channels form the group
            (or of the input / unanalysable layer that made them).
        size: channels per producer (components of the group).
        channels: producer -> `channels[p][k]`, the channel of producer `p`
            that belongs to component `k`.
        reasons: why the group is left whole; empty when it can be pruned.
    """

    id: int
    producers: list[str]
    size: int
    channels: dict[str, np.ndarray]
    reasons: list[str]

    @property
    def prunable(self) -> bool:
        return not self.reasons

    @property
    def label(self) -> str:
        return " + ".join(self.producers)


@dataclasses.dataclass
class NodeLabels:
    """One call of a layer with the labels of its input and output tensors."""

    node: GraphNode
    rule: rules.Rule | None
    inputs: list[np.ndarray | None]
    outputs: list[np.ndarray | None]
    reason: str | None


@dataclasses.dataclass
class Analysis:
    """The result of `analyze`: groups and every call's labels.

    Attributes:
        view: the graph.
        nodes: every call with its labels, in topological order.
        groups: all groups, prunable or not.
        element_group / element_component: for each element, its group and
            its component index in that group (-1 in unevenly coupled groups).
        layer_reasons: layer name -> why that layer itself is not analysable.
    """

    view: GraphView
    nodes: list[NodeLabels]
    groups: list[Group]
    element_group: np.ndarray
    element_component: np.ndarray
    layer_reasons: dict[str, str]

    @property
    def prunable(self) -> list[Group]:
        return [g for g in self.groups if g.prunable]

    def group_of(self, layer_name: str) -> Group | None:
        for g in self.groups:
            if layer_name in g.producers:
                return g
        return None

    def kept_elements(self, kept: dict[int, np.ndarray]) -> np.ndarray:
        """Boolean mask over elements from kept components per prunable group id."""
        mask = np.ones(len(self.element_group), bool)
        for gid, comps in kept.items():
            in_group = self.element_group == gid
            keep = np.zeros(self.groups[gid].size, bool)
            keep[np.asarray(comps, int)] = True
            mask[in_group] = keep[self.element_component[in_group]]
        return mask


class _Elements:
    """Union-find over channel elements, with each element's owner and freeze reasons."""

    def __init__(self):
        self.parent: list[int] = []
        self.owner: list[str] = []
        self.frozen: dict[int, list[str]] = {}
        self.by_owner: dict[str, np.ndarray] = {}

    def new(self, owner: str, count: int, reason: str | None = None) -> np.ndarray:
        start = len(self.parent)
        self.parent.extend(range(start, start + count))
        self.owner.extend([owner] * count)
        label = np.arange(start, start + count, dtype=np.int64)
        self.by_owner[owner] = label
        if reason:
            self.freeze(label, reason)
        return label

    def find(self, e: int) -> int:
        root = e
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[e] != root:
            self.parent[e], e = root, self.parent[e]
        return root

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            rx, ry = self.find(x), self.find(y)
            if rx != ry:
                self.parent[ry] = rx

    def freeze(self, label: np.ndarray | None, reason: str) -> None:
        if label is None:
            return
        for e in np.unique(label).tolist():
            reasons = self.frozen.setdefault(e, [])
            if reason not in reasons:
                reasons.append(reason)


def _channels(shape) -> int | None:
    if len(shape) < 2 or shape[-1] is None:
        return None
    return int(shape[-1])


def _describe_unknown(node: GraphNode, calls: int) -> str:
    layer = node.layer
    if calls > 1:
        return f"shared layer (called {calls} times in the model)"
    if not hasattr(layer, "get_weights"):
        return "a backend operation, not a layer"
    if hasattr(layer, "layers") and hasattr(layer, "inputs"):
        return "a nested model (prune it separately)"
    if node.kind == "Reshape":
        return "reshapes across the channel axis"
    if node.kind in ("Lambda", "TFOpLambda", "SlicingOpLambda"):
        return "a Lambda: its effect on channels is unknown"
    return "its effect on channels is unknown (not in the table of layers the analysis reads)"


def _merge(elements: _Elements, labels: list[np.ndarray]) -> np.ndarray:
    width = max(len(x) for x in labels)
    full = [x for x in labels if len(x) == width]
    if any(len(x) not in (1, width) for x in labels):
        raise _Unanalysable(
            f"merges channel axes of sizes {[len(x) for x in labels]} (not equal or 1)"
        )
    for other in full[1:]:
        elements.union(full[0], other)
    return full[0]


def _walk_node(elements, info: NodeLabels, view: GraphView) -> list[np.ndarray | None]:
    """Returns the output labels of one analysable call (raises _Unanalysable)."""
    node, rule = info.node, info.rule
    ins = info.inputs
    in_shapes = [view.shapes[k] for k in node.inputs]
    out_shapes = [view.shapes[k] for k in node.outputs]
    if any(x is None for x in ins):
        raise _Unanalysable("an input's channel axis has no static size")
    if rule.check is not None:
        reason = rule.check(node.layer, in_shapes, out_shapes)
        if reason:
            raise _Unanalysable(reason)
    out_c = [_channels(s) for s in out_shapes]
    role = rule.role
    if role == "producer":
        if len(ins) != 1 or out_c[0] is None:
            raise _Unanalysable("expected one input and a static number of output channels")
        label = elements.new(node.name, out_c[0])
        reason = rule.output_check(node.layer)
        if reason:
            elements.freeze(label, f"{node.kind} '{node.name}': {reason}")
        return [label]
    if role == "merge":
        return [_merge(elements, ins)]
    if role == "concat":
        axis = node.layer.get_config().get("axis", -1)
        rank = len(out_shapes[0])
        if axis % rank == rank - 1:
            return [np.concatenate(ins)]
        return [_merge(elements, ins)]
    if len(ins) != 1:
        raise _Unanalysable(f"expected one input, got {len(ins)}")
    label, in_shape = ins[0], in_shapes[0]
    if role == "flatten":
        spatial = in_shape[1:-1]
        if any(d is None for d in spatial):
            raise _Unanalysable("flattens a tensor whose spatial size is not static")
        return [np.tile(label, int(np.prod(spatial, dtype=np.int64)))]
    if role == "reshape":
        target = list(node.layer.get_config()["target_shape"])
        if not target or target[-1] != len(label) or out_c[0] != len(label):
            raise _Unanalysable("reshapes across the channel axis")
        return [label]
    # "member" and "pass": channel i in, channel i out.
    if out_c[0] != len(label) or len(out_shapes) != 1:
        raise _Unanalysable(f"changes the channel axis from {len(label)} to {out_c[0]}")
    return [label]


def _form_groups(elements: _Elements) -> tuple[list[Group], np.ndarray, np.ndarray]:
    n = len(elements.parent)
    roots = np.array([elements.find(e) for e in range(n)], dtype=np.int64)
    owners = list(elements.by_owner)
    owner_parent = {o: o for o in owners}

    def find(o):
        while owner_parent[o] != o:
            owner_parent[o] = owner_parent[owner_parent[o]]
            o = owner_parent[o]
        return o

    first_owner: dict[int, str] = {}
    for o in owners:
        for r in np.unique(roots[elements.by_owner[o]]).tolist():
            if r in first_owner:
                a, b = find(first_owner[r]), find(o)
                if a != b:
                    owner_parent[b] = a
            else:
                first_owner[r] = o
    members: dict[str, list[str]] = {}
    for o in owners:
        members.setdefault(find(o), []).append(o)
    root_reasons: dict[int, list[str]] = {}
    for e, reasons in elements.frozen.items():
        bucket = root_reasons.setdefault(int(roots[e]), [])
        bucket.extend(r for r in reasons if r not in bucket)

    groups: list[Group] = []
    element_group = np.full(n, -1, np.int64)
    element_component = np.full(n, -1, np.int64)
    for names in members.values():
        gid = len(groups)
        labels = [elements.by_owner[o] for o in names]
        group_roots = [roots[label] for label in labels]
        reasons: list[str] = []
        for r in np.unique(np.concatenate(group_roots)).tolist():
            reasons.extend(x for x in root_reasons.get(r, []) if x not in reasons)
        base = group_roots[0]
        uniform = len(np.unique(base)) == len(base) and all(
            len(r) == len(base) and set(r.tolist()) == set(base.tolist()) for r in group_roots
        )
        channels = {}
        if uniform:
            component_of = {int(r): k for k, r in enumerate(base.tolist())}
            for name, label, r in zip(names, labels, group_roots, strict=True):
                comps = np.array([component_of[int(x)] for x in r], np.int64)
                element_component[label] = comps
                channels[name] = np.argsort(comps, kind="stable")
        else:
            reasons.append(
                "channels coupled unevenly: "
                + ", ".join(f"{o} ({len(x)})" for o, x in zip(names, labels, strict=True))
                + " are tied in different proportions"
            )
        for label in labels:
            element_group[label] = gid
        groups.append(Group(gid, names, len(base), channels, reasons))
    return groups, element_group, element_component


def analyze(view: GraphView, skip: tuple[str, ...] = ()) -> Analysis:
    """Finds the channel groups of a model's graph.

    Args:
        view: the model's GraphView.
        skip: names of layers whose output channels must be left whole (names
            must have been checked to exist).

    Returns:
        An Analysis with every group (prunable or not) and the labels of every call.

    Example:
        >>> analysis = analyze(graph_view(ks.data.example_model()))
        >>> [(g.label, g.size) for g in analysis.prunable]
        [('conv2d', 32), ('conv2d_1', 64), ('conv2d_2', 64), ('dense', 128)]
    """
    elements = _Elements()
    labels: dict[int, np.ndarray | None] = {}
    infos: list[NodeLabels] = []
    layer_reasons: dict[str, str] = {}
    for node in view.nodes:
        calls = view.calls[node.name]
        is_layer = hasattr(node.layer, "get_weights")
        rule = rules.rule_for(node.layer) if calls == 1 and is_layer else None
        info = NodeLabels(node, rule, [labels.get(k) for k in node.inputs], [], None)
        infos.append(info)
        out_shapes = [view.shapes[k] for k in node.outputs]
        if node.is_input or (rule is not None and rule.role == "input"):
            c = _channels(out_shapes[0])
            info.outputs = [elements.new(node.name, c, f"model input '{node.name}'") if c else None]
        else:
            try:
                if rule is None:
                    raise _Unanalysable(_describe_unknown(node, calls))
                info.outputs = _walk_node(elements, info, view)
            except _Unanalysable as e:
                info.reason = str(e)
                layer_reasons.setdefault(node.name, info.reason)
                message = f"{node.kind} '{node.name}': {info.reason}"
                for label in info.inputs:
                    elements.freeze(label, message)
                info.outputs = []
                single = len(out_shapes) == 1 and calls == 1
                for i, s in enumerate(out_shapes):
                    c = _channels(s)
                    owner = node.name if single else f"{node.name}#{len(infos)}:{i}"
                    info.outputs.append(elements.new(owner, c, message) if c else None)
        if node.name in skip:
            for label in info.outputs:
                elements.freeze(label, f"'{node.name}' is in the skip list")
        for k, label in zip(node.outputs, info.outputs, strict=True):
            labels[k] = label
    for k in view.outputs:
        name = view.producer(k).name
        elements.freeze(labels.get(k), f"feeds the model output '{name}'")
    groups, element_group, element_component = _form_groups(elements)
    return Analysis(view, infos, groups, element_group, element_component, layer_reasons)
