"""Finding removable units on the graph of either flavour, and the reasons for the others."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze.channel_pruning.graph import graph_view
from keras_squeeze.depth_pruning import find_units
from tests.conftest import keras
from tests.depth_pruning.builders import residual_cnn


def _units(model):
    return {u.name: u for u in find_units(graph_view(model))}


def test_residual_blocks_chain_layers_and_identities(flavour):
    units = _units(residual_cnn(flavour))
    assert list(units) == ["stem", "s1_b0", "s1_b1", "down", "s2_b0", "s2_b1", "drop", "logits"]
    block = units["s1_b1"]
    assert block.kind == "residual" and block.removable
    # the ReLU after the addition goes with the block: relu(relu(x)) == relu(x)
    assert block.layers == (
        "s1_b1_conv1",
        "s1_b1_bn1",
        "s1_b1_relu1",
        "s1_b1_conv2",
        "s1_b1_bn2",
        "s1_b1_add",
        "s1_b1_out",
    )
    assert units["drop"].kind == "identity" and units["drop"].removable and units["drop"].free
    assert units["stem"].reason == "it changes the shape (None, 8, 8, 1) -> (None, 8, 8, 8)"
    assert units["down"].reason == "it changes the shape (None, 8, 8, 8) -> (None, 4, 4, 16)"
    assert units["logits"].reason == "it changes the shape (None, 16) -> (None, 10)"


def test_a_sequential_chain(flavour):
    k = keras(flavour)
    L = k.layers
    model = k.Sequential(
        [
            k.Input((6, 6, 4)),
            L.Conv2D(4, 3, padding="same", activation="relu", name="c1"),
            L.BatchNormalization(name="bn1"),
            L.Conv2D(8, 3, name="c2"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(8, name="d1"),
            L.Dense(8, activation="relu", name="d2"),
            L.Dense(8, name="out"),
        ]
    )
    model.get_layer("d1").set_weights([np.eye(8, dtype="float32"), np.zeros(8, "float32")])
    units = _units(model)
    assert units["c1"].removable and units["c1"].layers == ("c1", "bn1")
    assert units["c2"].reason == "it changes the shape (None, 6, 6, 4) -> (None, 4, 4, 8)"
    assert units["d1"].removable and "close to an identity map" in units["d1"].note
    assert units["d2"].removable and units["d2"].note is None
    assert units["out"].reason == "its layer 'out' produces a model output"


def test_additions_that_are_not_residual_blocks(flavour):
    k = keras(flavour)
    L = k.layers
    x = k.Input((4, 4, 3), name="x")
    a = L.Conv2D(3, 1, name="proj_a")(x)
    b = L.Conv2D(3, 1, name="proj_b")(x)
    merged = L.Add(name="two_branches_add")([a, b])
    shared = L.Conv2D(3, 1, padding="same", name="shared")
    s = L.Add(name="uses_shared_add")([merged, shared(merged)])
    s = shared(s)
    y = L.Conv2D(3, 1, name="leaky_conv")(s)
    z = L.Add(name="leaky_add")([s, y])
    out = L.Concatenate(name="cat")([z, y])
    wide = L.Conv2D(3, 1, name="wide")(out)
    rows = L.AveragePooling2D((4, 1), name="rows")(wide)
    cols = L.AveragePooling2D((1, 4), name="cols")(wide)
    broad = L.Add(name="broadcast_add")([rows, cols])
    pooled = L.Add(name="pooled_add")([broad, L.GlobalAveragePooling2D(keepdims=True)(broad)])
    units = _units(k.Model(x, pooled))
    assert "a projection" in units["two_branches"].reason
    assert units["uses_shared"].reason == "its layer 'shared' is shared (called 2 times)"
    assert units["leaky"].reason == "the branch's output is also read outside the block"
    assert units["broadcast"].reason == "the addition broadcasts (None, 1, 4, 3) to (None, 4, 4, 3)"
    assert units["pooled"].removable  # x + pool(x): the branch reads x alone
    assert units["shared"].reason == "its layer 'shared' is shared (called 2 times)"


def test_addition_written_as_plus(flavour):
    k = keras(flavour)
    x = k.Input((8,), name="x")
    h = k.layers.Dense(8, name="d")(x)
    y = x + k.layers.Dense(8, name="branch")(k.layers.ReLU(name="r")(h))
    model = k.Model(x, k.layers.Dense(2, name="head")(y))
    residual = [u for u in find_units(graph_view(model)) if u.kind == "residual"]
    assert len(residual) == 1 and residual[0].removable
    assert residual[0].layers[:3] == ("d", "r", "branch")


@pytest.mark.parametrize("flavour", ["keras3"])
def test_nested_units_keep_graph_order(flavour):
    units = find_units(graph_view(residual_cnn(flavour, blocks=1)))
    assert [u.kind for u in units] == [
        "chain",
        "residual",
        "chain",
        "residual",
        "identity",
        "chain",
    ]
