"""The "channel-prune" recipe inside compress(), alone and chained with pruning."""

from __future__ import annotations

import keras_squeeze as ks
from tests.conftest import assert_weights_equal, weights_snapshot


def _convs(model) -> list[str]:
    """The Conv2D layer names (Keras numbers them by creation order in the session)."""
    return [layer.name for layer in model.layers if type(layer).__name__ == "Conv2D"]


def test_channel_prune_recipe_gives_a_smaller_model_of_the_same_flavour(trained, flavour, digits8):
    (x, y), (xt, yt) = digits8
    before, config = weights_snapshot(trained), trained.get_config()
    result = ks.compress(
        trained,
        "channel-prune",
        train_data=(x[:320], y[:320]),
        validation_data=(xt, yt),
        epochs=1,
        verbose=0,
    )
    assert_weights_equal(before, trained)
    assert trained.get_config() == config
    from keras_squeeze import _compat

    assert _compat.keras_flavour(result.model) == flavour
    report = result.report
    (stage,) = report.stages
    assert stage["name"] == "channel_prune"
    assert stage["details"]["flops_ratio"] < 0.6
    assert report.compressed.params < 0.75 * report.original.params
    rows = {r.name: r for r in report.layers}
    assert rows[_convs(trained)[1]].targets["channels"] == "64 -> 40"
    assert "logits" not in {n for n, r in rows.items() if r.targets.get("channels")}


def test_channel_prune_then_magnitude_prune(trained_models, digits8):
    (x, y), _ = digits8
    recipe = ks.Recipe(
        channel_prune=ks.ChannelPruning(target=0.5),
        prune=ks.Prune(target_sparsity=0.5),
        quantization="int8",
    )
    result = ks.compress(
        trained_models["keras3"],
        recipe,
        train_data=(x[:320], y[:320]),
        epochs=1,
        distill=False,
        verbose=0,
    )
    assert [s["name"] for s in result.report.stages] == ["channel_prune", "prune"]
    import keras

    assert isinstance(result.model, keras.Model)  # back to Keras 3, like the pruned model
    rows = {r.name: r for r in result.report.layers}
    third = _convs(trained_models["keras3"])[2]
    assert rows[third].targets == {"channels": "64 -> 48", "sparsity": 0.5}
    assert abs(rows[third].sparsity - 0.5) < 0.02
