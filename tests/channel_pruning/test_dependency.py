"""Channel groups found on small hand-built graphs of both Keras flavours."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze.channel_pruning import analyze, graph_view
from keras_squeeze.errors import ModelError
from tests.channel_pruning.builders import zoo
from tests.conftest import keras


@pytest.fixture(scope="module")
def zoos():
    return {f: zoo(f) for f in ("keras3", "tf_keras")}


def _groups(analysis):
    return {g.label: g for g in analysis.groups}


def _node(analysis, name):
    return next(i for i in analysis.nodes if i.node.name == name)


def test_groups_of_the_zoo(zoos, flavour):
    analysis = analyze(graph_view(zoos[flavour]))
    groups = _groups(analysis)
    prunable = {label: g.size for label, g in groups.items() if g.prunable}
    assert prunable == {
        # residual Add and the squeeze-excite Multiply tie these three layers' outputs
        "stem + project + se_expand": 16,
        "expand": 32,  # expand -> BN -> Depthwise -> BN: one group
        "se_reduce": 16,  # the SE bottleneck is its own group
        "branch_a": 24,
        "branch_b": 40,
        "head": 32,
        "fc": 48,
    }
    assert groups["logits"].reasons == ["feeds the model output 'logits'"]
    assert groups["image"].reasons == ["model input 'image'"]
    # members pass labels through one-to-one
    for member in ("expand_bn", "dw", "dw_bn", "dw_relu"):
        np.testing.assert_array_equal(
            _node(analysis, member).outputs[0], _node(analysis, "expand").outputs[0]
        )


def test_concatenate_offsets_and_flatten_interleaving(zoos, flavour):
    analysis = analyze(graph_view(zoos[flavour]))
    a = _node(analysis, "branch_a").outputs[0]
    b = _node(analysis, "branch_b").outputs[0]
    np.testing.assert_array_equal(_node(analysis, "head").inputs[0], np.concatenate([a, b]))
    head = _node(analysis, "head").outputs[0]
    flat = _node(analysis, "fc").inputs[0]
    assert len(flat) == 10 * 10 * 32  # 8x8 after pooling, padded to 10x10
    # NHWC flatten order: row p * C + c holds channel c of position p
    np.testing.assert_array_equal(flat.reshape(100, 32), np.tile(head, (100, 1)))
    # the SE scale's channels are the feature map's
    group = _groups(analysis)["stem + project + se_expand"]
    comps = analysis.element_component
    for name in ("stem", "project", "se_expand"):
        label = _node(analysis, name).outputs[0]
        np.testing.assert_array_equal(comps[label][group.channels[name]], np.arange(16))


def _conv_model(flavour, middle, name="mid"):
    """input -> conv1 (16) -> middle -> conv2 (16) -> GAP -> Dense(3)."""
    k = keras(flavour)
    inputs = k.Input((8, 8, 4))
    x = k.layers.Conv2D(16, 3, padding="same", name="conv1")(inputs)
    x = middle(k, x)
    x = k.layers.Conv2D(16, 3, padding="same", name="conv2")(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model(inputs, k.layers.Dense(3, name="out")(x))


def _reasons(model):
    analysis = analyze(graph_view(model))
    return {g.label: g.reasons for g in analysis.groups}, analysis


UNANALYSABLE = {
    "lambda": (
        lambda k, x: k.layers.Lambda(lambda t: t * 2.0, name="mid")(x),
        "Lambda 'mid': a Lambda",
    ),
    "layer_norm": (
        lambda k, x: k.layers.LayerNormalization(name="mid")(x),
        "LayerNormalization 'mid': its effect on channels is unknown",
    ),
    "softmax": (
        lambda k, x: k.layers.Activation("softmax", name="mid")(x),
        "Activation 'mid': activation 'softmax' mixes channels",
    ),
    "reshape": (
        lambda k, x: k.layers.Reshape((8, 16, 8), name="mid")(x),
        "Reshape 'mid': reshapes across the channel axis",
    ),
    "grouped": (
        lambda k, x: k.layers.Conv2D(16, 1, groups=2, name="mid")(x),
        "Conv2D 'mid': groups=2 (only 1 is analysed)",
    ),
    "depth_multiplier": (
        lambda k, x: k.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="mid")(x),
        "DepthwiseConv2D 'mid': depth_multiplier=2 (only 1 is analysed)",
    ),
}


@pytest.mark.parametrize("case", sorted(UNANALYSABLE))
def test_unanalysable_layers_freeze_what_touches_them(flavour, case):
    middle, reason = UNANALYSABLE[case]
    reasons, analysis = _reasons(_conv_model(flavour, middle))
    assert len(reasons["conv1"]) == 1 and reasons["conv1"][0].startswith(reason)
    assert reasons["conv2"] == []  # downstream groups are still prunable
    assert analysis.layer_reasons["mid"] in reasons["conv1"][0]


def test_backend_operation_in_the_graph(flavour):
    def middle(k, x):
        return x * 2.0  # Keras 3: a keras.ops operation; tf_keras: a TFOpLambda layer

    reasons, _ = _reasons(_conv_model(flavour, middle))
    expected = "a backend operation, not a layer" if flavour == "keras3" else "a Lambda"
    assert expected in reasons["conv1"][0]
    assert reasons["conv2"] == []


def test_shared_and_nested_layers(flavour):
    k = keras(flavour)
    inputs = k.Input((8, 8, 4))
    x = k.layers.Conv2D(8, 1, name="conv1")(inputs)
    shared = k.layers.Conv2D(8, 1, name="shared")
    x = shared(shared(x))
    inner_in = k.Input((8, 8, 8))
    inner = k.Model(inner_in, k.layers.Conv2D(8, 1)(inner_in), name="inner")
    x = k.layers.Conv2D(16, 1, name="conv2")(x)
    x = inner(k.layers.Conv2D(8, 1, name="conv3")(x))
    model = k.Model(inputs, k.layers.Dense(2, name="out")(k.layers.Flatten()(x)))
    reasons, _ = _reasons(model)
    assert "shared layer (called 2 times in the model)" in reasons["conv1"][0]
    assert "a nested model (prune it separately)" in reasons["conv3"][0]
    assert reasons["conv2"] == []


def test_skip_freezes_the_layer_and_its_group(zoos, flavour):
    analysis = analyze(graph_view(zoos[flavour]), skip=("project", "fc"))
    groups = _groups(analysis)
    assert groups["stem + project + se_expand"].reasons == ["'project' is in the skip list"]
    assert groups["fc"].reasons == ["'fc' is in the skip list"]
    assert groups["expand"].prunable


def test_uneven_coupling_is_left_whole(flavour):
    k = keras(flavour)
    inputs = k.Input((4, 4, 3))
    a = k.layers.Conv2D(8, 1, name="a")(inputs)
    b = k.layers.Conv2D(8, 1, name="b")(inputs)
    c = k.layers.Conv2D(16, 1, name="c")(inputs)
    x = k.layers.Add()([k.layers.Concatenate()([a, b]), c])
    x = k.layers.Conv2D(4, 1, name="d")(x)
    model = k.Model(inputs, k.layers.Dense(2, name="out")(k.layers.Flatten()(x)))
    reasons, _ = _reasons(model)
    assert reasons["a + b + c"][0].startswith("channels coupled unevenly: a (8), b (8), c (16)")


def test_subclassed_and_unbuilt_models(flavour):
    k = keras(flavour)

    class Net(k.Model):
        def __init__(self):
            super().__init__()
            self.dense = k.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.zeros((1, 3), np.float32))
    with pytest.raises(
        ModelError,
        match=r"a subclassed model does not expose\. Expected a functional or Sequential model.*"
        r"Received: a subclassed model of class .*Net",
    ):
        graph_view(net)
    with pytest.raises(ModelError, match="has no defined inputs and outputs"):
        graph_view(k.Sequential([k.layers.Dense(2)]))
