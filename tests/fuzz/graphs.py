"""Random small Keras 3 model graphs, as data (a spec) and built (a keras.Model).

A spec is plain data: a list of inputs and a list of nodes, each node an op
with its settings and the indices of the tensors it reads. The strategy
`graph_specs()` draws specs that are valid by construction (shapes are
tracked as the graph grows), from the layers keras_squeeze supports:
Conv1D/2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose, Dense,
pooling, BatchNormalization / LayerNormalization, activations,
Add / Multiply / Concatenate, Reshape / Flatten; one or two inputs, one or
two outputs. `build(spec)` makes the model; `spec_source(spec)` prints it as
Python for a regression test.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
from hypothesis import strategies as st

import keras_squeeze as ks
from tests.fuzz import cases

# Mostly narrow (fast), sometimes wide enough for the training stages' size floors.
WIDTHS = st.one_of(st.integers(1, 8), st.sampled_from([16, 32]))
UNITS = st.one_of(st.integers(1, 12), st.sampled_from([32, 64]))
ACTIVATIONS = ("relu", "relu6", "sigmoid", "tanh", "linear", "swish", "hard_sigmoid")


@dataclasses.dataclass(frozen=True)
class Node:
    op: str
    inputs: tuple[int, ...]
    settings: tuple[tuple[str, object], ...] = ()

    def get(self, key, default=None):
        return dict(self.settings).get(key, default)


@dataclasses.dataclass(frozen=True)
class Spec:
    """Input shapes (no batch axis), nodes in order, and the indices of the output tensors."""

    inputs: tuple[tuple[int, ...], ...]
    nodes: tuple[Node, ...]
    outputs: tuple[int, ...]


def _conv_out(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1


@st.composite
def _node(draw, shapes: list[tuple[int, ...]]):
    """One node reading live tensors, and the shape it makes; None when nothing applies."""
    i = draw(st.integers(0, len(shapes) - 1))
    shape = shapes[i]
    rank = len(shape)
    options = ["activation", "batchnorm", "layernorm"]
    if rank == 3:
        options += ["conv2d", "depthwise", "separable", "transpose", "pool2d", "gap2d", "flatten"]
        options += ["to_sequence"]
    elif rank == 2:
        options += ["conv1d", "pool1d", "gap1d", "flatten"]
    else:
        options += ["dense", "dense", "to_sequence"]
    same = [j for j, s in enumerate(shapes) if s == shape and j != i]
    if same:
        options += ["add", "multiply", "concatenate"]
    mergeable = [
        j for j, s in enumerate(shapes) if j != i and len(s) == rank and s[:-1] == shape[:-1]
    ]
    if mergeable and not same:
        options += ["concatenate"]
    op = draw(st.sampled_from(options))
    if op == "activation":
        return Node(op, (i,), (("fn", draw(st.sampled_from(ACTIVATIONS))),)), shape
    if op in ("batchnorm", "layernorm"):
        return Node(op, (i,)), shape
    if op in ("add", "multiply"):
        return Node(op, (i, draw(st.sampled_from(same)))), shape
    if op == "concatenate":
        j = draw(st.sampled_from(same or mergeable))
        return Node(op, (i, j)), (*shape[:-1], shape[-1] + shapes[j][-1])
    if op == "flatten":
        return Node(op, (i,)), (int(np.prod(shape)),)
    if op in ("gap2d", "gap1d"):
        return Node(op, (i,)), (shape[-1],)
    if op == "dense":
        units = draw(UNITS)
        act = draw(st.sampled_from(ACTIVATIONS))
        return Node(op, (i,), (("units", units), ("activation", act))), (units,)
    if op == "to_sequence":
        if rank == 1:
            return Node("reshape", (i,), (("target", (shape[0], 1)),)), (shape[0], 1)
        target = (shape[0] * shape[1], shape[2])
        return Node("reshape", (i,), (("target", target),)), target
    if op == "conv1d":
        kernel = draw(st.sampled_from([1, 2, 3]))
        padding = draw(st.sampled_from(["same", "valid"])) if shape[0] >= kernel else "same"
        stride = draw(st.sampled_from([1, 1, 2]))
        filters = draw(WIDTHS)
        out = (_conv_out(shape[0], kernel, stride, padding), filters)
        settings = (("filters", filters), ("kernel", kernel), ("stride", stride))
        return Node(op, (i,), (*settings, ("padding", padding))), out
    if op == "pool1d":
        if shape[0] < 2:
            return Node("activation", (i,), (("fn", "relu"),)), shape
        return Node(op, (i,), (("kind", draw(st.sampled_from(["max", "avg"]))),)), (
            shape[0] // 2,
            shape[1],
        )
    h, w, c = shape
    if op == "pool2d":
        if min(h, w) < 2:
            return Node("activation", (i,), (("fn", "relu"),)), shape
        return Node(op, (i,), (("kind", draw(st.sampled_from(["max", "avg"]))),)), (
            h // 2,
            w // 2,
            c,
        )
    kernel = draw(st.sampled_from([1, 3]))
    stride = draw(st.sampled_from([1, 1, 2]))
    if op == "transpose":
        filters = draw(WIDTHS)
        settings = (("filters", filters), ("kernel", kernel), ("stride", stride))
        return Node(op, (i,), (*settings, ("padding", "same"))), (h * stride, w * stride, filters)
    padding = draw(st.sampled_from(["same", "valid"])) if min(h, w) >= kernel else "same"
    out_hw = (_conv_out(h, kernel, stride, padding), _conv_out(w, kernel, stride, padding))
    if op == "depthwise":
        multiplier = draw(st.integers(1, 2))
        settings = (("multiplier", multiplier), ("kernel", kernel), ("stride", stride))
        return Node(op, (i,), (*settings, ("padding", padding))), (*out_hw, c * multiplier)
    filters = draw(WIDTHS)
    act = draw(st.sampled_from(ACTIVATIONS))
    settings = (("filters", filters), ("kernel", kernel), ("stride", stride), ("padding", padding))
    return Node(op, (i,), (*settings, ("activation", act))), (*out_hw, filters)


INPUT_SHAPES = st.one_of(
    st.tuples(st.integers(4, 8), st.integers(4, 8), st.integers(1, 3)),  # images
    st.tuples(st.integers(4, 8), st.integers(1, 3)),  # sequences
    st.tuples(st.integers(2, 8)),  # vectors
)


@st.composite
def graph_specs(
    draw, max_nodes: int = 6, max_inputs: int = 2, max_outputs: int = 2, min_nodes: int = 1
):
    """A Spec: 1-2 inputs, `min_nodes` to `max_nodes` drawn nodes, 1-2 dense heads.

    Every tensor nothing reads (a leaf; an unused input too) feeds a head, so
    the whole graph reaches the outputs.
    """
    inputs = tuple(draw(st.lists(INPUT_SHAPES, min_size=1, max_size=max_inputs)))
    shapes = list(inputs)
    nodes: list[Node] = []

    def add(node: Node, shape) -> int:
        nodes.append(node)
        shapes.append(tuple(shape))
        return len(shapes) - 1

    for _ in range(draw(st.integers(min_nodes, max_nodes))):
        add(*draw(_node(shapes)))
    consumed = {j for n in nodes for j in n.inputs}
    leaves = [t for t in range(len(shapes)) if t not in consumed]
    two = draw(st.integers(1, max_outputs)) == 2 and len(leaves) > 1
    groups = [leaves[:-1], leaves[-1:]] if two else [leaves]
    outputs = []
    for group in groups:
        vectors = [
            t if len(shapes[t]) == 1 else add(Node("flatten", (t,)), (int(np.prod(shapes[t])),))
            for t in group
        ]
        while len(vectors) > 1:
            a, b = vectors[:2]
            vectors = [
                add(Node("concatenate", (a, b)), (shapes[a][0] + shapes[b][0],)),
                *vectors[2:],
            ]
        units = draw(st.integers(1, 6))
        act = draw(st.sampled_from(["softmax", "linear"]))
        outputs.append(
            add(Node("dense", (vectors[0],), (("units", units), ("activation", act))), (units,))
        )
    return Spec(inputs, tuple(nodes), tuple(outputs))


def build(spec: Spec, seed: int = 0):
    """The Keras 3 functional model of a spec (weights from `seed`)."""
    import keras

    keras.utils.set_random_seed(seed)
    L = keras.layers
    tensors = [keras.Input(shape, name=f"input_{k}") for k, shape in enumerate(spec.inputs)]
    for n, node in enumerate(spec.nodes):
        x = [tensors[j] for j in node.inputs]
        g = node.get
        name = f"{node.op}_{n}"
        if node.op == "activation":
            layer = L.Activation(g("fn"), name=name)
        elif node.op == "batchnorm":
            layer = L.BatchNormalization(name=name)
        elif node.op == "layernorm":
            layer = L.LayerNormalization(name=name)
        elif node.op == "add":
            layer = L.Add(name=name)
        elif node.op == "multiply":
            layer = L.Multiply(name=name)
        elif node.op == "concatenate":
            layer = L.Concatenate(axis=-1, name=name)
        elif node.op == "flatten":
            layer = L.Flatten(name=name)
        elif node.op == "gap2d":
            layer = L.GlobalAveragePooling2D(name=name)
        elif node.op == "gap1d":
            layer = L.GlobalAveragePooling1D(name=name)
        elif node.op == "dense":
            layer = L.Dense(g("units"), activation=g("activation"), name=name)
        elif node.op == "reshape":
            layer = L.Reshape(g("target"), name=name)
        elif node.op == "conv1d":
            layer = L.Conv1D(
                g("filters"), g("kernel"), strides=g("stride"), padding=g("padding"), name=name
            )
        elif node.op == "pool1d":
            layer = (L.MaxPooling1D if g("kind") == "max" else L.AveragePooling1D)(2, name=name)
        elif node.op == "pool2d":
            layer = (L.MaxPooling2D if g("kind") == "max" else L.AveragePooling2D)(2, name=name)
        elif node.op == "conv2d":
            layer = L.Conv2D(
                g("filters"),
                g("kernel"),
                strides=g("stride"),
                padding=g("padding"),
                activation=g("activation"),
                name=name,
            )
        elif node.op == "separable":
            layer = L.SeparableConv2D(
                g("filters"),
                g("kernel"),
                strides=g("stride"),
                padding=g("padding"),
                activation=g("activation"),
                name=name,
            )
        elif node.op == "depthwise":
            layer = L.DepthwiseConv2D(
                g("kernel"),
                strides=g("stride"),
                padding=g("padding"),
                depth_multiplier=g("multiplier"),
                name=name,
            )
        elif node.op == "transpose":
            layer = L.Conv2DTranspose(
                g("filters"), g("kernel"), strides=g("stride"), padding="same", name=name
            )
        else:
            raise ValueError(f"unknown op {node.op}")
        tensors.append(layer(x if len(x) > 1 else x[0]))
    ins = tensors[: len(spec.inputs)]
    outs = [tensors[t] for t in spec.outputs]
    model = keras.Model(
        ins if len(ins) > 1 else ins[0], outs if len(outs) > 1 else outs[0], name="random_graph"
    )
    _perturb_normalization(model, seed)
    return model


def _perturb_normalization(model, seed: int) -> None:
    """Non-trivial BatchNormalization statistics, as a trained model has."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype(gamma.dtype),
                    rng.normal(0, 0.1, beta.shape).astype(beta.dtype),
                    rng.normal(0, 0.1, mean.shape).astype(mean.dtype),
                    rng.uniform(0.5, 1.5, var.shape).astype(var.dtype),
                ]
            )


def sample_inputs(spec: Spec, count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (count, *shape)).astype(np.float32) for shape in spec.inputs]


def spec_source(spec: Spec) -> str:
    """The spec as Python source, to paste into a regression test."""
    nodes = ",\n        ".join(
        f"Node({n.op!r}, {n.inputs!r}" + (f", {n.settings!r})" if n.settings else ")")
        for n in spec.nodes
    )
    return f"Spec(\n    inputs={spec.inputs!r},\n    nodes=(\n        {nodes},\n    ),\n    outputs={spec.outputs!r},\n)"


PTQ_RECIPES = ("dynamic", "float16", "int8", "int16x8")
TRAINING_RECIPES = ("prune", "prune-2:4", "cluster", "qat", "prune-cluster-qat", "channel-prune")


def labels(spec: Spec, model, count: int, seed: int = 0):
    """Labels for each output: class ids under a softmax head, real targets otherwise."""
    rng = np.random.default_rng(seed + 1)
    out = []
    for tensor in model.outputs:
        units = int(tensor.shape[-1])
        head = tensor._keras_history[0]
        if head.get_config().get("activation") == "softmax":
            out.append(rng.integers(0, units, count))
        else:
            out.append(rng.normal(0, 1, (count, units)).astype(np.float32))
    return out if len(out) > 1 else out[0]


def _snapshot(model) -> list[np.ndarray]:
    return [np.array(w, copy=True) for w in model.get_weights()]


# What save(formats=("tflite",)) writes, besides the report_*.png charts.
SAVED = ("model.tflite", "report.html", "report.json", "report.md")


def _saved_file(name: str) -> bool:
    return name in SAVED or (name.startswith("report_") and name.endswith(".png"))


def _files(folder) -> list[str]:
    root = pathlib.Path(folder)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def run_recipe(spec: Spec, recipe: str, workdir, distill: bool | None = None, seed: int = 0):
    """compress() and save() of the spec's model with one recipe, on tiny data.

    Post-training recipes calibrate on 16 samples; training recipes fine-tune
    1 epoch of 2 steps (16 samples, batch 8), distilling (the default) or on
    labels (distill=False). Returns a cases.Outcome: READ (a verified .tflite
    saved), REFUSED, RAW, HANG, or MUTATED (the model passed in changed) /
    PARTIAL (a failed call left files, or a saved one left more than it should).
    """
    model = build(spec, seed)
    x = sample_inputs(spec, 16, seed)
    data = x if len(x) > 1 else x[0]
    kwargs = dict(representative_data=data, num_calibration_samples=16, verbose=0)
    if recipe in TRAINING_RECIPES:
        train = data if distill is not False else (data, labels(spec, model, 16, seed))
        kwargs.update(train_data=train, epochs=1, batch_size=8, distill=distill)
    out = pathlib.Path(workdir) / f"out_{recipe}"
    before = _snapshot(model)

    def job():
        result = ks.compress(model, recipe, **kwargs)
        result.save(out, formats=("tflite",))

    outcome = cases.run_case(job, bound=900)
    after = _snapshot(model)
    if len(after) != len(before) or any(
        not np.array_equal(a, b) for a, b in zip(before, after, strict=True)
    ):
        return cases.Outcome(
            cases.MUTATED, f"{recipe}: the model's weights changed", outcome.seconds
        )
    saved = _files(out)
    left = [f for f in _files(workdir) if not f.startswith(out.name)] + [
        f for f in saved if not _saved_file(f)
    ]
    if outcome.kind == cases.READ and not set(SAVED) <= set(saved):
        return cases.Outcome(cases.PARTIAL, f"{recipe}: saved {saved}", outcome.seconds)
    if outcome.kind != cases.READ and _files(out):
        return cases.Outcome(
            cases.PARTIAL, f"{recipe}: a failed call left {_files(out)}", outcome.seconds
        )
    if left:
        return cases.Outcome(cases.PARTIAL, f"{recipe}: left {left}", outcome.seconds)
    return outcome
