from __future__ import annotations

import pytest

import keras_squeeze as ks
from keras_squeeze.errors import RecipeError


@pytest.mark.parametrize("name", sorted(ks.RECIPES))
def test_presets_round_trip(name):
    recipe = ks.Recipe.get(name)
    assert recipe.name == name
    assert ks.Recipe.from_config(recipe.get_config()) == recipe
    assert ks.Recipe.get(recipe.get_config()) == recipe


def test_custom_recipe():
    recipe = ks.Recipe(quantization="float16", name="small-gpu")
    assert recipe.get_config() == {
        "name": "small-gpu",
        "quantization": "float16",
        "block_removal": None,
        "channel_prune": None,
        "prune": None,
        "cluster": None,
        "qat": None,
        "distill": True,
    }
    assert ks.Recipe.get(recipe) is recipe
    assert not recipe.needs_calibration and ks.Recipe.get("int8").needs_calibration


def test_recipe_validation():
    with pytest.raises(
        RecipeError, match=r"Unknown quantization mode.*Received: quantization='int3'"
    ):
        ks.Recipe(quantization="int3")
    with pytest.raises(RecipeError, match=r"name must be a non-empty string.*Received: name=''"):
        ks.Recipe(name="")
    with pytest.raises(RecipeError, match=r"Unknown recipe config keys.*Received: \['sparsity'\]"):
        ks.Recipe.from_config({"quantization": "int8", "sparsity": 0.5})
    with pytest.raises(RecipeError, match=r"must be a dict"):
        ks.Recipe.from_config(["int8"])
    with pytest.raises(RecipeError, match=r"Unknown recipe"):
        ks.Recipe.get(3)


def test_scheme_is_stated_exactly():
    from keras_squeeze.quantization.ptq import PTQ_MODES

    assert "int8 per-channel symmetric" in PTQ_MODES["int8"].scheme
    assert "activations int8 per-tensor asymmetric" in PTQ_MODES["int8"].scheme
    assert "int16 per-tensor symmetric" in PTQ_MODES["int16x8"].scheme
