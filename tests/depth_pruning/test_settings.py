"""BlockRemoval: validation, the get_config / from_config round trip, the recipe keyword."""

from __future__ import annotations

import json
import re

import pytest

import keras_squeeze as ks
from keras_squeeze.depth_pruning import BlockRemoval
from keras_squeeze.errors import KerasSqueezeError, RecipeError


@pytest.mark.parametrize(
    "settings",
    [
        BlockRemoval(),
        BlockRemoval(0.5, "params", "taylor", ("a", "b"), 16, True, False, False, True, 0.3),
        BlockRemoval(target=0.9, metric="blocks", criterion="output-distance", skip="stem"),
        BlockRemoval(metric="latency", remeasure=False),
    ],
)
def test_round_trip_through_json(settings):
    config = json.loads(json.dumps(settings.get_config()))
    assert BlockRemoval.from_config(config) == settings


def test_defaults_and_normalisation():
    s = BlockRemoval(target=1 / 2, skip="stem")
    assert s.skip == ("stem",) and s.target == 0.5
    assert s.metric == "flops" and s.criterion == "bypass-loss" and s.needs_labels
    assert not BlockRemoval(criterion="output-distance").needs_labels
    assert (
        BlockRemoval().describe()
    ) == "keep 0.7 of the flops; importance 'bypass-loss' on 64 samples"
    assert ks.BlockRemoval is BlockRemoval


@pytest.mark.parametrize("target", [0, 1, -0.5, 1.5, float("nan"), True, "half", None])
def test_target_outside_zero_one(target):
    with pytest.raises(
        KerasSqueezeError,
        match=r"target is the fraction of the model's cost to keep\. Expected a number in "
        r"\(0, 1\)\. " + re.escape(f"Received: target={target!r}"),
    ):
        BlockRemoval(target=target)


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        (
            "metric",
            "macs",
            "Unknown metric. Expected one of 'flops', 'params', 'latency', 'blocks'",
        ),
        ("criterion", "l1", "Unknown criterion. Expected one of 'bypass-loss', 'output-distance'"),
        ("importance_samples", 0, "importance_samples must be a positive integer"),
        ("importance_samples", 2.5, "Received: importance_samples=2.5"),
        ("remeasure", "yes", r"remeasure is a switch\. Expected True or False"),
        ("fold_batchnorm", 1, "Received: fold_batchnorm=1"),
        ("merge_linear", None, "Received: merge_linear=None"),
        ("measure_latency", "no", "Received: measure_latency='no'"),
        ("skip", ["a", 3], r"skip lists unit or layer names\. Expected a string or a sequence"),
        ("learning_rate_scale", 0, "learning_rate_scale multiplies"),
    ],
)
def test_invalid_settings(argument, value, message):
    with pytest.raises(RecipeError, match=message):
        BlockRemoval(**{argument: value})


def test_from_config_errors():
    with pytest.raises(RecipeError, match=r"must be a dict\. .* Received: list"):
        BlockRemoval.from_config([])
    with pytest.raises(RecipeError, match=r"Unknown block removal config keys.*\['depth'\]"):
        BlockRemoval.from_config({"depth": 3})


def test_recipe_keyword_and_preset():
    recipe = ks.Recipe(block_removal=BlockRemoval(target=0.5), quantization="float32")
    assert recipe.training_stages == ["block_removal"]
    assert ks.Recipe.from_config(recipe.get_config()) == recipe
    preset = ks.Recipe.get("depth-prune")
    assert preset.block_removal == BlockRemoval() and preset.quantization == "int8"
    chained = ks.Recipe(block_removal=BlockRemoval(), channel_prune=ks.ChannelPruning())
    assert chained.training_stages == ["block_removal", "channel_prune"]
    with pytest.raises(RecipeError, match=r"The block_removal stage must be a ks\.BlockRemoval"):
        ks.Recipe(block_removal=ks.ChannelPruning())
    with pytest.raises(RecipeError, match="has a keyword of its own"):
        ks.Recipe(stages={"block_removal": BlockRemoval()})
