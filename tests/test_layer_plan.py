from __future__ import annotations

import pytest

import keras_squeeze as ks
from keras_squeeze.errors import RecipeError
from keras_squeeze.layer_plan import LayerInfo, plan

LAYERS = [
    LayerInfo("conv1", "Conv2D", 288, True, first=True),
    LayerInfo("bn", "BatchNormalization", 0, True),
    LayerInfo("block_1_conv", "Conv2D", 18_432, True),
    LayerInfo("block_2_conv", "Conv2D", 36_864, True),
    LayerInfo("custom", "MyLayer", 5_000, False, unsupported_reason="MyLayer is not supported"),
    LayerInfo("dense", "Dense", 524_288, True),
    LayerInfo("logits", "Dense", 1_280, True),
]


def test_defaults_keep_first_small_and_unsupported_layers():
    d = plan(LAYERS, 0.8, technique="pruning", keep_first_layer=True, min_weights=1024)
    assert "bn" not in d  # no weights, nothing to decide
    assert d["conv1"].setting is None and "first layer" in d["conv1"].reason
    assert d["custom"].setting is None and d["custom"].reason == "MyLayer is not supported"
    for name in ("block_1_conv", "block_2_conv", "dense", "logits"):
        assert d[name].setting == 0.8 and d[name].reason is None
    d = plan(LAYERS, 0.8, technique="pruning", min_weights=2000)
    assert d["logits"].setting is None and "under 2,000 weights" in d["logits"].reason


def test_keys_by_name_class_and_pattern_in_order():
    d = plan(
        LAYERS,
        0.8,
        technique="pruning",
        per_layer={"dense": 0.9, r"block_\d_conv": 0.5, "Dense": None},
        skip=["block_2_conv"],
    )
    assert d["dense"].setting == 0.9  # the name key comes first
    assert d["block_1_conv"].setting == 0.5
    assert d["block_2_conv"].setting is None and d["block_2_conv"].reason == "in the skip list"
    assert d["logits"].setting is None and "layers['Dense']" in d["logits"].reason


def test_keys_that_match_nothing_are_errors():
    with pytest.raises(RecipeError, match=r"A skip entry names no layer.*Received: 'conv9'"):
        plan(LAYERS, 0.8, technique="pruning", skip=["conv9"])
    with pytest.raises(
        RecipeError, match=r"A pruning per-layer key names no layer.*Received: 'LSTM'"
    ):
        plan(LAYERS, 0.8, technique="pruning", per_layer={"LSTM": 0.5})


def test_naming_an_unsupported_layer_is_an_error_but_a_class_key_is_not():
    with pytest.raises(
        RecipeError,
        match=r"'custom' \(MyLayer\) was named for pruning but cannot take it: MyLayer is not supported",
    ):
        plan(LAYERS, 0.8, technique="pruning", per_layer={"custom": 0.5})
    d = plan(LAYERS, 0.8, technique="pruning", per_layer={"MyLayer": 0.5})
    assert d["custom"].setting is None


def test_technique_specific_size_rule():
    d = plan(
        LAYERS,
        16,
        technique="clustering",
        too_small=lambda layer: "fewer weights than clusters" if layer.weights < 300 else None,
    )
    assert d["conv1"].setting is None and d["conv1"].reason == "fewer weights than clusters"


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: ks.Prune(layers=[("dense", 0.5)]),
            r"layers must map .* to a sparsity \(or None\)",
        ),
        (lambda: ks.Prune(layers={"d": 1.5}), r"sparsity must lie in \[0, 1\).*layers\['d'\]=1\.5"),
        (
            lambda: ks.Prune(layers={"d": True}),
            r"sparsity must lie in \[0, 1\).*layers\['d'\]=True",
        ),
        (lambda: ks.Cluster(layers={"d": 1}), r"integer >= 2, or None.*layers\['d'\]=1"),
        (lambda: ks.QAT(layers={"d": False}), r"QAT choice is True.*layers\['d'\]=False"),
        (lambda: ks.Prune(skip=["a", 3]), r"skip lists layer names, class names or patterns"),
        (lambda: ks.Cluster(keep_first_layer="yes"), r"keep_first_layer must be True or False"),
        (lambda: ks.Prune(min_weights=-1), r"min_weights must be an integer >= 0.*=-1"),
        (lambda: ks.Cluster(min_weights=True), r"min_weights must be an integer >= 0.*=True"),
        (lambda: ks.QAT(learning_rate_scale=0), r"learning_rate_scale multiplies"),
    ],
)
def test_stage_configs_share_one_selection_check(make, message):
    with pytest.raises(RecipeError, match=message):
        make()


def test_selection_fields_are_normalised():
    assert ks.Prune(skip="logits").skip == ("logits",)
    assert ks.QAT(skip=["a", "b"]).skip == ("a", "b")
    assert ks.Cluster(learning_rate_scale=1).learning_rate_scale == 1.0
