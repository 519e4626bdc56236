"""prune_channels end to end: both flavours, exports, fine-tuning, criteria, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.channel_pruning import ChannelPruning, count_flops, prune_channels
from keras_squeeze.errors import DataError, ModelError, RecipeError
from tests.channel_pruning.builders import sequential, zoo
from tests.conftest import assert_weights_equal, keras, weights_snapshot


@pytest.fixture(scope="module")
def zoo_results():
    """{flavour: (original zoo, its config, its weights, result at 50% FLOPs)}."""
    out = {}
    for flavour in ("keras3", "tf_keras"):
        model = zoo(flavour)
        config, weights = model.get_config(), weights_snapshot(model)
        out[flavour] = (model, config, weights, prune_channels(model, verbose=0))
    return out


def test_halves_the_flops_and_leaves_the_user_model_alone(zoo_results, flavour):
    model, config, weights, result = zoo_results[flavour]
    assert_weights_equal(weights, model)
    assert model.get_config() == config
    report = result.report
    # never above the target; close to it up to the rounding of 16-channel groups to 8
    assert 0.45 <= report.flops_ratio <= 0.5
    assert report.macs_after == count_flops(result.model).macs
    assert report.params_after == result.model.count_params() < model.count_params()
    assert report.keras_flavour == flavour and report.target_ratio == 0.5
    rows = {r.name: r for r in report.layers}
    assert rows["stem"].channels_before == 16 and rows["stem"].channels_after == 8
    assert rows["flatten"].channels_before == 3200
    assert rows["flatten"].channels_after == 100 * rows["head"].channels_after
    assert rows["logits"].reason == "left whole: feeds the model output 'logits'"
    assert result.kept["stem"] == result.kept["project"] == result.kept["se_expand"] == 8
    assert all(n % 8 == 0 for n in result.kept.values())
    for layer in result.model.layers:  # a plain model: no wrappers, no masks
        assert type(layer).__name__ == type(model.get_layer(layer.name)).__name__
    assert json.loads(report.to_json())["flops_ratio"] == round(report.flops_ratio, 4)
    assert "| stem | Conv2D | 16 | 8 |  |" in report.to_markdown()


def test_pruned_model_converts_and_exports(zoo_results, flavour, tmp_path):
    _, _, _, result = zoo_results[flavour]
    x = np.random.default_rng(1).normal(size=(16, 16, 16, 3)).astype(np.float32)
    art = ks.export.to_tflite(result.model, tmp_path / "pruned.tflite", verification_data=x)
    assert art.fidelity.top1_agreement == 1.0 and art.size_bytes > 0
    onnx = ks.export.to_onnx(result.model, tmp_path / "pruned.onnx", verification_data=x)
    assert onnx.fidelity.top1_agreement == 1.0
    saved = ks.export.to_saved_model(result.model, tmp_path / "serving", verification_data=x)
    assert (saved.path / "saved_model.pb").exists()


@pytest.mark.parametrize(
    "settings",
    [
        ChannelPruning(0.6, metric="params", allocation="global"),
        ChannelPruning(0.4, criterion="l2", allocation="global", round_to=4),
        ChannelPruning(0.5, criterion="bn_scale", skip=("stem", "fc")),
    ],
    ids=["params-global", "l2-global", "bn-skip"],
)
def test_other_settings_on_keras3(zoo_results, settings):
    model = zoo_results["keras3"][0]
    report = prune_channels(model, settings, verbose=0).report
    ratio = report.params_ratio if settings.metric == "params" else report.flops_ratio
    assert 0.9 * settings.target <= ratio <= settings.target
    rows = {r.name: r for r in report.layers}
    if settings.skip:
        assert rows["stem"].channels_after == 16 and rows["fc"].channels_after == 48
        assert rows["stem"].reason == "left whole: 'stem' is in the skip list"
        assert "no source in" in report.notes[1]  # groups without BN fall back to l1
    if settings.round_to == 4:
        assert all(r.channels_after % 4 == 0 for r in report.layers if r.type == "Conv2D")


def test_per_layer_target_and_sequential(flavour):
    model = sequential(flavour)
    result = prune_channels(model, ChannelPruning(target={"c2": 0.5}), verbose=0)
    assert type(result.model).__name__ == "Sequential"
    assert result.kept == {"c2": 16}
    assert [r.channels_after for r in result.report.layers] == [16, 16, 16, 5]
    assert result.report.target_ratio is None


def test_fine_tuning_with_fit_reports_accuracy(trained, digits8, flavour):
    (x, y), (xt, yt) = digits8
    result = prune_channels(
        trained,
        ChannelPruning(0.5, criterion="taylor", taylor_samples=64),
        train_data=(x, y),
        validation_data=(xt, yt),
        epochs=2,
        verbose=0,
    )
    acc = result.report.accuracy
    assert set(acc) == {"original", "pruned", "fine_tuned", "samples"} and acc["samples"] == 397
    assert acc["fine_tuned"] > acc["pruned"]
    # the example CNN is compiled with Adam at 1e-3; the kept channels train at 0.3 of it
    assert (
        result.report.fine_tuning == "fine-tuned for 2 epoch(s) with Adam at learning rate 0.0003"
    )
    assert 0.45 <= result.report.flops_ratio <= 0.5


def test_custom_fine_tune_step(trained_models, digits8):
    _, (xt, yt) = digits8
    seen = []

    def distill(pruned):
        seen.append(pruned.count_params())
        replacement = keras("keras3").models.clone_model(pruned)
        replacement.set_weights([np.zeros_like(w) for w in pruned.get_weights()])
        return replacement

    result = prune_channels(
        trained_models["keras3"], fine_tune=distill, validation_data=(xt, yt), verbose=0
    )
    assert seen == [result.model.count_params()]
    assert all((w == 0).all() for w in result.model.get_weights())  # the returned model is used
    assert result.report.accuracy["fine_tuned"] < 0.2
    assert result.report.fine_tuning == "custom fine_tune step distill"


def test_unreachable_target_warns(flavour):
    with pytest.warns(UserWarning, match=r"the target 0\.01 of the flops cannot be reached"):
        result = prune_channels(sequential(flavour), ChannelPruning(0.01), verbose=0)
    assert result.report.warnings and all(v == 8 for v in result.kept.values())


# Bad input


def test_every_group_unanalysable(flavour):
    k = keras(flavour)
    inputs = k.Input((8, 8, 3))
    x = k.layers.Conv2D(8, 3, name="conv")(inputs)
    x = k.layers.LayerNormalization(name="norm")(x)
    model = k.Model(inputs, k.layers.Dense(4, name="out")(k.layers.Flatten()(x)))
    with pytest.raises(
        ModelError,
        match=r"No channel group of the model can be pruned\. Expected Conv / Dense layers .* "
        r"Received: conv: LayerNormalization 'norm': its effect on channels is unknown .*"
        r" \| out: feeds the model output 'out'",
    ):
        prune_channels(model, verbose=0)


def test_skip_list_layer_that_does_not_exist(zoo_results):
    with pytest.raises(
        RecipeError,
        match=r"skip names layers that are not in the model\. Expected names of the model's "
        r"layers \('stem', 'stem_bn', .*\)\. Received: \['stem2'\]",
    ):
        prune_channels(zoo_results["keras3"][0], ChannelPruning(skip=["stem", "stem2"]), verbose=0)


def test_subclassed_model():
    k = keras("keras3")

    class Net(k.Model):
        def __init__(self):
            super().__init__()
            self.conv = k.layers.Conv2D(8, 3)

        def call(self, x):
            return self.conv(x)

    net = Net()
    net(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ModelError, match="Expected a functional or Sequential model"):
        prune_channels(net, verbose=0)
    with pytest.raises(ModelError, match="is not a Keras model"):
        prune_channels(np.zeros(3), verbose=0)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"stem_bn": 0.5}, r"target names a layer without its own output channels.*'stem_bn'"),
        (
            {"logits": 0.5},
            r"The layer 'logits' named in target cannot be pruned.*feeds the model output",
        ),
        ({"stem": 0.5, "project": 0.25}, r"Layers 'stem' and 'project' are pruned together"),
        ({"nope": 0.5}, r"target names layers that are not in the model.*Received: \['nope'\]"),
    ],
)
def test_bad_per_layer_targets(zoo_results, target, message):
    with pytest.raises(RecipeError, match=message):
        prune_channels(zoo_results["keras3"][0], ChannelPruning(target=target), verbose=0)


def test_bad_data_arguments(zoo_results, digits8):
    model = zoo_results["keras3"][0]
    with pytest.raises(DataError, match=r"needs labelled training data.*Received: train_data=None"):
        prune_channels(model, epochs=2, loss="mse", verbose=0)
    with pytest.raises(DataError, match=r"train_data has no labels and no teacher was given"):
        prune_channels(model, epochs=2, train_data=np.zeros((4, 16, 16, 3)), verbose=0)
    with pytest.raises(DataError, match=r"'taylor' criterion needs labelled data"):
        prune_channels(model, ChannelPruning(criterion="taylor"), loss="mse", verbose=0)
    with pytest.raises(DataError, match=r"needs labels and a loss.*Received: labels None"):
        prune_channels(
            model,
            ChannelPruning(criterion="taylor"),
            importance_data=np.zeros((4, 16, 16, 3), np.float32),
            loss="mse",
            verbose=0,
        )
    with pytest.raises(DataError, match=r"Unknown loss"):
        prune_channels(model, loss="no-such-loss", verbose=0)
    with pytest.raises(RecipeError, match="settings must be a ChannelPruning"):
        prune_channels(model, 0.5, verbose=0)
    with pytest.raises(DataError, match="epochs must be a non-negative integer"):
        prune_channels(model, epochs=-1, verbose=0)


def test_an_uncompiled_model_fine_tunes_with_the_default_loss_and_rate(zoo_results):
    model = zoo_results["keras3"][0]  # never compiled: no loss, no optimizer
    rng = np.random.default_rng(0)
    x = rng.random((32, 16, 16, 3), dtype=np.float32)
    y = rng.integers(0, model.outputs[0].shape[-1], 32)
    result = prune_channels(model, train_data=(x, y), validation_data=(x, y), verbose=0)
    # epochs default to 2 when train_data is given; Adam at 1e-3, times the stage's 0.3
    assert (
        result.report.fine_tuning == "fine-tuned for 2 epoch(s) with Adam at learning rate 0.0003"
    )
    assert result.report.accuracy["fine_tuned"] is not None
