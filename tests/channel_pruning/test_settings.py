"""ChannelPruning: validation and the get_config / from_config round trip."""

from __future__ import annotations

import json
import re

import pytest

from keras_squeeze.channel_pruning import ChannelPruning
from keras_squeeze.errors import RecipeError


@pytest.mark.parametrize(
    "settings",
    [
        ChannelPruning(),
        ChannelPruning(0.3, "params", "taylor", "global", 4, ("a", "b"), 64),
        ChannelPruning(target={"conv": 0.5, "dense": 1}, criterion="bn_scale", skip="stem"),
    ],
)
def test_round_trip_through_json(settings):
    config = json.loads(json.dumps(settings.get_config()))
    assert ChannelPruning.from_config(config) == settings


def test_normalises_skip_and_target():
    s = ChannelPruning(target={"c": 1}, skip="stem")
    assert s.skip == ("stem",) and s.target == {"c": 1.0} and s.per_layer
    assert ChannelPruning(target=1).target == 1.0 and not ChannelPruning().per_layer
    assert "0.5 of the flops" in ChannelPruning().describe()


@pytest.mark.parametrize("target", [0, -0.5, 1.5, float("nan"), True, "half", None])
def test_target_outside_zero_one(target):
    with pytest.raises(
        RecipeError,
        match=r"target must be the fraction to keep\. Expected a number in \(0, 1\]\. "
        + re.escape(f"Received: target={target!r}"),
    ):
        ChannelPruning(target=target)


def test_per_layer_target_errors():
    with pytest.raises(
        RecipeError, match=r"Expected a number in \(0, 1\]\. Received: target\['c'\]=2"
    ):
        ChannelPruning(target={"c": 2})
    with pytest.raises(RecipeError, match="must name at least one layer"):
        ChannelPruning(target={})
    with pytest.raises(RecipeError, match=r"Expected string keys\. Received: key 3"):
        ChannelPruning(target={3: 0.5})


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        (
            "metric",
            "latency",
            r"Unknown metric\. Expected one of 'flops', 'params'\. Received: metric='latency'",
        ),
        (
            "criterion",
            "random",
            r"Unknown criterion\. Expected one of 'l1', 'l2', 'bn_scale', 'taylor'",
        ),
        ("allocation", "greedy", r"Unknown allocation\. Expected one of 'uniform', 'global'"),
        (
            "round_to",
            0,
            r"round_to must be a positive integer\. Expected >= 1\. Received: round_to=0",
        ),
        ("round_to", 8.0, r"Received: round_to=8\.0"),
        ("taylor_samples", -1, r"taylor_samples must be a positive integer"),
        ("skip", ["a", 3], r"skip lists layer names\. Expected a string or a sequence of strings"),
    ],
)
def test_bad_settings(argument, value, message):
    with pytest.raises(RecipeError, match=message):
        ChannelPruning(**{argument: value})


def test_from_config_rejects_unknown_keys_and_non_dicts():
    with pytest.raises(
        RecipeError, match=r"Unknown channel pruning config keys.*Received: \['ratio'\]"
    ):
        ChannelPruning.from_config({"ratio": 0.5})
    with pytest.raises(RecipeError, match="must be a dict"):
        ChannelPruning.from_config([0.5])
